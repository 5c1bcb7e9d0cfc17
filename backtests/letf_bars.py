"""Synthetic leveraged-ETF bars for backtests: which funds, from which underlying, at what price.

In ``leveraged_etf`` / ``both`` mode the router sends signals to leveraged ETFs (TQQQ for a long
QQQ signal, SQQQ for a short one, SOXL/SOXS for NVDA, ...). A backtest can only trade a fund whose
1-minute bars it feeds. Real bars from the catalog are used when the catalog has them; otherwise
the fund's bars are synthesised from its underlying with the daily-reset model of
:mod:`backtests.letf_synth` (``../shared/docs/domain-facts.md`` §2) and flagged as synthetic
everywhere (summary, HTML report).

Which funds
-----------
Exactly the funds the executor's router can pick for the backtest's signal symbols: every signal
symbol is routed for long and short signals of every trade type (scalp/day/swing) with the run's
``ExecutorConfig`` (mode, ``min_etf_daily_volume``, ``prefer_3x_for_day_trades``; ETF sector
mapping on, a superset) and every selected fund ticker is collected (:func:`reachable_funds`).
E.g. QQQ -> TQQQ, SQQQ; SPY -> SPXL, SPXS (UPRO/SPXU rank behind SPXL/SPXS, same leverage, and
are never selected); NVDA -> SOXL, SOXS; AAPL -> TECL, TECS.

Which underlying feeds which fund
---------------------------------
A fund's catalog entry belongs to a sector/index key (``SECTOR_ETF_KEYS``); the fund is
synthesised from the first ticker of :data:`UNDERLYING_PROXIES` for that key that is in the bar
catalog: an index ETF (or index) tracking the fund's index, or the sector ETF tracking its sector
(SOXL from SOXX, else SMH; TECL from XLK, else VGT; TQQQ from QQQ; SPXL from SPY, ...). Single
stocks are never used as a proxy by default: SOXL synthesised from NVDA alone would be NVDA at 3x,
not the semiconductor index at 3x. If no proxy is in the catalog the fund has no bars, and the
executor rejects its signals with ``no_instrument`` (as before). ``BacktestSpec.synthetic_underlyings``
({fund: underlying}) overrides the mapping explicitly (e.g. ``{"SOXL": "NVDA"}`` for a rough
single-name stand-in; the summary then shows that underlying).

Leverage and costs
------------------
Leverage is the catalog's: ``leverage`` for the bull fund, ``inverse_leverage`` (signed) for the
inverse fund -- the values the executor's sizer and exit levels use, so the simulation is
consistent with the executor's own beliefs (JNUG/JDST are listed at 3x as the seed states).
Expense ratio: the catalog's ``expense_ratio`` / ``inverse_expense_ratio``, else 0.95 %/yr
(``letf_synth``'s default); financing ``rate`` is ``BacktestSpec.synthetic_rate`` (default 0).

Start price convention
----------------------
A synthetic fund is worth ``start_price`` (default **50.00**, per fund overridable with
``BacktestSpec.synthetic_start_prices``) at the **open of the underlying's first bar in the
backtest period** (the first loaded bar; pre-market included when the catalog has extended
hours); i.e. ``synthesize_letf_bars(underlying, L, start_price)`` with ``base_price`` = that open.
From there ``P(t) = P_k · (1 + L·(S(t)/S_k − 1))`` within a session and costs are charged at each
session close. Prices are rounded to cents like imported bars.

Real vs synthetic
-----------------
``BacktestSpec.force_synthetic`` names funds to synthesise even though the catalog has their real
bars (the real series is then not fed; :func:`check_forced_funds` validates the names). Such a
fund starts at the real fund's price at the underlying's first bar, the open of the fund's bar of
that minute (else of its next bar; :func:`real_anchor_price`), instead of 50.00, unless
``synthetic_start_prices`` names one, so that its prices compare with the real ones: from there
on the two differ only by the model's tracking error, which accumulates over the period (QQQ/TQQQ,
2025-04-30 .. 06-13: synthetic +34.4 % vs real +32.7 %, about 4 bp a session). The summary's
``synthetic_instruments`` entry then carries ``replaces_real`` (how the start was chosen).
``trade-executor compare`` uses it to replay the leveraged_etf run on synthetic bars
(``backtests.compare.real_vs_synthetic``).

Volume
------
Volume cannot be synthesised. Synthetic bars carry the *underlying's* volume as a placeholder:
Nautilus' bar execution splits a bar's volume over its open/high/low/close, and with its stock
``FillModel`` a zero volume made market orders fill in odd fragments (measured: a 100-share buy
on a 50.00 close filled at an average 50.0199 instead of 50.01), so a realistic-magnitude number
is fed whatever fill model the venue uses. It is not the fund's volume and nothing in the
executor reads it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Iterable

import numpy as np
import pandas as pd

from backtests import catalog_io
from backtests.letf_synth import LETFInputError, frame_from_ohlcv, synthesize_letf, to_ohlcv_frame
from strategies.trade_executor.etf_catalog import ETF_TICKERS, LEVERAGED_ETF_CATALOG, SECTOR_ETF_KEYS
from strategies.trade_executor.instrument_router import InstrumentRouter
from strategies.trade_executor.models import ExecutorConfig, InstrumentMode

__all__ = [
    "DEFAULT_EXPENSE_RATIO",
    "DEFAULT_START_PRICE",
    "UNDERLYING_PROXIES",
    "SyntheticFund",
    "decay_costs",
    "fund_terms",
    "ForcedSyntheticError",
    "anchor_forced_funds",
    "check_forced_funds",
    "plan_synthetic_funds",
    "reachable_funds",
    "real_anchor_price",
    "synthesize_fund_bars",
    "underlying_for",
]

DEFAULT_START_PRICE = 50.00
DEFAULT_EXPENSE_RATIO = 0.0095

# sector/index key -> tickers that track the funds' index or sector, preferred first. Index ETFs
# and index symbols, sector ETFs; never single stocks (see the module docstring).
UNDERLYING_PROXIES: dict[str, tuple[str, ...]] = {
    "sp500": ("SPY", "VOO", "IVV", "SPLG", "SPX"),
    "nasdaq100": ("QQQ", "QQQM", "NDX"),
    "russell2000": ("IWM", "VTWO", "RUT"),
    "dow30": ("DIA", "DJI"),
    "semiconductors": ("SOXX", "SMH"),  # SOXL/SOXS track the ICE Semiconductor index, like SOXX
    "technology": ("XLK", "VGT"),  # TECL/TECS track the Technology Select Sector index (XLK)
    "fang": (),  # no ETF on the NYSE FANG+ index in the ticker table
    "financials": ("XLF", "KBE"),
    "energy": ("XLE", "XOP"),
    "biotech": ("XBI", "IBB"),
    "healthcare": ("XLV",),
    "retail": ("XRT",),
    "real_estate": ("XLRE", "VNQ", "IYR"),
    "gold_miners": ("GDX",),
    "junior_gold_miners": ("GDXJ",),
    "silver": ("SLV", "SIL"),
    "natural_gas": ("UNG",),
    "crude_oil": ("USO", "BNO"),
    "vix": ("VXX", "VIXY"),  # UVXY/SVXY track VIX futures, not the spot VIX
}


def _sector_of_key(catalog_key: str) -> str | None:
    for sector, keys in SECTOR_ETF_KEYS.items():
        if catalog_key in keys:
            return sector
    entry = LEVERAGED_ETF_CATALOG.get(catalog_key) or {}
    return entry.get("sector")


def fund_terms(ticker: str) -> dict[str, Any] | None:
    """Catalog facts of a fund ticker: catalog key, sector key, signed leverage, expense ratio,
    inverse flag; None when the ticker is not a catalog fund."""
    hit = ETF_TICKERS.get(ticker.strip().upper())
    if hit is None:
        return None
    key, inverse = hit
    e = LEVERAGED_ETF_CATALOG[key]
    if inverse:
        lev = e.get("inverse_leverage")
        lev = -abs(float(e["leverage"])) if lev is None else float(lev)
        er = e.get("inverse_expense_ratio")
    else:
        lev = abs(float(e["leverage"]))
        er = e.get("expense_ratio")
    return {"catalog_key": key, "sector": _sector_of_key(key), "leverage": lev, "inverse": inverse,
            "expense_ratio": float(er) if er is not None else DEFAULT_EXPENSE_RATIO,
            "expense_ratio_source": "catalog" if er is not None else "default"}


def reachable_funds(symbols: Iterable[str], xcfg: ExecutorConfig) -> dict[str, list[str]]:
    """Fund ticker -> signal symbols that can route to it in ``xcfg``'s mode (empty in stock /
    options mode): the executor's own router, probed for every direction and trade type, with
    sector mapping on (a superset of what the run's setting allows)."""
    router = InstrumentRouter(InstrumentMode(xcfg.instrument_mode), min_etf_daily_volume=xcfg.min_etf_daily_volume,
                              prefer_3x_for_day_trades=xcfg.prefer_3x_for_day_trades, sector_mapping=True)
    return router.reachable_funds(symbols)


def underlying_for(fund: str, available: Iterable[str], overrides: dict[str, str] | None = None) -> str | None:
    """The catalog symbol that feeds ``fund`` (override first, then ``UNDERLYING_PROXIES``)."""
    avail = {s.upper() for s in available}
    if overrides:
        o = {k.upper(): v.upper() for k, v in overrides.items()}
        if fund in o:
            return o[fund] if o[fund] in avail else None
    terms = fund_terms(fund)
    if terms is None:
        return None
    for cand in UNDERLYING_PROXIES.get(terms["sector"] or "", ()):
        if cand in avail:
            return cand
    return None


@dataclass(frozen=True)
class SyntheticFund:
    ticker: str
    underlying: str
    leverage: float  # signed
    start_price: float
    expense_ratio: float
    rate: float
    catalog_key: str
    base_price: float | None = None  # the underlying's first open (filled in once bars are built)
    model: str = "daily_reset"
    # set when the catalog has the fund's real bars and the backtest synthesises it anyway
    # (BacktestSpec.force_synthetic): how the start price was chosen
    replaces_real: str | None = None

    def describe(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("ticker")
        if d["replaces_real"] is None:
            d.pop("replaces_real")
        return d


def plan_synthetic_funds(signal_symbols: list[str], available: list[str], xcfg: ExecutorConfig, *,
                         overrides: dict[str, str] | None = None,
                         start_prices: dict[str, float] | None = None,
                         rate: float = 0.0) -> tuple[list[str], list[SyntheticFund], dict[str, str]]:
    """(funds with real catalog bars, funds to synthesise, {fund: why it has no bars})."""
    real: list[str] = []
    synth: list[SyntheticFund] = []
    missing: dict[str, str] = {}
    prices = {k.upper(): float(v) for k, v in (start_prices or {}).items()}
    for fund in reachable_funds(signal_symbols, xcfg):
        if fund in available:
            real.append(fund)
            continue
        terms = fund_terms(fund)
        under = underlying_for(fund, available, overrides)
        if terms is None or under is None:
            proxies = UNDERLYING_PROXIES.get((terms or {}).get("sector") or "", ())
            missing[fund] = (f"no bars: {fund} is not in the catalog and none of its index/sector "
                             f"proxies ({', '.join(proxies) or 'none defined'}) is either")
            continue
        p0 = prices.get(fund, DEFAULT_START_PRICE)
        if not (math.isfinite(p0) and p0 > 0):
            raise ValueError(f"synthetic start price for {fund} must be > 0, got {p0!r}")
        synth.append(SyntheticFund(ticker=fund, underlying=under, leverage=terms["leverage"],
                                   start_price=p0, expense_ratio=terms["expense_ratio"], rate=float(rate),
                                   catalog_key=terms["catalog_key"]))
    return real, synth, missing


def real_anchor_price(fund_bars: list, underlying_bars: list) -> tuple[float, int] | None:
    """The real fund's price where a synthetic series starts (the open of the underlying's first
    bar): the open of the fund's bar of that same minute, else the open of its first later bar.
    Returns (price, that bar's ts_event) or None when the fund has no bar from then on."""
    if not fund_bars or not underlying_bars:
        return None
    t0 = underlying_bars[0].ts_event
    ts = np.fromiter((b.ts_event for b in fund_bars), dtype=np.int64, count=len(fund_bars))
    i = int(np.searchsorted(ts, t0, side="left"))
    if i >= len(fund_bars):
        return None
    return float(fund_bars[i].open.as_double()), int(ts[i])


class ForcedSyntheticError(ValueError):
    """``BacktestSpec.force_synthetic`` names a fund that cannot be synthesised in its place."""


def check_forced_funds(funds: Iterable[str], available: Iterable[str], signal_symbols: Iterable[str],
                       overrides: dict[str, str] | None = None) -> set[str]:
    """The funds to synthesise although the catalog may have their real bars, validated: each is
    a fund of the executor's catalog, not a signal symbol, and has an underlying in the catalog
    (override, else index/sector proxy) to be built from."""
    forced = {f.strip().upper() for f in funds if f and f.strip()}
    unknown = sorted(f for f in forced if fund_terms(f) is None)
    if unknown:
        raise ForcedSyntheticError(f"unknown fund {', '.join(unknown)} (not a leveraged ETF of the "
                                   "executor's catalog)")
    signal = sorted(forced & {s.upper() for s in signal_symbols})
    if signal:
        raise ForcedSyntheticError(f"{', '.join(signal)} is a signal symbol: its bars feed the signals")
    rest = [s for s in available if s.upper() not in forced]
    orphan = sorted(f for f in forced if underlying_for(f, rest, overrides) is None)
    if orphan:
        raise ForcedSyntheticError(f"{', '.join(orphan)}: no underlying to synthesise it from (none of its "
                                   "index/sector ETFs is in the catalog; name one with synthetic_underlyings)")
    return forced


def anchor_forced_funds(synth: list[SyntheticFund], forced: set[str], catalog: Any, start: Any = None,
                        end: Any = None, given: dict[str, float] | None = None) -> list[SyntheticFund]:
    """The planned synthetic funds, those in ``forced`` (real bars in the catalog, synthesised
    anyway) started at the real fund's price instead of 50.00 (:func:`real_anchor_price`) unless
    ``given`` (``synthetic_start_prices``) names a start price: from there on the two series
    differ only by the model's tracking error, so their prices compare trade by trade. Loads the
    underlying's and the real fund's bars of the period [start, end)."""
    given_up = {k.upper() for k in (given or {})}
    out = []
    for fund in synth:
        if fund.ticker not in forced:
            out.append(fund)
        elif fund.ticker in given_up:
            out.append(SyntheticFund(**{**asdict(fund), "replaces_real": "start price given"}))
        else:
            out.append(_anchor_to_real(fund, catalog, start, end))
    return out


def _anchor_to_real(fund: SyntheticFund, catalog: Any, start: Any, end: Any) -> SyntheticFund:
    under = catalog_io.load_bars(catalog, fund.underlying, start=start, end=end)
    if not under:
        return SyntheticFund(**{**asdict(fund), "replaces_real": "underlying has no bars in the period"})
    hit = None
    if fund.ticker in catalog_io.list_symbols(catalog):
        real = catalog_io.load_bars(catalog, fund.ticker, start=under[0].ts_event, end=end)
        hit = real_anchor_price(real, under)
    if hit is None:
        return SyntheticFund(**{**asdict(fund), "replaces_real": f"no real {fund.ticker} bar from the "
                                f"underlying's first bar on: default start price"})
    price, ts = hit
    same = ts == under[0].ts_event
    when = pd.Timestamp(ts, tz="UTC").isoformat()
    return SyntheticFund(**{**asdict(fund), "start_price": price, "replaces_real": (
        f"start price = open of the real {fund.ticker} bar {'of the same minute as' if same else 'next after'} "
        f"{fund.underlying}'s first bar ({when})")})


def synthesize_fund_bars(fund: SyntheticFund, underlying_bars: list) -> tuple[list, SyntheticFund]:
    """Nautilus bars of ``fund`` from the underlying's bars (all of them, extended hours mapped);
    returns the bars and the fund with ``base_price`` filled in. Raises ``LETFInputError`` when
    the model breaks (a wipe-out move)."""
    frame = catalog_io.bars_to_frame(underlying_bars)
    under = frame_from_ohlcv(frame)
    syn = synthesize_letf(under, fund.leverage, fund.start_price, expense_ratio=fund.expense_ratio,
                          rate=fund.rate, extended_hours="map", volume_scale=1.0)
    out = to_ohlcv_frame(syn.bars)
    bars = catalog_io.build_bars(fund.ticker, out)
    return bars, SyntheticFund(**{**asdict(fund), "base_price": float(syn.base_price)})


# -- leveraged-ETF decay cost per closed trade -----------------------------------------------------


def _asof(ts: np.ndarray, px: np.ndarray, when: datetime) -> float | None:
    t = int(pd.Timestamp(when).tz_convert("UTC").value) if pd.Timestamp(when).tzinfo else int(
        pd.Timestamp(when, tz="UTC").value)
    i = int(np.searchsorted(ts, t, side="right")) - 1
    return float(px[i]) if i >= 0 else None


def _series(bars: list) -> tuple[np.ndarray, np.ndarray]:
    ts = np.fromiter((b.ts_event for b in bars), dtype=np.int64, count=len(bars))
    px = np.fromiter((b.close.as_double() for b in bars), dtype=np.float64, count=len(bars))
    return ts, px


def decay_costs(trades: list[dict[str, Any]], bars_by_symbol: dict[str, list],
                underlying_of: dict[str, str]) -> dict[str, Any]:
    """Leveraged-ETF decay cost of each closed leveraged-ETF round trip.

    For a fund with signed leverage L held from ``entry_time`` to ``exit_time``:
    ``decay = (L · R_u − R_f) · notional`` with ``R_u`` the underlying's and ``R_f`` the fund's
    return between the 1-minute bar closes at those times (bar closes, not fills, so slippage
    and fees are not counted twice) and ``notional = shares × fund close at entry``. Positive =
    the fund returned less than L times its underlying (volatility drag, overnight costs, the
    intraday re-levering path); negative = it returned more. Trades whose underlying has no
    bars in the run are listed with ``decay = None`` and left out of the total.
    """
    series = {s: _series(b) for s, b in bars_by_symbol.items() if b}
    rows = []
    total = 0.0
    for t in trades:
        if t.get("instrument_type") != "leveraged_etf" or t.get("exit_time") is None:
            continue
        fund = t["ticker"]
        under = underlying_of.get(fund)
        lev = float(t.get("leverage") or 0.0)
        row = {"signal_id": t.get("signal_id"), "ticker": fund, "underlying": under, "leverage": lev,
               "shares": t.get("shares"), "entry_time": str(t["entry_time"]),
               "exit_time": str(t["exit_time"]), "decay": None}
        if under in series and fund in series:
            f0 = _asof(*series[fund], t["entry_time"])
            f1 = _asof(*series[fund], t["exit_time"])
            u0 = _asof(*series[under], t["entry_time"])
            u1 = _asof(*series[under], t["exit_time"])
            if None not in (f0, f1, u0, u1):
                r_u = u1 / u0 - 1.0
                r_f = f1 / f0 - 1.0
                notional = float(t["shares"]) * f0
                decay = (lev * r_u - r_f) * notional
                row.update(underlying_return=round(r_u, 8), fund_return=round(r_f, 8),
                           notional=round(notional, 2), decay=round(decay, 4))
                total += decay
        rows.append(row)
    estimated = [r for r in rows if r["decay"] is not None]
    return {"total": round(total, 2), "trades": len(rows), "estimated": len(estimated), "per_trade": rows}


__all__ += ["LETFInputError"]
