"""Regression tests for the backtest distortions found by the fidelity audit (fixed in the five
commits up to "Minute step: exits, expiries and equity decided once every bar of the minute is
in, ..."). One test per distortion, each on the real BacktestEngine through
``backtests.runner.run_backtest`` with crafted bars, and each run also passes the whole-run
invariant checker (``backtests.check.check_run``: no FAIL).

 1. leveraged-ETF exits decided on the underlying's bar were priced on the fund's previous close
 2. the signal actor never routed its 10m / 1h / 1d bars
 3. hourly cloud exits of the 15:30-16:30 bucket fired (and filled) after the session
 4. working intraday limit entries survived the EOD cut-off; swing limits expired after 5 minutes
 5. a 0DTE contract could be bought minutes before the broker's new-order cut-off
 6. replay chunks could split one minute's bars
 7. time checks read the signal's own timestamp instead of the engine clock
 8. one malformed signal payload aborted the whole backtest
 9. a protective stop sent after an entry filled inside a bar that closed beyond it was refused,
    and the position left at the close, beyond the risk budget

Conventions (tests/test_trade_management.py): rows are labelled by bar open, row i closes at
``at(i + 1)``; the executor decides a minute 1 ns after its bars (``decided``); replayed signals
are delivered 2 ns after their bar unless a test says otherwise. Fees on 2025-06-16 (the
adapters/fees.py schedules): SEC $0 per $1M, FINRA TAF $0.000166 a share sold, to the cent.
"""

from __future__ import annotations

import csv
import functools
import json
import math
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
from nautilus_trader.persistence.catalog import ParquetDataCatalog

from backtests import catalog_io, runner
from backtests.check import check_run
from backtests.option_quotes import OptionSimConfig
from backtests.runner import BacktestSpec, run_backtest, write_signals
from strategies.signal_data import TradeSignalData
from strategies.trade_executor.options_pricing import bs_delta, bs_price, spread_for
from tests.test_backtest_e2e import SESSION_OPEN, fixture_closes, fixture_signal, write_bars_csv
from tests.test_letf_backtest import make_catalog, qqq_closes
from tests.test_options_backtest import rows_up
from tests.test_trade_management import (
    FLAT,
    at,
    backtest,
    bar,
    decided,
    ema_path,
    events,
    flat,
    scalp,
    signals_catalog,
)

ONE_NS = pd.Timedelta(1, "ns")


# ── helpers ──────────────────────────────────────────────────────────────────────────────────
def assert_checks_pass(result) -> None:
    """The project's whole-run invariants on the run's output folder: nothing may FAIL."""
    assert result.out_dir is not None
    failed = [r for r in check_run(result.out_dir) if r.status == "FAIL"]
    assert failed == [], "\n".join(r.line() for r in failed)


def ns(when) -> int:
    return pd.Timestamp(when).value


def et(day: str, hhmm: str) -> pd.Timestamp:
    return pd.Timestamp(f"{day} {hhmm}", tz="America/New_York").tz_convert("UTC")


def import_sessions(tmp_path: Path, sessions: list[tuple[datetime, list]], symbol: str = "QQQ") -> Path:
    """One CSV of several sessions: (session open, rows (open, high, low, close)) each."""
    path = tmp_path / f"{symbol}.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["timestamp", "open", "high", "low", "close", "volume"])
        for open_, rows in sessions:
            for i, (o, h, l, c) in enumerate(rows):
                w.writerow([(open_ + timedelta(minutes=i)).isoformat(), f"{o:.2f}", f"{h:.2f}", f"{l:.2f}",
                            f"{c:.2f}", 10_000])
    catalog = tmp_path / "catalog"
    catalog_io.import_files(catalog, [path], tz="UTC", label="open")
    return catalog


# Sessions of QQQ whose hourly candles (six hours 09:30-10:30 ... 14:30-15:30, then the half
# hour 15:30-16:00) alternate +1.00 / -0.30: an uptrend (as in the trailing-stop test of
# tests/test_trade_management.py) whose red hours keep breaking the exhaustion streak, and whose
# hourly EMA clouds are warm (50 hourly bars) from the 8th session on.
DAYS = ["2025-06-16", "2025-06-17", "2025-06-18", "2025-06-20", "2025-06-23", "2025-06-24", "2025-06-25",
        "2025-06-26", "2025-06-27", "2025-06-30", "2025-07-01"]
HOURS = [60] * 6 + [30]


