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

Live (``warmup=True``), the actor warms the engine up from history at start, so the first signal
can come on the first live bar: it requests each symbol's 1-minute bars from the open of enough
sessions back for every trigger timeframe's clouds (``strategies.signals.warmup``; 9 NYSE
sessions for the hourly clouds) and the broker's daily bars for the 1d context, through the data
client (``request_bars``: Alpaca's ``GET /v2/stocks/bars``); builds the 10m and 1h bars from the
minutes exactly as the node's aggregator does; feeds everything to the engine in time order
(signals of history are not published) and logs what it loaded and whether each timeframe is ready.
Live bars arriving meanwhile wait and follow the history; a live bar the history already held is
skipped. The node's own aggregator starts at start-up, so its first 10m and 1h bars hold only the
minutes since then: the actor rebuilds each from all the minutes of its bucket (history + live,
``warmup.complete_first_bucket``). ``announce_market=True`` logs whether the market is open and,
when closed, when it opens next (the exchange calendar on the engine clock), again at every open
and close.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from nautilus_trader.common.actor import Actor
from nautilus_trader.common.component import LiveClock
from nautilus_trader.config import ActorConfig
from nautilus_trader.core.datetime import unix_nanos_to_dt
from nautilus_trader.model.data import Bar, BarType

from strategies.signal_data import TRADE_SIGNAL_DATA_TYPE, TradeSignalData
from strategies.signals import OHLCV, LookAheadError, SignalEngine, SignalEngineConfig
from strategies.signals.warmup import (
    AGGREGATED,
    complete_first_bucket,
    forming_minutes,
    sessions_needed,
    warmup_sequence,
)
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


def market_status(calendar: MarketCalendar, name: str, now: datetime) -> tuple[str, datetime | None]:
    """What the live log says about the market at ``now`` (engine time) and when that changes
    next: ``("market open (XNYS): session closes 2025-06-17 16:00 ET", close)`` or ``("market
    closed (XNYS); next open Mon 2025-06-23 09:30 ET (in 42 h 30 min); ...", next open)``."""
    ny = ZoneInfo("America/New_York")
    session = calendar.session_for(now)
    if session is not None and session[0] <= now < session[1]:
        return f"market open ({name}): session closes {session[1].astimezone(ny):%Y-%m-%d %H:%M} ET", session[1]
    nxt = calendar.next_open(now)
    if nxt is None:
        return f"market closed ({name}); no next session in the calendar", None
    h, m = divmod(int((nxt - now).total_seconds() // 60), 60)
    return (f"market closed ({name}); next open {nxt.astimezone(ny):%a %Y-%m-%d %H:%M} ET (in {h} h {m:02d} min); "
            "signals resume with its first bars"), nxt


def on_loop_thread(clock: Any, fn: Callable[[Any], None]) -> Callable[[Any], None]:
    """The callback to give a clock's ``set_time_alert*`` / ``set_timer*`` so that ``fn`` runs on
    the node's event-loop thread.

    NautilusTrader 1.231's ``LiveClock`` calls timer and alert callbacks on its own Rust timer
    threads (measured in the issue #13 soak: ``_flush`` and the strategy's minute step on
    "Dummy-1"/"Dummy-2" while bars and fills are handled on "MainThread"), so without this the
    actor's and the executor's state is changed from several threads at once. On a backtest's
    clock (callbacks in the engine's own thread), or with no running loop, ``fn`` itself. Call it
    from the loop's thread (``on_start``, a handler)."""
    if not isinstance(clock, LiveClock):
        return fn
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return fn

    def callback(event: Any = None) -> None:
        loop.call_soon_threadsafe(fn, event)

    return callback


class SignalActorConfig(ActorConfig, frozen=True):
    symbols: tuple[str, ...] = ()
    venue: str = "XNAS"
    timeframes: tuple[str, ...] = ("1m", "10m", "1h", "1d")
    price_source: str = "close"  # "close" or "hl2"
    regular_hours_only: bool = True
    calendar: str = "XNYS"
    keep_signals: bool = False  # keep published signals for writing to a catalog
    warmup: bool = False  # live: load history at start (module docstring)
    warmup_timeout_s: float = 60.0  # go live with what has arrived by then
    announce_market: bool = False  # live: log market open / closed and the next open


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
        self.late_bars = 0  # bars dropped because a higher-timeframe bar closing with them came first
        # warm-up (config.warmup): requests pending, history received, live bars held meanwhile
        self.warming = False
        self._warm_requests: set = set()
        self._history: dict[tuple[str, str], list[Bar]] = {}
        self._held: list[Bar] = []
        self._last_ts: dict[tuple[str, str], datetime] = {}
        self.warmup_loaded: dict[str, dict[str, int]] = {}  # symbol -> timeframe -> bars fed
        self.warmup_ready: dict[str, dict[str, bool]] = {}
        # (symbol, 10m|1h) -> the minutes of the bucket forming when history ended, then the live
        # minutes after them, until the node's first (partial) bar of that timeframe is rebuilt
        self._forming: dict[tuple[str, str], list[OHLCV]] = {}
        self.rebuilt_first_bars = 0

    def on_start(self) -> None:
        for sym in self.config.symbols:
            for tf in self.config.timeframes:
                bt = bar_type_for(sym, self.config.venue, tf)
                # Nautilus delivers aggregated bars under their standard type (without the
                # "@1-MINUTE-EXTERNAL" source): route by that, or 10m/1h/1d never arrive
                self._routes[bt.standard()] = (sym, tf, TIMEFRAME_SPECS[tf][1])
                self.subscribe_bars(bt)
        if self.config.announce_market:
            self._announce_market()
        if self.config.warmup:
            self._start_warmup()

    # -- market hours (live) ----------------------------------------------------------------------

    def _announce_market(self, event=None) -> None:
        """Log whether the market is open and when it next opens or closes (engine clock), and
        schedule the same note for that moment."""
        now = self.clock.utc_now().to_pydatetime(warn=False)
        text, nxt = market_status(self.calendar, self.config.calendar, now)
        self.log.info(text)
        if nxt is None:
            return
        name = "market-hours-note"
        if name in self.clock.timer_names:
            self.clock.cancel_timer(name)
        self.clock.set_time_alert(name, max(nxt, now + timedelta(seconds=1)), on_loop_thread(self.clock, self._announce_market))

    # -- warm-up from history (live) ---------------------------------------------------------------

    def _session_start(self, now: datetime, sessions_back: int) -> datetime:
        """The open of the session ``sessions_back`` sessions before ``now`` (counting the one in
        progress or just finished as the first)."""
        days = max(10, sessions_back * 2 + 10)
        dates = [d for d in self.calendar.sessions_in_range((now - timedelta(days=days)).date(), now.date())
                 if (self.calendar.session_open(d) or now) <= now]
        if not dates:
            return now - timedelta(days=days)
        d = dates[max(0, len(dates) - sessions_back)]
        return self.calendar.session_open(d) or now

    def _start_warmup(self) -> None:
        now = self.clock.utc_now().to_pydatetime(warn=False)
        recent = self.calendar.session_for(now) or self.calendar.session_for(
            self._session_start(now, 1))
        session_minutes = ((recent[1] - recent[0]).total_seconds() / 60.0) if recent else 390.0
        cfg = self.engine.config
        intraday = [tf for tf in self.config.timeframes if tf != "1d"]
        n_intraday = sessions_needed(cfg.warmup_bars, session_minutes, intraday)
        start_1m = self._session_start(now, n_intraday)
        start_1d = self._session_start(now, cfg.context_warmup_bars + 3)
        self.warming = True
        for sym in self.config.symbols:
            requests = [(f"{sym}.{self.config.venue}-1-MINUTE-LAST-EXTERNAL", start_1m)]
            if "1d" in self.config.timeframes:
                requests.append((f"{sym}.{self.config.venue}-1-DAY-LAST-EXTERNAL", start_1d))
            for bt, start in requests:
                rid = self.request_bars(BarType.from_str(bt), start=start, callback=self._on_history_done)
                self._warm_requests.add(rid)
        ny = ZoneInfo("America/New_York")
        self.log.info(f"warm-up: requesting {', '.join(self.config.symbols)} 1-minute bars from "
                      f"{start_1m.astimezone(ny):%Y-%m-%d %H:%M} ET ({n_intraday} sessions: {cfg.warmup_bars} bars "
                      f"of {', '.join(intraday)})" + (f" and daily bars from {start_1d.astimezone(ny):%Y-%m-%d}"
                                                       if "1d" in self.config.timeframes else ""))
        self.clock.set_time_alert("warmup-timeout", now + timedelta(seconds=self.config.warmup_timeout_s),
                                  on_loop_thread(self.clock, self._warmup_timeout))

    def on_historical_data(self, data) -> None:
        if not self.warming or not isinstance(data, Bar):
            return
        sym = data.bar_type.instrument_id.symbol.value
        tf = "1d" if "DAY" in str(data.bar_type) else "1m"
        self._history.setdefault((sym, tf), []).append(data)

    def _on_history_done(self, request_id) -> None:
        self._warm_requests.discard(request_id)
        if self.warming and not self._warm_requests:
            self._finish_warmup()

    def _warmup_timeout(self, event=None) -> None:
        if self.warming:
            self.log.warning(f"warm-up: {len(self._warm_requests)} history request(s) unanswered after "
                             f"{self.config.warmup_timeout_s:g} s; going live with what arrived")
            self._finish_warmup()

    @staticmethod
    def _ohlcv(bar: Bar) -> OHLCV:
        return OHLCV(ts=unix_nanos_to_dt(bar.ts_event).to_pydatetime(warn=False), open=bar.open.as_double(),
                     high=bar.high.as_double(), low=bar.low.as_double(), close=bar.close.as_double(),
                     volume=bar.volume.as_double())

    def _finish_warmup(self) -> None:
        self.warming = False
        if "warmup-timeout" in self.clock.timer_names:
            self.clock.cancel_timer("warmup-timeout")
        cfg = self.engine.config
        ny = ZoneInfo("America/New_York")
        for sym in self.config.symbols:
            minutes = sorted(self._history.get((sym, "1m"), []), key=lambda b: b.ts_event)
            daily = sorted(self._history.get((sym, "1d"), []), key=lambda b: b.ts_event)
            seq = warmup_sequence([self._ohlcv(b) for b in minutes], [self._ohlcv(b) for b in daily],
                                  self.config.timeframes)
            loaded = {tf: 0 for tf in self.config.timeframes}
            for tf, bar in seq:
                length = TIMEFRAME_SPECS[tf][1]
                if self.config.regular_hours_only and tf != "1d" and not self._in_session(bar.ts, length, tf):
                    continue
                last = self._last_ts.get((sym, tf))
                if last is not None and bar.ts <= last:
                    continue
                try:
                    self.engine.on_bar(sym, tf, bar)  # history: its signals are not published
                except (LookAheadError, ValueError) as e:
                    self.log.warning(f"warm-up {sym} {tf} bar skipped: {e}")
                    continue
                self._last_ts[(sym, tf)] = bar.ts
                loaded[tf] += 1
            self.warmup_loaded[sym] = loaded
            ohlcv_minutes = [self._ohlcv(b) for b in minutes]
            for tf in AGGREGATED:
                if tf in self.config.timeframes and ohlcv_minutes:
                    self._forming[(sym, tf)] = forming_minutes(ohlcv_minutes, self._last_ts.get((sym, tf)))
            ready = {}
            parts = []
            for tf in self.config.timeframes:
                tr = self.engine.tracker(sym, tf)
                count = tr.count if tr is not None else 0
                need = cfg.context_warmup_bars if tf == "1d" else cfg.warmup_bars
                ready[tf] = count >= need
                parts.append(f"{tf} {loaded[tf]:,} bars" + (" (ready)" if ready[tf] else f" (needs {need - count} more)"))
            self.warmup_ready[sym] = ready
            span = ""
            if minutes:
                first = unix_nanos_to_dt(minutes[0].ts_event).astimezone(ny)
                last_bar = unix_nanos_to_dt(minutes[-1].ts_event).astimezone(ny)
                span = f" ({first:%Y-%m-%d %H:%M} -> {last_bar:%Y-%m-%d %H:%M} ET)"
            trig = [tf for tf in self.config.timeframes if tf != "1d"]
            verdict = ("signals can come on the first live bar" if trig and all(ready[tf] for tf in trig)
                       else "some timeframes still warm up on live bars")
            self.log.info(f"warm-up {sym}: {', '.join(parts)} from {len(minutes):,} 1-minute and {len(daily)} daily "
                          f"bars{span}; {verdict}")
        self._history = {}
        held, self._held = self._held, []
        for bar in held:  # live bars that came in meanwhile, after the history
            self.on_bar(bar)

    def on_bar(self, bar: Bar) -> None:
        if self.warming:  # history first: this live bar waits for it
            self._held.append(bar)
            return
        route = self._routes.get(bar.bar_type)
        if route is None:
            return
        sym, tf, length = route
        close_ts = unix_nanos_to_dt(bar.ts_event).to_pydatetime(warn=False)
        if self._last_ts:
            last = self._last_ts.get((sym, tf))
            if last is not None and close_ts <= last:
                return  # the warm-up history already held this bar
        rebuilt = None
        if self._forming:
            rebuilt = self._track_forming(sym, tf, close_ts, bar)
        if self.config.regular_hours_only and tf != "1d" and not self._in_session(close_ts, length, tf):
            return
        ohlcv = rebuilt or OHLCV(
            ts=close_ts,
            open=bar.open.as_double(),
            high=bar.high.as_double(),
            low=bar.low.as_double(),
            close=bar.close.as_double(),
            volume=bar.volume.as_double(),
        )
        try:
            signals = self.engine.on_bar(sym, tf, ohlcv)
        except LookAheadError as e:
            # Live, a minute bar can arrive after the 10m/1h bar that closes with it was built
            # (more than the data engine's build delay late: a slow feed, a back-fill after a
            # reconnect). Its moment has passed and the engine refused it untouched: skip it
            # rather than let the exception terminate the node (issue #13 soak). On a backtest's
            # clock bars come in order, so there it stays an error (a real look-ahead bug).
            if not isinstance(self.clock, LiveClock):
                raise
            self.late_bars += 1
            self.log.warning(f"late {tf} bar of {sym} skipped: {e}")
            return
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
                                         on_loop_thread(self.clock, self._flush))

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

    def _track_forming(self, sym: str, tf: str, close_ts: datetime, bar: Bar) -> OHLCV | None:
        """After a warm-up: collect live minutes for the buckets that were forming, and rebuild the
        node's first 10m / 1h bar of each from all its minutes (``complete_first_bucket``)."""
        if tf == "1m":
            m = self._ohlcv(bar)
            for key, mins in self._forming.items():
                if key[0] == sym and (not mins or m.ts > mins[-1].ts):
                    mins.append(m)
            return None
        mins = self._forming.pop((sym, tf), None)
        if mins is None:
            return None
        live = self._ohlcv(bar)
        full = complete_first_bucket(live, mins, AGGREGATED[tf][0])
        if full != live:
            self.rebuilt_first_bars += 1
        return full

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
