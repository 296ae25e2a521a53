"""The Gitea client against a small stateful fake of Gitea's /api/v1, served by `responses`.

The fake answers with JSON shaped like Gitea's (its pull request, issue, comment and
repository objects start from the captured payloads in tests/fixtures/webhooks/gitea), keeps
what is created, refuses a second open pull request for one head and base with 409 as Gitea
does, and can be told to fail: answer a status, raise a transport error, or do the work and
then lose the answer. Nothing waits for real: the session's sleep is a recorder.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
import requests
import responses

from bot import gitops
from bot.config import GiteaSettings
from bot.errors import ForgeError
from bot.forges.base import NewPull
from bot.forges.gitea import GiteaForge
from bot.forges.http import BreakerRegistry
from bot.forges.verify import sign_sha256
from bot.pipeline.planner import Planner, trigger_key
from bot.policy.model import Policy, Specs, Trigger
from bot.store import Store
from bot.web import create_app

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "webhooks" / "gitea"
HOST = "https://gitea.example"
API = HOST + "/api/v1"
TOKEN = "gitea-token-0123456789"
REPO = "acme/app"
BRANCH = "forgebot/1-add-farewell"
SHA = "4522cbcefc20728a5b72b3a86af35e608622c514"
BASE_SHA = "9836a96a253cce25d17988fcf41b8c4205cf779f"
MARKER = "<!-- forgebot:status:1 -->"

Reply = tuple[int, dict[str, str], Any]
Answer = int | tuple[int, dict[str, str]] | tuple[int, dict[str, str], Any] | Exception


def fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return data


@dataclass
class Lost:
    """Do the work, then lose the answer: the client sees ``answer`` instead."""

    answer: Answer


@dataclass
class FakeGitea:
    """The parts of Gitea's API the bot uses, for repository ``acme/app``."""

    pulls: list[dict[str, Any]] = field(default_factory=list)
    comments: list[dict[str, Any]] = field(default_factory=list)
    statuses: list[dict[str, Any]] = field(default_factory=list)
    reactions: list[tuple[str, str]] = field(default_factory=list)
    closed: list[int] = field(default_factory=list)
    branches: set[str] = field(default_factory=lambda: {"main", BRANCH})
    issue_labels: list[int] = field(default_factory=list)
    repo_labels: list[dict[str, Any]] = field(
        default_factory=lambda: [{"id": i, "name": f"label-{i}", "color": "ee0701"}
                                 for i in range(1, 8)]
        + [{"id": 21, "name": "bug", "color": "ee0701"},
           {"id": 22, "name": "forgebot", "color": "00aabb"}]
    )
    org_labels: list[dict[str, Any]] | None = field(
        default_factory=lambda: [{"id": 90, "name": "forgebot:done", "color": "00ff00"}]
    )
    permissions: dict[str, str] = field(
        default_factory=lambda: {"alice": "write", "root": "owner", "eve": "read"}
    )
    bot_is_admin: bool = True
    repo_path: str = r"/repos/acme/app"
    page_cap: int = 50  # Gitea's [api] MAX_RESPONSE_ITEMS
    calls: list[tuple[str, str]] = field(default_factory=list)
    faults: dict[tuple[str, str], list[Answer | Lost]] = field(default_factory=dict)

    # ----------------------------------------------------------------- faults

    def fail(self, method: str, path: str, *answers: Answer | Lost) -> None:
        """The next requests to ``path`` (a regex on the path after /api/v1) get ``answers``."""
        self.faults.setdefault((method, path), []).extend(answers)

    def _fault(self, method: str, path: str) -> Answer | Lost | None:
        for (m, pattern), queue in self.faults.items():
            if m == method and re.fullmatch(pattern, path) and queue:
                return queue.pop(0)
        return None

    # ----------------------------------------------------------------- serving

    def __call__(self, request: requests.PreparedRequest) -> Reply | Exception:
        parts = urlsplit(request.url or "")
        path = unquote(parts.path.removeprefix("/api/v1"))
        method = request.method or "GET"
        self.calls.append((method, path))
        if request.headers.get("Authorization") != f"token {TOKEN}":
            return 401, {}, {"message": "token is required"}
        fault = self._fault(method, path)
        if fault is not None and not isinstance(fault, Lost):
            return _answer(fault)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        body = json.loads(request.body) if request.body else None
        reply = self._route(method, path, query, body)
        return _answer(fault.answer) if isinstance(fault, Lost) else reply

    def _route(self, method: str, path: str, query: dict[str, str], body: Any) -> Reply:
        for route_method, pattern, handler in self._routes():
            match = re.fullmatch(pattern, path)
            if route_method == method and match:
                return handler(query, body, *match.groups())
        return 404, {}, {"message": "The target couldn't be found.", "errors": []}

    def _routes(self) -> list[tuple[str, str, Callable[..., Reply]]]:
        repo = self.repo_path
        return [
            ("GET", repo, self._get_repo),
            ("GET", repo + r"/issues/(\d+)", self._get_issue),
            ("GET", repo + r"/issues/(\d+)/comments", self._list_comments),
            ("POST", repo + r"/issues/(\d+)/comments", self._create_comment),
            ("PATCH", repo + r"/issues/comments/(\d+)", self._edit_comment),
            ("PATCH", repo + r"/issues/(\d+)", self._edit_issue),
            ("DELETE", repo + r"/branches/(.+)", self._delete_branch),
            ("POST", repo + r"/issues/(\d+)/reactions", self._react),
            ("POST", repo + r"/issues/comments/(\d+)/reactions", self._react),
            ("GET", repo + r"/labels", self._list_labels),
            ("GET", r"/orgs/acme/labels", self._list_org_labels),
            ("POST", repo + r"/issues/(\d+)/labels", self._add_labels),
            ("DELETE", repo + r"/issues/(\d+)/labels/(\d+)", self._remove_label),
            ("GET", repo + r"/pulls", self._list_pulls),
            ("POST", repo + r"/pulls", self._create_pull),
            ("GET", repo + r"/pulls/(\d+)", self._get_pull),
            ("PATCH", repo + r"/pulls/(\d+)", self._edit_pull),
            ("POST", repo + r"/statuses/([0-9a-f]+)", self._create_status),
            ("GET", repo + r"/collaborators/([^/]+)/permission", self._permission),
            ("GET", repo + r"/compare/([0-9a-f]+)\.\.\.([0-9a-f]+)", self._compare),
        ]

    # ----------------------------------------------------------------- handlers

    def _get_repo(self, query: dict[str, str], body: Any) -> Reply:
        repository = copy.deepcopy(fixture("push__default_branch.json")["repository"])
        repository.update(full_name=REPO, name="app", default_branch="main",
                          clone_url=f"{HOST}/acme/app.git", html_url=f"{HOST}/acme/app")
        return 200, {}, repository

    def _get_issue(self, query: dict[str, str], body: Any, number: str) -> Reply:
        if number != "1":
            return 404, {}, {"message": "issue does not exist [id: 0, repo_id: 6, index: 9]"}
        issue = copy.deepcopy(fixture("issues__label_updated.json")["issue"])
        issue.update(number=1, title="Add a farewell", body="Say goodbye.",
                     labels=[lab for lab in self.repo_labels if lab["id"] in (21, 22)])
        return 200, {}, issue

    def _list_comments(self, query: dict[str, str], body: Any, number: str) -> Reply:
        return 200, {}, [c for c in self.comments if c["_issue"] == int(number)]

    def _create_comment(self, query: dict[str, str], body: Any, number: str) -> Reply:
        comment = copy.deepcopy(fixture("issue_comment__created_issue.json")["comment"])
        comment_id = 100 + len(self.comments)
        comment.update(id=comment_id, body=body["body"], _issue=int(number))
        comment["user"].update(login="forgebot", username="forgebot")
        self.comments.append(comment)
        return 201, {}, comment

    def _edit_comment(self, query: dict[str, str], body: Any, comment_id: str) -> Reply:
        for comment in self.comments:
            if comment["id"] == int(comment_id):
                comment["body"] = body["body"]
                return 200, {}, comment
        return 404, {}, {"message": "comment does not exist"}

    def _edit_issue(self, query: dict[str, str], body: Any, number: str) -> Reply:
        if body != {"state": "closed"}:
            return 422, {}, {"message": f"unexpected edit {body}"}
        if int(number) not in self.closed:
            self.closed.append(int(number))
        return 201, {}, {"number": int(number), "state": "closed"}

    def _delete_branch(self, query: dict[str, str], body: Any, branch: str) -> Reply:
        if branch not in self.branches:
            return 404, {}, {"message": "branch does not exist"}
        self.branches.discard(branch)
        return 204, {}, None

    def _react(self, query: dict[str, str], body: Any, target: str) -> Reply:
        key = (target, body["content"])
        status = 200 if key in self.reactions else 201
        if status == 201:
            self.reactions.append(key)
        return status, {}, {"user": {"login": "forgebot"}, "content": body["content"]}

    def _list_labels(self, query: dict[str, str], body: Any) -> Reply:
        return self._page(self.repo_labels, query)

    def _list_org_labels(self, query: dict[str, str], body: Any) -> Reply:
        if self.org_labels is None:
            return 404, {}, {"message": "GetOrgByName"}
        return self._page(self.org_labels, query)

    def _add_labels(self, query: dict[str, str], body: Any, number: str) -> Reply:
        known = {lab["id"] for lab in self.repo_labels + (self.org_labels or [])}
        if not set(body["labels"]) <= known:
            return 422, {}, {"message": "label does not exist"}
        self.issue_labels += [i for i in body["labels"] if i not in self.issue_labels]
        return 200, {}, [{"id": i} for i in self.issue_labels]

    def _remove_label(self, query: dict[str, str], body: Any, number: str, label: str) -> Reply:
        if int(label) not in self.issue_labels:
            return 404, {}, {"message": "label not found"}
        self.issue_labels.remove(int(label))
        return 204, {}, None

    def _list_pulls(self, query: dict[str, str], body: Any) -> Reply:
        state = query.get("state", "open")
        return self._page([p for p in self.pulls if state in ("all", p["state"])], query)

    def _create_pull(self, query: dict[str, str], body: Any) -> Reply:
        for pull in self.pulls:
            same = (pull["head"]["ref"], pull["base"]["ref"]) == (body["head"], body["base"])
            if pull["state"] == "open" and same:
                return 409, {}, {"message": "pull request already exists for these targets "
                                 f"[id: {pull['id']}, issue_id: {pull['number']}]"}
        number = len(self.pulls) + 2  # issue 1 holds the first number
        self.pulls.append(self._pull(number, body["head"], body["base"], body["title"],
                                     body.get("body", "")))
        return 201, {}, self.pulls[-1]

    def _pull(self, number: int, head: str, base: str, title: str, text: str,
              head_repo: str = REPO) -> dict[str, Any]:
        pull = copy.deepcopy(fixture("pull_request__closed_unmerged.json")["pull_request"])
        pull.update(id=1000 + number, number=number, title=title, body=text, state="open",
                    html_url=f"{HOST}/acme/app/pulls/{number}", merged=False)
        pull["head"].update(ref=head, label=head, sha=SHA)
        pull["head"]["repo"].update(full_name=head_repo)
        pull["base"].update(ref=base, label=base)
        pull["base"]["repo"].update(full_name=REPO)
        return pull

    def _get_pull(self, query: dict[str, str], body: Any, number: str) -> Reply:
        for pull in self.pulls:
            if pull["number"] == int(number):
                return 200, {}, pull
        return 404, {}, {"message": "pull request does not exist"}

    def _edit_pull(self, query: dict[str, str], body: Any, number: str) -> Reply:
        status, headers, pull = self._get_pull(query, None, number)
        if status == 200:
            pull.update({k: v for k, v in body.items() if k in ("title", "body")})
        return status, headers, pull

    def _create_status(self, query: dict[str, str], body: Any, sha: str) -> Reply:
        self.statuses.append({"sha": sha, **body})
        return 201, {}, {"id": len(self.statuses), "status": body["state"], **body}

    def _permission(self, query: dict[str, str], body: Any, user: str) -> Reply:
        if not self.bot_is_admin:
            return 403, {}, {"message": "Only admins can query all permissions, repo admins "
                             "can query all repo permissions, collaborators can query only "
                             "their own"}
        if user not in self.permissions:
            return 404, {}, {"message": "user redirect does not exist [name: ghost]"}
        level = self.permissions[user]
        return 200, {}, {"permission": level, "role_name": level,
                         "user": {"login": user, "username": user}}

    def _compare(self, query: dict[str, str], body: Any, base: str, head: str) -> Reply:
        commits = [
            {"sha": "c1", "files": [{"filename": "specs/auth.md", "status": "added"},
                                    {"filename": "README.md", "status": "modified"}]},
            {"sha": "c2", "files": [{"filename": "README.md", "status": "modified"},
                                    {"filename": "old.txt", "status": "removed"}]},
        ]
        return 200, {}, {"total_commits": 2, "commits": commits}

    def _page(self, items: list[dict[str, Any]], query: dict[str, str]) -> Reply:
        limit = min(int(query.get("limit", "30")), self.page_cap)
        page = int(query.get("page", "1"))
        chunk = items[(page - 1) * limit : page * limit]
        return 200, {"X-Total-Count": str(len(items))}, chunk

    def count(self, method: str, pattern: str) -> int:
        return sum(1 for m, p in self.calls if m == method and re.fullmatch(pattern, p))


