"""The three toolchains against their real runner images: detection picks the image and the
command, a failing test is reported by name, a passing run as passing; and a setup snapshot
(npm installing a dependency, offline) is reused by the test run.

Needs the Docker engine and the images of runners/python, runners/node and runners/go
(build-offline.sh in each). FORGEBOT_ALLOW_SKIP=1 skips instead of failing without them.
"""

from __future__ import annotations

import io
import json
import shutil
import tarfile
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from bot.sandbox.base import Limits, Result
from bot.sandbox.docker import RUNNER_IMAGES, DockerSandbox
from bot.sandbox.tarball import tar_directory
from bot.sandbox.toolchain import (
    Toolchain,
    ToolchainOverride,
    detect_toolchain,
    read_marker_files,
)
from tests.integration.docker_engine import docker_engine

pytestmark = pytest.mark.docker

REPOS = Path(__file__).resolve().parents[1] / "fixtures" / "repos"
IMAGES = {name: runner.ref for name, runner in RUNNER_IMAGES.items()}
LABELS = {"forgebot.test": "test_toolchains"}
LIMITS = Limits(timeout_s=120)

# sample -> (toolchain, the failing test as the report names it, files that hold it)
SAMPLES = {
    "python-sample": (
        "python",
        "tests.test_broken::test_add_is_broken_on_purpose: AssertionError: two and two make four",
        ["tests/test_broken.py"],
    ),
    "node-sample": (
        "node",
        "test/broken.test.js::add is broken on purpose: two and two make four",
        ["test/broken.test.js"],
    ),
    "go-sample": (
        "go",
        "example.com/gosample::TestAddIsBrokenOnPurpose: broken_test.go:8: Add(2, 2) = 4,"
        " want 5 (two and two make four)",
        ["broken_test.go"],
    ),
}


@pytest.fixture(scope="module")
def client() -> Iterator[docker.DockerClient]:
    with docker_engine(IMAGES.values(), "forgebot.test=test_toolchains") as engine:
        yield engine


@pytest.fixture(scope="module")
def sandbox(client: docker.DockerClient) -> DockerSandbox:
    return DockerSandbox(client)


def _detect(root: Path) -> Toolchain:
    found = detect_toolchain(read_marker_files(root), ToolchainOverride(), IMAGES)
    assert isinstance(found, Toolchain), found
    return found


def _run_tests(sandbox: DockerSandbox, image: str, root: Path, test: tuple[str, ...]) -> Result:
    with sandbox.start(image, LIMITS, LABELS) as session:
        session.put(tar_directory(root))
        return session.run(list(test), LIMITS.timeout_s)


def _set_up_and_test(sandbox: DockerSandbox, root: Path) -> Result:
    """The detected setup as a snapshot (offline), then the tests from it on a fresh copy of
    the repository (without node_modules); the snapshot is removed after."""
    toolchain = _detect(root)
    assert toolchain.setup is not None
    made = sandbox.snapshot_setup(
        toolchain.image, tar_directory(root), list(toolchain.setup), LIMITS, LABELS
    )
    try:
        assert made.image is not None, made.result.stdout + made.result.stderr
        return _run_tests(sandbox, made.image, root, toolchain.test)
    finally:
        if made.image is not None:
            sandbox.remove_snapshot(made.image)


@pytest.mark.parametrize("sample", SAMPLES.keys())
def test_failing_test_is_reported_by_name(sandbox: DockerSandbox, sample: str) -> None:
    name, failure, _ = SAMPLES[sample]
    toolchain = _detect(REPOS / sample)
    assert (toolchain.name, toolchain.image) == (name, IMAGES[name])

    result = _run_tests(sandbox, toolchain.image, REPOS / sample, toolchain.test)

    assert result.exit_code != 0, result.stdout
    assert result.junit is not None, result.stdout + result.stderr
    assert result.junit.failed == 1
    assert result.junit.passed >= 2
    assert result.junit.failures == (failure,)
    assert result.killed_by is None