def hourly_sessions(days: list[str], steps: dict[tuple[int, int], float] | None = None,
                    gaps: dict[int, float] | None = None):
    """(sessions for import_sessions, hourly closes, hour-bar stamps). ``steps[(day, hour)]``
    overrides an hour's move, ``gaps[day]`` moves the level overnight before that session. The
    last bucket (15:30-16:30 ET) holds 30 minutes and its hour bar is stamped 16:30 ET."""
    steps, gaps = steps or {}, gaps or {}
    level, hourly, stamps, sessions = 100.0, [], [], []
    for d, day in enumerate(days):
        open_ = datetime.fromisoformat(f"{day}T13:30:00+00:00")
        level = round(level + gaps.get(d, 0.0), 2)
        rows = []
        for h, length in enumerate(HOURS):
            step = steps.get((d, h), 1.0 if len(hourly) % 2 == 0 else -0.30)
            for m in range(length):
                c = round(level + step * (m + 1) / length, 2)
                o = round(level + step * m / length, 2) if m else level
                rows.append((o, max(o, c) + 0.01, min(o, c) - 0.01, c))
            level = round(level + step, 2)
            hourly.append(level)
            stamps.append(open_ + timedelta(minutes=60 * (h + 1)))
        sessions.append((open_, rows))
    return sessions, hourly, stamps


def swing(hourly, stamps, k: int, **over):
    """A 1h (swing) long on QQQ at hour bar k's close, stop 10 below, target 30 above."""
    kw = dict(timeframe="1h", timestamp=stamps[k], entry_price=hourly[k], stop_loss=round(hourly[k] - 10, 2),
              target_price=round(hourly[k] + 30, 2))
    kw.update(over)
    return fixture_signal(**kw)


def fill_rows(result) -> list[dict[str, str]]:
    with (result.out_dir / "fills.csv").open() as f:
        return list(csv.DictReader(f))


# ── 1. leveraged-ETF exits on the fund's bar of the same minute ─────────────────────────────
def test_letf_exit_decided_on_the_underlying_is_priced_on_the_funds_bar_of_that_minute(tmp_path):
    # QQQ 100.00 flat for 60 bars, then bar 61 closes 101.00 (a 1m long scalp there), bars 62 and
    # 63 are green and close above the fast cloud (101.10, 101.50): with bar 61 three in a row at
    # bar 63 -> momentum_exhaustion, an exit read on QQQ's 1-minute clouds.
    # leveraged_etf mode trades synthetic TQQQ = 50 x (1 + 3 (S/100 - 1)) = 1.5 S - 100:
    #   bar 61: 51.50, bar 62: 51.65, bar 63: 52.25
    # size: risk 5,000 / (51.50 x 3 x 1.00/101.00 = 1.5297) = 3,268, capped by the 15 % exposure
    #       15,000 / (3 x 51.50) = 97.09 -> 97 shares; entry at market 51.50 + 1 tick = 51.51
    # ETF stop 51.50 x (1 - 3 x 1/101) = 49.97, target 51.50 x (1 + 3 x 2/101) = 54.56: untouched
    # exit: decided at bar 63, after TQQQ's bar 63 is in -> 52.25 - 1 tick = 52.24
    #       (before the fix: decided on QQQ's bar before TQQQ's, sold at bar 62's 51.65 - 0.01 = 51.64)
    # pnl: (52.24 - 51.51) x 97 = 70.81 - TAF 97 x 0.000166 = 0.016 -> 0.02 = 70.79
    rows = flat() + [bar(101.0, o=100.0), bar(101.10, o=101.0), bar(101.50, o=101.10)] + [bar(101.50)] * 5
    r = backtest(tmp_path, rows, [scalp(FLAT + 1)], mode="leveraged_etf", out_dir=tmp_path / "out")
    (d,) = r.log.decisions
    assert d.approved and d.instrument == "TQQQ" and d.shares == 97
    (t,) = r.log.trades
    meta = json.loads(t["metadata_json"])
    assert t["ticker"] == "TQQQ" and t["entry_price"] == pytest.approx(51.51) and t["shares"] == 97
    assert (t["exit_reason"], meta["exits_fired"]) == ("momentum_exhaustion", ["momentum_exhaustion"])
    assert t["exit_time"] == at(FLAT + 3)
    assert t["exit_price"] == pytest.approx(52.24)
    assert t["pnl"] == pytest.approx(70.79, abs=0.005)
    assert_checks_pass(r)


