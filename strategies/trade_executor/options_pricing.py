"""Options for 0DTE / 1DTE scalps: pricing, contract choice, broker cut-offs, spreads, fees, sizing.

Pure core (``../shared/docs/domain-facts.md`` §3): no NautilusTrader, no I/O, no wall clock; every
time-dependent function takes the instant it is asked about. Sessions (holidays, early closes)
come from :class:`strategies.trade_executor.calendar.MarketCalendar`; a ``calendar`` argument
may be a calendar name (``"XNYS"``) or a ``MarketCalendar``.

Time and pricing
----------------
* Black–Scholes (European, no dividends) with ``math.erf``; SPY/QQQ options are American, but
  without dividends inside a 0DTE/1DTE life an American call is worth the European one and the
  put's early-exercise premium is negligible over minutes.
* Time is measured in *trading minutes*: ``T = minutes / (252 · 390)`` years, which matches a
  volatility annualised in trading time (``realized_vol`` of 1-minute returns). Minutes are the
  regular-session minutes left until the expiry session's close (16:00 ET, or the early close),
  summed over sessions for 1DTE; nights, weekends and holidays count zero.
* Check (domain-facts §3, SPY 600, σ 15 %, r 0, ATM call expiring today): 390 minutes at 09:30 ET
  -> T = 1/252 -> $2.262 ("≈ $2.30" in the facts is a rounding of this: ATM ≈ 0.4·S·σ·√T);
  30 minutes at 15:30 ET -> $0.627.

Broker cut-offs on expiry day (``new_order_cutoff`` / ``liquidation_time``)
--------------------------------------------------------------------------
* Alpaca (published): no new orders on an expiring contract after 15:15 ET (15:30 for the broad
  ETFs SPY, QQQ, IWM, DIA); expiring positions are auto-liquidated from 15:30 ET (15:45 broad).
* IBKR (our choice; IBKR itself accepts orders until the option stops trading and may liquidate
  under-margined expiring positions at its discretion): no new 0DTE orders after 15:45 ET and
  flatten at 15:50 ET, for every underlying — out before the 16:00 close so the executor never
  carries exercise/assignment risk into the after-hours pin.
* Early-close days (13:00 ET): the brokers' rules are stated for 16:00 closes; we keep each
  cut-off at the same distance *before the session close* (Alpaca 12:15/12:30 new orders and
  12:30/12:45 liquidation; IBKR 12:45/12:50).

Contract choice (``select_contract``)
-------------------------------------
Long -> call, short -> put. Expiry: the first expiry session whose new-order cut-off is still
ahead of ``now`` (0DTE before today's cut-off, otherwise the next expiry: 1DTE for daily-expiry
underlyings). SPY, QQQ and IWM list an expiry every weekday; other underlyings are taken to
expire weekly on the last session of the ISO week (Friday, Thursday when Friday is a holiday)
unless ``daily_expiries=True``. Strikes: ``"atm"`` = the multiple of ``strike_increment`` nearest
to spot, a tie (spot exactly half-way) going to the out-of-the-money strike (the higher strike
for a call, the lower for a put: the cheaper contract); ``"delta"`` = the strike whose |BS delta|
(vol required) is closest to ``target_delta``, ties again to the OTM strike. OCC symbols in the
compact form ``ROOT + YYMMDD + C/P + strike×1000 (8 digits)``: ``SPY250902C00600000``.

Spreads, fills, fees, sizing
----------------------------
* ``spread_for(premium, minutes_to_close)``: ``pct = 1 % + 5 % · max(0, 1 − m/30)`` — 1 % of the
  premium until 30 minutes before the close, widening linearly to 6 % at the close; spread =
  ``premium · pct`` rounded to the nearest $0.01 tick (half up), never below one tick.
* ``fill_price(mid, side, spread, cross_fraction)``: ``mid ± cross_fraction · spread`` (+ for buys),
  rounded to the tick against the trader. ``cross_fraction = 0`` is a mid fill, 0.5 (default)
  pays half the spread, i.e. a market order filled at the ask / bid, 1.0 pays a full spread.
* Fees are the venues': ``adapters/fees.py`` (dated schedule; ``option_fees`` per order).
* ``contracts_for_risk``: a long option can lose its whole premium, so contracts =
  ``floor(budget / (premium · multiplier))``; 0 when one contract exceeds the budget.
* ``settle_at_expiry``: intrinsic value per share at the underlying's close.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, Literal

from strategies.trade_executor.calendar import ET, MarketCalendar, new_york_date
from strategies.trade_executor.timeutil import FieldError, aware, finite, parse_hhmm

__all__ = [
    "BROAD_ETFS",
    "DAILY_EXPIRY_UNDERLYINGS",
    "MINUTES_PER_YEAR",
    "SESSION_MINUTES",
    "ContractSize",
    "OptionContract",
    "OptionsInputError",
    "atm_strike",
    "bs_delta",
    "bs_price",
    "contracts_for_risk",
    "fill_price",
    "liquidation_time",
    "minutes_to_session_close",
    "new_order_cutoff",
    "norm_cdf",
    "occ_symbol",
    "realized_vol",
    "select_contract",
    "settle_at_expiry",
    "spread_for",
    "trading_minutes_to_expiry",
    "years_from_minutes",
]

Kind = Literal["call", "put"]
SESSION_MINUTES = 390
TRADING_DAYS = 252
MINUTES_PER_YEAR = TRADING_DAYS * SESSION_MINUTES  # 98,280
TICK = 0.01
MULTIPLIER = 100

BROAD_ETFS = frozenset({"SPY", "QQQ", "IWM", "DIA"})
DAILY_EXPIRY_UNDERLYINGS = frozenset({"SPY", "QQQ", "IWM"})

# minutes before the session close: (new-order cut-off, liquidation), broad ETFs / others
_CUTOFFS = {
    "alpaca": {"broad": (30, 15), "other": (45, 30)},
    "ibkr": {"broad": (15, 10), "other": (15, 10)},
}
_BROKER_ALIASES = {
    "alpaca": "alpaca",
    "ibkr": "ibkr",
    "ib": "ibkr",
    "interactive_brokers": "ibkr",
    "interactivebrokers": "ibkr",
}
# regulatory pass-through per contract (approximate; the rates change a few times a year)
REGULATORY_PER_CONTRACT = {"buy": 0.05, "sell": 0.06}
IBKR_MIN_PER_ORDER = 1.00


class OptionsInputError(FieldError):
    """An invalid input; ``field`` names it and ``value`` holds it."""


# -- small validators -----------------------------------------------------------------------------


def _num(name: str, value: Any, *, positive: bool = False, nonneg: bool = False) -> float:
    return finite(value, name, positive=positive, nonneg=nonneg, error=OptionsInputError)


def _kind(kind: Any) -> Kind:
    k = str(kind).strip().lower() if isinstance(kind, str) else kind
    if k not in ("call", "put"):
        raise OptionsInputError("kind", kind, "must be 'call' or 'put'")
    return k  # type: ignore[return-value]


def _aware(name: str, ts: Any) -> datetime:
    return aware(ts, name, error=OptionsInputError)


def _cal(calendar: Any) -> MarketCalendar:
    if isinstance(calendar, MarketCalendar):
        return calendar
    try:
        return MarketCalendar(str(calendar))
    except Exception as exc:  # exchange_calendars' InvalidCalendarName and friends
        raise OptionsInputError(
            "calendar", calendar, f"unknown exchange calendar ({exc})",
        ) from None


def _session_date(name: str, value: Any, cal: MarketCalendar) -> date:
    if isinstance(value, datetime):
        d = new_york_date(_aware(name, value))
    elif isinstance(value, date):
        d = value
    else:
        raise OptionsInputError(name, value, "must be a date")
    try:
        ok = cal.is_session(d)
    except ValueError as exc:
        raise OptionsInputError(name, d.isoformat(), str(exc)) from None
    if not ok:
        raise OptionsInputError(name, d.isoformat(), f"not a {cal.name} trading session")
    return d


def _symbol(underlying: Any) -> str:
    sym = str(underlying).strip().upper()
    if not sym or len(sym) > 6 or not sym.replace(".", "").isalnum():
        raise OptionsInputError("underlying", underlying, "must be 1-6 letters/digits")
    return sym


def _broker(broker: Any) -> str:
    key = str(broker).strip().lower()
    if key not in _BROKER_ALIASES:
        raise OptionsInputError("broker", broker, f"unknown broker; known: {sorted(_CUTOFFS)}")
    return _BROKER_ALIASES[key]


# -- Black–Scholes --------------------------------------------------------------------------------


def norm_cdf(x: float) -> float:
    """Standard normal CDF via ``math.erf``."""
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def _bs_inputs(spot, strike, t_years, vol, rate, kind):
    return (
        _num("spot", spot, positive=True),
        _num("strike", strike, positive=True),
        _num("t_years", t_years, nonneg=True),
        _num("vol", vol, nonneg=True),
        _num("rate", rate),
        _kind(kind),
    )


def bs_price(spot: float, strike: float, t_years: float, vol: float, rate: float = 0.0,
             kind: Kind = "call") -> float:
    """Black–Scholes price per share. ``t_years`` in trading time (see module docstring);
    ``T = 0`` or ``vol = 0`` gives the discounted intrinsic value ``max(0, ±(S − K·e^{−rT}))``."""
    s, k, t, v, r, kd = _bs_inputs(spot, strike, t_years, vol, rate, kind)
    disc_k = k * math.exp(-r * t)
    sig = v * math.sqrt(t)
    if sig == 0.0:
        return max(0.0, s - disc_k) if kd == "call" else max(0.0, disc_k - s)
    d1 = (math.log(s / k) + (r + 0.5 * v * v) * t) / sig
    d2 = d1 - sig
    if kd == "call":
        return s * norm_cdf(d1) - disc_k * norm_cdf(d2)
    return disc_k * norm_cdf(-d2) - s * norm_cdf(-d1)


def bs_delta(spot: float, strike: float, t_years: float, vol: float, rate: float = 0.0,
             kind: Kind = "call") -> float:
    """Black–Scholes delta per share: ``N(d1)`` for calls, ``N(d1) − 1`` for puts. At ``T = 0``
    or ``vol = 0``: 1 / 0 (call) by moneyness against ``K·e^{−rT}``, 0.5 (−0.5) exactly at it."""
    s, k, t, v, r, kd = _bs_inputs(spot, strike, t_years, vol, rate, kind)
    sig = v * math.sqrt(t)
    if sig == 0.0:
        fwd_k = k * math.exp(-r * t)
        call = 1.0 if s > fwd_k else 0.0 if s < fwd_k else 0.5
    else:
        call = norm_cdf((math.log(s / k) + (r + 0.5 * v * v) * t) / sig)
    return call if kd == "call" else call - 1.0


# -- time -----------------------------------------------------------------------------------------


def implied_vol(price: float, spot: float, strike: float, t_years: float, kind: str = "call",
                rate: float = 0.0, *, lo: float = 0.01, hi: float = 5.0, iterations: int = 60) -> float:
    """The volatility at which Black-Scholes gives ``price`` (bisection on [lo, hi]; the price is
    monotonic in volatility). A price below the [lo] value returns ``lo``, above the [hi] value
    ``hi``."""
    p = _num("price", price, nonneg=True)
    for _ in range(iterations):
        mid = (lo + hi) / 2.0
        if bs_price(spot, strike, t_years, mid, rate, kind) > p:
            hi = mid
        else:
            lo = mid
    return (lo + hi) / 2.0


def years_from_minutes(minutes: float) -> float:
    """Trading minutes -> years of trading time: ``minutes / (252 · 390)``."""
    return _num("minutes", minutes, nonneg=True) / MINUTES_PER_YEAR


def trading_minutes_to_expiry(
    now_utc: datetime, expiry_date: date, calendar: Any = "XNYS",
) -> float:
    """Regular-session minutes from ``now_utc`` to the close of ``expiry_date``'s session.

    Sums every session from now's New York date to the expiry date: the rest of today's session
    (all of it before the open, none after the close) plus each later session in full (an early
    close counts 210 minutes). 0 once the expiry session has closed.
    """
    now = _aware("now_utc", now_utc)
    cal = _cal(calendar)
    exp = _session_date("expiry_date", expiry_date, cal)
    today = new_york_date(now)
    if today > exp:
        return 0.0
    total = 0.0
    for d in cal.sessions_in_range(today, exp):
        o, c = cal.session_for(d)  # type: ignore[misc]
        start = max(o, now)
        if c > start:
            total += (c - start).total_seconds() / 60.0
    return total


def minutes_to_session_close(now_utc: datetime, calendar: Any = "XNYS") -> float:
    """Minutes until today's session close (0 outside a session or after the close; the full
    session plus the wait when before the open)."""
    now = _aware("now_utc", now_utc)
    close = _cal(calendar).session_close(now)
    if close is None or now >= close:
        return 0.0
    return (close - now).total_seconds() / 60.0


def realized_vol(closes: Iterable[float], window: int, bars_per_year: float = MINUTES_PER_YEAR, *,
                 scale: float = 1.0, demean: bool = False) -> float:
    """Annualised realised volatility of the last ``window`` log returns of ``closes``.

    ``σ = scale · sqrt(bars_per_year · mean(r²))`` (``demean=True``: sample variance of r,
    ddof 1, instead of the mean square). Defaults suit 1-minute bars in trading time
    (252·390 bars a year), matching :func:`years_from_minutes`. ``scale`` is the proxy's fudge
    factor (e.g. >1 because implied volatility usually exceeds realised). Pass regular-session
    closes: an overnight gap in the window counts as one very large minute.
    """
    w = int(_num("window", window))
    if w < 2 or w != float(window):
        raise OptionsInputError("window", window, "must be an integer >= 2")
    bpy = _num("bars_per_year", bars_per_year, positive=True)
    sc = _num("scale", scale, positive=True)
    xs = [float(x) for x in closes]
    if len(xs) < w + 1:
        raise OptionsInputError("closes", len(xs), f"need at least window + 1 = {w + 1} closes")
    tail = xs[-(w + 1):]
    for i, x in enumerate(tail):
        if not math.isfinite(x) or x <= 0:
            pos = len(xs) - w - 1 + i
            raise OptionsInputError("closes", x, f"price must be finite and > 0 (position {pos})")
    rets = [math.log(b / a) for a, b in zip(tail[:-1], tail[1:])]
    if demean:
        mu = sum(rets) / w
        var = sum((r - mu) ** 2 for r in rets) / (w - 1)
    else:
        var = sum(r * r for r in rets) / w
    return sc * math.sqrt(var * bpy)


# -- broker cut-offs ------------------------------------------------------------------------------


def _offsets(broker: str, underlying: str) -> tuple[int, int]:
    table = _CUTOFFS[_broker(broker)]
    return table["broad" if _symbol(underlying) in BROAD_ETFS else "other"]


def new_order_cutoff(broker: str, underlying: str, session_date: date | datetime,
                     calendar: Any = "XNYS") -> datetime:
    """Last instant (UTC, exclusive) to open a position in a contract expiring that session.

    Alpaca: 15:15 ET (15:30 for SPY/QQQ/IWM/DIA); IBKR: 15:45 ET (our choice). On early-close
    days the same distance before the close (12:15 / 12:30 / 12:45 on a 13:00 close).
    """
    cal = _cal(calendar)
    d = _session_date("session_date", session_date, cal)
    before, _ = _offsets(broker, underlying)
    return cal.session_close(d) - timedelta(minutes=before)  # type: ignore[operator]


def liquidation_time(broker: str, underlying: str, session_date: date | datetime,
                     calendar: Any = "XNYS") -> datetime:
    """When expiring positions are closed (UTC): Alpaca auto-liquidates from 15:30 ET (15:45 for
    SPY/QQQ/IWM/DIA); IBKR: 15:50 ET (our choice). Early closes: same distance before the close.
    """
    cal = _cal(calendar)
    d = _session_date("session_date", session_date, cal)
    _, before = _offsets(broker, underlying)
    return cal.session_close(d) - timedelta(minutes=before)  # type: ignore[operator]


# -- contracts ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OptionContract:
    underlying: str
    expiry: date
    strike: float
    kind: Kind
    occ_symbol: str
    multiplier: int = MULTIPLIER


def occ_symbol(underlying: str, expiry: date, kind: Kind, strike: float) -> str:
    """Compact OCC symbol: root + YYMMDD + C/P + strike × 1000 as 8 digits (SPY250902C00600000)."""
    root = _symbol(underlying)
    k = _kind(kind)
    if not isinstance(expiry, date) or isinstance(expiry, datetime):
        raise OptionsInputError("expiry", expiry, "must be a date")
    milli = round(_num("strike", strike, positive=True) * 1000)
    if milli >= 10**8:
        raise OptionsInputError("strike", strike, "too large for the 8-digit OCC strike field")
    return f"{root}{expiry:%y%m%d}{'C' if k == 'call' else 'P'}{milli:08d}"


def _clean(x: float) -> float:
    return round(x, 6) + 0.0


def atm_strike(spot: float, increment: float = 1.0, kind: Kind = "call") -> float:
    """The multiple of ``increment`` nearest to ``spot``; exactly half-way goes to the OTM strike
    (up for a call, down for a put)."""
    s = _num("spot", spot, positive=True)
    inc = _num("strike_increment", increment, positive=True)
    k = _kind(kind)
    q = s / inc
    lo = math.floor(q + 1e-9)
    frac = q - lo
    if abs(frac - 0.5) <= 1e-9:
        n = lo + 1 if k == "call" else lo
    else:
        n = lo + 1 if frac > 0.5 else lo
    if n <= 0:
        n = 1
    return _clean(n * inc)


def _is_expiry_day(d: date, cal: MarketCalendar, daily: bool) -> bool:
    if daily:
        return True
    # weekly: last session of the ISO week
    week_end = d + timedelta(days=6 - d.weekday())
    return not cal.sessions_in_range(d + timedelta(days=1), week_end)


def _parse_cutoff(cutoff_et: Any) -> time:
    return parse_hhmm(cutoff_et, "cutoff_et", error=OptionsInputError)


def select_contract(
    underlying: str,
    spot: float,
    direction: str,
    now_utc: datetime,
    calendar: Any = "XNYS",
    *,
    broker: str = "alpaca",
    cutoff_et: str | time | None = None,
    strike_rule: Literal["atm", "delta"] = "atm",
    target_delta: float = 0.5,
    strike_increment: float = 1.0,
    vol: float | None = None,
    rate: float = 0.0,
    daily_expiries: bool | None = None,
    min_minutes_before_cutoff: float = 0.0,
) -> OptionContract:
    """The contract to trade for a signal (rules in the module docstring).

    ``min_minutes_before_cutoff``: an expiry day's contract is chosen only while at least this
    many minutes remain before that day's new-order cut-off; later, the next expiry is taken. A
    0DTE bought a minute before the cut-off could only be sold at it (the executor closes
    expiring positions a minute before the cut-off), so the executor asks for a margin here.

    ``cutoff_et``: None -> the broker's :func:`new_order_cutoff`; "HH:MM" -> that ET time on a
    regular day, moved earlier by as much as the close is on an early-close day. ``vol`` (annual,
    trading time) is needed for ``strike_rule="delta"``.
    """
    sym = _symbol(underlying)
    s = _num("spot", spot, positive=True)
    dirn = str(direction).strip().lower()
    if dirn not in ("long", "short"):
        raise OptionsInputError("direction", direction, "must be 'long' or 'short'")
    kind: Kind = "call" if dirn == "long" else "put"
    now = _aware("now_utc", now_utc)
    cal = _cal(calendar)
    inc = _num("strike_increment", strike_increment, positive=True)
    if strike_rule not in ("atm", "delta"):
        raise OptionsInputError("strike_rule", strike_rule, "must be 'atm' or 'delta'")
    _broker(broker)
    fixed = _parse_cutoff(cutoff_et) if cutoff_et is not None else None
    margin = _num("min_minutes_before_cutoff", min_minutes_before_cutoff)
    if margin < 0:
        raise OptionsInputError("min_minutes_before_cutoff", min_minutes_before_cutoff, "must be >= 0")
    daily = sym in DAILY_EXPIRY_UNDERLYINGS if daily_expiries is None else bool(daily_expiries)

    today = new_york_date(now)
    expiry: date | None = None
    horizon = min(today + timedelta(days=21), cal.last_date)
    for d in cal.sessions_in_range(today, horizon):
        if not _is_expiry_day(d, cal, daily):
            continue
        close = cal.session_close(d)
        if fixed is None:
            cutoff = new_order_cutoff(broker, sym, d, cal)
        else:
            regular_close = datetime.combine(d, time(16, 0), tzinfo=ET)
            shift = regular_close - close.astimezone(ET)  # type: ignore[union-attr]
            cutoff = datetime.combine(d, fixed, tzinfo=ET) - shift
        if now < cutoff - timedelta(minutes=margin):
            expiry = d
            break
    if expiry is None:
        raise OptionsInputError("now_utc", now.isoformat(), "no expiry found in the next 3 weeks")

    if strike_rule == "atm":
        strike = atm_strike(s, inc, kind)
    else:
        if vol is None:
            raise OptionsInputError("vol", vol, "needed for strike_rule='delta'")
        v = _num("vol", vol, positive=True)
        td = _num("target_delta", target_delta)
        if not 0.0 < td < 1.0:
            raise OptionsInputError("target_delta", target_delta, "must be between 0 and 1")
        r = _num("rate", rate)
        t = years_from_minutes(trading_minutes_to_expiry(now, expiry, cal))
        centre = atm_strike(s, inc, kind)
        n = max(50, math.ceil(8 * v * math.sqrt(t) * s / inc))
        n = min(n, 5000)
        best: tuple[float, float] | None = None  # (distance, strike)
        for i in range(-n, n + 1):
            k = _clean(centre + i * inc)
            if k <= 0:
                continue
            dist = abs(abs(bs_delta(s, k, t, v, r, kind)) - td)
            if best is None or dist < best[0] - 1e-12:
                best = (dist, k)
            elif abs(dist - best[0]) <= 1e-12:
                # tie: the OTM strike (higher for calls, lower for puts)
                better = k > best[1] if kind == "call" else k < best[1]
                if better:
                    best = (dist, k)
        strike = best[1]  # type: ignore[index]
    return OptionContract(
        underlying=sym,
        expiry=expiry,
        strike=strike,
        kind=kind,
        occ_symbol=occ_symbol(sym, expiry, kind, strike),
        multiplier=MULTIPLIER,
    )


# -- spreads and fills ----------------------------------------------------------------------------


def _to_tick(x: float, tick: float, how: str) -> float:
    q = round(x / tick, 9)
    n = math.ceil(q) if how == "up" else math.floor(q) if how == "down" else math.floor(q + 0.5)
    return _clean(n * tick)


def spread_for(premium: float, minutes_to_close: float, *, base_pct: float = 0.01,
               close_pct: float = 0.06, ramp_minutes: float = 30.0, tick: float = TICK) -> float:
    """Modelled bid/ask spread in dollars per share.

    ``pct = base_pct + (close_pct − base_pct) · max(0, 1 − minutes_to_close / ramp_minutes)``;
    ``spread = max(tick, round_to_tick(premium · pct))`` (nearest tick, half up). Defaults: 1 %
    until 30 minutes before the close, 6 % at the close ($1.00 premium: $0.01 -> $0.06).
    """
    p = _num("premium", premium, nonneg=True)
    m = _num("minutes_to_close", minutes_to_close, nonneg=True)
    b = _num("base_pct", base_pct, nonneg=True)
    c = _num("close_pct", close_pct, nonneg=True)
    ramp = _num("ramp_minutes", ramp_minutes, positive=True)
    tk = _num("tick", tick, positive=True)
    pct = b + (c - b) * max(0.0, 1.0 - m / ramp)
    return max(tk, _to_tick(p * pct, tk, "nearest"))


def fill_price(mid: float, side: str, spread: float, cross_fraction: float = 0.5, *,
               tick: float = TICK) -> float:
    """Fill of a market order: ``mid + cross_fraction · spread`` for a buy, ``mid −
    cross_fraction · spread`` for a sell, rounded to the tick against the trader (buys up, sells
    down; a sell never below 0). 0 = mid, 0.5 = the ask/bid, 1 = a full spread from mid."""
    m = _num("mid", mid, nonneg=True)
    sp = _num("spread", spread, nonneg=True)
    f = _num("cross_fraction", cross_fraction, nonneg=True)
    if f > 1.0:
        raise OptionsInputError("cross_fraction", cross_fraction, "must be between 0 and 1")
    tk = _num("tick", tick, positive=True)
    s = str(side).strip().lower()
    if s == "buy":
        return _to_tick(m + f * sp, tk, "up")
    if s == "sell":
        return max(0.0, _to_tick(m - f * sp, tk, "down"))
    raise OptionsInputError("side", side, "must be 'buy' or 'sell'")


# -- sizing and settlement ------------------------------------------------------------------------


@dataclass(frozen=True)
class ContractSize:
    contracts: int
    premium_at_risk: float  # contracts × premium × multiplier


def contracts_for_risk(risk_budget_dollars: float, premium: float,
                       multiplier: int = MULTIPLIER) -> ContractSize:
    """Whole contracts whose total premium fits in the risk budget (a long option can lose all
    of it): ``floor(budget / (premium · multiplier))``; 0 when one contract costs more."""
    budget = _num("risk_budget_dollars", risk_budget_dollars, nonneg=True)
    p = _num("premium", premium, positive=True)
    m = _num("multiplier", multiplier, positive=True)
    per = p * m
    n = int(math.floor(round(budget / per, 9)))
    return ContractSize(contracts=n, premium_at_risk=_clean(n * per))


def settle_at_expiry(kind: Kind, strike: float, underlying_close: float) -> float:
    """Intrinsic value per share at expiry: ``max(0, S − K)`` for a call, ``max(0, K − S)`` for a
    put (multiply by the contract multiplier for dollars per contract)."""
    k = _kind(kind)
    x = _num("strike", strike, positive=True)
    s = _num("underlying_close", underlying_close, positive=True)
    return _clean(max(0.0, s - x) if k == "call" else max(0.0, x - s))


# -- what an option round trip cost -----------------------------------------------------------------


def option_trade_costs(meta: dict, entry_time: datetime, exit_time: datetime, contracts: int,
                       calendar: Any = "XNYS") -> dict[str, float]:
    """Two costs inside an option round trip's P&L, in dollars (positive = cost):

    * ``theta_cost``: what time alone took, ``(BS(S0, K, T_entry) − BS(S0, K, T_exit)) ×
      multiplier × contracts`` at the entry's underlying price S0 and implied volatility;
    * ``spread_cost``: half-spreads crossed, ``((ask − mid) at entry + (mid − bid) at exit) ×
      multiplier × contracts``.

    ``meta``: ``strike``, ``expiry`` (ISO date), ``kind``, ``iv``, ``underlying_entry``,
    ``entry_bid``/``entry_ask``, ``exit_bid``/``exit_ask``, ``multiplier`` (as the executor
    journals them)."""
    cal = _cal(calendar)
    k = _num("strike", meta.get("strike"), positive=True)
    kind = _kind(meta.get("kind"))
    s0 = _num("underlying_entry", meta.get("underlying_entry"), positive=True)
    iv = _num("iv", meta.get("iv"), positive=True)
    mult = _num("multiplier", meta.get("multiplier", MULTIPLIER), positive=True)
    n = _num("contracts", contracts, nonneg=True)
    expiry = date.fromisoformat(str(meta.get("expiry")))
    t0 = years_from_minutes(trading_minutes_to_expiry(_aware("entry_time", entry_time), expiry, cal))
    t1 = years_from_minutes(trading_minutes_to_expiry(_aware("exit_time", exit_time), expiry, cal))
    v0 = bs_price(s0, k, t0, iv, 0.0, kind) if t0 > 0 else settle_at_expiry(kind, k, s0)
    v1 = bs_price(s0, k, t1, iv, 0.0, kind) if t1 > 0 else settle_at_expiry(kind, k, s0)
    spread = 0.0
    if meta.get("entry_ask") is not None and meta.get("entry_bid") is not None:
        spread += (float(meta["entry_ask"]) - float(meta["entry_bid"])) / 2.0
    if meta.get("exit_ask") is not None and meta.get("exit_bid") is not None:
        spread += (float(meta["exit_ask"]) - float(meta["exit_bid"])) / 2.0
    return {"theta_cost": _clean((v0 - v1) * mult * n), "spread_cost": _clean(spread * mult * n)}
