"""One attempt of one job: prepare → implement → verify → publish.

Every stage change is a row in ``job_events``. Nothing that comes out of the sandbox is
trusted: the agent's diff is re-applied to a clean worktree, the gates judge it there, the
tests run again in a fresh sandbox, and only that copy is committed and pushed.
"""

from __future__ import annotations

import logging
import re
import shutil
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from bot import gitops
from bot.agent.loop import AgentResult, AgentSettings, AgentTask, run_agent
from bot.agent.providers import make_provider
from bot.config import Settings
from bot.errors import (
    ForgebotError,
    ForgeError,
    GitError,
    ModelError,
    SandboxError,
)
from bot.forges.base import Forge, Issue, NewPull
from bot.logs import job_context
from bot.metrics import Metrics
from bot.pipeline.lease import Lease
from bot.pipeline.outcomes import JobStopped, Outcome
from bot.pipeline.repo_setup import RepoSetup, read_repo_setup
from bot.pipeline.report import (
    FileChange,
    Report,
    Status,
    pull_body,
    pull_title,
    status_comment,
    status_marker,
)
from bot.policy.changeset import ChangeSet, DiffError, parse_diff
from bot.policy.evaluate import Violation, evaluate
from bot.policy.model import Policy
from bot.sandbox.base import Limits, Result, Sandbox, SetupSnapshots
from bot.sandbox.docker import OWNER_LABEL
from bot.sandbox.tarball import tar_directory
from bot.secret_scan import Finding, scan_changes
from bot.store import Store

log = logging.getLogger(__name__)


class Cancelled(ForgebotError):
    """The lease was lost (or the job cancelled): stop without publishing."""


class BudgetExceeded(ForgebotError):
    """The attempt ran past the policy's ``limits.job_timeout_s``."""


_OUTCOME_OF_ERROR: tuple[tuple[type[ForgebotError], Outcome], ...] = (
    (BudgetExceeded, Outcome.BUDGET_EXCEEDED),
    (SandboxError, Outcome.SANDBOX_ERROR),
    (ModelError, Outcome.MODEL_ERROR),
    (ForgeError, Outcome.FORGE_ERROR),
    (GitError, Outcome.FORGE_ERROR),
)


@dataclass
class Runtime:
    """What every attempt needs, built once at start."""

    settings: Settings
    store: Store
    forges: Mapping[str, Forge]
    sandbox: Sandbox
    policy: Policy
    metrics: Metrics = field(default_factory=Metrics)
    _repo_locks: dict[str, threading.Lock] = field(default_factory=dict)
    _guard: threading.Lock = field(default_factory=threading.Lock)

    def repo_lock(self, key: str) -> threading.Lock:
        with self._guard:
            return self._repo_locks.setdefault(key, threading.Lock())


