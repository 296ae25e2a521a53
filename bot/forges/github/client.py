"""The Forge API calls on GitHub, through github3.py over the one resilient session.

github3.py does the endpoints it has (issues, pull requests by head, labels, comments,
statuses, compare); the same session serves the few it lacks (open a *draft* pull request,
reactions, a collaborator's permission). Every github3 or HTTP failure leaves here as
``ForgeError``, built by :func:`bot.forges.http.check` so the message never carries a token.

Authentication is per request (:mod:`bot.forges.github.auth`): ``RepoTokenAuth`` reads the
repository from the URL and asks a token source for its token (a personal token, or the
installation token of a GitHub App, refreshed when it nears expiry). So github3's objects
never hold a token that can go stale, and one session serves every installation.

Idempotency on top of the session's own retries: the session does not resend a POST or
PATCH that may have reached GitHub (a 5xx, a timeout). Such an *uncertain write* is retried
here, a few times, and only where that is safe: :meth:`GitHubClient.open_pull` first looks
the pull request up by its head branch, :meth:`GitHubClient.upsert_comment` looks for its
marker again, and labels, reactions, statuses and body edits are harmless to repeat. Reads
are never retried here (the session did that), so attempts do not multiply. One job makes
one pull request and one status comment however the network behaves.

Draft flags: REST can open a pull request as a draft, but cannot turn a pull request into
a draft or mark a draft ready for review; GraphQL's ``convertPullRequestToDraft`` and
``markPullRequestReadyForReview`` can. :meth:`GitHubClient.update_pull` changes the body
through REST, then the flag through GraphQL when it differs; if GraphQL refuses, it logs and
returns the pull request with its *actual* flag.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

import github3  # type: ignore[import-untyped]
import requests

from bot import gitops
from bot.errors import ForgeError
from bot.forges.base import (
    CheckResult,
    ForgeComment,
    Issue,
    NewPull,
    PullRequest,
    PullState,
    rewrite_url,
)
from bot.forges.checks import (
    STATUS_STATES,
    clip,
    state_of,
    text_of,
    without_own,
)
from bot.forges.github import convert
from bot.forges.github.auth import BearerAuth, TokenSource
from bot.forges.http import check

log = logging.getLogger(__name__)

STATUS_CONTEXT = "forgebot"
STATES = ("pending", "success", "failure", "error")
REACTIONS = ("+1", "-1", "laugh", "confused", "heart", "hooray", "rocket", "eyes")
PERMISSIONS = ("none", "read", "write", "admin")
# The legacy ``permission`` field already folds roles into four levels; these map the
# role names some GitHub Enterprise versions put there instead.
_ROLE_LEVELS = {"maintain": "write", "triage": "read", "push": "write", "pull": "read"}
_DESCRIPTION_MAX = 140  # GitHub rejects longer commit-status descriptions
_COMPARE_FILES_MAX = 300  # the compare API lists at most this many files
_MAX_PAGES = 50  # of 100 items: lists longer than this are not read whole
_HANDLES_MAX = 256
_REPO_NAME = re.compile(r"[A-Za-z0-9_.-]+")
_SHA_RE = re.compile(r"[0-9a-f]{40}([0-9a-f]{24})?")  # SHA-1 or SHA-256

T = TypeVar("T")


def split_repo(repo: str) -> tuple[str, str]:
    """``owner/name`` → ``(owner, name)``; ``ForgeError`` for anything else."""
    owner, _, name = repo.partition("/")
    if not (_REPO_NAME.fullmatch(owner) and _REPO_NAME.fullmatch(name)) or name in {".", ".."}:
        raise ForgeError(f"bad GitHub repository name {repo!r}: expected owner/name")
    return owner, name


def web_url(api_url: str) -> str:
    """The web root that hosts git for an API root.

    ``https://api.github.com`` → ``https://github.com``; GitHub Enterprise's
    ``https://HOST/api/v3`` → ``https://HOST``.
    """
    parts = urlsplit(api_url.rstrip("/"))
    host, path = parts.netloc, parts.path
    if path.endswith("/api/v3"):
        path = path[: -len("/api/v3")]
    elif host.startswith("api."):
        host = host[len("api.") :]
    return f"{parts.scheme}://{host}{path}"


class _Handles:
    """github3 objects by key, least recently used dropped first.

    They are kept only for the URLs they carry (a repository's or an issue's API root),
    which never go stale; their data is never read from here. This saves the GET github3
    would otherwise make before every label, comment or status call.
    """

    def __init__(self, size: int = _HANDLES_MAX) -> None:
        self._size = size
        self._lock = threading.Lock()
        self._items: OrderedDict[object, Any] = OrderedDict()

    def get(self, key: object, load: Callable[[], Any]) -> Any:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        value = load()
        self.put(key, value)
        return value

    def peek(self, key: object) -> Any | None:
        with self._lock:
            return self._items.get(key)

    def put(self, key: object, value: Any) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)

    def drop(self, key: object) -> None:
        with self._lock:
            self._items.pop(key, None)


class _UncertainWrite(Exception):
    """A write failed in a way that may have reached GitHub (a 5xx, a timeout)."""

    def __init__(self, error: ForgeError) -> None:
        super().__init__(str(error))
        self.error = error


def _graphql_url(api: str) -> str:
    """GitHub's GraphQL endpoint beside its REST root: ``https://api.github.com/graphql``,
    or ``https://HOST/api/graphql`` for Enterprise's ``https://HOST/api/v3``."""
    return f"{api.removesuffix('/v3')}/graphql"


