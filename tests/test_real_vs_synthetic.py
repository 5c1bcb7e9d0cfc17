"""Real vs synthetic leveraged-ETF bars: ``BacktestSpec.force_synthetic`` and the extra replay of
``trade-executor compare``.

Fixture (one session, Mon 2025-06-16, crafted 1-minute bars, rows labelled by bar open; open =
previous close, high/low 0.05 around the body):

  QQQ   100.00 flat to the 10:00 close, +0.05 per minute to 101.00 (10:20 close), 104.00 from the
        10:21 close to the 10:30 close.
  TQQQ  "real" bars: the exact daily-reset formula started at 60.00 at QQQ's first open 100.00,
        applied to every QQQ open/high/low/close,
            F(S) = 60 · (1 + 3 · (S/100 − 1)) = 1.8 · S − 120     (one session: no reset),
        plus a known perturbation: +0.05 on every price from the 09:45 bar on.
  The synthetic TQQQ (forced) starts at the real fund's price at QQQ's first bar, 60.00 (not the
  default 50.00), so it is exactly F(S): 0.05 below the real bars from 09:45 on.
  Signal (replayed): QQQ 10m long (day) at the 10:00 close, conviction 80, volume confirmed,
  entry 100.00, stop 99.00, target 102.00 -> leveraged_etf routes it to TQQQ.

                      real                          synthetic
  TQQQ at 10:00       60.05                         60.00
  size                15,000 / (3 · 60.05) -> 83    15,000 / (3 · 60.00) -> 83
  entry (+1 tick)     60.06                         60.01
  target (ETF)        60.05 · 1.06 = 63.653         60.00 · 1.06 = 63.60
  10:20 / 10:21 close 61.85 / 67.25                 61.80 / 67.20   -> profit_target at 10:21
  exit (−1 tick)      67.24                         67.19
  entry diff  (60.01 − 60.06) / 60.06 = −8.3250 bp;  exit diff (67.19 − 67.24) / 67.24 = −7.4360 bp
  trade return 67.24/60.06 − 1 vs 67.19/60.01 − 1: synthetic − real = +0.9961 bp
  P&L: the same 7.18 per share on the same 83 shares and the same fees -> difference 0.00
"""

from __future__ import annotations

import csv
import json
from datetime import timedelta
from pathlib import Path

import pytest

from backtests import catalog_io
from backtests.compare import REAL_VS_SYNTHETIC_COLUMNS, CompareSpec, real_vs_synthetic, run_compare
from backtests.runner import BacktestArgumentError, BacktestSpec, plan_symbols
from tests.test_backtest_e2e import SESSION_OPEN, fixture_signal, signals_catalog

pytestmark = pytest.mark.slow  # whole runs (engines, nodes, processes): not in the fast loop

SIGNAL_TIME = SESSION_OPEN + timedelta(minutes=30)  # the 10:00 ET bar close
PERTURB_FROM = 15  # the 09:45 bar
PERTURBATION = 0.05


def qqq_closes() -> list[float]:
    flat = [100.00] * 30  # closes 09:31 .. 10:00
    ramp = [round(100.00 + 0.05 * k, 2) for k in range(1, 21)]  # 10:01 .. 10:20 -> 101.00
    jump = [104.00] * 10  # 10:21 .. 10:30
    return flat + ramp + jump


def ohlc(closes: list[float]) -> list[tuple[float, float, float, float]]:
    out = []
    prev = closes[0]
    for c in closes:
        out.append((prev, max(prev, c) + 0.05, min(prev, c) - 0.05, c))
        prev = c
    return out


def tqqq_formula(s: float) -> float:
    return 1.8 * s - 120.0


def write_csv(path: Path, rows: list[tuple[float, float, float, float]]) -> Path:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["timestamp", "open", "high", "low", "close", "volume"])
        for i, (o, h, lo, c) in enumerate(rows):
            w.writerow([(SESSION_OPEN + timedelta(minutes=i)).isoformat(), f"{o:.2f}", f"{h:.2f}", f"{lo:.2f}",
                        f"{c:.2f}", 10_000])
    return path


def build_catalog(tmp_path: Path, *, real_fund: bool) -> Path:
    qqq = ohlc(qqq_closes())
    files = [write_csv(tmp_path / "QQQ.csv", qqq)]
    if real_fund:
        tqqq = [tuple(round(tqqq_formula(x) + (PERTURBATION if i >= PERTURB_FROM else 0.0), 2) for x in bar)
                for i, bar in enumerate(qqq)]
        files.append(write_csv(tmp_path / "TQQQ.csv", tqqq))
    catalog = tmp_path / "catalog"
    catalog_io.import_files(catalog, files, tz="UTC")
    return catalog


def replayed_signals(tmp_path: Path) -> Path:
    return signals_catalog(tmp_path, [fixture_signal(timestamp=SIGNAL_TIME)])  # QQQ 10m long, entry 100


