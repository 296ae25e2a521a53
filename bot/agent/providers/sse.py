"""Reading OpenAI-shaped chat-completion answers, streamed (server-sent events) or whole.

Pure: lines and decoded JSON in, a ``Completion`` out; the clock is passed in so timing is
testable. Everything a server sends is untrusted: wrong types count as "not reported",
never as a crash.

A stream is ``data: {chunk}`` lines ending with ``data: [DONE]``; each chunk carries
``choices[0].delta.content``. With ``stream_options.include_usage`` the last chunk carries
``usage`` (vLLM, OpenAI, llama.cpp's server, Ollama); llama.cpp's server also sends
``timings``. A server that sends no usage gets the fallback: the prompt counted by the
provider's ``count_tokens`` and one completion token per content delta (servers send one
token per delta).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from bot.agent.llm import Completion, ContextLengthExceeded, FailureKind, ProviderError, Usage
from bot.agent.providers.retry import says_context_length

_ERROR_SNIPPET = 300


@dataclass(frozen=True)
class Timing:
    """Wall-clock marks of one call, from the provider's monotonic clock."""

    started: float
    first_token: float | None
    finished: float


@dataclass(frozen=True)
class Streamed:
    """What a stream delivered: the text, the raw usage and timings objects (or None), the
    clock at the first content delta, and the number of content deltas."""

    text: str
    usage: Any
    timings: Any
    first_token: float | None
    deltas: int


@dataclass
class _Stream:
    parts: list[str] = field(default_factory=list)
    deltas: int = 0
    usage: Any = None
    timings: Any = None
    done: bool = False
    finish_reason: str | None = None
    first_token: float | None = None


def read_stream(lines: Iterable[str], *, source: str, clock: Callable[[], float]) -> Streamed:
    """Consume an SSE chat-completion stream.

    Raises ``ProviderError`` for an error event or a malformed chunk, ``ContextLengthExceeded``
    for an error event about the window, and a retryable ``ProviderError`` (network) for a
    stream that stops before ``[DONE]`` or a finish reason.
    """
    state = _Stream()
    for raw in lines:
        line = raw.strip()
        if not line.startswith("data:"):
            continue  # comments (":"), "event:", "id:" and blank separators
        data = line[len("data:"):].strip()
        if data == "[DONE]":
            state.done = True
            break
        _chunk(state, _decode(data, source), source, clock)
    if not (state.done or state.finish_reason):
        raise ProviderError(
            f"{source} ended the stream before it was complete",
            kind=FailureKind.NETWORK, retryable=True,
        )
    if not state.parts and state.finish_reason is None:
        raise ProviderError(f"{source} streamed no choices", kind=FailureKind.BAD_RESPONSE)
    return Streamed("".join(state.parts), state.usage, state.timings, state.first_token,
                    state.deltas)


def _decode(data: str, source: str) -> Any:
    try:
        return json.loads(data)
    except ValueError as exc:
        raise ProviderError(
            f"{source} streamed a chunk that is not JSON", kind=FailureKind.BAD_RESPONSE
        ) from exc


def _chunk(state: _Stream, chunk: Any, source: str, clock: Callable[[], float]) -> None:
    if not isinstance(chunk, dict):
        raise ProviderError(f"{source} streamed a chunk that is not an object",
                            kind=FailureKind.BAD_RESPONSE)
    if "error" in chunk:
        raise stream_error(chunk["error"], source)
    if isinstance(chunk.get("usage"), dict):
        state.usage = chunk["usage"]
    if isinstance(chunk.get("timings"), dict):
        state.timings = chunk["timings"]
    choices = chunk.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return  # the usage chunk has no choices
    choice = choices[0]
    delta = choice.get("delta")
    content = delta.get("content") if isinstance(delta, dict) else None
    if isinstance(content, str) and content:
        if state.first_token is None:
            state.first_token = clock()
        state.parts.append(content)
        state.deltas += 1
    if isinstance(choice.get("finish_reason"), str):
        state.finish_reason = choice["finish_reason"]


def stream_error(error: Any, source: str) -> ProviderError:
    """The error for an ``{"error": ...}`` event sent inside a 200 stream."""
    message = error.get("message") if isinstance(error, dict) else error
    text = " ".join(str(message).split())[:_ERROR_SNIPPET]
    if says_context_length(text) or (
        isinstance(error, dict) and says_context_length(str(error.get("type", "")))
    ):
        return ContextLengthExceeded(f"{source}: {text}")
    return ProviderError(f"{source} reported an error mid-stream: {text}",
                         kind=FailureKind.SERVER, retryable=True)


def message_text(data: Any, source: str) -> str:
    """``choices[0].message.content`` of a whole (not streamed) answer."""
    try:
        text = data["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError) as exc:
        raise ProviderError(f"{source} answered without choices[0].message.content",
                            kind=FailureKind.BAD_RESPONSE) from exc
    if not isinstance(text, str):
        raise ProviderError(f"{source} answered without choices[0].message.content",
                            kind=FailureKind.BAD_RESPONSE)
    return text


def build_usage(
    usage: Any,
    timings: Any,
    timing: Timing,
    *,
    fallback_prompt: Callable[[], int],
    fallback_completion: int,
) -> Usage:
    """A Usage from what the server reported, else measured or estimated.

    Counts: ``usage`` (OpenAI shape), else llama.cpp's ``timings``, else the fallbacks.
    Seconds: llama.cpp's ``timings`` when sent, else the clock: prompt = until the first
    content, generation = from the first content to the end.
    """
    reported = usage if isinstance(usage, dict) else {}
    times = timings if isinstance(timings, dict) else {}
    prompt = _count(reported.get("prompt_tokens")) or _count(times.get("prompt_n"))
    completion = _count(reported.get("completion_tokens")) or _count(times.get("predicted_n"))
    details = reported.get("prompt_tokens_details")
    cached = _count(details.get("cached_tokens")) if isinstance(details, dict) else 0
    cached = cached or _count(times.get("cache_n"))
    if not prompt and not reported:
        prompt = fallback_prompt()
    if not completion and not reported:
        completion = fallback_completion
    seconds = max(timing.finished - timing.started, 0.0)
    first = timing.first_token if timing.first_token is not None else timing.finished
    prompt_s = _ms(times.get("prompt_ms")) or max(first - timing.started, 0.0)
    generation_s = _ms(times.get("predicted_ms")) or max(timing.finished - first, 0.0)
    return Usage(prompt_tokens=prompt, completion_tokens=completion, cached_tokens=cached,
                 seconds=seconds, prompt_seconds=prompt_s, generation_seconds=generation_s)


def completion_from_response(data: Any, *, source: str) -> Completion:
    """A Completion from an OpenAI-shaped chat-completion response (a decoded JSON object);
    the usage holds the reported counts only (no timing)."""
    text = message_text(data, source)
    usage = data.get("usage") if isinstance(data, dict) else None
    reported = usage if isinstance(usage, dict) else {}
    return Completion(
        text=text,
        usage=Usage(
            prompt_tokens=_count(reported.get("prompt_tokens")),
            completion_tokens=_count(reported.get("completion_tokens")),
        ),
    )


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def _ms(value: Any) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return float(value) / 1000.0
    return 0.0
