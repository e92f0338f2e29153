"""Acknowledgment outbox (``ack_outbox``) and an index on ``cases.source_name`` (e-mail Message-IDs).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 13:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('ack_outbox',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('mailbox', sa.String(length=500), nullable=False),
    sa.Column('recipient', sa.Text(), nullable=False),
    sa.Column('recipient_name', sa.Text(), nullable=False),
    sa.Column('subject', sa.Text(), nullable=False),
    sa.Column('in_reply_to', sa.Text(), nullable=False),
    sa.Column('references', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('message_id', sa.String(length=998), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'],
                            name=op.f('fk_ack_outbox_case_id_cases'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ack_outbox')),
    sa.UniqueConstraint('case_id', name=op.f('uq_ack_outbox_case_id')),
    )
    op.create_index('ix_ack_outbox_mailbox', 'ack_outbox', ['mailbox'])
    op.create_index('ix_ack_outbox_sent_at', 'ack_outbox', ['sent_at'])
    op.create_index('ix_cases_source_name', 'cases', ['source_name'])


def downgrade() -> None:
    op.drop_index('ix_cases_source_name', table_name='cases')
    op.drop_index('ix_ack_outbox_sent_at', table_name='ack_outbox')
    op.drop_index('ix_ack_outbox_mailbox', table_name='ack_outbox')
    op.drop_table('ack_outbox')
