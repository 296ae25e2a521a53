"""The edit format the model writes, parsed and applied as pure functions (no IO).

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

Blocks may sit inside ``` fences and among prose. Every error is an ``EditFormatError`` whose
message names the block and says what is wrong, because it is sent back to the model as the next
prompt. The model is an untrusted author: every path goes through ``validate_path``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from bot.errors import EditFormatError

# Models miscount the marker characters; accept 5 to 9 of them around the keyword.
_OPEN = re.compile(r"^\s*<{5,9}\s*(SEARCH|NEW)\s*$")
_CLOSE = re.compile(r"^\s*>{5,9}\s*(REPLACE|NEW)\s*$")
# The divider must be exactly seven '=': shorter or longer runs are reStructuredText
# underlines and Markdown setext headings, which appear in files being edited.
_DIVIDER = re.compile(r"^\s*={7}\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")
_WINDOWS_DRIVE = re.compile(r"^[A-Za-z]:")
# What models put around a path: Markdown heading hashes, bold/italic, code ticks, quotes.
_PATH_DECORATION = "#*`'\" \t"
_PATH_LABEL = re.compile(r"^(?:file|path|filename)\s*:\s*", re.IGNORECASE)


@dataclass(frozen=True)
class Edit:
    """One block: replace ``search`` with ``replace`` in ``path``; ``search`` is None for NEW."""

    path: str
    search: str | None
    replace: str


def validate_path(path: str) -> str:
    """Return ``path`` normalised (``./`` and doubled slashes removed) or raise EditFormatError.

    Rejected: empty, absolute (or a drive letter), backslashes, NUL and other control
    characters, ``..`` components, anything inside ``.git``, a leading ``-`` (it would read as
    an option to git), and a trailing ``/`` (a directory, not a file).
    """
    if not path or not path.strip():
        raise EditFormatError("empty file path")
    shown = path[:200].encode("unicode_escape").decode("ascii")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in path):
        raise EditFormatError(f"file path {shown!r} contains a control character")
    if "\\" in path:
        raise EditFormatError(f"file path {shown!r} contains a backslash; use '/'")
    if path.startswith("/") or _WINDOWS_DRIVE.match(path):
        raise EditFormatError(
            f"file path {shown!r} is absolute; use a path relative to the repository root"
        )
    if path.endswith("/"):
        raise EditFormatError(f"file path {shown!r} names a directory, not a file")
    parts = [part for part in path.split("/") if part not in ("", ".")]
    if not parts:
        raise EditFormatError(f"file path {shown!r} names no file")
    if ".." in parts:
        raise EditFormatError(f"file path {shown!r} leaves the repository ('..' is not allowed)")
    if any(part.lower() == ".git" for part in parts):
        raise EditFormatError(f"file path {shown!r} is inside .git, which may not be edited")
    normalised = "/".join(parts)
    if normalised.startswith("-"):
        raise EditFormatError(f"file path {shown!r} starts with '-'")
    return normalised


# --- parsing ---------------------------------------------------------------------------------


def parse_edits(text: str) -> list[Edit]:
    """Every edit block of a model reply, in order; ``[]`` when the reply holds none.

    Raises EditFormatError for a block without a usable path, without its divider, or
    without its end marker, and for an end marker with no block open.
    """
    lines = _normalise_newlines(text).split("\n")
    edits: list[Edit] = []
    index = 0
    previous_path: str | None = None
    candidate: str | None = None  # the last prose line: the path of the next block
    while index < len(lines):
        line = lines[index]
        opened = _OPEN.match(line)
        if opened:
            number = len(edits) + 1
            path = _block_path(candidate, previous_path, number)
            edit, index = _read_block(lines, index + 1, opened.group(1), path, number)
            edits.append(edit)
            previous_path, candidate = path, None
            continue
        closed = _CLOSE.match(line)
        if closed:
            raise EditFormatError(
                f"found '{line.strip()}' after block {len(edits)} with no "
                f"'<<<<<<< SEARCH' or '<<<<<<< NEW' line opening a block before it"
            )
        if line.strip() and not _FENCE.match(line):
            candidate = line
        index += 1
    return edits


def _normalise_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _block_path(candidate: str | None, previous_path: str | None, number: int) -> str:
    """The path for block ``number``: the prose line before it, else the previous block's."""
    if candidate is None:
        # Consecutive blocks on one file often omit the repeated path, as aider allows.
        if previous_path is None:
            raise EditFormatError(
                f"block {number} has no file path: put the path alone on the line before "
                f"the '<<<<<<<' marker"
            )
        return previous_path
    path = _clean_path(candidate)
    if not path or any(ch.isspace() for ch in path):
        # A space almost always means prose ("Here is the fix:") rather than a path; paths
        # with spaces are rare enough in source trees that refusing them is the better error.
        raise EditFormatError(
            f"block {number}: expected a file path alone on the line before the '<<<<<<<' "
            f"marker, found {candidate.strip()[:120]!r}"
        )
    try:
        return validate_path(path)
    except EditFormatError as exc:
        raise EditFormatError(f"block {number}: {exc}") from exc