# ── 2. the signal actor routes 10m / 1h bars ────────────────────────────────────────────────
def test_in_process_signal_actor_trades_10m_and_1h_signals(tmp_path):
    # the deterministic sample (QQQ, 15 sessions from 2025-06-16), no signal catalog: the
    # SignalActor generates the signals in the run. Its 10-minute and hourly bars are aggregated
    # by Nautilus from the 1-minute bars; each signal is published 2 ns after the bar it came from,
    # so a 10m signal is decided at a :x0 bucket close and a 1h one at a :30 close (hour buckets
    # are anchored on the 09:30 open).
    from backtests.sample_data import generate_sample

    paths = generate_sample(tmp_path / "csv", symbols=("QQQ",))
    catalog = tmp_path / "catalog"
    catalog_io.import_files(catalog, paths, tz=None, label="open")
    r = run_backtest(BacktestSpec(catalog=catalog, symbols=["QQQ"], mode="stock", progress=False,
                                  out_dir=tmp_path / "out"))
    by_tf = defaultdict(list)
    for d in r.log.decisions:
        by_tf[d.timeframe].append(d)
    assert by_tf["10m"] and by_tf["1h"], {tf: len(ds) for tf, ds in by_tf.items()}
    for d in by_tf["10m"]:
        ts = pd.Timestamp(d.ts)
        assert (ts.minute % 10, ts.second, ts.microsecond, ts.nanosecond) == (0, 0, 0, 2), d
    for d in by_tf["1h"]:
        ts = pd.Timestamp(d.ts)
        assert (ts.minute, ts.second, ts.microsecond, ts.nanosecond) == (30, 0, 0, 2), d
    assert any(d.approved for d in by_tf["10m"]) and any(d.approved for d in by_tf["1h"])
    traded = {json.loads(t["metadata_json"])["timeframe"] for t in r.log.trades}
    assert {"10m", "1h"} <= traded
    assert_checks_pass(r)


# ── 3. hourly cloud exits of the last bucket wait for the next session ──────────────────────
def test_hourly_cloud_exit_of_the_last_bucket_fills_at_the_next_sessions_first_bar(tmp_path):
    # 10 sessions of the hourly uptrend. A 1h swing long enters at the 13:30 close of session 9
    # (Fri 2025-06-27); the session's last bucket (15:30-16:00) falls 2.00 and closes below the
    # hourly pullback (8/9) cloud while the fast (5/12) cloud stays bullish: trailing_stop, on the
    # hour bar stamped 16:30 ET. Session 10 (Mon 06-30) opens 0.50 higher and its first hour
    # climbs 0.60 (0.01 a minute).
    # The exit is decided at the next session's first minute: the 09:31 bar closes at
    # 119.70 + 0.50 + 0.01 = 120.21 -> sold at 120.21 - 1 tick = 120.20 at 09:31 ET.
    # (before the fix: sold at 16:30 ET, outside the session, at the 16:00 close 119.70 - 0.01)
    sessions, hourly, stamps = hourly_sessions(DAYS[:10], steps={(8, 6): -2.0, (9, 0): 0.60}, gaps={9: 0.50})
    entry, dip = 7 * 8 + 3, 7 * 8 + 6
    e5, e8, e9, e12 = (ema_path(hourly, n) for n in (5, 8, 9, 12))
    assert hourly[dip] == 119.70 and hourly[dip] < min(e8[dip], e9[dip]) and e5[dip] > e12[dip]
    assert all(hourly[i] >= min(e8[i], e9[i]) for i in range(entry, dip))
    assert stamps[dip] == datetime(2025, 6, 27, 20, 30, tzinfo=timezone.utc)  # 16:30 ET
    assert sessions[9][1][0][3] == 120.21  # 06-30 09:30-09:31 bar close
    catalog = import_sessions(tmp_path, sessions)
    r = run_backtest(BacktestSpec(catalog=catalog, symbols=["QQQ"], mode="stock", progress=False,
                                  out_dir=tmp_path / "out",
                                  signals_catalog=signals_catalog(tmp_path, [swing(hourly, stamps, entry)])))
    (t,) = r.log.trades
    meta = json.loads(t["metadata_json"])
    assert t["trade_type"] == "swing" and t["entry_time"] == stamps[entry]
    assert (t["exit_reason"], meta["exits_fired"]) == ("trailing_stop", ["trailing_stop"])
    assert t["exit_time"] == datetime(2025, 6, 30, 13, 31, tzinfo=timezone.utc)  # 09:31 ET, next session
    assert t["exit_price"] == pytest.approx(120.20)
    # every fill inside a regular session (09:30 < t <= 16:00 ET)
    for f in fill_rows(r):
        local = pd.Timestamp(f["ts"]).tz_convert("America/New_York")
        assert "09:30" < local.strftime("%H:%M") <= "16:00", f
    assert_checks_pass(r)


