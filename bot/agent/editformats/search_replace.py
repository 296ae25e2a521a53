"""The SEARCH/REPLACE format: blocks that quote the lines to change, and NEW blocks (no IO).

A reply holds zero or more blocks, each preceded by the path of the file it changes::

    path/to/file.py
    <<<<<<< SEARCH
    exact old lines
    =======
    new lines
    >>>>>>> REPLACE

    path/to/new_file.py
    <<<<<<< NEW
    whole content
    >>>>>>> NEW

Blocks may sit inside ``` fences and among prose; consecutive blocks on one file may omit the
repeated path. Models miscount marker characters, so 5 to 9 ``<`` or ``>`` are accepted, and a
divider of 5 to 9 ``=`` is accepted when a block has no divider of exactly seven. How a SEARCH
part is matched against the file (tolerating whitespace and indentation drift) is
``bot.agent.editformats.matching``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from bot.agent.editformats.base import (
    Edit,
    Replace,
    WriteFile,
    block_path,
    clean_path,
    join_lines,
    normalise_newlines,
    raise_refused,
    where,
)
from bot.errors import EditFormatError

_OPEN = re.compile(r"^\s*<{5,9}\s*(SEARCH|NEW)\s*$")
_CLOSE = re.compile(r"^\s*>{5,9}\s*(REPLACE|NEW)\s*$")
# The divider is seven '=': shorter or longer runs are reStructuredText underlines and Markdown
# setext headings, which appear in files being edited. A miscounted one is accepted only when
# the block holds no exact divider and exactly one such run.
_DIVIDER = re.compile(r"^\s*={7}\s*$")
_LOOSE_DIVIDER = re.compile(r"^\s*={5,9}\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")

INSTRUCTIONS = """\
You change files only by writing edit blocks; nothing else in your reply is acted on.

To change an existing file, write its path alone on one line, then a block:

{path}
<<<<<<< SEARCH
the exact lines to change, copied from the current file
=======
the lines that replace them
>>>>>>> REPLACE

To create a file, or to replace a whole file, write its path, then a NEW block:

{path}
<<<<<<< NEW
the whole content of the file
>>>>>>> NEW

Rules for edit blocks:
- Paths are relative to the repository root and use '/'.
- The SEARCH part must repeat existing lines of the file exactly, including indentation,
  and must match exactly one place; include a few surrounding lines to make it unique.
- Keep each block small: only the lines that change plus a little context.
- Use several blocks for several changes; each block needs its own SEARCH part.
"""


class SearchReplaceFormat:
    """SEARCH/REPLACE blocks for changes, NEW blocks for new or rewritten files."""

    name = "search_replace"

    def instructions(self, example_path: str) -> str:
        """The format's rules with its two blocks shown on ``example_path``."""
        return INSTRUCTIONS.format(path=example_path)

    def parse(self, reply: str) -> list[Edit]:
        """Every block of ``reply``; see ``EditFormat.parse``."""
        return parse_search_replace(reply)


def parse_search_replace(text: str) -> list[Edit]:
    """Every edit block of a model reply, in order; ``[]`` when the reply holds none.

    Raises EditFormatError for a block without a usable path, without its divider, or
    without its end marker, and for an end marker with no block open.
    """
    lines = normalise_newlines(text).split("\n")
    edits: list[Edit] = []
    index = 0
    previous_path: str | None = None
    candidate: str | None = None  # the last prose line: the path of the next block
    refused: list[str] = []  # every refused path is named, not only the first
    while index < len(lines):
        line = lines[index]
        opened = _OPEN.match(line)
        if opened:
            number = len(edits) + 1
            path = _path_of_block(candidate, previous_path, number, refused)
            edit, index = _read_block(lines, index + 1, opened.group(1), path, number)
            edits.append(edit)
            previous_path, candidate = path, None
            continue
        if _CLOSE.match(line):
            raise EditFormatError(
                f"found '{line.strip()}' after block {len(edits)} with no "
                f"'<<<<<<< SEARCH' or '<<<<<<< NEW' line opening a block before it"
            )
        if line.strip() and not _FENCE.match(line):
            candidate = line
        index += 1
    raise_refused(refused)
    return edits


def _path_of_block(candidate: str | None, previous_path: str | None, number: int,
                   refused: list[str]) -> str:
    """The path for block ``number``: the prose line before it, else the previous block's."""
    if candidate is None:
        # Consecutive blocks on one file often omit the repeated path, as aider allows.
        if previous_path is None:
            raise EditFormatError(
                f"block {number} has no file path: put the path alone on the line before "
                f"the '<<<<<<<' marker"
            )
        return previous_path
    path = clean_path(candidate)
    if not path or any(ch.isspace() for ch in path):
        # A space almost always means prose ("Here is the fix:") rather than a path; paths
        # with spaces are rare enough in source trees that refusing them is the better error.
        raise EditFormatError(
            f"block {number}: expected a file path alone on the line before the '<<<<<<<' "
            f"marker, found {candidate.strip()[:120]!r}"
        )
    return block_path(path, number, refused=refused)


def _read_block(
    lines: Sequence[str], start: int, kind: str, path: str, number: int
) -> tuple[Edit, int]:
    """Read the block body opened just before ``start``; return it and the index after it."""
    named = where("block", number, path)
    body, end = _read_body(lines, start, named)
    if kind == "NEW":
        # A NEW block closed by '>>>>>>> REPLACE' (or the reverse) is understood: the intent
        # is clear and the model gains nothing from a round trip about it.
        return WriteFile(path=path, content=join_lines(body)), end + 1
    divider = _divider(body, named)
    search, replace = body[:divider], body[divider + 1 :]
    return Replace(path=path, search=join_lines(search), replace=join_lines(replace)), end + 1


def _read_body(lines: Sequence[str], start: int, named: str) -> tuple[list[str], int]:
    """Lines from ``start`` up to the closing marker, and the index of that marker."""
    for index in range(start, len(lines)):
        if _CLOSE.match(lines[index]):
            return list(lines[start:index]), index
        if _OPEN.match(lines[index]):
            raise EditFormatError(
                f"{named} is not closed before the next '<<<<<<<' marker on line {index + 1}"
            )
    raise EditFormatError(f"{named} is not closed: the reply ends before its '>>>>>>>' line")


def _divider(body: Sequence[str], named: str) -> int:
    """Index of the line between the SEARCH and REPLACE parts of a block's ``body``."""
    exact = [index for index, line in enumerate(body) if _DIVIDER.match(line)]
    if len(exact) > 1:
        raise EditFormatError(
            f"{named} has a second '=======' divider; a block has one SEARCH part and one "
            f"REPLACE part, so split it into two blocks"
        )
    if exact:
        return exact[0]
    loose = [index for index, line in enumerate(body) if _LOOSE_DIVIDER.match(line)]
    if len(loose) == 1:
        return loose[0]
    raise EditFormatError(
        f"{named} is missing its '=======' divider line between the SEARCH and REPLACE parts"
    )
