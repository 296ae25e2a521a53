import pytest

from durations import format_duration


def test_format_hours_and_minutes() -> None:
    assert format_duration(5400) == "1h30m"


def test_format_zero() -> None:
    assert format_duration(0) == "0s"


def test_format_rejects_negative() -> None:
    with pytest.raises(ValueError):
        format_duration(-1)
