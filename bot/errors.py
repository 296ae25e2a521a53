"""The one exception tree of forgebot.

    ForgebotError
    ├── ConfigError          bad configuration: fix the file or the environment (no retry)
    ├── StoreError           the database failed (retry may help)
    ├── ForgeError           a forge API or webhook problem (``retryable`` says)
    ├── GitError             git exited non-zero (``retryable`` says)
    ├── SandboxError         the sandbox could not start or run (``retryable`` says)
    ├── ModelError           the LLM provider failed or answered nonsense
    ├── EditFormatError      a model reply that does not parse or apply (fed back to the model)
    ├── PolicyError          a policy file that does not load (no retry)
    └── InvalidSpec          (bot.specs) a spec that does not parse; ``.errors`` has file:line

Library errors (docker, requests, sqlalchemy, git) are re-raised as one of these with
``from exc`` at the adapter boundary, so nothing above an adapter sees them.
"""

from __future__ import annotations


class ForgebotError(Exception):
    """Base of every error forgebot raises on purpose."""

    retryable: bool = False

    def __init__(self, message: str, *, retryable: bool | None = None) -> None:
        super().__init__(message)
        if retryable is not None:
            self.retryable = retryable


class ConfigError(ForgebotError):
    """The configuration file or environment is wrong; the message names the key and file."""


class StoreError(ForgebotError):
    """The store failed."""

    retryable = True


class ForgeError(ForgebotError):
    """A forge rejected a call or could not be reached."""


class GitError(ForgebotError):
    """A git command failed."""


class SandboxError(ForgebotError):
    """The sandbox could not be started, fed or run."""


class ModelError(ForgebotError):
    """The model provider failed or could not be loaded."""


class EditFormatError(ForgebotError):
    """A model reply that could not be parsed or applied; the message goes back to the model."""


class PolicyError(ForgebotError):
    """A policy file that does not load; the message names the file and the key."""
