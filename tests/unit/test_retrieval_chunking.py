"""The chunker: sizes, boundaries and bounds, on plain strings."""

from __future__ import annotations

from itertools import pairwise

import pytest

from bot.agent.retrieval.chunking import TextChunk, chunk_text


def lines(n: int, text: str = "x = 1") -> list[str]:
    return [f"{text}  # {i}" for i in range(n)]


def spans(chunks: list[TextChunk]) -> list[tuple[int, int]]:
    return [(c.start_line, c.end_line) for c in chunks]


def python_functions(count: int, body: int) -> str:
    out: list[str] = []
    for n in range(count):
        out += [f"def f{n}(x):", *[f"    x += {i}" for i in range(body)], "    return x", ""]
    return "\n".join(out)


@pytest.mark.parametrize(("text", "expected"), [
    ("", []),
    ("\n\n   \n", []),
    ("one line", [(1, 1)]),
    ("\n".join(lines(80)), [(1, 80)]),  # up to the maximum: one chunk
    ("\n".join(lines(81)), [(1, 80), (81, 81)]),  # no boundary at all: cut at the maximum
])
def test_sizes(text: str, expected: list[tuple[int, int]]) -> None:
    assert spans(chunk_text("a.py", text)) == expected


def test_cuts_before_top_level_definitions() -> None:
    # Eleven functions of 12 lines each (def, 10 body lines, return, blank line: 13 lines).
    chunks = chunk_text("m.py", python_functions(11, 10))
    assert len(chunks) >= 2
    for chunk in chunks:
        assert chunk.text.startswith("def f"), chunk.text[:20]
        assert 40 <= chunk.end_line - chunk.start_line + 1 <= 80 or chunk is chunks[-1]


def test_keeps_decorators_and_leading_comments_with_their_definition() -> None:
    head = [f"value_{i} = {i}" for i in range(50)]
    tail = ["", "# Explains g.", "@decorator", "@other(1)", "def g():", *["    pass"] * 40]
    chunks = chunk_text("m.py", "\n".join(head + tail))
    assert spans(chunks) == [(1, 51), (52, 95)]
    assert chunks[1].text.startswith("# Explains g.\n@decorator\n@other(1)\ndef g():")


@pytest.mark.parametrize("opener", [
    "export async function load() {", "pub fn run() {", "func (s *Server) Start() {",
    "class Store:", "public static class Main {", "    def method(self):",
    "type Config struct {",
])
def test_definition_openers_across_languages(opener: str) -> None:
    text = "\n".join([*lines(55, "let a = 1"), opener, *lines(40, "  body()")])
    assert spans(chunk_text("f", text))[0] == (1, 55)


@pytest.mark.parametrize("line", ["type = 3", "type(x)", "object.attr = 1", "module: str"])
def test_keyword_named_variables_are_no_definition(line: str) -> None:
    # With no boundary the cut falls at the maximum.
    text = "\n".join([*lines(50), line, *lines(50)])
    assert spans(chunk_text("f.py", text))[0] == (1, 80)


def test_blank_line_falls_back_when_no_definition() -> None:
    paragraph = [*lines(45), "", *lines(45)]
    assert spans(chunk_text("notes.txt", "\n".join(paragraph))) == [(1, 46), (47, 91)]


def test_prefers_boundary_that_returns_to_shallower_indent() -> None:
    text = "\n".join([
        *lines(44), "", *[f"    y = {i}" for i in range(4)],  # blank, same indent: weak
        "", *lines(40),  # blank then back to the margin: stronger
    ])
    assert spans(chunk_text("f.py", text))[0] == (1, 50)


def test_bounds_chars_and_chunk_count() -> None:
    wide = "\n".join("w" * 1_000 for _ in range(10))
    chunks = chunk_text("wide.txt", wide, max_chars=2_500)
    assert all(len(c.text) <= 2_500 for c in chunks)
    assert spans(chunks)[:2] == [(1, 2), (3, 4)]
    huge_line = chunk_text("min.js", "a" * 10_000, max_chars=500)
    assert spans(huge_line) == [(1, 1)] and len(huge_line[0].text) == 500
    many = chunk_text("long.txt", "\n".join(lines(2_000)), max_chunks=3)
    assert spans(many) == [(1, 80), (81, 160), (161, 240)]


def test_chunks_cover_the_file_in_order() -> None:
    text = python_functions(30, 7)
    chunks = chunk_text("m.py", text)
    assert chunks[0].start_line == 1
    for before, after in pairwise(chunks):
        assert after.start_line == before.end_line + 1
    assert chunks[-1].end_line == len(text.splitlines())
    assert "\n".join(c.text for c in chunks) == text.rstrip("\n")
    assert all(c.path == "m.py" for c in chunks)


def test_rejects_inconsistent_sizes() -> None:
    with pytest.raises(ValueError, match="min_lines"):
        chunk_text("f", "x", min_lines=50, target_lines=40)
