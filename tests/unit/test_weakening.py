"""Tests never weaken silently (bot/pipeline/weakening.py): which changes need the base suite,
and what the two reports show."""

from __future__ import annotations

import pytest

from bot.pipeline.weakening import compare, could_weaken
from bot.policy.changeset import ChangeSet, FileChange, FileStatus
from bot.sandbox.base import Result, TestCounts


def _changes(*files: tuple[str, FileStatus]) -> ChangeSet:
    return ChangeSet(tuple(FileChange(path, status) for path, status in files))


@pytest.mark.parametrize(("files", "expected"), [
    ([("hello/app.py", FileStatus.MODIFIED), ("tests/test_new.py", FileStatus.ADDED)], False),
    ([("tests/test_app.py", FileStatus.MODIFIED)], True),
    ([("tests/test_app.py", FileStatus.DELETED)], True),
    ([("tests/conftest.py", FileStatus.ADDED)], True),
    ([("pyproject.toml", FileStatus.MODIFIED)], True),
    ([("package.json", FileStatus.MODIFIED)], True),
    ([("web/jest.config.js", FileStatus.ADDED)], True),
    ([("greet/greet_test.go", FileStatus.MODIFIED)], True),
    ([("src/index.js", FileStatus.MODIFIED), ("src/index.test.js", FileStatus.ADDED)], False),
], ids=["code and a new test", "a test modified", "a test deleted", "a new conftest",
        "pyproject", "package.json", "jest config", "a go test modified", "js code and test"])
def test_a_base_run_is_needed_only_when_existing_tests_can_change(
        files: list[tuple[str, FileStatus]], expected: bool) -> None:
    assert could_weaken(_changes(*files)) is expected


def _result(*cases: tuple[str, str], exit_code: int = 0, report: bool = True) -> Result:
    counts = TestCounts(
        passed=sum(o == "passed" for _, o in cases), failed=sum(o == "failed" for _, o in cases),
        errors=sum(o == "errors" for _, o in cases),
        skipped=sum(o == "skipped" for _, o in cases), cases=cases)
    return Result(exit_code, "", "", False, junit=counts if report else None)


BASE = _result(("t::a", "passed"), ("t::b", "passed"), ("t::c", "failed"))


def test_a_change_that_adds_and_fixes_tests_is_not_weakening() -> None:
    after = _result(("t::a", "passed"), ("t::b", "passed"), ("t::c", "passed"),
                    ("t::d", "passed"))

    found = compare(BASE, after)

    assert found is not None and not found.weakened
    assert (found.ran_before, found.ran_after) == (3, 4)


def test_a_renamed_test_is_not_weakening() -> None:
    after = _result(("t::a", "passed"), ("t::b_renamed", "passed"), ("t::c", "passed"))

    found = compare(BASE, after)

    assert found is not None and not found.weakened


def test_a_test_skipped_by_the_change_is_named() -> None:
    after = _result(("t::a", "passed"), ("t::b", "skipped"), ("t::c", "passed"),
                    ("t::d", "passed"))

    found = compare(BASE, after)

    assert found is not None and found.weakened and found.newly_skipped == ("t::b",)
    assert "t::b" in found.message() and "now skipped" in found.message()


def test_fewer_tests_run_is_weakening_whatever_switched_them_off() -> None:
    after = _result(("t::a", "passed"))  # b and c no longer collected

    found = compare(BASE, after)

    assert found is not None and found.weakened
    assert found.message().startswith("2 fewer tests run (3 on the base commit, 1 with")


def test_a_test_skipped_on_the_base_already_is_not_new() -> None:
    before = _result(("t::a", "passed"), ("t::b", "skipped"))
    after = _result(("t::a", "passed"), ("t::b", "skipped"))

    found = compare(before, after)

    assert found is not None and not found.weakened


def test_without_a_report_nothing_is_compared() -> None:
    assert compare(_result(report=False, exit_code=2), BASE) is None
    assert compare(BASE, _result(report=False)) is None


def test_without_a_report_the_runners_summaries_are_compared() -> None:
    before = Result(0, "  12 passing (40ms)\n", "", False)
    fewer = Result(0, "  9 passing (31ms)\n  3 pending\n", "", False)
    same = Result(0, "  12 passing (38ms)\n", "", False)

    found = compare(before, fewer)

    assert found is not None and found.weakened
    assert (found.ran_before, found.ran_after, found.newly_skipped) == (12, 9, ())
    assert "3 fewer tests run (12 on the base commit, 9 with the change)" in found.message()
    checked = compare(before, same)
    assert checked is not None and not checked.weakened
    assert compare(before, Result(0, "all good\n", "", False)) is None  # nothing to count
