"""The Kubernetes sandbox backend against recorded API exchanges.

No API server can run here, so ``FakeApiServer`` plays one: a local HTTP server that answers
the REST calls and the exec websockets of a scenario in tests/fixtures/k8s/scenarios, in
order. The real ``kubernetes`` client talks to it (CoreV1Api, ``stream``, websocket-client),
so the request paths, the channel framing (1 stdout, 2 stderr, 3 the exit status) and the
client's error handling are the library's own, not a mock's. The recordings were written to
match what a real API server (1.30, containerd) answers; they were not captured from a
cluster, and this backend has not run against one: see docs/sandbox.md.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import json
import socket
import tarfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from kubernetes.client import ApiClient, Configuration, CoreV1Api

from bot.errors import SandboxError
from bot.sandbox.base import Limits
from bot.sandbox.junit import JUNIT_ABSENT
from bot.sandbox.k8s_manifests import SESSION_LABEL, pod_manifest
from bot.sandbox.kubernetes import (
    KubernetesOptions,
    KubernetesSandbox,
    kubernetes_sandbox_from_config,
)
from bot.sandbox.tarball import normalise_tree

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "k8s"
NAMESPACE = "forgebot-sandboxes"
IMAGE = "forgebot-runner-python:1"
LABELS = {"forgebot.job": "12", "forgebot.attempt": "31", "forgebot.owner": "worker-1:4242:9f3c2a"}
WEBSOCKET_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
FAST = KubernetesOptions(
    poll_interval_s=0.01, start_timeout_s=5.0, request_timeout_s=5.0, kill_grace_s=0.3
)


# The fake API server -------------------------------------------------------------------


@dataclass
class ExecCall:
    """One exec the fake served: the command asked for and what came in on stdin."""

    command: list[str]
    stdin: bytes = b""
    stdin_closed: bool = False  # the v5 close signal for channel 0 arrived


@dataclass
class FakeApiServer:
    """Answers the requests of one recorded scenario, in order, and notes what it was sent.

    An exchange marked ``repeat`` answers until a request fits the next one. A request that
    fits no exchange gets a 500 and is listed in ``errors``; ``assert_done`` fails then, or
    when exchanges are left over.
    """

    scenario: str
    exchanges: list[dict[str, Any]] = field(default_factory=list)
    position: int = 0
    pod: str = "<no pod created>"
    errors: list[str] = field(default_factory=list)
    bodies: list[Any] = field(default_factory=list)
    execs: list[ExecCall] = field(default_factory=list)
    stdin_expected: list[bytes] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        recording = json.loads((FIXTURES / "scenarios" / f"{self.scenario}.json").read_text())
        self.exchanges = recording["exchanges"]
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.daemon_threads = True
        self.httpd.fake = self  # type: ignore[attr-defined]
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def assert_done(self) -> None:
        assert self.errors == []
        left = self.exchanges[self.position :]
        assert left == [] or (len(left) == 1 and left[0].get("repeat")), f"not asked: {left}"

    def match(self, method: str, path: str, query: dict[str, list[str]]) -> dict[str, Any] | None:
        with self.lock:
            while self.position < len(self.exchanges):
                exchange = self.exchanges[self.position]
                if self._fits(exchange, method, path, query):
                    if not exchange.get("repeat"):
                        self.position += 1
                    return exchange
                if not exchange.get("repeat"):
                    break
                self.position += 1  # a repeated answer ends when the next one is asked for
            self.errors.append(f"unexpected {method} {path} at exchange {self.position}")
            return None

    def note_body(self, method: str, path: str, body: bytes) -> None:
        if not body:
            return
        document = json.loads(body)
        self.bodies.append(document)
        if method == "POST" and path.endswith("/pods"):
            self.pod = document["metadata"]["name"]

    def load(self, name: str) -> Any:
        return self.substitute(json.loads((FIXTURES / "objects" / f"{name}.json").read_text()))

    def substitute(self, value: Any) -> Any:
        if isinstance(value, dict):
            return {key: self.substitute(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self.substitute(item) for item in value]
        if isinstance(value, str):
            if value.startswith("{ago:"):
                then = datetime.now(UTC) - timedelta(seconds=int(value[5:-1]))
                return then.strftime("%Y-%m-%dT%H:%M:%SZ")
            return value.replace("{pod}", self.pod).replace("{namespace}", NAMESPACE)
        return value

    def _fits(
        self, exchange: dict[str, Any], method: str, path: str, query: dict[str, list[str]]
    ) -> bool:
        if exchange["method"] != method or self.substitute(exchange["path"]) != path:
            return False
        wanted = exchange.get("query", {})
        return all(query.get(key, [None])[0] == value for key, value in wanted.items())


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        self._answer()

    def do_PUT(self) -> None:
        self._answer()

    def do_DELETE(self) -> None:
        self._answer()

    def log_message(self, format: str, *args: Any) -> None:
        pass

    @property
    def fake(self) -> FakeApiServer:
        return self.server.fake  # type: ignore[attr-defined, no-any-return]

    def _answer(self) -> None:
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        exchange = self.fake.match(self.command, url.path, query)
        if exchange is None:
            self._json(500, {"kind": "Status", "status": "Failure", "message": "not recorded"})
            return
        self.fake.note_body(self.command, url.path, body)
        if "exec" in exchange:
            self._exec(exchange["exec"], query.get("command", []))
        else:
            self._json(exchange["status"], self.fake.load(exchange["body"]))

    def _json(self, status: int, document: Any) -> None:
        payload = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _exec(self, spec: dict[str, Any], command: list[str]) -> None:
        self.close_connection = True
        offered = [p.strip() for p in self.headers.get("Sec-WebSocket-Protocol", "").split(",")]
        if (
            self.headers.get("Upgrade", "").lower() != "websocket"
            or spec["subprotocol"] not in offered
        ):
            self.fake.errors.append(f"not a channel websocket upgrade: {dict(self.headers)}")
            self._json(400, {"kind": "Status", "status": "Failure"})
            return
        key = self.headers["Sec-WebSocket-Key"]
        accept = base64.b64encode(hashlib.sha1((key + WEBSOCKET_GUID).encode()).digest())
        self.send_response(101)
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept.decode())
        self.send_header("Sec-WebSocket-Protocol", spec["subprotocol"])
        self.end_headers()
        self.connection.settimeout(10)
        call = ExecCall(command)
        self.fake.execs.append(call)
        for step in spec["steps"]:
            if not self._step(step, call, spec["subprotocol"]):
                return
        self.wfile.write(_frame(0x8, (1000).to_bytes(2, "big")))
        self._read_until_close(call)

    def _step(self, step: dict[str, Any], call: ExecCall, protocol: str) -> bool:
        """Play one recorded step; False when the client has gone."""
        if "sleep" in step:
            time.sleep(step["sleep"])
        elif "hold" in step:
            self._read_until_close(call)  # the client gives up: it closes, we answer
            return False
        elif "stdin" in step:
            self._read_stdin(call, protocol)
        else:
            if "fill" in step:  # much output, in frames of the recorded size
                frame = bytes([step["channel"]]) + step["fill"].encode() * step["frame"]
                for _ in range(step["size"] // step["frame"]):
                    self.wfile.write(_frame(0x2, frame))
                return True
            if "file" in step:
                data = (FIXTURES / step["file"]).read_bytes()
            elif "json" in step:
                data = json.dumps(step["json"], separators=(",", ":")).encode()
            else:
                data = step["text"].encode()
            self.wfile.write(_frame(0x2, bytes([step["channel"]]) + data))
        return True

    def _read_stdin(self, call: ExecCall, protocol: str) -> None:
        """Take stdin as ``head -c N`` would: N bytes, the N the test said to expect; on v5
        also wait for the client's close signal of channel 0."""
        expected = self.fake.stdin_expected.pop(0)
        while len(call.stdin) < len(expected) or (
            protocol.startswith("v5") and not call.stdin_closed
        ):
            frame = _read_frame(self.rfile)
            if frame is None or frame[0] == 0x8:
                break
            data = frame[1]
            if data[:1] == b"\x00":
                call.stdin += data[1:]
            elif data == b"\xff\x00":
                call.stdin_closed = True
        if call.stdin != expected:
            self.fake.errors.append(f"stdin of {call.command[:3]} is not the expected tar")

    def _read_until_close(self, call: ExecCall) -> None:
        while True:
            try:
                frame = _read_frame(self.rfile)
            except (OSError, ValueError):
                return
            if frame is None:
                return
            if frame[0] == 0x8:
                with contextlib.suppress(OSError):
                    self.wfile.write(_frame(0x8, frame[1][:2]))
                return


