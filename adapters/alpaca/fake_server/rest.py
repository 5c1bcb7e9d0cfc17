"""REST routing for the trading API (``/v2/...`` on ``trading_url``) and the market-data API
(``/v2/stocks/...`` on ``data_url``)."""

from __future__ import annotations

import asyncio
import base64
import time
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any, Awaitable, Callable

from ._http import HttpRequest, HttpResponse
from .clock import NY
from .engine import ApiError
from .marketdata import canonical_timeframe, paginate, parse_time

if TYPE_CHECKING:  # pragma: no cover
    from .server import FakeAlpacaServer

JSON = HttpResponse.json


def _bad_request(message: str) -> ApiError:
    return ApiError(400, message, 40010000)


class RestApi:
    def __init__(self, server: "FakeAlpacaServer") -> None:
        self.s = server
        self.e = server.engine

    # ------------------------------------------------------------------------------- entry ---
    async def trading(self, req: HttpRequest) -> HttpResponse:
        return await self._serve("trading", req, self._route_trading)

    async def data(self, req: HttpRequest) -> HttpResponse:
        return await self._serve("data", req, self._route_data)

    async def _serve(self, api: str, req: HttpRequest,
                     route: Callable[[HttpRequest], Awaitable[HttpResponse]]) -> HttpResponse:
        t0 = time.monotonic()
        resp = await self._serve_inner(api, req, route)
        self.s._log_request(api, req, resp, time.monotonic() - t0)
        return resp

    async def _serve_inner(self, api: str, req: HttpRequest,
                           route: Callable[[HttpRequest], Awaitable[HttpResponse]]) -> HttpResponse:
        key = req.headers.get("APCA-API-KEY-ID")
        secret = req.headers.get("APCA-API-SECRET-KEY")
        auth = req.headers.get("Authorization") or ""
        if key is None and auth.lower().startswith("basic "):
            try:
                key, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
            except Exception:
                key = secret = None
        if not key or not secret or not self.s.key_known(key):
            return JSON({"code": 40110000, "message": "request is not authorized"}, 401)
        if not self.s.check_key(key, secret):
            return JSON({"code": 40310000, "message": "forbidden"}, 403)
        fault = self.s.faults.take_http(api, req.method, req.path)
        if fault is not None:
            return JSON(dict(fault.body), fault.status, fault.headers)
        try:
            return await route(req)
        except ApiError as e:
            return JSON(e.payload(), e.status, e.headers)
        except ValueError as e:
            return JSON({"code": 40010000, "message": str(e)}, 400 if api == "data" else 422)

    # ------------------------------------------------------------------------------ trading ---
    async def _route_trading(self, req: HttpRequest) -> HttpResponse:
        m, p, q = req.method, req.path.rstrip("/") or "/", req.query
        e = self.e
        if p == "/v2/account" and m == "GET":
            return JSON(e.account_json())
        if p == "/v2/account/configurations":
            if m == "GET":
                return JSON(e.account_configurations())
            if m == "PATCH":
                return JSON(e.patch_account_configurations(req.json() or {}))
        if p == "/v2/account/activities" and m == "GET":
            return JSON(e.list_activities(q))
        if p.startswith("/v2/account/activities/") and m == "GET":
            return JSON(e.list_activities(q, p.rsplit("/", 1)[1]))
        if p == "/v2/orders":
            if m == "GET":
                return JSON(e.list_orders(q))
            if m == "POST":
                return await self._post_order(req)
            if m == "DELETE":
                return JSON(e.cancel_all(), 207)
        if p == "/v2/orders:by_client_order_id" and m == "GET":
            if not q.get("client_order_id"):
                raise ApiError(422, "client_order_id is required", 40010001)
            return JSON(e.get_order_by_client_id(q["client_order_id"]))
        if p.startswith("/v2/orders/"):
            oid = p[len("/v2/orders/"):]
            if m == "GET":
                return JSON(e.get_order(oid))
            if m == "PATCH":
                return JSON(e.replace_order(oid, req.json() or {}))
            if m == "DELETE":
                e.cancel_order(oid)
                return HttpResponse.empty(204)
        if p == "/v2/positions":
            if m == "GET":
                return JSON(e.positions_json())
            if m == "DELETE":
                return JSON(e.close_all_positions(str(q.get("cancel_orders", "")).lower() == "true"), 207)
        if p.startswith("/v2/positions/"):
            sym = p[len("/v2/positions/"):]
            if m == "GET":
                return JSON(e.get_position(sym))
            if m == "DELETE":
                return JSON(e.close_position(sym, q))
        if p == "/v2/clock" and m == "GET":
            with e.lock:
                e.check_expiry()
            return JSON(self.s.calendar.clock(self.s.clock.now()))
        if p == "/v2/calendar" and m == "GET":
            return JSON(self._calendar(q))
        if p == "/v2/assets" and m == "GET":
            return JSON(e.list_assets(q))
        if p.startswith("/v2/assets/") and m == "GET":
            return JSON(e.get_asset(p[len("/v2/assets/"):]))
        if p == "/v2/options/contracts" and m == "GET":
            return JSON(e.list_option_contracts(q))
        if p.startswith("/v2/options/contracts/") and m == "GET":
            return JSON(e.get_option_contract(p[len("/v2/options/contracts/"):]))
        return JSON({"code": 40410000, "message": f"endpoint not found: {m} {p}"}, 404)

    async def _post_order(self, req: HttpRequest) -> HttpResponse:
        try:
            body = req.json()
        except ValueError:
            raise ApiError(400, "request body format is invalid", 40010000) from None
        faults = self.s.faults
        late = faults.take_late()
        if late is not None:  # the request is still "on the wire": nothing exists yet
            await asyncio.sleep(late.land_after)
            try:
                ack = self.e.submit_order(body or {})
            except ApiError as err:
                late.outcomes.append(("refused", err.status, err.message))
                return HttpResponse.dropped() if late.drop_response else JSON(err.payload(), err.status, err.headers)
            late.outcomes.append(("landed", ack["id"], ack["client_order_id"]))
            return HttpResponse.dropped() if late.drop_response else JSON(ack)
        delay = faults.take_delay()
        reject = faults.take_reject()
        after = faults.take_after_create()
        ack = self.e.submit_order(body or {})
        if reject is not None:
            loop = asyncio.get_running_loop()
            loop.call_later(reject.delay, self.e.reject_order, ack["id"], reject.reason)
        if delay is not None:
            await asyncio.sleep(delay.seconds)
            if delay.drop_response:
                return HttpResponse.dropped()
        if after is not None:
            after.order_ids.append(ack["id"])
            return JSON(dict(after.body), after.status, after.headers)
        return JSON(ack)

    def _calendar(self, q: dict) -> list[dict]:
        today = self.s.clock.now().astimezone(NY).date()
        start = date.fromisoformat(q["start"][:10]) if q.get("start") else today - timedelta(days=366)
        end = date.fromisoformat(q["end"][:10]) if q.get("end") else today + timedelta(days=366)
        if (end - start).days > 366 * 12:
            raise ApiError(422, "date range too large for the fake server (max 12 years)", 40010001)
        return [self.s.calendar.calendar_entry(s) for s in self.s.calendar.sessions(start, end)]

    # --------------------------------------------------------------------------------- data ---
    async def _route_data(self, req: HttpRequest) -> HttpResponse:
        m, p, q = req.method, req.path.rstrip("/"), req.query
        if m != "GET":
            return JSON({"code": 40410000, "message": "endpoint not found"}, 404)
        parts = p.split("/")  # ['', 'v2', 'stocks', ...]
        if parts[1:3] == ["v1beta1", "options"]:
            # options market data: /v1beta1/options/{quotes|trades}/latest?symbols=OCC,...
            if len(parts) == 5 and parts[3] in ("quotes", "trades") and parts[4] == "latest":
                return JSON(self._latest(parts[3], self._symbols(q)))
            return JSON({"code": 40410000, "message": f"endpoint not found: {p}"}, 404)
        if len(parts) < 4 or parts[1] != "v2" or parts[2] != "stocks":
            return JSON({"code": 40410000, "message": f"endpoint not found: {p}"}, 404)
        rest = parts[3:]
        # multi-symbol: /v2/stocks/{bars|quotes|trades}[/latest], /v2/stocks/snapshots
        if rest[0] in ("bars", "quotes", "trades"):
            syms = self._symbols(q)
            if len(rest) == 2 and rest[1] == "latest":
                return JSON(self._latest(rest[0], syms))
            if len(rest) == 1:
                return JSON(self._history(rest[0], syms, q, single=None))
        if rest == ["snapshots"]:
            return JSON({s: self._snapshot(s) for s in self._symbols(q)})
        # single symbol: /v2/stocks/{symbol}/{bars|quotes|trades}[/latest], /v2/stocks/{symbol}/snapshot
        if len(rest) >= 2:
            sym = rest[0].upper()
            kind = rest[1]
            if kind in ("bars", "quotes", "trades"):
                if len(rest) == 3 and rest[2] == "latest":
                    one = self._latest(kind, [sym]).get(kind, {}).get(sym)
                    return JSON({"symbol": sym, kind[:-1]: one})
                if len(rest) == 2:
                    return JSON(self._history(kind, [sym], q, single=sym))
            if kind == "snapshot" and len(rest) == 2:
                return JSON({"symbol": sym, **self._snapshot(sym)})
        return JSON({"code": 40410000, "message": f"endpoint not found: {p}"}, 404)

    @staticmethod
    def _symbols(q: dict) -> list[str]:
        raw = q.get("symbols") or ""
        syms = [s.strip().upper() for s in raw.split(",") if s.strip()]
        if not syms:
            raise _bad_request("symbols is required")
        return syms

    def _history(self, kind: str, syms: list[str], q: dict, single: str | None) -> dict:
        start = parse_time(q["start"]) if q.get("start") else None
        end = parse_time(q["end"]) if q.get("end") else None
        try:
            limit = int(q.get("limit") or 1000)
        except ValueError:
            raise _bad_request("invalid limit") from None
        if not 1 <= limit <= 10_000:
            raise _bad_request("invalid limit: must be between 1 and 10000")
        limit = min(limit, self.s.config.bars_max_page_size)
        desc = (q.get("sort") or "asc").lower() == "desc"
        md = self.e.market
        per_sym: dict[str, list[Any]] = {}
        with self.e.lock:
            for s in syms:
                if kind == "bars":
                    tf = q.get("timeframe")
                    if not tf:
                        raise _bad_request("timeframe is required")
                    try:
                        tf = canonical_timeframe(tf)
                    except ValueError:
                        raise _bad_request(f"invalid timeframe: {tf}") from None
                    recs = md.bar_series(s, tf, start, end)
                else:
                    series = (md.quotes if kind == "quotes" else md.trades).get(s)
                    recs = series.window(start, end) if series else []
                if recs:
                    per_sym[s] = list(recs)
        try:
            page, token = paginate(per_sym, limit, q.get("page_token") or None, desc)
        except ValueError as exc:
            raise _bad_request(str(exc)) from None
        if single is not None:
            return {kind: [r.rest() for r in page.get(single, [])], "symbol": single, "next_page_token": token}
        return {kind: {s: [r.rest() for r in recs] for s, recs in page.items()}, "next_page_token": token}

    def _latest(self, kind: str, syms: list[str]) -> dict:
        md = self.e.market
        out: dict[str, Any] = {}
        with self.e.lock:
            for s in syms:
                if kind == "quotes" and s in md.latest_quote:
                    out[s] = md.latest_quote[s].rest()
                elif kind == "trades" and s in md.latest_trade:
                    out[s] = md.latest_trade[s].rest()
                elif kind == "bars":
                    b = md.latest_bar(s)
                    if b is not None:
                        out[s] = b.rest()
        return {kind: out}

    def _snapshot(self, sym: str) -> dict:
        md = self.e.market
        with self.e.lock:
            q = md.latest_quote.get(sym)
            t = md.latest_trade.get(sym)
            b = md.latest_bar(sym)
            daily = md.bar_series(sym, "1Day", None, None)
        return {
            "latestTrade": t.rest() if t else None,
            "latestQuote": q.rest() if q else None,
            "minuteBar": b.rest() if b else None,
            "dailyBar": daily[-1].rest() if daily else None,
            "prevDailyBar": daily[-2].rest() if len(daily) > 1 else None,
        }
