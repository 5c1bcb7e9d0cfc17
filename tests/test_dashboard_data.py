"""The dashboard's data access (strategies/dashboard/data.py) on a journal filled by a real
backtest and the live executor's writer (tests/dashboard_fixtures.py, numbers worked out there),
on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pandas as pd
import pytest
import sqlalchemy as sa

from strategies.dashboard import data as d
from strategies.journal import ControlStore, make_engine
from tests.dashboard_fixtures import LIVE_T0, NOW, build_journal


@pytest.fixture
def journal(tmp_path, db_url):
    run_id = build_journal(tmp_path, db_url)
    engine = make_engine(db_url)
    yield engine, run_id
    engine.dispose()


def test_runs_and_per_mode_table(journal) -> None:
    e, run_id = journal
    assert d.run_choices(e) == ["live", run_id]
    runs = d.backtest_runs(e)
    (r,) = runs.to_dict("records")
    assert (r["run_id"], r["mode"], r["symbols"], r["finished"], r["trades"]) == (run_id, "stock", "QQQ", True, 1)
    assert r["ending_equity"] == pytest.approx(100_296.98) and r["return_pct"] == pytest.approx(0.297)
    assert (r["signals_received"], r["signals_rejected"]) == (2, 1)
    table = d.per_mode_table(runs)
    assert table[["mode", "run_id", "trades"]].values.tolist() == [["stock", run_id, 1]]


def test_active_positions_with_live_pnl_and_time_in_trade(journal) -> None:
    e, _ = journal
    pos = d.active_positions(e, "live", now=NOW)
    rows = pos.set_index("ticker")
    assert list(pos["ticker"]) == ["TQQQ", "SPY"]
    q, s = rows.loc["TQQQ"], rows.loc["SPY"]
    assert (q["underlying"], q["direction"], q["shares"], q["entry_price"], q["stop_loss"], q["target_price"]) == \
        ("QQQ", "long", 100, 50.0, 48.0, 54.0)
    assert q["last_price"] == 52.0 and q["unrealized_pnl"] == pytest.approx(200.0)
    assert s["unrealized_pnl"] == pytest.approx(200.0) and s["unrealized_pct"] == pytest.approx(10 / 600)
    assert (q["minutes_in_trade"], s["minutes_in_trade"]) == (45.0, 40.0)
    assert (q["signal_id"], q["signal_type"], q["timeframe"], q["conviction"]) == \
        ("live-sig-qqq", "cloud_flip_bullish", "10m", 82)
    # the backtest closed everything
    assert d.active_positions(e, journal[1], now=NOW).empty


def test_exposure_against_the_caps(journal) -> None:
    e, _ = journal
    x = d.exposure(e, "live")
    assert x["equity"] == 100_400.0
    u = x["by_underlying"].set_index("key")
    assert u.loc["QQQ", "net"] == pytest.approx(15_600.0) and u.loc["QQQ", "cap"] == pytest.approx(15_060.0)
    assert u.loc["QQQ", "used"] == pytest.approx(15_600 / 15_060)
    assert u.loc["SPY", "net"] == pytest.approx(-11_800.0) and u.loc["SPY", "gross"] == pytest.approx(11_800.0)
    sec = x["by_sector"].set_index("key")
    assert sec.loc["nasdaq100", "net"] == pytest.approx(15_600.0) and sec.loc["nasdaq100", "cap"] == pytest.approx(30_120.0)
    assert sec.loc["sp500", "net"] == pytest.approx(-11_800.0)
    # caps follow the settings passed
    assert d.exposure(e, "live", max_single=0.10)["by_underlying"].set_index("key").loc["SPY", "cap"] == \
        pytest.approx(10_040.0)


def test_order_book_of_the_backtest_and_live(journal) -> None:
    e, run_id = journal
    hist = d.orders(e, run_id)
    assert hist[["role", "status", "avg_px"]].fillna(-1).values.tolist() == [
        ["exit", "FILLED", 101.99], ["stop", "CANCELED", -1], ["entry:market", "FILLED", 100.01]]
    assert d.orders(e, run_id, working=True).empty
    working = d.orders(e, "live", working=True)
    assert working[["client_order_id", "order_type", "trigger_price", "status"]].values.tolist() == [
        ["O-LIVE-2", "STOP_MARKET", 48.0, "ACCEPTED"]]
    f = d.fills(e, run_id)
    assert f[["side", "quantity", "price"]].values.tolist() == [["SELL", 150.0, 101.99], ["BUY", 150.0, 100.01]]
    assert d.fills(e, run_id, limit=1)["side"].tolist() == ["SELL"]


def test_trade_journal_filters_and_attribution(journal) -> None:
    e, run_id = journal
    t = d.trade_journal(e, run_id)
    (row,) = t.to_dict("records")
    assert (row["ticker"], row["shares"], row["entry_price"], row["exit_price"], row["exit_reason"]) == \
        ("QQQ", 150, 100.01, 101.99, "profit_target")
    assert row["pnl"] == pytest.approx(296.98) and row["signal_type"] == "cloud_flip_bullish"
    assert row["timeframe"] == "10m" and row["conviction"] == 80
    assert d.trade_journal(e, run_id, ticker="qqq").shape[0] == 1
    assert d.trade_journal(e, run_id, ticker="SPY").empty
    assert d.trade_journal(e, run_id, direction="short").empty
    assert d.trade_journal(e, run_id, exit_reason="profit_target").shape[0] == 1
    day = datetime(2025, 6, 16, 4, 0, tzinfo=timezone.utc)
    assert d.trade_journal(e, run_id, start=day, end=day + timedelta(days=1)).shape[0] == 1
    assert d.trade_journal(e, run_id, start=day + timedelta(days=1)).empty
    # live: TQQQ found by its signal ticker QQQ
    assert d.trade_journal(e, "live", ticker="QQQ")["ticker"].tolist() == ["TQQQ"]
    csv = d.to_csv(t).decode().splitlines()
    assert csv[0].startswith("entry_time,exit_time,ticker") and ",296.98," in csv[1]


def test_rejected_signal_reasons(journal) -> None:
    e, run_id = journal
    rej = d.decisions(e, run_id, approved=False)
    assert rej[["reason_code", "conviction"]].values.tolist() == [["low_conviction", 30]]
    assert "30" in rej["reason"].iloc[0]
    assert d.decisions(e, run_id)["approved"].tolist() == [False, True]  # newest first
    assert d.rejection_counts(e, "live").values.tolist() == [["duplicate", 1]]
    assert d.rejection_counts(e, "live", ticker="SPY").empty
    assert d.decisions(e, "live", reason_code="duplicate")["signal_id"].tolist() == ["live-sig-rej"]


def test_daily_pnl_and_drawdown(journal) -> None:
    e, run_id = journal
    live = d.daily_pnl(e, "live")
    assert [str(x) for x in live["date"]] == ["2025-06-16", "2025-06-17"]
    assert live["pnl"].tolist() == [0.0, 400.0] and live["cum_pnl"].tolist() == [0.0, 400.0]
    bt = d.daily_pnl(e, run_id)
    assert bt["pnl"].tolist() == [pytest.approx(296.98)] and bt["realized_pnl"].tolist() == [pytest.approx(296.98)]
    assert bt["trades"].tolist() == [1]
    curve = d.equity_curve(e, run_id)
    assert curve["equity"].iloc[0] == pytest.approx(100_000.0) and curve["equity"].iloc[-1] == pytest.approx(100_296.98)
    assert (curve["drawdown"] <= 0).all() and curve["drawdown"].min() == pytest.approx(-d.max_drawdown(e, run_id)["amount"])
    assert d.max_drawdown(e, "live") == {"amount": 0.0, "pct": 0.0}
    both = d.equity_curves(e, ["live", run_id])
    assert set(both["run_id"]) == {"live", run_id} and (both["run_id"] == "live").sum() == 3


def test_operator_actions_write_control_and_journal(journal) -> None:
    e, _ = journal
    t1 = LIVE_T0 + timedelta(hours=1)
    with pytest.raises(ValueError, match="reason"):
        d.trip_kill_switch(e, "  ", by="alice", now=t1)
    with pytest.raises(ValueError, match="operator"):
        d.trip_kill_switch(e, "news", by=" ", now=t1)
    assert ControlStore(e).kill_switch().active is False  # nothing written by the refusals
    d.trip_kill_switch(e, "FOMC surprise", by="alice", now=t1)
    st = d.control_state(e)
    assert st["kill_switch_active"] is True and st["kill_switch_reason"] == "manual: FOMC surprise"
    assert st["kill_switch_updated_by"] == "alice" and st["kill_switch_updated_at"] == t1
    d.reset_kill_switch(e, by="bob", now=t1 + timedelta(minutes=5))
    st = d.control_state(e)
    assert st["kill_switch_active"] is False and st["kill_switch_updated_by"] == "bob"
    hist = d.kill_switch_history(e, "live")
    assert hist[["kind", "by"]].values.tolist() == [["operator_action", "bob"], ["operator_action", "alice"]]
    assert "FOMC surprise" in hist["message"].iloc[1]
    with pytest.raises(ValueError, match="instrument_mode"):
        d.set_mode(e, "crypto", by="alice", now=t1)
    assert d.set_mode(e, "leveraged_etf", by="alice", now=t1 + timedelta(minutes=6)) == "leveraged_etf"
    st = d.control_state(e)
    assert (st["instrument_mode"], st["mode_updated_by"]) == ("leveraged_etf", "alice")
    acts = d.operator_actions(e)
    assert acts["action"].tolist() == ["instrument_mode", "kill_switch_reset", "kill_switch_trip"]
    assert acts["ts"].iloc[0] == pd.Timestamp(t1 + timedelta(minutes=6))
    assert "was: stock" in acts["message"].iloc[0]
    # operator events do not count as live-node activity
    assert d.last_live_activity(e) == pd.Timestamp(LIVE_T0 + timedelta(minutes=40))


def test_executor_trip_shows_in_history(journal) -> None:
    e, _ = journal
    from strategies.journal import TradeJournalWriter

    w = TradeJournalWriter(e)
    w.record_event(LIVE_T0 + timedelta(minutes=50), "kill_switch", "daily_loss: -10.2% of 100,000", {"x": 1})
    w.record_event(LIVE_T0 + timedelta(minutes=51), "order_failed", "not a kill-switch event")
    hist = d.kill_switch_history(e, "live")
    assert hist[["kind", "message"]].values.tolist() == [["kill_switch", "daily_loss: -10.2% of 100,000"]]


def test_unreachable_or_unmigrated_database_is_one_line(tmp_path) -> None:
    bad = sa.create_engine("postgresql+psycopg://nobody:secret@127.0.0.1:1/none", connect_args={"connect_timeout": 2})
    with pytest.raises(d.DashboardError, match=r"database not reachable \(postgresql\+psycopg://nobody:\*\*\*@127.0.0.1:1/none\)") as ei:
        d.check_database(bad)
    assert "secret" not in str(ei.value) and "\n" not in str(ei.value)
    empty = make_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    with pytest.raises(d.DashboardError, match="no journal tables .*trade-executor db upgrade"):
        d.check_database(empty)
    empty.dispose()


def test_compare_output_folder(tmp_path) -> None:
    import json

    out = tmp_path / "cmp"
    (out / "stock").mkdir(parents=True)
    (out / "compare.csv").write_text("mode,return_pct,trades\nstock,0.5,2\noptions,-0.1,1\n")
    (out / "stock" / "summary.json").write_text(json.dumps({"starting_equity": 1000.0}))
    (out / "stock" / "trades.csv").write_text("exit_time,pnl\n2025-06-16T15:00:00+00:00,10\n"
                                              "2025-06-16T14:00:00+00:00,-4\n")
    assert d.compare_output(out)[["mode", "trades"]].values.tolist() == [["stock", 2], ["options", 1]]
    eq = d.compare_equity(out)
    assert eq["equity"].tolist() == [996.0, 1006.0] and set(eq["mode"]) == {"stock"}
    with pytest.raises(FileNotFoundError, match="compare.csv"):
        d.compare_output(tmp_path)


def test_caps_of_a_run(journal, tmp_path) -> None:
    e, run_id = journal
    assert d.caps_for_run(e, "live") == (0.15, 0.30)  # ExecutorConfig's defaults
    assert d.caps_for_run(e, run_id) == (0.15, 0.30)  # the fixture backtest sets none
    from strategies.journal import TradeJournalWriter

    w = TradeJournalWriter(e, run_id="bt-caps")
    w.start_backtest_run(LIVE_T0, mode="stock", symbols=["QQQ"],
                         params={"executor": {"max_single_stock_exposure": 0.1, "max_sector_exposure": 0.2}})
    assert d.caps_for_run(e, "bt-caps") == (0.1, 0.2)


def test_auto_refresh_only_while_a_live_node_writes() -> None:
    last = pd.Timestamp(LIVE_T0)
    assert d.auto_refresh(None, LIVE_T0) is False
    assert d.auto_refresh(last, LIVE_T0 + timedelta(minutes=9)) is True
    assert d.auto_refresh(last, LIVE_T0 + timedelta(minutes=11)) is False
    assert d.auto_refresh(last, LIVE_T0 + timedelta(minutes=2), window_s=60) is False


def test_open_engine_never_creates_a_journal(tmp_path) -> None:
    missing = tmp_path / "typo" / "journal.db"
    with pytest.raises(d.DashboardError, match="no journal database at .*journal.db"):
        d.open_engine(f"sqlite:///{missing}")
    assert not missing.exists() and not missing.parent.exists()
    with pytest.raises(d.DashboardError, match="cannot open|not a database URL"):
        d.open_engine("nosuchdriver://x/y")
