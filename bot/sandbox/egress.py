"""The setup phase's only way out: Debian's squid, run by the bot on the trusted side, that
lets through the policy's hosts and refuses everything else.

A setup container joins an *internal* Docker network (no route out; containers on it cannot
reach each other) whose one reachable address is the bridge's own, on the host. A squid
listens there, started for one setup and stopped after it, with a configuration that allows
``CONNECT`` to port 443 and plain requests to port 80 of the allow-listed hosts only. Its
access log, written in a fixed format, becomes the job's record of every request: host,
bytes and verdict. Nothing here decides what is allowed: the policy does (``setup_egress``),
and squid enforces it; a package manager that ignores the proxy finds no route at all.

The pure parts (host checks, the squid configuration, reading the access log) are separate
from the process handling, and tested with tables.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from bot.errors import SandboxError
from bot.hostnames import REGISTRIES, REGISTRY_HOSTS, check_host

log = logging.getLogger(__name__)

# The access log's line format (squid's logformat codes): time, client, method, what was
# asked for (host:port for CONNECT, the URL otherwise), status, bytes sent, squid's verdict.
LOG_FORMAT = "%ts %>a %rm %ru %>Hs %<st %Ss"
MAX_RECORDS = 2000  # a setup that makes more requests is recorded in part (and says so)
START_TIMEOUT_S = 15.0


def allowed_hosts(policy_hosts: Iterable[str], toolchain: str, mirrors: Iterable[str] = ()) -> (
        tuple[str, ...]):
    """The hosts a setup may reach: the policy's list with ``registries`` expanded to the
    toolchain's public registries, plus the hosts of the operator's mirrors."""
    hosts: list[str] = []
    for item in policy_hosts:
        hosts += REGISTRY_HOSTS.get(toolchain, ()) if item == REGISTRIES else [item]
    hosts += mirrors
    return tuple(dict.fromkeys(check_host(host) for host in hosts))


def squid_config(hosts: Sequence[str], listen: str, port: int, folder: Path) -> str:
    """A squid configuration that forwards to ``hosts`` only, listening on ``listen:port``,
    with its access log in ``folder`` and no disk cache."""
    lines = [
        f"http_port {listen}:{port}",
        f"pid_filename {folder / 'squid.pid'}",
        f"cache_log {folder / 'cache.log'}",
        f"logformat forgebot {LOG_FORMAT}",
        f"access_log stdio:{folder / 'access.log'} forgebot",
        "logfile_rotate 0",
        f"coredump_dir {folder}",
        "cache deny all",
        "via off",
        "forwarded_for delete",
        "httpd_suppress_version_string on",
        "shutdown_lifetime 0 seconds",
        "acl ssl_port port 443",
        "acl http_port port 80",
        "acl CONNECT method CONNECT",
        "http_access deny CONNECT !ssl_port",
        "http_access deny !CONNECT !http_port",
    ]
    if hosts:
        lines.append("acl allowed dstdomain " + " ".join(hosts))
        lines.append("http_access allow allowed")
    lines.append("http_access deny all")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class EgressRecord:
    """One request the setup made through the proxy."""

    host: str
    method: str
    status: int
    bytes: int
    allowed: bool

    def as_event(self) -> dict[str, object]:
        return {"host": self.host, "method": self.method, "status": self.status,
                "bytes": self.bytes, "verdict": "allowed" if self.allowed else "refused"}


def parse_access_log(text: str) -> list[EgressRecord]:
    """The records of an access log in ``LOG_FORMAT``; lines that do not fit are skipped.
    Only the host of a URL is kept: a path or query may carry what no event should."""
    records: list[EgressRecord] = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) != 7 or not parts[4].isdigit() or not parts[5].isdigit():
            continue
        _, _, method, target, status, size, verdict = parts
        # "error:transaction-end-before-headers": a connection that asked for nothing.
        host = None if target.startswith("error:") else _host_of(target)
        if host is None:
            continue
        allowed = "DENIED" not in verdict and status != "403"
        records.append(EgressRecord(host, method[:16], int(status), int(size), allowed))
        if len(records) >= MAX_RECORDS:
            break
    return records


def _host_of(target: str) -> str | None:
    rest = target.split("://", 1)[1] if "://" in target else target
    host = rest.split("/", 1)[0].rsplit("@", 1)[-1]
    host = host[1:].split("]", 1)[0] if host.startswith("[") else host.rsplit(":", 1)[0]
    host = host.lower()
    return host if host and len(host) <= 253 and re.match(r"^[a-z0-9.:-]+$", host) else None


def refused_hosts(records: Iterable[EgressRecord]) -> list[str]:
    """The hosts the proxy refused, each once, in the order first seen."""
    return list(dict.fromkeys(r.host for r in records if not r.allowed))


def describe(records: Sequence[EgressRecord]) -> str:
    """One line for the status comment: how many requests, to which hosts, what was refused."""
    if not records:
        return "no requests through the egress proxy"
    allowed = [r for r in records if r.allowed]
    size = sum(r.bytes for r in allowed)
    hosts = ", ".join(dict.fromkeys(r.host for r in allowed)) or "none"
    line = f"{len(allowed)} requests allowed ({_size(size)}; {hosts})"
    refused = refused_hosts(records)
    if refused:
        line += f"; refused: {', '.join(refused)}"
    return line


def _size(count: int) -> str:
    for unit in ("B", "KB", "MB"):
        if count < 1024:
            return f"{count} {unit}"
        count //= 1024
    return f"{count} GB"


# the squid process ------------------------------------------------------------------------


class SquidProxy:
    """One squid for one setup: ``start`` returns its URL, ``stop`` its access records.

    ``binary`` is squid's path; ``listen`` the address it binds (the egress network's
    gateway). Raises ``SandboxError`` when squid is missing or does not start.
    """

    def __init__(self, binary: str, listen: str, hosts: Sequence[str]) -> None:
        self._binary = binary
        self._listen = listen
        self._hosts = tuple(hosts)
        self._folder: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> str:
        found = shutil.which(self._binary)
        if found is None:
            raise SandboxError(
                f"the egress proxy needs squid ({self._binary!r} not found): install Debian's"
                " squid package, or set sandbox.docker.egress_proxy to its path",
                retryable=False,
            )
        self._folder = Path(tempfile.mkdtemp(prefix="forgebot-egress-"))
        port = free_port(self._listen)
        config = self._folder / "squid.conf"
        config.write_text(squid_config(self._hosts, self._listen, port, self._folder))
        if os.geteuid() == 0:
            # squid started as root works as its own unprivileged user ("proxy" on Debian),
            # which must be able to write its logs.
            self._folder.chmod(0o777)
        # A fixed argv, no shell; squid's own errors go to its cache.log, read on failure.
        self._process = subprocess.Popen(
            [found, "-N", "-f", str(config)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        self._wait_listening(port)
        return f"http://{self._listen}:{port}"

    def _wait_listening(self, port: int) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                why = self._cache_log()
                self.stop()
                raise SandboxError(f"the egress proxy (squid) did not start: {why}")
            with contextlib.suppress(OSError), socket.create_connection(
                    (self._listen, port), timeout=0.5):
                return
            time.sleep(0.05)
        self.stop()
        raise SandboxError(f"the egress proxy (squid) was not listening after {START_TIMEOUT_S} s")

    def stop(self) -> list[EgressRecord]:
        """Stop squid and return what it recorded. Safe to call twice."""
        text = stop_and_read(self._process, self._folder, "access.log")
        self._process, self._folder = None, None
        return parse_access_log(text)

    def _cache_log(self) -> str:
        try:
            assert self._folder is not None
            lines = (self._folder / "cache.log").read_text(errors="replace").splitlines()
        except OSError:
            return "no log"
        errors = [line for line in lines if "FATAL" in line or "ERROR" in line]
        return (errors or lines or ["no log"])[-1][:300]


def stop_and_read(process: subprocess.Popen[bytes] | None, folder: Path | None,
                  log_name: str) -> str:
    """Stop ``process`` (terminate, then kill after 10 s), read ``folder/log_name`` and
    remove ``folder``: what a helper process recorded ("" when nothing)."""
    if process is not None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    if folder is None:
        return ""
    try:
        text = (folder / log_name).read_text(errors="replace")
    except OSError:
        text = ""
    shutil.rmtree(folder, ignore_errors=True)
    return text


def free_port(address: str) -> int:
    """A free TCP port on ``address``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((address, 0))
        return int(probe.getsockname()[1])
