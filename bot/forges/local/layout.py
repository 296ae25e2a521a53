"""The local forge's on-disk format. Everything lives under one root folder::

    <root>/permissions.yml                      optional: user -> none|read|write|admin
    <root>/<owner>/<repo>.git                   the bare git repository
    <root>/<owner>/<repo>/issues/<n>.md         Markdown with YAML front matter
    <root>/<owner>/<repo>/pulls/<n>.md
    <root>/<owner>/<repo>/comments/<n>-<seq>.md
    <root>/<owner>/<repo>/statuses/<sha>.yml    context -> {state, description, updated}
    <root>/<owner>/<repo>/.lock                 flock held while allocating or rewriting

Issue front matter: number, title, labels, author, state, created, labeled_by (label ->
who added it). Pull front matter:
number, title, head, base, draft, state, author, created. Comment front matter: item,
author, created. Issues and pulls share one number sequence per repository, as on
GitHub. Every write is atomic (a temporary file, then ``os.replace``), and every
allocation or read-modify-write happens under the repository's lock file, so two
processes (the CLI and the bot) never hand out one number twice.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from bot.errors import ForgeError
from bot.gitops import file_lock

ISSUES = "issues"
PULLS = "pulls"

_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_FENCE = "---\n"


@dataclass(frozen=True)
class Document:
    """One Markdown file: its front matter and its body."""

    front: dict[str, Any]
    body: str


@dataclass(frozen=True)
class RepoLayout:
    """Where one repository's files are. Build it with :meth:`of`, which validates."""

    root: Path
    owner: str
    name: str

    @classmethod
    def of(cls, root: Path, full_name: str) -> RepoLayout:
        """The layout of ``owner/name`` under ``root``; ``ForgeError`` for a bad name."""
        owner, _, name = full_name.partition("/")
        for part in (owner, name):
            if not _NAME_RE.fullmatch(part) or part.endswith((".git", ".lock")):
                raise ForgeError(f"bad repository name {full_name!r}: expected owner/name")
        return cls(root, owner, name)

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"

    @property
    def git_dir(self) -> Path:
        return self.root / self.owner / f"{self.name}.git"

    @property
    def meta_dir(self) -> Path:
        return self.root / self.owner / self.name

    def item_path(self, kind: str, number: int) -> Path:
        return self.meta_dir / kind / f"{number}.md"

    def status_path(self, sha: str) -> Path:
        return self.meta_dir / "statuses" / f"{sha}.yml"

    def exists(self) -> bool:
        return (self.git_dir / "HEAD").is_file()

    def require(self) -> RepoLayout:
        """Self, or ``ForgeError`` when the repository was never created."""
        if not self.exists():
            raise ForgeError(
                f"local repository {self.full_name} does not exist under {self.root} "
                "(create it with `forgebot local init`)"
            )
        return self

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Exclusive across processes: hold it to allocate a number or rewrite a file.

        Not re-entrant: code that holds it must not call anything that takes it again.
        """
        with file_lock(self.meta_dir / ".lock"):
            yield


# ------------------------------------------------------------------- documents


def now() -> str:
    """The timestamp written into ``created`` fields (UTC, ISO 8601)."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def atomic_write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so a reader sees the old file or the new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def dump_document(front: dict[str, Any], body: str) -> str:
    """``---``, the front matter as YAML, ``---``, then the Markdown body."""
    meta = yaml.safe_dump(front, sort_keys=False, allow_unicode=True, default_flow_style=False)
    return f"{_FENCE}{meta}{_FENCE}{body}"


def parse_document(text: str, source: Path) -> Document:
    """The inverse of :func:`dump_document`; ``ForgeError`` naming ``source`` if malformed."""
    if not text.startswith(_FENCE):
        raise ForgeError(f"{source}: no YAML front matter (the file must start with ---)")
    rest = text[len(_FENCE) :]
    if rest.startswith(_FENCE):  # empty front matter
        return Document({}, rest[len(_FENCE) :])
    meta, sep, body = rest.partition(f"\n{_FENCE}")
    if not sep:
        raise ForgeError(f"{source}: the front matter is not closed by a --- line")
    try:
        front = yaml.safe_load(meta)
    except yaml.YAMLError as exc:
        raise ForgeError(f"{source}: the front matter is not valid YAML: {exc}") from exc
    if not isinstance(front, dict):
        raise ForgeError(f"{source}: the front matter is not a mapping")
    # A hand-edited, unquoted timestamp loads as a datetime; keep the format's types.
    return Document({k: str(v) if isinstance(v, datetime) else v for k, v in front.items()}, body)


