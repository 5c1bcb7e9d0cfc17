"""Alpaca market-data client for NautilusTrader.

``AlpacaDataClient`` (a ``LiveMarketDataClient`` on venue ``ALPACA``):

* **Historical** ``request_bars`` / ``request_quote_ticks`` / ``request_trade_ticks`` through
  alpaca-py's ``StockHistoricalDataClient`` (``GET /v2/stocks/{bars|quotes|trades}``; alpaca-py
  follows ``next_page_token`` itself). alpaca-py is synchronous, so every call runs in the
  default executor. Bar types: ``SYM.ALPACA-{1..59}-MINUTE|{1..23}-HOUR|1-DAY|1-WEEK-LAST-EXTERNAL``.
* **Live** bars (1-minute), trades and quotes for any number of symbols over **one** market-data
  websocket (Alpaca allows one per account and answers 406 to a second). The socket is opened on
  the first subscription, re-subscribes everything after a reconnect, and reconnects with
  exponential backoff with jitter whenever it drops (``data_stream``).

**Options** (``config.option_underlyings``): the contracts of each underlying's nearest expiries
around its price are loaded into the cache (``GET /v2/options/contracts`` through the instrument
provider) and the ATM strikes' quotes stream over a second websocket, the options feed
(``/v1beta1/{indicative|opra}``, msgpack only), seeded with ``/v1beta1/options/quotes/latest``;
which ones, and when they are reloaded or re-centred, is ``option_chain.OptionChainTracker``.
``SubscribeQuoteTicks`` / trade ticks of an OCC symbol go to that websocket as well.

**Bars carry their close time**: Alpaca labels a bar by the start of its interval; every bar
emitted here has ``ts_event = start + interval`` (the 10:00 1-minute bar is stamped 10:01). See
``data_parsing``. Bars, quotes or trades with NaN / infinite / negative prices (or an inconsistent
high/low) are skipped with an error log naming the field; nothing crashes.

**Gap fill**: after a reconnect, the 1-minute bars of every bar subscription that closed while the
socket was down are fetched over REST and emitted (in order, before newer streamed bars; a bar is
never emitted twice). Quotes and trades missed during an outage are not replayed.

Why not alpaca-py's ``StockDataStream``: it cannot be driven from inside the Nautilus event loop —
``subscribe_*`` after start calls ``run_coroutine_threadsafe(...).result()`` on the stream's own
loop (a deadlock when that loop is ours), ``_run_forever`` busy-waits with ``sleep(0)`` until a
first subscription and polls a stop queue every 5 s. The wire protocol is small, so
``data_stream.AlpacaMarketDataStream`` speaks it directly with ``websockets`` (an alpaca-py
dependency), in MessagePack like alpaca-py.

Details: historical data has ``ts_init = ts_event``; live data (and gap-fill bars) ``ts_init`` =
receive time. A one-sided quote (price 0, common on IEX) is dropped at debug level, not as an
error. Prices keep the instrument's precision, raised (up to 4 decimals) when a value has more
(sub-dollar prints), so nothing is silently rounded. Historical bar requests accept
``params={"adjustment": "split"}`` (default raw, consistent with the live stream); ``limit > 0``
returns the most recent ``limit`` bars of the window. Optional config attributes read with
defaults: ``reconnect_initial_delay_s`` (0.5) and ``reconnect_max_delay_s`` (30).
"""

from __future__ import annotations

import asyncio
import functools
import warnings
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pandas as pd
from nautilus_trader.cache.cache import Cache
from nautilus_trader.common.component import LiveClock, MessageBus
from nautilus_trader.common.enums import LogColor
from nautilus_trader.common.providers import InstrumentProvider
from nautilus_trader.data.messages import (
    RequestBars,
    RequestInstrument,
    RequestInstruments,
    RequestQuoteTicks,
    RequestTradeTicks,
    SubscribeBars,
    SubscribeInstrument,
    SubscribeInstruments,
    SubscribeQuoteTicks,
    SubscribeTradeTicks,
    UnsubscribeBars,
    UnsubscribeInstrument,
    UnsubscribeInstruments,
    UnsubscribeQuoteTicks,
    UnsubscribeTradeTicks,
)
from nautilus_trader.live.data_client import LiveMarketDataClient
from nautilus_trader.model.data import Bar, BarType
from nautilus_trader.model.identifiers import ClientId, InstrumentId

