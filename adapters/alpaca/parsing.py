"""Alpaca trading API ⇄ Nautilus: typed schemas, enum mappings and report parsing (pure, no I/O).

* **Schemas** (msgspec ``Struct`` s, unknown fields ignored): ``AlpacaOrder`` (with its bracket
  ``legs``), ``AlpacaTradeUpdate`` (a ``trade_updates`` event), ``AlpacaFillActivity``
  (``/v2/account/activities/FILL``), ``AlpacaPosition``, ``AlpacaAccount``, ``AlpacaClock``.
  Alpaca sends decimals as strings; they are decoded to ``Decimal`` so prices and quantities stay
  exact (an empty string counts as absent). ``decode(obj, Schema)`` converts a parsed JSON value.
* **Enums**: order type / time in force / status / side in both directions.
* **Reports**: ``parse_order_status_report`` (a replace chain folded into one report),
  ``AlpacaFillActivity.parse_to_fill_report``, ``AlpacaPosition.parse_to_position_status_report``
  and ``parse_account_balances``.
* **Requests**: ``order_request_error`` (what Alpaca cannot take), ``order_body`` and
  ``order_list_body`` (bracket / OTO) for ``POST /v2/orders``.
* **Instruments**: ``parse_equity`` and ``parse_option_contract`` (from alpaca-py models or dicts).

Market data (bars, quotes, trades) has its own module, ``data_parsing``.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timezone
from decimal import Decimal
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import msgspec
from nautilus_trader.core.uuid import UUID4
from nautilus_trader.execution.reports import FillReport, OrderStatusReport, PositionStatusReport
from nautilus_trader.model.currencies import USD
from nautilus_trader.model.enums import (
    AssetClass,
    ContingencyType,
    LiquiditySide,
    OptionKind,
    OrderSide,
    OrderStatus,
    OrderType,
    PositionSide,
    TimeInForce,
    TriggerType,
)
from nautilus_trader.model.identifiers import AccountId, ClientOrderId, InstrumentId, Symbol, TradeId, VenueOrderId
from nautilus_trader.model.instruments import Equity, Instrument, OptionContract
from nautilus_trader.model.objects import AccountBalance, MarginBalance, Money, Price, Quantity

from .common import ALPACA_VENUE, MAX_CLIENT_ORDER_ID_LEN

NY = ZoneInfo("America/New_York")

# OCC option symbol: root (1-6 letters, may end in a digit after corporate actions), YYMMDD, C/P,
# strike × 1000 on 8 digits.
OCC_RE = re.compile(r"^(?P<root>[A-Z][A-Z0-9.]{0,5})(?P<ymd>\d{6})(?P<cp>[CP])(?P<strike>\d{8})$")


def is_option_symbol(symbol: str) -> bool:
    return bool(OCC_RE.match(symbol))


def instrument_id(symbol: str) -> InstrumentId:
    return InstrumentId(Symbol(symbol), ALPACA_VENUE)


def dec(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    return Decimal(str(value))


def dt_to_ns(value: Any) -> int | None:
    """datetime / ISO string → UNIX ns (None stays None)."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        s = value.replace("Z", "+00:00")
        # Python < 3.11 fromisoformat cannot parse > 6 fractional digits; Alpaca sends 9.
        m = re.match(r"^(.*T\d\d:\d\d:\d\d)(\.\d+)?(.*)$", s)
        if m:
            frac = (m.group(2) or ".0")[1:]
            base = datetime.fromisoformat(m.group(1) + (m.group(3) or "+00:00"))
            if base.tzinfo is None:
                base = base.replace(tzinfo=timezone.utc)
            return int(base.timestamp()) * 1_000_000_000 + int(frac.ljust(9, "0")[:9])
        value = datetime.fromisoformat(s)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return int(value.timestamp()) * 1_000_000_000 + value.microsecond * 1_000
    raise TypeError(f"cannot convert {value!r} to a timestamp")


def ts_or(value: Any, default_ns: int) -> int:
    """``dt_to_ns(value)``, or ``default_ns`` when the value is absent or unreadable."""
    try:
        ns = dt_to_ns(value)
    except Exception:  # noqa: BLE001 - a malformed timestamp falls back like a missing one
        ns = None
    return ns if ns is not None else default_ns


