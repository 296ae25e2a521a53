"""Comment commands on the local forge, end to end: /retry, /revise, /cancel, /status."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.forges.local import admin
from tests.e2e.conftest import REPO_NAME

pytestmark = [pytest.mark.docker, pytest.mark.slow]

FAREWELL = Path(__file__).resolve().parents[1] / "fixtures" / "transcripts" / "add_farewell.yaml"


def transcript(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "transcript.yaml"
    path.write_text(text)
    return path


def test_retry_with_guidance_replaces_a_failing_attempt(live_factory, tmp_path):
    live = live_factory(transcript(tmp_path, """
- when: "Guidance for a retry"
  reply: |
    hello_service/app.py
    <<<<<<< SEARCH
    def greet(name: str) -> str:
    =======
    def polite_greet(name: str) -> str:
        # greet, and a please
        return greet(name) + " Please."


    def greet(name: str) -> str:
    >>>>>>> REPLACE

    tests/test_loud.py
    <<<<<<< NEW
    from hello_service.app import polite_greet


    def test_greet_is_polite():
        assert polite_greet("Ada") == "Hello, Ada! Please."
    >>>>>>> NEW
- |
  tests/test_loud.py
  <<<<<<< NEW
  from hello_service.app import greet


  def test_greet_shouts():
      assert greet("Ada") == "HELLO, ADA!"
  >>>>>>> NEW
- "no idea"
- "still no idea"
"""))
    live.file_issue("Test the greeting")
    live.run_until_idle()
    [job] = live.service.store.list_jobs()
    assert job.outcome == "tests_failed"
    live.cli("local", "comment", "--repo", REPO_NAME, "1", "/retry keep greetings polite")
    live.run_until_idle()
    job = live.service.store.get_job(job.id)
    assert (job.state, job.outcome) == ("done", "submitted")
    [pull] = live.pulls()  # the same branch and the same pull request, now ready
    assert pull["draft"] is False
    _, _, diff = admin.show_pull(live.settings.local_root, REPO_NAME, pull["number"])
    assert "test_greet_is_polite" in diff and "HELLO" not in diff
    status = live.comments(1)[0]
    assert "attempt 2" in status and "outcome `submitted`" in status
    assert any("queued again (retry)" in c for c in live.comments(1))


def test_revise_on_the_pull_request_continues_its_branch(live_factory, tmp_path):
    first = FAREWELL.read_text()
    revision = FAREWELL.with_name("farewell_revision.yaml").read_text()
    live = live_factory(transcript(tmp_path, revision + first))
    live.file_issue("Add a farewell")
    live.run_until_idle()
    [pull] = live.pulls()
    live.cli("local", "comment", "--repo", REPO_NAME, str(pull["number"]),
             "/revise\nPlease add 'See you soon.' to the farewell.")
    live.run_until_idle()
    [job] = live.service.store.list_jobs()
    assert job.outcome == "submitted"
    [pull] = live.pulls()
    _, body, diff = admin.show_pull(live.settings.local_root, REPO_NAME, pull["number"])
    # Both attempts are on the branch: the farewell, and the revision on top of it.
    assert "+def farewell(name: str) -> str:" in diff and "See you soon." in diff
    assert "6 passed, 0 failed" in body
    events = live.service.store.events(job.id)
    prepared = [e["data"] for e in events if e["kind"] == "prepared"]
    assert prepared[-1]["mode"] == "revise" and prepared[-1]["start"] == pull["head"]


def test_cancel_before_the_job_runs(live_factory, transcripts):
    live = live_factory(transcripts / "add_farewell.yaml")
    live.file_issue("Add a farewell")
    live.cli("local", "comment", "--repo", REPO_NAME, "1", "/cancel")
    live.run_until_idle()
    [job] = live.service.store.list_jobs()
    assert (job.state, job.outcome) == ("cancelled", "cancelled")
    assert live.pulls() == []
    assert any("cancelled" in c for c in live.comments(1))
    # A /retry brings it back, and it then runs to a pull request.
    live.cli("local", "comment", "--repo", REPO_NAME, "1", "/retry")
    live.run_until_idle()
    assert live.service.store.get_job(job.id).outcome == "submitted"
    assert len(live.pulls()) == 1


def test_status_and_a_command_that_races_a_running_job(live_factory, transcripts):
    live = live_factory(transcripts / "add_farewell.yaml")
    live.file_issue("Add a farewell")
    live.run_until_idle()
    live.cli("local", "comment", "--repo", REPO_NAME, "1", "/status")
    live.run_until_idle()
    assert "**done**, outcome `submitted`" in live.comments(1)[-1]
    [job] = live.service.store.list_jobs()
    # Two commands racing on one job: only the first requeues it.
    assert live.service.store.requeue(job.id, mode="retry", feedback="", by="a")
    assert not live.service.store.requeue(job.id, mode="retry", feedback="", by="b")
