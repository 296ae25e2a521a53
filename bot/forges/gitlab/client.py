"""The Forge API of GitLab (gitlab.com or self-managed), through python-gitlab.

Every request goes through one ``requests.Session`` from :mod:`bot.forges.http`, which owns
retries, ``Retry-After``/``RateLimit-Reset`` waits, backoff and the per-host circuit
breaker; python-gitlab's own retrying is switched off (:class:`_Gitlab`) so a failing call
is not retried twice over. Projects are addressed by their path (``group/sub/project``)
through lazy objects, so no call is spent looking a project up by name.

GitLab numbers issues and merge requests separately (both have an ``iid``): the calls that
take a ``number`` act on the issue unless ``pull=True`` says it is a merge request.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import gitlab
import requests
from gitlab.v4.objects import Project, ProjectIssue, ProjectMergeRequest

from bot import gitops
from bot.config import GitLabSettings
from bot.errors import ConfigError, ForgeError
from bot.forges.base import (
    LOG_TAIL_CHARS,
    CheckResult,
    ForgeComment,
    Issue,
    NewPull,
    PullRequest,
    PullState,
    rewrite_url,
)
from bot.forges.checks import (
    GITLAB_STATUSES,
    OWN_CONTEXT,
    clip,
    state_of,
    tail,
    text_of,
    without_own,
)
from bot.forges.http import make_session

STATUS_NAME = "forgebot"
# The Forge protocol's states (and GitHub's "error") → GitLab's commit status states.
STATUS_STATES = {"pending": "pending", "success": "success", "failure": "failed",
                 "error": "failed", "failed": "failed"}
# GitHub's reaction names, which the pipeline uses, → GitLab's emoji names.
EMOJI = {"+1": "thumbsup", "-1": "thumbsdown", "laugh": "laughing", "hooray": "tada",
         "confused": "confused", "heart": "heart", "rocket": "rocket", "eyes": "eyes"}
# Access levels (python-gitlab's gitlab.const.AccessLevel): 10 guest, 15 planner,
# 20 reporter, 30 developer, 40 maintainer, 50 owner, 60 instance admin.
_READ_LEVEL, _WRITE_LEVEL, _ADMIN_LEVEL = 10, 30, 50
_RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
_DESCRIPTION_MAX = 255  # GitLab rejects longer commit status descriptions
_NOTE_CACHE_MAX = 10_000  # remembered status-note ids, about one per job
# GitLab reads these title prefixes as "draft" (case-insensitive): Draft:, [Draft], (Draft).
_DRAFT_RE = re.compile(r"^\s*(?:draft:|\[draft\]|\(draft\))\s*", re.IGNORECASE)
_SHA_RE = re.compile(r"[0-9a-f]{40}([0-9a-f]{24})?")


class _Gitlab(gitlab.Gitlab):
    """python-gitlab with its retrying off: the session's adapter is the one retry policy.

    Left on, python-gitlab sleeps and re-sends on every 429 the adapter hands back (up to
    ten times, and it cannot read an HTTP-date ``Retry-After``).
    """

    def http_request(self, verb: str, path: str, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs.update(obey_rate_limit=False, retry_transient_errors=False, max_retries=0)
        return super().http_request(verb, path, *args, **kwargs)


@contextmanager
def _api(what: str) -> Iterator[None]:
    """Turn python-gitlab's errors into ``ForgeError`` (``ForgeError`` from the session's
    adapter, for transport failures and an open circuit, passes through untouched)."""
    try:
        yield
    except gitlab.GitlabError as exc:
        code = exc.response_code
        reason = " ".join(str(exc.error_message).split())[:300]
        status = f"HTTP {code}" if code else "bad answer"
        raise ForgeError(f"gitlab: {what}: {status}: {reason}",
                         retryable=code in _RETRYABLE_STATUSES) from exc
    except requests.RequestException as exc:  # only if a caller's session is not ours
        raise ForgeError(f"gitlab: {what}: {type(exc).__name__}", retryable=True) from exc


class GitLabClient:
    """The API calls of the Forge protocol against one GitLab instance."""

    def __init__(
        self, settings: GitLabSettings, bot_user: str, *, session: requests.Session | None = None
    ) -> None:
        """``session``: a resilient session (tests pass one with a fake clock); by default
        one is made from the settings' timeout and retry count."""
        if not settings.token:
            raise ConfigError("forges.gitlab.token is required (an access token with the api "
                              "and write_repository scopes)")
        base_url = _base_url(settings.base_url)
        self.settings = settings
        self.bot_user = settings.bot_user or bot_user
        self._token = settings.token
        self._session = session or make_session(
            host_key=f"gitlab:{urlsplit(base_url).netloc}",
            timeout_s=settings.timeout_seconds,
            max_retries=settings.max_retries,
        )
        # python-gitlab sets its own User-Agent on every request; keep the session's.
        self._gl = _Gitlab(base_url, private_token=settings.token, session=self._session,
                           timeout=settings.timeout_seconds, per_page=100,
                           user_agent=str(self._session.headers.get("User-Agent", "forgebot")))
        self._clone_urls: dict[str, str] = {}
        self._own_id: int | None = None
        # (repo, number, pull, marker) -> the id of the bot's note holding that marker
        self._note_ids: dict[tuple[str, int, bool, str], int] = {}

    # ------------------------------------------------------------------ repository

    def clone_url(self, repo: str) -> str:
        """The project's ``http_url_to_repo`` after ``git_url_rewrite`` (one GET, cached:
        a project's URL changes only when its path does)."""
        url = self._clone_urls.get(repo)
        if url is None:
            with _api(f"read project {repo}"):
                data = self._gl.projects.get(repo).attributes
            url = _text(data, "http_url_to_repo", repo)
            self._clone_urls[repo] = url
        return rewrite_url(url, self.settings.git_url_rewrite)

    def git_auth(self, repo: str) -> dict[str, str]:
        """The token as git's HTTPS password; GitLab takes any user name, ``oauth2`` by habit."""
        return gitops.auth_env("oauth2", self._token)

    def changed_files(self, repo: str, base: str, head: str) -> list[str]:
        """Paths changed between two commits (``repository/compare``): both sides of a rename."""
        for sha in (base, head):
            if not _SHA_RE.fullmatch(sha):
                raise ForgeError(f"gitlab: not a full commit sha: {sha!r}")
        with _api(f"compare {base[:12]}..{head[:12]} in {repo}"):
            result = self._project(repo).repository_compare(base, head)
        if not isinstance(result, dict):
            raise ForgeError(f"gitlab: compare in {repo}: the answer is not a JSON object")
        if result.get("compare_timeout"):
            raise ForgeError(f"gitlab: compare {base[:12]}..{head[:12]} in {repo} timed out "
                             "on the server; the diff is too large to list")
        paths: dict[str, None] = {}  # ordered set
        for diff in _dicts(result.get("diffs"), f"compare in {repo}"):
            for key in ("old_path", "new_path"):
                path = diff.get(key)
                if isinstance(path, str) and path:
                    paths[path] = None
        return list(paths)

    # ------------------------------------------------------------------ issues

    def get_issue(self, repo: str, number: int) -> Issue:
        """Issue ``number`` (its iid) as it is now."""
        with _api(f"read issue #{number} of {repo}"):
            data = self._project(repo).issues.get(number).attributes
        return _issue(data, f"issue #{number} of {repo}")

    def close_issue(self, repo: str, number: int, comment: str | None = None) -> None:
        """A note (when ``comment`` is given), then ``PUT .../issues/:iid`` with
        ``state_event=close``; closing a closed issue changes nothing."""
        if comment is not None:
            self.comment(repo, number, comment)
        with _api(f"close issue #{number} of {repo}"):
            self._project(repo).issues.update(number, {"state_event": "close"})

    def delete_branch(self, repo: str, branch: str) -> None:
        """``DELETE /projects/:id/repository/branches/:branch``; a branch that is already
        gone (404) is fine."""
        try:
            with _api(f"delete branch {branch} of {repo}"):
                self._project(repo).branches.delete(branch)
        except ForgeError as exc:
            if _status_of(exc) != 404:
                raise

    # ------------------------------------------------------------------ merge requests

    def find_pull(self, repo: str, head: str) -> PullRequest | None:
        """The open merge request from branch ``head`` of this project (not of a fork)."""
        with _api(f"list merge requests from {head} in {repo}"):
            found = self._project(repo).mergerequests.list(
                state="opened", source_branch=head, get_all=False)
        for mr in found:
            data = mr.attributes
            # A fork can open a merge request from a branch of the same name; it is not ours.
            if data.get("source_project_id") == data.get("target_project_id"):
                return _pull(data, repo)
        return None

    def open_pull(self, repo: str, pull: NewPull) -> PullRequest:
        """Open a merge request; a draft gets GitLab's ``Draft: `` title prefix.

        GitLab allows one open merge request per source branch and answers 409 to a second
        one: then the one already open (say, made by an attempt whose answer was lost) is
        returned instead.
        """
        data = {"source_branch": pull.head, "target_branch": pull.base,
                "title": _draft_title(pull.title, pull.draft), "description": pull.body}
        try:
            with _api(f"open a merge request from {pull.head} in {repo}"):
                created = self._project(repo).mergerequests.create(data)
        except ForgeError as exc:
            if not _is_conflict(exc):
                raise
            existing = self.find_pull(repo, pull.head)
            if existing is None:
                raise
            return existing
        return _pull(created.attributes, repo)

    def update_pull(self, repo: str, number: int, *, body: str, draft: bool) -> PullRequest:
        """Replace the description and set or clear the draft prefix (a GET, then a PUT)."""
        mrs = self._project(repo).mergerequests
        with _api(f"read merge request !{number} of {repo}"):
            current = mrs.get(number).attributes
        title = _draft_title(_text(current, "title", f"!{number} of {repo}"), draft)
        with _api(f"update merge request !{number} of {repo}"):
            updated = mrs.update(number, {"description": body, "title": title})
        return _pull(updated, repo)

    # ------------------------------------------------------------------ notes

    def comment(self, repo: str, number: int, body: str, *, pull: bool = False) -> None:
        """Add a note to issue (or, with ``pull``, merge request) ``number``."""
        with _api(f"comment on {_ref(number, pull)} of {repo}"):
            self._noteable(repo, number, pull).notes.create({"body": body})

    def upsert_comment(
        self, repo: str, number: int, marker: str, body: str, *, pull: bool = False
    ) -> None:
        """Edit the bot's own note that holds ``marker``, or add one.

        The first time: a GET per 100 notes, then a POST or a PUT; after that the note's id is
        remembered and an update is one PUT (the pipeline rewrites its status note at every
        stage). "Own" means written by the token's user, whatever name the settings give the
        bot (a project access token's user has a generated name).
        """
        if marker not in body:
            raise ForgeError("gitlab: upsert_comment: the body must contain the marker")
        noteable = self._noteable(repo, number, pull)
        where = f"{_ref(number, pull)} of {repo}"
        key = (repo, number, pull, marker)
        note_id = self._note_ids.get(key)
        if note_id is not None and self._edit_note(noteable, note_id, body, where):
            return
        note_id = self._find_own_note(noteable, marker, where)
        if note_id is None:
            with _api(f"comment on {where}"):
                new_id = noteable.notes.create({"body": body}).attributes.get("id")
            note_id = new_id if isinstance(new_id, int) else None
        elif not self._edit_note(noteable, note_id, body, where):
            raise ForgeError(f"gitlab: note {note_id} on {where} vanished while being edited",
                             retryable=True)
        if note_id is not None:
            if len(self._note_ids) >= _NOTE_CACHE_MAX:
                self._note_ids.clear()  # old jobs' notes: a miss costs one search
            self._note_ids[key] = note_id

    def _edit_note(
        self, noteable: ProjectIssue | ProjectMergeRequest, note_id: int, body: str, where: str
    ) -> bool:
        """PUT the note's new body; False when the note is gone (someone deleted it)."""
        try:
            with _api(f"edit note {note_id} on {where}"):
                noteable.notes.update(note_id, {"body": body})
        except ForgeError as exc:
            if _status_of(exc) == 404:
                return False
            raise
        return True

    def _find_own_note(
        self, noteable: ProjectIssue | ProjectMergeRequest, marker: str, where: str
    ) -> int | None:
        own_id = self._own_user_id()
        with _api(f"read the notes of {where}"):
            for note in noteable.notes.list(iterator=True, sort="asc", order_by="created_at"):
                data = note.attributes
                author = data.get("author")
                if (isinstance(author, dict) and author.get("id") == own_id
                        and not data.get("system") and marker in str(data.get("body") or "")):
                    note_id = data.get("id")
                    return note_id if isinstance(note_id, int) else None
        return None

    def react(
        self, repo: str, number: int, comment_id: int | None, reaction: str, *,
        pull: bool = False,
    ) -> None:
        """Award an emoji (``eyes`` → 👀) to a note, or to the issue or merge request.

        GitLab answers 404 "has already been taken" to a second award of the same emoji by
        the same user: that is the wanted state, not an error.
        """
        noteable = self._noteable(repo, number, pull)
        target = noteable if comment_id is None else noteable.notes.get(comment_id, lazy=True)
        name = EMOJI.get(reaction, reaction)
        try:
            with _api(f"award :{name}: on {_ref(number, pull)} of {repo}"):
                target.awardemojis.create({"name": name})
        except ForgeError as exc:
            if not (_status_of(exc) == 404 and "has already been taken" in str(exc)):
                raise

    # ------------------------------------------------------------------ labels

    def add_labels(
        self, repo: str, number: int, labels: list[str], *, pull: bool = False
    ) -> None:
        """Add labels (``add_labels``: the others stay; GitLab creates unknown ones)."""
        if not labels:
            return
        self._edit_labels(repo, number, pull, "add_labels", labels)

    def remove_label(self, repo: str, number: int, label: str, *, pull: bool = False) -> None:
        """Remove one label (``remove_labels``); GitLab ignores a label that is not there."""
        self._edit_labels(repo, number, pull, "remove_labels", [label])

    def _edit_labels(
        self, repo: str, number: int, pull: bool, field: str, labels: list[str]
    ) -> None:
        if any("," in label for label in labels):
            # The API takes a comma-separated list: a comma would split the label in two.
            raise ForgeError(f"gitlab: a label name cannot contain a comma: {labels!r}")
        project = self._project(repo)
        manager = project.mergerequests if pull else project.issues
        with _api(f"change the labels of {_ref(number, pull)} of {repo}"):
            manager.update(number, {field: ",".join(labels)})

    # ------------------------------------------------------------------ status, access

    def set_status(self, repo: str, sha: str, state: str, description: str) -> None:
        """Set the commit status named ``forgebot`` (pending, success, failed).

        GitLab refuses to set a pending status again ("Cannot transition status via
        :enqueue from :pending"): the status is already what was asked, so that is success.
        """
        if not _SHA_RE.fullmatch(sha):
            raise ForgeError(f"gitlab: not a full commit sha: {sha!r}")
        wanted = STATUS_STATES.get(state)
        if wanted is None:
            raise ForgeError(f"gitlab: unknown status state {state!r}: expected one of "
                             f"{sorted(STATUS_STATES)}")
        data = {"state": wanted, "name": STATUS_NAME, "description": description[:_DESCRIPTION_MAX]}
        try:
            with _api(f"set the status of {sha[:12]} in {repo}"):
                self._project(repo).commits.get(sha, lazy=True).statuses.create(data)
        except ForgeError as exc:
            if not _already_in_state(exc, wanted):
                raise

    def permission(self, repo: str, user: str) -> str:
        """``none``, ``read`` (guest to reporter), ``write`` (developer, maintainer) or
        ``admin`` (owner), counting members inherited from groups (two GETs; one for a
        ``#<id>`` user, as pushes from older GitLab versions name them)."""
        user_id = _user_id(user) if user.startswith("#") else self._find_user(user)
        if user_id is None:
            return "none"
        try:
            with _api(f"read the access of {user} to {repo}"):
                member = self._project(repo).members_all.get(user_id).attributes
        except ForgeError as exc:
            if _status_of(exc) == 404:
                return "none"  # not a member, directly or through a group
            raise
        if member.get("state", "active") != "active":
            return "none"  # blocked, or an invitation not yet accepted
        return access_name(member.get("access_level"))

    def _find_user(self, username: str) -> int | None:
        with _api(f"look up user {username}"):
            users = self._gl.users.list(username=username, get_all=False)
        match = [u.attributes for u in users if u.attributes.get("username") == username]
        return int(match[0]["id"]) if match else None

    # ------------------------------------------------------------------ the forge's CI

    def commit_checks(self, repo: str, sha: str) -> list[CheckResult]:
        """``GET .../repository/commits/{sha}/statuses`` (the latest of each name: CI jobs
        and external statuses alike), without the bot's own ``forgebot`` status; a failed
        job allowed to fail counts as skipped. A failed CI job's log tail comes from
        ``GET .../jobs/{id}/trace``, read as a stream and cut to its last characters; an
        external status has no trace (404) and keeps only its description."""
        if not _SHA_RE.fullmatch(sha):
            raise ForgeError(f"gitlab: not a full commit sha: {sha!r}")
        with _api(f"read the checks of {sha[:12]} in {repo}"):
            found = self._project(repo).commits.get(sha, lazy=True).statuses.list(get_all=True)
        results = []
        for status in found:
            data = status.attributes
            state = state_of(GITLAB_STATUSES, data.get("status"))
            if state == "failure" and data.get("allow_failure") is True:
                state = "skipped"
            name = text_of(data.get("name"))
            log = ""
            if state == "failure" and name != OWN_CONTEXT and isinstance(data.get("id"), int):
                log = self._trace_tail(repo, data["id"])
            results.append(CheckResult(name=name, state=state,
                                       summary=clip(text_of(data.get("description"))),
                                       log=log, url=text_of(data.get("target_url"))))
        return without_own(r for r in results if r.name)

    def _trace_tail(self, repo: str, job_id: int) -> str:
        """The end of job ``job_id``'s log, holding at most two chunks' worth beyond the
        tail in memory however long the log is; ``""`` when the job has no trace."""
        kept = bytearray()

        def keep(chunk: bytes) -> None:
            kept.extend(chunk)
            if len(kept) > 4 * LOG_TAIL_CHARS:
                del kept[: len(kept) - 4 * LOG_TAIL_CHARS]

        try:
            with _api(f"read the log of job {job_id} in {repo}"):
                self._project(repo).jobs.get(job_id, lazy=True).trace(
                    streamed=True, action=keep, chunk_size=16_384)
        except ForgeError as exc:
            if _status_of(exc) in (403, 404):
                return ""  # an external status, or a log the token may not read
            raise
        return tail(kept.decode("utf-8", errors="replace"))

    # ------------------------------------------------------------------ reconciliation

    def default_branch(self, repo: str) -> str:
        """The project's ``default_branch`` (one GET)."""
        with _api(f"read project {repo}"):
            data = self._gl.projects.get(repo).attributes
        return _text(data, "default_branch", repo)

    def open_issues_with_label(self, repo: str, label: str) -> list[Issue]:
        """``GET /projects/:id/issues?state=opened&labels={label}``, every page."""
        if "," in label:
            raise ForgeError(f"gitlab: a label name cannot contain a comma: {label!r}")
        with _api(f"list open issues labelled {label!r} in {repo}"):
            found = [i.attributes for i in self._project(repo).issues.list(
                state="opened", labels=[label], iterator=True)]
        return [_issue(data, f"an issue of {repo}") for data in found]

    def label_actor(self, repo: str, number: int, label: str) -> str | None:
        """The user of the last ``add`` of ``label`` in the issue's resource label events."""
        issue = self._project(repo).issues.get(number, lazy=True)
        actor = None
        with _api(f"read the label events of #{number} of {repo}"):
            for event in issue.resourcelabelevents.list(iterator=True):
                data = event.attributes
                name = (data.get("label") or {}).get("name")
                if data.get("action") == "add" and name == label:
                    actor = (data.get("user") or {}).get("username")
        return actor if isinstance(actor, str) and actor else None

    def comments_since(
        self, repo: str, number: int, since: datetime, *, pull: bool = False
    ) -> list[ForgeComment]:
        """The notes (not GitLab's system notes) created after ``since``, oldest first."""
        where = f"{_ref(number, pull)} of {repo}"
        found = []
        with _api(f"read the notes of {where}"):
            notes = [n.attributes for n in self._noteable(repo, number, pull).notes.list(
                iterator=True, sort="asc", order_by="created_at")]
        for data in notes:
            if data.get("system"):
                continue
            created = _time(data, "created_at", where)
            author = data.get("author")
            note_id = data.get("id")
            if created > since and isinstance(note_id, int):
                found.append(ForgeComment(
                    note_id, _text(author if isinstance(author, dict) else {}, "username",
                                   where), str(data.get("body") or ""), created))
        return found

    def pull_state(self, repo: str, number: int) -> PullState:
        """Merge request ``number``: ``opened`` (or ``locked``) is open; ``merged``, ``closed``."""
        where = f"!{number} of {repo}"
        with _api(f"read merge request {where}"):
            data = self._project(repo).mergerequests.get(number).attributes
        state = {"merged": "merged", "closed": "closed"}.get(str(data.get("state")), "open")
        who = data.get("merged_by") if state == "merged" else data.get("closed_by")
        by = who.get("username") if isinstance(who, dict) else None
        return PullState(number=number, state=state, head=_text(data, "source_branch", where),
                         by=by if isinstance(by, str) else "", url=_text(data, "web_url", where))

    def create_issue(self, repo: str, title: str, body: str) -> int:
        """``POST /projects/:id/issues``; returns the new issue's iid."""
        with _api(f"open an issue in {repo}"):
            created = self._project(repo).issues.create({"title": title, "description": body})
        iid = created.attributes.get("iid")
        if isinstance(iid, bool) or not isinstance(iid, int):
            raise ForgeError(f"gitlab: the new issue of {repo} has no iid")
        return iid

    def comment_commit(self, repo: str, sha: str, body: str) -> None:
        """``POST /projects/:id/repository/commits/:sha/comments``, once: the commit's
        comments are read first and nothing is posted when the token's user already left
        this body there (a redelivered push, or a pass that runs again)."""
        if not _SHA_RE.fullmatch(sha):
            raise ForgeError(f"gitlab: not a full commit sha: {sha!r}")
        own_id = self._own_user_id()
        commit = self._project(repo).commits.get(sha, lazy=True)
        where = f"commit {sha[:12]} of {repo}"
        with _api(f"read the comments of {where}"):
            for comment in commit.comments.list(iterator=True):
                data = comment.attributes
                author = data.get("author")
                if (isinstance(author, dict) and author.get("id") == own_id
                        and data.get("note") == body):
                    return
        with _api(f"comment on {where}"):
            commit.comments.create({"note": body})

    def edit_issue(self, repo: str, number: int, body: str) -> None:
        """``PUT /projects/:id/issues/:iid`` with only ``description``."""
        with _api(f"edit issue #{number} of {repo}"):
            self._project(repo).issues.update(number, {"description": body})

    # ------------------------------------------------------------------ helpers

    def _project(self, repo: str) -> Project:
        # lazy: the path is enough for every call, and no GET is spent on the project.
        return self._gl.projects.get(repo, lazy=True)

    def _noteable(self, repo: str, number: int, pull: bool) -> ProjectIssue | ProjectMergeRequest:
        project = self._project(repo)
        if pull:
            return project.mergerequests.get(number, lazy=True)
        return project.issues.get(number, lazy=True)

    def _own_user_id(self) -> int:
        """The id of the token's user (``GET /user``, once per process)."""
        if self._own_id is None:
            with _api("read the token's user"):
                data = self._gl.http_get("/user")
            user_id = data.get("id") if isinstance(data, dict) else None
            if isinstance(user_id, bool) or not isinstance(user_id, int):
                raise ForgeError("gitlab: GET /user gave no user id")
            self._own_id = user_id
        return self._own_id


