"""The agent loop: plan, edit, check the syntax, run the tests in the sandbox, feed the
failures back, and let a reviewer send the result back once.

Every run ends in a named outcome: ``submitted`` (the tests pass with the changes applied),
``tests_failed`` (changes exist but the tests still fail when the iterations run out),
``no_changes`` (the model never produced an applied change), ``budget_exceeded`` (the run's
tokens or wall-clock ran out first), ``context_too_small`` (the model's context window
cannot hold even the minimum prompt) or ``model_repeats`` (the model gave a reply it had
already given, word for word or edit for edit, ``MAX_REPEATS`` times: at a low temperature an
unchanged prompt gets an unchanged reply, so after the first repeat the next request is
sampled at ``REPEAT_TEMPERATURE`` and told so, and after the last the run stops rather than
spend the budget on copies). A ModelError or SandboxError propagates to the caller,
which owns the remaining outcomes. No model decides whether the job succeeded: the tests do,
and the pipeline proves them again on the trusted side.

The model is an untrusted author: its edits go through the edit format's parser (paths
validated) and the Workspace (no links, nothing outside the worktree, all or nothing).
Events carry counts and codes only, never issue or model text, because they end up in logs;
the text goes to the transcript, which the caller redacts and stores.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

from bot.agent import prompts
from bot.agent.codeindex import language_of, syntax_errors
from bot.agent.editformats import EditFormat, get_format, profile_for
from bot.agent.instructions import InstructionFile, is_instruction_path, relevant, render
from bot.agent.llm import Completion, ContextLengthExceeded, Message, Provider
from bot.agent.sources import Retrieval, Sources, collect
from bot.agent.window import ContextTooSmall, fit_task
from bot.agent.workspace import Workspace
from bot.errors import EditFormatError, ModelError
from bot.sandbox.base import Result, Session
from bot.sandbox.tarball import tar_directory

AgentOutcome = Literal[
    "submitted", "no_changes", "tests_failed", "budget_exceeded", "context_too_small",
    "model_repeats",
]

# The last exchanges kept in the prompt: older replies refer to file content that has since
# changed, and a small model's context window cannot hold them anyway.
HISTORY_MESSAGES = 4
MAX_NOTE_CHARS = 500
PLAN_TOKENS = 300
REVIEW_TOKENS = 200
MAX_SYNTAX_PROBLEMS = 5
RELEVANT_FOLDERS = 8  # top-ranked files whose folders' AGENTS.md apply before any edit
MAX_REPEATS = 2  # replies that repeat an earlier one before the run stops
REPEAT_TEMPERATURE = 0.7  # what the requests after a repeat are sampled at, at least


class Observer(Protocol):
    """Where a run reports: events (counts and codes, logged) and the transcript (text,
    redacted and stored by the caller)."""

    def event(self, kind: str, data: dict[str, object]) -> None: ...

    def transcript(self, kind: str, content: str, meta: dict[str, object]) -> None: ...


class Models(Protocol):
    """The providers of one attempt (``bot.agent.models.ModelRouter``)."""

    def for_role(self, role: Literal["planner", "coder", "reviewer"]) -> Provider: ...

    def escalate(self, consecutive_failures: int) -> Provider: ...


@dataclass(frozen=True)
class AgentTask:
    """What to implement. ``title`` and ``body`` are a person's words (the issue, a spec's
    diff, review feedback): untrusted. ``instructions`` come from the repository's default
    branch; ``recent_files`` were changed by its latest commits."""

    title: str
    body: str
    instructions: tuple[InstructionFile, ...] = ()
    recent_files: tuple[str, ...] = ()
    plan: str = ""  # a plan a person approved: followed instead of asking the planner


@dataclass(frozen=True)
class AgentSettings:
    """Limits and parameters of one agent run."""

    max_iterations: int = 4
    test_cmd: list[str] = field(default_factory=lambda: ["python", "-m", "pytest", "-q"])
    test_timeout_s: int = 300
    max_tokens: int = 1024  # per reply
    temperature: float = 0.2
    context_tokens: int = 6000  # optional context (files, map, snippets) at most per prompt
    max_total_tokens: int = 400_000  # prompt and completion tokens over the whole run
    wall_clock_s: float = 1800.0
    format_retries: int = 2  # replies sent back for a format or syntax error, per iteration
    plan: bool = False
    review: bool = False
    edit_format: str | None = None  # None: the model's profile picks
    format_overrides: Mapping[str, str] = field(default_factory=dict)
    cache_dir: Path | None = None  # per-repository index and retrieval caches
    retrieval: Retrieval = "off"


@dataclass(frozen=True)
class AgentResult:
    """How a run ended. ``notes`` may quote model output: show it, do not log it."""

    outcome: AgentOutcome
    iterations: int
    last_result: Result | None
    changed_files: tuple[str, ...]
    notes: tuple[str, ...]
    instructions_used: tuple[str, ...] = ()
    tokens: int = 0
    edit_format: str = ""


class _OutOfBudget(Exception):
    """The run's token or wall-clock budget is spent."""


