"""The Docker engine for the sandbox test modules: one way to reach it, skip or fail, and
clean up after."""

from __future__ import annotations

import gc
import io
import os
import tarfile
import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import docker
import pytest

from bot.sandbox.docker import image_status


@contextmanager
def docker_engine(images: Iterable[str], cleanup_label: str | None = None
                  ) -> Iterator[docker.DockerClient]:
    """A client once the engine answers and every image in ``images`` is current.

    Without them the test FAILS (CI must not silently skip the sandbox), unless
    FORGEBOT_ALLOW_SKIP=1. Afterwards, containers and volumes labelled ``cleanup_label``
    (``key=value``) are removed.
    """
    problems: list[str] = []
    engine: docker.DockerClient | None = None
    try:
        engine = docker.from_env()
        engine.ping()
        problems = [p for p in (image_status(engine, ref) for ref in images) if p]
    except Exception as exc:  # any failure to reach the engine means "no Docker here"
        problems = [f"Docker engine unavailable: {exc}"]
    if problems:
        if engine is not None:
            engine.close()
        # docker-py leaves the socket of a failed connection to the garbage collector; collect
        # it now, quietly, rather than let its ResourceWarning fail an unrelated test.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            gc.collect()
        reason = "; ".join(problems)
        if os.environ.get("FORGEBOT_ALLOW_SKIP") == "1":
            pytest.skip(reason)
        pytest.fail(f"{reason} (set FORGEBOT_ALLOW_SKIP=1 to skip instead)", pytrace=False)
    assert engine is not None
    try:
        yield engine
    finally:
        if cleanup_label is not None:
            selector = {"label": cleanup_label}
            for container in engine.containers.list(all=True, filters=selector):
                container.remove(force=True)
            for volume in engine.volumes.list(filters=selector):
                volume.remove(force=True)
        engine.close()


def tar_of(files: dict[str, str]) -> bytes:
    """An uncompressed tar of small text files owned by uid 1000."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, text in files.items():
            data = text.encode()
            member = tarfile.TarInfo(name)
            member.size, member.mode, member.uid, member.gid = len(data), 0o644, 1000, 1000
            tar.addfile(member, io.BytesIO(data))
    return buffer.getvalue()
