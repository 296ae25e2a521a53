"""Test counts from a runner's own summary (bot/sandbox/runner_output.py), on the real
output of each runner (tests/fixtures/runner_output: a suite of 3 passing, 1 failing and 1
skipped test, see its SOURCES.md), and on hostile output."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.sandbox.runner_output import MAX_COUNT, TAIL_CHARS, counts_from_output

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "runner_output"

# (passed, failed, errors, skipped) as each summary tells them.
EXPECTED = {
    "pytest": ("pytest", (3, 1, 0, 1)),
    "pytest-q": ("pytest", (3, 1, 0, 1)),
    "jest": ("jest", (3, 1, 0, 1)),  # all of it on stderr
    "vitest": ("vitest", (3, 1, 0, 1)),
    "mocha": ("mocha", (3, 1, 0, 1)),  # the skip is "pending"
    "ava": ("ava", (3, 1, 0, 1)),  # no pass count in the summary: its marks are counted
    "node-test": ("TAP", (3, 1, 0, 1)),
    "node-test-tap": ("TAP", (3, 1, 0, 1)),
    "node-test-spec": ("TAP", (3, 1, 0, 1)),
    "tape": ("TAP", (3, 1, 0, 0)),  # tape counts assertions and does not count the skip
    "go-test-v": ("go test -v", (3, 1, 0, 1)),
}


def _read(name: str) -> tuple[str, str]:
    return ((FIXTURES / f"{name}.stdout").read_text(),
            (FIXTURES / f"{name}.stderr").read_text())


@pytest.mark.parametrize("name", EXPECTED)
def test_a_real_runners_summary_gives_its_counts(name: str) -> None:
    found = counts_from_output(*_read(name))

    assert found is not None
    counts = found.counts
    assert (found.runner, (counts.passed, counts.failed, counts.errors, counts.skipped)) \
        == EXPECTED[name]


def test_go_test_without_v_lists_no_passes_so_gives_no_counts() -> None:
    assert counts_from_output(*_read("go-test")) is None


def test_output_without_a_summary_gives_nothing() -> None:
    assert counts_from_output("Hello\nall good\n", "") is None
    assert counts_from_output("", "") is None


def test_the_last_summary_counts() -> None:
    text = "5 passed in 0.10s\n...\n7 passed, 2 failed in 0.20s\n"
    found = counts_from_output(text)
    assert found is not None and (found.counts.passed, found.counts.failed) == (7, 2)


def test_hostile_output_is_bounded() -> None:
    huge = f"{10 ** 30} passed in 1.0s\n"
    flood = "1 passing (1ms)\n" * 100_000

    found = counts_from_output(huge)
    assert found is not None and found.counts.passed == MAX_COUNT
    assert counts_from_output(flood + "x" * TAIL_CHARS) is None  # only the tail is read
