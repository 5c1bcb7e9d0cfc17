"""Backtest vs live (issue #14 item 6): a recorded paper session replayed and compared per trade.

A real TradingNode against the local Alpaca server records its session (bars of every followed
instrument, the signals); `divergence` imports the bars, replays the signals through the backtest
and matches the trades with the live journal's by signal id, explaining each difference.
"""

from __future__ import annotations

import asyncio
import csv
import json
from datetime import timedelta

import pytest

from adapters.alpaca.fake_server import FakeAlpacaServer
from backtests.divergence import compare_trades, format_report, run_divergence
from strategies.live import LiveSpec
from tests.builders import T0
from tests.node_harness import until
from tests.test_live_alpaca import KEY, SECRET, run_live
from tests.test_live_modes import broker_order, publish_signal, push

slow = pytest.mark.slow


@slow
def test_recorded_session_replays_to_the_same_trade_and_explains_the_fill_price(tmp_path):
    db = f"sqlite:///{tmp_path / 'live.db'}"
    rec = tmp_path / "session"
    seen: dict = {}
    with FakeAlpacaServer(keys={KEY: SECRET}, id_seed=31) as srv:
        spec = LiveSpec(symbols=["QQQ"], mode="stock", db_url=db, api_key=KEY, api_secret=SECRET,
                        trading_url=srv.trading_url, trading_stream_url=srv.stream_url, data_url=srv.data_url,
                        data_stream_url=srv.data_stream_url, calendar="24/7", log_level="ERROR",
                        executor={"eod_minutes_before_close": 1}, control_poll_seconds=1.0, warmup=False,
                        record_dir=str(rec))

        async def scenario(live):
            strat = live.strategy
            t = live.node.kernel.clock.utc_now().replace(second=0, microsecond=0) - timedelta(minutes=1)
            for _ in range(30):
                push(srv, "QQQ", 100.0, t)
                await asyncio.sleep(0.1)
                if "QQQ" in strat.core.last_bar:  # a live bar (not only the seeded price)
                    break
            sig = publish_signal(live, "QQQ", 100.0, 99.0, 102.0)
            await until(lambda: broker_order(srv, "QQQ", "market"), what="the entry at the broker")
            mp = strat.pm.by_signal[sig.signal_id]
            k = 1
            while mp.stop_order_id is None and k < 40:  # the market order fills on the next bar
                push(srv, "QQQ", 100.1, t + timedelta(minutes=k))
                k += 1
                await asyncio.sleep(0.1)
            await until(lambda: broker_order(srv, "QQQ", "stop"), what="the stop at the broker")
            # the next minute trades through the 99 stop: the broker's stop fills
            srv.push_bar("QQQ", {"t": t + timedelta(minutes=k), "o": 100.0, "h": 100.0, "l": 98.5, "c": 98.7,
                                 "v": 10_000})
            await until(lambda: mp.closed, what="the stop-out")
            # the broker fills the stop on its own copy of the bar; the node's copy (the one the
            # recorder writes) may come a moment later: wait for it before stopping the node
            await until(lambda: strat.last_price.get("QQQ") == 98.7, what="the stop-out bar in the node")
            seen.update(signal_id=sig.signal_id, qty=mp.exit_filled_qty, entry_px=mp.position.entry_price)

        run_live(spec, scenario, timeout=90.0)

    meta = json.loads((rec / "session.json").read_text())
    assert meta["mode"] == "stock" and meta["signal_symbols"] == ["QQQ"] and meta["signals"] == 1
    assert meta["starting_equity"] == pytest.approx(100_000.0)
    with (rec / "bars" / "QQQ.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == meta["bars"] >= 3 and rows[-1]["low"] == "98.5", (rows, meta)

    from strategies.cli import main

    assert main(["divergence", str(rec), "--db", db, "--out", str(tmp_path / "cli")]) == 0
    report = run_divergence(rec, db, out_dir=tmp_path / "replay")
    (d,) = report.diffs
    assert d.signal_id == seen["signal_id"]
    assert d.live["ticker"] == d.backtest["ticker"] == "QQQ"
    assert d.live["shares"] == d.backtest["shares"] == seen["qty"]
    assert d.live["exit_reason"] == d.backtest["exit_reason"] == "stop_loss"
    # the same trade; where prices or times differ, the note says why (this test streams its
    # bars faster than real time, so the live fills' broker times run ahead of the bars)
    assert d.verdict in ("same", "differs")
    for note in d.notes:
        assert ("the broker's fill vs the backtest's fill model" in note
                or "live fills carry the broker's time" in note), note
    assert d.live["entry_price"] == pytest.approx(seen["entry_px"])
    text = format_report(report)
    assert seen["signal_id"][:44] in text and ("same 1" in text or "differs 1" in text)
    assert (tmp_path / "replay" / "divergence.csv").is_file()


def _t(sid, *, ticker="QQQ", qty=10, entry=100.0, exit_=99.0, reason="stop_loss", kind="stock", status="closed"):
    return {"signal_id": sid, "ticker": ticker, "instrument_type": kind, "entry_time": T0, "entry_price": entry,
            "shares": qty, "exit_time": T0 + timedelta(minutes=3), "exit_price": exit_, "exit_reason": reason,
            "status": status, "pnl": None}


def test_compare_explains_every_kind_of_difference():
    live = [_t("a"), _t("b", entry=100.04, qty=12), _t("c"), _t("o", ticker="QQQ250701C00100000", kind="option")]
    bt = [_t("a"), _t("b", entry=100.01, qty=10), _t("d")]
    diffs = {d.signal_id: d for d in compare_trades(
        live, bt, live_why={"d": ("max_daily_trades", "40 trades today")},
        backtest_why={"c": ("stale_signal", "signal 130 s old")})}
    assert diffs["a"].verdict == "same" and diffs["a"].notes == []
    assert diffs["b"].verdict == "differs"
    assert diffs["b"].notes == [
        "quantity: live 12, backtest 10 (sizing on the broker's equity and buying power live, on the simulated "
        "account in the backtest)",
        "entry price: live 100.0400, backtest 100.0100 (+0.0300: the broker's fill vs the backtest's fill model)"]
    assert diffs["c"].verdict == "live_only"
    assert diffs["c"].notes == ["the backtest did not trade it: stale_signal (signal 130 s old)"]
    assert diffs["d"].verdict == "backtest_only"
    assert diffs["d"].notes == ["live did not trade it: max_daily_trades (40 trades today)"]
    assert diffs["o"].verdict == "not_replayable"


def test_divergence_cli_refuses_a_folder_without_a_session(tmp_path, capsys):
    from strategies.cli import main

    assert main(["divergence", str(tmp_path), "--db", f"sqlite:///{tmp_path / 'j.db'}"]) == 2
    err = capsys.readouterr().err
    assert "no session.json" in err and str(tmp_path) in err
