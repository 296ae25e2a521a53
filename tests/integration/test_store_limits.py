"""Queue limits and priorities in the claim, on SQLite and on a fresh PostgreSQL database:
each limit reached and then released, priority order, held jobs not blocking other
repositories, and the waiting reason stored and cleared."""

from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from bot.pipeline.limits import hold_for
from bot.policy.model import Limits
from bot.store import Store
from bot.store.db import make_engine
from bot.store.models import Attempt, JobEvent
from bot.store.queries import PULL_PUBLISHED
from tests.integration.test_store import all_at_once

OWNER = "host:1:a"


@pytest.fixture
def store(backend_store: Store) -> Store:
    return backend_store


def queue(store: Store, n: int, *, repo: str = "acme/hello", user: str = "ada",
          priority: int = 0) -> int:
    job = store.create_job(trigger_key=f"local:{repo}:issue:{n}", forge="local", repo=repo,
                           default_branch="main", issue_number=n, title=f"task {n}",
                           requested_by=user, delivery_row=None, priority=priority)
    assert job is not None
    return job.id


def claim(store: Store, limits: Limits | None = None):
    return store.claim_next(OWNER, 60, hold_for(limits or Limits()))


def claimed(store: Store, limits: Limits | None = None) -> int | None:
    taken = claim(store, limits)
    return None if taken is None else taken.job.id


def reason(store: Store, job_id: int) -> str:
    job = store.get_job(job_id)
    assert job is not None
    return job.wait_reason


def publish(store: Store, job_id: int, number: int) -> None:
    """What the publish stage leaves behind for a job whose pull request it opened."""
    store.update_job(job_id, pull_number=number)
    store.add_event(job_id, PULL_PUBLISHED, {"number": number})


def run_to_end(store: Store, limits: Limits, pull: int | None = None) -> int:
    taken = claim(store, limits)
    assert taken is not None
    if pull is not None:
        publish(store, taken.job.id, pull)
    assert store.finish(taken, OWNER, "submitted", failed=False)
    return taken.job.id


def age(store: Store, table, column, hours: float) -> None:
    """Move every row's timestamp ``hours`` into the past, as time passing would (computed
    here: SQLite's date arithmetic in SQL would not give back a timestamp)."""
    with store.engine.begin() as conn:
        rows = conn.execute(select(table.id, column)).all()
        for row_id, at in rows:
            conn.execute(update(table).where(table.id == row_id)
                         .values({column: at - timedelta(hours=hours)}))


# priorities -------------------------------------------------------------------------------


def test_claims_take_the_highest_priority_then_the_oldest(store):
    normal = queue(store, 1)
    background = queue(store, 2, priority=-1)
    urgent = queue(store, 3, priority=1)
    normal_later = queue(store, 4)
    expected = [urgent, normal, normal_later, background]
    assert [j.id for j in store.queued()] == expected
    wide = Limits(concurrent_jobs_per_repo=10)
    assert [claimed(store, wide) for _ in expected] == expected
    assert claimed(store, wide) is None


def test_claims_without_limits_follow_priority_too(store):
    normal = queue(store, 1)
    urgent = queue(store, 2, priority=1)
    assert [store.claim_next(OWNER, 60).job.id for _ in range(2)] == [urgent, normal]


# concurrent jobs per repository ----------------------------------------------------------


def test_running_jobs_limit_holds_then_releases_and_never_blocks_another_repo(store):
    limits = Limits(concurrent_jobs_per_repo=1)
    first = queue(store, 1)
    second = queue(store, 2)
    other = queue(store, 3, repo="acme/other")
    running = claim(store, limits)
    assert running is not None and running.job.id == first
    assert claimed(store, limits) == other  # the held job of acme/hello does not block it
    assert reason(store, second) == (
        "waiting: acme/hello has 1 running job (limits.concurrent_jobs_per_repo = 1)")
    assert claimed(store, limits) is None
    assert store.get_job(second).state == "queued"  # held, never dropped
    assert store.finish(running, OWNER, "submitted", failed=False)
    taken = claim(store, limits)
    assert taken is not None and taken.job.id == second
    assert taken.job.wait_reason == "" and reason(store, second) == ""


def test_a_held_urgent_job_lets_a_normal_job_of_another_repo_run(store):
    limits = Limits(concurrent_jobs_per_repo=1)
    queue(store, 1)
    assert claimed(store, limits) is not None
    urgent = queue(store, 2, priority=1)
    normal = queue(store, 3, repo="acme/other")
    assert claimed(store, limits) == normal
    assert "concurrent_jobs_per_repo" in reason(store, urgent)


# jobs per hour ---------------------------------------------------------------------------


