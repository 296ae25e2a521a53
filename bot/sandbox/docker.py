"""The Docker sandbox backend: one hardened container per session.

Layout inside a session::

    /sandbox        a per-session named volume backed by tmpfs (size = Limits.workspace_mb),
                    owned by uid 1000; the only writable place besides /tmp
    /sandbox/repo   the repository (``put``) and the working directory of ``run``
    /sandbox/out    reports; ``$FORGEBOT_JUNIT`` is /sandbox/out/junit.xml
    /tmp            a tmpfs (DockerOptions.tmp_mb); HOME and the tools' caches live here
    /deps           dependencies a setup snapshot installed (read-only; absent without one)

Why a named volume and not ``tmpfs=``: with a read-only root, ``put_archive`` into a tmpfs
mount fails ("rootfs is marked read-only"), and into a tmpfs ``Mount`` it reports success
while nothing appears. A tmpfs-backed volume takes archives and is still RAM-only.

The container runs ``sleep infinity`` under Docker's init, both as ``nobody``; commands run
through exec as uid 1000, bounded twice: ``timeout -s KILL`` inside, and a host-side timer
that kills the whole container if the exec overruns (``exec`` has no timeout of its own). A
killed session cannot be used again. Processes a command leaves behind are killed after it
(``kill -9 -1`` as uid 1000 spares only the two ``nobody`` processes), so every command
starts in a clean session.

A run that fails or leaves processes behind is asked why: the session's own cgroup counters
(read inside, from /sys/fs/cgroup, which the kernel writes) tell an out-of-memory kill or a
full pids limit from an ordinary failure, so ``Result.killed_by`` can say "oom", "pids" or
"timeout".

Setup snapshots: ``snapshot_setup`` runs a repository's setup command (installing its
dependencies into ``/deps``, outside the repository) in a container whose root is writable
and which has network only when the caller says so, then ``docker commit``s it. Later
sessions start from that image with the usual read-only root; the workspace volume and /tmp
are never part of a commit. Snapshots carry the job's labels and ``forgebot.snapshot=1``;
``remove_snapshot`` and ``reap_orphans`` remove them.

Everything read back (output, exit code, JUnit XML) is hostile: output is bounded and decoded
with replacement, the report is size-bounded, unpacked from its tar by member, and parsed
with defusedxml into ``TestCounts``; a bad report gives ``junit=None``, never an exception.
No docker or requests exception leaves this module: each becomes ``SandboxError``.
"""

from __future__ import annotations

import contextlib
import io
import logging
import tarfile
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any, cast

import docker
import docker.errors
import requests.exceptions

from bot.errors import SandboxError
from bot.sandbox.base import (
    CachedSnapshot,
    KilledBy,
    Limits,
    Result,
    SetupCache,
    SetupResult,
    TestCounts,
)
from bot.sandbox.docker_setup import (
    CA_ENVIRONMENT,
    CA_PATH,
    CACHE_DIR,
    CACHE_ENVIRONMENT,
    cache_labels,
    ensure_cache_volume,
    ensure_egress_network,
    find_cached_snapshot,
    parse_timestamp,
    proxy_environment,
    reap_setup_cache,
)
from bot.sandbox.egress import SquidProxy
from bot.sandbox.junit import (
    JUNIT_ABSENT,
    JUNIT_LIMIT,
    JUNIT_MALFORMED,
    JUNIT_TOO_LARGE,
    JUNIT_UNREADABLE,
    junit_from_tar,
    parse_junit,
)
from bot.sandbox.netsink import SINK_LABEL, ObservedSession, Sink
from bot.sandbox.options import DockerOptions
from bot.sandbox.pypi_mirror import PYPI_INDEX, PypiMirror, mirror_environment
from bot.sandbox.tarball import SANDBOX_GID, SANDBOX_UID, normalise_tree

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class RunnerImage:
    """One runner image the bot knows: ``forgebot-runner-<toolchain>:<version>``, built by
    ``runners/<toolchain>/build-offline.sh`` (or its Dockerfile where a registry is reachable).
    Bump ``version`` (and RUNNER_VERSION in that script, and the Dockerfile's label) when the
    bot starts to depend on something new in the image."""

    toolchain: str
    version: int

    @property
    def repository(self) -> str:
        return f"forgebot-runner-{self.toolchain}"

    @property
    def ref(self) -> str:
        return f"{self.repository}:{self.version}"

    def build_hint(self) -> str:
        """How to build this image, for error messages."""
        offline = f"runners/{self.toolchain}/build-offline.sh"
        make = "`make runner-image` (runs " if self.toolchain == "python" else "`bash "
        close = ")" if self.toolchain == "python" else "`"
        return (
            f"build it with {make}{offline}{close}, or where a registry is reachable with "
            f"`docker build -t {self.ref} -f runners/{self.toolchain}/Dockerfile runners`"
        )


RUNNER_IMAGES: Mapping[str, RunnerImage] = MappingProxyType(
    {name: RunnerImage(name, 1) for name in ("python", "node", "go")}
)
RUNNER_VERSION = RUNNER_IMAGES["python"].version  # the Python image, as before
RUNNER_IMAGE = RUNNER_IMAGES["python"].ref
VERSION_LABEL = "org.forgebot.runner.version"
OWNER_LABEL = "forgebot.owner"  # the worker that started a session, so its orphans can be found
SESSION_LABEL = "forgebot.session"
SETUP_LABEL = "forgebot.setup"  # a setup container (writable root, maybe network)
SNAPSHOT_LABEL = "forgebot.snapshot"  # an image committed from a setup container
SNAPSHOT_REPOSITORY = "forgebot-snapshot"

