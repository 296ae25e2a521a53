"""The lifecycle of a job driven by forge events, end to end on the local forge.

Each test drives the live service with the deliveries a person's action raises (merge,
close, unlabel, push, review), sent to the receiver like any webhook, and checks what the
bot did on the forge and in the job's events. Sending a delivery again (a redelivery with a
new id, which the receiver cannot tell apart) changes nothing more.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bot import gitops
from bot.errors import GitError
from bot.forges.local import admin
from bot.forges.local.admin import Delivery
from bot.forges.local.layout import read_document, read_yaml
from tests.conftest import SECRET
from tests.e2e.conftest import REPO_NAME, Live

pytestmark = [pytest.mark.docker, pytest.mark.slow]

FAREWELL = Path(__file__).resolve().parents[1] / "fixtures" / "transcripts" / "add_farewell.yaml"
REVISION = FAREWELL.with_name("farewell_revision.yaml").read_text()


def send(live: Live, deliveries: list[Delivery], times: int = 1) -> None:
    """Post the deliveries to the receiver (``times`` > 1: the same bodies again, each time
    with a new delivery id, as a forge's redelivery or a replay would)."""
    assert deliveries, "the action raised no delivery"
    for _ in range(times):
        for delivery in deliveries:
            admin.deliver(live.url, SECRET, delivery.event, delivery.payload)


def issue_front(live: Live, number: int) -> dict[str, object]:
    front, _, _ = admin.show_issue(live.settings.local_root, REPO_NAME, number)
    return front


def kinds(live: Live, job_id: int) -> list[str]:
    return [e["kind"] for e in live.service.store.events(job_id)]


def branch_sha(live: Live, branch: str) -> str | None:
    git_dir = live.settings.local_root / "acme" / "hello.git"
    try:
        return gitops.run(["rev-parse", "--verify", f"refs/heads/{branch}"], cwd=git_dir).strip()
    except GitError:  # no such branch
        return None


def published(live_factory: object, transcript: Path) -> tuple[Live, dict[str, object]]:
    """A live service whose issue #1 already has the bot's pull request."""
    live: Live = live_factory(transcript)  # type: ignore[operator]
    live.file_issue("Add a farewell")
    live.run_until_idle()
    [pull] = live.pulls()
    return live, pull


def test_a_merged_pull_request_closes_its_issue_with_a_link(live_factory):
    live, pull = published(live_factory, FAREWELL)
    # The trigger label was acknowledged with 👀 on the issue itself.
    reactions = read_yaml(live.settings.local_root / REPO_NAME / "reactions" / "1.yml", {})
    assert reactions["issue"] == ["eyes"]
    merge = admin.merge_pull(live.settings.local_root, REPO_NAME, int(pull["number"]), "grace")
    send(live, merge, times=2)
    live.run_until_idle()
    assert issue_front(live, 1)["state"] == "closed"
    closing = [c for c in live.comments(1) if "was merged" in c]
    assert len(closing) == 1  # the second delivery changed nothing
    assert f"[#{pull['number']}](file://" in closing[0] and "@grace" in closing[0]
    [job] = live.service.store.list_jobs()
    assert kinds(live, job.id).count("pull.merged") == 1
    assert (job.state, job.outcome) == ("done", "submitted")


def test_closing_the_pull_request_unmerged_cancels_the_job_and_deletes_the_branch(
        live_factory, tmp_path):
    live, pull = published(live_factory, FAREWELL)
    branch = str(pull["head"])
    assert branch_sha(live, branch) is not None
    # A revision is queued, then the pull request is closed before it runs.
    live.cli("local", "comment", "--repo", REPO_NAME, str(pull["number"]),
             "/revise\nSay see you soon.")
    live.service.dispatcher.planner.plan_pending()
    [job] = live.service.store.list_jobs()
    assert job.state == "queued"
    send(live, admin.close_pull(live.settings.local_root, REPO_NAME, int(pull["number"]),
                                "grace"), times=2)
    live.run_until_idle()
    job = live.service.store.get_job(job.id)
    assert (job.state, job.outcome) == ("cancelled", "cancelled")
    assert branch_sha(live, branch) is None
    assert kinds(live, job.id).count("pull.closed") == 1
    assert kinds(live, job.id).count("attempt.started") == 1  # the revision never ran
    said = [c for c in live.comments(1) if "closed without merging" in c]
    assert len(said) == 1 and f"`{branch}` deleted" in said[0]


def test_removing_the_trigger_label_cancels_the_job_once(live_factory, transcripts):
    live = live_factory(transcripts / "add_farewell.yaml")
    live.file_issue("Add a farewell")
    unlabel = admin.remove_label(live.settings.local_root, REPO_NAME, 1, "forgebot", "grace")
    send(live, unlabel, times=2)
    live.run_until_idle()
    [job] = live.service.store.list_jobs()
    assert (job.state, job.outcome) == ("cancelled", "cancelled")
    assert live.pulls() == []
    said = [c for c in live.comments(1) if "removed the trigger label" in c]
    assert len(said) == 1


def test_closing_the_issue_cancels_the_job(live_factory, transcripts):
    live = live_factory(transcripts / "add_farewell.yaml")
    live.file_issue("Add a farewell")
    send(live, admin.close_issue(live.settings.local_root, REPO_NAME, 1, "grace"))
    live.run_until_idle()
    [job] = live.service.store.list_jobs()
    assert job.state == "cancelled" and live.pulls() == []
    assert any("@grace closed the issue" in c for c in live.comments(1))


def test_a_human_push_to_the_bots_branch_stops_the_bot(live_factory, tmp_path):
    transcript = tmp_path / "transcript.yaml"
    transcript.write_text(REVISION + FAREWELL.read_text())
    live, pull = published(live_factory, transcript)
    branch, number = str(pull["head"]), int(pull["number"])
    push = admin.push_files(live.settings.local_root, REPO_NAME, branch,
                            {"NOTES.md": "Taken over by a person.\n"},
                            message="A person's commit", pusher="grace")
    human_sha = push[0].payload["after"]
    send(live, push, times=2)
    live.run_until_idle()
    [job] = live.service.store.list_jobs()
    taken = [e for e in live.service.store.events(job.id) if e["kind"] == "branch.taken_over"]
    assert len(taken) == 1
    assert taken[0]["data"] | {"key": ""} == {"branch": branch, "by": "grace", "sha": human_sha,
                                              "key": ""}
    stops = [c for c in live.comments(number) if "stops updating this branch" in c]
    assert len(stops) == 1 and "@grace" in stops[0]
    # A review now starts nothing, and a /revise does not push over the person's commit.
    send(live, admin.review_pull(live.settings.local_root, REPO_NAME, number,
                                 state="changes_requested", body="See you soon, please.",
                                 author="grace"))
    live.run_until_idle()
    assert kinds(live, job.id).count("attempt.started") == 1
    live.cli("local", "comment", "--repo", REPO_NAME, str(number), "/revise\nSee you soon.")
    live.run_until_idle()
    assert branch_sha(live, branch) == human_sha
    finished = live.service.store.get_job(job.id)
    assert finished is not None and finished.outcome == "taken_over"
    assert "someone else has pushed to it" in live.comments(1)[-1]


def test_the_trigger_label_again_answers_with_the_pull_request(live_factory):
    live, pull = published(live_factory, FAREWELL)
    root = live.settings.local_root
    # On GitHub, labelling again means removing the label and adding it back.
    send(live, admin.remove_label(root, REPO_NAME, 1, "forgebot", "grace"))
    send(live, admin.add_label(root, REPO_NAME, 1, "forgebot", "grace"))
    live.run_until_idle()
    assert len(live.service.store.list_jobs()) == 1
    assert len(live.pulls()) == 1
    links = [c for c in live.comments(1) if "already has a pull request" in c]
    assert len(links) == 1 and f"#{pull['number']}" in links[0]
    assert not any("cancelled" in c for c in live.comments(1))  # the job had finished


def test_a_review_requesting_changes_starts_a_revision_with_its_text(live_factory, tmp_path):
    transcript = tmp_path / "transcript.yaml"
    transcript.write_text(REVISION + FAREWELL.read_text())
    live, pull = published(live_factory, transcript)
    number = int(pull["number"])
    root = live.settings.local_root
    # An approval asks for nothing.
    send(live, admin.review_pull(root, REPO_NAME, number, state="approved", body="Nice.",
                                 author="grace"))
    review = admin.review_pull(root, REPO_NAME, number, state="changes_requested",
                               body="Please add 'See you soon.' to the farewell.",
                               author="grace")
    send(live, review, times=2)
    live.run_until_idle()
    [job] = live.service.store.list_jobs()
    assert job.outcome == "submitted"
    events = live.service.store.events(job.id)
    assert [e["kind"] for e in events].count("attempt.started") == 2  # one revision only
    prepared = [e["data"] for e in events if e["kind"] == "prepared"]
    assert prepared[-1]["mode"] == "revise" and prepared[-1]["start"] == pull["head"]
    request = live.service.store.last_request(job.id)
    assert "Please add 'See you soon.' to the farewell." in request["feedback"]
    assert "@grace" in request["feedback"]
    _, _, diff = admin.show_pull(root, REPO_NAME, number)
    assert "See you soon." in diff
    reactions = read_yaml(root / REPO_NAME / "reactions" / f"{number}.yml", {})
    assert reactions["issue"] == ["eyes"]  # 👀 on the pull request
    pull_doc = read_document(root / REPO_NAME / "pulls" / f"{number}.md")
    assert pull_doc.front["state"] == "open"
