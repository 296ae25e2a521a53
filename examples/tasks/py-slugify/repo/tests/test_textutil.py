from textutil import truncate


def test_short_text_is_kept() -> None:
    assert truncate("hello", 10) == "hello"


def test_long_text_is_cut() -> None:
    assert truncate("hello world", 8) == "hello w…"
