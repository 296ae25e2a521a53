"""The publish stage: the trusted copy committed, pushed to the bot's branch, and the pull
request opened or updated."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from bot import gitops
from bot.agent.loop import AgentResult
from bot.errors import ForgeError
from bot.forges.base import NewPull
from bot.pipeline import ci_repair
from bot.pipeline.attempt import Prepared, Recorder, Runtime
from bot.pipeline.outcomes import JobStopped, Outcome
from bot.pipeline.planner import BRANCH_TAKEN_OVER
from bot.pipeline.report import FileChange, Report, pull_body, pull_title
from bot.pipeline.traceability import spec_report
from bot.pipeline.verify import Verified
from bot.policy.changeset import ChangeSet
from bot.sandbox.base import Result, TestCounts
from bot.sandbox.runner_output import counts_from_output


def _gate_lines(v: Verified) -> list[str]:
    lines = [f"{x.rule}: {x.path}{f':{x.line}' if x.line else ''}: {x.message}"
             for x in v.violations] or ["policy: ok"]
    lines += [f"secret scan: {f.path}:{f.line}: {f.kind} (value not shown)"
              for f in v.findings] or ["secret scan: ok"]
    return lines


def _counts(tests: Result | None) -> tuple[TestCounts | None, str, str | None]:
    """The report's test counts, the runner that gave them when they come from its summary
    (no JUnit report), and why there is no report."""
    if tests is None or tests.junit is not None:
        return (tests.junit if tests else None), "", None
    found = counts_from_output(tests.stdout, tests.stderr)
    return (found.counts if found else None), (found.runner if found else ""), \
        tests.junit_missing


def publish(rt: Runtime, rec: Recorder, prepared: Prepared, agent: AgentResult,
            v: Verified) -> Report:
    job = rec.lease.claim.job
    counts, counted_by, junit_missing = _counts(v.tests)
    base = Report(
        job_id=job.id, attempt=rec.lease.claim.attempt_number, issue_number=job.issue_number,
        issue_title=prepared.issue.title, outcome=Outcome.NO_CHANGES,
        files=_file_changes(v.changes), iterations=agent.iterations, gate_lines=_gate_lines(v),
        instructions=agent.instructions_used, setup_lines=tuple(prepared.setup_lines),
        dependency_lines=v.dependencies.lines, notes=tuple(prepared.notes),
        tests=counts, test_exit=v.tests.exit_code if v.tests else None,
        counted_by=counted_by, junit_missing=junit_missing, ran_before=v.ran_before,
    )
    if v.findings:
        return replace(base, outcome=Outcome.SECRET_FOUND)
    if v.violations:
        return replace(base, outcome=Outcome.POLICY_BLOCKED)
    if not v.diff or v.tests is None:
        notes = "; ".join(agent.notes[-3:])
        if agent.outcome == "model_repeats":
            # /retry would ask the same model the same thing: say what would change it.
            return replace(base, outcome=Outcome.MODEL_REPEATS, detail=(
                f"The model gave the same reply again, also when asked for a different one. "
                f"{notes}. Comment `/revise <what to do differently>` with more detail, or "
                "configure a larger model for the coder role."))
        return replace(base, detail=f"The model's replies gave no change that applies. {notes}")
    passed = v.tests.exit_code == 0 and not v.tests.timed_out
    checks = prepared.policy.checks
    proven = v.evidence is not None and v.evidence.holds
    untested = v.trace.untested if v.trace is not None else ()  # a spec job's failed check
    outcome = (Outcome.TESTS_FAILED if not passed
               else Outcome.UNPROVEN if untested or (not proven and checks.require_failing_test)
               else Outcome.SUBMITTED)
    # With checks.tests_must_pass off, failing tests are reported but do not make a draft.
    failed = (outcome is Outcome.TESTS_FAILED and checks.tests_must_pass) or (
        outcome is Outcome.UNPROVEN)
    # checks.new_dependencies: draft: a person decides on new dependencies, whatever the tests.
    dependency_draft = v.dependencies.changed and checks.new_dependencies == "draft"
    draft = failed or dependency_draft
    if rt.store.has_record(job.id, BRANCH_TAKEN_OVER):
        raise JobStopped(Outcome.TAKEN_OVER, f"Someone else has pushed to `{prepared.branch}`, "
                         "so forgebot no longer updates it. The change of this attempt was "
                         "not pushed; the branch is yours.")
    report = replace(base, outcome=outcome,
                     evidence=tuple(v.evidence.lines()) if v.evidence else (),
                     dependency_draft=dependency_draft)
    if failed and not prepared.policy.publish.draft_when_failed:
        return replace(report, detail="A check failed and the policy does not publish drafts.")
    if v.trace is not None:
        report = replace(report, **spec_report(v.trace, v.trusted_dir,
                                                submitted=outcome is Outcome.SUBMITTED))
    sha = gitops.commit(v.trusted_dir, f"{pull_title(report)}\n\nforgebot job {job.id}",
                        gitops.Identity(rt.settings.git.author_name, rt.settings.git.author_email))
    _push(rt, rec, prepared, v.trusted_dir, sha)
    # ci.ready_when_green: a pull request that would be ready waits as a draft for the
    # forge's checks; bot.pipeline.ci_repair marks it ready when they pass.
    waiting = prepared.policy.ci.ready_when_green and not draft
    body = pull_body(report) + (ci_repair.WAITING_NOTE if waiting else "")
    pull = prepared.forge.find_pull(job.repo, prepared.branch)
    if pull is None:
        pull = prepared.forge.open_pull(job.repo, NewPull(
            head=prepared.branch, base=job.default_branch, title=pull_title(report),
            body=body, draft=draft or waiting))
    else:
        pull = prepared.forge.update_pull(job.repo, pull.number, body=body,
                                          draft=draft or waiting)
    rt.store.update_job(job.id, pull_number=pull.number)
    prepared.forge.set_status(job.repo, sha, "failure" if failed else "success",
                              f"forgebot job {job.id}: {report.outcome.value}")
    rec.event("pull.published", number=pull.number, sha=sha, draft=draft, url=pull.url,
              waiting_for_ci=waiting, ci=prepared.policy.ci.model_dump())
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
