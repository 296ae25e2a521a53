"""The local forge's webhooks: our own format, modelled on GitHub's.

Headers: ``X-Forgebot-Event`` (``issues``, ``issue_comment``, ``pull_request``,
``pull_request_review``, ``push``), ``X-Forgebot-Delivery`` (a uuid4),
``X-Forgebot-Signature-256: sha256=<hex HMAC-SHA256(secret, raw body)>``.
Bodies carry ``action``, ``repository {full_name, default_branch}``, ``issue {number,
title, body, labels[{name}], user{login}, pull_request?}``, ``label {name}``,
``comment {id, body, user{login}}``, ``pull_request {number, head{ref}, base{ref},
merged}``, ``review {id, state, body, user{login}}`` and ``sender {login}``; a push carries
``ref``, ``before``, ``after``, ``pusher {name}`` and ``commits[{id, added, modified,
removed}]`` instead. Handled: ``issues`` ``labeled``/``unlabeled``/``closed``,
``issue_comment`` ``created``, ``pull_request`` ``closed``, ``pull_request_review``
``submitted``, ``push`` and ``status`` (``sha``, ``context``, ``state``, ``description``,
``branches[{name}]``: a CI's verdict, from ``forgebot local check``).

This module both reads deliveries (verify, parse) and writes them (the payload
builders the ``forgebot local`` commands use), so the format is defined in one place.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from typing import Any

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
from bot.forges.payload import Fields, load_object, where
from bot.forges.verify import get_header, sign_sha256, verify_hmac_sha256

FORGE = "local"
EVENT_HEADER = "X-Forgebot-Event"
DELIVERY_HEADER = "X-Forgebot-Delivery"
SIGNATURE_HEADER = "X-Forgebot-Signature-256"

Payload = dict[str, Any]


# ----------------------------------------------------------------------- reading


def verify(secret: str | None, headers: Mapping[str, str], body: bytes) -> bool:
    """True when the signature header matches the body under ``secret`` (fail-closed)."""
    return verify_hmac_sha256(secret, body, get_header(headers, SIGNATURE_HEADER))


def delivery_id(headers: Mapping[str, str]) -> str | None:
    """The ``X-Forgebot-Delivery`` id, if sent."""
    return get_header(headers, DELIVERY_HEADER) or None


def event_kind(headers: Mapping[str, str]) -> str:
    """The ``X-Forgebot-Event`` name, or ``""``."""
    return get_header(headers, EVENT_HEADER) or ""


def parse(headers: Mapping[str, str], body: bytes) -> Event | None:
    """The normalised event, or None for an event or action that starts nothing.

    Raises ``ForgeError`` for a body that is not a JSON object, or misses a field the
    event needs (the message names the field).
    """
    kind = event_kind(headers)
    payload = load_object(body, f"local webhook '{kind}'")
    action = payload.get("action", "")
    handler = _HANDLERS.get((kind, str(action)))
    return handler(Fields(payload, where("local", kind, action))) if handler else None


def _repo(fields: Fields) -> Repo:
    branch = fields.text("repository.default_branch", optional=True) or "main"
    return Repo(forge=FORGE, full_name=fields.text("repository.full_name"), default_branch=branch)


def _labeled(fields: Fields) -> IssueLabeled:
    return IssueLabeled(
        repo=_repo(fields),
        number=fields.integer("issue.number"),
        title=fields.text("issue.title"),
        body=fields.text("issue.body", optional=True),
        label=fields.text("label.name"),
        sender=fields.text("sender.login"),
        labels=fields.names("issue.labels", required=True),
    )


def _unlabeled(fields: Fields) -> IssueUnlabeled:
    return IssueUnlabeled(
        repo=_repo(fields),
        number=fields.integer("issue.number"),
        label=fields.text("label.name"),
        sender=fields.text("sender.login"),
        labels=fields.names("issue.labels", required=True),
    )


def _issue_closed(fields: Fields) -> IssueClosed:
    return IssueClosed(repo=_repo(fields), number=fields.integer("issue.number"),
                       sender=fields.text("sender.login"))


def _comment_created(fields: Fields) -> CommentCreated:
    return CommentCreated(
        repo=_repo(fields),
        number=fields.integer("issue.number"),
        body=fields.text("comment.body"),
        author=fields.text("comment.user.login"),
        is_pull=fields.find("issue.pull_request") is not None,
        comment_id=fields.optional_integer("comment.id"),
    )


def _pull_closed(fields: Fields) -> PullClosed:
    return PullClosed(
        repo=_repo(fields),
        number=fields.integer("pull_request.number"),
        head=fields.text("pull_request.head.ref"),
        merged=fields.find("pull_request.merged") is True,
        sender=fields.text("sender.login"),
        url=fields.text("pull_request.url", optional=True),
    )


def _reviewed(fields: Fields) -> ReviewSubmitted:
    return ReviewSubmitted(
        repo=_repo(fields),
        number=fields.integer("pull_request.number"),
        state=fields.text("review.state"),
        body=fields.text("review.body", optional=True),
        author=fields.text("review.user.login"),
        review_id=fields.optional_integer("review.id"),
    )


def _pushed(fields: Fields) -> Pushed:
    commits = fields.items("commits")

    def union(key: str) -> tuple[str, ...]:
        paths: dict[str, None] = {}
        for index, commit in enumerate(commits):
            paths.update(dict.fromkeys(fields.strings(commit, key, f"commits[{index}]")))
        return tuple(paths)

    return Pushed(
        repo=_repo(fields),
        ref=fields.text("ref"),
        before=fields.text("before"),
        after=fields.text("after"),
        pusher=fields.text("pusher.name"),
        added=union("added"),
        modified=union("modified"),
        removed=union("removed"),
    )


# (event header, action) -> handler; everything else starts nothing.
def _status(fields: Fields) -> Event | None:
    """A CI status of a commit (``forgebot local check``): success or failure (``error``
    counts as failure); pending starts nothing."""
    state = {"success": "success", "failure": "failure", "error": "failure"}.get(
        fields.text("state"))
    if state is None:
        return None
    return ChecksCompleted(repo=_repo(fields), sha=fields.text("sha"), state=state,
                           name=fields.text("context"), branches=fields.names("branches"))


_HANDLERS: dict[tuple[str, str], Callable[[Fields], Event | None]] = {
    ("issues", "labeled"): _labeled,
    ("issues", "unlabeled"): _unlabeled,
    ("issues", "closed"): _issue_closed,
    ("issue_comment", "created"): _comment_created,
    ("pull_request", "closed"): _pull_closed,
    ("pull_request_review", "submitted"): _reviewed,
    ("push", ""): _pushed,
    ("status", ""): _status,
}


# ----------------------------------------------------------------------- writing


def repository_payload(full_name: str, default_branch: str) -> Payload:
    """The ``repository`` object of every delivery."""
    return {"full_name": full_name, "default_branch": default_branch}


def issue_payload(
    number: int, title: str, body: str, labels: list[str], author: str, *, pull: bool
) -> Payload:
    """The ``issue`` object; a pull request carries a ``pull_request`` key, as on GitHub."""
    issue: Payload = {
        "number": number,
        "title": title,
        "body": body,
        "labels": [{"name": name} for name in labels],
        "user": {"login": author},
    }
    if pull:
        issue["pull_request"] = {"number": number}
    return issue


def issues_event(
    action: str, repository: Payload, issue: Payload, sender: str, label: str | None = None
) -> Payload:
    """The body of an ``issues`` delivery (``opened``, ``labeled``)."""
    payload: Payload = {"action": action, "repository": repository, "issue": issue}
    if label is not None:
        payload["label"] = {"name": label}
    payload["sender"] = {"login": sender}
    return payload


def comment_event(
    repository: Payload, issue: Payload, body: str, author: str, comment_id: int | None = None
) -> Payload:
    """The body of an ``issue_comment`` / ``created`` delivery."""
    comment: Payload = {"body": body, "user": {"login": author}}
    if comment_id is not None:
        comment["id"] = comment_id
    return {
        "action": "created",
        "repository": repository,
        "issue": issue,
        "comment": comment,
        "sender": {"login": author},
    }


def pull_payload(number: int, head: str, base: str, *, merged: bool, url: str = "") -> Payload:
    """The ``pull_request`` object of ``pull_request`` and review deliveries."""
    return {"number": number, "head": {"ref": head}, "base": {"ref": base}, "merged": merged,
            "url": url}


def pull_closed_event(repository: Payload, pull: Payload, sender: str) -> Payload:
    """The body of a ``pull_request`` / ``closed`` delivery (``pull.merged`` tells which)."""
    return {"action": "closed", "repository": repository, "pull_request": pull,
            "sender": {"login": sender}}


def review_event(
    repository: Payload, pull: Payload, review_id: int, *, state: str, body: str, author: str
) -> Payload:
    """The body of a ``pull_request_review`` / ``submitted`` delivery."""
    return {
        "action": "submitted",
        "repository": repository,
        "pull_request": pull,
        "review": {"id": review_id, "state": state, "body": body, "user": {"login": author}},
        "sender": {"login": author},
    }


def push_event(
    repository: Payload, ref: str, before: str, after: str, *, pusher: str,
    commits: list[Payload],
) -> Payload:
    """The body of a ``push`` delivery; ``commits`` carry ``id``, ``added``, ``modified``
    and ``removed``."""
    return {"ref": ref, "before": before, "after": after, "repository": repository,
            "pusher": {"name": pusher}, "commits": commits, "sender": {"login": pusher}}


def status_event(repository: Payload, sha: str, *, context: str, state: str,
                 description: str, branch: str, sender: str) -> Payload:
    """The body of a ``status`` delivery: GitHub's shape, a CI's verdict on one commit."""
    return {"sha": sha, "context": context, "state": state, "description": description,
            "branches": [{"name": branch}], "repository": repository,
            "sender": {"login": sender}}


def signed_headers(secret: str, event: str, body: bytes) -> dict[str, str]:
    """The headers of one delivery of ``body``, with a fresh delivery id."""
    return {
        "Content-Type": "application/json",
        EVENT_HEADER: event,
        DELIVERY_HEADER: str(uuid.uuid4()),
        SIGNATURE_HEADER: "sha256=" + sign_sha256(secret, body),
    }
