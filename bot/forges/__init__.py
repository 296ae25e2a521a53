"""The forge registry: a plain mapping from name to adapter, built from the settings."""

from __future__ import annotations

from collections.abc import Collection

from bot.config import Settings
from bot.forges.base import Forge
from bot.forges.local import LocalForge


def build_forges(settings: Settings, trigger_labels: Collection[str] = ()) -> dict[str, Forge]:
    """Every configured forge by its registry name (the ``<forge>`` of ``/webhooks/<forge>``).

    ``trigger_labels`` (from the bot-wide policy) lets a forge that reports several labels
    added at once name the one that matters.
    """
    forges: dict[str, Forge] = {}

    def register(name: str, forge: Forge) -> None:
        if name in forges:
            raise ValueError(f"forge '{name}' registered twice")
        forges[name] = forge

    register("local", LocalForge(settings.local_root, settings.forges.local.secret,
                                 bot_user=settings.bot_user))
    hosted = settings.forges
    if hosted.github.enabled:
        from bot.forges.github import GitHubForge

        register("github", GitHubForge(hosted.github, hosted.github.bot_user or settings.bot_user))
    if hosted.gitlab.enabled:
        from bot.forges.gitlab import GitLabForge

        register("gitlab", GitLabForge(hosted.gitlab, hosted.gitlab.bot_user or settings.bot_user,
                                       trigger_labels=tuple(trigger_labels)))
    if hosted.gitea.enabled:
        from bot.forges.gitea import GiteaForge

        register("gitea", GiteaForge(hosted.gitea, hosted.gitea.bot_user or settings.bot_user,
                                     settings.data_dir / "forges",
                                     prefer_labels=tuple(trigger_labels)))
    return forges
