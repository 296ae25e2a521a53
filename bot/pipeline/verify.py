"""The verify stage: the agent's diff re-applied on a trusted worktree, judged there by the
policy and secret gates, tested again in a fresh sandbox, and proven against the base commit.

Nothing the sandbox said is believed: everything here runs on the trusted copy.
"""

from __future__ import annotations

import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

from bot import analyzer, gitops
from bot.agent.loop import AgentResult
from bot.pipeline import evidence, suite
from bot.pipeline.attempt import Prepared, Recorder, Runtime
from bot.pipeline.evidence import Evidence
from bot.pipeline.install import DependencyCheck, check_dependency_change
from bot.pipeline.traceability import Traceability, spec_edit_violations, trace_job
from bot.policy.changeset import ChangeSet, DiffError, FileStatus, parse_diff
from bot.policy.evaluate import Violation, evaluate, normalise_path, violation
from bot.sandbox.base import Result
from bot.sandbox.toolchain import Toolchain, detect_toolchain, read_marker_files
from bot.secret_scan import Finding, scan_changes

# The secret-shaped literals of a file in which the structural gate finds a literal credential
# check are redacted from the stored transcript too (the value may sit on another line).
_CREDENTIAL_RULE = "literal-credential-check"
_STRING_LITERAL = re.compile(r"""(["'`])((?:(?!\1)[^\\]|\\.){4,}?)\1""")
_UNQUOTED_VALUE = re.compile(r"""[:=]\s*([^\s"'`]{6,})\s*$""")
_SECRET_SHAPE = re.compile(
    r"^(?=.*[0-9].*[A-Za-z]|.*[A-Za-z].*[0-9]|.*[^A-Za-z0-9_. /-]|.{16,}).{6,}$")


@dataclass
class Verified:
    diff: str
    changes: ChangeSet | None
    violations: list[Violation]
    findings: list[Finding]
    tests: Result | None
    trusted_dir: Path
    evidence: Evidence | None = None  # None when the tests did not run on the change
    trace: Traceability | None = None  # a spec job's criteria → tests (bot.pipeline.traceability)
    dependencies: DependencyCheck = field(default_factory=DependencyCheck)


def verify(rt: Runtime, rec: Recorder, prepared: Prepared, agent: AgentResult) -> Verified:
    diff = gitops.diff(prepared.agent_dir, prepared.base_sha)
    trusted = prepared.attempt_root / "trusted"
    with rt.repo_lock(f"{rec.lease.claim.job.forge}/{rec.lease.claim.job.repo}"):
        gitops.add_worktree(prepared.mirror, trusted, prepared.base_sha)
    if not diff.strip():
        rec.event("verify.empty")
        return Verified("", None, [], [], None, trusted)
    gitops.apply_patch(trusted, diff)
    # Judge the copy on the trusted side, never what the sandbox says it did.
    trusted_diff = gitops.diff(trusted, prepared.base_sha)
    try:
        changes = parse_diff(trusted_diff)
    except DiffError as exc:  # git wrote it, so this is a bug or an attack: block, never guess
        rec.event("gates.evaluated", violations=["diff.invalid"], findings=0)
        return Verified(trusted_diff, None, [Violation("diff.invalid", None, None, str(exc))],
                        [], None, trusted)
    # The structural gate reads the files while the other gates, and the tests when they
    # pass, run: its verdict is waited for before anything is decided.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="forgebot-analysis") as pool:
        structure = (pool.submit(_analysis, rt, rec, prepared, trusted, changes)
                     if prepared.policy.checks.analysis else None)
        violations = evaluate(prepared.policy, changes)
        violations += spec_edit_violations(rec.lease.claim.job, changes)
        findings = scan_changes(changes) if prepared.policy.checks.secret_scan else []
        _redact_stored(rt, rec, _flagged_lines(changes, findings), "the secret scan")
        rec.event("gates.evaluated", violations=[v.rule for v in violations],
                  findings=len(findings))
        rt.metrics.gates.labels("policy", "blocked" if violations else "passed").inc()
        rt.metrics.gates.labels("secret_scan", "blocked" if findings else "passed").inc()
        gated = Verified(trusted_diff, changes, violations, findings, None, trusted)
        verified = gated if violations or findings else _tested(rt, rec, prepared, gated)
        found = structure.result() if structure is not None else []
    return replace(verified, violations=[*found, *verified.violations]) if found else verified


