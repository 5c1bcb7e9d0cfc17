"""Import checks beyond row validation: outlier bars, split-like jumps, and a likely wrong
``--tz`` (backtests.catalog_io runs them while it streams a file; see its docstring).

Kept apart from the reading and writing of catalogs: these are statistics over the series
(rolling medians before and after each bar, session shares under other time zones)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from backtests.bar_files import _MINUTE_NS, _PRICE_FIELDS, _is_csv_like

if TYPE_CHECKING:
    from backtests.bar_files import _Chunk


def _calendar(name: str):
    from strategies.trade_executor.calendar import MarketCalendar  # the project's one calendar

    return MarketCalendar(name)


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
