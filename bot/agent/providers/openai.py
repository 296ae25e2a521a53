"""The ``openai`` provider: any server speaking the OpenAI chat-completions API.

vLLM, Ollama, llama.cpp's server and hosted APIs all answer ``POST {base_url}/chat/completions``.
Every failure becomes a ModelError; the API key never appears in one.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests

from bot.agent.llm import Completion, Message, Usage
from bot.errors import ModelError

_BODY_SNIPPET = 300
# Worth a retry: the server is busy, rate-limiting or briefly down.
_RETRYABLE_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


class OpenAIProvider:
    """A chat model behind an OpenAI-compatible HTTP API."""

    name = "openai"

    def __init__(
        self, base_url: str, model: str, api_key: str | None = None, timeout_s: float = 120
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self._api_key = api_key
        self.timeout_s = timeout_s

    def __repr__(self) -> str:
        # Shown in logs and tracebacks: the key stays out, and so do credentials in the URL.
        return f"OpenAIProvider(base_url={_public_url(self.base_url)!r}, model={self.model!r})"

    def complete(
        self, messages: list[Message], *, max_tokens: int, temperature: float
    ) -> Completion:
        """POST the conversation; the reply is ``choices[0].message.content``."""
        url = _endpoint(self.base_url)
        shown = _public_url(url)
        headers = {"Content-Type": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        payload = {
            "model": self.model,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "max_tokens": max_tokens,
            "temperature": temperature,
        }
        try:
            response = requests.post(url, json=payload, headers=headers, timeout=self.timeout_s)
        except requests.Timeout as exc:
            raise ModelError(
                f"{shown} did not answer within {self.timeout_s:g}s", retryable=True
            ) from exc
        except requests.ConnectionError as exc:
            raise ModelError(f"cannot connect to {shown}", retryable=True) from exc
        except requests.RequestException as exc:
            raise ModelError(f"request to {shown} failed: {type(exc).__name__}") from exc
        if not 200 <= response.status_code < 300:
            raise ModelError(
                f"{shown} answered HTTP {response.status_code}: {self._snippet(response.text)}",
                retryable=response.status_code in _RETRYABLE_STATUS,
            )
        try:
            data = response.json()
        except ValueError as exc:
            raise ModelError(f"{shown} answered with a body that is not JSON") from exc
        return completion_from_response(data, source=shown)

    def _snippet(self, body: str) -> str:
        text = " ".join(body.split())[:_BODY_SNIPPET]
        # Some proxies echo the request headers back in their error pages.
        if self._api_key:
            text = text.replace(self._api_key, "[redacted]")
        return text or "(empty body)"


def completion_from_response(data: Any, *, source: str) -> Completion:
    """A Completion from an OpenAI-shaped chat-completion response (a decoded JSON object)."""
    try:
        text = data["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError) as exc:
        raise ModelError(f"{source} answered without choices[0].message.content") from exc
    if not isinstance(text, str):
        raise ModelError(f"{source} answered without choices[0].message.content")
    usage = data.get("usage") if isinstance(data, dict) else None
    return Completion(text=text, usage=_usage(usage))


def _usage(usage: Any) -> Usage:
    if not isinstance(usage, dict):
        return Usage()
    return Usage(
        prompt_tokens=_count(usage.get("prompt_tokens")),
        completion_tokens=_count(usage.get("completion_tokens")),
    )


def _count(value: Any) -> int:
    return value if isinstance(value, int) and value >= 0 else 0


def _endpoint(base_url: str) -> str:
    """``{base_url}/chat/completions``, keeping a query (Azure-style ``?api-version=``)."""
    parts = urlsplit(base_url)
    path = parts.path.rstrip("/") + "/chat/completions"
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, parts.fragment))


def _public_url(url: str) -> str:
    """``url`` without user:password and query, which may carry credentials."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))
