"""JSON columns: the journal's JSON text columns become JSON (SQLite) / JSONB (PostgreSQL).

Columns: trade_executions.metadata_json, daily_pnl.metadata_json, signal_decisions.details_json /
order_ids / signal_json, executor_events.data_json, executor_control.value_json, backtest_runs.symbols
/ params_json / summary_json.

Existing text is converted, nothing is lost:

1. JSON text with NaN / Infinity (Python's json wrote those; JSON has no such numbers and
   PostgreSQL refuses them) is rewritten with null in their place.
2. Text that is not JSON at all is kept as a JSON string of that text.
3. The type changes: PostgreSQL ``ALTER COLUMN ... TYPE jsonb USING ...``; SQLite rebuilds the
   tables (batch mode), the text stays as it is (SQLite's JSON type is stored as text).

Downgrade turns the columns back into Text holding the JSON text of each value.

Revision ID: 138_json_columns
Revises: 137_option_symbols
Create Date: 2026-11-26
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "138_json_columns"
down_revision: str | Sequence[str] | None = "137_option_symbols"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# table -> (primary key, [(column, nullable)])
COLUMNS: dict[str, tuple[str, list[tuple[str, bool]]]] = {
    "trade_executions": ("id", [("metadata_json", True)]),
    "daily_pnl": ("id", [("metadata_json", True)]),
    "signal_decisions": ("id", [("details_json", True), ("order_ids", True), ("signal_json", True)]),
    "executor_events": ("id", [("data_json", True)]),
    "executor_control": ("key", [("value_json", False)]),
    "backtest_runs": ("run_id", [("symbols", True), ("params_json", True), ("summary_json", True)]),
}

PG_TEXT_TO_JSONB = """
CREATE OR REPLACE FUNCTION pg_temp.journal_text_to_jsonb(t text) RETURNS jsonb AS $$
BEGIN
    RETURN t::jsonb;
EXCEPTION WHEN others THEN
    RETURN to_jsonb(t);  -- not JSON: keep the text as a JSON string
END
$$ LANGUAGE plpgsql IMMUTABLE
"""


def _finite(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {k: _finite(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_finite(x) for x in v]
    return v


def _drop_non_finite_numbers(conn: sa.Connection, table: str, pk: str, col: str) -> None:
    """Rewrite the JSON text of rows holding NaN / Infinity with null in their place."""
    t = sa.table(table, sa.column(pk), sa.column(col, sa.Text()))
    rows = conn.execute(sa.select(t.c[pk], t.c[col]).where(
        sa.or_(t.c[col].like("%NaN%"), t.c[col].like("%Infinity%")))).all()
    for key, text in rows:
        try:
            value = json.loads(text)  # Python's json reads NaN / Infinity
        except ValueError:
            continue  # not JSON at all: kept as a JSON string below
        fixed = json.dumps(_finite(value), separators=(",", ":"))
        if fixed != text:
            conn.execute(sa.update(t).where(t.c[pk] == key).values({col: fixed}))


def upgrade() -> None:
    conn = op.get_bind()
    pg = conn.dialect.name == "postgresql"
    for table, (pk, cols) in COLUMNS.items():
        for col, _ in cols:
            _drop_non_finite_numbers(conn, table, pk, col)
    if pg:
        conn.exec_driver_sql(PG_TEXT_TO_JSONB)
        for table, (_, cols) in COLUMNS.items():
            for col, nullable in cols:
                op.alter_column(table, col, existing_type=sa.Text(), type_=postgresql.JSONB(),
                                existing_nullable=nullable,
                                postgresql_using=f"pg_temp.journal_text_to_jsonb({col})")
        conn.exec_driver_sql("DROP FUNCTION pg_temp.journal_text_to_jsonb(text)")
        return
    for table, (_, cols) in COLUMNS.items():
        if conn.dialect.name == "sqlite":
            for col, _ in cols:  # not JSON at all: keep the text as a JSON string
                conn.exec_driver_sql(f"UPDATE {table} SET {col} = json_quote({col}) "
                                     f"WHERE {col} IS NOT NULL AND json_valid({col}) = 0")
        with op.batch_alter_table(table) as batch:
            for col, nullable in cols:
                batch.alter_column(col, existing_type=sa.Text(), type_=sa.JSON(), existing_nullable=nullable)


def downgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name == "postgresql":
        for table, (_, cols) in COLUMNS.items():
            for col, nullable in cols:
                op.alter_column(table, col, existing_type=postgresql.JSONB(), type_=sa.Text(),
                                existing_nullable=nullable, postgresql_using=f"{col}::text")
        return
    for table, (_, cols) in COLUMNS.items():
        with op.batch_alter_table(table) as batch:
            for col, nullable in cols:
                batch.alter_column(col, existing_type=sa.JSON(), type_=sa.Text(), existing_nullable=nullable)
