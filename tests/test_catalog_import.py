"""backtests.catalog_io: validation, timestamps, atomic import, reading back, session mask."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from backtests import catalog_io
from backtests.catalog_io import (
    BarValidationError,
    MissingTimezoneError,
    UnknownSymbolError,
    bars_to_frame,
    import_files,
    list_symbols,
    load_bars,
    load_instrument,
    read_ohlcv,
    regular_session_mask,
)

HEADER = "timestamp,open,high,low,close,volume"
# Five good rows, naive UTC, bar-open labels: 13:30..13:34 UTC = 09:30..09:34 ET on 2025-07-01.
GOOD_ROWS = [
    "2025-07-01 13:30:00,100.00,100.50,99.80,100.20,1000",
    "2025-07-01 13:31:00,100.20,100.40,100.00,100.30,1200",
    "2025-07-01 13:32:00,100.30,100.90,100.10,100.80,900",
    "2025-07-01 13:33:00,100.80,101.00,100.60,100.70,1500",
    "2025-07-01 13:34:00,100.70,100.75,100.40,100.50,800",
]
MIN_NS = 60_000_000_000


def ns(utc: str) -> int:
    return int(pd.Timestamp(utc, tz="UTC").value)


def write_csv(directory: Path, name: str, rows: list[str], header: str = HEADER) -> Path:
    path = directory / name
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def with_row(line: int, row: str) -> list[str]:
    """GOOD_ROWS with file line ``line`` (header = line 1) replaced."""
    rows = list(GOOD_ROWS)
    rows[line - 2] = row
    return rows


def snapshot(root: Path) -> dict[str, tuple[int, str]]:
    out = {}
    for dirpath, _, files in os.walk(root):
        for f in files:
            p = Path(dirpath) / f
            out[str(p.relative_to(root))] = (p.stat().st_size, hashlib.sha256(p.read_bytes()).hexdigest())
    return out


def leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if ".staging-" in p.name or ".backup-" in p.name)


# -- validation ---------------------------------------------------------------------------------

BAD_CASES = [
    # (id, line, replacement row, field, value, message fragment)
    ("unparseable-ts", 3, "2025-07-01 25:61:00,100.20,100.40,100.00,100.30,1200", "timestamp",
     "2025-07-01 25:61:00", "cannot parse timestamp '2025-07-01 25:61:00'"),
    ("empty-ts", 4, ",100.80,101.00,100.60,100.70,1500", "timestamp", "", "empty timestamp"),
    ("unsorted", 4, "2025-07-01 13:29:00,100.80,101.00,100.60,100.70,1500", "timestamp",
     "2025-07-01 13:29:00", "rows are not in ascending time order"),
    ("duplicate", 4, "2025-07-01 13:31:00,100.80,101.00,100.60,100.70,1500", "timestamp",
     "2025-07-01 13:31:00", "duplicate timestamp '2025-07-01 13:31:00'"),
    ("not-whole-minute", 3, "2025-07-01 13:31:30,100.20,100.40,100.00,100.30,1200", "timestamp",
     "2025-07-01 13:31:30", "not on a whole minute"),
    ("nan-price", 3, "2025-07-01 13:31:00,100.20,100.40,100.00,,1200", "close", None,
     "missing value (NaN)"),
    ("non-numeric-price", 5, "2025-07-01 13:33:00,100.80,abc,100.60,100.70,1500", "high", "abc",
     "not a number: 'abc'"),
    ("zero-price", 2, "2025-07-01 13:30:00,0,100.50,0,100.20,1000", "open", 0.0,
     "price must be > 0, got 0.0"),
    ("negative-price", 6, "2025-07-01 13:34:00,100.70,100.75,-1.5,100.50,800", "low", -1.5,
     "price must be > 0, got -1.5"),
    ("high-below-body", 3, "2025-07-01 13:31:00,100.20,100.25,100.00,100.30,1200", "high", 100.25,
     "100.25 < max(open, close) 100.3"),
    ("low-above-body", 4, "2025-07-01 13:32:00,100.30,100.90,100.35,100.80,900", "low", 100.35,
     "100.35 > min(open, close) 100.3"),
    ("high-below-low", 5, "2025-07-01 13:33:00,100.80,100.50,101.00,100.70,1500", "high", 100.5,
     "high 100.5 < low 101.0"),
    ("negative-volume", 6, "2025-07-01 13:34:00,100.70,100.75,100.40,100.50,-5", "volume", -5.0,
     "negative volume -5.0"),
    ("nan-volume", 2, "2025-07-01 13:30:00,100.00,100.50,99.80,100.20,", "volume", None,
     "missing value (NaN)"),
    ("non-numeric-volume", 3, "2025-07-01 13:31:00,100.20,100.40,100.00,100.30,lots", "volume",
     "lots", "not a number: 'lots'"),
]


@pytest.mark.parametrize(
    ("line", "row", "field", "value", "fragment"),
    [c[1:] for c in BAD_CASES],
    ids=[c[0] for c in BAD_CASES],
)
def test_bad_row_is_refused_with_file_line_field_value(tmp_path, line, row, field, value, fragment):
    path = write_csv(tmp_path, "QQQ_bad.csv", with_row(line, row))
    with pytest.raises(BarValidationError) as info:
        read_ohlcv(path, tz="UTC")
    err = info.value
    assert err.file == str(path)
    assert err.row == line
    assert err.field == field
    if value is None:
        assert err.value is None or (isinstance(err.value, float) and np.isnan(err.value))
    else:
        assert err.value == value
    msg = str(err)
    assert msg.startswith(f"{path} line {line}, field '{field}': ")
    assert fragment in msg


def test_message_matches_documented_example(tmp_path, monkeypatch):
    rows = []
    t0 = pd.Timestamp("2025-07-01 13:30")
    for i in range(15):  # lines 2..16 good, line 17 bad
        rows.append(f"{t0 + dt.timedelta(minutes=i):%Y-%m-%d %H:%M:%S},100.0,100.5,99.9,100.2,10")
    rows.append(f"{t0 + dt.timedelta(minutes=15):%Y-%m-%d %H:%M:%S},100.2,99.5,99.4,100.0,10")
    path = write_csv(tmp_path, "QQQ.csv", rows)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(BarValidationError) as info:
        read_ohlcv("QQQ.csv", tz="UTC")
    assert str(info.value) == "QQQ.csv line 17, field 'high': 99.5 < max(open, close) 100.2"
    assert (info.value.file, info.value.row, info.value.field, info.value.value) == (
        "QQQ.csv",
        17,
        "high",
        99.5,
    )
    assert path.exists()


def test_earliest_bad_line_is_reported(tmp_path):
    rows = with_row(5, "2025-07-01 13:33:00,100.80,abc,100.60,100.70,1500")
    rows[1] = "2025-07-01 13:31:00,100.20,100.40,100.00,100.30,-1"  # line 3
    with pytest.raises(BarValidationError) as info:
        read_ohlcv(write_csv(tmp_path, "X.csv", rows), tz="UTC")
    assert (info.value.row, info.value.field) == (3, "volume")


def test_naive_times_need_tz(tmp_path):
    path = write_csv(tmp_path, "QQQ.csv", GOOD_ROWS)
    with pytest.raises(MissingTimezoneError) as info:
        read_ohlcv(path, tz=None)
    assert str(info.value) == f"timestamp: naive times in {path}; pass tz=... (--tz)"


def test_mixed_offset_and_naive_is_refused(tmp_path):
    rows = [r.replace(":00,", ":00+00:00,", 1) for r in GOOD_ROWS]
    rows[2] = GOOD_ROWS[2]  # line 4 without offset
    with pytest.raises(BarValidationError) as info:
        read_ohlcv(write_csv(tmp_path, "X.csv", rows), tz=None)
    assert (info.value.row, info.value.field) == (4, "timestamp")
    assert "has no UTC offset unlike line 2" in str(info.value)


def test_missing_column_and_multi_symbol_column(tmp_path):
    path = write_csv(tmp_path, "X.csv", [r.rsplit(",", 1)[0] for r in GOOD_ROWS], header=HEADER.rsplit(",", 1)[0])
    with pytest.raises(BarValidationError, match="field 'volume': column missing"):
        read_ohlcv(path, tz="UTC")
    rows = [f"{r.split(',', 1)[0]},QQQ,{r.split(',', 1)[1]}" for r in GOOD_ROWS]
    rows[3] = rows[3].replace(",QQQ,", ",TQQQ,")
    path = write_csv(tmp_path, "Y.csv", rows, header="Datetime,Symbol,Open,High,Low,Close,Volume")
    with pytest.raises(BarValidationError) as info:
        read_ohlcv(path, tz="UTC")
    assert (info.value.row, info.value.field, info.value.value) == (5, "symbol", "TQQQ")


def test_coarser_bars_are_refused(tmp_path):
    t0 = pd.Timestamp("2025-07-01 13:30")
    rows = [f"{t0 + dt.timedelta(minutes=5 * i):%Y-%m-%d %H:%M:%S},100,101,99,100,10" for i in range(12)]
    with pytest.raises(BarValidationError, match="not 1-minute bars"):
        read_ohlcv(write_csv(tmp_path, "SPX_5min.csv", rows), tz="UTC")


# -- timestamps, labels, symbols, formats ---------------------------------------------------------


def test_offset_epoch_and_naive_tz_give_the_same_instants(tmp_path):
    utc = pd.DatetimeIndex([r.split(",", 1)[0] for r in GOOD_ROWS], tz="UTC")
    body = [r.split(",", 1)[1] for r in GOOD_ROWS]
    ny = utc.tz_convert("America/New_York")
    variants = {
        "naive_utc": ([f"{t:%Y-%m-%d %H:%M:%S}" for t in utc], "UTC"),
        "naive_ny": ([f"{t:%Y-%m-%d %H:%M:%S}" for t in ny], "America/New_York"),
        "offset_ny": ([t.isoformat() for t in ny], None),
        "offset_z": ([f"{t:%Y-%m-%dT%H:%M:%S}Z" for t in utc], None),
        "offset_compact": ([f"{t:%Y-%m-%d %H:%M:%S%z}" for t in ny], None),  # "-0400": slow path
        # an explicit offset wins over tz
        "offset_with_tz": ([t.isoformat() for t in ny], "Asia/Tokyo"),
        "epoch_s": ([str(int(t.value // 1_000_000_000)) for t in utc], None),
        "epoch_ms": ([str(int(t.value // 1_000_000)) for t in utc], None),
    }
    expected = utc.asi8 + MIN_NS
    for name, (stamps, tz) in variants.items():
        path = write_csv(tmp_path, f"QQQ_{name}.csv", [f"{s},{b}" for s, b in zip(stamps, body)])
        sym, frame = read_ohlcv(path, tz=tz)
        assert sym == "QQQ"
        np.testing.assert_array_equal(frame["ts_close_utc"].to_numpy(), expected, err_msg=name)
        assert frame["ts_close_utc"].dtype == np.int64
    assert expected[0] == ns("2025-07-01 13:31")


def test_label_open_vs_close(tmp_path):
    path = write_csv(tmp_path, "QQQ.csv", GOOD_ROWS)
    _, as_open = read_ohlcv(path, tz="UTC", label="open")
    _, as_close = read_ohlcv(path, tz="UTC", label="close")
    assert as_open["ts_close_utc"].iloc[0] == ns("2025-07-01 13:31")
    assert as_close["ts_close_utc"].iloc[0] == ns("2025-07-01 13:30")
    np.testing.assert_array_equal(as_open["ts_close_utc"] - as_close["ts_close_utc"], MIN_NS)
    with pytest.raises(ValueError, match="label"):
        read_ohlcv(path, tz="UTC", label="middle")


def test_symbol_resolution(tmp_path):
    path = write_csv(tmp_path, "spy_1min_2025.csv", GOOD_ROWS)
    assert read_ohlcv(path, tz="UTC")[0] == "SPY"
    assert read_ohlcv(path, tz="UTC", symbol="aapl")[0] == "AAPL"
    rows = [f"{r.split(',', 1)[0]},QQQ,{r.split(',', 1)[1]}" for r in GOOD_ROWS]
    path = write_csv(tmp_path, "data_export.csv", rows, header="Datetime,Symbol,Open,High,Low,Close,Volume")
    assert read_ohlcv(path, tz="UTC")[0] == "QQQ"


def test_parquet_input_matches_csv(tmp_path):
    csv = write_csv(tmp_path, "QQQ.csv", GOOD_ROWS)
    _, from_csv = read_ohlcv(csv, tz="UTC")
    raw = pd.read_csv(csv)
    aware = raw.assign(timestamp=pd.to_datetime(raw["timestamp"]).dt.tz_localize("UTC"))
    aware.to_parquet(tmp_path / "QQQ_aware.parquet")
    epoch = raw.assign(timestamp=pd.to_datetime(raw["timestamp"]).astype("int64") // 10**9)
    epoch.to_parquet(tmp_path / "QQQ_epoch.parquet")
    indexed = aware.set_index("timestamp")
    indexed.to_parquet(tmp_path / "QQQ_indexed.parquet")
    for name in ("QQQ_aware", "QQQ_epoch", "QQQ_indexed"):
        sym, frame = read_ohlcv(tmp_path / f"{name}.parquet", tz=None)
        assert sym == "QQQ"
        pd.testing.assert_frame_equal(frame, from_csv, check_dtype=False)
    # naive datetimes in parquet also need tz; errors name the 1-based row
    raw.assign(timestamp=pd.to_datetime(raw["timestamp"])).to_parquet(tmp_path / "QQQ_naive.parquet")
    with pytest.raises(MissingTimezoneError):
        read_ohlcv(tmp_path / "QQQ_naive.parquet", tz=None)
    bad = aware.copy()
    bad.loc[2, "high"] = 50.0
    bad.to_parquet(tmp_path / "QQQ_bad.parquet")
    with pytest.raises(BarValidationError) as info:
        read_ohlcv(tmp_path / "QQQ_bad.parquet", tz=None)
    assert (info.value.row, info.value.field) == (3, "high")
    assert " row 3, field 'high'" in str(info.value)


# -- import / catalog -------------------------------------------------------------------------------


def test_import_and_read_back(tmp_path):
    qqq = write_csv(tmp_path, "QQQ.csv", GOOD_ROWS)
    spy = write_csv(tmp_path, "SPY.csv", [r.replace("100.", "500.") for r in GOOD_ROWS[:3]])
    catalog = tmp_path / "catalog"
    report = import_files(catalog, [qqq, spy], tz="UTC")
    assert [s.symbol for s in report.symbols] == ["QQQ", "SPY"]
    assert report["QQQ"].rows == 5 and report["SPY"].rows == 3 and report.rows == 8
    assert report["QQQ"].first_ts == pd.Timestamp("2025-07-01 13:31", tz="UTC")
    assert report["QQQ"].last_ts == pd.Timestamp("2025-07-01 13:35", tz="UTC")
    assert report["QQQ"].gaps == 0 and not report["QQQ"].replaced
    assert report["QQQ"].session_rows == 5
    assert "QQQ" in report.format()
    assert list_symbols(catalog) == ["QQQ", "SPY"]

    inst = load_instrument(catalog, "qqq")
    assert str(inst.id) == "QQQ.XNAS"
    assert inst.price_precision == 2
    assert str(inst.price_increment) == "0.01"
    assert str(inst.lot_size) == "1"
    assert str(inst.quote_currency) == "USD"
    assert inst.ts_event == 0 and inst.ts_init == 0

    bars = load_bars(catalog, "QQQ")
    assert len(bars) == 5
    first = bars[0]
    assert str(first.bar_type) == "QQQ.XNAS-1-MINUTE-LAST-EXTERNAL"
    assert (str(first.open), str(first.high), str(first.low), str(first.close), str(first.volume)) == (
        "100.00",
        "100.50",
        "99.80",
        "100.20",
        "1000",
    )
    assert first.ts_event == first.ts_init == ns("2025-07-01 13:31")
    frame = bars_to_frame(load_bars(catalog, "SPY"))
    assert list(frame.columns) == ["ts_close_utc", "open", "high", "low", "close", "volume"]
    assert frame["open"].tolist() == [500.0, 500.2, 500.3]


def test_import_report_counts_gaps(tmp_path):
    rows = [GOOD_ROWS[0], GOOD_ROWS[1], GOOD_ROWS[4].replace("13:34", "13:40"), "2025-07-01 13:41:00,100.5,100.6,100.4,100.5,5"]
    report = import_files(tmp_path / "cat", [write_csv(tmp_path, "DBB.csv", rows)], tz="UTC")
    assert report["DBB"].gaps == 1
    assert report["DBB"].missing_session_minutes == 12 - 4


def test_reimport_replaces_symbol_and_keeps_others(tmp_path):
    catalog = tmp_path / "catalog"
    import_files(catalog, [write_csv(tmp_path, "QQQ.csv", GOOD_ROWS), write_csv(tmp_path, "SPY.csv", GOOD_ROWS)], tz="UTC")
    spy_before = snapshot(catalog / "data" / "bar" / "SPY.XNAS-1-MINUTE-LAST-EXTERNAL")
    later = ["2025-07-02 14:00:00,200.00,201.00,199.00,200.50,7", "2025-07-02 14:01:00,200.50,200.60,200.10,200.20,3"]
    report = import_files(catalog, [write_csv(tmp_path, "QQQ_v2.csv", later)], tz="UTC")
    assert report["QQQ"].replaced
    bars = load_bars(catalog, "QQQ")
    assert [str(b.close) for b in bars] == ["200.50", "200.20"]
    assert len(list((catalog / "data" / "bar" / "QQQ.XNAS-1-MINUTE-LAST-EXTERNAL").glob("*.parquet"))) == 1
    assert len(list((catalog / "data" / "equity" / "QQQ.XNAS").glob("*.parquet"))) == 1
    assert snapshot(catalog / "data" / "bar" / "SPY.XNAS-1-MINUTE-LAST-EXTERNAL") == spy_before
    assert len(load_bars(catalog, "SPY")) == 5
    assert leftovers(tmp_path) == []


def test_failed_validation_leaves_catalog_untouched(tmp_path):
    catalog = tmp_path / "catalog"
    import_files(catalog, [write_csv(tmp_path, "QQQ.csv", GOOD_ROWS)], tz="UTC")
    before = snapshot(catalog)
    good = write_csv(tmp_path, "SPY.csv", GOOD_ROWS)
    bad = write_csv(tmp_path, "AAPL.csv", with_row(4, "2025-07-01 13:32:00,100.30,100.90,100.10,,900"))
    with pytest.raises(BarValidationError, match="AAPL.csv line 4, field 'close'"):
        import_files(catalog, [good, bad], tz="UTC")
    assert snapshot(catalog) == before
    assert leftovers(tmp_path) == []
    assert list_symbols(catalog) == ["QQQ"]


def test_failure_while_writing_leaves_catalog_untouched(tmp_path, monkeypatch):
    catalog = tmp_path / "catalog"
    import_files(catalog, [write_csv(tmp_path, "QQQ.csv", GOOD_ROWS)], tz="UTC")
    before = snapshot(catalog)
    real_write = catalog_io.ParquetDataCatalog.write_data
    calls = {"n": 0}

    def flaky_write(self, data, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:  # QQQ instrument, QQQ bars, then SPY instrument fails
            raise OSError("disk full (simulated)")
        return real_write(self, data, *args, **kwargs)

    monkeypatch.setattr(catalog_io.ParquetDataCatalog, "write_data", flaky_write)
    later = ["2025-07-02 14:00:00,200.00,201.00,199.00,200.50,7"]
    with pytest.raises(OSError, match="simulated"):
        import_files(
            catalog,
            [write_csv(tmp_path, "QQQ_v2.csv", later), write_csv(tmp_path, "SPY.csv", GOOD_ROWS)],
            tz="UTC",
        )
    assert calls["n"] == 3
    assert snapshot(catalog) == before
    assert leftovers(tmp_path) == []


def test_failed_swap_restores_old_catalog(tmp_path, monkeypatch):
    catalog = tmp_path / "catalog"
    import_files(catalog, [write_csv(tmp_path, "QQQ.csv", GOOD_ROWS)], tz="UTC")
    before = snapshot(catalog)
    real_rename = os.rename

    def failing_rename(src, dst):
        if ".staging-" in str(src):
            raise OSError("rename failed (simulated)")
        return real_rename(src, dst)

    monkeypatch.setattr(catalog_io.os, "rename", failing_rename)
    with pytest.raises(OSError, match="simulated"):
        import_files(catalog, [write_csv(tmp_path, "SPY.csv", GOOD_ROWS)], tz="UTC")
    assert snapshot(catalog) == before
    assert leftovers(tmp_path) == []


def test_import_refusals(tmp_path):
    not_catalog = tmp_path / "docs"
    not_catalog.mkdir()
    (not_catalog / "notes.txt").write_text("keep me")
    path = write_csv(tmp_path, "QQQ.csv", GOOD_ROWS)
    with pytest.raises(ValueError, match="not a ParquetDataCatalog"):
        import_files(not_catalog, [path], tz="UTC")
    assert (not_catalog / "notes.txt").read_text() == "keep me"
    other = write_csv(tmp_path, "QQQ_again.csv", GOOD_ROWS)
    with pytest.raises(ValueError, match="symbol QQQ comes from two files"):
        import_files(tmp_path / "cat", [path, other], tz="UTC")
    assert not (tmp_path / "cat").exists()
    report = import_files(tmp_path / "cat", [path, other], tz="UTC", symbols=["QQQ", "QQQM"])
    assert list_symbols(tmp_path / "cat") == ["QQQ", "QQQM"] and report.rows == 10


def test_reader_errors(tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(FileNotFoundError, match=f"catalog not found: {missing}"):
        load_bars(missing, "QQQ")
    with pytest.raises(FileNotFoundError, match="catalog not found"):
        list_symbols(missing)
    catalog = tmp_path / "catalog"
    import_files(
        catalog,
        [write_csv(tmp_path, "SPY.csv", GOOD_ROWS), write_csv(tmp_path, "QQQ.csv", GOOD_ROWS)],
        tz="UTC",
    )
    with pytest.raises(UnknownSymbolError) as info:
        load_bars(catalog, "XYZ")
    assert str(info.value) == f"unknown symbol 'XYZ' in catalog {catalog}; available: QQQ, SPY"
    with pytest.raises(UnknownSymbolError):
        load_instrument(catalog, "XYZ")


def test_load_bars_window_is_start_inclusive_end_exclusive(tmp_path):
    catalog = tmp_path / "catalog"
    import_files(catalog, [write_csv(tmp_path, "QQQ.csv", GOOD_ROWS)], tz="UTC")
    closes = [b.ts_event for b in load_bars(catalog, "QQQ")]
    assert closes == [ns(f"2025-07-01 13:{m}") for m in (31, 32, 33, 34, 35)]

    def window(start, end):
        return [b.ts_event for b in load_bars(catalog, "QQQ", start=start, end=end)]

    assert window("2025-07-01 13:32", "2025-07-01 13:34") == closes[1:3]
    assert window(pd.Timestamp("2025-07-01 13:32", tz="UTC"), None) == closes[1:]
    assert window(None, "2025-07-01T09:33:00-04:00") == closes[:2]
    assert window("2025-07-01T13:32:00Z", pd.Timestamp("2025-07-01 09:35", tz="America/New_York")) == closes[1:4]
    assert window(closes[0], closes[0] + 1) == closes[:1]
    assert window("2025-07-01 13:35:00.000000001", None) == []
    assert window("2025-07-01 13:33", "2025-07-01 13:33") == []


# -- regular session ------------------------------------------------------------------------------


def et_close_ns(local: str) -> int:
    return int(pd.Timestamp(local, tz="America/New_York").tz_convert("UTC").value)


def test_regular_session_mask_early_close_and_holiday():
    cases = {
        "2025-07-03 09:30": False,  # bar 09:29-09:30 is pre-market
        "2025-07-03 09:31": True,
        "2025-07-03 13:00": True,  # last bar of the 13:00 early close
        "2025-07-03 13:01": False,
        "2025-07-04 10:00": False,  # Independence Day
        "2025-06-19 12:00": False,  # Juneteenth
        "2025-07-05 12:00": False,  # Saturday
        "2025-07-02 16:00": True,
        "2025-07-02 16:01": False,
        "2025-07-07 09:31": True,
        "2025-03-10 09:31": True,  # first session after the DST change
        "2025-03-07 09:31": True,
    }
    ts = np.array([et_close_ns(k) for k in cases], dtype=np.int64)
    np.testing.assert_array_equal(regular_session_mask(ts), np.array(list(cases.values())))
    assert regular_session_mask(np.array([], dtype=np.int64)).shape == (0,)


def test_regular_session_mask_is_fast():
    start = et_close_ns("2024-01-02 04:01")
    ts = start + np.arange(100_000, dtype=np.int64) * MIN_NS
    regular_session_mask(ts[:10])  # the session table is built once per process
    t0 = time.perf_counter()
    mask = regular_session_mask(ts)
    elapsed = time.perf_counter() - t0
    assert elapsed < 0.25, elapsed
    # Independent reference: weekday, not a holiday, bar open in [09:30, 16:00) New York time
    # (no early closes between 2024-01-02 and 2024-03-11).
    local = pd.DatetimeIndex(ts - MIN_NS, tz="UTC").tz_convert("America/New_York")
    minute_of_day = local.hour * 60 + local.minute
    holidays = {pd.Timestamp("2024-01-15").date(), pd.Timestamp("2024-02-19").date()}
    expected = (
        (local.weekday < 5)
        & ~np.isin(np.array(local.date), list(holidays))
        & (minute_of_day >= 9 * 60 + 30)
        & (minute_of_day < 16 * 60)
    )
    np.testing.assert_array_equal(mask, np.asarray(expected))
    assert int(mask.sum()) > 40 * 390


def test_separate_date_and_time_columns(tmp_path):
    rows = [f"{r[:10]},{r[11:16]},{r.split(',', 1)[1]}" for r in GOOD_ROWS]
    path = write_csv(tmp_path, "QQQ.csv", rows, header="Date,Time,Open,High,Low,Close,Volume")
    _, frame = read_ohlcv(path, tz="UTC")
    assert frame["ts_close_utc"].iloc[0] == ns("2025-07-01 13:31")


def test_numbers_that_are_not_epoch_times_are_refused(tmp_path):
    rows = [f"2025070113{30 + i},{r.split(',', 1)[1]}" for i, r in enumerate(GOOD_ROWS)]  # YYYYMMDDHHMM
    with pytest.raises(BarValidationError, match="outside 1990-2100: not an epoch timestamp") as info:
        read_ohlcv(write_csv(tmp_path, "QQQ.csv", rows), tz=None)
    assert (info.value.row, info.value.field) == (2, "timestamp")


def test_unknown_time_zone(tmp_path):
    with pytest.raises(ValueError, match="unknown time zone 'Mars/Olympus'"):
        read_ohlcv(write_csv(tmp_path, "QQQ.csv", GOOD_ROWS), tz="Mars/Olympus")


# -- issue #19: outliers, split-like jumps, time zone sanity, streaming, stale staging folders ----

from backtests.catalog_io import OutlierError, TimezoneMismatchError  # noqa: E402
from strategies import cli  # noqa: E402

ET = "America/New_York"


def session_rows(day: str, n: int = 390, tz_text: str = "UTC", start: str = "09:30", scale: float = 1.0) -> list[str]:
    """``n`` 1-minute bars from ``start`` New York time on ``day``, stamped in ``tz_text`` (naive)."""
    t0 = pd.Timestamp(f"{day} {start}", tz=ET)
    out = []
    for i in range(n):
        t = (t0 + pd.Timedelta(minutes=i)).tz_convert(tz_text)
        p = (100 + (i % 7) * 0.05 + (i % 11) * 0.03) * scale
        out.append(f"{t:%Y-%m-%d %H:%M:%S},{p:.2f},{p + 0.06:.2f},{p - 0.05:.2f},{p + 0.02:.2f},{100 + i}")
    return out


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(["data", "import", *argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def catalog_with_qqq(tmp_path):
    catalog = tmp_path / "catalog"
    import_files(catalog, [write_csv(tmp_path, "QQQ.csv", GOOD_ROWS)], tz="UTC")
    return catalog


def assert_refused(capsys, catalog: Path, argv: list[str], message: str) -> None:
    before = snapshot(catalog)
    code, out, err = run_cli(capsys, *argv, "--catalog", str(catalog))
    assert code == 2
    assert err == f"trade-executor: error: {message}\n"  # one line, no traceback
    assert out == ""
    assert snapshot(catalog) == before
    assert leftovers(catalog.parent) == []


def test_outlier_bar_is_refused_then_accepted_with_the_flag(tmp_path, capsys, catalog_with_qqq):
    rows = session_rows("2025-07-01", 120)
    ts, o, h, lo, c, v = rows[50].split(",")
    rows[50] = ",".join([ts, o, "1001.50", lo, c, v])  # a 10x print in the high, line 52
    path = write_csv(tmp_path, "SPY.csv", rows)
    flag = (
        f"{path} line 52, 2025-07-01 14:20:00: outlier (open 100.23 high 1001.5 low 100.18 close 100.25): "
        "high is 9.98x the median close 100.3 of the bars around it (limit 40% either way) and the bars "
        "after it do not follow: a bad print"
    )
    assert_refused(
        capsys, catalog_with_qqq, [str(path), "--tz", "UTC"],
        f"1 suspicious bar (outliers / split-like jumps): {flag}; fix the file or pass "
        "--accept-outliers to import them anyway",
    )
    with pytest.raises(OutlierError) as info:
        import_files(catalog_with_qqq, [path], tz="UTC")
    assert [(f.row, f.kind, f.high) for f in info.value.flags] == [(52, "outlier", 1001.5)]

    code, out, err = run_cli(capsys, str(path), "--tz", "UTC", "--accept-outliers", "--catalog", str(catalog_with_qqq))
    assert (code, err) == (0, "")
    assert "SPY      1 suspicious bars imported (--accept-outliers):" in out
    assert f"    {flag}" in out.splitlines()
    assert list_symbols(catalog_with_qqq) == ["QQQ", "SPY"]
    assert max(float(b.high) for b in load_bars(catalog_with_qqq, "SPY")) == 1001.5


def test_split_like_jump_is_refused(tmp_path, capsys, catalog_with_qqq):
    rows = session_rows("2025-07-01", 60) + session_rows("2025-07-01", 60, start="10:30", scale=0.5)
    path = write_csv(tmp_path, "NVDA.csv", rows)  # 2-for-1 split not adjusted: line 62 on
    assert_refused(
        capsys, catalog_with_qqq, [str(path), "--tz", "UTC"],
        f"1 suspicious bar (outliers / split-like jumps): {path} line 62, 2025-07-01 14:30:00: split "
        "(open 50 high 50.06 low 49.95 close 50.02): close 50.02 after 100.29 on the previous bar, and "
        "the level stays 0.500x the one before (2-for-1 split?): an unadjusted split; fix the file or "
        "pass --accept-outliers to import them anyway",
    )
    report = import_files(catalog_with_qqq, [path], tz="UTC", accept_outliers=True)
    assert report["NVDA"].outlier_count == 1 and report["NVDA"].outliers[0].kind == "split"


def test_real_moves_and_level_changes_are_not_flagged(tmp_path):
    # a 30 % gap that persists (not a split ratio) and a 20 % spike: both stay under the limits
    rows = session_rows("2025-07-01", 60) + session_rows("2025-07-01", 60, start="10:30", scale=1.3)
    ts, o, h, lo, c, v = rows[30].split(",")
    rows[30] = ",".join([ts, o, f"{float(h) * 1.2:.2f}", lo, c, v])
    report = import_files(tmp_path / "cat", [write_csv(tmp_path, "XYZ.csv", rows)], tz="UTC")
    assert report["XYZ"].outlier_count == 0


def test_outliers_are_found_across_chunk_boundaries(tmp_path):
    rows = session_rows("2025-07-01", 200)
    for i in (0, 13, 14, 99, 199):  # first row, both sides of a boundary (chunks of 7), last row
        ts, o, h, lo, c, v = rows[i].split(",")
        rows[i] = ",".join([ts, o, f"{float(h) * 10:.2f}", lo, c, v])
    path = write_csv(tmp_path, "SPY.csv", rows)
    for chunk_rows in (7, 1000):
        with pytest.raises(OutlierError) as info:
            import_files(tmp_path / "cat", [path], tz="UTC", chunk_rows=chunk_rows)
        assert [f.row for f in info.value.flags] == [2, 15, 16, 101, 201], chunk_rows
        assert str(info.value).startswith("5 suspicious bars")
    assert not (tmp_path / "cat").exists()


def test_chunked_reading_matches_whole_file_and_keeps_line_numbers(tmp_path):
    rows = session_rows("2025-07-01", 40)
    path = write_csv(tmp_path, "SPY.csv", rows)
    whole = read_ohlcv(path, tz="UTC")[1]
    stream = catalog_io._OhlcvStream(path, tz="UTC", chunk_rows=6)
    chunks = list(stream)
    assert [c.first_row for c in chunks] == list(range(2, 42, 6))
    pd.testing.assert_frame_equal(pd.concat([c.frame for c in chunks], ignore_index=True), whole)
    # ordering, duplicates and blank lines are checked across chunk boundaries
    for bad_line, row, fragment in (
        (8, rows[5], "duplicate timestamp"),  # line 8 starts the second chunk
        (14, rows[3], "rows are not in ascending time order"),
        (8, "", "empty timestamp"),
    ):
        bad = list(rows)
        bad[bad_line - 2] = row
        with pytest.raises(BarValidationError) as info:
            list(catalog_io._OhlcvStream(write_csv(tmp_path, "B.csv", bad), tz="UTC", chunk_rows=6))
        assert info.value.row == bad_line and fragment in str(info.value)
    # trailing blank lines are harmless even when they fill a whole chunk
    (tmp_path / "T.csv").write_text(path.read_text() + "\n" * 9)
    assert sum(len(c.frame) for c in catalog_io._OhlcvStream(tmp_path / "T.csv", tz="UTC", chunk_rows=6)) == 40
    # a chunked import writes several catalog files that read back as one series
    catalog = tmp_path / "cat"
    report = import_files(catalog, [path], tz="UTC", chunk_rows=6)
    assert report["SPY"].rows == 40 and report["SPY"].gaps == 0 and report["SPY"].session_rows == 40
    assert len(list((catalog / "data" / "bar" / "SPY.XNAS-1-MINUTE-LAST-EXTERNAL").glob("*.parquet"))) == 7
    np.testing.assert_array_equal(bars_to_frame(load_bars(catalog, "SPY"))["ts_close_utc"], whole["ts_close_utc"])


def test_wrong_tz_is_refused_with_the_right_one(tmp_path, capsys, catalog_with_qqq):
    days = ["2025-07-01", "2025-07-02", "2025-07-07"]
    rows = [r for d in days for r in session_rows(d, 390, tz_text=ET)]  # New York wall clock
    path = write_csv(tmp_path, "QQQ.csv", rows)
    assert_refused(
        capsys, catalog_with_qqq, [str(path), "--tz", "UTC"],
        f"{path}: 62 % of the bars fall outside XNYS hours with --tz UTC; with --tz America/New_York "
        "100 % fall inside: re-run with --tz America/New_York",
    )
    with pytest.raises(TimezoneMismatchError) as info:
        import_files(catalog_with_qqq, [path], tz="Europe/London")
    assert info.value.suggested_tz == ET
    assert import_files(catalog_with_qqq, [path], tz=ET)["QQQ"].session_rows == 3 * 390


def test_extended_hours_data_passes_with_the_right_tz_only(tmp_path, capsys, catalog_with_qqq):
    days = ["2025-07-01", "2025-07-02"]
    rows = [r for d in days for r in session_rows(d, 960, tz_text="UTC", start="04:00")]  # 04:00-20:00 ET
    path = write_csv(tmp_path, "SPY.csv", rows)
    report = import_files(catalog_with_qqq, [path], tz="UTC")
    assert report["SPY"].session_rows == 2 * 390  # 59 % of the bars are outside the regular session
    assert_refused(
        capsys, catalog_with_qqq, [str(path), "--tz", ET],
        f"{path}: 25 % of the bars fall outside XNYS extended hours (04:00-20:00 ET) with --tz "
        f"{ET}; with --tz UTC 100 % fall inside: re-run with --tz UTC",
    )


def test_stale_staging_folders_are_removed_and_reported(tmp_path, capsys, catalog_with_qqq):
    parent = catalog_with_qqq.parent
    gone = parent / ".catalog.staging-999999999-0123456789ab"  # its pid does not exist
    old = parent / ".catalog.staging-abcdef012345"  # no pid in the name (older imports), 1 h old
    fresh = parent / ".catalog.staging-fedcba987654"  # no pid, just created: may be in use
    live = parent / f".catalog.staging-{os.getpid()}-00000000aaaa"  # a live owner
    other = parent / ".othercatalog.staging-999999999-0123456789ab"  # another catalog's
    for d in (gone, old, fresh, live, other):
        (d / "data").mkdir(parents=True)
    # ages against the process clock (the filesystem stamps real time: under faketime the two differ)
    now = time.time()
    for d in (gone, fresh, live, other):
        os.utime(d, (now, now))
    os.utime(old, (now - 3600, now - 3600))
    code, out, err = run_cli(capsys, str(write_csv(tmp_path, "SPY.csv", GOOD_ROWS)), "--tz", "UTC",
                             "--catalog", str(catalog_with_qqq))
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[:2] == [
        f"removed stale staging folder {gone} (pid 999999999 is gone)",
        f"removed stale staging folder {old} (60 min old)",
    ] or lines[:2] == [
        f"removed stale staging folder {old} (60 min old)",
        f"removed stale staging folder {gone} (pid 999999999 is gone)",
    ]
    assert not gone.exists() and not old.exists()
    assert fresh.exists() and live.exists() and other.exists()
    assert list_symbols(catalog_with_qqq) == ["QQQ", "SPY"]


def test_import_killed_between_the_swap_renames_is_recovered(tmp_path, catalog_with_qqq):
    backup = catalog_with_qqq.parent / ".catalog.backup-999999999-0123456789ab"
    os.rename(catalog_with_qqq, backup)  # what a kill between the two renames leaves
    report = import_files(catalog_with_qqq, [write_csv(tmp_path, "SPY.csv", GOOD_ROWS)], tz="UTC")
    assert report.removed_stale == [
        f"backup folder {backup} restored as {catalog_with_qqq} (pid 999999999 is gone)",
    ]
    assert list_symbols(catalog_with_qqq) == ["QQQ", "SPY"]
    assert leftovers(tmp_path) == []


REAL_FILES = [  # (path under ../shared/data, tz, symbol)
    ("intraday-1min/QQQ_1min_2025-04-30_2025-06-13.csv", "UTC", "QQQ"),
    ("intraday-1min/TQQQ_1min_2025-04-30_2025-06-13.csv", "UTC", "TQQQ"),
    ("intraday-1min/spy_polygon_2024/SPY_1min.csv", None, "SPY"),
    ("intraday-1min/spy_2025-07/SPY_1min.csv", ET, "SPY25"),
    ("intraday-1min/DBB_1min_2023-07-10_to_2025-07-08.csv", "UTC", "DBB"),
    ("intraday-1min/FXY_1min_2023-07-10_to_2025-07-08.csv", "UTC", "FXY"),
    ("intraday-1min/INDA_1min_2023-07-10_to_2025-07-07.csv", "UTC", "INDA"),
]


@pytest.mark.parametrize(("rel", "tz", "symbol"), REAL_FILES, ids=[f[2] for f in REAL_FILES])
def test_real_files_raise_no_outlier_and_no_tz_alarm(shared_data, tmp_path, rel, tz, symbol):
    """No false positives on real data (skipped when ../shared/data is absent)."""
    path = shared_data / rel
    if not path.is_file():
        pytest.skip(f"{path} not present")
    report = import_files(tmp_path / "cat", [path], tz=tz, symbols=[symbol])
    assert report[symbol].outlier_count == 0
    assert report[symbol].rows > 19_000


def test_outliers_of_every_file_are_named_in_one_refusal(tmp_path):
    files = []
    for name, line in (("AAA.csv", 10), ("BBB.csv", 20)):
        rows = session_rows("2025-07-01", 60)
        ts, o, h, lo, c, v = rows[line - 2].split(",")
        rows[line - 2] = ",".join([ts, o, h, f"{float(lo) / 10:.2f}", c, v])
        files.append(write_csv(tmp_path, name, rows))
    with pytest.raises(OutlierError) as info:
        import_files(tmp_path / "cat", files, tz="UTC")
    assert [(Path(f.file).name, f.row) for f in info.value.flags] == [("AAA.csv", 10), ("BBB.csv", 20)]
    assert str(info.value).startswith("2 suspicious bars")
    assert not (tmp_path / "cat").exists() and leftovers(tmp_path) == []
