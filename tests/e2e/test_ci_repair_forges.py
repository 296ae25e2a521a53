"""The forge's own CI on the bot's pull request, per forge (GitHub, GitLab, Gitea): a real
CI webhook payload (failing or passing), stored as a delivery and planned by the real
planner, with the real adapter asking the forge's API for the checks of the commit (a
stateful fake served by `responses`) → a diagnosis comment, a repair requeue, the loop
stopped, or the pull request marked ready, as the policy says.

The pull request is opened through the adapter against the fake and the job is finished in
a real SQLite store as publish leaves it (a ``pull.published`` event with the commit), so
what is faked is only the forge's HTTP API.
"""

from __future__ import annotations

import copy
import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from bot.config import load_settings
from bot.forges import build_forges
from bot.forges.base import Forge, NewPull
from bot.forges.verify import sign_sha256
from bot.pipeline.ci_repair import READY_NOTE, WAITING_NOTE
from bot.pipeline.planner import Planner
from bot.policy.model import CI, Policy
from bot.store import JobView, Store, open_store
from tests.e2e.forge_fakes import (
    SECRET,
    TOKEN,
    FakeForge,
    FakeGitea,
    FakeGitHub,
    FakeGitLab,
    Fault,
    Handler,
    Reply,
    fixture,
    forge_env,
)

FORGES = ("github", "gitlab", "gitea")
BRANCH = "forgebot/1-add-a-farewell"
SHA1, SHA2, SHA3 = ("1" * 40, "2" * 40, "3" * 40)
LOG = ("collected 6 items\n\ntests/test_farewell.py F\n\n"
       "E       AssertionError: assert 'Bye, Ada' == 'Goodbye, Ada!'\n"
       "FAILED tests/test_farewell.py::test_farewell - AssertionError\n1 failed, 5 passed in 0.12s")
OTHER_LOG = "app.py:12:80: E501 line too long (120 > 79 characters)\n1 error"


# ----------------------------------------------------------------------- the CI on the fakes


@dataclass
class Check:
    name: str
    state: str  # success | failure | pending
    summary: str = ""
    log: str = ""


@dataclass
class CiState:
    """What the forge's CI says per commit, and every pull-request edit the bot made."""

    checks: dict[str, list[Check]] = field(default_factory=dict)


class GitHubCI(FakeGitHub):
    ci: CiState

    def routes(self) -> list[tuple[str, str, Handler]]:
        r = f"/repos/{re.escape(self.repo)}/commits/([0-9a-f]{{40}})"
        return [("GET", r + "/check-runs", self._check_runs),
                ("GET", r + "/status", self._combined), *super().routes()]

    def _issue(self, query: dict[str, str], body: Any, number: str) -> Reply:
        # A pull request is an issue too on GitHub: commenting on one reads it as an issue.
        if any(p["number"] == int(number) for p in self.pulls):
            return 200, {}, {**self._issue_json(int(number)), "pull_request": {}}
        return super()._issue(query, body, number)

    def _check_runs(self, query: dict[str, str], body: Any, sha: str) -> Reply:
        template = fixture("github", "ci/check_run__completed.json")["check_run"]
        runs = []
        for index, check in enumerate(self.ci.checks.get(sha, [])):
            run = copy.deepcopy(template)
            done = check.state != "pending"
            run.update(id=index + 1, head_sha=sha, name=check.name,
                       status="completed" if done else "in_progress",
                       conclusion=check.state if done else None)
            run["output"].update(title=check.summary or None, summary=check.summary or None,
                                 text=check.log or None)
            runs.append(run)
        return 200, {}, {"total_count": len(runs), "check_runs": runs}

    def _combined(self, query: dict[str, str], body: Any, sha: str) -> Reply:
        # The bot's own status is there too (publish set it); the adapter must leave it out.
        own = {"context": "forgebot", "state": "failure", "description": "job 1",
               "target_url": None, "id": 1}
        return 200, {}, {"state": "failure", "sha": sha, "statuses": [own], "total_count": 1}

    def delivery_for(self, sha: str, state: str, pull: int) -> tuple[str, dict[str, str], bytes]:
        payload = fixture("github", "ci/check_run__completed.json")
        run = payload["check_run"]
        run.update(head_sha=sha, conclusion=state)
        run["check_suite"].update(head_branch=BRANCH, head_sha=sha)
        run["pull_requests"][0].update(number=pull)
        run["pull_requests"][0]["head"].update(ref=BRANCH, sha=sha)
        body = json.dumps(payload).encode()
        return "check_run", {
            "Content-Type": "application/json", "X-GitHub-Event": "check_run",
            "X-GitHub-Delivery": str(uuid.uuid4()),
            "X-Hub-Signature-256": "sha256=" + sign_sha256(SECRET, body)}, body


