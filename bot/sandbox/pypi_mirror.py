"""A caching mirror of PyPI for the setup phase: proxpi, run by the bot on the trusted side.

pip's own HTTP cache keeps only what a registry marks cacheable, and a network that strips
those headers (or a package cache volume that is new) makes every setup download everything
again. The mirror keeps every file it fetched in one folder on the host
(``<data_dir>/cache/pypi``, bounded by ``sandbox.docker.pypi_mirror_mb``, least used files
evicted first), shared by the setups of every repository: it only ever holds what PyPI (or
the operator's index) served to the bot itself, over verified TLS, so no setup can plant
anything in it.

It is started for one setup and stopped after it, like the egress proxy, and listens on the
egress network's gateway: the setup's pip asks it for the index (``PIP_INDEX_URL``, plain
HTTP on the internal network) and goes around squid for it (``NO_PROXY``). A file the mirror
has not finished fetching within ``DOWNLOAD_WAIT_S`` is handed out as its upstream URL,
which the setup fetches through squid as before. Each request it answered becomes an
:class:`~bot.sandbox.egress.EgressRecord` of the setup (host ``<upstream> (mirror)``).

A mirror that cannot start is no reason to fail a setup: the setup then goes through squid
alone, and the job's events say so.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

from bot.errors import SandboxError
from bot.sandbox.egress import EgressRecord, free_port, stop_and_read

log = logging.getLogger(__name__)

PYPI_INDEX = "https://pypi.org/simple/"
MIRROR_APP = "bot.sandbox.pypi_mirror_app:app"
START_TIMEOUT_S = 20.0
DOWNLOAD_WAIT_S = 2  # proxpi's wait for a file before it hands out the upstream URL
INDEX_TTL_S = 300  # how long a project's file list is believed
MAX_RECORDS = 2000


class PypiMirror:
    """One proxpi for one setup: ``start`` returns the index URL to give pip, ``stop`` the
    requests it answered. Raises ``SandboxError`` when it does not start."""

    def __init__(self, listen: str, cache_dir: Path, *, upstream: str = PYPI_INDEX,
                 cache_mb: int = 4096, ca_bundle: bytes | None = None) -> None:
        self._listen = listen
        self._cache_dir = cache_dir
        self._upstream = upstream
        self._cache_mb = cache_mb
        self._ca_bundle = ca_bundle
        self._folder: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def upstream_host(self) -> str:
        return (urlsplit(self._upstream).hostname or "").lower()

    def start(self) -> str:
        try:
            port = free_port(self._listen)
            self._cache_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SandboxError(f"the PyPI mirror cannot start on {self._listen}: {exc}") from exc
        self._folder = Path(tempfile.mkdtemp(prefix="forgebot-mirror-"))
        environment = {
            **os.environ,
            "PROXPI_INDEX_URL": self._upstream,
            "PROXPI_CACHE_DIR": str(self._cache_dir),
            "PROXPI_CACHE_SIZE": str(self._cache_mb * 1024 * 1024),
            "PROXPI_DOWNLOAD_TIMEOUT": str(DOWNLOAD_WAIT_S),
            "PROXPI_INDEX_TTL": str(INDEX_TTL_S),
            "PROXPI_LOGGING_LEVEL": "WARNING",
            "FORGEBOT_MIRROR_LOG": str(self._folder / "requests.log"),
        }
        if self._ca_bundle is not None:  # the operator's CA bundle, for the upstream's TLS
            bundle = self._folder / "ca.pem"
            bundle.write_bytes(self._ca_bundle)
            environment["REQUESTS_CA_BUNDLE"] = str(bundle)
        # A fixed argv, no shell; its errors go to a file read on failure.
        with open(self._folder / "server.log", "wb") as errors:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "waitress", f"--listen={self._listen}:{port}",
                 "--threads=8", MIRROR_APP],
                stdin=subprocess.DEVNULL, stdout=errors, stderr=errors, env=environment,
            )
        base = f"http://{self._listen}:{port}"
        self._wait_ready(base)
        return f"{base}/index/"

    def _wait_ready(self, base: str) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                why = self._server_log()
                self.stop()
                raise SandboxError(f"the PyPI mirror (proxpi) did not start: {why}")
            with contextlib.suppress(OSError), urllib.request.urlopen(  # noqa: S310 - ours
                    f"{base}/health", timeout=1) as answer:
                if answer.status == 200:
                    return
            time.sleep(0.1)
        self.stop()
        raise SandboxError(f"the PyPI mirror was not answering after {START_TIMEOUT_S:.0f} s")

    def stop(self) -> list[EgressRecord]:
        """Stop the mirror; the requests it answered. Safe to call twice."""
        text = stop_and_read(self._process, self._folder, "requests.log")
        self._process, self._folder = None, None
        return parse_requests(text, f"{self.upstream_host} (mirror)")

    def _server_log(self) -> str:
        try:
            assert self._folder is not None
            lines = (self._folder / "server.log").read_text(errors="replace").splitlines()
        except OSError:
            return "no log"
        return (lines or ["no log"])[-1][:300]


def parse_requests(text: str, host: str) -> list[EgressRecord]:
    """The mirror's request log (``METHOD STATUS BYTES`` lines) as records of ``host``."""
    records: list[EgressRecord] = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) != 3 or not parts[1].isdigit() or not parts[2].isdigit():
            continue
        status = int(parts[1])
        # The mirror refuses nothing: a 404 is a missing project, not the policy at work.
        records.append(EgressRecord(host, parts[0][:16], status, int(parts[2]), True))
        if len(records) >= MAX_RECORDS:
            break
    return records


def mirror_environment(index_url: str, listen: str) -> dict[str, str]:
    """The setup's variables that send pip to the mirror, around the proxy."""
    return {"PIP_INDEX_URL": index_url, "PIP_TRUSTED_HOST": listen,
            "NO_PROXY": listen, "no_proxy": listen}
