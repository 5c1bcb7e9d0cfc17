"""Entry tactics, exits by priority and position management in NautilusTrader's BacktestEngine
(issue #7). Crafted bars, replayed signals, hand-computed expectations.

Cloud arithmetic used below: every EMA is seeded with the first close, so after a flat stretch at
100.00 every EMA is exactly 100.00. One bar closing at 101.00 then moves an EMA of period n by
2/(n+1): EMA5 100.3333, EMA8 100.2222, EMA9 100.2000, EMA12 100.1538, ... so the pullback (8/9)
cloud spans 100.20-100.2222 and the fast (5/12) cloud 100.1538-100.3333. Clouds of 1-minute bars
are warm after 50 bars (the macro EMA 50), so the fixtures start with 60 flat minutes.
"""

from __future__ import annotations

import csv
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pytest

from backtests import catalog_io
from backtests.runner import BacktestSpec, run_backtest
from backtests.runner import write_signals
from strategies.signal_data import TradeSignalData
from tests.test_backtest_e2e import SESSION_OPEN, fixture_signal

FLAT = 60  # minutes of 100.00 before anything happens (bars close 09:31 ... 10:30 ET)


def at(minutes: int) -> datetime:
    return SESSION_OPEN + timedelta(minutes=minutes)


def decided(i: int) -> pd.Timestamp:
    """When the executor decides on bar i's minute: 1 ns after the bar, once every bar of that
    minute is in (ExecutorStrategy's minute step)."""
    return pd.Timestamp(at(i)) + pd.Timedelta(1, "ns")


def write_ohlc(path: Path, rows: list[tuple[float, float, float, float]], volume: int = 10_000,
               start: datetime = SESSION_OPEN) -> Path:
    """Rows (open, high, low, close), labelled by bar open, one per minute."""
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["timestamp", "open", "high", "low", "close", "volume"])
        for i, (o, h, l, c) in enumerate(rows):
            w.writerow([(start + timedelta(minutes=i)).isoformat(), f"{o:.2f}", f"{h:.2f}", f"{l:.2f}",
                        f"{c:.2f}", volume])
    return path


def bar(c: float, o: float | None = None, lo: float | None = None, hi: float | None = None):
    o = c if o is None else o
    return (o, max(o, c) + 0.02 if hi is None else hi, min(o, c) - 0.02 if lo is None else lo, c)


def flat(n: int = FLAT, px: float = 100.0):
    return [bar(px) for _ in range(n)]


def scalp(minute: int, **over):
    """A 1-minute (scalp) long signal on QQQ stamped at bar ``minute``'s close."""
    kw = dict(timeframe="1m", timestamp=at(minute), entry_price=101.00, stop_loss=100.00, target_price=103.00,
              signal_type="cloud_flip_bullish", conviction=80, metadata={"volume_confirmed": True})
    kw.update(over)
    return fixture_signal(**kw)


def backtest(tmp_path: Path, rows, signals, *, executor=None, symbols=("QQQ",), extra_csv=(), **kw):
    cat = tmp_path / "catalog"
    files = [write_ohlc(tmp_path / "QQQ.csv", rows)] + [write_ohlc(tmp_path / f"{s}.csv", r) for s, r in extra_csv]
    catalog_io.import_files(cat, files, tz="UTC", label="open")
    return run_backtest(BacktestSpec(catalog=cat, symbols=list(symbols), mode=kw.pop("mode", "stock"),
                                     progress=False, executor=executor or {},
                                     signals_catalog=signals_catalog(tmp_path, signals), **kw))


def signals_catalog(tmp_path: Path, signals) -> Path:
    """Signals stamped SIGNAL_DELAY_NS after their bar, as the signal actor publishes them."""
    from strategies.signal_actor import SIGNAL_DELAY_NS

    path = tmp_path / "signals"
    rows = []
    for s in signals:
        ns = int(s.timestamp.timestamp() * 1e9)
        rows.append(TradeSignalData.from_signal(s, ts_event=ns, ts_init=ns + SIGNAL_DELAY_NS))
    write_signals(path, rows)
    return path


def events(result, kind):
    return [e for e in result.log.events if e[1] == kind]


