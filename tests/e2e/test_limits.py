"""Queue limits end to end on the local forge: a bot-wide policy holds a second issue back,
its status comment says where it stands in the queue and why, and it runs once the limit is
released; nothing is dropped."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from bot.pipeline.report import status_marker
from bot.store.models import JobEvent
from tests.e2e.conftest import Live

pytestmark = [pytest.mark.docker, pytest.mark.slow]

Factory = Callable[..., Live]


def live_with_policy(live_factory: Factory, transcripts: Path, tmp_path: Path,
                     policy: str) -> Live:
    """A live service with two worker slots under a bot-wide policy file."""
    path = tmp_path / "policy.yml"
    path.write_text(f"version: 1\n{policy}")
    return live_factory(transcripts / "add_farewell.yaml",
                        {"FORGEBOT_POLICY_FILE": str(path),
                         "FORGEBOT_SCHEDULER__CONCURRENCY": "2"})


def age_events(live: Live, hours: float) -> None:
    """Move every job event ``hours`` into the past (computed here: SQLite's date arithmetic
    in SQL would not give back a timestamp)."""
    with live.service.store.engine.begin() as conn:
        for row_id, at in conn.execute(select(JobEvent.id, JobEvent.created_at)).all():
            conn.execute(update(JobEvent).where(JobEvent.id == row_id)
                         .values(created_at=at - timedelta(hours=hours)))


def status_of(live: Live, issue: int, job_id: int) -> list[str]:
    return [c for c in live.comments(issue) if status_marker(job_id) in c]


def test_a_second_issue_waits_with_its_reason_then_runs(
    live_factory: Factory, transcripts: Path, tmp_path: Path
) -> None:
    live = live_with_policy(live_factory, transcripts, tmp_path,
                            "limits:\n  concurrent_jobs_per_repo: 1\n")
    live.file_issue("Add a farewell")
    live.file_issue("Add a farewell, please")
    started = live.service.dispatcher.tick()  # plans both; the limit lets one run
    assert [lease.claim.job.issue_number for lease in started] == [1]
    second = next(j for j in live.service.store.list_jobs() if j.issue_number == 2)
    [waiting] = status_of(live, 2, second.id)
    assert ("- [ ] **Queued** (position 1): waiting: acme/hello has 1 running job "
            "(limits.concurrent_jobs_per_repo = 1)") in waiting
    assert live.service.store.get_job(second.id).state == "queued"

    live.service.dispatcher.wait_idle(timeout=600)  # the first job ends: the limit releases
    live.run_until_idle()
    jobs = {j.issue_number: j for j in live.service.store.list_jobs()}
    assert {n: (j.state, j.outcome) for n, j in jobs.items()} == {
        1: ("done", "submitted"), 2: ("done", "submitted")}
    assert len(live.pulls()) == 2
    [shown] = status_of(live, 2, second.id)  # the same comment, edited in place
    assert "- [x] Queued\n" in shown and "waiting:" not in shown and "position" not in shown
    kinds = [e["kind"] for e in live.service.store.events(second.id)]
    assert kinds.index("queue.shown") < kinds.index("attempt.started")
    assert jobs[2].wait_reason == ""


def test_pulls_per_user_per_day_holds_the_next_issue_of_that_user(
    live_factory: Factory, transcripts: Path, tmp_path: Path
) -> None:
    live = live_with_policy(live_factory, transcripts, tmp_path,
                            "limits:\n  pulls_per_user_per_day: 1\n")
    live.file_issue("Add a farewell")
    live.run_until_idle()
    live.file_issue("Add a farewell, please")
    live.service.dispatcher.tick()
    second = next(j for j in live.service.store.list_jobs() if j.issue_number != 1)
    assert second.state == "queued"
    [waiting] = status_of(live, second.issue_number, second.id)
    assert ("- [ ] **Queued** (position 1): waiting: 1 pull request opened for ") in waiting
    assert "(limits.pulls_per_user_per_day = 1)" in waiting
    assert len(live.pulls()) == 1

    # A day passes (the store's clock moved back rather than the test waiting for it).
    age_events(live, hours=25)
    live.run_until_idle()
    assert live.service.store.get_job(second.id).outcome == "submitted"
    assert len(live.pulls()) == 2
    [shown] = status_of(live, second.issue_number, second.id)
    assert "- [x] Queued\n" in shown and "waiting:" not in shown
