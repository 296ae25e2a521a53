"""The verify stage: the agent's diff re-applied on a trusted worktree, judged there by the
policy and secret gates, tested again in a fresh sandbox, and proven against the base commit.

Nothing the sandbox said is believed: everything here runs on the trusted copy.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

from bot import gitops
from bot.agent.loop import AgentResult
from bot.pipeline import evidence, structure_gate, suite
from bot.pipeline.attempt import Prepared, Recorder, Runtime
from bot.pipeline.evidence import Evidence
from bot.pipeline.install import DependencyCheck, check_dependency_change
from bot.pipeline.traceability import Traceability, spec_edit_violations, trace_job
from bot.policy.changeset import ChangeSet, DiffError, parse_diff
from bot.policy.evaluate import Violation, evaluate
from bot.sandbox.base import Result
from bot.sandbox.toolchain import Toolchain, detect_toolchain, read_marker_files
from bot.secret_scan import Finding, scan_changes


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
    ran_before: int | None = None  # tests run on the base commit, when its suite ran too


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
        structure = (pool.submit(structure_gate.analysis, rt, rec, prepared, trusted, changes)
                     if prepared.policy.checks.analysis else None)
        violations = evaluate(prepared.policy, changes)
        violations += spec_edit_violations(rec.lease.claim.job, changes)
        findings = scan_changes(changes) if prepared.policy.checks.secret_scan else []
        structure_gate.redact_stored(rt, rec, structure_gate.flagged_lines(changes, findings),
                                     "the secret scan")
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
    gated = replace(gated, ran_before=judged.compared.ran_before if judged.compared else None)
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