# ── 4. working entries: EOD cut-off for intraday, the signal's timeframe for the expiry ─────
def test_scalp_limit_entry_still_working_at_the_eod_cutoff_is_cancelled(tmp_path):
    # QQQ 100.00 flat to 15:49, the 15:50 bar closes 101.00: a conviction-60 scalp there rests a
    # limit buy at the pullback cloud's upper edge 100.22 (EMA8 after the jump 100.2222). The bars
    # to 15:57 stay at 101.00 (low 100.98); the 15:58 bar dips to 100.10 and would fill it.
    # limit_entry_expire_bars 10, so only the EOD cut-off can stop it before 15:58: at the 15:55
    # minute step (15:55 ET + 1 ns) the entry is cancelled. No trade.
    # (before the fix: filled at 100.22 at 15:58 and closed at once by eod_close)
    signal_row = 379  # closes 15:50 ET = at(380)
    rows = flat(signal_row) + [bar(101.0, o=100.0)] + [bar(101.0)] * 7 + \
        [bar(100.90, o=101.0, lo=100.10)] + [bar(100.90)] * 2  # 390 rows: the whole session
    r = backtest(tmp_path, rows, [scalp(signal_row + 1, conviction=60)], executor={"limit_entry_expire_bars": 10},
                 out_dir=tmp_path / "out")
    (d,) = r.log.decisions
    assert d.approved and d.details["entry"]["order_type"] == "limit" and d.details["entry"]["limit_price"] == 100.22
    assert r.log.trades == [] and r.log.open_trades == {}
    (cancel,) = events(r, "entry_cancelled")
    # 15:55 ET: the executor's EOD alert (set at the session open) fires at the cut-off itself,
    # after that minute's bar, with or without bars of the instrument
    assert cancel[0] == pd.Timestamp(at(385))
    assert "EOD cut-off" in cancel[2]
    assert events(r, "limit_expired") == []
    assert fill_rows(r) == []
    assert_checks_pass(r)


def test_swing_limit_waits_five_hourly_bars_but_not_past_the_session(tmp_path):
    # 11 sessions of the hourly uptrend (warm hourly clouds). Conviction-60 1h swings rest a limit
    # at the hourly pullback cloud's upper edge, below the price; the red hours only give back
    # 0.30, so the rest of the session never comes down to it. limit_entry_expire_bars 5 counts
    # *hourly* bars:
    #   A: Fri 06-27 at the 10:30 ET close (120.60; edge 119.0906 -> limit 119.09, lowest low
    #      after it 120.29): 5 hours = 300 one-minute bars, unfilled at the 301st (15:31 ET) ->
    #      limit_expired at 15:31 ET + 1 ns
    #   B: Mon 06-30 at the 12:30 ET close (123.10; edge 122.1594 -> limit 122.15, lowest low
    #      after it 123.09): 5 hours would run to 17:31, the session ends first ->
    #      entry_cancelled at the 16:00 minute step (16:00 ET + 1 ns)
    #   C: Tue 07-01, a conviction-80 1h swing at the 10:30 close (market, 125.50 + 1 tick =
    #      125.51), left by the trailing stop when the 11:30-12:30 hour drops 2.00 (as in the test
    #      of tests/test_trade_management.py), so that the 1h approvals have a closed 1h trade
    # (before the fix: A and B expired after 5 one-minute bars, at 10:36 and 12:36 ET)
    sessions, hourly, stamps = hourly_sessions(DAYS, steps={(10, 2): -2.0})
    a, b, c = 7 * 8 + 0, 7 * 9 + 2, 7 * 10 + 0
    sigs = [swing(hourly, stamps, a, conviction=60, signal_id="A"),
            swing(hourly, stamps, b, conviction=60, signal_id="B"),
            swing(hourly, stamps, c, signal_id="C")]
    catalog = import_sessions(tmp_path, sessions)
    r = run_backtest(BacktestSpec(catalog=catalog, symbols=["QQQ"], mode="stock", progress=False,
                                  out_dir=tmp_path / "out", signals_catalog=signals_catalog(tmp_path, sigs)))
    da, db, dc = r.log.decisions
    assert [d.signal_id for d in (da, db, dc)] == ["A", "B", "C"] and all(d.approved for d in (da, db, dc))
    assert da.details["entry"]["order_type"] == db.details["entry"]["order_type"] == "limit"
    assert (hourly[a], da.details["entry"]["limit_price"]) == (120.60, 119.09)
    assert (hourly[b], db.details["entry"]["limit_price"]) == (123.10, 122.15)
    assert min(low for _o, _h, low, _c in sessions[8][1][60:]) > 119.09  # A: rows from 10:30 ET on
    assert min(low for _o, _h, low, _c in sessions[9][1][180:]) > 122.15  # B: rows from 12:30 ET on
    assert [(e[0], e[2].split(":")[0]) for e in events(r, "limit_expired")] == [
        (et("2025-06-27", "15:31") + ONE_NS, "A")]
    assert [(e[0], e[2]) for e in events(r, "entry_cancelled")] == [
        (et("2025-06-30", "16:00") + ONE_NS, "B: session closed with the entry order working")]
    (t,) = r.log.trades
    assert t["signal_id"] == "C" and t["exit_reason"] == "trailing_stop" and t["entry_price"] == pytest.approx(125.51)
    assert {f["signal_id"] for f in fill_rows(r)} == {"C"}
    assert_checks_pass(r)