def _answer(answer: Answer) -> Reply | Exception:
    if isinstance(answer, Exception):
        return answer
    if isinstance(answer, tuple):
        return answer[0], answer[1], answer[2] if len(answer) == 3 else {"message": "fault"}
    return answer, {}, {"message": "fault"}


@pytest.fixture
def server() -> Iterator[FakeGitea]:
    fake = FakeGitea()

    def callback(request: requests.PreparedRequest) -> Any:
        result = fake(request)
        if isinstance(result, Exception):
            raise result
        status, headers, payload = result
        text = "" if payload is None else json.dumps(payload)
        return status, {"Content-Type": "application/json", **headers}, text

    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        for method in ("GET", "POST", "PATCH", "PUT", "DELETE"):
            mock.add_callback(method, re.compile(re.escape(API) + r"/.*"), callback=callback)
        yield fake


@dataclass
class Sleeps:
    waits: list[float] = field(default_factory=list)

    def __call__(self, seconds: float) -> None:
        self.waits.append(round(seconds, 3))


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def gitea(tmp_path: Path, sleeps: Sleeps) -> GiteaForge:
    settings = GiteaSettings(
        enabled=True, base_url=HOST, token=TOKEN, webhook_secret="s", max_retries=4,
        git_url_rewrite={f"{HOST}/": "/srv/git/"},
    )
    return GiteaForge(settings, "forgebot", tmp_path / "state", sleep=sleeps,
                      jitter=lambda: 1.0, breakers=BreakerRegistry())


