"""Webhook authenticity, shared by every forge so the security-critical part exists once.

Constant time (``hmac.compare_digest``) and fail-closed: no configured secret, a missing
header or a malformed value all mean "not authentic". Nothing here logs: raw bodies,
signatures and secrets must never reach a log line.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping

_HEX_SHA256 = re.compile(r"[0-9a-fA-F]{64}")


def sign_sha256(secret: str, body: bytes) -> str:
    """The hex HMAC-SHA256 of ``body`` keyed with ``secret`` (no prefix)."""
    return hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def verify_hmac_sha256(
    secret: str | None, body: bytes, signature: str | None, prefix: str = "sha256="
) -> bool:
    """True only when ``signature`` is ``prefix`` + the hex HMAC-SHA256 of the raw ``body``.

    False when no secret is configured (``None`` or empty), when the signature is missing,
    lacks the prefix, or is not 64 hex digits. GitHub and ours use ``sha256=``; Gitea's
    ``X-Gitea-Signature`` has no prefix (pass ``prefix=""``).
    """
    if not secret or signature is None or not signature.startswith(prefix):
        return False
    given = signature[len(prefix) :]
    # The shape check also keeps compare_digest away from non-ASCII text, which it rejects.
    if not _HEX_SHA256.fullmatch(given):
        return False
    return hmac.compare_digest(given.lower(), sign_sha256(secret, body))


def verify_token(secret: str | None, given: str | None) -> bool:
    """For forges that send the secret itself (GitLab's ``X-Gitlab-Token``): True only when
    both are non-empty and equal, compared in constant time as UTF-8 bytes (compare_digest
    rejects non-ASCII ``str``). No secret configured means False: fail closed."""
    if not secret or not given:
        return False
    return hmac.compare_digest(given.encode("utf-8"), secret.encode("utf-8"))


def get_header(headers: Mapping[str, str], name: str) -> str | None:
    """The value of header ``name``, whatever the case of the stored keys; None if absent.

    Deliveries come back from the store as plain dicts, where ``X-Foo`` and ``x-foo``
    are different keys.
    """
    value = headers.get(name)
    if value is not None:
        return value
    wanted = name.lower()
    for key, candidate in headers.items():
        if key.lower() == wanted:
            return candidate
    return None