# ── 5. 0DTE only with a margin before the broker's cut-off ──────────────────────────────────
def test_scalp_ten_minutes_before_the_0dte_cutoff_buys_the_next_expiry(tmp_path):
    # Mon 2025-06-16, QQQ rows_up(): the 15:20 ET bar closes 101 + 0.01 x 189 = 102.89. Alpaca
    # refuses new QQQ 0DTE orders from 15:30: 10 minutes left < the 15-minute margin -> the
    # scalp buys the ATM call of the next expiry, Tue 06-17, strike 103 (not QQQ250616C00103000).
    # ask: T = (40 + 390) trading minutes / 98,280, vol 20 % -> mid = BS(102.89, 103) = 0.4901,
    #      spread max(0.01, 1 % x 0.49) = 0.01 -> ask ceil(0.4951) = 0.50
    # size: 5,000 / (0.50 x 100) = 100 contracts, capped by the options' delta cap 50 % x 100,000
    #       / (N(d1) 0.4704 x 100 x 102.89 = 4,840) = 10.33 -> 10
    # exit: the scalp's EOD close at 15:55 ET (QQQ 103.24), at that minute's bid
    rows = rows_up()
    minute = 350  # bar 350 closes 15:20 ET
    spot = rows[minute - 1][3]
    assert spot == 102.89
    sig = scalp(minute, entry_price=spot, stop_loss=spot - 2, target_price=spot + 5)
    r = backtest(tmp_path, rows, [sig], mode="options", option_sim=OptionSimConfig(fixed_vol=0.20),
                 out_dir=tmp_path / "out")
    (d,) = r.log.decisions
    assert d.approved and d.instrument == "QQQ250617C00103000"
    assert d.details["entry"]["order_type"] == "market" and d.shares == 10
    mid = bs_price(102.89, 103.0, 430 / 98_280, 0.20, 0.0, "call")
    assert mid == pytest.approx(0.4901, abs=1e-4)
    assert bs_delta(102.89, 103.0, 430 / 98_280, 0.20, 0.0, "call") == pytest.approx(0.4704, abs=1e-4)
    (t,) = r.log.trades
    assert t["ticker"] == "QQQ250617C00103000" and (t["entry_price"], t["shares"]) == (0.50, 10)
    assert t["entry_time"] == at(minute)
    assert (t["exit_reason"], t["exit_time"]) == ("eod_close", at(385))
    s_exit = rows[384][3]
    assert s_exit == 103.24
    mid_x = bs_price(s_exit, 103.0, 395 / 98_280, 0.20, 0.0, "call")  # 5 + 390 minutes left
    bid = math.floor((mid_x - spread_for(mid_x, 5.0) / 2) * 100 + 1e-9) / 100  # 5 minutes to the close
    assert t["exit_price"] == pytest.approx(bid)
    assert json.loads(t["metadata_json"])["option"]["expiry"] == "2025-06-17"
    assert_checks_pass(r)


# ── 6. replay chunks never split a minute ───────────────────────────────────────────────────
def test_chunk_end_keeps_a_timestamp_in_one_chunk():
    from backtests.runner import chunk_end

    data = [SimpleNamespace(ts_init=t) for t in (1, 1, 2, 2, 2, 3, 4)]
    assert chunk_end(data, 0, 3) == 5  # the 2s run across the size boundary (index 3) stays whole
    assert chunk_end(data, 0, 2) == 2  # the boundary falls between two timestamps: kept
    assert chunk_end(data, 0, 1) == 2  # 1, 1 together
    assert chunk_end(data, 2, 1) == 5
    assert chunk_end(data, 5, 3) == 7  # clipped to the data
    assert chunk_end(data, 0, 100) == 7
    bounds, i = [], 0
    while i < len(data):
        k = chunk_end(data, i, 2)
        bounds.append((i, k))
        i = k
    assert bounds == [(0, 2), (2, 5), (5, 7)]


