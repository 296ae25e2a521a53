"""What one attempt of a job carries through its stages: the runtime, the recorder of its
events and status comment, and the prepared repository.

The stages (prepare, implement, verify, publish) are modules of their own; ``run`` strings
them together and owns the outcomes.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from bot.config import Settings
from bot.errors import ForgebotError, ForgeError
from bot.forges.base import Forge, Issue
from bot.metrics import Metrics
from bot.pipeline.lease import Lease
from bot.pipeline.repo_setup import RepoSetup
from bot.pipeline.report import Status, status_comment, status_marker
from bot.policy.model import Policy
from bot.sandbox.base import Limits, Sandbox
from bot.sandbox.docker import OWNER_LABEL
from bot.secret_scan import redact
from bot.store import JobView, Store


class Cancelled(ForgebotError):
    """The lease was lost (or the job cancelled): stop without publishing."""


class BudgetExceeded(ForgebotError):
    """The attempt ran past the policy's ``limits.job_timeout_s``."""


@dataclass
class Runtime:
    """What every attempt needs, built once at start."""

    settings: Settings
    store: Store
    forges: Mapping[str, Forge]
    sandbox: Sandbox
    policy: Policy
    metrics: Metrics = field(default_factory=Metrics)
    _repo_locks: dict[str, threading.Lock] = field(default_factory=dict)
    _guard: threading.Lock = field(default_factory=threading.Lock)

    def repo_lock(self, key: str) -> threading.Lock:
        with self._guard:
            return self._repo_locks.setdefault(key, threading.Lock())


def has_issue(job: JobView) -> bool:
    """Whether the job came from an issue it can comment on (spec and task jobs have none,
    and their ``issue_number`` is 0)."""
    return job.kind == "issue" and job.issue_number > 0


@dataclass
class Recorder:
    """Writes the attempt's events, and checks the lease and the deadline at every one."""

    store: Store
    lease: Lease
    deadline: float  # time.monotonic() after which the attempt stops
    metrics: Metrics
    forge: Forge
    max_iterations: int
    secrets: tuple[str, ...] = ()  # values redacted from transcripts (see known_secrets)
    status: Status = field(init=False)

    def __post_init__(self) -> None:
        self.status = Status(self.lease.claim.job.id, self.lease.claim.attempt_number)

    @property
    def job_id(self) -> int:
        return self.lease.claim.job.id

    def event(self, kind: str, **data: Any) -> None:
        self.store.add_event(self.job_id, kind, data, attempt_id=self.lease.claim.attempt_id)

    def transcript(self, kind: str, content: str, meta: dict[str, object]) -> None:
        """Store one transcript entry, redacted: the secrets forgebot holds and every line
        the secret scanner flags are replaced before the text reaches the store."""
        if len(content) > MAX_TRANSCRIPT_CHARS:
            content = content[:MAX_TRANSCRIPT_CHARS] + "\n[... cut ...]"
        self.store.add_transcript(self.job_id, self.lease.claim.attempt_id, kind,
                                  redact(content, self.secrets), meta)

    def show(self, **change: Any) -> None:
        """Update the job's one status comment on the issue. A forge that refuses does not
        stop the job: the comment is a view, the events are the record.

        A job without an issue (a spec push, the tasks API) has nowhere to comment: its
        record is the job's events, the API and the dashboard, and its pull request body."""
        self.status = replace(self.status, **change)
        job = self.lease.claim.job
        if not has_issue(job):
            return
        try:
            self.forge.upsert_comment(job.repo, job.issue_number, status_marker(job.id),
                                      status_comment(self.status))
        except ForgeError as exc:
            self.event("status.failed", error=str(exc))

    def check(self) -> None:
        """Stop the attempt when its lease is gone, the job or this attempt was cancelled
        (``/cancel``, a superseding spec edit: seen at once through the store) or its time
        is up."""
        if self.lease.lost.is_set():
            raise Cancelled("the job's lease was lost")
        current = self.store.get_job(self.job_id)
        if current is None or current.state != "running":
            self.lease.lost.set()
            raise Cancelled(f"the job is {current.state if current else 'gone'}")
        # A superseded attempt (a spec edited again) stops even when this very worker has
        # claimed the job again meanwhile: its own attempt row says so.
        state = self.store.attempt_state(self.lease.claim.attempt_id)
        if state not in (None, "running"):
            self.lease.lost.set()
            raise Cancelled(f"the attempt is {state}")
        if time.monotonic() > self.deadline:
            raise BudgetExceeded("the attempt ran past limits.job_timeout_s")

    def agent_event(self, kind: str, data: dict[str, object]) -> None:
        """The agent loop reports every iteration here, so a long loop stops in time too."""
        self.event(kind, **data)
        if kind == "agent.reply" and isinstance(data.get("i"), int):
            self.show(iteration=(data["i"], self.max_iterations))
        if kind == "agent.reply":
            self._observe_model(data)
        elif kind == "agent.tests" and data.get("exit_code") is not None:
            result = "timeout" if data.get("timed_out") else (
                "passed" if data.get("exit_code") == 0 else "failed")
            self.metrics.sandboxes.labels("agent", result).inc()
        self.check()

    def _observe_model(self, data: dict[str, object]) -> None:
        provider = str(data.get("provider", "unknown"))
        prompt, completion = data.get("prompt_tokens"), data.get("completion_tokens")
        seconds = data.get("seconds")
        self.metrics.model_calls.labels(provider).inc()
        if isinstance(prompt, int) and isinstance(completion, int):
            self.metrics.model_tokens.labels(provider, "prompt").inc(prompt)
            self.metrics.model_tokens.labels(provider, "completion").inc(completion)
            if isinstance(seconds, float | int) and seconds > 0:
                self.metrics.model_tps.labels(provider).observe(completion / seconds)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        self.check()
        self.event("stage.started", stage=name)
        self.show(current=name)
        started = time.monotonic()
        try:
            yield
        except Exception as exc:
            self.event("stage.failed", stage=name, error=type(exc).__name__)
            raise
        finally:
            self.metrics.stage_seconds.labels(name).observe(time.monotonic() - started)
        self.event("stage.finished", stage=name)
        self.status = replace(self.status, done=(*self.status.done, name))