def new_pull(draft: bool = False) -> NewPull:
    return NewPull(head=BRANCH, base="main", title="Add a farewell", body="Closes #1",
                   draft=draft)


# --------------------------------------------------------------------------- each call


def test_get_issue(gitea: GiteaForge, server: FakeGitea) -> None:
    issue = gitea.get_issue(REPO, 1)
    assert (issue.number, issue.title, issue.body) == (1, "Add a farewell", "Say goodbye.")
    assert issue.labels == ("bug", "forgebot")
    assert issue.author == "example"
    with pytest.raises(ForgeError, match="HTTP 404") as err:
        gitea.get_issue(REPO, 9)
    assert not err.value.retryable


def test_find_then_open_then_find(gitea: GiteaForge, server: FakeGitea) -> None:
    assert gitea.find_pull(REPO, BRANCH) is None
    pull = gitea.open_pull(REPO, new_pull())
    assert (pull.number, pull.head, pull.base, pull.title) == (2, BRANCH, "main", "Add a farewell")
    assert (pull.body, pull.draft) == ("Closes #1", False)
    assert pull.url == f"{HOST}/acme/app/pulls/2"
    assert gitea.find_pull(REPO, BRANCH) == pull
    assert server.count("POST", r"/repos/acme/app/pulls") == 1


