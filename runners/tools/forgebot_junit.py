#!/usr/bin/env python3
"""forgebot-junit: run a test command and leave a JUnit XML report in $FORGEBOT_JUNIT.

Installed in the node and go runner images as /usr/local/bin/forgebot-junit (Python 3
standard library only). Debian bookworm's Node 18 test runner has no JUnit reporter (it came
in Node 20.10) and go-junit-report is not packaged in Debian, so the report is made here from
what the test command prints:

    forgebot-junit [--format tap|go-json|jest-json|none] [--input FILE] [--name NAME] -- CMD...

- ``tap``: the command's standard output is TAP (node --test prints TAP when its output is
  not a terminal; so do tape and node-tap). Nested subtests become ``parent > child``
  class names; only leaves are test cases.
- ``go-json``: the output is ``go test -json``; what the tests printed is echoed as plain
  text. A package that fails with no failing test (a build failure) is an error case.
- ``jest-json``: after the command, FILE (jest ``--json --outputFile=FILE``) is converted.
- ``none``: nothing is parsed.

The command's output still reaches standard output as it comes. When the command wrote
$FORGEBOT_JUNIT itself (vitest, mocha, pytest), that report is kept. When nothing could be
parsed, the report holds one case named NAME that passed or failed with the exit status, so
a report always exists. The exit status is the command's own.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import IO
from xml.sax.saxutils import quoteattr

MAX_CASES = 10_000
MAX_MESSAGE = 2_000
MAX_LINE = 1024 * 1024
MAX_JEST_BYTES = 64 * 1024 * 1024


@dataclass
class Case:
    """One test case of the report."""

    classname: str
    name: str
    outcome: str = "passed"  # passed | failure | error | skipped
    message: str = ""
    seconds: float = 0.0


@dataclass
class Report:
    """The test cases found so far, bounded."""

    cases: list[Case] = field(default_factory=list)
    dropped: int = 0

    def add(self, case: Case) -> None:
        if len(self.cases) < MAX_CASES:
            case.message = _one_line(case.message)
            self.cases.append(case)
        else:
            self.dropped += 1


def _one_line(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 1] + "…"


# TAP -------------------------------------------------------------------------------------

_TAP_RESULT = re.compile(
    r"^(?P<indent>\s*)(?P<ok>ok|not ok)\b\s*(?P<number>\d+)?\s*(?:-\s*)?(?P<rest>.*)$"
)
_TAP_SUBTEST = re.compile(r"^(?P<indent>\s*)# Subtest: (?P<name>.*)$")
_TAP_DIRECTIVE = re.compile(r"\s+#\s*(?P<kind>SKIP|TODO)\b.*$", re.IGNORECASE)


class TapParser:
    """Reads TAP line by line: test points, nested subtests and their YAML diagnostics."""

    def __init__(self, report: Report, strip_prefix: str = "") -> None:
        self.report = report
        self.strip_prefix = strip_prefix
        self.names: dict[int, str] = {}  # indent -> name of the subtest open at that indent
        self.children: dict[int, int] = {}  # indent -> results seen since the last one above
        self.pending: Case | None = None  # the last case, waiting for its YAML block
        self.yaml_indent: int | None = None
        self.yaml_lines: list[str] = []

    def feed(self, line: str) -> None:
        line = line.rstrip("\n")
        if self.yaml_indent is not None:
            self._feed_yaml(line)
            return
        subtest = _TAP_SUBTEST.match(line)
        if subtest:
            indent = len(subtest.group("indent"))
            self.names[indent] = subtest.group("name").strip()
            return
        result = _TAP_RESULT.match(line)
        if result:
            self._result(result)
            return
        stripped = line.strip()
        if stripped == "---" and self.pending is not None:
            self.yaml_indent = len(line) - len(line.lstrip())
            self.yaml_lines = []
        elif stripped.startswith("Bail out!"):
            self.report.add(Case("tap", "bail out", "error", stripped))

    def _result(self, match: re.Match[str]) -> None:
        indent = len(match.group("indent"))
        deeper = [level for level in self.children if level > indent]
        had_children = any(self.children[level] for level in deeper)
        for level in deeper:
            del self.children[level]
        for level in [level for level in self.names if level > indent]:
            del self.names[level]
        self.children[indent] = self.children.get(indent, 0) + 1
        rest = match.group("rest")
        directive = _TAP_DIRECTIVE.search(rest)
        name = _TAP_DIRECTIVE.sub("", rest).strip() or f"test {match.group('number') or '?'}"
        name = self._short(self.names.pop(indent, name))
        self.pending = None
        if had_children:
            return  # a parent: its leaves are the cases
        parents = [self._short(self.names[level]) for level in sorted(self.names) if level < indent]
        case = Case(" > ".join(parents) or "tap", name)
        if directive is not None:
            case.outcome = "skipped"
        elif match.group("ok") == "not ok":
            case.outcome = "failure"
        self.pending = case
        self.report.add(case)

    def _short(self, name: str) -> str:
        if self.strip_prefix and name.startswith(self.strip_prefix):
            return name[len(self.strip_prefix) :]
        return name

    def _feed_yaml(self, line: str) -> None:
        indent = len(line) - len(line.lstrip())
        if line.strip() == "..." and indent <= (self.yaml_indent or 0):
            self._apply_yaml()
            self.yaml_indent, self.pending = None, None
            return
        self.yaml_lines.append(line)

    def _apply_yaml(self) -> None:
        case = self.pending
        if case is None:
            return
        if case.outcome == "failure":
            case.message = _one_line(_yaml_field(self.yaml_lines, ("error", "message")))
        # Node's runner names the file of a test in "location: '/path/file.js:7:1'": a
        # better class name than the runner's name for a test at the top level.
        location = _yaml_field(self.yaml_lines, ("location",))
        if location and case.classname == "tap":
            case.classname = self._short(location.rsplit(":", 2)[0])

    def finish(self) -> None:
        if self.pending is not None and self.yaml_lines:
            self._apply_yaml()


def _yaml_field(lines: list[str], keys: tuple[str, ...]) -> str:
    """The first of ``keys`` found at the top of a TAP YAML block, quoted or a block scalar."""
    base = min((len(line) - len(line.lstrip()) for line in lines if line.strip()), default=0)
    for index, line in enumerate(lines):
        key, _, value = line.strip().partition(":")
        if len(line) - len(line.lstrip()) != base or key not in keys:
            continue
        value = value.strip()
        if value in ("|", "|-", ">", ">-", "|+", ">+"):
            block = []
            for follow in lines[index + 1 :]:
                if follow.strip() and len(follow) - len(follow.lstrip()) <= base:
                    break
                block.append(follow.strip())
            return " ".join(part for part in block if part)
        return value.strip("'\"")
    return ""


# go test -json ---------------------------------------------------------------------------

_GO_NOISE = re.compile(r"^\s*(=== (RUN|PAUSE|CONT)|--- (PASS|FAIL|SKIP)|PASS$|FAIL$|ok\s)")


class GoParser:
    """Reads ``go test -json`` events; echoes their output as plain text."""

    def __init__(self, report: Report, echo: bool = True) -> None:
        self.report = report
        self.echo = echo
        self.tests: dict[tuple[str, str], Case] = {}
        self.output: dict[tuple[str, str], list[str]] = {}
        self.failed_packages: dict[str, list[str]] = {}

    def feed(self, line: str) -> None:
        try:
            event = json.loads(line)
        except ValueError:
            event = None
        if not isinstance(event, dict):
            self._write(line)
            return
        action, package = str(event.get("Action", "")), str(event.get("Package", ""))
        test = event.get("Test")
        key = (package, str(test) if test else "")
        if action == "output":
            text = str(event.get("Output", ""))
            self._write(text)
            lines = self.output.setdefault(key, [])
            if len(lines) < 200 and not _GO_NOISE.match(text):
                lines.append(text.strip())
        elif action in ("pass", "fail", "skip") and test:
            outcome = {"pass": "passed", "fail": "failure", "skip": "skipped"}[action]
            elapsed = event.get("Elapsed")
            seconds = float(elapsed) if isinstance(elapsed, int | float) else 0.0
            self.tests[key] = Case(package, str(test), outcome, seconds=seconds)
        elif action == "fail":
            self.failed_packages[package] = self.output.get(key, [])

    def _write(self, text: str) -> None:
        if self.echo:
            sys.stdout.write(text if text.endswith("\n") else text + "\n")

    def finish(self) -> None:
        names = {key for key in self.tests}
        for (package, test), case in self.tests.items():
            if any(other[0] == package and other[1].startswith(test + "/") for other in names):
                continue  # a parent test: its subtests are the cases
            if case.outcome == "failure":
                lines = self.output.get((package, test), [])
                case.message = " ".join(line for line in lines if line)
            self.report.add(case)
        for package, lines in self.failed_packages.items():
            if any(c.classname == package and c.outcome == "failure" for c in self.report.cases):
                continue
            message = " ".join(line for line in lines if line) or "the package failed"
            self.report.add(Case(package, "[package]", "error", message))


# jest --json -----------------------------------------------------------------------------


def read_jest(path: str, report: Report, strip_prefix: str = "") -> None:
    """Add the cases of jest's ``--json`` report at ``path``; nothing when it is unusable."""
    try:
        with open(path, "rb") as handle:
            data = json.loads(handle.read(MAX_JEST_BYTES + 1)[:MAX_JEST_BYTES])
    except (OSError, ValueError):
        return
    results = data.get("testResults") if isinstance(data, dict) else None
    for suite in results if isinstance(results, list) else []:
        if isinstance(suite, dict):
            _jest_suite(suite, report, strip_prefix)