def test_jobs_per_hour_holds_until_the_hour_has_passed(store):
    limits = Limits(jobs_per_hour=2)
    for n in (1, 2, 3):
        queue(store, n)
    run_to_end(store, limits)
    run_to_end(store, limits)
    third = store.queued()[0].id
    assert claimed(store, limits) is None
    assert reason(store, third) == (
        "waiting: acme/hello has started 2 jobs in the last hour (limits.jobs_per_hour = 2)")
    age(store, Attempt, Attempt.started_at, 1.01)
    assert claimed(store, limits) == third
    assert reason(store, third) == ""


# open bot pull requests per repository ----------------------------------------------------


@pytest.mark.parametrize("ending", ["pull.merged", "pull.closed"])
def test_open_pulls_limit_holds_until_a_pull_request_ends(store, ending):
    limits = Limits(open_pulls_per_repo=1)
    queue(store, 1)
    first = run_to_end(store, limits, pull=10)
    second = queue(store, 2)
    assert claimed(store, limits) is None
    assert reason(store, second) == (
        "waiting: acme/hello has 1 open bot pull request (limits.open_pulls_per_repo = 1)")
    store.record_once(first, ending, "pull:10", {"number": 10})
    assert claimed(store, limits) == second


def test_a_job_with_its_own_open_pull_request_is_not_held_by_the_pull_limits(store):
    limits = Limits(open_pulls_per_repo=1, pulls_per_user_per_day=1)
    queue(store, 1)
    first = run_to_end(store, limits, pull=10)
    assert store.requeue(first, mode="revise", feedback="rename it", by="ada")
    assert claimed(store, limits) == first  # a revision updates the pull request it has


# pull requests per user per day -----------------------------------------------------------


def test_pulls_per_user_per_day_holds_that_user_only_until_the_day_has_passed(store):
    limits = Limits(pulls_per_user_per_day=1)
    queue(store, 1, user="ada")
    first = run_to_end(store, limits, pull=10)
    store.record_once(first, "pull.merged", "pull:10")  # not open: only the day's count holds
    again = queue(store, 2, user="ada")
    bob = queue(store, 3, user="bob")
    assert claimed(store, limits) == bob
    assert reason(store, again) == (
        "waiting: 1 pull request opened for ada in the last 24 hours "
        "(limits.pulls_per_user_per_day = 1)")
    assert claimed(store, limits) is None
    age(store, JobEvent, JobEvent.created_at, 24.01)
    assert claimed(store, limits) == again


def test_a_pull_request_updated_today_but_opened_earlier_does_not_count(store):
    limits = Limits(pulls_per_user_per_day=1)
    queue(store, 1)
    first = run_to_end(store, limits, pull=10)
    store.record_once(first, "pull.merged", "pull:10")
    age(store, JobEvent, JobEvent.created_at, 25)
    store.add_event(first, PULL_PUBLISHED, {"number": 10})  # an update of the same one
    second = queue(store, 2)
    assert claimed(store, limits) == second


# reasons ---------------------------------------------------------------------------------


def test_reasons_follow_the_limits_and_are_written_only_when_they_change(store):
    limits = Limits(concurrent_jobs_per_repo=1)
    queue(store, 1)
    running = claim(store, limits)
    waiting = queue(store, 2)
    assert claimed(store, limits) is None
    before = store.get_job(waiting)
    assert claimed(store, limits) is None
    after = store.get_job(waiting)
    assert after.wait_reason == before.wait_reason != ""
    assert after.updated_at == before.updated_at  # the same reason is not written again
    assert claimed(store, Limits(concurrent_jobs_per_repo=2)) == waiting
    assert running is not None and reason(store, waiting) == ""


def test_latest_events_tells_the_latest_of_the_kinds_asked(store):
    a, b, c = queue(store, 1), queue(store, 2), queue(store, 3)
    store.add_event(a, "queue.shown", {"position": 1})
    store.add_event(a, "queue.shown", {"position": 2})
    store.add_event(b, "queue.shown", {"position": 1})
    store.add_event(b, "attempt.started", {"number": 1})
    latest = store.latest_events([a, b, c], ("queue.shown", "attempt.started"))
    assert latest == {a: ("queue.shown", {"position": 2}), b: ("attempt.started", {"number": 1})}
    assert store.latest_events([], ("queue.shown",)) == {}


# several workers -------------------------------------------------------------------------


def test_workers_claiming_at_once_never_exceed_a_limit(backend_url, store):
    limits = Limits(concurrent_jobs_per_repo=3)
    for n in range(1, 13):
        queue(store, n, repo="acme/hello" if n % 2 else "acme/other")
    workers = [Store(make_engine(backend_url)) for _ in range(4)]

    def drain(i: int) -> list[str]:
        taken = []
        while (c := workers[i].claim_next(f"host:{i}:w", 60, hold_for(limits))) is not None:
            taken.append(c.job.repo)
        return taken

    try:
        results = all_at_once(4, drain)
    finally:
        for worker in workers:
            worker.engine.dispose()
    assert Counter(repo for taken in results for repo in taken) == {
        "acme/hello": 3, "acme/other": 3}
    assert store.count_jobs() == {"running": 6, "queued": 6}
