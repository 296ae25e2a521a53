"""Every comment command once through a real comment payload of GitHub, GitLab and Gitea.

The payloads are the forges' own (tests/fixtures/webhooks, copied from the shared
fixtures), with the comment's text replaced by the command, the repository and author made
those of the labelled-issue payload the fake serves, and signed as each forge signs. They go
to ``/webhooks/<forge>`` of the real service; the answers are read from the fake's API.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from bot.forges.verify import sign_sha256
from tests.e2e.forge_fakes import FakeForge, fixture, make_fake
from tests.e2e.test_forges_e2e import FORGES, Run, start  # noqa: F401 - the fixture

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def comment_delivery(forge: str, fake: FakeForge, text: str,
                     comment_id: int) -> tuple[dict[str, str], bytes]:
    """A signed comment-created delivery on issue 1 saying ``text``."""
    if forge == "github":
        labelled = fixture("github", "issues__labeled.json")
        payload = fixture("github", "issue_comment__created_issue.json")
        payload["repository"] = labelled["repository"]
        payload["issue"]["number"] = 1
        payload["issue"].pop("pull_request", None)
        payload["comment"].update(id=comment_id, body=text, user=labelled["sender"])
        payload["sender"] = labelled["sender"]
        body = json.dumps(payload).encode()
        return {"Content-Type": "application/json", "X-GitHub-Event": "issue_comment",
                "X-GitHub-Delivery": str(uuid.uuid4()),
                "X-Hub-Signature-256": "sha256=" + sign_sha256(fake.secret, body)}, body
    if forge == "gitlab":
        labelled = fixture("gitlab", "issue_hook__label_update.json")
        payload = fixture("gitlab", "note_hook__issue.json")
        payload["project"] = labelled["project"]
        payload["project_id"] = labelled["project"]["id"]
        payload["user"] = labelled["user"]
        payload["issue"]["iid"] = 1
        payload["object_attributes"].update(id=comment_id, note=text)
        body = json.dumps(payload).encode()
        key = str(uuid.uuid4())
        return {"Content-Type": "application/json", "X-Gitlab-Event": "Note Hook",
                "X-Gitlab-Token": fake.secret, "X-Gitlab-Event-UUID": key}, body
    labelled = fixture("gitea", "issues__label_updated.json")
    payload = fixture("gitea", "issue_comment__created_issue.json")
    payload.pop("secret", None)
    payload["repository"] = labelled["repository"]
    payload["sender"] = labelled["sender"]
    payload["issue"]["number"] = 1
    payload["comment"].update(id=comment_id, body=text, user=labelled["sender"])
    body = json.dumps(payload).encode()
    signature = sign_sha256(fake.secret, body)
    return {"Content-Type": "application/json", "X-Gitea-Event": "issue_comment",
            "X-Gitea-Delivery": str(uuid.uuid4()), "X-Gitea-Signature": signature}, body


def say(run: Run, forge: str, text: str, comment_id: int) -> list[str]:
    """Post the command, run until idle, and return the bot's new comments on issue 1."""
    before = len(run.fake.comments_on(1))
    headers, body = comment_delivery(forge, run.fake, text, comment_id)
    answer = run.service.app.test_client().post(f"/webhooks/{forge}", data=body,
                                                headers=headers)
    assert answer.status_code == 202
    run.run_until_idle()
    return [str(c["body"]) for c in run.fake.comments_on(1)[before:]]


@pytest.mark.parametrize("forge", FORGES)
def test_every_command_through_the_forges_own_comment_payload(
    start: Any, forge: str,  # noqa: F811 - the imported fixture
) -> None:
    fake = make_fake(forge)
    with fake.serving():
        run: Run = start(forge, fake)
        assert run.post() == 202
        run.run_until_idle()
        [job] = run.service.store.list_jobs()
        assert job.outcome == "submitted"

        [reply] = say(run, forge, "/status", 9001)
        assert "**done**, outcome `submitted`" in reply
        [reply] = say(run, forge, "/help", 9002)
        assert "/revise <feedback>" in reply and "/approve" in reply
        [reply] = say(run, forge, "@forgebot frobnicate", 9003)
        assert "I do not know `/frobnicate`" in reply
        [reply] = say(run, forge, "/approve", 9004)
        assert "has no plan waiting for approval" in reply
        replies = say(run, forge, "/explain", 9005)
        assert any("explanation of its change follows" in r for r in replies)
        assert any("in the model's words" in r for r in replies)
        assert run.service.store.get_job(job.id).outcome == "submitted"  # kept
        replies = say(run, forge, "/retry", 9006)
        assert any("queued again (retry)" in r for r in replies)
        replies = say(run, forge, "/revise Please keep it short.", 9007)
        assert any("queued again (revise)" in r for r in replies)
        [reply] = say(run, forge, "/cancel", 9008)
        assert "had already finished" in reply
        # A redelivery of a command's webhook (same comment id) runs nothing again.
        assert say(run, forge, "/retry", 9006) == []
        modes = [e["data"].get("mode") for e in run.service.store.events(job.id)
                 if e["kind"] == "job.requeued"]
        assert modes == ["explain", "retry", "revise"]
        prepared = [e["data"]["mode"] for e in run.service.store.events(job.id)
                    if e["kind"] == "prepared"]
        assert prepared == ["first", "retry", "revise"]
