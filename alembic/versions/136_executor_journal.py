"""Executor journal: run ids, signal decisions, events, equity curve, operator control, backtest runs.

* ``trade_executions.run_id`` (nullable, indexed): keeps backtest rows apart from live ones
  (live rows: ``"live"``, or NULL for rows written before this migration).
* ``daily_pnl.run_id`` (NOT NULL, default ``"live"``); ``date`` becomes unique per run
  (unique index ``uq_daily_pnl_run_id_date``) instead of globally; ``ix_daily_pnl_date`` stays as
  a plain index. Deviation from the seed because several runs share one database.
* New tables ``signal_decisions``, ``executor_events``, ``equity_snapshots``,
  ``executor_control``, ``backtest_runs``.

Downgrading restores the global unique index on ``daily_pnl.date``; it fails if by then two runs
have a row for the same date (delete the backtest rows first).

Revision ID: 136_executor_journal
Revises: 135_trade_executor
Create Date: 2025-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "136_executor_journal"
down_revision: str | Sequence[str] | None = "135_trade_executor"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("trade_executions") as batch:
        batch.add_column(sa.Column("run_id", sa.String(length=64), nullable=True))
        batch.create_index("ix_trade_executions_run_id", ["run_id"])

    with op.batch_alter_table("daily_pnl") as batch:
        batch.add_column(sa.Column("run_id", sa.String(length=64), nullable=False, server_default="live"))
        batch.drop_index("ix_daily_pnl_date")
        batch.create_index("ix_daily_pnl_date", ["date"], unique=False)
        batch.create_index("uq_daily_pnl_run_id_date", ["run_id", "date"], unique=True)

    op.create_table(
        "signal_decisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=True),
        sa.Column("ts", sa.DateTime(), nullable=False),
        sa.Column("signal_id", sa.String(length=100), nullable=True),
        sa.Column("ticker", sa.String(length=32), nullable=True),
        sa.Column("timeframe", sa.String(length=10), nullable=True),
        sa.Column("signal_type", sa.String(length=40), nullable=True),
        sa.Column("direction", sa.String(length=10), nullable=True),
        sa.Column("conviction", sa.Integer(), nullable=True),
        sa.Column("approved", sa.Boolean(), nullable=False),
        sa.Column("reason_code", sa.String(length=40), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("instrument", sa.String(length=32), nullable=True),
        sa.Column("instrument_type", sa.String(length=20), nullable=True),
        sa.Column("shares", sa.Integer(), nullable=False),
        sa.Column("details_json", sa.Text(), nullable=True),
        sa.Column("order_ids", sa.Text(), nullable=True),
        sa.Column("signal_json", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_signal_decisions_run_id_ts", "signal_decisions", ["run_id", "ts"])
    op.create_index("ix_signal_decisions_signal_id", "signal_decisions", ["signal_id"])

    op.create_table(
        "executor_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=True),
        sa.Column("ts", sa.DateTime(), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("data_json", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_executor_events_run_id_ts", "executor_events", ["run_id", "ts"])
    op.create_index("ix_executor_events_kind", "executor_events", ["kind"])

    op.create_table(
        "equity_snapshots",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=True),
        sa.Column("ts", sa.DateTime(), nullable=False),
        sa.Column("equity", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_equity_snapshots_run_id_ts", "equity_snapshots", ["run_id", "ts"])

    op.create_table(
        "executor_control",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value_json", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("updated_by", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("key"),
    )

    op.create_table(
        "backtest_runs",
        sa.Column("run_id", sa.String(length=64), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("mode", sa.String(length=20), nullable=True),
        sa.Column("symbols", sa.Text(), nullable=True),
        sa.Column("params_json", sa.Text(), nullable=True),
        sa.Column("summary_json", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("run_id"),
    )


def downgrade() -> None:
    op.drop_table("backtest_runs")
    op.drop_table("executor_control")
    op.drop_index("ix_equity_snapshots_run_id_ts", table_name="equity_snapshots")
    op.drop_table("equity_snapshots")
    op.drop_index("ix_executor_events_kind", table_name="executor_events")
    op.drop_index("ix_executor_events_run_id_ts", table_name="executor_events")
    op.drop_table("executor_events")
    op.drop_index("ix_signal_decisions_signal_id", table_name="signal_decisions")
    op.drop_index("ix_signal_decisions_run_id_ts", table_name="signal_decisions")
    op.drop_table("signal_decisions")

    with op.batch_alter_table("daily_pnl") as batch:
        batch.drop_index("uq_daily_pnl_run_id_date")
        batch.drop_index("ix_daily_pnl_date")
        batch.create_index("ix_daily_pnl_date", ["date"], unique=True)
        batch.drop_column("run_id")

    with op.batch_alter_table("trade_executions") as batch:
        batch.drop_index("ix_trade_executions_run_id")
        batch.drop_column("run_id")
