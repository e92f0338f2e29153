"""The audit trail: one event per change, written in the same transaction as the change."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.models import AuditEvent, Case, utcnow


def record_event(
    session: Session,
    action: str,
    *,
    actor: str,
    case: Case | None = None,
    detail: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> AuditEvent:
    """Add an audit event (``created``, ``status``, ``label_corrected``, ...) to the session."""
    event = AuditEvent(case=case, actor=actor, action=action, detail=dict(detail or {}), at=at or utcnow())
    session.add(event)
    return event


def audit_trail(session: Session, case: Case) -> list[AuditEvent]:
    """The events of ``case``, oldest first."""
    session.flush()
    statement = select(AuditEvent).where(AuditEvent.case_id == case.id).order_by(AuditEvent.at, AuditEvent.id)
    return list(session.scalars(statement))