def read_document(path: Path) -> Document:
    """Read one Markdown file with front matter."""
    return parse_document(path.read_text(encoding="utf-8"), path)


def write_document(path: Path, doc: Document) -> None:
    """Write one Markdown file with front matter, atomically."""
    atomic_write(path, dump_document(doc.front, doc.body))


def read_yaml(path: Path, default: dict[str, Any]) -> dict[str, Any]:
    """A YAML mapping from ``path``, ``default`` when the file is missing."""
    if not path.is_file():
        return default
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ForgeError(f"{path}: not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ForgeError(f"{path}: expected a mapping")
    return data


def write_yaml(path: Path, data: dict[str, Any]) -> None:
    """Write a YAML mapping atomically."""
    atomic_write(path, yaml.safe_dump(data, sort_keys=False, allow_unicode=True))


# ------------------------------------------------------------- items and numbers


def _numbers(directory: Path) -> list[int]:
    if not directory.is_dir():
        return []
    return sorted(int(p.stem) for p in directory.glob("*.md") if p.stem.isdigit())


def find_item(layout: RepoLayout, number: int) -> tuple[str, Path] | None:
    """``(ISSUES or PULLS, path)`` of item ``number``, or None when there is none."""
    for kind in (ISSUES, PULLS):
        path = layout.item_path(kind, number)
        if path.is_file():
            return kind, path
    return None


def require_item(layout: RepoLayout, number: int) -> tuple[str, Path]:
    """Like :func:`find_item`, but ``ForgeError`` when the number is unknown."""
    found = find_item(layout, number)
    if found is None:
        raise ForgeError(f"{layout.full_name} has no issue or pull request #{number}")
    return found


def list_documents(layout: RepoLayout, kind: str) -> list[Document]:
    """Every issue or pull request of the repository, by number."""
    return [read_document(layout.item_path(kind, n)) for n in _numbers(layout.meta_dir / kind)]


def create_item(layout: RepoLayout, kind: str, front: dict[str, Any], body: str) -> int:
    """Allocate the next number (shared by issues and pulls) and write the item.

    The caller must hold ``layout.lock()``: allocation and write are one step under it.
    """
    used = _numbers(layout.meta_dir / ISSUES) + _numbers(layout.meta_dir / PULLS)
    number = max(used, default=0) + 1
    write_document(layout.item_path(kind, number), Document({"number": number, **front}, body))
    return number


def add_comment(layout: RepoLayout, number: int, author: str, body: str) -> Path:
    """Write the next comment on item ``number`` (which must exist) and return its path."""
    require_item(layout, number)
    with layout.lock():
        return add_comment_locked(layout, number, author, body)


COMMENT_ID_SPAN = 1_000_000


def comment_id(path: Path) -> int:
    """The id of the comment in ``path`` (``<number>-<seq>.md``): unique in its repository,
    as a real forge's comment ids are, so a webhook and reconciliation name it alike."""
    number, _, seq = path.stem.partition("-")
    if not (number.isdigit() and seq.isdigit()) or int(seq) >= COMMENT_ID_SPAN:
        raise ForgeError(f"{path}: not a comment file name (<number>-<seq>.md)")
    return int(number) * COMMENT_ID_SPAN + int(seq)


def add_comment_locked(layout: RepoLayout, number: int, author: str, body: str) -> Path:
    """``add_comment`` for a caller that already holds ``layout.lock()``."""
    directory = layout.meta_dir / "comments"
    seqs = [
        int(p.stem.partition("-")[2])
        for p in directory.glob(f"{number}-*.md")
        if p.stem.partition("-")[2].isdigit()
    ]
    path = directory / f"{number}-{max(seqs, default=0) + 1}.md"
    front = {"item": number, "author": author, "created": now()}
    write_document(path, Document(front, body))
    return path
