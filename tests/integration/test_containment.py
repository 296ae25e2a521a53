"""Containment: what hostile code tries inside a sandbox, against the real Docker engine.

Each case is a separate test in its own session. It runs a probe, names what happened as a
``Contained`` outcome (or ``ESCAPED``), asserts the outcome it must be, and checks that no
container or volume of the case is left afterwards.

Needs the Docker engine and the Python runner image, like test_sandbox_docker.py;
FORGEBOT_ALLOW_SKIP=1 skips instead of failing where there is no Docker.
"""

from __future__ import annotations

import io
import ipaddress
import socket
import tarfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum

import docker
import pytest

from bot.sandbox.base import Limits, Result
from bot.sandbox.docker import (
    KILL_GRACE_S,
    RUNNER_IMAGE,
    DockerSandbox,
    DockerSession,
)
from tests.integration.docker_engine import docker_engine

pytestmark = pytest.mark.docker

CASE_LABEL = "forgebot.test"
CASE_VALUE = "test_containment"
LABELS = {CASE_LABEL: CASE_VALUE}


class Contained(StrEnum):
    """How a containment case ended."""

    UNREACHABLE = "unreachable"  # no route out: only the loopback interface exists
    NO_RESOLUTION = "no-resolution"  # names do not resolve
    PIDS_LIMIT = "pids-limit"  # processes stopped at the pids limit, reported as "pids"
    OUT_OF_MEMORY = "out-of-memory"  # killed by the memory limit, reported as "oom"
    WORKSPACE_FULL = "workspace-full"  # the tmpfs workspace ran out at its size
    KILLED_AT_LIMIT = "killed-at-limit"  # killed at the wall-clock limit
    ABSENT = "absent"  # what was looked for is not there
    READ_ONLY = "read-only"  # nothing outside the workspace, /tmp and /dev/shm is writable
    NO_ESCALATION = "no-escalation"  # setuid programs run without gaining privileges
    ESCAPED = "escaped"  # containment failed


@pytest.fixture(scope="module")
def client() -> Iterator[docker.DockerClient]:
    with docker_engine([RUNNER_IMAGE]) as engine:
        yield engine


@pytest.fixture(scope="module")
def sandbox(client: docker.DockerClient) -> DockerSandbox:
    return DockerSandbox(client)


@pytest.fixture(autouse=True)
def nothing_left_behind(client: docker.DockerClient) -> Iterator[None]:
    yield
    selector = {"label": f"{CASE_LABEL}={CASE_VALUE}"}
    containers = client.containers.list(all=True, filters=selector)
    volumes = client.volumes.list(filters=selector)
    for leftover in [*containers, *volumes]:
        leftover.remove(force=True)
    assert not containers, f"containers left behind: {[c.name for c in containers]}"
    assert not volumes, f"volumes left behind: {[v.name for v in volumes]}"


@contextmanager
def contained(
    sandbox: DockerSandbox, client: docker.DockerClient, limits: Limits | None = None
) -> Iterator[DockerSession]:
    """A session of its own for one case; its container must be gone once it is closed."""
    session = sandbox.start(RUNNER_IMAGE, limits or Limits(pids=128, memory_mb=512), LABELS)
    try:
        yield session
    finally:
        session.close()
        assert not client.containers.list(all=True, filters={"name": session.name})


def _empty_tar() -> bytes:
    buffer = io.BytesIO()
    tarfile.open(fileobj=buffer, mode="w").close()
    return buffer.getvalue()


def _python(session: DockerSession, code: str, timeout_s: int = 30) -> Result:
    return session.run(["python3", "-c", code], timeout_s)


def _sh(session: DockerSession, script: str, timeout_s: int = 30) -> Result:
    return session.run(["sh", "-c", script], timeout_s)


CONNECT = """
import errno, socket, sys
host, port = sys.argv[1], int(sys.argv[2])
try:
    socket.create_connection((host, port), timeout=3).close()
    print("connected")
except OSError as exc:
    print("unreachable" if exc.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH) else f"other {exc}")
"""


