"""1-minute OHLCV files -> NautilusTrader ``ParquetDataCatalog`` (import) and back (read).

Conventions (other modules rely on them):

* Every imported symbol lives on venue ``XNAS`` (a documented simplification for backtests):
  instrument id ``f"{SYMBOL}.XNAS"``, a Nautilus ``Equity`` in USD, price precision 2,
  price increment 0.01, lot size 1, ``ts_event = ts_init = 0``.
* Bar type ``f"{SYMBOL}.XNAS-1-MINUTE-LAST-EXTERNAL"``; a bar's ``ts_event = ts_init`` is the
  bar's CLOSE time in UTC nanoseconds (Nautilus convention). Input files label bars by their
  OPEN time by default (``label="open"``: close = open + 1 minute); ``label="close"`` is for
  bar-end-labelled files.
* Bars are built with ``Bar.from_raw_arrays_to_list`` from contiguous float64 / uint64 numpy
  arrays (not ``BarDataWrangler``, which fails on read-only buffers under pandas copy-on-write).
  Prices are rounded to 2 decimals (monotone, so OHLC consistency survives), volumes to integers.
* Imports validate every input file first, then build the new catalog in a staging directory next
  to the target and swap it in with renames: a failed import never leaves a half-written catalog.
"""

from __future__ import annotations

import os
import re
import shutil
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from nautilus_trader.model.currencies import USD
from nautilus_trader.model.data import Bar, BarType
from nautilus_trader.model.identifiers import InstrumentId, Symbol
from nautilus_trader.model.instruments import Equity
from nautilus_trader.model.objects import Price, Quantity
from nautilus_trader.persistence.catalog import ParquetDataCatalog

__all__ = [
    "VENUE",
    "BAR_SPEC",
    "PRICE_PRECISION",
    "BarValidationError",
    "MissingTimezoneError",
    "UnknownSymbolError",
    "SymbolImport",
    "ImportReport",
    "instrument_id_for",
    "bar_type_for",
    "make_instrument",
    "read_ohlcv",
    "build_bars",
    "import_files",
    "list_symbols",
    "load_instrument",
    "load_bars",
    "bars_to_frame",
    "regular_session_mask",
    "sessions_table",
]

VENUE = "XNAS"
BAR_SPEC = "1-MINUTE-LAST-EXTERNAL"
PRICE_PRECISION = 2
SIZE_PRECISION = 0

_MINUTE_NS = 60_000_000_000
_BAR_SUFFIX = f".{VENUE}-{BAR_SPEC}"
_SYMBOL_RE = re.compile(r"[A-Z0-9][A-Z0-9.\-]{0,29}")
_TS_NAMES = ("timestamp", "datetime", "date", "time")
_PRICE_FIELDS = ("open", "high", "low", "close")
_FIELDS = (*_PRICE_FIELDS, "volume")
# A time of day followed by "Z" or a numeric UTC offset (+HH:MM, +HHMM, +HH).
_OFFSET_RE = r"\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?\s*(?:Z|UTC|GMT|[+-]\d{2}(?::?\d{2})?)$"
_EPOCH_RE = r"[+-]?\d+(?:\.0*)?"
_COLUMNS = ["ts_close_utc", "open", "high", "low", "close", "volume"]


# -- errors -----------------------------------------------------------------------------------


class BarValidationError(ValueError):
    """A row of an input file is not a valid 1-minute bar.

    Attributes: ``file`` (the path as given), ``row`` (1-based line number in a CSV, header being
    line 1; parquet row index + 1; None for file-level problems), ``field`` and ``value``.
    """

    def __init__(self, file: str, row: int | None, field: str | None, value: Any, detail: str):
        self.file = str(file)
        self.row = row
        self.field = field
        self.value = value
        self.detail = detail
        where = self.file
        if row is not None:
            where += f" {'line' if _is_csv_like(self.file) else 'row'} {row}"
        if field is not None:
            where += f", field '{field}'"
        super().__init__(f"{where}: {detail}")


class MissingTimezoneError(ValueError):
    """The file holds naive (offset-less) times and no ``tz`` was given."""


class UnknownSymbolError(LookupError):
    """The symbol has no bars in the catalog."""

    def __str__(self) -> str:  # LookupError would repr() a lone argument
        return str(self.args[0]) if self.args else ""


def _is_csv_like(file: str) -> bool:
    return not file.lower().endswith((".parquet", ".pq"))


# -- identifiers --------------------------------------------------------------------------------


def _normalize_symbol(symbol: str, source: str = "symbol") -> str:
    sym = str(symbol).strip().upper()
    if not _SYMBOL_RE.fullmatch(sym):
        raise ValueError(
            f"invalid symbol {symbol!r} (from {source}): expected letters, digits, '.' or '-'",
        )
    return sym


