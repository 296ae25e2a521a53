"""Coverage-guided fuzzing of every webhook endpoint with atheris (libFuzzer for Python).

Each input is read by a ``FuzzedDataProvider`` into one delivery: a forge, one of its real
captured payloads (tests/fixtures/webhooks), a body mutation, headers and a signature mode,
from the same vocabulary as the hypothesis tests (``cases.py``). The delivery goes through the
real Flask app, the real forge adapters and a real SQLite store; accepted ones are planned.
forgebot's own modules are instrumented, so libFuzzer steers towards inputs that reach new
code in them. Properties, each an exception libFuzzer reports as a crash with its input:

- never a 5xx;
- a delivery that is not correctly signed is a 401 (or a 413) and stores nothing, so no job
  can come of it;
- a correctly signed one is a 202, 400 or 413; planning it never raises, and one trigger
  makes at most one job.

Run it (from the repository root)::

    python -m tests.fuzz.atheris_webhooks -runs=100000 -seed=1 [CORPUS_DIR]

``FORGEBOT_TEST_FUZZ_DIR`` names the folder for its store and local forge (default: a new
temporary folder, on /dev/shm where there is one). ``tests/fuzz/test_atheris_webhooks.py``
runs it for a bounded number of runs.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import shutil
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import atheris

with atheris.instrument_imports(include=["bot"]):
    import responses
    from flask.testing import FlaskClient

    from bot.forges import build_forges
    from bot.pipeline.planner import Planner
    from bot.policy.model import Policy
    from bot.store import Store, open_store
    from bot.web import create_app
    from tests.fuzz import cases
    from tests.fuzz.cases import AUTHENTIC_MODES, SIGNATURE_MODES, ForgeSpec
    from tests.fuzz.test_webhook_fuzz import _fake_forge_api, fuzz_settings

SPECS = cases.forge_specs()
FORGES = sorted(SPECS)
BODY_KINDS = ("real", "retarget", "flip", "truncate", "json", "json", "raw")
CONTENT_TYPES = ("application/json", "application/json; charset=utf-8", "text/plain",
                 "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", None)
EVENTS = sorted({event for spec in SPECS.values() for event, _ in spec.payloads}
                | {"ping", "", "pull_request_comment"})
ODD_STRINGS = ("\ud800", "a\udfffb", "\u202eevil", "\x00", "", "../../etc/passwd",
               "<!-- forgebot:status:1 -->", "a" * 5000)


class Target:
    """The receiver under test: the app, its store, and a planner over the same forges."""

    def __init__(self, root: Path) -> None:
        settings = fuzz_settings(root)
        (settings.local_root / "permissions.yml").write_text("ada: admin\n")
        self.store: Store = open_store(settings.store_url)
        forges = build_forges(settings, trigger_labels=(cases.TRIGGER,))
        # Not app.testing: an exception must become the 500 a real server answers.
        self.client: FlaskClient = create_app(self.store, forges).test_client()
        self.planner = Planner(self.store, forges, Policy(), settings.bot_user)
        self.api = responses.RequestsMock(assert_all_requests_are_fired=False)
        for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
            for host in (cases.GITHUB_API, cases.GITLAB_HOST, cases.GITEA_HOST):
                self.api.add_callback(method, re.compile(re.escape(host) + r"/.*"),
                                      callback=_fake_forge_api)
        self.api.start()
        self.tally: Counter[str] = Counter()

    def stored(self) -> int:
        return sum(self.store.delivery_counts().values())

    def check(self, spec: ForgeSpec, mode: str, body: bytes,
              headers: list[tuple[str, str]]) -> None:
        """Send one delivery and assert every property."""
        before = self.stored()
        response = self.client.post(f"/webhooks/{spec.name}", input_stream=io.BytesIO(body),
                                    content_length=len(body), headers=headers)
        status = response.status_code
        self.tally[f"status {status}"] += 1
        if status >= 500:
            raise AssertionError(f"{spec.name}: {status} {response.get_data()[:300]!r}")
        if mode not in AUTHENTIC_MODES:
            if status not in (401, 413) or self.stored() != before:
                raise AssertionError(f"{spec.name}: unsigned delivery ({mode}) got {status}, "
                                     f"stored {self.stored() - before}")
            return
        if status not in (202, 400, 413):
            raise AssertionError(f"{spec.name}: signed delivery got {status}")
        if status != 202:
            return
        made = self.planner.plan_pending()
        self.tally[f"jobs made {made}"] += 1
        keys = Counter(job.trigger_key for job in self.store.list_jobs(limit=1_000_000))
        if made > 1 or any(count > 1 for count in keys.values()):
            raise AssertionError(f"{spec.name}: one delivery made {made} jobs: {keys}")
        self.api.calls.reset()


# ------------------------------------------------------------------ reading an input


def _pick(fdp: atheris.FuzzedDataProvider, values: tuple[Any, ...] | list[Any]) -> Any:
    return values[fdp.ConsumeIntInRange(0, len(values) - 1)]


def _header_text(fdp: atheris.FuzzedDataProvider, size: int) -> str:
    # What an HTTP header can carry: Latin-1 without control characters.
    raw = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, size))
    return "".join(chr(b) for b in raw if 0x20 <= b <= 0xFF and b != 0x7F)


def _json_value(fdp: atheris.FuzzedDataProvider) -> Any:
    kind = fdp.ConsumeIntInRange(0, 7)
    if kind == 0:
        return None
    if kind == 1:
        return fdp.ConsumeBool()
    if kind == 2:
        return fdp.ConsumeInt(9)  # up to 2**71 either way
    if kind == 3:
        return fdp.ConsumeRegularFloat()
    if kind == 4:
        return fdp.ConsumeUnicode(fdp.ConsumeIntInRange(0, 40))
    if kind == 5:
        return _pick(fdp, ODD_STRINGS)
    if kind == 6:
        return cases.nest(fdp.ConsumeIntInRange(0, 300))
    return [fdp.ConsumeInt(2) for _ in range(fdp.ConsumeIntInRange(0, 4))]


def _body(fdp: atheris.FuzzedDataProvider, original: bytes) -> bytes:
    kind = _pick(fdp, BODY_KINDS)
    if kind == "real":
        return original
    if kind == "retarget":
        return cases.retarget(original, _pick(fdp, cases.COMMANDS))
    if kind == "flip":
        flips = [(fdp.ConsumeIntInRange(0, 1 << 20), fdp.ConsumeIntInRange(0, 255))
                 for _ in range(fdp.ConsumeIntInRange(1, 8))]
        return cases.flip_bytes(original, flips)
    if kind == "truncate":
        return cases.truncate(original, fdp.ConsumeIntInRange(0, 1 << 20))
    if kind == "raw":
        return bytes(fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 2048)))
    payload = json.loads(original)
    for _ in range(fdp.ConsumeIntInRange(1, 3)):
        where = cases.paths(payload)
        payload = cases.mutate_at(payload, _pick(fdp, where),
                                  _pick(fdp, ("delete", "replace", "wrap")), _json_value(fdp))
    return cases.encode(payload, ascii_only=fdp.ConsumeBool())


def delivery(data: bytes) -> tuple[ForgeSpec, str, bytes, list[tuple[str, str]]]:
    """One delivery (forge, signature mode, body, headers) read from a fuzzer's input."""
    fdp = atheris.FuzzedDataProvider(data)
    spec = SPECS[_pick(fdp, FORGES)]
    event, original = _pick(fdp, spec.payloads)
    body = _body(fdp, original)
    headers: list[tuple[str, str]] = list(spec.extra)
    content_type = _pick(fdp, CONTENT_TYPES)
    if content_type is not None:
        headers.append(("Content-Type", content_type))
    if fdp.ConsumeIntInRange(0, 9):  # sometimes no event header at all
        headers.append((spec.event_header, event if fdp.ConsumeBool() else _pick(fdp, EVENTS)))
    if fdp.ConsumeBool():
        headers.append((spec.delivery_header, _header_text(fdp, 160)))
    mode = _pick(fdp, SIGNATURE_MODES)
    headers += cases.signature_headers(spec, mode, body, _header_text(fdp, 80))
    return spec, mode, body, headers


def main(argv: list[str]) -> None:
    folder = os.environ.get("FORGEBOT_TEST_FUZZ_DIR")
    shm = Path("/dev/shm")
    root = Path(folder) if folder else Path(tempfile.mkdtemp(dir=shm if shm.is_dir() else None))
    target = Target(root)
    logging.disable(logging.WARNING)  # a rejected delivery is a warning: thousands of lines

    def one_input(data: bytes) -> None:
        target.check(*delivery(data))

    atheris.Setup(argv, one_input)
    try:
        atheris.Fuzz()
    finally:  # reached when a property fails; libFuzzer ends a clean run with exit()
        if not folder:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main(sys.argv)
