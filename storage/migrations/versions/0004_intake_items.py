"""Intake items (``intake_items``): every accepted input with its state, attempts, last error and outcome;
and ``cases.problems``: what could not be read of a case's input; one case per original only for
files and mail (typed-in complaints may repeat each other's words).

Existing cases, quarantine records, ignored messages and replies get a finished intake row each, so
that inputs stored before this revision are still recognised when they arrive again.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 05:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
DateTime = sa.DateTime(timezone=True)
ONE_CASE_PER_ORIGINAL = "channel IN ('slip', 'email')"

# (source table, channel, source name, outcome, case id, reason, message id, mailbox, uid, received at)
_BACKFILL = (
    ("cases", "channel", "source_name", "'created'", "id", "''", "''", "''", "NULL", "created_at"),
    ("quarantine", "channel", "source_name", "'quarantined'", "NULL", "reason", "''", "''", "NULL",
     "created_at"),
    ("ignored_messages", "'email'", "message_id", "'ignored'", "NULL", "reason", "message_id", "mailbox",
     "uid", "created_at"),
    ("case_messages", "'email'", "message_id", "'matched'", "case_id", "'reply added to the case'",
     "message_id", "''", "NULL", "received_at"),
)


def upgrade() -> None:
    # what could not be read of a case's input (a skipped or corrupt attachment), shown to reviewers
    with op.batch_alter_table("cases") as batch:
        batch.add_column(sa.Column("problems", JSON, nullable=False, server_default="[]"))
    with op.batch_alter_table("cases") as batch:
        batch.alter_column("problems", server_default=None)
        # typed-in complaints may repeat each other's words: one case per original only for files and mail
        batch.drop_constraint("uq_cases_sha256", type_="unique")
    op.create_index("uq_cases_sha256", "cases", ["sha256"], unique=True,
                    sqlite_where=sa.text(ONE_CASE_PER_ORIGINAL),
                    postgresql_where=sa.text(ONE_CASE_PER_ORIGINAL))
    op.create_table(
        "intake_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("source_name", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("media_type", sa.String(length=200), nullable=False,
                  server_default="application/octet-stream"),
        sa.Column("dedupe_key", sa.String(length=100), nullable=True),
        sa.Column("message_id", sa.String(length=998), nullable=False, server_default=""),
        sa.Column("mailbox", sa.String(length=500), nullable=False, server_default=""),
        sa.Column("uid", sa.Integer(), nullable=True),
        sa.Column("options", JSON, nullable=False, server_default="{}"),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("outcome", sa.String(length=20), nullable=False, server_default=""),
        sa.Column("case_id", sa.Integer(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False, server_default=""),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text(), nullable=False, server_default=""),
        sa.Column("received_at", DateTime, nullable=False),
        sa.Column("updated_at", DateTime, nullable=False),
        sa.CheckConstraint("state IN ('received', 'done')", name=op.f("ck_intake_items_state")),
        sa.CheckConstraint("outcome IN ('', 'created', 'matched', 'quarantined', 'ignored')",
                           name=op.f("ck_intake_items_outcome")),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name=op.f("fk_intake_items_case_id_cases"),
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_intake_items")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_intake_items_dedupe_key")),
    )
    op.create_index(op.f("ix_intake_items_sha256"), "intake_items", ["sha256"])
    op.create_index(op.f("ix_intake_items_message_id"), "intake_items", ["message_id"])
    op.create_index(op.f("ix_intake_items_state"), "intake_items", ["state"])
    op.create_index(op.f("ix_intake_items_case_id"), "intake_items", ["case_id"])
    op.create_index(op.f("ix_intake_items_received_at"), "intake_items", ["received_at"])
    for table, channel, name, outcome, case_id, reason, mid, mailbox, uid, at in _BACKFILL:
        key = "'sha256:' || s.sha256"
        op.execute(
            f"INSERT INTO intake_items (channel, source_name, sha256, dedupe_key, message_id, mailbox, uid, "
            f"state, outcome, case_id, reason, received_at, updated_at) "
            f"SELECT {channel}, s.{name}, s.sha256, {key}, {mid}, {mailbox}, {uid}, 'done', {outcome}, "
            f"{case_id}, {reason}, s.{at}, s.{at} FROM {table} s "
            f"WHERE s.sha256 <> '' AND s.id = (SELECT MIN(s2.id) FROM {table} s2 WHERE s2.sha256 = s.sha256) "
            f"AND NOT EXISTS "
            f"(SELECT 1 FROM intake_items i WHERE i.dedupe_key = 'sha256:' || s.sha256)"
        )


def downgrade() -> None:
    op.drop_table("intake_items")
    op.drop_index("uq_cases_sha256", "cases")
    with op.batch_alter_table("cases") as batch:
        batch.drop_column("problems")
        batch.create_unique_constraint("uq_cases_sha256", ["sha256"])
