"""The Kubernetes sandbox backend: one hardened Pod per session, driven through the API.

The Pod (see ``k8s_manifests.pod_manifest``) has the Docker backend's layout, user and
environment: /sandbox (an emptyDir with a size limit) holding /sandbox/repo and /sandbox/out,
a small /tmp, uid 1000, a read-only root, no capabilities, seccomp RuntimeDefault, CPU, memory
and ephemeral-storage limits, ``activeDeadlineSeconds``, no service account token, no service
links. A deny-all NetworkPolicy (``k8s_manifests.network_policy_manifest``) selects every
session Pod; the backend creates it before the first session, and replaces one of its name
that no longer denies all.

Everything runs through the exec API, over the websocket of ``kubernetes.stream.stream``
(channel 0 stdin, 1 stdout, 2 stderr, 3 the exit status as a JSON ``Status``):

- ``put`` streams the tar into ``head -c N | tar -x`` through stdin. ``head -c N`` ends the
  input after the archive's N bytes, because the v4 channel protocol cannot close stdin (v5
  can, and the backend also closes it there).
- ``run`` wraps the command in the Docker backend's script (``timeout -s KILL`` inside) and
  enforces a host-side deadline too: past ``timeout + kill_grace_s`` the Pod is deleted and
  the session is over.
- The JUnit report is read back with ``head -c`` (a bounded ``cat``) over stdout.

Frames are read here, not by the client's ``WSClient.update``: that keeps a second copy of
all output for ``read_all`` that nothing can bound, and hostile code can print gigabytes.
Output is bounded like the Docker backend's; the report is size-bounded and parsed by
``bot.sandbox.junit``. Exec is done on an ``ApiClient`` of the session's own, because
``stream`` swaps the client's transport while it runs and would catch a concurrent REST call.

No kubernetes, urllib3 or websocket exception leaves this module: each becomes
``SandboxError``, retryable when the API server or the network failed, not when the request
was refused. This backend was tested against recorded API exchanges only, never against a
real cluster: docs/sandbox.md says how to verify it on one.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import urllib3.exceptions
from kubernetes import config as kube_config
from kubernetes.client import (
    ApiClient,
    Configuration,
    CoreV1Api,
    NetworkingV1Api,
    V1NetworkPolicy,
    V1Pod,
)
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException
from kubernetes.stream import stream
from websocket import ABNF, WebSocketException, WebSocketTimeoutException

from bot.errors import SandboxError
from bot.sandbox.base import Limits, Result, TestCounts
from bot.sandbox.docker import (
    _CLEAR_SCRIPT,
    _KILLED_EXIT,
    _RUN_SCRIPT,
    HOUSEKEEPING_TIMEOUT_S,
    KILL_GRACE_S,
    OUT_DIR,
    OUTPUT_LIMIT,
    REPO_DIR,
    _BoundedOutput,
)
from bot.sandbox.junit import (
    JUNIT_ABSENT,
    JUNIT_LIMIT,
    JUNIT_MALFORMED,
    JUNIT_TOO_LARGE,
    JUNIT_UNREADABLE,
    parse_junit,
)
from bot.sandbox.k8s_manifests import (
    CONTAINER_NAME,
    DEFAULT_TMP_MB,
    NETWORK_POLICY_NAME,
    OWNER_LABEL,
    SESSION_LABEL,
    exec_exit_code,
    is_deny_all,
    label_selector,
    network_policy_manifest,
    pod_manifest,
    pod_progress,
)
from bot.sandbox.tarball import normalise_tree

log = logging.getLogger(__name__)

STDIN_CHANNEL = 0
STDOUT_CHANNEL = 1
STDERR_CHANNEL = 2
STATUS_CHANNEL = 3
STATUS_LIMIT = 64 * 1024  # bytes of the exit status kept; a real one is under 1 KiB
STDIN_CHUNK = 64 * 1024  # bytes per stdin frame
MAX_WAIT_S = 1.0  # longest single wait for a frame, so the host deadline is checked often
MESSAGE_LIMIT = 500  # characters of an API or tar message quoted in an error

# Repository to workspace: take exactly the archive's bytes ("$1"), unpack them into "$2".
_PUT_SCRIPT = 'head -c "$1" | tar -x -f - -C "$2" --no-same-owner'
# The report, if it is a regular file and not a link, at most "$1" bytes; 3 when there is none.
_NO_REPORT_EXIT = 3  # _JUNIT_SCRIPT's exit when there is no report file
_JUNIT_SCRIPT = (
    '[ -f "$FORGEBOT_JUNIT" ] && [ ! -L "$FORGEBOT_JUNIT" ] || exit 3;'
    ' exec head -c "$1" -- "$FORGEBOT_JUNIT"'
)
# exec has no working directory: change into the repository, then the Docker backend's script.
_RUN_IN_REPO = f"cd -- {REPO_DIR} && {_RUN_SCRIPT}"

_HANDSHAKE_STATUS = re.compile(r"Handshake status (\d{3})")


@dataclass(frozen=True)
class KubernetesOptions:
    """How session Pods are made and watched; every field has a safe default."""

    image_pull_policy: str = "IfNotPresent"
    runtime_class: str | None = None  # e.g. gVisor's "gvisor", where the cluster offers one
    workspace_medium: str = "Memory"  # "" puts /sandbox and /tmp on the node's disk
    tmp_mb: int = DEFAULT_TMP_MB  # size of /tmp (HOME and tool caches)
    session_deadline_s: int = 3600  # activeDeadlineSeconds: the Pod's whole life
    start_timeout_s: float = 120.0  # scheduling and image pull
    poll_interval_s: float = 1.0  # between reads of a starting Pod
    request_timeout_s: float = 30.0  # every REST call
    kill_grace_s: float = KILL_GRACE_S  # host deadline = command timeout + this
    manage_network_policy: bool = True  # False: the operator installs the policy


class KubernetesSandbox:
    """Starts ``KubernetesSession``s in one namespace.

    ``core_api`` is a ``CoreV1Api`` (``kubernetes_sandbox_from_config`` builds one from the
    in-cluster service account or a kubeconfig); the NetworkPolicy goes through
    ``networking_api``, by default one on the same ``ApiClient``.
    """

    def __init__(
        self,
        core_api: CoreV1Api,
        namespace: str,
        options: KubernetesOptions | None = None,
        *,
        networking_api: NetworkingV1Api | None = None,
    ) -> None:
        self._core = core_api
        self._networking = networking_api or NetworkingV1Api(core_api.api_client)
        self._namespace = namespace
        self._options = options or KubernetesOptions()
        self._policy_lock = threading.Lock()
        self._policy_ready = False

    @property
    def namespace(self) -> str:
        """The namespace the session Pods live in."""
        return self._namespace

    def start(self, image: str, limits: Limits, labels: dict[str, str]) -> KubernetesSession:
        """Create a session Pod, wait until it runs and lay out /sandbox.

        Raises ``SandboxError``: not retryable when the request is refused (bad image or
        limits, no permission), retryable when the API server fails or the Pod does not start
        within ``start_timeout_s``. On failure the Pod is deleted.
        """
        if self._options.manage_network_policy:
            self.ensure_network_policy()
        name = f"forgebot-{uuid.uuid4().hex[:16]}"
        body = self._pod_body(name, image, limits, labels)
        try:
            with _translate(f"create sandbox pod {name}"):
                self._core.create_namespaced_pod(
                    self._namespace, body, _request_timeout=self._options.request_timeout_s
                )
        except SandboxError as exc:
            if exc.retryable:
                # A 5xx or a lost answer may hide a Pod created after all: remove it now
                # rather than leave it to the reaper.
                _delete_pod(self._core, self._namespace, name, self._options.request_timeout_s)
            raise
        session = KubernetesSession(self._core, self._namespace, name, limits, self._options)
        try:
            session.start()
        except BaseException:
            session.close()
            raise
        return session

    def ensure_network_policy(self) -> None:
        """Create the deny-all NetworkPolicy. When one of that name exists, leave it if it
        still denies all, else replace it (someone loosened it). Once per ``KubernetesSandbox``.

        Raises ``SandboxError``; without the policy no session starts (fail closed).
        """
        with self._policy_lock:
            if self._policy_ready:
                return
            with _translate(f"create NetworkPolicy {NETWORK_POLICY_NAME}"):
                body = V1NetworkPolicy.from_dict(network_policy_manifest(self._namespace))
                if body is None:
                    raise ValueError("empty NetworkPolicy")
                try:
                    self._networking.create_namespaced_network_policy(
                        self._namespace, body, _request_timeout=self._options.request_timeout_s
                    )
                except ApiException as exc:
                    if exc.status != 409:
                        raise
                    self._repair_network_policy(body)
            self._policy_ready = True

    def _repair_network_policy(self, body: V1NetworkPolicy) -> None:
        timeout = self._options.request_timeout_s
        existing = self._networking.read_namespaced_network_policy(
            NETWORK_POLICY_NAME, self._namespace, _request_timeout=timeout
        )
        if is_deny_all(self._core.api_client.sanitize_for_serialization(existing)):
            return
        log.warning("NetworkPolicy %s no longer denies all; replacing it", NETWORK_POLICY_NAME)
        self._networking.replace_namespaced_network_policy(
            NETWORK_POLICY_NAME, self._namespace, body, _request_timeout=timeout
        )

    def reap_orphans(self, older_than_s: float, labels: Mapping[str, str] | None = None) -> int:
        """Delete session Pods (and ``labels``, if given) created more than ``older_than_s``
        seconds ago, left behind by a crash. Returns how many were deleted.

        Labels select the Pods; the exact ids are then compared with the annotations, since a
        label value may have been shortened. Use an age above the longest job so that other
        workers' live sessions survive. Raises ``SandboxError`` when the Pods cannot be listed.
        """
        wanted = dict(labels or {})
        cutoff = datetime.now(UTC) - timedelta(seconds=older_than_s)
        with _translate("list leftover sandbox pods"):
            pods = self._core.list_namespaced_pod(
                self._namespace,
                label_selector=label_selector(wanted),
                _request_timeout=self._options.request_timeout_s,
            )
        removed = 0
        for pod in pods.items:
            meta = pod.metadata
            if meta is None or meta.name is None or meta.creation_timestamp is None:
                continue
            annotations = meta.annotations or {}
            if any(annotations.get(key) != value for key, value in wanted.items()):
                continue
            if meta.creation_timestamp <= cutoff:
                removed += _delete_pod(
                    self._core, self._namespace, meta.name, self._options.request_timeout_s
                )
        return removed

    def sandbox_owners(self) -> set[str]:
        """The worker identities (annotation ``forgebot.owner``) of the session Pods."""
        with _translate("list sandbox pods"):
            pods = self._core.list_namespaced_pod(
                self._namespace,
                label_selector=f"{SESSION_LABEL}=1,{OWNER_LABEL}",
                _request_timeout=self._options.request_timeout_s,
            )
        owners = {
            (pod.metadata.annotations or {}).get(OWNER_LABEL, "")
            for pod in pods.items
            if pod.metadata is not None
        }
        return owners - {""}

    def close(self) -> None:
        """Close the API client's connections (the one given, or the factory's). Live
        sessions keep their own exec clients until they are closed."""
        self._core.api_client.close()

    def _pod_body(self, name: str, image: str, limits: Limits, labels: dict[str, str]) -> V1Pod:
        options = self._options
        try:
            manifest = pod_manifest(
                name=name,
                namespace=self._namespace,
                image=image,
                limits=limits,
                labels=labels,
                image_pull_policy=options.image_pull_policy,
                session_deadline_s=options.session_deadline_s,
                runtime_class=options.runtime_class,
                workspace_medium=options.workspace_medium,
                tmp_mb=options.tmp_mb,
            )
        except ValueError as exc:
            raise SandboxError(f"cannot describe the sandbox pod: {exc}") from exc
        with _translate("describe the sandbox pod"):
            body = V1Pod.from_dict(manifest)
        if body is None:
            raise SandboxError("cannot describe the sandbox pod")
        return body


class KubernetesSession:
    """One running session Pod; see the module docstring. Not safe for concurrent use."""

    def __init__(
        self,
        core_api: CoreV1Api,
        namespace: str,
        name: str,
        limits: Limits,
        options: KubernetesOptions,
    ) -> None:
        self._core = core_api
        # stream() swaps its client's transport while it runs: exec gets a client of its own.
        self._exec_client = ApiClient(core_api.api_client.configuration)
        self._exec_api = CoreV1Api(self._exec_client)
        self._namespace = namespace
        self._name = name
        self._limits = limits
        self._options = options
        self._closed = False
        self._deleted = False
        self._killed = False  # the host deadline fired and the Pod was deleted
        self._fresh = True  # nothing has written to /sandbox/repo yet: put need not clear it
        self._broken: str | None = None

    @property
    def name(self) -> str:
        """The Pod's name: handy in logs."""
        return self._name

    def start(self) -> None:
        """Wait until the Pod runs, then create /sandbox/repo and /sandbox/out.

        The first exec also proves the bot may exec (RBAC ``pods/exec``) before any work.
        """
        self._wait_running()
        self._housekeeping(["mkdir", "-p", REPO_DIR, OUT_DIR], "lay out the sandbox workspace")

    def put(self, tree: bytes) -> None:
        """Replace the content of /sandbox/repo with the files of ``tree`` (uncompressed tar),
        normalised first by ``normalise_tree`` so that uid 1000 owns everything.

        Raises ``SandboxError``: not retryable when the tree does not fit the workspace or
        cannot be unpacked (start a new session instead).
        """
        self._check_usable()
        tree = normalise_tree(tree)  # before touching the workspace: a bad tar changes nothing
        if not self._fresh:
            self._housekeeping(["sh", "-c", _CLEAR_SCRIPT], "clear the sandbox workspace")
        self._fresh = False
        action = "copy the repository into the sandbox"
        out, err = _Capped(MESSAGE_LIMIT), _Capped(4 * MESSAGE_LIMIT)
        command = ["sh", "-c", _PUT_SCRIPT, "forgebot-put", str(len(tree)), REPO_DIR]
        exit_code = self._finished(
            self._exec(command, HOUSEKEEPING_TIMEOUT_S, out, err, action, stdin=tree), action
        )
        if exit_code == 0:
            return
        message = err.text().strip()[-MESSAGE_LIMIT:]
        if "No space left on device" in message:
            raise SandboxError(
                "the repository does not fit the sandbox workspace"
                f" ({self._limits.workspace_mb} MB): {message}",
                retryable=False,
            )
        raise SandboxError(f"could not unpack the repository (exit {exit_code}): {message}")

    def run(self, cmd: list[str], timeout_s: int) -> Result:
        """Run ``cmd`` in /sandbox/repo as uid 1000, killed after ``timeout_s`` seconds.

        ``timed_out`` is set when the command was killed at its deadline: inside (exit 137 at
        or after the deadline), or by the host deadline, which also deletes the Pod and ends
        the session. Exit 137 before the deadline means killed for another reason, such as
        memory. Raises ``SandboxError`` when the session is closed or broken, a process
        cannot be started, or the API server fails.
        """
        self._check_usable()
        if not cmd:
            raise SandboxError("empty command")
        limit = max(1, int(timeout_s))
        self._fresh = False
        out, err = _BoundedOutput(OUTPUT_LIMIT), _BoundedOutput(OUTPUT_LIMIT)
        command = ["sh", "-c", _RUN_IN_REPO, "forgebot-run", str(limit), *cmd]
        started = time.monotonic()
        status = self._exec(command, limit, out, err, "run a command in the sandbox")
        elapsed = time.monotonic() - started
        if self._killed:
            return Result(_KILLED_EXIT, out.text(), err.text(), timed_out=True, killed_by="timeout")
        exit_code = self._finished(status, "run a command in the sandbox")
        timed_out = exit_code == _KILLED_EXIT and elapsed >= limit
        junit, missing = self._read_junit()
        return Result(
            exit_code=exit_code,
            stdout=out.text(),
            stderr=err.text(),
            timed_out=timed_out,
            junit=junit,
            junit_missing=missing,
            # Another 137 (the OOM killer) is not told apart here: no cgroup counters read yet.
            killed_by="timeout" if timed_out else None,
        )

    def close(self) -> None:
        """Delete the Pod (grace period 0). Safe to call twice; never raises.

        A failure to delete is logged; ``reap_orphans`` removes what is left, by label, and
        ``activeDeadlineSeconds`` stops the Pod in any case.
        """
        if self._closed:
            return
        self._closed = True
        if not self._deleted:
            self._deleted = True
            _delete_pod(self._core, self._namespace, self._name, self._options.request_timeout_s)
        self._exec_client.close()  # type: ignore[no-untyped-call]

    def __enter__(self) -> KubernetesSession:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _check_usable(self) -> None:
        if self._closed:
            raise SandboxError("the sandbox session is closed")
        if self._killed:
            raise SandboxError(
                "the sandbox was killed after overrunning its timeout; start a new one"
            )
        if self._broken is not None:
            raise SandboxError(f"{self._broken}; start a new session")

    def _finished(self, exit_code: int | None, action: str) -> int:
        """The exit code of the last exec; raises when it was killed at the host deadline or
        lost its stream (the session is then unusable)."""
        if self._killed:
            raise SandboxError(f"{action}: overran its time limit; the sandbox was deleted")
        if exit_code is None:
            self._broken = f"{action}: the exec stream ended without an exit status"
            raise SandboxError(self._broken, retryable=True)
        return exit_code

    def _wait_running(self) -> None:
        """Poll the Pod until its container runs; fail fast on what waiting cannot fix."""
        timeout = self._options.start_timeout_s
        deadline = time.monotonic() + timeout
        while True:
            with _translate(f"read sandbox pod {self._name}"):
                pod = self._core.read_namespaced_pod(
                    self._name, self._namespace, _request_timeout=self._options.request_timeout_s
                )
            progress = pod_progress(self._core.api_client.sanitize_for_serialization(pod))
            if progress.running:
                return
            if progress.fatal:
                raise SandboxError(
                    f"sandbox pod {self._name} cannot start: {progress.detail}",
                    retryable=progress.retryable,
                )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise SandboxError(
                    f"sandbox pod {self._name} did not start within {timeout:g} s"
                    f" ({progress.detail})",
                    retryable=True,
                )
            time.sleep(min(self._options.poll_interval_s, remaining))

    def _housekeeping(self, command: list[str], action: str) -> None:
        """Run one of the bot's own commands; raise unless it exits 0."""
        self._check_usable()
        out, err = _Capped(MESSAGE_LIMIT), _Capped(4 * MESSAGE_LIMIT)
        exit_code = self._finished(
            self._exec(command, HOUSEKEEPING_TIMEOUT_S, out, err, action), action
        )
        if exit_code != 0:
            message = err.text().strip()[-MESSAGE_LIMIT:]
            raise SandboxError(f"could not {action} (exit {exit_code}): {message}")

    def _read_junit(self) -> tuple[TestCounts | None, str | None]:
        """Read $FORGEBOT_JUNIT back, bounded: its counts, or None and why."""
        out, err = _Capped(JUNIT_LIMIT + 1), _Capped(MESSAGE_LIMIT)
        command = ["sh", "-c", _JUNIT_SCRIPT, "forgebot-junit", str(JUNIT_LIMIT + 1)]
        try:
            exit_code = self._exec(command, HOUSEKEEPING_TIMEOUT_S, out, err, "read the report")
        except SandboxError as exc:
            log.warning("could not read the JUnit report of sandbox %s: %s", self._name, exc)
            return None, JUNIT_UNREADABLE
        if exit_code == _NO_REPORT_EXIT:
            return None, JUNIT_ABSENT
        if exit_code != 0:
            return None, JUNIT_UNREADABLE
        if out.overflow or len(out.data) > JUNIT_LIMIT:
            return None, JUNIT_TOO_LARGE
        counts = parse_junit(bytes(out.data))
        return (counts, None) if counts is not None else (None, JUNIT_MALFORMED)

    def _exec(
        self,
        command: list[str],
        timeout_s: float,
        out: _Sink,
        err: _Sink,
        action: str,
        *,
        stdin: bytes | None = None,
    ) -> int | None:
        """Run one exec and return its exit code, or None when the stream ended without one.

        Past ``timeout_s + kill_grace_s`` the Pod is deleted (``self._killed``) and None
        returned. Raises ``SandboxError`` when the exec cannot be opened or the process
        cannot be started.
        """
        deadline = time.monotonic() + timeout_s + self._options.kill_grace_s
        with _translate(action):
            client = stream(
                self._exec_api.connect_get_namespaced_pod_exec,
                self._name,
                self._namespace,
                command=command,
                container=CONTAINER_NAME,
                stdin=stdin is not None,
                stdout=True,
                stderr=True,
                tty=False,
                _preload_content=False,
                binary=True,
            )
        channels = _ExecChannels(client, out, err)
        try:
            if stdin is not None:
                channels.send_stdin(stdin, deadline)
            finished = channels.wait(deadline)
            if not finished:
                # Delete before closing: a hung exec may never answer the close.
                self._kill_on_overrun()
        finally:
            channels.close()
        if not finished:
            return None
        return exec_exit_code(channels.status, action)

    def _kill_on_overrun(self) -> None:
        self._killed = True
        log.warning("sandbox %s overran its timeout; deleting the pod", self._name)
        if not self._deleted:
            self._deleted = True
            _delete_pod(self._core, self._namespace, self._name, self._options.request_timeout_s)


