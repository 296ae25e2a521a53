"""A task queued through the tasks API runs through the real service (local forge, Docker
sandbox, replay model) to a pull request, with no issue and no comment on one."""

from __future__ import annotations

import pytest

from bot.forges.local import admin
from tests.e2e.conftest import REPO_NAME

pytestmark = [pytest.mark.docker, pytest.mark.slow]

TOKEN = "e2e-tasks-token-0123456789"


def test_a_task_from_the_api_becomes_a_pull_request(live_factory, transcripts):
    live = live_factory(transcripts / "add_farewell.yaml",
                        extra_env={"FORGEBOT_WEB__API_TOKEN": TOKEN})
    http = live.service.app.test_client()
    auth = {"Authorization": f"Bearer {TOKEN}", "Idempotency-Key": "e2e-1"}
    created = http.post("/api/v1/tasks", headers=auth, json={
        "forge": "local", "repo": REPO_NAME, "title": "Add a farewell",
        "text": "Add `farewell(name)` next to `greet`, with tests.",
        "constraints": ["Keep `greet` unchanged"]})
    assert created.status_code == 201, created.get_json()
    url = created.get_json()["url"]
    live.run_until_idle()

    followed = http.get(url, headers=auth).get_json()
    job = followed["job"]
    assert (job["kind"], job["state"], job["outcome"]) == ("task", "done", "submitted")
    [pull] = live.pulls()
    assert pull["head"] == job["branch"] == f"forgebot/task-{job['id']}-add-a-farewell"
    assert followed["pull"]["number"] == pull["number"]
    _, _, diff = admin.show_pull(live.settings.local_root, REPO_NAME, pull["number"])
    assert "+def farewell(name: str) -> str:" in diff
    kinds = [e["kind"] for e in followed["events"]]
    assert kinds[:2] == ["job.queued", "task.queued"] and "pull.published" in kinds
    # No issue, so no status comment anywhere, and no failed attempt to post one.
    assert live.comments(0) == [] and "status.failed" not in kinds
    # A retry of the same request (same key) is the same job: nothing runs twice.
    again = http.post("/api/v1/tasks", headers=auth, json={
        "forge": "local", "repo": REPO_NAME, "title": "Add a farewell",
        "text": "Add `farewell(name)` next to `greet`, with tests.",
        "constraints": ["Keep `greet` unchanged"]})
    assert again.status_code == 200 and again.get_json()["job"]["id"] == job["id"]
    live.run_until_idle()
    assert len(live.service.store.list_jobs()) == 1 and len(live.pulls()) == 1
