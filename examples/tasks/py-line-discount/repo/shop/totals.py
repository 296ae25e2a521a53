"""What an order costs."""

from shop.models import Order, OrderLine


def line_total(line: OrderLine) -> int:
    """The price of one line in cents."""
    return line.unit_price_cents * line.quantity


def order_total(order: Order) -> int:
    """The price of the whole order in cents."""
    return sum(line_total(line) for line in order.lines)
