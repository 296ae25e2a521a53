import humanize


def test_ordinal_teens_use_th_suffix() -> None:
    assert humanize.ordinal(13) == "13th"
    assert humanize.ordinal(113) == "113th"
    assert humanize.ordinal(1013) == "1013th"


def test_ordinal_regular_third_still_rd() -> None:
    assert humanize.ordinal(3) == "3rd"
    assert humanize.ordinal(23) == "23rd"