class GitLabCI(FakeGitLab):
    ci: CiState

    def routes(self) -> list[tuple[str, str, Handler]]:
        p = f"/projects/{re.escape(self.repo)}"
        return [("GET", p + r"/repository/commits/([0-9a-f]{40})/statuses", self._statuses),
                ("GET", p + r"/jobs/(\d+)/trace", self._trace),
                ("POST", p + r"/merge_requests/(\d+)/notes", self._mr_note),
                *super().routes()]

    def _callback(self, request: requests.PreparedRequest) -> Reply:
        result = self.handle(request)
        if isinstance(result, Exception):
            raise result
        status, headers, body = result
        if isinstance(body, bytes):  # a job's trace is plain text
            return status, {"Content-Type": "text/plain", **headers}, body
        return status, {"Content-Type": "application/json", **headers}, json.dumps(body)

    def _statuses(self, query: dict[str, str], body: Any, sha: str) -> Reply:
        found = [{"id": 700 + index, "sha": sha, "ref": BRANCH, "name": check.name,
                  "status": {"failure": "failed", "pending": "running"}.get(check.state,
                                                                           check.state),
                  "description": check.summary or None, "allow_failure": False,
                  "target_url": f"https://gitlab.com/{self.repo}/-/jobs/{700 + index}"}
                 for index, check in enumerate(self.ci.checks.get(sha, []))]
        found.append({"id": 1, "sha": sha, "ref": BRANCH, "name": "forgebot",
                      "status": "failed", "description": "job 1", "allow_failure": False,
                      "target_url": None})  # the bot's own: left out by the adapter
        return 200, {}, found

    def _trace(self, query: dict[str, str], body: Any, job_id: str) -> Reply:
        for checks in self.ci.checks.values():
            for index, check in enumerate(checks):
                if 700 + index == int(job_id):
                    return 200, {}, ("\n".join(f"noise {n}" for n in range(2000))
                                     + "\n" + check.log).encode()
        return 404, {}, {"message": "404 Not found"}

    def _mr_note(self, query: dict[str, str], body: Any, iid: str) -> Reply:
        note = {"id": 6000 + len(self.comments), "body": body["body"], "system": False,
                "author": {"id": self.bot_id, "username": "forgebot"},
                "noteable_type": "MergeRequest", "_issue": -int(iid)}
        self.comments.append(note)
        return 201, {}, {k: v for k, v in note.items() if not k.startswith("_")}

    def comments_on_pull(self, number: int) -> list[dict[str, Any]]:
        return self.comments_on(-number)

    def delivery_for(self, sha: str, state: str, pull: int) -> tuple[str, dict[str, str], bytes]:
        payload = fixture("gitlab", "ci/pipeline_hook__success.json")
        payload["project"]["path_with_namespace"] = self.repo
        payload["object_attributes"].update(sha=sha, ref=BRANCH,
                                            status="failed" if state == "failure" else state)
        payload["merge_request"] = {"iid": pull}  # newer GitLab: the MR the pipeline ran for
        body = json.dumps(payload).encode()
        key = str(uuid.uuid4())
        return "Pipeline Hook", {"Content-Type": "application/json",
                                 "X-Gitlab-Event": "Pipeline Hook", "X-Gitlab-Token": SECRET,
                                 "Idempotency-Key": key}, body


