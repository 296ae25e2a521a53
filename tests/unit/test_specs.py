"""Specs: parsing, ids, errors with file and line, diffs, rendering and linting files."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.specs import (
    MAX_SPEC_BYTES,
    Criterion,
    InvalidSpec,
    Spec,
    SpecError,
    diff_specs,
    lint_paths,
    parse_spec,
    read_spec,
    render_diff,
    render_spec,
)

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_SPECS = REPO / "examples" / "hello-service" / "specs"
PATH = "specs/greeting.md"


def ids(spec: Spec) -> list[str]:
    return [c.id for c in spec.criteria]


def texts(spec: Spec) -> list[str]:
    return [c.text for c in spec.criteria]


def errors_of(text: str, path: str = PATH) -> list[tuple[int, str]]:
    with pytest.raises(InvalidSpec) as caught:
        parse_spec(text, path)
    assert all(error.path == path for error in caught.value.errors)
    return [(error.line, error.message) for error in caught.value.errors]


# --- valid specs: criteria -------------------------------------------------------------------

# (name, text, expected criterion ids, expected criterion texts)
VALID: list[tuple[str, str, list[str], list[str]]] = [
    ("bulleted", "## Acceptance\n- one\n- two\n", ["greeting#1", "greeting#2"], ["one", "two"]),
    ("numbered", "## Acceptance\n1. one\n2. two\n", ["greeting#1", "greeting#2"],
     ["one", "two"]),
    ("numbers as written do not matter", "## Acceptance\n1. one\n1. two\n7) three\n",
     ["greeting#1", "greeting#2", "greeting#3"], ["one", "two", "three"]),
    ("star and plus bullets", "## Acceptance\n* one\n+ two\n", ["greeting#1", "greeting#2"],
     ["one", "two"]),
    ("heading 'Acceptance criteria'", "## Acceptance criteria\n- one\n", ["greeting#1"],
     ["one"]),
    ("heading in capitals with a colon", "## ACCEPTANCE CRITERIA:\n- one\n", ["greeting#1"],
     ["one"]),
    ("closing hashes on the heading", "## Acceptance ##\n- one\n", ["greeting#1"], ["one"]),
    ("explicit ids", "## Acceptance\n- one {#first}\n- two\n- three {#third.v2}\n",
     ["greeting#first", "greeting#2", "greeting#third.v2"], ["one", "two", "three"]),
    ("explicit id on a continuation line", "## Acceptance\n1. one\n   and more {#x}\n",
     ["greeting#x"], ["one and more"]),
    ("lazy continuation", "## Acceptance\n- one\ncontinued\n- two\n",
     ["greeting#1", "greeting#2"], ["one continued", "two"]),
    ("task boxes", "## Acceptance\n- [ ] one\n- [x] two\n", ["greeting#1", "greeting#2"],
     ["one", "two"]),
    ("prose around the list", "## Acceptance\nThese must hold:\n\n- one\n\nThat is all.\n",
     ["greeting#1"], ["one"]),
    ("VERIFY lines anywhere", "# Greeting\nVERIFY: one\n\n## Notes\n\nVERIFY: two {#two}\n",
     ["greeting#1", "greeting#two"], ["one", "two"]),
    ("VERIFY as a list item is not counted twice", "## Acceptance\n- VERIFY: one\n",
     ["greeting#1"], ["one"]),
    ("VERIFY after a list in the section", "## Acceptance\n- one\nVERIFY: two\n",
     ["greeting#1", "greeting#2"], ["one", "two"]),
    ("numbered in document order", "VERIFY: first\n\n## Acceptance\n- second\n",
     ["greeting#1", "greeting#2"], ["first", "second"]),
    ("two acceptance sections", "## Acceptance\n- one\n## Other\n- not\n## Acceptance\n- two\n",
     ["greeting#1", "greeting#2"], ["one", "two"]),
    ("subsections stay in the section", "## Acceptance\n### Greeting\n- one\n### Farewell\n"
     "- two\n", ["greeting#1", "greeting#2"], ["one", "two"]),
    ("the section ends at the next level-2 heading", "## Acceptance\n- one\n## Design\n- no\n",
     ["greeting#1"], ["one"]),
    ("level-3 Acceptance is not the section", "### Acceptance\n- no\n\nVERIFY: yes\n",
     ["greeting#1"], ["yes"]),
    ("fenced examples are not criteria", "## Acceptance\n- one\n\n```\n- no\nVERIFY: no\n```\n",
     ["greeting#1"], ["one"]),
    ("tilde fence", "~~~md\n## Acceptance\n- no\n~~~\nVERIFY: yes\n", ["greeting#1"], ["yes"]),
    ("HTML comments are not criteria", "## Acceptance\n- one\n<!--\n- no\n-->\n<!-- - no -->\n",
     ["greeting#1"], ["one"]),
    ("CRLF", "## Acceptance\r\n- one\r\n- two {#b}\r\n", ["greeting#1", "greeting#b"],
     ["one", "two"]),
    ("byte order mark", "\ufeff## Acceptance\n- one\n", ["greeting#1"], ["one"]),
    ("spaces inside code are kept", '## Acceptance\n- `greet("  ")` is `"Hello, world!"`\n',
     ["greeting#1"], ['`greet("  ")` is `"Hello, world!"`']),
    ("emoji and unicode", "## Acceptance\n- says 👋 to Zoë {#wave}\n", ["greeting#wave"],
     ["says 👋 to Zoë"]),
    ("lowercase verify is prose", "verify: no\nVERIFY: yes\n", ["greeting#1"], ["yes"]),
]


@pytest.mark.parametrize(("text", "expected_ids", "expected_texts"),
                         [(t, i, x) for _, t, i, x in VALID], ids=[n for n, *_ in VALID])
def test_valid_criteria(text: str, expected_ids: list[str], expected_texts: list[str]) -> None:
    spec = parse_spec(text, PATH)
    assert ids(spec) == expected_ids
    assert texts(spec) == expected_texts


# (name, text, expected details of the first criterion)
DETAILS: list[tuple[str, str, tuple[str, ...]]] = [
    ("sub-bullets belong to their parent", "## Acceptance\n- one\n  - a\n  - b\n- two\n",
     ("- a", "- b")),
    ("deeper nesting keeps its indent", "## Acceptance\n- one\n  - a\n    - deep\n",
     ("- a", "  - deep")),
    ("numbered parent, bulleted children", "## Acceptance\n1. one\n   - a\n2. two\n", ("- a",)),
    ("a child after a blank line", "## Acceptance\n- one\n\n  - a\n- two\n", ("- a",)),
    ("a child's continuation", "## Acceptance\n- one\n  - a\n    more\n", ("- a more",)),
    ("a second paragraph of a child", "## Acceptance\n- one\n  - a\n\n  note\n",
     ("- a", "note")),
]


@pytest.mark.parametrize(("text", "details"), [(t, d) for _, t, d in DETAILS],
                         ids=[n for n, *_ in DETAILS])
def test_nested_items_belong_to_their_parent(text: str, details: tuple[str, ...]) -> None:
    spec = parse_spec(text, PATH)
    assert spec.criteria[0].details == details
    assert all(not c.text.startswith("a") for c in spec.criteria)


def test_a_second_paragraph_continues_the_item_text() -> None:
    spec = parse_spec("## Acceptance\n- one\n\n  more of one\n- two\n", PATH)
    assert texts(spec) == ["one more of one", "two"]


def test_criterion_fields() -> None:
    spec = parse_spec("# T\n\n## Acceptance\n\n- one\n- two {#b}\n", PATH)
    assert spec.criteria == (
        Criterion("greeting#1", 1, "one", 5),
        Criterion("greeting#b", 2, "two", 6, explicit=True),
    )
    assert spec.criterion("greeting#b") == spec.criteria[1]
    assert spec.criterion("greeting#9") is None


# --- valid specs: front matter and ids -------------------------------------------------------

FRONT = "---\nid: hello\nstatus: implemented\nowner: '@ada'\n---\n# Hello\n## Acceptance\n- a\n"


def test_front_matter() -> None:
    spec = parse_spec(FRONT, "specs/other-name.md")
    assert (spec.id, spec.status, spec.owner, spec.title) == (
        "hello", "implemented", "@ada", "Hello")
    assert ids(spec) == ["hello#1"]
    assert spec.criteria[0].line == 8


@pytest.mark.parametrize(("text", "path", "spec_id"), [
    ("VERIFY: a\n", "specs/greeting.md", "greeting"),
    ("VERIFY: a\n", "specs/api/auth.v2.md", "auth.v2"),
    ("---\n---\nVERIFY: a\n", "specs/x.md", "x"),
    ("---\n# only a comment\n---\nVERIFY: a\n", "specs/x.md", "x"),
    ("---\nid: 2024-q3\n...\nVERIFY: a\n", "specs/x.md", "2024-q3"),
    ("VERIFY: a\n", "C:/work/specs/win.md", "win"),
])
def test_spec_id(text: str, path: str, spec_id: str) -> None:
    spec = parse_spec(text, path)
    assert spec.id == spec_id
    assert spec.title == spec_id


def test_defaults_without_front_matter() -> None:
    spec = parse_spec("VERIFY: a\n", PATH)
    assert (spec.status, spec.owner, spec.title, spec.path) == (None, None, "greeting", PATH)


def test_a_dash_line_later_is_not_front_matter() -> None:
    spec = parse_spec("# T\n---\nVERIFY: a\n", PATH)
    assert spec.id == "greeting"
    assert spec.path == PATH


# --- valid specs: scenarios ------------------------------------------------------------------

SCENARIO = """\
# Greeting