def _jest_suite(suite: dict[str, object], report: Report, strip_prefix: str) -> None:
    filename = str(suite.get("name", "jest"))
    if strip_prefix and filename.startswith(strip_prefix):
        filename = filename[len(strip_prefix) :]
    assertions = suite.get("assertionResults")
    assertions = assertions if isinstance(assertions, list) else []
    for item in assertions:
        if not isinstance(item, dict):
            continue
        ancestors = [str(a) for a in item.get("ancestorTitles") or [] if isinstance(a, str)]
        status = str(item.get("status", ""))
        outcome = {"passed": "passed", "failed": "failure"}.get(status, "skipped")
        messages = item.get("failureMessages") or []
        message = str(messages[0]) if isinstance(messages, list) and messages else ""
        duration = item.get("duration")
        seconds = duration / 1000 if isinstance(duration, int | float) else 0.0
        report.add(Case(" > ".join([filename, *ancestors]), str(item.get("title", "?")),
                        outcome, _strip_ansi(message), seconds))
    if not assertions and suite.get("status") == "failed":
        report.add(Case(filename, "[suite]", "error", _strip_ansi(str(suite.get("message", "")))))


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _strip_ansi(text: str) -> str:
    return _ANSI.sub("", text)


# the report ------------------------------------------------------------------------------


