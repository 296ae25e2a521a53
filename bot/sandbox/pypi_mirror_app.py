"""The WSGI application of the PyPI mirror's process (:mod:`bot.sandbox.pypi_mirror`):
proxpi's, with one line per request appended to the file ``FORGEBOT_MIRROR_LOG`` names
(method, status, bytes), which the bot reads back as the setup's record. Imported only in
that process, never by the bot itself."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from typing import Any

from proxpi.server import app as proxpi_app  # type: ignore[import-untyped]

_LOG_PATH = os.environ.get("FORGEBOT_MIRROR_LOG", "")
_lock = threading.Lock()

StartResponse = Callable[..., Any]


def _record(method: str, status: str, size: str) -> None:
    if not _LOG_PATH:
        return
    line = f"{method[:16]} {status[:3]} {size if size.isdigit() else 0}\n"
    with _lock, open(_LOG_PATH, "a", encoding="ascii", errors="replace") as log:
        log.write(line)


def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """proxpi, recording each answer's status and length."""

    def recording(status: str, headers: list[tuple[str, str]], *args: Any) -> Any:
        size = next((value for name, value in headers if name.lower() == "content-length"),
                    "0")
        _record(str(environ.get("REQUEST_METHOD", "GET")), status, size)
        return start_response(status, headers, *args)

    result: Iterable[bytes] = proxpi_app(environ, recording)
    return result
