"""What the setup phase costs on real projects, and what keeping it saves.

For each of three real projects of ``examples/real-tasks`` (fetched and checked against their
pinned SHA-256), in one run:

- **cold**: the first job's setup through the egress proxy, with an empty package cache and
  an empty PyPI mirror (``bot.sandbox.pypi_mirror``; ``--no-mirror`` runs without one);
- **second job**: what a later job of the same repository pays: the kept snapshot's lookup
  (``find_snapshot``); goal ≤ 0.1x cold;
- **one-line manifest change**: a setup after one line of a manifest changed (a new cache
  key, the repository's package cache and the mirror warm); goal ≤ 0.3x cold;
- **direct**: the same setup command in a container on Docker's bridge network with no proxy
  (``docker run``, the same CA bundle and cache variables, empty cache): the baseline for
  "through the proxy"; goal cold ≤ 1.2x direct.

Prints seconds and ratios per project. Downloads come from the real registries, so the
figures move with the network; run it twice before reading much into one ratio.

    .venv/bin/python bench/setup_cache.py [--only real-py-iniconfig ...]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
import uuid
from pathlib import Path

import docker

from bot.eval.tasks import load_task
from bot.pipeline.dependencies import setup_cache
from bot.sandbox.base import Limits, SetupCache
from bot.sandbox.docker import DockerSandbox
from bot.sandbox.docker_setup import CACHE_ENVIRONMENT
from bot.sandbox.egress import allowed_hosts
from bot.sandbox.options import load_ca_bundle
from bot.sandbox.tarball import tar_directory
from bot.sandbox.toolchain import Toolchain, ToolchainOverride, detect_toolchain, read_marker_files

ROOT = Path(__file__).resolve().parents[1]
PROJECTS = ("real-py-iniconfig", "real-py-humanize", "real-js-xtend")
IMAGES = {"python": "forgebot-runner-python:1", "node": "forgebot-runner-node:1"}
CA = Path("/etc/ssl/certs/ca-certificates.crt")
LABELS = {"forgebot.bench": "setup_cache"}
LIMITS = Limits(timeout_s=900, memory_mb=2048, pids=512)


def _one_line_change(tree: Path) -> None:
    """Change one line of a manifest without changing what it asks for."""
    if (tree / "package.json").is_file():
        path = tree / "package.json"
        text = path.read_text()
        path.write_text(text.replace("{", '{\n  "forgebotBench": 1,', 1))
    else:
        path = tree / "pyproject.toml"
        path.write_text(path.read_text() + "\n# one-line change\n")


def _direct(client: docker.DockerClient, toolchain: Toolchain, tree: Path) -> float:
    """The setup in a plain container on Docker's bridge: no proxy, the same CA bundle."""
    ca = {"SSL_CERT_FILE": "/ca.pem", "PIP_CERT": "/ca.pem", "NODE_EXTRA_CA_CERTS": "/ca.pem",
          "npm_config_cafile": "/ca.pem", "REQUESTS_CA_BUNDLE": "/ca.pem"}
    env = {"FORGEBOT_DEPS": "/tmp/deps", "PYTHONUSERBASE": "/tmp/deps/python", "HOME": "/tmp",
           "PIP_BREAK_SYSTEM_PACKAGES": "1", **ca,
           **{k: v.replace("/cache", "/tmp/cache") for k, v in CACHE_ENVIRONMENT.items()}}
    script = ("mkdir -p /tmp/deps /tmp/cache && cp -r /src /tmp/repo && cd /tmp/repo && "
              + (toolchain.setup[2] if toolchain.setup and toolchain.setup[0] == "sh"
                 else " ".join(toolchain.setup or ())))
    started = time.monotonic()
    client.containers.run(
        toolchain.image, ["sh", "-c", script], environment=env, network_mode="bridge",
        user="1000:1000", remove=True, mem_limit="2g", labels=LABELS,
        volumes={str(tree): {"bind": "/src", "mode": "ro"}, str(CA): {"bind": "/ca.pem",
                                                                     "mode": "ro"}})
    return time.monotonic() - started


