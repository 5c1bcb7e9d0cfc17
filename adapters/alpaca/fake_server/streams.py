"""Websocket endpoints: the trading stream (``/stream``, ``trade_updates``) and the stock
market-data stream (``/v2/{feed}``), speaking the protocols alpaca-py's ``TradingStream`` and
``StockDataStream`` use.

Trading stream (alpaca-py ``trading/stream.py``):
  client -> {"action": "authenticate", "data": {"key_id": K, "secret_key": S}}
            (also accepted: {"action": "auth", "key": K, "secret": S})
  server -> {"stream": "authorization", "data": {"action": "authenticate", "status": "authorized"}}
  client -> {"action": "listen", "data": {"streams": ["trade_updates"]}}
  server -> {"stream": "listening", "data": {"streams": ["trade_updates"]}}
  server -> {"stream": "trade_updates", "data": {"event": ..., "order": {...}, "timestamp": ...,
             [fills:] "price", "qty", "position_qty", "execution_id"}}
  JSON in binary frames like Alpaca's paper endpoint (config ``trade_stream_frames``), or
  MessagePack when the handshake carries ``Content-Type: application/msgpack``.

Market-data stream (alpaca-py ``data/live/websocket.py``; it sends
``Content-Type: application/msgpack`` and decodes every frame with msgpack):
  server -> [{"T": "success", "msg": "connected"}]
  client -> {"action": "auth", "key": K, "secret": S}
  server -> [{"T": "success", "msg": "authenticated"}]
            or [{"T": "error", "code": 402, "msg": "auth failed"}]
            or [{"T": "error", "code": 406, "msg": "connection limit exceeded"}]  (then closed)
  client -> {"action": "subscribe", "trades": [...], "quotes": [...], "bars": [...], ...}
  server -> [{"T": "subscription", "trades": [...], "quotes": [...], "bars": [...], ...}]
  server -> [{"T": "b"|"q"|"t", "S": symbol, ..., "t": <msgpack Timestamp | RFC 3339 string>}]
  Without the msgpack header the data stream speaks JSON in text frames.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from datetime import datetime, timezone
from http import HTTPStatus
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import msgpack
from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from .marketdata import rfc3339

if TYPE_CHECKING:  # pragma: no cover
    from .server import FakeAlpacaServer

log = logging.getLogger(__name__)

_CLOSE = object()
_DATA_PATH = re.compile(r"^/v2/([a-z_]+)$")
_OPTION_PATH = re.compile(r"^/v1beta1/(indicative|opra)$")  # the options feed: msgpack only
_OCC = re.compile(r"^[A-Z][A-Z0-9.]{0,5}\d{6}[CP]\d{8}$")


def is_option_symbol(symbol: str) -> bool:
    return bool(_OCC.match(symbol))
DATA_CHANNELS = ("trades", "quotes", "bars", "updatedBars", "dailyBars", "statuses", "lulds")


def _is_msgpack(ws: ServerConnection) -> bool:
    ct = (ws.request.headers.get("Content-Type") or "") if ws.request else ""
    return ct.lower().startswith("application/msgpack")


def _to_msgpack_ready(obj: Any) -> Any:
    if isinstance(obj, datetime):
        return msgpack.Timestamp.from_datetime(obj.astimezone(timezone.utc))  # exact, like Alpaca's
    if isinstance(obj, dict):
        return {k: _to_msgpack_ready(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_to_msgpack_ready(v) for v in obj]
    return obj


def _to_json_ready(obj: Any) -> Any:
    if isinstance(obj, datetime):
        return rfc3339(obj)
    if isinstance(obj, dict):
        return {k: _to_json_ready(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_to_json_ready(v) for v in obj]
    return obj


def _decode(raw: Any) -> Any:
    if isinstance(raw, str):
        return json.loads(raw)
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return msgpack.unpackb(raw, timestamp=0)


class _Conn:
    def __init__(self, ws: ServerConnection, kind: str, codec: str, frames: str) -> None:
        self.ws = ws
        self.kind = kind            # "trade" | "data"
        self.codec = codec          # "json" | "msgpack"
        self.frames = frames        # "binary" | "text" (JSON only)
        self.queue: asyncio.Queue = asyncio.Queue()
        self.key: str | None = None
        self.listening = False      # trade_updates
        self.feed: str | None = None
        self.options = False        # the options feed (/v1beta1/...)
        self.subs: dict[str, set[str]] = {c: set() for c in DATA_CHANNELS}
        self.closing = False

    def encode(self, payload: Any) -> bytes | str:
        if self.codec == "msgpack":
            return msgpack.packb(_to_msgpack_ready(payload), use_bin_type=True)
        text = json.dumps(_to_json_ready(payload), separators=(",", ":"))
        return text.encode("utf-8") if self.frames == "binary" else text

    def send(self, payload: Any) -> None:
        if not self.closing:
            self.queue.put_nowait(self.encode(payload))

    def close_soon(self, code: int = 1011, reason: str = "connection dropped by fake server") -> None:
        if not self.closing:
            self.closing = True
            self.queue.put_nowait((_CLOSE, code, reason))


class StreamHub:
    def __init__(self, server: "FakeAlpacaServer") -> None:
        self.server = server
        self.loop: asyncio.AbstractEventLoop | None = None
        self.trade_conns: set[_Conn] = set()
        self.data_conns: set[_Conn] = set()
        self.stats = {"trade_connections": 0, "data_connections": 0, "data_rejections": 0,
                      "trade_events_sent": 0, "trade_drops": 0}

    # ------------------------------------------------------------------------------- routing ---
    def process_request(self, conn: ServerConnection, request: Request) -> Response | None:
        path = urlsplit(request.path).path.rstrip("/")
        if path == "/stream" or _DATA_PATH.match(path) or _OPTION_PATH.match(path):
            return None
        body = b'{"code":40410000,"message":"not found"}'
        return Response(HTTPStatus.NOT_FOUND.value, "Not Found",
                        Headers([("Content-Type", "application/json"), ("Content-Length", str(len(body)))]),
                        body)

    async def handler(self, ws: ServerConnection) -> None:
        path = urlsplit(ws.request.path).path.rstrip("/")
        if path == "/stream":
            await self._trade(ws)
        elif _OPTION_PATH.match(path):
            await self._data(ws, _OPTION_PATH.match(path).group(1), options=True)
        else:
            m = _DATA_PATH.match(path)
            await self._data(ws, m.group(1) if m else "")

    async def _sender(self, conn: _Conn) -> None:
        try:
            while True:
                item = await conn.queue.get()
                if isinstance(item, tuple) and item[0] is _CLOSE:
                    await conn.ws.close(item[1], item[2])
                    return
                await conn.ws.send(item)
        except ConnectionClosed:
            pass

    async def _recv(self, conn: _Conn, timeout: float | None = None) -> Any:
        raw = await (asyncio.wait_for(conn.ws.recv(), timeout) if timeout else conn.ws.recv())
        return _decode(raw)

    async def _finish(self, conn: _Conn, sender: asyncio.Task, reason: str) -> None:
        """Let queued frames (e.g. a final error) go out, then close (1008 policy violation)."""
        conn.close_soon(1008, reason)
        try:
            await asyncio.wait_for(sender, 2)
        except (asyncio.TimeoutError, Exception):
            sender.cancel()

    # --------------------------------------------------------------------------- trade stream ---
    async def _trade(self, ws: ServerConnection) -> None:
        cfg = self.server.config
        conn = _Conn(ws, "trade", "msgpack" if _is_msgpack(ws) else "json", cfg.trade_stream_frames)
        sender = asyncio.create_task(self._sender(conn))
        self.trade_conns.add(conn)
        self.stats["trade_connections"] += 1
        try:
            try:
                msg = await self._recv(conn, cfg.auth_timeout)
            except asyncio.TimeoutError:
                conn.send({"stream": "authorization",
                           "data": {"action": "authenticate", "status": "unauthorized", "error": "auth timeout"}})
                await self._finish(conn, sender, "auth timeout")
                return
            key, secret = _trade_credentials(msg)
            if key is None or not self.server.check_key(key, secret):
                conn.send({"stream": "authorization", "data": {"action": "authenticate", "status": "unauthorized"}})
                await self._finish(conn, sender, "unauthorized")
                return
            conn.key = key
            conn.send({"stream": "authorization", "data": {"action": "authenticate", "status": "authorized"}})
            while True:
                msg = await self._recv(conn)
                action = msg.get("action") if isinstance(msg, dict) else None
                if action == "listen":
                    streams = ((msg.get("data") or {}).get("streams")) or []
                    valid = [s for s in streams if s == "trade_updates"]
                    conn.listening = bool(valid)
                    conn.send({"stream": "listening", "data": {"streams": valid}})
                elif action in ("authenticate", "auth"):
                    conn.send({"stream": "authorization",
                               "data": {"action": "authenticate", "status": "authorized"}})
                else:
                    conn.send({"stream": "listening", "data": {"error": "invalid action"}})
        except (ConnectionClosed, asyncio.CancelledError):
            pass
        except Exception:  # pragma: no cover - protocol garbage
            log.exception("trade stream handler error")
        finally:
            conn.listening = False
            self.trade_conns.discard(conn)
            if not sender.done():
                conn.close_soon()
                try:
                    await asyncio.wait_for(sender, 2)
                except (asyncio.TimeoutError, Exception):
                    sender.cancel()

    def publish_trade(self, payload: dict) -> None:
        """Engine sink (any thread, under the engine lock): queue one trade_updates event."""
        when = self.server.faults.take_drop(payload["event"])
        msg = {"stream": "trade_updates", "data": payload}
        if self.loop is not None:
            self.loop.call_soon_threadsafe(self._deliver_trade, msg, when)

    def _deliver_trade(self, msg: dict, when: str | None) -> None:
        for conn in list(self.trade_conns):
            if not conn.listening or conn.closing:
                continue
            if when == "before":
                conn.listening = False
                conn.close_soon()
                self.stats["trade_drops"] += 1
                continue
            conn.send(msg)
            self.stats["trade_events_sent"] += 1
            if when == "after":
                conn.listening = False
                conn.close_soon()
                self.stats["trade_drops"] += 1

    # ---------------------------------------------------------------------------- data stream ---
    async def _data(self, ws: ServerConnection, feed: str, options: bool = False) -> None:
        """A market-data websocket: stocks (``/v2/{feed}``, msgpack or JSON) or options
        (``/v1beta1/{indicative|opra}``, msgpack only as at Alpaca); one connection per key each."""
        cfg = self.server.config
        conn = _Conn(ws, "data", "msgpack" if options or _is_msgpack(ws) else "json", "text")
        conn.feed = feed
        conn.options = options
        sender = asyncio.create_task(self._sender(conn))
        registered = False
        try:
            conn.send([{"T": "success", "msg": "connected"}])
            deadline = asyncio.get_running_loop().time() + cfg.auth_timeout
            while True:  # wait for auth
                left = deadline - asyncio.get_running_loop().time()
                try:
                    msg = await self._recv(conn, max(left, 0.001))
                except asyncio.TimeoutError:
                    conn.send([{"T": "error", "code": 404, "msg": "auth timeout"}])
                    await self._finish(conn, sender, "auth timeout")
                    return
                if isinstance(msg, dict) and msg.get("action") == "auth":
                    break
                conn.send([{"T": "error", "code": 401, "msg": "not authenticated"}])
            key, secret = msg.get("key"), msg.get("secret")
            if not self.server.check_key(key, secret):
                conn.send([{"T": "error", "code": 402, "msg": "auth failed"}])
                await self._finish(conn, sender, "auth failed")
                return
            if feed not in (cfg.option_data_feeds if options else cfg.data_feeds):
                conn.send([{"T": "error", "code": 409, "msg": "insufficient subscription"}])
                await self._finish(conn, sender, "insufficient subscription")
                return
            same_key = [c for c in self.data_conns if c.key == key and not c.closing and c.options == options]
            if len(same_key) >= cfg.data_connection_limit:
                self.stats["data_rejections"] += 1
                conn.send([{"T": "error", "code": 406, "msg": "connection limit exceeded"}])
                await self._finish(conn, sender, "connection limit exceeded")
                return
            conn.key = key
            self.data_conns.add(conn)
            registered = True
            self.stats["data_connections"] += 1
            conn.send([{"T": "success", "msg": "authenticated"}])
            while True:
                msg = await self._recv(conn)
                action = msg.get("action") if isinstance(msg, dict) else None
                if action in ("subscribe", "unsubscribe"):
                    for ch in DATA_CHANNELS:
                        syms = msg.get(ch) or []
                        if not isinstance(syms, list):
                            syms = [syms]
                        for s in syms:
                            s = str(s).upper() if s != "*" else "*"
                            (conn.subs[ch].add if action == "subscribe" else conn.subs[ch].discard)(s)
                    conn.send([self._subscription_msg(conn)])
                elif action == "auth":
                    conn.send([{"T": "error", "code": 403, "msg": "already authenticated"}])
                else:
                    conn.send([{"T": "error", "code": 400, "msg": "invalid syntax"}])
        except (ConnectionClosed, asyncio.CancelledError):
            pass
        except Exception:  # pragma: no cover
            log.exception("data stream handler error")
        finally:
            if registered:
                self.data_conns.discard(conn)
            if not sender.done():
                conn.close_soon()
                try:
                    await asyncio.wait_for(sender, 2)
                except (asyncio.TimeoutError, Exception):
                    sender.cancel()

    @staticmethod
    def _subscription_msg(conn: _Conn) -> dict:
        m: dict[str, Any] = {"T": "subscription"}
        for ch in DATA_CHANNELS:
            m[ch] = sorted(conn.subs[ch])
        m["corrections"] = sorted(conn.subs["trades"])
        m["cancelErrors"] = sorted(conn.subs["trades"])
        return m

    def publish_data(self, channel: str, symbol: str, msg: dict) -> None:
        """Engine sink (any thread): stream one bar/quote/trade to subscribers."""
        if self.loop is not None:
            self.loop.call_soon_threadsafe(self._deliver_data, channel, symbol, msg)

    def _deliver_data(self, channel: str, symbol: str, msg: dict) -> None:
        option = is_option_symbol(symbol)
        for conn in list(self.data_conns):
            if conn.options != option:
                continue  # option data only on the options feed, stock data only on the stock feed
            subs = conn.subs.get(channel, set())
            if symbol in subs or "*" in subs:
                conn.send([msg])

    # ------------------------------------------------------------------------------ control ---
    def drop_trade_streams(self) -> int:
        n = 0
        for conn in list(self.trade_conns):
            conn.listening = False
            conn.close_soon()
            n += 1
        return n

    def drop_data_streams(self) -> int:
        n = 0
        for conn in list(self.data_conns):
            conn.close_soon()
            n += 1
        return n

    def trade_listeners(self) -> int:
        return sum(1 for c in self.trade_conns if c.listening and not c.closing)

    def data_subscribers(self) -> int:
        return sum(1 for c in self.data_conns if not c.closing and any(c.subs[ch] for ch in DATA_CHANNELS))


def _trade_credentials(msg: Any) -> tuple[str | None, str | None]:
    if not isinstance(msg, dict):
        return None, None
    if msg.get("action") == "authenticate":
        data = msg.get("data") or {}
        return data.get("key_id"), data.get("secret_key")
    if msg.get("action") == "auth":
        return msg.get("key"), msg.get("secret")
    return None, None
