"""Gitea and Forgejo webhooks: verification, ids and parsing into our events.

Headers (Gitea ``services/webhook/deliver.go``; Forgejo adds ``X-Forgejo-*`` copies with the
same values): ``X-Gitea-Signature`` is the hex HMAC-SHA256 of the raw body (no prefix),
``X-Gitea-Delivery`` the delivery's uuid, ``X-Gitea-Event`` the coarse event and
``X-Gitea-Event-Type`` the fine one. Handled (``X-Gitea-Event`` / ``action``):

- ``issues`` / ``label_updated`` → :class:`IssueLabeled` or :class:`IssueUnlabeled`. Gitea
  sends only the full current label set, never the label that changed, so
  :class:`LabelMemory` remembers the last set seen per issue and the difference names the
  added (or removed) label. ``label_cleared`` (every label removed) → :class:`IssueUnlabeled`.
- ``issues`` / ``closed`` → :class:`IssueClosed`.
- ``issue_comment`` / ``created`` → :class:`CommentCreated` (``is_pull`` from the payload's
  ``is_pull``, ``issue.pull_request`` or the ``pull_request_comment`` event type).
- ``push`` → :class:`Pushed` (not for a deleted branch).
- ``pull_request`` / ``closed`` → :class:`PullClosed` (``pull_request.merged`` tells).
- ``pull_request_approved|_rejected|_comment`` / ``reviewed`` → :class:`ReviewSubmitted`.
- ``status`` (a commit status of the forge's CI, success or failure) → :class:`ChecksCompleted`.

Everything else starts nothing (None).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from bot.errors import ForgeError
from bot.events import (
    ChecksCompleted,
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
from bot.forges.gitea.payload import Fields
from bot.forges.verify import get_header, verify_hmac_sha256

FORGE = "gitea"

# Forgejo first: it sends both families with identical values; Gitea sends only its own.
SIGNATURE_HEADERS = ("X-Forgejo-Signature", "X-Gitea-Signature")
DELIVERY_HEADERS = ("X-Forgejo-Delivery", "X-Gitea-Delivery")
EVENT_HEADERS = ("X-Forgejo-Event", "X-Gitea-Event")
EVENT_TYPE_HEADERS = ("X-Forgejo-Event-Type", "X-Gitea-Event-Type")

ZERO_SHA = "0" * 40
# Gitea cuts a push payload's commits to [ui] FEED_MAX_COMMIT_NUM (default 5) before the
# webhook is built; payloads without total_commits (before 1.17 or so) cannot say more.
FEED_MAX_COMMIT_NUM = 5

REVIEW_STATES = {
    "pull_request_approved": "approved",
    "pull_request_rejected": "changes_requested",
    "pull_request_comment": "commented",
    "pull_request_review_approved": "approved",
    "pull_request_review_rejected": "changes_requested",
    "pull_request_review_comment": "commented",
}


# --------------------------------------------------------------------------- headers


def _first_header(headers: Mapping[str, str], names: tuple[str, ...]) -> str | None:
    for name in names:
        value = get_header(headers, name)
        if value:
            return value
    return None


def verify(secret: str | None, headers: Mapping[str, str], body: bytes) -> bool:
    """True when ``X-Forgejo-Signature`` / ``X-Gitea-Signature`` signs ``body`` (fail-closed)."""
    signature = _first_header(headers, SIGNATURE_HEADERS)
    return verify_hmac_sha256(secret, body, signature, prefix="")


def delivery_id(headers: Mapping[str, str]) -> str | None:
    """``X-Forgejo-Delivery`` or ``X-Gitea-Delivery``; the same on a redelivery."""
    return _first_header(headers, DELIVERY_HEADERS)


def event_kind(headers: Mapping[str, str]) -> str:
    """The fine event type (``issue_label``, ``pull_request_comment``...), else the coarse
    event, else ``""``."""
    return _first_header(headers, EVENT_TYPE_HEADERS) or _first_header(headers, EVENT_HEADERS) or ""


# --------------------------------------------------------------------------- labels


class LabelMemory:
    """The last label set seen per (repository, issue), in one JSON file.

    Gitea's ``label_updated`` carries only the new set of labels, so the added label is the
    difference with the set seen before. The first delivery seen for an issue has nothing to
    compare with, so every label it carries counts as added: at worst this reports a trigger
    label that was added earlier, and the planner makes at most one job per issue, so no work
    is done twice (an issue that carried the trigger label before the bot was installed does
    start a job at its first label change: that is the price of having no history).

    A re-parse of the same delivery (a replay, a crash before it was marked) gives the same
    answer: each entry keeps the set before the last delivery and that delivery's id. The
    file is locked (``flock``) and replaced atomically, so worker processes on one host can
    share it; without a folder, the memory lives in this process only.
    """

    MAX_ISSUES = 10_000  # oldest entries are dropped past this: they fall back as above

    def __init__(self, folder: Path | None) -> None:
        self._path = folder / "gitea-labels.json" if folder is not None else None
        self._memory: dict[str, dict[str, object]] = {}

    def added(self, key: str, delivery: str | None, current: tuple[str, ...]) -> tuple[str, ...]:
        """Record ``current`` for ``key`` and return the labels it has that were not there."""
        return self.changes(key, delivery, current)[0]

    def changes(
        self, key: str, delivery: str | None, current: tuple[str, ...]
    ) -> tuple[tuple[str, ...], tuple[str, ...] | None]:
        """Record ``current`` for ``key``; return the labels added and the labels removed
        since the set seen before (removed is None when there is no set to compare with:
        then every current label counts as added)."""
        with self._entries() as entries:
            entry = entries.pop(key, None)
            if entry is not None and delivery is not None and entry.get("delivery") == delivery:
                before = _names(entry.get("before"))  # the same delivery again
            else:
                before = _names(entry.get("labels")) if entry is not None else None
            entries[key] = {"labels": list(current), "before": before, "delivery": delivery}
            while len(entries) > self.MAX_ISSUES:
                entries.pop(next(iter(entries)))
        if before is None:
            return current, None
        return (tuple(label for label in current if label not in before),
                tuple(label for label in before if label not in current))

    @contextlib.contextmanager
    def _entries(self) -> Iterator[dict[str, dict[str, object]]]:
        if self._path is None:
            yield self._memory
            return
        self._path.parent.mkdir(parents=True, exist_ok=True)
        with open(self._path.with_suffix(".lock"), "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            entries = self._load()
            yield entries
            self._save(entries)

    def _load(self) -> dict[str, dict[str, object]]:
        assert self._path is not None
        try:
            data = json.loads(self._path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (ValueError, UnicodeDecodeError):
            return {}  # a damaged memory only costs the first-seen fallback
        issues = data.get("issues") if isinstance(data, dict) else None
        if not isinstance(issues, dict):
            return {}
        return {str(k): v for k, v in issues.items() if isinstance(v, dict)}

    def _save(self, entries: dict[str, dict[str, object]]) -> None:
        assert self._path is not None
        fd, tmp = tempfile.mkstemp(dir=self._path.parent, prefix=".gitea-labels-")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump({"version": 1, "issues": entries}, out)
            os.replace(tmp, self._path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise


def _names(value: object) -> list[str] | None:
    if not isinstance(value, list):
        return None
    return [str(v) for v in value]


# --------------------------------------------------------------------------- parsing


@dataclass(frozen=True)
class _Delivery:
    fields: Fields
    action: str
    event: str
    event_type: str
    delivery: str | None
    labels: LabelMemory
    prefer: Collection[str]


def parse(
    headers: Mapping[str, str],
    body: bytes,
    labels: LabelMemory,
    prefer: Collection[str] = (),
) -> Event | None:
    """The normalised event, or None when the delivery starts nothing.

    ``prefer`` lists labels to report first when one delivery adds several (Gitea's UI can
    apply a batch of labels in one change). Raises ``ForgeError`` for a body that is not a
    JSON object or misses a field the event needs.
    """
    event = _first_header(headers, EVENT_HEADERS) or ""
    if body.startswith(b"payload="):
        raise ForgeError(
            f"gitea webhook '{event}': form-encoded body; set the webhook's "
            "content type to application/json"
        )
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise ForgeError(f"gitea webhook '{event}': the body is not JSON") from exc
    fields = Fields(data, f"gitea webhook '{event}'")
    handler = _HANDLERS.get(event)
    if handler is None:
        return None
    return handler(
        _Delivery(
            fields=fields,
            action=fields.text("action", default=""),
            event=event,
            event_type=_first_header(headers, EVENT_TYPE_HEADERS) or "",
            delivery=delivery_id(headers),
            labels=labels,
            prefer=prefer,
        )
    )


def _repo(fields: Fields) -> Repo:
    return Repo(
        forge=FORGE,
        full_name=fields.text("repository.full_name"),
        default_branch=fields.text("repository.default_branch", default="") or "main",
    )


def _number(fields: Fields, obj: str) -> int:
    """``<obj>.number``, or the top-level ``number`` some payloads carry instead."""
    if fields.find(f"{obj}.number") is not None:
        return fields.integer(f"{obj}.number")
    return fields.integer("number")


def _issues(d: _Delivery) -> Event | None:
    """An ``issues`` delivery: closed, or its labels changed."""
    fields = d.fields
    # A pull request's labels arrive as a pull_request event; this guards old versions.
    if fields.find("issue.pull_request") is not None:
        return None
    repo = _repo(fields)
    number = _number(fields, "issue")
    if d.action == "closed":
        return IssueClosed(repo=repo, number=number, sender=fields.login("sender"))
    if d.action not in ("label_updated", "label_cleared"):
        return None
    # label_cleared payloads may still list the labels as they were before the change.
    current = () if d.action == "label_cleared" else fields.names("issue.labels")
    added, removed = d.labels.changes(f"{repo.full_name}#{number}", d.delivery, current)
    wanted_added = next((name for name in added if name in d.prefer), None)
    wanted_removed = next((name for name in removed or () if name in d.prefer), None)
    if wanted_added is not None or (added and wanted_removed is None):
        return IssueLabeled(
            repo=repo,
            number=number,
            title=fields.text("issue.title"),
            body=fields.text("issue.body", default=""),
            label=wanted_added or added[0],
            sender=fields.login("sender"),
            labels=current,
        )
    if removed or (removed is None and d.action == "label_cleared"):
        # With no memory of the issue, a clear cannot name the label: "" and no labels left.
        label = wanted_removed or (removed[0] if removed else "")
        return IssueUnlabeled(repo=repo, number=number, label=label,
                              sender=fields.login("sender"), labels=current)
    return None


def _comment_created(d: _Delivery) -> Event | None:
    fields = d.fields
    if d.action != "created":
        return None
    is_pull = (
        fields.flag("is_pull") is True
        or fields.find("issue.pull_request") is not None
        or d.event_type == "pull_request_comment"
    )
    comment_id = fields.find("comment.id")
    return CommentCreated(
        repo=_repo(fields),
        number=fields.integer("issue.number"),
        body=fields.text("comment.body", default=""),
        author=fields.login("comment.user"),
        is_pull=is_pull,
        comment_id=comment_id if isinstance(comment_id, int) else None,
    )


def _pushed(d: _Delivery) -> Event | None:
    fields = d.fields
    after = fields.text("after")
    if after == ZERO_SHA:
        return None  # a deleted branch has nothing to build
    commits = fields.objects("commits")
    total = fields.find("total_commits")
    if isinstance(total, int):
        complete = total == len(commits)
    else:  # an old payload: only a list shorter than Gitea's cut is surely whole
        complete = len(commits) < FEED_MAX_COMMIT_NUM
    pusher = "pusher" if fields.find("pusher") is not None else "sender"
    return Pushed(
        repo=_repo(fields),
        ref=fields.text("ref"),
        before=fields.text("before"),
        after=after,
        pusher=fields.login(pusher),
        added=_union(commits, "added"),
        modified=_union(commits, "modified"),
        removed=_union(commits, "removed"),
        complete=complete,
    )


def _union(commits: list[Fields], key: str) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for commit in commits:
        seen.update(dict.fromkeys(commit.strings(key)))
    return tuple(seen)


def _pull_closed(d: _Delivery) -> Event | None:
    fields = d.fields
    if d.action != "closed":
        return None
    return PullClosed(
        repo=_repo(fields),
        number=_number(fields, "pull_request"),
        head=fields.text("pull_request.head.ref"),
        merged=fields.flag("pull_request.merged") is True,
        sender=fields.login("sender"),
        url=fields.text("pull_request.html_url", default=""),
    )


def _reviewed(d: _Delivery) -> Event | None:
    fields = d.fields
    if d.action != "reviewed":
        return None
    state = REVIEW_STATES.get(fields.text("review.type", default="")) or REVIEW_STATES[d.event]
    return ReviewSubmitted(
        repo=_repo(fields),
        number=_number(fields, "pull_request"),
        state=state,
        body=fields.text("review.content", default=""),
        author=fields.login("sender"),
    )


_STATUS_STATES = {"success": "success", "failure": "failure", "error": "failure"}


def _status(d: _Delivery) -> Event | None:
    """A commit status (``status``, Gitea 1.23+ ``CommitStatusPayload``): it names only the
    commit, no branch. Pending and warning states start nothing."""
    fields = d.fields
    state = _STATUS_STATES.get(fields.text("state", default=""))
    if state is None:
        return None
    return ChecksCompleted(
        repo=_repo(fields),
        sha=fields.text("sha"),
        state=state,
        name=fields.text("context", default="") or "status",
    )


# X-Gitea-Event -> handler; each handler checks the action and may still answer None.
_HANDLERS: dict[str, Callable[[_Delivery], Event | None]] = {
    "issues": _issues,
    "issue_comment": _comment_created,
    "push": _pushed,
    "pull_request": _pull_closed,
    "pull_request_approved": _reviewed,
    "pull_request_rejected": _reviewed,
    "pull_request_comment": _reviewed,  # a review's comment, not a conversation comment
    "status": _status,
}
