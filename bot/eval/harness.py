"""Run a suite: for each task, a fresh local forge and store, the real service, the issue, and
a grade of whatever the bot published.

Each task gets its own folder under the data directory and its own service, built by
``build_service`` exactly as ``forgebot run`` builds it: the issue is filed on the local forge,
its signed webhooks go over HTTP to the service's receiver (waitress on a loopback port), and
the dispatcher is ticked until the store is idle, so the planner, the dispatcher and every
pipeline stage run as in production. Nothing of the pipeline is called directly or patched.

Before the bot starts, the hidden tests run on the base commit and must FAIL there: a task
whose hidden tests already pass measures nothing and is reported invalid.
"""

from __future__ import annotations

import concurrent.futures
import logging
import secrets
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from waitress.server import create_server

from bot.config import Settings
from bot.errors import ForgebotError, SandboxError
from bot.eval.grade import Grader, TestRun
from bot.eval.results import SuiteResult, TaskResult
from bot.eval.tasks import Task, TaskError
from bot.forges.local import admin
from bot.forges.local.layout import RepoLayout
from bot.pipeline.outcomes import JobStopped
from bot.sandbox.docker import OWNER_LABEL
from bot.service import Service, build_service

log = logging.getLogger(__name__)

EVAL_LABEL = "forgebot.eval"  # on the grading sessions, next to the owner label
REPO_OWNER = "eval"
ISSUE_AUTHOR = "eval-maintainer"
PROVIDERS = ("llama-cpp", "openai", "replay")
DEFAULT_BRANCH = "main"


@dataclass(frozen=True)
class EvalOptions:
    """How to run a suite. ``provider`` None keeps the configured model provider;
    ``max_iterations`` None keeps ``agent.max_iterations`` (the policy may cap both)."""

    provider: str | None = None
    max_iterations: int | None = None
    timeout_s: float = 1800.0  # per task, from filing the issue to the job's end


def run_suite(settings: Settings, suite: str, tasks: Sequence[Task], data_dir: Path, *,
              options: EvalOptions,
              on_result: Callable[[TaskResult], None] | None = None) -> SuiteResult:
    """Run ``tasks`` one after the other under ``data_dir``; ``on_result`` hears each result
    as it comes. Raises ``TaskError`` before anything runs when the replay provider is asked
    for and a task has no ``replay.yml``."""
    provider = options.provider or settings.llm.provider
    if provider == "replay":
        missing = [t.name for t in tasks if t.replay is None]
        if missing:
            raise TaskError(f"--provider replay: no replay.yml in {', '.join(missing)}")
    results = []
    for task in tasks:
        result = run_task(settings, task, data_dir / task.name, options)
        results.append(result)
        if on_result is not None:
            on_result(result)
    return SuiteResult(suite, provider, tuple(results))


def run_task(settings: Settings, task: Task, folder: Path, options: EvalOptions) -> TaskResult:
    """Run one task in ``folder`` (replaced if it exists). Never raises for a failure of the
    task, the bot or the sandbox: each becomes a result with a status and a detail."""
    base = TaskResult(task.name, task.language, task.difficulty, "error")
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    try:
        task_settings = settings_for(settings, folder, task, options)
        admin.init_repo(task_settings.local_root, repo_name(task),
                        task.starting_tree(folder / "work"), DEFAULT_BRANCH)
        with _live(task_settings) as live:
            return _Attempt(task, live, base, folder, options.timeout_s).run()
    except ForgebotError as exc:
        log.warning("eval task could not run", extra={"task": task.name})
        return _with(base, status="error", detail=str(exc))
    finally:
        # The mirror and worktrees are the bot's scratch space; the forge and store stay.
        for scratch in ("work", "mirrors", "grade"):
            shutil.rmtree(folder / scratch, ignore_errors=True)


def repo_name(task: Task) -> str:
    return f"{REPO_OWNER}/{task.name}"


def settings_for(settings: Settings, folder: Path, task: Task,
                 options: EvalOptions) -> Settings:
    """The configured settings, confined to ``folder``: a SQLite store and a local forge of
    their own, a fresh webhook secret, no hosted forge, one job at a time, and the provider
    and iteration limit of ``options`` (``replay`` answers from the task's replay.yml)."""
    data: dict[str, Any] = settings.model_dump()
    data.update(data_dir=folder, store={"url": ""})
    data["forges"].update(local={"root": None, "receiver_url": "",
                                 "secret": secrets.token_hex(32)})
    for hosted in ("github", "gitlab", "gitea"):
        data["forges"][hosted]["enabled"] = False
    data["scheduler"]["concurrency"] = 1
    if options.provider is not None:
        data["llm"]["provider"] = options.provider
    if data["llm"]["provider"] == "replay":
        data["llm"]["transcript"] = task.replay
        # The transcript is one conversation: every role answers from it, no other model.
        for key, empty in (("models", {}), ("roles", {}), ("escalation", [])):
            if key in data["llm"]:
                data["llm"][key] = empty
    if options.max_iterations is not None:
        data["agent"]["max_iterations"] = options.max_iterations
    data["source"] = f"{settings.source} + forgebot eval"
    try:
        return Settings.model_validate(data)
    except ValueError as exc:
        raise TaskError(f"{task.name}: the settings for this task are invalid: {exc}") from exc


@dataclass
class _Live:
    service: Service
    url: str  # the receiver's local-forge webhook URL

    @property
    def settings(self) -> Settings:
        return self.service.settings


