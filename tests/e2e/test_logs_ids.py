"""Every JSON log line of a job carries its job and attempt ids, and every line written while
planning a delivery carries the delivery id: captured from a real run of the service."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from bot.logs import JsonFormatter

pytestmark = [pytest.mark.docker, pytest.mark.slow]


class Capture(logging.Handler):
    """Formats each record at once, in the thread that wrote it: the job ids live in that
    thread's context, as they do for the real handler writing to standard error."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonFormatter())
        self.lines: list[tuple[str, dict[str, Any]]] = []
        self._guard = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        line = json.loads(self.format(record))
        with self._guard:
            self.lines.append((record.threadName or "", line))


@contextmanager
def captured() -> Iterator[Capture]:
    handler = Capture()
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)  # every line, third-party libraries' too
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def test_every_line_of_a_job_carries_its_ids(live_factory, transcripts):
    live = live_factory(transcripts / "add_farewell.yaml")
    # Filed before the capture starts: the CLI sets up logging, replacing the root's handlers.
    live.file_issue("Add a farewell", "Add `farewell(name)` next to `greet`, with tests.")
    with captured() as capture:
        live.run_until_idle()
    [job] = live.service.store.list_jobs()
    assert job.outcome == "submitted"
    attempts = {e["attempt_id"] for e in live.service.store.events(job.id) if e["attempt_id"]}

    # The pool's threads run jobs and nothing else: each of their lines is a job's line.
    job_lines = [line for thread, line in capture.lines if thread.startswith("job")]
    assert len(job_lines) >= 5, [line["msg"] for line in job_lines]
    missing = [line for line in job_lines if line.get("job") != job.id
               or line.get("attempt") not in attempts]
    assert missing == []
    planned = [line for _, line in capture.lines if line["logger"] == "bot.pipeline.planner"]
    assert planned and all(line.get("delivery") for line in planned), planned
    assert any(line["msg"] == "delivery planned" and line.get("job") == job.id
               for line in planned)
