"""The structural gate's mechanics (bot/analyzer.py) with the real semgrep engine and rules of
the test's own: which findings count, what a change cannot do to hide from it, and how it
fails. The shipped rules are tested in test_analyzer_rules.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.analyzer import MAX_FILE_BYTES, AnalyzerError, Finding, analyze

RULES = """\
rules:
- id: env-printed
  languages: [python]
  severity: ERROR
  message: prints the whole environment
  mode: taint
  pattern-sources:
  - pattern: os.environ
  pattern-sinks:
  - pattern: print(...)
"""


@pytest.fixture
def rules(tmp_path: Path) -> Path:
    folder = tmp_path / "rules"
    folder.mkdir()
    (folder / "env.yml").write_text(RULES)
    return folder


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    tree = tmp_path / "tree"
    for path, text in files.items():
        (tree / path).parent.mkdir(parents=True, exist_ok=True)
        (tree / path).write_text(text)
    return tree


def test_only_findings_on_added_lines_count(tmp_path: Path, rules: Path) -> None:
    tree = _tree(tmp_path, {"app.py": "import os\nprint(os.environ)\nprint(os.environ)\n"})

    assert analyze(tree, {"app.py": [3]}, rules) == [
        Finding("env-printed", "app.py", 3, "prints the whole environment")]
    assert analyze(tree, {"app.py": [1]}, rules) == []


def test_an_added_source_counts_when_the_sink_was_already_there(
        tmp_path: Path, rules: Path) -> None:
    tree = _tree(tmp_path, {"app.py": "import os\n\nstate = os.environ\n\nprint(state)\n"})
    base = tmp_path / "base"
    base.mkdir()
    (base / "app.py").write_text("import os\n\nstate = {}\n\nprint(state)\n")

    assert analyze(tree, {"app.py": [3]}, rules) == []  # the match is on the old print line
    [finding] = analyze(tree, {"app.py": [3]}, rules, base=base)

    assert (finding.rule, finding.line) == ("env-printed", 5)


def test_a_match_the_base_already_had_is_not_the_change(tmp_path: Path, rules: Path) -> None:
    text = "import os\nstate = os.environ\nprint(state)\n"
    tree = _tree(tmp_path, {"app.py": text + "x = 1\n"})
    base = tmp_path / "base"
    base.mkdir()
    (base / "app.py").write_text(text)

    assert analyze(tree, {"app.py": [4]}, rules, base=base) == []


def test_the_change_cannot_exempt_itself(tmp_path: Path, rules: Path) -> None:
    tree = _tree(tmp_path, {
        ".semgrepignore": "tests/\n*.py\n",
        "tests/test_env.py": "import os\nprint(os.environ)  # nosemgrep\n",
    })

    found = analyze(tree, {".semgrepignore": [1, 2], "tests/test_env.py": [1, 2]}, rules)

    assert [(f.path, f.line) for f in found] == [("tests/test_env.py", 2)]


def test_links_missing_and_huge_files_are_not_read(tmp_path: Path, rules: Path) -> None:
    tree = _tree(tmp_path, {
        "outside.py": "import os\nprint(os.environ)\n",
        "huge.py": "import os\nprint(os.environ)\n" + "#\n" * MAX_FILE_BYTES,
    })
    (tree / "link.py").symlink_to(tree / "outside.py")

    assert analyze(tree, {"link.py": [2], "huge.py": [2], "gone.py": [2]}, rules) == []


def test_a_rule_file_the_engine_refuses_is_an_error(tmp_path: Path, rules: Path) -> None:
    (rules / "typo.yml").write_text("rules:\n- id: broken\n  languages: [python]\n"
                                    "  message: m\n  severity: ERROR\n  patern: print(...)\n")
    tree = _tree(tmp_path, {"app.py": "print(1)\n"})

    with pytest.raises(AnalyzerError, match="analyzer"):
        analyze(tree, {"app.py": [1]}, rules)


def test_no_rules_is_an_error_not_a_pass(tmp_path: Path) -> None:
    tree = _tree(tmp_path, {"app.py": "print(1)\n"})

    with pytest.raises(AnalyzerError, match="no analyzer rules"):
        analyze(tree, {"app.py": [1]}, tmp_path / "nowhere")
