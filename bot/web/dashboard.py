"""The read-only dashboard: queue, running jobs, job detail, history and charts.

Server-rendered with Jinja (autoescape on: job titles, comments and event data are
untrusted text and are never marked safe). The live parts are fragments of the same
templates that ``static/dashboard.js`` fetches every few seconds; no script comes
from anywhere but this blueprint, and the Content-Security-Policy says so.

Every read goes through ``Store``'s public methods, or through the small read-only queries
below that use the store's engine for what those methods cannot filter (outcome, repository)
or aggregate (the charts). Nothing here writes.

Protection, decided once when the blueprint is built (``dashboard_blueprint``):

- no token and no trusted header: served only when the web server listens on loopback;
  bound beyond it, every dashboard URL is a 404, as if the dashboard did not exist;
- a token: ``Authorization: Bearer <token>``, or ``?token=<token>`` once, which sets an
  HttpOnly SameSite=Strict cookie and redirects to the same page without the token;
- a trusted header (for example ``X-Forwarded-User`` set by an authenticating proxy): a
  non-empty value names the user. The proxy must strip that header from client requests.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.wrappers import Response as BaseResponse

from bot.errors import StoreError
from bot.store import JobView, Store
from bot.store.models import Job, JobEvent, utcnow

PREFIX = "/dashboard"
COOKIE = "forgebot_dashboard"
STATES = ("queued", "running", "done", "failed", "cancelled")
TAIL = 40  # events shown per running job; the job page shows them all
HISTORY_LIMIT = 200
QUEUE_LIMIT = 1000
CHART_DAYS = 14
_MAX_FILTER = 255  # the longest repository name the store keeps
# Events that say how a job went, shown as results on the job page.
_RESULT_KINDS = ("toolchain", "setup.ran", "gates.evaluated", "tests.ran", "verify.empty",
                 "agent.finished", "pull.published", "attempt.error", "job.finished")
_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


# data access: small read-only functions over the store ------------------------------------


@dataclass(frozen=True)
class QueuedJob:
    position: int  # 1 is the next job a worker claims
    job: JobView


@dataclass(frozen=True)
class RunningJob:
    job: JobView
    tail: list[dict[str, Any]]


@dataclass(frozen=True)
class HistoryFilter:
    state: str = ""
    outcome: str = ""
    repo: str = ""

    @classmethod
    def from_args(cls, args: Any) -> HistoryFilter:
        def arg(name: str) -> str:
            return str(args.get(name, "")).strip()[:_MAX_FILTER]
        return cls(arg("state"), arg("outcome"), arg("repo"))


def queued_jobs(store: Store) -> list[QueuedJob]:
    """Queued jobs in the order workers claim them (highest priority, then oldest); a job a
    queue limit holds back carries its ``wait_reason``."""
    jobs = store.queued(limit=QUEUE_LIMIT)
    return [QueuedJob(n, job) for n, job in enumerate(jobs, start=1)]


def running_jobs(store: Store, tail: int = TAIL) -> list[RunningJob]:
    jobs = sorted(store.list_jobs(limit=QUEUE_LIMIT, state="running"), key=lambda j: j.id)
    return [RunningJob(job, store.events(job.id)[-tail:]) for job in jobs]


_JOB_COLUMNS = [getattr(Job, f.name) for f in fields(JobView)]


def _read(store: Store, statement: Any) -> list[Any]:
    """Run one SELECT on the store's engine; a connection, never a transaction that writes."""
    try:
        with store.engine.connect() as conn:
            return list(conn.execute(statement).all())
    except SQLAlchemyError as exc:
        raise StoreError(f"store failure: {exc.__class__.__name__}: {exc}") from exc


def history(store: Store, filters: HistoryFilter, limit: int = HISTORY_LIMIT) -> list[JobView]:
    """Jobs newest first, filtered by state, outcome and repository (exact matches)."""
    query = select(*_JOB_COLUMNS).order_by(Job.id.desc()).limit(limit)
    if filters.state:
        query = query.where(Job.state == filters.state)
    if filters.outcome:
        query = query.where(Job.outcome == filters.outcome)
    if filters.repo:
        query = query.where(Job.repo == filters.repo)
    return [JobView(*row) for row in _read(store, query)]


