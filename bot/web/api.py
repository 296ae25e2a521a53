"""Health checks, the read-only JSON API over jobs, and the tasks API.

The tasks API (``POST /api/v1/tasks``) lets a script or a CI job that is not the forge queue
work for a repository: a title, a text and constraints, which become a ``task`` job with no
issue. It is off (every tasks URL a 404) until ``web.api_token`` is set, and then asks for
that token as ``Authorization: Bearer``. Input is checked before anything is stored: a bad
request is a 400 that names the field, and changes nothing. An ``Idempotency-Key`` header
makes a retried request answer with the job the first one made.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import Blueprint, Flask, Response, current_app, jsonify, request, url_for
from werkzeug.exceptions import RequestEntityTooLarge

from bot import gitops
from bot.config import Settings
from bot.errors import ForgeError, GitError, StoreError
from bot.forges.local.admin import read_default_branch
from bot.forges.local.layout import RepoLayout
from bot.metrics import CONTENT_TYPE
from bot.store import JobView, Store

log = logging.getLogger(__name__)
blueprint = Blueprint("api", __name__)

MAX_TITLE_CHARS = 200
MAX_TEXT_CHARS = 65_536  # what GitHub allows in an issue body
MAX_CONSTRAINTS = 20
MAX_CONSTRAINT_CHARS = 1_000
# The trigger key (jobs.trigger_key, 255 characters) is "<forge>:<repo>:task:<key>".
MAX_REPO_CHARS = 150
_KEY = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_REPO = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*(?:/[A-Za-z0-9][A-Za-z0-9._-]*)+")
_BRANCH = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,199}")
_FIELDS = frozenset({"forge", "repo", "title", "text", "constraints", "base"})
CONSTRAINTS_HEADING = "## Constraints (from the client that queued this task)"


def _ext() -> dict[str, Any]:
    ext: dict[str, Any] = current_app.extensions["forgebot"]
    return ext


# ------------------------------------------------------------------ health and metrics


@blueprint.get("/healthz")
def healthz() -> tuple[Any, int]:
    return jsonify(status="ok"), 200


@blueprint.get("/readyz")
def readyz() -> tuple[Any, int]:
    try:
        _ext()["store"].ping()
    except StoreError:
        return jsonify(status="store unavailable"), 503
    if not _ext()["ready"]():
        return jsonify(status="starting"), 503
    return jsonify(status="ready"), 200


@blueprint.get("/metrics")
def metrics() -> Response:
    return Response(_ext()["metrics"].render(), mimetype=None, content_type=CONTENT_TYPE)


# ------------------------------------------------------------------ jobs (read-only)


@blueprint.get("/api/jobs")
@blueprint.get("/api/v1/jobs")
def list_jobs() -> tuple[Any, int]:
    try:
        limit = min(max(int(request.args.get("limit", "100")), 1), 1000)
    except ValueError:
        return jsonify(error="limit must be a number"), 400
    store = _ext()["store"]
    jobs = store.list_jobs(limit=limit, state=request.args.get("state"))
    return jsonify(jobs=[j.as_dict() for j in jobs], idle=store.is_idle()), 200


@blueprint.get("/api/jobs/<int:job_id>")
@blueprint.get("/api/v1/jobs/<int:job_id>")
def show_job(job_id: int) -> tuple[Any, int]:
    store: Store = _ext()["store"]
    job = store.get_job(job_id)
    if job is None:
        return jsonify(error=f"no job {job_id}"), 404
    return jsonify(_job_document(store, job)), 200


def _job_document(store: Store, job: JobView) -> dict[str, Any]:
    events = store.events(job.id)
    return {"job": job.as_dict(), "events": events, "pull": pull_of(job, events)}


def pull_of(job: JobView, events: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """The job's pull request: its number, and its address when a ``pull.published`` event
    carries an http(s) one (the address came from a forge: nothing else is passed on)."""
    if job.pull_number is None:
        return None
    url = None
    for event in reversed(events):
        found = event["data"].get("url") if event["kind"] == "pull.published" else None
        if isinstance(found, str) and found.startswith(("https://", "http://")):
            url = found
            break
    return {"number": job.pull_number, "url": url}


# ------------------------------------------------------------------ the tasks API


@dataclass(frozen=True)
class TasksConfig:
    """What the tasks API needs from the settings and the policy."""

    token: str | None  # None: the API is off
    token_name: str  # jobs are requested by "api:<token_name>"
    branch_prefix: str  # the policy's publish.branch_prefix
    # Per forge, the repositories tasks may name; an empty tuple allows any.
    repositories: Mapping[str, tuple[str, ...]]
    local_root: Path  # the local forge's repositories must exist here

    @property
    def requested_by(self) -> str:
        return f"api:{self.token_name}"


def tasks_config(settings: Settings, branch_prefix: str) -> TasksConfig:
    """The tasks API's configuration from the settings and the bot-wide branch prefix."""
    forges = settings.forges
    return TasksConfig(
        token=settings.web.api_token, token_name=settings.web.api_token_name,
        branch_prefix=branch_prefix,
        repositories={"local": tuple(forges.local.repositories),
                      "github": tuple(forges.github.repositories),
                      "gitlab": tuple(forges.gitlab.repositories),
                      "gitea": tuple(forges.gitea.repositories)},
        local_root=settings.local_root,
    )


