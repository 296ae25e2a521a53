"""What the bot writes on the forge: the pull request body and the issue comments.

Pure functions over values. Nothing here repeats a secret: findings carry a path, a line and a
kind, never the value, and the model's own words are not quoted back.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from bot.pipeline.outcomes import Outcome
from bot.sandbox.base import TestCounts
from bot.secret_scan import redact

MARKER = "<!-- forgebot -->"
MAX_FAILURES_SHOWN = 10
MAX_FAILURE_CHARS = 300


@dataclass(frozen=True)
class FileChange:
    path: str
    added: int
    removed: int


@dataclass(frozen=True)
class Report:
    """Everything the reporter needs about one finished attempt."""

    job_id: int
    attempt: int
    issue_number: int
    issue_title: str
    outcome: Outcome
    files: Sequence[FileChange] = ()
    tests: TestCounts | None = None
    test_exit: int | None = None
    counted_by: str = ""  # the runner summary that gave ``tests`` ("pytest", "TAP" ...)
    junit_missing: str | None = None  # why the run has no JUnit report
    ran_before: int | None = None  # tests run on the base commit, when compared
    gate_lines: Sequence[str] = ()  # "policy: ok", "paths.deny: .github/x.yml:1 ..."
    iterations: int = 0
    detail: str = ""
    pull_url: str | None = None
    evidence: Sequence[str] = ()  # Markdown lines: which tests fail before and pass after
    instructions: Sequence[str] = ()  # the repository's instruction files the agent was given
    spec_path: str = ""  # a spec job's spec (then issue_number is 0: there is no issue)
    traceability: Sequence[str] = ()  # Markdown lines: criterion, test, before, after
    untested: Sequence[str] = ()  # new or changed criteria no test carries: a failed check
    spec_status: str = ""  # what the change writes in the spec's front matter
    setup_lines: Sequence[str] = ()  # how the repository was set up: toolchain, dependencies
    dependency_lines: Sequence[str] = ()  # dependencies the change adds, removes or changes
    dependency_draft: bool = False  # a draft because of them (checks.new_dependencies: draft)
    notes: Sequence[str] = ()  # what the bot did to the task (hidden content removed)


def _tests_line(report: Report) -> str:
    t = report.tests
    why = report.junit_missing or "none was read"
    if t is None:
        if report.test_exit is None:
            return "not run"
        return (f"exit code {report.test_exit}; no JUnit report ({why}), and no test counts "
                "in the runner's output")
    text = f"{t.passed} passed, {t.failed} failed"
    if t.errors:
        text += f", {t.errors} errors"
    if t.skipped:
        text += f", {t.skipped} skipped"
    if report.counted_by:
        text += (f" (exit code {report.test_exit}; counted from the {report.counted_by} summary "
                 f"in the output: no JUnit report, {why})")
    ran = t.passed + t.failed + t.errors
    if report.ran_before is not None and ran < report.ran_before:
        text += (f"; {report.ran_before - ran} fewer tests ran than on the base commit "
                 f"({report.ran_before})")
    return text


def fenced(text: str) -> str:
    """``text`` in a code fence longer than any run of backticks inside it, so nothing in it
    renders: no Markdown, link, image or mention of the model's or the tests' making."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{text}\n{fence}"


def failure_lines(failures: Sequence[str]) -> str:
    """Test failure lines fit for a pull request: at most ``MAX_FAILURES_SHOWN`` of them, each
    secret-scanned (a flagged line is replaced) and cut; the caller fences them. They are
    the tests' own words, so nothing in them is interpreted."""
    shown = [redact(line)[:MAX_FAILURE_CHARS] for line in failures[:MAX_FAILURES_SHOWN]]
    more = len(failures) - MAX_FAILURES_SHOWN
    return "\n".join(shown + ([f"... and {more} more"] if more > 0 else []))


def pull_title(report: Report) -> str:
    if report.spec_path:
        return report.issue_title[:200]
    return f"{report.issue_title} (#{report.issue_number})"[:200]


