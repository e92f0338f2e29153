"""E-mail messages of a case, and finding the case a reply belongs to."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from storage.audit import record_event
from storage.errors import StorageError
from storage.lookup import chunks
from storage.models import MESSAGE_DIRECTIONS, Case, CaseMessage, utcnow


def add_message(
    session: Session,
    case: Case,
    *,
    message_id: str,
    in_reply_to: str = "",
    references: Sequence[str] | str = (),
    direction: str = "in",
    sender: str = "",
    subject: str = "",
    text: str = "",
    sha256: str = "",
    received_at: datetime | None = None,
    actor: str = "system",
) -> CaseMessage:
    """Append an e-mail to ``case`` (idempotent by Message-ID within the case) and audit it.

    Raises:
        StorageError: ``direction`` is not ``in`` or ``out``.
    """
    if direction not in MESSAGE_DIRECTIONS:
        raise StorageError(f"message direction must be 'in' or 'out', not {direction!r}")
    message_id = message_id.strip()
    if message_id:
        session.flush()
        existing = session.scalars(
            select(CaseMessage).where(CaseMessage.case_id == case.id, CaseMessage.message_id == message_id)
        ).first()
        if existing is not None:
            return existing
    refs = references if isinstance(references, str) else " ".join(r.strip() for r in references if r.strip())
    message = CaseMessage(
        case=case, message_id=message_id, in_reply_to=in_reply_to.strip(), references=refs.strip(),
        direction=direction, sender=sender, subject=subject, text=text, sha256=sha256,
        received_at=received_at or utcnow(),
    )
    session.add(message)
    record_event(
        session, "message_added", actor=actor, case=case,
        detail={"message_id": message_id, "direction": direction, "sha256": sha256},
    )
    return message


def find_case_by_message_id(session: Session, message_ids: Iterable[str]) -> Case | None:
    """The case one of ``message_ids`` (a reply's In-Reply-To and References) belongs to, if any.

    Looks at the messages stored with cases, then at e-mail cases made from that Message-ID; the
    most recent match wins.
    """
    ids = sorted({m.strip() for m in message_ids if m and m.strip()})
    if not ids:
        return None
    message = session.scalars(
        select(CaseMessage).where(CaseMessage.message_id.in_(ids))
        .order_by(CaseMessage.received_at.desc(), CaseMessage.id.desc()).limit(1)
    ).first()
    if message is not None:
        return message.case
    return session.scalars(
        select(Case)
        .where(Case.channel == "email", Case.source_name.in_(ids))
        .order_by(Case.id.desc())
        .limit(1)
    ).first()


def cases_by_message_id(session: Session, message_ids: Iterable[str]) -> dict[str, Case]:
    """For each of ``message_ids`` that is stored, its case: ``find_case_by_message_id`` for many, in
    two queries."""
    ids = sorted({m.strip() for m in message_ids if m and m.strip()})
    found: dict[str, Case] = {}
    for chunk in chunks(ids):
        messages = session.scalars(
            select(CaseMessage).where(CaseMessage.message_id.in_(chunk))
            .options(selectinload(CaseMessage.case))
            .order_by(CaseMessage.received_at, CaseMessage.id)
        )
        found.update({m.message_id: m.case for m in messages})  # the most recent one wins
        rest = [m for m in chunk if m not in found]
        if rest:
            cases = session.scalars(
                select(Case).where(Case.channel == "email", Case.source_name.in_(rest)).order_by(Case.id)
            )
            found.update({c.source_name: c for c in cases})
    return found


def cases_by_message_sha256(session: Session, sha256s: Iterable[str]) -> dict[str, Case]:
    """For each content hash stored as a message of a case (a reply), that case."""
    shas = sorted({s for s in sha256s if s})
    found: dict[str, Case] = {}
    for chunk in chunks(shas):
        messages = session.scalars(
            select(CaseMessage).where(CaseMessage.sha256.in_(chunk))
            .options(selectinload(CaseMessage.case)).order_by(CaseMessage.id.desc())
        )
        found.update({m.sha256: m.case for m in messages})  # the first stored wins, as find_message
    return found


def find_message(
    session: Session, *, message_id: str | None = None, sha256: str | None = None
) -> CaseMessage | None:
    """A stored message with this Message-ID or content hash (to recognise a message seen before)."""
    if message_id and message_id.strip():
        found = session.scalars(
            select(CaseMessage).where(CaseMessage.message_id == message_id.strip()).limit(1)
        ).first()
        if found is not None:
            return found
    if sha256:
        return session.scalars(select(CaseMessage).where(CaseMessage.sha256 == sha256).limit(1)).first()
    return None
