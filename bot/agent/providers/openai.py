"""The ``openai`` provider: any server speaking the OpenAI chat-completions API.

vLLM, Ollama, llama.cpp's server and hosted APIs all answer ``POST {base_url}/chat/completions``.
Replies are streamed (``stream: true`` with ``stream_options.include_usage``) so a slow model
is not mistaken for a dead one: the read timeout is the longest silence between two chunks,
not the length of the whole answer. Failures are retried by the table in
``bot.agent.providers.retry``, within a number of attempts and a time budget.

Every failure becomes a ModelError (a ``ProviderError`` with its kind); the API key never
appears in one, nor in a log line, and prompts are never logged.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests

from bot.agent.llm import (
    Completion,
    ContextLengthExceeded,
    FailureKind,
    Message,
    ProviderError,
    estimate_tokens,
)
from bot.agent.providers.retry import (
    ADVICE,
    RETRYABLE,
    RetryPolicy,
    classify,
    retry_after,
    wait_before_retry,
)
from bot.agent.providers.server_info import ServerProbe, join
from bot.agent.providers.sse import (
    Timing,
    build_usage,
    completion_from_response,
    message_text,
    read_stream,
)

log = logging.getLogger(__name__)

DEFAULT_CONTEXT_WINDOW = 4096
_BODY_SNIPPET = 300
# A hostile or broken server could stream forever; no chat reply we ask for is this long.
_MAX_REPLY_CHARS = 4_000_000

__all__ = ["OpenAIProvider", "completion_from_response"]


class _Failed(ProviderError):
    """One failed attempt, with the server's Retry-After when it sent one."""

    def __init__(
        self, message: str, *, kind: FailureKind, retry_after_s: float | None = None
    ) -> None:
        super().__init__(message, kind=kind, retryable=kind in RETRYABLE)
        self.retry_after_s = retry_after_s


