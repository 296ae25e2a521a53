"""One attempt of one job: prepare → implement → verify → publish.

Every stage change is a row in ``job_events``. Nothing that comes out of the sandbox is
trusted: the agent's diff is re-applied to a clean worktree, the gates judge it there, the
tests run again in a fresh sandbox, and only that copy is committed and pushed. This module
strings the stages together and owns the outcomes; each stage is a module of its own.
"""

from __future__ import annotations

import logging
import time

from bot.errors import ForgebotError, ForgeError, GitError, ModelError, SandboxError
from bot.forges.base import Forge
from bot.logs import job_context
from bot.pipeline.attempt import (
    BudgetExceeded,
    Cancelled,
    Prepared,
    Recorder,
    Runtime,
    known_secrets,
    max_iterations_for,
)
from bot.pipeline.explain import explain
from bot.pipeline.implement import implement
from bot.pipeline.lease import Lease
from bot.pipeline.outcomes import JobStopped, Outcome
from bot.pipeline.prepare import cleanup, prepare
from bot.pipeline.publish import publish
from bot.pipeline.report import Report
from bot.pipeline.verify import verify

log = logging.getLogger(__name__)

__all__ = ["Runtime", "run_job"]


_OUTCOME_OF_ERROR: tuple[tuple[type[ForgebotError], Outcome], ...] = (
    (BudgetExceeded, Outcome.BUDGET_EXCEEDED),
    (SandboxError, Outcome.SANDBOX_ERROR),
    (ModelError, Outcome.MODEL_ERROR),
    (ForgeError, Outcome.FORGE_ERROR),
    (GitError, Outcome.FORGE_ERROR),
)


def run_job(rt: Runtime, lease: Lease) -> None:
    """Run one attempt to a named outcome, report it on the forge and close the job."""
    claim = lease.claim
    delivery = rt.store.delivery_id_of(claim.job.id)
    with job_context(job=claim.job.id, attempt=claim.attempt_id,
                     **({"delivery": delivery} if delivery else {})):
        forge = rt.forges.get(claim.job.forge)
        if forge is None:  # configuration changed since the job was queued
            log.error("job's forge is not configured", extra={"forge": claim.job.forge})
            rt.store.finish(claim, lease.owner, Outcome.FORGE_ERROR.value, failed=True)
            return
        if rt.store.last_request(claim.job.id).get("mode") == "explain":
            _explain_attempt(rt, lease, forge)
        else:
            _run_attempt(rt, lease, forge)


def _explain_attempt(rt: Runtime, lease: Lease, forge: Forge) -> None:
    """``/explain``: post the explanation, then leave the job as it was (state and outcome
    are kept in the request by the planner)."""
    rec = Recorder(rt.store, lease, time.monotonic() + rt.policy.limits.job_timeout_s,
                   rt.metrics, forge, max_iterations_for(rt), known_secrets(rt.settings))
    try:
        explain(rt, rec, forge)
    except ForgeError as exc:
        if _retry_later(rt, rec, exc):
            return
        log.warning("could not post an explanation", extra={"job": lease.claim.job.id})
    request = rt.store.last_request(lease.claim.job.id)
    outcome = str(request.get("previous_outcome") or Outcome.SUBMITTED.value)
    rt.store.finish(lease.claim, lease.owner, outcome,
                    failed=request.get("previous_state") == "failed")


def _run_attempt(rt: Runtime, lease: Lease, forge: Forge) -> None:
    started = time.monotonic()
    rec = Recorder(rt.store, lease, started + rt.policy.limits.job_timeout_s,
                   rt.metrics, forge, max_iterations_for(rt), known_secrets(rt.settings))
    job = lease.claim.job
    report: Report
    prepared: Prepared | None = None
    try:
        with rec.stage("prepare"):
            prepared = prepare(rt, rec)
        # The repository's policy may only tighten the bot-wide time limit.
        rec.deadline = min(rec.deadline, started + prepared.policy.limits.job_timeout_s)
        rec.max_iterations = max_iterations_for(rt, prepared.policy)
        with rec.stage("implement"):
            agent = implement(rt, rec, prepared)
        with rec.stage("verify"):
            verified = verify(rt, rec, prepared, agent)
        with rec.stage("publish"):
            report = publish(rt, rec, prepared, agent, verified)
    except Cancelled as exc:
        log.info("attempt stopped", extra={"job": job.id, "reason": str(exc)})
        if prepared is not None:
            cleanup(rt, prepared)
        current = rt.store.get_job(job.id)
        if current is not None and current.state == "cancelled":
            rec.show(final=Report(job_id=job.id, attempt=lease.claim.attempt_number,
                                  issue_number=job.issue_number, issue_title=job.title,
                                  outcome=Outcome.CANCELLED))
        return
    except ForgebotError as exc:
        report = _failure_report(rec, exc)
        if _retry_later(rt, rec, exc):
            if prepared is not None:
                cleanup(rt, prepared)
            return
    except Exception as exc:  # a bug: say so on the issue rather than retry it forever
        log.exception("attempt failed unexpectedly", extra={"job": job.id})
        report = _failure_report(rec, exc)
    if prepared is not None:
        cleanup(rt, prepared)
    _close(rt, rec, report)


def _retry_later(rt: Runtime, rec: Recorder, exc: ForgebotError) -> bool:
    """A forge or engine fault that may pass: close this attempt and queue the job again,
    within ``scheduler.max_attempts``. Safe, because publishing finds the pull request by its
    branch and recognises its own pushes: a retry never makes a second one."""
    claim = rec.lease.claim
    if not (exc.retryable and isinstance(exc, ForgeError | GitError | SandboxError)):
        return False
    if claim.attempt_number >= rt.settings.scheduler.max_attempts:
        return False
    if not rt.store.finish(claim, rec.lease.owner, "retrying", failed=True):
        return True  # the lease is gone: whoever holds the job now decides
    rt.store.requeue(claim.job.id, mode=None, feedback="", by="forgebot")
    rec.show(current=None, iteration=None)
    rec.event("attempt.retry_later", error=type(exc).__name__)
    return True


def _failure_report(rec: Recorder, exc: Exception) -> Report:
    if isinstance(exc, JobStopped):
        outcome = exc.outcome
    else:
        outcome = next((o for kind, o in _OUTCOME_OF_ERROR if isinstance(exc, kind)),
                       Outcome.INTERNAL_ERROR)
    # Our own errors carry messages written for operators (and scrubbed of tokens); anything
    # else is a bug whose text may hold anything, so only its type is shown.
    message = str(exc) if isinstance(exc, ForgebotError) else type(exc).__name__
    job = rec.lease.claim.job
    rec.event("attempt.error", outcome=outcome.value, error=type(exc).__name__, message=message)
    detail = message if isinstance(exc, JobStopped) else f"Error: {message}"
    return Report(job_id=job.id, attempt=rec.lease.claim.attempt_number,
                  issue_number=job.issue_number, issue_title=job.title, outcome=outcome,
                  detail=detail)


def _close(rt: Runtime, rec: Recorder, report: Report) -> None:
    job = rec.lease.claim.job
    rec.show(final=report)
    rt.store.finish(rec.lease.claim, rec.lease.owner, report.outcome.value,
                    failed=report.outcome.failed)
    rt.metrics.jobs_finished.labels(report.outcome.value).inc()
    log.info("job finished", extra={"job": job.id, "outcome": report.outcome.value})
