"""The Forge seam: what the rest of forgebot needs from GitHub, GitLab, Gitea or the local forge.

A forge adapter never imports the pipeline. Every method raises ``ForgeError`` (never a
library error) and says through ``ForgeError.retryable`` whether trying again can help.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from bot.events import Event


@dataclass(frozen=True)
class Issue:
    """An issue as the pipeline needs it."""

    number: int
    title: str
    body: str
    labels: tuple[str, ...]
    author: str


@dataclass(frozen=True)
class PullRequest:
    """A pull request opened by the bot."""

    number: int
    head: str
    base: str
    title: str
    body: str
    draft: bool
    url: str


@dataclass(frozen=True)
class NewPull:
    """What the bot asks for when it opens a pull request."""

    head: str
    base: str
    title: str
    body: str
    draft: bool


@dataclass(frozen=True)
class ForgeComment:
    """A comment on an issue or pull request, as reconciliation reads it back. ``id`` is the
    forge's id (the one its webhook names), ``created`` an aware UTC time."""

    id: int
    author: str
    body: str
    created: datetime


@dataclass(frozen=True)
class PullState:
    """Where a pull request stands: ``state`` is ``open``, ``merged`` or ``closed``
    (unmerged); ``by`` is who merged it (or closed it, when the forge says), else ``""``."""

    number: int
    state: str
    head: str
    by: str
    url: str


@dataclass(frozen=True)
class CheckResult:
    """One check of the forge's CI on a commit (a GitHub check run or commit status, a
    GitLab job or commit status, a Gitea commit status), never the bot's own status.

    ``state`` is ``success``, ``failure``, ``pending`` or ``skipped`` (neutral, cancelled,
    allowed to fail). ``summary`` is what the forge says of it (a check run's title and
    summary, a status's description) and ``log`` the tail of its log where the API gives one
    (GitLab job traces, a check run's ``output.text``), cut to ``LOG_TAIL_CHARS``. Both are
    written by whatever ran the CI: hostile text, to be redacted and bounded before use."""

    name: str
    state: str
    summary: str = ""
    log: str = ""
    url: str = ""


CHECK_STATES = ("success", "failure", "pending", "skipped")
LOG_TAIL_CHARS = 3_000
SUMMARY_CHARS = 1_000


def rewrite_url(url: str, rules: Mapping[str, str]) -> str:
    """Apply the longest matching prefix rewrite (``git_url_rewrite``) to ``url``."""
    for prefix in sorted(rules, key=len, reverse=True):
        if url.startswith(prefix):
            return rules[prefix] + url[len(prefix):]
    return url


