"""Docker options an operator may set for sandboxes: an allow-list, never raw engine options.

Everything here is a typed field with bounds; nothing is passed through to the engine as
given. The hardening itself (no network, read-only root, uid 1000, no capabilities,
no-new-privileges, the default seccomp profile, limits) is not configurable: an option can
only add to it (a stricter runtime such as gVisor's ``runsc``, a custom seccomp profile) or
size what is already bounded.

This module does not import ``bot.config``; ``Settings`` holds a ``DockerOptions``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from bot.errors import ConfigError

# Names the engine knows a runtime or a network by: no spaces, no option syntax.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")

# Environment variables the setup phase may be given, so that dependencies come through the
# operator's mirror. Nothing else of the bot's configuration enters a sandbox. The proxy
# variables are the bot's own: they point at the egress proxy.
SETUP_ENV_KEYS = frozenset(
    {
        "GOPROXY",
        "GOSUMDB",
        "GONOSUMDB",
        "GOPRIVATE",
        "GONOPROXY",
        "npm_config_registry",
        "PIP_INDEX_URL",
        "PIP_EXTRA_INDEX_URL",
    }
)
_CREDENTIAL_IN_URL = re.compile(r"://[^/\s@]*@")
MAX_SECCOMP_BYTES = 1024 * 1024


class DockerOptions(BaseModel):
    """Operator-tunable Docker settings of the sandbox (``sandbox.docker`` in the settings)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # An OCI runtime registered with the engine (`dockerd --add-runtime`), e.g. "runsc" for
    # gVisor. None: the engine's default (runc).
    runtime: str | None = None
    # Relative CPU weight against other containers when the host is busy (Docker's default
    # is 1024). The hard CPU limit stays Limits.cpus.
    cpu_shares: int | None = Field(default=None, ge=2, le=262_144)
    # Size of the /tmp tmpfs (HOME, caches such as Go's build cache live there).
    tmp_mb: int = Field(default=256, ge=8, le=8192)
    # Open files per process (soft = hard). None: the engine's default.
    nofile: int | None = Field(default=None, ge=64, le=1_048_576)
    # A seccomp profile (JSON) used instead of Docker's default one. Never "unconfined".
    seccomp_profile: Path | None = None
    # The internal Docker network a setup phase with egress joins (created by the bot when
    # missing; it must be internal: its only way out is the egress proxy on its gateway).
    egress_network: str = "forgebot-egress"
    # The squid binary the bot runs as the egress proxy, one per setup (Debian's squid).
    egress_proxy: str = "squid"
    # Extra environment of the setup phase only: mirrors and proxies (keys in SETUP_ENV_KEYS).
    setup_env: dict[str, str] = Field(default_factory=dict)
    # A caching PyPI mirror (proxpi) beside the egress proxy for setups that may reach PyPI
    # (or the index of setup_env's PIP_INDEX_URL): files are kept under the data dir's
    # cache/pypi and shared by every repository's setups.
    pypi_mirror: bool = True
    # How much the PyPI mirror keeps, in MB; the least used files go first.
    pypi_mirror_mb: int = Field(default=4096, ge=64, le=1_048_576)

    @field_validator("runtime")
    @classmethod
    def _check_runtime(cls, value: str | None) -> str | None:
        if value is not None and not _NAME.match(value):
            raise ValueError(f"not a runtime name: {value!r}")
        return value

    @field_validator("egress_network")
    @classmethod
    def _check_network(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(f"not a network name: {value!r}")
        if value in ("host", "bridge", "none", "default"):
            # Docker's own networks route out (or share the host's namespace): the setup
            # phase would bypass the proxy.
            raise ValueError(f"{value!r} is one of Docker's own networks; name a network the"
                             " bot may create as internal")
        return value

    @field_validator("egress_proxy")
    @classmethod
    def _check_proxy(cls, value: str) -> str:
        if not re.match(r"^[A-Za-z0-9/._-]{1,255}$", value):
            raise ValueError(f"not a program name or path: {value!r}")
        return value

    @field_validator("setup_env")
    @classmethod
    def _check_setup_env(cls, value: dict[str, str]) -> dict[str, str]:
        for key, text in value.items():
            if key not in SETUP_ENV_KEYS:
                allowed = ", ".join(sorted(SETUP_ENV_KEYS))
                raise ValueError(f"{key} is not allowed (allowed: {allowed})")
            if len(text) > 2000 or any(c in text for c in "\x00\n\r"):
                raise ValueError(f"{key}: not a single line of at most 2000 characters")
            if _CREDENTIAL_IN_URL.search(text):
                # No credential ever enters a sandbox, not even a proxy password.
                raise ValueError(f"{key}: a URL with a user or password is not allowed")
        return value

    @field_validator("seccomp_profile")
    @classmethod
    def _check_seccomp_name(cls, value: Path | None) -> Path | None:
        if value is not None and value.name in ("unconfined", ""):
            raise ValueError("seccomp must stay on: give the path of a profile file")
        return value

    def seccomp_json(self) -> str | None:
        """The custom seccomp profile as compact JSON, or None for Docker's default profile.

        Raises ``ConfigError`` when the file cannot be read, is not a JSON object with a
        ``defaultAction``, or allows every system call by default.
        """
        if self.seccomp_profile is None:
            return None
        path = self.seccomp_profile
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise ConfigError(f"sandbox.docker.seccomp_profile: cannot read {path}: {exc}") from exc
        if len(raw) > MAX_SECCOMP_BYTES:
            raise ConfigError(f"sandbox.docker.seccomp_profile: {path} is larger than 1 MB")
        try:
            profile: Any = json.loads(raw)
        except ValueError as exc:
            raise ConfigError(f"sandbox.docker.seccomp_profile: {path}: {exc}") from exc
        if not isinstance(profile, dict) or not isinstance(profile.get("defaultAction"), str):
            raise ConfigError(
                f"sandbox.docker.seccomp_profile: {path} is not a seccomp profile"
                " (a JSON object with defaultAction)"
            )
        if profile["defaultAction"] == "SCMP_ACT_ALLOW":
            raise ConfigError(
                f"sandbox.docker.seccomp_profile: {path} allows every system call by default"
            )
        return json.dumps(profile, separators=(",", ":"))

    def describe(self) -> list[str]:
        """What these options add to the fixed hardening, one short phrase each (for doctor)."""
        parts = [f"runtime {self.runtime or 'default (runc)'}"]
        parts.append(
            f"seccomp {self.seccomp_profile}" if self.seccomp_profile else "seccomp default"
        )
        parts.append(f"tmpfs /tmp {self.tmp_mb} MB")
        if self.cpu_shares is not None:
            parts.append(f"cpu shares {self.cpu_shares}")
        if self.nofile is not None:
            parts.append(f"nofile {self.nofile}")
        parts.append(f"setup egress only through {self.egress_proxy} on the internal network"
                     f" {self.egress_network!r}, when the policy allows it")
        return parts


MAX_CA_BUNDLE_BYTES = 4 * 1024 * 1024
_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----")


def load_ca_bundle(path: Path) -> bytes:
    """The operator's CA bundle (``sandbox.ca_bundle``), for the setup phase to trust: PEM
    certificates and nothing else. Raises ``ConfigError`` when it cannot be read, holds no
    certificate, or holds anything but certificates (a private key above all: it must never
    reach a sandbox)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"sandbox.ca_bundle: cannot read {path}: {exc.strerror}") from exc
    if len(raw) > MAX_CA_BUNDLE_BYTES:
        raise ConfigError(f"sandbox.ca_bundle: {path} is larger than 4 MB")
    kinds = set(_PEM_BLOCK.findall(raw))
    if not kinds:
        raise ConfigError(f"sandbox.ca_bundle: {path} holds no PEM certificate")
    if kinds - {b"CERTIFICATE", b"TRUSTED CERTIFICATE"}:
        other = ", ".join(sorted(k.decode() for k in kinds - {b"CERTIFICATE"}))
        raise ConfigError(
            f"sandbox.ca_bundle: {path} holds more than certificates ({other}); give a file of"
            " CA certificates only"
        )
    return raw