# ── entries ──────────────────────────────────────────────────────────────────────────────────
def test_limit_at_cloud_fills_on_the_pullback(tmp_path):
    # bar 61 closes 101.00 (pullback cloud upper edge 100.2222); a conviction-60 signal there
    # -> limit buy at 100.22. Bars 62-63 stay at 101; bar 64 dips to 100.10 and closes 100.90:
    # the limit fills at 100.22. Size: risk 5,000 / 1.00 x 0.5 (conviction 60) = 2,500, capped by
    # 15% x 100,000 / 101.00 = 148 shares.
    rows = flat() + [bar(101.0, o=100.0), bar(101.0), bar(101.0), bar(100.90, o=101.0, lo=100.10)] + \
        [bar(100.90)] * 10
    r = backtest(tmp_path, rows, [scalp(FLAT + 1, conviction=60)])
    (d,) = r.log.decisions
    assert d.approved and d.details["entry"]["tactic"] == "limit_at_cloud"
    assert d.details["entry"]["order_type"] == "limit" and d.details["entry"]["limit_price"] == 100.22
    assert d.shares == 148
    assert r.summary["open_positions_at_end"] == 1  # still open at the end of the data
    (row,) = r.log.open_trades.values()
    assert row["entry_price"] == 100.22 and row["shares"] == 148
    assert row["entry_time"] == at(FLAT + 4)
    assert json.loads(row["metadata_json"])["entry_tactic"] == "limit_at_cloud"


def test_default_time_in_force_ioc_cancels_a_limit_that_does_not_fill_at_once(tmp_path):
    # the same limit buy at 100.22 with default_time_in_force="ioc": the market is at 101.00, so
    # nothing fills immediately and the venue cancels the rest: no trade, the entry failed
    rows = flat() + [bar(101.0, o=100.0), bar(101.0), bar(101.0), bar(100.90, o=101.0, lo=100.10)] + \
        [bar(100.90)] * 10
    r = backtest(tmp_path, rows, [scalp(FLAT + 1, conviction=60)], executor={"default_time_in_force": "ioc"})
    (d,) = r.log.decisions
    assert d.approved and d.details["entry"]["limit_price"] == 100.22
    assert r.log.trades == [] and r.log.open_trades == {}
    (failed,) = events(r, "entry_failed")
    assert failed[0] == pd.Timestamp(at(FLAT + 1)) + pd.Timedelta(2, "ns")  # at once, when the signal was decided


def test_limit_at_cloud_cancelled_after_the_expiry(tmp_path):
    rows = flat() + [bar(101.0, o=100.0)] + [bar(101.0 + 0.05 * k) for k in range(1, 15)]
    r = backtest(tmp_path, rows, [scalp(FLAT + 1, conviction=60)], executor={"limit_entry_expire_bars": 3})
    assert r.log.trades == [] and r.log.open_trades == {}
    (exp,) = events(r, "limit_expired")
    assert exp[0] == decided(FLAT + 5)  # 4th bar after the order: more than 3 bars unfilled
    assert [e[1] for e in r.log.events if e[1] in ("limit_expired", "entry_failed")] == \
        ["limit_expired", "entry_failed"]


def test_scale_in_adds_on_a_pullback_that_holds(tmp_path):
    # conviction 80 without volume confirmation -> scale-in: 74 of 148 now at market (101.00 + 1
    # tick = 101.01), the other 74 when a bar touches the pullback cloud and closes above it.
    # Bar 64: low 100.15 <= upper edge, close 100.80 >= lower edge -> holds -> add 74 at 100.81.
    rows = flat() + [bar(101.0, o=100.0), bar(101.0), bar(101.0), bar(100.80, o=101.0, lo=100.15)] + \
        [bar(100.80)] * 5
    r = backtest(tmp_path, rows, [scalp(FLAT + 1, metadata={})])
    (d,) = r.log.decisions
    assert d.details["entry"] | {} == {"tactic": "scale_in", "total_shares": 148, "first_shares": 74,
                                       "order_type": "market", "limit_price": None, "expire_bars": None,
                                       "add_shares": 74, "reason": d.details["entry"]["reason"]}
    (add,) = events(r, "scale_in")
    assert add[0] == decided(FLAT + 4) and add[3]["shares"] == 74
    (row,) = r.log.open_trades.values()
    assert row["shares"] == 148
    assert row["entry_price"] == pytest.approx((74 * 101.01 + 74 * 100.81) / 148)
    assert json.loads(row["metadata_json"])["scale_in"] == "added"


