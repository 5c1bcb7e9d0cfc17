"""EMA-cloud signal actor: the stand-in for the upstream PRD-134 engine inside NautilusTrader.

Subscribes to each symbol's 1-minute bars and to 10-minute, 1-hour and 1-day bars that
NautilusTrader aggregates from them (INTERNAL bar types). Nautilus emits a time bar only once its
interval has closed and stamps it with the close time, so the engine only ever sees completed
higher-timeframe bars. Hour buckets are anchored on :30 (the data engine's origin offset, see
`strategies.engine_config.data_engine_config`) so they line up with the 09:30 open.

Bars outside the regular NYSE session (pre-market, after-hours) are ignored for signal generation:
EMA-cloud rules are defined on regular-session candles and the executor does not trade outside it.

Every TradeSignal the engine returns is published on the message bus as TradeSignalData and,
optionally, kept so the run's signal set can be written to a catalog and replayed.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from nautilus_trader.common.actor import Actor
from nautilus_trader.config import ActorConfig
from nautilus_trader.core.datetime import unix_nanos_to_dt
from nautilus_trader.model.data import Bar, BarType

from strategies.signal_data import TRADE_SIGNAL_DATA_TYPE, TradeSignalData
from strategies.signals import OHLCV, SignalEngine, SignalEngineConfig
from strategies.trade_executor import MarketCalendar

# timeframe -> (bar spec, its length)
TIMEFRAME_SPECS: dict[str, tuple[str, timedelta]] = {
    "1m": ("1-MINUTE-LAST-EXTERNAL", timedelta(minutes=1)),
    "10m": ("10-MINUTE-LAST-INTERNAL", timedelta(minutes=10)),
    "1h": ("1-HOUR-LAST-INTERNAL", timedelta(hours=1)),
    "1d": ("1-DAY-LAST-INTERNAL", timedelta(days=1)),
}


# Signals are stamped (ts_init) and published this long after the bar that produced them. The
# executor decides each minute's exits 1 ns after the bar (ExecutorStrategy), and the simulated
# venue settles between two timestamps, so a minute's signals always meet the state after that
# minute's exits have gone through, whether they come from this actor or from a replayed catalog.
SIGNAL_DELAY_NS = 2


def signal_order(d: TradeSignalData) -> tuple:
    """Canonical order of signals stamped at the same time (also used when replaying)."""
    return (d.ts_init, d.ticker, d.timeframe, d.signal_type, d.signal_id)


def bar_type_for(symbol: str, venue: str, timeframe: str) -> BarType:
    spec, _ = TIMEFRAME_SPECS[timeframe]
    if timeframe == "1m":
        return BarType.from_str(f"{symbol}.{venue}-{spec}")
    return BarType.from_str(f"{symbol}.{venue}-{spec}@1-MINUTE-EXTERNAL")


class SignalActorConfig(ActorConfig, frozen=True):
    symbols: tuple[str, ...] = ()
    venue: str = "XNAS"
    timeframes: tuple[str, ...] = ("1m", "10m", "1h", "1d")
    price_source: str = "close"  # "close" or "hl2"
    regular_hours_only: bool = True
    calendar: str = "XNYS"
    keep_signals: bool = False  # keep published signals for writing to a catalog


class SignalActor(Actor):
    def __init__(self, config: SignalActorConfig) -> None:
        super().__init__(config)
        for tf in config.timeframes:
            if tf not in TIMEFRAME_SPECS:
                raise ValueError(f"timeframes: unsupported timeframe {tf!r}; use {list(TIMEFRAME_SPECS)}")
        self.engine = SignalEngine(SignalEngineConfig(price_source=config.price_source))
        self.calendar = MarketCalendar(config.calendar)
        self._routes: dict[BarType, tuple[str, str, timedelta]] = {}
        self.published: list[TradeSignalData] = []
        self.signal_count = 0
        self._buffer: list[TradeSignalData] = []
        self._flush_at: int | None = None
        self._flush_seq = 0
        self._flush_alert: str | None = None

    def on_start(self) -> None:
        for sym in self.config.symbols:
            for tf in self.config.timeframes:
                bt = bar_type_for(sym, self.config.venue, tf)
                # Nautilus delivers aggregated bars under their standard type (without the
                # "@1-MINUTE-EXTERNAL" source): route by that, or 10m/1h/1d never arrive
                self._routes[bt.standard()] = (sym, tf, TIMEFRAME_SPECS[tf][1])
                self.subscribe_bars(bt)

    def on_bar(self, bar: Bar) -> None:
        route = self._routes.get(bar.bar_type)
        if route is None:
            return
        sym, tf, length = route
        close_ts = unix_nanos_to_dt(bar.ts_event).to_pydatetime(warn=False)
        if self.config.regular_hours_only and tf != "1d" and not self._in_session(close_ts, length, tf):
            return
        ohlcv = OHLCV(
            ts=close_ts,
            open=bar.open.as_double(),
            high=bar.high.as_double(),
            low=bar.low.as_double(),
            close=bar.close.as_double(),
            volume=bar.volume.as_double(),
        )
        signals = self.engine.on_bar(sym, tf, ohlcv)
        if not signals:
            return
        for signal in signals:
            self._buffer.append(TradeSignalData.from_signal(
                signal, ts_event=bar.ts_event, ts_init=bar.ts_event + SIGNAL_DELAY_NS, serialize=False))
        if self._flush_at is None:
            # Publish 2 ns after the bar, once every bar of that minute (all symbols, all
            # timeframes) has been seen, in a canonical order: exactly what a replay of the
            # recorded signal set does, so replayed and in-process runs trade identically.
            self._flush_at = bar.ts_event + SIGNAL_DELAY_NS
            # a unique name: live, another symbol's bar of the same minute may arrive while the
            # clock still holds an alert named after that minute
            self._flush_seq += 1
            self._flush_alert = f"signals-{self._flush_seq}"
            self.clock.set_time_alert_ns(self._flush_alert, max(self._flush_at, self.clock.timestamp_ns()),
                                         self._flush)

    def _flush(self, event=None) -> None:
        batch = sorted(self._buffer, key=signal_order)
        self._buffer = []
        self._flush_at = None
        self._flush_alert = None
        for data in batch:
            self.signal_count += 1
            if self.config.keep_signals:
                self.published.append(data)
            self.publish_data(TRADE_SIGNAL_DATA_TYPE, data)

    def on_stop(self) -> None:
        # Signals still buffered when the node stops are dropped, never published: a signal
        # published while the executor stops could send an entry nobody manages.
        if self._buffer:
            self.log.warning(f"{len(self._buffer)} signal(s) of the last minute dropped at stop")
            self._buffer = []
        if self._flush_alert is not None and self._flush_alert in self.clock.timer_names:
            self.clock.cancel_timer(self._flush_alert)
        self._flush_at = None
        self._flush_alert = None

    def _in_session(self, close_ts: datetime, length: timedelta, tf: str) -> bool:
        start = close_ts - length
        session = self.calendar.session_for(start)
        if session is None:
            return False
        open_, close = session
        if tf == "1h":
            # the last hour bucket (15:30-16:30) holds 15:30-16:00 of the session
            return open_ <= start < close
        return open_ <= start and close_ts <= close
