"""Signature checks and parsing of the local forge's webhooks: tables of plain values."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest

from bot.errors import ForgeError
from bot.events import (
    CommentCreated,
    IssueClosed,
    IssueLabeled,
    IssueUnlabeled,
    PullClosed,
    Pushed,
    Repo,
    ReviewSubmitted,
)
from bot.forges.local import LocalForge, webhook
from bot.forges.verify import get_header, sign_sha256, verify_hmac_sha256

SECRET = "s3cret"
BODY = b'{"action": "labeled"}'
GOOD = "sha256=" + sign_sha256(SECRET, BODY)


def test_sign_matches_githubs_published_test_vector() -> None:
    expected = "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    assert sign_sha256("It's a Secret to Everybody", b"Hello, World!") == expected


@pytest.mark.parametrize(
    ("secret", "body", "signature", "expected"),
    [
        (SECRET, BODY, GOOD, True),
        (SECRET, BODY, GOOD.upper().replace("SHA256=", "sha256="), True),
        (None, BODY, GOOD, False),  # no secret configured: fail closed
        ("", BODY, "sha256=" + sign_sha256("", BODY), False),
        (SECRET, BODY, None, False),  # header missing
        (SECRET, BODY, "sha256=" + sign_sha256("other", BODY), False),  # wrong secret
        (SECRET, BODY + b" ", GOOD, False),  # body changed
        (SECRET, BODY, GOOD.removeprefix("sha256="), False),  # no prefix
        (SECRET, BODY, "sha1=" + GOOD.removeprefix("sha256="), False),
        (SECRET, BODY, "sha256=", False),
        (SECRET, BODY, "sha256=xyz", False),
        (SECRET, BODY, GOOD[:-1], False),  # too short
        (SECRET, BODY, GOOD + "0", False),  # too long
        (SECRET, BODY, GOOD[:-1] + "é", False),  # non-ASCII must not raise
        (SECRET, BODY, " " + GOOD, False),
    ],
)
def test_verify_hmac_sha256(
    secret: str | None, body: bytes, signature: str | None, expected: bool
) -> None:
    assert verify_hmac_sha256(secret, body, signature) is expected


def test_verify_without_prefix_for_gitea_style_headers() -> None:
    assert verify_hmac_sha256(SECRET, BODY, sign_sha256(SECRET, BODY), prefix="")


def test_get_header_ignores_case() -> None:
    headers = {"x-forgebot-event": "issues"}
    assert get_header(headers, "X-Forgebot-Event") == "issues"
    assert get_header(headers, "X-Forgebot-Delivery") is None


def forge(secret: str | None = SECRET) -> LocalForge:
    return LocalForge(Path("/nonexistent"), secret)


def headers_for(event: str, body: bytes, secret: str = SECRET) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "X-Forgebot-Event": event,
        "X-Forgebot-Delivery": "0b8c7d7e-6f1e-4a57-9d55-3f4c1f2b9a10",
        "X-Forgebot-Signature-256": "sha256=" + sign_sha256(secret, body),
    }


def test_forge_verify_reads_its_header_and_fails_closed() -> None:
    headers = headers_for("issues", BODY)
    assert forge().verify(headers, BODY)
    assert forge().verify({k.lower(): v for k, v in headers.items()}, BODY)
    assert not forge(None).verify(headers, BODY)
    assert not forge().verify({"X-Forgebot-Event": "issues"}, BODY)
    assert not forge().verify(headers_for("issues", BODY, secret="nope"), BODY)


def test_delivery_id_and_event_kind() -> None:
    headers = headers_for("issue_comment", BODY)
    assert forge().delivery_id(headers) == "0b8c7d7e-6f1e-4a57-9d55-3f4c1f2b9a10"
    assert forge().event_kind(headers) == "issue_comment"
    assert forge().delivery_id({}) is None
    assert forge().event_kind({}) == ""


LABELED: dict[str, Any] = {
    "action": "labeled",
    "repository": {"full_name": "acme/hello", "default_branch": "trunk"},
    "issue": {
        "number": 3,
        "title": "Add a farewell",
        "body": "Please.",
        "labels": [{"name": "bug"}, {"name": "forgebot"}],
        "user": {"login": "ada"},
    },
    "label": {"name": "forgebot"},
    "sender": {"login": "grace"},
}

COMMENT: dict[str, Any] = {
    "action": "created",
    "repository": {"full_name": "acme/hello", "default_branch": "main"},
    "issue": {"number": 4, "title": "t", "body": None, "labels": [], "user": {"login": "ada"}},
    "comment": {"body": "/retry", "user": {"login": "grace"}},
    "sender": {"login": "grace"},
}


def parse(event: str, payload: object) -> object:
    body = json.dumps(payload).encode()
    return forge().parse(headers_for(event, body), body)


def test_parse_labeled() -> None:
    assert parse("issues", LABELED) == IssueLabeled(
        repo=Repo(forge="local", full_name="acme/hello", default_branch="trunk"),
        number=3,
        title="Add a farewell",
        body="Please.",
        label="forgebot",
        sender="grace",
        labels=("bug", "forgebot"),
    )


def test_parse_comment_on_an_issue_and_on_a_pull() -> None:
    on_issue = parse("issue_comment", COMMENT)
    assert on_issue == CommentCreated(
        repo=Repo("local", "acme/hello", "main"), number=4, body="/retry", author="grace"
    )
    on_pull = copy.deepcopy(COMMENT)
    on_pull["issue"]["pull_request"] = {"number": 4}
    parsed = parse("issue_comment", on_pull)
    assert isinstance(parsed, CommentCreated)
    assert parsed.is_pull


def test_null_issue_body_and_missing_default_branch_have_defaults() -> None:
    payload = copy.deepcopy(LABELED)
    payload["issue"]["body"] = None
    del payload["repository"]["default_branch"]
    parsed = parse("issues", payload)
    assert isinstance(parsed, IssueLabeled)
    assert parsed.body == ""
    assert parsed.repo.default_branch == "main"


@pytest.mark.parametrize(
    ("event", "payload"),
    [
        ("issues", {**LABELED, "action": "opened"}),
        ("issues", {**LABELED, "action": "reopened"}),
        ("pull_request", {**LABELED, "action": "opened"}),
        ("issue_comment", {**COMMENT, "action": "edited"}),
        ("", LABELED),
    ],
)
def test_events_that_start_nothing(event: str, payload: dict[str, Any]) -> None:
    assert parse(event, payload) is None


def without(payload: dict[str, Any], path: str) -> dict[str, Any]:
    result = copy.deepcopy(payload)
    node = result
    *parents, last = path.split(".")
    for key in parents:
        node = node[key]
    del node[last]
    return result


def replaced(payload: dict[str, Any], path: str, value: object) -> dict[str, Any]:
    result = copy.deepcopy(payload)
    node = result
    *parents, last = path.split(".")
    for key in parents:
        node = node[key]
    node[last] = value
    return result


@pytest.mark.parametrize(
    ("event", "payload", "field"),
    [
        ("issues", without(LABELED, "issue.number"), "issue.number"),
        ("issues", without(LABELED, "issue"), "issue.number"),
        ("issues", without(LABELED, "label"), "label.name"),
        ("issues", without(LABELED, "sender.login"), "sender.login"),
        ("issues", without(LABELED, "repository.full_name"), "repository.full_name"),
        ("issues", without(LABELED, "issue.labels"), "issue.labels"),
        ("issues", replaced(LABELED, "issue.number", "3"), "issue.number"),
        ("issues", replaced(LABELED, "issue.number", True), "issue.number"),
        ("issues", replaced(LABELED, "issue.labels", [{"nom": "x"}]), "issue.labels[0].name"),
        ("issue_comment", without(COMMENT, "comment.body"), "comment.body"),
        ("issue_comment", without(COMMENT, "comment.user"), "comment.user.login"),
        ("issue_comment", replaced(COMMENT, "repository", "acme/hello"), "repository.full_name"),
    ],
)
def test_missing_or_mistyped_field_names_the_field(
    event: str, payload: dict[str, Any], field: str
) -> None:
    with pytest.raises(ForgeError, match=f"field {re.escape(field)}"):
        parse(event, payload)


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b"\xff\xfe"])
def test_body_that_is_not_a_json_object(body: bytes) -> None:
    with pytest.raises(ForgeError, match="JSON"):
        forge().parse(headers_for("issues", body), body)


# The lifecycle deliveries, as the payload builders the ``forgebot local`` commands use
# write them: each becomes its event.
HELLO = Repo(forge="local", full_name="acme/hello", default_branch="main")
REPOSITORY = webhook.repository_payload("acme/hello", "main")
ISSUE = webhook.issue_payload(3, "Add a farewell", "", ["bug"], "ada", pull=False)
PULL = webhook.pull_payload(4, "forgebot/3-add-a-farewell", "main", merged=True,
                            url="file:///forge/acme/hello/pulls/4.md")


@pytest.mark.parametrize(
    ("event", "payload", "expected"),
    [
        ("issues", webhook.issues_event("unlabeled", REPOSITORY, ISSUE, "grace", "forgebot"),
         IssueUnlabeled(repo=HELLO, number=3, label="forgebot", sender="grace",
                        labels=("bug",))),
        ("issues", webhook.issues_event("closed", REPOSITORY, ISSUE, "grace"),
         IssueClosed(repo=HELLO, number=3, sender="grace")),
        ("pull_request", webhook.pull_closed_event(REPOSITORY, PULL, "grace"),
         PullClosed(repo=HELLO, number=4, head="forgebot/3-add-a-farewell", merged=True,
                    sender="grace", url="file:///forge/acme/hello/pulls/4.md")),
        ("pull_request_review",
         webhook.review_event(REPOSITORY, PULL, 7, state="changes_requested",
                              body="Rename it.", author="grace"),
         ReviewSubmitted(repo=HELLO, number=4, state="changes_requested", body="Rename it.",
                         author="grace", review_id=7)),
        ("push",
         webhook.push_event(REPOSITORY, "refs/heads/forgebot/3-add-a-farewell", "a" * 40,
                            "b" * 40, pusher="grace",
                            commits=[{"id": "b" * 40, "added": ["x.py"], "modified": [],
                                      "removed": ["y.py"]}]),
         Pushed(repo=HELLO, ref="refs/heads/forgebot/3-add-a-farewell", before="a" * 40,
                after="b" * 40, pusher="grace", added=("x.py",), removed=("y.py",))),
    ],
    ids=["unlabeled", "closed", "pull-closed", "review", "push"],
)
def test_lifecycle_deliveries_become_their_events(
    event: str, payload: dict[str, Any], expected: object
) -> None:
    assert parse(event, payload) == expected
