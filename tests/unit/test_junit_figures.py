"""Constraint figures in JUnit reports: what passing tests printed or recorded, read from a
report that pytest itself wrote with the sandbox's own command, and bounded when a sandbox
writes a hostile one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from bot.pipeline.traceability import parse_figures
from bot.sandbox.junit import FIGURE_LINE_LIMIT, MAX_FIGURE_LINES, parse_junit
from bot.sandbox.toolchain import PYTEST

TESTS = '''
import pytest


def test_prints_its_figure():
    print("warming up")
    print("FIGURE speed#bulk: 12.5 ms")


def test_records_its_figure(record_property):
    record_property("figure", "speed#p95: 3 ms")
    record_property("other", "FIGURE speed#x: 1 s")  # not a figure property


def test_fails_loudly():
    print("FIGURE speed#broken: 9 s")
    assert False
'''


def test_figures_of_passing_tests_reach_the_report_through_the_sandbox_command(
        tmp_path: Path) -> None:
    (tmp_path / "test_speed.py").write_text(TESTS)
    report = tmp_path / "report.xml"
    # PYTEST is `sh -c "exec python3 -m pytest ..."`: run it with this interpreter's pytest.
    script = PYTEST[2].replace("python3", sys.executable, 1)
    run = subprocess.run(["sh", "-c", script], cwd=tmp_path, capture_output=True, text=True,
                         env={**os.environ, "FORGEBOT_JUNIT": str(report)}, check=False)
    assert run.returncode == 1, run.stdout
    assert "speed#bulk" not in run.stdout  # pytest hides a passing test's output

    counts = parse_junit(report.read_bytes())

    assert counts is not None and (counts.passed, counts.failed) == (2, 1)
    assert set(counts.figure_lines) == {"FIGURE speed#bulk: 12.5 ms", "FIGURE speed#p95: 3 ms",
                                        "FIGURE speed#broken: 9 s"}
    assert parse_figures("\n".join(counts.figure_lines)) == {
        "speed#bulk": "12.5 ms", "speed#p95": "3 ms", "speed#broken": "9 s"}


def _report(cases: str) -> bytes:
    return f'<testsuites><testsuite name="s">{cases}</testsuite></testsuites>'.encode()


def test_figure_lines_from_a_hostile_report_are_printable_and_bounded() -> None:
    long = "FIGURE a#1: " + "9" * FIGURE_LINE_LIMIT
    many = "\n".join(f"FIGURE a#{i}: {i} ms" for i in range(MAX_FIGURE_LINES + 50))
    xml = _report(
        f'<testcase classname="t" name="a"><system-out>{long}\nFIGURE a#ok: 1 ms\n'
        "FIGURE a#bell: 2&#127;[31m ms\n  not FIGURE a#2: 3 ms</system-out></testcase>"
        f'<testcase classname="t" name="b"><system-err>{many}</system-err></testcase>')

    counts = parse_junit(xml)

    assert counts is not None
    assert counts.figure_lines[0] == "FIGURE a#ok: 1 ms"  # the long and the escape dropped
    assert len(counts.figure_lines) == MAX_FIGURE_LINES
    assert all(len(line) <= FIGURE_LINE_LIMIT for line in counts.figure_lines)
    assert parse_junit(_report('<testcase name="x"/>')).figure_lines == ()  # type: ignore[union-attr]