class Forge(Protocol):
    """One forge. ``repo`` is always the ``owner/name`` full name."""

    name: str

    def verify(self, headers: Mapping[str, str], body: bytes) -> bool:
        """True when the delivery is authentic. Constant time; False when no secret is set."""

    def delivery_id(self, headers: Mapping[str, str]) -> str | None:
        """The forge's id for this delivery (the same on a redelivery), if it sent one."""

    def event_kind(self, headers: Mapping[str, str]) -> str:
        """The forge's name for the event (for the record; ``""`` when absent)."""

    def parse(self, headers: Mapping[str, str], body: bytes) -> Event | None:
        """The normalised event, or None when the delivery starts nothing.

        Raises ``ForgeError`` for a payload that is JSON but not the shape the event promises.
        """

    def clone_url(self, repo: str) -> str:
        """A URL git can fetch from, without any credential in it."""

    def git_auth(self, repo: str) -> dict[str, str]:
        """Environment variables that let git authenticate (askpass); never written to disk."""

    def get_issue(self, repo: str, number: int) -> Issue:
        """The issue as it is now."""

    def find_pull(self, repo: str, head: str) -> PullRequest | None:
        """The open pull request whose head is the branch ``head``, if any."""

    def open_pull(self, repo: str, pull: NewPull) -> PullRequest:
        """Open a pull request and return it."""

    def update_pull(self, repo: str, number: int, *, body: str, draft: bool) -> PullRequest:
        """Replace the body (and draft flag) of one of the bot's pull requests."""

    def comment(self, repo: str, number: int, body: str, *, pull: bool = False) -> None:
        """Comment on an issue, or on a pull request. ``pull`` says ``number`` is a pull
        request's: GitLab numbers merge requests apart from issues; the other forges share
        one numbering and ignore it."""

    def upsert_comment(self, repo: str, number: int, marker: str, body: str) -> None:
        """Edit the bot's own comment that contains ``marker`` (a hidden HTML comment), or
        add one with ``body`` (which must contain ``marker``) when there is none yet."""

    def react(
        self, repo: str, number: int, comment_id: int | None, reaction: str, *,
        pull: bool = False,
    ) -> None:
        """Add a reaction (``eyes``, ``+1``, ...) to a comment, or to the issue (or, with
        ``pull``, the pull request) itself when ``comment_id`` is None. Reacting twice leaves
        one reaction."""

    def close_issue(self, repo: str, number: int, comment: str | None = None) -> None:
        """Comment (when ``comment`` is given), then close issue ``number``. Closing an issue
        that is already closed is not an error (the comment is still added: callers that
        may repeat record that they closed it)."""

    def delete_branch(self, repo: str, branch: str) -> None:
        """Delete ``branch``; one that is already gone is not an error. The caller checks
        that the branch is the bot's own (under the policy's prefix, see
        :func:`bot.gitops.branch_name`): adapters delete what they are told."""

    def add_labels(self, repo: str, number: int, labels: list[str]) -> None:
        """Add labels to an issue or pull request (existing labels stay)."""

    def remove_label(self, repo: str, number: int, label: str) -> None:
        """Remove one label; removing a label that is not there is not an error."""

    def changed_files(self, repo: str, base: str, head: str) -> list[str]:
        """Paths changed between two commits (the compare API), for pushes whose payload
        does not list them all."""

    # ---- the forge's own CI (bot/pipeline/ci_repair.py) ----

    def commit_checks(self, repo: str, sha: str) -> list[CheckResult]:
        """Every check the forge's CI reports on commit ``sha``, the latest of each name,
        without the bot's own ``forgebot`` status. An empty list when there are none."""

    def set_status(self, repo: str, sha: str, state: str, description: str) -> None:
        """Set the bot's commit status (``pending``, ``success``, ``failure``) on ``sha``."""

    def permission(self, repo: str, user: str) -> str:
        """The user's permission on the repository: ``none``, ``read``, ``write`` or ``admin``."""

    # ---- reconciliation and the dashboard issue (bot/pipeline/reconcile.py) ----

    def default_branch(self, repo: str) -> str:
        """The repository's default branch, as its webhooks would name it."""

    def open_issues_with_label(self, repo: str, label: str) -> list[Issue]:
        """Every open issue (never a pull request) that carries ``label``."""

    def label_actor(self, repo: str, number: int, label: str) -> str | None:
        """Who last added ``label`` to issue ``number`` (the forge's label history), or None
        when the forge cannot tell. Reconciliation checks that person's permission, as the
        ``labeled`` webhook's sender would have been checked."""

    def comments_since(
        self, repo: str, number: int, since: datetime, *, pull: bool = False
    ) -> list[ForgeComment]:
        """Comments on issue (or, with ``pull``, pull request) ``number`` created strictly
        after ``since`` (aware), oldest first. Review comments on lines are not included."""

    def pull_state(self, repo: str, number: int) -> PullState:
        """Pull request ``number`` as it is now: open, merged or closed."""

    def create_issue(self, repo: str, title: str, body: str) -> int:
        """Open an issue as the bot and return its number (no label, no webhook needed)."""

    def edit_issue(self, repo: str, number: int, body: str) -> None:
        """Replace the body of issue ``number`` (the bot's own dashboard issue)."""
