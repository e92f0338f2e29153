"""Uploads through the web app: who uploaded which file, and the intake row it was accepted as.

``record_upload`` is written in the intake row's own transaction (``pipeline.intake.accept_source``),
so an accepted upload always has its uploader. ``list_uploads`` reads them back with their intake
row's state and outcome and the case it points at, newest first.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.models import Case, IntakeRecord, Upload, utcnow


@dataclass(frozen=True, slots=True)
class UploadRow:
    """An upload as its list shows it: the upload, its intake row's state and outcome, the case."""

    id: int
    intake_id: int
    filename: str
    uploaded_by: str
    uploaded_at: datetime
    new: bool
    state: str
    outcome: str
    reason: str
    last_error: str
    reference: str | None


def record_upload(session: Session, *, intake_id: int, uploaded_by: str, filename: str, new: bool) -> Upload:
    """Record that ``uploaded_by`` uploaded ``filename``, accepted as intake row ``intake_id``."""
    upload = Upload(intake_id=intake_id, uploaded_by=uploaded_by, filename=filename, new=new,
                    uploaded_at=utcnow())
    session.add(upload)
    session.flush()
    return upload


def list_uploads(session: Session, *, uploaded_by: str | None = None, ids: list[int] | None = None,
                 limit: int = 200) -> list[UploadRow]:
    """Uploads newest first: everyone's, or one person's (``uploaded_by``), or these ``ids``."""
    statement = (
        select(Upload, IntakeRecord, Case.reference)
        .join(IntakeRecord, IntakeRecord.id == Upload.intake_id)
        .outerjoin(Case, Case.id == IntakeRecord.case_id)
        .order_by(Upload.uploaded_at.desc(), Upload.id.desc())
        .limit(limit)
    )
    if uploaded_by is not None:
        statement = statement.where(Upload.uploaded_by == uploaded_by)
    if ids is not None:
        statement = statement.where(Upload.id.in_(ids))
    return [
        UploadRow(u.id, u.intake_id, u.filename, u.uploaded_by, u.uploaded_at, u.new, r.state, r.outcome,
                  r.reason, r.last_error, reference)
        for u, r, reference in session.execute(statement)
    ]
