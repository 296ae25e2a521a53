"""The Sandbox seam: where untrusted code (the model's edits, the repository's tests) runs.

A session has no network, no credentials, a read-only root, a size-limited workspace, CPU,
memory, pids and time limits, and is destroyed by ``close``. Everything that comes out of a
session (exit code, output, JUnit XML) is hostile input: bounded in size and parsed into the
closed types below.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class Limits:
    """Resource limits of one session."""

    memory_mb: int = 1024
    cpus: float = 1.0
    pids: int = 256
    workspace_mb: int = 256
    timeout_s: int = 300


@dataclass(frozen=True)
class TestCounts:
    """Counts read from a JUnit XML report."""

    __test__ = False  # not a pytest test class, despite the name

    passed: int = 0
    failed: int = 0
    errors: int = 0
    skipped: int = 0
    failures: tuple[str, ...] = field(default_factory=tuple)  # "test id: first line of message"

    @property
    def total(self) -> int:
        return self.passed + self.failed + self.errors + self.skipped


@dataclass(frozen=True)
class Result:
    """The outcome of one command in a session. ``junit`` is None when no report was written."""

    exit_code: int
    stdout: str
    stderr: str
    timed_out: bool
    junit: TestCounts | None = None


class Session(Protocol):
    """One running sandbox. Working directory is the workspace, holding the repository."""

    def put(self, tree: bytes) -> None:
        """Replace the workspace content with the files of ``tree`` (an uncompressed tar)."""

    def run(self, cmd: list[str], timeout_s: int) -> Result:
        """Run ``cmd`` in the workspace; killed after ``timeout_s``. Reads the JUnit report
        from ``$FORGEBOT_JUNIT`` (a path outside the workspace) when the command wrote one."""

    def close(self) -> None:
        """Destroy the session and everything in it. Safe to call twice."""


class Sandbox(Protocol):
    """A backend that starts sessions."""

    def start(self, image: str, limits: Limits, labels: dict[str, str]) -> Session:
        """Start a session from ``image``; ``labels`` mark it with job and attempt ids."""