def rfc3339(value: datetime) -> str:
    """A query-string timestamp for Alpaca (UTC, ``Z`` suffix)."""
    return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def enum_value(value: Any) -> str | None:
    """alpaca-py enums are ``str`` Enums; raw dicts carry plain strings."""
    if value is None:
        return None
    return str(getattr(value, "value", value)).lower()


def fmt_decimal(value: Any) -> str:
    """A quantity / price as Alpaca wants it: a plain decimal string without exponent."""
    d = Decimal(str(value))
    s = format(d.normalize(), "f")
    return s


def usd(amount: Any) -> Money:
    return Money(Decimal(str(amount)), USD)


# -- Schemas ---------------------------------------------------------------------------------------

class AlpacaOrder(msgspec.Struct, kw_only=True):
    """An Alpaca order (``/v2/orders`` and the ``order`` of a trade update); ``legs`` are the
    bracket / OTO children. ``replaces`` / ``replaced_by`` link a replace chain."""

    id: str
    client_order_id: str | None = None
    symbol: str = ""
    side: str | None = None
    type: str | None = None
    order_type: str | None = None
    order_class: str | None = None
    time_in_force: str | None = None
    status: str | None = None
    qty: Decimal | None = None
    notional: Decimal | None = None
    filled_qty: Decimal | None = None
    filled_avg_price: Decimal | None = None
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    replaces: str | None = None
    replaced_by: str | None = None
    reject_reason: str | None = None
    created_at: str | None = None
    updated_at: str | None = None
    submitted_at: str | None = None
    legs: list[AlpacaOrder] | None = None

    @property
    def kind(self) -> str | None:
        """The order type (Alpaca sends it as ``type`` and ``order_type``)."""
        return self.type or self.order_type

    @property
    def filled(self) -> Decimal:
        return self.filled_qty or Decimal(0)


class AlpacaTradeUpdate(msgspec.Struct, kw_only=True):
    """One ``trade_updates`` event (``data`` of a stream message). ``qty`` / ``price`` /
    ``execution_id`` come with fills only."""

    event: str = ""
    order: AlpacaOrder | None = None
    timestamp: str | None = None
    execution_id: str | None = None
    qty: Decimal | None = None
    price: Decimal | None = None
    position_qty: Decimal | None = None
    reason: str | None = None

    @property
    def event_name(self) -> str:
        return self.event.lower()


class AlpacaFillActivity(msgspec.Struct, kw_only=True):
    """A ``FILL`` account activity; ``id`` is ``<YYYYMMDDhhmmssmmm>::<execution id>``."""

    id: str = ""
    activity_type: str = "FILL"
    transaction_time: str | None = None
    type: str | None = None  # fill / partial_fill
    symbol: str = ""
    side: str | None = None
    qty: Decimal | None = None
    price: Decimal | None = None
    cum_qty: Decimal | None = None
    leaves_qty: Decimal | None = None
    order_id: str | None = None
    order_status: str | None = None

    @property
    def execution_id(self) -> str:
        """The execution id (the same value as ``execution_id`` on the trade_updates fill)."""
        return self.id.split("::", 1)[1] if "::" in self.id else self.id

    def parse_to_fill_report(self, *, account_id: AccountId, venue_order_id: str,
                             client_order_id: ClientOrderId | None, order_type: OrderType,
                             instrument: Instrument | None, commission: Decimal, ts_init: int) -> FillReport:
        iid = instrument_id(self.symbol)
        ts_event = ts_or(self.transaction_time, ts_init)
        return FillReport(
            account_id=account_id,
            instrument_id=iid,
            venue_order_id=VenueOrderId(venue_order_id),
            trade_id=TradeId(self.execution_id),
            order_side=order_side_from_alpaca(self.side),
            last_qty=make_qty(instrument, self.qty or Decimal(0)),
            last_px=make_price(instrument, self.price or Decimal(0)),
            commission=Money(commission, USD),
            liquidity_side=liquidity_side_for(order_type),
            report_id=UUID4(),
            ts_event=ts_event,
            ts_init=ts_init,
            client_order_id=client_order_id,
        )


