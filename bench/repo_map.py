"""Repo map build time: forgebot's code index against aider's RepoMap, same files, same budget.

The project mapped is a real one from PyPI: the scrapy 2.11.2 sdist (347 Python files, tests
included), downloaded with pip into var/bench/downloads and unpacked once. aider-chat 0.86.2
runs in its own virtual environment, var/bench/aider-venv, created by this script when it is
missing; it is kept offline with LITELLM_LOCAL_MODEL_COST_MAP=True and HOME pointed at a
temporary folder.

Both sides get the same file list, the same task text (aider as its "mentioned identifiers",
split the way its coder splits a message), the same token budget and the same token counter
(characters / 4, rounded up), so the figures price indexing, ranking and rendering alone.
Every measurement is a fresh process, timed inside it around the map call only (import
time is reported apart). Three states per run, each tool in its own copy of the project:

- cold: no cache at all;
- unchanged: the same files again, cache warm;
- one file changed: a function appended to one module, then the map again.

    .venv/bin/python bench/repo_map.py [--runs 3] [--budget 1024]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

BENCH = REPO / "var" / "bench"
AIDER_VENV = BENCH / "aider-venv"
AIDER_REQUIREMENT = "aider-chat==0.86.2"
PROJECT, VERSION = "scrapy", "2.11.2"
TASK = (
    "HttpCompressionMiddleware.process_response should honour DOWNLOAD_MAXSIZE while "
    "decompressing, and raise IgnoreRequest with the size in the message"
)
TARGET = "scrapy/downloadermiddlewares/httpcompression.py"  # defines what the task names
CHANGED = "scrapy/utils/misc.py"
STATES = ("cold", "unchanged", "one file changed")

# Runs in aider's virtual environment: argv = root, budget, task; stdin = the file list.
AIDER_DRIVER = r"""
import json, os, re, sys, time
started = time.perf_counter()
from aider.io import InputOutput
from aider.repomap import RepoMap
imported = time.perf_counter() - started