def _asked(report: Report) -> list[str]:
    """Where the work came from: the issue it closes, or the spec it implements."""
    if not report.spec_path:
        return [f"Closes #{report.issue_number}.", "", "## What was asked",
                f"Issue #{report.issue_number}: {report.issue_title}"]
    lines = [f"Implements the spec `{report.spec_path}`.", "", "## What was asked",
             f"{report.issue_title}, changed on the default branch (`{report.spec_path}`)."]
    if report.spec_status:
        lines.append(f"Merging this records `status: {report.spec_status}` in the spec's "
                     "front matter.")
    return lines


def pull_body(report: Report) -> str:
    lines = [
        MARKER,
        *_asked(report),
        "",
        "## What changed",
        *[f"- `{f.path}` (+{f.added} -{f.removed})" for f in report.files],
        "",
        "## Tests (run in a sandbox without network, on the trusted copy of the change)",
        f"- {_tests_line(report)}",
    ]
    if report.tests and report.tests.failures:
        lines += ["", "Failing tests, as their runner reported them:", "",
                  fenced(failure_lines(report.tests.failures))]
    if report.spec_path:
        lines += ["", "## Traceability (each criterion, the tests marked with its id, and "
                  "their results on the base commit and on the change)", *report.traceability]
    if report.evidence:
        lines += ["", "## Evidence (the change's tests on the base commit, then on the change)",
                  *report.evidence]
    if report.dependency_lines:
        lines += ["", "## Dependencies changed (installed again through the egress proxy)",
                  *[f"- {line}" for line in report.dependency_lines]]
    if report.instructions:
        used = ", ".join(f"`{path}`" for path in report.instructions)
        lines += ["", f"Repository instructions followed: {used} (from the default branch)."]
    if report.setup_lines:
        lines += ["", "## Setup", *[f"- {line}" for line in report.setup_lines]]
    if report.notes:
        lines += ["", *[f"> {note}" for note in report.notes]]
    lines += [
        "",
        "## Gates",
        *[f"- {g}" for g in report.gate_lines],
        "",
        f"forgebot job {report.job_id}, attempt {report.attempt}, "
        f"{report.iterations} model iteration(s). Outcome: `{report.outcome.value}`.",
    ]
    if report.outcome is Outcome.TESTS_FAILED:
        lines.insert(1, "> **Draft:** the tests fail on this change; it needs a human or `/retry`.")
    elif report.outcome is Outcome.UNPROVEN and report.untested:
        named = ", ".join(f"`{cid}`" for cid in report.untested)
        lines.insert(1, f"> **Draft:** failed check: no test carries {named}, so nothing shows "
                     "the spec's criteria hold. It needs a human or a new push of the spec.")
    elif report.outcome is Outcome.UNPROVEN:
        lines.insert(1, "> **Draft:** the tests pass, but no test fails without this change, so "
                     "nothing shows it does what the issue asks. It needs a human or `/retry`.")
    elif report.dependency_draft:
        lines.insert(1, "> **Draft:** the change adds, removes or changes dependencies (listed "
                     "below); `checks.new_dependencies` is `draft`, so a person decides.")
    return "\n".join(lines) + "\n"


STAGES = ("prepare", "implement", "verify", "publish")
_STAGE_TEXT = {
    "prepare": "Preparing: mirror, worktree, policy",
    "implement": "Implementing: the model edits, the tests run in a sandbox",
    "verify": "Verifying: the change re-applied on the trusted side, gates and tests",
    "publish": "Publishing: branch and pull request",
}


def status_marker(job_id: int) -> str:
    """The hidden marker that finds a job's status comment again, on every forge."""
    return f"<!-- forgebot:status job={job_id} -->"


@dataclass(frozen=True)
class Status:
    """Where a job stands, for its one status comment (edited in place)."""

    job_id: int
    attempt: int
    current: str | None = None  # the stage under way
    done: tuple[str, ...] = ()
    iteration: tuple[int, int] | None = None  # (i, of N) while implementing
    final: Report | None = None
    # Still in the queue (no attempt has started): its place (None: far back) and why it
    # waits ("": for a free worker; else a limit, bot.pipeline.limits.wait_reason).
    queued: bool = False
    position: int | None = None
    wait_reason: str = ""


