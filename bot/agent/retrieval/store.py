"""Code chunks of one repository in a chromadb collection, kept up to date incrementally.

One ``CodeRetriever`` owns one folder (the caller picks it, e.g.
``<data_dir>/retrieval/<forge>/<repo>``) holding a chromadb ``PersistentClient`` database with
one collection per embedder. Each chunk carries its file's content hash, so ``update`` embeds
only the files whose text changed since the last update and deletes the chunks of changed
and vanished files. Every update holds an exclusive file lock on the folder, so two workers
indexing the same repository take turns instead of interleaving.

chromadb never embeds anything itself here: the collection is created with our embedding
function (its default one would try to download an ONNX model) and telemetry is off, so
nothing here touches the network. Files are read with ``bot.agent.context.read_text``: under
``root`` only, never through a symbolic link, text only, at most 100 KB.
"""

from __future__ import annotations

import fcntl
import hashlib
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import chromadb
from chromadb.api.client import Client
from chromadb.api.types import Embeddable, EmbeddingFunction, Embeddings, Space
from chromadb.config import Settings

from bot.agent.context import read_text
from bot.agent.editformats import validate_path
from bot.agent.retrieval.chunking import TextChunk, chunk_text
from bot.agent.retrieval.embedders import Embedder, build_embedder
from bot.errors import EditFormatError, ForgebotError

# Part of every file's hash: changing how files are chunked or embedded re-embeds them all.
INDEX_FORMAT = "chunks-v1"
MAX_TOTAL_CHUNKS = 20_000
EMBED_BATCH = 64
_PAGE = 2_000
_LOCK_NAME = "forgebot-retrieval.lock"


class RetrievalError(ForgebotError):
    """The retrieval store could not be opened, read or written."""


@dataclass(frozen=True)
class Chunk:
    """A stretch of a file (lines ``start_line``..``end_line``, 1-based) and how well it
    matches a query: cosine similarity, higher is better."""

    path: str
    start_line: int
    end_line: int
    text: str
    score: float


@dataclass(frozen=True)
class UpdateStats:
    """What one ``update`` did: chunks embedded anew, chunks kept as they were, chunks
    deleted, files left out because the collection reached its chunk limit, and time."""

    embedded: int
    reused: int
    removed: int
    seconds: float
    skipped_files: int = 0


@dataclass
class _StoredFile:
    digest: str
    expected: int  # how many chunks the file had when it was stored
    ids: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        # An update interrupted half-way through a file leaves fewer chunks than expected.
        return len(self.ids) == self.expected


@dataclass(frozen=True)
class _PendingFile:
    path: str
    digest: str
    text: str


class _ChromaEmbedding(EmbeddingFunction[Embeddable]):
    """Our embedder seen through chromadb's interface, so the collection never falls back
    to chromadb's default model."""

    def __init__(self, embedder: Embedder) -> None:
        self._embedder = embedder

    def __call__(self, input: Embeddable) -> Embeddings:
        texts = [item for item in input if isinstance(item, str)]
        if len(texts) != len(input):
            raise RetrievalError("the code retrieval store embeds text only")
        return list(self._embedder.embed(texts))

    @staticmethod
    def name() -> str:
        return "forgebot"

    def default_space(self) -> Space:
        return "cosine"

    def get_config(self) -> dict[str, Any]:
        return {"embedder": self._embedder.name}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> _ChromaEmbedding:
        return _ChromaEmbedding(build_embedder(str(config["embedder"])))


