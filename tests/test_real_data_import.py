"""Real 1-minute files from ../shared/data through the importer (skipped when the folder is absent).

The files are read in place (never copied into the project); a sorted copy of the eqker file is
written to the test's tmp_path only.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from backtests.catalog_io import (
    BarValidationError,
    MissingTimezoneError,
    import_files,
    list_symbols,
    load_bars,
    read_ohlcv,
    regular_session_mask,
)

QQQ = "intraday-1min/QQQ_1min_2025-04-30_2025-06-13.csv"
SPY_POLYGON = "intraday-1min/spy_polygon_2024/SPY_1min.csv"
SPY_JULY = "intraday-1min/spy_2025-07/SPY_1min.csv"
DBB = "intraday-1min/DBB_1min_2023-07-10_to_2025-07-08.csv"
EQKER_SPY = "eqker_2019/SPY_1min.csv"


def utc_ns(text: str) -> int:
    return int(pd.Timestamp(text, tz="UTC").value)


def values(bar) -> tuple[str, ...]:
    return (str(bar.open), str(bar.high), str(bar.low), str(bar.close), str(bar.volume))


def test_qqq_naive_utc_float_volume(shared_data, tmp_path):
    catalog = tmp_path / "catalog"
    t0 = time.perf_counter()
    report = import_files(catalog, [shared_data / QQQ], tz="UTC")
    elapsed = time.perf_counter() - t0
    qqq = report["QQQ"]
    assert qqq.rows == 28172
    assert qqq.first_ts == pd.Timestamp("2025-04-30 14:17", tz="UTC")  # opened 14:16 UTC
    assert qqq.last_ts == pd.Timestamp("2025-06-14 00:00", tz="UTC")  # opened 23:59 UTC
    assert qqq.session_rows == 12434  # the rest is pre-market / after-hours
    assert qqq.missing_session_minutes == 0
    print(f"QQQ import: {qqq.rows} rows in {elapsed:.2f}s = {qqq.rows / elapsed:,.0f} rows/s")
    assert qqq.rows / elapsed > 5_000

    bars = load_bars(catalog, "QQQ")
    assert len(bars) == 28172
    first, last = bars[0], bars[-1]
    # file: 2025-04-30 14:16:00,QQQ,466.18,466.19,465.76,465.845,152279.0
    assert first.ts_event == first.ts_init == utc_ns("2025-04-30 14:17")
    assert values(first) == ("466.18", "466.19", "465.76", "465.84", "152279")
    # file: 2025-06-13 23:59:00,QQQ,526.9964,527.0,526.98,526.98,1993.0
    assert last.ts_event == utc_ns("2025-06-14 00:00")
    assert values(last) == ("527.00", "527.00", "526.98", "526.98", "1993")
    assert all(b.high >= max(b.open, b.close) and b.low <= min(b.open, b.close) for b in bars)
    assert list_symbols(catalog) == ["QQQ"]


def test_spy_polygon_offsets_need_no_tz(shared_data):
    sym, frame = read_ohlcv(shared_data / SPY_POLYGON, tz=None)
    assert sym == "SPY"
    assert len(frame) == 49720
    ts = frame["ts_close_utc"].to_numpy()
    # 2024-02-20 04:00:00-05:00 -> opens 09:00 UTC, closes 09:01 UTC
    assert ts[0] == utc_ns("2024-02-20 09:01")
    # 2024-05-17 19:59:00-04:00 (daylight time) -> closes 2024-05-18 00:00 UTC
    assert ts[-1] == utc_ns("2024-05-18 00:00")
    assert frame.iloc[0][["open", "high", "low", "close", "volume"]].tolist() == [
        498.33, 498.42, 498.3, 498.39, 3952.0,
    ]
    # a tz argument does not override explicit offsets
    _, again = read_ohlcv(shared_data / SPY_POLYGON, tz="Asia/Tokyo")
    np.testing.assert_array_equal(again["ts_close_utc"].to_numpy(), ts)


def test_spy_july_naive_eastern(shared_data):
    with pytest.raises(MissingTimezoneError, match=r"naive times in .*SPY_1min.csv; pass tz="):
        read_ohlcv(shared_data / SPY_JULY, tz=None)
    sym, frame = read_ohlcv(shared_data / SPY_JULY, tz="America/New_York")
    assert sym == "SPY" and len(frame) == 19953
    ts = frame["ts_close_utc"].to_numpy()
    assert ts[0] == utc_ns("2025-07-01 08:01")  # 04:00 EDT opens at 08:00 UTC
    assert ts[-1] == utc_ns("2025-07-31 00:01")  # 20:00 EDT bar
    mask = regular_session_mask(ts)
    local = pd.DatetimeIndex(ts, tz="UTC").tz_convert("America/New_York")
    per_day = pd.Series(mask).groupby(np.asarray(local.date)).sum()
    assert per_day[pd.Timestamp("2025-07-03").date()] == 210  # early close at 13:00
    assert per_day[pd.Timestamp("2025-07-02").date()] == 390
    assert pd.Timestamp("2025-07-04").date() not in per_day.index  # holiday: no bars at all
    assert int(mask.sum()) == 20 * 390 + 210


def test_dbb_sparse_gaps_are_counted_not_refused(shared_data, tmp_path):
    report = import_files(tmp_path / "catalog", [shared_data / DBB], tz="UTC")
    dbb = report["DBB"]
    assert dbb.rows == 38964
    assert dbb.gaps > 10_000
    assert dbb.missing_session_minutes > 100_000
    assert dbb.first_ts == pd.Timestamp("2023-07-10 13:31", tz="UTC")
    window = load_bars(tmp_path / "catalog", "DBB", start="2023-07-10 13:31", end="2023-07-10 13:36")
    # file: 13:30 (17.9 .. 17.91, 3057) then nothing until 13:34
    assert [b.ts_event for b in window] == [utc_ns("2023-07-10 13:31"), utc_ns("2023-07-10 13:35")]
    assert values(window[0]) == ("17.90", "17.91", "17.90", "17.91", "3057")
    assert values(window[1]) == ("17.92", "17.92", "17.92", "17.92", "602")  # 17.921 rounded


def test_eqker_descending_file_is_refused(shared_data, tmp_path):
    with pytest.raises(BarValidationError) as info:
        import_files(tmp_path / "catalog", [shared_data / EQKER_SPY], tz="America/New_York", label="close")
    err = info.value
    assert "not in ascending time order" in str(err)
    assert (err.row, err.field, err.value) == (3, "timestamp", "2019-02-15 15:59:00")
    assert f"{shared_data / EQKER_SPY} line 3, field 'timestamp'" in str(err)
    assert not (tmp_path / "catalog").exists()


def test_eqker_sorted_copy_with_close_labels(shared_data, tmp_path):
    raw = pd.read_csv(shared_data / EQKER_SPY)
    sorted_copy = tmp_path / "SPY_1min_sorted.csv"
    raw.iloc[::-1].to_csv(sorted_copy, index=False)
    sym, frame = read_ohlcv(sorted_copy, tz="America/New_York", label="close")
    ts = frame["ts_close_utc"].to_numpy()
    assert sym == "SPY" and len(frame) == 1950  # 5 sessions x 390
    assert ts[0] == utc_ns("2019-02-11 14:31")  # label 09:31 EST is the first bar's close
    assert ts[-1] == utc_ns("2019-02-15 21:00")  # 16:00 EST
    assert regular_session_mask(ts).all()
    _, as_open = read_ohlcv(sorted_copy, tz="America/New_York", label="open")
    assert not regular_session_mask(as_open["ts_close_utc"].to_numpy())[-1]  # 16:00-16:01 is after hours
