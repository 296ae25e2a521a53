"""Concurrent jobs per instance: throughput, wall time and memory per job (issue 9, item 6).

One ``forgebot serve`` process (a subprocess, exactly as deployed: waitress receiver,
APScheduler dispatcher, Docker sandboxes) with ``scheduler.concurrency`` set to the scenario's
value and small sandboxes (``sandbox.memory_mb``), on a local forge whose repository is
``examples/hello-service`` (four trivial tests), with the replay provider answering every
job with the same recorded change. The bench files ``--jobs`` labelled issues in one burst
and times from the first delivery to the last job finished.

Measured per scenario:
- wall time and throughput (jobs/minute), and how the jobs ended;
- the bot process's RSS when ready and idle, its peak (``VmHWM`` from /proc), and memory
  per job = (peak - idle) / jobs;
- the peak number of this process's sandbox containers alive at once (``docker ps``
  polled every 0.25 s, so short-lived sessions may be under-counted).

The baseline is the same jobs in the same run with a low concurrency (default 5), printed
as a ratio. On a small machine the sandboxes are CPU-bound, so expect the ratio to be
bounded by the cores, not by the concurrency setting.

    .venv/bin/python bench/concurrency.py [--jobs 50] [--concurrency 50] [--baseline 5]
                                          [--memory-mb 128]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.config import load_settings
from bot.forges.local import admin
from bot.store import open_store

REPO = Path(__file__).resolve().parents[1]
SECRET = "bench-secret"
REPO_NAME = "acme/hello"
TRANSCRIPT = REPO / "tests" / "fixtures" / "transcripts" / "add_farewell.yaml"


@dataclass(frozen=True)
class Figures:
    concurrency: int
    jobs: int
    wall_s: float
    outcomes: dict[str, int]
    idle_rss_mb: float
    peak_rss_mb: float
    peak_sandboxes: int

    @property
    def per_minute(self) -> float:
        return self.jobs / self.wall_s * 60

    @property
    def per_job_mb(self) -> float:
        return (self.peak_rss_mb - self.idle_rss_mb) / self.jobs


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def proc_kb(pid: int, field: str) -> int:
    """A ``/proc/<pid>/status`` figure in kB (VmRSS now, VmHWM its peak so far)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} missing for pid {pid}")


class SandboxCounter:
    """Polls the engine for the serve process's live sandboxes and keeps the peak.

    The owner label is ``host:pid:token``; matching on the pid keeps other users of the
    same engine (tests running alongside) out of the count.
    """

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def __enter__(self) -> SandboxCounter:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _poll(self) -> None:
        while not self._stop.wait(0.25):
            out = subprocess.run(
                ["docker", "ps", "--filter", "label=forgebot.session=1",
                 "--format", '{{.Label "forgebot.owner"}}'],
                capture_output=True, text=True, check=False).stdout
            mine = sum(line.rsplit(":", 2)[1:2] == [str(self.pid)]
                       for line in out.splitlines() if line.count(":") >= 2)
            self.peak = max(self.peak, mine)


def start_serve(env: dict[str, str], log: Path, base: str) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "bot.cli", "serve"],
                                env={**os.environ, **env}, stdout=out,
                                stderr=subprocess.STDOUT, cwd=REPO)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{base}/readyz", timeout=1).status_code == 200:
                return proc
        except requests.ConnectionError:
            pass
        if proc.poll() is not None:
            raise RuntimeError(f"serve exited early:\n{log.read_text()[-3000:]}")
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError("serve did not become ready")