def _clean_path(line: str) -> str:
    path = line.strip().strip(_PATH_DECORATION)
    path = _PATH_LABEL.sub("", path).strip(_PATH_DECORATION)
    return path.removesuffix(":").strip(_PATH_DECORATION)


def _read_block(
    lines: Sequence[str], start: int, kind: str, path: str, number: int
) -> tuple[Edit, int]:
    """Read the block body opened just before ``start``; return it and the index after it."""
    where = f"block {number} ({path})"
    if kind == "NEW":
        # A NEW block closed by '>>>>>>> REPLACE' (or the reverse) is understood: the intent
        # is clear and the model gains nothing from a round trip about it.
        body, end = _read_until(lines, start, where, stop_at_divider=False)
        return Edit(path=path, search=None, replace=_join(body)), end + 1
    search, divider = _read_until(lines, start, where, stop_at_divider=True)
    if divider >= len(lines) or not _DIVIDER.match(lines[divider]):
        raise EditFormatError(
            f"{where} is missing its '=======' divider line between the SEARCH and REPLACE parts"
        )
    replace, end = _read_until(lines, divider + 1, where, stop_at_divider=True)
    if end < len(lines) and _DIVIDER.match(lines[end]):
        raise EditFormatError(
            f"{where} has a second '=======' divider; a block has one SEARCH part and one "
            f"REPLACE part, so split it into two blocks"
        )
    return Edit(path=path, search=_join(search), replace=_join(replace)), end + 1


def _read_until(
    lines: Sequence[str], start: int, where: str, *, stop_at_divider: bool
) -> tuple[list[str], int]:
    """Lines from ``start`` up to a marker; the index returned points at that marker."""
    index = start
    while index < len(lines):
        line = lines[index]
        if _CLOSE.match(line) or (stop_at_divider and _DIVIDER.match(line)):
            return list(lines[start:index]), index
        if _OPEN.match(line):
            raise EditFormatError(
                f"{where} is not closed before the next '<<<<<<<' marker on line {index + 1}"
            )
        index += 1
    raise EditFormatError(f"{where} is not closed: the reply ends before its '>>>>>>>' line")


def _join(lines: Sequence[str]) -> str:
    return "".join(line + "\n" for line in lines)


# --- applying --------------------------------------------------------------------------------


def apply_edits(files: Mapping[str, str], edits: Sequence[Edit]) -> dict[str, str]:
    """Apply ``edits`` in order to ``files`` (path to content); return the changed files only.

    ``files`` must hold the current content of every existing file an edit names; a path
    missing from it is a file that does not exist. A SEARCH part must match exactly once,
    either exactly or ignoring trailing whitespace and a uniform shift of indentation (which
    the replacement then follows). A NEW block creates a file or replaces a whole one.
    """
    current: dict[str, str] = {}
    for number, edit in enumerate(edits, start=1):
        path = validate_path(edit.path)
        where = f"block {number} ({path})"
        before = current.get(path, files.get(path))
        if edit.search is None:
            current[path] = edit.replace
        elif before is None:
            if edit.search.strip():
                raise EditFormatError(
                    f"{where}: the file does not exist; to create it, use a "
                    f"'<<<<<<< NEW' block holding its whole content"
                )
            current[path] = edit.replace
        else:
            current[path] = _replace_in(before, edit.search, edit.replace, where)
    return {path: text for path, text in current.items() if files.get(path) != text}