class AlpacaPosition(msgspec.Struct, kw_only=True):
    """An open position (``/v2/positions``); ``qty`` is unsigned when ``side`` is ``short``."""

    symbol: str
    qty: Decimal | None = None
    side: str | None = None
    avg_entry_price: Decimal | None = None
    unrealized_pl: Decimal | None = None
    market_value: Decimal | None = None
    asset_class: str | None = None

    @property
    def signed_qty(self) -> Decimal:
        qty = self.qty or Decimal(0)
        return -qty if str(self.side or "").lower() == "short" and qty > 0 else qty

    def parse_to_position_status_report(self, *, account_id: AccountId, instrument: Instrument | None,
                                        ts_init: int) -> PositionStatusReport:
        qty = self.signed_qty
        return PositionStatusReport(
            account_id=account_id,
            instrument_id=instrument_id(self.symbol),
            position_side=position_side_from_qty(qty),
            quantity=make_qty(instrument, abs(qty)),
            avg_px_open=self.avg_entry_price,
            report_id=UUID4(),
            ts_last=ts_init,
            ts_init=ts_init,
        )


#: Alpaca account fields copied (as Alpaca's strings) into the Nautilus AccountState ``info``.
ACCOUNT_INFO_FIELDS = (
    "account_number", "status", "equity", "last_equity", "cash", "buying_power", "regt_buying_power",
    "non_marginable_buying_power", "multiplier", "long_market_value", "short_market_value",
    "initial_margin", "maintenance_margin", "accrued_fees", "shorting_enabled",
    "trading_blocked", "account_blocked")


