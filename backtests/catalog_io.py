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
* Imports stream each file in chunks of ``CHUNK_ROWS`` rows (validated with the state that crosses
  chunk boundaries carried over) into a staging copy of the catalog next to the target, which is
  swapped in with renames only when every file passed: a failed import never leaves a
  half-written catalog. Stale staging folders of killed imports (owner pid gone, or no pid and
  older than ``STALE_AFTER_S``) are removed at the start of every import.
* Beyond row validation an import refuses (``OutlierError``, unless ``accept_outliers``) outlier
  bars and split-like jumps (``OUTLIER_*`` / ``SPLIT_*``), and (``TimezoneMismatchError``) naive
  times placed with a ``tz`` under which most bars miss the XNYS session while another zone fits
  (``TZ_*``).
"""

from __future__ import annotations

import os
import re
import shutil
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
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
    "OutlierError",
    "OutlierFlag",
    "TimezoneMismatchError",
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


CHUNK_ROWS = 100_000  # rows per chunk read, validated and written (~470 MB peak RSS, any file size)


def _iter_tables(path: Path, chunk_rows: int) -> Iterator[tuple[pd.DataFrame, int]]:
    """Yield ``(frame, offset)`` chunks; ``offset`` maps a chunk's 0-based row index to the reported
    row number (CSV: file line, header = line 1; parquet: 1-based row). At least one (maybe empty)
    chunk is yielded so the columns can be checked.

    CSV is streamed with pandas ``chunksize``; a run of empty lines at the end of a chunk is carried
    into the next one (a trailing run at the end of the file is harmless, blank lines inside the
    data are reported). Parquet is read whole (columnar and compact) and handed out in slices.
    """
    suffix = "".join(path.suffixes[-2:]).lower()
    if path.suffix.lower() in (".parquet", ".pq"):
        df = pd.read_parquet(path)
        if not isinstance(df.index, pd.RangeIndex):
            df = df.reset_index()
        df = df.reset_index(drop=True)
        if len(df) == 0:
            yield df, 1
        for a in range(0, len(df), chunk_rows):
            yield df.iloc[a : a + chunk_rows].reset_index(drop=True), 1 + a
        return
    if path.suffix.lower() in (".csv", ".txt") or suffix.endswith((".csv.gz", ".csv.zip", ".csv.bz2")):
        # skip_blank_lines=False keeps row numbers equal to file lines (header = line 1).
        reader = pd.read_csv(path, skip_blank_lines=False, chunksize=chunk_rows, low_memory=False)
        carry: pd.DataFrame | None = None
        line = 2  # file line of the next row handed out
        yielded = False
        with reader:
            for chunk in reader:
                if carry is not None and len(carry):
                    chunk = pd.concat([carry, chunk], ignore_index=True)
                chunk = chunk.reset_index(drop=True)
                empty = chunk.isna().all(axis=1).to_numpy()
                keep = len(chunk) - int(np.argmin(empty[::-1])) if len(chunk) and not empty.all() else 0
                if keep == 0 and len(chunk):
                    carry = chunk
                    continue
                carry = chunk.iloc[keep:]
                yield chunk.iloc[:keep], line
                yielded = True
                line += keep
        if not yielded:
            yield pd.read_csv(path, nrows=0), 2
        return
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
        return "line" if _is_csv_like(self.file) else "row"

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


def _parse_epoch(values: np.ndarray, state: dict | None = None) -> np.ndarray:
    """Epoch numbers -> int64 ns; unit (s/ms/us/ns) chosen from the magnitude (of the first chunk
    with a number, kept in ``state`` for the rest of the file); NaN -> NaT."""
    vals = values.astype("float64")
    finite = np.isfinite(vals)
    peak = float(np.max(np.abs(vals[finite]))) if finite.any() else 0.0
    scale = state.get("epoch_scale") if state is not None else None
    if scale is not None:
        pass
    elif peak < 1e11:
        scale = 1_000_000_000
    elif peak < 1e14:
        scale = 1_000_000
    elif peak < 1e17:
        scale = 1_000
    else:
        scale = 1
    if state is not None and finite.any():
        state["epoch_scale"] = scale
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
    state: dict | None = None,
) -> np.ndarray:
    """Timestamp column -> int64 UTC nanoseconds (NaT = int64 min) ; records parse problems.

    ``state`` carries what one chunk decides for the whole file: epoch vs text, offset vs naive
    (and the line that decided it), the epoch unit; ``state["naive"]`` is set when ``tz`` was used.
    """
    if state is None:
        state = {}
    nat = np.iinfo(np.int64).min
    raw = col.to_numpy()
    n = len(col)

    if pd.api.types.is_datetime64_any_dtype(col.dtype):
        dt = pd.DatetimeIndex(col)
        if dt.tz is None:
            if tz is None:
                raise MissingTimezoneError(f"timestamp: naive times in {file}; pass tz=... (--tz)")
            dt = _localize(dt, tz)
            state["naive"] = True
        ns = dt.tz_convert("UTC").as_unit("ns").asi8
        problems.first(ns == nat, "timestamp", raw, lambda i, v: f"cannot parse timestamp {_fmt(v)}")
        return ns

    if pd.api.types.is_numeric_dtype(col.dtype) and not pd.api.types.is_bool_dtype(col.dtype):
        ns = _parse_epoch(col.to_numpy(), state)
        problems.first(ns == nat, "timestamp", raw, lambda i, v: f"cannot parse timestamp {_fmt(v)}")
        _check_epoch_range(ns, raw, problems)
        return ns

    text = col.astype("string").str.strip()
    present = text.notna() & (text != "")
    text_np = text.fillna("").to_numpy(dtype=object)
    is_epoch = text.str.fullmatch(_EPOCH_RE).fillna(False).to_numpy(dtype=bool)
    mode = state.get("text_mode")
    if mode is None and bool(present.any()):
        # mostly numbers: an epoch column with some junk in it (decided by the first chunk)
        mode = state["text_mode"] = "epoch" if is_epoch.sum() * 2 > n else "text"
    if mode == "epoch":
        nums = pd.to_numeric(text.where(is_epoch), errors="coerce").to_numpy(dtype="float64")
        ns = _parse_epoch(nums, state)
        ns[~is_epoch] = nat
        problems.first(ns == nat, "timestamp", text_np, lambda i, v: f"cannot parse timestamp {_fmt(v)}")
        _check_epoch_range(ns, text_np, problems)
        return ns

    fast = _parse_uniform_offsets(text) if state.get("kind") in (None, True) else None
    if fast is not None:
        if state.get("kind") is None:
            state["kind"], state["kind_line"] = True, problems.row_offset
        return fast

    has_offset = text.str.contains(_OFFSET_RE, regex=True).fillna(False).to_numpy(dtype=bool)
    present_np = present.to_numpy(dtype=bool)
    kind = False
    mixed = np.zeros(n, dtype=bool)
    if present_np.any():
        if state.get("kind") is None:
            first_present = int(np.argmax(present_np))
            state["kind"] = bool(has_offset[first_present])
            state["kind_line"] = first_present + problems.row_offset
        kind = state["kind"]
        mixed = present_np & (has_offset != kind)
        problems.first(
            mixed,
            "timestamp",
            text_np,
            lambda i, v: (
                f"{_fmt(v)} {'has no' if kind else 'has a'} UTC offset unlike "
                f"{problems.unit} {state['kind_line']}; "
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
        state["naive"] = tz is not None
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
    state: dict | None = None,
) -> str:
    if symbol is not None:
        return _normalize_symbol(symbol, "symbol argument")
    if state is None:
        state = {}
    if "symbol" in cols:
        values = df[cols["symbol"]].astype("string").str.strip().str.upper()
        vals_np = values.fillna("").to_numpy(dtype=object)
        if "symbol_first" not in state:
            state["symbol_first"] = vals_np[0] if len(vals_np) else ""
        first = state["symbol_first"]
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


@dataclass
class _Chunk:
    """One validated chunk: the ``read_ohlcv`` columns plus where its rows are in the file."""

    frame: pd.DataFrame  # _COLUMNS
    first_row: int  # reported line (CSV) / row (parquet) of the frame's first row
    ts_raw: np.ndarray  # the timestamps as written in the file (for messages)


class _OhlcvStream:
    """Reads and validates one file chunk by chunk, carrying what crosses chunk boundaries.

    Carried state: the column layout, the symbol, the timestamp format decisions (see
    ``_parse_timestamps``), the previous row's timestamp (ordering and duplicates), the running
    gcd of the spacing (coarser-bar check) and the first/last timestamps.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        tz: str | None,
        label: str = "open",
        symbol: str | None = None,
        chunk_rows: int = CHUNK_ROWS,
    ):
        if label not in ("open", "close"):
            raise ValueError(f"label must be 'open' or 'close', not {label!r}")
        if tz is not None:
            _check_tz(tz)
        self.path = Path(path)
        self.file = str(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"input file not found: {self.file}")
        self.tz = tz
        self.label = label
        self.symbol_arg = symbol
        self.chunk_rows = int(chunk_rows)
        self.state: dict[str, Any] = {}
        self.symbol: str | None = None
        self.rows = 0

    @property
    def naive(self) -> bool:
        """True when the file's times were naive and ``tz`` placed them."""
        return bool(self.state.get("naive"))

    def __iter__(self) -> Iterator[_Chunk]:
        cols: dict[str, str] | None = None
        prev_ns: int | None = None
        prev_raw: Any = None
        step_gcd = 0
        for df, offset in _iter_tables(self.path, self.chunk_rows):
            if cols is None:
                cols = _find_columns(df, self.file)
            if len(df) == 0:
                continue
            chunk = self._validate(df, offset, cols, prev_ns, prev_raw)
            ns_open = chunk.frame["ts_close_utc"].to_numpy() - (_MINUTE_NS if self.label == "open" else 0)
            if prev_ns is not None:
                step_gcd = int(np.gcd(step_gcd, (int(ns_open[0]) - prev_ns) // _MINUTE_NS))
            if len(ns_open) > 1:
                step_gcd = int(np.gcd(step_gcd, int(np.gcd.reduce(np.diff(ns_open) // _MINUTE_NS))))
            prev_ns, prev_raw = int(ns_open[-1]), chunk.ts_raw[-1]
            self.rows += len(ns_open)
            yield chunk
        if self.rows == 0:
            raise BarValidationError(self.file, None, None, None, "no data rows")
        if self.rows >= 10 and step_gcd > 1:
            # Coarser bars (5-minute, daily) would silently pass as 1-minute bars with gaps.
            raise BarValidationError(
                self.file,
                None,
                "timestamp",
                step_gcd * 60,
                f"rows are at least {step_gcd} minutes apart (every spacing is a multiple of "
                f"{step_gcd * 60} s): these are not 1-minute bars",
            )

    def _validate(
        self,
        df: pd.DataFrame,
        offset: int,
        cols: dict[str, str],
        prev_ns: int | None,
        prev_raw: Any,
    ) -> _Chunk:
        file = self.file
        problems = _Problems(file, offset)
        sym = _symbol_from(self.path, df, cols, self.symbol_arg, problems, self.state)
        if self.symbol is None:
            self.symbol = sym
        if "time" in cols:  # separate date and time-of-day columns
            ts_col = (
                df[cols["date"]].astype("string").str.strip()
                + " "
                + df[cols["time"]].astype("string").str.strip()
            )
        else:
            ts_col = df[cols["timestamp"]]
        ns = _parse_timestamps(ts_col, tz=self.tz, file=file, problems=problems, state=self.state)
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
        if valid_ts.all() and len(ns) > 0:
            before = ns[:-1] if prev_ns is None else np.concatenate(([prev_ns], ns[:-1]))
            step = ns[1:] - before if prev_ns is None else ns - before
            if prev_ns is None:
                step = np.concatenate(([1], step))
            back = step < 0
            same = step == 0

            def previous(i: int) -> Any:
                return ts_raw[i - 1] if i > 0 else prev_raw

            problems.first(
                back,
                "timestamp",
                ts_raw,
                lambda i, v: (
                    f"rows are not in ascending time order: {_fmt(v)} comes after "
                    f"{_fmt(previous(i))} on the previous {problems.unit} (sort the file by time)"
                ),
            )
            problems.first(
                same,
                "timestamp",
                ts_raw,
                lambda i, v: f"duplicate timestamp {_fmt(v)} (same as the previous {problems.unit})",
            )
        problems.raise_first()

        shift = _MINUTE_NS if self.label == "open" else 0
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
        return _Chunk(frame=frame, first_row=offset, ts_raw=ts_raw)


def read_ohlcv(
    path: str | os.PathLike[str],
    *,
    tz: str | None,
    label: str = "open",
    symbol: str | None = None,
) -> tuple[str, pd.DataFrame]:
    """Read and validate one CSV/parquet file of 1-minute bars (whole file in memory).

    Returns ``(symbol, frame)``; the frame has ``ts_close_utc`` (int64 ns, bar close time) and the
    file's raw ``open, high, low, close, volume`` as float64 (rounding happens in
    :func:`build_bars`). Raises :class:`BarValidationError` for the first bad row (earliest line),
    :class:`MissingTimezoneError` for naive times without ``tz``. ``import_files`` streams instead.
    """
    stream = _OhlcvStream(path, tz=tz, label=label, symbol=symbol)
    frames = [chunk.frame for chunk in stream]
    frame = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
    frame.attrs["symbol"] = stream.symbol
    frame.attrs["source"] = stream.file
    return str(stream.symbol), frame


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


# -- outliers and split-like jumps -------------------------------------------------------------

OUTLIER_WINDOW = 30  # bars on each side of a bar that make its reference level
OUTLIER_MIN_SIDE = 3  # fewer bars than this on a side (file start/end): that side is not known
# |log move| below log(1.4) (1.4x up / 0.714x down) is never an outlier: the real SPY July 2025
# file holds after-hours wicks at 0.744x-0.75x the surrounding level (2025-07-21 17:11 ET...),
# the other real files stay within 1.10x; a 10x print, a 2:1 split or a 1.5x spike are caught.
OUTLIER_FLOOR = float(np.log(1.4))
OUTLIER_K = 50.0  # ... nor below 50 x the median |log return| of the previous OUTLIER_WINDOW bars
SPLIT_RATIOS = (1.5, 2.0, 3.0, 4.0, 5.0, 8.0, 10.0, 15.0, 20.0, 25.0, 30.0, 40.0, 50.0, 100.0)
SPLIT_TOLERANCE = 0.04  # |log(level ratio) - log(split ratio)| within 4 %
MAX_REPORTED = 5  # offending rows named in a refusal (the count says how many more)


class OutlierError(ValueError):
    """Outlier bars or split-like jumps (refused unless ``accept_outliers``). ``flags``: all of them."""

    def __init__(self, message: str, flags: list[OutlierFlag]):
        super().__init__(message)
        self.flags = flags


class TimezoneMismatchError(ValueError):
    """Naive times placed with ``tz`` mostly fall outside the exchange session; another zone fits."""

    def __init__(self, message: str, suggested_tz: str):
        super().__init__(message)
        self.suggested_tz = suggested_tz


@dataclass(frozen=True)
class OutlierFlag:
    file: str
    row: int  # file line (CSV) / 1-based row (parquet)
    timestamp: str  # as written in the file
    open: float
    high: float
    low: float
    close: float
    kind: str  # "outlier" | "split"
    why: str

    def format(self) -> str:
        unit = "line" if _is_csv_like(self.file) else "row"
        return (
            f"{self.file} {unit} {self.row}, {self.timestamp}: {self.kind} (open {self.open:.10g} "
            f"high {self.high:.10g} low {self.low:.10g} close {self.close:.10g}): {self.why}"
        )

    __str__ = format


def _split_name(ratio: float) -> str:
    """Level ratio after/before -> split name (0.5 -> '2-for-1 split')."""
    if ratio >= 1:
        return f"1-for-{ratio:g} reverse split"
    return f"{1 / ratio:g}-for-1 split"


_LOG_SPLITS = np.log(np.array([*SPLIT_RATIOS, *(1 / r for r in SPLIT_RATIOS)]))


def _rolling_median_before(x: np.ndarray, w: int) -> np.ndarray:
    """median(x[i-w .. i-1]) (NaN with fewer than OUTLIER_MIN_SIDE values)."""
    med = pd.Series(x).rolling(w, min_periods=OUTLIER_MIN_SIDE).median().to_numpy()
    return np.concatenate(([np.nan], med[:-1])) if len(x) else med


def _rolling_median_after(x: np.ndarray, w: int) -> np.ndarray:
    """median(x[i+1 .. i+w]) (NaN with fewer than OUTLIER_MIN_SIDE values)."""
    return _rolling_median_before(x[::-1], w)[::-1]


class _OutlierScanner:
    """Streaming detector of outlier bars and split-like jumps (see ``_evaluate``).

    Each bar is judged once ``OUTLIER_WINDOW`` later bars are known (or at the end of the file);
    the scanner keeps only the last ``2 x OUTLIER_WINDOW`` bars between chunks.
    """

    def __init__(self, file: str):
        self.file = file
        self.flags: list[OutlierFlag] = []
        self.count = 0
        self.buf: dict[str, np.ndarray] | None = None
        self.pending = 0  # bars at the end of buf not judged yet

    def push(self, chunk: _Chunk) -> None:
        f = chunk.frame
        new = {k: f[k].to_numpy(dtype="float64") for k in _PRICE_FIELDS}
        new["row"] = np.arange(chunk.first_row, chunk.first_row + len(f), dtype=np.int64)
        new["ts"] = np.asarray(chunk.ts_raw, dtype=object)
        self._scan(new, final=False)

    def finish(self) -> None:
        self._scan(None, final=True)

    def _scan(self, new: dict[str, np.ndarray] | None, final: bool) -> None:
        w = OUTLIER_WINDOW
        if self.buf is None:
            if new is None:
                return
            data, start = new, 0
        else:
            data = self.buf if new is None else {k: np.concatenate((self.buf[k], new[k])) for k in self.buf}
            start = len(self.buf["close"]) - self.pending
        n = len(data["close"])
        stop = n if final else max(start, n - w)
        if stop > start:
            self._evaluate(data, start, stop)
        self.pending = n - stop
        keep = self.pending + w
        self.buf = {k: v[-keep:] if keep < n else v for k, v in data.items()}

    def _evaluate(self, d: dict[str, np.ndarray], start: int, stop: int) -> None:
        """Judge bars ``start .. stop-1`` of ``d``.

        * outlier: some price of the bar is more than ``thr`` away (in log terms) from BOTH the
          median close of the ``w`` bars before it and of the ``w`` bars after it (a side with
          fewer than ``OUTLIER_MIN_SIDE`` bars is not known and does not count against). A run of
          bad bars shorter than ``w / 2`` is caught; a level change is not an outlier (the bars
          after it agree with it).
        * split: the close moves by more than ``thr`` from the previous close, and the level after
          (median of this and the next ``w - 1`` closes) over the level before (median of the ``w``
          previous closes) is within ``SPLIT_TOLERANCE`` of a split ratio: the jump persists.
        ``thr = max(OUTLIER_FLOOR, OUTLIER_K x median |log return| of the w bars before)``.
        """
        w = OUTLIER_WINDOW
        c = d["close"]
        logc = np.log(c)
        lr = np.abs(np.diff(logc, prepend=np.nan))
        before = np.log(_rolling_median_before(c, w))
        after = np.log(_rolling_median_after(c, w))
        # level from this bar on = median(c[i .. i+w-1]) = "after" of the previous bar
        level_from = np.concatenate(([np.nan], after[:-1]))
        mad = _rolling_median_before(np.nan_to_num(lr, nan=0.0), w)
        thr = np.maximum(OUTLIER_FLOOR, OUTLIER_K * np.nan_to_num(mad, nan=0.0))
        sl = slice(start, stop)
        thr_s = thr[sl]
        b, a = before[sl], after[sl]
        known_b, known_a = ~np.isnan(b), ~np.isnan(a)
        worst = np.zeros(stop - start)
        worst_field = np.zeros(stop - start, dtype=np.int64)
        outlier = np.zeros(stop - start, dtype=bool)
        with np.errstate(invalid="ignore"):
            for j, k in enumerate(_PRICE_FIELDS):
                lx = np.log(d[k][sl])
                db, da = np.abs(lx - b), np.abs(lx - a)
                far = (known_b | known_a) & (~known_b | (db > thr_s)) & (~known_a | (da > thr_s))
                dev = np.where(known_b, db, da)
                better = far & (dev > worst)
                worst = np.where(better, dev, worst)
                worst_field = np.where(better, j, worst_field)
                outlier |= far
            step = lr[sl]
            level = level_from[sl] - b
            split = np.zeros(stop - start, dtype=bool)
            split_ratio = np.ones(stop - start)
            jumps = np.flatnonzero((step > thr_s) & ~outlier & ~np.isnan(level))
            if len(jumps):
                near = np.abs(level[jumps, None] - _LOG_SPLITS[None, :])
                split[jumps] = near.min(axis=1) < SPLIT_TOLERANCE
                split_ratio[jumps] = np.exp(_LOG_SPLITS[np.argmin(near, axis=1)])
        idx = np.flatnonzero(outlier | split)
        self.count += len(idx)
        for i in idx[: max(0, 100 - len(self.flags))]:  # keep the first 100 for messages
            g = start + int(i)
            vals = {k: float(d[k][g]) for k in _PRICE_FIELDS}
            if outlier[i]:
                fld = _PRICE_FIELDS[int(worst_field[i])]
                ref = float(np.exp(b[i] if known_b[i] else a[i]))
                ratio = vals[fld] / ref
                why = (
                    f"{fld} is {ratio:.3g}x the median close {ref:.4g} of the bars around it "
                    f"(limit {np.exp(thr_s[i]) - 1:.0%} either way) and the bars after it do not "
                    "follow: a bad print"
                )
                kind = "outlier"
            else:
                ratio = float(np.exp(level[i]))
                why = (
                    f"close {vals['close']:.10g} after {float(c[g - 1]):.10g} on the previous bar, and the "
                    f"level stays {ratio:.3f}x the one before ({_split_name(float(split_ratio[i]))}?): "
                    "an unadjusted split"
                )
                kind = "split"
            self.flags.append(
                OutlierFlag(self.file, int(d["row"][g]), str(d["ts"][g]), vals["open"], vals["high"],
                            vals["low"], vals["close"], kind, why),
            )


def _outlier_message(flags: list[OutlierFlag], count: int) -> str:
    shown = "; ".join(f.format() for f in flags[:MAX_REPORTED])
    more = f"; and {count - MAX_REPORTED} more" if count > MAX_REPORTED else ""
    return (
        f"{count} suspicious bar{'s' if count != 1 else ''} (outliers / split-like jumps): {shown}{more}; "
        "fix the file or pass --accept-outliers to import them anyway"
    )


# -- time zone sanity --------------------------------------------------------------------------

TZ_CANDIDATES = (
    "America/New_York",
    "UTC",
    "America/Chicago",
    "America/Denver",
    "America/Los_Angeles",
    "Europe/London",
    "Europe/Berlin",
    "Asia/Kolkata",
    "Asia/Hong_Kong",
    "Asia/Tokyo",
    "Australia/Sydney",
    *(f"Etc/GMT{h:+d}" for h in range(-14, 13) if h != 0),
)
TZ_MIN_ROWS = 200  # fewer bars than this (inside the calendar's range): no verdict
TZ_OUTSIDE = 0.5  # regular-hours test: more than half the bars outside the session ...
TZ_FIT = 0.9  # ... and another zone puts at least 90 % of them inside
TZ_EXT_OUTSIDE = 0.05  # extended-hours test: more than 5 % outside 04:00-20:00 ET on weekdays ...
TZ_EXT_FIT = 0.99  # ... and another zone puts at least 99 % of them inside
TZ_SAMPLE_PER_CHUNK = 5_000


class _TzSampler:
    """Keeps an evenly spread sample of a file's bar close times (UTC ns) for the tz check."""

    def __init__(self) -> None:
        self.parts: list[np.ndarray] = []

    def push(self, ts_close: np.ndarray) -> None:
        stride = max(1, len(ts_close) // TZ_SAMPLE_PER_CHUNK)
        self.parts.append(np.asarray(ts_close[::stride], dtype=np.int64).copy())

    def sample(self, limit: int = 50_000) -> np.ndarray:
        if not self.parts:
            return np.zeros(0, dtype=np.int64)
        out = np.concatenate(self.parts)
        return out[:: max(1, -(-len(out) // limit))]


def _tz_shares(ts_close: np.ndarray, calendar: str = "XNYS") -> tuple[float, float, int]:
    """(share in the regular session, share in 04:00-20:00 New York time on weekdays, bars judged)
    of bar close times inside the calendar's built range."""
    cal = _calendar(calendar)
    lo = int(pd.Timestamp(cal.first_date, tz="UTC").value) + 86_400_000_000_000
    hi = int(pd.Timestamp(cal.last_date, tz="UTC").value) - 86_400_000_000_000
    ts = ts_close[(ts_close >= lo) & (ts_close <= hi)]
    if len(ts) == 0:
        return 0.0, 0.0, 0
    regular = float(cal.session_mask(ts, bar_ns=_MINUTE_NS).mean())
    local = pd.DatetimeIndex(ts - _MINUTE_NS, tz="UTC").tz_convert("America/New_York")
    minute = np.asarray(local.hour * 60 + local.minute)
    ext = (np.asarray(local.weekday) < 5) & (minute >= 4 * 60) & (minute < 20 * 60)
    return regular, float(ext.mean()), len(ts)


def _check_timezone(file: str, ts_close: np.ndarray, tz: str, calendar: str = "XNYS") -> None:
    """Refuse naive times placed with the wrong ``tz``.

    Regular-hours data: more than ``TZ_OUTSIDE`` of the bars outside the session while another
    zone (``TZ_CANDIDATES``: common exchange zones and every whole-hour offset) puts at least
    ``TZ_FIT`` inside. Extended-hours data (which legitimately has most bars outside the regular
    session): more than ``TZ_EXT_OUTSIDE`` outside 04:00-20:00 ET while another zone puts at least
    ``TZ_EXT_FIT`` inside. The other zone is the one placing most bars inside (first listed on ties).
    """
    regular, ext, n = _tz_shares(ts_close, calendar)
    if n < TZ_MIN_ROWS or (regular > 1 - TZ_OUTSIDE and ext > 1 - TZ_EXT_OUTSIDE):
        return
    wall = pd.DatetimeIndex(ts_close, tz="UTC").tz_convert(tz).tz_localize(None)
    shares: dict[str, tuple[float, float]] = {}
    for cand in TZ_CANDIDATES:
        if cand == tz:
            continue
        moved = wall.tz_localize(cand, ambiguous="NaT", nonexistent="NaT")
        ns = moved.as_unit("ns").asi8[~np.asarray(moved.isna())]
        r, e, m = _tz_shares(ns, calendar)
        if m >= TZ_MIN_ROWS:
            shares[cand] = (r, e)
    if not shares:
        return
    if regular <= 1 - TZ_OUTSIDE:
        best = max(shares, key=lambda k: shares[k][0])  # max() keeps the first of equals
        if shares[best][0] >= TZ_FIT:
            raise TimezoneMismatchError(
                f"{file}: {100 * (1 - regular):.0f} % of the bars fall outside {calendar} hours with "
                f"--tz {tz}; with --tz {best} {100 * shares[best][0]:.0f} % fall inside: "
                f"re-run with --tz {best}",
                best,
            )
    if ext <= 1 - TZ_EXT_OUTSIDE:
        best = max(shares, key=lambda k: shares[k][::-1])
        if shares[best][1] >= TZ_EXT_FIT:
            raise TimezoneMismatchError(
                f"{file}: {100 * (1 - ext):.0f} % of the bars fall outside {calendar} extended hours "
                f"(04:00-20:00 ET) with --tz {tz}; with --tz {best} {100 * shares[best][1]:.0f} % "
                f"fall inside: re-run with --tz {best}",
                best,
            )


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
    outliers: tuple[OutlierFlag, ...] = ()  # accepted outliers / split-like jumps (first 100)
    outlier_count: int = 0


@dataclass
class ImportReport:
    catalog_dir: Path
    symbols: list[SymbolImport]
    elapsed_s: float
    removed_stale: list[str] = field(default_factory=list)  # stale staging/backup folders removed

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
        lines = [f"removed stale {r}" for r in self.removed_stale]
        lines.append(f"catalog {self.catalog_dir}: {self.rows} bars in {self.elapsed_s:.2f}s")
        for s in self.symbols:
            lines.append(
                f"  {s.symbol:<8} {s.rows:>8} bars  {s.first_ts:%Y-%m-%d %H:%M} -> "
                f"{s.last_ts:%Y-%m-%d %H:%M} UTC  gaps {s.gaps}  in session {s.session_rows}  "
                f"missing session minutes {s.missing_session_minutes}"
                f"{'  (replaced)' if s.replaced else ''}  <- {s.source}",
            )
            if s.outlier_count:
                lines.append(f"  {s.symbol:<8} {s.outlier_count} suspicious bars imported (--accept-outliers):")
                lines.extend(f"    {f}" for f in s.outliers[:MAX_REPORTED])
                if s.outlier_count > MAX_REPORTED:
                    lines.append(f"    ... and {s.outlier_count - MAX_REPORTED} more")
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


STALE_AFTER_S = 300.0  # a staging/backup folder naming no owner pid and older than this is stale
STALE_OWNED_AFTER_S = 86_400.0  # ... and one whose pid is alive (maybe reused) after a day
_WORK_DIR_RE = re.compile(r"\.(?P<kind>staging|backup)-(?:(?P<pid>\d+)-)?[0-9a-f]{12}$")


def _work_dir(target: Path, kind: str) -> Path:
    """``.NAME.staging-PID-HEX`` / ``.NAME.backup-PID-HEX`` next to the catalog."""
    return target.parent / f".{target.name}.{kind}-{os.getpid()}-{uuid.uuid4().hex[:12]}"


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _clean_stale(target: Path, *, now: float | None = None) -> list[str]:
    """Remove staging/backup folders of ``target`` left by killed imports; return what was done.

    A folder is stale when its owning pid (in its name) is gone (or alive but the folder is older
    than ``STALE_OWNED_AFTER_S``: a reused pid), or when it names no pid and is older than
    ``STALE_AFTER_S``. A backup whose catalog is missing (killed between the two renames
    of the swap) is renamed back into place instead of removed.
    """
    parent = target.parent
    if not parent.is_dir():
        return []
    now = time.time() if now is None else now
    prefix = f".{target.name}."
    done: list[str] = []
    found = []
    for entry in parent.iterdir():
        m = _WORK_DIR_RE.fullmatch(entry.name[len(prefix) - 1 :]) if entry.name.startswith(prefix) else None
        if m is None or not entry.is_dir():
            continue
        try:
            found.append((entry.stat().st_mtime, entry, m))
        except FileNotFoundError:
            continue
    for mtime, entry, m in sorted(found, key=lambda t: t[0], reverse=True):  # newest backup first
        pid = int(m["pid"]) if m["pid"] else None
        age = now - mtime
        if pid is not None:
            if pid == os.getpid() or (_pid_alive(pid) and age <= STALE_OWNED_AFTER_S):
                continue
            why = f"pid {pid} is gone" if not _pid_alive(pid) else f"{age / 3600:.0f} h old"
        elif age > STALE_AFTER_S:
            why = f"{age / 60:.0f} min old"
        else:
            continue
        if m["kind"] == "backup" and not target.exists():
            os.rename(entry, target)
            done.append(f"backup folder {entry} restored as {target} ({why})")
            continue
        shutil.rmtree(entry, ignore_errors=True)
        done.append(f"{m['kind']} folder {entry} ({why})")
    return done


def _swap_in(staging: Path, target: Path) -> None:
    """staging -> target with renames; the old catalog is kept until the new one is in place."""
    if target.exists():
        backup = _work_dir(target, "backup")
        os.rename(target, backup)
        try:
            os.rename(staging, target)
        except BaseException:
            os.rename(backup, target)
            raise
        shutil.rmtree(backup, ignore_errors=True)
    else:
        os.rename(staging, target)


def _import_one(
    catalog: ParquetDataCatalog,
    staging: Path,
    stream: _OhlcvStream,
    seen: dict[str, Path],
) -> SymbolImport:
    """Stream one file into the staging catalog: validate, check, write chunk by chunk (outliers
    are only listed here; the caller decides)."""
    scanner = _OutlierScanner(stream.file)
    sampler = _TzSampler()
    sym: str | None = None
    replaced = False
    first_ts = last_ts = None
    gaps = session_rows = 0
    for chunk in stream:
        ts = chunk.frame["ts_close_utc"].to_numpy()
        if sym is None:
            sym = str(stream.symbol)
            if sym in seen:
                raise ValueError(
                    f"symbol {sym} comes from two files ({seen[sym]} and {stream.path}); import one "
                    "file per symbol or pass symbols=...",
                )
            seen[sym] = stream.path
            for d in (_bar_dir(staging, sym), _instrument_dir(staging, sym)):
                if d.exists():
                    replaced = replaced or d.parent.name == "bar"
                    shutil.rmtree(d)
            catalog.write_data([make_instrument(sym)])
            first_ts = int(ts[0])
        else:
            gaps += int(ts[0] - last_ts > _MINUTE_NS)
        gaps += int((np.diff(ts) > _MINUTE_NS).sum())
        last_ts = int(ts[-1])
        session_rows += int(regular_session_mask(ts).sum())
        scanner.push(chunk)
        sampler.push(ts)
        bars = build_bars(sym, chunk.frame)
        catalog.write_data(bars)
        del bars
    scanner.finish()
    if stream.naive and stream.tz is not None:
        _check_timezone(stream.file, sampler.sample(), stream.tz)
    assert sym is not None and first_ts is not None and last_ts is not None
    return SymbolImport(
        symbol=sym,
        instrument_id=f"{sym}.{VENUE}",
        bar_type=f"{sym}{_BAR_SUFFIX}",
        source=str(stream.path),
        rows=stream.rows,
        first_ts=pd.Timestamp(first_ts, unit="ns", tz="UTC"),
        last_ts=pd.Timestamp(last_ts, unit="ns", tz="UTC"),
        gaps=gaps,
        session_rows=session_rows,
        missing_session_minutes=max(0, _expected_session_minutes(first_ts, last_ts) - session_rows),
        replaced=replaced,
        outliers=tuple(scanner.flags),
        outlier_count=scanner.count,
    )


def import_files(
    catalog_dir: str | os.PathLike[str],
    paths: Iterable[str | os.PathLike[str]] | str | os.PathLike[str],
    *,
    tz: str | None,
    label: str = "open",
    symbols: Sequence[str | None] | Mapping[str, str] | str | None = None,
    accept_outliers: bool = False,
    chunk_rows: int = CHUNK_ROWS,
) -> ImportReport:
    """Validate and write instruments + bars into the catalog atomically, streaming.

    ``symbols`` (optional) gives one symbol per path (a sequence aligned with ``paths`` or a
    mapping path -> symbol); otherwise each file's Symbol column or file-name stem is used.
    Re-importing a symbol replaces its bars and instrument; other symbols are kept.

    Each file is read ``chunk_rows`` rows at a time; every chunk is validated and written into a
    staging copy of the catalog, which replaces the catalog only when every file passed: row
    validation (:class:`BarValidationError`), outlier bars and split-like jumps
    (:class:`OutlierError`, unless ``accept_outliers``: then they are imported and listed in the
    report), and, for naive times placed with ``tz``, the time-zone sanity check
    (:class:`TimezoneMismatchError`). Stale staging folders of killed imports are removed first
    (``ImportReport.removed_stale``).
    """
    t0 = time.perf_counter()
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    path_list = [Path(p) for p in paths]
    if not path_list:
        raise ValueError("no input files given")
    sym_args = _symbols_for(path_list, symbols)
    streams = [
        _OhlcvStream(p, tz=tz, label=label, symbol=s, chunk_rows=chunk_rows)
        for p, s in zip(path_list, sym_args, strict=True)
    ]

    target = Path(catalog_dir)
    removed = _clean_stale(target)
    _check_catalog_dir(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = _work_dir(target, "staging")
    results: list[SymbolImport] = []
    seen: dict[str, Path] = {}
    try:
        if target.exists():
            shutil.copytree(target, staging, symlinks=True)
        else:
            staging.mkdir()
        catalog = ParquetDataCatalog(str(staging))
        for stream in streams:
            results.append(_import_one(catalog, staging, stream, seen))
        flagged = sum(r.outlier_count for r in results)
        if flagged and not accept_outliers:  # every file's suspicious rows, in one refusal
            flags = [f for r in results for f in r.outliers]
            raise OutlierError(_outlier_message(flags, flagged), flags)
        _swap_in(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return ImportReport(
        catalog_dir=target,
        symbols=results,
        elapsed_s=time.perf_counter() - t0,
        removed_stale=removed,
    )


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
