"""The planner with the real local forge and store: who may start work, comment commands,
and the lifecycle of a job (merge, close, unlabel, push, review), each idempotent."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bot import gitops
from bot.errors import GitError
from bot.events import IssueClosed, PullClosed, Repo
from bot.forges.base import NewPull
from bot.forges.local import LocalForge, admin
from bot.pipeline.planner import Planner, trigger_key
from bot.policy.model import Policy
from tests.conftest import REPO, SECRET, signed

REPO_NAME = "acme/hello"


@pytest.fixture
def forge(tmp_path: Path) -> LocalForge:
    root = tmp_path / "forge"
    admin.init_repo(root, REPO_NAME, REPO / "examples" / "hello-service")
    (root / "permissions.yml").write_text("ada: admin\nmallory: read\n")
    admin.create_issue(root, REPO_NAME, "Add farewell", "", labels=[], author="ada")
    return LocalForge(root, SECRET)


def deliver(store, deliveries) -> None:
    for d in deliveries:
        headers, body = signed(d.event, d.payload)
        store.record_delivery("local", headers["X-Forgebot-Delivery"], d.event, headers, body)


def comments(forge: LocalForge) -> list[str]:
    return [body for _, body in admin.show_issue(forge.root, REPO_NAME, 1)[2]]


def planner(store, forge) -> Planner:
    return Planner(store, {"local": forge}, Policy(), "forgebot")


def test_a_trigger_label_from_someone_without_write_starts_nothing(store, forge):
    deliver(store, admin.add_label(forge.root, REPO_NAME, 1, "forgebot", "mallory"))
    assert planner(store, forge).plan_pending() == 0
    assert store.list_jobs() == []
    [reply] = comments(forge)
    assert "@mallory" in reply and "**write** permission" in reply


def test_polite_replies_are_limited_to_one_per_user_and_item(store, forge):
    p = planner(store, forge)
    for body in ("/retry", "/status", "/help"):
        deliver(store, admin.add_comment(forge.root, REPO_NAME, 1, body, "mallory"))
    p.plan_pending()
    assert len([c for c in comments(forge) if "@mallory" in c]) == 1


def test_a_maintainers_label_makes_one_job(store, forge):
    deliver(store, admin.add_label(forge.root, REPO_NAME, 1, "forgebot", "ada"))
    deliver(store, admin.add_label(forge.root, REPO_NAME, 1, "forgebot", "ada"))
    assert planner(store, forge).plan_pending() == 1
    assert len(store.list_jobs()) == 1


def test_a_delivery_planned_again_after_a_crash_is_still_its_jobs_delivery(store, forge):
    # A worker died after the job was made and before the delivery was marked: after the
    # restart the same delivery is planned again. It is that job's delivery, not a repeat.
    deliver(store, admin.add_label(forge.root, REPO_NAME, 1, "forgebot", "ada"))
    p = planner(store, forge)
    [delivery] = store.take_deliveries("dead-worker")
    event = forge.parse(delivery.headers, delivery.body)
    first = p.plan_event(forge, event, delivery.id)
    again = p.plan_event(forge, event, delivery.id)
    assert (first.status, again.status) == ("job", "job")
    assert first.job_id == again.job_id and len(store.list_jobs()) == 1
    # A second, different delivery of the same label is a repeat.
    assert p.plan_event(forge, event, None).status == "ignored"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("/help", "/retry"),
        ("@forgebot /HELP", "/revise"),
        ("/status", "no job for this item"),
        ("/revise", "/revise"),  # a usage hint: feedback is required
        ("@forgebot /frobnicate", "I do not know `/frobnicate`"),
    ],
)
def test_commands_answer_visibly(store, forge, body, expected):
    deliver(store, admin.add_comment(forge.root, REPO_NAME, 1, body, "ada"))
    planner(store, forge).plan_pending()
    assert expected in comments(forge)[-1]
    assert store.delivery_counts() == {"command": 1}


@pytest.mark.parametrize("body", ["> /retry\nI disagree", "```\n/retry\n```", "/build", "thanks!"])
def test_comments_that_are_not_commands_for_us_are_ignored(store, forge, body):
    deliver(store, admin.add_comment(forge.root, REPO_NAME, 1, body, "ada"))
    planner(store, forge).plan_pending()
    assert comments(forge) == [body]
    assert store.delivery_counts() == {"ignored": 1}


def test_the_bots_own_comments_are_ignored(store, forge):
    deliver(store, admin.add_comment(forge.root, REPO_NAME, 1, "/help", "forgebot"))
    planner(store, forge).plan_pending()
    assert store.delivery_counts() == {"ignored": 1}


# ----------------------------------------------------------------------------- lifecycle

BRANCH = "forgebot/1-add-farewell"


def publish(store, forge: LocalForge) -> tuple[int, int]:
    """A job for issue #1 whose branch and pull request exist, as after a first attempt.
    Returns (job id, pull request number)."""
    git_dir = forge.root / "acme" / "hello.git"
    gitops.run(["branch", BRANCH, "main"], cwd=git_dir)
    job = store.create_job(trigger_key=trigger_key("local", REPO_NAME, 1), forge="local",
                           repo=REPO_NAME, default_branch="main", issue_number=1,
                           title="Add farewell", requested_by="ada", delivery_row=None)
    pull = forge.open_pull(REPO_NAME, NewPull(head=BRANCH, base="main", title="Add farewell",
                                              body="", draft=False))
    store.update_job(job.id, branch=BRANCH, pull_number=pull.number)
    claim = store.claim_next("worker", 60)
    store.finish(claim, "worker", "submitted", failed=False)
    return job.id, pull.number


def branch_exists(forge: LocalForge, branch: str) -> bool:
    try:
        gitops.run(["rev-parse", "--verify", f"refs/heads/{branch}"],
                   cwd=forge.root / "acme" / "hello.git")
    except GitError:
        return False
    return True


def kinds(store, job_id: int) -> list[str]:
    return [e["kind"] for e in store.events(job_id)]


def test_an_accepted_trigger_label_is_acknowledged_with_eyes(store, forge):
    deliver(store, admin.add_label(forge.root, REPO_NAME, 1, "forgebot", "ada"))
    planner(store, forge).plan_pending()
    reactions = forge.root / REPO_NAME / "reactions" / "1.yml"
    assert yaml.safe_load(reactions.read_text()) == {"issue": ["eyes"]}


def test_a_merge_closes_the_issue_once_however_often_it_is_delivered(store, forge):
    job_id, number = publish(store, forge)
    merge = admin.merge_pull(forge.root, REPO_NAME, number, "ada")
    deliver(store, merge)
    deliver(store, merge)  # a redelivery the receiver could not recognise
    planner(store, forge).plan_pending()
    assert admin.show_issue(forge.root, REPO_NAME, 1)[0]["state"] == "closed"
    closing = [c for c in comments(forge) if "was merged" in c]
    assert len(closing) == 1 and f"[#{number}](file://" in closing[0]
    assert kinds(store, job_id).count("pull.merged") == 1
    assert store.delivery_counts() == {"lifecycle": 1, "ignored": 1}


def test_a_merge_leaves_the_issue_open_when_the_policy_says_so(store, forge):
    job_id, number = publish(store, forge)
    deliver(store, admin.merge_pull(forge.root, REPO_NAME, number, "ada"))
    policy = Policy.model_validate({"lifecycle": {"close_issue_on_merge": False}})
    Planner(store, {"local": forge}, policy, "forgebot").plan_pending()
    assert admin.show_issue(forge.root, REPO_NAME, 1)[0]["state"] == "open"
    assert kinds(store, job_id).count("pull.merged") == 1


def test_closing_unmerged_cancels_and_deletes_only_the_bots_branch(store, forge):
    job_id, number = publish(store, forge)
    assert store.requeue(job_id, mode="revise", feedback="x", by="ada")
    close = admin.close_pull(forge.root, REPO_NAME, number, "ada")
    deliver(store, close)
    deliver(store, close)
    planner(store, forge).plan_pending()
    assert store.get_job(job_id).state == "cancelled"
    assert not branch_exists(forge, BRANCH)
    assert kinds(store, job_id).count("pull.closed") == 1
    assert len([c for c in comments(forge) if "closed without merging" in c]) == 1
    # Labelling the issue again starts over: a new attempt of the same job.
    deliver(store, admin.add_label(forge.root, REPO_NAME, 1, "forgebot", "ada"))
    planner(store, forge).plan_pending()
    assert store.get_job(job_id).state == "queued"
    assert store.last_request(job_id)["mode"] == "retry"


def test_a_pull_request_whose_head_is_not_a_bot_branch_keeps_its_branch(store, forge):
    job_id, number = publish(store, forge)
    event = PullClosed(repo=Repo("local", REPO_NAME), number=number, head="main",
                       merged=False, sender="ada")
    planner(store, forge).plan_event(forge, event, None)
    assert branch_exists(forge, "main")
    assert "branch.deleted" not in kinds(store, job_id)


def test_someone_elses_pull_request_is_none_of_the_bots_business(store, forge):
    publish(store, forge)
    event = PullClosed(repo=Repo("local", REPO_NAME), number=99, head="feature", merged=True,
                       sender="ada")
    result = planner(store, forge).plan_event(forge, event, None)
    assert result.status == "ignored"
    assert admin.show_issue(forge.root, REPO_NAME, 1)[0]["state"] == "open"


def test_a_push_by_a_person_is_recorded_and_said_once(store, forge):
    job_id, number = publish(store, forge)
    push = admin.push_files(forge.root, REPO_NAME, BRANCH, {"a.txt": "mine\n"},
                            message="mine", pusher="ada")
    deliver(store, push)
    deliver(store, push)
    second = admin.push_files(forge.root, REPO_NAME, BRANCH, {"a.txt": "still mine\n"},
                              message="again", pusher="ada")
    deliver(store, second)
    planner(store, forge).plan_pending()
    taken = [e["data"] for e in store.events(job_id) if e["kind"] == "branch.taken_over"]
    assert [t["sha"] for t in taken] == [push[0].payload["after"], second[0].payload["after"]]
    said = [body for _, body in admin.show_issue(forge.root, REPO_NAME, number)[2]]
    assert len([c for c in said if "stops updating this branch" in c]) == 1


def test_a_branch_someone_pushed_to_is_not_deleted_when_its_pull_closes(store, forge):
    job_id, number = publish(store, forge)
    deliver(store, admin.push_files(forge.root, REPO_NAME, BRANCH, {"a.txt": "mine\n"},
                                    message="mine", pusher="ada"))
    deliver(store, admin.close_pull(forge.root, REPO_NAME, number, "ada"))
    planner(store, forge).plan_pending()
    assert branch_exists(forge, BRANCH)
    assert kinds(store, job_id).count("pull.closed") == 1


def test_the_bots_own_push_is_not_a_take_over(store, forge):
    job_id, _ = publish(store, forge)
    push = admin.push_files(forge.root, REPO_NAME, BRANCH, {"a.txt": "bot\n"},
                            message="bot", pusher="someone")
    store.add_event(job_id, "push.intent", {"sha": push[0].payload["after"]})
    deliver(store, push)
    deliver(store, admin.push_files(forge.root, REPO_NAME, BRANCH, {"b.txt": "bot\n"},
                                    message="bot", pusher="forgebot[bot]"))
    planner(store, forge).plan_pending()
    assert "branch.taken_over" not in kinds(store, job_id)


def review(forge: LocalForge, number: int, state: str, body: str, author: str = "ada"):
    return admin.review_pull(forge.root, REPO_NAME, number, state=state, body=body,
                             author=author)


def test_a_review_asking_for_changes_queues_one_revision(store, forge):
    job_id, number = publish(store, forge)
    changes = review(forge, number, "changes_requested", "Rename it to goodbye.")
    deliver(store, review(forge, number, "approved", "Looks good."))
    deliver(store, changes)
    deliver(store, changes)
    deliver(store, review(forge, number, "changes_requested", "Rename x.", "mallory"))
    planner(store, forge).plan_pending()
    job = store.get_job(job_id)
    assert job.state == "queued"
    request = store.last_request(job_id)
    assert request["mode"] == "revise"
    assert request["feedback"] == "Review by @ada (changes_requested):\nRename it to goodbye."
    assert kinds(store, job_id).count("review.revision") == 1
    assert kinds(store, job_id).count("job.requeued") == 1
    reactions = forge.root / REPO_NAME / "reactions" / f"{number}.yml"
    assert yaml.safe_load(reactions.read_text()) == {"issue": ["eyes"]}


def test_review_comments_join_the_revision_that_is_still_queued(store, forge):
    job_id, number = publish(store, forge)
    deliver(store, review(forge, number, "changes_requested", "First."))
    deliver(store, review(forge, number, "commented", "app.py:3: Second."))
    planner(store, forge).plan_pending()
    feedback = store.last_request(job_id)["feedback"]
    assert "First." in feedback and "app.py:3: Second." in feedback


def test_a_review_while_the_job_runs_is_answered_not_queued(store, forge):
    job_id, number = publish(store, forge)
    assert store.requeue(job_id, mode="retry", feedback="", by="ada")
    store.claim_next("worker", 60)
    deliver(store, review(forge, number, "changes_requested", "Later."))
    planner(store, forge).plan_pending()
    said = [body for _, body in admin.show_issue(forge.root, REPO_NAME, number)[2]]
    assert any("starts no revision while it runs" in c for c in said)
    assert store.get_job(job_id).state == "running"


def test_reviews_start_nothing_when_the_policy_says_so(store, forge):
    job_id, number = publish(store, forge)
    deliver(store, review(forge, number, "changes_requested", "Rename it."))
    policy = Policy.model_validate({"review": {"revise_on_changes_requested": False}})
    Planner(store, {"local": forge}, policy, "forgebot").plan_pending()
    assert store.get_job(job_id).state == "done"


def test_the_trigger_label_again_links_the_open_pull_request(store, forge):
    _, number = publish(store, forge)
    deliver(store, admin.add_label(forge.root, REPO_NAME, 1, "forgebot", "ada"))
    planner(store, forge).plan_pending()
    assert len(store.list_jobs()) == 1
    [link] = [c for c in comments(forge) if "already has a pull request" in c]
    assert f"#{number}" in link


def test_removing_the_label_cancels_a_queued_job_and_relabelling_requeues_it(store, forge):
    deliver(store, admin.add_label(forge.root, REPO_NAME, 1, "forgebot", "ada"))
    p = planner(store, forge)
    p.plan_pending()
    unlabel = admin.remove_label(forge.root, REPO_NAME, 1, "forgebot", "ada")
    deliver(store, unlabel)
    deliver(store, unlabel)
    p.plan_pending()
    [job] = store.list_jobs()
    assert job.state == "cancelled"
    assert len([c for c in comments(forge) if "removed the trigger label" in c]) == 1
    deliver(store, admin.add_label(forge.root, REPO_NAME, 1, "forgebot", "ada"))
    p.plan_pending()
    assert store.get_job(job.id).state == "queued"


def test_removing_a_label_while_another_trigger_label_stays_changes_nothing(store, forge):
    policy = Policy.model_validate({"trigger": {"labels": ["forgebot", "bot"]}})
    p = Planner(store, {"local": forge}, policy, "forgebot")
    deliver(store, admin.add_label(forge.root, REPO_NAME, 1, "forgebot", "ada"))
    deliver(store, admin.add_label(forge.root, REPO_NAME, 1, "bot", "ada"))
    deliver(store, admin.remove_label(forge.root, REPO_NAME, 1, "forgebot", "ada"))
    p.plan_pending()
    [job] = store.list_jobs()
    assert job.state == "queued"


def test_closing_the_issue_cancels_its_job_but_not_when_the_bot_closed_it(store, forge):
    deliver(store, admin.add_label(forge.root, REPO_NAME, 1, "forgebot", "ada"))
    p = planner(store, forge)
    p.plan_pending()
    [job] = store.list_jobs()
    by_bot = IssueClosed(repo=Repo("local", REPO_NAME), number=1, sender="forgebot")
    assert p.plan_event(forge, by_bot, None).status == "ignored"
    assert store.get_job(job.id).state == "queued"
    deliver(store, admin.close_issue(forge.root, REPO_NAME, 1, "ada"))
    p.plan_pending()
    assert store.get_job(job.id).state == "cancelled"


def test_a_priority_label_added_later_reorders_the_queue_and_removing_it_restores_it(
        store, forge):
    admin.create_issue(forge.root, REPO_NAME, "Add shout", "", labels=[], author="ada")
    p = planner(store, forge)
    for number in (1, 2):
        deliver(store, admin.add_label(forge.root, REPO_NAME, number, "forgebot", "ada"))
    p.plan_pending()
    first, second = sorted(store.list_jobs(), key=lambda j: j.id)
    assert [j.id for j in store.queued()] == [first.id, second.id]

    urgent = admin.add_label(forge.root, REPO_NAME, 2, "forgebot:urgent", "ada")
    deliver(store, urgent)
    deliver(store, urgent)  # a redelivery changes nothing more
    deliver(store, admin.add_label(forge.root, REPO_NAME, 1, "forgebot:urgent", "mallory"))
    p.plan_pending()
    assert [j.id for j in store.queued()] == [second.id, first.id]
    assert (store.get_job(first.id).priority, store.get_job(second.id).priority) == (0, 1)
    assert [e["data"] for e in store.events(second.id) if e["kind"] == "job.priority"] == [
        {"by": "ada", "priority": 1}]
    assert not [c for c in comments(forge) if "@mallory" in c]  # a label is not a request

    # The labels as they are now decide: mallory's urgent label goes, background comes.
    deliver(store, admin.remove_label(forge.root, REPO_NAME, 1, "forgebot:urgent", "ada"))
    deliver(store, admin.remove_label(forge.root, REPO_NAME, 2, "forgebot:urgent", "ada"))
    deliver(store, admin.add_label(forge.root, REPO_NAME, 1, "forgebot:background", "ada"))
    p.plan_pending()
    assert [j.id for j in store.queued()] == [second.id, first.id]
    assert (store.get_job(first.id).priority, store.get_job(second.id).priority) == (-1, 0)
