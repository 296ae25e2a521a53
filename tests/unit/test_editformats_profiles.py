"""Model profiles: which edit format a model name gets, and the registry of formats."""

from __future__ import annotations

import pytest

from bot.agent.editformats import FORMATS, get_format, parameter_count, profile_for
from bot.errors import ConfigError


@pytest.mark.parametrize(
    ("model", "edit_format", "reason"),
    [
        ("SmolLM2-135M-Instruct.Q4_1.gguf", "whole_file", "small_model"),
        ("/models/smollm2-360m-instruct-q8_0.gguf", "whole_file", "small_model"),
        ("HuggingFaceTB/SmolLM2-1.7B-Instruct", "whole_file", "small_model"),
        ("qwen2.5-coder-0.5b-instruct", "whole_file", "small_model"),
        ("qwen2.5-coder-1.5b-instruct", "whole_file", "small_model"),
        ("llama3.2:1b", "whole_file", "small_model"),
        ("llama-3.2-3b-instruct", "whole_file", "small_model"),
        ("TinyLlama-1.1B-Chat-v1.0", "whole_file", "small_model"),
        ("tinyllama", "whole_file", "small_model"),
        ("smollm2", "whole_file", "small_model"),
        ("gemma3-270m-q4-k-m", "whole_file", "small_model"),
        ("deepseek-coder-1.3b-instruct", "whole_file", "small_model"),
        ("qwen2.5-coder-32b-instruct", "search_replace", "large_model"),
        ("meta-llama/llama-3.1-70b-instruct", "search_replace", "large_model"),
        ("qwen2.5-coder:7b", "search_replace", "large_model"),
        ("mixtral-8x7b-instruct", "search_replace", "large_model"),
        ("gpt-4o", "search_replace", "large_model"),
        ("gpt-4o-mini", "search_replace", "large_model"),
        ("openai/gpt-4.1", "search_replace", "large_model"),
        ("claude-3-5-sonnet-20241022", "search_replace", "large_model"),
        ("deepseek-chat", "search_replace", "large_model"),
        ("o3-mini", "search_replace", "large_model"),
        ("my-inhouse-model", "search_replace", "default"),
        ("", "search_replace", "default"),
    ],
)
def test_default_profiles(model: str, edit_format: str, reason: str) -> None:
    profile = profile_for(model, None)
    assert (profile.edit_format, profile.reason) == (edit_format, reason)
    assert profile.model == model


def test_small_models_get_fewer_format_retries() -> None:
    small = profile_for("smollm2-135m", None)
    large = profile_for("gpt-4o", None)
    assert 0 < small.max_format_retries < large.max_format_retries


@pytest.mark.parametrize(
    ("model", "overrides", "edit_format"),
    [
        ("gpt-4o", {"gpt-4o": "udiff"}, "udiff"),
        ("GPT-4o", {"gpt-4o": "whole_file"}, "whole_file"),
        ("SmolLM2-135M", {"smollm2-135m": "search_replace"}, "search_replace"),
        ("qwen2.5-coder-1.5b", {"qwen*": "udiff"}, "udiff"),
        (
            "qwen2.5-coder-1.5b",
            {"qwen*": "udiff", "qwen2.5-coder-1.5b": "search_replace"},
            "search_replace",
        ),
        ("qwen2.5-coder-1.5b", {"llama*": "udiff"}, "whole_file"),
        ("claude-3-opus", {}, "search_replace"),
    ],
)
def test_an_override_wins(model: str, overrides: dict[str, str], edit_format: str) -> None:
    assert profile_for(model, overrides).edit_format == edit_format


def test_an_override_naming_an_unknown_format_fails_even_for_another_model() -> None:
    with pytest.raises(ConfigError) as caught:
        profile_for("gpt-4o", {"llama*": "diff-fenced"})
    assert "'diff-fenced'" in str(caught.value)
    assert "search_replace, whole_file, udiff" in str(caught.value)


@pytest.mark.parametrize(
    ("model", "count"),
    [
        ("smollm2-135m-instruct", 135e6),
        ("qwen2.5-coder-1.5b", 1.5e9),
        ("Llama-3.1-70B", 70e9),
        ("mixtral-8x7b", 56e9),
        ("llava-7b-clip-300m", 7e9),
        ("gpt-4o", None),
        ("model.Q4_1.gguf", None),
        ("e5m2-quant", None),
    ],
)
def test_parameter_count(model: str, count: float | None) -> None:
    assert parameter_count(model) == count


def test_the_registry_holds_every_profile_format() -> None:
    assert sorted(FORMATS) == ["search_replace", "udiff", "whole_file"]
    for name, edit_format in FORMATS.items():
        assert get_format(name) is edit_format
        assert edit_format.name == name
        assert "src/example.py" in edit_format.instructions("src/example.py")


def test_an_unknown_format_names_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"unknown edit format 'xml'; known formats: "):
        get_format("xml")
