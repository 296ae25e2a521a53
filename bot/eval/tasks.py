"""An evaluation suite on disk: one folder per task, read and validated before anything runs.

A task folder holds::

    task.yml        name, language, difficulty, issue (title, body), optional test command,
                    optional source (url, sha256) and patch instead of repo/
    repo/           the starting files: the first commit of a fresh local-forge repository
                    (or, with ``source``, a published archive unpacked and patched)
    hidden_tests/   files copied over the bot's result, only after the bot is done
    replay.yml      optional: a replay transcript with a correct solution (``--provider replay``)

Loading is all or nothing: the first problem raises ``TaskError`` naming the file and the key,
so a broken suite is fixed before minutes of sandbox time are spent on it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bot.errors import ForgebotError, PolicyError
from bot.eval.sources import materialise
from bot.sandbox.toolchain import Command, split_repo_config

TASK_FILE = "task.yml"
REPLAY_FILE = "replay.yml"
REPO_DIR = "repo"
HIDDEN_DIR = "hidden_tests"
# The task's language, as people say it, and the runner toolchain that must run it.
LANGUAGES: Mapping[str, str] = {"python": "python", "javascript": "node", "go": "go"}
DIFFICULTIES = (1, 2, 3)
_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
_KEYS = frozenset({"name", "language", "difficulty", "issue", "test", "source", "patch"})
_SHA256 = re.compile(r"[0-9a-f]{64}")
_ISSUE_KEYS = frozenset({"title", "body"})
MAX_TITLE_CHARS = 200


class TaskError(ForgebotError):
    """A task folder or its ``task.yml`` is unusable; the message names the file and the key."""


@dataclass(frozen=True)
class Source:
    """A published source archive: where, and the SHA-256 it must have."""

    url: str
    sha256: str


@dataclass(frozen=True)
class Task:
    """One task of a suite, validated. ``test`` is None for the toolchain's default command."""

    name: str
    language: str
    difficulty: int
    title: str
    body: str
    test: Command | None
    folder: Path
    source: Source | None = None  # a published archive instead of repo/
    patch: Path | None = None  # applied to the unpacked archive: the task's bug

    @property
    def toolchain(self) -> str:
        """The runner toolchain (python, node, go) the language maps to."""
        return LANGUAGES[self.language]

    @property
    def repo_dir(self) -> Path:
        return self.folder / REPO_DIR

    def starting_tree(self, scratch: Path) -> Path:
        """The folder whose files are the repository's first commit: ``repo/``, or the
        source archive unpacked and patched under ``scratch``. Raises ``SourceError``."""
        if self.source is None:
            return self.repo_dir
        return materialise(self.source.url, self.source.sha256, self.patch, scratch / "source")

    @property
    def hidden_dir(self) -> Path:
        return self.folder / HIDDEN_DIR

    @property
    def replay(self) -> Path | None:
        path = self.folder / REPLAY_FILE
        return path if path.is_file() else None


def load_suite(suite: Path, only: Sequence[str] = ()) -> list[Task]:
    """Every task under ``suite`` (sorted by name), or those named in ``only``.

    Raises ``TaskError`` when the suite folder is missing or holds no task, when a name in
    ``only`` matches no task, and for the first invalid task (every task is validated, not
    only the selected ones: a broken suite is broken).
    """
    if not suite.is_dir():
        raise TaskError(f"{suite}: not a folder of tasks")
    folders = sorted(p for p in suite.iterdir() if p.is_dir() and (p / TASK_FILE).is_file())
    if not folders:
        raise TaskError(f"{suite}: no task folders (each needs a {TASK_FILE})")
    tasks = [load_task(folder) for folder in folders]
    unknown = sorted(set(only) - {t.name for t in tasks})
    if unknown:
        raise TaskError(f"{suite}: no task named {', '.join(unknown)}; "
                        f"known: {', '.join(t.name for t in tasks)}")
    return [t for t in tasks if not only or t.name in only]


def load_task(folder: Path) -> Task:
    """Read and validate ``folder/task.yml`` and check the folder's layout."""
    path = folder / TASK_FILE
    data = _read_mapping(path)
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise TaskError(f"{path}: {unknown[0]}: unknown key (known: {', '.join(sorted(_KEYS))})")
    name = _name(path, data, folder)
    language = _choice(path, data, "language", sorted(LANGUAGES))
    difficulty = _difficulty(path, data)
    title, body = _issue(path, data.get("issue"))
    test = _test(path, data)
    source = _source(path, data.get("source"))
    patch = _patch(path, folder, data.get("patch"))
    _check_layout(folder, (HIDDEN_DIR,) if source else (REPO_DIR, HIDDEN_DIR))
    return Task(name, language, difficulty, title, body, test, folder.resolve(), source, patch)


