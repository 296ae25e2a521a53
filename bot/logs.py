"""Logging as JSON lines. The ids a job's lines carry come in through ``extra=``."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}
# The ids of the job the current thread works on: every log line of a job carries them, so an
# operator goes from a pull request comment (which names the job) to its log lines.
_JOB_CONTEXT: ContextVar[dict[str, Any] | None] = ContextVar("forgebot_job", default=None)


@contextmanager
def job_context(**ids: Any) -> Iterator[None]:
    """Attach ``ids`` (job, attempt, delivery) to every log line written inside the block."""
    token = _JOB_CONTEXT.set({**(_JOB_CONTEXT.get() or {}), **ids})
    try:
        yield
    finally:
        _JOB_CONTEXT.reset(token)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        out.update(_JOB_CONTEXT.get() or {})
        out.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def setup_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("alembic", "apscheduler", "urllib3", "docker", "waitress"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
