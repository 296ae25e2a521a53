"""The store on both backends: every test runs on SQLite and on a fresh PostgreSQL database."""

import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import create_engine, func, inspect, select, update

from bot.store import Store, open_store
from bot.store.db import make_engine, migrate, schema_status
from bot.store.models import Attempt, Delivery, Job, JobEvent, utcnow
from bot.store.notify import WorkListener


@pytest.fixture
def store(backend_store: Store) -> Store:
    return backend_store


def new_job(store: Store, key: str = "local:acme/hello:issue:1"):
    return store.create_job(trigger_key=key, forge="local", repo="acme/hello",
                            default_branch="main", issue_number=1, title="t",
                            requested_by="ada", delivery_row=None)


def age_leases(store: Store) -> None:
    """Leave every lease expired, as a dead worker would."""
    with store.engine.begin() as conn:
        conn.execute(update(Job).values(lease_expires_at=utcnow() - timedelta(seconds=1)))


def all_at_once(n: int, work: Callable[[int], object]) -> list[object]:
    """Run ``work(i)`` in ``n`` threads released together; re-raise the first failure."""
    barrier = threading.Barrier(n)
    results: list[object] = [None] * n
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            results[i] = work(i)
        except BaseException as exc:  # handed to the test thread below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 60
    for t in threads:
        t.join(timeout=max(deadline - time.monotonic(), 0))
    if errors:
        raise errors[0]
    assert not any(t.is_alive() for t in threads), "threads still blocked after 60 s"
    return results


def test_migrations_create_every_table(store):
    names = set(inspect(store.engine).get_table_names())
    assert {"deliveries", "jobs", "attempts", "job_events", "transcript_entries", "repo_records",
            "alembic_version"} <= names
    current, head = schema_status(store.engine)
    assert current == head == "0003"


def test_migrating_twice_is_harmless(backend_url, store):
    again = open_store(backend_url)
    try:
        assert again.list_jobs() == []
    finally:
        again.engine.dispose()


def test_a_delivery_is_stored_once_and_secret_headers_are_dropped(store):
    headers = {"X-Forgebot-Delivery": "d1", "X-Forgebot-Signature-256": "sha256=abc",
               "X-Gitlab-Token": "tok", "Content-Type": "application/json"}
    row, created = store.record_delivery("local", "d1", "issues", headers, b"{}")
    again, created_again = store.record_delivery("local", "d1", "issues", headers, b"{}")
    assert created and not created_again and row == again
    [pending] = store.take_deliveries("host:1:a")
    assert set(pending.headers) == {"X-Forgebot-Delivery", "Content-Type"}


def test_replicas_storing_one_delivery_at_once_store_it_once(backend_url, store):
    # Each "replica" has its own engine, as separate receiver processes would.
    replicas = [Store(make_engine(backend_url)) for _ in range(6)]
    try:
        results = all_at_once(6, lambda i: replicas[i].record_delivery(
            "local", "same", "issues", {}, b'{"n": 1}'))
    finally:
        for replica in replicas:
            replica.engine.dispose()
    assert sorted(created for _, created in results) == [False] * 5 + [True]
    assert len({row for row, _ in results}) == 1
    assert store.delivery_counts() == {"pending": 1}


def test_a_duplicate_delivery_leaves_the_connection_clean(backend_url, store):
    # One pooled connection: were the failed insert's transaction not rolled back, the next
    # statement on it would fail (PostgreSQL: "current transaction is aborted").
    engine = create_engine(backend_url, pool_size=1, max_overflow=0)
    single = Store(engine)
    try:
        for _ in range(3):
            single.record_delivery("local", "d1", "issues", {}, b"{}")
        assert new_job(single) is not None
        assert engine.pool.checkedout() == 0
    finally:
        engine.dispose()
    assert store.delivery_counts() == {"pending": 1}


def test_a_planner_takes_deliveries_oldest_first_and_they_stay_busy(store):
    rows = [store.record_delivery("local", f"d{i}", "issues", {}, b"{}")[0] for i in range(3)]
    assert [d.id for d in store.take_deliveries("host:1:a", limit=2)] == rows[:2]
    assert [d.id for d in store.take_deliveries("host:2:b")] == rows[2:]
    assert store.take_deliveries("host:3:c") == []
    assert store.delivery_counts() == {"planning": 3}
    assert not store.is_idle()  # taken is not planned
    for row in rows:
        store.mark_delivery(row, "ignored")
    assert store.is_idle()
    assert store.delivery_counts() == {"ignored": 3}