def instrument_id_for(symbol: str) -> InstrumentId:
    """``InstrumentId`` ``SYMBOL.XNAS``."""
    return InstrumentId.from_str(f"{_normalize_symbol(symbol)}.{VENUE}")


def bar_type_for(symbol: str) -> BarType:
    """``BarType`` ``SYMBOL.XNAS-1-MINUTE-LAST-EXTERNAL``."""
    return BarType.from_str(f"{_normalize_symbol(symbol)}{_BAR_SUFFIX}")


def make_instrument(symbol: str) -> Equity:
    """The ``Equity`` every imported symbol gets (USD, 2 decimals, tick 0.01, lot 1, ts 0)."""
    sym = _normalize_symbol(symbol)
    return Equity(
        instrument_id=InstrumentId.from_str(f"{sym}.{VENUE}"),
        raw_symbol=Symbol(sym),
        currency=USD,
        price_precision=PRICE_PRECISION,
        price_increment=Price.from_str("0.01"),
        lot_size=Quantity.from_int(1),
        ts_event=0,
        ts_init=0,
    )


# -- reading input files ------------------------------------------------------------------------


def _read_table(path: Path) -> tuple[pd.DataFrame, int]:
    """Return the raw frame and the offset from 0-based row index to the reported row number."""
    suffix = "".join(path.suffixes[-2:]).lower()
    if path.suffix.lower() in (".parquet", ".pq"):
        df = pd.read_parquet(path)
        if not isinstance(df.index, pd.RangeIndex):
            df = df.reset_index()
        return df, 1
    if path.suffix.lower() in (".csv", ".txt") or suffix.endswith((".csv.gz", ".csv.zip", ".csv.bz2")):
        # skip_blank_lines=False keeps row numbers equal to file lines (header = line 1).
        df = pd.read_csv(path, skip_blank_lines=False, low_memory=False)
        # A trailing run of empty lines is harmless; blank lines inside the data are reported.
        empty = df.isna().all(axis=1).to_numpy()
        if len(df) and empty[-1]:
            keep = len(df) - int(np.argmin(empty[::-1])) if not empty.all() else 0
            df = df.iloc[:keep]
        return df, 2
    raise ValueError(f"{path}: unsupported file type (expected .csv or .parquet)")


def _find_columns(df: pd.DataFrame, file: str) -> dict[str, str]:
    by_lower: dict[str, str] = {}
    for col in df.columns:
        key = str(col).strip().lower()
        if key in by_lower:
            raise BarValidationError(file, None, key, col, f"column name {key!r} appears twice")
        by_lower[key] = col
    found: dict[str, str] = {}
    for name in _TS_NAMES:
        if name in by_lower:
            found["timestamp"] = by_lower[name]
            break
    if "timestamp" not in by_lower and "datetime" not in by_lower and {"date", "time"} <= by_lower.keys():
        found["date"], found["time"] = by_lower["date"], by_lower["time"]
    for name in (*_FIELDS, "symbol"):
        if name in by_lower:
            found[name] = by_lower[name]
    missing = [n for n in ("timestamp", *_FIELDS) if n not in found]
    if missing:
        what = "timestamp/datetime/date/time" if missing[0] == "timestamp" else missing[0]
        raise BarValidationError(
            file,
            None,
            missing[0],
            None,
            f"column missing: need a {what} column "
            f"(columns found: {', '.join(map(str, df.columns))})",
        )
    return found


@dataclass
class _Problems:
    """Collects candidate errors; the one on the earliest row wins (ties: check order)."""

    file: str
    row_offset: int  # 0-based row index + row_offset = reported line (CSV) / row (parquet)
    items: list[tuple[int, int, str, Any, str]] = field(default_factory=list)

    @property
    def unit(self) -> str:
        return "line" if self.row_offset == 2 else "row"

    def first(self, mask: np.ndarray, fld: str, values: Any, detail) -> None:
        idx = np.flatnonzero(mask)
        if idx.size:
            i = int(idx[0])
            value = values[i] if values is not None else None
            self.items.append((i, len(self.items), fld, value, detail(i, value)))

    def raise_first(self) -> None:
        if self.items:
            i, _, fld, value, detail = min(self.items, key=lambda t: (t[0], t[1]))
            raise BarValidationError(self.file, i + self.row_offset, fld, value, detail)


def _fmt(x: Any) -> str:
    if isinstance(x, (float, np.floating)):
        return repr(float(x))
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    return repr(x)


