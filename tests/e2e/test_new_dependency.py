"""A change that adds a dependency, end to end: the model's edit to ``pyproject.toml`` is
installed through the egress proxy (in the agent's loop and again for the verify run), the
tests pass with it, and ``checks.new_dependencies`` decides: a draft that names it (the
default), or nothing published (``block``). Needs Docker, squid and PyPI."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from bot.forges.local.admin import show_pull
from tests.conftest import REPO
from tests.e2e.conftest import REPO_NAME

pytestmark = [pytest.mark.docker, pytest.mark.slow]

ADD_SIX = """\
- |
  The helper uses six, so I add it to the project's dependencies, with a test.

  pyproject.toml
  <<<<<<< SEARCH
  requires-python = ">=3.9"
  =======
  requires-python = ">=3.9"
  dependencies = ["six==1.16.0"]
  >>>>>>> REPLACE

  hello_service/compat.py
  <<<<<<< NEW
  import six


  def as_text(value: bytes) -> str:
      return six.ensure_str(value)
  >>>>>>> NEW

  tests/test_compat.py
  <<<<<<< NEW
  from hello_service.compat import as_text


  def test_as_text() -> None:
      assert as_text(b"hi") == "hi"
  >>>>>>> NEW
"""


def _live(live_factory, tmp_path: Path, policy: str | None = None):  # type: ignore[no-untyped-def]
    transcript = tmp_path / "add-six.yaml"
    transcript.write_text(ADD_SIX)
    # A line of its own in the manifest: no setup kept from an earlier run fits this one.
    pyproject = (REPO / "examples" / "hello-service" / "pyproject.toml").read_text()
    files = {"pyproject.toml": f"{pyproject}\n# run {uuid.uuid4().hex}\n"}
    if policy:
        files[".forgebot.yml"] = f"checks:\n  new_dependencies: {policy}\n"
    live = live_factory(transcript, repo_files=files)
    live.file_issue("Add an as_text helper")
    live.run_until_idle()
    return live


def test_a_change_that_adds_a_dependency_is_a_draft_that_names_it(live_factory, tmp_path):
    live = _live(live_factory, tmp_path)

    [job] = live.service.store.list_jobs()
    events = live.service.store.events(job.id)
    kinds = [e["kind"] for e in events]
    assert job.outcome == "submitted", [e for e in events if e["kind"].startswith("attempt")]
    # Installed through the proxy while the model worked, and the tests passed with it.
    assert "dependencies.reinstalled" in kinds and "dependencies.changed" in kinds
    egress = [e["data"] for e in events if e["kind"] == "setup.egress"]
    # Through the PyPI mirror beside the proxy (bot.sandbox.pypi_mirror), or squid itself.
    assert egress and any(r["host"] in ("pypi.org", "pypi.org (mirror)")
                          and r["verdict"] == "allowed" for r in egress[0]["requests"])
    [pull] = live.pulls()
    assert pull["draft"] is True
    _, body, _ = show_pull(live.settings.local_root, REPO_NAME, int(pull["number"]))
    assert "added `six` ==1.16.0" in body
    assert "`checks.new_dependencies` is `draft`" in body
    assert "Result: **proven**" in body


def test_the_policy_can_block_new_dependencies(live_factory, tmp_path):
    live = _live(live_factory, tmp_path, policy="block")

    [job] = live.service.store.list_jobs()
    assert job.outcome == "policy_blocked"
    assert live.pulls() == []
    comment = live.comments(1)[-1]
    assert "checks.new_dependencies" in comment and "six" in comment
