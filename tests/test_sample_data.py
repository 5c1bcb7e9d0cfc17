"""backtests.sample_data: deterministic, calendar-correct, realistic-enough sample bars."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np
import pandas as pd

from backtests.catalog_io import list_symbols, load_bars, read_ohlcv, regular_session_mask
from backtests.sample_data import generate_sample, main

SYMBOLS = ("QQQ", "SPY", "AAPL", "NVDA")
LEVELS = {"QQQ": 480.0, "SPY": 590.0, "AAPL": 200.0, "NVDA": 130.0}
SESSIONS = [
    "2025-06-16", "2025-06-17", "2025-06-18", "2025-06-20", "2025-06-23", "2025-06-24",
    "2025-06-25", "2025-06-26", "2025-06-27", "2025-06-30", "2025-07-01", "2025-07-02",
    "2025-07-03", "2025-07-07", "2025-07-08",
]


def digest(paths: list[Path]) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}


def local_times(frame: pd.DataFrame) -> pd.DatetimeIndex:
    """Bar OPEN times in New York."""
    return pd.DatetimeIndex(frame["ts_close_utc"].to_numpy() - 60_000_000_000, tz="UTC").tz_convert(
        "America/New_York",
    )


def test_byte_identical_for_same_arguments(tmp_path, sample_dir):
    again = generate_sample(tmp_path / "a")
    assert [p.name for p in again] == [f"{s}_1min.csv" for s in SYMBOLS]
    assert digest(again) == digest([sample_dir / p.name for p in again])
    # each symbol depends only on (seed, symbol): asking for SPY alone gives the same SPY file
    (spy,) = generate_sample(tmp_path / "b", symbols=("SPY",))
    assert digest([spy])["SPY_1min.csv"] == digest(again)["SPY_1min.csv"]
    other = generate_sample(tmp_path / "c", symbols=("SPY",), seed=136)
    assert digest(other) != digest([spy])


def test_cli_writes_the_same_files(tmp_path, sample_dir, capsys):
    assert main([str(tmp_path / "cli"), "--symbols", "QQQ", "NVDA"]) == 0
    written = sorted((tmp_path / "cli").glob("*.csv"))
    assert [p.name for p in written] == ["NVDA_1min.csv", "QQQ_1min.csv"]
    assert digest(written) == digest([sample_dir / p.name for p in written])
    assert "QQQ_1min.csv" in capsys.readouterr().out


def test_file_format(sample_dir):
    lines = (sample_dir / "QQQ_1min.csv").read_text().splitlines()
    assert lines[0] == "timestamp,open,high,low,close,volume"
    assert lines[1].startswith("2025-06-16T09:30:00-04:00,480.")
    pattern = re.compile(r"2025-\d\d-\d\dT\d\d:\d\d:00-04:00,\d+\.\d\d,\d+\.\d\d,\d+\.\d\d,\d+\.\d\d,\d+")
    assert all(pattern.fullmatch(line) for line in lines[1:])


def test_calendar_sessions_holidays_and_early_close(sample_dir):
    for sym in SYMBOLS:
        name, frame = read_ohlcv(sample_dir / f"{sym}_1min.csv", tz=None)  # validates OHLC etc.
        assert name == sym
        local = local_times(frame)
        days = pd.Series(np.ones(len(frame), dtype=int)).groupby(np.asarray(local.strftime("%Y-%m-%d"))).sum()
        assert list(days.index) == SESSIONS  # 2025-06-19 and 2025-07-04 are holidays
        assert days["2025-07-03"] == 210  # 13:00 early close
        assert (days.drop("2025-07-03") == 390).all()
        assert len(frame) == 14 * 390 + 210
        assert regular_session_mask(frame["ts_close_utc"].to_numpy()).all()
        on_early_close = local[np.asarray(local.strftime("%Y-%m-%d")) == "2025-07-03"]
        assert on_early_close[0].strftime("%H:%M") == "09:30"
        assert on_early_close[-1].strftime("%H:%M") == "12:59"


def test_prices_volumes_and_intraday_shape(sample_dir):
    for sym in SYMBOLS:
        _, frame = read_ohlcv(sample_dir / f"{sym}_1min.csv", tz=None)
        assert abs(frame["open"].iloc[0] / LEVELS[sym] - 1) < 0.005
        assert (frame["close"] / LEVELS[sym]).between(0.75, 1.25).all()
        assert (frame["volume"] == frame["volume"].round()).all() and (frame["volume"] > 0).all()
        cents = frame[["open", "high", "low", "close"]].to_numpy() * 100
        assert np.allclose(cents, np.round(cents))
        local = local_times(frame)
        minute = local.hour * 60 + local.minute - (9 * 60 + 30)
        full_days = np.asarray(local.strftime("%Y-%m-%d")) != "2025-07-03"
        vol = frame["volume"].to_numpy()
        first_half_hour = vol[full_days & (minute < 30)].mean()
        midday = vol[full_days & (minute >= 150) & (minute < 240)].mean()
        last_half_hour = vol[full_days & (minute >= 360)].mean()
        assert first_half_hour > 1.5 * midday and last_half_hour > 1.2 * midday  # U shape
        # consecutive bars continue from the previous close within a session
        same_day = np.asarray(local.date[1:] == local.date[:-1])
        assert (frame["open"].to_numpy()[1:][same_day] == frame["close"].to_numpy()[:-1][same_day]).all()


def test_trend_regimes_make_ema_clouds_flip_several_times_a_day(sample_dir):
    for sym in SYMBOLS:
        _, frame = read_ohlcv(sample_dir / f"{sym}_1min.csv", tz=None)
        local = local_times(frame)
        flips, up_days, down_days = [], 0, 0
        for _, day in frame.groupby(np.asarray(local.strftime("%Y-%m-%d"))):
            close = day["close"]
            fast = close.ewm(span=8, adjust=False).mean()
            slow = close.ewm(span=34, adjust=False).mean()
            side = np.sign((fast - slow).to_numpy()[34:])  # after warm-up
            side = side[side != 0]
            flips.append(int((side[1:] != side[:-1]).sum()))
            change = close.iloc[-1] / day["open"].iloc[0] - 1
            up_days += change > 0.002
            down_days += change < -0.002
        assert np.mean(flips) >= 3, flips
        assert min(flips) >= 1, flips
        assert up_days >= 2 and down_days >= 2  # trends both ways, not one long drift


def test_sample_catalog_round_trip(sample_dir, sample_catalog):
    assert list_symbols(sample_catalog) == sorted(SYMBOLS)
    _, frame = read_ohlcv(sample_dir / "NVDA_1min.csv", tz=None)
    bars = load_bars(sample_catalog, "NVDA")
    assert len(bars) == len(frame)
    assert bars[0].ts_event == frame["ts_close_utc"].iloc[0]
    assert float(bars[-1].close) == frame["close"].iloc[-1]
    assert float(bars[-1].volume) == frame["volume"].iloc[-1]
    day = load_bars(sample_catalog, "NVDA", start="2025-07-03", end="2025-07-04")
    assert len(day) == 210
