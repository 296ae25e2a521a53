"""Loading policy files, and tightening a bot-wide policy with a repository's override.

Every error is a :class:`~bot.errors.PolicyError` whose message names the file and the dotted
key, one line per problem: ``policies/default.yml: limits.max_files_chaged: unknown key (did
you mean max_files_changed?)``.

A repository's ``.forgebot.yml`` is written by whoever can push to the repository, so the
merge only ever tightens: smaller limits win, deny globs are added, allow globs may only
narrow, checks may only be switched on, forbidden patterns may only be added. Anything that
would loosen is dropped and reported back, so the job's comment can say what was ignored and
why.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from bot.errors import PolicyError
from bot.hostnames import REGISTRIES, REGISTRY_HOSTS, covers
from bot.policy.glob import glob_match, literal_prefix
from bot.policy.model import (
    CI,
    Checks,
    ForbiddenPattern,
    LargeChange,
    Lifecycle,
    Limits,
    Paths,
    Policy,
    Publish,
    Review,
    Sandbox,
    Specs,
    Trigger,
)

_Section = TypeVar("_Section", Lifecycle, Review)

# Policy files are a few hundred bytes; a bound keeps a hostile .forgebot.yml cheap to refuse.
MAX_POLICY_BYTES = 64 * 1024


class _PolicyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses duplicate keys, keys that are not strings, and aliases.

    PyYAML keeps the last of two equal keys, so a second ``limits:`` block would silently
    replace the first; aliases let a small file expand into a huge value. Neither belongs in a
    policy file.
    """

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise yaml.composer.ComposerError(
                None, None, "aliases are not allowed in a policy file", event.start_mark
            )
        return super().compose_node(parent, index)

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, str):
                # YAML 1.1 reads an unquoted on/off/yes/no as a boolean, also as a key.
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} is not a string; quote it", key_node.start_mark
                )
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


@dataclass(frozen=True)
class Ignored:
    """One key of a repository override that was dropped because it would loosen the policy."""

    key: str
    reason: str

    def __str__(self) -> str:
        return f"{self.key}: {self.reason}"


class MergeResult(NamedTuple):
    """The effective policy for a repository and the override keys that were ignored."""

    policy: Policy
    ignored: list[Ignored]


def load_policy_mapping(path: Path, *, empty_ok: bool = False) -> dict[str, Any]:
    """Read a YAML policy file into a plain mapping, refusing anything that is not one.

    ``empty_ok`` makes an empty file an empty mapping (a repository override with nothing in
    it); otherwise an empty file is an error. Raises ``PolicyError`` naming the file.
    """
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise PolicyError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    if len(raw) > MAX_POLICY_BYTES:
        raise PolicyError(f"{path}: larger than {MAX_POLICY_BYTES} bytes")
    try:
        data = yaml.load(raw.decode("utf-8"), Loader=_PolicyLoader)  # noqa: S506 - a SafeLoader
    except UnicodeDecodeError as exc:
        raise PolicyError(f"{path}: not UTF-8 text") from exc
    except yaml.YAMLError as exc:
        raise PolicyError(f"{path}: invalid YAML: {_describe_yaml_error(exc)}") from exc
    if data is None and empty_ok:
        return {}
    if not isinstance(data, dict):
        found = "an empty file" if data is None else _type_name(data)
        raise PolicyError(f"{path}: expected a mapping of policy keys, found {found}")
    return data


def load_policy(path: Path) -> Policy:
    """Load and validate one bot-wide policy file.

    Raises ``PolicyError`` on a missing or unreadable file, a YAML syntax error, a document
    that is not a mapping, an unknown key or a value of the wrong type or range; the message
    names the file and the dotted key of every problem.
    """
    return parse_policy(load_policy_mapping(path), source=str(path))


