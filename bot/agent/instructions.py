"""Repository instructions: what the repository's own files tell an agent to do.

``AGENTS.md`` at the root and in folders, and ``.forgebot/instructions.md``, read from the
default branch (never from the bot's branch or a pull request, so a change cannot instruct
its own review). The text goes into the prompt as guidance from the repository, bounded and
marked; it can never widen a policy, because every rule that matters is enforced in code
after the model has answered.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

ROOT_FILES = ("AGENTS.md", ".forgebot/instructions.md")
NESTED_NAME = "AGENTS.md"
MAX_FILE_CHARS = 6_000
MAX_TOTAL_CHARS = 12_000


@dataclass(frozen=True)
class InstructionFile:
    path: str  # relative to the repository root
    text: str

    @property
    def folder(self) -> str:
        """The folder the file speaks for: "" for the root files."""
        if self.path in ROOT_FILES:
            return ""
        return self.path.rsplit("/", 1)[0] if "/" in self.path else ""


def is_instruction_path(path: str) -> bool:
    return path in ROOT_FILES or path.rsplit("/", 1)[-1] == NESTED_NAME


def relevant(files: Sequence[InstructionFile], paths: Iterable[str]) -> list[InstructionFile]:
    """The root files, then each nested ``AGENTS.md`` whose folder holds one of ``paths``
    (the files the agent is shown or edits), shallowest first."""
    touched = set(paths)
    chosen = [f for f in files if f.folder == ""]
    nested = sorted((f for f in files if f.folder), key=lambda f: (f.folder.count("/"), f.path))
    chosen += [f for f in nested
               if any(path.startswith(f.folder + "/") for path in touched)]
    return chosen


@dataclass(frozen=True)
class Rendered:
    text: str  # "" when there is nothing to say
    used: tuple[str, ...]  # paths that went into the text (the pull request names them)


def render(files: Sequence[InstructionFile], limit: int = MAX_TOTAL_CHARS) -> Rendered:
    """The files as one block of text within ``limit`` characters: each file cut at
    ``MAX_FILE_CHARS`` (and said so), files that no longer fit left out."""
    parts: list[str] = []
    used: list[str] = []
    remaining = limit
    for f in files:
        text = f.text.strip()
        if not text:
            continue
        if len(text) > MAX_FILE_CHARS:
            text = text[:MAX_FILE_CHARS] + f"\n[... {len(f.text) - MAX_FILE_CHARS} characters cut]"
        block = f"From {f.path}:\n{text}"
        if len(block) > remaining:
            continue
        parts.append(block)
        used.append(f.path)
        remaining -= len(block)
    return Rendered("\n\n".join(parts), tuple(used))
