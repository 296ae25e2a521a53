"""Evidence, not judgement: the tests that prove a change.

The change's own test files are put on the base commit and the test command runs there: the
suite must fail. The same suite passes on the change (the verify stage ran it already). A
test case that fails (or cannot run) before and passes after is the evidence; no model
decides whether a job succeeded.

The comparison is pure; building the base tree and running it are the caller's, through a
``run_tests`` callable, so this module knows no sandbox.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from bot.policy.changeset import ChangeSet, FileStatus
from bot.policy.evaluate import is_test_path
from bot.sandbox.base import Result, TestCounts

MAX_PROVEN_SHOWN = 20
_FAILED = frozenset({"failed", "errors"})


class EvidenceStatus(StrEnum):
    PROVEN = "proven"  # the change's tests fail on the base commit and pass on the change
    NO_TEST = "no_test"  # the change adds or changes no test file
    PASSES_BEFORE = "passes_before"  # the change's tests already pass without the change
    NOT_CAPTURED = "not_captured"  # the base fails, but not in tests the change makes pass
    NOT_RUN = "not_run"  # the suite fails on the change, so there is nothing to prove


@dataclass(frozen=True)
class Evidence:
    """What the before/after runs showed. ``proven`` holds test ids, never test output."""

    status: EvidenceStatus
    test_files: tuple[str, ...] = ()
    proven: tuple[str, ...] = ()
    before_exit: int | None = None
    before_timed_out: bool = False
    # (test id, outcome) of every case on the base commit and on the change, from their
    # JUnit reports (empty when there was none): the traceability table reads them.
    before_cases: tuple[tuple[str, str], ...] = ()
    after_cases: tuple[tuple[str, str], ...] = ()

    @property
    def holds(self) -> bool:
        return self.status is EvidenceStatus.PROVEN

    def lines(self) -> list[str]:
        """The pull request's evidence section, one Markdown line each."""
        files = ", ".join(f"`{path}`" for path in self.test_files) or "none"
        lines = [f"Test files in the change: {files}"]
        lines.append(f"Result: **{self.status.value}** — {_EXPLAIN[self.status]}")
        if self.before_exit is not None:
            before = "timed out" if self.before_timed_out else f"exit code {self.before_exit}"
            lines.append(f"On the base commit with these test files: {before}")
        shown = self.proven[:MAX_PROVEN_SHOWN]
        lines += [f"- `{test_id}`: failed before, passes after" for test_id in shown]
        if len(self.proven) > len(shown):
            lines.append(f"- ... and {len(self.proven) - len(shown)} more")
        return lines


_EXPLAIN = {
    EvidenceStatus.PROVEN: "tests that fail without the change pass with it.",
    EvidenceStatus.NO_TEST: "the change adds or changes no test, so nothing shows it works.",
    EvidenceStatus.PASSES_BEFORE: "the change's tests pass without the change as well, "
    "so they do not capture the issue.",
    EvidenceStatus.NOT_CAPTURED: "the suite fails on the base commit, but not in tests "
    "that the change makes pass.",
    EvidenceStatus.NOT_RUN: "the tests fail on the change, so there is nothing to compare.",
}


def changed_test_files(changes: ChangeSet) -> tuple[str, ...]:
    """The test files a change adds, modifies or renames into place (deletions excluded)."""
    return tuple(
        change.path
        for change in changes.files
        if change.status is not FileStatus.DELETED and is_test_path(change.path)
    )


def compare(test_files: tuple[str, ...], before: Result, after: Result) -> Evidence:
    """Judge ``after`` (the suite on the change) against ``before`` (the suite on the base
    commit with the change's test files). Pure."""
    base = Evidence(EvidenceStatus.NO_TEST, test_files, (), before.exit_code, before.timed_out,
                    _cases(before), _cases(after))
    if after.exit_code != 0 or after.timed_out:
        return _with(base, EvidenceStatus.NOT_RUN)
    failed_before = before.exit_code != 0 or before.timed_out
    if not failed_before:
        return _with(base, EvidenceStatus.PASSES_BEFORE)
    if before.junit is None or after.junit is None:
        # Without a report of which test failed, the failing run itself is the evidence:
        # the suite with the new tests fails on the base and passes on the change.
        return _with(base, EvidenceStatus.PROVEN)
    proven = _flipped(before.junit, after.junit, before_failed=failed_before,
                      test_files=test_files)
    if not proven:
        return _with(base, EvidenceStatus.NOT_CAPTURED)
    return Evidence(EvidenceStatus.PROVEN, test_files, proven, before.exit_code, before.timed_out,
                    base.before_cases, base.after_cases)


