"""The dispatcher: plans deliveries, recovers lost jobs and claims queued ones with a lease.

APScheduler calls ``tick`` on an interval and again at once whenever ``wake`` is called (a
delivery was stored). Tests call ``tick(inline=True)`` by hand and run the claimed jobs in
their own thread, so nothing waits on the clock.

Claims follow the bot-wide policy's queue limits (``bot.pipeline.limits``): a job a limit
holds back waits with its reason, and after each round the jobs still queued are told their
position and reason through ``on_waiting`` (the service edits their status comments), only
when either changed since they were last told.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime

from apscheduler.schedulers.background import BackgroundScheduler

from bot.config import Settings
from bot.errors import ForgeError
from bot.forges.base import Forge
from bot.metrics import Metrics
from bot.pipeline.lease import Lease
from bot.pipeline.limits import hold_for
from bot.pipeline.planner import Planner
from bot.pipeline.report import Status, status_comment, status_marker
from bot.store import JobView, Store
from bot.store.models import utcnow

log = logging.getLogger(__name__)


RunJob = Callable[[Lease], None]
# Told a queued job's place in the queue (None beyond SHOWN_POSITIONS) and why it waits ("":
# for a free worker). May raise ForgeError: the dispatcher tells it again next round.
OnWaiting = Callable[[JobView, int | None, str], None]
# The job event that records what a queued job was last told, so it is told only changes.
QUEUE_SHOWN = "queue.shown"
# Beyond this place a job is told only that it is queued: every claim moves every later job
# up one place, and editing a long queue's comments on each claim would be a flood.
SHOWN_POSITIONS = 20
QUEUE_SCAN = 1000  # the queued jobs looked at for positions after a round


def make_owner() -> str:
    """A worker identity: host, pid and a token that differs for every process start."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def owner_is_dead(owner: str, me: str) -> bool:
    """True when ``owner`` is a process on this host that no longer runs (or an earlier us)."""
    try:
        host, pid_text, token = owner.rsplit(":", 2)
        pid = int(pid_text)
    except ValueError:
        return False
    my_host, my_pid, my_token = me.rsplit(":", 2)
    if host != my_host:
        return False  # another machine: only its lease expiry tells
    if pid == int(my_pid):
        return token != my_token
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def status_updater(forges: Mapping[str, Forge]) -> OnWaiting:
    """An ``on_waiting`` that shows a queued job in its issue's status comment (the one the
    attempt edits once it runs), with its position and the reason it waits."""

    def show(job: JobView, position: int | None, reason: str) -> None:
        forge = forges.get(job.forge)
        if forge is None:
            raise ForgeError(f"forge {job.forge!r} is not configured")
        status = Status(job.id, attempt=0, queued=True, position=position, wait_reason=reason)
        forge.upsert_comment(job.repo, job.issue_number, status_marker(job.id),
                             status_comment(status))

    return show


