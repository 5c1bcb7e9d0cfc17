"""Fault injection for the fake Alpaca server (thread-safe; call from any thread).

Every fault is armed for ``count`` occurrences and consumed FIFO. HTTP faults apply to
*authenticated* requests only (a bad key still gets 401/403), before the endpoint runs, so the
request has no effect (an order is not created).
"""

from __future__ import annotations

import fnmatch
import threading
from dataclasses import dataclass, field
from typing import Any


@dataclass
class HttpFault:
    pattern: str
    status: int
    body: dict
    headers: dict
    remaining: int
    method: str | None = None
    api: str = "any"  # "trading", "data" or "any"
    hits: int = 0

    def matches(self, api: str, method: str, path: str) -> bool:
        if self.remaining <= 0:
            return False
        if self.api != "any" and self.api != api:
            return False
        if self.method and self.method.upper() != method.upper():
            return False
        return path == self.pattern or fnmatch.fnmatchcase(path, self.pattern)


@dataclass
class DelayAck:
    seconds: float
    drop_response: bool
    remaining: int


@dataclass
class LateLanding:
    land_after: float
    drop_response: bool
    remaining: int
    outcomes: list = field(default_factory=list)  # ("landed", order_id, client_order_id) | ("refused", status, msg)


@dataclass
class ErrorAfterCreate:
    status: int
    body: dict
    headers: dict
    remaining: int
    order_ids: list = field(default_factory=list)  # the orders created behind the error answers


@dataclass
class AsyncReject:
    reason: str
    delay: float
    remaining: int


@dataclass
class StreamDrop:
    when: str  # "before" (event never sent) or "after" (sent, then the connection closes)
    events: tuple[str, ...]
    remaining: int


