"""Engine, migrations and sessions. SQLite by default; PostgreSQL (psycopg 3) to scale out."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.pool import ConnectionPoolEntry

from bot.errors import ConfigError, StoreError

MIGRATIONS = Path(__file__).resolve().parent / "migrations"

# Any constant will do: it names the lock every process takes while it migrates.
_MIGRATION_LOCK = 0x666F7267  # "forg"

# The PostgreSQL NOTIFY channel on which the store announces new work (see notify.py).
WORK_CHANNEL = "forgebot_work"

# The driver we ship; plain ``postgres://`` and ``postgresql://`` URLs would otherwise ask
# SQLAlchemy for psycopg2, which is not installed.
_PG_DRIVER = "postgresql+psycopg"


def normalise_url(url: str) -> str:
    """``url`` with PostgreSQL URLs pointed at psycopg 3; anything else unchanged."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigError(f"store.url is not a database URL: {exc}") from exc
    if parsed.drivername in {"postgres", "postgresql"}:
        return parsed.set(drivername=_PG_DRIVER).render_as_string(hide_password=False)
    return url


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets WAL, a busy timeout and foreign keys."""
    url = normalise_url(url)
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    # pre_ping: a pooled connection may have been closed by a database restart or failover.
    return create_engine(url, pool_pre_ping=True)


def is_postgres(engine: Engine) -> bool:
    """True when ``engine`` talks to PostgreSQL (row locks, SKIP LOCKED, advisory locks)."""
    return engine.dialect.name == "postgresql"


def _sqlite_pragmas(dbapi_conn: Any, _record: ConnectionPoolEntry) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _alembic_config() -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def _serialise_migrations(conn: Connection) -> None:
    """Make concurrent starts migrate one after the other.

    Receiver and worker replicas start together; without this, two of them would both see an
    empty schema and both try to create it. PostgreSQL's DDL is transactional, so the lock
    (released at commit) covers the whole upgrade and the second process finds it done.
    SQLite's single writer already serialises them.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision (safe to run at every start, and at once)."""
    cfg = _alembic_config()
    try:
        with engine.begin() as conn:
            _serialise_migrations(conn)
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot migrate the store: {exc.__class__.__name__}: {exc}") from exc


def schema_status(engine: Engine) -> tuple[str | None, str]:
    """(current revision, newest revision) for ``forgebot doctor``."""
    head = ScriptDirectory.from_config(_alembic_config()).get_current_head() or ""
    try:
        with engine.connect() as conn:
            current = MigrationContext.configure(conn).get_current_revision()
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot read the schema version: {exc.__class__.__name__}") from exc
    return current, head
