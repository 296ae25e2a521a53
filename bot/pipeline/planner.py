"""The planner: a stored delivery becomes a normalised event, and an event becomes a job or a
command.

Runs in the worker, never in the webhook request. Idempotent: a redelivered or duplicate
delivery finds the job its trigger already made and makes no second one. Nothing starts for
someone below the policy's ``trigger.min_permission``: they get at most one polite reply per
item an hour, and the delivery is recorded as ignored with the reason.

The lifecycle of a job follows its forge (docs/commands.md, "Lifecycle"): the bot's pull
request merged closes the issue; closed unmerged cancels the job and deletes the bot's
branch; the issue closed or its trigger label removed cancels the job; someone else pushing
to the bot's branch is recorded as ``branch.taken_over``; a review asking for changes starts
a revision. Each step is recorded as a job event keyed by what caused it, so a redelivered
webhook finds it done and changes nothing more.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bot import gitops
from bot.commands import (
    BadUsage,
    Command,
    ReplyLimiter,
    UnknownCommand,
    help_text,
    parse_comment,
    permission_allows,
)
from bot.errors import ForgeError, GitError
from bot.events import (
    ChecksCompleted,
    CommentCreated,
    Event,
    IssueClosed,
    IssueLabeled,
    IssueUnlabeled,
    PullClosed,
    Pushed,
    Repo,
    ReviewSubmitted,
)
from bot.forges.base import Forge
from bot.logs import job_context
from bot.metrics import Metrics
from bot.pipeline import approval, ci_repair
from bot.pipeline.limits import priority_of
from bot.pipeline.outcomes import Outcome
from bot.pipeline.report import MARKER
from bot.pipeline.spec_trigger import SpecTrigger
from bot.policy.model import Policy
from bot.store import DeliveryView, JobView, Store

log = logging.getLogger(__name__)


# Job events the lifecycle records (``data["key"]`` names what caused each one). The
# pipeline reads BRANCH_TAKEN_OVER: it never pushes to a branch someone else has pushed to.
PULL_MERGED = "pull.merged"
PULL_CLOSED = "pull.closed"
BRANCH_TAKEN_OVER = "branch.taken_over"
REVIEW_REVISION = "review.revision"
LABEL_REPEATED = "label.repeated"
COMMAND_SEEN = "command.seen"


@dataclass(frozen=True)
class PlanResult:
    status: str  # "job" | "command" | "lifecycle" | "ignored" | "invalid"
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
                 bot_user: str, metrics: Metrics | None = None, *,
                 mirrors: Path | None = None) -> None:
        self.store = store
        self.forges = forges
        self.policy = policy
        self.bot_user = bot_user
        self.metrics = metrics
        # Per process: a restarted worker may reply once more within the hour, no more.
        self.limiter = ReplyLimiter()
        # Spec pushes; ``mirrors`` is the mirror cache, else each push clones afresh.
        self.specs = SpecTrigger(store, policy, mirrors)
        # Event type -> what it does (IssueLabeled also needs its delivery: see plan_event).
        self._handlers: dict[type, Callable[[Forge, Any], PlanResult]] = {
            CommentCreated: self._comment,
            IssueUnlabeled: self._unlabeled,
            IssueClosed: self._issue_closed,
            PullClosed: self._pull_closed,
            Pushed: self._pushed,
            ReviewSubmitted: self._review,
            ChecksCompleted: self._checks,
        }

    def plan_pending(self, owner: str = "planner") -> int:
        """Plan the pending deliveries this worker (``owner``) takes; returns how many jobs
        were made. Workers planning at once take different deliveries."""
        made = 0
        for delivery in self.store.take_deliveries(owner):
            # Every line written while planning (forge calls, refusals) names the delivery.
            with job_context(delivery=delivery.delivery_id):
                result = self._plan_delivery(delivery)
                self.store.mark_delivery(delivery.id, result.status, result.note)
                if self.metrics is not None:
                    self.metrics.planned.labels(delivery.forge, result.status).inc()
                log.info("delivery planned", extra={"result": result.status,
                                                    "job": result.job_id})
            made += result.status == "job"
        return made

    def _plan_delivery(self, delivery: DeliveryView) -> PlanResult:
        forge = self.forges.get(delivery.forge)
        if forge is None:
            return PlanResult("invalid", f"forge '{delivery.forge}' is not configured")
        try:
            event = forge.parse(delivery.headers, delivery.body)
            return self.plan_event(forge, event, delivery.id)
        except (ForgeError, GitError) as exc:  # git: a spec push reads the pushed commit
            return PlanResult("invalid", str(exc))

    def plan_event(self, forge: Forge, event: Event | None,
                   delivery_row: int | None) -> PlanResult:
        """Decide what an event starts. Raises ForgeError when the forge cannot be asked."""
        if isinstance(event, IssueLabeled):
            return self._labeled(forge, event, delivery_row)
        if isinstance(event, Pushed) and event.to_default_branch:
            # A push to the default branch may change specs (bot.pipeline.spec_trigger).
            spec = self.specs.plan(forge, event, delivery_row)
            return PlanResult(spec.status, spec.note, spec.job_id)
        handler = self._handlers.get(type(event))
        if event is None or handler is None:
            return PlanResult("ignored", "event starts nothing")
        return handler(forge, event)

    def _may(self, forge: Forge, repo: str, user: str, number: int, *,
             pull: bool = False) -> bool:
        """Whether ``user`` may start work; if not, reply politely (rate-limited)."""
        if self._allowed(forge, repo, user):
            return True
        if self.limiter.allow(user, f"{repo}#{number}", datetime.now(UTC)):
            forge.comment(repo, number, _refusal(user, self.policy.trigger.min_permission),
                          pull=pull)
        return False

    def _allowed(self, forge: Forge, repo: str, user: str) -> bool:
        """Whether ``user`` has the permission that starts work (no reply either way)."""
        return permission_allows(forge.permission(repo, user),
                                 self.policy.trigger.min_permission)

    def _is_bot(self, user: str) -> bool:
        # A GitHub App acts as "<slug>[bot]"; either form of the configured name is the bot.
        return user.lower().removesuffix("[bot]") == self.bot_user.lower().removesuffix("[bot]")

    def _acknowledge(self, forge: Forge, repo: str, number: int, *, pull: bool = False,
                     comment_id: int | None = None) -> None:
        """👀 on the comment, or on the issue or pull request: seen and taken. Best effort: a
        forge that refuses a reaction does not undo the work it acknowledges."""
        try:
            forge.react(repo, number, comment_id, "eyes", pull=pull)
        except ForgeError as exc:
            log.warning("could not react on #%d of %s: %s", number, repo, exc)

    def _labeled(self, forge: Forge, event: IssueLabeled, delivery_row: int | None) -> PlanResult:
        if event.label not in self.policy.trigger.labels:
            return self._other_label(forge, event)
        repo = event.repo
        key = trigger_key(repo.forge, repo.full_name, event.number)
        existing = self.store.job_for_trigger(key)
        if existing is not None and delivery_row is not None \
                and existing.delivery_id == delivery_row:
            # This very delivery made the job before the worker died, before the delivery
            # was marked: it is the job's delivery, planned again after a restart.
            self._acknowledge(forge, repo.full_name, event.number)
            return PlanResult("job", f"job {existing.id} queued", existing.id)
        if existing is not None:
            return self._labeled_again(forge, event, existing, delivery_row)
        if not self._may(forge, repo.full_name, event.sender, event.number):
            return PlanResult("ignored", f"{event.sender} lacks "
                              f"{self.policy.trigger.min_permission} permission")
        job = self.store.create_job(
            trigger_key=key, forge=repo.forge, repo=repo.full_name,
            default_branch=repo.default_branch, issue_number=event.number, title=event.title,
            requested_by=event.sender, delivery_row=delivery_row,
            priority=priority_of(event.labels, self.policy),
        )
        if job is None:
            return PlanResult("ignored", f"a job for {key} already exists")
        self._acknowledge(forge, repo.full_name, event.number)
        return PlanResult("job", f"job {job.id} queued", job.id)

    def _labeled_again(self, forge: Forge, event: IssueLabeled, job: JobView,
                       delivery_row: int | None) -> PlanResult:
        """The trigger label on an issue that has a job: the open pull request's link, or a
        new attempt of a job that was cancelled or whose pull request was closed unmerged;
        never a second job."""
        repo, number = event.repo.full_name, event.number
        pull = forge.find_pull(repo, job.branch) if job.branch else None
        if pull is not None:
            # One answer per label event: a redelivery of it (or a replay) says nothing more.
            cause = f"delivery:{delivery_row}" if delivery_row is not None else "label"
            if self.store.record_once(job.id, LABEL_REPEATED, cause, {"by": event.sender}):
                forge.comment(repo, number, f"{MARKER}\nforgebot already has a pull request "
                              f"for this issue: {_link(event.repo, pull.number, pull.url)} "
                              f"(job {job.id}). Comment `/revise <feedback>` there, or review "
                              "it, to change it.")
            return PlanResult("lifecycle", f"job {job.id} has pull request #{pull.number}",
                              job.id)
        if job.state != "cancelled" and not self.store.has_record(job.id, PULL_CLOSED):
            return PlanResult("ignored", f"a job for {job.trigger_key} already exists")
        if not self._may(forge, repo, event.sender, number):
            return PlanResult("ignored", f"{event.sender} lacks "
                              f"{self.policy.trigger.min_permission} permission")
        if not self.store.requeue(job.id, mode="retry", feedback="", by=event.sender):
            return PlanResult("ignored", f"job {job.id} is {job.state}")
        self._acknowledge(forge, repo, number)
        return PlanResult("job", f"job {job.id} queued again by the trigger label", job.id)

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
        if not self._may(forge, repo, event.author, event.number, pull=event.is_pull):
            return PlanResult("ignored", f"{event.author} lacks permission for a command")
        # The same comment seen twice (a redelivery, or reconciliation finding it after the
        # webhook came) runs once.
        if job is not None and event.comment_id is not None and not self.store.record_once(
                job.id, COMMAND_SEEN,
                f"comment:{'pull' if event.is_pull else 'issue'}:{event.comment_id}",
                {"by": event.author}):
            return PlanResult("ignored", f"comment {event.comment_id} was already handled",
                              job.id)
        self._acknowledge(forge, repo, event.number, pull=event.is_pull,
                          comment_id=event.comment_id)
        return self._run_command(forge, event, parsed, job)

    def _run_command(self, forge: Forge, event: CommentCreated,
                     parsed: Command | BadUsage | UnknownCommand,
                     job: JobView | None) -> PlanResult:
        repo, number = event.repo.full_name, event.number
        minimum = self.policy.trigger.min_permission
        if isinstance(parsed, UnknownCommand):
            forge.comment(repo, number, f"{MARKER}\nI do not know `/{parsed.word}`.\n\n"
                          + help_text(self.bot_user, minimum=minimum), pull=event.is_pull)
            return PlanResult("command", f"unknown command /{parsed.word}: help sent")
        if isinstance(parsed, BadUsage):
            forge.comment(repo, number, f"{MARKER}\n{parsed.message}", pull=event.is_pull)
            return PlanResult("command", f"bad usage of /{parsed.name}")
        if parsed.name == "help":
            forge.comment(repo, number, f"{MARKER}\n" + help_text(self.bot_user, minimum=minimum),
                          pull=event.is_pull)
            return PlanResult("command", "help sent")
        if parsed.name == "status":
            forge.comment(repo, number, f"{MARKER}\n{_status_text(job)}", pull=event.is_pull)
            return PlanResult("command", "status sent")
        if job is None:
            forge.comment(repo, number, f"{MARKER}\nforgebot has no job here for "
                          f"`/{parsed.name}`; label the issue to start one.", pull=event.is_pull)
            return PlanResult("command", f"/{parsed.name}: no job")
        return self._job_command(forge, event, parsed, job)

    def _job_command(self, forge: Forge, event: CommentCreated, parsed: Command,
                     job: JobView) -> PlanResult:
        repo, number, who = event.repo.full_name, event.number, event.author
        if parsed.name == "cancel":
            done = self.store.cancel(job.id, by=who)
            text = (f"Job {job.id} cancelled." if done
                    else f"Job {job.id} had already finished ({job.outcome}).")
            forge.comment(repo, number, f"{MARKER}\n{text}", pull=event.is_pull)
            return PlanResult("command", text, job.id)
        if parsed.name in ("retry", "revise"):
            if self.store.requeue(job.id, mode=parsed.name, feedback=parsed.argument, by=who):
                text = (f"Job {job.id} queued again ({parsed.name}); the status comment on "
                        f"#{job.issue_number} follows it.")
            else:
                text = (f"Job {job.id} is {job.state}; `/{parsed.name}` works once it has "
                        "finished (or `/cancel` it first).")
            forge.comment(repo, number, f"{MARKER}\n{text}", pull=event.is_pull)
            return PlanResult("command", text, job.id)
        if parsed.name == "approve":
            text = self._approve(job, who)
        else:
            text = self._explain(job, who, number, pull=event.is_pull)
        forge.comment(repo, number, f"{MARKER}\n{text}", pull=event.is_pull)
        return PlanResult("command", text, job.id)

    def _approve(self, job: JobView, who: str) -> str:
        """``/approve``: the posted plan is approved once, and the job goes on with it."""
        waiting = approval.waiting_plan(self.store.events(job.id))
        if job.outcome != Outcome.AWAITING_APPROVAL.value or waiting is None:
            return (f"Job {job.id} has no plan waiting for approval (it is {job.state}"
                    + (f", outcome `{job.outcome}`" if job.outcome else "") + ").")
        if not self.store.record_once(job.id, approval.PLAN_APPROVED,
                                      approval.approval_key(waiting), {"by": who}):
            return f"The plan of job {job.id} is already approved."
        # The feedback that shaped the plan (a /revise on it) still guides the change.
        feedback = str(self.store.last_request(job.id).get("feedback") or "")
        if not self.store.requeue(job.id, mode="approve", feedback=feedback, by=who):
            return f"Job {job.id} is {job.state}; the approval is recorded."
        return (f"Plan approved by @{who}: job {job.id} is queued to make the change; the "
                f"status comment on #{job.issue_number} follows it.")

    def _explain(self, job: JobView, who: str, number: int, *, pull: bool) -> str:
        """``/explain``: an attempt that only explains, answered where it was asked."""
        if job.state not in ("done", "failed") or not job.branch:
            return (f"Job {job.id} has no change to explain yet (it is {job.state}); ask "
                    "again once it has pushed a branch.")
        note = {"reply_to": number, "pull": pull, "previous_outcome": job.outcome or "",
                "previous_state": job.state}
        if not self.store.requeue(job.id, mode="explain", feedback="", by=who, note=note):
            return f"Job {job.id} is {job.state}; ask again once it has finished."
        return f"Job {job.id}: an explanation of its change follows in a comment here."


    # ---------------------------------------------------------------- lifecycle

    def _bot_job(self, repo: Repo, number: int, head: str = "") -> JobView | None:
        """The job whose pull request is ``number`` (or, when the store has not recorded it,
        whose branch is ``head`` under the bot's prefix): None for anyone else's."""
        job = self.store.job_for_pull(repo.forge, repo.full_name, number)
        if job is None and head.startswith(self.policy.publish.branch_prefix):
            job = self.store.job_for_branch(repo.forge, repo.full_name, head)
        return job

    def _checks(self, forge: Forge, event: ChecksCompleted) -> PlanResult:
        """The forge's CI finished on a commit: on the bot's pull request, a diagnosis, a
        repair or marking it ready, as ``policy.ci`` says (bot.pipeline.ci_repair)."""
        job = ci_repair.find_job(self.store, event, self.policy.publish.branch_prefix,
                                 self._bot_job)
        if job is None:
            return PlanResult("ignored", f"{event.sha[:12]} is not on a bot pull request")
        done = ci_repair.follow(self.store, forge, self.policy.ci, event, job,
                                taken_over=self.store.has_record(job.id, BRANCH_TAKEN_OVER))
        return PlanResult(done.status, done.note, job.id)

    def _stop(self, forge: Forge, job: JobView, by: str, reason: str) -> PlanResult:
        """Cancel the job (a running attempt stops at its next check) and say so on the
        issue, once: cancelling a job that has already stopped says nothing."""
        if not self.store.cancel(job.id, by=by):
            return PlanResult("ignored", f"job {job.id} is {job.state}: nothing to cancel",
                              job.id)
        forge.comment(job.repo, job.issue_number,
                      f"{MARKER}\nJob {job.id} cancelled: {reason}. Nothing more is pushed.")
        return PlanResult("lifecycle", f"job {job.id} cancelled: {reason}", job.id)

    def _unlabeled(self, forge: Forge, event: IssueUnlabeled) -> PlanResult:
        triggers = self.policy.trigger.labels
        if event.label in self._priority_labels() and event.label not in triggers:
            return self._reprioritize(forge, event.repo, event.number, event.labels,
                                      event.sender)
        if event.label and event.label not in triggers:
            return PlanResult("ignored", f"label '{event.label}' is not a trigger label")
        if any(label in triggers for label in event.labels):
            return PlanResult("ignored", "the issue still has a trigger label")
        if self._is_bot(event.sender):
            return PlanResult("ignored", "the bot's own label change")
        repo = event.repo
        job = self.store.job_for_trigger(trigger_key(repo.forge, repo.full_name, event.number))
        if job is None:
            return PlanResult("ignored", "no job for this issue")
        return self._stop(forge, job, event.sender,
                          f"@{event.sender} removed the trigger label")

    def _other_label(self, forge: Forge, event: IssueLabeled) -> PlanResult:
        if event.label in self._priority_labels():
            return self._reprioritize(forge, event.repo, event.number, event.labels,
                                      event.sender)
        return PlanResult("ignored", f"label '{event.label}' is not a trigger label")

    def _priority_labels(self) -> tuple[str, str]:
        return (self.policy.queue.urgent_label, self.policy.queue.background_label)

    def _reprioritize(self, forge: Forge, repo: Repo, number: int, labels: tuple[str, ...],
                      sender: str) -> PlanResult:
        """A priority label added to or removed from an issue that has a job: the job's
        priority follows the labels the issue has now. Quietly ignored from someone who could
        not have started the job (no reply: a label is not a request)."""
        job = self.store.job_for_trigger(trigger_key(repo.forge, repo.full_name, number))
        if job is None:
            return PlanResult("ignored", "a priority label on an issue with no job")
        if not self._allowed(forge, repo.full_name, sender):
            return PlanResult("ignored", f"{sender} lacks "
                              f"{self.policy.trigger.min_permission} permission")
        priority = priority_of(labels, self.policy)
        if not self.store.set_priority(job.id, priority, by=sender):
            return PlanResult("ignored", f"job {job.id} has priority {priority} already", job.id)
        return PlanResult("lifecycle", f"job {job.id}: priority {priority}", job.id)

    def _issue_closed(self, forge: Forge, event: IssueClosed) -> PlanResult:
        if self._is_bot(event.sender):
            return PlanResult("ignored", "the bot closed the issue")
        repo = event.repo
        job = self.store.job_for_trigger(trigger_key(repo.forge, repo.full_name, event.number))
        if job is None:
            return PlanResult("ignored", "no job for this issue")
        return self._stop(forge, job, event.sender, f"@{event.sender} closed the issue")

    def _pull_closed(self, forge: Forge, event: PullClosed) -> PlanResult:
        job = self._bot_job(event.repo, event.number, event.head)
        if job is None:
            return PlanResult("ignored", f"#{event.number} is not the bot's pull request")
        kind = PULL_MERGED if event.merged else PULL_CLOSED
        cause = f"pull:{event.number}"
        if self.store.has_record(job.id, kind, cause):
            return PlanResult("ignored", f"{kind} of #{event.number} already handled", job.id)
        if event.merged:
            self._merged(forge, job, event)
        else:
            self._closed_unmerged(forge, job, event)
        self.store.record_once(job.id, kind, cause, {"number": event.number,
                                                     "by": event.sender, "head": event.head})
        return PlanResult("lifecycle", f"job {job.id}: {kind} (#{event.number})", job.id)

    def _merged(self, forge: Forge, job: JobView, event: PullClosed) -> None:
        if not self.policy.lifecycle.close_issue_on_merge or job.issue_number <= 0:
            return  # turned off, or a job without an issue to close
        link = _link(event.repo, event.number, event.url)
        forge.close_issue(job.repo, job.issue_number,
                          f"{MARKER}\nPull request {link} was merged by @{event.sender}; "
                          "closing this issue.")

    def _closed_unmerged(self, forge: Forge, job: JobView, event: PullClosed) -> None:
        """Cancel what is running and delete the bot's branch: only a branch under the
        policy's prefix that is the pull request's own head, never anything else, and not
        once someone else has pushed to it (their commits are theirs to delete)."""
        self.store.cancel(job.id, by=event.sender)
        branch = event.head
        deleted = False
        taken = self.store.has_record(job.id, BRANCH_TAKEN_OVER)
        if branch and branch == (job.branch or branch) and not taken:
            try:
                gitops.check_bot_branch(branch, self.policy.publish.branch_prefix)
            except GitError as exc:
                log.warning("not deleting %s of %s: %s", branch, job.repo, exc)
            else:
                forge.delete_branch(job.repo, branch)
                self.store.add_event(job.id, "branch.deleted", {"branch": branch})
                deleted = True
        link = _link(event.repo, event.number, event.url)
        text = f"Pull request {link} was closed without merging by @{event.sender}"
        text += f"; job {job.id} is stopped" + (f" and `{branch}` deleted." if deleted else ".")
        # A spec job has no issue (number 0): it says so on the pull request instead.
        number, pull = ((job.issue_number, False) if job.issue_number > 0
                        else (event.number, True))
        forge.comment(job.repo, number, f"{MARKER}\n{text}", pull=pull)

    def _pushed(self, forge: Forge, event: Pushed) -> PlanResult:
        """A push to the bot's branch by anyone but the bot: the bot stops updating it."""
        branch = event.ref.removeprefix("refs/heads/")
        if branch == event.ref or not branch.startswith(self.policy.publish.branch_prefix):
            return PlanResult("ignored", "not a push to a bot branch")
        repo = event.repo
        job = self.store.job_for_branch(repo.forge, repo.full_name, branch)
        if job is None:
            return PlanResult("ignored", f"no job owns {branch}")
        ours = {e["data"].get("sha") for e in self.store.events(job.id)
                if e["kind"] == "push.intent"}
        if event.after in ours or self._is_bot(event.pusher):
            return PlanResult("ignored", "the bot's own push", job.id)
        first = not self.store.has_record(job.id, BRANCH_TAKEN_OVER)
        if not self.store.record_once(job.id, BRANCH_TAKEN_OVER, f"sha:{event.after}",
                                      {"branch": branch, "by": event.pusher,
                                       "sha": event.after}):
            return PlanResult("ignored", f"push {event.after[:12]} already recorded", job.id)
        number, pull = (job.pull_number, True) if job.pull_number else (job.issue_number,
                                                                        False)
        if first and number > 0:  # a spec or API job before its pull request: nowhere to say
            forge.comment(job.repo, number,
                          f"{MARKER}\n@{event.pusher} pushed to `{branch}`, so forgebot stops "
                          "updating this branch: its commits are yours now. Retries and "
                          "revisions will not push over them.", pull=pull)
        return PlanResult("lifecycle", f"job {job.id}: {branch} taken over by "
                          f"{event.pusher}", job.id)

    def _review(self, forge: Forge, event: ReviewSubmitted) -> PlanResult:
        """A review asking for changes (or a review comment) on the bot's pull request by a
        permitted user → a revision with the review's text as feedback."""
        job = None if self._is_bot(event.author) else self._bot_job(event.repo, event.number)
        if job is None:
            return PlanResult("ignored", f"#{event.number} is not the bot's pull request "
                              "(or the review is the bot's own)")
        body = event.body.strip()
        cause = _review_key(event, body)
        refusal = self._review_refusal(forge, event, job, body, cause)
        if refusal is not None or not self.store.record_once(
                job.id, REVIEW_REVISION, cause, {"by": event.author, "state": event.state}):
            return PlanResult("ignored", refusal or "this review was already taken", job.id)
        repo = event.repo.full_name
        self._acknowledge(forge, repo, event.number, pull=True)
        feedback = f"Review by @{event.author} ({event.state}):\n{body}"
        if self.store.requeue(job.id, mode="revise", feedback=feedback, by=event.author):
            return PlanResult("command", f"job {job.id}: revision from a review", job.id)
        if self.store.add_feedback(job.id, feedback, by=event.author):
            return PlanResult("command", f"job {job.id}: review added to the queued revision",
                              job.id)
        forge.comment(repo, event.number, f"{MARKER}\nJob {job.id} is {job.state}; this review "
                      "starts no revision while it runs. Once it has finished, ask with "
                      "`/revise <feedback>`.", pull=True)
        return PlanResult("command", f"job {job.id} is {job.state}: review not taken", job.id)

    def _review_refusal(self, forge: Forge, event: ReviewSubmitted, job: JobView, body: str,
                        cause: str) -> str | None:
        """Why this review starts no revision, or None. Checked cheapest first, so the
        forge is asked for a permission only when everything else allows it."""
        minimum = self.policy.trigger.min_permission
        checks: list[tuple[Callable[[], bool], str]] = [
            (lambda: event.state == "approved" or not body,
             f"a review ({event.state}) that asks for nothing"),
            (lambda: not self.policy.review.revise_on_changes_requested,
             "review.revise_on_changes_requested is off"),
            (lambda: self.store.has_record(job.id, REVIEW_REVISION, cause),
             "this review was already taken"),
            (lambda: self.store.has_record(job.id, BRANCH_TAKEN_OVER),
             "the branch was taken over: no revision"),
            (lambda: not permission_allows(forge.permission(event.repo.full_name, event.author),
                                           minimum),
             f"{event.author} lacks {minimum} permission"),
        ]
        return next((reason for refused, reason in checks if refused()), None)

def _link(repo: Repo, number: int, url: str) -> str:
    """A pull request as Markdown: ``[#12](url)``, or the forge's own reference (GitLab
    writes ``!12`` for a merge request) when the payload gave no URL."""
    ref = f"!{number}" if repo.forge == "gitlab" else f"#{number}"
    return f"[{ref}]({url})" if url.startswith(("https://", "http://", "file://")) else ref


def _review_key(event: ReviewSubmitted, body: str) -> str:
    """What names one review: the forge's id, else (Gitea sends none) its author and text."""
    if event.review_id is not None:
        return f"{event.kind}:{event.review_id}"
    digest = hashlib.sha256(f"{event.author}\n{event.state}\n{body}".encode()).hexdigest()
    return f"{event.kind}:{digest[:24]}"

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