with warnings.catch_warnings():  # alpaca.data's package import pulls in websockets.legacy (deprecated)
    warnings.simplefilter("ignore", DeprecationWarning)
    from alpaca.common.enums import Sort
    from alpaca.data.enums import Adjustment, DataFeed
    from alpaca.data.historical.stock import StockHistoricalDataClient
    from alpaca.data.requests import StockBarsRequest, StockQuotesRequest, StockTradesRequest

from .common import ALPACA_VENUE, mask, resolve_credentials
from .config import AlpacaDataClientConfig
from .data_parsing import (
    ONE_MINUTE_NS,
    AlpacaDataError,
    alpaca_symbol,
    bar_interval_ns,
    check_requestable,
    check_streamable,
    describe_time,
    field,
    instrument_id_for,
    ns_to_datetime,
    parse_bar,
    parse_quote,
    parse_trade,
    timeframe_for,
    to_unix_nanos,
)
from .data_stream import AlpacaMarketDataStream, AlpacaStreamError, stream_url_for
from .option_chain import OptionChainTracker, ny_date, option_stream_url_for
from .parsing import is_option_symbol

# ============================================================================================== #
# The Nautilus data client                                                                       #
# ============================================================================================== #
class AlpacaDataClient(LiveMarketDataClient):
    """Alpaca market data (historical over REST, live over one websocket) for NautilusTrader.

    Parameters
    ----------
    loop : asyncio.AbstractEventLoop
    client : alpaca.data.historical.stock.StockHistoricalDataClient, optional
        REST client for historical requests (plain or ``raw_data=True``). None → one is built
        from ``config`` (credentials, ``data_url``) with a per-request timeout.
    msgbus, cache, clock : Nautilus components
    instrument_provider : InstrumentProvider
        Normally ``AlpacaInstrumentProvider``; initialised on connect, its instruments are sent
        to the data engine (needed for Nautilus-side bar aggregation).
    config : AlpacaDataClientConfig
    name : str, optional
        Client id (default ``ALPACA``).
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        client: Any = None,
        msgbus: MessageBus | None = None,
        cache: Cache | None = None,
        clock: LiveClock | None = None,
        instrument_provider: InstrumentProvider | None = None,
        config: AlpacaDataClientConfig | None = None,
        name: str | None = None,
    ) -> None:
        if msgbus is None or cache is None or clock is None or instrument_provider is None:
            raise TypeError("AlpacaDataClient needs msgbus, cache, clock and instrument_provider")
        config = config or AlpacaDataClientConfig()
        super().__init__(
            loop=loop,
            client_id=ClientId(name or ALPACA_VENUE.value),
            venue=ALPACA_VENUE,
            msgbus=msgbus,
            cache=cache,
            clock=clock,
            instrument_provider=instrument_provider,
            config=config,
        )
        key, secret = resolve_credentials(config.api_key, config.api_secret)
        self._config = config
        self._feed = (config.feed or "iex").lower()
        self._timeout_s = float(getattr(config, "request_timeout_s", 10.0) or 10.0)
        self._http = client if client is not None else self._build_rest_client(key, secret, config)
        self._stream = AlpacaMarketDataStream(
            url=stream_url_for(self._feed, config.data_stream_url),
            api_key=key,
            api_secret=secret,
            on_message=self._on_stream_message,
            on_session=self._on_stream_session,
            log=self._log,
            loop=loop,
            reconnect_initial_delay_s=float(getattr(config, "reconnect_initial_delay_s", 0.5)),
            reconnect_max_delay_s=float(getattr(config, "reconnect_max_delay_s", 30.0)),
        )
        # options (config.option_underlyings): a second websocket on the options feed (msgpack only,
        # /v1beta1/{indicative|opra}); the chain tracker decides which contracts are loaded and quoted
        self._option_feed = (getattr(config, "option_feed", None) or "indicative").lower()
        self._option_stream = AlpacaMarketDataStream(
            url=option_stream_url_for(self._option_feed, getattr(config, "option_data_stream_url", None),
                                      config.data_stream_url),
            api_key=key,
            api_secret=secret,
            on_message=self._on_stream_message,
            log=self._log,
            loop=loop,
            reconnect_initial_delay_s=float(getattr(config, "reconnect_initial_delay_s", 0.5)),
            reconnect_max_delay_s=float(getattr(config, "reconnect_max_delay_s", 30.0)),
        )
        underlyings = tuple(getattr(config, "option_underlyings", None) or ())
        self._option_chain = OptionChainTracker(
            underlyings, expiries=int(getattr(config, "option_expiries", 2)),
            band_pct=float(getattr(config, "option_strike_band_pct", 0.03)),
            quote_strikes=int(getattr(config, "option_quote_strikes", 2))) if underlyings else None
        self._option_auto: dict[str, set[InstrumentId]] = {}   # underlying -> contracts quoted for it
        self._option_busy: set[str] = set()                     # underlyings with a refresh running
        self._option_http: Any = None
        self._key_secret = (key, secret)
        self._bar_types: dict[InstrumentId, BarType] = {}       # streamed 1-minute bar subscriptions
        self._last_bar_ns: dict[BarType, int] = {}              # ts_event of the last bar emitted
        self._bar_sub_ns: dict[BarType, int] = {}               # when each bar subscription started
        self._backfill_buffers: dict[BarType, list[Bar]] = {}   # live bars held during a gap fill
        self._backfill_task: asyncio.Task | None = None
        self._quote_ids: set[InstrumentId] = set()
        self._trade_ids: set[InstrumentId] = set()
        self.skipped_records = 0
        self._log.info(f"Alpaca data client: feed={self._feed}, key={mask(key)}, "
                       f"stream={self._stream.url}", LogColor.BLUE)

    # ----------------------------------------------------------------------------- properties --
    @property
    def stream(self) -> AlpacaMarketDataStream:
        return self._stream

    @property
    def instrument_provider(self) -> InstrumentProvider:
        return self._instrument_provider

    # -------------------------------------------------------------------------------- helpers --
    def _build_rest_client(self, key: str, secret: str, config: AlpacaDataClientConfig) -> Any:
        timeout = self._timeout_s

        class _TimeoutStockHistoricalDataClient(StockHistoricalDataClient):
            """alpaca-py's client has no request timeout; a hung request would pin a worker."""

            def _one_request(self, method, url, opts, retry):  # noqa: ANN001
                return super()._one_request(method, url, {**opts, "timeout": timeout}, retry)

        return _TimeoutStockHistoricalDataClient(key, secret, raw_data=True, url_override=config.data_url)

    def _precisions(self, instrument_id: InstrumentId) -> tuple[int, int]:
        instrument = self._cache.instrument(instrument_id) or self._instrument_provider.find(instrument_id)
        if instrument is None:
            return 2, 0
        return instrument.price_precision, instrument.size_precision

    async def _ensure_instrument(self, instrument_id: InstrumentId) -> None:
        """Load an instrument that is not cached yet (Nautilus needs it for bar aggregation)."""
        if self._cache.instrument(instrument_id) is not None:
            return
        instrument = self._instrument_provider.find(instrument_id)
        if instrument is None:
            try:
                await self._instrument_provider.load_async(instrument_id)
            except Exception as e:  # noqa: BLE001 - data still flows without the definition
                self._log.warning(f"Could not load instrument {instrument_id}: {type(e).__name__}: {e}")
                return
            instrument = self._instrument_provider.find(instrument_id)
        if instrument is not None:
            self._handle_data(instrument)

    def _skip(self, what: str, error: Exception) -> None:
        self.skipped_records += 1
        self._log.error(f"Skipping {what}: {error}")

    async def _run_sync(self, fn: Callable, *args: Any, **kwargs: Any) -> Any:
        return await self._loop.run_in_executor(None, functools.partial(fn, *args, **kwargs))

    def _feed_enum(self) -> Any:
        try:
            return DataFeed(self._feed)
        except ValueError:
            return None

    # ---------------------------------------------------------------------- connect/disconnect --
    async def _connect(self) -> None:
        await self._instrument_provider.initialize()
        for instrument in self._instrument_provider.list_all():
            self._handle_data(instrument)
        self._stream.reopen()
        if self._stream.has_subscriptions():  # reconnecting a client that had subscriptions
            self._stream.start()
        self._option_stream.reopen()
        if self._option_stream.has_subscriptions():
            self._option_stream.start()
        if self._option_chain is not None:
            for underlying in self._option_chain.underlyings:
                price = await self._latest_price(underlying)
                if price is None:
                    self._log.warning(f"Options {underlying}: no last price yet; the chain loads on its first bar")
                    continue
                await self._refresh_options(underlying, price)

    async def _disconnect(self) -> None:
        if self._backfill_task is not None and not self._backfill_task.done():
            self._backfill_task.cancel()
        self._backfill_buffers.clear()
        await self._stream.close()
        await self._option_stream.close()

    # -------------------------------------------------------------------------------- options --
    def _stream_for(self, instrument_id: InstrumentId) -> AlpacaMarketDataStream:
        return self._option_stream if is_option_symbol(alpaca_symbol(instrument_id)) else self._stream

    @property
    def option_stream(self) -> AlpacaMarketDataStream:
        return self._option_stream

    @property
    def option_chain(self) -> OptionChainTracker | None:
        return self._option_chain

    def _auto_quoted(self, instrument_id: InstrumentId) -> bool:
        return any(instrument_id in ids for ids in self._option_auto.values())

    async def _latest_price(self, symbol: str) -> float | None:
        """The underlying's last trade price (REST), else its latest minute bar's close."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            from alpaca.data.requests import StockLatestBarRequest, StockLatestTradeRequest
        for request, fn, key in ((StockLatestTradeRequest, "get_stock_latest_trade", "p"),
                                 (StockLatestBarRequest, "get_stock_latest_bar", "c")):
            try:
                raw = await self._run_sync(getattr(self._http, fn),
                                           request(symbol_or_symbols=symbol, feed=self._feed_enum()))
            except Exception as e:  # noqa: BLE001 - the chain then loads on the first bar
                self._log.warning(f"Options {symbol}: latest price request failed: {type(e).__name__}: {e}")
                continue
            rec = raw.get(symbol) if isinstance(raw, dict) else None
            value = field(rec, key) if rec is not None else None
            try:
                if value is not None and float(value) > 0:
                    return float(value)
            except (TypeError, ValueError):
                continue
        return None

    def _on_underlying_price(self, symbol: str, price: float) -> None:
        """A bar of an option underlying: reload its chain (new day, price left the band) or
        re-centre its streamed quotes."""
        chain = self._option_chain
        if chain is None or symbol not in chain.underlyings or symbol in self._option_busy:
            return
        today = ny_date(self._clock.timestamp_ns())
        if chain.needs_load(symbol, price, today):
            self.create_task(self._refresh_options(symbol, price), log_msg=f"alpaca: {symbol} option chain")
        else:
            self.create_task(self._sync_option_quotes(symbol, price), log_msg=f"alpaca: {symbol} option quotes")

    async def _refresh_options(self, underlying: str, price: float) -> None:
        """Load the chain around ``price`` (contracts into the cache), then re-centre the quotes."""
        chain = self._option_chain
        if chain is None or underlying in self._option_busy:
            return
        self._option_busy.add(underlying)
        try:
            today = ny_date(self._clock.timestamp_ns())
            window = chain.load_window(underlying, price, today)
            loaded: list = []
            try:
                await self._instrument_provider.load_option_chain_async(
                    [underlying], window["expiration_gte"], window["expiration_lte"],
                    strike_price_gte=window["strike_price_gte"], strike_price_lte=window["strike_price_lte"],
                    instruments=loaded)
            except Exception as e:  # noqa: BLE001 - retried on the next bar
                self._log.error(f"Options {underlying}: loading contracts failed: {type(e).__name__}: {e}")
                return
            expiries = chain.set_chain(underlying, loaded, price, today)
            kept = 0
            for inst in loaded:
                if ny_date(int(inst.expiration_ns)) in expiries:
                    self._handle_data(inst)
                    kept += 1
            self._log.info(f"Options {underlying}: {kept} contracts around {price:g} expiring "
                           f"{', '.join(e.isoformat() for e in expiries) or 'none listed'}", LogColor.BLUE)
        finally:
            self._option_busy.discard(underlying)
        await self._sync_option_quotes(underlying, price)

    async def _sync_option_quotes(self, underlying: str, price: float) -> None:
        chain = self._option_chain
        if chain is None:
            return
        today = ny_date(self._clock.timestamp_ns())
        wanted = {instrument_id_for(s) for s in chain.wanted(underlying, price, today)}
        current = self._option_auto.get(underlying, set())
        new, gone = wanted - current, current - wanted
        if not new and not gone:
            return
        self._option_auto[underlying] = wanted
        drop = [alpaca_symbol(i) for i in gone if i not in self._quote_ids and not self._auto_quoted(i)]
        if drop:
            await self._option_stream.unsubscribe("quotes", drop)
        if new:
            await self._option_stream.subscribe("quotes", sorted(alpaca_symbol(i) for i in new))
            await self._seed_option_quotes(sorted(new, key=str))

    async def _seed_option_quotes(self, ids: list[InstrumentId]) -> None:
        """The latest quote of each new option subscription (``/v1beta1/options/quotes/latest``),
        emitted when it is at most ``option_snapshot_max_age_s`` old and newer than the cache's."""
        max_age_ns = int(float(getattr(self._config, "option_snapshot_max_age_s", 300.0)) * 1e9)
        try:
            raw = await self._run_sync(self._latest_option_quotes, [alpaca_symbol(i) for i in ids])
        except Exception as e:  # noqa: BLE001 - the stream still brings quotes
            self._log.warning(f"Latest option quotes failed: {type(e).__name__}: {e}")
            return
        now = self._clock.timestamp_ns()
        for iid in ids:
            rec = (raw or {}).get(alpaca_symbol(iid))
            if rec is None:
                continue
            pp, sp = self._precisions(iid)
            try:
                quote = parse_quote(rec, iid, ts_init=now, price_precision=pp, size_precision=sp)
            except AlpacaDataError as e:
                self._log.debug(f"Skipping latest {iid} quote: {e}")
                continue
            cached = self._cache.quote_tick(iid)
            if now - quote.ts_event > max_age_ns or (cached is not None and cached.ts_event >= quote.ts_event):
                continue
            self._handle_data(quote)

    def _latest_option_quotes(self, symbols: list[str]) -> dict:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            from alpaca.data.enums import OptionsFeed
            from alpaca.data.historical.option import OptionHistoricalDataClient
            from alpaca.data.requests import OptionLatestQuoteRequest
        if self._option_http is None:
            timeout = self._timeout_s

            class _TimeoutOptionClient(OptionHistoricalDataClient):
                def _one_request(self, method, url, opts, retry):  # noqa: ANN001
                    return super()._one_request(method, url, {**opts, "timeout": timeout}, retry)

            key, secret = self._key_secret
            self._option_http = _TimeoutOptionClient(key, secret, raw_data=True, url_override=self._config.data_url)
        try:
            feed = OptionsFeed(self._option_feed)
        except ValueError:
            feed = None
        return self._option_http.get_option_latest_quote(OptionLatestQuoteRequest(symbol_or_symbols=symbols,
                                                                                  feed=feed))

    # -------------------------------------------------------------------------- subscriptions --
    async def _subscribe_instruments(self, command: SubscribeInstruments) -> None:
        self._log.debug("Alpaca instruments are static: nothing to stream")

    async def _subscribe_instrument(self, command: SubscribeInstrument) -> None:
        await self._ensure_instrument(command.instrument_id)

    async def _unsubscribe_instruments(self, command: UnsubscribeInstruments) -> None:
        pass

    async def _unsubscribe_instrument(self, command: UnsubscribeInstrument) -> None:
        pass

    async def _subscribe_bars(self, command: SubscribeBars) -> None:
        bar_type = command.bar_type
        reason = check_streamable(bar_type)
        if reason:
            self._log.error(f"Cannot subscribe {bar_type}: {reason}")
            return
        iid = bar_type.instrument_id
        self._bar_types[iid] = bar_type
        self._bar_sub_ns.setdefault(bar_type, self._clock.timestamp_ns())
        await self._ensure_instrument(iid)
        await self._stream.subscribe("bars", [alpaca_symbol(iid)])

    async def _unsubscribe_bars(self, command: UnsubscribeBars) -> None:
        iid = command.bar_type.instrument_id
        if self._bar_types.get(iid) != command.bar_type:
            return
        del self._bar_types[iid]
        self._bar_sub_ns.pop(command.bar_type, None)
        self._backfill_buffers.pop(command.bar_type, None)
        await self._stream.unsubscribe("bars", [alpaca_symbol(iid)])

    async def _subscribe_quote_ticks(self, command: SubscribeQuoteTicks) -> None:
        self._quote_ids.add(command.instrument_id)
        await self._ensure_instrument(command.instrument_id)
        await self._stream_for(command.instrument_id).subscribe("quotes", [alpaca_symbol(command.instrument_id)])

    async def _unsubscribe_quote_ticks(self, command: UnsubscribeQuoteTicks) -> None:
        self._quote_ids.discard(command.instrument_id)
        if self._auto_quoted(command.instrument_id):
            return  # still streamed for the option chain
        await self._stream_for(command.instrument_id).unsubscribe("quotes", [alpaca_symbol(command.instrument_id)])

    async def _subscribe_trade_ticks(self, command: SubscribeTradeTicks) -> None:
        self._trade_ids.add(command.instrument_id)
        await self._ensure_instrument(command.instrument_id)
        await self._stream_for(command.instrument_id).subscribe("trades", [alpaca_symbol(command.instrument_id)])

    async def _unsubscribe_trade_ticks(self, command: UnsubscribeTradeTicks) -> None:
        self._trade_ids.discard(command.instrument_id)
        await self._stream_for(command.instrument_id).unsubscribe("trades", [alpaca_symbol(command.instrument_id)])

    # ---------------------------------------------------------------------------- live data --
    def _on_stream_message(self, msg: dict) -> None:
        kind = msg.get("T")
        if kind == "b":
            self._on_stream_bar(msg)
        elif kind == "q":
            self._on_stream_quote(msg)
        elif kind == "t":
            self._on_stream_trade(msg)
        # "u" (updatedBars), "d" (dailyBars), statuses... are not subscribed and are ignored.

    def _on_stream_bar(self, msg: dict) -> None:
        symbol = msg.get("S")
        iid = instrument_id_for(symbol)
        bar_type = self._bar_types.get(iid)
        if bar_type is None:
            return  # a late message after an unsubscribe
        pp, sp = self._precisions(iid)
        try:
            bar = parse_bar(msg, bar_type, interval_ns=ONE_MINUTE_NS, ts_init=self._clock.timestamp_ns(),
                            price_precision=pp, size_precision=sp)
        except AlpacaDataError as e:
            self._skip(f"{bar_type} bar starting {describe_time(msg.get('t'))}", e)
            return
        buffer = self._backfill_buffers.get(bar_type)
        if buffer is not None:
            buffer.append(bar)  # emitted after the gap fill, in order
            return
        self._emit_bar(bar)

    def _emit_bar(self, bar: Bar) -> bool:
        last = self._last_bar_ns.get(bar.bar_type)
        if last is not None and bar.ts_event <= last:
            if bar.ts_event < last:
                self._log.warning(f"Dropping out-of-order bar {bar.bar_type} closing at "
                                  f"{ns_to_datetime(bar.ts_event).isoformat()} (last emitted "
                                  f"{ns_to_datetime(last).isoformat()})")
            return False  # equal: already emitted (gap fill overlap)
        self._last_bar_ns[bar.bar_type] = bar.ts_event
        self._handle_data(bar)
        if self._option_chain is not None:
            self._on_underlying_price(alpaca_symbol(bar.bar_type.instrument_id), bar.close.as_double())
        return True

    def _on_stream_quote(self, msg: dict) -> None:
        iid = instrument_id_for(msg.get("S"))
        if iid not in self._quote_ids and not self._auto_quoted(iid):
            return
        pp, sp = self._precisions(iid)
        try:
            quote = parse_quote(msg, iid, ts_init=self._clock.timestamp_ns(), price_precision=pp,
                                size_precision=sp)
        except AlpacaDataError as e:
            if e.reason == "zero":  # one-sided book (e.g. no IEX bid): normal, not an error
                self._log.debug(f"Skipping one-sided {iid} quote: {e}")
                return
            self._skip(f"{iid} quote at {describe_time(msg.get('t'))}", e)
            return
        self._handle_data(quote)

    def _on_stream_trade(self, msg: dict) -> None:
        iid = instrument_id_for(msg.get("S"))
        if iid not in self._trade_ids:
            return
        pp, sp = self._precisions(iid)
        try:
            trade = parse_trade(msg, iid, ts_init=self._clock.timestamp_ns(), price_precision=pp,
                                size_precision=sp)
        except AlpacaDataError as e:
            self._skip(f"{iid} trade at {describe_time(msg.get('t'))}", e)
            return
        self._handle_data(trade)

    # ------------------------------------------------------------------------------ gap fill --
    def _on_stream_session(self, session: int) -> None:
        if session <= 1 or not self._bar_types:
            return
        bar_types = list(self._bar_types.values())
        for bt in bar_types:  # hold live bars until the REST gap fill is emitted
            self._backfill_buffers.setdefault(bt, [])
        if self._backfill_task is not None and not self._backfill_task.done():
            return  # the running gap fill flushes the buffers of every bar type
        self._backfill_task = self.create_task(self._gap_fill(), log_msg="alpaca: bar gap fill")

    async def _gap_fill(self) -> None:
        while self._backfill_buffers:
            bar_types = list(self._backfill_buffers)
            for bar_type in bar_types:
                fetched: list[Bar] = []
                since = self._last_bar_ns.get(bar_type, self._bar_sub_ns.get(bar_type))
                now_ns = self._clock.timestamp_ns()
                if since is not None:
                    try:
                        fetched = await self._fetch_bars(bar_type, start_ns=since + 1, end_ns=now_ns, live=True)
                    except Exception as e:  # noqa: BLE001 - live bars still flow
                        self._log.error(f"Gap fill of {bar_type} failed: {type(e).__name__}: {e}")
                buffered = self._backfill_buffers.pop(bar_type, None)
                if bar_type not in self._bar_types.values():
                    continue  # unsubscribed meanwhile
                merged = sorted(fetched + (buffered or []), key=lambda b: b.ts_event)
                emitted = sum(1 for bar in merged if self._emit_bar(bar))
                if fetched:
                    self._log.info(f"Gap fill {bar_type}: {len(fetched)} bar(s) from REST after the "
                                   f"reconnect ({emitted} emitted with the buffered live bars)", LogColor.BLUE)

    # -------------------------------------------------------------------------------- requests --
    async def _request_instrument(self, request: RequestInstrument) -> None:
        await self._ensure_instrument(request.instrument_id)
        instrument = self._cache.instrument(request.instrument_id) or self._instrument_provider.find(
            request.instrument_id)
        if instrument is None:
            self._log.error(f"Instrument {request.instrument_id} not available from Alpaca")
            return
        self._handle_instrument(instrument, request.id, request.start, request.end, request.params)

    async def _request_instruments(self, request: RequestInstruments) -> None:
        instruments = list(self._instrument_provider.list_all())
        self._handle_instruments(request.venue, instruments, request.id, request.start, request.end,
                                 request.params)

    def _time_window(self, start: Any, end: Any) -> tuple[int | None, int]:
        now_ns = self._clock.timestamp_ns()
        start_ns = to_unix_nanos(pd.Timestamp(start)) if start is not None else None
        end_ns = min(to_unix_nanos(pd.Timestamp(end)), now_ns) if end is not None else now_ns
        return start_ns, end_ns

    async def _fetch_bars(self, bar_type: BarType, start_ns: int | None, end_ns: int,
                          limit: int = 0, adjustment: str | None = None,
                          live: bool = False) -> list[Bar]:
        """Bars of ``bar_type`` whose CLOSE lies in [start_ns, end_ns] (the last ``limit`` if > 0).

        ``adjustment``: Alpaca's corporate-action adjustment (``raw`` — the default, consistent
        with the live stream —, ``split``, ``dividend``, ``all``). ``live``: the bars are about to be
        published as live data (gap fill), so ``ts_init`` is now rather than the close time."""
        interval = bar_interval_ns(bar_type.spec)
        symbol = alpaca_symbol(bar_type.instrument_id)
        # Alpaca filters on the bar START: a bar closing in [start, end] starts in
        # [start - interval, end - interval].
        q_start = ns_to_datetime(start_ns - interval) if start_ns is not None else None
        q_end = ns_to_datetime(end_ns - interval)
        if q_start is not None and q_start > q_end:
            return []
        params: dict[str, Any] = {"symbol_or_symbols": symbol, "timeframe": timeframe_for(bar_type.spec),
                                  "end": q_end, "feed": self._feed_enum()}
        if q_start is not None:
            params["start"] = q_start
        elif limit <= 0:
            params["start"] = q_end - timedelta(days=1)  # no start, no limit: the last day
        if limit > 0:
            params["limit"] = limit
            params["sort"] = Sort.DESC  # the most recent `limit` bars, reversed below
        if adjustment:
            params["adjustment"] = Adjustment(str(adjustment).lower())
        raw = await self._run_sync(self._http.get_stock_bars, StockBarsRequest(**params))
        records = _records_for(raw, symbol)
        pp, sp = self._precisions(bar_type.instrument_id)
        bars: list[Bar] = []
        for rec in records:
            try:
                bar = parse_bar(rec, bar_type, interval_ns=interval, price_precision=pp, size_precision=sp,
                                ts_init=self._clock.timestamp_ns() if live else None)
            except AlpacaDataError as e:
                t = rec.get("t") if isinstance(rec, dict) else getattr(rec, "timestamp", None)
                self._skip(f"{bar_type} bar starting {describe_time(t)}", e)
                continue
            if bar.ts_event > end_ns or (start_ns is not None and bar.ts_event < start_ns):
                continue  # still forming, or outside the window
            bars.append(bar)
        bars.sort(key=lambda b: b.ts_event)
        if limit > 0:
            bars = bars[-limit:]
        return bars

    async def _request_bars(self, request: RequestBars) -> None:
        bar_type = request.bar_type
        bars: list[Bar] = []
        reason = check_requestable(bar_type)
        if reason:
            self._log.error(f"Cannot request {bar_type} from Alpaca: {reason}")
        else:
            start_ns, end_ns = self._time_window(request.start, request.end)
            adjustment = (request.params or {}).get("adjustment")
            try:
                bars = await self._fetch_bars(bar_type, start_ns, end_ns, limit=request.limit or 0,
                                              adjustment=adjustment)
            except Exception as e:  # noqa: BLE001 - answer (empty) so the requester is not left waiting
                self._log.error(f"Request of {bar_type} bars failed: {type(e).__name__}: {e}")
            else:
                self._log.info(f"Received {len(bars)} {bar_type} bar(s) from Alpaca", LogColor.BLUE)
        self._handle_bars(bar_type, bars, request.id, request.start, request.end, request.params)

    async def _fetch_ticks(self, kind: str, instrument_id: InstrumentId, start: Any, end: Any,
                           limit: int) -> list:
        start_ns, end_ns = self._time_window(start, end)
        symbol = alpaca_symbol(instrument_id)
        params: dict[str, Any] = {"symbol_or_symbols": symbol, "end": ns_to_datetime(end_ns),
                                  "feed": self._feed_enum()}
        if start_ns is not None:
            params["start"] = ns_to_datetime(start_ns)
        elif limit <= 0:
            params["start"] = ns_to_datetime(end_ns) - timedelta(minutes=5)
        if limit > 0:
            params["limit"] = limit
            params["sort"] = Sort.DESC
        if kind == "quotes":
            raw = await self._run_sync(self._http.get_stock_quotes, StockQuotesRequest(**params))
            parse = parse_quote
        else:
            raw = await self._run_sync(self._http.get_stock_trades, StockTradesRequest(**params))
            parse = parse_trade
        pp, sp = self._precisions(instrument_id)
        ticks = []
        for rec in _records_for(raw, symbol):
            try:
                ticks.append(parse(rec, instrument_id, price_precision=pp, size_precision=sp))
            except AlpacaDataError as e:
                if kind == "quotes" and e.reason == "zero":
                    continue  # one-sided quote
                self._skip(f"{instrument_id} {kind[:-1]}", e)
        ticks.sort(key=lambda x: x.ts_event)
        return ticks[-limit:] if limit > 0 else ticks

    async def _request_quote_ticks(self, request: RequestQuoteTicks) -> None:
        ticks: list = []
        try:
            ticks = await self._fetch_ticks("quotes", request.instrument_id, request.start, request.end,
                                            request.limit or 0)
        except Exception as e:  # noqa: BLE001
            self._log.error(f"Request of {request.instrument_id} quotes failed: {type(e).__name__}: {e}")
        self._handle_quote_ticks(request.instrument_id, ticks, request.id, request.start, request.end,
                                 request.params)

    async def _request_trade_ticks(self, request: RequestTradeTicks) -> None:
        ticks: list = []
        try:
            ticks = await self._fetch_ticks("trades", request.instrument_id, request.start, request.end,
                                            request.limit or 0)
        except Exception as e:  # noqa: BLE001
            self._log.error(f"Request of {request.instrument_id} trades failed: {type(e).__name__}: {e}")
        self._handle_trade_ticks(request.instrument_id, ticks, request.id, request.start, request.end,
                                 request.params)


def _records_for(raw: Any, symbol: str) -> list:
    """The records of ``symbol`` from a raw dict (``raw_data=True``) or a BarSet/QuoteSet/TradeSet."""
    if raw is None:
        return []
    data = raw.data if hasattr(raw, "data") and not isinstance(raw, dict) else raw
    if isinstance(data, dict):
        return list(data.get(symbol) or [])
    return []


__all__ = ["AlpacaDataClient", "AlpacaMarketDataStream", "AlpacaStreamError", "stream_url_for"]
