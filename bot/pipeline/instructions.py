"""Read the repository's instruction files from the default branch of the mirror.

Only regular files (mode 100644 or 100755) are read: a symbolic link named ``AGENTS.md``
could point anywhere. Bounded in count and size; a file that is not UTF-8 is skipped.
"""

from __future__ import annotations

from pathlib import Path

from bot import gitops
from bot.agent.instructions import InstructionFile, is_instruction_path
from bot.errors import GitError

MAX_FILES = 32
MAX_BYTES = 64_000
_REGULAR = ("100644", "100755")


def read_instructions(mirror: Path, ref: str) -> tuple[InstructionFile, ...]:
    """The instruction files at ``ref`` (a branch or sha of the mirror), root files first."""
    try:
        listing = gitops.run(["ls-tree", "-r", "-l", "-z", "--full-tree", "--end-of-options",
                              ref], cwd=mirror)
    except GitError:
        return ()
    found: list[InstructionFile] = []
    for entry in listing.split("\0"):
        meta, _, path = entry.partition("\t")
        fields = meta.split()
        if len(fields) != 4 or not is_instruction_path(path):
            continue
        mode, kind, sha, size = fields
        if mode not in _REGULAR or kind != "blob" or not size.isdigit():
            continue
        if int(size) > MAX_BYTES or len(found) >= MAX_FILES:
            continue
        text = gitops.run(["cat-file", "blob", sha], cwd=mirror)
        if any(0xDC80 <= ord(c) <= 0xDCFF for c in text):
            continue  # not UTF-8: gitops decodes with surrogateescape
        found.append(InstructionFile(path, text))
    return tuple(sorted(found, key=lambda f: (f.folder != "", f.path.count("/"), f.path)))
