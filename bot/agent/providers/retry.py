"""Which failures of an HTTP model server are worth another try, and how long to wait: a table.

Pure functions over values (status codes, bodies, header values, attempt numbers); the
``openai`` provider does the IO. The table:

=====================  =============================  =====  ==================================
failure                 kind                          retry  wait
=====================  =============================  =====  ==================================
429                     rate_limited                  yes    Retry-After (bounded), else backoff
500, 502, 503, 504      server_error                  yes    backoff
other 5xx, 408          server_error                  yes    backoff
refused, reset, timeout network                       yes    backoff
400, 422 (and 413)      bad_request                   no     -
  ... saying the prompt is too long: context_length   no     -
401, 403                auth                          no     -
404                     not_found                     no     -
other 4xx               bad_request                   no     -
=====================  =============================  =====  ==================================

Backoff is exponential with jitter: ``base * 2**(attempt-1)``, capped, times a factor in
[0.5, 1.0) so that workers that failed together do not retry together.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from bot.agent.llm import FailureKind

_STATUS: dict[int, FailureKind] = {
    400: FailureKind.BAD_REQUEST,
    401: FailureKind.AUTH,
    403: FailureKind.AUTH,
    404: FailureKind.NOT_FOUND,
    408: FailureKind.SERVER,
    413: FailureKind.BAD_REQUEST,
    422: FailureKind.BAD_REQUEST,
    429: FailureKind.RATE_LIMITED,
    500: FailureKind.SERVER,
    502: FailureKind.SERVER,
    503: FailureKind.SERVER,
    504: FailureKind.SERVER,
}

RETRYABLE = frozenset({FailureKind.RATE_LIMITED, FailureKind.SERVER, FailureKind.NETWORK})

# What the operator should change, per kind that a retry cannot fix.
ADVICE: dict[FailureKind, str] = {
    FailureKind.BAD_REQUEST: "the server refused the request; check llm.model and that the "
    "server supports chat completions with these parameters",
    FailureKind.AUTH: "check llm.api_key (FORGEBOT_LLM__API_KEY) and the key's access to "
    "the model",
    FailureKind.NOT_FOUND: "check llm.base_url (usually ends in /v1) and llm.model",
    FailureKind.CONTEXT_LENGTH: "the prompt does not fit the model's context window; lower "
    "agent.context_budget_chars or llm.max_tokens, or use a model with a larger window",
    FailureKind.BAD_RESPONSE: "the server does not speak the OpenAI chat-completions API",
}

# Servers word it differently: OpenAI "maximum context length", vLLM "This model's maximum
# context length", llama.cpp "exceeds the available context size" / exceed_context_size_error,
# Ollama and others "context length", "too many tokens", "prompt is too long".
_CONTEXT_LENGTH = re.compile(
    r"context[_ ](length|size|window)|exceed_context|too many tokens|prompt is too long"
    r"|input is too long|maximum (context|sequence) length",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class RetryPolicy:
    """Bounds of the retries of one call.

    ``max_attempts`` counts the first try; ``budget_s`` bounds the whole call, waits
    included: a wait that would end past it is not taken. A Retry-After longer than
    ``max_retry_after_s`` is not waited for either.
    """

    max_attempts: int = 4
    budget_s: float = 300.0
    base_delay_s: float = 1.0
    max_delay_s: float = 30.0
    max_retry_after_s: float = 60.0


def classify(status: int, body: str) -> FailureKind:
    """The kind of an HTTP error answer, from its status code and (for a 4xx) its body."""
    if 400 <= status < 500 and status != 429 and _CONTEXT_LENGTH.search(body):
        return FailureKind.CONTEXT_LENGTH
    kind = _STATUS.get(status)
    if kind is not None:
        return kind
    return FailureKind.SERVER if status >= 500 else FailureKind.BAD_REQUEST


def says_context_length(text: str) -> bool:
    """Whether an error text (a stream's error event, a library message) is about the window."""
    return bool(_CONTEXT_LENGTH.search(text))


def backoff(attempt: int, policy: RetryPolicy, jitter: float) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based); ``jitter`` in [0, 1)."""
    raw = policy.base_delay_s * float(2 ** max(attempt - 1, 0))
    return min(raw, policy.max_delay_s) * (0.5 + 0.5 * min(max(jitter, 0.0), 1.0))


def retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date); None if absent or
    unreadable. A date in the past is 0."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(float((when - (now or datetime.now(UTC))).total_seconds()), 0.0)


def wait_before_retry(
    kind: FailureKind,
    attempt: int,
    policy: RetryPolicy,
    *,
    retry_after_s: float | None,
    elapsed_s: float,
    jitter: float,
) -> float | None:
    """Seconds to wait before attempt ``attempt + 1``, or None when there is none to make:
    the kind is not retryable, the attempts are used up, the server asks for a longer wait
    than ``max_retry_after_s``, or the wait would overrun the time budget."""
    if kind not in RETRYABLE or attempt >= policy.max_attempts:
        return None
    if kind is FailureKind.RATE_LIMITED and retry_after_s is not None:
        if retry_after_s > policy.max_retry_after_s:
            return None
        delay = retry_after_s
    else:
        delay = backoff(attempt, policy, jitter)
    if elapsed_s + delay > policy.budget_s:
        return None
    return delay
