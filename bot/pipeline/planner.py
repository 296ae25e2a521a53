"""The planner: a stored delivery becomes a normalised event, and an event becomes a job.

Runs in the worker, never in the webhook request. Idempotent: a redelivered or duplicate
delivery finds the job its trigger already made and makes no second one.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from bot.errors import ForgeError
from bot.events import Event, IssueLabeled
from bot.forges.base import Forge
from bot.metrics import Metrics
from bot.store import DeliveryView, Store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PlanResult:
    status: str  # "job" | "ignored" | "invalid"
    note: str
    job_id: int | None = None


def trigger_key(event: IssueLabeled) -> str:
    return f"{event.repo.forge}:{event.repo.full_name}:issue:{event.number}"


def plan_event(store: Store, event: Event | None, trigger_labels: Collection[str],
               delivery_row: int | None) -> PlanResult:
    """Decide what an event starts. Only an issue gaining a trigger label makes a job."""
    if event is None:
        return PlanResult("ignored", "event starts nothing")
    if not isinstance(event, IssueLabeled):
        return PlanResult("ignored", f"{type(event).__name__} starts nothing yet")
    if event.label not in trigger_labels:
        return PlanResult("ignored", f"label '{event.label}' is not a trigger label")
    job = store.create_job(
        trigger_key=trigger_key(event), forge=event.repo.forge, repo=event.repo.full_name,
        default_branch=event.repo.default_branch, issue_number=event.number, title=event.title,
        requested_by=event.sender, delivery_row=delivery_row,
    )
    if job is None:
        return PlanResult("ignored", f"a job for {trigger_key(event)} already exists")
    return PlanResult("job", f"job {job.id} queued", job.id)


def plan_pending(store: Store, forges: Mapping[str, Forge], trigger_labels: Collection[str],
                 metrics: Metrics | None = None) -> int:
    """Plan every pending delivery; returns how many jobs were made."""
    made = 0
    for delivery in store.pending_deliveries():
        result = _plan_one(store, forges, trigger_labels, delivery)
        store.mark_delivery(delivery.id, result.status, result.note)
        if metrics is not None:
            metrics.planned.labels(delivery.forge, result.status).inc()
        log.info("delivery planned", extra={"delivery": delivery.delivery_id,
                                            "result": result.status, "job": result.job_id})
        made += result.status == "job"
    return made


def _plan_one(store: Store, forges: Mapping[str, Forge], trigger_labels: Collection[str],
              delivery: DeliveryView) -> PlanResult:
    forge = forges.get(delivery.forge)
    if forge is None:
        return PlanResult("invalid", f"forge '{delivery.forge}' is not configured")
    try:
        event = forge.parse(delivery.headers, delivery.body)
    except ForgeError as exc:
        return PlanResult("invalid", str(exc))
    return plan_event(store, event, trigger_labels, delivery.id)
