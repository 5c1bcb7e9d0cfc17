"""SQLAlchemy 2.x models of the trade journal (PRD-135 "Data Models (ORM)" plus what it implies).

Tables
------
* ``trade_executions`` -- the seed's columns, one row per trade (status open -> closed/cancelled),
  plus ``run_id``.
* ``daily_pnl`` -- the seed's columns plus ``run_id``.
* ``signal_decisions`` -- every TradeSignal received and what became of it (routing, risk decision
  with reason code and the numbers it used, size, order ids or the rejection).
* ``executor_events`` -- kill switch trips and resets, order failures, other notable events.
* ``equity_snapshots`` -- the equity curve.
* ``executor_control`` -- operator state that must outlive a process (kill-switch latch,
  instrument mode), key -> JSON value.
* ``backtest_runs`` -- one row per backtest run (its ``run_id`` tags that run's rows elsewhere).
* ``executor_orders`` / ``executor_fills`` -- the order book: every order of a run as the engine
  last saw it, and every execution (migration 139; written by ``strategies.order_recorder``).

Conventions
-----------
* JSON columns (``metadata_json``, ``details_json``, ``order_ids``, ``signal_json``, ``data_json``,
  ``value_json``, ``symbols``, ``params_json``, ``summary_json``; migration 138) are ``JSONType``:
  SQLAlchemy ``JSON`` on SQLite, ``JSONB`` on PostgreSQL; Python None is SQL NULL. They take and
  give JSON values (dicts, lists, ...), made JSON-safe by ``json_value`` when set. The columns
  that always hold an object (``metadata_json``, ``details_json``, ``data_json``, ``params_json``,
  ``summary_json``) or a list (``order_ids``, ``symbols``) also take JSON text (parsed) and refuse
  anything else; ``signal_json`` and ``value_json`` take any JSON value (a str is a JSON string).
* Every ``DateTime`` column stores **naive UTC** (``UTCDateTime``): aware datetimes are converted
  to UTC on the way in, naive ones are taken to be UTC already, and values come back aware (UTC).
  The DDL type is a plain ``DateTime``, exactly as in the seed.
* ``run_id`` keeps backtest rows apart from live ones. Live rows have ``run_id`` ``"live"``
  (the writers always write that); rows with ``run_id`` NULL are also read as live.
* Deviation from the seed: ``daily_pnl.date`` is unique **per run** (unique index on
  ``(run_id, date)``), not globally, because several runs share a database. ``daily_pnl.run_id``
  is NOT NULL (default ``"live"``) so that uniqueness also holds for live rows (NULLs never
  collide in a unique index). The seed's plain index on ``date`` is kept (non-unique).
* Validation (``@validates``): NaN/inf prices or P&L, negative shares, unknown status/direction/
  trade type/instrument type, strings longer than their column and other bad values are refused
  with a ValueError naming the field and the value, when the attribute is set -- i.e. before the
  object ever reaches a session, so one bad record cannot spoil a transaction. ``check_required``
  reports NOT NULL columns left unset the same way.
"""

from __future__ import annotations

import dataclasses
import json
import math
from datetime import date, datetime, timezone
from enum import Enum
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Float,
    Index,
    Integer,
    String,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, validates
from sqlalchemy.types import TypeDecorator

LIVE_RUN_ID = "live"
TRADE_STATUSES: tuple[str, ...] = ("open", "closed", "cancelled")
DIRECTIONS: tuple[str, ...] = ("long", "short")
TRADE_TYPES: tuple[str, ...] = ("day", "swing", "scalp")
INSTRUMENT_TYPES: tuple[str, ...] = ("stock", "option", "leveraged_etf")