def parse_policy(data: Mapping[str, Any], *, source: str) -> Policy:
    """Validate a mapping as a policy; ``source`` names it in error messages."""
    try:
        return Policy.model_validate(dict(data))
    except ValidationError as exc:
        raise PolicyError(_format_validation_error(source, exc)) from exc


def merge_repo_policy(
    base: Policy, repo_override: Mapping[str, Any], *, source: str = ".forgebot.yml"
) -> MergeResult:
    """Tighten ``base`` with a repository's override; never loosen it.

    The override is validated like a policy file (a typo or a wrong type raises
    ``PolicyError`` naming ``source``). Then, key by key: a smaller limit wins; deny globs
    are the union of both; allow globs may only narrow (see :func:`_narrower_allow`); a check
    or ``publish.draft_when_failed`` may only be switched on; forbidden patterns are the
    bot-wide ones plus the repository's new names (a bot-wide name keeps its pattern);
    trigger labels may only be a subset of the bot-wide ones; the branch prefix may only
    extend the bot-wide one; a lifecycle or review switch may only be switched off.
    Everything that would loosen is left as in ``base`` and listed in ``ignored``.
    """
    merged = _deep_merge(base.model_dump(), repo_override)
    candidate = parse_policy(merged, source=source)
    ignored: list[Ignored] = []
    policy = Policy(
        trigger=_merge_trigger(base.trigger, candidate.trigger, ignored),
        paths=_merge_paths(base.paths, candidate.paths, ignored),
        limits=_merge_limits(base.limits, candidate.limits, ignored),
        checks=_merge_checks(base.checks, candidate.checks, ignored),
        publish=_merge_publish(base.publish, candidate.publish, ignored),
        sandbox=_merge_sandbox(base.sandbox, candidate.sandbox, ignored),
        lifecycle=_merge_off_only(base.lifecycle, candidate.lifecycle, "lifecycle", ignored),
        review=_merge_off_only(base.review, candidate.review, "review", ignored),
        plan_approval=_stricter_of(_APPROVAL_ORDER, base.plan_approval,
                                   candidate.plan_approval, "plan_approval", ignored),
        large_change=_merge_large_change(base.large_change, candidate.large_change, ignored),
        ci=_merge_ci(base.ci, candidate.ci, ignored),
        queue=base.queue,
        specs=_merge_specs(base.specs, candidate.specs, ignored),
        # The repository's own choice: an issue in its tracker, no power over its code.
        dashboard_issue=candidate.dashboard_issue,
    )
    return MergeResult(policy, ignored)


_APPROVAL_ORDER = ("never", "large", "always")  # later is stricter
_REPAIR_ORDER = ("fix", "comment", "off")  # later acts less on the repository's behalf


def _stricter_of(order: tuple[str, ...], have: Any, want: Any, name: str,
                 ignored: list[Ignored]) -> Any:
    if order.index(want) >= order.index(have):
        return want
    ignored.append(Ignored(name, f"{want} is looser than the bot-wide {have}"))
    return have


def _merge_large_change(base: LargeChange, wanted: LargeChange,
                        ignored: list[Ignored]) -> LargeChange:
    for name in ("files", "lines"):
        if getattr(wanted, name) > getattr(base, name):
            ignored.append(Ignored(f"large_change.{name}",
                                   f"{getattr(wanted, name)} is above the bot-wide "
                                   f"{getattr(base, name)}"))
    sensitive = base.sensitive + tuple(g for g in wanted.sensitive if g not in base.sensitive)
    return LargeChange(files=min(base.files, wanted.files), lines=min(base.lines, wanted.lines),
                       sensitive=sensitive)