@dataclass
class Recorder:
    """Writes the attempt's events, and checks the lease and the deadline at every one."""

    store: Store
    lease: Lease
    deadline: float  # time.monotonic() after which the attempt stops
    metrics: Metrics
    forge: Forge
    max_iterations: int
    status: Status = field(init=False)

    def __post_init__(self) -> None:
        self.status = Status(self.lease.claim.job.id, self.lease.claim.attempt_number)

    @property
    def job_id(self) -> int:
        return self.lease.claim.job.id

    def event(self, kind: str, **data: Any) -> None:
        self.store.add_event(self.job_id, kind, data, attempt_id=self.lease.claim.attempt_id)

    def show(self, **change: Any) -> None:
        """Update the job's one status comment on the issue. A forge that refuses does not
        stop the job: the comment is a view, the events are the record."""
        self.status = replace(self.status, **change)
        job = self.lease.claim.job
        try:
            self.forge.upsert_comment(job.repo, job.issue_number, status_marker(job.id),
                                      status_comment(self.status))
        except ForgeError as exc:
            self.event("status.failed", error=str(exc))

    def check(self) -> None:
        """Stop the attempt when its lease is gone, the job was cancelled (``/cancel``,
        seen at once through the store) or its time is up."""
        if self.lease.lost.is_set():
            raise Cancelled("the job's lease was lost")
        current = self.store.get_job(self.job_id)
        if current is None or current.state != "running":
            self.lease.lost.set()
            raise Cancelled(f"the job is {current.state if current else 'gone'}")
        if time.monotonic() > self.deadline:
            raise BudgetExceeded("the attempt ran past limits.job_timeout_s")

    def agent_event(self, kind: str, data: dict[str, object]) -> None:
        """The agent loop reports every iteration here, so a long loop stops in time too."""
        self.event(kind, **data)
        if kind == "agent.reply" and isinstance(data.get("i"), int):
            self.show(iteration=(data["i"], self.max_iterations))
        if kind == "agent.reply":
            self._observe_model(data)
        elif kind == "agent.iteration" and data.get("exit_code") is not None:
            result = "timeout" if data.get("timed_out") else (
                "passed" if data.get("exit_code") == 0 else "failed")
            self.metrics.sandboxes.labels("agent", result).inc()
        self.check()

    def _observe_model(self, data: dict[str, object]) -> None:
        provider = str(data.get("provider", "unknown"))
        prompt, completion = data.get("prompt_tokens"), data.get("completion_tokens")
        seconds = data.get("seconds")
        self.metrics.model_calls.labels(provider).inc()
        if isinstance(prompt, int) and isinstance(completion, int):
            self.metrics.model_tokens.labels(provider, "prompt").inc(prompt)
            self.metrics.model_tokens.labels(provider, "completion").inc(completion)
            if isinstance(seconds, float | int) and seconds > 0:
                self.metrics.model_tps.labels(provider).observe(completion / seconds)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        self.check()
        self.event("stage.started", stage=name)
        self.show(current=name)
        started = time.monotonic()
        try:
            yield
        except Exception as exc:
            self.event("stage.failed", stage=name, error=type(exc).__name__)
            raise
        finally:
            self.metrics.stage_seconds.labels(name).observe(time.monotonic() - started)
        self.event("stage.finished", stage=name)
        self.status = replace(self.status, done=(*self.status.done, name))


@dataclass
class Prepared:
    forge: Forge
    issue: Issue
    branch: str
    mirror: Path
    agent_dir: Path
    base_sha: str
    attempt_root: Path
    setup: RepoSetup | None = None  # the job's policy and toolchain, once read
    image: str = ""  # what sessions start from: the setup snapshot, or the runner image
    snapshot: str | None = None  # the setup snapshot to remove at the end
    feedback: str = ""  # from /retry or /revise, appended to the task

    @property
    def policy(self) -> Policy:
        assert self.setup is not None, "read after prepare"
        return self.setup.policy

    @property
    def test_cmd(self) -> list[str]:
        assert self.setup is not None, "read after prepare"
        return list(self.setup.toolchain.test)


@dataclass
class Verified:
    diff: str
    changes: ChangeSet | None
    violations: list[Violation]
    findings: list[Finding]
    tests: Result | None
    trusted_dir: Path


def run_job(rt: Runtime, lease: Lease) -> None:
    """Run one attempt to a named outcome, report it on the forge and close the job."""
    claim = lease.claim
    with job_context(job=claim.job.id, attempt=claim.attempt_id):
        forge = rt.forges.get(claim.job.forge)
        if forge is None:  # configuration changed since the job was queued
            log.error("job's forge is not configured", extra={"forge": claim.job.forge})
            rt.store.finish(claim, lease.owner, Outcome.FORGE_ERROR.value, failed=True)
            return
        _run_attempt(rt, lease, forge)


