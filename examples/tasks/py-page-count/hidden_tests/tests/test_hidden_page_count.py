from paginate import page_count


def test_partial_last_page_counts() -> None:
    assert page_count(21, 10) == 3


def test_fewer_items_than_a_page() -> None:
    assert page_count(3, 10) == 1


def test_one_item_per_page() -> None:
    assert page_count(7, 1) == 7


def test_exact_multiple_still_right() -> None:
    assert page_count(30, 10) == 3
    assert page_count(0, 10) == 1
