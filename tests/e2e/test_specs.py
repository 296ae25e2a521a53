"""Specs as triggers, end to end on the local forge: a spec edited on the default branch
becomes a job, and the job a pull request that carries the traceability table and records the
spec's new status; `forgebot spec status` then names that pull request per criterion."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.forges.local import admin
from tests.conftest import FIXTURES, REPO
from tests.e2e.conftest import REPO_NAME, Live

pytestmark = [pytest.mark.docker, pytest.mark.slow]

SHOUT = FIXTURES / "transcripts" / "spec_shout.yaml"
GREETING = (REPO / "examples" / "hello-service" / "specs" / "greeting.md").read_text()
BULK = "VERIFY: `shout` of 10,000 names takes under 2,000 ms. {#shout-bulk}\n"
CRITERION = ('VERIFY: `shout("Ada")` returns `"HELLO, ADA!"`: the greeting in capitals. '
             "{#shout}\n")


def push_spec(live: Live, tmp_path: Path, text: str, pusher: str = "ada") -> None:
    local = tmp_path / "greeting.md"
    local.write_text(text)
    live.cli("local", "push", "--repo", REPO_NAME, "main", "--file",
             f"specs/greeting.md={local}", "--message", "spec: shout", "--pusher", pusher)


def test_an_edited_spec_becomes_a_pull_request_with_the_traceability_table(
        live_factory: object, tmp_path: Path) -> None:
    live: Live = live_factory(SHOUT)  # type: ignore[operator]
    edited = GREETING + "\n" + CRITERION
    push_spec(live, tmp_path, edited)
    live.run_until_idle()

    [job] = live.service.store.list_jobs()
    assert (job.kind, job.issue_number, job.branch) == ("spec", 0, "forgebot/spec-greeting")
    assert (job.state, job.outcome) == ("done", "submitted")
    [pull] = live.pulls()
    front, body, diff = admin.show_pull(live.settings.local_root, REPO_NAME, int(pull["number"]))
    assert front["head"] == "forgebot/spec-greeting" and not front.get("draft")
    assert "Implements the spec `specs/greeting.md`." in body and "Closes #" not in body
    assert "| criterion | test | failed before | passes after |" in body
    assert ("| `greeting#shout` (new or changed) | "
            "`tests/test_shout.py::test_shout_is_the_greeting_in_capitals` | yes | yes |") in body
    assert "| `greeting#greet-name` | **no test** | — | — |" in body  # not marked, not required
    # Trusted code, not the model, recorded the spec's state in the same pull request.
    assert "-status: proposed\n+status: implemented" in diff
    assert "records `status: implemented`" in body
    # No status comment on an issue that does not exist.
    assert not list((live.settings.local_root / REPO_NAME / "comments").glob("0-*.md"))

    checkout = tmp_path / "checkout"
    (checkout / "specs").mkdir(parents=True)
    (checkout / "specs" / "greeting.md").write_text(edited)
    out = live.cli("spec", "status", "--root", str(checkout), "--repo", REPO_NAME)
    assert "specs/greeting.md  greeting  status: proposed" in out
    shout_line = next(line for line in out.splitlines() if "greeting#shout" in line)
    assert f"#{pull['number']}" in shout_line
    assert f"#{pull['number']}" not in next(
        line for line in out.splitlines() if "greeting#greet-name" in line)


def test_a_constraint_figure_printed_by_a_passing_test_reaches_the_pull_request(
        live_factory: object, tmp_path: Path) -> None:
    """pytest shows nothing of a passing test's output; the figure it prints travels in the
    JUnit report (``junit_logging=system-out``) to the pull request's constraints list."""
    live: Live = live_factory(FIXTURES / "transcripts" / "spec_shout_bulk.yaml")  # type: ignore[operator]
    push_spec(live, tmp_path, GREETING + "\n" + BULK)
    live.run_until_idle()

    [job] = live.service.store.list_jobs()
    assert (job.state, job.outcome) == ("done", "submitted")
    [pull] = live.pulls()
    _, body, _ = admin.show_pull(live.settings.local_root, REPO_NAME, int(pull["number"]))
    assert ("| `greeting#shout-bulk` (new or changed) | `tests/test_shout_bulk.py::"
            "test_shout_of_ten_thousand_names_is_fast` | yes | yes |") in body
    measured = re.search(r"- `greeting#shout-bulk`: under 2,000 ms; measured: ([\d.]+) ms", body)
    assert measured is not None, body
    assert 0 < float(measured.group(1)) < 2000