def test_concurrent_planners_take_each_delivery_once(backend_url, store):
    rows = {store.record_delivery("local", f"d{i}", "issues", {}, b"{}")[0] for i in range(40)}
    planners = [Store(make_engine(backend_url)) for _ in range(4)]

    def drain(i: int) -> list[int]:
        taken = []
        while batch := planners[i].take_deliveries(f"host:{i}:p", limit=3):
            taken += [d.id for d in batch]
        return taken

    try:
        results = all_at_once(4, drain)
    finally:
        for planner in planners:
            planner.engine.dispose()
    taken = Counter(row for batch in results for row in batch)
    assert set(taken) == rows and set(taken.values()) == {1}


def test_a_delivery_whose_planner_died_is_taken_again(store):
    row, _ = store.record_delivery("local", "d1", "issues", {}, b"{}")
    assert [d.id for d in store.take_deliveries("host:1:dead")] == [row]
    assert store.take_deliveries("host:2:b", stale_seconds=300) == []
    with store.engine.begin() as conn:  # as if the planner took it an hour ago
        conn.execute(update(Delivery).values(processed_at=utcnow() - timedelta(hours=1)))
    assert [d.id for d in store.take_deliveries("host:2:b", stale_seconds=300)] == [row]


def test_timestamps_are_naive_utc_on_both_backends(store):
    before = utcnow()
    job = new_job(store)
    after = utcnow()
    assert job.created_at.tzinfo is None
    assert before <= store.get_job(job.id).created_at <= after


def test_one_job_per_trigger(store):
    assert new_job(store) is not None
    assert new_job(store) is None
    assert len(store.list_jobs()) == 1


def test_claim_is_exclusive_and_opens_an_attempt(store):
    job = new_job(store)
    first = store.claim_next("host:1:a", 60)
    assert first is not None and first.job.id == job.id and first.attempt_number == 1
    assert store.claim_next("host:2:b", 60) is None
    assert store.finish(first, "host:1:a", "submitted", failed=False)
    assert store.get_job(job.id).state == "done"
    kinds = [e["kind"] for e in store.events(job.id)]
    assert kinds == ["job.queued", "attempt.started", "job.finished"]


def test_claims_come_oldest_first(store):
    ids = [new_job(store, f"k{i}").id for i in range(3)]
    assert [store.claim_next("host:1:a", 60).job.id for _ in ids] == ids


def test_concurrent_claims_take_each_job_once(backend_url, store):
    ids = {new_job(store, f"k{i}").id for i in range(40)}
    workers = [Store(make_engine(backend_url)) for _ in range(4)]

    def drain(i: int) -> list[int]:
        taken = []
        while (claim := workers[i].claim_next(f"host:{i}:w", 60)) is not None:
            taken.append(claim.job.id)
        return taken

    try:
        results = all_at_once(4, drain)
    finally:
        for worker in workers:
            worker.engine.dispose()
    taken = Counter(job_id for claims in results for job_id in claims)
    assert set(taken) == ids and set(taken.values()) == {1}
    with store.engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(Attempt)) == 40


def test_finish_refuses_a_lost_lease(store):
    new_job(store)
    claim = store.claim_next("host:1:a", 60)
    assert not store.finish(claim, "host:9:z", "submitted", failed=False)


def test_expired_lease_requeues_then_gives_up_after_max_attempts(store):
    job = new_job(store)
    for attempt in (1, 2):
        claim = store.claim_next("host:1:a", 60)
        assert claim.attempt_number == attempt
        age_leases(store)
        assert store.recover(lambda _owner: False, max_attempts=2) == [job.id]
    view = store.get_job(job.id)
    assert (view.state, view.outcome) == ("failed", "worker_lost")


def test_dead_owner_requeues_before_the_lease_expires(store):
    job = new_job(store)
    store.claim_next("host:1:a", 600)
    assert store.recover(lambda owner: owner == "host:1:a", max_attempts=3) == [job.id]
    assert store.get_job(job.id).state == "queued"


