"""GitHub, GitLab and Gitea end to end: a real labelled-issue payload, signed as the forge
signs it, posted to ``/webhooks/<forge>`` of the real service → planner → job → Docker
sandbox (replay model) → push through ``git_url_rewrite`` into a local bare repository →
the pull-request request the forge's API receives (a stateful fake served by `responses`).

Then the same with faults on the API calls (5xx, 429 with ``Retry-After``, read timeouts,
answers lost after the work was done): retried, then success, with exactly one pull
request and one status comment.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.config import load_settings
from bot.forges.local import admin
from bot.service import Service, build_service
from tests.conftest import FIXTURES, REPO
from tests.e2e.forge_fakes import (
    BOT,
    FakeForge,
    Fault,
    Faults,
    forge_env,
    make_fake,
)

pytestmark = [pytest.mark.docker, pytest.mark.slow]

FORGES = ("github", "gitlab", "gitea")
BRANCH = "forgebot/1-add-a-farewell"
STATUS_MARKER = "<!-- forgebot:status job=1 -->"


@dataclass
class Run:
    service: Service
    fake: FakeForge
    bare: Path

    def post(self, number: int = 1) -> int:
        headers, body = self.fake.delivery(number)
        forge = type(self.fake).__name__.removeprefix("Fake").lower()
        response = self.service.app.test_client().post(f"/webhooks/{forge}", data=body,
                                                       headers=headers)
        return response.status_code

    def run_until_idle(self) -> None:
        for _ in range(30):
            self.service.dispatcher.tick()
            self.service.dispatcher.wait_idle(timeout=600)
            if self.service.store.is_idle():
                return
        raise AssertionError("the service did not become idle")


@pytest.fixture
def start(tmp_path: Path) -> Iterator[object]:
    services: list[Service] = []

    def make(forge: str, fake: FakeForge) -> Run:
        git_root = tmp_path / "git"
        source = tmp_path / "source"
        shutil.copytree(REPO / "examples" / "hello-service", source,
                        ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"))
        # The payloads' repositories all have "master" as their default branch.
        bare = admin.init_repo(git_root, fake.repo, source, default_branch="master")
        env = {
            "FORGEBOT_DATA_DIR": str(tmp_path / "data"),
            "FORGEBOT_LLM__PROVIDER": "replay",
            "FORGEBOT_LLM__TRANSCRIPT": str(FIXTURES / "transcripts" / "add_farewell.yaml"),
            "FORGEBOT_SCHEDULER__CONCURRENCY": "1",
            **forge_env(forge, fake, git_root),
        }
        service = build_service(load_settings(None, environ=env))
        service.start(schedule=False)
        services.append(service)
        return Run(service, fake, bare)

    yield make
    for service in services:
        service.stop()


def branch_file(bare: Path, branch: str, path: str) -> str:
    return subprocess.run(["git", "--git-dir", str(bare), "show", f"{branch}:{path}"],
                          check=True, capture_output=True, text=True).stdout


def assert_one_job_one_pull_one_comment(run: Run, forge: str) -> None:
    [job] = run.service.store.list_jobs()
    assert (job.state, job.outcome) == ("done", "submitted"), run.service.store.events(job.id)
    # The branch is in the local bare repository the clone URL was rewritten to.
    assert "def farewell(name: str) -> str:" in branch_file(
        run.bare, BRANCH, "hello_service/app.py")
    assert "farewell" in branch_file(run.bare, BRANCH, "tests/test_farewell.py")
    # Exactly one pull request was made, with the right head, base, title and body.
    [pull] = run.fake.pull_requests_made
    assert (pull["_head"], pull["_base"]) == (BRANCH, "master")
    assert pull["title"] == "Add a farewell (#1)"
    body = pull["body"] if forge != "gitlab" else pull["description"]
    assert "Closes #1." in body
    assert "6 passed, 0 failed" in body and "policy: ok" in body
    # One status comment, by the bot, found again by its hidden marker and edited to the end.
    [comment] = run.fake.comments_on(1)
    assert STATUS_MARKER in comment["body"]
    assert "outcome `submitted`" in comment["body"]
    author = comment["author"]["username"] if forge == "gitlab" else comment["user"]["login"]
    assert author == BOT
    # The commit status of the pushed commit says so too.
    assert run.fake.statuses and run.fake.statuses[-1]["state"] == "success"


@pytest.mark.parametrize("forge", FORGES)
def test_a_labelled_issue_becomes_a_pull_request(start, forge: str) -> None:
    fake = make_fake(forge)
    with fake.serving():
        run = start(forge, fake)
        assert run.post() == 202
        run.run_until_idle()
        assert_one_job_one_pull_one_comment(run, forge)
    assert fake.faults.total == 0 and fake.retries == 0


def _faults(forge: str, fake: FakeForge) -> Faults:
    """On every kind of call of one job: transient answers the bot must ride out.

    Reads get 5xx and timeouts (the session retries them); writes get 429 with
    ``Retry-After`` (the server refused them, so the session retries them too); the first
    status comment is made but its answer lost (the bot must find it again by its marker
    rather than post a second one). GitHub's adapter also retries a write whose answer was
    lost after looking it up, so there the pull request and the status get 5xx and timeouts.
    """
    root = {"github": f"/repos/{fake.repo}", "gitlab": f"/projects/{fake.repo}",
            "gitea": f"/repos/{fake.repo}"}[forge]
    pulls = "merge_requests" if forge == "gitlab" else "pulls"
    comments = "notes" if forge == "gitlab" else "comments"
    faults = Faults()
    faults.script("GET", root + r"/issues/1", Fault("502"), Fault("timeout"))
    faults.script("GET", root + rf"/issues/1/{comments}", Fault("429"))
    faults.script("POST", root + rf"/issues/1/{comments}", Fault("429"), Fault("502", lost=True))
    faults.script("GET", root + rf"/{pulls}", Fault("503"))
    statuses = root + r"/statuses/[0-9a-f]{40}"
    if forge == "github":
        faults.script("POST", root + rf"/{pulls}", Fault("429"), Fault("502", lost=True))
        faults.script("POST", statuses, Fault("503"), Fault("timeout"))
    else:
        faults.script("POST", root + rf"/{pulls}", Fault("429"))
        faults.script("POST", statuses, Fault("429"))
    return faults


@pytest.mark.parametrize("forge", FORGES)
def test_api_faults_are_retried_to_one_pull_and_one_comment(start, forge: str) -> None:
    fake = make_fake(forge)
    fake.faults = _faults(forge, fake)
    with fake.serving():
        run = start(forge, fake)
        assert run.post() == 202
        run.run_until_idle()
        assert_one_job_one_pull_one_comment(run, forge)
    # Every scripted fault was served, and each was followed by a retry.
    assert all(not queue for _, _, queue in fake.faults.scripted), fake.faults.scripted
    assert fake.faults.total == (10 if forge == "github" else 8)
    # Each fault was followed by the same request again, except where the answer was lost:
    # then the bot looks for what it made instead of sending the write again.
    lost = 2 if forge == "github" else 1
    assert fake.retries >= fake.faults.total - lost, fake.calls
