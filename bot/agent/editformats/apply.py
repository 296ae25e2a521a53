"""Applying edits of any format to file contents, all or nothing (no IO)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from bot.agent.editformats.base import Edit, Replace, WriteFile, block_path, where
from bot.agent.editformats.matching import replace_in
from bot.errors import EditFormatError

# How to create a file, per kind of edit that tried to change a missing one.
_CREATE_HINT = {
    "block": "to create it, use a '<<<<<<< NEW' block holding its whole content",
    "hunk": "to create it, write '--- /dev/null' and '+++ b/<path>' and only '+' lines",
}


def apply_edits(current: Mapping[str, str], edits: Sequence[Edit]) -> dict[str, str]:
    """Apply ``edits`` in order to ``current`` (path to content); return the changed files only.

    ``current`` must hold the content of every existing file an edit names; a path missing
    from it is a file that does not exist. A ``Replace`` must match exactly one place (see
    ``matching.replace_in``); later edits see the result of earlier ones. A ``WriteFile``
    creates a file or replaces a whole one. A file whose result equals its current content is
    not in the result. Raises EditFormatError naming the edit; then nothing is applied, since
    ``current`` is never modified and no partial result is returned.
    """
    working: dict[str, str] = {}
    for number, edit in enumerate(edits, start=1):
        if isinstance(edit, WriteFile):
            working[block_path(edit.path, number)] = edit.content
            continue
        path = block_path(edit.path, number, edit.unit)
        before = working.get(path, current.get(path))
        working[path] = _replaced(before, edit, where(edit.unit, number, path))
    return {path: text for path, text in working.items() if current.get(path) != text}


def _replaced(before: str | None, edit: Replace, named: str) -> str:
    if before is not None and (before.strip() or edit.search.strip()):
        return replace_in(before, edit.search, edit.replace, named, edit.unit)
    if before is None and edit.search.strip():
        raise EditFormatError(f"{named}: the file does not exist; {_CREATE_HINT[edit.unit]}")
    # Nothing to find in a file that does not exist or is empty: the replacement is the file.
    return edit.replace
