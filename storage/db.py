"""Opening the database, running migrations, and the session (one transaction per unit of work).

``open_database(url)`` checks the schema is current and returns a ``Database``; ``with db.session()
as s:`` commits on success and rolls back on error. SQLAlchemy errors are translated to
``StorageError`` subclasses here, where they leave the session.

Two kinds of transaction: ``db.session()`` for writes and ``db.reader()`` for reads. On SQLite
(WAL, ``foreign_keys=ON``, a busy timeout) a write transaction starts with ``BEGIN IMMEDIATE``:
writers queue up on the busy timeout instead of failing half-way through a read-then-write
transaction, and SAVEPOINTs work (pysqlite's own transaction handling breaks them). A read
transaction starts with a plain (deferred) ``BEGIN`` under ``PRAGMA query_only``: in WAL mode it reads
a snapshot and never waits for a writer, and it cannot turn into a write (which would wait, or fail
with a stale snapshot). On PostgreSQL a read transaction is ``READ ONLY``.

A SQLite database is private to the service's user: its folder is created 0700 and the file 0600
(SQLite gives the -wal and -shm files the database file's mode), whatever the umask.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, IntegrityError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

from pipeline.core.errors import ConfigError
from storage.errors import DuplicateCaseError, SchemaError, StorageError
from storage.models import Base
from storage.private import PRIVATE_FILE_MODE, make_private_dir, make_private_file, tighten

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 30_000
INIT_HINT = "run `complaintdesk init`"
#: PostgreSQL advisory lock key held while migrating (SQLite's BEGIN IMMEDIATE serialises already)
MIGRATION_LOCK_KEY = 0x636F6D706C61
#: execution option that marks the connections of ``Database.reader()``
READ_ONLY_OPTION = "complaintdesk_read_only"


@dataclass(frozen=True)
class PoolOptions:
    """How a PostgreSQL engine keeps and checks its connections (``[db]`` in the config file).

    SQLite ignores them: it has no server to wait for and one writer at a time anyway.
    """

    #: connections kept open per process, and how many more may be opened at a peak
    pool_size: int = 5
    max_overflow: int = 10
    #: seconds to wait for a free connection before failing
    pool_timeout: float = 30.0
    #: seconds to wait for the server to answer a new connection (the URL's connect_timeout wins)
    connect_timeout: int = 10
    #: seconds a statement may run before the server cancels it; 0 means no limit
    statement_timeout: float = 0.0
    #: test a pooled connection before use, so a restarted server costs no failed request
    pool_pre_ping: bool = True


class Database:
    """An engine and its session factory; open one per process with ``open_database``."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        # same pool; the option tells the "begin" listener which kind of transaction to start
        self._readers = sessionmaker(
            engine.execution_options(**{READ_ONLY_OPTION: True}), expire_on_commit=False
        )

    @property
    def url(self) -> str:
        """The database URL with any password replaced by ``***`` (safe to print)."""
        return redact(self.engine.url)

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.engine.dialect.name

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One write transaction: committed when the block ends, rolled back if it raises.

        Keep it short: on SQLite it holds the database's only write lock from its first statement.

        Raises:
            StorageError: the database failed (translated from SQLAlchemy, with the original as cause).
        """
        session = self._sessions()
        try:
            yield session
            session.commit()
        except SQLAlchemyError as e:
            session.rollback()
            raise translate_error(e, self.url) from e
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    @contextmanager
    def reader(self) -> Iterator[Session]:
        """One read-only transaction (a consistent snapshot), rolled back when the block ends.

        On SQLite it never waits for a writer; objects read stay usable after the block (detached).

        Raises:
            StorageError: the database failed, or the block tried to write (translated from SQLAlchemy).
        """
        session = self._readers()
        try:
            yield session
        except SQLAlchemyError as e:
            raise translate_error(e, self.url) from e
        finally:
            session.close()  # rolls back: there is nothing to commit

    def analyze(self) -> None:
        """Refresh PostgreSQL's planner statistics of our tables; nothing on SQLite.

        Right after a bulk load (``pg_restore``, a batch import) PostgreSQL has no statistics until
        autovacuum comes round, and it guesses: at 100,000 cases the review queue's 50 rows took 80 ms
        by a bitmap scan of every open case instead of 0.1 ms down ``ix_cases_review_queue``. SQLite
        keeps no statistics unless asked and its plans here do not depend on them.

        Raises:
            StorageError: the database failed.
        """
        if self.dialect != "postgresql":
            return
        names = ", ".join(self.engine.dialect.identifier_preparer.quote(t.name)
                          for t in Base.metadata.sorted_tables)
        try:
            with self.engine.begin() as conn:  # our tables only: a bare ANALYZE reads the whole database
                conn.exec_driver_sql(f"ANALYZE {names}")
        except SQLAlchemyError as e:
            raise translate_error(e, self.url) from e

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()

    def __enter__(self) -> Database:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.dispose()


def open_database(url: str, *, check_schema: bool = True, pool: PoolOptions | None = None) -> Database:
    """Open the database at ``url`` and check its schema is at the current migration.

    ``pool`` sizes and times the connections to PostgreSQL (default ``PoolOptions()``).

    Raises:
        StorageError: the URL is invalid or the database cannot be reached.
        SchemaError: there is no database yet, or it needs migrating (the message says to run
            ``complaintdesk init``).
    """
    parsed = _parse_url(url)
    database = _sqlite_path(parsed)
    if database is not None:
        _check_sqlite_file(database)
    engine = create_database_engine(url, immutable=database is not None and _frozen(database), pool=pool)
    shown = redact(engine.url)
    if check_schema:
        try:
            with engine.connect() as conn:
                _check_revision(conn, shown)
        except SQLAlchemyError as e:
            engine.dispose()
            raise translate_error(e, shown) from e
        except StorageError:
            engine.dispose()
            raise
    return Database(engine)


def migrate(url: str, revision: str = "head") -> None:
    """Create the database or bring it to the newest schema (Alembic ``upgrade head``); idempotent.

    ``revision`` stops at an older schema: tests fill a database as an old release left it, then upgrade.

    Raises:
        StorageError: the database cannot be reached or a migration failed.
    """
    engine = create_database_engine(url)
    database = _sqlite_path(engine.url)
    try:
        if database is not None:
            make_private_dir(database.parent)
            # created (or tightened) before SQLite opens it: SQLite copies its mode to -wal and -shm
            make_private_file(database)
            for sidecar in ("-wal", "-shm", "-journal"):
                tighten(database.with_name(database.name + sidecar), PRIVATE_FILE_MODE)
        with engine.connect() as conn:
            if database is not None:
                # A migration that copies a table on SQLite (batch mode) drops the old one, and with
                # foreign keys on that DROP deletes every child row (ON DELETE CASCADE): all labels,
                # documents and messages. Off for the migration (the pragma only works outside a
                # transaction), and the result checked before the commit.
                conn.connection.dbapi_connection.execute("PRAGMA foreign_keys=OFF")  # type: ignore[union-attr]
            with conn.begin():
                if conn.dialect.name == "postgresql":  # two `init`s at once: the second waits, finds head
                    conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})")
                config = alembic_config()
                config.attributes["connection"] = conn
                command.upgrade(config, revision)
                if database is not None and conn.exec_driver_sql("PRAGMA foreign_key_check").first():
                    raise StorageError(f"migrating {redact(engine.url)} left rows pointing at missing ones; "
                                       "nothing was changed")
            if database is not None:
                conn.connection.dbapi_connection.execute("PRAGMA foreign_keys=ON")  # type: ignore[union-attr]
    except SQLAlchemyError as e:
        raise translate_error(e, redact(engine.url)) from e
    except OSError as e:
        raise StorageError(f"cannot create the database file for {redact(engine.url)}: {e}") from e
    finally:
        engine.dispose()


def alembic_config() -> Config:
    """An Alembic configuration pointing at the migrations shipped inside this package."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def orm_object(name: str | None, type_: str, _parents: object = None) -> bool:
    """Alembic's ``include_name``: False for what the ORM does not describe: the full-text index
    objects (migration 0008) and PgQueuer's tables (migration 0007, their schema is PgQueuer's)."""
    from storage.queue import include_name
    from storage.search import INDEX_OBJECTS

    return name not in INDEX_OBJECTS and include_name(name, type_, _parents)