class _Sink(Protocol):
    def add(self, chunk: bytes) -> None: ...


class _Capped:
    """Keeps the first ``limit`` bytes of a stream and whether more came."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self.data = bytearray()
        self.overflow = False

    def add(self, chunk: bytes) -> None:
        room = self._limit - len(self.data)
        if len(chunk) > room:
            self.overflow = True
        self.data += chunk[: max(room, 0)]

    def text(self) -> str:
        return self.data.decode("utf-8", errors="replace")


class _ExecChannels:
    """The frames of one exec's websocket, sorted by channel into bounded sinks.

    ``client`` is the ``WSClient`` that ``stream`` returns; only its public ``sock`` (the
    ``websocket.WebSocket``), ``write_stdin``, ``close_channel`` and ``close`` are used.
    """

    def __init__(self, client: Any, out: _Sink, err: _Sink) -> None:
        self._client = client
        self._socket = client.sock
        self._sinks: dict[int, _Sink] = {
            STDOUT_CHANNEL: out,
            STDERR_CHANNEL: err,
            STATUS_CHANNEL: (status := _Capped(STATUS_LIMIT)),
        }
        self._status = status
        self.ended = False

    @property
    def status(self) -> bytes:
        """What arrived on the status channel (empty when nothing did)."""
        return bytes(self._status.data)

    def send_stdin(self, data: bytes, deadline: float) -> None:
        """Send ``data`` on stdin, then close stdin where the protocol can (v5).

        Output is taken between chunks so the far side never blocks writing to us. A stream
        that ends early (the command failed) stops the sending; ``wait`` then reads why.
        """
        try:
            for start in range(0, len(data), STDIN_CHUNK):
                while not self.ended and self.receive(0.0):
                    pass
                remaining = deadline - time.monotonic()
                if self.ended or remaining <= 0:
                    return
                self._socket.settimeout(remaining)
                self._client.write_stdin(data[start : start + STDIN_CHUNK])
            self._client.close_channel(STDIN_CHANNEL)  # a no-op on v4; head -c counts instead
        except (WebSocketException, OSError) as exc:
            log.debug("exec stdin closed early: %s", exc)

    def wait(self, deadline: float) -> bool:
        """Read frames until the stream ends (True) or ``deadline`` passes (False)."""
        while not self.ended:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self.receive(min(remaining, MAX_WAIT_S))
        return True

    def receive(self, timeout_s: float) -> bool:
        """Handle one frame, waiting at most ``timeout_s``; False when none came in time."""
        self._socket.settimeout(max(timeout_s, 0.001))  # 0 would make the socket non-blocking
        try:
            opcode, frame = self._socket.recv_data_frame(True)
        except WebSocketTimeoutException:
            return False
        except (WebSocketException, OSError):  # closed, reset, or a protocol error
            self.ended = True
            return True
        if opcode == ABNF.OPCODE_CLOSE:
            self.ended = True
        elif opcode in (ABNF.OPCODE_BINARY, ABNF.OPCODE_TEXT):
            self._dispatch(frame.data)
        return True

    def close(self) -> None:
        """Say goodbye (waiting at most a second for the answer) and close the socket."""
        try:
            self._client.close(timeout=1)
        except (WebSocketException, OSError) as exc:
            log.debug("could not close an exec stream cleanly: %s", exc)
        # WebSocket.close returns early, socket left open, once the server has closed first.
        self._socket.shutdown()

    def _dispatch(self, data: bytes | str) -> None:
        raw = data.encode() if isinstance(data, str) else bytes(data)
        if not raw:
            return
        # The first byte names the channel; 255 is v5's close signal, which needs nothing.
        sink = self._sinks.get(raw[0])
        if sink is not None and len(raw) > 1:
            sink.add(raw[1:])


def kubernetes_sandbox_from_config(
    namespace: str,
    *,
    kubeconfig: Path | None = None,
    context: str | None = None,
    options: KubernetesOptions | None = None,
) -> KubernetesSandbox:
    """Build a ``KubernetesSandbox`` from the in-cluster service account or a kubeconfig.

    With neither ``kubeconfig`` nor ``context``, the in-cluster configuration is tried first,
    then the default kubeconfig (``$KUBECONFIG`` or ``~/.kube/config``). Refreshed credentials
    are never written back to the file. Raises ``SandboxError`` (not retryable) when no
    configuration loads.
    """
    configuration = Configuration()
    try:
        if kubeconfig is None and context is None:
            try:
                kube_config.load_incluster_config(  # type: ignore[no-untyped-call]
                    client_configuration=configuration
                )
            except ConfigException:
                _load_kubeconfig(configuration, None, None)
        else:
            _load_kubeconfig(configuration, kubeconfig, context)
    except (ConfigException, OSError, ValueError, TypeError, KeyError) as exc:
        where = str(kubeconfig) if kubeconfig else "in-cluster or the default kubeconfig"
        raise SandboxError(
            f"cannot load the Kubernetes configuration ({where}): {exc}", retryable=False
        ) from exc
    return KubernetesSandbox(CoreV1Api(ApiClient(configuration)), namespace, options)


def _load_kubeconfig(
    configuration: Configuration, kubeconfig: Path | None, context: str | None
) -> None:
    kube_config.load_kube_config(  # type: ignore[no-untyped-call]
        config_file=str(kubeconfig) if kubeconfig is not None else None,
        context=context,
        client_configuration=configuration,
        persist_config=False,
    )


def _delete_pod(core: CoreV1Api, namespace: str, name: str, timeout_s: float) -> int:
    """Delete a Pod at once; 1 when deleted, 0 when gone already or not deletable (logged)."""
    try:
        core.delete_namespaced_pod(
            name,
            namespace,
            grace_period_seconds=0,
            propagation_policy="Background",
            _request_timeout=timeout_s,
        )
    except ApiException as exc:
        if exc.status != 404:
            log.warning("could not delete sandbox pod %s: %s", name, _describe(exc))
        return 0
    except (urllib3.exceptions.HTTPError, OSError, ValueError) as exc:
        log.warning("could not delete sandbox pod %s: %s", name, exc)
        return 0
    return 1


def _describe(exc: ApiException) -> str:
    """The status and the API server's own message (from the ``Status`` body), bounded."""
    message = ""
    try:
        body = json.loads(exc.body) if exc.body else None
    except ValueError:
        body = None
    if isinstance(body, dict):
        message = str(body.get("message") or "")
    text = f"{exc.status} {exc.reason or ''}".strip()
    return _clip(f"{text}: {message}" if message else text)


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MESSAGE_LIMIT else text[: MESSAGE_LIMIT - 1] + "…"


