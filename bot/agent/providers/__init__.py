"""LLM providers by name: ``make_provider("llama-cpp", model_path=...)``.

The registry is a literal dict from the configured ``kind`` to a builder; each builder takes
the keyword settings it understands (``transcript``; ``model_path``, ``context_window``,
``threads``; ``base_url``, ``model``, ``api_key``, ``timeout_s``) and ignores those meant for
another kind, so the caller can pass one flat block of configuration.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from bot.agent.llm import Provider
from bot.agent.providers.llama_cpp import LlamaCppProvider
from bot.agent.providers.openai import OpenAIProvider
from bot.agent.providers.replay import ReplayProvider
from bot.errors import ModelError

_KNOWN_SETTINGS = frozenset(
    {
        "transcript",
        "model_path",
        "context_window",
        "threads",
        "base_url",
        "model",
        "api_key",
        "timeout_s",
    }
)


def _replay(settings: Mapping[str, object]) -> Provider:
    return ReplayProvider(Path(_required_str(settings, "transcript", "replay")))


def _llama_cpp(settings: Mapping[str, object]) -> Provider:
    model_path = settings.get("model_path")
    return LlamaCppProvider(
        model_path=Path(str(model_path)) if model_path else None,
        context_window=_int(settings, "context_window", 4096),
        threads=_optional_int(settings, "threads"),
    )


def _openai(settings: Mapping[str, object]) -> Provider:
    api_key = settings.get("api_key")
    if api_key is not None and not isinstance(api_key, str):
        # Not the value: it is a secret, even when it is the wrong type.
        raise ModelError("openai provider setting 'api_key' must be a string")
    timeout = settings.get("timeout_s", 120)
    if not isinstance(timeout, int | float) or isinstance(timeout, bool) or timeout <= 0:
        raise ModelError("openai provider setting 'timeout_s' must be a positive number")
    return OpenAIProvider(
        base_url=_required_str(settings, "base_url", "openai"),
        model=_required_str(settings, "model", "openai"),
        api_key=api_key or None,
        timeout_s=float(timeout),
    )


_REGISTRY: dict[str, Callable[[Mapping[str, object]], Provider]] = {
    "replay": _replay,
    "llama-cpp": _llama_cpp,
    "openai": _openai,
}


def make_provider(kind: str, **settings: object) -> Provider:
    """Build the provider named ``kind`` from keyword settings; raises ModelError when the
    kind is unknown, a setting name is unknown, or a required setting is missing."""
    builder = _REGISTRY.get(kind)
    if builder is None:
        raise ModelError(
            f"unknown model provider {kind!r}; known providers: {', '.join(sorted(_REGISTRY))}"
        )
    unknown = sorted(set(settings) - _KNOWN_SETTINGS)
    if unknown:
        raise ModelError(
            f"unknown model provider setting(s) {', '.join(unknown)}; "
            f"known: {', '.join(sorted(_KNOWN_SETTINGS))}"
        )
    # None means "not configured": drop it so each builder's defaults apply.
    return builder({key: value for key, value in settings.items() if value is not None})


def _required_str(settings: Mapping[str, object], key: str, kind: str) -> str:
    value = settings.get(key)
    if not isinstance(value, str | Path) or not str(value):
        raise ModelError(f"{kind} provider needs the setting {key!r}")
    return str(value)


def _int(settings: Mapping[str, object], key: str, default: int) -> int:
    value = settings.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ModelError(f"model provider setting {key!r} must be a positive integer")
    return value


def _optional_int(settings: Mapping[str, object], key: str) -> int | None:
    return _int(settings, key, 1) if key in settings else None


__all__ = ["LlamaCppProvider", "OpenAIProvider", "ReplayProvider", "make_provider"]