def _run_attempt(rt: Runtime, lease: Lease, forge: Forge) -> None:
    started = time.monotonic()
    rec = Recorder(rt.store, lease, started + rt.policy.limits.job_timeout_s,
                   rt.metrics, forge, _max_iterations(rt))
    job = lease.claim.job
    report: Report
    prepared: Prepared | None = None
    try:
        with rec.stage("prepare"):
            prepared = _prepare(rt, rec)
        # The repository's policy may only tighten the bot-wide time limit.
        rec.deadline = min(rec.deadline, started + prepared.policy.limits.job_timeout_s)
        rec.max_iterations = _max_iterations(rt, prepared.policy)
        with rec.stage("implement"):
            agent = _implement(rt, rec, prepared)
        with rec.stage("verify"):
            verified = _verify(rt, rec, prepared, agent)
        with rec.stage("publish"):
            report = _publish(rt, rec, prepared, agent, verified)
    except Cancelled as exc:
        log.info("attempt stopped", extra={"job": job.id, "reason": str(exc)})
        if prepared is not None:
            _cleanup(rt, prepared)
        current = rt.store.get_job(job.id)
        if current is not None and current.state == "cancelled":
            rec.show(final=Report(job_id=job.id, attempt=lease.claim.attempt_number,
                                  issue_number=job.issue_number, issue_title=job.title,
                                  outcome=Outcome.CANCELLED))
        return
    except ForgebotError as exc:
        report = _failure_report(rec, exc)
        if _retry_later(rt, rec, exc):
            if prepared is not None:
                _cleanup(rt, prepared)
            return
    except Exception as exc:  # a bug: say so on the issue rather than retry it forever
        log.exception("attempt failed unexpectedly", extra={"job": job.id})
        report = _failure_report(rec, exc)
    if prepared is not None:
        _cleanup(rt, prepared)
    _close(rt, rec, report)


def _retry_later(rt: Runtime, rec: Recorder, exc: ForgebotError) -> bool:
    """A forge or engine fault that may pass: close this attempt and queue the job again,
    within ``scheduler.max_attempts``. Safe, because publishing finds the pull request by its
    branch and recognises its own pushes: a retry never makes a second one."""
    claim = rec.lease.claim
    if not (exc.retryable and isinstance(exc, ForgeError | GitError | SandboxError)):
        return False
    if claim.attempt_number >= rt.settings.scheduler.max_attempts:
        return False
    if not rt.store.finish(claim, rec.lease.owner, "retrying", failed=True):
        return True  # the lease is gone: whoever holds the job now decides
    rt.store.requeue(claim.job.id, mode=None, feedback="", by="forgebot")
    rec.show(current=None, iteration=None)
    rec.event("attempt.retry_later", error=type(exc).__name__)
    return True


def _failure_report(rec: Recorder, exc: Exception) -> Report:
    if isinstance(exc, JobStopped):
        outcome = exc.outcome
    else:
        outcome = next((o for kind, o in _OUTCOME_OF_ERROR if isinstance(exc, kind)),
                       Outcome.INTERNAL_ERROR)
    # Our own errors carry messages written for operators (and scrubbed of tokens); anything
    # else is a bug whose text may hold anything, so only its type is shown.
    message = str(exc) if isinstance(exc, ForgebotError) else type(exc).__name__
    job = rec.lease.claim.job
    rec.event("attempt.error", outcome=outcome.value, error=type(exc).__name__, message=message)
    detail = message if isinstance(exc, JobStopped) else f"Error: {message}"
    return Report(job_id=job.id, attempt=rec.lease.claim.attempt_number,
                  issue_number=job.issue_number, issue_title=job.title, outcome=outcome,
                  detail=detail)


def _close(rt: Runtime, rec: Recorder, report: Report) -> None:
    job = rec.lease.claim.job
    rec.show(final=report)
    rt.store.finish(rec.lease.claim, rec.lease.owner, report.outcome.value,
                    failed=report.outcome.failed)
    rt.metrics.jobs_finished.labels(report.outcome.value).inc()
    log.info("job finished", extra={"job": job.id, "outcome": report.outcome.value})


# prepare ------------------------------------------------------------------------------


