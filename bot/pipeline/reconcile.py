"""Reconciliation: a scheduled pass over each configured repository that finds what arrived
while the bot was not listening (webhooks lost or never sent) and hands it to the planner as
the webhook would have.

Three things are looked for, each through the planner's own idempotent path:

- open issues carrying a trigger label that have no job yet → ``IssueLabeled`` (as the
  person who added the label, whose permission the planner checks; an issue whose labeller
  the forge cannot name is left alone). An issue that already has a job is never touched:
  a cancelled job stays cancelled until someone labels it again.
- comments on the issues and pull requests of recent jobs, newer than the newest one the
  pass saw there before → ``CommentCreated`` with the forge's comment id (the planner keys
  each command on it, so a comment both delivered and reconciled runs once). The newest id
  seen per item is kept in ``repo_records``, so one comment is handed over once.
- the bot's pull requests that are merged or closed while the job has no ``pull.merged`` /
  ``pull.closed`` record → ``PullClosed`` (the planner records it once per pull request).

A forge error stops the pass for that repository (the next pass tries again); what was
handed over before it stays handed over.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from bot.config import Settings
from bot.errors import ForgeError
from bot.events import CommentCreated, Event, IssueLabeled, PullClosed, Repo
from bot.forges.base import Forge
from bot.forges.local import admin as local_admin
from bot.pipeline import dashboard_issue
from bot.pipeline.planner import PULL_CLOSED, PULL_MERGED, Planner, trigger_key
from bot.store import JobView
from bot.store.records import get_record, put_record, repo_jobs

log = logging.getLogger(__name__)

MARK_KIND = "reconcile"
COMMENTS_KIND = "reconcile.comments"
# Jobs older than this (and not queued or running) are not looked at again.
RECENT = timedelta(days=60)
# Clock skew allowed between the forge and this machine when asking for comments by time;
# the comment ids decide what is new.
SKEW = timedelta(minutes=10)


@dataclass
class ReconcileReport:
    """What one pass over one repository found and handed to the planner."""

    forge: str
    repo: str
    labels: int = 0
    comments: int = 0
    pulls: int = 0
    jobs: list[int] = field(default_factory=list)  # jobs made or changed by what was found
    notes: list[str] = field(default_factory=list)
    dashboard: int | None = None  # the dashboard issue's number, when there is one
    error: str = ""

    def summary(self) -> str:
        """One line for the CLI and the log."""
        text = (f"{self.forge}:{self.repo}: {self.labels} labelled issue(s), "
                f"{self.comments} comment(s), {self.pulls} closed pull request(s)")
        if self.jobs:
            text += f"; jobs {', '.join(map(str, sorted(set(self.jobs))))}"
        if self.dashboard is not None:
            text += f"; dashboard issue #{self.dashboard}"
        return text + (f"; error: {self.error}" if self.error else "")


def reconcile(planner: Planner, forge: Forge, repo: str, *,
              now: datetime | None = None) -> ReconcileReport:
    """One pass over ``repo`` on ``forge``. Raises nothing from the forge: a ForgeError ends
    the pass early and is in the report's ``error``."""
    moment = now or datetime.now(UTC)
    report = ReconcileReport(forge.name, repo)
    try:
        one = _Pass(planner, forge, Repo(forge.name, repo, forge.default_branch(repo)), report)
        one.labels()
        jobs = repo_jobs(planner.store, forge.name, repo, states=("queued", "running"),
                         updated_since=(moment - RECENT).replace(tzinfo=None))
        one.comments(jobs)
        one.pulls(jobs)
    except ForgeError as exc:
        report.error = str(exc)
        log.warning("reconciliation of %s stopped: %s", repo, exc,
                    extra={"forge": forge.name, "repo": repo})
    put_record(planner.store, forge.name, repo, MARK_KIND, "last",
               data={"at": moment.isoformat(), "labels": report.labels,
                     "comments": report.comments, "pulls": report.pulls,
                     "error": report.error})
    return report


