"""The Alpaca ``trade_updates`` websocket of the execution client.

alpaca-py's ``TradingStream`` supplies the connection and authentication primitives; its own
run loop cannot be driven from inside the Nautilus event loop, so ``AlpacaTradeUpdatesStream``
runs its own: connect → auth → ``listen trade_updates`` → read, and on any failure close and
reconnect with exponential backoff and jitter (NautilusTrader's ``get_exponential_backoff``).

Every event is decoded to an ``AlpacaTradeUpdate`` and handed to ``on_update`` in arrival order
(a bad event is logged, never fatal). The stream remembers when it lost the connection
(Alpaca's clock): ``take_gap()`` gives that time once, and ``requery(http, since)`` re-reads the
orders and FILL activities of the gap so the missed events can be generated.
"""

from __future__ import annotations

import asyncio
import json
import warnings
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from nautilus_trader.common.enums import LogColor
from nautilus_trader.live.retry import get_exponential_backoff

from .http import AlpacaHttpClient, error_message
from .parsing import AlpacaFillActivity, AlpacaOrder, AlpacaTradeUpdate, decode_trade_update

with warnings.catch_warnings():  # alpaca-py's stream imports websockets.legacy (deprecated upstream)
    warnings.simplefilter("ignore", DeprecationWarning)
    from alpaca.trading.stream import TradingStream

#: Re-query this much before the recorded drop (events just before it may not have arrived).
REQUERY_MARGIN = timedelta(minutes=2)


class AlpacaTradeUpdatesStream:
    """The reconnecting ``trade_updates`` connection.

    Parameters
    ----------
    api_key, api_secret, paper, url : credentials and the stream URL (``wss://.../stream``).
    loop : the Nautilus event loop.
    logger : a Nautilus ``Logger``.
    on_update : called with each ``AlpacaTradeUpdate``.
    on_connected : called after each (re)connection, once listening.
    on_disconnected : called with the reason when an established connection drops.
    server_now : Alpaca's current time (the drop time is recorded on Alpaca's clock).
    open_timeout_s, reconnect_initial_delay_s, reconnect_max_delay_s : timing.
    """

    def __init__(self, api_key: str, api_secret: str, *, paper: bool, url: str,
                 loop: asyncio.AbstractEventLoop, logger: Any,
                 on_update: Callable[[AlpacaTradeUpdate], None],
                 on_connected: Callable[[], None],
                 on_disconnected: Callable[[str], None],
                 server_now: Callable[[], datetime],
                 open_timeout_s: float = 10.0,
                 reconnect_initial_delay_s: float = 0.5,
                 reconnect_max_delay_s: float = 30.0) -> None:
        self._key = api_key
        self._secret = api_secret
        self._paper = paper
        self.url = url
        self._loop = loop
        self._log = logger
        self._on_update = on_update
        self._on_connected = on_connected
        self._on_disconnected = on_disconnected
        self._server_now = server_now
        self._open_timeout = max(5.0, open_timeout_s)
        self._delay_initial_ms = max(1, round(reconnect_initial_delay_s * 1000))
        self._delay_max_ms = max(self._delay_initial_ms, round(reconnect_max_delay_s * 1000))
        self._stream: TradingStream | None = None
        self._task: asyncio.Task | None = None
        self._stopping = False
        self._disconnected_at: datetime | None = None
        self.connected = False
        self.ready = asyncio.Event()

    # ---------------------------------------------------------------------------------------- #
    # Lifecycle
    # ---------------------------------------------------------------------------------------- #

    def start(self) -> None:
        self._stopping = False
        self.ready.clear()
        self._task = self._loop.create_task(self._run(), name="alpaca-trade-updates")

    async def wait_ready(self) -> bool:
        try:
            await asyncio.wait_for(self.ready.wait(), timeout=self._open_timeout)
            return True
        except asyncio.TimeoutError:
            return False

    async def stop(self) -> None:
        self._stopping = True
        task = self._task
        if task is not None and not task.done():
            task.cancel()
            try:
                await asyncio.wait_for(asyncio.shield(task), timeout=2.0)
            except (asyncio.CancelledError, asyncio.TimeoutError, Exception):  # noqa: BLE001
                pass
        await self._close()
        self.connected = False

    def take_gap(self) -> datetime | None:
        """When the connection was lost (Alpaca's clock), once; None when nothing was missed."""
        since, self._disconnected_at = self._disconnected_at, None
        return since

    # ---------------------------------------------------------------------------------------- #
    # Connection
    # ---------------------------------------------------------------------------------------- #

    async def _close(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            try:
                await stream.close()
            except Exception:  # noqa: BLE001
                pass

    async def _open(self) -> None:
        stream = TradingStream(self._key, self._secret, paper=self._paper, url_override=self.url,
                               websocket_params={"ping_interval": 10, "ping_timeout": 30, "max_queue": 1024})
        self._stream = stream
        await asyncio.wait_for(stream._connect(), self._open_timeout)
        await asyncio.wait_for(stream._auth(), self._open_timeout)  # raises ValueError when unauthorized
        await stream._ws.send(json.dumps({"action": "listen", "data": {"streams": ["trade_updates"]}}))
        while True:  # wait for the listening acknowledgement
            msg = json.loads(await asyncio.wait_for(stream._ws.recv(), self._open_timeout))
            if msg.get("stream") == "listening":
                return
            if msg.get("stream") == "trade_updates":
                self._dispatch(msg)

    async def _run(self) -> None:
        attempt = 0
        while not self._stopping:
            reason = "closed"
            try:
                await self._open()
                attempt = 0
                self.connected = True
                self.ready.set()
                self._log.info(f"trade_updates connected ({self.url})", LogColor.GREEN)
                self._on_connected()
                while True:
                    raw = await self._stream._ws.recv()
                    self._dispatch(json.loads(raw))
            except asyncio.CancelledError:
                await self._close()
                raise
            except Exception as e:  # noqa: BLE001 - any failure → reconnect
                reason = error_message(e)
            await self._close()
            if self._stopping:
                break
            if self.connected or self._disconnected_at is None:
                self._disconnected_at = self._disconnected_at or self._server_now()
            attempt += 1
            delay = get_exponential_backoff(attempt, self._delay_initial_ms, self._delay_max_ms) / 1000
            if self.connected:
                self.connected = False
                self._log.warning(f"trade_updates stream dropped: {reason}; reconnecting")
                self._on_disconnected(reason)
            else:
                self._log.warning(f"trade_updates connect failed: {reason}; retry {attempt} in {delay:.1f} s")
            await asyncio.sleep(delay)

    def _dispatch(self, msg: dict) -> None:
        if msg.get("stream") != "trade_updates":
            return
        data = msg.get("data") or {}
        try:
            update = decode_trade_update(data)
            if update is not None:
                self._on_update(update)
        except Exception as e:  # noqa: BLE001 - one bad event must not kill the stream
            self._log.exception(f"Error handling trade update {data.get('event')}", e)


async def requery(http: AlpacaHttpClient, since: datetime,
                  ) -> tuple[list[AlpacaOrder], list[AlpacaFillActivity]]:
    """After a reconnect: the recent orders (the last 500, legs included) and the FILL
    activities since ``since`` minus ``REQUERY_MARGIN``."""
    fills = await http.get_fill_activities(since - REQUERY_MARGIN)
    orders = await http.get_orders("all", after=None, limit=500)
    return orders, fills


__all__ = ["REQUERY_MARGIN", "AlpacaTradeUpdatesStream", "requery"]