def run_scenario(concurrency: int, jobs: int, memory_mb: int, work: Path) -> Figures:
    """Start a fresh serve over a fresh forge and store, run ``jobs`` issues, measure."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        "FORGEBOT_DATA_DIR": str(work / "data"),
        "FORGEBOT_FORGES__LOCAL__SECRET": SECRET,
        "FORGEBOT_FORGES__LOCAL__RECEIVER_URL": f"{base}/webhooks/local",
        "FORGEBOT_LLM__PROVIDER": "replay",
        "FORGEBOT_LLM__TRANSCRIPT": str(TRANSCRIPT),
        "FORGEBOT_WEB__PORT": str(port),
        "FORGEBOT_SCHEDULER__CONCURRENCY": str(concurrency),
        # 50 jobs of one user on one repository: the queue limits opened wide.
        "FORGEBOT_POLICY_FILE": str(Path(__file__).resolve().parents[1] / "policies"
                                    / "high-volume.yml"),
        "FORGEBOT_SCHEDULER__TICK_SECONDS": "1",
        "FORGEBOT_SANDBOX__MEMORY_MB": str(memory_mb),
    }
    settings = load_settings(None, environ=env)
    admin.init_repo(settings.local_root, REPO_NAME, REPO / "examples" / "hello-service")
    store = open_store(settings.store_url)
    # The issues exist before the clock starts: filing them is the forge's work, not ours.
    deliveries = []
    for i in range(1, jobs + 1):
        _, made = admin.create_issue(settings.local_root, REPO_NAME, f"Add a farewell {i}",
                                     "Add `farewell(name)` next to `greet`, with tests.",
                                     labels=["forgebot"], author="ada")
        deliveries += made
    proc = start_serve(env, work / "serve.log", base)
    try:
        time.sleep(2)  # let start-up allocations settle before the idle figure
        idle_kb = proc_kb(proc.pid, "VmRSS")
        with SandboxCounter(proc.pid) as sandboxes:
            started = time.monotonic()
            for d in deliveries:
                admin.deliver(env["FORGEBOT_FORGES__LOCAL__RECEIVER_URL"], SECRET, d.event,
                              d.payload)
            while not (len(store.list_jobs(limit=jobs + 1)) == jobs and store.is_idle()):
                if proc.poll() is not None:
                    raise RuntimeError(f"serve died:\n{(work / 'serve.log').read_text()[-3000:]}")
                time.sleep(0.2)
            wall = time.monotonic() - started
        peak_kb = proc_kb(proc.pid, "VmHWM")
    finally:
        proc.terminate()
        proc.wait(timeout=120)
    outcomes = Counter(f"{j.state}/{j.outcome}" for j in store.list_jobs(limit=jobs + 1))
    return Figures(concurrency, jobs, wall, dict(outcomes), idle_kb / 1024, peak_kb / 1024,
                   sandboxes.peak)


def show(f: Figures) -> str:
    return (f"concurrency {f.concurrency:>3}: {f.jobs} jobs in {f.wall_s:6.1f} s = "
            f"{f.per_minute:5.1f} jobs/min; RSS idle {f.idle_rss_mb:.0f} MB, peak "
            f"{f.peak_rss_mb:.0f} MB, {f.per_job_mb:.2f} MB/job; peak sandboxes "
            f"{f.peak_sandboxes}; {f.outcomes}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--baseline", type=int, default=5, help="the baseline's concurrency")
    parser.add_argument("--memory-mb", type=int, default=128, help="sandbox.memory_mb")
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    args = parser.parse_args(argv)
    print(f"{os.cpu_count()} cores; {args.jobs} jobs per scenario; sandbox.memory_mb "
          f"{args.memory_mb}", flush=True)
    results = []
    with tempfile.TemporaryDirectory(prefix="forgebot-bench-") as tmp:
        for concurrency in (args.baseline, args.concurrency):
            figures = run_scenario(concurrency, args.jobs, args.memory_mb,
                                   Path(tmp) / f"c{concurrency}")
            print(show(figures), flush=True)
            results.append(figures)
    baseline, wide = results
    print(f"ratio concurrency {wide.concurrency} / {baseline.concurrency}: throughput "
          f"x{wide.per_minute / baseline.per_minute:.2f}, peak RSS "
          f"x{wide.peak_rss_mb / baseline.peak_rss_mb:.2f}")
    if args.json:
        print(json.dumps([{**f.__dict__, "per_minute": f.per_minute,
                           "per_job_mb": f.per_job_mb} for f in results]))
    return 0 if all(set(f.outcomes) == {"done/submitted"} for f in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