@dataclass
class _Run:
    """One run: its collaborators and its mutable state, kept out of the loop body."""

    task: AgentTask
    ws: Workspace
    session: Session | None  # None only while drafting a plan (nothing runs then)
    models: Models
    settings: AgentSettings
    observer: Observer
    sources: Sources
    deadline: float
    fmt: EditFormat | None = None
    plan: str = ""
    instructions_used: tuple[str, ...] = ()
    history: list[Message] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    last_result: Result | None = None
    tokens: int = 0
    calls: int = 0
    failures: int = 0  # consecutive failed iterations, for the escalation ladder
    reviewed: bool = False
    replies_seen: set[str] = field(default_factory=set)  # earlier replies, whitespace-normalised
    edits_seen: set[tuple[object, ...]] = field(default_factory=set)  # earlier edit sets
    repeats: int = 0
    _last_note: str = ""
    _note_count: int = 0  # how many times in a row the last note was made

    def emit(self, kind: str, **data: object) -> None:
        self.observer.event(kind, data)

    def note(self, text: str) -> None:
        """Keep ``text`` for the report; the same note again right after is counted, not
        repeated ("iteration 2: the reply held no edits (3 times)")."""
        text = text if len(text) <= MAX_NOTE_CHARS else text[:MAX_NOTE_CHARS - 3] + "..."
        if self.notes and self._last_note == text:
            self._note_count += 1
            self.notes[-1] = f"{text} ({self._note_count} times)"
            return
        self._last_note, self._note_count = text, 1
        self.notes.append(text)

    def finish(self, outcome: AgentOutcome, iterations: int) -> AgentResult:
        result = AgentResult(outcome, iterations, self.last_result, self.ws.changed_files(),
                             tuple(self.notes), self.instructions_used, self.tokens,
                             self.fmt.name if self.fmt else "")
        self.emit("agent.done", outcome=outcome, iterations=iterations,
                  changed=len(result.changed_files), tokens=self.tokens, calls=self.calls)
        return result


def run_agent(  # noqa: PLR0917 - the agreed seam; the pipeline calls it positionally
    task: AgentTask,
    workdir: Path,
    session: Session,
    models: Models,
    settings: AgentSettings,
    observer: Observer,
) -> AgentResult:
    """Drive the models to change the repository in ``workdir`` until ``settings.test_cmd``
    passes in ``session``, for at most ``settings.max_iterations`` test runs.

    Writes the model's edits into ``workdir`` (a scratch worktree: the trusted side
    re-applies the final patch elsewhere) and sends the whole tree to the session before
    each test run. Raises ModelError and SandboxError.
    """
    started = time.monotonic()
    root = workdir.resolve()
    sources = collect(root, f"{task.title}\n{task.body}", cache_dir=settings.cache_dir,
                      retrieval=settings.retrieval, recent_files=task.recent_files)
    observer.event("agent.context", dict(sources.stats))
    run = _Run(task, Workspace(root), session, models, settings, observer, sources,
               deadline=started + settings.wall_clock_s)
    iteration = 0
    try:
        if task.plan:
            run.plan = task.plan
        elif settings.plan:
            run.plan = _plan(run)
        for iteration in range(1, settings.max_iterations + 1):
            outcome = _iterate(run, iteration, models.escalate(run.failures))
            if outcome is not None:
                return run.finish(outcome, iteration)
    except ContextTooSmall as exc:
        run.note(str(exc))
        return run.finish("context_too_small", iteration)
    except _OutOfBudget as exc:
        run.note(str(exc))
        return run.finish("budget_exceeded", iteration)
    return run.finish("tests_failed" if run.ws.changed_files() else "no_changes", iteration)