def test_small_replay_chunks_trade_like_one_chunk(tmp_path, monkeypatch):
    # the synthetic-TQQQ fixture of tests/test_letf_backtest.py: QQQ 100.50 at 10:00, then +0.10
    # a minute; TQQQ = 1.5 x QQQ - 100. Every minute has 3 bars (QQQ, SQQQ, TQQQ). A 10m long at
    # the 10:04 close (QQQ 100.90, TQQQ 51.35; 10:03: 51.20):
    #   entry 51.35 + 1 tick = 51.36; 15,000 / (3 x 51.35) = 97.37 -> 97 shares
    #   ETF target 51.35 x (1 + 3 x 2.00/100.90) = 54.40 -> TQQQ 54.50 at 10:25 (QQQ 103.00)
    #   exit 54.50 - 1 tick = 54.49; pnl (54.49 - 51.36) x 97 = 303.61 - TAF 0.02 = 303.59
    # With chunks of 4 items, a plain split would end a chunk right after QQQ's 10:04 bar (bars
    # 0-99 | 100-...: QQQ's 10:04 bar is item 99): the signal would meet TQQQ's 10:03 price
    # (entry 51.21). chunk_end extends each chunk to the end of its minute.
    closes = qqq_closes(+1)
    assert (closes[33], closes[32]) == (100.90, 100.80)
    sig = fixture_signal(timestamp=SESSION_OPEN + timedelta(minutes=34), entry_price=100.90, stop_loss=99.90,
                         target_price=102.90)
    catalog = make_catalog(tmp_path, closes)
    sigs = signals_catalog(tmp_path, [sig])

    def run(out: str):
        return run_backtest(BacktestSpec(catalog=catalog, symbols=["QQQ"], mode="leveraged_etf", progress=False,
                                         out_dir=tmp_path / out, signals_catalog=sigs))

    whole = run("whole")
    monkeypatch.setattr(runner, "_run_streaming", functools.partial(runner._run_streaming, chunk=4))
    chunked = run("chunked")
    for r in (whole, chunked):
        (t,) = r.log.trades
        assert t["ticker"] == "TQQQ" and t["shares"] == 97
        assert (t["entry_time"], t["entry_price"]) == (at(34), pytest.approx(51.36))
        assert (t["exit_reason"], t["exit_time"], t["exit_price"]) == ("profit_target", at(55), pytest.approx(54.49))
    assert chunked.log.trades == whole.log.trades
    assert [(d.signal_id, d.approved, d.shares) for d in chunked.log.decisions] == \
        [(d.signal_id, d.approved, d.shares) for d in whole.log.decisions]
    assert whole.log.trades[0]["pnl"] == pytest.approx(303.59, abs=0.005)
    assert_checks_pass(whole)
    assert_checks_pass(chunked)


# ── 7. the risk gate judges time on the engine clock ────────────────────────────────────────
def test_signal_time_checks_use_the_delivery_time(tmp_path):
    # QQQ 100.00 flat all of Mon 2025-06-16 and the first 30 minutes of Tue 06-17. Signals are
    # replayed with a delivery time (ts_init) that differs from their own timestamp:
    #   stale    10m made 10:00, delivered 10:10          -> 600 s old > 120 s: stale_signal
    #   future   10m made 11:20, delivered 10:20          -> 3,600 s ahead > 5 s: future_signal
    #   late     1m scalp made 15:54, delivered 15:56     -> 120 s old (not over the limit), made
    #            before the 15:55 EOD cut-off but decided after it: after_cutoff
    #   closed   1h swing made 15:59, delivered 16:00:30  -> 90 s old, made in the session but the
    #            market is closed when it arrives: after_cutoff
    #   control  10m made 10:30, delivered 2 ns after its bar: approved, 150 shares at 100.01,
    #            then the 2-hour time stop at 12:30 sells at 99.99: (99.99 - 100.01) x 150 = -3.00
    #            - TAF 150 x 0.000166 = 0.025 -> 0.02 = -3.02
    # (before the fix the first four were judged at their own timestamps: all approved)
    day1 = datetime(2025, 6, 16, 13, 30, tzinfo=timezone.utc)
    day2 = datetime(2025, 6, 17, 13, 30, tzinfo=timezone.utc)
    catalog = import_sessions(tmp_path, [(day1, flat(390)), (day2, flat(30))])
    plan = [
        (fixture_signal(signal_id="stale", timestamp=at(30)), at(40)),
        (fixture_signal(signal_id="future", timestamp=at(110)), at(50)),
        (scalp(384, signal_id="late", entry_price=100.0, stop_loss=99.0, target_price=102.0), at(386)),
        (fixture_signal(signal_id="closed", timeframe="1h", timestamp=at(389)), at(390) + timedelta(seconds=30)),
        (fixture_signal(signal_id="control", timestamp=at(60)), pd.Timestamp(at(60)) + 2 * ONE_NS),
    ]
    rows = sorted((TradeSignalData.from_signal(s, ts_event=ns(s.timestamp), ts_init=ns(when)) for s, when in plan),
                  key=lambda x: x.ts_init)
    write_signals(tmp_path / "signals", rows)
    r = run_backtest(BacktestSpec(catalog=catalog, symbols=["QQQ"], mode="stock", progress=False,
                                  out_dir=tmp_path / "out", signals_catalog=tmp_path / "signals"))
    got = {d.signal_id: d for d in r.log.decisions}
    assert {sid: (d.approved, d.reason_code) for sid, d in got.items()} == {
        "stale": (False, "stale_signal"), "future": (False, "future_signal"), "late": (False, "after_cutoff"),
        "closed": (False, "after_cutoff"), "control": (True, None)}
    assert pd.Timestamp(got["stale"].ts) == pd.Timestamp(at(40))  # decided when delivered
    assert got["stale"].details["risk"]["signal_age_seconds"] == 600.0
    assert got["future"].details["risk"]["signal_age_seconds"] == -3600.0
    assert got["late"].details["risk"]["signal_age_seconds"] == 120.0
    assert "market is closed" in got["closed"].reason
    (t,) = r.log.trades
    assert t["signal_id"] == "control"
    assert (t["exit_reason"], t["exit_time"], t["exit_price"]) == ("time_stop", at(180), pytest.approx(99.99))
    assert t["pnl"] == pytest.approx(-3.02, abs=0.005)
    assert {f["signal_id"] for f in fill_rows(r)} == {"control"}
    assert_checks_pass(r)


