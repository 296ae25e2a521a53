"""Webhook acknowledgement: /webhooks/local against a no-op route in the same server and run.

Each delivery is verified (HMAC-SHA256), checked as JSON and stored in SQLite before the 202,
which is what the ratio prices. Prints deliveries per second and p50/p99 latency of both.

    .venv/bin/python bench/webhook_ack.py [--requests 2000] [--clients 4]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
from flask import Flask
from waitress.server import create_server

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.config import load_settings
from bot.forges import build_forges
from bot.forges.verify import sign_sha256
from bot.store import open_store
from bot.web import create_app

SECRET = "bench-secret"


def make_app(data_dir: Path) -> Flask:
    settings = load_settings(None, environ={"FORGEBOT_DATA_DIR": str(data_dir),
                                            "FORGEBOT_FORGES__LOCAL__SECRET": SECRET})
    app = create_app(open_store(settings.store_url), build_forges(settings))
    app.add_url_rule("/noop", "noop", lambda: ("", 202), methods=["POST"])
    return app


def deliveries(n: int) -> list[tuple[dict[str, str], bytes]]:
    out = []
    for i in range(n):
        body = json.dumps({"action": "labeled", "repository": {"full_name": "acme/hello"},
                           "issue": {"number": i, "title": "t", "body": "b", "labels": [],
                                     "user": {"login": "ada"}},
                           "label": {"name": "forgebot"}, "sender": {"login": "ada"}}).encode()
        out.append(({"Content-Type": "application/json", "X-Forgebot-Event": "issues",
                     "X-Forgebot-Delivery": str(uuid.uuid4()),
                     "X-Forgebot-Signature-256": "sha256=" + sign_sha256(SECRET, body)}, body))
    return out


def drive(
    url: str, work: list[tuple[dict[str, str], bytes]], clients: int
) -> tuple[float, list[float]]:
    local = threading.local()

    def one(item: tuple[dict[str, str], bytes]) -> float:
        session = getattr(local, "s", None) or requests.Session()
        local.s = session
        start = time.perf_counter()
        response = session.post(url, data=item[1], headers=item[0], timeout=30)
        elapsed = time.perf_counter() - start
        if response.status_code != 202:
            raise SystemExit(f"{url}: unexpected {response.status_code}")
        return elapsed

    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        latencies = list(pool.map(one, work))
    return time.perf_counter() - start, latencies


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = create_server(make_app(Path(tmp)), host="127.0.0.1", port=0, threads=8)
        port = server.effective_port  # type: ignore[union-attr]
        threading.Thread(target=server.run, daemon=True).start()
        base = f"http://127.0.0.1:{port}"
        drive(f"{base}/noop", deliveries(100), args.clients)  # warm up both paths
        drive(f"{base}/webhooks/local", deliveries(100), args.clients)
        results = {}
        for name, path in (("no-op route", "/noop"), ("/webhooks/local", "/webhooks/local")):
            total, lat = drive(base + path, deliveries(args.requests), args.clients)
            results[name] = (args.requests / total, pct(lat, 50), pct(lat, 99))
        server.close()
    print(f"{args.requests} requests, {args.clients} concurrent clients, one waitress server")
    for name, (rate, p50, p99) in results.items():
        print(f"  {name:<16} {rate:8.0f} req/s   p50 {p50:6.2f} ms   p99 {p99:6.2f} ms")
    hook, noop = results["/webhooks/local"], results["no-op route"]
    print(f"ratio webhook/no-op: throughput {hook[0] / noop[0]:.2f}x, "
          f"p50 latency {hook[1] / noop[1]:.2f}x, p99 latency {hook[2] / noop[2]:.2f}x")


if __name__ == "__main__":
    main()