def _cases(result: Result) -> tuple[tuple[str, str], ...]:
    return result.junit.cases if result.junit is not None else ()


def _flipped(before: TestCounts, after: TestCounts, *, before_failed: bool,
             test_files: tuple[str, ...] = ()) -> tuple[str, ...]:
    """Cases passing after that failed before, or did not run before in a failing run (a
    test importing a function the base does not have cannot even be collected there).

    A case that did not run before counts only when it is in one of the change's test files:
    a collection error stops pytest before any test runs, and the old tests it kept from
    running prove nothing.
    """
    outcome_before = dict(before.cases)
    return tuple(
        test_id
        for test_id, outcome in after.cases
        if outcome == "passed"
        and (
            outcome_before.get(test_id) in _FAILED
            or (test_id not in outcome_before and before_failed
                and in_test_files(test_id, test_files))
        )
    )


def in_test_files(test_id: str, test_files: tuple[str, ...]) -> bool:
    """Whether a JUnit case (``classname::name``) comes from one of ``test_files``. Python
    files are matched by module (``tests/test_a.py`` is ``tests.test_a``); when none of the
    files is Python, the report's names cannot be mapped to files, so every case may."""
    modules = [path.removesuffix(".py").replace("/", ".") for path in test_files
               if path.endswith(".py")]
    if not modules:
        return True
    classname = test_id.rpartition("::")[0] or test_id
    return any(classname == m or classname.startswith(m + ".") for m in modules)


def _with(evidence: Evidence, status: EvidenceStatus) -> Evidence:
    return Evidence(status, evidence.test_files, (), evidence.before_exit,
                    evidence.before_timed_out, evidence.before_cases, evidence.after_cases)


def copy_test_files(source: Path, dest: Path, paths: tuple[str, ...]) -> tuple[str, ...]:
    """Copy ``paths`` (validated, relative) from the change's tree ``source`` into the base
    tree ``dest``; returns those copied. Regular files only: a symbolic link anywhere on
    either side is skipped, never followed."""
    copied = []
    for path in paths:
        data = _read_regular(source, path)
        if data is None or not _make_parents(dest, path):
            continue
        target = dest.joinpath(*path.split("/"))
        try:
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
        except OSError:
            continue
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        copied.append(path)
    return tuple(copied)


def _read_regular(root: Path, path: str) -> bytes | None:
    location = root
    for part in path.split("/"):
        location = location / part
        try:
            mode = location.lstat().st_mode
        except OSError:
            return None
        if stat.S_ISLNK(mode):
            return None
    if not stat.S_ISREG(mode):
        return None
    return location.read_bytes()


def _make_parents(root: Path, path: str) -> bool:
    location = root
    for part in path.split("/")[:-1]:
        location = location / part
        try:
            mode = location.lstat().st_mode
        except FileNotFoundError:
            location.mkdir()
            continue
        if not stat.S_ISDIR(mode):  # a link or a file where a folder should be
            return False
    return True


def gather(
    test_files: tuple[str, ...],
    after: Result,
    change_dir: Path,
    prepare_base: Callable[[], Path],
    run_tests: Callable[[Path], Result],
) -> Evidence:
    """Run the base side when there is something to prove, then compare.

    ``prepare_base`` checks out the base commit and returns its folder; the change's test
    files are copied into it from ``change_dir``; ``run_tests`` runs the test command on a
    folder in a fresh sandbox.
    """
    if not test_files:
        return Evidence(EvidenceStatus.NO_TEST, after_cases=_cases(after))
    if after.exit_code != 0 or after.timed_out:
        return Evidence(EvidenceStatus.NOT_RUN, test_files, after_cases=_cases(after))
    base = prepare_base()
    copy_test_files(change_dir, base, test_files)
    return compare(test_files, run_tests(base), after)
