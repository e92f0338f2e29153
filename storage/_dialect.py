"""What SQLite and PostgreSQL do differently: ``INSERT ... ON CONFLICT DO NOTHING`` and bulk inserts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import JSON, Table, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError
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


def bulk_insert(session: Session, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert many rows (all with the same keys) in the session's transaction, as fast as the database allows.

    On PostgreSQL that is ``COPY ... FROM STDIN`` (several times faster than a multi-row INSERT for
    thousands of rows, which the 1,000,000-case benchmark needs); elsewhere an ``executemany``.
    """
    if not rows:
        return
    if session.get_bind().dialect.name != "postgresql":
        session.execute(table.insert(), list(rows))
        return
    import psycopg
    from psycopg.types.json import Jsonb

    names = list(rows[0])
    json_columns = {name for name in names if isinstance(table.c[name].type, JSON)}
    connection = session.connection().connection.driver_connection
    assert connection is not None  # a live psycopg connection inside the session's transaction
    columns = ", ".join(f'"{name}"' for name in names)
    statement = f'COPY "{table.name}" ({columns}) FROM STDIN'
    try:
        with connection.cursor() as cursor, cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row([Jsonb(row[n]) if n in json_columns else row[n] for n in names])
    except psycopg.Error as e:  # as SQLAlchemy would raise it (IntegrityError for a duplicate...)
        raise DBAPIError.instance(statement, None, e, psycopg.Error) from e


def insert_returning_ids(session: Session, table: Table, rows: Sequence[Mapping[str, Any]]) -> list[int]:
    """Insert rows into a table with a serial ``id``; their new ids, in the order of ``rows``.

    On PostgreSQL the ids are taken from the table's sequence first and the rows copied in with
    them (``bulk_insert``); elsewhere one multi-row ``INSERT ... RETURNING``.
    """
    if not rows:
        return []
    if session.get_bind().dialect.name != "postgresql":
        statement = table.insert().returning(table.c.id, sort_by_parameter_order=True)
        return list(session.scalars(statement, list(rows)))
    ids = list(session.scalars(
        text("SELECT nextval(pg_get_serial_sequence(:table, 'id')) FROM generate_series(1, :n)"),
        {"table": table.name, "n": len(rows)},
    ))
    bulk_insert(session, table, [{"id": i, **row} for i, row in zip(ids, rows, strict=True)])
    return ids