def head_revision() -> str:
    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    return heads[0]


def create_database_engine(url: str, *, immutable: bool = False, pool: PoolOptions | None = None) -> Engine:
    """An engine for ``url`` (``postgresql://`` means psycopg 3), with SQLite pragmas set, or
    PostgreSQL's pool and timeouts (``pool``, default ``PoolOptions()``).

    ``immutable`` opens a SQLite file read-only without the -wal and -shm files (see ``_frozen``).

    Raises:
        StorageError: the URL cannot be parsed or names a driver that is not installed.
        ConfigError: the port is not a number.
    """
    parsed = _parse_url(url)
    try:
        if parsed.get_backend_name() == "sqlite":
            return _sqlite_engine(parsed, immutable=immutable)
        engine = _postgres_engine(parsed, pool or PoolOptions())
    except (ArgumentError, ImportError) as e:
        raise StorageError(f"invalid database URL {redact(url)}: {e}") from e
    event.listen(engine, "begin", _on_postgres_begin)
    return engine


def _postgres_engine(url: URL, pool: PoolOptions) -> Engine:
    connect_args: dict[str, Any] = {}
    if "connect_timeout" not in url.query:
        connect_args["connect_timeout"] = pool.connect_timeout
    engine = create_engine(
        url, pool_pre_ping=pool.pool_pre_ping, pool_size=pool.pool_size, max_overflow=pool.max_overflow,
        pool_timeout=pool.pool_timeout, connect_args=connect_args,
    )
    if pool.statement_timeout > 0:
        # a session setting on each new connection: the URL's own `options` (a search_path) stay as given
        milliseconds = int(pool.statement_timeout * 1000)

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.execute(f"SET statement_timeout = {milliseconds}")
            dbapi_connection.commit()

    return engine


