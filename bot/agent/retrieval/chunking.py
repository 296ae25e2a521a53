"""Split a text file into chunks of roughly 40-80 lines at natural boundaries. Pure.

A chunk ends where the next one can start cleanly: best before a definition at the left
margin (``def``, ``class``, ``function``, ``func``, ``fn`` …, with its decorators and the
comment block just above it), then before an indented definition, then after a blank line
that returns to a shallower indentation, then after any blank line. Among the boundaries of
the same strength inside the window, the one closest to the target size wins; with none,
the chunk is cut at the maximum size. A file no longer than the maximum is one chunk. No
chunk exceeds ``max_chars`` characters: it ends earlier, and a single longer line is cut.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MIN_LINES = 40
TARGET_LINES = 60
MAX_LINES = 80
MAX_CHUNK_CHARS = 4_000
MAX_CHUNKS_PER_FILE = 100

_DEFINITION = re.compile(
    r"\s*(?:(?:export|default|public|private|protected|internal|static|abstract|final|"
    r"override|async|pub(?:\([a-z]+\))?|unsafe|extern|inline|virtual)\s+)*"
    r"(?:def|class|function|func|fn|impl|trait|struct|enum|interface|module|type|"
    r"object|record|namespace)\b(?!\s*[=:.,)\]]|\()"
)
_DECORATOR = re.compile(r"\s*@[A-Za-z_]")
_COMMENT = re.compile(r"\s*(?:#|//|/\*|\*|--|;;)")


@dataclass(frozen=True)
class TextChunk:
    """Lines ``start_line``..``end_line`` (1-based, inclusive) of one file."""

    path: str
    start_line: int
    end_line: int
    text: str


def chunk_text(
    path: str,
    text: str,
    *,
    min_lines: int = MIN_LINES,
    target_lines: int = TARGET_LINES,
    max_lines: int = MAX_LINES,
    max_chars: int = MAX_CHUNK_CHARS,
    max_chunks: int = MAX_CHUNKS_PER_FILE,
) -> list[TextChunk]:
    """The chunks of ``text`` in file order; at most ``max_chunks`` (the rest of a huge file
    is left out). Whitespace-only chunks are dropped; an empty file has none."""
    if not 0 < min_lines <= target_lines <= max_lines:
        raise ValueError(f"need 0 < min_lines <= target_lines <= max_lines, got "
                         f"{min_lines}, {target_lines}, {max_lines}")
    lines = text.splitlines()
    strengths = [_boundary_strength(lines, i) for i in range(len(lines))]
    chunks: list[TextChunk] = []
    start = 0
    while start < len(lines) and len(chunks) < max_chunks:
        end = _chunk_end(strengths, start, min_lines, target_lines, max_lines)
        end = _fit_chars(lines, start, end, max_chars)
        body = "\n".join(lines[start:end])[:max_chars]
        if body.strip():
            chunks.append(TextChunk(path, start + 1, end, body))
        start = end
    return chunks


def _chunk_end(strengths: list[int], start: int, min_lines: int, target: int,
               max_lines: int) -> int:
    """Index one past the last line of the chunk that begins at ``start``."""
    total = len(strengths)
    if total - start <= max_lines:
        return total
    best, best_key = start + max_lines, (0, 0)
    for cut in range(start + min_lines, start + max_lines + 1):
        key = (strengths[cut], -abs(cut - start - target))
        if strengths[cut] and key > best_key:
            best, best_key = cut, key
    return best


def _fit_chars(lines: list[str], start: int, end: int, max_chars: int) -> int:
    size = 0
    for index in range(start, end):
        size += len(lines[index]) + 1
        if size > max_chars:
            return max(index, start + 1)
    return end


def _boundary_strength(lines: list[str], index: int) -> int:
    """How good a place it is to start a chunk at line ``index``: 0 (none) to 4 (best)."""
    if index == 0:
        return 0
    line = lines[index]
    if not line.strip():
        return 0
    opener = _opens_definition(lines, index)
    if opener is not None:
        return 4 if _indent(lines[opener]) == 0 else 3
    previous = lines[index - 1]
    if previous.strip():
        return 0
    prior = next((lines[i] for i in range(index - 2, -1, -1) if lines[i].strip()), "")
    return 2 if _indent(line) < _indent(prior) else 1


def _opens_definition(lines: list[str], index: int) -> int | None:
    """``index`` when a definition's leading block (comments, decorators, the definition
    line) starts at this line; that block's definition line decides the strength."""
    above = lines[index - 1]
    if above.strip() and (_COMMENT.match(above) or _DECORATOR.match(above)):
        return None  # the block started higher up
    cursor = index
    while cursor < len(lines) and (_COMMENT.match(lines[cursor])
                                   or _DECORATOR.match(lines[cursor])):
        cursor += 1
    if cursor < len(lines) and _DEFINITION.match(lines[cursor]):
        return cursor
    return None


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())
