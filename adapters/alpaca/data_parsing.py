"""Alpaca market data → Nautilus ``Bar`` / ``QuoteTick`` / ``TradeTick`` (pure functions, no I/O).

Inputs are either Alpaca wire messages (websocket ``{"T": "b", "S": ..., "o": ...}`` or REST
``{"t": ..., "o": ...}`` dicts, short keys) or alpaca-py models (``Bar``/``Quote``/``Trade`` with
long attribute names). Timestamps may be a msgpack ``Timestamp`` (websocket, nanoseconds), an
RFC 3339 string with up to 9 fractional digits (REST / JSON websocket), a ``datetime`` or an int
of UNIX nanoseconds.

**Bars carry their close time.** Alpaca labels a bar with the *start* of its interval; every bar
produced here has ``ts_event = start + interval`` (a 1-minute bar labelled 10:00:00 becomes
``ts_event`` 10:01:00), Nautilus' and this project's convention.

**Validation.** A bar/quote/trade with a missing, NaN, infinite or negative price (or a negative
/ NaN size) raises ``AlpacaDataError`` naming the offending field; callers log it and skip the
record. Bars must also be consistent (``low <= open, close <= high``).
"""

from __future__ import annotations

import math
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import pandas as pd
from nautilus_trader.core.datetime import dt_to_unix_nanos, unix_nanos_to_dt
from nautilus_trader.model.data import Bar, BarSpecification, BarType, QuoteTick, TradeTick
from nautilus_trader.model.enums import AggregationSource, AggressorSide, BarAggregation, PriceType
from nautilus_trader.model.identifiers import InstrumentId, Symbol, TradeId, Venue
from nautilus_trader.model.objects import Price, Quantity

from .common import ALPACA_VENUE

NANOS_PER_SECOND = 1_000_000_000
ONE_MINUTE_NS = 60 * NANOS_PER_SECOND
MAX_PRECISION = 4  # Alpaca equity prices have at most 4 decimals (sub-dollar); float noise beyond is dropped

#: The only bar specification Alpaca streams (``bars`` channel: 1-minute trade bars).
STREAM_BAR_SPEC = BarSpecification(1, BarAggregation.MINUTE, PriceType.LAST)

# Bar aggregations Alpaca serves historically (timeframe units), with the largest allowed step.
_TIMEFRAME_LIMITS = {
    BarAggregation.MINUTE: 59,
    BarAggregation.HOUR: 23,
    BarAggregation.DAY: 1,
    BarAggregation.WEEK: 1,
}

# Long (alpaca-py model) attribute → short (wire) key.
_LONG_TO_SHORT = {
    "timestamp": "t", "open": "o", "high": "h", "low": "l", "close": "c", "volume": "v",
    "trade_count": "n", "vwap": "vw", "bid_price": "bp", "bid_size": "bs", "ask_price": "ap",
    "ask_size": "as", "price": "p", "size": "s", "id": "i", "exchange": "x", "symbol": "S",
}
_SHORT_TO_LONG = {v: k for k, v in _LONG_TO_SHORT.items()}


class AlpacaDataError(ValueError):
    """A market-data record that cannot be turned into Nautilus data (the message names the field)."""

    def __init__(self, message: str, field: str | None = None, reason: str = "invalid") -> None:
        super().__init__(message)
        self.field = field
        self.reason = reason  # "missing", "nan", "infinite", "negative", "zero", "inconsistent", "invalid"


# ------------------------------------------------------------------------------------ helpers --
def instrument_id_for(symbol: str, venue: Venue = ALPACA_VENUE) -> InstrumentId:
    return InstrumentId(Symbol(symbol), venue)


def alpaca_symbol(instrument_id: InstrumentId) -> str:
    return instrument_id.symbol.value


def field(record: Any, short: str, default: Any = None) -> Any:
    """Read a field by its wire key from a wire dict, a REST dict or an alpaca-py model."""
    if isinstance(record, dict):
        if short in record:
            return record[short]
        long = _SHORT_TO_LONG.get(short)
        return record.get(long, default) if long else default
    long = _SHORT_TO_LONG.get(short, short)
    return getattr(record, long, default)


def to_unix_nanos(value: Any) -> int:
    """msgpack Timestamp / RFC 3339 string / datetime / pandas Timestamp / int ns → UNIX ns."""
    if value is None:
        raise AlpacaDataError("field 'timestamp' missing", "timestamp", "missing")
    if hasattr(value, "to_unix_nano"):  # msgpack.Timestamp
        return int(value.to_unix_nano())
    if isinstance(value, bool):
        raise AlpacaDataError(f"field 'timestamp' is invalid ({value!r})", "timestamp")
    if isinstance(value, int):
        return value
    if isinstance(value, datetime):  # pandas Timestamps too; naive = UTC
        return int(dt_to_unix_nanos(value))
    if isinstance(value, str):
        try:
            ts = pd.Timestamp(value)  # handles 'Z' and 9 fractional digits
        except (ValueError, TypeError) as e:
            raise AlpacaDataError(f"field 'timestamp' is invalid ({value!r})", "timestamp") from e
        if ts is pd.NaT:
            raise AlpacaDataError(f"field 'timestamp' is invalid ({value!r})", "timestamp")
        return int(dt_to_unix_nanos(ts))  # naive = UTC
    raise AlpacaDataError(f"field 'timestamp' is invalid ({value!r})", "timestamp")


