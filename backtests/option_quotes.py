"""Option contracts and their quotes for backtests, priced from the underlying's 1-minute bars.

No option data is needed: for each scalp entry signal of a replayed signal set, the contract the
executor will pick (``options_pricing.select_contract``, the same call the strategy makes) is
created as a NautilusTrader ``OptionContract``, and from the signal's minute until its expiry
session closes it gets one ``QuoteTick`` per underlying bar:

    mid    = Black-Scholes(S = underlying close, K, T = trading minutes to expiry / (252*390),
             sigma = realised volatility of the last ``vol_window`` 1-minute closes x ``vol_scale``,
             clamped to [vol_floor, vol_cap]; or ``fixed_vol``)
    spread = spread_for(mid, minutes to the close): 1 % of the premium, widening to 6 % over the
             last 30 minutes, at least $0.01
    bid/ask = mid -/+ spread / 2 (rounded out to the cent, bid >= 0)

so a market order crosses half the spread (buys at the ask, sells at the bid). At the expiry
session's close the quote is the intrinsic value with no spread: a position still open then is
settled at intrinsic value. Volatility uses only closes up to the quote's minute (no look-ahead).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np
from nautilus_trader.model.currencies import USD
from nautilus_trader.model.data import QuoteTick
from nautilus_trader.model.enums import AssetClass, OptionKind
from nautilus_trader.model.identifiers import InstrumentId, Symbol, Venue
from nautilus_trader.model.instruments import OptionContract
from nautilus_trader.model.objects import Price, Quantity

from strategies.trade_executor.calendar import MarketCalendar
from strategies.trade_executor.models import TIMEFRAME_TRADE_TYPE
from strategies.trade_executor.options_pricing import (
    MINUTES_PER_YEAR,
    bs_price,
    minutes_to_session_close,
    select_contract,
    settle_at_expiry,
    spread_for,
    trading_minutes_to_expiry,
)
from strategies.trade_executor.timeutil import datetime_to_ns, ns_to_datetime


@dataclass(frozen=True)
class OptionSimConfig:
    broker: str = "alpaca"  # whose 0DTE cut-offs pick the expiry (and close positions)
    vol_window: int = 390  # 1-minute closes in the realised-volatility window
    vol_scale: float = 1.0
    vol_floor: float = 0.05
    vol_cap: float = 2.0
    fixed_vol: float | None = None  # use this volatility instead of the realised one
    rate: float = 0.0
    strike_increment: float = 1.0
    quote_size: int = 1_000  # contracts on each side of the modelled quote
    # close expiring positions a minute before the broker's 0DTE new-order cut-off (False: hold
    # to the expiry close and settle at intrinsic value; for studies, not what the broker allows)
    cutoff_exit: bool = True
    # a 0DTE is bought only while at least this many minutes remain before the broker's cut-off
    # (otherwise the next expiry): the strategy uses the same margin (ExecutorStrategyConfig)
    min_minutes_before_cutoff: float = 15.0


def realised_vol_series(closes: np.ndarray, cfg: OptionSimConfig) -> np.ndarray:
    """sigma at each index from the log returns up to and including it: the vectorised form of
    ``options_pricing.realized_vol(closes[:i + 1], vol_window, scale=vol_scale)`` (tested equal),
    over fewer returns while the window fills (none before 30: 4 x vol_floor), clamped to
    [vol_floor, vol_cap]."""
    if cfg.fixed_vol is not None:
        return np.full(len(closes), float(cfg.fixed_vol))
    r = np.zeros(len(closes))
    r[1:] = np.diff(np.log(closes))
    sq = np.cumsum(r * r)
    n = np.arange(len(closes), dtype=float)
    w = cfg.vol_window
    win_sum = sq - np.concatenate([np.zeros(w), sq[:-w]]) if len(sq) > w else sq
    count = np.minimum(n, w)
    with np.errstate(invalid="ignore", divide="ignore"):
        var = np.where(count > 0, win_sum / np.maximum(count, 1), np.nan)
    vol = np.sqrt(MINUTES_PER_YEAR * var) * cfg.vol_scale
    vol = np.where(np.isfinite(vol) & (count >= 30), vol, cfg.vol_floor * 4)  # 30 returns minimum
    return np.clip(vol, cfg.vol_floor, cfg.vol_cap)


def option_instrument(contract: Any, venue: str, ts_ns: int, calendar: MarketCalendar) -> OptionContract:
    close = calendar.session_close(contract.expiry)
    return OptionContract(
        instrument_id=InstrumentId(Symbol(contract.occ_symbol), Venue(venue)),
        raw_symbol=Symbol(contract.occ_symbol),
        asset_class=AssetClass.EQUITY,
        currency=USD,
        price_precision=2,
        price_increment=Price.from_str("0.01"),
        multiplier=Quantity.from_int(contract.multiplier),
        lot_size=Quantity.from_int(1),
        underlying=contract.underlying,
        option_kind=OptionKind.CALL if contract.kind == "call" else OptionKind.PUT,
        strike_price=Price(contract.strike, 2),
        activation_ns=0,
        # after our own settlement at the close (the executor closes at the intrinsic quote)
        expiration_ns=datetime_to_ns(close) + 3_600_000_000_000,
        ts_event=ts_ns,
        ts_init=ts_ns,
    )


def plan_contracts(signals: Iterable[Any], closes: dict[str, tuple[np.ndarray, np.ndarray]],
                   cfg: OptionSimConfig, calendar: MarketCalendar) -> dict[str, tuple[Any, int]]:
    """occ symbol -> (contract, first ts_ns) for every scalp entry signal. ``closes``: symbol ->
    (ts_ns close-stamped, close prices) of the underlying's regular-session bars."""
    out: dict[str, tuple[Any, int]] = {}
    for s in signals:
        s = getattr(s, "data", s)  # catalog replays wrap the signal in CustomData
        if TIMEFRAME_TRADE_TYPE.get(s.timeframe) != "scalp" or s.signal_type == "momentum_exhaustion":
            continue
        if s.ticker not in closes:
            continue
        ts, px = closes[s.ticker]
        i = int(np.searchsorted(ts, s.ts_event, side="right")) - 1
        if i < 0:
            continue
        now = ns_to_datetime(s.ts_event)
        if calendar.session_for(now) is None:
            continue
        # A signal stamped exactly at a bar's time may reach the executor before that bar (and its
        # quote): then it sees the previous close. Cover both spots, and quote from the bar before.
        start = int(ts[max(i - 1, 0)])
        for spot in {float(px[i]), float(px[max(i - 1, 0)])}:
            try:
                c = select_contract(s.ticker, spot, s.direction, now, calendar, broker=cfg.broker,
                                    strike_increment=cfg.strike_increment,
                                    min_minutes_before_cutoff=cfg.min_minutes_before_cutoff)
            except ValueError:
                continue
            prev = out.get(c.occ_symbol)
            if prev is None or start < prev[1]:
                out[c.occ_symbol] = (c, start)
    return out


