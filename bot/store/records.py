"""Repository records (``repo_records``) and the per-repository job reads that reconciliation
and the dashboard issue need.

Functions over a :class:`~bot.store.Store` rather than methods on it, so these features
keep their queries apart from the core ones in ``queries.py``. A record is a small JSON
document named by ``(forge, repo, kind, key)``: the last reconciliation pass, the newest
comment seen on an item, the number of a repository's dashboard issue.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.exc import IntegrityError

from bot.errors import StoreError
from bot.store.models import Job, RepoRecord, utcnow
from bot.store.queries import JobView, Store, _view


def get_record(store: Store, forge: str, repo: str, kind: str, key: str) -> dict[str, Any] | None:
    """The record's data, or None when there is none."""
    with store._tx() as s:
        row = s.scalars(select(RepoRecord).where(
            RepoRecord.forge == forge, RepoRecord.repo == repo, RepoRecord.kind == kind,
            RepoRecord.key == key)).first()
        return dict(row.data) if row is not None and isinstance(row.data, dict) else None


def put_record(store: Store, forge: str, repo: str, kind: str, key: str, *,
               data: Mapping[str, Any]) -> None:
    """Create or replace the record's data (the last writer wins: every record here is a
    mark that only moves forward or a fact that does not change)."""
    for _ in range(2):  # a second writer may insert between our look and our insert
        try:
            with store._tx() as s:
                row = s.scalars(select(RepoRecord).where(
                    RepoRecord.forge == forge, RepoRecord.repo == repo,
                    RepoRecord.kind == kind, RepoRecord.key == key)).first()
                if row is None:
                    s.add(RepoRecord(forge=forge, repo=repo, kind=kind, key=key,
                                     data=dict(data)))
                else:
                    row.data = dict(data)
                    row.updated_at = utcnow()
                return
        except IntegrityError:
            continue
    raise StoreError(f"could not write record {kind}/{key} of {repo}: concurrent writers")


def claim_record(store: Store, forge: str, repo: str, kind: str, key: str, *,
                 data: Mapping[str, Any]) -> bool:
    """Create the record only if there is none: True when this call created it (two
    processes racing get one True)."""
    try:
        with store._tx() as s:
            s.add(RepoRecord(forge=forge, repo=repo, kind=kind, key=key, data=dict(data)))
        return True
    except IntegrityError:
        return False


def repo_jobs(store: Store, forge: str, repo: str, *, states: Sequence[str] = (),
              updated_since: datetime | None = None, limit: int = 200) -> list[JobView]:
    """Jobs of one repository, newest first: those in ``states`` (any state when empty),
    or, with ``updated_since``, also any job changed since then (naive UTC)."""
    with store._tx() as s:
        query = select(Job).where(Job.forge == forge, Job.repo == repo)
        conditions: list[ColumnElement[bool]] = []
        if states:
            conditions.append(Job.state.in_(tuple(states)))
        if updated_since is not None:
            conditions.append(Job.updated_at >= updated_since)
        if conditions:
            query = query.where(or_(*conditions))
        rows = s.scalars(query.order_by(Job.id.desc()).limit(limit)).all()
        return [_view(job) for job in rows]
