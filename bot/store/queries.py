"""The store's operations. Every write is one short transaction; claims are atomic updates."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import (
    CursorResult,
    Engine,
    Update,
    and_,
    false,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from bot.errors import StoreError
from bot.store.db import WORK_CHANNEL, is_postgres
from bot.store.models import Attempt, Delivery, Job, JobEvent, TranscriptEntry, utcnow

# Header names that carry a secret or a signature are dropped before a delivery is stored:
# they are needed only to verify, and a stored copy would be a secret at rest.
_SECRET_HEADER_WORDS = ("signature", "token", "authorization", "cookie")
ACTIVE_STATES = ("queued", "running")
# The order workers claim queued jobs in: higher priority first, then the oldest.
_CLAIM_ORDER = (Job.priority.desc(), Job.id)
# Names the lock limited claims take on PostgreSQL (any constant unused elsewhere will do).
_CLAIM_LOCK = 0x666F7271  # "forq"
# Job events the queue limits read. The planner records the ends of a pull request
# (bot.pipeline.planner.PULL_MERGED, PULL_CLOSED; the store cannot import the pipeline) and
# the publish stage records each pull request it opens or updates.
PULL_ENDED = ("pull.merged", "pull.closed")
PULL_PUBLISHED = "pull.published"
# A delivery a planner has taken (``take_deliveries``) and not yet given a final status.
PLANNING = "planning"
UNPLANNED = ("pending", PLANNING)


@dataclass(frozen=True)
class JobView:
    """A job as the API and the pipeline read it (detached from any session)."""

    id: int
    trigger_key: str
    forge: str
    repo: str
    default_branch: str
    issue_number: int
    title: str
    requested_by: str
    state: str
    outcome: str | None
    branch: str | None
    pull_number: int | None
    created_at: datetime
    updated_at: datetime
    kind: str = "issue"
    task_text: str = ""
    priority: int = 0
    wait_reason: str = ""
    delivery_id: int | None = None  # the stored delivery (row id) that made the job, if any

    def as_dict(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out["created_at"] = self.created_at.isoformat() + "Z"
        out["updated_at"] = self.updated_at.isoformat() + "Z"
        return out


@dataclass(frozen=True)
class DeliveryView:
    id: int
    forge: str
    delivery_id: str
    event: str
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True)
class Claim:
    job: JobView
    attempt_id: int
    attempt_number: int


@dataclass(frozen=True)
class Load:
    """What the queue limits look at for one queued job, counted under the claim's lock and
    without the job itself (``bot.pipeline.limits.wait_reason`` decides on it).

    ``opens_pull`` is False when the job already owns an open pull request: its next attempt
    updates that one, so the pull request limits must not hold it back (a revision never
    waits for its own pull request to close).
    """

    repo: str
    requester: str
    running: int  # jobs of the repository running now
    open_pulls: int  # the bot's pull requests on the repository, not merged or closed
    pulls_today: int  # pull requests opened for the requester in the last 24 hours
    attempts_last_hour: int  # attempts started for the repository in the last hour
    opens_pull: bool = True


# Why a queued job must wait (a human reason), or None when it may run now.
Hold = Callable[[Load], str | None]


def safe_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The headers worth keeping: everything but signatures, tokens and credentials."""
    return {
        k: v for k, v in headers.items() if not any(w in k.lower() for w in _SECRET_HEADER_WORDS)
    }


def _delivery_view(row: Delivery) -> DeliveryView:
    return DeliveryView(row.id, row.forge, row.delivery_id, row.event, dict(row.headers),
                        row.body.encode("utf-8"))


def _changed(session: Session, statement: Update) -> int:
    """Rows an UPDATE touched: how a conditional update tells whether it won."""
    return cast(CursorResult[Any], session.execute(statement)).rowcount


def _view(job: Job) -> JobView:
    return JobView(
        id=job.id, trigger_key=job.trigger_key, forge=job.forge, repo=job.repo,
        default_branch=job.default_branch, issue_number=job.issue_number, title=job.title,
        requested_by=job.requested_by, state=job.state, outcome=job.outcome, branch=job.branch,
        pull_number=job.pull_number, created_at=job.created_at, updated_at=job.updated_at,
        kind=job.kind, task_text=job.task_text, priority=job.priority,
        wait_reason=job.wait_reason, delivery_id=job.delivery_id,
    )