def _source(path: Path, value: object) -> Source | None:
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) != {"url", "sha256"}:
        raise TaskError(f"{path}: source: must be a mapping with url and sha256")
    url, sha256 = value["url"], value["sha256"]
    if not isinstance(url, str) or not url.startswith("https://") or len(url) > 2000:
        raise TaskError(f"{path}: source.url: must be an https:// URL")
    if not isinstance(sha256, str) or not _SHA256.fullmatch(sha256):
        raise TaskError(f"{path}: source.sha256: must be 64 lower-case hex digits")
    return Source(url, sha256)


def _patch(path: Path, folder: Path, value: object) -> Path | None:
    if value is None:
        return None
    if not isinstance(value, str) or "/" in value or value.startswith("."):
        raise TaskError(f"{path}: patch: must name a file in the task's folder")
    found = folder / value
    if not found.is_file() or found.is_symlink():
        raise TaskError(f"{path}: patch: {value} is not a file in the task's folder")
    return found.resolve()


def _read_mapping(path: Path) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise TaskError(f"{path}: cannot be read: {exc.strerror}") from exc
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise TaskError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(loaded, dict):
        raise TaskError(f"{path}: the top level must be a mapping of keys to values")
    return loaded


def _required(path: Path, data: Mapping[str, Any], key: str) -> Any:
    if key not in data or data[key] is None:
        raise TaskError(f"{path}: {key}: required")
    return data[key]


def _name(path: Path, data: Mapping[str, Any], folder: Path) -> str:
    name = _required(path, data, "name")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise TaskError(f"{path}: name: must be lower-case letters, digits and '-' "
                        f"(at most 63), got {name!r}")
    if name != folder.name:
        raise TaskError(f"{path}: name: {name!r} must equal the folder's name {folder.name!r}")
    return name


def _choice(path: Path, data: Mapping[str, Any], key: str, choices: Sequence[str]) -> str:
    value = _required(path, data, key)
    if value not in choices:
        raise TaskError(f"{path}: {key}: must be one of {', '.join(choices)}, got {value!r}")
    return str(value)


def _difficulty(path: Path, data: Mapping[str, Any]) -> int:
    value = _required(path, data, "difficulty")
    if isinstance(value, bool) or not isinstance(value, int) or value not in DIFFICULTIES:
        raise TaskError(f"{path}: difficulty: must be 1, 2 or 3, got {value!r}")
    return int(value)


def _issue(path: Path, issue: object) -> tuple[str, str]:
    if not isinstance(issue, dict):
        raise TaskError(f"{path}: issue: required, a mapping with title and body")
    unknown = sorted(set(issue) - _ISSUE_KEYS)
    if unknown:
        raise TaskError(f"{path}: issue.{unknown[0]}: unknown key (known: title, body)")
    title, body = issue.get("title"), issue.get("body")
    if not isinstance(title, str) or not title.strip() or "\n" in title.strip():
        raise TaskError(f"{path}: issue.title: required, one line of text")
    if len(title) > MAX_TITLE_CHARS:
        raise TaskError(f"{path}: issue.title: longer than {MAX_TITLE_CHARS} characters")
    if not isinstance(body, str) or not body.strip():
        raise TaskError(f"{path}: issue.body: required, the text of the issue")
    return title.strip(), body.strip() + "\n"


def _test(path: Path, data: Mapping[str, Any]) -> Command | None:
    if "test" not in data:
        return None
    # The same shapes as `test:` in a repository's .forgebot.yml: a string or an argv list.
    try:
        override, _ = split_repo_config({"test": data["test"]}, source=str(path))
    except PolicyError as exc:
        raise TaskError(str(exc)) from exc
    return override.test


def _check_layout(folder: Path, required: Sequence[str]) -> None:
    for sub in required:
        where = folder / sub
        if not where.is_dir() or where.is_symlink():
            raise TaskError(f"{folder}: {sub}/: required folder is missing")
        if not any(p.is_file() for p in where.rglob("*")):
            raise TaskError(f"{folder}: {sub}/: holds no files")
        links = [p for p in where.rglob("*") if p.is_symlink()]
        if links:
            raise TaskError(f"{links[0]}: symbolic links are not allowed in a task")
