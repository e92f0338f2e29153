"""Full-text search (``case_search`` with an FTS5 table on SQLite, a GIN index on PostgreSQL) and the
indexes of ``cases list``'s keyset pagination ((filter,) created_at, id, newest first).

Existing cases are indexed here: their terms are computed in Python by ``storage.search.case_terms``
(the same function that indexes new cases), a thousand cases at a time.

Revision ID: 0008
Revises: 0004
Create Date: 2026-12-01 08:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from storage.search import case_terms

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 1000
#: (new composite index, columns, the single-column index it replaces or None)
_LIST_INDEXES = (
    ("ix_cases_created_at_id", ["created_at", "id"], "ix_cases_created_at"),
    ("ix_cases_status_created_at_id", ["status", "created_at", "id"], "ix_cases_status"),
    ("ix_cases_needs_review_created_at_id", ["needs_review", "created_at", "id"], "ix_cases_needs_review"),
    ("ix_cases_channel_created_at_id", ["channel", "created_at", "id"], None),
)
# SQLite: the FTS5 table reads its text from case_search (external content); the triggers are
# the ones the FTS5 documentation gives for keeping such a table in step
_DELETE_OLD = ("INSERT INTO case_search_fts(case_search_fts, rowid, terms) "
               "VALUES ('delete', old.case_id, old.terms); ")
_SQLITE_FTS = (
    "CREATE VIRTUAL TABLE case_search_fts USING fts5("
    "terms, content='case_search', content_rowid='case_id', tokenize='unicode61 remove_diacritics 0')",
    "CREATE TRIGGER case_search_ai AFTER INSERT ON case_search BEGIN "
    "INSERT INTO case_search_fts(rowid, terms) VALUES (new.case_id, new.terms); END",
    "CREATE TRIGGER case_search_ad AFTER DELETE ON case_search BEGIN " + _DELETE_OLD + "END",
    "CREATE TRIGGER case_search_au AFTER UPDATE ON case_search BEGIN " + _DELETE_OLD +
    "INSERT INTO case_search_fts(rowid, terms) VALUES (new.case_id, new.terms); END",
)
# PostgreSQL: a tsvector of our own terms, no parser or dictionary (so no extension, no config)
_POSTGRES_GIN = (
    "CREATE INDEX ix_case_search_terms_gin ON case_search "
    "USING gin (array_to_tsvector(string_to_array(terms, ' ')))"
)


def upgrade() -> None:
    for name, columns, replaced in _LIST_INDEXES:
        op.create_index(name, "cases", columns)
        if replaced:
            op.drop_index(replaced, table_name="cases")
    op.create_table(
        "case_search",
        sa.Column("case_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("terms", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name="fk_case_search_case_id_cases",
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("case_id", name="pk_case_search"),
    )
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        for statement in _SQLITE_FTS:
            op.execute(statement)
    _index_existing_cases(bind)
    if bind.dialect.name == "postgresql":  # built once over the backfilled rows: faster than row by row
        op.execute(_POSTGRES_GIN)


def _index_existing_cases(bind: sa.Connection) -> None:
    cases = sa.table("cases", sa.column("id", sa.Integer), sa.column("text", sa.Text),
                     sa.column("subject", sa.Text), sa.column("sender", sa.Text))
    search = sa.table("case_search", sa.column("case_id", sa.Integer), sa.column("terms", sa.Text))
    last = 0
    while True:
        rows = bind.execute(
            sa.select(cases.c.id, cases.c.text, cases.c.subject, cases.c.sender)
            .where(cases.c.id > last).order_by(cases.c.id).limit(BATCH)
        ).all()
        if not rows:
            return
        bind.execute(sa.insert(search), [
            {"case_id": r.id, "terms": case_terms(r.text or "", r.subject or "", r.sender or "")}
            for r in rows
        ])
        last = rows[-1].id


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        for trigger in ("case_search_ai", "case_search_ad", "case_search_au"):
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        op.execute("DROP TABLE IF EXISTS case_search_fts")
    op.drop_table("case_search")  # the GIN index goes with it
    for name, columns, replaced in reversed(_LIST_INDEXES):
        if replaced:
            op.create_index(replaced, "cases", columns[:1])
        op.drop_index(name, table_name="cases")
