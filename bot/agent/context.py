"""Reading the repository safely, and scoring its files against an issue by keyword.

``score_file`` puts files named by the issue first (by path, then by file name or stem), then
files that contain identifiers the issue mentions, then source files and tests; the agent
blends it with the symbol graph's rank (``bot.agent.sources``). Reads stay under the working
directory: symbolic links are listed nowhere and never followed.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

MAX_FILE_BYTES = 100_000
_BINARY_SNIFF = 8_192
# Folders that are never the repository's own code. The workdir is a fresh worktree, so
# ignored build output is absent anyway; these are the ones people commit by mistake.
SKIPPED_DIRS = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        ".venv",
        "venv",
        "node_modules",
        "__pycache__",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        ".tox",
        ".nox",
    }
)
# Version-control metadata: never the repository's code, and a worktree's ``.git`` is a file
# that holds the host path of the bot's mirror. Neither file nor folder of these names is
# listed or read.
VCS_NAMES = frozenset({".git", ".hg", ".svn"})
SOURCE_SUFFIXES = frozenset(
    {
        ".py", ".pyi", ".js", ".jsx", ".ts", ".tsx", ".mjs", ".cjs", ".go", ".rs", ".java",
        ".kt", ".rb", ".php", ".c", ".h", ".cc", ".cpp", ".hpp", ".cs", ".swift", ".scala",
        ".sh", ".lua", ".ex", ".exs", ".erl", ".hs", ".ml", ".clj", ".sql",
    }
)  # fmt: skip
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{2,}")
_PATHLIKE = re.compile(r"[\w./-]+\.[A-Za-z0-9]{1,8}")
# Common words of issue prose that would otherwise match half the files in a repository.
_STOPWORDS = frozenset(
    {
        "the", "and", "for", "with", "that", "this", "from", "when", "then", "than", "into",
        "should", "would", "could", "does", "not", "are", "was", "were", "have", "has", "had",
        "but", "can", "will", "use", "using", "used", "add", "adds", "fix", "bug", "issue",
        "file", "files", "test", "tests", "code", "make", "new", "old", "like", "some", "more",
        "also", "only", "just", "what", "which", "where", "there", "here", "they", "them",
        "their", "you", "your", "our", "all", "any", "each", "need", "needs", "want", "wants",
        "other", "been", "being", "about", "after", "before", "return", "returns", "true",
        "false", "none", "null", "self", "error", "value", "name", "data", "list", "default",
    }
)  # fmt: skip


@dataclass(frozen=True)
class IssueTerms:
    """What an issue mentions: path-like tokens and identifier-like words."""

    paths: frozenset[str]
    words: frozenset[str]

    @classmethod
    def of(cls, issue: str) -> IssueTerms:
        """The terms of ``issue`` (title and body)."""
        words = frozenset(
            word
            for word in _IDENTIFIER.findall(issue)
            if word.lower() not in _STOPWORDS and (len(word) >= 4 or "_" in word)
        )
        return cls(paths=frozenset(_PATHLIKE.findall(issue)), words=words)


def score_file(path: str, text: str, terms: IssueTerms) -> int:
    """How much a file matters to an issue, higher first. Pure; exposed for tests."""
    name = path.rsplit("/", 1)[-1]
    stem = name.split(".", 1)[0]
    score = 0
    if _mentioned(path, terms.paths):
        score += 1000
    elif _mentioned(name, terms.paths):
        score += 500
    if len(stem) > 2 and stem.lower() in {word.lower() for word in terms.words}:
        score += 200
    if terms.words:
        found = terms.words.intersection(_IDENTIFIER.findall(text))
        score += 20 * min(len(found), 10)
    if _is_test(path):
        score += 15
    if _suffix(name) in SOURCE_SUFFIXES:
        score += 10
    return score


def _mentioned(path: str, mentioned: frozenset[str]) -> bool:
    # "see src/app/models.py" names "app/models.py"; "./models.py" names "models.py".
    return any(m == path or m.endswith("/" + path) for m in mentioned)


def read_text(root: Path, relative: str, max_bytes: int = MAX_FILE_BYTES) -> str | None:
    """The UTF-8 text of ``root/relative``, or None when it is missing, not a regular file,
    reached through a symbolic link, larger than ``max_bytes`` or binary.

    ``relative`` must already be a validated relative path (no ``..``, not absolute).
    Nothing under version-control metadata (``VCS_NAMES``) is read.
    """
    if any(part in VCS_NAMES for part in relative.split("/")):
        return None
    current = root
    for part in relative.split("/")[:-1]:
        current = current / part
        try:
            if not stat.S_ISDIR(current.lstat().st_mode):
                return None
        except OSError:
            return None
    return _read_regular(current / relative.rsplit("/", maxsplit=1)[-1], max_bytes)


def _read_regular(path: Path, max_bytes: int) -> str | None:
    try:
        # O_NOFOLLOW: a symbolic link in the last component fails instead of being followed.
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_size > max_bytes:
            return None
        data = handle.read(max_bytes + 1)
    if len(data) > max_bytes or b"\0" in data[:_BINARY_SNIFF]:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def read_tree(root: Path) -> Iterator[tuple[str, str]]:
    """(path, text) of every readable text file under ``root`` (see ``read_text``)."""
    for relative in _walk(root):
        text = _read_regular(root / relative, MAX_FILE_BYTES)
        if text is not None:
            yield relative, text


def _walk(root: Path) -> Iterable[str]:
    # followlinks=False: a symlinked folder is listed as a name but never entered.
    for directory, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIPPED_DIRS)
        base = Path(directory).relative_to(root)
        for filename in sorted(filenames):
            path = Path(directory) / filename
            if path.is_symlink() or filename in VCS_NAMES:  # a worktree's .git is a file
                continue
            yield (base / filename).as_posix()


def _is_test(path: str) -> bool:
    lowered = path.lower()
    name = lowered.rsplit("/", 1)[-1]
    return (
        lowered.startswith(("test/", "tests/"))
        or "/test/" in lowered
        or "/tests/" in lowered
        or name.startswith("test_")
        or ".test." in name
        or ".spec." in name
        or name.split(".", 1)[0].endswith("_test")
    )


def _suffix(name: str) -> str:
    dot = name.rfind(".")
    return name[dot:].lower() if dot > 0 else ""
