"""Plan approval's pure parts: the size a plan claims, when it needs /approve, which plan an
attempt follows, and how the model's words are shown."""

from __future__ import annotations

import pytest

from bot.pipeline.approval import (
    PLAN_APPROVED,
    PLAN_POSTED,
    PlanEstimate,
    approval_reason,
    approved_plan,
    estimate,
    waiting_plan,
)
from bot.pipeline.report import fenced
from bot.policy.model import LargeChange


@pytest.mark.parametrize(("plan", "files", "lines"), [
    ("1. `src/app.py` (~20 lines): add it.\n2. `tests/test_app.py` (~10 lines)",
     ("src/app.py", "tests/test_app.py"), 30),
    ("1. `./src/app.py` (~3 lines)\n2. `src/app.py` again (5 lines)", ("src/app.py",), 8),
    ("Change `greet` in `app.py`.", ("app.py",), None),  # `greet` is no path: no dot or slash
    ("I will do my best.", (), None),
    ("`../../etc/passwd` (~1 line)", (), 1),  # never a path out of the repository
    ("`a b.py` (~2 lines)", (), 2),  # no spaces in a path
    ("1. `x.go` (~120 changed lines)", ("x.go",), 120),
])
def test_estimate(plan: str, files: tuple[str, ...], lines: int | None) -> None:
    assert estimate(plan) == PlanEstimate(files, lines)


LARGE = LargeChange(files=2, lines=50, sensitive=("src/auth/**",))


@pytest.mark.parametrize(("mode", "plan", "reason"), [
    ("never", PlanEstimate(("a.py",) * 9, 9999), None),
    ("always", PlanEstimate(("a.py",), 1), "plan_approval: always"),
    ("large", PlanEstimate(("a.py", "b.py"), 50), None),
    ("large", PlanEstimate(("a.py", "b.py", "c.py"), 10), "changes 3 files"),
    ("large", PlanEstimate(("a.py",), 51), "about 51 lines"),
    ("large", PlanEstimate(("src/auth/login.py",), 1), "sensitive paths (`src/auth/login.py`)"),
    ("large", PlanEstimate((), 1), "names no files"),
    ("large", PlanEstimate(("a.py",), None), "no estimate of the lines"),
])
def test_approval_reason(mode: str, plan: PlanEstimate, reason: str | None) -> None:
    found = approval_reason(mode, plan, LARGE)
    if reason is None:
        assert found is None
    else:
        assert found is not None and reason in found


def event(id_: int, kind: str, **data: object) -> dict[str, object]:
    return {"id": id_, "kind": kind, "data": data}


def test_the_attempt_after_approve_follows_the_latest_posted_plan() -> None:
    events = [event(1, PLAN_POSTED, plan="old"), event(2, PLAN_POSTED, plan="new"),
              event(3, PLAN_APPROVED, key="plan:2")]
    assert approved_plan(events, {"mode": "approve"}) == "new"
    assert waiting_plan(events) is None


@pytest.mark.parametrize(("events", "request_"), [
    ([event(1, PLAN_POSTED, plan="p"), event(2, PLAN_APPROVED, key="plan:1")],
     {"mode": "retry"}),  # a /retry since starts over
    ([event(1, PLAN_POSTED, plan="p")], {"mode": "approve"}),  # nothing approved
    # approval of an older plan does not approve the newer one
    ([event(1, PLAN_POSTED, plan="p"), event(2, PLAN_APPROVED, key="plan:1"),
      event(3, PLAN_POSTED, plan="q")], {"mode": "approve"}),
    ([], {"mode": "approve"}),
])
def test_no_plan_is_followed_without_its_approval(events: list[dict[str, object]],
                                                   request_: dict[str, object]) -> None:
    assert approved_plan(events, request_) is None


def test_waiting_plan_is_the_latest_unapproved_one() -> None:
    assert waiting_plan([event(4, PLAN_POSTED, plan="p")]) == 4
    assert waiting_plan([]) is None


@pytest.mark.parametrize(("text", "fence"), [
    ("plain", "```"),
    ("has ``` inside", "````"),
    ("has ````` five", "``````"),
])
def test_fenced_text_cannot_close_its_fence(text: str, fence: str) -> None:
    shown = fenced(text)
    assert shown.startswith(f"{fence}text\n") and shown.endswith(f"\n{fence}")
