"""The dispatcher with a real store and the real local forge; the job runner is a plain
function standing in for the pipeline (the seam the service plugs the pipeline into)."""

import threading

from bot.config import load_settings
from bot.forges import build_forges
from bot.pipeline.planner import Planner
from bot.policy.model import Policy
from bot.scheduler import Dispatcher, owner_is_dead
from tests.conftest import SECRET, labeled_payload, signed, with_local_repo


def make(tmp_path, run_job, **env):
    settings = with_local_repo(load_settings(None, environ={
        "FORGEBOT_DATA_DIR": str(tmp_path), "FORGEBOT_FORGES__LOCAL__SECRET": SECRET,
        **{f"FORGEBOT_SCHEDULER__{k.upper()}": str(v) for k, v in env.items()}}))
    from bot.store import open_store

    store = open_store(settings.store_url)
    planner = Planner(store, build_forges(settings), Policy(), settings.bot_user)
    return Dispatcher(store, planner, settings, run_job), store


def deliver(store, number):
    headers, body = signed("issues", labeled_payload(number=number))
    store.record_delivery("local", headers["X-Forgebot-Delivery"], "issues", headers, body)



def test_a_tick_plans_claims_and_runs(tmp_path):
    ran = []
    dispatcher, store = make(tmp_path, lambda lease: ran.append(lease.claim.job.issue_number))
    deliver(store, 1)
    deliver(store, 2)
    dispatcher.tick()
    dispatcher.wait_idle(timeout=10)
    assert sorted(ran) == [1, 2]
    dispatcher.stop()


def test_concurrency_limit_holds(tmp_path):
    release = threading.Event()
    running = []

    def run(lease):
        running.append(lease.claim.job.id)
        release.wait(10)
        store.finish(lease.claim, lease.owner, "submitted", failed=False)

    dispatcher, store = make(tmp_path, run, concurrency=1)
    for n in (1, 2, 3):
        deliver(store, n)
    started = dispatcher.tick()
    assert len(started) == 1 and dispatcher.free_slots() == 0
    assert store.count_jobs() == {"queued": 2, "running": 1}
    release.set()
    dispatcher.wait_idle(timeout=10)
    for _ in range(5):
        dispatcher.tick()
        dispatcher.wait_idle(timeout=10)
    assert store.count_jobs() == {"done": 3}
    dispatcher.stop()


def test_wake_runs_a_job_without_waiting_for_the_interval(tmp_path):
    done = threading.Event()

    def run(lease):
        store.finish(lease.claim, lease.owner, "submitted", failed=False)
        done.set()

    dispatcher, store = make(tmp_path, run, tick_seconds=3600)
    dispatcher.start()
    try:
        deliver(store, 1)
        dispatcher.wake()
        assert done.wait(30), "a wake-up did not start the job (the interval is an hour)"
    finally:
        dispatcher.stop()


def test_a_lost_lease_tells_the_job_to_stop(tmp_path):
    holding = threading.Event()
    seen = {}

    def run(lease):
        seen["lease"] = lease
        holding.wait(10)

    dispatcher, store = make(tmp_path, run)
    deliver(store, 1)
    dispatcher.tick()
    job_id = store.list_jobs()[0].id
    assert store.recover(lambda _owner: True, max_attempts=3) == [job_id]  # another worker's view
    dispatcher.renew_leases()
    assert seen["lease"].lost.is_set()
    holding.set()
    dispatcher.stop()


def test_owner_liveness():
    me = "host:100:aaaa"
    assert owner_is_dead("host:100:bbbb", me)  # our pid, an earlier process
    assert not owner_is_dead("host:100:aaaa", me)
    assert not owner_is_dead("elsewhere:1:x", me)  # another machine: only the lease tells
    assert owner_is_dead("host:999999999:x", me)  # no such process
    assert not owner_is_dead("garbage", me)


def test_housekeeping_runs_on_its_own_interval(tmp_path):
    ran = threading.Event()
    dispatcher, _ = make(tmp_path, lambda lease: None, tick_seconds=3600)
    dispatcher.start()
    try:
        dispatcher.every(0.1, "test", ran.set)
        assert ran.wait(30)
    finally:
        dispatcher.stop()
