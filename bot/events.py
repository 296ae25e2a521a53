"""The normalised events that every forge's webhooks are translated into.

A forge adapter's ``parse`` turns a stored delivery into one of these, or ``None`` when the
delivery starts nothing. The planner only ever sees these types.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Repo:
    """A repository on one forge: ``forge`` is the registry name, ``full_name`` is owner/name
    (GitLab: the project's ``path_with_namespace``). ``installation_id`` is the GitHub App
    installation that sent the delivery, when there is one."""

    forge: str
    full_name: str
    default_branch: str = "main"
    installation_id: int | None = None


@dataclass(frozen=True)
class IssueLabeled:
    """A label was added to an issue."""

    repo: Repo
    number: int
    title: str
    body: str
    label: str
    sender: str
    labels: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class IssueUnlabeled:
    """A label was removed from an issue. ``labels`` are the labels it still has; ``label`` is
    ``""`` when the forge cannot say which one went (Gitea clearing every label of an issue
    the bot has not seen before): then only ``labels`` tells."""

    repo: Repo
    number: int
    label: str
    sender: str
    labels: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class IssueClosed:
    """An issue was closed (not a pull request: that is :class:`PullClosed`)."""

    repo: Repo
    number: int
    sender: str


@dataclass(frozen=True)
class CommentCreated:
    """A comment was made on an issue or a pull request (``number`` is the issue or pull
    request number: GitHub/Gitea ``number``, GitLab ``iid``)."""

    repo: Repo
    number: int
    body: str
    author: str
    is_pull: bool = False
    comment_id: int | None = None


@dataclass(frozen=True)
class Pushed:
    """Commits were pushed to a branch. File lists are the union over the pushed commits;
    ``complete`` is False when the forge may have left some out (GitLab sends at most 20
    commits; GitHub may send empty lists for huge pushes): ask the compare API then."""

    repo: Repo
    ref: str  # e.g. refs/heads/main
    before: str
    after: str
    pusher: str
    added: tuple[str, ...] = ()
    modified: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    complete: bool = True

    @property
    def to_default_branch(self) -> bool:
        return self.ref == f"refs/heads/{self.repo.default_branch}"


@dataclass(frozen=True)
class PullClosed:
    """A pull (merge) request was closed; ``merged`` tells a merge from a plain close.
    ``url`` is its web page, when the payload says."""

    repo: Repo
    number: int
    head: str  # the source branch
    merged: bool
    sender: str
    url: str = ""


@dataclass(frozen=True)
class ReviewSubmitted:
    """A review on a pull request: ``state`` is ``approved``, ``changes_requested`` or
    ``commented``. A review comment on a line of the diff (GitHub
    ``pull_request_review_comment``, a GitLab ``DiffNote``) is a ``commented`` review whose
    ``body`` starts with the file and line it is about.

    ``review_id`` is the forge's id of the review or review comment when the payload has one;
    with ``kind`` (``review`` or ``comment``, which GitHub numbers apart) it names the
    review, so a second delivery of it is recognised."""

    repo: Repo
    number: int
    state: str
    body: str
    author: str
    review_id: int | None = None
    kind: str = "review"


@dataclass(frozen=True)
class ChecksCompleted:
    """The forge's own CI finished something on a commit: a GitHub check run, check suite or
    commit status, a GitLab pipeline, a Gitea commit status. ``state`` is ``success`` or
    ``failure`` (pending reports are not events). ``name`` is the check, status context or
    ``pipeline`` that reported.

    A nudge, not the verdict: one check says nothing of the others, so the planner asks the
    forge for every check of ``sha`` before it decides. ``branches`` and ``pull_numbers``
    are what the payload says about where the commit is (either may be empty: a Gitea status
    names only the commit)."""

    repo: Repo
    sha: str
    state: str
    name: str
    branches: tuple[str, ...] = ()
    pull_numbers: tuple[int, ...] = ()


Event = (
    IssueLabeled | IssueUnlabeled | IssueClosed | CommentCreated | Pushed | PullClosed
    | ReviewSubmitted | ChecksCompleted
)
