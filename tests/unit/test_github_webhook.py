"""GitHub's webhooks: every captured payload becomes the expected event (or None), and the
signature check fails closed. Real payloads from tests/fixtures/webhooks/github (SOURCES.md)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from bot.config import GitHubSettings
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
from bot.forges.github import GitHubForge, webhook
from bot.forges.verify import sign_sha256

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "webhooks" / "github"
SECRET = "It's a Secret to Everybody"
DELIVERY = "72d3162e-cc78-11e3-81ab-4c9367dc0958"

HELLO = Repo("github", "Codertocat/Hello-World", "master")


def load(name: str) -> bytes:
    return (FIXTURES / f"{name}.json").read_bytes()


def headers_for(event: str, body: bytes, secret: str = SECRET) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "User-Agent": "GitHub-Hookshot/87e258b",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": DELIVERY,
        "X-Hub-Signature-256": "sha256=" + sign_sha256(secret, body),
    }


def forge(secret: str | None = SECRET) -> GitHubForge:
    return GitHubForge(GitHubSettings(webhook_secret=secret, token="t0ken"), bot_user="forgebot")


EXPECTED: list[tuple[str, str, object]] = [
    ("issues__labeled", "issues", IssueLabeled(
        repo=HELLO, number=1, title="Spelling error in the README file",
        body="It looks like you accidently spelled 'commit' with two 't's.",
        label="bug", sender="Codertocat", labels=("bug",))),
    ("issue_comment__created_issue", "issue_comment", CommentCreated(
        repo=HELLO, number=1, body="You are totally right! I'll get this fixed right away.",
        author="Codertocat", is_pull=False, comment_id=492700400)),
    ("issue_comment__created_pr", "issue_comment", CommentCreated(
        repo=Repo("github", "chhsia0/knative-route-demo", "master"), number=3, body="/build",
        author="chhsia0", is_pull=True, comment_id=546616131)),
    ("push__default_branch", "push", Pushed(
        repo=Repo("github", "binkkatal/sample_app", "master"), ref="refs/heads/master",
        before="737d38c599c1b2991664dfc6155d6bf516fcce36",
        after="fd489864e7642b48eaad6e3f155c10e46810ec72", pusher="binkkatal",
        added=(".razorops.yaml",), modified=("app/controllers/application_controller.rb",),
        removed=(), complete=True)),
    ("pull_request__closed_merged", "pull_request", PullClosed(
        repo=Repo("github", "ailisp/gcbapp-buildconfig-example", "master"), number=3,
        head="byao1276-patch-1", merged=True, sender="ailisp",
        url="https://github.com/ailisp/gcbapp-buildconfig-example/pull/3")),
    ("pull_request__closed_unmerged", "pull_request", PullClosed(
        repo=Repo("github", "Codertocat/Hello-World", "master", installation_id=1), number=2,
        head="changes", merged=False, sender="Codertocat",
        url="https://github.com/Codertocat/Hello-World/pull/2")),
    ("pull_request_review__submitted", "pull_request_review", ReviewSubmitted(
        repo=Repo("github", "Codertocat/Hello-World", "master", installation_id=1), number=2,
        state="commented", body="", author="Codertocat", review_id=237895671)),
]


def test_every_fixture_has_an_expectation() -> None:
    assert {p.stem for p in FIXTURES.glob("*.json")} == {name for name, _, _ in EXPECTED}


@pytest.mark.parametrize(("name", "event", "expected"), EXPECTED, ids=[e[0] for e in EXPECTED])
def test_fixture_becomes_the_expected_event(name: str, event: str, expected: object) -> None:
    body = load(name)
    headers = headers_for(event, body)
    github = forge()
    assert github.verify(headers, body)
    assert github.delivery_id(headers) == DELIVERY
    assert github.event_kind(headers) == event
    assert github.parse(headers, body) == expected


def rewrite(name: str, change: dict[str, Any]) -> bytes:
    payload = json.loads(load(name))
    payload.update(change)
    return json.dumps(payload).encode()


@pytest.mark.parametrize(
    ("event", "body"),
    [
        ("ping", b'{"zen": "Keep it logically awesome.", "hook_id": 1}'),
        ("issues", rewrite("issues__labeled", {"action": "reopened"})),
        ("issues", rewrite("issues__labeled", {"action": "opened"})),
        ("issue_comment", rewrite("issue_comment__created_issue", {"action": "edited"})),
        ("issue_comment", rewrite("issue_comment__created_pr", {"action": "deleted"})),
        ("pull_request", rewrite("pull_request__closed_unmerged", {"action": "synchronize"})),
        ("pull_request", rewrite("pull_request__closed_unmerged", {"action": "labeled"})),
        ("pull_request_review", rewrite("pull_request_review__submitted", {"action": "edited"})),
        ("pull_request_review_comment", load("pull_request_review__submitted")),
        ("push", rewrite("push__default_branch", {"deleted": True, "commits": []})),
        ("", load("issues__labeled")),  # no event header at all
        ("star", load("issues__labeled")),
        # Nullable in GitHub's description: no label, and a deleted account (user null).
        ("issues", rewrite("issues__labeled", {"label": None})),
        ("issues", rewrite("issues__labeled", {"action": "unlabeled", "label": None})),
        ("issue_comment", rewrite("issue_comment__created_issue", {"comment": {
            **json.loads(load("issue_comment__created_issue"))["comment"], "user": None}})),
        ("pull_request_review", rewrite("pull_request_review__submitted", {"review": {
            **json.loads(load("pull_request_review__submitted"))["review"], "user": None}})),
    ],
)
def test_deliveries_that_start_nothing_are_none(event: str, body: bytes) -> None:
    assert forge().parse(headers_for(event, body), body) is None


# The shared set has no GitHub issues/closed, issues/unlabeled or changes_requested review:
# GitHub sends one payload shape per event whatever the action, so these are the captured
# payloads with only the action (or the review state) changed (SOURCES.md, "Derived").


def test_a_removed_label_is_issue_unlabeled_with_the_labels_left() -> None:
    payload = json.loads(load("issues__labeled"))
    payload["action"] = "unlabeled"
    payload["issue"]["labels"] = []  # after the removal, the issue has none left
    body = json.dumps(payload).encode()
    assert forge().parse(headers_for("issues", body), body) == IssueUnlabeled(
        repo=HELLO, number=1, label="bug", sender="Codertocat", labels=())


def test_a_closed_issue_is_issue_closed_but_a_closed_pull_requests_issue_is_not() -> None:
    body = rewrite("issues__labeled", {"action": "closed"})
    assert forge().parse(headers_for("issues", body), body) == IssueClosed(
        repo=HELLO, number=1, sender="Codertocat")
    payload = json.loads(body)
    payload["issue"]["pull_request"] = {"url": "https://api.github.com/x"}
    body = json.dumps(payload).encode()
    assert forge().parse(headers_for("issues", body), body) is None


def test_a_review_requesting_changes_keeps_its_text_and_id() -> None:
    payload = json.loads(load("pull_request_review__submitted"))
    payload["review"].update(state="changes_requested", body="Please rename x to count.")
    body = json.dumps(payload).encode()
    event = forge().parse(headers_for("pull_request_review", body), body)
    assert event == ReviewSubmitted(
        repo=Repo("github", "Codertocat/Hello-World", "master", installation_id=1), number=2,
        state="changes_requested", body="Please rename x to count.", author="Codertocat",
        review_id=237895671)


def test_a_review_comment_is_a_commented_review_naming_its_file_and_line() -> None:
    payload = json.loads(load("pull_request_review__submitted"))
    payload["action"] = "created"
    payload["comment"] = {"id": 2961, "path": "app.py", "line": 12, "body": "Off by one.",
                          "user": {"login": "reviewer"}}
    del payload["review"]
    body = json.dumps(payload).encode()
    event = forge().parse(headers_for("pull_request_review_comment", body), body)
    assert event == ReviewSubmitted(
        repo=Repo("github", "Codertocat/Hello-World", "master", installation_id=1), number=2,
        state="commented", body="app.py:12: Off by one.", author="reviewer", review_id=2961,
        kind="comment")


def test_a_dismissed_review_starts_nothing() -> None:
    payload = json.loads(load("pull_request_review__submitted"))
    payload["review"]["state"] = "dismissed"
    body = json.dumps(payload).encode()
    assert forge().parse(headers_for("pull_request_review", body), body) is None


def test_review_states_are_lower_case_whatever_the_payload_says() -> None:
    payload = json.loads(load("pull_request_review__submitted"))
    payload["review"]["state"] = "APPROVED"
    payload["review"]["body"] = "Ship it"
    body = json.dumps(payload).encode()
    event = forge().parse(headers_for("pull_request_review", body), body)
    assert isinstance(event, ReviewSubmitted)
    assert (event.state, event.body) == ("approved", "Ship it")


def test_push_with_empty_file_lists_but_commits_is_incomplete() -> None:
    payload = json.loads(load("push__default_branch"))
    huge = copy.deepcopy(payload["commits"][0])
    huge.update(id="a" * 40, added=[], modified=[], removed=[])
    payload["commits"].append(huge)
    body = json.dumps(payload).encode()
    event = forge().parse(headers_for("push", body), body)
    assert isinstance(event, Pushed)
    assert event.complete is False
    assert event.added == (".razorops.yaml",)  # what the payload did list is kept
    assert event.to_default_branch


def test_push_file_lists_are_the_union_over_commits_without_duplicates() -> None:
    payload = json.loads(load("push__default_branch"))
    second = copy.deepcopy(payload["commits"][0])
    second.update(id="b" * 40, added=["specs/new.md"], removed=[".razorops.yaml"])
    payload["commits"].append(second)
    body = json.dumps(payload).encode()
    event = forge().parse(headers_for("push", body), body)
    assert isinstance(event, Pushed)
    assert event.added == (".razorops.yaml", "specs/new.md")
    assert event.modified == ("app/controllers/application_controller.rb",)
    assert event.removed == (".razorops.yaml",)
    assert event.complete


def test_installation_id_comes_from_the_delivery() -> None:
    body = rewrite("issues__labeled", {"installation": {"id": 4242, "node_id": "x"}})
    event = forge().parse(headers_for("issues", body), body)
    assert isinstance(event, IssueLabeled)
    assert event.repo.installation_id == 4242


@pytest.mark.parametrize(
    ("event", "body", "field"),
    [
        ("issues", b"[1, 2]", "JSON object"),
        ("issues", b"{not json", "not JSON"),
        ("issues", b"\xff\xfe", "not JSON"),
        ("issues", rewrite("issues__labeled", {"label": {"name": 5}}), "label.name"),
        ("issues", rewrite("issues__labeled", {"repository": {}}), "repository.full_name"),
        ("issue_comment", rewrite("issue_comment__created_pr", {"issue": {"number": "3"}}),
         "issue.number"),
        ("push", rewrite("push__default_branch", {"commits": {"id": 1}}), "commits"),
        ("push", rewrite("push__default_branch", {"commits": [{"added": [1]}]}),
         "commits[0].added"),
        ("pull_request", rewrite("pull_request__closed_merged", {"pull_request": {"number": 3}}),
         "pull_request.head.ref"),
        ("issues", rewrite("issues__labeled", {"installation": {"id": "1"}}), "installation.id"),
    ],
)
def test_malformed_payloads_raise_a_forge_error_naming_the_field(
    event: str, body: bytes, field: str
) -> None:
    with pytest.raises(ForgeError, match="github webhook") as caught:
        forge().parse(headers_for(event, body), body)
    assert field in str(caught.value)


# ------------------------------------------------------------------------ signatures


def test_signature_matches_githubs_published_test_vector() -> None:
    body = b"Hello, World!"
    signature = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    headers = {"X-Hub-Signature-256": signature}
    assert webhook.verify(SECRET, headers, body)
    assert forge().verify(headers, body)
    assert forge().verify({"x-hub-signature-256": signature}, body)  # stored header case


@pytest.mark.parametrize(
    ("secret", "headers"),
    [
        (None, None),  # no secret configured: fail closed
        ("", None),
        ("wrong secret", None),
        (SECRET, {"X-GitHub-Event": "issues"}),  # no signature header
        (SECRET, {"X-Hub-Signature-256": "sha256=" + "0" * 64}),
        (SECRET, {"X-Hub-Signature": "sha1=" + "0" * 40}),  # legacy SHA-1 never accepted
        (SECRET, {"X-Hub-Signature-256": sign_sha256(SECRET, b"Hello, World!")}),  # no prefix
    ],
)
def test_wrong_or_missing_secret_or_signature_is_refused(
    secret: str | None, headers: dict[str, str] | None
) -> None:
    body = b"Hello, World!"
    good = {"X-Hub-Signature-256": "sha256=" + sign_sha256(SECRET, body)}
    assert forge(secret).verify(headers if headers is not None else good, body) is False


def test_a_tampered_body_is_refused() -> None:
    body = load("issues__labeled")
    headers = headers_for("issues", body)
    assert not forge().verify(headers, body.replace(b'"bug"', b'"forgebot"'))


def test_delivery_id_and_event_are_absent_safely() -> None:
    assert forge().delivery_id({}) is None
    assert forge().event_kind({}) == ""


def test_labels_given_as_bare_names_are_read() -> None:
    payload = json.loads(load("issues__labeled"))
    payload["issue"]["labels"] = ["bug", {"name": "forgebot"}]  # the description allows both
    body = json.dumps(payload).encode()

    event = forge().parse(headers_for("issues", body), body)

    assert isinstance(event, IssueLabeled) and event.labels == ("bug", "forgebot")