class Store:
    """All reads and writes of forgebot's state."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        # PostgreSQL claims with row locks (FOR UPDATE SKIP LOCKED) and wakes other
        # processes with NOTIFY; SQLite has neither, and relies on conditional UPDATEs
        # under its single writer instead.
        self._postgres = is_postgres(engine)

    @contextmanager
    def _tx(self) -> Iterator[Session]:
        try:
            with self._sessions.begin() as session:
                yield session
        except IntegrityError:
            raise
        except SQLAlchemyError as exc:
            raise StoreError(f"store failure: {exc.__class__.__name__}: {exc}") from exc

    def _announce_work(self, s: Session) -> None:
        """PostgreSQL: wake listening workers (``notify.WorkListener``) when ``s`` commits.

        Sent inside the transaction, so it goes out only if the work is really stored.
        """
        if self._postgres:
            s.execute(select(func.pg_notify(WORK_CHANNEL, "")))

    def ping(self) -> None:
        """Raise StoreError when the database does not answer."""
        with self._tx() as s:
            s.execute(select(1))

    # deliveries -------------------------------------------------------------------------

    def record_delivery(
        self, forge: str, delivery_id: str, event: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[int, bool]:
        """Store a delivery once. Returns (row id, False when it was already stored).

        Receiver replicas may store the same redelivery at the same moment: the unique
        (forge, delivery_id) constraint lets one insert win. On PostgreSQL the loser's insert
        waits for the winner's commit, then fails; its transaction is rolled back as the
        session block exits, and the winner's row is read in a fresh one.
        """
        try:
            with self._tx() as s:
                row = Delivery(
                    forge=forge, delivery_id=delivery_id, event=event[:64],
                    headers=safe_headers(headers), body=body.decode("utf-8"),
                )
                s.add(row)
                s.flush()
                self._announce_work(s)
                return row.id, True
        except IntegrityError:
            with self._tx() as s:
                existing = s.scalars(
                    select(Delivery.id).where(
                        Delivery.forge == forge, Delivery.delivery_id == delivery_id
                    )
                ).one()
                return existing, False

    def take_deliveries(
        self, owner: str, limit: int = 100, stale_seconds: int = 300
    ) -> list[DeliveryView]:
        """Pending deliveries for ``owner`` alone to plan, oldest first, marked ``planning``.

        Workers planning at once each get different deliveries, so a delivery costs one
        round of forge calls and replies, not one per worker. The planner then gives each a
        final status with ``mark_delivery``. A delivery left ``planning`` for
        ``stale_seconds`` (its planner died) is taken again.
        """
        now = utcnow()
        takeable = or_(Delivery.status == "pending",
                       and_(Delivery.status == PLANNING,
                            Delivery.processed_at < now - timedelta(seconds=stale_seconds)))
        mark = f"planning by {owner}"[:2000]
        with self._tx() as s:
            query = select(Delivery.id).where(takeable).order_by(Delivery.id).limit(limit)
            if self._postgres:
                query = query.with_for_update(skip_locked=True)
            ids = list(s.scalars(query).all())
            if not ids:
                return []
            # The condition again: without row locks (SQLite) another planner may have taken
            # some of these between the SELECT and this UPDATE.
            s.execute(update(Delivery).where(Delivery.id.in_(ids), takeable)
                      .values(status=PLANNING, note=mark, processed_at=now)
                      .execution_options(synchronize_session=False))
            rows = s.scalars(
                select(Delivery).where(Delivery.id.in_(ids), Delivery.status == PLANNING,
                                       Delivery.note == mark, Delivery.processed_at == now)
                .order_by(Delivery.id)
            ).all()
            return [_delivery_view(r) for r in rows]

    def release_deliveries(self, owner_is_dead: Callable[[str], bool]) -> int:
        """Give back the deliveries a dead planner had taken, so they are planned at once
        rather than after ``take_deliveries``' stale timeout. Returns how many."""
        released = 0
        with self._tx() as s:
            rows = s.execute(select(Delivery.id, Delivery.note)
                             .where(Delivery.status == PLANNING)).all()
            for row_id, note in rows:
                if not owner_is_dead(note.removeprefix("planning by ")):
                    continue
                # The note in the condition: two workers never release the same row twice.
                released += _changed(s, update(Delivery).where(
                    Delivery.id == row_id, Delivery.status == PLANNING, Delivery.note == note
                ).values(status="pending", note=""))
        return released

    def mark_delivery(self, row_id: int, status: str, note: str = "") -> None:
        with self._tx() as s:
            s.execute(
                update(Delivery).where(Delivery.id == row_id)
                .values(status=status, note=note[:2000], processed_at=utcnow())
            )

    def delivery_counts(self) -> dict[str, int]:
        with self._tx() as s:
            rows = s.execute(select(Delivery.status, func.count()).group_by(Delivery.status))
            return {status: count for status, count in rows}

    # jobs -----------------------------------------------------------------------------

    def create_job(
        self, *, trigger_key: str, forge: str, repo: str, default_branch: str,
        issue_number: int, title: str, requested_by: str, delivery_row: int | None,
        kind: str = "issue", task_text: str = "", priority: int = 0,
    ) -> JobView | None:
        """Queue a job for a trigger, or None when that trigger already has one. ``kind``
        ``spec`` or ``task`` jobs carry their text in ``task_text`` (an issue's is read from
        the forge when the job runs)."""
        try:
            with self._tx() as s:
                job = Job(
                    trigger_key=trigger_key, forge=forge, repo=repo,
                    default_branch=default_branch, issue_number=issue_number, title=title[:500],
                    requested_by=requested_by, delivery_id=delivery_row, state="queued",
                    kind=kind, task_text=task_text, priority=priority,
                )
                s.add(job)
                s.flush()
                s.add(JobEvent(job_id=job.id, kind="job.queued",
                               data={"delivery": delivery_row, "trigger": trigger_key}))
                self._announce_work(s)
                return _view(job)
        except IntegrityError:
            return None

    def attempt_state(self, attempt_id: int) -> str | None:
        """The state of one attempt (``running``, ``done``, ``cancelled``, ...), or None."""
        with self._tx() as s:
            return s.scalar(select(Attempt.state).where(Attempt.id == attempt_id))

    def delivery_id_of(self, job_id: int) -> str | None:
        """The forge's id of the delivery that made the job, when a webhook made it."""
        with self._tx() as s:
            return s.scalar(select(Delivery.delivery_id).join(Job, Job.delivery_id == Delivery.id)
                            .where(Job.id == job_id))

    def get_job(self, job_id: int) -> JobView | None:
        with self._tx() as s:
            job = s.get(Job, job_id)
            return _view(job) if job else None

    def job_for_trigger(self, trigger_key: str) -> JobView | None:
        """The job a trigger made, if any (one trigger, one job)."""
        with self._tx() as s:
            job = s.scalars(select(Job).where(Job.trigger_key == trigger_key)).first()
            return _view(job) if job else None

    def job_for_pull(self, forge: str, repo: str, number: int) -> JobView | None:
        """The job whose pull request is ``number`` on ``repo``, if any."""
        with self._tx() as s:
            job = s.scalars(select(Job).where(Job.forge == forge, Job.repo == repo,
                                              Job.pull_number == number)).first()
            return _view(job) if job else None

    def job_for_branch(self, forge: str, repo: str, branch: str) -> JobView | None:
        """The job whose branch is ``branch`` on ``repo``, if any (one job, one branch)."""
        with self._tx() as s:
            job = s.scalars(select(Job).where(Job.forge == forge, Job.repo == repo,
                                              Job.branch == branch)
                            .order_by(Job.id.desc())).first()
            return _view(job) if job else None

    def list_jobs(self, limit: int = 100, state: str | None = None) -> list[JobView]:
        with self._tx() as s:
            query = select(Job).order_by(Job.id.desc()).limit(limit)
            if state:
                query = query.where(Job.state == state)
            return [_view(j) for j in s.scalars(query).all()]

    def count_jobs(self) -> dict[str, int]:
        with self._tx() as s:
            rows = s.execute(select(Job.state, func.count()).group_by(Job.state))
            return {state: count for state, count in rows}

    def update_job(self, job_id: int, **values: Any) -> None:
        allowed = {"branch", "pull_number"}
        if not set(values) <= allowed:
            raise ValueError(f"cannot update {sorted(set(values) - allowed)}")
        with self._tx() as s:
            s.execute(update(Job).where(Job.id == job_id).values(**values))

    # events ---------------------------------------------------------------------------

    def add_event(
        self, job_id: int, kind: str, data: Mapping[str, Any] | None = None,
        attempt_id: int | None = None,
    ) -> None:
        with self._tx() as s:
            s.add(JobEvent(job_id=job_id, attempt_id=attempt_id, kind=kind, data=dict(data or {})))

    def record_once(self, job_id: int, kind: str, key: str,
                    data: Mapping[str, Any] | None = None) -> bool:
        """Append a ``kind`` event whose ``data["key"]`` is ``key``, unless the job already
        has one: True when this call recorded it. This is how a lifecycle step (a merge, a
        review turned into a revision) is done once however often its webhook arrives.

        On PostgreSQL the job's row is locked for the check, so two planners recording the
        same step at once record it once; SQLite has a single writer.
        """
        with self._tx() as s:
            lock = select(Job.id).where(Job.id == job_id)
            if self._postgres:
                lock = lock.with_for_update()
            if s.scalar(lock) is None:
                raise StoreError(f"no job {job_id}")
            if _has_key(s, job_id, kind, key):
                return False
            s.add(JobEvent(job_id=job_id, kind=kind, data={**dict(data or {}), "key": key}))
            return True

    def has_record(self, job_id: int, kind: str, key: str | None = None) -> bool:
        """Whether the job has a ``kind`` event (with ``data["key"] == key``, when given)."""
        with self._tx() as s:
            return _has_key(s, job_id, kind, key)

    def events(self, job_id: int) -> list[dict[str, Any]]:
        with self._tx() as s:
            rows = s.scalars(
                select(JobEvent).where(JobEvent.job_id == job_id).order_by(JobEvent.id)
            ).all()
            return [
                {"id": e.id, "attempt_id": e.attempt_id, "kind": e.kind, "data": e.data,
                 "at": e.created_at.isoformat() + "Z"}
                for e in rows
            ]

    # transcripts ----------------------------------------------------------------------

    def add_transcript(self, job_id: int, attempt_id: int, kind: str, content: str,
                       meta: Mapping[str, Any] | None = None) -> None:
        """Append one entry to an attempt's transcript. The caller redacts ``content``."""
        with self._tx() as s:
            s.add(TranscriptEntry(job_id=job_id, attempt_id=attempt_id, kind=kind,
                                  content=content, meta=dict(meta or {})))

    def redact_transcript(self, job_id: int, attempt_id: int, values: Iterable[str],
                          replacement: str) -> int:
        """Replace each of ``values`` in the stored transcript of one attempt, after the fact:
        for what a gate flags once the entries are stored. The number of entries changed."""
        wanted = sorted({v for v in values if v}, key=len, reverse=True)
        changed = 0
        with self._tx() as s:
            entries = s.scalars(select(TranscriptEntry).where(
                TranscriptEntry.job_id == job_id, TranscriptEntry.attempt_id == attempt_id))
            for entry in entries:
                content = entry.content
                for value in wanted:
                    content = content.replace(value, replacement)
                if content != entry.content:
                    entry.content = content
                    changed += 1
        return changed

    def transcript(self, job_id: int, attempt: int | None = None) -> list[dict[str, Any]]:
        """A job's transcript entries in order, with their attempt number; only attempt
        number ``attempt`` when given."""
        with self._tx() as s:
            query = (select(TranscriptEntry, Attempt.number)
                     .join(Attempt, Attempt.id == TranscriptEntry.attempt_id)
                     .where(TranscriptEntry.job_id == job_id)
                     .order_by(TranscriptEntry.id))
            if attempt is not None:
                query = query.where(Attempt.number == attempt)
            return [
                {"attempt": number, "kind": e.kind, "content": e.content, "meta": e.meta,
                 "at": e.created_at.isoformat() + "Z"}
                for e, number in s.execute(query).all()
            ]

    # claims and leases ----------------------------------------------------------------

    def claim_next(self, owner: str, lease_seconds: int,
                   hold: Hold | None = None) -> Claim | None:
        """Take the queued job with the highest priority, then the oldest, with a lease and
        open an attempt for it.

        With ``hold`` (the queue limits, ``bot.pipeline.limits.hold_for``), a job that
        ``hold`` gives a reason for is passed over and keeps waiting with that reason in
        ``wait_reason``; the next one that may run is taken, so a held job never blocks
        another repository's. Every queued job's reason is brought up to date on the way
        (cleared when none applies any more, and when a job is claimed).

        Safe from any number of workers at once: a job is claimed by exactly one of them,
        and limited claims are serialised, so two workers never both take the last free
        place under a limit.
        """
        with self._tx() as s:
            if hold is not None:
                job = _take_within(s, owner, lease_seconds, hold, postgres=self._postgres)
            elif self._postgres:
                job = _take_locked(s, owner, lease_seconds)
            else:
                job = _take_conditional(s, owner, lease_seconds)
            return None if job is None else _open_attempt(s, job, owner)

    def queued(self, limit: int = 1000) -> list[JobView]:
        """Queued jobs in the order workers claim them: highest priority, then oldest.
        Position 1 is the next job a worker takes, unless a limit holds it back."""
        with self._tx() as s:
            return [_view(j) for j in s.scalars(
                select(Job).where(Job.state == "queued").order_by(*_CLAIM_ORDER).limit(limit)
            ).all()]

    def latest_events(self, job_ids: Collection[int],
                      kinds: Collection[str]) -> dict[int, tuple[str, dict[str, Any]]]:
        """Each job's latest event of one of ``kinds``, as (kind, data), for the jobs that
        have one."""
        if not job_ids:
            return {}
        with self._tx() as s:
            rows = s.execute(select(JobEvent.job_id, JobEvent.kind, JobEvent.data)
                             .where(JobEvent.job_id.in_(list(job_ids)),
                                    JobEvent.kind.in_(list(kinds)))
                             .order_by(JobEvent.id)).all()
            return {job_id: (kind, dict(data) if isinstance(data, dict) else {})
                    for job_id, kind, data in rows}

    def renew_lease(self, job_id: int, owner: str, lease_seconds: int) -> bool:
        """Extend our lease; False when the job is no longer ours."""
        with self._tx() as s:
            return _changed(s,
                update(Job).where(Job.id == job_id, Job.lease_owner == owner,
                                  Job.state == "running")
                .values(lease_expires_at=utcnow() + timedelta(seconds=lease_seconds))
            ) == 1

    def finish(self, claim: Claim, owner: str, outcome: str, *, failed: bool) -> bool:
        """Close the attempt and the job with a named outcome; False if the lease was lost."""
        state = "failed" if failed else "done"
        with self._tx() as s:
            done = _changed(s,
                update(Job).where(Job.id == claim.job.id, Job.lease_owner == owner,
                                  Job.state == "running")
                .values(state=state, outcome=outcome, lease_owner=None, lease_expires_at=None)
            ) == 1
            if not done:
                return False
            s.execute(update(Attempt).where(Attempt.id == claim.attempt_id).values(
                state=state, outcome=outcome, finished_at=utcnow()))
            s.add(JobEvent(job_id=claim.job.id, attempt_id=claim.attempt_id,
                           kind="job.finished", data={"outcome": outcome, "state": state}))
            return True

    def requeue(self, job_id: int, *, mode: str | None, feedback: str, by: str,
                note: Mapping[str, Any] | None = None) -> bool:
        """Queue a finished (or cancelled) job for a new attempt (``/retry``: ``mode``
        "retry", from scratch; ``/revise``: "revise", from its branch with ``feedback``;
        None: the bot retries after a passing fault, keeping what was last asked; others such
        as "approve" and "explain" are read by the pipeline). ``note`` adds keys to the
        request's record. False when the job is queued or running: a command never races an
        attempt."""
        with self._tx() as s:
            moved = _changed(s, update(Job).where(
                Job.id == job_id, Job.state.in_(("done", "failed", "cancelled"))
            ).values(state="queued", outcome=None, lease_owner=None, lease_expires_at=None))
            if moved != 1:
                return False
            data = {**dict(note or {}), "feedback": feedback[:20_000], "by": by}
            if mode is not None:
                data["mode"] = mode
            s.add(JobEvent(job_id=job_id, kind="job.requeued", data=data))
            return True

    def add_feedback(self, job_id: int, feedback: str, *, by: str) -> bool:
        """Add ``feedback`` to a revision that is queued and has not started: a new
        ``job.requeued`` request (mode ``revise``) carrying the earlier feedback and this one,
        so several review comments make one revision. False when the job is not queued for
        a revision (running, finished, or queued for something else)."""
        with self._tx() as s:
            state = s.scalar(select(Job.state).where(Job.id == job_id))
            if state != "queued":
                return False
            latest = s.scalars(
                select(JobEvent).where(JobEvent.job_id == job_id,
                                       JobEvent.kind.in_(("job.requeued", "attempt.started")))
                .order_by(JobEvent.id.desc()).limit(1)
            ).first()
            data = latest.data if latest is not None and isinstance(latest.data, dict) else {}
            if latest is None or latest.kind != "job.requeued" or data.get("mode") != "revise":
                return False
            combined = f"{data.get('feedback', '')}\n\n{feedback}".strip()
            s.add(JobEvent(job_id=job_id, kind="job.requeued",
                           data={"mode": "revise", "feedback": combined[:20_000], "by": by}))
            return True

    def cancel(self, job_id: int, *, by: str) -> bool:
        """Cancel a queued or running job, or one waiting for plan approval. A running
        attempt sees it at its next check and stops without publishing. False when the job
        had already finished."""
        with self._tx() as s:
            moved = _changed(s, update(Job).where(
                Job.id == job_id,
                # A job whose plan waits for /approve is still open: it can be cancelled.
                or_(Job.state.in_(("queued", "running")), Job.outcome == "awaiting_approval"),
            ).values(state="cancelled", outcome="cancelled", lease_owner=None,
                     lease_expires_at=None))
            if moved != 1:
                return False
            s.execute(update(Attempt).where(Attempt.job_id == job_id,
                                            Attempt.state == "running")
                      .values(state="cancelled", outcome="cancelled", finished_at=utcnow()))
            s.add(JobEvent(job_id=job_id, kind="job.cancelled", data={"by": by}))
            return True

    def set_priority(self, job_id: int, priority: int, *, by: str) -> bool:
        """Change a job's priority (a priority label added or removed after it was made); it
        orders the claim whenever the job is queued, now or after a later ``/retry``. False
        when the job has that priority already."""
        with self._tx() as s:
            moved = _changed(s, update(Job).where(Job.id == job_id, Job.priority != priority)
                             .values(priority=priority))
            if moved != 1:
                return False
            s.add(JobEvent(job_id=job_id, kind="job.priority",
                           data={"by": by, "priority": priority}))
            return True

    def last_request(self, job_id: int) -> dict[str, Any]:
        """What the latest ``/retry`` or ``/revise`` asked for ({} for the first attempt)."""
        with self._tx() as s:
            event = s.scalars(
                select(JobEvent).where(JobEvent.job_id == job_id,
                                       JobEvent.kind == "job.requeued",
                                       JobEvent.data.is_not(None))
                .order_by(JobEvent.id.desc()).limit(5)
            ).all()
            for e in event:
                if isinstance(e.data, dict) and e.data.get("mode"):
                    return dict(e.data)
            return {}

    def recover(
        self, owner_is_dead: Callable[[str], bool], max_attempts: int
    ) -> list[int]:
        """Requeue running jobs whose lease expired or whose owner is known dead.

        A job that has used ``max_attempts`` attempts fails with outcome ``worker_lost``
        instead of running forever. Returns the ids of the jobs touched. Workers may run it
        at once: each lost job is requeued (or failed) by exactly one of them.
        """
        now = utcnow()
        touched: list[int] = []
        with self._tx() as s:
            running = s.execute(select(Job.id, Job.lease_owner, Job.lease_expires_at)
                                .where(Job.state == "running").order_by(Job.id)).all()
            lost = [_Lost(*row) for row in running if _is_lost(_Lost(*row), now, owner_is_dead)]
            if lost and self._postgres:
                lost = _lock_lost(s, lost, now, owner_is_dead)
            for job in lost:
                if _release(s, job, now, max_attempts):
                    touched.append(job.job_id)
        return touched

    def is_idle(self) -> bool:
        """No delivery waiting to be planned and no queued or running job."""
        with self._tx() as s:
            pending = s.scalar(select(func.count()).where(Delivery.status.in_(UNPLANNED))) or 0
            active = s.scalar(select(func.count()).where(Job.state.in_(ACTIVE_STATES))) or 0
            return pending == 0 and active == 0


