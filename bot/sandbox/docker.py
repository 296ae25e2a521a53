"""The Docker sandbox backend: one hardened container per session.

Layout inside a session::

    /sandbox        a per-session named volume backed by tmpfs (size = Limits.workspace_mb),
                    owned by uid 1000; the only writable place besides /tmp
    /sandbox/repo   the repository (``put``) and the working directory of ``run``
    /sandbox/out    reports; ``$FORGEBOT_JUNIT`` is /sandbox/out/junit.xml
    /tmp            a small tmpfs; HOME points here

Why a named volume and not ``tmpfs=``: with a read-only root, ``put_archive`` into a tmpfs
mount fails ("rootfs is marked read-only"), and into a tmpfs ``Mount`` it reports success
while nothing appears. A tmpfs-backed volume takes archives and is still RAM-only.

The container runs ``sleep infinity`` under Docker's init; commands run through exec, bounded
twice: ``timeout -s KILL`` inside, and a host-side timer that kills the whole container if the
exec overruns (``exec`` has no timeout of its own). A killed session cannot be used again.

Everything read back (output, exit code, JUnit XML) is hostile: output is bounded and decoded
with replacement, the report is size-bounded, unpacked from its tar by member, and parsed
with defusedxml into ``TestCounts``; a bad report gives ``junit=None``, never an exception.
No docker or requests exception leaves this module: each becomes ``SandboxError``.
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
import tarfile
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, cast

import docker
import docker.errors
import requests.exceptions

from bot.errors import SandboxError
from bot.sandbox.base import Limits, Result, TestCounts
from bot.sandbox.junit import JUNIT_LIMIT, junit_from_tar, parse_junit
from bot.sandbox.tarball import SANDBOX_GID, SANDBOX_UID, normalise_tree

log = logging.getLogger(__name__)

# The runner image contract: bump RUNNER_VERSION (and the label in runners/python/*) when
# the bot starts to depend on something new in the image.
RUNNER_VERSION = 1
RUNNER_IMAGE = f"forgebot-runner-python:{RUNNER_VERSION}"
VERSION_LABEL = "org.forgebot.runner.version"
OWNER_LABEL = "forgebot.owner"  # the worker that started a session, so its orphans can be found
SESSION_LABEL = "forgebot.session"

WORKSPACE_DIR = "/sandbox"
REPO_DIR = "/sandbox/repo"
OUT_DIR = "/sandbox/out"
JUNIT_PATH = "/sandbox/out/junit.xml"
SANDBOX_USER = f"{SANDBOX_UID}:{SANDBOX_GID}"
SANDBOX_TMP = "/tmp"  # noqa: S108 - a path inside the sandbox, a private tmpfs

OUTPUT_LIMIT = 64 * 1024  # bytes kept per stream: half from the start, half from the end
TMP_MB = 64  # size of the /tmp tmpfs
KILL_GRACE_S = 5.0  # the host timer fires this long after the in-container timeout
HOUSEKEEPING_TIMEOUT_S = 60  # bound on the bot's own exec calls (clearing the workspace)

# Type bits of Go's os.FileMode, as in get_archive's stat: dir, symlink, device, named pipe,
# socket, char device, irregular. None set means a regular file.
_GO_MODE_NOT_REGULAR = (
    (1 << 31) | (1 << 27) | (1 << 26) | (1 << 25) | (1 << 24) | (1 << 21) | (1 << 19)
)

_KILLED_EXIT = 137  # 128 + SIGKILL: the in-container timeout, the OOM killer, the host timer

# The whole environment of a session: nothing of the bot's own environment is passed on.
_ENVIRONMENT = {
    "HOME": SANDBOX_TMP,
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C.UTF-8",
    "PYTHONDONTWRITEBYTECODE": "1",
    "FORGEBOT_JUNIT": JUNIT_PATH,
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
    default, created on first use so the bot can start while the engine is down)."""

    def __init__(self, client: docker.DockerClient | None = None) -> None:
        self._docker = client

    def start(self, image: str, limits: Limits, labels: dict[str, str]) -> DockerSession:
        """Create the workspace volume and the container, start it and lay out /sandbox.

        Raises ``SandboxError`` (not retryable for a missing image or bad limits, retryable
        when the engine fails). On failure nothing is left behind.
        """
        client = self.client
        name = f"forgebot-{uuid.uuid4().hex[:16]}"
        all_labels = {**labels, SESSION_LABEL: "1"}
        with _translate(f"create workspace volume {name}"):
            volume = client.volumes.create(
                name=name, driver="local", driver_opts=_volume_options(limits), labels=all_labels
            )
        try:
            with _translate(f"start a sandbox from {image}"):
                container = client.containers.create(
                    image, **_container_options(name, limits, all_labels)
                )
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

    @property
    def client(self) -> docker.DockerClient:
        """The Docker client, created on first use (for ``reap_orphans`` and ``image_status``).

        Raises ``SandboxError`` (retryable) when no engine can be reached.
        """
        if self._docker is None:
            with _translate("connect to the Docker engine"):
                self._docker = docker.from_env()
        return self._docker


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
        before the deadline means killed for another reason, such as memory. A command that
        leaves the session's pids limit exhausted (a fork bomb) also ends the session: later
        calls raise. Raises ``SandboxError`` when the session is closed or broken, a process
        cannot be started in it, or the engine fails.
        """
        self._check_usable()
        if not cmd:
            raise SandboxError("empty command")
        limit = max(1, int(timeout_s))
        self._fresh = False
        wrapped = ["sh", "-c", _RUN_SCRIPT, "forgebot-run", str(limit), *cmd]
        started = time.monotonic()
        exit_code, out, err = self._exec(wrapped, limit, workdir=REPO_DIR)
        elapsed = time.monotonic() - started
        if self._killed.is_set():
            return Result(exit_code=exit_code, stdout=out, stderr=err, timed_out=True)
        self._check_pids()
        timed_out = exit_code == _KILLED_EXIT and elapsed >= limit
        return Result(
            exit_code=exit_code,
            stdout=out,
            stderr=err,
            timed_out=timed_out,
            junit=self._read_junit(),
        )

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

    def _exec(self, cmd: list[str], timeout_s: int, *, workdir: str) -> tuple[int, str, str]:
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

    def _check_pids(self) -> None:
        """Mark the session broken when leftover processes fill its pids limit.

        A fork bomb's processes outlive the command and take every pid, so any later exec
        fails at random; better one clear error than flaky runs. ``top`` lists the processes
        from the host side (~20 ms; a one-shot ``stats`` call was ~1 s from the second on).
        """
        try:
            listing = self._client.api.top(self._container.id, ps_args="-o pid")
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            log.warning("could not list the processes of sandbox %s: %s", self.name, exc)
            return
        current = len(listing.get("Processes") or [])
        if current + 2 >= self._limits.pids:
            log.warning(
                "sandbox %s is out of pids (%d of %d)", self.name, current, self._limits.pids
            )
            self._broken = (
                f"the sandbox's processes fill its pids limit ({current} of {self._limits.pids})"
            )

    def _read_junit(self) -> TestCounts | None:
        """Read $FORGEBOT_JUNIT back, bounded; None when absent, too big or malformed."""
        try:
            chunks, info = self._container.get_archive(JUNIT_PATH)
            size, mode = info.get("size"), info.get("mode")
            if not isinstance(size, int) or not isinstance(mode, int):
                return None
            if size > JUNIT_LIMIT or mode & _GO_MODE_NOT_REGULAR:
                chunks.close()
                return None
            data = _read_bounded(chunks, JUNIT_LIMIT + 64 * 1024)  # room for tar headers
        except docker.errors.NotFound:
            return None
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            log.warning("could not read the JUnit report of sandbox %s: %s", self.name, exc)
            return None
        if data is None:
            return None
        xml = junit_from_tar(data)
        return None if xml is None else parse_junit(xml)


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
    """Remove sandbox containers and volumes (label ``forgebot.session=1``, and ``labels``
    if given) created more than ``older_than_s`` seconds ago, left behind by a crash.
    Returns how many were removed.

    Use an age above the longest job so that another worker's live sessions survive.
    Raises ``SandboxError`` (retryable) when the engine cannot list them.
    """
    cutoff = time.time() - older_than_s
    selector = {"label": [f"{SESSION_LABEL}=1", *(f"{k}={v}" for k, v in (labels or {}).items())]}
    removed = 0
    with _translate("list leftover sandboxes"):
        containers = client.containers.list(all=True, sparse=True, filters=selector)
    for container in containers:
        created = container.attrs.get("Created")
        if isinstance(created, int | float) and created < cutoff:
            removed += _remove_quietly(container, "container")
    with _translate("list leftover sandbox volumes"):
        volumes = client.volumes.list(filters=selector)
    for volume in volumes:
        created_at = _parse_timestamp(volume.attrs.get("CreatedAt"))
        if created_at is not None and created_at < cutoff:
            removed += _remove_quietly(volume, "volume")
    return removed


def sandbox_owners(client: docker.DockerClient) -> set[str]:
    """The worker identities (label ``forgebot.owner``) of the sandboxes on the engine."""
    with _translate("list sandboxes"):
        containers = client.containers.list(all=True, filters={"label": OWNER_LABEL})
    return {c.labels.get(OWNER_LABEL, "") for c in containers} - {""}


def image_status(client: docker.DockerClient, image: str) -> str | None:
    """None when ``image`` exists with ``org.forgebot.runner.version`` >= RUNNER_VERSION;
    otherwise a message that says what is wrong and how to build the image.

    Never raises: an engine that cannot be asked is a message too.
    """
    how = (
        "build it with `make runner-image` (runs runners/python/build-offline.sh; "
        "or `docker build runners/python` where a registry is reachable)"
    )
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
    if version < RUNNER_VERSION:
        return f"runner image {image} is version {version}, need {RUNNER_VERSION}: {how}"
    return None


def _container_options(name: str, limits: Limits, labels: Mapping[str, str]) -> dict[str, Any]:
    """Keyword arguments of ``containers.create`` for one hardened session container."""
    memory = f"{limits.memory_mb}m"
    return {
        "command": ["sleep", "infinity"],
        "name": name,
        "hostname": "sandbox",
        "labels": dict(labels),
        "environment": dict(_ENVIRONMENT),
        "user": SANDBOX_USER,
        "working_dir": WORKSPACE_DIR,  # /sandbox/repo does not exist until start() makes it
        "network_mode": "none",
        "read_only": True,
        "cap_drop": ["ALL"],
        # Docker's default seccomp profile stays on: only no-new-privileges is added.
        "security_opt": ["no-new-privileges"],
        "init": True,
        "mem_limit": memory,
        "memswap_limit": memory,  # no swap on top of the memory limit
        "nano_cpus": int(limits.cpus * 1_000_000_000),
        "pids_limit": limits.pids,
        "tmpfs": {SANDBOX_TMP: f"rw,exec,nosuid,nodev,size={TMP_MB}m,mode=1777"},
        "volumes": {name: {"bind": WORKSPACE_DIR, "mode": "rw"}},
    }


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
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for folder in ("repo", "out"):
            member = tarfile.TarInfo(folder)
            member.type, member.mode = tarfile.DIRTYPE, 0o755
            member.uid, member.gid = SANDBOX_UID, SANDBOX_GID
            tar.addfile(member)
    return buffer.getvalue()


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


_TIMESTAMP = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)")


def _parse_timestamp(value: object) -> float | None:
    """Seconds since the epoch of Docker's RFC 3339 time (fractions and zone ignored: UTC)."""
    match = _TIMESTAMP.match(value) if isinstance(value, str) else None
    if match is None:
        return None
    return datetime.strptime(match.group(1), "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC).timestamp()


@contextlib.contextmanager
def _translate(action: str) -> Iterator[None]:
    """Re-raise docker and requests errors as SandboxError, saying whether a retry can help."""
    try:
        yield
    except docker.errors.ImageNotFound as exc:
        raise SandboxError(
            f"{action}: image not found ({exc.explanation}); build it with `make runner-image`",
            retryable=False,
        ) from exc
    except docker.errors.APIError as exc:
        # 4xx: our request is wrong (bad limits, name clash) and will stay wrong; 5xx: the
        # engine failed (out of space, busy) and a later attempt may succeed.
        status = exc.status_code or 500
        raise SandboxError(f"{action}: {exc.explanation or exc}", retryable=status >= 500) from exc
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        raise SandboxError(f"{action}: Docker engine unreachable: {exc}", retryable=True) from exc