def _prepare(rt: Runtime, rec: Recorder) -> Prepared:
    job, claim, forge = rec.lease.claim.job, rec.lease.claim, rec.forge
    issue = forge.get_issue(job.repo, job.issue_number)
    branch = job.branch or gitops.branch_name(
        rt.policy.publish.branch_prefix, job.issue_number, issue.title)
    rt.store.update_job(job.id, branch=branch)
    data = rt.settings.data_dir.resolve()
    attempt_root = data / "work" / f"job-{job.id}" / f"attempt-{claim.attempt_number}"
    if attempt_root.exists():
        shutil.rmtree(attempt_root)
    attempt_root.mkdir(parents=True)
    key = f"{job.forge}/{job.repo}"
    request = rt.store.last_request(job.id)  # what a /retry or /revise asked for
    with rt.repo_lock(key):
        mirror = gitops.ensure_mirror(data / "mirrors", key, forge.clone_url(job.repo),
                                      forge.git_auth(job.repo))
        # /revise continues the bot's branch; a first attempt or /retry starts afresh.
        start = job.default_branch
        if request.get("mode") == "revise" and _has_branch(mirror, branch):
            start = branch
        base_sha = gitops.add_worktree(mirror, attempt_root / "agent", start)
    rec.event("prepared", branch=branch, base=base_sha, start=start,
              mode=request.get("mode", "first"))
    prepared = Prepared(forge, issue, branch, mirror, attempt_root / "agent", base_sha,
                        attempt_root, feedback=_feedback(request))
    try:
        _set_up_repository(rt, rec, prepared)
    except BaseException:
        _cleanup(rt, prepared)
        raise
    return prepared


def _has_branch(mirror: Path, branch: str) -> bool:
    try:
        gitops.run(["rev-parse", "--verify", "--quiet", "--end-of-options",
                    f"refs/heads/{branch}"], cwd=mirror)
    except GitError:
        return False
    return True


def _feedback(request: dict[str, Any]) -> str:
    text = str(request.get("feedback") or "").strip()
    if not text:
        return ""
    who = str(request.get("by") or "a maintainer")
    kind = "revision feedback" if request.get("mode") == "revise" else "guidance for a retry"
    return f"\n\n{kind.capitalize()} from @{who} (also untrusted text):\n{text}"


def _set_up_repository(rt: Runtime, rec: Recorder, prepared: Prepared) -> None:
    """Read the repository's policy and toolchain, and install its dependencies once."""
    setup = read_repo_setup(prepared.agent_dir, rt.policy, rt.settings.sandbox.images)
    prepared.setup, prepared.image = setup, setup.toolchain.image
    rec.event("toolchain", name=setup.toolchain.name, image=setup.toolchain.image,
              ignored=[str(i) for i in setup.ignored])
    if not setup.toolchain.setup:
        return
    if not isinstance(rt.sandbox, SetupSnapshots):
        raise JobStopped(Outcome.SETUP_FAILED, "This sandbox backend cannot run a setup phase; "
                         "pre-install the dependencies in the runner image and set `setup: ''` "
                         "in `.forgebot.yml`.")
    limits = replace(_limits(rt, setup.policy), timeout_s=setup.policy.limits.setup_timeout_s)
    result = rt.sandbox.snapshot_setup(
        setup.toolchain.image, tar_directory(prepared.agent_dir), list(setup.toolchain.setup),
        limits, _labels(rec, "setup"), network=setup.policy.sandbox.setup_network)
    rec.event("setup.ran", exit_code=result.result.exit_code, killed_by=result.result.killed_by)
    if result.image is None:
        raise JobStopped(Outcome.SETUP_FAILED, _setup_failure(result.result))
    prepared.image = prepared.snapshot = result.image


def _setup_failure(result: Result) -> str:
    # The output is the repository's own tool talking, shown to its maintainers; fenced with
    # more backticks than it contains, so it cannot break out into Markdown.
    tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-20:])
    fence = "`" * max(3, 1 + max((len(run) for run in re.findall("`+", tail)), default=0))
    why = "timed out" if result.timed_out else f"exited with {result.exit_code}"
    return f"The setup command {why}. Its last lines:\n\n{fence}text\n{tail}\n{fence}"