def _number(record: Any, short: str, name: str, *, positive: bool, required: bool = True) -> float | None:
    raw = field(record, short)
    if raw is None:
        if required:
            raise AlpacaDataError(f"field '{name}' missing", name, "missing")
        return None
    try:
        value = float(raw)
    except (TypeError, ValueError) as e:
        raise AlpacaDataError(f"field '{name}' is not a number ({raw!r})", name) from e
    if math.isnan(value):
        raise AlpacaDataError(f"field '{name}' is NaN", name, "nan")
    if math.isinf(value):
        raise AlpacaDataError(f"field '{name}' is infinite", name, "infinite")
    if value < 0:
        raise AlpacaDataError(f"field '{name}' is negative ({value})", name, "negative")
    if positive and value == 0:
        raise AlpacaDataError(f"field '{name}' is zero", name, "zero")
    return value


def decimals(value: float) -> int:
    """Decimal places needed to represent ``value`` as printed (capped at ``MAX_PRECISION``)."""
    try:
        exp = Decimal(repr(float(value))).normalize().as_tuple().exponent
    except (InvalidOperation, ValueError):
        return 0
    if not isinstance(exp, int):
        return 0
    return min(max(-exp, 0), MAX_PRECISION)


def precision_for(values: list[float], minimum: int) -> int:
    """The instrument's precision, raised when a value has more decimals (so nothing is rounded)."""
    return max([minimum] + [decimals(v) for v in values])


# ------------------------------------------------------------------------------------- bars ----
def bar_interval_ns(spec: BarSpecification) -> int:
    """Length of a time bar in nanoseconds (MINUTE / HOUR / DAY / WEEK)."""
    unit = {
        BarAggregation.SECOND: 1,
        BarAggregation.MINUTE: 60,
        BarAggregation.HOUR: 3_600,
        BarAggregation.DAY: 86_400,
        BarAggregation.WEEK: 7 * 86_400,
    }.get(spec.aggregation)
    if unit is None:
        raise AlpacaDataError(f"bar aggregation {BarAggregation(spec.aggregation).name} has no fixed length",
                              "aggregation")
    return spec.step * unit * NANOS_PER_SECOND


def check_requestable(bar_type: BarType) -> str | None:
    """None when Alpaca serves this bar type historically, else the reason it cannot."""
    spec = bar_type.spec
    if bar_type.aggregation_source != AggregationSource.EXTERNAL:
        return "only EXTERNAL bar types come from Alpaca (INTERNAL ones are aggregated by Nautilus)"
    if spec.price_type != PriceType.LAST:
        return "Alpaca bars are trade bars: price type must be LAST"
    limit = _TIMEFRAME_LIMITS.get(spec.aggregation)
    if limit is None:
        return (f"aggregation {BarAggregation(spec.aggregation).name} is not an Alpaca timeframe "
                "(MINUTE, HOUR, DAY, WEEK)")
    if not 1 <= spec.step <= limit:
        return f"Alpaca {BarAggregation(spec.aggregation).name} bars allow a step of 1..{limit}, got {spec.step}"
    return None


def check_streamable(bar_type: BarType) -> str | None:
    """None when this bar type can be streamed (1-MINUTE-LAST-EXTERNAL), else the reason."""
    if bar_type.aggregation_source != AggregationSource.EXTERNAL or bar_type.spec != STREAM_BAR_SPEC:
        return ("Alpaca streams 1-MINUTE-LAST bars only: subscribe to "
                f"{bar_type.instrument_id}-1-MINUTE-LAST-EXTERNAL and let Nautilus aggregate "
                "larger bars (e.g. 5-MINUTE-LAST-INTERNAL@1-MINUTE-EXTERNAL)")
    return None


def timeframe_for(spec: BarSpecification):
    """alpaca-py ``TimeFrame`` for a Nautilus bar specification."""
    import warnings

    with warnings.catch_warnings():  # alpaca.data's package import pulls in websockets.legacy
        warnings.simplefilter("ignore", DeprecationWarning)
        from alpaca.data.timeframe import TimeFrame, TimeFrameUnit

    unit = {
        BarAggregation.MINUTE: TimeFrameUnit.Minute,
        BarAggregation.HOUR: TimeFrameUnit.Hour,
        BarAggregation.DAY: TimeFrameUnit.Day,
        BarAggregation.WEEK: TimeFrameUnit.Week,
    }[spec.aggregation]
    return TimeFrame(spec.step, unit)