def _parse_url(url: str) -> URL:
    try:
        parsed = make_url(url)
    except ArgumentError as e:
        raise StorageError(f"invalid database URL {redact(url)}: {e}") from e
    except ValueError as e:  # SQLAlchemy's int() of the port; the message would not say which value
        raise ConfigError("invalid database URL: its port is not a number") from e
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def _on_postgres_begin(conn: Connection) -> None:
    if conn.get_execution_options().get(READ_ONLY_OPTION):
        conn.exec_driver_sql("SET TRANSACTION READ ONLY")  # the first statement of the transaction


def _sqlite_engine(url: URL, *, immutable: bool) -> Engine:
    memory = url.database in (None, "", ":memory:")
    if memory:
        engine = create_engine(url, poolclass=StaticPool, connect_args={"check_same_thread": False})
    elif immutable:
        uri = f"file:{Path(url.database or '').resolve()}?immutable=1"
        engine = create_engine(url, creator=lambda: _connect_uri(uri))
    else:
        engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves, below
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            if not memory and not immutable:
                _use_wal(cursor)
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        read_only = bool(conn.get_execution_options().get(READ_ONLY_OPTION))
        # the flag lives on the pooled connection: set it either way at every BEGIN
        conn.exec_driver_sql(f"PRAGMA query_only={int(read_only)}")
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

    return engine


def _connect_uri(uri: str) -> Any:
    import sqlite3

    return sqlite3.connect(uri, uri=True, check_same_thread=False)


def _use_wal(cursor: Any) -> None:
    """Switch the file to WAL (a persistent setting) unless it is in WAL already.

    The switch needs an exclusive lock, and SQLite does not wait on the busy timeout for it when
    another connection of a blank file is inside ``BEGIN IMMEDIATE`` in the old rollback-journal mode:
    the two would deadlock, so SQLite fails at once with "database is locked". Two ``init`` at once
    hit that. Retry until the other transaction is done, up to the busy timeout.
    """
    import sqlite3

    if cursor.execute("PRAGMA journal_mode").fetchone()[0] == "wal":
        return
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    delay = 0.005
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or time.monotonic() > deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.1)


