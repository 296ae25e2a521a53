"""The resilient HTTP layer: retries, waits, the breaker and errors, against `responses`.

No test waits for real: the session gets a fake clock whose ``sleep`` only moves time on.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

import pytest
import requests
import responses
from responses.registries import OrderedRegistry
from urllib3.exceptions import MaxRetryError, NewConnectionError, ProtocolError

from bot.errors import ForgeError
from bot.forges.http import (
    BreakerRegistry,
    BreakerState,
    Failure,
    check,
    classify,
    make_session,
    retry_after_s,
)

URL = "https://forge.example/api/v1/repos/acme/app/pulls"
TOKEN = "tok-0123456789abcdef"
NOW = 1_700_000_000.0  # the fake wall clock at the start


class FakeTime:
    """A monotonic clock, a wall clock and a sleep that moves both; sleeps are recorded."""

    def __init__(self) -> None:
        self.mono = 100.0
        self.wall = NOW
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.mono

    def time(self) -> float:
        return self.wall

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 3))
        self.advance(seconds)

    def advance(self, seconds: float) -> None:
        self.mono += seconds
        self.wall += seconds


@pytest.fixture
def clock() -> FakeTime:
    return FakeTime()


@pytest.fixture
def mock() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(registry=OrderedRegistry) as rsps:
        yield rsps


def session(clock: FakeTime, **overrides: Any) -> requests.Session:
    options: dict[str, Any] = {
        "host_key": "test:forge.example",
        "timeout_s": 7.0,
        "max_retries": 3,
        "sleep": clock.sleep,
        "clock": clock.monotonic,
        "wall_clock": clock.time,
        "jitter": lambda: 1.0,  # full jitter at its top: waits are base * 2**attempt
        "breakers": BreakerRegistry(),
    }
    options.update(overrides)
    return make_session(**options)


def connect_refused() -> requests.ConnectionError:
    reason = NewConnectionError(None, "Failed to establish a new connection: refused")  # type: ignore[arg-type]
    return requests.ConnectionError(MaxRetryError(None, "/", reason))  # type: ignore[arg-type]


def connection_reset() -> requests.ConnectionError:
    return requests.ConnectionError(
        ProtocolError("Connection aborted.", ConnectionResetError(104, "reset by peer"))
    )


def http_date(epoch: float) -> str:
    return format_datetime(datetime.fromtimestamp(epoch, UTC), usegmt=True)


# Each answer: a status, (status, headers), or an exception the transport raises.
Answer = int | tuple[int, dict[str, str]] | Exception


def add(mock: responses.RequestsMock, method: str, answers: list[Answer]) -> None:
    for answer in answers:
        if isinstance(answer, Exception):
            mock.add(method, URL, body=answer)
        elif isinstance(answer, tuple):
            mock.add(method, URL, status=answer[0], headers=answer[1], json={})
        elif answer == 204:
            mock.add(method, URL, status=answer)  # a 204 with a body breaks urllib3
        else:
            mock.add(method, URL, status=answer, json={})


RETRY_TABLE = [
    # (name, method, answers, final status or None when ForgeError, sleeps)
    ("get 503 twice then ok", "GET", [503, 503, 200], 200, [0.5, 1.0]),
    ("get 500 is retried", "GET", [500, 200], 200, [0.5]),
    ("get 502 and 504", "GET", [502, 504, 200], 200, [0.5, 1.0]),
    ("put 503 is retried", "PUT", [503, 200], 200, [0.5]),
    ("delete 429 without headers: backoff", "DELETE", [429, 204], 204, [0.5]),
    ("post 500 is not retried", "POST", [500], 500, []),
    ("post 502 is not retried", "POST", [502], 502, []),
    ("post 503 without retry-after", "POST", [503], 503, []),
    ("post 503 with retry-after", "POST", [(503, {"Retry-After": "2"}), 201], 201, [2.0]),
    ("post 429 with retry-after", "POST", [(429, {"Retry-After": "3"}), 201], 201, [3.0]),
    ("post 429 with no wait given", "POST", [429], 429, []),
    ("patch 429 gitlab reset", "PATCH",
     [(429, {"RateLimit-Reset": str(int(NOW) + 4)}), 200], 200, [4.0]),
    ("get 403 github primary limit", "GET",
     [(403, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(NOW) + 5)}), 200],
     200, [5.0]),
    ("post 403 github secondary limit", "POST", [(403, {"Retry-After": "1"}), 201], 201, [1.0]),
    ("get plain 403 is final", "GET", [403], 403, []),
    ("get 404 is final", "GET", [404], 404, []),
    ("retry-after as an http date", "GET",
     [(503, {"Retry-After": http_date(NOW + 6)}), 200], 200, [6.0]),
    ("retry-after too long is not slept", "GET", [(429, {"Retry-After": "600"})], 429, []),
    ("retries run out", "GET", [503, 503, 503, 503], 503, [0.5, 1.0, 2.0]),
    ("get connect timeout", "GET", [requests.exceptions.ConnectTimeout(), 200], 200, [0.5]),
    ("post connect timeout", "POST", [requests.exceptions.ConnectTimeout(), 201], 201, [0.5]),
    ("post connection refused", "POST", [connect_refused(), 201], 201, [0.5]),
    ("get read timeout", "GET", [requests.exceptions.ReadTimeout(), 200], 200, [0.5]),
    ("post read timeout is not resent", "POST", [requests.exceptions.ReadTimeout()], None, []),
    ("get connection reset", "GET", [connection_reset(), 200], 200, [0.5]),
    ("patch connection reset is not resent", "PATCH", [connection_reset()], None, []),
    ("get tls error is final", "GET", [requests.exceptions.SSLError()], None, []),
    ("transport errors run out", "GET", [requests.exceptions.ReadTimeout()] * 4, None,
     [0.5, 1.0, 2.0]),
]


@pytest.mark.parametrize(
    ("method", "answers", "final", "sleeps"),
    [case[1:] for case in RETRY_TABLE],
    ids=[case[0] for case in RETRY_TABLE],
)
def test_retry_table(
    clock: FakeTime,
    mock: responses.RequestsMock,
    method: str,
    answers: list[Answer],
    final: int | None,
    sleeps: list[float],
) -> None:
    add(mock, method, answers)
    http = session(clock)
    if final is None:
        with pytest.raises(ForgeError):
            http.request(method, URL, json={"title": "x"})
    else:
        assert http.request(method, URL, json={"title": "x"}).status_code == final
    assert len(mock.calls) == len(answers)
    assert clock.sleeps == sleeps


def test_transport_errors_are_forge_errors_that_say_whether_to_retry(
    clock: FakeTime, mock: responses.RequestsMock
) -> None:
    add(mock, "POST", [requests.exceptions.ReadTimeout()])
    add(mock, "GET", [requests.exceptions.SSLError()])
    http = session(clock)
    with pytest.raises(ForgeError, match="timed out") as timed_out:
        http.post(URL, data=b"{}")
    assert timed_out.value.retryable
    assert isinstance(timed_out.value.__cause__, requests.Timeout)
    with pytest.raises(ForgeError, match="TLS") as tls:
        http.get(URL)
    assert not tls.value.retryable


def test_jitter_scales_the_wait_and_the_cap_bounds_it(
    clock: FakeTime, mock: responses.RequestsMock
) -> None:
    add(mock, "GET", [503, 503, 503, 200])
    http = session(clock, jitter=lambda: 0.5, backoff_base_s=1.0, backoff_cap_s=3.0)
    assert http.get(URL).status_code == 200
    assert clock.sleeps == [0.5, 1.0, 1.5]  # 0.5 * min(3, 1, 2, 4)


def test_every_request_gets_the_default_timeout_unless_it_names_one(
    clock: FakeTime, mock: responses.RequestsMock
) -> None:
    add(mock, "GET", [200, 200])
    http = session(clock)
    http.get(URL)
    http.get(URL, timeout=2.5)
    timeouts = [call.request.req_kwargs["timeout"] for call in mock.calls]  # type: ignore[attr-defined]
    assert timeouts == [7.0, 2.5]


def test_user_agent(clock: FakeTime, mock: responses.RequestsMock) -> None:
    add(mock, "GET", [200])
    session(clock, user_agent="forgebot/9").get(URL)
    assert mock.calls[0].request.headers["User-Agent"] == "forgebot/9"


def test_a_streamed_body_is_not_sent_twice(clock: FakeTime, mock: responses.RequestsMock) -> None:
    add(mock, "PUT", [503])
    response = session(clock).put(URL, data=iter([b"chunk"]))
    assert response.status_code == 503
    assert len(mock.calls) == 1


# --------------------------------------------------------------------------- breaker


def test_breaker_opens_fails_fast_then_half_opens(
    clock: FakeTime, mock: responses.RequestsMock
) -> None:
    breakers = BreakerRegistry()
    http = session(clock, max_retries=0, breaker_threshold=3, breaker_cooldown_s=30.0,
                   breakers=breakers)
    add(mock, "GET", [503, 500, 502])
    for _ in range(3):
        http.get(URL)
    breaker = breakers.get("test:forge.example", threshold=0, cooldown_s=0, clock=clock.monotonic)
    assert breaker.state is BreakerState.OPEN

    with pytest.raises(ForgeError, match="circuit open") as err:
        http.get(URL)
    assert err.value.retryable
    assert len(mock.calls) == 3  # refused without a request

    clock.advance(31)
    add(mock, "GET", [503])  # the half-open trial fails: open again
    http.get(URL)
    assert breaker.state is BreakerState.OPEN
    with pytest.raises(ForgeError, match="circuit open"):
        http.get(URL)

    clock.advance(31)
    add(mock, "GET", [200, 200])  # the trial succeeds: closed
    assert http.get(URL).status_code == 200
    assert breaker.state is BreakerState.CLOSED
    assert http.get(URL).status_code == 200


def test_breaker_is_shared_by_sessions_of_one_host(
    clock: FakeTime, mock: responses.RequestsMock
) -> None:
    breakers = BreakerRegistry()
    first = session(clock, max_retries=0, breaker_threshold=1, breakers=breakers)
    second = session(clock, max_retries=0, breaker_threshold=1, breakers=breakers)
    other = session(clock, max_retries=0, breaker_threshold=1, breakers=breakers,
                    host_key="test:other")
    add(mock, "GET", [connect_refused(), 200])
    with pytest.raises(ForgeError, match="could not connect"):
        first.get(URL)
    with pytest.raises(ForgeError, match="circuit open"):
        second.get(URL)
    assert other.get(URL).status_code == 200


def test_an_open_breaker_stops_the_retries_of_a_call(
    clock: FakeTime, mock: responses.RequestsMock
) -> None:
    add(mock, "GET", [503, 503])
    http = session(clock, max_retries=5, breaker_threshold=2)
    with pytest.raises(ForgeError, match="circuit open"):
        http.get(URL)
    assert len(mock.calls) == 2


@pytest.mark.parametrize("status", [200, 201, 404, 422, 429])
def test_answers_that_do_not_count_as_host_failures(
    clock: FakeTime, mock: responses.RequestsMock, status: int
) -> None:
    add(mock, "POST", [status] * 3)
    http = session(clock, max_retries=0, breaker_threshold=2)
    for _ in range(3):
        assert http.post(URL).status_code == status


# --------------------------------------------------------------------------- quota


def test_a_spent_quota_holds_the_next_request_until_the_reset(
    clock: FakeTime, mock: responses.RequestsMock
) -> None:
    spent = {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(NOW) + 10)}
    add(mock, "GET", [(200, spent), 200])
    http = session(clock)
    http.get(URL)
    assert clock.sleeps == []
    http.get(URL)
    assert clock.sleeps == [10.0]


def test_a_long_spent_quota_fails_at_once_without_a_request(
    clock: FakeTime, mock: responses.RequestsMock
) -> None:
    spent = {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(NOW) + 3600)}
    add(mock, "GET", [(403, spent)])
    http = session(clock)
    with pytest.raises(ForgeError, match="rate limit") as err:
        check(http.get(URL), "list pulls")
    assert err.value.retryable
    with pytest.raises(ForgeError, match=r"rate limit of test:forge\.example spent") as held:
        http.get(URL)
    assert held.value.retryable
    assert len(mock.calls) == 1


# --------------------------------------------------------------------------- pure parts


@pytest.mark.parametrize(
    ("headers", "status", "expected"),
    [
        ({}, 429, None),
        ({"Retry-After": "5"}, 429, 5.0),
        ({"Retry-After": "0"}, 503, 0.0),
        ({"Retry-After": "-3"}, 503, 0.0),
        ({"Retry-After": "1.5"}, 503, 1.5),
        ({"Retry-After": http_date(NOW + 30)}, 503, 30.0),
        ({"Retry-After": http_date(NOW - 30)}, 503, 0.0),
        ({"Retry-After": "soon"}, 503, None),
        ({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(NOW) + 9)}, 403, 9.0),
        ({"X-RateLimit-Remaining": "10", "X-RateLimit-Reset": str(int(NOW) + 9)}, 200, None),
        ({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(NOW) - 9)}, 403, 0.0),
        ({"RateLimit-Reset": str(int(NOW) + 7)}, 429, 7.0),
        ({"RateLimit-Reset": str(int(NOW) + 7)}, 200, None),  # GitLab sends it on every answer
        ({"RateLimit-Remaining": "0", "RateLimit-Reset": str(int(NOW) + 7)}, 200, 7.0),
        ({"RateLimit-Reset": "12"}, 429, 12.0),  # the IETF draft: a delay, not an epoch
        ({"Retry-After": "2", "X-RateLimit-Remaining": "0",
          "X-RateLimit-Reset": str(int(NOW) + 9)}, 403, 2.0),
    ],
)
def test_retry_after_s(headers: dict[str, str], status: int, expected: float | None) -> None:
    wait = retry_after_s(requests.structures.CaseInsensitiveDict(headers), NOW, status)
    assert wait == (None if expected is None else pytest.approx(expected))


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (requests.exceptions.ConnectTimeout(), Failure.CONNECT),
        (connect_refused(), Failure.CONNECT),
        (requests.exceptions.ReadTimeout(), Failure.TIMEOUT),
        (connection_reset(), Failure.RESET),
        (requests.exceptions.ChunkedEncodingError(), Failure.RESET),
        (requests.exceptions.SSLError(), Failure.TLS),
        (requests.exceptions.InvalidURL(), Failure.OTHER),
    ],
)
def test_classify(exc: requests.RequestException, expected: Failure) -> None:
    assert classify(exc) is expected


# --------------------------------------------------------------------------- check


def answered(mock: responses.RequestsMock, status: int, **kwargs: Any) -> requests.Response:
    mock.add("GET", URL, status=status, **kwargs)
    return requests.get(
        URL + "?access_token=" + TOKEN, headers={"Authorization": "token " + TOKEN}, timeout=1
    )


def test_check_passes_2xx(mock: responses.RequestsMock) -> None:
    response = answered(mock, 201, json={"number": 1})
    assert check(response, "open a pull request") is response


@pytest.mark.parametrize(
    ("status", "headers", "retryable"),
    [
        (400, {}, False),
        (401, {}, False),
        (403, {}, False),
        (404, {}, False),
        (409, {}, False),
        (422, {}, False),
        (403, {"X-RateLimit-Remaining": "0"}, True),
        (408, {}, True),
        (429, {}, True),
        (500, {}, True),
        (502, {}, True),
        (503, {}, True),
        (504, {}, True),
    ],
)
def test_check_raises_forge_error_that_says_whether_to_retry(
    mock: responses.RequestsMock, status: int, headers: dict[str, str], retryable: bool
) -> None:
    response = answered(mock, status, headers=headers, json={"message": "nope"})
    with pytest.raises(ForgeError) as err:
        check(response, "open a pull request")
    assert err.value.retryable is retryable
    assert str(err.value).startswith(f"open a pull request: HTTP {status}")
    assert "nope" in str(err.value)


def test_check_never_shows_the_token(mock: responses.RequestsMock) -> None:
    # A server that echoes the credential back must not get it into our message.
    echo = {"message": f"bad token {TOKEN} for 'token {TOKEN}'", "errors": [{"message": "x"}]}
    response = answered(mock, 401, json=echo)
    with pytest.raises(ForgeError) as err:
        check(response, "get an issue")
    message = str(err.value)
    assert TOKEN not in message
    assert "access_token" not in message  # no query string at all
    assert "GET https://forge.example/api/v1/repos/acme/app/pulls" in message
    assert "bad *** for '***'" in message


def test_check_ignores_bodies_that_are_not_json(mock: responses.RequestsMock) -> None:
    response = answered(mock, 502, body="<html>Bad Gateway</html>")
    with pytest.raises(ForgeError) as err:
        check(response, "comment")
    assert "html" not in str(err.value)


def test_check_shortens_long_server_messages(mock: responses.RequestsMock) -> None:
    response = answered(mock, 422, json={"message": "x" * 5000})
    with pytest.raises(ForgeError) as err:
        check(response, "comment")
    assert len(str(err.value)) < 500


def test_nothing_secret_is_logged_while_retrying(
    clock: FakeTime, mock: responses.RequestsMock, caplog: pytest.LogCaptureFixture
) -> None:
    add(mock, "GET", [503, requests.exceptions.ReadTimeout(), 200])
    caplog.set_level(logging.DEBUG, logger="bot")
    http = session(clock)
    http.get(URL + "?access_token=" + TOKEN, headers={"Authorization": "token " + TOKEN})
    assert "retrying GET https://forge.example/api/v1/repos/acme/app/pulls" in caplog.text
    assert TOKEN not in caplog.text
    assert "access_token" not in caplog.text


def test_a_bug_during_the_half_open_trial_frees_the_trial(
    clock: FakeTime, mock: responses.RequestsMock
) -> None:
    http = session(clock, max_retries=0, breaker_threshold=1, breaker_cooldown_s=10.0)
    add(mock, "GET", [503, ValueError("not the host's fault"), 200])
    http.get(URL)  # opens the breaker
    clock.advance(11)
    with pytest.raises(ValueError):
        http.get(URL)  # the trial ends in a bug, not an answer
    assert http.get(URL).status_code == 200  # a new trial is let through


SECONDARY_LIMIT = {"message": "You have exceeded a secondary rate limit. Please wait a few "
                   "minutes before you try again.",
                   "documentation_url": "https://docs.github.com/rest/overview/rate-limits"}


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_a_secondary_limit_without_headers_waits_the_documented_minute(
        clock: FakeTime, mock: responses.RequestsMock, method: str) -> None:
    mock.add(method, URL, status=403, json=SECONDARY_LIMIT)
    mock.add(method, URL, status=200, json={})
    http = session(clock, rate_limit_wait_s=60.0)

    assert http.request(method, URL, json={"body": "x"}).status_code == 200
    assert clock.sleeps == [60.0]  # a POST too: the forge turned it away


def test_the_documented_wait_holds_the_host_for_every_caller(
        clock: FakeTime, mock: responses.RequestsMock) -> None:
    mock.add("GET", URL, status=429, json={})
    mock.add("GET", URL, status=200, json={})
    registry = BreakerRegistry()
    first = session(clock, rate_limit_wait_s=60.0, breakers=registry, max_retries=0)
    other = session(clock, rate_limit_wait_s=60.0, breakers=registry)

    assert first.get(URL).status_code == 429  # no retry left: the answer is returned
    assert other.get(URL).status_code == 200
    assert clock.sleeps == [60.0]  # the other caller waited for the host first


def test_without_a_documented_wait_a_silent_limit_backs_off_as_before(
        clock: FakeTime, mock: responses.RequestsMock) -> None:
    mock.add("GET", URL, status=403, json=SECONDARY_LIMIT)
    mock.add("GET", URL, status=200, json={})
    mock.add("POST", URL, status=403, json=SECONDARY_LIMIT)
    http = session(clock)

    assert http.get(URL).status_code == 200
    assert http.post(URL, json={}).status_code == 403  # may have been made: not resent
    assert clock.sleeps == [0.5]


def test_a_plain_forbidden_is_not_a_rate_limit(clock: FakeTime,
                                               mock: responses.RequestsMock) -> None:
    mock.add("GET", URL, status=403, json={"message": "Resource not accessible by integration"})
    http = session(clock, rate_limit_wait_s=60.0)

    assert http.get(URL).status_code == 403
    assert clock.sleeps == []