def draft_plan(task: AgentTask, workdir: Path, models: Models, settings: AgentSettings,
               observer: Observer) -> str:
    """Only the planner's plan for ``task`` (no edit, no sandbox): what a person approves
    before a large change is made. The reply is untrusted text, cut to 2,000 characters.
    Raises ModelError, and ContextTooSmall when even the minimum prompt does not fit."""
    root = workdir.resolve()
    sources = collect(root, f"{task.title}\n{task.body}", cache_dir=settings.cache_dir,
                      retrieval=settings.retrieval, recent_files=task.recent_files)
    run = _Run(task, Workspace(root), None, models, settings, observer, sources,
               deadline=time.monotonic() + settings.wall_clock_s)
    try:
        return _plan(run)
    except _OutOfBudget as exc:
        raise ModelError(f"no plan: {exc}") from exc


def _iterate(run: _Run, i: int, provider: Provider) -> AgentOutcome | None:
    """One iteration: replies until one applies (at most ``format_retries`` sent back), then
    a test run. An outcome when the run is over, None to go on."""
    run.fmt = _format_for(run, provider)
    applied = False
    for _ in range(run.settings.format_retries + 1):
        completion = _call(run, "coder", provider, _coder_messages(run, provider), i=i)
        run.history.append(Message("assistant", completion.text))
        if _repeated(run, i, completion.text):
            if run.repeats >= MAX_REPEATS:
                return "model_repeats"
            continue
        verdict = _apply_reply(run, i, completion.text)
        if verdict == "prose":  # the model has nothing (more) to change
            return "tests_failed" if run.ws.changed_files() else "no_changes"
        if verdict == "applied":
            applied = True
            break
    if not applied:
        run.failures += 1
        return None
    if run.session is None:
        raise RuntimeError("an agent run without a sandbox session cannot run tests")
    run.session.put(tar_directory(run.ws.root))
    result = run.session.run(list(run.settings.test_cmd), run.settings.test_timeout_s)
    run.last_result = result
    run.observer.transcript("tool", _describe_run(result),
                            {"i": i, "exit_code": result.exit_code,
                             "timed_out": result.timed_out})
    run.emit("agent.tests", i=i, exit_code=result.exit_code, timed_out=result.timed_out)
    if result.exit_code == 0 and not result.timed_out:
        run.failures = 0
        if run.settings.review and not run.reviewed and i < run.settings.max_iterations:
            run.reviewed = True
            objection = _review(run)
            if objection:
                run.history.append(Message("user", prompts.review_message(objection)))
                return None
        return "submitted"
    run.failures += 1
    run.history.append(Message("user", prompts.failing_tests_message(result)))
    return None


def _repeated(run: _Run, i: int, text: str) -> bool:
    """Whether ``text`` repeats an earlier reply, word for word or edit for edit. A repeat is
    not applied again: it is counted, and the model is told and sampled warmer next time."""
    normalised = " ".join(text.split())
    assert run.fmt is not None
    try:
        edits: tuple[object, ...] = tuple(run.fmt.parse(text))
    except EditFormatError:
        edits = ()
    if normalised not in run.replies_seen and (not edits or edits not in run.edits_seen):
        run.replies_seen.add(normalised)
        if edits:
            run.edits_seen.add(edits)
        return False
    run.repeats += 1
    run.emit("agent.repeat", i=i, repeats=run.repeats)
    run.note(f"iteration {i}: the model repeated an earlier reply")
    run.history.append(Message("user", prompts.repeated_reply_message()))
    return True


