"""The LLM provider seam.

Providers: ``replay`` (answers from a recorded transcript), ``llama-cpp`` (an embedded GGUF
model through llama-cpp-python) and ``openai`` (any OpenAI-compatible chat-completions server).

Every provider raises ``ModelError`` for a failure, never a library error. Failures a caller
may want to tell apart are ``ProviderError`` (a ``ModelError`` with a ``kind`` from
``FailureKind``); a prompt longer than the model's window is ``ContextLengthExceeded``, so the
agent loop can name that outcome and shrink its context instead of retrying blindly.

Errors::

    ModelError                   (bot.errors) any model failure; ``retryable`` says
    └── ProviderError            ``kind``: a FailureKind
        └── ContextLengthExceeded   kind == FailureKind.CONTEXT_LENGTH, never retryable
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, runtime_checkable

from bot.errors import ModelError

# Characters per token of the documented estimate: English prose and source code run at about
# 3.5-4 characters per token with BPE tokenizers; 3.5 errs on the side of counting too many,
# which is the safe side for a context budget.
CHARS_PER_TOKEN = 3.5


@dataclass(frozen=True)
class Message:
    role: str  # "system" | "user" | "assistant"
    content: str


@dataclass(frozen=True)
class Usage:
    """What one call cost. Zero means "not reported" for every field.

    ``cached_tokens`` are prompt tokens the provider did not evaluate again because they were
    a prefix of an earlier prompt (llama.cpp's KV cache, a server's prompt cache).
    ``seconds`` is the wall time of the whole call; ``prompt_seconds`` the part spent reading
    the prompt (time to the first token when streaming); ``generation_seconds`` the part
    spent producing the completion, which ``tokens_per_second`` divides by.
    """

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    seconds: float = 0.0
    prompt_seconds: float = 0.0
    generation_seconds: float = 0.0

    @property
    def tokens_per_second(self) -> float:
        """Completion tokens per second of generation (0.0 when either is unknown)."""
        if self.completion_tokens <= 0 or self.generation_seconds <= 0:
            return 0.0
        return self.completion_tokens / self.generation_seconds


@dataclass(frozen=True)
class Completion:
    text: str
    usage: Usage


class FailureKind(StrEnum):
    """Why a model call failed: the vocabulary of the retry table and of the loop's outcome."""

    RATE_LIMITED = "rate_limited"  # 429: retried, honouring Retry-After
    SERVER = "server_error"  # 5xx: retried with backoff
    NETWORK = "network"  # refused, reset or timed out: retried with backoff
    BAD_REQUEST = "bad_request"  # 400/422: the request is wrong; no retry
    AUTH = "auth"  # 401/403: the key is missing, wrong or lacks access; no retry
    NOT_FOUND = "not_found"  # 404: wrong base_url or model name; no retry
    CONTEXT_LENGTH = "context_length"  # the prompt does not fit the model's window
    BAD_RESPONSE = "bad_response"  # an answer that is not a chat completion
    LOCAL = "local"  # the embedded model could not load or run


class ProviderError(ModelError):
    """A ModelError that says what kind of failure it was."""

    def __init__(self, message: str, *, kind: FailureKind, retryable: bool = False) -> None:
        super().__init__(message, retryable=retryable)
        self.kind = kind


class ContextLengthExceeded(ProviderError):
    """The prompt (plus the reply asked for) is longer than the model's context window."""

    def __init__(self, message: str) -> None:
        super().__init__(message, kind=FailureKind.CONTEXT_LENGTH, retryable=False)


class Provider(Protocol):
    """A chat model.

    ``complete`` is the only call that must reach the model; ``context_window`` and
    ``count_tokens`` may load it (llama-cpp) or ask the server once (openai) and then answer
    from memory, so the loop may call them before every request.
    """

    name: str

    def complete(
        self, messages: list[Message], *, max_tokens: int, temperature: float
    ) -> Completion:
        """The model's reply to ``messages``. Raises ``ModelError`` (``ProviderError`` when
        the kind is known, ``ContextLengthExceeded`` when the prompt does not fit)."""

    def context_window(self) -> int:
        """The model's real context window in tokens (prompt and reply together)."""

    def count_tokens(self, messages: list[Message]) -> int:
        """How many prompt tokens ``messages`` make for this model, as exactly as the provider
        can tell (each provider's docstring says how)."""


@runtime_checkable
class Closable(Protocol):
    """A provider holding resources (a loaded model, an HTTP session) to free at the end."""

    def close(self) -> None:
        """Free the resources; the provider may be used again afterwards and reloads."""


def estimate_tokens(messages: list[Message]) -> int:
    """The documented estimate: all message characters / 3.5, rounded up.

    Used where no tokenizer is at hand (the replay provider, a server without ``/tokenize``).
    It ignores the chat template's few tokens per message and overcounts code slightly.
    """
    return math.ceil(sum(len(message.content) for message in messages) / CHARS_PER_TOKEN)