# ── 8. malformed payloads are rejected one by one ───────────────────────────────────────────
def test_malformed_payloads_become_invalid_signal_decisions(tmp_path):
    # the e2e fixture (QQQ 100.00 to 10:00, then +0.10 a minute to 11:00). Good signals:
    #   good1 10m at 10:00: 150 shares at 100.01, target 102.00 at 10:20 -> 101.99, pnl 296.98
    #   good2 10m at 10:25 (QQQ 102.50): entry 102.51, 15,000 / 102.50 = 146.3 -> 146 shares,
    #         target 104.50 at 10:45 -> 104.49; pnl (104.49 - 102.51) x 146 = 289.08 - TAF
    #         146 x 0.000166 = 0.024 -> 0.02 = 289.06
    # between them, four malformed rows (delivered 10:01 ... 10:04): a null payload, metadata that
    # is a list, a cloud state missing its fields, cloud_states that is an object. Each becomes an
    # invalid_signal decision naming the field; the run carries on.
    # (before the fix: TypeError out of the replay, the whole backtest aborted)
    catalog = tmp_path / "catalog"
    catalog_io.import_files(catalog, [write_bars_csv(tmp_path / "QQQ.csv", fixture_closes())], tz="UTC", label="open")
    good1 = fixture_signal(signal_id="good1")
    good2 = fixture_signal(signal_id="good2", timestamp=at(55), entry_price=102.50, stop_loss=101.50,
                           target_price=104.50)

    def payload(**over) -> str:
        d = fixture_signal(timestamp=at(31)).to_dict()
        d.update(over)
        return json.dumps(d)

    bad = {
        "null-payload": None,
        "metadata-list": payload(metadata=[1, 2]),
        "cloud-missing-fields": payload(cloud_states=[{"name": "fast", "short_ema": 100.2}]),
        "clouds-not-a-list": payload(cloud_states={"fast": True}),
    }
    rows = [TradeSignalData.from_signal(s, ts_event=ns(s.timestamp), ts_init=ns(s.timestamp) + 2)
            for s in (good1, good2)]
    for k, (sid, text) in enumerate(bad.items(), start=1):
        t = ns(at(30 + k)) + 2
        rows.append(TradeSignalData(ts_event=t, ts_init=t, signal_id=sid, ticker="QQQ", timeframe="10m",
                                    signal_type="cloud_flip_bullish", direction="long", conviction=80, payload=text))
    rows.sort(key=lambda x: x.ts_init)
    # written directly: write_signals would try to rebuild the null payload from the signal
    (tmp_path / "signals").mkdir()
    ParquetDataCatalog(str(tmp_path / "signals")).write_data(rows)
    r = run_backtest(BacktestSpec(catalog=catalog, symbols=["QQQ"], mode="stock", progress=False,
                                  out_dir=tmp_path / "out", signals_catalog=tmp_path / "signals"))
    got = {d.signal_id: d for d in r.log.decisions}
    assert set(got) == {"good1", "good2", *bad}
    assert got["good1"].approved and got["good2"].approved
    for sid, field in (("null-payload", "payload"), ("metadata-list", "metadata"),
                       ("cloud-missing-fields", "cloud_states[0]"), ("clouds-not-a-list", "cloud_states")):
        d = got[sid]
        assert (d.approved, d.reason_code) == (False, "invalid_signal"), d
        assert d.reason.startswith(f"invalid_signal: {field}:"), d.reason
        assert d.ticker == "QQQ" and d.timeframe == "10m"
    trades = {t["signal_id"]: t for t in r.log.trades}
    assert set(trades) == {"good1", "good2"}
    assert (trades["good1"]["entry_price"], trades["good1"]["exit_price"], trades["good1"]["shares"]) == \
        (pytest.approx(100.01), pytest.approx(101.99), 150)
    assert trades["good1"]["pnl"] == pytest.approx(296.98, abs=0.005)
    assert (trades["good2"]["entry_price"], trades["good2"]["exit_price"], trades["good2"]["shares"]) == \
        (pytest.approx(102.51), pytest.approx(104.49), 146)
    assert (trades["good2"]["entry_time"], trades["good2"]["exit_time"]) == (at(55), at(75))
    assert trades["good2"]["pnl"] == pytest.approx(289.06, abs=0.005)
    assert r.summary["signals_received"] == 6
    assert_checks_pass(r)