WORKSPACE_DIR = "/sandbox"
REPO_DIR = "/sandbox/repo"
OUT_DIR = "/sandbox/out"
JUNIT_PATH = "/sandbox/out/junit.xml"
SANDBOX_USER = f"{SANDBOX_UID}:{SANDBOX_GID}"
SANDBOX_TMP = "/tmp"  # noqa: S108 - a path inside the sandbox, a private tmpfs
# Dependencies installed by the setup phase: in the container's own layer (so a commit keeps
# them), outside the repository (so replacing the repository keeps them too).
DEPS_DIR = "/deps"

OUTPUT_LIMIT = 64 * 1024  # bytes kept per stream: half from the start, half from the end
KILL_GRACE_S = 5.0  # the host timer fires this long after the in-container timeout
HOUSEKEEPING_TIMEOUT_S = 60  # bound on the bot's own exec calls (clearing the workspace)

# Type bits of Go's os.FileMode, as in get_archive's stat: dir, symlink, device, named pipe,
# socket, char device, irregular. None set means a regular file.
_GO_MODE_NOT_REGULAR = (
    (1 << 31) | (1 << 27) | (1 << 26) | (1 << 25) | (1 << 24) | (1 << 21) | (1 << 19)
)

_KILLED_EXIT = 137  # 128 + SIGKILL: the in-container timeout, the OOM killer, the host timer
# The container's own processes between commands: docker-init and `sleep infinity`. They
# run as IDLE_USER, so the sandbox user can neither signal nor trace them.
_IDLE_PROCESSES = 2
IDLE_USER = "65534:65534"  # nobody:nogroup

# cgroup v1 and v2 files that count out-of-memory kills ("oom_kill N") and pids-limit hits
# ("max N"); only the files of the engine's cgroup version exist.
_CGROUP_FILES = (
    "/sys/fs/cgroup/memory/memory.oom_control",
    "/sys/fs/cgroup/pids/pids.events",
    "/sys/fs/cgroup/memory.events",
    "/sys/fs/cgroup/pids.events",
)

# The whole environment of a session: nothing of the bot's own environment is passed on.
# The toolchain variables point every tool at /deps for what the setup phase installed, at
# /tmp for caches, and away from the network.
SESSION_ENVIRONMENT: Mapping[str, str] = MappingProxyType({
    "HOME": SANDBOX_TMP,
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C.UTF-8",
    "CI": "true",  # test runners: no watch mode, no prompts, no colours
    "PYTHONDONTWRITEBYTECODE": "1",
    "FORGEBOT_JUNIT": JUNIT_PATH,
    "FORGEBOT_DEPS": DEPS_DIR,
    "PYTHONUSERBASE": f"{DEPS_DIR}/python",
    "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    "GOMODCACHE": f"{DEPS_DIR}/go/mod",
    "GOCACHE": f"{SANDBOX_TMP}/go-build",
    "GOPROXY": "off",
    "GOFLAGS": "-modcacherw",
    "GOTOOLCHAIN": "local",
    "CGO_ENABLED": "0",
    "npm_config_cache": f"{SANDBOX_TMP}/.npm",
    "npm_config_update_notifier": "false",
    "npm_config_fund": "false",
    "npm_config_audit": "false",
})

# Added to the environment of a setup command only: the package managers may reach their
# registries there (when the network is allowed), and pip may install for the user.
_SETUP_ENVIRONMENT = {
    "PIP_BREAK_SYSTEM_PACKAGES": "1",
}
_SETUP_NETWORK_ENVIRONMENT = {
    "GOPROXY": "https://proxy.golang.org,direct",
}

# Runs before every command: drop a stale report (so an old one is never read as new), make
# sure the report folder exists, then replace the shell with the bounded command. "$@" is
# the timeout in seconds followed by the command, passed as arguments and never re-parsed.
_RUN_SCRIPT = (
    'rm -rf -- "$FORGEBOT_JUNIT" && mkdir -p -- "${FORGEBOT_JUNIT%/*}" && exec timeout -s KILL "$@"'
)

# Recreate the repo folder if a command removed it, make every folder in it writable again
# (a command may have chmod-ed some), then empty it.
_CLEAR_SCRIPT = (
    f"mkdir -p {REPO_DIR} && chmod -R u+rwX {REPO_DIR} 2>/dev/null;"
    f" find {REPO_DIR} -mindepth 1 -delete"
)


