"""Index a repository's source files into a RepoIndex, re-parsing only what changed.

The IO layer around ``extract_symbols``: it lists the files (or takes the caller's list),
reads each one under the root without following symbolic links, hashes it, and asks the
per-repository SymbolCache for the rows it already has. Files whose hash matches are
reused; the rest are parsed and written back; rows for files no longer indexed are removed.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from bot.agent.codeindex.cache import SymbolCache
from bot.agent.codeindex.languages import language_of
from bot.agent.codeindex.symbols import FileSymbols, Symbol, extract_symbols
from bot.agent.context import SKIPPED_DIRS, read_text
from bot.agent.editformats import validate_path
from bot.errors import EditFormatError

# Larger files are generated or data (tables, bundles, fixtures), not code to map.
MAX_INDEX_BYTES = 256_000
# A bound on work per job: a monorepo past this is indexed by its first files in path order.
MAX_INDEX_FILES = 20_000


@dataclass(frozen=True)
class IndexStats:
    """What one ``index_repository`` call did.

    ``parsed``: files parsed now (new or changed); ``reused``: files taken from the cache;
    ``removed``: cache rows dropped for files no longer indexed; ``skipped``: source files
    that were missing, unreadable, binary, not UTF-8, too large or symbolic links (a path
    that could not name a file under the root, such as ``../x.py``, is ignored uncounted);
    ``seconds``: wall-clock time of the call.
    """

    parsed: int
    reused: int
    removed: int
    skipped: int
    seconds: float


@dataclass(frozen=True)
class RepoIndex:
    """The symbols of every indexed file of one repository, by repository-relative path."""

    files: Mapping[str, FileSymbols]

    @classmethod
    def from_sources(cls, sources: Mapping[str, bytes]) -> RepoIndex:
        """An index of in-memory ``sources`` (path -> bytes); no cache, no IO. For tests
        and for callers that already hold the files."""
        files: dict[str, FileSymbols] = {}
        for path, source in sources.items():
            symbols = extract_symbols(path, source)
            if symbols is not None:
                files[path] = symbols
        return cls(files)

    def definitions(self) -> Iterator[Symbol]:
        """Every definition of every file, files in path order."""
        for path in sorted(self.files):
            yield from self.files[path].definitions

    def defined_in(self, name: str) -> list[str]:
        """The paths of the files that define ``name`` (sorted)."""
        return sorted(
            p for p, f in self.files.items() if any(d.name == name for d in f.definitions)
        )


def index_repository(
    root: Path, cache_dir: Path, files: Iterable[str] | None = None
) -> tuple[RepoIndex, IndexStats]:
    """Index the source files of the repository at ``root``, caching symbols in ``cache_dir``.

    ``files`` are repository-relative paths (for example from ``git ls-files``); when None,
    the tree is walked (generated folders such as ``.git`` and ``node_modules`` skipped).
    Only files of a known language (``language_of``) are indexed. Files are read under
    ``root`` only, never through a symbolic link. The cache ends up holding exactly the
    files indexed by this call: rows for any other path are removed.

    Raises StoreError when the cache database cannot be used (locked past its timeout).
    """
    started = time.perf_counter()
    root = root.resolve()
    candidates = _walk(root) if files is None else _valid(files)
    paths = sorted({p for p in candidates if language_of(p) is not None})[:MAX_INDEX_FILES]
    sources: dict[str, bytes] = {}
    for path in paths:
        text = read_text(root, path, MAX_INDEX_BYTES)
        if text is not None:
            sources[path] = text.encode("utf-8")
    skipped = len(paths) - len(sources)
    digests = {path: hashlib.sha256(data).hexdigest() for path, data in sources.items()}
    with SymbolCache(cache_dir) as cache:
        known = cache.hashes()
        fresh = [p for p in sources if known.get(p) == digests[p]]
        result = cache.load(fresh)
        reused = len(result)
        changed: dict[str, tuple[str, FileSymbols]] = {}
        for path, data in sources.items():
            if path in result:
                continue
            symbols = extract_symbols(path, data)
            if symbols is not None:
                result[path] = symbols
                changed[path] = (digests[path], symbols)
        removed = cache.paths() - set(sources)
        cache.update(changed, removed)
    stats = IndexStats(
        parsed=len(changed),
        reused=reused,
        removed=len(removed),
        skipped=skipped,
        seconds=time.perf_counter() - started,
    )
    return RepoIndex(dict(sorted(result.items()))), stats


def _valid(files: Iterable[str]) -> Iterator[str]:
    for path in files:
        try:
            yield validate_path(path)
        except EditFormatError:
            continue  # counted nowhere: a path that names no file inside the root


def _walk(root: Path) -> Iterator[str]:
    # followlinks=False: a symlinked folder is listed as a name but never entered; files
    # that are links are dropped later by read_text (O_NOFOLLOW).
    for directory, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIPPED_DIRS)
        base = Path(directory).relative_to(root)
        for filename in filenames:
            yield (base / filename).as_posix()