class AlpacaAccount(msgspec.Struct, kw_only=True):
    """``/v2/account`` (``pattern_day_trader`` / ``daytrade_count`` / ``daytrading_buying_power``
    are deliberately not read)."""

    account_number: str = ""
    status: str | None = None
    currency: str | None = None
    equity: Decimal | None = None
    last_equity: Decimal | None = None
    cash: Decimal | None = None
    buying_power: Decimal | None = None
    regt_buying_power: Decimal | None = None
    non_marginable_buying_power: Decimal | None = None
    multiplier: Decimal | None = None
    long_market_value: Decimal | None = None
    short_market_value: Decimal | None = None
    initial_margin: Decimal | None = None
    maintenance_margin: Decimal | None = None
    accrued_fees: Decimal | None = None
    shorting_enabled: bool | None = None
    trading_blocked: bool | None = None
    account_blocked: bool | None = None

    def info(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in ACCOUNT_INFO_FIELDS:
            value = getattr(self, name)
            if value is not None:
                out[name] = str(value) if isinstance(value, Decimal) else value
        return out


class AlpacaClock(msgspec.Struct, kw_only=True):
    """``/v2/clock``."""

    timestamp: str | None = None
    is_open: bool | None = None
    next_open: str | None = None
    next_close: str | None = None


S = TypeVar("S")


def _blank_to_none(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: (None if v == "" else _blank_to_none(v)) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_blank_to_none(v) for v in obj]
    return obj


def decode(obj: Any, schema: type[S]) -> S:
    """A parsed JSON value (dict, or list for ``list[Schema]``) → ``schema``; numbers may come as
    strings or numbers, an empty string counts as absent. Raises ``msgspec.ValidationError``."""
    return msgspec.convert(_blank_to_none(obj), schema, strict=False)


def decode_trade_update(data: Any) -> AlpacaTradeUpdate | None:
    """The ``data`` of a trade_updates message, or None when it names no order."""
    if not isinstance(data, dict) or not isinstance(data.get("order"), dict) or not data["order"].get("id"):
        return None
    return decode(data, AlpacaTradeUpdate)


# -- Instruments -----------------------------------------------------------------------------------

def _get(obj: Any, name: str, default: Any = None) -> Any:
    if isinstance(obj, dict):
        return obj.get(name, default)
    return getattr(obj, name, default)


def parse_equity(asset: Any, ts_init: int) -> Equity:
    """An Alpaca ``Asset`` (us_equity) → Nautilus ``Equity`` ``SYMBOL.ALPACA``: USD, tick 0.01,
    whole shares (fractional trading is not used by this adapter)."""
    symbol = _get(asset, "symbol")
    info = {
        "asset_id": str(_get(asset, "id", "")),
        "name": _get(asset, "name") or "",
        "exchange": enum_value(_get(asset, "exchange")) or "",
        "tradable": bool(_get(asset, "tradable", True)),
        "marginable": bool(_get(asset, "marginable", False)),
        "shortable": bool(_get(asset, "shortable", False)),
        "easy_to_borrow": bool(_get(asset, "easy_to_borrow", False)),
        "fractionable": bool(_get(asset, "fractionable", False)),
    }
    return Equity(
        instrument_id=instrument_id(symbol),
        raw_symbol=Symbol(symbol),
        currency=USD,
        price_precision=2,
        price_increment=Price.from_str("0.01"),
        lot_size=Quantity.from_int(1),
        ts_event=ts_init,
        ts_init=ts_init,
        info=info,
    )


def option_expiration_ns(expiration: date | str) -> int:
    """Options expire at the 16:00 New York close of their expiration date."""
    if isinstance(expiration, str):
        expiration = date.fromisoformat(expiration)
    return dt_to_ns(datetime.combine(expiration, time(16, 0), tzinfo=NY))


def parse_option_contract(contract: Any, ts_init: int) -> OptionContract:
    """An Alpaca ``OptionContract`` → Nautilus ``OptionContract`` (OCC symbol, ×100)."""
    symbol = _get(contract, "symbol")
    kind = enum_value(_get(contract, "type"))
    size = Decimal(str(_get(contract, "size") or "100"))
    info = {
        "contract_id": str(_get(contract, "id", "")),
        "root_symbol": _get(contract, "root_symbol") or "",
        "style": enum_value(_get(contract, "style")) or "",
        "tradable": bool(_get(contract, "tradable", True)),
    }
    return OptionContract(
        instrument_id=instrument_id(symbol),
        raw_symbol=Symbol(symbol),
        asset_class=AssetClass.EQUITY,
        currency=USD,
        price_precision=2,
        price_increment=Price.from_str("0.01"),
        multiplier=Quantity.from_int(int(size)),
        lot_size=Quantity.from_int(1),
        underlying=_get(contract, "underlying_symbol"),
        option_kind=OptionKind.CALL if kind == "call" else OptionKind.PUT,
        strike_price=Price(float(_get(contract, "strike_price")), 2),
        activation_ns=0,
        expiration_ns=option_expiration_ns(_get(contract, "expiration_date")),
        ts_event=ts_init,
        ts_init=ts_init,
        exchange="OPRA",
        info=info,
    )


def make_qty(instrument: Instrument | None, value: Any) -> Quantity:
    """A quantity at the instrument's size precision (as Alpaca wrote it without an instrument)."""
    if instrument is not None:
        return instrument.make_qty(Decimal(str(value)))
    return Quantity.from_str(fmt_decimal(value))


def make_price(instrument: Instrument | None, value: Any) -> Price | None:
    """A price rounded to the instrument's tick (None stays None)."""
    if value is None or value == "":
        return None
    if instrument is not None:
        return instrument.make_price(Decimal(str(value)))
    return Price.from_str(fmt_decimal(value))


# -- Enums -----------------------------------------------------------------------------------------

ORDER_TYPE_TO_ALPACA = {
    OrderType.MARKET: "market",
    OrderType.LIMIT: "limit",
    OrderType.STOP_MARKET: "stop",
    OrderType.STOP_LIMIT: "stop_limit",
}
ORDER_TYPE_FROM_ALPACA = {
    "market": OrderType.MARKET,
    "limit": OrderType.LIMIT,
    "stop": OrderType.STOP_MARKET,
    "stop_limit": OrderType.STOP_LIMIT,
    "trailing_stop": OrderType.TRAILING_STOP_MARKET,
}
TIF_TO_ALPACA = {
    TimeInForce.DAY: "day",
    TimeInForce.GTC: "gtc",
    TimeInForce.IOC: "ioc",
    TimeInForce.FOK: "fok",
    TimeInForce.AT_THE_OPEN: "opg",
    TimeInForce.AT_THE_CLOSE: "cls",
}
TIF_FROM_ALPACA = {v: k for k, v in TIF_TO_ALPACA.items()}

# Alpaca order status → Nautilus status for reports ("replaced" orders are never reported: the
# replacement order carries on).
ORDER_STATUS_FROM_ALPACA = {
    "new": OrderStatus.ACCEPTED,
    "accepted": OrderStatus.ACCEPTED,
    "pending_new": OrderStatus.ACCEPTED,
    "accepted_for_bidding": OrderStatus.ACCEPTED,
    "held": OrderStatus.ACCEPTED,
    "stopped": OrderStatus.ACCEPTED,
    "suspended": OrderStatus.ACCEPTED,
    "calculated": OrderStatus.PARTIALLY_FILLED,
    "done_for_day": OrderStatus.ACCEPTED,
    "partially_filled": OrderStatus.PARTIALLY_FILLED,
    "filled": OrderStatus.FILLED,
    "canceled": OrderStatus.CANCELED,
    "expired": OrderStatus.EXPIRED,
    "rejected": OrderStatus.REJECTED,
    "pending_cancel": OrderStatus.PENDING_CANCEL,
    "pending_replace": OrderStatus.PENDING_UPDATE,
}
OPEN_ALPACA_STATUSES = {"new", "accepted", "pending_new", "accepted_for_bidding", "held", "stopped",
                        "suspended", "calculated", "done_for_day", "partially_filled",
                        "pending_cancel", "pending_replace"}
TERMINAL_ALPACA_STATUSES = {"filled", "canceled", "expired", "rejected", "replaced"}


def order_side_from_alpaca(side: Any) -> OrderSide:
    return OrderSide.BUY if enum_value(side) == "buy" else OrderSide.SELL


def order_side_to_alpaca(side: OrderSide) -> str:
    return "buy" if side == OrderSide.BUY else "sell"


def liquidity_side_for(order_type: OrderType) -> LiquiditySide:
    """Alpaca does not report maker/taker; resting limit orders are taken as MAKER, the rest TAKER."""
    return LiquiditySide.MAKER if order_type == OrderType.LIMIT else LiquiditySide.TAKER


def position_side_from_qty(qty: Decimal) -> PositionSide:
    if qty > 0:
        return PositionSide.LONG
    if qty < 0:
        return PositionSide.SHORT
    return PositionSide.FLAT


# -- Client order ids ------------------------------------------------------------------------------

def trade_id_from_activity(activity: AlpacaFillActivity | dict) -> str:
    """FILL activity id ``YYYYMMDDhhmmssmmm::<execution id>`` → the execution id (the same value
    as ``execution_id`` on the trade_updates fill event)."""
    aid = activity.id if isinstance(activity, AlpacaFillActivity) else str(activity.get("id") or "")
    return aid.split("::", 1)[1] if "::" in aid else aid


# Replacement orders get ``<original client_order_id>-R<n>`` as their client_order_id (Alpaca
# requires unique ids), so a restart can map every order of a replace chain back to the original.
_REPLACE_SUFFIX_RE = re.compile(r"^(?P<root>.+)-R(?P<n>\d+)$")


def replacement_client_order_id(root: str, n: int, max_len: int = MAX_CLIENT_ORDER_ID_LEN) -> str | None:
    coid = f"{root}-R{n}"
    return coid if len(coid) <= max_len else None


def split_client_order_id(coid: str | None) -> tuple[str | None, int]:
    """``"X-R2"`` → ``("X", 2)``; ``"X"`` → ``("X", 0)``."""
    if not coid:
        return None, 0
    m = _REPLACE_SUFFIX_RE.match(coid)
    if m:
        return m.group("root"), int(m.group("n"))
    return coid, 0


# -- Reports ---------------------------------------------------------------------------------------

def parse_order_status_report(chain: list[AlpacaOrder], *, account_id: AccountId,
                              client_order_id: ClientOrderId | None, instrument: Instrument | None,
                              ts_init: int) -> OrderStatusReport | None:
    """The report of ``chain[-1]``, the live order of a replace chain (oldest first): quantities
    and the average price include what the replaced orders filled; ``ts_accepted`` is the first
    order's. None for orders Nautilus cannot represent (notional-only, unknown type / status)."""
    o = chain[-1]
    status = ORDER_STATUS_FROM_ALPACA.get(str(o.status))
    otype = ORDER_TYPE_FROM_ALPACA.get(str(o.kind))
    tif = TIF_FROM_ALPACA.get(str(o.time_in_force))
    if status is None or otype is None or tif is None or o.qty is None:
        return None  # replaced / notional-only / unsupported
    prev_filled = sum((p.filled for p in chain[:-1]), Decimal(0))
    prev_value = sum((p.filled * (p.filled_avg_price or Decimal(0)) for p in chain[:-1]), Decimal(0))
    filled = prev_filled + o.filled
    qty = prev_filled + o.qty
    avg = None
    if filled > 0:
        avg = (prev_value + o.filled * (o.filled_avg_price or Decimal(0))) / filled
    if status == OrderStatus.ACCEPTED and filled > 0:
        status = OrderStatus.PARTIALLY_FILLED
    return OrderStatusReport(
        account_id=account_id,
        instrument_id=instrument_id(o.symbol),
        client_order_id=client_order_id,
        venue_order_id=VenueOrderId(o.id),
        order_side=order_side_from_alpaca(o.side),
        order_type=otype,
        time_in_force=tif,
        order_status=status,
        quantity=make_qty(instrument, qty),
        filled_qty=make_qty(instrument, filled),
        avg_px=avg,
        price=make_price(instrument, o.limit_price),
        trigger_price=make_price(instrument, o.stop_price),
        trigger_type=TriggerType.DEFAULT if o.stop_price is not None else TriggerType.NO_TRIGGER,
        report_id=UUID4(),
        ts_accepted=ts_or(chain[0].submitted_at or chain[0].created_at, ts_init),
        ts_last=ts_or(o.updated_at or o.submitted_at, ts_init),
        ts_init=ts_init,
    )


def parse_account_balances(account: AlpacaAccount, positions: list[AlpacaPosition] | None,
                           ) -> tuple[list[AccountBalance], list[MarginBalance]]:
    """Nautilus MARGIN-account semantics: equity = balance + unrealized PnL. Alpaca's equity
    already contains the positions' market value, so the balance is ``equity - sum(unrealized_pl)``
    (= cash + cost basis of the open positions)."""
    equity = account.equity or Decimal(0)
    unrealized = sum(((p.unrealized_pl or Decimal(0)) for p in (positions or [])), Decimal(0))
    total = (equity - unrealized).quantize(Decimal("0.01"))
    balance = AccountBalance(total=Money(total, USD), locked=Money(0, USD), free=Money(total, USD))
    margins = []
    init_margin, maint_margin = account.initial_margin, account.maintenance_margin
    if init_margin is not None and maint_margin is not None and init_margin >= 0 and maint_margin >= 0:
        margins.append(MarginBalance(initial=Money(init_margin, USD), maintenance=Money(maint_margin, USD)))
    return [balance], margins


# -- Requests --------------------------------------------------------------------------------------

def order_request_error(order: Any, instrument: Instrument | None, *, simple_only: bool = False) -> str | None:
    """Why Alpaca cannot take ``order`` (None when it can). Post-only is not an error: Alpaca has
    no such flag and the order goes as a plain limit."""
    if order.order_type not in ORDER_TYPE_TO_ALPACA:
        return f"order type {order.order_type.name} is not supported by the Alpaca adapter"
    if order.time_in_force not in TIF_TO_ALPACA:
        return f"time in force {order.time_in_force.name} is not supported by Alpaca"
    if order.is_quote_quantity:
        return "quote-quantity (notional) orders are not supported by the Alpaca adapter"
    if len(order.client_order_id.value) > MAX_CLIENT_ORDER_ID_LEN:
        return f"client_order_id longer than {MAX_CLIENT_ORDER_ID_LEN} characters"
    if isinstance(instrument, OptionContract) or (instrument is None and is_option_symbol(order.instrument_id.symbol.value)):
        if order.order_type not in (OrderType.MARKET, OrderType.LIMIT):
            return "Alpaca option orders are market or limit orders (no stop orders: the strategy holds the stop)"
        if order.time_in_force != TimeInForce.DAY:
            return "Alpaca option orders must be DAY orders"
        if order.quantity.as_decimal() != order.quantity.as_decimal().to_integral_value():
            return "Alpaca option orders are for whole contracts"
        if simple_only:
            return ("Alpaca accepts only simple orders for options: bracket/OTO exits must be "
                    "emulated (emulation_trigger) or sent after the entry fills")
    return None


def order_body(order: Any) -> dict:
    """``POST /v2/orders`` body of a simple order (decimal strings; Alpaca's field names). The
    Nautilus ``ClientOrderId`` is Alpaca's ``client_order_id`` (what makes submission idempotent)."""
    body = {
        "symbol": order.instrument_id.symbol.value,
        "qty": fmt_decimal(order.quantity.as_decimal()),
        "side": order_side_to_alpaca(order.side),
        "type": ORDER_TYPE_TO_ALPACA[order.order_type],
        "time_in_force": TIF_TO_ALPACA[order.time_in_force],
        "client_order_id": order.client_order_id.value,
    }
    if order.order_type in (OrderType.LIMIT, OrderType.STOP_LIMIT):
        body["limit_price"] = fmt_decimal(order.price.as_decimal())
    if order.order_type in (OrderType.STOP_MARKET, OrderType.STOP_LIMIT):
        body["stop_price"] = fmt_decimal(order.trigger_price.as_decimal())
    return body


_STOPS = (OrderType.STOP_MARKET, OrderType.STOP_LIMIT)


def is_contingent(orders: list[Any]) -> bool:
    return any(o.contingency_type != ContingencyType.NO_CONTINGENCY for o in orders)


def order_list_body(orders: list[Any]) -> tuple[dict | None, list[Any], str | None]:
    """Entry + OTO children → one Alpaca ``bracket`` (take-profit LIMIT + STOP / STOP_LIMIT) or
    ``oto`` body. Returns ``(body, legs, None)`` — ``legs`` the children in Alpaca's leg order —
    or ``(None, [], reason)`` when Alpaca cannot take the list."""
    entry = orders[0]
    children = [o for o in orders[1:] if o.parent_order_id == entry.client_order_id]
    tp = [c for c in children if c.order_type == OrderType.LIMIT]
    sl = [c for c in children if c.order_type in _STOPS]
    reason = None
    if entry.contingency_type != ContingencyType.OTO or len(children) != len(orders) - 1:
        reason = "Alpaca supports only entry + OTO children (bracket / OTO) order lists"
    elif not (1 <= len(children) <= 2) or len(tp) > 1 or len(sl) > 1 or len(tp) + len(sl) != len(children):
        reason = "Alpaca brackets need one take-profit LIMIT and/or one STOP / STOP_LIMIT child"
    elif entry.time_in_force not in (TimeInForce.DAY, TimeInForce.GTC):
        reason = "Alpaca bracket / OTO orders must be DAY or GTC"
    elif any(c.side == entry.side or c.quantity != entry.quantity for c in children):
        reason = "bracket children must be the opposite side and the entry's quantity"
    if reason:
        return None, [], reason
    body = order_body(entry)
    body["order_class"] = "bracket" if len(children) == 2 else "oto"
    if tp:
        body["take_profit"] = {"limit_price": fmt_decimal(tp[0].price.as_decimal())}
    if sl:
        leg = {"stop_price": fmt_decimal(sl[0].trigger_price.as_decimal())}
        if sl[0].order_type == OrderType.STOP_LIMIT:
            leg["limit_price"] = fmt_decimal(sl[0].price.as_decimal())
        body["stop_loss"] = leg
    return body, tp + sl, None


def leg_matches(leg: AlpacaOrder, order_type: OrderType) -> bool:
    """Whether Alpaca leg ``leg`` is the bracket child of ``order_type`` (limit = take-profit,
    stop / stop-limit = stop loss)."""
    leg_type = ORDER_TYPE_FROM_ALPACA.get(str(leg.kind))
    return leg_type == order_type or (order_type in _STOPS and leg_type in _STOPS)


__all__ = [
    "ACCOUNT_INFO_FIELDS", "NY", "OCC_RE", "OPEN_ALPACA_STATUSES", "ORDER_STATUS_FROM_ALPACA",
    "ORDER_TYPE_FROM_ALPACA", "ORDER_TYPE_TO_ALPACA", "TERMINAL_ALPACA_STATUSES", "TIF_FROM_ALPACA",
    "TIF_TO_ALPACA", "AlpacaAccount", "AlpacaClock", "AlpacaFillActivity", "AlpacaOrder",
    "AlpacaPosition", "AlpacaTradeUpdate", "dec", "decode", "decode_trade_update", "dt_to_ns",
    "enum_value", "fmt_decimal", "instrument_id", "is_contingent", "is_option_symbol", "leg_matches",
    "liquidity_side_for", "make_price", "make_qty", "option_expiration_ns", "order_body",
    "order_list_body", "order_request_error", "order_side_from_alpaca", "order_side_to_alpaca",
    "parse_account_balances", "parse_equity", "parse_option_contract", "parse_order_status_report",
    "position_side_from_qty", "replacement_client_order_id", "rfc3339", "split_client_order_id",
    "trade_id_from_activity", "ts_or", "usd",
]