def test_real_vs_synthetic_replay_known_difference(tmp_path):
    catalog = build_catalog(tmp_path, real_fund=True)
    out = tmp_path / "cmp"
    report = run_compare(CompareSpec(catalog=catalog, symbols=["QQQ"], out_dir=out, modes=["leveraged_etf", "stock"],
                                     signals_from=replayed_signals(tmp_path), workers=2, progress=False))
    label = "leveraged_etf (synthetic TQQQ)"
    rows = {r["mode"]: r for r in report["rows"]}
    assert list(rows) == ["leveraged_etf", label, "stock"]  # the replay right after the run it checks
    assert {m: r["trades"] for m, r in rows.items()} == {"leveraged_etf": 1, label: 1, "stock": 1}
    assert rows["leveraged_etf"]["synthetic_instruments"] == "SQQQ"  # TQQQ trades on its real bars
    assert rows[label]["synthetic_instruments"] == "SQQQ TQQQ"
    assert "TQQQ synthesised from QQQ" in rows[label]["simulated"]
    syn = report["summaries"][label]["synthetic_instruments"]["TQQQ"]
    assert syn["start_price"] == 60.00 and syn["base_price"] == 100.00  # anchored on the real fund
    assert "real TQQQ" in syn["replaces_real"]
    assert report["signals"]["identical_signal_set"] is True

    v = report["real_vs_synthetic"]
    assert v["funds"] == ["TQQQ"] and v["label"] == label
    assert v["n_matched"] == 1 and v["only_real"] == 0 and v["only_synthetic"] == 0
    assert v["same_entry_time"] == 1 and v["same_exit_time"] == 1
    assert v["mean_abs_entry_diff_bp"] == pytest.approx(0.05 / 60.06 * 1e4, abs=1e-4)  # 8.3250
    assert v["median_abs_entry_diff_bp"] == pytest.approx(8.3250, abs=1e-4)
    assert v["mean_entry_diff_bp"] == pytest.approx(-8.3250, abs=1e-4)
    assert v["mean_abs_exit_diff_bp"] == pytest.approx(0.05 / 67.24 * 1e4, abs=1e-4)  # 7.4360
    expected_ret = ((67.19 / 60.01) - (67.24 / 60.06)) * 1e4
    assert v["mean_return_diff_bp"] == pytest.approx(expected_ret, abs=1e-4)
    assert expected_ret == pytest.approx(0.9961, abs=1e-4)
    assert v["mean_pnl_diff"] == pytest.approx(0.0, abs=1e-9) and v["total_pnl_diff"] == 0.0

    with (out / "real_vs_synthetic.csv").open() as f:
        csv_rows = list(csv.DictReader(f))
    assert list(csv_rows[0]) == list(REAL_VS_SYNTHETIC_COLUMNS)
    (r,) = csv_rows
    assert r["status"] == "both" and r["fund"] == "TQQQ" and r["trade_type"] == "day"
    assert r["signal_id"].startswith("QQQ-10m")
    assert float(r["entry_price_real"]) == pytest.approx(60.06)
    assert float(r["entry_price_synthetic"]) == pytest.approx(60.01)
    assert float(r["exit_price_real"]) == pytest.approx(67.24)
    assert float(r["exit_price_synthetic"]) == pytest.approx(67.19)
    assert r["shares_real"] == r["shares_synthetic"] == "83"
    assert float(r["entry_diff_bp"]) == pytest.approx(-8.3250, abs=1e-4)
    assert float(r["exit_diff_bp"]) == pytest.approx(-7.4360, abs=1e-4)
    assert r["exit_reason_real"] == r["exit_reason_synthetic"] == "profit_target"
    assert r["entry_time_real"] == r["entry_time_synthetic"] == SIGNAL_TIME.isoformat()

    # every run's own outputs, the pnl figures are those of the runs' trades.csv
    trades = {}
    for d in ("leveraged_etf", "leveraged_etf_synthetic_TQQQ", "stock"):
        with (out / d / "trades.csv").open() as f:
            trades[d] = list(csv.DictReader(f))
    assert trades["leveraged_etf"][0]["ticker"] == trades["leveraged_etf_synthetic_TQQQ"][0]["ticker"] == "TQQQ"
    assert float(r["pnl_real"]) == pytest.approx(float(trades["leveraged_etf"][0]["pnl"]), abs=1e-4)
    assert float(r["pnl_synthetic"]) == pytest.approx(float(trades["leveraged_etf_synthetic_TQQQ"][0]["pnl"]), abs=1e-4)
    assert json.loads((out / "compare.json").read_text())["real_vs_synthetic"]["n_matched"] == 1

    page = (out / "compare.html").read_text()
    assert "Real vs synthetic TQQQ" in page and "8.325" in page
    assert page.count("<polyline") == 3


def test_no_real_fund_bars_no_extra_run(tmp_path):
    catalog = build_catalog(tmp_path, real_fund=False)
    out = tmp_path / "cmp"
    report = run_compare(CompareSpec(catalog=catalog, symbols=["QQQ"], out_dir=out, modes=["leveraged_etf"],
                                     signals_from=replayed_signals(tmp_path), workers=1, progress=False))
    assert [r["mode"] for r in report["rows"]] == ["leveraged_etf"]
    assert report["rows"][0]["trades"] == 1 and report["rows"][0]["synthetic_instruments"] == "SQQQ TQQQ"
    assert report["real_vs_synthetic"] is None
    assert not (out / "real_vs_synthetic.csv").exists()
    assert "Real vs synthetic" not in (out / "compare.html").read_text()


