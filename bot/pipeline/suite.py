"""The runs of the test suite that judge a change by what it does when it runs.

The verify run carries canary credentials (:mod:`bot.pipeline.canaries`) and, where the
sandbox backend can, a network sink (:mod:`bot.sandbox.netsink`). When the change could
weaken existing tests, or its tests reached for the network, the suite also runs on the base
commit as it is, so the two can be compared: fewer tests run (:mod:`bot.pipeline.weakening`)
and destinations the base never tried are violations. Everything here runs on trusted copies;
what the runs print is hostile input.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

from bot import gitops
from bot.errors import GitError, SandboxError
from bot.pipeline import weakening
from bot.pipeline.attempt import Prepared, Recorder, Runtime, sandbox_labels, sandbox_limits
from bot.pipeline.canaries import Canaries, plant
from bot.policy.changeset import ChangeSet
from bot.policy.evaluate import Violation, violation
from bot.sandbox.base import Result, Session
from bot.sandbox.netsink import Attempt, ObservedSession, ObservingSandbox, destinations
from bot.sandbox.tarball import tar_directory

MAX_DESTINATIONS_SHOWN = 5
MAX_FILES_SHOWN = 5


@dataclass(frozen=True)
class Run:
    """One run of the suite: its result, and where it tried to go (None: not observed)."""

    result: Result
    attempts: tuple[Attempt, ...] | None = None


@dataclass(frozen=True)
class Judged:
    """The verify run (output redacted), what the execution-based checks found in it, and
    the suite on the base commit against it, when it ran."""

    tests: Result
    violations: tuple[Violation, ...] = ()
    compared: weakening.Weakening | None = None


def run_tests(rt: Runtime, rec: Recorder, prepared: Prepared, tree: Path, phase: str, *,
              canaries: Canaries | None = None, observe: bool = False) -> Run:
    """The test command on ``tree`` in a fresh sandbox, with ``canaries`` planted, in a
    network sink's namespace when ``observe`` and the backend can."""
    limits, labels = sandbox_limits(rt, prepared.policy), sandbox_labels(rec, phase)
    sink_image = rt.settings.sandbox.images.get("python")
    session: Session
    if observe and isinstance(rt.sandbox, ObservingSandbox) and sink_image:
        session = rt.sandbox.start_observed(prepared.image, limits, labels, sink_image)
    else:
        session = rt.sandbox.start(prepared.image, limits, labels)
    command = prepared.test_cmd if canaries is None else canaries.wrap(prepared.test_cmd)
    try:
        session.put(tar_directory(tree))
        result = session.run(command, prepared.policy.limits.test_timeout_s)
    finally:
        session.close()
    observed = session.attempts if isinstance(session, ObservedSession) else None
    return Run(result, tuple(observed) if observed is not None else None)


def judge(rt: Runtime, rec: Recorder, prepared: Prepared, trusted: Path,
          changes: ChangeSet) -> Judged:
    """The verify run of ``trusted`` and, beside it when the change could weaken tests, the
    base's; then canaries, test weakening and network attempts, in that order."""
    checks = prepared.policy.checks
    observe = checks.forbid_network_in_tests
    compare = checks.forbid_test_weakening and weakening.could_weaken(changes)
    # The base commit's suite runs beside the verify run, in its own sandbox.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="forgebot-base") as pool:
        # Observed only when the verify run reached out (then _network runs it again).
        base = pool.submit(_run_base, rt, rec, prepared, False) if compare else None
        tests, attempts, leaked = _run_with_canaries(rt, rec, prepared, trusted, observe)
        before = base.result() if base is not None else None
    if leaked is not None:
        return Judged(tests, (leaked,))
    compared = _compared(rec, before.result, tests) if before is not None else None
    weakened = _weakened(rt, compared)
    found = [v for v in (weakened, _network(rt, rec, prepared, attempts, before))
             if v is not None]
    return Judged(tests, tuple(found), compared)


