"""Which tree-sitter grammar parses which file, loaded once per process.

Grammars come from the per-language PyPI wheels (``tree-sitter-python`` and friends), which
carry the compiled parser inside the package: nothing is downloaded at run time. A file's
language is decided by its suffix alone, never by its content, so a hostile file cannot pick
a parser for itself.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

import tree_sitter
import tree_sitter_c_sharp
import tree_sitter_go
import tree_sitter_java
import tree_sitter_javascript
import tree_sitter_python
import tree_sitter_typescript

from bot.agent.codeindex.queries import QUERIES

# Language name -> the function of its wheel that returns the compiled grammar.
_GRAMMARS: dict[str, Callable[[], object]] = {
    "python": tree_sitter_python.language,
    "javascript": tree_sitter_javascript.language,
    "typescript": tree_sitter_typescript.language_typescript,
    "tsx": tree_sitter_typescript.language_tsx,
    "go": tree_sitter_go.language,
    "java": tree_sitter_java.language,
    "csharp": tree_sitter_c_sharp.language,
}

SUFFIXES: dict[str, str] = {
    ".py": "python",
    ".pyi": "python",
    ".js": "javascript",
    ".jsx": "javascript",
    ".mjs": "javascript",
    ".cjs": "javascript",
    ".ts": "typescript",
    ".mts": "typescript",
    ".cts": "typescript",
    ".tsx": "tsx",
    ".go": "go",
    ".java": "java",
    ".cs": "csharp",
}

LANGUAGES: frozenset[str] = frozenset(_GRAMMARS)


def language_of(path: str) -> str | None:
    """The language name of ``path`` from its suffix (case-insensitive), or None if unknown.

    ``.ts`` and ``.tsx`` are different grammars (``typescript`` and ``tsx``): JSX syntax is
    an error in a ``.ts`` file and a type assertion like ``<T>x`` is one in a ``.tsx`` file.
    """
    name = path.rsplit("/", 1)[-1]
    dot = name.rfind(".")
    if dot <= 0:
        return None
    return SUFFIXES.get(name[dot:].lower())


@cache
def grammar(language: str) -> tree_sitter.Language:
    """The compiled grammar of ``language`` (a name from LANGUAGES); KeyError if unknown."""
    return tree_sitter.Language(_GRAMMARS[language]())


@cache
def symbol_query(language: str) -> tree_sitter.Query:
    """The compiled definitions-and-references query of ``language``."""
    return tree_sitter.Query(grammar(language), QUERIES[language])


def parse(language: str, source: bytes) -> tree_sitter.Tree:
    """Parse ``source`` with the grammar of ``language``.

    A parser is made per call: they are cheap next to parsing, and a shared one would not
    be safe across the threads of a worker.
    """
    return tree_sitter.Parser(grammar(language)).parse(source)
