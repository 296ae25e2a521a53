"""Which runner image, setup command and test command a repository needs (pure).

Detection reads the marker files at the repository's root, given as a mapping of file name to
text (``read_marker_files`` is the one function here that touches the disk):

==========  =======================================================  ========================
toolchain   recognised by                                             tests run with
==========  =======================================================  ========================
python      pyproject.toml, setup.cfg, setup.py, pytest.ini,          pytest --junitxml
            tox.ini, requirements.txt
node        package.json with a ``test`` script                       npm test, through
                                                                      forgebot-junit (TAP,
                                                                      jest or jasmine JSON)
                                                                      or the runner's own
                                                                      JUnit
go          go.mod                                                    go test -json, through
                                                                      forgebot-junit
==========  =======================================================  ========================

Every test command writes its JUnit report to ``$FORGEBOT_JUNIT``. A setup command (install
dependencies) is proposed when the repository is a packaged Python project or declares
dependencies (``bot.sandbox.python_setup`` says how for Python); it installs them under
``$FORGEBOT_DEPS`` (``/deps``), outside the repository, so that a snapshot of the setup keeps
them while the repository is replaced.

A repository may override the choice in ``.forgebot.yml`` with the top-level keys ``image``,
``setup`` and ``test`` (``split_repo_config``). The image must be one the bot knows: the
allow-list passed to ``detect_toolchain``. When nothing fits, the result is a
``NoToolchain`` whose message says exactly what to put in ``.forgebot.yml``.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from bot.errors import PolicyError
from bot.sandbox.python_setup import RESTORE_GENERATED, python_setup

Command = tuple[str, ...]

PYTHON_MARKERS = ("pyproject.toml", "setup.cfg", "setup.py", "pytest.ini", "tox.ini",
                  "requirements.txt")
NODE_MARKERS = ("package.json", "package-lock.json", "npm-shrinkwrap.json")
GO_MARKERS = ("go.mod",)
# Read beside the markers: where test requirements and locked versions are written down.
# They decide the setup (and its snapshot's key) but do not name a toolchain by themselves.
MANIFEST_FILES = ("noxfile.py", "yarn.lock", "pnpm-lock.yaml", "go.sum", "vendor/modules.txt",
                  "PKG-INFO")
MARKER_FILES = (*PYTHON_MARKERS, *NODE_MARKERS, *GO_MARKERS, *MANIFEST_FILES)
# requirements-dev.txt, test-requirements.txt, requirements/test.txt, ...: read by pattern.
_REQUIREMENTS_GLOBS = ("requirements*.txt", "*requirements.txt", "requirements/*.txt")
MAX_REQUIREMENTS_FILES = 20
MAX_MARKER_BYTES = 512 * 1024  # a bigger marker file is read as absent
TOOLCHAINS = ("python", "node", "go")

# The keys of .forgebot.yml that belong here; the rest is policy.
OVERRIDE_KEYS = ("image", "setup", "test")
MAX_COMMAND_CHARS = 4096
MAX_COMMAND_ITEMS = 64

# npm init's placeholder test script: a package.json with it has no tests to run.
_NPM_PLACEHOLDER = re.compile(r'^\s*echo\s+\\?"Error: no test specified\\?"\s*&&\s*exit 1\s*$')


def _sh(script: str) -> Command:
    return ("sh", "-c", script)


# junit_logging=system-out: a passing test's printed lines reach the report too (pytest hides
# them in the terminal), so a spec's constraint figure printed by a passing test is read.
PYTEST: Command = _sh('exec python3 -m pytest -q -p no:cacheprovider -o junit_logging=system-out'
                      ' --junitxml="$FORGEBOT_JUNIT"')
# A packaged project's src/ goes first on the path: where the project could only be installed
# as a build (no editable install), the tests still import the code as the change left it.
PYTEST_SRC: Command = _sh(
    f"{RESTORE_GENERATED}; "
    '[ ! -d src ] || export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"; ' + PYTEST[2]
)
GO_TEST: Command = ("forgebot-junit", "--format", "go-json", "--name", "go test", "--",
                    "go", "test", "-json", "./...")
GO_SETUP: Command = ("go", "mod", "download")
# npm installs in the repository (so relative "file:" dependencies resolve), then the tree
# moves to $FORGEBOT_DEPS/node, which the node image links as /node_modules: a parent of the
# repository, where Node and npm look for packages. The repository itself is not kept.
# Workspace packages are linked into node_modules relatively (../packages/x): links that
# leave node_modules are made absolute (into /sandbox/repo, where the repository always is)
# before the move; those inside it (.bin/mocha -> ../mocha/bin/mocha) stay relative.
_NPM_SETUP = (
    'set -e; {install}; mkdir -p "$FORGEBOT_DEPS/node";'
    ' find node_modules -maxdepth 2 -type l | while read -r link; do'
    ' target="$(realpath -m "$link")"; case "$target" in "$PWD/node_modules/"*) ;;'
    ' *) ln -sfn "$target" "$link";; esac; done;'
    ' mv node_modules "$FORGEBOT_DEPS/node/node_modules"'
)
# The package manager a lockfile asks for; yarn and pnpm come from the npm registry (npx),
# pinned to a major version, through the same egress proxy.
_NODE_INSTALL = {
    "package-lock.json": "npm ci",
    "npm-shrinkwrap.json": "npm ci",
    "yarn.lock": "npx --yes yarn@1 install --frozen-lockfile --ignore-engines --non-interactive",
    "pnpm-lock.yaml": "npx --yes pnpm@8 install --frozen-lockfile --config.node-linker=hoisted",
}
_NPM_TEST_TAP = 'exec forgebot-junit --format tap --name "npm test" -- npm test'
_JASMINE_HELPER = """\
const fs = require("fs");
const report = { testResults: [] };
const suites = new Map();
jasmine.getEnv().addReporter({
  specDone(result) {
    const name = result.filename || "jasmine";
    if (!suites.has(name)) {
      suites.set(name, { name, assertionResults: [] });
      report.testResults.push(suites.get(name));
    }
    const status = { passed: "passed", failed: "failed" }[result.status] || "pending";
    const messages = (result.failedExpectations || []).map((e) => String(e.message));
    suites.get(name).assertionResults.push(
      { ancestorTitles: [], title: result.fullName, status, failureMessages: messages });
  },
  jasmineDone() {
    fs.writeFileSync("/tmp/forgebot-jasmine.json", JSON.stringify(report));
  },
});
"""
_NPM_TEST = {
    # jest writes its own JSON report; forgebot-junit turns it into JUnit.
    "jest": (
        'exec forgebot-junit --format jest-json --input /tmp/forgebot-jest.json --name "npm test"'
        " -- npm test -- --ci --json --outputFile=/tmp/forgebot-jest.json"
    ),
    # vitest and mocha write JUnit themselves; forgebot-junit only fills in when they do not.
    "vitest": (
        'exec forgebot-junit --name "npm test" -- npm test -- --reporter=default'
        ' --reporter=junit --outputFile.junit="$FORGEBOT_JUNIT"'
    ),
    "mocha": (
        'exec forgebot-junit --name "npm test" -- npm test -- --reporter=xunit'
        ' --reporter-option=output="$FORGEBOT_JUNIT"'
    ),
    # jasmine has no file reporter: a helper, written to /tmp by the command itself, adds one
    # that writes jest's JSON shape, which forgebot-junit already reads.
    "jasmine": (
        f"cat > /tmp/forgebot-jasmine.js <<'FORGEBOT'\n{_JASMINE_HELPER}FORGEBOT\n"
        'exec forgebot-junit --format jest-json --input /tmp/forgebot-jasmine.json --name'
        ' "npm test" -- npm test -- --helper=/tmp/forgebot-jasmine.js'
    ),
}


@dataclass(frozen=True)
class ToolchainOverride:
    """The ``image``, ``setup`` and ``test`` keys of a repository's ``.forgebot.yml``.

    None means not given (detect it). An empty ``setup`` means "no setup", on purpose.
    """

    image: str | None = None
    setup: Command | None = None
    test: Command | None = None


@dataclass(frozen=True)
class Toolchain:
    """What to run a repository's tests with. ``reasons`` say how each part was chosen."""

    name: str
    image: str
    setup: Command | None
    test: Command
    reasons: tuple[str, ...]