def test_open_pull_twice_returns_the_first(gitea: GiteaForge, server: FakeGitea) -> None:
    first = gitea.open_pull(REPO, new_pull())
    again = gitea.open_pull(REPO, new_pull())  # Gitea says 409; the open one is returned
    assert again == first
    assert len(server.pulls) == 1


def test_a_draft_is_a_wip_title(gitea: GiteaForge, server: FakeGitea) -> None:
    pull = gitea.open_pull(REPO, new_pull(draft=True))
    assert server.pulls[0]["title"] == "WIP: Add a farewell"
    assert pull.draft
    ready = gitea.update_pull(REPO, pull.number, body="All tests pass", draft=False)
    assert (ready.title, ready.body, ready.draft) == ("Add a farewell", "All tests pass", False)
    again = gitea.update_pull(REPO, pull.number, body="Tests fail", draft=True)
    assert (again.title, again.draft) == ("WIP: Add a farewell", True)


def test_find_pull_ignores_forks_and_other_branches_across_pages(
    gitea: GiteaForge, server: FakeGitea
) -> None:
    server.page_cap = 20  # the server caps pages below what we ask for
    server.pulls = [server._pull(n, f"feature-{n}", "main", f"PR {n}", "") for n in range(2, 60)]
    server.pulls.append(server._pull(60, BRANCH, "main", "from a fork", "", head_repo="eve/app"))
    server.pulls.append(server._pull(61, BRANCH, "main", "ours", ""))
    found = gitea.find_pull(REPO, BRANCH)
    assert found is not None and found.number == 61
    assert server.count("GET", r"/repos/acme/app/pulls") == 3
    assert gitea.find_pull(REPO, "no-such-branch") is None


def test_comment_and_upsert_comment(gitea: GiteaForge, server: FakeGitea) -> None:
    gitea.comment(REPO, 1, "hello")
    gitea.upsert_comment(REPO, 1, MARKER, f"{MARKER}\nqueued")
    gitea.upsert_comment(REPO, 1, MARKER, f"{MARKER}\nrunning")
    gitea.upsert_comment(REPO, 1, MARKER, f"{MARKER}\nrunning")  # unchanged: no call
    assert [c["body"] for c in server.comments] == ["hello", f"{MARKER}\nrunning"]
    # One lookup, one creation, one edit by the remembered id.
    assert server.count("GET", r"/repos/acme/app/issues/1/comments") == 1
    assert server.count("POST", r"/repos/acme/app/issues/1/comments") == 2
    assert server.count("PATCH", r"/repos/acme/app/issues/comments/\d+") == 1


def test_upsert_finds_the_bots_comment_after_a_restart(
    gitea: GiteaForge, server: FakeGitea, tmp_path: Path, sleeps: Sleeps
) -> None:
    gitea.upsert_comment(REPO, 1, MARKER, f"{MARKER}\nqueued")
    settings = GiteaSettings(enabled=True, base_url=HOST, token=TOKEN)
    restarted = GiteaForge(settings, "forgebot", tmp_path / "other", sleep=sleeps,
                           breakers=BreakerRegistry())
    restarted.upsert_comment(REPO, 1, MARKER, f"{MARKER}\ndone")
    assert [c["body"] for c in server.comments] == [f"{MARKER}\ndone"]


def test_upsert_recreates_a_deleted_comment(gitea: GiteaForge, server: FakeGitea) -> None:
    gitea.upsert_comment(REPO, 1, MARKER, f"{MARKER}\nqueued")
    server.comments.clear()  # someone deleted it
    gitea.upsert_comment(REPO, 1, MARKER, f"{MARKER}\nrunning")
    assert [c["body"] for c in server.comments] == [f"{MARKER}\nrunning"]


def test_upsert_ignores_other_peoples_comments_with_the_marker(
    gitea: GiteaForge, server: FakeGitea
) -> None:
    server._create_comment({}, {"body": f"quoting {MARKER}"}, "1")
    server.comments[0]["user"]["login"] = "eve"
    gitea.upsert_comment(REPO, 1, MARKER, f"{MARKER}\nqueued")
    assert [c["body"] for c in server.comments] == [f"quoting {MARKER}", f"{MARKER}\nqueued"]


def test_upsert_needs_the_marker_in_the_body(gitea: GiteaForge, server: FakeGitea) -> None:
    with pytest.raises(ForgeError, match="marker"):
        gitea.upsert_comment(REPO, 1, MARKER, "no marker")


def test_react(gitea: GiteaForge, server: FakeGitea) -> None:
    gitea.react(REPO, 1, None, "eyes")
    gitea.react(REPO, 1, None, "eyes")  # Gitea answers 200 for an existing reaction
    gitea.react(REPO, 1, 104, "+1")
    assert server.reactions == [("1", "eyes"), ("104", "+1")]
    assert server.count("POST", r"/repos/acme/app/issues/comments/104/reactions") == 1