def _replace_in(content: str, search: str, replace: str, where: str) -> str:
    if not search.strip():
        raise EditFormatError(
            f"{where}: the SEARCH part is empty; copy the lines to change from the file, or "
            f"use a '<<<<<<< NEW' block to replace the whole file"
        )
    crlf = "\r\n" in content
    text = _normalise_newlines(content) if crlf else content
    replaced = _replace_exact(text, search, replace, where)
    if replaced is None:
        replaced = _replace_tolerant(text, search, replace, where)
    # Keep the file's own line endings: the model only ever sees and writes '\n'.
    return replaced.replace("\n", "\r\n") if crlf else replaced


def _replace_exact(text: str, search: str, replace: str, where: str) -> str | None:
    starts = _line_aligned_finds(text, search)
    if len(starts) > 1:
        raise _ambiguous(where, len(starts))
    if starts:
        return text[: starts[0]] + replace + text[starts[0] + len(search) :]
    return None


def _line_aligned_finds(text: str, search: str) -> list[int]:
    """Where ``search`` occurs starting at a line start: 'x = 1' must not match 'max = 1'."""
    found: list[int] = []
    index = text.find(search)
    while index != -1:
        if index == 0 or text[index - 1] == "\n":
            found.append(index)
        index = text.find(search, index + 1)
    return found


def _ambiguous(where: str, count: int) -> EditFormatError:
    return EditFormatError(
        f"{where}: the SEARCH part matches {count} places in the file; include more of "
        f"the surrounding lines so that it matches exactly one"
    )


def _replace_tolerant(text: str, search: str, replace: str, where: str) -> str:
    """Line-wise match ignoring trailing whitespace and a uniform indentation shift."""
    lines = text.split("\n")
    trailing_newline = text.endswith("\n")
    if trailing_newline:
        lines.pop()
    old, new = _trim_blank_edges(search.split("\n")[:-1], replace.split("\n")[:-1])
    matches = list(_tolerant_matches(lines, old))
    if len(matches) > 1:
        raise _ambiguous(where, len(matches))
    if not matches:
        raise EditFormatError(f"{where}: {_not_found_hint(lines, old)}")
    start, file_indent, search_indent = matches[0]
    body = [_reindent(line, search_indent, file_indent) for line in new]
    result = lines[:start] + body + lines[start + len(old) :]
    return "\n".join(result) + ("\n" if trailing_newline else "")


def _trim_blank_edges(old: list[str], new: list[str]) -> tuple[list[str], list[str]]:
    """Drop blank lines around SEARCH, and as many around REPLACE where it has them too."""
    while old and not old[0].strip():
        old = old[1:]
        if new and not new[0].strip():
            new = new[1:]
    while old and not old[-1].strip():
        old = old[:-1]
        if new and not new[-1].strip():
            new = new[:-1]
    return old, new


def _tolerant_matches(lines: Sequence[str], old: Sequence[str]) -> Iterator[tuple[int, str, str]]:
    """(start line, file indentation, search indentation) of each tolerant match."""
    if not old:
        return
    search_indent = _common_indent(old)
    wanted = _dedent(old, search_indent)
    for start in range(len(lines) - len(old) + 1):
        window = lines[start : start + len(old)]
        file_indent = _common_indent(window)
        if _dedent(window, file_indent) == wanted:
            yield start, file_indent, search_indent


def _common_indent(lines: Sequence[str]) -> str:
    indents = [line[: len(line) - len(line.lstrip())] for line in lines if line.strip()]
    if not indents:
        return ""
    prefix = indents[0]
    for indent in indents[1:]:
        while not indent.startswith(prefix):
            prefix = prefix[:-1]
    return prefix


def _dedent(lines: Sequence[str], indent: str) -> list[str]:
    return [line.rstrip()[len(indent) :] if line.strip() else "" for line in lines]


def _reindent(line: str, search_indent: str, file_indent: str) -> str:
    if not line.strip():
        return ""
    if line.startswith(search_indent):
        return file_indent + line[len(search_indent) :].rstrip()
    # A replacement line indented less than the SEARCH part: keep its own indentation.
    return line.rstrip()


def _not_found_hint(lines: Sequence[str], old: Sequence[str]) -> str:
    message = (
        "the SEARCH part does not match the file; it must repeat existing lines exactly, "
        "so copy them from the current file content"
    )
    first = next((line.strip() for line in old if line.strip()), "")
    found = [number for number, line in enumerate(lines, start=1) if line.strip() == first]
    if first and found:
        shown = ", ".join(str(number) for number in found[:5])
        message += f" (its first line appears at line {shown}, but the lines after it differ)"
    elif first:
        message += f" (its first line {first[:80]!r} is not in the file)"
    return message
