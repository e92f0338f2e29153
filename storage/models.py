"""The database tables, as SQLAlchemy 2 typed ORM classes, portable across SQLite and PostgreSQL.

Timestamps are timezone-aware UTC in Python on both databases (``UTCDateTime``); JSON columns use
the ``JSON`` type (JSONB on PostgreSQL). Every schema change goes through an Alembic migration in
``storage/migrations/versions`` and ``tests/test_storage_migrations.py`` checks the two agree.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

CASE_STATUSES = ("new", "triaged", "in_progress", "waiting_citizen", "resolved", "closed", "rejected")
DOCUMENT_ROLES = ("original", "attachment")
MESSAGE_DIRECTIONS = ("in", "out")
MODEL_STATUSES = ("candidate", "promoted", "retired")
REPLY_METHODS = ("email", "phone", "letter")

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored as UTC and always read back timezone-aware (SQLite keeps no zone).

    Naive datetimes are taken to be UTC.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        # a naive datetime (e.g. an e-mail Date with "-0000") is taken to be UTC already
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


#: JSON on SQLite, JSONB on PostgreSQL (comparable, so DISTINCT and indexes work)
JSONType = JSON().with_variant(JSONB(), "postgresql")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSONType, list[Any]: JSONType}


_ONE_CASE_PER_ORIGINAL = "channel IN ('slip', 'email')"


class Case(Base):
    """One complaint, from intake to closing."""

    __tablename__ = "cases"
    __table_args__ = (
        CheckConstraint(_in("status", CASE_STATUSES), name="status"),
        # One case per original file or message; typed-in complaints are exempt, since two callers
        # may report the same broken lift in the same words (the intake row keeps them apart).
        # A batch scan holding several slips is one original with one case per slip (``part``).
        Index("uq_cases_sha256", "sha256", "part", unique=True, sqlite_where=text(_ONE_CASE_PER_ORIGINAL),
              postgresql_where=text(_ONE_CASE_PER_ORIGINAL)),
        # `cases list` pages newest first by (created_at, id) with keyset pagination; each filter that
        # narrows a large table has its own index in that order, so a page is an index range scan
        Index("ix_cases_created_at_id", "created_at", "id"),
        Index("ix_cases_status_created_at_id", "status", "created_at", "id"),
        Index("ix_cases_needs_review_created_at_id", "needs_review", "created_at", "id"),
        Index("ix_cases_channel_created_at_id", "channel", "created_at", "id"),
        # the review queue: one index walk in queue order (``pipeline.review.queue``)
        Index("ix_cases_review_queue", "needs_review", "review_rank", "due_at", "created_at", "id"),
        # a department's cases by status (department users' lists)
        Index("ix_cases_department_status", "department", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    reference: Mapped[str] = mapped_column(String(20), unique=True)  # "2026-000123"
    channel: Mapped[str] = mapped_column(String(20))
    source_name: Mapped[str] = mapped_column(Text, default="", index=True)  # e-mail: the Message-ID
    sha256: Mapped[str] = mapped_column(String(64))  # of the original bytes
    language: Mapped[str] = mapped_column(String(16), default="")
    text: Mapped[str] = mapped_column(Text, default="")
    subject: Mapped[str] = mapped_column(Text, default="")
    sender: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(20), default="new")
    #: the department handling the case: the department label at intake, then corrections and assignment
    department: Mapped[str] = mapped_column(String(100), default="")
    #: the person of that department the case is assigned to ("" while nobody is)
    assignee: Mapped[str] = mapped_column(String(200), default="", index=True)
    #: the review queue's first sort key: 3 minus the number of reasons a case needs a person
    #: (a label below its threshold, a close runner-up, a low OCR confidence), so 0 comes first;
    #: stored and indexed so the queue pages fast on 100,000 cases (``storage.review_rank``)
    review_rank: Mapped[int] = mapped_column(Integer, default=3)
    #: the text as the intake read it, kept when a reviewer edits ``text`` (None while never edited)
    original_text: Mapped[str | None] = mapped_column(Text)
    model_version: Mapped[str] = mapped_column(String(100), default="")
    ocr_confidence: Mapped[float | None] = mapped_column(Float)
    needs_review: Mapped[bool] = mapped_column(default=False)
    fields: Mapped[list[Any]] = mapped_column(default=list)  # [{name, value, start, end}]
    #: what could not be read of the input (an attachment skipped or corrupt, a truncated part), for reviewers
    problems: Mapped[list[Any]] = mapped_column(default=list)
    # one entry per page of the original: {number, confidence, language, method, chars}, so a reviewer
    # sees which page of a multi-page scan was hard to read
    pages: Mapped[list[Any]] = mapped_column(default=list)
    #: a slip parsed as a form: its printed number (the same paper scanned again matches it), the
    #: template it matched, which slip of its file it is, and all the OCR read (print included)
    slip_number: Mapped[str] = mapped_column(String(40), default="", index=True)
    form: Mapped[str] = mapped_column(String(100), default="")
    part: Mapped[int] = mapped_column(Integer, default=0)
    ocr_text: Mapped[str] = mapped_column(Text, default="")
    due_at: Mapped[datetime | None] = mapped_column(index=True)  # resolution due (the department's SLA)
    #: the first answer to the citizen is due (the department's SLA); None: no first-response SLA
    first_response_due_at: Mapped[datetime | None] = mapped_column(index=True)
    #: when the first reply (e-mail, phone or letter) was recorded
    first_response_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    closed_at: Mapped[datetime | None]

    labels: Mapped[list[CaseLabel]] = relationship(
        back_populates="case", cascade="all, delete-orphan", lazy="selectin", order_by="CaseLabel.label_set"
    )
    documents: Mapped[list[Document]] = relationship(
        back_populates="case", cascade="all, delete-orphan", lazy="selectin", order_by="Document.id"
    )
    messages: Mapped[list[CaseMessage]] = relationship(
        back_populates="case", cascade="all, delete-orphan", order_by="CaseMessage.id"
    )

    def label(self, label_set: str) -> CaseLabel | None:
        return next((lab for lab in self.labels if lab.label_set == label_set), None)

    def __repr__(self) -> str:
        return f"Case({self.reference!r}, status={self.status!r})"


class CaseSearch(Base):
    """A case's search terms (``storage.search``), indexed by FTS5 on SQLite and GIN on PostgreSQL.

    A table of its own, so that listing cases never reads the terms, and the full-text index objects
    (created by migration 0008, not by the ORM) hang off one small table.
    """

    __tablename__ = "case_search"

    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), primary_key=True,
                                         autoincrement=False)
    terms: Mapped[str] = mapped_column(Text, default="")


class CaseLabel(Base):
    """The label of one label set for a case; ``confirmed_by`` is set once a reviewer has checked it."""

    __tablename__ = "case_labels"
    __table_args__ = (UniqueConstraint("case_id", "label_set"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    label_set: Mapped[str] = mapped_column(String(50))
    label: Mapped[str] = mapped_column(String(100), index=True)
    confidence: Mapped[float] = mapped_column(Float)
    scores: Mapped[dict[str, Any]] = mapped_column(default=dict)
    model_version: Mapped[str] = mapped_column(String(100), default="")
    confirmed_by: Mapped[str | None] = mapped_column(String(200))
    confirmed_at: Mapped[datetime | None]

    case: Mapped[Case] = relationship(back_populates="labels")


class Document(Base):
    """A file kept with a case (its bytes live in the BlobStore under ``sha256``)."""

    __tablename__ = "documents"
    __table_args__ = (
        UniqueConstraint("case_id", "sha256"),
        CheckConstraint(_in("role", DOCUMENT_ROLES), name="role"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    filename: Mapped[str] = mapped_column(Text, default="")
    media_type: Mapped[str] = mapped_column(String(200), default="application/octet-stream")
    size: Mapped[int] = mapped_column(Integer)
    role: Mapped[str] = mapped_column(String(20), default="original")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    case: Mapped[Case] = relationship(back_populates="documents")


class CaseMessage(Base):
    """An e-mail that belongs to a case, in or out, for threading replies onto it."""

    __tablename__ = "case_messages"
    __table_args__ = (
        CheckConstraint(_in("direction", MESSAGE_DIRECTIONS), name="direction"),
        CheckConstraint(_in("method", REPLY_METHODS), name="method"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    message_id: Mapped[str] = mapped_column(String(998), default="", index=True)
    in_reply_to: Mapped[str] = mapped_column(Text, default="")
    references: Mapped[str] = mapped_column(Text, default="")  # Message-IDs separated by spaces
    direction: Mapped[str] = mapped_column(String(3), default="in")
    #: how an outgoing reply went: by e-mail, or recorded after a phone call or a letter
    method: Mapped[str] = mapped_column(String(10), default="email")
    #: who wrote an outgoing reply ("" for the citizen's messages)
    author: Mapped[str] = mapped_column(String(200), default="")
    sender: Mapped[str] = mapped_column(Text, default="")
    subject: Mapped[str] = mapped_column(Text, default="")
    text: Mapped[str] = mapped_column(Text, default="")
    sha256: Mapped[str] = mapped_column(String(64), default="", index=True)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)

    case: Mapped[Case] = relationship(back_populates="messages")


class QuarantineRecord(Base):
    """An input that could not become a case, with the reason; its bytes are kept in the BlobStore."""

    __tablename__ = "quarantine"

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(20))
    source_name: Mapped[str] = mapped_column(Text, default="")
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    reason: Mapped[str] = mapped_column(Text)
    error_type: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    resolved_at: Mapped[datetime | None]


class IgnoredMessage(Base):
    """E-mail noise (auto-replies, bounces, bulk mail) recorded so it is never looked at again."""

    __tablename__ = "ignored_messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[str] = mapped_column(String(998), default="", index=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    reason: Mapped[str] = mapped_column(Text)
    mailbox: Mapped[str] = mapped_column(String(500), default="")
    uid: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AuditEvent(Base):
    """Who did what to which case, and when."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id", ondelete="SET NULL"), index=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(50))
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)

    case: Mapped[Case | None] = relationship()


