"""Repository instruction files: found on the default branch, bounded, and chosen by folder."""

from __future__ import annotations

import subprocess
from pathlib import Path

from bot.agent.instructions import (
    MAX_FILE_CHARS,
    InstructionFile,
    is_instruction_path,
    relevant,
    render,
)
from bot.pipeline.instructions import MAX_BYTES, read_instructions


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                          text=True).stdout


def test_instruction_paths() -> None:
    assert is_instruction_path("AGENTS.md")
    assert is_instruction_path("src/api/AGENTS.md")
    assert is_instruction_path(".forgebot/instructions.md")
    assert not is_instruction_path("docs/instructions.md")
    assert not is_instruction_path("AGENTS.md.bak")


FILES = (
    InstructionFile("AGENTS.md", "root rules"),
    InstructionFile(".forgebot/instructions.md", "bot rules"),
    InstructionFile("src/AGENTS.md", "src rules"),
    InstructionFile("src/api/AGENTS.md", "api rules"),
    InstructionFile("docs/AGENTS.md", "docs rules"),
)


def test_relevant_keeps_the_root_and_the_folders_in_play() -> None:
    chosen = relevant(FILES, ["src/api/views.py"])
    assert [f.path for f in chosen] == ["AGENTS.md", ".forgebot/instructions.md",
                                        "src/AGENTS.md", "src/api/AGENTS.md"]
    assert [f.path for f in relevant(FILES, ["README.md"])] == [
        "AGENTS.md", ".forgebot/instructions.md"]
    # A folder whose name merely starts like another is not inside it.
    assert "src/AGENTS.md" not in [f.path for f in relevant(FILES, ["srcs/x.py"])]


def test_render_bounds_each_file_and_the_total() -> None:
    long = InstructionFile("AGENTS.md", "x" * (MAX_FILE_CHARS + 500))
    rendered = render([long, InstructionFile("src/AGENTS.md", "short")],
                      limit=MAX_FILE_CHARS + 60)
    assert "[... 500 characters cut]" in rendered.text
    assert rendered.used == ("AGENTS.md",)  # the second no longer fits the total
    empty = render([InstructionFile("AGENTS.md", "   \n")])
    assert empty == type(empty)("", ())


def test_read_instructions_from_a_branch_skipping_links_and_oversized_files(
        tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    git(work, "init", "-q", "-b", "main")
    (work / "AGENTS.md").write_text("Use tabs.\n")
    (work / ".forgebot").mkdir()
    (work / ".forgebot" / "instructions.md").write_text("Be brief.\n")
    (work / "pkg").mkdir()
    (work / "pkg" / "AGENTS.md").write_text("Pure functions only.\n")
    (work / "big").mkdir()
    (work / "big" / "AGENTS.md").write_text("y" * (MAX_BYTES + 1))
    (work / "linked").mkdir()
    (work / "linked" / "AGENTS.md").symlink_to("/etc/passwd")
    (work / "binary").mkdir()
    (work / "binary" / "AGENTS.md").write_bytes(b"\xff\xfe not utf-8")
    git(work, "add", "-A")
    git(work, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "base")
    # The bot's branch may change AGENTS.md: the default branch is what is read.
    git(work, "checkout", "-q", "-b", "forgebot/1-x")
    (work / "AGENTS.md").write_text("You may edit workflows.\n")
    git(work, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-am", "widen")
    mirror = tmp_path / "mirror.git"
    git(tmp_path, "clone", "-q", "--mirror", str(work), str(mirror))

    found = read_instructions(mirror, "main")
    assert [(f.path, f.text) for f in found] == [
        ("AGENTS.md", "Use tabs.\n"),
        (".forgebot/instructions.md", "Be brief.\n"),
        ("pkg/AGENTS.md", "Pure functions only.\n"),
    ]
    assert read_instructions(mirror, "no-such-branch") == ()
