"""Real open-source projects from PyPI and npm, pinned by version and archive SHA-256
(``examples/real-tasks``), through the whole bot: detection picks their setup and test
command, the setup installs what their tests need through the egress proxy, their own suite
passes in the sandbox, and an injected bug with a replayed reference fix becomes a submitted
pull request whose evidence shows its test failing before and passing after.

The archives are fetched at test time into a cache outside the clone
(``$FORGEBOT_SOURCE_CACHE``, else ``~/.cache/forgebot/sources``) and never committed.
``make test`` runs a reduced set (a ``src/`` layout with setuptools-scm and a dependency
group, hatchling with hatch-vcs and a test extra, and a tape project); set
``FORGEBOT_REAL_PROJECTS=all`` for every project of the suite."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
from click.testing import CliRunner

from bot.cli import main
from bot.eval.sources import materialise
from bot.eval.tasks import load_suite, load_task
from bot.forges.local.admin import show_pull
from bot.pipeline.dependencies import setup_cache
from bot.sandbox.base import Limits
from bot.sandbox.docker import DockerSandbox
from bot.sandbox.egress import allowed_hosts
from bot.sandbox.options import load_ca_bundle
from bot.sandbox.python_setup import pretend_version
from bot.sandbox.tarball import tar_directory
from bot.sandbox.toolchain import (
    Toolchain,
    ToolchainOverride,
    detect_toolchain,
    read_marker_files,
)
from tests.conftest import REPO
from tests.integration.docker_engine import docker_engine

SUITE = REPO / "examples" / "real-tasks"
IMAGES = {"python": "forgebot-runner-python:1", "node": "forgebot-runner-node:1"}
REDUCED = ("real-py-iniconfig", "real-py-humanize", "real-js-xtend")
ALL = tuple(sorted(p.name for p in SUITE.iterdir() if (p / "task.yml").is_file()))
SELECTED = ALL if os.environ.get("FORGEBOT_REAL_PROJECTS") == "all" else REDUCED
CA = Path("/etc/ssl/certs/ca-certificates.crt")
LABELS = {"forgebot.eval": "1", "forgebot.test": "test_real_projects"}

# What detection must choose for each project: the toolchain, words its setup must carry, and
# the test runner's report format (every one gives per-test results, which evidence needs).
EXPECTED: dict[str, tuple[str, tuple[str, ...], str]] = {
    "real-py-humanize": ("python", ("-e '.[tests]'", "babel"), "--junitxml"),
    "real-py-iniconfig": ("python", ("-e .", "'pytest>=8.4.2'"), "--junitxml"),
    "real-py-pluggy": ("python", ("-e .", "pytest-benchmark"), "--junitxml"),
    "real-py-tomlkit": ("python", ("-e .", "'PyYAML~=6.0'"), "--junitxml"),
    "real-py-python-slugify": ("python", ("-e .", "-r dev.requirements.txt"), "--junitxml"),
    "real-py-pathspec": ("python", ("-e .", "pytest-benchmark"), "--junitxml"),
    "real-js-xtend": ("node", ("npm install",), "--format tap"),
    "real-js-object-path": ("node", ("npm install",), "--reporter=xunit"),
    "real-js-dependency-graph": ("node", ("npm install",), "forgebot-jasmine"),
    "real-js-fast-redact": ("node", ("npm install",), "--format tap"),
}


def test_the_suite_is_pinned_and_has_every_kind_of_project() -> None:
    tasks = load_suite(SUITE)
    assert {t.name for t in tasks} == set(EXPECTED)
    python = [t for t in tasks if t.language == "python"]
    javascript = [t for t in tasks if t.language == "javascript"]
    assert len(python) >= 6 and len(javascript) >= 3
    for task in tasks:
        assert task.source is not None and task.patch is not None, task.name
        assert task.source.url.startswith(("https://files.pythonhosted.org/",
                                           "https://registry.npmjs.org/")), task.name
        assert not (task.folder / "repo").exists(), "sources are fetched, never vendored"


@pytest.fixture(scope="module")
def trees(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each selected project's archive, fetched (or taken from the cache), checked against
    its hash, unpacked and patched with its bug."""
    scratch = tmp_path_factory.mktemp("real")
    return {name: load_task(SUITE / name).starting_tree(scratch / name) for name in ALL}


@pytest.mark.parametrize("name", ALL)
def test_detection_picks_the_projects_setup_and_test_command(
    trees: dict[str, Path], name: str
) -> None:
    toolchain, setup_words, runner = EXPECTED[name]

    found = detect_toolchain(read_marker_files(trees[name]), ToolchainOverride(), IMAGES)

    assert getattr(found, "name", None) == toolchain, found
    setup = " ".join(found.setup or ())  # type: ignore[union-attr]
    for word in setup_words:
        assert word in setup, (name, setup)
    assert runner in " ".join(found.test), found.test  # type: ignore[union-attr]


