"""Gitea/Forgejo webhooks: every captured payload becomes its event, signatures fail closed.

The payloads are the real captures in tests/fixtures/webhooks/gitea (see SOURCES.md there);
the headers are the ones Gitea sends with them.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from bot.config import GiteaSettings
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
from bot.forges.gitea import GiteaForge
from bot.forges.gitea.webhook import LabelMemory
from bot.forges.verify import sign_sha256

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "webhooks" / "gitea"
SECRET = "gitea-hook-secret"

EXAMPLE = Repo("gitea", "example/example", "master")
MY_REPO = Repo("gitea", "jcitizen/my-repo", "master")
HELLO = Repo("gitea", "gogits/hello-world", "master")


def forge(tmp_path: Path, secret: str | None = SECRET, **kwargs: Any) -> GiteaForge:
    settings = GiteaSettings(
        enabled=True, base_url="https://gitea.example", token="t0ken", webhook_secret=secret
    )
    return GiteaForge(settings, "forgebot", tmp_path / "state", **kwargs)


def body_of(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def headers_for(
    event: str, event_type: str, body: bytes, *, forgejo: bool = False, secret: str = SECRET
) -> dict[str, str]:
    """What Gitea (or Forgejo, which adds X-Forgejo-* copies) sends with ``body``."""
    signature = sign_sha256(secret, body)
    delivery = str(uuid.uuid4())
    headers = {
        "Content-Type": "application/json",
        "X-Gitea-Delivery": delivery,
        "X-Gitea-Event": event,
        "X-Gitea-Event-Type": event_type,
        "X-Gitea-Signature": signature,
        "X-Gogs-Event": event,
        "X-Hub-Signature-256": "sha256=" + signature,
    }
    if forgejo:
        headers |= {
            "X-Forgejo-Delivery": delivery,
            "X-Forgejo-Event": event,
            "X-Forgejo-Event-Type": event_type,
            "X-Forgejo-Signature": signature,
        }
    return headers


FIXTURE_TABLE: list[tuple[str, str, str, Event | None]] = [
    (
        "issues__label_updated.json", "issues", "issue_label",
        IssueLabeled(repo=EXAMPLE, number=1, title="example", body="", label="bug",
                     sender="example", labels=("bug",)),
    ),
    (
        "issue_comment__created_pr.json", "issue_comment", "pull_request_comment",
        CommentCreated(repo=EXAMPLE, number=2, body="example", author="example",
                       is_pull=True, comment_id=6),
    ),
    (
        "issue_comment__created_issue.json", "issue_comment", "issue_comment",
        CommentCreated(repo=EXAMPLE, number=1, body="example", author="example",
                       is_pull=False, comment_id=2),
    ),
    (
        "push__default_branch.json", "push", "push",
        Pushed(repo=HELLO, ref="refs/heads/master",
               before="9836a96a253cce25d17988fcf41b8c4205cf779f",
               after="4522cbcefc20728a5b72b3a86af35e608622c514", pusher="unknwon",
               modified=("README.md",), complete=True),
    ),
    (
        "pull_request__closed_merged.json", "pull_request", "pull_request",
        PullClosed(repo=MY_REPO, number=1, head="feature", merged=True, sender="jcitizen",
                   url="https://try.gitea.io/jcitizen/my-repo/pulls/1"),
    ),
    (
        "pull_request__closed_unmerged.json", "pull_request", "pull_request",
        PullClosed(repo=MY_REPO, number=1, head="feature", merged=False, sender="jcitizen",
                   url="https://try.gitea.io/jcitizen/my-repo/pulls/1"),
    ),
    (
        "pull_request__reviewed_approved.json", "pull_request_approved",
        "pull_request_review_approved",
        ReviewSubmitted(repo=MY_REPO, number=1, state="approved", body="I approve",
                        author="jcitizen"),
    ),
    (
        "issues__closed.json", "issues", "issues",
        IssueClosed(repo=HELLO, number=1, sender="unknwon"),
    ),
    # The same payloads under events or types that start nothing.
    ("issues__label_updated.json", "issue_assign", "issue_assign", None),
    ("pull_request__closed_merged.json", "pull_request_label", "pull_request_label", None),
    ("push__default_branch.json", "create", "create", None),
    ("push__default_branch.json", "repository", "repository", None),
    ("push__default_branch.json", "", "", None),
]


def test_every_shared_fixture_is_in_the_table() -> None:
    assert {case[0] for case in FIXTURE_TABLE if case[3] is not None} == {
        p.name for p in FIXTURES.glob("*.json")
    }


@pytest.mark.parametrize("forgejo", [False, True], ids=["gitea", "forgejo"])
@pytest.mark.parametrize(
    ("name", "event", "event_type", "expected"),
    FIXTURE_TABLE,
    ids=[f"{c[0]}-{c[1] or 'none'}" for c in FIXTURE_TABLE],
)
def test_fixture_becomes_its_event(
    tmp_path: Path, name: str, event: str, event_type: str, expected: Event | None,
    forgejo: bool,
) -> None:
    gitea = forge(tmp_path)
    body = body_of(name)
    headers = headers_for(event, event_type, body, forgejo=forgejo)
    assert gitea.verify(headers, body)
    assert gitea.parse(headers, body) == expected


def variant(name: str, change: dict[str, Any]) -> bytes:
    """The fixture with top-level keys or dotted paths replaced."""
    payload = json.loads(body_of(name))
    for path, value in change.items():
        node = payload
        *parents, last = path.split(".")
        for key in parents:
            node = node[key]
        node[last] = value
    return json.dumps(payload).encode()


VARIANTS: list[tuple[str, str, str, dict[str, Any], Event | None]] = [
    ("issue_comment__created_pr.json", "issue_comment", "issue_comment",
     {"action": "edited"}, None),
    ("issue_comment__created_issue.json", "issue_comment", "issue_comment",
     {"action": "deleted"}, None),
    ("pull_request__closed_merged.json", "pull_request", "pull_request",
     {"action": "opened"}, None),
    ("pull_request__closed_merged.json", "pull_request", "pull_request",
     {"action": "reopened"}, None),
    # Every label cleared on an issue never seen before: which one went is unknown.
    ("issues__label_updated.json", "issues", "issue_label", {"action": "label_cleared"},
     IssueUnlabeled(repo=EXAMPLE, number=1, label="", sender="example", labels=())),
    ("issues__label_updated.json", "issues", "issues", {"action": "opened"}, None),
    ("push__default_branch.json", "push", "push", {"after": "0" * 40}, None),  # branch deleted
    ("pull_request__reviewed_approved.json", "pull_request_approved",
     "pull_request_review_approved", {"action": "review_requested"}, None),
    # Older payloads: the PR comment told only by issue.pull_request, no is_pull field.
    ("issue_comment__created_pr.json", "issue_comment", "",
     {"is_pull": None},
     CommentCreated(repo=EXAMPLE, number=2, body="example", author="example",
                    is_pull=True, comment_id=6)),
    ("pull_request__reviewed_approved.json", "pull_request_rejected",
     "pull_request_review_rejected",
     {"review.type": "pull_request_review_rejected", "review.content": "needs work"},
     ReviewSubmitted(repo=MY_REPO, number=1, state="changes_requested", body="needs work",
                     author="jcitizen")),
    ("pull_request__reviewed_approved.json", "pull_request_comment",
     "pull_request_review_comment",
     {"review.type": "pull_request_review_comment", "review.content": "nit"},
     ReviewSubmitted(repo=MY_REPO, number=1, state="commented", body="nit",
                     author="jcitizen")),
    # A newer push payload says how many commits there were; 7 > the 1 it lists.
    ("push__default_branch.json", "push", "push", {"total_commits": 7},
     Pushed(repo=HELLO, ref="refs/heads/master",
            before="9836a96a253cce25d17988fcf41b8c4205cf779f",
            after="4522cbcefc20728a5b72b3a86af35e608622c514", pusher="unknwon",
            modified=("README.md",), complete=False)),
]


@pytest.mark.parametrize(
    ("name", "event", "event_type", "change", "expected"),
    VARIANTS,
    ids=[f"{v[0]}-{'-'.join(f'{k}={v}' for k, v in v[3].items())}"[:80] for v in VARIANTS],
)
def test_variants(
    tmp_path: Path, name: str, event: str, event_type: str, change: dict[str, Any],
    expected: Event | None,
) -> None:
    body = variant(name, change)
    assert forge(tmp_path).parse(headers_for(event, event_type, body), body) == expected


def test_a_push_lists_every_file_once_across_commits(tmp_path: Path) -> None:
    payload = json.loads(body_of("push__default_branch.json"))
    second = dict(payload["commits"][0], added=["a.py"], modified=["README.md", "b.py"],
                  removed=["old.txt"])
    payload["commits"].append(second)
    body = json.dumps(payload).encode()
    event = forge(tmp_path).parse(headers_for("push", "push", body), body)
    assert isinstance(event, Pushed)
    assert (event.added, event.modified, event.removed) == (
        ("a.py",), ("README.md", "b.py"), ("old.txt",)
    )
    assert event.to_default_branch


# --------------------------------------------------------------------------- labels


def labeled(labels: list[str]) -> bytes:
    return variant(
        "issues__label_updated.json",
        {"issue.labels": [{"id": i, "name": n} for i, n in enumerate(labels, 1)]},
    )


def deliver(gitea: GiteaForge, body: bytes, delivery: str | None = None) -> Event | None:
    headers = headers_for("issues", "issue_label", body)
    if delivery is not None:
        headers["X-Gitea-Delivery"] = delivery
    return gitea.parse(headers, body)


def label_of(event: Event | None) -> str | None:
    assert event is None or isinstance(event, IssueLabeled)
    return None if event is None else event.label


def test_the_added_label_is_the_difference_with_the_last_seen_set(tmp_path: Path) -> None:
    gitea = forge(tmp_path)
    assert label_of(deliver(gitea, labeled(["bug"]))) == "bug"  # first seen: all are added
    assert label_of(deliver(gitea, labeled(["bug", "forgebot"]))) == "forgebot"
    assert label_of(deliver(gitea, labeled(["forgebot", "docs"]))) == "docs"


def test_a_removed_label_is_the_difference_the_other_way(tmp_path: Path) -> None:
    gitea = forge(tmp_path, prefer_labels=["forgebot"])
    deliver(gitea, labeled(["bug", "forgebot"]))
    assert deliver(gitea, labeled(["bug"])) == IssueUnlabeled(
        repo=EXAMPLE, number=1, label="forgebot", sender="example", labels=("bug",))
    # A trigger label removed while another is added: the removal is what matters.
    deliver(gitea, labeled(["forgebot"]))
    assert deliver(gitea, labeled(["docs"])) == IssueUnlabeled(
        repo=EXAMPLE, number=1, label="forgebot", sender="example", labels=("docs",))
    # Cleared: the last set seen names what went.
    cleared = variant("issues__label_updated.json", {"action": "label_cleared"})
    assert deliver(gitea, cleared) == IssueUnlabeled(
        repo=EXAMPLE, number=1, label="docs", sender="example", labels=())


def test_a_replayed_delivery_gives_the_same_event(tmp_path: Path) -> None:
    gitea = forge(tmp_path)
    deliver(gitea, labeled(["bug"]), "d1")
    first = deliver(gitea, labeled(["bug", "forgebot"]), "d2")
    again = deliver(gitea, labeled(["bug", "forgebot"]), "d2")
    assert label_of(first) == label_of(again) == "forgebot"


def test_the_memory_survives_a_restart_and_is_shared_by_adapters(tmp_path: Path) -> None:
    deliver(forge(tmp_path), labeled(["bug"]))
    assert label_of(deliver(forge(tmp_path), labeled(["bug", "forgebot"]))) == "forgebot"


def test_a_damaged_memory_falls_back_to_all_labels_added(tmp_path: Path) -> None:
    deliver(forge(tmp_path), labeled(["bug"]))
    (tmp_path / "state" / "gitea-labels.json").write_text("{not json")
    assert label_of(deliver(forge(tmp_path), labeled(["bug"]))) == "bug"


def test_a_batch_of_labels_reports_a_preferred_one(tmp_path: Path) -> None:
    plain = forge(tmp_path / "a")
    assert label_of(deliver(plain, labeled(["bug", "forgebot"]))) == "bug"
    preferring = forge(tmp_path / "b", prefer_labels=["forgebot"])
    assert label_of(deliver(preferring, labeled(["bug", "forgebot"]))) == "forgebot"


def test_the_memory_in_this_process_only() -> None:
    memory = LabelMemory(None)
    assert memory.added("o/r#1", "d1", ("a",)) == ("a",)
    assert memory.added("o/r#1", "d2", ("a", "b")) == ("b",)
    assert memory.added("o/r#2", "d3", ("a",)) == ("a",)


def test_the_memory_forgets_the_oldest_issues(tmp_path: Path) -> None:
    memory = LabelMemory(tmp_path)
    memory.MAX_ISSUES = 2  # type: ignore[misc]
    for n in (1, 2, 3):
        memory.added(f"o/r#{n}", None, ("a",))
    assert memory.added("o/r#3", None, ("a",)) == ()  # still known
    assert memory.added("o/r#1", None, ("a",)) == ("a",)  # forgotten: all added again


# --------------------------------------------------------------------------- bad input


def test_bad_bodies_are_forge_errors(tmp_path: Path) -> None:
    gitea = forge(tmp_path)
    for body, match in [
        (b"not json", "not JSON"),
        (b"[1, 2]", "JSON object"),
        (b"payload=%7B%7D", "application/json"),
    ]:
        with pytest.raises(ForgeError, match=match):
            gitea.parse(headers_for("push", "push", body), body)


def test_a_missing_field_is_named(tmp_path: Path) -> None:
    body = variant("pull_request__closed_merged.json", {"pull_request.head": None})
    with pytest.raises(ForgeError, match=r"pull_request\.head\.ref"):
        forge(tmp_path).parse(headers_for("pull_request", "pull_request", body), body)


# --------------------------------------------------------------------------- verify


BODY = body_of("push__default_branch.json")
GOOD = sign_sha256(SECRET, BODY)


@pytest.mark.parametrize(
    ("secret", "headers", "body", "expected"),
    [
        (SECRET, {"X-Gitea-Signature": GOOD}, BODY, True),
        (SECRET, {"x-gitea-signature": GOOD.upper()}, BODY, True),
        (SECRET, {"X-Forgejo-Signature": GOOD, "X-Gitea-Signature": GOOD}, BODY, True),
        (SECRET, {"X-Forgejo-Signature": GOOD}, BODY, True),
        (SECRET, {"X-Gitea-Signature": "0" * 64}, BODY, False),  # wrong
        (SECRET, {"X-Gitea-Signature": sign_sha256("other", BODY)}, BODY, False),
        (SECRET, {"X-Gitea-Signature": GOOD}, BODY + b" ", False),  # tampered body
        (SECRET, {"X-Gitea-Signature": "sha256=" + GOOD}, BODY, False),  # Gitea has no prefix
        (SECRET, {"X-Hub-Signature-256": "sha256=" + GOOD}, BODY, False),  # not ours to read
        (SECRET, {"X-Gitea-Signature": ""}, BODY, False),  # sent empty: no secret on Gitea
        (SECRET, {}, BODY, False),
        (SECRET, {"X-Forgejo-Signature": "0" * 64, "X-Gitea-Signature": GOOD}, BODY, False),
        (None, {"X-Gitea-Signature": GOOD}, BODY, False),  # no secret here: fail closed
        ("", {"X-Gitea-Signature": sign_sha256("", BODY)}, BODY, False),
    ],
)
def test_verify(
    tmp_path: Path, secret: str | None, headers: dict[str, str], body: bytes, expected: bool
) -> None:
    assert forge(tmp_path, secret=secret).verify(headers, body) is expected


def test_delivery_id_and_event_kind(tmp_path: Path) -> None:
    gitea = forge(tmp_path)
    assert gitea.delivery_id({"X-Gitea-Delivery": "g-1"}) == "g-1"
    assert gitea.delivery_id({"x-forgejo-delivery": "f-1", "X-Gitea-Delivery": "f-1"}) == "f-1"
    assert gitea.delivery_id({}) is None
    assert gitea.event_kind({"X-Gitea-Event": "issues", "X-Gitea-Event-Type": "issue_label"}) == (
        "issue_label"
    )
    assert gitea.event_kind({"X-Forgejo-Event": "push"}) == "push"
    assert gitea.event_kind({}) == ""
