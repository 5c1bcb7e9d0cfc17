"""Synthetic leveraged-ETF bars from an underlying's bars (daily-reset model), and tracking error.

Pure and deterministic: pandas/numpy in, pandas/numpy out; no NautilusTrader types, no I/O, no
wall clock. Sessions (holidays and early closes included) come from
:class:`strategies.trade_executor.calendar.MarketCalendar` (``exchange_calendars`` underneath).

The model (``../shared/docs/domain-facts.md`` §2)
--------------------------------------------------
A fund with leverage ``L`` (negative for inverse funds) resets its exposure at every session
close ``C_k`` (16:00 ET, or the early close, e.g. 13:00 ET on 2025-07-03 and 2025-11-28).
Between two resets its fair price is exact::

    P(t) = P_k · (1 + L · (S(t) / S_k − 1))                                         (intraday)

where ``P_k`` is the fund's NAV at the previous reset and ``S_k`` the underlying's price at that
reset (the close of the last underlying bar whose close time is ``<= C_k``). At the reset::

    R_u      = S(C_k) / S_k − 1
    c        = expense_ratio/252 + financing_spread/252 − (1 − L) · rate/252        (daily cost)
    P_{k+1}  = P_k · (1 + L · R_u − c)                                              (new base)
    S_{k+1}  = S(C_k)

i.e. the one-day return ``R = L·R_u + (1−L)·r/252 − ER/252 − spread/252`` of domain-facts §2 with
the annual ``rate`` turned into a per-session one; every cost is charged once per *session*
(a weekend is one reset, not three calendar days). ``(1 − L)·rate`` is the financing term: a 3x
fund pays ``2·rate`` on its borrowed exposure, an inverse (−3x) fund earns ``4·rate`` on its
collateral. With ``rate=0`` and ``financing_spread=0`` only the expense ratio is charged.

Costs show up *at* the reset, not inside the session: the bar that closes exactly at ``C_k``
still carries the pure intraday value ``P_k·(1 + L·R_u)`` ("before costs") and the next bar is
priced from the post-cost base ``P_{k+1}``, so a position held overnight pays one day's costs
and an intraday round trip pays none. The per-reset numbers (underlying close, fund close before
costs, cost, NAV) are in :attr:`SyntheticLETF.resets`.

Bars
----
* Input: a DataFrame indexed by tz-aware bar-CLOSE timestamps (converted to UTC), columns
  ``open, high, low, close, volume``; strictly increasing; prices finite and > 0; volume finite
  and >= 0; ``low <= open, close <= high``. :func:`frame_from_ohlcv` turns the frame returned by
  ``backtests.catalog_io.read_ohlcv`` (``ts_close_utc`` column) into this shape.
* ``open`` maps from the underlying's open, ``close`` from its close; for ``L > 0`` high from
  high and low from low; for ``L < 0`` the fund's **high comes from the underlying's low** and its
  low from the underlying's high (the map is decreasing).
* The first segment's base: ``start_price`` is the fund's NAV at the previous session close and
  ``base_price`` the underlying's price at that moment. When ``base_price`` is omitted the first
  bar's **open** is used (i.e. no overnight gap before the first bar is assumed).
* Resets happen at every session close ``C`` with ``first bar close <= C <= last bar close``.
  A session with no underlying bar at all is still a reset (costs are charged; ``R_u`` is
  measured against the last bar before it, so that move lands on that day) and shows
  ``bars_in_session == 0`` in the reset table.
* Extended hours (``extended_hours="map"``, the default): a bar outside the regular session is
  priced like any other bar of its segment, i.e. bars after a close and pre-market bars before
  the next open map against the *new* base (the fund trades after hours on the same iNAV
  arithmetic). ``extended_hours="drop"`` returns regular-session bars only (the resets and the
  NAV path are identical either way: they only use the underlying's prices at session closes).
  A bar is in the regular session when ``open < close_time <= close`` of a session, i.e. the
  minute ``[close_time − 1 min, close_time)`` lies inside it; on an early-close day the bars after
  13:00 ET are extended-hours bars of the next segment.
* Volume cannot be synthesised: ``volume = underlying volume × volume_scale`` with
  ``volume_scale = 0`` by default (volume 0). Every synthetic frame has a boolean column
  ``synthetic`` (all True) and ``attrs["synthetic"] = True`` so reports can flag it; column
  ``regular_session`` tells which bars are inside the session.
* A bar whose model price would be <= 0 (an ``|L|``-times move of 100% or more since the last
  reset) raises ``ValueError``: the model has no meaning past a wipe-out.
* Prices are not rounded (``catalog_io.build_bars`` rounds to cents when bars are imported).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

import numpy as np
import pandas as pd

from strategies.trade_executor.calendar import MarketCalendar
from strategies.trade_executor.timeutil import FieldError, finite, ns_to_datetime

__all__ = [
    "BAR_FIELDS",
    "LETFInputError",
    "SyntheticLETF",
    "daily_cost",
    "daily_reset_closes",
    "daily_tracking_report",
    "frame_from_ohlcv",
    "regular_session_flags",
    "session_closes",
    "synthesize_letf",
    "synthesize_letf_bars",
    "to_ohlcv_frame",
    "tracking_error_report",
]

BAR_FIELDS = ("open", "high", "low", "close", "volume")
_MINUTE_NS = 60_000_000_000
SESSIONS_PER_YEAR = 252


class LETFInputError(FieldError):
    """An input is invalid. ``field`` names it (e.g. ``"underlying.close"``, ``"leverage"``),
    ``value`` is the offending value and ``at`` the bar's timestamp when there is one."""

    def __init__(self, field: str, value: Any, detail: str, at: Any = None) -> None:
        super().__init__(field, value, detail)
        self.at = at
        if at is not None:
            self.args = (f"{field} at {at}: {detail} (got {value!r})",)