class Correction(Base):
    """A reviewer's verdict on one label of a case: training data for the next model."""

    __tablename__ = "corrections"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    label_set: Mapped[str] = mapped_column(String(50))
    old_label: Mapped[str | None] = mapped_column(String(100))
    new_label: Mapped[str] = mapped_column(String(100))
    reviewer: Mapped[str] = mapped_column(String(200))
    model_version: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)

    case: Mapped[Case] = relationship()


class MailboxState(Base):
    """How far a poller got in one IMAP folder: UIDVALIDITY and the last UID fully stored."""

    __tablename__ = "mailbox_state"

    id: Mapped[int] = mapped_column(primary_key=True)
    mailbox: Mapped[str] = mapped_column(String(500), unique=True)  # "user@host/INBOX"
    uidvalidity: Mapped[int] = mapped_column(Integer)
    last_uid: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Lock(Base):
    """A named lease held by one process (e.g. the poller of a mailbox), kept alive by heartbeats."""

    __tablename__ = "locks"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(500), unique=True)
    holder: Mapped[str] = mapped_column(String(500))
    acquired_at: Mapped[datetime] = mapped_column(default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(default=utcnow)


class PendingAck(Base):
    """An acknowledgment to send for a new case (the outbox): written in the case's transaction,
    sent after the commit, then marked sent. One per case, so it is never sent twice."""

    __tablename__ = "ack_outbox"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), unique=True)
    mailbox: Mapped[str] = mapped_column(String(500), default="", index=True)  # whose poller sends it
    recipient: Mapped[str] = mapped_column(Text)
    recipient_name: Mapped[str] = mapped_column(Text, default="")
    subject: Mapped[str] = mapped_column(Text, default="")  # of the citizen's message
    in_reply_to: Mapped[str] = mapped_column(Text, default="")  # the citizen's Message-ID
    references: Mapped[str] = mapped_column(Text, default="")  # Message-IDs separated by spaces
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str] = mapped_column(Text, default="")
    sent_at: Mapped[datetime | None] = mapped_column(index=True)
    message_id: Mapped[str] = mapped_column(String(998), default="")  # of the acknowledgment, once sent

    case: Mapped[Case] = relationship()


