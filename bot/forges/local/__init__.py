"""The ``local`` forge: repositories, issues and pull requests in a folder, no server.

``webhook`` verifies and parses deliveries, ``client`` is the Forge API over the files
``layout`` describes, and ``admin`` holds what the ``forgebot local`` commands do.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from bot.events import Event
from bot.forges.local import webhook
from bot.forges.local.client import LocalClient


class LocalForge(LocalClient):
    """The Forge adapter of the local forge (registry name ``local``)."""

    name: str = webhook.FORGE

    def __init__(self, root: Path, secret: str | None, bot_user: str = "forgebot") -> None:
        super().__init__(root, bot_user)
        self._secret = secret

    def verify(self, headers: Mapping[str, str], body: bytes) -> bool:
        """Checks ``X-Forgebot-Signature-256``; False when no secret is configured."""
        return webhook.verify(self._secret, headers, body)

    def delivery_id(self, headers: Mapping[str, str]) -> str | None:
        """``X-Forgebot-Delivery``."""
        return webhook.delivery_id(headers)

    def event_kind(self, headers: Mapping[str, str]) -> str:
        """``X-Forgebot-Event``."""
        return webhook.event_kind(headers)

    def parse(self, headers: Mapping[str, str], body: bytes) -> Event | None:
        """``issues/labeled`` and ``issue_comment/created``; anything else is None."""
        return webhook.parse(headers, body)


__all__ = ["LocalForge"]
