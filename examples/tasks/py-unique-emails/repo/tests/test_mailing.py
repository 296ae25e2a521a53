from mailing import unique_emails


def test_exact_duplicates_are_dropped() -> None:
    assert unique_emails(["a@x.org", "b@x.org", "a@x.org"]) == ["a@x.org", "b@x.org"]


def test_blank_entries_are_dropped() -> None:
    assert unique_emails([" ", "", "c@x.org "]) == ["c@x.org"]
