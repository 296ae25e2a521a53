"""What one sandboxed command costs: with the job's setup snapshot, with a fresh container
that must install the dependencies again, against plain Docker and no sandbox at all.

Measures, N times each (default 10), the median of:

- sandbox: DockerSandbox start + put a small tree + run `true` + read the result + close,
  from the plain runner image;
- snapshot: the same, started from the job's setup snapshot (dependencies installed once);
- fresh: start from the plain runner image + put + run the setup command (installing into
  /tmp, as the root is read-only) + run `true` + close: what every run would cost without
  the snapshot;
- docker run: `docker run --rm <image> true` through the docker CLI;
- bare: `subprocess.run(["true"])` on the host.

The setup installs a real npm package from a tarball in the tree (`npm install`, offline)
with the node image; `--toolchain python` uses a setup that writes a module into /deps
instead. Prints the medians in milliseconds, the one-off cost of making the snapshot, and
the ratios. Needs a Docker engine and the runner images (runners/*/build-offline.sh).

    .venv/bin/python bench/sandbox_overhead.py [-n 10] [--toolchain node|python]
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable

import docker

from bot.sandbox.base import Limits
from bot.sandbox.docker import RUNNER_IMAGES, DockerSandbox, image_status

BENCH_LABELS = {"forgebot.bench": "sandbox_overhead"}
LIMITS = Limits(timeout_s=120)

PYTHON_SETUP = [
    "sh", "-c",
    'd="$PYTHONUSERBASE/lib/python3.11/site-packages"; mkdir -p "$d";'
    ' echo "ANSWER = 42" > "$d/benchdep.py"',
]
NODE_SETUP = [
    "sh", "-c",
    'set -e; npm install --no-package-lock; mkdir -p "$FORGEBOT_DEPS/node";'
    ' mv node_modules "$FORGEBOT_DEPS/node/node_modules"',
]


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    member = tarfile.TarInfo(name)
    member.size, member.uid, member.gid, member.mode = len(data), 1000, 1000, 0o644
    tar.addfile(member, io.BytesIO(data))


def _npm_tarball() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        package = {"name": "benchdep", "version": "1.0.0", "main": "index.js"}
        _add(tar, "package/package.json", json.dumps(package).encode())
        _add(tar, "package/index.js", b"module.exports = 42;\n")
    return buffer.getvalue()


def small_tree(toolchain: str) -> bytes:
    """A tar of a handful of small files, about what a tiny repository holds, plus what its
    setup needs (package.json and a vendored npm package for node)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for index in range(10):
            _add(tar, f"tests/test_{index}.py", f"def test_{index}():\n    pass\n".encode())
        if toolchain == "node":
            package = {"name": "bench", "version": "1.0.0", "private": True,
                       "dependencies": {"benchdep": "file:vendor/benchdep-1.0.0.tgz"}}
            _add(tar, "package.json", json.dumps(package).encode())
            _add(tar, "vendor/benchdep-1.0.0.tgz", _npm_tarball())
    return buffer.getvalue()


def session_once(sandbox: DockerSandbox, image: str, tree: bytes, setup: list[str] | None) -> None:
    session = sandbox.start(image, LIMITS, BENCH_LABELS)
    try:
        session.put(tree)
        if setup is not None:
            installed = session.run(setup, LIMITS.timeout_s)
            if installed.exit_code != 0:
                raise SystemExit(f"setup failed: {installed}")
        result = session.run(["true"], 30)
        if result.exit_code != 0:
            raise SystemExit(f"sandbox run failed: {result}")
    finally:
        session.close()


def docker_run_once(image: str) -> None:
    subprocess.run(["docker", "run", "--rm", image, "true"], check=True)


def bare_once() -> None:
    subprocess.run(["true"], check=True)


def in_tmp(setup: list[str]) -> list[str]:
    """The setup command installing into /tmp: a plain session's root is read-only, so a
    run without a snapshot installs its dependencies there, every time."""
    redirect = "export FORGEBOT_DEPS=/tmp/deps PYTHONUSERBASE=/tmp/deps/python; "
    return [*setup[:2], redirect + setup[2]]


def median_ms(action: Callable[[], None], runs: int) -> float:
    action()  # warm-up: first use pays for caches and connections
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def make_snapshot(
    sandbox: DockerSandbox, image: str, tree: bytes, setup: list[str]
) -> tuple[str, float]:
    """The setup snapshot and how long making it took, in milliseconds."""
    started = time.perf_counter()
    made = sandbox.snapshot_setup(image, tree, setup, LIMITS, BENCH_LABELS)
    elapsed = (time.perf_counter() - started) * 1000
    if made.image is None:
        raise SystemExit(f"setup failed: {made.result}")
    return made.image, elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--runs", type=int, default=10)
    parser.add_argument("--toolchain", choices=("node", "python"), default="node")
    args = parser.parse_args(argv)
    image = RUNNER_IMAGES[args.toolchain].ref
    setup = NODE_SETUP if args.toolchain == "node" else PYTHON_SETUP

    client = docker.from_env()
    problem = image_status(client, image)
    if problem is not None:
        print(problem, file=sys.stderr)
        return 1
    sandbox = DockerSandbox(client)
    tree = small_tree(args.toolchain)
    snapshot, snapshot_ms = make_snapshot(sandbox, image, tree, setup)
    try:
        sandbox_ms = median_ms(lambda: session_once(sandbox, image, tree, None), args.runs)
        reused_ms = median_ms(lambda: session_once(sandbox, snapshot, tree, None), args.runs)
        fresh_ms = median_ms(lambda: session_once(sandbox, image, tree, in_tmp(setup)), args.runs)
        docker_ms = median_ms(lambda: docker_run_once(image), args.runs)
        bare_ms = median_ms(bare_once, args.runs)
    finally:
        sandbox.remove_snapshot(snapshot)
        client.close()

    print(f"median of {args.runs} runs, image {image}, setup: {' '.join(setup[2:])[:60]}...")
    print(f"  make the setup snapshot (once per job)        {snapshot_ms:9.1f} ms")
    print(f"  snapshot: start+put+run true+close            {reused_ms:9.1f} ms")
    print(f"  fresh: start+put+setup+run true+close         {fresh_ms:9.1f} ms")
    print(f"  sandbox without setup: start+put+run+close    {sandbox_ms:9.1f} ms")
    print(f"  docker run --rm image true                    {docker_ms:9.1f} ms")
    print(f"  subprocess.run(['true'])                      {bare_ms:9.1f} ms")
    print(f"  snapshot / docker run  {reused_ms / docker_ms:8.2f}x")
    print(f"  fresh / docker run     {fresh_ms / docker_ms:8.2f}x")
    print(f"  fresh / snapshot       {fresh_ms / reused_ms:8.2f}x")
    print(f"  snapshot / sandbox     {reused_ms / sandbox_ms:8.2f}x")
    print(f"  sandbox / bare         {sandbox_ms / bare_ms:8.0f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