def test_scale_in_add_skipped_when_the_pullback_breaks_the_cloud(tmp_path):
    # bar 64 closes 100.30: below the pullback cloud (EMA8 100.4785 / EMA9 100.4504 after it) but
    # above the macro cloud (EMA34 100.1697 / EMA50 100.1203): the add is dropped for good, even
    # though bar 66 would have been a clean pullback; the first half stays open
    rows = flat() + [bar(101.0, o=100.0), bar(101.0), bar(101.0), bar(100.30, o=101.0)] + \
        [bar(100.60), bar(100.50, o=100.60, lo=100.15)] + [bar(100.60)] * 5
    r = backtest(tmp_path, rows, [scalp(FLAT + 1, metadata={}, stop_loss=99.0, target_price=105.0)])
    (skip,) = events(r, "scale_in_skipped")
    assert skip[0] == decided(FLAT + 4) and "closed through the cloud" in skip[2]
    assert events(r, "scale_in") == []
    (row,) = r.log.open_trades.values()
    assert row["shares"] == 74 and row["entry_price"] == 101.01


# ── exits ────────────────────────────────────────────────────────────────────────────────────
def ema_path(closes: list[float], n: int) -> list[float]:
    out, v = [], None
    for c in closes:
        v = c if v is None else v + 2.0 / (n + 1) * (c - v)
        out.append(v)
    return out


def exit_of(result):
    (t,) = result.log.trades
    return t, json.loads(t["metadata_json"])


def test_momentum_exhaustion_beats_the_target_on_the_same_bar(tmp_path):
    # entry at bar 61 (close 101.00, fill 101.01); bars 62 and 63 are green and close above the
    # fast cloud -> with bar 61 that is 3 in a row at bar 63, which also reaches the 101.20 target:
    # both fire, exhaustion (priority 2) is recorded over the target (4). Exit 101.20 - 0.01.
    rows = flat() + [bar(101.0, o=100.0), bar(101.10, o=101.0), bar(101.20, o=101.10)] + [bar(101.20)] * 5
    r = backtest(tmp_path, rows, [scalp(FLAT + 1, target_price=101.20)])
    t, meta = exit_of(r)
    assert t["exit_reason"] == "momentum_exhaustion" and meta["exits_fired"] == ["momentum_exhaustion",
                                                                                 "profit_target"]
    assert t["exit_time"] == at(FLAT + 3) and t["exit_price"] == pytest.approx(101.19)
    assert t["shares"] == 148 and t["entry_price"] == pytest.approx(101.01)


def test_target_alone_when_the_streak_is_broken(tmp_path):
    # same path but bar 62 is a red candle: no exhaustion, the 2:1 target alone fires at bar 63
    rows = flat() + [bar(101.0, o=100.0), bar(101.10, o=101.15), bar(101.20, o=101.10)] + [bar(101.20)] * 5
    r = backtest(tmp_path, rows, [scalp(FLAT + 1, target_price=101.20)])
    t, meta = exit_of(r)
    assert (t["exit_reason"], meta["exits_fired"], t["exit_time"]) == ("profit_target", ["profit_target"], at(FLAT + 3))


def test_cloud_flip_exit(tmp_path):
    # a ramp from 100 to 103 puts the macro cloud far below; then closes ease by 0.05 a bar until
    # the fast (5/12) cloud turns bearish, with the close still above macro and the fixed stop
    ramp = [round(100.0 + 0.15 * k, 2) for k in range(1, 21)]            # bars 61-80, 103.00 at bar 80
    ease = [round(103.0 - 0.05 * k, 2) for k in range(1, 31)]            # bars 81-110
    closes = [100.0] * FLAT + ramp + ease
    rows = flat() + [bar(c, o=p) for p, c in zip(closes[FLAT - 1:-1], closes[FLAT:])]
    e5, e12 = ema_path(closes, 5), ema_path(closes, 12)
    flip = next(i for i in range(FLAT + 20, len(closes)) if e5[i] < e12[i])  # first bearish bar
    r = backtest(tmp_path, rows, [scalp(FLAT + 20, entry_price=103.0, stop_loss=101.0, target_price=110.0)])
    t, meta = exit_of(r)
    assert t["exit_reason"] == "cloud_flip" and meta["exits_fired"] == ["cloud_flip"]
    assert t["exit_time"] == at(flip + 1)  # row i closes at minute i+1
    assert t["exit_price"] == pytest.approx(closes[flip] - 0.01)


