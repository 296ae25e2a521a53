"""The store: SQLAlchemy models, migrations and queries."""

from __future__ import annotations

from bot.store.db import make_engine, migrate
from bot.store.queries import Claim, DeliveryView, JobView, Store


def open_store(url: str) -> Store:
    """Open the store at ``url`` and bring its schema up to date."""
    engine = make_engine(url)
    migrate(engine)
    return Store(engine)


__all__ = ["Claim", "DeliveryView", "JobView", "Store", "open_store"]
