"""The structural gate in the pipeline: :mod:`bot.analyzer` on the trusted copy of a change,
with the base's copy of the files it modifies beside it; and the after-the-fact redaction of
what the gates flag from the attempt's stored transcript (the model's reply, and the issue
asking for the values, were stored before any gate saw them)."""

from __future__ import annotations

import re
import time
from pathlib import Path

from bot import analyzer, gitops
from bot.pipeline.attempt import Prepared, Recorder, Runtime
from bot.policy.changeset import ChangeSet, FileStatus
from bot.policy.evaluate import Violation, normalise_path, violation
from bot.secret_scan import Finding

# The secret-shaped literals of a file in which the structural gate finds a literal credential
# check are redacted from the stored transcript too (the value may sit on another line).
_CREDENTIAL_RULE = "literal-credential-check"
_STRING_LITERAL = re.compile(r"""(["'`])((?:(?!\1)[^\\]|\\.){4,}?)\1""")
_UNQUOTED_VALUE = re.compile(r"""[:=]\s*([^\s"'`]{6,})\s*$""")
_SECRET_SHAPE = re.compile(
    r"^(?=.*[0-9].*[A-Za-z]|.*[A-Za-z].*[0-9]|.*[^A-Za-z0-9_. /-]|.{16,}).{6,}$")


def analysis(rt: Runtime, rec: Recorder, prepared: Prepared, trusted: Path,
             changes: ChangeSet) -> list[Violation]:
    """The structural gate (:mod:`bot.analyzer`) on the trusted copy's changed files, with
    the base's copy of the modified ones beside it. A gate that could not run is a violation
    too: nothing passes unseen."""
    files = [change for change in changes.files
             if change.status is not FileStatus.DELETED and not change.is_symlink
             and not change.is_binary and normalise_path(change.path) == change.path]
    base = prepared.attempt_root / "analysis-base"
    for change in files:
        if change.status is FileStatus.MODIFIED:
            old = base / change.path
            old.parent.mkdir(parents=True, exist_ok=True)
            old.write_bytes(gitops.read_file(trusted, prepared.base_sha, change.path)
                            .encode("utf-8", "surrogateescape"))
    added = {change.path: [line.number for line in change.added] for change in files}
    rules = rt.settings.analysis_rules or analyzer.RULES_DIR
    started = time.monotonic()
    try:
        found = analyzer.analyze(trusted, added, rules, base=base)
    except analyzer.AnalyzerError as exc:
        rec.event("gates.analysis", error=str(exc))
        rt.metrics.gates.labels("analysis", "blocked").inc()
        return [violation("checks.analysis", None, None,
                          f"the structural gate could not judge the change: {exc}")]
    rec.event("gates.analysis", findings=[f"{f.rule} {f.path}:{f.line}" for f in found],
              seconds=round(time.monotonic() - started, 2))
    flagged = {f.path for f in found if f.rule.startswith(_CREDENTIAL_RULE)}
    redact_stored(rt, rec, [line.text for change in files if change.path in flagged
                             for line in change.added], f"checks.analysis:{_CREDENTIAL_RULE}")
    rt.metrics.gates.labels("analysis", "blocked" if found else "passed").inc()
    return [violation(f"checks.analysis:{f.rule}", f.path, f.line, f.message) for f in found]


def redact_stored(rt: Runtime, rec: Recorder, lines: list[str], gate: str) -> None:
    """Redact the secret-shaped values of ``lines`` (flagged by ``gate``) from the attempt's
    stored transcript: the model's reply holding them, and the issue asking for them, were
    stored before the gate saw them."""
    values = [value for line in lines for value in _secret_literals(line)]
    if values:
        rt.store.redact_transcript(rec.job_id, rec.lease.claim.attempt_id, values,
                                   f"[redacted: flagged by {gate}]")


def flagged_lines(changes: ChangeSet, findings: list[Finding]) -> list[str]:
    """The added lines the secret scan flagged."""
    where = {(f.path, f.line) for f in findings}
    return [line.text for change in changes.files for line in change.added
            if (change.path, line.number) in where]


def _secret_literals(line: str) -> list[str]:
    """The string literals of ``line`` shaped like a secret: 6 characters or more, with
    letters and digits, a symbol, or 16 characters and more."""
    quoted = [match.group(2) for match in _STRING_LITERAL.finditer(line)]
    unquoted = _UNQUOTED_VALUE.search(line)  # KEY=value, key: value
    values = quoted + ([unquoted.group(1)] if unquoted and not quoted else [])
    return [value for value in values if _SECRET_SHAPE.match(value)]
