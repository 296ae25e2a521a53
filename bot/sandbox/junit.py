"""JUnit XML reports coming out of a sandbox: hostile input, bounded and parsed defensively.

Backend-neutral, so every sandbox backend reads reports the same way.
"""

from __future__ import annotations

import io
import re
import tarfile
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring as parse_xml

from bot.sandbox.base import TestCounts

JUNIT_LIMIT = 2 * 1024 * 1024  # bytes of JUnit XML read back at most
# Why a run has no report (``Result.junit_missing``).
JUNIT_ABSENT = "the test command wrote none"
JUNIT_TOO_LARGE = f"it is larger than {JUNIT_LIMIT // (1024 * 1024)} MB"
JUNIT_MALFORMED = "it is not a JUnit XML report"
JUNIT_UNREADABLE = "it could not be read from the sandbox"
MAX_FAILURES = 20  # failure descriptions kept in TestCounts.failures
FAILURE_TEXT_LIMIT = 300  # characters per failure description
MAX_CASES = 5_000  # test cases whose ids and outcomes are kept in TestCounts.cases
CASE_ID_LIMIT = 300  # characters per test id
MAX_FIGURE_LINES = 100  # "FIGURE ..." lines kept in TestCounts.figure_lines
FIGURE_LINE_LIMIT = 200  # characters per such line; a longer one is dropped, not cut


def junit_from_tar(data: bytes) -> bytes | None:
    """Return the content of the first regular file in the tar ``data`` (as produced by
    ``get_archive`` of one file), or None when the tar is malformed or holds no file."""
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
            for index, member in enumerate(tar):
                if index >= 4:  # one file was asked for; a long archive is not a report
                    return None
                if not member.isfile() or member.size > JUNIT_LIMIT:
                    continue
                handle = tar.extractfile(member)
                return None if handle is None else handle.read(JUNIT_LIMIT)
    except (tarfile.TarError, OSError, ValueError):
        return None
    return None


def parse_junit(xml: bytes) -> TestCounts | None:
    """Count the test cases of a JUnit XML report; None when it is not one.

    Counts come from the ``<testcase>`` elements, not from the totals a report claims.
    DTDs and entities are refused (billion laughs, external entities).
    """
    if len(xml) > JUNIT_LIMIT:
        return None
    try:
        root = parse_xml(xml, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except (ParseError, DefusedXmlException, ValueError, LookupError):
        return None
    if root.tag not in ("testsuites", "testsuite"):
        return None
    counts = {"passed": 0, "failed": 0, "errors": 0, "skipped": 0}
    failures: list[str] = []
    cases: list[tuple[str, str]] = []
    figures: list[str] = []
    for case in root.iter("testcase"):
        outcome, detail = _case_outcome(case)
        counts[outcome] += 1
        if detail is not None and len(failures) < MAX_FAILURES:
            failures.append(_describe_failure(case, detail))
        if len(cases) < MAX_CASES:
            cases.append((case_id(case), outcome))
        if len(figures) < MAX_FIGURE_LINES:
            figures += _figure_lines(case)[: MAX_FIGURE_LINES - len(figures)]
    return TestCounts(failures=tuple(failures), cases=tuple(cases),
                      figure_lines=tuple(figures), **counts)


def _figure_lines(case: Element) -> list[str]:
    """The ``FIGURE ...`` lines one case printed (its captured output in the report) or
    recorded as a ``figure`` property. Printable and bounded; what they say is checked by
    whoever reads them."""
    texts = [part.text or "" for part in (case.find("system-out"), case.find("system-err"))
             if part is not None]
    texts += ["FIGURE " + (prop.get("value") or "") for prop in case.iter("property")
              if prop.get("name") == "figure"]
    lines = []
    for text in texts:
        for raw in text.splitlines():
            line = raw.strip()
            if (line.startswith("FIGURE ") and len(line) <= FIGURE_LINE_LIMIT
                    and not _UNPRINTABLE.search(line)):
                lines.append(line)
    return lines


def _case_outcome(case: Element) -> tuple[str, Element | None]:
    """The outcome of one test case, and the element that explains a failure or error."""
    failure = case.find("failure")
    if failure is not None:
        return "failed", failure
    error = case.find("error")
    if error is not None:
        return "errors", error
    if case.find("skipped") is not None:
        return "skipped", None
    return "passed", None


_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f]+")


def case_id(case: Element) -> str:
    """A test case's id, ``classname::name``: printable and bounded, since a sandbox wrote it."""
    test_id = (
        "::".join(part for part in (case.get("classname", ""), case.get("name", "")) if part)
        or "<unnamed test>"
    )
    test_id = _UNPRINTABLE.sub(" ", test_id)
    return test_id if len(test_id) <= CASE_ID_LIMIT else test_id[: CASE_ID_LIMIT - 1] + "…"


def _describe_failure(case: Element, detail: Element) -> str:
    """Describe a failure as 'classname::name: first line of message', printable, bounded."""
    test_id = case_id(case)
    message = detail.get("message") or detail.text or ""
    first_line = next((line.strip() for line in message.splitlines() if line.strip()), "")
    text = f"{test_id}: {first_line}" if first_line else test_id
    text = _UNPRINTABLE.sub(" ", text)
    if len(text) > FAILURE_TEXT_LIMIT:
        text = text[: FAILURE_TEXT_LIMIT - 1] + "…"
    return text
