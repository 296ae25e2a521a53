"""GitHub App authentication: the JWT's claims and signature, installation tokens cached,
refreshed before they expire (also in the middle of a job), and looked up per repository.

GitHub's API is played by `responses`; the clock is a fake one that tests move by hand.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import jwt
import pytest
import requests
import responses
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from bot.config import GitHubSettings
from bot.errors import ConfigError, ForgeError
from bot.forges.github import GitHubForge
from bot.forges.github.app import (
    JWT_BACKDATE_S,
    JWT_MAX_LIFETIME_S,
    GitHubApp,
    InstallationToken,
    load_private_key,
    make_jwt,
)
from bot.forges.http import BreakerRegistry
from bot.forges.verify import sign_sha256
from bot.gitops import PASSWORD_ENV, USERNAME_ENV

API = "https://api.github.com"
APP_ID = 123456
NOW = 1_700_000_000.0
REPO = "Codertocat/Hello-World"
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "webhooks" / "github"


class FakeClock:
    """Epoch seconds that only move when a test (or a sleep) moves them."""

    def __init__(self) -> None:
        self.now = NOW
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


@pytest.fixture(scope="module")
def public_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def mock() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock() as rsps:
        yield rsps


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def decode(token: str, public_pem: bytes) -> dict[str, object]:
    # The fake clock is in the past, so only the signature and the claims' values are
    # checked here; test_jwt_verifies_now checks expiry against the real clock.
    claims: dict[str, object] = jwt.decode(
        token, public_pem, algorithms=["RS256"], options={"verify_exp": False,
                                                           "verify_iat": False}
    )
    return claims


def bearer(call: responses.Call) -> str:
    return str(call.request.headers["Authorization"]).removeprefix("Bearer ")


def token_answer(mock: responses.RequestsMock, installation: int, token: str,
                 expires_at: float) -> responses.BaseResponse:
    answer: responses.BaseResponse = mock.post(
        f"{API}/app/installations/{installation}/access_tokens",
        json={"token": token, "expires_at": iso(expires_at),
              "permissions": {"issues": "write"}, "repository_selection": "all"},
        status=201,
    )
    return answer


# ----------------------------------------------------------------------------- JWT


def test_jwt_claims_are_backdated_and_expire_within_ten_minutes(public_pem: bytes,
                                                               pem: bytes) -> None:
    token = make_jwt(APP_ID, pem, NOW)
    assert jwt.get_unverified_header(token)["alg"] == "RS256"
    claims = decode(token, public_pem)
    assert claims["iss"] == str(APP_ID)
    assert claims["iat"] == int(NOW) - JWT_BACKDATE_S == int(NOW) - 60
    assert claims["exp"] == int(claims["iat"]) + JWT_MAX_LIFETIME_S
    assert int(NOW) < claims["exp"] <= int(NOW) + 600


def test_jwt_verifies_now_with_the_public_key(pem: bytes, public_pem: bytes) -> None:
    import time

    claims = jwt.decode(make_jwt(APP_ID, pem, time.time()), public_pem, algorithms=["RS256"])
    assert claims["iss"] == str(APP_ID)


def test_jwt_does_not_verify_with_another_key(pem: bytes) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(make_jwt(APP_ID, pem, NOW), other, algorithms=["RS256"],
                   options={"verify_exp": False})


def test_a_bad_key_is_a_forge_error_that_does_not_quote_it() -> None:
    with pytest.raises(ForgeError) as caught:
        make_jwt(APP_ID, b"-----BEGIN PRIVATE KEY-----\nnot-a-key\n", NOW)
    assert "not-a-key" not in str(caught.value)


def test_installation_token_usable_until_the_margin() -> None:
    token = InstallationToken("t", expires_at=NOW + 3600)
    assert token.usable(NOW, 300)
    assert token.usable(NOW + 3299, 300)
    assert not token.usable(NOW + 3300, 300)


# ------------------------------------------------------------------ tokens and cache


def app(pem: bytes, clock: FakeClock) -> GitHubApp:
    return GitHubApp(APP_ID, load_private_key(pem), requests.Session(), API, clock=clock)


def test_installation_token_is_cached_then_refreshed_before_it_expires(
    mock: responses.RequestsMock, pem: bytes, public_pem: bytes, clock: FakeClock
) -> None:
    first = token_answer(mock, 7, "ghs_first", NOW + 3600)
    github = app(pem, clock)
    assert github.token(7) == "ghs_first"
    clock.now += 3000  # 600 s left: still more than the 300 s margin
    assert github.token(7) == "ghs_first"
    assert first.call_count == 1

    mock.remove(first)
    second = token_answer(mock, 7, "ghs_second", clock.now + 3600)
    clock.now += 301  # 299 s left: refresh before it can die on the way
    assert github.token(7) == "ghs_second"
    assert second.call_count == 1

    # The exchange is authenticated with a fresh JWT of the App, not with a token.
    claims = decode(bearer(second.calls[0]), public_pem)
    assert claims["iss"] == str(APP_ID)
    assert claims["iat"] == int(clock.now) - 60


def test_tokens_are_cached_per_installation(mock: responses.RequestsMock, pem: bytes,
                                            clock: FakeClock) -> None:
    one = token_answer(mock, 1, "ghs_one", NOW + 3600)
    two = token_answer(mock, 2, "ghs_two", NOW + 3600)
    github = app(pem, clock)
    assert [github.token(1), github.token(2), github.token(1)] == ["ghs_one", "ghs_two",
                                                                   "ghs_one"]
    assert (one.call_count, two.call_count) == (1, 1)


def test_installation_lookup_is_cached_per_repository(
    mock: responses.RequestsMock, pem: bytes, public_pem: bytes, clock: FakeClock
) -> None:
    lookup = mock.get(f"{API}/repos/{REPO}/installation", json={"id": 99, "app_id": APP_ID})
    token_answer(mock, 99, "ghs_99", NOW + 3600)
    github = app(pem, clock)
    assert github.token_for(REPO) == "ghs_99"
    assert github.token_for(REPO.lower()) == "ghs_99"  # GitHub names ignore case
    assert lookup.call_count == 1
    assert decode(bearer(lookup.calls[0]), public_pem)["iss"] == str(APP_ID)


def test_a_remembered_installation_needs_no_lookup(mock: responses.RequestsMock, pem: bytes,
                                                   clock: FakeClock) -> None:
    token_answer(mock, 5, "ghs_5", NOW + 3600)
    github = app(pem, clock)
    github.remember(REPO, 5)
    assert github.token_for(REPO) == "ghs_5"  # no GET .../installation was registered


def test_an_app_not_installed_on_the_repository_says_so(mock: responses.RequestsMock,
                                                        pem: bytes, clock: FakeClock) -> None:
    mock.get(f"{API}/repos/{REPO}/installation", status=404, json={"message": "Not Found"})
    with pytest.raises(ForgeError, match="not installed on Codertocat/Hello-World"):
        app(pem, clock).token_for(REPO)


@pytest.mark.parametrize(
    "answer",
    [{"token": "x"}, {"expires_at": iso(NOW)}, {"token": "x", "expires_at": "soon"}, []],
)
def test_a_malformed_token_answer_is_a_forge_error(
    mock: responses.RequestsMock, pem: bytes, clock: FakeClock, answer: object
) -> None:
    mock.post(f"{API}/app/installations/1/access_tokens", json=answer, status=201)
    with pytest.raises(ForgeError, match="installation 1"):
        app(pem, clock).token(1)


def test_a_refused_exchange_is_a_forge_error_without_the_jwt(
    mock: responses.RequestsMock, pem: bytes, clock: FakeClock
) -> None:
    mock.post(f"{API}/app/installations/1/access_tokens", status=401,
              json={"message": "A JSON web token could not be decoded"})
    with pytest.raises(ForgeError, match="HTTP 401") as caught:
        app(pem, clock).token(1)
    assert caught.value.retryable is False
    assert make_jwt(APP_ID, pem, clock.now) not in str(caught.value)


# --------------------------------------------------------------- through the forge


def forge(pem_file: Path, clock: FakeClock, **overrides: object) -> GitHubForge:
    settings = GitHubSettings(enabled=True, app_id=APP_ID, private_key_file=pem_file,
                              webhook_secret="s3cret", **overrides)
    return GitHubForge(settings, "forgebot", clock=clock, sleep=clock.sleep,
                       http_options={"breakers": BreakerRegistry(), "jitter": lambda: 0.0,
                                     "clock": clock})


@pytest.fixture
def pem_file(tmp_path: Path, pem: bytes) -> Path:
    path = tmp_path / "app.pem"
    path.write_bytes(pem)
    return path


def permission_answer(mock: responses.RequestsMock, user: str = "octocat") -> None:
    mock.get(f"{API}/repos/{REPO}/collaborators/{user}/permission",
             json={"permission": "write", "role_name": "write", "user": {"login": user}})


def test_token_refreshed_when_it_expires_in_the_middle_of_a_job(
    mock: responses.RequestsMock, pem_file: Path, clock: FakeClock
) -> None:
    github = forge(pem_file, clock)
    # The delivery names its installation, so the job never looks it up.
    body = (FIXTURES / "pull_request__closed_unmerged.json").read_bytes()
    headers = {"X-GitHub-Event": "pull_request", "X-GitHub-Delivery": "d-1",
               "X-Hub-Signature-256": "sha256=" + sign_sha256("s3cret", body)}
    assert github.verify(headers, body)
    event = github.parse(headers, body)
    assert event is not None and event.repo.installation_id == 1

    first = token_answer(mock, 1, "ghs_first", NOW + 3600)
    permission_answer(mock)
    reactions = mock.post(f"{API}/repos/{REPO}/issues/2/reactions", status=201,
                          json={"id": 1, "content": "eyes"})

    assert github.permission(REPO, "octocat") == "write"  # the job starts: token one
    github.react(REPO, 2, None, "eyes")
    assert github.git_auth(REPO) == {USERNAME_ENV: "x-access-token", PASSWORD_ENV: "ghs_first"}

    clock.now += 3500  # a long agent loop: 100 s of the token left
    mock.remove(first)
    second = token_answer(mock, 1, "ghs_second", clock.now + 3600)
    github.react(REPO, 2, None, "eyes")  # the job goes on: token two, no failed request
    assert github.git_auth(REPO)[PASSWORD_ENV] == "ghs_second"

    assert (first.call_count, second.call_count) == (1, 1)
    assert [bearer(call) for call in reactions.calls] == ["ghs_first", "ghs_second"]
    assert json.loads(reactions.calls[0].request.body or b"{}") == {"content": "eyes"}


def test_a_401_drops_the_token_and_the_next_call_gets_a_new_one(
    mock: responses.RequestsMock, pem_file: Path, clock: FakeClock
) -> None:
    github = forge(pem_file, clock)
    github.use_installation(REPO, 1)
    first = token_answer(mock, 1, "ghs_revoked", NOW + 3600)
    url = f"{API}/repos/{REPO}/collaborators/octocat/permission"
    mock.get(url, status=401, json={"message": "Bad credentials"})
    with pytest.raises(ForgeError, match="HTTP 401") as caught:
        github.permission(REPO, "octocat")
    assert "ghs_revoked" not in str(caught.value)

    mock.remove(first)
    mock.replace(responses.GET, url, json={"permission": "admin"})
    lookup = mock.get(f"{API}/repos/{REPO}/installation", json={"id": 1})
    token_answer(mock, 1, "ghs_new", NOW + 3600)
    assert github.permission(REPO, "octocat") == "admin"
    assert lookup.call_count == 1  # the mapping was dropped too: the App may be reinstalled
    assert bearer(mock.calls[-1]) == "ghs_new"


def test_a_personal_token_is_sent_as_is_and_never_exchanged(
    mock: responses.RequestsMock, clock: FakeClock
) -> None:
    github = GitHubForge(GitHubSettings(token="ghp_personal"), "forgebot", clock=clock,
                         sleep=clock.sleep, http_options={"breakers": BreakerRegistry()})
    permission_answer(mock)
    assert github.permission(REPO, "octocat") == "write"
    assert bearer(mock.calls[0]) == "ghp_personal"
    assert github.git_auth(REPO) == {USERNAME_ENV: "x-access-token",
                                     PASSWORD_ENV: "ghp_personal"}


# ---------------------------------------------------------------------- settings


def test_neither_token_nor_app_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="app_id and private_key_file"):
        GitHubForge(GitHubSettings(enabled=True), "forgebot")


def test_an_unreadable_key_file_is_a_config_error(tmp_path: Path) -> None:
    settings = GitHubSettings(app_id=APP_ID, private_key_file=tmp_path / "missing.pem")
    with pytest.raises(ConfigError, match="cannot read"):
        GitHubForge(settings, "forgebot")


def test_a_file_that_is_not_a_key_is_a_config_error_that_does_not_quote_it(
    tmp_path: Path,
) -> None:
    path = tmp_path / "app.pem"
    path.write_text("-----BEGIN RSA PRIVATE KEY-----\nc2VjcmV0LWJ5dGVz\n"
                    "-----END RSA PRIVATE KEY-----\n")
    with pytest.raises(ConfigError, match="not an unencrypted PEM private key") as caught:
        GitHubForge(GitHubSettings(app_id=APP_ID, private_key_file=path), "forgebot")
    assert "c2VjcmV0" not in str(caught.value)


def test_a_key_that_is_not_rsa_is_a_config_error(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    path = tmp_path / "app.pem"
    path.write_bytes(ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    with pytest.raises(ConfigError, match="not an RSA private key"):
        GitHubForge(GitHubSettings(app_id=APP_ID, private_key_file=path), "forgebot")
