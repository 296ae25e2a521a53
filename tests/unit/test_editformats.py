"""SEARCH/REPLACE: parsing and applying model replies, as tables of plain strings.

Ported from the tests of the single-format module ``bot.agent.editformat``: every behaviour
those tests fixed still holds in ``bot.agent.editformats``.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.agent.editformats import (
    Edit,
    Replace,
    WriteFile,
    apply_edits,
    get_format,
    validate_path,
)
from bot.agent.editformats.search_replace import parse_search_replace as parse_edits
from bot.errors import EditFormatError

APP = """\
import os


def add(a, b):
    return a - b


def sub(a, b):
    return a - b
"""

# --- parse_edits: replies that parse --------------------------------------------------------

FENCED = """\
The bug is in `add`: it subtracts. Here is the fix.

src/app.py
```python
<<<<<<< SEARCH
def add(a, b):
    return a - b
=======
def add(a, b):
    return a + b
>>>>>>> REPLACE
```

This makes `add` return the sum.
"""

PATH_INSIDE_FENCE = """\
```python
src/app.py
<<<<<<< SEARCH
x = 1
=======
x = 2
>>>>>>> REPLACE
```
"""

UNFENCED = """\
src/app.py
<<<<<<< SEARCH
x = 1
=======
x = 2
>>>>>>> REPLACE
"""

DECORATED_PATH = """\
### **`src/app.py`**:
<<<<<<< SEARCH
x = 1
=======
x = 2
>>>>>>> REPLACE
"""

LABELLED_PATH = """\
**File: `src/app.py`**
<<<<<<< SEARCH
x = 1
=======
x = 2
>>>>>>> REPLACE
"""

QUOTED_PATH = """\
"./src//app.py"
<<<<<<< SEARCH
x = 1
=======
x = 2
>>>>>>> REPLACE
"""

CRLF = UNFENCED.replace("\n", "\r\n")

NEW_FILE = """\
I will add a test.

tests/test_app.py
```python
<<<<<<< NEW
from src.app import add


def test_add():
    assert add(2, 3) == 5
>>>>>>> NEW
```
"""

TWO_BLOCKS_ONE_FILE = """\
src/app.py
```
<<<<<<< SEARCH
def add(a, b):
    return a - b
=======
def add(a, b):
    return a + b
>>>>>>> REPLACE
```

src/app.py
```
<<<<<<< SEARCH
import os
=======
import os
import sys
>>>>>>> REPLACE
```
"""

PATH_NOT_REPEATED = """\
src/app.py
<<<<<<< SEARCH
a = 1
=======
a = 2
>>>>>>> REPLACE
<<<<<<< SEARCH
b = 1
=======
b = 2
>>>>>>> REPLACE
"""

MISCOUNTED_MARKERS = """\
src/app.py
<<<<<<<< SEARCH
x = 1
=======
x = 2
>>>>>> REPLACE
"""

EMPTY_REPLACE = """\
src/app.py
<<<<<<< SEARCH
import os
=======
>>>>>>> REPLACE
"""

RST_UNDERLINE_IN_NEW = """\
docs/index.rst
<<<<<<< NEW
Title
=====

