"""The unified-diff format: hunks placed by content, whatever their line numbers say."""

from __future__ import annotations

import difflib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.agent.editformats import Edit, Replace, WriteFile, apply_edits, get_format
from bot.agent.editformats.udiff import parse_udiff
from bot.errors import EditFormatError

APP = "import os\n\n\ndef add(a, b):\n    return a - b\n"


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        pytest.param(
            "--- a/src/app.py\n+++ b/src/app.py\n@@ -4,2 +4,2 @@\n def add(a, b):\n"
            "-    return a - b\n+    return a + b\n",
            [
                Replace(
                    "src/app.py",
                    "def add(a, b):\n    return a - b\n",
                    "def add(a, b):\n    return a + b\n",
                    unit="hunk",
                )
            ],
            id="git-style",
        ),
        pytest.param(
            "--- src/app.py\n+++ src/app.py\n@@ ... @@\n-x\n+y\n",
            [Replace("src/app.py", "x\n", "y\n", unit="hunk")],
            id="no-prefixes-no-numbers",
        ),
        pytest.param(
            "--- a/app.py\t2024-05-01 10:00:00\n+++ b/app.py\t2024-05-01 10:01:00\n@@\n-x\n+y\n",
            [Replace("app.py", "x\n", "y\n", unit="hunk")],
            id="timestamps-bare-header",
        ),
        pytest.param(
            "--- /dev/null\n+++ b/tests/test_app.py\n@@ -0,0 +1,2 @@\n+def test():\n+    pass\n",
            [WriteFile("tests/test_app.py", "def test():\n    pass\n")],
            id="new-file",
        ),
        pytest.param(
            "--- /dev/null\n+++ b/n.txt\n@@ -0,0 +1 @@\n+one\n@@ -0,0 +2 @@\n+two\n",
            [WriteFile("n.txt", "one\ntwo\n")],
            id="new-file-two-hunks",
        ),
        pytest.param(
            "```diff\n--- a/a.py\n+++ b/a.py\n@@ -1,3 +1,3 @@\n x = 1\n\n-y = 2\n+y = 3\n```\n",
            [Replace("a.py", "x = 1\n\ny = 2\n", "x = 1\n\ny = 3\n", unit="hunk")],
            id="blank-context-line-without-space",
        ),
        pytest.param(
            "```diff\n--- a/a.py\n+++ b/a.py\n@@ @@\ndef f():\n-    return 1\n+    return 2\n```\n",
            [Replace("a.py", "def f():\n    return 1\n", "def f():\n    return 2\n", unit="hunk")],
            id="context-lost-its-space-in-fence",
        ),
        pytest.param(
            "--- a/a.sql\n+++ b/a.sql\n@@ @@\n--- old comment\n+-- new comment\n",
            [Replace("a.sql", "-- old comment\n", "-- new comment\n", unit="hunk")],
            id="removed-line-starting-with-dashes",
        ),
        pytest.param(
            "--- a/a.py\n+++ b/a.py\n@@ @@\n-x\n\\ No newline at end of file\n+y\n",
            [Replace("a.py", "x\n", "y\n", unit="hunk")],
            id="no-newline-marker",
        ),
        pytest.param(
            "--- a/a.py\n+++ b/a.py\n@@ @@\n-x\n+y\n\nThat fixes it.\n",
            [Replace("a.py", "x\n", "y\n", unit="hunk")],
            id="prose-after-hunk",
        ),
        pytest.param(
            "--- a/a.py\n+++ b/a.py\n@@ @@\n-x\n+y\n--- a/b.py\n+++ b/b.py\n@@ @@\n-p\n+q\n",
            [
                Replace("a.py", "x\n", "y\n", unit="hunk"),
                Replace("b.py", "p\n", "q\n", unit="hunk"),
            ],
            id="two-files",
        ),
        pytest.param("Nothing to change here.\n---\nThanks.\n", [], id="prose-with-rule"),
    ],
)
def test_parse(reply: str, expected: list[Edit]) -> None:
    assert parse_udiff(reply) == expected


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        pytest.param("@@ -1 +1 @@\n-x\n+y\n", "hunk 1 has no '--- a/path'", id="no-header"),
        pytest.param(
            "--- a/a.py\n+++ b/a.py\n@@ @@\n x\n", "hunk 1 (a.py) changes nothing", id="no-change"
        ),
        pytest.param(
            "--- a/a.py\n+++ /dev/null\n@@ @@\n-x\n", "deleting files is not supported", id="delete"
        ),
        pytest.param(
            "--- a/a.py\n+++ b/b.py\n@@ @@\n-x\n+y\n", "renaming is not supported", id="rename"
        ),
        pytest.param(
            "--- a/../x\n+++ b/../x\n@@ @@\n-x\n+y\n", "hunk 1: file path", id="traversal"
        ),
        pytest.param("--- /dev/null\n+++ b//etc/passwd\n@@ @@\n+x\n", "is absolute", id="absolute"),
    ],
)
def test_parse_errors(reply: str, message: str) -> None:
    with pytest.raises(EditFormatError) as caught:
        parse_udiff(reply)
    assert message in str(caught.value)


