"""Quarantine (inputs that could not become cases) and ignored e-mail noise; both keyed by content hash."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from pipeline.core.model import Source
from storage.audit import record_event
from storage.errors import QuarantineNotFoundError
from storage.lookup import rows_by_sha256
from storage.models import IgnoredMessage, IntakeRecord, QuarantineRecord, utcnow


def find_quarantine_by_sha256(session: Session, sha256: str) -> QuarantineRecord | None:
    """The quarantine record of these exact bytes, if any."""
    return session.scalars(select(QuarantineRecord).where(QuarantineRecord.sha256 == sha256)).one_or_none()


def quarantine_by_sha256(session: Session, sha256s: Sequence[str]) -> dict[str, QuarantineRecord]:
    """The quarantine records of any of these content hashes."""
    return rows_by_sha256(session, QuarantineRecord, sha256s)


def ignored_by_sha256(session: Session, sha256s: Sequence[str]) -> dict[str, IgnoredMessage]:
    """The ignored-noise records of any of these content hashes."""
    return rows_by_sha256(session, IgnoredMessage, sha256s)


def quarantine(
    session: Session, source: Source, reason: str, error_type: str, *, actor: str
) -> QuarantineRecord:
    """Record that ``source`` could not become a case; returns the existing record for the same bytes."""
    existing = find_quarantine_by_sha256(session, source.sha256)
    if existing is not None:
        return existing
    record = QuarantineRecord(
        channel=str(source.channel), source_name=source.name, sha256=source.sha256, reason=reason,
        error_type=error_type, created_at=utcnow(),
    )
    try:
        with session.begin_nested():
            session.add(record)
    except IntegrityError:  # a concurrent run quarantined the same bytes first
        existing = find_quarantine_by_sha256(session, source.sha256)
        if existing is None:
            raise
        return existing
    record_event(
        session, "quarantined", actor=actor,
        detail={"source": source.name, "sha256": source.sha256, "reason": reason, "error_type": error_type},
    )
    return record


def list_quarantine(session: Session, *, include_resolved: bool = False) -> list[QuarantineRecord]:
    """Quarantine records, newest first (by default only those not yet resolved)."""
    statement = select(QuarantineRecord)
    if not include_resolved:
        statement = statement.where(QuarantineRecord.resolved_at.is_(None))
    statement = statement.order_by(QuarantineRecord.created_at.desc(), QuarantineRecord.id.desc())
    return list(session.scalars(statement))


def resolve_quarantine(
    session: Session, record: QuarantineRecord, *, actor: str, note: str = "", now: datetime | None = None
) -> QuarantineRecord:
    """Mark a quarantined input as dealt with (re-submitted, discarded...)."""
    record.resolved_at = now or utcnow()
    record_event(session, "quarantine_resolved", actor=actor, detail={"sha256": record.sha256, "note": note})
    return record


def find_ignored(
    session: Session, *, sha256: str | None = None, message_id: str | None = None
) -> IgnoredMessage | None:
    """The ignored-message record with this content hash or, failing that, this Message-ID."""
    if sha256:
        found = session.scalars(select(IgnoredMessage).where(IgnoredMessage.sha256 == sha256)).one_or_none()
        if found is not None:
            return found
    if message_id:
        return session.scalars(
            select(IgnoredMessage).where(IgnoredMessage.message_id == message_id).limit(1)
        ).first()
    return None


def record_ignored(
    session: Session,
    *,
    message_id: str,
    sha256: str,
    reason: str,
    mailbox: str = "",
    uid: int | None = None,
) -> IgnoredMessage:
    """Record e-mail noise (auto-reply, bounce, bulk mail) once per content hash; returns the record."""
    existing = find_ignored(session, sha256=sha256)
    if existing is not None:
        return existing
    record = IgnoredMessage(
        message_id=message_id, sha256=sha256, reason=reason, mailbox=mailbox, uid=uid, created_at=utcnow()
    )
    try:
        with session.begin_nested():
            session.add(record)
    except IntegrityError:
        existing = find_ignored(session, sha256=sha256)
        if existing is None:
            raise
        return existing
    return record


def get_quarantine(session: Session, record_id: int) -> QuarantineRecord:
    """The quarantine record with this id.

    Raises:
        QuarantineNotFoundError: there is none.
    """
    record = session.get(QuarantineRecord, record_id)
    if record is None:
        raise QuarantineNotFoundError(
            f"no quarantine record {record_id}; list them with `complaintdesk quarantine list`")
    return record


def quarantined_intake(session: Session, record: QuarantineRecord) -> IntakeRecord | None:
    """The (latest) intake row that ended in ``record``: same bytes, outcome ``quarantined``."""
    return session.scalars(
        select(IntakeRecord)
        .where(IntakeRecord.sha256 == record.sha256, IntakeRecord.outcome == "quarantined")
        .order_by(IntakeRecord.id.desc()).limit(1)
    ).first()


def reopen_intake(session: Session, row: IntakeRecord, *, actor: str) -> None:
    """Put a finished intake row back to ``received`` with no attempts, so ``process`` runs it again
    (a release from quarantine after a fix); the quarantine record stays until it succeeds."""
    record_event(session, "intake_reopened", actor=actor,
                 detail={"intake_id": row.id, "sha256": row.sha256, "was": row.outcome, "reason": row.reason})
    row.state, row.outcome, row.case_id, row.reason = "received", "", None, ""
    row.attempts, row.last_error, row.updated_at = 0, "", utcnow()