def _has_key(s: Session, job_id: int, kind: str, key: str | None) -> bool:
    """Whether ``job_id`` has a ``kind`` event (whose ``data["key"]`` is ``key``, if given).
    Read in Python: a job has few events of one kind, and JSON paths differ per database."""
    rows = s.scalars(select(JobEvent.data).where(JobEvent.job_id == job_id,
                                                 JobEvent.kind == kind)).all()
    return any(key is None or (isinstance(d, dict) and d.get("key") == key) for d in rows)


# claims and recovery, one transaction each (the caller's) ---------------------------------


def _lease_values(owner: str, lease_seconds: int) -> dict[str, Any]:
    return {"state": "running", "lease_owner": owner, "wait_reason": "",
            "lease_expires_at": utcnow() + timedelta(seconds=lease_seconds)}


def _take_locked(s: Session, owner: str, lease_seconds: int) -> JobView | None:
    """PostgreSQL: lease the first queued job (by priority, then age) no other worker
    holds, in one statement.

    SKIP LOCKED lets concurrent workers each take a different job without waiting on one
    another; the row stays locked until the attempt is recorded and the transaction commits.
    """
    oldest = (select(Job.id).where(Job.state == "queued").order_by(*_CLAIM_ORDER).limit(1)
              .with_for_update(skip_locked=True).scalar_subquery())
    # RETURNING the leased row spares a second round trip to read it.
    job = s.scalars(
        update(Job).where(Job.id == oldest).values(**_lease_values(owner, lease_seconds))
        .returning(Job).execution_options(synchronize_session=False)
    ).one_or_none()
    return None if job is None else _view(job)


