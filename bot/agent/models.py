"""Model roles and the escalation ladder: which configured model answers which request.

The configuration names models (``llm`` itself is the model called "default"; ``llm.models``
adds more by name), maps roles to them (``llm.roles``; an unnamed role uses "default") and
may set a ladder (``llm.escalation``, which starts at the coder's model).

The escalation rule: the coder starts on rung 0; after ``llm.escalate_after`` consecutive
failed iterations it moves one rung up, and stays on the top rung once there::

    rung = min(consecutive_failures // escalate_after, len(ladder) - 1)

so with ``escalation: [default, big]`` and ``escalate_after: 2``, iterations 1-2 use
"default" and every iteration after two failures in a row uses "big". The caller (the agent
loop) counts the failures; the router is stateless about them.

A router belongs to one attempt: providers are built on first use and kept, so a llama-cpp
model is loaded once and its KV cache serves every iteration of the attempt; ``close`` frees
them all at the attempt's end.
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType

from bot.agent.llm import Closable, Provider
from bot.agent.providers import provider_from_settings
from bot.config import DEFAULT_MODEL, LLMSettings, ModelSettings, Role
from bot.errors import ModelError

ROLES: tuple[Role, ...] = ("planner", "coder", "reviewer")


class ModelRouter:
    """The providers of one attempt, by model name, role and escalation rung."""

    def __init__(
        self,
        settings: LLMSettings,
        build: Callable[[ModelSettings], Provider] = provider_from_settings,
    ) -> None:
        self._settings = settings
        self._models: dict[str, ModelSettings] = {DEFAULT_MODEL: settings, **settings.models}
        self._build = build
        self._built: dict[str, Provider] = {}
        coder = self.model_for_role("coder")
        self.ladder: tuple[str, ...] = tuple(settings.escalation) or (coder,)

    @property
    def names(self) -> tuple[str, ...]:
        """Every configured model name, "default" first."""
        return tuple(self._models)

    def get(self, name: str) -> Provider:
        """The provider of the model called ``name``, built on first use and then reused."""
        provider = self._built.get(name)
        if provider is None:
            model = self._models.get(name)
            if model is None:
                raise ModelError(f"unknown model {name!r}; known: {', '.join(self._models)}")
            provider = self._build(model)
            self._built[name] = provider
        return provider

    def model_for_role(self, role: Role) -> str:
        """The name of the model that plays ``role`` (``llm.roles``, else "default")."""
        if role not in ROLES:
            raise ModelError(f"unknown role {role!r}; known: {', '.join(ROLES)}")
        return self._settings.roles.get(role, DEFAULT_MODEL)

    def for_role(self, role: Role) -> Provider:
        """The provider that plays ``role``."""
        return self.get(self.model_for_role(role))

    def rung(self, consecutive_failures: int) -> int:
        """The ladder rung for the next iteration after that many failed iterations in a row."""
        if consecutive_failures < 0:
            raise ValueError("consecutive_failures must be zero or more")
        step = consecutive_failures // self._settings.escalate_after
        return min(step, len(self.ladder) - 1)

    def model_for_failures(self, consecutive_failures: int) -> str:
        """The name of the coder model for the next iteration (see the module's rule)."""
        return self.ladder[self.rung(consecutive_failures)]

    def escalate(self, consecutive_failures: int) -> Provider:
        """The coder provider for the next iteration after ``consecutive_failures`` failed
        iterations in a row: rung 0 (the coder's model) at 0, one rung up per
        ``llm.escalate_after`` failures, the top rung at most."""
        return self.get(self.model_for_failures(consecutive_failures))

    def close(self) -> None:
        """Free every provider built so far (loaded models, HTTP pools); later calls rebuild."""
        built, self._built = self._built, {}
        errors: list[str] = []
        for name, provider in built.items():
            if isinstance(provider, Closable):
                try:
                    provider.close()
                except Exception as exc:  # one failing close must not leak the others
                    errors.append(f"{name}: {type(exc).__name__}: {exc}")
        if errors:
            raise ModelError("could not close model(s): " + "; ".join(errors))

    def __enter__(self) -> ModelRouter:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
