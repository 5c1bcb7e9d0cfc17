"""The executor as a NautilusTrader Strategy: the imperative shell around the functional core.

Data path: TradeSignalData on the message bus -> InstrumentRouter -> sizer -> RiskGate ->
EntryPlanner (market / limit at the cloud / scale-in) -> orders -> fills (PositionManager) ->
a protective stop resting at the venue -> ExitMonitor on every bar (price exits on the traded
instrument's 1-minute bars; cloud exits on the underlying's bars of the signal's timeframe) ->
exit order -> round trip recorded. Every signal's fate (approved or rejected, with the reason code
and the numbers) goes to the execution sink. The same class runs in a BacktestEngine and in a live
TradingNode: it reads only engine state (cache, portfolio, clock) and never the wall clock.
"""

from __future__ import annotations

import json
import math
from collections import deque
from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import Any

from nautilus_trader.config import StrategyConfig
from nautilus_trader.core.datetime import dt_to_unix_nanos, unix_nanos_to_dt
from nautilus_trader.model.data import Bar, BarType
from nautilus_trader.model.enums import OrderSide, TimeInForce, TriggerType
from nautilus_trader.model.identifiers import ClientId, ClientOrderId, InstrumentId, Venue
from nautilus_trader.model.objects import Quantity
from nautilus_trader.trading.strategy import Strategy

from strategies import stats
from strategies.execution_log import DecisionRecord, ExecutionLog, ExecutionSink
from strategies.risk_control import (
    BROKER_STATUS_TOPIC,
    TRADING_STATE_ENDPOINT,
    BrokerStatus,
    send_alert,
    validate_webhook_url,
)
from strategies.signal_data import TRADE_SIGNAL_DATA_TYPE, TradeSignalData
from strategies.signals import OHLCV, CloudTracker
from strategies.trade_executor import (
    AccountState,
    ExecutorConfig,
    ExitMonitor,
    InstrumentDecision,
    InstrumentRouter,
    KillSwitch,
    LeveragedETFSizer,
    MarketCalendar,
    Position,
    PositionSize,
    PositionSizer,
    RiskGate,
    SignalType,
    TradeSignal,
)
from strategies.trade_executor.etf_catalog import sector_of
from strategies.trade_executor.kill_switch import trade_loss_vs_equity
from strategies.trade_executor.exit_monitor import EXIT_PRIORITY
from strategies.trade_executor.options_pricing import (
    bs_delta,
    contracts_for_risk,
    implied_vol,
    new_order_cutoff,
    select_contract,
    trading_minutes_to_expiry,
    years_from_minutes,
)
from strategies.trade_executor.sizing import conviction_multiplier
from strategies.trade_executor.position_manager import (
    CloudEdges,
    EntryPlanner,
    ManagedPosition,
    PositionManager,
    pullback_verdict,
)

NANOS_PER_MINUTE = 60_000_000_000
# ExecutorConfig.default_time_in_force -> the entry orders' time in force (a working entry is
# cancelled at the session close or the EOD cut-off whatever it says; stops: DAY / GTC for swings)
ENTRY_TIME_IN_FORCE = {"day": TimeInForce.DAY, "gtc": TimeInForce.GTC, "ioc": TimeInForce.IOC}
TIMEFRAME_MINUTES = {"1m": 1, "5m": 5, "10m": 10, "1h": 60, "1d": 390}
# how far back a restarted executor loads the journal's decided signal ids (duplicate_signal)
DUPLICATE_SIGNAL_LOOKBACK = timedelta(days=30)


def ns_to_dt(ns: int) -> datetime:
    """Engine UNIX ns -> aware UTC datetime (NautilusTrader's ``unix_nanos_to_dt``, to the microsecond)."""
    return unix_nanos_to_dt(ns).to_pydatetime(warn=False)


class ExecutorStrategyConfig(StrategyConfig, frozen=True):
    """Settings of the executor strategy.

    executor: ExecutorConfig field overrides (the seed's names), e.g. {"instrument_mode": "stock"}.
    symbols: tickers whose 1-minute bars the strategy follows (signal tickers and tradeable ETFs).
    venue: venue of the instruments (backtests use one simulated venue).
    signal_client_id: set when signals are replayed from a catalog (the data client that serves them).
    buying_power_multiplier: backtests derive buying power as equity x this (Reg-T margin 2x);
        live runs use the broker-reported figure instead.
    """

    executor: dict = {}
    symbols: tuple[str, ...] = ()
    venue: str = "XNAS"
    signal_client_id: str | None = None
    buying_power_multiplier: float = 2.0
    bar_spec: str = "1-MINUTE-LAST-EXTERNAL"
    broker_name: str = "backtest"
    equity_sample_minutes: int = 1
    # Live feeds deliver a minute's bars of several instruments over a moment: the minute's
    # decisions wait this long after its first bar (backtests: 0, they run 1 ns after the bars,
    # and the minute's signals 2 ns after them, once the venue has settled the exits).
    bar_settle_ms: int = 0
    # Operator state (executor_control): polled every N seconds of engine time when set (live),
    # otherwise read at start and at each session open (backtests).
    control_poll_seconds: float | None = None
    alert_webhook_url: str | None = None  # kill-switch alerts are POSTed here as JSON (optional)
    # Protective stops rest at the venue (stop-market, reduce-only) when it supports them;
    # otherwise the strategy's own bar-close stop check is the only stop.
    stops_at_venue: bool = True
    # Timeframes whose EMA clouds the executor tracks for exits, scale-ins and limit prices.
    cloud_timeframes: tuple[str, ...] = ("1m", "10m", "1h")
    # Options (scalps in options/both mode): whose 0DTE cut-offs apply, strike grid.
    option_broker: str = "alpaca"
    option_strike_increment: float = 1.0
    option_cutoff_exit: bool = True  # close 0DTE positions a minute before the broker's cut-off
    # buy an expiring contract only while this many minutes remain before the broker's cut-off
    # (else the next expiry): a 0DTE bought just before it could only be sold at it
    option_min_minutes_before_cutoff: float = 15.0
    # How the venue's account balance treats a bought option: NautilusTrader's simulated venue
    # debits the premium (equity = balance + the options' market value); the Alpaca adapter
    # reports equity minus unrealised P&L (equity = balance + their unrealised P&L, as stocks).
    option_premium_debited: bool = True


