"""Syntax check of one file with its tree-sitter grammar: where the parser found an error.

The agent loop calls ``syntax_errors`` on a file the model edited, before it pays for a
test run: an edit that leaves an ERROR or MISSING node in the tree is sent back to the
model with the line and column. tree-sitter recovers from errors, so one mistake gives one
problem, not a cascade; an ERROR node is reported once, not once per node inside it.
"""

from __future__ import annotations

from dataclasses import dataclass

import tree_sitter

from bot.agent.codeindex.languages import language_of, parse

# Enough to show the model what to fix; a file that is all errors needs no longer list.
MAX_PROBLEMS = 20
_SNIPPET_CHARS = 30


@dataclass(frozen=True)
class SyntaxProblem:
    """One syntax error: 1-based line and column (in characters) and a short message."""

    line: int
    column: int
    message: str

    def __str__(self) -> str:
        return f"{self.line}:{self.column}: {self.message}"


def syntax_errors(path: str, text: str) -> list[SyntaxProblem]:
    """The syntax errors of ``text`` read as the file at ``path``, in source order.

    An empty list means the file parses, or that its language (by suffix) is not one
    tree-sitter is set up for here: an unknown language is never reported as broken.
    At most MAX_PROBLEMS are returned.
    """
    language = language_of(path)
    if language is None:
        return []
    source = text.encode("utf-8", errors="surrogatepass")
    root = parse(language, source).root_node
    if not root.has_error:
        return []
    lines = source.split(b"\n")
    problems = [_problem(node, lines) for node in _error_nodes(root)]
    return sorted(problems, key=lambda p: (p.line, p.column))[:MAX_PROBLEMS]


def _error_nodes(root: tree_sitter.Node) -> list[tree_sitter.Node]:
    """The outermost ERROR and every MISSING node, visiting only subtrees that hold one."""
    found: list[tree_sitter.Node] = []
    stack = [root]
    while stack and len(found) < MAX_PROBLEMS:
        node = stack.pop()
        if node.is_missing or node.is_error:
            found.append(node)
            continue
        stack.extend(
            child for child in reversed(node.children) if child.has_error or child.is_missing
        )
    return found


def _problem(node: tree_sitter.Node, lines: list[bytes]) -> SyntaxProblem:
    row, byte_column = node.start_point
    prefix = lines[row][:byte_column] if row < len(lines) else b""
    column = len(prefix.decode("utf-8", errors="replace")) + 1
    if node.is_missing:
        return SyntaxProblem(row + 1, column, f"missing {_describe(node.type)}")
    snippet = _snippet(node)
    message = f"unexpected {snippet!r}" if snippet else "unexpected end of input"
    return SyntaxProblem(row + 1, column, message)


def _describe(node_type: str) -> str:
    # MISSING nodes are tokens (`)`, `;`) or, rarely, a named node such as `identifier`.
    return node_type if node_type.isidentifier() else f"'{node_type}'"


def _snippet(node: tree_sitter.Node) -> str:
    raw = (node.text or b"").decode("utf-8", errors="replace")
    first = raw.strip().split("\n", 1)[0].strip()
    if len(first) > _SNIPPET_CHARS:
        return first[: _SNIPPET_CHARS - 1] + "…"
    return first