def _merge_ci(base: CI, wanted: CI, ignored: list[Ignored]) -> CI:
    if wanted.max_repairs > base.max_repairs:
        ignored.append(Ignored("ci.max_repairs",
                               f"{wanted.max_repairs} is above the bot-wide {base.max_repairs}"))
    if base.ready_when_green and not wanted.ready_when_green:
        ignored.append(Ignored("ci.ready_when_green", "the bot-wide policy waits for green"))
    return CI(repair=_stricter_of(_REPAIR_ORDER, base.repair, wanted.repair, "ci.repair",
                                  ignored),
              max_repairs=min(base.max_repairs, wanted.max_repairs),
              ready_when_green=base.ready_when_green or wanted.ready_when_green)


def ci_for_pull(base: CI, recorded: object) -> CI:
    """The ``ci`` section a bot pull request follows: the one its job published under (the
    repository's merged with the bot-wide, recorded with the pull request), never looser than
    the bot-wide ``base`` now. ``base`` when nothing usable was recorded."""
    if not isinstance(recorded, dict):
        return base
    try:
        wanted = CI.model_validate(recorded)
    except ValidationError:
        return base
    return _merge_ci(base, wanted, [])


def _merge_specs(base: Specs, wanted: Specs, ignored: list[Ignored]) -> Specs:
    if wanted.enabled and not base.enabled:
        ignored.append(Ignored("specs.enabled", "the bot-wide policy turns specs off"))
    # Which files are specs is the repository's own layout.
    return Specs(enabled=base.enabled and wanted.enabled, globs=wanted.globs)


def _merge_off_only(base: _Section, wanted: _Section, section: str,
                    ignored: list[Ignored]) -> _Section:
    """A section of switches that act on the repository's behalf: the repository may turn
    one off, never on."""
    values: dict[str, bool] = {}
    for name in type(base).model_fields:
        have, want = getattr(base, name), getattr(wanted, name)
        if want and not have:
            ignored.append(Ignored(f"{section}.{name}", "the bot-wide policy turns this off"))
        values[name] = have and want
    return type(base)(**values)


def _merge_trigger(base: Trigger, wanted: Trigger, ignored: list[Ignored]) -> Trigger:
    extra = [label for label in wanted.labels if label not in base.labels]
    if extra:
        ignored.append(
            Ignored("trigger.labels", f"{', '.join(extra)} not among the bot-wide labels")
        )
    order = ("read", "triage", "write", "maintain", "admin")
    minimum = base.min_permission
    if order.index(wanted.min_permission) > order.index(minimum):
        minimum = wanted.min_permission
    elif wanted.min_permission != minimum:
        ignored.append(
            Ignored(
                "trigger.min_permission", f"{wanted.min_permission} is below the bot-wide {minimum}"
            )
        )
    kept = tuple(label for label in wanted.labels if label in base.labels)
    if extra and not kept:
        # The repository asked for other labels only; ignoring them must not silently turn
        # the bot off for it, which nobody would notice, so the bot-wide labels stay.
        kept = base.labels
    return Trigger(labels=kept, min_permission=minimum)


def _merge_paths(base: Paths, wanted: Paths, ignored: list[Ignored]) -> Paths:
    deny = base.deny + tuple(glob for glob in wanted.deny if glob not in base.deny)
    allow = base.allow
    if wanted.allow != base.allow:
        allow, loosening = _narrower_allow(base.allow, wanted.allow)
        if loosening:
            ignored.append(
                Ignored("paths.allow", f"{', '.join(loosening)} not within the bot-wide allow")
            )
    return Paths(deny=deny, allow=allow)


def _narrower_allow(
    base: tuple[str, ...], wanted: tuple[str, ...]
) -> tuple[tuple[str, ...], list[str]]:
    """The part of ``wanted`` provably within ``base``, and the globs that are not.

    An empty allow list allows everything, so anything narrows it; an empty ``wanted`` would
    widen a non-empty ``base`` back to everything. Otherwise a wanted glob is kept only when
    it is provably covered by a bot-wide glob (equal, a literal path the glob matches, or
    below a ``dir/**`` glob); glob inclusion in general is not decidable cheaply, so anything
    else is dropped. If nothing is left, the bot-wide list stays.
    """
    if not base:
        return wanted, []
    if not wanted:
        return base, ["[] (allow everything)"]
    kept = tuple(glob for glob in wanted if _covered_by(glob, base))
    loosening = [glob for glob in wanted if glob not in kept]
    return (kept or base), loosening


