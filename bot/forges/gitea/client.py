"""The Forge API calls on Gitea and Forgejo (``/api/v1``), over :mod:`bot.forges.http`.

No maintained Python client covers what we need (pull requests, statuses, reactions), so
this is a small one of our own. Every call goes through the resilient session (timeouts,
retries, rate limits, the host's circuit breaker) and every non-2xx answer becomes a
``ForgeError`` through :func:`bot.forges.http.check`.

Gitea specifics worth knowing:

- the token goes in ``Authorization: token <t>``, never in the URL;
- there is no draft flag: a title starting with ``WIP:`` or ``[WIP]`` (case-insensitive,
  the default ``[repository.pull-request] WORK_IN_PROGRESS_PREFIXES``) makes a pull request
  a work in progress that cannot be merged;
- Gitea refuses a second open pull request for the same head and base with 409, which
  makes :meth:`GiteaClient.open_pull` idempotent even when a POST is retried;
- labels are set by id: names are resolved with the repository's (and its organisation's)
  label lists, cached per repository;
- reading another user's permission needs the bot to be an administrator of the repository.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

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
from bot.forges.checks import STATUS_STATES, clip, state_of, without_own
from bot.forges.gitea.payload import Fields, as_list
from bot.forges.http import check

WIP_PREFIX = "WIP: "
WIP_PREFIXES = ("wip:", "[wip]")  # Gitea's defaults, compared in lower case
STATUS_CONTEXT = "forgebot"
STATES = ("pending", "success", "failure", "error")
PERMISSIONS = {"none": "none", "read": "read", "write": "write", "admin": "admin", "owner": "admin"}
PAGE_SIZE = 50  # Gitea's default [api] MAX_RESPONSE_ITEMS
MAX_PAGES = 100
_SHA_RE = re.compile(r"[0-9a-fA-F]{7,64}")


def api_root(base_url: str) -> str:
    """``https://host[/prefix]`` → its ``/api/v1`` root (a root given already is kept)."""
    root = base_url.rstrip("/")
    return root if root.endswith("/api/v1") else f"{root}/api/v1"


def is_wip(title: str) -> bool:
    """True when Gitea treats ``title`` as a work in progress (a draft)."""
    return title.strip().lower().startswith(WIP_PREFIXES)


def wip_title(title: str, draft: bool) -> str:
    """``title`` with the work-in-progress prefix added or taken off."""
    bare = title.strip()
    while is_wip(bare):
        prefix = next(p for p in WIP_PREFIXES if bare.lower().startswith(p))
        bare = bare[len(prefix) :].strip()
    return WIP_PREFIX + bare if draft else bare