def test_labels_by_id_with_names_resolved_once(gitea: GiteaForge, server: FakeGitea) -> None:
    gitea.add_labels(REPO, 1, ["forgebot", "bug"])
    gitea.add_labels(REPO, 1, ["forgebot:done"])  # an organisation label
    assert server.issue_labels == [22, 21, 90]
    gitea.remove_label(REPO, 1, "forgebot")
    gitea.remove_label(REPO, 1, "forgebot")  # not there any more: fine
    gitea.remove_label(REPO, 1, "never-existed")  # no such label: fine, no DELETE
    assert server.issue_labels == [21, 90]
    # 9 repo labels fit one page (the total says so). A name not in the cache lists the
    # labels again, then the organisation's: for "forgebot:done" and "never-existed".
    assert server.count("GET", r"/repos/acme/app/labels") == 3
    assert server.count("GET", r"/orgs/acme/labels") == 2
    assert server.count("DELETE", r"/repos/acme/app/issues/1/labels/\d+") == 2


def test_labels_on_a_repository_of_a_user(gitea: GiteaForge, server: FakeGitea) -> None:
    server.org_labels = None  # /orgs/acme is a 404
    gitea.add_labels(REPO, 1, ["bug"])
    with pytest.raises(ForgeError, match=r"no label.*nope") as err:
        gitea.add_labels(REPO, 1, ["bug", "nope"])
    assert not err.value.retryable
    assert server.issue_labels == [21]


def test_set_status(gitea: GiteaForge, server: FakeGitea) -> None:
    gitea.set_status(REPO, SHA, "pending", "forgebot job 1: running")
    gitea.set_status(REPO, SHA, "success", "x" * 400)
    assert server.statuses[0] == {"sha": SHA, "state": "pending", "context": "forgebot",
                                  "description": "forgebot job 1: running"}
    assert len(server.statuses[1]["description"]) == 255
    with pytest.raises(ForgeError, match="unknown status state"):
        gitea.set_status(REPO, SHA, "running", "")


@pytest.mark.parametrize(
    ("user", "expected"),
    [("alice", "write"), ("root", "admin"), ("eve", "read"), ("ghost", "none")],
)
def test_permission(gitea: GiteaForge, server: FakeGitea, user: str, expected: str) -> None:
    assert gitea.permission(REPO, user) == expected


def test_permission_needs_the_bot_to_be_repo_admin(gitea: GiteaForge, server: FakeGitea) -> None:
    server.bot_is_admin = False
    with pytest.raises(ForgeError, match="must be an administrator of acme/app") as err:
        gitea.permission(REPO, "alice")
    assert not err.value.retryable


def test_changed_files(gitea: GiteaForge, server: FakeGitea) -> None:
    assert gitea.changed_files(REPO, BASE_SHA, SHA) == ["specs/auth.md", "README.md", "old.txt"]
    with pytest.raises(ForgeError, match="not a commit sha"):
        gitea.changed_files(REPO, "main", SHA)


def test_clone_url_is_rewritten_and_asked_once(gitea: GiteaForge, server: FakeGitea) -> None:
    assert gitea.clone_url(REPO) == "/srv/git/acme/app.git"
    assert gitea.clone_url(REPO) == "/srv/git/acme/app.git"
    assert server.count("GET", r"/repos/acme/app") == 1


def test_git_auth_is_askpass_env_with_the_token(gitea: GiteaForge, server: FakeGitea) -> None:
    assert gitea.git_auth(REPO) == gitops.auth_env("forgebot", TOKEN)
    assert TOKEN not in gitea.clone_url(REPO)


def test_errors_never_carry_the_token(gitea: GiteaForge, server: FakeGitea) -> None:
    # A server (or a proxy in front of it) that echoes the credential back.
    echo = {"message": f"token {TOKEN} is invalid"}
    server.fail("GET", r"/repos/acme/app/issues/1", (401, {}, echo))
    with pytest.raises(ForgeError) as err:
        gitea.get_issue(REPO, 1)
    assert TOKEN not in str(err.value)
    assert "HTTP 401" in str(err.value) and "is invalid" in str(err.value)


# --------------------------------------------------------------------------- faults


def test_a_job_through_5xx_429_and_timeouts_makes_one_pull_and_one_comment(
    gitea: GiteaForge, server: FakeGitea, sleeps: Sleeps
) -> None:
    server.fail("GET", r"/repos/acme/app/pulls", 502, requests.exceptions.ReadTimeout())
    server.fail("POST", r"/repos/acme/app/pulls",
                (429, {"Retry-After": "3"}), requests.exceptions.ConnectTimeout())
    server.fail("GET", r"/repos/acme/app/issues/1/comments", 503)
    server.fail("POST", r"/repos/acme/app/issues/1/comments", (503, {"Retry-After": "2"}))
    server.fail("POST", r"/repos/acme/app/statuses/[0-9a-f]+", (429, {"Retry-After": "1"}))

    # What the pipeline does: find, open, show the status comment, set the commit status.
    assert gitea.find_pull(REPO, BRANCH) is None
    pull = gitea.open_pull(REPO, new_pull())
    gitea.upsert_comment(REPO, 1, MARKER, f"{MARKER}\npull request #{pull.number}")
    gitea.set_status(REPO, SHA, "success", "forgebot job 1: submitted")

    assert len(server.pulls) == 1
    assert len(server.comments) == 1
    assert len(server.statuses) == 1
    # backoff 0.5, 1.0 for the find; 3 (Retry-After), then 1.0 (2nd retry) for the POST;
    # 0.5 for the list of comments; 2 for its POST; 1 for the status.
    assert sleeps.waits == [0.5, 1.0, 3.0, 1.0, 0.5, 2.0, 1.0]