@dataclass
class Prepared:
    forge: Forge
    issue: Issue
    branch: str
    mirror: Path
    agent_dir: Path
    base_sha: str
    attempt_root: Path
    setup: RepoSetup | None = None  # the job's policy and toolchain, once read
    # What sessions start from: the kept setup snapshot (never removed with the job: later
    # jobs reuse it; the reaper bounds them), or the runner image.
    image: str = ""
    feedback: str = ""  # from /retry or /revise, appended to the task
    # How the repository was set up (toolchain, dependencies, egress), for the report.
    setup_lines: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # for the people: what the bot did to the task

    @property
    def policy(self) -> Policy:
        assert self.setup is not None, "read after prepare"
        return self.setup.policy

    @property
    def test_cmd(self) -> list[str]:
        assert self.setup is not None, "read after prepare"
        return list(self.setup.toolchain.test)


_SECRET_KEY = re.compile(r"token|secret|password|api_key|private_key", re.IGNORECASE)
# Keys that name a secret without holding one: web.api_token_name ("client") is the name jobs
# of the tasks API are requested by, and replacing it would blank that word in every transcript.
_NOT_VALUES = ("_name", "_file", "_path")
MAX_TRANSCRIPT_CHARS = 200_000


def known_secrets(settings: Settings) -> tuple[str, ...]:
    """Every configured value whose key names a secret (tokens, webhook secrets, API and
    private keys), wherever it sits in the settings."""
    found: list[str] = []

    def walk(node: object, key: str) -> None:
        if isinstance(node, dict):
            for name, value in node.items():
                walk(value, str(name))
        elif isinstance(node, list | tuple):
            for value in node:
                walk(value, key)
        elif isinstance(node, str) and node and _SECRET_KEY.search(key) \
                and not key.endswith(_NOT_VALUES):
            found.append(node)

    walk(settings.model_dump(), "")
    return tuple(found)


def sandbox_limits(rt: Runtime, policy: Policy) -> Limits:
    s = rt.settings.sandbox
    return Limits(memory_mb=s.memory_mb, cpus=s.cpus, pids=s.pids, workspace_mb=s.workspace_mb,
                  timeout_s=policy.limits.test_timeout_s)


def sandbox_labels(rec: Recorder, phase: str) -> dict[str, str]:
    return {"forgebot.job": str(rec.job_id), "forgebot.attempt": str(rec.lease.claim.attempt_id),
            "forgebot.phase": phase, OWNER_LABEL: rec.lease.owner}


def max_iterations_for(rt: Runtime, policy: Policy | None = None) -> int:
    return min(rt.settings.agent.max_iterations, (policy or rt.policy).limits.max_iterations)