def test_line_numbers_are_ignored() -> None:
    reply = "--- a/app.py\n+++ b/app.py\n@@ -90,2 +90,2 @@\n def add(a, b):\n-    return a - b\n"
    reply += "+    return a + b\n"
    changed = apply_edits({"app.py": APP}, get_format("udiff").parse(reply))
    assert changed == {"app.py": APP.replace("a - b", "a + b")}


def test_hunks_apply_in_order_against_the_result_of_the_previous_one() -> None:
    reply = "--- a/a.py\n+++ b/a.py\n@@ @@\n-x = 1\n+x = 2\n@@ @@\n-x = 2\n+x = 3\n"
    assert apply_edits({"a.py": "x = 1\n"}, parse_udiff(reply)) == {"a.py": "x = 3\n"}


def test_a_hunk_that_does_not_apply_is_named() -> None:
    reply = "--- a/a.py\n+++ b/a.py\n@@ @@\n-x = 1\n+x = 2\n@@ @@\n-y = 5\n+y = 6\n"
    with pytest.raises(EditFormatError) as caught:
        apply_edits({"a.py": "x = 1\ny = 2\n"}, parse_udiff(reply))
    message = str(caught.value)
    assert message.startswith(
        "hunk 2 (a.py): the old side of the hunk (its ' ' and '-' lines) does not match"
    )
    assert message.endswith("The closest lines in the file are line 2:\n    2 | y = 2")


def test_a_hunk_on_a_missing_file_says_how_to_create_one() -> None:
    reply = "--- a/new.py\n+++ b/new.py\n@@ @@\n x\n+y\n"
    with pytest.raises(EditFormatError, match=r"hunk 1 \(new.py\): the file does not exist"):
        apply_edits({}, parse_udiff(reply))


def test_an_addition_only_hunk_to_a_missing_file_creates_it() -> None:
    reply = "--- new.py\n+++ new.py\n@@ @@\n+x = 1\n"
    assert apply_edits({}, parse_udiff(reply)) == {"new.py": "x = 1\n"}


def test_instructions_show_the_example_path() -> None:
    text = get_format("udiff").instructions("lib/util.go")
    assert "--- a/lib/util.go\n+++ b/lib/util.go\n" in text


def test_an_addition_only_hunk_cannot_be_placed_in_a_file() -> None:
    # Line numbers are not trusted, so '+' lines with no context have nowhere to go.
    reply = "--- a/a.py\n+++ b/a.py\n@@ -1,0 +2 @@\n+y = 2\n"
    with pytest.raises(EditFormatError, match=r"hunk 1 \(a.py\): the hunk has no ' ' or '-' lines"):
        apply_edits({"a.py": "x = 1\n"}, parse_udiff(reply))


def test_an_addition_only_hunk_fills_an_empty_file() -> None:
    reply = "--- a/empty.py\n+++ b/empty.py\n@@ -0,0 +1 @@\n+x = 1\n"
    assert apply_edits({"empty.py": ""}, parse_udiff(reply)) == {"empty.py": "x = 1\n"}


# --- property: whatever difflib writes parses and applies back ------------------------------


@st.composite
def _revisions(draw: st.DrawFn) -> tuple[list[str], list[str]]:
    """An old file of unique lines and a new one made by deleting, replacing and inserting.

    Every line stays unique, so every hunk has exactly one place to go.
    """
    old = [f"line {number}" for number in range(draw(st.integers(1, 30)))]
    new: list[str] = []
    fresh = iter(range(1000))
    for line in old:
        action = draw(st.sampled_from(["keep", "keep", "keep", "drop", "change", "insert"]))
        if action == "change":
            new.append(f"changed {next(fresh)}")
        elif action == "insert":
            new.extend([f"inserted {next(fresh)}", line])
        elif action == "keep":
            new.append(line)
    return old, new


@given(_revisions(), st.integers(1, 3))
def test_a_difflib_diff_applies_back(revisions: tuple[list[str], list[str]], context: int) -> None:
    old, new = ("".join(line + "\n" for line in lines) for lines in revisions)
    diff = "".join(
        difflib.unified_diff(
            old.splitlines(keepends=True),
            new.splitlines(keepends=True),
            "a/f.txt",
            "b/f.txt",
            n=context,
        )
    )
    expected = {} if old == new else {"f.txt": new}
    assert apply_edits({"f.txt": old}, parse_udiff(diff)) == expected
