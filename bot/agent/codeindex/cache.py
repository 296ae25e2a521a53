"""The per-repository symbol cache: one SQLite file, a row per file keyed by content hash.

A row holds the symbols of one file as compact JSON, with the SHA-256 of the bytes they
came from. Re-indexing reads every file (hashing is cheap) but re-parses only those whose
hash changed. Two processes may index the same repository at once: the database runs in
WAL mode with a busy timeout, and every write is one short ``BEGIN IMMEDIATE`` transaction,
so the second writer waits instead of failing. The cache is only a cache: a row for a
different extractor version is ignored, and a file that is not a database is replaced.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import tree_sitter

from bot.agent.codeindex.symbols import FileSymbols, Symbol
from bot.errors import StoreError

CACHE_FILE = "symbols.sqlite3"
# Bump when the queries or the Symbol fields change: older rows are then re-parsed.
EXTRACTOR_VERSION = f"1/tree-sitter-{tree_sitter.LANGUAGE_VERSION}"
BUSY_TIMEOUT_S = 30.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY,
    sha256 TEXT NOT NULL,
    version TEXT NOT NULL,
    language TEXT NOT NULL,
    symbols TEXT NOT NULL
)
"""


class SymbolCache:
    """The cached symbols of one repository; use as a context manager to close the file."""

    def __init__(self, cache_dir: Path) -> None:
        self.path = cache_dir / CACHE_FILE
        try:
            cache_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"symbol cache folder {cache_dir}: {exc}") from exc
        try:
            try:
                self._db = _connect(self.path)
            except sqlite3.OperationalError:
                raise  # locked or unreadable: not ours to delete
            except sqlite3.DatabaseError:
                # Not a database (truncated or overwritten): it only held derived data.
                self.path.unlink(missing_ok=True)
                self._db = _connect(self.path)
        except sqlite3.Error as exc:
            raise StoreError(f"symbol cache {self.path}: {exc}") from exc

    def __enter__(self) -> SymbolCache:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the database connection."""
        self._db.close()

    def hashes(self) -> dict[str, str]:
        """Path -> SHA-256 of every row written by this extractor version."""
        rows = self._query("SELECT path, sha256 FROM files WHERE version = ?", (EXTRACTOR_VERSION,))
        return {path: digest for path, digest in rows}

    def paths(self) -> set[str]:
        """Every path with a row, whatever its version."""
        return {path for (path,) in self._query("SELECT path FROM files", ())}

    def load(self, paths: Iterable[str]) -> dict[str, FileSymbols]:
        """The cached symbols of ``paths`` (those with a current row)."""
        wanted = set(paths)
        rows = self._query(
            "SELECT path, language, symbols FROM files WHERE version = ?", (EXTRACTOR_VERSION,)
        )
        return {
            path: _decode(path, language, blob) for path, language, blob in rows if path in wanted
        }

    def update(self, changed: dict[str, tuple[str, FileSymbols]], removed: Iterable[str]) -> None:
        """Write ``changed`` (path -> (sha256, symbols)) and delete ``removed``, atomically."""
        rows = [
            (path, digest, EXTRACTOR_VERSION, symbols.language, _encode(symbols))
            for path, (digest, symbols) in changed.items()
        ]
        gone = [(path,) for path in removed]
        if not rows and not gone:
            return
        with self._transaction():
            self._db.executemany("INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?)", rows)
            self._db.executemany("DELETE FROM files WHERE path = ?", gone)

    def _query(self, sql: str, params: tuple[str, ...]) -> list[tuple[str, ...]]:
        try:
            return list(self._db.execute(sql, params))
        except sqlite3.Error as exc:
            raise StoreError(f"symbol cache {self.path}: {exc}") from exc

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self._db.rollback()
                raise
            self._db.commit()
        except sqlite3.Error as exc:
            raise StoreError(f"symbol cache {self.path}: {exc}") from exc


def _use_wal(db: sqlite3.Connection) -> None:
    """Switch the file to WAL (it stays so). The switch needs the file to itself and SQLite
    may answer "database is locked" at once, without waiting, while another process opens
    the same new cache: try again until the busy timeout has passed."""
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            if db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                db.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _connect(path: Path) -> sqlite3.Connection:
    # isolation_level=None: transactions are explicit (BEGIN IMMEDIATE above).
    db = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
    try:
        db.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        _use_wal(db)
        db.execute("PRAGMA synchronous = NORMAL")
        db.execute(_SCHEMA)
    except sqlite3.DatabaseError:
        db.close()
        raise
    return db


def _encode(symbols: FileSymbols) -> str:
    # Compact rows: [name, kind, line, signature] per definition, [name, kind, line] per
    # reference; the path is the row's key.
    return json.dumps(
        {
            "d": [[s.name, s.kind, s.line, s.signature] for s in symbols.definitions],
            "r": [[s.name, s.kind, s.line] for s in symbols.references],
        },
        separators=(",", ":"),
        ensure_ascii=False,
    )


def _decode(path: str, language: str, blob: str) -> FileSymbols:
    data = json.loads(blob)
    return FileSymbols(
        path=path,
        language=language,
        definitions=tuple(Symbol(n, k, path, line, sig) for n, k, line, sig in data["d"]),
        references=tuple(Symbol(n, k, path, line) for n, k, line in data["r"]),
    )
