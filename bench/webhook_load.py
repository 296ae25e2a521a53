"""Webhook load: a burst and a sustained rate against ``forgebot serve`` as deployed.

Two servers run side by side, each a subprocess under waitress with the same settings (the
configured ``web.threads``, 8 by default, and the same ident):

- forgebot: ``forgebot serve --role receiver``, exactly as the Helm chart's receiver runs, over
  its own temporary data dir and SQLite store, or a fresh database on the PostgreSQL server
  named by --postgres-url, FORGEBOT_BENCH_POSTGRES_URL or FORGEBOT_TEST_POSTGRES_URL. Each
  delivery is verified (HMAC-SHA256), checked as JSON and stored before the 202.
- the baseline: a no-op WSGI app (reads the body, answers 202) under ``waitress.serve``.

Each target gets the same two phases, one target at a time so they never share the CPU:

- burst: --burst distinct signed deliveries (1,000), sent as fast as --concurrency client
  connections (32, keep-alive) allow; latency is from send to answer;
- sustained: --rate deliveries a second (50) for --seconds (60), sent on a fixed schedule
  whether or not earlier ones were answered (open loop); latency is from the moment a
  delivery was due, so a server that falls behind is charged for the queue it builds.

Figures per phase and target: sent, acknowledged (2xx), errors, achieved rate (acknowledged
over the phase's wall time), p50 and p99 latency, and the server process's CPU time per
delivery (steadier than wall-clock figures on a shared machine); then forgebot's over the
no-op's.
Nothing lost: afterwards the store is read and every delivery id sent to forgebot (warm-up
included) must be stored exactly once; the script exits 1 if any is missing, duplicated or
unexpected, or if any request failed.

    .venv/bin/python bench/webhook_load.py [--burst 1000] [--rate 50] [--seconds 60]
                                           [--concurrency 32] [--json PATH]
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import platform
import queue
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.config import load_settings
from bot.forges.local.webhook import (
    DELIVERY_HEADER,
    issue_payload,
    issues_event,
    repository_payload,
    signed_headers,
)
from bot.store.db import make_engine, normalise_url
from bot.store.models import Delivery as DeliveryRow

REPO = Path(__file__).resolve().parents[1]
SECRET = "bench-" + secrets.token_hex(16)
FORGE = "local"
WEBHOOK_PATH = "/webhooks/local"
WARMUP = 50  # deliveries per target before any clock starts
READY_SECONDS = 60.0
REQUEST_TIMEOUT = 30.0


@dataclass(frozen=True)
class Delivery:
    """One signed delivery, built before the clock starts."""

    id: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Outcome:
    """What one request came back with: a status (0 on a transport error) and its latency."""

    delivery: str
    status: int
    error: str
    seconds: float


@dataclass
class Figures:
    """One phase against one target."""

    sent: int
    acknowledged: int
    errors: dict[str, int]
    wall_s: float
    rate_per_s: float
    p50_ms: float
    p99_ms: float
    server_cpu_ms_per_delivery: float


@dataclass
class StoreCheck:
    """Delivery ids sent to forgebot against the rows in its store."""

    sent: int
    acknowledged: int
    rows: int
    distinct: int
    duplicated: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    acknowledged_but_missing: list[str] = field(default_factory=list)

    @property
    def intact(self) -> bool:
        return not (self.duplicated or self.missing or self.unexpected)


# --------------------------------------------------------------------- deliveries


class Numbers:
    """Issue numbers for the deliveries, distinct across the whole run."""

    def __init__(self) -> None:
        self._next = 1

    def take(self, n: int) -> range:
        taken = range(self._next, self._next + n)
        self._next += n
        return taken


def make_deliveries(numbers: Iterable[int]) -> list[Delivery]:
    """``issues``/``labeled`` deliveries, one per issue number, each with a fresh id."""
    repo = repository_payload("acme/hello", "main")
    out = []
    for number in numbers:
        issue = issue_payload(number, f"Load issue {number}", "Add a farewell next to greet.",
                              ["forgebot"], "ada", pull=False)
        body = json.dumps(issues_event("labeled", repo, issue, "ada", label="forgebot")).encode()
        headers = signed_headers(SECRET, "issues", body)
        out.append(Delivery(headers[DELIVERY_HEADER], headers, body))
    return out


# --------------------------------------------------------------------- client


def post(conn: http.client.HTTPConnection, path: str, item: Delivery) -> int:
    """POST one delivery over a keep-alive connection; the status code."""
    conn.request("POST", path, body=item.body, headers=item.headers)
    response = conn.getresponse()
    response.read()  # drain it, or the connection cannot carry the next request
    return response.status


def run_phase(port: int, path: str, work: list[Delivery], concurrency: int,
              rate: float | None) -> tuple[list[Outcome], float]:
    """Send ``work`` through ``concurrency`` connections; the outcomes and the wall time.

    With ``rate`` None every delivery is due at once (a burst) and latency runs from the send;
    otherwise delivery ``i`` is due at ``start + i / rate`` and latency runs from then.
    No request is retried: a failure is an error in the figures, not a second attempt.
    """
    todo: queue.Queue[tuple[float | None, Delivery] | None] = queue.Queue()
    outcomes: list[Outcome] = []

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT)
        while (job := todo.get()) is not None:
            due, item = job
            sent = time.perf_counter()
            status, error = 0, ""
            try:
                status = post(conn, path, item)
            except (OSError, http.client.HTTPException) as exc:
                error = type(exc).__name__
                conn.close()  # http.client reconnects on the next request
            done = time.perf_counter()
            outcomes.append(Outcome(item.id, status, error, done - (sent if due is None else due)))
        conn.close()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    start = time.perf_counter()
    for index, item in enumerate(work):
        due = None if rate is None else start + index / rate
        if due is not None:
            time.sleep(max(0.0, due - time.perf_counter()))
        todo.put((due, item))
    for _ in threads:
        todo.put(None)
    for thread in threads:
        thread.join()
    return outcomes, time.perf_counter() - start


def percentile(values: list[float], q: float) -> float:
    """The nearest-rank ``q``-th percentile of ``values`` in milliseconds (NaN when empty)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = min(max(1, math.ceil(q / 100 * len(ordered))), len(ordered))
    return ordered[rank - 1] * 1000


