"""GitLab's webhooks: check ``X-Gitlab-Token`` and normalise the deliveries the bot acts on.

Headers (FORGES.md §2.1): ``X-Gitlab-Event`` (``Issue Hook``, ``Note Hook``, ``Push Hook``,
``Merge Request Hook``, ...), ``X-Gitlab-Token`` (the configured secret, verbatim: GitLab
signs nothing by default), and up to three ids: ``Idempotency-Key`` (17.4+, the same on a
retry), ``X-Gitlab-Event-UUID`` (14.8+) and ``X-Gitlab-Webhook-UUID`` (16.2+).

Normalised by table: ``(X-Gitlab-Event, action)`` → one small function; every other
delivery is ``None``. The project is ``project.path_with_namespace`` in every event.
Confidential issues and notes are deliberately ignored: implementing one would copy its
text into a merge request that anyone who can read the project sees.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
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
from bot.forges.verify import get_header, verify_token

FORGE = "gitlab"
EVENT_HEADER = "X-Gitlab-Event"
TOKEN_HEADER = "X-Gitlab-Token"  # noqa: S105 - a header name, not a secret
# In order of preference: only Idempotency-Key survives a retry of the same delivery.
DELIVERY_HEADERS = ("Idempotency-Key", "X-Gitlab-Event-UUID", "X-Gitlab-Webhook-UUID")

_NO_COMMIT = "0" * 40  # ``after`` of a push that deleted the branch


def verify(secret: str | None, headers: Mapping[str, str]) -> bool:
    """True when ``X-Gitlab-Token`` equals ``secret`` (constant time, fail-closed).

    GitLab sends the secret itself, not an HMAC of the body, so the body plays no part.
    """
    return verify_token(secret, get_header(headers, TOKEN_HEADER))


def delivery_id(headers: Mapping[str, str]) -> str | None:
    """``Idempotency-Key``, else ``X-Gitlab-Event-UUID``, else ``X-Gitlab-Webhook-UUID``."""
    for name in DELIVERY_HEADERS:
        value = get_header(headers, name)
        if value:
            return value
    return None


def event_kind(headers: Mapping[str, str]) -> str:
    """The ``X-Gitlab-Event`` name (``Push Hook``, ...), or ``""``."""
    return get_header(headers, EVENT_HEADER) or ""


def parse(
    headers: Mapping[str, str], body: bytes, trigger_labels: Collection[str] = ()
) -> Event | None:
    """The normalised event, or None for a delivery that starts nothing.

    An Issue Hook can add and remove several labels at once, but an ``IssueLabeled`` or
    ``IssueUnlabeled`` names one: the first change of a label in ``trigger_labels``, else
    the first change (added labels first, in GitLab's order). ``labels`` always holds
    every current label.

    Raises ``ForgeError`` when the body is not a JSON object, or when a delivery the bot
    handles misses a field it needs (the message names the field).
    """
    events = parse_all(headers, body)
    for event in events:
        if isinstance(event, IssueLabeled | IssueUnlabeled) and event.label in trigger_labels:
            return event
    return events[0] if events else None


def parse_all(headers: Mapping[str, str], body: bytes) -> list[Event]:
    """Every event in the delivery: one ``IssueLabeled`` per added label and one
    ``IssueUnlabeled`` per removed label, else at most one."""
    kind = event_kind(headers)
    payload = load_object(body, f"gitlab webhook '{kind}'")
    attributes = payload.get("object_attributes")
    action = attributes.get("action") if isinstance(attributes, dict) else None
    fields = Fields(payload, where("gitlab", kind, action))
    action = fields.text("object_attributes.action", optional=True)
    handler = _HANDLERS.get((kind, action)) or _HANDLERS.get((kind, "*"))
    return handler(fields) if handler else []


def _repo(fields: Fields) -> Repo:
    return Repo(
        forge=FORGE,
        full_name=fields.text("project.path_with_namespace"),
        default_branch=fields.text("project.default_branch", optional=True) or "main",
    )


def _issue_hook(fields: Fields) -> list[Event]:
    """An Issue Hook: closed, or labels changed (``changes.labels`` previous → current)."""
    if fields.find("object_attributes.confidential") is True:
        return []
    repo = _repo(fields)
    number = fields.integer("object_attributes.iid")  # iid: the number people see; id is global
    sender = fields.text("user.username")  # the actor; the author is only a numeric id here
    if fields.text("object_attributes.action", optional=True) == "close":
        # Labels changed in the same edit no longer matter: the issue is done.
        return [IssueClosed(repo=repo, number=number, sender=sender)]
    if fields.find("changes.labels") is None:
        return []  # a title, description or assignee edit
    if fields.text("object_attributes.state", optional=True) == "closed":
        return []  # labels tidied on a closed issue start no work
    previous = fields.names("changes.labels.previous", "title")
    current = fields.names("changes.labels.current", "title")
    added = [title for title in current if title not in previous]
    removed = [title for title in previous if title not in current]
    title = fields.text("object_attributes.title")
    body = fields.text("object_attributes.description", optional=True)
    events: list[Event] = [
        IssueLabeled(repo=repo, number=number, title=title, body=body, label=label,
                     sender=sender, labels=current)
        for label in added
    ]
    events += [IssueUnlabeled(repo=repo, number=number, label=label, sender=sender,
                              labels=current) for label in removed]
    return events


def _note(fields: Fields) -> list[Event]:
    """A Note Hook on a merge request or an issue; commit and snippet notes start nothing."""
    if fields.find("object_attributes.system") is True:
        return []  # GitLab's own "added label ~x" notes
    if fields.text("object_attributes.action", optional=True) not in ("", "create"):
        return []  # 16.11+ also sends edits ("update"); older versions send no action
    noteable = fields.text("object_attributes.noteable_type")
    if noteable == "MergeRequest" and fields.find("object_attributes.type") == "DiffNote":
        return [_diff_note(fields)]
    if noteable == "MergeRequest":
        number, is_pull = fields.integer("merge_request.iid"), True
    elif noteable == "Issue":
        if fields.find("issue.confidential") is True:
            return []
        number, is_pull = fields.integer("issue.iid"), False
    else:
        return []
    return [CommentCreated(
        repo=_repo(fields),
        number=number,
        body=fields.text("object_attributes.note", optional=True),
        author=fields.text("user.username"),
        is_pull=is_pull,
        comment_id=fields.optional_integer("object_attributes.id"),
    )]


def _diff_note(fields: Fields) -> ReviewSubmitted:
    """A note on a line of a merge request's diff: GitLab's review comment. It becomes a
    ``commented`` review that names the file and line it is about."""
    path = fields.text("object_attributes.position.new_path", optional=True)
    line = fields.optional_integer("object_attributes.position.new_line")
    where = f"{path}:{line}" if path and line else path
    note = fields.text("object_attributes.note", optional=True)
    return ReviewSubmitted(
        repo=_repo(fields),
        number=fields.integer("merge_request.iid"),
        state="commented",
        body=f"{where}: {note}" if where else note,
        author=fields.text("user.username"),
        review_id=fields.optional_integer("object_attributes.id"),
        kind="comment",
    )


def _union(fields: Fields, commits: list[dict[str, Any]], key: str) -> tuple[str, ...]:
    paths: dict[str, None] = {}  # ordered set: first appearance wins
    for index, commit in enumerate(commits):
        paths.update(dict.fromkeys(fields.strings(commit, key, f"commits[{index}]")))
    return tuple(paths)


def _pushed(fields: Fields) -> list[Event]:
    """A Push Hook. GitLab lists at most 20 commits; ``total_commits_count`` is the truth."""
    after = fields.text("after")
    if after == _NO_COMMIT:
        return []  # a deleted branch has no content to read
    commits = fields.items("commits")
    total = fields.optional_integer("total_commits_count")
    return [Pushed(
        repo=_repo(fields),
        ref=fields.text("ref"),
        before=fields.text("before"),
        after=after,
        pusher=_pusher(fields),
        added=_union(fields, commits, "added"),
        modified=_union(fields, commits, "modified"),
        removed=_union(fields, commits, "removed"),
        # With more than 20 commits the lists miss the older ones: ask the compare API.
        complete=total is None or total <= len(commits),
    )]


def _pusher(fields: Fields) -> str:
    """Who pushed: ``user_username``; older GitLab versions (and GitLab's own documentation
    example) send only ``user_name`` (a display name) and ``user_id``, so then ``#<id>``,
    which :meth:`GitLabForge.permission` looks up by id, or the display name as a last
    resort (it has no permission: the push is ignored, politely)."""
    username = fields.text("user_username", optional=True)
    if username:
        return username
    user_id = fields.optional_integer("user_id")
    return f"#{user_id}" if user_id is not None else fields.text("user_name")


def _pull_closed(fields: Fields) -> list[Event]:
    """A Merge Request Hook ``merge`` (merged) or ``close`` (closed without merging)."""
    return [PullClosed(
        repo=_repo(fields),
        number=fields.integer("object_attributes.iid"),
        head=fields.text("object_attributes.source_branch"),
        merged=fields.text("object_attributes.action") == "merge",
        sender=fields.text("user.username"),
        url=fields.text("object_attributes.url", optional=True),
    )]


def _approved(fields: Fields) -> list[Event]:
    """GitLab has no review event. ``approved`` fires once the merge request has every
    approval it needs; the per-user ``approval`` is not used, so one approval by one
    reviewer does not count twice."""
    return [ReviewSubmitted(
        repo=_repo(fields),
        number=fields.integer("object_attributes.iid"),
        state="approved",
        body="",
        author=fields.text("user.username"),
    )]


# (X-Gitlab-Event, object_attributes.action) -> handler; "*" matches any action (a push has
# none). Confidential hooks, tag pushes, system hooks and every other pair start nothing.
_PIPELINE_STATES = {"success": "success", "failed": "failure"}


def _pipeline(fields: Fields) -> list[Event]:
    """A Pipeline Hook that finished (``success`` or ``failed``; running, cancelled and the
    rest start nothing). A tag's pipeline names no branch; ``merge_request.iid`` is there
    when the pipeline ran for a merge request."""
    state = _PIPELINE_STATES.get(fields.text("object_attributes.status", optional=True))
    if state is None:
        return []
    ref = fields.text("object_attributes.ref", optional=True)
    tag = fields.find("object_attributes.tag") is True
    merge_request = fields.optional_integer("merge_request.iid")
    return [ChecksCompleted(
        repo=_repo(fields),
        sha=fields.text("object_attributes.sha"),
        state=state,
        name="pipeline",
        branches=(ref,) if ref and not tag else (),
        pull_numbers=(merge_request,) if merge_request is not None else (),
    )]


_HANDLERS: dict[tuple[str, str], Callable[[Fields], list[Event]]] = {
    ("Issue Hook", "*"): _issue_hook,
    ("Note Hook", "*"): _note,
    ("Push Hook", "*"): _pushed,
    ("Merge Request Hook", "merge"): _pull_closed,
    ("Merge Request Hook", "close"): _pull_closed,
    ("Merge Request Hook", "approved"): _approved,
    ("Pipeline Hook", "*"): _pipeline,
}