class ExecutorStrategy(Strategy):
    """The executor. ``sink`` receives every record (ExecutionLog, JournalSink, TeeSink);
    ``control`` is the executor_control store (ControlStore or anything with kill_switch(),
    activate_kill_switch(reason, now=, by=), deactivate_kill_switch(now=, by=)): with it the
    kill-switch latch survives restarts and the operator can trip / resume it from outside."""

    def __init__(self, config: ExecutorStrategyConfig, sink: ExecutionSink | None = None,
                 control: Any = None) -> None:
        super().__init__(config)
        if config.alert_webhook_url:
            validate_webhook_url(config.alert_webhook_url)  # http(s) only, refused at construction
        self.xconfig = ExecutorConfig(**dict(config.executor))
        self.venue = Venue(config.venue)
        self.sink: ExecutionSink = sink if sink is not None else ExecutionLog()
        self.calendar = MarketCalendar(self.xconfig.calendar)
        self.router = InstrumentRouter.from_config(self.xconfig)
        self.sizer = PositionSizer(self.xconfig)
        self.etf_sizer = LeveragedETFSizer(self.xconfig)
        self.gate = RiskGate(self.xconfig, calendar=self.calendar, buying_power_includes_pending=True)
        self.exit_monitor = ExitMonitor(self.xconfig, calendar=self.calendar)
        self.kill_switch = KillSwitch(self.xconfig)
        self.planner = EntryPlanner(self.xconfig)
        self.pm = PositionManager()
        self.trackers: dict[tuple[str, str], CloudTracker] = {}
        self.cloud_rows: dict[tuple[str, str], deque] = {}  # last bars with their cloud edges
        self._cloud_bar_types: dict[BarType, tuple[str, str]] = {}
        self._exit_pending: dict[str, tuple[str, list[str]]] = {}  # signal id -> exit waiting for stop cancel
        self.last_price: dict[str, float] = {}  # ticker -> last 1m close
        self.session_open: datetime | None = None
        self.starting_equity: float | None = None
        self.daily_trades = 0
        self.recent_trade_pnl_pcts: list[float] = []  # informational: P&L / position cost
        self.recent_trade_losses_vs_equity: list[float] = []  # the kill switch's consecutive-loss input
        self.signals_received = 0
        self._last_equity_sample_ns = 0
        self._bar_types: dict[BarType, str] = {}
        self._last_bar: dict[str, Bar] = {}
        self._due_syms: dict[str, int] = {}  # symbol -> ts of its bar waiting for the minute's decisions
        self._due_clouds: dict[tuple[str, str], int] = {}  # (symbol, timeframe) -> ts of its new cloud row
        self._deferred_clouds: set[tuple[str, str]] = set()  # cloud exits waiting for the session
        self._minute_alert: str | None = None
        self._minute_seq = 0
        self._eod_seq = 0
        self._stopping = False
        self.control = control
        self.trading_state = "ACTIVE"  # what this strategy last asked the RiskEngine for
        self._reducing_orders: set[str] = set()  # exits let through REDUCING before HALTED
        self._broker_connected = True
        self._last_broker_contact_ns: int | None = None
        self.alert_threads: list = []
        # signal id -> time of its first decision (this run, and the journal's for this run id):
        # a re-sent id is rejected ``duplicate_signal`` for the life of the journal
        self.decided_signals: dict[str, datetime] = {}

    # ── lifecycle ────────────────────────────────────────────────────────────────────────────
    def on_start(self) -> None:
        self._stopping = False
        for sym in self.config.symbols:
            bar_type = BarType.from_str(f"{sym}.{self.venue}-{self.config.bar_spec}")
            if self.cache.instrument(bar_type.instrument_id) is None:
                self.log.warning(f"no instrument {bar_type.instrument_id} in cache; not following")
                continue
            self._bar_types[bar_type] = sym
            self.subscribe_bars(bar_type)
            for tf in self.config.cloud_timeframes:
                self.trackers[(sym, tf)] = CloudTracker()
                self.cloud_rows[(sym, tf)] = deque(maxlen=5)
                if tf != "1m":
                    from strategies.signal_actor import bar_type_for

                    htf = bar_type_for(sym, str(self.venue), tf)
                    self._cloud_bar_types[htf.standard()] = (sym, tf)  # bars arrive as the standard type
                    self.subscribe_bars(htf)
        if self.config.signal_client_id:
            self.subscribe_data(TRADE_SIGNAL_DATA_TYPE, client_id=ClientId(self.config.signal_client_id))
        else:
            # Signals come from an actor in the same node: subscribe on the bus only.
            self.msgbus.subscribe(topic=f"data.{TRADE_SIGNAL_DATA_TYPE.topic}", handler=self.handle_data)
        self.msgbus.subscribe(topic=BROKER_STATUS_TOPIC, handler=self.on_broker_status)
        if TRADING_STATE_ENDPOINT not in self.msgbus.endpoints():
            self.log.error(f"no '{TRADING_STATE_ENDPOINT}' endpoint: the kill switch can stop this "
                           "strategy's entries but cannot halt the RiskEngine (call install_risk_controls)")
        self._restore_latch()
        self._restore_positions()
        self._load_decided_signals()
        if self.control is not None and self.config.control_poll_seconds:
            from datetime import timedelta

            self.clock.set_timer("executor-control-poll", timedelta(seconds=self.config.control_poll_seconds),
                                 callback=self._on_poll_timer)

    # ── engine state -> core inputs ──────────────────────────────────────────────────────────
    def _balance(self) -> float:
        account = self.portfolio.account(self.venue)
        if account is None:
            return 0.0
        return float(account.balance_total().as_double())

    @property
    def positions_by_signal(self) -> dict[str, ManagedPosition]:
        return self.pm.by_signal

    def _unrealized(self) -> float:
        total = 0.0
        for mp in self.pm.by_signal.values():
            pos = mp.position
            if pos is None or pos.shares <= 0:
                continue
            px = self.last_price.get(pos.ticker)
            if px is not None:
                pos.mark(px)
            if pos.instrument_type == "option" and self.config.option_premium_debited:
                total += pos.market_value  # the premium left the balance: add what it is worth now
            else:
                total += pos.unrealized_pnl or 0.0
        return total

    def equity(self) -> float:
        return self._balance() + self._unrealized()

    def account_state(self, now: datetime) -> AccountState:
        equity = self.equity()
        positions = self.pm.open_positions()
        gross = sum(p.market_value for p in positions)
        pending = self.pm.pending_orders(self.last_price.get)
        pending_notional = sum(p.price * p.shares for p in pending)
        buying_power = max(0.0, equity * self.config.buying_power_multiplier - gross - pending_notional)
        starting = self.starting_equity if self.starting_equity is not None else equity
        return AccountState(
            equity=equity,
            cash=self._balance(),
            buying_power=buying_power,
            open_positions=positions,
            daily_pnl=equity - starting,
            daily_trades=self.daily_trades,
            starting_equity=starting,
            pending_orders=pending,
            recent_trade_pnl_pcts=list(self.recent_trade_pnl_pcts),
            recent_trade_losses_vs_equity=list(self.recent_trade_losses_vs_equity),
            as_of=now,
            last_broker_contact=self._broker_contact(now),
        )

    def _broker_contact(self, now: datetime) -> datetime:
        # Connected (or never told otherwise: backtests): contact is now. After a disconnect
        # report, the last contact stays where it was until the broker is back.
        if self._broker_connected or self._last_broker_contact_ns is None:
            return now
        return ns_to_dt(self._last_broker_contact_ns)

    def on_broker_status(self, status: BrokerStatus) -> None:
        halt = getattr(status, "halt_reason", "")
        if halt:  # the broker says the account may not trade (blocked / not ACTIVE): halt at once
            now = ns_to_dt(status.ts_ns)
            self.sink.record_event(now, "broker_account_halt", f"{status.broker or 'broker'}: {halt}",
                                   {"detail": status.detail})
            self.log.error(f"broker account: {halt}")
            if not self.kill_switch.is_active:
                self.kill_switch.activate(f"broker_account: {halt}", now=now)
                self._on_kill_switch(now)
        if status.connected:
            self._broker_connected = True
            self._last_broker_contact_ns = status.ts_ns
        else:
            if self._broker_connected:
                self.sink.record_event(ns_to_dt(status.ts_ns), "broker_disconnected",
                                       f"{status.broker or 'broker'} disconnected: {status.detail}")
                self._last_broker_contact_ns = status.ts_ns
            self._broker_connected = False

    # ── signals ──────────────────────────────────────────────────────────────────────────────
    def on_data(self, data: Any) -> None:
        if isinstance(data, TradeSignalData):
            self.on_trade_signal(data)

    def on_trade_signal(self, data: TradeSignalData) -> None:
        if self._stopping:
            return  # no decision, no order once the executor is stopping
        self._run_minute_if_due()
        self.signals_received += 1
        now = self.clock.utc_now()
        try:
            signal = data.to_signal()
        except ValueError as e:
            self._record(now, None, approved=False, code="invalid_signal", reason=f"invalid_signal: {e}",
                         raw=data)
            return
        first = self.decided_signals.get(signal.signal_id)
        if first is not None:
            self._record(now, signal, approved=False, code="duplicate_signal",
                         reason=f"duplicate_signal: signal id {signal.signal_id!r} was already decided at "
                                f"{first.isoformat()}", details={"first_decided_at": first.isoformat()})
            return
        if signal.signal_type == SignalType.MOMENTUM_EXHAUSTION or signal.metadata.get("is_entry") is False:
            # exhaustion says a move is stretched: a reason to take profit, never to enter
            self._record(now, signal, approved=False, code="not_entry",
                         reason=f"not_entry: {signal.signal_type.value} is an exit signal, not an entry")
            return
        self._roll_session(now)
        account = self.account_state(now)
        if not self.kill_switch.is_active and self.kill_switch.check(account):
            self._on_kill_switch(now)

        decision = self.router.route(signal)
        if not decision.tradeable:
            self._record(now, signal, approved=False, code="no_instrument",
                         reason=decision.reason or "no_instrument", decision=decision)
            return
        if decision.instrument_type == "option":
            picked = self._pick_option(signal, decision, now)
            if isinstance(picked, str):
                self._record(now, signal, approved=False, code="no_instrument", reason=picked, decision=decision)
                return
            decision = picked
        instrument_id = InstrumentId.from_str(f"{decision.ticker}.{self.venue}")
        instrument = self.cache.instrument(instrument_id)
        if instrument is None:
            why = (f"no_instrument: {decision.instrument_type} {decision.ticker} is not available "
                   f"at {self.venue} in this run")
            self._record(now, signal, approved=False, code="no_instrument", reason=why, decision=decision)
            return
        price = self.last_price.get(decision.ticker)
        if decision.instrument_type == "option":
            price = decision.etf_metadata["ask"]
            budget = account.equity * self.xconfig.max_risk_per_trade * conviction_multiplier(signal.conviction)
            cs = contracts_for_risk(budget, price)
            size = PositionSize(shares=cs.contracts, notional=cs.premium_at_risk, risk_amount=cs.premium_at_risk,
                                conviction_multiplier=conviction_multiplier(signal.conviction),
                                capped_by=None if cs.contracts else "premium_above_budget",
                                raw_shares=budget / (price * 100.0), stop_distance=price)
        elif decision.instrument_type == "stock":
            price = price if price is not None else signal.entry_price
            size = self.sizer.calculate(signal, account, price=price)
        else:
            if price is None:
                self._record(now, signal, approved=False, code="no_instrument",
                             reason=f"no_instrument: no price yet for {decision.ticker}", decision=decision)
                return
            etf = self.router.select_etf(signal)
            size = self.etf_sizer.calculate(signal, etf, account, etf_price=price)

        risk = self.gate.validate(signal, account, decision=decision, size=size, price=price, now=now,
                                  kill_switch_active=(self.kill_switch.reason or True) if self.kill_switch.is_active else False)
        details = {"risk": risk.details, "size": _size_dict(size), "price": price,
                   "account": {"equity": round(account.equity, 2), "buying_power": round(account.buying_power, 2),
                               "daily_pnl": round(account.daily_pnl, 2),
                               "starting_equity": round(account.starting_equity or 0.0, 2),
                               "open_positions": len(account.open_positions),
                               "pending_orders": len(account.pending_orders)}}
        if not risk.approved:
            self._record(now, signal, approved=False, code=risk.code, reason=risk.reason,
                         decision=decision, details=details)
            return
        shares = size.shares
        if risk.adjustments and risk.adjustments.get("max_shares") is not None:
            shares = min(shares, int(risk.adjustments["max_shares"]))
            details["adjustments"] = risk.adjustments
        if shares < 1:
            code = size.capped_by or "size_zero"
            self._record(now, signal, approved=False, code=code,
                         reason=f"{code}: sized to 0 shares (raw {size.raw_shares:.2f})",
                         decision=decision, details=details)
            return
        # Leveraged ETFs and options are always bought (bull fund / call for long signals,
        # inverse fund / put for short ones).
        direction = "long" if decision.instrument_type in ("leveraged_etf", "option") else signal.direction
        planner_signal = signal
        if decision.instrument_type == "option":
            # premiums move too fast for a cloud-edge limit: options enter at market (crossing
            # half the spread), whatever the conviction
            planner_signal = replace(signal, conviction=max(signal.conviction, 75),
                                     metadata={**signal.metadata, "volume_confirmed": True})
        plan = self.planner.plan(
            planner_signal, shares, price=price, direction=direction,
            cloud=self._cloud_edges(signal.ticker, signal.timeframe, "pullback"),
            underlying_price=self.last_price.get(signal.ticker), leverage=decision.leverage,
            tick=float(instrument.price_increment),
        )
        details["entry"] = plan.to_dict()
        stop, target = self._levels_for(signal, decision, price, direction)
        side = OrderSide.BUY if direction == "long" else OrderSide.SELL
        tif = ENTRY_TIME_IN_FORCE[self.xconfig.default_time_in_force]
        if plan.order_type == "market":
            order = self.order_factory.market(
                instrument_id=instrument.id, order_side=side, quantity=Quantity.from_int(plan.first_shares),
                time_in_force=tif, tags=[f"signal={signal.signal_id}", f"role=entry:{plan.tactic}"])
        else:
            order = self.order_factory.limit(
                instrument_id=instrument.id, order_side=side, quantity=Quantity.from_int(plan.first_shares),
                price=instrument.make_price(plan.limit_price), time_in_force=tif,
                tags=[f"signal={signal.signal_id}", f"role=entry:{plan.tactic}"])
        oid = order.client_order_id.value
        self.pm.open(signal, decision, plan, instrument=instrument.id.value, direction=direction,
                     stop_loss=stop, target_price=target, order_id=oid)
        if decision.instrument_type == "option":
            self.subscribe_quote_ticks(instrument.id)
        self.submit_order(order)
        self._record(now, signal, approved=True, code=None, reason=None, decision=decision,
                     details=details, shares=shares, order_ids=[oid])

    def _cloud_edges(self, sym: str, timeframe: str, cloud: str) -> CloudEdges | None:
        tr = self.trackers.get((sym, timeframe))
        if tr is None or not tr.warmed_up:
            return None
        i = tr.names.index(cloud)
        return CloudEdges(tr.lower[i], tr.upper[i])

    # ── options ─────────────────────────────────────────────────────────────────────────────
    def _pick_option(self, signal: TradeSignal, decision: InstrumentDecision, now: datetime):
        """The contract for a scalp (same rule as the backtest's option universe): calls for
        longs, puts for shorts, ATM, 0DTE before the broker's cut-off, else the next expiry.
        Returns an InstrumentDecision for the contract, or the reason there is none."""
        spot = self.last_price.get(signal.ticker)
        if spot is None:
            return f"no_instrument: no price yet for {signal.ticker} to choose an option"
        try:
            c = select_contract(signal.ticker, spot, signal.direction, now, self.calendar,
                                broker=self.config.option_broker,
                                strike_increment=self.config.option_strike_increment,
                                min_minutes_before_cutoff=self.config.option_min_minutes_before_cutoff)
        except ValueError as e:
            return f"no_instrument: no option contract for {signal.ticker}: {e}"
        iid = InstrumentId.from_str(f"{c.occ_symbol}.{self.venue}")
        if self.cache.instrument(iid) is None:
            return f"no_instrument: option {c.occ_symbol} is not available at {self.venue} in this run"
        quote = self.cache.quote_tick(iid)
        if quote is None or quote.ask_price.as_double() <= 0:
            return f"no_instrument: no quote for option {c.occ_symbol}"
        ask, bid = quote.ask_price.as_double(), quote.bid_price.as_double()
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

    def on_quote_tick(self, tick) -> None:
        sym = tick.instrument_id.symbol.value
        bid, ask = tick.bid_price.as_double(), tick.ask_price.as_double()
        self.last_price[sym] = max((bid + ask) / 2.0, 0.0)

    def _option_view(self, mp: ManagedPosition, now: datetime) -> tuple[Position, float, list[str]]:
        """An option position seen from its underlying (its stop and target are the signal's
        levels there), plus the option-only exits that fire now: ``expired`` at the expiry
        session's close, ``eod_close`` one minute before the broker's 0DTE new-order cut-off on
        expiry day (closing orders are orders too)."""
        sig, pos = mp.signal, mp.position
        under_px = self.last_price.get(sig.ticker, sig.entry_price)
        view = Position(ticker=sig.ticker, direction=sig.direction, entry_price=mp.underlying_entry or sig.entry_price,
                        current_price=under_px, shares=pos.shares, stop_loss=sig.stop_loss,
                        target_price=sig.target_price, entry_time=pos.entry_time, signal_id=sig.signal_id,
                        trade_type=sig.trade_type)
        extra: list[str] = []
        meta = mp.decision.etf_metadata or {}
        expiry = date.fromisoformat(meta["expiry"])
        close = self.calendar.session_close(expiry)
        if close is not None and now >= close:
            extra.append("expired")
        elif self.config.option_cutoff_exit and now >= new_order_cutoff(
                self.config.option_broker, sig.ticker, expiry, self.calendar) - timedelta(minutes=1):
            extra.append("eod_close")
        return view, under_px, extra

    def _levels_for(self, signal: TradeSignal, decision: InstrumentDecision, price: float,
                    position_direction: str) -> tuple[float, float | None]:
        """Stop and target in the traded instrument's prices.

        Stocks use the signal's levels. For a leveraged ETF (always held long) a move of d in the
        underlying moves the fund by |L|*d in its favour or against it, so the stop sits |L|*d_stop
        below the ETF price and the target |L|*d_target above it.
        """
        if decision.instrument_type != "leveraged_etf":
            return signal.stop_loss, signal.target_price  # options: levels of the underlying
        lev = abs(decision.leverage)
        d_stop = signal.stop_distance / signal.entry_price
        stop = price * (1.0 - lev * d_stop)
        target = None
        if signal.target_price is not None:
            d_target = abs(signal.target_price - signal.entry_price) / signal.entry_price
            target = price * (1.0 + lev * d_target)
        return max(stop, 0.01), target

    # ── fills and order outcomes ─────────────────────────────────────────────────────────────
    def on_order_filled(self, event) -> None:
        oid = event.client_order_id.value
        qty = int(event.last_qty.as_double())
        px = float(event.last_px.as_double())
        fee = float(event.commission.as_double()) if event.commission is not None else 0.0
        now = ns_to_dt(event.ts_event)
        if oid in self._reducing_orders:
            self._reducing_orders.discard(oid)
        res = self.pm.on_fill(oid, qty, px, fee, now, underlying_price=None)
        if res is None:
            return
        mp, role = res
        if role in ("entry", "add"):
            if role == "entry" and len([f for f in mp.fills if f.role == "entry"]) == 1:
                self.daily_trades += 1
                mp.position.sector = sector_of(mp.signal.ticker)
                mp.position.underlying_price = self.last_price.get(mp.signal.ticker, mp.signal.entry_price)
                mp.underlying_entry = mp.position.underlying_price
                if mp.decision.instrument_type == "option":
                    meta = mp.decision.etf_metadata or {}
                    mp.position.multiplier = float(meta.get("multiplier", 100))
                    mp.position.delta = meta.get("delta")
            mp.position.mark(self.last_price.get(mp.position.ticker, px))
            # durable before we move on: a crash after this fill cannot lose it
            self.sink.record_open_trade(self._trade_row(mp, now, closed=False))
            if mp.signal.signal_id in self._exit_pending or mp.exit_order_id is not None:
                return  # an exit is under way; the next bar closes what is left
            self._protect(mp)
            return
        # exit or stop fill
        if self.pm.is_round_trip_done(mp):
            self._cancel_if_open(mp.stop_order_id)
            self._close_round_trip(mp, now)
        elif role == "stop":
            self.sink.record_event(now, "stop_partial", f"{mp.signal_id}: stop filled {qty} @ {px}",
                                   {"order_id": oid, "open_qty": mp.open_qty})

    def _protect(self, mp: ManagedPosition) -> None:
        """Rest (or resize) the protective stop at the venue for the open quantity. Options get
        none (Alpaca accepts only simple orders for them): their stop is the strategy's own check
        on the underlying's bars."""
        if not self.config.stops_at_venue or mp.open_qty <= 0 or mp.decision.instrument_type == "option":
            return
        instrument = self.cache.instrument(InstrumentId.from_str(mp.instrument))
        qty = Quantity.from_int(mp.open_qty)
        if mp.stop_order_id is not None:
            order = self.cache.order(ClientOrderId(mp.stop_order_id))
            if order is not None and order.is_open and order.quantity != qty:
                self.modify_order(order, quantity=qty)
            return
        side = OrderSide.SELL if mp.direction == "long" else OrderSide.BUY
        tif = TimeInForce.GTC if mp.signal.trade_type == "swing" else TimeInForce.DAY
        order = self.order_factory.stop_market(
            instrument_id=instrument.id, order_side=side, quantity=qty,
            trigger_price=instrument.make_price(mp.stop_loss), trigger_type=TriggerType.DEFAULT,
            time_in_force=tif, reduce_only=True,
            tags=[f"signal={mp.signal_id}", "role=stop"])
        self.pm.link(mp, order.client_order_id.value, "stop")
        if self.kill_switch.is_active:
            self._reducing_orders.add(order.client_order_id.value)
            self._set_trading_state("REDUCING", f"protective stop for {mp.signal_id} while halted")
        self.submit_order(order)
        self._maybe_halt()
        if mp.position is not None:
            # the stop's id goes into the open row: a restarted executor finds it at the venue
            self.sink.record_open_trade(self._trade_row(mp, self.clock.utc_now(), closed=False))

    def _stop_refused(self, mp: ManagedPosition, oid: str, why: str, now: datetime) -> None:
        """A protective stop did not get to rest (refused, denied, expired): the position must not
        stay unprotected. While an entry order of the same trade still works (a broker may refuse
        an opposite-side order as a potential wash trade), cancel it and place the stop again once
        it is gone; otherwise (e.g. the market is already through the stop) leave at market now."""
        self.sink.record_event(now, "stop_failed", f"{mp.signal_id}: protective stop {why}",
                               {"order_id": oid, "open_qty": mp.open_qty})
        if mp.entry_orders and not mp.stop_retried:
            mp.stop_retried = True
            if mp.scale_in == "waiting":
                mp.scale_in = "skipped"
            for entry_oid in list(mp.entry_orders):
                self._cancel_if_open(entry_oid)
            return  # _order_done of the entry places the stop again
        if self._can_exit(mp):
            self._submit_exit(mp, "stop_loss", ["stop_loss", "stop_refused"])

    def _cancel_if_open(self, oid: str | None) -> bool:
        if oid is None:
            return False
        order = self.cache.order(ClientOrderId(oid))
        if order is not None and order.is_open and not order.is_pending_cancel:
            self.cancel_order(order)
            return True
        return False

    def on_order_rejected(self, event) -> None:
        self._order_done(event.client_order_id.value, f"rejected by venue: {event.reason}")

    def on_order_denied(self, event) -> None:
        self._order_done(event.client_order_id.value, f"denied by risk engine: {event.reason}")

    def on_order_canceled(self, event) -> None:
        self._order_done(event.client_order_id.value, "canceled")

    def on_order_expired(self, event) -> None:
        self._order_done(event.client_order_id.value, "expired")

    def _order_done(self, oid: str, why: str) -> None:
        if oid in self._reducing_orders:
            self._reducing_orders.discard(oid)
            self._maybe_halt()
        res = self.pm.order_done(oid)
        if res is None:
            return
        mp, role = res
        now = self.clock.utc_now()
        if role in ("entry", "add"):
            if role == "add":
                self.sink.record_event(now, "scale_in_failed", f"{mp.signal_id}: add order {why}",
                                       {"order_id": oid})
            elif self.pm.is_dead(mp):
                self.sink.record_event(now, "entry_failed", f"{mp.signal_id}: {why}", {"order_id": oid})
                self.pm.finish(mp)
                return
            else:
                self.sink.record_event(now, "entry_partial", f"{mp.signal_id}: rest of the entry {why}; "
                                       f"keeping {mp.open_qty} filled", {"order_id": oid, "filled": mp.open_qty})
            if self.pm.is_round_trip_done(mp):
                self._close_round_trip(mp, now)
            elif mp.signal_id in self._exit_pending and mp.stop_order_id is None:
                self._send_exit(mp)
            elif mp.stop_retried and not mp.entry_orders and mp.stop_order_id is None and self._can_exit(mp):
                self._protect(mp)  # the conflicting entry is gone: rest the stop again
            return
        if role == "stop":
            pending = self._exit_pending.get(mp.signal_id)
            if pending is not None and mp.open_qty > 0:
                self._send_exit(mp)  # the stop is out of the way: now the exit
            elif mp.open_qty > 0 and "cancel" not in why:
                self._stop_refused(mp, oid, why, now)
            return
        # the exit did not go through: the position is still open, try again on the next bar
        self._exit_pending.pop(mp.signal_id, None)
        self.sink.record_event(now, "exit_failed", f"{mp.signal_id}: {why}", {"order_id": oid})

    def _close_round_trip(self, mp: ManagedPosition, now: datetime) -> None:
        pos = mp.position
        exit_px = mp.exit_value / mp.exit_filled_qty
        fees = mp.entry_fees + mp.exit_fees
        gross = stats.round_trip_pnl(pos.entry_price, exit_px, mp.exit_filled_qty, pos.sign, pos.multiplier)
        pnl = round(stats.round_trip_pnl(pos.entry_price, exit_px, mp.exit_filled_qty, pos.sign, pos.multiplier,
                                         fees=fees), 2)
        pnl_pct = stats.pnl_pct(pnl, pos.entry_price, mp.exit_filled_qty, pos.multiplier)
        # The kill switch's "losing trade worse than 3 %" counts a loss against the account's
        # equity before the trade closed (a full stop-out risks 5 % of equity at the defaults).
        self.recent_trade_pnl_pcts.append(pnl_pct)
        equity_before = self.equity() - pnl
        self.recent_trade_losses_vs_equity.append(
            trade_loss_vs_equity(pnl, equity_before) if equity_before > 0 else 1.0)
        del self.recent_trade_losses_vs_equity[:-20]
        del self.recent_trade_pnl_pcts[:-20]
        self._exit_pending.pop(mp.signal_id, None)
        self.sink.record_trade(self._trade_row(mp, now, closed=True, exit_px=exit_px, pnl=pnl,
                                               pnl_pct=pnl_pct, fees=fees, gross=gross))
        self.pm.finish(mp)

    def _trade_row(self, mp: ManagedPosition, now: datetime, *, closed: bool, exit_px: float | None = None,
                   pnl: float | None = None, pnl_pct: float | None = None, fees: float | None = None,
                   gross: float | None = None) -> dict[str, Any]:
        """A trade_executions row (TRADE_COLUMNS): ``open`` after entry fills, ``closed`` at the end."""
        pos = mp.position
        meta: dict[str, Any] = {
            "signal_direction": mp.signal.direction, "signal_type": mp.signal.signal_type.value,
            "timeframe": mp.signal.timeframe, "multiplier": pos.multiplier,
            "entry_tactic": mp.plan.tactic, "scale_in": mp.scale_in,
            "underlying": pos.underlying, "sector": pos.sector,
        }
        if mp.decision.instrument_type == "option":
            om = mp.decision.etf_metadata or {}
            meta["option"] = {"strike": om.get("strike"), "expiry": om.get("expiry"), "kind": om.get("kind"),
                              "iv": om.get("iv"), "delta": om.get("delta"), "multiplier": om.get("multiplier"),
                              "underlying_entry": mp.underlying_entry, "entry_bid": om.get("bid"),
                              "entry_ask": om.get("ask"),
                              "exit_bid": mp.exit_quote[0] if mp.exit_quote else None,
                              "exit_ask": mp.exit_quote[1] if mp.exit_quote else None,
                              "levels_in": "underlying"}
        if closed:
            meta.update({"fees": round(fees or 0.0, 2), "gross_pnl": round(gross or 0.0, 2),
                         "exit_order_id": mp.exit_order_id, "exits_fired": mp.exit_fired})
        else:
            # everything a restarted executor needs to manage this position again
            meta.update({"entry_fees": round(mp.entry_fees, 2), "last_price": pos.current_price,
                         "last_price_time": now.isoformat(), "signal": mp.signal.to_dict(),
                         "instrument": mp.instrument, "entry_order_id": mp.entry_order_id,
                         "decision": {"instrument_type": mp.decision.instrument_type, "ticker": mp.decision.ticker,
                                      "leverage": mp.decision.leverage, "is_inverse": mp.decision.is_inverse,
                                      "etf_metadata": mp.decision.etf_metadata},
                         "underlying_entry": mp.underlying_entry, "stop_order_id": mp.stop_order_id})
        return {
            "signal_id": mp.signal.signal_id,
            "ticker": pos.ticker,
            "instrument_type": pos.instrument_type,
            "original_ticker": mp.signal.ticker,
            "leverage": pos.leverage,
            "direction": pos.direction,
            "trade_type": pos.trade_type,
            "entry_price": round(pos.entry_price, 4),
            "exit_price": round(exit_px, 4) if closed else None,
            "shares": mp.exit_filled_qty if closed else mp.open_qty,
            "stop_loss": round(pos.stop_loss, 4),
            "target_price": None if pos.target_price is None else round(pos.target_price, 4),
            "conviction": mp.signal.conviction,
            "status": "closed" if closed else "open",
            "exit_reason": mp.exit_reason if closed else None,
            "pnl": pnl if closed else None,
            "pnl_pct": round(pnl_pct, 6) if closed and pnl_pct is not None else None,
            "broker": self.config.broker_name,
            "order_id": mp.entry_order_id,
            "entry_time": pos.entry_time,
            "exit_time": now if closed else None,
            "metadata_json": json.dumps(meta),
        }

    # ── bars: marks, clouds, entries in progress, exits, equity curve ───────────────────────
    # A bar only updates state (last prices, clouds) and marks its minute as due. The minute's
    # decisions (exits, scale-ins, order expiry, equity sample) run once every bar of that minute
    # is in — every instrument's and every timeframe's — so an exit decided on the underlying's
    # bar is priced on the traded instrument's bar of the *same* minute, never on its previous one.
    # In a backtest the minute runs 1 ns after the bars, before the signals of that minute (2 ns
    # after their bar; the simulated venue settles the exits in between); live, ``bar_settle_ms`` after the first bar of the minute.
    def on_bar(self, bar: Bar) -> None:
        key = self._cloud_bar_types.get(bar.bar_type)
        if key is not None:  # a completed higher-timeframe bar of a followed symbol
            if self._update_cloud(key, bar) is not None:
                self._due_clouds[key] = bar.ts_event
                self._schedule_minute(bar.ts_event)
            return
        sym = self._bar_types.get(bar.bar_type)
        if sym is None:
            return
        close = float(bar.close.as_double())
        if not math.isfinite(close) or close <= 0:
            self.log.error(f"ignoring bar with bad close {close} for {sym}")
            return
        self.last_price[sym] = close
        self._last_bar[sym] = bar
        cloud_key = (sym, "1m")
        if cloud_key in self.trackers and self._update_cloud(cloud_key, bar) is not None:
            self._due_clouds[cloud_key] = bar.ts_event
        self._due_syms[sym] = bar.ts_event
        self._schedule_minute(bar.ts_event)

    def _schedule_minute(self, ts_event: int) -> None:
        if self._minute_alert is not None:
            return
        at = max(ts_event + 1, self.clock.timestamp_ns() + self.config.bar_settle_ms * 1_000_000)
        self._minute_seq += 1
        self._minute_alert = f"executor-minute-{self._minute_seq}"  # unique: never collides live
        self.clock.set_time_alert_ns(self._minute_alert, at, self._on_minute_alert)

    def _on_minute_alert(self, event=None) -> None:
        if event is not None and getattr(event, "name", None) != self._minute_alert:
            return  # cancelled after it was already due (a signal ran the minute first)
        self._minute_alert = None
        self._run_minute()

    def _run_minute_if_due(self) -> None:
        """Signals of a minute are decided after that minute's exits (replay and in-process alike)."""
        if self._due_syms or self._due_clouds:
            if self._minute_alert is not None:
                if self._minute_alert in self.clock.timer_names:
                    self.clock.cancel_timer(self._minute_alert)
                self._minute_alert = None
            self._run_minute()

    def _run_minute(self) -> None:
        due_syms = sorted(self._due_syms.items(), key=lambda kv: (kv[1], kv[0]))
        due_clouds = sorted(self._due_clouds.items(), key=lambda kv: (kv[1], kv[0]))
        self._due_syms.clear()
        self._due_clouds.clear()
        now = self.clock.utc_now()
        self._roll_session(now)
        in_session = self.calendar.is_open(now)
        for sym, _ts in due_syms:
            bar = self._last_bar[sym]
            for mp in list(self.pm.by_signal.values()):
                if mp.signal.ticker == sym:
                    if mp.position is not None:
                        mp.position.underlying_price = self.last_price[sym]
                    if mp.scale_in == "waiting":
                        self._check_scale_in(mp, bar, now)
                if mp.decision.ticker == sym and mp.entry_orders:
                    self._expire_entries(mp, now, in_session)
        printed = {sym for sym, _ts in due_syms}
        for mp in list(self.pm.by_signal.values()):
            if mp.entry_orders and mp.decision.ticker not in printed:
                # no trade of it this minute (illiquid, gappy data): no limit aging, but the
                # session close and the EOD cut-off still end a working entry
                self._expire_entries(mp, now, in_session, age=False)
        if not in_session:
            # no exit order leaves outside the session: cloud exits of buckets that closed with
            # the session (the 15:30-16:00 hour) are decided at the next open; price exits run
            # again on every bar anyway
            for key, _ts in due_clouds:
                self._deferred_clouds.add(key)
            self._settle_expired_options(now)
        else:
            for key in sorted(self._deferred_clouds):
                self._cloud_exits(key, now)
            self._deferred_clouds.clear()
            for key, _ts in due_clouds:
                self._cloud_exits(key, now)
            for sym, _ts in due_syms:
                self._price_exits(sym, now)
            # time exits (EOD, time stop, max hold) of positions whose instrument did not trade
            # this minute, at its last price
            for sym in sorted(self._position_syms() - printed):
                if sym in self.last_price:
                    self._price_exits(sym, now)
            self._ensure_protected(now)
        if due_syms:
            last_ts = max(ts for _s, ts in due_syms)
            if last_ts - self._last_equity_sample_ns >= self.config.equity_sample_minutes * NANOS_PER_MINUTE:
                self._last_equity_sample_ns = last_ts
                account = self.account_state(now)
                self.sink.record_equity(now, account.equity)
                if not self.kill_switch.is_active and self.kill_switch.check(account):
                    self._on_kill_switch(now)

    def _settle_expired_options(self, now: datetime) -> None:
        """Option contracts held to their expiry close settle there, at the final (intrinsic)
        quote, although the session is over: a settlement, not a trade the market must take."""
        for mp in list(self.pm.by_signal.values()):
            if mp.decision.instrument_type != "option" or not self._can_exit(mp):
                continue
            expiry = date.fromisoformat((mp.decision.etf_metadata or {})["expiry"])
            close = self.calendar.session_close(expiry)
            if close is not None and now >= close:
                self._evaluate_exit(mp, now)

    def _position_syms(self) -> set[str]:
        """The symbols whose bars drive the open positions' price exits (options: the underlying)."""
        return {mp.signal.ticker if mp.decision.instrument_type == "option" else mp.decision.ticker
                for mp in self.pm.by_signal.values() if self._can_exit(mp)}

    def _schedule_eod(self, session_open: datetime) -> None:
        """An alert at the session's EOD cut-off: intraday exits and working intraday entries are
        dealt with then even when no bar arrives (an illiquid instrument, a data outage live)."""
        cutoff = self.exit_monitor.eod_cutoff(session_open)
        if cutoff is None:
            return
        at = dt_to_unix_nanos(cutoff)
        if at <= self.clock.timestamp_ns():
            return
        self._eod_seq += 1
        self.clock.set_time_alert_ns(f"executor-eod-{self._eod_seq}", at, self._on_eod_alert)

    def _on_eod_alert(self, event=None) -> None:
        now = self.clock.utc_now()
        in_session = self.calendar.is_open(now)
        for mp in list(self.pm.by_signal.values()):
            if mp.entry_orders:
                self._expire_entries(mp, now, in_session, age=False)
        if in_session:
            for sym in sorted(self._position_syms()):
                if sym in self.last_price:
                    self._price_exits(sym, now)

    def _expire_entries(self, mp: ManagedPosition, now: datetime, in_session: bool, *, age: bool = True) -> None:
        """Working entry orders: cancelled when the session is over, for day trades and scalps
        also at the EOD cut-off (nothing intraday may be opened into the close), and limits after
        ``limit_entry_expire_bars`` bars of the traded instrument."""
        why = None
        if not in_session:
            why = "session closed with the entry order working"
        elif mp.signal.trade_type in ("day", "scalp") and self._past_eod_cutoff(now):
            why = "EOD cut-off reached with the entry order working"
        if why is None:
            if age:
                self._age_limit_orders(mp, now)
            return
        if mp.scale_in == "waiting":
            mp.scale_in = "skipped"
        for oid in list(mp.entry_orders):
            mp.order_bars.pop(oid, None)
            if self._cancel_if_open(oid):
                self.sink.record_event(now, "entry_cancelled", f"{mp.signal_id}: {why}", {"order_id": oid})

    def _past_eod_cutoff(self, now: datetime) -> bool:
        cutoff = self.exit_monitor.eod_cutoff(now)
        return cutoff is not None and now >= cutoff

    def _price_exits(self, sym: str, now: datetime) -> None:
        """Price exits on the traded instrument's bar (options: on the underlying's bar)."""
        close = self.last_price[sym]
        for mp in list(self.pm.by_signal.values()):
            if not self._can_exit(mp):
                continue
            if mp.decision.instrument_type == "option":
                if mp.signal.ticker == sym:
                    self._evaluate_exit(mp, now)
                continue
            if mp.decision.ticker != sym:
                continue
            mp.position.mark(close)
            decision = self.exit_monitor.evaluate(mp.position, current_price=close, now=now)
            if decision is not None:
                self._submit_exit(mp, decision.reason, list(decision.fired))

    def _update_cloud(self, key: tuple[str, str], bar: Bar) -> dict | None:
        """Feed the cloud tracker; returns the bar's row with cloud edges once warmed up."""
        tr = self.trackers[key]
        o, h, l, c = (float(bar.open.as_double()), float(bar.high.as_double()), float(bar.low.as_double()),
                      float(bar.close.as_double()))
        if not all(math.isfinite(x) and x > 0 for x in (o, h, l, c)):
            return None
        tr.update_fast(OHLCV(ts=ns_to_dt(bar.ts_event), open=o, high=h, low=l, close=c,
                             volume=float(bar.volume.as_double())))
        if not tr.warmed_up:
            return None
        f, pb, m = tr.i_fast, tr.i_pullback, tr.i_macro
        row = {"open": o, "high": h, "low": l, "close": c,
               "fast_upper": tr.upper[f], "fast_lower": tr.lower[f],
               "pullback_upper": tr.upper[pb], "pullback_lower": tr.lower[pb],
               "macro_upper": tr.upper[m], "macro_lower": tr.lower[m]}
        self.cloud_rows[key].append(row)
        return row

    def _can_exit(self, mp: ManagedPosition) -> bool:
        return (mp.position is not None and mp.open_qty > 0 and mp.exit_order_id is None
                and mp.signal_id not in self._exit_pending)

    def _cloud_exits(self, key: tuple[str, str], now: datetime) -> None:
        """All exits, cloud ones included, for positions on this underlying and timeframe."""
        sym, tf = key
        tr = self.trackers[key]
        rows = list(self.cloud_rows[key])
        for mp in list(self.pm.by_signal.values()):
            if mp.signal.ticker != sym or mp.signal.timeframe != tf or not self._can_exit(mp):
                continue
            self._evaluate_exit(mp, now, bars=rows, cloud_states={"fast": tr.states()[tr.i_fast]})

    def _evaluate_exit(self, mp: ManagedPosition, now: datetime, *, bars: list | None = None,
                       cloud_states: dict | None = None) -> None:
        extra: list[str] = []
        if mp.decision.instrument_type == "option":
            view, px, extra = self._option_view(mp, now)
            prem = self.last_price.get(mp.decision.ticker)
            if prem is not None and prem >= 0:
                mp.position.mark(prem)
        else:
            view = mp.position
            px = self.last_price.get(mp.decision.ticker, mp.position.current_price)
            view.mark(px)
        decision = self.exit_monitor.evaluate(view, current_price=px, now=now, bars=bars,
                                              cloud_states=cloud_states, on_underlying=True)
        fired = list(decision.fired) if decision is not None else []
        if "expired" in extra:
            # settlement: close at the expiry quote (intrinsic value), whatever else fired
            self._submit_exit(mp, "expired", ["expired"] + fired)
            return
        for e in extra:
            if e not in fired:
                fired.append(e)
        if not fired:
            return
        fired.sort(key=lambda c: EXIT_PRIORITY.get(c, 99))
        self._submit_exit(mp, fired[0], fired)

    def _age_limit_orders(self, mp: ManagedPosition, now: datetime) -> None:
        """A limit entry waits ``limit_entry_expire_bars`` bars *of the signal's timeframe* (5
        one-minute bars for a scalp, 5 ten-minute bars for a day trade, 5 hours for a swing —
        within the session), counted in one-minute bars of the traded instrument."""
        minutes = TIMEFRAME_MINUTES.get(mp.signal.timeframe, 1)
        for oid in list(mp.order_bars):
            mp.order_bars[oid] += 1
            if mp.order_bars[oid] > mp.plan.expire_bars * minutes:
                del mp.order_bars[oid]
                if self._cancel_if_open(oid):
                    self.sink.record_event(now, "limit_expired", f"{mp.signal_id}: limit entry unfilled after "
                                           f"{mp.plan.expire_bars} {mp.signal.timeframe} bars, cancelled",
                                           {"order_id": oid})

    def _check_scale_in(self, mp: ManagedPosition, bar: Bar, now: datetime) -> None:
        """The second half goes in on the first pullback to the pullback cloud that holds."""
        if mp.position is None or mp.entry_orders or not self._can_exit(mp):
            return  # first tranche not (fully) in yet, or the trade is on its way out
        d_u = 1 if mp.signal.direction == "long" else -1
        verdict = pullback_verdict(d_u, float(bar.low.as_double()), float(bar.high.as_double()),
                                   float(bar.close.as_double()),
                                   self._cloud_edges(mp.signal.ticker, mp.signal.timeframe, "pullback"))
        if verdict == "none":
            return
        late = mp.signal.trade_type in ("day", "scalp") and self.exit_monitor.check_eod_close(mp.position, now=now)
        if verdict == "breaks" or self.kill_switch.is_active or late or not self.calendar.is_open(now):
            mp.scale_in = "skipped"
            why = ("pullback closed through the cloud" if verdict == "breaks" else
                   "kill switch active" if self.kill_switch.is_active else "session (or EOD window) over")
            self.sink.record_event(now, "scale_in_skipped", f"{mp.signal_id}: {why}",
                                   {"reserved_shares": mp.plan.add_shares})
            return
        qty = min(mp.plan.add_shares, mp.plan.total_shares - mp.entry_filled_qty)
        if qty < 1:
            mp.scale_in = "skipped"
            return
        instrument = self.cache.instrument(InstrumentId.from_str(mp.instrument))
        side = OrderSide.BUY if mp.direction == "long" else OrderSide.SELL
        order = self.order_factory.market(
            instrument_id=instrument.id, order_side=side, quantity=Quantity.from_int(qty),
            time_in_force=TimeInForce.DAY, tags=[f"signal={mp.signal_id}", "role=add"])
        self.pm.add_entry_order(mp, order.client_order_id.value, qty, role="add")
        self.sink.record_event(now, "scale_in", f"{mp.signal_id}: pullback to the cloud held, adding {qty}",
                               {"order_id": order.client_order_id.value, "shares": qty})
        self.submit_order(order)

    def _submit_exit(self, mp: ManagedPosition, reason: str, fired: list[str]) -> None:
        """Leave the position: working entry orders and the resting stop are cancelled first (so
        the broker can never sell twice), then a market order closes the open quantity."""
        if mp.exit_order_id is not None or mp.signal_id in self._exit_pending:
            return
        mp.exit_reason, mp.exit_fired = reason, fired
        if mp.scale_in == "waiting":
            mp.scale_in = "skipped"
        for oid in list(mp.entry_orders):
            self._cancel_if_open(oid)
        self._exit_pending[mp.signal_id] = (reason, fired)
        if not self._cancel_if_open(mp.stop_order_id):
            self._send_exit(mp)
        # else: on_order_canceled of the stop sends the exit

    def _send_exit(self, mp: ManagedPosition) -> None:
        if mp.exit_order_id is not None or mp.open_qty <= 0:
            return
        instrument = self.cache.instrument(InstrumentId.from_str(mp.instrument))
        side = OrderSide.SELL if mp.direction == "long" else OrderSide.BUY
        order = self.order_factory.market(
            instrument_id=instrument.id, order_side=side, quantity=Quantity.from_int(mp.open_qty),
            time_in_force=TimeInForce.DAY, reduce_only=True,
            tags=[f"signal={mp.signal_id}", "role=exit", f"reason={mp.exit_reason}"])
        oid = order.client_order_id.value
        self.pm.link(mp, oid, "exit")
        if mp.decision.instrument_type == "option":
            q = self.cache.quote_tick(instrument.id)
            if q is not None:
                mp.exit_quote = (q.bid_price.as_double(), q.ask_price.as_double())
        if self.kill_switch.is_active:
            # HALTED denies every order: open a REDUCING window for this exit (it only reduces)
            self._reducing_orders.add(oid)
            self._set_trading_state("REDUCING", f"exit {oid} ({mp.exit_reason}) while halted")
        self.submit_order(order)
        self._maybe_halt()

    def _roll_session(self, now: datetime) -> None:
        session = self.calendar.session_for(now)
        if session is None:
            return
        open_, _close = session
        if self.session_open == open_:
            return
        previous = self.session_open
        self.session_open = open_
        if previous is not None:
            self._close_day(previous)
        self.starting_equity = self.equity()
        self.daily_trades = 0
        self._schedule_eod(open_)
        self._poll_control(now)
        ks = self.kill_switch
        if (ks.is_active and ks.code == "daily_loss_limit"
                and (ks.activated_at is None or ks.activated_at < open_)):
            # the daily-loss latch lasts until the next session open; every other trigger waits
            # for the operator
            self._resume(now, "daily loss latch reset at session open", by="session_open")

    def _close_day(self, session_open: datetime) -> None:
        """Hand the finished session to the sink (the journal writes its daily_pnl row)."""
        from strategies.trade_executor.calendar import new_york_date

        close = self.calendar.session_close(session_open)
        # the New York date the session ends on (a UTC-midnight session of a 24/7 calendar opens
        # on the previous New York date)
        day = (new_york_date(close - timedelta(microseconds=1)) if close is not None
               else new_york_date(session_open))
        try:
            self.sink.record_daily_pnl(day, {"broker": self.config.broker_name})
        except Exception as e:  # noqa: BLE001 - a missing summary must not stop trading
            self.log.error(f"daily_pnl for {day} not written: {e}")

    # ── kill switch: trip, halt, persist, resume ───────────────────────────────────────────
    def _set_trading_state(self, state: str, why: str) -> None:
        if state == self.trading_state:
            return
        self.trading_state = state
        if TRADING_STATE_ENDPOINT in self.msgbus.endpoints():
            self.msgbus.send(TRADING_STATE_ENDPOINT, state)
        self.sink.record_event(self.clock.utc_now(), "trading_state", f"{state}: {why}", {"state": state})

    def _maybe_halt(self) -> None:
        """Once every kill-switch exit has passed the RiskEngine, go from REDUCING to HALTED."""
        waiting = any(self.pm.by_signal.get(sid) is not None and self.pm.by_signal[sid].exit_order_id is None
                      for sid in self._exit_pending)  # exits waiting for their stop's cancel
        if self.kill_switch.is_active and not self._reducing_orders and not waiting \
                and self.trading_state != "HALTED":
            self._set_trading_state("HALTED", f"kill switch: {self.kill_switch.reason}")

    def _on_kill_switch(self, now: datetime, *, persist: bool = True) -> None:
        ks = self.kill_switch
        reason = ks.reason or "kill_switch"
        account = self.account_state(now)
        data = {"code": ks.code, "reason": reason, "equity": round(account.equity, 2),
                "daily_pnl": round(account.daily_pnl, 2), "starting_equity": round(account.starting_equity or 0, 2),
                "open_positions": len(account.open_positions), "pending_orders": len(account.pending_orders)}
        self.sink.record_event(now, "kill_switch", reason, data)
        self.log.warning(f"KILL SWITCH: {reason}")
        if persist and self.control is not None:
            try:
                self.control.activate_kill_switch(reason, now=now, by=f"executor:{self.id}")
            except Exception as e:  # noqa: BLE001 - halting matters more than the latch write
                self.log.error(f"kill-switch latch not persisted: {e}")
                self.sink.record_event(now, "kill_switch_persist_failed", str(e))
        t = send_alert(self.config.alert_webhook_url, {"event": "kill_switch", "ts": now.isoformat(),
                                                        "trader_id": str(self.trader_id), **data})
        if t is not None:
            self.alert_threads.append(t)
        self._set_trading_state("REDUCING", f"kill switch: {reason}")
        for mp in list(self.pm.by_signal.values()):
            if mp.scale_in == "waiting":
                mp.scale_in = "skipped"
            for oid in list(mp.entry_orders):
                self._cancel_if_open(oid)
        for mp in list(self.pm.by_signal.values()):
            if mp.signal.trade_type in ("day", "scalp") and self._can_exit(mp):
                self._submit_exit(mp, "kill_switch", ["kill_switch"])
        self._maybe_halt()

    def _resume(self, now: datetime, why: str, *, by: str, persist: bool = True) -> None:
        reason = self.kill_switch.reason
        self.kill_switch.deactivate(now=now)
        self._reducing_orders.clear()
        if persist and self.control is not None:
            try:
                self.control.deactivate_kill_switch(now=now, by=by)
            except Exception as e:  # noqa: BLE001
                self.log.error(f"kill-switch resume not persisted: {e}")
        self.sink.record_event(now, "kill_switch_reset", why, {"previous_reason": reason, "by": by})
        self.log.warning(f"kill switch reset: {why}")
        self._set_trading_state("ACTIVE", why)

    def _restore_latch(self) -> None:
        if self.control is None:
            return
        latch = self.control.kill_switch()
        if latch.active:
            now = self.clock.utc_now()
            self.kill_switch.activate(latch.reason or "manual: restored latch", now=latch.activated_at or now)
            self.sink.record_event(now, "kill_switch_restored",
                                   f"latched since {latch.activated_at}: {latch.reason}",
                                   {"reason": latch.reason})
            self.log.warning(f"kill switch latched since {latch.activated_at}: {latch.reason}; "
                             "trading stays halted until an operator resumes it")
            self._set_trading_state("HALTED", f"restored latch: {latch.reason}")

    def _load_decided_signals(self) -> None:
        """After a restart: the signal ids this run id already decided (the journal's
        signal_decisions, live: run id "live"), so a re-sent one is refused ``duplicate_signal``.
        Bounded to the last ``DUPLICATE_SIGNAL_LOOKBACK`` (30 days) before now: a signal is stale
        long before then. A sink keeping nothing across processes (ExecutionLog) has none."""
        try:
            ids = self.sink.get_decided_signal_ids(self.clock.utc_now() - DUPLICATE_SIGNAL_LOOKBACK) or {}
        except Exception as e:  # noqa: BLE001
            self.log.error(f"decided signal ids not readable from the journal: {e}")
            return
        for sid, ts in ids.items():
            if sid not in self.decided_signals or ts < self.decided_signals[sid]:
                self.decided_signals[sid] = ts

    def _restore_positions(self) -> None:
        """After a restart: take over the positions the journal still has open (this run id).

        Each comes back with its signal, levels and entry, its protective stop if it still rests
        at the venue (found by its tags in the reconciled cache; otherwise a new one is placed),
        and its exits managed again. A position the venue no longer holds (closed while we were
        away, e.g. by its stop) is closed in the journal at the venue's closing price."""
        try:
            rows = self.sink.get_open_trades()
        except Exception as e:  # noqa: BLE001
            self.log.error(f"open trades not readable from the journal: {e}")
            return
        now = self.clock.utc_now()
        for row in rows:
            meta = row.metadata
            if "signal" not in meta or row.signal_id in self.pm.by_signal:
                continue
            try:
                mp = self._rebuild(row, meta)
            except (ValueError, KeyError) as e:
                self.sink.record_event(now, "restore_failed", f"{row.signal_id}: {e}", {"trade_id": row.id})
                continue
            iid = InstrumentId.from_str(mp.instrument)
            held = sum(abs(p.signed_qty) for p in self.cache.positions_open(instrument_id=iid))
            if held + 1e-9 < mp.open_qty:
                self._close_offline(mp, iid, held, now)
                continue
            stop_id = meta.get("stop_order_id")
            if stop_id:
                order = self.cache.order(ClientOrderId(stop_id))
                if order is not None and order.is_open:
                    self.pm.link(mp, stop_id, "stop")
            if mp.decision.instrument_type == "option":
                self.subscribe_quote_ticks(iid)
            self.sink.record_event(now, "position_restored",
                                   f"{mp.signal_id}: {mp.open_qty} {mp.decision.ticker} @ {mp.position.entry_price} "
                                   f"(stop order {'found' if mp.stop_order_id else 'replaced'})",
                                   {"stop_order_id": mp.stop_order_id})
            if mp.stop_order_id is None:
                self._protect(mp)

    def _rebuild(self, row, meta: dict) -> ManagedPosition:
        from strategies.trade_executor.position_manager import EntryPlan, Fill

        signal = TradeSignal.from_dict(meta["signal"])
        d = meta.get("decision") or {}
        decision = InstrumentDecision(
            instrument_type=d.get("instrument_type", row.instrument_type), ticker=d.get("ticker", row.ticker),
            original_signal_ticker=signal.ticker, leverage=float(d.get("leverage", row.leverage or 1.0)),
            is_inverse=bool(d.get("is_inverse", False)), etf_metadata=d.get("etf_metadata"), tradeable=True,
            reason="restored from the journal")
        plan = EntryPlan("market", row.shares, row.shares, "market", None, None, 0, "restored from the journal")
        mp = ManagedPosition(signal=signal, decision=decision, plan=plan,
                             instrument=meta.get("instrument") or f"{row.ticker}.{self.venue}",
                             direction=row.direction, stop_loss=float(row.stop_loss),
                             target_price=row.target_price, entry_order_id=row.order_id or "",
                             underlying_entry=meta.get("underlying_entry"))
        mp.position = Position(
            ticker=row.ticker, direction=row.direction, entry_price=row.entry_price,
            current_price=float(meta.get("last_price") or row.entry_price), shares=row.shares,
            stop_loss=float(row.stop_loss), target_price=row.target_price, entry_time=row.entry_time,
            signal_id=signal.signal_id, trade_type=row.trade_type, instrument_type=row.instrument_type,
            leverage=float(row.leverage or 1.0), underlying=signal.ticker, sector=sector_of(signal.ticker),
            multiplier=float(meta.get("multiplier") or 1.0),
            delta=(decision.etf_metadata or {}).get("delta") if decision.instrument_type == "option" else None,
        )
        mp.entry_filled_qty = row.shares
        mp.entry_value = row.entry_price * row.shares
        mp.entry_fees = float(meta.get("entry_fees") or 0.0)
        mp.order_roles[mp.entry_order_id] = "entry"
        mp.fills.append(Fill(mp.entry_order_id, "entry", row.shares, row.entry_price, mp.entry_fees, row.entry_time))
        self.pm.by_signal[signal.signal_id] = mp
        self.pm.by_order[mp.entry_order_id] = mp
        return mp

    def _close_offline(self, mp: ManagedPosition, iid: InstrumentId, held: float, now: datetime) -> None:
        """The venue holds less than the journal's open position: it was closed while the
        executor was down. Record the round trip at the venue's closing price."""
        closed = [p for p in self.cache.positions_closed(instrument_id=iid)]
        px = closed[-1].avg_px_close if closed else None
        if px is None or not math.isfinite(float(px)) or held > 0:
            self.sink.record_event(now, "restore_mismatch",
                                   f"{mp.signal_id}: journal has {mp.open_qty} open, venue holds {held}; "
                                   "not managed, check the account", {"held": held})
            self.pm.by_signal.pop(mp.signal_id, None)
            return
        mp.exit_reason, mp.exit_fired = "closed_while_offline", ["closed_while_offline"]
        mp.exit_filled_qty = mp.open_qty
        mp.exit_value = float(px) * mp.exit_filled_qty
        self.sink.record_event(now, "position_closed_offline",
                               f"{mp.signal_id}: the venue closed it at {float(px):.4f} while the executor was down")
        self._close_round_trip(mp, now)

    def _poll_control(self, now: datetime) -> None:
        """Pick up operator actions on the executor_control latch (trip or resume)."""
        if self.control is None:
            return
        try:
            latch = self.control.kill_switch()
        except Exception as e:  # noqa: BLE001 - keep trading state as is; retry next poll
            self.log.error(f"executor_control not readable: {e}")
            return
        ks = self.kill_switch
        if latch.active and not ks.is_active:
            ks.activate(latch.reason or "manual: operator", now=now)
            self._on_kill_switch(now, persist=False)
        elif not latch.active and ks.is_active:
            self._resume(now, f"resumed by operator (latch was: {ks.reason})", by="operator", persist=False)

    def _on_poll_timer(self, event) -> None:
        now = ns_to_dt(event.ts_event)
        self._poll_control(now)
        if not self.kill_switch.is_active and self.kill_switch.check(self.account_state(now)):
            self._on_kill_switch(now)

    def on_order_accepted(self, event) -> None:
        """A protective stop accepted by the venue: if more of the entry filled while it was on
        its way (a stop cannot be resized before it is accepted), resize it now."""
        mp = self.pm.by_order.get(event.client_order_id.value)
        if mp is not None and mp.stop_order_id == event.client_order_id.value and not mp.closed:
            self._protect(mp)

    def _ensure_protected(self, now: datetime) -> None:
        """Every open position has its protective stop working (or, where the venue takes none,
        the strategy's own bar-close stop): a position found without one gets it again."""
        if not self.config.stops_at_venue:
            return
        for mp in list(self.pm.by_signal.values()):
            if (mp.decision.instrument_type == "option" or not self._can_exit(mp)
                    or mp.stop_order_id is not None or (mp.stop_retried and mp.entry_orders)):
                continue
            self.sink.record_event(now, "stop_replaced", f"{mp.signal_id}: no protective stop working "
                                   f"for {mp.open_qty}; placing it again", {"open_qty": mp.open_qty})
            self._protect(mp)

    def on_order_submitted(self, event) -> None:
        oid = event.client_order_id.value
        if oid in self._reducing_orders:
            self._reducing_orders.discard(oid)
            self._maybe_halt()

    def on_stop(self) -> None:
        """Stopping: working entry orders are cancelled (nothing new may open while nobody
        manages it); protective stops stay resting at the venue (a DAY stop until the close, a
        swing's GTC stop until a restarted executor takes the position over), so an open
        position is never left bare by a stop or restart. No order is sent after this."""
        now = self.clock.utc_now()
        self._stopping = True
        for name in (self._minute_alert,):
            if name is not None and name in self.clock.timer_names:
                self.clock.cancel_timer(name)
        self._minute_alert = None
        for mp in list(self.pm.by_signal.values()):
            if mp.scale_in == "waiting":
                mp.scale_in = "skipped"
            for oid in list(mp.entry_orders):
                if self._cancel_if_open(oid):
                    self.sink.record_event(now, "entry_cancelled", f"{mp.signal_id}: executor stopping "
                                           "with the entry order working", {"order_id": oid})
        if self.session_open is not None:
            self._close_day(self.session_open)

    # ── journaling ───────────────────────────────────────────────────────────────────────────
    def _record(self, now: datetime, signal: TradeSignal | None, *, approved: bool, code: str | None,
                reason: str | None, decision: InstrumentDecision | None = None,
                details: dict | None = None, shares: int = 0, order_ids: list[str] | None = None,
                raw: TradeSignalData | None = None) -> None:
        if signal is not None and signal.signal_id and code != "invalid_signal":
            self.decided_signals.setdefault(signal.signal_id, now)
        self.sink.record_decision(DecisionRecord(
            ts=now,
            signal_id=signal.signal_id if signal else (raw.signal_id if raw else ""),
            ticker=signal.ticker if signal else (raw.ticker if raw else ""),
            timeframe=signal.timeframe if signal else (raw.timeframe if raw else ""),
            signal_type=signal.signal_type.value if signal else (raw.signal_type if raw else ""),
            direction=signal.direction if signal else (raw.direction if raw else ""),
            conviction=signal.conviction if signal else (raw.conviction if raw else 0),
            approved=approved,
            reason_code=code,
            reason=reason,
            instrument=decision.ticker if decision else None,
            instrument_type=decision.instrument_type if decision else None,
            shares=shares,
            details=details or {},
            order_ids=order_ids or [],
        ))


def _size_dict(size: PositionSize) -> dict[str, Any]:
    return {"shares": size.shares, "notional": round(size.notional, 2), "risk_amount": round(size.risk_amount, 2),
            "conviction_multiplier": size.conviction_multiplier, "capped_by": size.capped_by,
            "raw_shares": round(size.raw_shares, 4), "stop_distance": round(size.stop_distance, 4)}


__all__ = ["ExecutorStrategy", "ExecutorStrategyConfig", "ManagedPosition"]
