"""`trade-executor compare`: one fixed signal set through every instrument mode.

Fixture (Mon 2025-06-16, crafted 1-minute bars, 09:30-11:10 ET):
  QQQ  100.00 flat to the 10:00 close, then +0.10 per minute;
  AAPL 200.00 flat to the 10:00 close, then +0.20 per minute.
Signals (replayed; conviction 80, volume confirmed):
  S1 QQQ  1m  long (scalp) at 10:00, entry 100.00 stop  99.00 target 102.00
  S2 AAPL 1m  long (scalp) at 10:00, entry 200.00 stop 198.00 target 204.00
  S3 QQQ  10m long (day)   at 10:40, entry 104.00 stop 103.00 target 106.00
Routing (instrument_router.MODE_TABLE) and what follows:
  stock          S1 QQQ, S2 AAPL, S3 QQQ                                   -> 3 trades
  leveraged_etf  S1 TQQQ (synthetic from QQQ), S2 AAPL -> technology -> TECL: no bars (no XLK/VGT
                 in the catalog to synthesise it from) -> no_instrument, S3 TQQQ      -> 2 trades
  both           S1, S2 scalps -> options: QQQ 0DTE 100 call, AAPL weekly (Fri 06-20) 200 call;
                 S3 day -> TQQQ                                                   -> 3 trades
  options        S1, S2 scalps -> the same two calls; S3 day -> stock QQQ         -> 3 trades
Every position reaches its target within the session (QQQ 102.00 at 10:20, 106.00 at 11:00;
AAPL 204.00 at 10:20; TQQQ = 1.5 x QQQ - 100 tracks 3x), so every approved signal is a closed
round trip.
"""

from __future__ import annotations

import csv
import json
from datetime import timedelta
from pathlib import Path

import pytest

from backtests import catalog_io
from backtests.compare import COLUMNS, CompareArgumentError, CompareSpec, run_compare
from tests.test_backtest_e2e import SESSION_OPEN, fixture_signal, signals_catalog, write_bars_csv

pytestmark = pytest.mark.slow  # whole runs (engines, nodes, processes): not in the fast loop

EXPECTED_TRADES = {"options": 3, "leveraged_etf": 2, "both": 3, "stock": 3}
EXPECTED_NO_INSTRUMENT = {"options": 0, "leveraged_etf": 1, "both": 0, "stock": 0}
EXPECTED_OPTION_REJECTED = {"options": 0, "leveraged_etf": 0, "both": 0, "stock": 0}


@pytest.fixture
def compare_fixture(tmp_path: Path) -> tuple[Path, Path]:
    qqq = [100.00] * 30 + [round(100.00 + 0.10 * k, 2) for k in range(1, 71)]
    aapl = [200.00] * 30 + [round(200.00 + 0.20 * k, 2) for k in range(1, 71)]
    catalog = tmp_path / "catalog"
    catalog_io.import_files(catalog, [write_bars_csv(tmp_path / "QQQ.csv", qqq),
                                      write_bars_csv(tmp_path / "AAPL.csv", aapl)], tz="UTC")
    t10 = SESSION_OPEN + timedelta(minutes=30)
    sigs = [
        fixture_signal(timeframe="1m", timestamp=t10),
        fixture_signal(ticker="AAPL", timeframe="1m", timestamp=t10, entry_price=200.00, stop_loss=198.00,
                       target_price=204.00),
        fixture_signal(timestamp=t10 + timedelta(minutes=40), entry_price=104.00, stop_loss=103.00,
                       target_price=106.00, signal_type="trend_aligned_long"),
    ]
    return catalog, signals_catalog(tmp_path, sigs)