# -- validation -----------------------------------------------------------------------------------


def _finite(name: str, value: Any, *, positive: bool = False, nonneg: bool = False,
            nonzero: bool = False) -> float:
    return finite(value, name, positive=positive, nonneg=nonneg, nonzero=nonzero, error=LETFInputError)


def _validate_bars(df: Any, name: str, *, need_ohlc: bool = True) -> pd.DataFrame:
    """Checked copy of a bar frame: UTC DatetimeIndex (ns), float64 columns in BAR_FIELDS order."""
    if not isinstance(df, pd.DataFrame):
        raise LETFInputError(name, type(df).__name__, "must be a pandas DataFrame")
    if len(df) == 0:
        raise LETFInputError(name, 0, "has no rows")
    idx = df.index
    if not isinstance(idx, pd.DatetimeIndex):
        raise LETFInputError(
            f"{name}.index", type(idx).__name__,
            "must be a DatetimeIndex of bar close times (see frame_from_ohlcv)",
        )
    if idx.tz is None:
        raise LETFInputError(
            f"{name}.index", str(idx[0]), "timestamps are naive; localise them to UTC first",
        )
    if idx.hasnans:
        pos = int(np.flatnonzero(idx.isna())[0])
        raise LETFInputError(f"{name}.index", "NaT", f"missing timestamp at row {pos}")
    idx = idx.tz_convert("UTC").as_unit("ns")
    ns = idx.asi8
    if len(ns) > 1:
        step = np.diff(ns)
        bad = np.flatnonzero(step <= 0)
        if bad.size:
            i = int(bad[0]) + 1
            what = "duplicate timestamp" if step[i - 1] == 0 else "index is not sorted ascending"
            raise LETFInputError(
                f"{name}.index", str(idx[i]), f"{what}: row {i} does not come after {idx[i - 1]}",
            )
    fields = BAR_FIELDS if need_ohlc else ("close",)
    lower = {str(c).strip().lower(): c for c in df.columns}
    out = {}
    for f in fields:
        if f not in lower:
            raise LETFInputError(
                f"{name}.{f}", list(map(str, df.columns)), "column missing",
            )
        col = df[lower[f]]
        try:
            arr = col.to_numpy(dtype="float64", na_value=np.nan)
        except (TypeError, ValueError):
            raise LETFInputError(f"{name}.{f}", str(col.dtype), "column is not numeric") from None
        bad = ~np.isfinite(arr) | ((arr <= 0) if f != "volume" else (arr < 0))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            v = float(arr[i])
            if math.isnan(v):
                detail = "missing value (NaN)"
            elif not math.isfinite(v):
                detail = "not finite"
            elif f == "volume":
                detail = "volume must be >= 0"
            else:
                detail = "price must be > 0"
            raise LETFInputError(f"{name}.{f}", v, detail, at=idx[i])
        out[f] = arr
    if need_ohlc:
        o, h, lo, c = out["open"], out["high"], out["low"], out["close"]
        tol = 1e-9 * h
        for f, arr, bad in (
            ("high", h, h + tol < lo),
            ("open", o, (o + tol < lo) | (o > h + tol)),
            ("close", c, (c + tol < lo) | (c > h + tol)),
        ):
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise LETFInputError(
                    f"{name}.{f}", float(arr[i]),
                    f"outside the bar's low..high range {lo[i]!r}..{h[i]!r}", at=idx[i],
                )
    return pd.DataFrame(out, index=idx)