def filter_choices(store: Store) -> dict[str, list[str]]:
    """The repositories and outcomes that occur, for the history page's select boxes."""
    repos = _read(store, select(Job.repo).distinct().order_by(Job.repo))
    outcomes = _read(store, select(Job.outcome).where(Job.outcome.is_not(None))
                     .distinct().order_by(Job.outcome))
    return {"state": list(STATES), "repo": [r[0] for r in repos],
            "outcome": [o[0] for o in outcomes]}


@dataclass(frozen=True)
class DayFigure:
    day: str  # YYYY-MM-DD (UTC)
    value: float | None  # None: nothing to measure that day
    count: int


def _days(now: datetime, days: int) -> list[str]:
    return [(now - timedelta(days=n)).date().isoformat() for n in range(days - 1, -1, -1)]


def success_rate(store: Store, now: datetime | None = None,
                 days: int = CHART_DAYS) -> list[DayFigure]:
    """Per day, the share of finished jobs that ended ``done`` (a pull request was published).

    A job counts on the day it finished; cancelled jobs are not a verdict on the bot and
    are left out.
    """
    now = now or utcnow()
    since = now - timedelta(days=days)
    rows = _read(store, select(Job.updated_at, Job.state)
                 .where(Job.state.in_(("done", "failed")), Job.updated_at >= since))
    done: dict[str, int] = {}
    total: dict[str, int] = {}
    for at, state in rows:
        day = at.date().isoformat()
        total[day] = total.get(day, 0) + 1
        done[day] = done.get(day, 0) + (state == "done")
    return [DayFigure(d, done.get(d, 0) / total[d] if total.get(d) else None, total.get(d, 0))
            for d in _days(now, days)]


def time_to_pull(store: Store, now: datetime | None = None,
                 days: int = CHART_DAYS) -> list[DayFigure]:
    """Per day, the median minutes from a job's creation to its first published pull request."""
    now = now or utcnow()
    since = now - timedelta(days=days)
    first = func.min(JobEvent.created_at)
    rows = _read(store, select(Job.created_at, first)
                 .join(JobEvent, JobEvent.job_id == Job.id)
                 .where(JobEvent.kind == "pull.published")
                 .group_by(Job.id, Job.created_at).having(first >= since))
    minutes: dict[str, list[float]] = {}
    for created, published in rows:
        minutes.setdefault(published.date().isoformat(), []).append(
            max((published - created).total_seconds(), 0.0) / 60)
    return [DayFigure(d, statistics.median(minutes[d]) if d in minutes else None,
                      len(minutes.get(d, [])))
            for d in _days(now, days)]


# job detail, shaped from its events (pure) ------------------------------------------------


@dataclass(frozen=True)
class StageSpan:
    attempt: int | None
    stage: str
    started: str
    status: str  # running | finished | failed
    seconds: float | None
    error: str = ""


@dataclass(frozen=True)
class Iteration:
    attempt: int | None
    i: int
    reply: dict[str, Any]
    result: dict[str, Any]