def _check_revision(conn: Connection, shown: str) -> None:
    current = MigrationContext.configure(conn).get_current_revision()
    head = head_revision()
    if current == head:
        return
    if current is None:
        raise SchemaError(f"the database at {shown} has no complaintdesk tables; {INIT_HINT} to create them")
    script = ScriptDirectory.from_config(alembic_config())
    if current not in {r.revision for r in script.walk_revisions()}:
        raise SchemaError(
            f"the database at {shown} is at schema revision {current}, which this version of complaintdesk "
            "does not know (was it migrated by a newer version?)"
        )
    raise SchemaError(
        f"the database at {shown} is at schema revision {current}, not {head}; {INIT_HINT} to migrate it"
    )


def translate_error(e: SQLAlchemyError, shown_url: str) -> StorageError:
    """A StorageError for a SQLAlchemy error, with a hint where we know one."""
    text = str(getattr(e, "orig", None) or e).strip()
    detail = text.splitlines()[0] if text else type(e).__name__
    lowered = detail.lower()
    if isinstance(e, IntegrityError):
        if "cases" in lowered and "sha256" in lowered:
            return DuplicateCaseError(f"a case for the same original already exists in {shown_url}: {detail}")
        return StorageError(f"a database constraint was violated in {shown_url}: {detail}")
    if "no such table" in lowered or ("relation" in lowered and "does not exist" in lowered):
        return SchemaError(f"the database at {shown_url} is missing tables ({detail}); {INIT_HINT}")
    if "readonly database" in lowered or "read-only transaction" in lowered:
        return StorageError(
            f"cannot write to the database at {shown_url}: {detail}; this user may only read it "
            "(check the owner and mode of the database file and its folder)"
        )
    if "unable to open database file" in lowered or "permission denied" in lowered:
        return StorageError(
            f"cannot open the database at {shown_url}: {detail}; check that this user may read and write the "
            "database file and its folder (SQLite keeps -wal and -shm files next to it)"
        )
    if "database is locked" in lowered:
        return StorageError(
            f"the database at {shown_url} stayed locked by another process "
            f"for {SQLITE_BUSY_TIMEOUT_MS // 1000} s "
            f"({detail}); is a long batch running?"
        )
    if "statement timeout" in lowered:
        return StorageError(
            f"a query took longer than the statement timeout at {shown_url} ({detail}); raise "
            "statement_timeout in [db] of the config file, or look for what holds the database up"
        )
    if "queuepool limit" in lowered:
        return StorageError(
            f"no free database connection to {shown_url} ({detail}); raise pool_size or max_overflow in [db]"
        )
    if isinstance(e, OperationalError):
        return StorageError(
            f"cannot use the database at {shown_url}: {detail}; check the URL, or {INIT_HINT}"
        )
    return StorageError(f"database error at {shown_url}: {detail}")


def redact(url: URL | str) -> str:
    """The URL with its password hidden."""
    try:
        parsed = make_url(url) if isinstance(url, str) else url
    except (ArgumentError, ValueError):  # ValueError: a port that is not a number
        return "<invalid URL>"
    return parsed.render_as_string(hide_password=True)


def _check_sqlite_file(database: Path) -> None:
    """Fail with what is wrong: no database (run init), or one this user may not read."""
    folder = database.parent
    if not os.access(folder, os.X_OK) and folder.exists():
        raise StorageError(
            f"cannot reach {database}: this user may not enter the folder {folder} (permission denied)"
        )
    if not database.exists():
        raise SchemaError(f"no database at {database}; {INIT_HINT} to create it")
    if not os.access(database, os.R_OK):
        raise StorageError(f"cannot read the database {database}: permission denied for this user")


def _frozen(database: Path) -> bool:
    """True if nobody can be writing ``database``, so it can be read as an immutable file.

    A WAL database is read through its -wal and -shm files, which SQLite must create if missing; in
    a folder this user may not write it cannot. But then no writer can be at work either (a writer
    keeps the -wal file while connected), so reading the file as immutable is safe.
    """
    wal = database.with_name(database.name + "-wal")
    return not os.access(database.parent, os.W_OK) and not wal.exists()


def _sqlite_path(url: URL) -> Path | None:
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    if url.database.startswith("file:"):
        return None
    return Path(url.database)
