"""Tests never weaken silently: the suite on the base commit against the suite on the change.

A change can switch tests off without deleting a line of them: a skip or xfail marker, an
``only``, a pattern in the runner's configuration that stops files from being collected, a
conftest that deselects. Whatever the spelling, the runner's own report shows the result, so
the two JUnit reports are compared (or, where a run wrote none, the counts of its runner's
summary line, :mod:`bot.sandbox.runner_output`):

- a test that ran on the base (passed, failed or errored) and is skipped on the change;
- fewer tests run on the change than on the base (collected and not skipped).

Either is the violation ``checks.tests_weakened``. A test renamed by the change is neither
(the count holds); a test it adds in place of one it stops is not caught here, but the
mechanism that stops it (a configuration key, an ignore list) is the structural gate's.

The base run is only needed when the change could weaken something that exists: it
modifies, deletes or renames a test file, or touches a test runner's configuration
(:func:`could_weaken`). Pure; running the suites is the caller's.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

from bot.policy.changeset import ChangeSet, FileStatus
from bot.policy.evaluate import is_test_path
from bot.sandbox.base import Result, TestCounts
from bot.sandbox.runner_output import counts_from_output

MAX_SKIPPED_SHOWN = 5

# Files that configure which tests a runner collects, skips or selects.
_CONFIG_FILES = frozenset({
    "conftest.py", "pytest.ini", "tox.ini", "setup.cfg", "pyproject.toml", "noxfile.py",
    "package.json", ".mocharc", ".mocharc.js", ".mocharc.cjs", ".mocharc.json", ".mocharc.yml",
    ".mocharc.yaml", ".taprc", "Makefile",
})
_CONFIG_PREFIXES = ("jest.config.", "vitest.config.", "vite.config.", "karma.conf.",
                    "ava.config.", "playwright.config.", "jest.setup.", "vitest.setup.")


@dataclass(frozen=True)
class Weakening:
    """What the change did to the suite: tests that ran before and are skipped now, and how
    many ran before and after."""

    ran_before: int
    ran_after: int
    newly_skipped: tuple[str, ...] = ()

    @property
    def weakened(self) -> bool:
        return bool(self.newly_skipped) or self.ran_after < self.ran_before

    def message(self) -> str:
        parts = []
        if self.ran_after < self.ran_before:
            parts.append(f"{self.ran_before - self.ran_after} fewer tests run "
                         f"({self.ran_before} on the base commit, {self.ran_after} with the "
                         "change)")
        if self.newly_skipped:
            shown = ", ".join(self.newly_skipped[:MAX_SKIPPED_SHOWN])
            more = len(self.newly_skipped) - MAX_SKIPPED_SHOWN
            parts.append(f"{len(self.newly_skipped)} test(s) that ran on the base commit "
                         f"now skipped: {shown}" + (f" and {more} more" if more > 0 else ""))
        return "; ".join(parts)


def could_weaken(changes: ChangeSet) -> bool:
    """Whether ``changes`` touch something that decides which existing tests run."""
    for change in changes.files:
        name = posixpath.basename(change.path)
        if is_test_path(change.path) and change.status is not FileStatus.ADDED:
            return True
        if name in _CONFIG_FILES or name.startswith(_CONFIG_PREFIXES):
            return True
        if change.old_path is not None and is_test_path(change.old_path):
            return True
    return False


def compare(before: Result, after: Result) -> Weakening | None:
    """The change's suite (``after``) against the base's (``before``): by their JUnit
    reports, or by the counts of the runner's summary where a run has none (then the tests
    newly skipped cannot be named); None when the base timed out or a run has no count."""
    if before.timed_out:
        return None
    if before.junit is not None and after.junit is not None:
        ran_before = {test_id for test_id, outcome in before.junit.cases
                      if outcome != "skipped"}
        skipped_after = [test_id for test_id, outcome in after.junit.cases
                         if outcome == "skipped" and test_id in ran_before]
        return Weakening(_ran(before.junit), _ran(after.junit), tuple(skipped_after))
    counted_before, counted_after = counted(before), counted(after)
    if counted_before is None or counted_after is None:
        return None
    return Weakening(_ran(counted_before), _ran(counted_after))


def counted(result: Result) -> TestCounts | None:
    """A run's counts: its JUnit report's, else those of its runner's summary."""
    if result.junit is not None:
        return result.junit
    found = counts_from_output(result.stdout, result.stderr)
    return found.counts if found is not None else None


def _ran(counts: TestCounts) -> int:
    return counts.passed + counts.failed + counts.errors
