"""Toolchain detection and .forgebot.yml overrides: tables of repository files, no Docker."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path
from types import ModuleType

import pytest

from bot.errors import PolicyError
from bot.sandbox.base import TestCounts
from bot.sandbox.junit import parse_junit
from bot.sandbox.toolchain import (
    GO_SETUP,
    GO_TEST,
    PYTEST,
    NoToolchain,
    NoToolchainReason,
    Toolchain,
    ToolchainOverride,
    detect_toolchain,
    read_marker_files,
    split_repo_config,
)

IMAGES = {
    "python": "forgebot-runner-python:1",
    "node": "forgebot-runner-node:1",
    "go": "forgebot-runner-go:1",
}
NONE = ToolchainOverride()
REPOS = Path(__file__).resolve().parents[1] / "fixtures" / "repos"


def _package(scripts: dict[str, str] | None = None, **extra: object) -> str:
    return json.dumps({"name": "x", "version": "1.0.0", "scripts": scripts or {}, **extra})


def _detect(files: dict[str, str], override: ToolchainOverride = NONE) -> Toolchain:
    found = detect_toolchain(files, override, IMAGES)
    assert isinstance(found, Toolchain), found
    return found


def _refused(files: dict[str, str], override: ToolchainOverride = NONE) -> NoToolchain:
    found = detect_toolchain(files, override, IMAGES)
    assert isinstance(found, NoToolchain), found
    return found


# Which toolchain, image and test runner each set of root files leads to.
DETECTED = {
    "pyproject": ({"pyproject.toml": "[tool.pytest.ini_options]\n"}, "python", "pytest"),
    "setup.cfg": ({"setup.cfg": "[metadata]\nname = x\n"}, "python", "pytest"),
    "setup.py": ({"setup.py": "from setuptools import setup\nsetup()\n"}, "python", "pytest"),
    "pytest.ini": ({"pytest.ini": "[pytest]\n"}, "python", "pytest"),
    "tox.ini": ({"tox.ini": "[tox]\n"}, "python", "pytest"),
    "requirements": ({"requirements.txt": "requests\n"}, "python", "pytest"),
    "node --test": ({"package.json": _package({"test": "node --test"})}, "node", "--format tap"),
    "tape": ({"package.json": _package({"test": "tape test/*.js"})}, "node", "--format tap"),
    "jest": ({"package.json": _package({"test": "jest"})}, "node", "--format jest-json"),
    "npx jest": ({"package.json": _package({"test": "NODE_ENV=test npx jest"})}, "node", "jest"),
    "vitest": ({"package.json": _package({"test": "vitest run"})}, "node", "--reporter=junit"),
    "mocha": ({"package.json": _package({"test": "mocha"})}, "node", "--reporter=xunit"),
    "lint then jest": (
        {"package.json": _package({"test": "eslint . && jest"})}, "node", "--format tap"
    ),
    "go.mod": ({"go.mod": "module example.com/x\n\ngo 1.19\n"}, "go", "go-json"),
    "go beside a package.json without tests": (
        {"go.mod": "module x\n", "package.json": _package({"lint": "eslint ."})}, "go", "go-json"
    ),
    "python beside npm's placeholder": (
        {
            "pyproject.toml": "",
            "package.json": _package({"test": 'echo "Error: no test specified" && exit 1'}),
        },
        "python",
        "pytest",
    ),
}


@pytest.mark.parametrize(("files", "name", "runner"), DETECTED.values(), ids=DETECTED.keys())
def test_detects_the_toolchain(files: dict[str, str], name: str, runner: str) -> None:
    found = _detect(files)

    assert found.name == name
    assert found.image == IMAGES[name]
    assert runner in " ".join(found.test)
    assert found.reasons


@pytest.mark.parametrize(("files", "name", "runner"), DETECTED.values(), ids=DETECTED.keys())
def test_every_detected_test_command_writes_junit(
    files: dict[str, str], name: str, runner: str
) -> None:
    # The report goes to $FORGEBOT_JUNIT: directly (pytest, vitest, mocha) or through
    # forgebot-junit, which writes there.
    command = " ".join(_detect(files).test)

    assert "$FORGEBOT_JUNIT" in command or command.startswith("forgebot-junit") or (
        "exec forgebot-junit" in command
    )


def test_python_uses_pytest_with_junit() -> None:
    assert _detect({"pytest.ini": ""}).test == PYTEST
    assert "--junitxml=\"$FORGEBOT_JUNIT\"" in PYTEST[2]


def test_go_uses_go_test_json() -> None:
    assert _detect({"go.mod": "module x\n"}).test == GO_TEST


# Setup commands: only when the repository declares dependencies.
SETUPS = {
    "requirements.txt": ({"requirements.txt": "requests==2.0\n"}, "-r requirements.txt"),
    "pyproject dependencies and test extra": (
        {
            "pyproject.toml": (
                '[project]\nname = "x"\ndependencies = ["attrs>=23", "attrs>=23"]\n'
                '[project.optional-dependencies]\ntest = ["hypothesis"]\ndocs = ["sphinx"]\n'
            )
        },
        "-- 'attrs>=23'",
    ),
    "dependency group": (
        {"pyproject.toml": '[dependency-groups]\ndev = ["pytest-mock", {include-group = "x"}]\n'},
        "-- pytest-mock",
    ),
    "setup.cfg install_requires": (
        {"setup.cfg": "[options]\ninstall_requires =\n    six\n    # a comment\n    idna\n"},
        "-- six idna",
    ),
    "an option is not a requirement": (
        {"pyproject.toml": '[project]\ndependencies = ["--index-url=http://evil", "six"]\n'},
        "-- six",
    ),
}


@pytest.mark.parametrize(("files", "command"), SETUPS.values(), ids=SETUPS.keys())
def test_python_setup_installs_declared_dependencies(files: dict[str, str], command: str) -> None:
    setup = _detect(files).setup

    assert setup is not None and setup[:2] == ("sh", "-c")
    assert "python3 -m pip install --user" in setup[2]
    assert command in setup[2]
    assert "--index-url" not in setup[2]


@pytest.mark.parametrize(
    "files",
    [
        {"pyproject.toml": '[project]\nname = "x"\n'},
        {"pyproject.toml": "this is [not toml"},
        {"setup.cfg": "not an ini file"},
        {"pytest.ini": "[pytest]\n"},
        {"package.json": _package({"test": "node --test"})},
        {"go.mod": "module x\n\ngo 1.19\n"},
    ],
)
def test_no_dependencies_means_no_setup(files: dict[str, str]) -> None:
    assert _detect(files).setup is None


def test_node_setup_uses_npm_ci_with_a_lock_file() -> None:
    files = {
        "package.json": _package({"test": "jest"}, devDependencies={"jest": "^29"}),
        "package-lock.json": "{}",
    }

    setup = _detect(files).setup

    assert setup is not None and setup[:2] == ("sh", "-c")
    assert setup[2].startswith("set -e; npm ci;")
    assert setup[2].endswith('mv node_modules "$FORGEBOT_DEPS/node/node_modules"')


@pytest.mark.parametrize(
    ("lockfile", "install"),
    [("yarn.lock", "npx --yes yarn@1 install --frozen-lockfile"),
     ("pnpm-lock.yaml", "npx --yes pnpm@8 install --frozen-lockfile"),
     ("npm-shrinkwrap.json", "npm ci")],
)
def test_node_setup_follows_the_lockfile(lockfile: str, install: str) -> None:
    files = {"package.json": _package({"test": "jest"}, devDependencies={"jest": "^29"}),
             lockfile: "# lock\n"}

    setup = _detect(files).setup

    assert setup is not None and setup[2].startswith(f"set -e; {install}")
    # workspace links become absolute before node_modules moves under /deps
    assert 'ln -sfn "$target" "$link"' in setup[2]


def test_node_setup_uses_npm_install_without_a_lock_file() -> None:
    files = {"package.json": _package({"test": "node --test"}, dependencies={"left-pad": "1"})}

    setup = _detect(files).setup

    assert setup is not None and setup[2].startswith("set -e; npm install;")


def test_go_setup_downloads_required_modules() -> None:
    files = {"go.mod": "module x\n\ngo 1.19\n\nrequire github.com/google/go-cmp v0.6.0\n"}

    assert _detect(files).setup == GO_SETUP


# Nothing to go on, or too much: a named result whose message says what to write.
REFUSED = {
    "empty repository": ({}, NoToolchainReason.UNKNOWN, "none of pyproject.toml"),
    "package.json without a test script": (
        {"package.json": _package({"build": "tsc"})},
        NoToolchainReason.UNKNOWN,
        "package.json without a test script",
    ),
    "npm's placeholder test script": (
        {"package.json": _package({"test": 'echo "Error: no test specified" && exit 1'})},
        NoToolchainReason.UNKNOWN,
        "without a test script",
    ),
    "package.json that is not JSON": (
        {"package.json": "{nope"},
        NoToolchainReason.UNKNOWN,
        "not valid JSON",
    ),
    "python and go": (
        {"pyproject.toml": "", "go.mod": "module x\n"},
        NoToolchainReason.AMBIGUOUS,
        "more than one way",
    ),
    "python and a node test script": (
        {"setup.py": "", "package.json": _package({"test": "jest"})},
        NoToolchainReason.AMBIGUOUS,
        "node (package.json test script",
    ),
}


@pytest.mark.parametrize(("files", "reason", "says"), REFUSED.values(), ids=REFUSED.keys())
def test_refusals_say_what_to_put_in_forgebot_yml(
    files: dict[str, str], reason: NoToolchainReason, says: str
) -> None:
    refused = _refused(files)

    assert refused.reason is reason
    assert says in refused.message
    assert ".forgebot.yml" in refused.message
    assert "image: " in refused.message and "test: " in refused.message
    assert "one of: python, node, go" in refused.message


# Overrides from .forgebot.yml.
def test_override_image_by_name_or_reference() -> None:
    files = {"pyproject.toml": "", "go.mod": "module x\n"}  # ambiguous on its own

    assert _detect(files, ToolchainOverride(image="go")).name == "go"
    assert _detect(files, ToolchainOverride(image="forgebot-runner-python:1")).name == "python"


def test_override_image_must_be_a_runner_image() -> None:
    refused = _refused(
        {"pyproject.toml": ""}, ToolchainOverride(image="evil.example/miner:latest")
    )

    assert refused.reason is NoToolchainReason.IMAGE_NOT_ALLOWED
    assert "evil.example/miner:latest" in refused.message
    assert "python (forgebot-runner-python:1)" in refused.message


def test_override_image_outside_a_smaller_allow_list_is_refused() -> None:
    found = detect_toolchain(
        {"go.mod": "module x\n"}, ToolchainOverride(image="go"), {"python": IMAGES["python"]}
    )

    assert isinstance(found, NoToolchain)
    assert found.reason is NoToolchainReason.IMAGE_NOT_ALLOWED


def test_detected_toolchain_without_an_allowed_image_is_unknown() -> None:
    found = detect_toolchain({"go.mod": "module x\n"}, NONE, {"python": IMAGES["python"]})

    assert isinstance(found, NoToolchain)
    assert found.reason is NoToolchainReason.UNKNOWN


def test_override_image_without_files_uses_the_toolchain_default() -> None:
    found = _detect({}, ToolchainOverride(image="python"))

    assert (found.name, found.test, found.setup) == ("python", PYTEST, None)
    assert found.reasons[0] == "image 'python' from .forgebot.yml"


def test_override_test_and_setup() -> None:
    override = ToolchainOverride(setup=("make", "deps"), test=("sh", "-c", "make check"))

    found = _detect({"go.mod": "module x\nrequire y v1\n"}, override)

    assert (found.name, found.setup, found.test) == ("go", ("make", "deps"), override.test)
    assert "test command from .forgebot.yml" in found.reasons


def test_override_empty_setup_means_none() -> None:
    found = _detect({"requirements.txt": "x\n"}, ToolchainOverride(setup=()))

    assert found.setup is None
    assert "no setup (.forgebot.yml)" in found.reasons


def test_override_test_picks_the_only_recognised_toolchain() -> None:
    found = _detect({"package.json": _package({"build": "tsc"})}, ToolchainOverride(test=("x",)))

    assert (found.name, found.test) == ("node", ("x",))


def test_override_test_alone_on_an_empty_repository_asks_for_an_image() -> None:
    refused = _refused({}, ToolchainOverride(test=("make", "test")))

    assert refused.reason is NoToolchainReason.UNKNOWN
    assert "image: " in refused.message


def test_override_test_with_several_toolchains_is_ambiguous() -> None:
    refused = _refused(
        {"pyproject.toml": "", "go.mod": "module x\n"}, ToolchainOverride(test=("make",))
    )

    assert refused.reason is NoToolchainReason.AMBIGUOUS


# split_repo_config
def test_split_repo_config_separates_toolchain_and_policy_keys() -> None:
    override, rest = split_repo_config(
        {
            "image": "node",
            "setup": "npm ci",
            "test": ["npm", "test"],
            "limits": {"max_files_changed": 5},
            "paths": {"deny": ["docs/**"]},
        }
    )

    assert override == ToolchainOverride("node", ("sh", "-c", "npm ci"), ("npm", "test"))
    assert rest == {"limits": {"max_files_changed": 5}, "paths": {"deny": ["docs/**"]}}


@pytest.mark.parametrize("empty", [None, "", []])
def test_split_repo_config_empty_setup_is_no_setup(empty: object) -> None:
    override, rest = split_repo_config({"setup": empty})

    assert override.setup == ()
    assert rest == {}


def test_split_repo_config_of_nothing() -> None:
    assert split_repo_config(None) == (ToolchainOverride(), {})
    assert split_repo_config({"limits": {}}) == (ToolchainOverride(), {"limits": {}})


BAD_CONFIGS = {
    "image not a string": ({"image": 3}, "image: must be the name"),
    "image with spaces": ({"image": "python --privileged"}, "image: must not contain spaces"),
    "empty test": ({"test": ""}, "test: must be a command"),
    "null test": ({"test": None}, "test: must be a command"),
    "test a mapping": ({"test": {"run": "x"}}, "test: must be a command"),
    "test list of numbers": ({"test": ["go", 1]}, "test: must be a command"),
    "setup with NUL": ({"setup": "a\x00b"}, "setup: must be a command"),
    "setup too long": ({"setup": "x" * 5000}, "setup: must be a command"),
    "setup true": ({"setup": True}, "setup: must be a command"),
    "too many items": ({"test": ["x"] * 100}, "test: must be a command"),
    "not a mapping": (["image", "node"], "top level must be a mapping"),
}


@pytest.mark.parametrize(("mapping", "says"), BAD_CONFIGS.values(), ids=BAD_CONFIGS.keys())
def test_split_repo_config_refuses_bad_shapes(mapping: object, says: str) -> None:
    with pytest.raises(PolicyError, match=says) as raised:
        split_repo_config(mapping, "acme/hello:.forgebot.yml")  # type: ignore[arg-type]

    assert str(raised.value).startswith("acme/hello:.forgebot.yml: ")


# read_marker_files
def test_read_marker_files_reads_only_regular_marker_files(tmp_path: Path) -> None:
    (tmp_path / "go.mod").write_text("module x\n")
    (tmp_path / "README.md").write_text("not a marker")
    (tmp_path / "package.json").symlink_to("/etc/passwd")
    (tmp_path / "setup.cfg").mkdir()
    (tmp_path / "requirements.txt").write_bytes(b"caf\xe9\n")
    (tmp_path / "pyproject.toml").write_bytes(b"x" * (600 * 1024))

    found = read_marker_files(tmp_path)

    assert found == {"go.mod": "module x\n", "requirements.txt": "caf\ufffd\n"}


@pytest.mark.parametrize(
    ("sample", "name"),
    [("python-sample", "python"), ("node-sample", "node"), ("go-sample", "go")],
)
def test_sample_repositories_are_detected(sample: str, name: str) -> None:
    found = _detect(read_marker_files(REPOS / sample))

    assert (found.name, found.setup) == (name, None)


def test_samples_have_no_stray_marker_files() -> None:
    for sample in ("python-sample", "node-sample", "go-sample"):
        assert not [f for f in os.listdir(REPOS / sample) if f.startswith(".forgebot")]


# forgebot-junit: the converter shipped in the node and go images ---------------------------


def _converter() -> ModuleType:
    path = Path(__file__).resolve().parents[2] / "runners" / "tools" / "forgebot_junit.py"
    spec = importlib.util.spec_from_file_location("forgebot_junit", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["forgebot_junit"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


fj = _converter()

NODE18_TAP = """\