@pytest.fixture(scope="module")
def engine() -> Iterator[docker.DockerClient]:
    with docker_engine(IMAGES.values(), cleanup_label="forgebot.eval=1") as client:
        yield client


@pytest.fixture(scope="module")
def results(engine: docker.DockerClient, tmp_path_factory: pytest.TempPathFactory
            ) -> tuple[Path, dict[str, dict[str, Any]], str]:
    """The selected projects through ``forgebot eval --provider replay``: the real service on
    the local forge, the setup through the egress proxy, grading by the hidden tests."""
    folder = tmp_path_factory.mktemp("real-eval")
    out = folder / "results.json"
    only = [arg for name in SELECTED for arg in ("--only", name)]
    # fast-redact's npm install (tap, standard and their trees, no lockfile) needs more than
    # the default 1 GB sandbox.
    env = {"FORGEBOT_CONFIG": None, "FORGEBOT_DATA_DIR": str(folder / "settings-data"),
           "FORGEBOT_SANDBOX__MEMORY_MB": "2048"}
    result = CliRunner().invoke(
        main, ["eval", str(SUITE), "--data-dir", str(folder / "data"), "--provider", "replay",
               "--json", str(out), *only], env=env, catch_exceptions=False)
    report = json.loads(out.read_text(encoding="utf-8"))
    return folder / "data", {t["name"]: t for t in report["tasks"]}, result.output


@pytest.mark.docker
@pytest.mark.slow
@pytest.mark.parametrize("name", SELECTED)
def test_a_real_project_gets_a_submitted_pull_request_with_evidence(
    results: tuple[Path, dict[str, dict[str, Any]], str], name: str
) -> None:
    data, tasks, output = results
    task = tasks[name]
    # The harness first ran the hidden test on the bugged base: it failed there.
    assert task["status"] == "ran", (task, output[-3000:])
    assert task["base_exit"] != 0, task
    assert (task["outcome"], task["resolved"], task["hidden_exit"]) == ("submitted", True, 0), (
        task["detail"], task["hidden_output"])
    front, body, diff = show_pull(data / name / "forge", f"eval/{name}", task["pull"])
    assert front.get("draft") in (False, None), front
    # Evidence: the change's own test failed on the base commit and passes on the change.
    assert "Result: **proven**" in body, body
    # The setup as the project's CI does it, through the egress proxy, said in the body.
    assert "## Setup" in body
    setup = body.split("## Setup", 1)[1]
    assert "dependencies: installed in" in setup or "dependencies: reused" in setup, setup
    if "installed in" in setup:
        assert "setup egress (" in setup and "requests allowed" in setup, setup
    if name.startswith("real-py-"):
        assert "installs the project itself, editable" in setup, setup
    assert diff.strip(), "the pull request carries the fix"


@pytest.mark.docker
@pytest.mark.slow
@pytest.mark.parametrize("name", SELECTED)
def test_the_projects_own_suite_passes_on_the_unmodified_project(
    engine: docker.DockerClient, tmp_path: Path, name: str
) -> None:
    """The published archive as it is (no bug), set up through the proxy as a job would (a
    kept snapshot when the eval above made one: the bug touches no manifest), and its own
    test command in a sandbox without network: it passes, with real per-test counts."""
    task = load_task(SUITE / name)
    assert task.source is not None
    tree = materialise(task.source.url, task.source.sha256, None, tmp_path / "pristine")
    manifests = read_marker_files(tree)
    found = detect_toolchain(manifests, ToolchainOverride(), IMAGES,
                             pretend_version(None, manifests))
    assert isinstance(found, Toolchain) and found.setup, found
    sandbox = DockerSandbox(engine, ca_bundle=load_ca_bundle(CA) if CA.exists() else None)
    egress = allowed_hosts(["registries"], found.name)
    cache = setup_cache(f"eval/{name}", found, manifests, egress, {})
    limits = Limits(timeout_s=900, memory_mb=2048, pids=512)
    kept = sandbox.find_snapshot(found.image, cache)
    image = kept.image if kept else sandbox.snapshot_setup(
        found.image, tar_directory(tree), list(found.setup), limits, LABELS, egress=egress,
        cache=cache).image
    assert image is not None
    with sandbox.start(image, limits, LABELS) as session:
        session.put(tar_directory(tree))
        result = session.run(list(found.test), 600)

    assert result.exit_code == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert result.junit is not None and result.junit.failed == 0, result.junit
    assert result.junit.passed >= 10, result.junit