Body
=======
>>>>>>> NEW
"""


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        pytest.param(
            FENCED,
            [
                Replace(
                    "src/app.py",
                    "def add(a, b):\n    return a - b\n",
                    "def add(a, b):\n    return a + b\n",
                )
            ],
            id="fenced-with-prose",
        ),
        pytest.param(
            PATH_INSIDE_FENCE, [Replace("src/app.py", "x = 1\n", "x = 2\n")], id="path-inside-fence"
        ),
        pytest.param(UNFENCED, [Replace("src/app.py", "x = 1\n", "x = 2\n")], id="unfenced"),
        pytest.param(DECORATED_PATH, [Replace("src/app.py", "x = 1\n", "x = 2\n")], id="bold-path"),
        pytest.param(
            LABELLED_PATH, [Replace("src/app.py", "x = 1\n", "x = 2\n")], id="labelled-path"
        ),
        pytest.param(QUOTED_PATH, [Replace("src/app.py", "x = 1\n", "x = 2\n")], id="quoted-path"),
        pytest.param(CRLF, [Replace("src/app.py", "x = 1\n", "x = 2\n")], id="crlf"),
        pytest.param(
            NEW_FILE,
            [
                WriteFile(
                    "tests/test_app.py",
                    "from src.app import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n",
                )
            ],
            id="new-file",
        ),
        pytest.param(
            PATH_NOT_REPEATED,
            [
                Replace("src/app.py", "a = 1\n", "a = 2\n"),
                Replace("src/app.py", "b = 1\n", "b = 2\n"),
            ],
            id="path-not-repeated",
        ),
        pytest.param(
            MISCOUNTED_MARKERS, [Replace("src/app.py", "x = 1\n", "x = 2\n")], id="miscounted"
        ),
        pytest.param(EMPTY_REPLACE, [Replace("src/app.py", "import os\n", "")], id="deletion"),
        pytest.param(
            RST_UNDERLINE_IN_NEW,
            [WriteFile("docs/index.rst", "Title\n=====\n\nBody\n=======\n")],
            id="divider-lines-in-new-file",
        ),
        pytest.param("I could not find the problem. Can you say more?", [], id="prose-only"),
        pytest.param("", [], id="empty"),
    ],
)
def test_parse_edits(reply: str, expected: list[Edit]) -> None:
    assert parse_edits(reply) == expected


def test_parse_two_blocks_on_one_file() -> None:
    edits = parse_edits(TWO_BLOCKS_ONE_FILE)
    assert [edit.path for edit in edits] == ["src/app.py", "src/app.py"]
    assert edits[1] == Replace("src/app.py", "import os\n", "import os\nimport sys\n")


# --- parse_edits: replies that do not parse -------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        pytest.param(
            "src/app.py\n<<<<<<< SEARCH\nx = 1\nx = 2\n>>>>>>> REPLACE\n",
            "block 1 (src/app.py) is missing its '=======' divider",
            id="missing-divider",
        ),
        pytest.param(
            "src/app.py\n<<<<<<< SEARCH\nx = 1\n=======\nx = 2\n",
            "block 1 (src/app.py) is not closed",
            id="unterminated",
        ),
        pytest.param(
            "src/app.py\n<<<<<<< NEW\nx = 1\n",
            "block 1 (src/app.py) is not closed",
            id="unterminated-new",
        ),
        pytest.param(
            UNFENCED + "\nsrc/b.py\n<<<<<<< SEARCH\ny\n<<<<<<< SEARCH\n",
            "block 2 (src/b.py) is not closed before the next '<<<<<<<' marker",
            id="unclosed-before-next",
        ),
        pytest.param(
            "<<<<<<< SEARCH\nx = 1\n=======\nx = 2\n>>>>>>> REPLACE\n",
            "block 1 has no file path",
            id="no-path",
        ),
        pytest.param(
            "Here is the fix:\n<<<<<<< SEARCH\nx = 1\n=======\nx = 2\n>>>>>>> REPLACE\n",
            "block 1: expected a file path alone",
            id="prose-instead-of-path",
        ),
        pytest.param(
            "../../etc/passwd\n<<<<<<< NEW\nroot::0:0::/:/bin/sh\n>>>>>>> NEW\n",
            "leaves the repository",
            id="path-traversal",
        ),
        pytest.param(
            "/etc/cron.d/x\n<<<<<<< NEW\n* * * * * root sh\n>>>>>>> NEW\n",
            "is absolute",
            id="absolute-path",
        ),
        pytest.param(
            ".git/hooks/pre-commit\n<<<<<<< NEW\n#!/bin/sh\n>>>>>>> NEW\n",
            "inside .git",
            id="git-dir",
        ),
        pytest.param(
            "src/app.py\n<<<<<<< SEARCH\na\n=======\nb\n=======\nc\n>>>>>>> REPLACE\n",
            "second '=======' divider",
            id="two-dividers",
        ),
        pytest.param(
            "src/app.py\nx = 1\n=======\nx = 2\n>>>>>>> REPLACE\n",
            "no '<<<<<<< SEARCH' or '<<<<<<< NEW' line opening a block",
            id="missing-opening-marker",
        ),
    ],
)
def test_parse_errors(reply: str, message: str) -> None:
    with pytest.raises(EditFormatError) as caught:
        parse_edits(reply)
    assert message in str(caught.value)


# --- apply_edits ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("files", "edits", "expected"),
    [
        pytest.param(
            {"src/app.py": APP},
            [
                Replace(
                    "src/app.py",
                    "def add(a, b):\n    return a - b\n",
                    "def add(a, b):\n    return a + b\n",
                )
            ],
            {"src/app.py": APP.replace("return a - b", "return a + b", 1)},
            id="exact",
        ),
        pytest.param(
            {"src/app.py": "x = 1   \ny = 2\n"},
            [Replace("src/app.py", "x = 1\ny = 2\n", "x = 10\ny = 2\n")],
            {"src/app.py": "x = 10\ny = 2\n"},
            id="trailing-whitespace-in-file",
        ),
        pytest.param(
            {"src/app.py": "class A:\n    def f(self):\n        return 1\n"},
            [Replace("src/app.py", "def f(self):\n    return 1\n", "def f(self):\n    return 2\n")],
            {"src/app.py": "class A:\n    def f(self):\n        return 2\n"},
            id="indentation-drift-less",
        ),
        pytest.param(
            {"src/app.py": "def f():\n    if x:\n        return 1\n"},
            [
                Replace(
                    "src/app.py",
                    "            if x:\n                return 1\n",
                    "            if x:\n                return 2\n            return 0\n",
                )
            ],
            {"src/app.py": "def f():\n    if x:\n        return 2\n    return 0\n"},
            id="indentation-drift-more",
        ),
        pytest.param(
            {"src/app.py": "a = 1\r\nb = 2\r\n"},
            [Replace("src/app.py", "a = 1\n", "a = 3\n")],
            {"src/app.py": "a = 3\r\nb = 2\r\n"},
            id="crlf-file-keeps-crlf",
        ),
        pytest.param(
            {"src/app.py": "a = 1\nb = 2"},
            [Replace("src/app.py", "b = 2\n", "b = 3\n")],
            {"src/app.py": "a = 1\nb = 3"},
            id="no-final-newline",
        ),
        pytest.param(
            {"src/app.py": "a = 1\nb = 2\n"},
            [Replace("src/app.py", "\na = 1\n\n", "\na = 5\n\n")],
            {"src/app.py": "a = 5\nb = 2\n"},
            id="blank-lines-around-search",
        ),
        pytest.param(
            {"src/app.py": APP},
            [
                Replace("src/app.py", "import os\n", "import os\nimport sys\n"),
                Replace("src/app.py", "def sub(a, b):\n", "def subtract(a, b):\n"),
            ],
            {
                "src/app.py": APP.replace("import os\n", "import os\nimport sys\n").replace(
                    "def sub(", "def subtract("
                )
            },
            id="two-blocks-one-file",
        ),
        pytest.param(
            {},
            [WriteFile("tests/test_app.py", "def test():\n    pass\n")],
            {"tests/test_app.py": "def test():\n    pass\n"},
            id="new-file",
        ),
        pytest.param(
            {"README.md": "old\n"},
            [WriteFile("README.md", "new\n")],
            {"README.md": "new\n"},
            id="new-replaces-existing",
        ),
        pytest.param(
            {},
            [Replace("notes.txt", "", "hello\n")],
            {"notes.txt": "hello\n"},
            id="empty-search-creates",
        ),
        pytest.param(
            {"a.py": "x = 1\n"},
            [Replace("a.py", "x = 1\n", "x = 1\n")],
            {},
            id="no-op-is-not-a-change",
        ),
        pytest.param(
            {"a.py": "max = 1\nx = 1\n"},
            [Replace("a.py", "x = 1\n", "x = 2\n")],
            {"a.py": "max = 1\nx = 2\n"},
            id="match-is-line-aligned",
        ),
    ],
)
def test_apply_edits(files: dict[str, str], edits: list[Edit], expected: dict[str, str]) -> None:
    assert apply_edits(files, edits) == expected


@pytest.mark.parametrize(
    ("files", "edits", "message"),
    [
        pytest.param(
            {"src/app.py": APP},
            [Replace("src/app.py", "def mul(a, b):\n", "def mul(a, b, c):\n")],
            "block 1 (src/app.py): the SEARCH part does not match the file",
            id="no-match",
        ),
        pytest.param(
            {"src/app.py": APP},
            [
                Replace("src/app.py", "import os\n", "import os\n"),
                Replace("src/app.py", "    return a - b\n", "    return 0\n"),
            ],
            "block 2 (src/app.py): the SEARCH part matches 2 places",
            id="ambiguous",
        ),
        pytest.param(
            {"src/app.py": "class A:\n    x = 1\nclass B:\n    x = 1\n"},
            [Replace("src/app.py", "x = 1\n", "x = 2\n")],
            "matches 2 places",
            id="ambiguous-tolerant",
        ),
        pytest.param(
            {},
            [Replace("src/missing.py", "x = 1\n", "x = 2\n")],
            "the file does not exist",
            id="missing-file",
        ),
        pytest.param(
            {"a.py": "x\n"},
            [Replace("a.py", "\n", "y\n")],
            "the SEARCH part is empty",
            id="empty-search-on-existing-file",
        ),
        pytest.param(
            {"src/app.py": APP},
            [Replace("src/app.py", "def add(a, b):\n    return a * b\n", "")],
            "its first line appears at line 4",
            id="hint-first-line-found",
        ),
        pytest.param({}, [WriteFile("../x.py", "")], "leaves the repository", id="traversal"),
    ],
)
def test_apply_errors(files: dict[str, str], edits: list[Edit], message: str) -> None:
    with pytest.raises(EditFormatError) as caught:
        apply_edits(files, edits)
    assert message in str(caught.value)


def test_apply_does_not_mutate_input() -> None:
    files = {"a.py": "x = 1\n"}
    apply_edits(files, [Replace("a.py", "x = 1\n", "x = 2\n")])
    assert files == {"a.py": "x = 1\n"}


def test_parse_then_apply_realistic_reply() -> None:
    changed = apply_edits({"src/app.py": APP}, parse_edits(FENCED + NEW_FILE))
    assert changed["src/app.py"] == APP.replace("return a - b", "return a + b", 1)
    assert "assert add(2, 3) == 5" in changed["tests/test_app.py"]


# --- validate_path --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("src/app.py", "src/app.py"),
        ("./src/app.py", "src/app.py"),
        ("src//app.py", "src/app.py"),
        (".github/workflows/ci.yml", ".github/workflows/ci.yml"),  # policy's job, not ours
        (".gitignore", ".gitignore"),
        ("a/.gitkeep", "a/.gitkeep"),
    ],
)
def test_validate_path_accepts(path: str, expected: str) -> None:
    assert validate_path(path) == expected


@pytest.mark.parametrize(
    "path",
    [
        "",
        "   ",
        "/etc/passwd",
        "C:/x.py",
        "..",
        "../x",
        "a/../../x",
        "a\\b.py",
        "a\0b",
        "a\nb",
        ".git/config",
        "sub/.git/hooks/post-checkout",
        ".GIT/config",
        "-rf",
        "./-x",
        "src/",
        ".",
    ],
)
def test_validate_path_rejects(path: str) -> None:
    with pytest.raises(EditFormatError):
        validate_path(path)


# --- properties -----------------------------------------------------------------------------

_LINE = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=30).filter(
    lambda line: not re.match(r"^\s*(<{5,9}|>{5,9}|={7}\s*$)", line)
)


@given(search=st.lists(_LINE, min_size=1, max_size=5), replace=st.lists(_LINE, max_size=5))
def test_a_rendered_block_parses_back(search: list[str], replace: list[str]) -> None:
    old = "".join(line + "\n" for line in search)
    new = "".join(line + "\n" for line in replace)
    reply = f"src/x.py\n<<<<<<< SEARCH\n{old}=======\n{new}>>>>>>> REPLACE\n"
    assert parse_edits(reply) == [Replace("src/x.py", old, new)]


# --- tolerance added with the editformats package ------------------------------------------


@pytest.mark.parametrize(
    ("files", "edit", "expected"),
    [
        pytest.param(
            {"a.py": "def f():\n    x = 1\n\n    return x\n"},
            Replace("a.py", "def f():\n    x = 1\n    return x\n", "def f():\n    return 1\n"),
            {"a.py": "def f():\n    return 1\n"},
            id="search-drops-a-blank-line",
        ),
        pytest.param(
            {"a.py": "a = 1\nb = 2\nc = 3\n"},
            Replace("a.py", "a = 1\n\n\nb = 2\n", "a = 1\nb = 20\n"),
            {"a.py": "a = 1\nb = 20\nc = 3\n"},
            id="search-adds-blank-lines",
        ),
        pytest.param(
            {"a.py": "if x:\n\tif y:\n\t\treturn 1\n"},
            Replace("a.py", "if y:\n\treturn 1\n", "if y:\n\treturn 2\n"),
            {"a.py": "if x:\n\tif y:\n\t\treturn 2\n"},
            id="tab-indentation-drift",
        ),
        pytest.param(
            {"a.py": "a = 1\nb = 2\n"},
            Replace("a.py", "b = 2", "b = 3"),
            {"a.py": "a = 1\nb = 3\n"},
            id="search-without-final-newline",
        ),
        pytest.param(
            {"a.py": "b = 20\nb = 2\n"},
            Replace("a.py", "b = 2", "b = 3"),
            {"a.py": "b = 20\nb = 3\n"},
            id="search-without-final-newline-matches-whole-lines",
        ),
        pytest.param(
            {"a.py": "class A:\n    x = 1\n\n\nx = 1\n"},
            Replace("a.py", "x = 1\n", "x = 2\n"),
            {"a.py": "class A:\n    x = 1\n\n\nx = 2\n"},
            id="exact-match-wins-over-indented-one",
        ),
        pytest.param(
            {"a.py": "class A:\n    x = 1\n    y = 2\n"},
            Replace("a.py", "  x = 1  \n  y = 2\n", "  x = 1\n  y = 3\n"),
            {"a.py": "class A:\n    x = 1\n    y = 3\n"},
            id="drift-and-trailing-whitespace",
        ),
    ],
)
def test_tolerant_matching(files: dict[str, str], edit: Replace, expected: dict[str, str]) -> None:
    assert apply_edits(files, [edit]) == expected


def test_a_miss_shows_the_closest_lines_with_their_numbers() -> None:
    edit = Replace("src/app.py", "def sub(a, c):\n    return a - c\n", "")
    with pytest.raises(EditFormatError) as caught:
        apply_edits({"src/app.py": APP}, [edit])
    message = str(caught.value)
    assert message.startswith("block 1 (src/app.py): the SEARCH part does not match")
    assert "closest lines in the file are lines 8-9:" in message
    assert "    8 | def sub(a, b):\n    9 |     return a - b" in message


def test_a_miss_with_nothing_close_says_so() -> None:
    with pytest.raises(EditFormatError, match="No lines of the file are close to it"):
        apply_edits({"a.py": "x = 1\n"}, [Replace("a.py", "completely different text\n", "")])


def test_an_ambiguous_match_lists_where() -> None:
    with pytest.raises(EditFormatError, match=r"matches 2 places in the file \(at lines 2, 4\)"):
        apply_edits(
            {"a.py": "class A:\n    x = 1\nclass B:\n    x = 1\n"}, [Replace("a.py", "x = 1\n", "")]
        )


def test_a_failing_edit_applies_nothing() -> None:
    files = {"a.py": "a = 1\n", "b.py": "b = 1\n"}
    edits: list[Edit] = [Replace("a.py", "a = 1\n", "a = 2\n"), Replace("b.py", "zzz\n", "")]
    with pytest.raises(EditFormatError, match=r"block 2 \(b.py\)"):
        apply_edits(files, edits)
    assert files == {"a.py": "a = 1\n", "b.py": "b = 1\n"}


@pytest.mark.parametrize("divider", ["=====", "======", "========", "========="])
def test_a_miscounted_divider_is_accepted_when_it_is_the_only_one(divider: str) -> None:
    reply = f"a.py\n<<<<<<< SEARCH\nx = 1\n{divider}\nx = 2\n>>>>>>> REPLACE\n"
    assert parse_edits(reply) == [Replace("a.py", "x = 1\n", "x = 2\n")]


def test_an_exact_divider_wins_over_an_underline_in_the_search_part() -> None:
    reply = "a.rst\n<<<<<<< SEARCH\nTitle\n=====\n=======\nName\n=====\n>>>>>>> REPLACE\n"
    assert parse_edits(reply) == [Replace("a.rst", "Title\n=====\n", "Name\n=====\n")]


def test_two_loose_dividers_are_not_guessed() -> None:
    reply = "a.rst\n<<<<<<< SEARCH\nTitle\n=====\n======\nName\n>>>>>>> REPLACE\n"
    with pytest.raises(EditFormatError, match="missing its '=======' divider"):
        parse_edits(reply)


@pytest.mark.parametrize(("fmt", "reply"), [
    ("search_replace", ".git/hooks/post-checkout\n<<<<<<< NEW\n#!/bin/sh\n>>>>>>> NEW\n"
                       "../outside.py\n<<<<<<< NEW\nx = 1\n>>>>>>> NEW\n"),
    ("whole_file", ".git/hooks/post-checkout\n```sh\n#!/bin/sh\n```\n"
                   "../outside.py\n```python\nx = 1\n```\n"),
    ("udiff", "--- /dev/null\n+++ b/.git/hooks/post-checkout\n@@ -0,0 +1 @@\n+#!/bin/sh\n"
              "--- /dev/null\n+++ b/../outside.py\n@@ -0,0 +1 @@\n+x = 1\n"),
])
def test_every_refused_path_of_a_reply_is_named(fmt: str, reply: str) -> None:
    with pytest.raises(EditFormatError) as caught:
        get_format(fmt).parse(reply)  # type: ignore[arg-type]

    message = str(caught.value)
    assert "inside .git" in message and "leaves the repository" in message
    assert message.index("1:") < message.index("2:")  # in the reply's order
