"""What reviewers, department staff and supervisors do to cases: read, correct and accept labels, fix the
text, move a case along its lifecycle, assign it, write internal notes, read its history, list the
review queue and the overdue cases.

Plain functions over a ``Desk`` and an ``Actor``; the web app and the ``cases`` commands call the same
ones. Each checks ``can(actor, action, case)`` first (``AccessDeniedError`` otherwise), does its work
in one short transaction, and returns plain data (``storage.case_to_dict`` dictionaries and small
dataclasses), never ORM rows: nothing here prints.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import storage
from pipeline.core.actor import Actor
from pipeline.core.errors import AccessDeniedError, InvalidLabelError, UsageError
from pipeline.review.access import can_assign_to, department_scope, require
from pipeline.review.desk import Desk
from storage.followup import QueueCursor

#: statuses whose change needs a reason in the note (the citizen may ask why)
NEEDS_REASON = ("rejected",)


def case_view(case: storage.Case) -> dict[str, Any]:
    """``storage.case_to_dict`` plus ``overdue`` (an open case past a due date)."""
    return storage.case_to_dict(case) | {"overdue": storage.is_overdue(case)}


def get_case(desk: Desk, actor: Actor, reference: str) -> dict[str, Any]:
    """One case as ``case_view`` shows it, in a read-only transaction.

    Raises:
        CaseNotFoundError: no case with that reference.
        AccessDeniedError: the actor may not read it (a department user: another department's case).
    """
    with desk.db.reader() as session:
        case = storage.get_case(session, reference)
        require(actor, "read", case, reference=case.reference)
        return case_view(case)


def correct(desk: Desk, actor: Actor, reference: str, labels: Mapping[str, str], *,
            accept_rest: bool = False) -> dict[str, Any]:
    """Set (or confirm) labels of a case: ``{"department": "transport", "sentiment": "negative"}``.

    Each becomes a ``Correction`` (who, when, old and new label, the model version behind the old
    one: training data for ``retrain``) and a confirmed label that ``reclassify`` never overwrites.
    ``accept_rest`` confirms every other label set of the case not confirmed yet, as the model
    labelled it. A case whose
    every label is confirmed leaves the review queue. Correcting ``department`` also hands the case to
    that department. Returns the case as ``case_view`` shows it.

    Raises:
        InvalidLabelError: a label set or label the current model does not have (nothing is stored).
        CaseNotFoundError, AccessDeniedError.
    """
    allowed = desk.allowed_labels
    for label_set, label in labels.items():
        storage.check_allowed(allowed, label_set, label)
    if not labels and not accept_rest:
        raise UsageError("nothing to correct: give at least one label, or accept the case's labels")
    with desk.db.session() as session:
        case = storage.get_case(session, reference)
        require(actor, "correct", case, reference=case.reference)
        todo = dict(labels)
        if accept_rest:
            for lab in case.labels:
                if lab.label_set not in todo and lab.label_set in allowed and not lab.confirmed_by:
                    todo[lab.label_set] = lab.label
        at = datetime.now(UTC)  # one moment for the whole step, so that ``undo`` takes it back whole
        for label_set, label in todo.items():
            storage.correct_label(session, case, label_set, label, reviewer=actor.name, allowed=allowed,
                                  now=at)
        if case.needs_review and all(lab.confirmed_by for lab in case.labels if lab.label_set in allowed):
            storage.mark_reviewed(session, case, reviewer=actor.name, now=at)
        session.flush()
        return case_view(case)


def accept(desk: Desk, actor: Actor, reference: str) -> dict[str, Any]:
    """Confirm every label of the case as the model gave it (the reviewer's "accept all") and take it
    off the queue. See ``correct``."""
    return correct(desk, actor, reference, {}, accept_rest=True)


def undo(desk: Desk, actor: Actor, reference: str) -> dict[str, Any]:
    """Take back the actor's latest correction step on the case (one ``correct`` or ``accept`` call):
    labels, confirmations and the review flag as they were, the corrections deleted (not training
    data). Nothing to undo leaves the case as it is. Returns the case as ``case_view`` shows it.

    Raises:
        CaseNotFoundError, AccessDeniedError.
    """
    with desk.db.session() as session:
        case = storage.get_case(session, reference)
        require(actor, "correct", case, reference=case.reference)
        storage.undo_corrections(session, case, reviewer=actor.name)
        session.flush()
        return case_view(case)


def edit_text(desk: Desk, actor: Actor, reference: str, text: str) -> dict[str, Any]:
    """Fix the case's text (an OCR error); the intake's text stays in ``original_text`` and the audit
    event keeps the text before and after. The labels are not re-run: ``reclassify`` does that.

    Raises:
        UsageError: the new text is empty.
        CaseNotFoundError, AccessDeniedError.
    """
    if not text.strip():
        raise UsageError("the case text cannot be empty")
    with desk.db.session() as session:
        case = storage.get_case(session, reference)
        require(actor, "edit_text", case, reference=case.reference)
        storage.edit_text(session, case, text, actor=actor.name)
        return case_view(case)


def set_status(desk: Desk, actor: Actor, reference: str, status: str, *, note: str = "") -> dict[str, Any]:
    """Move a case along its lifecycle (``storage.TRANSITIONS``); ``note`` is kept in the audit event.

    Rejecting needs a reason (the note). Reopening a closed or rejected case (to ``in_progress``) gives
    it a new resolution due date from its department's SLA.

    Raises:
        UsageError: rejecting without a reason.
        InvalidTransitionError: not a status, or not reachable from the current one (the message
            lists where it can go).
        CaseNotFoundError, AccessDeniedError.
    """
    if status in NEEDS_REASON and not note.strip():
        raise UsageError(f"a case is {status} only with a reason: give it as the note")
    with desk.db.session() as session:
        case = storage.get_case(session, reference)
        require(actor, "status", case, reference=case.reference)
        rules = desk.settings.due_rules()
        days = (rules.get(case.department) or rules[""])[1]
        storage.set_status(session, case, status, actor=actor.name, note=note.strip(), due_days=int(days))
        return case_view(case)


def assign(desk: Desk, actor: Actor, reference: str, *, department: str | None = None,
           assignee: str | None = None) -> dict[str, Any]:
    """Hand a case to a department (its due dates follow that department's SLA, counted from intake)
    and/or a person (``""`` takes it off whoever had it); None leaves that part as it is.

    Raises:
        InvalidLabelError: ``department`` is not a department label.
        AccessDeniedError: the actor may not assign this case, or (a department user) hand it to
            another department.
        CaseNotFoundError.
    """
    if department is not None and department not in desk.departments:
        raise InvalidLabelError(
            f"{department!r} is not a department; departments: {', '.join(desk.departments)}")
    if department is not None and not can_assign_to(actor, department):
        raise AccessDeniedError(f"{actor.name} ({actor.role.value}) may not hand a case to {department}")
    with desk.db.session() as session:
        case = storage.get_case(session, reference)
        require(actor, "assign", case, reference=case.reference)
        due = None
        if department is not None:
            due = storage.due_dates(case.created_at, department, desk.settings.due_rules(),
                                    desk.settings.due_days)
        storage.assign(session, case, actor=actor.name, department=department,
                       assignee=assignee.strip() if assignee is not None else None, due=due)
        return case_view(case)


def add_note(desk: Desk, actor: Actor, reference: str, text: str) -> None:
    """An internal note on the case, for colleagues (never sent to the citizen).

    Raises:
        UsageError: the note is empty.
        CaseNotFoundError, AccessDeniedError.
    """
    if not text.strip():
        raise UsageError("the note is empty")
    with desk.db.session() as session:
        case = storage.get_case(session, reference)
        require(actor, "note", case, reference=case.reference)
        storage.add_note(session, case, text.strip(), actor=actor.name)


@dataclass(frozen=True)
class HistoryEntry:
    """One line of a case's history: an audit event, or a message in or out (``kind == "message"``)."""

    at: datetime
    actor: str
    kind: str  # the audit action (created, status, label_corrected, note, ...) or "message"
    detail: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"at": self.at.isoformat(), "actor": self.actor, "kind": self.kind, "detail": self.detail}


def history(desk: Desk, actor: Actor, reference: str) -> list[HistoryEntry]:
    """The case's whole audit trail, oldest first, with every message joined to it or sent from it
    (the citizen's e-mails, replies by e-mail, phone or letter) in full.

    Raises:
        CaseNotFoundError, AccessDeniedError.
    """
    with desk.db.reader() as session:
        case = storage.get_case(session, reference)
        require(actor, "read", case, reference=case.reference)
        events = storage.audit_trail(session, case)
        entries = [HistoryEntry(e.at, e.actor, e.action, dict(e.detail))
                   for e in events if e.action != "message_added"]
        # a message sits in the history when it joined the case (its audit event), not at its Date header
        joined = [e for e in events if e.action == "message_added"]
        for m in case.messages:
            event = next((e for e in joined if e.detail.get("message_id", "") == m.message_id
                          and e.detail.get("direction") == m.direction), None)
            if event is not None:
                joined.remove(event)
            at = event.at if event is not None else m.received_at
            entries.append(HistoryEntry(at, m.author or m.sender, "message", {
                "direction": m.direction, "method": m.method, "message_id": m.message_id,
                "sender": m.sender, "subject": m.subject, "text": m.text, "date": m.received_at.isoformat()}))
    return sorted(entries, key=lambda e: e.at)


@dataclass(frozen=True)
class QueuePage:
    """One page of the review queue: cases as ``case_view`` shows them, and the token of the next page
    (None on the last one)."""

    cases: list[dict[str, Any]]
    next: str | None


def review_queue(desk: Desk, actor: Actor, *, limit: int = 50, after: str | None = None) -> QueuePage:
    """The open cases that need review, most needed first: a label below its threshold, a close
    runner-up and a low OCR confidence each count (``storage.review_rank``), then the soonest due
    (overdue first), then the oldest.

    Pages are keyset-paginated: pass the previous page's ``next`` as ``after``; each page is one
    index walk, as fast on page 2,000 as on page 1 (see ``bench/web.py``).

    Raises:
        UsageError: ``limit`` is not between 1 and 500, or ``after`` is not a token this function made.
        AccessDeniedError: the actor has no queue (department users, scanners).
    """
    require(actor, "queue")
    if not 1 <= limit <= 500:
        raise UsageError(f"a queue page has 1 to 500 cases, not {limit}")
    cursor = _decode_cursor(after) if after else None
    with desk.db.reader() as session:
        found = storage.review_queue(session, limit=limit + 1, after=cursor,
                                     department=department_scope(actor))
        page = found[:limit]
        token = _encode_cursor(QueueCursor.after(page[-1])) if len(found) > limit else None
        return QueuePage([case_view(c) for c in page], token)


def overdue(desk: Desk, actor: Actor, *, limit: int | None = None) -> list[dict[str, Any]]:
    """Open cases past a due date (resolution, or first response without an answer yet), most overdue
    first; a department user sees their department's.

    Raises:
        AccessDeniedError: the actor reads no cases.
    """
    require(actor, "read")
    with desk.db.reader() as session:
        return [case_view(c) for c in storage.overdue_cases(session, department=department_scope(actor),
                                                            limit=limit)]


def list_cases(desk: Desk, actor: Actor, *, status: str | None = None, limit: int | None = 100,
               needs_review: bool | None = None) -> list[dict[str, Any]]:
    """Cases newest first, as ``storage.list_cases`` filters them, limited to the actor's department.

    Raises:
        AccessDeniedError: the actor reads no cases.
        InvalidTransitionError: ``status`` is not a case status.
    """
    require(actor, "read")
    scope = department_scope(actor)
    with desk.db.reader() as session:
        found = storage.list_cases(session, status=status, needs_review=needs_review, limit=limit,
                                   handling_department=scope)
        return [case_view(c) for c in found]


def _encode_cursor(cursor: QueueCursor) -> str:
    values = [cursor.rank, cursor.due_at.isoformat() if cursor.due_at else None,
              cursor.created_at.isoformat(), cursor.id]
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


def _decode_cursor(token: str) -> QueueCursor:
    try:
        rank, due, created, case_id = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        return QueueCursor(int(rank), datetime.fromisoformat(due) if due else None,
                           datetime.fromisoformat(created), int(case_id))
    except (ValueError, TypeError) as e:
        raise UsageError(f"not a queue page token: {token[:40]!r}") from e
