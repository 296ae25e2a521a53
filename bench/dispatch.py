"""Dispatch latency: from a delivery being stored to its job's sandbox starting, p50 and p95.

Each worker is its own process with its own engine and a real ``bot.scheduler.Dispatcher``
(APScheduler ticking at the default interval, concurrency 2), and plays the receiver as
``forgebot serve`` does: a delivery handed to it is stored with ``Store.record_delivery`` and
the dispatcher is woken. Deliveries go round-robin to the workers, as a load balancer would
send them to replicas. "Sandbox start" is the moment the dispatcher calls ``run_job``; the
bench's ``run_job`` notes the time and finishes the job, so no Docker is involved and the
figures price the store and the dispatcher alone (plan, recover, claim).

Scenarios: SQLite and PostgreSQL, one and two workers; then PostgreSQL with the receiver in
a process of its own (the Helm chart's layout), which cannot call the workers' ``wake``:
once with the tick interval alone setting the latency, once with each worker running a
``bot.store.notify.WorkListener`` that wakes it on the store's NOTIFY. Times are wall-clock
(``time.time``), comparable across processes on one host.

    .venv/bin/python bench/dispatch.py [--deliveries 300] [--interval-ms 20]
                                       [--postgres-url postgresql+psycopg://...]

Without --postgres-url, FORGEBOT_BENCH_POSTGRES_URL or FORGEBOT_TEST_POSTGRES_URL, the bench
runs scripts/ensure-postgres.sh. Each PostgreSQL scenario gets a database of its own.
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import os
import queue
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.queues import Queue
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.config import load_settings
from bot.forges import build_forges
from bot.forges.local import admin
from bot.forges.local.webhook import (
    DELIVERY_HEADER,
    issue_payload,
    issues_event,
    repository_payload,
    signed_headers,
)
from bot.pipeline.lease import Lease
from bot.pipeline.planner import Planner
from bot.policy.load import load_policy
from bot.scheduler import Dispatcher
from bot.store import open_store
from bot.store.db import normalise_url
from bot.store.notify import WorkListener

REPO = Path(__file__).resolve().parents[1]
SECRET = "bench-secret"
WARMUP = 20
Delivery = tuple[dict[str, str], bytes]


@dataclass(frozen=True)
class Scenario:
    backend: str  # "sqlite" | "postgres"
    workers: int
    receiver_apart: bool = False
    listen: bool = False  # workers run a WorkListener (PostgreSQL LISTEN/NOTIFY)

    @property
    def name(self) -> str:
        apart = ""
        if self.receiver_apart:
            apart = ", receiver apart, " + ("NOTIFY" if self.listen else "tick only")
        return f"{self.backend:<8} {self.workers} worker{'s' if self.workers > 1 else ' '}{apart}"


@dataclass(frozen=True)
class Result:
    latencies: list[float]  # seconds
    duplicates: int

    def pct(self, q: int) -> float:
        return statistics.quantiles(self.latencies, n=100)[q - 1] * 1000


# --------------------------------------------------------------------- worker process


def settings_for(url: str, data_dir: str) -> Any:
    return load_settings(None, environ={
        "FORGEBOT_DATA_DIR": data_dir, "FORGEBOT_STORE__URL": url,
        "FORGEBOT_FORGES__LOCAL__SECRET": SECRET})


def worker_main(url: str, name: str, data_dir: str, inbox: Queue[Any],
                outbox: Queue[Any], listen: bool) -> None:
    """One `forgebot serve` replica: receives deliveries, dispatches, "starts sandboxes"."""
    # APScheduler warns each time a wake-up finds a tick running; the tick loops instead.
    logging.getLogger("apscheduler").setLevel(logging.ERROR)
    settings = settings_for(url, data_dir)
    store = open_store(url)

    def run_job(lease: Lease) -> None:
        outbox.put(("start", lease.claim.job.issue_number, time.time()))
        store.finish(lease.claim, lease.owner, "submitted", failed=False)

    # Many jobs on one repository: the queue limits opened wide, as a batch run would.
    policy = load_policy(Path(__file__).resolve().parents[1] / "policies" / "high-volume.yml")
    planner = Planner(store, build_forges(settings), policy, settings.bot_user)
    dispatcher = Dispatcher(store, planner, settings, run_job,
                            owner=f"bench:{os.getpid()}:{name}")
    dispatcher.start()
    listener = WorkListener(url, dispatcher.wake)
    if listen and not listener.start():
        raise SystemExit(f"{name}: the store listener did not start")
    outbox.put(("ready", 0, 0.0))
    while (item := inbox.get()) is not None:
        number, headers, body = item
        stored_at = time.time()
        _row, created = store.record_delivery("local", headers[DELIVERY_HEADER], "issues",
                                              headers, body)
        if created:
            dispatcher.wake()  # what the webhook handler does after storing
        outbox.put(("delivered", number, stored_at))
    listener.stop()
    dispatcher.stop()
    store.engine.dispose()


# --------------------------------------------------------------------- driver


def deliveries(n: int) -> list[Delivery]:
    repo = repository_payload("acme/hello", "main")
    out = []
    for number in range(n):
        issue = issue_payload(number, f"task {number}", "Please.", ["forgebot"], "ada",
                              pull=False)
        body = json.dumps(issues_event("labeled", repo, issue, "ada", "forgebot")).encode()
        out.append((signed_headers(SECRET, "issues", body), body))
    return out


def run_scenario(url: str, scenario: Scenario, work: list[Delivery], interval: float,
                 data_dir: str) -> Result:
    open_store(url).engine.dispose()  # migrate once, before the clock starts
    ctx = multiprocessing.get_context("spawn")
    outbox: Queue[Any] = ctx.Queue()
    inboxes: list[Queue[Any]] = [ctx.Queue() for _ in range(scenario.workers)]
    procs = [ctx.Process(target=worker_main,
                         args=(url, f"w{i}", data_dir, inboxes[i], outbox, scenario.listen))
             for i in range(scenario.workers)]
    for proc in procs:
        proc.start()
    try:
        wait_ready(outbox, procs)
        delivered = send(url, scenario, work, interval, inboxes)
        return collect(outbox, delivered, len(work))
    finally:
        for inbox in inboxes:
            inbox.put(None)
        for proc in procs:
            proc.join(timeout=30)
            if proc.is_alive():
                proc.kill()


def wait_ready(outbox: Queue[Any], procs: list[Any]) -> None:
    ready = 0
    deadline = time.monotonic() + 60
    while ready < len(procs):
        if not all(proc.is_alive() for proc in procs) or time.monotonic() > deadline:
            raise SystemExit("a worker process failed to start (its traceback is above)")
        try:
            outbox.get(timeout=0.5)
            ready += 1
        except queue.Empty:
            continue


def send(url: str, scenario: Scenario, work: list[Delivery], interval: float,
         inboxes: list[Queue[Any]]) -> dict[int, float]:
    """Hand deliveries out at a steady rate; returns the store times the parent measured."""
    receiver = open_store(url) if scenario.receiver_apart else None
    delivered: dict[int, float] = {}
    begin = time.perf_counter()
    for number, (headers, body) in enumerate(work):
        pause = begin + number * interval - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
        if receiver is None:
            inboxes[number % len(inboxes)].put((number, headers, body))
            continue
        delivered[number] = time.time()  # stored, and no worker of this process to wake
        receiver.record_delivery("local", headers[DELIVERY_HEADER], "issues", headers, body)
    if receiver is not None:
        receiver.engine.dispose()
    return delivered


def collect(outbox: Queue[Any], delivered: dict[int, float], total: int) -> Result:
    started: dict[int, float] = {}
    duplicates = 0
    deadline = time.monotonic() + 120
    while len(started) < total or len(delivered) < total:
        try:
            kind, number, at = outbox.get(timeout=max(deadline - time.monotonic(), 0.1))
        except queue.Empty:
            raise SystemExit(f"only {len(started)} of {total} jobs started") from None
        if kind == "delivered":
            delivered[number] = at
        elif number in started:
            duplicates += 1
        else:
            started[number] = at
    latencies = [started[n] - delivered[n] for n in range(WARMUP, total)]
    return Result(latencies, duplicates)


# --------------------------------------------------------------------- databases


def postgres_server(explicit: str | None) -> str:
    url = (explicit or os.environ.get("FORGEBOT_BENCH_POSTGRES_URL")
           or os.environ.get("FORGEBOT_TEST_POSTGRES_URL"))
    if not url:
        url = subprocess.run(["bash", str(REPO / "scripts" / "ensure-postgres.sh")],
                             check=True, capture_output=True, text=True).stdout.strip()
    return normalise_url(url)


@contextmanager
def database(backend: str, server: str, tmp: Path) -> Iterator[str]:
    """A fresh, empty database on ``backend``; dropped afterwards."""
    name = f"forgebot_bench_{secrets.token_hex(4)}"
    if backend == "sqlite":
        yield f"sqlite:///{tmp / (name + '.db')}"
        return
    admin = create_engine(server, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(server).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


# --------------------------------------------------------------------- report


def ratio(results: dict[Scenario, Result], top: Scenario, bottom: Scenario) -> str:
    a, b = results[top], results[bottom]
    return f"p50 {a.pct(50) / b.pct(50):5.2f}x   p95 {a.pct(95) / b.pct(95):5.2f}x"


def report(results: dict[Scenario, Result], args: argparse.Namespace, tick: float) -> None:
    counted = args.deliveries - WARMUP
    print(f"delivery stored -> run_job called: {args.deliveries} deliveries, one every "
          f"{args.interval_ms:g} ms, first {WARMUP} not counted ({counted} measured); "
          f"tick {tick:g} s, concurrency 2 per worker")
    for scenario, result in results.items():
        print(f"  {scenario.name:<48} p50 {result.pct(50):8.2f} ms   p95 {result.pct(95):8.2f} ms"
              f"   max {max(result.latencies) * 1000:8.2f} ms   ran twice: {result.duplicates}")
    sqlite1, sqlite2 = Scenario("sqlite", 1), Scenario("sqlite", 2)
    pg1, pg2 = Scenario("postgres", 1), Scenario("postgres", 2)
    print("ratios:")
    pairs = [("postgres / sqlite, 1 worker", pg1, sqlite1),
             ("postgres / sqlite, 2 workers", pg2, sqlite2),
             ("2 workers / 1, sqlite", sqlite2, sqlite1),
             ("2 workers / 1, postgres", pg2, pg1),
             ("receiver apart, tick only / together (pg, 2)",
              Scenario("postgres", 2, receiver_apart=True), pg2),
             ("receiver apart, NOTIFY / together (pg, 2)",
              Scenario("postgres", 2, receiver_apart=True, listen=True), pg2)]
    for label, top, bottom in pairs:
        if top in results:
            print(f"  {label:<46} {ratio(results, top, bottom)}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--deliveries", type=int, default=300)
    parser.add_argument("--interval-ms", type=float, default=20.0)
    parser.add_argument("--postgres-url", default=None)
    parser.add_argument("--no-apart", action="store_true",
                        help="skip the receiver-apart scenario (it waits on the tick)")
    args = parser.parse_args()
    if args.deliveries <= WARMUP + 1:
        parser.error(f"--deliveries must be above {WARMUP + 1}")
    server = postgres_server(args.postgres_url)
    scenarios = [Scenario("sqlite", 1), Scenario("sqlite", 2),
                 Scenario("postgres", 1), Scenario("postgres", 2)]
    if not args.no_apart:
        scenarios += [Scenario("postgres", 2, receiver_apart=True),
                      Scenario("postgres", 2, receiver_apart=True, listen=True)]
    results: dict[Scenario, Result] = {}
    with tempfile.TemporaryDirectory() as tmp:
        settings = settings_for("sqlite://", tmp)
        tick = settings.scheduler.tick_seconds
        # The planner asks the local forge who may trigger work: the repository must exist.
        admin.init_repo(settings.local_root, "acme/hello", REPO / "examples" / "hello-service")
        for scenario in scenarios:
            with database(scenario.backend, server, Path(tmp)) as url:
                results[scenario] = run_scenario(url, scenario, deliveries(args.deliveries),
                                                 args.interval_ms / 1000, tmp)
            print(f"  done: {scenario.name}", file=sys.stderr)
    report(results, args, tick)


if __name__ == "__main__":
    main()
