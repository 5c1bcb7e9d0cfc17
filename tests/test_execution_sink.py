"""The one ExecutionSink protocol: every sink implements every call the executor strategy makes.

ExecutionLog (in memory), JournalSink (the database journal, on SQLite and PostgreSQL) and
TeeSink are runtime-checked against the protocol and driven through every method; the strategy
calls its sink only through protocol methods (no getattr probing).
"""

from __future__ import annotations

import json
import re
from datetime import date, datetime, timezone
from pathlib import Path

import pytest

from strategies.execution_log import TRADE_COLUMNS, DecisionRecord, ExecutionLog, ExecutionSink, OpenTrade, TeeSink
from strategies.journal import DailySummary, JournalSink, TradeJournalWriter, db as jdb

REPO_ROOT = Path(__file__).resolve().parent.parent
UTC = timezone.utc
T0 = datetime(2025, 6, 17, 14, 0, tzinfo=UTC)
DAY = date(2025, 6, 17)
PROTOCOL_METHODS = {"record_decision", "record_trade", "record_open_trade", "record_event", "record_equity",
                    "record_daily_pnl", "get_open_trades", "get_decided_signal_ids", "flush", "close"}


def _decision() -> DecisionRecord:
    return DecisionRecord(ts=T0, signal_id="SIG-1", ticker="QQQ", timeframe="5m", signal_type="cloud_cross_bullish",
                          direction="long", conviction=80, approved=True, reason_code=None, reason=None,
                          instrument="QQQ", instrument_type="stock", shares=10, details={"size": {"shares": 10}},
                          order_ids=["O-1"])


def _row(**over) -> dict:
    row = {"signal_id": "SIG-1", "ticker": "QQQ", "instrument_type": "stock", "original_ticker": "QQQ",
           "leverage": 1.0, "direction": "long", "trade_type": "day", "entry_price": 100.0, "exit_price": None,
           "shares": 10, "stop_loss": 99.0, "target_price": 103.0, "conviction": 80, "status": "open",
           "exit_reason": None, "pnl": None, "pnl_pct": None, "broker": "sim", "order_id": "O-1",
           "entry_time": T0, "exit_time": None,
           "metadata_json": json.dumps({"last_price": 100.5, "multiplier": 1.0, "signal": {"ticker": "QQQ"}})}
    row.update(over)
    return row


CLOSED = dict(status="closed", exit_price=102.0, exit_reason="profit_target", pnl=20.0, pnl_pct=0.02,
              exit_time=datetime(2025, 6, 17, 15, 0, tzinfo=UTC), metadata_json=json.dumps({"fees": 0.0}))


def _drive(sink: ExecutionSink) -> tuple[list, list, object]:
    """Every protocol call, in the order the strategy makes them; returns (open rows while the
    position is open, open rows after the round trip, the record_daily_pnl result)."""
    sink.record_decision(_decision())
    sink.record_equity(T0, 100_000.0)
    sink.record_open_trade(_row())
    open_during = list(sink.get_open_trades())
    sink.record_event(T0, "trading_state", "ACTIVE: test", {"state": "ACTIVE"})
    sink.record_trade(_row(**CLOSED))
    sink.record_equity(datetime(2025, 6, 17, 15, 0, tzinfo=UTC), 100_020.0)
    open_after = list(sink.get_open_trades())
    daily = sink.record_daily_pnl(DAY, {"broker": "sim"})
    assert sink.flush() is True
    return open_during, open_after, daily


def test_protocol_lists_every_call_the_strategy_makes() -> None:
    members = {n for n in vars(ExecutionSink) if not n.startswith("_")}
    assert members == PROTOCOL_METHODS
    src = (REPO_ROOT / "strategies" / "executor_strategy.py").read_text()
    assert "getattr(self.sink" not in src
    assert set(re.findall(r"self\.sink\.(\w+)", src)) <= PROTOCOL_METHODS


