"""Specs: Markdown files under ``specs/`` that describe behaviour the bot implements and proves.

The format (``docs/specs.md`` has a full example)::

    ---                              optional front matter: id, status, owner; nothing else
    id: greeting
    status: proposed
    ---
    # Greeting

    ## Acceptance                    or "Acceptance criteria"; any case; level 2
    1. greet("Ada") returns "Hello, Ada!" {#greet-name}
    2. A blank name is greeted as "world"
       - sub-bullets belong to the item above

    VERIFY: a line like this anywhere is a criterion too

    ### Scenario: saying goodbye
    Given the service is running
    When a client asks for /farewell?name=Ada
    Then it answers "Goodbye, Ada!"

Each criterion has a stable id: ``<spec-id>#<n>`` (its position among the spec's criteria) or
``<spec-id>#<name>`` from an explicit ``{#name}`` suffix, which survives renumbering. The spec
id is the front matter's ``id`` or the file's stem.

:func:`parse_spec` and :func:`diff_specs` are pure; :func:`read_spec` and :func:`lint_paths`
are the thin layer that reads files. Every problem is a :class:`SpecError` with the file and
the line, and :func:`parse_spec` reports all of a file's problems at once.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePath

import yaml

from bot.errors import ForgebotError

FRONT_MATTER_KEYS: tuple[str, ...] = ("id", "status", "owner")
STATUSES: tuple[str, ...] = ("draft", "proposed", "accepted", "implemented", "partial",
                             "deprecated")
# A spec is prose for people; a bound keeps a hostile or accidental huge file cheap to refuse.
MAX_SPEC_BYTES = 512 * 1024

# Ids end up in branch names, test markers and comments: keep them to a safe alphabet. '#'
# separates the spec id from the criterion's own part, so neither may contain it.
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_ID_RULE = "1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit"

_HEADING = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*))?$")
_ACCEPTANCE = re.compile(r"^acceptance(?:[ \t]+criteria)?[ \t]*:?$", re.IGNORECASE)
_SCENARIO = re.compile(r"^scenario[ \t]*:[ \t]*(.*)$", re.IGNORECASE)
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_LIST_ITEM = re.compile(r"^([ \t]*)([-*+]|\d{1,9}[.)])(?:([ \t]+)(.*))?$")
_TASK_BOX = re.compile(r"^\[[ xX]\][ \t]+")
_VERIFY = re.compile(r"^[ \t]*(?:(?:[-*+]|\d{1,9}[.)])[ \t]+)?VERIFY:[ \t]*(.*)$")
# Gherkin keywords are capitalised; a lower-case "when" starts ordinary prose.
_STEP = re.compile(
    r"^[ \t]*(?:(?:[-*+]|\d{1,9}[.)])[ \t]+)?(?:\*\*|__)?(Given|When|Then|And|But)(?:\*\*|__)?"
    r"[ \t:]+(\S.*)$"
)


# --- values ----------------------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class SpecError:
    """One problem in a spec file; ``line`` is 1-based, or 0 when it concerns the whole file."""

    path: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}" if self.line else (
            f"{self.path}: {self.message}")


class InvalidSpec(ForgebotError):
    """A spec that does not parse; ``errors`` holds every problem found, in line order."""

    def __init__(self, errors: Sequence[SpecError]) -> None:
        super().__init__("\n".join(str(error) for error in errors))
        self.errors: tuple[SpecError, ...] = tuple(errors)


@dataclass(frozen=True)
class Criterion:
    """An acceptance criterion: ``id`` is ``<spec-id>#<n>`` or ``<spec-id>#<explicit>``."""

    id: str
    number: int
    text: str
    line: int
    details: tuple[str, ...] = ()
    explicit: bool = False

    def same_meaning(self, other: Criterion) -> bool:
        """True when both say the same thing; where they sit in the file does not matter."""
        return (self.text, self.details) == (other.text, other.details)


@dataclass(frozen=True)
class Step:
    """One Given/When/Then/And/But line of a scenario."""

    keyword: str
    text: str
    line: int


