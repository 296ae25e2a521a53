"""Network attempts observed, not just blocked: a sink beside the verify run of the tests.

A sandbox has no network, so a test that calls out simply fails, and nobody learns where it
wanted to go. For the verify run, a sink container is started first, with no network but
loopback, running :mod:`bot.sandbox.sink_server` (dnslib's DNS server and the standard
library's TCP servers); the test container then joins the sink's network namespace
(``network_mode: container:<sink>``). Every DNS lookup is answered with 127.0.0.1 and
recorded, and a connection to ports 80, 443, 21, 22 or 25 of any name lands in the sink,
which records the port and the bytes sent (and the Host of plain HTTP) and answers nothing.
So a change whose tests reach for the network names its destinations, whatever the code
looked like: the pipeline compares them with the base commit's and reports new ones as the
violation ``checks.network``.

The sink runs our code in a container of its own image, built once from the python runner
image with the sink's files in it and every module it imports compiled (:func:`sink_image`),
so that it listens a moment after it starts. It runs as root without any capability but
binding low ports, with ``no-new-privileges``, no network, bounded memory and pids. What
it reports was written by the code under test, so :func:`parse_records` reads it as hostile
input: bounded, JSON only, names cut to what a host name can be.

What it cannot see: connections to an IP address (there is no route to one, so they fail
before leaving the process), and ports other than the five it listens on (the lookup of the
name is still recorded).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import json
import logging
import tarfile
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import dnslib
import docker
import requests

from bot.errors import SandboxError
from bot.sandbox.base import Limits, Result, Session

log = logging.getLogger(__name__)

SINK_DIR = "/opt/forgebot-sink"
SINK_LABEL = "forgebot.sink"
SINK_IMAGE_LABEL = "forgebot.sink-image"  # the key of the runner image and sink code
SINK_BASE_LABEL = "forgebot.sink-base"  # the runner image it was built from, by name
SINK_BUILD_LABEL = "forgebot.sink-build"  # the container that builds a sink image
SINK_REPOSITORY = "forgebot-sink"
BUILD_TIMEOUT_S = 120
MAX_RECORDS = 200
MAX_LOG_BYTES = 1024 * 1024
HEAD_BYTES = 2048  # as sink_server.HEAD_BYTES
READY_TIMEOUT_S = 15.0
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_:")


@dataclass(frozen=True)
class Attempt:
    """One thing the run tried: a DNS lookup of ``name``, or a connection to ``port`` that
    sent ``sent`` bytes (``name``: the HTTP Host it gave, when it was plain HTTP)."""

    kind: str  # "dns" or "tcp"
    name: str
    port: int | None = None
    sent: int = 0
    # The first bytes the connection sent (at most HEAD_BYTES): searched for canaries, never
    # shown or stored.
    head: bytes = field(default=b"", compare=False, repr=False)

    def __str__(self) -> str:
        if self.kind == "dns":
            return f"a DNS lookup of {self.name}"
        to = f"{self.name}:{self.port}" if self.name else f"port {self.port}"
        return f"a connection to {to} ({self.sent} bytes sent)"


def destinations(attempts: list[Attempt]) -> list[str]:
    """Where the attempts went, once each, in order: names looked up or given as the HTTP
    Host, and ports reached without a name."""
    seen: dict[str, None] = {}
    for attempt in attempts:
        seen.setdefault(attempt.name or f"port {attempt.port}", None)
    return list(seen)


def parse_records(text: str) -> list[Attempt]:
    """The sink's JSON lines as attempts; anything else on a line is skipped, and at most
    ``MAX_RECORDS`` are kept."""
    attempts: list[Attempt] = []
    for line in text.splitlines():
        if len(attempts) >= MAX_RECORDS:
            break
        try:
            item = json.loads(line)
        except ValueError:
            continue
        attempt = _attempt(item) if isinstance(item, dict) else None
        if attempt is not None:
            attempts.append(attempt)
    return attempts


def _attempt(item: Mapping[str, Any]) -> Attempt | None:
    kind = item.get("kind")
    name = _clean(item.get("name", item.get("host", "")))
    if kind == "dns" and name:
        return Attempt("dns", name)
    port, sent = item.get("port"), item.get("bytes")
    if kind == "tcp" and isinstance(port, int) and isinstance(sent, int):
        return Attempt("tcp", name, max(0, min(port, 65535)), max(0, sent),
                       _head(item.get("head")))
    return None


def _head(value: object) -> bytes:
    """The base64 ``head`` of a record, decoded and bounded; empty when it is not that."""
    if not isinstance(value, str) or len(value) > HEAD_BYTES * 2:
        return b""
    try:
        return base64.b64decode(value, validate=True)[:HEAD_BYTES]
    except (ValueError, binascii.Error):
        return b""


def _clean(value: object) -> str:
    """A host name as a host name can be written: its allowed characters only, 253 at most,
    lower case (DNS does not care)."""
    text = value if isinstance(value, str) else ""
    return "".join(c for c in text if c in _NAME_CHARS)[:253].lower()


class Sink:
    """One sink container; :meth:`stop` removes it and returns what it recorded."""

    def __init__(self, container: Any) -> None:
        self._container = container
        self._ready = False

    @property
    def id(self) -> str:
        return str(self._container.id)

    @classmethod
    def start(cls, client: docker.DockerClient, runner_image: str,
              labels: Mapping[str, str]) -> Sink:
        """Create and start a sink from its image (built from ``runner_image``, a python
        runner image, the first time: :func:`sink_image`); it listens a moment later
        (:meth:`wait_ready`), while the session starts beside it. Raises ``SandboxError``;
        nothing is left behind on failure."""
        image = sink_image(client, runner_image)
        try:
            container = client.containers.create(image, **_sink_options(labels))
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            raise SandboxError(f"could not create the network sink from {image}: {exc}") from exc
        sink = cls(container)
        try:
            container.start()
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            sink.stop()
            raise SandboxError(f"the network sink did not start: {exc}") from exc
        except BaseException:
            sink.stop()
            raise
        return sink

    def wait_ready(self) -> None:
        """Return once the sink listens; raises ``SandboxError`` when it does not."""
        if self._ready:
            return
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if b'"ready"' in self._container.logs(stdout=True, stderr=False, tail=5):
                self._ready = True
                return
            self._container.reload()
            if self._container.status not in ("created", "running"):
                break
            time.sleep(0.05)
        tail = self._container.logs(stdout=False, stderr=True, tail=5)
        raise SandboxError("the network sink did not start listening: "
                           f"{tail.decode('utf-8', 'replace').strip()[-300:] or 'no output'}")

    def stop(self) -> list[Attempt]:
        """Remove the sink; the attempts it recorded (none when its log cannot be read)."""
        text = ""
        try:
            raw = self._container.logs(stdout=True, stderr=False)
            text = raw[-MAX_LOG_BYTES:].decode("utf-8", "replace")
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            log.warning("could not read the network sink's records: %s", exc)
        try:
            self._container.remove(force=True)
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            log.warning("could not remove the network sink %s: %s", self.id[:12], exc)
        return parse_records(text)


@runtime_checkable
class ObservingSandbox(Protocol):
    """A sandbox backend that can start a session inside a network sink's namespace."""

    def start_observed(self, image: str, limits: Limits, labels: dict[str, str],
                       sink_image: str) -> ObservedSession: ...


