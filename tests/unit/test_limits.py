"""Queue limits and priorities as pure functions, and the queued line of the status comment."""

import pytest

from bot.pipeline import planner
from bot.pipeline.limits import BACKGROUND, NORMAL, URGENT, hold_for, priority_of, wait_reason
from bot.pipeline.report import Status, status_comment
from bot.policy.model import Limits, Policy, Queue
from bot.store.queries import PULL_ENDED, Load

LIMITS = Limits(concurrent_jobs_per_repo=2, jobs_per_hour=5, open_pulls_per_repo=3,
                pulls_per_user_per_day=4)


def load(**kw):
    base = dict(repo="acme/hello", requester="ada", running=0, open_pulls=0, pulls_today=0,
                attempts_last_hour=0)
    return Load(**{**base, **kw})


@pytest.mark.parametrize(("labels", "expected"), [
    ((), NORMAL),
    (("forgebot",), NORMAL),
    (("forgebot", "forgebot:urgent"), URGENT),
    (("forgebot:background", "forgebot"), BACKGROUND),
    (("forgebot:urgent", "forgebot:background"), URGENT),
    (("Forgebot:Urgent",), NORMAL),  # labels are compared exactly, as the forge spells them
])
def test_priority_from_the_default_labels(labels, expected):
    assert priority_of(labels, Policy()) == expected


def test_priority_follows_the_policy_labels():
    policy = Policy(queue=Queue(urgent_label="p0", background_label="later"))
    assert priority_of(["p0"], policy) == URGENT
    assert priority_of(["later"], policy) == BACKGROUND
    assert priority_of(["forgebot:urgent"], policy) == NORMAL


@pytest.mark.parametrize(("kw", "expected"), [
    ({}, None),
    ({"running": 1, "attempts_last_hour": 4, "open_pulls": 2, "pulls_today": 3}, None),
    ({"running": 2},
     "waiting: acme/hello has 2 running jobs (limits.concurrent_jobs_per_repo = 2)"),
    ({"running": 7},
     "waiting: acme/hello has 7 running jobs (limits.concurrent_jobs_per_repo = 2)"),
    ({"attempts_last_hour": 5},
     "waiting: acme/hello has started 5 jobs in the last hour (limits.jobs_per_hour = 5)"),
    ({"open_pulls": 3},
     "waiting: acme/hello has 3 open bot pull requests (limits.open_pulls_per_repo = 3)"),
    ({"pulls_today": 4},
     "waiting: 4 pull requests opened for ada in the last 24 hours "
     "(limits.pulls_per_user_per_day = 4)"),
    # The first limit reached is named: running jobs, then the hourly rate, then pulls.
    ({"running": 2, "pulls_today": 9}, "limits.concurrent_jobs_per_repo = 2"),
    ({"attempts_last_hour": 5, "open_pulls": 3}, "limits.jobs_per_hour = 5"),
    ({"open_pulls": 3, "pulls_today": 4}, "limits.open_pulls_per_repo = 3"),
    # A job that already owns an open pull request only updates it.
    ({"open_pulls": 3, "pulls_today": 4, "opens_pull": False}, None),
    ({"running": 2, "opens_pull": False}, "limits.concurrent_jobs_per_repo = 2"),
    ({"attempts_last_hour": 5, "opens_pull": False}, "limits.jobs_per_hour = 5"),
])
def test_wait_reason(kw, expected):
    reason = wait_reason(load(**kw), LIMITS)
    if expected is None or expected.startswith("waiting:"):
        assert reason == expected
    else:
        assert reason is not None and reason.startswith("waiting: ") and expected in reason


def test_singular_counts_read_as_english():
    one = Limits(concurrent_jobs_per_repo=1, pulls_per_user_per_day=1)
    assert wait_reason(load(running=1), one) == (
        "waiting: acme/hello has 1 running job (limits.concurrent_jobs_per_repo = 1)")
    assert wait_reason(load(pulls_today=1), one) == (
        "waiting: 1 pull request opened for ada in the last 24 hours "
        "(limits.pulls_per_user_per_day = 1)")


def test_a_reason_never_mentions_anyone():
    reason = wait_reason(load(pulls_today=10, requester="ada"), Limits())
    assert reason is not None and "@" not in reason


def test_hold_for_applies_the_limits_it_was_given():
    assert hold_for(LIMITS)(load(running=2)) is not None
    assert hold_for(Limits(concurrent_jobs_per_repo=3))(load(running=2)) is None


def test_the_store_reads_the_events_the_planner_records():
    assert set(PULL_ENDED) == {planner.PULL_MERGED, planner.PULL_CLOSED}


def test_a_queued_status_shows_position_and_reason():
    text = status_comment(Status(7, 0, queued=True, position=3,
                                 wait_reason="waiting: acme/hello has 2 running jobs "
                                             "(limits.concurrent_jobs_per_repo = 2)"))
    assert ("- [ ] **Queued** (position 3): waiting: acme/hello has 2 running jobs "
            "(limits.concurrent_jobs_per_repo = 2) ⏳") in text
    assert "attempt" not in text
    assert "- [ ] Preparing" in text and "- [x]" not in text


def test_a_queued_status_without_a_reason_or_far_back():
    assert "- [ ] **Queued** (position 1) ⏳" in status_comment(
        Status(7, 0, queued=True, position=1))
    assert "- [ ] **Queued**: waiting: x ⏳" in status_comment(
        Status(7, 0, queued=True, wait_reason="waiting: x"))


def test_a_reason_stays_on_its_line():
    text = status_comment(Status(7, 0, queued=True, position=2,
                                 wait_reason="waiting: a\n- [x] forged\n\nline"))
    assert "- [ ] **Queued** (position 2): waiting: a - [x] forged line ⏳" in text
    assert "\n- [x] forged" not in text


def test_a_running_job_shows_queued_done():
    text = status_comment(Status(7, 2, current="prepare"))
    assert "- [x] Queued\n" in text and "attempt 2" in text and "position" not in text
