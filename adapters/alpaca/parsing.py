"""Conversions between Alpaca's wire/alpaca-py models and Nautilus objects.

Pure functions (no I/O). Alpaca sends decimals as strings; we go through ``Decimal`` so prices
and quantities are exact.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timezone
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from nautilus_trader.model.currencies import USD
from nautilus_trader.model.enums import (
    AssetClass,
    LiquiditySide,
    OptionKind,
    OrderSide,
    OrderStatus,
    OrderType,
    PositionSide,
    TimeInForce,
)
from nautilus_trader.model.identifiers import InstrumentId, Symbol
from nautilus_trader.model.instruments import Equity, OptionContract
from nautilus_trader.model.objects import Money, Price, Quantity

from strategies.fees import regulatory_fees  # the project's one fee schedule

from .common import ALPACA_VENUE

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


def enum_value(value: Any) -> str | None:
    """alpaca-py enums are ``str`` Enums; raw dicts carry plain strings."""
    if value is None:
        return None
    return str(getattr(value, "value", value)).lower()


# --------------------------------------------------------------------------------------------- #
# Instruments
# --------------------------------------------------------------------------------------------- #

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


# --------------------------------------------------------------------------------------------- #
# Orders
# --------------------------------------------------------------------------------------------- #

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


def fmt_decimal(value: Any) -> str:
    """A quantity / price as Alpaca wants it: a plain decimal string without exponent."""
    d = Decimal(str(value))
    s = format(d.normalize(), "f")
    return s


def regulatory_fee(side: OrderSide, qty: Decimal, price: Decimal, multiplier: Decimal = Decimal(1)) -> Decimal:
    """SEC fee + FINRA TAF of one fill in USD, rounded half-up to the cent (sells only; Alpaca
    charges no commission). The same schedule as ``strategies/fees.py`` and the fake server."""
    side_name = "sell" if side == OrderSide.SELL else "buy"
    return Decimal(str(regulatory_fees(side_name, qty, price, multiplier=multiplier))).quantize(Decimal("0.01"))


def usd(amount: Any) -> Money:
    return Money(Decimal(str(amount)), USD)


def position_side_from_qty(qty: Decimal) -> PositionSide:
    if qty > 0:
        return PositionSide.LONG
    if qty < 0:
        return PositionSide.SHORT
    return PositionSide.FLAT


def trade_id_from_activity(activity: dict) -> str:
    """FILL activity id ``YYYYMMDDhhmmssmmm::<execution id>`` → the execution id (the same value
    as ``execution_id`` on the trade_updates fill event)."""
    aid = str(activity.get("id") or "")
    return aid.split("::", 1)[1] if "::" in aid else aid


# Replacement orders get ``<original client_order_id>-R<n>`` as their client_order_id (Alpaca
# requires unique ids), so a restart can map every order of a replace chain back to the original.
_REPLACE_SUFFIX_RE = re.compile(r"^(?P<root>.+)-R(?P<n>\d+)$")


def replacement_client_order_id(root: str, n: int, max_len: int = 48) -> str | None:
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


__all__ = [
    "NY", "OCC_RE", "ORDER_STATUS_FROM_ALPACA", "ORDER_TYPE_FROM_ALPACA", "ORDER_TYPE_TO_ALPACA",
    "OPEN_ALPACA_STATUSES", "TERMINAL_ALPACA_STATUSES", "TIF_FROM_ALPACA", "TIF_TO_ALPACA",
    "dec", "dt_to_ns", "enum_value", "fmt_decimal", "instrument_id", "is_option_symbol",
    "liquidity_side_for", "option_expiration_ns", "order_side_from_alpaca", "order_side_to_alpaca",
    "parse_equity", "parse_option_contract", "position_side_from_qty", "regulatory_fee",
    "replacement_client_order_id", "split_client_order_id", "trade_id_from_activity", "usd",
]
