"""A model that gives the same reply again and again through the real service: the run stops
after two repeats with the named outcome, and the comment says what would change it."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.docker, pytest.mark.slow]

# Code, but not in the edit format: sent back each time, and each time the same reply.
STUCK = "```python\nprint('hello')\n```\n"


def test_a_model_that_repeats_itself_is_stopped_with_a_named_outcome(obeyed) -> None:
    live, job = obeyed([STUCK] * 6, "Say hello")

    assert job.outcome == "model_repeats"
    assert live.pulls() == []
    [finished] = live.events(job.id, "agent.finished")
    assert finished["outcome"] == "model_repeats"
    assert [event["repeats"] for event in live.events(job.id, "agent.repeat")] == [1, 2]
    comment = live.comments(1)[-1]
    assert "outcome `model_repeats`" in comment and "/revise" in comment