def option_quotes(contract: Any, instrument_id: InstrumentId, start_ns: int, ts: np.ndarray, px: np.ndarray,
                  vol: np.ndarray, cfg: OptionSimConfig, calendar: MarketCalendar) -> list[QuoteTick]:
    """One quote per underlying bar from ``start_ns`` to the expiry session's close."""
    close = calendar.session_close(contract.expiry)
    end_ns = datetime_to_ns(close)
    lo = int(np.searchsorted(ts, start_ns, side="left"))
    hi = int(np.searchsorted(ts, end_ns, side="right"))
    size = Quantity.from_int(cfg.quote_size)
    out: list[QuoteTick] = []
    for j in range(lo, hi):
        t_ns = int(ts[j])
        now = ns_to_datetime(t_ns)
        s = float(px[j])
        minutes = trading_minutes_to_expiry(now, contract.expiry, calendar)
        if minutes <= 0:
            mid = settle_at_expiry(contract.kind, contract.strike, s)
            bid = ask = round(mid, 2)
        else:
            mid = max(0.0, bs_price(s, contract.strike, minutes / MINUTES_PER_YEAR, float(vol[j]), cfg.rate,
                                    contract.kind))  # float noise below zero far out of the money
            spread = spread_for(mid, minutes_to_session_close(now, calendar))
            bid = max(0.0, math.floor((mid - spread / 2) * 100 + 1e-9) / 100)
            ask = max(bid + 0.01, math.ceil((mid + spread / 2) * 100 - 1e-9) / 100)
        out.append(QuoteTick(instrument_id=instrument_id, bid_price=Price(bid, 2), ask_price=Price(ask, 2),
                             bid_size=size, ask_size=size, ts_event=t_ns, ts_init=t_ns))
    return out


@dataclass
class OptionUniverse:
    instruments: list[OptionContract]
    quotes: list[QuoteTick]
    contracts: dict[str, Any]


def build_option_universe(signals: list[Any], bars_by_symbol: dict[str, list], venue: str,
                          cfg: OptionSimConfig, calendar: MarketCalendar, progress: Any = None) -> OptionUniverse:
    """Contracts and quotes for a replayed signal set (``signals``: TradeSignalData) from the
    underlyings' Nautilus bars (regular session, close-stamped). ``progress``: a progress task
    (``strategies.progress``; total set here, one step per contract) or None."""
    closes: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for sym, bars in bars_by_symbol.items():
        if bars:
            closes[sym] = (np.fromiter((b.ts_event for b in bars), dtype=np.int64, count=len(bars)),
                           np.fromiter((b.close.as_double() for b in bars), dtype=float, count=len(bars)))
    planned = plan_contracts(signals, closes, cfg, calendar)
    vols = {sym: realised_vol_series(px, cfg) for sym, (_ts, px) in closes.items()}
    instruments, quotes = [], []
    if progress is not None:
        progress.update(completed=0, total=len(planned))
    for occ, (contract, start) in sorted(planned.items()):
        ts, px = closes[contract.underlying]
        inst = option_instrument(contract, venue, int(ts[0]), calendar)
        instruments.append(inst)
        quotes.extend(option_quotes(contract, inst.id, start, ts, px, vols[contract.underlying], cfg, calendar))
        if progress is not None:
            progress.advance(1, note=occ)
    if progress is not None:
        progress.finish()
    quotes.sort(key=lambda q: q.ts_init)
    return OptionUniverse(instruments=instruments, quotes=quotes, contracts={o: c for o, (c, _s) in planned.items()})


__all__ = ["OptionSimConfig", "OptionUniverse", "build_option_universe", "option_instrument", "option_quotes",
           "plan_contracts", "realised_vol_series"]
