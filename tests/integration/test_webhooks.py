"""The receiver with the real local forge adapter and a real SQLite store."""

import json

import pytest

from bot.forges import build_forges
from bot.pipeline.planner import Planner
from bot.policy.model import Policy
from bot.web import create_app
from tests.conftest import labeled_payload, signed


@pytest.fixture
def client(settings, store):
    woken = []
    app = create_app(store, build_forges(settings), wake=lambda: woken.append(1))
    app.testing = True
    c = app.test_client()
    c.woken = woken
    return c


def plan(store, settings):
    return Planner(store, build_forges(settings), Policy(), settings.bot_user).plan_pending()


def post(client, headers, body, forge="local"):
    return client.post(f"/webhooks/{forge}", data=body, headers=headers)


def test_good_delivery_is_stored_and_wakes_the_scheduler(client, store):
    headers, body = signed("issues", labeled_payload())
    response = post(client, headers, body)
    assert response.status_code == 202
    assert store.delivery_counts() == {"pending": 1}
    assert client.woken == [1]


@pytest.mark.parametrize("mutate", ["wrong", "missing", "other_secret", "tampered_body"])
def test_bad_signature_is_401_and_nothing_is_stored(client, store, mutate):
    secret = "other" if mutate == "other_secret" else "test-webhook-secret"
    headers, body = signed("issues", labeled_payload(), secret=secret)
    if mutate == "wrong":
        headers["X-Forgebot-Signature-256"] = "sha256=" + "0" * 64
    if mutate == "missing":
        del headers["X-Forgebot-Signature-256"]
    if mutate == "tampered_body":
        body = body.replace(b"Add a farewell", b"Add a backdoor")
    response = post(client, headers, body)
    assert response.status_code == 401
    assert store.delivery_counts().get("pending", 0) == 0
    assert store.delivery_counts() == {}
    metrics = client.get("/metrics").get_data(as_text=True)
    expected = ('forgebot_deliveries_total{event="unverified",forge="local",'
                'result="unauthorized"} 1.0')
    assert expected in metrics


def test_no_secret_configured_fails_closed(settings, store):
    from bot.config import load_settings

    open_settings = load_settings(None, environ={"FORGEBOT_DATA_DIR": str(settings.data_dir)})
    app = create_app(store, build_forges(open_settings))
    headers, body = signed("issues", labeled_payload())
    assert app.test_client().post("/webhooks/local", data=body, headers=headers).status_code == 401
    assert store.delivery_counts() == {}


def test_malformed_json_is_400_and_nothing_is_stored(client, store):
    headers, _ = signed("issues", {})
    body = b'{"action": "labeled",'
    from bot.forges.verify import sign_sha256

    headers["X-Forgebot-Signature-256"] = "sha256=" + sign_sha256("test-webhook-secret", body)
    assert post(client, headers, body).status_code == 400
    assert store.delivery_counts() == {}


def test_unknown_forge_is_404(client):
    headers, body = signed("issues", labeled_payload())
    assert post(client, headers, body, forge="bitbucket").status_code == 404


def test_same_delivery_twice_makes_one_job(client, store, settings):
    headers, body = signed("issues", labeled_payload(), delivery="same-id")
    assert post(client, headers, body).status_code == 202
    second = post(client, headers, body)
    assert second.status_code == 202 and second.get_json()["duplicate"] is True
    # A different delivery id for the same trigger (a forge's duplicate event) too.
    headers2, body2 = signed("issues", labeled_payload())
    assert post(client, headers2, body2).status_code == 202
    made = plan(store, settings)
    assert made == 1
    assert len(store.list_jobs()) == 1
    assert store.delivery_counts() == {"job": 1, "ignored": 1}


def test_event_that_starts_nothing_is_recorded_and_ignored(client, store, settings):
    opened = {"action": "opened", "repository": {"full_name": "a/b"}}
    for payload in (labeled_payload(label="bug"), opened):
        headers, body = signed("issues", payload)
        assert post(client, headers, body).status_code == 202
    plan(store, settings)
    assert store.list_jobs() == []
    assert store.delivery_counts() == {"ignored": 2}


def test_valid_json_with_the_wrong_shape_is_recorded_as_invalid(client, store, settings):
    payload = labeled_payload()
    del payload["issue"]["number"]
    headers, body = signed("issues", payload)
    assert post(client, headers, body).status_code == 202
    plan(store, settings)
    assert store.delivery_counts() == {"invalid": 1}
    assert store.list_jobs() == []


def test_health_ready_and_jobs_api(client, store, settings):
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200
    headers, body = signed("issues", labeled_payload())
    post(client, headers, body)
    plan(store, settings)
    listing = client.get("/api/jobs").get_json()
    assert [j["issue_number"] for j in listing["jobs"]] == [1]
    job_id = listing["jobs"][0]["id"]
    shown = client.get(f"/api/jobs/{job_id}").get_json()
    assert shown["events"][0]["kind"] == "job.queued"
    assert client.get("/api/jobs/999").status_code == 404
    assert client.get("/api/jobs?limit=x").status_code == 400
    json.dumps(shown)
