"""Path globs for policies: a small matcher with ``**`` semantics, written out so it is testable.

The rules, for repository-relative POSIX paths (``a/b/c.py``):

- A pattern is anchored at the repository root: ``.forgebot.yml`` matches that file at the top
  only; write ``**/.forgebot.yml`` for any depth.
- ``*`` matches any run of characters within one path segment (never ``/``); ``?`` matches one
  such character; ``[abc]``, ``[a-z]`` and ``[!abc]`` (or ``[^abc]``) are character classes
  that never match ``/``.
- ``**`` as a whole segment matches zero or more whole segments: ``**/x`` matches ``x`` and
  ``a/b/x``; ``a/**/b`` matches ``a/b`` and ``a/x/y/b``; a trailing ``a/**`` matches ``a``
  itself and everything under it (stricter than gitignore on purpose: a deny glob for a
  directory also catches a file or symlink that replaces the directory). ``**`` inside a
  segment (``a**b``) is a plain ``*``.
- Dotfiles get no special treatment: ``*`` matches ``.github``.
- Matching is case-sensitive, like git on Linux.

Patterns are validated by :func:`check_glob`: no backslash (paths with one are refused
before matching anyway), no leading ``/``, no ``..`` or empty segment, no unclosed ``[``
and no reversed range. Within one segment the matcher agrees with ``fnmatch.fnmatchcase`` (a
property test checks it), except that ``[^...]`` negates, as in git and bash.
"""

from __future__ import annotations

import re
from functools import lru_cache

_ANY_SEGMENTS = "(?:[^/]+/)*"  # zero or more whole segments, each with its trailing slash


def check_glob(pattern: str) -> str:
    """Return ``pattern`` unchanged if it is a valid policy glob; raise ``ValueError`` if not."""
    if not pattern:
        raise ValueError("a glob may not be empty")
    if "\\" in pattern or "\x00" in pattern:
        raise ValueError(f"glob {pattern!r} may not contain a backslash or NUL")
    if pattern.startswith("/"):
        raise ValueError(f"glob {pattern!r} must be relative to the repository root")
    segments = pattern.split("/")
    if ".." in segments:
        raise ValueError(f"glob {pattern!r} may not contain a '..' segment")
    if "" in segments:
        # "docs/" would never match: paths name files. Say so rather than match nothing.
        raise ValueError(f"glob {pattern!r} has an empty segment; for a directory write 'dir/**'")
    compile_glob(pattern)  # raises on a malformed character class
    return pattern


@lru_cache(maxsize=512)
def compile_glob(pattern: str) -> re.Pattern[str]:
    """Compile a policy glob into a regular expression to be used with ``fullmatch``.

    Raises ``ValueError`` for a pattern :func:`check_glob` would refuse as malformed.
    """
    segments = _collapse_globstars(pattern.split("/"))
    out: list[str] = []
    previous_was_globstar = False
    for index, segment in enumerate(segments):
        is_first = index == 0
        is_last = index == len(segments) - 1
        if segment == "**":
            if is_first and is_last:
                out.append(".*")
            elif is_last:
                # "a/**" matches "a" itself and anything below it.
                out.append("(?:/.*)?")
            else:
                out.append(("" if is_first else "/") + _ANY_SEGMENTS)
            previous_was_globstar = True
            continue
        # A globstar segment already ends with its slash, so no separator follows it.
        if not is_first and not previous_was_globstar:
            out.append("/")
        out.append(_translate_segment(segment, pattern))
        previous_was_globstar = False
    try:
        return re.compile("".join(out), re.DOTALL)
    except re.error as exc:  # e.g. a reversed range "[z-a]"
        raise ValueError(f"glob {pattern!r} is not valid: {exc.msg}") from exc


def glob_match(pattern: str, path: str) -> bool:
    """Whether a normalised repository-relative ``path`` matches the policy glob ``pattern``."""
    return compile_glob(pattern).fullmatch(path) is not None


def first_match(patterns: tuple[str, ...] | list[str], path: str) -> str | None:
    """The first of ``patterns`` that matches ``path``, or ``None``; names the glob in messages."""
    for pattern in patterns:
        if glob_match(pattern, path):
            return pattern
    return None


def literal_prefix(pattern: str) -> str:
    """The leading directories of ``pattern`` that hold no wildcard, with a trailing slash.

    ``src/app/*.py`` gives ``src/app/``; ``*.py`` gives ``""``. Every path the pattern matches
    starts with this prefix, which lets the policy merge prove that one glob is narrower.
    """
    prefix: list[str] = []
    for segment in pattern.split("/")[:-1]:
        if any(char in segment for char in "*?["):
            break
        prefix.append(segment + "/")
    return "".join(prefix)


def _collapse_globstars(segments: list[str]) -> list[str]:
    """``a/**/**/b`` means the same as ``a/**/b``; collapsing keeps the regex linear."""
    collapsed: list[str] = []
    for segment in segments:
        if segment == "**" and collapsed and collapsed[-1] == "**":
            continue
        collapsed.append(segment)
    return collapsed


def _translate_segment(segment: str, pattern: str) -> str:
    out: list[str] = []
    index = 0
    while index < len(segment):
        char = segment[index]
        if char == "*":
            # Runs of stars become one: "[^/]*[^/]*" would backtrack quadratically.
            while index + 1 < len(segment) and segment[index + 1] == "*":
                index += 1
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[":
            regex, index = _translate_class(segment, index, pattern)
            out.append(regex)
            continue
        else:
            out.append(re.escape(char))
        index += 1
    return "".join(out)


def _translate_class(segment: str, start: int, pattern: str) -> tuple[str, int]:
    """Translate the class opening at ``segment[start]``; return it and the index after ``]``."""
    index = start + 1
    negate = index < len(segment) and segment[index] in "!^"
    if negate:
        index += 1
    body_start = index
    # A "]" right after the opening (or the negation) is a literal member, as in fnmatch.
    if index < len(segment) and segment[index] == "]":
        index += 1
    while index < len(segment) and segment[index] != "]":
        index += 1
    if index >= len(segment):
        raise ValueError(f"glob {pattern!r} has an unclosed '['")
    members = _class_members(segment[body_start:index], pattern)
    # A range such as "[!-0]" spans "/", so a positive class needs the lookahead as well.
    regex = f"[^/{members}]" if negate else f"(?!/)[{members}]"
    return regex, index + 1


def _class_members(body: str, pattern: str) -> str:
    """The regex for a class body: single characters and ``a-z`` ranges, each escaped.

    Escaping every member keeps regex class syntax ("^", "\\", "&&", "--") out of it.
    """
    out: list[str] = []
    index = 0
    while index < len(body):
        if index + 2 < len(body) and body[index + 1] == "-":
            low, high = body[index], body[index + 2]
            if low > high:
                raise ValueError(f"glob {pattern!r} has a reversed range {low}-{high}")
            out.append(f"{re.escape(low)}-{re.escape(high)}")
            index += 3
        else:
            out.append(re.escape(body[index]))
            index += 1
    return "".join(out)