def test_recover_leaves_a_live_lease_alone(store):
    job = new_job(store)
    store.claim_next("host:1:a", 600)
    assert store.recover(lambda _owner: False, max_attempts=3) == []
    assert store.get_job(job.id).state == "running"


def test_two_recoveries_at_once_requeue_each_job_once(backend_url, store):
    ids = {new_job(store, f"k{i}").id for i in range(30)}
    for _ in ids:
        store.claim_next("host:1:dead", 60)
    age_leases(store)
    workers = [Store(make_engine(backend_url)) for _ in range(4)]
    try:
        results = all_at_once(4, lambda i: workers[i].recover(lambda _o: False, 3))
    finally:
        for worker in workers:
            worker.engine.dispose()
    touched = Counter(job_id for recovered in results for job_id in recovered)
    assert set(touched) == ids and set(touched.values()) == {1}
    with store.engine.connect() as conn:
        requeued = conn.execute(select(JobEvent.job_id, func.count())
                                .where(JobEvent.kind == "job.requeued")
                                .group_by(JobEvent.job_id)).all()
        abandoned = conn.scalar(select(func.count()).select_from(Attempt)
                                .where(Attempt.state == "abandoned"))
    assert sorted(requeued) == sorted((job_id, 1) for job_id in ids)
    assert abandoned == 30
    assert store.count_jobs() == {"queued": 30}


def test_idle_means_no_pending_delivery_and_no_active_job(store):
    assert store.is_idle()
    store.record_delivery("local", "d1", "issues", {}, b"{}")
    assert not store.is_idle()


@pytest.mark.postgres
def test_replicas_starting_together_migrate_once(postgres_url):
    # Receivers and workers start at the same moment against an empty database.
    engines = [make_engine(postgres_url) for _ in range(4)]
    try:
        all_at_once(4, lambda i: migrate(engines[i]))
        assert schema_status(engines[0]) == ("0003", "0003")
    finally:
        for engine in engines:
            engine.dispose()


@pytest.mark.postgres
def test_a_plain_postgresql_url_uses_psycopg(postgres_url):
    plain = postgres_url.replace("postgresql+psycopg://", "postgresql://", 1)
    engine = make_engine(plain)
    try:
        assert engine.dialect.driver == "psycopg"
    finally:
        engine.dispose()


def test_a_listener_hears_work_stored_by_another_process(backend_url, store):
    woken = threading.Event()
    listener = WorkListener(backend_url, woken.set)
    if backend_url.startswith("sqlite"):
        assert not listener.start()  # one process: the receiver wakes its dispatcher itself
        return
    try:
        assert listener.start()
        store.record_delivery("local", "d1", "issues", {}, b"{}")
        assert woken.wait(5), "no wake-up for a stored delivery"
        woken.clear()
        store.record_delivery("local", "d1", "issues", {}, b"{}")  # duplicate: rolled back
        assert not woken.wait(0.5), "a rolled-back insert must not wake anyone"
        assert new_job(store) is not None
        assert woken.wait(5), "no wake-up for a queued job"
    finally:
        listener.stop()


def test_transcripts_are_kept_per_attempt_in_order(store):
    job = new_job(store)
    first = store.claim_next("w1", 60)
    assert first is not None
    store.add_transcript(job.id, first.attempt_id, "prompt", "--- user ---\nfix it",
                         {"i": 1, "role": "coder"})
    store.add_transcript(job.id, first.attempt_id, "reply", "done", {"prompt_tokens": 7})
    store.finish(first, "w1", "tests_failed", failed=True)
    store.requeue(job.id, mode="retry", feedback="", by="ada")
    second = store.claim_next("w2", 60)
    assert second is not None
    store.add_transcript(job.id, second.attempt_id, "tool", "exit code 0", {})
    entries = store.transcript(job.id)
    assert [(e["attempt"], e["kind"], e["content"]) for e in entries] == [
        (1, "prompt", "--- user ---\nfix it"), (1, "reply", "done"), (2, "tool", "exit code 0")]
    assert entries[1]["meta"] == {"prompt_tokens": 7}
    assert [e["kind"] for e in store.transcript(job.id, attempt=2)] == ["tool"]
    assert store.transcript(job.id + 1) == []