def enable_tasks(app: Flask, config: TasksConfig) -> None:
    """Turn the tasks API on for ``app`` (built by ``bot.web.create_app``). Without this, or
    with no token in ``config``, every tasks URL answers 404."""
    app.extensions["forgebot"]["tasks"] = config


class TaskRefused(Exception):
    """A task request that cannot be queued; the message says why, for the client, and
    ``status`` is the HTTP answer (400 unless said otherwise)."""

    def __init__(self, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class TaskRequest:
    """A validated ``POST /api/v1/tasks`` body."""

    forge: str
    repo: str
    title: str
    text: str
    constraints: tuple[str, ...] = ()
    base: str | None = None  # the branch to start from; None: the repository's default

    def task_text(self) -> str:
        """The job's task: the text, then the constraints under a heading of their own."""
        if not self.constraints:
            return self.text
        items = "\n".join(f"- {c}" for c in self.constraints)
        return f"{self.text}\n\n{CONSTRAINTS_HEADING}\n\n{items}\n"


def parse_task(body: object, forges: Sequence[str]) -> TaskRequest:
    """Check a decoded JSON body against the tasks API's rules; ``TaskRefused`` if it breaks
    one. Pure: which repositories exist is checked apart (``check_repository``)."""
    if not isinstance(body, dict):
        raise TaskRefused("the body must be a JSON object")
    unknown = sorted(set(body) - _FIELDS)
    if unknown:
        raise TaskRefused(f"unknown field(s): {', '.join(unknown)}; "
                          f"known: {', '.join(sorted(_FIELDS))}")
    forge = _string(body, "forge", 32)
    if forge not in forges:
        raise TaskRefused(f"forge: {forge!r} is not enabled here; enabled: "
                          f"{', '.join(sorted(forges)) or 'none'}")
    repo = _string(body, "repo", MAX_REPO_CHARS)
    if not _REPO.fullmatch(repo) or ".." in repo:
        raise TaskRefused(f"repo: {repo!r} is not a repository name (owner/name)")
    title = _string(body, "title", MAX_TITLE_CHARS)
    if "\n" in title or "\r" in title:
        raise TaskRefused("title: must be one line")
    text = _string(body, "text", MAX_TEXT_CHARS)
    base = None
    if body.get("base") is not None:
        base = _string(body, "base", 200)
        if not _BRANCH.fullmatch(base) or any(bad in base for bad in ("..", "//", "@{")) \
                or base.endswith(("/", ".", ".lock")):
            raise TaskRefused(f"base: {base!r} is not a branch name")
    return TaskRequest(forge, repo, title, text, _constraints(body.get("constraints")), base)


def _string(body: Mapping[str, object], name: str, limit: int) -> str:
    value = body.get(name)
    if value is None:
        raise TaskRefused(f"{name}: required")
    if not isinstance(value, str):
        raise TaskRefused(f"{name}: must be a string")
    value = value.strip()
    if not value:
        raise TaskRefused(f"{name}: must not be empty")
    if len(value) > limit:
        raise TaskRefused(f"{name}: {len(value)} characters; the limit is {limit}")
    _check_storable(name, value)
    return value


def _check_storable(name: str, value: str) -> None:
    # JSON can carry a NUL or a lone surrogate; PostgreSQL text holds neither, and a store
    # error after validation would be a 5xx instead of the client's 400.
    if "\x00" in value:
        raise TaskRefused(f"{name}: must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise TaskRefused(f"{name}: not valid Unicode text") from exc


def _constraints(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise TaskRefused("constraints: must be a list of strings")
    if len(value) > MAX_CONSTRAINTS:
        raise TaskRefused(f"constraints: {len(value)} items; the limit is {MAX_CONSTRAINTS}")
    out = []
    for index, item in enumerate(value):
        name = f"constraints[{index}]"
        if not isinstance(item, str):
            raise TaskRefused(f"{name}: must be a string")
        # One line each: a constraint cannot open a heading or a section of its own.
        line = " ".join(item.split())
        if not line:
            raise TaskRefused(f"{name}: must not be empty")
        if len(line) > MAX_CONSTRAINT_CHARS:
            raise TaskRefused(f"{name}: {len(line)} characters; the limit is "
                              f"{MAX_CONSTRAINT_CHARS}")
        _check_storable(name, line)
        out.append(line)
    return tuple(out)


def check_repository(config: TasksConfig, task: TaskRequest) -> str:
    """Refuse a repository the bot does not serve; return the branch the task starts from.

    A forge's configured ``repositories`` list, when not empty, is the allow-list. The local
    forge's repository must exist under its root, and ``base`` must be one of its branches.
    A hosted forge is not asked (the API never calls a forge), so ``base`` is required there.
    """
    allowed = config.repositories.get(task.forge, ())
    if allowed and task.repo not in allowed:
        raise TaskRefused(f"repo: {task.repo} is not one of the repositories configured for "
                          f"forge {task.forge} (forges.{task.forge}.repositories)")
    if task.forge != "local":
        if task.base is None:
            raise TaskRefused(f"base: required for forge {task.forge}: the branch the task "
                              "starts from, usually the default branch")
        return task.base
    try:
        layout = RepoLayout.of(config.local_root, task.repo).require()
    except ForgeError as exc:
        raise TaskRefused(f"repo: {exc}") from exc
    if task.base is None:
        try:
            return read_default_branch(layout)
        except ForgeError as exc:
            raise TaskRefused(f"repo: {exc}") from exc
    try:
        gitops.run(["rev-parse", "--verify", "--quiet", "--end-of-options",
                    f"refs/heads/{task.base}"], cwd=layout.git_dir)
    except GitError as exc:
        raise TaskRefused(f"base: {task.repo} has no branch {task.base!r}") from exc
    return task.base


def _tasks() -> TasksConfig | None:
    config: TasksConfig | None = _ext().get("tasks")
    return config if config is not None and config.token else None


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode("utf-8", "surrogateescape")).digest()


def _refusal() -> tuple[Any, int] | None:
    """The answer when the request may not use the tasks API, or None when it may."""
    config = _tasks()
    if config is None or config.token is None:
        return jsonify(error="the tasks API is off: set web.api_token "
                             "(FORGEBOT_WEB__API_TOKEN) to turn it on"), 404
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    # Digests of equal length, compared in constant time: neither the token's bytes nor its
    # length show in the time a wrong guess takes.
    if scheme.lower() != "bearer" or not hmac.compare_digest(_digest(given.strip()),
                                                             _digest(config.token)):
        response = jsonify(error="a valid 'Authorization: Bearer <web.api_token>' is required")
        response.headers["WWW-Authenticate"] = 'Bearer realm="forgebot"'
        return response, 401
    return None


def _task_answer(store: Store, job: JobView, status: int) -> tuple[Any, int]:
    url = url_for("api.show_task", job_id=job.id)
    response = jsonify(url=url, created=status == 201, **_job_document(store, job))
    if status == 201:
        response.headers["Location"] = url
    return response, status


@blueprint.post("/api/v1/tasks")
def create_task() -> tuple[Any, int]:
    """Queue a task job; 201 with its URL, or 200 with the job an earlier request of the
    same ``Idempotency-Key`` made."""
    refused = _refusal()
    if refused is not None:
        return refused
    config = _tasks()
    assert config is not None  # _refusal answered otherwise
    try:
        key = _idempotency_key()
        task = parse_task(_read_json(), sorted(_ext()["forges"]))
        base = check_repository(config, task)
    except TaskRefused as exc:
        return jsonify(error=str(exc)), exc.status
    trigger = f"{task.forge}:{task.repo}:task:{key or uuid.uuid4().hex}"
    try:
        return _queue(_ext()["store"], config, task, base, trigger)
    except StoreError:
        log.exception("could not queue a task")
        return jsonify(error="store unavailable, retry later"), 503


def _idempotency_key() -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is not None and not _KEY.fullmatch(key):
        raise TaskRefused("Idempotency-Key: 1 to 64 letters, digits, '.', '_', ':' or '-'")
    return key


def _read_json() -> object:
    try:
        return json.loads(request.get_data(cache=False))
    except RequestEntityTooLarge as exc:
        raise TaskRefused("request body too large", status=413) from exc
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise TaskRefused("the body must be JSON") from exc


def _queue(store: Store, config: TasksConfig, task: TaskRequest, base: str,
           trigger: str) -> tuple[Any, int]:
    text = task.task_text()
    job = store.create_job(trigger_key=trigger, forge=task.forge, repo=task.repo,
                           default_branch=base, issue_number=0, title=task.title,
                           requested_by=config.requested_by, delivery_row=None, kind="task",
                           task_text=text)
    if job is None:  # the key was used before: the same request again, or a conflict
        earlier = store.job_for_trigger(trigger)
        if earlier is None:
            raise StoreError(f"trigger {trigger} is taken but has no job")
        if (earlier.kind, earlier.title, earlier.task_text, earlier.default_branch) != (
                "task", task.title, text, base):
            return jsonify(error=f"Idempotency-Key was already used for a different task "
                                 f"(job {earlier.id}); use a new key"), 409
        return _task_answer(store, earlier, 200)
    # The branch names the job, so two tasks of one title never share a branch.
    branch = gitops.branch_name(f"{config.branch_prefix}task-", job.id, task.title)
    store.update_job(job.id, branch=branch)
    store.add_event(job.id, "task.queued", {"by": config.requested_by, "branch": branch,
                                            "constraints": len(task.constraints)})
    _ext()["wake"]()
    log.info("task queued", extra={"job": job.id, "forge": task.forge, "repo": task.repo})
    current = store.get_job(job.id)
    return _task_answer(store, current or job, 201)


@blueprint.get("/api/v1/tasks/<int:job_id>")
def show_task(job_id: int) -> tuple[Any, int]:
    """A task job with its events and pull request (the same token as creating one)."""
    refused = _refusal()
    if refused is not None:
        return refused
    store: Store = _ext()["store"]
    job = store.get_job(job_id)
    if job is None or job.kind != "task":
        return jsonify(error=f"no task {job_id} (other jobs are at /api/v1/jobs/<id>)"), 404
    return jsonify(url=url_for("api.show_task", job_id=job.id),
                   **_job_document(store, job)), 200
