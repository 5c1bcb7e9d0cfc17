"""A small HTTP/1.1 server on asyncio streams, enough for the Alpaca REST endpoints.

Why not ``websockets``' server for REST as well: its parser only accepts body-less GET handshakes.
Why not ``http.server``: handlers must run on the fake server's event loop (delayed acknowledgements
are ``asyncio.sleep`` calls while other requests are still being served).

Supports keep-alive (``requests.Session`` reuses connections), ``Content-Length`` bodies, and a
handler-requested "drop the connection without answering" used for fault injection.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Awaitable, Callable
from urllib.parse import parse_qsl, unquote, urlsplit

log = logging.getLogger(__name__)

MAX_HEADER_BYTES = 64 * 1024
MAX_BODY_BYTES = 8 * 1024 * 1024


class HeaderMap(dict):
    """Case-insensitive header lookup (keys stored lower-case)."""

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        return super().get(key.lower(), default)

    def __getitem__(self, key: str) -> Any:
        return super().__getitem__(key.lower())

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and super().__contains__(key.lower())


@dataclass
class HttpRequest:
    method: str
    target: str
    path: str
    query: dict[str, str]
    headers: HeaderMap
    body: bytes = b""
    peer: str = ""

    def json(self) -> Any:
        if not self.body:
            return None
        return json.loads(self.body.decode("utf-8"))


@dataclass
class HttpResponse:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False  # close the connection without sending anything

    @classmethod
    def json(cls, payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> "HttpResponse":
        body = json.dumps(payload, separators=(",", ":")).encode("utf-8")
        h = {"Content-Type": "application/json; charset=UTF-8"}
        if headers:
            h.update(headers)
        return cls(status=status, body=body, headers=h)

    @classmethod
    def empty(cls, status: int = 204) -> "HttpResponse":
        return cls(status=status, body=b"")

    @classmethod
    def dropped(cls) -> "HttpResponse":
        return cls(drop=True)


Handler = Callable[[HttpRequest], Awaitable[HttpResponse]]


class HttpServer:
    """Serves ``handler`` on ``host:port`` (port 0 = random free port) on the running loop."""

    def __init__(self, handler: Handler, host: str = "127.0.0.1", port: int = 0) -> None:
        self._handler = handler
        self._host = host
        self._port = port
        self._server: asyncio.base_events.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def port(self) -> int:
        assert self._server is not None
        return self._server.sockets[0].getsockname()[1]

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve_conn, self._host, self._port)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for w in list(self._writers):
            w.transport.abort()
        if self._server is not None:
            try:
                await asyncio.wait_for(self._server.wait_closed(), 2)
            except (asyncio.TimeoutError, Exception):  # pragma: no cover - best effort
                pass

    async def _serve_conn(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        peer = writer.get_extra_info("peername")
        peer_s = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        try:
            while True:
                req = await self._read_request(reader, peer_s)
                if req is None:
                    break
                if isinstance(req, HttpResponse):  # malformed request
                    await self._write(writer, req, keep_alive=False)
                    break
                try:
                    resp = await self._handler(req)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # pragma: no cover - surfaced as a 500 to the client
                    log.exception("fake alpaca handler error")
                    resp = HttpResponse.json({"code": 50010000, "message": f"internal error: {exc}"}, 500)
                if resp.drop:
                    writer.transport.abort()
                    return
                keep_alive = req.headers.get("connection", "").lower() != "close"
                await self._write(writer, resp, keep_alive=keep_alive)
                if not keep_alive:
                    break
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            writer.transport.abort()
            raise
        finally:
            self._writers.discard(writer)
            try:
                writer.close()
            except Exception:  # pragma: no cover
                pass

    async def _read_request(self, reader: asyncio.StreamReader, peer: str) -> HttpRequest | HttpResponse | None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return None
        except asyncio.LimitOverrunError:
            return HttpResponse.json({"code": 43100000, "message": "request header too large"}, 431)
        if len(head) > MAX_HEADER_BYTES:
            return HttpResponse.json({"code": 43100000, "message": "request header too large"}, 431)
        lines = head.decode("latin-1").split("\r\n")
        try:
            method, target, _version = lines[0].split(" ", 2)
        except ValueError:
            return HttpResponse.json({"code": 40000000, "message": "malformed request line"}, 400)
        headers = HeaderMap()
        for line in lines[1:]:
            if not line:
                continue
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if "chunked" in headers.get("transfer-encoding", "").lower():
            return HttpResponse.json({"code": 41100000, "message": "chunked bodies not supported"}, 411)
        length = int(headers.get("content-length", "0") or 0)
        if length > MAX_BODY_BYTES:
            return HttpResponse.json({"code": 41300000, "message": "body too large"}, 413)
        body = await reader.readexactly(length) if length else b""
        parts = urlsplit(target)
        query = {k: v for k, v in parse_qsl(parts.query, keep_blank_values=True)}
        return HttpRequest(method=method.upper(), target=target, path=unquote(parts.path), query=query,
                           headers=headers, body=body, peer=peer)

    @staticmethod
    async def _write(writer: asyncio.StreamWriter, resp: HttpResponse, keep_alive: bool) -> None:
        try:
            phrase = HTTPStatus(resp.status).phrase
        except ValueError:
            phrase = "Status"
        headers = dict(resp.headers)
        if resp.status not in (204, 304):
            headers["Content-Length"] = str(len(resp.body))
        headers["Connection"] = "keep-alive" if keep_alive else "close"
        headers.setdefault("Server", "fake-alpaca")
        out = [f"HTTP/1.1 {resp.status} {phrase}\r\n"]
        out += [f"{k}: {v}\r\n" for k, v in headers.items()]
        out.append("\r\n")
        writer.write("".join(out).encode("latin-1"))
        if resp.body and resp.status not in (204, 304):
            writer.write(resp.body)
        await writer.drain()
