"""The Forge API of the local forge, over the files described in ``layout``."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bot import gitops
from bot.errors import ForgeError, GitError
from bot.forges.base import CheckResult, ForgeComment, Issue, NewPull, PullRequest, PullState
from bot.forges.checks import STATUS_STATES, clip, state_of, tail, text_of, without_own
from bot.forges.local.layout import (
    ISSUES,
    PULLS,
    Document,
    RepoLayout,
    add_comment,
    add_comment_locked,
    comment_id,
    create_item,
    list_documents,
    now,
    read_document,
    read_yaml,
    require_item,
    write_document,
    write_yaml,
)

PERMISSIONS = ("none", "read", "write", "admin")
STATES = ("pending", "success", "failure", "error")
STATUS_CONTEXT = "forgebot"
_SHA_RE = re.compile(r"[0-9a-f]{40}([0-9a-f]{24})?")


class LocalClient:
    """Reads and writes issues, pull requests, comments and statuses under ``root``."""

    def __init__(self, root: Path, bot_user: str = "forgebot") -> None:
        self.root = root
        self.bot_user = bot_user

    def _repo(self, repo: str) -> RepoLayout:
        return RepoLayout.of(self.root, repo).require()

    def clone_url(self, repo: str) -> str:
        """The bare repository's path: git fetches and pushes it directly."""
        return str(self._repo(repo).git_dir)

    def git_auth(self, repo: str) -> dict[str, str]:
        """Nothing: the local forge is a folder on this machine."""
        return {}

    def get_issue(self, repo: str, number: int) -> Issue:
        """Issue ``number`` (a pull request's number works too, as on GitHub)."""
        layout = self._repo(repo)
        _, path = require_item(layout, number)
        doc = read_document(path)
        return Issue(
            number=number,
            title=_text(doc, "title", path),
            body=doc.body,
            labels=tuple(str(label) for label in doc.front.get("labels") or []),
            author=_text(doc, "author", path),
        )

    def find_pull(self, repo: str, head: str) -> PullRequest | None:
        """The open pull request from branch ``head``, if any."""
        layout = self._repo(repo)
        for doc in list_documents(layout, PULLS):
            if doc.front.get("head") == head and doc.front.get("state") == "open":
                return _pull(layout, doc)
        return None

    def open_pull(self, repo: str, pull: NewPull) -> PullRequest:
        """Open a pull request; if one is already open from ``pull.head``, return that one.

        Both branches must exist in the bare repository, as a real forge would insist.
        """
        layout = self._repo(repo)
        for branch in (pull.head, pull.base):
            _require_branch(layout, branch)
        with layout.lock():
            # Looked up again under the lock: two workers racing get one pull request.
            existing = self.find_pull(repo, pull.head)
            if existing is not None:
                return existing
            front: dict[str, Any] = {
                "title": pull.title,
                "head": pull.head,
                "base": pull.base,
                "draft": pull.draft,
                "state": "open",
                "author": self.bot_user,
                "created": now(),
            }
            number = create_item(layout, PULLS, front, pull.body)
        return _pull(layout, read_document(layout.item_path(PULLS, number)))

    def update_pull(self, repo: str, number: int, *, body: str, draft: bool) -> PullRequest:
        """Replace the body and the draft flag of pull request ``number``."""
        layout = self._repo(repo)
        path = layout.item_path(PULLS, number)
        with layout.lock():
            if not path.is_file():
                raise ForgeError(f"{repo} has no pull request #{number}")
            doc = read_document(path)
            updated = Document({**doc.front, "draft": draft}, body)
            write_document(path, updated)
        return _pull(layout, updated)

    def comment(self, repo: str, number: int, body: str, *, pull: bool = False) -> None:
        """Comment on issue or pull request ``number`` as the bot user (one numbering, so
        ``pull`` changes nothing)."""
        add_comment(self._repo(repo), number, self.bot_user, body)

    def close_issue(self, repo: str, number: int, comment: str | None = None) -> None:
        """The comment (when given), then ``state: closed`` in the issue's front matter."""
        layout = self._repo(repo)
        path = layout.item_path(ISSUES, number)
        if not path.is_file():
            raise ForgeError(f"{repo} has no issue #{number}")
        if comment is not None:
            add_comment(layout, number, self.bot_user, comment)
        with layout.lock():
            doc = read_document(path)
            if doc.front.get("state") != "closed":
                write_document(path, Document({**doc.front, "state": "closed",
                                               "closed": now()}, doc.body))

    def delete_branch(self, repo: str, branch: str) -> None:
        """``git update-ref -d refs/heads/<branch>`` in the bare repository; a branch that
        is not there is fine."""
        layout = self._repo(repo)
        try:
            gitops.run(["check-ref-format", "--branch", branch])
        except GitError as exc:
            raise ForgeError(f"not a branch name: {branch!r}") from exc
        ref = f"refs/heads/{branch}"
        with layout.lock():
            try:
                gitops.run(["rev-parse", "--verify", "--quiet", "--end-of-options", ref],
                           cwd=layout.git_dir)
            except GitError:
                return  # already gone
            try:
                gitops.run(["update-ref", "-d", ref], cwd=layout.git_dir)
            except GitError as exc:
                raise ForgeError(f"cannot delete branch {branch} of {repo}: {exc}") from exc

    def upsert_comment(self, repo: str, number: int, marker: str, body: str) -> None:
        """Rewrite the bot's comment on ``number`` that holds ``marker``, or add one."""
        layout = self._repo(repo)
        require_item(layout, number)
        with layout.lock():
            for path in sorted((layout.meta_dir / "comments").glob(f"{number}-*.md")):
                doc = read_document(path)
                if doc.front.get("author") == self.bot_user and marker in doc.body:
                    write_document(path, Document({**doc.front, "edited": now()}, body))
                    return
            # Still under the lock: two attempts racing cannot both add the comment.
            add_comment_locked(layout, number, self.bot_user, body)

    def react(
        self, repo: str, number: int, comment_id: int | None, reaction: str, *,
        pull: bool = False,
    ) -> None:
        """Record a reaction in ``reactions/<number>.yml`` (the local forge shows no UI);
        ``comment_id`` None means the issue or pull request itself."""
        layout = self._repo(repo)
        require_item(layout, number)
        path = layout.meta_dir / "reactions" / f"{number}.yml"
        with layout.lock():
            data = read_yaml(path, {})
            key = "issue" if comment_id is None else f"comment-{comment_id}"
            data.setdefault(key, [])
            if reaction not in data[key]:
                data[key].append(reaction)
            write_yaml(path, data)

    def add_labels(self, repo: str, number: int, labels: list[str]) -> None:
        """Add labels to an issue or pull request (no webhook: the bot's own change)."""
        self._edit_labels(repo, number, lambda old: old + [x for x in labels if x not in old])

    def remove_label(self, repo: str, number: int, label: str) -> None:
        """Remove a label; a label that is not there is fine."""
        self._edit_labels(repo, number, lambda old: [x for x in old if x != label])

    def _edit_labels(
        self, repo: str, number: int, change: Callable[[list[str]], list[str]]
    ) -> None:
        layout = self._repo(repo)
        with layout.lock():
            _, path = require_item(layout, number)
            doc = read_document(path)
            old = [str(x) for x in doc.front.get("labels") or []]
            write_document(path, Document({**doc.front, "labels": change(old)}, doc.body))

    def changed_files(self, repo: str, base: str, head: str) -> list[str]:
        """``git diff --name-only base head`` in the bare repository."""
        layout = self._repo(repo)
        for sha in (base, head):
            if not _SHA_RE.fullmatch(sha):
                raise ForgeError(f"not a full commit sha: {sha!r}")
        try:
            out = gitops.run(["diff", "--name-only", "--no-renames", base, head, "--"],
                             cwd=layout.git_dir)
        except GitError as exc:
            raise ForgeError(f"cannot compare {base[:12]}..{head[:12]}: {exc}") from exc
        return [line for line in out.splitlines() if line]

    def set_status(self, repo: str, sha: str, state: str, description: str) -> None:
        """Record the bot's status of commit ``sha`` in ``statuses/<sha>.yml``."""
        layout = self._repo(repo)
        if not _SHA_RE.fullmatch(sha):
            raise ForgeError(f"not a full commit sha: {sha!r}")
        if state not in STATES:
            raise ForgeError(f"unknown status state {state!r}: expected one of {STATES}")
        path = layout.status_path(sha)
        with layout.lock():
            statuses = read_yaml(path, {})
            statuses[STATUS_CONTEXT] = {
                "state": state,
                "description": description,
                "updated": now(),
            }
            write_yaml(path, statuses)

    # ---- the forge's own CI (written by ``forgebot local check``) ----

    def commit_checks(self, repo: str, sha: str) -> list[CheckResult]:
        """Every context of ``statuses/<sha>.yml`` but the bot's own: ``state``,
        ``description`` and an optional ``log`` (its tail is kept), as a CI would leave them."""
        layout = self._repo(repo)
        if not _SHA_RE.fullmatch(sha):
            raise ForgeError(f"not a full commit sha: {sha!r}")
        statuses = read_yaml(layout.status_path(sha), {})
        if not isinstance(statuses, dict):
            raise ForgeError(f"statuses of {sha[:12]} in {repo}: not a mapping")
        results = []
        for context, value in statuses.items():
            entry = value if isinstance(value, dict) else {}
            results.append(CheckResult(
                name=str(context), state=state_of(STATUS_STATES, entry.get("state")),
                summary=clip(text_of(entry.get("description"))),
                log=tail(text_of(entry.get("log"))), url=text_of(entry.get("url"))))
        return without_own(results)

    def set_check(self, repo: str, sha: str, context: str, *, state: str, description: str,
                  log: str = "") -> None:
        """Record a CI status of commit ``sha`` under ``context`` (any name but the bot's):
        what a CI server would report; ``forgebot local check`` writes it."""
        layout = self._repo(repo)
        if not _SHA_RE.fullmatch(sha):
            raise ForgeError(f"not a full commit sha: {sha!r}")
        if state not in STATES:
            raise ForgeError(f"unknown status state {state!r}: expected one of {STATES}")
        if not context or context == STATUS_CONTEXT:
            raise ForgeError(f"a CI context must be named, and not {STATUS_CONTEXT!r}")
        path = layout.status_path(sha)
        with layout.lock():
            statuses = read_yaml(path, {})
            statuses[context] = {"state": state, "description": description, "log": log,
                                 "updated": now()}
            write_yaml(path, statuses)

    # ---- reconciliation and the dashboard issue ----

    def default_branch(self, repo: str) -> str:
        """The branch the bare repository's HEAD names."""
        layout = self._repo(repo)
        try:
            return gitops.run(["symbolic-ref", "--short", "HEAD"], cwd=layout.git_dir).strip()
        except GitError as exc:
            raise ForgeError(f"{repo}: cannot read the default branch: {exc}") from exc

    def open_issues_with_label(self, repo: str, label: str) -> list[Issue]:
        """Open issues whose front matter lists ``label``."""
        layout = self._repo(repo)
        found = []
        for doc in list_documents(layout, ISSUES):
            labels = [str(x) for x in doc.front.get("labels") or []]
            if doc.front.get("state", "open") == "open" and label in labels:
                found.append(self.get_issue(repo, int(doc.front["number"])))
        return found

    def label_actor(self, repo: str, number: int, label: str) -> str | None:
        """The ``labeled_by`` entry the local forge keeps for each label."""
        _, path = require_item(self._repo(repo), number)
        actors = read_document(path).front.get("labeled_by") or {}
        actor = actors.get(label) if isinstance(actors, dict) else None
        return actor if isinstance(actor, str) and actor else None

    def comments_since(
        self, repo: str, number: int, since: datetime, *, pull: bool = False
    ) -> list[ForgeComment]:
        """Comment files of item ``number`` created after ``since``, oldest first (one
        numbering: ``pull`` changes nothing)."""
        layout = self._repo(repo)
        require_item(layout, number)
        found = []
        for path in (layout.meta_dir / "comments").glob(f"{number}-*.md"):
            if not path.stem.partition("-")[2].isdigit():
                continue
            doc = read_document(path)
            created = _time(doc, "created", path)
            if created > since:
                found.append(ForgeComment(comment_id(path), _text(doc, "author", path),
                                          doc.body, created))
        return sorted(found, key=lambda c: (c.created, c.id))

    def pull_state(self, repo: str, number: int) -> PullState:
        """From the pull request's front matter (``state``, ``merged_by``)."""
        layout = self._repo(repo)
        path = layout.item_path(PULLS, number)
        if not path.is_file():
            raise ForgeError(f"{repo} has no pull request #{number}")
        doc = read_document(path)
        state = str(doc.front.get("state", "open"))
        if state not in ("open", "merged", "closed"):
            raise ForgeError(f"{path}: unknown pull request state {state!r}")
        return PullState(number=number, state=state, head=_text(doc, "head", path),
                         by=str(doc.front.get("merged_by") or ""),
                         url=path.absolute().as_uri())

    def create_issue(self, repo: str, title: str, body: str) -> int:
        """A new issue by the bot user, without labels (and without a webhook)."""
        layout = self._repo(repo)
        front = {"title": title, "labels": [], "author": self.bot_user, "state": "open",
                 "created": now()}
        with layout.lock():
            return create_item(layout, ISSUES, front, body)

    def edit_issue(self, repo: str, number: int, body: str) -> None:
        """Replace issue ``number``'s body, keeping its front matter."""
        layout = self._repo(repo)
        path = layout.item_path(ISSUES, number)
        with layout.lock():
            if not path.is_file():
                raise ForgeError(f"{repo} has no issue #{number}")
            doc = read_document(path)
            write_document(path, Document(doc.front, body))

    def permission(self, repo: str, user: str) -> str:
        """``admin`` for everyone, unless ``<root>/permissions.yml`` maps users to levels.

        With that file, a user it does not name has ``none``.
        """
        self._repo(repo)
        path = self.root / "permissions.yml"
        if not path.is_file():
            return "admin"
        level = read_yaml(path, {}).get(user, "none")
        if level not in PERMISSIONS:
            raise ForgeError(f"{path}: permission of {user!r} must be one of {PERMISSIONS}")
        return str(level)