class GiteaClient:
    """The Forge API of one Gitea or Forgejo server, as the bot user of ``token``."""

    def __init__(
        self,
        *,
        base_url: str,
        token: str,
        bot_user: str,
        session: requests.Session,
        url_rewrite: Mapping[str, str] | None = None,
    ) -> None:
        self.api = api_root(base_url)
        self.bot_user = bot_user
        self._token = token
        self._session = session
        self._rewrite = dict(url_rewrite or {})
        session.headers["Authorization"] = f"token {token}"
        session.headers["Accept"] = "application/json"
        self._lock = threading.Lock()
        self._labels: dict[str, dict[str, int]] = {}  # repo -> label name -> id
        self._clone_urls: dict[str, str] = {}
        self._comments: dict[tuple[str, int, str], tuple[int, str]] = {}  # -> (id, body)

    # ----------------------------------------------------------------- plumbing

    def _url(self, repo: str, *parts: str | int) -> str:
        owner, _, name = repo.partition("/")
        if not owner or not name:
            raise ForgeError(f"not an owner/name repository: {repo!r}")
        segments = [owner, name, *(str(p) for p in parts)]
        return f"{self.api}/repos/" + "/".join(quote(s, safe="") for s in segments)

    def _call(
        self,
        method: str,
        url: str,
        what: str,
        *,
        json: object = None,
        params: Mapping[str, str | int] | None = None,
        allow: tuple[int, ...] = (),
    ) -> requests.Response:
        """One request; a status in ``allow`` is returned to the caller instead of raised."""
        response = self._session.request(method, url, json=json, params=params)
        if response.status_code in allow:
            return response
        return check(response, what)

    def _object(self, response: requests.Response, what: str) -> Fields:
        return Fields(_json(response, what), f"gitea: {what}")

    def _pages(
        self, url: str, what: str, params: Mapping[str, str | int], *, missing_ok: bool = False
    ) -> Iterator[Fields]:
        """Every item of a paginated list, page by page (stops early if the caller does).
        With ``missing_ok``, a 404 or 403 (not there, or not ours to see) is an empty list."""
        seen = 0
        for page in range(1, MAX_PAGES + 1):
            response = self._call(
                "GET", url, what, params={**params, "page": page, "limit": PAGE_SIZE},
                allow=(403, 404) if missing_ok else (),
            )
            if response.status_code in (403, 404):
                return
            items = as_list(_json(response, what), f"gitea: {what}")
            yield from items
            seen += len(items)
            total = response.headers.get("X-Total-Count", "")
            # The server may cap the page below our limit, so only an empty page or the total
            # it announces says the list is done.
            if not items or (total.isdigit() and seen >= int(total)):
                return
        raise ForgeError(f"gitea: {what}: more than {MAX_PAGES} pages")

    # ----------------------------------------------------------------- git

    def clone_url(self, repo: str) -> str:
        """The repository's ``clone_url`` (asked once, then cached), rewritten by
        ``git_url_rewrite``. Carries no credential: see :meth:`git_auth`."""
        with self._lock:
            cached = self._clone_urls.get(repo)
        if cached is None:
            what = f"get repository {repo}"
            cached = self._object(self._call("GET", self._url(repo), what), what).text(
                "clone_url"
            )
            with self._lock:
                self._clone_urls[repo] = cached
        return rewrite_url(cached, self._rewrite)

    def git_auth(self, repo: str) -> dict[str, str]:
        """The bot user and its token for git's askpass (Gitea takes a token as password)."""
        return gitops.auth_env(self.bot_user, self._token)

    # ----------------------------------------------------------------- issues

    def get_issue(self, repo: str, number: int) -> Issue:
        """Issue (or pull request) ``number`` as it is now."""
        what = f"get issue {repo}#{number}"
        return _issue(self._object(self._call("GET", self._url(repo, "issues", number), what),
                                   what))

    def comment(self, repo: str, number: int, body: str, *, pull: bool = False) -> None:
        """Comment on issue or pull request ``number`` (they share one numbering, so
        ``pull`` changes nothing)."""
        self._call(
            "POST", self._url(repo, "issues", number, "comments"),
            f"comment on {repo}#{number}", json={"body": body},
        )

    def upsert_comment(self, repo: str, number: int, marker: str, body: str) -> None:
        """Edit the bot's comment holding ``marker``, or add one.

        The comment found is remembered, so later updates of a job's status comment cost
        one call (none when the text is unchanged); if it was deleted meanwhile, it is
        looked up again.
        """
        if marker not in body:
            raise ForgeError("upsert_comment: the body must contain its marker")
        key = (repo, number, marker)
        with self._lock:
            known = self._comments.get(key)
        if known is not None:
            if known[1] == body:
                return
            if self._edit_comment(repo, known[0], body, allow_missing=True):
                self._remember(key, known[0], body)
                return
        found = self._find_own_comment(repo, number, marker)
        if found is not None:
            self._edit_comment(repo, found, body, allow_missing=False)
            self._remember(key, found, body)
            return
        what = f"comment on {repo}#{number}"
        response = self._call(
            "POST", self._url(repo, "issues", number, "comments"), what, json={"body": body}
        )
        self._remember(key, self._object(response, what).integer("id"), body)

    def _remember(self, key: tuple[str, int, str], comment_id: int, body: str) -> None:
        with self._lock:
            self._comments[key] = (comment_id, body)

    def _find_own_comment(self, repo: str, number: int, marker: str) -> int | None:
        # Gitea answers this list whole (it has no paging), oldest first.
        what = f"list comments of {repo}#{number}"
        response = self._call("GET", self._url(repo, "issues", number, "comments"), what)
        for item in as_list(_json(response, what), f"gitea: {what}"):
            author = item.login("user")
            if author.lower() == self.bot_user.lower() and marker in item.text("body", ""):
                return item.integer("id")
        return None

    def _edit_comment(self, repo: str, comment_id: int, body: str, *, allow_missing: bool) -> bool:
        response = self._call(
            "PATCH", self._url(repo, "issues", "comments", comment_id),
            f"edit comment {comment_id} on {repo}", json={"body": body},
            allow=(404,) if allow_missing else (),
        )
        return response.status_code != 404

    def react(
        self, repo: str, number: int, comment_id: int | None, reaction: str, *,
        pull: bool = False,
    ) -> None:
        """Add ``reaction`` (``eyes``, ``+1``...) to a comment, or to the issue (or pull
        request: one numbering) itself. Reacting twice is fine: Gitea answers 200 with the
        existing reaction."""
        if comment_id is None:
            url, what = self._url(repo, "issues", number, "reactions"), f"react on {repo}#{number}"
        else:
            url = self._url(repo, "issues", "comments", comment_id, "reactions")
            what = f"react on comment {comment_id} of {repo}#{number}"
        self._call("POST", url, what, json={"content": reaction})

    def close_issue(self, repo: str, number: int, comment: str | None = None) -> None:
        """The comment (when given), then ``PATCH /repos/{o}/{r}/issues/{n}`` with only
        ``state: closed``; closing a closed issue changes nothing."""
        if comment is not None:
            self.comment(repo, number, comment)
        self._call(
            "PATCH", self._url(repo, "issues", number), f"close issue {repo}#{number}",
            json={"state": "closed"},
        )

    def delete_branch(self, repo: str, branch: str) -> None:
        """``DELETE /repos/{o}/{r}/branches/{branch}`` (the route takes the rest of the
        path, so a ``/`` in the name stays as it is); a branch already gone (404) is fine."""
        url = self._url(repo, "branches") + "/" + quote(branch, safe="/")
        self._call("DELETE", url, f"delete branch {branch} of {repo}", allow=(404,))

    # ----------------------------------------------------------------- labels

    def add_labels(self, repo: str, number: int, labels: list[str]) -> None:
        """Add labels by name (existing ones stay). A name the repository does not have is
        a ForgeError that says so: create the label on the forge first."""
        if not labels:
            return
        ids = self._label_ids(repo, labels)
        missing = [name for name in labels if name not in ids]
        if missing:
            raise ForgeError(f"{repo} has no label(s) {', '.join(missing)}: create them first")
        self._call(
            "POST", self._url(repo, "issues", number, "labels"),
            f"add labels to {repo}#{number}", json={"labels": [ids[n] for n in labels]},
        )

    def remove_label(self, repo: str, number: int, label: str) -> None:
        """Remove one label; a label that is not there (or does not exist) is fine."""
        label_id = self._label_ids(repo, [label]).get(label)
        if label_id is None:
            return
        self._call(
            "DELETE", self._url(repo, "issues", number, "labels", label_id),
            f"remove label {label!r} from {repo}#{number}", allow=(404,),
        )

    def _label_ids(self, repo: str, names: list[str]) -> dict[str, int]:
        """Ids of ``names`` that exist: from the cache, else the repository's labels, then
        its organisation's (asked only for names still missing)."""
        with self._lock:
            known = dict(self._labels.get(repo, {}))
        if not all(name in known for name in names):
            known = self._list_labels(self._url(repo, "labels"), f"list labels of {repo}")
            if not all(name in known for name in names):
                org_url = f"{self.api}/orgs/{quote(repo.partition('/')[0], safe='')}/labels"
                # A user owning the repository is a 404 here; a token without the
                # read:organization scope a 403. Either way: no organisation labels.
                org = self._list_labels(org_url, f"list labels of {repo}'s owner", missing_ok=True)
                known = {**org, **known}  # a repository label wins over an org one
            with self._lock:
                self._labels[repo] = known
        return {name: known[name] for name in names if name in known}

    def _list_labels(self, url: str, what: str, *, missing_ok: bool = False) -> dict[str, int]:
        items = self._pages(url, what, {}, missing_ok=missing_ok)
        return {item.text("name"): item.integer("id") for item in items}

    # ----------------------------------------------------------------- pulls

    def find_pull(self, repo: str, head: str) -> PullRequest | None:
        """The open pull request from branch ``head`` of this same repository, if any."""
        url, what = self._url(repo, "pulls"), f"list open pull requests of {repo}"
        for item in self._pages(url, what, {"state": "open"}):
            head_repo = item.find("head.repo.full_name")
            same_repo = not isinstance(head_repo, str) or head_repo.lower() == repo.lower()
            if item.text("head.ref", "") == head and same_repo:
                return _pull(item)
        return None

    def open_pull(self, repo: str, pull: NewPull) -> PullRequest:
        """Open a pull request (a draft gets the ``WIP:`` title prefix).

        If one is already open from ``pull.head`` to ``pull.base`` (a retried POST that went
        through the first time), Gitea answers 409 and that one is returned.
        """
        what = f"open a pull request from {pull.head} on {repo}"
        response = self._call(
            "POST", self._url(repo, "pulls"), what, allow=(409,),
            json={
                "head": pull.head,
                "base": pull.base,
                "title": wip_title(pull.title, pull.draft),
                "body": pull.body,
            },
        )
        if response.status_code == 409:
            existing = self.find_pull(repo, pull.head)
            if existing is None:
                raise ForgeError(f"{what}: HTTP 409, yet no open pull request from {pull.head}")
            return existing
        return _pull(self._object(response, what))

    def update_pull(self, repo: str, number: int, *, body: str, draft: bool) -> PullRequest:
        """Replace the body, and set the draft state through the title's ``WIP:`` prefix."""
        what = f"get pull request {repo}#{number}"
        current = self._object(self._call("GET", self._url(repo, "pulls", number), what), what)
        what = f"update pull request {repo}#{number}"
        response = self._call(
            "PATCH", self._url(repo, "pulls", number), what,
            json={"body": body, "title": wip_title(current.text("title"), draft)},
        )
        return _pull(self._object(response, what))

    def changed_files(self, repo: str, base: str, head: str) -> list[str]:
        """Paths touched by the commits between ``base`` and ``head`` (the compare API of
        Gitea 1.22+ and Forgejo; older servers answer 404)."""
        for sha in (base, head):
            if not _SHA_RE.fullmatch(sha):
                raise ForgeError(f"not a commit sha: {sha!r}")
        what = f"compare {base[:12]}...{head[:12]} on {repo}"
        response = self._call(
            "GET", self._url(repo, "compare", f"{base}...{head}"), what,
            params={"verification": "false"},
        )
        paths: dict[str, None] = {}
        for commit in self._object(response, what).objects("commits"):
            paths.update(dict.fromkeys(f.text("filename") for f in commit.objects("files")))
        return list(paths)

    # ----------------------------------------------------------------- statuses, access

    def set_status(self, repo: str, sha: str, state: str, description: str) -> None:
        """Set the ``forgebot`` commit status of ``sha``."""
        if state not in STATES:
            raise ForgeError(f"unknown status state {state!r}: expected one of {STATES}")
        self._call(
            "POST", self._url(repo, "statuses", sha), f"set status of {sha[:12]} on {repo}",
            json={"state": state, "description": description[:255], "context": STATUS_CONTEXT},
        )

    # ----------------------------------------------------------------- the forge's CI

    def commit_checks(self, repo: str, sha: str) -> list[CheckResult]:
        """``GET /repos/{o}/{r}/commits/{sha}/status``: the combined status, the latest of
        each context, without the bot's own ``forgebot``. Gitea keeps no log: a status has
        its description and ``target_url`` (Gitea names the state ``status``; Forgejo and
        older versions may say ``state``)."""
        if not _SHA_RE.fullmatch(sha):
            raise ForgeError(f"not a commit sha: {sha!r}")
        what = f"read the checks of {sha[:12]} on {repo}"
        response = self._call("GET", self._url(repo, "commits", sha, "status"), what,
                              params={"limit": PAGE_SIZE})
        combined = self._object(response, what)
        results = []
        for item in combined.objects("statuses"):
            state = item.find("status") or item.find("state")
            results.append(CheckResult(
                name=item.text("context", default=""),
                state=state_of(STATUS_STATES, state),
                summary=clip(item.text("description", default="")),
                url=item.text("target_url", default=""),
            ))
        return without_own(r for r in results if r.name)

    def permission(self, repo: str, user: str) -> str:
        """``none``, ``read``, ``write`` or ``admin`` (Gitea's ``owner`` counts as admin).

        An unknown user has ``none``. A 403 means the bot account is not an administrator
        of the repository, which Gitea requires to read someone else's permission.
        """
        what = f"get permission of {user} on {repo}"
        response = self._call(
            "GET", self._url(repo, "collaborators", user, "permission"), what, allow=(403, 404)
        )
        if response.status_code == 404:
            return "none"
        if response.status_code == 403:
            raise ForgeError(
                f"{what}: forbidden; the bot account {self.bot_user!r} must be an "
                f"administrator of {repo} (or a site admin) to read other users' permissions"
            )
        level = self._object(response, what).text("permission").lower()
        if level not in PERMISSIONS:
            raise ForgeError(f"{what}: unknown permission {level!r}")
        return PERMISSIONS[level]

    # ----------------------------------------------------------------- reconciliation

    def default_branch(self, repo: str) -> str:
        """``default_branch`` of ``GET /repos/{o}/{r}``."""
        what = f"get repository {repo}"
        return self._object(self._call("GET", self._url(repo), what), what).text("default_branch")

    def open_issues_with_label(self, repo: str, label: str) -> list[Issue]:
        """``GET /repos/{o}/{r}/issues?state=open&type=issues&labels={label}``, every page."""
        what = f"list open issues labelled {label!r} on {repo}"
        items = self._pages(self._url(repo, "issues"), what,
                            {"state": "open", "type": "issues", "labels": label})
        return [_issue(item) for item in items]

    def label_actor(self, repo: str, number: int, label: str) -> str | None:
        """The user of the last ``label`` entry adding ``label`` in
        ``GET /repos/{o}/{r}/issues/{n}/timeline`` (Gitea writes ``body: "1"`` when a label
        is added, ``""`` when it is removed)."""
        what = f"read the timeline of {repo}#{number}"
        actor = None
        for item in self._pages(self._url(repo, "issues", number, "timeline"), what, {}):
            if (item.find("type") == "label" and item.find("label.name") == label
                    and item.find("body") == "1"):
                actor = item.login("user")
        return actor or None

    def comments_since(
        self, repo: str, number: int, since: datetime, *, pull: bool = False
    ) -> list[ForgeComment]:
        """``GET /repos/{o}/{r}/issues/{n}/comments?since=`` (by the time of the last edit),
        then only those created after ``since``; oldest first (one numbering: ``pull``
        changes nothing)."""
        what = f"list comments of {repo}#{number}"
        stamp = since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        response = self._call("GET", self._url(repo, "issues", number, "comments"), what,
                              params={"since": stamp})
        found = [ForgeComment(item.integer("id"), item.login("user"), item.text("body", ""),
                              _time(item, "created_at"))
                 for item in as_list(_json(response, what), f"gitea: {what}")]
        return sorted((c for c in found if c.created > since), key=lambda c: c.created)

    def pull_state(self, repo: str, number: int) -> PullState:
        """``GET /repos/{o}/{r}/pulls/{n}``: ``merged`` tells a merge from a close."""
        what = f"get pull request {repo}#{number}"
        item = self._object(self._call("GET", self._url(repo, "pulls", number), what), what)
        merged = item.flag("merged") is True
        state = "merged" if merged else ("open" if item.find("state") == "open" else "closed")
        by = item.find("merged_by.login") if merged else None
        return PullState(number=item.integer("number"), state=state, head=item.text("head.ref"),
                         by=by if isinstance(by, str) else "",
                         url=item.text("html_url", default=""))

    def create_issue(self, repo: str, title: str, body: str) -> int:
        """``POST /repos/{o}/{r}/issues``; returns the new issue's number."""
        what = f"open an issue on {repo}"
        response = self._call("POST", self._url(repo, "issues"), what,
                              json={"title": title, "body": body})
        return self._object(response, what).integer("number")

    def edit_issue(self, repo: str, number: int, body: str) -> None:
        """``PATCH /repos/{o}/{r}/issues/{n}`` with only ``body``."""
        self._call("PATCH", self._url(repo, "issues", number), f"edit issue {repo}#{number}",
                   json={"body": body})


def _issue(item: Fields) -> Issue:
    return Issue(number=item.integer("number"), title=item.text("title"),
                 body=item.text("body", default=""), labels=item.names("labels"),
                 author=item.login("user"))


def _time(item: Fields, path: str) -> datetime:
    """An RFC 3339 field as an aware UTC time."""
    try:
        return datetime.fromisoformat(item.text(path).replace("Z", "+00:00")).astimezone(UTC)
    except ValueError as exc:
        raise item.error(path) from exc


def _json(response: requests.Response, what: str) -> Any:
    try:
        return response.json()
    except ValueError as exc:
        raise ForgeError(f"gitea: {what}: the answer is not JSON") from exc


def _pull(item: Fields) -> PullRequest:
    title = item.text("title")
    draft = item.flag("draft")  # newer servers say it; older ones only have the title
    return PullRequest(
        number=item.integer("number"),
        head=item.text("head.ref"),
        base=item.text("base.ref"),
        title=title,
        body=item.text("body", default=""),
        draft=is_wip(title) if draft is None else draft,
        url=item.text("html_url", default=""),
    )