def _parse_epoch(values: np.ndarray) -> np.ndarray:
    """Epoch numbers -> int64 ns; unit (s/ms/us/ns) chosen from the magnitude; NaN -> NaT."""
    vals = values.astype("float64")
    finite = np.isfinite(vals)
    peak = float(np.max(np.abs(vals[finite]))) if finite.any() else 0.0
    if peak < 1e11:
        scale = 1_000_000_000
    elif peak < 1e14:
        scale = 1_000_000
    elif peak < 1e17:
        scale = 1_000
    else:
        scale = 1
    out = np.full(len(vals), np.iinfo(np.int64).min, dtype=np.int64)
    ints = np.zeros(len(vals), dtype=np.int64)
    ok = finite & (np.floor(vals) == vals)
    if scale == 1:
        ints[ok] = values[ok].astype("int64") if values.dtype.kind in "iu" else vals[ok].astype("int64")
    else:
        ints[ok] = vals[ok].astype("int64")
    out[ok] = ints[ok] * scale
    return out


_EPOCH_MIN_NS = int(pd.Timestamp("1990-01-01").value)
_EPOCH_MAX_NS = int(pd.Timestamp("2100-01-01").value)


def _check_epoch_range(ns: np.ndarray, raw: Any, problems: _Problems) -> None:
    """Numbers read as Unix epoch must land in 1990..2100 (catches e.g. YYYYMMDDHHMM integers)."""
    valid = ns != np.iinfo(np.int64).min
    problems.first(
        valid & ((ns < _EPOCH_MIN_NS) | (ns >= _EPOCH_MAX_NS)),
        "timestamp",
        raw,
        lambda i, v: (
            f"{_fmt(v)} read as Unix epoch time is {pd.Timestamp(int(ns[i]), unit='ns')} UTC, "
            "outside 1990-2100: not an epoch timestamp"
        ),
    )


def _parse_timestamps(
    col: pd.Series,
    *,
    tz: str | None,
    file: str,
    problems: _Problems,
) -> np.ndarray:
    """Timestamp column -> int64 UTC nanoseconds (NaT = int64 min) ; records parse problems."""
    nat = np.iinfo(np.int64).min
    raw = col.to_numpy()
    n = len(col)

    if pd.api.types.is_datetime64_any_dtype(col.dtype):
        dt = pd.DatetimeIndex(col)
        if dt.tz is None:
            if tz is None:
                raise MissingTimezoneError(f"timestamp: naive times in {file}; pass tz=... (--tz)")
            dt = _localize(dt, tz)
        ns = dt.tz_convert("UTC").as_unit("ns").asi8
        problems.first(ns == nat, "timestamp", raw, lambda i, v: f"cannot parse timestamp {_fmt(v)}")
        return ns

    if pd.api.types.is_numeric_dtype(col.dtype) and not pd.api.types.is_bool_dtype(col.dtype):
        ns = _parse_epoch(col.to_numpy())
        problems.first(ns == nat, "timestamp", raw, lambda i, v: f"cannot parse timestamp {_fmt(v)}")
        _check_epoch_range(ns, raw, problems)
        return ns

    text = col.astype("string").str.strip()
    present = text.notna() & (text != "")
    text_np = text.fillna("").to_numpy(dtype=object)
    is_epoch = text.str.fullmatch(_EPOCH_RE).fillna(False).to_numpy(dtype=bool)
    if is_epoch.sum() * 2 > n:  # mostly numbers: an epoch column with some junk in it
        nums = pd.to_numeric(text.where(is_epoch), errors="coerce").to_numpy(dtype="float64")
        ns = _parse_epoch(nums)
        ns[~is_epoch] = nat
        problems.first(ns == nat, "timestamp", text_np, lambda i, v: f"cannot parse timestamp {_fmt(v)}")
        _check_epoch_range(ns, text_np, problems)
        return ns

    fast = _parse_uniform_offsets(text)
    if fast is not None:
        return fast

    has_offset = text.str.contains(_OFFSET_RE, regex=True).fillna(False).to_numpy(dtype=bool)
    present_np = present.to_numpy(dtype=bool)
    kind = False
    mixed = np.zeros(n, dtype=bool)
    if present_np.any():
        first_present = int(np.argmax(present_np))
        kind = bool(has_offset[first_present])
        mixed = present_np & (has_offset != kind)
        problems.first(
            mixed,
            "timestamp",
            text_np,
            lambda i, v: (
                f"{_fmt(v)} {'has no' if kind else 'has a'} UTC offset unlike "
                f"{problems.unit} {first_present + problems.row_offset}; "
                "all times in a file must agree"
            ),
        )
        if not kind and tz is None:
            raise MissingTimezoneError(f"timestamp: naive times in {file}; pass tz=... (--tz)")
    usable = text.where(~pd.Series(mixed, index=text.index))
    parsed = pd.to_datetime(usable, format="ISO8601", errors="coerce", utc=kind)
    failed = parsed.isna().to_numpy() & present_np & ~mixed
    if failed.any():  # other layouts, e.g. "07/01/2025 09:30" (month first), element by element
        retry = pd.to_datetime(usable[failed], format="mixed", errors="coerce", utc=kind)
        parsed = parsed.copy()
        parsed[failed] = retry.to_numpy()
    dt = pd.DatetimeIndex(parsed)
    unparsed = np.asarray(dt.isna()) & present_np & ~mixed
    if dt.tz is None:
        dt = _localize(dt, tz or "UTC")
    ns = dt.tz_convert("UTC").as_unit("ns").asi8
    problems.first(unparsed, "timestamp", text_np, lambda i, v: f"cannot parse timestamp {_fmt(v)}")
    problems.first(
        (ns == nat) & present_np & ~mixed & ~unparsed,
        "timestamp",
        text_np,
        lambda i, v: f"{_fmt(v)} does not exist or is ambiguous in {tz} (daylight-saving change)",
    )
    problems.first(~present_np, "timestamp", text_np, lambda i, v: "empty timestamp")
    return ns


