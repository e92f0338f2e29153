"""Alembic environment: runs on the connection ``storage.migrate`` hands over, or on a URL.

Developers can run ``alembic`` from the repository root (``alembic.ini``); the URL comes from
``-x url=...``, else ``COMPLAINTDESK_DATABASE_URL``, else ``sqlalchemy.url`` in the ini file.
"""

from __future__ import annotations

import os

from alembic import context

from storage.db import orm_object
from storage.models import Base

config = context.config
target_metadata = Base.metadata


def _run(connection: object) -> None:
    context.configure(
        connection=connection,  # type: ignore[arg-type]
        target_metadata=target_metadata,
        render_as_batch=True,  # SQLite needs table copies for most ALTERs
        compare_type=True,
        include_name=orm_object,  # full-text index objects and PgQueuer tables are not ORM objects
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    from storage.db import create_database_engine

    url = (
        context.get_x_argument(as_dictionary=True).get("url")
        or os.environ.get("COMPLAINTDESK_DATABASE_URL")
        or config.get_main_option("sqlalchemy.url")
    )
    if not url:
        raise SystemExit("no database URL: pass -x url=... or set COMPLAINTDESK_DATABASE_URL")
    engine = create_database_engine(url)
    try:
        with engine.begin() as conn:
            _run(conn)
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; run against a database")
run_online()