class DockerSandbox:
    """Starts ``DockerSession``s on a Docker engine (the local one from the environment by
    default, created on first use so the bot can start while the engine is down).

    ``options`` are the operator's allow-listed additions (``DockerOptions``). Raises
    ``ConfigError`` when its seccomp profile cannot be used.
    """

    def __init__(
        self,
        client: docker.DockerClient | None = None,
        options: DockerOptions | None = None,
        ca_bundle: bytes | None = None,
        mirror_dir: Path | None = None,
    ) -> None:
        self._docker = client
        self._options = options or DockerOptions()
        self._ca_bundle = ca_bundle  # PEM certificates only (options.load_ca_bundle)
        # The PyPI mirror's file cache (None: no mirror; see bot.sandbox.pypi_mirror).
        self._mirror_dir = mirror_dir if self._options.pypi_mirror else None
        self._seccomp = self._options.seccomp_json()  # read once, refused early

    def start(self, image: str, limits: Limits, labels: dict[str, str]) -> DockerSession:
        """Create the workspace volume and the container, start it and lay out /sandbox.

        Raises ``SandboxError`` (not retryable for a missing image or bad limits, retryable
        when the engine fails). On failure nothing is left behind.
        """
        return self._start(image, limits, labels, _Mode(setup=False, network=None))

    def start_observed(self, image: str, limits: Limits, labels: dict[str, str],
                       sink_image: str) -> ObservedSession:
        """``start``, in the network namespace of a network sink started first, its image
        built from ``sink_image`` (a python runner image) the first time
        (:mod:`bot.sandbox.netsink`): the session's ``attempts`` say where its commands tried
        to go. Raises ``SandboxError`` like ``start``."""
        sink = Sink.start(self.client, sink_image, labels)
        try:
            session = self._start(image, limits, labels,
                                  _Mode(setup=False, network=f"container:{sink.id}"))
        except BaseException:
            sink.stop()
            raise
        return ObservedSession(session, sink)

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
        """Run ``setup_cmd`` in /sandbox/repo holding ``tree``, in a container from ``image``
        with a writable root (every other hardening kept), and commit what it installed
        (under /deps) as an image. Start later sessions from ``SetupResult.image``.

        ``egress``: None means no network at all. A sequence of hosts puts the container on
        the internal egress network, with a squid that allows those hosts only as its proxy
        (and the operator's CA bundle to trust); ``SetupResult.egress`` lists its requests.
        ``cache``: the snapshot is labelled with the cache key (and not with ``labels``, so
        it outlives the job; ``reap_setup_cache`` bounds it), and the repository's package
        cache volume is mounted at /cache. Without it the snapshot carries ``labels`` and
        ``forgebot.snapshot=1``; remove it with ``remove_snapshot``.

        A setup command that fails, times out or is killed gives ``image=None`` and keeps
        nothing. Raises ``SandboxError`` like ``start`` and ``run``; the setup container and
        the proxy are stopped in every case.
        """
        started = time.monotonic()
        environment = {**_SETUP_ENVIRONMENT, **self._options.setup_env}
        proxy: SquidProxy | None = None
        mirror: PypiMirror | None = None
        network: str | None = None
        if egress is not None:
            network, gateway = ensure_egress_network(self.client, self._options.egress_network)
            proxy = SquidProxy(self._options.egress_proxy, gateway, list(egress))
            environment = {**_SETUP_NETWORK_ENVIRONMENT, **environment,
                           **proxy_environment(proxy.start())}
            if self._ca_bundle is not None:
                environment.update(CA_ENVIRONMENT)
            mirror = self._start_mirror(gateway, egress, environment)
        volume = None
        if cache is not None:
            volume = ensure_cache_volume(self.client, cache.scope)
            environment.update(CACHE_ENVIRONMENT)
        try:
            mode = _Mode(setup=True, network=network, cache_volume=volume)
            outcome = self._run_setup(image, tree, setup_cmd, limits=limits, labels=labels,
                                      mode=mode, environment=environment, cache=cache)
        finally:
            records = tuple(proxy.stop()) if proxy is not None else ()
            records += tuple(mirror.stop()) if mirror is not None else ()
        return replace(outcome, egress=records, seconds=time.monotonic() - started)

    def _start_mirror(self, gateway: str, egress: Sequence[str],
                      environment: dict[str, str]) -> PypiMirror | None:
        """The PyPI mirror for a setup whose egress allows its upstream, with ``environment``
        pointed at it; None (and the setup goes through squid alone) when it is off, not
        allowed or does not start."""
        if self._mirror_dir is None:
            return None
        upstream = self._options.setup_env.get("PIP_INDEX_URL") or PYPI_INDEX
        mirror = PypiMirror(gateway, self._mirror_dir, upstream=upstream,
                            cache_mb=self._options.pypi_mirror_mb, ca_bundle=self._ca_bundle)
        if mirror.upstream_host not in egress:
            return None
        try:
            index = mirror.start()
        except SandboxError as exc:
            log.warning("setup without the PyPI mirror: %s", exc)
            return None
        environment.update(mirror_environment(index, gateway))
        return mirror

    def _run_setup(
        self, image: str, tree: bytes, setup_cmd: list[str], *, limits: Limits,
        labels: dict[str, str], mode: _Mode, environment: dict[str, str],
        cache: SetupCache | None,
    ) -> SetupResult:
        session = self._start(image, limits, {**labels, SETUP_LABEL: "1"}, mode)
        try:
            if mode.network is not None and self._ca_bundle is not None:
                session.put_file(CA_PATH, self._ca_bundle)
            session.put(tree)
            session.lay_out_deps(with_cache=mode.cache_volume is not None)
            result = session.run_with(setup_cmd, limits.timeout_s, environment)
            if result.exit_code != 0 or result.timed_out or result.killed_by is not None:
                return SetupResult(None, result)
            if cache is None:
                return SetupResult(session.commit({**labels, SNAPSHOT_LABEL: "1"}), result)
            # A commit keeps the container's labels; blank the job's, so the kept image (and
            # the sessions of later jobs started from it) carries no one job's identity.
            blank = dict.fromkeys([*labels, SESSION_LABEL, SETUP_LABEL], "")
            kept = {**blank, **cache_labels(cache, self._image_id(image))}
            return SetupResult(session.commit(kept), result)
        finally:
            session.close()

    def find_snapshot(self, image: str, cache: SetupCache) -> CachedSnapshot | None:
        """The newest snapshot kept for ``cache.key`` from this build of ``image``, or None
        (also when the engine cannot say: the setup then simply runs)."""
        try:
            return find_cached_snapshot(self.client, cache, self._image_id(image))
        except SandboxError as exc:
            log.warning("could not look up a kept setup snapshot: %s", exc)
            return None

    def reap_setup_cache(self, max_age_s: float, keep_per_repo: int) -> int:
        """Remove kept snapshots and package caches past their age or count (see
        ``reap_setup_cache``)."""
        return reap_setup_cache(self.client, max_age_s, keep_per_repo)

    def _image_id(self, image: str) -> str:
        with _translate(f"inspect {image}", image=image):
            return cast(str, self.client.images.get(image).id)

    def remove_snapshot(self, image: str) -> None:
        """Remove a snapshot image (by id or name). Safe to call twice; never raises: a
        failure is logged and ``reap_orphans`` removes it later."""
        try:
            self.client  # noqa: B018 - connects, or says why it cannot
        except SandboxError as exc:  # no engine to ask
            log.warning("could not remove sandbox snapshot %s: %s", image, exc)
            return
        _remove_image_quietly(self.client, image)

    def reap_orphans(self, older_than_s: float, labels: Mapping[str, str] | None = None) -> int:
        """Remove this engine's leftover sessions and snapshots (see ``reap_orphans``)."""
        return reap_orphans(self.client, older_than_s, labels)

    def sandbox_owners(self) -> set[str]:
        """The workers that own sessions on this engine (see ``sandbox_owners``)."""
        return sandbox_owners(self.client)

    def hardening(self) -> list[str]:
        """The hardening every session gets, one short phrase each (for ``forgebot doctor``)."""
        return [*HARDENING, *self._options.describe()]

    def _start(
        self, image: str, limits: Limits, labels: dict[str, str], mode: _Mode
    ) -> DockerSession:
        client = self.client
        name = f"forgebot-{uuid.uuid4().hex[:16]}"
        all_labels = {**labels, SESSION_LABEL: "1"}
        with _translate(f"create workspace volume {name}"):
            volume = client.volumes.create(
                name=name, driver="local", driver_opts=_volume_options(limits), labels=all_labels
            )
        try:
            options = _container_options(name, limits, all_labels, self._options, mode)
            if self._seccomp is not None:
                options["security_opt"].append(f"seccomp={self._seccomp}")
            with _translate(f"start a sandbox from {image}", image=image):
                container = client.containers.create(image, **options)
            session = DockerSession(client, container, volume, limits)
        except BaseException:
            _remove_quietly(volume, "volume")
            raise
        try:
            session.start()
        except BaseException:
            session.close()
            raise
        return session

    def close(self) -> None:
        """Close the engine client's connections (sessions are closed on their own); a later
        call opens a new client."""
        if self._docker is not None:
            self._docker.close()
            self._docker = None

    @property
    def client(self) -> docker.DockerClient:
        """The Docker client, created on first use (for ``reap_orphans`` and ``image_status``).

        Raises ``SandboxError`` (retryable) when no engine can be reached.
        """
        if self._docker is None:
            with _translate("connect to the Docker engine"):
                self._docker = docker.from_env()
        return self._docker


