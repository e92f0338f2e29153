"""Case references like ``2026-000123``: a per-year counter handed out without races.

The counter row is created if missing (``INSERT ... ON CONFLICT DO NOTHING``), then incremented
with ``UPDATE ... RETURNING``. The UPDATE takes the row lock on PostgreSQL (a concurrent
transaction waits, then increments the committed value) and the write lock on SQLite, so two
transactions can never get the same number. The counter is an ordinary row, not a sequence, so its
update is undone with whatever rolls back around it: allocate in the same transaction *and savepoint*
as the rows that use the numbers (``create_case`` does it inside the savepoint of its INSERT), and
neither a rolled-back transaction nor a refused duplicate leaves a gap. Allocating before the
savepoint was how duplicates burned numbers while the transaction around them committed.
"""

from __future__ import annotations

import re
from typing import cast

from sqlalchemy import Table, update
from sqlalchemy.orm import Session

from storage._dialect import insert_or_ignore
from storage.models import ReferenceCounter

REFERENCE_PATTERN = re.compile(r"^(\d{4})-(\d{6,})$")


def format_reference(year: int, number: int) -> str:
    return f"{year:04d}-{number:06d}"


def next_reference(session: Session, year: int) -> str:
    """Allocate the next reference of ``year`` inside the caller's transaction (and savepoint, if any)."""
    (reference,) = next_references(session, year, 1)
    return reference


def next_references(session: Session, year: int, count: int) -> list[str]:
    """Allocate ``count`` consecutive references of ``year`` with one counter update (for a batch)."""
    if count < 1:
        return []
    # The declarative base types __table__ as any FromClause; ours is a plain Table, which update() takes.
    table = cast(Table, ReferenceCounter.__table__)
    insert_or_ignore(session, table, ["year"], year=year, last_value=0)
    statement = (
        update(table)
        .where(table.c.year == year)
        .values(last_value=table.c.last_value + count)
        .returning(table.c.last_value)
    )
    last = session.execute(statement).scalar_one()
    return [format_reference(year, number) for number in range(last - count + 1, last + 1)]
