"""Trade journal and persistence (issue 3): SQLAlchemy models, Alembic migrations, writers.

* ``models``: the tables (seed's ``trade_executions`` / ``daily_pnl`` plus ``signal_decisions``,
  ``executor_events``, ``equity_snapshots``, ``executor_control``, ``backtest_runs``); JSON
  columns are SQLAlchemy ``JSON`` (``JSONB`` on PostgreSQL).
* ``db``: ``database_url``, ``make_engine`` (SQLite in WAL mode), ``upgrade`` / ``downgrade``.
* ``records``: the value objects read back (``TradeRecord``, ``DailySummary``, ``OrderResult``)
  and the mappers from the executor's rows/decisions/fills to validated ORM records.
* ``queries``: ``JournalReader`` (trade history, open trades, the daily summary, decisions,
  events, equity curve).
* ``writer``: ``TradeJournalWriter`` (synchronous; a JournalReader that writes).
* ``sink``: ``JournalSink`` (the executor's ExecutionSink: background batched writes, fills
  committed before the call returns).
* ``control``: ``ControlStore`` (``executor_control``: kill-switch latch, instrument mode).

Statistics (P&L, drawdown, Sharpe, win rate, ...) live in ``strategies.stats``.

Typical use::

    from strategies.journal import JournalSink, upgrade, database_url
    url = database_url()          # $DATABASE_URL or data/executor.db
    upgrade(url)
    sink = JournalSink(url, run_id=None)   # live; backtests: run_id=new_run_id()
    ...                                     # ExecutorStrategy(config, sink=sink)
    sink.close()
"""

from strategies.journal.control import INSTRUMENT_MODE_KEY, KILL_SWITCH_KEY, ControlStore, KillSwitchLatch
from strategies.journal.db import database_url, downgrade, make_engine, upgrade
from strategies.journal.models import (
    LIVE_RUN_ID,
    BacktestRunRecord,
    Base,
    DailyPnLRecord,
    EquitySnapshotRecord,
    ExecutorControlRecord,
    ExecutorEventRecord,
    SignalDecisionRecord,
    TradeExecutionRecord,
)
from strategies.journal.queries import JournalReader
from strategies.journal.records import DailySummary, OrderResult, TradeRecord, new_run_id, ny_day_bounds
from strategies.journal.sink import JournalSink
from strategies.journal.writer import TradeJournalWriter

__all__ = [
    "INSTRUMENT_MODE_KEY",
    "KILL_SWITCH_KEY",
    "LIVE_RUN_ID",
    "BacktestRunRecord",
    "Base",
    "ControlStore",
    "DailyPnLRecord",
    "DailySummary",
    "EquitySnapshotRecord",
    "ExecutorControlRecord",
    "ExecutorEventRecord",
    "JournalReader",
    "JournalSink",
    "KillSwitchLatch",
    "OrderResult",
    "SignalDecisionRecord",
    "TradeExecutionRecord",
    "TradeJournalWriter",
    "TradeRecord",
    "database_url",
    "downgrade",
    "make_engine",
    "new_run_id",
    "ny_day_bounds",
    "upgrade",
]