def _apply_reply(run: _Run, i: int, text: str) -> Literal["applied", "retry", "prose"]:
    """Parse, apply and syntax-check one reply; on a problem, tell the model and say retry."""
    assert run.fmt is not None
    try:
        edits = run.fmt.parse(text)
        if not edits:
            _emit_iteration(run, i, edits=0, changed=0, error="no_edits")
            run.note(f"iteration {i}: the reply held no edits")
            # Code in a fence is an edit in the wrong format (small models do this): remind
            # them. Prose alone means the model sees nothing (more) to do.
            if "```" not in text:
                return "prose"
            run.history.append(Message("user", prompts.no_edits_message(
                run.fmt.instructions(_example_path(run)))))
            return "retry"
        before = run.ws.apply(edits)
    except EditFormatError as exc:
        _emit_iteration(run, i, edits=0, changed=0, error="edit_format")
        run.note(f"iteration {i}: edits not applied: {exc}")
        run.history.append(Message("user", prompts.edit_error_message(str(exc))))
        return "retry"
    if not before:
        _emit_iteration(run, i, edits=len(edits), changed=0, error="no_change")
        run.history.append(Message("user", prompts.no_change_message()))
        return "retry"
    problems = _syntax_problems(run, before)
    if problems:
        run.ws.restore(before)
        _emit_iteration(run, i, edits=len(edits), changed=0, error="syntax")
        run.note(f"iteration {i}: edits undone, the files no longer parse")
        run.history.append(Message("user", prompts.edit_error_message(
            "the edited files no longer parse, so nothing was run:\n" + "\n".join(problems))))
        return "retry"
    _emit_iteration(run, i, edits=len(edits), changed=len(before), error=None)
    return "applied"


def _syntax_problems(run: _Run, before: Mapping[str, str | None]) -> list[str]:
    """Syntax errors the reply introduced (a file that did not parse before is not blamed)."""
    problems: list[str] = []
    for path, old in before.items():
        if language_of(path) is None:
            continue
        new = run.ws.read(path)
        if new is None or (old is not None and syntax_errors(path, old)):
            continue
        problems += [f"{path}:{p.line}:{p.column}: {p.message}" for p in syntax_errors(path, new)]
    return problems[:MAX_SYNTAX_PROBLEMS]


def _emit_iteration(run: _Run, i: int, *, edits: int, changed: int, error: str | None) -> None:
    run.emit("agent.iteration", i=i, edits=edits, changed=changed, error=error)


# --- prompts and calls ------------------------------------------------------------------


def _format_for(run: _Run, provider: Provider) -> EditFormat:
    name = run.settings.edit_format or profile_for(
        _model_name(provider), run.settings.format_overrides).edit_format
    return get_format(name)


def _model_name(provider: Provider) -> str:
    return str(getattr(provider, "model_name", "") or provider.name)


def _example_path(run: _Run) -> str:
    return next((p for p in run.sources.ranked if language_of(p)), "src/app.py")


def _coder_messages(run: _Run, provider: Provider) -> list[Message]:
    """System prompt, the task with the *current* file content fitted to the model's window,
    and the latest exchanges."""
    assert run.fmt is not None
    # The folders in play: those of the files edited so far and of the most relevant ones.
    in_play = [p for p in [*run.ws.changed_files(), *run.sources.ranked[:RELEVANT_FOLDERS]]
               if not is_instruction_path(p)]
    selected = relevant(run.task.instructions, in_play)
    rendered = render(selected)
    run.instructions_used = tuple(dict.fromkeys([*run.instructions_used, *rendered.used]))
    system = prompts.system_prompt(run.fmt.instructions(_example_path(run)))
    return fit_task(
        provider, run.settings.max_tokens, run.settings.context_tokens,
        system=system,
        fixed=[
            "Implement the change described by this issue.",
            prompts.issue_block(run.task.title, run.task.body),
            prompts.instructions_block(rendered.text),
            prompts.notes_block("A plan written by a planner model:", run.plan),
        ],
        sources=run.sources, workspace=run.ws,
        history=run.history[-HISTORY_MESSAGES:],
    )