def parse_bar(
    record: Any,
    bar_type: BarType,
    *,
    interval_ns: int,
    ts_init: int | None = None,
    price_precision: int = 2,
    size_precision: int = 0,
) -> Bar:
    """One Alpaca bar (labelled by its start) → Nautilus ``Bar`` stamped at its close.

    ``ts_init`` None → the close time (historical data); live data passes the receive time.
    Raises ``AlpacaDataError`` (naming the field) for NaN/negative/zero prices, a negative or NaN
    volume, or an inconsistent high/low.
    """
    start_ns = to_unix_nanos(field(record, "t"))
    o = _number(record, "o", "open", positive=True)
    h = _number(record, "h", "high", positive=True)
    low = _number(record, "l", "low", positive=True)
    c = _number(record, "c", "close", positive=True)
    v = _number(record, "v", "volume", positive=False, required=False) or 0.0
    if h < max(o, c, low):
        raise AlpacaDataError(f"field 'high' ({h}) is below open/low/close ({o}/{low}/{c})", "high", "inconsistent")
    if low > min(o, c):
        raise AlpacaDataError(f"field 'low' ({low}) is above open/close ({o}/{c})", "low", "inconsistent")
    p = precision_for([o, h, low, c], price_precision)
    s = precision_for([v], size_precision)
    ts_event = start_ns + interval_ns
    return Bar(
        bar_type=bar_type,
        open=Price(o, p),
        high=Price(h, p),
        low=Price(low, p),
        close=Price(c, p),
        volume=Quantity(v, s),
        ts_event=ts_event,
        ts_init=ts_event if ts_init is None else ts_init,
    )


# ------------------------------------------------------------------------------- quotes/trades --
def parse_quote(
    record: Any,
    instrument_id: InstrumentId,
    *,
    ts_init: int | None = None,
    price_precision: int = 2,
    size_precision: int = 0,
) -> QuoteTick:
    """Alpaca quote (``bp bs ap as t``) → ``QuoteTick``. Prices must be > 0 (a one-sided quote,
    price 0, raises ``AlpacaDataError`` with field ``bid_price``/``ask_price``)."""
    ts_event = to_unix_nanos(field(record, "t"))
    bp = _number(record, "bp", "bid_price", positive=True)
    ap = _number(record, "ap", "ask_price", positive=True)
    bs = _number(record, "bs", "bid_size", positive=False, required=False) or 0.0
    as_ = _number(record, "as", "ask_size", positive=False, required=False) or 0.0
    p = precision_for([bp, ap], price_precision)
    s = precision_for([bs, as_], size_precision)
    return QuoteTick(
        instrument_id=instrument_id,
        bid_price=Price(bp, p),
        ask_price=Price(ap, p),
        bid_size=Quantity(bs, s),
        ask_size=Quantity(as_, s),
        ts_event=ts_event,
        ts_init=ts_event if ts_init is None else ts_init,
    )


def parse_trade(
    record: Any,
    instrument_id: InstrumentId,
    *,
    ts_init: int | None = None,
    price_precision: int = 2,
    size_precision: int = 0,
) -> TradeTick:
    """Alpaca trade (``p s i x t``) → ``TradeTick`` (aggressor unknown: ``NO_AGGRESSOR``)."""
    ts_event = to_unix_nanos(field(record, "t"))
    price = _number(record, "p", "price", positive=True)
    size = _number(record, "s", "size", positive=True)
    trade_id = field(record, "i")
    if trade_id is None or trade_id == "":
        trade_id = f"{ts_event}"
    trade_id = str(trade_id)[:36]
    return TradeTick(
        instrument_id=instrument_id,
        price=Price(price, precision_for([price], price_precision)),
        size=Quantity(size, precision_for([size], size_precision)),
        aggressor_side=AggressorSide.NO_AGGRESSOR,
        trade_id=TradeId(trade_id),
        ts_event=ts_event,
        ts_init=ts_event if ts_init is None else ts_init,
    )


def describe_time(value: Any) -> str:
    """A loggable ISO form of any timestamp ``to_unix_nanos`` accepts (the raw value if invalid)."""
    try:
        return pd.Timestamp(to_unix_nanos(value), tz="UTC").isoformat()
    except Exception:  # noqa: BLE001
        return repr(value)


def ns_to_datetime(ns: int) -> datetime:
    """UNIX ns -> aware UTC datetime (NautilusTrader's ``unix_nanos_to_dt``, to the microsecond)."""
    return unix_nanos_to_dt(ns).to_pydatetime(warn=False)


__all__ = [
    "AlpacaDataError",
    "ONE_MINUTE_NS",
    "STREAM_BAR_SPEC",
    "alpaca_symbol",
    "bar_interval_ns",
    "check_requestable",
    "check_streamable",
    "decimals",
    "describe_time",
    "field",
    "instrument_id_for",
    "ns_to_datetime",
    "parse_bar",
    "parse_quote",
    "parse_trade",
    "precision_for",
    "timeframe_for",
    "to_unix_nanos",
]
