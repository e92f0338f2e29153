"""The Alembic migrations: upgrade from empty works twice, matches the ORM, and open_database checks it."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

import storage
from storage.models import Base
from storage.queue import include_name


def test_upgrade_head_on_empty_database_twice(blank_db_url: str) -> None:
    storage.migrate(blank_db_url)
    storage.migrate(blank_db_url)  # idempotent
    with storage.open_database(blank_db_url) as db:
        tables = set(inspect(db.engine).get_table_names())
    assert set(Base.metadata.tables) <= tables
    assert "alembic_version" in tables


def test_migration_matches_orm_metadata(db: storage.Database) -> None:
    with db.engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(
            conn, opts={"compare_type": True, "include_name": include_name}), Base.metadata)
    assert diffs == []


def test_open_database_without_schema_says_run_init(blank_db_url: str) -> None:
    if blank_db_url.startswith("sqlite"):
        with pytest.raises(storage.SchemaError, match="complaintdesk init"):
            storage.open_database(blank_db_url)  # no file yet
        Path(blank_db_url.removeprefix("sqlite:///")).touch()
    with pytest.raises(storage.SchemaError, match="complaintdesk init"):
        storage.open_database(blank_db_url)


def test_open_database_unreachable_is_a_storage_error() -> None:
    with pytest.raises(storage.StorageError, match="127.0.0.1:1"):
        storage.open_database("postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2")


def test_invalid_url_is_a_storage_error() -> None:
    with pytest.raises(storage.StorageError, match="invalid database URL"):
        storage.open_database("not a url")


def test_session_rolls_back_on_error_and_translates(db: storage.Database) -> None:
    class Boom(Exception):
        pass

    with pytest.raises(Boom), db.session() as s:
        s.add(storage.QuarantineRecord(channel="slip", source_name="x", sha256="a" * 64, reason="r",
                                       error_type="E"))
        s.flush()
        raise Boom
    with db.session() as s:
        assert storage.find_quarantine_by_sha256(s, "a" * 64) is None
    with pytest.raises(storage.StorageError, match="constraint"), db.session() as s:
        for _ in range(2):
            s.add(storage.QuarantineRecord(channel="slip", source_name="x", sha256="b" * 64, reason="r",
                                           error_type="E"))
        s.flush()


def test_sqlite_pragmas(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'p.db'}"
    storage.migrate(url)
    with storage.open_database(url) as db, db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000


def test_concurrent_migrations_both_succeed(blank_db_url: str) -> None:
    import threading

    errors: list[BaseException] = []

    def run() -> None:
        try:
            storage.migrate(blank_db_url)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with storage.open_database(blank_db_url):
        pass


def test_downgrade_to_base_and_back(db_url: str) -> None:
    from alembic import command

    engine = storage.create_database_engine(db_url)
    try:
        with engine.begin() as conn:
            config = storage.db.alembic_config()
            config.attributes["connection"] = conn
            command.downgrade(config, "base")
        with engine.connect() as conn:
            assert set(inspect(conn).get_table_names()) <= {"alembic_version"}
    finally:
        engine.dispose()
    storage.migrate(db_url)
    with storage.open_database(db_url) as db:
        assert set(Base.metadata.tables) <= set(inspect(db.engine).get_table_names())


def test_switch_to_wal_waits_for_a_transaction_in_the_old_journal_mode(tmp_path: Path) -> None:
    """What made two concurrent `init`s flaky: the first one's ``BEGIN IMMEDIATE`` on the blank file
    (still in rollback-journal mode) made the second one's switch to WAL fail at once with "database
    is locked" instead of waiting on the busy timeout."""
    import sqlite3
    import threading

    path = tmp_path / "complaintdesk.db"
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    other.execute("CREATE TABLE early (x INTEGER)")
    errors: list[BaseException] = []

    def run() -> None:
        try:
            storage.migrate(f"sqlite:///{path}")
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(0.5)
    other.execute("COMMIT")
    other.close()
    thread.join()
    assert errors == []
    with storage.open_database(f"sqlite:///{path}") as db, db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