class ModelVersion(Base):
    """A trained classifier on disk and whether it is the one in use."""

    __tablename__ = "model_versions"
    __table_args__ = (CheckConstraint(_in("status", MODEL_STATUSES), name="status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[str] = mapped_column(String(100), unique=True)
    path: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    status: Mapped[str] = mapped_column(String(20), default="candidate")
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    promoted_at: Mapped[datetime | None]


class ReferenceCounter(Base):
    """The last case number handed out in a year."""

    __tablename__ = "reference_counters"

    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last_value: Mapped[int] = mapped_column(Integer, default=0)


INTAKE_STATES = ("received", "done")
INTAKE_OUTCOMES = ("", "created", "matched", "quarantined", "ignored")


class IntakeRecord(Base):
    """One input as it was accepted, before and after processing: the item's state lives here, not in a log.

    ``accept`` writes it (state ``received``) with the original already in the blob store;
    ``process`` finishes it (state ``done``, with its outcome and case) in its final transaction.
    ``dedupe_key`` recognises an input seen before (a re-scanned file, a re-fetched e-mail); typed-in
    complaints have none, since two callers may report the same thing in the same words.
    """

    __tablename__ = "intake_items"
    __table_args__ = (
        CheckConstraint(_in("state", INTAKE_STATES), name="state"),
        CheckConstraint(_in("outcome", INTAKE_OUTCOMES), name="outcome"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(20))
    source_name: Mapped[str] = mapped_column(Text, default="")
    sha256: Mapped[str] = mapped_column(String(64), index=True)  # of the original bytes, in the blob store
    size: Mapped[int] = mapped_column(Integer, default=0)
    media_type: Mapped[str] = mapped_column(String(200), default="application/octet-stream")
    dedupe_key: Mapped[str | None] = mapped_column(String(100), unique=True)
    message_id: Mapped[str] = mapped_column(String(998), default="", index=True)
    mailbox: Mapped[str] = mapped_column(String(500), default="")
    uid: Mapped[int | None] = mapped_column(Integer)
    options: Mapped[dict[str, Any]] = mapped_column(default=dict)  # per-channel: acknowledge, outbox, ...
    state: Mapped[str] = mapped_column(String(20), default="received", index=True)
    outcome: Mapped[str] = mapped_column(String(20), default="")
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id", ondelete="SET NULL"), index=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str] = mapped_column(Text, default="")
    received_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Upload(Base):
    """One file a person uploaded in the web app, and the intake row it was accepted as.

    A row per upload, not a column of the intake row: the same file uploaded again (by the same
    person or another) is recognised as the same intake row, and is still an upload its uploader
    sees in their list, as matched. ``new`` says whether this upload created the intake row.
    ``filename`` is the name the browser sent, kept for people only: nothing is ever stored under it.
    """

    __tablename__ = "uploads"
    __table_args__ = (Index("ix_uploads_uploaded_by", "uploaded_by", "uploaded_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    intake_id: Mapped[int] = mapped_column(ForeignKey("intake_items.id", ondelete="CASCADE"), index=True)
    uploaded_by: Mapped[str] = mapped_column(String(200))
    filename: Mapped[str] = mapped_column(Text, default="")
    new: Mapped[bool] = mapped_column(default=True)
    uploaded_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


USER_ROLES = ("scanner", "reviewer", "department", "supervisor")


class User(Base):
    """A person who signs in to the web app: an Argon2 password hash, a role and, for department staff,
    their department (a department label of ``labels.toml``)."""

    __tablename__ = "users"
    __table_args__ = (CheckConstraint(_in("role", USER_ROLES), name="role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    password_hash: Mapped[str] = mapped_column(Text)
    role: Mapped[str] = mapped_column(String(20))
    department: Mapped[str] = mapped_column(String(100), default="")
    #: the interface language the user chose ("" until they choose: the browser's Accept-Language decides)
    language: Mapped[str] = mapped_column(String(16), default="")
    disabled: Mapped[bool] = mapped_column(default=False)
    #: failed sign-ins since the last good one; each one past a few makes the next attempt wait longer
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    last_failed_at: Mapped[datetime | None]
    last_login_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class WebSession(Base):
    """A signed-in browser: only the SHA-256 of its cookie's token is kept, with the form (CSRF) token."""

    __tablename__ = "web_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)

    user: Mapped[User] = relationship(lazy="joined")


class FormLine(Base):
    """A line of text seen on scanned pages, and on how many: print of forms nobody described.

    ``key`` is the line normalized (lower-case letters, digits and Han characters; ``digest`` its
    SHA-256, unique); a new reading of a known line (OCR noise) counts for that line. A line on many
    pages is a form's title, label or instruction, left out of the text that gets classified. Lines of
    what citizens wrote are counted too (once each): the same words are in their cases' text.
    """

    __tablename__ = "form_lines"

    id: Mapped[int] = mapped_column(primary_key=True)
    digest: Mapped[str] = mapped_column(String(64), unique=True)  # SHA-256 of the normalized line
    key: Mapped[str] = mapped_column(String(200), default="")  # the normalized line
    pages: Mapped[int] = mapped_column(Integer, default=0, index=True)
    first_seen: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(default=utcnow, index=True)
