"""Cases: creating one from a classified intake item, finding, listing, showing, and the status lifecycle.

Every function takes the caller's ``Session`` and never commits.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import PurePath
from types import SimpleNamespace
from typing import Any, NamedTuple

from sqlalchemy import and_, insert, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from pipeline.core.model import Classification, ExtractedField, IntakeItem, ReviewRule
from storage._dialect import bulk_insert, insert_returning_ids
from storage.audit import record_event
from storage.errors import CaseNotFoundError, DuplicateCaseError, InvalidTransitionError
from storage.followup import due_dates, review_rank
from storage.lookup import rows_by_sha256
from storage.models import CASE_STATUSES, AuditEvent, Case, CaseLabel, CaseSearch, Document, utcnow
from storage.references import next_reference, next_references
from storage.search import case_terms, matching

#: the label sets every case shows at the top level of ``case_to_dict``
STANDARD_LABEL_SETS = ("department", "sentiment", "kind")

#: status -> the statuses it may move to
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "new": ("triaged", "in_progress", "rejected"),
    "triaged": ("in_progress", "waiting_citizen", "resolved", "rejected"),
    "in_progress": ("waiting_citizen", "resolved", "rejected"),
    "waiting_citizen": ("in_progress", "resolved", "rejected"),
    "resolved": ("closed", "in_progress"),
    "closed": ("in_progress",),
    "rejected": ("in_progress",),
}
FINAL_STATUSES = ("closed", "rejected")

#: (filename, media_type, role, sha256, size) of a file kept with a case
OriginalRef = tuple[str, str, str, str, int]


def find_case_by_sha256(session: Session, sha256: str) -> Case | None:
    """The (first) case made from these exact original bytes, if any (typed-in texts may repeat)."""
    return session.scalars(select(Case).where(Case.sha256 == sha256).order_by(Case.id).limit(1)).first()


def cases_by_sha256(session: Session, sha256s: Sequence[str]) -> dict[str, Case]:
    """The cases made from any of these original bytes, by content hash."""
    return rows_by_sha256(session, Case, sha256s)


def find_case(session: Session, reference: str) -> Case | None:
    """The case with this reference (``2026-000123``, also accepted as ``#2026-000123``), if any."""
    return session.scalars(select(Case).where(Case.reference == _clean_reference(reference))).one_or_none()


def get_case(session: Session, reference: str) -> Case:
    """The case with this reference.

    Raises:
        CaseNotFoundError: there is none.
    """
    case = find_case(session, reference)
    if case is None:
        raise CaseNotFoundError(
            f"no case with reference {reference}; list cases with `complaintdesk cases list`"
        )
    return case


def create_case(
    session: Session,
    item: IntakeItem,
    *,
    due_days: int,
    actor: str,
    thresholds: Mapping[str, ReviewRule] | None = None,
    originals: Sequence[OriginalRef] | None = None,
    now: datetime | None = None,
    sla: Mapping[str, tuple[float | None, float]] | None = None,
) -> Case:
    """A new case from a classified item: reference, labels, review flag, documents, audit event.

    Its due dates come from ``sla`` (department -> ``DueRule``, ``""`` for the default; see
    ``storage.due_dates``), else ``due_days`` to resolve and no first-response target.

    ``originals`` are the files to list with the case (their bytes go to the ``BlobStore``
    separately); by default one document describing ``item.source``. The case needs review when a
    label breaks its label set's rule (``thresholds[label_set]``: the ``threshold`` and ``margin`` of
    ``labels.toml``, which the caller takes from the model's label sets), or the item was not classified.

    Raises:
        DuplicateCaseError: a case for the same original exists (a concurrent run stored it first);
            the savepoint is rolled back, the caller's transaction stays usable.
    """
    created = now or utcnow()
    source = item.source
    case = Case(**_case_values(item, created, due_days=due_days, thresholds=thresholds, sla=sla))
    case.labels = _labels_of(item.classification)
    case.documents = _documents(originals, item, created)
    try:
        with session.begin_nested():
            # numbered inside the savepoint: a duplicate rolls the counter back too and burns no number
            case.reference = next_reference(session, created.year)
            session.add(case)
    except IntegrityError as e:
        if find_case_by_sha256(session, source.sha256) is None:
            raise
        raise DuplicateCaseError(f"a case for {source.name} (sha256 {source.sha256}) already exists") from e
    session.execute(insert(CaseSearch), [_search_row(case)])
    record_event(session, "created", actor=actor, case=case, at=created, detail=_created_detail(case, item))
    return case


class NewCase(NamedTuple):
    """A case written by ``create_cases``: its row id, reference and JSON form (``case_to_dict``)."""

    id: int
    reference: str
    data: dict[str, Any]


def create_cases(
    session: Session,
    items: Sequence[IntakeItem],
    *,
    due_days: int,
    actor: str,
    thresholds: Mapping[str, ReviewRule] | None = None,
    originals: Sequence[Sequence[OriginalRef] | None] | None = None,
    now: datetime | None = None,
    sla: Mapping[str, tuple[float | None, float]] | None = None,
) -> list[NewCase]:
    """Many new cases at once, as ``create_case`` would make them one by one, in the same order.

    One reference-counter update for the batch and one multi-row INSERT per table (cases, labels,
    documents, audit events), inside one savepoint. ``originals[i]`` belongs to ``items[i]``.

    Raises:
        DuplicateCaseError: two items have the same original, or one is already a case; nothing of
            the batch is written and the caller's transaction stays usable.
    """
    if not items:
        return []
    if originals is not None and len(originals) != len(items):
        raise ValueError("originals must have one entry per item")
    shas = [item.source.sha256 for item in items]
    if len(set(shas)) != len(shas):
        raise DuplicateCaseError("two items of the batch have the same original; store them one by one")
    created = now or utcnow()
    # plain rows, not ORM objects: at thousands of cases a second the ORM's bookkeeping is the cost
    rows = [_case_values(item, created, due_days=due_days, thresholds=thresholds, sla=sla) for item in items]
    try:
        with session.begin_nested():
            # numbered inside the savepoint: a refused batch rolls the counter back too and burns no numbers
            for row, reference in zip(rows, next_references(session, created.year, len(items)), strict=True):
                row["reference"] = reference
            ids = insert_returning_ids(session, Case.__table__, rows)  # type: ignore[arg-type]
    except IntegrityError as e:
        known = session.scalars(select(Case.sha256).where(Case.sha256.in_(shas))).first()
        if known is None:
            raise
        raise DuplicateCaseError(f"a case for the original with sha256 {known} already exists") from e
    labels: list[dict[str, Any]] = []
    documents: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    searches: list[dict[str, Any]] = []
    made: list[NewCase] = []
    for n, (item, row, case_id) in enumerate(zip(items, rows, ids, strict=True)):
        case_labels = _label_values(item.classification)
        case_documents = _document_values(originals[n] if originals is not None else None, item, created)
        labels += [{**label, "case_id": case_id} for label in case_labels]
        documents += [{**doc, "case_id": case_id} for doc in case_documents]
        searches.append({"case_id": case_id, "terms": case_terms(row["text"], row["subject"], row["sender"])})
        # case_to_dict reads attributes only: a namespace stands in for the ORM object
        case = SimpleNamespace(**row, id=case_id, labels=[SimpleNamespace(**v) for v in case_labels],
                               documents=[SimpleNamespace(**v) for v in case_documents])
        events.append({"case_id": case_id, "actor": actor, "action": "created", "at": created,
                       "detail": _created_detail(case, item)})  # type: ignore[arg-type]
        made.append(NewCase(case_id, row["reference"], case_to_dict(case)))  # type: ignore[arg-type]
    for model, batch in ((CaseLabel, labels), (Document, documents), (AuditEvent, events),
                         (CaseSearch, searches)):
        bulk_insert(session, model.__table__, batch)  # type: ignore[arg-type]
    return made


def _search_row(case: Case) -> dict[str, Any]:
    return {"case_id": case.id, "terms": case_terms(case.text or "", case.subject or "", case.sender or "")}


def _case_values(
    item: IntakeItem, created: datetime, *, due_days: int, thresholds: Mapping[str, ReviewRule] | None,
    sla: Mapping[str, tuple[float | None, float]] | None = None,
) -> dict[str, Any]:
    source = item.source
    labels = item.classification.labels if item.classification else {}
    department = labels["department"].label if "department" in labels else ""
    first_due, due = due_dates(created, department, sla or {}, due_days)
    return {
        "channel": str(source.channel),
        "source_name": source.name,
        "sha256": source.sha256,
        "language": item.language,
        "text": item.text,
        "subject": item.subject,
        "sender": item.sender,
        "status": "new",
        "model_version": item.classification.model_version if item.classification else "",
        "ocr_confidence": item.ocr_confidence if item.ocr_confidence >= 0 else None,
        # an input whose attachment or part could not be read needs a person, however sure the model is
        "needs_review": bool(item.problems) or review_needed(item.classification, thresholds or {}),
        "problems": list(item.problems),
        "fields": [_field(f) for f in item.fields],
        "pages": [{"number": pg.number, "confidence": pg.confidence, "language": pg.language,
                   "method": pg.method, "chars": len(pg.text.strip())} for pg in item.pages],
        "department": department,
        "assignee": "",
        "review_rank": review_rank(labels.values(), item.ocr_confidence if item.ocr_confidence >= 0 else None,
                                   thresholds),
        "original_text": None,
        "due_at": due,
        "first_response_due_at": first_due,
        "first_response_at": None,
        "slip_number": item.slip_number,
        "form": item.form,
        "part": item.part,
        "ocr_text": item.ocr_text,
        "created_at": created,
        "updated_at": created,
        "closed_at": None,
    }


def _field(f: ExtractedField) -> dict[str, Any]:
    row: dict[str, Any] = {"name": f.name, "value": f.value, "start": f.start, "end": f.end}
    if f.start < 0:  # read from the slip form's field box: how sure the reading is
        row["confidence"] = f.confidence
    return row


def _created_detail(case: Case, item: IntakeItem) -> dict[str, Any]:
    return {"reference": case.reference, "channel": case.channel, "source": item.source.name,
            "sha256": item.source.sha256, "needs_review": case.needs_review}


#: for a label set the caller gave no rule for: the defaults of ``labels.toml``
_DEFAULT_RULE = ReviewRule()


def review_needed(classification: Classification | None, rules: Mapping[str, ReviewRule]) -> bool:
    """True if the item was not classified or a label breaks its label set's rule.

    A label set that is not listed has the rule ``ReviewRule()``.
    """
    if classification is None or not classification.labels:
        return True
    return any(rules.get(label.label_set, _DEFAULT_RULE).needs_review(label)
               for label in classification.labels.values())


def _labels_of(classification: Classification | None) -> list[CaseLabel]:
    return [CaseLabel(**values) for values in _label_values(classification)]


def _label_values(classification: Classification | None) -> list[dict[str, Any]]:
    if classification is None:
        return []
    return [
        {"label_set": label.label_set, "label": label.label, "confidence": float(label.confidence),
         "scores": {k: float(v) for k, v in label.scores.items()},
         "model_version": classification.model_version, "confirmed_by": None, "confirmed_at": None}
        for label in classification.labels.values()
    ]


def _documents(originals: Sequence[OriginalRef] | None, item: IntakeItem,
               created: datetime) -> list[Document]:
    return [Document(**values) for values in _document_values(originals, item, created)]


def _document_values(originals: Sequence[OriginalRef] | None, item: IntakeItem,
                     created: datetime) -> list[dict[str, Any]]:
    if originals is None:
        source = item.source
        originals = [(PurePath(source.name).name or source.name, source.media_type, "original", source.sha256,
                      source.size)]
    documents: dict[str, dict[str, Any]] = {}
    for filename, media_type, role, sha256, size in originals:
        if sha256 not in documents:  # the same bytes are listed with a case once
            documents[sha256] = {"sha256": sha256, "filename": filename, "media_type": media_type,
                                 "role": role, "size": size, "created_at": created}
    return list(documents.values())


def list_cases(
    session: Session,
    *,
    status: str | None = None,
    department: str | None = None,
    limit: int | None = None,
    needs_review: bool | None = None,
    channel: str | None = None,
    since: datetime | None = None,
    after: str | None = None,
    search: str | None = None,
    handling_department: str | None = None,
) -> list[Case]:
    """Cases, newest first, optionally only those with a status, a department, a channel, the review
    flag, created at or after ``since`` (a timezone-aware datetime), or matching the full-text
    ``search`` (``storage.search``: every word and Chinese character pair of it). ``department``
    filters by the department label, ``handling_department`` by the department handling the case
    (``Case.department``).

    ``after`` is the reference of the last case of the previous page: the list continues with the
    cases older than it (keyset pagination on (created_at, id), as fast on page 1000 as on page 1).
    An unknown department or channel matches no case: the caller checks them against its label sets
    and ``Channel``.

    Raises:
        InvalidTransitionError: ``status`` is not a case status (the message lists them).
        CaseNotFoundError: there is no case ``after``.
        ValueError: ``search`` has nothing to look for (no letters, digits or Chinese characters).
    """
    statement = select(Case)
    if search is not None:
        statement = statement.where(matching(session, search))
    if after is not None:
        last = get_case(session, after)
        # the plain range first, so every (filter, created_at, id) index serves it; the OR breaks ties
        statement = statement.where(Case.created_at <= last.created_at).where(
            or_(Case.created_at < last.created_at, Case.id < last.id)
        )
    if status is not None:
        _check_status(status)
        statement = statement.where(Case.status == status)
    if department is not None:
        statement = statement.join(
            CaseLabel, and_(CaseLabel.case_id == Case.id, CaseLabel.label_set == "department")
        ).where(CaseLabel.label == department)
    if handling_department is not None:
        statement = statement.where(Case.department == handling_department)
    if needs_review is not None:
        statement = statement.where(Case.needs_review == needs_review)
    if channel is not None:
        statement = statement.where(Case.channel == channel)
    if since is not None:
        statement = statement.where(Case.created_at >= since)
    statement = statement.order_by(Case.created_at.desc(), Case.id.desc())
    if limit is not None:
        statement = statement.limit(limit)
    return list(session.scalars(statement))


#: the columns of ``export_row``, in order; each extracted field name adds a ``field_<name>`` column
EXPORT_COLUMNS = (
    "reference", "status", "needs_review", "channel", "source", "sha256", "language", "department",
    "department_confidence", "sentiment", "sentiment_confidence", "kind", "kind_confidence", "model_version",
    "ocr_confidence", "created_at", "due_at", "closed_at", "subject", "sender", "text",
)
#: the field names ``classifiers.extract_fields`` finds: always exported, so the columns stay the same
EXPORT_FIELDS = ("name", "phone", "email", "date", "time", "place", "window", "badge")


def export_row(case: Case) -> dict[str, Any]:
    """One case as a flat row for a spreadsheet: ``EXPORT_COLUMNS`` plus ``field_<name>`` for each
    extracted field name (several values of one name joined with ``; ``). Text is as stored."""
    data = case_to_dict(case)
    row = {column: data.get(column) for column in EXPORT_COLUMNS}
    for name in EXPORT_FIELDS:
        row[f"field_{name}"] = ""
    for f in data["fields"]:
        key = f"field_{f['name']}"
        row[key] = f"{row[key]}; {f['value']}" if row.get(key) else f["value"]
    return row


def export_columns(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """The header for ``rows`` of ``export_row``: the fixed columns, then field names not known in advance."""
    columns = [*EXPORT_COLUMNS, *(f"field_{name}" for name in EXPORT_FIELDS)]
    extra = sorted({key for row in rows for key in row} - set(columns))
    return columns + extra


def set_status(
    session: Session,
    case: Case,
    status: str,
    *,
    actor: str,
    note: str = "",
    due_days: int | None = None,
    now: datetime | None = None,
) -> Case:
    """Move ``case`` along its lifecycle and audit it; setting the current status again is a no-op.

    ``closed`` and ``rejected`` set ``closed_at``; reopening (to ``in_progress``) clears it and, if
    ``due_days`` is given, sets a new due date that many days from now.

    Raises:
        InvalidTransitionError: ``status`` is unknown or not reachable from the current status.
    """
    _check_status(status)
    if status == case.status:
        return case
    allowed = TRANSITIONS[case.status]
    if status not in allowed:
        raise InvalidTransitionError(
            f"case {case.reference} is {case.status}; it can move to {', '.join(allowed)}, not {status}"
        )
    at = now or utcnow()
    previous = case.status
    case.status = status
    case.updated_at = at
    if status in FINAL_STATUSES:
        case.closed_at = at
    elif previous in FINAL_STATUSES:
        case.closed_at = None
    if previous in FINAL_STATUSES + ("resolved",) and due_days is not None:
        case.due_at = at + timedelta(days=due_days)
    detail: dict[str, Any] = {"from": previous, "to": status}
    if note:
        detail["note"] = note
    record_event(session, "status", actor=actor, case=case, detail=detail, at=at)
    return case


def _check_status(status: str) -> None:
    if status not in CASE_STATUSES:
        raise InvalidTransitionError(
            f"unknown case status {status!r}; statuses are {', '.join(CASE_STATUSES)}"
        )


def _clean_reference(reference: str) -> str:
    return reference.strip().lstrip("#").strip()


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def case_to_dict(case: Case) -> dict[str, Any]:
    """The JSON form of a case (see docs/architecture.md); call it while the session is open."""
    labels = {
        lab.label_set: {
            "label": lab.label,
            "confidence": lab.confidence,
            "scores": dict(lab.scores),
            "model_version": lab.model_version,
            "confirmed_by": lab.confirmed_by,
            "confirmed_at": _iso(lab.confirmed_at),
        }
        for lab in case.labels
    }
    row: dict[str, Any] = {
        "reference": case.reference,
        "channel": case.channel,
        "source": case.source_name,
        "sha256": case.sha256,
        "language": case.language,
        "text": case.text,
        "subject": case.subject,
        "sender": case.sender,
        "status": case.status,
        "needs_review": case.needs_review,
        "assigned_department": case.department,
        "assignee": case.assignee,
        "review_rank": case.review_rank,
        "original_text": case.original_text,
        "problems": list(case.problems or []),
        "model_version": case.model_version,
        "ocr_confidence": case.ocr_confidence,
        "created_at": _iso(case.created_at),
        "updated_at": _iso(case.updated_at),
        "due_at": _iso(case.due_at),
        "first_response_due_at": _iso(case.first_response_due_at),
        "first_response_at": _iso(case.first_response_at),
        "closed_at": _iso(case.closed_at),
        "fields": [dict(f) for f in case.fields],
        "pages": [dict(pg) for pg in case.pages],
        # a slip parsed as a form: its printed number, the template, which slip of its file, and all
        # the OCR read (print included) while "text" is what the citizen wrote
        "slip_number": case.slip_number,
        "form": case.form,
        "part": case.part,
        "ocr_text": case.ocr_text,
    }
    for label_set in STANDARD_LABEL_SETS:
        found = labels.get(label_set)
        row[label_set] = found["label"] if found else None
        row[f"{label_set}_confidence"] = found["confidence"] if found else None
    row["labels"] = labels
    row["documents"] = [
        {"sha256": d.sha256, "filename": d.filename, "media_type": d.media_type, "size": d.size,
         "role": d.role}
        for d in case.documents
    ]
    return row
