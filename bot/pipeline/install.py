"""Installing a repository's dependencies for a job: from a kept snapshot when one fits,
else by the setup command through the egress proxy; and again, on the change's manifests,
when the change edits them (``check_dependency_change``)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from bot.pipeline.attempt import Prepared, Recorder, Runtime, sandbox_labels, sandbox_limits
from bot.pipeline.dependencies import (
    egress_hosts,
    egress_line,
    explain_failure,
    installed_line,
    reused_line,
    setup_cache,
)
from bot.policy.evaluate import Violation
from bot.policy.model import Policy
from bot.sandbox.base import Result, Session, SetupSnapshots
from bot.sandbox.egress import refused_hosts
from bot.sandbox.manifests import declared, dependency_changes, is_manifest
from bot.sandbox.tarball import tar_directory
from bot.sandbox.toolchain import Toolchain, detect_toolchain, read_marker_files

MAX_EGRESS_EVENTS = 200
MAX_DEPENDENCY_LINES = 50


@dataclass(frozen=True)
class Installed:
    """The image sessions start from (None when the setup failed), the status lines, and,
    on failure, what the comment says."""

    image: str | None
    lines: tuple[str, ...]
    failure: str = ""
    result: Result | None = None


def install_dependencies(rt: Runtime, rec: Recorder, toolchain: Toolchain, *,
                         manifests: Mapping[str, str], tree: Path, policy: Policy) -> Installed:
    """Run ``toolchain``'s setup for ``tree`` (or reuse a kept snapshot of the same setup)."""
    sandbox = rt.sandbox
    assert isinstance(sandbox, SetupSnapshots) and toolchain.setup
    setup_env = rt.settings.sandbox.docker.setup_env
    egress = egress_hosts(policy, toolchain.name, setup_env)
    cache = setup_cache(rec.lease.claim.job.repo, toolchain, manifests, egress, setup_env)
    kept = sandbox.find_snapshot(toolchain.image, cache)
    if kept is not None:
        rec.event("setup.reused", snapshot=kept.image[:19], made=kept.created)
        return Installed(kept.image, (reused_line(kept.created),))
    limits = replace(sandbox_limits(rt, policy), timeout_s=policy.limits.setup_timeout_s)
    outcome = sandbox.snapshot_setup(
        toolchain.image, tar_directory(tree), list(toolchain.setup), limits,
        sandbox_labels(rec, "setup"), egress=egress, cache=cache)
    result = outcome.result
    rec.event("setup.egress", hosts=list(egress or ()),
              requests=[r.as_event() for r in outcome.egress[:MAX_EGRESS_EVENTS]],
              total=len(outcome.egress), refused=refused_hosts(outcome.egress))
    rec.event("setup.ran", exit_code=result.exit_code, killed_by=result.killed_by,
              seconds=round(outcome.seconds, 1))
    if outcome.image is None:
        return Installed(None, (), explain_failure(outcome, egress), result)
    return Installed(outcome.image, (installed_line(outcome), egress_line(outcome.egress, egress)))


@dataclass(frozen=True)
class DependencyCheck:
    """What a change does to the dependencies: the lines for the pull request, a violation
    when the policy blocks it, and the failed setup when the new ones do not install."""

    lines: tuple[str, ...] = ()
    violation: Violation | None = None
    failed_setup: Result | None = None

    @property
    def changed(self) -> bool:
        return bool(self.lines)


def check_dependency_change(rt: Runtime, rec: Recorder, *, base: Mapping[str, str],
                            changed_paths: list[str], tree: Path, toolchain: Toolchain,
                            policy: Policy) -> tuple[DependencyCheck, str | None]:
    """When the change edits a manifest or lockfile: list the dependencies it adds, removes
    or changes, apply ``checks.new_dependencies``, and install the change's dependencies
    through the proxy (``toolchain`` is detected again from the change's manifests). Returns
    the check and the image later sessions must start from (None: keep the current one)."""
    manifests = [path for path in changed_paths if is_manifest(path)]
    if not manifests:
        return DependencyCheck(), None
    after = read_marker_files(tree)
    lines = tuple(str(c) for c in dependency_changes(declared(base), declared(after)))
    lines = lines[:MAX_DEPENDENCY_LINES] or (
        f"{', '.join(manifests)} changed; no declared dependency differs",)
    rec.event("dependencies.changed", manifests=manifests, changes=list(lines))
    if policy.checks.new_dependencies == "block":
        why = (f"the change edits {', '.join(manifests)} ({'; '.join(lines[:5])}); "
               "checks.new_dependencies is block")
        return DependencyCheck(lines, Violation("checks.new_dependencies", manifests[0], None,
                                                plain(why))), None
    if not toolchain.setup or not isinstance(rt.sandbox, SetupSnapshots):
        return DependencyCheck(lines), None
    installed = install_dependencies(rt, rec, toolchain, manifests=after, tree=tree,
                                     policy=policy)
    if installed.image is None:
        return DependencyCheck(lines, failed_setup=installed.result), None
    return DependencyCheck(lines), installed.image


def plain(text: str, limit: int = 300) -> str:
    """Repository text fit for a status line: printable, no Markdown or HTML that could
    mention, link or break out (backticks, angle brackets, @, brackets), bounded."""
    cleaned = re.sub(r"[`<>@\[\]\x00-\x1f\x7f]", "", text)
    return cleaned[:limit]


class DependencyAwareSession:
    """The agent's sandbox session, which installs the dependencies again (through the proxy,
    or from a kept snapshot) when the model's edits change a manifest, and carries on in a
    session from the new snapshot. The agent sees an ordinary ``Session``."""

    def __init__(self, rt: Runtime, rec: Recorder, prepared: Prepared) -> None:
        assert prepared.setup is not None
        self._rt, self._rec, self._prepared = rt, rec, prepared
        self._setup = prepared.setup
        self._manifests = dict(prepared.setup.manifests)
        self._session = self._start(prepared.image)

    def _start(self, image: str) -> Session:
        return self._rt.sandbox.start(image, sandbox_limits(self._rt, self._prepared.policy),
                                      sandbox_labels(self._rec, "agent"))

    def put(self, tree: bytes) -> None:
        now = read_marker_files(self._prepared.agent_dir)
        if now != self._manifests:
            self._manifests = now
            self._reinstall(now)
        self._session.put(tree)

    def run(self, cmd: list[str], timeout_s: int) -> Result:
        return self._session.run(cmd, timeout_s)

    def close(self) -> None:
        self._session.close()

    def _reinstall(self, manifests: dict[str, str]) -> None:
        # Installed whatever checks.new_dependencies says, so the model's tests can run: the
        # verify stage decides whether the change may be published.
        policy = self._prepared.policy
        if not isinstance(self._rt.sandbox, SetupSnapshots):
            return
        found = detect_toolchain(manifests, self._setup.override,
                                 self._rt.settings.sandbox.images, self._setup.version)
        if not isinstance(found, Toolchain) or not found.setup:
            return
        installed = install_dependencies(self._rt, self._rec, found, manifests=manifests,
                                         tree=self._prepared.agent_dir, policy=policy)
        self._rec.event("dependencies.reinstalled", ok=installed.image is not None)
        if installed.image is None:
            return  # the tests will say what is missing; verify reports the failed setup
        fresh = self._start(installed.image)
        self._session.close()
        self._session = fresh