def _calendar(name: str) -> MarketCalendar:
    if isinstance(name, MarketCalendar):
        return name
    try:
        return MarketCalendar(str(name))
    except Exception as exc:  # exchange_calendars raises its own InvalidCalendarName
        raise LETFInputError("calendar", name, f"unknown exchange calendar ({exc})") from None


# -- sessions -------------------------------------------------------------------------------------


def _sessions_ns(
    cal: MarketCalendar, first_ns: int, last_ns: int,
) -> tuple[range, list, np.ndarray, np.ndarray]:
    """Rows of the calendar's session table around [first_ns, last_ns], with their dates, opens
    and closes (int64 UTC ns)."""
    d0 = ns_to_datetime(first_ns).astimezone(cal.tz).date() - timedelta(days=7)
    d1 = ns_to_datetime(last_ns).astimezone(cal.tz).date() + timedelta(days=1)
    d0 = max(d0, cal.first_date)
    d1 = min(d1, cal.last_date)
    if d1 < d0:
        raise LETFInputError("calendar", cal.name, "bars lie outside the calendar's range")
    rows = cal.session_rows(d0, d1)
    sl = slice(rows.start, rows.stop)
    return rows, cal.labels[sl], cal.opens_ns[sl], cal.closes_ns[sl]


def _session_index(cal: MarketCalendar, ns: np.ndarray, rows: range) -> np.ndarray:
    """Per bar close time: index (within ``rows``) of the session whose regular hours contain
    the 1-minute bar, else -1."""
    try:
        idx = cal.session_index(ns, bar_ns=_MINUTE_NS)
    except ValueError as exc:  # bars outside the calendar's built range
        raise LETFInputError("calendar", cal.name, str(exc)) from None
    return np.where(idx >= 0, idx - rows.start, -1)


def regular_session_flags(index: pd.DatetimeIndex, calendar: str = "XNYS") -> np.ndarray:
    """True where the 1-minute bar closing at that time lies inside a regular session
    (``open < close_time <= close``; early closes and holidays from the calendar)."""
    if len(index) == 0:
        return np.zeros(0, dtype=bool)
    ns = pd.DatetimeIndex(index).tz_convert("UTC").as_unit("ns").asi8
    cal = _calendar(calendar)
    try:
        return cal.session_mask(ns, bar_ns=_MINUTE_NS)
    except ValueError as exc:  # bars outside the calendar's built range
        raise LETFInputError("calendar", cal.name, str(exc)) from None


def session_closes(start: Any, end: Any, calendar: str = "XNYS") -> pd.Series:
    """Session close times (UTC) of the sessions dated start..end (New York dates, inclusive),
    indexed by session date; early closes show as an earlier time."""
    cal = _calendar(calendar)
    dates = cal.sessions_in_range(pd.Timestamp(start).date(), pd.Timestamp(end).date())
    return pd.Series(
        [pd.Timestamp(cal.session_close(d)) for d in dates],
        index=pd.Index(dates, name="session"),
        dtype="datetime64[ns, UTC]",
    )


# -- frame helpers --------------------------------------------------------------------------------


def frame_from_ohlcv(frame: pd.DataFrame) -> pd.DataFrame:
    """``read_ohlcv``'s frame (``ts_close_utc`` int64 ns column) -> bars indexed by UTC close
    time."""
    if "ts_close_utc" not in frame.columns:
        raise LETFInputError("frame.ts_close_utc", list(map(str, frame.columns)), "column missing")
    idx = pd.DatetimeIndex(pd.to_datetime(frame["ts_close_utc"].to_numpy(), unit="ns", utc=True),
                           name="ts_close_utc")
    out = pd.DataFrame({f: frame[f].to_numpy(dtype="float64") for f in BAR_FIELDS}, index=idx)
    out.attrs.update(
        {k: v for k, v in frame.attrs.items() if isinstance(v, (str, int, float, bool))},
    )
    return out


