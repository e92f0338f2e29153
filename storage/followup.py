"""Following a case up: its handling department and assignee, due dates from the SLA, notes, text edits,
the review rank that orders the queue, and the queries of the review queue and overdue list.

Every function takes the caller's ``Session`` and never commits; every change writes an audit event.
Who may call them is decided above (``pipeline.review.can``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import and_, or_, select, true, tuple_
from sqlalchemy.orm import Session

from pipeline.core.model import ReviewRule
from storage.audit import record_event
from storage.models import Case, utcnow

#: the statuses whose cases are still being worked (due dates matter, the queue shows them)
OPEN_STATUSES = ("new", "triaged", "in_progress", "waiting_citizen")
#: a page read below this mean word confidence (Tesseract's 0-100) is a reason to look at the scan
LOW_OCR_CONFIDENCE = 70.0
#: the number of reasons ``review_rank`` counts; rank = this minus the reasons found
RANK_REASONS = 3
_DEFAULT_RULE = ReviewRule()


class DueRule(NamedTuple):
    """A department's service levels in days: the first answer (None: no target) and the resolution."""

    first_response_days: float | None
    resolution_days: float


def due_dates(created: datetime, department: str, rules: Mapping[str, tuple[float | None, float]],
              default_days: float) -> tuple[datetime | None, datetime]:
    """(first response due, resolution due) of a case of ``department`` created at ``created``.

    ``rules[department]``, else ``rules[""]`` (the deployment's default), else no first-response
    target and ``default_days`` to resolve.
    """
    first_days, days = rules.get(department) or rules.get("") or DueRule(None, default_days)
    return (created + timedelta(days=first_days) if first_days is not None else None,
            created + timedelta(days=days))


def review_rank(labels: Iterable[Any], ocr_confidence: float | None,
                rules: Mapping[str, ReviewRule] | None = None) -> int:
    """The queue's first sort key: ``RANK_REASONS`` minus the reasons a person should look (lower first).

    The reasons: a label not confirmed by a reviewer below its label set's threshold; one whose
    runner-up is within the label set's margin; an OCR confidence below ``LOW_OCR_CONFIDENCE``.
    ``labels`` are ``CaseLabel`` rows or anything with ``label_set``, ``label``, ``confidence``,
    ``scores`` (and optionally ``confirmed_by``).
    """
    low = close = False
    for lab in labels:
        if getattr(lab, "confirmed_by", None):
            continue
        rule = (rules or {}).get(lab.label_set, _DEFAULT_RULE)
        low = low or lab.confidence < rule.threshold
        others = sorted((float(s) for k, s in (lab.scores or {}).items() if k != lab.label), reverse=True)
        close = close or (bool(others) and lab.confidence - others[0] < rule.margin)
    blurred = ocr_confidence is not None and ocr_confidence < LOW_OCR_CONFIDENCE
    return RANK_REASONS - (low + close + blurred)


def rerank(case: Case, rules: Mapping[str, ReviewRule] | None = None) -> int:
    """Recompute ``case.review_rank`` after its labels changed; returns it."""
    case.review_rank = review_rank(case.labels, case.ocr_confidence, rules)
    return case.review_rank


def assign(session: Session, case: Case, *, actor: str, department: str | None = None,
           assignee: str | None = None, due: tuple[datetime | None, datetime] | None = None,
           now: datetime | None = None) -> Case:
    """Hand ``case`` to ``department`` and/or a person (``""`` unassigns); None leaves a part as it is.

    ``due`` (first response, resolution), when given, replaces the due dates (the new department's SLA).
    """
    at = now or utcnow()
    detail: dict[str, Any] = {}
    if department is not None and department != case.department:
        detail["department"] = {"old": case.department, "new": department}
        case.department = department
    if assignee is not None and assignee != case.assignee:
        detail["assignee"] = {"old": case.assignee, "new": assignee}
        case.assignee = assignee
    if not detail:
        return case
    if due is not None and "department" in detail:
        case.first_response_due_at, case.due_at = due
        detail["due_at"] = case.due_at.isoformat()
    case.updated_at = at
    record_event(session, "assigned", actor=actor, case=case, detail=detail, at=at)
    return case