class NoToolchainReason(StrEnum):
    """Why no toolchain was chosen."""

    UNKNOWN = "unknown"  # nothing recognised
    AMBIGUOUS = "ambiguous"  # more than one toolchain could run the tests
    IMAGE_NOT_ALLOWED = "image_not_allowed"  # .forgebot.yml names an image the bot does not run


@dataclass(frozen=True)
class NoToolchain:
    """No toolchain: ``message`` is written for the repository's people, saying what to put
    in ``.forgebot.yml``."""

    reason: NoToolchainReason
    message: str


@dataclass(frozen=True)
class _Candidate:
    name: str
    test: Command | None  # None: recognised, but nothing says how to run its tests
    setup: Command | None
    reasons: tuple[str, ...]


# .forgebot.yml -------------------------------------------------------------------------


def split_repo_config(
    mapping: Mapping[str, Any] | None, source: str = ".forgebot.yml"
) -> tuple[ToolchainOverride, dict[str, Any]]:
    """Split a repository's parsed ``.forgebot.yml`` into the toolchain override and the rest
    (the policy override, for ``bot.policy.load.merge_repo_policy``).

    ``setup`` and ``test`` are a string (run with ``sh -c``) or a list of strings (argv);
    ``setup`` may be empty or null for "no setup". Raises ``PolicyError`` naming ``source``
    and the key when a value has the wrong shape. Whether the image is allowed is decided
    later, by ``detect_toolchain``.
    """
    if mapping is None:
        return ToolchainOverride(), {}
    if not isinstance(mapping, Mapping):
        raise PolicyError(f"{source}: the top level must be a mapping of keys to values")
    rest = {key: value for key, value in mapping.items() if key not in OVERRIDE_KEYS}
    override = ToolchainOverride(
        image=_image_value(mapping.get("image"), source) if "image" in mapping else None,
        setup=_command_value(mapping["setup"], source, "setup", allow_empty=True)
        if "setup" in mapping
        else None,
        test=_command_value(mapping["test"], source, "test", allow_empty=False)
        if "test" in mapping
        else None,
    )
    return override, rest


