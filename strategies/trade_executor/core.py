"""ExecutorCore: the executor's state machine, pure and deterministic.

Engine events come in as plain values (a TradeSignal, a bar's prices, a fill, an order that
ended, a broker status, the operator's latch); each call returns the ``Command`` list the shell
carries out in order (commands.py). Time is always an argument (the engine clock), never read.

    on_signal        route -> policy (contract, price, size) -> RiskGate -> EntryPlanner -> entry order
    on_bar / run_minute   prices and clouds per bar; once a minute's bars are in: exits, scale-ins,
                     entry expiry, equity sample, kill-switch check (core_minute.py)
    on_fill / on_order_done / on_order_accepted / on_order_submitted
                     positions, protective stops, exits after their stop's cancel, round trips
    on_broker_status / on_control / set_mode / on_eod / on_stop, restore_positions   (core_control.py)

The parts live in three files along their seams (this one: state, account, signals, orders and
fills; core_minute.py: the minute step and exits; core_control.py: session, kill switch, operator,
restart) and are one class.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from strategies import stats
from strategies.signals import CloudTracker
from strategies.trade_executor.calendar import MarketCalendar
from strategies.trade_executor.commands import (
    CancelOrder,
    Command,
    DecisionRecord,
    EngineView,
    RecordDecision,
    RecordEvent,
    RecordOpenTrade,
    RecordTrade,
    ResizeOrder,
    SetTradingState,
    SubmitOrder,
    SubscribeQuotes,
)
from strategies.trade_executor.core_control import ControlMixin
from strategies.trade_executor.core_minute import MinuteMixin
from strategies.trade_executor.etf_catalog import sector_of
from strategies.trade_executor.exit_monitor import ExitMonitor
from strategies.trade_executor.instrument_router import InstrumentRouter
from strategies.trade_executor.kill_switch import KillSwitch, trade_loss_vs_equity
from strategies.trade_executor.models import (
    AccountState,
    ExecutorConfig,
    InstrumentDecision,
    PositionSize,
    SignalType,
    TradeSignal,
)
from strategies.trade_executor.policies import InstrumentPolicy, build_policies
from strategies.trade_executor.position_manager import (
    CloudEdges,
    EntryPlanner,
    ManagedPosition,
    PositionManager,
)
from strategies.trade_executor.risk_gate import RiskGate

# ExecutorConfig.default_time_in_force -> the entry orders' time in force (a working entry is
# cancelled at the session close or the EOD cut-off whatever it says; stops: DAY / GTC for swings)
ENTRY_TIME_IN_FORCE = {"day": "DAY", "gtc": "GTC", "ioc": "IOC"}


@dataclass(frozen=True)
class CoreSettings:
    """The shell's settings the core acts on (ExecutorStrategyConfig's, see there)."""

    venue: str = "XNAS"
    buying_power_multiplier: float = 2.0
    broker_name: str = "backtest"
    equity_sample_minutes: int = 1
    stops_at_venue: bool = True
    cloud_timeframes: tuple[str, ...] = ("1m", "10m", "1h")
    option_broker: str = "alpaca"
    option_strike_increment: float = 1.0
    option_cutoff_exit: bool = True
    option_min_minutes_before_cutoff: float = 15.0
    option_premium_debited: bool = True
    actor: str = "executor"  # who the kill-switch latch names when the executor trips it
    # live: the operator's instrument mode in executor_control (CLI, dashboard) is followed at
    # every control poll; backtests keep the mode they were started with
    follow_control_mode: bool = False


class ExecutorCore(MinuteMixin, ControlMixin):
    def __init__(self, config: ExecutorConfig, engine: EngineView, settings: CoreSettings | None = None) -> None:
        self.xconfig = config
        self.engine = engine
        self.settings = settings or CoreSettings()
        s = self.settings
        self.calendar = MarketCalendar(config.calendar)
        self.router = InstrumentRouter.from_config(config)
        self.gate = RiskGate(config, calendar=self.calendar, buying_power_includes_pending=True)
        self.exit_monitor = ExitMonitor(config, calendar=self.calendar)
        self.kill_switch = KillSwitch(config)
        self.planner = EntryPlanner(config)
        self.pm = PositionManager()
        self.policies: dict[str, InstrumentPolicy] = build_policies(
            config, self.calendar, broker=s.option_broker, strike_increment=s.option_strike_increment,
            min_minutes_before_cutoff=s.option_min_minutes_before_cutoff, cutoff_exit=s.option_cutoff_exit)
        self.trackers: dict[tuple[str, str], CloudTracker] = {}
        self.cloud_rows: dict[tuple[str, str], deque] = {}  # last bars with their cloud edges
        self.last_price: dict[str, float] = {}  # ticker -> last 1m close (options: quote mid)
        self.last_bar: dict[str, tuple[float, float, float, float]] = {}  # ticker -> (o, h, l, c)
        self.session_open: datetime | None = None
        self.starting_equity: float | None = None
        self.daily_trades = 0
        self.recent_trade_pnl_pcts: list[float] = []  # informational: P&L / position cost
        self.recent_trade_losses_vs_equity: list[float] = []  # the kill switch's consecutive-loss input
        self.signals_received = 0
        self.trading_state = "ACTIVE"  # what the core last asked the RiskEngine for
        self.reducing_orders: set[str] = set()  # exits let through REDUCING before HALTED
        self.exit_pending: dict[str, tuple[str, list[str]]] = {}  # signal id -> exit waiting for stop cancel
        self.broker_connected = True
        self.last_broker_contact_ns: int | None = None
        self.stopping = False
        # signal id -> time of its first decision (this run, and the journal's for this run id):
        # a re-sent id is rejected ``duplicate_signal`` for the life of the journal
        self.decided_signals: dict[str, datetime] = {}
        self._refused_mode: str | None = None
        self._init_minute()
        self._out: list[Command] = []
        self._now: datetime | None = None

    # ── plumbing ─────────────────────────────────────────────────────────────────────────────
    def _call(self, now: datetime | None, fn, *args: Any, **kwargs: Any) -> list[Command]:
        """Run one event through the core; the commands it produced, in order."""
        saved_out, saved_now = self._out, self._now
        self._out = []
        if now is not None:
            self._now = now
        try:
            fn(*args, **kwargs)
            return self._out
        finally:
            self._out, self._now = saved_out, saved_now

    def _emit(self, cmd: Command) -> None:
        self._out.append(cmd)

    def _event(self, now: datetime, kind: str, message: str, data: dict | None = None) -> None:
        self._emit(RecordEvent(now, kind, message, data))

    def instrument_id(self, ticker: str) -> str:
        return f"{ticker}.{self.settings.venue}"

    def policy(self, mp_or_kind: ManagedPosition | str) -> InstrumentPolicy:
        kind = mp_or_kind if isinstance(mp_or_kind, str) else mp_or_kind.decision.instrument_type
        return self.policies[kind]

    @property
    def positions_by_signal(self) -> dict[str, ManagedPosition]:
        return self.pm.by_signal

    # ── account ──────────────────────────────────────────────────────────────────────────────
    def _unrealized(self) -> float:
        total = 0.0
        for mp in self.pm.by_signal.values():
            pos = mp.position
            if pos is None or pos.shares <= 0:
                continue
            px = self.last_price.get(pos.ticker)
            if px is not None:
                pos.mark(px)
            total += self.policy(mp).unrealized(pos, self.settings.option_premium_debited)
        return total

    def equity(self) -> float:
        return self.engine.balance() + self._unrealized()

    def account_state(self, now: datetime) -> AccountState:
        equity = self.equity()
        positions = self.pm.open_positions()
        gross = sum(p.market_value for p in positions)
        pending = self.pm.pending_orders(self.last_price.get)
        pending_notional = sum(p.price * p.shares for p in pending)
        buying_power = max(0.0, equity * self.settings.buying_power_multiplier - gross - pending_notional)
        broker_bp = self.engine.broker_buying_power()
        if broker_bp is not None:
            # live: the broker's own figure bounds it (less what our working entries will still
            # take: counted twice if the broker already reserved it, which errs on the safe side)
            buying_power = min(buying_power, max(0.0, broker_bp - pending_notional))
        starting = self.starting_equity if self.starting_equity is not None else equity
        return AccountState(
            equity=equity, cash=self.engine.balance(), buying_power=buying_power, open_positions=positions,
            daily_pnl=equity - starting, daily_trades=self.daily_trades, starting_equity=starting,
            pending_orders=pending, recent_trade_pnl_pcts=list(self.recent_trade_pnl_pcts),
            recent_trade_losses_vs_equity=list(self.recent_trade_losses_vs_equity), as_of=now,
            last_broker_contact=self._broker_contact(now),
        )

    # ── signals ──────────────────────────────────────────────────────────────────────────────
    def on_signal(self, signal: TradeSignal, now: datetime) -> list[Command]:
        """Decide one signal (the shell has run the minute's exits first)."""
        return self._call(now, self._on_signal, signal, now)

    def on_invalid_signal(self, fields: dict[str, Any], error: str, now: datetime) -> list[Command]:
        """A signal that does not parse: recorded ``invalid_signal`` with whatever it said."""
        def run() -> None:
            if self.stopping:
                return
            self.signals_received += 1
            self._record(now, None, approved=False, code="invalid_signal", reason=f"invalid_signal: {error}",
                         raw=fields)
        return self._call(now, run)

    def _on_signal(self, signal: TradeSignal, now: datetime) -> None:
        if self.stopping:
            return  # no decision, no order once the executor is stopping
        self.signals_received += 1
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
        policy = self.policy(decision.instrument_type)
        picked = policy.choose(self, signal, decision, now)
        if isinstance(picked, str):
            self._record(now, signal, approved=False, code="no_instrument", reason=picked, decision=decision)
            return
        decision = picked
        instrument = self.instrument_id(decision.ticker)
        tick = self.engine.tick(instrument)
        if tick is None:
            why = (f"no_instrument: {decision.instrument_type} {decision.ticker} is not available "
                   f"at {self.settings.venue} in this run")
            self._record(now, signal, approved=False, code="no_instrument", reason=why, decision=decision)
            return
        price = policy.entry_price(self, signal, decision)
        if isinstance(price, str):
            self._record(now, signal, approved=False, code="no_instrument", reason=price, decision=decision)
            return
        size = policy.size(self, signal, decision, account, price)
        risk = self.gate.validate(signal, account, decision=decision, size=size, price=price, now=now,
                                  kill_switch_active=(self.kill_switch.reason or True)
                                  if self.kill_switch.is_active else False)
        details = {"risk": risk.details, "size": size_dict(size), "price": price,
                   "account": {"equity": round(account.equity, 2), "buying_power": round(account.buying_power, 2),
                               "daily_pnl": round(account.daily_pnl, 2),
                               "starting_equity": round(account.starting_equity or 0.0, 2),
                               "open_positions": len(account.open_positions),
                               "pending_orders": len(account.pending_orders)}}
        if not risk.approved:
            self._record(now, signal, approved=False, code=risk.code, reason=risk.reason,
                         decision=decision, details=details)
            return
        leaving = self._exiting(decision.ticker)
        if leaving is not None:
            # at the broker a new entry would trade against the exit (a potential wash trade: the
            # exit is refused while the entry works), so nothing opens while a position leaves
            self._record(now, signal, approved=False, code="exit_in_progress",
                         reason=f"exit_in_progress: the {decision.ticker} position of {leaving.signal_id} is being "
                                f"exited ({leaving.exit_reason}); no new entry in it until it is out",
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
        direction = policy.direction(signal)
        plan = self.planner.plan(
            policy.planner_signal(signal), shares, price=price, direction=direction,
            cloud=self.cloud_edges(signal.ticker, signal.timeframe, "pullback"),
            underlying_price=self.last_price.get(signal.ticker), leverage=decision.leverage, tick=tick,
        )
        details["entry"] = plan.to_dict()
        stop, target = policy.levels(signal, decision, price)
        oid = self.engine.new_order_id()
        order = SubmitOrder(
            order_id=oid, instrument=instrument, side="BUY" if direction == "long" else "SELL",
            qty=plan.first_shares, order_type=plan.order_type,
            time_in_force=ENTRY_TIME_IN_FORCE[self.xconfig.default_time_in_force],
            limit_price=plan.limit_price if plan.order_type == "limit" else None,
            tags=(f"signal={signal.signal_id}", f"role=entry:{plan.tactic}"))
        self.pm.open(signal, decision, plan, instrument=instrument, direction=direction,
                     stop_loss=stop, target_price=target, order_id=oid)
        if policy.needs_quotes:
            self._emit(SubscribeQuotes(instrument))
        self._emit(order)
        self._record(now, signal, approved=True, code=None, reason=None, decision=decision,
                     details=details, shares=shares, order_ids=[oid])

    def cloud_edges(self, sym: str, timeframe: str, cloud: str) -> CloudEdges | None:
        tr = self.trackers.get((sym, timeframe))
        if tr is None or not tr.warmed_up:
            return None
        i = tr.names.index(cloud)
        return CloudEdges(tr.lower[i], tr.upper[i])

    def on_quote(self, ticker: str, bid: float, ask: float) -> None:
        self.last_price[ticker] = max((bid + ask) / 2.0, 0.0)

    # ── fills and order outcomes ─────────────────────────────────────────────────────────────
    def on_fill(self, order_id: str, qty: int, price: float, fee: float, ts: datetime,
                now: datetime) -> list[Command]:
        """A (partial) fill at engine time ``ts`` (the fill's own event time)."""
        return self._call(now, self._on_fill, order_id, qty, price, fee, ts)

    def _on_fill(self, oid: str, qty: int, px: float, fee: float, now: datetime) -> None:
        self.reducing_orders.discard(oid)
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
                self.policy(mp).on_first_fill(mp)
            mp.position.mark(self.last_price.get(mp.position.ticker, px))
            # durable before we move on: a crash after this fill cannot lose it
            self._emit(RecordOpenTrade(mp.to_row(now, closed=False, broker=self.settings.broker_name)))
            if mp.signal.signal_id in self.exit_pending or mp.exit_order_id is not None:
                return  # an exit is under way; the next bar closes what is left
            self._protect(mp)
            return
        # exit or stop fill
        if self.pm.is_round_trip_done(mp):
            self._cancel_if_open(mp.stop_order_id)
            self._close_round_trip(mp, now)
        elif role == "stop":
            self._event(now, "stop_partial", f"{mp.signal_id}: stop filled {qty} @ {px}",
                        {"order_id": oid, "open_qty": mp.open_qty})

    def _protect(self, mp: ManagedPosition) -> None:
        """Rest (or resize) the protective stop at the venue for the open quantity. Options get
        none: their stop is the strategy's own check on the underlying's bars."""
        if not self.settings.stops_at_venue or mp.open_qty <= 0 or not self.policy(mp).protect_at_venue:
            return
        if mp.stop_order_id is not None:
            view = self.engine.order(mp.stop_order_id)
            if view is not None and view.is_open and view.qty != mp.open_qty:
                self._emit(ResizeOrder(mp.stop_order_id, mp.open_qty))
            return
        oid = self.engine.new_order_id()
        order = SubmitOrder(
            order_id=oid, instrument=mp.instrument, side="SELL" if mp.direction == "long" else "BUY",
            qty=mp.open_qty, order_type="stop_market",
            time_in_force="GTC" if mp.signal.trade_type == "swing" else "DAY",
            trigger_price=mp.stop_loss, reduce_only=True, tags=(f"signal={mp.signal_id}", "role=stop"))
        self.pm.link(mp, oid, "stop")
        if self.kill_switch.is_active:
            self.reducing_orders.add(oid)
            self._set_trading_state("REDUCING", f"protective stop for {mp.signal_id} while halted")
        self._emit(order)
        self._maybe_halt()
        if mp.position is not None:
            # the stop's id goes into the open row: a restarted executor finds it at the venue
            self._emit(RecordOpenTrade(mp.to_row(self._now, closed=False, broker=self.settings.broker_name)))

    def _stop_refused(self, mp: ManagedPosition, oid: str, why: str, now: datetime) -> None:
        """A protective stop did not get to rest (refused, denied, expired): the position must not
        stay unprotected. While an entry order of the same trade still works (a broker may refuse
        an opposite-side order as a potential wash trade), cancel it and place the stop again once
        it is gone; otherwise (e.g. the market is already through the stop) leave at market now."""
        self._event(now, "stop_failed", f"{mp.signal_id}: protective stop {why}",
                    {"order_id": oid, "open_qty": mp.open_qty})
        if mp.entry_orders and not mp.stop_retried:
            mp.stop_retried = True
            if mp.scale_in == "waiting":
                mp.scale_in = "skipped"
            for entry_oid in list(mp.entry_orders):
                self._cancel_if_open(entry_oid)
            return  # the entry's order_done places the stop again
        if self._can_exit(mp):
            self._submit_exit(mp, "stop_loss", ["stop_loss", "stop_refused"])

    def _cancel_if_open(self, oid: str | None) -> bool:
        if oid is None:
            return False
        view = self.engine.order(oid)
        if view is not None and view.is_open and not view.is_pending_cancel:
            self._emit(CancelOrder(oid))
            return True
        return False

    def on_order_done(self, order_id: str, why: str, now: datetime) -> list[Command]:
        """An order ended without (further) fills: rejected, denied, canceled, expired."""
        return self._call(now, self._order_done, order_id, why, now)

    def _order_done(self, oid: str, why: str, now: datetime) -> None:
        if oid in self.reducing_orders:
            self.reducing_orders.discard(oid)
            self._maybe_halt()
        res = self.pm.order_done(oid)
        if res is None:
            return
        mp, role = res
        if role in ("entry", "add"):
            self._retry_blocked_exits(mp.decision.ticker)
            if role == "add":
                self._event(now, "scale_in_failed", f"{mp.signal_id}: add order {why}", {"order_id": oid})
            elif self.pm.is_dead(mp):
                self._event(now, "entry_failed", f"{mp.signal_id}: {why}", {"order_id": oid})
                self.pm.finish(mp)
                return
            else:
                self._event(now, "entry_partial", f"{mp.signal_id}: rest of the entry {why}; "
                            f"keeping {mp.open_qty} filled", {"order_id": oid, "filled": mp.open_qty})
            if self.pm.is_round_trip_done(mp):
                self._close_round_trip(mp, now)
            elif mp.signal_id in self.exit_pending and mp.stop_order_id is None:
                self._send_exit(mp)
            elif mp.stop_retried and not mp.entry_orders and mp.stop_order_id is None and self._can_exit(mp):
                self._protect(mp)  # the conflicting entry is gone: rest the stop again
            return
        if role == "stop":
            pending = self.exit_pending.get(mp.signal_id)
            if pending is not None and mp.open_qty > 0:
                self._send_exit(mp)  # the stop is out of the way: now the exit
            elif mp.open_qty > 0 and "cancel" not in why:
                self._stop_refused(mp, oid, why, now)
            return
        # the exit did not go through: the position is still open, try again on the next bar
        self.exit_pending.pop(mp.signal_id, None)
        self._event(now, "exit_failed", f"{mp.signal_id}: {why}", {"order_id": oid})
        if why.startswith("rejected") and mp.open_qty > 0:
            # a broker refuses an exit that could trade against the account's own working entry in
            # the same instrument (a wash trade), whichever trade it belongs to: cancel those
            # entries; the exit goes again as soon as they are gone (or at the next bar)
            blockers = [o for o in self.pm.by_signal.values()
                        if o.decision.ticker == mp.decision.ticker and o.entry_orders]
            if blockers:
                mp.exit_blocked = True
                for other in blockers:
                    if other.scale_in == "waiting":
                        other.scale_in = "skipped"
                    for entry_oid in list(other.entry_orders):
                        self._cancel_if_open(entry_oid)

    def _retry_blocked_exits(self, ticker: str) -> None:
        """Exits refused because of working entries in ``ticker``: sent again once none is left."""
        if any(o.entry_orders for o in self.pm.by_signal.values() if o.decision.ticker == ticker):
            return
        for other in list(self.pm.by_signal.values()):
            if other.decision.ticker == ticker and other.exit_blocked and self._can_exit(other):
                other.exit_blocked = False
                self._submit_exit(other, other.exit_reason or "exit_retry", list(other.exit_fired) or ["exit_retry"])

    def on_order_accepted(self, order_id: str, now: datetime) -> list[Command]:
        """A protective stop accepted by the venue: if more of the entry filled while it was on
        its way (a stop cannot be resized before it is accepted), resize it now."""
        def run() -> None:
            mp = self.pm.by_order.get(order_id)
            if mp is None or mp.stop_order_id != order_id or mp.closed:
                return
            if mp.signal_id in self.exit_pending:
                self._cancel_if_open(order_id)  # an exit is waiting for this stop: out of the way
            else:
                self._protect(mp)
        return self._call(now, run)

    def on_order_submitted(self, order_id: str, now: datetime) -> list[Command]:
        """An order passed the RiskEngine: a REDUCING window it opened can close."""
        def run() -> None:
            if order_id in self.reducing_orders:
                self.reducing_orders.discard(order_id)
                self._maybe_halt()
        return self._call(now, run)

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
        self.exit_pending.pop(mp.signal_id, None)
        self._emit(RecordTrade(mp.to_row(now, closed=True, broker=self.settings.broker_name, exit_px=exit_px,
                                         pnl=pnl, pnl_pct=pnl_pct, fees=fees, gross=gross)))
        self.pm.finish(mp)

    # ── exits ────────────────────────────────────────────────────────────────────────────────
    def _exiting(self, ticker: str) -> ManagedPosition | None:
        """A position in ``ticker`` on its way out (its exit pending or working), if any."""
        for mp in self.pm.by_signal.values():
            if mp.decision.ticker == ticker and (mp.signal_id in self.exit_pending or mp.exit_order_id is not None):
                return mp
        return None

    def _can_exit(self, mp: ManagedPosition) -> bool:
        return (mp.position is not None and mp.open_qty > 0 and mp.exit_order_id is None
                and mp.signal_id not in self.exit_pending)

    def _submit_exit(self, mp: ManagedPosition, reason: str, fired: list[str]) -> None:
        """Leave the position: working entry orders and the resting stop are cancelled first (so
        the broker can never sell twice), then a market order closes the open quantity."""
        if mp.exit_order_id is not None or mp.signal_id in self.exit_pending:
            return
        mp.exit_reason, mp.exit_fired = reason, fired
        if mp.scale_in == "waiting":
            mp.scale_in = "skipped"
        for oid in list(mp.entry_orders):
            self._cancel_if_open(oid)
        self.exit_pending[mp.signal_id] = (reason, fired)
        if mp.stop_order_id is None:
            self._send_exit(mp)
            return
        # The exit waits for the protective stop's end as the core sees it (its cancel, refusal or
        # expiry -> _order_done sends the exit; its fill closes the round trip and nothing is sent),
        # whatever the engine's view says: a stop still in flight may yet rest at the broker (it is
        # cancelled on its acceptance), and one the broker already filled may not be applied yet.
        # Either way an exit sent now could sell twice.
        self._cancel_if_open(mp.stop_order_id)

    def _send_exit(self, mp: ManagedPosition) -> None:
        if mp.exit_order_id is not None or mp.open_qty <= 0:
            return
        oid = self.engine.new_order_id()
        order = SubmitOrder(
            order_id=oid, instrument=mp.instrument, side="SELL" if mp.direction == "long" else "BUY",
            qty=mp.open_qty, order_type="market", time_in_force="DAY", reduce_only=True,
            tags=(f"signal={mp.signal_id}", "role=exit", f"reason={mp.exit_reason}"))
        self.pm.link(mp, oid, "exit")
        if self.policy(mp).needs_quotes:
            mp.exit_quote = self.engine.quote(mp.instrument) or mp.exit_quote
        if self.kill_switch.is_active:
            # HALTED denies every order: open a REDUCING window for this exit (it only reduces)
            self.reducing_orders.add(oid)
            self._set_trading_state("REDUCING", f"exit {oid} ({mp.exit_reason}) while halted")
        self._emit(order)
        self._maybe_halt()

    # ── trading state ────────────────────────────────────────────────────────────────────────
    def _set_trading_state(self, state: str, why: str) -> None:
        if state == self.trading_state:
            return
        self.trading_state = state
        self._emit(SetTradingState(state, why))
        self._event(self._now, "trading_state", f"{state}: {why}", {"state": state})

    def _maybe_halt(self) -> None:
        """Once every kill-switch exit has passed the RiskEngine, go from REDUCING to HALTED."""
        waiting = any(self.pm.by_signal.get(sid) is not None and self.pm.by_signal[sid].exit_order_id is None
                      for sid in self.exit_pending)  # exits waiting for their stop's cancel
        if self.kill_switch.is_active and not self.reducing_orders and not waiting \
                and self.trading_state != "HALTED":
            self._set_trading_state("HALTED", f"kill switch: {self.kill_switch.reason}")

    # ── journaling ───────────────────────────────────────────────────────────────────────────
    def _record(self, now: datetime, signal: TradeSignal | None, *, approved: bool, code: str | None,
                reason: str | None, decision: InstrumentDecision | None = None,
                details: dict | None = None, shares: int = 0, order_ids: list[str] | None = None,
                raw: dict[str, Any] | None = None) -> None:
        if signal is not None and signal.signal_id and code != "invalid_signal":
            self.decided_signals.setdefault(signal.signal_id, now)
        raw = raw or {}

        def field(name: str, default: Any = "") -> Any:
            if signal is not None:
                value = getattr(signal, name)
                return value.value if name == "signal_type" else value
            return raw.get(name, default)

        self._emit(RecordDecision(DecisionRecord(
            ts=now, signal_id=field("signal_id"), ticker=field("ticker"), timeframe=field("timeframe"),
            signal_type=field("signal_type"), direction=field("direction"), conviction=field("conviction", 0),
            approved=approved, reason_code=code, reason=reason,
            instrument=decision.ticker if decision else None,
            instrument_type=decision.instrument_type if decision else None,
            shares=shares, details=details or {}, order_ids=order_ids or [],
        )))


def size_dict(size: PositionSize) -> dict[str, Any]:
    return {"shares": size.shares, "notional": round(size.notional, 2), "risk_amount": round(size.risk_amount, 2),
            "conviction_multiplier": size.conviction_multiplier, "capped_by": size.capped_by,
            "raw_shares": round(size.raw_shares, 4), "stop_distance": round(size.stop_distance, 4)}


__all__ = ["CoreSettings", "ENTRY_TIME_IN_FORCE", "ExecutorCore", "size_dict"]