def add_note(session: Session, case: Case, text: str, *, actor: str, now: datetime | None = None) -> None:
    """An internal note on ``case`` (never sent to the citizen): an audit event ``note``."""
    at = now or utcnow()
    case.updated_at = at
    record_event(session, "note", actor=actor, case=case, detail={"text": text}, at=at)


def edit_text(session: Session, case: Case, text: str, *, actor: str, now: datetime | None = None) -> bool:
    """Replace the case's text (an OCR fix); the intake's text is kept in ``original_text`` the first time,
    and the audit event keeps the text before this edit. Returns False when the text is unchanged."""
    if text == case.text:
        return False
    at = now or utcnow()
    if case.original_text is None:
        case.original_text = case.text
    record_event(session, "text_edited", actor=actor, case=case, at=at,
                 detail={"old": case.text, "new": text})
    case.text = text
    case.updated_at = at
    return True


def mark_first_response(case: Case, at: datetime) -> None:
    """Record the first answer to the citizen (later replies leave it)."""
    if case.first_response_at is None:
        case.first_response_at = at


class QueueCursor(NamedTuple):
    """Where a queue page ended: the sort key of its last case (keyset pagination)."""

    rank: int
    due_at: datetime | None
    created_at: datetime
    id: int

    @classmethod
    def after(cls, case: Case) -> QueueCursor:
        return cls(case.review_rank, case.due_at, case.created_at, case.id)


def review_queue(session: Session, *, limit: int, after: QueueCursor | None = None,
                 department: str | None = None) -> list[Case]:
    """Open cases that need review, most needed first, then soonest due, then oldest.

    One walk of ``ix_cases_review_queue``: the page after ``after`` is a keyset condition on
    (review_rank, due_at, created_at, id), so page 2,000 is as fast as page 1. Every case has a due
    date (``create_case`` sets it), which keeps the tuple comparison exact.
    """
    # ``= true``, not ``IS TRUE``: PostgreSQL walks an index only for the former
    statement = select(Case).where(Case.needs_review == true(), Case.status.in_(OPEN_STATUSES))
    if department is not None:
        statement = statement.where(Case.department == department)
    if after is not None:
        statement = statement.where(
            tuple_(Case.review_rank, Case.due_at, Case.created_at, Case.id)
            > tuple_(after.rank, after.due_at, after.created_at, after.id))
    order = (Case.review_rank, Case.due_at, Case.created_at, Case.id)
    return list(session.scalars(statement.order_by(*order).limit(limit)))


def overdue_cases(session: Session, *, now: datetime | None = None, department: str | None = None,
                  limit: int | None = None) -> list[Case]:
    """Open cases past their resolution due date, or past their first-response date with no answer yet,
    the most overdue first."""
    at = now or utcnow()
    late = or_(Case.due_at < at,
               and_(Case.first_response_at.is_(None), Case.first_response_due_at < at))
    statement = select(Case).where(Case.status.in_(OPEN_STATUSES), late)
    if department is not None:
        statement = statement.where(Case.department == department)
    statement = statement.order_by(Case.due_at, Case.id)
    if limit is not None:
        statement = statement.limit(limit)
    return list(session.scalars(statement))


def is_overdue(case: Case, now: datetime | None = None) -> bool:
    """True for an open case past a due date (resolution, or first response without an answer)."""
    at = now or utcnow()
    if case.status not in OPEN_STATUSES:
        return False
    if case.due_at is not None and case.due_at < at:
        return True
    return (case.first_response_at is None and case.first_response_due_at is not None
            and case.first_response_due_at < at)


def cases_by_ids(session: Session, ids: Sequence[int]) -> list[Case]:
    """The cases with these ids, in that order (ids with no case are left out)."""
    found = {c.id: c for c in session.scalars(select(Case).where(Case.id.in_(ids)))}
    return [found[i] for i in ids if i in found]
