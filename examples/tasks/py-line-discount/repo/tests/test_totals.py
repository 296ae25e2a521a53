import pytest

from shop.models import Order, OrderLine
from shop.totals import line_total, order_total


def test_line_total() -> None:
    assert line_total(OrderLine("chair", 4999, 2)) == 9998


def test_order_total() -> None:
    order = Order("ada", [OrderLine("chair", 4999, 2), OrderLine("desk", 15000)])
    assert order_total(order) == 24998


def test_quantity_must_be_positive() -> None:
    with pytest.raises(ValueError):
        OrderLine("chair", 4999, 0)
