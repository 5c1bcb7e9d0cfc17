"""Order book: ``executor_orders`` (one row per order and run, upserted on every order event) and
``executor_fills`` (one row per execution), written by ``strategies.order_recorder.OrderRecorder``
in backtests and in the live node alike (issue #16).

Revision ID: 139_orders_fills
Revises: 138_json_columns
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "139_orders_fills"
down_revision: str | Sequence[str] | None = "138_json_columns"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    json_type = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
    op.create_table(
        "executor_orders",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=False),
        sa.Column("client_order_id", sa.String(length=64), nullable=False),
        sa.Column("venue_order_id", sa.String(length=64), nullable=True),
        sa.Column("strategy_id", sa.String(length=64), nullable=True),
        sa.Column("instrument_id", sa.String(length=64), nullable=False),
        sa.Column("ticker", sa.String(length=32), nullable=False),
        sa.Column("side", sa.String(length=10), nullable=False),
        sa.Column("order_type", sa.String(length=30), nullable=False),
        sa.Column("time_in_force", sa.String(length=10), nullable=True),
        sa.Column("quantity", sa.Float(), nullable=False),
        sa.Column("filled_qty", sa.Float(), nullable=False),
        sa.Column("price", sa.Float(), nullable=True),
        sa.Column("trigger_price", sa.Float(), nullable=True),
        sa.Column("avg_px", sa.Float(), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("reduce_only", sa.Boolean(), nullable=True),
        sa.Column("signal_id", sa.String(length=100), nullable=True),
        sa.Column("role", sa.String(length=40), nullable=True),
        sa.Column("tags", json_type, nullable=True),
        sa.Column("last_event", sa.String(length=40), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("uq_executor_orders_run_id_client_order_id", "executor_orders",
                    ["run_id", "client_order_id"], unique=True)
    op.create_index("ix_executor_orders_run_id_status", "executor_orders", ["run_id", "status"])
    op.create_index("ix_executor_orders_signal_id", "executor_orders", ["signal_id"])

    op.create_table(
        "executor_fills",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=False),
        sa.Column("ts", sa.DateTime(), nullable=False),
        sa.Column("client_order_id", sa.String(length=64), nullable=False),
        sa.Column("venue_order_id", sa.String(length=64), nullable=True),
        sa.Column("trade_id", sa.String(length=64), nullable=False),
        sa.Column("instrument_id", sa.String(length=64), nullable=False),
        sa.Column("ticker", sa.String(length=32), nullable=False),
        sa.Column("side", sa.String(length=10), nullable=False),
        sa.Column("quantity", sa.Float(), nullable=False),
        sa.Column("price", sa.Float(), nullable=False),
        sa.Column("commission", sa.Float(), nullable=True),
        sa.Column("liquidity_side", sa.String(length=10), nullable=True),
        sa.Column("signal_id", sa.String(length=100), nullable=True),
        sa.Column("role", sa.String(length=40), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("uq_executor_fills_run_id_order_trade", "executor_fills",
                    ["run_id", "client_order_id", "trade_id"], unique=True)
    op.create_index("ix_executor_fills_run_id_ts", "executor_fills", ["run_id", "ts"])


def downgrade() -> None:
    op.drop_index("ix_executor_fills_run_id_ts", table_name="executor_fills")
    op.drop_index("uq_executor_fills_run_id_order_trade", table_name="executor_fills")
    op.drop_table("executor_fills")
    op.drop_index("ix_executor_orders_signal_id", table_name="executor_orders")
    op.drop_index("ix_executor_orders_run_id_status", table_name="executor_orders")
    op.drop_index("uq_executor_orders_run_id_client_order_id", table_name="executor_orders")
    op.drop_table("executor_orders")