def to_xml(report: Report, suite: str) -> str:
    """The report as JUnit XML (one testsuite)."""
    counts = {kind: sum(1 for c in report.cases if c.outcome == kind)
              for kind in ("failure", "error", "skipped")}
    lines = [
        '<?xml version="1.0" encoding="utf-8"?>',
        f"<testsuites><testsuite name={quoteattr(suite)} tests=\"{len(report.cases)}\""
        f" failures=\"{counts['failure']}\" errors=\"{counts['error']}\""
        f" skipped=\"{counts['skipped']}\">",
    ]
    for case in report.cases:
        classname, name = quoteattr(_xml_text(case.classname)), quoteattr(_xml_text(case.name))
        attrs = f'classname={classname} name={name} time="{case.seconds:.3f}"'
        if case.outcome == "passed":
            lines.append(f"<testcase {attrs}/>")
        elif case.outcome == "skipped":
            lines.append(f"<testcase {attrs}><skipped/></testcase>")
        else:
            message = f" message={quoteattr(_xml_text(case.message))}" if case.message else ""
            lines.append(f"<testcase {attrs}><{case.outcome}{message}/></testcase>")
    if report.dropped:
        lines.append(f"<!-- {report.dropped} more test cases not listed -->")
    lines.append("</testsuite></testsuites>")
    return "\n".join(lines) + "\n"


