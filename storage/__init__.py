"""Storage: the database (SQLAlchemy models, Alembic migrations), the store of originals, and the
functions the pipeline uses to create and follow up cases.

Functions take a ``Session`` from ``Database.session()`` and never commit: the caller owns the
transaction, one per complaint. Errors are ``pipeline.errors.StorageError`` subclasses.
"""

from __future__ import annotations

from storage.audit import audit_trail, record_event
from storage.blobs import BlobStore, sha256_bytes
from storage.cases import (
    DEFAULT_THRESHOLD,
    REVIEW_MARGIN,
    TRANSITIONS,
    case_to_dict,
    create_case,
    find_case,
    find_case_by_sha256,
    get_case,
    list_cases,
    review_needed,
    set_status,
)
from storage.db import Database, create_database_engine, head_revision, migrate, open_database
from storage.errors import (
    CaseNotFoundError,
    DuplicateCaseError,
    InvalidTransitionError,
    ModelVersionNotFoundError,
    SchemaError,
    StorageError,
)
from storage.labels import (
    confirmed_labels,
    confirmed_training_rows,
    correct_label,
    list_corrections,
    mark_reviewed,
    relabel_case,
)
from storage.locks import acquire_lock, lock_holder, refresh_lock, release_lock
from storage.mailbox import get_mailbox_state, set_mailbox_state
from storage.messages import add_message, find_case_by_message_id, find_message
from storage.models import (
    CASE_STATUSES,
    AuditEvent,
    Case,
    CaseLabel,
    CaseMessage,
    Correction,
    Document,
    IgnoredMessage,
    Lock,
    MailboxState,
    ModelVersion,
    QuarantineRecord,
)
from storage.quarantine import (
    find_ignored,
    find_quarantine_by_sha256,
    list_quarantine,
    quarantine,
    record_ignored,
    resolve_quarantine,
)
from storage.references import format_reference, next_reference
from storage.registry import (
    current_model_version,
    find_model_version,
    get_model_version,
    list_model_versions,
    promote_model_version,
    register_model_version,
    retire_model_version,
    rollback_model_version,
)

__all__ = [
    "CASE_STATUSES",
    "DEFAULT_THRESHOLD",
    "REVIEW_MARGIN",
    "TRANSITIONS",
    "AuditEvent",
    "BlobStore",
    "Case",
    "CaseLabel",
    "CaseMessage",
    "CaseNotFoundError",
    "Correction",
    "Database",
    "Document",
    "DuplicateCaseError",
    "IgnoredMessage",
    "InvalidTransitionError",
    "Lock",
    "MailboxState",
    "ModelVersion",
    "ModelVersionNotFoundError",
    "QuarantineRecord",
    "SchemaError",
    "StorageError",
    "acquire_lock",
    "add_message",
    "audit_trail",
    "case_to_dict",
    "confirmed_labels",
    "confirmed_training_rows",
    "correct_label",
    "create_case",
    "create_database_engine",
    "current_model_version",
    "find_case",
    "find_case_by_message_id",
    "find_case_by_sha256",
    "find_ignored",
    "find_message",
    "find_model_version",
    "find_quarantine_by_sha256",
    "format_reference",
    "get_case",
    "get_mailbox_state",
    "get_model_version",
    "head_revision",
    "list_cases",
    "list_corrections",
    "list_model_versions",
    "list_quarantine",
    "lock_holder",
    "mark_reviewed",
    "migrate",
    "next_reference",
    "open_database",
    "promote_model_version",
    "quarantine",
    "record_event",
    "record_ignored",
    "refresh_lock",
    "register_model_version",
    "relabel_case",
    "release_lock",
    "resolve_quarantine",
    "retire_model_version",
    "review_needed",
    "rollback_model_version",
    "set_mailbox_state",
    "set_status",
    "sha256_bytes",
]