@dataclass
class Faults:
    http: list[HttpFault] = field(default_factory=list)
    delays: list[DelayAck] = field(default_factory=list)
    rejects: list[AsyncReject] = field(default_factory=list)
    drops: list[StreamDrop] = field(default_factory=list)
    late: list[LateLanding] = field(default_factory=list)
    after_create: list[ErrorAfterCreate] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()

    # ------------------------------------------------------------------------ arming (public) ---
    def http_error(self, path: str = "*", status: int = 500, count: int = 1, method: str | None = None,
                   body: dict | None = None, headers: dict | None = None, api: str = "any") -> HttpFault:
        """Next ``count`` requests whose path matches ``path`` (exact or fnmatch glob, e.g.
        ``"/v2/orders*"``) get ``status`` with an Alpaca-style JSON body."""
        if body is None:
            body = {"code": int(f"{status}10000") if status < 1000 else status,
                    "message": "internal server error occurred" if status >= 500 else f"error {status}"}
        f = HttpFault(pattern=path, status=status, body=body, headers=dict(headers or {}), remaining=count,
                      method=method, api=api)
        with self._lock:
            self.http.append(f)
        return f

    def rate_limit(self, path: str = "*", count: int = 1, retry_after: float = 1, method: str | None = None,
                   api: str = "any") -> HttpFault:
        """429 ``{"code": 42910000, "message": "rate limit exceeded"}`` with a ``Retry-After``
        header (seconds) and ``X-RateLimit-*`` headers. Note alpaca-py retries 429 itself
        (3 times, 3 s apart) before raising."""
        ra = str(int(retry_after)) if float(retry_after).is_integer() else str(retry_after)
        return self.http_error(path, 429, count, method,
                               {"code": 42910000, "message": "rate limit exceeded"},
                               {"Retry-After": ra, "X-RateLimit-Limit": "200", "X-RateLimit-Remaining": "0"},
                               api)

    def insufficient_buying_power(self, count: int = 1, buying_power: str = "0",
                                  cost_basis: str = "0") -> HttpFault:
        """Next ``count`` ``POST /v2/orders`` get 403 insufficient buying power (order not created)."""
        return self.http_error("/v2/orders", 403, count, "POST",
                               {"buying_power": buying_power, "code": 40310000, "cost_basis": cost_basis,
                                "message": "insufficient buying power"}, api="trading")

    def invalid_order(self, count: int = 1, message: str = "invalid order: rejected by fault injection"
                      ) -> HttpFault:
        """Next ``count`` ``POST /v2/orders`` get 422 (order not created)."""
        return self.http_error("/v2/orders", 422, count, "POST", {"code": 40010001, "message": message},
                               api="trading")

    def delay_ack(self, seconds: float, count: int = 1, drop_response: bool = False) -> DelayAck:
        """Next ``count`` ``POST /v2/orders``: the order IS accepted (and trades) at once, but the
        HTTP response is held back ``seconds``; with ``drop_response`` the connection is then
        closed without any response. A client that times out must look the order up by
        ``client_order_id`` instead of resubmitting."""
        d = DelayAck(float(seconds), bool(drop_response), count)
        with self._lock:
            self.delays.append(d)
        return d

    def land_late(self, land_after: float, count: int = 1, drop_response: bool = True) -> LateLanding:
        """Next ``count`` ``POST /v2/orders`` "land late": the request reaches the broker only
        ``land_after`` seconds after it was sent -- nothing exists before that (a query by
        ``client_order_id`` answers 404) -- and is then processed normally (created and routed,
        or refused, e.g. 422 when the client meanwhile resubmitted the same ``client_order_id``).
        The answer is sent after landing, or with ``drop_response`` (default) the connection is
        closed without one. A client that timed out and resubmitted must therefore expect either
        its resubmission or the late original to be refused as a duplicate. ``outcomes`` records
        what happened at landing."""
        f = LateLanding(float(land_after), bool(drop_response), count)
        with self._lock:
            self.late.append(f)
        return f

    def error_after_create(self, status: int = 500, count: int = 1, body: dict | None = None,
                           headers: dict | None = None) -> ErrorAfterCreate:
        """Next ``count`` ``POST /v2/orders``: the order IS created (and routed, and may trade),
        then the answer is ``status`` (5xx) with an Alpaca-style body instead of the order. The
        order is found by ``client_order_id``. Note alpaca-py retries 504 (and 429) by itself, so a
        504 here makes it POST the same ``client_order_id`` again (-> 422 unique)."""
        if body is None:
            body = {"code": int(f"{status}10000"),
                    "message": "internal server error occurred" if status == 500 else f"error {status}"}
        f = ErrorAfterCreate(int(status), dict(body), dict(headers or {}), count)
        with self._lock:
            self.after_create.append(f)
        return f

    def reject_orders(self, count: int = 1, reason: str = "order rejected by fake server",
                      delay: float = 0.0) -> AsyncReject:
        """Next ``count`` ``POST /v2/orders`` are acknowledged (200, ``new``) and then rejected
        asynchronously (``rejected`` on trade_updates) after ``delay`` seconds."""
        r = AsyncReject(reason, float(delay), count)
        with self._lock:
            self.rejects.append(r)
        return r

    def drop_trade_stream(self, when: str = "after", events: tuple[str, ...] | str = ("fill",),
                          count: int = 1) -> StreamDrop:
        """On the next ``count`` trade events of the given types, close every listening
        trade_updates connection (code 1011) ``"before"`` sending the event (it is lost for
        that connection) or ``"after"`` sending it."""
        if when not in ("before", "after"):
            raise ValueError("when must be 'before' or 'after'")
        if isinstance(events, str):
            events = (events,)
        s = StreamDrop(when, tuple(events), count)
        with self._lock:
            self.drops.append(s)
        return s

    def clear(self) -> None:
        with self._lock:
            self.http.clear()
            self.delays.clear()
            self.rejects.clear()
            self.drops.clear()
            self.late.clear()
            self.after_create.clear()

    def pending(self) -> dict[str, Any]:
        with self._lock:
            return {
                "http": [(f.method, f.pattern, f.status, f.remaining) for f in self.http if f.remaining > 0],
                "delay_ack": [(d.seconds, d.drop_response, d.remaining) for d in self.delays if d.remaining > 0],
                "reject": [(r.reason, r.remaining) for r in self.rejects if r.remaining > 0],
                "drop_trade_stream": [(s.when, s.events, s.remaining) for s in self.drops if s.remaining > 0],
                "land_late": [(f.land_after, f.drop_response, f.remaining) for f in self.late if f.remaining > 0],
                "error_after_create": [(f.status, f.remaining) for f in self.after_create if f.remaining > 0],
            }

    # -------------------------------------------------------------------- consuming (server) ---
    def take_http(self, api: str, method: str, path: str) -> HttpFault | None:
        with self._lock:
            for f in self.http:
                if f.matches(api, method, path):
                    f.remaining -= 1
                    f.hits += 1
                    return f
        return None

    def take_delay(self) -> DelayAck | None:
        with self._lock:
            for d in self.delays:
                if d.remaining > 0:
                    d.remaining -= 1
                    return d
        return None

    def take_late(self) -> LateLanding | None:
        return self._take(self.late)

    def take_after_create(self) -> ErrorAfterCreate | None:
        return self._take(self.after_create)

    def _take(self, items: list) -> Any:
        with self._lock:
            for f in items:
                if f.remaining > 0:
                    f.remaining -= 1
                    return f
        return None

    def take_reject(self) -> AsyncReject | None:
        with self._lock:
            for r in self.rejects:
                if r.remaining > 0:
                    r.remaining -= 1
                    return r
        return None

    def take_drop(self, event: str) -> str | None:
        with self._lock:
            for s in self.drops:
                if s.remaining > 0 and event in s.events:
                    s.remaining -= 1
                    return s.when
        return None
