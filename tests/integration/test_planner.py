"""The planner with the real local forge and store: who may start work, and comment commands."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.forges.local import LocalForge, admin
from bot.pipeline.planner import Planner
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