def _take_conditional(s: Session, owner: str, lease_seconds: int) -> JobView | None:
    """SQLite (no row locks): the state check in the UPDATE makes the claim atomic."""
    candidates = s.scalars(
        select(Job.id).where(Job.state == "queued").order_by(*_CLAIM_ORDER).limit(5)
    ).all()
    for job_id in candidates:
        taken = _changed(s, update(Job).where(Job.id == job_id, Job.state == "queued")
                         .values(**_lease_values(owner, lease_seconds)))
        if taken == 1:
            job = s.get(Job, job_id)
            if job is None:  # the row is leased by this very transaction
                raise StoreError(f"job {job_id} vanished while being claimed")
            return _view(job)
    return None


def _serialise_claims(s: Session, *, postgres: bool) -> None:
    """Make limited claims run one at a time, so each counts what the previous one took.

    PostgreSQL: a transaction-scoped advisory lock (released at commit), taken before any row
    is touched, so a claimer never holds a row lock while it waits for it. SQLite: a write
    that matches nothing takes the single writer's lock now, before the counts are read;
    otherwise another process could claim between our reads and our write.
    """
    if postgres:
        s.execute(select(func.pg_advisory_xact_lock(_CLAIM_LOCK)))
    else:
        s.execute(update(Job).where(false()).values(wait_reason=Job.wait_reason)
                  .execution_options(synchronize_session=False))


