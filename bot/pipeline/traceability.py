"""Traceability: every criterion of a spec mapped to the tests that carry its id, and what
those tests did on the base commit and on the change.

A test carries a criterion's id with a pytest marker, ``@pytest.mark.spec("greeting#farewell")``
(several ids allowed), or a comment ``spec: greeting#farewell`` on a line above the test in any
language (``#``, ``//``, ``--`` or ``/*``). The ids are found by reading the test files of the
trusted tree; the outcomes come from the JUnit reports of the evidence runs. A new or changed
criterion with no marked test is a failed check the pull request names.

Parsing and matching are pure; :func:`scan_tree` is the thin layer that reads files, regular
files only (a symbolic link is never followed), bounded in size and number.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.pipeline.evidence import Evidence
from bot.pipeline.spec_trigger import read_blob
from bot.policy.changeset import ChangeSet
from bot.policy.evaluate import Violation, is_test_path
from bot.sandbox.base import Result
from bot.specs import MAX_SPEC_BYTES, InvalidSpec, Spec, constraint_of, parse_spec, with_status
from bot.store import JobView, Store
from bot.store.spec_jobs import SPEC_PUSHED, spec_jobs

MAX_TEST_FILES = 2_000
MAX_TEST_FILE_BYTES = 512 * 1024
MAX_FIGURES = 50
# How far below its marks a test's definition may start (decorators, blank lines, comments).
MARK_REACH = 12

_ID = r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}#[A-Za-z0-9][A-Za-z0-9._-]{0,63}"
_MARKER = re.compile(r"@pytest\.mark\.spec\(([^)]*)\)")
_COMMENT = re.compile(rf"^\s*(?:#|//|--|/\*+|\*)\s*spec:\s*((?:{_ID}[\s,]*)+)")
_QUOTED_ID = re.compile(rf"""["']({_ID})["']""")
_BARE_ID = re.compile(_ID)
# A test's definition, and the name its report will carry.
_DEFINITIONS = (
    re.compile(r"^\s*(?:async\s+)?def\s+(test\w*)\s*\("),  # Python
    re.compile(r"^\s*class\s+(Test\w*)\b"),  # Python class (its methods inherit the mark)
    re.compile(r"^\s*func\s+(Test\w*)\s*\("),  # Go
    re.compile(r"^\s*fn\s+(\w+)\s*\("),  # Rust (#[test] above)
    re.compile(r"""^\s*(?:it|test)(?:\.\w+)?\s*\(\s*(["'`])(.+?)\1"""),  # JavaScript
)
_FIGURE = re.compile(rf"^FIGURE\s+({_ID})\s*:\s*([-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)"
                     r"\s*([A-Za-z%µ/]{0,16})\s*$")


@dataclass(frozen=True)
class Mark:
    """A test that carries a criterion's id: ``name`` is the test's own name
    (``test_farewell``, ``TestCart``, ``adds a coupon``)."""

    criterion_id: str
    path: str
    name: str
    line: int


@dataclass(frozen=True)
class TestTrace:
    """One marked test and its outcomes (None: it did not run, or no report said)."""

    __test__ = False  # not a pytest test class, despite the name

    name: str
    path: str
    failed_before: bool | None
    passes_after: bool | None


@dataclass(frozen=True)
class Row:
    criterion_id: str
    text: str
    required: bool  # new or changed in this push: it must have a test
    tests: tuple[TestTrace, ...]
    constraint: str = ""  # the measurable limit it states, if any
    figure: str = ""  # what the change's run printed for it (``FIGURE <id>: <value>``)

    @property
    def proven(self) -> bool:
        """A test that fails (or cannot run) without the change and passes with it."""
        return any(t.passes_after and t.failed_before for t in self.tests)


@dataclass(frozen=True)
class Traceability:
    spec_id: str
    spec_path: str
    rows: tuple[Row, ...]

    @property
    def untested(self) -> tuple[str, ...]:
        """New or changed criteria that no test carries: the failed check."""
        return tuple(r.criterion_id for r in self.rows if r.required and not r.tests)

    @property
    def complete(self) -> bool:
        """Every new or changed criterion has a test that fails before and passes after."""
        return all(r.proven for r in self.rows if r.required)

    def lines(self) -> list[str]:
        """The pull request's table: criterion, test, failed before, passes after."""
        out = ["| criterion | test | failed before | passes after |", "| --- | --- | --- | --- |"]
        for row in self.rows:
            label = f"`{row.criterion_id}`" + (" (new or changed)" if row.required else "")
            if not row.tests:
                out.append(f"| {label} | **no test** | — | — |")
            for test in row.tests:
                out.append(f"| {label} | `{test.path}::{_cell(test.name)}` | "
                           f"{_yes_no(test.failed_before)} | {_yes_no(test.passes_after)} |")
        figures = [r for r in self.rows if r.constraint]
        if figures:
            out += ["", "Constraints:"]
            out += [f"- `{r.criterion_id}`: {_cell(r.constraint)}; measured: "
                    f"{_cell(r.figure) if r.figure else 'not reported'}" for r in figures]
        if self.untested:
            out += ["", "**Failed check:** no test carries "
                    + ", ".join(f"`{cid}`" for cid in self.untested) + "."]
        return out


def _yes_no(value: bool | None) -> str:
    return "—" if value is None else "yes" if value else "no"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")[:200]


# --- finding marks ---------------------------------------------------------------------------


def find_marks(path: str, text: str) -> list[Mark]:
    """The criterion ids the tests of one file carry. Pure.

    Ids gathered from markers and ``spec:`` comments attach to the next test definition
    within :data:`MARK_REACH` lines; ids left with no test after them are dropped.
    """
    marks: list[Mark] = []
    pending: list[str] = []
    pending_since = 0
    for number, line in enumerate(text.splitlines(), start=1):
        ids = _ids_on(line)
        if ids:
            if not pending:
                pending_since = number
            pending.extend(ids)
            continue
        if pending and number - pending_since > MARK_REACH:
            pending = []
        name = _definition(line)
        if name is not None and pending:
            marks += [Mark(cid, path, name, number) for cid in dict.fromkeys(pending)]
            pending = []
    return marks


def _ids_on(line: str) -> list[str]:
    marker = _MARKER.search(line)
    if marker is not None:
        return _QUOTED_ID.findall(marker.group(1))
    comment = _COMMENT.match(line)
    if comment is not None:
        return _BARE_ID.findall(comment.group(1))
    return []


def _definition(line: str) -> str | None:
    for pattern in _DEFINITIONS:
        found = pattern.match(line)
        if found is not None:
            return found.group(found.lastindex or 1)
    return None


def scan_tree(root: Path) -> list[Mark]:
    """The marks of every test file under ``root`` (``.git`` and hidden folders skipped)."""
    marks: list[Mark] = []
    for relative in _test_files(root):
        data = _read_regular(root / relative)
        if data is not None:
            marks += find_marks(relative, data.decode("utf-8", "replace"))
    return marks


def _test_files(root: Path) -> Iterable[str]:
    seen = 0
    for folder, dirs, files in os.walk(root, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "node_modules")
        for name in sorted(files):
            relative = (Path(folder) / name).relative_to(root).as_posix()
            if is_test_path(relative):
                seen += 1
                if seen > MAX_TEST_FILES:
                    return
                yield relative


def _read_regular(path: Path) -> bytes | None:
    try:
        info = path.lstat()
    except OSError:
        return None
    if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_TEST_FILE_BYTES:
        return None
    try:
        return path.read_bytes()
    except OSError:
        return None


# --- matching tests to their reports ---------------------------------------------------------


def case_matches(mark: Mark, case_id: str) -> bool:
    """Whether a JUnit case id (``classname::name``) is the marked test (or, for a marked
    class, one of its tests). Python cases are matched by module and name; others by name."""
    classname, _, name = case_id.rpartition("::")
    base = name.split("[", 1)[0]
    if mark.path.endswith(".py"):
        module = mark.path.removesuffix(".py").replace("/", ".")
        in_module = classname == module or classname.startswith(module + ".")
        if mark.name.startswith("Test") and not mark.name.startswith("test"):
            return in_module and classname.split(".")[-1] == mark.name
        return in_module and base == mark.name
    return mark.name in (base, name) or classname.endswith(mark.name)


def _outcome(mark: Mark, cases: Sequence[tuple[str, str]], *, failed: bool) -> bool | None:
    found = [outcome for case_id, outcome in cases if case_matches(mark, case_id)]
    if not found:
        return None
    if failed:
        return any(outcome in ("failed", "errors") for outcome in found)
    return all(outcome == "passed" for outcome in found)


def parse_figures(output: str) -> dict[str, str]:
    """``FIGURE <criterion id>: <value> <unit>`` lines of a test run's output (hostile input:
    only lines of exactly that shape are kept, the first per id, at most MAX_FIGURES)."""
    figures: dict[str, str] = {}
    for line in output.splitlines():
        found = _FIGURE.match(line.strip())
        if found is not None and found.group(1) not in figures and len(figures) < MAX_FIGURES:
            figures[found.group(1)] = f"{found.group(2)} {found.group(3)}".strip()
    return figures


def trace(spec: Spec, required: Sequence[str], marks: Sequence[Mark],
          before_cases: Sequence[tuple[str, str]], after_cases: Sequence[tuple[str, str]], *,
          before_failed: bool, new_files: Sequence[str] = (),
          figures: dict[str, str] | None = None) -> Traceability:
    """Map every criterion of ``spec`` to its marked tests and their outcomes. Pure.

    ``required`` are the ids of the new and changed criteria. A marked test in one of the
    change's test files (``new_files``) that is absent from the base run's report counts as
    failed before when that run failed (``before_failed``): it could not even be collected
    there, as the evidence check reads it too.
    """
    rows = []
    for criterion in spec.criteria:
        tests = []
        for mark in (m for m in marks if m.criterion_id == criterion.id):
            before = _outcome(mark, before_cases, failed=True)
            if before is None and before_failed and mark.path in new_files:
                before = True  # in the change's test files, it could not run on the base
            tests.append(TestTrace(mark.name, mark.path, before,
                                   _outcome(mark, after_cases, failed=False)))
        limit = constraint_of(criterion)
        rows.append(Row(criterion.id, criterion.text, criterion.id in required, tuple(tests),
                        limit.text if limit else "", (figures or {}).get(criterion.id, "")))
    return Traceability(spec.id, spec.path, tuple(rows))


# --- a spec job's traceability (the thin IO layer the verify and publish stages call) ----------


def spec_path_of(job: JobView) -> str | None:
    """The spec a spec job implements, from its trigger key; None for other jobs."""
    if job.kind != "spec" or ":spec:" not in job.trigger_key:
        return None
    return job.trigger_key.split(":spec:", 1)[1] or None


def spec_edit_violations(job: JobView, changes: ChangeSet) -> list[Violation]:
    """A spec job's change may not edit the spec it implements: the model is an untrusted
    author, and a criterion it rewrote would be merged and start the next job. forgebot
    writes the spec's ``status`` itself, after the gates."""
    path = spec_path_of(job)
    if path is None:
        return []
    return [Violation("specs.readonly", path, None, "the change edits the spec it implements; "
                      "only people change a spec's criteria")
            for change in changes.files if path in (change.path, change.old_path)]


def required_criteria(store: Store, job_id: int) -> tuple[str, ...]:
    """The new and changed criteria of the job's latest spec push."""
    pushes = [e["data"] for e in store.events(job_id) if e["kind"] == SPEC_PUSHED]
    ids = pushes[-1].get("criteria") if pushes else None
    return tuple(str(i) for i in ids) if isinstance(ids, list) else ()


def trace_job(store: Store, job: JobView, *, mirror: Path, base_sha: str, tree: Path,
              evidence: Evidence | None, after: Result) -> Traceability | None:
    """The traceability of a spec job's change, or None for other jobs.

    The spec is read from the base commit in the mirror, never from the change: the agent
    cannot rewrite the criteria it is judged by. The marks are read from the trusted tree.
    A spec that no longer parses there gives a table of no rows, whose check fails.
    """
    path = spec_path_of(job)
    if path is None:
        return None
    required = required_criteria(store, job.id)
    try:
        text = read_blob(mirror, base_sha, path, MAX_SPEC_BYTES)
        spec = parse_spec(text, path) if text is not None else None
    except (InvalidSpec, ValueError, UnicodeDecodeError):
        spec = None
    if spec is None:
        missing = tuple(Row(cid, "(the spec no longer parses)", True, ()) for cid in required)
        return Traceability(path.rsplit("/", 1)[-1].removesuffix(".md"), path, missing)
    before_cases = evidence.before_cases if evidence is not None else ()
    before_failed = evidence is not None and (evidence.before_exit or 0) != 0
    printed = after.junit.figure_lines if after.junit is not None else ()
    figures = parse_figures("\n".join((after.stdout, after.stderr, *printed)))
    new_files = evidence.test_files if evidence is not None else ()
    return trace(spec, required, scan_tree(tree), before_cases, _cases_of(after),
                 before_failed=before_failed, new_files=new_files, figures=figures)


def _cases_of(result: Result) -> tuple[tuple[str, str], ...]:
    return result.junit.cases if result.junit is not None else ()


def status_for(trace_result: Traceability, *, submitted: bool) -> str:
    """What the pull request records in the spec's front matter: ``implemented`` when the
    change is submitted and every new or changed criterion is proven, else ``partial``."""
    return "implemented" if submitted and trace_result.complete else "partial"


def write_status(tree: Path, path: str, status: str) -> bool:
    """Set ``status`` in the front matter of the spec at ``path`` in the trusted tree (trusted
    code, after the gates; the model never writes it). False when the file is not a regular
    file there or its front matter cannot be edited."""
    parts = path.split("/")
    folder = tree
    for part in parts[:-1]:  # a folder that is a link could lead out of the tree
        folder = folder / part
        if folder.is_symlink() or not folder.is_dir():
            return False
    target = folder / parts[-1]
    data = _read_regular(target)
    if data is None:
        return False
    try:
        text = data.decode("utf-8")
        updated = with_status(text, status)
    except (UnicodeDecodeError, ValueError):
        return False
    if updated != text:
        fd = os.open(target, os.O_WRONLY | os.O_TRUNC | os.O_NOFOLLOW)
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(updated)
    return True


def spec_report(trace_result: Traceability, tree: Path, *, submitted: bool) -> dict[str, Any]:
    """The spec fields of a spec job's ``Report``, after writing the spec's new status into
    the trusted tree (so the commit about to be made carries it)."""
    status = status_for(trace_result, submitted=submitted)
    written = write_status(tree, trace_result.spec_path, status)
    return {"spec_path": trace_result.spec_path, "traceability": tuple(trace_result.lines()),
            "untested": trace_result.untested, "spec_status": status if written else ""}


# --- forgebot spec status ---------------------------------------------------------------------


def criterion_pulls(store: Store, forge: str, repo: str) -> dict[str, dict[str, str]]:
    """Per spec path, per criterion id: the pull request that implemented it (``#12``, with
    `` (merged)`` once merged), from the spec jobs' ``spec.traced`` events, latest first."""
    out: dict[str, dict[str, str]] = {}
    for path, job in spec_jobs(store, forge, repo).items():
        events = store.events(job.id)
        merged = {e["data"].get("number") for e in events if e["kind"] == "pull.merged"}
        published: dict[int | None, int] = {}  # attempt -> pull request number
        for event in events:
            if event["kind"] == "pull.published":
                published[event["attempt_id"]] = event["data"].get("number")
        found: dict[str, str] = {}
        for event in reversed(events):
            number = published.get(event["attempt_id"])
            if event["kind"] != "spec.traced" or number is None:
                continue
            label = f"#{number}" + (" (merged)" if number in merged else "")
            for criterion_id in event["data"].get("proven") or []:
                found.setdefault(str(criterion_id), label)
        out[path] = found
    return out


def render_status(spec: Spec, pulls: dict[str, str]) -> str:
    """One spec for ``forgebot spec status``: its status, then each criterion and the pull
    request that implemented it (``-`` for none yet)."""
    width = max((len(c.id) for c in spec.criteria), default=0)
    out = [f"{spec.path}  {spec.id}  status: {spec.status or '-'}"]
    for criterion in spec.criteria:
        out.append(f"  {criterion.id:<{width}}  {pulls.get(criterion.id, '-'):<14}  "
                   f"{criterion.text[:80]}")
    return "\n".join(out) + "\n"
