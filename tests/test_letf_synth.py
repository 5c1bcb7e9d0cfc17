"""Synthetic leveraged-ETF bars (daily-reset model) and their tracking error against real funds.

Hand-computed cases use round numbers: underlying 100 -> 101 (+1 %), fund 50, L = 3 -> 51.50.
Real-data tests read ../shared/data (QQQ/TQQQ 1-minute, daily ^NDX/TQQQ) and skip without it.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from backtests.letf_synth import (
    LETFInputError,
    daily_cost,
    daily_reset_closes,
    daily_tracking_report,
    frame_from_ohlcv,
    regular_session_flags,
    session_closes,
    synthesize_letf,
    synthesize_letf_bars,
    to_ohlcv_frame,
    tracking_error_report,
)


def bars(rows, tz="UTC") -> pd.DataFrame:
    """rows: (close time, open, high, low, close[, volume]); times in UTC unless ``tz``."""
    idx = pd.DatetimeIndex([pd.Timestamp(r[0]) for r in rows]).tz_localize(tz).tz_convert("UTC")
    data = {
        "open": [r[1] for r in rows],
        "high": [r[2] for r in rows],
        "low": [r[3] for r in rows],
        "close": [r[4] for r in rows],
        "volume": [r[5] if len(r) > 5 else 1000.0 for r in rows],
    }
    return pd.DataFrame(data, index=idx)


def flat(ts, px, volume=1000.0):
    return (ts, px, px, px, px, volume)


# 2025-06-02 (Mon) and 2025-06-03 (Tue): EDT, session 13:30-20:00 UTC.
TWO_DAYS = [
    flat("2025-06-02 14:00", 100.5),
    ("2025-06-02 20:00", 100.9, 101.2, 100.8, 101.0),  # the 15:59-16:00 ET bar: day-1 close 101
    flat("2025-06-02 20:01", 101.505),  # after hours, next segment
    flat("2025-06-03 13:31", 102.01),  # +1 % over the day-1 close
    flat("2025-06-03 20:00", 99.99),  # -1 % over the day-1 close
]


# -- the model, by hand --------------------------------------------------------------------------


def test_reset_without_costs_hand_computed():
    syn = synthesize_letf(bars(TWO_DAYS), 3, 50.0, base_price=100.0, expense_ratio=0.0)
    b = syn.bars
    # day 1: P = 50 * (1 + 3 * (S/100 - 1))
    assert b["close"].iloc[0] == pytest.approx(51.50 - 50 * 3 * 0.005)  # 100.5 -> 50.75
    assert b["close"].iloc[1] == pytest.approx(51.50)  # day-1 close, the new base
    assert b["high"].iloc[1] == pytest.approx(51.80)  # 101.2
    assert b["low"].iloc[1] == pytest.approx(51.20)  # 100.8
    assert b["open"].iloc[1] == pytest.approx(51.35)  # 100.9
    # day 2 (and the after-hours bar before it): base 51.50 at underlying 101
    assert b["close"].iloc[2] == pytest.approx(51.50 * 1.015)  # 101.505 is +0.5 % over 101
    assert b["close"].iloc[3] == pytest.approx(53.045)  # 51.50 * 1.03
    assert b["close"].iloc[4] == pytest.approx(49.955)  # 51.50 * 0.97
    # resets: 2025-06-02 and 2025-06-03 closes (the last bar is exactly at the second one)
    r = syn.resets
    assert list(r.index) == [date(2025, 6, 2), date(2025, 6, 3)]
    assert r["underlying_close"].tolist() == [101.0, 99.99]
    assert r["fund_close_before_costs"].iloc[0] == pytest.approx(51.50)
    assert r["nav"].tolist() == pytest.approx([51.50, 49.955])
    assert r["close_bar"].all()
    assert r["bars_in_session"].tolist() == [2, 2]
    assert b["regular_session"].tolist() == [True, True, False, True, True]


def test_costs_charged_at_reset_to_the_cent():
    # ER 25.2 %/yr -> c = 0.001 per session: 50 * 0.001 = $0.05 at the first reset
    syn = synthesize_letf(bars(TWO_DAYS), 3, 50.0, base_price=100.0, expense_ratio=0.252)
    assert syn.daily_cost == pytest.approx(0.001)
    b, r = syn.bars, syn.resets
    assert round(b["close"].iloc[1], 2) == 51.50  # the close bar still shows the pre-cost value
    assert round(r["cost"].iloc[0], 2) == 0.05
    assert round(r["nav"].iloc[0], 2) == 51.45  # the day-2 base: 50 * (1 + 0.03 - 0.001)
    assert round(b["close"].iloc[3], 4) == round(51.45 * 1.03, 4)  # 52.9935
    assert round(b["close"].iloc[3], 2) == 52.99
    # second reset: 51.45 * (1 - 0.03 - 0.001) = 49.85505
    assert r["nav"].iloc[1] == pytest.approx(51.45 * 0.969)
    assert round(r["cost"].iloc[1], 4) == round(51.45 * 0.001, 4)


def test_financing_term_long_and_inverse():
    # rate 2.52 %/yr -> 0.0001 per session; (1 - L) * r: a 3x fund pays 2r, a -3x fund earns 4r
    assert daily_cost(3, expense_ratio=0.0, rate=0.0252) == pytest.approx(0.0002)
    assert daily_cost(-3, expense_ratio=0.0, rate=0.0252) == pytest.approx(-0.0004)
    assert daily_cost(3, expense_ratio=0.0084, financing_spread=0.0042, rate=0.0) == pytest.approx(
        0.0126 / 252
    )
    long = synthesize_letf(bars(TWO_DAYS[:2]), 3, 50.0, base_price=100.0, expense_ratio=0.0,
                           rate=0.0252)
    assert long.resets["nav"].iloc[0] == pytest.approx(50 * (1.03 - 0.0002))  # 51.49
    inverse = synthesize_letf(bars(TWO_DAYS[:2]), -3, 50.0, base_price=100.0, expense_ratio=0.0,
                              rate=0.0252)
    assert inverse.resets["nav"].iloc[0] == pytest.approx(50 * (0.97 + 0.0004))  # 48.52


def test_inverse_fund_high_comes_from_underlying_low():
    u = bars([("2025-06-02 14:00", 100.0, 102.0, 99.0, 101.0)])
    b = synthesize_letf_bars(u, -3, 50.0, base_price=100.0, expense_ratio=0.0)
    assert b["open"].iloc[0] == pytest.approx(50.0)
    assert b["high"].iloc[0] == pytest.approx(51.5)  # from the low 99: 50 * (1 + 0.03)
    assert b["low"].iloc[0] == pytest.approx(47.0)  # from the high 102: 50 * (1 - 0.06)
    assert b["close"].iloc[0] == pytest.approx(48.5)
    assert (b["high"] >= b[["open", "close"]].max(axis=1)).all()
    assert (b["low"] <= b[["open", "close"]].min(axis=1)).all()
    # a long fund keeps high from high
    b2 = synthesize_letf_bars(u, 2, 50.0, base_price=100.0, expense_ratio=0.0)
    assert b2[["open", "high", "low", "close"]].iloc[0].tolist() == pytest.approx([50, 52, 49, 51])


def test_fractional_leverage_and_default_base_is_first_open():
    u = bars([("2025-06-02 14:00", 200.0, 204.0, 198.0, 202.0)])
    b = synthesize_letf_bars(u, 1.5, 40.0, expense_ratio=0.0)  # base = first open 200
    assert b["open"].iloc[0] == pytest.approx(40.0)
    assert b["close"].iloc[0] == pytest.approx(40.0 * (1 + 1.5 * 0.01))  # 40.60
    assert b["high"].iloc[0] == pytest.approx(41.2)
    assert b["low"].iloc[0] == pytest.approx(39.4)


def test_early_close_2025_07_03_resets_at_13_00_et():
    # 2025-07-03 closes at 13:00 ET = 17:00 UTC; 07-04 is a holiday; next session 07-07.
    u = bars([
        flat("2025-07-03 10:00", 100.5),
        flat("2025-07-03 13:00", 101.0),  # the 12:59-13:00 ET bar: the session close
        flat("2025-07-03 13:01", 102.0),  # after the early close: next segment
        flat("2025-07-03 15:30", 101.0),  # would be in session on a normal day; not today
        flat("2025-07-03 16:00", 99.0),  # 16:00 ET is no reset on an early-close day
        flat("2025-07-07 09:31", 103.02),  # +2 % over the 13:00 close
    ], tz="America/New_York")
    syn = synthesize_letf(u, 3, 50.0, base_price=100.0, expense_ratio=0.0)
    r, b = syn.resets, syn.bars
    assert list(r.index) == [date(2025, 7, 3)]
    assert r["close_utc"].iloc[0] == pd.Timestamp("2025-07-03 17:00", tz="UTC")
    assert r["nav"].iloc[0] == pytest.approx(51.50)
    assert b["regular_session"].tolist() == [True, True, False, False, False, True]
    assert b["close"].iloc[1] == pytest.approx(51.50)
    assert b["close"].iloc[2] == pytest.approx(51.50 * (1 + 3 * (102 / 101 - 1)))  # 53.029703
    assert round(b["close"].iloc[2], 4) == 53.0297
    assert b["close"].iloc[3] == pytest.approx(51.50)
    assert b["close"].iloc[4] == pytest.approx(51.50 * (1 + 3 * (99 / 101 - 1)))
    assert b["close"].iloc[5] == pytest.approx(51.50 * 1.06)  # 54.59
    # dropping extended hours keeps the same prices for the session bars
    dropped = synthesize_letf_bars(u, 3, 50.0, base_price=100.0, expense_ratio=0.0,
                                   extended_hours="drop")
    assert len(dropped) == 3
    assert dropped["close"].tolist() == pytest.approx([b["close"].iloc[i] for i in (0, 1, 5)])


def test_session_closes_include_early_closes():
    closes = session_closes("2025-11-26", "2025-12-01")
    assert list(closes.index) == [date(2025, 11, 26), date(2025, 11, 28), date(2025, 12, 1)]
    assert closes.iloc[1] == pd.Timestamp("2025-11-28 18:00", tz="UTC")  # 13:00 EST
    assert closes.iloc[2] == pd.Timestamp("2025-12-01 21:00", tz="UTC")  # 16:00 EST
    idx = pd.DatetimeIndex(
        ["2025-11-28 18:00", "2025-11-28 18:01", "2025-12-01 14:31", "2025-12-01 14:30"], tz="UTC"
    )
    assert regular_session_flags(idx).tolist() == [True, False, True, False]


def test_missing_close_bar_and_missing_session():
    u = bars([
        flat("2025-06-02 19:58", 101.0),  # last bar of 06-02, two minutes early
        flat("2025-06-04 14:00", 102.01),  # nothing at all on 06-03
    ])
    syn = synthesize_letf(u, 3, 50.0, base_price=100.0, expense_ratio=0.0)
    r = syn.resets
    assert list(r.index) == [date(2025, 6, 2), date(2025, 6, 3)]
    assert r["close_bar"].tolist() == [False, False]
    assert r["bars_in_session"].tolist() == [1, 0]
    assert r["nav"].tolist() == pytest.approx([51.5, 51.5])  # 06-03 counts as flat
    assert syn.bars["close"].iloc[1] == pytest.approx(53.045)


def test_volume_and_synthetic_flag():
    u = bars(TWO_DAYS)
    b = synthesize_letf_bars(u, 3, 50.0)
    assert b.attrs["synthetic"] is True
    assert b["synthetic"].all()
    assert (b["volume"] == 0).all()
    b2 = synthesize_letf_bars(u, 3, 50.0, volume_scale=0.5)
    assert b2["volume"].tolist() == [500.0] * len(u)
    # round trip to the catalog_io shape
    f = to_ohlcv_frame(b)
    assert list(f.columns) == ["ts_close_utc", "open", "high", "low", "close", "volume"]
    assert f.attrs["synthetic"] is True
    back = frame_from_ohlcv(f)
    assert back.index.equals(b.index)


def test_wipe_out_raises():
    u = bars([flat("2025-06-02 14:00", 66.0)])
    with pytest.raises(LETFInputError, match="<= 0"):
        synthesize_letf_bars(u, 3, 50.0, base_price=100.0)
    u = bars([flat("2025-06-02 20:00", 66.0)])
    with pytest.raises(LETFInputError, match="wiped out"):
        synthesize_letf_bars(u, 3, 50.0, base_price=100.0)


def test_daily_reset_closes_hand_computed():
    s = pd.Series([100.0, 101.0, 99.99], index=pd.to_datetime(["2025-06-02", "2025-06-03",
                                                                 "2025-06-04"]))
    p = daily_reset_closes(s, 2, 10.0, expense_ratio=0.0)
    assert p.tolist() == pytest.approx([10.0, 10.2, 9.996])
    p = daily_reset_closes(s, 2, 10.0, expense_ratio=0.252)  # c = 0.001
    assert p.tolist() == pytest.approx([10.0, 10.19, 10.19 * 0.979])
    assert p.attrs["synthetic"] is True


# -- input validation -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "mutate, field, text",
    [
        (lambda d: d.assign(close=[np.nan] + d["close"].tolist()[1:]), "underlying.close", "NaN"),
        (lambda d: d.assign(low=[-1.0] + d["low"].tolist()[1:]), "underlying.low", "-1.0"),
        (lambda d: d.assign(volume=[-5.0] + d["volume"].tolist()[1:]), "underlying.volume", "-5.0"),
        (lambda d: d.iloc[[1, 0, 2]], "underlying.index", "not sorted"),
        (lambda d: d.iloc[[0, 0, 1]], "underlying.index", "duplicate"),
        (lambda d: d.tz_convert(None), "underlying.index", "naive"),
        (lambda d: d.drop(columns="high"), "underlying.high", "column missing"),
        (lambda d: d.assign(high=d["low"] - 1), "underlying.high", "low..high"),
        (lambda d: d.reset_index(drop=True), "underlying.index", "DatetimeIndex"),
    ],
)
def test_bad_bars_name_the_field(mutate, field, text):
    u = mutate(bars(TWO_DAYS[:3]))
    with pytest.raises(LETFInputError) as exc:
        synthesize_letf_bars(u, 3, 50.0)
    assert exc.value.field == field
    assert field in str(exc.value)
    assert text in str(exc.value)


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"leverage": 0}, "leverage"),
        ({"leverage": float("nan")}, "leverage"),
        ({"start_price": 0.0}, "start_price"),
        ({"start_price": -50.0}, "start_price"),
        ({"expense_ratio": -0.01}, "expense_ratio"),
        ({"rate": float("inf")}, "rate"),
        ({"calendar": "NOPE"}, "calendar"),
        ({"extended_hours": "keep"}, "extended_hours"),
        ({"base_price": 0.0}, "base_price"),
    ],
)
def test_bad_parameters_name_the_field(kwargs, field):
    args = {"leverage": 3, "start_price": 50.0, **kwargs}
    with pytest.raises(LETFInputError) as exc:
        synthesize_letf_bars(bars(TWO_DAYS), **args)
    assert exc.value.field == field
    assert str(exc.value).startswith(field)


def test_tracking_report_against_itself_is_zero():
    # a "real" fund that follows the model exactly (no costs) tracks the synthetic one perfectly
    rng = np.random.default_rng(7)
    closes = pd.Series(100 * np.exp(np.cumsum(rng.normal(0, 0.0008, 3 * 390))))
    idx = []
    for d in ("2025-06-02", "2025-06-03", "2025-06-04"):
        idx.extend(pd.date_range(f"{d} 13:31", f"{d} 20:00", freq="1min", tz="UTC"))
    px = closes.to_numpy()
    u = pd.DataFrame({"open": px, "high": px * 1.0005, "low": px * 0.9995, "close": px,
                      "volume": 1.0}, index=pd.DatetimeIndex(idx))
    fund = synthesize_letf_bars(u, 3, 50.0, expense_ratio=0.0)
    rep = tracking_error_report(u, fund, 3, expense_ratio=0.0)
    assert rep["sessions"] == 2
    assert rep["start_close_utc"] == "2025-06-02 20:00:00+00:00"
    assert rep["daily_te_max_abs_bp"] < 1e-6
    assert rep["intraday_mean_abs_dev_bp"] < 1e-6
    assert rep["intraday_reanchored_mean_abs_dev_bp"] < 1e-6
    assert rep["intraday_minutes"] == 2 * 390
    assert rep["real_beta"] == pytest.approx(3.0)
    # with costs in the model the gap per session is the cost: 0.0084/252 = 0.333 bp
    rep = tracking_error_report(u, fund, 3, expense_ratio=0.0084)
    assert rep["daily_te_mean_bp"] == pytest.approx(-0.0084 / 252 * 1e4, rel=1e-3)


# -- real data -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def qqq_tqqq(shared_data):
    from backtests.catalog_io import read_ohlcv

    folder = shared_data / "intraday-1min"
    paths = [folder / f"{s}_1min_2025-04-30_2025-06-13.csv" for s in ("QQQ", "TQQQ")]
    if not all(p.is_file() for p in paths):
        pytest.skip("QQQ/TQQQ 1-minute files missing from ../shared/data/intraday-1min")
    # naive UTC timestamps, Yahoo bars labelled by their open
    return tuple(frame_from_ohlcv(read_ohlcv(p, tz="UTC", label="open")[1]) for p in paths)


def test_real_tqqq_tracking_error(qqq_tqqq):
    qqq, tqqq = qqq_tqqq
    rep = tracking_error_report(qqq, tqqq, 3, expense_ratio=0.0084)
    # measured: 31 sessions; daily TE sd 3.3 bp, mean |diff| 4.5 bp, bias +4.2 bp/day (no
    # financing modelled); re-anchored intraday deviation 3.4 bp; real beta 2.999
    assert rep["start_close_utc"] == "2025-04-30 20:00:00+00:00"
    assert rep["start_price"] == pytest.approx(54.83)
    assert rep["sessions"] == 31
    assert rep["daily_te_std_bp"] < 6.0
    assert rep["daily_te_mean_abs_bp"] < 8.0
    assert rep["intraday_reanchored_mean_abs_dev_bp"] < 6.0
    assert rep["intraday_minutes"] > 12_000
    assert 2.95 < rep["real_beta"] < 3.05
    # financing explains the bias: at ~4.3 % (May 2025) the mean daily gap shrinks below 2 bp
    fin = tracking_error_report(qqq, tqqq, 3, expense_ratio=0.0084, rate=0.043)
    assert abs(fin["daily_te_mean_bp"]) < 2.0 < rep["daily_te_mean_bp"]
    assert fin["intraday_mean_abs_dev_bp"] < 25.0 < rep["intraday_mean_abs_dev_bp"]
    assert fin["daily_te_std_bp"] == pytest.approx(rep["daily_te_std_bp"])


def test_real_synthetic_tqqq_bars_follow_the_fund(qqq_tqqq):
    qqq, tqqq = qqq_tqqq
    syn = synthesize_letf(qqq, 3, 50.0, expense_ratio=0.0084)
    b = syn.bars
    assert len(b) == len(qqq) and b["synthetic"].all()
    assert (b["high"] >= b["low"]).all()
    assert len(syn.resets) == 32  # 32 sessions, Memorial Day absent
    assert date(2025, 5, 26) not in set(syn.resets.index)
    assert syn.resets["close_bar"].all()


def _yf3(path) -> pd.Series:
    """yfinance file with the 3-line header (Price/Ticker/Date): Close column by date."""
    df = pd.read_csv(path, skiprows=3, header=None,
                     names=["Date", "Adj Close", "Close", "High", "Low", "Open", "Volume"])
    return pd.Series(df["Close"].to_numpy(float), index=pd.to_datetime(df["Date"].str[:10]))


def test_real_daily_tqqq_vs_ndx(shared_data):
    folder = shared_data / "daily"
    if not (folder / "tqqq.csv").is_file() or not (folder / "INDEX_NDX.csv").is_file():
        pytest.skip("daily tqqq.csv / INDEX_NDX.csv missing from ../shared/data/daily")
    ndx = _yf3(folder / "INDEX_NDX.csv")
    t = pd.read_csv(folder / "tqqq.csv")  # Date,Adj Close,Close,... (plain header)
    tqqq = pd.Series(t["Adj Close"].to_numpy(float), index=pd.to_datetime(t["Date"].str[:10]))
    rep = daily_tracking_report(ndx, tqqq, 3, expense_ratio=0.0084)
    # measured 2010-02-11..2025-07-03: 3871 days, daily TE sd 22.9 bp, mean |diff| 14.6 bp,
    # beta 2.93 (the data README quotes slope ~2.93, residual ~21 bp)
    assert rep["days"] > 3800
    assert rep["daily_te_std_bp"] < 30.0
    assert rep["daily_te_mean_abs_bp"] < 20.0
    assert 2.85 < rep["real_beta"] < 3.0
    assert abs(rep["daily_te_mean_bp"]) < 3.0
