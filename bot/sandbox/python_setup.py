"""How a Python repository is made testable the way its own CI does it (pure).

The setup script installs, as the sandbox user into ``$PYTHONUSERBASE`` (under ``/deps``):

1. the project itself, when it is a packaged project (``[build-system]`` in
   ``pyproject.toml``, or a ``setup.py``): editable with its test extras, so that the tests
   import the code of the repository as it is changed; when the build backend cannot make an
   editable install, a build of the project instead (the test command then puts ``src/``
   first on the path, so the changed code still wins);
2. each test requirements file (``requirements*.txt`` at the root, ``requirements/*.txt``);
3. the test requirements named elsewhere: PEP 735 dependency groups, ``tox.ini``'s
   ``[testenv] deps``, ``noxfile.py``'s ``session.install(...)`` of a test session, Poetry
   and PDM development groups; and, for a project that is not packaged, its declared
   dependencies.

Versions taken from git metadata (setuptools-scm, hatch-vcs, pdm's scm source,
poetry-dynamic-versioning) cannot be read in the sandbox, which holds no ``.git``: the
install gets the version the trusted side read from the repository's tags through each
tool's documented pretend-version variable.

Each step echoes a ``forgebot: step N/M: ...`` line first, so a failure names its step.
Everything here reads text and returns values; ``read_marker_files`` does the reading.
"""

from __future__ import annotations

import ast
import re
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bot.sandbox.manifest_text import as_list, read_ini, read_python, read_toml, strings, table

MAX_DEPENDENCIES = 500
# Extras and groups that hold what the tests need; "dev" only when none of these exists,
# since a dev extra often carries linters and documentation tools the tests do not need.
TEST_NAMES = ("test", "tests", "testing")
DEV_NAMES = ("dev", "develop", "development")
STEP_PREFIX = "forgebot: step"
_PIP = "python3 -m pip install --user --no-warn-script-location --progress-bar off"
_PRETEND_VARIABLES = (
    "SETUPTOOLS_SCM_PRETEND_VERSION",  # setuptools-scm, and hatch-vcs through it
    "PDM_BUILD_SCM_VERSION",  # pdm-backend's scm version source
    "POETRY_DYNAMIC_VERSIONING_BYPASS",  # poetry-dynamic-versioning
)
_PEP440 = re.compile(r"^\d+(\.\d+)*((a|b|rc)\d+)?(\.post\d+)?(\.dev\d+)?$")
_REQUIREMENTS_FILE = re.compile(
    r"^(requirements[\w.-]*\.txt|[\w.-]*requirements\.txt|requirements/[\w.-]+\.txt)$"
)
_TESTISH = re.compile(r"test|dev|ci", re.IGNORECASE)


@dataclass(frozen=True)
class PythonSetup:
    """The setup script and why each part was chosen (for the status comment)."""

    script: str
    reasons: tuple[str, ...]


def pretend_version(tag: str | None, files: Mapping[str, str] | None = None) -> str:
    """The version a build backend that reads git would give: the repository's latest tag
    (``v1.2.3`` gives ``1.2.3``), else the ``Version:`` of a ``PKG-INFO`` (an unpacked
    release), else ``0.0.0``. Anything that is not a PEP 440 version is passed over: a
    version too low for the project's own dependants makes pip replace the project."""
    candidates = [tag or ""]
    pkg_info = (files or {}).get("PKG-INFO", "")
    candidates += re.findall(r"^Version:\s*(\S+)\s*$", pkg_info, re.MULTILINE)[:1]
    for candidate in candidates:
        text = candidate.strip().removeprefix("v").removeprefix("V")
        if _PEP440.match(text):
            return text
    return "0.0.0"


def python_setup(files: Mapping[str, str], version: str = "0.0.0") -> PythonSetup | None:
    """The setup of a Python repository from its marker files (name -> text), or None when
    nothing needs installing. ``version`` is used where the version comes from git."""
    pyproject = read_toml(files.get("pyproject.toml"))
    steps: list[tuple[str, str]] = []  # (what, shell command)
    reasons: list[str] = []
    packaged = "build-system" in pyproject or "setup.py" in files
    if packaged:
        extras = _pick(_extras(pyproject, files))
        target = "." + (f"[{','.join(extras)}]" if extras else "")
        backend = _backend(pyproject, files)
        with_extras = f" with extras {', '.join(extras)}" if extras else ""
        steps.append((f"install the project ({backend}){with_extras}", _project_install(
            target, version)))
        reasons.append(f"installs the project itself, editable ({backend}){with_extras}")
    for path in _requirements_files(files):
        steps.append((f"install {path}", f"{_PIP} -r {shlex.quote(path)}"))
        reasons.append(f"test dependencies from {path}")
    named, sources = _named_requirements(pyproject, files, packaged)
    if named:
        quoted = " ".join(shlex.quote(dep) for dep in named)
        steps.append((f"install {len(named)} test dependencies", f"{_PIP} -- {quoted}"))
        reasons.append(f"{len(named)} test dependencies from {', '.join(sources)}")
    if not steps:
        return None
    return PythonSetup(_script(steps), tuple(reasons))


