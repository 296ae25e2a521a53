"""LLM providers by name: ``make_provider("llama-cpp", model_path=...)``.

The registry is a literal dict from the configured ``kind`` to a builder; each builder takes
the keyword settings it understands and ignores those meant for another kind, so the caller
can pass one flat block of configuration:

- every kind: ``context_window`` (a cap on the model's window; replay: the window itself)
- ``replay``: ``transcript``
- ``llama-cpp``: ``model_path``, ``threads``, ``n_gpu_layers``, ``chat_format``
- ``openai``: ``base_url``, ``model``, ``api_key``, ``timeout_s`` (read), ``connect_timeout_s``,
  ``stream``, ``max_attempts``, ``retry_budget_s``

``provider_from_settings`` builds one from a ``bot.config.ModelSettings`` block.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from bot.agent.llm import Provider
from bot.agent.providers.llama_cpp import LlamaCppProvider
from bot.agent.providers.openai import OpenAIProvider
from bot.agent.providers.replay import DEFAULT_CONTEXT_WINDOW, ReplayProvider
from bot.agent.providers.retry import RetryPolicy
from bot.config import ModelSettings
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
        "n_gpu_layers",
        "chat_format",
        "connect_timeout_s",
        "stream",
        "max_attempts",
        "retry_budget_s",
    }
)


def _replay(settings: Mapping[str, object]) -> Provider:
    return ReplayProvider(Path(_required_str(settings, "transcript", "replay")),
                          _int(settings, "context_window", DEFAULT_CONTEXT_WINDOW))


def _llama_cpp(settings: Mapping[str, object]) -> Provider:
    model_path = settings.get("model_path")
    n_gpu_layers = settings.get("n_gpu_layers", 0)
    if not isinstance(n_gpu_layers, int) or isinstance(n_gpu_layers, bool) or n_gpu_layers < -1:
        raise ModelError("llama-cpp provider setting 'n_gpu_layers' must be -1 (all) or more")
    chat_format = settings.get("chat_format")
    if chat_format is not None and not (isinstance(chat_format, str) and chat_format):
        raise ModelError("llama-cpp provider setting 'chat_format' must be a format name")
    return LlamaCppProvider(
        model_path=Path(str(model_path)) if model_path else None,
        context_window=_optional_int(settings, "context_window"),
        threads=_optional_int(settings, "threads"),
        n_gpu_layers=n_gpu_layers,
        chat_format=chat_format,
    )


def _openai(settings: Mapping[str, object]) -> Provider:
    api_key = settings.get("api_key")
    if api_key is not None and not isinstance(api_key, str):
        # Not the value: it is a secret, even when it is the wrong type.
        raise ModelError("openai provider setting 'api_key' must be a string")
    stream = settings.get("stream", True)
    if not isinstance(stream, bool):
        raise ModelError("openai provider setting 'stream' must be true or false")
    budget = _seconds(settings, "retry_budget_s", RetryPolicy.budget_s)
    return OpenAIProvider(
        base_url=_required_str(settings, "base_url", "openai"),
        model=_required_str(settings, "model", "openai"),
        api_key=api_key or None,
        timeout_s=_seconds(settings, "timeout_s", 120.0),
        connect_timeout_s=_seconds(settings, "connect_timeout_s", 10.0),
        stream=stream,
        context_window=_optional_int(settings, "context_window"),
        retry=RetryPolicy(max_attempts=_int(settings, "max_attempts", RetryPolicy.max_attempts),
                          budget_s=budget),
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


def provider_from_settings(model: ModelSettings) -> Provider:
    """Build the provider one model block of the configuration (``llm`` or an entry of
    ``llm.models``) describes."""
    fields = model.provider_fields()
    return make_provider(model.provider, **fields)


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


def _seconds(settings: Mapping[str, object], key: str, default: float) -> float:
    value = settings.get(key, default)
    if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
        raise ModelError(f"model provider setting {key!r} must be a positive number")
    return float(value)


def _optional_int(settings: Mapping[str, object], key: str) -> int | None:
    return _int(settings, key, 1) if key in settings else None


__all__ = [
    "LlamaCppProvider",
    "OpenAIProvider",
    "ReplayProvider",
    "make_provider",
    "provider_from_settings",
]
