"""Plan approval (/approve, /revise on a plan) and /explain on the local forge, end to end."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.forges.local import admin
from tests.e2e.conftest import REPO_NAME, Live

pytestmark = [pytest.mark.docker, pytest.mark.slow]

FAREWELL = Path(__file__).resolve().parents[1] / "fixtures" / "transcripts" / "add_farewell.yaml"

PLAN = """
- when: "You plan code changes"
  reply: |
    1. `hello_service/app.py` (~5 lines): add farewell next to greet.
    2. `tests/test_farewell.py` (~8 lines): test it.
"""
# Each attempt has a fresh replay model, so the second plan is told apart by the feedback.
SECOND_PLAN = """
- when: "Revision feedback from"
  reply: |
    1. `hello_service/app.py` (~5 lines): add farewell, with "See you" in it.
    2. `tests/test_farewell.py` (~8 lines): test it @everyone ``` <img src=x>
"""
EXPLANATION = """
- when: "You explain a code change"
  reply: |
    The change adds farewell() beside greet() and two tests for it. @someone look here.
"""


def start(live_factory: object, tmp_path: Path, replies: str, policy: str) -> Live:
    transcript = tmp_path / "transcript.yaml"
    transcript.write_text(replies + FAREWELL.read_text())
    policy_file = tmp_path / "policy.yml"
    policy_file.write_text(f"version: 1\n{policy}")
    live: Live = live_factory(transcript,  # type: ignore[operator]
                              {"FORGEBOT_POLICY_FILE": str(policy_file)})
    return live


def comment(live: Live, number: int, text: str) -> None:
    live.cli("local", "comment", "--repo", REPO_NAME, str(number), text)


def test_always_posts_the_plan_and_approve_makes_the_change(live_factory, tmp_path):
    live = start(live_factory, tmp_path, PLAN, "plan_approval: always\n")
    live.file_issue("Add a farewell")
    live.run_until_idle()
    [job] = live.service.store.list_jobs()
    assert (job.state, job.outcome) == ("done", "awaiting_approval")
    assert live.pulls() == []
    [plan] = [c for c in live.comments(1) if "has a plan for job" in c]
    assert "```text\n1. `hello_service/app.py` (~5 lines)" in plan and "/approve" in plan
    assert "waits for `/approve`" in live.comments(1)[0]  # the status comment
    # Two /approve at once: one approval, one new attempt.
    comment(live, 1, "/approve")
    comment(live, 1, "@forgebot approve")
    live.run_until_idle()
    job = live.service.store.get_job(job.id)
    assert (job.state, job.outcome) == ("done", "submitted")
    assert len(live.pulls()) == 1
    kinds = [e["kind"] for e in live.service.store.events(job.id)]
    assert kinds.count("plan.approved") == 1 and kinds.count("plan.posted") == 1
    assert "plan.followed" in kinds
    replies = [c for c in live.comments(1) if "Plan approved by" in c or "already" in c
               or "no plan waiting" in c]
    assert len(replies) == 2 and sum("Plan approved by" in c for c in replies) == 1
    # The coder was given the approved plan.
    prompts = [e["content"] for e in live.service.store.transcript(job.id)
               if e["kind"] == "prompt"]
    assert any("add farewell next to greet" in p and "You plan code changes" not in p
               for p in prompts)


def test_revise_on_a_waiting_plan_drafts_a_new_one(live_factory, tmp_path):
    live = start(live_factory, tmp_path, SECOND_PLAN + PLAN, "plan_approval: always\n")
    live.file_issue("Add a farewell")
    live.run_until_idle()
    comment(live, 1, "/revise Say see you too.")
    live.run_until_idle()
    [job] = live.service.store.list_jobs()
    assert job.outcome == "awaiting_approval"
    plans = [c for c in live.comments(1) if "has a plan for job" in c]
    assert len(plans) == 2
    # The model's words are shown as text: a fence longer than any backticks inside it.
    assert "````text\n" in plans[1] and "@everyone" in plans[1]
    kinds = [e["kind"] for e in live.service.store.events(job.id)]
    assert kinds.count("plan.posted") == 2 and "plan.approved" not in kinds
    # /cancel works on a job that waits for approval.
    comment(live, 1, "/cancel")
    live.run_until_idle()
    assert live.service.store.get_job(job.id).state == "cancelled"


def test_large_only_asks_for_large_or_sensitive_plans(live_factory, tmp_path):
    live = start(live_factory, tmp_path, PLAN,
                 "plan_approval: large\nlarge_change:\n  files: 5\n  lines: 200\n")
    live.file_issue("Add a farewell")
    live.run_until_idle()
    [job] = live.service.store.list_jobs()
    assert job.outcome == "submitted"  # a small plan: no approval needed
    assert not [c for c in live.comments(1) if "has a plan for job" in c]


def test_a_sensitive_path_needs_approval(live_factory, tmp_path):
    live = start(live_factory, tmp_path, PLAN,
                 "plan_approval: large\nlarge_change:\n  sensitive: ['hello_service/**']\n")
    live.file_issue("Add a farewell")
    live.run_until_idle()
    [job] = live.service.store.list_jobs()
    assert job.outcome == "awaiting_approval"
    [plan] = [c for c in live.comments(1) if "has a plan for job" in c]
    assert "sensitive paths (`hello_service/app.py`)" in plan


def test_approve_without_a_waiting_plan_help_and_an_unknown_command(live_factory, tmp_path):
    live = start(live_factory, tmp_path, "", "plan_approval: never\n")
    live.file_issue("Add a farewell")
    live.run_until_idle()
    comment(live, 1, "/approve")
    live.run_until_idle()
    assert "has no plan waiting for approval" in live.comments(1)[-1]
    [job] = live.service.store.list_jobs()
    assert job.outcome == "submitted"
    # /help, and an unknown command addressed to the bot, answer with the command table.
    comment(live, 1, "/help")
    comment(live, 1, "@forgebot frobnicate")
    live.run_until_idle()
    help_text, unknown = live.comments(1)[-2:]
    assert "| `/approve` |" in help_text and "| `/explain` |" in help_text
    assert "I do not know `/frobnicate`" in unknown and "| `/retry [guidance]` |" in unknown


def test_explain_posts_the_models_account_and_keeps_the_outcome(live_factory, tmp_path):
    live = start(live_factory, tmp_path, EXPLANATION, "plan_approval: never\n")
    live.file_issue("Add a farewell")
    live.run_until_idle()
    [pull] = live.pulls()
    comment(live, int(pull["number"]), "/explain")
    live.run_until_idle()
    [job] = live.service.store.list_jobs()
    assert (job.state, job.outcome) == ("done", "submitted")
    answers = [c for c in live.comments(int(pull["number"])) if "in the model's words" in c]
    assert len(answers) == 1
    assert "```text\nThe change adds farewell()" in answers[0]
    # The prompt carried the real diff of the bot's branch.
    prompts = [e["content"] for e in live.service.store.transcript(job.id)
               if e["kind"] == "prompt" and "You explain a code change" in e["content"]]
    assert prompts and "+def farewell(name: str) -> str:" in prompts[0]
    _, _, diff = admin.show_pull(live.settings.local_root, REPO_NAME, int(pull["number"]))
    assert "farewell" in diff  # the pull request is untouched


def test_explain_before_any_change_says_there_is_none(live_factory, tmp_path):
    live = start(live_factory, tmp_path, "", "plan_approval: never\n")
    live.file_issue("Add a farewell")
    comment(live, 1, "/explain")
    live.run_until_idle()
    assert any("no change to explain yet" in c for c in live.comments(1))
