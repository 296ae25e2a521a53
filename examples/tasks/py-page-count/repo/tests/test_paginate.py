import pytest

from paginate import page_count, page_slice


def test_exact_multiple() -> None:
    assert page_count(20, 10) == 2


def test_empty_list_has_one_page() -> None:
    assert page_count(0, 10) == 1


def test_per_page_must_be_positive() -> None:
    with pytest.raises(ValueError):
        page_count(5, 0)


def test_page_slice() -> None:
    assert page_slice(2, 10) == slice(10, 20)