def access_name(level: object) -> str:
    """GitLab's numeric access level as the Forge protocol's permission name."""
    if isinstance(level, bool) or not isinstance(level, int) or level < _READ_LEVEL:
        return "none"  # no access, or "minimal access" (5), which cannot read the code
    if level >= _ADMIN_LEVEL:
        return "admin"
    return "write" if level >= _WRITE_LEVEL else "read"


def _base_url(url: str) -> str:
    url = url.strip().rstrip("/")
    # A common slip: the API root instead of the instance URL; python-gitlab adds /api/v4.
    url = url.removesuffix("/api/v4")
    if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).netloc:
        raise ConfigError(f"forges.gitlab.base_url must be http(s)://HOST[/PATH], not {url!r}")
    return url


def _issue(data: Mapping[str, Any], where: str) -> Issue:
    number = data.get("iid")
    if isinstance(number, bool) or not isinstance(number, int):
        raise ForgeError(f"gitlab: {where} has no iid")
    author = data.get("author")
    return Issue(
        number=number,
        title=_text(data, "title", where),
        body=data.get("description") or "",
        labels=tuple(str(label) for label in data.get("labels") or []),
        author=_text(author if isinstance(author, dict) else {}, "username", where),
    )


def _time(data: Mapping[str, Any], key: str, where: str) -> datetime:
    """An ISO 8601 field (``2024-01-02T03:04:05.000Z``) as an aware UTC time."""
    try:
        return datetime.fromisoformat(_text(data, key, where).replace("Z", "+00:00")
                                      ).astimezone(UTC)
    except ValueError as exc:
        raise ForgeError(f"gitlab: {where}: a bad time in {key!r}") from exc