@dataclass(frozen=True)
class _Mode:
    """How a container differs from a plain session: a setup container has a writable root
    (so ``docker commit`` keeps what it installs) and may have network."""

    setup: bool
    # The Docker network to join, or "container:<id>" for another container's namespace;
    # None: no network at all.
    network: str | None
    cache_volume: str | None = None  # the repository's package cache, mounted at /cache


# What every session gets, whatever the options (for doctor and the docs).
HARDENING = (
    "no network",
    "read-only root",
    "tmpfs workspace with a size limit",
    "uid 1000",
    "all capabilities dropped",
    "no-new-privileges",
    "memory, CPU and pids limits",
    "a wall-clock limit that kills",
    "no environment from the bot",
    "no Docker socket",
    "labelled with job and attempt; orphans reaped",
)


class DockerSession:
    """One running container; see the module docstring. Not safe for concurrent use."""

    def __init__(
        self, client: docker.DockerClient, container: Any, volume: Any, limits: Limits
    ) -> None:
        self._client = client
        self._limits = limits
        self._container = container
        self._volume = volume
        self._closed = False
        self._fresh = True  # nothing has written to /sandbox/repo yet: put need not clear it
        self._broken: str | None = None  # why the session cannot be used any more
        self._killed = threading.Event()  # set by the host timer, from its own thread
        # The cgroup's out-of-memory kills and pids-limit hits seen so far: a run that adds to
        # them was killed by them.
        self._oom_kills = 0
        self._pids_hits = 0

    @property
    def name(self) -> str:
        """The container's name (also the volume's): handy in logs."""
        return cast(str, self._container.name)

    def start(self) -> None:
        """Start the container and create /sandbox/repo and /sandbox/out (uid 1000)."""
        with _translate("start the sandbox container"):
            self._container.start()
            if not self._container.put_archive(WORKSPACE_DIR, _skeleton_tar()):
                raise SandboxError("could not lay out the sandbox workspace", retryable=True)

    def put(self, tree: bytes) -> None:
        """Replace the content of /sandbox/repo with the files of ``tree`` (uncompressed tar),
        normalised first by ``normalise_tree`` so that uid 1000 owns everything.

        Raises ``SandboxError``: not retryable when the tree does not fit the workspace or the
        old content cannot be removed (start a new session instead).
        """
        self._check_usable()
        tree = normalise_tree(tree)  # before touching the workspace: a bad tar changes nothing
        if not self._fresh:
            self._clear_repo()
        self._fresh = False
        try:
            with _translate("copy the repository into the sandbox"):
                if not self._container.put_archive(REPO_DIR, tree):
                    raise SandboxError("the sandbox refused the repository archive")
        except SandboxError as exc:
            if "no space left on device" not in str(exc):
                raise
            # The engine calls a full workspace a server error; retrying cannot make it fit.
            raise SandboxError(
                f"the repository does not fit the sandbox workspace"
                f" ({self._limits.workspace_mb} MB): {exc}",
                retryable=False,
            ) from exc

    def _clear_repo(self) -> None:
        exit_code, _, err = self._exec(
            ["sh", "-c", _CLEAR_SCRIPT], HOUSEKEEPING_TIMEOUT_S, workdir=WORKSPACE_DIR
        )
        if exit_code != 0:
            raise SandboxError(f"could not clear the sandbox workspace: {err.strip()[:500]}")

    def run(self, cmd: list[str], timeout_s: int) -> Result:
        """Run ``cmd`` in /sandbox/repo as uid 1000, killed after ``timeout_s`` seconds.

        ``timed_out`` is set when the command was killed at its deadline (inside, exit 137
        after the deadline; or by the host timer, which also destroys the session). Exit 137
        before the deadline means killed for another reason, such as memory: ``killed_by``
        says which ("oom", "pids", "timeout"). A command that leaves the session's pids limit
        exhausted (a fork bomb) also ends the session: later calls raise. Raises
        ``SandboxError`` when the session is closed or broken, a process cannot be started
        in it, or the engine fails.
        """
        return self.run_with(cmd, timeout_s, {})

    def run_with(self, cmd: list[str], timeout_s: int, environment: Mapping[str, str]) -> Result:
        """``run`` with ``environment`` added to the session's own (for a setup command)."""
        self._check_usable()
        if not cmd:
            raise SandboxError("empty command")
        limit = max(1, int(timeout_s))
        self._fresh = False
        wrapped = ["sh", "-c", _RUN_SCRIPT, "forgebot-run", str(limit), *cmd]
        started = time.monotonic()
        exit_code, out, err = self._exec(wrapped, limit, workdir=REPO_DIR, environment=environment)
        elapsed = time.monotonic() - started
        if self._killed.is_set():
            return Result(exit_code, out, err, timed_out=True, killed_by="timeout")
        timed_out = exit_code == _KILLED_EXIT and elapsed >= limit
        killed_by = self._after_run(exit_code, timed_out)
        junit, missing = self._read_junit()
        return Result(exit_code, out, err, timed_out, junit, killed_by, missing)

    def lay_out_deps(self, with_cache: bool = False) -> None:
        """Create /deps (and, ``with_cache``, make the mounted /cache), owned by uid 1000, in
        the container's root (setup containers only: elsewhere the root is read-only and this
        raises ``SandboxError``)."""
        self._check_usable()
        folders = [DEPS_DIR.strip("/")] + ([CACHE_DIR.strip("/")] if with_cache else [])
        with _translate("create /deps in the setup container"):
            if not self._container.put_archive("/", _folder_tar(*folders)):
                raise SandboxError("could not create /deps in the setup container")

    def put_file(self, path: str, data: bytes) -> None:
        """Write one read-only file of the bot's (the CA bundle) at ``path`` under /sandbox,
        in a folder of its own made for it."""
        self._check_usable()
        relative = path.removeprefix(WORKSPACE_DIR + "/")
        with _translate(f"copy {relative} into the sandbox"):
            if not self._container.put_archive(WORKSPACE_DIR, _file_tar(relative, data)):
                raise SandboxError(f"the sandbox refused {relative}")

    def commit(self, labels: Mapping[str, str]) -> str:
        """Commit the container as a ``forgebot-snapshot`` image with ``labels``; return its id.

        The workspace volume and /tmp are not part of it. Raises ``SandboxError``.
        """
        self._check_usable()
        tag = uuid.uuid4().hex[:16]
        with _translate("commit the setup snapshot"):
            image = self._container.commit(
                repository=SNAPSHOT_REPOSITORY,
                tag=tag,
                message="forgebot setup snapshot",
                conf={"Labels": dict(labels)},
            )
        return cast(str, image.id)

    def close(self) -> None:
        """Remove the container and its volume. Safe to call twice; never raises.

        A failure to remove is logged; ``reap_orphans`` removes what is left, by label.
        """
        if self._closed:
            return
        self._closed = True
        _remove_quietly(self._container, "container")
        _remove_quietly(self._volume, "volume")

    def __enter__(self) -> DockerSession:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _check_usable(self) -> None:
        if self._closed:
            raise SandboxError("the sandbox session is closed")
        if self._killed.is_set():
            raise SandboxError(
                "the sandbox was killed after overrunning its timeout; start a new one"
            )
        if self._broken is not None:
            raise SandboxError(f"{self._broken}; start a new session")

    def _exec(
        self,
        cmd: list[str],
        timeout_s: int,
        *,
        workdir: str,
        environment: Mapping[str, str] | None = None,
    ) -> tuple[int, str, str]:
        """Run one exec with the host-side timer armed; return (exit code, stdout, stderr)."""
        timer = threading.Timer(timeout_s + KILL_GRACE_S, self._kill_on_overrun)
        timer.daemon = True
        out, err = _BoundedOutput(OUTPUT_LIMIT), _BoundedOutput(OUTPUT_LIMIT)
        api = self._client.api
        info: dict[str, Any] = {}
        try:
            with _translate("run a command in the sandbox"):
                exec_id = api.exec_create(
                    self._container.id,
                    cmd,
                    stdout=True,
                    stderr=True,
                    stdin=False,
                    tty=False,
                    user=SANDBOX_USER,
                    workdir=workdir,
                    environment=dict(environment) if environment else None,
                )["Id"]
                timer.start()
                _drain(api.exec_start(exec_id, stream=True, demux=True), out, err)
                info = api.exec_inspect(exec_id)
        except SandboxError:
            if not self._killed.is_set():
                raise
            # The stream broke because the timer killed the container: report that instead.
        finally:
            timer.cancel()
        if info.get("Pid") == 0 and not self._killed.is_set():
            # Docker reports a process that could not even start as exit 126 with its own
            # error as output: that is the sandbox failing, not the command.
            reason = next(iter(out.text().strip().splitlines()), "no reason given")[:500]
            raise SandboxError(f"could not start a process in the sandbox: {reason}")
        exit_code = info.get("ExitCode")
        if not isinstance(exit_code, int) or isinstance(exit_code, bool):
            exit_code = _KILLED_EXIT  # no exit code: the container died under the command
        return exit_code, out.text(), err.text()

    def _kill_on_overrun(self) -> None:
        # Runs in the timer's thread: an exception here would be lost, so log it instead.
        self._killed.set()
        log.warning("sandbox %s overran its timeout; killing the container", self.name)
        try:
            self._container.kill()
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            log.warning("could not kill sandbox %s: %s", self.name, exc)

    def _after_run(self, exit_code: int, timed_out: bool) -> KilledBy | None:
        """Clean up after a command and say why it was killed, if it was.

        Processes a command leaves behind (a server it started, a loop that left its process
        group, a fork bomb) are killed here, so every run starts clean: the sandbox user
        kills every process it may signal (``kill -9 -1``), which spares the exec itself and
        the container's own init and ``sleep``, both running as another user. When even that
        cannot start (the pids limit is full), the session is marked broken.
        """
        leftover = self._count_processes() > _IDLE_PROCESSES
        # Read even after exit 0: a fork bomb's parent can exit cleanly once every fork it
        # tried was refused at the pids limit, and that is still a pids-limit stop.
        counters = self._cgroup_counters()
        if leftover:
            self._kill_leftovers()
        if counters is None and self._broken is None:
            # The read can fail while a fork bomb's last processes still hold every pid;
            # once they are gone a process starts again, and the kernel's counts are kept.
            counters = self._cgroup_counters()
        if counters is not None:
            oom_kills, pids_hits = counters
            grew_oom, grew_pids = oom_kills > self._oom_kills, pids_hits > self._pids_hits
            self._oom_kills, self._pids_hits = oom_kills, pids_hits
            if grew_oom:
                return "oom"
            if grew_pids:
                return "pids"
        elif self._broken is not None or (leftover and exit_code != 0):
            return "pids"  # not even a process to read the counters could start
        return "timeout" if timed_out else None

    def _count_processes(self) -> int:
        """How many processes the container holds, listed from the host side (``top``,
        ~20 ms; a one-shot ``stats`` call was ~1 s from the second on). 0 when unknown."""
        try:
            listing = self._client.api.top(self._container.id, ps_args="-o pid")
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            log.warning("could not list the processes of sandbox %s: %s", self.name, exc)
            return 0
        return len(listing.get("Processes") or [])

    def _kill_leftovers(self) -> None:
        try:
            # The shell's own kill: kill(-1) signals all but the caller (and init).
            self._exec(["sh", "-c", "kill -KILL -1"], HOUSEKEEPING_TIMEOUT_S,
                       workdir=WORKSPACE_DIR)
        except SandboxError as exc:
            # A fork bomb's processes take every pid, so any later exec fails at random:
            # better one clear error than flaky runs.
            log.warning("could not clean up sandbox %s: %s", self.name, exc)
            self._broken = (
                f"the sandbox's leftover processes fill its pids limit ({self._limits.pids})"
            )

    def _cgroup_counters(self) -> tuple[int, int] | None:
        """(out-of-memory kills, pids-limit hits) of the container's cgroup, v1 or v2; None
        when they cannot be read. The kernel writes these files: the command cannot fake them."""
        try:
            _, out, _ = self._exec(
                ["grep", "-s", "-H", "", *_CGROUP_FILES], HOUSEKEEPING_TIMEOUT_S,
                workdir=WORKSPACE_DIR,
            )
        except SandboxError as exc:
            log.warning("could not read the cgroup counters of sandbox %s: %s", self.name, exc)
            return None
        oom_kills = pids_hits = 0
        for line in out.splitlines():  # "<file>:<key> <count>"
            path, _, entry = line.partition(":")
            key, _, count = entry.partition(" ")
            if not count.strip().isdigit():
                continue
            if "memory" in path and key == "oom_kill":
                oom_kills = int(count)
            elif "pids" in path and key == "max":
                pids_hits = int(count)
        return oom_kills, pids_hits

    def _read_junit(self) -> tuple[TestCounts | None, str | None]:
        """Read $FORGEBOT_JUNIT back, bounded: its counts, or None and why."""
        try:
            chunks, info = self._container.get_archive(JUNIT_PATH)
            size, mode = info.get("size"), info.get("mode")
            problem = (JUNIT_UNREADABLE if not isinstance(size, int) or not isinstance(mode, int)
                       else JUNIT_ABSENT if mode & _GO_MODE_NOT_REGULAR  # a link, a folder
                       else JUNIT_TOO_LARGE if size > JUNIT_LIMIT else None)
            if problem is not None:
                chunks.close()
                return None, problem
            data = _read_bounded(chunks, JUNIT_LIMIT + 64 * 1024)  # room for tar headers
        except docker.errors.NotFound:
            return None, JUNIT_ABSENT
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            log.warning("could not read the JUnit report of sandbox %s: %s", self.name, exc)
            return None, JUNIT_UNREADABLE
        if data is None:
            return None, JUNIT_TOO_LARGE
        xml = junit_from_tar(data)
        counts = None if xml is None else parse_junit(xml)
        return (counts, None) if counts is not None else (None, JUNIT_MALFORMED)


