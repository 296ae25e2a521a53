"""The policy gate: a change set and a policy in, violations out. No IO.

Rule names are stable strings; the reporter and the tests key on them:

=============================== ==========================================================
``paths.invalid``               an empty path, or one with control characters
``paths.outside_repo``          absolute, ``..`` segment, backslash, drive letter
``paths.git_dir``               any path with a ``.git`` segment (any case)
``paths.submodule``             a gitlink (mode 160000) added or changed
``paths.deny``                  a path matching a deny glob (old and new path of a rename)
``paths.allow``                 with a non-empty allow list, a path matching none of it
``paths.symlink``               a symlink whose target is absolute or leaves the repository,
                                or lands in ``.git`` or on a denied path
``limits.max_files_changed``    more files than allowed
``limits.max_lines_changed``    more added plus removed lines than allowed
``checks.forbid_test_deletion`` a test file deleted or renamed away, a test function removed
``checks.forbid_test_skip``     a skip marker added to a test file
``checks.forbidden_patterns:N`` an added line matching the forbidden pattern named ``N``
=============================== ==========================================================

A forbidden pattern's violation names the file and the line but never quotes the line: it may
hold a secret as well.

The first three are not configurable: git and the trusted side depend on them. A path that
fails one of them is not matched against globs as well, since its name means nothing then.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache

from bot.hidden_text import describe as describe_hidden
from bot.hidden_text import hidden_characters
from bot.policy.changeset import SUBMODULE_MODE, SYMLINK_MODE, ChangeSet, FileChange, FileStatus
from bot.policy.glob import first_match
from bot.policy.model import ForbiddenPattern, Policy

_DRIVE = re.compile(r"^[A-Za-z]:")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_TEST_DIRS = frozenset({"tests", "test", "__tests__", "testing", "spec", "specs"})
# test_x.py, x_test.py, x_test.go, x.test.js, x.spec.ts, x_spec.js (jasmine), and a
# package's single test.js (tape and mocha projects often have just that).
_TEST_FILE = re.compile(
    r"(?:^test_.*\.py|.*_test\.py|.*_test\.go|.*[._](?:test|spec)\.[cm]?[jt]sx?"
    r"|^tests?\.[cm]?[jt]sx?)$"
)
_PY_TEST_DEF = re.compile(r"^\s*(?:async\s+)?def\s+(test\w*)\s*\(")
_GO_TEST_FUNC = re.compile(r"^\s*func\s+(Test\w*)\s*\(")
_SKIP_MARKER = re.compile(
    r"@pytest\.mark\.skip\b(?!if)|\bpytest\.skip\(|@unittest\.skip\b|\bunittest\.skip\("
    r"|\b(?:it|test|describe)\.skip\(|\bx(?:it|describe|test)\(|\bt\.Skip(?:Now|f)?\("
)


@dataclass(frozen=True)
class Violation:
    """One broken rule: which, where (``path`` is ``None`` for a change-wide limit) and why."""

    rule: str
    path: str | None
    line: int | None
    message: str

    def __str__(self) -> str:
        return self.message


def evaluate(policy: Policy, changes: ChangeSet) -> list[Violation]:
    """Every violation of ``policy`` by ``changes``, file by file in diff order, then limits.

    An empty list means the change may be published as far as paths and size go; running
    the tests and the secret scan are separate gates.
    """
    violations: list[Violation] = []
    for change in changes.files:
        violations.extend(_path_violations(policy, change))
        violations.extend(_symlink_violations(policy, change))
        if policy.checks.forbid_test_deletion:
            violations.extend(_test_violations(change))
        violations.extend(forbidden_pattern_violations(policy.checks.forbidden_patterns, change))
        if policy.checks.forbid_invisible_characters:
            violations.extend(invisible_character_violations(change))
    violations.extend(_limit_violations(policy, changes))
    return violations


def normalise_path(path: str) -> str | None:
    """``path`` with ``.`` and empty segments dropped, or ``None`` if it leaves the repository.

    Leaving means absolute, a drive letter, a backslash (a separator on Windows, and never
    needed in a repository path) or any ``..`` segment, even one that would come back inside:
    git never writes those, so only a forged path has one.
    """
    if path.startswith("/") or "\\" in path or _DRIVE.match(path):
        return None
    segments = [segment for segment in path.split("/") if segment not in ("", ".")]
    if not segments or ".." in segments:
        return None
    return "/".join(segments)


def is_test_path(path: str) -> bool:
    """Whether ``path`` is a test file: under a ``tests``, ``test``, ``testing``, ``spec``,
    ``specs`` or ``__tests__`` directory, or named like ``test_*.py``, ``*_test.py``,
    ``*_test.go``, ``*.test.js``, ``*.spec.ts``, ``*_spec.js`` or ``test.js``."""
    segments = path.split("/")
    return bool(_TEST_DIRS.intersection(segments[:-1])) or bool(_TEST_FILE.match(segments[-1]))


def _has_git_segment(path: str) -> bool:
    # Any case, and with the trailing dots and spaces Windows drops: ".GIT", ".git." and
    # ".git " all name the git directory on some checkout of the repository.
    return any(segment.lower().rstrip(". ") == ".git" for segment in path.split("/"))


def _path_violations(policy: Policy, change: FileChange) -> Iterator[Violation]:
    for path in change.paths:
        if not path or _CONTROL.search(path):
            yield violation(
                "paths.invalid", path, None, "the path is empty or has control characters"
            )
            continue
        normal = normalise_path(path)
        if normal is None:
            yield violation("paths.outside_repo", path, None, "the path leaves the repository")
            continue
        if _has_git_segment(normal):
            yield violation("paths.git_dir", path, None, "the path is inside a .git directory")
            continue
        denied = first_match(policy.paths.deny, normal)
        if denied is not None:
            yield violation("paths.deny", path, None, f"matches the denied glob {denied!r}")
        allow = policy.paths.allow
        if allow and first_match(allow, normal) is None:
            yield violation(
                "paths.allow", path, None, f"matches none of the allowed globs {list(allow)!r}"
            )
    if change.new_mode == SUBMODULE_MODE:
        yield violation("paths.submodule", change.path, None, "adds or changes a git submodule")


def _symlink_violations(policy: Policy, change: FileChange) -> Iterator[Violation]:
    if not change.is_symlink:
        return
    if not change.added:
        if change.old_mode != SYMLINK_MODE:
            # A file turned into a link keeps its content as the target, which the diff
            # does not show; refuse rather than guess.
            yield violation(
                "paths.symlink", change.path, None, "becomes a symbolic link to an unseen target"
            )
        return
    target = change.added[0]
    reason = _bad_symlink_target(policy, change.path, target.text)
    if reason is not None:
        yield violation(
            "paths.symlink",
            change.path,
            target.number,
            f"symbolic link to {target.text!r} {reason}",
        )


def _bad_symlink_target(policy: Policy, link: str, target: str) -> str | None:
    """Why a link at ``link`` pointing to ``target`` is refused, or ``None`` if it is fine."""
    if target.startswith("/") or "\\" in target or _DRIVE.match(target) or not target:
        return "is absolute or not a plain relative path"
    # Resolve against the link's directory, as the filesystem will.
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(link), target))
    if resolved == ".." or resolved.startswith("../") or resolved.startswith("/"):
        return "points outside the repository"
    if _has_git_segment(resolved):
        return "points into a .git directory"
    denied = first_match(policy.paths.deny, resolved)
    if denied is not None:
        return f"points at {resolved!r}, which matches the denied glob {denied!r}"
    return None


def _test_violations(change: FileChange) -> Iterator[Violation]:
    rule = "checks.forbid_test_deletion"
    old = change.old_path or change.path
    if change.status is FileStatus.DELETED and is_test_path(change.path):
        yield violation(rule, change.path, None, "deletes a test file")
        return
    if change.status is FileStatus.RENAMED and is_test_path(old) and not is_test_path(change.path):
        yield violation(rule, old, None, f"renames a test file to {change.path!r}, not a test")
        return
    if not is_test_path(change.path):
        return
    yield from _removed_test_functions(change)
    for line in change.added:
        if _SKIP_MARKER.search(line.text):
            yield violation(
                "checks.forbid_test_skip", change.path, line.number, "adds a test skip marker"
            )


def forbidden_pattern_violations(
    patterns: Sequence[ForbiddenPattern], change: FileChange
) -> Iterator[Violation]:
    """One violation per added line of ``change`` and forbidden pattern it matches.

    Every file is judged, Markdown included: an install line that pipes a download into a
    shell does harm from a README too. A symlink's target is a path, judged by the path rules.
    """
    if change.is_symlink:
        return
    compiled = [(item, _compiled(item.pattern)) for item in patterns]
    for line in change.added:
        for item, regex in compiled:
            if regex.search(line.text):
                yield violation(
                    f"checks.forbidden_patterns:{item.name}",
                    change.path,
                    line.number,
                    item.description or f"matches the forbidden pattern {item.name!r}",
                )


def invisible_character_violations(change: FileChange) -> Iterator[Violation]:
    """An added line holding bidirectional controls, zero-width or Unicode tag characters,
    in any file and any language: code that reads differently from what it does (the Trojan
    Source class) or carries text no reviewer sees."""
    for line in change.added:
        found = hidden_characters(line.text)
        if found:
            yield violation(
                "checks.invisible_characters", change.path, line.number,
                f"holds {describe_hidden(found)}: what a reviewer sees is not what runs",
            )


@lru_cache(maxsize=256)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _removed_test_functions(change: FileChange) -> Iterator[Violation]:
    """Test functions whose definition is removed and not added back in the same file."""
    pattern = _GO_TEST_FUNC if change.path.endswith(".go") else _PY_TEST_DEF
    if not change.path.endswith((".py", ".go")):
        return
    added_names = {m.group(1) for line in change.added if (m := pattern.match(line.text))}
    for line in change.removed:
        match = pattern.match(line.text)
        if match and match.group(1) not in added_names:
            yield violation(
                "checks.forbid_test_deletion",
                change.path,
                line.number,
                f"removes the test function {match.group(1)}",
            )


def _limit_violations(policy: Policy, changes: ChangeSet) -> Iterator[Violation]:
    limits = policy.limits
    if changes.files_changed > limits.max_files_changed:
        yield violation(
            "limits.max_files_changed",
            None,
            None,
            f"changes {changes.files_changed} files; the limit is {limits.max_files_changed}",
        )
    if changes.lines_changed > limits.max_lines_changed:
        yield violation(
            "limits.max_lines_changed",
            None,
            None,
            f"changes {changes.lines_changed} lines (added plus removed); "
            f"the limit is {limits.max_lines_changed}",
        )


def violation(rule: str, path: str | None, line: int | None, detail: str) -> Violation:
    """A violation whose message names the rule and the place, e.g.
    ``[paths.deny] .github/workflows/ci.yml: matches the denied glob '.github/**'``."""
    shown = None if path is None else _display(path)
    where = "" if shown is None else (f"{shown}:{line}: " if line is not None else f"{shown}: ")
    return Violation(rule=rule, path=path, line=line, message=f"[{rule}] {where}{detail}")


def _display(path: str) -> str:
    """The path for a message; quoted when it holds characters that could forge a line."""
    return repr(path) if _CONTROL.search(path) or not path else path
