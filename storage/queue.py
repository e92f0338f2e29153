"""The task queue on PostgreSQL: PgQueuer's tables, written in our own transactions.

Only with ``COMPLAINTDESK_QUEUE=postgres``. PgQueuer (``pgqueuer`` table, created by migration 0007 in
the database's own schema) holds one job per accepted item, entrypoint ``process`` with the intake id
as its payload. This module is the SQL side: enqueue inside the caller's session (so the intake row and
its job commit or roll back together), counts for ``complaintdesk jobs`` and metrics, the failed jobs
with their items' last errors, and the operator's retry. The worker loop itself is ``pipeline.worker``.

PgQueuer's own ``Queries`` need a driver on an autocommit connection, which would commit the job apart
from the intake row; so enqueue runs PgQueuer's query builder's SQL on the session's connection instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session

from storage.models import IntakeRecord, MailboxState, utcnow

#: the one kind of job: ``pipeline.intake.process(intake_id)``
ENTRYPOINT = "process"
#: PgQueuer's tables, kept out of the ORM metadata (their schema is PgQueuer's, made by migration 0007)
TABLES = frozenset({"pgqueuer", "pgqueuer_log", "pgqueuer_statistics", "pgqueuer_schedules"})



def _queries() -> Any:
    # imported when used: PgQueuer takes a second to import, and SQLite users never need it
    from pgqueuer.adapters.persistence.qb import QueryQueueBuilder

    return QueryQueueBuilder()


@dataclass(frozen=True, slots=True)
class QueueCounts:
    """What ``complaintdesk jobs`` shows: jobs waiting, running and failed; intake items finished."""

    queued: int
    running: int
    failed: int
    done: int
    #: seconds the oldest queued job has waited (0 when none waits)
    oldest_age: float


@dataclass(frozen=True, slots=True)
class FailedJob:
    """A job that ran out of retries, and its intake item's last error."""

    job_id: int
    intake_id: int
    source_name: str
    attempts: int
    last_error: str


def include_name(name: str | None, type_: str, parent_names: object) -> bool:
    """For Alembic's autogenerate: leave PgQueuer's tables alone (their schema is PgQueuer's)."""
    return not (type_ == "table" and name in TABLES)


def install_sql() -> str:
    """PgQueuer's types, tables, indexes, trigger and notify function, unqualified: they land in the
    first schema of the connection's search_path (migration 0007)."""
    from pgqueuer.adapters.persistence.qb import QueryBuilderEnvironment

    return QueryBuilderEnvironment().build_install_query(create_schema=False)


def uninstall_sql() -> str:
    from pgqueuer.adapters.persistence.qb import QueryBuilderEnvironment

    return QueryBuilderEnvironment().build_uninstall_query()


def _raw(session: Session, query: str, *args: Any) -> list[tuple[Any, ...]]:
    """Run PgQueuer SQL (``$1`` placeholders) on the session's own connection, inside its transaction."""
    from psycopg import RawCursor

    connection = session.connection().connection.driver_connection
    cursor = RawCursor(connection)  # type: ignore[arg-type]
    cursor.execute(query, args or None)
    return cursor.fetchall() if cursor.description else []


def enqueue(session: Session, intake_ids: Sequence[int], *, priority: int = 0) -> None:
    """Queue ``process`` for each item, in the caller's transaction; an item already queued or running
    is not queued twice (PgQueuer's dedupe key ``intake:ID``)."""
    if not intake_ids:
        return
    n = len(intake_ids)
    _raw(session, _queries().build_enqueue_query("skip"), [priority] * n, [ENTRYPOINT] * n,
         [str(i).encode() for i in intake_ids], [timedelta(0)] * n, [f"intake:{i}" for i in intake_ids],
         [None] * n)


def counts(session: Session) -> QueueCounts:
    """Jobs by state (``picked`` is running), the finished intake items, and the oldest waiting job's age."""
    rows = session.execute(text(
        "SELECT status::text, count(*), "
        "extract(epoch FROM now() - min(created)) "
        "FROM pgqueuer WHERE entrypoint = :e GROUP BY status"), {"e": ENTRYPOINT}).all()
    by_status = {status: n for status, n, _ in rows}
    oldest = max((float(age) for status, _, age in rows if status == "queued"), default=0.0)
    done = session.scalar(select(func.count()).where(IntakeRecord.state == "done")) or 0
    return QueueCounts(by_status.get("queued", 0), by_status.get("picked", 0), by_status.get("failed", 0),
                       done, oldest)


def failed_jobs(session: Session, *, limit: int = 1000) -> list[FailedJob]:
    """The jobs held as failed (oldest first), with what their items last failed on."""
    rows = session.execute(text(
        "SELECT id, convert_from(payload, 'UTF8')::int, attempts FROM pgqueuer "
        "WHERE entrypoint = :e AND status = 'failed' ORDER BY id LIMIT :n"),
        {"e": ENTRYPOINT, "n": limit}).all()
    items = {r.id: r for r in session.scalars(
        select(IntakeRecord).where(IntakeRecord.id.in_([intake_id for _, intake_id, _ in rows])))}
    return [FailedJob(job_id, intake_id, items[intake_id].source_name if intake_id in items else "",
                      attempts, items[intake_id].last_error if intake_id in items else "")
            for job_id, intake_id, attempts in rows]


def retry_failed(session: Session, job_ids: Sequence[int] | None = None) -> int:
    """Queue failed jobs again (all, or those named), their items' attempt counts reset; returns how many.

    The item's attempts are reset too, or ``process`` would quarantine it as interrupted too often.
    """
    held = failed_jobs(session)
    if job_ids is not None:
        held = [j for j in held if j.job_id in set(job_ids)]
    if not held:
        return 0
    session.execute(update(IntakeRecord)
                    .where(IntakeRecord.id.in_([j.intake_id for j in held]), IntakeRecord.state == "received")
                    .values(attempts=0, updated_at=utcnow()))
    _raw(session, _queries().build_requeue_jobs_query(), [j.job_id for j in held])
    return len(held)


def poller_last_success(session: Session) -> float | None:
    """When a poller last saved a mailbox's progress (a UNIX time), or None if none ever did."""
    latest = session.scalar(select(func.max(MailboxState.updated_at)))
    return latest.timestamp() if latest is not None else None
