"""Slips parsed as forms: slip number, template, part and full OCR text on cases; recurring form lines.

A batch scan holding several slips is one original with one case per slip, so the one-case-per-
original index becomes one case per (original, part).

Revision ID: 0009
Revises: 0004
Create Date: 2026-12-01 08:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_WHERE = sa.text("channel IN ('slip', 'email')")  # one case per original (per part)


def upgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.add_column(sa.Column("slip_number", sa.String(40), nullable=False, server_default=""))
        batch.add_column(sa.Column("form", sa.String(100), nullable=False, server_default=""))
        batch.add_column(sa.Column("part", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("ocr_text", sa.Text(), nullable=False, server_default=""))
    with op.batch_alter_table("cases") as batch:
        for column in ("slip_number", "form", "part", "ocr_text"):
            batch.alter_column(column, server_default=None)
    op.create_index("ix_cases_slip_number", "cases", ["slip_number"])
    op.drop_index("uq_cases_sha256", table_name="cases")
    op.create_index("uq_cases_sha256", "cases", ["sha256", "part"], unique=True,
                    sqlite_where=_WHERE, postgresql_where=_WHERE)
    op.create_table(
        "form_lines",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("pages", sa.Integer(), nullable=False),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_form_lines")),
        sa.UniqueConstraint("digest", name=op.f("uq_form_lines_digest")),
    )
    op.create_index("ix_form_lines_pages", "form_lines", ["pages"])
    op.create_index("ix_form_lines_last_seen", "form_lines", ["last_seen"])


def downgrade() -> None:
    op.drop_table("form_lines")
    op.drop_index("uq_cases_sha256", table_name="cases")
    op.create_index("uq_cases_sha256", "cases", ["sha256"], unique=True,
                    sqlite_where=_WHERE, postgresql_where=_WHERE)
    op.drop_index("ix_cases_slip_number", table_name="cases")
    with op.batch_alter_table("cases") as batch:
        for column in ("ocr_text", "part", "form", "slip_number"):
            batch.drop_column(column)
