"""The store's operations. Every write is one short transaction; claims are atomic updates."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, Engine, Update, func, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from bot.errors import StoreError
from bot.store.models import Attempt, Delivery, Job, JobEvent, utcnow

# Header names that carry a secret or a signature are dropped before a delivery is stored:
# they are needed only to verify, and a stored copy would be a secret at rest.
_SECRET_HEADER_WORDS = ("signature", "token", "authorization", "cookie")
ACTIVE_STATES = ("queued", "running")


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


def safe_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The headers worth keeping: everything but signatures, tokens and credentials."""
    return {
        k: v for k, v in headers.items() if not any(w in k.lower() for w in _SECRET_HEADER_WORDS)
    }


def _changed(session: Session, statement: Update) -> int:
    """Rows an UPDATE touched: how a conditional update tells whether it won."""
    return cast(CursorResult[Any], session.execute(statement)).rowcount


def _view(job: Job) -> JobView:
    return JobView(
        id=job.id, trigger_key=job.trigger_key, forge=job.forge, repo=job.repo,
        default_branch=job.default_branch, issue_number=job.issue_number, title=job.title,
        requested_by=job.requested_by, state=job.state, outcome=job.outcome, branch=job.branch,
        pull_number=job.pull_number, created_at=job.created_at, updated_at=job.updated_at,
    )


class Store:
    """All reads and writes of forgebot's state."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    @contextmanager
    def _tx(self) -> Iterator[Session]:
        try:
            with self._sessions.begin() as session:
                yield session
        except IntegrityError:
            raise
        except SQLAlchemyError as exc:
            raise StoreError(f"store failure: {exc.__class__.__name__}: {exc}") from exc

    def ping(self) -> None:
        """Raise StoreError when the database does not answer."""
        with self._tx() as s:
            s.execute(select(1))

    # deliveries -------------------------------------------------------------------------

    def record_delivery(
        self, forge: str, delivery_id: str, event: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[int, bool]:
        """Store a delivery once. Returns (row id, False when it was already stored)."""
        try:
            with self._tx() as s:
                row = Delivery(
                    forge=forge, delivery_id=delivery_id, event=event[:64],
                    headers=safe_headers(headers), body=body.decode("utf-8"),
                )
                s.add(row)
                s.flush()
                return row.id, True
        except IntegrityError:
            with self._tx() as s:
                existing = s.scalars(
                    select(Delivery.id).where(
                        Delivery.forge == forge, Delivery.delivery_id == delivery_id
                    )
                ).one()
                return existing, False

    def pending_deliveries(self, limit: int = 100) -> list[DeliveryView]:
        with self._tx() as s:
            rows = s.scalars(
                select(Delivery).where(Delivery.status == "pending").order_by(Delivery.id)
                .limit(limit)
            ).all()
            return [
                DeliveryView(r.id, r.forge, r.delivery_id, r.event, dict(r.headers),
                             r.body.encode("utf-8"))
                for r in rows
            ]

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
    ) -> JobView | None:
        """Queue a job for a trigger, or None when that trigger already has one."""
        try:
            with self._tx() as s:
                job = Job(
                    trigger_key=trigger_key, forge=forge, repo=repo,
                    default_branch=default_branch, issue_number=issue_number, title=title[:500],
                    requested_by=requested_by, delivery_id=delivery_row, state="queued",
                )
                s.add(job)
                s.flush()
                s.add(JobEvent(job_id=job.id, kind="job.queued",
                               data={"delivery": delivery_row, "trigger": trigger_key}))
                return _view(job)
        except IntegrityError:
            return None

    def get_job(self, job_id: int) -> JobView | None:
        with self._tx() as s:
            job = s.get(Job, job_id)
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

    def has_event(self, job_id: int, kind: str) -> bool:
        with self._tx() as s:
            found = s.scalars(
                select(JobEvent.id).where(JobEvent.job_id == job_id, JobEvent.kind == kind)
                .limit(1)
            ).first()
            return found is not None

    # claims and leases ----------------------------------------------------------------

    def claim_next(self, owner: str, lease_seconds: int) -> Claim | None:
        """Take the oldest queued job with a lease and open an attempt for it."""
        with self._tx() as s:
            candidates = s.scalars(
                select(Job.id).where(Job.state == "queued").order_by(Job.id).limit(5)
            ).all()
            for job_id in candidates:
                # The state check in the UPDATE makes the claim atomic across processes.
                taken = _changed(s,
                    update(Job).where(Job.id == job_id, Job.state == "queued").values(
                        state="running", lease_owner=owner,
                        lease_expires_at=utcnow() + timedelta(seconds=lease_seconds),
                    )
                )
                if taken != 1:
                    continue
                number = (s.scalar(
                    select(func.max(Attempt.number)).where(Attempt.job_id == job_id)
                ) or 0) + 1
                attempt = Attempt(job_id=job_id, number=number, worker=owner)
                s.add(attempt)
                s.flush()
                s.add(JobEvent(job_id=job_id, attempt_id=attempt.id, kind="attempt.started",
                               data={"number": number, "worker": owner}))
                job = s.get(Job, job_id)
                assert job is not None
                return Claim(_view(job), attempt.id, number)
        return None

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

    def recover(
        self, owner_is_dead: Callable[[str], bool], max_attempts: int
    ) -> list[int]:
        """Requeue running jobs whose lease expired or whose owner is known dead.

        A job that has used ``max_attempts`` attempts fails with outcome ``worker_lost``
        instead of running forever. Returns the ids of the jobs touched.
        """
        now = utcnow()
        touched: list[int] = []
        with self._tx() as s:
            running = s.scalars(select(Job).where(Job.state == "running")).all()
            for job in running:
                expired = job.lease_expires_at is None or job.lease_expires_at < now
                if not (expired or owner_is_dead(job.lease_owner or "")):
                    continue
                touched.append(job.id)
                s.execute(update(Attempt).where(
                    Attempt.job_id == job.id, Attempt.state == "running"
                ).values(state="abandoned", outcome="worker_lost", finished_at=now))
                used = s.scalar(select(func.count()).where(Attempt.job_id == job.id)) or 0
                if used >= max_attempts:
                    job.state, job.outcome = "failed", "worker_lost"
                    kind = "job.finished"
                else:
                    job.state = "queued"
                    kind = "job.requeued"
                job.lease_owner, job.lease_expires_at = None, None
                s.add(JobEvent(job_id=job.id, kind=kind,
                               data={"reason": "worker_lost", "attempts": used}))
        return touched

    def is_idle(self) -> bool:
        """No pending delivery and no queued or running job."""
        with self._tx() as s:
            pending = s.scalar(select(func.count()).where(Delivery.status == "pending")) or 0
            active = s.scalar(select(func.count()).where(Job.state.in_(ACTIVE_STATES))) or 0
            return pending == 0 and active == 0