def to_ohlcv_frame(bars: pd.DataFrame) -> pd.DataFrame:
    """Bars indexed by close time -> ``ts_close_utc, open, high, low, close, volume`` columns
    (the shape ``catalog_io.build_bars`` takes). Extra columns are dropped."""
    idx = pd.DatetimeIndex(bars.index).tz_convert("UTC").as_unit("ns")
    out = pd.DataFrame({"ts_close_utc": idx.asi8})
    for f in BAR_FIELDS:
        out[f] = bars[f].to_numpy(dtype="float64")
    out.attrs.update(bars.attrs)
    return out


# -- the model ------------------------------------------------------------------------------------


def daily_cost(leverage: float, *, expense_ratio: float = 0.0095, financing_spread: float = 0.0,
               rate: float = 0.0) -> float:
    """Per-session cost ``c = ER/252 + spread/252 − (1 − L)·rate/252`` (a fraction of NAV;
    negative when interest earned exceeds fees, e.g. an inverse fund at high rates)."""
    lev = _finite("leverage", leverage, nonzero=True)
    er = _finite("expense_ratio", expense_ratio, nonneg=True)
    fs = _finite("financing_spread", financing_spread)
    r = _finite("rate", rate)
    return (er + fs - (1.0 - lev) * r) / SESSIONS_PER_YEAR


@dataclass(frozen=True)
class SyntheticLETF:
    """The result of :func:`synthesize_letf`.

    ``bars``: ``open, high, low, close, volume, regular_session, synthetic`` indexed by UTC close
    time, ``attrs["synthetic"] = True``. ``resets``: one row per session close crossed, indexed by
    session date: ``close_utc, underlying_close, fund_close_before_costs, cost, nav`` (``nav`` is
    the post-cost base of the next segment), ``bars_in_session`` (regular-session underlying bars
    that day) and ``close_bar`` (True when a bar closes exactly at the session close).
    """

    bars: pd.DataFrame
    resets: pd.DataFrame
    leverage: float
    start_price: float
    base_price: float
    daily_cost: float