class UTCDateTime(TypeDecorator):
    """``DateTime`` holding naive UTC in the database and handing out aware UTC datetimes."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> Any:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise ValueError(f"expected a datetime, got {value!r}")
        if value.tzinfo is not None and value.tzinfo.utcoffset(value) is not None:
            value = value.astimezone(timezone.utc).replace(tzinfo=None)
        return value

    def process_result_value(self, value: Any, dialect: Any) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


# JSON on SQLite (stored as text), JSONB on PostgreSQL; None is stored as SQL NULL
JSONType = JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")


class Base(DeclarativeBase):
    pass


# ── validation helpers ────────────────────────────────────────────────────────────────────────


def _finite(name: str, value: Any, *, positive: bool = False, nonzero: bool = False) -> float | None:
    if value is None:
        return None
    if isinstance(value, (bool, str, bytes)):
        raise ValueError(f"{name} must be a number, got {value!r}")
    try:
        f = float(value)  # ints, floats, numpy scalars, Decimals
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if math.isnan(f) or math.isinf(f):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if positive and f <= 0.0:
        raise ValueError(f"{name} must be positive, got {value!r}")
    if nonzero and f == 0.0:
        raise ValueError(f"{name} must not be zero, got {value!r}")
    return f


def _int(name: str, value: Any, *, lo: int | None = None, hi: int | None = None) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if isinstance(value, int):
        i = value
    else:
        try:
            f = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be an integer, got {value!r}") from None
        if isinstance(value, (str, bytes)) or not f.is_integer():
            raise ValueError(f"{name} must be an integer, got {value!r}")
        i = int(f)
    if lo is not None and i < lo:
        raise ValueError(f"{name} must be >= {lo}, got {value!r}")
    if hi is not None and i > hi:
        raise ValueError(f"{name} must be <= {hi}, got {value!r}")
    return i


def _choice(name: str, value: Any, allowed: tuple[str, ...], *, nullable: bool = False) -> str | None:
    if value is None and nullable:
        return None
    if value not in allowed:
        raise ValueError(f"{name} must be one of {list(allowed)}, got {value!r}")
    return value


def _json_default(o: Any) -> Any:
    """What ``json_value`` makes of a value JSON has no type for."""
    if isinstance(o, (datetime, date)):
        return o.isoformat()
    if isinstance(o, Enum):
        return o.value
    if dataclasses.is_dataclass(o) and not isinstance(o, type):
        return dataclasses.asdict(o)
    if isinstance(o, (set, frozenset, tuple)):
        return list(o)
    if hasattr(o, "item"):  # numpy scalars
        try:
            return o.item()
        except Exception:  # noqa: BLE001
            pass
    if hasattr(o, "to_dict"):
        return o.to_dict()
    return str(o)


def _json_key(k: Any) -> str:
    if isinstance(k, Enum):
        k = k.value
    if isinstance(k, str):
        return str.__str__(k)
    if k is None or isinstance(k, (bool, int, float)):
        return json.dumps(k)  # what json.dumps makes of such a key: "null", "true", "1", "1.5"
    return str(k)


def json_value(o: Any) -> Any:
    """``o`` as plain JSON data (dict with str keys, list, str, int, float, bool, None):
    datetimes/dates -> ISO text, enums -> their value, dataclasses -> dicts, tuples and sets ->
    lists, numpy scalars -> numbers, objects with ``to_dict`` -> that; NaN and infinities -> None
    (JSON has no such numbers; PostgreSQL refuses them); anything else -> ``str(o)``."""
    t = type(o)  # fast path: the plain types almost every value has
    if t is str or t is int or t is bool or o is None:
        return o
    if t is float:
        return o if math.isfinite(o) else None
    if t is dict:
        return {k if type(k) is str else _json_key(k): json_value(v) for k, v in o.items()}
    if t is list:
        return [json_value(v) for v in o]
    if isinstance(o, Enum):
        return json_value(o.value)
    if isinstance(o, str):
        return o if type(o) is str else str.__str__(o)
    if isinstance(o, int) and not isinstance(o, bool):
        return int(o)
    if isinstance(o, float):
        return float(o) if math.isfinite(o) else None
    if isinstance(o, dict):
        return {_json_key(k): json_value(v) for k, v in o.items()}
    if isinstance(o, list):
        return [json_value(v) for v in o]
    return json_value(_json_default(o))


def _json_doc(name: str, value: Any, kind: type) -> Any:
    """A JSON document that must be a ``kind`` (dict or list); JSON text is parsed."""
    if value is None:
        return None
    if isinstance(value, (str, bytes, bytearray)):
        try:
            value = json.loads(value)
        except ValueError:
            raise ValueError(f"{name} must be JSON text or a {kind.__name__}, got {value!r}") from None
    elif kind is list and isinstance(value, (tuple, set, frozenset)):
        value = list(value)
    value = json_value(value)
    if value is not None and not isinstance(value, kind):
        raise ValueError(f"{name} must be a JSON {'object' if kind is dict else 'array'}, got {value!r}")
    return value


def _datetime(name: str, value: Any) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise ValueError(f"{name} must be a datetime, got {value!r}")
    return value


def _string(obj: Base, name: str, value: Any, *, truncate: bool = False) -> str | None:
    """Check type and the column's length; ``truncate`` cuts instead of refusing."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a string, got {value!r}")
    length = getattr(obj.__table__.c[name].type, "length", None)
    if length is not None and len(value) > length:
        if truncate:
            return value[: length - 1] + "~"
        raise ValueError(f"{name} must be at most {length} characters, got {value!r}")
    return value


