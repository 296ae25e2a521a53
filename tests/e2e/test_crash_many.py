"""Many jobs while ``forgebot serve`` is killed with SIGKILL again and again (issue 9, item 1).

A feeder files N labelled issues on the local forge and delivers their webhooks to the
running receiver, redelivering each one (same delivery id, as a forge does) until it is
acknowledged. Meanwhile the serve process is killed at seeded random moments K times and
restarted. When the last process has drained the queue, the store and the forge must show:
every delivery planned exactly once, one job per trigger, one pull request per job, one
status comment per job, every job finished with a named outcome, no lease held and no
sandbox container or setup snapshot of ours left behind.

``make test`` runs the reduced form (N=30, K=6); ``FORGEBOT_TEST_FULL=1`` runs N=200, K=20.
``scheduler.max_attempts`` is 20 (its ceiling): a kill costs every job then running one
attempt, and this test is about losing nothing, not about the ``worker_lost`` limit.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import statistics
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pytest
import requests
from sqlalchemy import func, or_, select

from bot.config import Settings, load_settings
from bot.forges.local import admin, webhook
from bot.store import Store, open_store
from bot.store.models import Delivery, Job
from bot.store.queries import JobView
from tests.conftest import REPO
from tests.e2e.conftest import REPO_NAME, Live, e2e_env
from tests.e2e.test_crash_resume import free_port, start_serve

FULL = os.environ.get("FORGEBOT_TEST_FULL") == "1"
N_JOBS, KILLS = (200, 20) if FULL else (30, 6)
# Other sizes, to explore (not used by make test): FORGEBOT_TEST_CRASH=N,K
if os.environ.get("FORGEBOT_TEST_CRASH"):
    N_JOBS, KILLS = map(int, os.environ["FORGEBOT_TEST_CRASH"].split(","))
SEED = 9  # the issue's number: the kill moments are the same on every run

pytestmark = [pytest.mark.docker, pytest.mark.slow,
              pytest.mark.timeout(3600 if FULL else 900)]


@dataclass
class Feeder:
    """Files the issues and delivers their webhooks, each until the receiver says 2xx.

    A delivery keeps its id across retries, so a retry whose first try was stored (the
    answer lost to a kill) must be recognised as the same delivery, not planned twice.
    """

    settings: Settings
    url: str
    secret: str
    count: int
    rng: random.Random
    posts: int = 0  # HTTP requests made, retries included
    # Issue numbers, as the forge gave them: pull requests share the sequence with issues.
    numbers: list[int] = field(default_factory=list)
    done: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None

    def run(self) -> None:
        try:
            for i in range(1, self.count + 1):
                number, deliveries = admin.create_issue(
                    self.settings.local_root, REPO_NAME, f"Add a farewell, take {i}",
                    "Add `farewell(name)` next to `greet`, with tests.",
                    labels=["forgebot"], author="ada")
                self.numbers.append(number)
                for d in deliveries:
                    self._deliver(d.event, json.dumps(d.payload).encode())
                # Arrivals spread over most of the run (a job takes several seconds), so
                # kills also land while deliveries are being received and planned.
                time.sleep(self.rng.uniform(0, 5))
        except BaseException as exc:  # surfaced by the test thread
            self.error = exc
        finally:
            self.done.set()

    def _deliver(self, event: str, body: bytes) -> None:
        headers = webhook.signed_headers(self.secret, event, body)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            self.posts += 1
            try:
                response = requests.post(self.url, data=body, headers=headers, timeout=5)
            except requests.RequestException:
                response = None  # down (being killed or restarting): try again shortly
            if response is not None and 200 <= response.status_code < 300:
                return
            if response is not None and response.status_code < 500:
                raise AssertionError(f"receiver refused a delivery: {response.status_code}")
            time.sleep(0.2)
        raise AssertionError("a delivery was never acknowledged")


@dataclass
class Run:
    env: dict[str, str]
    log: Path
    pids: list[int] = field(default_factory=list)  # every serve process started, for docker

    def start(self) -> subprocess.Popen[bytes]:
        proc = start_serve(self.env, self.log)
        self.pids.append(proc.pid)
        return proc


def crash_env(data: Path, transcripts: Path, port: int) -> dict[str, str]:
    env = e2e_env(data, transcripts / "add_farewell.yaml")
    env.update({
        "FORGEBOT_WEB__PORT": str(port),
        "FORGEBOT_FORGES__LOCAL__RECEIVER_URL": f"http://127.0.0.1:{port}/webhooks/local",
        "FORGEBOT_SCHEDULER__CONCURRENCY": "2",
        # Hundreds of jobs of one user on one repository: queue limits opened wide.
        "FORGEBOT_POLICY_FILE": str(REPO / "policies" / "high-volume.yml"),
        "FORGEBOT_SCHEDULER__TICK_SECONDS": "1",
        # The shortest lease allowed: a worker on another host would be recovered this fast.
        # Here the dead owner's pid is what frees its jobs, at the next tick.
        "FORGEBOT_SCHEDULER__LEASE_SECONDS": "10",
        "FORGEBOT_SCHEDULER__MAX_ATTEMPTS": "20",
    })
    return env


def wait_idle(store: Store, feeder: Feeder, proc: subprocess.Popen[bytes], log: Path,
              timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"serve exited:\n{log.read_text()[-3000:]}")
        if feeder.done.is_set() and store.is_idle():
            return
        time.sleep(0.5)
    raise AssertionError(f"not idle after {timeout:.0f}s: deliveries {store.delivery_counts()}, "
                         f"jobs {store.count_jobs()}")


def our_leftovers(pids: list[int]) -> tuple[list[str], list[str]]:
    """Sandbox containers and setup snapshots still present whose owner was one of our serve
    processes. Other tests may run sandboxes on this engine at the same time: theirs are not
    counted. An owner is ``host:pid:token``."""
    def ours(owner: str) -> bool:
        parts = owner.strip().rsplit(":", 2)
        return len(parts) == 3 and parts[1].isdigit() and int(parts[1]) in pids

    def lines(*args: str) -> list[str]:
        out = subprocess.run(["docker", *args], check=True, capture_output=True, text=True)
        return [line for line in out.stdout.splitlines() if line.strip()]

    containers = lines("ps", "-a", "--filter", "label=forgebot.session=1",
                       "--format", '{{.ID}} {{.Label "forgebot.owner"}}')
    images = lines("images", "-q", "--filter", "label=forgebot.snapshot=1")
    image_owners = lines("image", "inspect", "--format",
                         '{{.Id}} {{index .Config.Labels "forgebot.owner"}}', *images) \
        if images else []
    return ([c for c in containers if ours(c.partition(" ")[2])],
            [i for i in image_owners if ours(i.partition(" ")[2])])


def stage_medians(store: Store, jobs: list[JobView]) -> dict[str, float]:
    """Median seconds per finished stage: where a job's time goes, to size N and K."""
    took: dict[str, list[float]] = {}
    for job in jobs:
        begun: dict[str, datetime] = {}
        for e in store.events(job.id):
            at = datetime.fromisoformat(e["at"].removesuffix("Z"))
            stage = e["data"].get("stage", "")
            if e["kind"] == "stage.started":
                begun[stage] = at
            elif e["kind"] == "stage.finished" and stage in begun:
                took.setdefault(stage, []).append((at - begun[stage]).total_seconds())
    return {stage: round(statistics.median(s), 1) for stage, s in took.items()}


