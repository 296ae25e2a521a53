"""The agent's scratch worktree: reading and writing the files the model edits.

The model is an untrusted author: every path it names was validated by the edit format's
parser, and here files are read and written only under the root, never through a symbolic
link, and each reply is applied all or nothing (and can be undone, when its result does
not even parse).
"""

from __future__ import annotations

import difflib
import os
import stat
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bot.agent.context import read_text
from bot.agent.editformats import Edit, apply_edits, raise_refused, validate_path
from bot.errors import EditFormatError

MAX_EDIT_BYTES = 1_000_000


@dataclass
class Workspace:
    """The files under ``root`` as the model changes them; ``originals`` remembers each
    touched file's content before the run (None: it did not exist)."""

    root: Path
    originals: dict[str, str | None] = field(default_factory=dict)

    def read(self, path: str) -> str | None:
        return read_text(self.root, path, MAX_EDIT_BYTES)

    def apply(self, edits: Sequence[Edit]) -> dict[str, str | None]:
        """Apply one reply's edits, all or nothing. Returns what each written file held
        before (None: it was new), so the caller can ``restore`` it; raises EditFormatError
        (for the model) when an edit does not fit or a path cannot be written."""
        refused: list[str] = []  # every refused path is named, not only the first
        paths: set[str] = set()
        for edit in edits:
            try:
                paths.add(validate_path(edit.path))
            except EditFormatError as exc:
                refused.append(str(exc))
        current: dict[str, str] = {}
        for path in sorted(paths):
            try:
                text = self._existing(path)
            except EditFormatError as exc:
                refused.append(str(exc))
                continue
            if text is not None:
                current[path] = text
        raise_refused(list(dict.fromkeys(refused)))
        changes = apply_edits(current, edits)
        # Every path was checked by _existing (no links, no file where a folder should be),
        # so the writes below do not fail half-way for a reason the model could have fixed.
        before: dict[str, str | None] = {}
        for path, text in changes.items():
            if current.get(path) == text:
                continue
            self.originals.setdefault(path, current.get(path))
            before[path] = current.get(path)
            self._write(path, text)
        return before

    def restore(self, before: Mapping[str, str | None]) -> None:
        """Undo ``apply``: put back each file's earlier content, remove files it created."""
        for path, text in before.items():
            if text is None:
                target = self.root.joinpath(*path.split("/"))
                if target.is_file() and not target.is_symlink():
                    target.unlink()
            else:
                self._write(path, text)

    def changed_files(self) -> tuple[str, ...]:
        """Files whose content now differs from before the run (a revert is no change)."""
        return tuple(sorted(p for p, before in self.originals.items() if self.read(p) != before))

    def diff(self, limit_chars: int = 40_000) -> str:
        """A unified diff of the run's changes so far (for the reviewer), bounded."""
        parts: list[str] = []
        for path in self.changed_files():
            before = (self.originals[path] or "").splitlines(keepends=True)
            after = (self.read(path) or "").splitlines(keepends=True)
            parts.extend(difflib.unified_diff(before, after, f"a/{path}", f"b/{path}"))
        text = "".join(parts)
        if len(text) > limit_chars:
            text = text[:limit_chars] + "\n[... diff cut ...]\n"
        return text

    def _existing(self, path: str) -> str | None:
        """Current text of ``path``, None when it does not exist yet.

        Raises EditFormatError for a symbolic link on the way, a non-regular or binary file,
        or a file too large to edit.
        """
        for shown, location in _components(self.root, path):
            try:
                info = location.lstat()
            except FileNotFoundError:
                return None
            except OSError as exc:
                raise EditFormatError(f"{shown} cannot be read ({exc.strerror})") from exc
            if stat.S_ISLNK(info.st_mode):
                raise EditFormatError(
                    f"{shown} is a symbolic link; files are not edited through links")
            if shown != path and not stat.S_ISDIR(info.st_mode):
                raise EditFormatError(f"{shown} is a file, so {path} cannot be inside it")
        text = self.read(path)
        if text is None:
            raise EditFormatError(f"{path} is not a UTF-8 text file under {MAX_EDIT_BYTES} bytes")
        return text

    def _write(self, path: str, text: str) -> None:
        """Write ``text`` to ``root/path``, creating folders, never following a link."""
        target = self.root.joinpath(*path.split("/"))
        # validate_path already rules out '..' and absolute paths; this is the belt to its
        # braces.
        if os.path.commonpath([self.root, os.path.abspath(target)]) != str(self.root):
            raise EditFormatError(f"{path} is outside the repository")
        for shown, location in list(_components(self.root, path))[:-1]:
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


def _components(root: Path, path: str) -> Iterable[tuple[str, Path]]:
    parts = path.split("/")
    for index in range(len(parts)):
        yield "/".join(parts[: index + 1]), root.joinpath(*parts[: index + 1])