@contextmanager
def translated(what: str) -> Iterator[None]:
    """Re-raise github3.py's errors as ``ForgeError`` (``retryable`` from the status)."""
    try:
        yield
    except github3.exceptions.GitHubError as exc:
        response = getattr(exc, "response", None)
        if isinstance(response, requests.Response):
            try:
                check(response, what)
            except ForgeError as error:
                raise error from exc
        raise ForgeError(f"{what}: unexpected answer from GitHub ({exc.msg})") from exc
    except github3.exceptions.GitHubException as exc:
        raise ForgeError(f"{what}: {type(exc).__name__}") from exc


class GitHubClient:
    """The GitHub calls of the Forge protocol; ``repo`` is always ``owner/name``."""

    def __init__(
        self,
        gh: Any,
        *,
        api_url: str,
        bot_user: str,
        tokens: TokenSource,
        git_url_rewrite: Mapping[str, str],
        max_attempts: int = 3,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._gh = gh
        self._session: requests.Session = gh.session
        self._api = api_url.rstrip("/")
        self._web = web_url(self._api)
        self.bot_user = bot_user
        # An App comments as "<slug>[bot]"; accept that form of the configured name too.
        self._bot_logins = {bot_user.lower(), f"{bot_user.lower()}[bot]"}
        self._tokens = tokens
        self._rewrite = dict(git_url_rewrite)
        self._attempts = max(1, max_attempts)
        self._sleep = sleep
        self._repos = _Handles()
        self._issues = _Handles()
        self._comments = _Handles()  # (repo, number, marker) -> the bot's status comment

    # ------------------------------------------------------------------ git

    def clone_url(self, repo: str) -> str:
        """``https://github.com/owner/name.git`` (or the Enterprise host), rewritten by
        ``git_url_rewrite``; never with a credential in it."""
        owner, name = split_repo(repo)
        return rewrite_url(f"{self._web}/{owner}/{name}.git", self._rewrite)

    def git_auth(self, repo: str) -> dict[str, str]:
        """Askpass environment with user ``x-access-token`` and a token valid for a while
        (an App's installation token is refreshed first when it nears expiry)."""
        split_repo(repo)
        return gitops.auth_env("x-access-token", self._tokens(repo))

    # --------------------------------------------------------------- issues

    def get_issue(self, repo: str, number: int) -> Issue:
        """``GET /repos/{o}/{r}/issues/{n}`` (works for a pull request's number too)."""
        owner, name = split_repo(repo)
        with translated(f"read issue #{number} of {repo}"):
            issue = self._gh.issue(owner, name, number)
        if issue is None:
            raise ForgeError(f"{repo} has no issue #{number}")
        self._issues.put((repo.lower(), number), issue)
        return convert.issue(issue.as_dict())

    def comment(self, repo: str, number: int, body: str, *, pull: bool = False) -> None:
        """``POST /repos/{o}/{r}/issues/{n}/comments`` (issues and pull requests share one
        numbering, so ``pull`` changes nothing).

        Not retried after an answer that may mean it was posted: a plain comment has no
        marker to find it by. Use :meth:`upsert_comment` for anything that may repeat.
        """
        with translated(f"comment on #{number} of {repo}"):
            self._issue(repo, number).create_comment(body)

    def upsert_comment(self, repo: str, number: int, marker: str, body: str) -> None:
        """Edit the bot's own comment that contains ``marker``, or add one.

        The first time: ``GET .../issues/{n}/comments`` (100 a page), then ``POST`` (or
        ``PATCH .../issues/comments/{id}`` when an earlier process left one). Afterwards the
        comment is remembered and only ``PATCH``ed; a remembered comment someone deleted is
        searched for again. After a failure that may have posted, the search runs again, so
        the comment is never doubled.
        """
        if marker not in body:
            raise ForgeError("upsert_comment: the body must contain the marker")
        key = (repo.lower(), number, marker)
        what = f"update the bot's comment on #{number} of {repo}"

        def once() -> None:
            known = self._comments.peek(key)
            if known is not None:
                try:
                    self._write(what, lambda: known.edit(body))
                    return
                except ForgeError as exc:
                    if not isinstance(exc.__cause__, github3.exceptions.NotFoundError):
                        raise
                    self._comments.drop(key)  # deleted by someone: look again
            issue = self._issue(repo, number)
            with translated(what):
                found = next((c for c in issue.comments() if self._is_own(c, marker)), None)
            if found is None:
                found = self._write(what, lambda: issue.create_comment(body))
            else:
                edit = found.edit
                self._write(what, lambda: edit(body))
            self._comments.put(key, found)

        self._retrying(what, once)

    def react(
        self, repo: str, number: int, comment_id: int | None, reaction: str, *,
        pull: bool = False,
    ) -> None:
        """``POST .../issues/{n}/reactions`` or ``.../issues/comments/{id}/reactions`` (a pull
        request is an issue here: ``pull`` changes nothing).

        GitHub answers 200 for a reaction that is already there, so repeating is harmless.
        """
        if reaction not in REACTIONS:
            raise ForgeError(f"unknown reaction {reaction!r}: expected one of {REACTIONS}")
        owner, name = split_repo(repo)
        where = "issues" if comment_id is None else "issues/comments"
        target = number if comment_id is None else comment_id
        url = f"{self._api}/repos/{owner}/{name}/{where}/{target}/reactions"
        what = f"react {reaction} on #{number} of {repo}"
        self._retrying(what, lambda: self._write(
            what, lambda: check(self._session.post(url, json={"content": reaction}), what)))

    def close_issue(self, repo: str, number: int, comment: str | None = None) -> None:
        """The comment (``POST .../issues/{n}/comments``), then ``PATCH .../issues/{n}``
        with ``state: closed`` and ``state_reason: completed``; only those two fields are
        sent, so nothing else of the issue can be overwritten. Closing twice is harmless."""
        if comment is not None:
            self.comment(repo, number, comment)
        owner, name = split_repo(repo)
        url = f"{self._api}/repos/{owner}/{name}/issues/{number}"
        what = f"close issue #{number} of {repo}"
        payload = {"state": "closed", "state_reason": "completed"}
        self._retrying(what, lambda: self._write(
            what, lambda: check(self._session.patch(url, json=payload), what)))

    def delete_branch(self, repo: str, branch: str) -> None:
        """``DELETE /repos/{o}/{r}/git/refs/heads/{branch}``; a branch that is already gone
        (404, or 422 "Reference does not exist") is fine."""
        owner, name = split_repo(repo)
        url = f"{self._api}/repos/{owner}/{name}/git/refs/heads/{quote(branch, safe='/')}"
        what = f"delete branch {branch} of {repo}"

        def once() -> None:
            response = self._session.delete(url)
            gone = response.status_code == 404 or (
                response.status_code == 422 and "does not exist" in response.text.lower())
            if not gone:
                check(response, what)

        self._retrying(what, lambda: self._write(what, once))

    def add_labels(self, repo: str, number: int, labels: list[str]) -> None:
        """``POST .../issues/{n}/labels``: adds, keeps the labels already there."""
        if not labels:
            return
        what = f"add labels to #{number} of {repo}"
        issue = self._issue(repo, number)
        self._retrying(what, lambda: self._write(what, lambda: issue.add_labels(*labels)))

    def remove_label(self, repo: str, number: int, label: str) -> None:
        """``DELETE .../issues/{n}/labels/{name}``; a label that is not there is fine."""
        issue = self._issue(repo, number)
        try:
            with translated(f"remove label {label!r} from #{number} of {repo}"):
                # github3 does not quote path parts: "a/b" or "good first issue" would break.
                issue.remove_label(quote(label, safe=""))
        except ForgeError as exc:
            if not isinstance(exc.__cause__, github3.exceptions.NotFoundError):
                raise

    # -------------------------------------------------------- pull requests

    def find_pull(self, repo: str, head: str) -> PullRequest | None:
        """``GET /repos/{o}/{r}/pulls?state=open&head={owner}:{head}``."""
        owner, _ = split_repo(repo)
        repository = self._repository(repo)
        with translated(f"look up the pull request from {head} on {repo}"):
            for found in repository.pull_requests(state="open", head=f"{owner}:{head}"):
                pull = convert.pull_of(found)
                if pull.head == head:
                    return pull
        return None

    def open_pull(self, repo: str, pull: NewPull) -> PullRequest:
        """``POST /repos/{o}/{r}/pulls`` (``draft`` when asked; github3 cannot say draft).

        When the answer leaves it unclear whether the pull request was made (a 5xx, a
        timeout), or GitHub says one already exists for the branch, the open pull request
        from ``pull.head`` is looked up and returned instead of making a second one.
        """
        owner, name = split_repo(repo)
        url = f"{self._api}/repos/{owner}/{name}/pulls"
        payload = {"title": pull.title, "head": pull.head, "base": pull.base, "body": pull.body,
                   "draft": pull.draft}
        what = f"open a pull request from {pull.head} on {repo}"
        tries = 0

        def once() -> PullRequest:
            nonlocal tries
            tries += 1
            if tries > 1:  # the failed attempt may have made it after all
                existing = self.find_pull(repo, pull.head)
                if existing is not None:
                    return existing
            return self._write(what, lambda: self._create_pull(url, payload, what, repo))

        return self._retrying(what, once)

    def _create_pull(self, url: str, payload: dict[str, Any], what: str, repo: str) -> PullRequest:
        response = self._session.post(url, json=payload)
        if response.status_code == 422:
            message = response.text.lower()
            if "already exists" in message:
                existing = self.find_pull(repo, str(payload["head"]))
                if existing is not None:
                    return existing
            elif payload["draft"] and "draft" in message:
                # Private repositories on free plans cannot have drafts: open a normal one;
                # the failing commit status still says what the draft would have said.
                log.warning("%s: drafts are not supported there, opening a normal one", what)
                return self._create_pull(url, {**payload, "draft": False}, what, repo)
        data = check(response, what).json()
        if not isinstance(data, dict):
            raise ForgeError(f"{what}: GitHub answered without a pull request")
        return convert.pull(data)

    def update_pull(self, repo: str, number: int, *, body: str, draft: bool) -> PullRequest:
        """``GET`` then ``PATCH /repos/{o}/{r}/pulls/{n}`` with the new body.

        The draft flag cannot change through REST (see the module doc): the pull request
        comes back with its actual flag, and a difference is logged.
        """
        owner, name = split_repo(repo)
        what = f"update pull request #{number} of {repo}"
        with translated(what):
            pull = self._gh.pull_request(owner, name, number)
        if pull is None:
            raise ForgeError(f"{repo} has no pull request #{number}")

        self._retrying(what, lambda: self._write(what, lambda: pull.update(body=body)))
        result = convert.pull_of(pull)
        if result.draft == draft:
            return result
        node = pull.as_dict().get("node_id")
        try:
            if not isinstance(node, str) or not node:
                raise ForgeError(f"{what}: GitHub gave no node id")
            self._retrying(what, lambda: self._write(
                what, lambda: self._set_draft(repo, node, draft)))
        except ForgeError as exc:
            # The body is what matters most; a person can still press the button.
            log.warning("%s: could not mark it %s: %s; it stays %s", what,
                        "a draft" if draft else "ready for review", exc,
                        "a draft" if result.draft else "ready")
            return result
        return replace(result, draft=draft)

    def _set_draft(self, repo: str, node_id: str, draft: bool) -> None:
        """GraphQL ``convertPullRequestToDraft`` / ``markPullRequestReadyForReview``: the
        only way to change a pull request's draft flag (REST cannot). Harmless to repeat."""
        mutation = "convertPullRequestToDraft" if draft else "markPullRequestReadyForReview"
        query = (f"mutation($id: ID!) {{ {mutation}(input: {{pullRequestId: $id}}) "
                 "{ pullRequest { isDraft } } }")
        what = f"{mutation} on GitHub"
        # GraphQL's path names no repository, so the repository's token is given here.
        token = self._tokens(repo)
        answer = check(self._session.post(_graphql_url(self._api),
                                          json={"query": query, "variables": {"id": node_id}},
                                          auth=BearerAuth(token)), what)
        data = answer.json() if answer.content else {}
        errors = data.get("errors") if isinstance(data, dict) else None
        if errors or not isinstance(data, dict) or not data.get("data"):
            first = errors[0].get("message", "") if isinstance(errors, list) and errors and \
                isinstance(errors[0], dict) else "no data"
            raise ForgeError(f"{what}: {str(first)[:200]}")

    # ---------------------------------------------------------- repository

    def changed_files(self, repo: str, base: str, head: str) -> list[str]:
        """``GET /repos/{o}/{r}/compare/{base}...{head}``: every path touched, renames as
        both their old and new path (as ``git diff --no-renames`` lists them)."""
        what = f"compare {base[:12]}...{head[:12]} on {repo}"
        with translated(what):
            files = self._repository(repo).compare_commits(base, head).files
        if not isinstance(files, list):
            raise ForgeError(f"{what}: GitHub answered without a file list")
        if len(files) >= _COMPARE_FILES_MAX:
            log.warning("%s: GitHub lists at most %d files; the list may be cut short",
                        what, _COMPARE_FILES_MAX)
        paths: dict[str, None] = {}
        for item in files:
            for key in ("previous_filename", "filename"):
                value = item.get(key) if isinstance(item, dict) else None
                if isinstance(value, str):
                    paths[value] = None
        return list(paths)

    def set_status(self, repo: str, sha: str, state: str, description: str) -> None:
        """``POST /repos/{o}/{r}/statuses/{sha}`` with context ``forgebot``; the newest
        status of a context wins, so repeating it is harmless."""
        if state not in STATES:
            raise ForgeError(f"unknown status state {state!r}: expected one of {STATES}")
        if not _SHA_RE.fullmatch(sha):
            raise ForgeError(f"not a full commit sha: {sha!r}")
        text = description if len(description) <= _DESCRIPTION_MAX else (
            description[: _DESCRIPTION_MAX - 1] + "…")
        repository = self._repository(repo)
        what = f"set the {STATUS_CONTEXT} status of {sha[:12]} on {repo}"

        self._retrying(what, lambda: self._write(what, lambda: repository.create_status(
            sha, state, description=text, context=STATUS_CONTEXT)))

    def permission(self, repo: str, user: str) -> str:
        """``GET /repos/{o}/{r}/collaborators/{user}/permission`` → none/read/write/admin;
        a user GitHub does not know (404) has ``none``."""
        owner, name = split_repo(repo)
        url = (f"{self._api}/repos/{owner}/{name}/collaborators/"
               f"{quote(user, safe='')}/permission")
        response = self._session.get(url)
        if response.status_code == 404:
            return "none"
        data = check(response, f"read the permission of {user} on {repo}").json()
        level = data.get("permission") if isinstance(data, dict) else None
        level = _ROLE_LEVELS.get(str(level), level)
        if level not in PERMISSIONS:
            raise ForgeError(f"GitHub answered an unknown permission {level!r} for {user}")
        return str(level)

    # ------------------------------------------------------- the forge's CI

    def commit_checks(self, repo: str, sha: str) -> list[CheckResult]:
        """``GET /repos/{o}/{r}/commits/{sha}/check-runs?filter=latest`` (the latest run of
        each check, 100 at most) and ``GET .../commits/{sha}/status`` (the combined status:
        the latest of each context), without the bot's own ``forgebot`` status.

        A run's ``output.title`` and ``output.summary`` are its summary, ``output.text`` its
        log tail; a status has only its description and ``target_url``.
        """
        owner, name = split_repo(repo)
        if not _SHA_RE.fullmatch(sha):
            raise ForgeError(f"not a full commit sha: {sha!r}")
        root = f"{self._api}/repos/{owner}/{name}/commits/{sha}"
        what = f"read the checks of {sha[:12]} on {repo}"
        params: dict[str, str | int] = {"filter": "latest", "per_page": 100}
        runs = check(self._session.get(f"{root}/check-runs", params=params), what).json()
        combined = check(self._session.get(f"{root}/status", params={"per_page": 100}),
                         what).json()
        if not isinstance(runs, dict) or not isinstance(combined, dict):
            raise ForgeError(f"{what}: GitHub answered without a check list")
        results = [convert.check_run(item) for item in runs.get("check_runs") or []
                   if isinstance(item, dict)]
        results += [CheckResult(name=text_of(item.get("context")),
                                state=state_of(STATUS_STATES, item.get("state")),
                                summary=clip(text_of(item.get("description"))),
                                url=text_of(item.get("target_url")))
                    for item in combined.get("statuses") or [] if isinstance(item, dict)]
        return without_own(r for r in results if r.name)

    # -------------------------------------- reconciliation and the dashboard issue

    def default_branch(self, repo: str) -> str:
        """``default_branch`` of ``GET /repos/{o}/{r}``."""
        owner, name = split_repo(repo)
        what = f"read repository {repo}"
        data = check(self._session.get(f"{self._api}/repos/{owner}/{name}"), what).json()
        return convert.text(data if isinstance(data, dict) else {}, "default_branch")

    def open_issues_with_label(self, repo: str, label: str) -> list[Issue]:
        """``GET /repos/{o}/{r}/issues?state=open&labels={label}``, every page; the pull
        requests that list also holds are left out."""
        owner, name = split_repo(repo)
        items = self._pages(f"{self._api}/repos/{owner}/{name}/issues",
                            {"state": "open", "labels": label},
                            f"list open issues labelled {label!r} on {repo}")
        return [convert.issue(item) for item in items if "pull_request" not in item]

    def label_actor(self, repo: str, number: int, label: str) -> str | None:
        """The ``actor`` of the last ``labeled`` event for ``label`` in
        ``GET /repos/{o}/{r}/issues/{n}/events``."""
        owner, name = split_repo(repo)
        events = self._pages(f"{self._api}/repos/{owner}/{name}/issues/{number}/events", {},
                             f"read the events of #{number} of {repo}")
        actor = None
        for event in events:
            if event.get("event") == "labeled" and (event.get("label") or {}).get(
                    "name") == label:
                actor = (event.get("actor") or {}).get("login")
        return actor if isinstance(actor, str) and actor else None

    def comments_since(
        self, repo: str, number: int, since: datetime, *, pull: bool = False
    ) -> list[ForgeComment]:
        """``GET /repos/{o}/{r}/issues/{n}/comments?since=`` (which filters by the time of
        the last edit), then only those *created* after ``since``; oldest first."""
        owner, name = split_repo(repo)
        stamp = since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        items = self._pages(f"{self._api}/repos/{owner}/{name}/issues/{number}/comments",
                            {"since": stamp}, f"read the comments of #{number} of {repo}")
        found = [ForgeComment(convert.number(item, "id"),
                              convert.text(item.get("user") or {}, "login"),
                              convert.text(item, "body", optional=True),
                              convert.time_of(item, "created_at"))
                 for item in items]
        return sorted((c for c in found if c.created > since), key=lambda c: c.created)

    def pull_state(self, repo: str, number: int) -> PullState:
        """``GET /repos/{o}/{r}/pulls/{n}``: ``merged`` tells a merge from a close."""
        owner, name = split_repo(repo)
        what = f"read pull request #{number} of {repo}"
        data = check(self._session.get(f"{self._api}/repos/{owner}/{name}/pulls/{number}"),
                     what).json()
        if not isinstance(data, dict):
            raise ForgeError(f"{what}: GitHub answered without a pull request")
        merged = data.get("merged") is True or bool(data.get("merged_at"))
        state = "merged" if merged else ("open" if data.get("state") == "open" else "closed")
        by = (data.get("merged_by") or {}).get("login") if merged else None
        return PullState(number=convert.number(data, "number"), state=state,
                         head=convert.text(data.get("head") or {}, "ref"),
                         by=by if isinstance(by, str) else "",
                         url=convert.text(data, "html_url"))

    def create_issue(self, repo: str, title: str, body: str) -> int:
        """``POST /repos/{o}/{r}/issues``. Not retried after an uncertain answer: a second
        issue is worse than a pass that tries again later."""
        owner, name = split_repo(repo)
        what = f"open an issue on {repo}"
        data = check(self._session.post(f"{self._api}/repos/{owner}/{name}/issues",
                                        json={"title": title, "body": body}), what).json()
        return convert.number(data if isinstance(data, dict) else {}, "number")

    def comment_commit(self, repo: str, sha: str, body: str) -> None:
        """``POST /repos/{o}/{r}/commits/{sha}/comments``, once: the commit's comments are
        read first (``GET`` on the same path) and nothing is posted when the bot already left
        this body there, so a redelivered push or a retry after an uncertain answer does not
        double it."""
        if not _SHA_RE.fullmatch(sha):
            raise ForgeError(f"not a full commit sha: {sha!r}")
        owner, name = split_repo(repo)
        url = f"{self._api}/repos/{owner}/{name}/commits/{sha}/comments"
        what = f"comment on commit {sha[:12]} of {repo}"

        def once() -> None:
            for item in self._pages(url, {}, what):
                author = str((item.get("user") or {}).get("login", "")).lower()
                if author in self._bot_logins and item.get("body") == body:
                    return
            self._write(what, lambda: check(self._session.post(url, json={"body": body}), what))

        self._retrying(what, once)

    def edit_issue(self, repo: str, number: int, body: str) -> None:
        """``PATCH /repos/{o}/{r}/issues/{n}`` with only ``body`` (harmless to repeat)."""
        owner, name = split_repo(repo)
        url = f"{self._api}/repos/{owner}/{name}/issues/{number}"
        what = f"edit issue #{number} of {repo}"
        self._retrying(what, lambda: self._write(
            what, lambda: check(self._session.patch(url, json={"body": body}), what)))

    def _pages(self, url: str, params: Mapping[str, str], what: str) -> list[dict[str, Any]]:
        """Every item of a list, 100 a page, following the ``Link: rel="next"`` header."""
        items: list[dict[str, Any]] = []
        next_url: str | None = url
        query: dict[str, str] | None = {**params, "per_page": "100"}
        for _ in range(_MAX_PAGES):
            if next_url is None:
                return items
            response = check(self._session.get(next_url, params=query), what)
            page = response.json()
            if not isinstance(page, list):
                raise ForgeError(f"{what}: GitHub answered without a list")
            items += [item for item in page if isinstance(item, dict)]
            next_url = response.links.get("next", {}).get("url")
            query = None  # the next link carries the query
        raise ForgeError(f"{what}: more than {_MAX_PAGES} pages")

    # ------------------------------------------------------------- helpers

    def _repository(self, repo: str) -> Any:
        owner, name = split_repo(repo)

        def load() -> Any:
            with translated(f"read repository {repo}"):
                found = self._gh.repository(owner, name)
            if found is None:
                raise ForgeError(f"GitHub has no repository {repo}")
            return found

        return self._repos.get(repo.lower(), load)

    def _issue(self, repo: str, number: int) -> Any:
        owner, name = split_repo(repo)

        def load() -> Any:
            with translated(f"read issue #{number} of {repo}"):
                found = self._gh.issue(owner, name, number)
            if found is None:
                raise ForgeError(f"{repo} has no issue or pull request #{number}")
            return found

        return self._issues.get((repo.lower(), number), load)

    def _is_own(self, comment: Any, marker: str) -> bool:
        data = comment.as_dict()
        author = str((data.get("user") or {}).get("login", "")).lower()
        return author in self._bot_logins and marker in str(data.get("body") or "")

    def _write(self, what: str, call: Callable[[], T]) -> T:
        """Run one write (github3 or the session); a retryable failure becomes
        :class:`_UncertainWrite`, which only :meth:`_retrying` acts on."""
        try:
            with translated(what):
                return call()
        except ForgeError as exc:
            if exc.retryable:
                raise _UncertainWrite(exc) from exc
            raise

    def _retrying(self, what: str, call: Callable[[], T]) -> T:
        """Run ``call`` again after an uncertain write, up to the attempt budget. Only for
        calls whose writes are harmless to repeat, or which look before they write."""
        attempt = 0
        while True:
            try:
                return call()
            except _UncertainWrite as uncertain:
                attempt += 1
                if attempt >= self._attempts:
                    raise uncertain.error from uncertain.error.__cause__
                log.info("%s failed, trying again: %s", what, uncertain.error)
                self._pause(attempt)

    def _pause(self, attempt: int) -> None:
        # The session already waited out Retry-After and rate limits; this only spaces out
        # the retries of answers it returned at once (a 5xx to a POST, a timeout).
        self._sleep(min(30.0, 0.5 * 2.0 ** (attempt - 1)))
