"""Which edit format each model writes: per-model profiles and the registry of formats.

Small local models cannot quote lines exactly, so they rewrite whole files; large models
write SEARCH/REPLACE blocks, which are short and cheap to check. The size is read from the
model name (``qwen2.5-coder-1.5b-instruct``, ``SmolLM2-135M-Instruct.Q4_1.gguf``), then known
family names decide, and anything else gets SEARCH/REPLACE. An operator's override, keyed by
model name or a glob over it, always wins.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Literal, cast, get_args

from bot.agent.editformats.base import EditFormat
from bot.agent.editformats.search_replace import SearchReplaceFormat
from bot.agent.editformats.udiff import UnifiedDiffFormat
from bot.agent.editformats.whole_file import WholeFileFormat
from bot.errors import ConfigError

FormatName = Literal["search_replace", "whole_file", "udiff"]
ProfileReason = Literal["override", "small_model", "large_model", "default"]

# Below this many parameters a model rewrites whole files: 3B-class models already fail to
# quote SEARCH parts more often than not, while 7B coder models mostly manage.
SMALL_MODEL_PARAMETERS = 7e9
# Small models rarely fix a format error when told; large ones usually do on the first retry.
SMALL_MODEL_RETRIES = 2
DEFAULT_RETRIES = 3

# "135m", "1.5b", "70B", "8x7b" standing alone in a name (not "q4_1", not "gpt-4o").
_SIZE = re.compile(r"(?<![a-z0-9.])(?:(\d+)x)?(\d+(?:\.\d+)?)([mb])(?![a-z0-9])")
_SMALL_FAMILIES = ("smollm", "tinyllama", "gemma-270m", "gemma3-270m", "qwen2.5-0.5b")
_LARGE_FAMILIES = (
    "gpt-4",
    "gpt-5",
    "o1",
    "o3",
    "o4",
    "claude",
    "deepseek",
    "gemini",
    "mistral-large",
    "codestral",
    "grok",
    "llama-3.1-405b",
)


@dataclass(frozen=True)
class ModelProfile:
    """How the agent talks to one model. ``reason`` says why this format (for logs)."""

    model: str
    edit_format: FormatName
    max_format_retries: int
    reason: ProfileReason


def _registry(formats: Iterable[EditFormat]) -> dict[str, EditFormat]:
    registry: dict[str, EditFormat] = {}
    for edit_format in formats:
        if edit_format.name in registry:
            raise ValueError(f"two edit formats are named {edit_format.name!r}")
        registry[edit_format.name] = edit_format
    return registry


FORMATS: dict[str, EditFormat] = _registry(
    [SearchReplaceFormat(), WholeFileFormat(), UnifiedDiffFormat()]
)


def get_format(name: str) -> EditFormat:
    """The edit format called ``name``; ConfigError naming the known ones when there is none."""
    try:
        return FORMATS[name]
    except KeyError:
        known = ", ".join(sorted(FORMATS))
        raise ConfigError(f"unknown edit format {name!r}; known formats: {known}") from None


def profile_for(model_name: str, overrides: Mapping[str, str] | None = None) -> ModelProfile:
    """The profile of ``model_name``.

    ``overrides`` maps a model name, or a glob over model names (``*coder*``), to a format
    name; an exact name wins over a glob, and the first matching glob in mapping order wins
    over the rest. Names are compared case-insensitively. Raises ConfigError for an override
    naming an unknown format, so a typo in the configuration fails at start.
    """
    chosen = _override(model_name, overrides or {})
    if chosen is not None:
        return _profile(model_name, chosen, "override")
    size = parameter_count(model_name)
    lowered = _base_name(model_name)
    if size is not None:
        small = size < SMALL_MODEL_PARAMETERS
    elif any(family in lowered for family in _SMALL_FAMILIES):
        small = True
    elif any(_has_family(lowered, family) for family in _LARGE_FAMILIES):
        small = False
    else:
        return _profile(model_name, "search_replace", "default")
    if small:
        return _profile(model_name, "whole_file", "small_model")
    return _profile(model_name, "search_replace", "large_model")


def parameter_count(model_name: str) -> float | None:
    """The number of parameters a model name states (``1.5b`` is 1.5e9), or None.

    A mixture of experts (``8x7b``) counts all its experts; with several sizes in one name
    the largest counts (``llava-7b-clip-300m``).
    """
    counts = [
        float(match.group(1) or 1) * float(match.group(2)) * (1e6 if match.group(3) == "m" else 1e9)
        for match in _SIZE.finditer(_base_name(model_name))
    ]
    return max(counts) if counts else None


def _base_name(model_name: str) -> str:
    """The lower-cased name without a folder (a GGUF path) or an ``org/`` prefix."""
    return model_name.strip().rsplit("/", 1)[-1].lower()


def _has_family(lowered: str, family: str) -> bool:
    # "o1" must start a name or follow a separator: "yolo1" and "qwen2.5-coder-o1" differ.
    return re.search(rf"(?:^|[-_:.]){re.escape(family)}", lowered) is not None


def _override(model_name: str, overrides: Mapping[str, str]) -> FormatName | None:
    for pattern, name in overrides.items():
        if name not in get_args(FormatName):
            known = ", ".join(get_args(FormatName))
            raise ConfigError(
                f"edit format override for model {pattern!r} names unknown format {name!r}; "
                f"known formats: {known}"
            )
    lowered = model_name.strip().lower()
    exact = {pattern.lower(): name for pattern, name in overrides.items()}
    if lowered in exact:
        return cast(FormatName, exact[lowered])
    for pattern, name in overrides.items():
        if fnmatchcase(lowered, pattern.lower()):
            return cast(FormatName, name)
    return None


def _profile(model_name: str, edit_format: FormatName, reason: ProfileReason) -> ModelProfile:
    retries = SMALL_MODEL_RETRIES if edit_format == "whole_file" else DEFAULT_RETRIES
    return ModelProfile(model_name, edit_format, retries, reason)