@contextmanager
def _live(settings: Settings) -> Iterator[_Live]:
    """The service with its receiver on a loopback port; stopped, its sandboxes reaped and
    its store closed afterwards, whatever happened."""
    service = build_service(settings)
    server = None
    thread = None
    try:
        service.start(schedule=False)  # ticked by hand below, as `forgebot run` does
        server = create_server(service.app, host="127.0.0.1", port=0, threads=2)
        thread = threading.Thread(target=server.run, name="eval-receiver", daemon=True)
        thread.start()
        port = server.effective_port  # type: ignore[union-attr]
        yield _Live(service, f"http://127.0.0.1:{port}/webhooks/local")
    finally:
        if server is not None:
            server.close()
            server.task_dispatcher.shutdown()
        if thread is not None:
            thread.join(timeout=5)
        service.stop()
        _reap(service)
        service.store.engine.dispose()


def _reap(service: Service) -> None:
    try:
        service.runtime.sandbox.reap_orphans(0, labels={OWNER_LABEL: service.dispatcher.owner})
    except SandboxError as exc:
        log.warning("could not remove the task's sandboxes", extra={"error": str(exc)})


class _Attempt:
    """One task against one live service: grade the base, file the issue, wait, grade."""

    def __init__(self, task: Task, live: _Live, base: TaskResult, folder: Path,
                 timeout_s: float) -> None:
        self.task, self.live, self.base, self.timeout_s = task, live, base, timeout_s
        self.grade_dir = folder / "grade"
        self.bare = RepoLayout.of(live.settings.local_root, repo_name(task)).git_dir
        service = live.service
        self.grader = Grader(service.settings, service.runtime.sandbox, service.runtime.policy,
                             {EVAL_LABEL: "1", OWNER_LABEL: service.dispatcher.owner})

    def run(self) -> TaskResult:
        try:
            before, toolchain = self._grade(DEFAULT_BRANCH)
        except JobStopped as exc:  # no toolchain, or a .forgebot.yml that does not load
            return _with(self.base, status="invalid", detail=f"the repository: {exc.detail}")
        if toolchain != self.task.toolchain:
            return _with(self.base, status="invalid", detail=(
                f"the repository is tested as {toolchain}, but task.yml says language "
                f"{self.task.language} ({self.task.toolchain})"))
        checked = _with(self.base, base_exit=before.exit_code)
        if before.passed:
            return _with(checked, status="invalid", detail=(
                "the hidden tests pass on the base commit, so the task measures nothing"))
        started = time.monotonic()
        self._file_issue()
        finished = self._run_until_idle(started + self.timeout_s)
        result = self._collect(_with(checked, status="ran",
                                     seconds=round(time.monotonic() - started, 2)))
        return result if finished else _with(result, outcome="timeout")

    def _grade(self, branch: str) -> tuple[TestRun, str]:
        self.grade_dir.mkdir(exist_ok=True)
        with tempfile.TemporaryDirectory(dir=self.grade_dir) as tmp:
            return self.grader.run(self.task, self.bare, branch, Path(tmp))

    def _file_issue(self) -> None:
        settings = self.live.settings
        label = self.live.service.runtime.policy.trigger.labels[0]
        _, deliveries = admin.create_issue(settings.local_root, repo_name(self.task),
                                           self.task.title, self.task.body, labels=[label],
                                           author=ISSUE_AUTHOR)
        secret = settings.forges.local.secret or ""
        for delivery in deliveries:
            admin.deliver(self.live.url, secret, delivery.event, delivery.payload)

    def _run_until_idle(self, deadline: float) -> bool:
        """Tick until no delivery or job is left; at the deadline, cancel what runs."""
        service = self.live.service
        while time.monotonic() < deadline:
            service.dispatcher.tick()
            try:
                service.dispatcher.wait_idle(timeout=max(deadline - time.monotonic(), 0.1))
            except concurrent.futures.TimeoutError:
                break
            if service.store.is_idle():
                return True
            time.sleep(0.2)
        for job in service.store.list_jobs():
            if job.state in ("queued", "running"):
                service.store.cancel(job.id, by="forgebot-eval")
        service.dispatcher.wait_idle()  # the job sees the cancel at its next event
        return False

    def _collect(self, result: TaskResult) -> TaskResult:
        store = self.live.service.store
        jobs = store.list_jobs()
        if not jobs:
            return _with(result, outcome="no_job", detail="the planner made no job of the issue")
        job = jobs[0]
        replies = [e["data"] for e in store.events(job.id) if e["kind"] == "agent.reply"]
        result = _with(result, outcome=job.outcome or job.state, iterations=len(replies),
                       prompt_tokens=sum(_count(r, "prompt_tokens") for r in replies),
                       completion_tokens=sum(_count(r, "completion_tokens") for r in replies),
                       pull=job.pull_number)
        pulls = admin.list_pulls(self.live.settings.local_root, repo_name(self.task))
        if not pulls:
            return _with(result, detail="no pull request")
        after, _ = self._grade(str(pulls[-1]["head"]))
        return _with(result, resolved=after.passed, hidden_exit=after.exit_code,
                     detail=f"hidden tests on the pull request: {after.describe()}",
                     hidden_output=after.tail)


def _count(data: dict[str, Any], key: str) -> int:
    value = data.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _with(result: TaskResult, **change: Any) -> TaskResult:
    return replace(result, **change)
