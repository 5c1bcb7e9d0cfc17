"""The executor as a NautilusTrader Strategy: a thin shell around the pure ``ExecutorCore``.

Data path: TradeSignalData on the message bus -> ExecutorCore (InstrumentRouter -> instrument
policy -> RiskGate -> EntryPlanner) -> orders -> fills -> a protective stop resting at the venue
-> the minute step's exits -> exit order -> round trip recorded. This class only translates:
engine events (bars, signals, order events, broker status, timers) into core calls, and the core's
commands (strategies/trade_executor/commands.py) into orders, cancels, trading-state messages and
journal writes. The same class runs in a BacktestEngine and in a live TradingNode; it reads only
engine state (cache, portfolio, clock) and never the wall clock.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from nautilus_trader.config import StrategyConfig
from nautilus_trader.core.datetime import dt_to_unix_nanos, unix_nanos_to_dt
from nautilus_trader.model.data import Bar, BarType
from nautilus_trader.model.enums import OrderSide, TimeInForce, TriggerType
from nautilus_trader.model.identifiers import ClientId, ClientOrderId, InstrumentId, Venue
from nautilus_trader.model.objects import Quantity
from nautilus_trader.trading.strategy import Strategy

from strategies.execution_log import ExecutionLog, ExecutionSink
from strategies.risk_control import (
    BROKER_STATUS_TOPIC,
    TRADING_STATE_ENDPOINT,
    BrokerStatus,
    send_alert,
    validate_webhook_url,
)
from strategies.signal_actor import on_loop_thread  # LiveClock callbacks -> the event loop's thread
from strategies.signal_data import TRADE_SIGNAL_DATA_TYPE, TradeSignalData
from strategies.trade_executor import ExecutorConfig, ManagedPosition
from strategies.trade_executor import commands as cmd
from strategies.trade_executor.core import CoreSettings, ExecutorCore

# how far back a restarted executor loads the journal's decided signal ids (duplicate_signal)
DUPLICATE_SIGNAL_LOOKBACK = timedelta(days=30)
SIDES = {"BUY": OrderSide.BUY, "SELL": OrderSide.SELL}
TIME_IN_FORCE = {"DAY": TimeInForce.DAY, "GTC": TimeInForce.GTC, "IOC": TimeInForce.IOC}


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
    # Live: at start, ask the data client for the last minutes of every followed instrument's
    # 1-minute bars and take the latest close as its price until its first live bar (a fund the
    # signal actor does not warm up is tradeable from the first minute). 0: off (backtests).
    seed_price_minutes: int = 0
    # Live: follow the operator's instrument mode in executor_control (``trade-executor mode set``,
    # the dashboard) at every control poll, without a restart. Backtests keep their mode.
    follow_control_mode: bool = False


class _EngineView:
    """The core's read-only port (commands.EngineView) over the strategy's cache and portfolio."""

    def __init__(self, strategy: ExecutorStrategy) -> None:
        self._s = strategy

    def new_order_id(self) -> str:
        return self._s.order_factory.generate_client_order_id().value

    def balance(self) -> float:
        account = self._s.portfolio.account(self._s.venue)
        return 0.0 if account is None else float(account.balance_total().as_double())

    def broker_buying_power(self) -> float | None:
        account = self._s.portfolio.account(self._s.venue)
        event = None if account is None else account.last_event
        info = getattr(event, "info", None) or {}
        try:
            return float(info["buying_power"]) if info.get("buying_power") is not None else None
        except (TypeError, ValueError):
            return None

    def tick(self, instrument: str) -> float | None:
        inst = self._s.cache.instrument(InstrumentId.from_str(instrument))
        return None if inst is None else float(inst.price_increment)

    def quote(self, instrument: str) -> tuple[float, float] | None:
        q = self._s.cache.quote_tick(InstrumentId.from_str(instrument))
        return None if q is None else (q.bid_price.as_double(), q.ask_price.as_double())

    def order(self, order_id: str) -> cmd.OrderView | None:
        o = self._s.cache.order(ClientOrderId(order_id))
        if o is None:
            return None
        return cmd.OrderView(is_open=o.is_open, is_pending_cancel=o.is_pending_cancel,
                             qty=int(o.quantity.as_double()))

    def held_qty(self, instrument: str) -> float:
        iid = InstrumentId.from_str(instrument)
        return float(sum(abs(p.signed_qty) for p in self._s.cache.positions_open(instrument_id=iid)))

    def last_close_price(self, instrument: str) -> float | None:
        closed = self._s.cache.positions_closed(instrument_id=InstrumentId.from_str(instrument))
        px = closed[-1].avg_px_close if closed else None
        return None if px is None else float(px)

    def control_mode(self) -> str | None:
        control = self._s.control
        if control is None:
            return None
        try:
            return control.instrument_mode()
        except Exception as e:  # noqa: BLE001 - keep the mode as is; retry at the next poll
            self._s.log.error(f"executor_control (instrument mode) not readable: {e}")
            return None

    def control_latch(self) -> Any:
        control = self._s.control
        if control is None:
            return None
        try:
            return control.kill_switch()
        except Exception as e:  # noqa: BLE001 - keep the trading state as is; retry at the next poll
            self._s.log.error(f"executor_control not readable: {e}")
            return None


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
        self.venue = Venue(config.venue)
        self.sink: ExecutionSink = sink if sink is not None else ExecutionLog()
        self.control = control
        self.core = ExecutorCore(ExecutorConfig(**dict(config.executor)), _EngineView(self), CoreSettings(
            venue=config.venue, buying_power_multiplier=config.buying_power_multiplier,
            broker_name=config.broker_name, equity_sample_minutes=config.equity_sample_minutes,
            stops_at_venue=config.stops_at_venue, cloud_timeframes=tuple(config.cloud_timeframes),
            option_broker=config.option_broker, option_strike_increment=config.option_strike_increment,
            option_cutoff_exit=config.option_cutoff_exit,
            option_min_minutes_before_cutoff=config.option_min_minutes_before_cutoff,
            option_premium_debited=config.option_premium_debited,
            follow_control_mode=config.follow_control_mode))
        self._bar_types: dict[BarType, tuple[str, str]] = {}  # 1m and higher-timeframe bars -> (symbol, tf)
        self._minute_alert: str | None = None
        self._minute_seq = 0
        self._eod_seq = 0
        self.alert_threads: list = []

    # ── the core's state, for reports and tests ─────────────────────────────────────────────
    @property
    def xconfig(self) -> ExecutorConfig:
        return self.core.xconfig

    @property
    def pm(self):
        return self.core.pm

    @property
    def kill_switch(self):
        return self.core.kill_switch

    @property
    def positions_by_signal(self) -> dict[str, ManagedPosition]:
        return self.core.pm.by_signal

    @property
    def signals_received(self) -> int:
        return self.core.signals_received

    @property
    def trading_state(self) -> str:
        return self.core.trading_state

    @property
    def last_price(self) -> dict[str, float]:
        return self.core.last_price

    def equity(self) -> float:
        return self.core.equity()

    def account_state(self, now: datetime):
        return self.core.account_state(now)

    # ── lifecycle ────────────────────────────────────────────────────────────────────────────
    def on_start(self) -> None:
        from strategies.signal_actor import bar_type_for

        self.core.stopping = False
        for sym in self.config.symbols:
            bar_type = BarType.from_str(f"{sym}.{self.venue}-{self.config.bar_spec}")
            if self.cache.instrument(bar_type.instrument_id) is None:
                self.log.warning(f"no instrument {bar_type.instrument_id} in cache; not following")
                continue
            self._bar_types[bar_type] = (sym, "1m")
            self.subscribe_bars(bar_type)
            self.core.follow(sym)
            for tf in self.config.cloud_timeframes:
                if tf != "1m":
                    htf = bar_type_for(sym, str(self.venue), tf)
                    self._bar_types[htf.standard()] = (sym, tf)  # bars arrive as the standard type
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
        now = self.clock.utc_now()
        self._execute(self.core.restore_latch(now))
        try:
            rows = list(self.sink.get_open_trades())
        except Exception as e:  # noqa: BLE001
            self.log.error(f"open trades not readable from the journal: {e}")
            rows = []
        self._execute(self.core.restore_positions(rows, now))
        try:
            ids = self.sink.get_decided_signal_ids(now - DUPLICATE_SIGNAL_LOOKBACK) or {}
        except Exception as e:  # noqa: BLE001
            self.log.error(f"decided signal ids not readable from the journal: {e}")
            ids = {}
        self.core.load_decided_signals(ids)
        if self.config.seed_price_minutes > 0:
            start = now - timedelta(minutes=self.config.seed_price_minutes)
            for bar_type, (_sym, tf) in list(self._bar_types.items()):
                if tf == "1m":
                    self.request_bars(bar_type, start=start)
        if self.control is not None and self.config.control_poll_seconds:
            self.clock.set_timer("executor-control-poll", timedelta(seconds=self.config.control_poll_seconds),
                                 callback=on_loop_thread(self.clock, self._on_poll_timer))

    def on_stop(self) -> None:
        """Working entries are cancelled, protective stops stay (ExecutorCore.on_stop); no order
        leaves after this."""
        self._cancel_minute_alert()
        self._execute(self.core.on_stop(self.clock.utc_now()))

    # ── events -> core ───────────────────────────────────────────────────────────────────────
    def on_data(self, data: Any) -> None:
        if isinstance(data, TradeSignalData):
            self.on_trade_signal(data)

    def on_trade_signal(self, data: TradeSignalData) -> None:
        if self.core.stopping:
            return  # no decision, no order once the executor is stopping
        self._run_minute_if_due()  # a minute's signals are decided after that minute's exits
        now = self.clock.utc_now()
        try:
            signal = data.to_signal()
        except ValueError as e:
            fields = {k: getattr(data, k, "") for k in ("signal_id", "ticker", "timeframe", "signal_type",
                                                        "direction", "conviction")}
            self._execute(self.core.on_invalid_signal(fields, str(e), now))
            return
        self._execute(self.core.on_signal(signal, now))

    def on_bar(self, bar: Bar) -> None:
        key = self._bar_types.get(bar.bar_type)
        if key is None:
            return
        self._execute(self.core.on_bar(key[0], key[1], float(bar.open.as_double()), float(bar.high.as_double()),
                                       float(bar.low.as_double()), float(bar.close.as_double()),
                                       float(bar.volume.as_double()), bar.ts_event))
        if self.core.minute_due:
            self._schedule_minute(bar.ts_event)

    def on_historical_data(self, data: Any) -> None:
        """History asked for at start (``seed_price_minutes``): the latest close seeds the price."""
        key = self._bar_types.get(getattr(data, "bar_type", None))
        if key is not None and key[1] == "1m":
            self.core.seed_price(key[0], float(data.close.as_double()), data.ts_event)

    def on_quote_tick(self, tick) -> None:
        self.core.on_quote(tick.instrument_id.symbol.value, tick.bid_price.as_double(), tick.ask_price.as_double())

    def on_order_filled(self, event) -> None:
        fee = float(event.commission.as_double()) if event.commission is not None else 0.0
        self._execute(self.core.on_fill(event.client_order_id.value, int(event.last_qty.as_double()),
                                        float(event.last_px.as_double()), fee, ns_to_dt(event.ts_event),
                                        self.clock.utc_now()))

    def on_order_rejected(self, event) -> None:
        self._order_done(event, f"rejected by venue: {event.reason}")

    def on_order_denied(self, event) -> None:
        self._order_done(event, f"denied by risk engine: {event.reason}")

    def on_order_canceled(self, event) -> None:
        self._order_done(event, "canceled")

    def on_order_expired(self, event) -> None:
        self._order_done(event, "expired")

    def _order_done(self, event, why: str) -> None:
        self._execute(self.core.on_order_done(event.client_order_id.value, why, self.clock.utc_now()))

    def on_order_accepted(self, event) -> None:
        self._execute(self.core.on_order_accepted(event.client_order_id.value, self.clock.utc_now()))

    def on_order_submitted(self, event) -> None:
        self._execute(self.core.on_order_submitted(event.client_order_id.value, self.clock.utc_now()))

    def on_broker_status(self, status: BrokerStatus) -> None:
        self._execute(self.core.on_broker_status(
            connected=status.connected, ts_ns=status.ts_ns, broker=status.broker or "",
            detail=status.detail or "", halt_reason=getattr(status, "halt_reason", "") or ""))

    # ── timers ───────────────────────────────────────────────────────────────────────────────
    def _schedule_minute(self, ts_event: int) -> None:
        if self._minute_alert is not None:
            return
        at = max(ts_event + 1, self.clock.timestamp_ns() + self.config.bar_settle_ms * 1_000_000)
        self._minute_seq += 1
        self._minute_alert = f"executor-minute-{self._minute_seq}"  # unique: never collides live
        self.clock.set_time_alert_ns(self._minute_alert, at, on_loop_thread(self.clock, self._on_minute_alert))

    def _on_minute_alert(self, event=None) -> None:
        if event is not None and getattr(event, "name", None) != self._minute_alert:
            return  # cancelled after it was already due (a signal ran the minute first)
        self._minute_alert = None
        self._execute(self.core.run_minute(self.clock.utc_now()))

    def _cancel_minute_alert(self) -> None:
        if self._minute_alert is not None and self._minute_alert in self.clock.timer_names:
            self.clock.cancel_timer(self._minute_alert)
        self._minute_alert = None

    def _run_minute_if_due(self) -> None:
        if self.core.minute_due:
            self._cancel_minute_alert()
            self._execute(self.core.run_minute(self.clock.utc_now()))

    def _on_eod_alert(self, event=None) -> None:
        self._execute(self.core.on_eod(self.clock.utc_now()))

    def _on_poll_timer(self, event) -> None:
        self._execute(self.core.on_control(ns_to_dt(event.ts_event)))

    # ── core commands -> engine ──────────────────────────────────────────────────────────────
    def _execute(self, commands: list) -> None:
        for c in commands:
            handler = self._HANDLERS[type(c)]
            handler(self, c)

    def _submit(self, c: cmd.SubmitOrder) -> None:
        if self.core.stopping and "role=stop" not in c.tags:
            self.log.error(f"not sent while stopping: {c}")
            return
        iid = InstrumentId.from_str(c.instrument)
        instrument = self.cache.instrument(iid)
        common = dict(instrument_id=iid, order_side=SIDES[c.side], quantity=Quantity.from_int(c.qty),
                      time_in_force=TIME_IN_FORCE[c.time_in_force], tags=list(c.tags),
                      client_order_id=ClientOrderId(c.order_id))
        if c.order_type == "market":
            order = self.order_factory.market(reduce_only=c.reduce_only, **common)
        elif c.order_type == "limit":
            order = self.order_factory.limit(price=instrument.make_price(c.limit_price),
                                             reduce_only=c.reduce_only, **common)
        else:
            order = self.order_factory.stop_market(trigger_price=instrument.make_price(c.trigger_price),
                                                   trigger_type=TriggerType.DEFAULT, reduce_only=c.reduce_only,
                                                   **common)
        self.submit_order(order)

    def _resize(self, c: cmd.ResizeOrder) -> None:
        order = self.cache.order(ClientOrderId(c.order_id))
        if order is not None and order.is_open:
            self.modify_order(order, quantity=Quantity.from_int(c.qty))

    def _cancel(self, c: cmd.CancelOrder) -> None:
        order = self.cache.order(ClientOrderId(c.order_id))
        if order is not None and order.is_open and not order.is_pending_cancel:
            self.cancel_order(order)

    def _trading_state(self, c: cmd.SetTradingState) -> None:
        if TRADING_STATE_ENDPOINT in self.msgbus.endpoints():
            self.msgbus.send(TRADING_STATE_ENDPOINT, c.state)

    def _tripped(self, c: cmd.KillSwitchTripped) -> None:
        self.log.warning(f"KILL SWITCH: {c.reason}")
        if c.persist and self.control is not None:
            try:
                self.control.activate_kill_switch(c.reason, now=c.at, by=f"executor:{self.id}")
            except Exception as e:  # noqa: BLE001 - halting matters more than the latch write
                self.log.error(f"kill-switch latch not persisted: {e}")
                self.sink.record_event(c.at, "kill_switch_persist_failed", str(e))
        t = send_alert(self.config.alert_webhook_url, {"event": "kill_switch", "ts": c.at.isoformat(),
                                                        "trader_id": str(self.trader_id), **c.data})
        if t is not None:
            self.alert_threads.append(t)

    def _reset(self, c: cmd.KillSwitchReset) -> None:
        if c.persist and self.control is not None:
            try:
                self.control.deactivate_kill_switch(now=c.at, by=c.by)
            except Exception as e:  # noqa: BLE001
                self.log.error(f"kill-switch resume not persisted: {e}")
        self.log.warning(f"kill switch reset: {c.why}")

    def _schedule_eod(self, c: cmd.ScheduleEod) -> None:
        self._eod_seq += 1
        # never in the past: the core decided it at its event's time, the clock may be a moment on
        at = max(dt_to_unix_nanos(c.at), self.clock.timestamp_ns())
        self.clock.set_time_alert_ns(f"executor-eod-{self._eod_seq}", at, on_loop_thread(self.clock, self._on_eod_alert))

    def _log(self, c: cmd.Log) -> None:
        getattr(self.log, c.level)(c.message)

    def _daily_pnl(self, c: cmd.RecordDailyPnl) -> None:
        try:
            self.sink.record_daily_pnl(c.day, c.metadata)
        except Exception as e:  # noqa: BLE001 - a missing summary must not stop trading
            self.log.error(f"daily_pnl for {c.day} not written: {e}")

    _HANDLERS = {
        cmd.SubmitOrder: _submit,
        cmd.ResizeOrder: _resize,
        cmd.CancelOrder: _cancel,
        cmd.SubscribeQuotes: lambda self, c: self.subscribe_quote_ticks(InstrumentId.from_str(c.instrument)),
        cmd.SetTradingState: _trading_state,
        cmd.KillSwitchTripped: _tripped,
        cmd.KillSwitchReset: _reset,
        cmd.ScheduleEod: _schedule_eod,
        cmd.Log: _log,
        cmd.RecordDecision: lambda self, c: self.sink.record_decision(c.record),
        cmd.RecordEvent: lambda self, c: self.sink.record_event(c.ts, c.kind, c.message, c.data),
        cmd.RecordTrade: lambda self, c: self.sink.record_trade(c.row),
        cmd.RecordOpenTrade: lambda self, c: self.sink.record_open_trade(c.row),
        cmd.RecordEquity: lambda self, c: self.sink.record_equity(c.ts, c.equity),
        cmd.RecordDailyPnl: _daily_pnl,
    }


__all__ = ["ExecutorStrategy", "ExecutorStrategyConfig", "ManagedPosition"]
