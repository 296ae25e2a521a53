"""The contract every edit format meets, and the values and checks they share (no IO).

An edit format is a small strategy: ``instructions`` tells the model how to write edits,
``parse`` turns its reply into ``Edit`` values, and ``bot.agent.editformats.apply`` applies
them. Parsing never looks at the repository; matching against file content happens only at
apply time, so both are pure functions over strings and tested with tables of replies.

Every error is an ``EditFormatError`` whose message names the block (its number and path)
and says what is wrong, because the message goes back to the model as its next prompt. The
model is an untrusted author: every path it writes goes through ``validate_path``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, TypeAlias

from bot.errors import EditFormatError

Unit = Literal["block", "hunk"]

_WINDOWS_DRIVE = re.compile(r"^[A-Za-z]:")
# What models put around a path: Markdown heading hashes, bold/italic, code ticks, quotes.
_PATH_DECORATION = "#*`'\" \t"
_PATH_LABEL = re.compile(r"^(?:file|path|filename)\s*:\s*", re.IGNORECASE)
# A file name the way models write one alone on a line: no spaces, no markup left over.
_PATH_SHAPE = re.compile(r"^[\w.@+~-]+(?:/[\w.@+~-]+)*$")
_EXTENSIONLESS = frozenset(
    {
        "makefile",
        "dockerfile",
        "containerfile",
        "license",
        "readme",
        "procfile",
        "gemfile",
        "rakefile",
        "jenkinsfile",
        "vagrantfile",
        "justfile",
        "changelog",
        "codeowners",
    }
)


@dataclass(frozen=True)
class Replace:
    """Replace the lines ``search`` with ``replace`` in the existing file ``path``.

    ``unit`` says how errors name this edit: ``block`` for a SEARCH/REPLACE block, ``hunk``
    for a unified-diff hunk (whose ``search`` is its context and removed lines).
    """

    path: str
    search: str
    replace: str
    unit: Unit = "block"


@dataclass(frozen=True)
class WriteFile:
    """Create ``path`` with ``content``, or replace the whole of an existing file."""

    path: str
    content: str


Edit: TypeAlias = Replace | WriteFile


class EditFormat(Protocol):
    """One way for the model to write edits. Implementations hold no state and do no IO."""

    name: str

    def instructions(self, example_path: str) -> str:
        """The text that tells the model how to write edits in this format.

        It ends with a short example that changes ``example_path`` (a file of the repository,
        so the example looks like the real task). Goes into the system prompt.
        """
        ...

    def parse(self, reply: str) -> list[Edit]:
        """Every edit of a model reply, in order; ``[]`` when the reply holds none.

        Raises EditFormatError, naming the block, for a block that is malformed or whose path
        fails ``validate_path``. Never reads a file: whether a block fits the current content
        is decided by ``apply_edits``.
        """
        ...


def validate_path(path: str) -> str:
    """Return ``path`` normalised (``./`` and doubled slashes removed) or raise EditFormatError.

    Rejected: empty, absolute (or a drive letter), backslashes, NUL and other control
    characters, ``..`` components, anything inside ``.git``, a leading ``-`` (it would read as
    an option to git), and a trailing ``/`` (a directory, not a file).
    """
    if not path or not path.strip():
        raise EditFormatError("empty file path")
    shown = path[:200].encode("unicode_escape").decode("ascii")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in path):
        raise EditFormatError(f"file path {shown!r} contains a control character")
    if "\\" in path:
        raise EditFormatError(f"file path {shown!r} contains a backslash; use '/'")
    if path.startswith("/") or _WINDOWS_DRIVE.match(path):
        raise EditFormatError(
            f"file path {shown!r} is absolute; use a path relative to the repository root"
        )
    if path.endswith("/"):
        raise EditFormatError(f"file path {shown!r} names a directory, not a file")
    parts = [part for part in path.split("/") if part not in ("", ".")]
    if not parts:
        raise EditFormatError(f"file path {shown!r} names no file")
    if ".." in parts:
        raise EditFormatError(f"file path {shown!r} leaves the repository ('..' is not allowed)")
    if any(part.lower() == ".git" for part in parts):
        raise EditFormatError(f"file path {shown!r} is inside .git, which may not be edited")
    normalised = "/".join(parts)
    if normalised.startswith("-"):
        raise EditFormatError(f"file path {shown!r} starts with '-'")
    return normalised


def block_path(raw: str, number: int, unit: Unit = "block",
               refused: list[str] | None = None) -> str:
    """``validate_path(raw)`` with the error prefixed by the block it belongs to. With
    ``refused``, the error is added to it and ``raw`` returned, so that a parser goes on and
    names every refused path at once (:func:`raise_refused`)."""
    try:
        return validate_path(raw)
    except EditFormatError as exc:
        if refused is None:
            raise EditFormatError(f"{unit} {number}: {exc}") from exc
        refused.append(f"{unit} {number}: {exc}")
        return raw


def raise_refused(refused: Sequence[str]) -> None:
    """Raise one EditFormatError naming every refused path of a reply, if there are any."""
    if refused:
        raise EditFormatError("; ".join(refused))


def clean_path(line: str) -> str:
    """``line`` without the decoration models put around a path (``### **`a.py`**:``)."""
    path = line.strip().strip(_PATH_DECORATION)
    path = _PATH_LABEL.sub("", path).strip(_PATH_DECORATION)
    return path.removesuffix(":").strip(_PATH_DECORATION)


def looks_like_path(text: str) -> bool:
    """Whether ``text`` (already cleaned) reads as a file path rather than a word of prose.

    A path has no spaces and either a folder (``/``), an extension that starts with a letter
    (``app.py``, not ``3.11``) or a well-known extensionless name (``Makefile``).
    """
    if not _PATH_SHAPE.match(text) or text.strip(".") == "":
        return False
    name = text.rsplit("/", 1)[-1]
    if "/" in text:
        return True
    stem, dot, extension = name.rpartition(".")
    if dot and extension[:1].isalpha() and (stem or name.startswith(".")):
        return True
    return name.lower() in _EXTENSIONLESS


def normalise_newlines(text: str) -> str:
    """``text`` with CRLF and lone CR turned into LF: models and Windows clipboards mix them."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def join_lines(lines: Sequence[str]) -> str:
    """Lines as file text: each one ended by ``\\n``."""
    return "".join(line + "\n" for line in lines)


def where(unit: Unit, number: int, path: str) -> str:
    """How an error names an edit: ``block 2 (src/app.py)``."""
    return f"{unit} {number} ({path})"
