"""The agent loop: ask the model for edits, apply them, run the tests in the sandbox, repeat.

One run ends in a named outcome: ``submitted`` (the tests pass with the changes applied),
``tests_failed`` (changes exist but the tests still fail after the last iteration) or
``no_changes`` (the model never produced an applied change). A ModelError or SandboxError
propagates to the caller, which owns the remaining outcomes.

The model is an untrusted author: every path it writes is validated, files are read and
written only under ``workdir`` and never through a symbolic link, and each reply is applied
all-or-nothing. Events carry counts and codes only, never issue or model text, because they
end up in logs.
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from bot.agent.context import gather_context, read_text
from bot.agent.editformat import apply_edits, parse_edits, validate_path
from bot.agent.llm import Message, Provider
from bot.agent.prompts import SYSTEM_PROMPT, failure_message, no_change_message, task_message
from bot.errors import EditFormatError
from bot.sandbox.base import Result, Session
from bot.sandbox.tarball import tar_directory

AgentOutcome = Literal["submitted", "no_changes", "tests_failed"]
EventSink = Callable[[str, dict[str, object]], None]

# The last exchanges kept in the prompt: older replies refer to file content that has since
# changed, and a small model's context window cannot hold them anyway.
HISTORY_MESSAGES = 4
MAX_EDIT_BYTES = 1_000_000
MAX_NOTE_CHARS = 500


@dataclass(frozen=True)
class AgentTask:
    """What to implement: the issue (or spec change) as written by a person. Untrusted."""

    title: str
    body: str


@dataclass(frozen=True)
class AgentSettings:
    """Limits and parameters of one agent run."""

    max_iterations: int = 4
    test_cmd: list[str] = field(default_factory=lambda: ["python", "-m", "pytest", "-q"])
    test_timeout_s: int = 300
    max_tokens: int = 1024
    temperature: float = 0.2
    context_budget_chars: int = 12_000


@dataclass(frozen=True)
class AgentResult:
    """How a run ended. ``notes`` may quote model output: show it, do not log it."""

    outcome: AgentOutcome
    iterations: int
    last_result: Result | None
    changed_files: tuple[str, ...]
    notes: tuple[str, ...]


@dataclass
class _Run:
    """One run: its collaborators and its mutable state, kept out of the loop body."""

    task: AgentTask
    root: Path
    session: Session
    provider: Provider
    settings: AgentSettings
    emit: EventSink
    files: list[str]
    shown: list[str]
    originals: dict[str, str | None] = field(default_factory=dict)
    history: list[Message] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    last_result: Result | None = None

    def changed_files(self) -> tuple[str, ...]:
        """Files whose content now differs from before the run (a revert is no change)."""
        return tuple(
            sorted(
                path
                for path, before in self.originals.items()
                if read_text(self.root, path, MAX_EDIT_BYTES) != before
            )
        )

    def finish(self, outcome: AgentOutcome, iterations: int) -> AgentResult:
        result = AgentResult(
            outcome=outcome,
            iterations=iterations,
            last_result=self.last_result,
            changed_files=self.changed_files(),
            notes=tuple(self.notes),
        )
        self.emit(
            "agent.done",
            {"outcome": outcome, "iterations": iterations, "changed": len(result.changed_files)},
        )
        return result


def run_agent(  # noqa: PLR0917 - the agreed seam; the pipeline calls it positionally
    task: AgentTask,
    workdir: Path,
    session: Session,
    provider: Provider,
    settings: AgentSettings,
    on_event: EventSink,
) -> AgentResult:
    """Drive ``provider`` to change the repository in ``workdir`` until ``settings.test_cmd``
    passes in ``session``, for at most ``settings.max_iterations`` model replies.

    Writes the model's edits into ``workdir`` (which must be a scratch worktree: the trusted
    side re-applies the final patch elsewhere) and sends the whole tree to the session before
    each test run. Emits ``agent.context``, ``agent.reply``, ``agent.iteration`` and
    ``agent.done`` events. Raises ModelError and SandboxError.
    """
    root = workdir.resolve()
    files, contents = gather_context(root, task.title, task.body, settings.context_budget_chars)
    on_event(
        "agent.context",
        {"files": len(files), "included": len(contents), "chars": sum(map(len, contents.values()))},
    )
    run = _Run(task, root, session, provider, settings, on_event, files, list(contents))
    iteration = 0
    for iteration in range(1, settings.max_iterations + 1):
        outcome = _iterate(run, iteration)
        if outcome is not None:
            return run.finish(outcome, iteration)
    return run.finish("tests_failed" if run.changed_files() else "no_changes", iteration)


def _iterate(run: _Run, i: int) -> AgentOutcome | None:
    """One model reply and its consequences; an outcome when the run is over."""
    started = time.monotonic()
    completion = run.provider.complete(
        _conversation(run),
        max_tokens=run.settings.max_tokens,
        temperature=run.settings.temperature,
    )
    run.emit(
        "agent.reply",
        {
            "i": i,
            "provider": run.provider.name,
            "seconds": round(time.monotonic() - started, 3),
            "prompt_tokens": completion.usage.prompt_tokens,
            "completion_tokens": completion.usage.completion_tokens,
        },
    )
    run.history.append(Message("assistant", completion.text))
    try:
        edits, changed = _apply_reply(run, completion.text)
    except EditFormatError as exc:
        _emit_iteration(run, i, edits=0, changed=0, error="edit_format")
        run.notes.append(_note(f"iteration {i}: edits not applied: {exc}"))
        run.history.append(Message("user", failure_message(None, str(exc))))
        return None
    if not edits:
        _emit_iteration(run, i, edits=0, changed=0, error="no_edits")
        run.notes.append(f"iteration {i}: the reply held no edit blocks")
        # Code in a plain fence is an edit in the wrong format (small models do this): remind
        # them of the format. Prose alone, before any change, means the model sees nothing to do.
        if not run.changed_files() and "```" not in completion.text:
            return "no_changes"
        run.history.append(Message("user", failure_message(None, None)))
        return None
    if not changed:
        _emit_iteration(run, i, edits=edits, changed=0, error="no_change")
        run.history.append(Message("user", no_change_message()))
        return None
    run.session.put(tar_directory(run.root))
    result = run.session.run(list(run.settings.test_cmd), run.settings.test_timeout_s)
    run.last_result = result
    _emit_iteration(run, i, edits=edits, changed=len(changed), result=result)
    if result.exit_code == 0 and not result.timed_out:
        return "submitted"
    run.history.append(Message("user", failure_message(result, None)))
    return None


def _emit_iteration(
    run: _Run,
    i: int,
    *,
    edits: int,
    changed: int,
    error: str | None = None,
    result: Result | None = None,
) -> None:
    run.emit(
        "agent.iteration",
        {
            "i": i,
            "edits": edits,
            "changed": changed,
            "error": error,
            "exit_code": result.exit_code if result else None,
            "timed_out": result.timed_out if result else None,
        },
    )


def _conversation(run: _Run) -> list[Message]:
    """System prompt, the task with the *current* file content, and the latest exchanges."""
    # Re-read every turn: after an edit, SEARCH parts must be written against the new content.
    paths = list(dict.fromkeys([*run.shown, *run.originals]))
    contents = {
        path: text
        for path in paths
        if (text := read_text(run.root, path, MAX_EDIT_BYTES)) is not None
    }
    history = run.history[-HISTORY_MESSAGES:]
    return [
        Message("system", SYSTEM_PROMPT),
        Message("user", task_message(run.task.title, run.task.body, run.files, contents)),
        *history,
    ]


def _note(text: str) -> str:
    return text if len(text) <= MAX_NOTE_CHARS else text[: MAX_NOTE_CHARS - 3] + "..."


# --- the file IO around the pure edit format -------------------------------------------------


def _apply_reply(run: _Run, reply: str) -> tuple[int, list[str]]:
    """Parse and apply one reply, all or nothing: (number of edits, paths written)."""
    edits = parse_edits(reply)
    if not edits:
        return 0, []
    paths = sorted({validate_path(edit.path) for edit in edits})
    current = {path: text for path in paths if (text := _existing_text(run.root, path)) is not None}
    changes = apply_edits(current, edits)
    # Every path was checked by _existing_text above (no links, no files as folders), so
    # the writes below do not fail half-way for a reason the model could have fixed.
    for path, text in changes.items():
        run.originals.setdefault(path, current.get(path))
        _write_text(run.root, path, text)
    return len(edits), sorted(changes)


def _components(root: Path, path: str) -> Iterable[tuple[str, Path]]:
    parts = path.split("/")
    for index in range(len(parts)):
        yield "/".join(parts[: index + 1]), root.joinpath(*parts[: index + 1])


def _existing_text(root: Path, path: str) -> str | None:
    """Current text of ``path`` under ``root``, None when it does not exist yet.

    Raises EditFormatError (sent back to the model) for a symbolic link on the way, a
    non-regular or binary file, or a file too large to edit.
    """
    for shown, location in _components(root, path):
        try:
            info = location.lstat()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise EditFormatError(f"{shown} cannot be read ({exc.strerror})") from exc
        if stat.S_ISLNK(info.st_mode):
            raise EditFormatError(f"{shown} is a symbolic link; files are not edited through links")
        if shown != path and not stat.S_ISDIR(info.st_mode):
            raise EditFormatError(f"{shown} is a file, so {path} cannot be inside it")
    text = read_text(root, path, MAX_EDIT_BYTES)
    if text is None:
        raise EditFormatError(f"{path} is not a UTF-8 text file under {MAX_EDIT_BYTES} bytes")
    return text


def _write_text(root: Path, path: str, text: str) -> None:
    """Write ``text`` to ``root/path``, creating folders, never following a link."""
    target = root.joinpath(*path.split("/"))
    # validate_path already rules out '..' and absolute paths; this is the belt to its braces.
    if os.path.commonpath([root, os.path.abspath(target)]) != str(root):
        raise EditFormatError(f"{path} is outside the repository")
    for shown, location in list(_components(root, path))[:-1]:
        try:
            info = location.lstat()
        except FileNotFoundError:
            location.mkdir()
            continue
        if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
            raise EditFormatError(f"{shown} is not a folder, so {path} cannot be written")
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW
    try:
        fd = os.open(target, flags, 0o644)
    except OSError as exc:
        raise EditFormatError(f"{path} cannot be written ({exc.strerror})") from exc
    with os.fdopen(fd, "wb") as handle:
        handle.write(text.encode("utf-8"))
