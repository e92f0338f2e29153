"""The acknowledgment outbox: an ack is queued in the transaction that creates its case, sent after
the commit, and marked sent. A crash between commit and send leaves the row pending, and the
poller sends it when it starts again; one row per case (unique ``case_id``) means one ack per case.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from storage._dialect import insert_or_ignore
from storage.models import Case, PendingAck, utcnow


@dataclass(frozen=True, slots=True)
class AckRequest:
    """What an acknowledgment needs: who gets it, and the message it answers."""

    recipient: str
    recipient_name: str = ""
    subject: str = ""
    in_reply_to: str = ""
    references: str = ""  # Message-IDs separated by spaces


@dataclass(frozen=True, slots=True)
class QueuedAck:
    """A pending outbox row, read out of its session: the case reference plus the request."""

    id: int
    reference: str
    request: AckRequest
    attempts: int


def queue_ack(session: Session, case_id: int, request: AckRequest, *, mailbox: str = "") -> bool:
    """Queue the acknowledgment of case ``case_id``; False if that case has one already (idempotent)."""
    return insert_or_ignore(session, PendingAck.__table__, ["case_id"], case_id=case_id,  # type: ignore[arg-type]
                            **_row(request, mailbox))


def queue_acks(session: Session, requests: Sequence[tuple[int, AckRequest]], *, mailbox: str = "") -> None:
    """Queue the acknowledgments of newly created cases in one INSERT (use ``queue_ack`` for an
    existing case that may have one already)."""
    if requests:
        session.execute(insert(PendingAck),
                        [{"case_id": case_id, **_row(r, mailbox)} for case_id, r in requests])


def pending_acks(session: Session, *, mailbox: str, max_attempts: int, limit: int = 500) -> list[QueuedAck]:
    """Acknowledgments of ``mailbox`` not sent yet and tried fewer than ``max_attempts`` times, oldest
    first."""
    statement = (
        select(PendingAck, Case.reference).join(Case, Case.id == PendingAck.case_id)
        .where(PendingAck.mailbox == mailbox, PendingAck.sent_at.is_(None),
               PendingAck.attempts < max_attempts)
        .order_by(PendingAck.id).limit(limit)
    )
    return [
        QueuedAck(row.id, reference,
                  AckRequest(row.recipient, row.recipient_name, row.subject, row.in_reply_to, row.references),
                  row.attempts)
        for row, reference in session.execute(statement)
    ]


def mark_ack_sent(session: Session, ack_id: int, message_id: str, *, now: datetime | None = None) -> bool:
    """Record that the ack went out; False if it was marked sent already (nothing changes then)."""
    statement = (
        update(PendingAck).where(PendingAck.id == ack_id, PendingAck.sent_at.is_(None))
        .values(sent_at=now or utcnow(), message_id=message_id, attempts=PendingAck.attempts + 1)
    )
    return session.execute(statement).rowcount == 1  # type: ignore[attr-defined]


def mark_ack_failed(session: Session, ack_id: int, error: str) -> None:
    """Count a failed attempt and keep its error (the ack stays pending until ``max_attempts``)."""
    statement = (
        update(PendingAck).where(PendingAck.id == ack_id, PendingAck.sent_at.is_(None))
        .values(attempts=PendingAck.attempts + 1, last_error=error)
    )
    session.execute(statement)


def find_ack(session: Session, case_id: int) -> PendingAck | None:
    """The outbox row of a case, sent or not."""
    return session.scalars(select(PendingAck).where(PendingAck.case_id == case_id)).one_or_none()


def _row(request: AckRequest, mailbox: str) -> dict[str, object]:
    return {"mailbox": mailbox, "recipient": request.recipient, "recipient_name": request.recipient_name,
            "subject": request.subject, "in_reply_to": request.in_reply_to, "references": request.references,
            "created_at": utcnow(), "attempts": 0, "last_error": "", "message_id": ""}
