"""``POST /webhooks/<forge>``: verify, store, answer. Never calls a forge API or a model."""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

from flask import Blueprint, current_app, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge

from bot.errors import StoreError
from bot.metrics import Metrics

log = logging.getLogger(__name__)
blueprint = Blueprint("webhooks", __name__)


def _ext() -> dict[str, Any]:
    ext: dict[str, Any] = current_app.extensions["forgebot"]
    return ext


def _count(forge: str, event: str, result: str) -> None:
    metrics: Metrics = _ext()["metrics"]
    metrics.deliveries.labels(forge, event[:64] or "unknown", result).inc()


@blueprint.post("/webhooks/<forge_name>")
def receive(forge_name: str) -> tuple[Any, int]:
    forge = _ext()["forges"].get(forge_name)
    if forge is None:
        _count("unknown", "", "unknown_forge")
        return jsonify(error=f"unknown forge '{forge_name}'"), 404
    headers = {k: v for k, v in request.headers.items()}
    # The event header is attacker-chosen until the signature checks out: rejected deliveries
    # are counted as "unverified" so nobody can mint metric series by sending names.
    event = forge.event_kind(headers)
    try:
        body = request.get_data(cache=False)
    except RequestEntityTooLarge:
        _count(forge_name, "unverified", "too_large")
        return jsonify(error="payload too large"), 413
    if not forge.verify(headers, body):
        _count(forge_name, "unverified", "unauthorized")
        log.warning("webhook rejected: bad or missing signature", extra={"forge": forge_name})
        return jsonify(error="invalid signature"), 401
    try:
        json.loads(body)
        body.decode("utf-8")
    except (ValueError, UnicodeDecodeError, RecursionError):  # deep nesting is malformed too
        _count(forge_name, event, "malformed")
        return jsonify(error="malformed JSON body"), 400
    # Without a delivery id, the body's hash stands in: a byte-identical redelivery is a duplicate.
    delivery = forge.delivery_id(headers) or "sha256:" + hashlib.sha256(body).hexdigest()
    try:
        row, created = _ext()["store"].record_delivery(
            forge_name, delivery[:128], event, headers, body
        )
    except StoreError:
        _count(forge_name, event, "store_error")
        log.exception("could not store a delivery")
        return jsonify(error="store unavailable, retry later"), 503
    _count(forge_name, event, "stored" if created else "duplicate")
    if created:
        _ext()["wake"]()
    log.info("delivery stored", extra={"forge": forge_name, "delivery": delivery,
                                       "duplicate": not created})
    return jsonify(delivery=delivery, id=row, duplicate=not created), 202