def _tested(rt: Runtime, rec: Recorder, prepared: Prepared, gated: Verified) -> Verified:
    """A change that passed the gates: its dependencies, the verify run of the tests (with
    canaries), the proof against the base commit and a spec job's trace."""
    trusted, changes = gated.trusted_dir, gated.changes
    assert changes is not None
    deps = _dependencies(rt, rec, prepared, trusted, changes)
    if deps.violation is not None:
        return replace(gated, violations=[deps.violation], dependencies=deps)
    if deps.failed_setup is not None:  # the change's dependencies do not install
        return replace(gated, tests=deps.failed_setup, dependencies=deps)
    judged = suite.judge(rt, rec, prepared, trusted, changes)
    tests = judged.tests
    if judged.violations:
        return replace(gated, violations=list(judged.violations), tests=tests,
                       dependencies=deps)
    counts = tests.junit
    passed = tests.exit_code == 0 and not tests.timed_out
    rt.metrics.sandboxes.labels(
        "verify", "timeout" if tests.timed_out else "passed" if passed else "failed").inc()
    rec.event("tests.ran", exit_code=tests.exit_code, timed_out=tests.timed_out,
              passed=counts.passed if counts else None,
              failed=counts.failed if counts else None)
    proof = _prove(rt, rec, prepared, changes, tests)
    traced = trace_job(rt.store, rec.lease.claim.job, mirror=prepared.mirror,
                       base_sha=prepared.base_sha, tree=trusted, evidence=proof, after=tests)
    if traced is not None:
        rec.event("spec.traced", spec=traced.spec_path, untested=list(traced.untested),
                  proven=[r.criterion_id for r in traced.rows if r.proven])
    return replace(gated, tests=tests, evidence=proof, trace=traced, dependencies=deps)


def _analysis(rt: Runtime, rec: Recorder, prepared: Prepared, trusted: Path,
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
    _redact_stored(rt, rec, [line.text for change in files if change.path in flagged
                             for line in change.added], f"checks.analysis:{_CREDENTIAL_RULE}")
    rt.metrics.gates.labels("analysis", "blocked" if found else "passed").inc()
    return [violation(f"checks.analysis:{f.rule}", f.path, f.line, f.message) for f in found]


def _redact_stored(rt: Runtime, rec: Recorder, lines: list[str], gate: str) -> None:
    """Redact the secret-shaped values of ``lines`` (flagged by ``gate``) from the attempt's
    stored transcript: the model's reply holding them, and the issue asking for them, were
    stored before the gate saw them."""
    values = [value for line in lines for value in _secret_literals(line)]
    if values:
        rt.store.redact_transcript(rec.job_id, rec.lease.claim.attempt_id, values,
                                   f"[redacted: flagged by {gate}]")


def _flagged_lines(changes: ChangeSet, findings: list[Finding]) -> list[str]:
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


def _dependencies(rt: Runtime, rec: Recorder, prepared: Prepared, trusted: Path,
                  changes: ChangeSet) -> DependencyCheck:
    """A change to a manifest or lockfile is listed, governed by ``checks.new_dependencies``,
    and installed again (through the proxy) for the verify run and the evidence."""
    setup = prepared.setup
    assert setup is not None
    found = detect_toolchain(read_marker_files(trusted), setup.override,
                             rt.settings.sandbox.images, setup.version)
    toolchain = found if isinstance(found, Toolchain) else setup.toolchain
    check, image = check_dependency_change(
        rt, rec, base=setup.manifests, changed_paths=[f.path for f in changes.files],
        tree=trusted, toolchain=toolchain, policy=prepared.policy)
    if image is not None:
        prepared.image = image
    return check


def _prove(rt: Runtime, rec: Recorder, prepared: Prepared, changes: ChangeSet,
           after: Result) -> Evidence:
    """The change's tests on the base commit must fail there (see bot.pipeline.evidence)."""
    base_dir = prepared.attempt_root / "base"

    def checkout_base() -> Path:
        with rt.repo_lock(f"{rec.lease.claim.job.forge}/{rec.lease.claim.job.repo}"):
            gitops.add_worktree(prepared.mirror, base_dir, prepared.base_sha)
        return base_dir

    rec.check()
    found = evidence.gather(
        evidence.changed_test_files(changes), after, prepared.attempt_root / "trusted",
        checkout_base,
        lambda tree: suite.run_tests(rt, rec, prepared, tree, "evidence").result)
    rec.event("evidence", status=found.status.value, test_files=list(found.test_files),
              proven=len(found.proven), before_exit=found.before_exit)
    rt.metrics.gates.labels("evidence", "passed" if found.holds else "blocked").inc()
    return found
