from datetime import timedelta

from sqlalchemy import inspect, update

from bot.store import Store, open_store
from bot.store.db import schema_status
from bot.store.models import Job, utcnow


def new_job(store: Store, key: str = "local:acme/hello:issue:1"):
    return store.create_job(trigger_key=key, forge="local", repo="acme/hello",
                            default_branch="main", issue_number=1, title="t",
                            requested_by="ada", delivery_row=None)


def test_migrations_create_every_table(store):
    names = set(inspect(store.engine).get_table_names())
    assert {"deliveries", "jobs", "attempts", "job_events", "alembic_version"} <= names
    current, head = schema_status(store.engine)
    assert current == head == "0001"


def test_migrating_twice_is_harmless(settings, store):
    again = open_store(settings.store_url)
    assert again.list_jobs() == []


def test_a_delivery_is_stored_once_and_secret_headers_are_dropped(store):
    headers = {"X-Forgebot-Delivery": "d1", "X-Forgebot-Signature-256": "sha256=abc",
               "X-Gitlab-Token": "tok", "Content-Type": "application/json"}
    row, created = store.record_delivery("local", "d1", "issues", headers, b"{}")
    again, created_again = store.record_delivery("local", "d1", "issues", headers, b"{}")
    assert created and not created_again and row == again
    [pending] = store.pending_deliveries()
    assert set(pending.headers) == {"X-Forgebot-Delivery", "Content-Type"}


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


def test_finish_refuses_a_lost_lease(store):
    new_job(store)
    claim = store.claim_next("host:1:a", 60)
    assert not store.finish(claim, "host:9:z", "submitted", failed=False)


def test_expired_lease_requeues_then_gives_up_after_max_attempts(store):
    job = new_job(store)
    for attempt in (1, 2):
        claim = store.claim_next("host:1:a", 60)
        assert claim.attempt_number == attempt
        with store._sessions.begin() as s:  # age the lease as a dead worker would leave it
            s.execute(update(Job).values(lease_expires_at=utcnow() - timedelta(seconds=1)))
        assert store.recover(lambda _owner: False, max_attempts=2) == [job.id]
    view = store.get_job(job.id)
    assert (view.state, view.outcome) == ("failed", "worker_lost")


def test_dead_owner_requeues_before_the_lease_expires(store):
    job = new_job(store)
    store.claim_next("host:1:a", 600)
    assert store.recover(lambda owner: owner == "host:1:a", max_attempts=3) == [job.id]
    assert store.get_job(job.id).state == "queued"


def test_idle_means_no_pending_delivery_and_no_active_job(store):
    assert store.is_idle()
    store.record_delivery("local", "d1", "issues", {}, b"{}")
    assert not store.is_idle()