class _BoundedOutput:
    """Keeps the first and last ``limit / 2`` bytes of a stream and counts the rest."""

    def __init__(self, limit: int) -> None:
        self._half = limit // 2
        self._head = bytearray()
        self._tail = bytearray()
        self._total = 0

    def add(self, chunk: bytes) -> None:
        self._total += len(chunk)
        room = self._half - len(self._head)
        if room > 0:
            self._head += chunk[:room]
            chunk = chunk[room:]
        if chunk:
            self._tail += chunk[-self._half :]
            del self._tail[: max(0, len(self._tail) - self._half)]

    def text(self) -> str:
        kept = len(self._head) + len(self._tail)
        head = self._head.decode("utf-8", errors="replace")
        tail = self._tail.decode("utf-8", errors="replace")
        if kept == self._total:
            return head + tail
        dropped = self._total - kept
        return f"{head}\n[forgebot: output truncated, {dropped} bytes dropped]\n{tail}"


def _drain(stream: Any, out: _BoundedOutput, err: _BoundedOutput) -> None:
    # Read to the end even past the bound: a writer blocked on a full pipe would otherwise
    # hang until the timeout. The bound is on memory, the timeout on time.
    try:
        for stdout, stderr in stream:
            if stdout:
                out.add(stdout)
            if stderr:
                err.add(stderr)
    finally:
        stream.close()
        # CancellableStream.close skips the socket once the response reads as closed (at
        # EOF), leaving it to the garbage collector; close the response to free it now.
        response = getattr(stream, "_response", None)
        if response is not None:
            response.close()