> node-sample@0.1.0 test
> node --test

TAP version 13
# Subtest: add is broken on purpose
not ok 1 - add is broken on purpose
  ---
  duration_ms: 39.005927
  location: '/sandbox/repo/test/broken.test.js:7:1'
  failureType: 'testCodeFailure'
  error: 'two and two make four'
  code: 'ERR_ASSERTION'
  stack: |-
    TestContext.<anonymous> (/sandbox/repo/test/broken.test.js:8:10)
  ...
# Subtest: add
ok 2 - add
  ---
  duration_ms: 6.19498
  ...
# Subtest: subtract
    # Subtest: positive
    ok 1 - positive
      ---
      duration_ms: 0.338691
      ...
    # Subtest: multi-line failure
    not ok 2 - multi-line failure
      ---
      error: |-
        Expected values to be strictly equal:

        1 !== 2
      ...
    1..2
not ok 3 - subtract
  ---
  error: '1 subtest failed'
  ...
# Subtest: later
ok 4 - later # SKIP not today
1..4
# tests 5
"""


def _tap_report(text: str) -> list[tuple[str, str, str, str]]:
    report = fj.Report()
    parser = fj.TapParser(report, "/sandbox/repo/")
    for line in text.splitlines(keepends=True):
        parser.feed(line)
    parser.finish()
    return [(c.classname, c.name, c.outcome, c.message) for c in report.cases]


def test_tap_from_node_18_gives_leaf_cases() -> None:
    assert _tap_report(NODE18_TAP) == [
        ("test/broken.test.js", "add is broken on purpose", "failure", "two and two make four"),
        ("tap", "add", "passed", ""),
        ("subtract", "positive", "passed", ""),
        ("subtract", "multi-line failure", "failure",
         "Expected values to be strictly equal: 1 !== 2"),
        ("tap", "later", "skipped", ""),
    ]


def test_tap_bail_out_is_an_error() -> None:
    assert _tap_report("TAP version 13\nok 1 - a\nBail out! database gone\n")[-1] == (
        "tap", "bail out", "error", "Bail out! database gone"
    )


def _go_report(events: list[dict[str, object]]) -> list[tuple[str, str, str, str]]:
    report = fj.Report()
    parser = fj.GoParser(report, echo=False)
    for event in events:
        parser.feed(json.dumps(event) + "\n")
    parser.feed("not json: a line go printed itself\n")
    parser.finish()
    return [(c.classname, c.name, c.outcome, c.message) for c in report.cases]


def test_go_json_gives_leaf_tests_and_their_output() -> None:
    pkg = "example.com/x"
    events: list[dict[str, object]] = [
        {"Action": "run", "Package": pkg, "Test": "TestA"},
        {"Action": "output", "Package": pkg, "Test": "TestA", "Output": "=== RUN   TestA\n"},
        {"Action": "output", "Package": pkg, "Test": "TestA", "Output": "    a_test.go:8: got 4\n"},
        {"Action": "output", "Package": pkg, "Test": "TestA", "Output": "--- FAIL: TestA\n"},
        {"Action": "fail", "Package": pkg, "Test": "TestA", "Elapsed": 0.01},
        {"Action": "pass", "Package": pkg, "Test": "TestB/one", "Elapsed": 0},
        {"Action": "skip", "Package": pkg, "Test": "TestB/two", "Elapsed": 0},
        {"Action": "pass", "Package": pkg, "Test": "TestB", "Elapsed": 0},
        {"Action": "output", "Package": pkg, "Output": "FAIL\n"},
        {"Action": "fail", "Package": pkg, "Elapsed": 0.02},
    ]

    assert _go_report(events) == [
        (pkg, "TestA", "failure", "a_test.go:8: got 4"),
        (pkg, "TestB/one", "passed", ""),
        (pkg, "TestB/two", "skipped", ""),
    ]


def test_go_package_that_fails_without_a_failing_test_is_an_error() -> None:
    pkg = "example.com/broken"
    events: list[dict[str, object]] = [
        {"Action": "output", "Package": pkg, "Output": "FAIL\texample.com/broken [build failed]\n"},
        {"Action": "fail", "Package": pkg, "Elapsed": 0},
    ]

    assert _go_report(events) == [
        (pkg, "[package]", "error", "FAIL example.com/broken [build failed]")
    ]


def test_jest_json_report(tmp_path: Path) -> None:
    report_file = tmp_path / "jest.json"
    report_file.write_text(json.dumps({"testResults": [
        {"name": "/sandbox/repo/sum.test.js", "status": "failed", "assertionResults": [
            {"ancestorTitles": ["sum"], "title": "adds", "status": "passed", "duration": 3},
            {"ancestorTitles": ["sum"], "title": "breaks", "status": "failed",
             "failureMessages": ["\x1b[31mexpected 5\x1b[39m\n    at x"]},
            {"ancestorTitles": [], "title": "later", "status": "pending"},
        ]},
        {"name": "/sandbox/repo/bad.test.js", "status": "failed", "message": "SyntaxError",
         "assertionResults": []},
    ]}))
    report = fj.Report()

    fj.read_jest(str(report_file), report, "/sandbox/repo/")

    assert [(c.classname, c.name, c.outcome, c.message) for c in report.cases] == [
        ("sum.test.js > sum", "adds", "passed", ""),
        ("sum.test.js > sum", "breaks", "failure", "expected 5 at x"),
        ("sum.test.js", "later", "skipped", ""),
        ("bad.test.js", "[suite]", "error", "SyntaxError"),
    ]


def _run_converter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, argv: list[str]
) -> tuple[int, TestCounts | None]:
    report = tmp_path / "out" / "junit.xml"
    monkeypatch.setenv("FORGEBOT_JUNIT", str(report))
    monkeypatch.chdir(tmp_path)
    code = fj.run(argv)
    return code, parse_junit(report.read_bytes()) if report.exists() else None


def test_converter_reports_tap_output_of_a_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    script = "print('TAP version 13\\nok 1 - a\\nnot ok 2 - b'); raise SystemExit(1)"

    code, counts = _run_converter(
        tmp_path, monkeypatch, ["--format", "tap", "--", sys.executable, "-c", script]
    )

    assert code == 1
    assert counts is not None and (counts.passed, counts.failed) == (1, 1)
    assert counts.failures == ("tap::b",)
    assert "not ok 2 - b" in capsys.readouterr().out  # the output still reaches the log


@pytest.mark.parametrize(
    ("script", "code", "failures"),
    [
        ("print('all good')", 0, ()),
        ("print('tests broke'); raise SystemExit(3)", 3,
         ("forgebot::npm test: npm test exited with status 3: tests broke",)),
    ],
)
def test_converter_falls_back_to_the_exit_status(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    script: str,
    code: int,
    failures: tuple[str, ...],
) -> None:
    got, counts = _run_converter(
        tmp_path, monkeypatch, ["--name", "npm test", "--", sys.executable, "-c", script]
    )

    assert got == code
    assert counts is not None and counts.total == 1 and counts.failures == failures


def test_converter_keeps_a_report_the_runner_wrote(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    own = '<testsuite><testcase classname="v" name="own"/></testsuite>'
    script = f"import os; open(os.environ['FORGEBOT_JUNIT'], 'w').write({own!r})"
    (tmp_path / "out").mkdir()

    code, counts = _run_converter(tmp_path, monkeypatch, ["--", sys.executable, "-c", script])

    assert code == 0
    assert counts is not None and counts.passed == 1


def test_converter_says_so_when_the_command_fails_after_passing_tests(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = "print('ok 1 - a'); raise SystemExit(2)"

    argv = ["--format", "tap", "--name", "t", "--", sys.executable, "-c", script]

    code, counts = _run_converter(tmp_path, monkeypatch, argv)

    assert code == 2
    assert counts is not None and (counts.passed, counts.failed) == (1, 1)


def test_converter_of_a_missing_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code, counts = _run_converter(tmp_path, monkeypatch, ["--", "/no/such/program"])

    assert code == 127
    assert counts is not None and counts.failed == 1


def test_converter_escapes_what_xml_cannot_hold() -> None:
    report = fj.Report()
    report.add(fj.Case('a"<&>', "bell\x07", "failure", "bad \x00 byte & <tag>"))

    counts = parse_junit(fj.to_xml(report, "suite").encode())

    assert counts is not None
    assert counts.failures == ('a"<&>::bell?: bad ? byte & <tag>',)
