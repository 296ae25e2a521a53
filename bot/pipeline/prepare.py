"""The prepare stage: the mirror, the attempt's worktree, the repository's policy and
toolchain, and its dependencies: from a kept snapshot, or installed once into a new one."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

from bot import gitops
from bot.errors import GitError
from bot.forges.base import Forge, Issue
from bot.pipeline.attempt import (
    Prepared,
    Recorder,
    Runtime,
)
from bot.pipeline.install import install_dependencies, plain
from bot.pipeline.outcomes import JobStopped, Outcome
from bot.pipeline.repo_setup import read_repo_setup
from bot.sandbox.base import SetupSnapshots
from bot.store import JobView

log = logging.getLogger(__name__)


def prepare(rt: Runtime, rec: Recorder) -> Prepared:
    job, claim, forge = rec.lease.claim.job, rec.lease.claim, rec.forge
    issue = task_of(job, forge)
    branch = job.branch or job_branch(rt.policy.publish.branch_prefix, job, issue.title)
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
        cleanup(rt, prepared)
        raise
    return prepared


def job_branch(prefix: str, job: JobView, title: str) -> str:
    """The bot's branch for a job: ``<prefix><issue>-<slug>`` for an issue, and
    ``<prefix><kind>-<job id>-<slug>`` for a spec or API task (the tasks API names its
    branches so too; this is the same name should a worker claim the job first)."""
    if job.kind == "issue":
        return gitops.branch_name(prefix, job.issue_number, title)
    return gitops.branch_name(f"{prefix}{job.kind}-", job.id, title)


def task_of(job: JobView, forge: Forge) -> Issue:
    """What the job is asked to do: its issue as it is now on the forge, or the text a spec
    push or the tasks API stored with the job."""
    if job.kind == "issue":
        return forge.get_issue(job.repo, job.issue_number)
    return Issue(number=job.issue_number, title=job.title, body=job.task_text, labels=(),
                 author=job.requested_by)


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
    kind = _FEEDBACK_KIND.get(str(request.get("mode")), "guidance for a retry")
    return f"\n\n{kind.capitalize()} from @{who} (also untrusted text):\n{text}"


_FEEDBACK_KIND = {"revise": "revision feedback", "approve": "feedback on the approved plan"}


def _set_up_repository(rt: Runtime, rec: Recorder, prepared: Prepared) -> None:
    """Read the repository's policy and toolchain, and install its dependencies: from a kept
    snapshot when one fits, else through the egress proxy (``bot.pipeline.dependencies``)."""
    setup = read_repo_setup(prepared.agent_dir, rt.policy, rt.settings.sandbox.images)
    prepared.setup, prepared.image = setup, setup.toolchain.image
    toolchain = setup.toolchain
    rec.event("toolchain", name=toolchain.name, image=toolchain.image,
              ignored=[str(i) for i in setup.ignored], reasons=list(toolchain.reasons))
    prepared.setup_lines.append(plain(f"setup: {toolchain.name}; " + "; ".join(toolchain.reasons)))
    if not toolchain.setup:
        return
    if not isinstance(rt.sandbox, SetupSnapshots):
        raise JobStopped(Outcome.SETUP_FAILED, "This sandbox backend cannot run a setup phase; "
                         "pre-install the dependencies in the runner image and set `setup: ''` "
                         "in `.forgebot.yml`.")
    installed = install_dependencies(rt, rec, toolchain, manifests=setup.manifests,
                                     tree=prepared.agent_dir, policy=setup.policy)
    prepared.setup_lines += installed.lines
    if installed.image is None:
        raise JobStopped(Outcome.SETUP_FAILED, installed.failure)
    prepared.image = installed.image  # kept for later jobs: not removed with this one


def cleanup(rt: Runtime, prepared: Prepared) -> None:
    for sub in ("agent", "trusted", "base"):
        try:
            gitops.remove_worktree(prepared.mirror, prepared.attempt_root / sub)
        except GitError:
            log.warning("could not remove a worktree", extra={"path": sub})
    shutil.rmtree(prepared.attempt_root, ignore_errors=True)
