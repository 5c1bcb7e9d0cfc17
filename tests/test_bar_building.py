"""Bars are built from numpy arrays (Bar.from_raw_arrays_to_list), not BarDataWrangler.

BarDataWrangler hands ``DataFrame.values`` to a Cython typed memoryview, which refuses read-only
buffers ("buffer source array is read-only"). pandas 3 turns copy-on-write on for good, making
those arrays read-only; pandas 2.x shows the same failure with ``mode.copy_on_write`` enabled.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from backtests.catalog_io import bar_type_for, build_bars, make_instrument, read_ohlcv

CSV = """timestamp,open,high,low,close,volume
2025-07-01 13:30:00,100.126,100.50,99.80,100.124,1000.4
2025-07-01 13:31:00,100.12,100.4,100.0,100.3,1200.6
2025-07-01 13:32:00,100.3,100.999,100.1,100.8,0
"""

PANDAS_MAJOR = int(pd.__version__.split(".")[0])


def read_sample(tmp_path: Path) -> pd.DataFrame:
    path = tmp_path / "QQQ.csv"
    path.write_text(CSV)
    sym, frame = read_ohlcv(path, tz="UTC")
    assert sym == "QQQ"
    return frame


def test_bars_from_pandas_read_file(tmp_path):
    frame = read_sample(tmp_path)
    bars = build_bars("QQQ", frame)
    assert len(bars) == 3
    b = bars[0]
    assert str(b.bar_type) == "QQQ.XNAS-1-MINUTE-LAST-EXTERNAL"
    assert (str(b.open), str(b.high), str(b.low), str(b.close)) == ("100.13", "100.50", "99.80", "100.12")
    assert str(b.volume) == "1000"  # 1000.4 -> 1000
    assert str(bars[1].volume) == "1201"  # 1200.6 -> 1201
    assert str(bars[2].high) == "101.00"  # 100.999 -> 101.00
    assert str(bars[2].volume) == "0"
    assert b.open.precision == 2 and b.volume.precision == 0
    assert b.ts_event == b.ts_init == int(pd.Timestamp("2025-07-01 13:31", tz="UTC").value)
    assert [x.ts_event for x in bars] == frame["ts_close_utc"].tolist()
    # rounding keeps OHLC consistent
    assert all(x.low <= min(x.open, x.close) <= max(x.open, x.close) <= x.high for x in bars)


def test_bars_build_from_read_only_arrays(tmp_path):
    frame = read_sample(tmp_path)
    with pd.option_context("mode.copy_on_write", True):
        cow = frame.copy()
        assert not cow["open"].to_numpy().flags.writeable  # what pandas 3 hands out
        bars = build_bars("QQQ", cow)
    assert [str(x.close) for x in bars] == ["100.12", "100.30", "100.80"]
    ro = {k: frame[k].to_numpy().copy() for k in frame.columns}
    for arr in ro.values():
        arr.setflags(write=False)
    bars2 = build_bars("QQQ", pd.DataFrame(ro, copy=False))
    assert [x.ts_event for x in bars2] == [x.ts_event for x in bars]


def wrangler_input(frame: pd.DataFrame) -> pd.DataFrame:
    df = frame.drop(columns="ts_close_utc")
    df.index = pd.DatetimeIndex(frame["ts_close_utc"].to_numpy(), tz="UTC", name="timestamp")
    return df


def test_bar_data_wrangler_status_for_installed_pandas(tmp_path):
    from nautilus_trader.persistence.wranglers import BarDataWrangler

    frame = read_sample(tmp_path)
    wrangler = BarDataWrangler(bar_type_for("QQQ"), make_instrument("QQQ"))
    if PANDAS_MAJOR >= 3:
        with pytest.raises(ValueError, match="read-only"):
            wrangler.process(wrangler_input(frame))
        return
    # pandas 2.x: works by default and agrees with our bars (Price() rounds the same way) ...
    theirs = wrangler.process(wrangler_input(frame))
    ours = build_bars("QQQ", frame)
    assert [(str(a.open), str(a.high), str(a.low), str(a.close), a.ts_event) for a in theirs] == [
        (str(b.open), str(b.high), str(b.low), str(b.close), b.ts_event) for b in ours
    ]
    # ... and fails exactly as under pandas 3 once copy-on-write is on.
    with pd.option_context("mode.copy_on_write", True):
        with pytest.raises(ValueError, match="buffer source array is read-only"):
            wrangler.process(wrangler_input(frame))


def test_empty_frame_gives_no_bars():
    empty = pd.DataFrame({k: np.array([], dtype="float64") for k in ("open", "high", "low", "close", "volume")})
    empty.insert(0, "ts_close_utc", np.array([], dtype="int64"))
    assert build_bars("QQQ", empty) == []
