"""How far the poller got in each IMAP folder (UIDVALIDITY and the last UID stored)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.models import MailboxState, utcnow


def get_mailbox_state(session: Session, mailbox: str) -> MailboxState | None:
    """The saved state of ``mailbox`` (``user@host/INBOX``), or None if never polled."""
    return session.scalars(select(MailboxState).where(MailboxState.mailbox == mailbox)).one_or_none()


def set_mailbox_state(session: Session, mailbox: str, *, uidvalidity: int, last_uid: int) -> MailboxState:
    """Save the state of ``mailbox``; call it in the transaction that stored the message ``last_uid``.

    Hold the mailbox lock (``acquire_lock``) while polling: two pollers writing the same folder's
    state would race here.
    """
    state = get_mailbox_state(session, mailbox)
    if state is None:
        state = MailboxState(mailbox=mailbox, uidvalidity=uidvalidity, last_uid=last_uid, updated_at=utcnow())
        session.add(state)
    else:
        state.uidvalidity = uidvalidity
        state.last_uid = last_uid
        state.updated_at = utcnow()
    return state