def summarise(outcomes: list[Outcome], wall: float, cpu: float) -> Figures:
    """Figures of one phase; ``cpu`` is the server's CPU seconds over the phase."""
    acked = [o.seconds for o in outcomes if 200 <= o.status < 300]
    errors = Counter(o.error or f"HTTP {o.status}" for o in outcomes if not 200 <= o.status < 300)
    return Figures(sent=len(outcomes), acknowledged=len(acked), errors=dict(errors),
                   wall_s=wall, rate_per_s=len(acked) / wall if wall else 0.0,
                   p50_ms=percentile(acked, 50), p99_ms=percentile(acked, 99),
                   server_cpu_ms_per_delivery=cpu * 1000 / len(outcomes) if outcomes else 0.0)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` so far (Linux ``/proc``).

    On a shared machine, wall-clock figures move with other people's load; the server's own
    CPU per delivery moves much less, so it is reported beside them.
    """
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2:].split()  # the command name may contain spaces
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --------------------------------------------------------------------- servers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def forgebot_command() -> list[str]:
    """The installed ``forgebot`` console script (what the image runs), else the module."""
    script = Path(sys.executable).parent / "forgebot"
    base = [str(script)] if script.exists() else [sys.executable, "-m", "bot.cli"]
    return [*base, "serve", "--role", "receiver"]


def noop_command(port: int, threads: int) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), "--serve-noop", str(port),
            "--threads", str(threads)]


def noop_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """The baseline: read the body as the receiver must, answer 202, do nothing else."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    environ["wsgi.input"].read(length)
    # GET is the readiness probe's, as /readyz is forgebot's.
    status = "202 Accepted" if environ["REQUEST_METHOD"] == "POST" else "200 OK"
    start_response(status, [("Content-Type", "application/json"),
                                    ("Content-Length", "2")])
    return [b"{}"]


def serve_noop(port: int, threads: int) -> None:
    """Serve ``noop_app`` the way ``forgebot serve`` serves its app."""
    import waitress

    waitress.serve(noop_app, host="127.0.0.1", port=port, threads=threads, ident="forgebot")


def answers(port: int, path: str) -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        conn.request("GET", path)
        return conn.getresponse().status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


@contextmanager
def running(name: str, cmd: list[str], env: dict[str, str], log: Path, port: int,
            ready_path: str) -> Iterator[subprocess.Popen[bytes]]:
    """Start ``cmd``, wait until GET ``ready_path`` answers 200, stop it with SIGTERM after."""
    with log.open("ab") as out:
        proc = subprocess.Popen(cmd, env={**os.environ, **env}, stdout=out,
                                stderr=subprocess.STDOUT, cwd=REPO)
    try:
        deadline = time.monotonic() + READY_SECONDS
        while not answers(port, ready_path):
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited early:\n{log.read_text()[-3000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} not ready in {READY_SECONDS:.0f} s:\n"
                                   f"{log.read_text()[-3000:]}")
            time.sleep(0.1)
        yield proc
        if proc.poll() is not None:
            raise RuntimeError(f"{name} died during the run:\n{log.read_text()[-3000:]}")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# --------------------------------------------------------------------- stores


def postgres_server(explicit: str | None) -> str | None:
    url = (explicit or os.environ.get("FORGEBOT_BENCH_POSTGRES_URL")
           or os.environ.get("FORGEBOT_TEST_POSTGRES_URL"))
    return normalise_url(url) if url else None


@contextmanager
def store_url(server: str | None, tmp: Path) -> Iterator[str]:
    """SQLite in ``tmp``, or a fresh database on the PostgreSQL ``server``, dropped after."""
    if server is None:
        yield f"sqlite:///{tmp / 'data' / 'forgebot.db'}"
        return
    name = f"forgebot_bench_{secrets.token_hex(4)}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(server).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def check_store(url: str, sent: list[str], acknowledged: set[str]) -> StoreCheck:
    """Count the stored rows per delivery id and compare them with what was sent."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                select(DeliveryRow.delivery_id, func.count())
                .where(DeliveryRow.forge == FORGE).group_by(DeliveryRow.delivery_id)
            )
            counts: dict[str, int] = {delivery: n for delivery, n in rows}
    finally:
        engine.dispose()
    sent_set = set(sent)
    return StoreCheck(
        sent=len(sent), acknowledged=len(acknowledged), rows=sum(counts.values()),
        distinct=len(counts),
        duplicated=sorted(d for d, n in counts.items() if n > 1),
        missing=sorted(sent_set - counts.keys()),
        unexpected=sorted(counts.keys() - sent_set),
        acknowledged_but_missing=sorted(acknowledged - counts.keys()),
    )


# --------------------------------------------------------------------- the run


@dataclass
class Target:
    """A server under test and the delivery ids it was sent."""

    name: str
    port: int
    path: str
    pid: int = 0  # the server process, once started
    sent: list[str] = field(default_factory=list)
    acknowledged: set[str] = field(default_factory=set)

    def run(self, work: list[Delivery], concurrency: int, rate: float | None) -> Figures:
        self.sent += [item.id for item in work]
        cpu = cpu_seconds(self.pid)
        outcomes, wall = run_phase(self.port, self.path, work, concurrency, rate)
        cpu = cpu_seconds(self.pid) - cpu
        self.acknowledged |= {o.delivery for o in outcomes if 200 <= o.status < 300}
        return summarise(outcomes, wall, cpu)


def measure(targets: list[Target], args: argparse.Namespace) -> dict[str, dict[str, Figures]]:
    """Warm both targets up, then run each phase on each target in turn."""
    numbers = Numbers()
    for target in targets:
        target.run(make_deliveries(numbers.take(WARMUP)), args.concurrency, None)
    phases: dict[str, dict[str, Figures]] = {"burst": {}, "sustained": {}}
    for target in targets:
        work = make_deliveries(numbers.take(args.burst))
        phases["burst"][target.name] = target.run(work, args.concurrency, None)
    for target in targets:
        work = make_deliveries(numbers.take(round(args.rate * args.seconds)))
        phases["sustained"][target.name] = target.run(work, args.concurrency, args.rate)
    return phases


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Start both servers, measure, stop them, check the store; the figures as a dict."""
    server = postgres_server(args.postgres_url)
    with tempfile.TemporaryDirectory(prefix="forgebot-load-") as tmp_name:
        tmp = Path(tmp_name)
        with store_url(server, tmp) as url:
            bot_port, noop_port = free_port(), free_port()
            env = {"FORGEBOT_DATA_DIR": str(tmp / "data"), "FORGEBOT_STORE__URL": url,
                   "FORGEBOT_FORGES__LOCAL__SECRET": SECRET, "FORGEBOT_WEB__HOST": "127.0.0.1",
                   "FORGEBOT_WEB__PORT": str(bot_port)}
            if args.threads is not None:
                env["FORGEBOT_WEB__THREADS"] = str(args.threads)
            threads = load_settings(None, environ=env).web.threads
            noop = Target("no-op", noop_port, WEBHOOK_PATH)
            bot = Target("forgebot", bot_port, WEBHOOK_PATH)
            load_before = os.getloadavg()
            with (running("forgebot serve", forgebot_command(), env, tmp / "serve.log",
                          bot_port, "/readyz") as bot_proc,
                  running("no-op server", noop_command(noop_port, threads), {},
                          tmp / "noop.log", noop_port, "/") as noop_proc):
                bot.pid, noop.pid = bot_proc.pid, noop_proc.pid
                phases = measure([noop, bot], args)
            store = check_store(url, bot.sent, bot.acknowledged)
    return {
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "load_before": load_before, "load_after": os.getloadavg()},
        "settings": {"burst": args.burst, "rate": args.rate, "seconds": args.seconds,
                     "concurrency": args.concurrency, "threads": threads, "warmup": WARMUP,
                     "store": "postgresql" if server else "sqlite"},
        "phases": {phase: {name: asdict(f) for name, f in figs.items()}
                   for phase, figs in phases.items()},
        "ratios": {phase: ratios(figs["forgebot"], figs["no-op"])
                   for phase, figs in phases.items()},
        "store": {**asdict(store), "intact": store.intact},
    }


def ratios(ours: Figures, base: Figures) -> dict[str, float]:
    def div(a: float, b: float) -> float:
        return a / b if b else float("nan")

    return {"rate": div(ours.rate_per_s, base.rate_per_s), "p50": div(ours.p50_ms, base.p50_ms),
            "p99": div(ours.p99_ms, base.p99_ms),
            "cpu": div(ours.server_cpu_ms_per_delivery, base.server_cpu_ms_per_delivery)}


# --------------------------------------------------------------------- report


def report(result: dict[str, Any]) -> None:
    s, m = result["settings"], result["machine"]
    print(f"forgebot serve --role receiver ({s['store']}) vs a no-op WSGI app; both waitress, "
          f"{s['threads']} threads; {s['concurrency']} client connections; "
          f"{m['cpus']} CPUs, load {m['load_before'][0]:.1f} -> {m['load_after'][0]:.1f}")
    for phase, figs in result["phases"].items():
        what = (f"{s['burst']} deliveries, as fast as possible" if phase == "burst"
                else f"{s['rate']:g}/s for {s['seconds']:g} s, latency from the due time")
        print(f"\n{phase}: {what}")
        print(f"  {'target':<9} {'sent':>6} {'acked':>6} {'errors':>6} {'rate/s':>8} "
              f"{'p50 ms':>8} {'p99 ms':>8} {'server CPU ms/delivery':>23}")
        for name, f in figs.items():
            print(f"  {name:<9} {f['sent']:>6} {f['acknowledged']:>6} "
                  f"{sum(f['errors'].values()):>6} {f['rate_per_s']:>8.1f} {f['p50_ms']:>8.2f} "
                  f"{f['p99_ms']:>8.2f} {f['server_cpu_ms_per_delivery']:>23.2f}"
                  + (f"  {f['errors']}" if f["errors"] else ""))
        r = result["ratios"][phase]
        print(f"  forgebot / no-op: rate {r['rate']:.2f}x, p50 {r['p50']:.2f}x, "
              f"p99 {r['p99']:.2f}x, server CPU per delivery {r['cpu']:.2f}x")
    st = result["store"]
    verdict = "nothing lost" if st["intact"] else "LOST OR DUPLICATED DELIVERIES"
    print(f"\nstore: {st['sent']} delivery ids sent to forgebot (warm-up included), "
          f"{st['acknowledged']} acknowledged; {st['rows']} rows, {st['distinct']} distinct; "
          f"{len(st['duplicated'])} duplicated, {len(st['missing'])} missing "
          f"({len(st['acknowledged_but_missing'])} of them acknowledged), "
          f"{len(st['unexpected'])} unexpected: {verdict}")
    for key in ("duplicated", "missing", "unexpected"):
        if st[key]:
            print(f"  {key}: {', '.join(st[key][:10])}{' ...' if len(st[key]) > 10 else ''}")


def failed(result: dict[str, Any]) -> bool:
    """True when a delivery was lost or duplicated, or any request failed."""
    errors = sum(sum(f["errors"].values()) for figs in result["phases"].values()
                 for f in figs.values())
    return errors > 0 or not result["store"]["intact"]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--burst", type=int, default=1000, help="deliveries in the burst")
    parser.add_argument("--rate", type=float, default=50.0, help="sustained deliveries/s")
    parser.add_argument("--seconds", type=float, default=60.0, help="sustained phase length")
    parser.add_argument("--concurrency", type=int, default=32, help="client connections")
    parser.add_argument("--threads", type=int, default=None,
                        help="waitress threads for both servers (default: web.threads)")
    parser.add_argument("--postgres-url", default=None,
                        help="PostgreSQL server to create a fresh database on (default: SQLite)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument("--serve-noop", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    for name in ("burst", "concurrency"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    if args.rate <= 0 or args.seconds <= 0:
        parser.error("--rate and --seconds must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve_noop is not None:
        serve_noop(args.serve_noop, args.threads or 8)
        return 0
    result = run(args)
    report(result)
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 1 if failed(result) else 0


if __name__ == "__main__":
    sys.exit(main())