def _take_within(s: Session, owner: str, lease_seconds: int, hold: Hold, *,
                 postgres: bool) -> JobView | None:
    """Lease the first queued job (by priority, then age) that ``hold`` lets run, and store
    every other queued job's reason to wait (or none: waiting for a free worker)."""
    _serialise_claims(s, postgres=postgres)
    queued = [_Queued(*row) for row in s.execute(
        select(Job.id, Job.forge, Job.repo, Job.requested_by, Job.wait_reason)
        .where(Job.state == "queued").order_by(*_CLAIM_ORDER)).all()]
    if not queued:
        return None
    counts = _count_load(s, queued)
    taken: JobView | None = None
    changed: dict[str, list[int]] = {}  # new reason -> the jobs whose reason it becomes
    for job in queued:
        reason = counts.decide(job, hold)
        if reason is None and taken is None:
            taken = _lease(s, job.id, owner, lease_seconds)
            if taken is not None:
                counts.started(job)
                continue
        if (reason or "") != job.wait_reason:
            changed.setdefault(reason or "", []).append(job.id)
    for reason, ids in changed.items():
        s.execute(update(Job).where(Job.id.in_(ids), Job.state == "queued")
                  .values(wait_reason=reason).execution_options(synchronize_session=False))
    return taken


def _lease(s: Session, job_id: int, owner: str, lease_seconds: int) -> JobView | None:
    """Lease one queued job; None when it is no longer queued (cancelled meanwhile)."""
    if _changed(s, update(Job).where(Job.id == job_id, Job.state == "queued")
                .values(**_lease_values(owner, lease_seconds))
                .execution_options(synchronize_session=False)) != 1:
        return None
    job = s.scalars(select(Job).where(Job.id == job_id)
                    .execution_options(populate_existing=True)).one()
    return _view(job)


