"""Reconciliation and the dashboard issue, end to end on the local forge.

A person acts on the forge while the bot hears nothing (the local forge's admin functions
change its files and hand back the deliveries, which these tests keep instead of sending:
a lost webhook). A reconciliation pass then finds what happened and acts once; passing
again, or the lost webhook turning up after all, changes nothing more.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from bot.config import load_settings
from bot.forges.local import admin
from bot.forges.local.admin import Delivery
from bot.forges.local.layout import read_document
from bot.pipeline.dashboard_issue import checked_jobs, retry_line
from bot.pipeline.reconcile import ReconcileReport
from bot.service import build_service
from bot.store.records import get_record
from tests.conftest import REPO, SECRET
from tests.e2e.conftest import REPO_NAME, Live
from tests.e2e.forge_fakes import SECRET as FAKE_SECRET
from tests.e2e.forge_fakes import TOKEN, ReconcilingGitHub, forge_env

pytestmark = [pytest.mark.docker, pytest.mark.slow]

FAREWELL = Path(__file__).resolve().parents[1] / "fixtures" / "transcripts" / "add_farewell.yaml"


def send(live: Live, deliveries: list[Delivery]) -> None:
    assert deliveries, "the action raised no delivery"
    for delivery in deliveries:
        admin.deliver(live.url, SECRET, delivery.event, delivery.payload)


def kinds(live: Live, job_id: int) -> list[str]:
    return [e["kind"] for e in live.service.store.events(job_id)]


def issue_doc(live: Live, number: int) -> tuple[dict[str, object], str]:
    doc = read_document(live.settings.local_root / REPO_NAME / "issues" / f"{number}.md")
    return doc.front, doc.body


def test_a_lost_label_webhook_is_recovered_without_a_duplicate_job(live_factory):
    live: Live = live_factory(FAREWELL)
    number, lost = admin.create_issue(live.settings.local_root, REPO_NAME, "Add a farewell",
                                      "Add farewell(name).", labels=["forgebot"],
                                      author="grace")
    assert live.service.store.list_jobs() == []  # the webhook never arrived
    [report] = live.service.reconcile()
    assert report.labels == 1 and not report.error
    [job] = live.service.store.list_jobs()
    assert (job.issue_number, job.requested_by, job.state) == (number, "grace", "queued")
    # Again (from the command line), and then the lost webhook after all: still one job.
    output = live.cli("reconcile")
    assert "local:acme/hello: 0 labelled issue(s), 0 comment(s)" in output
    send(live, lost)
    live.run_until_idle()
    [job] = live.service.store.list_jobs()
    assert (job.state, job.outcome) == ("done", "submitted")
    assert len(live.pulls()) == 1
    assert kinds(live, job.id).count("job.queued") == 1
    last = get_record(live.service.store, "local", REPO_NAME, "reconcile", "last")
    assert last is not None and last["labels"] == 0 and last["error"] == ""


def test_a_label_added_by_someone_without_permission_starts_nothing(live_factory):
    live: Live = live_factory(FAREWELL)
    (live.settings.local_root / "permissions.yml").write_text("grace: admin\nmallory: read\n")
    admin.create_issue(live.settings.local_root, REPO_NAME, "Add a farewell", "",
                       labels=["forgebot"], author="mallory")
    live.service.reconcile()
    assert live.service.store.list_jobs() == []
    assert any("only starts work for people with" in c for c in live.comments(1))


def test_a_missed_merge_closes_the_issue_once(live_factory):
    live: Live = live_factory(FAREWELL)
    live.file_issue("Add a farewell")
    live.run_until_idle()
    [pull] = live.pulls()
    lost = admin.merge_pull(live.settings.local_root, REPO_NAME, int(pull["number"]), "grace")
    [report] = live.service.reconcile()
    assert report.pulls == 1
    live.service.reconcile()
    send(live, lost)
    live.run_until_idle()
    front, _ = issue_doc(live, 1)
    assert front["state"] == "closed"
    closing = [c for c in live.comments(1) if "was merged" in c]
    assert len(closing) == 1 and "@grace" in closing[0]
    [job] = live.service.store.list_jobs()
    assert kinds(live, job.id).count("pull.merged") == 1


def test_a_missed_retry_comment_requeues_the_job_once(live_factory):
    live: Live = live_factory(FAREWELL)
    live.file_issue("Add a farewell")
    live.service.dispatcher.planner.plan_pending()
    [job] = live.service.store.list_jobs()
    assert live.service.store.cancel(job.id, by="grace")
    admin.add_comment(live.settings.local_root, REPO_NAME, 1, "/retry", "grace")  # lost
    [report] = live.service.reconcile()
    assert report.comments == 1 and report.jobs == [job.id]
    assert live.service.store.get_job(job.id).state == "queued"
    live.run_until_idle()
    [again] = live.service.reconcile()  # the comment is not handed over a second time
    assert again.comments == 0
    live.run_until_idle()
    finished = live.service.store.get_job(job.id)
    assert (finished.state, finished.outcome) == ("done", "submitted")
    assert kinds(live, job.id).count("job.requeued") == 1
    assert kinds(live, job.id).count("attempt.started") == 1
    assert sum("queued again (retry)" in c for c in live.comments(1)) == 1


def test_the_dashboard_issue_lists_a_failed_job_and_its_box_retries_it_once(
        live_factory, tmp_path):
    policy = tmp_path / "policy.yml"
    policy.write_text("version: 1\ndashboard_issue:\n  enabled: true\n  title: Bot jobs\n")
    live: Live = live_factory(FAREWELL, {"FORGEBOT_POLICY_FILE": str(policy)})
    live.file_issue("Add a farewell")
    live.service.dispatcher.planner.plan_pending()
    store = live.service.store
    claim = store.claim_next("test-worker", 60)
    assert claim is not None and store.finish(claim, "test-worker", "tests_failed", failed=True)
    [report] = live.service.reconcile()
    number = report.dashboard
    assert number is not None and number != 1
    front, body = issue_doc(live, number)
    assert front["title"] == "Bot jobs" and front["author"] == "forgebot"
    assert f"| {claim.job.id} | #1 | Add a farewell | tests_failed |" in body
    assert retry_line(claim.job.id) in body.splitlines()
    # A second pass finds the same issue and makes no other.
    [again] = live.service.reconcile()
    assert again.dashboard == number and again.jobs == []
    assert len(list((live.settings.local_root / REPO_NAME / "issues").glob("*.md"))) == 2
    # A maintainer ticks the box.
    ticked = body.replace(retry_line(claim.job.id), retry_line(claim.job.id, checked=True))
    live.service.runtime.forges["local"].edit_issue(REPO_NAME, number, ticked)
    [retried] = live.service.reconcile()
    assert retried.jobs == [claim.job.id]
    assert store.get_job(claim.job.id).state == "queued"
    _, body = issue_doc(live, number)
    assert checked_jobs(body) == [] and "### Queued (1)" in body and "### Failed (0)" in body
    live.service.reconcile()
    requeued = [e for e in store.events(claim.job.id) if e["kind"] == "job.requeued"]
    assert len(requeued) == 1 and requeued[0]["data"]["by"] == "dashboard"
    live.run_until_idle()
    assert store.get_job(claim.job.id).outcome == "submitted"


def test_on_github_a_lost_label_and_a_lost_merge_are_recovered_once(tmp_path):
    fake = ReconcilingGitHub(token=TOKEN, secret=FAKE_SECRET)
    git_root, source = tmp_path / "git", tmp_path / "source"
    shutil.copytree(REPO / "examples" / "hello-service", source,
                    ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"))
    admin.init_repo(git_root, fake.repo, source, default_branch="master")
    env = {"FORGEBOT_DATA_DIR": str(tmp_path / "data"), "FORGEBOT_LLM__PROVIDER": "replay",
           "FORGEBOT_LLM__TRANSCRIPT": str(FAREWELL), "FORGEBOT_SCHEDULER__CONCURRENCY": "1",
           "FORGEBOT_FORGES__GITHUB__REPOSITORIES": json.dumps([fake.repo]),
           **forge_env("github", fake, git_root)}
    with fake.serving():
        service = build_service(load_settings(None, environ=env))
        service.start(schedule=False)
        try:
            def github_pass() -> ReconcileReport:
                [report] = [r for r in service.reconcile() if r.forge == "github"]
                assert report.error == ""
                return report

            assert github_pass().labels == 1
            assert github_pass().labels == 0
            for _ in range(20):
                service.dispatcher.tick()
                service.dispatcher.wait_idle(timeout=600)
                if service.store.is_idle():
                    break
            [job] = service.store.list_jobs()
            assert (job.state, job.outcome, job.requested_by) == ("done", "submitted",
                                                                  "Codertocat")
            [pull] = fake.pull_requests_made
            fake.merge(pull["number"], "octocat")
            assert github_pass().pulls == 1
            assert github_pass().pulls == 0
            assert fake.closed == [1]
            merged = [c for c in fake.comments_on(1) if "was merged" in c["body"]]
            assert len(merged) == 1 and "@octocat" in merged[0]["body"]
        finally:
            service.stop()
