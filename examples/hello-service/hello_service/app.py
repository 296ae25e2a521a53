"""A WSGI app with two routes: ``/`` and ``/greet?name=...``."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from urllib.parse import parse_qs


def greet(name: str) -> str:
    """A friendly greeting; an empty name greets the world."""
    name = name.strip() or "world"
    return f"Hello, {name}!"


def app(environ: dict, start_response: Callable) -> Iterable[bytes]:
    path = environ.get("PATH_INFO", "/")
    query = parse_qs(environ.get("QUERY_STRING", ""))
    if path == "/":
        return _json(start_response, "200 OK", {"service": "hello-service"})
    if path == "/greet":
        name = query.get("name", [""])[0]
        return _json(start_response, "200 OK", {"message": greet(name)})
    return _json(start_response, "404 Not Found", {"error": "not found"})


def _json(start_response: Callable, status: str, payload: dict) -> Iterable[bytes]:
    body = json.dumps(payload).encode()
    start_response(status, [("Content-Type", "application/json")])
    return [body]
