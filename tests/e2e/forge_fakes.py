"""Small stateful fakes of the GitHub, GitLab and Gitea APIs, served through `responses`.

Each fake keeps what the bot creates (pull requests, comments, statuses), answers with JSON
shaped like the forge's own (built from the captured payloads in tests/fixtures/webhooks),
and can fail requests on purpose: a scripted list of faults per route, or a seeded random
rate. A fault is a 5xx, a 429 with ``Retry-After``, a read timeout or a connection reset;
a 5xx, timeout or reset may be *lost* (the server did the work, the answer never arrived),
which is the case that makes a careless client post twice.

The fakes also build the signed webhook deliveries, so a test posts exactly what the forge
would: the real payload, adjusted only where the test needs it (the trigger label, the
issue number), signed as that forge signs it.
"""

from __future__ import annotations

import copy
import json
import random
import re
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import requests
import responses

from bot.forges.verify import sign_sha256

WEBHOOKS = Path(__file__).resolve().parents[1] / "fixtures" / "webhooks"
TRIGGER = "forgebot"
BOT = "forgebot"

Reply = tuple[int, dict[str, str], Any]
Handler = Callable[..., Reply]


def fixture(forge: str, name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((WEBHOOKS / forge / name).read_text())
    return data


# --------------------------------------------------------------------------- faults


@dataclass(frozen=True)
class Fault:
    """One injected failure. ``kind``: an HTTP status as text ("502"), "429", "timeout" or
    "reset". ``lost``: the server did the work before the answer was lost."""

    kind: str
    lost: bool = False
    retry_after: str = "1"

    def answer(self) -> Reply | Exception:
        if self.kind == "timeout":
            return requests.exceptions.ReadTimeout("injected read timeout")
        if self.kind == "reset":
            return requests.exceptions.ConnectionError(
                ConnectionResetError(104, "injected connection reset"))
        status = int(self.kind)
        headers = {"Retry-After": self.retry_after} if status == 429 else {}
        return status, headers, {"message": f"injected {status}"}


RANDOM_KINDS = ("500", "502", "503", "429", "timeout", "reset")


@dataclass
class Faults:
    """Which requests fail: scripted ones first, then at random (seeded) at ``rate``."""

    rate: float = 0.0
    seed: int = 0
    retry_after: str = "1"
    lost_share: float = 0.5  # of the 5xx, timeouts and resets, how many did the work
    scripted: list[tuple[str, str, list[Fault]]] = field(default_factory=list)
    injected: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def script(self, method: str, path_regex: str, *faults: Fault) -> None:
        """The next requests of ``method`` to a path matching ``path_regex`` (the path after
        the API root) get ``faults``, in order."""
        self.scripted.append((method, path_regex, list(faults)))

    def pick(self, method: str, path: str) -> Fault | None:
        for m, pattern, queue in self.scripted:
            if m == method and queue and re.fullmatch(pattern, path):
                fault = queue.pop(0)
                self.injected[fault.kind] += 1
                return fault
        if self.rate <= 0 or self._rng.random() >= self.rate:
            return None
        kind = self._rng.choice(RANDOM_KINDS)
        lost = kind != "429" and self._rng.random() < self.lost_share
        self.injected[kind] += 1
        return Fault(kind, lost=lost, retry_after=self.retry_after)

    @property
    def total(self) -> int:
        return sum(self.injected.values())


# --------------------------------------------------------------------------- the base


class FakeForge:
    """The shared machinery: routing, faults, call records, thread safety.

    Subclasses set ``api`` (the API root URL), ``token_header`` (name, value) and
    ``routes()``. State is per repository ``repo``; issues are numbered 1..n.
    """

    api: str = ""
    repo: str = ""
    token_header: tuple[str, str] = ("", "")

    def __init__(self, *, faults: Faults | None = None, issues: int = 1) -> None:
        self.faults = faults or Faults()
        self.lock = threading.RLock()
        self.calls: list[tuple[str, str]] = []
        self.retries = 0
        self._failed: set[tuple[str, str, bytes]] = set()
        self.issue_count = issues
        self.pulls: list[dict[str, Any]] = []
        self.comments: list[dict[str, Any]] = []
        self.statuses: list[dict[str, Any]] = []
        self.pull_requests_made: list[dict[str, Any]] = []  # every create the server accepted

    # ----------------------------------------------------------------- serving

    @contextmanager
    def serving(self) -> Iterator[responses.RequestsMock]:
        """Serve the API with `responses`; everything else over HTTP is refused, except the
        Docker engine's socket, which the sandbox needs."""
        with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
            mock.add_passthru(re.compile(r"http\+docker://.*"))
            for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
                mock.add_callback(method, re.compile(re.escape(self.api) + r"(/.*)?"),
                                  callback=self._callback)
            yield mock

    def _callback(self, request: requests.PreparedRequest) -> Reply:
        result = self.handle(request)
        if isinstance(result, Exception):
            raise result
        status, headers, body = result
        return status, {"Content-Type": "application/json", **headers}, json.dumps(body)

    def handle(self, request: requests.PreparedRequest) -> Reply | Exception:
        parts = urlsplit(request.url or "")
        path = unquote(parts.path)[len(urlsplit(self.api).path):]
        method = (request.method or "GET").upper()
        raw = request.body or b""
        raw_bytes = raw.encode() if isinstance(raw, str) else raw
        key = (method, request.url or "", raw_bytes)
        with self.lock:
            self.calls.append((method, path))
            if key in self._failed:
                self.retries += 1
                self._failed.discard(key)
            name, value = self.token_header
            if request.headers.get(name) != value:
                return 401, {}, {"message": "Bad credentials"}
            fault = self.faults.pick(method, path)
            if fault is not None:
                self._failed.add(key)
                if not fault.lost:
                    return fault.answer()
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            body = json.loads(raw_bytes) if raw_bytes else None
            reply = self._route(method, path, query, body)
            return fault.answer() if fault is not None else reply

    def _route(self, method: str, path: str, query: dict[str, str], body: Any) -> Reply:
        for route_method, pattern, handler in self.routes():
            match = re.fullmatch(pattern, path)
            if route_method == method and match:
                return handler(query, body, *match.groups())
        return 404, {}, {"message": "Not Found"}

    def routes(self) -> list[tuple[str, str, Handler]]:
        raise NotImplementedError

    # ----------------------------------------------------------------- what tests read

    def comments_on(self, number: int) -> list[dict[str, Any]]:
        return [c for c in self.comments if c["_issue"] == number]

    def pulls_from(self, head: str) -> list[dict[str, Any]]:
        return [p for p in self.pull_requests_made if p["_head"] == head]

    def check_one_of_each(self) -> dict[int, tuple[int, int]]:
        """Per issue with any, (pull requests made, comments made): never more than one."""
        seen: dict[int, tuple[int, int]] = {}
        for number in range(1, self.issue_count + 1):
            made = sum(1 for p in self.pull_requests_made if p["_issue"] == number)
            notes = len(self.comments_on(number))
            if made or notes:
                seen[number] = (made, notes)
        return seen

    def delivery(self, number: int = 1) -> tuple[dict[str, str], bytes]:
        """The signed webhook delivery that labels issue ``number`` with the trigger."""
        raise NotImplementedError


def issue_title(number: int) -> str:
    return "Add a farewell" if number == 1 else f"Add a farewell, take {number}"


ISSUE_BODY = "Add `farewell(name)` next to `greet`, with tests."


# --------------------------------------------------------------------------- GitHub


class FakeGitHub(FakeForge):
    """api.github.com for ``Codertocat/Hello-World`` (the repository of the payloads)."""

    repo = "Codertocat/Hello-World"

    def __init__(self, *, token: str, secret: str, api: str = "https://api.github.com",
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.api = api
        self.token_header = ("Authorization", f"Bearer {token}")
        self.secret = secret
        self.repo_api = f"{api}/repos/{self.repo}"

    def routes(self) -> list[tuple[str, str, Handler]]:
        r = f"/repos/{re.escape(self.repo)}"
        return [
            ("GET", r, self._repository),
            ("GET", r + r"/issues/(\d+)", self._issue),
            ("GET", r + r"/issues/(\d+)/comments", self._list_comments),
            ("POST", r + r"/issues/(\d+)/comments", self._create_comment),
            ("PATCH", r + r"/issues/comments/(\d+)", self._edit_comment),
            ("GET", r + r"/pulls", self._list_pulls),
            ("POST", r + r"/pulls", self._create_pull),
            ("GET", r + r"/pulls/(\d+)", self._get_pull),
            ("PATCH", r + r"/pulls/(\d+)", self._edit_pull),
            ("POST", r + r"/statuses/([0-9a-f]{40})", self._create_status),
            ("GET", r + r"/collaborators/([^/]+)/permission", self._permission),
        ]

    @staticmethod
    def _html(item: dict[str, Any]) -> dict[str, Any]:
        body = item.get("body") or ""
        return {**item, "body_html": f"<p>{body}</p>", "body_text": body}

    def _repository(self, query: dict[str, str], body: Any) -> Reply:
        repository = fixture("github", "pull_request__closed_unmerged.json")["repository"]
        return 200, {}, {**repository, "network_count": 0, "subscribers_count": 1}

    def _issue_json(self, number: int) -> dict[str, Any]:
        issue = copy.deepcopy(fixture("github", "issues__labeled.json")["issue"])
        label = {**fixture("github", "issues__labeled.json")["label"], "name": TRIGGER}
        issue.update(number=number, title=issue_title(number), body=ISSUE_BODY,
                     labels=[label], url=f"{self.repo_api}/issues/{number}",
                     comments_url=f"{self.repo_api}/issues/{number}/comments",
                     html_url=f"https://github.com/{self.repo}/issues/{number}")
        return {**self._html(issue), "closed_by": None}

    def _issue(self, query: dict[str, str], body: Any, number: str) -> Reply:
        if not 1 <= int(number) <= self.issue_count:
            return 404, {}, {"message": "Not Found"}
        return 200, {}, self._issue_json(int(number))

    def _list_comments(self, query: dict[str, str], body: Any, number: str) -> Reply:
        return 200, {}, [self._html(self._public(c)) for c in self.comments_on(int(number))]

    @staticmethod
    def _public(item: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in item.items() if not k.startswith("_")}

    def _create_comment(self, query: dict[str, str], body: Any, number: str) -> Reply:
        comment = copy.deepcopy(fixture("github", "issue_comment__created_issue.json")["comment"])
        comment_id = 1000 + len(self.comments)
        comment.update(id=comment_id, body=body["body"], _issue=int(number),
                       url=f"{self.repo_api}/issues/comments/{comment_id}")
        comment["user"]["login"] = BOT
        self.comments.append(comment)
        return 201, {}, self._html(self._public(comment))

    def _edit_comment(self, query: dict[str, str], body: Any, comment_id: str) -> Reply:
        for comment in self.comments:
            if comment["id"] == int(comment_id):
                comment["body"] = body["body"]
                return 200, {}, self._html(self._public(comment))
        return 404, {}, {"message": "Not Found"}

    def _pull_json(self, pull: dict[str, Any]) -> dict[str, Any]:
        data = copy.deepcopy(fixture("github", "pull_request__closed_unmerged.json")
                             ["pull_request"])
        number = pull["number"]
        data.update(number=number, url=f"{self.repo_api}/pulls/{number}", state="open",
                    draft=pull["draft"], title=pull["title"], body=pull["body"], merged=False,
                    html_url=f"https://github.com/{self.repo}/pull/{number}",
                    issue_url=f"{self.repo_api}/issues/{number}")
        data["head"].update(ref=pull["_head"], label=f"Codertocat:{pull['_head']}")
        data["base"].update(ref=pull["_base"], label=f"Codertocat:{pull['_base']}")
        return self._html(data)

    def _list_pulls(self, query: dict[str, str], body: Any) -> Reply:
        head = query.get("head", "").partition(":")[2]
        found = [self._pull_json(p) for p in self.pulls if not head or p["_head"] == head]
        return 200, {}, found

    def _create_pull(self, query: dict[str, str], body: Any) -> Reply:
        if any(p["_head"] == body["head"] for p in self.pulls):
            return 422, {}, {"message": "Validation Failed", "errors": [{
                "message": f"A pull request already exists for Codertocat:{body['head']}."}]}
        pull = {"number": self.issue_count + 1 + len(self.pulls), "_head": body["head"],
                "_base": body["base"], "title": body["title"], "body": body["body"],
                "draft": bool(body.get("draft")), "_issue": _issue_of(body["head"])}
        self.pulls.append(pull)
        self.pull_requests_made.append(pull)
        return 201, {}, self._pull_json(pull)

    def _find_pull(self, number: str) -> dict[str, Any] | None:
        return next((p for p in self.pulls if p["number"] == int(number)), None)

    def _get_pull(self, query: dict[str, str], body: Any, number: str) -> Reply:
        pull = self._find_pull(number)
        return (200, {}, self._pull_json(pull)) if pull else (404, {}, {"message": "Not Found"})

    def _edit_pull(self, query: dict[str, str], body: Any, number: str) -> Reply:
        pull = self._find_pull(number)
        if pull is None:
            return 404, {}, {"message": "Not Found"}
        pull.update({k: v for k, v in body.items() if k in ("body", "title")})
        return 200, {}, self._pull_json(pull)

    def _create_status(self, query: dict[str, str], body: Any, sha: str) -> Reply:
        self.statuses.append({**body, "sha": sha})
        return 201, {}, {"url": f"{self.repo_api}/statuses/{sha}", "id": len(self.statuses),
                         "state": body["state"], "description": body.get("description"),
                         "target_url": None, "context": body.get("context", "default"),
                         "created_at": "2019-05-15T15:20:33Z",
                         "updated_at": "2019-05-15T15:20:33Z",
                         "creator": fixture("github", "issues__labeled.json")["sender"]}

    def _permission(self, query: dict[str, str], body: Any, user: str) -> Reply:
        sender = fixture("github", "issues__labeled.json")["sender"]
        return 200, {}, {"permission": "admin", "role_name": "admin",
                         "user": {**sender, "login": user}}

    def delivery(self, number: int = 1) -> tuple[dict[str, str], bytes]:
        payload = fixture("github", "issues__labeled.json")
        payload["label"]["name"] = TRIGGER
        payload["issue"].update(number=number, title=issue_title(number), body=ISSUE_BODY,
                                labels=[payload["label"]])
        body = json.dumps(payload).encode()
        return {
            "Content-Type": "application/json",
            "User-Agent": "GitHub-Hookshot/87e258b",
            "X-GitHub-Event": "issues",
            "X-GitHub-Delivery": str(uuid.uuid4()),
            "X-Hub-Signature-256": "sha256=" + sign_sha256(self.secret, body),
        }, body


def _issue_of(branch: str) -> int:
    """``forgebot/7-add-a-farewell`` → 7: which issue a bot branch belongs to."""
    match = re.match(r"forgebot/(\d+)-", branch)
    return int(match.group(1)) if match else 0


# --------------------------------------------------------------------------- GitLab


class FakeGitLab(FakeForge):
    """gitlab.com's /api/v4 for ``gitlab-org/hello-world`` (the repository of the payloads)."""

    repo = "gitlab-org/hello-world"
    bot_id = 4242
    sender_id = 51

    def __init__(self, *, token: str, secret: str, base: str = "https://gitlab.com",
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.api = f"{base}/api/v4"
        self.token_header = ("PRIVATE-TOKEN", token)
        self.secret = secret

    def routes(self) -> list[tuple[str, str, Handler]]:
        p = f"/projects/{re.escape(self.repo)}"
        return [
            ("GET", p, self._project),
            ("GET", p + r"/issues/(\d+)", self._issue),
            ("GET", r"/user", self._user),
            ("GET", r"/users", self._users),
            ("GET", p + r"/members/all/(\d+)", self._member),
            ("GET", p + r"/issues/(\d+)/notes", self._list_notes),
            ("POST", p + r"/issues/(\d+)/notes", self._create_note),
            ("PUT", p + r"/issues/(\d+)/notes/(\d+)", self._edit_note),
            ("GET", p + r"/merge_requests", self._list_mrs),
            ("POST", p + r"/merge_requests", self._create_mr),
            ("GET", p + r"/merge_requests/(\d+)", self._get_mr),
            ("PUT", p + r"/merge_requests/(\d+)", self._edit_mr),
            ("POST", p + r"/statuses/([0-9a-f]{40})", self._create_status),
        ]

    def _project(self, query: dict[str, str], body: Any) -> Reply:
        project = fixture("gitlab", "issue_hook__label_update.json")["project"]
        return 200, {}, {**project, "http_url_to_repo": project["git_http_url"]}

    def _issue(self, query: dict[str, str], body: Any, number: str) -> Reply:
        if not 1 <= int(number) <= self.issue_count:
            return 404, {}, {"message": "404 Not found"}
        user = fixture("gitlab", "issue_hook__label_update.json")["user"]
        return 200, {}, {"id": 300 + int(number), "iid": int(number),
                         "title": issue_title(int(number)), "description": ISSUE_BODY,
                         "labels": [TRIGGER], "state": "opened",
                         "author": {"id": self.sender_id, **user}}

    def _user(self, query: dict[str, str], body: Any) -> Reply:
        return 200, {}, {"id": self.bot_id, "username": BOT, "name": "forgebot"}

    def _users(self, query: dict[str, str], body: Any) -> Reply:
        user = fixture("gitlab", "issue_hook__label_update.json")["user"]
        if query.get("username") != user["username"]:
            return 200, {}, []
        return 200, {}, [{"id": self.sender_id, "username": user["username"],
                          "name": user["name"], "state": "active"}]

    def _member(self, query: dict[str, str], body: Any, user_id: str) -> Reply:
        if int(user_id) != self.sender_id:
            return 404, {}, {"message": "404 Not found"}
        return 200, {}, {"id": self.sender_id, "access_level": 40, "state": "active"}

    def _note(self, note: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in note.items() if not k.startswith("_")}

    def _list_notes(self, query: dict[str, str], body: Any, number: str) -> Reply:
        return 200, {}, [self._note(n) for n in self.comments_on(int(number))]

    def _create_note(self, query: dict[str, str], body: Any, number: str) -> Reply:
        note = {"id": 5000 + len(self.comments), "body": body["body"], "system": False,
                "author": {"id": self.bot_id, "username": BOT}, "noteable_type": "Issue",
                "_issue": int(number)}
        self.comments.append(note)
        return 201, {}, self._note(note)

    def _edit_note(self, query: dict[str, str], body: Any, number: str, note_id: str) -> Reply:
        for note in self.comments_on(int(number)):
            if note["id"] == int(note_id):
                note["body"] = body["body"]
                return 200, {}, self._note(note)
        return 404, {}, {"message": "404 Not found"}

    def _mr_json(self, mr: dict[str, Any]) -> dict[str, Any]:
        project_id = fixture("gitlab", "issue_hook__label_update.json")["project"]["id"]
        return {"id": 9000 + mr["iid"], "iid": mr["iid"], "project_id": project_id,
                "title": mr["title"], "description": mr["description"], "state": "opened",
                "draft": mr["title"].lower().startswith("draft:"),
                "source_branch": mr["_head"], "target_branch": mr["_base"],
                "source_project_id": project_id, "target_project_id": project_id,
                "web_url": f"https://gitlab.com/{self.repo}/-/merge_requests/{mr['iid']}"}

    def _list_mrs(self, query: dict[str, str], body: Any) -> Reply:
        head = query.get("source_branch")
        return 200, {}, [self._mr_json(m) for m in self.pulls if head in (None, m["_head"])]

    def _create_mr(self, query: dict[str, str], body: Any) -> Reply:
        if any(m["_head"] == body["source_branch"] for m in self.pulls):
            return 409, {}, {"message": ["Another open merge request already exists for this "
                                         "source branch: !1"]}
        mr = {"iid": 1 + len(self.pulls), "_head": body["source_branch"],
              "_base": body["target_branch"], "title": body["title"],
              "description": body.get("description", ""),
              "_issue": _issue_of(body["source_branch"])}
        self.pulls.append(mr)
        self.pull_requests_made.append(mr)
        return 201, {}, self._mr_json(mr)

    def _get_mr(self, query: dict[str, str], body: Any, iid: str) -> Reply:
        mr = next((m for m in self.pulls if m["iid"] == int(iid)), None)
        return (200, {}, self._mr_json(mr)) if mr else (404, {}, {"message": "404 Not found"})

    def _edit_mr(self, query: dict[str, str], body: Any, iid: str) -> Reply:
        mr = next((m for m in self.pulls if m["iid"] == int(iid)), None)
        if mr is None:
            return 404, {}, {"message": "404 Not found"}
        mr.update({k: v for k, v in body.items() if k in ("title", "description")})
        return 200, {}, self._mr_json(mr)

    def _create_status(self, query: dict[str, str], body: Any, sha: str) -> Reply:
        self.statuses.append({**body, "sha": sha})
        return 201, {}, {"id": len(self.statuses), "sha": sha, "status": body["state"],
                         "name": body.get("name"), "description": body.get("description")}

    def delivery(self, number: int = 1) -> tuple[dict[str, str], bytes]:
        payload = fixture("gitlab", "issue_hook__label_update.json")
        current = payload["changes"]["labels"]["current"]
        current[0]["title"] = TRIGGER
        payload["labels"] = current
        payload["object_attributes"].update(iid=number, title=issue_title(number),
                                            description=ISSUE_BODY)
        body = json.dumps(payload).encode()
        key = str(uuid.uuid4())
        return {
            "Content-Type": "application/json",
            "User-Agent": "GitLab/17.5.0",
            "X-Gitlab-Event": "Issue Hook",
            "X-Gitlab-Token": self.secret,
            "Idempotency-Key": key,
            "X-Gitlab-Event-UUID": key,
        }, body


# --------------------------------------------------------------------------- Gitea


class FakeGitea(FakeForge):
    """A Gitea server's /api/v1 for ``example/example`` (the repository of the payloads)."""

    repo = "example/example"

    def __init__(self, *, token: str, secret: str, base: str = "http://localhost:3000",
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.api = f"{base}/api/v1"
        self.token_header = ("Authorization", f"token {token}")
        self.secret = secret

    def routes(self) -> list[tuple[str, str, Handler]]:
        r = f"/repos/{re.escape(self.repo)}"
        return [
            ("GET", r, self._repository),
            ("GET", r + r"/issues/(\d+)", self._issue),
            ("GET", r + r"/issues/(\d+)/comments", self._list_comments),
            ("POST", r + r"/issues/(\d+)/comments", self._create_comment),
            ("PATCH", r + r"/issues/comments/(\d+)", self._edit_comment),
            ("GET", r + r"/pulls", self._list_pulls),
            ("POST", r + r"/pulls", self._create_pull),
            ("GET", r + r"/pulls/(\d+)", self._get_pull),
            ("PATCH", r + r"/pulls/(\d+)", self._edit_pull),
            ("POST", r + r"/statuses/([0-9a-f]{40})", self._create_status),
            ("GET", r + r"/collaborators/([^/]+)/permission", self._permission),
        ]

    def _repository(self, query: dict[str, str], body: Any) -> Reply:
        return 200, {}, fixture("gitea", "issues__label_updated.json")["repository"]

    def _issue(self, query: dict[str, str], body: Any, number: str) -> Reply:
        if not 1 <= int(number) <= self.issue_count:
            return 404, {}, {"message": "issue does not exist"}
        issue = fixture("gitea", "issues__label_updated.json")["issue"]
        issue["labels"][0]["name"] = TRIGGER
        issue.update(number=int(number), title=issue_title(int(number)), body=ISSUE_BODY)
        return 200, {}, issue

    def _public(self, item: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in item.items() if not k.startswith("_")}

    def _list_comments(self, query: dict[str, str], body: Any, number: str) -> Reply:
        return 200, {}, [self._public(c) for c in self.comments_on(int(number))]

    def _create_comment(self, query: dict[str, str], body: Any, number: str) -> Reply:
        comment = fixture("gitea", "issue_comment__created_issue.json")["comment"]
        comment.update(id=100 + len(self.comments), body=body["body"], _issue=int(number))
        comment["user"].update(login=BOT, username=BOT)
        self.comments.append(comment)
        return 201, {}, self._public(comment)

    def _edit_comment(self, query: dict[str, str], body: Any, comment_id: str) -> Reply:
        for comment in self.comments:
            if comment["id"] == int(comment_id):
                comment["body"] = body["body"]
                return 200, {}, self._public(comment)
        return 404, {}, {"message": "comment does not exist"}

    def _pull_json(self, pull: dict[str, Any]) -> dict[str, Any]:
        data: dict[str, Any] = fixture("gitea", "pull_request__closed_unmerged.json")[
            "pull_request"]
        data.update(number=pull["number"], title=pull["title"], body=pull["body"],
                    state="open", merged=False,
                    html_url=f"http://localhost:3000/{self.repo}/pulls/{pull['number']}")
        data["head"].update(ref=pull["_head"], label=pull["_head"])
        data["base"].update(ref=pull["_base"], label=pull["_base"])
        data["head"]["repo"] = data["base"]["repo"] = {"full_name": self.repo}
        return data

    def _list_pulls(self, query: dict[str, str], body: Any) -> Reply:
        page, limit = int(query.get("page", 1)), int(query.get("limit", 50))
        items = [self._pull_json(p) for p in self.pulls]
        chunk = items[(page - 1) * limit: page * limit]
        return 200, {"X-Total-Count": str(len(items))}, chunk

    def _create_pull(self, query: dict[str, str], body: Any) -> Reply:
        if any(p["_head"] == body["head"] and p["_base"] == body["base"] for p in self.pulls):
            return 409, {}, {"message": "pull request already exists for these targets"}
        pull = {"number": self.issue_count + 1 + len(self.pulls), "_head": body["head"],
                "_base": body["base"], "title": body["title"], "body": body.get("body", ""),
                "_issue": _issue_of(body["head"])}
        self.pulls.append(pull)
        self.pull_requests_made.append(pull)
        return 201, {}, self._pull_json(pull)

    def _find_pull(self, number: str) -> dict[str, Any] | None:
        return next((p for p in self.pulls if p["number"] == int(number)), None)

    def _get_pull(self, query: dict[str, str], body: Any, number: str) -> Reply:
        pull = self._find_pull(number)
        return (200, {}, self._pull_json(pull)) if pull else (404, {}, {"message": "no pull"})

    def _edit_pull(self, query: dict[str, str], body: Any, number: str) -> Reply:
        pull = self._find_pull(number)
        if pull is None:
            return 404, {}, {"message": "no pull"}
        pull.update({k: v for k, v in body.items() if k in ("body", "title")})
        return 200, {}, self._pull_json(pull)

    def _create_status(self, query: dict[str, str], body: Any, sha: str) -> Reply:
        self.statuses.append({**body, "sha": sha})
        return 201, {}, {"id": len(self.statuses), "status": body["state"],
                         "context": body.get("context"), "description": body.get("description")}

    def _permission(self, query: dict[str, str], body: Any, user: str) -> Reply:
        sender = fixture("gitea", "issues__label_updated.json")["sender"]
        return 200, {}, {"permission": "admin", "role_name": "owner", "user": sender}

    def delivery(self, number: int = 1) -> tuple[dict[str, str], bytes]:
        payload = fixture("gitea", "issues__label_updated.json")
        payload.pop("secret", None)  # old Gitea put it in the body; never rely on (or send) it
        payload["issue"]["labels"][0]["name"] = TRIGGER
        payload["number"] = number
        payload["issue"].update(number=number, title=issue_title(number), body=ISSUE_BODY)
        body = json.dumps(payload).encode()
        delivery = str(uuid.uuid4())
        signature = sign_sha256(self.secret, body)
        return {
            "Content-Type": "application/json",
            "User-Agent": "Go-http-client/1.1",
            "X-Gitea-Event": "issues",
            "X-Gitea-Event-Type": "issue_label",
            "X-Gitea-Delivery": delivery,
            "X-Gitea-Signature": signature,
            "X-Hub-Signature-256": "sha256=" + signature,
        }, body


# --------------------------------------------------------------------------- the service


SECRET = "e2e-webhook-secret"
TOKEN = "e2e-forge-token-0123456789"
CLONE_PREFIX = {"github": "https://github.com/", "gitlab": "https://gitlab.com/",
                "gitea": "http://localhost:3000/"}


def make_fake(forge: str, *, faults: Faults | None = None, issues: int = 1,
              base: str | None = None) -> FakeForge:
    """The fake of ``forge`` with the token and secret the service is given."""
    options: dict[str, Any] = {"token": TOKEN, "secret": SECRET, "faults": faults,
                               "issues": issues}
    if forge == "github":
        return FakeGitHub(**options, **({"api": base} if base else {}))
    if forge == "gitlab":
        return FakeGitLab(**options, **({"base": base} if base else {}))
    return FakeGitea(**options, **({"base": base} if base else {}))


def forge_env(forge: str, fake: FakeForge, git_root: Path) -> dict[str, str]:
    """Settings that enable ``forge`` against ``fake``, pushing into ``git_root``."""
    prefix = f"FORGEBOT_FORGES__{forge.upper()}__"
    env = {
        prefix + "ENABLED": "true",
        prefix + "TOKEN": TOKEN,
        prefix + "WEBHOOK_SECRET": SECRET,
        prefix + "GIT_URL_REWRITE": json.dumps({CLONE_PREFIX[forge]: f"{git_root}/"}),
        prefix + "TIMEOUT_SECONDS": "5",
    }
    if forge == "github":
        env[prefix + "BASE_URL"] = fake.api
    else:
        env[prefix + "BASE_URL"] = fake.api.rsplit("/api/", 1)[0]
    return env


# --------------------------------------------------------------------- reconciliation


class ReconcilingGitHub(FakeGitHub):
    """FakeGitHub with what a reconciliation pass reads and does: the open issues carrying a
    label (every issue carries the trigger), each issue's events (the payloads' sender added
    the label), closing an issue, and a pull request merged behind the bot's back
    (:meth:`merge`, with no webhook)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.closed: list[int] = []

    def routes(self) -> list[tuple[str, str, Handler]]:
        r = f"/repos/{re.escape(self.repo)}"
        return [("GET", r + "/issues", self._open_issues),
                ("GET", r + r"/issues/(\d+)/events", self._events),
                ("PATCH", r + r"/issues/(\d+)", self._edit_issue),
                *super().routes()]

    def merge(self, number: int, by: str) -> None:
        pull = self._find_pull(str(number))
        assert pull is not None, f"no pull request #{number}"
        pull["_merged_by"] = by

    def _pull_json(self, pull: dict[str, Any]) -> dict[str, Any]:
        data = super()._pull_json(pull)
        if "_merged_by" in pull:
            sender = fixture("github", "issues__labeled.json")["sender"]
            data.update(state="closed", merged=True, merged_at="2019-05-15T16:00:00Z",
                        merged_by={**sender, "login": pull["_merged_by"]})
        return data

    def _open_issues(self, query: dict[str, str], body: Any) -> Reply:
        if (query.get("state"), query.get("labels")) != ("open", TRIGGER):
            return 200, {}, []
        issues = [self._issue_json(n) for n in range(1, self.issue_count + 1)
                  if n not in self.closed]
        return 200, {}, issues

    def _events(self, query: dict[str, str], body: Any, number: str) -> Reply:
        sender = fixture("github", "issues__labeled.json")["sender"]
        return 200, {}, [{"id": 1, "event": "labeled", "actor": sender,
                          "label": {"name": TRIGGER, "color": "fff"},
                          "created_at": "2019-05-15T15:20:18Z"}]

    def _edit_issue(self, query: dict[str, str], body: Any, number: str) -> Reply:
        if body.get("state") == "closed" and int(number) not in self.closed:
            self.closed.append(int(number))
        return 200, {}, self._issue_json(int(number))
