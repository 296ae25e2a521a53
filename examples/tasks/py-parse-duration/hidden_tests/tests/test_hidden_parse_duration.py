import pytest

from durations import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1h30m", 5400),
        ("90m", 5400),
        ("45s", 45),
        ("1d2h", 93600),
        ("1h30m15s", 5415),
        (" 2H ", 7200),
        ("300", 300),
        ("0s", 0),
    ],
)
def test_parses(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "  ", "5w", "1m1h", "1h1h", "-5m", "1.5h", "h", "1h 30m"])
def test_rejects(text: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_duration(text)
    assert repr(text) in str(info.value) or text.strip() in str(info.value)


@pytest.mark.parametrize("seconds", [0, 1, 59, 60, 3599, 3600, 86399, 86400, 190_061])
def test_round_trip(seconds: int) -> None:
    assert parse_duration(format_duration(seconds)) == seconds
