"""The journal the dashboard tests read (tests/test_dashboard_data.py, tests/test_dashboard_browser.py).

* A REAL backtest (tests/test_backtest_e2e.py's hand-computed round trip, journaled with --db):
  one long QQQ trade, 150 shares, entry 100.01, exit 101.99 at the 2R target, P&L 296.98; a second
  signal (conviction 30) rejected ``low_conviction``; its order book: market entry FILLED, stop
  CANCELED, market exit FILLED.
* The live executor's state, as a running node journals it (the writer's own API, run id
  ``live``): an open TQQQ long taken on a QQQ signal (3x; 100 shares at 50.00, marked at 52.00,
  stop 48.00, target 54.00), an open SPY short (20 shares at 600.00, marked at 590.00), its
  decisions, the protective stop still working, two equity points on two sessions and the mode
  ``stock`` set by the CLI.

Numbers the tests assert, worked out by hand:
  TQQQ unrealised: (52.00 - 50.00) x 100 = +200.00;  SPY: (600.00 - 590.00) x 20 = +200.00
  exposure vs equity 100,400.00: QQQ 3 x 52.00 x 100 = +15,600.00 (cap 15 % = 15,060.00, used 1.0359)
                                 SPY -590.00 x 20 = -11,800.00 (used 0.7835)
  sector: nasdaq100 +15,600.00 (cap 30 % = 30,120.00), sp500 -11,800.00
  live daily P&L: 2025-06-16 end 100,000.00 -> 2025-06-17 end 100,400.00: +400.00
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

from backtests import catalog_io
from backtests.runner import BacktestSpec, run_backtest
from strategies.journal import ControlStore, TradeJournalWriter, upgrade
from strategies.execution_log import TRADE_COLUMNS, DecisionRecord
from strategies.journal.models import OrderRecord
from tests.test_backtest_e2e import SESSION_OPEN, fixture_closes, fixture_signal, signals_catalog, write_bars_csv

LIVE_T0 = datetime(2025, 6, 17, 14, 0, tzinfo=timezone.utc)  # 10:00 ET, the live positions' entry
NOW = LIVE_T0 + timedelta(minutes=45)  # what the tests call "now"


def run_fixture_backtest(tmp_path: Path, url: str) -> str:
    """The hand-computed backtest (module docstring) journaled to ``url``; returns its run id."""
    catalog = tmp_path / "catalog"
    if not catalog.exists():
        catalog_io.import_files(catalog, [write_bars_csv(tmp_path / "QQQ.csv", fixture_closes())], tz="UTC",
                                label="open")
    sigs = [fixture_signal(), fixture_signal(signal_type="trend_aligned_long", conviction=30,
                                             timestamp=SESSION_OPEN + timedelta(minutes=31))]
    result = run_backtest(BacktestSpec(catalog=catalog, symbols=["QQQ"], mode="stock", progress=False, db_url=url,
                                       signals_catalog=signals_catalog(tmp_path, sigs)))
    return result.summary["journal"]["run_id"]


def _trade_row(**kw) -> dict:
    row = {c: None for c in TRADE_COLUMNS}
    row.update(kw)
    return row


def write_live_state(url: str) -> None:
    """The live executor's rows (module docstring), through the journal writer a node uses."""
    upgrade(url)
    w = TradeJournalWriter(url)  # run id "live"
    try:
        w.record_open_trade(_trade_row(
            signal_id="live-sig-qqq", ticker="TQQQ", instrument_type="leveraged_etf", original_ticker="QQQ",
            leverage=3.0, direction="long", trade_type="day", entry_price=50.00, shares=100, stop_loss=48.00,
            target_price=54.00, conviction=82, status="open", broker="alpaca", order_id="O-LIVE-1",
            entry_time=LIVE_T0, metadata_json={}))
        w.record_open_trade(_trade_row(
            signal_id="live-sig-spy", ticker="SPY", instrument_type="stock", original_ticker="SPY", leverage=1.0,
            direction="short", trade_type="scalp", entry_price=600.00, shares=20, stop_loss=605.00,
            target_price=590.00, conviction=77, status="open", broker="alpaca", order_id="O-LIVE-3",
            entry_time=LIVE_T0 + timedelta(minutes=5), metadata_json={}))
        w.mark_price("TQQQ", 52.00, LIVE_T0 + timedelta(minutes=40))
        w.mark_price("SPY", 590.00, LIVE_T0 + timedelta(minutes=40))
        for sid, tkr, st, tf, conv, direction in (("live-sig-qqq", "QQQ", "cloud_flip_bullish", "10m", 82, "long"),
                                                  ("live-sig-spy", "SPY", "cloud_flip_bearish", "1m", 77, "short")):
            w.record_decision(DecisionRecord(ts=LIVE_T0, signal_id=sid, ticker=tkr, timeframe=tf, signal_type=st,
                                             direction=direction, conviction=conv, approved=True, reason_code=None,
                                             reason="approved", instrument=tkr, instrument_type="stock",
                                             shares=100, details={}, order_ids=[]))
        w.record_decision(DecisionRecord(ts=LIVE_T0 + timedelta(minutes=10), signal_id="live-sig-rej", ticker="QQQ",
                                         timeframe="10m", signal_type="cloud_bounce_long", direction="long",
                                         conviction=81, approved=False, reason_code="duplicate",
                                         reason="duplicate: already long QQQ (live-sig-qqq)", instrument=None,
                                         instrument_type=None, shares=0, details={}, order_ids=[]))
        w.record_order(OrderRecord(
            run_id="live", client_order_id="O-LIVE-2", venue_order_id="v-2", strategy_id="ExecutorStrategy-000",
            instrument_id="TQQQ.ALPACA", ticker="TQQQ", side="SELL", order_type="STOP_MARKET", time_in_force="DAY",
            quantity=100, filled_qty=0, price=None, trigger_price=48.00, avg_px=None, status="ACCEPTED",
            reduce_only=True, signal_id="live-sig-qqq", role="stop", tags=["signal=live-sig-qqq", "role=stop"],
            last_event="OrderAccepted", reason=None, created_at=LIVE_T0, updated_at=LIVE_T0 + timedelta(seconds=1)))
        w.record_equity(datetime(2025, 6, 16, 20, 0, tzinfo=timezone.utc), 100_000.00)
        w.record_equity(LIVE_T0, 100_100.00)
        w.record_equity(LIVE_T0 + timedelta(minutes=40), 100_400.00)
    finally:
        w.close()
    ControlStore(url).set_instrument_mode("stock", by="cli", now=LIVE_T0 - timedelta(hours=1))


def build_journal(tmp_path: Path, url: str) -> str:
    """Backtest + live state in one journal; returns the backtest's run id."""
    run_id = run_fixture_backtest(tmp_path, url)
    write_live_state(url)
    return run_id