@pytest.mark.parametrize(
    "lost",
    [500, 502, requests.exceptions.ReadTimeout(), (503, {})],
    ids=["500", "502", "read-timeout", "503-without-retry-after"],
)
def test_a_pull_created_but_answered_with_an_error_is_not_made_twice(
    gitea: GiteaForge, server: FakeGitea, sleeps: Sleeps, lost: Answer
) -> None:
    server.fail("POST", r"/repos/acme/app/pulls", Lost(lost))
    with pytest.raises(ForgeError) as err:
        gitea.open_pull(REPO, new_pull())
    assert err.value.retryable  # the job is retried ...
    assert server.count("POST", r"/repos/acme/app/pulls") == 1  # ... but the POST is not
    # The retried job looks the pull request up by its branch first and finds it.
    found = gitea.find_pull(REPO, BRANCH)
    assert found is not None
    # And even a caller that skips the lookup gets the same pull request back (409).
    assert gitea.open_pull(REPO, new_pull()) == found
    assert len(server.pulls) == 1


def test_a_comment_created_but_answered_with_an_error_is_edited_not_repeated(
    gitea: GiteaForge, server: FakeGitea
) -> None:
    server.fail("POST", r"/repos/acme/app/issues/1/comments", Lost(502))
    with pytest.raises(ForgeError):
        gitea.upsert_comment(REPO, 1, MARKER, f"{MARKER}\nqueued")
    gitea.upsert_comment(REPO, 1, MARKER, f"{MARKER}\nrunning")
    assert [c["body"] for c in server.comments] == [f"{MARKER}\nrunning"]


def test_connection_refused_posts_are_retried(gitea: GiteaForge, server: FakeGitea) -> None:
    from urllib3.exceptions import MaxRetryError, NewConnectionError

    refused = requests.ConnectionError(
        MaxRetryError(None, "/", NewConnectionError(None, "refused"))  # type: ignore[arg-type]
    )
    server.fail("POST", r"/repos/acme/app/issues/1/comments", refused)
    gitea.comment(REPO, 1, "hello")
    assert [c["body"] for c in server.comments] == ["hello"]


def test_a_failing_server_opens_the_breaker(
    gitea: GiteaForge, server: FakeGitea, sleeps: Sleeps
) -> None:
    server.fail("GET", r"/repos/acme/app/issues/1", *([503] * 5))
    with pytest.raises(ForgeError, match="HTTP 503") as err:
        gitea.get_issue(REPO, 1)  # 1 try + 4 retries, all failed: the breaker opens
    assert err.value.retryable
    assert sleeps.waits == [0.5, 1.0, 2.0, 4.0]
    calls = len(server.calls)
    with pytest.raises(ForgeError, match="circuit open"):
        gitea.comment(REPO, 1, "hello")
    assert len(server.calls) == calls  # refused without a request


# --------------------------------------------------------------------------- the receiver


def signed_delivery(name: str, event: str, event_type: str,
                    secret: str = "s") -> tuple[dict[str, str], bytes]:
    """A captured payload with the headers Gitea sends, signed with ``secret``."""
    body = (FIXTURES / name).read_bytes()
    signature = sign_sha256(secret, body)
    return {
        "Content-Type": "application/json",
        "X-Gitea-Delivery": f"delivery-{name}",
        "X-Gitea-Event": event,
        "X-Gitea-Event-Type": event_type,
        "X-Gitea-Signature": signature,
        "X-Hub-Signature-256": "sha256=" + signature,
    }, body


DELIVERIES = [
    ("issues__label_updated.json", "issues", "issue_label"),
    ("issue_comment__created_pr.json", "issue_comment", "pull_request_comment"),
    ("issue_comment__created_issue.json", "issue_comment", "issue_comment"),
    ("push__default_branch.json", "push", "push"),
    ("pull_request__closed_merged.json", "pull_request", "pull_request"),
    ("pull_request__closed_unmerged.json", "pull_request", "pull_request"),
    ("pull_request__reviewed_approved.json", "pull_request_approved",
     "pull_request_review_approved"),
    ("issues__closed.json", "issues", "issues"),
]


def test_the_receiver_stores_every_gitea_delivery_and_the_planner_makes_one_job(
    gitea: GiteaForge, store: Store, server: FakeGitea
) -> None:
    # The fixtures come from repository example/example; the fake serves acme/app.
    server.repo_path = r"/repos/example/example"
    server.permissions["example"] = "write"  # the sender of the label fixture
    app = create_app(store, {"gitea": gitea})
    client = app.test_client()
    for name, event, event_type in DELIVERIES:
        headers, body = signed_delivery(name, event, event_type)
        answer = client.post("/webhooks/gitea", data=body, headers=headers)
        assert answer.status_code == 202, name
    # The push fixture (a README.md edit) is of another repository than the fake serves; with
    # specs on, the spec trigger would fetch it to read that repository's spec globs. The
    # spec trigger has its own tests over this payload (tests/integration/test_spec_trigger.py).
    policy = Policy(trigger=Trigger(labels=("bug",)), specs=Specs(enabled=False))
    made = Planner(store, {"gitea": gitea}, policy, "forgebot").plan_pending()
    assert made == 1
    # The labelled issue made a job; every other event was recorded and ignored.
    assert store.delivery_counts() == {"job": 1, "ignored": len(DELIVERIES) - 1}


