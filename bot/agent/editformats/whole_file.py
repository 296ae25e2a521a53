"""The whole-file format: the path of each changed file, then its complete content (no IO).

::

    src/app.py
    ```python
    the complete new content of the file
    ```

Small models cannot quote lines exactly, but they can write a short file out in full, so this
is their format (and a sound one for new and small files with any model). The parser has to
tell a path line from prose, and a fence that closes the block from one inside the content (a
Markdown file holds its own fences): a block closes only on a bare fence of the same character
at least as long as the opening one, and fences with a language tag inside the block open a
nested fence that the next bare one closes.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from bot.agent.editformats.base import (
    Edit,
    WriteFile,
    block_path,
    clean_path,
    join_lines,
    looks_like_path,
    normalise_newlines,
    raise_refused,
)
from bot.errors import EditFormatError

# An opening fence: three or more backticks or tildes, then an optional info string (no
# backtick in it for a backtick fence, as CommonMark says).
_FENCE = re.compile(r"^ {0,3}(?P<run>`{3,}|~{3,})[ \t]*(?P<info>[^`]*?)\s*$")
_LIST_MARKER = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+")
_TICKED = re.compile(r"`([^`\s]+)`")
# Blocks in these languages are commands to run, not files: prose may show them.
_COMMAND_LANGUAGES = frozenset({"bash", "sh", "shell", "console", "zsh", "shell-session"})
# A placeholder for lines the model did not write out: writing it would delete those lines.
_ELISION = re.compile(
    r"^\s*(?:#|//|/\*|<!--|--|;|\*)\s*\.{3}.*\b(?:rest|existing|unchanged|remain\w*|same|"
    r"previous|other|omitted)\b",
    re.IGNORECASE,
)
# Another format's syntax written as if it were the file: a model mixing up formats.
_FOREIGN_MARKER = re.compile(r"^(?:<{7} (?:SEARCH|NEW)|>{7} REPLACE)$")
_DIFF_LANGUAGES = frozenset({"diff", "patch", "udiff"})

INSTRUCTIONS = """\
You change files only by writing them out in full; nothing else in your reply is acted on.

For every file you change or create, write its path alone on one line, then the complete
new content of the file inside a fenced block:

{path}
```
the complete content of the file, every line, including the lines you do not change
```

Rules:
- Paths are relative to the repository root and use '/'.
- Write the whole file. Never shorten it with comments such as "# ... rest of the code ...":
  whatever you leave out is deleted.
- If the file itself contains lines of ``` fences, open and close its block with ```` instead.
- Write only the files you change.
"""


class WholeFileFormat:
    """Each changed file written out in full after its path."""

    name = "whole_file"

    def instructions(self, example_path: str) -> str:
        """The format's rules with one block shown on ``example_path``."""
        return INSTRUCTIONS.format(path=example_path)

    def parse(self, reply: str) -> list[Edit]:
        """Every file block of ``reply``; see ``EditFormat.parse``."""
        return parse_whole_file(reply)


def parse_whole_file(text: str) -> list[Edit]:
    """Every file written out in ``text``, in order; ``[]`` when it holds none.

    Raises EditFormatError for a fenced block with no path before it (unless it is a shell
    command), a block that is not closed, a bad path, and content with an elision comment.
    """
    lines = normalise_newlines(text).split("\n")
    edits: list[Edit] = []
    candidate: str | None = None  # the last non-blank line before a fence
    refused: list[str] = []  # every refused path is named, not only the first
    index = 0
    while index < len(lines):
        fence = _FENCE.match(lines[index])
        if fence is None:
            if lines[index].strip():
                candidate = lines[index]
            index += 1
            continue
        number = len(edits) + 1
        info = fence.group("info")
        raw_path = _path_from_line(candidate) or _path_from_info(info)
        body, index = _read_fenced(lines, index, fence.group("run"), number, raw_path)
        candidate = None
        if raw_path is None:
            if _language(info) in _COMMAND_LANGUAGES:
                continue
            raise EditFormatError(
                f"block {number} has no file path: write the path alone on the line before "
                f"its opening ``` fence"
            )
        path = block_path(raw_path, number, refused=refused)
        _check_content(body, info, number, path)
        edits.append(WriteFile(path=path, content=join_lines(body)))
    raise_refused(refused)
    return edits


def _language(info: str) -> str:
    """The language tag of a fence's info string (``python`` in ```` ```python title=x ````)."""
    words = info.split(maxsplit=1)
    return words[0].lower() if words else ""


def _path_from_line(line: str | None) -> str | None:
    """The path a line before a fence names, or None when it is prose."""
    if line is None:
        return None
    cleaned = clean_path(_LIST_MARKER.sub("", line, count=1))
    if looks_like_path(cleaned):
        return cleaned
    # "Here is the updated `src/app.py`:" names one path in code ticks and ends with a colon.
    ticked: list[str] = [
        token for token in _TICKED.findall(line) if looks_like_path(token.rstrip(":"))
    ]
    if len(ticked) == 1 and line.rstrip().rstrip("*").endswith(":"):
        return ticked[0].rstrip(":")
    return None


def _path_from_info(info: str) -> str | None:
    """A path in a fence's info string: ```` ```python src/app.py ```` or ```` ```src/a.py ````."""
    for raw in re.split(r"[\s:]+", info):
        token = raw.removeprefix("title=").strip("'\"")
        name = token.rsplit("/", 1)[-1]
        if looks_like_path(token) and ("/" in token or "." in name.lstrip(".")):
            return token
    return None


def _read_fenced(
    lines: Sequence[str], opening: int, run: str, number: int, path: str | None
) -> tuple[list[str], int]:
    """The lines inside the fence opened at ``opening``, and the index after its close."""
    depth = 0  # fences with a language tag opened inside the content and not yet closed
    for index in range(opening + 1, len(lines)):
        inner = _FENCE.match(lines[index])
        # A shorter fence, or one of the other character, is content: it cannot close ours.
        if inner is None or inner.group("run")[0] != run[0] or len(inner.group("run")) < len(run):
            continue
        if inner.group("info"):
            depth += 1
        elif depth:
            depth -= 1
        else:
            return list(lines[opening + 1 : index]), index + 1
    named = f"block {number} ({path})" if path else f"block {number}"
    raise EditFormatError(
        f"{named} is not closed: the reply ends before its closing {run} fence; write the "
        f"whole file, then the fence"
    )


def _check_content(body: Sequence[str], info: str, number: int, path: str) -> None:
    """Refuse content that is not a whole file: elided lines, or another format's edits."""
    named = f"block {number} ({path})"
    if _language(info) in _DIFF_LANGUAGES and any(line.startswith(("--- ", "@@")) for line in body):
        raise EditFormatError(
            f"{named} is a diff, but this format takes the complete new content of the file "
            f"in the fence, not a diff"
        )
    if any(_FOREIGN_MARKER.match(line) for line in body):
        raise EditFormatError(
            f"{named} holds SEARCH/REPLACE markers, but this format takes the complete new "
            f"content of the file in the fence, without markers"
        )
    for line_number, line in enumerate(body, start=1):
        if _ELISION.match(line):
            raise EditFormatError(
                f"{named} leaves part of the file out at its line "
                f"{line_number} ({line.strip()[:80]!r}); write the complete content of the "
                f"file, because every line left out is deleted"
            )
