"""How each kind of instrument is traded: one ``InstrumentPolicy`` per kind instead of branches.

The executor core asks the policy of a trade's instrument type everything that differs between a
stock, a leveraged ETF and an option contract:

    choose       which instrument exactly (an option: the contract, from spot, expiry rule, quote)
    entry_price  the price an entry is sized and planned at
    size         sizing (stock: risk per share; fund: leverage-aware; option: premium at risk)
    direction    the position's direction (funds and options are always bought)
    levels       stop and target in the traded instrument's prices (options: the underlying's)
    ...          plus what the exits, the account and the journal need to know.

Pure: the engine is reached only through the core's ``EngineView`` (quotes, instruments).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from strategies.trade_executor.calendar import MarketCalendar
from strategies.trade_executor.etf_sizer import LeveragedETFSizer
from strategies.trade_executor.models import (
    AccountState,
    ExecutorConfig,
    InstrumentDecision,
    Position,
    PositionSize,
    TradeSignal,
)
from strategies.trade_executor.options_pricing import (
    bs_delta,
    contracts_for_risk,
    implied_vol,
    new_order_cutoff,
    select_contract,
    trading_minutes_to_expiry,
    years_from_minutes,
)
from strategies.trade_executor.sizing import PositionSizer, conviction_multiplier

if TYPE_CHECKING:  # pragma: no cover
    from strategies.trade_executor.core import ExecutorCore
    from strategies.trade_executor.position_manager import ManagedPosition


class InstrumentPolicy:
    """The stock policy; the others override what differs."""

    kind = "stock"
    protect_at_venue = True  # the protective stop rests at the venue
    needs_quotes = False  # priced from quotes (subscribed when bought; the exit's quote is kept)
    levels_on_underlying = False  # stop/target/exits are judged on the underlying's bars
    always_long = False

    def __init__(self, config: ExecutorConfig) -> None:
        self.config = config
        self.sizer = PositionSizer(config)

    def choose(self, core: ExecutorCore, signal: TradeSignal, decision: InstrumentDecision,
               now: datetime) -> InstrumentDecision | str:
        """The instrument to trade, or the ``no_instrument`` reason there is none."""
        return decision

    def entry_price(self, core: ExecutorCore, signal: TradeSignal, decision: InstrumentDecision) -> float | str:
        px = core.last_price.get(decision.ticker)
        return px if px is not None else signal.entry_price

    def size(self, core: ExecutorCore, signal: TradeSignal, decision: InstrumentDecision,
             account: AccountState, price: float) -> PositionSize:
        return self.sizer.calculate(signal, account, price=price)

    def direction(self, signal: TradeSignal) -> str:
        return "long" if self.always_long else signal.direction

    def planner_signal(self, signal: TradeSignal) -> TradeSignal:
        return signal

    def levels(self, signal: TradeSignal, decision: InstrumentDecision, price: float) -> tuple[float, float | None]:
        """Stop and target in the traded instrument's prices (stocks: the signal's levels)."""
        return signal.stop_loss, signal.target_price

    def on_first_fill(self, mp: ManagedPosition) -> None:
        """Complete the position at its first entry fill (option contract multiplier, delta)."""

    def exit_symbol(self, mp: ManagedPosition) -> str:
        """The symbol whose bars drive the position's price exits."""
        return mp.decision.ticker

    def unrealized(self, pos: Position, premium_debited: bool) -> float:
        """What the open position adds to the balance to make equity."""
        return pos.unrealized_pnl or 0.0

    def extra_exits(self, core: ExecutorCore, mp: ManagedPosition, now: datetime) -> list[str]:
        return []

    def expired(self, mp: ManagedPosition, now: datetime) -> bool:
        """The instrument has expired (settles at its final price, even outside the session)."""
        return False


