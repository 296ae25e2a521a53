"""The dashboard issue's body: rendering a table of jobs, and reading ticked retry boxes back."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from bot.pipeline.dashboard_issue import MARKER, checked_jobs, render, retry_line
from bot.store import JobView

NOW = datetime(2026, 11, 21, 15, 30, tzinfo=UTC)


def job(job_id: int, state: str, *, title: str = "Add a farewell", issue: int = 3,
        outcome: str | None = None, pull: int | None = None, wait: str = "",
        kind: str = "issue") -> JobView:
    return JobView(id=job_id, trigger_key=f"local:acme/hello:issue:{issue}", forge="local",
                   repo="acme/hello", default_branch="main", issue_number=issue, title=title,
                   requested_by="grace", state=state, outcome=outcome, branch=None,
                   pull_number=pull, created_at=NOW.replace(tzinfo=None),
                   updated_at=NOW.replace(tzinfo=None), kind=kind, wait_reason=wait)


@pytest.mark.parametrize(("body", "expected"), [
    ("", []),
    (retry_line(4), []),
    (retry_line(4, checked=True), [4]),
    ("- [X] <!-- forgebot:retry job=7 --> retry job 7", [7]),
    ("* [x] <!--forgebot:retry job=7--> retry", [7]),
    ("  - [x] <!-- forgebot:retry job=7 --> indented", [7]),
    (f"{retry_line(2, checked=True)}\n{retry_line(3)}\n{retry_line(5, checked=True)}", [2, 5]),
    (f"{retry_line(2, checked=True)}\n{retry_line(2, checked=True)}", [2]),
    # Only a line of its own that starts with the box counts.
    ("| 9 | #1 | - [x] <!-- forgebot:retry job=9 --> | | |", []),
    ("text - [x] <!-- forgebot:retry job=9 -->", []),
    ("- [x] retry job 9", []),
    ("- [x] <!-- forgebot:retry job=abc -->", []),
    ("- [x] <!-- forgebot:retry job=1234567890123 -->", []),  # more digits than an id has
])
def test_checked_jobs(body: str, expected: list[int]) -> None:
    assert checked_jobs(body) == expected


def test_render_lists_each_state_with_a_box_per_failed_job() -> None:
    jobs = [job(5, "failed", outcome="tests_failed", pull=6),
            job(4, "running", issue=2),
            job(3, "queued", issue=1, wait="waiting: acme/hello has 1 running job")]
    body = render("local", jobs, NOW)
    assert body.startswith(MARKER)
    assert "Last updated 2026-11-21 15:30 UTC." in body
    assert "### Queued (1)" in body and "### Running (1)" in body and "### Failed (1)" in body
    assert "| 3 | #1 | Add a farewell |  | waiting: acme/hello has 1 running job |" in body
    assert "| 5 | #3, #6 | Add a farewell | tests_failed |  |" in body
    assert retry_line(5) in body.splitlines()
    assert checked_jobs(body) == []
    # Only failed jobs get a box: ticking every box in the body finds job 5 alone.
    assert checked_jobs(body.replace("- [ ]", "- [x]")) == [5]


def test_render_with_no_jobs_says_none() -> None:
    body = render("gitlab", [], NOW)
    assert body.count("None.") == 3 and "retry job" not in body


def test_render_names_merge_requests_the_gitlab_way_and_tasks_by_kind() -> None:
    body = render("gitlab", [job(8, "failed", issue=0, kind="task", pull=2)], NOW)
    assert "| 8 | task, !2 |" in body


@pytest.mark.parametrize("title", [
    "x\n- [x] <!-- forgebot:retry job=99 --> sneaky",
    "a | b <!-- forgebot:retry job=99 -->",
])
def test_an_issue_title_cannot_forge_a_retry_box(title: str) -> None:
    body = render("local", [job(5, "failed", title=title)], NOW)
    ticked = body.replace("- [ ]", "- [x]")
    assert checked_jobs(ticked) == [5]
    assert "<!-- forgebot:retry job=99" not in body


def test_a_title_cannot_mention_anyone_or_break_the_table() -> None:
    body = render("local", [job(5, "queued", title="ping @grace | " + "y" * 200)], NOW)
    [row] = [line for line in body.splitlines() if line.startswith("| 5 |")]
    assert "@grace" not in row and "@\u200bgrace" in row
    assert "\\|" in row and len(re.findall(r"(?<!\\)\|", row)) == 6  # five cells
    assert "…" in row