def _image_value(value: object, source: str) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > 255:
        raise PolicyError(f"{source}: image: must be the name of a runner image, e.g. node")
    if any(char.isspace() for char in value):
        raise PolicyError(f"{source}: image: must not contain spaces")
    return value


def _command_value(value: object, source: str, key: str, *, allow_empty: bool) -> Command:
    shape = f"{source}: {key}: must be a command (a string, or a list of strings)"
    if value is None or value in ("", []):
        if allow_empty:
            return ()
        raise PolicyError(f"{shape}, not empty")
    if isinstance(value, str):
        parts: Sequence[object] = [value]
        command: Command = _sh(value)
    elif isinstance(value, list) and len(value) <= MAX_COMMAND_ITEMS:
        parts = value
        command = tuple(str(item) for item in value)
    else:
        raise PolicyError(shape)
    for part in parts:
        if not isinstance(part, str) or "\x00" in part or len(part) > MAX_COMMAND_CHARS:
            raise PolicyError(f"{shape}; each at most {MAX_COMMAND_CHARS} characters")
    return command


# detection -----------------------------------------------------------------------------


def detect_toolchain(
    files: Mapping[str, str],
    override: ToolchainOverride,
    images: Mapping[str, str],
    version: str = "0.0.0",
) -> Toolchain | NoToolchain:
    """Choose the toolchain of a repository from its root ``files`` (name -> text, as read by
    ``read_marker_files``) and its ``override``.

    ``images`` is the allow-list of runner images, toolchain name -> image reference; an
    override may name either. Never raises: every way of not finding one is a NoToolchain.
    """
    allowed = {name: ref for name, ref in images.items() if name in TOOLCHAINS}
    detected = (_detect_python(files, version), _detect_node(files), _detect_go(files))
    candidates = [c for c in detected if c is not None]
    if override.image is not None:
        return _with_image(override.image, candidates, allowed, override)
    return _detected(candidates, allowed, override)


def _with_image(
    image: str,
    candidates: Sequence[_Candidate],
    allowed: Mapping[str, str],
    override: ToolchainOverride,
) -> Toolchain | NoToolchain:
    name = _allowed_toolchain(image, allowed)
    if name is None:
        return _not_allowed(image, allowed)
    found = next((c for c in candidates if c.name == name), None)
    chosen = found or _Candidate(name, _DEFAULT_TEST.get(name), None, ())
    reasons = (f"image {image!r} from .forgebot.yml", *chosen.reasons)
    return _finish(chosen, allowed, override, reasons)