def _cleanup(rt: Runtime, prepared: Prepared) -> None:
    if prepared.snapshot is not None and isinstance(rt.sandbox, SetupSnapshots):
        rt.sandbox.remove_snapshot(prepared.snapshot)
        prepared.snapshot = None
    for sub in ("agent", "trusted"):
        try:
            gitops.remove_worktree(prepared.mirror, prepared.attempt_root / sub)
        except GitError:
            log.warning("could not remove a worktree", extra={"path": sub})
    shutil.rmtree(prepared.attempt_root, ignore_errors=True)


# implement ----------------------------------------------------------------------------


def _limits(rt: Runtime, policy: Policy) -> Limits:
    s = rt.settings.sandbox
    return Limits(memory_mb=s.memory_mb, cpus=s.cpus, pids=s.pids, workspace_mb=s.workspace_mb,
                  timeout_s=policy.limits.test_timeout_s)


def _labels(rec: Recorder, phase: str) -> dict[str, str]:
    return {"forgebot.job": str(rec.job_id), "forgebot.attempt": str(rec.lease.claim.attempt_id),
            "forgebot.phase": phase, OWNER_LABEL: rec.lease.owner}


def _provider(rt: Runtime) -> Any:
    llm = rt.settings.llm
    return make_provider(llm.provider, transcript=llm.transcript, model_path=llm.model_path,
                         context_window=llm.context_window, base_url=llm.base_url,
                         model=llm.model, api_key=llm.api_key)


def _max_iterations(rt: Runtime, policy: Policy | None = None) -> int:
    return min(rt.settings.agent.max_iterations, (policy or rt.policy).limits.max_iterations)


def _implement(rt: Runtime, rec: Recorder, prepared: Prepared) -> AgentResult:
    settings = AgentSettings(
        max_iterations=_max_iterations(rt, prepared.policy),
        test_cmd=prepared.test_cmd,
        test_timeout_s=prepared.policy.limits.test_timeout_s,
        max_tokens=rt.settings.llm.max_tokens, temperature=rt.settings.llm.temperature,
        context_budget_chars=rt.settings.agent.context_budget_chars,
    )
    provider = _provider(rt)
    session = rt.sandbox.start(prepared.image, _limits(rt, prepared.policy),
                               _labels(rec, "agent"))
    try:
        result = run_agent(AgentTask(prepared.issue.title,
                                     prepared.issue.body + prepared.feedback),
                           prepared.agent_dir, session, provider, settings, rec.agent_event)
    finally:
        session.close()
    rec.event("agent.finished", outcome=result.outcome, iterations=result.iterations,
              files=list(result.changed_files))
    return result


# verify -------------------------------------------------------------------------------


def _verify(rt: Runtime, rec: Recorder, prepared: Prepared, agent: AgentResult) -> Verified:
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
    violations = evaluate(prepared.policy, changes)
    findings = scan_changes(changes) if prepared.policy.checks.secret_scan else []
    rec.event("gates.evaluated", violations=[v.rule for v in violations],
              findings=len(findings))
    rt.metrics.gates.labels("policy", "blocked" if violations else "passed").inc()
    rt.metrics.gates.labels("secret_scan", "blocked" if findings else "passed").inc()
    tests = None
    if not violations and not findings:
        session = rt.sandbox.start(prepared.image, _limits(rt, prepared.policy),
                                   _labels(rec, "verify"))
        try:
            session.put(tar_directory(trusted))
            tests = session.run(prepared.test_cmd, prepared.policy.limits.test_timeout_s)
        finally:
            session.close()
        counts = tests.junit
        passed = tests.exit_code == 0 and not tests.timed_out
        rt.metrics.sandboxes.labels(
            "verify", "timeout" if tests.timed_out else "passed" if passed else "failed").inc()
        rec.event("tests.ran", exit_code=tests.exit_code, timed_out=tests.timed_out,
                  passed=counts.passed if counts else None,
                  failed=counts.failed if counts else None)
    return Verified(trusted_diff, changes, violations, findings, tests, trusted)


# publish ------------------------------------------------------------------------------


