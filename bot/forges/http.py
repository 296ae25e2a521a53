"""The one resilient HTTP layer every forge adapter uses.

API (stable; GitHub, GitLab and Gitea adapters depend on it)::

    make_session(*, host_key, timeout_s, max_retries, user_agent="forgebot",
                 sleep=time.sleep, clock=time.monotonic, **tuning) -> requests.Session
    install(session, *, host_key, timeout_s, max_retries, user_agent="forgebot",
            **same) -> the same session, with a ResilientAdapter on http:// and https://
            (for sessions a library builds itself, e.g. github3's GitHubSession)
    check(response, what) -> response        ForgeError for any non-2xx answer
    ResilientAdapter(HTTPAdapter)            what the two above mount
    BreakerRegistry / DEFAULT_BREAKERS       one CircuitBreaker per host_key
    retry_after_s(headers, now, status=0) -> float | None   the server's "wait", if any

``tuning`` (keyword-only, all optional): ``wall_clock`` (epoch seconds, for ``Retry-After``
dates and rate-limit resets; ``time.time``), ``jitter`` (a float in [0, 1);
``random.random``), ``backoff_base_s`` (0.5), ``backoff_cap_s`` (30), ``max_wait_s`` (120: a
server-requested wait longer than this is not slept, the call fails at once with
``ForgeError(retryable=True)`` so the job is rescheduled), ``breaker_threshold`` (5),
``breaker_cooldown_s`` (60), ``rate_limit_wait_s`` (0: the wait a forge documents for a
rate limit that does not say when to come back; GitHub's adapter sets 60) and ``breakers``
(a registry, for tests).

What a request through the session gets:

- a default timeout (``timeout_s``) when the caller gives none;
- up to ``max_retries`` retries. Idempotent methods (GET, HEAD, OPTIONS, PUT, DELETE) are
  retried on 429, 500, 502, 503, 504, rate-limited 403s, timeouts, connection errors and
  resets. POST and PATCH are retried only when the request certainly never reached the
  server (the connection could not be opened) or when the server refused it and said when
  to come back (429 or a rate-limited 403 with ``Retry-After`` or a reset header, 503 with
  ``Retry-After``): a second pull request or comment is worse than a failed job;
- waits: ``Retry-After`` (seconds or an HTTP date), else GitHub's ``X-RateLimit-Reset``
  when ``X-RateLimit-Remaining`` is 0, else GitLab's ``RateLimit-Reset``; else, for a rate
  limit that says nothing (GitHub's secondary limits), ``rate_limit_wait_s`` when set, and
  then a POST is resent too, since the forge turned it away; otherwise exponential backoff
  with full jitter. A response that says the quota is spent
  (remaining 0) also holds back the *next* request to that host until the reset;
- a circuit breaker per ``host_key``: after ``breaker_threshold`` consecutive failed
  attempts (transport errors, 500/502/503/504) it opens, and every request fails at once
  with ``ForgeError(retryable=True)`` until ``breaker_cooldown_s`` have passed; then one
  trial request is let through (half-open) and its outcome closes or re-opens it;
- transport failures surface as ``ForgeError`` (``retryable`` set, ``from`` the requests
  error); HTTP answers are returned as they are, and :func:`check` turns a non-2xx one into
  ``ForgeError``. Libraries that take a session (github3.py, python-gitlab) see our
  ``ForgeError`` pass through them; turn their own retrying off so attempts don't multiply.

Nothing here logs headers, bodies or query strings, and error messages name only the
method, host and path. Put tokens in headers, never in the URL.
"""

from __future__ import annotations

import enum
import json
import logging
import random
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ConnectTimeoutError, MaxRetryError

from bot.errors import ForgeError

log = logging.getLogger(__name__)

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})
"""Methods a server must treat the same however often they arrive (RFC 9110 9.2.2)."""

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
BREAKER_STATUSES = frozenset({500, 502, 503, 504})
"""Answers that say the host itself is unwell (a 429 or a 404 say it is fine)."""

