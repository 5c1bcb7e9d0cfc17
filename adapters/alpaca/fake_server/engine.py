"""Account, orders, positions, activities and the matching engine of the fake Alpaca server.

Everything here is synchronous and guarded by one re-entrant lock (``Engine.lock``), so the
Python control API (test thread) and the REST handlers (server loop thread) can both call in.
Side effects leave through two sinks set by the server, always called under the lock so their
order is the order of events: ``trade_sink(payload)`` for ``trade_updates`` and
``data_sink(channel, symbol, msg)`` for the market-data websocket.

Matching rules (documented in README.md):
* orders rest until the next market-data tick for their symbol (``set_quote`` / ``push_bar``);
  with ``fill_on_submit`` a marketable order fills at submission against the current quote;
* quote tick: market buy at the ask, market sell at the bid; a limit fills when the touch crosses
  it (buy: ask <= limit, at the ask; sell: bid >= limit, at the bid); a stop triggers when the
  touch reaches it (buy: ask >= stop; sell: bid <= stop) and then fills like a market order
  (stop_limit: like a limit);
* bar tick: market at the bar close (``market_fill_on_bar="open"``: the open); limit buy when
  low <= limit at min(limit, open), limit sell when high >= limit at max(limit, open); stop buy
  when high >= stop at max(stop, open), stop sell when low <= stop at min(stop, open);
* partial fills: at most ``fill chunk`` shares per order per tick (per order, per symbol or
  global), optionally capped by the quote size;
* IOC / FOK are decided on the first tick they see (remainder canceled);
* bracket / oto legs are ``held`` until the parent is completely filled, then become ``new`` and
  work from the next tick on; bracket legs are one-cancels-other.
"""

from __future__ import annotations

import random
import re
import threading
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, Callable

from .clock import NY, FakeClock, MarketCalendar, to_utc
from .config import ServerConfig
from .marketdata import BarRec, MarketData, QuoteRec, canonical_timeframe, parse_time, timeframe_delta
from . import options as opt

ZERO = Decimal(0)
ONE = Decimal(1)
NS = uuid.UUID("6f1c2a9e-3b7d-4c55-9a8e-0d2f4b6a7c11")  # namespace for deterministic asset ids

WORKING = ("new", "partially_filled", "accepted", "pending_cancel")  # eligible for matching (once routed)
OPEN = ("new", "partially_filled", "accepted", "pending_new", "accepted_for_bidding", "pending_cancel",
        "pending_replace", "held", "calculated", "done_for_day")
CLOSED = ("filled", "canceled", "expired", "replaced", "rejected", "stopped", "suspended")
ORDER_TYPES = ("market", "limit", "stop", "stop_limit", "trailing_stop")
TIFS = ("day", "gtc", "ioc", "fok")
_SYMBOL_RE = re.compile(r"^[A-Z][A-Z0-9./]{0,20}$")


