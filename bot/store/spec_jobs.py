"""Jobs made by spec pushes: one job per spec path, queued, updated or superseded in one
transaction.

A spec's job is keyed by its trigger (``<forge>:<repo>:spec:<path>``) and owns one branch. A
new push of the spec gives the job the new text: a queued job simply takes it; a running
attempt is stopped (it sees the job is no longer running at its next check, like a
``/cancel``) and the job is queued again from the default branch, on the same branch; a
finished job is queued again. A push that was already taken (a redelivery with a new id)
changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.store.models import Attempt, Job, JobEvent, utcnow
from bot.store.queries import JobView, Store, _view

SPEC_PUSHED = "spec.pushed"
SPEC_SUPERSEDED = "spec.superseded"


@dataclass(frozen=True)
class SpecJobRequest:
    """What one push of one spec asks for. ``sha`` is the pushed commit: it names the push."""

    trigger_key: str
    forge: str
    repo: str
    default_branch: str
    path: str
    sha: str
    title: str
    requested_by: str
    task_text: str
    branch: str
    delivery_row: int | None = None
    priority: int = 0
    criteria: tuple[str, ...] = ()  # the ids of the new and changed criteria


@dataclass(frozen=True)
class SpecJobResult:
    """The job and what happened to it: ``created``, ``updated`` (it was queued),
    ``superseded`` (an attempt was running), ``requeued`` (it had finished) or ``seen``
    (this push was already taken)."""

    job: JobView
    action: str


def queue_spec_job(store: Store, request: SpecJobRequest) -> SpecJobResult:
    """Create the spec's job, or hand the new push to the job it already has (see module)."""
    for _ in range(2):  # a concurrent planner may create the job between our read and insert
        try:
            return _queue(store, request)
        except IntegrityError:
            continue
    return _queue(store, request)


def _queue(store: Store, request: SpecJobRequest) -> SpecJobResult:
    with store._tx() as s:
        query = select(Job).where(Job.trigger_key == request.trigger_key)
        if store._postgres:
            query = query.with_for_update()
        job = s.scalars(query).first()
        push = {"key": request.sha, "path": request.path, "by": request.requested_by,
                "delivery": request.delivery_row, "criteria": list(request.criteria)}
        if job is None:
            job = Job(trigger_key=request.trigger_key, forge=request.forge, repo=request.repo,
                      default_branch=request.default_branch, issue_number=0,
                      title=request.title[:500], requested_by=request.requested_by,
                      delivery_id=request.delivery_row, state="queued", kind="spec",
                      task_text=request.task_text, priority=request.priority,
                      branch=request.branch)
            s.add(job)
            s.flush()
            s.add(JobEvent(job_id=job.id, kind="job.queued",
                           data={"delivery": request.delivery_row,
                                 "trigger": request.trigger_key}))
            s.add(JobEvent(job_id=job.id, kind=SPEC_PUSHED, data=push))
            store._announce_work(s)
            return SpecJobResult(_view(job), "created")
        if _push_seen(s, job.id, request.sha):
            return SpecJobResult(_view(job), "seen")
        action = {"queued": "updated", "running": "superseded"}.get(job.state, "requeued")
        values: dict[str, object] = {"task_text": request.task_text,
                                     "title": request.title[:500],
                                     "requested_by": request.requested_by}
        if action != "updated":
            values.update(state="queued", outcome=None, lease_owner=None,
                          lease_expires_at=None)
        s.execute(update(Job).where(Job.id == job.id).values(**values))
        if action == "superseded":
            s.execute(update(Attempt).where(Attempt.job_id == job.id,
                                            Attempt.state == "running")
                      .values(state="cancelled", outcome="superseded", finished_at=utcnow()))
            s.add(JobEvent(job_id=job.id, kind=SPEC_SUPERSEDED,
                           data={"sha": request.sha, "by": request.requested_by}))
        s.add(JobEvent(job_id=job.id, kind=SPEC_PUSHED, data=push))
        if action != "updated":
            # A fresh attempt from the default branch with the new text, on the same branch.
            s.add(JobEvent(job_id=job.id, kind="job.requeued",
                           data={"mode": "retry", "feedback": "", "by": request.requested_by}))
        store._announce_work(s)
        s.flush()
        s.refresh(job)
        return SpecJobResult(_view(job), action)


def _push_seen(s: Session, job_id: int, sha: str) -> bool:
    rows = s.scalars(select(JobEvent.data).where(JobEvent.job_id == job_id,
                                                 JobEvent.kind == SPEC_PUSHED)).all()
    return any(isinstance(data, dict) and data.get("key") == sha for data in rows)


def spec_jobs(store: Store, forge: str, repo: str) -> dict[str, JobView]:
    """The spec jobs of one repository by spec path (read from their trigger keys)."""
    prefix = f"{forge}:{repo}:spec:"
    with store._tx() as s:
        jobs = s.scalars(select(Job).where(Job.trigger_key.startswith(prefix, autoescape=True))
                         .order_by(Job.id)).all()
        return {job.trigger_key[len(prefix):]: _view(job) for job in jobs}
