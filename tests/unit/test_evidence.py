"""The evidence check: tests of the change fail on the base commit and pass on the change."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bot.pipeline.evidence import (
    Evidence,
    EvidenceStatus,
    changed_test_files,
    compare,
    copy_test_files,
    gather,
)
from bot.policy.changeset import parse_diff
from bot.sandbox.base import Result, TestCounts


def result(exit_code: int, cases: list[tuple[str, str]] | None, *, timed_out: bool = False,
           ) -> Result:
    junit = None
    if cases is not None:
        counts = {"passed": 0, "failed": 0, "errors": 0, "skipped": 0}
        for _, outcome in cases:
            counts[outcome] += 1
        junit = TestCounts(cases=tuple(cases), **counts)
    return Result(exit_code=exit_code, stdout="", stderr="", timed_out=timed_out, junit=junit)


FILES = ("tests/test_add.py",)

CASES = [
    # (name, before, after, status, proven)
    ("new test fails before, passes after",
     result(1, [("tests.test_add::test_old", "passed"), ("tests.test_add::test_new", "failed")]),
     result(0, [("tests.test_add::test_old", "passed"), ("tests.test_add::test_new", "passed")]),
     EvidenceStatus.PROVEN, ("tests.test_add::test_new",)),
    ("a test that cannot be collected on the base counts as failing there",
     result(2, [("tests.test_add", "errors")]),
     result(0, [("tests.test_add::test_new", "passed")]),
     EvidenceStatus.PROVEN, ("tests.test_add::test_new",)),
    ("old tests an interrupted base run never reached are not evidence",
     result(2, [("tests.test_add", "errors")]),
     result(0, [("tests.test_app::test_old", "passed"), ("tests.test_add::test_new", "passed"),
                ("tests.test_add.TestX::test_y", "passed")]),
     EvidenceStatus.PROVEN, ("tests.test_add::test_new", "tests.test_add.TestX::test_y")),
    ("an error before counts like a failure",
     result(1, [("t::a", "errors")]), result(0, [("t::a", "passed")]),
     EvidenceStatus.PROVEN, ("t::a",)),
    ("the new tests pass without the change",
     result(0, [("t::a", "passed")]), result(0, [("t::a", "passed")]),
     EvidenceStatus.PASSES_BEFORE, ()),
    ("the base fails in a test the change does not make pass",
     result(1, [("t::a", "failed"), ("t::b", "passed")]),
     result(0, [("t::a", "skipped"), ("t::b", "passed")]),
     EvidenceStatus.NOT_CAPTURED, ()),
    ("the suite fails on the change: nothing to prove",
     result(1, [("t::a", "failed")]), result(1, [("t::a", "failed")]),
     EvidenceStatus.NOT_RUN, ()),
    ("a timeout after is a failure after",
     result(1, [("t::a", "failed")]), result(0, [("t::a", "passed")], timed_out=True),
     EvidenceStatus.NOT_RUN, ()),
    ("a timeout before is a failure before",
     result(0, None, timed_out=True), result(0, [("t::a", "passed")]),
     EvidenceStatus.PROVEN, ()),
    ("no report before: the failing run is the evidence",
     result(1, None), result(0, [("t::a", "passed")]),
     EvidenceStatus.PROVEN, ()),
    ("no report either side, base passes",
     result(0, None), result(0, None),
     EvidenceStatus.PASSES_BEFORE, ()),
]


@pytest.mark.parametrize(("name", "before", "after", "status", "proven"), CASES,
                         ids=[c[0] for c in CASES])
def test_compare(name: str, before: Result, after: Result, status: EvidenceStatus,
                 proven: tuple[str, ...]) -> None:
    evidence = compare(FILES, before, after)
    assert evidence.status is status
    assert evidence.proven == proven
    assert evidence.holds is (status is EvidenceStatus.PROVEN)


def test_lines_name_the_proving_tests_and_the_base_run() -> None:
    evidence = compare(FILES, result(1, [("t::new", "failed")]), result(0, [("t::new", "passed")]))
    text = "\n".join(evidence.lines())
    assert "`tests/test_add.py`" in text
    assert "**proven**" in text
    assert "`t::new`: failed before, passes after" in text
    assert "exit code 1" in text


def test_lines_without_tests_say_so() -> None:
    text = "\n".join(Evidence(EvidenceStatus.NO_TEST).lines())
    assert "none" in text and "no_test" in text


DIFF = """\
diff --git a/app.py b/app.py
--- a/app.py
+++ b/app.py
@@ -1 +1 @@
-x = 1
+x = 2
diff --git a/tests/test_app.py b/tests/test_app.py
new file mode 100644
--- /dev/null
+++ b/tests/test_app.py
@@ -0,0 +1 @@
+def test_x(): pass
diff --git a/tests/test_gone.py b/tests/test_gone.py
deleted file mode 100644
--- a/tests/test_gone.py
+++ /dev/null
@@ -1 +0,0 @@
-def test_y(): pass
diff --git a/pkg/util_test.go b/pkg/util_test.go
--- a/pkg/util_test.go
+++ b/pkg/util_test.go
@@ -1 +1 @@
-package pkg
+package pkg // changed
"""


def test_changed_test_files_skip_deletions_and_code() -> None:
    assert changed_test_files(parse_diff(DIFF)) == ("tests/test_app.py", "pkg/util_test.go")


def test_copy_test_files_copies_regular_files_and_never_follows_links(tmp_path: Path) -> None:
    change, base, outside = tmp_path / "change", tmp_path / "base", tmp_path / "outside"
    for folder in (change / "tests", base, outside):
        folder.mkdir(parents=True)
    (change / "tests" / "test_a.py").write_text("def test_a(): pass\n")
    (outside / "secret").write_text("s3cret")
    os.symlink(outside / "secret", change / "tests" / "test_link.py")
    # On the base side, a link where the folder should be must not be written through.
    os.symlink(outside, base / "evil")
    (change / "evil").mkdir()
    (change / "evil" / "test_b.py").write_text("x")
    copied = copy_test_files(change, base, ("tests/test_a.py", "tests/test_link.py",
                                            "evil/test_b.py", "tests/missing.py"))
    assert copied == ("tests/test_a.py",)
    assert (base / "tests" / "test_a.py").read_text() == "def test_a(): pass\n"
    assert not (outside / "test_b.py").exists()
    assert sorted(p.name for p in outside.iterdir()) == ["secret"]


def test_gather_runs_the_base_only_when_there_is_something_to_prove(tmp_path: Path) -> None:
    runs: list[Path] = []

    def prepare() -> Path:
        (tmp_path / "base").mkdir()
        return tmp_path / "base"

    def run(tree: Path) -> Result:
        runs.append(tree)
        assert (tree / "tests" / "test_a.py").read_text() == "new test"
        return result(1, [("t::a", "failed")])

    (tmp_path / "change" / "tests").mkdir(parents=True)
    (tmp_path / "change" / "tests" / "test_a.py").write_text("new test")
    passing = result(0, [("t::a", "passed")])
    assert gather((), passing, tmp_path / "change", prepare, run).status is EvidenceStatus.NO_TEST
    failing = result(1, [("t::a", "failed")])
    assert gather(("tests/test_a.py",), failing, tmp_path / "change", prepare,
                  run).status is EvidenceStatus.NOT_RUN
    assert runs == []
    found = gather(("tests/test_a.py",), passing, tmp_path / "change", prepare, run)
    assert found.status is EvidenceStatus.PROVEN and found.proven == ("t::a",)
    assert runs == [tmp_path / "base"]