class Counter:
    # Stands in for aider's Model: RepoMap only calls token_count on it.
    def token_count(self, text):
        return -(-len(text) // 4)

root, budget, task = sys.argv[1], int(sys.argv[2]), sys.argv[3]
files = [os.path.join(root, line) for line in sys.stdin.read().splitlines() if line]
io = InputOutput(pretty=False, yes=True, fancy_input=False)
repo_map = RepoMap(map_tokens=budget, root=root, main_model=Counter(), io=io, refresh="always")
idents = set(re.split(r"\W+", task)) - {""}
start = time.perf_counter()
text = repo_map.get_repo_map([], files, set(), idents) or ""
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "import_seconds": imported, "text": text}))
"""


@dataclass(frozen=True)
class Measure:
    seconds: float
    import_seconds: float
    text: str
    detail: str = ""


# --------------------------------------------------------------------- child: forgebot


def child_ours(root: Path, cache: Path, budget: int, task: str) -> None:
    """One forgebot measurement in this process: index (cached) and render the map."""
    started = time.perf_counter()
    from bot.agent.codeindex import index_repository, repo_map

    imported = time.perf_counter() - started
    files = [line for line in sys.stdin.read().splitlines() if line]
    start = time.perf_counter()
    index, stats = index_repository(root, cache, files)
    text = repo_map(index, task, [], budget, count_tokens)
    seconds = time.perf_counter() - start
    detail = f"parsed {stats.parsed}, reused {stats.reused}, index {stats.seconds:.2f} s"
    print(json.dumps({"seconds": seconds, "import_seconds": imported, "text": text,
                      "detail": detail}))


def count_tokens(text: str) -> int:
    return -(-len(text) // 4)


# --------------------------------------------------------------------- setup


def project_tree() -> Path:
    """The unpacked sdist, downloaded with pip the first time."""
    tree = BENCH / f"{PROJECT}-{VERSION}"
    if tree.is_dir():
        return tree
    downloads = BENCH / "downloads"
    archive = downloads / f"{PROJECT}-{VERSION}.tar.gz"
    if not archive.exists():
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary",
                        ":all:", f"{PROJECT}=={VERSION}", "-d", str(downloads)], check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(BENCH, filter="data")
    return tree


def aider_python() -> Path:
    """aider's interpreter, installing aider-chat into its own venv when it is missing."""
    python = AIDER_VENV / "bin" / "python"
    probe = [str(python), "-c", "import aider.repomap"]
    if python.exists() and subprocess.run(probe, capture_output=True, check=False).returncode == 0:
        return python
    print(f"installing {AIDER_REQUIREMENT} into {AIDER_VENV} (once) ...", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(AIDER_VENV)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", AIDER_REQUIREMENT], check=True)
    return python


def source_files(tree: Path) -> list[str]:
    from bot.agent.codeindex import language_of

    return sorted(
        path.relative_to(tree).as_posix()
        for path in tree.rglob("*")
        if path.is_file() and language_of(path.name) is not None
    )


def change_one_file(root: Path) -> None:
    path = root / CHANGED
    with path.open("a", encoding="utf-8") as handle:
        handle.write("\n\ndef bench_added_helper(value):\n    return value\n")
    # Make sure an mtime-keyed cache (aider's) sees the change even on a coarse clock.
    stamp = time.time() + 2
    os.utime(path, (stamp, stamp))


# --------------------------------------------------------------------- driver


def measure(command: list[str], files: list[str], env: dict[str, str]) -> Measure:
    done = subprocess.run(command, input="\n".join(files), capture_output=True, text=True,
                          env=env, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{command[0]} failed:\n{done.stderr[-3000:]}")
    data = json.loads(done.stdout.strip().splitlines()[-1])
    return Measure(data["seconds"], data["import_seconds"], data["text"], data.get("detail", ""))


def run_once(tree: Path, files: list[str], budget: int, aider: Path,
             scratch: Path) -> dict[str, dict[str, Measure]]:
    home = scratch / "home"
    home.mkdir(exist_ok=True)
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "HOME": str(home),
           "PYTHONPATH": str(REPO)}
    ours_root, aider_root = scratch / "ours", scratch / "aider"
    shutil.copytree(tree, ours_root)
    shutil.copytree(tree, aider_root)
    commands = {
        "forgebot": [sys.executable, __file__, "--child", str(ours_root),
                     str(scratch / "ours-cache"), str(budget)],
        "aider": [str(aider), "-c", AIDER_DRIVER, str(aider_root), str(budget), TASK],
    }
    roots = {"forgebot": ours_root, "aider": aider_root}
    results: dict[str, dict[str, Measure]] = {}
    for tool, command in commands.items():
        results[tool] = {}
        for state in STATES:
            if state == "one file changed":
                change_one_file(roots[tool])
            results[tool][state] = measure(command, files, env)
    return results


def median(runs: list[dict[str, dict[str, Measure]]], tool: str, state: str) -> float:
    return statistics.median(run[tool][state].seconds for run in runs)


def report(runs: list[dict[str, dict[str, Measure]]], files: list[str], budget: int) -> None:
    print(f"repo map of {PROJECT} {VERSION}: {len(files)} files, budget {budget} tokens "
          f"(characters/4 for both), median of {len(runs)} run(s), seconds inside the process")
    print(f"  {'state':<18} {'forgebot':>10} {'aider 0.86.2':>13} {'forgebot/aider':>15}")
    for state in STATES:
        ours, theirs = median(runs, "forgebot", state), median(runs, "aider", state)
        print(f"  {state:<18} {ours:>9.3f}s {theirs:>12.3f}s {ours / theirs:>14.2f}x"
              f"   ({theirs / ours:.1f}x faster)")
    last = runs[-1]
    print("  import time: forgebot "
          f"{statistics.median(r['forgebot']['cold'].import_seconds for r in runs):.2f} s, "
          f"aider {statistics.median(r['aider']['cold'].import_seconds for r in runs):.2f} s")
    print(f"  forgebot index: cold {last['forgebot']['cold'].detail}; "
          f"changed {last['forgebot']['one file changed'].detail}")
    for tool in ("forgebot", "aider"):
        text = last[tool]["cold"].text
        print(f"  {tool} map: {count_tokens(text)} tokens, {len(text.splitlines())} lines, "
              f"names {TARGET}: {'yes' if TARGET in text else 'no'}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--budget", type=int, default=1024)
    parser.add_argument("--child", nargs=3, metavar=("ROOT", "CACHE", "BUDGET"),
                        help=argparse.SUPPRESS)
    parser.add_argument("--show", action="store_true", help="print both maps of the last run")
    args = parser.parse_args()
    if args.child:
        root, cache, budget = args.child
        child_ours(Path(root), Path(cache), int(budget), TASK)
        return
    tree = project_tree()
    aider = aider_python()
    files = source_files(tree)
    runs = []
    for number in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="forgebot-repomap-") as scratch:
            runs.append(run_once(tree, files, args.budget, aider, Path(scratch)))
        print(f"run {number + 1}/{args.runs} done", flush=True)
    report(runs, files, args.budget)
    if args.show:
        for tool in ("forgebot", "aider"):
            print(f"\n----- {tool} map (cold, last run)\n{runs[-1][tool]['cold'].text}")


if __name__ == "__main__":
    main()
