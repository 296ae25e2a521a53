"""The uncompressed tars that ``Session.put`` takes: packing a folder, normalising any tar.

``tar_directory`` builds the tar on the trusted side from a worktree, so it never follows a
symbolic link (a link is stored as a link and resolved, if at all, inside the sandbox), and
every entry belongs to the sandbox user (uid/gid 1000) with setuid, setgid and sticky bits
dropped. ``normalise_tree`` brings any other tar to the same shape before a backend unpacks
it: Docker unpacks as root, keeping owners, and makes missing parent folders owned by root,
which the sandbox user could then neither write into nor clear.
"""

from __future__ import annotations

import copy
import io
import os
import posixpath
import stat
import tarfile
from collections.abc import Iterator
from collections.abc import Set as AbstractSet
from pathlib import Path

from bot.errors import SandboxError

SANDBOX_UID = 1000
SANDBOX_GID = 1000

_DEFAULT_EXCLUDE = frozenset({".git"})


def tar_directory(path: Path, exclude: AbstractSet[str] = _DEFAULT_EXCLUDE) -> bytes:
    """Return an uncompressed tar of the files under ``path``, with paths relative to it.

    Entries whose name is in ``exclude`` are left out at any depth, with everything under
    them. Regular files, directories and symbolic links are stored; sockets, fifos and
    devices are skipped. Raises ``NotADirectoryError``/``OSError`` when ``path`` cannot be read.
    """
    root = Path(path)
    if not root.is_dir():
        raise NotADirectoryError(f"not a directory: {root}")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for full, arcname in _walk(root, exclude):
            _add_entry(tar, full, arcname)
    return buffer.getvalue()


def _walk(root: Path, exclude: AbstractSet[str]) -> Iterator[tuple[Path, str]]:
    """Yield (path, name in the archive) depth-first in name order, never entering a link."""
    stack: list[tuple[Path, str]] = [(root, "")]
    while stack:
        folder, prefix = stack.pop()
        with os.scandir(folder) as entries:
            children = sorted(entries, key=lambda entry: entry.name)
        subfolders: list[tuple[Path, str]] = []
        for entry in children:
            if entry.name in exclude:
                continue
            arcname = f"{prefix}{entry.name}"
            yield Path(entry.path), arcname
            # is_dir(follow_symlinks=False): a link to a folder is stored, not walked into.
            if entry.is_dir(follow_symlinks=False):
                subfolders.append((Path(entry.path), f"{arcname}/"))
        # Reversed so the stack pops folders in name order: a stable, reproducible archive.
        stack.extend(reversed(subfolders))


def _add_entry(tar: tarfile.TarFile, full: Path, arcname: str) -> None:
    info = os.lstat(full)
    member = _base_info(arcname, info)
    if stat.S_ISLNK(info.st_mode):
        member.type = tarfile.SYMTYPE
        member.linkname = os.readlink(full)
        tar.addfile(member)
    elif stat.S_ISDIR(info.st_mode):
        member.type = tarfile.DIRTYPE
        tar.addfile(member)
    elif stat.S_ISREG(info.st_mode):
        _add_file(tar, full, member)


def _add_file(tar: tarfile.TarFile, full: Path, member: tarfile.TarInfo) -> None:
    # O_NOFOLLOW: if the file was swapped for a link since lstat, fail rather than read
    # whatever the link points at.
    fd = os.open(full, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as handle:
        current = os.fstat(handle.fileno())
        if not stat.S_ISREG(current.st_mode):
            return
        member.size = current.st_size
        tar.addfile(member, handle)


def _base_info(arcname: str, info: os.stat_result) -> tarfile.TarInfo:
    member = tarfile.TarInfo(arcname)
    # Only permission bits: setuid/setgid/sticky mean nothing good inside a sandbox.
    member.mode = stat.S_IMODE(info.st_mode) & 0o777
    member.mtime = int(info.st_mtime)
    member.uid, member.gid = SANDBOX_UID, SANDBOX_GID
    member.uname = member.gname = ""
    return member


def normalise_tree(tree: bytes) -> bytes:
    """Return ``tree`` as a tar the sandbox user fully owns.

    ``tree`` comes back unchanged when it already is one: every entry a file, folder or link
    owned by uid/gid 1000 with permission bits only, named inside the archive root, after
    its parent folder. Otherwise a copy is built that is: owners and modes reset, missing
    parent folders added, entries named outside the root (absolute, ``..``) and special
    files (devices, fifos) dropped. Raises ``SandboxError`` when ``tree`` is not a tar.
    """
    try:
        with tarfile.open(fileobj=io.BytesIO(tree), mode="r:") as source:
            members = source.getmembers()
            if _is_normal(members):
                return tree
            return _rebuild(source, members)
    except (tarfile.TarError, EOFError) as exc:
        raise SandboxError(f"the repository archive is not a valid tar: {exc}") from exc


def _clean_name(name: str) -> str | None:
    """The entry's path relative to the archive root ("" for the root), or None if outside."""
    if name.startswith("/"):
        return None
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if ".." in parts:
        return None
    return "/".join(parts)


def _supported(member: tarfile.TarInfo) -> bool:
    return member.isreg() or member.isdir() or member.issym() or member.islnk()


def _is_normal(members: list[tarfile.TarInfo]) -> bool:
    folders = {""}
    for member in members:
        name = _clean_name(member.name)
        if name is None or not _supported(member):
            return False
        if (member.uid, member.gid) != (SANDBOX_UID, SANDBOX_GID) or member.mode & ~0o777:
            return False
        if member.islnk() and _clean_name(member.linkname) is None:
            return False
        if posixpath.dirname(name) not in folders:
            return False
        if member.isdir():
            folders.add(name)
    return True


def _rebuild(source: tarfile.TarFile, members: list[tarfile.TarInfo]) -> bytes:
    buffer = io.BytesIO()
    folders = {""}
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as target:
        for member in members:
            name = _clean_name(member.name)
            if not name or not _supported(member):
                continue  # the root entry would re-own the workspace; the rest is unsafe
            if member.islnk() and not _clean_name(member.linkname):
                continue
            for folder in _missing_parents(name, folders):
                target.addfile(_folder_info(folder))
            entry = _owned_copy(member, name)
            if member.isdir():
                folders.add(name)
            target.addfile(entry, source.extractfile(member) if member.isreg() else None)
    return buffer.getvalue()


def _missing_parents(name: str, folders: set[str]) -> list[str]:
    """Parent folders of ``name`` not yet in ``folders``, outermost first; records them."""
    missing: list[str] = []
    parent = posixpath.dirname(name)
    while parent not in folders:
        missing.append(parent)
        parent = posixpath.dirname(parent)
    folders.update(missing)
    return list(reversed(missing))


def _owned_copy(member: tarfile.TarInfo, name: str) -> tarfile.TarInfo:
    entry = copy.copy(member)
    entry.name = name
    if member.islnk():
        entry.linkname = _clean_name(member.linkname) or ""
    entry.uid, entry.gid = SANDBOX_UID, SANDBOX_GID
    entry.uname = entry.gname = ""
    entry.mode = member.mode & 0o777
    entry.pax_headers = {}  # old PAX owner or path records would override the new values
    return entry


def _folder_info(name: str) -> tarfile.TarInfo:
    folder = tarfile.TarInfo(name)
    folder.type, folder.mode = tarfile.DIRTYPE, 0o755
    folder.uid, folder.gid = SANDBOX_UID, SANDBOX_GID
    return folder
