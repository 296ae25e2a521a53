"""Queue limits and priorities: pure functions over counts the store reads.

A queued job runs when no limit of the bot-wide policy holds it back; a held job waits with
a human reason (shown in its status comment) and is never dropped. The store counts, under
the claim's lock, what each limit is about; this module only decides, so every rule is a
table-tested function and the claim stays one short transaction.
"""

from __future__ import annotations

from collections.abc import Iterable

from bot.policy.model import Limits, Policy
from bot.store.queries import Hold, Load

URGENT = 1
NORMAL = 0
BACKGROUND = -1


def priority_of(labels: Iterable[str], policy: Policy) -> int:
    """A job's priority from its issue's labels: ``queue.urgent_label`` runs first,
    ``queue.background_label`` last (urgent wins when an issue has both), else normal."""
    names = set(labels)
    if policy.queue.urgent_label in names:
        return URGENT
    if policy.queue.background_label in names:
        return BACKGROUND
    return NORMAL


def wait_reason(load: Load, limits: Limits) -> str | None:
    """Why a job must wait, naming the limit and its value; None when it may run now.

    The first limit reached is named, in the order an operator fixes them: what runs now,
    what is started per hour, then the pull requests.
    """
    if load.running >= limits.concurrent_jobs_per_repo:
        return (f"waiting: {load.repo} has {_count(load.running, 'running job')} "
                f"(limits.concurrent_jobs_per_repo = {limits.concurrent_jobs_per_repo})")
    if load.attempts_last_hour >= limits.jobs_per_hour:
        return (f"waiting: {load.repo} has started "
                f"{_count(load.attempts_last_hour, 'job')} in the last hour "
                f"(limits.jobs_per_hour = {limits.jobs_per_hour})")
    if not load.opens_pull:
        return None
    if load.open_pulls >= limits.open_pulls_per_repo:
        return (f"waiting: {load.repo} has {_count(load.open_pulls, 'open bot pull request')} "
                f"(limits.open_pulls_per_repo = {limits.open_pulls_per_repo})")
    if load.pulls_today >= limits.pulls_per_user_per_day:
        # No "@": a reason must not mention (and notify) anyone.
        return (f"waiting: {_count(load.pulls_today, 'pull request')} opened for "
                f"{load.requester or 'this requester'} in the last 24 hours "
                f"(limits.pulls_per_user_per_day = {limits.pulls_per_user_per_day})")
    return None


def hold_for(limits: Limits) -> Hold:
    """The store's ``Hold`` for ``Store.claim_next``: :func:`wait_reason` under ``limits``."""

    def hold(load: Load) -> str | None:
        return wait_reason(load, limits)

    return hold


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


__all__ = ["BACKGROUND", "NORMAL", "URGENT", "Load", "hold_for", "priority_of", "wait_reason"]