class GiteaCI(FakeGitea):
    ci: CiState

    def routes(self) -> list[tuple[str, str, Handler]]:
        r = f"/repos/{re.escape(self.repo)}/commits/([0-9a-f]{{40}})/status"
        return [("GET", r, self._combined), *super().routes()]

    def _combined(self, query: dict[str, str], body: Any, sha: str) -> Reply:
        statuses = [{"id": 900 + index, "status": check.state, "context": check.name,
                     "description": check.summary,
                     "target_url": f"https://ci.example.com/repos/1/pipeline/{900 + index}"}
                    for index, check in enumerate(self.ci.checks.get(sha, []))]
        statuses.insert(0, {"id": 1, "status": "failure", "context": "forgebot",
                            "description": "job 1", "target_url": ""})
        return 200, {}, {"state": "failure", "sha": sha, "statuses": statuses,
                         "total_count": len(statuses)}

    def delivery_for(self, sha: str, state: str, pull: int) -> tuple[str, dict[str, str], bytes]:
        payload = fixture("gitea", "ci/status__success.json")
        payload.update(sha=sha, state=state)
        payload["commit"]["id"] = sha
        body = json.dumps(payload).encode()
        return "status", {"Content-Type": "application/json", "X-Gitea-Event": "status",
                          "X-Gitea-Event-Type": "status", "X-Gitea-Delivery": str(uuid.uuid4()),
                          "X-Gitea-Signature": sign_sha256(SECRET, body)}, body


FAKES: dict[str, type[FakeForge]] = {"github": GitHubCI, "gitlab": GitLabCI, "gitea": GiteaCI}


# ----------------------------------------------------------------------- the world


@dataclass
class World:
    name: str
    fake: Any
    forge: Forge
    store: Store
    tmp: Path
    job: JobView | None = None
    pull: int = 0
    active: Planner | None = None

    def planner(self, **ci: Any) -> Planner:
        return Planner(self.store, {self.name: self.forge}, Policy(ci=CI(**ci)), "forgebot")

    def published(self, sha: str, *, waiting: bool = False,
                  ci: dict[str, Any] | None = None) -> None:
        """The job as publish leaves it: its pull request open, its commit ``sha`` pushed,
        the attempt finished."""
        if self.job is None:
            self.job = self.store.create_job(
                trigger_key=f"{self.name}:{self.fake.repo}:issue:1", forge=self.name,
                repo=self.fake.repo, default_branch="master", issue_number=1,
                title="Add a farewell", requested_by="ada", delivery_row=None)
            assert self.job is not None
            pull = self.forge.open_pull(self.fake.repo, NewPull(
                head=BRANCH, base="master", title="Add a farewell (#1)",
                body="Closes #1." + (WAITING_NOTE if waiting else ""), draft=waiting))
            self.pull = pull.number
            self.store.update_job(self.job.id, branch=BRANCH, pull_number=pull.number)
        claim = self.store.claim_next("test", 60)
        assert claim is not None and claim.job.id == self.job.id
        self.store.add_event(self.job.id, "pull.published",
                             {"number": self.pull, "sha": sha, "draft": False,
                              "waiting_for_ci": waiting,
                              **({"ci": ci} if ci is not None else {})})
        assert self.store.finish(claim, "test", "submitted", failed=False)

    def ci(self, sha: str, *checks: Check, state: str) -> None:
        """The forge's CI reports ``checks`` on ``sha``; its webhook (a new delivery each
        time, as a redelivery or another check's event would be) is stored and planned."""
        assert self.active is not None, "call plan() first"
        self.fake.ci.checks[sha] = list(checks)
        kind, headers, body = self.fake.delivery_for(sha, state, self.pull)
        self.store.record_delivery(self.name, str(uuid.uuid4()), kind, headers, body)
        self.active.plan_pending()

    def comments(self) -> list[str]:
        if self.name == "gitlab":
            return [c["body"] for c in self.fake.comments_on_pull(self.pull)]
        return [c["body"] for c in self.fake.comments_on(self.pull)]

    def state(self) -> str:
        assert self.job is not None
        job = self.store.get_job(self.job.id)
        assert job is not None
        return job.state