class Dispatcher:
    """Claims and runs jobs within ``settings.scheduler.concurrency``."""

    def __init__(
        self, store: Store, planner: Planner, settings: Settings, run_job: RunJob,
        *, owner: str | None = None, metrics: Metrics | None = None,
        on_waiting: OnWaiting | None = None,
    ) -> None:
        self.store = store
        self.planner = planner
        self.metrics = metrics
        self.on_waiting = on_waiting
        self.settings = settings
        self.run_job = run_job
        self.owner = owner or make_owner()
        self._limit = settings.scheduler.concurrency
        self._pool = ThreadPoolExecutor(max_workers=self._limit, thread_name_prefix="job")
        self._active: dict[int, tuple[Lease, Future[None]]] = {}
        self._lock = threading.Lock()
        self._tick_lock = threading.Lock()
        self._again = threading.Event()
        self._scheduler: BackgroundScheduler | None = None

    # the loop ---------------------------------------------------------------------------

    def tick(self) -> list[Lease]:
        """One round: plan deliveries, requeue lost jobs, claim as many jobs as there is room for.

        A wake-up that arrives during a tick makes the tick run again before returning, so a
        delivery is never left waiting for the next interval.
        """
        if not self._tick_lock.acquire(blocking=False):
            self._again.set()
            return []
        started: list[Lease] = []
        try:
            while True:
                self._again.clear()
                started += self._round()
                if not self._again.is_set():
                    return started
        finally:
            self._tick_lock.release()

    def _round(self) -> list[Lease]:
        self.store.release_deliveries(lambda o: owner_is_dead(o, self.owner))
        self.planner.plan_pending(self.owner)
        self.store.recover(lambda o: owner_is_dead(o, self.owner),
                           self.settings.scheduler.max_attempts)
        started = []
        # Read every round: the planner's policy is the bot-wide one, limits included.
        hold = hold_for(self.planner.policy.limits)
        while self.free_slots() > 0:
            claim = self.store.claim_next(self.owner, self.settings.scheduler.lease_seconds,
                                          hold)
            if claim is None:
                break
            lease = Lease(claim, self.owner)
            if self.metrics is not None and claim.attempt_number == 1:
                waited = (utcnow() - claim.job.created_at).total_seconds()
                self.metrics.queue_wait.observe(max(waited, 0.0))
            log.info("job claimed", extra={"job": claim.job.id, "attempt": claim.attempt_id})
            with self._lock:
                self._active[claim.job.id] = (lease, self._pool.submit(self._run, lease))
            started.append(lease)
        if self.on_waiting is not None:
            self._show_waiting(self.on_waiting)
        return started

    def _show_waiting(self, on_waiting: OnWaiting) -> None:
        """Tell each queued job of an issue its position and reason, when either changed
        since it was last told (or it ran since: its comment then shows that run)."""
        queued = self.store.queued(QUEUE_SCAN)
        last = self.store.latest_events([job.id for job in queued],
                                        (QUEUE_SHOWN, "attempt.started"))
        for place, job in enumerate(queued, start=1):
            if job.issue_number <= 0:
                continue  # a spec's or a task's job has no issue to comment on
            position = place if place <= SHOWN_POSITIONS else None
            shown = {"position": position, "reason": job.wait_reason}
            if last.get(job.id) == (QUEUE_SHOWN, shown):
                continue
            try:
                on_waiting(job, position, job.wait_reason)
            except ForgeError as exc:
                log.warning("could not show a queued job's status: %s", exc,
                            extra={"job": job.id})
                continue
            self.store.add_event(job.id, QUEUE_SHOWN, shown)

    def _run(self, lease: Lease) -> None:
        try:
            self.run_job(lease)
        except Exception:
            # The pipeline records its own failures; this is the last line of defence so a
            # bug never kills the worker thread silently. The lease expires and recovery
            # requeues the job.
            log.exception("job crashed", extra={"job": lease.claim.job.id})
        finally:
            with self._lock:
                self._active.pop(lease.claim.job.id, None)
            self.wake()

    def free_slots(self) -> int:
        with self._lock:
            return self._limit - len(self._active)

    def renew_leases(self) -> None:
        """Extend the leases of running jobs; a job whose lease was lost is told to stop."""
        with self._lock:
            leases = [lease for lease, _ in self._active.values()]
        for lease in leases:
            if not self.store.renew_lease(lease.claim.job.id, self.owner,
                                          self.settings.scheduler.lease_seconds):
                lease.lost.set()

    def wait_idle(self, timeout: float | None = None) -> None:
        """Block until every job started so far has finished (for tests and ``run``)."""
        with self._lock:
            futures = [f for _, f in self._active.values()]
        for future in futures:
            future.result(timeout=timeout)

    # APScheduler wiring -----------------------------------------------------------------

    def start(self) -> None:
        """Tick on an interval, renew leases, and accept wake-ups."""
        scheduler = BackgroundScheduler(timezone="UTC")
        scheduler.add_job(self.tick, "interval", id="tick", coalesce=True, max_instances=1,
                          seconds=self.settings.scheduler.tick_seconds,
                          next_run_time=datetime.now().astimezone())
        scheduler.add_job(self.renew_leases, "interval", id="leases", coalesce=True,
                          max_instances=1,
                          seconds=max(self.settings.scheduler.lease_seconds / 3, 1))
        scheduler.start()
        self._scheduler = scheduler

    def every(self, seconds: float, job_id: str, func: Callable[[], object]) -> None:
        """Run ``func`` on an interval too (housekeeping such as the sandbox reaper); a
        failure is logged and the next run tries again."""
        if self._scheduler is None:
            raise RuntimeError("start() the dispatcher first")

        def guarded() -> None:
            try:
                func()
            except Exception:
                log.exception("housekeeping failed", extra={"task": job_id})

        self._scheduler.add_job(guarded, "interval", id=job_id, seconds=seconds,
                                coalesce=True, max_instances=1)

    def wake(self) -> None:
        """Run a tick now (or right after the one in progress)."""
        self._again.set()
        if self._scheduler is not None and self._scheduler.running:
            self._scheduler.modify_job("tick", next_run_time=datetime.now().astimezone())

    def stop(self, wait: bool = True) -> None:
        if self._scheduler is not None and self._scheduler.running:
            self._scheduler.shutdown(wait=wait)
        self._pool.shutdown(wait=wait)