_TAIL_OFFSET_RE = re.compile(r"[+-]\d{2}:\d{2}")


def _parse_uniform_offsets(text: pd.Series) -> np.ndarray | None:
    """Fast path for '...HH:MM:SS+HH:MM' / '...Z' columns (pandas parses offsets slowly).

    Splits the offset off, parses the local part as naive ISO-8601 and subtracts the offset.
    Returns None whenever the column is not that clean; the general path then parses it and
    reports any bad row.
    """
    if len(text) == 0 or bool(text.isna().any()):
        return None
    tails = text.str[-6:]
    uniq = tails.unique()
    if len(uniq) > 64:
        return None
    offsets: dict[str, int] = {}
    for tail in uniq:
        if _TAIL_OFFSET_RE.fullmatch(tail):
            sign = -1 if tail[0] == "-" else 1
            offsets[tail] = sign * (int(tail[1:3]) * 60 + int(tail[4:6])) * _MINUTE_NS
        elif tail.endswith("Z") and len(tail) == 6:
            offsets[tail] = 0
        else:
            return None
    is_z = tails.str.endswith("Z").to_numpy(dtype=bool)
    bodies = text.str[:-6].where(~is_z, text.str[:-1])
    if not bodies.str.contains(r"\d:\d\d$", regex=True).all():
        return None
    parsed = pd.DatetimeIndex(pd.to_datetime(bodies, format="ISO8601", errors="coerce"))
    if parsed.tz is not None or bool(parsed.isna().any()):
        return None
    shift = tails.map(offsets).to_numpy(dtype=np.int64)
    return parsed.as_unit("ns").asi8 - shift


def _check_tz(tz: str) -> None:
    try:
        pd.Timestamp("2000-01-01").tz_localize(tz)
    except Exception as exc:  # unknown zone names raise various exception types
        raise ValueError(f"unknown time zone {tz!r} (try 'UTC' or 'America/New_York')") from exc


def _localize(dt: pd.DatetimeIndex, tz: str) -> pd.DatetimeIndex:
    _check_tz(tz)
    return dt.tz_localize(tz, ambiguous="NaT", nonexistent="NaT")


def _symbol_from(
    path: Path,
    df: pd.DataFrame,
    cols: dict[str, str],
    symbol: str | None,
    problems: _Problems,
) -> str:
    if symbol is not None:
        return _normalize_symbol(symbol, "symbol argument")
    if "symbol" in cols:
        values = df[cols["symbol"]].astype("string").str.strip().str.upper()
        vals_np = values.fillna("").to_numpy(dtype=object)
        first = vals_np[0] if len(vals_np) else ""
        bad = (vals_np != first) | (vals_np == "")
        problems.first(
            bad,
            "symbol",
            vals_np,
            lambda i, v: f"{_fmt(v)} differs from {first!r} on the first row; one symbol per file",
        )
        problems.raise_first()
        if first:
            return _normalize_symbol(first, f"Symbol column of {path}")
    stem = path.name
    for suffix in (".gz", ".bz2", ".zip", ".csv", ".txt", ".parquet", ".pq"):
        if stem.lower().endswith(suffix):
            stem = stem[: -len(suffix)]
    return _normalize_symbol(stem.split("_", 1)[0], f"file name {path.name}")


