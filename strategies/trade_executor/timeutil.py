"""Small shared validators and converters: aware datetimes, finite numbers, "HH:MM", epoch ns.

Pure (no NautilusTrader, no pandas, no wall clock): the core and the backtest tools use these so
that every module refuses the same bad inputs with the same kind of message. The Nautilus shell
(strategy, actor, live node, adapters) uses NautilusTrader's own ``unix_nanos_to_dt`` /
``dt_to_unix_nanos`` instead.

Every validator names the offending field. By default it raises :class:`FieldError` (a
``ValueError``); ``error=`` takes another exception class with the same ``(field, value, detail)``
signature, e.g. ``OptionsInputError`` or ``LETFInputError``, which subclass ``FieldError``.
"""

from __future__ import annotations

import math
import re
from datetime import datetime, time, timedelta, timezone
from typing import Any, Callable

UTC = timezone.utc
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
NS_PER_SECOND = 1_000_000_000
NS_PER_MINUTE = 60 * NS_PER_SECOND

ErrorFactory = Callable[[str, Any, str], Exception]


class FieldError(ValueError):
    """An invalid value: ``field`` names it, ``value`` holds it, ``detail`` says what is wrong.

    The message reads ``"<field>: <detail> (got <value!r>)"``.
    """

    def __init__(self, field: str, value: Any, detail: str) -> None:
        self.field = field
        self.value = value
        self.detail = detail
        super().__init__(f"{field}: {detail} (got {value!r})")


# -- datetimes ------------------------------------------------------------------------------------


def is_aware(ts: Any) -> bool:
    """True for a ``datetime`` that carries a UTC offset."""
    return isinstance(ts, datetime) and ts.tzinfo is not None and ts.tzinfo.utcoffset(ts) is not None


def aware(ts: Any, field: str = "ts", *, error: ErrorFactory = FieldError) -> datetime:
    """``ts`` unchanged when it is a timezone-aware ``datetime``; otherwise ``error`` naming
    ``field`` (naive datetimes are refused: a naive time is not an instant)."""
    if not isinstance(ts, datetime):
        raise error(field, ts, "must be a timezone-aware datetime")
    if ts.tzinfo is None or ts.tzinfo.utcoffset(ts) is None:
        raise error(field, ts, "must be timezone-aware, not naive")
    return ts


def aware_utc(ts: Any, field: str = "ts", *, error: ErrorFactory = FieldError) -> datetime:
    """:func:`aware`, converted to UTC."""
    return aware(ts, field, error=error).astimezone(UTC)


def stored_utc(value: datetime) -> datetime:
    """A time read back from storage: naive values are UTC (SQLite keeps no offset), aware ones
    are returned as they are."""
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        return value.replace(tzinfo=UTC)
    return value


def ns_to_datetime(ns: int) -> datetime:
    """UNIX nanoseconds -> aware UTC ``datetime`` (exact integer arithmetic; nanoseconds below
    the microsecond are truncated toward the past)."""
    return EPOCH + timedelta(microseconds=int(ns) // 1000)


def datetime_to_ns(dt: datetime, field: str = "ts") -> int:
    """Aware ``datetime`` -> UNIX nanoseconds, exactly (a ``pandas.Timestamp``'s nanoseconds are
    kept). Naive datetimes raise :class:`FieldError`."""
    d = aware(dt, field) - EPOCH
    ns = (d.days * 86_400 + d.seconds) * NS_PER_SECOND + d.microseconds * 1000
    return ns + getattr(dt, "nanosecond", 0)


# -- numbers --------------------------------------------------------------------------------------


def finite(
    x: Any,
    field: str,
    *,
    positive: bool = False,
    nonneg: bool = False,
    nonzero: bool = False,
    error: ErrorFactory = FieldError,
) -> float:
    """``x`` as a finite float (ints, floats, numpy scalars, Decimals; not bools or strings);
    ``positive`` requires > 0, ``nonneg`` >= 0, ``nonzero`` != 0. Otherwise ``error`` naming
    ``field``."""
    if isinstance(x, (bool, str, bytes)):
        raise error(field, x, "must be a number")
    try:
        v = float(x)
    except (TypeError, ValueError):
        raise error(field, x, "must be a number") from None
    if not math.isfinite(v):
        raise error(field, x, "must be finite")
    if positive and v <= 0:
        raise error(field, x, "must be > 0")
    if nonneg and v < 0:
        raise error(field, x, "must be >= 0")
    if nonzero and v == 0:
        raise error(field, x, "must not be 0")
    return v


# -- "HH:MM" --------------------------------------------------------------------------------------

_HHMM = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*$")


def parse_hhmm(s: Any, field: str, *, error: ErrorFactory = FieldError) -> time:
    """``"HH:MM"`` (00:00-23:59) -> ``datetime.time``; a ``time`` is returned as is. Anything
    else raises ``error`` naming ``field``."""
    if isinstance(s, time):
        return s
    m = _HHMM.match(s) if isinstance(s, str) else None
    if m is not None:
        hh, mm = int(m.group(1)), int(m.group(2))
        if hh < 24 and mm < 60:
            return time(hh, mm)
    raise error(field, s, "must be 'HH:MM' (00:00-23:59)")


__all__ = [
    "EPOCH",
    "NS_PER_MINUTE",
    "NS_PER_SECOND",
    "FieldError",
    "aware",
    "aware_utc",
    "datetime_to_ns",
    "finite",
    "is_aware",
    "ns_to_datetime",
    "parse_hhmm",
    "stored_utc",
]
