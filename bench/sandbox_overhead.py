"""What one sandboxed command costs, against plain Docker and no sandbox at all.

Measures, N times each (default 10), the median of:

- sandbox: DockerSandbox start + put a small tree + run `true` + read the result + close;
- docker run: `docker run --rm <image> true` through the docker CLI;
- bare: `subprocess.run(["true"])` on the host.

Prints the medians in milliseconds and their ratios. Needs a Docker engine and the runner
image (`make runner-image`).

    .venv/bin/python bench/sandbox_overhead.py [-n 10] [--image forgebot-runner-python:1]
"""

from __future__ import annotations

import argparse
import io
import statistics
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable

import docker

from bot.sandbox.base import Limits
from bot.sandbox.docker import RUNNER_IMAGE, DockerSandbox, image_status

BENCH_LABELS = {"forgebot.bench": "sandbox_overhead"}


def small_tree() -> bytes:
    """A tar of a handful of small files, about what a tiny repository holds."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for index in range(10):
            data = f"def test_{index}():\n    assert {index} == {index}\n".encode()
            member = tarfile.TarInfo(f"tests/test_{index}.py")
            member.size, member.uid, member.gid, member.mode = len(data), 1000, 1000, 0o644
            tar.addfile(member, io.BytesIO(data))
    return buffer.getvalue()


def sandbox_once(sandbox: DockerSandbox, image: str, tree: bytes) -> None:
    session = sandbox.start(image, Limits(), BENCH_LABELS)
    try:
        session.put(tree)
        result = session.run(["true"], 30)
        if result.exit_code != 0:
            raise SystemExit(f"sandbox run failed: {result}")
    finally:
        session.close()


def docker_run_once(image: str) -> None:
    subprocess.run(["docker", "run", "--rm", image, "true"], check=True)


def bare_once() -> None:
    subprocess.run(["true"], check=True)


def median_ms(action: Callable[[], None], runs: int) -> float:
    action()  # warm-up: first use pays for caches and connections
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--runs", type=int, default=10)
    parser.add_argument("--image", default=RUNNER_IMAGE)
    args = parser.parse_args(argv)

    client = docker.from_env()
    problem = image_status(client, args.image)
    if problem is not None:
        print(problem, file=sys.stderr)
        return 1
    sandbox = DockerSandbox(client)
    tree = small_tree()
    try:
        sandbox_ms = median_ms(lambda: sandbox_once(sandbox, args.image, tree), args.runs)
        docker_ms = median_ms(lambda: docker_run_once(args.image), args.runs)
        bare_ms = median_ms(bare_once, args.runs)
    finally:
        client.close()

    print(f"median of {args.runs} runs, image {args.image}")
    print(f"  sandbox (start+put+run+read+close) {sandbox_ms:9.1f} ms")
    print(f"  docker run --rm image true         {docker_ms:9.1f} ms")
    print(f"  subprocess.run(['true'])           {bare_ms:9.1f} ms")
    print(f"  sandbox / docker run  {sandbox_ms / docker_ms:8.2f}x")
    print(f"  sandbox / bare        {sandbox_ms / bare_ms:8.0f}x")
    print(f"  docker run / bare     {docker_ms / bare_ms:8.0f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
