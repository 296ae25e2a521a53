"""The ``replay`` provider: answers from a recorded transcript, for tests and demos.

A transcript is a YAML list; each item is a reply string or a mapping with a ``reply`` string
(other keys, such as a note on what the reply is for, are ignored). Reply *n* answers the
*n*-th call, whatever the messages are.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from bot.agent.llm import Completion, Message, Usage
from bot.errors import ModelError


class ReplayProvider:
    """Returns the transcript's replies in order; runs out with a ModelError."""

    name = "replay"

    def __init__(self, transcript: Path) -> None:
        self._transcript = Path(transcript)
        # Loaded up front so that a bad transcript fails at start, not in the middle of a job.
        self._replies = _load(self._transcript)
        self._next = 0

    def complete(
        self, messages: list[Message], *, max_tokens: int, temperature: float
    ) -> Completion:
        """The next recorded reply; ``max_tokens`` and ``temperature`` are ignored."""
        if self._next >= len(self._replies):
            raise ModelError(f"transcript {self._transcript} has no reply #{self._next + 1}")
        text = self._replies[self._next]
        self._next += 1
        # Whitespace-split words stand in for tokens: enough for budgets and dashboards.
        prompt_tokens = sum(len(message.content.split()) for message in messages)
        return Completion(
            text=text, usage=Usage(prompt_tokens=prompt_tokens, completion_tokens=len(text.split()))
        )


def _load(path: Path) -> list[str]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ModelError(f"transcript {path} cannot be read: {exc.strerror}") from exc
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ModelError(f"transcript {path} is not valid YAML: {exc}") from exc
    if not isinstance(data, list):
        raise ModelError(f"transcript {path} must be a YAML list of replies")
    return [_reply(path, number, item) for number, item in enumerate(data, start=1)]


def _reply(path: Path, number: int, item: object) -> str:
    if isinstance(item, str):
        return item
    if isinstance(item, dict) and isinstance(item.get("reply"), str):
        return str(item["reply"])
    raise ModelError(
        f"transcript {path}: item #{number} must be a string or a mapping with a 'reply' string"
    )