@dataclass(frozen=True)
class _Queued:
    """A queued job as a limited claim reads it."""

    id: int
    forge: str
    repo: str
    requester: str
    wait_reason: str


@dataclass
class _Counts:
    """The counts behind every queued job's ``Load``, read once per claim."""

    running: Counter[tuple[str, str]]  # (forge, repo)
    attempts: Counter[tuple[str, str]]  # (forge, repo), started in the last hour
    open_pulls: Counter[tuple[str, str]]  # (forge, repo)
    pulls_today: Counter[tuple[str, str]]  # (forge, requester)
    with_open_pull: set[int]  # job ids
    # Jobs of one repository and requester (and alike in owning an open pull request) share
    # a load: each is decided once, so a long held backlog costs a lookup per job.
    _decided: dict[tuple[str, str, str, bool], str | None] = field(default_factory=dict)

    def decide(self, job: _Queued, hold: Hold) -> str | None:
        key = (job.forge, job.repo, job.requester, job.id in self.with_open_pull)
        if key not in self._decided:
            self._decided[key] = hold(self.load(job))
        return self._decided[key]

    def load(self, job: _Queued) -> Load:
        repo, user = (job.forge, job.repo), (job.forge, job.requester)
        owns = job.id in self.with_open_pull
        return Load(repo=job.repo, requester=job.requester, running=self.running[repo],
                    open_pulls=self.open_pulls[repo] - owns, pulls_today=self.pulls_today[user],
                    attempts_last_hour=self.attempts[repo], opens_pull=not owns)

    def started(self, job: _Queued) -> None:
        """Count a job this claim has just taken, for the reasons of the jobs after it."""
        self.running[(job.forge, job.repo)] += 1
        self.attempts[(job.forge, job.repo)] += 1
        self._decided.clear()


