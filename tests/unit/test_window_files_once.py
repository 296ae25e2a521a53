"""A file is shown once in a prompt (bot/agent/window.py): a retrieved snippet of a file
that is shown whole is left out, and snippets of other files still come."""

from __future__ import annotations

from pathlib import Path

from bot.agent.providers.replay import ReplayProvider
from bot.agent.sources import Snippet, collect
from bot.agent.window import fit_task
from bot.agent.workspace import Workspace

APP = "def greet(name):\n    return 'hi ' + name\n"
INIT = "from pkg.app import greet\n\n__all__ = ['greet']\n"
BIG = "".join(f"def helper_{n}(x):\n    return x + {n}\n\n" for n in range(400))


def _prompt(tmp_path: Path, budget: int) -> str:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "app.py").write_text(APP)
    (tmp_path / "pkg" / "__init__.py").write_text(INIT)
    (tmp_path / "pkg" / "helpers.py").write_text(BIG)  # too large to be shown whole
    sources = collect(tmp_path, "Make greet in pkg/app.py say hello", cache_dir=None)
    sources.snippets = [Snippet("pkg/__init__.py", 1, 3, INIT),
                        Snippet("pkg/helpers.py", 1, 2, "def helper_0(x):\n    return x + 0\n")]
    transcript = tmp_path / "replies.yaml"
    transcript.write_text("[]")
    messages = fit_task(ReplayProvider(transcript, context_window=8192), 256, budget,
                        system="system", fixed=["the task"], sources=sources,
                        workspace=Workspace(tmp_path), history=[])
    assert [m.role for m in messages] == ["system", "user"]
    return messages[1].content


def test_a_snippet_of_a_file_shown_whole_is_not_shown_again(tmp_path: Path) -> None:
    prompt = _prompt(tmp_path, 3000)

    assert prompt.count("__all__ = ['greet']") == 1  # __init__.py once, as a file
    assert "pkg/__init__.py (lines 1-3)" not in prompt
    assert "pkg/helpers.py (lines 1-2)" in prompt  # not shown whole: its snippet stays
    assert prompt.count("return 'hi ' + name") == 1