def _draft_title(title: str, draft: bool) -> str:
    plain = title
    while _DRAFT_RE.match(plain):  # "Draft: [Draft] x" has two prefixes
        plain = _DRAFT_RE.sub("", plain, count=1)
    return f"Draft: {plain}" if draft else plain


def _pull(data: Mapping[str, Any], repo: str) -> PullRequest:
    where = f"a merge request of {repo}"
    number = data.get("iid")
    if isinstance(number, bool) or not isinstance(number, int):
        raise ForgeError(f"gitlab: {where} has no iid")
    title = _text(data, "title", where)
    draft = data.get("draft")
    return PullRequest(
        number=number,
        head=_text(data, "source_branch", where),
        base=_text(data, "target_branch", where),
        title=_draft_title(title, False),
        body=data.get("description") or "",
        # "draft" since GitLab 13.x; older answers only have the title prefix to go by.
        draft=draft if isinstance(draft, bool) else bool(_DRAFT_RE.match(title)),
        url=_text(data, "web_url", where),
    )


def _text(data: Mapping[str, Any], key: str, where: str) -> str:
    value = data.get(key)
    if not isinstance(value, str):
        raise ForgeError(f"gitlab: {where}: the answer has no {key}")
    return value


def _dicts(value: object, where: str) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise ForgeError(f"gitlab: {where}: unexpected answer shape")
    return value


def _ref(number: int, pull: bool) -> str:
    return f"!{number}" if pull else f"#{number}"


def _status_of(exc: ForgeError) -> int | None:
    """The HTTP status behind a ForgeError raised by :func:`_api`, if there was one."""
    cause = exc.__cause__
    return cause.response_code if isinstance(cause, gitlab.GitlabError) else None


def _is_conflict(exc: ForgeError) -> bool:
    return _status_of(exc) == 409


def _already_in_state(exc: ForgeError, state: str) -> bool:
    message = str(exc)
    return (_status_of(exc) == 400 and "Cannot transition status" in message
            and f"from :{state}" in message)


def _user_id(user: str) -> int | None:
    """The id of a ``#<id>`` user (a push from a GitLab that sent no user name)."""
    digits = user.removeprefix("#")
    return int(digits) if digits.isdigit() else None