def _read_bounded(chunks: Iterator[bytes], limit: int) -> bytes | None:
    """Join ``chunks`` unless they exceed ``limit`` bytes (then None)."""
    data = bytearray()
    try:
        for chunk in chunks:
            data += chunk
            if len(data) > limit:
                return None
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
    return bytes(data)


def reap_orphans(
    client: docker.DockerClient, older_than_s: float, labels: Mapping[str, str] | None = None
) -> int:
    """Remove sandbox containers and volumes (label ``forgebot.session=1``), network sinks
    (``forgebot.sink=1``) and setup snapshots (label ``forgebot.snapshot=1``), narrowed by
    ``labels`` if given, created more than ``older_than_s`` seconds ago: what a crash left
    behind. Returns how many were
    removed. Safe to call on a schedule.

    Use an age above the longest job so that another worker's live sessions survive.
    Raises ``SandboxError`` (retryable) when the engine cannot list them.
    """
    cutoff = time.time() - older_than_s
    narrow = [f"{k}={v}" for k, v in (labels or {}).items()]
    selector = {"label": [f"{SESSION_LABEL}=1", *narrow]}
    removed = 0
    with _translate("list leftover sandboxes"):
        containers = client.containers.list(all=True, sparse=True, filters=selector)
        # A sink goes with its session; a worker that died mid-verify leaves both.
        containers += client.containers.list(
            all=True, sparse=True, filters={"label": [f"{SINK_LABEL}=1", *narrow]})
    for container in containers:
        created = container.attrs.get("Created")
        if isinstance(created, int | float) and created < cutoff:
            removed += _remove_quietly(container, "container")
    with _translate("list leftover sandbox volumes"):
        volumes = client.volumes.list(filters=selector)
    for volume in volumes:
        created_at = parse_timestamp(volume.attrs.get("CreatedAt"))
        if created_at is not None and created_at < cutoff:
            removed += _remove_quietly(volume, "volume")
    # Images last: a snapshot cannot go while a container made from it is still there.
    with _translate("list leftover sandbox snapshots"):
        images = client.images.list(filters={"label": [f"{SNAPSHOT_LABEL}=1", *narrow]})
    for image in images:
        created_at = parse_timestamp(image.attrs.get("Created"))
        if created_at is not None and created_at < cutoff:
            removed += _remove_image_quietly(client, image.id)
    return removed