@contextlib.contextmanager
def _translate(action: str) -> Iterator[None]:
    """Re-raise kubernetes, urllib3 and websocket errors as SandboxError, saying whether a
    retry can help: yes for 5xx, 429 and an unreachable server; no for other refusals."""
    try:
        yield
    except ApiException as exc:
        status = exc.status or 0
        if status == 0:
            # The websocket call reports every failure as status 0 with the reason as text,
            # a refused handshake included.
            found = _HANDSHAKE_STATUS.search(str(exc.reason or ""))
            status = int(found.group(1)) if found else 0
        message = f"{action}: {_describe(exc)}"
        if status in (401, 403):
            message += (
                "; the bot's service account needs pods (create, get, list, delete),"
                " pods/exec (create, get) and networkpolicies (create, get; update to repair"
                " a loosened one) in this"
                " namespace: see docs/sandbox.md"
            )
        retryable = status in (0, 429) or status >= 500
        raise SandboxError(message, retryable=retryable) from exc
    except (urllib3.exceptions.HTTPError, WebSocketException, OSError) as exc:
        raise SandboxError(
            f"{action}: Kubernetes API server unreachable: {exc}", retryable=True
        ) from exc
    except ValueError as exc:  # the client's own validation of a request (pydantic included)
        raise SandboxError(f"{action}: invalid request: {_clip(str(exc))}") from exc