_RETRYABLE_ERROR_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
_EPOCH_FLOOR = 1_000_000_000.0  # below this a "reset" is a delay in seconds, not an epoch
_MESSAGE_MAX = 300
_MIN_SECRET_LEN = 4
_SECRET_HEADERS = ("Authorization", "PRIVATE-TOKEN", "JOB-TOKEN", "Cookie")
_SECRET_PARAM_WORDS = ("token", "key", "secret", "password", "sig")

Headers = Mapping[str, str]
TimeoutArg = float | tuple[float, float] | tuple[float, None] | None


# --------------------------------------------------------------------------- waits


def retry_after_s(headers: Headers, now: float, status: int = 0) -> float | None:
    """Seconds the server asked us to wait, or None when it did not say.

    ``headers`` must look names up case-insensitively (``requests`` headers do); ``now``
    is the wall clock in epoch seconds. In order: ``Retry-After`` (delta seconds or an
    HTTP date); GitHub's ``X-RateLimit-Reset`` (epoch) when ``X-RateLimit-Remaining`` is 0;
    GitLab's ``RateLimit-Reset`` (epoch) when ``RateLimit-Remaining`` is 0 or the answer is
    a 429 (GitLab sends these headers on ordinary answers too, where they mean nothing).
    Never negative.
    """
    retry_after = headers.get("Retry-After")
    if retry_after is not None:
        wait = _parse_retry_after(retry_after, now)
        if wait is not None:
            return wait
    if headers.get("X-RateLimit-Remaining", "").strip() == "0":
        wait = _parse_reset(headers.get("X-RateLimit-Reset"), now)
        if wait is not None:
            return wait
    if status == 429 or headers.get("RateLimit-Remaining", "").strip() == "0":
        return _parse_reset(headers.get("RateLimit-Reset"), now)
    return None


def _parse_retry_after(value: str, now: float) -> float | None:
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # an HTTP date is always GMT; email.utils leaves some naive
        return None
    return max(0.0, when.timestamp() - now)


def _parse_reset(value: str | None, now: float) -> float | None:
    if value is None:
        return None
    try:
        reset = float(value.strip())
    except ValueError:
        return None
    # The IETF RateLimit draft sends a delay; GitHub and GitLab send an epoch.
    return max(0.0, reset - now if reset >= _EPOCH_FLOOR else reset)


def is_rate_limited(response: requests.Response) -> bool:
    """True for a 429, or a 403 that GitHub uses for its primary and secondary limits: with
    ``Retry-After``, a spent ``X-RateLimit-Remaining``, or a message that names a rate limit
    (a secondary limit may come with neither header)."""
    if response.status_code == 429:
        return True
    headers = response.headers
    if response.status_code != 403:
        return False
    if headers.get("X-RateLimit-Remaining", "").strip() == "0" or "Retry-After" in headers:
        return True
    return _RATE_LIMIT_MESSAGE.search(response.content[:_MESSAGE_BYTES]) is not None


# GitHub: "You have exceeded a secondary rate limit", "API rate limit exceeded", and the
# older "abuse detection mechanism".
_RATE_LIMIT_MESSAGE = re.compile(rb"(?i)rate limit|abuse detection")
_MESSAGE_BYTES = 4096


def _quota_spent(headers: Headers) -> bool:
    return any(
        headers.get(name, "").strip() == "0"
        for name in ("X-RateLimit-Remaining", "RateLimit-Remaining")
    )


# --------------------------------------------------------------------------- breaker