def test_time_stop_after_two_hours_without_progress(tmp_path):
    # a 10m day trade entered at 10:00 (100.01) while the price sits at 100.00: open 120 minutes
    # and not better than entry -> time_stop decided on the 12:00 bar (1 ns after it), sold at 99.99
    rows = [bar(100.0) for _ in range(200)]
    sig = fixture_signal(timestamp=at(30), stop_loss=99.0, target_price=102.0)
    r = backtest(tmp_path, rows, [sig])
    t, meta = exit_of(r)
    assert (t["exit_reason"], t["exit_time"], t["exit_price"]) == ("time_stop", at(150), 99.99)


def test_macro_cloud_close_is_a_stop_loss(tmp_path):
    # a scalp whose fixed stop (95) is far away: the first close below the 1-minute macro (34/50)
    # cloud's lower edge exits as stop_loss
    closes = [100.0] * FLAT + [101.0, 101.0, 100.6, 100.2, 99.9, 99.6]
    rows = flat() + [bar(c, o=p) for p, c in zip(closes[FLAT - 1:-1], closes[FLAT:])] + [bar(99.6)] * 3
    e34, e50 = ema_path(closes, 34), ema_path(closes, 50)
    first = next(i for i in range(FLAT + 1, len(closes)) if closes[i] < min(e34[i], e50[i]))
    r = backtest(tmp_path, rows, [scalp(FLAT + 1, stop_loss=95.0, target_price=110.0)])
    t, meta = exit_of(r)
    assert t["exit_reason"] == "stop_loss" and meta["exits_fired"][0] == "stop_loss"
    assert t["exit_time"] == at(first + 1)


def test_partial_fill_then_exit_closes_exactly_the_filled_quantity(tmp_path):
    # limit buy 148 @ 100.22 (see the limit test); the venue gives 50 shares per touch: bar 64
    # touches once (its low), the rest is cancelled after 2 unfilled bars, then bar 68 jumps to
    # the 103.00 target: sell exactly 50 at 102.99.
    # P&L (102.99 - 100.22) x 50 = 138.50 - fees on 2025-06-16 (SEC $0 per $1M from 2025-05-14 +
    # TAF 50 x 0.000166 = 0.0083 -> 0.01) = 138.49 (the undated $27.80/$1M rate gave 0.15, 138.35)
    rows = flat() + [bar(101.0, o=100.0), bar(101.0), bar(101.0), bar(100.90, o=101.0, lo=100.10)] + \
        [bar(100.90)] * 3 + [bar(103.0, o=100.90)] + [bar(103.0)] * 3
    r = backtest(tmp_path, rows, [scalp(FLAT + 1, conviction=60)], limit_fill_cap=50,
                 executor={"limit_entry_expire_bars": 2})
    partial = events(r, "entry_partial")
    assert len(partial) == 1 and partial[0][3]["filled"] == 50
    t, meta = exit_of(r)
    assert t["shares"] == 50 and t["entry_price"] == pytest.approx(100.22)
    assert (t["exit_reason"], t["exit_price"]) == ("profit_target", 102.99)
    assert t["pnl"] == pytest.approx(138.49, abs=0.005)
    assert r.summary["open_positions_at_end"] == 0


def test_leveraged_etf_max_hold_counts_sessions_not_days(tmp_path):
    # a 1h swing on QQQ routes to TQQQ (3x; the index has no 2x in the catalog). With max hold 2
    # sessions for 3x, entered Mon 2025-06-16: Tue (1), Wed (2), Thu is Juneteenth (no session),
    # Fri 06-20 is the 3rd -> max_hold on Friday's first bar. Prices rise slowly all week.
    days = ["2025-06-16", "2025-06-17", "2025-06-18", "2025-06-20", "2025-06-23"]
    q_rows, t_rows = {}, {}
    for d, day in enumerate(days):
        open_ = datetime.fromisoformat(f"{day}T13:30:00+00:00")
        q_rows[open_] = [bar(round(100 + 0.5 * d + 0.001 * k, 2)) for k in range(390)]
        t_rows[open_] = [bar(round(50 + 0.75 * d + 0.0015 * k, 2)) for k in range(390)]
    cat = tmp_path / "catalog"
    files = []
    for sym, per_day in (("QQQ", q_rows), ("TQQQ", t_rows)):
        path = tmp_path / f"{sym}.csv"
        with path.open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["timestamp", "open", "high", "low", "close", "volume"])
            for open_, rows in per_day.items():
                for i, (o, h, l, c) in enumerate(rows):
                    w.writerow([(open_ + timedelta(minutes=i)).isoformat(), o, h, l, c, 10_000])
        files.append(path)
    catalog_io.import_files(cat, files, tz="UTC", label="open")
    sig = fixture_signal(timeframe="1h", timestamp=at(60), entry_price=100.06, stop_loss=98.0,
                         target_price=140.0)
    r = run_backtest(BacktestSpec(catalog=cat, symbols=["QQQ"], mode="leveraged_etf", progress=False,
                                  executor={"max_etf_hold_days_3x": 2},
                                  signals_catalog=signals_catalog(tmp_path, [sig])))
    t, meta = exit_of(r)
    assert t["ticker"] == "TQQQ" and t["instrument_type"] == "leveraged_etf"
    assert t["exit_reason"] == "max_hold"
    assert t["exit_time"] == datetime(2025, 6, 20, 13, 31, tzinfo=timezone.utc)


