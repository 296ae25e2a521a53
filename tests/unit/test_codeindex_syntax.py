"""syntax_errors: broken and valid snippets per language, with where the error is."""

from __future__ import annotations

import pytest

from bot.agent.codeindex import syntax_errors
from bot.agent.codeindex.syntax import MAX_PROBLEMS

VALID = [
    ("ok.py", "def f(x):\n    return x + 1\n\nclass A:\n    pass\n"),
    ("ok.js", "function f(a) { return a.map((x) => x * 2); }\n"),
    ("ok.ts", "interface I { a: number }\nconst f = (i: I): number => i.a;\n"),
    ("ok.tsx", "export const App = () => <div className='x'>{1}</div>;\n"),
    ("ok.go", "package m\n\nfunc f() int { return 1 }\n"),
    ("Ok.java", "class A { int m() { return 1; } }\n"),
    ("Ok.cs", "class A { int M() { return 1; } }\n"),
    ("empty.py", ""),
]


@pytest.mark.parametrize(("path", "text"), VALID)
def test_valid_code_has_no_errors(path: str, text: str) -> None:
    assert syntax_errors(path, text) == []


# (path, broken text, line of the first problem, words its message contains)
BROKEN = [
    ("bad.py", "def f(:\n    pass\n", 1, "missing ')'"),
    ("bad.py", "def ok():\n    return 1\n\ndef f(x):\n    return x +\n", 5, "unexpected"),
    ("bad.py", "class A\n    pass\n", 1, "unexpected"),
    ("bad.js", "let y = [1, 2;\n", 1, "missing ']'"),
    ("bad.js", "function f( {\n}\n", 1, "unexpected"),
    ("bad.ts", "let x: = 3;\n", 1, "unexpected ':'"),
    # JSX is not TypeScript: the same line is valid in a .tsx file (above).
    ("bad.ts", "export const App = () => <div className='x'>{1}</div>;\n", 1, "unexpected"),
    ("bad.tsx", "const a = <div>;\n", 1, "unexpected"),
    ("bad.go", "package m\nfunc f() { x := }\n", 2, "missing identifier"),
    ("Bad.java", "class A { void m() { int x = 1 } }\n", 1, "missing ';'"),
    ("Bad.java", "class A { void m( { } }\n", 1, "missing ')'"),
    ("Bad.cs", "class A { void M( { } }\n", 1, "unexpected"),
    ("Bad.cs", "class A { void M() { int x = 1 } }\n", 1, "unexpected"),
]


@pytest.mark.parametrize(("path", "text", "line", "message"), BROKEN)
def test_broken_code_is_reported_with_its_line(
    path: str, text: str, line: int, message: str
) -> None:
    problems = syntax_errors(path, text)
    assert problems, f"{path}: no error found in {text!r}"
    assert problems[0].line == line
    assert message in problems[0].message
    assert problems[0].column >= 1


def test_column_counts_characters_not_bytes() -> None:
    # "é" is two bytes in UTF-8; the missing ']' goes at the 27th character (28th byte).
    problems = syntax_errors("u.js", 'let s = "é"; let y = [1, 2;\n')
    assert [(p.line, p.column) for p in problems] == [(1, 27)]
    assert str(problems[0]) == "1:27: missing ']'"


def test_unknown_language_is_never_broken() -> None:
    assert syntax_errors("notes.md", "def f(:\n") == []
    assert syntax_errors("Makefile", "}{") == []


def test_one_mistake_in_a_big_file_is_one_problem() -> None:
    good = "".join(f"def f{i}(x):\n    return x\n\n" for i in range(200))
    assert len(syntax_errors("big.py", good + "def broken(:\n    pass\n" + good)) == 1


def test_the_list_is_bounded() -> None:
    text = "".join(f"class A{i} {{ void m( {{ }} }}\n" for i in range(100))
    problems = syntax_errors("Many.java", text)
    assert 1 < len(problems) <= MAX_PROBLEMS
    assert problems == sorted(problems, key=lambda p: (p.line, p.column))


def test_message_snippet_is_short() -> None:
    problems = syntax_errors("x.py", "x = = " + "y" * 500 + "\n")
    assert problems
    assert all(len(p.message) < 60 for p in problems)
