"""Prometheus metrics, served at ``/metrics``.

One ``Metrics`` object per process, with its own registry (no module-level state), passed to
the receiver, the dispatcher and the pipeline. Gauges that describe the queue are read from
the store at scrape time, so every replica reports the same truth.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from bot.store import Store

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_STAGE_BUCKETS = (0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800)


class _StoreCollector(Collector):
    """Jobs by state and the queue depth, read from the store per scrape."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def collect(self) -> Iterator[GaugeMetricFamily]:
        counts = self.store.count_jobs()
        jobs = GaugeMetricFamily("forgebot_jobs", "Jobs by state", labels=["state"])
        for state in ("queued", "running", "done", "failed", "cancelled"):
            jobs.add_metric([state], counts.get(state, 0))
        yield jobs
        depth = GaugeMetricFamily("forgebot_queue_depth", "Jobs queued and not yet claimed")
        depth.add_metric([], counts.get("queued", 0))
        yield depth
        pending = GaugeMetricFamily("forgebot_deliveries_pending",
                                    "Deliveries stored and not yet planned")
        pending.add_metric([], self.store.delivery_counts().get("pending", 0))
        yield pending


class Metrics:
    """Every metric forgebot exports."""

    def __init__(self, store: Store | None = None) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.deliveries = Counter(
            "forgebot_deliveries_total", "Webhook deliveries by forge, event and result",
            ["forge", "event", "result"], registry=r)
        self.planned = Counter(
            "forgebot_deliveries_planned_total", "Stored deliveries planned, by result",
            ["forge", "result"], registry=r)
        self.jobs_finished = Counter(
            "forgebot_jobs_finished_total", "Attempts finished, by outcome", ["outcome"],
            registry=r)
        self.stage_seconds = Histogram(
            "forgebot_stage_duration_seconds", "Time spent in each pipeline stage", ["stage"],
            buckets=_STAGE_BUCKETS, registry=r)
        self.queue_wait = Histogram(
            "forgebot_queue_wait_seconds", "Time from a job being queued to being claimed",
            buckets=_STAGE_BUCKETS, registry=r)
        self.sandboxes = Counter(
            "forgebot_sandbox_runs_total", "Sandbox command runs by phase and result",
            ["phase", "result"], registry=r)
        self.model_calls = Counter(
            "forgebot_model_calls_total", "Model calls by provider", ["provider"], registry=r)
        self.model_tokens = Counter(
            "forgebot_model_tokens_total", "Model tokens by provider and kind",
            ["provider", "kind"], registry=r)
        self.model_tps = Histogram(
            "forgebot_model_tokens_per_second", "Completion tokens per second of model calls",
            ["provider"], buckets=(1, 5, 10, 25, 50, 100, 200, 500), registry=r)
        self.gates = Counter(
            "forgebot_gate_results_total", "Gate results", ["gate", "result"], registry=r)
        self.forge_calls = Counter(
            "forgebot_forge_api_calls_total", "Forge API calls by forge and result",
            ["forge", "result"], registry=r)
        self.rate_limit_wait = Counter(
            "forgebot_forge_rate_limit_wait_seconds_total",
            "Seconds spent waiting for forge rate limits", ["forge"], registry=r)
        if store is not None:
            r.register(_StoreCollector(store))

    def render(self) -> bytes:
        """The exposition text for ``/metrics``."""
        return generate_latest(self.registry)