@dataclass
class _Pass:
    """One pass over one repository: what it finds goes to the planner and the report."""

    planner: Planner
    forge: Forge
    repo: Repo
    report: ReconcileReport

    def hand(self, event: Event) -> None:
        result = self.planner.plan_event(self.forge, event, None)
        if result.job_id is not None and result.status in ("job", "command", "lifecycle"):
            self.report.jobs.append(result.job_id)
        self.report.notes.append(result.note)

    def is_bot(self, user: str) -> bool:
        # A GitHub App writes as "<slug>[bot]": either form of the configured name is the bot.
        bot = self.planner.bot_user.lower().removesuffix("[bot]")
        return user.lower().removesuffix("[bot]") == bot

    def labels(self) -> None:
        repo, store = self.repo, self.planner.store
        for label in self.planner.policy.trigger.labels:
            for issue in self.forge.open_issues_with_label(repo.full_name, label):
                if store.job_for_trigger(trigger_key(repo.forge, repo.full_name,
                                                     issue.number)) is not None:
                    continue
                actor = self.forge.label_actor(repo.full_name, issue.number, label)
                if actor is None:
                    self.report.notes.append(f"#{issue.number}: who added '{label}' is "
                                             "unknown; left alone")
                    continue
                self.report.labels += 1
                self.hand(IssueLabeled(repo=repo, number=issue.number, title=issue.title,
                                       body=issue.body, label=label, sender=actor,
                                       labels=issue.labels))

    def comments(self, jobs: list[JobView]) -> None:
        seen: set[tuple[int, bool]] = set()
        for job in jobs:
            items = [(job.issue_number, False)] if job.issue_number > 0 else []
            items += [(job.pull_number, True)] if job.pull_number else []
            for item in items:
                if item not in seen:
                    seen.add(item)
                    self.item_comments(job, *item)

    def item_comments(self, job: JobView, number: int, pull: bool) -> None:
        """Hand over the comments on one item newer than the newest seen there, in id
        order (every forge here numbers comments upwards), moving the item's mark after
        each one. The first look at an item starts at its job's creation."""
        store, repo = self.planner.store, self.repo
        key = f"{'pull' if pull else 'issue'}:{number}"
        mark = get_record(store, repo.forge, repo.full_name, COMMENTS_KIND, key) or {}
        last_id = int(mark.get("last_id", 0))
        since = _aware(mark["at"]) if "at" in mark else job.created_at.replace(tzinfo=UTC)
        found = self.forge.comments_since(repo.full_name, number, since - SKEW, pull=pull)
        for comment in sorted(found, key=lambda c: c.id):
            if comment.id <= last_id:
                continue
            if not self.is_bot(comment.author):  # its own status comments start nothing
                self.report.comments += 1
                self.hand(CommentCreated(repo=repo, number=number, body=comment.body,
                                         author=comment.author, is_pull=pull,
                                         comment_id=comment.id))
            last_id = comment.id
            put_record(store, repo.forge, repo.full_name, COMMENTS_KIND, key,
                       data={"last_id": last_id, "at": comment.created.isoformat()})

    def pulls(self, jobs: list[JobView]) -> None:
        store = self.planner.store
        for job in jobs:
            number = job.pull_number
            if not number or store.has_record(job.id, PULL_MERGED) or store.has_record(
                    job.id, PULL_CLOSED):
                continue
            state = self.forge.pull_state(self.repo.full_name, number)
            if state.state == "open":
                continue
            self.report.pulls += 1
            self.hand(PullClosed(repo=self.repo, number=number, head=state.head,
                                 merged=state.state == "merged", sender=state.by or "someone",
                                 url=state.url))


def _aware(text: object) -> datetime:
    moment = datetime.fromisoformat(str(text))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def repositories(settings: Settings, forge: str) -> list[str]:
    """The repositories a pass visits on ``forge``: ``forges.<forge>.repositories``; for the
    local forge, when that is empty, every repository under its root."""
    configured = list(getattr(settings.forges, forge).repositories)
    if forge == "local" and not configured:
        return local_admin.repositories(settings.local_root)
    return configured


def reconcile_all(planner: Planner, settings: Settings, *, now: datetime | None = None,
                  on_report: Callable[[ReconcileReport], None] | None = None,
                  ) -> list[ReconcileReport]:
    """A pass over every configured repository of every configured forge, then (when the
    policy's ``dashboard_issue.enabled``) each repository's dashboard issue."""
    reports = []
    for name, forge in planner.forges.items():
        for repo in repositories(settings, name):
            report = reconcile(planner, forge, repo, now=now)
            if planner.policy.dashboard_issue.enabled and not report.error:
                _dashboard(planner, forge, repo, report)
            log.info("reconciled %s", report.summary(),
                     extra={"forge": name, "repo": repo, "jobs": report.jobs})
            if on_report is not None:
                on_report(report)
            reports.append(report)
    return reports


def _dashboard(planner: Planner, forge: Forge, repo: str, report: ReconcileReport) -> None:
    try:
        result = dashboard_issue.refresh(planner.store, forge, repo, planner.policy)
    except ForgeError as exc:
        report.error = f"dashboard issue: {exc}"
        log.warning("dashboard issue of %s not updated: %s", repo, exc)
        return
    report.dashboard = result.number
    report.jobs += result.requeued
    report.notes += [f"job {job_id} queued again from the dashboard issue"
                     for job_id in result.requeued]