def _count_load(s: Session, queued: list[_Queued]) -> _Counts:
    """Count, for the repositories and requesters of ``queued``, what the limits look at."""
    now = utcnow()
    repos = sorted({job.repo for job in queued})
    users = sorted({job.requester for job in queued})
    running = s.execute(select(Job.forge, Job.repo, func.count())
                        .where(Job.state == "running", Job.repo.in_(repos))
                        .group_by(Job.forge, Job.repo)).all()
    attempts = s.execute(select(Job.forge, Job.repo, func.count(Attempt.id))
                         .join(Attempt, Attempt.job_id == Job.id)
                         .where(Job.repo.in_(repos),
                                Attempt.started_at >= now - timedelta(hours=1))
                         .group_by(Job.forge, Job.repo)).all()
    ended = select(JobEvent.id).where(JobEvent.job_id == Job.id, JobEvent.kind.in_(PULL_ENDED))
    pulls = s.execute(select(Job.id, Job.forge, Job.repo)
                      .where(Job.repo.in_(repos), Job.pull_number.is_not(None),
                             ~ended.exists())).all()
    # A job owns one pull request (DESIGN.md): the day's pull requests for a requester are
    # their jobs whose first publication is less than 24 hours old.
    first = (select(JobEvent.job_id.label("job_id"),
                    func.min(JobEvent.created_at).label("at"))
             .where(JobEvent.kind == PULL_PUBLISHED,
                    JobEvent.job_id.in_(select(Job.id).where(Job.requested_by.in_(users))))
             .group_by(JobEvent.job_id).subquery())
    today = s.execute(select(Job.forge, Job.requested_by, func.count())
                      .join(first, first.c.job_id == Job.id)
                      .where(first.c.at >= now - timedelta(hours=24))
                      .group_by(Job.forge, Job.requested_by)).all()
    return _Counts(
        running=Counter({(f, r): n for f, r, n in running}),
        attempts=Counter({(f, r): n for f, r, n in attempts}),
        open_pulls=Counter((f, r) for _, f, r in pulls),
        pulls_today=Counter({(f, u): n for f, u, n in today}),
        with_open_pull={job_id for job_id, _, _ in pulls},
    )