def _covered_by(glob: str, base: tuple[str, ...]) -> bool:
    if glob in base:
        return True
    if not any(char in glob for char in "*?["):
        return any(glob_match(pattern, glob) for pattern in base)
    prefix = literal_prefix(glob)
    return any(pattern == "**" or _is_under(prefix, pattern) for pattern in base)


def _is_under(prefix: str, pattern: str) -> bool:
    """Whether every path starting with ``prefix`` matches ``pattern`` of the form ``dir/**``."""
    if not pattern.endswith("/**"):
        return False
    directory = pattern[:-2]  # keeps the slash: "src/"
    return not any(char in directory for char in "*?[") and prefix.startswith(directory)


def _merge_limits(base: Limits, wanted: Limits, ignored: list[Ignored]) -> Limits:
    values: dict[str, int] = {}
    for name in Limits.model_fields:
        have, want = getattr(base, name), getattr(wanted, name)
        if want > have:
            ignored.append(Ignored(f"limits.{name}", f"{want} is above the bot-wide {have}"))
        values[name] = min(have, want)
    return Limits(**values)


def _merge_sandbox(base: Sandbox, wanted: Sandbox, ignored: list[Ignored]) -> Sandbox:
    if wanted.setup_network and not base.setup_network:
        ignored.append(Ignored("sandbox.setup_network", "the bot-wide policy allows no network"))
    hosts: list[str] = []
    for item in wanted.setup_egress:
        if _egress_allowed(item, base.setup_egress):
            hosts.append(item)
        else:
            ignored.append(Ignored(f"sandbox.setup_egress.{item}",
                                   "the bot-wide allow-list does not include it"))
    return Sandbox(setup_network=base.setup_network and wanted.setup_network,
                   setup_egress=tuple(hosts))


def _egress_allowed(item: str, base: tuple[str, ...]) -> bool:
    """Whether the repository's allow-list item narrows the bot-wide list (never widens): it
    is on that list, or every host it names is covered by an item of it."""
    if item in base:
        return True
    if item == REGISTRIES:
        return False
    known = [h for h in base if h != REGISTRIES]
    if REGISTRIES in base:
        known += [host for hosts in REGISTRY_HOSTS.values() for host in hosts]
    if item.startswith("."):  # a whole domain: only a bot-wide domain around it covers it
        return any(d.startswith(".") and covers(d, item[1:]) for d in known)
    return any(covers(allowed, item) for allowed in known)


def _merge_checks(base: Checks, wanted: Checks, ignored: list[Ignored]) -> Checks:
    values: dict[str, bool] = {}
    for name in _SWITCHES:
        have, want = getattr(base, name), getattr(wanted, name)
        if have and not want:
            ignored.append(Ignored(f"checks.{name}", "the bot-wide policy requires this check"))
        values[name] = have or want
    patterns = _merge_patterns(base.forbidden_patterns, wanted.forbidden_patterns, ignored)
    strictness = ("allow", "draft", "block")
    dependencies = base.new_dependencies
    if strictness.index(wanted.new_dependencies) < strictness.index(dependencies):
        ignored.append(Ignored("checks.new_dependencies",
                               f"the bot-wide policy says {dependencies}"))
    else:
        dependencies = wanted.new_dependencies
    return Checks(**values, forbidden_patterns=patterns, new_dependencies=dependencies)


_SWITCHES = tuple(name for name, f in Checks.model_fields.items() if f.annotation is bool)