def _detected(
    candidates: Sequence[_Candidate], allowed: Mapping[str, str], override: ToolchainOverride
) -> Toolchain | NoToolchain:
    usable = [c for c in candidates if c.name in allowed]
    testable = [c for c in usable if c.test is not None]
    if len(testable) > 1 and override.test is None:
        return _ambiguous(testable, allowed)
    if len(testable) == 1:
        return _finish(testable[0], allowed, override, testable[0].reasons)
    if override.test is not None and len(usable) == 1:
        return _finish(usable[0], allowed, override, usable[0].reasons)
    if override.test is not None and len(usable) > 1:
        return _ambiguous(usable, allowed)
    return _unknown(usable, allowed)


def _finish(
    chosen: _Candidate,
    allowed: Mapping[str, str],
    override: ToolchainOverride,
    reasons: tuple[str, ...],
) -> Toolchain | NoToolchain:
    test = override.test if override.test is not None else chosen.test
    if test is None:
        return _unknown([chosen], allowed)
    if override.test is not None:
        reasons = (*reasons, "test command from .forgebot.yml")
    setup = chosen.setup
    if override.setup is not None:
        setup = override.setup or None
        reasons = (*reasons, "setup from .forgebot.yml" if setup else "no setup (.forgebot.yml)")
    return Toolchain(chosen.name, allowed[chosen.name], setup, test, reasons)


def _allowed_toolchain(image: str, allowed: Mapping[str, str]) -> str | None:
    if image in allowed:
        return image
    return next((name for name, ref in allowed.items() if ref == image), None)


def _example(allowed: Mapping[str, str], name: str | None = None) -> str:
    names = ", ".join(allowed) or "none configured"
    pick = name or next(iter(allowed), "python")
    test = {
        "python": 'python3 -m pytest --junitxml="$FORGEBOT_JUNIT"',
        "node": "npm test",
        "go": "go test ./...",
    }.get(pick, "make test")
    return (
        "Put these keys in .forgebot.yml at the root of the repository:\n\n"
        f"    image: {pick}    # one of: {names}\n"
        f"    test: {test}    # writes its JUnit report to $FORGEBOT_JUNIT if it can\n"
        "    setup: ...    # optional: installs dependencies before the tests"
    )


def _unknown(recognised: Sequence[_Candidate], allowed: Mapping[str, str]) -> NoToolchain:
    if recognised:
        found = "; ".join(reason for c in recognised for reason in c.reasons)
        what = f"it found {found}, but nothing that says how to run the tests"
        name: str | None = recognised[0].name
    else:
        markers = ", ".join((*PYTHON_MARKERS, "package.json", *GO_MARKERS))
        what = f"none of {markers} is at the root of the repository"
        name = None
    return NoToolchain(
        NoToolchainReason.UNKNOWN,
        f"forgebot cannot tell how to test this repository: {what}. {_example(allowed, name)}",
    )


def _ambiguous(candidates: Sequence[_Candidate], allowed: Mapping[str, str]) -> NoToolchain:
    found = "; ".join(f"{c.name} ({', '.join(c.reasons)})" for c in candidates)
    return NoToolchain(
        NoToolchainReason.AMBIGUOUS,
        f"forgebot found more than one way to test this repository: {found}. "
        f"Choose one. {_example(allowed, candidates[0].name)}",
    )


def _not_allowed(image: str, allowed: Mapping[str, str]) -> NoToolchain:
    names = ", ".join(f"{name} ({ref})" for name, ref in allowed.items()) or "none"
    return NoToolchain(
        NoToolchainReason.IMAGE_NOT_ALLOWED,
        f".forgebot.yml asks for the image {image!r}, which this forgebot does not run; "
        f"it runs only its own runner images: {names}. Set image: to one of those names.",
    )


# python ---------------------------------------------------------------------------------


def _detect_python(files: Mapping[str, str], version: str) -> _Candidate | None:
    found = [name for name in PYTHON_MARKERS if name in files]
    if not found:
        return None
    reasons = [f"{', '.join(found)} (python)"]
    planned = python_setup(files, version)
    setup: Command | None = None
    if planned is not None:
        setup = _sh(planned.script)
        reasons += planned.reasons
    packaged = _is_packaged(files)
    return _Candidate("python", PYTEST_SRC if packaged else PYTEST, setup, tuple(reasons))