def _connect_outcome(session: DockerSession, host: str, port: int) -> Contained:
    result = session.run(["python3", "-c", CONNECT, host, str(port)], 30)
    interfaces = _sh(session, "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '").stdout.split()
    if result.stdout.strip() == "unreachable" and interfaces == ["lo"]:
        return Contained.UNREACHABLE
    return Contained.ESCAPED


@contextmanager
def _listener() -> Iterator[tuple[int, list[str]]]:
    """A TCP server on every interface of the host, recording who connects."""
    server = socket.create_server(("0.0.0.0", 0))
    server.settimeout(0.2)
    accepted: list[str] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, peer = server.accept()
            except OSError:
                continue
            accepted.append(peer[0])
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1], accepted
    finally:
        stop.set()
        thread.join(timeout=2)
        server.close()


def test_outbound_tcp_to_the_host(sandbox: DockerSandbox, client: docker.DockerClient) -> None:
    # A port that is really open on the host: a container on the default bridge reaches it
    # through the gateway, so "unreachable" means the sandbox, not an empty port.
    with _listener() as (port, accepted), contained(sandbox, client) as session:
        outcomes = {_connect_outcome(session, host, port) for host in _host_addresses(client)}

    assert outcomes == {Contained.UNREACHABLE}
    assert accepted == []


def _host_addresses(client: docker.DockerClient) -> set[str]:
    """The host as a container sees it (the bridge's gateway) and its main address."""
    config = client.networks.get("bridge").attrs["IPAM"]["Config"][0]
    gateway = config.get("Gateway") or str(next(ipaddress.ip_network(config["Subnet"]).hosts()))
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("192.0.2.1", 9))  # UDP connect sends nothing; it picks the route
        main = probe.getsockname()[0]
    except OSError:
        main = gateway
    finally:
        probe.close()
    return {gateway, main}


def test_outbound_tcp_to_a_public_address(
    sandbox: DockerSandbox, client: docker.DockerClient
) -> None:
    with contained(sandbox, client) as session:
        outcomes = {_connect_outcome(session, host, 443) for host in ("1.1.1.1", "8.8.8.8")}

    assert outcomes == {Contained.UNREACHABLE}


def test_dns(sandbox: DockerSandbox, client: docker.DockerClient) -> None:
    code = (
        "import socket\n"
        "for name in ('deb.debian.org', 'registry.npmjs.org', 'localhost.example.com'):\n"
        "    try:\n"
        "        socket.getaddrinfo(name, 443)\n"
        "        print('resolved', name)\n"
        "    except socket.gaierror:\n"
        "        print('no-resolution')\n"
    )
    with contained(sandbox, client) as session:
        lines = set(_python(session, code).stdout.split("\n")) - {""}

    outcome = Contained.NO_RESOLUTION if lines == {"no-resolution"} else Contained.ESCAPED
    assert outcome is Contained.NO_RESOLUTION, lines


def test_fork_bomb(sandbox: DockerSandbox, client: docker.DockerClient) -> None:
    started = time.monotonic()
    with contained(sandbox, client, Limits(pids=64)) as session:
        result = session.run(["bash", "-c", ":(){ :|:& };:"], 5)
        processes = client.api.top(session.name, ps_args="-o pid").get("Processes") or []

    outcome = Contained.PIDS_LIMIT if result.killed_by == "pids" else Contained.ESCAPED
    assert outcome is Contained.PIDS_LIMIT, result
    assert len(processes) <= 64
    assert time.monotonic() - started < 30


def test_memory_hog(sandbox: DockerSandbox, client: docker.DockerClient) -> None:
    with contained(sandbox, client, Limits(memory_mb=128)) as session:
        result = _python(session, "b = bytearray(1024 * 1024 * 1024)\nprint(len(b))")
        after = session.run(["true"], 10)  # the session survives its command's death

    outcome = Contained.OUT_OF_MEMORY if result.killed_by == "oom" else Contained.ESCAPED
    assert outcome is Contained.OUT_OF_MEMORY, result
    assert (result.exit_code, result.timed_out) == (137, False)
    assert (after.exit_code, after.killed_by) == (0, None)


