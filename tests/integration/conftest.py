"""Store backends for integration tests: SQLite and a real PostgreSQL, a fresh database each.

A test module runs on both backends by asking for ``backend_store`` (or ``backend_url``);
``test_store.py`` does so through its own ``store`` fixture. The PostgreSQL cases take the
server from FORGEBOT_TEST_POSTGRES_URL (``scripts/ensure-postgres.sh`` prints one), create a
database with a random name for each test and drop it afterwards. Without that variable they
fail, so a green run never silently left PostgreSQL out; FORGEBOT_ALLOW_SKIP=1 skips them.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from bot.store import Store, open_store
from bot.store.db import normalise_url

POSTGRES_ENV = "FORGEBOT_TEST_POSTGRES_URL"
BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]


# Read once, then taken out of the environment: the settings loader refuses FORGEBOT_* names
# it does not know, and the CLI and end-to-end tests load settings from this environment.
_POSTGRES_SERVER = os.environ.pop(POSTGRES_ENV, "").strip()


def postgres_server_url() -> str:
    """The PostgreSQL server to test against, or fail (skip with FORGEBOT_ALLOW_SKIP=1)."""
    url = _POSTGRES_SERVER
    if url:
        return normalise_url(url)
    problem = (f"{POSTGRES_ENV} is not set: run "
               f"`export {POSTGRES_ENV}=$(bash scripts/ensure-postgres.sh)` first")
    if os.environ.get("FORGEBOT_ALLOW_SKIP") == "1":
        pytest.skip(problem)
    pytest.fail(f"{problem} (or set FORGEBOT_ALLOW_SKIP=1 to skip instead)", pytrace=False)


@contextmanager
def fresh_postgres_database(server_url: str) -> Iterator[str]:
    """A new, empty database on ``server_url``'s server; dropped, connections and all, after."""
    name = f"forgebot_test_{secrets.token_hex(6)}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except SQLAlchemyError as exc:
        admin.dispose()
        pytest.fail(f"cannot create a test database on {POSTGRES_ENV}'s server: {exc}",
                    pytrace=False)
    try:
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            # FORCE ends sessions a test (or a worker process it started) left open.
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for a test that needs PostgreSQL itself."""
    with fresh_postgres_database(postgres_server_url()) as url:
        yield url


@pytest.fixture(params=BACKENDS)
def backend_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database on each backend in turn: a SQLite file, then PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    with fresh_postgres_database(postgres_server_url()) as url:
        yield url


@pytest.fixture
def backend_store(backend_url: str) -> Iterator[Store]:
    """A migrated store on each backend in turn."""
    store = open_store(backend_url)
    yield store
    store.engine.dispose()
