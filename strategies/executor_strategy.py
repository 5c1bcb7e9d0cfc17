"""The executor as a NautilusTrader Strategy: the imperative shell around the functional core.

Data path: TradeSignalData on the message bus -> InstrumentRouter -> sizer -> RiskGate -> market
entry order -> fills -> managed position -> ExitMonitor on every bar -> exit order -> round trip
recorded. Every signal's fate (approved or rejected, with the reason code and the numbers) goes to
the execution sink. The same class runs in a BacktestEngine and in a live TradingNode: it reads
only engine state (cache, portfolio, clock) and never the wall clock.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from nautilus_trader.config import StrategyConfig
from nautilus_trader.model.data import Bar, BarType
from nautilus_trader.model.enums import OrderSide, TimeInForce
from nautilus_trader.model.identifiers import ClientId, ClientOrderId, InstrumentId, Venue
from nautilus_trader.model.objects import Quantity
from nautilus_trader.trading.strategy import Strategy

from strategies.execution_log import DecisionRecord, ExecutionLog, ExecutionSink
from strategies.risk_control import (
    BROKER_STATUS_TOPIC,
    TRADING_STATE_ENDPOINT,
    BrokerStatus,
    send_alert,
)
from strategies.signal_data import TRADE_SIGNAL_DATA_TYPE, TradeSignalData
from strategies.trade_executor import (
    AccountState,
    ExecutorConfig,
    ExitMonitor,
    InstrumentDecision,
    InstrumentRouter,
    KillSwitch,
    LeveragedETFSizer,
    MarketCalendar,
    PendingOrder,
    Position,
    PositionSize,
    PositionSizer,
    RiskGate,
    SignalType,
    TradeSignal,
)
from strategies.trade_executor.etf_catalog import sector_of

NANOS_PER_MINUTE = 60_000_000_000


def ns_to_dt(ns: int) -> datetime:
    return datetime.fromtimestamp(ns / 1e9, tz=timezone.utc)


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
    # Operator state (executor_control): polled every N seconds of engine time when set (live),
    # otherwise read at start and at each session open (backtests).
    control_poll_seconds: float | None = None
    alert_webhook_url: str | None = None  # kill-switch alerts are POSTed here as JSON (optional)


@dataclass
class ManagedPosition:
    """An executor-owned position: the core Position plus the links to orders and signal."""

    position: Position
    instrument_id: InstrumentId
    signal: TradeSignal
    decision: InstrumentDecision
    entry_order_id: str
    entry_fees: float = 0.0
    exit_fees: float = 0.0
    exit_order_id: str | None = None
    exit_reason: str | None = None
    exit_fired: list[str] = field(default_factory=list)
    exit_filled_qty: int = 0
    exit_value: float = 0.0  # sum(px * qty) of exit fills
    entry_filled_qty: int = 0
    entry_value: float = 0.0


@dataclass
class PendingEntry:
    order_id: str
    instrument_id: InstrumentId
    signal: TradeSignal
    decision: InstrumentDecision
    size: PositionSize
    pending: PendingOrder
    stop_loss: float
    target_price: float | None


class ExecutorStrategy(Strategy):
    """The executor. ``sink`` receives every record (ExecutionLog, JournalSink, TeeSink);
    ``control`` is the executor_control store (ControlStore or anything with kill_switch(),
    activate_kill_switch(reason, now=, by=), deactivate_kill_switch(now=, by=)): with it the
    kill-switch latch survives restarts and the operator can trip / resume it from outside."""

    def __init__(self, config: ExecutorStrategyConfig, sink: ExecutionSink | None = None,
                 control: Any = None) -> None:
        super().__init__(config)
        self.xconfig = ExecutorConfig(**dict(config.executor))
        self.venue = Venue(config.venue)
        self.sink: ExecutionSink = sink if sink is not None else ExecutionLog()
        self.calendar = MarketCalendar(self.xconfig.calendar)
        self.router = InstrumentRouter(
            self.xconfig.instrument_mode,
            min_etf_daily_volume=self.xconfig.min_etf_daily_volume,
            prefer_3x_for_day_trades=self.xconfig.prefer_3x_for_day_trades,
        )
        self.sizer = PositionSizer(self.xconfig)
        self.etf_sizer = LeveragedETFSizer(self.xconfig)
        self.gate = RiskGate(self.xconfig, calendar=self.calendar, buying_power_includes_pending=True)
        self.exit_monitor = ExitMonitor(self.xconfig, calendar=self.calendar)
        self.kill_switch = KillSwitch(self.xconfig)
        self.positions_by_signal: dict[str, ManagedPosition] = {}
        self.positions_by_order: dict[str, ManagedPosition] = {}
        self.pending: dict[str, PendingEntry] = {}
        self.last_price: dict[str, float] = {}  # ticker -> last 1m close
        self.session_open: datetime | None = None
        self.starting_equity: float | None = None
        self.daily_trades = 0
        self.recent_trade_pnl_pcts: list[float] = []
        self.signals_received = 0
        self._last_equity_sample_ns = 0
        self._bar_types: dict[BarType, str] = {}
        self.control = control
        self.trading_state = "ACTIVE"  # what this strategy last asked the RiskEngine for
        self._reducing_orders: set[str] = set()  # exits let through REDUCING before HALTED
        self._broker_connected = True
        self._last_broker_contact_ns: int | None = None
        self.alert_threads: list = []

    # ── lifecycle ────────────────────────────────────────────────────────────────────────────
    def on_start(self) -> None:
        for sym in self.config.symbols:
            bar_type = BarType.from_str(f"{sym}.{self.venue}-{self.config.bar_spec}")
            if self.cache.instrument(bar_type.instrument_id) is None:
                self.log.warning(f"no instrument {bar_type.instrument_id} in cache; not following")
                continue
            self._bar_types[bar_type] = sym
            self.subscribe_bars(bar_type)
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

    def _unrealized(self) -> float:
        total = 0.0
        for mp in self.positions_by_signal.values():
            px = self.last_price.get(mp.position.ticker)
            if px is not None and mp.position.shares > 0:
                mp.position.mark(px)
            total += mp.position.unrealized_pnl or 0.0
        return total

    def equity(self) -> float:
        return self._balance() + self._unrealized()

    def account_state(self, now: datetime) -> AccountState:
        equity = self.equity()
        positions = [mp.position for mp in self.positions_by_signal.values() if mp.position.shares > 0]
        gross = sum(p.market_value for p in positions)
        pending = [pe.pending for pe in self.pending.values()]
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
        self.signals_received += 1
        now = self.clock.utc_now()
        try:
            signal = data.to_signal()
        except ValueError as e:
            self._record(now, None, approved=False, code="invalid_signal", reason=f"invalid_signal: {e}",
                         raw=data)
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
        instrument_id = InstrumentId.from_str(f"{decision.ticker}.{self.venue}")
        instrument = self.cache.instrument(instrument_id)
        if decision.instrument_type == "option" or instrument is None:
            why = (f"no_instrument: {decision.instrument_type} {decision.ticker} is not available "
                   f"at {self.venue} in this run")
            self._record(now, signal, approved=False, code="no_instrument", reason=why, decision=decision)
            return
        price = self.last_price.get(decision.ticker)
        if decision.instrument_type == "stock":
            price = price if price is not None else signal.entry_price
            size = self.sizer.calculate(signal, account, price=price)
        else:
            if price is None:
                self._record(now, signal, approved=False, code="no_instrument",
                             reason=f"no_instrument: no price yet for {decision.ticker}", decision=decision)
                return
            etf = self.router.select_etf(signal)
            size = self.etf_sizer.calculate(signal, etf, account, etf_price=price)

        risk = self.gate.validate(signal, account, decision=decision, size=size, price=price,
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
        order_id = self._submit_entry(signal, decision, instrument, shares, size, price)
        self._record(now, signal, approved=True, code=None, reason=None, decision=decision,
                     details=details, shares=shares, order_ids=[order_id])

    def _submit_entry(self, signal: TradeSignal, decision: InstrumentDecision, instrument, shares: int,
                      size: PositionSize, price: float) -> str:
        # Leveraged ETFs are always bought (bull for long signals, inverse for short ones).
        position_direction = "long" if decision.instrument_type == "leveraged_etf" else signal.direction
        side = OrderSide.BUY if position_direction == "long" else OrderSide.SELL
        order = self.order_factory.market(
            instrument_id=instrument.id,
            order_side=side,
            quantity=Quantity.from_int(shares),
            time_in_force=TimeInForce.DAY,
            tags=[f"signal={signal.signal_id}", "role=entry"],
        )
        stop, target = self._levels_for(signal, decision, price, position_direction)
        oid = order.client_order_id.value
        self.pending[oid] = PendingEntry(
            order_id=oid, instrument_id=instrument.id, signal=signal, decision=decision, size=size,
            pending=PendingOrder(ticker=decision.ticker, direction=position_direction, shares=shares,
                                 price=price, signal_id=signal.signal_id, underlying=signal.ticker,
                                 sector=sector_of(signal.ticker), leverage=decision.leverage,
                                 instrument_type=decision.instrument_type),
            stop_loss=stop, target_price=target,
        )
        self.submit_order(order)
        return oid

    def _levels_for(self, signal: TradeSignal, decision: InstrumentDecision, price: float,
                    position_direction: str) -> tuple[float, float | None]:
        """Stop and target in the traded instrument's prices.

        Stocks use the signal's levels. For a leveraged ETF (always held long) a move of d in the
        underlying moves the fund by |L|*d in its favour or against it, so the stop sits |L|*d_stop
        below the ETF price and the target |L|*d_target above it.
        """
        if decision.instrument_type != "leveraged_etf":
            return signal.stop_loss, signal.target_price
        lev = abs(decision.leverage)
        d_stop = signal.stop_distance / signal.entry_price
        stop = price * (1.0 - lev * d_stop)
        target = None
        if signal.target_price is not None:
            d_target = abs(signal.target_price - signal.entry_price) / signal.entry_price
            target = price * (1.0 + lev * d_target)
        return max(stop, 0.01), target

    # ── fills ────────────────────────────────────────────────────────────────────────────────
    def on_order_filled(self, event) -> None:
        oid = event.client_order_id.value
        qty = int(event.last_qty.as_double())
        px = float(event.last_px.as_double())
        fee = float(event.commission.as_double()) if event.commission is not None else 0.0
        now = ns_to_dt(event.ts_event)
        if oid in self.pending:
            pe = self.pending[oid]
            mp = self.positions_by_signal.get(pe.signal.signal_id)
            if mp is None:
                pos = Position(
                    ticker=pe.decision.ticker, direction=pe.pending.direction, entry_price=px,
                    current_price=px, shares=0, stop_loss=pe.stop_loss, target_price=pe.target_price,
                    entry_time=now, signal_id=pe.signal.signal_id, trade_type=pe.signal.trade_type,
                    instrument_type=pe.decision.instrument_type, leverage=pe.decision.leverage,
                    underlying=pe.signal.ticker, sector=sector_of(pe.signal.ticker),
                    underlying_price=self.last_price.get(pe.signal.ticker, pe.signal.entry_price),
                )
                mp = ManagedPosition(position=pos, instrument_id=pe.instrument_id, signal=pe.signal,
                                     decision=pe.decision, entry_order_id=oid)
                self.positions_by_signal[pe.signal.signal_id] = mp
                self.positions_by_order[oid] = mp
                self.daily_trades += 1
            mp.entry_filled_qty += qty
            mp.entry_value += px * qty
            mp.entry_fees += fee
            mp.position.shares = mp.entry_filled_qty
            mp.position.entry_price = mp.entry_value / mp.entry_filled_qty
            mp.position.mark(self.last_price.get(mp.position.ticker, px))
            pe.pending.shares -= qty
            if pe.pending.shares <= 0:
                del self.pending[oid]
            record_open = getattr(self.sink, "record_open_trade", None)
            if record_open is not None:
                # durable before we move on: a crash after this fill cannot lose it
                record_open(self._trade_row(mp, now, closed=False))
            return
        mp = self.positions_by_order.get(oid)
        if mp is not None and oid == mp.exit_order_id:
            mp.exit_filled_qty += qty
            mp.exit_value += px * qty
            mp.exit_fees += fee
            if mp.exit_filled_qty >= mp.entry_filled_qty:
                self._close_round_trip(mp, now)

    def on_order_rejected(self, event) -> None:
        self._entry_failed(event.client_order_id.value, f"rejected by venue: {event.reason}")

    def on_order_denied(self, event) -> None:
        self._entry_failed(event.client_order_id.value, f"denied by risk engine: {event.reason}")

    def on_order_canceled(self, event) -> None:
        self._entry_failed(event.client_order_id.value, "canceled")

    def on_order_expired(self, event) -> None:
        self._entry_failed(event.client_order_id.value, "expired")

    def _entry_failed(self, oid: str, why: str) -> None:
        if oid in self._reducing_orders:
            self._reducing_orders.discard(oid)
            self._maybe_halt()
        pe = self.pending.pop(oid, None)
        if pe is not None:
            self.sink.record_event(self.clock.utc_now(), "entry_failed",
                                   f"{pe.signal.signal_id}: {why}", {"order_id": oid})
            return
        mp = self.positions_by_order.get(oid)
        if mp is not None and oid == mp.exit_order_id:
            # The exit did not go through: the position is still open, try again on the next bar.
            self.sink.record_event(self.clock.utc_now(), "exit_failed", f"{mp.signal.signal_id}: {why}",
                                   {"order_id": oid})
            mp.exit_order_id = None

    def _close_round_trip(self, mp: ManagedPosition, now: datetime) -> None:
        pos = mp.position
        exit_px = mp.exit_value / mp.exit_filled_qty
        gross = (exit_px - pos.entry_price) * mp.entry_filled_qty * pos.sign * pos.multiplier
        fees = mp.entry_fees + mp.exit_fees
        pnl = round(gross - fees, 2)
        cost = pos.entry_price * mp.entry_filled_qty * pos.multiplier
        pnl_pct = pnl / cost if cost else 0.0
        self.recent_trade_pnl_pcts.append(pnl_pct)
        del self.recent_trade_pnl_pcts[:-20]
        self.sink.record_trade(self._trade_row(mp, now, closed=True, exit_px=exit_px, pnl=pnl,
                                               pnl_pct=pnl_pct, fees=fees, gross=gross))
        del self.positions_by_signal[mp.signal.signal_id]

    def _trade_row(self, mp: ManagedPosition, now: datetime, *, closed: bool, exit_px: float | None = None,
                   pnl: float | None = None, pnl_pct: float | None = None, fees: float | None = None,
                   gross: float | None = None) -> dict[str, Any]:
        """A trade_executions row (TRADE_COLUMNS): ``open`` after entry fills, ``closed`` at the end."""
        pos = mp.position
        meta: dict[str, Any] = {
            "signal_direction": mp.signal.direction, "signal_type": mp.signal.signal_type.value,
            "timeframe": mp.signal.timeframe, "multiplier": pos.multiplier,
            "underlying": pos.underlying, "sector": pos.sector,
        }
        if closed:
            meta.update({"fees": round(fees or 0.0, 2), "gross_pnl": round(gross or 0.0, 2),
                         "exit_order_id": mp.exit_order_id, "exits_fired": mp.exit_fired})
        else:
            meta.update({"entry_fees": round(mp.entry_fees, 2), "last_price": pos.current_price,
                         "last_price_time": now.isoformat()})
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
            "shares": mp.entry_filled_qty,
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

    # ── bars: marks, exits, session roll, equity curve ───────────────────────────────────────
    def on_bar(self, bar: Bar) -> None:
        sym = self._bar_types.get(bar.bar_type)
        if sym is None:
            return
        close = float(bar.close.as_double())
        if not math.isfinite(close) or close <= 0:
            self.log.error(f"ignoring bar with bad close {close} for {sym}")
            return
        self.last_price[sym] = close
        now = ns_to_dt(bar.ts_event)
        self._roll_session(now)
        for mp in list(self.positions_by_signal.values()):
            if mp.position.ticker != sym and mp.position.underlying != sym:
                continue
            if mp.position.underlying == sym:
                mp.position.underlying_price = close
            if mp.position.ticker != sym or mp.exit_order_id is not None or mp.position.shares <= 0:
                continue
            mp.position.mark(close)
            exit_decision = self.exit_monitor.evaluate(mp.position, current_price=close, now=now)
            if exit_decision is not None:
                self._submit_exit(mp, exit_decision.reason, list(exit_decision.fired))
        if bar.ts_event - self._last_equity_sample_ns >= self.config.equity_sample_minutes * NANOS_PER_MINUTE:
            self._last_equity_sample_ns = bar.ts_event
            account = self.account_state(now)
            self.sink.record_equity(now, account.equity)
            if not self.kill_switch.is_active and self.kill_switch.check(account):
                self._on_kill_switch(now)

    def _submit_exit(self, mp: ManagedPosition, reason: str, fired: list[str]) -> None:
        instrument = self.cache.instrument(mp.instrument_id)
        side = OrderSide.SELL if mp.position.direction == "long" else OrderSide.BUY
        order = self.order_factory.market(
            instrument_id=instrument.id,
            order_side=side,
            quantity=Quantity.from_int(mp.entry_filled_qty - mp.exit_filled_qty),
            time_in_force=TimeInForce.DAY,
            reduce_only=True,
            tags=[f"signal={mp.signal.signal_id}", f"role=exit", f"reason={reason}"],
        )
        mp.exit_order_id = order.client_order_id.value
        mp.exit_reason = reason
        mp.exit_fired = fired
        self.positions_by_order[mp.exit_order_id] = mp
        if self.kill_switch.is_active:
            # HALTED denies every order: open a REDUCING window for this exit (it only reduces)
            self._reducing_orders.add(mp.exit_order_id)
            self._set_trading_state("REDUCING", f"exit {mp.exit_order_id} ({reason}) while halted")
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
        self._poll_control(now)
        ks = self.kill_switch
        if (ks.is_active and ks.code == "daily_loss_limit"
                and (ks.activated_at is None or ks.activated_at < open_)):
            # the daily-loss latch lasts until the next session open; every other trigger waits
            # for the operator
            self._resume(now, "daily loss latch reset at session open", by="session_open")

    def _close_day(self, session_open: datetime) -> None:
        """Write the finished session's daily_pnl row when the sink keeps one (the journal)."""
        write = getattr(self.sink, "record_daily_pnl", None)
        if write is None:
            return
        from strategies.trade_executor.calendar import et_date

        day = et_date(session_open)
        try:
            write(day, {"broker": self.config.broker_name})
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
        if self.kill_switch.is_active and not self._reducing_orders and self.trading_state != "HALTED":
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
        for oid in list(self.pending):
            order = self.cache.order(ClientOrderId(oid))
            if order is not None and order.is_open:
                self.cancel_order(order)
        for mp in list(self.positions_by_signal.values()):
            if mp.position.trade_type in ("day", "scalp") and mp.exit_order_id is None and mp.position.shares > 0:
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

    def on_order_submitted(self, event) -> None:
        oid = event.client_order_id.value
        if oid in self._reducing_orders:
            self._reducing_orders.discard(oid)
            self._maybe_halt()

    def on_stop(self) -> None:
        if self.session_open is not None:
            self._close_day(self.session_open)

    # ── journaling ───────────────────────────────────────────────────────────────────────────
    def _record(self, now: datetime, signal: TradeSignal | None, *, approved: bool, code: str | None,
                reason: str | None, decision: InstrumentDecision | None = None,
                details: dict | None = None, shares: int = 0, order_ids: list[str] | None = None,
                raw: TradeSignalData | None = None) -> None:
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
