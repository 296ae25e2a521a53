"""Traceability, constraints, the status write-back and the spec job's task and pull request
body: pure functions over tables of inputs."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from bot.pipeline.outcomes import Outcome
from bot.pipeline.report import Report, pull_body, pull_title
from bot.pipeline.spec_trigger import build_task, error_status, named_paths, spec_branch, spec_paths
from bot.pipeline.traceability import (
    Mark,
    case_matches,
    find_marks,
    parse_figures,
    scan_tree,
    spec_edit_violations,
    spec_report,
    trace,
    write_status,
)
from bot.policy.changeset import parse_diff
from bot.specs import Criterion, SpecError, constraint_of, diff_specs, parse_spec, with_status
from bot.store import JobView

SPEC = """\
---
id: greeting
status: proposed
---
# Greeting

## Acceptance
1. greet("Ada") says hello {#greet-name}
2. farewell("Ada") says goodbye {#farewell}
3. p95 latency < 100 ms {#fast}
"""


@pytest.mark.parametrize(("text", "limit"), [
    ("p95 latency < 100 ms", "< 100 ms"),
    ("handles 10,000 items", "handles 10,000 items"),
    ("answers within 2 s", "within 2 s"),
    ("uses at most 64 MB of memory", "at most 64 MB"),
    ("p99 <= 1.5 s", "<= 1.5 s"),
    ('`greet("Ada")` returns `"Hello, Ada!"`', None),
    ("a name longer than `40` characters is cut", None),  # the number is code
    ("A blank name is greeted as world", None),
    ("overhandles 5 things", None),  # not a word of its own
])
def test_constraints_are_criteria_that_state_a_measurable_limit(text: str,
                                                                limit: str | None) -> None:
    found = constraint_of(Criterion("s#1", 1, text, 1))
    assert (found.text if found else None) == limit


def test_a_constraint_reads_its_number_and_unit() -> None:
    found = constraint_of(Criterion("s#1", 1, "handles 10,000 items", 1))
    assert found is not None and (found.number, found.unit) == (10000.0, "items")


@pytest.mark.parametrize(("text", "expected"), [
    ("---\nid: a\nstatus: proposed\n---\n# A\n", "---\nid: a\nstatus: implemented\n---\n# A\n"),
    ("---\nid: a\n---\n# A\n", "---\nid: a\nstatus: implemented\n---\n# A\n"),
    ("# A\n", "---\nstatus: implemented\n---\n# A\n"),
    ("---\r\nstatus: draft\r\n---\r\n# A\r\n", "---\r\nstatus: implemented\r\n---\r\n# A\r\n"),
])
def test_with_status_changes_only_the_status_line(text: str, expected: str) -> None:
    assert with_status(text, "implemented") == expected
    parse_spec(with_status(text + "VERIFY: x\n", "implemented"), "a.md")  # still a spec


def test_with_status_refuses_an_unknown_status_and_unclosed_front_matter() -> None:
    with pytest.raises(ValueError, match="not one of"):
        with_status("# A\n", "done")
    with pytest.raises(ValueError, match="never closed"):
        with_status("---\nid: a\n# A\n", "partial")


PY_TESTS = '''\
import pytest


@pytest.mark.spec("greeting#greet-name")
def test_greet():
    pass


# spec: greeting#farewell, greeting#fast
@pytest.mark.slow
def test_farewell_and_speed():
    pass


@pytest.mark.spec("greeting#farewell")
class TestFarewell:
    def test_route(self):
        pass


def test_unmarked():
    pass
'''

GO_TESTS = '''\
package hello

// spec: greeting#greet-name
func TestGreet(t *testing.T) {}
'''

JS_TESTS = '''\
// spec: greeting#farewell
it("says goodbye", () => {});
'''


@pytest.mark.parametrize(("path", "text", "expected"), [
    ("tests/test_app.py", PY_TESTS, [("greeting#greet-name", "test_greet"),
                                     ("greeting#farewell", "test_farewell_and_speed"),
                                     ("greeting#fast", "test_farewell_and_speed"),
                                     ("greeting#farewell", "TestFarewell")]),
    ("hello_test.go", GO_TESTS, [("greeting#greet-name", "TestGreet")]),
    ("app.test.js", JS_TESTS, [("greeting#farewell", "says goodbye")]),
    ("tests/test_x.py", "# spec: greeting#1\n" + "\n" * 20 + "def test_far():\n  pass\n", []),
    ("tests/test_x.py", '@pytest.mark.spec("not an id")\ndef test_x():\n  pass\n', []),
])
def test_marks_attach_criterion_ids_to_the_next_test(path: str, text: str,
                                                      expected: list[tuple[str, str]]) -> None:
    assert [(m.criterion_id, m.name) for m in find_marks(path, text)] == expected


@pytest.mark.parametrize(("mark", "case_id", "matches"), [
    (Mark("s#1", "tests/test_app.py", "test_greet", 1), "tests.test_app::test_greet", True),
    (Mark("s#1", "tests/test_app.py", "test_greet", 1), "tests.test_app::test_greet[x]", True),
    (Mark("s#1", "tests/test_app.py", "test_greet", 1), "tests.test_other::test_greet", False),
    (Mark("s#1", "tests/test_app.py", "test_greet", 1), "tests.test_app::test_greeter", False),
    (Mark("s#1", "tests/test_app.py", "TestFarewell", 1),
     "tests.test_app.TestFarewell::test_route", True),
    (Mark("s#1", "hello_test.go", "TestGreet", 1), "hello::TestGreet", True),
])
def test_a_mark_is_matched_to_its_junit_cases(mark: Mark, case_id: str, matches: bool) -> None:
    assert case_matches(mark, case_id) is matches


def test_figures_are_read_only_from_lines_of_the_exact_shape() -> None:
    output = ("FIGURE greeting#fast: 42.5 ms\nFIGURE greeting#fast: 1 ms\n"
              "noise FIGURE greeting#x: 3 s\nFIGURE greeting#y: <script> ms\n")
    assert parse_figures(output) == {"greeting#fast": "42.5 ms"}


def test_trace_maps_every_criterion_to_its_tests_and_names_the_untested() -> None:
    spec = parse_spec(SPEC, "specs/greeting.md")
    marks = find_marks("tests/test_app.py", PY_TESTS)
    before = [("tests.test_app::test_greet", "passed")]  # farewell tests could not run
    after = [("tests.test_app::test_greet", "passed"),
             ("tests.test_app::test_farewell_and_speed", "passed"),
             ("tests.test_app.TestFarewell::test_route", "passed")]
    result = trace(spec, ("greeting#farewell", "greeting#fast", "greeting#greet-name"), marks,
                   before, after, before_failed=True, new_files=("tests/test_app.py",),
                   figures={"greeting#fast": "12 ms"})
    rows = {r.criterion_id: r for r in result.rows}
    assert not rows["greeting#greet-name"].proven  # it passed before as well
    assert rows["greeting#farewell"].proven and rows["greeting#fast"].proven
    assert result.untested == ()
    assert not result.complete  # greet-name is required but not proven
    table = "\n".join(result.lines())
    assert ("| `greeting#farewell` (new or changed) | `tests/test_app.py::test_farewell_and_speed`"
            " | yes | yes |") in table
    assert ("| `greeting#greet-name` (new or changed) | `tests/test_app.py::test_greet` "
            "| no | yes |") in table
    assert "- `greeting#fast`: < 100 ms; measured: 12 ms" in table

    untested = trace(spec, ("greeting#farewell",), [], before, after, before_failed=True)
    assert untested.untested == ("greeting#farewell",)
    assert "**Failed check:** no test carries `greeting#farewell`." in untested.lines()


def test_scan_tree_reads_regular_test_files_and_never_follows_links(tmp_path: Path) -> None:
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_app.py").write_text(PY_TESTS)
    (tmp_path / "app.py").write_text(PY_TESTS)  # not a test file
    outside = tmp_path.parent / f"{tmp_path.name}-outside.py"
    outside.write_text(PY_TESTS)
    (tmp_path / "tests" / "test_link.py").symlink_to(outside)
    assert {m.path for m in scan_tree(tmp_path)} == {"tests/test_app.py"}


def test_the_status_is_written_into_the_trusted_tree_and_reported(tmp_path: Path) -> None:
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "greeting.md").write_text(SPEC)
    spec = parse_spec(SPEC, "specs/greeting.md")
    marks = find_marks("tests/test_app.py", PY_TESTS)
    after = [("tests.test_app::test_farewell_and_speed", "passed")]
    proven = trace(spec, ("greeting#farewell",), marks, [("x::y", "failed")], after,
                   before_failed=True, new_files=("tests/test_app.py",))
    elsewhere = trace(spec, ("greeting#farewell",), marks, [("x::y", "failed")], after,
                      before_failed=True, new_files=("tests/test_other.py",))
    assert not elsewhere.complete  # an old test the base run never reached proves nothing
    fields = spec_report(proven, tmp_path, submitted=True)
    assert fields["spec_status"] == "implemented"
    assert "status: implemented" in (tmp_path / "specs" / "greeting.md").read_text()
    assert spec_report(proven, tmp_path, submitted=False)["spec_status"] == "partial"
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "linked").symlink_to(tmp_path / "elsewhere")
    assert not write_status(tmp_path, "linked/greeting.md", "partial")


def test_a_spec_jobs_pull_request_names_the_spec_and_carries_the_table() -> None:
    spec = parse_spec(SPEC, "specs/greeting.md")
    result = trace(spec, ("greeting#farewell",), [], [], [], before_failed=False)
    report = Report(job_id=3, attempt=1, issue_number=0, issue_title="Spec greeting: Greeting",
                    outcome=Outcome.UNPROVEN, traceability=tuple(result.lines()),
                    spec_path="specs/greeting.md", untested=result.untested,
                    spec_status="partial")
    body = pull_body(report)
    assert "Closes #" not in body and "#0" not in pull_title(report)
    assert "Implements the spec `specs/greeting.md`." in body
    assert "failed check: no test carries `greeting#farewell`" in body
    assert "| criterion | test | failed before | passes after |" in body
    assert "records `status: partial`" in body


def test_the_task_lists_the_criteria_the_constraints_and_the_marking_rule() -> None:
    old_text = SPEC.replace("3. p95 latency < 100 ms {#fast}\n", "")
    old, new = parse_spec(old_text, "specs/greeting.md"), parse_spec(SPEC, "specs/greeting.md")
    task = build_task(new, diff_specs(old, new), SPEC, old_text, sha="a" * 40, pusher="ada",
                      files=["hello_service/app.py"])
    assert "- `greeting#fast`: p95 latency < 100 ms" in task
    assert "Constraints (measurable limits)" in task and "`FIGURE <criterion id>:" in task
    assert '@pytest.mark.spec("greeting#fast")' in task
    assert "+3. p95 latency < 100 ms {#fast}" in task  # the diff


@pytest.mark.parametrize(("spec_id", "branch"), [
    ("greeting", "forgebot/spec-greeting"),
    ("API..v2", "forgebot/spec-api-v2"),
    ("---", "forgebot/spec-spec"),
])
def test_spec_branches_are_safe_names(spec_id: str, branch: str) -> None:
    assert spec_branch("forgebot/", spec_id) == branch


def test_spec_paths_and_named_paths() -> None:
    assert spec_paths(["specs/a.md", "README.md", "specs/x/b.md", "specs/a.md"],
                      ("specs/**/*.md",)) == ["specs/a.md", "specs/x/b.md"]
    assert named_paths("see `hello_service/app.py`, `../etc/passwd.txt` and `greet()`") == [
        "hello_service/app.py"]


def test_the_error_status_fits_the_forges_limit() -> None:
    errors = tuple(SpecError("specs/a.md", n, "x" * 200) for n in range(1, 4))
    status = error_status("specs/a.md", errors)
    assert len(status) == 140 and status.startswith("forgebot: specs/a.md does not parse (3")


def test_a_spec_jobs_change_may_not_edit_its_spec() -> None:
    now = datetime(2026, 1, 1)
    job = JobView(id=1, trigger_key="local:acme/hello:spec:specs/greeting.md", forge="local",
                  repo="acme/hello", default_branch="main", issue_number=0, title="t",
                  requested_by="ada", state="running", outcome=None, branch=None,
                  pull_number=None, created_at=now, updated_at=now, kind="spec")
    diff = ("diff --git a/specs/greeting.md b/specs/greeting.md\n"
            "--- a/specs/greeting.md\n+++ b/specs/greeting.md\n@@ -1 +1 @@\n-a\n+b\n")
    [violation] = spec_edit_violations(job, parse_diff(diff))
    assert (violation.rule, violation.path) == ("specs.readonly", "specs/greeting.md")
    other = diff.replace("specs/greeting.md", "app.py")
    assert spec_edit_violations(job, parse_diff(other)) == []
    issue_job = JobView(**{**job.__dict__, "kind": "issue", "trigger_key": "local:a/b:issue:1"})
    assert spec_edit_violations(issue_job, parse_diff(diff)) == []


def test_the_example_specs_parse_and_cover_three_kinds() -> None:
    from bot.specs import constraints, lint_paths, read_spec

    folder = Path(__file__).resolve().parents[2] / "examples" / "hello-service" / "specs"
    assert lint_paths([folder]) == []
    assert len(read_spec(folder / "greeting.md").criteria) == 4  # a new function and route
    assert [c.id for c in read_spec(folder / "name-rules.md").criteria] == [
        "name-rules#collapse-spaces", "name-rules#cut-long-names", "name-rules#blank-still-world"]
    speed = constraints(read_spec(folder / "greet-speed.md"))
    assert [(c.criterion_id, c.unit) for c in speed] == [("greet-speed#bulk", "names"),
                                                          ("greet-speed#p95", "ms")]
