"""GitHub's webhooks: verify ``X-Hub-Signature-256`` and normalise the deliveries the bot
acts on (labels added and removed, issues closed, comments, pushes, pull requests closed,
reviews and review comments, and the forge's CI: check runs, check suites, statuses).

Headers: ``X-GitHub-Event`` (the event), ``X-GitHub-Delivery`` (a GUID that a redelivery
keeps), ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256(secret, raw body)>``. Deliveries
of a GitHub App also carry ``installation.id``, which is kept on ``Repo.installation_id``
so the client can exchange it for an installation token.

Normalised by table: ``(event, action)`` → one small function; every other delivery
(``ping``, ``issues/opened``, ``pull_request/synchronize``, ...) is ``None``.
"""

from __future__ import annotations

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
from bot.forges.verify import get_header, verify_hmac_sha256

FORGE = "github"
EVENT_HEADER = "X-GitHub-Event"
DELIVERY_HEADER = "X-GitHub-Delivery"
SIGNATURE_HEADER = "X-Hub-Signature-256"

REVIEW_STATES = ("approved", "changes_requested", "commented")


def verify(secret: str | None, headers: Mapping[str, str], body: bytes) -> bool:
    """True when ``X-Hub-Signature-256`` matches the raw body under ``secret``.

    Fail-closed: no secret, no header or a malformed header is False. The legacy SHA-1
    ``X-Hub-Signature`` is never accepted.
    """
    return verify_hmac_sha256(secret, body, get_header(headers, SIGNATURE_HEADER))


def delivery_id(headers: Mapping[str, str]) -> str | None:
    """The ``X-GitHub-Delivery`` GUID (the same on a redelivery), if sent."""
    return get_header(headers, DELIVERY_HEADER) or None


def event_kind(headers: Mapping[str, str]) -> str:
    """The ``X-GitHub-Event`` name, or ``""``."""
    return get_header(headers, EVENT_HEADER) or ""


def parse(headers: Mapping[str, str], body: bytes) -> Event | None:
    """The normalised event, or None for a delivery that starts nothing.

    Raises ``ForgeError`` when the body is not a JSON object, or when a delivery the bot
    handles misses a field it needs (the message names the field).
    """
    kind = event_kind(headers)
    payload = load_object(body, f"github webhook '{kind}'")
    action = payload.get("action") or ""
    handler = _HANDLERS.get((kind, str(action)))
    return handler(Fields(payload, where("github", kind, action))) if handler else None


def _repo(fields: Fields) -> Repo:
    return Repo(
        forge=FORGE,
        full_name=fields.text("repository.full_name"),
        default_branch=fields.text("repository.default_branch", optional=True) or "main",
        installation_id=fields.optional_integer("installation.id"),
    )


def _label_names(fields: Fields) -> tuple[str, ...]:
    """The issue's labels: objects with a name, or (octokit's schema allows it) bare names."""
    found = fields.find("issue.labels")
    if found is None:
        return ()
    if not isinstance(found, list):
        raise fields.error("issue.labels")
    names = []
    for index, label in enumerate(found):
        name = label.get("name") if isinstance(label, dict) else label
        if not isinstance(name, str):
            raise fields.error(f"issue.labels[{index}].name")
        names.append(name)
    return tuple(names)


def _labeled(fields: Fields) -> IssueLabeled | None:
    if fields.find("label") is None:
        return None  # the schema lets "label" be absent: nothing to act on
    return IssueLabeled(
        repo=_repo(fields),
        number=fields.integer("issue.number"),
        title=fields.text("issue.title"),
        body=fields.text("issue.body", optional=True),
        label=fields.text("label.name"),
        sender=fields.text("sender.login"),
        labels=_label_names(fields),
    )


def _unlabeled(fields: Fields) -> IssueUnlabeled | None:
    if fields.find("label") is None:
        return None
    return IssueUnlabeled(
        repo=_repo(fields),
        number=fields.integer("issue.number"),
        label=fields.text("label.name"),
        sender=fields.text("sender.login"),
        labels=_label_names(fields),  # what is left after the removal
    )


def _issue_closed(fields: Fields) -> IssueClosed | None:
    if fields.find("issue.pull_request") is not None:
        return None  # a pull request's issue; pull_request/closed covers it
    return IssueClosed(
        repo=_repo(fields),
        number=fields.integer("issue.number"),
        sender=fields.text("sender.login"),
    )


def _comment_created(fields: Fields) -> CommentCreated | None:
    if fields.find("comment.user") is None:
        return None  # a deleted account's comment (user is null): no one to authorise
    return CommentCreated(
        repo=_repo(fields),
        number=fields.integer("issue.number"),
        body=fields.text("comment.body", optional=True),
        author=fields.text("comment.user.login"),
        # The one event covers both: only a pull request's issue has a pull_request object.
        is_pull=fields.find("issue.pull_request") is not None,
        comment_id=fields.optional_integer("comment.id"),
    )


def _union(fields: Fields, commits: list[dict[str, Any]], key: str) -> tuple[str, ...]:
    paths: dict[str, None] = {}  # ordered set: first appearance wins
    for index, commit in enumerate(commits):
        paths.update(dict.fromkeys(fields.strings(commit, key, f"commits[{index}]")))
    return tuple(paths)


