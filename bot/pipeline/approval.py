"""Plan approval: for a large change the bot posts its plan and waits for ``/approve``.

``plan_approval`` in the policy says when: ``never``, ``large`` (the plan names more files or
lines than ``large_change`` allows, touches a ``large_change.sensitive`` path, or cannot be
estimated) or ``always``. The plan is the planner model's answer, so it is untrusted text: it
is redacted before it is stored or posted, shown inside a code fence (no Markdown, links or
mentions of its own), and only its size decides anything, never its words.

The record is two job events: ``plan.posted`` (the plan as shown) and ``plan.approved`` (keyed
by the posted event's id, written once by the first ``/approve``). The attempt after an
approval follows the approved plan; ``/revise`` on a waiting plan drafts a new one with the
feedback and waits again; ``/retry`` starts over, plan and approval included.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bot.agent.loop import AgentSettings, AgentTask, Models, Observer, draft_plan
from bot.pipeline.attempt import Prepared, Recorder
from bot.pipeline.outcomes import JobStopped, Outcome
from bot.pipeline.report import MARKER, fenced
from bot.policy.glob import glob_match
from bot.policy.model import LargeChange
from bot.secret_scan import redact

PLAN_POSTED = "plan.posted"
PLAN_APPROVED = "plan.approved"

# A path in backticks: letters, digits and ./_- only, with a dot or a slash in it.
_PATH = re.compile(r"`([A-Za-z0-9_./-]+)`")
_LINES = re.compile(r"~?\s*(\d{1,6})\s*(?:changed\s+)?lines?\b", re.IGNORECASE)


@dataclass(frozen=True)
class PlanEstimate:
    """What a plan says about its own size. ``lines`` is None when it gives no figure."""

    files: tuple[str, ...]
    lines: int | None


def estimate(plan: str) -> PlanEstimate:
    """The files a plan names (in backticks, in order, once each) and the sum of its
    ``~N lines`` figures."""
    files: dict[str, None] = {}
    for match in _PATH.finditer(plan):
        path = match.group(1).removeprefix("./")
        if ("/" in path or "." in path) and ".." not in path.split("/"):
            files[path] = None
    figures = [int(m.group(1)) for m in _LINES.finditer(plan)]
    return PlanEstimate(tuple(files), sum(figures) if figures else None)


def approval_reason(mode: str, plan: PlanEstimate, large: LargeChange) -> str | None:
    """Why this plan needs a person's ``/approve`` under ``plan_approval: mode``, or None.
    A plan whose size cannot be told from it counts as large."""
    if mode == "never":
        return None
    sensitive = [path for path in plan.files
                 if any(glob_match(glob, path) for glob in large.sensitive)]
    lines = plan.lines or 0
    checks: list[tuple[bool, str]] = [
        (mode == "always", "the policy asks for approval of every plan (plan_approval: always)"),
        (bool(sensitive),
         f"it touches sensitive paths ({', '.join(f'`{p}`' for p in sensitive[:5])})"),
        (not plan.files, "the plan names no files, so its size cannot be estimated"),
        (len(plan.files) > large.files,
         f"it changes {len(plan.files)} files (large_change.files = {large.files})"),
        (plan.lines is None, "the plan gives no estimate of the lines it changes"),
        (lines > large.lines,
         f"it changes about {lines} lines (large_change.lines = {large.lines})"),
    ]
    return next((reason for applies, reason in checks if applies), None)


def approved_plan(events: Sequence[Mapping[str, Any]], request: Mapping[str, Any]) -> str | None:
    """The plan this attempt follows: the latest posted plan, when the request that queued
    the attempt is its ``/approve`` (a ``/revise`` or ``/retry`` since asks for a new one)."""
    posted = _latest_posted(events)
    if request.get("mode") != "approve" or posted is None or waiting_plan(events) is not None:
        return None
    plan = (posted.get("data") or {}).get("plan")
    return plan if isinstance(plan, str) else None


def approval_key(posted_event_id: int) -> str:
    return f"plan:{posted_event_id}"


def waiting_plan(events: Sequence[Mapping[str, Any]]) -> int | None:
    """The id of the posted plan still waiting for approval, or None."""
    posted = _latest_posted(events)
    if posted is None:
        return None
    key = approval_key(int(posted["id"]))
    taken = any(e["kind"] == PLAN_APPROVED and (e.get("data") or {}).get("key") == key
                for e in events)
    return None if taken else int(posted["id"])


def _latest_posted(events: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    return next((e for e in reversed(events) if e["kind"] == PLAN_POSTED), None)


def plan_comment(job_id: int, plan: str, reason: str, bot_user: str) -> str:
    name = bot_user.lstrip("@")
    return (f"{MARKER}\n**forgebot has a plan for job {job_id}** and waits for approval "
            f"before it changes anything, because {reason}.\n\n{fenced(plan)}\n\n"
            f"Comment `/approve` to go ahead with this plan, or `/revise <feedback>` for a "
            f"new plan (`@{name} approve` works too).")


def gate(rec: Recorder, prepared: Prepared, task: AgentTask, models: Models, *,
         settings: AgentSettings, observer: Observer, bot_user: str) -> str:
    """The plan the agent follows (``""``: none), or stop the attempt with outcome
    ``awaiting_approval`` after posting a plan that needs ``/approve``."""
    policy = prepared.policy
    job = rec.lease.claim.job
    if policy.plan_approval == "never" or job.issue_number <= 0:
        return ""  # no issue to ask on: spec and API jobs are approved by who started them
    events = rec.store.events(job.id)
    approved = approved_plan(events, rec.store.last_request(job.id))
    if approved is not None:
        rec.event("plan.followed")
        return approved
    plan = redact(draft_plan(task, prepared.agent_dir, models, settings, observer),
                  rec.secrets)
    size = estimate(plan)
    reason = approval_reason(policy.plan_approval, size, policy.large_change)
    rec.event("plan.drafted", files=list(size.files)[:50], lines=size.lines,
              reason=reason or "")
    if reason is None:
        return plan
    rec.event(PLAN_POSTED, plan=plan, reason=reason)
    prepared.forge.comment(job.repo, job.issue_number,
                           plan_comment(job.id, plan, reason, bot_user))
    raise JobStopped(Outcome.AWAITING_APPROVAL,
                     f"The plan is posted on #{job.issue_number}; it waits for `/approve` "
                     f"because {reason}.")