def test_trailing_stop_at_the_pullback_cloud_for_a_swing(tmp_path):
    # Ten sessions of QQQ whose hourly candles (09:30-10:30, ..., 15:30-16:00) alternate +1.00 and
    # -0.30: an uptrend whose red hours keep breaking the exhaustion streak. A 1h swing long enters
    # on day 9; two hours later one hour drops 2.00, closing below the hourly pullback (8/9)
    # cloud while the fast (5/12) cloud stays bullish and the macro cloud is far below: the
    # trailing stop (and nothing else) fires at that hour's close.
    days = ["2025-06-16", "2025-06-17", "2025-06-18", "2025-06-20", "2025-06-23", "2025-06-24", "2025-06-25",
            "2025-06-26", "2025-06-27", "2025-06-30"]
    hourly, stamps = [], []
    level = 100.0
    rows_by_day = []
    for day in days:
        open_ = datetime.fromisoformat(f"{day}T13:30:00+00:00")
        rows = []
        for h, length in enumerate([60] * 6 + [30]):
            k = len(hourly)
            step = 1.0 if k % 2 == 0 else -0.30
            if day == days[-1] and h == 2:
                step = -2.0  # the dip
            target = round(level + step, 2)
            for m in range(length):
                c = round(level + step * (m + 1) / length, 2)
                o = round(level + step * m / length, 2) if m else level
                rows.append((o, max(o, c) + 0.01, min(o, c) - 0.01, c))
            level = target
            hourly.append(target)
            stamps.append(open_ + timedelta(minutes=60 * h + length))
        rows_by_day.append((open_, rows))
    cat = tmp_path / "catalog"
    path = tmp_path / "QQQ.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["timestamp", "open", "high", "low", "close", "volume"])
        for open_, rows in rows_by_day:
            for i, (o, h, l, c) in enumerate(rows):
                w.writerow([(open_ + timedelta(minutes=i)).isoformat(), f"{o:.2f}", f"{h:.2f}", f"{l:.2f}",
                            f"{c:.2f}", 10_000])
    catalog_io.import_files(cat, [path], tz="UTC", label="open")
    entry_hour = 63  # day 10, the 09:30-10:30 hour: enter at its 10:30 close
    dip = 65  # day 10, third hour (11:30-12:30)
    e8, e9, e5, e12 = (ema_path(hourly, n) for n in (8, 9, 5, 12))
    assert hourly[dip] < min(e8[dip], e9[dip]) and e5[dip] > e12[dip]
    assert all(not (hourly[i] < min(e8[i], e9[i])) for i in range(entry_hour + 1, dip))
    sig = fixture_signal(timeframe="1h", timestamp=stamps[entry_hour], entry_price=hourly[entry_hour],
                         stop_loss=hourly[entry_hour] - 10, target_price=hourly[entry_hour] + 30)
    r = run_backtest(BacktestSpec(catalog=cat, symbols=["QQQ"], mode="stock", progress=False,
                                  signals_catalog=signals_catalog(tmp_path, [sig])))
    assert [d.approved for d in r.log.decisions] == [True], [d.reason for d in r.log.decisions]
    t, meta = exit_of(r)
    assert t["trade_type"] == "swing"
    assert (t["exit_reason"], meta["exits_fired"]) == ("trailing_stop", ["trailing_stop"])
    # the hour bar is built when its bucket closes: 12:30 ET, i.e. the dip hour's stamp
    assert t["exit_time"] == stamps[dip]