def _project_install(target: str, version: str) -> str:
    env = " ".join(f"{name}={shlex.quote(version)}" for name in _PRETEND_VARIABLES[:2])
    env += f" {_PRETEND_VARIABLES[2]}=1"
    quoted = shlex.quote(target)
    return (
        f"env {env} {_PIP} -e {quoted} || {{ echo 'forgebot: the editable install failed;"
        f" installing a build of the project instead' >&2; env {env} {_PIP} {quoted}; }}"
    )


# Files an install writes into the repository (a version file from hatch-vcs or
# setuptools-scm, an extension built in place) would be lost with the workspace: they are
# kept under /deps and laid back (never over a file of the change) by the test command.
OVERLAY = "$FORGEBOT_DEPS/overlay"
_MARK = "/tmp/forgebot-setup-started"  # noqa: S108 - inside the sandbox
_KEEP_GENERATED = (
    f"find . -type f -newer {_MARK} ! -path '*/__pycache__/*' ! -path './build/*'"
    f" ! -path './.git/*' -exec cp --parents -t \"{OVERLAY}\" {{}} +"
)
RESTORE_GENERATED = f'[ ! -d "{OVERLAY}" ] || cp -rn "{OVERLAY}/." . 2>/dev/null || true'


def _script(steps: Sequence[tuple[str, str]]) -> str:
    lines = ["set -e", f"touch {_MARK}", f'mkdir -p "{OVERLAY}"']
    for number, (what, command) in enumerate(steps, start=1):
        lines.append(f"echo {shlex.quote(f'{STEP_PREFIX} {number}/{len(steps)}: {what}')}")
        lines.append(command)
    lines.append(_KEEP_GENERATED)
    return "\n".join(lines)


# where the tests' requirements are written down -------------------------------------------


def _pick(names: Iterable[str]) -> list[str]:
    found = list(dict.fromkeys(names))
    tests = [name for name in found if name.lower() in TEST_NAMES]
    return tests or [name for name in found if name.lower() in DEV_NAMES]


def _extras(pyproject: Mapping[str, Any], files: Mapping[str, str]) -> list[str]:
    names: list[str] = []
    project = pyproject.get("project")
    if isinstance(project, dict) and isinstance(project.get("optional-dependencies"), dict):
        names += list(project["optional-dependencies"])
    poetry = table(pyproject, "tool", "poetry")
    if isinstance(poetry.get("extras"), dict):
        names += list(poetry["extras"])
    setup_cfg = read_ini(files.get("setup.cfg"))
    if setup_cfg is not None and setup_cfg.has_section("options.extras_require"):
        names += setup_cfg.options("options.extras_require")
    names += _setup_py_extras(files.get("setup.py"))
    names += tox_value(files.get("tox.ini"), "extras")
    return [name for name in names if re.match(r"^[A-Za-z0-9][\w.-]*$", name)]


def _named_requirements(
    pyproject: Mapping[str, Any], files: Mapping[str, str], packaged: bool
) -> tuple[list[str], list[str]]:
    found: list[tuple[str, list[str]]] = []
    if not packaged:  # a packaged project's own dependencies come with its install
        project = pyproject.get("project")
        if isinstance(project, dict):
            extras = project.get("optional-dependencies")
            extras = extras if isinstance(extras, dict) else {}
            deps = strings(project.get("dependencies"))
            deps += [dep for name in _pick(extras) for dep in strings(extras.get(name))]
            found.append(("pyproject.toml", deps))
        setup_cfg = read_ini(files.get("setup.cfg"))
        if setup_cfg is not None and setup_cfg.has_option("options", "install_requires"):
            found.append(("setup.cfg", setup_cfg.get("options", "install_requires").splitlines()))
    found.append(("dependency groups", _dependency_groups(pyproject)))
    found.append(("Poetry groups", _poetry_groups(pyproject)))
    found.append(("PDM dev-dependencies", _pdm_groups(pyproject)))
    found.append(("tox.ini", [d for d in tox_value(files.get("tox.ini"), "deps")
                              if not d.startswith("-")]))
    found.append(("noxfile.py", _nox_installs(files.get("noxfile.py"))))
    sources = [source for source, deps in found if clean_requirements(deps)]
    return clean_requirements([dep for _, deps in found for dep in deps]), sources


def _dependency_groups(pyproject: Mapping[str, Any]) -> list[str]:
    groups = pyproject.get("dependency-groups")
    if not isinstance(groups, dict):
        return []
    picked = _pick(groups)
    deps: list[str] = []
    for name in picked:
        deps += _group(groups, name, seen=set())
    return deps


def _group(groups: Mapping[str, Any], name: str, seen: set[str]) -> list[str]:
    """One PEP 735 group with its ``{include-group = ...}`` items resolved (cycles cut)."""
    if name in seen:
        return []
    seen.add(name)
    deps: list[str] = []
    for item in as_list(groups.get(name)):
        if isinstance(item, str):
            deps.append(item)
        elif isinstance(item, dict) and isinstance(item.get("include-group"), str):
            deps += _group(groups, item["include-group"], seen)
    return deps


