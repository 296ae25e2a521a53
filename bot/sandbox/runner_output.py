"""Test counts read from a runner's own summary line, for runs without a JUnit report.

pytest, jest, vitest, mocha, ava, node's test runner (and TAP producers such as tape) and
``go test -v`` each end with a summary of what passed, failed and was skipped. When the run
wrote no JUnit report, the last such summary in its output gives the counts a report shows.
The output was written by the code under test, so this is hostile input: only the last
``TAIL_CHARS`` are read, each pattern is anchored to one line, and every count is bounded.
A count read here is the runner's claim; the pass or fail of a run is its exit code.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from bot.sandbox.base import TestCounts

TAIL_CHARS = 64 * 1024
MAX_COUNT = 10_000_000

_PYTEST = re.compile(
    r"^[= ]*((?:\d+ (?:passed|failed|errors?|skipped|xfailed|xpassed|deselected|warnings?)"
    r"(?:, )?)+) in [\d.]+s\b", re.MULTILINE)
_JEST = re.compile(r"^Tests:\s+((?:\d+ \w+, )*\d+ total)\s*$", re.MULTILINE)
_VITEST = re.compile(r"^\s*Tests\s+((?:\d+ \w+(?: \| )?)+)\s*\(\d+\)\s*$", re.MULTILINE)
_MOCHA = re.compile(r"^\s*(\d+) (passing|failing|pending)\b", re.MULTILINE)
_AVA = re.compile(r"^\s*(\d+) (?:tests?|known failures?) (passed|failed|skipped|todo)\s*$",
                  re.MULTILINE)
_TAP = re.compile(r"^(?:#|\u2139) (tests|pass|fail|skipped|todo|cancelled)\s+(\d+)\s*$",
                  re.MULTILINE)
# ava's marks, one per test: its summary counts failures and skips but not passes.
_AVA_MARK = re.compile(r"^\s*(?:(\u2714) |(\u2718) \[fail\]: |- \[(skip|todo)\] )", re.MULTILINE)
_GO = re.compile(r"^\s*--- (PASS|FAIL|SKIP): ", re.MULTILINE)
_PAIR = re.compile(r"(\d+) (\w+)")


@dataclass(frozen=True)
class OutputCounts:
    """The counts a runner's summary gave, and which summary it was ("pytest", "TAP" ...)."""

    runner: str
    counts: TestCounts


def _bounded(number: str) -> int:
    return min(int(number), MAX_COUNT)


def _counts(pairs: dict[str, int]) -> TestCounts:
    def total(*names: str) -> int:
        return min(sum(pairs.get(name, 0) for name in names), MAX_COUNT)

    return TestCounts(passed=total("passed", "passing", "pass", "xpassed"),
                      failed=total("failed", "failing", "fail"),
                      errors=total("error", "errors"),
                      skipped=total("skipped", "pending", "todo", "SKIP", "xfailed"))


def _pairs(text: str) -> dict[str, int]:
    found: dict[str, int] = {}
    for number, word in _PAIR.findall(text):
        found[word] = found.get(word, 0) + _bounded(number)
    return found


def _pytest(text: str) -> TestCounts | None:
    matches = _PYTEST.findall(text)
    return _counts(_pairs(matches[-1])) if matches else None


def _jest(text: str) -> TestCounts | None:
    matches = _JEST.findall(text)
    return _counts(_pairs(matches[-1])) if matches else None


def _vitest(text: str) -> TestCounts | None:
    matches = _VITEST.findall(text)
    return _counts(_pairs(matches[-1])) if matches else None


def _last_block(matches: list[tuple[str, str]], key: int) -> dict[str, int]:
    """The last run of summary lines: a name seen again starts a new summary."""
    block: dict[str, int] = {}
    for match in matches:
        name, number = (match[1], match[0]) if key == 1 else (match[0], match[1])
        if name in block:
            block = {}
        block[name] = _bounded(number)
    return block


def _mocha(text: str) -> TestCounts | None:
    block = _last_block(_MOCHA.findall(text), key=1)
    return _counts(block) if block else None


def _ava(text: str) -> TestCounts | None:
    block = _last_block(_AVA.findall(text), key=1)
    if not block:
        return None
    marks = _AVA_MARK.findall(text)
    if not marks or "passed" in block:
        return _counts(block)
    return _counts({"passed": sum(1 for m in marks if m[0]),
                    "failed": sum(1 for m in marks if m[1]),
                    "skipped": sum(1 for m in marks if m[2])})


def _tap(text: str) -> TestCounts | None:
    block = _last_block(_TAP.findall(text), key=0)
    if "pass" not in block and "fail" not in block:
        return None
    return _counts(block)


def _go(text: str) -> TestCounts | None:
    outcomes = _GO.findall(text)
    if not outcomes or "=== RUN" not in text:  # without -v, passing tests are not listed
        return None
    return _counts({"passed": outcomes.count("PASS"), "failed": outcomes.count("FAIL"),
                    "SKIP": outcomes.count("SKIP")})


_READERS: tuple[tuple[str, Callable[[str], TestCounts | None]], ...] = (
    ("pytest", _pytest), ("jest", _jest), ("vitest", _vitest), ("mocha", _mocha),
    ("ava", _ava), ("TAP", _tap), ("go test -v", _go))


def counts_from_output(stdout: str, stderr: str = "") -> OutputCounts | None:
    """The counts of the last runner summary found in the output; None when there is none."""
    text = (stdout[-TAIL_CHARS:] + "\n" + stderr[-TAIL_CHARS:]).replace("\r", "")
    for runner, read in _READERS:
        counts = read(text)
        if counts is not None and counts.total > 0:
            return OutputCounts(runner, counts)
    return None
