"""The agent's code index: tree-sitter symbols, a cached per-repository index, a ranked
repo map fitted to a token budget, and a syntax check for edited files.

    index, stats = index_repository(workdir, data_dir / "index" / forge / repo)
    text = repo_map(index, task_text, recent_files, 2048, count_tokens)
    problems = syntax_errors("app/models.py", new_text)

Languages: Python, JavaScript, TypeScript (``.ts`` and ``.tsx``), Go, Java and C#, from the
per-language tree-sitter wheels (no download at run time).
"""

from __future__ import annotations

from bot.agent.codeindex.index import IndexStats, RepoIndex, index_repository
from bot.agent.codeindex.languages import LANGUAGES, language_of
from bot.agent.codeindex.repomap import rank_files, repo_map
from bot.agent.codeindex.symbols import FileSymbols, Symbol, extract_symbols
from bot.agent.codeindex.syntax import SyntaxProblem, syntax_errors

__all__ = [
    "LANGUAGES",
    "FileSymbols",
    "IndexStats",
    "RepoIndex",
    "Symbol",
    "SyntaxProblem",
    "extract_symbols",
    "index_repository",
    "language_of",
    "rank_files",
    "repo_map",
    "syntax_errors",
]