def read_ohlcv(
    path: str | os.PathLike[str],
    *,
    tz: str | None,
    label: str = "open",
    symbol: str | None = None,
) -> tuple[str, pd.DataFrame]:
    """Read and validate one CSV/parquet file of 1-minute bars.

    Returns ``(symbol, frame)``; the frame has ``ts_close_utc`` (int64 ns, bar close time) and the
    file's raw ``open, high, low, close, volume`` as float64 (rounding happens in
    :func:`build_bars`). Raises :class:`BarValidationError` for the first bad row (earliest line),
    :class:`MissingTimezoneError` for naive times without ``tz``.
    """
    if label not in ("open", "close"):
        raise ValueError(f"label must be 'open' or 'close', not {label!r}")
    if tz is not None:
        _check_tz(tz)
    p = Path(path)
    file = str(path)
    if not p.is_file():
        raise FileNotFoundError(f"input file not found: {file}")
    df, row_offset = _read_table(p)
    cols = _find_columns(df, file)
    if len(df) == 0:
        raise BarValidationError(file, None, None, None, "no data rows")
    problems = _Problems(file, row_offset)
    sym = _symbol_from(p, df, cols, symbol, problems)

    if "time" in cols:  # separate date and time-of-day columns
        ts_col = (
            df[cols["date"]].astype("string").str.strip()
            + " "
            + df[cols["time"]].astype("string").str.strip()
        )
    else:
        ts_col = df[cols["timestamp"]]
    ns = _parse_timestamps(ts_col, tz=tz, file=file, problems=problems)
    ts_raw = ts_col.to_numpy()
    valid_ts = ns != np.iinfo(np.int64).min

    values: dict[str, np.ndarray] = {}
    for name in _FIELDS:
        col = df[cols[name]]
        raw = col.to_numpy()
        if pd.api.types.is_numeric_dtype(col.dtype) and not pd.api.types.is_bool_dtype(col.dtype):
            num = col.to_numpy(dtype="float64", na_value=np.nan)
            non_numeric = np.zeros(len(num), dtype=bool)
        else:
            stripped = col.astype("string").str.strip()
            num = pd.to_numeric(stripped, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
            non_numeric = np.isnan(num) & (stripped.fillna("") != "").to_numpy(dtype=bool)
        values[name] = num
        problems.first(non_numeric, name, raw, lambda i, v: f"not a number: {_fmt(v)}")
        problems.first(np.isnan(num) & ~non_numeric, name, num, lambda i, v: "missing value (NaN)")
        problems.first(np.isinf(num), name, num, lambda i, v: f"not finite: {_fmt(v)}")
        if name == "volume":
            problems.first(num < 0, name, num, lambda i, v: f"negative volume {_fmt(v)}")
        else:
            problems.first(num <= 0, name, num, lambda i, v: f"price must be > 0, got {_fmt(v)}")
            problems.first(
                (num > 0) & (np.round(num, PRICE_PRECISION) <= 0),
                name,
                num,
                lambda i, v: f"price {_fmt(v)} rounds to 0.00 at {PRICE_PRECISION} decimals",
            )

    o, h, lo, c = (values[k] for k in _PRICE_FIELDS)
    with np.errstate(invalid="ignore"):
        top = np.maximum(o, c)
        bottom = np.minimum(o, c)
        problems.first(h < lo, "high", h, lambda i, v: f"high {_fmt(v)} < low {_fmt(lo[i])}")
        problems.first(h < top, "high", h, lambda i, v: f"{_fmt(v)} < max(open, close) {_fmt(top[i])}")
        problems.first(lo > bottom, "low", lo, lambda i, v: f"{_fmt(v)} > min(open, close) {_fmt(bottom[i])}")

    problems.first(
        valid_ts & (ns % _MINUTE_NS != 0),
        "timestamp",
        ts_raw,
        lambda i, v: f"{_fmt(v)} is not on a whole minute (1-minute bars expected)",
    )
    if valid_ts.all() and len(ns) > 1:
        step = np.diff(ns)
        back = np.concatenate(([False], step < 0))
        same = np.concatenate(([False], step == 0))
        problems.first(
            back,
            "timestamp",
            ts_raw,
            lambda i, v: (
                f"rows are not in ascending time order: {_fmt(v)} comes after "
                f"{_fmt(ts_raw[i - 1])} on the previous {problems.unit} (sort the file by time)"
            ),
        )
        problems.first(
            same,
            "timestamp",
            ts_raw,
            lambda i, v: f"duplicate timestamp {_fmt(v)} (same as the previous {problems.unit})",
        )
    problems.raise_first()

    if len(ns) >= 10:
        # Coarser bars (5-minute, daily) would silently pass as 1-minute bars with gaps.
        step_min = int(np.gcd.reduce(np.diff(ns) // _MINUTE_NS))
        if step_min > 1:
            raise BarValidationError(
                file,
                None,
                "timestamp",
                step_min * 60,
                f"rows are at least {step_min} minutes apart (every spacing is a multiple of "
                f"{step_min * 60} s): these are not 1-minute bars",
            )

    shift = _MINUTE_NS if label == "open" else 0
    frame = pd.DataFrame(
        {
            "ts_close_utc": ns + shift,
            "open": o,
            "high": h,
            "low": lo,
            "close": c,
            "volume": values["volume"],
        },
        columns=_COLUMNS,
    )
    frame.attrs["symbol"] = sym
    frame.attrs["source"] = file
    return sym, frame


# -- building bars ------------------------------------------------------------------------------


def _contiguous(values: Any, dtype: str) -> np.ndarray:
    # A fresh, writable, C-contiguous copy: Cython typed memoryviews refuse read-only buffers
    # (pandas copy-on-write hands out read-only views).
    return np.array(values, dtype=dtype, copy=True, order="C")


def build_bars(symbol: str, frame: pd.DataFrame) -> list[Bar]:
    """``read_ohlcv`` frame -> Nautilus bars (prices rounded to 2 dp, volume to integer)."""
    bar_type = bar_type_for(symbol)
    if len(frame) == 0:
        return []
    ts = frame["ts_close_utc"].to_numpy()
    if (ts < 0).any():
        raise ValueError("bar close times before 1970 cannot be stored")
    ts_u = _contiguous(ts, "uint64")
    prices = [
        _contiguous(np.round(frame[k].to_numpy(dtype="float64"), PRICE_PRECISION), "float64")
        for k in _PRICE_FIELDS
    ]
    volumes = _contiguous(np.rint(frame["volume"].to_numpy(dtype="float64")), "float64")
    return Bar.from_raw_arrays_to_list(
        bar_type,
        PRICE_PRECISION,
        SIZE_PRECISION,
        *prices,
        volumes,
        ts_u,
        ts_u.copy(),
    )


def bars_to_frame(bars: Sequence[Bar]) -> pd.DataFrame:
    """Bars -> DataFrame[ts_close_utc (int64 ns), open, high, low, close, volume (float64)]."""
    n = len(bars)
    ts = np.fromiter((b.ts_event for b in bars), dtype=np.int64, count=n)
    data = {"ts_close_utc": ts}
    for name in _FIELDS:
        data[name] = np.fromiter((float(getattr(b, name)) for b in bars), dtype=np.float64, count=n)
    return pd.DataFrame(data, columns=_COLUMNS)


# -- NYSE regular session ----------------------------------------------------------------------


def _calendar(name: str):
    from strategies.trade_executor.calendar import MarketCalendar  # the project's one calendar

    return MarketCalendar(name)


def sessions_table(start: Any, end: Any, calendar: str = "XNYS") -> pd.DataFrame:
    """Sessions dated in [start, end] (dates, inclusive): columns ``open`` and ``close`` (UTC).

    Index: session dates (naive midnight, named ``session``). Early closes show as an earlier
    ``close``; holidays and weekends are absent.
    """
    lo, hi = pd.Timestamp(start), pd.Timestamp(end)
    lo = (lo.tz_localize(None) if lo.tzinfo else lo).normalize()
    hi = (hi.tz_localize(None) if hi.tzinfo else hi).normalize()
    cal = _calendar(calendar)
    a, b = max(lo.date(), cal.first_date), min(hi.date(), cal.last_date)
    rows = cal.session_rows(a, b) if a <= b else range(0)
    sl = slice(rows.start, rows.stop)
    return pd.DataFrame(
        {
            "open": pd.DatetimeIndex(cal.opens_ns[sl], tz="UTC"),
            "close": pd.DatetimeIndex(cal.closes_ns[sl], tz="UTC"),
        },
        index=pd.DatetimeIndex(pd.to_datetime(cal.labels[sl]), name="session"),
    )


def regular_session_mask(ts_close_ns: np.ndarray | Iterable[int], calendar: str = "XNYS") -> np.ndarray:
    """True where the 1-minute bar [close - 1 min, close) lies inside a regular session.

    ``MarketCalendar.session_mask`` (holidays, early closes, lunch breaks for calendars that have
    them), vectorised. Bars outside the calendar's built range raise ValueError.
    """
    ts = np.asarray(ts_close_ns)
    if ts.size == 0:
        return np.zeros(0, dtype=bool)
    return _calendar(calendar).session_mask(ts, bar_ns=_MINUTE_NS)


def _expected_session_minutes(first_close: int, last_close: int, calendar: str = "XNYS") -> int:
    """Regular-session minutes between the first bar's open and the last bar's close."""
    return _calendar(calendar).session_minutes(first_close - _MINUTE_NS, last_close)


# -- import -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SymbolImport:
    """What one imported file contributed (times are bar close times, UTC)."""

    symbol: str
    instrument_id: str
    bar_type: str
    source: str
    rows: int
    first_ts: pd.Timestamp
    last_ts: pd.Timestamp
    gaps: int  # consecutive bars more than 1 minute apart (nights and weekends included)
    session_rows: int  # bars inside the NYSE regular session
    missing_session_minutes: int  # regular-session minutes in the file's span without a bar
    replaced: bool  # the symbol was already in the catalog and its bars were replaced


@dataclass
class ImportReport:
    catalog_dir: Path
    symbols: list[SymbolImport]
    elapsed_s: float

    @property
    def rows(self) -> int:
        return sum(s.rows for s in self.symbols)

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.elapsed_s if self.elapsed_s > 0 else float("inf")

    def __getitem__(self, symbol: str) -> SymbolImport:
        sym = str(symbol).upper()
        for s in self.symbols:
            if s.symbol == sym:
                return s
        raise KeyError(symbol)

    def __contains__(self, symbol: object) -> bool:
        return any(s.symbol == str(symbol).upper() for s in self.symbols)

    def format(self) -> str:
        lines = [f"catalog {self.catalog_dir}: {self.rows} bars in {self.elapsed_s:.2f}s"]
        for s in self.symbols:
            lines.append(
                f"  {s.symbol:<8} {s.rows:>8} bars  {s.first_ts:%Y-%m-%d %H:%M} -> "
                f"{s.last_ts:%Y-%m-%d %H:%M} UTC  gaps {s.gaps}  in session {s.session_rows}  "
                f"missing session minutes {s.missing_session_minutes}"
                f"{'  (replaced)' if s.replaced else ''}  <- {s.source}",
            )
        return "\n".join(lines)

    __str__ = format


def _symbols_for(paths: list[Path], symbols: Any) -> list[str | None]:
    if symbols is None:
        return [None] * len(paths)
    if isinstance(symbols, str):
        symbols = [symbols]
    if isinstance(symbols, Mapping):
        by_key = {str(Path(k)): v for k, v in symbols.items()}
        return [by_key.get(str(p)) for p in paths]
    out = list(symbols)
    if len(out) != len(paths):
        raise ValueError(f"symbols: got {len(out)} for {len(paths)} files")
    return out


def _check_catalog_dir(target: Path) -> None:
    if target.exists():
        if not target.is_dir():
            raise NotADirectoryError(f"catalog path exists and is not a directory: {target}")
        entries = [e for e in target.iterdir()]
        if entries and not (target / "data").is_dir():
            raise ValueError(
                f"{target} is not empty and is not a ParquetDataCatalog (no data/ folder); "
                "refusing to replace it",
            )


def _bar_dir(root: Path, symbol: str) -> Path:
    return root / "data" / "bar" / f"{symbol}{_BAR_SUFFIX}"


def _instrument_dir(root: Path, symbol: str) -> Path:
    return root / "data" / "equity" / f"{symbol}.{VENUE}"


def _swap_in(staging: Path, target: Path) -> None:
    """staging -> target with renames; the old catalog is kept until the new one is in place."""
    if target.exists():
        backup = target.parent / f".{target.name}.backup-{uuid.uuid4().hex[:12]}"
        os.rename(target, backup)
        try:
            os.rename(staging, target)
        except BaseException:
            os.rename(backup, target)
            raise
        shutil.rmtree(backup, ignore_errors=True)
    else:
        os.rename(staging, target)


def import_files(
    catalog_dir: str | os.PathLike[str],
    paths: Iterable[str | os.PathLike[str]] | str | os.PathLike[str],
    *,
    tz: str | None,
    label: str = "open",
    symbols: Sequence[str | None] | Mapping[str, str] | str | None = None,
) -> ImportReport:
    """Validate every file, then write instruments + bars into the catalog atomically.

    ``symbols`` (optional) gives one symbol per path (a sequence aligned with ``paths`` or a
    mapping path -> symbol); otherwise each file's Symbol column or file-name stem is used.
    Re-importing a symbol replaces its bars and instrument; other symbols are kept.
    """
    t0 = time.perf_counter()
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    path_list = [Path(p) for p in paths]
    if not path_list:
        raise ValueError("no input files given")
    sym_args = _symbols_for(path_list, symbols)

    loaded: list[tuple[str, Path, pd.DataFrame]] = []
    seen: dict[str, Path] = {}
    for p, s in zip(path_list, sym_args, strict=True):
        sym, frame = read_ohlcv(p, tz=tz, label=label, symbol=s)
        if sym in seen:
            raise ValueError(
                f"symbol {sym} comes from two files ({seen[sym]} and {p}); import one file per "
                "symbol or pass symbols=...",
            )
        seen[sym] = p
        loaded.append((sym, p, frame))

    target = Path(catalog_dir)
    _check_catalog_dir(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.parent / f".{target.name}.staging-{uuid.uuid4().hex[:12]}"
    results: list[SymbolImport] = []
    try:
        if target.exists():
            shutil.copytree(target, staging, symlinks=True)
        else:
            staging.mkdir()
        catalog = ParquetDataCatalog(str(staging))
        for sym, p, frame in loaded:
            replaced = False
            for d in (_bar_dir(staging, sym), _instrument_dir(staging, sym)):
                if d.exists():
                    replaced = replaced or d.parent.name == "bar"
                    shutil.rmtree(d)
            bars = build_bars(sym, frame)
            catalog.write_data([make_instrument(sym)])
            catalog.write_data(bars)
            ts = frame["ts_close_utc"].to_numpy()
            session = regular_session_mask(ts)
            results.append(
                SymbolImport(
                    symbol=sym,
                    instrument_id=f"{sym}.{VENUE}",
                    bar_type=f"{sym}{_BAR_SUFFIX}",
                    source=str(p),
                    rows=len(frame),
                    first_ts=pd.Timestamp(int(ts[0]), unit="ns", tz="UTC"),
                    last_ts=pd.Timestamp(int(ts[-1]), unit="ns", tz="UTC"),
                    gaps=int((np.diff(ts) > _MINUTE_NS).sum()),
                    session_rows=int(session.sum()),
                    missing_session_minutes=max(
                        0,
                        _expected_session_minutes(int(ts[0]), int(ts[-1])) - int(session.sum()),
                    ),
                    replaced=replaced,
                ),
            )
        _swap_in(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return ImportReport(catalog_dir=target, symbols=results, elapsed_s=time.perf_counter() - t0)


# -- reading the catalog ------------------------------------------------------------------------


def _require_catalog(catalog_dir: str | os.PathLike[str]) -> Path:
    root = Path(catalog_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"catalog not found: {catalog_dir}")
    return root


def list_symbols(catalog_dir: str | os.PathLike[str]) -> list[str]:
    """Symbols with 1-minute XNAS bars in the catalog, sorted."""
    root = _require_catalog(catalog_dir)
    bar_root = root / "data" / "bar"
    if not bar_root.is_dir():
        return []
    out = []
    for d in bar_root.iterdir():
        if d.is_dir() and d.name.endswith(_BAR_SUFFIX) and any(d.glob("*.parquet")):
            out.append(d.name[: -len(_BAR_SUFFIX)])
    return sorted(out)


def _require_symbol(catalog_dir: str | os.PathLike[str], symbol: str) -> str:
    sym = str(symbol).strip().upper()
    available = list_symbols(catalog_dir)
    if sym not in available:
        raise UnknownSymbolError(
            f"unknown symbol {symbol!r} in catalog {catalog_dir}; available: "
            f"{', '.join(available) if available else '(none)'}",
        )
    return sym


def load_instrument(catalog_dir: str | os.PathLike[str], symbol: str) -> Equity:
    """The symbol's ``Equity`` from the catalog."""
    sym = _require_symbol(catalog_dir, symbol)
    found = ParquetDataCatalog(str(catalog_dir)).query(Equity, identifiers=[f"{sym}.{VENUE}"])
    if not found:
        raise UnknownSymbolError(f"catalog {catalog_dir} has bars for {sym} but no instrument")
    return found[-1]


def _to_ns(value: Any, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value)
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{name}: cannot parse {value!r} as a time") from exc
    if ts is pd.NaT:
        raise ValueError(f"{name}: cannot parse {value!r} as a time")
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return int(ts.as_unit("ns").value)


def load_bars(
    catalog_dir: str | os.PathLike[str],
    symbol: str,
    start: Any = None,
    end: Any = None,
) -> list[Bar]:
    """The symbol's 1-minute bars with ``start <= ts_event < end`` (naive times are UTC)."""
    sym = _require_symbol(catalog_dir, symbol)
    lo, hi = _to_ns(start, "start"), _to_ns(end, "end")
    if lo is not None and hi is not None and hi <= lo:
        return []
    catalog = ParquetDataCatalog(str(catalog_dir))
    kwargs: dict[str, int] = {}
    if lo is not None:
        kwargs["start"] = max(lo, 0)
    if hi is not None:
        if hi <= 0:
            return []
        kwargs["end"] = hi - 1  # the catalog's end bound is inclusive
    bars = catalog.bars(bar_types=[f"{sym}{_BAR_SUFFIX}"], **kwargs)
    if lo is not None or hi is not None:
        bars = [
            b
            for b in bars
            if (lo is None or b.ts_event >= lo) and (hi is None or b.ts_event < hi)
        ]
    return bars
