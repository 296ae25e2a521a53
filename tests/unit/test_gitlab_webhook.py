"""GitLab webhooks: token checks, delivery ids and parsing, over the real captured payloads.

The payloads are in tests/fixtures/webhooks/gitlab/ (provenance in SOURCES.md there); they
carry no headers, so each test adds ``X-Gitlab-Event`` as GitLab would.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from bot.config import GitLabSettings
from bot.errors import ForgeError
from bot.events import (
    CommentCreated,
    Event,
    IssueClosed,
    IssueLabeled,
    IssueUnlabeled,
    PullClosed,
    Pushed,
    Repo,
    ReviewSubmitted,
)
from bot.forges.gitlab import GitLabForge, webhook
from bot.forges.verify import verify_token

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "webhooks" / "gitlab"
SECRET = "gl-webhook-secret"
HOOK_OF_KIND = {
    "issue": "Issue Hook",
    "note": "Note Hook",
    "push": "Push Hook",
    "merge_request": "Merge Request Hook",
}
HELLO = Repo(forge="gitlab", full_name="gitlab-org/hello-world", default_branch="master")


def load(name: str) -> dict[str, Any]:
    payload: dict[str, Any] = json.loads((FIXTURES / name).read_bytes())
    return payload


def headers_for(payload: dict[str, Any], token: str | None = SECRET) -> dict[str, str]:
    headers = {
        "Content-Type": "application/json",
        "X-Gitlab-Event": HOOK_OF_KIND.get(payload["object_kind"], ""),
        "Idempotency-Key": "5c1ee6a1-1c2b-4b0e-9c39-0a1f4b7d2e11",
    }
    if token is not None:
        headers["X-Gitlab-Token"] = token
    return headers


def forge(secret: str | None = SECRET) -> GitLabForge:
    # No network: building the forge makes a session but sends nothing.
    return GitLabForge(GitLabSettings(token="glpat-unused", webhook_secret=secret), "forgebot")


def parse_payload(payload: dict[str, Any], event: str | None = None) -> Event | None:
    body = json.dumps(payload).encode()
    headers = headers_for(payload)
    if event is not None:
        headers["X-Gitlab-Event"] = event
    return webhook.parse(headers, body)


def parse_fixture(name: str) -> Event | None:
    body = (FIXTURES / name).read_bytes()  # the exact bytes, as they would arrive
    return forge().parse(headers_for(json.loads(body)), body)


# --------------------------------------------------------------------------- every fixture

PUSH_ADDED = (
    ".lighthouse/OWNERS", ".lighthouse/jenkins-x/devsecops.yaml", ".lighthouse/jenkins-x/qa.yaml",
    "charts/OWNERS", ".lighthouse/sonar-project.properties",
)
PUSH_REMOVED = (
    "src/main/java/com/example/repository/ConcessionRepository.java",
    "src/test/java/com/example/service/ConcessionServiceTest.java",
)

EXPECTED: dict[str, Event] = {
    "issue_hook__label_update.json": IssueLabeled(
        repo=HELLO, number=1, title="found a bug", body="website is broken", label="critical",
        sender="sytses", labels=("critical",),
    ),
    "note_hook__issue.json": CommentCreated(
        repo=HELLO, number=1, body="bump", author="sytses", is_pull=False, comment_id=50771783,
    ),
    "note_hook__merge_request.json": CommentCreated(
        repo=HELLO, number=1, body="lgtm", author="sytses", is_pull=True, comment_id=50772616,
    ),
    "merge_request_hook__merge.json": PullClosed(
        repo=HELLO, number=1, head="feature", merged=True, sender="sytses",
        url="https://gitlab.com/gitlab-org/hello-world/merge_requests/1",
    ),
    "merge_request_hook__close.json": PullClosed(
        repo=HELLO, number=1, head="feature", merged=False, sender="sytses",
        url="https://gitlab.com/gitlab-org/hello-world/merge_requests/1",
    ),
    # Closed with a label added in the same edit: the close is what counts.
    "issue_hook__close.json": IssueClosed(repo=HELLO, number=1, sender="sytses"),
    # A comment on a line of the diff is a review comment, not a conversation comment.
    "note_hook__diff_note.json": ReviewSubmitted(
        repo=HELLO, number=1, state="commented", body="README.md:1: check spelling",
        author="sytses", review_id=50772639, kind="comment",
    ),
}


def test_every_fixture_has_an_expectation() -> None:
    names = {path.name for path in FIXTURES.glob("*.json")}
    assert names == {*EXPECTED, "push_hook__default_branch.json"}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_becomes_the_expected_event(name: str) -> None:
    assert parse_fixture(name) == EXPECTED[name]


def test_push_fixture_becomes_pushed_with_the_union_of_file_lists() -> None:
    event = parse_fixture("push_hook__default_branch.json")
    assert isinstance(event, Pushed)
    assert event.repo == Repo("gitlab", "repo-org/repo-name", "master")
    assert event.ref == "refs/heads/master"
    assert event.to_default_branch
    assert event.before == "2a5e548bfc0a6b8975956a219e03caabb9e799c7"
    assert event.after == "8f784b32840472e7fda687b1c18e2bef26af768b"
    assert event.pusher == "jenkins-x-bot"
    assert event.added == PUSH_ADDED
    assert event.removed == PUSH_REMOVED
    assert len(event.modified) == len(set(event.modified)) == 21
    assert "pom.xml" in event.modified
    assert event.complete  # 14 commits listed, total_commits_count 14


def test_push_with_more_commits_than_listed_is_incomplete() -> None:
    payload = load("push_hook__default_branch.json")
    payload["total_commits_count"] = 25  # GitLab lists only the newest 20
    event = parse_payload(payload)
    assert isinstance(event, Pushed)
    assert not event.complete


def test_a_push_without_a_user_name_falls_back_to_the_id_then_the_display_name() -> None:
    """Older GitLab versions, and GitLab's own documentation example, send no
    ``user_username``."""
    payload = load("push_hook__default_branch.json")
    del payload["user_username"]
    user_id = payload["user_id"]
    by_id = parse_payload(payload)
    payload.pop("user_id", None)
    by_name = parse_payload(payload)

    assert isinstance(by_id, Pushed) and by_id.pusher == f"#{user_id}"
    assert isinstance(by_name, Pushed) and by_name.pusher == payload["user_name"]


def test_push_without_a_commit_count_is_taken_as_complete() -> None:
    payload = load("push_hook__default_branch.json")
    del payload["total_commits_count"]
    event = parse_payload(payload)
    assert isinstance(event, Pushed) and event.complete


# --------------------------------------------------------------------------- labels


def labeled_payload(previous: list[str], current: list[str]) -> dict[str, Any]:
    payload = load("issue_hook__label_update.json")
    template = payload["changes"]["labels"]["current"][0]
    payload["changes"]["labels"] = {
        "previous": [{**template, "title": title} for title in previous],
        "current": [{**template, "title": title} for title in current],
    }
    return payload


def test_several_labels_added_at_once_pick_the_trigger_label() -> None:
    payload = labeled_payload(["bug"], ["bug", "critical", "forgebot"])
    body = json.dumps(payload).encode()
    headers = headers_for(payload)

    events = webhook.parse_all(headers, body)
    assert [e.label for e in events if isinstance(e, IssueLabeled)] == ["critical", "forgebot"]

    chosen = webhook.parse(headers, body, trigger_labels={"forgebot"})
    assert isinstance(chosen, IssueLabeled)
    assert chosen.label == "forgebot"
    assert chosen.labels == ("bug", "critical", "forgebot")

    # Without trigger labels, the first added label in GitLab's order.
    first = webhook.parse(headers, body)
    assert isinstance(first, IssueLabeled) and first.label == "critical"

    settings = GitLabSettings(token="glpat-unused", webhook_secret=SECRET)
    adapter = GitLabForge(settings, "forgebot", trigger_labels=["forgebot"])
    picked = adapter.parse(headers, body)
    assert isinstance(picked, IssueLabeled) and picked.label == "forgebot"


@pytest.mark.parametrize(
    ("previous", "current"),
    [
        (["a", "b"], ["b", "a"]),  # reordered, nothing added
        ([], []),
    ],
)
def test_label_changes_that_add_nothing_start_nothing(
    previous: list[str], current: list[str]
) -> None:
    assert parse_payload(labeled_payload(previous, current)) is None


def test_a_removed_label_is_issue_unlabeled_with_the_labels_left() -> None:
    event = parse_payload(labeled_payload(["critical", "forgebot"], ["critical"]))
    assert event == IssueUnlabeled(repo=HELLO, number=1, label="forgebot", sender="sytses",
                                   labels=("critical",))


def test_a_removed_trigger_label_wins_over_another_label_added_at_once() -> None:
    payload = labeled_payload(["forgebot"], ["bug"])
    body = json.dumps(payload).encode()
    adapter = GitLabForge(GitLabSettings(token="t", webhook_secret=SECRET), "forgebot",
                          trigger_labels=("forgebot",))
    picked = adapter.parse(headers_for(payload), body)
    assert isinstance(picked, IssueUnlabeled) and picked.label == "forgebot"
    assert picked.labels == ("bug",)


# --------------------------------------------------------------------------- ignored


def _mutated(name: str, path: str, value: object) -> dict[str, Any]:
    payload = load(name)
    node = payload
    *parents, last = path.split(".")
    for key in parents:
        node = node[key]
    if value is _DELETE:
        del node[last]
    else:
        node[last] = value
    return payload


_DELETE = object()

IGNORED: list[tuple[str, str, object, str | None]] = [
    # (fixture, dotted path to change, new value or _DELETE, X-Gitlab-Event override)
    ("issue_hook__label_update.json", "changes", {"title": {"previous": "a", "current": "b"}},
     None),
    ("issue_hook__label_update.json", "object_attributes.state", "closed", None),
    ("issue_hook__label_update.json", "object_attributes.confidential", True, None),
    ("issue_hook__label_update.json", "object_kind", "issue", "Confidential Issue Hook"),
    ("note_hook__issue.json", "object_attributes.noteable_type", "Commit", None),
    ("note_hook__issue.json", "object_attributes.noteable_type", "Snippet", None),
    ("note_hook__issue.json", "object_attributes.system", True, None),
    ("note_hook__issue.json", "object_attributes.action", "update", None),
    ("note_hook__issue.json", "issue.confidential", True, None),
    ("note_hook__issue.json", "object_kind", "note", "Confidential Note Hook"),
    ("merge_request_hook__close.json", "object_attributes.action", "open", None),
    ("merge_request_hook__close.json", "object_attributes.action", "update", None),
    ("merge_request_hook__close.json", "object_attributes.action", "reopen", None),
    ("merge_request_hook__close.json", "object_attributes.action", "approval", None),
    ("merge_request_hook__close.json", "object_attributes.action", "unapproved", None),
    ("push_hook__default_branch.json", "after", "0" * 40, None),  # branch deleted
    ("push_hook__default_branch.json", "object_kind", "tag_push", "Tag Push Hook"),
    ("push_hook__default_branch.json", "object_kind", "push", "System Hook"),
    ("push_hook__default_branch.json", "object_kind", "push", "Pipeline Hook"),
    ("push_hook__default_branch.json", "object_kind", "push", ""),
]


@pytest.mark.parametrize(("name", "path", "value", "event"), IGNORED)
def test_deliveries_that_start_nothing(
    name: str, path: str, value: object, event: str | None
) -> None:
    assert parse_payload(_mutated(name, path, value), event) is None


def test_note_without_an_action_is_a_new_note() -> None:
    # Before GitLab 16.11 notes carried no action; the fixtures are of that age.
    assert "action" not in load("note_hook__merge_request.json")["object_attributes"]
    payload = _mutated("note_hook__merge_request.json", "object_attributes.action", "create")
    assert parse_payload(payload) == EXPECTED["note_hook__merge_request.json"]


def test_approved_merge_request_is_an_approving_review() -> None:
    payload = _mutated("merge_request_hook__close.json", "object_attributes.action", "approved")
    assert parse_payload(payload) == ReviewSubmitted(
        repo=HELLO, number=1, state="approved", body="", author="sytses")


def test_null_description_is_an_empty_body() -> None:
    payload = _mutated("issue_hook__label_update.json", "object_attributes.description", None)
    event = parse_payload(payload)
    assert isinstance(event, IssueLabeled) and event.body == ""


# --------------------------------------------------------------------------- malformed


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b"\xff\xfe", b'"text"'])
def test_a_body_that_is_not_a_json_object_is_a_forge_error(body: bytes) -> None:
    with pytest.raises(ForgeError, match="gitlab webhook 'Issue Hook'"):
        webhook.parse({"X-Gitlab-Event": "Issue Hook"}, body)


@pytest.mark.parametrize(
    ("name", "path", "field"),
    [
        ("issue_hook__label_update.json", "object_attributes.iid", "object_attributes.iid"),
        ("issue_hook__label_update.json", "project", "project.path_with_namespace"),
        ("note_hook__merge_request.json", "merge_request", "merge_request.iid"),
        ("note_hook__issue.json", "user", "user.username"),
        ("push_hook__default_branch.json", "ref", "ref"),
        ("merge_request_hook__merge.json", "object_attributes.source_branch",
         "object_attributes.source_branch"),
    ],
)
def test_a_missing_field_is_a_forge_error_naming_it(name: str, path: str, field: str) -> None:
    with pytest.raises(ForgeError, match=f"missing or invalid field {field}$"):
        parse_payload(_mutated(name, path, _DELETE))


def test_a_mistyped_label_is_a_forge_error() -> None:
    payload = labeled_payload([], ["forgebot"])
    payload["changes"]["labels"]["current"][0]["title"] = 7
    with pytest.raises(ForgeError, match=r"changes\.labels\.current\[0\]\.title"):
        parse_payload(payload)


# --------------------------------------------------------------------------- token


@pytest.mark.parametrize(
    ("secret", "token", "expected"),
    [
        (SECRET, SECRET, True),
        (SECRET, "wrong", False),
        (SECRET, SECRET + " ", False),
        (SECRET, SECRET[:-1], False),
        (SECRET, SECRET.upper(), False),
        (SECRET, "", False),
        (SECRET, None, False),  # header missing
        (None, SECRET, False),  # no secret configured: fail closed
        (None, None, False),
        ("", "", False),
        ("sécret-ü", "sécret-ü", True),  # non-ASCII compares as bytes
        (SECRET, "sécret-ü", False),  # and never raises
    ],
)
def test_verify_token(secret: str | None, token: str | None, expected: bool) -> None:
    assert verify_token(secret, token) is expected


def test_forge_verify_reads_the_token_header_and_fails_closed() -> None:
    payload = load("note_hook__issue.json")
    body = json.dumps(payload).encode()
    assert forge().verify(headers_for(payload), body)
    lower = {k.lower(): v for k, v in headers_for(payload).items()}
    assert forge().verify(lower, body)  # stored deliveries may have any header case
    assert not forge().verify(headers_for(payload, token="wrong"), body)
    assert not forge().verify(headers_for(payload, token=None), body)
    assert not forge(secret=None).verify(headers_for(payload), body)
    assert not forge(secret="").verify(headers_for(payload, token=""), body)


# --------------------------------------------------------------------------- ids


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Idempotency-Key": "idem", "X-Gitlab-Event-UUID": "ev", "X-Gitlab-Webhook-UUID": "wh"},
         "idem"),
        ({"X-Gitlab-Event-UUID": "ev", "X-Gitlab-Webhook-UUID": "wh"}, "ev"),
        ({"X-Gitlab-Webhook-UUID": "wh"}, "wh"),
        ({"idempotency-key": "idem"}, "idem"),
        ({"Idempotency-Key": "", "X-Gitlab-Event-UUID": "ev"}, "ev"),
        ({}, None),
    ],
)
def test_delivery_id_prefers_the_idempotency_key(
    headers: dict[str, str], expected: str | None
) -> None:
    assert forge().delivery_id(headers) == expected


def test_event_kind() -> None:
    assert forge().event_kind({"X-Gitlab-Event": "Push Hook"}) == "Push Hook"
    assert forge().event_kind({"x-gitlab-event": "Note Hook"}) == "Note Hook"
    assert forge().event_kind({}) == ""


def test_parse_does_not_mutate_or_need_the_token() -> None:
    payload = load("issue_hook__label_update.json")
    before = copy.deepcopy(payload)
    body = json.dumps(payload).encode()
    # The store drops X-Gitlab-Token before parse runs; parsing must not depend on it.
    assert webhook.parse(headers_for(payload, token=None), body) is not None
    assert payload == before
