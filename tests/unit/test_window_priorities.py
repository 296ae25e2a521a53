"""What a prompt holds when the window is tight (bot/agent/window.py): a file is shown once
(a retrieved snippet of a file shown whole is left out), and the file the change is about
goes before old turns of the conversation."""

from __future__ import annotations

from pathlib import Path

from bot.agent.llm import Message
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



def test_the_file_in_play_goes_before_old_turns(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    # About 400 tokens: it fits beside the latest turns, not beside the old ones too.
    (tmp_path / "pkg" / "app.py").write_text(APP + "# padding\n" * 140)
    sources = collect(tmp_path, "Make greet in pkg/app.py say hello", cache_dir=None)
    transcript = tmp_path / "replies.yaml"
    transcript.write_text("[]")
    provider = ReplayProvider(transcript, context_window=2048)
    old = "x" * 2400  # an old reply and the answer to it: about 700 tokens each
    history = [Message("assistant", old), Message("user", old),
               Message("assistant", "the latest reply"), Message("user", "the latest error")]

    messages = fit_task(provider, 256, 2048, system="system", fixed=["the task"],
                        sources=sources, workspace=Workspace(tmp_path), history=history)

    assert "return 'hi ' + name" in messages[1].content  # the file is shown
    assert [m.content for m in messages[2:]] == ["the latest reply", "the latest error"]