def _gate_lines(v: Verified) -> list[str]:
    lines = [f"{x.rule}: {x.path}{f':{x.line}' if x.line else ''}: {x.message}"
             for x in v.violations] or ["policy: ok"]
    lines += [f"secret scan: {f.path}:{f.line}: {f.kind} (value not shown)"
              for f in v.findings] or ["secret scan: ok"]
    return lines


def _publish(rt: Runtime, rec: Recorder, prepared: Prepared, agent: AgentResult,
             v: Verified) -> Report:
    job = rec.lease.claim.job
    base = Report(
        job_id=job.id, attempt=rec.lease.claim.attempt_number, issue_number=job.issue_number,
        issue_title=prepared.issue.title, outcome=Outcome.NO_CHANGES,
        files=_file_changes(v.changes), iterations=agent.iterations, gate_lines=_gate_lines(v),
        tests=v.tests.junit if v.tests else None,
        test_exit=v.tests.exit_code if v.tests else None,
    )
    if v.findings:
        return replace(base, outcome=Outcome.SECRET_FOUND)
    if v.violations:
        return replace(base, outcome=Outcome.POLICY_BLOCKED)
    if not v.diff or v.tests is None:
        notes = "; ".join(agent.notes[-3:])
        return replace(base, detail=f"The model's replies gave no change that applies. {notes}")
    passed = v.tests.exit_code == 0 and not v.tests.timed_out
    # With checks.tests_must_pass off, failing tests are reported but do not make a draft.
    draft = not passed and prepared.policy.checks.tests_must_pass
    if draft and not prepared.policy.publish.draft_when_failed:
        return replace(base, outcome=Outcome.TESTS_FAILED,
                       detail="The tests fail and the policy does not publish drafts.")
    report = replace(base, outcome=Outcome.SUBMITTED if passed else Outcome.TESTS_FAILED)
    sha = gitops.commit(v.trusted_dir, f"{pull_title(report)}\n\nforgebot job {job.id}",
                        gitops.Identity(rt.settings.git.author_name, rt.settings.git.author_email))
    _push(rt, rec, prepared, v.trusted_dir, sha)
    pull = prepared.forge.find_pull(job.repo, prepared.branch)
    if pull is None:
        pull = prepared.forge.open_pull(job.repo, NewPull(
            head=prepared.branch, base=job.default_branch, title=pull_title(report),
            body=pull_body(report), draft=draft))
    else:
        pull = prepared.forge.update_pull(job.repo, pull.number, body=pull_body(report),
                                          draft=draft)
    rt.store.update_job(job.id, pull_number=pull.number)
    prepared.forge.set_status(job.repo, sha, "success" if passed else "failure",
                              f"forgebot job {job.id}: {report.outcome.value}")
    rec.event("pull.published", number=pull.number, sha=sha, draft=draft, url=pull.url)
    return replace(report, pull_url=pull.url)


def _push(rt: Runtime, rec: Recorder, prepared: Prepared, worktree: Path, sha: str) -> None:
    """Force-push only our own branch, and only if nobody else pushed to it since we did."""
    job = rec.lease.claim.job
    url, env = prepared.forge.clone_url(job.repo), prepared.forge.git_auth(job.repo)
    remote = gitops.remote_branch_sha(url, prepared.branch, env)
    ours = {e["data"].get("sha") for e in rt.store.events(job.id) if e["kind"] == "push.intent"}
    if remote is not None and remote not in ours:
        raise ForgeError(f"branch {prepared.branch} has commits the bot did not push; "
                         "not overwriting them")
    # Record the intent first: a crash after the push still lets the next attempt see that
    # the remote commit is ours.
    rec.event("push.intent", sha=sha, branch=prepared.branch)
    gitops.push_branch(worktree, url, prepared.branch, env, remote,
                       prefix=prepared.policy.publish.branch_prefix)
    rec.event("push.done", sha=sha)


def _file_changes(changes: ChangeSet | None) -> list[FileChange]:
    if changes is None:
        return []
    return [FileChange(f.path, len(f.added), f.removed_count) for f in changes.files]