def _open_attempt(s: Session, job: JobView, owner: str) -> Claim:
    """Record the next attempt of a job this transaction has just leased."""
    number = (s.scalar(
        select(func.max(Attempt.number)).where(Attempt.job_id == job.id)
    ) or 0) + 1
    attempt = Attempt(job_id=job.id, number=number, worker=owner)
    s.add(attempt)
    s.flush()
    s.add(JobEvent(job_id=job.id, attempt_id=attempt.id, kind="attempt.started",
                   data={"number": number, "worker": owner}))
    return Claim(job, attempt.id, number)


@dataclass(frozen=True)
class _Lost:
    """A running job as recovery saw it: the lease it means to break."""

    job_id: int
    owner: str | None
    expires: datetime | None


def _is_lost(job: _Lost, now: datetime, owner_is_dead: Callable[[str], bool]) -> bool:
    expired = job.expires is None or job.expires < now
    return expired or owner_is_dead(job.owner or "")


def _lock_lost(s: Session, lost: list[_Lost], now: datetime,
               owner_is_dead: Callable[[str], bool]) -> list[_Lost]:
    """PostgreSQL: lock the lost jobs' rows, skipping those another worker holds.

    Two recovering workers split the rows instead of both taking every one; a row locked
    right now is being recovered, renewed or finished by someone else, no reason to wait.
    Only lost rows are locked, so live jobs' renewals never queue behind a recovery.
    """
    rows = s.execute(
        select(Job.id, Job.lease_owner, Job.lease_expires_at)
        .where(Job.id.in_([job.job_id for job in lost]), Job.state == "running")
        .order_by(Job.id).with_for_update(skip_locked=True)
    ).all()
    # Read again under the lock: the owner may have renewed the lease meanwhile.
    return [_Lost(*row) for row in rows if _is_lost(_Lost(*row), now, owner_is_dead)]


def _release(s: Session, lost: _Lost, now: datetime, max_attempts: int) -> bool:
    """Requeue (or fail) a job whose lease is lost; False when someone got there first.

    The UPDATE only matches the lease exactly as recovery saw it, so a job that another
    worker already requeued, claimed again, or whose owner renewed it meanwhile is left
    alone: on SQLite, which has no row locks, this is what keeps two recoveries apart.
    """
    used = s.scalar(select(func.count()).where(Attempt.job_id == lost.job_id)) or 0
    give_up = used >= max_attempts
    outcome = {"state": "failed", "outcome": "worker_lost"} if give_up else {"state": "queued"}
    won = _changed(s,
        update(Job).where(Job.id == lost.job_id, Job.state == "running",
                          Job.lease_owner == lost.owner, Job.lease_expires_at == lost.expires)
        .values(lease_owner=None, lease_expires_at=None, **outcome)
    ) == 1
    if not won:
        return False
    s.execute(update(Attempt).where(
        Attempt.job_id == lost.job_id, Attempt.state == "running"
    ).values(state="abandoned", outcome="worker_lost", finished_at=now))
    s.add(JobEvent(job_id=lost.job_id, kind="job.finished" if give_up else "job.requeued",
                   data={"reason": "worker_lost", "attempts": used}))
    return True
