"""End-to-end backtests on NautilusTrader's real BacktestEngine.

Fixture: one regular session (Mon 2025-06-16) of crafted QQQ 1-minute bars and one fixed signal
replayed from a signal catalog, so that the single round trip can be computed by hand:

  bars close 100.00 flat 09:30-10:00 ET, then +0.10 per minute; the signal (long, conviction 80,
  entry 100.00, stop 99.00, target 102.00) is stamped at the 10:00 bar close.
  size: risk 5% x 100,000 = 5,000 / stop distance 1.00 = 5,000 shares, x1.0 (conviction >= 75),
        capped by single-stock exposure 15% x 100,000 = 15,000 / 100.00 = 150 shares
  entry: market at the 10:00 close 100.00 + 1 tick slippage = 100.01
  exit : close reaches 102.00 at 10:20 -> profit_target, market sell 102.00 - 0.01 = 101.99
  fees : rates in force on the trade date 2025-06-16 (adapters/fees.py schedule): buy 0;
         sell SEC $0.00 per $1M (from 2025-05-14) -> 0 + FINRA TAF 150 x 0.000166 = 0.0249 -> 0.02
         (under the old undated $27.80/$1M rate: + SEC 150 x 101.99 x 27.80e-6 = 0.4253 -> 0.45)
  pnl  : (101.99 - 100.01) x 150 - 0.02 = 297.00 - 0.02 = 296.98
"""

from __future__ import annotations

import csv
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from backtests import catalog_io
from backtests.runner import BacktestArgumentError, BacktestSpec, run_backtest, write_signals
from strategies.signal_data import TradeSignalData
from strategies.trade_executor import TradeSignal

SESSION_OPEN = datetime(2025, 6, 16, 13, 30, tzinfo=timezone.utc)  # 09:30 ET


def write_bars_csv(path: Path, closes: list[float], start: datetime = SESSION_OPEN, volume: int = 10_000) -> Path:
    """Rows labelled by bar open; open = previous close, high/low 0.02 around the body."""
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["timestamp", "open", "high", "low", "close", "volume"])
        prev = closes[0]
        for i, c in enumerate(closes):
            o = prev
            w.writerow([(start + timedelta(minutes=i)).isoformat(), f"{o:.2f}", f"{max(o, c) + 0.02:.2f}",
                        f"{min(o, c) - 0.02:.2f}", f"{c:.2f}", volume])
            prev = c
    return path


def fixture_closes() -> list[float]:
    flat = [100.00] * 30  # bars closing 09:31 ... 10:00
    up = [round(100.00 + 0.10 * k, 2) for k in range(1, 61)]  # 10:01 ... 11:00
    return flat + up


def fixture_signal(**over) -> TradeSignal:
    kw = dict(signal_type="cloud_flip_bullish", direction="long", ticker="QQQ", timeframe="10m",
              conviction=80, entry_price=100.00, stop_loss=99.00, target_price=102.00, cloud_states=[],
              timestamp=SESSION_OPEN + timedelta(minutes=30), metadata={"volume_confirmed": True})
    kw.update(over)
    return TradeSignal(**kw)


@pytest.fixture
def fixture_catalog(tmp_path: Path) -> Path:
    catalog = tmp_path / "catalog"
    csv_path = write_bars_csv(tmp_path / "QQQ.csv", fixture_closes())
    catalog_io.import_files(catalog, [csv_path], tz="UTC", label="open")
    return catalog


def signals_catalog(tmp_path: Path, signals: list[TradeSignal]) -> Path:
    path = tmp_path / "signals"
    rows = []
    for s in signals:
        ns = int(s.timestamp.timestamp() * 1e9)
        rows.append(TradeSignalData.from_signal(s, ts_event=ns, ts_init=ns))
    write_signals(path, rows)
    return path