def _pushed(fields: Fields) -> Pushed | None:
    if fields.find("deleted") is True:
        return None  # a deleted branch or tag has no content to read
    commits = fields.items("commits")
    # GitHub may leave a commit's added/modified/removed empty when the commit is too large
    # (octokit's commit schema); an empty commit is rare, so any such commit means "ask the
    # compare API" rather than silently missing a changed spec.
    complete = all(
        commit.get("added") or commit.get("modified") or commit.get("removed")
        for commit in commits
    )
    return Pushed(
        repo=_repo(fields),
        ref=fields.text("ref"),
        before=fields.text("before"),
        after=fields.text("after"),
        pusher=fields.text("pusher.name", optional=True) or fields.text("sender.login"),
        added=_union(fields, commits, "added"),
        modified=_union(fields, commits, "modified"),
        removed=_union(fields, commits, "removed"),
        complete=complete,
    )


def _pull_closed(fields: Fields) -> PullClosed:
    return PullClosed(
        repo=_repo(fields),
        number=fields.integer("pull_request.number"),
        head=fields.text("pull_request.head.ref"),
        merged=fields.find("pull_request.merged") is True,
        sender=fields.text("sender.login"),
        url=fields.text("pull_request.html_url", optional=True),
    )


def _review_submitted(fields: Fields) -> ReviewSubmitted | None:
    if fields.find("review.user") is None:
        return None  # a deleted account's review: no one to authorise
    state = fields.text("review.state").lower()  # lower-case in webhooks, upper in the REST API
    if state not in REVIEW_STATES:
        return None  # "dismissed" and anything newer start nothing
    return ReviewSubmitted(
        repo=_repo(fields),
        number=fields.integer("pull_request.number"),
        state=state,
        body=fields.text("review.body", optional=True),
        author=fields.text("review.user.login"),
        review_id=fields.optional_integer("review.id"),
    )


def _review_comment(fields: Fields) -> ReviewSubmitted:
    """A comment on a line of a pull request's diff: feedback as much as a review's body,
    so it is a ``commented`` review that says which file and line it is about."""
    path = fields.text("comment.path", optional=True)
    line = fields.optional_integer("comment.line") or fields.optional_integer(
        "comment.original_line")
    where = f"{path}:{line}" if path and line else path
    body = fields.text("comment.body", optional=True)
    return ReviewSubmitted(
        repo=_repo(fields),
        number=fields.integer("pull_request.number"),
        state="commented",
        body=f"{where}: {body}" if where else body,
        author=fields.text("comment.user.login"),
        review_id=fields.optional_integer("comment.id"),
        kind="comment",
    )


# The forge's own CI: a final conclusion or state → ChecksCompleted (success or failure).
_CI_STATES = {"success": "success", "failure": "failure", "timed_out": "failure",
              "action_required": "failure", "startup_failure": "failure", "error": "failure"}


def _pull_numbers(fields: Fields, path: str) -> tuple[int, ...]:
    numbers = []
    for index, pull in enumerate(fields.items(path)):
        number = pull.get("number")
        if isinstance(number, bool) or not isinstance(number, int):
            raise fields.error(f"{path}[{index}].number")
        numbers.append(number)
    return tuple(numbers)


def _check_completed(fields: Fields, obj: str) -> ChecksCompleted | None:
    """``check_run`` or ``check_suite`` (``obj``) completed. A check suite names its app;
    a run its check. Cancelled, neutral and skipped conclusions start nothing."""
    state = _CI_STATES.get(fields.text(f"{obj}.conclusion", optional=True))
    if state is None:
        return None
    suite = "check_run.check_suite" if obj == "check_run" else "check_suite"
    branch = fields.text(f"{suite}.head_branch", optional=True)
    name = (fields.text("check_run.name") if obj == "check_run"
            else fields.text("check_suite.app.name", optional=True) or "check suite")
    return ChecksCompleted(
        repo=_repo(fields),
        sha=fields.text(f"{obj}.head_sha"),
        state=state,
        name=name,
        branches=(branch,) if branch else (),
        pull_numbers=_pull_numbers(fields, f"{obj}.pull_requests"),
    )


def _status(fields: Fields) -> ChecksCompleted | None:
    """A commit status (``status``): pending ones start nothing; ``branches`` lists every
    branch whose head is the commit."""
    state = _CI_STATES.get(fields.text("state"))
    if state is None:
        return None
    return ChecksCompleted(
        repo=_repo(fields),
        sha=fields.text("sha"),
        state=state,
        name=fields.text("context"),
        branches=fields.names("branches"),
    )


# (X-GitHub-Event, action) -> handler; a push has no action. Everything else starts nothing.
_HANDLERS: dict[tuple[str, str], Callable[[Fields], Event | None]] = {
    ("issues", "labeled"): _labeled,
    ("issues", "unlabeled"): _unlabeled,
    ("issues", "closed"): _issue_closed,
    ("issue_comment", "created"): _comment_created,
    ("push", ""): _pushed,
    ("pull_request", "closed"): _pull_closed,
    ("pull_request_review", "submitted"): _review_submitted,
    ("pull_request_review_comment", "created"): _review_comment,
    ("check_run", "completed"): lambda fields: _check_completed(fields, "check_run"),
    ("check_suite", "completed"): lambda fields: _check_completed(fields, "check_suite"),
    ("status", ""): _status,
}