def _at(event: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(str(event["at"]).removesuffix("Z"))


def attempt_numbers(events: Iterable[dict[str, Any]]) -> dict[int, int]:
    """Attempt row id to the attempt's number (1, 2, …), from ``attempt.started`` events."""
    return {e["attempt_id"]: int(e["data"].get("number", 0)) for e in events
            if e["kind"] == "attempt.started" and e["attempt_id"] is not None}


def stage_timeline(events: Sequence[dict[str, Any]]) -> list[StageSpan]:
    """One span per stage run: when it started, how it ended and how long it took."""
    numbers = attempt_numbers(events)
    spans: list[StageSpan] = []
    open_at: dict[tuple[int | None, str], int] = {}
    for e in events:
        stage = str(e["data"].get("stage", ""))
        key = (e["attempt_id"], stage)
        if e["kind"] == "stage.started":
            open_at[key] = len(spans)
            spans.append(StageSpan(numbers.get(e["attempt_id"]), stage, e["at"], "running",
                                   None))
        elif e["kind"] in ("stage.finished", "stage.failed") and key in open_at:
            index = open_at.pop(key)
            span = spans[index]
            seconds = (_at(e) - _at({"at": span.started})).total_seconds()
            spans[index] = StageSpan(span.attempt, stage, span.started,
                                     e["kind"].removeprefix("stage."), round(seconds, 3),
                                     str(e["data"].get("error", "")))
    return spans


def agent_iterations(events: Sequence[dict[str, Any]]) -> list[Iteration]:
    """The agent's iterations: the model's reply (timing, tokens) and what came of it."""
    numbers = attempt_numbers(events)
    found: dict[tuple[int | None, int], Iteration] = {}
    for e in events:
        if e["kind"] not in ("agent.reply", "agent.iteration", "agent.tests"):
            continue
        i = e["data"].get("i")
        if not isinstance(i, int):
            continue
        key = (e["attempt_id"], i)
        it = found.get(key) or Iteration(numbers.get(e["attempt_id"]), i, {}, {})
        if e["kind"] == "agent.reply":
            it = Iteration(it.attempt, i, dict(e["data"]), it.result)
        else:  # the edit's fate, then the test run's: one result row, merged
            it = Iteration(it.attempt, i, it.reply, {**it.result, **e["data"]})
        found[key] = it
    return list(found.values())


def result_events(events: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in events if e["kind"] in _RESULT_KINDS]


def pull_link(events: Sequence[dict[str, Any]]) -> str | None:
    """The pull request's web address, when the ``pull.published`` event carries one.

    Only http(s): the address came from a forge, and a ``javascript:`` URL in an href
    would run in the dashboard's origin despite autoescaping.
    """
    for e in reversed(events):
        url = e["data"].get("url") if e["kind"] == "pull.published" else None
        if isinstance(url, str) and urlsplit(url).scheme in ("http", "https"):
            return url
    return None


def describe(data: dict[str, Any]) -> str:
    """An event's data as one line of ``key=value`` text (escaped by the template)."""
    return " ".join(f"{k}={v}" for k, v in data.items())


# protection -------------------------------------------------------------------------------


def is_loopback(host: str) -> bool:
    """True when a server bound to ``host`` is reachable from this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name other than localhost may resolve anywhere


@dataclass(frozen=True)
class _Guard:
    token: bytes | None
    trusted_header: str | None
    enabled: bool

    def cookie_value(self) -> str:
        # The cookie carries a digest derived from the token, not the token itself: a copy
        # read off a browser profile cannot be replayed as a Bearer token on the API.
        assert self.token is not None
        return hmac.new(self.token, b"forgebot dashboard cookie", hashlib.sha256).hexdigest()

    def user(self) -> str | None:
        """Who is asking, or None when the request may not see the dashboard."""
        if self.trusted_header:
            named = request.headers.get(self.trusted_header, "").strip()
            if named:
                return named
        if self.token is None:
            # Open only when nothing is configured, which the factory allows on loopback.
            return "local" if not self.trusted_header else None
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and _same(given.strip(), self.token):
            return "token"
        cookie = request.cookies.get(COOKIE, "")
        if cookie and _same(cookie, self.cookie_value().encode()):
            return "token"
        return None


def _same(given: str, expected: bytes) -> bool:
    return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), expected)


def _check(guard: _Guard) -> BaseResponse | None:
    """Runs before every dashboard request: 404 when off, the ``?token=`` exchange, 401."""
    if not guard.enabled:
        abort(404)
    given = request.args.get("token")
    if given is not None and guard.token is not None:
        if not _same(given, guard.token):
            return _unauthorized()
        # Trade the token for a cookie and drop it from the address bar, history and logs.
        args = {k: v for k, v in request.args.items() if k != "token"}
        values: dict[str, Any] = {**(request.view_args or {}), **args}
        target = url_for(str(request.endpoint), **values)
        response = redirect(target, code=303)
        response.set_cookie(COOKIE, guard.cookie_value(), httponly=True, samesite="Strict",
                            secure=request.is_secure, path=PREFIX)
        return response
    user = guard.user()
    if user is None:
        return _unauthorized()
    g.dashboard_user = user
    return None


def _unauthorized() -> Response:
    response = Response("The dashboard needs a token or a signed-in user.\n", status=401,
                        mimetype="text/plain")
    response.headers["WWW-Authenticate"] = 'Bearer realm="forgebot dashboard"'
    return response


def _harden(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = _CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers.setdefault("Cache-Control", "no-store")
    return response


# the blueprint ----------------------------------------------------------------------------


def _store() -> Store:
    store: Store = current_app.extensions["forgebot"]["store"]
    return store


def _job_or_404(job_id: int) -> tuple[JobView, list[dict[str, Any]]]:
    job = _store().get_job(job_id)
    if job is None:
        abort(404)
    return job, _store().events(job_id)


def _job_context(job_id: int) -> dict[str, Any]:
    job, events = _job_or_404(job_id)
    return {"job": job, "events": events, "stages": stage_timeline(events),
            "iterations": agent_iterations(events), "results": result_events(events),
            "pull_url": pull_link(events)}


def _add_routes(bp: Blueprint) -> None:
    def page(template: str, **context: Any) -> str:
        return render_template(f"dashboard/{template}", describe=describe, **context)

    @bp.get("/")
    def queue() -> str:
        return page("queue.html", queued=queued_jobs(_store()), running=running_jobs(_store()))

    @bp.get("/queue/live")
    def queue_live() -> str:
        return page("_queue.html", queued=queued_jobs(_store()), running=running_jobs(_store()))

    @bp.get("/running")
    def running() -> str:
        return page("running.html", running=running_jobs(_store()))

    @bp.get("/running/live")
    def running_live() -> str:
        return page("_running.html", running=running_jobs(_store()))

    @bp.get("/jobs/<int:job_id>")
    def job(job_id: int) -> str:
        return page("job.html", transcript=_store().transcript(job_id), **_job_context(job_id))

    @bp.get("/jobs/<int:job_id>/live")
    def job_live(job_id: int) -> str:
        return page("_job_live.html", **_job_context(job_id))

    @bp.get("/history")
    def history_page() -> str:
        filters = HistoryFilter.from_args(request.args)
        return page("history.html", jobs=history(_store(), filters), filters=filters,
                    choices=filter_choices(_store()))

    @bp.get("/charts")
    def charts() -> str:
        to_pull = time_to_pull(_store())
        longest = max((f.value for f in to_pull if f.value is not None), default=0.0)
        return page("charts.html", success=success_rate(_store()), to_pull=to_pull,
                    longest_to_pull=longest, percent=lambda v: f"{v:.0%}",
                    minutes_short=lambda v: f"{v:.0f}m" if v >= 10 else f"{v:.1f}m",
                    counts=_store().count_jobs(),
                    deliveries=_store().delivery_counts())


def dashboard_blueprint(token: str | None, trusted_header: str | None,
                        bound_beyond_localhost: bool) -> Blueprint:
    """The dashboard under ``/dashboard``, protected as the module docstring says.

    ``token``: a shared secret; ``trusted_header``: the header an authenticating proxy sets
    to the user's name; ``bound_beyond_localhost``: the server listens on more than loopback
    (see ``is_loopback``). With neither a token nor a header, the dashboard is served only
    when not bound beyond localhost; otherwise every URL under it is a 404.
    """
    guard = _Guard(token=token.encode("utf-8") if token else None,
                   trusted_header=trusted_header or None,
                   enabled=bool(token or trusted_header) or not bound_beyond_localhost)
    bp = Blueprint("dashboard", __name__, url_prefix=PREFIX, template_folder="templates",
                   static_folder="static", static_url_path="/static")
    check: Callable[[], BaseResponse | None] = lambda: _check(guard)  # noqa: E731
    bp.before_request(check)
    bp.after_request(_harden)

    @bp.errorhandler(StoreError)
    def store_down(_exc: StoreError) -> tuple[str, int]:
        return render_template("dashboard/unavailable.html"), 503

    _add_routes(bp)
    return bp
