"""Journal records: the value objects read back, JSON values, and the mappers from what the
executor hands over (ExecutionSink rows, DecisionRecords, fills) to validated ORM records.

Every mapper runs in the caller's thread and raises ValueError on bad input (naming the field and
the value), so a bad record never reaches the database or spoils a batch.

JSON columns (``metadata_json``, ``details_json``, ``data_json``, ``params_json``, ``summary_json``,
``order_ids``, ``symbols``, ``signal_json``, ``value_json``) hold JSON values, not text: the mappers
and the models take dicts/lists (``json_value`` makes them JSON-safe: datetimes -> ISO strings,
enums -> values, dataclasses -> dicts, tuples/sets -> lists, numpy scalars -> numbers, NaN/inf ->
null) and reads hand dicts back. A trade row's ``metadata_json`` may still come as JSON text (the
strategy's rows carry ``json.dumps(meta)``): ``trade_record_from_row`` parses it.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from strategies.execution_log import TRADE_COLUMNS, DecisionRecord
from strategies.trade_executor.timeutil import stored_utc
from strategies.journal.models import (
    LIVE_RUN_ID,
    EquitySnapshotRecord,
    ExecutorEventRecord,
    SignalDecisionRecord,
    TradeExecutionRecord,
    _finite,
    _int,
    check_required,
    json_value,
)

NY = ZoneInfo("America/New_York")
KILL_SWITCH_EVENT = "kill_switch"


# ── value objects ─────────────────────────────────────────────────────────────────────────────


@dataclass
class OrderResult:
    """The seed's OrderResult (order_router.py)."""

    order_id: str
    status: str  # "filled", "partial", "pending", "rejected", "cancelled"
    filled_qty: int
    filled_price: float
    broker: str
    timestamp: datetime


@dataclass(frozen=True)
class TradeRecord:
    """One trade_executions row as read back (times aware UTC, ``metadata_json`` a dict or None).

    Satisfies ``strategies.execution_log.OpenTrade``: what ``get_open_trades`` hands the executor.
    """

    id: int
    run_id: str | None
    signal_id: str | None
    ticker: str
    instrument_type: str
    original_ticker: str | None
    leverage: float | None
    direction: str
    trade_type: str
    entry_price: float
    exit_price: float | None
    shares: int
    stop_loss: float | None
    target_price: float | None
    conviction: int | None
    status: str
    exit_reason: str | None
    pnl: float | None
    pnl_pct: float | None
    broker: str | None
    order_id: str | None
    entry_time: datetime
    exit_time: datetime | None
    metadata_json: dict[str, Any] | None
    created_at: datetime | None

    @property
    def metadata(self) -> dict[str, Any]:
        """``metadata_json`` as a (fresh) dict; {} when there is none."""
        return dict(self.metadata_json) if isinstance(self.metadata_json, dict) else {}

    def to_row(self) -> dict[str, Any]:
        """The ExecutionSink row (TRADE_COLUMNS) of this trade (``metadata_json`` a dict)."""
        return {c: getattr(self, c) for c in TRADE_COLUMNS}

    @classmethod
    def from_orm(cls, r: TradeExecutionRecord) -> TradeRecord:
        return cls(**{f.name: getattr(r, f.name) for f in dataclasses.fields(cls)})


@dataclass(frozen=True)
class DailySummary:
    """One New York trading date, computed from the recorded rows (``strategies.stats``).

    * realized_pnl, total/winning/losing_trades: closed trades whose exit_time falls on the date
      (winner pnl > 0, loser pnl < 0, a flat trade is neither); cancelled rows are ignored.
      win_rate, profit_factor, expectancy: ``strategies.stats`` of those trades' P&L (None when
      undefined: no trades / no losing trade).
    * unrealized_pnl: rows still open that were entered before the end of the date, marked at
      their last known price (``mark_price`` / the entry's position price); 0 for those without.
      ``stats.round_trip_pnl(entry, last price, shares, direction, multiplier)``.
    * starting/ending_equity: first and last equity snapshot of the date (None without snapshots).
    * max_drawdown: largest peak-to-trough fall of that day's equity snapshots, in currency
      (a positive number; 0 when equity never fell below an earlier high of the day);
      max_drawdown_pct: the largest fall relative to the peak it fell from (``stats.max_drawdown``).
    * kill_switch_triggered: a ``kill_switch`` event was recorded on the date.
    """

    date: date
    starting_equity: float | None
    ending_equity: float | None
    realized_pnl: float
    unrealized_pnl: float
    total_trades: int
    winning_trades: int
    losing_trades: int
    max_drawdown: float
    kill_switch_triggered: bool
    max_drawdown_pct: float = 0.0
    equity_snapshots: int = 0
    win_rate: float | None = None
    profit_factor: float | None = None
    expectancy: float | None = None


