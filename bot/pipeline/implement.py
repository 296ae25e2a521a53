"""The implement stage: the agent edits a scratch worktree and runs the tests in a sandbox.

The repository's instruction files are read here, from the default branch of the mirror, and
the models of the attempt are built here (one router per attempt, so an embedded model and
its KV cache serve every iteration).
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

from bot import gitops
from bot.agent.instructions import InstructionFile
from bot.agent.loop import AgentResult, AgentSettings, AgentTask, run_agent
from bot.agent.models import ModelRouter
from bot.config import Role, Settings, Switch
from bot.errors import GitError
from bot.hidden_text import clean, describe
from bot.pipeline import approval
from bot.pipeline.attempt import (
    Prepared,
    Recorder,
    Runtime,
    max_iterations_for,
)
from bot.pipeline.install import DependencyAwareSession
from bot.pipeline.instructions import read_instructions
from bot.pipeline.outcomes import JobStopped, Outcome

RECENT_COMMITS = 10


def implement(rt: Runtime, rec: Recorder, prepared: Prepared) -> AgentResult:
    job = rec.lease.claim.job
    models = ModelRouter(rt.settings.llm)
    instructions = read_instructions(prepared.mirror, job.default_branch)
    settings = agent_settings(rt.settings, models, max_iterations_for(rt, prepared.policy),
                              prepared.test_cmd, prepared.policy.limits.test_timeout_s,
                              wall_clock_s=max(1.0, rec.deadline - time.monotonic()),
                              cache_dir=rt.settings.data_dir.resolve() / "index" / job.forge
                              / job.repo.replace("/", "__"))
    task = _visible_task(rec, prepared, instructions)
    observer = _Observer(rec)
    try:
        # A large change waits here for /approve (JobStopped) before anything is edited.
        task = replace(task, plan=approval.gate(rec, prepared, task, models,
                                                settings=settings, observer=observer,
                                                bot_user=rt.settings.bot_user))
        session = DependencyAwareSession(rt, rec, prepared)
        try:
            result = run_agent(task, prepared.agent_dir, session, models, settings, observer)
        finally:
            session.close()
    finally:
        models.close()
    rec.event("agent.finished", outcome=result.outcome, iterations=result.iterations,
              files=list(result.changed_files), tokens=result.tokens,
              edit_format=result.edit_format, instructions=list(result.instructions_used))
    if result.outcome == "context_too_small":
        raise JobStopped(Outcome.CONTEXT_TOO_SMALL, result.notes[-1] if result.notes else
                         "The model's context window cannot hold the minimum prompt.")
    return result


def _visible_task(rec: Recorder, prepared: Prepared,
                  instructions: tuple[InstructionFile, ...]) -> AgentTask:
    """The task as a person reads it: hidden content (HTML comments, link-definition
    comments, invisible and bidi characters) removed from the issue, the feedback and the
    instruction files, and counted (never quoted) in the events and the comments."""
    title, body = clean(prepared.issue.title), clean(prepared.issue.body + prepared.feedback)
    removed = title.removed + body.removed
    visible = []
    for item in instructions:
        cleaned = clean(item.text)
        removed += cleaned.removed
        visible.append(replace(item, text=cleaned.text))
    if removed:
        rec.event("prompt.hygiene", removed=dict(removed))
        prepared.notes.append("Hidden content was removed from the task before the model saw "
                              f"it: {describe(removed)}.")
    return AgentTask(title.text, body.text, instructions=tuple(visible),
                     recent_files=_recent_files(prepared))


def agent_settings(settings: Settings, models: ModelRouter, max_iterations: int,
                   test_cmd: list[str], test_timeout_s: int, *,
                   wall_clock_s: float, cache_dir: Path | None) -> AgentSettings:
    """The agent's limits from the configuration and the job's policy."""
    agent = settings.agent
    return AgentSettings(
        max_iterations=max_iterations, test_cmd=test_cmd, test_timeout_s=test_timeout_s,
        max_tokens=settings.llm.max_tokens, temperature=settings.llm.temperature,
        context_tokens=agent.context_tokens, max_total_tokens=agent.max_total_tokens,
        wall_clock_s=wall_clock_s, format_retries=agent.format_retries,
        plan=_switch(agent.plan, models, "planner"),
        review=_switch(agent.review, models, "reviewer"),
        edit_format=agent.edit_format, format_overrides=dict(agent.edit_formats),
        retrieval=agent.retrieval, cache_dir=cache_dir,
    )


class _Observer:
    """The agent's events go to the job's events (and metrics, and the deadline check);
    its transcript, redacted, to the store."""

    def __init__(self, rec: Recorder) -> None:
        self.rec = rec

    def event(self, kind: str, data: dict[str, object]) -> None:
        self.rec.agent_event(kind, data)

    def transcript(self, kind: str, content: str, meta: dict[str, object]) -> None:
        self.rec.transcript(kind, content, meta)


def _switch(value: Switch, models: ModelRouter, role: Role) -> bool:
    """``auto`` turns a pass on when its role has a model of its own: asking the coder's
    own model to plan or review its work adds little but time."""
    if value != "auto":
        return value == "on"
    return models.model_for_role(role) != models.model_for_role("coder")


def _recent_files(prepared: Prepared) -> tuple[str, ...]:
    try:
        out = gitops.run(["log", f"-n{RECENT_COMMITS}", "--name-only", "--format=",
                          prepared.base_sha], cwd=prepared.agent_dir)
    except GitError:
        return ()
    return tuple(dict.fromkeys(line for line in out.splitlines() if line))
