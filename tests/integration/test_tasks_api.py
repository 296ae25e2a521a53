"""The tasks API (``POST /api/v1/tasks``) over the real app, the local forge's repository on
disk and a real SQLite store: authentication, validation that stores nothing, idempotency,
and following a task."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest
from flask.testing import FlaskClient

from bot import gitops
from bot.config import Settings, load_settings
from bot.forges import build_forges
from bot.store import Store
from bot.web import create_app
from bot.web.api import CONSTRAINTS_HEADING, MAX_TEXT_CHARS, enable_tasks, tasks_config
from tests.conftest import FIXTURES, SECRET, with_local_repo

TOKEN = "tasks-api-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
GOOD: dict[str, Any] = {"forge": "local", "repo": "acme/hello", "title": "Add a farewell",
                        "text": "Add `farewell(name)` next to `greet`, with tests."}


def _settings(tmp_path: Any, name: str, **env: str) -> Settings:
    """Settings with the tasks API on, over a local forge of their own under ``name``."""
    return with_local_repo(load_settings(None, environ={
        "FORGEBOT_DATA_DIR": str(tmp_path / name),
        "FORGEBOT_FORGES__LOCAL__SECRET": SECRET,
        "FORGEBOT_LLM__PROVIDER": "replay",
        "FORGEBOT_LLM__TRANSCRIPT": str(FIXTURES / "transcripts" / "add_farewell.yaml"),
        "FORGEBOT_WEB__API_TOKEN": TOKEN,
        "FORGEBOT_WEB__API_TOKEN_NAME": "ci",
        **env,
    }))


class Client:
    """The app with the tasks API on, and what its wake-ups did."""

    def __init__(self, settings: Settings, store: Store) -> None:
        self.woken: list[int] = []
        self.app = create_app(store, build_forges(settings),
                              wake=lambda: self.woken.append(1))
        self.app.testing = True
        enable_tasks(self.app, tasks_config(settings, "forgebot/"))
        self.http: FlaskClient = self.app.test_client()
        self.store = store

    def post(self, body: object, headers: dict[str, str] | None = None) -> Any:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        return self.http.post("/api/v1/tasks", data=raw,
                              headers={"Content-Type": "application/json",
                                       **(AUTH if headers is None else headers)})

    def jobs(self) -> int:
        return len(self.store.list_jobs())


@pytest.fixture
def api(settings: Settings, store: Store) -> Client:
    configured = settings.model_copy(update={"web": settings.web.model_copy(
        update={"api_token": TOKEN, "api_token_name": "ci"})})
    return Client(configured, store)


def test_a_task_is_queued_with_its_branch_and_answers_201(api: Client) -> None:
    response = api.post({**GOOD, "constraints": ["Do not touch README.md",
                                                 "Keep it\n\n## Injected heading"]})
    assert response.status_code == 201, response.get_json()
    doc = response.get_json()
    job = doc["job"]
    assert doc["created"] is True and doc["url"] == f"/api/v1/tasks/{job['id']}"
    assert response.headers["Location"] == doc["url"]
    assert (job["kind"], job["issue_number"], job["state"]) == ("task", 0, "queued")
    assert job["requested_by"] == "api:ci" and job["default_branch"] == "main"
    assert job["branch"] == f"forgebot/task-{job['id']}-add-a-farewell"
    gitops.check_bot_branch(job["branch"], "forgebot/")
    assert job["trigger_key"].startswith("local:acme/hello:task:")
    # The constraints follow the text under their own heading, one line each: a constraint
    # cannot open a section of its own.
    assert job["task_text"] == (
        f"{GOOD['text']}\n\n{CONSTRAINTS_HEADING}\n\n"
        "- Do not touch README.md\n- Keep it ## Injected heading\n")
    assert [e["kind"] for e in doc["events"]] == ["job.queued", "task.queued"]
    assert doc["pull"] is None
    assert api.woken == [1]


def test_following_a_task_shows_it_and_its_events(api: Client) -> None:
    job_id = api.post(GOOD).get_json()["job"]["id"]
    response = api.http.get(f"/api/v1/tasks/{job_id}", headers=AUTH)
    assert response.status_code == 200
    assert response.get_json()["job"]["title"] == "Add a farewell"
    assert api.http.get(f"/api/v1/tasks/{job_id}").status_code == 401
    # The jobs API shows it too, with the pull request field.
    doc = api.http.get(f"/api/v1/jobs/{job_id}").get_json()
    assert doc["job"]["kind"] == "task" and doc["pull"] is None
    assert api.http.get("/api/v1/tasks/999", headers=AUTH).status_code == 404


def test_the_pull_request_of_a_task_is_shown_with_a_safe_address(api: Client) -> None:
    job_id = api.post(GOOD).get_json()["job"]["id"]
    api.store.update_job(job_id, pull_number=7)
    api.store.add_event(job_id, "pull.published", {"number": 7, "url": "javascript:alert(1)"})
    assert api.http.get(f"/api/v1/tasks/{job_id}", headers=AUTH).get_json()["pull"] == {
        "number": 7, "url": None}
    api.store.add_event(job_id, "pull.published", {"number": 7, "url": "https://f.example/7"})
    assert api.http.get(f"/api/v1/jobs/{job_id}").get_json()["pull"] == {
        "number": 7, "url": "https://f.example/7"}


@pytest.mark.parametrize("headers", [
    {}, {"Authorization": "Bearer wrong-token-wrong-token"}, {"Authorization": TOKEN},
    {"Authorization": f"Basic {TOKEN}"}, {"Authorization": f"Bearer {TOKEN}x"},
    {"Authorization": f"Bearer {TOKEN[:-1]}"},
])
def test_a_request_without_the_token_is_401_and_stores_nothing(api: Client,
                                                               headers: dict[str, str]) -> None:
    response = api.post(GOOD, headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert "Bearer" in response.get_json()["error"]
    assert api.jobs() == 0 and api.woken == []


def test_without_a_configured_token_the_api_is_off(settings: Settings, store: Store) -> None:
    off = Client(settings, store)  # web.api_token is not set
    for headers in ({}, AUTH, {"Authorization": "Bearer "}):
        response = off.post(GOOD, headers=headers)
        assert response.status_code == 404
        assert "web.api_token" in response.get_json()["error"]
    assert off.http.get("/api/v1/tasks/1", headers=AUTH).status_code == 404
    # An app whose service never enabled the API is off the same way.
    plain = create_app(store, build_forges(settings)).test_client()
    assert plain.post("/api/v1/tasks", json=GOOD, headers=AUTH).status_code == 404
    assert off.jobs() == 0


def test_a_token_shorter_than_16_characters_is_refused_at_start(tmp_path: Any) -> None:
    from bot.errors import ConfigError

    with pytest.raises(ConfigError, match=r"web\.api_token"):
        _settings(tmp_path, "short", FORGEBOT_WEB__API_TOKEN="short")


BAD: list[tuple[object, str]] = [
    (b"{not json", "the body must be JSON"),
    (b"\xff\xfe", "the body must be JSON"),
    ([GOOD], "the body must be a JSON object"),
    ({**GOOD, "labels": ["x"]}, "unknown field(s): labels"),
    ({**GOOD, "forge": "github"}, "forge: 'github' is not enabled here; enabled: local"),
    ({**GOOD, "forge": None}, "forge: required"),
    ({**GOOD, "repo": "acme/nothing"}, "repo: local repository acme/nothing does not exist"),
    ({**GOOD, "repo": "../etc"}, "repo: '../etc' is not a repository name"),
    ({**GOOD, "repo": "acme/../hello"}, "is not a repository name"),
    ({**GOOD, "repo": "a/" + "b" * 200}, "repo: 202 characters; the limit is 150"),
    ({**GOOD, "title": "  "}, "title: must not be empty"),
    ({**GOOD, "title": "two\nlines"}, "title: must be one line"),
    ({**GOOD, "title": 12}, "title: must be a string"),
    ({k: v for k, v in GOOD.items() if k != "text"}, "text: required"),
    ({**GOOD, "text": ""}, "text: must not be empty"),
    ({**GOOD, "text": " \n\t "}, "text: must not be empty"),
    ({**GOOD, "text": "x" * (MAX_TEXT_CHARS + 1)}, "text: 65537 characters; the limit is 65536"),
    ({**GOOD, "text": "a\x00b"}, "text: must not contain NUL characters"),
    ({**GOOD, "text": "a\ud800b"}, "text: not valid Unicode text"),
    ({**GOOD, "constraints": "no"}, "constraints: must be a list of strings"),
    ({**GOOD, "constraints": ["ok", 3]}, "constraints[1]: must be a string"),
    ({**GOOD, "constraints": ["ok", "  "]}, "constraints[1]: must not be empty"),
    ({**GOOD, "constraints": ["c"] * 21}, "constraints: 21 items; the limit is 20"),
    ({**GOOD, "constraints": ["x" * 1001]}, "constraints[0]: 1001 characters"),
    ({**GOOD, "base": "nope"}, "base: acme/hello has no branch 'nope'"),
    ({**GOOD, "base": "-x"}, "base: '-x' is not a branch name"),
    ({**GOOD, "base": "a..b"}, "base: 'a..b' is not a branch name"),
]


@pytest.mark.parametrize(("body", "error"), BAD, ids=[e for _, e in BAD])
def test_bad_input_is_a_400_that_says_why_and_stores_nothing(api: Client, body: object,
                                                             error: str) -> None:
    response = api.post(body)
    assert response.status_code == 400
    assert error in response.get_json()["error"]
    assert api.jobs() == 0 and api.woken == []


def test_a_bad_idempotency_key_is_a_400(api: Client) -> None:
    for key in ("", "has space", "k" * 65, "ü"):
        response = api.post(GOOD, headers={**AUTH, "Idempotency-Key": key})
        assert response.status_code == 400, key
        assert "Idempotency-Key" in response.get_json()["error"]
    assert api.jobs() == 0


def test_repositories_outside_the_configured_list_are_refused(tmp_path: Any,
                                                              store: Store) -> None:
    settings = _settings(tmp_path, "other", FORGEBOT_FORGES__LOCAL__REPOSITORIES="[acme/other]")
    response = Client(settings, store).post(GOOD)
    assert response.status_code == 400
    assert "not one of the repositories configured for forge local" in response.get_json()[
        "error"]
    allowed = _settings(tmp_path, "hello", FORGEBOT_FORGES__LOCAL__REPOSITORIES="[acme/hello]")
    assert Client(allowed, store).post(GOOD).status_code == 201


def test_a_hosted_forge_needs_a_base_branch_and_its_allow_list(tmp_path: Any,
                                                              store: Store) -> None:
    settings = _settings(tmp_path, "gitea", FORGEBOT_FORGES__GITEA__ENABLED="true",
                         FORGEBOT_FORGES__GITEA__BASE_URL="https://gitea.example",
                         FORGEBOT_FORGES__GITEA__WEBHOOK_SECRET="s",
                         FORGEBOT_FORGES__GITEA__TOKEN="t",
                         FORGEBOT_FORGES__GITEA__REPOSITORIES="[acme/served]")
    api = Client(settings, store)
    body = {**GOOD, "forge": "gitea", "repo": "acme/served"}
    response = api.post(body)
    assert response.status_code == 400 and "base: required for forge gitea" in response.get_json()[
        "error"]
    assert api.post({**body, "repo": "acme/else", "base": "main"}).status_code == 400
    created = api.post({**body, "base": "trunk"})
    assert created.status_code == 201
    assert created.get_json()["job"]["default_branch"] == "trunk"
    assert api.jobs() == 1


def test_the_same_idempotency_key_returns_the_same_job(api: Client) -> None:
    headers = {**AUTH, "Idempotency-Key": "ci-run-42"}
    first = api.post(GOOD, headers=headers)
    again = api.post(GOOD, headers=headers)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.get_json()["created"] is False
    assert again.get_json()["job"]["id"] == first.get_json()["job"]["id"]
    assert first.get_json()["job"]["trigger_key"] == "local:acme/hello:task:ci-run-42"
    assert api.jobs() == 1 and api.woken == [1]
    # The same key for another task is a conflict, not a silent reuse.
    other = api.post({**GOOD, "text": "Something else entirely."}, headers=headers)
    assert other.status_code == 409
    assert f"job {first.get_json()['job']['id']}" in other.get_json()["error"]
    # Without a key, every request is a new task.
    assert api.post(GOOD).status_code == api.post(GOOD).status_code == 201
    assert api.jobs() == 3


def test_an_oversize_body_is_a_413(api: Client) -> None:
    api.app.config["MAX_CONTENT_LENGTH"] = 4096
    response = api.post({**GOOD, "text": "x" * 5000})
    assert response.status_code == 413
    assert api.jobs() == 0


def test_config_keeps_the_name_in_requested_by(settings: Settings) -> None:
    config = tasks_config(settings, "bots/forgebot/")
    assert replace(config, token_name="nightly").requested_by == "api:nightly"
    assert config.token is None and config.branch_prefix == "bots/forgebot/"
