"""The web app's seam to the review operations: each function is one call into ``pipeline``/``storage``.

Issue 14 splits the work: the review service (``pipeline.review``: accept, queue order, notes, replies,
assignment, SLA, the ``can`` predicate) is written beside this app. Until it is merged, these are thin
calls onto what ``pipeline.models`` and ``storage`` already offer, so the pages have one place to switch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

import classifiers
import storage
from pipeline import models
from storage.models import Case, Correction, utcnow

#: who may do what (role -> actions); department users only on their department's cases
_ROLE_ACTIONS = {
    "scanner": frozenset(),
    "reviewer": frozenset({"read", "correct"}),
    "department": frozenset({"read", "follow_up"}),
    "supervisor": frozenset({"read", "correct", "follow_up", "supervise"}),
}


def case_department(case: Case) -> str:
    label = case.label("department")
    return label.label if label is not None else ""


def can(role: str, department: str, action: str, case: Case | None = None) -> bool:
    """May a user of ``role`` (and ``department``) do ``action`` (read, correct, follow_up, supervise)
    to ``case``, or, without a case, to some cases (lists are then filtered case by case)?
    Department staff only to cases of their own department."""
    if action not in _ROLE_ACTIONS.get(role, frozenset()):
        return False
    if role == "department" and case is not None:
        return bool(department) and case_department(case) == department
    return True


def queue(session: Session, *, limit: int = 50, department: str | None = None) -> list[Case]:
    """The cases waiting for a reviewer."""
    return storage.list_cases(session, needs_review=True, status="new", limit=limit, department=department)


def next_in_queue(session: Session, after: str) -> str | None:
    """The reference of the queue's first case other than ``after``."""
    for case in queue(session, limit=2):
        if case.reference != after:
            return case.reference
    return None


def correct(db: storage.Database, reference: str, label_set: str, label: str, *, reviewer: str,
            label_sets: Sequence[classifiers.LabelSet]) -> dict[str, Any]:
    return models.correct_label(db, reference, label_set, label, reviewer=reviewer, label_sets=label_sets)


def accept(db: storage.Database, reference: str, *, reviewer: str) -> None:
    """Confirm every label of the case as it stands and take it off the queue."""
    with db.session() as s:
        case = storage.get_case(s, reference)
        for lab in list(case.labels):
            if lab.confirmed_by is None:
                storage.correct_label(s, case, lab.label_set, lab.label, reviewer=reviewer)
        storage.mark_reviewed(s, case, reviewer=reviewer)


def undo(db: storage.Database, reference: str, *, reviewer: str) -> Correction | None:
    """Put back the label this reviewer last changed on the case (recorded as a correction too)."""
    with db.session() as s:
        case = storage.get_case(s, reference)
        last = s.scalars(
            select(Correction).where(Correction.case_id == case.id, Correction.reviewer == reviewer,
                                     Correction.old_label.is_not(None),
                                     Correction.old_label != Correction.new_label)
            .order_by(Correction.id.desc()).limit(1)
        ).first()
        if last is None or last.old_label is None:
            return None
        storage.correct_label(s, case, last.label_set, last.old_label, reviewer=reviewer)
        return last


def set_status(db: storage.Database, reference: str, status: str, *, actor: str, note: str = "") -> None:
    with db.session() as s:
        storage.set_status(s, storage.get_case(s, reference), status, actor=actor, note=note)


def add_note(db: storage.Database, reference: str, text: str, *, actor: str) -> None:
    with db.session() as s:
        case = storage.get_case(s, reference)
        storage.record_event(s, "note", actor=actor, case=case, detail={"text": text})
        case.updated_at = utcnow()


def overdue(session: Session, *, limit: int = 200) -> list[Case]:
    now = utcnow()
    statement = (select(Case).where(Case.due_at < now, Case.status.in_(("new", "triaged", "in_progress",
                                                                        "waiting_citizen")))
                 .order_by(Case.due_at).limit(limit))
    return list(session.scalars(statement))