def _queued_line(status: Status) -> str:
    if not status.queued:
        return "- [x] Queued"
    line = "- [ ] **Queued**"
    if status.position is not None:
        line += f" (position {status.position})"
    if status.wait_reason:
        # One line: a reason never breaks the checklist, whatever names it carries.
        line += ": " + " ".join(status.wait_reason.split())
    return line + " ⏳"


def status_comment(status: Status) -> str:
    """The checklist of stages, then the outcome once there is one. A queued job shows its
    place in the queue and why it waits; its attempt has not started, so none is named."""
    header = f"**forgebot** — job {status.job_id}"
    if not status.queued:
        header += f", attempt {status.attempt}"
    lines = [MARKER, status_marker(status.job_id), header, "", _queued_line(status)]
    for stage in STAGES:
        text = _STAGE_TEXT[stage]
        if stage == "implement" and status.iteration and stage == status.current:
            text += f" (iteration {status.iteration[0]} of {status.iteration[1]})"
        if stage in status.done:
            lines.append(f"- [x] {text}")
        elif stage == status.current and status.final is None:
            lines.append(f"- [ ] **{text}** ⏳")
        else:
            lines.append(f"- [ ] {text}")
    if status.final is not None:
        lines += ["", _finished_text(status.final)]
    return "\n".join(lines) + "\n"


_EXPLAIN = {
    Outcome.SUBMITTED: "opened a pull request; its tests pass",
    Outcome.TESTS_FAILED: "opened a draft pull request, but the tests fail on it",
    Outcome.UNPROVEN: "opened a draft pull request: its tests pass, but no test fails without it",
    Outcome.NO_CHANGES: "did not produce a usable change, so nothing was pushed",
    Outcome.MODEL_REPEATS: "stopped: the model kept repeating a reply it had already given, "
                           "so nothing was pushed",
    Outcome.POLICY_BLOCKED: "stopped the change at the policy gate, so nothing was pushed",
    Outcome.SECRET_FOUND: "found what looks like a secret in the change, so nothing was pushed",
    Outcome.BUDGET_EXCEEDED: "ran out of its budget before finishing",
    Outcome.CONTEXT_TOO_SMALL: "could not fit the task into the model's context window",
    Outcome.SANDBOX_ERROR: "could not run the sandbox",
    Outcome.MODEL_ERROR: "could not get an answer from the model",
    Outcome.FORGE_ERROR: "could not talk to the forge or push the branch",
    Outcome.WORKER_LOST: "lost its worker too many times",
    Outcome.INTERNAL_ERROR: "hit an internal error (the operator's log has the details)",
    Outcome.CONFIG_ERROR: "could not use this repository's `.forgebot.yml`",
    Outcome.NO_TOOLCHAIN: "does not know how to run this repository's tests",
    Outcome.SETUP_FAILED: "could not install this repository's dependencies",
    Outcome.CANCELLED: "was cancelled",
    Outcome.TAKEN_OVER: "left the branch alone: someone else has pushed to it",
    Outcome.AWAITING_APPROVAL: "posted its plan and waits for `/approve`",
}


def _finished_text(report: Report) -> str:
    lines = [
        f"forgebot {_EXPLAIN[report.outcome]} (job {report.job_id}, attempt {report.attempt}, "
        f"outcome `{report.outcome.value}`).",
    ]
    if report.pull_url:
        lines.append(f"Pull request: {report.pull_url}")
    if report.tests is not None or report.test_exit is not None:
        lines.append(f"Tests: {_tests_line(report)}.")
    blocked = [g for g in report.gate_lines if not g.endswith(": ok")]
    if blocked and report.outcome in (Outcome.POLICY_BLOCKED, Outcome.SECRET_FOUND):
        lines += ["", "Why:", *[f"- {g}" for g in blocked]]
    if report.setup_lines:
        lines += ["", *[f"- {line}" for line in report.setup_lines]]
    if report.notes:
        lines += ["", *report.notes]
    if report.detail:
        lines += ["", report.detail]
    return "\n".join(lines)
