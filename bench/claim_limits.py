"""What the queue limits cost a claim: ``Store.claim_next`` with the policy's limits against
the same claim without them, in the same run, on SQLite and (when a server is given) on
PostgreSQL.

Two scenarios, each on a fresh database:
- ``drain``: ``--jobs`` queued jobs over ``--repos`` repositories, claimed and finished one
  after another; the limits are wide enough that none holds, so the figure is the cost of
  counting and deciding (the advisory lock or write lock, five count queries, the scan).
- ``backlog``: ``--backlog`` jobs of one repository held back by
  ``limits.concurrent_jobs_per_repo = 1`` (one of its jobs runs), and ``--jobs`` jobs of other
  repositories behind them; the figure is a claim that has to pass over the whole held
  backlog. The baseline claims the same jobs with no limits (and so no backlog to pass).

Prints the mean milliseconds per claim for both and their ratio.

    .venv/bin/python bench/claim_limits.py [--jobs 300] [--repos 10] [--backlog 1000]
    FORGEBOT_TEST_POSTGRES_URL=$(bash scripts/ensure-postgres.sh) .venv/bin/python ...
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.pipeline.limits import hold_for
from bot.policy.model import Limits
from bot.store import Store, open_store
from bot.store.db import normalise_url
from bot.store.queries import Hold

OWNER = "bench:1:a"
WIDE = Limits(concurrent_jobs_per_repo=1000, jobs_per_hour=100_000, open_pulls_per_repo=10_000,
              pulls_per_user_per_day=10_000)


def queue(store: Store, key: str, repo: str) -> None:
    store.create_job(trigger_key=key, forge="local", repo=repo, default_branch="main",
                     issue_number=1, title="bench", requested_by="ada", delivery_row=None)


def drain(store: Store, count: int, hold: Hold | None) -> float:
    """Claim and finish ``count`` jobs; mean seconds per claim."""
    spent = 0.0
    for _ in range(count):
        started = time.perf_counter()
        claim = store.claim_next(OWNER, 60, hold)
        spent += time.perf_counter() - started
        if claim is None:
            raise SystemExit("the queue ran dry before the bench did: a limit held a job")
        store.finish(claim, OWNER, "submitted", failed=False)
    return spent / count


def scenario_drain(store: Store, args: argparse.Namespace, hold: Hold | None) -> float:
    for i in range(args.jobs):
        queue(store, f"d{i}", f"acme/r{i % args.repos}")
    return drain(store, args.jobs, hold)


def scenario_backlog(store: Store, args: argparse.Namespace, hold: Hold | None) -> float:
    queue(store, "running", "acme/busy")
    if store.claim_next(OWNER, 600) is None:  # the busy repository's one running job
        raise SystemExit("could not start the busy repository's job")
    if hold is not None:  # the baseline has no limits, so no backlog held ahead of the rest
        for i in range(args.backlog):
            queue(store, f"b{i}", "acme/busy")
    for i in range(args.jobs):
        queue(store, f"o{i}", f"acme/r{i % args.repos}")
    return drain(store, args.jobs, hold)


@contextmanager
def sqlite_store() -> Iterator[Store]:
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(f"sqlite:///{tmp}/bench.db")
        try:
            yield store
        finally:
            store.engine.dispose()


@contextmanager
def postgres_store(server: str) -> Iterator[Store]:
    name = f"forgebot_bench_{secrets.token_hex(6)}"
    admin = create_engine(normalise_url(server), isolation_level="AUTOCOMMIT",
                          poolclass=NullPool)
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(normalise_url(server)).set(database=name)
    store = open_store(url.render_as_string(hide_password=False))
    try:
        yield store
    finally:
        store.engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


Scenario = Callable[[Store, argparse.Namespace, Hold | None], float]


def measure(backend: str, fresh: Callable[[], Any], scenario: Scenario, label: str,
            limits: Limits, args: argparse.Namespace) -> None:
    with fresh() as store:
        ours = scenario(store, args, hold_for(limits))
    with fresh() as store:
        base = scenario(store, args, None)
    print(f"{backend:10} {label:8} with limits {ours * 1000:7.2f} ms/claim   "
          f"without {base * 1000:7.2f} ms/claim   ratio {ours / base:5.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=300)
    parser.add_argument("--repos", type=int, default=10)
    parser.add_argument("--backlog", type=int, default=1000)
    args = parser.parse_args()
    backends: list[tuple[str, Callable[[], Any]]] = [("sqlite", sqlite_store)]
    server = os.environ.get("FORGEBOT_TEST_POSTGRES_URL", "").strip()
    if server:
        backends.append(("postgresql", lambda: postgres_store(server)))
    else:
        print("FORGEBOT_TEST_POSTGRES_URL is not set: SQLite only")
    print(f"{args.jobs} claims over {args.repos} repositories; backlog {args.backlog} held jobs")
    for backend, fresh in backends:
        measure(backend, fresh, scenario_drain, "drain", WIDE, args)
        backlog_limits = WIDE.model_copy(update={"concurrent_jobs_per_repo": 1})
        measure(backend, fresh, scenario_backlog, "backlog", backlog_limits, args)


if __name__ == "__main__":
    main()