def test_filling_the_workspace(sandbox: DockerSandbox, client: docker.DockerClient) -> None:
    with contained(sandbox, client, Limits(workspace_mb=16)) as session:
        result = _sh(session, "dd if=/dev/zero of=fill bs=1M count=200 2>&1; df -k /sandbox")
        size_kb = int(result.stdout.splitlines()[-1].split()[1])
        session.put(_empty_tar())  # the full workspace is cleared for the next put
        after = _sh(session, "ls -A; df -k /sandbox | tail -n 1")

    full = "No space left on device" in result.stdout and size_kb <= 16 * 1024
    outcome = Contained.WORKSPACE_FULL if full else Contained.ESCAPED
    assert outcome is Contained.WORKSPACE_FULL, result.stdout
    assert after.stdout.split()[0] == "tmpfs"  # empty folder, then the df line


def test_endless_loop(sandbox: DockerSandbox, client: docker.DockerClient) -> None:
    with contained(sandbox, client) as session:
        started = time.monotonic()
        result = _sh(session, "while :; do :; done", timeout_s=2)
        elapsed = time.monotonic() - started
        busy = _sh(session, "ps -eo stat,args | grep -c '^R.*while' || true").stdout.strip()

    killed = result.timed_out and result.killed_by == "timeout" and 2 <= elapsed < 2 + 3
    outcome = Contained.KILLED_AT_LIMIT if killed and busy == "0" else Contained.ESCAPED
    assert outcome is Contained.KILLED_AT_LIMIT, (result, elapsed, busy)


def test_endless_loop_that_escapes_the_timeout(
    sandbox: DockerSandbox, client: docker.DockerClient
) -> None:
    # A loop in a session of its own (setsid) survives the in-container timeout, which kills
    # the command's process group; the clean-up after the command kills it.
    with contained(sandbox, client) as session:
        started = time.monotonic()
        result = _sh(session, "setsid sh -c 'while :; do :; done' & wait", timeout_s=2)
        elapsed = time.monotonic() - started
        processes = client.api.top(session.name, ps_args="-o pid,user,args")["Processes"]

    loops = [p for p in processes if "while" in p[-1]]
    killed = result.timed_out and result.killed_by == "timeout" and not loops
    outcome = Contained.KILLED_AT_LIMIT if killed else Contained.ESCAPED
    assert outcome is Contained.KILLED_AT_LIMIT, (result, processes)
    # The engine ends the exec a few seconds after its process when an escaped child still
    # holds the output; the host timer (limit + KILL_GRACE_S) bounds it in any case.
    assert elapsed < 2 + KILL_GRACE_S + 2
    assert len(processes) == 2  # docker-init and sleep, as nobody


