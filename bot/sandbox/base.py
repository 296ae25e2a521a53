"""The Sandbox seam: where untrusted code (the model's edits, the repository's tests) runs.

A session has no network, no credentials, a read-only root, a size-limited workspace, CPU,
memory, pids and time limits, and is destroyed by ``close``. Everything that comes out of a
session (exit code, output, JUnit XML) is hostile input: bounded in size and parsed into the
closed types below.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

from bot.sandbox.egress import EgressRecord

# Why the sandbox killed a command: its wall-clock limit, the out-of-memory killer, or its
# processes filling the pids limit (a fork bomb).
KilledBy = Literal["timeout", "oom", "pids"]


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
    # (test id, outcome) of every case, in report order, at most junit.MAX_CASES of them;
    # outcome is "passed", "failed", "errors" or "skipped". The evidence check compares them.
    cases: tuple[tuple[str, str], ...] = field(default_factory=tuple)
    # Lines starting with "FIGURE " that test cases printed (their <system-out>/<system-err>)
    # or recorded (a <property name="figure">, as "FIGURE <value>"), at most junit.MAX_FIGURE_LINES:
    # a spec's constraint figures, which pytest does not show for passing tests.
    figure_lines: tuple[str, ...] = field(default_factory=tuple)

    @property
    def total(self) -> int:
        return self.passed + self.failed + self.errors + self.skipped


@dataclass(frozen=True)
class Result:
    """The outcome of one command in a session. ``junit`` is None when no report was written.

    ``junit_missing`` says why there is no report when there is none. ``killed_by`` says why
    the sandbox killed the command, when it did: ``"oom"`` (a process
    of the command met the memory limit), ``"pids"`` (the pids limit was reached) or
    ``"timeout"``; None when nothing was killed or the backend cannot tell.
    """

    exit_code: int
    stdout: str
    stderr: str
    timed_out: bool
    junit: TestCounts | None = None
    killed_by: KilledBy | None = None
    # Why ``junit`` is None, when the command ran: one of the JUNIT_* reasons of
    # bot.sandbox.junit ("the test command wrote none" ...).
    junit_missing: str | None = None


@dataclass(frozen=True)
class SetupResult:
    """The outcome of a setup phase: ``image`` is the snapshot to start later sessions from,
    None when the setup command failed (then nothing was kept; ``result`` says why)."""

    image: str | None
    result: Result
    egress: tuple[EgressRecord, ...] = ()  # what the setup asked the egress proxy for
    seconds: float = 0.0


@dataclass(frozen=True)
class SetupCache:
    """Where a setup may be kept for later jobs: ``key`` hashes everything the setup depends
    on (the manifests, the command, the egress allow-list); ``scope`` names the repository,
    whose package cache (pip wheels, npm tarballs) survives between setups."""

    key: str
    scope: str


@dataclass(frozen=True)
class CachedSnapshot:
    """A kept setup snapshot: the image to start sessions from, and when it was made."""

    image: str
    created: float


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

    def reap_orphans(self, older_than_s: float, labels: Mapping[str, str] | None = None) -> int:
        """Remove sessions (with ``labels``, if given) older than ``older_than_s`` seconds,
        left behind by a crash; returns how many. Raises ``SandboxError`` when it cannot list
        them."""

    def sandbox_owners(self) -> set[str]:
        """The worker identities (label ``forgebot.owner``) of the live sessions."""


@runtime_checkable
class SetupSnapshots(Protocol):
    """A backend that can run a repository's setup (installing its dependencies) once and
    start every later session of the job from the result. Optional: not every backend can."""

    def snapshot_setup(
        self,
        image: str,
        tree: bytes,
        setup_cmd: list[str],
        limits: Limits,
        labels: dict[str, str],
        *,
        egress: Sequence[str] | None = None,
        cache: SetupCache | None = None,
    ) -> SetupResult:
        """Run ``setup_cmd`` in a session from ``image`` holding ``tree`` and keep what it
        installed as a snapshot labelled with ``labels``. The repository itself is not part
        of the snapshot. Without ``egress`` the setup has no network; with it, its only way
        out is a proxy that lets through those hosts alone, and ``SetupResult.egress``
        records each request. With ``cache`` the snapshot is kept for ``find_snapshot``
        (not removed with the job) and the repository's package cache is used."""

    def find_snapshot(self, image: str, cache: SetupCache) -> CachedSnapshot | None:
        """A snapshot kept by an earlier ``snapshot_setup`` from ``image`` with the same
        ``cache.key``, or None."""

    def remove_snapshot(self, image: str) -> None:
        """Remove a snapshot made by ``snapshot_setup``. Safe to call twice; never raises."""