_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _xml_text(text: str) -> str:
    return _XML_INVALID.sub("?", text)


def exit_status_case(name: str, code: int, last_line: str) -> Case:
    """The one case of a report made from the exit status alone."""
    if code == 0:
        return Case("forgebot", name)
    message = f"{name} exited with status {code}" + (f": {last_line}" if last_line else "")
    return Case("forgebot", name, "failure", message)


def run(argv: list[str]) -> int:
    """Run the command of ``argv`` (see the module docstring); return its exit status."""
    args = _parse(argv)
    report = Report()
    prefix = os.getcwd().rstrip("/") + "/"
    parser: TapParser | GoParser | None = None
    if args.format == "tap":
        parser = TapParser(report, prefix)
    elif args.format == "go-json":
        parser = GoParser(report)
    code, last_line = _run_command(args.command, parser)
    if parser is not None:
        parser.finish()
    if args.format == "jest-json" and args.input:
        read_jest(args.input, report, prefix)
    _write_report(report, args.name or " ".join(args.command)[:200], code, last_line)
    return code


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="forgebot-junit", description=__doc__.splitlines()[0])
    parser.add_argument("--format", choices=("tap", "go-json", "jest-json", "none"), default="none")
    parser.add_argument("--input", help="the report file of --format jest-json")
    parser.add_argument("--name", help="the test case name when nothing could be parsed")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    if args.command[:1] == ["--"]:
        args.command = args.command[1:]
    if not args.command:
        parser.error("no command given (forgebot-junit [options] -- CMD...)")
    return args


def _run_command(command: list[str], parser: TapParser | GoParser | None) -> tuple[int, str]:
    """Run ``command``, passing its output through (and to ``parser``); return its exit
    status and the last non-empty line it printed."""
    last_line = ""
    try:
        child = subprocess.Popen(command, stdout=subprocess.PIPE)
    except OSError as exc:
        print(f"forgebot-junit: cannot run {command[0]}: {exc}", file=sys.stderr)
        return 127, str(exc)
    assert child.stdout is not None
    with child.stdout:
        for raw in _lines(child.stdout):
            line = raw.decode("utf-8", errors="replace")
            if line.strip():
                last_line = line.strip()
            if isinstance(parser, GoParser):
                parser.feed(line)  # echoes the plain-text output itself
                continue
            sys.stdout.write(line)
            if parser is not None:
                parser.feed(line)
    sys.stdout.flush()
    code = child.wait()
    return (128 - code if code < 0 else code), last_line[:500]


def _lines(stream: IO[bytes]) -> Iterable[bytes]:
    while True:
        line = stream.readline(MAX_LINE)
        if not line:
            return
        yield line


def _write_report(report: Report, name: str, code: int, last_line: str) -> None:
    path = os.environ.get("FORGEBOT_JUNIT")
    if not path:
        print("forgebot-junit: FORGEBOT_JUNIT is not set; no report written", file=sys.stderr)
        return
    try:
        if os.path.getsize(path) > 0:
            return  # the test runner wrote its own report
    except OSError:
        pass
    if not report.cases:
        report.add(exit_status_case(name, code, last_line))
    elif code != 0 and not any(c.outcome in ("failure", "error") for c in report.cases):
        # Every test passed, yet the command failed (a crash after the tests, a coverage
        # threshold): say so, rather than report a green run.
        report.add(exit_status_case(name, code, last_line))
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(to_xml(report, name))


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
