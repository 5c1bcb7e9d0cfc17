"""Reading 1-minute OHLCV input files (CSV, gzip CSV, parquet) into validated, UTC-stamped rows,
streamed in chunks: the reading half of ``backtests.catalog_io`` (which builds bars from these
rows and writes and reads the catalog; its docstring states the conventions).

Every bad row is a ``BarValidationError`` naming the file, line, field and value; naive times
without a ``tz`` are a ``MissingTimezoneError``."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

PRICE_PRECISION = 2
_MINUTE_NS = 60_000_000_000
_SYMBOL_RE = re.compile(r"[A-Z0-9][A-Z0-9.\-]{0,29}")
_TS_NAMES = ("timestamp", "datetime", "date", "time")
_PRICE_FIELDS = ("open", "high", "low", "close")
_FIELDS = (*_PRICE_FIELDS, "volume")
# A time of day followed by "Z" or a numeric UTC offset (+HH:MM, +HHMM, +HH).
_OFFSET_RE = r"\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?\s*(?:Z|UTC|GMT|[+-]\d{2}(?::?\d{2})?)$"
_EPOCH_RE = r"[+-]?\d+(?:\.0*)?"
_COLUMNS = ["ts_close_utc", "open", "high", "low", "close", "volume"]


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


def _is_csv_like(file: str) -> bool:
    return not file.lower().endswith((".parquet", ".pq"))


def _normalize_symbol(symbol: str, source: str = "symbol") -> str:
    sym = str(symbol).strip().upper()
    if not _SYMBOL_RE.fullmatch(sym):
        raise ValueError(
            f"invalid symbol {symbol!r} (from {source}): expected letters, digits, '.' or '-'",
        )
    return sym


# -- reading input files ------------------------------------------------------------------------


CHUNK_ROWS = 100_000  # rows per chunk read, validated and written (~470 MB peak RSS, any file size)


def estimate_rows(path: str | os.PathLike[str]) -> int | None:
    """About how many data rows a file holds, for a progress bar's total: parquet's row count
    (exact), a plain CSV's size over its mean line length in the first 64 KiB; None for
    compressed files (no cheap estimate)."""
    p = Path(path)
    try:
        if p.suffix.lower() in (".parquet", ".pq"):
            import pyarrow.parquet as pq

            return int(pq.ParquetFile(p).metadata.num_rows)
        if p.suffix.lower() in (".csv", ".txt"):
            size = p.stat().st_size
            with p.open("rb") as f:
                head = f.read(65_536)
            lines = head.count(b"\n")
            if lines <= 1:
                return max(0, lines)
            first = head.index(b"\n") + 1  # the header line
            per_line = (len(head[:head.rindex(b"\n") + 1]) - first) / (lines - 1)
            return max(1, round((size - first) / per_line)) if per_line > 0 else None
    except (OSError, ValueError):
        return None
    return None


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
