"""The policy glob matcher: anchored, ``**`` across segments, ``*`` within one."""

from __future__ import annotations

import fnmatch

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.policy.glob import check_glob, first_match, glob_match, literal_prefix

MATCHES = [
    # pattern, path, expected
    (".github/**", ".github/workflows/ci.yml", True),
    (".github/**", ".github/CODEOWNERS", True),
    (".github/**", ".github", True),  # "dir/**" covers a file or link replacing the dir
    (".github/**", ".githubx/ci.yml", False),
    (".github/**", "sub/.github/ci.yml", False),  # anchored at the root
    (".forgebot.yml", ".forgebot.yml", True),
    (".forgebot.yml", "sub/.forgebot.yml", False),
    (".forgebot.yml", "xforgebot.yml", False),  # "." is literal
    ("**/.forgebot.yml", "sub/.forgebot.yml", True),
    ("**/.forgebot.yml", ".forgebot.yml", True),  # "**/" may match no segment
    ("**", "anything/at/all.txt", True),
    ("*", "top.txt", True),
    ("*", "dir/file.txt", False),  # "*" never crosses "/"
    ("*.py", "setup.py", True),
    ("*.py", "src/setup.py", False),
    ("src/*.py", "src/a.py", True),
    ("src/*.py", "src/pkg/a.py", False),
    ("src/**/*.py", "src/a.py", True),
    ("src/**/*.py", "src/pkg/sub/a.py", True),
    ("src/**/*.py", "src/pkg/a.txt", False),
    ("a/**/b", "a/b", True),
    ("a/**/b", "a/x/y/b", True),
    ("a/**/b", "a/x/y/bc", False),
    ("a/**/**/b", "a/b", True),
    ("a**b", "axxb", True),  # "**" inside a segment is a plain "*"
    ("a**b", "ax/xb", False),
    ("file?.txt", "file1.txt", True),
    ("file?.txt", "file10.txt", False),
    ("file?.txt", "file/.txt", False),
    ("[abc].txt", "b.txt", True),
    ("[abc].txt", "d.txt", False),
    ("[!abc].txt", "d.txt", True),
    ("[^abc].txt", "a.txt", False),
    ("x[!a]y", "x/y", False),  # a negated class never matches "/"
    ("x[!-0]y", "x/y", False),  # nor does a range that spans "/"
    ("[a-c]*", "beta", True),
    ("[]]x", "]x", True),  # "]" first in a class is literal
    ("policies/**", "policies/default.yml", True),
    ("Policies/**", "policies/default.yml", False),  # case-sensitive, like git on Linux
    ("a+b(c)", "a+b(c)", True),  # regex metacharacters are literal
    ("*.yml", ".forgebot.yml", True),  # no special case for dotfiles
]


@pytest.mark.parametrize(("pattern", "path", "expected"), MATCHES)
def test_glob_match(pattern: str, path: str, expected: bool) -> None:
    assert glob_match(pattern, path) is expected


@pytest.mark.parametrize(
    "pattern",
    ["", "/etc/**", "a/../b", "..", "a\\b", "[abc", "a/[!x", "nul\x00", "[z-a]", "docs/", "a//b"],
)
def test_check_glob_refuses(pattern: str) -> None:
    with pytest.raises(ValueError):
        check_glob(pattern)


@pytest.mark.parametrize("pattern", [".github/**", "**/x", "src/*.py", "[a-z]?"])
def test_check_glob_accepts(pattern: str) -> None:
    assert check_glob(pattern) == pattern


def test_first_match_names_the_glob() -> None:
    assert first_match(("docs/**", ".github/**"), ".github/ci.yml") == ".github/**"
    assert first_match(("docs/**",), "src/a.py") is None


@pytest.mark.parametrize(
    ("pattern", "prefix"),
    [("src/app/*.py", "src/app/"), ("*.py", ""), ("src/**", "src/"), ("a/b*/c", "a/")],
)
def test_literal_prefix(pattern: str, prefix: str) -> None:
    assert literal_prefix(pattern) == prefix


def test_long_segment_does_not_backtrack() -> None:
    # Runs of stars are collapsed; a failing match on a long name stays fast.
    assert not glob_match("*" * 40 + "x", "a" * 5000)


@settings(max_examples=2000)
@given(
    pattern=st.text(alphabet="ab.*?[]!-", min_size=1, max_size=8),
    name=st.text(alphabet="ab.-]![^", min_size=1, max_size=8),
)
def test_one_segment_agrees_with_fnmatch(pattern: str, name: str) -> None:
    # Within one segment the semantics are fnmatch's, except that malformed classes are
    # refused (fnmatch reads them literally) and "[^...]" negates as in git and bash
    # (fnmatch reads "^" literally), so "^" is left out of the alphabet.
    try:
        check_glob(pattern)
    except ValueError:
        return
    assert glob_match(pattern, name) is fnmatch.fnmatchcase(name, pattern)