@pytest.mark.parametrize("sample", SAMPLES.keys())
def test_passing_run_is_reported_as_passing(
    sandbox: DockerSandbox, sample: str, tmp_path: Path
) -> None:
    _, _, broken = SAMPLES[sample]
    root = tmp_path / sample
    shutil.copytree(REPOS / sample, root)
    for name in broken:
        (root / name).unlink()
    toolchain = _detect(root)

    result = _run_tests(sandbox, toolchain.image, root, toolchain.test)

    assert result.exit_code == 0, result.stdout + result.stderr
    assert result.junit is not None
    assert (result.junit.failed, result.junit.errors) == (0, 0)
    assert result.junit.passed >= 2


def _npm_tarball(name: str, source: str) -> bytes:
    """An npm package tarball (what `npm pack` makes) holding one module and a command."""
    files = {
        "package/package.json": json.dumps({"name": name, "version": "1.0.0", "main": "index.js",
                                            "bin": {name: "cli.js"}}),
        "package/index.js": source,
        "package/cli.js": "#!/usr/bin/env node\nconsole.log(require('./index.js')('cli'));\n",
    }
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for path, text in files.items():
            data = text.encode()
            member = tarfile.TarInfo(path)
            member.size, member.mode = len(data), 0o755 if path.endswith("cli.js") else 0o644
            tar.addfile(member, io.BytesIO(data))
    return buffer.getvalue()


def test_node_setup_snapshot_installs_a_dependency_offline(
    sandbox: DockerSandbox, tmp_path: Path
) -> None:
    root = tmp_path / "node-deps"
    shutil.copytree(REPOS / "node-sample", root)
    (root / "vendor").mkdir()
    (root / "vendor" / "greet-1.0.0.tgz").write_bytes(
        _npm_tarball("greet", "module.exports = (who) => `hello ${who}`;\n")
    )
    package = json.loads((root / "package.json").read_text())
    package["dependencies"] = {"greet": "file:vendor/greet-1.0.0.tgz"}
    (root / "package.json").write_text(json.dumps(package))
    (root / "test" / "broken.test.js").unlink()
    (root / "test" / "greet.test.js").write_text(
        "const test = require('node:test');\nconst assert = require('node:assert');\n"
        "const { execFileSync } = require('node:child_process');\n"
        "const greet = require('greet');\n"
        "test('greets', () => { assert.strictEqual(greet('you'), 'hello you'); });\n"
        # The package's command, linked in node_modules/.bin, still runs from /deps.
        "test('has its command', () => { assert.strictEqual(execFileSync("
        "'/node_modules/.bin/greet').toString(), 'hello cli\\n'); });\n"
    )
    setup = _detect(root).setup
    assert setup is not None and "npm install" in setup[-1]

    # The dependency lives in the snapshot, not in the repository: a fresh copy of the
    # repository, without node_modules, still finds it.
    result = _set_up_and_test(sandbox, root)

    assert result.exit_code == 0, result.stdout + result.stderr
    assert result.junit is not None
    assert (result.junit.passed, result.junit.failed) == (5, 0)


def test_node_workspace_packages_resolve_from_the_snapshot(
    sandbox: DockerSandbox, tmp_path: Path
) -> None:
    """npm links a workspace's packages into node_modules relatively; the setup makes the
    links absolute before node_modules moves under /deps, so the tests still find them."""
    root = tmp_path / "workspace"
    shutil.copytree(REPOS / "node-sample", root)
    (root / "test" / "broken.test.js").unlink()
    package = json.loads((root / "package.json").read_text())
    package["workspaces"] = ["packages/*"]
    package["devDependencies"] = {"shout": "*"}
    (root / "package.json").write_text(json.dumps(package))
    shout = root / "packages" / "shout"
    shout.mkdir(parents=True)
    (shout / "package.json").write_text(json.dumps({"name": "shout", "version": "1.0.0"}))
    (shout / "index.js").write_text("module.exports = (s) => s.toUpperCase();\n")
    (root / "test" / "shout.test.js").write_text(
        "const test = require('node:test');\nconst assert = require('node:assert');\n"
        "const shout = require('shout');\n"
        "test('shouts', () => { assert.strictEqual(shout('hi'), 'HI'); });\n"
    )
    result = _set_up_and_test(sandbox, root)

    assert result.exit_code == 0, result.stdout + result.stderr
    assert result.junit is not None and result.junit.failed == 0 and result.junit.passed >= 4
