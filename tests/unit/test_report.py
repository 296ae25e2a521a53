"""The texts the bot writes on the forge: pure functions over values."""

from bot.pipeline.outcomes import Outcome
from bot.pipeline.report import (
    FileChange,
    Report,
    Status,
    pull_body,
    status_comment,
    status_marker,
)
from bot.sandbox.base import TestCounts


def report(**kw):
    base = dict(job_id=4, attempt=2, issue_number=9, issue_title="Add farewell",
                outcome=Outcome.SUBMITTED)
    return Report(**{**base, **kw})


def test_status_shows_the_stage_under_way_and_the_iteration():
    text = status_comment(Status(4, 2, current="implement", done=("prepare",), iteration=(2, 3)))
    assert status_marker(4) in text
    assert "- [x] Preparing" in text
    assert "sandbox (iteration 2 of 3)** ⏳" in text
    assert "- [ ] Verifying" in text


def test_final_status_names_the_outcome_and_why():
    final = report(outcome=Outcome.POLICY_BLOCKED,
                   gate_lines=["paths.deny: .github/x.yml: matches '.github/**'",
                               "secret scan: ok"])
    text = status_comment(Status(4, 2, done=("prepare", "implement", "verify"), final=final))
    assert "outcome `policy_blocked`" in text
    assert "paths.deny: .github/x.yml" in text
    assert "secret scan: ok" not in text.split("Why:")[1]


def test_pull_body_carries_tests_gates_and_a_draft_note():
    body = pull_body(report(outcome=Outcome.TESTS_FAILED,
                            files=[FileChange("a.py", 3, 1)],
                            tests=TestCounts(passed=4, failed=1, failures=("t::x: boom",)),
                            gate_lines=["policy: ok", "secret scan: ok"]))
    assert "Closes #9." in body and "`a.py` (+3 -1)" in body
    assert "4 passed, 1 failed" in body and "```text\nt::x: boom\n```" in body
    assert "**Draft:**" in body and "Outcome: `tests_failed`" in body


def test_failure_messages_are_data_in_the_body_fenced_bounded_and_scanned():
    key = "AKIA" + "QX7R2MZ4PL9VWT3N"
    failures = (
        "t::a: AssertionError: ``` [click](https://evil.invalid) @maintainers {job_id} %s",
        f"t::b: AssertionError: aws_access_key_id = {key}",
        "t::c: " + "x" * 2000,
        *(f"t::more{i}: boom" for i in range(20)),
    )
    body = pull_body(report(outcome=Outcome.TESTS_FAILED,
                            tests=TestCounts(failed=len(failures), failures=failures)))
    block = body.split("Failing tests, as their runner reported them:")[1]
    assert block.lstrip().startswith("````text\n")  # longer than the ``` inside it
    assert "{job_id} %s" in block  # never formatted
    assert key not in body and "[line redacted" in block
    assert "x" * 301 not in body
    assert "... and 13 more" in block


def test_counts_from_the_runners_summary_say_where_they_come_from_and_why():
    body = pull_body(report(tests=TestCounts(passed=5, failed=1), test_exit=1,
                            counted_by="mocha", junit_missing="the test command wrote none"))
    assert ("5 passed, 1 failed (exit code 1; counted from the mocha summary in the output: "
            "no JUnit report, the test command wrote none)") in body


def test_a_run_without_report_or_counts_says_why():
    text = status_comment(Status(4, 2, done=("prepare", "implement", "verify"), final=report(
        test_exit=0, junit_missing="it is not a JUnit XML report")))
    assert ("Tests: exit code 0; no JUnit report (it is not a JUnit XML report), and no test "
            "counts in the runner's output.") in text


def test_fewer_tests_than_on_the_base_commit_are_named():
    fewer = pull_body(report(tests=TestCounts(passed=7, skipped=2), ran_before=9))
    same = pull_body(report(tests=TestCounts(passed=9), ran_before=9))
    assert "7 passed, 0 failed, 2 skipped; 2 fewer tests ran than on the base commit (9)" in fewer
    assert "fewer" not in same


def test_a_run_stopped_for_repeats_says_so_and_suggests_revise():
    text = status_comment(Status(4, 2, done=("prepare", "implement", "verify"), final=report(
        outcome=Outcome.MODEL_REPEATS,
        detail="The model gave the same reply again. Comment `/revise <what to do differently>`")))
    assert "the model kept repeating a reply it had already given" in text
    assert "outcome `model_repeats`" in text and "/revise" in text