@pytest.fixture
def world(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[World]:
    name = request.param
    fake = FAKES[name](token=TOKEN, secret=SECRET)
    fake.ci = CiState()
    with fake.serving():
        env = {"FORGEBOT_DATA_DIR": str(tmp_path / "data"),
               **forge_env(name, fake, tmp_path / "git")}
        settings = load_settings(None, environ=env)
        forges = build_forges(settings)
        yield World(name, fake, forges[name], open_store(settings.store_url), tmp_path)


def plan(world: World, **ci: Any) -> World:
    world.active = world.planner(**ci)
    return world


FAILING = Check("tests", "failure", "1 failed, 5 passed", LOG)
LINT = Check("lint", "failure", "flake8 found 1 error", OTHER_LOG)
GREEN = (Check("tests", "success", "6 passed"), Check("lint", "success", "clean"))


@pytest.mark.parametrize("world", FORGES, indirect=True)
def test_a_failing_check_gets_one_diagnosis_comment(world: World) -> None:
    plan(world, repair="comment")
    world.published(SHA1)
    world.ci(SHA1, FAILING, GREEN[1], state="failure")
    [comment] = world.comments()
    assert "The forge's CI failed" in comment and "`tests`" in comment
    assert "1 failed, 5 passed" in comment and "`/revise" in comment
    if world.name != "gitea":  # Gitea keeps no log; its status has the description only
        assert "AssertionError: assert 'Bye, Ada' == 'Goodbye, Ada!'" in comment
        assert "noise 10\n" not in comment  # only the log's tail
    # A redelivery, and another check's event on the same commit, say nothing more.
    world.ci(SHA1, FAILING, GREEN[1], state="failure")
    assert len(world.comments()) == 1
    assert world.state() == "done"


@pytest.mark.parametrize("world", FORGES, indirect=True)
def test_fix_starts_a_repair_and_the_same_failure_twice_stops_the_loop(world: World) -> None:
    plan(world, repair="fix", max_repairs=2)
    world.published(SHA1)
    world.ci(SHA1, FAILING, state="failure")
    assert world.state() == "queued"
    assert world.job is not None
    request = world.store.last_request(world.job.id)
    assert (request["mode"], request["by"]) == ("revise", "ci")
    assert "<untrusted-test-output>" in request["feedback"]
    assert "1 failed, 5 passed" in request["feedback"]
    [said] = world.comments()
    assert "repair attempt" in said and "repair 1 of 2" in said
    # While the repair runs, the CI of the old commit changes nothing.
    world.ci(SHA1, FAILING, state="failure")
    assert world.state() == "queued" and len(world.comments()) == 1
    # The repair pushed SHA2; it fails the same way: stop, and say so.
    world.published(SHA2)
    world.ci(SHA2, FAILING, state="failure")
    assert world.state() == "done"
    stop = world.comments()[-1]
    assert "failed the same way twice" in stop and "Over to a person" in stop
    # A person's /retry starts the loop afresh: its commit's new failure is repaired.
    assert world.job is not None
    assert world.store.requeue(world.job.id, mode="retry", feedback="", by="ada")
    world.published(SHA3)
    world.ci(SHA3, LINT, state="failure")
    assert world.state() == "queued" and "repair 1 of 2" in world.comments()[-1]


@pytest.mark.parametrize("world", FORGES, indirect=True)
def test_the_repositorys_own_ci_section_recorded_at_publish_is_followed(world: World) -> None:
    # Bot-wide: fix. The repository's .forgebot.yml asked for a comment only; publish
    # recorded the merged section with the pull request.
    plan(world, repair="fix", max_repairs=2)
    world.published(SHA1, ci={"repair": "comment", "max_repairs": 2, "ready_when_green": False})
    world.ci(SHA1, FAILING, state="failure")
    assert world.state() == "done"  # diagnosed, not repaired
    [said] = world.comments()
    assert "The forge's CI failed" in said and "repair attempt" not in said
    # A record looser than the bot-wide policy now (or unreadable) cannot loosen it.
    plan(world, repair="comment")
    assert world.job is not None
    assert world.store.requeue(world.job.id, mode="retry", feedback="", by="ada")
    world.published(SHA2, ci={"repair": "fix", "max_repairs": 9})
    world.ci(SHA2, LINT, state="failure")
    assert world.state() == "done" and "repair attempt" not in world.comments()[-1]


@pytest.mark.parametrize("world", FORGES, indirect=True)
def test_the_repair_limit_holds(world: World) -> None:
    plan(world, repair="fix", max_repairs=1)
    world.published(SHA1)
    world.ci(SHA1, FAILING, state="failure")
    assert world.state() == "queued"
    world.published(SHA2)
    world.ci(SHA2, LINT, state="failure")  # a different failure, but no repair left
    assert world.state() == "done"
    assert "ci.max_repairs (1) reached" in world.comments()[-1]
    assert world.job is not None
    requeues = [e for e in world.store.events(world.job.id) if e["kind"] == "job.requeued"]
    assert len(requeues) == 1


@pytest.mark.parametrize("world", FORGES, indirect=True)
def test_green_checks_mark_a_waiting_draft_ready_once(world: World) -> None:
    plan(world, repair="comment", ready_when_green=True)
    world.published(SHA1, waiting=True)
    # Still running: nothing yet.
    world.ci(SHA1, GREEN[0], Check("lint", "pending"), state="success")
    [pull] = world.fake.pulls
    assert WAITING_NOTE.strip() in (pull.get("body") or pull.get("description"))
    world.ci(SHA1, *GREEN, state="success")
    body = pull.get("body") or pull.get("description")
    assert READY_NOTE.format(sha=SHA1[:12]).strip() in body
    assert WAITING_NOTE.strip() not in body
    if world.name == "gitlab":
        assert not pull["title"].lower().startswith("draft:")
    if world.name == "gitea":
        assert not pull["title"].lower().startswith("wip:")
    edits = [c for c in world.fake.calls if c[0] in ("PATCH", "PUT")
             and re.search(r"/(pulls|merge_requests)/\d+$", c[1])]
    world.ci(SHA1, *GREEN, state="success")  # a redelivery: marked once
    again = [c for c in world.fake.calls if c[0] in ("PATCH", "PUT")
             and re.search(r"/(pulls|merge_requests)/\d+$", c[1])]
    assert len(edits) == 1 and again == edits
    assert world.comments() == []


CHECKS_PATH = {"github": r"/repos/{repo}/commits/{sha}/check-runs",
               "gitlab": r"/projects/{repo}/repository/commits/{sha}/statuses",
               "gitea": r"/repos/{repo}/commits/{sha}/status"}


@pytest.mark.parametrize("world", FORGES, indirect=True)
def test_a_forge_that_cannot_say_leaves_no_verdict_behind(world: World) -> None:
    plan(world, repair="fix")
    world.published(SHA1)
    path = CHECKS_PATH[world.name].format(repo=re.escape(world.fake.repo), sha=SHA1)
    world.fake.faults.script("GET", path, Fault("403"))
    world.ci(SHA1, FAILING, state="failure")
    assert world.state() == "done" and world.comments() == []
    assert world.store.delivery_counts().get("invalid") == 1
    assert world.job is not None
    assert not world.store.has_record(world.job.id, "ci.failure")
    # The forge's next delivery (a redelivery, another check) is decided as usual.
    world.ci(SHA1, FAILING, state="failure")
    assert world.state() == "queued" and len(world.comments()) == 1