def _is_packaged(files: Mapping[str, str]) -> bool:
    return "setup.py" in files or re.search(
        r"^\[build-system\]", files.get("pyproject.toml", ""), re.MULTILINE) is not None


# node -----------------------------------------------------------------------------------


def _detect_node(files: Mapping[str, str]) -> _Candidate | None:
    text = files.get("package.json")
    if text is None:
        return None
    try:
        package = json.loads(text)
    except ValueError:
        return _Candidate("node", None, None, ("package.json (node; not valid JSON)",))
    if not isinstance(package, dict):
        return _Candidate("node", None, None, ("package.json (node; not an object)",))
    scripts = package.get("scripts")
    script = scripts.get("test") if isinstance(scripts, dict) else None
    setup = _node_setup(package, files)
    if not isinstance(script, str) or not script.strip() or _NPM_PLACEHOLDER.match(script):
        return _Candidate("node", None, setup, ("package.json without a test script (node)",))
    runner = _node_runner(script)
    test = _sh(_NPM_TEST.get(runner or "", _NPM_TEST_TAP))
    reasons = [f"package.json test script {script[:80]!r} (node, {runner or 'tap or exit status'})"]
    if setup is not None:
        reasons.append("dependencies from package.json")
    return _Candidate("node", test, setup, tuple(reasons))


def _node_setup(package: Mapping[str, Any], files: Mapping[str, str]) -> Command | None:
    declared = any(
        isinstance(package.get(key), dict) and package[key]
        for key in ("dependencies", "devDependencies", "optionalDependencies")
    )
    if not declared:
        return None
    lockfile = next((name for name in _NODE_INSTALL if name in files), None)
    install = _NODE_INSTALL[lockfile] if lockfile else "npm install"
    return _sh(_NPM_SETUP.replace("{install}", install))


def _node_runner(script: str) -> str | None:
    """The test runner a test script calls, when it is one simple command: extra arguments
    given to ``npm test -- ...`` reach that runner. None otherwise."""
    if any(sep in script for sep in ("&&", "||", ";", "|", "\n", "`", "$(")):
        return None
    try:
        words = shlex.split(script)
    except ValueError:
        return None
    while words and (re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", words[0]) or words[0] == "npx"):
        words = words[1:]  # FOO=bar jest, npx jest
    if not words:
        return None
    program = words[0].rsplit("/", 1)[-1]
    if program in ("jest", "vitest", "mocha", "jasmine"):
        return program
    if program == "node" and "--test" in words:
        return "node --test"
    return None


# go -------------------------------------------------------------------------------------


def _detect_go(files: Mapping[str, str]) -> _Candidate | None:
    text = files.get("go.mod")
    if text is None:
        return None
    requires = any(line.strip().startswith("require") for line in text.splitlines())
    reasons = ["go.mod (go)"]
    if requires:
        reasons.append("modules required in go.mod")
    return _Candidate("go", GO_TEST, GO_SETUP if requires else None, tuple(reasons))


_DEFAULT_TEST: dict[str, Command] = {
    "python": PYTEST,
    "node": _sh(_NPM_TEST_TAP),
    "go": GO_TEST,
}


# reading the files ----------------------------------------------------------------------


def read_marker_files(root: Path) -> dict[str, str]:
    """Read the marker and manifest files of the worktree ``root``: regular files only (a
    symbolic link is never followed out of the repository), at most ``MAX_MARKER_BYTES``
    each, decoded as UTF-8 with replacement. Missing or unreadable files are left out."""
    names = list(MARKER_FILES)
    for pattern in _REQUIREMENTS_GLOBS:
        # A folder that is a link (requirements/ -> /etc) is never read through.
        matched = sorted(path.relative_to(root).as_posix() for path in root.glob(pattern)
                         if path.parent == root or not path.parent.is_symlink())
        names += matched[:MAX_REQUIREMENTS_FILES]
    found: dict[str, str] = {}
    for name in dict.fromkeys(names):
        text = _read_regular(root / name)
        if text is not None:
            found[name] = text
    return found


def _read_regular(path: Path) -> str | None:
    try:
        # O_NOFOLLOW: a marker that is a link (maybe to /etc/passwd) is not read.
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_MARKER_BYTES:
            return None
        with os.fdopen(os.dup(fd), "rb") as handle:
            data = handle.read(MAX_MARKER_BYTES)
    except OSError:
        return None
    finally:
        os.close(fd)
    return data.decode("utf-8", errors="replace")
