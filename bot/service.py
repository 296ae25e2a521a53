"""Assembly: settings in, a running receiver + dispatcher + pipeline out."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from flask import Blueprint, Flask

from bot.config import DEFAULT_CA_BUNDLE, Settings
from bot.errors import SandboxError
from bot.forges import build_forges
from bot.forges.base import Forge
from bot.metrics import Metrics
from bot.pipeline.lease import Lease
from bot.pipeline.planner import Planner
from bot.pipeline.reconcile import ReconcileReport, reconcile_all
from bot.pipeline.run import Runtime, run_job
from bot.policy.load import load_policy
from bot.sandbox.base import Sandbox
from bot.sandbox.docker import OWNER_LABEL, DockerSandbox
from bot.sandbox.options import load_ca_bundle
from bot.scheduler import Dispatcher, owner_is_dead, status_updater
from bot.store import Store, open_store
from bot.store.notify import WorkListener
from bot.web import create_app
from bot.web.api import enable_tasks, tasks_config

log = logging.getLogger(__name__)
REAP_EVERY_S = 300


@dataclass
class Service:
    settings: Settings
    store: Store
    forges: dict[str, Forge]
    runtime: Runtime
    dispatcher: Dispatcher
    app: Flask
    _ready: threading.Event
    _listener: WorkListener | None = None
    _reconciling: threading.Lock = field(default_factory=threading.Lock)

    def start(self, *, work: bool = True, schedule: bool = True) -> None:
        """For a process that runs jobs (``work``): remove orphaned sandboxes and requeue the
        jobs of dead workers. With ``schedule``, start ticking on the clock (tests tick by
        hand instead)."""
        if work:
            self._recover()
        if work and schedule:
            self.dispatcher.start()
            # Orphans of crashed workers elsewhere, and sessions a bug leaked, go in time.
            self.dispatcher.every(REAP_EVERY_S, "reap", self.reap)
            # PostgreSQL: a receiver in another process wakes us at once (no-op on SQLite).
            self._listener = WorkListener(self.settings.store_url, self.dispatcher.wake)
            self._listener.start(timeout=5)
            minutes = self.settings.scheduler.reconcile_minutes
            if minutes > 0:  # webhooks lost while the bot was down: once now, then on a clock
                self.dispatcher.every(minutes * 60, "reconcile", self.reconcile)
                threading.Thread(target=self._reconcile_logged, name="reconcile-start",
                                 daemon=True).start()
        self._ready.set()

    def _recover(self) -> None:
        try:
            self.reap()
        except SandboxError:  # the engine may be down; doctor says so, jobs will fail loudly
            log.warning("could not reap orphaned sandboxes", exc_info=True)
        self.store.release_deliveries(self.owner_dead)
        requeued = self.store.recover(self.owner_dead, self.settings.scheduler.max_attempts)
        if requeued:
            log.info("jobs of a dead worker requeued", extra={"jobs": requeued})

    def reconcile(self) -> list[ReconcileReport]:
        """One reconciliation pass (bot/pipeline/reconcile.py); wakes the dispatcher when it
        queued work. A pass still running elsewhere in this process makes this one a no-op."""
        if not self._reconciling.acquire(blocking=False):
            return []
        try:
            reports = reconcile_all(self.dispatcher.planner, self.settings)
        finally:
            self._reconciling.release()
        if any(report.jobs for report in reports):
            self.dispatcher.wake()
        return reports

    def _reconcile_logged(self) -> None:
        try:
            self.reconcile()
        except Exception:
            log.exception("reconciliation at start failed")

    def owner_dead(self, owner: str) -> bool:
        return owner_is_dead(owner, self.dispatcher.owner)

    def reap(self) -> int:
        """Remove sandboxes of dead workers on this host, and any older than the longest job
        (another worker's live sessions are younger than that)."""
        sandbox = self.runtime.sandbox
        removed = sandbox.reap_orphans(self.runtime.policy.limits.job_timeout_s + 60)
        for owner in sandbox.sandbox_owners():
            if self.owner_dead(owner):
                removed += sandbox.reap_orphans(0, labels={OWNER_LABEL: owner})
        if removed:
            log.info("removed orphaned sandboxes", extra={"count": removed})
        if isinstance(sandbox, DockerSandbox):
            kept = self.runtime.settings.sandbox
            trimmed = sandbox.reap_setup_cache(kept.cache_max_age_days * 86_400,
                                               kept.cache_snapshots_per_repo)
            if trimmed:
                log.info("removed kept setup snapshots and caches", extra={"count": trimmed})
        return removed

    def stop(self) -> None:
        if self._listener is not None:
            self._listener.stop()
        self.dispatcher.stop(wait=True)
        # The engine client's pooled connections, and the store's: a process that builds
        # services one after another (tests, forgebot eval) must not pile them up.
        if isinstance(self.runtime.sandbox, DockerSandbox):
            self.runtime.sandbox.close()
        self.store.engine.dispose()


def make_sandbox(settings: Settings) -> Sandbox:
    """The configured sandbox backend. Kubernetes is imported only when it is configured (the
    client is slow to import and needs a cluster)."""
    if settings.sandbox.backend == "kubernetes":
        from bot.sandbox.kubernetes import KubernetesOptions, kubernetes_sandbox_from_config

        k = settings.sandbox.kubernetes
        options = KubernetesOptions(
            image_pull_policy=k.image_pull_policy, runtime_class=k.runtime_class,
            workspace_medium=k.workspace_medium, session_deadline_s=k.session_deadline_s,
            start_timeout_s=k.start_timeout_s, request_timeout_s=k.request_timeout_s,
            manage_network_policy=k.manage_network_policy)
        return kubernetes_sandbox_from_config(k.namespace, kubeconfig=k.kubeconfig,
                                              context=k.context, options=options)
    bundle = settings.sandbox.ca_bundle
    # The default (the host's own bundle) is optional: a host without one uses the image's.
    wanted = bundle is not None and (bundle != DEFAULT_CA_BUNDLE or bundle.exists())
    ca = load_ca_bundle(bundle) if bundle is not None and wanted else None
    return DockerSandbox(options=settings.sandbox.docker, ca_bundle=ca,
                         mirror_dir=settings.data_dir.resolve() / "cache" / "pypi")


def _dashboard(settings: Settings) -> Blueprint | None:
    from bot.web.dashboard import dashboard_blueprint, is_loopback

    d = settings.web.dashboard
    if not d.enabled:
        return None
    return dashboard_blueprint(d.token, d.trusted_header,
                               bound_beyond_localhost=not is_loopback(settings.web.host))


def build_service(settings: Settings, *, receive: bool = True) -> Service:
    """Open the store (migrating it), build forges, sandbox, policy and the app."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = open_store(settings.store_url)
    policy = load_policy(settings.policy_path)
    forges = build_forges(settings, policy.trigger.labels)
    metrics = Metrics(store)
    sandbox = make_sandbox(settings)
    runtime = Runtime(settings=settings, store=store, forges=forges, sandbox=sandbox,
                      policy=policy, metrics=metrics)

    def run(lease: Lease) -> None:
        run_job(runtime, lease)

    planner = Planner(store, forges, policy, settings.bot_user, metrics,
                      mirrors=settings.data_dir.resolve() / "mirrors")
    dispatcher = Dispatcher(store, planner, settings, run, metrics=metrics,
                            on_waiting=status_updater(forges))
    ready = threading.Event()
    app = create_app(store, forges, wake=dispatcher.wake, ready=ready.is_set,
                     max_body_bytes=settings.web.max_body_bytes, receive=receive,
                     metrics=metrics, dashboard=_dashboard(settings))
    enable_tasks(app, tasks_config(settings, policy.publish.branch_prefix))
    return Service(settings, store, forges, runtime, dispatcher, app, ready)
