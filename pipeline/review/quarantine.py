"""Inputs that could not become cases: list, show and release them (supervisors), and save the original of
a case or of a quarantined input.

Releasing re-runs the quarantined input through the intake service (``pipeline.intake.process``) after
whatever made it fail was fixed (a language pack installed, a newer model, a setting changed): its
intake row is put back to ``received`` and processed like a fresh input. If it becomes a case, the
quarantine record is resolved; if it fails again it stays quarantined with the new reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import storage
from pipeline.context import RunContext
from pipeline.core.actor import Actor
from pipeline.core.errors import InputError, UsageError
from pipeline.core.model import Outcome, OutcomeKind
from pipeline.review.access import require
from pipeline.review.desk import Desk


@dataclass(frozen=True)
class OriginalFile:
    """A stored original: its name, type and size, and where its bytes are (read-only, in the blob store)."""

    filename: str
    media_type: str
    sha256: str
    size: int
    path: Path

    def to_json(self) -> dict[str, Any]:
        return {"filename": self.filename, "media_type": self.media_type, "sha256": self.sha256,
                "size": self.size, "path": str(self.path)}


def _record(record: storage.QuarantineRecord, row: storage.IntakeRecord | None) -> dict[str, Any]:
    return {"id": record.id, "channel": record.channel, "source": record.source_name,
            "sha256": record.sha256, "reason": record.reason, "error_type": record.error_type,
            "created_at": record.created_at.isoformat(),
            "resolved_at": record.resolved_at.isoformat() if record.resolved_at else None,
            "intake_id": row.id if row is not None else None,
            "media_type": row.media_type if row is not None else "",
            "size": row.size if row is not None else None}


def list_quarantine(desk: Desk, actor: Actor, *, include_resolved: bool = False) -> list[dict[str, Any]]:
    """Quarantined inputs, newest first (by default only those not resolved yet).

    Raises:
        AccessDeniedError: the actor is not a supervisor.
    """
    require(actor, "quarantine")
    with desk.db.reader() as session:
        return [_record(r, None) for r in storage.list_quarantine(session, include_resolved=include_resolved)]


def show_quarantine(desk: Desk, actor: Actor, record_id: int) -> dict[str, Any]:
    """One quarantine record with its intake row (media type, size) and the original's place.

    Raises:
        QuarantineNotFoundError, AccessDeniedError.
    """
    require(actor, "quarantine")
    with desk.db.reader() as session:
        record = storage.get_quarantine(session, record_id)
        return _record(record, storage.quarantined_intake(session, record)) | {
            "stored": desk.blobs.exists(record.sha256)}


def quarantine_original(desk: Desk, actor: Actor, record_id: int) -> OriginalFile:
    """The bytes of a quarantined input, to save or inspect.

    Raises:
        QuarantineNotFoundError, AccessDeniedError.
        InputError: the original is not in the blob store (``complaintdesk check`` says more).
    """
    data = show_quarantine(desk, actor, record_id)
    return _original(desk, Path(data["source"]).name or f"quarantine-{record_id}",
                     data["media_type"] or "application/octet-stream", data["sha256"])


def release(ctx: RunContext, actor: Actor, record_id: int) -> Outcome:
    """Run a quarantined input through the intake service again; resolves the record if it became a case.

    Returns the new outcome (``created``/``matched``: resolved; ``quarantined``: still failing, with
    the new reason).

    Raises:
        QuarantineNotFoundError, AccessDeniedError.
        UsageError: the record is resolved already, or it has no intake row to re-run (inputs older
            than intake rows: submit the file again).
    """
    require(actor, "quarantine")
    from pipeline.intake import process

    with ctx.db.session() as session:
        record = storage.get_quarantine(session, record_id)
        if record.resolved_at is not None:
            raise UsageError(f"quarantine record {record_id} was resolved already")
        row = storage.quarantined_intake(session, record)
        if row is None:
            raise UsageError(f"quarantine record {record_id} has no intake row to re-run: "
                             "save it with `quarantine show --output` and submit it again")
        storage.reopen_intake(session, row, actor=actor.name)
        intake_id = row.id
    outcome = process(ctx, intake_id)
    if outcome.kind in (OutcomeKind.created, OutcomeKind.matched, OutcomeKind.ignored):
        with ctx.db.session() as session:
            record = storage.get_quarantine(session, record_id)
            storage.resolve_quarantine(session, record, actor=actor.name,
                                       note=f"released: {outcome.kind} {outcome.reference or ''}".strip())
    return outcome


def case_original(desk: Desk, actor: Actor, reference: str, *, sha256: str | None = None) -> OriginalFile:
    """The original of a case (the scan, the e-mail as received) or, with ``sha256``, one of its
    documents (an attachment).

    Raises:
        CaseNotFoundError, AccessDeniedError.
        UsageError: the case has no document with that SHA-256.
        InputError: the bytes are missing from the blob store.
    """
    with desk.db.reader() as session:
        case = storage.get_case(session, reference)
        require(actor, "read", case, reference=case.reference)
        docs = [d for d in case.documents if (d.sha256 == sha256 if sha256 else d.role == "original")]
        if not docs:
            raise UsageError(f"case {case.reference} has no document {sha256 or '(original)'}")
        doc = docs[0]
        return _original(desk, doc.filename or case.reference, doc.media_type, doc.sha256)


def _original(desk: Desk, filename: str, media_type: str, sha256: str) -> OriginalFile:
    if not desk.blobs.exists(sha256):
        raise InputError(f"the original {sha256} of {filename} is missing from the store of originals; "
                         "run `complaintdesk check`")
    path = desk.blobs.path(sha256)
    return OriginalFile(filename, media_type, sha256, path.stat().st_size, path)
