"""A task's repository from a published source archive: fetched once into a cache outside
the suite, checked against its SHA-256, unpacked safely, and patched with the task's bug.

A task names ``source: {url, sha256}`` (an sdist on PyPI, a tarball on npm) and ``patch:``
(a unified diff, applied with ``git apply``) instead of vendoring the project's tree. The
archive is hostile input like any download: its hash is checked before it is opened, and
only regular files and folders inside the tree are unpacked (tarfile's ``data`` filter).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tarfile
import tempfile
import urllib.request
from pathlib import Path

from bot.errors import ForgebotError

MAX_ARCHIVE_BYTES = 64 * 1024 * 1024
FETCH_TIMEOUT_S = 120


class SourceError(ForgebotError):
    """The archive could not be fetched, did not match its hash, or could not be used."""


def default_cache() -> Path:
    """``$FORGEBOT_SOURCE_CACHE``, else ``~/.cache/forgebot/sources``: never the clone."""
    configured = os.environ.get("FORGEBOT_SOURCE_CACHE")
    return Path(configured) if configured else Path.home() / ".cache" / "forgebot" / "sources"


def fetch(url: str, sha256: str, cache: Path) -> Path:
    """The archive at ``url``, from ``cache`` when a file with that hash is there, else
    downloaded (bounded) and checked. Raises ``SourceError``."""
    cache.mkdir(parents=True, exist_ok=True)
    kept = cache / f"{sha256}.tar.gz"
    if kept.is_file() and _sha256(kept) == sha256:
        return kept
    if not url.startswith("https://"):
        raise SourceError(f"{url}: only https:// sources are fetched")
    partial = Path(tempfile.mkstemp(dir=cache, suffix=".part")[1])
    try:
        with urllib.request.urlopen(url, timeout=FETCH_TIMEOUT_S) as answer, (  # noqa: S310
                partial.open("wb")) as out:
            copied = 0
            while chunk := answer.read(1 << 16):
                copied += len(chunk)
                if copied > MAX_ARCHIVE_BYTES:
                    raise SourceError(f"{url}: larger than {MAX_ARCHIVE_BYTES} bytes")
                out.write(chunk)
        found = _sha256(partial)
        if found != sha256:
            raise SourceError(f"{url}: SHA-256 is {found}, the task says {sha256}")
        partial.replace(kept)
    except OSError as exc:
        raise SourceError(f"{url}: could not be fetched: {exc}") from exc
    finally:
        partial.unlink(missing_ok=True)
    return kept


def unpack(archive: Path, dest: Path) -> None:
    """Unpack ``archive`` into ``dest`` without its single top-level folder (``six-1.16.0/``,
    npm's ``package/``). Raises ``SourceError`` for an archive that is not one tree."""
    with tempfile.TemporaryDirectory() as scratch, tarfile.open(archive, "r:*") as tar:
        try:
            tar.extractall(scratch, filter="data")
        except (tarfile.TarError, OSError) as exc:
            raise SourceError(f"{archive.name}: cannot be unpacked: {exc}") from exc
        tops = list(Path(scratch).iterdir())
        if len(tops) != 1 or not tops[0].is_dir():
            raise SourceError(f"{archive.name}: not a single top-level folder")
        dest.mkdir(parents=True, exist_ok=True)
        for item in tops[0].iterdir():
            shutil.move(str(item), dest / item.name)


def apply_patch(patch: Path, tree: Path) -> None:
    """Apply the unified diff ``patch`` to ``tree`` with ``git apply`` (no repository
    needed). Raises ``SourceError`` when it does not apply."""
    # The ceiling keeps git from finding a repository above the tree and applying there.
    env = {**os.environ, "GIT_CEILING_DIRECTORIES": str(tree.resolve().parent)}
    done = subprocess.run(
        ["git", "apply", "--whitespace=nowarn", str(patch.resolve())],
        cwd=tree, capture_output=True, text=True, check=False, env=env,
    )
    if done.returncode != 0:
        raise SourceError(f"{patch.name} does not apply: {done.stderr.strip()[:500]}")


def materialise(url: str, sha256: str, patch: Path | None, dest: Path,
                cache: Path | None = None) -> Path:
    """The task's starting tree in ``dest``: the archive unpacked, then ``patch`` applied."""
    archive = fetch(url, sha256, cache or default_cache())
    if dest.exists():
        shutil.rmtree(dest)
    unpack(archive, dest)
    if patch is not None:
        apply_patch(patch, dest)
    return dest


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
