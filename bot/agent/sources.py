"""Where the agent's code context comes from: the file tree, the symbol index and its repo
map, and semantic retrieval over code chunks, all cached per repository.

``collect`` runs once per attempt, before the first prompt; the loop then fits what it
returns to the model's context window (see ``bot.agent.loop``). The caches live under
``cache_dir`` (one folder per repository), so a second job on the same repository re-indexes
only the files whose content changed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from bot.agent.codeindex import RepoIndex, index_repository, rank_files, repo_map
from bot.agent.context import IssueTerms, read_tree, score_file
from bot.errors import ForgebotError

log = logging.getLogger(__name__)

Retrieval = Literal["off", "hashing", "minilm"]
MAX_SNIPPETS = 8


@dataclass(frozen=True)
class Snippet:
    path: str
    start_line: int
    end_line: int
    text: str


@dataclass
class Sources:
    """The context of one attempt, before fitting: every text file, the files ranked best
    first, the symbol index (for the map) and the retrieved snippets."""

    texts: dict[str, str]
    ranked: list[str]
    index: RepoIndex
    task_text: str
    recent: tuple[str, ...] = ()
    snippets: list[Snippet] = field(default_factory=list)
    stats: dict[str, object] = field(default_factory=dict)

    @property
    def files(self) -> list[str]:
        return sorted(self.texts)

    def repo_map(self, budget_tokens: int, count_tokens: Callable[[str], int]) -> str:
        return repo_map(self.index, self.task_text, self.recent, budget_tokens, count_tokens)


def collect(
    root: Path,
    task_text: str,
    *,
    cache_dir: Path | None,
    retrieval: Retrieval = "off",
    recent_files: Sequence[str] = (),
) -> Sources:
    """Read the tree under ``root``, index it and rank its files for ``task_text``.

    Without ``cache_dir`` nothing is cached (an in-memory index; retrieval off). A cache or
    retrieval failure is logged and the context is built without it: context is help for
    the model, never a reason to fail the job.
    """
    started = time.monotonic()
    texts = dict(read_tree(root))
    stats: dict[str, object] = {"files": len(texts)}
    index = _index(root, texts, cache_dir, stats)
    terms = IssueTerms.of(task_text)
    # The graph rank orders code files; the keyword score also covers files the index does
    # not parse (Markdown, YAML, languages without a grammar).
    graph = dict(rank_files(index, task_text, recent_files))
    ranked = sorted(texts, key=lambda p: (-(score_file(p, texts[p], terms) / 100
                                            + 5 * graph.get(p, 0.0)), len(texts[p]), p))
    sources = Sources(texts, ranked, index, task_text, tuple(recent_files), stats=stats)
    if retrieval != "off" and cache_dir is not None:
        sources.snippets = _retrieve(root, texts, task_text, cache_dir / "chunks",
                                     embedder=retrieval, stats=stats)
    stats["seconds"] = round(time.monotonic() - started, 3)
    return sources


def _index(root: Path, texts: dict[str, str], cache_dir: Path | None,
           stats: dict[str, object]) -> RepoIndex:
    if cache_dir is None:
        return RepoIndex.from_sources({p: t.encode("utf-8") for p, t in texts.items()})
    try:
        index, done = index_repository(root, cache_dir / "symbols", files=list(texts))
    except (ForgebotError, OSError) as exc:
        log.warning("symbol index unavailable", extra={"error": type(exc).__name__})
        return RepoIndex.from_sources({p: t.encode("utf-8") for p, t in texts.items()})
    stats.update(parsed=done.parsed, reused=done.reused, removed=done.removed)
    return index


def _retrieve(root: Path, texts: dict[str, str], task_text: str, folder: Path, *,
              embedder: Retrieval, stats: dict[str, object]) -> list[Snippet]:
    try:
        from bot.agent.retrieval import CodeRetriever

        with CodeRetriever(folder, embedder_name=embedder) as retriever:
            update = retriever.update(root, list(texts))
            chunks = retriever.query(task_text, MAX_SNIPPETS)
    except Exception as exc:  # chromadb and numpy raise their own types; never fatal
        log.warning("retrieval unavailable", extra={"error": type(exc).__name__})
        return []
    stats.update(embedded=update.embedded, chunks_reused=update.reused)
    return [Snippet(c.path, c.start_line, c.end_line, c.text) for c in chunks]
