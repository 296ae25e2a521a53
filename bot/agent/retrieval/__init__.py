"""Semantic retrieval over a repository's code: chunk files, embed the chunks, find the ones
closest to a task.

    with CodeRetriever(data_dir / "retrieval" / forge / repo, "minilm") as retriever:
        retriever.update(worktree, files)        # embeds only what changed since last time
        for chunk in retriever.query(task_text, k=8):
            ...                                  # chunk.path, .start_line, .end_line, .text

Embedders: ``minilm`` (all-MiniLM-L6-v2 in numpy, from a PyPI package, offline) and
``hashing`` (identifier pieces hashed into a vector: fast, keyword quality).
"""

from bot.agent.retrieval.chunking import TextChunk, chunk_text
from bot.agent.retrieval.embedders import (
    EMBEDDER_NAMES,
    Embedder,
    HashingEmbedder,
    MiniLMEmbedder,
    build_embedder,
)
from bot.agent.retrieval.store import Chunk, CodeRetriever, RetrievalError, UpdateStats

__all__ = [
    "EMBEDDER_NAMES",
    "Chunk",
    "CodeRetriever",
    "Embedder",
    "HashingEmbedder",
    "MiniLMEmbedder",
    "RetrievalError",
    "TextChunk",
    "UpdateStats",
    "build_embedder",
    "chunk_text",
]
