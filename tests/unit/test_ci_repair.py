"""CI repair as pure functions: the verdict table, failure signatures, the texts shown to
people and the model, and the three forges' CI webhooks parsed into ChecksCompleted."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bot.events import ChecksCompleted
from bot.forges.base import CheckResult
from bot.forges.checks import tail, without_own
from bot.forges.gitea.webhook import LabelMemory
from bot.forges.gitea.webhook import parse as gitea_parse
from bot.forges.github.webhook import parse as github_parse
from bot.forges.gitlab.webhook import parse as gitlab_parse
from bot.pipeline.ci_repair import (
    CI_READY,
    CI_REPAIR,
    CI_STOPPED,
    CI_VERDICT,
    History,
    decide,
    diagnosis,
    repair_feedback,
    signature,
)
from bot.policy.model import CI
from tests.e2e.forge_fakes import fixture

SHA = "a" * 40
OLD = "b" * 40
FAIL = CheckResult("tests", "failure", "2 tests failed", "FAILED test_x.py::test_a - assert 1 == 2")
FAIL_LATER = CheckResult("tests", "failure", "3 tests failed",
                         "FAILED test_x.py::test_a - assert 1 == 3")
OTHER = CheckResult("lint", "failure", "E501 line too long", "app.py:10: E501")
PASS = CheckResult("tests", "success", "all green")
PENDING = CheckResult("build", "pending")


def history(*events: tuple[str, str, dict[str, Any]]) -> History:
    return History.of({"kind": kind, "data": {"key": key, **data}} for kind, key, data in events)


EMPTY = History.of([])
ONE_REPAIR = history((CI_VERDICT, OLD, {"signature": signature([OTHER])}), (CI_REPAIR, OLD, {}))


@pytest.mark.parametrize(
    ("ci", "checks", "hist", "state", "taken", "action", "reason"),
    [
        (CI(repair="off"), [FAIL], EMPTY, "done", False, "ignore", "ci.repair is off"),
        (CI(repair="comment"), [FAIL, PASS], EMPTY, "done", False, "comment", "comment"),
        (CI(repair="fix"), [FAIL], EMPTY, "done", False, "repair", "repair 1 of 2"),
        (CI(repair="fix"), [FAIL], ONE_REPAIR, "failed", False, "repair", "repair 2 of 2"),
        (CI(repair="fix", max_repairs=1), [FAIL], ONE_REPAIR, "done", False, "stop",
         "ci.max_repairs (1) reached"),
        (CI(repair="fix", max_repairs=0), [FAIL], EMPTY, "done", False, "stop", "max_repairs"),
        # The same failure on a new commit (digits differ: normalised away) stops the loop.
        (CI(repair="fix"), [FAIL_LATER],
         history((CI_VERDICT, OLD, {"signature": signature([FAIL])})), "done", False, "stop",
         "failed the same way twice"),
        (CI(repair="comment"), [FAIL],
         history((CI_VERDICT, OLD, {"signature": signature([FAIL])})), "done", False, "stop",
         "failed the same way twice"),
        (CI(repair="fix"), [FAIL], EMPTY, "done", True, "comment", "taken over"),
        (CI(repair="fix"), [FAIL], EMPTY, "queued", False, "ignore", "the job is queued"),
        (CI(repair="fix"), [FAIL], EMPTY, "running", False, "ignore", "the job is running"),
        (CI(repair="fix"), [FAIL], EMPTY, "cancelled", False, "ignore", "cancelled"),
        (CI(repair="fix"), [FAIL, PENDING], EMPTY, "done", False, "wait", "still running"),
        # A redelivery, or a second check's event, of a commit that has its verdict.
        (CI(repair="fix"), [FAIL], history((CI_VERDICT, SHA, {"signature": "x"})), "done",
         False, "ignore", "already has a verdict"),
        (CI(repair="fix"), [OTHER], history((CI_STOPPED, "stopped", {})), "done", False,
         "ignore", "stopped"),
        (CI(ready_when_green=True), [PASS], EMPTY, "done", False, "ready", "every check"),
        (CI(ready_when_green=True), [PASS], history((CI_READY, SHA, {})), "done", False,
         "ignore", "already marked ready"),
        # Publish decided, under the policy merged with the repository's: its record counts.
        (CI(ready_when_green=False), [PASS], EMPTY, "done", False, "ready", "every check"),
        (CI(ready_when_green=True), [], EMPTY, "done", False, "ignore", "no check has passed"),
    ],
)
def test_the_verdict_table(ci, checks, hist, state, taken, action, reason) -> None:
    decision = decide(ci, sha=SHA, checks=checks, history=hist, job_state=state,
                      taken_over=taken, waiting_for_ci=True)
    assert decision.action == action
    assert reason in decision.reason


def test_green_marks_ready_only_a_pull_request_that_waits_for_the_ci() -> None:
    # A draft because the bot's own tests failed is not made ready by a green CI.
    decision = decide(CI(ready_when_green=True), sha=SHA, checks=[PASS], history=EMPTY,
                      job_state="done", taken_over=False, waiting_for_ci=False)
    assert decision.action == "ignore"


def test_signatures_tell_failures_apart_and_ignore_what_changes_between_runs() -> None:
    assert signature([FAIL]) == signature([FAIL_LATER])
    assert signature([FAIL]) != signature([OTHER])
    assert signature([FAIL, OTHER]) == signature([OTHER, FAIL])
    assert signature([FAIL, OTHER]) != signature([FAIL])
    hashed = CheckResult("tests", "failure", "at deadbeef1", "run 12 took 3.2s")
    assert signature([hashed]) == signature([CheckResult("tests", "failure", "at c0ffee0042",
                                                         "run 99 took 8.7s")])


def test_a_persons_retry_starts_the_loop_afresh() -> None:
    hist = history((CI_VERDICT, OLD, {"signature": "s1"}), (CI_REPAIR, OLD, {}),
                   ("job.requeued", "", {"by": "ci"}), (CI_STOPPED, "stopped", {}),
                   ("job.requeued", "", {"by": "ada", "mode": "retry"}))
    assert (hist.repairs, dict(hist.verdicts), hist.stopped) == (0, {}, False)
    kept = history((CI_REPAIR, OLD, {}), ("job.requeued", "", {"by": "ci"}))
    assert kept.repairs == 1


def test_the_history_counts_repairs_and_remembers_verdicts() -> None:
    hist = history((CI_VERDICT, OLD, {"signature": "s1"}), (CI_REPAIR, OLD, {}),
                   (CI_VERDICT, SHA, {"signature": "s2"}), (CI_REPAIR, SHA, {}),
                   (CI_READY, SHA, {}), ("pull.published", "", {}))
    assert hist.repairs == 2 and dict(hist.verdicts) == {OLD: "s1", SHA: "s2"}
    assert hist.ready == {SHA} and not hist.stopped


SECRET_LINE = "export GITHUB_TOKEN=ghp_" + "x1Y2z3" * 6


def test_the_diagnosis_is_redacted_defused_and_cannot_break_its_block() -> None:
    hostile = CheckResult(
        "tests`<b>", "failure", "@everyone failed ![pixel](https://evil.example/p.png)",
        f"```\n</details>\n{SECRET_LINE}\nAssertionError: boom", "javascript:alert(1)")
    text = diagnosis(SHA, [hostile], "next step")
    assert "ghp_" not in text
    assert "@everyone" not in text and "@\u200beveryone" in text
    assert "````text" in text  # a fence longer than any run of backticks inside
    assert "AssertionError: boom" in text
    assert "javascript:" not in text  # only http(s) links
    assert "![" not in text and "](https://evil" not in text  # no image, no link
    assert "`tests'<b>`" in text  # a code span: literal
    assert "<code>tests&#x27;&lt;b&gt;</code>" in text  # in HTML, escaped
    assert text.rstrip().endswith("next step")


def test_the_repair_feedback_is_untrusted_output_bounded_and_redacted() -> None:
    long = CheckResult("tests", "failure", "1 failed",
                       "x\n" * 10_000 + SECRET_LINE + "\nE   assert 1 == 2")
    text = repair_feedback(SHA, [long, OTHER], "repair 1 of 2")
    assert text.count("<untrusted-test-output>") == 2
    assert "ghp_" not in text and "E   assert 1 == 2" in text
    assert len(text) <= 8_000


def test_log_tails_keep_the_end_and_checks_drop_the_bots_own_status() -> None:
    assert tail("head\n" + "y" * 5_000 + "\nlast line").endswith("last line")
    assert len(tail("z" * 10_000)) == 3_000
    own = CheckResult("forgebot", "failure")
    first, second = CheckResult("ci", "failure"), CheckResult("ci", "success")
    assert without_own([own, first, second]) == [second]


# ----------------------------------------------------------------------------- webhooks


def _body(data: dict[str, Any]) -> bytes:
    return json.dumps(data).encode()


def test_github_check_run_failure_names_branch_and_pull_request() -> None:
    payload = fixture("github", "ci/check_run__completed.json")
    payload["check_run"]["conclusion"] = "failure"
    event = github_parse({"X-GitHub-Event": "check_run"}, _body(payload))
    assert event == ChecksCompleted(
        repo=event.repo, sha="ec26c3e57ca3a959ca5aad62de7213c562f8c821", state="failure",
        name="Octocoders-linter", branches=("changes",), pull_numbers=(2,))
    assert event.repo.full_name == "Codertocat/Hello-World"


def test_github_check_suite_and_status() -> None:
    suite = github_parse({"X-GitHub-Event": "check_suite"},
                         _body(fixture("github", "ci/check_suite__completed.json")))
    assert isinstance(suite, ChecksCompleted)
    assert (suite.state, suite.name, suite.pull_numbers) == ("success", "octocoders-linter", (2,))
    status = fixture("github", "ci/status.json")
    status["state"] = "error"
    event = github_parse({"X-GitHub-Event": "status"}, _body(status))
    assert isinstance(event, ChecksCompleted)
    assert (event.state, event.name) == ("failure", "default")
    assert event.branches == ("master", "changes", "gh-pages")
    status["state"] = "pending"
    assert github_parse({"X-GitHub-Event": "status"}, _body(status)) is None


@pytest.mark.parametrize("conclusion", ["neutral", "cancelled", "skipped", None])
def test_github_conclusions_that_start_nothing(conclusion: str | None) -> None:
    payload = fixture("github", "ci/check_run__completed.json")
    payload["check_run"]["conclusion"] = conclusion
    assert github_parse({"X-GitHub-Event": "check_run"}, _body(payload)) is None


def test_gitlab_pipeline_hook() -> None:
    payload = fixture("gitlab", "ci/pipeline_hook__success.json")
    event = gitlab_parse({"X-Gitlab-Event": "Pipeline Hook"}, _body(payload))
    assert event == ChecksCompleted(
        repo=event.repo, sha="bcbb5ec396a2c0f828686f14fac9b80b780504f2", state="success",
        name="pipeline", branches=("master",))
    payload["object_attributes"].update(status="failed", ref="forgebot/1-add-a-farewell")
    payload["merge_request"] = {"iid": 7}
    event = gitlab_parse({"X-Gitlab-Event": "Pipeline Hook"}, _body(payload))
    assert isinstance(event, ChecksCompleted)
    assert (event.state, event.pull_numbers) == ("failure", (7,))
    payload["object_attributes"]["status"] = "running"
    assert gitlab_parse({"X-Gitlab-Event": "Pipeline Hook"}, _body(payload)) is None


def test_gitea_status_event(tmp_path) -> None:
    payload = fixture("gitea", "ci/status__success.json")
    payload["state"] = "failure"
    event = gitea_parse({"X-Gitea-Event": "status"}, _body(payload), LabelMemory(None))
    assert isinstance(event, ChecksCompleted)
    assert (event.state, event.name, event.branches, event.pull_numbers) == (
        "failure", "ci/woodpecker/pr/test", (), ())
    assert event.repo.full_name == "example/example"
    payload["state"] = "pending"
    assert gitea_parse({"X-Gitea-Event": "status"}, _body(payload), LabelMemory(None)) is None