def check_required(obj: Base) -> None:
    """ValueError naming the first NOT NULL column without a value and without a default."""
    for col in obj.__table__.columns:
        if col.nullable or (col.primary_key and isinstance(col.type, Integer)):
            continue
        if col.default is not None or col.server_default is not None:
            continue
        if getattr(obj, col.key) is None:
            raise ValueError(f"{col.key} is required ({obj.__tablename__}), got None")


# ── the seed's tables ─────────────────────────────────────────────────────────────────────────


class TradeExecutionRecord(Base):
    __tablename__ = "trade_executions"
    __table_args__ = (Index("ix_trade_executions_ticker_status", "ticker", "status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    signal_id: Mapped[str | None] = mapped_column(String(50), index=True)  # links to ema_signals
    ticker: Mapped[str] = mapped_column(String(32), nullable=False, index=True)  # 137: OCC symbols
    instrument_type: Mapped[str] = mapped_column(String(20), nullable=False, default="stock")
    original_ticker: Mapped[str | None] = mapped_column(String(32))  # signal ticker (QQQ for TQQQ)
    leverage: Mapped[float | None] = mapped_column(Float, default=1.0)
    direction: Mapped[str] = mapped_column(String(10), nullable=False)
    trade_type: Mapped[str] = mapped_column(String(10), nullable=False)  # day, swing, scalp
    entry_price: Mapped[float] = mapped_column(Float, nullable=False)
    exit_price: Mapped[float | None] = mapped_column(Float)
    shares: Mapped[int] = mapped_column(Integer, nullable=False)
    stop_loss: Mapped[float | None] = mapped_column(Float)
    target_price: Mapped[float | None] = mapped_column(Float)
    conviction: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20), nullable=False, default="open")
    exit_reason: Mapped[str | None] = mapped_column(String(50))
    pnl: Mapped[float | None] = mapped_column(Float)  # realized P&L
    pnl_pct: Mapped[float | None] = mapped_column(Float)  # realized P&L % (fraction)
    broker: Mapped[str | None] = mapped_column(String(20))
    order_id: Mapped[str | None] = mapped_column(String(100))
    entry_time: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    exit_time: Mapped[datetime | None] = mapped_column(UTCDateTime)
    metadata_json: Mapped[dict | None] = mapped_column(JSONType)
    created_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=func.now())
    # added (migration 136): keeps backtest rows apart from live ones
    run_id: Mapped[str | None] = mapped_column(String(64), index=True)

    @validates("entry_price", "stop_loss", "target_price")
    def _v_price(self, key: str, value: Any) -> float | None:
        return _finite(key, value, positive=True)

    @validates("exit_price")
    def _v_exit_price(self, key: str, value: Any) -> float | None:
        # an option that expires out of the money settles at 0.00: a real exit price
        f = _finite(key, value)
        if f is not None and f < 0.0:
            raise ValueError(f"{key} must be >= 0, got {value!r}")
        return f

    @validates("pnl", "pnl_pct")
    def _v_pnl(self, key: str, value: Any) -> float | None:
        return _finite(key, value)

    @validates("leverage")
    def _v_leverage(self, key: str, value: Any) -> float | None:
        return _finite(key, value, nonzero=True)  # negative for inverse ETFs

    @validates("shares")
    def _v_shares(self, key: str, value: Any) -> int | None:
        return _int(key, value, lo=0)

    @validates("conviction")
    def _v_conviction(self, key: str, value: Any) -> int | None:
        return _int(key, value, lo=0, hi=100)

    @validates("status")
    def _v_status(self, key: str, value: Any) -> str | None:
        return _choice(key, value, TRADE_STATUSES)

    @validates("direction")
    def _v_direction(self, key: str, value: Any) -> str | None:
        return _choice(key, value, DIRECTIONS)

    @validates("trade_type")
    def _v_trade_type(self, key: str, value: Any) -> str | None:
        return _choice(key, value, TRADE_TYPES)

    @validates("instrument_type")
    def _v_instrument_type(self, key: str, value: Any) -> str | None:
        return _choice(key, value, INSTRUMENT_TYPES)

    @validates("signal_id", "ticker", "original_ticker", "exit_reason", "broker", "order_id", "run_id")
    def _v_str(self, key: str, value: Any) -> str | None:
        return _string(self, key, value)

    @validates("metadata_json")
    def _v_json(self, key: str, value: Any) -> dict | None:
        return _json_doc(key, value, dict)

    @validates("entry_time", "exit_time", "created_at")
    def _v_time(self, key: str, value: Any) -> datetime | None:
        return _datetime(key, value)

    def __repr__(self) -> str:
        return (f"TradeExecutionRecord(id={self.id}, run_id={self.run_id!r}, ticker={self.ticker!r}, "
                f"status={self.status!r}, shares={self.shares}, pnl={self.pnl})")


