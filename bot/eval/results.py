"""What an evaluation found, per task and for the suite, and how it is shown (pure).

A task ends in one ``status``: ``ran`` (the bot ran; ``outcome`` is the job's outcome and
``resolved`` says whether the hidden tests pass on its pull request's branch), ``invalid``
(the task itself is broken: its hidden tests pass on the base commit, or its repository is
not the language it claims) or ``error`` (the harness could not run it: the sandbox, git or
the forge failed; ``detail`` says how). Only ``ran`` tasks count towards the resolved rate.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

TaskStatus = Literal["ran", "invalid", "error"]


@dataclass(frozen=True)
class TaskResult:
    """One task's result. Token counts are summed over every model reply of the job."""

    name: str
    language: str
    difficulty: int
    status: TaskStatus
    outcome: str | None = None  # the job's outcome, or "timeout" / "no_job"
    resolved: bool = False
    iterations: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0  # wall clock from filing the issue to the job's end
    pull: int | None = None
    base_exit: int | None = None  # the hidden tests' exit code on the base commit
    hidden_exit: int | None = None  # ... and on the pull request's branch
    detail: str = ""  # why invalid or error, or a note on the grading run
    # The end of the grading run's output on the branch: sandbox text, in the JSON only.
    hidden_output: str = ""


@dataclass(frozen=True)
class SuiteResult:
    """Every task's result, in the order they ran."""

    suite: str
    provider: str
    tasks: tuple[TaskResult, ...] = field(default_factory=tuple)

    @property
    def ran(self) -> list[TaskResult]:
        return [t for t in self.tasks if t.status == "ran"]

    @property
    def resolved(self) -> int:
        return sum(t.resolved for t in self.ran)

    @property
    def rate(self) -> float:
        """Resolved tasks over tasks that ran (0.0 when none ran)."""
        return self.resolved / len(self.ran) if self.ran else 0.0

    @property
    def broken(self) -> list[TaskResult]:
        """Tasks that are invalid or could not run: the suite or the machine needs a fix."""
        return [t for t in self.tasks if t.status != "ran"]

    def as_dict(self) -> dict[str, Any]:
        return {
            "suite": self.suite,
            "provider": self.provider,
            "total": len(self.tasks),
            "ran": len(self.ran),
            "resolved": self.resolved,
            "rate": round(self.rate, 4),
            "invalid": [t.name for t in self.tasks if t.status == "invalid"],
            "errors": [t.name for t in self.tasks if t.status == "error"],
            "prompt_tokens": sum(t.prompt_tokens for t in self.tasks),
            "completion_tokens": sum(t.completion_tokens for t in self.tasks),
            "tasks": [asdict(t) for t in self.tasks],
        }

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), indent=2) + "\n"


_COLUMNS = ("task", "lang", "diff", "outcome", "resolved", "replies", "tokens (p/c)",
            "seconds")


def _row(t: TaskResult) -> tuple[str, ...]:
    if t.status == "ran":
        outcome, resolved = t.outcome or "-", "yes" if t.resolved else "no"
    else:
        outcome, resolved = t.status, "-"
    return (t.name, t.language, str(t.difficulty), outcome, resolved, str(t.iterations),
            f"{t.prompt_tokens}/{t.completion_tokens}", f"{t.seconds:.1f}")


def render_table(result: SuiteResult) -> str:
    """A plain-text table, one row per task, then the resolved count and rate, then why each
    invalid or failed task is so."""
    rows = [_COLUMNS, *(_row(t) for t in result.tasks)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_COLUMNS))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
             for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    lines.append("")
    lines.append(summary_line(result))
    lines.extend(f"{t.name}: {t.status}: {t.detail}" for t in result.broken)
    return "\n".join(lines) + "\n"


def summary_line(result: SuiteResult) -> str:
    """``resolved 3/4 (75.0%)``, plus how many tasks did not count and why."""
    line = f"resolved {result.resolved}/{len(result.ran)} ({result.rate:.1%})"
    counts = _status_counts(result.broken)
    return f"{line}; not counted: {counts}" if counts else line


def _status_counts(tasks: Sequence[TaskResult]) -> str:
    invalid = sum(t.status == "invalid" for t in tasks)
    errors = sum(t.status == "error" for t in tasks)
    parts = [f"{invalid} invalid"] if invalid else []
    parts += [f"{errors} error"] if errors else []
    return ", ".join(parts)
