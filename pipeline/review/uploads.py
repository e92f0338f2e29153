"""Scans uploaded in the web app: accept them through the intake service, and list them with what
became of each (scanners see their own uploads, supervisors everyone's).

Uploading is ``pipeline.intake.accept_upload`` for each file, the same accept as ``complaintdesk
scan`` (recognised by its SHA-256, its original in the blob store, its intake row and, with
``COMPLAINTDESK_QUEUE=postgres``, its job), plus who uploaded it. Processing is the caller's: the web
app runs ``pipeline.intake.process_many`` off its event loop (``review.processing``), or the workers do.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, BinaryIO

import storage
from pipeline.context import RunContext
from pipeline.core.actor import Actor, Role
from pipeline.intake import Accepted, accept_upload
from pipeline.review.access import require
from pipeline.review.desk import Desk

#: what the upload list says of an upload: its intake row still waits, became a case, was found to be an
#: existing case (the same file, or a slip number already stored), was quarantined, or was ignored
UPLOAD_STATUSES = ("pending", "created", "matched", "quarantined", "ignored")


def upload(ctx: RunContext, actor: Actor, files: Iterable[tuple[str, BinaryIO]]) -> list[Accepted]:
    """Accept each ``(filename, stream)`` as a scanned slip uploaded by ``actor``; one ``Accepted`` each.

    Raises:
        AccessDeniedError: the actor may not upload.
        StorageError: the database or the blob store failed (the files accepted before stay accepted).
    """
    require(actor, "upload")
    return [accept_upload(ctx, f, filename, uploaded_by=actor.name) for filename, f in files]


def list_uploads(desk: Desk, actor: Actor, *, limit: int = 200) -> list[dict[str, Any]]:
    """The actor's own uploads (a supervisor: everyone's), newest first, each with its ``status``
    (one of ``UPLOAD_STATUSES``), the case ``reference`` and the ``reason`` it was quarantined.

    Raises:
        AccessDeniedError: the actor may not upload.
    """
    require(actor, "upload")
    mine = None if actor.role is Role.supervisor else actor.name
    with desk.db.reader() as session:
        return [upload_view(row) for row in storage.list_uploads(session, uploaded_by=mine, limit=limit)]


def upload_view(row: storage.UploadRow) -> dict[str, Any]:
    """An upload as the list shows it."""
    if row.state != "done":
        status = "pending"
    elif row.outcome == "created" and not row.new:
        status = "matched"  # the same file was uploaded or scanned before: its case, not a new one
    else:
        status = row.outcome or "quarantined"
    return {"id": row.id, "filename": row.filename, "uploaded_by": row.uploaded_by,
            "uploaded_at": row.uploaded_at.isoformat(), "status": status, "reference": row.reference,
            "reason": row.reason if status in ("quarantined", "ignored") else row.last_error}
