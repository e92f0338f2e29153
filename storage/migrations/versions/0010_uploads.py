"""Uploads through the web app: who uploaded which file, as which intake row (``uploads``).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 08:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DateTime = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "uploads",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("intake_id", sa.Integer(), nullable=False),
        sa.Column("uploaded_by", sa.String(length=200), nullable=False),
        sa.Column("filename", sa.Text(), nullable=False),
        sa.Column("new", sa.Boolean(), nullable=False),
        sa.Column("uploaded_at", DateTime, nullable=False),
        sa.ForeignKeyConstraint(["intake_id"], ["intake_items.id"],
                                name=op.f("fk_uploads_intake_id_intake_items"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_uploads")),
    )
    op.create_index(op.f("ix_uploads_intake_id"), "uploads", ["intake_id"])
    op.create_index(op.f("ix_uploads_uploaded_at"), "uploads", ["uploaded_at"])
    op.create_index("ix_uploads_uploaded_by", "uploads", ["uploaded_by", "uploaded_at"])


def downgrade() -> None:
    op.drop_table("uploads")
