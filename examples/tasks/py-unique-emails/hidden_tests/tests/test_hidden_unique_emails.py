from mailing import unique_emails


def test_case_differences_are_duplicates() -> None:
    assert unique_emails(["Ada@Example.com", "ada@example.com"]) == ["Ada@Example.com"]


def test_first_spelling_and_order_kept() -> None:
    given = ["b@x.org", "ADA@x.org", "B@X.ORG", "ada@x.org", "c@x.org"]
    assert unique_emails(given) == ["b@x.org", "ADA@x.org", "c@x.org"]


def test_whitespace_and_case_together() -> None:
    assert unique_emails(["  Bob@x.org", "bob@X.org  "]) == ["Bob@x.org"]
