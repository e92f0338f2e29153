"""``INSERT ... ON CONFLICT DO NOTHING`` for whichever of SQLite and PostgreSQL the session uses."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session


def insert_or_ignore(session: Session, table: Table, conflict_columns: list[str], **values: Any) -> bool:
    """Insert one row unless one with the same ``conflict_columns`` exists; True if inserted."""
    name = session.get_bind().dialect.name
    module: Any = postgresql if name == "postgresql" else sqlite
    statement = (
        module.insert(table)
        .values(**values)
        .on_conflict_do_nothing(index_elements=conflict_columns)
        .returning(*(table.c[name] for name in conflict_columns))
    )
    # a row comes back only if it was inserted (rowcount is unreliable with implicit RETURNING)
    return session.execute(statement).first() is not None
