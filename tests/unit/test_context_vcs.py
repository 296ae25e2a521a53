"""Version-control metadata never reaches the model (bot/agent/context.py): a git worktree's
``.git`` is a file holding the host path of the bot's mirror, and it is neither listed nor
read; nor is anything under a ``.git``, ``.hg`` or ``.svn`` folder."""

from __future__ import annotations

import subprocess
from pathlib import Path

from bot.agent.context import read_text, read_tree
from bot.agent.sources import collect


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args],
                   cwd=cwd, check=True, capture_output=True)


def test_a_worktrees_git_file_is_neither_listed_nor_read(tmp_path: Path) -> None:
    mirror = tmp_path / "mirrors" / "acme-app"
    mirror.mkdir(parents=True)
    _git(mirror, "init", "-q", "-b", "main")
    (mirror / "app.py").write_text("def greet():\n    return 'hi'\n")
    (mirror / "vendor").mkdir()
    (mirror / "vendor" / ".hg").write_text("not ours\n")
    _git(mirror, "add", ".")
    _git(mirror, "commit", "-q", "-m", "start")
    work = tmp_path / "work"
    _git(mirror, "worktree", "add", "-q", "--detach", str(work), "main")
    assert str(mirror) in (work / ".git").read_text()  # what must not reach a prompt

    listed = dict(read_tree(work))
    sources = collect(work, "Make greet say hello in app.py", cache_dir=None)

    assert listed == {"app.py": "def greet():\n    return 'hi'\n"}
    assert ".git" not in sources.ranked
    assert all(str(tmp_path) not in text for text in sources.texts.values())
    assert read_text(work, ".git") is None
    assert read_text(mirror, ".git/config") is None
    assert read_text(work, "vendor/.hg") is None
