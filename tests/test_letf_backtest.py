"""Leveraged-ETF backtests on synthetic fund bars, and the letf-tracking command.

Fixture (one session, Mon 2025-06-16, crafted QQQ 1-minute bars; rows labelled by bar open):

  QQQ: the first bar opens and closes at 100.00, then +0.05 per minute to 100.50 (09:41 close),
       flat 100.50 until the 10:00 close, then +0.10 per minute (100.50 + 0.10 k at 10:00 + k min).
  No TQQQ/SQQQ bars in the catalog: both are synthesised from QQQ (the catalog's nasdaq100 funds,
  fed by the nasdaq100 index ETF QQQ), start 50.00 at QQQ's first bar open 100.00:
       TQQQ(t) = 50 · (1 + 3 · (S(t)/100 − 1)) = 1.5 · S − 100   (same session: no reset yet)
       SQQQ(t) = 50 · (1 − 3 · (S(t)/100 − 1)) = 200 − 1.5 · S
  Signal: QQQ 10m long at the 10:00 close, conviction 80, entry 100.50, stop 99.50, target 102.50.
  Route: leveraged_etf mode, long day trade -> TQQQ (+3x). TQQQ at 10:00 = 1.5 · 100.50 − 100 = 50.75
  size : risk 5,000 / (50.75 · 3 · 1/100.50) = 3,300 shares, capped by single-stock exposure
         15% · 100,000 = 15,000 of QQQ exposure / (3 · 50.75) = 98.52 -> 98 shares
  entry: market at the 10:00 close 50.75 + 1 tick = 50.76
  exit : ETF target = 50.75 · (1 + 3 · 2.00/100.50) = 53.7799 (the signal's 2.00 move, levered);
         TQQQ closes 53.75 at 10:20 (S 102.50), 53.90 at 10:21 (S 102.60) -> profit_target,
         market sell 53.90 − 0.01 = 53.89
  fees : rates in force on 2025-06-16 (adapters/fees.py schedule): SEC $0.00 per $1M (from
         2025-05-14) + TAF 98 · 0.000166 = 0.0163 -> 0.02 (the old undated $27.80/$1M rate added
         SEC 98 · 53.89 · 27.80e-6 = 0.1468 -> 0.16)
  pnl  : (53.89 − 50.76) · 98 − 0.02 = 306.74 − 0.02 = 306.72
  decay: (3 · (102.60/100.50 − 1) − (53.90/50.75 − 1)) · 98 · 50.75 = 3.0716 (the fund re-levers
         from its 50.00 base, not from the entry, so an intraday gain lags 3x slightly)
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from backtests import catalog_io
from backtests.letf_bars import (
    UNDERLYING_PROXIES,
    decay_costs,
    fund_terms,
    plan_synthetic_funds,
    reachable_funds,
    underlying_for,
)
from backtests.runner import BacktestSpec, run_backtest
from strategies.trade_executor import ExecutorConfig
from tests.test_backtest_e2e import SESSION_OPEN, fixture_signal, signals_catalog, write_bars_csv

SIGNAL_TIME = SESSION_OPEN + timedelta(minutes=30)  # the 10:00 ET bar close


def qqq_closes(sign: int = 1) -> list[float]:
    first = [100.00] + [round(100.00 + sign * 0.05 * k, 2) for k in range(1, 11)]  # 09:31 .. 09:41
    flat = [round(100.00 + sign * 0.50, 2)] * 19  # .. 10:00
    move = [round(100.00 + sign * (0.50 + 0.10 * k), 2) for k in range(1, 61)]  # 10:01 .. 11:00
    return first + flat + move


def qqq_at(closes: list[float], when: datetime) -> float:
    """Close of the QQQ bar closing at ``when``."""
    return closes[int((when - SESSION_OPEN).total_seconds() // 60) - 1]


def make_catalog(tmp_path: Path, closes: list[float], extra: dict[str, list[float]] | None = None) -> Path:
    catalog = tmp_path / "catalog"
    files = [write_bars_csv(tmp_path / "QQQ.csv", closes)]
    for sym, cl in (extra or {}).items():
        files.append(write_bars_csv(tmp_path / f"{sym}.csv", cl))
    catalog_io.import_files(catalog, files, tz="UTC", label="open")
    return catalog


def test_long_signal_trades_synthetic_tqqq_to_the_cent(tmp_path):
    closes = qqq_closes(+1)
    out = tmp_path / "out"
    sig = fixture_signal(entry_price=100.50, stop_loss=99.50, target_price=102.50)
    result = run_backtest(BacktestSpec(
        catalog=make_catalog(tmp_path, closes), symbols=["QQQ"], mode="leveraged_etf", out_dir=out,
        progress=False, signals_catalog=signals_catalog(tmp_path, [sig])))
    (t,) = result.log.trades
    assert t["ticker"] == "TQQQ" and t["instrument_type"] == "leveraged_etf" and t["leverage"] == 3.0
    assert t["entry_time"] == SIGNAL_TIME
    assert t["entry_price"] == pytest.approx(50.76, abs=1e-9)  # 1.5 x 100.50 - 100 = 50.75, + 1 tick
    assert t["shares"] == 98
    assert t["exit_time"] == SIGNAL_TIME + timedelta(minutes=21) and t["exit_reason"] == "profit_target"
    s_exit = qqq_at(closes, t["exit_time"])
    assert s_exit == 102.60
    assert t["exit_price"] == pytest.approx(round(1.5 * s_exit - 100.0, 2) - 0.01, abs=1e-9)  # 53.89
    assert t["pnl"] == pytest.approx(306.72, abs=0.005)  # 306.74 - fees 0.02 (docstring)

    s = result.summary
    assert s["synthetic_instruments"] == {
        "SQQQ": {"underlying": "QQQ", "leverage": -3.0, "start_price": 50.0, "expense_ratio": 0.0095,
                 "rate": 0.0, "catalog_key": "bull_qqq_3x", "base_price": 100.0, "model": "daily_reset"},
        "TQQQ": {"underlying": "QQQ", "leverage": 3.0, "start_price": 50.0, "expense_ratio": 0.0086,
                 "rate": 0.0, "catalog_key": "bull_qqq_3x", "base_price": 100.0, "model": "daily_reset"},
    }
    assert s["etf_bars_unavailable"] == {}
    assert s["traded_symbols"] == ["QQQ", "SQQQ", "TQQQ"]
    # decay: (3 x R_QQQ - R_TQQQ) x 98 x 50.75 between the entry and exit bar closes
    (row,) = result.letf_decay_trades
    assert row["decay"] == pytest.approx(3.0716, abs=1e-4)
    assert row["notional"] == pytest.approx(4973.50) and row["underlying"] == "QQQ"
    assert s["letf_decay"] == {"total": 3.07, "trades": 1, "estimated": 1}

    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["synthetic_instruments"]) == {"SQQQ", "TQQQ"}
    html = (out / "report.html").read_text()
    assert 'class="synthetic"' in html and "TQQQ (+3x daily-reset from QQQ, start 50.00)" in html
    assert "TQQQ (synthetic)" in html


def test_short_signal_buys_synthetic_sqqq(tmp_path):
    closes = qqq_closes(-1)  # mirror image: 100.00 -> 99.50 at 10:00, then -0.10 per minute
    sig = fixture_signal(signal_type="cloud_flip_bearish", direction="short", entry_price=99.50,
                         stop_loss=100.50, target_price=97.50)
    result = run_backtest(BacktestSpec(
        catalog=make_catalog(tmp_path, closes), symbols=["QQQ"], mode="leveraged_etf", progress=False,
        signals_catalog=signals_catalog(tmp_path, [sig])))
    (t,) = result.log.trades
    # SQQQ at 10:00 = 200 - 1.5 x 99.50 = 50.75 -> fill 50.76; 15,000 / (3 x 50.75) -> 98 shares
    assert t["ticker"] == "SQQQ" and t["leverage"] == -3.0 and t["direction"] == "long"
    assert t["entry_price"] == pytest.approx(50.76, abs=1e-9) and t["shares"] == 98
    s_exit = qqq_at(closes, t["exit_time"])
    assert t["exit_price"] == pytest.approx(round(200.0 - 1.5 * s_exit, 2) - 0.01, abs=1e-9)


def test_real_catalog_bars_win_over_synthetic(tmp_path):
    closes = qqq_closes(+1)
    tqqq = [60.00] * 30 + [round(60.00 + 0.30 * k, 2) for k in range(1, 61)]
    sig = fixture_signal(entry_price=100.50, stop_loss=99.50, target_price=102.50)
    result = run_backtest(BacktestSpec(
        catalog=make_catalog(tmp_path, closes, {"TQQQ": tqqq}), symbols=["QQQ"], mode="leveraged_etf",
        progress=False, signals_catalog=signals_catalog(tmp_path, [sig])))
    (t,) = result.log.trades
    assert t["ticker"] == "TQQQ" and t["entry_price"] == pytest.approx(60.01, abs=1e-9)  # real bar 60.00
    assert set(result.summary["synthetic_instruments"]) == {"SQQQ"}  # only the fund without bars
    assert "TQQQ" in result.summary["traded_symbols"]


def test_synthesis_off_rejects_with_no_instrument(tmp_path):
    sig = fixture_signal(entry_price=100.50, stop_loss=99.50, target_price=102.50)
    result = run_backtest(BacktestSpec(
        catalog=make_catalog(tmp_path, qqq_closes(+1)), symbols=["QQQ"], mode="leveraged_etf",
        progress=False, synthesize_etfs=False, signals_catalog=signals_catalog(tmp_path, [sig])))
    assert result.log.trades == []
    assert result.summary["rejected_by_reason"] == {"no_instrument": 1}
    assert result.summary["synthetic_instruments"] == {}
    assert set(result.summary["etf_bars_unavailable"]) == {"SQQQ", "TQQQ"}


def test_fund_universe_and_underlying_mapping():
    cfg = ExecutorConfig(instrument_mode="leveraged_etf")
    assert reachable_funds(["QQQ", "SPY", "NVDA", "AAPL"], cfg) == {
        "SOXL": ["NVDA"], "SOXS": ["NVDA"], "SPXL": ["SPY"], "SPXS": ["SPY"], "SQQQ": ["QQQ"],
        "TECL": ["AAPL"], "TECS": ["AAPL"], "TQQQ": ["QQQ"]}
    # stock / options modes never route to a fund; both mode does (day trades)
    assert reachable_funds(["QQQ"], ExecutorConfig(instrument_mode="stock")) == {}
    assert reachable_funds(["QQQ"], ExecutorConfig(instrument_mode="both")) == {"SQQQ": ["QQQ"], "TQQQ": ["QQQ"]}
    assert underlying_for("SOXL", ["NVDA", "SMH"]) == "SMH"
    assert underlying_for("SOXL", ["NVDA", "SMH", "SOXX"]) == "SOXX"
    assert underlying_for("SOXL", ["NVDA"]) is None  # single stocks are not index proxies
    assert underlying_for("SOXL", ["NVDA"], {"SOXL": "NVDA"}) == "NVDA"  # explicit override
    assert fund_terms("SVXY")["leverage"] == -0.5 and fund_terms("SPXS")["expense_ratio"] == 0.0107
    real, synth, missing = plan_synthetic_funds(["QQQ", "AAPL"], ["AAPL", "QQQ", "SQQQ"], cfg,
                                                start_prices={"TQQQ": 80})
    assert real == ["SQQQ"]
    assert [(f.ticker, f.underlying, f.leverage, f.start_price) for f in synth] == [("TQQQ", "QQQ", 3.0, 80.0)]
    assert set(missing) == {"TECL", "TECS"} and "XLK" in missing["TECL"]
    # every sector key of the catalog has a proxy list (possibly empty)
    from strategies.trade_executor.etf_catalog import SECTOR_ETF_KEYS

    assert set(UNDERLYING_PROXIES) == set(SECTOR_ETF_KEYS)


def test_decay_cost_of_an_overnight_hold_by_hand():
    """Decay on made-up bars: underlying 100 -> 110 -> 99 over two closes; the 3x fund 50 -> 65 ->
    47.45 (daily reset, no costs). L x R_u = 3 x (99/100 - 1) = -3 %, R_f = 47.45/50 - 1 = -5.1 %:
    decay = (-0.03 + 0.051) x 10 x 50 = 10.50."""
    from nautilus_trader.model.data import Bar, BarType
    from nautilus_trader.model.objects import Price, Quantity

    def bars(sym, pts):
        bt = BarType.from_str(f"{sym}.XNAS-1-MINUTE-LAST-EXTERNAL")
        return [Bar(bt, Price.from_str(f"{p:.2f}"), Price.from_str(f"{p:.2f}"), Price.from_str(f"{p:.2f}"),
                    Price.from_str(f"{p:.2f}"), Quantity.from_int(1), ts, ts) for ts, p in pts]

    t0 = datetime(2025, 6, 16, 19, 0, tzinfo=timezone.utc)
    t1 = t0 + timedelta(days=2)
    ns = lambda d: int(d.timestamp() * 1e9)  # noqa: E731
    u = bars("QQQ", [(ns(t0), 100.0), (ns(t0 + timedelta(days=1)), 110.0), (ns(t1), 99.0)])
    f = bars("TQQQ", [(ns(t0), 50.0), (ns(t0 + timedelta(days=1)), 65.0), (ns(t1), 47.45)])
    trade = {"instrument_type": "leveraged_etf", "ticker": "TQQQ", "leverage": 3.0, "shares": 10,
             "entry_time": t0, "exit_time": t1 + timedelta(seconds=30), "signal_id": "x"}
    out = decay_costs([trade], {"QQQ": u, "TQQQ": f}, {"TQQQ": "QQQ"})
    assert out["total"] == pytest.approx(10.50) and out["estimated"] == 1


def test_letf_tracking_command_on_real_qqq_tqqq(shared_data, tmp_path, capsys):
    from strategies.cli import main

    d = shared_data / "intraday-1min"
    u, e = d / "QQQ_1min_2025-04-30_2025-06-13.csv", d / "TQQQ_1min_2025-04-30_2025-06-13.csv"
    if not (u.is_file() and e.is_file()):
        pytest.skip(f"{u.name} / {e.name} not in {d}")
    out = tmp_path / "te.json"
    rc = main(["letf-tracking", "--underlying", str(u), "--etf", str(e), "--leverage", "3",
               "--expense-ratio", "0.0086", "--tz", "UTC", "--out", str(out)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "sessions 31" in text and "daily tracking error" in text
    r = json.loads(out.read_text())
    assert r["synthetic"] is True and r["leverage"] == 3.0 and r["sessions"] == 31
    assert r["start_close_utc"] == "2025-04-30 20:00:00+00:00" and r["start_price"] == pytest.approx(54.83)
    assert r["daily_cost"] == pytest.approx(0.0086 / 252)
    assert len(r["daily_synthetic_returns"]) == len(r["daily_real_returns"]) == 31
    # TQQQ really is a 3x daily-reset fund on QQQ: beta ~3, a few bp of daily tracking error
    assert r["real_beta"] == pytest.approx(3.0, abs=0.02)
    assert r["daily_te_mean_abs_bp"] == pytest.approx(4.48, abs=0.01)
    assert r["intraday_reanchored_mean_abs_dev_bp"] == pytest.approx(3.40, abs=0.01)
    # naive timestamps without --tz: a clear error, exit code 2
    assert main(["letf-tracking", "--underlying", str(u), "--etf", str(e), "--leverage", "3"]) == 2
    assert "--tz" in capsys.readouterr().err