def _frame(opcode: int, payload: bytes) -> bytes:
    """A server-to-client websocket frame: final, unmasked."""
    size = len(payload)
    if size < 126:
        header = bytes([0x80 | opcode, size])
    elif size < 1 << 16:
        header = bytes([0x80 | opcode, 126]) + size.to_bytes(2, "big")
    else:
        header = bytes([0x80 | opcode, 127]) + size.to_bytes(8, "big")
    return header + payload


def _read_frame(stream: Any) -> tuple[int, bytes] | None:
    """A client-to-server frame (masked): (opcode, payload), or None at end of stream."""
    head = stream.read(2)
    if len(head) < 2:
        return None
    opcode, masked, size = head[0] & 0x0F, head[1] & 0x80, head[1] & 0x7F
    if size == 126:
        size = int.from_bytes(stream.read(2), "big")
    elif size == 127:
        size = int.from_bytes(stream.read(8), "big")
    mask = stream.read(4) if masked else b"\x00\x00\x00\x00"
    data = stream.read(size)
    return opcode, bytes(byte ^ mask[index % 4] for index, byte in enumerate(data))


# Fixtures and helpers ------------------------------------------------------------------


@pytest.fixture
def api() -> Iterator[Callable[[str], FakeApiServer]]:
    """Start a fake API server for a scenario; each is checked to be played out."""
    servers: list[FakeApiServer] = []

    def start(scenario: str) -> FakeApiServer:
        server = FakeApiServer(scenario)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


