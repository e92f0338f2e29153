"""Per-page OCR records on cases (``cases.pages``): page number, confidence, language, method, characters.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 14:15:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    # existing cases get an empty list: their per-page numbers were never kept
    with op.batch_alter_table("cases") as batch:
        batch.add_column(sa.Column("pages", JSON, nullable=False, server_default="[]"))
    with op.batch_alter_table("cases") as batch:
        batch.alter_column("pages", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.drop_column("pages")
