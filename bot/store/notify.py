"""Cross-process wake-ups on PostgreSQL: LISTEN/NOTIFY on one channel.

A receiver replica that stores a delivery wakes its own dispatcher directly, but a worker in
another process (the Helm chart's layout) would only see the delivery at its next tick. The
store sends a notification on ``WORK_CHANNEL`` in the same transaction that stores a
delivery or queues a job, so it reaches listeners exactly when that work becomes visible,
and never for a transaction that rolled back. A ``WorkListener`` in each worker turns the
notifications into ``Dispatcher.wake`` calls. On SQLite (one process) there is nothing to do.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import psycopg
from sqlalchemy.engine import make_url

from bot.store.db import WORK_CHANNEL, normalise_url

log = logging.getLogger(__name__)


def libpq_url(url: str) -> str | None:
    """The libpq connection URI for a PostgreSQL store URL; None for any other database."""
    parsed = make_url(normalise_url(url))
    if parsed.get_backend_name() != "postgresql":
        return None
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


class WorkListener:
    """Calls ``on_work`` whenever another process stores a delivery or queues a job.

    ``start`` runs a daemon thread with its own connection (LISTEN needs one that is not
    pooled); ``stop`` ends it. If the connection drops, the thread reconnects after
    ``retry_seconds`` and calls ``on_work`` once, since notifications sent meanwhile are
    lost. For a store that is not PostgreSQL, ``start`` does nothing.
    """

    def __init__(self, url: str, on_work: Callable[[], None], *,
                 retry_seconds: float = 5.0) -> None:
        self._conninfo = libpq_url(url)
        self._on_work = on_work
        self._retry = retry_seconds
        self._stop = threading.Event()
        self._listening = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, timeout: float = 10.0) -> bool:
        """Start listening; True once the first LISTEN is in place (False: not PostgreSQL,
        or the database did not answer within ``timeout``; the thread keeps trying)."""
        if self._conninfo is None or self._thread is not None:
            return self._listening.is_set()
        self._thread = threading.Thread(target=self._run, args=(self._conninfo,),
                                        name="store-listener", daemon=True)
        self._thread.start()
        return self._listening.wait(timeout)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop listening and wait for the thread to end."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self, conninfo: str) -> None:
        first = True
        while not self._stop.is_set():
            try:
                self._listen(conninfo, catch_up=not first)
            except psycopg.Error as exc:
                # Never the URL: it may hold a password.
                log.warning("store listener lost its connection, retrying",
                            extra={"error": exc.__class__.__name__})
                self._listening.clear()
                self._stop.wait(self._retry)
            first = False

    def _listen(self, conninfo: str, *, catch_up: bool) -> None:
        with psycopg.connect(conninfo, autocommit=True, connect_timeout=10) as conn:
            conn.execute(f"LISTEN {WORK_CHANNEL}")
            self._listening.set()
            if catch_up:
                self._on_work()
            while not self._stop.is_set():
                # A short timeout so that stop() is noticed within a second.
                for _ in conn.notifies(timeout=1.0):
                    self._on_work()