## Acceptance
- one

### Scenario: a named visitor
Some words about it.

Given the service is running
When a client asks for /greet?name=Ada
Then it answers "Hello, Ada!"
And the status is 200
But nothing is logged

## Scenario: a blank name
- Given a blank name
- **When** the client asks
- Then it answers "Hello, world!"

## Notes
Given a standalone block
When it is written without a heading
Then it is a scenario too

When the moon is full, we deploy.

Then we sleep.
"""


def test_scenarios() -> None:
    spec = parse_spec(SCENARIO, PATH)
    assert ids(spec) == ["greeting#1"]
    assert [(s.name, s.line) for s in spec.scenarios] == [
        ("a named visitor", 6), ("a blank name", 15), ("", 21)]
    first = spec.scenarios[0]
    assert [(step.keyword, step.text) for step in first.steps] == [
        ("Given", "the service is running"),
        ("When", "a client asks for /greet?name=Ada"),
        ("Then", 'it answers "Hello, Ada!"'),
        ("And", "the status is 200"),
        ("But", "nothing is logged"),
    ]
    assert [step.keyword for step in spec.scenarios[1].steps] == ["Given", "When", "Then"]
    assert spec.scenarios[2].steps[0].line == 21


def test_a_scenario_under_acceptance_is_not_a_criterion() -> None:
    text = "## Acceptance\n- one\n### Scenario: s\n- Given a\n- When b\n- Then c\n### More\n- two\n"
    spec = parse_spec(text, PATH)
    assert texts(spec) == ["one", "two"]
    assert [s.name for s in spec.scenarios] == ["s"]


def test_prose_starting_with_when_is_not_a_scenario() -> None:
    text = "VERIFY: a\n\nWhen in doubt, ask.\n\nThen ask again.\nGiven that, fine.\n"
    assert parse_spec(text, PATH).scenarios == ()


# --- broken specs ----------------------------------------------------------------------------

# (name, text, expected (line, part of the message) of every error)
BROKEN: list[tuple[str, str, list[tuple[int, str]]]] = [
    ("duplicate explicit ids", "## Acceptance\n- a {#x}\n- b {#x}\n",
     [(3, "duplicate criterion id 'greeting#x' (first at line 2)")]),
    ("explicit id that clashes with a number", "## Acceptance\n- a\n- b {#1}\n",
     [(3, "duplicate criterion id 'greeting#1'")]),
    ("explicit id with spaces", "## Acceptance\n- a {#two words}\n",
     [(2, "explicit id {#two words} is not a valid id")]),
    ("explicit id with a slash", "## Acceptance\n- a {#x/y}\n", [(2, "{#x/y}")]),
    ("explicit id with a hash", "## Acceptance\n- a {##x}\n", [(2, "{##x}")]),
    ("explicit id starting with a dash", "## Acceptance\n- a {#-x}\n", [(2, "{#-x}")]),
    ("empty explicit id", "## Acceptance\n- a {#}\n", [(2, "{#} is not a valid id")]),
    ("too long explicit id", "## Acceptance\n- a {#" + "x" * 65 + "}\n", [(2, "not a valid")]),
    ("empty acceptance section", "# T\n## Acceptance\n\nNothing yet.\n",
     [(2, "empty acceptance section")]),
    ("empty section next to a full one", "## Acceptance\n- a\n## Acceptance criteria\n",
     [(3, "empty acceptance section")]),
    ("no criteria at all", "# T\n\nJust prose.\n", [(1, "no acceptance criteria")]),
    ("criteria only in a code block", "```\n## Acceptance\n- a\n```\n",
     [(1, "no acceptance criteria")]),
    ("empty item", "## Acceptance\n- a\n-\n", [(3, "empty acceptance criterion")]),
    ("only an id", "## Acceptance\n- {#x}\n", [(2, "empty acceptance criterion")]),
    ("empty VERIFY", "VERIFY: a\nVERIFY:\n", [(2, "empty acceptance criterion")]),
    ("Then without When", "VERIFY: a\n\n### Scenario: s\nGiven a\nThen b\n",
     [(5, "'Then' without a 'When' before it")]),
    ("standalone Then without When", "VERIFY: a\n\nGiven a\nAnd b\nThen c\n",
     [(5, "'Then' without a 'When'")]),
    ("scenario with no Then", "VERIFY: a\n### Scenario: s\nGiven a\nWhen b\n",
     [(2, "scenario 's' has no 'Then'")]),
    ("scenario with no steps", "VERIFY: a\n### Scenario: s\nJust words.\n",
     [(2, "scenario 's' has no Given/When/Then steps")]),
    ("scenario without a name", "VERIFY: a\n### Scenario:\nGiven a\nWhen b\nThen c\n",
     [(2, "'Scenario:' heading without a name")]),
    ("scenario starting with And", "VERIFY: a\n### Scenario: s\nAnd a\nWhen b\nThen c\n",
     [(3, "'And' with no step before it")]),
    ("two scenarios with one name", "VERIFY: a\n### Scenario: s\nWhen a\nThen b\n"
     "### Scenario: S\nWhen a\nThen b\n", [(5, "scenario 'S' repeats line 2's")]),
    ("unterminated front matter", "---\nid: x\n\n## Acceptance\n- a\n",
     [(1, "front matter opened with '---' is never closed")]),
    ("unknown front matter key", "---\nid: x\ntitle: Hello\n---\nVERIFY: a\n",
     [(3, "unknown front matter key 'title'; allowed: id, status, owner")]),
    ("misspelt key", "---\nstatsu: draft\n---\nVERIFY: a\n", [(2, "'statsu'")]),
    ("front matter that is a list", "---\n- id\n---\nVERIFY: a\n",
     [(2, "front matter must be keys and values")]),
    ("front matter that is a string", "---\nhello\n---\nVERIFY: a\n",
     [(2, "front matter must be keys and values")]),
    ("front matter YAML error", "---\nid: x\nowner: [ada\n---\nVERIFY: a\n",
     [(3, "front matter is not valid YAML")]),
    ("front matter bad indentation", "---\nid: x\n  status: draft\n---\nVERIFY: a\n",
     [(3, "front matter is not valid YAML")]),
    ("front matter list value", "---\nowner: [ada, bob]\n---\nVERIFY: a\n",
     [(2, "front matter 'owner' must be a non-empty string")]),
    ("front matter empty value", "---\nowner:\n---\nVERIFY: a\n",
     [(2, "'owner' must be a non-empty string")]),
    ("front matter null value", "---\nstatus: ~\n---\nVERIFY: a\n",
     [(2, "'status' must be a non-empty string")]),
    ("front matter duplicate key", "---\nid: a\nid: b\n---\nVERIFY: a\n",
     [(3, "front matter key 'id' appears twice")]),
    ("front matter bad status", "---\nstatus: done\n---\nVERIFY: a\n",
     [(2, "status 'done' is not one of draft, proposed")]),
    ("front matter bad id", "---\nid: my spec\n---\nVERIFY: a\n",
     [(2, "front matter id 'my spec' is not a valid id")]),
    ("front matter id with a hash", "---\nid: a#b\n---\nVERIFY: a\n", [(2, "'a#b'")]),
    ("front matter key that is not a string", "---\n? [a]\n: b\n---\nVERIFY: a\n",
     [(2, "unknown front matter key None")]),
    ("several errors at once, in line order",
     "---\nid: x\nfoo: 1\n---\n## Acceptance\n- a {#k}\n- b {#k}\n### Scenario: s\nThen c\n",
     [(3, "unknown front matter key 'foo'"), (7, "duplicate criterion id 'x#k'"),
      (9, "'Then' without a 'When'")]),
]


@pytest.mark.parametrize(("text", "expected"), [(t, e) for _, t, e in BROKEN],
                         ids=[n for n, *_ in BROKEN])
def test_broken_specs(text: str, expected: list[tuple[int, str]]) -> None:
    found = errors_of(text)
    assert len(found) == len(expected), found
    for (line, message), (want_line, want) in zip(found, expected, strict=True):
        assert line == want_line, found
        assert want in message, found


def test_bad_file_name_without_an_id() -> None:
    assert errors_of("VERIFY: a\n", "specs/my spec.md") == [
        (1, "the file name 'my spec' is not a valid spec id (1 to 64 letters, digits, '.', "
            "'_' or '-', starting with a letter or digit); rename the file or set 'id' in the "
            "front matter")]
    assert parse_spec("---\nid: mine\n---\nVERIFY: a\n", "specs/my spec.md").id == "mine"


def test_errors_print_as_file_line_message() -> None:
    with pytest.raises(InvalidSpec) as caught:
        parse_spec("## Acceptance\n- a {#x}\n- b {#x}\n", PATH)
    assert str(caught.value) == (
        "specs/greeting.md:3: duplicate criterion id 'greeting#x' (first at line 2)")
    assert str(SpecError("specs/x.md", 0, "not UTF-8 text")) == "specs/x.md: not UTF-8 text"
    assert caught.value.retryable is False


def test_a_huge_spec_is_refused() -> None:
    assert errors_of("VERIFY: a\n" + "x" * MAX_SPEC_BYTES) == [
        (0, f"larger than {MAX_SPEC_BYTES} bytes")]


# --- diff_specs ------------------------------------------------------------------------------

OLD = "## Acceptance\n- greets by name {#name}\n- greets the world\n- shouts {#loud}\n"


def test_diff_of_a_new_spec_adds_everything() -> None:
    new = parse_spec(OLD, PATH)
    diff = diff_specs(None, new)
    assert [c.id for c in diff.added] == ["greeting#name", "greeting#2", "greeting#loud"]
    assert not (diff.changed or diff.removed or diff.unchanged)
    assert diff.to_implement == new.criteria
    assert not diff.is_empty


# (name, new text, added, changed, removed, unchanged)
DIFFS: list[tuple[str, str, list[str], list[str], list[str], list[str]]] = [
    ("identical", OLD, [], [], [], ["greeting#name", "greeting#2", "greeting#loud"]),
    ("reworded", "## Acceptance\n- greets a person by name {#name}\n- greets the world\n"
     "- shouts {#loud}\n", [], ["greeting#name"], [], ["greeting#2", "greeting#loud"]),
    ("explicit ids survive reordering", "## Acceptance\n- shouts {#loud}\n- greets the world\n"
     "- greets by name {#name}\n", [], [], [], ["greeting#loud", "greeting#2", "greeting#name"]),
    ("an inserted criterion shifts numbered ids", "## Acceptance\n- new first\n"
     "- greets by name {#name}\n- greets the world\n- shouts {#loud}\n",
     ["greeting#1", "greeting#3"], [], ["greeting#2"], ["greeting#name", "greeting#loud"]),
    ("removed", "## Acceptance\n- greets by name {#name}\n- greets the world\n", [], [],
     ["greeting#loud"], ["greeting#name", "greeting#2"]),
    ("moved lines, same words", "# Title\n\nIntro.\n\n" + OLD, [], [], [],
     ["greeting#name", "greeting#2", "greeting#loud"]),
    ("re-wrapped, same words", "## Acceptance\n- greets by\n  name {#name}\n- greets the world\n"
     "- shouts {#loud}\n", [], [], [], ["greeting#name", "greeting#2", "greeting#loud"]),
    ("a changed sub-bullet", "## Acceptance\n- greets by name {#name}\n  - in English\n"
     "- greets the world\n- shouts {#loud}\n", [], ["greeting#name"], [],
     ["greeting#2", "greeting#loud"]),
]


@pytest.mark.parametrize(("new", "added", "changed", "removed", "unchanged"),
                         [row[1:] for row in DIFFS], ids=[row[0] for row in DIFFS])
def test_diff_specs(new: str, added: list[str], changed: list[str], removed: list[str],
                    unchanged: list[str]) -> None:
    diff = diff_specs(parse_spec(OLD, PATH), parse_spec(new, PATH))
    assert [c.id for c in diff.added] == added
    assert [c.new.id for c in diff.changed] == changed
    assert [c.old.id for c in diff.changed] == changed
    assert [c.id for c in diff.removed] == removed
    assert [c.id for c in diff.unchanged] == unchanged
    assert diff.is_empty == (not (added or changed or removed))


def test_diff_notices_scenarios() -> None:
    old = parse_spec("VERIFY: a\n### Scenario: s\nWhen x\nThen y\n", PATH)
    same = parse_spec("VERIFY: a\n\n\n### Scenario: s\nWhen x\nThen y\n", PATH)
    other = parse_spec("VERIFY: a\n### Scenario: s\nWhen x\nThen z\n", PATH)
    assert diff_specs(old, same).is_empty
    assert diff_specs(old, other).scenarios_changed
    assert not diff_specs(old, other).is_empty


def test_render_diff() -> None:
    new = parse_spec("## Acceptance\n- greets by name, politely {#name}\n- new\n", PATH)
    assert render_diff(diff_specs(parse_spec(OLD, PATH), new)) == (
        "~ greeting#name: greets by name, politely\n"
        "    was: greets by name\n"
        "~ greeting#2: new\n"
        "    was: greets the world\n"
        "- greeting#loud: shouts\n"
    )
    same = parse_spec(OLD, PATH)
    assert render_diff(diff_specs(same, same)) == "no criterion changed\n"
    assert render_diff(diff_specs(None, same)).startswith("+ greeting#name: greets by name\n")


def test_to_implement_is_in_the_new_order() -> None:
    new = parse_spec("## Acceptance\n- brand new {#b}\n- greets the world, loudly\n"
                     "- greets by name {#name}\n", PATH)
    diff = diff_specs(parse_spec(OLD, PATH), new)
    assert [c.id for c in diff.to_implement] == ["greeting#b", "greeting#2"]


# --- render_spec -----------------------------------------------------------------------------


def test_render_spec() -> None:
    text = FRONT + "  - detail\n- b {#bee}\n### Scenario: s\nWhen x\nThen y\n"
    assert render_spec(parse_spec(text, "specs/hello.md")) == (
        "spec hello  (specs/hello.md)\n"
        "title:  Hello\n"
        "status: implemented\n"
        "owner:  @ada\n"
        "\n"
        "criteria (2):\n"
        "  hello#1    a  (line 8)\n"
        "               - detail\n"
        "  hello#bee  b  (line 10)\n"
        "\n"
        "scenarios (1):\n"
        "  Scenario: s  (line 11)\n"
        "    When x\n"
        "    Then y\n"
    )


def test_render_spec_without_front_matter_or_scenarios() -> None:
    out = render_spec(parse_spec("VERIFY: a\nGiven b\nWhen c\nThen d\n", PATH))
    assert "status: -\nowner:  -\n" in out
    assert "  Scenario: (unnamed)  (line 2)\n    Given b\n" in out


# --- files: read_spec and lint_paths ---------------------------------------------------------


def test_the_example_specs_lint_clean() -> None:
    assert lint_paths([EXAMPLE_SPECS]) == []
    spec = read_spec(EXAMPLE_SPECS / "greeting.md")
    assert spec.id == "greeting"
    assert 3 <= len(spec.criteria) <= 4
    assert all(c.explicit for c in spec.criteria)
    assert len(spec.scenarios) == 1
    assert "farewell" in render_spec(spec)


def test_lint_paths_files_and_folders(tmp_path: Path) -> None:
    specs = tmp_path / "specs"
    (specs / "api").mkdir(parents=True)
    (specs / ".drafts").mkdir()
    (specs / "good.md").write_text("VERIFY: a\n")
    (specs / "README.md").write_text("How to write specs: no criteria here.\n")
    (specs / "notes.txt").write_text("not a spec\n")
    (specs / ".drafts" / "wip.md").write_text("nothing\n")
    (specs / "api" / "bad.md").write_text("## Acceptance\n- a {#x}\n- b {#x}\n")
    (specs / "api" / "good.md").write_text("VERIFY: clashes with the other good.md\n")
    (specs / "latin1.md").write_bytes("VERIFY: caf\xe9\n".encode("latin-1"))
    missing = tmp_path / "missing.md"

    errors = lint_paths([specs, specs / "good.md", missing])
    shown = [str(e).replace(tmp_path.as_posix() + "/", "") for e in errors]
    assert shown == [
        "specs/api/bad.md:3: duplicate criterion id 'bad#x' (first at line 2)",
        "specs/good.md:1: spec id 'good' is also the id of specs/api/good.md",
        "specs/latin1.md: not UTF-8 text",
        "missing.md: no such file or folder",
    ]


def test_lint_paths_explicit_readme_is_linted(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("Prose.\n")
    assert [e.message[:22] for e in lint_paths([readme])] == ["no acceptance criteria"]


def test_lint_paths_clean_and_empty(tmp_path: Path) -> None:
    assert lint_paths([]) == []
    assert lint_paths([tmp_path]) == []


def test_read_spec_errors(tmp_path: Path) -> None:
    with pytest.raises(InvalidSpec, match=r"cannot read"):
        read_spec(tmp_path / "absent.md")
    big = tmp_path / "big.md"
    big.write_text("VERIFY: a\n" + "x" * MAX_SPEC_BYTES)
    with pytest.raises(InvalidSpec, match="larger than"):
        read_spec(big)


def test_the_docs_show_the_example_and_what_the_bot_understood() -> None:
    docs = (REPO / "docs" / "specs.md").read_text()
    example = EXAMPLE_SPECS / "greeting.md"
    shown = render_spec(read_spec(example)).replace(
        str(example), "examples/hello-service/specs/greeting.md")
    assert f"```markdown\n{example.read_text()}```\n" in docs
    assert f"```\n{shown}```\n" in docs
