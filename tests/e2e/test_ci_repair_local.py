"""One CI repair round trip on the local forge, end to end: the bot's pull request waits as a
draft for the forge's CI; the CI fails (``forgebot local check``, a signed ``status``
webhook to the real receiver) → a diagnosis comment and a repair attempt on the same branch
with the failure as feedback (replay model, Docker sandbox) → a new commit → the CI passes
→ the pull request is marked ready for review."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.forges.local import admin
from bot.pipeline.ci_repair import READY_NOTE, WAITING_NOTE
from tests.conftest import REPO
from tests.e2e.conftest import REPO_NAME

pytestmark = [pytest.mark.docker, pytest.mark.slow]

TRANSCRIPTS = Path(__file__).resolve().parents[1] / "fixtures" / "transcripts"
CI_LOG = """\
============================= test session starts ==============================
tests/test_farewell.py F
E       AssertionError: the release checklist wants 'See you soon.' in every farewell
FAILED tests/test_farewell.py::test_farewell_checklist
========================= 1 failed, 6 passed in 0.31s ==========================
"""


def test_a_failing_ci_is_repaired_and_the_pull_request_marked_ready(live_factory, tmp_path):
    policy = tmp_path / "policy.yml"
    policy.write_text((REPO / "policies" / "default.yml").read_text()
                      + "\nci:\n  repair: fix\n  max_repairs: 2\n  ready_when_green: true\n")
    revision = (TRANSCRIPTS / "farewell_revision.yaml").read_text()
    first = (TRANSCRIPTS / "add_farewell.yaml").read_text()
    (tmp_path / "replay.yaml").write_text(revision + first)
    live = live_factory(tmp_path / "replay.yaml", {"FORGEBOT_POLICY_FILE": str(policy)})
    live.file_issue("Add a farewell")
    live.run_until_idle()
    [pull] = live.pulls()
    number = str(pull["number"])
    assert pull["draft"] is True  # ready, but waiting for the forge's CI
    _, body, _ = admin.show_pull(live.settings.local_root, REPO_NAME, pull["number"])
    assert WAITING_NOTE.strip() in body

    log = tmp_path / "ci.log"
    log.write_text(CI_LOG)
    live.cli("local", "check", "--repo", REPO_NAME, number, "--state", "failure",
             "--context", "ci/tests", "--description", "1 failed, 6 passed", "--log", str(log))
    live.run_until_idle()

    [job] = live.service.store.list_jobs()
    assert (job.state, job.outcome) == ("done", "submitted")
    requests = [e["data"] for e in live.service.store.events(job.id)
                if e["kind"] == "job.requeued"]
    assert [(r["mode"], r["by"]) for r in requests] == [("revise", "ci")]
    assert "release checklist" in requests[0]["feedback"]
    said = "\n".join(live.comments(pull["number"]))
    assert "The forge's CI failed" in said and "repair 1 of 2" in said
    [pull] = live.pulls()
    _, body, diff = admin.show_pull(live.settings.local_root, REPO_NAME, pull["number"])
    assert "See you soon." in diff  # the repair's change, on the same branch
    assert pull["draft"] is True  # still waiting: the new commit has no CI verdict yet

    live.cli("local", "check", "--repo", REPO_NAME, number, "--state", "success",
             "--context", "ci/tests", "--description", "7 passed")
    live.run_until_idle()
    [pull] = live.pulls()
    _, body, _ = admin.show_pull(live.settings.local_root, REPO_NAME, pull["number"])
    assert pull["draft"] is False
    assert WAITING_NOTE.strip() not in body
    head = [e["data"]["sha"] for e in live.service.store.events(job.id)
            if e["kind"] == "pull.published"][-1]
    assert READY_NOTE.format(sha=head[:12]).strip() in body