class ObservedSession:
    """A session whose network namespace is a sink's. ``attempts`` is filled by ``close``."""

    def __init__(self, session: Session, sink: Sink) -> None:
        self._session = session
        self._sink = sink
        self.attempts: list[Attempt] = []

    def put(self, tree: bytes) -> None:
        self._session.put(tree)

    def run(self, cmd: list[str], timeout_s: int) -> Result:
        self._sink.wait_ready()
        return self._session.run(cmd, timeout_s)

    def close(self) -> None:
        try:
            self._session.close()
        finally:
            self.attempts = self._sink.stop()


_building = threading.Lock()


def sink_image(client: docker.DockerClient, runner_image: str) -> str:
    """The sink's image for ``runner_image``: that image with the sink's server and dnslib in
    ``SINK_DIR`` and the byte code of every module the server imports (the runner images keep
    none, and compiling them cost the sink half a second at each start). Built once per
    runner image and sink code, tagged ``forgebot-sink:<key>``; the older sink images of the
    same runner image name are removed when a new one is built. Raises ``SandboxError``."""
    tree = _sink_tree()
    try:
        base = client.images.get(runner_image).id
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        raise SandboxError(f"the network sink needs {runner_image}: {exc}") from exc
    key = hashlib.sha256(f"{runner_image}\0{base}\0".encode() + tree).hexdigest()[:16]
    tag = f"{SINK_REPOSITORY}:{key}"
    with _building:
        try:
            client.images.get(tag)
            return tag
        except docker.errors.ImageNotFound:
            pass
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            raise SandboxError(f"could not look up the network sink's image: {exc}") from exc
        _build(client, runner_image, tree, key)
        _remove_older(client, runner_image, key)
    return tag