@dataclass(frozen=True)
class Scenario:
    """A Given/When/Then block; ``name`` is ``""`` for a block outside a Scenario heading."""

    name: str
    line: int
    steps: tuple[Step, ...]

    def outline(self) -> tuple[str, tuple[tuple[str, str], ...]]:
        """The scenario without line numbers, to compare two revisions."""
        return self.name, tuple((step.keyword, step.text) for step in self.steps)


@dataclass(frozen=True)
class Spec:
    """What the bot understood of one spec file."""

    id: str
    path: str
    title: str
    status: str | None
    owner: str | None
    criteria: tuple[Criterion, ...]
    scenarios: tuple[Scenario, ...]

    def criterion(self, criterion_id: str) -> Criterion | None:
        """The criterion with this id, or None."""
        return next((c for c in self.criteria if c.id == criterion_id), None)


@dataclass(frozen=True)
class CriterionChange:
    """A criterion whose id stayed and whose text changed."""

    old: Criterion
    new: Criterion


@dataclass(frozen=True)
class SpecDiff:
    """Criteria of two revisions of one spec, matched by id."""

    added: tuple[Criterion, ...] = ()
    changed: tuple[CriterionChange, ...] = ()
    removed: tuple[Criterion, ...] = ()
    unchanged: tuple[Criterion, ...] = ()
    scenarios_changed: bool = False

    @property
    def to_implement(self) -> tuple[Criterion, ...]:
        """The new and changed criteria (new wording), in the new spec's order."""
        touched = self.added + tuple(change.new for change in self.changed)
        return tuple(sorted(touched, key=lambda c: c.line))

    @property
    def is_empty(self) -> bool:
        """True when no criterion and no scenario changed (a wording change elsewhere)."""
        return not (self.added or self.changed or self.removed or self.scenarios_changed)


# --- parsing ---------------------------------------------------------------------------------


@dataclass
class _Section:
    kind: str  # "acceptance", "scenario" or "other"
    line: int  # of its heading; 0 before the first heading
    name: str = ""
    owner_line: int = 0  # the level-2 Acceptance heading this section belongs to
    lines: list[tuple[int, str]] = field(default_factory=list)


@dataclass
class _Draft:
    """A criterion before it has its number.

    Text is gathered as lists of line parts and joined once at the end: appending to a string
    line by line would copy it every time, quadratic on a long item.
    """

    line: int
    first: str
    column: int = 0  # where a nested item or continuation must start to belong to it
    more: list[str] = field(default_factory=list)
    details: list[list[str]] = field(default_factory=list)

    def text(self) -> str:
        return " ".join([self.first, *self.more]).strip()

    def detail_lines(self) -> tuple[str, ...]:
        return tuple(" ".join(parts) for parts in self.details)


def parse_spec(text: str, path: str | PurePath) -> Spec:
    """Parse one spec; raise InvalidSpec with every problem, each with the file and line.

    ``path`` is where the text came from (``specs/greeting.md``); its stem is the spec id
    unless the front matter sets one.
    """
    where = PurePath(path).as_posix()
    if len(text.encode("utf-8", "surrogatepass")) > MAX_SPEC_BYTES:
        raise InvalidSpec([SpecError(where, 0, f"larger than {MAX_SPEC_BYTES} bytes")])
    lines = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n").split("\n")
    errors: list[SpecError] = []
    meta, body_start = _front_matter(lines, where, errors)
    if body_start is None:
        raise InvalidSpec(errors)
    spec_id = _spec_id(meta, PurePath(path).stem, where, errors)
    sections, title = _sections(lines, body_start)
    drafts = _collect_criteria(sections, where, errors)
    criteria = _number(drafts, spec_id, where, errors)
    scenarios = _collect_scenarios(sections, where, errors)
    if not criteria and not any(section.kind == "acceptance" for section in sections):
        errors.append(SpecError(where, 1, "no acceptance criteria: add a '## Acceptance' "
                                          "section with list items, or 'VERIFY:' lines"))
    if errors:
        raise InvalidSpec(sorted(errors))
    return Spec(id=spec_id, path=where, title=title or spec_id, status=meta.get("status"),
                owner=meta.get("owner"), criteria=tuple(criteria), scenarios=tuple(scenarios))


