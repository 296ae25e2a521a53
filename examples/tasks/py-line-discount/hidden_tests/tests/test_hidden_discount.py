import pytest

from shop.models import Order, OrderLine
from shop.totals import line_total, order_total


def test_default_is_no_discount() -> None:
    assert OrderLine("chair", 4999, 2).discount_percent == 0
    assert line_total(OrderLine("chair", 4999, 2)) == 9998


def test_discount_applies_to_the_line() -> None:
    assert line_total(OrderLine("chair", 5000, 2, discount_percent=20)) == 8000


def test_discount_rounds_down_to_cents() -> None:
    # 3 x 999 = 2997 cents, minus 15% = 2547.45 -> 2547
    assert line_total(OrderLine("lamp", 999, 3, discount_percent=15)) == 2547


def test_full_discount_is_free() -> None:
    assert line_total(OrderLine("pen", 250, 4, discount_percent=100)) == 0


def test_order_total_includes_discounts() -> None:
    order = Order("ada", [OrderLine("chair", 5000, 2, 20), OrderLine("desk", 15000)])
    assert order_total(order) == 23000


@pytest.mark.parametrize("bad", [-1, 101, 250])
def test_discount_out_of_range(bad: int) -> None:
    with pytest.raises(ValueError):
        OrderLine("chair", 5000, 1, discount_percent=bad)