def _run_with_canaries(rt: Runtime, rec: Recorder, prepared: Prepared, trusted: Path,
                       observe: bool) -> tuple[Result, tuple[Attempt, ...] | None,
                                               Violation | None]:
    """The verify run with fresh canaries planted: its result with every canary redacted
    (output, and the JUnit report's failure messages and figures), its network attempts, and
    the violation when a canary came out: printed, sent, or written to a file."""
    canaries = plant()
    run = run_tests(rt, rec, prepared, trusted, "verify", canaries=canaries, observe=observe)
    stderr, written = canaries.files_written(run.result.stderr)
    tests = replace(run.result, stderr=stderr)
    junit = tests.junit
    reported = [*junit.failures, *junit.figure_lines] if junit is not None else []
    leaked = canaries.seen("\n".join([tests.stdout, tests.stderr, *reported]))
    attempts = run.attempts or ()
    sent = canaries.seen("\n".join(a.head.decode("latin-1") for a in attempts))
    sent += [w for w in canaries.seen_in_names(a.name for a in attempts) if w not in sent]
    written = [canaries.redact(path) for path in written]
    tests = replace(tests, stdout=canaries.redact(tests.stdout),
                    stderr=canaries.redact(tests.stderr))
    if junit is not None:  # failure messages and figures reach the pull request body
        tests = replace(tests, junit=replace(
            junit, failures=tuple(canaries.redact(line) for line in junit.failures),
            figure_lines=tuple(canaries.redact(line) for line in junit.figure_lines)))
    found = bool(leaked or sent or written)
    rt.metrics.gates.labels("canaries", "blocked" if found else "passed").inc()
    if not found:
        return tests, run.attempts, None
    rec.event("gates.canaries", leaked=leaked, sent=sent, written=written)
    shown = ", ".join(written[:MAX_FILES_SHOWN]) + (", ..." if len(written) > MAX_FILES_SHOWN
                                                    else "")
    where = [f"printed ({', '.join(leaked)})" if leaked else "",
             f"sent over the network ({', '.join(sent)})" if sent else "",
             f"written to {'a file' if len(written) == 1 else 'files'} ({shown})"
             if written else ""]
    return tests, run.attempts, violation(
        "checks.canaries", None, None,
        f"planted fake credentials came out of the tests: {' and '.join(w for w in where if w)}"
        "; the change sends the environment or credential files out")


def _run_base(rt: Runtime, rec: Recorder, prepared: Prepared, observe: bool) -> Run | None:
    """The test command on the base commit as it is (no file of the change). None when it
    could not run."""
    base = prepared.attempt_root / "suite-base"
    try:
        if not base.exists():
            with rt.repo_lock(f"{rec.lease.claim.job.forge}/{rec.lease.claim.job.repo}"):
                gitops.add_worktree(prepared.mirror, base, prepared.base_sha)
        return run_tests(rt, rec, prepared, base, "base", observe=observe)
    except (SandboxError, GitError) as exc:
        rec.event("tests.base_not_run", error=str(exc)[:300])
        return None


def _compared(rec: Recorder, before: Result, after: Result) -> weakening.Weakening | None:
    """The change's suite against the base's (:func:`weakening.compare`), recorded."""
    found = weakening.compare(before, after)
    if found is None:
        rec.event("tests.compared", compared=False)
        return None
    rec.event("tests.compared", compared=True, ran_before=found.ran_before,
              ran_after=found.ran_after, newly_skipped=list(found.newly_skipped))
    return found


def _weakened(rt: Runtime, found: weakening.Weakening | None) -> Violation | None:
    """``checks.tests_weakened`` when the change's suite runs less than the base's."""
    if found is None:
        return None
    rt.metrics.gates.labels("tests_weakened", "blocked" if found.weakened else "passed").inc()
    if not found.weakened:
        return None
    return violation("checks.tests_weakened", None, None, found.message())


def _network(rt: Runtime, rec: Recorder, prepared: Prepared,
             attempts: tuple[Attempt, ...] | None, before: Run | None) -> Violation | None:
    """``checks.network`` for destinations the change's tests tried that the base's did not
    (the base runs now if it has not: a repository whose own tests look names up is not the
    change's doing)."""
    if attempts is None:
        if prepared.policy.checks.forbid_network_in_tests:
            rec.event("network.not_observed")
        return None
    if not attempts:
        rt.metrics.gates.labels("network", "passed").inc()
        return None
    if before is None or before.attempts is None:
        before = _run_base(rt, rec, prepared, observe=True)
    known = set(destinations(list(before.attempts or ()))) if before is not None else set()
    new = [d for d in destinations(list(attempts)) if d not in known]
    rec.event("network.attempts", attempts=[str(a) for a in attempts[:20]], new=new[:20],
              base_compared=before is not None)
    rt.metrics.gates.labels("network", "blocked" if new else "passed").inc()
    if not new:
        return None
    return violation("checks.network", None, None, _network_message(new, attempts))


def _network_message(new: Sequence[str], attempts: Sequence[Attempt]) -> str:
    shown = ", ".join(new[:MAX_DESTINATIONS_SHOWN])
    more = len(new) - MAX_DESTINATIONS_SHOWN
    sent = sum(a.sent for a in attempts)
    return (f"the tests tried to reach the network: {shown}"
            + (f" and {more} more" if more > 0 else "")
            + (f" ({sent} bytes sent)" if sent else "")
            + "; the sandbox has none, and the change must not need it")
