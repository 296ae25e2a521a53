"""Health checks and the read-only JSON API over jobs."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request

from bot.errors import StoreError
from bot.metrics import CONTENT_TYPE

blueprint = Blueprint("api", __name__)


def _ext() -> dict[str, Any]:
    ext: dict[str, Any] = current_app.extensions["forgebot"]
    return ext


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


@blueprint.get("/api/jobs")
def list_jobs() -> tuple[Any, int]:
    try:
        limit = min(max(int(request.args.get("limit", "100")), 1), 1000)
    except ValueError:
        return jsonify(error="limit must be a number"), 400
    store = _ext()["store"]
    jobs = store.list_jobs(limit=limit, state=request.args.get("state"))
    return jsonify(jobs=[j.as_dict() for j in jobs], idle=store.is_idle()), 200


@blueprint.get("/api/jobs/<int:job_id>")
def show_job(job_id: int) -> tuple[Any, int]:
    store = _ext()["store"]
    job = store.get_job(job_id)
    if job is None:
        return jsonify(error=f"no job {job_id}"), 404
    return jsonify(job=job.as_dict(), events=store.events(job_id)), 200

