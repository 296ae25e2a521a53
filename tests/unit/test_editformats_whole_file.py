"""The whole-file format: telling path lines from prose and fences inside content apart."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.agent.editformats import WriteFile, apply_edits, get_format
from bot.agent.editformats.whole_file import parse_whole_file
from bot.errors import EditFormatError

MARKDOWN_WITH_FENCES = """\
docs/usage.md
````markdown
# Usage

```bash
python -m demo
```
````
"""

# The model opened with three backticks although the file holds fences with a language tag.
MARKDOWN_NESTED_SAME_LENGTH = """\
docs/usage.md
```markdown
# Usage

```bash
python -m demo
```

Done.
```
"""


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        pytest.param("a.py\n```python\nx = 1\n```\n", [WriteFile("a.py", "x = 1\n")], id="plain"),
        pytest.param(
            "Here is the change.\n\nsrc/app.py\n\n```\nx = 1\n```\nDone.\n",
            [WriteFile("src/app.py", "x = 1\n")],
            id="prose-and-blank-line",
        ),
        pytest.param(
            "### `src/app.py`\n```py\nx = 1\n```\n",
            [WriteFile("src/app.py", "x = 1\n")],
            id="heading",
        ),
        pytest.param(
            "1. **src/app.py**\n```\nx = 1\n```\n",
            [WriteFile("src/app.py", "x = 1\n")],
            id="numbered-bold",
        ),
        pytest.param(
            "Here is the updated `src/app.py`:\n```python\nx = 1\n```\n",
            [WriteFile("src/app.py", "x = 1\n")],
            id="path-in-ticks-in-prose",
        ),
        pytest.param(
            "```python src/app.py\nx = 1\n```\n",
            [WriteFile("src/app.py", "x = 1\n")],
            id="path-in-info-string",
        ),
        pytest.param(
            "Makefile\n```make\ntest:\n\tpytest\n```\n",
            [WriteFile("Makefile", "test:\n\tpytest\n")],
            id="extensionless-name",
        ),
        pytest.param(
            MARKDOWN_WITH_FENCES,
            [WriteFile("docs/usage.md", "# Usage\n\n```bash\npython -m demo\n```\n")],
            id="longer-outer-fence",
        ),
        pytest.param(
            MARKDOWN_NESTED_SAME_LENGTH,
            [WriteFile("docs/usage.md", "# Usage\n\n```bash\npython -m demo\n```\n\nDone.\n")],
            id="nested-fence-same-length",
        ),
        pytest.param(
            "a.txt\n~~~\n```\n~~~\n",
            [WriteFile("a.txt", "```\n")],
            id="tilde-fence-holds-backticks",
        ),
        pytest.param(
            "Run the tests with:\n```bash\npytest -q\n```\n", [], id="shell-command-is-skipped"
        ),
        pytest.param("a.py\n```\n```\n", [WriteFile("a.py", "")], id="empty-file"),
        pytest.param("a.py\r\n```\r\nx = 1\r\n```\r\n", [WriteFile("a.py", "x = 1\n")], id="crlf"),
        pytest.param("No change is needed.", [], id="prose-only"),
    ],
)
def test_parse(reply: str, expected: list[WriteFile]) -> None:
    assert parse_whole_file(reply) == expected


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        pytest.param(
            "Here is the code:\n```python\nx = 1\n```\n",
            "block 1 has no file path",
            id="prose-before-fence",
        ),
        pytest.param("```\nx = 1\n```\n", "block 1 has no file path", id="nothing-before-fence"),
        pytest.param("a.py\n```\nx = 1\n", "block 1 (a.py) is not closed", id="unterminated"),
        pytest.param(
            "a.py\n```\nx = 1\n```\nb.py\n````\ny\n```\n",
            "block 2 (b.py) is not closed",
            id="shorter-fence-does-not-close",
        ),
        pytest.param(
            "a.py\n```\nimport os\n# ... rest of the code unchanged ...\n```\n",
            "block 1 (a.py) leaves part of the file out at its line 2",
            id="elision",
        ),
        pytest.param(
            "a.py\n```\n<<<<<<< SEARCH\nx\n=======\ny\n>>>>>>> REPLACE\n```\n",
            "block 1 (a.py) holds SEARCH/REPLACE markers",
            id="search-replace-markers",
        ),
        pytest.param(
            "a.py\n```diff\n--- a/a.py\n+++ b/a.py\n@@ @@\n-x\n+y\n```\n",
            "block 1 (a.py) is a diff",
            id="diff-instead-of-file",
        ),
        pytest.param("../a.py\n```\nx\n```\n", "block 1: file path", id="traversal"),
        pytest.param(".git/config\n```\nx\n```\n", "inside .git", id="git-dir"),
    ],
)
def test_parse_errors(reply: str, message: str) -> None:
    with pytest.raises(EditFormatError) as caught:
        parse_whole_file(reply)
    assert message in str(caught.value)


def test_prose_lines_are_not_paths() -> None:
    # Words with dots that are not file names must not become files.
    for line in ("Use Python 3.11:", "e.g.", "Version 2.0", "Thanks!"):
        with pytest.raises(EditFormatError, match="has no file path"):
            parse_whole_file(f"{line}\n```\nx\n```\n")


def test_whole_files_replace_and_create() -> None:
    edits = get_format("whole_file").parse("a.py\n```\nx = 2\n```\nb.py\n```\nnew\n```\n")
    assert apply_edits({"a.py": "x = 1\n"}, edits) == {"a.py": "x = 2\n", "b.py": "new\n"}


def test_instructions_show_the_example_path() -> None:
    text = get_format("whole_file").instructions("src/thing.py")
    assert "src/thing.py\n```\n" in text


# --- property: a file rendered the way the prompt shows files parses back -------------------

_LINE = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=30).filter(
    lambda line: not re.match(r"^\s*(?:#|//|/\*|<!--|--|;|\*)\s*\.{3}|^[<>]{7} ", line)
)


@given(
    st.lists(_LINE | st.sampled_from(["```", "```python", "~~~", "````", "`````md"]), max_size=8)
)
def test_a_file_in_a_long_enough_fence_parses_back(lines: list[str]) -> None:
    content = "".join(line + "\n" for line in lines)
    longest = max((len(run) for run in re.findall(r"`+", content)), default=0)
    fence = "`" * max(3, longest + 1)
    reply = f"Here it is.\n\ndocs/notes.md\n{fence}markdown\n{content}{fence}\n\nDone.\n"
    assert parse_whole_file(reply) == [WriteFile("docs/notes.md", content)]
