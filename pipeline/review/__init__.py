"""The review service: what reviewers, department staff and supervisors do, for the web app
(``review/``) and the ``cases``/``quarantine`` commands alike.

    desk.py        Desk (settings, database, originals, label sets) and open_desk(settings)
    access.py      can(actor, action, case): roles and departments; require() raises AccessDeniedError
    cases.py       get_case, correct, accept, undo, edit_text, set_status, assign, add_note, history,
                   review_queue (keyset pages), overdue, list_cases
    replies.py     reply templates, replies by e-mail (SMTP, threaded) or recorded phone/letter replies
    quarantine.py  list, show, release (re-run through the intake service after a fix), save originals
    jobs.py        the task queue: counts, failed jobs with their errors, retry (supervisors)
    report.py      what the corrections did: macro-F1 before/after a retrain, the most corrected labels
    uploads.py     scans uploaded in the web app: accepted through the intake service, listed per uploader

Every function takes the ``Desk`` and an ``pipeline.core.actor.Actor`` and checks ``can`` first.
"""

from __future__ import annotations

from pipeline.core.actor import Actor, Role
from pipeline.review.access import ACTIONS, can, can_assign_to, department_scope, require
from pipeline.review.cases import (
    HistoryEntry,
    QueuePage,
    accept,
    add_note,
    assign,
    case_view,
    correct,
    edit_text,
    get_case,
    history,
    list_cases,
    overdue,
    review_queue,
    set_status,
    undo,
)
from pipeline.review.desk import Desk, open_desk
from pipeline.review.jobs import JobsView, jobs_view, retry_jobs
from pipeline.review.quarantine import (
    OriginalFile,
    case_original,
    list_quarantine,
    quarantine_original,
    release,
    show_quarantine,
)
from pipeline.review.replies import LANGUAGES, Reply, ReplyError, can_email, draft, reply
from pipeline.review.report import CorrectionsReport, corrections_report, record_retrain
from pipeline.review.uploads import UPLOAD_STATUSES, list_uploads, upload

__all__ = [
    "ACTIONS",
    "UPLOAD_STATUSES",
    "LANGUAGES",
    "Actor",
    "CorrectionsReport",
    "Desk",
    "HistoryEntry",
    "JobsView",
    "OriginalFile",
    "QueuePage",
    "Reply",
    "ReplyError",
    "Role",
    "accept",
    "add_note",
    "assign",
    "can",
    "can_assign_to",
    "can_email",
    "case_original",
    "case_view",
    "correct",
    "corrections_report",
    "draft",
    "list_quarantine",
    "list_uploads",
    "quarantine_original",
    "record_retrain",
    "release",
    "retry_jobs",
    "reply",
    "show_quarantine",
    "undo",
    "upload",
    "department_scope",
    "edit_text",
    "get_case",
    "history",
    "jobs_view",
    "list_cases",
    "open_desk",
    "overdue",
    "require",
    "review_queue",
    "set_status",
]
