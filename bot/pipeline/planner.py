"""The planner: a stored delivery becomes a normalised event, and an event becomes a job or a
command.

Runs in the worker, never in the webhook request. Idempotent: a redelivered or duplicate
delivery finds the job its trigger already made and makes no second one. Nothing starts for
someone below the policy's ``trigger.min_permission``: they get at most one polite reply per
item an hour, and the delivery is recorded as ignored with the reason.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from bot.commands import (
    BadUsage,
    Command,
    ReplyLimiter,
    UnknownCommand,
    help_text,
    parse_comment,
    permission_allows,
)
from bot.errors import ForgeError
from bot.events import CommentCreated, Event, IssueLabeled
from bot.forges.base import Forge
from bot.metrics import Metrics
from bot.pipeline.report import MARKER
from bot.policy.model import Policy
from bot.store import DeliveryView, JobView, Store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PlanResult:
    status: str  # "job" | "command" | "ignored" | "invalid"
    note: str
    job_id: int | None = None


def trigger_key(forge: str, repo: str, number: int) -> str:
    return f"{forge}:{repo}:issue:{number}"


def _refusal(user: str, minimum: str) -> str:
    return (f"{MARKER}\n@{user}, thanks — forgebot only starts work for people with "
            f"**{minimum}** permission on this repository, so it will not act on this. "
            "A maintainer can label the issue or give the command instead.")


class Planner:
    """Turns stored deliveries into jobs and command replies."""

    def __init__(self, store: Store, forges: Mapping[str, Forge], policy: Policy,
                 bot_user: str, metrics: Metrics | None = None) -> None:
        self.store = store
        self.forges = forges
        self.policy = policy
        self.bot_user = bot_user
        self.metrics = metrics
        # Per process: a restarted worker may reply once more within the hour, no more.
        self.limiter = ReplyLimiter()

    def plan_pending(self, owner: str = "planner") -> int:
        """Plan the pending deliveries this worker (``owner``) takes; returns how many jobs
        were made. Workers planning at once take different deliveries."""
        made = 0
        for delivery in self.store.take_deliveries(owner):
            result = self._plan_delivery(delivery)
            self.store.mark_delivery(delivery.id, result.status, result.note)
            if self.metrics is not None:
                self.metrics.planned.labels(delivery.forge, result.status).inc()
            log.info("delivery planned", extra={"delivery": delivery.delivery_id,
                                                "result": result.status, "job": result.job_id})
            made += result.status == "job"
        return made

    def _plan_delivery(self, delivery: DeliveryView) -> PlanResult:
        forge = self.forges.get(delivery.forge)
        if forge is None:
            return PlanResult("invalid", f"forge '{delivery.forge}' is not configured")
        try:
            event = forge.parse(delivery.headers, delivery.body)
            return self.plan_event(forge, event, delivery.id)
        except ForgeError as exc:
            return PlanResult("invalid", str(exc))

    def plan_event(self, forge: Forge, event: Event | None,
                   delivery_row: int | None) -> PlanResult:
        """Decide what an event starts. Raises ForgeError when the forge cannot be asked."""
        if isinstance(event, IssueLabeled):
            return self._labeled(forge, event, delivery_row)
        if isinstance(event, CommentCreated):
            return self._comment(forge, event)
        if event is None:
            return PlanResult("ignored", "event starts nothing")
        return PlanResult("ignored", f"{type(event).__name__} starts nothing yet")

    def _may(self, forge: Forge, repo: str, user: str, number: int) -> bool:
        """Whether ``user`` may start work; if not, reply politely (rate-limited)."""
        minimum = self.policy.trigger.min_permission
        if permission_allows(forge.permission(repo, user), minimum):
            return True
        if self.limiter.allow(user, f"{repo}#{number}", datetime.now(UTC)):
            forge.comment(repo, number, _refusal(user, minimum))
        return False

    def _labeled(self, forge: Forge, event: IssueLabeled, delivery_row: int | None) -> PlanResult:
        if event.label not in self.policy.trigger.labels:
            return PlanResult("ignored", f"label '{event.label}' is not a trigger label")
        repo = event.repo
        key = trigger_key(repo.forge, repo.full_name, event.number)
        if self.store.job_for_trigger(key) is not None:
            return PlanResult("ignored", f"a job for {key} already exists")
        if not self._may(forge, repo.full_name, event.sender, event.number):
            return PlanResult("ignored", f"{event.sender} lacks "
                              f"{self.policy.trigger.min_permission} permission")
        job = self.store.create_job(
            trigger_key=key, forge=repo.forge, repo=repo.full_name,
            default_branch=repo.default_branch, issue_number=event.number, title=event.title,
            requested_by=event.sender, delivery_row=delivery_row,
        )
        if job is None:
            return PlanResult("ignored", f"a job for {key} already exists")
        return PlanResult("job", f"job {job.id} queued", job.id)

    def _comment(self, forge: Forge, event: CommentCreated) -> PlanResult:
        if event.author.lower() == self.bot_user.lower():
            return PlanResult("ignored", "the bot's own comment")
        parsed = parse_comment(event.body, self.bot_user)
        if parsed is None:
            return PlanResult("ignored", "not a command")
        repo = event.repo.full_name
        job = self.store.job_for_trigger(trigger_key(event.repo.forge, repo, event.number))
        if job is None and event.is_pull:
            job = self.store.job_for_pull(event.repo.forge, repo, event.number)
        if isinstance(parsed, UnknownCommand) and not (parsed.mentioned or job):
            return PlanResult("ignored", f"/{parsed.word} is not ours")  # maybe another bot's
        if not self._may(forge, repo, event.author, event.number):
            return PlanResult("ignored", f"{event.author} lacks permission for a command")
        forge.react(repo, event.number, event.comment_id, "eyes")
        return self._run_command(forge, event, parsed, job)

    def _run_command(self, forge: Forge, event: CommentCreated,
                     parsed: Command | BadUsage | UnknownCommand,
                     job: JobView | None) -> PlanResult:
        repo, number = event.repo.full_name, event.number
        minimum = self.policy.trigger.min_permission
        if isinstance(parsed, UnknownCommand):
            forge.comment(repo, number, f"{MARKER}\nI do not know `/{parsed.word}`.\n\n"
                          + help_text(self.bot_user, minimum=minimum))
            return PlanResult("command", f"unknown command /{parsed.word}: help sent")
        if isinstance(parsed, BadUsage):
            forge.comment(repo, number, f"{MARKER}\n{parsed.message}")
            return PlanResult("command", f"bad usage of /{parsed.name}")
        if parsed.name == "help":
            forge.comment(repo, number, f"{MARKER}\n" + help_text(self.bot_user, minimum=minimum))
            return PlanResult("command", "help sent")
        if parsed.name == "status":
            forge.comment(repo, number, f"{MARKER}\n{_status_text(job)}")
            return PlanResult("command", "status sent")
        if job is None:
            forge.comment(repo, number, f"{MARKER}\nforgebot has no job here for "
                          f"`/{parsed.name}`; label the issue to start one.")
            return PlanResult("command", f"/{parsed.name}: no job")
        return self._job_command(forge, event, parsed, job)

    def _job_command(self, forge: Forge, event: CommentCreated, parsed: Command,
                     job: JobView) -> PlanResult:
        repo, number, who = event.repo.full_name, event.number, event.author
        if parsed.name == "cancel":
            done = self.store.cancel(job.id, by=who)
            text = (f"Job {job.id} cancelled." if done
                    else f"Job {job.id} had already finished ({job.outcome}).")
            forge.comment(repo, number, f"{MARKER}\n{text}")
            return PlanResult("command", text, job.id)
        if parsed.name in ("retry", "revise"):
            if self.store.requeue(job.id, mode=parsed.name, feedback=parsed.argument, by=who):
                text = (f"Job {job.id} queued again ({parsed.name}); the status comment on "
                        f"#{job.issue_number} follows it.")
            else:
                text = (f"Job {job.id} is {job.state}; `/{parsed.name}` works once it has "
                        "finished (or `/cancel` it first).")
            forge.comment(repo, number, f"{MARKER}\n{text}")
            return PlanResult("command", text, job.id)
        forge.comment(repo, number, f"{MARKER}\n`/{parsed.name}` is understood but not "
                      "available yet in this version of forgebot.")
        return PlanResult("command", f"/{parsed.name} not available yet", job.id)


def _status_text(job: JobView | None) -> str:
    if job is None:
        return "forgebot has no job for this item."
    text = f"Job {job.id}: **{job.state}**"
    if job.outcome:
        text += f", outcome `{job.outcome}`"
    if job.branch:
        text += f", branch `{job.branch}`"
    if job.pull_number:
        text += f", pull request #{job.pull_number}"
    return text + "."