def test_something_without_flush_is_not_a_sink() -> None:
    class Partial:
        def record_decision(self, decision): ...
        def record_trade(self, row): ...

    assert not isinstance(Partial(), ExecutionSink)


def test_execution_log_implements_the_protocol() -> None:
    log = ExecutionLog()
    assert isinstance(log, ExecutionSink)
    open_during, open_after, daily = _drive(log)
    assert (open_during, open_after, daily) == ([], [], None)  # nothing outlives the process
    assert [d.signal_id for d in log.decisions] == ["SIG-1"]
    assert [t["status"] for t in log.trades] == ["closed"] and log.open_trades == {}
    assert [e[1] for e in log.events] == ["trading_state"] and len(log.equity) == 2
    assert log.daily == [(DAY, {"broker": "sim"})]
    log.close()
    with pytest.raises(ValueError, match="lacks columns"):
        log.record_trade({"ticker": "QQQ"})


def test_execution_log_keeps_open_rows_until_the_round_trip_closes() -> None:
    log = ExecutionLog()
    log.record_open_trade(_row())
    assert list(log.open_trades) == ["O-1"]
    log.record_trade(_row(**CLOSED))
    assert log.open_trades == {}


def test_journal_sink_implements_the_protocol(db_url: str) -> None:
    jdb.upgrade(db_url)
    sink = JournalSink(db_url, run_id="proto", flush_interval=0.05)
    try:
        assert isinstance(sink, ExecutionSink)
        open_during, open_after, daily = _drive(sink)
        (o,) = open_during
        assert isinstance(o, OpenTrade)
        assert (o.order_id, o.status, o.shares, o.metadata["last_price"]) == ("O-1", "open", 10, 100.5)
        assert open_after == []
        assert isinstance(daily, DailySummary)
        assert (daily.realized_pnl, daily.total_trades, daily.winning_trades, daily.win_rate) == (20.0, 1, 1, 1.0)
        assert (daily.starting_equity, daily.ending_equity) == (100_000.0, 100_020.0)
    finally:
        sink.close()
        sink.close()  # idempotent
    w = TradeJournalWriter(db_url, run_id="proto")
    try:
        (t,) = w.get_trade_history(days=None, now=datetime(2025, 6, 18, tzinfo=UTC))
        assert {k: v for k, v in t.to_row().items() if k != "metadata_json"} == {
            k: v for k, v in _row(**CLOSED).items() if k != "metadata_json"}
        assert t.metadata_json == {"fees": 0.0} and set(TRADE_COLUMNS) == set(t.to_row())
        assert [d.signal_id for d in w.get_decisions()] == ["SIG-1"]
        assert [e.kind for e in w.get_events()] == ["trading_state"]
        assert w.get_daily_pnl(DAY).metadata_json["broker"] == "sim"
    finally:
        w.close()


def test_tee_sink_implements_the_protocol(db_url: str) -> None:
    jdb.upgrade(db_url)
    log = ExecutionLog()
    journal = JournalSink(db_url, run_id="tee", flush_interval=0.05)
    tee = TeeSink(log, journal)
    try:
        assert isinstance(tee, ExecutionSink)
        open_during, open_after, daily = _drive(tee)
        # the in-memory log has no open rows to hand back: the journal's come through
        assert [o.order_id for o in open_during] == ["O-1"] and open_after == []
        assert isinstance(daily, DailySummary) and daily.realized_pnl == 20.0  # the journal's summary
        assert log.daily == [(DAY, {"broker": "sim"})] and len(log.trades) == 1
    finally:
        tee.close()
    with pytest.raises(RuntimeError, match="closed"):
        journal.record_equity(T0, 1.0)


def test_tee_of_in_memory_logs() -> None:
    a, b = ExecutionLog(), ExecutionLog()
    tee = TeeSink(a, b)
    assert isinstance(tee, ExecutionSink)
    assert _drive(tee) == ([], [], None)
    assert len(a.trades) == len(b.trades) == 1 and a.daily == b.daily == [(DAY, {"broker": "sim"})]
    tee.close()