@pytest.mark.parametrize("mutate", ["wrong", "missing", "other_secret", "tampered_body"])
def test_a_bad_gitea_signature_is_401_and_nothing_is_stored(
    gitea: GiteaForge, store: Store, mutate: str
) -> None:
    secret = "other" if mutate == "other_secret" else "s"
    headers, body = signed_delivery("issues__label_updated.json", "issues", "issue_label",
                                    secret=secret)
    if mutate == "wrong":
        headers["X-Gitea-Signature"] = "0" * 64
    if mutate == "missing":
        del headers["X-Gitea-Signature"]
    if mutate == "tampered_body":
        body = body.replace(b'"bug"', b'"forgebot"')
    answer = create_app(store, {"gitea": gitea}).test_client().post(
        "/webhooks/gitea", data=body, headers=headers
    )
    assert answer.status_code == 401
    assert store.delivery_counts() == {}


# --------------------------------------------------------------------------- lifecycle


def test_close_issue_comments_then_closes(gitea: GiteaForge, server: FakeGitea) -> None:
    gitea.close_issue(REPO, 1, "merged")
    gitea.close_issue(REPO, 1)  # closing a closed issue is fine
    assert server.closed == [1]
    assert [c["body"] for c in server.comments] == ["merged"]


def test_delete_branch_keeps_the_slash_and_a_gone_branch_is_fine(
    gitea: GiteaForge, server: FakeGitea
) -> None:
    gitea.delete_branch(REPO, BRANCH)
    gitea.delete_branch(REPO, BRANCH)
    assert server.branches == {"main"}
    assert server.count("DELETE", r"/repos/acme/app/branches/forgebot/1-add-farewell") == 2


def bot_job(store: Store, issue: int = 2) -> int:
    """A finished job of jcitizen/my-repo (the review fixtures' repository) whose pull
    request is #1 (``issue`` is the issue it came from)."""
    job = store.create_job(trigger_key=trigger_key("gitea", "jcitizen/my-repo", issue),
                           forge="gitea", repo="jcitizen/my-repo", default_branch="master",
                           issue_number=issue, title="Add a farewell", requested_by="jcitizen",
                           delivery_row=None)
    assert job is not None
    store.update_job(job.id, branch="forgebot/2-add-a-farewell", pull_number=1)
    claim = store.claim_next("worker", 60)
    assert claim is not None
    store.finish(claim, "worker", "submitted", failed=False)
    return job.id


def plan_twice(gitea: GiteaForge, store: Store, body: bytes, event: str, event_type: str) -> None:
    """Plan the delivery, then the same body again under another id (a replay)."""
    for key in ("a", "b"):
        headers = {"X-Gitea-Event": event, "X-Gitea-Event-Type": event_type,
                   "X-Gitea-Delivery": f"delivery-{key}"}
        store.record_delivery("gitea", f"delivery-{key}", event, headers, body)
    Planner(store, {"gitea": gitea}, Policy(), "forgebot").plan_pending()


def test_a_rejecting_review_of_the_bots_pull_request_revises_once(
    gitea: GiteaForge, store: Store, server: FakeGitea
) -> None:
    server.repo_path = r"/repos/jcitizen/my-repo"
    server.permissions["jcitizen"] = "write"
    job_id = bot_job(store)
    payload = fixture("pull_request__reviewed_approved.json")
    payload["review"].update(type="pull_request_review_rejected", content="Say see you soon.")
    plan_twice(gitea, store, json.dumps(payload).encode(), "pull_request_rejected",
               "pull_request_review_rejected")
    assert server.reactions == [("1", "eyes")]  # on the pull request, once
    assert store.get_job(job_id).state == "queued"
    assert store.last_request(job_id)["feedback"] == (
        "Review by @jcitizen (changes_requested):\nSay see you soon.")


def test_the_captured_approval_starts_nothing(
    gitea: GiteaForge, store: Store, server: FakeGitea
) -> None:
    job_id = bot_job(store)
    plan_twice(gitea, store, (FIXTURES / "pull_request__reviewed_approved.json").read_bytes(),
               "pull_request_approved", "pull_request_review_approved")
    assert store.get_job(job_id).state == "done"
    assert server.calls == []


def test_a_merged_bot_pull_request_closes_its_issue_once(
    gitea: GiteaForge, store: Store, server: FakeGitea
) -> None:
    server.repo_path = r"/repos/jcitizen/my-repo"
    job_id = bot_job(store)
    plan_twice(gitea, store, (FIXTURES / "pull_request__closed_merged.json").read_bytes(),
               "pull_request", "pull_request")
    assert server.closed == [2]
    [said] = server.comments
    assert "[#1](https://try.gitea.io/jcitizen/my-repo/pulls/1)" in said["body"]
    assert [e["kind"] for e in store.events(job_id)].count("pull.merged") == 1


def test_a_closed_issue_cancels_its_job(gitea: GiteaForge, store: Store,
                                        server: FakeGitea) -> None:
    server.repo_path = r"/repos/gogits/hello-world"
    job = store.create_job(trigger_key=trigger_key("gitea", "gogits/hello-world", 1),
                           forge="gitea", repo="gogits/hello-world", default_branch="master",
                           issue_number=1, title="Problem", requested_by="unknwon",
                           delivery_row=None)
    assert job is not None
    plan_twice(gitea, store, (FIXTURES / "issues__closed.json").read_bytes(), "issues",
               "issues")
    assert store.get_job(job.id).state == "cancelled"
    assert len(server.comments) == 1 and "@unknwon closed the issue" in server.comments[0]["body"]