class LeveragedETFPolicy(InstrumentPolicy):
    kind = "leveraged_etf"
    always_long = True  # bull fund for long signals, inverse fund for short ones

    def __init__(self, config: ExecutorConfig) -> None:
        super().__init__(config)
        self.etf_sizer = LeveragedETFSizer(config)

    def entry_price(self, core: ExecutorCore, signal: TradeSignal, decision: InstrumentDecision) -> float | str:
        px = core.last_price.get(decision.ticker)
        return px if px is not None else f"no_instrument: no price yet for {decision.ticker}"

    def size(self, core: ExecutorCore, signal: TradeSignal, decision: InstrumentDecision,
             account: AccountState, price: float) -> PositionSize:
        return self.etf_sizer.calculate(signal, core.router.select_etf(signal), account, etf_price=price)

    def levels(self, signal: TradeSignal, decision: InstrumentDecision, price: float) -> tuple[float, float | None]:
        """A move of d in the underlying moves the fund (always held long) by |L|*d in its favour
        or against it: the stop sits |L|*d_stop below the fund's price, the target |L|*d_target
        above it."""
        lev = abs(decision.leverage)
        d_stop = signal.stop_distance / signal.entry_price
        stop = price * (1.0 - lev * d_stop)
        target = None
        if signal.target_price is not None:
            d_target = abs(signal.target_price - signal.entry_price) / signal.entry_price
            target = price * (1.0 + lev * d_target)
        return max(stop, 0.01), target


