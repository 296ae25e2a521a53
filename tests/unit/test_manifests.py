"""What a change does to a repository's declared dependencies (tables, no IO)."""

from __future__ import annotations

import json

import pytest

from bot.sandbox.manifests import declared, dependency_changes, is_manifest

PYPROJECT = """\
[project]
name = "x"
dependencies = ["attrs>=23", "Requests[socks]==2.31"]
[project.optional-dependencies]
test = ["pytest>=7"]
[dependency-groups]
dev = ["ruff", {include-group = "test"}]
"""


def _lock(**versions: str) -> str:
    packages = {"": {"name": "x"}}
    packages |= {f"node_modules/{name}": {"version": v} for name, v in versions.items()}
    packages["node_modules/a/node_modules/nested"] = {"version": "9.9.9"}
    return json.dumps({"lockfileVersion": 3, "packages": packages})


CHANGES = {
    "a python dependency added": (
        {"pyproject.toml": PYPROJECT},
        {"pyproject.toml": PYPROJECT.replace('"attrs>=23"', '"attrs>=23", "six==1.16.0"')},
        ["added `six` ==1.16.0"],
    ),
    "a python pin changed, names normalised": (
        {"pyproject.toml": PYPROJECT},
        {"pyproject.toml": PYPROJECT.replace("Requests[socks]==2.31", "requests==2.32")},
        ["changed `requests` ==2.31 → ==2.32"],
    ),
    "a test requirement removed from a requirements file": (
        {"requirements-test.txt": "pytest\nfreezegun>=1  # time\n"},
        {"requirements-test.txt": "pytest\n"},
        ["removed `freezegun` >=1"],
    ),
    "an npm dependency and its locked version": (
        {"package.json": json.dumps({"devDependencies": {"tape": "^5"}}),
         "package-lock.json": _lock(tape="5.6.0")},
        {"package.json": json.dumps({"devDependencies": {"tape": "^5", "left-pad": "1.3.0"}}),
         "package-lock.json": _lock(tape="5.7.0", **{"left-pad": "1.3.0"})},
        ["added `left-pad` 1.3.0; =1.3.0", "changed `tape` ^5; =5.6.0 → ^5; =5.7.0"],
    ),
    "a go module required": (
        {"go.mod": "module x\n\ngo 1.21\n"},
        {"go.mod": "module x\n\ngo 1.21\n\nrequire (\n\tgithub.com/google/go-cmp v0.6.0\n)\n"},
        ["added `github.com/google/go-cmp` v0.6.0"],
    ),
    "a comment only": (
        {"pyproject.toml": PYPROJECT},
        {"pyproject.toml": PYPROJECT + "# a comment\n"},
        [],
    ),
}


@pytest.mark.parametrize(("before", "after", "lines"), CHANGES.values(), ids=CHANGES.keys())
def test_dependency_changes(before: dict[str, str], after: dict[str, str],
                            lines: list[str]) -> None:
    found = [str(c) for c in dependency_changes(declared(before), declared(after))]

    assert found == lines


def test_unreadable_manifests_declare_nothing() -> None:
    files = {"pyproject.toml": "not [toml", "package.json": "{", "setup.cfg": "[[[",
             "go.mod": "\x00"}

    assert declared(files) == {}


@pytest.mark.parametrize(
    ("path", "manifest"),
    [("pyproject.toml", True), ("requirements/test.txt", True), ("dev-requirements.txt", True),
     ("package-lock.json", True), ("go.sum", True), ("src/pyproject.toml", False),
     ("README.md", False), ("requirements.md", False)],
)
def test_which_files_are_manifests(path: str, manifest: bool) -> None:
    assert is_manifest(path) is manifest
