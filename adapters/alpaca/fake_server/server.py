"""``FakeAlpacaServer``: runs the REST APIs and websockets on a background thread with its own
asyncio loop, and exposes a thread-safe Python control API for tests and demos."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import date, datetime, timedelta
from typing import Any, Callable, Iterable, Mapping

from websockets.asyncio.server import serve as ws_serve

from ._http import HttpRequest, HttpResponse, HttpServer
from .clock import FakeClock, MarketCalendar, _xnys
from .config import BROKER_LIKE, ServerConfig
from .engine import ApiError, D, Engine
from .faults import Faults
from .feed import BarFeed, BarFeedConfig
from .marketdata import coerce_bar, rows_from_frame
from .rest import RestApi
from .streams import StreamHub

DEFAULT_KEYS = {"FAKEPAPERKEY": "FAKEPAPERSECRET"}


class FakeAlpacaServer:
    """A local Alpaca (paper) server for tests and demos.

    >>> with FakeAlpacaServer(keys={"K": "S"}) as srv:
    ...     client = TradingClient("K", "S", paper=True, url_override=srv.trading_url)

    ``keys``: ``{key_id: secret}`` (or ``[(key_id, secret), ...]``); every key trades the same
    single account. Options: the fields of :class:`ServerConfig` as keyword arguments, or
    ``config=ServerConfig(...)``. ``broker_like=True`` switches on asynchronous routing and cancels
    and the wash-trade refusal (``config.BROKER_LIKE``); explicit options still win.
    """

    def __init__(self, keys: Mapping[str, str] | Iterable[tuple[str, str]] | None = None, *,
                 host: str = "127.0.0.1", port: int = 0, data_port: int = 0, stream_port: int = 0,
                 config: ServerConfig | None = None, broker_like: bool = False, **options: Any) -> None:
        self.keys: dict[str, str] = dict(keys) if keys is not None else dict(DEFAULT_KEYS)
        if not self.keys:
            raise ValueError("at least one API key is required")
        self.host = host
        self._ports_wanted = (port, data_port, stream_port)
        if broker_like:
            options = {**BROKER_LIKE, **options}
        self.config = ServerConfig.from_kwargs(config, **options)
        self.clock = FakeClock(self.config.clock_start)
        self.calendar = MarketCalendar(self.config.calendar)
        self.engine = Engine(self.config, self.clock, self.calendar)
        self.faults = Faults()
        self.hub = StreamHub(self)
        self.rest = RestApi(self)
        self.engine.trade_sink = self.hub.publish_trade
        self.engine.data_sink = self.hub.publish_data
        self._log_lock = threading.Lock()
        self._request_log: list[dict] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None
        self._stop_event: asyncio.Event | None = None
        self._ports: tuple[int, int, int] | None = None
        self.bar_feed: BarFeed | None = None

    # ============================================================================ lifecycle ===
    def start(self, timeout: float = 10.0) -> "FakeAlpacaServer":
        if self._thread is not None:
            return self
        if self.config.calendar == "auto":  # warm the (slow) exchange_calendars import off-thread
            threading.Thread(target=_xnys, name="fake-alpaca-calendar", daemon=True).start()
        self._thread = threading.Thread(target=self._run, name="fake-alpaca-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError("fake Alpaca server did not start in time")
        if self._startup_error is not None:
            raise RuntimeError("fake Alpaca server failed to start") from self._startup_error
        return self

    def stop(self, timeout: float = 5.0) -> None:
        if self._thread is None:
            return
        if self.bar_feed is not None:
            self.bar_feed.stop()
        if self._loop is not None and self._stop_event is not None:
            self._loop.call_soon_threadsafe(self._stop_event.set)
        self._thread.join(timeout)
        self._thread = None

    def __enter__(self) -> "FakeAlpacaServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._main())
        finally:
            try:
                pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
                for t in pending:
                    t.cancel()
                if pending:
                    loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            finally:
                loop.close()

    async def _main(self) -> None:
        self._stop_event = asyncio.Event()
        self.hub.loop = asyncio.get_running_loop()
        trading = HttpServer(self.rest.trading, self.host, self._ports_wanted[0])
        data = HttpServer(self.rest.data, self.host, self._ports_wanted[1])
        try:
            await trading.start()
            await data.start()
            ws = await ws_serve(self.hub.handler, self.host, self._ports_wanted[2],
                                process_request=self.hub.process_request, ping_interval=20, ping_timeout=60,
                                max_size=2**22)
        except BaseException as exc:  # port in use, ...
            self._startup_error = exc
            self._ready.set()
            await trading.close()
            await data.close()
            return
        self._ports = (trading.port, data.port, ws.sockets[0].getsockname()[1])
        self.engine.schedule = self._schedule
        self._ready.set()
        if self.config.bar_feed is not None:
            self.start_bar_feed(self.config.bar_feed)
        try:
            await self._stop_event.wait()
        finally:
            self.engine.schedule = None
            ws.close(close_connections=True)
            try:
                await asyncio.wait_for(ws.wait_closed(), 3)
            except (asyncio.TimeoutError, Exception):
                pass
            await trading.close()
            await data.close()

    def _schedule(self, delay: float, fn: Callable[[], None]) -> None:
        """Engine hook: run ``fn`` on the server loop ``delay`` real seconds from now (any thread)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            fn()
            return
        if threading.current_thread() is self._thread:
            loop.call_later(delay, fn)
        else:
            loop.call_soon_threadsafe(loop.call_later, delay, fn)

    def _submit_to_loop(self, fn: Callable[[], None]) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            raise RuntimeError("server not running")
        if threading.current_thread() is self._thread:
            fn()
        else:
            loop.call_soon_threadsafe(fn)

    def wait_idle(self, timeout: float = 5.0) -> None:
        """Wait until no asynchronous routing / cancel step is pending (``async_routing`` /
        ``async_cancels``)."""
        self.wait_for(lambda: self.engine.pending_timers == 0, timeout, message="routing/cancel timers")

    # ============================================================================ bar feed ===
    def start_bar_feed(self, config: BarFeedConfig | None = None, **options: Any) -> BarFeed:
        """Start streaming minute bars for many symbols (see ``feed.py``): ``symbols`` (list or
        ``{symbol: start price}``), ``speed`` (simulated seconds per real second, 60 by default;
        ``None`` = wall clock), ``start``, ``minutes``, ``lag``, ``jitter``, ``warmup_minutes``,
        ``seed``, ... Returns the running :class:`BarFeed` (also ``srv.bar_feed``)."""
        if self._thread is None:
            raise RuntimeError("start the server first")
        if isinstance(config, Mapping):
            config = BarFeedConfig(**config)
        if config is None:
            config = BarFeedConfig(**options)
        elif options:
            config = BarFeedConfig(**{**config.__dict__, **options})
        if self.bar_feed is not None:
            self.bar_feed.stop()
        feed = BarFeed(self, config)
        self.bar_feed = feed
        feed.begin()
        return feed

    # ================================================================================= URLs ===
    def _port(self, i: int) -> int:
        if self._ports is None:
            raise RuntimeError("server not started")
        return self._ports[i]

    @property
    def trading_url(self) -> str:
        """Base URL for ``TradingClient(url_override=...)`` (no ``/v2``: alpaca-py appends it)."""
        return f"http://{self.host}:{self._port(0)}"

    @property
    def data_url(self) -> str:
        """Base URL for ``StockHistoricalDataClient(url_override=...)``."""
        return f"http://{self.host}:{self._port(1)}"

    @property
    def stream_url(self) -> str:
        """Full URL for ``TradingStream(url_override=...)``."""
        return f"ws://{self.host}:{self._port(2)}/stream"

    @property
    def data_stream_url(self) -> str:
        """Full URL for ``StockDataStream(url_override=...)`` (IEX feed path)."""
        return self.data_stream_url_for("iex")

    def data_stream_url_for(self, feed: str) -> str:
        return f"ws://{self.host}:{self._port(2)}/v2/{feed}"

    @property
    def key_id(self) -> str:
        return next(iter(self.keys))

    @property
    def secret_key(self) -> str:
        return self.keys[self.key_id]

    def key_known(self, key: str | None) -> bool:
        return key is not None and key in self.keys

    def check_key(self, key: str | None, secret: str | None) -> bool:
        return key is not None and self.keys.get(key) == secret and secret is not None

    # =========================================================================== market data ===
    def set_quote(self, symbol: str, bid: float, ask: float, bid_size: float = 100, ask_size: float = 100,
                  t: datetime | None = None) -> None:
        """Set the current quote: streams it (``quotes``) and runs the matching engine (market
        buys fill at ``ask``, sells at ``bid``)."""
        self.engine.on_quote(symbol, bid, ask, bid_size, ask_size, t)

    def push_bar(self, symbol: str, bar: Any = None, *, timeframe: str = "1Min", **fields: Any) -> None:
        """Append a bar (dict with o/h/l/c/v[/t] or open/high/..., tuple, alpaca-py Bar, or keyword
        fields): stored for ``/v2/stocks/bars``, streamed (``bars``), matched (market orders at
        the close, limits/stops against high/low). Without a timestamp the bar is stamped with
        the clock's current minute."""
        if bar is None:
            bar = fields
        elif fields:
            bar = {**(bar if isinstance(bar, dict) else coerce_bar(bar).__dict__), **fields}
        now = self.clock.now()
        rec = coerce_bar(bar, default_t=now.replace(second=0, microsecond=0))
        self.engine.on_bar(symbol, rec, timeframe)

    def push_trade(self, symbol: str, price: float, size: float = 100, t: datetime | None = None) -> None:
        """A trade print: streamed (``trades``), updates the last price (position marks). Does
        not fill orders."""
        self.engine.on_trade(symbol, price, size, t)

    def set_bars(self, symbol: str, frame: Any, timeframe: str = "1Min") -> int:
        """Seed historical bars (pandas DataFrame with a DatetimeIndex or timestamp column and
        open/high/low/close[/volume/trade_count/vwap] columns, or an iterable of bars). Not
        streamed, not matched. Returns the number of bars stored."""
        rows = rows_from_frame(frame)
        with self.engine.lock:
            self.engine.asset(symbol.upper())
            return self.engine.market.add_bars(symbol.upper(), rows, timeframe)

    # =============================================================================== account ===
    def set_cash(self, cash: float) -> None:
        with self.engine.lock:
            self.engine.cash = D(cash)

    def set_last_equity(self, equity: float) -> None:
        with self.engine.lock:
            self.engine.last_equity = D(equity)

    def add_position(self, symbol: str, qty: float, avg_entry_price: float,
                     lastday_price: float | None = None) -> dict:
        """Pre-seed a position (negative qty = short). Cash is not changed."""
        return self.engine.add_position(symbol, qty, avg_entry_price, lastday_price)

    def add_open_order(self, symbol: str, qty: float, side: str = "buy", type: str = "limit",
                       time_in_force: str = "day", limit_price: float | None = None,
                       stop_price: float | None = None, client_order_id: str | None = None,
                       created_at: datetime | None = None, **extra: Any) -> dict:
        """Pre-seed an open order as if submitted earlier (no checks, no stream events).
        ``extra`` may hold ``order_class``, ``take_profit``, ``stop_loss``, ``trail_price``,
        ``trail_percent``, ``status``, ``fill_chunk``."""
        body: dict[str, Any] = {"symbol": symbol, "qty": qty, "side": side, "type": type,
                                "time_in_force": time_in_force, "limit_price": limit_price,
                                "stop_price": stop_price, "client_order_id": client_order_id, **extra}
        if created_at is not None:
            body["created_at"] = created_at
        return self.engine.submit_order({k: v for k, v in body.items() if v is not None}, seeded=True)

    def add_asset(self, symbol: str, **attrs: Any) -> dict:
        """Register / modify an asset (e.g. ``shortable=False``, ``tradable=False``,
        ``fractionable=False``, ``exchange="ARCA"``)."""
        return self.engine.add_asset(symbol, **attrs).to_json()

    def add_option_contract(self, underlying: str, expiration: date | str, strike: float, type: str,
                            **kw: Any) -> dict:
        return self.engine.add_option_contract(underlying, expiration, strike, type, **kw)

    def settle_options(self) -> None:
        """Run the option liquidations / expiries due on the server clock now (they also run on
        every tick and order; see ``options.py``)."""
        self.engine.check_expiry()

    def generate_option_chain(self, underlying: str, expirations: Iterable[date | str],
                              strikes: Iterable[float], types: Iterable[str] = ("call", "put")) -> list[dict]:
        return [self.engine.add_option_contract(underlying, e, k, t)
                for e in expirations for k in strikes for t in types]

    # ================================================================================= clock ===
    def now(self) -> datetime:
        return self.clock.now()

    def set_time(self, dt: datetime) -> None:
        """Freeze the clock at ``dt`` (manual mode); expires DAY orders past their session close."""
        self.clock.set(dt)
        self.engine.check_expiry()

    def advance_time(self, delta: timedelta | float) -> datetime:
        t = self.clock.advance(delta if isinstance(delta, timedelta) else timedelta(seconds=float(delta)))
        self.engine.check_expiry()
        return t

    def use_wall_clock(self) -> None:
        self.clock.use_wall_clock()

    # ============================================================================== matching ===
    def set_partial_fills(self, qty: float | None, symbol: str | None = None) -> None:
        """Fill at most ``qty`` shares per order per tick (``None`` = fill completely), for
        one symbol or globally."""
        with self.engine.lock:
            if symbol is None:
                self.config.partial_fill_qty = qty
            elif qty is None:
                self.engine.symbol_fill_chunk.pop(symbol.upper(), None)
            else:
                self.engine.symbol_fill_chunk[symbol.upper()] = D(qty)

    def set_order_fill_chunk(self, order: str, qty: float | None) -> None:
        """Per-order partial fills (``order``: order id or client_order_id)."""
        with self.engine.lock:
            o = self._order_obj(order)
            o.fill_chunk = D(qty) if qty is not None else None

    def expire_day_orders(self) -> int:
        """End the trading day now: every open DAY order expires (``expired`` events)."""
        return self.engine.expire_day_orders()

    def reject_order(self, order: str, reason: str = "rejected by fake server") -> None:
        with self.engine.lock:
            self.engine.reject_order(self._order_obj(order).id, reason)

    def cancel_order(self, order: str, now: bool = True) -> None:
        """The venue cancels the order: `canceled` at once (``now=False``: exactly like a client's
        ``DELETE /v2/orders/{id}``, i.e. asynchronous with ``async_cancels``)."""
        from .engine import CLOSED

        with self.engine.lock:
            o = self._order_obj(order)
            if now:
                if o.status in CLOSED:
                    raise ApiError(422, f'order is already in "{o.status}" state', 42210000)
                self.engine._cancel(o)
            else:
                self.engine.cancel_order(o.id)

    # ============================================================================ inspection ===
    def _order_obj(self, ref: str):
        e = self.engine
        oid = str(ref).lower() if str(ref).lower() in e.orders else e.by_client_id.get(str(ref))
        if oid is None:
            raise KeyError(f"no order {ref!r}")
        return e.orders[oid]

    def order(self, ref: str) -> dict:
        """One order as Alpaca JSON, by id or client_order_id."""
        with self.engine.lock:
            return self.engine.order_json(self._order_obj(ref))

    def orders(self, status: str = "all") -> list[dict]:
        """All orders (oldest first) as Alpaca JSON; ``status``: all / open / closed / an order status."""
        from .engine import CLOSED, OPEN

        with self.engine.lock:
            out = []
            for o in self.engine.orders.values():
                if status == "open" and o.status not in OPEN:
                    continue
                if status == "closed" and o.status not in CLOSED:
                    continue
                if status not in ("all", "open", "closed") and o.status != status:
                    continue
                out.append(self.engine.order_json(o, include_legs=False))
            return out

    def positions(self) -> list[dict]:
        return self.engine.positions_json()

    def account(self) -> dict:
        return self.engine.account_json()

    def set_account_state(self, *, status: str | None = None, account_blocked: bool | None = None,
                          trading_blocked: bool | None = None) -> None:
        """Report the account as Alpaca would: ``status`` (e.g. ``"ACCOUNT_CLOSED"``, ``"INACTIVE"``;
        default ``"ACTIVE"``), ``account_blocked``, ``trading_blocked``. Anything but an ACTIVE,
        unblocked account refuses new orders (403). ``None`` keeps a field as it is. The account
        number (paper ``PA...`` or not) is the ``account_number`` option."""
        with self.engine.lock:
            if status is not None:
                self.engine.account_status = str(status).upper()
            if account_blocked is not None:
                self.engine.account_blocked = bool(account_blocked)
            if trading_blocked is not None:
                self.engine.trading_blocked = bool(trading_blocked)

    def activities(self, types: Iterable[str] | None = None) -> list[dict]:
        """Account activities, oldest first (FILL and FEE)."""
        with self.engine.lock:
            want = {t.upper() for t in types} if types else None
            return [{k: v for k, v in a.items() if k != "_t"} for a in self.engine.activities
                    if want is None or a["activity_type"] in want]

    @property
    def trade_events(self) -> list[dict]:
        """Every trade_updates payload generated so far (whether or not a client got it)."""
        with self.engine.lock:
            return list(self.engine.trade_events)

    @property
    def request_log(self) -> list[dict]:
        with self._log_lock:
            return list(self._request_log)

    def requests_to(self, path: str, method: str | None = None) -> list[dict]:
        return [r for r in self.request_log if r["path"] == path and (method is None or r["method"] == method)]

    def _log_request(self, api: str, req: HttpRequest, resp: HttpResponse, elapsed: float) -> None:
        with self._log_lock:
            self._request_log.append({"api": api, "method": req.method, "path": req.path, "query": dict(req.query),
                                      "status": None if resp.drop else resp.status, "dropped": resp.drop,
                                      "elapsed": elapsed})

    @property
    def stats(self) -> dict:
        return dict(self.hub.stats)

    @property
    def trade_stream_listeners(self) -> int:
        return self._call_in_loop(self.hub.trade_listeners)

    @property
    def data_stream_connections(self) -> int:
        return self._call_in_loop(lambda: len(self.hub.data_conns))

    @property
    def data_stream_subscribers(self) -> int:
        return self._call_in_loop(self.hub.data_subscribers)

    def drop_trade_streams(self) -> int:
        """Close every trade_updates connection now (code 1011)."""
        return self._call_in_loop(self.hub.drop_trade_streams)

    def drop_data_streams(self) -> int:
        """Close every market-data connection now (code 1011)."""
        return self._call_in_loop(self.hub.drop_data_streams)

    def _call_in_loop(self, fn: Callable[[], Any]) -> Any:
        if self._loop is None or not self._loop.is_running():
            return fn()
        if threading.current_thread() is self._thread:
            return fn()

        async def _wrap() -> Any:
            return fn()

        return asyncio.run_coroutine_threadsafe(_wrap(), self._loop).result(5)

    def wait_for(self, predicate: Callable[[], Any], timeout: float = 5.0, interval: float = 0.01,
                 message: str = "condition") -> Any:
        """Poll ``predicate`` until truthy (returned) or raise ``TimeoutError``."""
        deadline = time.monotonic() + timeout
        while True:
            v = predicate()
            if v:
                return v
            if time.monotonic() >= deadline:
                raise TimeoutError(f"timed out after {timeout}s waiting for {message}")
            time.sleep(interval)


__all__ = ["FakeAlpacaServer", "ApiError", "DEFAULT_KEYS"]
