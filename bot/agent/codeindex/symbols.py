"""Definitions and references of one source file: a pure function of its path and bytes.

``extract_symbols`` parses with the file's tree-sitter grammar and runs the language's tag
query (``queries.py``). The result carries plain values only (no tree-sitter objects), so
it can be cached, compared and sent between processes. Source is hostile input: whatever
it contains, the worst outcome is fewer symbols, and a signature line is cut short.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, NamedTuple

import tree_sitter

from bot.agent.codeindex.languages import language_of, parse, symbol_query

Role = Literal["definition", "reference"]
# A signature line longer than this is cut: the map shows where a definition is, not all of it.
MAX_SIGNATURE_CHARS = 120
# Names longer than this are not identifiers anyone types in an issue; they bloat the cache.
MAX_NAME_CHARS = 200


class Symbol(NamedTuple):
    """One definition or reference: the identifier, what it is and where (1-based line).

    A NamedTuple rather than a frozen dataclass: an index holds tens of thousands of them
    and a warm cache builds them all from JSON, where a tuple is several times cheaper.

    ``kind`` is ``function``, ``method``, ``class``, ``interface``, ``struct``, ``enum``,
    ``type``, ``constant``, ``constructor`` or ``property`` for a definition, and ``call``,
    ``class``, ``type``, ``import`` or ``attribute`` for a reference. ``signature`` is the
    definition's first source line (indentation kept, right-stripped); empty on references.
    """

    name: str
    kind: str
    path: str
    line: int
    signature: str = ""


@dataclass(frozen=True)
class FileSymbols:
    """What one file defines and references, each in source order."""

    path: str
    language: str
    definitions: tuple[Symbol, ...]
    references: tuple[Symbol, ...]


def extract_symbols(path: str, source: bytes) -> FileSymbols | None:
    """The definitions and references of ``source``, read as the file at ``path``.

    None when the suffix of ``path`` names no supported language. A file with syntax
    errors still gives the symbols tree-sitter could recover around them.
    """
    language = language_of(path)
    if language is None:
        return None
    tree = parse(language, source)
    lines = source.split(b"\n")
    tagged = _tag(symbol_query(language), tree.root_node)
    definitions: list[Symbol] = []
    references: list[Symbol] = []
    for _start, (role, kind, node) in sorted(tagged.items()):
        name = _text(node)
        if not name or len(name) > MAX_NAME_CHARS:
            continue
        row = node.start_point.row
        if role == "definition":
            if kind == "constant" and language == "python" and not _looks_constant(name):
                continue
            definitions.append(Symbol(name, kind, path, row + 1, _signature(lines[row])))
        else:
            references.append(Symbol(name, kind, path, row + 1))
    return FileSymbols(path, language, tuple(definitions), tuple(references))


def _tag(
    query: tree_sitter.Query, root: tree_sitter.Node
) -> dict[int, tuple[Role, str, tree_sitter.Node]]:
    """Start byte -> (role, kind, node), keeping per node the best capture.

    Definitions beat references; among captures of one role the lower pattern index (the
    pattern written first, the more specific) wins.
    """
    best: dict[int, tuple[int, Role, str, tree_sitter.Node]] = {}
    for pattern, captures in tree_sitter.QueryCursor(query).matches(root):
        for capture, nodes in captures.items():
            role_text, _, kind = capture.partition(".")
            role: Role = "definition" if role_text == "definition" else "reference"
            rank = pattern if role == "definition" else 1_000_000 + pattern
            for node in nodes:
                current = best.get(node.start_byte)
                if current is None or rank < current[0]:
                    best[node.start_byte] = (rank, role, kind, node)
    return {start: (role, kind, node) for start, (_r, role, kind, node) in best.items()}


def _text(node: tree_sitter.Node) -> str:
    raw = node.text or b""
    return raw.decode("utf-8", errors="replace").strip()


def _signature(line: bytes) -> str:
    text = line.decode("utf-8", errors="replace").rstrip().expandtabs(4)
    if len(text) > MAX_SIGNATURE_CHARS:
        return text[: MAX_SIGNATURE_CHARS - 1] + "…"
    return text


def _looks_constant(name: str) -> bool:
    # Python has no const: module-level ALL_CAPS names are the constants worth mapping,
    # `log = ...` is noise.
    return any(c.isalpha() for c in name) and name == name.upper()
