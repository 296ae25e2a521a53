from textutil import slugify


def test_simple_title() -> None:
    assert slugify("Hello World") == "hello-world"


def test_punctuation_runs_collapse() -> None:
    assert slugify("Rust vs. Go: a (fair?) comparison!!") == "rust-vs-go-a-fair-comparison"


def test_accents_are_removed() -> None:
    assert slugify("Crème Brûlée") == "creme-brulee"


def test_no_leading_or_trailing_dash() -> None:
    assert slugify("  --Hello--  ") == "hello"


def test_digits_are_kept() -> None:
    assert slugify("Top 10 tips for 2024") == "top-10-tips-for-2024"


def test_nothing_usable_gives_untitled() -> None:
    assert slugify("") == "untitled"
    assert slugify("!!! ???") == "untitled"


def test_long_titles_are_cut_at_a_word() -> None:
    slug = slugify("a very long title " * 10)
    assert len(slug) <= 50
    assert not slug.endswith("-")
    assert slug.startswith("a-very-long-title-a-very-long")
    assert slug == "a-very-long-title-a-very-long-title-a-very-long"


def test_one_long_word_is_cut_hard() -> None:
    assert slugify("x" * 80) == "x" * 50
