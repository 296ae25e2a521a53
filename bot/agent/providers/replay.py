"""The ``replay`` provider: answers from a recorded transcript, for tests and demos.

A transcript is a YAML list; each item is a reply string or a mapping with a ``reply`` string
and optionally ``when``: text that must appear in the conversation for that reply to be used
(so a later attempt, e.g. a ``/revise`` whose task carries the feedback, gets its own replies).
Each call takes the first unused reply whose ``when`` matches (a reply without ``when``
always matches); other keys, such as a note, are ignored.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from bot.agent.llm import Completion, Message, Usage, estimate_tokens
from bot.errors import ModelError

DEFAULT_CONTEXT_WINDOW = 4096


class ReplayProvider:
    """Returns the transcript's replies in order; runs out with a ModelError."""

    name = "replay"

    def __init__(self, transcript: Path, context_window: int = DEFAULT_CONTEXT_WINDOW) -> None:
        self._transcript = Path(transcript)
        self._context_window = context_window
        # Loaded up front so that a bad transcript fails at start, not in the middle of a job.
        self._replies = _load(self._transcript)
        self._used: set[int] = set()

    def complete(
        self, messages: list[Message], *, max_tokens: int, temperature: float
    ) -> Completion:
        """The next recorded reply; ``max_tokens`` and ``temperature`` are ignored."""
        conversation = "\n".join(message.content for message in messages)
        index = next((i for i, (when, _) in enumerate(self._replies)
                      if i not in self._used and (when is None or when in conversation)), None)
        if index is None:
            raise ModelError(
                f"transcript {self._transcript} has no reply #{len(self._used) + 1}")
        self._used.add(index)
        text = self._replies[index][1]
        # The documented estimate stands in for tokens: enough for budgets and dashboards.
        return Completion(
            text=text,
            usage=Usage(
                prompt_tokens=self.count_tokens(messages),
                completion_tokens=estimate_tokens([Message("assistant", text)]),
            ),
        )

    def context_window(self) -> int:
        """The configured window (``llm.context_window``); a transcript has no model."""
        return self._context_window

    def count_tokens(self, messages: list[Message]) -> int:
        """The estimate of ``bot.agent.llm.estimate_tokens`` (characters / 3.5, rounded up)."""
        return estimate_tokens(messages)


def _load(path: Path) -> list[tuple[str | None, str]]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ModelError(f"transcript {path} cannot be read: {exc.strerror}") from exc
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ModelError(f"transcript {path} is not valid YAML: {exc}") from exc
    if not isinstance(data, list):
        raise ModelError(f"transcript {path} must be a YAML list of replies")
    return [_reply(path, number, item) for number, item in enumerate(data, start=1)]


def _reply(path: Path, number: int, item: object) -> tuple[str | None, str]:
    if isinstance(item, str):
        return None, item
    if isinstance(item, dict) and isinstance(item.get("reply"), str):
        when = item.get("when")
        if when is not None and not isinstance(when, str):
            raise ModelError(f"transcript {path}: item #{number}: 'when' must be text")
        return when, str(item["reply"])
    raise ModelError(
        f"transcript {path}: item #{number} must be a string or a mapping with a 'reply' string"
    )
