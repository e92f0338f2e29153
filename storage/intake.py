"""Intake rows: what was accepted, whether it is finished, and what became of it.

The pipeline writes a row when it accepts an input (``accept_record``) and finishes it in the same
transaction that stores the case or quarantine record (``finish_intake``), so an input is never
only in a log: a crash leaves its row ``received``, and ``pending_intake`` finds it again.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from storage.models import IntakeRecord, utcnow


def find_intake(session: Session, keys: Sequence[str]) -> IntakeRecord | None:
    """The earliest intake row recognised by any of these dedupe keys, if any."""
    keys = [k for k in keys if k]
    if not keys:
        return None
    return session.scalars(
        select(IntakeRecord).where(IntakeRecord.dedupe_key.in_(keys)).order_by(IntakeRecord.id).limit(1)
    ).first()


def accept_record(session: Session, *, keys: Sequence[str] = (), **values: Any) -> tuple[IntakeRecord, bool]:
    """Write a ``received`` intake row, or return the row already recognised by ``keys``.

    ``keys[0]`` is stored as the new row's dedupe key; the others only recognise older rows (an
    older row may carry a key of another kind). Returns the row and whether it is new.
    """
    earlier = find_intake(session, keys)
    if earlier is not None:
        return earlier, False
    record = IntakeRecord(dedupe_key=keys[0] if keys else None, state="received", received_at=utcnow(),
                          **values)
    try:
        with session.begin_nested():
            session.add(record)
    except IntegrityError:  # a concurrent accept of the same input won the race
        earlier = find_intake(session, keys)
        if earlier is None:
            raise
        return earlier, False
    return record, True


def get_intake(session: Session, ids: Sequence[int]) -> list[IntakeRecord]:
    """The intake rows with these ids, in the order asked."""
    rows = {r.id: r for r in session.scalars(select(IntakeRecord).where(IntakeRecord.id.in_(list(ids))))}
    return [rows[i] for i in ids if i in rows]


def start_attempt(session: Session, ids: Sequence[int]) -> None:
    """Count one more processing attempt for the unfinished rows among ``ids``."""
    session.execute(
        update(IntakeRecord)
        .where(IntakeRecord.id.in_(list(ids)), IntakeRecord.state == "received")
        .values(attempts=IntakeRecord.attempts + 1, updated_at=utcnow())
    )


def record_failure(session: Session, intake_id: int, error: str) -> None:
    """Keep the last error of an attempt that will be retried (a finished row is left as it is)."""
    session.execute(update(IntakeRecord).where(IntakeRecord.id == intake_id, IntakeRecord.state == "received")
                    .values(last_error=error, updated_at=utcnow()))


def finish_intake(session: Session, intake_id: int, outcome: str, *, case_id: int | None = None,
                  reason: str = "") -> bool:
    """Mark a row done with its outcome; False if it was already done (another process finished it)."""
    result = session.execute(
        update(IntakeRecord)
        .where(IntakeRecord.id == intake_id, IntakeRecord.state == "received")
        .values(state="done", outcome=outcome, case_id=case_id, reason=reason, updated_at=utcnow())
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def pending_intake(
    session: Session, *, before: datetime | None = None, limit: int | None = None
) -> list[int]:
    """Ids of accepted inputs not finished yet (and untouched since ``before``), oldest first."""
    statement = select(IntakeRecord.id).where(IntakeRecord.state == "received").order_by(IntakeRecord.id)
    if before is not None:
        statement = statement.where(IntakeRecord.updated_at < before)
    if limit is not None:
        statement = statement.limit(limit)
    return list(session.scalars(statement))
