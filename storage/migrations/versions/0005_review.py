"""Review and follow-up: the handling department and assignee of a case, its review rank (the queue's
first sort key, indexed with the rest of the queue order), the intake's text kept when a reviewer
edits it, first-response due dates, and how a reply went out (e-mail, phone, letter) and who wrote it.

Existing cases get their department from their department label and a review rank computed from
their labels and OCR confidence with the default review rule (threshold 0.5, margin 0.1).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 08:00:00
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from types import SimpleNamespace

import sqlalchemy as sa
from alembic import op

from storage.followup import review_rank

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DateTime = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.add_column(sa.Column("department", sa.String(length=100), nullable=False, server_default=""))
        batch.add_column(sa.Column("assignee", sa.String(length=200), nullable=False, server_default=""))
        batch.add_column(sa.Column("review_rank", sa.Integer(), nullable=False, server_default="3"))
        batch.add_column(sa.Column("original_text", sa.Text(), nullable=True))
        batch.add_column(sa.Column("first_response_due_at", DateTime, nullable=True))
        batch.add_column(sa.Column("first_response_at", DateTime, nullable=True))
    # The server defaults stay: dropping them would make SQLite copy the table, and dropping the old
    # ``cases`` with foreign keys on deletes every label, document and message of every case (CASCADE).
    op.create_index(op.f("ix_cases_assignee"), "cases", ["assignee"])
    op.create_index(op.f("ix_cases_first_response_due_at"), "cases", ["first_response_due_at"])
    op.create_index("ix_cases_review_queue", "cases",
                    ["needs_review", "review_rank", "due_at", "created_at", "id"])
    op.create_index("ix_cases_department_status", "cases", ["department", "status"])
    with op.batch_alter_table("case_messages") as batch:
        batch.add_column(sa.Column("method", sa.String(length=10), nullable=False, server_default="email"))
        batch.add_column(sa.Column("author", sa.String(length=200), nullable=False, server_default=""))
    with op.batch_alter_table("case_messages") as batch:  # a copy of case_messages: nothing refers to it
        batch.create_check_constraint("method", "method IN ('email', 'phone', 'letter')")
    op.execute("UPDATE cases SET department = COALESCE((SELECT l.label FROM case_labels l "
               "WHERE l.case_id = cases.id AND l.label_set = 'department'), '')")
    _backfill_ranks()


def _backfill_ranks() -> None:
    bind = op.get_bind()
    ocr: dict[int, float | None] = dict(bind.execute(sa.text("SELECT id, ocr_confidence FROM cases")).all())
    labels: dict[int, list[SimpleNamespace]] = {}
    rows = bind.execute(sa.text("SELECT case_id, label_set, label, confidence, scores, confirmed_by "
                                "FROM case_labels")).all()
    for case_id, label_set, label, confidence, scores, confirmed_by in rows:
        if isinstance(scores, str):  # SQLite hands JSON back as text through a plain SELECT
            scores = json.loads(scores)
        labels.setdefault(case_id, []).append(SimpleNamespace(
            label_set=label_set, label=label, confidence=confidence, scores=scores or {},
            confirmed_by=confirmed_by))
    ranks: dict[int, list[int]] = {}
    for case_id, confidence in ocr.items():
        ranks.setdefault(review_rank(labels.get(case_id, []), confidence), []).append(case_id)
    for rank, ids in ranks.items():
        for start in range(0, len(ids), 500):
            bind.execute(sa.text("UPDATE cases SET review_rank = :rank WHERE id IN :ids")
                         .bindparams(sa.bindparam("ids", expanding=True)),
                         {"rank": rank, "ids": ids[start:start + 500]})


def downgrade() -> None:
    # On SQLite this copies ``cases`` (dropping columns): with foreign keys on, that deletes the cases'
    # labels, documents and messages. Downgrade a copy, or export first.
    with op.batch_alter_table("case_messages") as batch:
        batch.drop_constraint(op.f("ck_case_messages_method"), type_="check")
        batch.drop_column("author")
        batch.drop_column("method")
    op.drop_index("ix_cases_department_status", "cases")
    op.drop_index("ix_cases_review_queue", "cases")
    op.drop_index(op.f("ix_cases_first_response_due_at"), "cases")
    op.drop_index(op.f("ix_cases_assignee"), "cases")
    with op.batch_alter_table("cases") as batch:
        for column in ("first_response_at", "first_response_due_at", "original_text", "review_rank",
                       "assignee", "department"):
            batch.drop_column(column)
