"""The ``github`` forge: GitHub.com or GitHub Enterprise Server, through github3.py.

``webhook`` verifies and parses deliveries, ``client`` is the Forge API over github3.py and
the shared resilient session (``bot.forges.http``), and ``app`` turns a GitHub App's key
into installation tokens. Authentication is a personal (or fine-grained) token when
``forges.github.token`` is set, else the App of ``app_id`` + ``private_key_file``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import github3  # type: ignore[import-untyped]
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from bot.config import GitHubSettings
from bot.errors import ConfigError
from bot.events import Event
from bot.forges.github import webhook
from bot.forges.github.app import Clock, GitHubApp, load_private_key
from bot.forges.github.auth import RepoTokenAuth, TokenSource
from bot.forges.github.client import GitHubClient
from bot.forges.http import install

# The REST API version pinned on every request (GitHub's "X-GitHub-Api-Version").
API_VERSION = "2022-11-28"
# GitHub's documented reaction to a secondary rate limit that names no time: "wait for at
# least one minute before retrying".
SECONDARY_LIMIT_WAIT_S = 60.0

class GitHubForge(GitHubClient):
    """The Forge adapter of GitHub (registry name ``github``).

    ``bot_user`` is the fallback for ``settings.bot_user``: the login the bot comments as
    (an App comments as ``<slug>[bot]``; either form may be configured). ``clock`` (epoch
    seconds), ``sleep`` and ``http_options`` (the tuning keywords of
    :func:`bot.forges.http.install`: ``clock``, ``wall_clock``, ``jitter``, ``breakers``,
    ...) are for tests. Nothing here makes a request; ``ConfigError`` for incomplete
    settings or an unreadable App key.
    """

    name: str = webhook.FORGE

    def __init__(
        self,
        settings: GitHubSettings,
        bot_user: str,
        *,
        clock: Clock = time.time,
        sleep: Callable[[float], None] = time.sleep,
        http_options: Mapping[str, Any] | None = None,
    ) -> None:
        api_url = settings.base_url.rstrip("/")
        if not urlsplit(api_url).netloc:
            raise ConfigError(f"forges.github.base_url: not a URL: {settings.base_url!r}")
        session = _session(settings, api_url, sleep, {"wall_clock": clock, **(http_options or {})})
        self._app: GitHubApp | None = None
        tokens: TokenSource
        if settings.token:
            token = settings.token
            tokens = lambda repo: token  # noqa: E731 - one token for every repository
            session.auth = RepoTokenAuth(tokens)
        else:
            self._app = GitHubApp(_app_id(settings), _private_key(settings), session, api_url,
                                  clock=clock)
            tokens = self._app.token_for
            session.auth = RepoTokenAuth(tokens, on_unauthorized=self._app.forget)
        super().__init__(
            github3.GitHub(session=session),
            api_url=api_url,
            bot_user=settings.bot_user or bot_user,
            tokens=tokens,
            git_url_rewrite=settings.git_url_rewrite,
            max_attempts=settings.max_retries + 1,
            sleep=sleep,
        )
        self._secret = settings.webhook_secret

    def verify(self, headers: Mapping[str, str], body: bytes) -> bool:
        """Checks ``X-Hub-Signature-256``; False when no secret is configured."""
        return webhook.verify(self._secret, headers, body)

    def delivery_id(self, headers: Mapping[str, str]) -> str | None:
        """``X-GitHub-Delivery``."""
        return webhook.delivery_id(headers)

    def event_kind(self, headers: Mapping[str, str]) -> str:
        """``X-GitHub-Event``."""
        return webhook.event_kind(headers)

    def parse(self, headers: Mapping[str, str], body: bytes) -> Event | None:
        """See :func:`webhook.parse`. An App delivery's installation id is remembered for
        its repository, so this process needs no lookup to get that repository's token."""
        event = webhook.parse(headers, body)
        if event is not None and event.repo.installation_id is not None:
            self.use_installation(event.repo.full_name, event.repo.installation_id)
        return event

    def use_installation(self, repo: str, installation_id: int | None) -> None:
        """Record the App installation of ``repo`` (``Repo.installation_id`` of the job's
        event), sparing the ``GET /repos/{o}/{r}/installation`` lookup. A no-op with a
        personal token or without an id."""
        if self._app is not None and installation_id is not None:
            self._app.remember(repo, installation_id)


def _session(
    settings: GitHubSettings,
    api_url: str,
    sleep: Callable[[float], None],
    options: Mapping[str, Any],
) -> Any:
    """github3's own session (it needs its URL building and headers) with our adapter."""
    # github3 passes its own default timeout (4 s connect, 10 s read) with every request,
    # which would override the adapter's; make it the configured one.
    session = github3.session.GitHubSession(
        default_connect_timeout=settings.timeout_seconds,
        default_read_timeout=settings.timeout_seconds,
    )
    session.base_url = api_url
    # The REST API version github3.py's models were written for: a newer default drops
    # fields (has_downloads, in 2026-03-10) that github3 reads strictly.
    session.headers["X-GitHub-Api-Version"] = API_VERSION
    install(
        session,
        host_key=f"github:{urlsplit(api_url).netloc}",
        timeout_s=settings.timeout_seconds,
        max_retries=settings.max_retries,
        user_agent="forgebot",
        sleep=sleep,
        **{"rate_limit_wait_s": SECONDARY_LIMIT_WAIT_S, **options},
    )
    return session


def _app_id(settings: GitHubSettings) -> int:
    if settings.app_id is None or settings.private_key_file is None:
        raise ConfigError(
            "forges.github: set token (a personal or fine-grained token), or app_id and "
            "private_key_file (a GitHub App)"
        )
    return settings.app_id


def _private_key(settings: GitHubSettings) -> RSAPrivateKey:
    """The App's PEM, checked now so a bad key stops the start, not the first job."""
    path = settings.private_key_file
    if path is None:  # _app_id ran first; this keeps mypy and a careless caller honest
        raise ConfigError("forges.github.private_key_file: required for a GitHub App")
    try:
        pem = path.read_bytes()
    except OSError as exc:
        raise ConfigError(
            f"forges.github.private_key_file: cannot read {path}: {exc.strerror}"
        ) from None
    try:
        return load_private_key(pem)
    except ValueError as exc:  # its message never quotes the file: it is the key
        raise ConfigError(f"forges.github.private_key_file: {path} is {exc}") from None


__all__ = ["GitHubForge"]
