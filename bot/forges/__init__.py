"""The forge registry: a plain mapping from name to adapter, built from the settings."""

from __future__ import annotations

from bot.config import Settings
from bot.forges.base import Forge
from bot.forges.local import LocalForge


def build_forges(settings: Settings) -> dict[str, Forge]:
    """Every configured forge by its registry name (the ``<forge>`` of ``/webhooks/<forge>``)."""
    forges: dict[str, Forge] = {}

    def register(name: str, forge: Forge) -> None:
        if name in forges:
            raise ValueError(f"forge '{name}' registered twice")
        forges[name] = forge

    register("local", LocalForge(settings.local_root, settings.forges.local.secret,
                                 bot_user=settings.bot_user))
    return forges