class CodeRetriever:
    """The chunk store of one repository. Use as a context manager, or call ``close``."""

    def __init__(
        self,
        folder: Path,
        embedder_name: str = "minilm",
        *,
        embedder: Embedder | None = None,
        max_chunks: int = MAX_TOTAL_CHUNKS,
    ) -> None:
        """Open (creating if needed) the store in ``folder``.

        ``embedder`` shares an already loaded embedder between retrievers; otherwise one is
        built from ``embedder_name`` (``minilm`` or ``hashing``; ConfigError for others).
        ``max_chunks`` bounds the collection: files past it are skipped, and counted.
        """
        self._embedder = embedder or build_embedder(embedder_name)
        self._folder = folder
        self._max_chunks = max_chunks
        try:
            folder.mkdir(parents=True, exist_ok=True)
            client = chromadb.PersistentClient(
                path=str(folder),
                settings=Settings(anonymized_telemetry=False, allow_reset=False),
            )
            if not isinstance(client, Client):  # close() lives on the concrete class
                raise RetrievalError(f"chromadb returned an unexpected client {type(client)}")
        except (OSError, ValueError, chromadb.errors.ChromaError) as exc:
            raise RetrievalError(f"cannot open the retrieval store in {folder}: {exc}") from exc
        self._client = client
        try:
            self._collection = client.get_or_create_collection(
                name=f"code-{self._embedder.name}",
                embedding_function=_ChromaEmbedding(self._embedder),
                configuration={"hnsw": {"space": "cosine"}},
            )
        except (ValueError, chromadb.errors.ChromaError) as exc:
            client.close()
            raise RetrievalError(f"cannot open the code collection in {folder}: {exc}") from exc

    def __enter__(self) -> CodeRetriever:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Release the database (idempotent)."""
        self._client.close()

    @property
    def embedder_name(self) -> str:
        """The name of the embedder this store's vectors come from."""
        return self._embedder.name

    def count(self) -> int:
        """How many chunks the store holds."""
        return self._collection.count()

    def update(self, root: Path, files: Iterable[str]) -> UpdateStats:
        """Bring the store in line with ``files`` (paths relative to ``root``: the complete
        list of the repository's files to index).

        Chunks of unchanged files are kept; files that changed are re-chunked and
        re-embedded; chunks of files no longer listed, or no longer readable as text, are
        deleted. Invalid paths (absolute, ``..``, inside ``.git``) are ignored. A ``root``
        that is not a folder is a RetrievalError and changes nothing.
        """
        started = time.perf_counter()
        if not root.is_dir():
            # Otherwise every file would read as deleted and the whole index would go.
            raise RetrievalError(f"cannot index {root}: not a folder")
        root = root.resolve()
        with self._locked():
            try:
                stored = self._stored_files()
                pending, reused = self._plan(root, files, stored)
                stale = [i for path, entry in stored.items() if path not in reused
                         for i in entry.ids]
                self._delete(stale)
                kept = sum(len(stored[path].ids) for path in reused)
                embedded, skipped = self._embed_files(list(pending.values()),
                                                      room=self._max_chunks - kept)
            except chromadb.errors.ChromaError as exc:
                raise RetrievalError(f"cannot update the retrieval store in {self._folder}: "
                                     f"{exc}") from exc
        return UpdateStats(embedded=embedded, reused=kept, removed=len(stale),
                           seconds=time.perf_counter() - started, skipped_files=skipped)

    def query(self, text: str, k: int) -> list[Chunk]:
        """The ``k`` chunks most similar to ``text``, best first (fewer if the store holds
        fewer; none for an empty query)."""
        total = self._collection.count()
        if k <= 0 or total == 0 or not text.strip():
            return []
        vector = self._embedder.embed([text])[0]
        try:
            found = self._collection.query(
                query_embeddings=[vector], n_results=min(k, total),
                include=["documents", "metadatas", "distances"],
            )
        except chromadb.errors.ChromaError as exc:
            raise RetrievalError(f"query failed in {self._folder}: {exc}") from exc
        documents = (found["documents"] or [[]])[0]
        metadatas = (found["metadatas"] or [[]])[0]
        distances = (found["distances"] or [[]])[0]
        return [
            Chunk(path=str(meta["path"]), start_line=_int(meta["start_line"]),
                  end_line=_int(meta["end_line"]), text=doc, score=1.0 - float(distance))
            for doc, meta, distance in zip(documents, metadatas, distances, strict=True)
        ]

    # ----------------------------------------------------------------- internals

    def _plan(self, root: Path, files: Iterable[str], stored: dict[str, _StoredFile]
              ) -> tuple[dict[str, _PendingFile], set[str]]:
        """Files that need embedding, and the paths whose stored chunks are still right."""
        pending: dict[str, _PendingFile] = {}
        reused: set[str] = set()
        for raw in files:
            path = _valid_path(raw)
            if path is None or path in pending or path in reused:
                continue
            text = read_text(root, path)
            if text is None:
                continue
            digest = hashlib.sha256(f"{INDEX_FORMAT}\0{text}".encode()).hexdigest()
            entry = stored.get(path)
            if entry is not None and entry.digest == digest and entry.complete:
                reused.add(path)
            else:
                pending[path] = _PendingFile(path, digest, text)
        return pending, reused

    def _embed_files(self, pending: list[_PendingFile], room: int) -> tuple[int, int]:
        """Chunk, embed and add ``pending`` files within ``room`` chunks; returns (chunks
        embedded, files skipped for lack of room)."""
        batch: list[tuple[_PendingFile, int, int, TextChunk]] = []
        embedded = skipped = 0
        for item in pending:
            chunks = chunk_text(item.path, item.text)
            if len(chunks) > room:
                skipped += 1
                continue
            room -= len(chunks)
            batch.extend((item, index, len(chunks), chunk) for index, chunk in enumerate(chunks))
            while len(batch) >= EMBED_BATCH:
                embedded += self._add(batch[:EMBED_BATCH])
                batch = batch[EMBED_BATCH:]
        if batch:
            embedded += self._add(batch)
        return embedded, skipped

    def _add(self, batch: Sequence[tuple[_PendingFile, int, int, TextChunk]]) -> int:
        # The path goes into the embedded text: a task often names the file it is about.
        vectors = self._embedder.embed([f"{c.path}\n{c.text}" for _f, _i, _n, c in batch])
        self._collection.add(
            ids=[_chunk_id(f.path, i) for f, i, _n, _c in batch],
            embeddings=vectors,
            documents=[c.text for _f, _i, _n, c in batch],
            metadatas=[{"path": f.path, "start_line": c.start_line, "end_line": c.end_line,
                        "digest": f.digest, "chunks": n} for f, _i, n, c in batch],
        )
        return len(batch)

    def _delete(self, ids: list[str]) -> None:
        for start in range(0, len(ids), _PAGE):
            self._collection.delete(ids=ids[start : start + _PAGE])

    def _stored_files(self) -> dict[str, _StoredFile]:
        files: dict[str, _StoredFile] = {}
        offset = 0
        while True:
            page = self._collection.get(include=["metadatas"], limit=_PAGE, offset=offset)
            for chunk_id, meta in zip(page["ids"], page["metadatas"] or [], strict=True):
                path, digest = str(meta["path"]), str(meta["digest"])
                entry = files.setdefault(path, _StoredFile(digest, _int(meta["chunks"])))
                if entry.digest != digest:
                    entry.expected = -1  # mixed versions of one file: never complete
                entry.ids.append(chunk_id)
            if len(page["ids"]) < _PAGE:
                return files
            offset += _PAGE

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with open(self._folder / _LOCK_NAME, "a+b") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def _valid_path(raw: str) -> str | None:
    try:
        return validate_path(raw)
    except EditFormatError:
        return None


def _chunk_id(path: str, index: int) -> str:
    return f"{hashlib.sha256(path.encode()).hexdigest()[:24]}:{index}"


def _int(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise RetrievalError(f"the retrieval store holds a malformed chunk ({value!r})")
    return value
