"""Host names as egress allow-lists take them (a leaf: policy and sandbox both read it)."""

from __future__ import annotations

import re

# The public registries of each toolchain: what "registries" in an allow-list stands for.
REGISTRY_HOSTS: dict[str, tuple[str, ...]] = {
    "python": ("pypi.org", "files.pythonhosted.org"),
    "node": ("registry.npmjs.org", "registry.yarnpkg.com"),
    "go": ("proxy.golang.org", "sum.golang.org"),
}
REGISTRIES = "registries"  # the policy word for "the registries of the detected toolchain"
_LABEL = r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
_HOST = re.compile(rf"^\.?(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*$")


def check_host(pattern: str) -> str:
    """A host name as the allow-list takes it: ``pypi.org`` (that host) or ``.example.com``
    (it and its subdomains), lower-case. Raises ``ValueError`` for anything else (a URL, a
    port, a wildcard, an address range)."""
    text = pattern.strip().lower()
    if not _HOST.match(text):
        raise ValueError(
            f"{pattern!r} is not a host name (give e.g. pypi.org, or .example.com for a domain"
            " and its subdomains; no scheme, port, path or wildcard)"
        )
    return text


def covers(allowed: str, host: str) -> bool:
    """Whether the allow-list item ``allowed`` lets ``host`` through (squid's dstdomain)."""
    if allowed.startswith("."):
        return host == allowed[1:] or host.endswith(allowed)
    return host == allowed