@pytest.fixture
def clients() -> Iterator[Callable[[str], CoreV1Api]]:
    """CoreV1Api clients to a URL, closed at the end (their connection pools)."""
    made: list[ApiClient] = []

    def make(url: str) -> CoreV1Api:
        client = ApiClient(Configuration(host=url))
        made.append(client)
        return CoreV1Api(client)

    yield make
    for client in made:
        client.close()


@pytest.fixture
def sandbox_for(
    api: Callable[[str], FakeApiServer], clients: Callable[[str], CoreV1Api]
) -> Callable[..., tuple[KubernetesSandbox, FakeApiServer]]:
    def make(
        scenario: str, options: KubernetesOptions = FAST
    ) -> tuple[KubernetesSandbox, FakeApiServer]:
        server = api(scenario)
        return KubernetesSandbox(clients(server.url), NAMESPACE, options), server

    return make


def repo_tar(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, text in files.items():
            data = text.encode()
            member = tarfile.TarInfo(name)
            member.size, member.mode = len(data), 0o644
            tar.addfile(member, io.BytesIO(data))
    return buffer.getvalue()


TREE = repo_tar(
    {"greeting.py": "def hello():\n    return 'hello'\n", "tests/test_greeting.py": "x"}
)


# A whole session ------------------------------------------------------------------------


def test_session_start_put_run_close(sandbox_for: Any) -> None:
    sandbox, server = sandbox_for("lifecycle")
    server.stdin_expected.append(normalise_tree(TREE))
    session = sandbox.start(IMAGE, Limits(), dict(LABELS))

    session.put(TREE)
    passed = session.run(["python3", "-m", "pytest", "-q"], 300)
    failed = session.run(["python3", "-m", "pytest", "-q"], 300)
    session.close()
    session.close()  # the second close asks nothing of the API server

    server.assert_done()
    assert (passed.exit_code, passed.timed_out, passed.killed_by) == (0, False, None)
    assert "2 passed" in passed.stdout and passed.stderr == ""
    assert passed.junit is not None and (passed.junit.passed, passed.junit.failed) == (2, 0)
    assert passed.junit_missing is None
    assert failed.exit_code == 1 and not failed.timed_out
    assert failed.stderr == "warning: something on stderr\n"
    assert failed.junit is not None and (failed.junit.passed, failed.junit.failed) == (1, 1)
    assert failed.junit.failures == (
        "tests.test_greeting::test_farewell: AssertionError: assert 'bye' == 'goodbye'",
    )


def test_session_sends_the_hardened_pod_and_network_policy(sandbox_for: Any) -> None:
    sandbox, server = sandbox_for("lifecycle")
    server.stdin_expected.append(normalise_tree(TREE))
    with sandbox.start(IMAGE, Limits(), dict(LABELS)) as session:
        session.put(TREE)
        session.run(["true"], 300)
        session.run(["true"], 300)

    policy, pod = server.bodies[0], server.bodies[1]
    assert policy["spec"]["podSelector"] == {"matchLabels": {SESSION_LABEL: "1"}}
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
    expected = pod_manifest(
        name=pod["metadata"]["name"],
        namespace=NAMESPACE,
        image=IMAGE,
        limits=Limits(),
        labels=LABELS,
    )
    assert pod == json.loads(json.dumps(expected))  # what was built is what was sent


def test_exec_protocol_of_each_step(sandbox_for: Any) -> None:
    sandbox, server = sandbox_for("lifecycle")
    tar = normalise_tree(TREE)
    server.stdin_expected.append(tar)
    with sandbox.start(IMAGE, Limits(), dict(LABELS)) as session:
        session.put(TREE)
        session.run(["python3", "-m", "pytest", "-q"], 300)
        session.run(["python3", "-m", "pytest", "-q"], 42)

    mkdir, put, run, junit, run_again, _ = server.execs
    assert mkdir.command == ["mkdir", "-p", "/sandbox/repo", "/sandbox/out"]
    assert put.command[:2] == ["sh", "-c"] and "| tar -x" in put.command[2]
    assert put.command[3:] == ["forgebot-put", str(len(tar)), "/sandbox/repo"]
    assert put.stdin == tar and put.stdin_closed  # v5: stdin is closed after the archive
    assert run.command[2].startswith("cd -- /sandbox/repo && ")
    assert "exec timeout -s KILL" in run.command[2]
    assert run.command[3:] == ["forgebot-run", "300", "python3", "-m", "pytest", "-q"]
    assert run_again.command[4] == "42"
    assert "head -c" in junit.command[2] and junit.command[4] == str(2 * 1024 * 1024 + 1)


def test_put_twice_over_v4_clears_the_workspace_first(sandbox_for: Any) -> None:
    sandbox, server = sandbox_for("put_twice_v4")
    second = repo_tar({"other.py": "pass\n"})
    server.stdin_expected += [normalise_tree(TREE), normalise_tree(second)]
    with sandbox.start(IMAGE, Limits(), dict(LABELS)) as session:
        session.put(TREE)
        session.put(second)

    server.assert_done()
    _, first_put, clear, second_put = server.execs
    assert "find /sandbox/repo -mindepth 1 -delete" in clear.command[2]
    # v4 has no way to close stdin: `head -c N` ends the input, the size is the argument.
    assert not first_put.stdin_closed and first_put.command[4] == str(len(first_put.stdin))
    assert second_put.stdin == normalise_tree(second)


def test_put_that_does_not_fit_is_not_retryable(sandbox_for: Any) -> None:
    sandbox, server = sandbox_for("put_too_big")
    server.stdin_expected.append(normalise_tree(TREE))
    session = sandbox.start(IMAGE, Limits(workspace_mb=16), dict(LABELS))
    with session, pytest.raises(SandboxError, match="does not fit the sandbox workspace") as caught:
        session.put(TREE)
    assert not caught.value.retryable
    assert "No space left on device" in str(caught.value)
    server.assert_done()


def test_put_refuses_a_tree_that_is_not_a_tar_without_asking_the_api(sandbox_for: Any) -> None:
    sandbox, server = sandbox_for("lost_stream")
    session = sandbox.start(IMAGE, Limits(), dict(LABELS))
    with pytest.raises(SandboxError, match="not a valid tar"):
        session.put(b"this is not a tar archive" * 40)
    assert len(server.execs) == 1  # only the mkdir of start
    with pytest.raises(SandboxError, match="without an exit status"):
        session.run(["true"], 10)  # the recording's next exec
    session.close()
    server.assert_done()


def test_large_input_and_output_stay_within_bounds(sandbox_for: Any) -> None:
    sandbox, server = sandbox_for("big_io")
    # Incompressible-looking content, so the archive is as big as it looks: 300 KiB.
    files = {f"data/{n}.txt": f"{n:08d}" * 1024 for n in range(38)}
    big_tree = repo_tar(files)
    server.stdin_expected.append(normalise_tree(big_tree))
    with sandbox.start(IMAGE, Limits(), dict(LABELS)) as session:
        session.put(big_tree)
        result = session.run(["python3", "-c", "print('x' * 2**21)"], 60)

    server.assert_done()
    assert len(server.execs[1].stdin) > 300_000  # several 64 KiB stdin frames
    assert result.exit_code == 0 and result.stderr == "done\n"
    assert len(result.stdout) < 70_000  # the 64 KiB bound of the Docker backend, plus a note
    assert "output truncated" in result.stdout
    assert (result.junit, result.junit_missing) == (None, JUNIT_ABSENT)  # exit 3: none


# Timeouts --------------------------------------------------------------------------------


def test_timeout_inside_the_sandbox_is_reported_and_the_session_lives(sandbox_for: Any) -> None:
    options = KubernetesOptions(poll_interval_s=0.01, request_timeout_s=5.0, kill_grace_s=3.0)
    sandbox, server = sandbox_for("run_timeout_inside", options)
    with sandbox.start(IMAGE, Limits(), dict(LABELS)) as session:
        result = session.run(["sleep", "100"], 1)

    server.assert_done()
    assert (result.exit_code, result.timed_out, result.killed_by) == (137, True, "timeout")
    assert result.stdout == "sleeping\n" and result.junit is None


def test_host_deadline_deletes_the_pod_and_ends_the_session(sandbox_for: Any) -> None:
    sandbox, server = sandbox_for("run_overrun")
    session = sandbox.start(IMAGE, Limits(), dict(LABELS))
    started = time.monotonic()
    result = session.run(["sleep", "100"], 1)
    elapsed = time.monotonic() - started

    assert (result.exit_code, result.timed_out, result.killed_by) == (137, True, "timeout")
    assert result.stdout == "started\n"
    assert 1.2 <= elapsed < 4  # the limit plus the kill grace, not the command's 100 s
    with pytest.raises(SandboxError, match="killed after overrunning"):
        session.run(["true"], 10)
    session.close()  # the pod is deleted already: nothing more is asked
    server.assert_done()


def test_stream_that_ends_without_a_status_breaks_the_session(sandbox_for: Any) -> None:
    sandbox, server = sandbox_for("lost_stream")
    with sandbox.start(IMAGE, Limits(), dict(LABELS)) as session:
        with pytest.raises(SandboxError, match="without an exit status") as caught:
            session.run(["python3", "-m", "pytest"], 60)
        assert caught.value.retryable
        with pytest.raises(SandboxError, match="start a new session"):
            session.run(["true"], 10)
    server.assert_done()


# Start failures: each leaves no pod behind ----------------------------------------------


def test_api_500_on_create_is_retryable_and_the_name_is_deleted(sandbox_for: Any) -> None:
    sandbox, server = sandbox_for("create_500")
    with pytest.raises(SandboxError, match="resource quota evaluation timed out") as caught:
        sandbox.start(IMAGE, Limits(), dict(LABELS))
    assert caught.value.retryable
    assert "500" in str(caught.value)
    server.assert_done()


def test_pod_that_never_runs_times_out_with_the_scheduler_reason(sandbox_for: Any) -> None:
    options = KubernetesOptions(poll_interval_s=0.02, start_timeout_s=0.3, request_timeout_s=5)
    sandbox, server = sandbox_for("never_running", options)
    started = time.monotonic()
    with pytest.raises(SandboxError, match=r"did not start within 0\.3 s") as caught:
        sandbox.start(IMAGE, Limits(), dict(LABELS))
    assert time.monotonic() - started < 3
    assert caught.value.retryable
    assert "Unschedulable: 0/3 nodes are available: 3 Insufficient memory" in str(caught.value)
    server.assert_done()


def test_image_that_cannot_be_pulled_fails_at_once(sandbox_for: Any) -> None:
    sandbox, server = sandbox_for("image_pull")
    with pytest.raises(SandboxError, match="ImagePullBackOff") as caught:
        sandbox.start(IMAGE, Limits(), dict(LABELS))
    assert not caught.value.retryable
    assert "cannot pull the runner image" in str(caught.value)
    server.assert_done()


def test_pod_that_ended_before_running_is_retryable(sandbox_for: Any) -> None:
    sandbox, server = sandbox_for("pod_failed")
    with pytest.raises(SandboxError, match="DeadlineExceeded") as caught:
        sandbox.start(IMAGE, Limits(), dict(LABELS))
    assert caught.value.retryable
    server.assert_done()


def test_exec_refused_by_rbac_names_the_permissions(sandbox_for: Any) -> None:
    sandbox, server = sandbox_for("exec_forbidden")
    with pytest.raises(SandboxError, match="403") as caught:
        sandbox.start(IMAGE, Limits(), dict(LABELS))
    assert not caught.value.retryable
    assert "pods/exec (create, get)" in str(caught.value)
    server.assert_done()


def test_process_that_cannot_start_is_a_sandbox_error(sandbox_for: Any) -> None:
    sandbox, server = sandbox_for("exec_cannot_start")
    with pytest.raises(SandboxError, match="could not start a process") as caught:
        sandbox.start(IMAGE, Limits(), dict(LABELS))
    assert "executable file not found" in str(caught.value)
    server.assert_done()


def test_bad_labels_are_refused_before_any_pod_is_created(sandbox_for: Any) -> None:
    sandbox, server = sandbox_for("network_policy_exists")
    with pytest.raises(SandboxError, match="not a valid Kubernetes label key"):
        sandbox.start(IMAGE, Limits(), {"bad key!": "1"})
    server.assert_done()  # the policy was ensured, nothing else asked


def test_unreachable_api_server_is_retryable(clients: Any) -> None:
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sandbox = KubernetesSandbox(clients(f"http://127.0.0.1:{port}"), NAMESPACE, FAST)
    with pytest.raises(SandboxError, match="unreachable") as caught:
        sandbox.start(IMAGE, Limits(), dict(LABELS))
    assert caught.value.retryable


# NetworkPolicy, reaper, factory ----------------------------------------------------------


def test_existing_deny_all_policy_is_left_alone(sandbox_for: Any) -> None:
    sandbox, server = sandbox_for("network_policy_exists")
    sandbox.ensure_network_policy()
    sandbox.ensure_network_policy()  # once per sandbox object: no second request
    server.assert_done()  # created (409), read, and not written: no `update` permission needed


def test_loosened_policy_is_replaced(sandbox_for: Any) -> None:
    sandbox, server = sandbox_for("network_policy_loosened")
    sandbox.ensure_network_policy()
    server.assert_done()
    created, replaced = server.bodies
    assert created == replaced
    assert replaced["metadata"]["name"] == "forgebot-sessions-deny-all"
    assert "egress" not in replaced["spec"] or replaced["spec"]["egress"] == []


def test_reaper_deletes_only_old_pods_of_the_exact_owner(sandbox_for: Any) -> None:
    sandbox, server = sandbox_for("reap")
    removed = sandbox.reap_orphans(3600, labels={"forgebot.owner": "worker-1:4242:9f3c2a"})
    owners = sandbox.sandbox_owners()
    server.assert_done()
    assert removed == 1
    assert owners == {"worker-1:4242:9f3c2a", "worker-1-4242-9f3c2a"}


def test_factory_loads_a_kubeconfig(api: Any, tmp_path: Path) -> None:
    server = api("reap_empty")
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "test", "cluster": {"server": server.url}}],
                "users": [{"name": "bot", "user": {"token": "not-a-real-token"}}],
                "contexts": [{"name": "test", "context": {"cluster": "test", "user": "bot"}}],
                "current-context": "test",
            }
        )
    )
    sandbox = kubernetes_sandbox_from_config(NAMESPACE, kubeconfig=kubeconfig, options=FAST)
    assert sandbox.namespace == NAMESPACE
    try:
        assert sandbox.reap_orphans(0) == 0
    finally:
        sandbox.close()
    server.assert_done()


def test_factory_without_a_configuration_is_not_retryable(tmp_path: Path) -> None:
    with pytest.raises(SandboxError, match="cannot load the Kubernetes configuration") as caught:
        kubernetes_sandbox_from_config(NAMESPACE, kubeconfig=tmp_path / "missing")
    assert not caught.value.retryable