def _size(folder: Path | None) -> tuple[int, int]:
    """Files and bytes under ``folder`` (the mirror's cache): what came from upstream."""
    if folder is None or not folder.exists():
        return 0, 0
    files = [f for f in folder.rglob("*") if f.is_file()]
    return len(files), sum(f.stat().st_size for f in files)


def bench(name: str, sandbox: DockerSandbox, client: docker.DockerClient, scratch: Path,
          mirror: Path | None = None) -> None:
    tree = load_task(ROOT / "examples" / "real-tasks" / name).starting_tree(scratch / name)
    found = detect_toolchain(read_marker_files(tree), ToolchainOverride(), IMAGES)
    assert isinstance(found, Toolchain) and found.setup, found
    egress = allowed_hosts(["registries"], found.name)
    scope = uuid.uuid4().hex[:16]  # an empty package cache for this run
    cache = setup_cache(f"bench/{scope}", found, read_marker_files(tree), egress, {})
    cache = SetupCache(cache.key + scope, scope)

    cold = sandbox.snapshot_setup(found.image, tar_directory(tree), list(found.setup), LIMITS,
                                  LABELS, egress=egress, cache=cache)
    fetched = _size(mirror)
    assert cold.image is not None, cold.result.stdout[-2000:] + cold.result.stderr[-2000:]
    started = time.monotonic()
    kept = sandbox.find_snapshot(found.image, cache)
    second = time.monotonic() - started
    assert kept is not None and kept.image == cold.image
    _one_line_change(tree)
    changed_key = setup_cache(f"bench/{scope}", found, read_marker_files(tree), egress, {})
    changed = sandbox.snapshot_setup(
        found.image, tar_directory(tree), list(found.setup), LIMITS, LABELS, egress=egress,
        cache=SetupCache(changed_key.key + scope, scope))
    assert changed.image is not None
    refetched = tuple(b - a for a, b in zip(fetched, _size(mirror), strict=True))
    direct = _direct(client, found, tree)
    requests = sum(1 for r in cold.egress if r.allowed)
    print(f"{name}: cold {cold.seconds:.1f} s through the proxy ({requests} requests), "
          f"second job {second * 1000:.0f} ms, one-line change {changed.seconds:.1f} s, "
          f"direct {direct:.1f} s")
    if mirror is not None:
        print(f"  from upstream through the mirror: cold {fetched[0]} files "
              f"({fetched[1] / 1e6:.1f} MB), one-line change {refetched[0]} files "
              f"({refetched[1] / 1e6:.1f} MB)")
    print(f"  second/cold {second / cold.seconds:.3f}x (goal <= 0.1)   "
          f"change/cold {changed.seconds / cold.seconds:.2f}x (goal <= 0.3)   "
          f"proxy/direct {cold.seconds / direct:.2f}x (goal <= 1.2)")
    for image in (cold.image, changed.image):
        client.images.remove(image, force=True)
    client.volumes.get(f"forgebot-cache-{scope}").remove(force=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", action="append", default=[], help="a project of the suite")
    parser.add_argument("--no-mirror", action="store_true", help="setups without the mirror")
    args = parser.parse_args()
    client = docker.from_env()
    scratch = Path(tempfile.mkdtemp(prefix="forgebot-bench-"))
    try:
        for name in args.only or PROJECTS:
            # An empty mirror for each project: its cold setup is cold.
            mirror = None if args.no_mirror else scratch / f"mirror-{name}"
            sandbox = DockerSandbox(
                client, ca_bundle=load_ca_bundle(CA) if CA.exists() else None,
                mirror_dir=mirror)
            bench(name, sandbox, client, scratch, mirror)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        client.close()


if __name__ == "__main__":
    main()