class OptionPolicy(InstrumentPolicy):
    """Scalps in options mode: an ATM call (long signal) or put (short one), 0DTE before the
    broker's cut-off, else the next expiry. The stop and target stay on the underlying (checked by
    the strategy on its bars: Alpaca accepts only simple orders for options)."""

    kind = "option"
    protect_at_venue = False
    needs_quotes = True
    levels_on_underlying = True
    always_long = True

    def __init__(self, config: ExecutorConfig, calendar: MarketCalendar, *, broker: str, strike_increment: float,
                 min_minutes_before_cutoff: float, cutoff_exit: bool) -> None:
        super().__init__(config)
        self.calendar = calendar
        self.broker = broker
        self.strike_increment = strike_increment
        self.min_minutes_before_cutoff = min_minutes_before_cutoff
        self.cutoff_exit = cutoff_exit

    def choose(self, core: ExecutorCore, signal: TradeSignal, decision: InstrumentDecision,
               now: datetime) -> InstrumentDecision | str:
        spot = core.last_price.get(signal.ticker)
        if spot is None:
            return f"no_instrument: no price yet for {signal.ticker} to choose an option"
        try:
            c = select_contract(signal.ticker, spot, signal.direction, now, self.calendar, broker=self.broker,
                                strike_increment=self.strike_increment,
                                min_minutes_before_cutoff=self.min_minutes_before_cutoff)
        except ValueError as e:
            return f"no_instrument: no option contract for {signal.ticker}: {e}"
        instrument = core.instrument_id(c.occ_symbol)
        if core.engine.tick(instrument) is None:
            return f"no_instrument: option {c.occ_symbol} is not available at {core.settings.venue} in this run"
        quote = core.engine.quote(instrument)
        if quote is None or quote[1] <= 0:
            return f"no_instrument: no quote for option {c.occ_symbol}"
        bid, ask = quote
        minutes = trading_minutes_to_expiry(now, c.expiry, self.calendar)
        t = years_from_minutes(max(minutes, 1.0))
        vol = implied_vol((ask + bid) / 2.0, spot, c.strike, t, c.kind)  # for the delta only
        delta = bs_delta(spot, c.strike, t, vol, 0.0, c.kind)
        return InstrumentDecision(
            instrument_type="option", ticker=c.occ_symbol, original_signal_ticker=signal.ticker, leverage=1.0,
            is_inverse=False, tradeable=True,
            etf_metadata={"delta": delta, "iv": round(vol, 6), "ask": ask, "bid": bid,
                          "expiry": c.expiry.isoformat(), "strike": c.strike,
                          "kind": c.kind, "multiplier": c.multiplier, "minutes_to_expiry": round(minutes, 1)},
            reason=f"option: {c.kind} {c.strike:g} expiring {c.expiry.isoformat()} ({decision.reason})")

    def entry_price(self, core: ExecutorCore, signal: TradeSignal, decision: InstrumentDecision) -> float | str:
        return decision.etf_metadata["ask"]

    def size(self, core: ExecutorCore, signal: TradeSignal, decision: InstrumentDecision,
             account: AccountState, price: float) -> PositionSize:
        mult = conviction_multiplier(signal.conviction)
        budget = account.equity * self.config.max_risk_per_trade * mult
        cs = contracts_for_risk(budget, price)
        return PositionSize(shares=cs.contracts, notional=cs.premium_at_risk, risk_amount=cs.premium_at_risk,
                            conviction_multiplier=mult,
                            capped_by=None if cs.contracts else "premium_above_budget",
                            raw_shares=budget / (price * 100.0), stop_distance=price)

    def planner_signal(self, signal: TradeSignal) -> TradeSignal:
        # premiums move too fast for a cloud-edge limit: options enter at market (crossing half
        # the spread), whatever the conviction
        return replace(signal, conviction=max(signal.conviction, 75),
                       metadata={**signal.metadata, "volume_confirmed": True})

    def on_first_fill(self, mp: ManagedPosition) -> None:
        meta = mp.decision.etf_metadata or {}
        mp.position.multiplier = float(meta.get("multiplier", 100))
        mp.position.delta = meta.get("delta")

    def exit_symbol(self, mp: ManagedPosition) -> str:
        return mp.signal.ticker  # the underlying's bars

    def unrealized(self, pos: Position, premium_debited: bool) -> float:
        if premium_debited:
            return pos.market_value  # the premium left the balance: add what it is worth now
        return pos.unrealized_pnl or 0.0

    def expiry(self, mp: ManagedPosition) -> date:
        return date.fromisoformat((mp.decision.etf_metadata or {})["expiry"])

    def expired(self, mp: ManagedPosition, now: datetime) -> bool:
        close = self.calendar.session_close(self.expiry(mp))
        return close is not None and now >= close

    def extra_exits(self, core: ExecutorCore, mp: ManagedPosition, now: datetime) -> list[str]:
        """``expired`` at the expiry session's close; ``eod_close`` one minute before the broker's
        0DTE new-order cut-off on expiry day (closing orders are orders too)."""
        if self.expired(mp, now):
            return ["expired"]
        expiry = self.expiry(mp)
        if self.cutoff_exit and now >= new_order_cutoff(self.broker, mp.signal.ticker, expiry,
                                                         self.calendar) - timedelta(minutes=1):
            return ["eod_close"]
        return []

    def view(self, core: ExecutorCore, mp: ManagedPosition) -> tuple[Position, float]:
        """The option position seen from its underlying: its stop and target are the signal's
        levels there."""
        sig, pos = mp.signal, mp.position
        under_px = core.last_price.get(sig.ticker, sig.entry_price)
        view = Position(ticker=sig.ticker, direction=sig.direction,
                        entry_price=mp.underlying_entry or sig.entry_price, current_price=under_px,
                        shares=pos.shares, stop_loss=sig.stop_loss, target_price=sig.target_price,
                        entry_time=pos.entry_time, signal_id=sig.signal_id, trade_type=sig.trade_type)
        return view, under_px


def build_policies(config: ExecutorConfig, calendar: MarketCalendar, **option_settings: Any
                   ) -> dict[str, InstrumentPolicy]:
    return {"stock": InstrumentPolicy(config), "leveraged_etf": LeveragedETFPolicy(config),
            "option": OptionPolicy(config, calendar, **option_settings)}


__all__ = ["InstrumentPolicy", "LeveragedETFPolicy", "OptionPolicy", "build_policies"]