class DailyPnLRecord(Base):
    __tablename__ = "daily_pnl"
    # Deviation from the seed (date unique): unique per run, see the module docstring.
    __table_args__ = (Index("uq_daily_pnl_run_id_date", "run_id", "date", unique=True),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    date: Mapped[date] = mapped_column(Date, nullable=False, index=True)
    starting_equity: Mapped[float] = mapped_column(Float, nullable=False)
    ending_equity: Mapped[float] = mapped_column(Float, nullable=False)
    realized_pnl: Mapped[float] = mapped_column(Float, nullable=False)
    unrealized_pnl: Mapped[float] = mapped_column(Float, nullable=False)
    total_trades: Mapped[int] = mapped_column(Integer, nullable=False)
    winning_trades: Mapped[int] = mapped_column(Integer, nullable=False)
    losing_trades: Mapped[int] = mapped_column(Integer, nullable=False)
    max_drawdown: Mapped[float | None] = mapped_column(Float)
    kill_switch_triggered: Mapped[bool | None] = mapped_column(Boolean, default=False)
    metadata_json: Mapped[dict | None] = mapped_column(JSONType)
    # added (migration 136)
    run_id: Mapped[str] = mapped_column(String(64), nullable=False, default=LIVE_RUN_ID,
                                        server_default=LIVE_RUN_ID)

    @validates("starting_equity", "ending_equity", "realized_pnl", "unrealized_pnl", "max_drawdown")
    def _v_money(self, key: str, value: Any) -> float | None:
        return _finite(key, value)

    @validates("total_trades", "winning_trades", "losing_trades")
    def _v_count(self, key: str, value: Any) -> int | None:
        return _int(key, value, lo=0)

    @validates("date")
    def _v_date(self, key: str, value: Any) -> date:
        if isinstance(value, datetime) or not isinstance(value, date):
            raise ValueError(f"date must be a datetime.date, got {value!r}")
        return value

    @validates("run_id")
    def _v_str(self, key: str, value: Any) -> str | None:
        return _string(self, key, value)

    @validates("metadata_json")
    def _v_json(self, key: str, value: Any) -> dict | None:
        return _json_doc(key, value, dict)


# ── added tables (migration 136) ──────────────────────────────────────────────────────────────


class SignalDecisionRecord(Base):
    """One TradeSignal received and the decision taken on it.

    String fields are truncated (marked with a trailing ``~``) rather than refused: the decision
    log must record even malformed input (e.g. the ``invalid_signal`` rejections).
    """

    __tablename__ = "signal_decisions"
    __table_args__ = (Index("ix_signal_decisions_run_id_ts", "run_id", "ts"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[str | None] = mapped_column(String(64))
    ts: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    signal_id: Mapped[str | None] = mapped_column(String(100), index=True)
    ticker: Mapped[str | None] = mapped_column(String(32))
    timeframe: Mapped[str | None] = mapped_column(String(10))
    signal_type: Mapped[str | None] = mapped_column(String(40))
    direction: Mapped[str | None] = mapped_column(String(10))
    conviction: Mapped[int | None] = mapped_column(Integer)
    approved: Mapped[bool] = mapped_column(Boolean, nullable=False)
    reason_code: Mapped[str | None] = mapped_column(String(40))
    reason: Mapped[str | None] = mapped_column(Text)
    instrument: Mapped[str | None] = mapped_column(String(32))
    instrument_type: Mapped[str | None] = mapped_column(String(20))
    shares: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    details_json: Mapped[dict | None] = mapped_column(JSONType)
    order_ids: Mapped[list | None] = mapped_column(JSONType)  # list of order ids
    signal_json: Mapped[Any] = mapped_column(JSONType, nullable=True)  # the TradeSignal (to_dict), if given

    @validates("signal_id", "ticker", "timeframe", "signal_type", "direction", "reason_code",
               "instrument", "instrument_type")
    def _v_str(self, key: str, value: Any) -> str | None:
        if value is not None and not isinstance(value, str):
            value = str(value)
        return _string(self, key, value, truncate=True)

    @validates("run_id")
    def _v_run_id(self, key: str, value: Any) -> str | None:
        return _string(self, key, value)

    @validates("conviction")
    def _v_conviction(self, key: str, value: Any) -> int | None:
        try:
            return _int(key, value)
        except ValueError:
            return None  # malformed conviction of an invalid signal: the reason says why

    @validates("shares")
    def _v_shares(self, key: str, value: Any) -> int | None:
        return _int(key, value, lo=0)

    @validates("details_json")
    def _v_details(self, key: str, value: Any) -> dict | None:
        return _json_doc(key, value, dict)

    @validates("order_ids")
    def _v_order_ids(self, key: str, value: Any) -> list | None:
        return _json_doc(key, value, list)

    @validates("signal_json")
    def _v_signal(self, key: str, value: Any) -> Any:
        return json_value(value)

    @validates("approved")
    def _v_approved(self, key: str, value: Any) -> bool:
        if not isinstance(value, bool):
            raise ValueError(f"approved must be a bool, got {value!r}")
        return value

    @validates("ts")
    def _v_time(self, key: str, value: Any) -> datetime | None:
        return _datetime(key, value)


class ExecutorEventRecord(Base):
    """Kill switch trips/resets, order failures and other events worth keeping."""

    __tablename__ = "executor_events"
    __table_args__ = (Index("ix_executor_events_run_id_ts", "run_id", "ts"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[str | None] = mapped_column(String(64))
    ts: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    kind: Mapped[str] = mapped_column(String(40), nullable=False, index=True)
    message: Mapped[str | None] = mapped_column(Text)
    data_json: Mapped[dict | None] = mapped_column(JSONType)

    @validates("run_id", "kind")
    def _v_str(self, key: str, value: Any) -> str | None:
        return _string(self, key, value)

    @validates("data_json")
    def _v_json(self, key: str, value: Any) -> dict | None:
        return _json_doc(key, value, dict)

    @validates("ts")
    def _v_time(self, key: str, value: Any) -> datetime | None:
        return _datetime(key, value)


class EquitySnapshotRecord(Base):
    __tablename__ = "equity_snapshots"
    __table_args__ = (Index("ix_equity_snapshots_run_id_ts", "run_id", "ts"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[str | None] = mapped_column(String(64))
    ts: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    equity: Mapped[float] = mapped_column(Float, nullable=False)

    @validates("equity")
    def _v_equity(self, key: str, value: Any) -> float | None:
        return _finite(key, value)

    @validates("run_id")
    def _v_str(self, key: str, value: Any) -> str | None:
        return _string(self, key, value)

    @validates("ts")
    def _v_time(self, key: str, value: Any) -> datetime | None:
        return _datetime(key, value)


class ExecutorControlRecord(Base):
    """Operator state that must outlive a process: key -> JSON value.

    Keys used: ``kill_switch`` ({"active", "reason", "activated_at"}), ``instrument_mode``
    ("options" | "leveraged_etf" | "both" | "stock").
    """

    __tablename__ = "executor_control"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value_json: Mapped[Any] = mapped_column(JSONType, nullable=False)  # any JSON value but null
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    updated_by: Mapped[str | None] = mapped_column(String(64))

    @validates("key", "updated_by")
    def _v_str(self, key: str, value: Any) -> str | None:
        return _string(self, key, value)

    @validates("value_json")
    def _v_value(self, key: str, value: Any) -> Any:
        return json_value(value)

    @validates("updated_at")
    def _v_time(self, key: str, value: Any) -> datetime | None:
        return _datetime(key, value)


class BacktestRunRecord(Base):
    __tablename__ = "backtest_runs"

    run_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    mode: Mapped[str | None] = mapped_column(String(20))
    symbols: Mapped[list | None] = mapped_column(JSONType)  # list of symbols
    params_json: Mapped[dict | None] = mapped_column(JSONType)
    summary_json: Mapped[dict | None] = mapped_column(JSONType)

    @validates("run_id", "mode")
    def _v_str(self, key: str, value: Any) -> str | None:
        return _string(self, key, value)

    @validates("symbols")
    def _v_symbols(self, key: str, value: Any) -> list | None:
        return _json_doc(key, value, list)

    @validates("params_json", "summary_json")
    def _v_json(self, key: str, value: Any) -> dict | None:
        return _json_doc(key, value, dict)

    @validates("started_at")
    def _v_time(self, key: str, value: Any) -> datetime | None:
        return _datetime(key, value)


# ── order book (migration 139) ────────────────────────────────────────────────────────────────

ORDER_STATUSES: tuple[str, ...] = (
    "INITIALIZED", "DENIED", "EMULATED", "RELEASED", "SUBMITTED", "ACCEPTED", "REJECTED", "CANCELED",
    "EXPIRED", "TRIGGERED", "PENDING_UPDATE", "PENDING_CANCEL", "PARTIALLY_FILLED", "FILLED")
# no further event can change these (NautilusTrader's closed order states)
TERMINAL_ORDER_STATUSES: frozenset[str] = frozenset({"DENIED", "REJECTED", "CANCELED", "EXPIRED", "FILLED"})


class OrderRecord(Base):
    """One order of a run as NautilusTrader's engine last saw it (upserted on every order event by
    ``strategies.order_recorder.OrderRecorder``): the order book's working orders and history."""

    __tablename__ = "executor_orders"
    __table_args__ = (Index("uq_executor_orders_run_id_client_order_id", "run_id", "client_order_id", unique=True),
                      Index("ix_executor_orders_run_id_status", "run_id", "status"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[str] = mapped_column(String(64), nullable=False)
    client_order_id: Mapped[str] = mapped_column(String(64), nullable=False)
    venue_order_id: Mapped[str | None] = mapped_column(String(64))
    strategy_id: Mapped[str | None] = mapped_column(String(64))
    instrument_id: Mapped[str] = mapped_column(String(64), nullable=False)
    ticker: Mapped[str] = mapped_column(String(32), nullable=False)
    side: Mapped[str] = mapped_column(String(10), nullable=False)  # BUY / SELL
    order_type: Mapped[str] = mapped_column(String(30), nullable=False)  # MARKET, LIMIT, STOP_MARKET, ...
    time_in_force: Mapped[str | None] = mapped_column(String(10))
    quantity: Mapped[float] = mapped_column(Float, nullable=False)
    filled_qty: Mapped[float] = mapped_column(Float, nullable=False, default=0.0)
    price: Mapped[float | None] = mapped_column(Float)  # limit price
    trigger_price: Mapped[float | None] = mapped_column(Float)  # stop trigger
    avg_px: Mapped[float | None] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(20), nullable=False)
    reduce_only: Mapped[bool | None] = mapped_column(Boolean)
    signal_id: Mapped[str | None] = mapped_column(String(100), index=True)  # from the order's tags
    role: Mapped[str | None] = mapped_column(String(40))  # entry:market, stop, exit, add, ... (tags)
    tags: Mapped[list | None] = mapped_column(JSONType)
    last_event: Mapped[str | None] = mapped_column(String(40))
    reason: Mapped[str | None] = mapped_column(Text)  # denial / rejection / cancel-reject reason
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)  # engine time (ts_init)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)  # last event's ts_event

    @validates("quantity", "filled_qty")
    def _v_qty(self, key: str, value: Any) -> float | None:
        f = _finite(key, value)
        if f is not None and f < 0:
            raise ValueError(f"{key} must be >= 0, got {value!r}")
        return f

    @validates("price", "trigger_price", "avg_px")
    def _v_price(self, key: str, value: Any) -> float | None:
        return _finite(key, value)

    @validates("status")
    def _v_status(self, key: str, value: Any) -> str | None:
        return _choice(key, value, ORDER_STATUSES)

    @validates("run_id", "client_order_id", "venue_order_id", "strategy_id", "instrument_id", "ticker", "side",
               "order_type", "time_in_force", "last_event")
    def _v_str(self, key: str, value: Any) -> str | None:
        return _string(self, key, value)

    @validates("signal_id", "role")
    def _v_str_trunc(self, key: str, value: Any) -> str | None:
        return _string(self, key, value, truncate=True)

    @validates("tags")
    def _v_tags(self, key: str, value: Any) -> list | None:
        return _json_doc(key, value, list)

    @validates("created_at", "updated_at")
    def _v_time(self, key: str, value: Any) -> datetime | None:
        return _datetime(key, value)


class FillRecord(Base):
    """One execution (NautilusTrader ``OrderFilled``) of a run's order."""

    __tablename__ = "executor_fills"
    __table_args__ = (Index("uq_executor_fills_run_id_order_trade", "run_id", "client_order_id", "trade_id",
                            unique=True),
                      Index("ix_executor_fills_run_id_ts", "run_id", "ts"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[str] = mapped_column(String(64), nullable=False)
    ts: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)  # the fill's ts_event
    client_order_id: Mapped[str] = mapped_column(String(64), nullable=False)
    venue_order_id: Mapped[str | None] = mapped_column(String(64))
    trade_id: Mapped[str] = mapped_column(String(64), nullable=False)
    instrument_id: Mapped[str] = mapped_column(String(64), nullable=False)
    ticker: Mapped[str] = mapped_column(String(32), nullable=False)
    side: Mapped[str] = mapped_column(String(10), nullable=False)
    quantity: Mapped[float] = mapped_column(Float, nullable=False)
    price: Mapped[float] = mapped_column(Float, nullable=False)
    commission: Mapped[float | None] = mapped_column(Float)
    liquidity_side: Mapped[str | None] = mapped_column(String(10))
    signal_id: Mapped[str | None] = mapped_column(String(100))
    role: Mapped[str | None] = mapped_column(String(40))

    @validates("quantity")
    def _v_qty(self, key: str, value: Any) -> float | None:
        return _finite(key, value, positive=True)

    @validates("price")
    def _v_price(self, key: str, value: Any) -> float | None:
        f = _finite(key, value)
        if f is not None and f < 0:
            raise ValueError(f"{key} must be >= 0, got {value!r}")
        return f

    @validates("commission")
    def _v_commission(self, key: str, value: Any) -> float | None:
        return _finite(key, value)

    @validates("run_id", "client_order_id", "venue_order_id", "trade_id", "instrument_id", "ticker", "side",
               "liquidity_side")
    def _v_str(self, key: str, value: Any) -> str | None:
        return _string(self, key, value)

    @validates("signal_id", "role")
    def _v_str_trunc(self, key: str, value: Any) -> str | None:
        return _string(self, key, value, truncate=True)

    @validates("ts")
    def _v_time(self, key: str, value: Any) -> datetime | None:
        return _datetime(key, value)


__all__ = [
    "Base",
    "BacktestRunRecord",
    "DailyPnLRecord",
    "EquitySnapshotRecord",
    "ExecutorControlRecord",
    "ExecutorEventRecord",
    "FillRecord",
    "INSTRUMENT_TYPES",
    "JSONType",
    "LIVE_RUN_ID",
    "ORDER_STATUSES",
    "OrderRecord",
    "SignalDecisionRecord",
    "TERMINAL_ORDER_STATUSES",
    "TRADE_STATUSES",
    "TradeExecutionRecord",
    "UTCDateTime",
    "check_required",
    "json_value",
]
