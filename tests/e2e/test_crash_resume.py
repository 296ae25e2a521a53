"""``forgebot serve`` killed with SIGKILL in the middle of a job: on restart the job finishes,
with exactly one pull request."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from bot.config import load_settings
from bot.forges.local import admin
from bot.store import open_store
from tests.conftest import REPO
from tests.e2e.conftest import REPO_NAME, e2e_env

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_serve(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:  # the child keeps its own descriptor
        proc = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "serve"], env={**os.environ, **env},
            stdout=out, stderr=subprocess.STDOUT, cwd=REPO,
        )
    base = env["FORGEBOT_FORGES__LOCAL__RECEIVER_URL"].rsplit("/webhooks", 1)[0]
    for _ in range(300):
        try:
            if requests.get(f"{base}/readyz", timeout=1).status_code == 200:
                return proc
        except requests.ConnectionError:
            pass
        if proc.poll() is not None:
            raise AssertionError(f"serve exited early:\n{log.read_text()}")
        time.sleep(0.1)
    raise AssertionError("serve did not become ready")


def wait_for(predicate, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError("timed out")


def test_killed_during_a_job_resumes_with_one_pull_request(tmp_path, transcripts):
    port = free_port()
    env = e2e_env(tmp_path / "data", transcripts / "add_farewell.yaml")
    env.update({"FORGEBOT_WEB__PORT": str(port), "FORGEBOT_SCHEDULER__TICK_SECONDS": "1",
                "FORGEBOT_FORGES__LOCAL__RECEIVER_URL": f"http://127.0.0.1:{port}/webhooks/local"})
    settings = load_settings(None, environ=env)
    admin.init_repo(settings.local_root, REPO_NAME, REPO / "examples" / "hello-service")
    store = open_store(settings.store_url)
    log = tmp_path / "serve.log"

    first = start_serve(env, log)
    try:
        number, deliveries = admin.create_issue(settings.local_root, REPO_NAME, "Add a farewell",
                                                "", labels=["forgebot"], author="ada")
        for d in deliveries:
            admin.deliver(env["FORGEBOT_FORGES__LOCAL__RECEIVER_URL"], env[
                "FORGEBOT_FORGES__LOCAL__SECRET"], d.event, d.payload)
        wait_for(lambda: any(
            e["kind"] == "stage.started" and e["data"].get("stage") in ("implement", "verify")
            for j in store.list_jobs() for e in store.events(j.id)))
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    [job] = store.list_jobs()
    assert job.state == "running"  # killed mid-job

    second = start_serve(env, log)
    try:
        wait_for(lambda: store.get_job(job.id).state in ("done", "failed"))
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=60)
    view = store.get_job(job.id)
    assert (view.state, view.outcome) == ("done", "submitted"), log.read_text()[-3000:]
    assert len(admin.list_pulls(settings.local_root, REPO_NAME)) == 1
    _, _, comments = admin.show_issue(settings.local_root, REPO_NAME, number)
    assert len(comments) == 1  # one status comment, edited by both attempts
    assert "attempt 2" in comments[0][1] and "outcome `submitted`" in comments[0][1]
    attempts = [e for e in store.events(job.id) if e["kind"] == "attempt.started"]
    assert len(attempts) == 2
    assert any(e["kind"] == "job.requeued" for e in store.events(job.id))
    assert number == 1
