"""Two worker processes drain 200 jobs from one PostgreSQL database: each job runs once.

Each worker is a separate process with its own engine, as two ``forgebot serve --role
worker`` replicas would be: it recovers lost jobs, claims, runs a job (a side effect written
to its own file and to the job's events) and finishes it, until nothing is queued.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import time
from collections import Counter
from multiprocessing.synchronize import Event as EventType
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.store import Store, open_store
from bot.store.models import Attempt, Job, JobEvent

JOBS = 200
pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def work(url: str, name: str, go: EventType, out_dir: Path) -> None:
    """One worker process: claim and finish jobs until the queue is empty."""
    store = open_store(url)
    owner = f"test-host:{os.getpid()}:{name}"
    go.wait(60)  # both workers start claiming at the same moment
    with (out_dir / f"{name}.ran").open("a") as ran:
        while True:
            store.recover(lambda _owner: False, max_attempts=3)
            claim = store.claim_next(owner, lease_seconds=300)
            if claim is None:
                if store.count_jobs().get("queued", 0) == 0:
                    break
                continue
            # The job's side effect: one line per run, flushed before the job is finished.
            ran.write(f"{claim.job.id}\n")
            ran.flush()
            store.add_event(claim.job.id, "test.ran", {"worker": name},
                            attempt_id=claim.attempt_id)
            time.sleep(random.uniform(0, 0.003))  # jobs of uneven length interleave
            if not store.finish(claim, owner, "submitted", failed=False):
                raise SystemExit(f"{name} lost the lease of job {claim.job.id}")
    store.engine.dispose()


def queue_jobs(store: Store) -> set[int]:
    ids = set()
    for n in range(JOBS):
        job = store.create_job(trigger_key=f"local:acme/hello:issue:{n}", forge="local",
                               repo="acme/hello", default_branch="main", issue_number=n,
                               title=f"job {n}", requested_by="ada", delivery_row=None)
        assert job is not None
        ids.add(job.id)
    return ids


def run_workers(url: str, out_dir: Path, count: int = 2) -> None:
    # spawn, not fork: a forked child would share the parent's pooled connections.
    ctx = multiprocessing.get_context("spawn")
    go = ctx.Event()
    procs = [ctx.Process(target=work, args=(url, f"w{i}", go, out_dir)) for i in range(count)]
    for proc in procs:
        proc.start()
    go.set()
    for proc in procs:
        proc.join(timeout=180)
    for proc in procs:
        if proc.is_alive():
            proc.kill()
            proc.join()
    assert [proc.exitcode for proc in procs] == [0] * count


def test_two_worker_processes_run_every_job_exactly_once(postgres_url: str, tmp_path: Path) -> None:
    store = open_store(postgres_url)
    try:
        ids = queue_jobs(store)
        run_workers(postgres_url, tmp_path)

        runs = {path.stem: [int(line) for line in path.read_text().split()]
                for path in tmp_path.glob("*.ran")}
        ran = Counter(job_id for job_ids in runs.values() for job_id in job_ids)
        assert set(ran) == ids and set(ran.values()) == {1}, "a job ran twice or never"
        assert all(runs.get(f"w{i}") for i in range(2)), f"one worker did nothing: {runs}"

        with store.engine.connect() as conn:
            attempts = Counter(dict(conn.execute(
                select(Attempt.job_id, func.count()).group_by(Attempt.job_id)).all()))
            attempt_states = set(conn.scalars(select(Attempt.state).distinct()))
            events = Counter(conn.execute(select(JobEvent.kind, JobEvent.job_id)).all())
            leases = conn.scalar(select(func.count()).select_from(Job).where(
                (Job.lease_owner.is_not(None)) | (Job.lease_expires_at.is_not(None))))
        assert set(attempts) == ids and set(attempts.values()) == {1}
        assert attempt_states == {"done"}
        for kind in ("job.queued", "attempt.started", "test.ran", "job.finished"):
            assert {job_id for k, job_id in events if k == kind} == ids, kind
        assert set(events.values()) == {1}, "an event was written twice"
        assert leases == 0, "a lease was left behind"
        assert store.count_jobs() == {"done": JOBS}, "a job is stuck"
    finally:
        store.engine.dispose()