# ── 9. a stop sent inside a bar that already closed beyond it ───────────────────────────────
def test_stop_sent_after_an_in_bar_limit_fill_fills_at_its_trigger(tmp_path):
    # conviction-60 scalp at bar 61 (close 101.00): limit buy 148 at the pullback edge 100.22
    # (as in tests/test_trade_management.py). Bar 64 opens 101.00, trades down to 99.50 and closes
    # at 99.80: the limit fills at 100.22 inside the bar, and the protective sell stop at 100.00
    # sent after that fill reaches the venue when the bar has already closed below it. The market
    # passed 100.00 after the stop was placed, so it fills at its trigger - 1 tick = 99.99.
    # pnl (99.99 - 100.22) x 148 = -34.04 - TAF 148 x 0.000166 = 0.025 -> 0.02 = -34.06, within
    # the budget (0.22 + 0.01) x 148 + fees.
    # (before the fix: the stop was refused, the position sold at the close 99.80 - 0.01 = 99.79:
    # -63.64 before fees, about twice the planned risk)
    rows = flat() + [bar(101.0, o=100.0), bar(101.0), bar(101.0), bar(99.80, o=101.0, lo=99.50)] + [bar(99.80)] * 5
    r = backtest(tmp_path, rows, [scalp(FLAT + 1, conviction=60)], out_dir=tmp_path / "out")
    (d,) = r.log.decisions
    assert d.approved and d.details["entry"]["limit_price"] == 100.22 and d.shares == 148
    (t,) = r.log.trades
    meta = json.loads(t["metadata_json"])
    assert (t["entry_price"], t["entry_time"], t["shares"]) == (pytest.approx(100.22), at(FLAT + 4), 148)
    assert (t["exit_reason"], t["exit_time"], t["stop_loss"]) == ("stop_loss", at(FLAT + 4), 100.0)
    assert t["exit_price"] == pytest.approx(99.99)
    assert meta["exit_order_id"] is None  # the resting stop filled, no market exit
    assert events(r, "stop_failed") == []
    assert t["pnl"] == pytest.approx(-34.06, abs=0.005)
    stop_fill = [f for f in fill_rows(r) if f["role"] == "stop"]
    assert [(f["order_type"], f["price"], f["qty"]) for f in stop_fill] == [("STOP_MARKET", "99.99", "148")]
    assert_checks_pass(r)


# ── 10. gappy (illiquid) data: the EOD cut-off without a bar, fills at the last print ──────────
def test_eod_close_happens_without_a_bar_at_the_last_print(tmp_path):
    # QQQ trades every minute until 15:50 ET and then not at all (no bar 15:51-16:00). A scalp
    # entered at 10:31 sits at 101.00 with no exit. The EOD cut-off (15:55) has no bar: the
    # executor's EOD alert closes the position anyway, at the last print 101.00 minus a tick =
    # 100.99 (before the fix: held over the close, exited at the next session). The checker
    # accepts a fill in a minute without a trade at the last print, as a note.
    rows = flat() + [bar(101.0, o=100.0)] + [bar(101.0)] * 320  # rows 0-380: 09:30-15:50 ET
    path = tmp_path / "QQQ.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["timestamp", "open", "high", "low", "close", "volume"])
        start = datetime(2025, 6, 16, 13, 30, tzinfo=timezone.utc)
        for i, (o, h, lo, c) in enumerate(rows[:380]):
            w.writerow([(start + timedelta(minutes=i)).isoformat(), f"{o:.2f}", f"{h:.2f}", f"{lo:.2f}", f"{c:.2f}", 10_000])
        # the next session, so the run goes on past the close
        nxt = datetime(2025, 6, 17, 13, 30, tzinfo=timezone.utc)
        for i in range(30):
            w.writerow([(nxt + timedelta(minutes=i)).isoformat(), "101.00", "101.02", "100.98", "101.00", 10_000])
    cat = tmp_path / "catalog"
    catalog_io.import_files(cat, [path], tz="UTC", label="open")
    r = run_backtest(BacktestSpec(catalog=cat, symbols=["QQQ"], mode="stock", progress=False,
                                  signals_catalog=signals_catalog(tmp_path, [scalp(FLAT + 1)]),
                                  out_dir=tmp_path / "out"))
    (t,) = r.log.trades
    assert t["exit_reason"] == "eod_close" and t["exit_price"] == pytest.approx(100.99)
    assert pd.Timestamp(t["exit_time"]) == et("2025-06-16", "15:55")
    exit_fill = [f for f in fill_rows(r) if f["role"] == "exit"][0]
    assert exit_fill["bar_ts"] == "" and exit_fill["last_close"] == "101.0"
    assert_checks_pass(r)