def _merge_patterns(
    base: tuple[ForbiddenPattern, ...],
    wanted: tuple[ForbiddenPattern, ...],
    ignored: list[Ignored],
) -> tuple[ForbiddenPattern, ...]:
    """The bot-wide patterns, all of them, then the repository's patterns with new names.

    A repository that lists only its own patterns has not asked to drop the bot-wide ones (the
    YAML list simply replaced the default in the merge), so leaving one out is not reported;
    redefining a bot-wide name would weaken it, so that is ignored and reported.
    """
    by_name = {item.name: item for item in base}
    added: list[ForbiddenPattern] = []
    for item in wanted:
        known = by_name.get(item.name)
        if known is None:
            by_name[item.name] = item
            added.append(item)
        elif known.pattern != item.pattern:
            ignored.append(
                Ignored(
                    f"checks.forbidden_patterns.{item.name}",
                    "a bot-wide pattern cannot be replaced",
                )
            )
    return base + tuple(added)


def _merge_publish(base: Publish, wanted: Publish, ignored: list[Ignored]) -> Publish:
    draft = base.draft_when_failed or wanted.draft_when_failed
    if base.draft_when_failed and not wanted.draft_when_failed:
        ignored.append(
            Ignored("publish.draft_when_failed", "the bot-wide policy requires draft pulls")
        )
    prefix = base.branch_prefix
    if wanted.branch_prefix.startswith(base.branch_prefix):
        prefix = wanted.branch_prefix  # a longer prefix is a narrower set of branches
    else:
        ignored.append(Ignored("publish.branch_prefix", f"must start with {base.branch_prefix!r}"))
    return Publish(draft_when_failed=draft, branch_prefix=prefix)


def _deep_merge(base: Mapping[str, Any], override: Mapping[Any, Any]) -> dict[Any, Any]:
    """Override's values win; mappings present on both sides merge key by key."""
    merged: dict[Any, Any] = dict(base)
    for key, value in override.items():
        below = merged.get(key)
        if isinstance(below, Mapping) and isinstance(value, Mapping):
            merged[key] = _deep_merge(below, value)
        else:
            merged[key] = value
    return merged


# --- error messages -----------------------------------------------------------------------

_EXPECTED = {
    "int_type": "expected an integer",
    "bool_type": "expected true or false",
    "string_type": "expected a string",
    "tuple_type": "expected a list",
    "list_type": "expected a list",
    "model_type": "expected a mapping",
    "dict_type": "expected a mapping",
}


def _format_validation_error(source: str, exc: ValidationError) -> str:
    return "\n".join(
        f"{source}: {_dotted(error['loc'])}: {_describe(error)}" for error in exc.errors()
    )


def _dotted(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _describe(error: ErrorDetails) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        return "unknown key" + _suggestion(error["loc"])
    if kind in _EXPECTED:
        return f"{_EXPECTED[kind]}, found {_type_name(error['input'])}"
    bound = (error.get("ctx") or {}).get("ge" if kind == "greater_than_equal" else "le")
    if kind in ("greater_than_equal", "less_than_equal") and bound is not None:
        side = "at least" if kind == "greater_than_equal" else "at most"
        return f"must be {side} {bound}, found {error['input']!r}"
    message = error["msg"]
    return message.removeprefix("Value error, ")


def _suggestion(loc: tuple[int | str, ...]) -> str:
    known = _known_keys(loc[:-1])
    close = difflib.get_close_matches(str(loc[-1]), known, n=1)
    return f" (did you mean {close[0]}?)" if close else ""


def _known_keys(parent: tuple[int | str, ...]) -> list[str]:
    model: type[BaseModel] = Policy
    for part in parent:
        field = model.model_fields.get(str(part))
        annotation = field.annotation if field else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        model = annotation
    return list(model.model_fields)


def _type_name(value: object) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}
    if value is None:
        return "null"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    return names.get(type(value), type(value).__name__)


def _describe_yaml_error(exc: yaml.YAMLError) -> str:
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        return f"{where}{exc.problem or exc.context}"
    return str(exc)
