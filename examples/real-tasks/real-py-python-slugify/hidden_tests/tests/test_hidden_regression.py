from slugify import slugify


def test_word_boundary_skips_long_word_keeps_later_short_words() -> None:
    txt = "jaja---lol-méméméoo--a"
    assert slugify(txt, max_length=15, word_boundary=True) == "jaja-lol-a"


def test_word_boundary_save_order_stops_at_first_long_word() -> None:
    txt = "jaja---lol-méméméoo--a"
    assert slugify(txt, max_length=15, word_boundary=True, save_order=True) == "jaja-lol"
