"""The Docker side of a setup phase: the internal egress network, the repository's package
cache volume, and setup snapshots kept for later jobs.

- **The egress network** is a Docker bridge network created ``internal`` (no route out) with
  inter-container traffic off, so a setup container on it reaches one address: the bridge's
  gateway on the host, where the egress proxy listens. It is created on first use and
  checked on every use: a network of that name that is not internal is refused.
- **The package cache** is a named volume per repository (``forgebot-cache-<scope>``),
  mounted at /cache in setup containers only, where pip and npm keep what they downloaded:
  a changed lockfile downloads only what changed. It never reaches a test or agent session.
- **Kept snapshots** are setup images labelled with the setup's cache key and the id of
  the runner image they grew from; a later job with the same key starts from them.
  ``reap_setup_cache`` removes those past an age and keeps a few per repository.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import docker
import docker.errors
import requests.exceptions

from bot.errors import SandboxError
from bot.sandbox.base import CachedSnapshot, SetupCache

log = logging.getLogger(__name__)

CA_PATH = "/sandbox/ca/bundle.pem"
CACHE_DIR = "/cache"
CACHE_LABEL = "forgebot.setup-cache"  # a kept snapshot or a package cache volume
KEY_LABEL = "forgebot.setup-key"
SCOPE_LABEL = "forgebot.setup-scope"
EGRESS_LABEL = "forgebot.egress"

# Every tool's own name for "trust these CAs".
CA_ENVIRONMENT = {
    name: CA_PATH
    for name in ("SSL_CERT_FILE", "PIP_CERT", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE",
                 "NODE_EXTRA_CA_CERTS", "npm_config_cafile", "GIT_SSL_CAINFO")
}
CACHE_ENVIRONMENT = {
    "PIP_CACHE_DIR": f"{CACHE_DIR}/pip",
    "npm_config_cache": f"{CACHE_DIR}/npm",
    "npm_config_prefer_offline": "true",  # a cached package is not asked for again
    "YARN_CACHE_FOLDER": f"{CACHE_DIR}/yarn",
}


def proxy_environment(url: str) -> dict[str, str]:
    """The variables that send pip, npm, go and curl through the proxy at ``url``."""
    return {
        "HTTP_PROXY": url, "HTTPS_PROXY": url, "http_proxy": url, "https_proxy": url,
        "NO_PROXY": "", "no_proxy": "",
        "npm_config_proxy": url, "npm_config_https_proxy": url,
    }


def ensure_egress_network(client: docker.DockerClient, name: str) -> tuple[str, str]:
    """The internal network ``name`` (created when missing) and its gateway address.

    Raises ``SandboxError`` (not retryable) when a network of that name exists but is not
    internal: a setup on it could reach the internet around the proxy.
    """
    with _engine(f"create the egress network {name}"):
        try:
            network = client.networks.get(name)
        except docker.errors.NotFound:
            try:
                network = client.networks.create(
                    name, driver="bridge", internal=True, labels={EGRESS_LABEL: "1"},
                    options={"com.docker.network.bridge.enable_icc": "false"},
                )
            except docker.errors.APIError:
                network = client.networks.get(name)  # another worker made it first
        network.reload()
    attrs: dict[str, Any] = network.attrs or {}
    if attrs.get("Internal") is not True:
        raise SandboxError(
            f"the Docker network {name!r} is not internal: a setup on it could bypass the"
            " egress proxy. Remove it (the bot creates it), or set sandbox.docker.egress_network"
            " to another name", retryable=False,
        )
    configs = (attrs.get("IPAM") or {}).get("Config") or []
    gateway = next((c.get("Gateway") for c in configs if c.get("Gateway")), None)
    if not isinstance(gateway, str):
        raise SandboxError(f"the egress network {name!r} has no gateway address", retryable=False)
    return name, gateway.split("/", 1)[0]


def ensure_cache_volume(client: docker.DockerClient, scope: str) -> str:
    """The name of the repository's package cache volume, created when missing."""
    name = f"forgebot-cache-{scope}"
    with _engine(f"create the package cache {name}"):
        try:
            client.volumes.get(name)
        except docker.errors.NotFound:
            client.volumes.create(name=name, driver="local",
                                  labels={CACHE_LABEL: "1", SCOPE_LABEL: scope})
    return name


def snapshot_key(cache: SetupCache, image_id: str) -> str:
    """The label value of a kept snapshot: the setup's key bound to one build of its image."""
    return hashlib.sha256(f"{cache.key}\n{image_id}".encode()).hexdigest()[:40]


def cache_labels(cache: SetupCache, image_id: str) -> dict[str, str]:
    return {CACHE_LABEL: "1", KEY_LABEL: snapshot_key(cache, image_id), SCOPE_LABEL: cache.scope}


def find_cached_snapshot(
    client: docker.DockerClient, cache: SetupCache, image_id: str
) -> CachedSnapshot | None:
    key = snapshot_key(cache, image_id)
    with _engine("look up kept setup snapshots"):
        images = client.images.list(filters={"label": [f"{KEY_LABEL}={key}"]})
    found: list[tuple[float, str]] = []
    for image in images:
        created = parse_timestamp(image.attrs.get("Created"))
        if created is not None:
            found.append((created, image.id))
    if not found:
        return None
    created, image_id = max(found)
    return CachedSnapshot(image_id, created)


def reap_setup_cache(client: docker.DockerClient, max_age_s: float, keep_per_repo: int) -> int:
    """Remove kept snapshots older than ``max_age_s`` or beyond the ``keep_per_repo`` newest
    of their repository, and package caches older than ``max_age_s``. A snapshot a running
    session still uses stays until the next call. Returns how many were removed."""
    cutoff = time.time() - max_age_s
    removed = 0
    with _engine("list kept setup snapshots"):
        images = client.images.list(filters={"label": [f"{CACHE_LABEL}=1"]})
    by_scope: dict[str, list[tuple[float, str]]] = {}
    for image in images:
        created = parse_timestamp(image.attrs.get("Created")) or 0.0
        scope = (image.labels or {}).get(SCOPE_LABEL, "")
        by_scope.setdefault(scope, []).append((created, image.id))
    for entries in by_scope.values():
        entries.sort(reverse=True)
        for index, (created, image_id) in enumerate(entries):
            if created < cutoff or index >= keep_per_repo:
                removed += _remove(lambda i=image_id: client.images.remove(i, force=False))
    with _engine("list package caches"):
        volumes = client.volumes.list(filters={"label": f"{CACHE_LABEL}=1"})
    for volume in volumes:
        made = parse_timestamp(volume.attrs.get("CreatedAt"))
        if made is not None and made < cutoff:
            removed += _remove(lambda v=volume: v.remove(force=False))
    return removed


def _remove(action: Any) -> int:
    try:
        action()
    except docker.errors.NotFound:
        return 0
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        log.info("kept setup not removed yet (in use?): %s", exc)
        return 0
    return 1


def parse_timestamp(value: object) -> float | None:
    """Seconds since the epoch of Docker's RFC 3339 time (fractions and zone ignored: UTC)."""
    if not isinstance(value, str) or len(value) < 19:
        return None
    try:
        moment = datetime.strptime(value[:19], "%Y-%m-%dT%H:%M:%S")
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC).timestamp()


@contextlib.contextmanager
def _engine(action: str) -> Iterator[None]:
    """Re-raise docker and requests errors as SandboxError (retryable: the engine failed)."""
    try:
        yield
    except SandboxError:
        raise
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        raise SandboxError(f"{action}: {exc}", retryable=True) from exc