def _call(run: _Run, role: str, provider: Provider, messages: list[Message], *,
          i: int, max_tokens: int | None = None) -> Completion:
    """One model call within the run's budgets, recorded in the transcript."""
    if time.monotonic() > run.deadline:
        raise _OutOfBudget(f"the agent's wall-clock budget ({run.settings.wall_clock_s:.0f} s) "
                           "is spent")
    if run.tokens >= run.settings.max_total_tokens:
        raise _OutOfBudget(f"the agent's token budget ({run.settings.max_total_tokens}) is spent")
    run.observer.transcript("prompt", _render(messages),
                            {"i": i, "role": role, "model": _model_name(provider)})
    try:
        temperature = run.settings.temperature if not run.repeats else max(
            run.settings.temperature, REPEAT_TEMPERATURE)
        completion = provider.complete(messages, max_tokens=max_tokens or run.settings.max_tokens,
                                       temperature=temperature)
    except ContextLengthExceeded as exc:
        raise ContextTooSmall(f"the model refused the prompt as too long: {exc}") from exc
    usage = completion.usage
    run.calls += 1
    run.tokens += usage.prompt_tokens + usage.completion_tokens
    meta: dict[str, object] = {
        "i": i, "role": role, "provider": provider.name, "model": _model_name(provider),
        "seconds": round(usage.seconds, 3), "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens, "cached_tokens": usage.cached_tokens,
        "tokens_per_second": round(usage.tokens_per_second, 1),
    }
    run.observer.transcript("reply", completion.text, meta)
    run.emit("agent.reply", **meta)
    return completion


def _render(messages: list[Message]) -> str:
    return "\n\n".join(f"--- {m.role} ---\n{m.content}" for m in messages)


def _plan(run: _Run) -> str:
    provider = run.models.for_role("planner")
    map_text = run.sources.repo_map(
        min(1500, run.settings.context_tokens),
        lambda text: provider.count_tokens([Message("user", text)]))
    messages = [
        Message("system", prompts.PLANNER_SYSTEM),
        Message("user", "\n\n".join(part for part in (
            prompts.issue_block(run.task.title, run.task.body),
            f"Map of the repository:\n{map_text}" if map_text else "",
            prompts.file_list(run.sources.files)) if part)),
    ]
    plan = _call(run, "planner", provider, messages, i=0, max_tokens=PLAN_TOKENS).text.strip()
    run.emit("agent.plan", chars=len(plan))
    return plan[:2000]


def _review(run: _Run) -> str | None:
    """The reviewer's objection to the final diff, or None (approved, or an answer that is
    neither APPROVE nor REVISE, which is noted and ignored: the tests already decided)."""
    provider = run.models.for_role("reviewer")
    messages = [
        Message("system", prompts.REVIEWER_SYSTEM),
        Message("user", prompts.issue_block(run.task.title, run.task.body) + "\n\n"
                + prompts.notes_block("The change:", run.ws.diff())),
    ]
    try:
        reply = _call(run, "reviewer", provider, messages, i=0, max_tokens=REVIEW_TOKENS).text
    except ContextTooSmall:
        run.note("review skipped: the diff does not fit the reviewer's context window")
        run.emit("agent.review", verdict="skipped")
        return None
    first = next((line.strip() for line in reply.splitlines() if line.strip()), "")
    upper = first.upper().lstrip("*#> ")
    if upper.startswith("APPROVE"):
        run.emit("agent.review", verdict="approve")
        return None
    if upper.startswith("REVISE"):
        reason = first.split(":", 1)[1].strip() if ":" in first else "changes were asked for"
        run.emit("agent.review", verdict="revise")
        run.note("the reviewer sent the change back once")
        return reason[:MAX_NOTE_CHARS]
    run.emit("agent.review", verdict="unreadable")
    run.note("the reviewer's answer was neither APPROVE nor REVISE; ignored")
    return None


def _describe_run(result: Result) -> str:
    counts = result.junit
    lines = [f"tests: exit code {result.exit_code}" + (" (timed out)" if result.timed_out else "")]
    if counts is not None:
        lines.append(f"{counts.passed} passed, {counts.failed} failed, {counts.errors} errors")
        lines += [f"- {f}" for f in counts.failures]
    tail = (result.stdout + result.stderr)[-4000:]
    return "\n".join([*lines, "", tail])
