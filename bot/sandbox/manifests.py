"""What a repository's manifests and lockfiles declare, and what a change does to that (pure).

``declared(files)`` reads the dependencies a repository names (``name -> version spec``) from
the files ``read_marker_files`` returns; ``dependency_changes(old, new)`` lists what a change
adds, removes or changes, one line each, for the pull request and the policy
(``checks.new_dependencies``). Nothing here resolves or installs anything.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from configparser import ConfigParser
from dataclasses import dataclass

from bot.sandbox.manifest_text import read_ini, read_toml, strings, table
from bot.sandbox.python_setup import poetry_requirement, tox_value

MANIFEST_NAMES = frozenset({
    "pyproject.toml", "setup.cfg", "setup.py", "tox.ini", "noxfile.py",
    "package.json", "package-lock.json", "npm-shrinkwrap.json", "yarn.lock", "pnpm-lock.yaml",
    "go.mod", "go.sum",
})
_REQUIREMENTS = re.compile(r"^(requirements[\w.-]*\.txt|[\w.-]*requirements\.txt|"
                           r"requirements/[\w.-]+\.txt)$")
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?\s*(.*)$")
MAX_LINES = 50


def is_manifest(path: str) -> bool:
    """Whether a changed file can change what the setup installs."""
    return path in MANIFEST_NAMES or _REQUIREMENTS.match(path) is not None


@dataclass(frozen=True)
class DependencyChange:
    """One dependency a change adds (``old`` None), removes (``new`` None) or changes."""

    name: str
    old: str | None
    new: str | None

    def __str__(self) -> str:
        if self.old is None:
            return f"added `{self.name}` {self.new or '(any version)'}".rstrip()
        if self.new is None:
            return f"removed `{self.name}` {self.old}".rstrip()
        return f"changed `{self.name}` {self.old or '(any)'} → {self.new or '(any)'}"


def dependency_changes(old: Mapping[str, str], new: Mapping[str, str]) -> list[DependencyChange]:
    """What differs between two ``declared`` results, sorted by name."""
    found = []
    for name in sorted(set(old) | set(new)):
        before, after = old.get(name), new.get(name)
        if before != after:
            found.append(DependencyChange(name, before, after))
    return found


def declared(files: Mapping[str, str]) -> dict[str, str]:
    """``name -> spec`` of everything the files declare, in every section (a test extra as
    much as a runtime dependency); Python names normalised as PyPI does (lower-case, runs of
    ``-_.`` as ``-``). A name declared twice keeps its specs joined with ``; ``."""
    specs: dict[str, list[str]] = {}
    for name, spec in (*_python(files), *_node(files), *_go(files)):
        if spec not in specs.setdefault(name, []):
            specs[name].append(spec)
    return {name: "; ".join(s for s in values if s) for name, values in specs.items()}


def _python(files: Mapping[str, str]) -> list[tuple[str, str]]:
    pyproject = read_toml(files.get("pyproject.toml"))
    lines: list[str] = []
    project = table(pyproject, "project")
    lines += strings(project.get("dependencies"))
    for group in table(pyproject, "project", "optional-dependencies").values():
        lines += strings(group)
    for group in table(pyproject, "dependency-groups").values():
        lines += strings(group)
    lines += _poetry(pyproject)
    for group in table(pyproject, "tool", "pdm", "dev-dependencies").values():
        lines += strings(group)
    setup_cfg = read_ini(files.get("setup.cfg"))
    if setup_cfg is not None:
        for section, option in _cfg_options(setup_cfg):
            lines += setup_cfg.get(section, option).splitlines()
    lines += [d for d in tox_value(files.get("tox.ini"), "deps") if not d.startswith("-")]
    for path, text in files.items():
        if _REQUIREMENTS.match(path):
            lines += text.splitlines()
    return [parsed for line in lines if (parsed := _requirement(line)) is not None]


def _poetry(pyproject: Mapping[str, object]) -> list[str]:
    poetry = table(pyproject, "tool", "poetry")
    tables: list[object] = [poetry.get("dependencies"), poetry.get("dev-dependencies")]
    groups = poetry.get("group")
    if isinstance(groups, dict):
        tables += [table(groups, name, "dependencies") for name in groups]
    return [poetry_requirement(name, spec) for table in tables if isinstance(table, dict)
            for name, spec in table.items() if name.lower() != "python"]


def _cfg_options(parser: ConfigParser) -> Iterable[tuple[str, str]]:
    if parser.has_option("options", "install_requires"):
        yield "options", "install_requires"
    if parser.has_section("options.extras_require"):
        for option in parser.options("options.extras_require"):
            yield "options.extras_require", option


def _requirement(line: str) -> tuple[str, str] | None:
    text = line.split("#", 1)[0].strip()
    if not text or text.startswith("-"):
        return None
    match = _NAME.match(text)
    if match is None:
        return None
    return re.sub(r"[-_.]+", "-", match.group(1).lower()), " ".join(match.group(3).split())[:200]


def _node(files: Mapping[str, str]) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    package = _json(files.get("package.json"))
    for key in ("dependencies", "devDependencies", "optionalDependencies", "peerDependencies"):
        section = package.get(key)
        if isinstance(section, dict):
            found += [(n, str(v)[:200]) for n, v in section.items() if isinstance(n, str)]
    lock = _json(files.get("package-lock.json") or files.get("npm-shrinkwrap.json"))
    packages = lock.get("packages")
    if isinstance(packages, dict):
        for path, entry in packages.items():
            # Top-level installs only: "node_modules/x", not "node_modules/x/node_modules/y".
            if (isinstance(path, str) and path.startswith("node_modules/")
                    and "/node_modules/" not in path and isinstance(entry, dict)):
                found.append((path.removeprefix("node_modules/"), f"={entry.get('version')}"))
    return found


def _go(files: Mapping[str, str]) -> list[tuple[str, str]]:
    text = files.get("go.mod")
    if text is None:
        return []
    found, block = [], False
    for raw in text.splitlines():
        line = raw.split("//", 1)[0].strip()
        if line.startswith("require ("):
            block = True
            continue
        if block and line == ")":
            block = False
            continue
        words = line.removeprefix("require ").split() if (
            block or line.startswith("require ")) else []
        if len(words) == 2:
            found.append((words[0], words[1]))
    return found


def _json(text: str | None) -> dict[str, object]:
    if text is None:
        return {}
    try:
        loaded = json.loads(text)
    except ValueError:
        return {}
    return loaded if isinstance(loaded, dict) else {}
