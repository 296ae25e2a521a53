"""The dashboard issue: one issue per repository, kept by the bot, that lists its queued,
running and failed jobs, with a checkbox per failed job to retry it.

Turned on by the bot-wide policy's ``dashboard_issue`` (``enabled``, ``title``). Each
reconciliation pass reads the issue's body back first: a ticked box of a failed job of this
repository queues that job again (as ``/retry`` would, by ``dashboard``), then the body is
written anew, so the box is gone once the job is queued. Ticking a box means editing the
issue, which the forge allows only to people who may edit others' issues (GitHub: triage or
more; GitLab: reporter or more; Gitea: write): that edit right is the permission check.

The issue is found again through a ``repo_records`` row (``dashboard_issue``/``issue``), and
created when there is none. :func:`render` and :func:`checked_jobs` are pure.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from bot.forges.base import Forge
from bot.policy.model import Policy
from bot.store import JobView, Store
from bot.store.records import claim_record, get_record, put_record, repo_jobs

MARKER = "<!-- forgebot:dashboard -->"
RECORD_KIND = "dashboard_issue"
RECORD_KEY = "issue"
REQUESTER = "dashboard"
SHOWN_STATES = ("queued", "running", "failed")
MAX_FAILED = 50  # the most recent failed jobs get a row and a checkbox
# A process that claimed the creation and died leaves the claim; after this, take it over.
CREATE_CLAIM_TTL = timedelta(minutes=10)
_RETRY_RE = re.compile(
    r"^[ \t]*[-*][ \t]+\[([ xX])\][ \t]+<!--[ \t]*forgebot:retry job=(\d{1,12})[ \t]*-->",
    re.MULTILINE)
_CELL_MAX = 80


@dataclass(frozen=True)
class DashboardResult:
    """The issue's number and the jobs a ticked box queued again on this pass."""

    number: int | None
    requeued: list[int] = field(default_factory=list)


def retry_line(job_id: int, checked: bool = False) -> str:
    """The checkbox line of one failed job."""
    return f"- [{'x' if checked else ' '}] <!-- forgebot:retry job={job_id} --> retry job {job_id}"


def checked_jobs(body: str) -> list[int]:
    """Ids of the jobs whose retry box is ticked in ``body``, in order, each once. Only a
    line of its own that starts with the box counts (text inside a table cell cannot)."""
    found = [int(m.group(2)) for m in _RETRY_RE.finditer(body) if m.group(1) in "xX"]
    return list(dict.fromkeys(found))


def render(forge: str, jobs: Sequence[JobView], now: datetime) -> str:
    """The issue's body: a table per state, then a retry box per failed job."""
    lines = [MARKER, "forgebot keeps this issue up to date with its jobs in this repository.",
             f"Last updated {now.astimezone(UTC):%Y-%m-%d %H:%M} UTC.", ""]
    for state in SHOWN_STATES:
        rows = [j for j in jobs if j.state == state]
        if state == "failed":
            rows = rows[:MAX_FAILED]
        lines.append(f"### {state.capitalize()} ({len(rows)})")
        if not rows:
            lines += ["", "None.", ""]
            continue
        lines += ["", "| Job | Item | Title | Outcome | Waiting for |", "|---|---|---|---|---|"]
        lines += [_row(forge, job) for job in rows]
        lines.append("")
        if state == "failed":
            lines += ["Tick a box to retry that job (as `/retry` would):", ""]
            lines += [retry_line(job.id) for job in rows]
            lines.append("")
    return "\n".join(lines)


def _row(forge: str, job: JobView) -> str:
    item = f"#{job.issue_number}" if job.issue_number > 0 else job.kind
    if job.pull_number:
        item += f", {'!' if forge == 'gitlab' else '#'}{job.pull_number}"
    return (f"| {job.id} | {item} | {_cell(job.title)} | {_cell(job.outcome or '')} | "
            f"{_cell(job.wait_reason)} |")


def _cell(text: str) -> str:
    """Untrusted text (an issue title) made safe for one table cell: one line, bounded, no
    pipe, no HTML (so no hidden retry marker), no mention that would notify someone."""
    flat = " ".join(text.split())
    if len(flat) > _CELL_MAX:
        flat = flat[: _CELL_MAX - 1] + "…"
    return (flat.replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;")
            .replace(">", "&gt;").replace("@", "@\u200b"))


def refresh(store: Store, forge: Forge, repo: str, policy: Policy, *,
            now: datetime | None = None) -> DashboardResult:
    """Act on ticked boxes, then rewrite (or create) the repository's dashboard issue.
    Raises ForgeError when the forge cannot be read or written."""
    moment = now or datetime.now(UTC)
    record = get_record(store, forge.name, repo, RECORD_KIND, RECORD_KEY) or {}
    number = record.get("number")
    requeued: list[int] = []
    current = None
    if isinstance(number, int):
        current = forge.get_issue(repo, number).body
        requeued = _retry_checked(store, forge.name, repo, current)
    jobs = repo_jobs(store, forge.name, repo, states=SHOWN_STATES)
    body = render(forge.name, jobs, moment)
    if isinstance(number, int):
        if current is None or _without_time(current) != _without_time(body):
            forge.edit_issue(repo, number, body)
        return DashboardResult(number, requeued)
    if not _claim_creation(store, forge.name, repo, record, moment):
        return DashboardResult(None, requeued)  # another process is creating it
    number = forge.create_issue(repo, policy.dashboard_issue.title, body)
    put_record(store, forge.name, repo, RECORD_KIND, RECORD_KEY, data={"number": number})
    return DashboardResult(number, requeued)


def _retry_checked(store: Store, forge: str, repo: str, body: str) -> list[int]:
    """Requeue each ticked failed job of this repository (a box naming another repository's
    job, or a job that is not failed, does nothing)."""
    done = []
    for job_id in checked_jobs(body):
        job = store.get_job(job_id)
        if job is None or (job.forge, job.repo, job.state) != (forge, repo, "failed"):
            continue
        if store.requeue(job_id, mode="retry", feedback="", by=REQUESTER):
            done.append(job_id)
    return done


def _claim_creation(store: Store, forge: str, repo: str, record: dict[str, object],
                    now: datetime) -> bool:
    """Note that this process creates the issue: True unless another one holds a recent
    claim (a claim older than ``CREATE_CLAIM_TTL`` belonged to a process that died)."""
    if not record:
        return claim_record(store, forge, repo, RECORD_KIND, RECORD_KEY,
                            data={"creating": now.isoformat()})
    claimed = record.get("creating")
    if isinstance(claimed, str) and now - datetime.fromisoformat(claimed) < CREATE_CLAIM_TTL:
        return False
    put_record(store, forge, repo, RECORD_KIND, RECORD_KEY, data={"creating": now.isoformat()})
    return True


def _without_time(body: str) -> str:
    """The body without its "Last updated" line: a pass that changes nothing else does
    not edit the issue."""
    return "\n".join(line for line in body.splitlines() if not line.startswith("Last updated"))