def _text(doc: Document, key: str, path: Path) -> str:
    value = doc.front.get(key)
    if not isinstance(value, str):
        raise ForgeError(f"{path}: front matter field {key!r} is missing or not text")
    return value


def _time(doc: Document, key: str, path: Path) -> datetime:
    """An ISO 8601 timestamp field as an aware UTC time (naive ones are read as UTC)."""
    try:
        value = datetime.fromisoformat(_text(doc, key, path))
    except ValueError as exc:
        raise ForgeError(f"{path}: front matter field {key!r} is not an ISO 8601 time") from exc
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _pull(layout: RepoLayout, doc: Document) -> PullRequest:
    number = doc.front.get("number")
    if isinstance(number, bool) or not isinstance(number, int):
        raise ForgeError(f"{layout.meta_dir / PULLS}: a pull request without a number")
    path = layout.item_path(PULLS, number)
    return PullRequest(
        number=number,
        head=_text(doc, "head", path),
        base=_text(doc, "base", path),
        title=_text(doc, "title", path),
        body=doc.body,
        draft=bool(doc.front.get("draft", False)),
        url=path.absolute().as_uri(),
    )


def _require_branch(layout: RepoLayout, branch: str) -> None:
    try:
        gitops.run(
            ["rev-parse", "--verify", "--quiet", "--end-of-options", f"refs/heads/{branch}"],
            cwd=layout.git_dir,
        )
    except GitError as exc:
        raise ForgeError(f"{layout.full_name} has no branch {branch!r}") from exc