def test_force_synthetic_plan_and_validation(tmp_path):
    catalog = build_catalog(tmp_path, real_fund=True)
    spec = dict(catalog=catalog, symbols=["QQQ"], mode="leveraged_etf")
    plan = plan_symbols(BacktestSpec(**spec))
    assert plan.catalog_symbols == ["QQQ", "TQQQ"] and [f.ticker for f in plan.synthetic] == ["SQQQ"]

    plan = plan_symbols(BacktestSpec(**spec, force_synthetic=("tqqq",)))
    assert plan.catalog_symbols == ["QQQ"]  # the real series is not fed
    funds = {f.ticker: f for f in plan.synthetic}
    assert set(funds) == {"SQQQ", "TQQQ"}
    assert funds["TQQQ"].underlying == "QQQ" and funds["TQQQ"].start_price == 60.00
    assert funds["SQQQ"].start_price == 50.00 and "replaces_real" not in funds["SQQQ"].describe()
    given = plan_symbols(BacktestSpec(**spec, force_synthetic=("TQQQ",), synthetic_start_prices={"TQQQ": 42.0}))
    assert {f.ticker: f.start_price for f in given.synthetic}["TQQQ"] == 42.0

    with pytest.raises(BacktestArgumentError, match="force_synthetic: unknown fund XYZ"):
        plan_symbols(BacktestSpec(**spec, force_synthetic=("TQQQ", "XYZ")))
    with pytest.raises(BacktestArgumentError, match="force_synthetic: SOXL: no underlying"):
        plan_symbols(BacktestSpec(**spec, force_synthetic=("SOXL",)))
    with pytest.raises(BacktestArgumentError, match="force_synthetic: TQQQ is a signal symbol"):
        plan_symbols(BacktestSpec(catalog=catalog, symbols=["QQQ", "TQQQ"], mode="leveraged_etf",
                                  force_synthetic=("TQQQ",)))


def _trade(sid: str, entry: float, exit_: float, pnl: float, ticker: str = "TQQQ", minute: int = 0) -> dict:
    t0 = SESSION_OPEN + timedelta(minutes=30 + minute)
    return {"signal_id": sid, "ticker": ticker, "instrument_type": "leveraged_etf", "trade_type": "scalp",
            "direction": "long", "shares": 100, "pnl": pnl, "entry_time": t0, "exit_time": t0 + timedelta(minutes=5),
            "entry_price": entry, "exit_price": exit_, "exit_reason": "profit_target", "leverage": 3.0}


def _decision(sid: str, approved: bool, code: str | None = None, reason: str | None = None) -> dict:
    return {"signal_id": sid, "approved": approved, "reason_code": code, "reason": reason, "instrument": "TQQQ",
            "instrument_type": "leveraged_etf"}


def test_real_vs_synthetic_rows_matched_and_unmatched():
    real = {"trades": [_trade("A", 50.00, 51.00, 100.0), _trade("B", 50.00, 49.00, -100.0, minute=1),
                       _trade("S", 40.00, 41.00, 10.0, ticker="SQQQ")],
            "decisions": [_decision("A", True), _decision("B", True), _decision("C", False, "daily_trade_limit",
                                                                                 "3 trades today")]}
    syn = {"force_synthetic": ["TQQQ"],
           "trades": [_trade("A", 50.05, 51.00, 95.0), _trade("C", 50.00, 50.50, 50.0, minute=2),
                      _trade("S", 40.00, 41.00, 10.0, ticker="SQQQ")],
           "decisions": [_decision("A", True), _decision("B", True), _decision("C", True)]}
    rows, summary = real_vs_synthetic(real, syn)
    by = {r["signal_id"]: r for r in rows}
    assert list(by) == ["A", "B", "C"]  # S traded SQQQ, synthetic in both runs: not compared
    assert by["A"]["status"] == "both"
    assert by["A"]["entry_diff_bp"] == pytest.approx(10.0) and by["A"]["exit_diff_bp"] == 0.0
    assert by["A"]["pnl_diff"] == -5.0
    assert by["A"]["return_diff_bp"] == pytest.approx((51.00 / 50.05 - 1.02) * 1e4, abs=1e-4)
    assert by["B"]["status"] == "only_real"
    assert "synthetic run approved it (TQQQ) but has no closed trade" in by["B"]["why"]
    assert by["C"]["status"] == "only_synthetic"
    assert by["C"]["why"] == "real run rejected it: daily_trade_limit (3 trades today)"
    assert summary["n_matched"] == 1 and summary["only_real"] == 1 and summary["only_synthetic"] == 1
    assert summary["total_pnl_diff"] == -5.0 and summary["pnl_only_real"] == -100.0
    assert summary["pnl_only_synthetic"] == 50.0
