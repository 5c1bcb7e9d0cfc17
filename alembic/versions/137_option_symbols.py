"""Room for option symbols: trade_executions.ticker / original_ticker String(10) -> String(32).

OCC option symbols ("QQQ250616C00101000") are 18+ characters; the seed's String(10) refused every
option trade in the journal.

Revision ID: 137_option_symbols
Revises: 136_executor_journal
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "137_option_symbols"
down_revision: str | Sequence[str] | None = "136_executor_journal"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("trade_executions") as batch:
        batch.alter_column("ticker", existing_type=sa.String(length=10), type_=sa.String(length=32),
                           existing_nullable=False)
        batch.alter_column("original_ticker", existing_type=sa.String(length=10), type_=sa.String(length=32),
                           existing_nullable=True)


def downgrade() -> None:
    # fails (PostgreSQL) / truncates nothing silently (SQLite keeps the text) if an option row exists:
    # delete option rows before downgrading
    with op.batch_alter_table("trade_executions") as batch:
        batch.alter_column("ticker", existing_type=sa.String(length=32), type_=sa.String(length=10),
                           existing_nullable=False)
        batch.alter_column("original_ticker", existing_type=sa.String(length=32), type_=sa.String(length=10),
                           existing_nullable=True)
