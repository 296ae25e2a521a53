"""GitHub App authentication: a short JWT signed with the App's key, exchanged for
installation tokens that are cached per installation and refreshed before they expire.

github3.py's own ``login_as_app_installation`` is not used: it signs with ``iat = now``
(a few seconds of clock drift and GitHub answers 401) and never refreshes, so every call
after the hour raises ``AppInstallationTokenExpired``. Here:

- the JWT's ``iat`` is backdated by :data:`JWT_BACKDATE_S` and ``exp - iat`` is GitHub's
  maximum of ten minutes, so ``exp`` is at most ten minutes ahead of our clock;
- a token is handed out only while more than ``refresh_margin_s`` of its life is left, so
  a request never carries a token that dies on the way; a job that runs past the hour
  gets a new one at its next request;
- the installation of a repository comes from the delivery (``Repo.installation_id``,
  passed to :meth:`GitHubApp.remember`), else from ``GET /repos/{owner}/{repo}/installation``,
  cached per repository.

Every request goes through the shared resilient session; nothing here logs a token or a key.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import jwt
import requests
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from bot.errors import ForgeError
from bot.forges.github.auth import BearerAuth
from bot.forges.http import check

JWT_BACKDATE_S = 60
"""GitHub's advice: issue the JWT a minute in the past against clock drift."""

JWT_MAX_LIFETIME_S = 600
"""GitHub refuses a JWT whose ``exp`` is more than ten minutes after ``iat``."""

REFRESH_MARGIN_S = 300.0
"""Refresh an installation token this long before GitHub says it expires."""

Clock = Callable[[], float]


def load_private_key(pem: bytes) -> RSAPrivateKey:
    """The App's RSA key from its PEM file's bytes (GitHub hands out unencrypted PKCS#1).

    Loaded once: parsing checks the key, which costs far more than signing with it.
    ``ValueError`` for anything else, with a message that never quotes the bytes.
    """
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise ValueError("not an unencrypted PEM private key") from None
    if not isinstance(key, RSAPrivateKey):
        raise ValueError("not an RSA private key (GitHub Apps sign with RS256)")
    return key


def make_jwt(app_id: int | str, private_key: RSAPrivateKey | str | bytes, now: float) -> str:
    """The App's JWT (RS256): ``iss`` the App id, ``iat`` backdated, ``exp - iat`` ten minutes.

    ``private_key`` is the App's key (or its PEM). ``exp`` lands
    ``JWT_MAX_LIFETIME_S - JWT_BACKDATE_S`` seconds after ``now``, so it stays within ten
    minutes of our clock too.
    """
    issued = int(now) - JWT_BACKDATE_S
    claims = {"iat": issued, "exp": issued + JWT_MAX_LIFETIME_S, "iss": str(app_id)}
    try:
        return jwt.encode(claims, private_key, algorithm="RS256")
    except (ValueError, TypeError, jwt.PyJWTError) as exc:
        # The message of a key error may quote the key; name only what went wrong.
        raise ForgeError(f"cannot sign the GitHub App JWT ({type(exc).__name__})") from None


@dataclass(frozen=True)
class InstallationToken:
    """One installation access token and when it expires (epoch seconds)."""

    token: str
    expires_at: float

    def usable(self, now: float, margin_s: float) -> bool:
        """True while more than ``margin_s`` of the token's life is left."""
        return self.expires_at - now > margin_s


class GitHubApp:
    """Tokens of one GitHub App, for every installation it has; safe to share between threads.

    ``api_url`` is the REST root (``https://api.github.com`` or ``https://HOST/api/v3``);
    ``clock`` returns epoch seconds (tests pass a fake one).
    """

    def __init__(
        self,
        app_id: int,
        private_key: RSAPrivateKey,
        session: requests.Session,
        api_url: str,
        *,
        clock: Clock = time.time,
        refresh_margin_s: float = REFRESH_MARGIN_S,
    ) -> None:
        self.app_id = app_id
        self._key = private_key
        self._session = session
        self._api = api_url.rstrip("/")
        self._clock = clock
        self._margin = refresh_margin_s
        self._lock = threading.Lock()
        self._tokens: dict[int, InstallationToken] = {}
        self._installations: dict[str, int] = {}

    def jwt(self) -> str:
        """A fresh App JWT (cheap: one RSA signature, no request)."""
        return make_jwt(self.app_id, self._key, self._clock())

    def remember(self, repo: str, installation_id: int) -> None:
        """Record the installation a delivery for ``repo`` came from (no request)."""
        with self._lock:
            self._installations[repo.lower()] = installation_id

    def installation_id(self, repo: str) -> int:
        """The installation of ``repo``: remembered, or asked once and then cached."""
        with self._lock:
            # GitHub names are case-insensitive; URLs and deliveries may differ in case.
            known = self._installations.get(repo.lower())
        if known is not None:
            return known
        response = self._session.get(
            f"{self._api}/repos/{repo}/installation", auth=BearerAuth(self.jwt())
        )
        if response.status_code == 404:
            raise ForgeError(
                f"the GitHub App {self.app_id} is not installed on {repo} "
                "(install it on the repository, or check forges.github.app_id)"
            )
        body = check(response, f"find the GitHub App installation of {repo}").json()
        installation = body.get("id") if isinstance(body, dict) else None
        if isinstance(installation, bool) or not isinstance(installation, int):
            raise ForgeError(f"GitHub answered the installation of {repo} without an id")
        self.remember(repo, installation)
        return installation

    def token(self, installation_id: int) -> str:
        """An installation token with more than the refresh margin left: cached or new."""
        now = self._clock()
        with self._lock:
            cached = self._tokens.get(installation_id)
        if cached is not None and cached.usable(now, self._margin):
            return cached.token
        # Fetched outside the lock: two threads may both fetch, which is harmless, while one
        # slow exchange would otherwise stall every other installation's requests.
        fresh = self._exchange(installation_id)
        with self._lock:
            self._tokens[installation_id] = fresh
        return fresh.token

    def token_for(self, repo: str) -> str:
        """A usable installation token for ``repo``."""
        return self.token(self.installation_id(repo))

    def forget(self, repo: str) -> None:
        """Drop what is cached for ``repo`` (after a 401: revoked token, App reinstalled)."""
        with self._lock:
            installation = self._installations.pop(repo.lower(), None)
            if installation is not None:
                self._tokens.pop(installation, None)

    def _exchange(self, installation_id: int) -> InstallationToken:
        response = self._session.post(
            f"{self._api}/app/installations/{installation_id}/access_tokens",
            auth=BearerAuth(self.jwt()),
        )
        what = f"get a token for GitHub App installation {installation_id}"
        body = check(response, what).json()
        token = body.get("token") if isinstance(body, dict) else None
        expires = body.get("expires_at") if isinstance(body, dict) else None
        if not isinstance(token, str) or not isinstance(expires, str):
            raise ForgeError(f"{what}: the answer has no token or expires_at")
        return InstallationToken(token, _epoch(expires, what))


def _epoch(timestamp: str, what: str) -> float:
    """``2016-07-11T22:14:10Z`` → epoch seconds."""
    try:
        when = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    except ValueError:
        raise ForgeError(f"{what}: expires_at {timestamp!r} is not a timestamp") from None
    if when.tzinfo is None:
        raise ForgeError(f"{what}: expires_at {timestamp!r} has no time zone")
    return when.timestamp()