def _build(client: docker.DockerClient, runner_image: str, tree: bytes, key: str) -> None:
    """Commit ``runner_image`` with ``tree`` put in and the server imported once by a Python
    that writes byte code (``-E`` ignores the image's PYTHONDONTWRITEBYTECODE)."""
    importer = f"import sys; sys.path.insert(0, {SINK_DIR!r}); import sink_server"
    try:
        container = client.containers.create(
            runner_image, command=["python3", "-E", "-s", "-S", "-c", importer],
            user="0:0", network_mode="none", labels={SINK_BUILD_LABEL: key},
            name=f"forgebot-sink-build-{uuid.uuid4().hex[:12]}")
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        raise SandboxError(f"could not build the network sink's image: {exc}") from exc
    try:
        if not container.put_archive("/opt", tree):
            raise SandboxError("the network sink's image refused its files")
        container.start()
        status = container.wait(timeout=BUILD_TIMEOUT_S).get("StatusCode")
        if status != 0:
            tail = container.logs(tail=5).decode("utf-8", "replace").strip()[-300:]
            raise SandboxError(f"the network sink's server does not import in {runner_image}: "
                               f"exit {status}: {tail or 'no output'}")
        container.commit(repository=SINK_REPOSITORY, tag=key, conf={
            "Labels": {SINK_IMAGE_LABEL: key, SINK_BASE_LABEL: runner_image}})
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        raise SandboxError(f"could not build the network sink's image: {exc}") from exc
    finally:
        try:
            container.remove(force=True)
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            log.warning("could not remove the network sink's build container: %s", exc)


def _remove_older(client: docker.DockerClient, runner_image: str, key: str) -> None:
    """Remove the sink images of earlier builds of ``runner_image`` or earlier sink code (one
    in use stays)."""
    try:
        images = client.images.list(filters={"label": f"{SINK_BASE_LABEL}={runner_image}"})
    except (docker.errors.DockerException, requests.exceptions.RequestException):
        return
    for image in images:
        if image.labels.get(SINK_IMAGE_LABEL) == key:
            continue
        try:
            client.images.remove(image.id, force=False)
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            log.info("kept an older network sink image %s: %s", image.short_id, exc)


def _sink_options(labels: Mapping[str, str]) -> dict[str, Any]:
    return {
        # -E -s -S: no environment, user site or site packages; the script's folder (which
        # holds dnslib) is the only place imports come from besides the standard library.
        "command": ["python3", "-E", "-s", "-S", f"{SINK_DIR}/sink_server.py"],
        "name": f"forgebot-sink-{uuid.uuid4().hex[:16]}",
        "labels": {**labels, SINK_LABEL: "1"},
        "network_mode": "none",
        "dns": ["127.0.0.1"],  # the sink's own server (it also writes resolv.conf itself)
        "user": "0:0",
        "cap_drop": ["ALL"],
        "cap_add": ["NET_BIND_SERVICE"],
        "security_opt": ["no-new-privileges"],
        "mem_limit": "128m",
        "memswap_limit": "128m",
        "pids_limit": 64,
        "nano_cpus": 500_000_000,
    }


def _sink_tree() -> bytes:
    """A tar of the sink's server and of dnslib's package, rooted at ``SINK_DIR``'s name."""
    buffer = io.BytesIO()
    root = Path(SINK_DIR).name
    package = Path(dnslib.__file__).parent
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for path, name in _sink_files(package):
            tar.add(path, arcname=f"{root}/{name}", recursive=False)
    return buffer.getvalue()


def _sink_files(package: Path) -> Iterator[tuple[Path, str]]:
    yield Path(__file__).with_name("sink_server.py"), "sink_server.py"
    for source in sorted(package.glob("*.py")):
        yield source, f"dnslib/{source.name}"
