"""The LLM provider seam.

Providers: ``replay`` (answers from a recorded transcript), ``llama-cpp`` (an embedded GGUF
model through llama-cpp-python) and ``openai`` (any OpenAI-compatible chat-completions server).
Every provider raises ``ModelError`` for a failure, never a library error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Message:
    role: str  # "system" | "user" | "assistant"
    content: str


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass(frozen=True)
class Completion:
    text: str
    usage: Usage


class Provider(Protocol):
    """A chat model."""

    name: str

    def complete(
        self, messages: list[Message], *, max_tokens: int, temperature: float
    ) -> Completion:
        """The model's reply to ``messages``. Raises ``ModelError``."""
