"""The ``gitea`` forge: Gitea and Forgejo through their REST API (``/api/v1``).

``webhook`` verifies and parses deliveries (``X-Gitea-*`` and ``X-Forgejo-*``), ``client``
holds the API calls over the resilient session of :mod:`bot.forges.http`, and ``payload``
reads their JSON with typed, named-field errors.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bot.config import GiteaSettings
from bot.errors import ConfigError
from bot.events import Event
from bot.forges.gitea import webhook
from bot.forges.gitea.client import GiteaClient
from bot.forges.http import make_session


class GiteaForge(GiteaClient):
    """The Forge adapter of one Gitea or Forgejo server (registry name ``gitea``).

    ``state_dir`` holds the label memory that tells which label a ``label_updated``
    delivery added (see :class:`webhook.LabelMemory`). ``prefer_labels`` (the trigger
    labels) are reported first when one delivery adds several. ``session_options`` go to
    :func:`bot.forges.http.make_session` (tests pass a fake ``sleep`` and clocks).
    """

    name: str = webhook.FORGE

    def __init__(
        self,
        settings: GiteaSettings,
        bot_user: str,
        state_dir: Path,
        *,
        prefer_labels: Collection[str] = (),
        **session_options: Any,
    ) -> None:
        if not settings.base_url:
            raise ConfigError("forges.gitea.base_url is required: the server's https://HOST")
        if not settings.token:
            raise ConfigError("forges.gitea.token is required (FORGEBOT_FORGES__GITEA__TOKEN)")
        host = urlsplit(settings.base_url).netloc or settings.base_url
        session = make_session(
            host_key=f"gitea:{host}",
            timeout_s=settings.timeout_seconds,
            max_retries=settings.max_retries,
            **session_options,
        )
        super().__init__(
            base_url=settings.base_url,
            token=settings.token,
            bot_user=settings.bot_user or bot_user,
            session=session,
            url_rewrite=settings.git_url_rewrite,
        )
        self._secret = settings.webhook_secret
        self._memory = webhook.LabelMemory(state_dir)
        self._prefer = frozenset(prefer_labels)

    def verify(self, headers: Mapping[str, str], body: bytes) -> bool:
        """Checks ``X-Forgejo-Signature`` / ``X-Gitea-Signature``; False without a secret."""
        return webhook.verify(self._secret, headers, body)

    def delivery_id(self, headers: Mapping[str, str]) -> str | None:
        """``X-Forgejo-Delivery`` / ``X-Gitea-Delivery``."""
        return webhook.delivery_id(headers)

    def event_kind(self, headers: Mapping[str, str]) -> str:
        """``X-Gitea-Event-Type`` (e.g. ``issue_label``), else ``X-Gitea-Event``."""
        return webhook.event_kind(headers)

    def parse(self, headers: Mapping[str, str], body: bytes) -> Event | None:
        """Label added, comment created, push, pull request closed, review; else None."""
        return webhook.parse(headers, body, self._memory, self._prefer)


__all__ = ["GiteaForge"]
