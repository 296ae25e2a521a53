"""A change set: what a unified git diff does, file by file, as plain values.

Built on the trusted side from the diff of the re-applied patch, and read by the policy
evaluator and the secret scanner. Paths are decoded from git's C-style quoting and stripped of
git's ``a/`` and ``b/`` prefixes, but are otherwise exactly what the diff says: deciding
whether a path is acceptable (``..``, absolute, backslashes) is the evaluator's job, so
nothing is normalised away here.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from unidiff.errors import UnidiffParseError
from unidiff.patch import PatchedFile, PatchSet

DEV_NULL = "/dev/null"
SYMLINK_MODE = "120000"
SUBMODULE_MODE = "160000"

# git's C-style quoting of unusual paths ("core.quotePath"): simple escapes and octal bytes.
_SIMPLE_ESCAPES = {"a": 7, "b": 8, "t": 9, "n": 10, "v": 11, "f": 12, "r": 13, '"': 34, "\\": 92}


class DiffError(ValueError):
    """The text is not a unified diff that can be read; the message says where and why."""


class FileStatus(StrEnum):
    """What a diff does to one file."""

    ADDED = "added"
    MODIFIED = "modified"
    DELETED = "deleted"
    RENAMED = "renamed"


@dataclass(frozen=True)
class Line:
    """One added or removed line: its number (new file for added, old file for removed)."""

    number: int
    text: str  # without the line ending


@dataclass(frozen=True)
class FileChange:
    """One file of a diff.

    ``path`` is the new path, or the old path for a deletion; ``old_path`` is set for a
    rename. ``new_mode`` is git's mode after the change (``120000`` is a symbolic link whose
    target is the added line), ``None`` for a deletion or a diff without modes.
    """

    path: str
    status: FileStatus
    old_path: str | None = None
    added: tuple[Line, ...] = ()
    removed: tuple[Line, ...] = ()
    is_binary: bool = False
    old_mode: str | None = None
    new_mode: str | None = None

    @property
    def removed_count(self) -> int:
        """Number of removed lines."""
        return len(self.removed)

    @property
    def lines_changed(self) -> int:
        """Added plus removed lines."""
        return len(self.added) + len(self.removed)

    @property
    def is_symlink(self) -> bool:
        """Whether the file is a symbolic link after the change."""
        return self.new_mode == SYMLINK_MODE

    @property
    def paths(self) -> tuple[str, ...]:
        """Every path the change touches: a rename touches its old path as well."""
        return (self.path,) if self.old_path is None else (self.old_path, self.path)


@dataclass(frozen=True)
class ChangeSet:
    """Every file of a diff, in diff order, with totals."""

    files: tuple[FileChange, ...] = ()

    @property
    def files_changed(self) -> int:
        """Number of files the diff touches (a rename counts once)."""
        return len(self.files)

    @property
    def lines_added(self) -> int:
        """Added lines over all files."""
        return sum(len(change.added) for change in self.files)

    @property
    def lines_removed(self) -> int:
        """Removed lines over all files."""
        return sum(len(change.removed) for change in self.files)

    @property
    def lines_changed(self) -> int:
        """Added plus removed lines over all files."""
        return self.lines_added + self.lines_removed


def parse_diff(text: str) -> ChangeSet:
    """Parse a unified diff (as ``git diff`` writes it) into a :class:`ChangeSet`.

    An empty or blank text is an empty change set. Raises :class:`DiffError` when the text
    is not a diff, or a hunk does not match its header.
    """
    if not text.strip():
        return ChangeSet()
    try:
        patch = PatchSet(text)
    except UnidiffParseError as exc:
        raise DiffError(f"malformed diff: {exc}") from exc
    if not patch:
        raise DiffError("malformed diff: no file headers ('diff --git' or '---'/'+++') found")
    return ChangeSet(files=tuple(_file_change(patched) for patched in patch))


def _file_change(patched: PatchedFile) -> FileChange:
    source = _diff_path(patched.source_file, "a/")
    target = _diff_path(patched.target_file, "b/")
    if source is None and target is None:
        raise DiffError("malformed diff: a file with /dev/null on both sides")
    added: list[Line] = []
    removed: list[Line] = []
    for hunk in patched:
        for line in hunk:
            if line.is_added and line.target_line_no is not None:
                added.append(Line(line.target_line_no, _strip_eol(line.value)))
            elif line.is_removed and line.source_line_no is not None:
                removed.append(Line(line.source_line_no, _strip_eol(line.value)))
    if source is None:
        status, path, old_path = FileStatus.ADDED, target, None
    elif target is None:
        status, path, old_path = FileStatus.DELETED, source, None
    elif source != target:
        status, path, old_path = FileStatus.RENAMED, target, source
    else:
        status, path, old_path = FileStatus.MODIFIED, target, None
    assert path is not None  # both None was refused above
    return FileChange(
        path=path,
        status=status,
        old_path=old_path,
        added=tuple(added),
        removed=tuple(removed),
        is_binary=bool(patched.is_binary_file),
        old_mode=None if status is FileStatus.ADDED else patched.source_mode,
        new_mode=None if status is FileStatus.DELETED else patched.target_mode,
    )


def _diff_path(raw: str | None, prefix: str) -> str | None:
    """The repository path of one side of a file header, or ``None`` for ``/dev/null``."""
    if raw is None or raw == DEV_NULL:
        return None
    path = unquote_git_path(raw)
    return path.removeprefix(prefix)


def unquote_git_path(raw: str) -> str:
    """Decode a path as git prints it: ``"a/\\303\\274.py"`` is ``a/ü.py``.

    Bytes that are not UTF-8 come back as ``\\xNN``, which the evaluator refuses as a path
    with a backslash rather than guess at an encoding.
    """
    if len(raw) < 2 or not (raw.startswith('"') and raw.endswith('"')):
        return raw
    body = raw[1:-1]
    out = bytearray()
    index = 0
    while index < len(body):
        char = body[index]
        if char != "\\" or index + 1 == len(body):
            out += char.encode("utf-8")
            index += 1
            continue
        following = body[index + 1]
        octal = body[index + 1 : index + 4]
        if len(octal) == 3 and all(digit in "01234567" for digit in octal):
            out.append(int(octal, 8) & 0xFF)
            index += 4
        elif following in _SIMPLE_ESCAPES:
            out.append(_SIMPLE_ESCAPES[following])
            index += 2
        else:  # not an escape git writes; keep it as it is
            out += b"\\"
            index += 1
    return out.decode("utf-8", errors="backslashreplace")


def _strip_eol(value: str) -> str:
    if value.endswith("\r\n"):
        return value[:-2]
    return value.removesuffix("\n")