def _front_matter(
    lines: list[str], where: str, errors: list[SpecError]
) -> tuple[dict[str, str], int | None]:
    """The front matter's keys and the index of the first body line (None: unreadable)."""
    if not lines or lines[0].rstrip() != "---":
        return {}, 0
    end = next((i for i in range(1, len(lines)) if lines[i].rstrip() in ("---", "...")), None)
    if end is None:
        errors.append(SpecError(where, 1, "front matter opened with '---' is never closed "
                                          "by a '---' line"))
        return {}, None
    try:
        node = yaml.compose("\n".join(lines[1:end]), Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = 2 + mark.line if mark is not None else 1
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        errors.append(SpecError(where, line, f"front matter is not valid YAML: {problem}"))
        return {}, end + 1
    if node is None:
        return {}, end + 1
    if not isinstance(node, yaml.MappingNode):
        errors.append(SpecError(where, 2, "front matter must be keys and values "
                                          f"({', '.join(FRONT_MATTER_KEYS)})"))
        return {}, end + 1
    return _front_matter_keys(node, where, errors), end + 1


def _front_matter_keys(
    node: yaml.MappingNode, where: str, errors: list[SpecError]
) -> dict[str, str]:
    meta: dict[str, str] = {}
    for key_node, value_node in node.value:
        line = 2 + key_node.start_mark.line
        key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
        if key not in FRONT_MATTER_KEYS:
            errors.append(SpecError(where, line, f"unknown front matter key {key!r}; "
                                                 f"allowed: {', '.join(FRONT_MATTER_KEYS)}"))
            continue
        assert isinstance(key, str)
        if key in meta:
            errors.append(SpecError(where, line, f"front matter key {key!r} appears twice"))
            continue
        value = value_node.value if isinstance(value_node, yaml.ScalarNode) else None
        if not isinstance(value, str) or value_node.tag.endswith(":null") or not value.strip():
            errors.append(SpecError(where, line, f"front matter {key!r} must be a non-empty "
                                                 "string"))
            continue
        problem = _front_matter_value_problem(key, value.strip())
        if problem:
            errors.append(SpecError(where, line, problem))
            continue
        meta[key] = value.strip()
    return meta


def _front_matter_value_problem(key: str, value: str) -> str | None:
    if key == "id" and not _ID.match(value):
        return f"front matter id {value!r} is not a valid id: {_ID_RULE}"
    if key == "status" and value not in STATUSES:
        return f"front matter status {value!r} is not one of {', '.join(STATUSES)}"
    return None


def _spec_id(meta: dict[str, str], stem: str, where: str, errors: list[SpecError]) -> str:
    if "id" in meta:
        return meta["id"]
    if not _ID.match(stem):
        errors.append(SpecError(where, 1, f"the file name {stem!r} is not a valid spec id "
                                          f"({_ID_RULE}); rename the file or set 'id' in "
                                          "the front matter"))
    return stem


def _heading_text(raw: str) -> str:
    """A heading's text without the optional closing hashes (``## Acceptance ##``)."""
    text = raw.strip(" \t")
    bare = text.rstrip("#")
    if bare != text and (not bare or bare[-1] in " \t"):
        text = bare.rstrip(" \t")
    return text


def _split_explicit(text: str) -> tuple[str, str | None]:
    """The text without a trailing ``{#id}``, and that id (None when there is none).

    String operations rather than a regular expression searched from every position, which
    would be quadratic on a long line.
    """
    if not text.endswith("}"):
        return text, None
    start = text.rfind("{#")
    own = text[start + 2:-1] if start >= 0 else "{"
    if "{" in own or "}" in own:
        return text, None
    return text[:start].rstrip(), own.strip()


def _content(lines: list[str], start: int) -> Iterator[tuple[int, str]]:
    """``(line number, text)`` of the lines outside code fences and HTML comments.

    A criterion written inside ``` or <!-- --> is an example or commented out, not a criterion.
    """
    fence: str | None = None
    in_comment = False
    for index in range(start, len(lines)):
        text = lines[index]
        if fence is not None:
            if text.strip().startswith(fence) and not text.strip().strip(fence[0]):
                fence = None
            continue
        if in_comment:
            in_comment = "-->" not in text
            continue
        opened = _FENCE.match(text)
        if opened:
            fence = opened.group(1)
            continue
        if text.lstrip().startswith("<!--"):
            in_comment = "-->" not in text
            continue
        yield index + 1, text


def _sections(lines: list[str], start: int) -> tuple[list[_Section], str]:
    """The body cut at its headings, each section tagged by kind; and the first H1's text."""
    sections = [_Section("other", 0)]
    title = ""
    parent_kind, parent_line = "other", 0  # what the enclosing level-2 heading says
    for number, text in _content(lines, start):
        heading = _HEADING.match(text)
        if heading is None:
            sections[-1].lines.append((number, text))
            continue
        level, name = len(heading.group(1)), _heading_text(heading.group(2) or "")
        scenario = _SCENARIO.match(name)
        if level == 1 and not title:
            title = name
        if scenario and level >= 2:
            sections.append(_Section("scenario", number, scenario.group(1).strip()))
            if level == 2:
                parent_kind, parent_line = "other", 0
        elif level <= 2:
            parent_kind = "acceptance" if level == 2 and _ACCEPTANCE.match(name) else "other"
            parent_line = number if parent_kind == "acceptance" else 0
            sections.append(_Section(parent_kind, number, name, parent_line))
        else:
            sections.append(_Section(parent_kind, number, name, parent_line))
    return sections, title


def _collect_criteria(
    sections: list[_Section], where: str, errors: list[SpecError]
) -> list[_Draft]:
    drafts: list[_Draft] = []
    headings = {s.owner_line for s in sections if s.kind == "acceptance"}
    filled: set[int] = set()
    for section in sections:
        if section.kind == "acceptance":
            found = _acceptance_items(section.lines)
            if found:
                filled.add(section.owner_line)
            drafts.extend(found)
        else:
            drafts.extend(_verify_lines(section.lines))
    for line in sorted(headings - filled):
        errors.append(SpecError(where, line, "empty acceptance section: list the criteria as "
                                             "'- ...' or '1. ...' items"))
    return sorted(drafts, key=lambda d: d.line)


def _verify_lines(lines: list[tuple[int, str]]) -> list[_Draft]:
    return [_Draft(number, match.group(1).strip())
            for number, text in lines if (match := _VERIFY.match(text))]


def _acceptance_items(lines: list[tuple[int, str]]) -> list[_Draft]:
    """The top-level list items of an Acceptance section (and its VERIFY lines).

    Follows CommonMark closely enough for specs: an item's nested items and indented
    continuation lines belong to it, a line right after it continues it ("lazy"
    continuation), and a paragraph after a blank line ends it.
    """
    drafts: list[_Draft] = []
    current: _Draft | None = None
    after_blank = False
    for number, text in lines:
        if not text.strip():
            after_blank = True
            continue
        indent = len(text) - len(text.lstrip())
        verify = _VERIFY.match(text)
        item = _LIST_ITEM.match(text)
        if current is not None and indent >= current.column and (item or after_blank):
            _add_detail(current, text, item is not None)
        elif item is not None:
            current = _new_item(number, item)
            drafts.append(current)
        elif verify:
            current = None
            drafts.append(_Draft(number, verify.group(1).strip()))
        elif current is not None and not after_blank:
            _continue(current, text)  # lazy continuation
        else:
            current = None  # prose after the list
        after_blank = False
    return drafts


def _new_item(number: int, item: re.Match[str]) -> _Draft:
    indent, marker, space, content = item.group(1), item.group(2), item.group(3) or " ", (
        item.group(4) or "")
    content = _TASK_BOX.sub("", content.strip())
    verify = _VERIFY.match(content)
    if verify:
        content = verify.group(1).strip()
    # Four or more spaces after the marker start indented code; the content column is then 1.
    width = len(space) if len(space) <= 4 else 1
    return _Draft(number, content, column=len(indent) + len(marker) + width)


def _add_detail(draft: _Draft, text: str, is_item: bool) -> None:
    dedented = text[draft.column:] if text[:draft.column].strip() == "" else text.lstrip()
    if is_item or draft.details:
        draft.details.append([dedented.rstrip()])
    else:
        draft.more.append(dedented.strip())


def _continue(draft: _Draft, text: str) -> None:
    if draft.details:
        draft.details[-1].append(text.strip())
    else:
        draft.more.append(text.strip())


def _number(
    drafts: list[_Draft], spec_id: str, where: str, errors: list[SpecError]
) -> list[Criterion]:
    """Give each criterion its id, checking explicit ids and duplicates."""
    criteria: list[Criterion] = []
    first_line: dict[str, int] = {}
    for number, draft in enumerate(drafts, start=1):
        # Lines were stripped and joined with one space; spaces inside a line are kept, since
        # they can matter in code (`greet("  ")`).
        text, explicit = _split_explicit(draft.text())
        own = str(number) if explicit is None else explicit
        if explicit is not None and not _ID.match(own):
            errors.append(SpecError(where, draft.line, f"explicit id {{#{own}}} is not a "
                                                       f"valid id: {_ID_RULE}"))
        if not text:
            errors.append(SpecError(where, draft.line, "empty acceptance criterion"))
        criterion_id = f"{spec_id}#{own}"
        if criterion_id in first_line:
            errors.append(SpecError(where, draft.line, f"duplicate criterion id "
                                                       f"{criterion_id!r} (first at line "
                                                       f"{first_line[criterion_id]})"))
        first_line.setdefault(criterion_id, draft.line)
        criteria.append(Criterion(criterion_id, number, text, draft.line,
                                  draft.detail_lines(), explicit is not None))
    return criteria


def _collect_scenarios(
    sections: list[_Section], where: str, errors: list[SpecError]
) -> list[Scenario]:
    scenarios: list[Scenario] = []
    for section in sections:
        if section.kind == "scenario":
            steps = [s for n, t in section.lines if (s := _step(n, t)) is not None]
            scenario = Scenario(section.name, section.line, tuple(steps))
            if not section.name:
                errors.append(SpecError(where, section.line, "'Scenario:' heading without a "
                                                             "name"))
            errors.extend(_scenario_problems(scenario, where))
            scenarios.append(scenario)
        elif section.kind == "other":
            for run in _step_runs(section.lines):
                scenario = Scenario("", run[0].line, tuple(run))
                errors.extend(_scenario_problems(scenario, where))
                scenarios.append(scenario)
    first_line: dict[str, int] = {}
    for scenario in (s for s in scenarios if s.name):
        first = first_line.setdefault(scenario.name.lower(), scenario.line)
        if first != scenario.line:
            errors.append(SpecError(where, scenario.line, f"scenario {scenario.name!r} "
                                                          f"repeats line {first}'s"))
    return scenarios


def _step(number: int, text: str) -> Step | None:
    match = _STEP.match(text)
    return Step(match.group(1), match.group(2).strip(), number) if match else None


def _step_runs(lines: list[tuple[int, str]]) -> Iterator[list[Step]]:
    """Standalone scenarios: two or more consecutive step lines starting with Given or When.

    A single line that starts with "When" or "Then" is prose, not a scenario.
    """
    run: list[Step] = []
    previous = -1
    for number, text in [*lines, (-2, "")]:
        step = _step(number, text)
        if step is not None and run and number == previous + 1:
            run.append(step)
        else:
            if len(run) >= 2 and run[0].keyword in ("Given", "When"):
                yield run
            run = [step] if step is not None else []
        previous = number


def _scenario_problems(scenario: Scenario, where: str) -> Iterable[SpecError]:
    label = f"scenario {scenario.name!r}" if scenario.name else "scenario"
    if not scenario.steps:
        yield SpecError(where, scenario.line, f"{label} has no Given/When/Then steps")
        return
    if scenario.steps[0].keyword in ("And", "But"):
        yield SpecError(where, scenario.steps[0].line,
                        f"'{scenario.steps[0].keyword}' with no step before it")
    seen_when = False
    for step in scenario.steps:
        seen_when = seen_when or step.keyword == "When"
        if step.keyword == "Then" and not seen_when:
            yield SpecError(where, step.line, "'Then' without a 'When' before it")
    if not any(step.keyword == "Then" for step in scenario.steps):
        yield SpecError(where, scenario.line, f"{label} has no 'Then': it checks nothing")


# --- comparing revisions ---------------------------------------------------------------------


def diff_specs(old: Spec | None, new: Spec) -> SpecDiff:
    """Criteria added, changed, removed and unchanged from ``old`` to ``new``, by id.

    ``old`` is None for a new spec: everything is added. A criterion that moved without
    changing its words is unchanged; an auto-numbered criterion that changed position has a new
    id, which is why explicit ``{#ids}`` are recommended for specs that evolve.
    """
    before = {c.id: c for c in old.criteria} if old is not None else {}
    after_ids = {c.id for c in new.criteria}
    added: list[Criterion] = []
    changed: list[CriterionChange] = []
    unchanged: list[Criterion] = []
    for criterion in new.criteria:
        previous = before.get(criterion.id)
        if previous is None:
            added.append(criterion)
        elif previous.same_meaning(criterion):
            unchanged.append(criterion)
        else:
            changed.append(CriterionChange(previous, criterion))
    removed = [c for c in before.values() if c.id not in after_ids]
    old_outline = [s.outline() for s in old.scenarios] if old is not None else []
    return SpecDiff(tuple(added), tuple(changed), tuple(removed), tuple(unchanged),
                    old_outline != [s.outline() for s in new.scenarios])


# --- showing ---------------------------------------------------------------------------------


def render_spec(spec: Spec) -> str:
    """What ``forgebot spec show`` prints: the spec as the bot understood it."""
    width = max((len(c.id) for c in spec.criteria), default=0)
    out = [f"spec {spec.id}  ({spec.path})", f"title:  {spec.title}",
           f"status: {spec.status or '-'}", f"owner:  {spec.owner or '-'}", "",
           f"criteria ({len(spec.criteria)}):"]
    for criterion in spec.criteria:
        out.append(f"  {criterion.id:<{width}}  {criterion.text}  (line {criterion.line})")
        out.extend(f"  {'':<{width}}    {detail}" for detail in criterion.details)
    out += ["", f"scenarios ({len(spec.scenarios)}):"]
    for scenario in spec.scenarios:
        out.append(f"  Scenario: {scenario.name or '(unnamed)'}  (line {scenario.line})")
        out.extend(f"    {step.keyword} {step.text}" for step in scenario.steps)
    return "\n".join(out) + "\n"


def render_diff(diff: SpecDiff) -> str:
    """The criteria that changed, one per line, for a job's task and its comments."""
    out = [f"+ {c.id}: {c.text}" for c in diff.added]
    for change in diff.changed:
        out += [f"~ {change.new.id}: {change.new.text}", f"    was: {change.old.text}"]
    out += [f"- {c.id}: {c.text}" for c in diff.removed]
    if diff.scenarios_changed:
        out.append("~ scenarios changed")
    return "\n".join(out) + "\n" if out else "no criterion changed\n"


# --- files -----------------------------------------------------------------------------------


def read_spec(path: Path) -> Spec:
    """Read and parse one spec file; raise InvalidSpec (also when it cannot be read)."""
    return parse_spec(_read(path), path)


def lint_paths(paths: Sequence[Path]) -> list[SpecError]:
    """Every problem in the specs at ``paths``: files, and folders searched for ``*.md``.

    In folders, ``README.md`` files and hidden folders are skipped. Two specs with the same id
    are an error, because their criterion ids would clash.
    """
    errors: list[SpecError] = []
    owners: dict[str, str] = {}
    for file in spec_files(paths):
        if isinstance(file, SpecError):
            errors.append(file)
            continue
        try:
            spec = read_spec(file)
        except InvalidSpec as exc:
            errors.extend(exc.errors)
            continue
        if spec.id in owners:
            errors.append(SpecError(spec.path, 1, f"spec id {spec.id!r} is also the id of "
                                                  f"{owners[spec.id]}"))
        owners.setdefault(spec.id, spec.path)
    return errors


def _read(path: Path) -> str:
    where = path.as_posix()
    try:
        size = path.stat().st_size
        if size > MAX_SPEC_BYTES:
            raise InvalidSpec([SpecError(where, 0, f"larger than {MAX_SPEC_BYTES} bytes")])
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidSpec([SpecError(where, 0, "not UTF-8 text")]) from exc
    except OSError as exc:
        raise InvalidSpec([SpecError(where, 0, f"cannot read: {exc.strerror or exc}")]) from exc


def spec_files(paths: Sequence[Path]) -> list[Path | SpecError]:
    """The files to lint in the order given, each once; a missing path becomes its error."""
    found: list[Path | SpecError] = []
    seen: set[Path] = set()
    for path in paths:
        if path.is_dir():
            files = sorted(
                f for f in path.rglob("*.md")
                if f.is_file() and f.name.lower() != "readme.md"
                and not any(part.startswith(".") for part in f.relative_to(path).parts)
            )
        elif path.exists():
            files = [path]
        else:
            found.append(SpecError(path.as_posix(), 0, "no such file or folder"))
            continue
        for file in files:
            if file.resolve() not in seen:
                seen.add(file.resolve())
                found.append(file)
    return found


# --- constraints -----------------------------------------------------------------------------

# A measurable limit: a comparison and a number, with an optional unit ("p95 latency < 100 ms",
# "at most 2 MB", "handles 10,000 items"). Words before the number say which way it bounds.
_BOUND = (r"(?P<op><=|>=|<|>|≤|≥|=<|=>|under|below|within|at most|at least|no more than|"
          r"less than|fewer than|more than|over|handles|handle|supports|support)")
_NUMBER = r"(?P<number>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)"
_UNIT = r"(?P<unit>[A-Za-z%µ/]+(?:/[A-Za-z]+)?)?"
_CONSTRAINT = re.compile(rf"(?<![A-Za-z]){_BOUND}\s*{_NUMBER}\s*{_UNIT}", re.IGNORECASE)


@dataclass(frozen=True)
class Constraint:
    """A criterion that states a measurable limit; ``text`` is the limit as written."""

    criterion_id: str
    text: str
    number: float
    unit: str


def constraint_of(criterion: Criterion) -> Constraint | None:
    """The measurable limit a criterion states, or None. Pure; the first limit found wins.

    ``p95 latency < 100 ms`` and ``handles 10,000 items`` are constraints; ``greet("Ada")
    returns "Hello, Ada!"`` is not. Numbers inside backticks are code, not limits.
    """
    prose = re.sub(r"`[^`]*`", " ", criterion.text)
    found = _CONSTRAINT.search(prose)
    if found is None:
        return None
    number = float(found.group("number").replace(",", ""))
    unit = found.group("unit") or ""
    return Constraint(criterion.id, found.group(0).strip(), number, unit)


def constraints(spec: Spec) -> tuple[Constraint, ...]:
    """Every constraint among the spec's criteria, in the spec's order."""
    return tuple(c for c in (constraint_of(criterion) for criterion in spec.criteria) if c)


# --- writing the status back -----------------------------------------------------------------


def with_status(text: str, status: str) -> str:
    """The spec's text with its front matter ``status`` set to ``status``. Pure.

    Only that one line changes (or is added; a spec without front matter gets one holding
    just the status), so the pull request's diff of the spec is one line people can read.
    Raises ValueError for a status outside :data:`STATUSES`.
    """
    if status not in STATUSES:
        raise ValueError(f"status {status!r} is not one of {', '.join(STATUSES)}")
    newline = "\r\n" if "\r\n" in text else "\n"
    bom = "\ufeff" if text.startswith("\ufeff") else ""
    lines = text.removeprefix(bom).split(newline)
    if not lines or lines[0].rstrip() != "---":
        return f"{bom}---{newline}status: {status}{newline}---{newline}" + text.removeprefix(bom)
    end = next((i for i in range(1, len(lines)) if lines[i].rstrip() in ("---", "...")), None)
    if end is None:
        raise ValueError("front matter opened with '---' is never closed")
    for index in range(1, end):
        if re.match(r"^status[ \t]*:", lines[index]):
            lines[index] = f"status: {status}"
            break
    else:
        lines.insert(end, f"status: {status}")
    return bom + newline.join(lines)
