"""A malformed spec pushed to the default branch of GitHub, GitLab and Gitea: no job, a
failing commit status, and the errors where the pusher sees them: a commit comment on GitHub
and GitLab, an issue on Gitea (which has no commit comments).

The push payloads are the forges' own (tests/fixtures/webhooks), edited to carry the local
repository's commits and to list the spec as modified. The repository is real git (a bare
repository the clone URL is rewritten to), the planner and the adapters are the real ones, and
only the forges' HTTP APIs are fakes served by `responses`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bot.config import load_settings
from bot.events import Pushed
from bot.forges import build_forges
from bot.forges.gitea import webhook as gitea_webhook
from bot.forges.github import webhook as github_webhook
from bot.forges.gitlab import webhook as gitlab_webhook
from bot.forges.local import admin
from bot.pipeline.planner import Planner
from bot.policy.model import Policy
from bot.store import Store, open_store
from tests.conftest import REPO
from tests.e2e.forge_fakes import (
    BOT,
    SECRET,
    TOKEN,
    FakeForge,
    FakeGitea,
    FakeGitHub,
    FakeGitLab,
    Handler,
    Reply,
    fixture,
    forge_env,
)

SPEC = "specs/greeting.md"
GREETING = (REPO / "examples" / "hello-service" / SPEC).read_text()
BROKEN = GREETING.replace("owner: ada", "owner: ada\ntitle: oops", 1)
ERROR = "specs/greeting.md:5: unknown front matter key 'title'"


class SpecGitHub(FakeGitHub):
    """The repository of GitHub's push payload, with commit comments."""

    repo = "binkkatal/sample_app"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.commit_comments: list[dict[str, Any]] = []

    def routes(self) -> list[tuple[str, str, Handler]]:
        commit = f"/repos/{self.repo}/commits/([0-9a-f]{{40}})/comments"
        return [("GET", commit, self._list_commit_comments),
                ("POST", commit, self._comment_commit), *super().routes()]

    def _repository(self, query: dict[str, str], body: Any) -> Reply:
        status, headers, repository = super()._repository(query, body)
        owner, name = self.repo.split("/")
        repository.update(name=name, full_name=self.repo, url=self.repo_api,
                          statuses_url=self.repo_api + "/statuses/{sha}")
        repository["owner"]["login"] = owner
        return status, headers, repository

    def _list_commit_comments(self, query: dict[str, str], body: Any, sha: str) -> Reply:
        return 200, {}, [c for c in self.commit_comments if c["commit_id"] == sha]

    def _comment_commit(self, query: dict[str, str], body: Any, sha: str) -> Reply:
        comment = {"id": 700 + len(self.commit_comments), "commit_id": sha,
                   "body": body["body"], "user": {"login": BOT, "type": "Bot"}}
        self.commit_comments.append(comment)
        return 201, {}, comment


class SpecGitLab(FakeGitLab):
    """The project of GitLab's push payload, its pusher a developer, with commit comments."""

    repo = "repo-org/repo-name"
    pusher = "jenkins-x-bot"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.commit_comments: list[dict[str, Any]] = []

    def routes(self) -> list[tuple[str, str, Handler]]:
        commit = f"/projects/{self.repo}/repository/commits/([0-9a-f]{{40}})/comments"
        return [("GET", commit, self._list_commit_comments),
                ("POST", commit, self._comment_commit), *super().routes()]

    def _project(self, query: dict[str, str], body: Any) -> Reply:
        status, headers, project = super()._project(query, body)
        project.update(path_with_namespace=self.repo,
                       http_url_to_repo=f"https://gitlab.com/{self.repo}.git")
        return status, headers, project

    def _users(self, query: dict[str, str], body: Any) -> Reply:
        if query.get("username") != self.pusher:
            return 200, {}, []
        return 200, {}, [{"id": self.sender_id, "username": self.pusher, "name": "bot",
                          "state": "active"}]

    def _list_commit_comments(self, query: dict[str, str], body: Any, sha: str) -> Reply:
        return 200, {}, [{k: v for k, v in c.items() if k != "_sha"}
                         for c in self.commit_comments if c["_sha"] == sha]

    def _comment_commit(self, query: dict[str, str], body: Any, sha: str) -> Reply:
        comment = {"note": body["note"], "_sha": sha, "path": None, "line": None,
                   "line_type": None, "author": {"id": self.bot_id, "username": BOT}}
        self.commit_comments.append(comment)
        return 201, {}, {k: v for k, v in comment.items() if k != "_sha"}


