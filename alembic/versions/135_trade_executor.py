"""PRD-135 trade executor: the seed's trade_executions and daily_pnl tables.

Exactly the seed's "Data Models (ORM)" and "Alembic Migration" sections: two tables, indexes on
(ticker, status), (signal_id), (date) (plus the per-column ``index=True`` of the seed's models:
ticker, and date which the seed declares unique). Later changes live in 136_executor_journal.

Revision ID: 135_trade_executor
Revises:
Create Date: 2025-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "135_trade_executor"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "trade_executions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("signal_id", sa.String(length=50), nullable=True),
        sa.Column("ticker", sa.String(length=10), nullable=False),
        sa.Column("instrument_type", sa.String(length=20), nullable=False),
        sa.Column("original_ticker", sa.String(length=10), nullable=True),
        sa.Column("leverage", sa.Float(), nullable=True),
        sa.Column("direction", sa.String(length=10), nullable=False),
        sa.Column("trade_type", sa.String(length=10), nullable=False),
        sa.Column("entry_price", sa.Float(), nullable=False),
        sa.Column("exit_price", sa.Float(), nullable=True),
        sa.Column("shares", sa.Integer(), nullable=False),
        sa.Column("stop_loss", sa.Float(), nullable=True),
        sa.Column("target_price", sa.Float(), nullable=True),
        sa.Column("conviction", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("exit_reason", sa.String(length=50), nullable=True),
        sa.Column("pnl", sa.Float(), nullable=True),
        sa.Column("pnl_pct", sa.Float(), nullable=True),
        sa.Column("broker", sa.String(length=20), nullable=True),
        sa.Column("order_id", sa.String(length=100), nullable=True),
        sa.Column("entry_time", sa.DateTime(), nullable=False),
        sa.Column("exit_time", sa.DateTime(), nullable=True),
        sa.Column("metadata_json", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_trade_executions_signal_id", "trade_executions", ["signal_id"])
    op.create_index("ix_trade_executions_ticker", "trade_executions", ["ticker"])
    op.create_index("ix_trade_executions_ticker_status", "trade_executions", ["ticker", "status"])

    op.create_table(
        "daily_pnl",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("starting_equity", sa.Float(), nullable=False),
        sa.Column("ending_equity", sa.Float(), nullable=False),
        sa.Column("realized_pnl", sa.Float(), nullable=False),
        sa.Column("unrealized_pnl", sa.Float(), nullable=False),
        sa.Column("total_trades", sa.Integer(), nullable=False),
        sa.Column("winning_trades", sa.Integer(), nullable=False),
        sa.Column("losing_trades", sa.Integer(), nullable=False),
        sa.Column("max_drawdown", sa.Float(), nullable=True),
        sa.Column("kill_switch_triggered", sa.Boolean(), nullable=True),
        sa.Column("metadata_json", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_daily_pnl_date", "daily_pnl", ["date"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_daily_pnl_date", table_name="daily_pnl")
    op.drop_table("daily_pnl")
    op.drop_index("ix_trade_executions_ticker_status", table_name="trade_executions")
    op.drop_index("ix_trade_executions_ticker", table_name="trade_executions")
    op.drop_index("ix_trade_executions_signal_id", table_name="trade_executions")
    op.drop_table("trade_executions")
