"""Database fixtures: every test that asks for ``db`` runs twice, on SQLite and on PostgreSQL.

    blank_db_url   an empty database: a SQLite file in tmp_path, or a fresh PostgreSQL schema
    db_url         the same, migrated to the newest schema (``storage.migrate``)
    db             ``storage.open_database(db_url)``, disposed afterwards
    db_session     ``with db.session() as s`` around the test (committed at the end)

PostgreSQL: each test gets its own uniquely named schema (worker id + random suffix) in the
database of ``COMPLAINTDESK_TEST_POSTGRES_URL`` (default ``postgresql+psycopg://postgres@127.0.0.1:5432/test``),
selected through the URL's ``options=-csearch_path=...``, so the URL also works for a CLI
subprocess (``COMPLAINTDESK_DATABASE_URL``). It is dropped afterwards. Safe under ``pytest -n 2``
and alongside other test runs on the same server. Deselect with ``-m "not postgres"``.

``tests/conftest.py`` imports them for every test: ``from tests.db_fixtures import *``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

import storage

__all__ = ["PG_URL", "blank_db_url", "db", "db_session", "db_url", "postgres_schema_url"]

PG_URL = os.environ.get("COMPLAINTDESK_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


def _libpq_url(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _admin() -> psycopg.Connection:
    try:
        return psycopg.connect(_libpq_url(PG_URL), autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as e:
        pytest.fail(
            f"PostgreSQL at {make_url(PG_URL).render_as_string(hide_password=True)} is not reachable ({e}); "
            "start it (pg_ctlcluster 15 main start), set COMPLAINTDESK_TEST_POSTGRES_URL, "
            'or deselect these tests with -m "not postgres"'
        )


def postgres_schema_url() -> Iterator[str]:
    """Create a uniquely named schema, yield a URL whose search_path is that schema, then drop it."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    schema = f"cdtest_{worker}_{uuid.uuid4().hex[:12]}"
    with _admin() as admin:
        admin.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    url = make_url(PG_URL).update_query_dict(
        {"options": f"-csearch_path={schema}", "application_name": schema}
    )
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with _admin() as admin:
            # connections a test forgot to close would block the DROP
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = %s AND pid <> pg_backend_pid()",
                (schema,),
            )
            admin.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


@pytest.fixture(params=BACKENDS)
def blank_db_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An empty database (no tables) on SQLite or PostgreSQL."""
    if request.param == "sqlite":
        folder = tmp_path_factory.mktemp("db")
        yield f"sqlite:///{folder / 'complaintdesk.db'}"
        return
    yield from postgres_schema_url()


@pytest.fixture
def db_url(blank_db_url: str) -> str:
    """A database migrated to the newest schema."""
    storage.migrate(blank_db_url)
    return blank_db_url


@pytest.fixture
def db(db_url: str) -> Iterator[storage.Database]:
    """An open ``storage.Database`` on a fresh, migrated database (SQLite, then PostgreSQL)."""
    database = storage.open_database(db_url)
    try:
        yield database
    finally:
        database.dispose()


@pytest.fixture
def db_session(db: storage.Database) -> Iterator[Session]:
    """A session around the whole test, committed at the end."""
    with db.session() as session:
        yield session
