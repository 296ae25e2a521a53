"""Grading: check a branch out of the local forge, lay the hidden tests over it and run the
task's test command in a fresh sandbox session.

The branch is the model's work and therefore hostile: it is checked out with hardened git,
the hidden tests replace whatever stands at their paths (a symbolic link or a folder the model
put there is removed, never followed), and the tests run only inside the sandbox. What comes
back is reduced to an exit code, JUnit counts and a bounded tail of the output.
"""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from bot import gitops
from bot.config import Settings
from bot.errors import SandboxError
from bot.eval.tasks import Task
from bot.pipeline.dependencies import egress_hosts, explain_failure, setup_cache
from bot.pipeline.repo_setup import read_repo_setup
from bot.policy.model import Policy
from bot.sandbox.base import Limits, Result, Sandbox, SetupSnapshots, TestCounts
from bot.sandbox.tarball import tar_directory
from bot.sandbox.toolchain import Command, Toolchain, read_marker_files

MAX_TAIL_CHARS = 2000


@dataclass(frozen=True)
class TestRun:
    """One run of the test command: ``passed`` when it exited 0 and nothing killed it."""

    __test__ = False  # not a pytest test class, despite the name

    passed: bool
    exit_code: int
    timed_out: bool
    counts: TestCounts | None
    tail: str  # the end of the output: sandbox text, for people to read, never to parse

    @classmethod
    def of(cls, result: Result) -> TestRun:
        output = "\n".join(p for p in (result.stdout.rstrip(), result.stderr.rstrip()) if p)
        passed = result.exit_code == 0 and not result.timed_out and result.killed_by is None
        return cls(passed, result.exit_code, result.timed_out, result.junit,
                   output[-MAX_TAIL_CHARS:])

    def describe(self) -> str:
        """``exit 1, 3 passed, 2 failed`` (or ``timed out``), for the results' details."""
        what = "timed out" if self.timed_out else f"exit {self.exit_code}"
        if self.counts is not None:
            what += f", {self.counts.passed} passed, {self.counts.failed} failed"
            what += f", {self.counts.errors} errors" if self.counts.errors else ""
        return what


GRADER_SCOPE = "forgebot-eval-grader"


@dataclass(frozen=True)
class Grader:
    """Runs a task's hidden tests on branches of its local-forge repository."""

    settings: Settings
    sandbox: Sandbox
    policy: Policy
    labels: Mapping[str, str]  # marks the sessions, so leftovers can be reaped by owner

    def toolchain(self, worktree: Path) -> Toolchain:
        """The toolchain the bot itself detects for this repository (``JobStopped`` when it
        finds none: the task's repository says nothing about how to test it)."""
        return read_repo_setup(worktree, self.policy, dict(self.settings.sandbox.images)).toolchain

    def run(self, task: Task, bare: Path, branch: str, workdir: Path) -> tuple[TestRun, str]:
        """Check ``branch`` of ``bare`` out under ``workdir``, lay the hidden tests over it and
        run the test command; returns the run and the toolchain's name."""
        tree = workdir / "tree"
        checkout(bare, branch, tree)
        toolchain = self.toolchain(tree)
        overlay(task.hidden_dir, tree)
        command = task.test if task.test is not None else toolchain.test
        return self._run_tests(toolchain, command, tree), toolchain.name

    def _limits(self) -> Limits:
        s = self.settings.sandbox
        return Limits(memory_mb=s.memory_mb, cpus=s.cpus, pids=s.pids,
                      workspace_mb=s.workspace_mb, timeout_s=self.policy.limits.test_timeout_s)

    def _run_tests(self, toolchain: Toolchain, command: Command, tree: Path) -> TestRun:
        limits, labels = self._limits(), dict(self.labels)
        image = toolchain.image
        if toolchain.setup:
            image = self._setup(toolchain, tree, limits, labels)
        session = self.sandbox.start(image, limits, labels)
        try:
            session.put(tar_directory(tree))
            return TestRun.of(session.run(list(command), limits.timeout_s))
        finally:
            session.close()

    def _setup(self, toolchain: Toolchain, tree: Path, limits: Limits,
               labels: dict[str, str]) -> str:
        """Install the repository's dependencies as the pipeline does, once per grading run."""
        assert toolchain.setup is not None
        if not isinstance(self.sandbox, SetupSnapshots):
            raise SandboxError("this sandbox backend cannot run the setup phase the task's "
                               "repository needs; give the task a repository without "
                               "dependencies")
        # The same kept snapshot the bot's own job used, when the manifests are the same.
        setup_env = self.settings.sandbox.docker.setup_env
        egress = egress_hosts(self.policy, toolchain.name, setup_env)
        cache = setup_cache(GRADER_SCOPE, toolchain, read_marker_files(tree), egress, setup_env)
        kept = self.sandbox.find_snapshot(toolchain.image, cache)
        if kept is not None:
            return kept.image
        timed = replace(limits, timeout_s=self.policy.limits.setup_timeout_s)
        result = self.sandbox.snapshot_setup(
            toolchain.image, tar_directory(tree), list(toolchain.setup), timed, labels,
            egress=egress, cache=cache)
        if result.image is None:
            raise SandboxError("the setup failed while grading. "
                               + explain_failure(result, egress), retryable=False)
        return result.image


def checkout(bare: Path, branch: str, dest: Path) -> str:
    """Clone ``branch`` of the bare repository ``bare`` into ``dest``; return its sha."""
    gitops.run(["clone", "--quiet", "--no-hardlinks", "--branch", branch, "--",
                str(bare.resolve()), str(dest.resolve())])
    return gitops.run(["rev-parse", "HEAD"], cwd=dest).strip()


def overlay(source: Path, dest: Path) -> list[str]:
    """Copy every file under ``source`` to the same path under ``dest``; returns the paths.

    Whatever stands in the way in ``dest`` (a symbolic link, a file where a folder must be,
    a folder where the file goes) is removed first, so nothing is written through a link.
    """
    placed = []
    for path in sorted(source.rglob("*")):
        if path.is_symlink() or not path.is_file():
            continue
        relative = path.relative_to(source)
        target = dest
        for part in relative.parts[:-1]:
            target = target / part
            _clear(target, keep_folder=True)
            target.mkdir(exist_ok=True)
        target = target / relative.parts[-1]
        _clear(target, keep_folder=False)
        shutil.copyfile(path, target)
        placed.append(relative.as_posix())
    return placed


def _clear(path: Path, *, keep_folder: bool) -> None:
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if stat.S_ISDIR(mode):
        if not keep_folder:
            shutil.rmtree(path)
        return
    path.unlink()  # a file, or a link (to anything): never followed