class BreakerState(enum.Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


class CircuitBreaker:
    """Consecutive-failure circuit breaker for one host; safe to share between threads."""

    def __init__(
        self, name: str, *, threshold: int, cooldown_s: float, clock: Callable[[], float]
    ) -> None:
        self.name = name
        self._threshold = max(1, threshold)
        self._cooldown_s = cooldown_s
        self._clock = clock
        self._lock = threading.Lock()
        self._failures = 0
        self._opened_at = 0.0
        self._state = BreakerState.CLOSED
        self._trial_running = False
        self._hold_until = 0.0  # monotonic time before which the host's quota is spent

    @property
    def state(self) -> BreakerState:
        """The current state (OPEN turns HALF_OPEN only when a request asks to pass)."""
        return self._state

    def admit(self) -> float | None:
        """None when a request may go now; else the seconds until one may try again."""
        with self._lock:
            if self._state is BreakerState.CLOSED:
                return None
            if self._state is BreakerState.OPEN:
                left = self._opened_at + self._cooldown_s - self._clock()
                if left > 0:
                    return left
                self._state = BreakerState.HALF_OPEN
            if self._trial_running:  # one trial at a time while half-open
                return self._cooldown_s
            self._trial_running = True
            return None

    def success(self) -> None:
        """The host answered sanely: close the breaker."""
        with self._lock:
            self._failures = 0
            self._state = BreakerState.CLOSED
            self._trial_running = False

    def failure(self) -> None:
        """The host failed one attempt: count it, open the breaker at the threshold."""
        with self._lock:
            self._failures += 1
            self._trial_running = False
            if self._state is BreakerState.HALF_OPEN or self._failures >= self._threshold:
                if self._state is not BreakerState.OPEN:
                    log.warning(
                        "circuit breaker of %s opened after %d failures", self.name, self._failures
                    )
                self._state = BreakerState.OPEN
                self._opened_at = self._clock()

    def release(self) -> None:
        """The attempt said nothing about the host's health (e.g. a TLS setup error)."""
        with self._lock:
            self._trial_running = False

    def hold(self, seconds: float) -> None:
        """The host's rate-limit quota is spent for ``seconds``: hold requests back."""
        with self._lock:
            self._hold_until = max(self._hold_until, self._clock() + seconds)

    def held_for(self) -> float:
        """Seconds left until the rate-limit quota resets (0 when it is not spent)."""
        with self._lock:
            return max(0.0, self._hold_until - self._clock())


class BreakerRegistry:
    """One :class:`CircuitBreaker` per host key, created on first use."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._breakers: dict[str, CircuitBreaker] = {}

    def get(
        self, host_key: str, *, threshold: int, cooldown_s: float, clock: Callable[[], float]
    ) -> CircuitBreaker:
        """The breaker of ``host_key``; the first caller's settings make it."""
        with self._lock:
            breaker = self._breakers.get(host_key)
            if breaker is None:
                breaker = CircuitBreaker(
                    host_key, threshold=threshold, cooldown_s=cooldown_s, clock=clock
                )
                self._breakers[host_key] = breaker
            return breaker


DEFAULT_BREAKERS = BreakerRegistry()
"""The process-wide registry: every session for one host shares that host's breaker
(a GitHub adapter may build one session per App installation, all on one host)."""


# --------------------------------------------------------------------------- policy


class Failure(enum.Enum):
    """Why an attempt got no HTTP answer."""

    CONNECT = "could not connect"  # the request never left: safe to resend any method
    TIMEOUT = "timed out"  # it may have been processed
    RESET = "connection broken"  # it may have been processed
    TLS = "TLS error"  # a certificate or protocol problem: retrying will not help
    OTHER = "request failed"


# Checked in order: ConnectTimeout is also a Timeout and a ConnectionError.
_FAILURE_BY_TYPE: tuple[tuple[type[requests.RequestException], Failure], ...] = (
    (requests.exceptions.SSLError, Failure.TLS),
    (requests.exceptions.ConnectTimeout, Failure.CONNECT),
    (requests.Timeout, Failure.TIMEOUT),
    (requests.exceptions.ChunkedEncodingError, Failure.RESET),
)


def classify(exc: requests.RequestException) -> Failure:
    """Sort a requests error by whether the request could have reached the server."""
    for kind, failure in _FAILURE_BY_TYPE:
        if isinstance(exc, kind):
            return failure
    if isinstance(exc, requests.ConnectionError):
        reason = exc.args[0] if exc.args else None
        if isinstance(reason, MaxRetryError) and isinstance(reason.reason, ConnectTimeoutError):
            # urllib3's NewConnectionError (refused, unreachable, DNS) is a ConnectTimeoutError.
            return Failure.CONNECT
        return Failure.RESET
    return Failure.OTHER


@dataclass(frozen=True)
class RetryPolicy:
    """How many times and how long to wait; ``jitter`` returns a float in [0, 1)."""

    max_retries: int
    backoff_base_s: float = 0.5
    backoff_cap_s: float = 30.0
    max_wait_s: float = 120.0
    # The wait a forge documents for a rate limit that does not say when to come back
    # (GitHub: "wait for at least one minute"); 0: back off as for any other error.
    rate_limit_wait_s: float = 0.0

    def backoff(self, attempt: int, jitter: float) -> float:
        """Full jitter: uniform in [0, min(cap, base * 2**attempt))."""
        return jitter * min(self.backoff_cap_s, self.backoff_base_s * 2.0**attempt)


def failure_is_retryable(method: str, failure: Failure) -> bool:
    """Whether an attempt that got no answer may be sent again."""
    if failure is Failure.CONNECT:
        return True
    if failure in (Failure.TIMEOUT, Failure.RESET):
        return method.upper() in IDEMPOTENT_METHODS
    return False


def response_is_retryable(
    method: str, response: requests.Response, server_wait: float | None
) -> bool:
    """Whether an answer may be retried; ``server_wait`` is what the server asked for."""
    status = response.status_code
    if method.upper() in IDEMPOTENT_METHODS:
        return status in RETRY_STATUSES or is_rate_limited(response)
    # A POST or PATCH may already have made its pull request or comment, unless the server
    # says it turned the request away and when to come back.
    if is_rate_limited(response):
        return server_wait is not None
    return status == 503 and "Retry-After" in response.headers


# --------------------------------------------------------------------------- adapter


class ResilientAdapter(HTTPAdapter):
    """An HTTPAdapter with a default timeout, retries, rate-limit waits and a breaker."""

    def __init__(
        self,
        *,
        host_key: str,
        timeout_s: float,
        policy: RetryPolicy,
        breaker: CircuitBreaker,
        sleep: Callable[[float], None] = time.sleep,
        wall_clock: Callable[[], float] = time.time,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        # urllib3 must not retry on its own: every attempt goes through the policy below.
        super().__init__(max_retries=0)
        self.host_key = host_key
        self.timeout_s = timeout_s
        self.policy = policy
        self.breaker = breaker
        self._sleep = sleep
        self._wall_clock = wall_clock
        self._jitter = jitter

    def send(  # noqa: PLR0917 - HTTPAdapter.send's signature
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: TimeoutArg = None,
        verify: bool | str = True,
        cert: bytes | str | tuple[bytes | str, bytes | str] | None = None,
        proxies: Mapping[str, str] | None = None,
    ) -> requests.Response:
        """Send ``request`` with retries; raise ForgeError when no answer could be had."""
        kwargs: dict[str, Any] = {
            "stream": stream,
            "timeout": self.timeout_s if timeout is None else timeout,
            "verify": verify,
            "cert": cert,
            "proxies": proxies,
        }
        method = (request.method or "GET").upper()
        attempt = 0
        while True:
            self._wait_for_host(request)
            try:
                response = self._attempt(request, kwargs)
            except requests.RequestException as exc:

                failure = self._record_failure(exc)
                if not self._may_retry(attempt, request) or not failure_is_retryable(
                    method, failure
                ):
                    raise ForgeError(
                        f"{_describe(request)}: {failure.value} "
                        f"({type(exc).__name__}, {attempt + 1} attempt(s))",
                        retryable=failure not in (Failure.TLS, Failure.OTHER),
                    ) from exc
                wait = self.policy.backoff(attempt, self._jitter())
                reason = failure.value
            else:
                wait_or_none = self._after_response(request, response, attempt)
                if wait_or_none is None:
                    return response
                response.close()
                wait, reason = wait_or_none, f"HTTP {response.status_code}"
            log.info(
                "retrying %s after %s in %.2fs (retry %d of %d)",
                _describe(request), reason, wait, attempt + 1, self.policy.max_retries,
            )
            self._sleep(wait)
            attempt += 1

    def _attempt(
        self, request: requests.PreparedRequest, kwargs: dict[str, Any]
    ) -> requests.Response:
        try:
            response = super().send(request, **kwargs)
            if not kwargs["stream"]:
                # Read the body here so a connection that breaks mid-body is retried too.
                _ = response.content
        except requests.RequestException:
            raise
        except BaseException:
            # Not the host's fault (a bug, an interrupt): free a half-open trial slot.
            self.breaker.release()
            raise
        return response

    def _wait_for_host(self, request: requests.PreparedRequest) -> None:
        """Fail at once on an open breaker; sleep out a spent quota if it resets soon."""
        left = self.breaker.admit()
        if left is not None:
            raise ForgeError(
                f"{_describe(request)}: {self.host_key} is failing; circuit open, "
                f"next try in {left:.0f}s",
                retryable=True,
            )
        held = self.breaker.held_for()
        if held <= 0:
            return
        if held > self.policy.max_wait_s:
            self.breaker.release()
            raise ForgeError(
                f"{_describe(request)}: rate limit of {self.host_key} spent for {held:.0f}s",
                retryable=True,
            )
        log.info("rate limit of %s spent: waiting %.2fs", self.host_key, held)
        self._sleep(held)

    def _record_failure(self, exc: requests.RequestException) -> Failure:
        failure = classify(exc)
        if failure in (Failure.TLS, Failure.OTHER):
            self.breaker.release()
        else:
            self.breaker.failure()
        return failure

    def _after_response(
        self, request: requests.PreparedRequest, response: requests.Response, attempt: int
    ) -> float | None:
        """Record the answer; the seconds to wait before a retry, or None to return it."""
        if response.status_code in BREAKER_STATUSES:
            self.breaker.failure()
        else:
            self.breaker.success()
        server_wait = retry_after_s(response.headers, self._wall_clock(), response.status_code)
        if server_wait is not None and _quota_spent(response.headers):
            self.breaker.hold(server_wait)
        elif server_wait is None and self.policy.rate_limit_wait_s > 0 \
                and is_rate_limited(response):
            # Limited without a word on when to come back: the forge's documented wait,
            # for every request to the host (the request itself was turned away).
            server_wait = self.policy.rate_limit_wait_s
            self.breaker.hold(server_wait)
        method = (request.method or "GET").upper()
        if not self._may_retry(attempt, request):
            return None
        if not response_is_retryable(method, response, server_wait):
            return None
        if server_wait is None:
            return self.policy.backoff(attempt, self._jitter())
        if server_wait > self.policy.max_wait_s:
            # Sleeping for minutes would pin a worker; the job is retried later instead.
            return None
        return server_wait

    def _may_retry(self, attempt: int, request: requests.PreparedRequest) -> bool:
        # A streamed body (a file, a generator) was consumed by the first attempt.
        replayable = request.body is None or isinstance(request.body, bytes | str)
        return attempt < self.policy.max_retries and replayable


# --------------------------------------------------------------------------- sessions


def install(
    session: requests.Session,
    *,
    host_key: str,
    timeout_s: float,
    max_retries: int,
    user_agent: str = "forgebot",
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    wall_clock: Callable[[], float] = time.time,
    jitter: Callable[[], float] = random.random,
    backoff_base_s: float = 0.5,
    backoff_cap_s: float = 30.0,
    max_wait_s: float = 120.0,
    breaker_threshold: int = 5,
    breaker_cooldown_s: float = 60.0,
    breakers: BreakerRegistry | None = None,
    rate_limit_wait_s: float = 0.0,
) -> requests.Session:
    """Mount a :class:`ResilientAdapter` for ``host_key`` on ``session`` and return it.

    For sessions a library makes itself (github3.py's ``GitHubSession``); otherwise use
    :func:`make_session`. ``host_key`` names the host's shared circuit breaker, e.g.
    ``"github:api.github.com"``.
    """
    registry = DEFAULT_BREAKERS if breakers is None else breakers
    adapter = ResilientAdapter(
        host_key=host_key,
        timeout_s=timeout_s,
        policy=RetryPolicy(
            max_retries=max(0, max_retries),
            backoff_base_s=backoff_base_s,
            backoff_cap_s=backoff_cap_s,
            max_wait_s=max_wait_s,
            rate_limit_wait_s=rate_limit_wait_s,
        ),
        breaker=registry.get(
            host_key, threshold=breaker_threshold, cooldown_s=breaker_cooldown_s, clock=clock
        ),
        sleep=sleep,
        wall_clock=wall_clock,
        jitter=jitter,
    )
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers["User-Agent"] = user_agent
    return session


def make_session(
    *,
    host_key: str,
    timeout_s: float,
    max_retries: int,
    user_agent: str = "forgebot",
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    **tuning: Any,
) -> requests.Session:
    """A new ``requests.Session`` whose every request is resilient (see the module doc).

    ``tuning`` takes the optional keywords of :func:`install`.
    """
    return install(
        requests.Session(),
        host_key=host_key,
        timeout_s=timeout_s,
        max_retries=max_retries,
        user_agent=user_agent,
        sleep=sleep,
        clock=clock,
        **tuning,
    )


# --------------------------------------------------------------------------- errors


def check(response: requests.Response, what: str) -> requests.Response:
    """Return ``response`` when it is a 2xx; raise ``ForgeError`` otherwise.

    ``what`` says what the call was for ("open a pull request on acme/app"). The message
    carries the method, host and path (no query string), the status and the forge's own
    short error message, with every credential the request carried blanked out.
    ``retryable`` is True for 408, 429, 500, 502, 503, 504 and rate-limited 403s.
    """
    status = response.status_code
    if 200 <= status < 300:
        return response
    request = response.request
    where = f" ({_describe(request)})" if request is not None else ""
    detail = _server_message(response)
    message = f"{what}: HTTP {status} {response.reason or ''}".rstrip() + where
    if is_rate_limited(response):
        message += " (rate limited)"
    if detail:
        message += f": {detail}"
    if request is not None:
        message = _redact(message, request)
    retryable = status in _RETRYABLE_ERROR_STATUSES or is_rate_limited(response)
    raise ForgeError(message, retryable=retryable)


def _describe(request: requests.PreparedRequest | None) -> str:
    """``METHOD scheme://host/path``: never the query string, where a token could be."""
    if request is None:
        return "request"
    parts = urlsplit(request.url or "")
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{request.method or 'GET'} {parts.scheme}://{host}{port}{parts.path}"


def _server_message(response: requests.Response) -> str:
    """The forge's ``message``/``error`` field of a JSON error body, shortened; else ""."""
    try:
        payload = json.loads(response.content or b"null")
    except (ValueError, UnicodeDecodeError, RuntimeError):
        return ""
    if not isinstance(payload, dict):
        return ""
    texts = [payload[key] for key in ("message", "error", "error_description") if key in payload]
    errors = payload.get("errors")
    if isinstance(errors, list):
        texts += [e.get("message") if isinstance(e, dict) else e for e in errors[:3]]
    words = " ".join(" ".join(str(t).split()) for t in texts if isinstance(t, str | int))
    return words[:_MESSAGE_MAX] + ("…" if len(words) > _MESSAGE_MAX else "")


def _redact(text: str, request: requests.PreparedRequest) -> str:
    for secret in _secrets_of(request):
        text = text.replace(secret, "***")
    return text


def _secrets_of(request: requests.PreparedRequest) -> list[str]:
    """Every credential value the request carries, longest first."""
    found: list[str] = []
    for name in _SECRET_HEADERS:
        value = request.headers.get(name)
        if value:
            found.append(value)
            found.extend(value.split(None, 1)[1:])  # the token after "token " / "Bearer "
    parts = urlsplit(request.url or "")
    found.extend(p for p in (parts.username, parts.password) if p)
    for name, value in parse_qsl(parts.query):
        if any(word in name.lower() for word in _SECRET_PARAM_WORDS):
            found.append(value)
    return sorted({s for s in found if len(s) >= _MIN_SECRET_LEN}, key=len, reverse=True)


__all__ = [
    "DEFAULT_BREAKERS",
    "IDEMPOTENT_METHODS",
    "BreakerRegistry",
    "BreakerState",
    "CircuitBreaker",
    "Failure",
    "ResilientAdapter",
    "RetryPolicy",
    "check",
    "classify",
    "failure_is_retryable",
    "install",
    "is_rate_limited",
    "make_session",
    "response_is_retryable",
    "retry_after_s",
]