def test_compare_four_modes_one_signal_set(tmp_path, compare_fixture, capsys):
    from strategies.cli import main

    catalog, sigs = compare_fixture
    out = tmp_path / "cmp"
    rc = main(["compare", "--catalog", str(catalog), "--symbols", "QQQ,AAPL", "--out", str(out),
               "--signals-from", str(sigs), "--quiet"])  # default modes, 2 worker processes
    assert rc == 0
    printed = capsys.readouterr().out
    assert "identical in every mode: True" in printed

    report = json.loads((out / "compare.json").read_text())
    rows = {r["mode"]: r for r in report["rows"]}
    assert list(rows) == ["options", "leveraged_etf", "both", "stock"]
    assert {m: r["trades"] for m, r in rows.items()} == EXPECTED_TRADES
    assert {m: r["no_instrument"] for m, r in rows.items()} == EXPECTED_NO_INSTRUMENT
    assert {m: r["option_signals_rejected"] for m, r in rows.items()} == EXPECTED_OPTION_REJECTED
    assert {m: r["signals_received"] for m, r in rows.items()} == dict.fromkeys(rows, 3)
    assert report["signals"]["identical_signal_set"] is True
    assert {m: r["letf_trades"] for m, r in rows.items()} == {"options": 0, "leveraged_etf": 2, "both": 1, "stock": 0}
    # the two option round trips: time decay and half-spreads crossed, both costs inside the P&L
    for mode in ("options", "both"):
        assert rows[mode]["option_theta_cost"] > 0 and rows[mode]["spread_cost"] > 0
        assert rows[mode]["simulated"].startswith("yes; options priced from the underlying")
        assert "2 option trade(s)" in rows[mode]["simulated"]
    assert rows["options"]["option_theta_cost"] == rows["both"]["option_theta_cost"]
    assert rows["stock"]["option_theta_cost"] == "n/a" and rows["leveraged_etf"]["option_theta_cost"] == "n/a"
    assert rows["stock"]["spread_cost"] == 0.0 and rows["leveraged_etf"]["spread_cost"] == 0.0
    assert rows["stock"]["letf_decay_cost"] == 0.0 and rows["options"]["letf_decay_cost"] == 0.0
    assert rows["leveraged_etf"]["synthetic_instruments"] == "SQQQ TQQQ"
    assert rows["stock"]["synthetic_instruments"] == ""
    # stock: 150 QQQ + 75 AAPL + 144 QQQ shares, two 1-tick fills each (options: contracts)
    assert rows["stock"]["slippage_cost_est"] == pytest.approx(0.01 * 2 * (150 + 75 + 144))
    assert report["summaries"]["leveraged_etf"]["etf_bars_unavailable"].keys() == {"TECL", "TECS"}
    assert report["generation_run"] is None  # signals came from --signals-from
    # no fund traded on real bars (none in the catalog): no real-vs-synthetic replay
    assert report["real_vs_synthetic"] is None and not (out / "real_vs_synthetic.csv").exists()
    # every mode's own backtest outputs
    assert {m: (out / m / "trades.csv").is_file() for m in EXPECTED_TRADES} == dict.fromkeys(EXPECTED_TRADES, True)
    assert report["run_dirs"] == {m: str(out / m) for m in EXPECTED_TRADES}

    with (out / "compare.csv").open() as f:
        csv_rows = list(csv.DictReader(f))
    assert [r["mode"] for r in csv_rows] == ["options", "leveraged_etf", "both", "stock"]
    assert list(csv_rows[0]) == list(COLUMNS)
    assert {r["mode"]: int(r["trades"]) for r in csv_rows} == EXPECTED_TRADES
    assert {r["mode"]: float(r["return_pct"]) for r in csv_rows} == {m: r["return_pct"] for m, r in rows.items()}

    html = (out / "compare.html").read_text()
    assert html.count("<svg") == 1 and html.count("<polyline") == 4  # one chart, four curves
    assert "<script" not in html and "http" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "Black-Scholes" in html and 'class="synthetic"' in html
    for mode in EXPECTED_TRADES:
        assert f"<th>{mode}</th>" in html

    # sequential (in-process) replay of the same signals: identical rows
    seq = run_compare(CompareSpec(catalog=catalog, symbols=["QQQ", "AAPL"], out_dir=tmp_path / "seq",
                                  signals_from=sigs, workers=1, progress=False))
    assert seq["rows"] == report["rows"]


def test_compare_generates_the_signal_set_once(sample_catalog, tmp_path):
    """Without --signals-from a stock run records the actor's signals to OUT/signals; the stock
    replay reproduces that run exactly."""
    rep = run_compare(CompareSpec(catalog=sample_catalog, symbols=["QQQ"], out_dir=tmp_path / "gen",
                                  modes=["stock", "leveraged_etf"], end="2025-06-18", workers=1,
                                  progress=False))
    assert (tmp_path / "gen" / "signals" / "data").is_dir()
    gen = rep["generation_run"]
    assert gen["stock_replay_identical"] is True and gen["signals_received"] > 0
    assert rep["signals"]["identical_signal_set"] is True
    rows = {r["mode"]: r for r in rep["rows"]}
    assert rows["stock"]["trades"] == gen["trades"]
    assert rows["leveraged_etf"]["synthetic_instruments"] == "SQQQ TQQQ"


def test_compare_bad_arguments(tmp_path, compare_fixture):
    catalog, sigs = compare_fixture
    with pytest.raises(CompareArgumentError, match="unknown mode crypto"):
        run_compare(CompareSpec(catalog=catalog, symbols=["QQQ"], out_dir=tmp_path / "x", modes=["stock", "crypto"]))
    with pytest.raises(CompareArgumentError, match="listed twice"):
        run_compare(CompareSpec(catalog=catalog, symbols=["QQQ"], out_dir=tmp_path / "x", modes=["stock", "stock"]))
    with pytest.raises(CompareArgumentError, match="signals catalog not found"):
        run_compare(CompareSpec(catalog=catalog, symbols=["QQQ"], out_dir=tmp_path / "x",
                                signals_from=tmp_path / "nope", progress=False))
    with pytest.raises(ValueError, match="unknown symbol XYZ"):
        run_compare(CompareSpec(catalog=catalog, symbols=["XYZ"], out_dir=tmp_path / "x", progress=False))
