"""The ``gitlab`` forge: gitlab.com or a self-managed instance, through python-gitlab.

``webhook`` verifies and parses deliveries (no IO), ``client`` is the Forge API over the
resilient session of :mod:`bot.forges.http`. Operator's guide: ``docs/forges/gitlab.md``.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

import requests

from bot.config import GitLabSettings
from bot.events import Event
from bot.forges.gitlab import webhook
from bot.forges.gitlab.client import GitLabClient


class GitLabForge(GitLabClient):
    """The Forge adapter of GitLab (registry name ``gitlab``)."""

    name: str = webhook.FORGE

    def __init__(
        self,
        settings: GitLabSettings,
        bot_user: str,
        *,
        trigger_labels: Collection[str] = (),
        session: requests.Session | None = None,
    ) -> None:
        """``bot_user`` is the bot-wide name, used when ``settings.bot_user`` is empty.

        ``trigger_labels`` (the bot-wide policy's) lets :meth:`parse` pick, among several
        labels added at once, the one that starts work. ``session`` replaces the resilient
        session made from the settings (tests pass one with a fake clock).
        """
        super().__init__(settings, bot_user, session=session)
        self._secret = settings.webhook_secret
        self._trigger_labels = frozenset(trigger_labels)

    def verify(self, headers: Mapping[str, str], body: bytes) -> bool:
        """Checks ``X-Gitlab-Token`` in constant time; False when no secret is configured."""
        return webhook.verify(self._secret, headers)

    def delivery_id(self, headers: Mapping[str, str]) -> str | None:
        """``Idempotency-Key``, else ``X-Gitlab-Event-UUID``, else ``X-Gitlab-Webhook-UUID``."""
        return webhook.delivery_id(headers)

    def event_kind(self, headers: Mapping[str, str]) -> str:
        """``X-Gitlab-Event`` (``Issue Hook``, ``Note Hook``, ``Push Hook``, ...)."""
        return webhook.event_kind(headers)

    def parse(self, headers: Mapping[str, str], body: bytes) -> Event | None:
        """Issue label changes, notes, pushes, merge request merge/close/approved; else None."""
        return webhook.parse(headers, body, self._trigger_labels)


__all__ = ["GitLabForge"]
