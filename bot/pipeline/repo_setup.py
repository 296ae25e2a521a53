"""What a repository says about itself, read from the base commit of its default branch:
``.forgebot.yml`` (a toolchain override and a policy that may only tighten the bot-wide one)
and the toolchain its files call for.

Read on the trusted side from the base worktree, before the model touches anything, so a
change can never rewrite the rules it is judged by.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bot import gitops
from bot.errors import GitError, PolicyError
from bot.pipeline.outcomes import JobStopped, Outcome
from bot.policy.load import Ignored, merge_repo_policy
from bot.policy.model import Policy
from bot.sandbox.python_setup import pretend_version
from bot.sandbox.toolchain import (
    NoToolchain,
    Toolchain,
    ToolchainOverride,
    detect_toolchain,
    read_marker_files,
)
from bot.sandbox.toolchain import split_repo_config as split

REPO_CONFIG = ".forgebot.yml"
MAX_REPO_CONFIG_BYTES = 64 * 1024


@dataclass(frozen=True)
class RepoSetup:
    """The policy this job runs under, what of the repository's wishes was ignored, its
    toolchain, and the manifest files its setup was chosen from (name -> text)."""

    policy: Policy
    ignored: tuple[Ignored, ...]
    toolchain: Toolchain
    manifests: Mapping[str, str] = field(default_factory=dict)
    override: ToolchainOverride = field(default_factory=ToolchainOverride)
    version: str = "0.0.0"  # the pretend version for backends that read git


def read_repo_setup(worktree: Path, base: Policy, images: dict[str, str]) -> RepoSetup:
    """Read ``.forgebot.yml`` and detect the toolchain. A config that does not load, or a
    repository whose toolchain is unknown, stops the job with a message that says what to fix.
    """
    try:
        override, rest = split(_read_config(worktree), source=REPO_CONFIG)
        merged = merge_repo_policy(base, rest, source=REPO_CONFIG)
    except PolicyError as exc:
        raise JobStopped(Outcome.CONFIG_ERROR, f"`{REPO_CONFIG}` was not used: {exc}") from exc
    manifests = read_marker_files(worktree)
    version = pretend_version(latest_tag(worktree), manifests)
    found = detect_toolchain(manifests, override, images, version)
    if isinstance(found, NoToolchain):
        raise JobStopped(Outcome.NO_TOOLCHAIN, found.message)
    return RepoSetup(merged.policy, tuple(merged.ignored), found, manifests, override, version)


def latest_tag(worktree: Path) -> str | None:
    """The newest tag reachable from the worktree's commit, or None: the version a build
    backend that reads git (setuptools-scm, hatch-vcs) would give, read on the trusted side."""
    try:
        return gitops.run(["describe", "--tags", "--abbrev=0"], cwd=worktree).strip() or None
    except GitError:
        return None


def _read_config(worktree: Path) -> dict[str, Any] | None:
    path = worktree / REPO_CONFIG
    try:
        # O_NOFOLLOW: a config that is a symbolic link (maybe to a file outside) is refused.
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise PolicyError(f"{REPO_CONFIG}: cannot be read ({exc.strerror})") from exc
    with os.fdopen(fd, "rb") as handle:
        raw = handle.read(MAX_REPO_CONFIG_BYTES + 1)
    if len(raw) > MAX_REPO_CONFIG_BYTES:
        raise PolicyError(f"{REPO_CONFIG}: larger than {MAX_REPO_CONFIG_BYTES} bytes")
    try:
        loaded = yaml.safe_load(raw.decode("utf-8"))
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        raise PolicyError(f"{REPO_CONFIG}: not valid YAML: {exc}") from exc
    if loaded is None:
        return None
    if not isinstance(loaded, dict):
        raise PolicyError(f"{REPO_CONFIG}: the top level must be a mapping of keys to values")
    return loaded