class SpecGitea(FakeGitea):
    """The repository of Gitea's push payload, where issues can be opened."""

    repo = "gogits/hello-world"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.issues_opened: list[dict[str, Any]] = []

    def routes(self) -> list[tuple[str, str, Handler]]:
        return [("POST", f"/repos/{self.repo}/issues", self._open_issue), *super().routes()]

    def _repository(self, query: dict[str, str], body: Any) -> Reply:
        status, headers, repository = super()._repository(query, body)
        repository.update(full_name=self.repo,
                          clone_url=f"http://localhost:3000/{self.repo}.git")
        return status, headers, repository

    def _open_issue(self, query: dict[str, str], body: Any) -> Reply:
        self.issues_opened.append(body)
        return 201, {}, {"id": 90, "number": 2 + len(self.issues_opened), "title": body["title"],
                         "body": body["body"], "state": "open"}


FAKES: dict[str, Callable[..., FakeForge]] = {"github": SpecGitHub, "gitlab": SpecGitLab,
                                     "gitea": SpecGitea}


def push_event(forge: str, before: str, after: str, labels: Path) -> Pushed:
    """The forge's own push payload, edited: the local commits, the spec listed as modified."""
    name = {"gitlab": "push_hook__default_branch"}.get(forge, "push__default_branch")
    payload = fixture(forge, f"{name}.json")
    payload["before"], payload["after"] = before, after
    payload["commits"][-1]["modified"].append(SPEC)
    body = json.dumps(payload).encode()
    if forge == "github":
        event = github_webhook.parse({"X-GitHub-Event": "push"}, body)
    elif forge == "gitlab":
        payload["checkout_sha"] = after
        event = gitlab_webhook.parse({"X-Gitlab-Event": "Push Hook"},
                                     json.dumps(payload).encode())
    else:
        event = gitea_webhook.parse({"X-Gitea-Event": "push"}, body,
                                    gitea_webhook.LabelMemory(labels))
    assert isinstance(event, Pushed) and event.to_default_branch
    return event


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return open_store(f"sqlite:///{tmp_path / 'forgebot.db'}")


@pytest.mark.parametrize("forge", ["github", "gitlab", "gitea"])
def test_a_malformed_spec_gets_a_failing_status_and_its_errors_where_the_forge_can_show_them(
        store: Store, tmp_path: Path, forge: str) -> None:
    fake = FAKES[forge](token=TOKEN, secret=SECRET)
    git_root = tmp_path / "git"
    admin.init_repo(git_root, fake.repo, REPO / "examples" / "hello-service",
                    default_branch="master")
    [pushed] = admin.push_files(git_root, fake.repo, "master", {SPEC: BROKEN},
                                message="spec: a typo", pusher="ada")
    before, after = str(pushed.payload["before"]), str(pushed.payload["after"])
    settings = load_settings(None, environ={"FORGEBOT_DATA_DIR": str(tmp_path / "data"),
                                            **forge_env(forge, fake, git_root)})
    forges = build_forges(settings)
    planner = Planner(store, forges, Policy(), "forgebot")
    event = push_event(forge, before, after, tmp_path / "labels")

    with fake.serving():
        results = [planner.plan_event(forges[forge], event, None)]
        if forge != "gitea":  # a redelivery (the delivery table stops it before this in
            # service; this shows the comment itself is not doubled when a pass runs again)
            results.append(planner.plan_event(forges[forge], event, None))

    for result in results:
        assert result.status == "ignored" and "does not parse" in result.note, result.note
    assert store.list_jobs() == []
    assert {s["state"] for s in fake.statuses} == {"failure" if forge != "gitlab" else "failed"}
    assert all(s["sha"] == after for s in fake.statuses)
    assert "specs/greeting.md does not parse" in fake.statuses[0]["description"]
    if isinstance(fake, SpecGitHub):
        [comment] = fake.commit_comments  # the redelivery found it and posted nothing
        assert comment["commit_id"] == after and ERROR in comment["body"]
    elif isinstance(fake, SpecGitLab):
        [comment] = fake.commit_comments
        assert comment["_sha"] == after and ERROR in comment["note"]
    else:
        assert isinstance(fake, SpecGitea)
        [issue] = fake.issues_opened  # Gitea has no commit comments: the errors go in an issue
        assert ERROR in issue["body"]
        assert issue["title"] == f"forgebot: the spec {SPEC} does not parse"