def sandbox_owners(client: docker.DockerClient) -> set[str]:
    """The worker identities (label ``forgebot.owner``) of the sandboxes and snapshots on
    the engine."""
    with _translate("list sandboxes"):
        containers = client.containers.list(all=True, filters={"label": OWNER_LABEL})
        images = client.images.list(filters={"label": [f"{SNAPSHOT_LABEL}=1", OWNER_LABEL]})
    owners = {c.labels.get(OWNER_LABEL, "") for c in containers}
    owners |= {(i.labels or {}).get(OWNER_LABEL, "") for i in images}
    return owners - {""}


def runner_image(image: str) -> RunnerImage | None:
    """The runner image ``image`` is a build of (any registry prefix, any tag), if any."""
    name = image.split("@", 1)[0].rsplit("/", 1)[-1].split(":", 1)[0]
    return next((r for r in RUNNER_IMAGES.values() if r.repository == name), None)


def build_hint(image: str) -> str:
    """How to build ``image``: its own build script when it is a runner image."""
    runner = runner_image(image)
    if runner is not None:
        return runner.build_hint()
    scripts = ", ".join(f"runners/{name}/build-offline.sh" for name in RUNNER_IMAGES)
    return f"build a runner image with one of {scripts}"


def image_status(client: docker.DockerClient, image: str) -> str | None:
    """None when ``image`` exists with an ``org.forgebot.runner.version`` label at least the
    version the bot needs (that of its runner image, see ``RUNNER_IMAGES``); otherwise a
    message that says what is wrong and how to build it with the right script.

    Never raises: an engine that cannot be asked is a message too.
    """
    runner = runner_image(image)
    need = runner.version if runner is not None else RUNNER_VERSION
    how = build_hint(image)
    try:
        found = client.images.get(image)
    except docker.errors.ImageNotFound:
        return f"runner image {image} not found: {how}"
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        return f"could not inspect runner image {image}: Docker engine unreachable ({exc})"
    labels = (found.attrs.get("Config") or {}).get("Labels") or {}
    raw = labels.get(VERSION_LABEL)
    try:
        version = int(str(raw))
    except ValueError:
        return f"runner image {image} has no usable {VERSION_LABEL} label ({raw!r}): {how}"
    if version < need:
        return f"runner image {image} is version {version}, need {need}: {how}"
    return None


