"""Trade journal and persistence (issue 3), on SQLite and on PostgreSQL.

Every database test runs twice: on a fresh SQLite file and on the local PostgreSQL server
(127.0.0.1:5432, database ``test``) in a uniquely named schema dropped afterwards. The PostgreSQL
half is skipped only when the server is not reachable.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from datetime import date, datetime, timedelta, timezone
from functools import partial
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from strategies.execution_log import TRADE_COLUMNS, DecisionRecord
from strategies.journal import db as jdb
from strategies.journal.models import (
    BacktestRunRecord,
    Base,
    DailyPnLRecord,
    EquitySnapshotRecord,
    ExecutorControlRecord,
    SignalDecisionRecord,
    TradeExecutionRecord,
)
from strategies.journal import (
    ControlStore,
    JournalSink,
    OrderResult,
    TradeJournalWriter,
    new_run_id,
)
from strategies.stats import max_drawdown
from strategies.trade_executor.models import Position, TradeSignal
from tests import builders
from tests.builders import utc

REPO_ROOT = Path(__file__).resolve().parent.parent
UTC = timezone.utc
MODEL_TABLES = {"trade_executions", "daily_pnl", "signal_decisions", "executor_events",
                "equity_snapshots", "executor_control", "backtest_runs"}

@pytest.fixture
def migrated(db_url: str) -> str:
    jdb.upgrade(db_url)
    return db_url


@pytest.fixture
def engine(migrated: str):
    e = jdb.make_engine(migrated)
    yield e
    e.dispose()


def _diff(engine: sa.Engine, metadata: sa.MetaData) -> list:
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": True})
        return compare_metadata(ctx, metadata)


def _count(engine: sa.Engine, table: str, where: str = "") -> int:
    with engine.connect() as conn:
        return conn.exec_driver_sql(f"SELECT COUNT(*) FROM {table} {where}").scalar_one()


def _seed_metadata() -> sa.MetaData:
    """PRD-135 "Data Models (ORM)" as written (the target of migration 135)."""
    md = sa.MetaData()
    C = sa.Column
    sa.Table(
        "trade_executions", md,
        C("id", sa.Integer, primary_key=True),
        C("signal_id", sa.String(50), index=True),
        C("ticker", sa.String(10), nullable=False, index=True),
        C("instrument_type", sa.String(20), nullable=False, default="stock"),
        C("original_ticker", sa.String(10)),
        C("leverage", sa.Float, default=1.0),
        C("direction", sa.String(10), nullable=False),
        C("trade_type", sa.String(10), nullable=False),
        C("entry_price", sa.Float, nullable=False),
        C("exit_price", sa.Float),
        C("shares", sa.Integer, nullable=False),
        C("stop_loss", sa.Float),
        C("target_price", sa.Float),
        C("conviction", sa.Integer),
        C("status", sa.String(20), nullable=False, default="open"),
        C("exit_reason", sa.String(50)),
        C("pnl", sa.Float),
        C("pnl_pct", sa.Float),
        C("broker", sa.String(20)),
        C("order_id", sa.String(100)),
        C("entry_time", sa.DateTime, nullable=False),
        C("exit_time", sa.DateTime),
        C("metadata_json", sa.Text),
        C("created_at", sa.DateTime, default=sa.func.now()),
        sa.Index("ix_trade_executions_ticker_status", "ticker", "status"),
    )
    sa.Table(
        "daily_pnl", md,
        C("id", sa.Integer, primary_key=True),
        C("date", sa.Date, nullable=False, unique=True, index=True),
        C("starting_equity", sa.Float, nullable=False),
        C("ending_equity", sa.Float, nullable=False),
        C("realized_pnl", sa.Float, nullable=False),
        C("unrealized_pnl", sa.Float, nullable=False),
        C("total_trades", sa.Integer, nullable=False),
        C("winning_trades", sa.Integer, nullable=False),
        C("losing_trades", sa.Integer, nullable=False),
        C("max_drawdown", sa.Float),
        C("kill_switch_triggered", sa.Boolean, default=False),
        C("metadata_json", sa.Text),
    )
    return md


# a long QQQ 5m signal at 100, stop 98, target 104, at 10:00 New York on Tue 2025-06-17
_signal = partial(builders.signal, timeframe="5m", target=104.0, ts=utc(2025, 6, 17, 14, 0), volume_confirmed=None)


def _trade_row(**over) -> dict:
    row = {
        "signal_id": "QQQ-5m-cloud_cross_bullish-20250617T140000Z",
        "ticker": "QQQ", "instrument_type": "stock", "original_ticker": "QQQ", "leverage": 1.0,
        "direction": "long", "trade_type": "day", "entry_price": 480.25, "exit_price": 482.5,
        "shares": 10, "stop_loss": 478.0, "target_price": 485.0, "conviction": 80, "status": "closed",
        "exit_reason": "target", "pnl": 22.5, "pnl_pct": 0.004685, "broker": "sim",
        "order_id": "O-1", "entry_time": datetime(2025, 6, 17, 14, 0, tzinfo=UTC),
        "exit_time": datetime(2025, 6, 17, 15, 30, tzinfo=UTC),
        "metadata_json": json.dumps({"fees": 0.1}),
    }
    row.update(over)
    return row


def _decision(i: int = 0, **over) -> DecisionRecord:
    kw = dict(ts=datetime(2025, 6, 17, 14, 0, tzinfo=UTC) + timedelta(minutes=i), signal_id=f"SIG-{i}",
              ticker="QQQ", timeframe="5m", signal_type="cloud_cross_bullish", direction="long",
              conviction=70, approved=False, reason_code="max_positions",
              reason="max_positions: 10 open >= 10", instrument="TQQQ", instrument_type="leveraged_etf",
              shares=0, details={"open_positions": 10, "limit": 10}, order_ids=[])
    kw.update(over)
    return DecisionRecord(**kw)


# ── migrations ────────────────────────────────────────────────────────────────────────────────


def test_migrations_agree_with_models(db_url: str) -> None:
    jdb.upgrade(db_url, "135_trade_executor")
    engine = jdb.make_engine(db_url)
    try:
        assert _diff(engine, _seed_metadata()) == [], "135 must create the seed's tables exactly"
        assert _diff(engine, Base.metadata) != []  # the comparison does see differences
        jdb.upgrade(db_url)
        assert jdb.current_revision(db_url) == "139_orders_fills"
        assert _diff(engine, Base.metadata) == []
        insp = sa.inspect(engine)
        idx = {i["name"]: (i["column_names"], bool(i["unique"])) for i in insp.get_indexes("trade_executions")}
        assert idx["ix_trade_executions_ticker_status"] == (["ticker", "status"], False)
        assert idx["ix_trade_executions_signal_id"] == (["signal_id"], False)
        didx = {i["name"]: (i["column_names"], bool(i["unique"])) for i in insp.get_indexes("daily_pnl")}
        assert didx["ix_daily_pnl_date"] == (["date"], False)
        assert didx["uq_daily_pnl_run_id_date"] == (["run_id", "date"], True)
        if engine.dialect.name == "sqlite":
            with engine.connect() as conn:
                assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    finally:
        engine.dispose()


def test_downgrade_removes_tables(db_url: str) -> None:
    jdb.upgrade(db_url)
    engine = jdb.make_engine(db_url)
    try:
        assert MODEL_TABLES <= set(sa.inspect(engine).get_table_names())
        jdb.downgrade(db_url, "135_trade_executor")
        assert set(sa.inspect(engine).get_table_names()) - {"alembic_version"} == {"trade_executions", "daily_pnl"}
        assert _diff(engine, _seed_metadata()) == []
        jdb.downgrade(db_url, "base")
        assert set(sa.inspect(engine).get_table_names()) - {"alembic_version"} == set()
        assert jdb.current_revision(db_url) is None
        jdb.upgrade(db_url)  # and back up again
        assert _diff(engine, Base.metadata) == []
    finally:
        engine.dispose()


def test_migration_138_converts_json_text_and_back(db_url: str) -> None:
    """Text written before 138 becomes JSON values: JSON as it was, NaN/Infinity as null, text that
    is not JSON as a JSON string; downgrading gives JSON text of the same values back."""
    jdb.upgrade(db_url, "137_option_symbols")
    engine = jdb.make_engine(db_url)
    meta = {"fees": 0.1, "signal": {"ticker": "QQQ", "levels": [1, 2.5]}, "note": "NaN is a word here"}
    texts = {
        "T-ok": json.dumps(meta),
        "T-nan": '{"iv": NaN, "delta": 0.5, "greeks": [Infinity, -Infinity, 1]}',
        "T-bad": "not json {",
        "T-null": None,
    }
    expected = {"T-ok": meta, "T-nan": {"iv": None, "delta": 0.5, "greeks": [None, None, 1]},
                "T-bad": "not json {", "T-null": None}
    try:
        with engine.begin() as c:
            for oid, text in texts.items():
                c.execute(sa.text(
                    "INSERT INTO trade_executions (ticker, instrument_type, direction, trade_type, entry_price, "
                    "shares, status, entry_time, order_id, metadata_json, run_id) VALUES ('QQQ', 'stock', 'long', "
                    "'day', 100.0, 1, 'open', '2025-06-17 14:00:00', :o, :m, 'mig')"), {"o": oid, "m": text})
            c.execute(sa.text("INSERT INTO executor_control (key, value_json, updated_at) VALUES "
                              "('instrument_mode', '\"both\"', '2025-06-17 14:00:00'), "
                              "('kill_switch', '{\"active\": true}', '2025-06-17 14:00:00')"))
            c.execute(sa.text("INSERT INTO backtest_runs (run_id, started_at, symbols, params_json) VALUES "
                              "('mig', '2025-06-17 14:00:00', '[\"QQQ\", \"SPY\"]', '{\"cash\": 1e5}')"))
        jdb.upgrade(db_url)
        assert _diff(engine, Base.metadata) == []
        with sa.orm.Session(engine) as s:
            got = {r.order_id: r.metadata_json for r in s.scalars(sa.select(TradeExecutionRecord))}
            assert got == expected
            ctl = {r.key: r.value_json for r in s.scalars(sa.select(ExecutorControlRecord))}
            assert ctl == {"instrument_mode": "both", "kill_switch": {"active": True}}
            run = s.get(BacktestRunRecord, "mig")
            assert (run.symbols, run.params_json, run.summary_json) == (["QQQ", "SPY"], {"cash": 100000.0}, None)
        assert ControlStore(engine).instrument_mode() == "both"
        (t,) = [t for t in TradeJournalWriter(engine, run_id="mig").get_open_trades() if t.order_id == "T-nan"]
        assert t.metadata == expected["T-nan"]

        jdb.downgrade(db_url, "137_option_symbols")
        with engine.connect() as c:
            back = dict(c.execute(sa.text("SELECT order_id, metadata_json FROM trade_executions")).all())
            ctl_text = dict(c.execute(sa.text("SELECT key, value_json FROM executor_control")).all())
        assert all(isinstance(v, str) for v in back.values() if v is not None)
        assert {k: None if v is None else json.loads(v) for k, v in back.items()} == expected
        assert json.loads(ctl_text["instrument_mode"]) == "both"
    finally:
        engine.dispose()


# ── round trips ───────────────────────────────────────────────────────────────────────────────


def test_round_trip_every_record_type(engine: sa.Engine) -> None:
    w = TradeJournalWriter(engine, run_id="rt-1")
    # trade via the ExecutionSink row
    row = _trade_row()
    tid = w.record_trade(row)
    (t,) = w.get_trade_history(days=None, now=datetime(2025, 6, 18, tzinfo=UTC))
    assert t.id == tid and t.run_id == "rt-1"
    assert t.to_row() == {**row, "metadata_json": {"fees": 0.1}}  # JSON text in, a dict back
    assert t.entry_time.tzinfo is not None and t.created_at is not None
    # decision, with the signal
    sig = _signal()
    d = _decision(1, approved=True, reason_code=None, reason=None, shares=25, order_ids=["O-7", "O-8"],
                  details={"risk": {"equity": 100000.0}, "size": {"shares": 25}})
    w.record_decision(d, signal=sig)
    (rd,) = w.get_decisions()
    assert (rd.ts, rd.signal_id, rd.ticker, rd.timeframe, rd.signal_type, rd.direction, rd.conviction,
            rd.approved, rd.reason_code, rd.reason, rd.instrument, rd.instrument_type, rd.shares) == (
        d.ts, d.signal_id, d.ticker, d.timeframe, d.signal_type, d.direction, d.conviction,
        True, None, None, d.instrument, d.instrument_type, 25)
    assert rd.details_json == d.details
    assert rd.order_ids == ["O-7", "O-8"]
    assert TradeSignal.from_dict(rd.signal_json) == sig
    # equity and events
    ts = datetime(2025, 6, 17, 14, 5, 30, 123456, tzinfo=UTC)
    w.record_equity(ts, 100123.45)
    assert w.get_equity_curve() == [(ts, 100123.45)]
    w.record_event(ts, "kill_switch", "daily_loss_limit: -10.2% <= -10%", {"equity": 89800.0})
    (ev,) = w.get_events()
    assert (ev.ts, ev.kind, ev.message, ev.data_json) == (
        ts, "kill_switch", "daily_loss_limit: -10.2% <= -10%", {"equity": 89800.0})
    # daily pnl
    s = w.record_daily_pnl(date(2025, 6, 17), metadata={"note": "rt"})
    rec = w.get_daily_pnl(date(2025, 6, 17))
    assert (rec.date, rec.run_id, rec.starting_equity, rec.ending_equity, rec.realized_pnl, rec.total_trades,
            rec.winning_trades, rec.losing_trades, rec.max_drawdown, rec.kill_switch_triggered) == (
        date(2025, 6, 17), "rt-1", 100123.45, 100123.45, 22.5, 1, 1, 0, 0.0, True)
    assert rec.metadata_json["note"] == "rt" and s.realized_pnl == 22.5
    w.record_daily_pnl(date(2025, 6, 17))  # upsert, not a second row
    assert _count(engine, "daily_pnl") == 1
    # backtest run
    w.start_backtest_run(datetime(2025, 6, 16, 13, 30, tzinfo=UTC), mode="stock", symbols=["QQQ", "SPY"],
                         params={"equity": 100000})
    w.finish_backtest_run({"trades": 1, "pnl": 22.5})
    with sa.orm.Session(engine) as s2:
        br = s2.get(BacktestRunRecord, "rt-1")
        assert (br.started_at, br.mode, br.symbols, br.params_json, br.summary_json) == (
            datetime(2025, 6, 16, 13, 30, tzinfo=UTC), "stock", ["QQQ", "SPY"], {"equity": 100000},
            {"trades": 1, "pnl": 22.5})
    # control
    cs = ControlStore(engine)
    at = datetime(2025, 6, 17, 15, 0, tzinfo=UTC)
    assert cs.kill_switch().active is False
    cs.activate_kill_switch("manual: operator", now=at, by="cli")
    latch = ControlStore(engine).kill_switch()
    assert (latch.active, latch.reason, latch.activated_at) == (True, "manual: operator", at)
    rec = cs.get_record("kill_switch")
    assert (rec.updated_at, rec.updated_by) == (at, "cli")
    cs.deactivate_kill_switch(now=at + timedelta(hours=1), by="dashboard")
    assert cs.kill_switch().active is False and cs.kill_switch().reason == "manual: operator"
    assert cs.set_instrument_mode("leveraged_etf", now=at) == "leveraged_etf"
    assert ControlStore(engine).instrument_mode() == "leveraged_etf"
    with pytest.raises(ValueError, match="instrument_mode.*'futures'"):
        cs.set_instrument_mode("futures")
    assert _count(engine, "executor_control") == 2


def test_entry_exit_lifecycle(engine: sa.Engine) -> None:
    w = TradeJournalWriter(engine, run_id="life")
    t0 = datetime(2025, 6, 17, 14, 0, tzinfo=UTC)
    sig = _signal("QQQ", ts=t0)
    pos = Position(ticker="TQQQ", direction="long", entry_price=80.0, current_price=80.0, shares=100,
                   stop_loss=78.0, target_price=84.0, entry_time=t0, signal_id=sig.signal_id, trade_type="day",
                   instrument_type="leveraged_etf", leverage=3.0, underlying="QQQ")
    rid = w.record_entry(sig, OrderResult("E-1", "filled", 100, 80.05, "alpaca", t0), pos)
    (t,) = w.get_trade_history(now=t0 + timedelta(hours=1))
    assert (t.id, t.status, t.ticker, t.original_ticker, t.entry_price, t.shares, t.leverage, t.broker,
            t.order_id, t.conviction, t.instrument_type) == (
        rid, "open", "TQQQ", "QQQ", 80.05, 100, 3.0, "alpaca", "E-1", 80, "leveraged_etf")
    assert t.metadata["signal"]["signal_id"] == sig.signal_id
    # partial exit: 40 at 81.05 -> closed row of 40 (+40.00), 60 stay open
    pid = w.record_exit(pos, "target", OrderResult("X-1", "partial", 40, 81.05, "alpaca", t0 + timedelta(minutes=30)))
    rows = {r.id: r for r in w.get_trade_history(now=t0 + timedelta(hours=2))}
    assert rows[rid].status == "open" and rows[rid].shares == 60
    assert rows[pid].status == "closed" and rows[pid].shares == 40 and rows[pid].pnl == pytest.approx(40.0)
    # the strategy's closing row (same order id) closes the open entry instead of adding a row
    cid = w.record_trade(_trade_row(signal_id=sig.signal_id, ticker="TQQQ", original_ticker="QQQ", leverage=3.0,
                                    instrument_type="leveraged_etf", entry_price=80.05, exit_price=79.55, shares=60,
                                    status="closed", exit_reason="time_stop", pnl=-30.0, pnl_pct=-0.00625,
                                    order_id="E-1", entry_time=t0, exit_time=t0 + timedelta(hours=2)))
    assert cid == rid
    rows = w.get_trade_history(now=t0 + timedelta(hours=3))
    assert len(rows) == 2 and all(r.status == "closed" for r in rows)
    with pytest.raises(LookupError, match="no open trade"):
        w.record_exit(pos, "eod", OrderResult("X-2", "filled", 10, 80.0, "alpaca", t0 + timedelta(hours=3)))
    # short entry, full exit: (50 - 49) * 20 * -1 = -20
    spos = Position(ticker="SPY", direction="short", entry_price=50.0, current_price=50.0, shares=20,
                    stop_loss=51.0, target_price=48.0, entry_time=t0, signal_id="S-1", trade_type="swing")
    sid = w.record_entry(_signal("SPY", "short", ts=t0, entry=50.0, stop=51.0, target=48.0),
                         OrderResult("E-2", "filled", 20, 50.0, "ibkr", t0), spos)
    w.record_exit(spos, "stop_loss", OrderResult("X-3", "filled", 20, 51.0, "ibkr", t0 + timedelta(days=1)))
    (srow,) = [r for r in w.get_trade_history(ticker="SPY", now=t0 + timedelta(days=2))]
    assert (srow.id, srow.status, srow.exit_price, srow.pnl, srow.pnl_pct, srow.exit_reason) == (
        sid, "closed", 51.0, -20.0, pytest.approx(-0.02), "stop_loss")


# ── daily summary ─────────────────────────────────────────────────────────────────────────────


def test_daily_summary_hand_computed(engine: sa.Engine) -> None:
    run = "sum-1"
    w = TradeJournalWriter(engine, run_id=run)
    day = date(2025, 6, 17)  # New York date; EDT = UTC-4
    # three closed trades exited on June 17 New York time: +120.50, -40.25, +10.00
    w.record_trade(_trade_row(order_id="A", pnl=120.50, exit_time=datetime(2025, 6, 17, 14, 0, tzinfo=UTC)))
    w.record_trade(_trade_row(order_id="B", pnl=-40.25, exit_time=datetime(2025, 6, 17, 19, 59, tzinfo=UTC)))
    # 01:30 UTC on the 18th is 21:30 on the 17th in New York
    w.record_trade(_trade_row(order_id="C", pnl=10.00, exit_time=datetime(2025, 6, 18, 1, 30, tzinfo=UTC)))
    # not that day: 03:00 UTC on the 17th is the 16th in New York; a cancelled row; another run
    w.record_trade(_trade_row(order_id="D", pnl=999.0, entry_time=datetime(2025, 6, 16, 14, tzinfo=UTC),
                              exit_time=datetime(2025, 6, 17, 3, 0, tzinfo=UTC)))
    w.record_trade(_trade_row(order_id="E", status="cancelled", pnl=None, exit_price=None, exit_time=None,
                              exit_reason=None))
    TradeJournalWriter(engine, run_id="other").record_trade(_trade_row(order_id="F", pnl=-500.0))
    # open: long 10 @ 100 marked 103 (+30); short 5 @ 50 marked 52 (-10); one without a mark (0)
    t0 = datetime(2025, 6, 17, 15, 0, tzinfo=UTC)
    lp = Position(ticker="AAPL", direction="long", entry_price=100.0, current_price=100.0, shares=10,
                  stop_loss=99.0, target_price=None, entry_time=t0, signal_id="L-1", trade_type="swing")
    w.record_entry(_signal("AAPL", ts=t0), OrderResult("G", "filled", 10, 100.0, "sim", t0), lp)
    w.mark_price("AAPL", 103.0, t0 + timedelta(hours=1))
    sp = Position(ticker="NVDA", direction="short", entry_price=50.0, current_price=52.0, shares=5,
                  stop_loss=51.0, target_price=48.0, entry_time=t0, signal_id="S-1", trade_type="swing")
    w.record_entry(_signal("NVDA", "short", ts=t0, entry=50.0, stop=51.0, target=48.0),
                   OrderResult("H", "filled", 5, 50.0, "sim", t0), sp)
    w.record_trade(_trade_row(order_id="I", ticker="SPY", status="open", exit_price=None, exit_time=None,
                              exit_reason=None, pnl=None, pnl_pct=None, metadata_json=None))
    # equity: 100000 -> 100300 (peak) -> 99900 (trough, -400) -> 100100
    for i, eq in enumerate([100000.0, 100300.0, 99900.0, 100100.0]):
        w.record_equity(datetime(2025, 6, 17, 13, 30, tzinfo=UTC) + timedelta(hours=i), eq)
    w.record_equity(datetime(2025, 6, 18, 13, 30, tzinfo=UTC), 50000.0)  # next day: ignored
    w.record_event(datetime(2025, 6, 17, 16, 0, tzinfo=UTC), "kill_switch", "daily_loss_limit")

    s = w.get_daily_summary(day)
    assert s.date == day
    assert s.realized_pnl == pytest.approx(90.25)
    assert (s.total_trades, s.winning_trades, s.losing_trades) == (3, 2, 1)
    assert s.unrealized_pnl == pytest.approx(30.0 - 10.0)
    assert (s.starting_equity, s.ending_equity) == (100000.0, 100100.0)
    assert s.max_drawdown == pytest.approx(400.0)
    assert s.max_drawdown_pct == pytest.approx(400.0 / 100300.0)  # 0.399%
    assert s.kill_switch_triggered is True and s.equity_snapshots == 4
    # strategies.stats of the day's closed P&Ls +120.50, -40.25, +10.00
    assert s.win_rate == pytest.approx(2 / 3)
    assert s.profit_factor == pytest.approx(130.50 / 40.25)
    assert s.expectancy == pytest.approx(90.25 / 3)

    prev = w.get_daily_summary(date(2025, 6, 16))
    assert (prev.realized_pnl, prev.total_trades, prev.kill_switch_triggered, prev.starting_equity) == (
        999.0, 1, False, None)
    other = TradeJournalWriter(engine, run_id="other").get_daily_summary(day)
    assert (other.realized_pnl, other.total_trades, other.losing_trades) == (-500.0, 1, 1)

    w.record_daily_pnl(day)
    rec = w.get_daily_pnl(day)
    assert (rec.realized_pnl, rec.unrealized_pnl, rec.total_trades, rec.winning_trades, rec.losing_trades,
            rec.max_drawdown, rec.kill_switch_triggered, rec.starting_equity, rec.ending_equity) == (
        pytest.approx(90.25), pytest.approx(20.0), 3, 2, 1, pytest.approx(400.0), True, 100000.0, 100100.0)
    assert rec.metadata_json == {"max_drawdown_pct": pytest.approx(400.0 / 100300.0), "win_rate": pytest.approx(2 / 3),
                                 "profit_factor": pytest.approx(130.50 / 40.25), "expectancy": pytest.approx(90.25 / 3)}
    with pytest.raises(ValueError, match="no equity snapshots"):
        w.record_daily_pnl(date(2025, 6, 20))


def test_max_drawdown_definition() -> None:
    assert max_drawdown([]) == (0.0, 0.0)
    assert max_drawdown([100.0, 110.0, 120.0]) == (0.0, 0.0)
    dd, pct = max_drawdown([100000, 100300, 99900, 100100])
    assert dd == 400 and pct == pytest.approx(0.003988, abs=1e-6)
    # the worst fall, not the first; pct: the largest fall relative to its own peak (20/120 > 10/100)
    assert max_drawdown([100, 90, 120, 100, 130]) == (20, pytest.approx(20 / 120))
    # the largest fall in currency and the largest relative fall may come from different peaks
    assert max_drawdown([10, 5, 100, 90]) == (10, pytest.approx(0.5))


# ── trade history ─────────────────────────────────────────────────────────────────────────────


def test_trade_history_filters_by_ticker_and_days(engine: sa.Engine) -> None:
    w = TradeJournalWriter(engine, run_id="hist")
    now = datetime(2025, 7, 31, 20, 0, tzinfo=UTC)

    def at(days_ago: float) -> datetime:
        return now - timedelta(days=days_ago)

    w.record_trade(_trade_row(order_id="q1", ticker="TQQQ", original_ticker="QQQ", instrument_type="leveraged_etf",
                              entry_time=at(2), exit_time=at(1.9)))
    w.record_trade(_trade_row(order_id="q2", ticker="QQQ", original_ticker="QQQ", entry_time=at(10), exit_time=at(9)))
    w.record_trade(_trade_row(order_id="s1", ticker="SPY", original_ticker="SPY", entry_time=at(20), exit_time=at(19)))
    w.record_trade(_trade_row(order_id="s2", ticker="SPY", original_ticker="SPY", entry_time=at(45), exit_time=at(44)))
    # entered 40 days ago, exited 3 days ago: active inside a 30-day window
    w.record_trade(_trade_row(order_id="a1", ticker="AAPL", original_ticker="AAPL", trade_type="swing",
                              entry_time=at(40), exit_time=at(3)))
    w.record_trade(_trade_row(order_id="f1", ticker="SPY", entry_time=at(-1), exit_time=at(-1.1)))  # after now
    TradeJournalWriter(engine).record_trade(_trade_row(order_id="live1", ticker="SPY", entry_time=at(1),
                                                       exit_time=at(0.5)))  # live run

    def ids(**kw) -> list[str]:
        return [t.order_id for t in w.get_trade_history(now=now, **kw)]

    assert ids() == ["a1", "s1", "q2", "q1"]  # default 30 days, oldest entry first
    assert ids(days=5) == ["a1", "q1"]
    assert ids(days=None) == ["s2", "a1", "s1", "q2", "q1"]
    assert ids(ticker="SPY") == ["s1"]
    assert ids(ticker="spy", days=60) == ["s2", "s1"]
    assert ids(ticker="QQQ") == ["q2", "q1"]  # the signal ticker finds the TQQQ trade
    assert ids(ticker="TQQQ") == ["q1"]
    assert ids(ticker="MSFT") == []
    assert [t.order_id for t in TradeJournalWriter(engine).get_trade_history(now=now)] == ["live1"]
    with pytest.raises(ValueError, match="days"):
        w.get_trade_history(days=-1, now=now)


# ── bad input ─────────────────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize(
    ("override", "field", "shown"),
    [
        ({"entry_price": float("nan")}, "entry_price", "nan"),
        ({"exit_price": float("inf")}, "exit_price", "inf"),
        ({"exit_price": -0.01}, "exit_price", "-0.01"),
        ({"pnl": float("nan")}, "pnl", "nan"),
        ({"status": "filled"}, "status", "'filled'"),
        ({"shares": -5}, "shares", "-5"),
        ({"direction": "up"}, "direction", "'up'"),
        ({"ticker": None}, "ticker", "None"),
        ({"ticker": "X" * 33}, "ticker", "X" * 33),
    ],
)
def test_model_validation_names_field_and_value(override: dict, field: str, shown: str) -> None:
    values = {k: v for k, v in _trade_row().items()}
    values.update(override)
    with pytest.raises(ValueError) as exc:
        rec = TradeExecutionRecord(**values)
        from strategies.journal.models import check_required

        check_required(rec)
    assert field in str(exc.value) and shown in str(exc.value)


def test_an_option_expiring_worthless_is_journaled_at_zero() -> None:
    # a put that expires out of the money settles at 0.00: a valid exit price (found on a real
    # options backtest, where the journal refused it and stopped the run)
    values = {**_trade_row(), "instrument_type": "option", "exit_price": 0.0}
    assert TradeExecutionRecord(**values).exit_price == 0.0


def test_bad_records_refused_good_ones_survive(engine: sa.Engine) -> None:
    sink = JournalSink(engine, run_id="bad", flush_interval=5.0, batch_size=1000)
    try:
        sink.record_decision(_decision(0))
        sink.record_equity(datetime(2025, 6, 17, 14, tzinfo=UTC), 100000.0)
        with pytest.raises(ValueError, match=r"entry_price.*nan"):
            sink.record_trade(_trade_row(order_id="bad1", entry_price=float("nan")))
        with pytest.raises(ValueError, match=r"status.*'bogus'"):
            sink.record_trade(_trade_row(order_id="bad2", status="bogus"))
        with pytest.raises(ValueError, match=r"equity.*inf"):
            sink.record_equity(datetime(2025, 6, 17, 14, 1, tzinfo=UTC), float("inf"))
        with pytest.raises(ValueError, match="lacks columns"):
            sink.record_trade({"ticker": "QQQ"})
        sink.record_decision(_decision(1))
        sink.record_trade(_trade_row(order_id="good"))  # commits everything queued before it
        sink.record_equity(datetime(2025, 6, 17, 14, 2, tzinfo=UTC), 100050.0)
        sink.flush()
        assert _count(engine, "trade_executions") == 1
        assert _count(engine, "signal_decisions") == 2
        assert _count(engine, "equity_snapshots") == 2
        assert sink.failed == 0
    finally:
        sink.close()

    # a batch whose failure only the database can see: duplicate primary key in the middle
    w = TradeJournalWriter(engine, run_id="bad")
    w.start_backtest_run(datetime(2025, 6, 16, tzinfo=UTC))
    good1 = EquitySnapshotRecord(run_id="bad", ts=datetime(2025, 6, 17, 15, tzinfo=UTC), equity=1.0)
    dup = BacktestRunRecord(run_id="bad", started_at=datetime(2025, 6, 16, tzinfo=UTC))
    good2 = ExecutorControlRecord(key="instrument_mode", value_json="both",
                                  updated_at=datetime(2025, 6, 17, tzinfo=UTC))
    refused = w.write_records([good1, dup, good2])
    assert [r for r, _ in refused] == [dup] and isinstance(refused[0][1], sa.exc.IntegrityError)
    assert _count(engine, "equity_snapshots") == 3
    assert _count(engine, "executor_control") == 1
    assert _count(engine, "backtest_runs") == 1


# ── durability and concurrency ────────────────────────────────────────────────────────────────


def test_record_trade_commits_before_returning(migrated: str, engine: sa.Engine) -> None:
    reader = jdb.make_engine(migrated)
    sink = JournalSink(migrated, run_id="dur", flush_interval=30.0, batch_size=10_000)
    try:
        sink.record_decision(_decision(0, approved=True, order_ids=["O-1"]))
        sink.record_trade(_trade_row())
        # the fill and everything queued before it are visible to another connection at once
        assert _count(reader, "trade_executions") == 1
        assert _count(reader, "signal_decisions") == 1
        # decisions are batched: not committed until a batch boundary or flush
        sink.record_decision(_decision(1))
        time.sleep(0.1)
        assert _count(reader, "signal_decisions") == 1
        sink.flush()
        assert _count(reader, "signal_decisions") == 2
    finally:
        sink.close()
        reader.dispose()
    with pytest.raises(RuntimeError, match="closed"):
        sink.record_decision(_decision(2))


def test_concurrent_reader_sees_committed_rows(migrated: str, engine: sa.Engine) -> None:
    reader = jdb.make_engine(migrated)
    sink = JournalSink(migrated, run_id="conc", flush_interval=0.02, batch_size=25)
    n = 400
    done = threading.Event()

    def produce() -> None:
        t0 = datetime(2025, 6, 17, 13, 30, tzinfo=UTC)
        for i in range(n):
            sink.record_decision(_decision(i))
            sink.record_equity(t0 + timedelta(minutes=i), 100000.0 + i)
            if i % 100 == 99:
                sink.record_trade(_trade_row(order_id=f"T-{i}"))
            if i % 50 == 0:
                time.sleep(0.01)
        done.set()

    producer = threading.Thread(target=produce)
    producer.start()
    seen: list[int] = []
    try:
        while not done.is_set() or len(seen) < 3:
            seen.append(_count(reader, "signal_decisions"))  # never blocked by the writer
            time.sleep(0.005)
        producer.join()
        sink.flush()
        assert _count(reader, "signal_decisions") == n
        assert _count(reader, "equity_snapshots") == n
        assert _count(reader, "trade_executions") == n // 100
        assert seen == sorted(seen)  # monotone: only committed batches ever become visible
        assert any(0 < c < n for c in seen), seen  # the reader ran while the writer was writing
        # a writer holding an open write transaction does not block readers
        with engine.connect() as wconn:
            wconn.exec_driver_sql(
                "INSERT INTO equity_snapshots (run_id, ts, equity) VALUES ('conc', '2025-06-18 13:30:00', 1.0)")
            assert _count(reader, "equity_snapshots") == n  # uncommitted: invisible, and no wait
            wconn.commit()
        assert _count(reader, "equity_snapshots") == n + 1
        if reader.dialect.name == "sqlite":
            with reader.connect() as rconn:
                assert rconn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    finally:
        done.set()
        producer.join()
        sink.close()
        reader.dispose()


CRASH_CHILD = textwrap.dedent(
    """
    import json, sys, time
    from datetime import datetime, timezone
    from strategies.execution_log import DecisionRecord
    from strategies.journal import JournalSink

    url, row = sys.argv[1], json.loads(sys.argv[2])
    for k in ("entry_time", "exit_time"):
        row[k] = datetime.fromisoformat(row[k])
    sink = JournalSink(url, run_id="crash", flush_interval=60.0, batch_size=100000)
    ts = datetime(2025, 6, 17, 14, 0, tzinfo=timezone.utc)
    sink.record_decision(DecisionRecord(ts, row["signal_id"], "QQQ", "5m", "cloud_cross_bullish", "long",
                                        80, True, None, None, "QQQ", "stock", 10, {}, [row["order_id"]]))
    sink.record_trade(row)
    print("FILLED", flush=True)
    sink.record_equity(ts, 100000.0)  # queued, never flushed: may be lost, that is allowed
    time.sleep(60)
    """
)


def test_crash_after_fill_keeps_the_trade(migrated: str, tmp_path: Path) -> None:
    script = tmp_path / "crash_child.py"
    script.write_text(CRASH_CHILD)
    row = _trade_row(order_id="CRASH-1", pnl=33.3)
    payload = json.dumps({**row, "entry_time": row["entry_time"].isoformat(),
                          "exit_time": row["exit_time"].isoformat()})
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.Popen([sys.executable, str(script), migrated, payload], cwd=str(tmp_path), env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.strip() == "FILLED", proc.stderr.read() if proc.poll() is not None else line
        os.kill(proc.pid, signal.SIGKILL)  # no close(), no flush, no atexit
        assert proc.wait(timeout=10) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    w = TradeJournalWriter(migrated, run_id="crash")
    try:
        (t,) = w.get_trade_history(days=None, now=datetime(2025, 6, 18, tzinfo=UTC))
        assert t.to_row() == {**row, "metadata_json": json.loads(row["metadata_json"])}
        assert len(w.get_decisions()) == 1  # queued before the fill: committed with it
    finally:
        w.close()


# ── configuration ─────────────────────────────────────────────────────────────────────────────


def test_database_url_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    assert jdb.database_url() == f"sqlite:///{REPO_ROOT / 'data' / 'executor.db'}"
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://u@h/db")
    assert jdb.database_url() == "postgresql+psycopg://u@h/db"
    assert jdb.database_url("sqlite:///x.db") == "sqlite:///x.db"


def test_sqlite_engine_settings_and_migrations_from_any_cwd(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "nested" / "dir" / "j.db"
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{path}")
    jdb.upgrade()  # URL from the environment, alembic.ini found relative to the package
    assert path.exists()
    engine = jdb.make_engine()
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == jdb.SQLITE_BUSY_TIMEOUT_MS
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        assert MODEL_TABLES <= set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_new_run_id_and_live_rows(engine: sa.Engine) -> None:
    a, b = new_run_id(), new_run_id()
    assert a != b and a.startswith("bt-") and len(a) <= 64
    live = TradeJournalWriter(engine)
    live.record_trade(_trade_row(order_id="L"))
    # rows written before run ids existed (NULL) read as live
    with engine.begin() as conn:
        conn.execute(sa.update(TradeExecutionRecord.__table__).values(run_id=None))
    live.record_trade(_trade_row(order_id="L2"))
    assert [t.order_id for t in live.get_trade_history(days=None, now=datetime(2026, 1, 1, tzinfo=UTC))] == ["L", "L2"]
    assert TradeJournalWriter(engine, run_id=a).get_trade_history(days=None, now=datetime(2026, 1, 1, tzinfo=UTC)) == []
    assert math.isclose(live.get_daily_summary(date(2025, 6, 17)).realized_pnl, 45.0)
    with pytest.raises(ValueError, match="not a backtest run"):
        live.start_backtest_run(datetime(2025, 6, 16, tzinfo=UTC))
    assert {c.key for c in SignalDecisionRecord.__table__.c} >= {"run_id", "signal_json", "order_ids"}
    assert set(TRADE_COLUMNS) <= {c.key for c in TradeExecutionRecord.__table__.c}
    assert DailyPnLRecord.__table__.c.run_id.nullable is False


def test_missing_schema_fails_fast_and_loudly(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'never_migrated.db'}"
    ts = datetime(2025, 6, 17, 14, tzinfo=UTC)
    w = TradeJournalWriter(url)
    sink = JournalSink(url, flush_interval=0.05)
    try:
        t0 = time.monotonic()
        with pytest.raises(sa.exc.OperationalError, match="no such table"):
            w.record_equity(ts, 1.0)
        with pytest.raises(sa.exc.OperationalError, match="no such table"):
            sink.record_trade(_trade_row())  # a fill that cannot be stored is an error for the caller
        sink.record_equity(ts, 1.0)  # batched: counted and logged, never silently dropped
        sink.flush()
        assert sink.failed == 2 and [label for label, _ in sink.errors] == ["trade_executions", "equity_snapshots"]
        assert time.monotonic() - t0 < 2.0  # not retried as if it were a transient lock
    finally:
        sink.close()
        w.close()
