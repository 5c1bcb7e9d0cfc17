"""The Alpaca market-data websocket: one connection multiplexing bars / quotes / trades for many
symbols (Alpaca allows one per account and answers 406 to a second), with subscriptions kept and
re-sent after every reconnect, and reconnects with NautilusTrader's exponential backoff + jitter.

Why not alpaca-py's ``StockDataStream``: it cannot be driven from inside the Nautilus event loop
(see ``data``). The wire protocol is small, so ``AlpacaMarketDataStream`` speaks it directly with
``websockets`` (an alpaca-py dependency), in MessagePack like alpaca-py. Used by ``data``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

import msgpack
from nautilus_trader.common.enums import LogColor
from nautilus_trader.live.retry import get_exponential_backoff

from .common import DATA_STREAM_URL, mask

CHANNELS = ("bars", "quotes", "trades")

# Stream errors after which reconnecting cannot help (wrong keys, feed not in the plan, bad URL).
FATAL_STREAM_CODES = {402: "auth failed", 409: "insufficient subscription"}


class AlpacaStreamError(Exception):
    """An ``{"T": "error", "code": ..., "msg": ...}`` answer of the market-data stream."""

    def __init__(self, code: int | None, msg: str) -> None:
        super().__init__(f"{msg} ({code})")
        self.code = code
        self.msg = msg


def _is_loopback(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    return host in ("127.0.0.1", "localhost", "::1")


def stream_url_for(feed: str, override: str | None = None) -> str:
    """``override`` as given when it has a path, else ``{override or Alpaca}/v2/{feed}``."""
    if override:
        parts = urlsplit(override)
        if parts.path and parts.path != "/":
            return override
        return override.rstrip("/") + f"/v2/{feed}"
    return f"{DATA_STREAM_URL}/v2/{feed}"


# ============================================================================================== #
# The websocket                                                                                  #
# ============================================================================================== #
class AlpacaMarketDataStream:
    """One Alpaca market-data websocket multiplexing bars / quotes / trades for many symbols.

    Runs as a task on the given event loop. ``subscribe``/``unsubscribe`` may be awaited at any
    time (before the first connection, while connected, while reconnecting): the wanted set is
    kept here and synchronised with the server after every (re)connection. Every market-data
    message (dict with ``T`` in ``b q t``...) goes to ``on_message`` synchronously, in arrival
    order; ``on_session`` is called after each successful authentication + subscription with the
    session number (1 = first connection, >1 = reconnect).

    Counters for tests and monitoring: ``sessions`` (successful authentications), ``attempts``
    (connection attempts), ``last_error``.
    """

    def __init__(
        self,
        url: str,
        api_key: str,
        api_secret: str,
        on_message: Callable[[dict], None],
        log: Any,
        *,
        loop: asyncio.AbstractEventLoop | None = None,
        on_session: Callable[[int], None] | None = None,
        reconnect_initial_delay_s: float = 0.5,
        reconnect_max_delay_s: float = 30.0,
        stable_after_s: float = 10.0,
        open_timeout_s: float = 10.0,
        ping_interval_s: float | None = 20.0,
    ) -> None:
        self.url = url
        self._key = api_key
        self._secret = api_secret
        self._on_message = on_message
        self._on_session = on_session
        self._log = log
        self._loop = loop
        self._initial = reconnect_initial_delay_s
        self._max = reconnect_max_delay_s
        self._stable_after = stable_after_s
        self._open_timeout = open_timeout_s
        self._ping_interval = ping_interval_s
        self._wanted: dict[str, set[str]] = {ch: set() for ch in CHANNELS}
        self._server: dict[str, set[str]] = {ch: set() for ch in CHANNELS}
        self._ws: Any = None
        self._authenticated = False
        self._sync_lock = asyncio.Lock()
        self._task: asyncio.Task | None = None
        self._closing = False
        self._stopped_reason: str | None = None
        self._connected_event = asyncio.Event()
        self.confirmed: dict[str, set[str]] = {ch: set() for ch in CHANNELS}  # last server ack
        self.sessions = 0
        self.attempts = 0
        self.last_error: str | None = None

    # ---------------------------------------------------------------------------- public API --
    @property
    def is_connected(self) -> bool:
        return self._authenticated and self._ws is not None

    @property
    def is_running(self) -> bool:
        return self._task is not None and not self._task.done()

    def subscriptions(self) -> dict[str, set[str]]:
        return {ch: set(v) for ch, v in self._wanted.items()}

    def is_synchronised(self) -> bool:
        """Connected, and the server's last acknowledgement equals the wanted subscriptions."""
        return self.is_connected and all(self.confirmed[ch] == self._wanted[ch] for ch in CHANNELS)

    def has_subscriptions(self) -> bool:
        return any(self._wanted.values())

    def start(self) -> None:
        """Start the connection task (idempotent)."""
        if self._closing or self.is_running:
            return
        loop = self._loop or asyncio.get_running_loop()
        self._task = loop.create_task(self._run(), name="alpaca-market-data-stream")

    async def wait_connected(self, timeout: float | None = None) -> bool:
        try:
            await asyncio.wait_for(self._connected_event.wait(), timeout)
            return True
        except asyncio.TimeoutError:
            return False

    async def subscribe(self, channel: str, symbols: Iterable[str]) -> None:
        self._wanted[channel].update(symbols)
        self.start()
        await self._sync_if_connected()

    async def unsubscribe(self, channel: str, symbols: Iterable[str]) -> None:
        self._wanted[channel].difference_update(symbols)
        await self._sync_if_connected()

    def reopen(self) -> None:
        """Allow ``start`` again after ``close`` (a Nautilus disconnect → connect cycle)."""
        self._closing = False

    async def close(self) -> None:
        """Close the socket and stop reconnecting."""
        self._closing = True
        ws = self._ws
        if ws is not None:
            try:
                await asyncio.wait_for(ws.close(), 5)
            except Exception:  # noqa: BLE001 - closing anyway
                pass
        task = self._task
        if task is not None and not task.done():
            task.cancel()
            try:
                await task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001
                pass
        self._task = None

    # ------------------------------------------------------------------------------ internals --
    def _encode(self, payload: dict) -> bytes:
        return msgpack.packb(payload, use_bin_type=True)

    @staticmethod
    def _decode(raw: bytes | str) -> list:
        if isinstance(raw, str):
            data = json.loads(raw)
        else:
            try:
                data = msgpack.unpackb(raw, timestamp=0, strict_map_key=False)
            except Exception:  # noqa: BLE001 - JSON in a binary frame
                data = json.loads(raw.decode("utf-8"))
        return data if isinstance(data, list) else [data]

    async def _send(self, payload: dict) -> None:
        ws = self._ws
        if ws is None:
            raise ConnectionError("market-data stream not connected")
        await ws.send(self._encode(payload))

    async def _sync_if_connected(self) -> None:
        if not self.is_connected:
            return  # the run loop synchronises right after the next authentication
        try:
            await self._sync()
        except Exception as e:  # noqa: BLE001 - the run loop reconnects and resyncs
            self._log.warning(f"Alpaca stream: subscription update failed ({type(e).__name__}: {e}); "
                              "it is re-sent after the reconnect")

    async def _sync(self) -> None:
        """Send (un)subscribe messages until the server's set equals the wanted set."""
        async with self._sync_lock:
            while self.is_connected:
                add = {ch: sorted(self._wanted[ch] - self._server[ch]) for ch in CHANNELS}
                rem = {ch: sorted(self._server[ch] - self._wanted[ch]) for ch in CHANNELS}
                add = {ch: syms for ch, syms in add.items() if syms}
                rem = {ch: syms for ch, syms in rem.items() if syms}
                if not add and not rem:
                    return
                if add:
                    await self._send({"action": "subscribe", **add})
                    for ch, syms in add.items():
                        self._server[ch].update(syms)
                if rem:
                    await self._send({"action": "unsubscribe", **rem})
                    for ch, syms in rem.items():
                        self._server[ch].difference_update(syms)

    async def _handshake(self, ws: Any) -> None:
        """``connected`` → auth → ``authenticated``; raises ``AlpacaStreamError`` on an error frame."""
        authed_sent = False
        while True:
            raw = await asyncio.wait_for(ws.recv(), self._open_timeout)
            for msg in self._decode(raw):
                kind = msg.get("T")
                if kind == "error":
                    raise AlpacaStreamError(msg.get("code"), str(msg.get("msg", "error")))
                if kind == "success" and msg.get("msg") == "connected" and not authed_sent:
                    await ws.send(self._encode({"action": "auth", "key": self._key, "secret": self._secret}))
                    authed_sent = True
                elif kind == "success" and msg.get("msg") == "authenticated":
                    return

    def _backoff(self, attempt: int) -> float:
        """Seconds before reconnect ``attempt``: NautilusTrader's exponential backoff with jitter."""
        initial_ms = max(1, round(self._initial * 1000))
        return get_exponential_backoff(max(attempt, 1), initial_ms, max(initial_ms, round(self._max * 1000))) / 1000

    async def _run(self) -> None:
        from websockets.asyncio.client import connect
        from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

        loop = asyncio.get_running_loop()
        failures = 0
        while not self._closing:
            reason = "closed"
            session_start: float | None = None
            self.attempts += 1
            try:
                kwargs: dict[str, Any] = {
                    "additional_headers": {"Content-Type": "application/msgpack"},
                    "open_timeout": self._open_timeout,
                    "ping_interval": self._ping_interval,
                    "ping_timeout": self._ping_interval,
                    "close_timeout": 2,
                    "max_size": 2**24,
                    "max_queue": 256,
                }
                if _is_loopback(self.url):
                    kwargs["proxy"] = None
                if self.sessions == 0 and failures == 0:
                    self._log.info(f"Alpaca stream: connecting to {self.url}", LogColor.BLUE)
                async with connect(self.url, **kwargs) as ws:
                    await self._handshake(ws)
                    self._ws = ws
                    self._server = {ch: set() for ch in CHANNELS}
                    self.confirmed = {ch: set() for ch in CHANNELS}
                    self._authenticated = True
                    self.sessions += 1
                    session_start = loop.time()
                    await self._sync()
                    self._connected_event.set()
                    n = sum(len(v) for v in self._wanted.values())
                    what = ", ".join(f"{ch}: {len(v)}" for ch, v in self._wanted.items() if v) or "nothing yet"
                    verb = "connected" if self.sessions == 1 else f"reconnected (session {self.sessions})"
                    self._log.info(f"Alpaca stream {verb} to {self.url}; subscribed {n} ({what})",
                                   LogColor.GREEN)
                    if self._on_session is not None:
                        try:
                            self._on_session(self.sessions)
                        except Exception as e:  # noqa: BLE001
                            self._log.error(f"Alpaca stream: session callback failed: {e!r}")
                    async for raw in ws:
                        self._dispatch(raw)
                    reason = f"closed by server (code {ws.close_code})"
            except asyncio.CancelledError:
                raise
            except AlpacaStreamError as e:
                reason = f"server error {e}"
                if e.code in FATAL_STREAM_CODES:
                    self.last_error = reason
                    self._stopped_reason = reason
                    self._log.error(f"Alpaca stream: {reason} for key {mask(self._key)}; not reconnecting "
                                    "(check the credentials and the feed of your plan)")
                    return
                if e.code == 406:
                    reason = ("connection limit exceeded (406): another market-data websocket is open for "
                              f"key {mask(self._key)}; Alpaca allows one per account")
            except ConnectionClosed as e:
                reason = f"connection lost ({e})"
            except InvalidURI as e:
                self._stopped_reason = self.last_error = f"invalid URL: {e}"
                self._log.error(f"Alpaca stream: {self._stopped_reason}; not reconnecting")
                return
            except (OSError, InvalidHandshake, asyncio.TimeoutError, TimeoutError) as e:
                reason = f"{type(e).__name__}: {e}"
            except Exception as e:  # noqa: BLE001 - never let the stream task die silently
                reason = f"unexpected {type(e).__name__}: {e}"
                self._log.exception("Alpaca stream: unexpected error", e)
            finally:
                self._ws = None
                self._authenticated = False
                self._connected_event.clear()
            if self._closing:
                break
            self.last_error = reason
            stable = session_start is not None and loop.time() - session_start >= self._stable_after
            failures = 1 if stable else failures + 1
            delay = self._backoff(failures)
            self._log.warning(f"Alpaca stream {reason}; reconnecting in {delay:.1f} s (attempt {failures})")
            await asyncio.sleep(delay)

    def _dispatch(self, raw: bytes | str) -> None:
        try:
            msgs = self._decode(raw)
        except Exception as e:  # noqa: BLE001
            self._log.error(f"Alpaca stream: undecodable frame skipped ({type(e).__name__}: {e})")
            return
        for msg in msgs:
            if not isinstance(msg, dict):
                continue
            kind = msg.get("T")
            if kind == "subscription":
                self.confirmed = {ch: set(msg.get(ch) or []) for ch in CHANNELS}
                counts = ", ".join(f"{ch}: {len(msg.get(ch) or [])}" for ch in CHANNELS)
                self._log.debug(f"Alpaca stream subscription now {counts}")
            elif kind == "error":
                self._log.error(f"Alpaca stream error: {msg.get('msg')} ({msg.get('code')})")
            elif kind == "success":
                self._log.debug(f"Alpaca stream: {msg.get('msg')}")
            else:
                try:
                    self._on_message(msg)
                except Exception as e:  # noqa: BLE001 - one bad message must not kill the socket
                    self._log.exception(f"Alpaca stream: error handling {kind!r} message", e)


__all__ = ["CHANNELS", "FATAL_STREAM_CODES", "AlpacaMarketDataStream", "AlpacaStreamError", "stream_url_for"]