def _poetry_groups(pyproject: Mapping[str, Any]) -> list[str]:
    poetry = table(pyproject, "tool", "poetry")
    tables: list[object] = [poetry.get("dev-dependencies")]
    groups = poetry.get("group")
    if isinstance(groups, dict):
        tables += [table(groups, name, "dependencies") for name in _pick(groups)]
    deps: list[str] = []
    for section in tables:
        if isinstance(section, dict):
            deps += [poetry_requirement(name, spec) for name, spec in section.items()
                     if name.lower() != "python"]
    return deps


def poetry_requirement(name: str, spec: object) -> str:
    """A Poetry constraint as a PEP 508 requirement: ``^1.2`` and ``~1.2`` keep their lower
    bound only (enough for tests; pip resolves the rest)."""
    version = spec.get("version") if isinstance(spec, dict) else spec
    if not isinstance(version, str) or version.strip() in ("", "*"):
        return name
    text = version.strip()
    if text[0] in "^~" and not text.startswith("~="):
        return f"{name}>={text.lstrip('^~').strip()}"
    if text[0].isdigit():
        return f"{name}=={text}"
    return f"{name}{text}"


def _pdm_groups(pyproject: Mapping[str, Any]) -> list[str]:
    groups = table(pyproject, "tool", "pdm").get("dev-dependencies")
    if not isinstance(groups, dict):
        return []
    return [dep for name in _pick(groups) for dep in strings(groups.get(name))]


def _requirements_files(files: Mapping[str, str]) -> list[str]:
    """The requirements files the tests need: those whose name says test (or dev or ci, when
    none says test), and the plain ``requirements.txt``."""
    paths = sorted(name for name in files if _REQUIREMENTS_FILE.match(name))
    tests = [p for p in paths if re.search("test", p, re.IGNORECASE)]
    extra = tests or [p for p in paths if _TESTISH.search(p)]
    base = [p for p in paths if p in ("requirements.txt", "requirements/base.txt")]
    return list(dict.fromkeys([*base, *extra]))


def tox_value(text: str | None, key: str) -> list[str]:
    """The lines of ``[testenv] key``, with ``{toxinidir}/`` dropped; lines with any other
    substitution are left out (they cannot be read without tox)."""
    parser = read_ini(text)
    if parser is None or not parser.has_option("testenv", key):
        return []
    lines: list[str] = []
    for raw in parser.get("testenv", key).splitlines():
        line = raw.split("#", 1)[0].strip().replace("{toxinidir}/", "")
        if line.startswith("-r"):
            continue  # a requirements file: installed on its own above when it is a test one
        if re.match(r"^[\w{},!.-]+:\s", line):
            continue  # "py38: mock": only for some environments
        if line and "{" not in line:
            lines += [part.strip() for part in line.split(",")] if key == "extras" else [line]
    return lines


def _nox_installs(text: str | None) -> list[str]:
    """String arguments of ``session.install(...)`` inside test sessions of a noxfile."""
    tree = read_python(text)
    if tree is None:
        return []
    deps: list[str] = []
    for function in ast.walk(tree):
        if not isinstance(function, ast.FunctionDef) or "test" not in function.name.lower():
            continue
        for call in ast.walk(function):
            if (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
                    and call.func.attr == "install"):
                deps += [arg.value for arg in call.args
                         if isinstance(arg, ast.Constant) and isinstance(arg.value, str)
                         and not arg.value.startswith((".", "-"))]
    return deps


def _setup_py_extras(text: str | None) -> list[str]:
    """The keys of a literal ``extras_require={...}`` passed to ``setup()``."""
    tree = read_python(text)
    if tree is None:
        return []
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg == "extras_require" and isinstance(
            node.value, ast.Dict
        ):
            return [key.value for key in node.value.keys
                    if isinstance(key, ast.Constant) and isinstance(key.value, str)]
    return []


def _backend(pyproject: Mapping[str, Any], files: Mapping[str, str]) -> str:
    backend = table(pyproject, "build-system").get("build-backend")
    if isinstance(backend, str) and backend:
        return backend.split(".", 1)[0].split(":", 1)[0]
    return "setuptools" if "setup.py" in files or "build-system" in pyproject else "unknown"


def clean_requirements(deps: Iterable[object]) -> list[str]:
    """Requirement strings fit for pip's argv: stripped, no options, no duplicates, bounded."""
    seen: dict[str, None] = {}
    for dep in deps:
        if not isinstance(dep, str):
            continue
        text = dep.split(" #", 1)[0].strip()
        # A leading "-" would be read as an option (--index-url ...): not a requirement.
        if text and not text.startswith(("-", "#")) and len(text) <= 300 and "\x00" not in text:
            seen.setdefault(text, None)
    return list(seen)[:MAX_DEPENDENCIES]
