"""What the execution and structural gates add to a job's verify stage.

On the project's own example repository (``examples/hello-service``) with a small change (a
function and its test), in one run:

- **verify**: the verify stage as it was: a fresh sandbox, the trusted tree put in, the test
  command run, the sandbox closed;
- **verify + gates**: what a job's verify stage does now: the structural gate
  (``bot.analyzer.analyze`` with the shipped rules, the base's copy beside the tree) in a
  thread of its own, waited for before anything is decided; the verify run with canaries
  planted (``bot.pipeline.canaries``) inside a network sink's namespace
  (``DockerSandbox.start_observed``); beside it, as the pipeline does, the base commit's
  suite, since the change touches a test file; then the canary search and the two reports
  compared (``bot.pipeline.weakening``).

Goals (issue 21): verify + gates ≤ 1.5x verify, and ≤ 2 s added. Prints the medians, the
ratio and the time added, and the analyzer alone.

    .venv/bin/python bench/gates.py [-n RUNS]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import docker

from bot import analyzer
from bot.pipeline import weakening
from bot.pipeline.canaries import plant
from bot.sandbox.base import Limits, Result
from bot.sandbox.docker import DockerSandbox, image_status
from bot.sandbox.tarball import tar_directory
from bot.sandbox.toolchain import Toolchain, ToolchainOverride, detect_toolchain, read_marker_files

ROOT = Path(__file__).resolve().parents[1]
IMAGES = {"python": "forgebot-runner-python:1"}
LABELS = {"forgebot.bench": "gates"}
LIMITS = Limits(timeout_s=120)
FUNCTION = '\n\ndef shout(name: str) -> str:\n    return f"{name.upper()}!"\n'
TEST = ('\n\ndef test_shout():\n    from hello_service.app import shout\n\n'
        '    assert shout("ada") == "ADA!"\n')


def _change(tree: Path) -> dict[str, list[int]]:
    """Add a function and its test; the line numbers each file gained."""
    added: dict[str, list[int]] = {}
    for path, text in (("hello_service/app.py", FUNCTION), ("tests/test_app.py", TEST)):
        file = tree / path
        before = file.read_text()
        file.write_text(before + text)
        start = len(before.splitlines()) + 1
        added[path] = list(range(start, start + len(text.splitlines())))
    return added


def _median_s(action: Callable[[], None], runs: int) -> float:
    action()  # warm-up: the first run pays for caches
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--runs", type=int, default=7)
    args = parser.parse_args(argv)
    client = docker.from_env()
    problem = image_status(client, IMAGES["python"])
    if problem is not None:
        print(problem, file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="forgebot-bench-gates-") as scratch:
        base, tree = Path(scratch) / "base", Path(scratch) / "tree"
        shutil.copytree(ROOT / "examples" / "hello-service", base)
        shutil.copytree(base, tree)
        added = _change(tree)
        found = detect_toolchain(read_marker_files(tree), ToolchainOverride(), IMAGES)
        if not isinstance(found, Toolchain) or found.setup is not None:
            print(f"unexpected toolchain for the example: {found}", file=sys.stderr)
            return 1
        sandbox = DockerSandbox(client)
        archive = tar_directory(tree)

        def plain(tree: bytes, command: list[str]) -> Result:
            session = sandbox.start(found.image, LIMITS, LABELS)
            try:
                session.put(tree)
                result = session.run(command, LIMITS.timeout_s)
            finally:
                session.close()
            if result.exit_code != 0:
                raise SystemExit(f"the tests failed: {result.stdout[-500:]}")
            return result

        def analyze() -> None:
            if analyzer.analyze(tree, added, base=base):
                raise SystemExit("the structural gate flagged the benchmark's honest change")

        base_archive = tar_directory(base)

        def observed(tree: bytes, command: list[str]) -> Result:
            session = sandbox.start_observed(found.image, LIMITS, LABELS, IMAGES["python"])
            try:
                session.put(tree)
                result = session.run(command, LIMITS.timeout_s)
            finally:
                session.close()
            if result.exit_code != 0 or session.attempts:
                raise SystemExit(f"the honest run failed or reached out: {result.stdout[-500:]}")
            return result

        def gated() -> None:
            canaries = plant()
            with ThreadPoolExecutor(max_workers=2) as pool:
                structure = pool.submit(analyze)
                before = pool.submit(plain, base_archive, found.test)
                after = observed(archive, canaries.wrap(found.test))
                compared = weakening.compare(before.result(), after)
                structure.result()
            if canaries.seen(after.stdout + after.stderr) or compared is None \
                    or compared.weakened:
                raise SystemExit("a gate stopped the benchmark's honest change")
            canaries.redact(after.stdout)

        def verify() -> None:
            plain(archive, found.test)

        verify_s = _median_s(verify, args.runs)
        gated_s = _median_s(gated, args.runs)
        analyze_s = _median_s(analyze, args.runs)
    client.close()
    print(f"median of {args.runs} runs, examples/hello-service, test: {' '.join(found.test)}")
    print(f"  verify (sandbox + tests)               {verify_s:7.2f} s")
    print(f"  verify + gates (analysis, canaries,    {gated_s:7.2f} s")
    print("    network sink, base suite beside it)")
    print(f"  the structural gate alone              {analyze_s:7.2f} s")
    print(f"  added by the gates                     {gated_s - verify_s:7.2f} s   (goal <= 2 s)")
    print(f"  verify + gates / verify                {gated_s / verify_s:7.2f}x  (goal <= 1.5x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