# ------------------------------------------------------- reconciliation and the dashboard issue
# Plain `responses` routes (not the stateful fake): each answer is built from a captured
# payload's object, which is the API's object too.

REPO_API = f"{API}/repos/{REPO}"


@pytest.fixture
def plain() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


def api_issue(number: int) -> dict[str, Any]:
    issue = copy.deepcopy(fixture("issues__label_updated.json")["issue"])
    issue.update(number=number, state="open")
    return issue


def api_comment(comment_id: int, created: str, body: str) -> dict[str, Any]:
    comment = copy.deepcopy(fixture("issue_comment__created_issue.json")["comment"])
    comment.update(id=comment_id, body=body, created_at=created, updated_at=created)
    return comment


def test_default_branch_is_the_repositorys(gitea: GiteaForge,
                                           plain: responses.RequestsMock) -> None:
    repository = {**fixture("push__default_branch.json")["repository"], "default_branch": "dev"}
    plain.get(REPO_API, json=repository)
    assert gitea.default_branch(REPO) == "dev"


def test_open_issues_with_a_label_page_by_page(gitea: GiteaForge,
                                               plain: responses.RequestsMock) -> None:
    query = {"state": "open", "type": "issues", "labels": "forgebot", "limit": "50"}
    plain.get(f"{REPO_API}/issues", json=[api_issue(1), api_issue(4)],
              headers={"X-Total-Count": "3"},
              match=[responses.matchers.query_param_matcher({**query, "page": "1"})])
    plain.get(f"{REPO_API}/issues", json=[api_issue(6)], headers={"X-Total-Count": "3"},
              match=[responses.matchers.query_param_matcher({**query, "page": "2"})])
    issues = gitea.open_issues_with_label(REPO, "forgebot")
    assert [i.number for i in issues] == [1, 4, 6]
    assert issues[0].labels == ("bug",) and issues[0].author == "example"


def test_the_label_actor_is_who_added_that_label_last(gitea: GiteaForge,
                                                      plain: responses.RequestsMock) -> None:
    def entry(kind: str, label: str, body: str, user: str) -> dict[str, Any]:
        return {"id": 1, "type": kind, "body": body, "label": {"id": 22, "name": label},
                "user": {"id": 1, "login": user, "username": user},
                "created_at": "2024-01-01T00:00:00Z"}

    plain.get(f"{REPO_API}/issues/1/timeline", json=[
        entry("label", "forgebot", "1", "mallory"), entry("label", "forgebot", "", "grace"),
        entry("label", "forgebot", "1", "grace"), entry("label", "bug", "1", "example"),
        entry("comment", "forgebot", "1", "someone")], headers={"X-Total-Count": "5"})
    assert gitea.label_actor(REPO, 1, "forgebot") == "grace"


def test_comments_since_keeps_those_created_after(gitea: GiteaForge,
                                                  plain: responses.RequestsMock) -> None:
    plain.get(f"{REPO_API}/issues/1/comments", json=[
        api_comment(2, "2022-03-09T16:20:44+09:00", "older"),
        api_comment(5, "2022-03-09T16:30:00+09:00", "/retry")],
        match=[responses.matchers.query_param_matcher({"since": "2022-03-09T07:25:00Z"})])
    found = gitea.comments_since(REPO, 1, datetime(2022, 3, 9, 7, 25, tzinfo=UTC))
    assert [(c.id, c.author, c.body) for c in found] == [(5, "example", "/retry")]
    assert found[0].created == datetime(2022, 3, 9, 7, 30, tzinfo=UTC)


@pytest.mark.parametrize(("name", "changes", "expected"), [
    ("pull_request__closed_merged.json", {}, ("merged", "jcitizen")),
    ("pull_request__closed_unmerged.json", {}, ("closed", "")),
    ("pull_request__closed_unmerged.json", {"state": "open"}, ("open", "")),
])
def test_pull_state(gitea: GiteaForge, plain: responses.RequestsMock, name: str,
                    changes: dict[str, Any], expected: tuple[str, str]) -> None:
    pull = {**fixture(name)["pull_request"], **changes}
    plain.get(f"{REPO_API}/pulls/{pull['number']}", json=pull)
    state = gitea.pull_state(REPO, int(pull["number"]))
    assert (state.state, state.by) == expected
    assert (state.head, state.url) == (pull["head"]["ref"], pull["html_url"])


def test_create_and_edit_the_dashboard_issue(gitea: GiteaForge,
                                             plain: responses.RequestsMock) -> None:
    plain.post(f"{REPO_API}/issues", status=201, json=api_issue(12),
               match=[responses.matchers.json_params_matcher(
                   {"title": "forgebot dashboard", "body": "jobs"})])
    assert gitea.create_issue(REPO, "forgebot dashboard", "jobs") == 12
    plain.patch(f"{REPO_API}/issues/12", json=api_issue(12),
                match=[responses.matchers.json_params_matcher({"body": "new jobs"})])
    gitea.edit_issue(REPO, 12, "new jobs")
    plain.patch(f"{REPO_API}/issues/13", status=404, json={"message": "not found"})
    with pytest.raises(ForgeError, match="HTTP 404"):
        gitea.edit_issue(REPO, 13, "new jobs")
