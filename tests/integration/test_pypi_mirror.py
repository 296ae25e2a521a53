"""The PyPI mirror (bot/sandbox/pypi_mirror.py) as the setup phase uses it: a real proxpi in
its own process, fetching from the real PyPI, asked by a real pip. A file is fetched from
upstream once; a later mirror on the same cache serves it without fetching again; each
request is recorded; a mirror that cannot start says why and leaves nothing running."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bot.errors import SandboxError
from bot.sandbox.pypi_mirror import PypiMirror, mirror_environment, parse_requests

PINNED = "iniconfig==2.0.0"  # a small pure-Python wheel


def _download(index: str, into: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--no-cache-dir",
         "--isolated", "--index-url", index, "--dest", str(into), PINNED],
        capture_output=True, text=True, timeout=300, check=False)


def test_a_file_is_fetched_once_and_then_served_from_the_cache(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = PypiMirror("127.0.0.1", cache)
    try:
        done = _download(first.start(), tmp_path / "one")
    finally:
        records = first.stop()
    assert done.returncode == 0, done.stdout[-1000:] + done.stderr[-1000:]
    kept = [f for f in cache.rglob("*.whl")]
    assert [f.name for f in kept] == ["iniconfig-2.0.0-py3-none-any.whl"]
    assert {r.host for r in records} == {"pypi.org (mirror)"}
    assert any(r.status == 200 and r.bytes > 1000 for r in records)
    before = kept[0].stat().st_mtime_ns

    again = PypiMirror("127.0.0.1", cache)
    try:
        done = _download(again.start(), tmp_path / "two")
    finally:
        again.stop()
    assert done.returncode == 0, done.stderr[-1000:]
    assert (tmp_path / "two" / "iniconfig-2.0.0-py3-none-any.whl").read_bytes() \
        == (tmp_path / "one" / "iniconfig-2.0.0-py3-none-any.whl").read_bytes()
    assert kept[0].stat().st_mtime_ns == before  # served from the cache, not fetched again


def test_a_mirror_that_cannot_listen_says_why(tmp_path: Path) -> None:
    mirror = PypiMirror("203.0.113.7", tmp_path / "cache")  # not an address of this host
    with pytest.raises(SandboxError, match="PyPI mirror"):
        mirror.start()
    assert mirror.stop() == []


def test_the_request_log_is_read_as_hostile_input() -> None:
    text = "GET 200 1234\nGET 404 0\nnonsense\nPOST abc 1\n" + "GET 200 1\n" * 5000
    records = parse_requests(text, "pypi.org (mirror)")
    assert records[0].status == 200 and records[0].bytes == 1234
    assert records[1].allowed  # a missing project is not the policy at work
    assert len(records) == 2000


def test_the_setup_goes_to_the_mirror_around_the_proxy() -> None:
    environment = mirror_environment("http://172.28.0.1:4000/index/", "172.28.0.1")
    assert environment == {"PIP_INDEX_URL": "http://172.28.0.1:4000/index/",
                           "PIP_TRUSTED_HOST": "172.28.0.1", "NO_PROXY": "172.28.0.1",
                           "no_proxy": "172.28.0.1"}
