"""Reading the forge's own CI into :class:`bot.forges.base.CheckResult`, shared by adapters.

Each forge names its CI states its own way; the tables here map them onto the four the
pipeline knows (``success``, ``failure``, ``pending``, ``skipped``), and a name missing from
a table is ``pending``: an unknown state never counts as green. Text from the CI (titles,
summaries, logs) is cut here, so no adapter hands on an unbounded string; redacting it is
the caller's job (:mod:`bot.pipeline.ci_repair`), which knows where it is going.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from bot.forges.base import LOG_TAIL_CHARS, SUMMARY_CHARS, CheckResult

OWN_CONTEXT = "forgebot"  # the status context every adapter's set_status writes

# GitHub check runs: ``conclusion`` once ``status`` is ``completed``.
GITHUB_CONCLUSIONS: Mapping[str, str] = {
    "success": "success", "failure": "failure", "timed_out": "failure",
    "action_required": "failure", "startup_failure": "failure",
    "cancelled": "skipped", "neutral": "skipped", "skipped": "skipped", "stale": "skipped",
}
# Commit statuses (GitHub, Gitea, the local forge). Gitea adds ``warning`` (not a failure).
STATUS_STATES: Mapping[str, str] = {
    "success": "success", "failure": "failure", "error": "failure", "pending": "pending",
    "warning": "skipped", "skipped": "skipped",
}
# GitLab jobs and commit statuses.
GITLAB_STATUSES: Mapping[str, str] = {
    "success": "success", "failed": "failure", "canceled": "skipped", "skipped": "skipped",
    "manual": "skipped",
}


def state_of(table: Mapping[str, str], value: object) -> str:
    """``value`` through ``table``; anything else (running, queued, unknown) is pending."""
    return table.get(value, "pending") if isinstance(value, str) else "pending"


def text_of(value: object) -> str:
    """A JSON string, or ``""`` for null and anything that is not a string."""
    return value if isinstance(value, str) else ""


def clip(text: str, limit: int = SUMMARY_CHARS) -> str:
    """The head of ``text``, at most ``limit`` characters (a summary reads from the top)."""
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def tail(text: str, limit: int = LOG_TAIL_CHARS) -> str:
    """The last ``limit`` characters of a log (a failure is at its end), from a line start."""
    text = text.strip()
    if len(text) <= limit:
        return text
    cut = text[-limit:]
    newline = cut.find("\n")
    return cut[newline + 1:] if 0 <= newline < limit // 2 else cut


def joined(*parts: str) -> str:
    """Non-empty parts, one per line, clipped as a summary."""
    return clip("\n".join(part.strip() for part in parts if part and part.strip()))


def without_own(results: Iterable[CheckResult]) -> list[CheckResult]:
    """Every result but the bot's own status, the latest of each name (later ones win)."""
    latest: dict[str, CheckResult] = {}
    for result in results:
        if result.name != OWN_CONTEXT:
            latest[result.name] = result
    return list(latest.values())
