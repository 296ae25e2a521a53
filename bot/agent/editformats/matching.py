"""Finding the lines an edit replaces in a file, tolerant of how models copy text (no IO).

Models copy the lines they want to change imperfectly. The search tries, in order, and stops
at the first level that finds anything:

1. the exact text, starting at a line start (``x = 1`` must not match ``max = 1``);
2. the same lines ignoring trailing whitespace and blank lines (added, dropped or doubled);
3. as 2, and also a uniform indentation shift: the model's lines indented consistently more
   or less than the file's. The replacement is then re-indented by the same shift.

More than one match at the first level that finds any is an error: guessing would edit the
wrong place. No match is an error that shows the closest lines of the file (difflib), so the
model can copy them correctly next time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher

from bot.agent.editformats.base import Unit, normalise_newlines
from bot.errors import EditFormatError

# What the searched lines are called in errors, per kind of edit.
_PART = {"block": "the SEARCH part", "hunk": "the old side of the hunk (its ' ' and '-' lines)"}
_FIX = {
    "block": "copy the lines to change from the current file content, exactly",
    "hunk": "copy its context and '-' lines from the current file content, exactly",
}
_EMPTY = {
    "block": "the SEARCH part is empty; copy the lines to change from the file, or use a "
    "'<<<<<<< NEW' block to replace the whole file",
    "hunk": "the hunk has no ' ' or '-' lines, so nothing says where its '+' lines go; "
    "include two or three unchanged lines around them",
}
# Below this similarity the "closest" lines are noise and are not shown.
_MIN_SIMILARITY = 0.5
_MAX_SHOWN_LINES = 15
_MAX_SHOWN_CHARS = 200


@dataclass(frozen=True)
class _Match:
    """Lines ``start`` to ``end`` (exclusive) of the file; the indentation of both sides."""

    start: int
    end: int
    file_indent: str = ""
    search_indent: str = ""


def replace_in(content: str, search: str, replace: str, where: str, unit: Unit) -> str:
    """``content`` with the one place matching ``search`` replaced by ``replace``.

    ``search`` and ``replace`` use ``\\n`` line ends; a CRLF file keeps its CRLF. ``where``
    names the edit in errors (``block 2 (src/app.py)``). Raises EditFormatError when
    ``search`` is blank, matches nothing, or matches more than one place.
    """
    if not search.strip():
        raise EditFormatError(f"{where}: {_EMPTY[unit]}")
    crlf = "\r\n" in content
    text = normalise_newlines(content) if crlf else content
    search, replace = normalise_newlines(search), normalise_newlines(replace)
    replaced = _replace_exact(text, search, replace, where, unit)
    if replaced is None:
        replaced = _replace_tolerant(text, search, replace, where, unit)
    # Keep the file's own line endings: the model only ever sees and writes '\n'.
    return replaced.replace("\n", "\r\n") if crlf else replaced


def _replace_exact(text: str, search: str, replace: str, where: str, unit: Unit) -> str | None:
    starts = _line_aligned_finds(text, search)
    if len(starts) > 1:
        lines = [text.count("\n", 0, start) + 1 for start in starts]
        raise _ambiguous(where, unit, lines)
    if starts:
        return text[: starts[0]] + replace + text[starts[0] + len(search) :]
    return None


def _line_aligned_finds(text: str, search: str) -> list[int]:
    """Where ``search`` occurs as whole lines: from a line start to a line end."""
    found: list[int] = []
    index = text.find(search)
    while index != -1:
        end = index + len(search)
        starts_line = index == 0 or text[index - 1] == "\n"
        # A search without its final newline must still end where a line ends: 'b = 2'
        # is not the start of 'b = 20'.
        ends_line = search.endswith("\n") or end == len(text) or text[end] == "\n"
        if starts_line and ends_line:
            found.append(index)
        index = text.find(search, index + 1)
    return found


def _ambiguous(where: str, unit: Unit, lines: Sequence[int]) -> EditFormatError:
    shown = ", ".join(str(line) for line in lines[:10])
    return EditFormatError(
        f"{where}: {_PART[unit]} matches {len(lines)} places in the file (at lines {shown}); "
        f"include more of the surrounding lines so that it matches exactly one"
    )


def _replace_tolerant(text: str, search: str, replace: str, where: str, unit: Unit) -> str:
    lines = text.split("\n")
    trailing_newline = text.endswith("\n")
    if trailing_newline:
        lines.pop()
    old, new = _trim_blank_edges(_split(search), _split(replace))
    if not old:  # a search of only blank lines, left after trimming
        raise EditFormatError(f"{where}: {_EMPTY[unit]}")
    matches = _find(lines, old, shift=False) or _find(lines, old, shift=True)
    if len(matches) > 1:
        raise _ambiguous(where, unit, [match.start + 1 for match in matches])
    if not matches:
        raise EditFormatError(f"{where}: {_not_found(lines, old, unit)}")
    match = matches[0]
    body = [_reindent(line, match.search_indent, match.file_indent) for line in new]
    result = lines[: match.start] + body + lines[match.end :]
    return "\n".join(result) + ("\n" if trailing_newline else "")


def _trim_blank_edges(old: list[str], new: list[str]) -> tuple[list[str], list[str]]:
    """Drop blank lines around the search, and as many around the replacement where it has them."""
    while old and not old[0].strip():
        old = old[1:]
        if new and not new[0].strip():
            new = new[1:]
    while old and not old[-1].strip():
        old = old[:-1]
        if new and not new[-1].strip():
            new = new[:-1]
    return old, new


def _split(text: str) -> list[str]:
    """The lines of ``text``; a last line without its newline is still a line."""
    lines = text.split("\n")
    if text.endswith("\n"):
        lines.pop()
    return lines


def _find(lines: Sequence[str], old: Sequence[str], *, shift: bool) -> list[_Match]:
    """Every match of ``old`` in ``lines`` by non-blank lines, trailing whitespace ignored.

    With ``shift``, each side's common indentation is removed before comparing.
    """
    present = [(number, line.rstrip()) for number, line in enumerate(lines) if line.strip()]
    wanted = [line.rstrip() for line in old if line.strip()]
    search_indent = _common_indent(wanted) if shift else ""
    wanted = [line[len(search_indent) :] for line in wanted]
    first = wanted[0].lstrip()
    found: list[_Match] = []
    for k in range(len(present) - len(wanted) + 1):
        if present[k][1].lstrip() != first:
            continue  # cheap rejection before building the window
        window = [line for _, line in present[k : k + len(wanted)]]
        file_indent = _common_indent(window) if shift else ""
        if [line[len(file_indent) :] for line in window] == wanted:
            end = present[k + len(wanted) - 1][0] + 1
            found.append(_Match(present[k][0], end, file_indent, search_indent))
    return found


def _common_indent(lines: Sequence[str]) -> str:
    indents = [line[: len(line) - len(line.lstrip())] for line in lines if line.strip()]
    if not indents:
        return ""
    prefix = indents[0]
    for indent in indents[1:]:
        while not indent.startswith(prefix):
            prefix = prefix[:-1]
    return prefix


def _reindent(line: str, search_indent: str, file_indent: str) -> str:
    if not line.strip():
        return ""
    if line.startswith(search_indent):
        return file_indent + line[len(search_indent) :].rstrip()
    # A replacement line indented less than the search: keep its own indentation.
    return line.rstrip()


def _not_found(lines: Sequence[str], old: Sequence[str], unit: Unit) -> str:
    message = f"{_PART[unit]} does not match the file; {_FIX[unit]}"
    first = next((line.strip() for line in old if line.strip()), "")
    found = [number for number, line in enumerate(lines, start=1) if line.strip() == first]
    if found:
        shown = ", ".join(str(number) for number in found[:5])
        message += f" (its first line appears at line {shown}, but the lines after it differ)"
    else:
        message += f" (its first line {first[:80]!r} is not in the file)"
    return message + _closest(lines, old)


def _closest(lines: Sequence[str], old: Sequence[str]) -> str:
    """The file's lines most similar to ``old``, numbered, or ``""`` when none is close."""
    size = min(len(old), len(lines))
    if size == 0:
        return ""
    matcher = SequenceMatcher(autojunk=False)
    # seq2 is the one SequenceMatcher indexes; set it once and vary the window.
    matcher.set_seq2("\n".join(line.strip() for line in old))
    best, best_start = _MIN_SIMILARITY, -1
    for start in range(len(lines) - size + 1):
        matcher.set_seq1("\n".join(line.strip() for line in lines[start : start + size]))
        if matcher.real_quick_ratio() <= best or matcher.quick_ratio() <= best:
            continue
        ratio = matcher.ratio()
        if ratio > best:
            best, best_start = ratio, start
    if best_start < 0:
        return ". No lines of the file are close to it."
    shown = lines[best_start : best_start + min(size, _MAX_SHOWN_LINES)]
    numbered = "\n".join(
        f"{best_start + offset + 1:>5} | {line[:_MAX_SHOWN_CHARS]}"
        for offset, line in enumerate(shown)
    )
    first, last = best_start + 1, best_start + len(shown)
    span = f"line {first}" if first == last else f"lines {first}-{last}"
    return f". The closest lines in the file are {span}:\n{numbered}"
