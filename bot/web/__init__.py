"""The Flask app: webhooks, health, and the JSON API."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from flask import Blueprint, Flask

from bot.forges.base import Forge
from bot.metrics import Metrics
from bot.store import Store
from bot.web import api, webhooks


def create_app(
    store: Store,
    forges: Mapping[str, Forge],
    *,
    wake: Callable[[], None] = lambda: None,
    ready: Callable[[], bool] = lambda: True,
    max_body_bytes: int = 5 * 1024 * 1024,
    receive: bool = True,
    metrics: Metrics | None = None,
    dashboard: Blueprint | None = None,
) -> Flask:
    """Build the app. ``wake`` is called after a delivery is stored, so work starts at once.
    A worker-only process passes ``receive=False``: health and the API, but no webhooks."""
    app = Flask("forgebot")
    app.config["MAX_CONTENT_LENGTH"] = max_body_bytes
    app.extensions["forgebot"] = {"store": store, "forges": forges, "wake": wake, "ready": ready,
                                  "metrics": metrics or Metrics(store)}
    if receive:
        app.register_blueprint(webhooks.blueprint)
    app.register_blueprint(api.blueprint)
    if dashboard is not None:
        app.register_blueprint(dashboard)
    return app