def _container_options(
    name: str, limits: Limits, labels: Mapping[str, str], options: DockerOptions, mode: _Mode
) -> dict[str, Any]:
    """Keyword arguments of ``containers.create`` for one hardened session container."""
    memory = f"{limits.memory_mb}m"
    created: dict[str, Any] = {
        "command": ["sleep", "infinity"],
        "name": name,
        "labels": dict(labels),
        "environment": dict(SESSION_ENVIRONMENT),
        # The idle main process runs as nobody; every command runs as SANDBOX_USER (exec).
        "user": IDLE_USER,
        "working_dir": WORKSPACE_DIR,  # /sandbox/repo does not exist until start() makes it
        "network_mode": mode.network or "none",
        # A setup container's root must be writable for docker commit to keep /deps; it
        # runs as uid 1000 without capabilities all the same, so only /deps (made by the bot)
        # and the world-writable folders of the image are writable.
        "read_only": not mode.setup,
        "cap_drop": ["ALL"],
        # Docker's default seccomp profile stays on (or the operator's own profile).
        "security_opt": ["no-new-privileges"],
        "init": True,
        "mem_limit": memory,
        "memswap_limit": memory,  # no swap on top of the memory limit
        "nano_cpus": int(limits.cpus * 1_000_000_000),
        "pids_limit": limits.pids,
        "tmpfs": {SANDBOX_TMP: f"rw,exec,nosuid,nodev,size={options.tmp_mb}m,mode=1777"},
        "volumes": {name: {"bind": WORKSPACE_DIR, "mode": "rw"}},
    }
    if not (mode.network or "").startswith("container:"):  # a joined namespace has its name
        created["hostname"] = "sandbox"
    if mode.cache_volume is not None:
        created["volumes"][mode.cache_volume] = {"bind": CACHE_DIR, "mode": "rw"}
    if options.runtime is not None:
        created["runtime"] = options.runtime
    if options.cpu_shares is not None:
        created["cpu_shares"] = options.cpu_shares
    if options.nofile is not None:
        created["ulimits"] = [
            docker.types.Ulimit(name="nofile", soft=options.nofile, hard=options.nofile)
        ]
    return created


def _volume_options(limits: Limits) -> dict[str, str]:
    return {
        "type": "tmpfs",
        "device": "tmpfs",
        "o": (
            f"size={limits.workspace_mb}m,uid={SANDBOX_UID},gid={SANDBOX_GID},"
            "mode=0755,nosuid,nodev"
        ),
    }


def _skeleton_tar() -> bytes:
    return _folder_tar("repo", "out")


def _folder_tar(*folders: str) -> bytes:
    """A tar of empty folders owned by uid/gid 1000."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for folder in folders:
            member = tarfile.TarInfo(folder)
            member.type, member.mode = tarfile.DIRTYPE, 0o755
            member.uid, member.gid = SANDBOX_UID, SANDBOX_GID
            tar.addfile(member)
    return buffer.getvalue()


def _file_tar(name: str, data: bytes) -> bytes:
    """A tar of one read-only file (and its folder) owned by uid/gid 1000."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        folder = name.rpartition("/")[0]
        if folder:
            directory = tarfile.TarInfo(folder)
            directory.type, directory.mode = tarfile.DIRTYPE, 0o755
            directory.uid, directory.gid = SANDBOX_UID, SANDBOX_GID
            tar.addfile(directory)
        member = tarfile.TarInfo(name)
        member.size, member.mode = len(data), 0o444
        member.uid, member.gid = SANDBOX_UID, SANDBOX_GID
        tar.addfile(member, io.BytesIO(data))
    return buffer.getvalue()


def _remove_image_quietly(client: docker.DockerClient, image: str) -> int:
    """Remove an image; 1 when removed, 0 when gone already or still in use."""
    try:
        client.images.remove(image, force=True)
    except docker.errors.NotFound:
        return 0
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        log.warning("could not remove sandbox snapshot %s: %s", image, exc)
        return 0
    return 1


def _remove_quietly(thing: Any, kind: str) -> int:
    """Remove a container or volume; 1 when removed, 0 when gone already or not removable."""
    try:
        thing.remove(force=True)
    except docker.errors.NotFound:
        return 0
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        log.warning("could not remove sandbox %s %s: %s", kind, getattr(thing, "name", "?"), exc)
        return 0
    return 1


@contextlib.contextmanager
def _translate(action: str, image: str | None = None) -> Iterator[None]:
    """Re-raise docker and requests errors as SandboxError, saying whether a retry can help."""
    try:
        yield
    except docker.errors.ImageNotFound as exc:
        hint = build_hint(image) if image else "build it with `make runner-image`"
        raise SandboxError(
            f"{action}: image not found ({exc.explanation}); {hint}", retryable=False
        ) from exc
    except docker.errors.APIError as exc:
        # 4xx: our request is wrong (bad limits, name clash) and will stay wrong; 5xx: the
        # engine failed (out of space, busy) and a later attempt may succeed.
        status = exc.status_code or 500
        raise SandboxError(f"{action}: {exc.explanation or exc}", retryable=status >= 500) from exc
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        raise SandboxError(f"{action}: Docker engine unreachable: {exc}", retryable=True) from exc
