"""The unified-diff format: ``--- a/x`` / ``+++ b/x`` headers and ``@@`` hunks (no IO).

Models write diffs the way they have seen them, but get the line numbers wrong, so numbers are
ignored: each hunk becomes a ``Replace`` of its context and removed lines by its context and
added lines, placed by content (with the same tolerance as SEARCH/REPLACE). Accepted as well:
paths without the ``a/`` ``b/`` prefixes, a timestamp after the path, ``@@ ... @@`` and bare
``@@`` hunk headers, ``--- /dev/null`` for a new file, and context lines that lost their leading
space inside a fenced diff. Deleting and renaming files are refused with an error that says so.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from bot.agent.editformats.base import (
    Edit,
    Replace,
    WriteFile,
    block_path,
    join_lines,
    normalise_newlines,
    raise_refused,
)
from bot.errors import EditFormatError

NULL = "/dev/null"
_FENCE = re.compile(r"^\s*(```|~~~)")
_HUNK_PREFIXES = (" ", "-", "+")

INSTRUCTIONS = """\
You change files only by writing unified diffs; nothing else in your reply is acted on.

For every file you change, write a diff like `diff -U3` produces, inside a ```diff fence:

```diff
--- a/{path}
+++ b/{path}
@@ ... @@
 an unchanged line before the change
-a line to remove
+a line to add instead
 an unchanged line after the change
```

Rules:
- Paths are relative to the repository root and use '/'.
- Start every line of a hunk with ' ' (unchanged), '-' (removed) or '+' (added).
- Copy the unchanged and removed lines exactly from the current file, with their indentation;
  they are how the change is placed, so give two or three unchanged lines around each change.
- Line numbers in '@@' lines are ignored; you may write '@@ ... @@'.
- To create a file, use '--- /dev/null' and '+++ b/path/to/new_file' and '+' lines only.
"""


class UnifiedDiffFormat:
    """Unified diffs whose hunks are placed by their content, not their line numbers."""

    name = "udiff"

    def instructions(self, example_path: str) -> str:
        """The format's rules with one diff shown on ``example_path``."""
        return INSTRUCTIONS.format(path=example_path)

    def parse(self, reply: str) -> list[Edit]:
        """Every hunk of ``reply``; see ``EditFormat.parse``."""
        return parse_udiff(reply)


@dataclass(frozen=True)
class _Target:
    """The file the hunks after a header change, and whether the header creates it."""

    path: str
    creates: bool


def parse_udiff(text: str) -> list[Edit]:
    """Every hunk in ``text`` as an edit, in order; ``[]`` when it holds none.

    The hunks of a new file (``--- /dev/null``) become one ``WriteFile``. Raises
    EditFormatError for a hunk with no file header before it, a hunk that changes nothing,
    a header that deletes or renames a file, and a bad path.
    """
    lines = normalise_newlines(text).split("\n")
    edits: list[Edit] = []
    target: _Target | None = None
    fenced = False
    refused: list[str] = []  # every refused path is named, not only the first
    index = 0
    while index < len(lines):
        line = lines[index]
        if _is_header(lines, index):
            target = _target(line[4:], lines[index + 1][4:], len(edits) + 1, refused)
            index += 2
        elif line.startswith("@@"):
            body, index = _read_hunk(lines, index + 1, fenced)
            _add_hunk(edits, target, body)
        else:
            if _FENCE.match(line):
                fenced = not fenced
            index += 1
    raise_refused(refused)
    return edits


def _is_header(lines: Sequence[str], index: int) -> bool:
    return (
        lines[index].startswith("--- ")
        and index + 1 < len(lines)
        and lines[index + 1].startswith("+++ ")
    )


def _header_path(raw: str) -> str:
    """The path of a ``---``/``+++`` line: without a timestamp after a tab, quotes or ticks."""
    path = raw.split("\t", 1)[0].strip().strip("\"'`")
    # "--- a/x.py 2024-05-01 10:00:00": a path with spaces is rarer than a timestamp.
    return path.split(" ", 1)[0] if path else path


def _strip_prefixes(old: str, new: str) -> tuple[str, str]:
    """Drop git's ``a/`` and ``b/`` when the header uses them (on one side or both)."""
    if old.startswith("a/") and new.startswith("b/"):
        return old[2:], new[2:]
    if old == NULL and new.startswith("b/"):
        return old, new[2:]
    if new == NULL and old.startswith("a/"):
        return old[2:], new
    if old.startswith("a/") and old[2:] == new:
        return new, new
    if new.startswith("b/") and new[2:] == old:
        return old, old
    return old, new


def _target(old_raw: str, new_raw: str, number: int, refused: list[str]) -> _Target:
    old, new = _strip_prefixes(_header_path(old_raw), _header_path(new_raw))
    if new == NULL:
        raise EditFormatError(
            f"hunk {number}: the diff deletes {old[:120]!r}, and deleting files is not "
            f"supported; change files, or leave them"
        )
    if old not in (NULL, new):
        raise EditFormatError(
            f"hunk {number}: the diff renames {old[:120]!r} to {new[:120]!r}, and renaming is "
            f"not supported; use the same path on the '---' and '+++' lines"
        )
    return _Target(path=block_path(new, number, "hunk", refused), creates=old == NULL)


def _read_hunk(lines: Sequence[str], start: int, fenced: bool) -> tuple[list[str], int]:
    """The lines of the hunk starting at ``start`` and the index of the line after it.

    Outside a fence the hunk ends at the first line that is not a hunk line; inside one, at
    the closing fence, and a line without a prefix is a context line that lost its space.
    """
    index = start
    while index < len(lines):
        line = lines[index]
        if line.startswith("@@") or _is_header(lines, index) or _FENCE.match(line):
            break
        if not (line == "" or line.startswith((*_HUNK_PREFIXES, "\\")) or fenced):
            break
        index += 1
    body = list(lines[start:index])
    while body and body[-1] == "":
        body.pop()  # blank lines between a hunk and what follows it
    return [line for line in body if not line.startswith("\\")], index


def _add_hunk(edits: list[Edit], target: _Target | None, body: Sequence[str]) -> None:
    number = len(edits) + 1
    if target is None:
        raise EditFormatError(
            f"hunk {number} has no '--- a/path' and '+++ b/path' lines before it naming the "
            f"file it changes"
        )
    old = [_content(line) for line in body if not line.startswith("+")]
    new = [_content(line) for line in body if not line.startswith("-")]
    if old == new:
        raise EditFormatError(
            f"hunk {number} ({target.path}) changes nothing: it has no '-' or '+' lines"
        )
    if target.creates:
        previous = edits[-1] if edits else None
        if isinstance(previous, WriteFile) and previous.path == target.path:
            # The second hunk of one new file: the file is all the '+' lines in order.
            edits[-1] = WriteFile(target.path, previous.content + join_lines(new))
        else:
            edits.append(WriteFile(target.path, join_lines(new)))
        return
    edits.append(Replace(target.path, join_lines(old), join_lines(new), unit="hunk"))


def _content(line: str) -> str:
    """A hunk line without its prefix; a bare line (a context line that lost its space) whole."""
    return line[1:] if line.startswith(_HUNK_PREFIXES) else line