def synthesize_letf(
    underlying: pd.DataFrame,
    leverage: float,
    start_price: float,
    *,
    base_price: float | None = None,
    expense_ratio: float = 0.0095,
    financing_spread: float = 0.0,
    rate: float = 0.0,
    calendar: str = "XNYS",
    extended_hours: Literal["map", "drop"] = "map",
    volume_scale: float = 0.0,
) -> SyntheticLETF:
    """Synthetic fund bars and the reset table (see the module docstring for every rule)."""
    lev = _finite("leverage", leverage, nonzero=True)
    p0 = _finite("start_price", start_price, positive=True)
    cost = daily_cost(
        lev, expense_ratio=expense_ratio, financing_spread=financing_spread, rate=rate,
    )
    vscale = _finite("volume_scale", volume_scale, nonneg=True)
    if extended_hours not in ("map", "drop"):
        raise LETFInputError("extended_hours", extended_hours, "must be 'map' or 'drop'")
    bars = _validate_bars(underlying, "underlying")
    s0 = (
        float(bars["open"].iloc[0]) if base_price is None
        else _finite("base_price", base_price, positive=True)
    )
    cal = _calendar(calendar)
    ns = bars.index.asi8
    rows, dates, opens, closes = _sessions_ns(cal, int(ns[0]), int(ns[-1]))
    sess_idx = _session_index(cal, ns, rows)
    in_session = sess_idx >= 0

    # reset points: session closes inside [first bar close, last bar close]
    rk = np.flatnonzero((closes >= ns[0]) & (closes <= ns[-1]))
    reset_ns = closes[rk]
    close_px = bars["close"].to_numpy()
    last_bar = np.searchsorted(ns, reset_ns, side="right") - 1
    s_reset = close_px[last_bar]
    counts = np.bincount(sess_idx[in_session], minlength=len(dates)) if in_session.any() else (
        np.zeros(len(dates), dtype=np.int64)
    )

    n = len(reset_ns)
    p_base = np.empty(n + 1)
    s_base = np.empty(n + 1)
    p_base[0], s_base[0] = p0, s0
    pre_cost = np.empty(n)
    for k in range(n):
        r_u = s_reset[k] / s_base[k] - 1.0
        pre_cost[k] = p_base[k] * (1.0 + lev * r_u)
        p_base[k + 1] = p_base[k] * (1.0 + lev * r_u - cost)
        s_base[k + 1] = s_reset[k]
        if pre_cost[k] <= 0 or p_base[k + 1] <= 0:
            raise LETFInputError(
                "underlying.close", float(s_reset[k]),
                f"a {lev:g}x fund is wiped out by the session's move of {r_u:+.2%} "
                f"from {s_base[k]!r}; the daily-reset model has no meaning past that",
                at=pd.Timestamp(int(reset_ns[k]), tz="UTC"),
            )

    seg = np.searchsorted(reset_ns, ns, side="left")  # closes strictly before each bar
    pb = p_base[seg]
    sb = s_base[seg]

    def fund(x: np.ndarray) -> np.ndarray:
        return pb * (1.0 + lev * (x / sb - 1.0))

    o = fund(bars["open"].to_numpy())
    c = fund(close_px)
    hi_src, lo_src = ("high", "low") if lev > 0 else ("low", "high")
    h = fund(bars[hi_src].to_numpy())
    lo = fund(bars[lo_src].to_numpy())
    bad = np.flatnonzero(lo <= 0)
    if bad.size:
        i = int(bad[0])
        raise LETFInputError(
            f"underlying.{lo_src}", float(bars[lo_src].iloc[i]),
            f"the {lev:g}x fund's price would be {lo[i]:.6g} <= 0 (base {sb[i]!r})",
            at=bars.index[i],
        )
    out = pd.DataFrame(
        {
            "open": o,
            "high": h,
            "low": lo,
            "close": c,
            "volume": bars["volume"].to_numpy() * vscale,
            "regular_session": in_session,
            "synthetic": np.ones(len(ns), dtype=bool),
        },
        index=bars.index.rename("ts_close_utc"),
    )
    if extended_hours == "drop":
        out = out[in_session]
    out.attrs.update(
        {
            "synthetic": True,
            "model": "daily_reset",
            "leverage": lev,
            "start_price": p0,
            "base_price": s0,
            "daily_cost": cost,
            "expense_ratio": float(expense_ratio),
            "financing_spread": float(financing_spread),
            "rate": float(rate),
            "calendar": cal.name,
            "extended_hours": extended_hours,
            "volume_scale": vscale,
        }
    )
    resets = pd.DataFrame(
        {
            "close_utc": pd.DatetimeIndex(reset_ns, tz="UTC"),
            "underlying_close": s_reset,
            "fund_close_before_costs": pre_cost,
            "cost": p_base[:n] * cost,
            "nav": p_base[1:],
            "bars_in_session": counts[rk].astype(np.int64),
            "close_bar": ns[last_bar] == reset_ns,
        },
        index=pd.Index([dates[k] for k in rk], name="session"),
    )
    return SyntheticLETF(bars=out, resets=resets, leverage=lev, start_price=p0, base_price=s0,
                         daily_cost=cost)


def synthesize_letf_bars(
    underlying: pd.DataFrame,
    leverage: float,
    start_price: float,
    *,
    expense_ratio: float = 0.0095,
    financing_spread: float = 0.0,
    rate: float = 0.0,
    calendar: str = "XNYS",
    base_price: float | None = None,
    extended_hours: Literal["map", "drop"] = "map",
    volume_scale: float = 0.0,
) -> pd.DataFrame:
    """Synthetic leveraged-ETF 1-minute bars (daily-reset model; rules in the module docstring).

    ``start_price``: the fund's previous close; ``base_price``: the underlying's price at that
    close (default: the first bar's open). ``expense_ratio``, ``financing_spread`` and ``rate``
    are annual fractions (0.0095 = 0.95 %/yr); per session ``c = ER/252 + spread/252 −
    (1 − L)·rate/252`` is charged at each session close. Returns the bars with columns
    ``open, high, low, close, volume, regular_session, synthetic`` and ``attrs["synthetic"]``;
    use :func:`synthesize_letf` to also get the per-reset table.
    """
    return synthesize_letf(
        underlying, leverage, start_price, base_price=base_price, expense_ratio=expense_ratio,
        financing_spread=financing_spread, rate=rate, calendar=calendar,
        extended_hours=extended_hours, volume_scale=volume_scale,
    ).bars