def new_run_id(prefix: str = "bt") -> str:
    """A fresh backtest run id, e.g. ``bt-3f2a9c41d0e7``."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def ny_day_bounds(day: date) -> tuple[datetime, datetime]:
    """[start, end) of a New York calendar date, in UTC."""
    start = datetime.combine(day, time(0), NY).astimezone(timezone.utc)
    end = datetime.combine(day + timedelta(days=1), time(0), NY).astimezone(timezone.utc)
    return start, end


# ── JSON ──────────────────────────────────────────────────────────────────────────────────────


def dumps(obj: Any) -> str | None:
    """Compact JSON text of ``obj`` (None stays None; strings are taken to be JSON already)."""
    if obj is None:
        return None
    if isinstance(obj, str):
        return obj
    return json.dumps(json_value(obj), separators=(",", ":"), allow_nan=False)


def parse_json_text(name: str, value: Any) -> Any:
    """``value`` with JSON text parsed (a str is taken to be JSON text); other values unchanged."""
    if isinstance(value, (str, bytes, bytearray)):
        try:
            return json.loads(value)
        except ValueError:
            raise ValueError(f"{name} must be JSON text or a JSON value, got {value!r}") from None
    return value


def _live_or(run_id: str | None) -> str:
    return LIVE_RUN_ID if run_id is None else str(run_id)


def _aware(name: str, value: Any) -> datetime:
    if not isinstance(value, datetime):
        raise ValueError(f"{name} must be a datetime, got {value!r}")
    return stored_utc(value)


# ── record builders (caller's thread; raise ValueError on bad input) ──────────────────────────


def trade_record_from_row(row: dict[str, Any], run_id: str | None = None) -> TradeExecutionRecord:
    """A validated TradeExecutionRecord from an ExecutionSink trade row (TRADE_COLUMNS keys);
    ``metadata_json`` a dict, None, or JSON text of an object."""
    if not isinstance(row, dict):
        raise ValueError(f"trade row must be a dict, got {type(row).__name__}")
    missing = [c for c in TRADE_COLUMNS if c not in row]
    if missing:
        raise ValueError(f"trade row lacks columns {missing}")
    unknown = [k for k in row if k not in TRADE_COLUMNS and k != "run_id"]
    if unknown:
        raise ValueError(f"trade row has unknown columns {unknown}")
    values = {k: v for k, v in row.items() if k != "run_id"}
    values["metadata_json"] = parse_json_text("metadata_json", values.get("metadata_json"))
    if values.get("instrument_type") is None:
        values["instrument_type"] = "stock"
    if values.get("status") is None:
        values["status"] = "open"
    rec = TradeExecutionRecord(**values, run_id=_live_or(row.get("run_id", run_id)))
    check_required(rec)
    return rec


def decision_record(decision: DecisionRecord, run_id: str | None = None,
                    signal: Any = None) -> SignalDecisionRecord:
    if not isinstance(decision, DecisionRecord):
        raise ValueError(f"decision must be a DecisionRecord, got {type(decision).__name__}")
    sig = signal if signal is not None else getattr(decision, "signal", None)
    rec = SignalDecisionRecord(
        run_id=_live_or(run_id),
        ts=_aware("ts", decision.ts),
        signal_id=decision.signal_id,
        ticker=decision.ticker,
        timeframe=decision.timeframe,
        signal_type=decision.signal_type,
        direction=decision.direction,
        conviction=decision.conviction,
        approved=bool(decision.approved),
        reason_code=decision.reason_code,
        reason=decision.reason,
        instrument=decision.instrument,
        instrument_type=decision.instrument_type,
        shares=decision.shares or 0,
        details_json=decision.details or {},
        order_ids=list(decision.order_ids or []),
        signal_json=sig,
    )
    check_required(rec)
    return rec


def equity_record(ts: datetime, equity: float, run_id: str | None = None) -> EquitySnapshotRecord:
    rec = EquitySnapshotRecord(run_id=_live_or(run_id), ts=_aware("ts", ts), equity=equity)
    check_required(rec)
    return rec


def event_record(ts: datetime, kind: str, message: str, data: dict | None = None,
                 run_id: str | None = None) -> ExecutorEventRecord:
    rec = ExecutorEventRecord(run_id=_live_or(run_id), ts=_aware("ts", ts), kind=kind,
                              message=None if message is None else str(message), data_json=data or {})
    check_required(rec)
    return rec


def check_fill(order_result: Any) -> tuple[str | None, int, float, datetime, str | None]:
    """(order id, filled qty, filled price, time, broker) of an OrderResult-like fill."""
    for attr in ("order_id", "filled_price", "filled_qty", "timestamp", "broker"):
        if not hasattr(order_result, attr):
            raise ValueError(f"order_result lacks {attr!r}")
    qty = _int("filled_qty", order_result.filled_qty, lo=0)
    if qty is None:
        raise ValueError("filled_qty must be a non-negative integer, got None")
    price = _finite("filled_price", order_result.filled_price)
    ts = _aware("timestamp", order_result.timestamp)
    oid = None if order_result.order_id is None else str(order_result.order_id)
    broker = None if order_result.broker is None else str(order_result.broker)
    return oid, qty, price, ts, broker


def exit_fill(order_result: Any, exit_reason: str) -> tuple[str | None, int, float, datetime, str | None]:
    """``check_fill`` of an exit, which must have filled something at a positive price."""
    fill = check_fill(order_result)
    if fill[1] <= 0:
        raise ValueError(f"filled_qty must be > 0 for an exit, got {order_result.filled_qty!r}")
    if fill[2] is None or fill[2] <= 0:
        raise ValueError(f"filled_price must be a positive finite price, got {order_result.filled_price!r}")
    if exit_reason is not None and (not isinstance(exit_reason, str) or len(exit_reason) > 50):
        raise ValueError(f"exit_reason must be a string of at most 50 characters, got {exit_reason!r}")
    return fill


def entry_record(signal: Any, order_result: Any, position: Any,
                 run_id: str | None = None) -> TradeExecutionRecord:
    """An ``open`` trade row for an entry fill (``cancelled`` with 0 shares if nothing filled)."""
    oid, qty, price, ts, broker = check_fill(order_result)
    status = str(getattr(order_result, "status", "filled") or "filled")
    filled = qty > 0 and status not in ("rejected", "cancelled")
    if filled and (price is None or price <= 0):
        raise ValueError(f"filled_price must be a positive finite price, got {order_result.filled_price!r}")
    meta = {
        "signal": signal.to_dict() if hasattr(signal, "to_dict") else signal,
        "order_status": status,
        "multiplier": getattr(position, "multiplier", 1.0),
        "underlying": getattr(position, "underlying", None),
        "sector": getattr(position, "sector", None),
        "timeframe": getattr(signal, "timeframe", None),
        "signal_type": getattr(getattr(signal, "signal_type", None), "value", getattr(signal, "signal_type", None)),
    }
    if filled and getattr(position, "current_price", None) is not None:
        meta["last_price"] = position.current_price
        meta["last_price_time"] = ts.isoformat()
    rec = TradeExecutionRecord(
        run_id=_live_or(run_id),
        signal_id=getattr(position, "signal_id", None) or getattr(signal, "signal_id", None),
        ticker=position.ticker,
        instrument_type=getattr(position, "instrument_type", "stock") or "stock",
        original_ticker=getattr(signal, "ticker", None),
        leverage=getattr(position, "leverage", 1.0),
        direction=position.direction,
        trade_type=position.trade_type,
        entry_price=price if filled else position.entry_price,
        shares=qty if filled else 0,
        stop_loss=position.stop_loss,
        target_price=position.target_price,
        conviction=getattr(signal, "conviction", None),
        status="open" if filled else "cancelled",
        broker=broker,
        order_id=oid,
        entry_time=ts,
        metadata_json=meta,
    )
    check_required(rec)
    return rec


__all__ = [
    "KILL_SWITCH_EVENT",
    "NY",
    "DailySummary",
    "OrderResult",
    "TradeRecord",
    "check_fill",
    "decision_record",
    "dumps",
    "entry_record",
    "equity_record",
    "event_record",
    "exit_fill",
    "json_value",
    "new_run_id",
    "ny_day_bounds",
    "parse_json_text",
    "trade_record_from_row",
]
