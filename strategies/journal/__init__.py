"""Trade journal and persistence (issue 3): SQLAlchemy models, Alembic migrations, writers.

* ``models``: the tables (seed's ``trade_executions`` / ``daily_pnl`` plus ``signal_decisions``,
  ``executor_events``, ``equity_snapshots``, ``executor_control``, ``backtest_runs``).
* ``db``: ``database_url``, ``make_engine`` (SQLite in WAL mode), ``upgrade`` / ``downgrade``.
* ``writer``: ``TradeJournalWriter`` (synchronous), ``JournalSink`` (the executor's ExecutionSink:
  background batched writes, fills committed before the call returns), ``ControlStore``.

Typical use::

    from strategies.journal import JournalSink, upgrade, database_url
    url = database_url()          # $DATABASE_URL or data/executor.db
    upgrade(url)
    sink = JournalSink(url, run_id=None)   # live; backtests: run_id=new_run_id()
    ...                                     # ExecutorStrategy(config, sink=sink)
    sink.close()
"""

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
from strategies.journal.writer import (
    ControlStore,
    DailySummary,
    JournalSink,
    KillSwitchLatch,
    OrderResult,
    TradeJournalWriter,
    TradeRecord,
    new_run_id,
)

__all__ = [
    "LIVE_RUN_ID",
    "BacktestRunRecord",
    "Base",
    "ControlStore",
    "DailyPnLRecord",
    "DailySummary",
    "EquitySnapshotRecord",
    "ExecutorControlRecord",
    "ExecutorEventRecord",
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
    "upgrade",
]
