"""Named leases in the database, e.g. "only one poller per mailbox".

A lock is held by ``holder`` (say ``host:pid``) and kept alive by ``refresh_lock`` heartbeats; a
lock whose heartbeat is older than ``stale_after`` is taken over by the next ``acquire_lock``
(its holder crashed). Each call is one atomic statement, safe under concurrency on SQLite and
PostgreSQL; commit right after acquiring so that other processes see the lock.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import Table, delete, or_, select, update
from sqlalchemy.orm import Session

from storage._dialect import insert_or_ignore
from storage.models import Lock, utcnow

DEFAULT_STALE_AFTER = timedelta(minutes=5)
# The declarative base types __table__ as any FromClause; ours is a plain Table, which update() takes.
_TABLE = cast(Table, Lock.__table__)


def acquire_lock(
    session: Session,
    name: str,
    holder: str,
    *,
    stale_after: timedelta = DEFAULT_STALE_AFTER,
    now: datetime | None = None,
) -> bool:
    """Take the lock ``name`` for ``holder``; True if it is now ours (also if it already was).

    False while another holder's heartbeat is younger than ``stale_after``.
    """
    at = now or utcnow()
    table = _TABLE
    values = {"holder": holder, "acquired_at": at, "heartbeat_at": at}
    if insert_or_ignore(session, table, ["name"], name=name, **values):
        return True
    statement = (
        update(table)
        .where(table.c.name == name, or_(table.c.holder == holder, table.c.heartbeat_at < at - stale_after))
        .values(**values)
    )
    return session.execute(statement).rowcount == 1  # type: ignore[attr-defined]


def refresh_lock(session: Session, name: str, holder: str, *, now: datetime | None = None) -> bool:
    """Renew the heartbeat; False if ``holder`` no longer holds the lock (it went stale and was taken)."""
    table = _TABLE
    statement = (
        update(table)
        .where(table.c.name == name, table.c.holder == holder)
        .values(heartbeat_at=now or utcnow())
    )
    return session.execute(statement).rowcount == 1  # type: ignore[attr-defined]


def release_lock(session: Session, name: str, holder: str) -> bool:
    """Give the lock up; False if ``holder`` did not hold it."""
    table = _TABLE
    statement = delete(table).where(table.c.name == name, table.c.holder == holder)
    return session.execute(statement).rowcount == 1  # type: ignore[attr-defined]


def lock_holder(session: Session, name: str) -> Lock | None:
    """The current lock row (holder, heartbeat) or None if nobody holds it."""
    statement = select(Lock).where(Lock.name == name).execution_options(populate_existing=True)
    return session.scalars(statement).one_or_none()
