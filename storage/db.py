"""Opening the database, running migrations, and the session (one transaction per unit of work).

``open_database(url)`` checks the schema is current and returns a ``Database``; ``with db.session()
as s:`` commits on success and rolls back on error. SQLAlchemy errors are translated to
``StorageError`` subclasses here, where they leave the session.

SQLite connections get ``foreign_keys=ON``, WAL and a busy timeout, and every transaction starts
with ``BEGIN IMMEDIATE``: writers queue up on the busy timeout instead of failing half-way through
a read-then-write transaction, and SAVEPOINTs work (pysqlite's own transaction handling breaks them).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
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

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 30_000
INIT_HINT = "run `complaintdesk init`"
#: PostgreSQL advisory lock key held while migrating (SQLite's BEGIN IMMEDIATE serialises already)
MIGRATION_LOCK_KEY = 0x636F6D706C61


class Database:
    """An engine and its session factory; open one per process with ``open_database``."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

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
        """One transaction: committed when the block ends, rolled back if it raises.

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
        """A read-only unit of work (for lookups and listings); nothing it does is committed."""
        session = self._sessions()
        try:
            yield session
        except SQLAlchemyError as e:
            raise translate_error(e, self.url) from e
        finally:
            session.rollback()
            session.close()

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()

    def __enter__(self) -> Database:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.dispose()


def open_database(url: str, *, check_schema: bool = True) -> Database:
    """Open the database at ``url`` and check its schema is at the current migration.

    Raises:
        StorageError: the URL is invalid or the database cannot be reached.
        SchemaError: there is no database yet, or it needs migrating (the message says to run
            ``complaintdesk init``).
    """
    engine = create_database_engine(url)
    shown = redact(engine.url)
    database = _sqlite_path(engine.url)
    if database is not None and not database.exists():
        engine.dispose()
        raise SchemaError(f"no database at {database}; {INIT_HINT} to create it")
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


def migrate(url: str) -> None:
    """Create the database or bring it to the newest schema (Alembic ``upgrade head``); idempotent.

    Raises:
        StorageError: the database cannot be reached or a migration failed.
    """
    engine = create_database_engine(url)
    database = _sqlite_path(engine.url)
    try:
        if database is not None:
            database.parent.mkdir(parents=True, exist_ok=True)
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":  # two `init`s at once: the second waits, then finds head
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})")
            config = alembic_config()
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
    except SQLAlchemyError as e:
        raise translate_error(e, redact(engine.url)) from e
    except OSError as e:
        raise StorageError(f"cannot create the database directory for {redact(engine.url)}: {e}") from e
    finally:
        engine.dispose()


def alembic_config() -> Config:
    """An Alembic configuration pointing at the migrations shipped inside this package."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def head_revision() -> str:
    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    return heads[0]


def create_database_engine(url: str) -> Engine:
    """An engine for ``url`` (``postgresql://`` means psycopg 3), with SQLite pragmas set.

    Raises:
        StorageError: the URL cannot be parsed or names a driver that is not installed.
        ConfigError: the port is not a number.
    """
    try:
        parsed = make_url(url)
    except ArgumentError as e:
        raise StorageError(f"invalid database URL {redact(url)}: {e}") from e
    except ValueError as e:  # SQLAlchemy's int() of the port; the message would not say which value
        raise ConfigError("invalid database URL: its port is not a number") from e
    try:
        if parsed.drivername in ("postgresql", "postgres"):
            parsed = parsed.set(drivername="postgresql+psycopg")
        if parsed.get_backend_name() == "sqlite":
            return _sqlite_engine(parsed)
        return create_engine(parsed, pool_pre_ping=True)
    except (ArgumentError, ImportError) as e:
        raise StorageError(f"invalid database URL {redact(url)}: {e}") from e


def _sqlite_engine(url: URL) -> Engine:
    memory = url.database in (None, "", ":memory:")
    if memory:
        engine = create_engine(url, poolclass=StaticPool, connect_args={"check_same_thread": False})
    else:
        engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves, below
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        if not memory:
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


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
    raise SchemaError(f"the database at {shown} is at schema revision {current}, not {head}; {INIT_HINT} to migrate it")


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
    if isinstance(e, OperationalError):
        return StorageError(f"cannot use the database at {shown_url}: {detail}; check the URL, or {INIT_HINT}")
    return StorageError(f"database error at {shown_url}: {detail}")


def redact(url: URL | str) -> str:
    """The URL with its password hidden."""
    try:
        parsed = make_url(url) if isinstance(url, str) else url
    except (ArgumentError, ValueError):  # ValueError: a port that is not a number
        return "<invalid URL>"
    return parsed.render_as_string(hide_password=True)


def _sqlite_path(url: URL) -> Path | None:
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    if url.database.startswith("file:"):
        return None
    return Path(url.database)
