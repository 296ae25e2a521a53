"""The dispatcher under the policy's queue limits, with a real store and the real local forge:
held jobs wait with their reason, and queued jobs are told their place and reason only when
either changes. The job runner is a plain function standing in for the pipeline."""

import threading

from bot.config import load_settings
from bot.errors import ForgeError
from bot.forges import build_forges
from bot.pipeline.planner import Planner
from bot.policy.model import Limits, Policy
from bot.scheduler import QUEUE_SHOWN, Dispatcher
from bot.store import open_store
from tests.conftest import SECRET, labeled_payload, signed, with_local_repo

REASON = "waiting: acme/hello has 1 running job (limits.concurrent_jobs_per_repo = 1)"


class Harness:
    """A dispatcher with two worker slots whose jobs run until the test releases them."""

    def __init__(self, tmp_path, limits: Limits) -> None:
        self.settings = with_local_repo(load_settings(None, environ={
            "FORGEBOT_DATA_DIR": str(tmp_path), "FORGEBOT_FORGES__LOCAL__SECRET": SECRET,
            "FORGEBOT_SCHEDULER__CONCURRENCY": "2"}))
        self.store = open_store(self.settings.store_url)
        planner = Planner(self.store, build_forges(self.settings), Policy(limits=limits),
                          self.settings.bot_user)
        self.told: list[tuple[int, int | None, str]] = []
        self.refuse = False
        self.release: dict[int, threading.Event] = {}
        self.dispatcher = Dispatcher(self.store, planner, self.settings, self._run,
                                     on_waiting=self._told)

    def _told(self, job, position, reason) -> None:
        if self.refuse:
            raise ForgeError("the forge is down")
        self.told.append((job.issue_number, position, reason))

    def _run(self, lease) -> None:
        self.release.setdefault(lease.claim.job.id, threading.Event()).wait(30)
        self.store.finish(lease.claim, lease.owner, "submitted", failed=False)

    def deliver(self, number: int) -> None:
        headers, body = signed("issues", labeled_payload(number=number))
        self.store.record_delivery("local", headers["X-Forgebot-Delivery"], "issues", headers,
                                   body)

    def tick(self) -> list[int]:
        return [lease.claim.job.issue_number for lease in self.dispatcher.tick()]

    def finish(self, issue: int) -> None:
        job = next(j for j in self.store.list_jobs() if j.issue_number == issue)
        self.release.setdefault(job.id, threading.Event()).set()
        self.dispatcher.wait_idle(timeout=30)


def test_held_jobs_are_told_their_place_and_reason_only_when_it_changes(tmp_path):
    h = Harness(tmp_path, Limits(concurrent_jobs_per_repo=1))
    try:
        for n in (1, 2, 3):
            h.deliver(n)
        assert h.tick() == [1]  # a free slot is left, but the repository's limit holds 2, 3
        assert h.told == [(2, 1, REASON), (3, 2, REASON)]
        assert h.tick() == []
        assert h.told == [(2, 1, REASON), (3, 2, REASON)]  # nothing changed: nothing told
        h.finish(1)
        h.told.clear()
        assert h.tick() == [2]
        assert h.told == [(3, 1, REASON)]
        h.finish(2)
        assert h.tick() == [3]
        # Job 2 queued again (/retry) with the same place and reason it was last told: it ran
        # since, and its comment shows that run, so it is told again.
        second = next(j for j in h.store.list_jobs() if j.issue_number == 2)
        assert h.store.requeue(second.id, mode="retry", feedback="", by="ada")
        h.told.clear()
        assert h.tick() == []
        assert h.told == [(2, 1, REASON)]
        h.finish(3)
        assert h.tick() == [2]
        h.finish(2)
        assert h.store.count_jobs() == {"done": 3}
    finally:
        for event in h.release.values():
            event.set()
        h.dispatcher.stop()
        h.store.engine.dispose()


def test_jobs_waiting_for_a_worker_are_told_their_place_without_a_reason(tmp_path):
    h = Harness(tmp_path, Limits(concurrent_jobs_per_repo=5))
    try:
        for n in (1, 2, 3):
            h.deliver(n)
        assert sorted(h.tick()) == [1, 2]
        assert h.told == [(3, 1, "")]
        # A task's job has no issue to comment on: it is never told.
        h.store.create_job(trigger_key="task:1", forge="local", repo="acme/hello",
                           default_branch="main", issue_number=0, title="a task",
                           requested_by="ada", delivery_row=None, kind="task",
                           task_text="Add farewell.")
        assert h.tick() == []
        assert h.told == [(3, 1, "")]
    finally:
        for event in h.release.values():
            event.set()
        h.dispatcher.stop()
        h.store.engine.dispose()


def test_a_forge_that_refuses_is_asked_again_next_round(tmp_path):
    h = Harness(tmp_path, Limits(concurrent_jobs_per_repo=1))
    try:
        h.deliver(1)
        h.deliver(2)
        h.refuse = True
        assert h.tick() == [1]
        assert h.told == []
        waiting = next(j for j in h.store.list_jobs() if j.issue_number == 2)
        assert not h.store.has_record(waiting.id, QUEUE_SHOWN)
        h.refuse = False
        h.tick()
        assert h.told == [(2, 1, REASON)]
        assert h.store.has_record(waiting.id, QUEUE_SHOWN)
    finally:
        for event in h.release.values():
            event.set()
        h.dispatcher.stop()
        h.store.engine.dispose()