def kill_and_restart(run: Run, proc: subprocess.Popen[bytes], store: Store,
                     rng: random.Random, progress: int) -> subprocess.Popen[bytes]:
    """SIGKILL ``proc`` at a random moment, then start a new serve process.

    Mostly the kill waits until ``progress`` jobs have finished and then a random 0-4 s, so
    kills spread over the whole run and land in every stage of the jobs running then (a
    job takes several seconds here) while every job still gets attempts that finish. One
    kill in four comes within a second of the start instead: during recovery, reaping of
    orphaned sandboxes and planning of the deliveries that waited.
    """
    if rng.random() < 0.25:
        time.sleep(rng.uniform(0.1, 1.0))
    else:
        deadline = time.monotonic() + 600
        while (store.count_jobs().get("done", 0) + store.count_jobs().get("failed", 0)
               < progress and time.monotonic() < deadline):
            time.sleep(0.2)
        time.sleep(rng.uniform(0.0, 4.0))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return run.start()


def test_many_jobs_under_repeated_sigkill(tmp_path: Path, transcripts: Path) -> None:
    rng = random.Random(SEED)
    env = crash_env(tmp_path / "data", transcripts, free_port())
    settings = load_settings(None, environ=env)
    admin.init_repo(settings.local_root, REPO_NAME, REPO / "examples" / "hello-service")
    store = open_store(settings.store_url)
    run = Run(env, tmp_path / "serve.log")
    feeder = Feeder(settings, env["FORGEBOT_FORGES__LOCAL__RECEIVER_URL"],
                    env["FORGEBOT_FORGES__LOCAL__SECRET"], N_JOBS, rng=random.Random(SEED + 1))
    started = time.monotonic()

    proc = run.start()
    threading.Thread(target=feeder.run, daemon=True).start()
    for kill in range(1, KILLS + 1):
        proc = kill_and_restart(run, proc, store, rng, kill * N_JOBS // (KILLS + 1))
    try:
        wait_idle(store, feeder, proc, run.log, timeout=1800 if FULL else 420)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)
    assert feeder.error is None, feeder.error
    elapsed = time.monotonic() - started

    jobs = store.list_jobs(limit=N_JOBS * 2)
    deliveries = store.delivery_counts()
    pulls = admin.list_pulls(settings.local_root, REPO_NAME)
    outcomes = Counter(f"{j.state}/{j.outcome}" for j in jobs)
    stages = stage_medians(store, jobs)
    attempts = Counter(sum(e["kind"] == "attempt.started" for e in store.events(j.id))
                       for j in jobs)
    comments_per_job = Counter(
        sum(front.get("author") == settings.bot_user
            for front, _ in admin.show_issue(settings.local_root, REPO_NAME, j.issue_number)[2])
        for j in jobs)
    with store.engine.connect() as db:
        leases = db.scalar(select(func.count()).select_from(Job).where(
            or_(Job.lease_owner.is_not(None), Job.lease_expires_at.is_not(None))))
    containers, snapshots = our_leftovers(run.pids)
    print(f"\ncrash run: {N_JOBS} issues, {KILLS} SIGKILLs, {len(run.pids)} serve processes, "
          f"{elapsed:.0f}s; {feeder.posts} webhook posts for {2 * N_JOBS} deliveries; "
          f"deliveries {dict(deliveries)}; jobs {len(jobs)} {dict(outcomes)}; "
          f"attempts per job {dict(sorted(attempts.items()))}; pulls {len(pulls)}; "
          f"bot comments per issue {dict(comments_per_job)}; leases held {leases}; "
          f"containers left {len(containers)}, snapshots left {len(snapshots)}; "
          f"median stage seconds {stages}")

    # Every delivery (an "opened" and a "labeled" per issue) stored once and planned once.
    # Each restart also reconciles (a pass over the local forge at start), and it may find a
    # labelled issue before its webhook is planned: then reconciliation made the job, and the
    # late delivery is a repeat of it ("already exists"), never a second job.
    assert sum(deliveries.values()) == 2 * N_JOBS, deliveries
    assert set(deliveries) <= {"job", "ignored"}, deliveries
    with store.engine.connect() as db:
        notes = db.execute(select(Delivery.status, Delivery.note)).all()
    found_first = [n for status, n in notes if status == "ignored" and "already exists" in n]
    assert deliveries["job"] + len(found_first) == N_JOBS, deliveries
    assert all(job.delivery_id is None for job in jobs if job.trigger_key in
               {f"local:{REPO_NAME}:issue:{n.split(':issue:')[1].split()[0]}"
                for n in found_first})
    # One job per trigger.
    assert len(jobs) == N_JOBS
    assert len({j.trigger_key for j in jobs}) == N_JOBS
    assert sorted(j.issue_number for j in jobs) == feeder.numbers
    # No job stuck, each with a named outcome; the replayed change passes its tests.
    assert outcomes == {"done/submitted": N_JOBS}, run.log.read_text()[-3000:]
    # One pull request per job, from the job's own branch, and the job knows it.
    assert len(pulls) == N_JOBS
    assert sorted(str(p["head"]) for p in pulls) == sorted(str(j.branch) for j in jobs)
    assert {int(p["number"]) for p in pulls} == {j.pull_number for j in jobs}
    # One status comment per job, edited in place by every attempt.
    assert comments_per_job == {1: N_JOBS}
    assert leases == 0
    assert containers == [] and snapshots == []


def test_deliveries_of_a_planner_killed_mid_batch_are_planned_at_once(
    live_factory: Callable[[Path], Live], transcripts: Path
) -> None:
    """The crash that the random kills above hit only rarely, made on purpose.

    ``Planner.plan_pending`` takes up to 100 deliveries at once and marks them ``planning``
    by its owner before planning them one by one, so a SIGKILL in that loop leaves the
    rest taken by a dead process. Here a process that has exited takes them (the store's
    own call, as the killed planner made it); the next worker must plan them right away.
    """
    live = live_factory(transcripts / "add_farewell.yaml")
    live.file_issue("Add a farewell")
    gone = subprocess.Popen(["true"])
    gone.wait()  # its pid names a process that no longer runs, as a SIGKILLed one
    taken = live.service.store.take_deliveries(f"{socket.gethostname()}:{gone.pid}:deadbeef")
    assert len(taken) == 2  # "opened" and "labeled"

    live.run_until_idle()  # raises when the deliveries stay taken
    [job] = live.service.store.list_jobs()
    assert (job.state, job.outcome) == ("done", "submitted")