class ApiError(Exception):
    """An Alpaca-style error response: HTTP status + JSON body ``{"code": ..., "message": ...}``."""

    def __init__(self, status: int, message: str, code: int | None = None, extra: dict | None = None,
                 headers: dict | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code if code is not None else int(f"{status}10000")
        self.message = message
        self.extra = extra or {}
        self.headers = headers or {}

    def payload(self) -> dict:
        body = dict(self.extra)
        body["code"] = self.code
        body["message"] = self.message
        return body


def unprocessable(message: str) -> ApiError:
    return ApiError(422, message, 40010001)


def D(x: Any, name: str = "value") -> Decimal:
    if isinstance(x, Decimal):
        return x
    try:
        if isinstance(x, float):
            return Decimal(repr(x))
        return Decimal(str(x).strip())
    except (InvalidOperation, ValueError):
        raise unprocessable(f"invalid {name}: {x!r}") from None


def Dopt(x: Any, name: str) -> Decimal | None:
    return None if x is None or x == "" else D(x, name)


def fmt(d: Decimal | None, places: int = 9) -> str | None:
    """Alpaca-style numeric string: no exponent, no trailing zeros ("100", "187.25", "-5")."""
    if d is None:
        return None
    q = d.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    s = format(q.normalize(), "f")
    return "0" if s in ("-0", "0", "") else s


def ts(dt: datetime | None) -> str | None:
    if dt is None:
        return None
    return to_utc(dt).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class Asset:
    symbol: str
    id: str
    asset_class: str = "us_equity"
    exchange: str = "NASDAQ"
    name: str = ""
    status: str = "active"
    tradable: bool = True
    marginable: bool = True
    shortable: bool = True
    easy_to_borrow: bool = True
    fractionable: bool = True
    maintenance_margin_requirement: float = 30
    attributes: list = field(default_factory=list)
    multiplier: int = 1  # 100 for option contracts (not an Alpaca field)

    def to_json(self) -> dict:
        return {
            "id": self.id, "class": self.asset_class, "exchange": self.exchange, "symbol": self.symbol,
            "name": self.name or f"{self.symbol} (fake)", "status": self.status, "tradable": self.tradable,
            "marginable": self.marginable, "shortable": self.shortable, "easy_to_borrow": self.easy_to_borrow,
            "fractionable": self.fractionable,
            "maintenance_margin_requirement": self.maintenance_margin_requirement,
            "margin_requirement_long": "30", "margin_requirement_short": "100",
            "attributes": list(self.attributes),
        }


@dataclass
class Order:
    id: str
    client_order_id: str
    symbol: str
    asset_id: str
    asset_class: str
    side: str
    type: str
    time_in_force: str
    qty: Decimal | None
    notional: Decimal | None
    limit_price: Decimal | None
    stop_price: Decimal | None
    order_class: str
    extended_hours: bool
    created_at: datetime
    status: str = "new"
    trail_price: Decimal | None = None
    trail_percent: Decimal | None = None
    hwm: Decimal | None = None
    position_intent: str | None = None
    filled_qty: Decimal = ZERO
    filled_value: Decimal = ZERO
    updated_at: datetime | None = None
    submitted_at: datetime | None = None
    filled_at: datetime | None = None
    expired_at: datetime | None = None
    expires_at: datetime | None = None
    canceled_at: datetime | None = None
    failed_at: datetime | None = None
    replaced_at: datetime | None = None
    replaced_by: str | None = None
    replaces: str | None = None
    parent_id: str | None = None
    leg_ids: list[str] = field(default_factory=list)
    oco_group: str | None = None
    triggered: bool = False
    ioc_done: bool = False
    fill_chunk: Decimal | None = None
    seq: int = 0
    source: str = "api"
    routed: bool = True          # False while an asynchronously routed order waits for its `new`
    cancel_requested: bool = False  # an asynchronous cancel is under way

    @property
    def remaining(self) -> Decimal:
        return (self.qty or ZERO) - self.filled_qty

    @property
    def avg_price(self) -> Decimal | None:
        return self.filled_value / self.filled_qty if self.filled_qty else None


@dataclass
class Position:
    symbol: str
    qty: Decimal
    avg_entry_price: Decimal
    lastday_price: Decimal | None = None


@dataclass
class OcoGroup:
    qty: Decimal
    filled: Decimal = ZERO
    members: list[str] = field(default_factory=list)


class Engine:
    def __init__(self, config: ServerConfig, clock: FakeClock, calendar: MarketCalendar) -> None:
        self.lock = threading.RLock()
        self.cfg = config
        self.clock = clock
        self.calendar = calendar
        self.market = MarketData()
        self.assets: dict[str, Asset] = {}
        self.contracts: dict[str, dict] = {}
        self.option_liquidated: set[str] = set()  # expiring option positions the broker liquidated
        self.orders: dict[str, Order] = {}
        self.by_client_id: dict[str, str] = {}
        self.positions: dict[str, Position] = {}
        self.oco_groups: dict[str, OcoGroup] = {}
        self.symbol_fill_chunk: dict[str, Decimal] = {}
        self.cash = D(config.initial_cash)
        self.last_equity = D(config.initial_cash)
        self.fees_total = ZERO
        self.activities: list[dict] = []
        self.trade_events: list[dict] = []
        self.trade_sink: Callable[[dict], None] | None = None
        self.data_sink: Callable[[str, str, dict], None] | None = None
        self.trading_blocked = False
        self.account_blocked = False  # set_account_state(): the account as Alpaca reports it
        self.account_status = "ACTIVE"
        self._rng = random.Random(config.id_seed) if config.id_seed is not None else None
        lat_seed = config.latency_seed if config.latency_seed is not None else (config.id_seed or 0)
        self._latency_rng = random.Random(lat_seed)
        # ``schedule(delay_s, fn)`` runs ``fn`` on the server loop ``delay_s`` real seconds later (set by the
        # server); without it (server not running) delayed steps run at once.
        self.schedule: Callable[[float, Callable[[], None]], None] | None = None
        self.pending_timers = 0
        self.timings: list[dict] = []  # {"what": "route" | "cancel", "order_id", "delay"} per delayed step
        self._seq = 0
        self.account_id = str(uuid.uuid5(NS, "account:" + config.account_number))
        self.account_created_at = clock.now()

    # ================================================================================ helpers ===
    def new_id(self) -> str:
        if self._rng is not None:
            return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))
        return str(uuid.uuid4())

    def now(self) -> datetime:
        return self.clock.now()

    def asset(self, symbol_or_id: str, create: bool = True) -> Asset | None:
        key = str(symbol_or_id).strip()
        sym = key.upper()
        if sym in self.assets:
            return self.assets[sym]
        for a in self.assets.values():
            if a.id == key.lower():
                return a
        if sym in self.contracts:
            c = self.contracts[sym]
            a = Asset(symbol=sym, id=c["id"], asset_class="us_option", exchange="", name=c["name"],
                      shortable=False, easy_to_borrow=False, fractionable=False, marginable=False, multiplier=100)
            self.assets[sym] = a
            return a
        if not create or self.cfg.strict_assets or not _SYMBOL_RE.match(sym):
            return None
        a = Asset(symbol=sym, id=str(uuid.uuid5(NS, "asset:" + sym)))
        self.assets[sym] = a
        return a

    def add_asset(self, symbol: str, **attrs: Any) -> Asset:
        with self.lock:
            sym = symbol.upper()
            a = self.assets.get(sym) or Asset(symbol=sym, id=str(uuid.uuid5(NS, "asset:" + sym)))
            for k, v in attrs.items():
                if k == "class":
                    k = "asset_class"
                if not hasattr(a, k):
                    raise TypeError(f"unknown asset field {k}")
                setattr(a, k, v)
            self.assets[sym] = a
            return a

    def _multiplier(self, symbol: str) -> Decimal:
        a = self.asset(symbol)
        return Decimal(a.multiplier if a else 1)

    def mark(self, symbol: str) -> Decimal | None:
        p = self.market.last_price.get(symbol)
        if p is not None:
            return D(p)
        q = self.market.latest_quote.get(symbol)
        if q is not None:
            return D((q.bp + q.ap) / 2)
        pos = self.positions.get(symbol)
        return pos.avg_entry_price if pos else None

    def _emit_trade(self, event: str, order: Order, **extra: Any) -> None:
        payload = {"event": event, "order": self.order_json(order), "timestamp": ts(self.now())}
        if event in ("fill", "partial_fill"):
            payload.update(extra)
        elif event == "canceled":
            payload["timestamp"] = ts(order.canceled_at)
        elif event == "expired":
            payload["timestamp"] = ts(order.expired_at)
        elif event == "replaced":
            payload["timestamp"] = ts(order.replaced_at)
        elif event == "rejected":
            payload["timestamp"] = ts(order.failed_at)
        self.trade_events.append(payload)
        if self.trade_sink is not None:
            self.trade_sink(payload)

    def _emit_data(self, channel: str, symbol: str, msg: dict) -> None:
        if self.data_sink is not None:
            self.data_sink(channel, symbol, msg)

    def _activity_id(self, when: datetime, uid: str | None = None) -> str:
        w = to_utc(when)
        return f"{w.strftime('%Y%m%d%H%M%S')}{w.microsecond // 1000:03d}::{uid or self.new_id()}"

    # ================================================================================ account ===
    def _position_values(self) -> tuple[Decimal, Decimal]:
        long_mv = short_mv = ZERO
        for sym, p in self.positions.items():
            m = self.mark(sym) or p.avg_entry_price
            mv = p.qty * m * self._multiplier(sym)
            if mv >= 0:
                long_mv += mv
            else:
                short_mv += mv
        return long_mv, short_mv

    def _ref_price(self, o: Order) -> Decimal | None:
        if o.type in ("limit", "stop_limit") and o.limit_price is not None:
            return o.limit_price
        if o.type == "stop" and o.stop_price is not None:
            return o.stop_price
        q = self.market.latest_quote.get(o.symbol)
        if q is not None:
            px = q.ap if o.side == "buy" else q.bp
            if px and px > 0:
                return D(px)
        return self.mark(o.symbol)

    def _opening_qty(self, symbol: str, side: str, qty: Decimal) -> Decimal:
        pos = self.positions.get(symbol)
        p = pos.qty if pos else ZERO
        if side == "buy" and p < 0:
            return max(ZERO, qty + p)
        if side == "sell" and p > 0:
            return max(ZERO, qty - p)
        return qty

    def _reservation(self, o: Order) -> Decimal:
        if o.status not in WORKING + ("pending_new",) or o.parent_id is not None:
            return ZERO
        if o.notional is not None and o.qty is None:
            return o.notional if o.side == "buy" else ZERO
        opening = self._opening_qty(o.symbol, o.side, o.remaining)
        if opening <= 0:
            return ZERO
        px = self._ref_price(o) or ZERO
        return opening * px * self._multiplier(o.symbol)

    def _account_numbers(self) -> dict[str, Decimal]:
        long_mv, short_mv = self._position_values()
        equity = self.cash + long_mv + short_mv
        gross = long_mv - short_mv
        mult = D(self.cfg.margin_multiplier) if equity >= D(self.cfg.min_equity_for_margin) else ONE
        reserved = sum((self._reservation(o) for o in self.orders.values()), ZERO)
        bp = max(ZERO, mult * equity - gross - reserved)
        return {
            "equity": equity, "long_mv": long_mv, "short_mv": short_mv, "gross": gross, "multiplier": mult,
            "buying_power": bp,
            "regt_buying_power": max(ZERO, min(mult, Decimal(2)) * equity - gross - reserved),
            "non_marginable_buying_power": max(ZERO, self.cash - reserved),
            "initial_margin": gross / mult if mult else gross,
            "maintenance_margin": long_mv * Decimal("0.25") + (-short_mv) * Decimal("0.30"),
            "reserved": reserved,
        }

    def account_json(self) -> dict:
        """``GET /v2/account``. Deliberately without ``pattern_day_trader``, ``daytrade_count`` and
        ``daytrading_buying_power`` (removed by Alpaca on 2026-07-06)."""
        with self.lock:
            self.check_expiry()
            n = self._account_numbers()
            m2 = lambda d: fmt(d, 2)  # noqa: E731
            return {
                "id": self.account_id,
                "admin_configurations": {},
                "user_configurations": None,
                "account_number": self.cfg.account_number,
                "status": self.account_status,
                "crypto_status": "ACTIVE",
                "options_approved_level": self.cfg.options_trading_level,
                "options_trading_level": self.cfg.options_trading_level,
                "currency": "USD",
                "buying_power": m2(n["buying_power"]),
                "regt_buying_power": m2(n["regt_buying_power"]),
                "non_marginable_buying_power": m2(n["non_marginable_buying_power"]),
                "options_buying_power": m2(n["non_marginable_buying_power"]),
                "effective_buying_power": m2(n["buying_power"]),
                "cash": fmt(self.cash),
                "accrued_fees": fmt(self.fees_total),
                "portfolio_value": fmt(n["equity"]),
                "pending_transfer_in": "0",
                "trading_blocked": self.trading_blocked,
                "transfers_blocked": False,
                "account_blocked": self.account_blocked,
                "created_at": ts(self.account_created_at),
                "trade_suspended_by_user": False,
                "multiplier": fmt(n["multiplier"]),
                "shorting_enabled": self.cfg.shorting_enabled,
                "equity": fmt(n["equity"]),
                "last_equity": fmt(self.last_equity),
                "long_market_value": fmt(n["long_mv"]),
                "short_market_value": fmt(n["short_mv"]),
                "position_market_value": fmt(n["long_mv"] - n["short_mv"]),
                "initial_margin": m2(n["initial_margin"]),
                "maintenance_margin": m2(n["maintenance_margin"]),
                "last_maintenance_margin": m2(n["maintenance_margin"]),
                "sma": fmt(n["equity"]),
                "crypto_tier": 1,
                "balance_asof": self.now().astimezone(NY).date().isoformat(),
            }

    def account_configurations(self) -> dict:
        return {
            "fractional_trading": True,
            "max_margin_multiplier": fmt(D(self.cfg.margin_multiplier)),
            "no_shorting": not self.cfg.shorting_enabled,
            "suspend_trade": self.trading_blocked,
            "trade_confirm_email": "none",
            "ptp_no_exception_entry": False,
            "max_options_trading_level": self.cfg.options_trading_level,
        }

    def patch_account_configurations(self, body: dict) -> dict:
        with self.lock:
            if "no_shorting" in body:
                self.cfg.shorting_enabled = not bool(body["no_shorting"])
            if "max_margin_multiplier" in body:
                self.cfg.margin_multiplier = float(body["max_margin_multiplier"])
            if "suspend_trade" in body:
                self.trading_blocked = bool(body["suspend_trade"])
            if "max_options_trading_level" in body:
                self.cfg.options_trading_level = int(body["max_options_trading_level"])
            return self.account_configurations()

    # ================================================================================= orders ===
    def order_json(self, o: Order, include_legs: bool = True) -> dict:
        legs = None
        if include_legs and o.leg_ids:
            legs = [self.order_json(self.orders[i], include_legs=False) for i in o.leg_ids if i in self.orders]
        stop = o.stop_price
        if o.type == "trailing_stop":
            stop = self._trail_stop(o)
        return {
            "id": o.id,
            "client_order_id": o.client_order_id,
            "created_at": ts(o.created_at),
            "updated_at": ts(o.updated_at),
            "submitted_at": ts(o.submitted_at),
            "filled_at": ts(o.filled_at),
            "expired_at": ts(o.expired_at),
            "canceled_at": ts(o.canceled_at),
            "failed_at": ts(o.failed_at),
            "replaced_at": ts(o.replaced_at),
            "replaced_by": o.replaced_by,
            "replaces": o.replaces,
            "asset_id": o.asset_id,
            "symbol": o.symbol,
            "asset_class": o.asset_class,
            "notional": fmt(o.notional),
            "qty": fmt(o.qty),
            "filled_qty": fmt(o.filled_qty),
            "filled_avg_price": fmt(o.avg_price),
            "order_class": "" if o.order_class == "simple" else o.order_class,
            "order_type": o.type,
            "type": o.type,
            "side": o.side,
            "position_intent": o.position_intent,
            "time_in_force": o.time_in_force,
            "limit_price": fmt(o.limit_price),
            "stop_price": fmt(stop),
            "status": o.status,
            "extended_hours": o.extended_hours,
            "legs": legs,
            "trail_percent": fmt(o.trail_percent),
            "trail_price": fmt(o.trail_price),
            "hwm": fmt(o.hwm),
            "subtag": None,
            "source": o.source if o.source != "api" else None,
            "expires_at": ts(o.expires_at),
        }

    def find_order(self, order_id: str) -> Order:
        o = self.orders.get(str(order_id).lower())
        if o is None:
            raise ApiError(404, "order not found", 40410000)
        return o

    def _held_qty(self, symbol: str, side: str) -> Decimal:
        """Quantity of open orders that reduce the position (OCO siblings counted once)."""
        groups: dict[str, Decimal] = {}
        total = ZERO
        for o in self.orders.values():
            if o.symbol != symbol or o.side != side or o.status not in WORKING + ("pending_new",):
                continue
            if o.oco_group:
                groups[o.oco_group] = max(groups.get(o.oco_group, ZERO), self._fillable(o))
            else:
                total += o.remaining
        return total + sum(groups.values(), ZERO)

    def _check_price_increment(self, price: Decimal | None, name: str) -> None:
        if price is None:
            return
        if price <= 0:
            raise unprocessable(f"{name} must be > 0")
        places = 2 if price >= 1 else 4
        if price != price.quantize(Decimal(1).scaleb(-places)):
            raise unprocessable(
                f"invalid {name} {fmt(price)}. sub-penny increment does not fulfill minimum pricing criteria")

    def _validate_client_order_id(self, coid: Any) -> str:
        coid = str(coid)
        if len(coid) > 48:
            raise unprocessable("client_order_id must be no more than 48 characters")
        if coid in self.by_client_id:
            raise unprocessable("client_order_id must be unique")
        return coid

    def submit_order(self, body: dict, *, seeded: bool = False) -> dict:
        """``POST /v2/orders``. Returns the order JSON as acknowledged (before any later fill)."""
        with self.lock:
            self.check_expiry()
            if not isinstance(body, dict):
                raise unprocessable("request body must be a JSON object")
            if (self.trading_blocked or self.account_blocked or self.account_status != "ACTIVE") and not seeded:
                raise ApiError(403, "account is not allowed to trade", 40310000)
            order_class = (body.get("order_class") or "simple").lower()
            if order_class not in ("simple", "bracket", "oco", "oto"):
                raise unprocessable(f"order_class {order_class} is not supported by the fake server")
            symbol = str(body.get("symbol") or "").upper()
            if not symbol:
                raise unprocessable("symbol is required")
            asset = self.asset(symbol)
            if asset is None:
                raise unprocessable(f'asset "{symbol}" not found')
            if not asset.tradable or asset.status != "active":
                raise unprocessable(f"asset {symbol} is not tradable")
            side = str(body.get("side") or "").lower()
            if side not in ("buy", "sell"):
                raise unprocessable("side must be buy or sell")
            otype = str(body.get("type") or body.get("order_type") or "").lower()
            if otype not in ORDER_TYPES:
                raise unprocessable(f"invalid order type: {otype or None}")
            tif = str(body.get("time_in_force") or "").lower()
            if tif in ("opg", "cls"):
                raise unprocessable(f"time_in_force {tif} is not supported by the fake server")
            if tif not in TIFS:
                raise unprocessable(f"invalid time_in_force: {tif or None}")
            qty = Dopt(body.get("qty"), "qty")
            notional = Dopt(body.get("notional"), "notional")
            if (qty is None) == (notional is None):
                raise unprocessable("qty or notional is required" if qty is None else
                                    "only one of qty or notional may be specified")
            if qty is not None and qty <= 0:
                raise unprocessable("qty must be > 0")
            if notional is not None:
                if notional <= 0:
                    raise unprocessable("notional must be > 0")
                if otype != "market" or tif != "day":
                    raise unprocessable("notional orders must be DAY market orders")
            if asset.asset_class == "us_option" and not seeded:
                opt.check_order(self, body, symbol=symbol, side=side, otype=otype, tif=tif, qty=qty,
                                notional=notional, order_class=order_class)
            fractional = qty is not None and qty != qty.to_integral_value()
            if fractional or notional is not None:
                if not asset.fractionable:
                    raise unprocessable(f"asset {symbol} is not fractionable")
                if tif != "day":
                    raise unprocessable("fractional orders must be DAY orders")
                if order_class != "simple":
                    raise unprocessable("fractional orders must be simple orders")
            limit_price = Dopt(body.get("limit_price"), "limit_price")
            stop_price = Dopt(body.get("stop_price"), "stop_price")
            trail_price = Dopt(body.get("trail_price"), "trail_price")
            trail_percent = Dopt(body.get("trail_percent"), "trail_percent")
            tp = body.get("take_profit") or None
            sl = body.get("stop_loss") or None
            if order_class == "oco":
                if otype != "limit" or tp is None or sl is None:
                    raise unprocessable("oco orders must be limit orders with take_profit and stop_loss")
                if limit_price is None:
                    limit_price = Dopt(tp.get("limit_price"), "take_profit.limit_price")
            if otype in ("limit", "stop_limit") and limit_price is None:
                raise unprocessable("limit_price is required")
            if otype in ("stop", "stop_limit") and stop_price is None:
                raise unprocessable("stop_price is required")
            if otype == "trailing_stop" and (trail_price is None) == (trail_percent is None):
                raise unprocessable("exactly one of trail_price or trail_percent is required")
            if otype == "market":
                limit_price = stop_price = None
            if otype == "limit":
                stop_price = None
            if otype == "stop":
                limit_price = None
            self._check_price_increment(limit_price, "limit_price")
            self._check_price_increment(stop_price, "stop_price")
            extended = bool(body.get("extended_hours") or False)
            if extended and (otype != "limit" or tif != "day" or order_class != "simple"):
                raise unprocessable("extended hours order must be DAY limit orders")
            coid = self._validate_client_order_id(body.get("client_order_id") or self.new_id())

            # ---- bracket / oto / oco leg specs
            leg_specs: list[dict] = []
            exit_side = "sell" if side == "buy" else "buy"
            if order_class in ("bracket", "oto", "oco"):
                if tif not in ("day", "gtc"):
                    raise unprocessable(f"{order_class} orders must be DAY or GTC orders")
                if order_class == "bracket" and (tp is None or sl is None):
                    raise unprocessable("bracket orders require take_profit and stop_loss")
                if order_class == "oto" and (tp is None) == (sl is None):
                    raise unprocessable("oto orders require exactly one of take_profit or stop_loss")
                base = limit_price if otype in ("limit", "stop_limit") else (
                    stop_price if otype == "stop" else self._touch(symbol, side))
                if tp is not None and order_class != "oco":
                    tpl = D(tp.get("limit_price"), "take_profit.limit_price")
                    self._check_price_increment(tpl, "take_profit.limit_price")
                    if base is not None:
                        if side == "buy" and tpl < base + Decimal("0.01"):
                            raise unprocessable(f"take_profit.limit_price must be >= base_price + 0.01 "
                                                f"(base_price: {fmt(base)})")
                        if side == "sell" and tpl > base - Decimal("0.01"):
                            raise unprocessable(f"take_profit.limit_price must be <= base_price - 0.01 "
                                                f"(base_price: {fmt(base)})")
                    leg_specs.append({"type": "limit", "limit_price": tpl, "stop_price": None, "side": exit_side})
                if sl is not None:
                    slp = D(sl.get("stop_price"), "stop_loss.stop_price")
                    sll = Dopt(sl.get("limit_price"), "stop_loss.limit_price")
                    self._check_price_increment(slp, "stop_loss.stop_price")
                    self._check_price_increment(sll, "stop_loss.limit_price")
                    if base is not None and order_class != "oco":
                        if side == "buy" and slp > base - Decimal("0.01"):
                            raise unprocessable(f"stop_loss.stop_price must be <= base_price - 0.01 "
                                                f"(base_price: {fmt(base)})")
                        if side == "sell" and slp < base + Decimal("0.01"):
                            raise unprocessable(f"stop_loss.stop_price must be >= base_price + 0.01 "
                                                f"(base_price: {fmt(base)})")
                    leg_side = side if order_class == "oco" else exit_side
                    leg_specs.append({"type": "stop_limit" if sll is not None else "stop", "limit_price": sll,
                                      "stop_price": slp, "side": leg_side})

            # ---- wash-trade refusal (Alpaca "Preventing Wash Trades"); complex orders and trailing stops exempt
            if (self.cfg.wash_trade_check and not seeded and order_class == "simple"
                    and otype != "trailing_stop"):
                self._check_wash_trade(symbol, side, otype, limit_price)

            # ---- position / buying-power checks
            if not seeded:
                pos = self.positions.get(symbol)
                pqty = pos.qty if pos else ZERO
                want = qty if qty is not None else ZERO
                if (side == "sell" and pqty > 0) or (side == "buy" and pqty < 0):
                    held = self._held_qty(symbol, side)
                    available = abs(pqty) - held
                    if want > available:
                        raise ApiError(403, f"insufficient qty available for order (requested: {fmt(want)}, "
                                            f"available: {fmt(available)})", 40310000,
                                       {"available": fmt(available), "existing_qty": fmt(abs(pqty)),
                                        "held_for_orders": fmt(held), "symbol": symbol})
                elif side == "sell":  # opening a short
                    if order_class == "oco":
                        raise ApiError(403, "oco orders can only close a position", 40310000)
                    if not self.cfg.shorting_enabled:
                        raise ApiError(403, "account is not allowed to short", 40310000)
                    if not (asset.shortable and asset.easy_to_borrow):
                        raise ApiError(403, f"asset {symbol} cannot be sold short", 40310000)
                    if fractional or notional is not None:
                        raise ApiError(403, "fractional orders cannot be sold short", 40310000)
                probe = Order(id="", client_order_id="", symbol=symbol, asset_id=asset.id,
                              asset_class=asset.asset_class, side=side, type=otype, time_in_force=tif,
                              qty=qty, notional=notional, limit_price=limit_price, stop_price=stop_price,
                              order_class=order_class, extended_hours=extended, created_at=self.now())
                probe.status = "new"
                cost = self._reservation(probe)
                bp = self._account_numbers()["buying_power"]
                if cost > bp:
                    raise ApiError(403, "insufficient buying power", 40310000,
                                   {"buying_power": fmt(bp, 2), "cost_basis": fmt(cost, 2)})

            # ---- create
            now = self.now()
            seeded_created = parse_time(body["created_at"]) if seeded and body.get("created_at") else now
            order = self._new_order(
                symbol=symbol, asset=asset, side=side, type=otype, tif=tif, qty=qty, notional=notional,
                limit_price=limit_price, stop_price=stop_price, order_class=order_class, extended=extended,
                coid=coid, created=seeded_created, trail_price=trail_price, trail_percent=trail_percent)
            order.source = "seed" if seeded else "api"
            order.position_intent = body.get("position_intent") or self._intent(symbol, side)
            if order.type == "trailing_stop":
                order.hwm = self.mark(symbol)
            if body.get("fill_chunk") is not None:  # fake-server extension (Python API only)
                order.fill_chunk = D(body["fill_chunk"], "fill_chunk")
            for spec in leg_specs:
                leg = self._new_order(
                    symbol=symbol, asset=asset, side=spec["side"], type=spec["type"], tif=tif, qty=qty,
                    notional=None, limit_price=spec["limit_price"], stop_price=spec["stop_price"],
                    order_class=order_class, extended=False, coid=self.new_id(), created=seeded_created)
                leg.parent_id = order.id
                leg.source = order.source
                leg.position_intent = self._intent(symbol, spec["side"], after_entry=order_class != "oco")
                order.leg_ids.append(leg.id)
                leg.status = "new" if order_class == "oco" else "held"
            if order_class in ("bracket", "oco"):
                gid = self.new_id()
                members = list(order.leg_ids) if order_class == "bracket" else [order.id] + order.leg_ids
                self.oco_groups[gid] = OcoGroup(qty=qty or ZERO, members=members)
                for mid in members:
                    self.orders[mid].oco_group = gid

            if seeded:
                order.status = str(body.get("status") or "new")
                return self.order_json(order)
            if self.cfg.async_routing:
                # Alpaca acknowledges first (`accepted`, or `pending_new` with its event) and routes later;
                # the order does not trade until its `new`.
                ack_status = self._ack_status()
                unrouted = [order] + [self.orders[i] for i in order.leg_ids if self.orders[i].status == "new"]
                for o in unrouted:
                    o.status = ack_status
                    o.routed = False
                if ack_status == "pending_new":
                    for o in unrouted:
                        self._emit_trade("pending_new", o)
                ack = self.order_json(order)
                oid = order.id
                d = self._delay(self.cfg.routing_delay)
                self.timings.append({"what": "route", "order_id": oid, "delay": d})
                self._later(d, lambda: self._route(oid))
                return ack
            if self.cfg.emit_pending_new:
                order.status = "pending_new"
                self._emit_trade("pending_new", order)
                ack = self.order_json(order)
                order.status = "new"
                order.updated_at = self.now()
                self._emit_trade("new", order)
            else:
                order.status = "new"
                self._emit_trade("new", order)
                ack = self.order_json(order)
            self._activate(order)
            return ack

    def _activate(self, order: Order) -> None:
        """After the parent's `new`: the live legs' `new` events, then ``fill_on_submit`` matching."""
        for lid in order.leg_ids:
            leg = self.orders[lid]
            if leg.status == "new":
                self._emit_trade("new", leg)
        on_submit = self.cfg.fill_on_submit or (self.cfg.option_fill_on_submit and order.asset_class == "us_option")
        if on_submit and order.symbol in self.market.latest_quote:
            q = self.market.latest_quote[order.symbol]
            liquidity = {"buy": D(q.as_), "sell": D(q.bs)} if self.cfg.respect_quote_size else None
            for o in [order] + [self.orders[i] for i in order.leg_ids]:
                if o.status in WORKING and o.routed:
                    self._evaluate(o, "quote", q, liquidity)

    def _route(self, order_id: str) -> None:
        """Asynchronous routing: the acknowledged order becomes `new` (event) and starts trading. Nothing
        happens if it was canceled, rejected or expired in the meantime."""
        with self.lock:
            o = self.orders.get(order_id)
            if o is None or o.routed or o.status not in ("accepted", "pending_new"):
                return
            now = self.now()
            for x in [o] + [self.orders[i] for i in o.leg_ids]:
                if x.status in ("accepted", "pending_new") and not x.routed:
                    x.status = "new"
                    x.routed = True
                    x.updated_at = now
            o.routed = True
            self._emit_trade("new", o)
            self._activate(o)

    # ------------------------------------------------------------------------- timing helpers ---
    def _ack_status(self) -> str:
        """``auto``: `pending_new` while the regular session is open, `accepted` outside it ("received
        by Alpaca, but hasn't yet been routed ... seen often outside of trading session hours")."""
        if self.cfg.ack_status != "auto":
            return self.cfg.ack_status
        now = self.now()
        s = self.calendar.session(now.astimezone(NY).date())
        return "pending_new" if s is not None and s.open <= now < s.close else "accepted"

    def _delay(self, rng: tuple[float, float]) -> float:
        lo, hi = rng
        return lo if hi <= lo else lo + self._latency_rng.random() * (hi - lo)

    def _later(self, delay: float, fn: Callable[[], None]) -> None:
        """Run ``fn`` ``delay`` real seconds from now on the server loop (at once without a loop)."""
        if self.schedule is None:
            fn()
            return
        self.pending_timers += 1

        def run() -> None:
            try:
                fn()
            finally:
                with self.lock:
                    self.pending_timers -= 1

        self.schedule(delay, run)

    # ---------------------------------------------------------------------------- wash trades ---
    WASH_MESSAGE = "potential wash trade detected. use complex orders"

    def _wash_conflict(self, symbol: str, side: str, otype: str, limit_price: Decimal | None,
                       exclude: Order | None = None) -> Order | None:
        """The account's working order that a new simple order could trade against, per Alpaca's
        table (docs.alpaca.markets/docs/user-protection, "Preventing Wash Trades"): any pair with a
        market or stop order on either side is refused; limit / stop_limit pairs are refused when the
        buy limit >= the sell limit. Complex orders (bracket / oco / oto, their legs) and trailing
        stops are exempt, as are `held` legs; a `pending_cancel` order still counts (it can fill)."""
        for o in sorted(self.orders.values(), key=lambda x: x.seq):
            if o is exclude or o.symbol != symbol or o.side == side:
                continue
            if o.status not in OPEN or o.status == "held":
                continue
            if o.order_class != "simple" or o.parent_id is not None or o.type == "trailing_stop":
                continue
            if o.type in ("market", "stop") or otype in ("market", "stop"):
                return o
            buy_lim, sell_lim = (limit_price, o.limit_price) if side == "buy" else (o.limit_price, limit_price)
            if buy_lim is not None and sell_lim is not None and buy_lim >= sell_lim:
                return o
        return None

    def _check_wash_trade(self, symbol: str, side: str, otype: str, limit_price: Decimal | None,
                          exclude: Order | None = None) -> None:
        o = self._wash_conflict(symbol, side, otype, limit_price, exclude)
        if o is None:
            return
        extra = None
        if self.cfg.wash_trade_details:  # reported by users of the live API, not in Alpaca's docs
            extra = {"existing_order_id": o.id, "reject_reason": f"opposite side {o.type} order exists"}
        raise ApiError(403, self.WASH_MESSAGE, 40310000, extra)

    def _touch(self, symbol: str, side: str) -> Decimal | None:
        q = self.market.latest_quote.get(symbol)
        if q is not None:
            px = q.ap if side == "buy" else q.bp
            if px and px > 0:
                return D(px)
        return self.mark(symbol)

    def _intent(self, symbol: str, side: str, after_entry: bool = False) -> str:
        if after_entry:
            return "sell_to_close" if side == "sell" else "buy_to_close"
        pos = self.positions.get(symbol)
        p = pos.qty if pos else ZERO
        if side == "buy":
            return "buy_to_close" if p < 0 else "buy_to_open"
        return "sell_to_close" if p > 0 else "sell_to_open"

    def _new_order(self, *, symbol, asset, side, type, tif, qty, notional, limit_price, stop_price, order_class,
                   extended, coid, created, trail_price=None, trail_percent=None) -> Order:
        self._seq += 1
        o = Order(id=self.new_id(), client_order_id=coid, symbol=symbol, asset_id=asset.id,
                  asset_class=asset.asset_class, side=side, type=type, time_in_force=tif, qty=qty,
                  notional=notional, limit_price=limit_price, stop_price=stop_price, order_class=order_class,
                  extended_hours=extended, created_at=created, trail_price=trail_price,
                  trail_percent=trail_percent, seq=self._seq)
        o.updated_at = o.submitted_at = created
        if tif == "day":
            o.expires_at = self.calendar.day_order_expiry(created)
        self.orders[o.id] = o
        self.by_client_id[coid] = o.id
        return o

    def list_orders(self, params: dict) -> list[dict]:
        with self.lock:
            self.check_expiry()
            status = (params.get("status") or "open").lower()
            if status not in ("open", "closed", "all"):
                raise unprocessable("status must be open, closed or all")
            try:
                limit = int(params.get("limit") or 50)
            except ValueError:
                raise unprocessable("invalid limit") from None
            limit = max(1, min(limit, 500))
            direction = (params.get("direction") or "desc").lower()
            nested = str(params.get("nested", "false")).lower() == "true"
            side = params.get("side")
            symbols = {s.strip().upper() for s in params["symbols"].split(",")} if params.get("symbols") else None
            after = parse_time(params["after"]) if params.get("after") else None
            until = parse_time(params["until"]) if params.get("until") else None
            out = []
            for o in sorted(self.orders.values(), key=lambda x: (x.submitted_at, x.seq),
                            reverse=direction != "asc"):
                if nested and o.parent_id is not None:
                    continue
                if status == "open" and o.status not in OPEN:
                    continue
                if status == "closed" and o.status not in CLOSED:
                    continue
                if side and o.side != side:
                    continue
                if symbols and o.symbol not in symbols:
                    continue
                if after and o.submitted_at <= after:
                    continue
                if until and o.submitted_at >= until:
                    continue
                out.append(self.order_json(o, include_legs=nested))
                if len(out) >= limit:
                    break
            return out

    def get_order(self, order_id: str) -> dict:
        with self.lock:
            self.check_expiry()
            return self.order_json(self.find_order(order_id))

    def get_order_by_client_id(self, client_order_id: str) -> dict:
        with self.lock:
            self.check_expiry()
            oid = self.by_client_id.get(str(client_order_id))
            if oid is None:
                raise ApiError(404, "order not found", 40410000)
            return self.order_json(self.orders[oid])

    def cancel_order(self, order_id: str) -> None:
        with self.lock:
            self.check_expiry()
            o = self.find_order(order_id)
            if o.status in CLOSED:
                raise ApiError(422, f'order is already in "{o.status}" state', 42210000)
            if o.status in ("pending_cancel", "pending_replace"):
                raise ApiError(422, f'order is in "{o.status}" state', 42210000)
            if self.cfg.async_cancels:
                self._request_cancel(o)
            else:
                self._cancel(o)

    def _request_cancel(self, o: Order) -> None:
        """Asynchronous cancel: `pending_cancel` now (event unless ``emit_pending_cancel=False``),
        `canceled` after ``cancel_delay``. The order keeps trading until then; a fill that completes it
        first wins and no `canceled` follows."""
        o.status = "pending_cancel"
        o.cancel_requested = True
        o.updated_at = self.now()
        if self.cfg.emit_pending_cancel:
            self._emit_trade("pending_cancel", o)
        oid = o.id
        d = self._delay(self.cfg.cancel_delay)
        self.timings.append({"what": "cancel", "order_id": oid, "delay": d})
        self._later(d, lambda: self._finish_cancel(oid))

    def _finish_cancel(self, order_id: str) -> None:
        with self.lock:
            o = self.orders.get(order_id)
            if o is not None and o.status not in CLOSED:
                self._cancel(o)

    def cancel_all(self) -> list[dict]:
        with self.lock:
            self.check_expiry()
            out = []
            if self.cfg.async_cancels:
                for o in list(self.orders.values()):
                    if o.status not in OPEN or o.status == "pending_cancel":
                        continue
                    parent = self.orders.get(o.parent_id) if o.parent_id else None
                    if parent is not None and parent.status in OPEN:
                        continue  # goes with its parent
                    self._request_cancel(o)
                    out.append({"id": o.id, "status": 200, "body": self.order_json(o)})
                return out
            for o in list(self.orders.values()):
                if o.status in OPEN and o.parent_id is None and o.status not in CLOSED:
                    self._cancel(o)
                    out.append({"id": o.id, "status": 200, "body": None})
            for o in list(self.orders.values()):  # stray open legs (parent already filled)
                if o.status in OPEN:
                    self._cancel(o)
                    out.append({"id": o.id, "status": 200, "body": None})
            return out

    def _close_state(self, o: Order, status: str, event: str) -> None:
        now = self.now()
        o.status = status
        o.updated_at = now
        if status == "canceled":
            o.canceled_at = now
        elif status == "expired":
            o.expired_at = now
        elif status == "rejected":
            o.failed_at = now
        self._emit_trade(event, o)

    def _cancel(self, o: Order, cascade: bool = True, status: str = "canceled") -> None:
        if o.status in CLOSED:
            return
        self._close_state(o, status, status)
        if not cascade:
            return
        for lid in o.leg_ids:  # parent gone: its legs go too
            leg = self.orders.get(lid)
            if leg is not None and leg.status in OPEN:
                self._cancel(leg, cascade=False)
        if o.oco_group:  # one-cancels-other
            for mid in self.oco_groups[o.oco_group].members:
                m = self.orders.get(mid)
                if m is not None and m is not o and m.status in OPEN:
                    self._cancel(m, cascade=False)

    def reject_order(self, order_id: str, reason: str = "rejected by fake server") -> None:
        """Asynchronous rejection (event ``rejected``) of an accepted order (fault injection)."""
        with self.lock:
            o = self.find_order(order_id)
            if o.status in CLOSED:
                return
            for lid in o.leg_ids:
                leg = self.orders[lid]
                if leg.status in OPEN:
                    self._cancel(leg, cascade=False)
            self._close_state(o, "rejected", "rejected")

    def replace_order(self, order_id: str, body: dict) -> dict:
        """``PATCH /v2/orders/{id}``: the old order becomes ``replaced`` and a new order (new id,
        ``replaces`` = old id) takes over. Without ``qty`` the new order is for the old order's
        unfilled remainder."""
        with self.lock:
            self.check_expiry()
            o = self.find_order(order_id)
            if o.status in CLOSED:
                raise ApiError(422, f'order is already in "{o.status}" state', 42210000)
            if o.status not in ("new", "partially_filled", "held"):
                raise ApiError(422, f'order is not replaceable in "{o.status}" state', 42210000)
            body = body or {}
            qty = Dopt(body.get("qty"), "qty")
            if qty is not None and qty <= 0:
                raise unprocessable("qty must be > 0")
            tif = (body.get("time_in_force") or o.time_in_force).lower()
            if tif not in TIFS:
                raise unprocessable(f"invalid time_in_force: {tif}")
            limit_price = Dopt(body.get("limit_price"), "limit_price")
            stop_price = Dopt(body.get("stop_price"), "stop_price")
            trail = Dopt(body.get("trail"), "trail")
            if limit_price is not None and o.type not in ("limit", "stop_limit"):
                raise unprocessable("limit_price can only be replaced on limit and stop_limit orders")
            if stop_price is not None and o.type not in ("stop", "stop_limit"):
                raise unprocessable("stop_price can only be replaced on stop and stop_limit orders")
            if trail is not None and o.type != "trailing_stop":
                raise unprocessable("trail can only be replaced on trailing_stop orders")
            self._check_price_increment(limit_price, "limit_price")
            self._check_price_increment(stop_price, "stop_price")
            if (self.cfg.wash_trade_check and o.order_class == "simple" and o.parent_id is None
                    and o.type != "trailing_stop"):
                self._check_wash_trade(o.symbol, o.side, o.type,
                                       limit_price if limit_price is not None else o.limit_price, exclude=o)
            coid = self._validate_client_order_id(body.get("client_order_id") or self.new_id())
            new_qty = qty if qty is not None else o.remaining
            asset = self.asset(o.symbol)
            now = self.now()
            if o.parent_id is None and o.status != "held":
                probe = Order(id="", client_order_id="", symbol=o.symbol, asset_id=o.asset_id,
                              asset_class=o.asset_class, side=o.side, type=o.type, time_in_force=tif,
                              qty=new_qty, notional=None, limit_price=limit_price or o.limit_price,
                              stop_price=stop_price or o.stop_price, order_class=o.order_class,
                              extended_hours=o.extended_hours, created_at=now)
                cost = self._reservation(probe)
                bp = self._account_numbers()["buying_power"] + self._reservation(o)
                if cost > bp:
                    raise ApiError(403, "insufficient buying power", 40310000,
                                   {"buying_power": fmt(bp, 2), "cost_basis": fmt(cost, 2)})
            n = self._new_order(
                symbol=o.symbol, asset=asset, side=o.side, type=o.type, tif=tif, qty=new_qty, notional=None,
                limit_price=limit_price if limit_price is not None else o.limit_price,
                stop_price=stop_price if stop_price is not None else o.stop_price,
                order_class=o.order_class, extended=o.extended_hours, coid=coid, created=now,
                trail_price=(trail if o.trail_price is not None and trail is not None else o.trail_price),
                trail_percent=(trail if o.trail_percent is not None and trail is not None else o.trail_percent))
            n.replaces = o.id
            n.hwm = o.hwm
            n.position_intent = o.position_intent
            n.fill_chunk = o.fill_chunk
            n.parent_id = o.parent_id
            n.status = "held" if o.status == "held" else "new"
            n.leg_ids, o.leg_ids = o.leg_ids, []
            for lid in n.leg_ids:
                self.orders[lid].parent_id = n.id
            if o.parent_id is not None:
                parent = self.orders[o.parent_id]
                parent.leg_ids = [n.id if x == o.id else x for x in parent.leg_ids]
            if o.oco_group:
                g = self.oco_groups[o.oco_group]
                g.members = [n.id if x == o.id else x for x in g.members]
                n.oco_group = o.oco_group  # group.filled already counts the old order's fills
            o.status = "replaced"
            o.replaced_at = now
            o.updated_at = now
            o.replaced_by = n.id
            self._emit_trade("replaced", o)
            if n.status == "new":
                self._emit_trade("new", n)
            return self.order_json(n)

    def check_expiry(self) -> None:
        """Expire DAY orders whose ``expires_at`` has passed (on the server's clock)."""
        with self.lock:
            now = self.now()
            for o in list(self.orders.values()):
                if o.status in OPEN and o.expires_at is not None and now >= o.expires_at and o.parent_id is None:
                    self._cancel(o, status="expired")
            for o in list(self.orders.values()):
                if o.status in OPEN and o.expires_at is not None and now >= o.expires_at:
                    self._cancel(o, status="expired")
            opt.settle(self)  # option liquidations and expiry due on the clock

    def expire_day_orders(self) -> int:
        """End of day now: every open DAY order expires (whatever the clock says)."""
        with self.lock:
            n = 0
            for o in list(self.orders.values()):
                if o.status in OPEN and o.time_in_force == "day":
                    self._cancel(o, status="expired")
                    n += 1
            return n

    # ============================================================================== positions ===
    def position_json(self, p: Position) -> dict:
        a = self.asset(p.symbol)
        mult = Decimal(a.multiplier if a else 1)
        cur = self.mark(p.symbol) or p.avg_entry_price
        mv = p.qty * cur * mult
        cost = p.qty * p.avg_entry_price * mult
        upl = mv - cost
        last = p.lastday_price if p.lastday_price is not None else p.avg_entry_price
        intraday = (cur - last) * p.qty * mult
        held = self._held_qty(p.symbol, "sell" if p.qty > 0 else "buy")
        avail = (abs(p.qty) - held) * (1 if p.qty > 0 else -1)
        ratio = lambda num, den: fmt(num / abs(den), 10) if den else "0"  # noqa: E731
        return {
            "asset_id": a.id if a else None, "symbol": p.symbol, "exchange": a.exchange if a else "",
            "asset_class": a.asset_class if a else "us_equity", "asset_marginable": a.marginable if a else True,
            "qty": fmt(p.qty), "qty_available": fmt(avail), "avg_entry_price": fmt(p.avg_entry_price),
            "side": "long" if p.qty > 0 else "short", "market_value": fmt(mv), "cost_basis": fmt(cost),
            "unrealized_pl": fmt(upl), "unrealized_plpc": ratio(upl, cost),
            "unrealized_intraday_pl": fmt(intraday), "unrealized_intraday_plpc": ratio(intraday, last * p.qty * mult),
            "current_price": fmt(cur), "lastday_price": fmt(last), "change_today": ratio(cur - last, last),
        }

    def positions_json(self) -> list[dict]:
        with self.lock:
            self.check_expiry()
            return [self.position_json(p) for _, p in sorted(self.positions.items())]

    def _find_position(self, symbol_or_id: str) -> Position:
        a = self.asset(symbol_or_id, create=False)
        sym = a.symbol if a else str(symbol_or_id).upper()
        p = self.positions.get(sym)
        if p is None:
            raise ApiError(404, "position does not exist", 40410000)
        return p

    def get_position(self, symbol_or_id: str) -> dict:
        with self.lock:
            self.check_expiry()
            return self.position_json(self._find_position(symbol_or_id))

    def close_position(self, symbol_or_id: str, params: dict) -> dict:
        with self.lock:
            p = self._find_position(symbol_or_id)
            qty = abs(p.qty)
            if params.get("qty"):
                qty = D(params["qty"], "qty")
            elif params.get("percentage"):
                pct = D(params["percentage"], "percentage")
                if not (0 < pct <= 100):
                    raise unprocessable("percentage must be in (0, 100]")
                qty = (abs(p.qty) * pct / 100).quantize(Decimal("1e-9"), rounding=ROUND_DOWN)
            body = {"symbol": p.symbol, "qty": str(qty), "side": "sell" if p.qty > 0 else "buy",
                    "type": "market", "time_in_force": "day"}
            return self.submit_order(body)

    def close_all_positions(self, cancel_orders: bool) -> list[dict]:
        with self.lock:
            if cancel_orders:  # the broker cancels and then closes, in one request: no pending_cancel window
                for o in list(self.orders.values()):
                    if o.status in OPEN and o.parent_id is None:
                        self._cancel(o)
                for o in list(self.orders.values()):
                    if o.status in OPEN:
                        self._cancel(o)
            out = []
            for sym in sorted(self.positions):
                try:
                    order = self.close_position(sym, {})
                    out.append({"symbol": sym, "status": 200, "order_id": order["id"], "body": order})
                except ApiError as e:
                    out.append({"symbol": sym, "status": e.status, "body": {**e.payload(), "symbol": sym}})
            return out

    def add_position(self, symbol: str, qty: float, avg_entry_price: float,
                     lastday_price: float | None = None) -> dict:
        """Pre-seed a position (does not move cash; use ``set_cash`` for that)."""
        with self.lock:
            sym = symbol.upper()
            self.asset(sym)
            q = D(qty, "qty")
            if q == 0:
                self.positions.pop(sym, None)
                return {}
            p = Position(sym, q, D(avg_entry_price, "avg_entry_price"),
                         D(lastday_price) if lastday_price is not None else None)
            self.positions[sym] = p
            return self.position_json(p)

    def _apply_position(self, symbol: str, side: str, qty: Decimal, price: Decimal) -> Decimal:
        p = self.positions.get(symbol)
        signed = qty if side == "buy" else -qty
        if p is None:
            self.positions[symbol] = Position(symbol, signed, price)
            return signed
        old = p.qty
        new = old + signed
        if old == 0 or (old > 0) == (signed > 0):  # opening / increasing
            p.avg_entry_price = (abs(old) * p.avg_entry_price + qty * price) / abs(new)
        elif (old > 0) != (new > 0) and new != 0:  # flipped through zero
            p.avg_entry_price = price
        p.qty = new
        if new == 0:
            del self.positions[symbol]
        return new

    # ================================================================================== fills ===
    def _chunk(self, o: Order) -> Decimal | None:
        if o.fill_chunk is not None:
            return o.fill_chunk
        if o.symbol in self.symbol_fill_chunk:
            return self.symbol_fill_chunk[o.symbol]
        if self.cfg.partial_fill_qty:
            return D(self.cfg.partial_fill_qty)
        return None

    def _fillable(self, o: Order) -> Decimal:
        rem = o.remaining
        if o.oco_group:
            g = self.oco_groups[o.oco_group]
            rem = min(rem, g.qty - g.filled)
        return max(rem, ZERO)

    def _trail_stop(self, o: Order) -> Decimal | None:
        if o.hwm is None:
            return None
        if o.trail_price is not None:
            return o.hwm - o.trail_price if o.side == "sell" else o.hwm + o.trail_price
        pct = (o.trail_percent or ZERO) / 100
        return o.hwm * (1 - pct) if o.side == "sell" else o.hwm * (1 + pct)

    def _exec_price(self, o: Order, kind: str, px: Any) -> Decimal | None:
        buy = o.side == "buy"
        if kind == "quote":
            q: QuoteRec = px
            raw = q.ap if buy else q.bp
            if raw is None or raw <= 0:
                return None
            ref = D(raw)
            if o.type == "market":
                return ref
            if o.type == "limit":
                return ref if (ref <= o.limit_price if buy else ref >= o.limit_price) else None
            if o.type in ("stop", "stop_limit"):
                if not o.triggered and (ref >= o.stop_price if buy else ref <= o.stop_price):
                    o.triggered = True
                if not o.triggered:
                    return None
                if o.type == "stop":
                    return ref
                return ref if (ref <= o.limit_price if buy else ref >= o.limit_price) else None
            if o.type == "trailing_stop":
                if not o.triggered:
                    stop = self._trail_stop(o)
                    if stop is not None and (ref >= stop if buy else ref <= stop):
                        o.triggered = True
                    else:
                        o.hwm = ref if o.hwm is None else (min(o.hwm, ref) if buy else max(o.hwm, ref))
                        return None
                return ref
            return None
        b: BarRec = px
        op, hi, lo, cl = D(b.o), D(b.h), D(b.l), D(b.c)
        if o.type == "market" or (o.type in ("stop", "trailing_stop") and o.triggered):
            return cl if self.cfg.market_fill_on_bar == "close" else op
        if o.type == "limit" or (o.type == "stop_limit" and o.triggered):
            lim = o.limit_price
            if buy:
                return min(lim, op) if lo <= lim else None
            return max(lim, op) if hi >= lim else None
        if o.type in ("stop", "stop_limit"):
            sp = o.stop_price
            if buy and hi >= sp:
                trig = max(sp, op)
            elif not buy and lo <= sp:
                trig = min(sp, op)
            else:
                return None
            o.triggered = True
            if o.type == "stop":
                return trig
            return trig if (trig <= o.limit_price if buy else trig >= o.limit_price) else None
        if o.type == "trailing_stop":
            stop = self._trail_stop(o)
            if stop is not None and (hi >= stop if buy else lo <= stop):
                o.triggered = True
                return max(stop, op) if buy else min(stop, op)
            if o.hwm is None:
                o.hwm = lo if buy else hi
            else:
                o.hwm = min(o.hwm, lo) if buy else max(o.hwm, hi)
            return None
        return None

    def _evaluate(self, o: Order, kind: str, px: Any, liquidity: dict | None) -> None:
        price = self._exec_price(o, kind, px)
        if price is not None and o.qty is None and o.notional is not None:
            o.qty = (o.notional / price).quantize(Decimal("1e-9"), rounding=ROUND_DOWN)
        qty = ZERO
        if price is not None:
            qty = self._fillable(o)
            chunk = self._chunk(o)
            if chunk is not None and o.time_in_force != "fok":
                qty = min(qty, chunk)
            if liquidity is not None:
                qty = min(qty, liquidity[o.side])
            if o.time_in_force == "fok" and qty < self._fillable(o):
                qty = ZERO
        if qty > 0:
            if liquidity is not None:
                liquidity[o.side] -= qty
            self._fill(o, qty, price)
        if o.time_in_force in ("ioc", "fok") and o.status in WORKING:
            o.ioc_done = True
            self._cancel(o)

    def _fees(self, side: str, qty: Decimal, price: Decimal, mult: Decimal) -> Decimal:
        f = self.cfg.fees
        fee = D(f.commission_per_share) * qty
        if side == "sell":
            fee += qty * price * mult * D(f.sec_fee_per_million) / Decimal(1_000_000)
            fee += min(qty * D(f.finra_taf_per_share), D(f.finra_taf_max))
        return fee.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)

    def _fill(self, o: Order, qty: Decimal, price: Decimal) -> None:
        now = self.now()
        mult = self._multiplier(o.symbol)
        o.filled_qty += qty
        o.filled_value += qty * price
        full = o.filled_qty >= (o.qty or ZERO)
        o.status = "filled" if full else ("pending_cancel" if o.cancel_requested else "partially_filled")
        o.updated_at = now
        if full:
            o.filled_at = now
        pos_after = self._apply_position(o.symbol, o.side, qty, price)
        notional = qty * price * mult
        self.cash += -notional if o.side == "buy" else notional
        exec_id = self.new_id()
        event = "fill" if full else "partial_fill"
        self.activities.append({
            "_t": now, "id": self._activity_id(now, exec_id), "account_id": self.account_id,
            "activity_type": "FILL", "transaction_time": ts(now), "type": event, "price": fmt(price),
            "qty": fmt(qty), "side": o.side, "symbol": o.symbol, "leaves_qty": fmt(o.remaining),
            "order_id": o.id, "cum_qty": fmt(o.filled_qty), "order_status": o.status,
        })
        fee = (opt.fill_fee(o.side, qty, price, mult, now) if o.asset_class == "us_option"
               else self._fees(o.side, qty, price, mult))
        if fee > 0:
            self.cash -= fee
            self.fees_total += fee
            self.activities.append({
                "_t": now, "id": self._activity_id(now), "account_id": self.account_id, "activity_type": "FEE",
                "date": now.astimezone(NY).date().isoformat(), "net_amount": fmt(-fee),
                "description": f"REG/TAF fee: {o.side} {fmt(qty)} {o.symbol} @ {fmt(price)}",
                "status": "executed", "symbol": o.symbol, "qty": fmt(qty), "per_share_amount": None,
                "order_id": o.id, "created_at": ts(now),
            })
        if o.oco_group:
            self.oco_groups[o.oco_group].filled += qty
        self._emit_trade(event, o, price=fmt(price), qty=fmt(qty), position_qty=fmt(pos_after),
                         execution_id=exec_id)
        if o.oco_group:
            g = self.oco_groups[o.oco_group]
            if g.filled >= g.qty:
                for mid in g.members:
                    m = self.orders.get(mid)
                    if m is not None and m is not o and m.status in OPEN:
                        self._cancel(m, cascade=False)
        if full and o.leg_ids:  # release bracket / oto legs for the filled quantity
            if o.order_class == "bracket" and o.leg_ids:
                g = self.oco_groups.get(self.orders[o.leg_ids[0]].oco_group or "")
                if g is not None:
                    g.qty = o.filled_qty
            for lid in o.leg_ids:
                leg = self.orders[lid]
                if leg.status == "held":
                    leg.qty = o.filled_qty
                    leg.status = "new"
                    leg.updated_at = now
                    self._emit_trade("new", leg)

    def _match(self, symbol: str, kind: str, px: Any) -> None:
        liquidity = None
        if kind == "quote" and self.cfg.respect_quote_size:
            liquidity = {"buy": D(px.as_), "sell": D(px.bs)}
        working = sorted((o for o in self.orders.values()
                          if o.symbol == symbol and o.status in WORKING and o.routed), key=lambda x: x.seq)
        for o in working:
            if o.status in WORKING:
                self._evaluate(o, kind, px, liquidity)

    # ============================================================================ market data ===
    def on_quote(self, symbol: str, bid: float, ask: float, bid_size: float = 100, ask_size: float = 100,
                 t: datetime | None = None, stream: bool = True, match: bool = True) -> QuoteRec:
        with self.lock:
            sym = symbol.upper()
            self.asset(sym)
            q = QuoteRec(to_utc(t) if t else self.now(), float(bid), float(ask), float(bid_size), float(ask_size))
            self.market.add_quote(sym, q)
            if stream:
                self._emit_data("quotes", sym, q.stream(sym))
            if match:
                self._match(sym, "quote", q)
            self.check_expiry()
            return q

    def on_bar(self, symbol: str, bar: BarRec, timeframe: str = "1Min", stream: bool = True,
               match: bool = True, updated: bool = False) -> BarRec:
        """Store, stream and match one bar. ``updated``: a correction of an already published minute
        bar (Alpaca's ``updatedBars`` channel, type ``u``); it replaces the stored bar."""
        with self.lock:
            sym = symbol.upper()
            self.asset(sym)
            self.market.add_bars(sym, [bar], timeframe)
            if self.cfg.clock_follows_bars and not updated:
                delta = timeframe_delta(timeframe) or timedelta(minutes=1)
                self.clock.move_forward_to(bar.t + delta)
            if stream:
                daily = canonical_timeframe(timeframe).endswith("Day")
                if updated:
                    self._emit_data("updatedBars", sym, bar.stream(sym, "u"))
                else:
                    self._emit_data("dailyBars" if daily else "bars", sym,
                                    bar.stream(sym, "d" if daily else "b"))
            if match:
                self._match(sym, "bar", bar)
            if self.cfg.option_auto_quotes and not updated and canonical_timeframe(timeframe) == "1Min":
                opt.auto_quote(self, sym, float(bar.c))  # demos: the underlying's contracts quoted
            self.check_expiry()
            return bar

    def on_trade(self, symbol: str, price: float, size: float = 100, t: datetime | None = None,
                 stream: bool = True) -> None:
        """A trade print: updates the last price (position marks); does not fill orders."""
        with self.lock:
            sym = symbol.upper()
            self.asset(sym)
            tr = self.market.add_trade(sym, to_utc(t) if t else self.now(), price, size)
            if stream:
                self._emit_data("trades", sym, tr.stream(sym))
            self.check_expiry()

    # ============================================================================= activities ===
    def list_activities(self, params: dict, activity_type: str | None = None) -> list[dict]:
        with self.lock:
            types = None
            if activity_type:
                types = {activity_type.upper()}
            elif params.get("activity_types"):
                types = {t.strip().upper() for t in params["activity_types"].split(",") if t.strip()}
            day = date.fromisoformat(params["date"]) if params.get("date") else None
            after = parse_time(params["after"]) if params.get("after") else None
            until = parse_time(params["until"]) if params.get("until") else None
            direction = (params.get("direction") or "desc").lower()
            try:
                page_size = max(1, min(int(params.get("page_size") or 100), 100))
            except ValueError:
                raise unprocessable("invalid page_size") from None
            acts = [a for a in self.activities if types is None or a["activity_type"] in types]
            if day:
                acts = [a for a in acts if a["_t"].astimezone(NY).date() == day]
            if after:
                acts = [a for a in acts if a["_t"] > after]
            if until:
                acts = [a for a in acts if a["_t"] < until]
            if direction != "asc":
                acts = list(reversed(acts))
            token = params.get("page_token")
            if token:
                ids = [a["id"] for a in acts]
                if token in ids:
                    acts = acts[ids.index(token) + 1:]
            return [{k: v for k, v in a.items() if k != "_t"} for a in acts[:page_size]]

    # ================================================================================= assets ===
    def list_assets(self, params: dict) -> list[dict]:
        with self.lock:
            out = []
            for a in sorted(self.assets.values(), key=lambda x: x.symbol):
                if params.get("status") and a.status != params["status"]:
                    continue
                if params.get("asset_class") and a.asset_class != params["asset_class"]:
                    continue
                if params.get("exchange") and a.exchange != params["exchange"]:
                    continue
                if params.get("attributes"):
                    want = {x.strip() for x in params["attributes"].split(",")}
                    if not want & set(a.attributes):
                        continue
                out.append(a.to_json())
            return out

    def get_asset(self, symbol_or_id: str) -> dict:
        with self.lock:
            a = self.asset(symbol_or_id)
            if a is None:
                raise ApiError(404, f"asset not found for {symbol_or_id}", 40410000)
            return a.to_json()

    # ======================================================================= option contracts ===
    def add_option_contract(self, underlying: str, expiration: date | str, strike: float, type: str,
                            style: str = "american", close_price: float | None = None,
                            open_interest: int | None = None, root_symbol: str | None = None) -> dict:
        with self.lock:
            und = underlying.upper()
            exp = date.fromisoformat(expiration) if isinstance(expiration, str) else expiration
            root = (root_symbol or und).upper()
            cp = "C" if type.lower().startswith("c") else "P"
            k = D(strike, "strike")
            occ = f"{root}{exp.strftime('%y%m%d')}{cp}{int((k * 1000).to_integral_value()):08d}"
            und_asset = self.asset(und)
            c = {
                "id": str(uuid.uuid5(NS, "option:" + occ)), "symbol": occ,
                "name": f"{und} {exp.strftime('%b %d %Y')} {fmt(k)} {'Call' if cp == 'C' else 'Put'}",
                "status": "active", "tradable": True, "expiration_date": exp.isoformat(), "root_symbol": root,
                "underlying_symbol": und, "underlying_asset_id": und_asset.id if und_asset else
                str(uuid.uuid5(NS, "asset:" + und)),
                "type": "call" if cp == "C" else "put", "style": style, "strike_price": fmt(k),
                "multiplier": "100", "size": "100",
                "open_interest": str(open_interest) if open_interest is not None else None,
                "open_interest_date": exp.isoformat() if open_interest is not None else None,
                "close_price": fmt(D(close_price)) if close_price is not None else None,
                "close_price_date": None, "deliverables": [],
            }
            self.contracts[occ] = c
            return dict(c)

    def list_option_contracts(self, params: dict) -> dict:
        with self.lock:
            unds = {s.strip().upper() for s in params["underlying_symbols"].split(",")} \
                if params.get("underlying_symbols") else None
            status = params.get("status") or "active"
            exp = params.get("expiration_date")
            exp_gte, exp_lte = params.get("expiration_date_gte"), params.get("expiration_date_lte")
            k_gte = D(params["strike_price_gte"]) if params.get("strike_price_gte") else None
            k_lte = D(params["strike_price_lte"]) if params.get("strike_price_lte") else None
            out = []
            for c in sorted(self.contracts.values(),
                            key=lambda c: (c["underlying_symbol"], c["expiration_date"], c["type"],
                                           D(c["strike_price"]))):
                if unds and c["underlying_symbol"] not in unds:
                    continue
                if status and c["status"] != status:
                    continue
                if exp and c["expiration_date"] != exp:
                    continue
                if exp_gte and c["expiration_date"] < exp_gte:
                    continue
                if exp_lte and c["expiration_date"] > exp_lte:
                    continue
                if params.get("root_symbol") and c["root_symbol"] != params["root_symbol"].upper():
                    continue
                if params.get("type") and c["type"] != params["type"]:
                    continue
                if params.get("style") and c["style"] != params["style"]:
                    continue
                if k_gte is not None and D(c["strike_price"]) < k_gte:
                    continue
                if k_lte is not None and D(c["strike_price"]) > k_lte:
                    continue
                out.append(c)
            try:
                limit = max(1, min(int(params.get("limit") or 100), 10_000))
                start = int(params.get("page_token") or 0)
            except ValueError:
                raise unprocessable("invalid limit or page_token") from None
            page = out[start:start + limit]
            nxt = str(start + limit) if start + limit < len(out) else None
            return {"option_contracts": [dict(c) for c in page], "next_page_token": nxt}

    def get_option_contract(self, symbol_or_id: str) -> dict:
        with self.lock:
            key = str(symbol_or_id)
            for c in self.contracts.values():
                if c["symbol"] == key.upper() or c["id"] == key.lower():
                    return dict(c)
            raise ApiError(404, "option contract not found", 40410000)
