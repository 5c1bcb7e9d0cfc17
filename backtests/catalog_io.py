"""1-minute OHLCV files -> NautilusTrader ``ParquetDataCatalog`` (import) and back (read).

Reading and validating input files lives in ``backtests.bar_files``, the outlier, split and
timezone checks in ``backtests.import_checks``; this module builds bars, runs an import (staging,
swap, clean-up) and reads the catalog. Their public names are re-exported here.

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

from backtests.bar_files import (  # noqa: F401 (re-exported: callers and tests use these names here)
    _COLUMNS,
    _FIELDS,
    _MINUTE_NS,
    _PRICE_FIELDS,
    CHUNK_ROWS,
    PRICE_PRECISION,
    BarValidationError,
    MissingTimezoneError,
    _Chunk,
    _is_csv_like,
    _normalize_symbol,
    _OhlcvStream,
    estimate_rows,
    read_ohlcv,
)
from backtests.import_checks import (  # noqa: F401 (re-exported: tests and callers use these names here)
    MAX_REPORTED,
    OUTLIER_FLOOR,
    OUTLIER_K,
    OUTLIER_MIN_SIDE,
    OUTLIER_WINDOW,
    SPLIT_RATIOS,
    SPLIT_TOLERANCE,
    TZ_CANDIDATES,
    TZ_EXT_FIT,
    TZ_EXT_OUTSIDE,
    TZ_FIT,
    TZ_MIN_ROWS,
    TZ_OUTSIDE,
    TZ_SAMPLE_PER_CHUNK,
    OutlierError,
    OutlierFlag,
    TimezoneMismatchError,
    _OutlierScanner,
    _TzSampler,
    _check_timezone,
    _outlier_message,
)

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
SIZE_PRECISION = 0

_BAR_SUFFIX = f".{VENUE}-{BAR_SPEC}"


# -- errors -----------------------------------------------------------------------------------


class UnknownSymbolError(LookupError):
    """The symbol has no bars in the catalog."""

    def __str__(self) -> str:  # LookupError would repr() a lone argument
        return str(self.args[0]) if self.args else ""


# -- identifiers --------------------------------------------------------------------------------


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
    progress: Any = None,
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
        if progress is not None:
            progress.advance(len(ts), note=sym)
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
    progress: Any = None,
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

    ``progress``: a ``strategies.progress.ProgressBars`` (one bar for the files' rows, total
    estimated from the files' sizes, ``bar_files.estimate_rows``), or None.
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
        task = None
        if progress is not None:
            estimates = [estimate_rows(p) for p in path_list]
            total = None if any(e is None for e in estimates) else sum(estimates)
            task = progress.task(f"import {len(path_list)} file(s)", total=total, unit="rows")
        for stream in streams:
            results.append(_import_one(catalog, staging, stream, seen, task))
            if task is not None and total is not None:  # the estimate made exact as files finish
                done = sum(r.rows for r in results)
                task.update(total=done + sum(estimates[len(results):]))
        if task is not None:
            task.finish()
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
