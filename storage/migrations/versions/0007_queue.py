"""The task queue (``COMPLAINTDESK_QUEUE=postgres``): PgQueuer's tables, on PostgreSQL only.

PgQueuer's own SQL (``storage.queue.install_sql``, from the version locked in uv.lock), unqualified, so
that it lands in the first schema of the search_path like our own tables (the per-test schemas of
tests/db_fixtures.py stay apart). No ``pgq install`` step: ``complaintdesk init`` makes everything.
SQLite has no queue: the embedded default processes in-process, as before.

A later PgQueuer release that changes its tables comes with its own migration (PgQueuer's upgrade SQL).

Revision ID: 0007
Revises: 0004
Create Date: 2026-12-01 08:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

from storage.queue import install_sql, uninstall_sql

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(install_sql())


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(uninstall_sql())
