"""What an OpenAI-compatible server says about its model: context window and token counts.

Not every server says. Asked, in order, and the first answer wins:

context window
    llama.cpp's server: ``GET {root}/props`` → ``default_generation_settings.n_ctx`` (the
    window it was started with, ``-c``); vLLM: ``GET {base_url}/models`` → the entry of our
    model, ``max_model_len``. Otherwise None and the caller falls back to the configuration.
token count
    llama.cpp's server: ``POST {root}/apply-template`` renders the chat template, then
    ``POST {root}/tokenize`` counts it; vLLM: ``POST {root}/tokenize`` with ``messages`` →
    ``count``. Otherwise None and the caller estimates.

``{root}`` is ``base_url`` without its trailing ``/v1``. A probe that fails (refused, 404,
odd JSON) answers None; it never raises, because these are hints, not the model call. The
answers are untrusted: anything but a positive integer is ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests

from bot.agent.llm import Message

# Probes are cheap questions; a server slow to answer them is treated as not answering.
PROBE_READ_TIMEOUT_S = 10.0


def join(base_url: str, path: str) -> str:
    """``base_url`` + ``/path``, keeping a query (Azure-style ``?api-version=``)."""
    parts = urlsplit(base_url)
    joined = parts.path.rstrip("/") + "/" + path.lstrip("/")
    return urlunsplit((parts.scheme, parts.netloc, joined, parts.query, parts.fragment))


def server_root(base_url: str) -> str:
    """``base_url`` without a trailing ``/v1``: where llama.cpp and vLLM serve their extras."""
    parts = urlsplit(base_url)
    path = parts.path.rstrip("/")
    if path.endswith("/v1"):
        path = path[: -len("/v1")]
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, parts.fragment))


class ServerProbe:
    """Asks one server the questions above, with the provider's session and headers."""

    def __init__(
        self,
        session: requests.Session,
        base_url: str,
        model: str,
        headers: Mapping[str, str],
        connect_timeout_s: float,
    ) -> None:
        self._session = session
        self._base_url = base_url
        self._root = server_root(base_url)
        self._model = model
        self._headers = dict(headers)
        self._timeout = (connect_timeout_s, PROBE_READ_TIMEOUT_S)

    def context_window(self) -> int | None:
        """The served window in tokens, or None when the server does not say."""
        props = self._get(join(self._root, "props"))
        if isinstance(props, dict):
            settings = props.get("default_generation_settings")
            window = _positive(settings.get("n_ctx")) if isinstance(settings, dict) else None
            window = window or _positive(props.get("n_ctx"))
            if window:
                return window
        models = self._get(join(self._base_url, "models"))
        entries = models.get("data") if isinstance(models, dict) else None
        if not isinstance(entries, list):
            return None
        usable = [e for e in entries if isinstance(e, dict)]
        ours = [e for e in usable if e.get("id") == self._model]
        chosen = ours or (usable if len(usable) == 1 else [])
        return _positive(chosen[0].get("max_model_len")) if chosen else None

    def llama_cpp_tokens(self, messages: list[Message]) -> int | None:
        """llama.cpp's count of the chat-template-rendered prompt, or None."""
        rendered = self._post(join(self._root, "apply-template"), {"messages": _wire(messages)})
        prompt = rendered.get("prompt") if isinstance(rendered, dict) else None
        if not isinstance(prompt, str):
            return None
        tokens = self._post(join(self._root, "tokenize"),
                            {"content": prompt, "add_special": True, "parse_special": True})
        listed = tokens.get("tokens") if isinstance(tokens, dict) else None
        return len(listed) if isinstance(listed, list) else None

    def vllm_tokens(self, messages: list[Message]) -> int | None:
        """vLLM's count of the chat-template-rendered prompt, or None."""
        answer = self._post(join(self._root, "tokenize"),
                            {"model": self._model, "messages": _wire(messages)})
        return _positive(answer.get("count")) if isinstance(answer, dict) else None

    def _get(self, url: str) -> Any:
        try:
            response = self._session.get(url, headers=self._headers, timeout=self._timeout)
        except requests.RequestException:
            return None
        return _json(response)

    def _post(self, url: str, body: dict[str, Any]) -> Any:
        try:
            response = self._session.post(url, json=body, headers=self._headers,
                                          timeout=self._timeout)
        except requests.RequestException:
            return None
        return _json(response)


def _json(response: requests.Response) -> Any:
    if response.status_code != 200:
        return None
    try:
        return response.json()
    except ValueError:
        return None


def _wire(messages: list[Message]) -> list[dict[str, str]]:
    return [{"role": m.role, "content": m.content} for m in messages]


def _positive(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    return None