# -- daily closes ---------------------------------------------------------------------------------


def _close_series(x: Any, name: str) -> pd.Series:
    if isinstance(x, pd.DataFrame):
        cols = {str(c).strip().lower(): c for c in x.columns}
        if "close" not in cols:
            raise LETFInputError(f"{name}.close", list(map(str, x.columns)), "column missing")
        x = x[cols["close"]]
    if not isinstance(x, pd.Series):
        raise LETFInputError(name, type(x).__name__, "must be a pandas Series or DataFrame")
    if len(x) == 0:
        raise LETFInputError(name, 0, "has no rows")
    s = pd.to_numeric(x, errors="coerce").astype("float64")
    bad = ~np.isfinite(s.to_numpy()) | (s.to_numpy() <= 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise LETFInputError(f"{name}.close", x.iloc[i], "price must be finite and > 0",
                             at=x.index[i])
    if not s.index.is_monotonic_increasing or s.index.has_duplicates:
        raise LETFInputError(f"{name}.index", None, "must be sorted ascending without duplicates")
    return s


def daily_reset_closes(
    underlying_closes: pd.Series | pd.DataFrame,
    leverage: float,
    start_price: float,
    *,
    expense_ratio: float = 0.0095,
    financing_spread: float = 0.0,
    rate: float = 0.0,
) -> pd.Series:
    """The daily-reset model on daily closes: ``P_0 = start_price`` on the first row, then
    ``P_i = P_{i−1} · (1 + L·(S_i/S_{i−1} − 1) − c)`` with ``c`` from :func:`daily_cost`; one row
    per input row (each row is one session). ``attrs["synthetic"] = True``."""
    s = _close_series(underlying_closes, "underlying")
    lev = _finite("leverage", leverage, nonzero=True)
    p0 = _finite("start_price", start_price, positive=True)
    c = daily_cost(lev, expense_ratio=expense_ratio, financing_spread=financing_spread, rate=rate)
    r = s.pct_change().to_numpy()[1:]
    growth = 1.0 + lev * r - c
    if (growth <= 0).any():
        i = int(np.flatnonzero(growth <= 0)[0]) + 1
        raise LETFInputError(
            "underlying.close", float(s.iloc[i]),
            f"a {lev:g}x fund is wiped out by a {r[i - 1]:+.2%} day", at=s.index[i],
        )
    out = pd.Series(p0 * np.concatenate(([1.0], np.cumprod(growth))), index=s.index,
                    name="synthetic_close")
    out.attrs.update({"synthetic": True, "leverage": lev, "daily_cost": c})
    return out


def _stats_bp(diff: np.ndarray) -> dict[str, float]:
    d = diff * 1e4
    return {
        "mean_abs_bp": float(np.mean(np.abs(d))) if d.size else float("nan"),
        "std_bp": float(np.std(d, ddof=1)) if d.size > 1 else float("nan"),
        "mean_bp": float(np.mean(d)) if d.size else float("nan"),
        "max_abs_bp": float(np.max(np.abs(d))) if d.size else float("nan"),
    }


def _slope(x: np.ndarray, y: np.ndarray) -> float:
    if x.size < 2 or np.var(x) == 0:
        return float("nan")
    return float(np.cov(x, y, ddof=1)[0, 1] / np.var(x, ddof=1))


def daily_tracking_report(
    underlying_closes: pd.Series | pd.DataFrame,
    etf_closes: pd.Series | pd.DataFrame,
    leverage: float,
    *,
    expense_ratio: float = 0.0095,
    financing_spread: float = 0.0,
    rate: float = 0.0,
) -> dict[str, Any]:
    """Daily-reset model vs a real fund on daily closes (dates both series have).

    Per day: synthetic ``R = L·R_u − c`` vs the fund's real close-to-close return; differences in
    basis points (``daily_te_*``), the OLS slope of the fund's returns on the underlying's
    (``real_beta``), and total returns of both over the span (synthetic compounded from the
    fund's first close)."""
    u = _close_series(underlying_closes, "underlying")
    e = _close_series(etf_closes, "etf")
    common = u.index.intersection(e.index)
    if len(common) < 3:
        raise LETFInputError(
            "etf.index", len(common), "fewer than 3 dates in common with underlying",
        )
    u, e = u.loc[common], e.loc[common]
    lev = _finite("leverage", leverage, nonzero=True)
    syn = daily_reset_closes(u, lev, float(e.iloc[0]), expense_ratio=expense_ratio,
                             financing_spread=financing_spread, rate=rate)
    ru = u.pct_change().to_numpy()[1:]
    re = e.pct_change().to_numpy()[1:]
    rs = syn.pct_change().to_numpy()[1:]
    st = _stats_bp(rs - re)
    return {
        "model": "daily_reset",
        "synthetic": True,
        "leverage": lev,
        "daily_cost": float(syn.attrs["daily_cost"]),
        "first_date": str(common[0])[:10],
        "last_date": str(common[-1])[:10],
        "days": int(ru.size),
        "daily_te_mean_abs_bp": st["mean_abs_bp"],
        "daily_te_std_bp": st["std_bp"],
        "daily_te_mean_bp": st["mean_bp"],
        "daily_te_max_abs_bp": st["max_abs_bp"],
        "real_beta": _slope(ru, re),
        "real_total_return": float(e.iloc[-1] / e.iloc[0] - 1.0),
        "synthetic_total_return": float(syn.iloc[-1] / syn.iloc[0] - 1.0),
    }


# -- minute-level tracking error -------------------------------------------------------------------


def _session_close_prices(bars: pd.DataFrame, sess_idx: np.ndarray, n_sessions: int) -> np.ndarray:
    """Per session: close of the last regular-session bar (NaN when the session has none)."""
    out = np.full(n_sessions, np.nan)
    inside = np.flatnonzero(sess_idx >= 0)
    if inside.size:
        # the last occurrence of each session index among in-session bars (index is sorted)
        s = sess_idx[inside]
        last = np.flatnonzero(np.r_[s[1:] != s[:-1], True])
        out[s[last]] = bars["close"].to_numpy()[inside[last]]
    return out


def tracking_error_report(
    real_underlying: pd.DataFrame,
    real_etf: pd.DataFrame,
    leverage: float,
    *,
    expense_ratio: float = 0.0095,
    financing_spread: float = 0.0,
    rate: float = 0.0,
    calendar: str = "XNYS",
) -> dict[str, Any]:
    """Synthetic fund (built from ``real_underlying``) vs the real fund's 1-minute bars.

    * Start: the first session close at which both frames have a regular-session bar; the
      synthetic fund starts at the real fund's close there (``start_price``), anchored to the
      underlying's close there (``base_price``), and is built from the underlying bars after it
      (extended hours mapped; only regular-session bars are compared).
    * A session's close price is the close of its last regular-session bar (the bar closing at
      16:00 ET / the early close when present).
    * ``daily_te_*``: per-session close-to-close returns, synthetic NAV (after costs) vs the real
      fund's close, differences in bp: mean absolute, sample stdev, mean (bias), max absolute.
    * ``intraday_mean_abs_dev_bp``: mean over regular-session minutes present in both frames of
      ``|synthetic close / real close − 1|`` in bp, along the continuous synthetic path (so it
      includes the drift accumulated since the start). ``intraday_reanchored_mean_abs_dev_bp``:
      the same with each session re-anchored on the real fund's and underlying's previous session
      closes, which isolates intraday tracking from the accumulated drift.
    * ``sessions``: sessions compared (daily returns); ``real_beta``: OLS slope of the fund's
      daily returns on the underlying's.
    """
    u = _validate_bars(real_underlying, "real_underlying")
    e = _validate_bars(real_etf, "real_etf")
    lev = _finite("leverage", leverage, nonzero=True)
    cal = _calendar(calendar)
    lo = int(min(u.index.asi8[0], e.index.asi8[0]))
    hi = int(max(u.index.asi8[-1], e.index.asi8[-1]))
    rows, dates, opens, closes = _sessions_ns(cal, lo, hi)
    su = _session_index(cal, u.index.asi8, rows)
    se = _session_index(cal, e.index.asi8, rows)
    cu = _session_close_prices(u, su, len(dates))
    ce = _session_close_prices(e, se, len(dates))
    both = np.flatnonzero(np.isfinite(cu) & np.isfinite(ce))
    if both.size < 2:
        raise LETFInputError(
            "real_etf", int(both.size),
            "need at least 2 sessions where both frames have regular-session bars",
        )
    k0 = int(both[0])
    c0 = int(closes[k0])
    after = u[u.index.asi8 > c0]
    if len(after) == 0:
        raise LETFInputError("real_underlying", 0, "no bars after the first common session close")
    syn = synthesize_letf(
        after, lev, float(ce[k0]), base_price=float(cu[k0]), expense_ratio=expense_ratio,
        financing_spread=financing_spread, rate=rate, calendar=cal,
    )
    resets = syn.resets
    nav_by_close = dict(
        zip(pd.DatetimeIndex(resets["close_utc"]).as_unit("ns").asi8.tolist(),
            resets["nav"].to_numpy().tolist()),
    )
    # daily returns over consecutive compared sessions (both real closes known, synthetic NAV known)
    ks = [int(k) for k in both if int(closes[k]) == c0 or int(closes[k]) in nav_by_close]
    nav = np.array([float(ce[k0]) if int(closes[k]) == c0 else nav_by_close[int(closes[k])]
                    for k in ks])
    real_e = ce[ks]
    real_u = cu[ks]
    rs = nav[1:] / nav[:-1] - 1.0
    re = real_e[1:] / real_e[:-1] - 1.0
    ru = real_u[1:] / real_u[:-1] - 1.0
    daily = _stats_bp(rs - re)

    # intraday, continuous path
    sb = syn.bars[syn.bars["regular_session"]]
    e_in = e[(se >= 0) & (e.index.asi8 > c0)]
    joined = sb[["close"]].join(e_in[["close"]], how="inner", lsuffix="_syn", rsuffix="_real")
    dev = np.abs(joined["close_syn"].to_numpy() / joined["close_real"].to_numpy() - 1.0) * 1e4

    # intraday, re-anchored each session on the real previous closes
    u_in_mask = (su >= 0) & (u.index.asi8 > c0)
    u_in = u[u_in_mask]
    u_sess = su[u_in_mask]
    prev_of = {ks[i + 1]: ks[i] for i in range(len(ks) - 1)}
    keep = np.array([s in prev_of for s in u_sess], dtype=bool)
    prev = np.array([prev_of.get(s, -1) for s in u_sess], dtype=np.int64)
    ra = pd.Series(np.nan, index=u_in.index)
    if keep.any():
        p_prev = ce[prev[keep]]
        s_prev = cu[prev[keep]]
        ra[keep] = p_prev * (1.0 + lev * (u_in["close"].to_numpy()[keep] / s_prev - 1.0))
    ja = ra.dropna().to_frame("close_syn").join(e_in[["close"]], how="inner")
    dev_ra = np.abs(ja["close_syn"].to_numpy() / ja["close"].to_numpy() - 1.0) * 1e4

    return {
        "model": "daily_reset",
        "synthetic": True,
        "leverage": lev,
        "daily_cost": syn.daily_cost,
        "start_close_utc": str(pd.Timestamp(c0, tz="UTC")),
        "start_price": float(ce[k0]),
        "base_price": float(cu[k0]),
        "last_close_utc": str(pd.Timestamp(int(closes[ks[-1]]), tz="UTC")),
        "sessions": int(rs.size),
        "daily_synthetic_returns": rs.tolist(),
        "daily_real_returns": re.tolist(),
        "daily_te_mean_abs_bp": daily["mean_abs_bp"],
        "daily_te_std_bp": daily["std_bp"],
        "daily_te_mean_bp": daily["mean_bp"],
        "daily_te_max_abs_bp": daily["max_abs_bp"],
        "real_beta": _slope(ru, re),
        "real_total_return": float(real_e[-1] / real_e[0] - 1.0),
        "synthetic_total_return": float(nav[-1] / nav[0] - 1.0),
        "intraday_minutes": int(dev.size),
        "intraday_mean_abs_dev_bp": float(dev.mean()) if dev.size else float("nan"),
        "intraday_max_abs_dev_bp": float(dev.max()) if dev.size else float("nan"),
        "intraday_reanchored_minutes": int(dev_ra.size),
        "intraday_reanchored_mean_abs_dev_bp": (
            float(dev_ra.mean()) if dev_ra.size else float("nan")
        ),
    }