def test_single_trade_to_the_cent(tmp_path, fixture_catalog):
    out = tmp_path / "out"
    result = run_backtest(BacktestSpec(
        catalog=fixture_catalog, symbols=["QQQ"], mode="stock", out_dir=out, progress=False,
        signals_catalog=signals_catalog(tmp_path, [fixture_signal()]),
    ))
    trades = result.log.trades
    assert len(trades) == 1
    t = trades[0]
    assert t["ticker"] == "QQQ" and t["direction"] == "long" and t["shares"] == 150
    assert t["entry_price"] == pytest.approx(100.01, abs=1e-9)
    assert t["exit_price"] == pytest.approx(101.99, abs=1e-9)
    assert t["exit_reason"] == "profit_target"
    assert t["pnl"] == pytest.approx(296.98, abs=0.005)  # 297.00 - fees 0.02
    assert t["entry_time"] == SESSION_OPEN + timedelta(minutes=30)
    assert t["exit_time"] == SESSION_OPEN + timedelta(minutes=50)
    assert json.loads(t["metadata_json"])["fees"] == pytest.approx(0.02)  # TAF 0.0249, SEC $0 on 2025-06-16

    s = result.summary
    assert s["trades"] == 1 and s["win_rate"] == 1.0
    assert s["ending_equity"] == pytest.approx(100_296.98, abs=0.005)
    assert s["total_return_pct"] == pytest.approx(0.2970, abs=1e-4)  # 296.98 / 100,000 = 0.29698 % -> 4 dp
    assert s["exits_by_reason"] == {"profit_target": 1}
    assert s["signals_received"] == 1 and s["signals_approved"] == 1 and s["signals_rejected"] == 0
    assert s["fees"] == pytest.approx(0.02)

    # outputs on disk
    summary = json.loads((out / "summary.json").read_text())
    assert summary["ending_equity"] == pytest.approx(100_296.98, abs=0.005)
    with (out / "trades.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 1 and rows[0]["exit_reason"] == "profit_target" and float(rows[0]["pnl"]) == 296.98
    assert "signal_id" in rows[0] and "metadata_json" in rows[0]
    html = (out / "report.html").read_text()
    # equity and drawdown charts: Plotly (the dashboard's library) when installed, else inline SVG
    assert ('id="equity"' in html or "<polyline" in html) and "drawdown" in html.lower()


def test_stop_loss_exit_and_rejections_are_recorded(tmp_path):
    # price falls after the entry: 100.00 flat, then -0.10 per minute; the close reaches the stop
    # 99.00 at 10:10. The protective stop resting at the venue (sell stop 99.00) triggers inside
    # that bar (O 99.10, L 98.98): the bar opened above the stop, so the price passed 99.00 on its
    # way down and the stop fills at its trigger minus one tick of slippage = 98.99.
    closes = [100.00] * 30 + [round(100.00 - 0.10 * k, 2) for k in range(1, 31)]
    catalog = tmp_path / "catalog"
    catalog_io.import_files(catalog, [write_bars_csv(tmp_path / "QQQ.csv", closes)], tz="UTC", label="open")
    sigs = [
        fixture_signal(),
        # same ticker, same direction, 5 minutes later: duplicate
        fixture_signal(signal_type="cloud_bounce_long", timestamp=SESSION_OPEN + timedelta(minutes=35),
                       entry_price=99.50, stop_loss=98.50, target_price=101.50),
        # low conviction
        fixture_signal(signal_type="trend_aligned_long", conviction=40,
                       timestamp=SESSION_OPEN + timedelta(minutes=36), entry_price=99.40, stop_loss=98.4,
                       target_price=101.4),
    ]
    result = run_backtest(BacktestSpec(catalog=catalog, symbols=["QQQ"], mode="stock", progress=False,
                                       signals_catalog=signals_catalog(tmp_path, sigs)))
    (t,) = result.log.trades
    assert t["exit_reason"] == "stop_loss"
    assert t["exit_price"] == pytest.approx(98.99)
    # (98.99 - 100.01) x 150 = -153.00; fees on 2025-06-16: SEC $0 + TAF 150 x 0.000166 = 0.0249 -> 0.02
    assert t["pnl"] == pytest.approx(-153.02, abs=0.005)
    assert json.loads(t["metadata_json"])["exit_order_id"] is None  # the resting stop filled
    assert result.summary["rejected_by_reason"] == {"duplicate": 1, "low_conviction": 1}
    reasons = {d.reason_code: d for d in result.log.decisions if not d.approved}
    assert reasons["low_conviction"].reason.startswith("low_conviction:")
    assert "40" in reasons["low_conviction"].reason


def test_eod_close_on_early_close_day(tmp_path):
    # 2025-07-03 closes at 13:00 ET: the day trade must be closed at 12:55 ET (16:55 UTC).
    open_ = datetime(2025, 7, 3, 13, 30, tzinfo=timezone.utc)
    closes = [100.00] * 210  # 09:30 -> 13:00 ET, flat: no stop, no target
    catalog = tmp_path / "catalog"
    catalog_io.import_files(catalog, [write_bars_csv(tmp_path / "QQQ.csv", closes, start=open_)], tz="UTC")
    sig = fixture_signal(timestamp=open_ + timedelta(minutes=30))
    result = run_backtest(BacktestSpec(catalog=catalog, symbols=["QQQ"], mode="stock", progress=False,
                                       executor={"time_stop_minutes": 100_000},
                                       signals_catalog=signals_catalog(tmp_path, [sig])))
    (t,) = result.log.trades
    assert t["exit_reason"] == "eod_close"
    assert t["exit_time"] == datetime(2025, 7, 3, 16, 55, tzinfo=timezone.utc)


def test_bad_arguments_give_clear_errors(tmp_path, fixture_catalog):
    with pytest.raises(BacktestArgumentError, match="catalog not found"):
        run_backtest(BacktestSpec(catalog=tmp_path / "nope", symbols=["QQQ"], progress=False))
    with pytest.raises(BacktestArgumentError, match="unknown symbol XYZ.*available: QQQ"):
        run_backtest(BacktestSpec(catalog=fixture_catalog, symbols=["XYZ"], progress=False))
    with pytest.raises(BacktestArgumentError, match="empty period"):
        run_backtest(BacktestSpec(catalog=fixture_catalog, symbols=["QQQ"], start="2024-01-01",
                                  end="2024-02-01", progress=False))
    with pytest.raises(BacktestArgumentError, match="empty period: end"):
        run_backtest(BacktestSpec(catalog=fixture_catalog, symbols=["QQQ"], start="2025-06-17",
                                  end="2025-06-16", progress=False))
    with pytest.raises(BacktestArgumentError, match="mode"):
        run_backtest(BacktestSpec(catalog=fixture_catalog, symbols=["QQQ"], mode="crypto", progress=False))
    with pytest.raises(ValueError, match="max_risk_per_trade"):
        run_backtest(BacktestSpec(catalog=fixture_catalog, symbols=["QQQ"], executor={"max_risk_per_trade": 5},
                                  progress=False))


def test_backtest_journals_to_the_database(tmp_path, fixture_catalog, db_url):
    # db_url: SQLite, and the local PostgreSQL in a schema of its own (skipped only when absent)
    import sqlalchemy as sa

    url = db_url
    sigs = [fixture_signal(), fixture_signal(signal_type="trend_aligned_long", conviction=30,
                                             timestamp=SESSION_OPEN + timedelta(minutes=31))]
    result = run_backtest(BacktestSpec(catalog=fixture_catalog, symbols=["QQQ"], mode="stock", progress=False,
                                       db_url=url, signals_catalog=signals_catalog(tmp_path, sigs)))
    run_id = result.summary["journal"]["run_id"]
    engine = sa.create_engine(url)
    with engine.connect() as c:
        trades = c.execute(sa.text("select ticker, shares, exit_reason, pnl, status, run_id from trade_executions")).all()
        decisions = c.execute(sa.text(
            "select approved, reason_code, reason from signal_decisions where run_id = :r order by ts"), {"r": run_id}).all()
    assert trades == [("QQQ", 150, "profit_target", 296.98, "closed", run_id)]  # see module docstring
    assert [(bool(d[0]), d[1]) for d in decisions] == [(True, None), (False, "low_conviction")]
    assert "30" in decisions[1][2]  # the rejection carries the number that failed
    with engine.connect() as c:
        daily = c.execute(sa.text("select date, realized_pnl, total_trades, winning_trades from daily_pnl "
                                  "where run_id = :r"), {"r": run_id}).all()
        runs = c.execute(sa.text("select mode, summary_json from backtest_runs where run_id = :r"), {"r": run_id}).all()
    engine.dispose()
    assert [(str(d[0]), round(d[1], 2), d[2], d[3]) for d in daily] == [("2025-06-16", 296.98, 1, 1)]
    summary = runs[0][1] if isinstance(runs[0][1], dict) else json.loads(runs[0][1])  # JSONB: a dict; SQLite: text
    assert runs[0][0] == "stock" and summary["ending_equity"] == pytest.approx(100_296.98)