class OpenAIProvider:
    """A chat model behind an OpenAI-compatible HTTP API.

    ``timeout_s`` is the read timeout (the longest wait for the next bytes), ``connect_timeout_s``
    the connect timeout; ``retry`` bounds the attempts and the whole call's time.
    ``context_window`` caps what the server reports; unset, the server's own window is used
    (4096 if it does not say). ``sleep``, ``clock`` and ``jitter`` are seams for tests.
    """

    name = "openai"

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        timeout_s: float = 120,
        *,
        connect_timeout_s: float = 10.0,
        stream: bool = True,
        context_window: int | None = None,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self._api_key = api_key
        self.timeout_s = timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.stream = stream
        self.retry = retry or RetryPolicy()
        self._configured_window = context_window
        self._sleep, self._clock, self._jitter = sleep, clock, jitter
        self._session = requests.Session()
        self._probe = ServerProbe(self._session, self.base_url, model, self._headers(),
                                  connect_timeout_s)
        self._window: int | None = None
        self._tokenizer: str | None = None  # "llama.cpp", "vllm" or "estimate", once known

    def __repr__(self) -> str:
        # Shown in logs and tracebacks: the key stays out, and so do credentials in the URL.
        return f"OpenAIProvider(base_url={_public_url(self.base_url)!r}, model={self.model!r})"

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._session.close()

    def complete(
        self, messages: list[Message], *, max_tokens: int, temperature: float
    ) -> Completion:
        """POST the conversation and read the reply, retrying by the table.

        Raises ``ContextLengthExceeded`` when the server says the prompt is too long, and a
        ``ProviderError`` whose message says what to fix when a retry cannot help.
        """
        payload: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "max_tokens": max_tokens,
            "temperature": temperature,
        }
        if self.stream:
            payload["stream"] = True
            payload["stream_options"] = {"include_usage": True}
        started = self._clock()
        attempt = 0
        while True:
            attempt += 1
            try:
                return self._attempt(payload, messages)
            except _Failed as exc:
                elapsed = self._clock() - started
                delay = wait_before_retry(exc.kind, attempt, self.retry,
                                          retry_after_s=exc.retry_after_s, elapsed_s=elapsed,
                                          jitter=self._jitter())
                if delay is None:
                    raise _final(exc, attempt, elapsed) from exc
                log.warning("model call to %s failed (%s), attempt %d of %d; retrying in %.1fs",
                            _public_url(self.base_url), exc.kind, attempt,
                            self.retry.max_attempts, delay)
                self._sleep(delay)

    def context_window(self) -> int:
        """The server's window (llama.cpp ``/props``, vLLM ``/models``), capped by the
        configured ``context_window``; the configured value (or 4096) when it does not say.
        Asked once and remembered."""
        if self._window is None:
            served = self._probe.context_window()
            configured = self._configured_window
            if served is None:
                self._window = configured or DEFAULT_CONTEXT_WINDOW
            else:
                self._window = min(served, configured) if configured else served
        return self._window

    def count_tokens(self, messages: list[Message]) -> int:
        """The server's own count of the templated prompt when it has a tokenizer endpoint
        (llama.cpp's server, vLLM), else the estimate (characters / 3.5, rounded up). Which
        one is found on the first call and remembered."""
        if self._tokenizer in (None, "llama.cpp"):
            counted = self._probe.llama_cpp_tokens(messages)
            if counted is not None:
                self._tokenizer = "llama.cpp"
                return counted
        if self._tokenizer in (None, "vllm"):
            counted = self._probe.vllm_tokens(messages)
            if counted is not None:
                self._tokenizer = "vllm"
                return counted
        if self._tokenizer is None:
            self._tokenizer = "estimate"
        return estimate_tokens(messages)

    @property
    def tokenizer(self) -> str | None:
        """How ``count_tokens`` counts: "llama.cpp", "vllm", "estimate", or None before it
        has been asked."""
        return self._tokenizer

    def _attempt(self, payload: dict[str, Any], messages: list[Message]) -> Completion:
        url = join(self.base_url, "chat/completions")
        shown = _public_url(url)
        started = self._clock()
        try:
            response = self._session.post(
                url, json=payload, headers=self._headers(), stream=self.stream,
                timeout=(self.connect_timeout_s, self.timeout_s),
            )
        except requests.Timeout as exc:
            raise _Failed(f"{shown} did not answer within {self.timeout_s:g}s",
                          kind=FailureKind.NETWORK) from exc
        except requests.ConnectionError as exc:
            raise _Failed(f"cannot connect to {shown}", kind=FailureKind.NETWORK) from exc
        except requests.RequestException as exc:
            raise _Failed(f"request to {shown} failed: {type(exc).__name__}",
                          kind=FailureKind.NETWORK) from exc
        with response:
            if not 200 <= response.status_code < 300:
                raise self._http_error(response, shown)
            if self.stream and "json" not in response.headers.get("Content-Type", ""):
                return self._streamed(response, shown, started, messages)
            return self._whole(response, shown, started, messages)

    def _streamed(self, response: requests.Response, shown: str, started: float,
                  messages: list[Message]) -> Completion:
        lines = _bounded(response.iter_lines(decode_unicode=True), shown)
        try:
            streamed = read_stream(lines, source=shown, clock=self._clock)
        except ContextLengthExceeded:
            raise
        except ProviderError as exc:
            raise _Failed(str(exc), kind=exc.kind) from exc
        except requests.RequestException as exc:
            raise _Failed(f"{shown} broke off the stream: {type(exc).__name__}",
                          kind=FailureKind.NETWORK) from exc
        timing = Timing(started=started, first_token=streamed.first_token,
                        finished=self._clock())
        # Without usage, one content delta counts as one token: servers stream token by token.
        return Completion(streamed.text, build_usage(
            streamed.usage, streamed.timings, timing,
            fallback_prompt=lambda: self.count_tokens(messages),
            fallback_completion=streamed.deltas))

    def _whole(self, response: requests.Response, shown: str, started: float,
               messages: list[Message]) -> Completion:
        try:
            data = response.json()
        except (ValueError, requests.RequestException) as exc:
            raise _Failed(f"{shown} answered with a body that is not JSON",
                          kind=FailureKind.BAD_RESPONSE) from exc
        try:
            text = message_text(data, shown)
        except ProviderError as exc:
            raise _Failed(str(exc), kind=exc.kind) from exc
        usage = data.get("usage") if isinstance(data, dict) else None
        timings = data.get("timings") if isinstance(data, dict) else None
        timing = Timing(started=started, first_token=None, finished=self._clock())
        return Completion(text, build_usage(
            usage, timings, timing, fallback_prompt=lambda: self.count_tokens(messages),
            fallback_completion=estimate_tokens([Message("assistant", text)])))

    def _http_error(self, response: requests.Response, shown: str) -> ProviderError:
        body = self._snippet(_read_body(response))
        kind = classify(response.status_code, body)
        message = f"{shown} answered HTTP {response.status_code}: {body}"
        if kind is FailureKind.CONTEXT_LENGTH:
            return ContextLengthExceeded(f"{message}; {ADVICE[kind]}")
        if kind in ADVICE:
            message = f"{message}; {ADVICE[kind]}"
        return _Failed(message, kind=kind,
                       retry_after_s=retry_after(response.headers.get("Retry-After")))

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        return headers

    def _snippet(self, body: str) -> str:
        text = " ".join(body.split())[:_BODY_SNIPPET]
        # Some proxies echo the request headers back in their error pages.
        if self._api_key:
            text = text.replace(self._api_key, "[redacted]")
        return text or "(empty body)"


def _final(exc: _Failed, attempts: int, elapsed: float) -> ProviderError:
    """The error the caller sees: the last attempt's, saying how many were made."""
    message = str(exc)
    if attempts > 1:
        message += f" (gave up after {attempts} attempts in {elapsed:.1f}s)"
    return ProviderError(message, kind=exc.kind, retryable=exc.retryable)


def _bounded(lines: Iterator[Any], shown: str) -> Iterator[str]:
    """The stream's lines as text, stopping a server that sends more than any reply needs."""
    total = 0
    for line in lines:
        text = line.decode("utf-8", "replace") if isinstance(line, bytes) else str(line)
        total += len(text)
        if total > _MAX_REPLY_CHARS:
            raise ProviderError(f"{shown} streamed more than {_MAX_REPLY_CHARS} characters",
                                kind=FailureKind.BAD_RESPONSE)
        yield text


def _read_body(response: requests.Response) -> str:
    try:
        return response.text
    except requests.RequestException:
        return ""


def _public_url(url: str) -> str:
    """``url`` without user:password and query, which may carry credentials."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))