def test_reading_the_bots_environment_and_token(
    sandbox: DockerSandbox, client: docker.DockerClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = "ghp_containmentTEST0123456789abcdefABCDEF"
    monkeypatch.setenv("FORGEBOT_FORGES__GITHUB__TOKEN", token)
    monkeypatch.setenv("GITHUB_TOKEN", token)
    script = (
        "env; cat /proc/1/environ | tr '\\0' '\\n';"
        f" grep -rIl --exclude-dir=proc --exclude-dir=sys -e '{token[:12]}' / 2>/dev/null;"
        " ls -A /run/secrets /var/run/secrets 2>&1"
    )
    with contained(sandbox, client) as session:
        result = _sh(session, script, timeout_s=60)

    names = {line.split("=", 1)[0] for line in result.stdout.splitlines() if "=" in line}
    leaked = token[:12] in result.stdout or {"FORGEBOT_FORGES__GITHUB__TOKEN", "GITHUB_TOKEN"} & (
        names
    )
    outcome = Contained.ESCAPED if leaked else Contained.ABSENT
    assert outcome is Contained.ABSENT
    assert not {name for name in names if name.startswith("FORGEBOT_")} - {
        "FORGEBOT_JUNIT",
        "FORGEBOT_DEPS",
    }


def test_writing_outside_the_workspace(sandbox: DockerSandbox, client: docker.DockerClient) -> None:
    # Every folder the sandbox user can write to, and the file system it is on.
    script = (
        "find / -path /proc -prune -o -path /sys -prune -o -type d -writable -print 2>/dev/null"
        " | while read -r d; do echo \"$d $(stat -f -c %T \"$d\")\"; done;"
        " for p in /etc/passwd /usr/bin/python3 /forgebot /home/runner/x /var/tmp/x; do"
        "   (echo x >> $p) 2>/dev/null && echo WROTE $p; done"
    )
    with contained(sandbox, client) as session:
        result = _sh(session, script, timeout_s=60)

    writable = dict(line.rsplit(" ", 1) for line in result.stdout.splitlines() if " " in line)
    allowed = ("/sandbox", "/tmp", "/dev/shm", "/dev/mqueue")
    outside = {d for d in writable if not d.startswith(allowed)}
    on_disk = {d for d, kind in writable.items() if kind not in ("tmpfs", "mqueue")}
    escaped = outside or on_disk or "WROTE" in result.stdout
    outcome = Contained.ESCAPED if escaped else Contained.READ_ONLY
    assert outcome is Contained.READ_ONLY, result.stdout
    assert "/sandbox/repo" in writable


SETUID = """
import os, pty, sys, time
setuid_programs = [p for p in ("/bin/su", "/usr/bin/su", "/usr/bin/passwd", "/bin/mount")
                   if os.path.exists(p) and os.stat(p).st_mode & 0o4000]
print("setuid", len(setuid_programs))
for program in setuid_programs:
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(program, [program, "root"] if program.endswith("su") else [program])
    time.sleep(0.5)  # su and passwd wait for a password on the terminal
    try:
        uids = open(f"/proc/{pid}/status").read().split("Uid:")[1].split()[:4]
        print("uids", program, " ".join(uids))
    except (OSError, IndexError):
        print("gone", program)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
try:
    os.setuid(0)
    print("setuid(0) worked")
except PermissionError:
    print("setuid(0) refused")
print("id", os.getuid(), os.geteuid())
"""


def test_setuid_escalation(sandbox: DockerSandbox, client: docker.DockerClient) -> None:
    with contained(sandbox, client) as session:
        result = _python(session, SETUID)
        status = _sh(session, "grep -E '^(NoNewPrivs|CapEff):' /proc/self/status").stdout

    lines = result.stdout.splitlines()
    assert int(lines[0].split()[1]) > 0, "the image has setuid programs to try"
    seen = [line.split()[2:] for line in lines if line.startswith("uids ")]
    assert seen, result.stdout
    gained = any(uid != "1000" for uids in seen for uid in uids)
    escaped = gained or "setuid(0) worked" in result.stdout or lines[-1] != "id 1000 1000"
    outcome = Contained.ESCAPED if escaped else Contained.NO_ESCALATION
    assert outcome is Contained.NO_ESCALATION, result.stdout
    assert "NoNewPrivs:\t1" in status and "CapEff:\t0000000000000000" in status


def test_looking_for_the_docker_socket(
    sandbox: DockerSandbox, client: docker.DockerClient
) -> None:
    script = (
        "ls -l /var/run/docker.sock /run/docker.sock 2>&1;"
        " find / -path /proc -prune -o -path /sys -prune -o -type s -print 2>/dev/null;"
        " env | grep -i docker;"
        " grep -e docker.sock -e containerd /proc/mounts; true"
    )
    with contained(sandbox, client) as session:
        result = _sh(session, script, timeout_s=60)
        reach = _connect_outcome(session, "172.17.0.1", 2375)

    lines = result.stdout.splitlines()
    missing = [line for line in lines if "No such file or directory" in line]
    found = [line for line in lines if line not in missing]
    outcome = Contained.ABSENT if len(missing) == 2 and not found else Contained.ESCAPED
    assert outcome is Contained.ABSENT, result.stdout
    assert reach is Contained.UNREACHABLE
