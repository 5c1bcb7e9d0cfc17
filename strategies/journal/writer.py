"""Trade journal writers: what the executor did and why, in a real database.

``TradeJournalWriter`` -- synchronous. The seed's methods (``record_entry``, ``record_exit``,
``get_daily_summary``, ``get_trade_history``), the ExecutionSink calls (``record_decision``,
``record_trade``, ``record_equity``, ``record_event``) and a few extras. Every write commits before
returning.

``JournalSink`` -- the ExecutionSink the executor strategy writes to, in backtests and live. Records
are validated in the caller's thread (a bad record raises ValueError right there and never reaches
the database), then put on a queue consumed by one background writer thread that commits in small
batches (``batch_size`` records or ``flush_interval`` seconds, whichever comes first). So:

* decisions, equity snapshots, events, price marks: off the hot path, batched. A crash can lose
  at most the last ``flush_interval`` seconds of these.
* trades (``record_trade``, ``record_entry``, ``record_exit``), i.e. fills: synchronously durable.
  The call queues the row behind everything already queued and blocks until the writer thread
  has committed it (together with what preceded it); a database error is raised to the caller.
  A crash right after a fill cannot lose that fill's row. The cost is one commit round trip per
  fill, which fills can afford and decisions (one per signal) and equity samples need not pay.
* ``flush()`` blocks until everything queued so far is committed; ``close()`` flushes and stops
  the thread (also run at interpreter exit).

One bad record never costs the good ones: validation happens before queuing; if a batch still
fails in the database (constraint violation, ...), it is rolled back and replayed one record per
transaction, so only the offending record is dropped (logged, kept in ``errors``). Transient
errors (database locked, connection lost) are retried with backoff for ``retry_seconds`` first.

Times: every timestamp is given by the caller (engine time in backtests); nothing here reads the
wall clock for its logic. Stored as naive UTC, returned aware UTC.

Run ids: rows carry ``run_id``; ``None`` means live and is stored as ``"live"`` (rows with NULL are
read as live too). A backtest passes its own id (``new_run_id()``) so its rows stay apart.
"""

from __future__ import annotations

import atexit
import dataclasses
import json
import logging
import math
import queue
import threading
import time as _time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from enum import Enum
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, exists, or_, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, make_transient, sessionmaker
from sqlalchemy.orm.attributes import instance_state

from strategies.execution_log import TRADE_COLUMNS, DecisionRecord
from strategies.journal.db import make_engine
from strategies.journal.models import (
    LIVE_RUN_ID,
    BacktestRunRecord,
    Base,
    DailyPnLRecord,
    EquitySnapshotRecord,
    ExecutorControlRecord,
    ExecutorEventRecord,
    SignalDecisionRecord,
    TradeExecutionRecord,
    _finite,
    _int,
    check_required,
)

log = logging.getLogger("strategies.journal")

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
    """One trade_executions row as read back (times aware UTC)."""

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
    metadata_json: str | None
    created_at: datetime | None

    @property
    def metadata(self) -> dict[str, Any]:
        return json.loads(self.metadata_json) if self.metadata_json else {}

    def to_row(self) -> dict[str, Any]:
        """The ExecutionSink row (TRADE_COLUMNS) of this trade."""
        return {c: getattr(self, c) for c in TRADE_COLUMNS}

    @classmethod
    def from_orm(cls, r: TradeExecutionRecord) -> TradeRecord:
        return cls(**{f.name: getattr(r, f.name) for f in dataclasses.fields(cls)})


@dataclass(frozen=True)
class DailySummary:
    """One New York trading date, computed from the recorded rows.

    * realized_pnl, total/winning/losing_trades: closed trades whose exit_time falls on the date
      (winner pnl > 0, loser pnl < 0, a flat trade is neither); cancelled rows are ignored.
    * unrealized_pnl: rows still open that were entered before the end of the date, marked at
      their last known price (``mark_price`` / the entry's position price); 0 for those without.
    * starting/ending_equity: first and last equity snapshot of the date (None without snapshots).
    * max_drawdown: largest peak-to-trough fall of that day's equity snapshots, in currency
      (a positive number; 0 when equity never fell below an earlier high of the day);
      max_drawdown_pct: the same fall as a fraction of the peak it fell from.
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


@dataclass(frozen=True)
class KillSwitchLatch:
    active: bool
    reason: str | None = None
    activated_at: datetime | None = None


def new_run_id(prefix: str = "bt") -> str:
    """A fresh backtest run id, e.g. ``bt-3f2a9c41d0e7``."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def ny_day_bounds(day: date) -> tuple[datetime, datetime]:
    """[start, end) of a New York calendar date, in UTC."""
    start = datetime.combine(day, time(0), NY).astimezone(timezone.utc)
    end = datetime.combine(day + timedelta(days=1), time(0), NY).astimezone(timezone.utc)
    return start, end


def max_drawdown(equity: Sequence[float]) -> tuple[float, float]:
    """(largest peak-to-trough fall, that fall / its peak) of an equity series; (0, 0) if none."""
    peak = -math.inf
    worst, worst_pct = 0.0, 0.0
    for e in equity:
        if e > peak:
            peak = e
        fall = peak - e
        if fall > worst:
            worst = fall
            worst_pct = fall / peak if peak > 0 else 0.0
    return worst, worst_pct


def _json_default(o: Any) -> Any:
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


def dumps(obj: Any) -> str | None:
    """JSON text of ``obj`` (None stays None; strings are taken to be JSON already)."""
    if obj is None:
        return None
    if isinstance(obj, str):
        return obj
    return json.dumps(obj, default=_json_default, separators=(",", ":"))


def _live_or(run_id: str | None) -> str:
    return LIVE_RUN_ID if run_id is None else str(run_id)


def _run_filter(col: Any, run_id: str) -> Any:
    if run_id == LIVE_RUN_ID:
        return or_(col.is_(None), col == LIVE_RUN_ID)
    return col == run_id


_TRANSIENT_HINTS = ("locked", "busy", "connection", "server closed", "terminating", "timeout",
                    "could not connect", "deadlock", "could not serialize")


def _is_transient(exc: DBAPIError) -> bool:
    """Worth retrying: database locked/busy, connection lost, serialization failure. Not: missing
    tables, constraint violations, bad SQL (those fail the same way every time)."""
    if getattr(exc, "connection_invalidated", False):
        return True
    if not isinstance(exc, OperationalError):
        return False
    msg = str(getattr(exc, "orig", exc)).lower()
    return any(h in msg for h in _TRANSIENT_HINTS)


def _aware(name: str, value: Any) -> datetime:
    if not isinstance(value, datetime):
        raise ValueError(f"{name} must be a datetime, got {value!r}")
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        return value.replace(tzinfo=timezone.utc)
    return value


# ── record builders (caller's thread; raise ValueError on bad input) ──────────────────────────


def trade_record_from_row(row: dict[str, Any], run_id: str | None = None) -> TradeExecutionRecord:
    """A validated TradeExecutionRecord from an ExecutionSink trade row (TRADE_COLUMNS keys)."""
    if not isinstance(row, dict):
        raise ValueError(f"trade row must be a dict, got {type(row).__name__}")
    missing = [c for c in TRADE_COLUMNS if c not in row]
    if missing:
        raise ValueError(f"trade row lacks columns {missing}")
    unknown = [k for k in row if k not in TRADE_COLUMNS and k != "run_id"]
    if unknown:
        raise ValueError(f"trade row has unknown columns {unknown}")
    values = {k: v for k, v in row.items() if k != "run_id"}
    values["metadata_json"] = dumps(values.get("metadata_json"))
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
        details_json=dumps(decision.details or {}),
        order_ids=dumps(list(decision.order_ids or [])),
        signal_json=dumps(sig),
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
                              message=None if message is None else str(message), data_json=dumps(data or {}))
    check_required(rec)
    return rec


def _check_fill(order_result: Any) -> tuple[str | None, int, float, datetime, str | None]:
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


def entry_record(signal: Any, order_result: Any, position: Any,
                 run_id: str | None = None) -> TradeExecutionRecord:
    """An ``open`` trade row for an entry fill (``cancelled`` with 0 shares if nothing filled)."""
    oid, qty, price, ts, broker = _check_fill(order_result)
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
        metadata_json=dumps(meta),
    )
    check_required(rec)
    return rec


# ── operations run inside a session (the writer thread's or the caller's) ─────────────────────


@dataclass(eq=False)
class _Op:
    fn: Callable[[Session], Any]
    label: str
    durable: bool = False
    done: threading.Event | None = None
    result: Any = None
    error: BaseException | None = None


def _fresh(obj: Base) -> Base:
    """Make a (possibly rolled-back) object insertable again in a new session."""
    state = instance_state(obj)
    if state.session_id is not None or state.key is not None:
        make_transient(obj)
    if "id" in obj.__table__.c and obj.__table__.c["id"].primary_key:
        obj.id = None  # type: ignore[attr-defined]
    return obj


def _add_op(obj: Base, *, durable: bool = False) -> _Op:
    def fn(s: Session) -> Base:
        s.add(_fresh(obj))
        return obj

    return _Op(fn, f"{obj.__tablename__}", durable)


def _trade_op(rec: TradeExecutionRecord, *, durable: bool = True) -> _Op:
    """Insert a trade row; a row whose entry was already recorded as ``open`` (same run, order id
    and signal id) updates that row instead of adding a second one: a closed/cancelled row closes
    it, another ``open`` row (a further partial entry fill) updates its shares and price."""

    def fn(s: Session) -> int:
        target = None
        if rec.order_id:
            target = s.scalars(
                select(TradeExecutionRecord)
                .where(_run_filter(TradeExecutionRecord.run_id, rec.run_id or LIVE_RUN_ID),
                       TradeExecutionRecord.status == "open",
                       TradeExecutionRecord.order_id == rec.order_id,
                       TradeExecutionRecord.signal_id == rec.signal_id if rec.signal_id is not None
                       else TradeExecutionRecord.signal_id.is_(None))
                .order_by(TradeExecutionRecord.id.desc())
                .limit(1)
            ).first()
        if target is None:
            s.add(_fresh(rec))
            s.flush()
            return rec.id
        for c in TRADE_COLUMNS:
            if c == "metadata_json" and rec.metadata_json is None:
                continue
            setattr(target, c, getattr(rec, c))
        s.flush()
        return target.id

    return _Op(fn, "trade_executions", durable)


def _exit_op(run_id: str, position: Any, exit_reason: str, fill: tuple, *, durable: bool = True) -> _Op:
    oid, qty, price, ts, broker = fill
    multiplier = float(getattr(position, "multiplier", 1.0) or 1.0)
    sign = 1 if position.direction == "long" else -1

    def fn(s: Session) -> int:
        conds = [_run_filter(TradeExecutionRecord.run_id, run_id),
                 TradeExecutionRecord.status == "open",
                 TradeExecutionRecord.ticker == position.ticker]
        if getattr(position, "signal_id", None):
            conds.append(TradeExecutionRecord.signal_id == position.signal_id)
        row = s.scalars(select(TradeExecutionRecord).where(*conds)
                        .order_by(TradeExecutionRecord.id.desc()).limit(1)).first()
        if row is None:
            raise LookupError(f"no open trade for ticker {position.ticker!r} signal_id "
                              f"{getattr(position, 'signal_id', None)!r} (run {run_id!r})")
        if qty > row.shares:
            raise ValueError(f"filled_qty {qty} exceeds the open trade's shares {row.shares}")
        pnl = (price - row.entry_price) * qty * sign * multiplier
        cost = row.entry_price * qty * multiplier
        meta = json.loads(row.metadata_json) if row.metadata_json else {}
        meta.update({"exit_order_id": oid, "exit_broker": broker, "last_price": price,
                     "last_price_time": ts.isoformat()})
        if qty < row.shares:  # partial exit: split off a closed row, keep the rest open
            closed = TradeExecutionRecord(**{c: getattr(row, c) for c in TRADE_COLUMNS}, run_id=row.run_id)
            closed.shares = qty
            row.shares = row.shares - qty
            row.metadata_json = dumps({**meta, "partially_closed": True})
            target = closed
            s.add(closed)
        else:
            target = row
        target.exit_price = price
        target.exit_time = ts
        target.status = "closed"
        target.exit_reason = exit_reason
        target.pnl = pnl
        target.pnl_pct = pnl / cost if cost else 0.0
        target.metadata_json = dumps(meta)
        s.flush()
        return target.id

    return _Op(fn, "trade_executions(exit)", durable)


def _mark_op(run_id: str, ticker: str, price: float, ts: datetime | None) -> _Op:
    def fn(s: Session) -> int:
        rows = s.scalars(select(TradeExecutionRecord).where(
            _run_filter(TradeExecutionRecord.run_id, run_id),
            TradeExecutionRecord.status == "open",
            TradeExecutionRecord.ticker == ticker)).all()
        for r in rows:
            meta = json.loads(r.metadata_json) if r.metadata_json else {}
            meta["last_price"] = price
            if ts is not None:
                meta["last_price_time"] = ts.isoformat()
            r.metadata_json = dumps(meta)
        return len(rows)

    return _Op(fn, "trade_executions(mark)")


# ── the synchronous writer ────────────────────────────────────────────────────────────────────


class TradeJournalWriter:
    """Synchronous journal on ``engine_or_url`` (an Engine, a URL, or None for ``database_url()``).

    The schema must exist (``strategies.journal.db.upgrade(url)``).
    """

    def __init__(self, engine_or_url: Engine | str | None = None, run_id: str | None = None, *,
                 retry_seconds: float = 30.0, max_errors: int = 100) -> None:
        if isinstance(engine_or_url, Engine):
            self.engine, self._owns_engine = engine_or_url, False
        else:
            self.engine, self._owns_engine = make_engine(engine_or_url), True
        self.run_id: str = _live_or(run_id)
        self.retry_seconds = retry_seconds
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self.errors: deque[tuple[str, BaseException]] = deque(maxlen=max_errors)
        self.failed = 0

    # ── core: commit a batch, isolating bad records ──
    def _commit_ops(self, ops: Sequence[_Op]) -> None:
        """Run ``ops`` in one transaction; on a database error replay them one per transaction.

        Each op ends with ``result`` or ``error`` set. Logical errors (LookupError, ValueError raised
        by an op before it touches the session) only fail that op.
        """
        if not ops:
            return
        pending = [op for op in ops if op.error is None]
        try:
            self._with_retry(lambda: self._run_in_session(pending, isolate_logic=True))
            return
        except SQLAlchemyError as exc:
            if len(pending) == 1:
                self._fail(pending[0], exc)
                return
            log.warning("journal batch of %d failed (%s); replaying one by one", len(pending), exc)
        for op in pending:
            try:
                self._with_retry(lambda op=op: self._run_in_session([op], isolate_logic=True))
            except SQLAlchemyError as exc:
                self._fail(op, exc)

    def _run_in_session(self, ops: Sequence[_Op], *, isolate_logic: bool) -> None:
        with self._sessions() as s:
            try:
                for op in ops:
                    op.result, op.error = None, None
                    try:
                        op.result = op.fn(s)
                    except SQLAlchemyError:
                        raise
                    except Exception as exc:  # noqa: BLE001  logical error of this op only
                        if not isolate_logic:
                            raise
                        op.error = exc
                s.commit()
            except BaseException:
                s.rollback()
                raise

    def _with_retry(self, fn: Callable[[], None]) -> None:
        deadline = _time.monotonic() + self.retry_seconds
        delay = 0.05
        while True:
            try:
                fn()
                return
            except DBAPIError as exc:
                if not _is_transient(exc) or _time.monotonic() + delay > deadline:
                    raise
                log.warning("journal write failed transiently (%s); retrying in %.2fs", exc, delay)
                _time.sleep(delay)
                delay = min(delay * 2, 2.0)

    def _fail(self, op: _Op, exc: BaseException) -> None:
        op.error = exc
        self.failed += 1
        self.errors.append((op.label, exc))
        log.error("journal: %s record not written: %s", op.label, exc)

    def _run(self, op: _Op) -> Any:
        self._commit_ops([op])
        if op.error is not None:
            raise op.error
        return op.result

    # ── ExecutionSink ──
    def record_decision(self, decision: DecisionRecord, signal: Any = None) -> None:
        self._run(_add_op(decision_record(decision, self.run_id, signal)))

    def record_trade(self, row: dict[str, Any]) -> int:
        """Insert (or close the matching open entry of) a trade row; returns the row id."""
        return self._run(_trade_op(trade_record_from_row(row, self.run_id)))

    def record_equity(self, ts: datetime, equity: float) -> None:
        self._run(_add_op(equity_record(ts, equity, self.run_id)))

    def record_event(self, ts: datetime, kind: str, message: str, data: dict | None = None) -> None:
        self._run(_add_op(event_record(ts, kind, message, data, self.run_id)))

    # ── the seed's methods ──
    def record_entry(self, signal: Any, order_result: Any, position: Any) -> int:
        """An ``open`` trade row for the entry fill; returns its id."""
        return self._run(_trade_op(entry_record(signal, order_result, position, self.run_id)))

    def record_exit(self, position: Any, exit_reason: str, order_result: Any) -> int:
        """Close the position's open row at the fill (a partial fill splits off a closed row).

        P&L = (exit - entry) x filled_qty x direction x multiplier, before fees; pnl_pct is P&L
        over entry cost. LookupError when no open row matches (run, ticker, signal_id).
        """
        fill = self._exit_fill(order_result, exit_reason)
        return self._run(_exit_op(self.run_id, position, exit_reason, fill))

    @staticmethod
    def _exit_fill(order_result: Any, exit_reason: str) -> tuple:
        fill = _check_fill(order_result)
        if fill[1] <= 0:
            raise ValueError(f"filled_qty must be > 0 for an exit, got {order_result.filled_qty!r}")
        if fill[2] is None or fill[2] <= 0:
            raise ValueError(f"filled_price must be a positive finite price, got {order_result.filled_price!r}")
        if exit_reason is not None and (not isinstance(exit_reason, str) or len(exit_reason) > 50):
            raise ValueError(f"exit_reason must be a string of at most 50 characters, got {exit_reason!r}")
        return fill

    def mark_price(self, ticker: str, price: float, ts: datetime | None = None) -> int:
        """Remember ``price`` as the last known price of this run's open rows of ``ticker``."""
        p = _finite("price", price, positive=True)
        return self._run(_mark_op(self.run_id, ticker, p, None if ts is None else _aware("ts", ts)))

    def write_records(self, records: Iterable[Base]) -> list[tuple[Base, BaseException]]:
        """Insert ORM records in one transaction; returns the (record, error) pairs refused.

        Records already refused by validation cannot be built, so this only sees database-level
        failures (unique keys, ...): those records are dropped, the others are committed.
        """
        recs = list(records)
        for r in recs:
            check_required(r)
        ops = [_add_op(r) for r in recs]
        self._commit_ops(ops)
        return [(r, op.error) for r, op in zip(recs, ops) if op.error is not None]

    # ── daily P&L ──
    def get_daily_summary(self, day: date) -> DailySummary:
        """The summary of New York date ``day`` from the recorded rows (see DailySummary)."""
        if isinstance(day, datetime) or not isinstance(day, date):
            raise ValueError(f"day must be a datetime.date, got {day!r}")
        start, end = ny_day_bounds(day)
        T, E, V = TradeExecutionRecord, EquitySnapshotRecord, ExecutorEventRecord
        with self._sessions() as s:
            closed = s.scalars(select(T).where(
                _run_filter(T.run_id, self.run_id), T.status == "closed",
                T.exit_time >= start, T.exit_time < end)).all()
            open_rows = s.scalars(select(T).where(
                _run_filter(T.run_id, self.run_id), T.status == "open", T.entry_time < end)).all()
            equity = [e for (e,) in s.execute(select(E.equity).where(
                _run_filter(E.run_id, self.run_id), E.ts >= start, E.ts < end).order_by(E.ts, E.id))]
            killed = bool(s.scalar(select(exists().where(
                _run_filter(V.run_id, self.run_id), V.kind == KILL_SWITCH_EVENT, V.ts >= start, V.ts < end))))
        pnls = [r.pnl or 0.0 for r in closed]
        unrealized = 0.0
        for r in open_rows:
            meta = json.loads(r.metadata_json) if r.metadata_json else {}
            last = meta.get("last_price")
            if last is None:
                continue
            sign = 1 if r.direction == "long" else -1
            unrealized += (float(last) - r.entry_price) * r.shares * sign * float(meta.get("multiplier") or 1.0)
        dd, dd_pct = max_drawdown(equity)
        return DailySummary(
            date=day,
            starting_equity=equity[0] if equity else None,
            ending_equity=equity[-1] if equity else None,
            realized_pnl=math.fsum(pnls),
            unrealized_pnl=unrealized,
            total_trades=len(closed),
            winning_trades=sum(1 for p in pnls if p > 0),
            losing_trades=sum(1 for p in pnls if p < 0),
            max_drawdown=dd,
            kill_switch_triggered=killed,
            max_drawdown_pct=dd_pct,
            equity_snapshots=len(equity),
        )

    def record_daily_pnl(self, day: date, metadata: dict | None = None) -> DailySummary:
        """Compute ``get_daily_summary(day)`` and upsert it into ``daily_pnl`` for this run.

        ValueError when the date has no equity snapshot (starting/ending equity are NOT NULL).
        """
        summary = self.get_daily_summary(day)
        if summary.starting_equity is None:
            raise ValueError(f"date {day}: no equity snapshots recorded, cannot write daily_pnl")
        values = dict(
            starting_equity=summary.starting_equity, ending_equity=summary.ending_equity,
            realized_pnl=summary.realized_pnl, unrealized_pnl=summary.unrealized_pnl,
            total_trades=summary.total_trades, winning_trades=summary.winning_trades,
            losing_trades=summary.losing_trades, max_drawdown=summary.max_drawdown,
            kill_switch_triggered=summary.kill_switch_triggered,
            metadata_json=dumps({"max_drawdown_pct": summary.max_drawdown_pct, **(metadata or {})}),
        )
        DailyPnLRecord(date=day, run_id=self.run_id, **values)  # validate before touching the db

        def fn(s: Session) -> None:
            row = s.scalars(select(DailyPnLRecord).where(
                DailyPnLRecord.run_id == self.run_id, DailyPnLRecord.date == day)).first()
            if row is None:
                s.add(DailyPnLRecord(date=day, run_id=self.run_id, **values))
            else:
                for k, v in values.items():
                    setattr(row, k, v)

        self._run(_Op(fn, "daily_pnl"))
        return summary

    def get_daily_pnl(self, day: date) -> DailyPnLRecord | None:
        with self._sessions() as s:
            return s.scalars(select(DailyPnLRecord).where(
                DailyPnLRecord.run_id == self.run_id, DailyPnLRecord.date == day)).first()

    # ── reads ──
    def get_trade_history(self, ticker: str | None = None, days: float | None = 30, *,
                          now: datetime) -> list[TradeRecord]:
        """This run's trades entered at or before ``now`` and entered or exited within the last
        ``days`` days (None: no lower bound), oldest entry first.

        ``ticker`` matches the traded ticker or the signal ticker (``original_ticker``), so "QQQ"
        also finds the TQQQ/SQQQ trades taken on QQQ signals.
        """
        now = _aware("now", now)
        T = TradeExecutionRecord
        conds = [_run_filter(T.run_id, self.run_id), T.entry_time <= now]
        if days is not None:
            d = _finite("days", days)
            if d is None or d < 0:
                raise ValueError(f"days must be >= 0, got {days!r}")
            cutoff = now - timedelta(days=d)
            conds.append(or_(T.entry_time >= cutoff, and_(T.exit_time.is_not(None), T.exit_time >= cutoff)))
        if ticker is not None:
            t = str(ticker).strip().upper()
            conds.append(or_(T.ticker == t, T.original_ticker == t))
        with self._sessions() as s:
            rows = s.scalars(select(T).where(*conds).order_by(T.entry_time, T.id)).all()
            return [TradeRecord.from_orm(r) for r in rows]

    def get_open_trades(self) -> list[TradeRecord]:
        """This run's trades still ``open`` (what a restarted executor must manage again)."""
        T = TradeExecutionRecord
        with self._sessions() as s:
            rows = s.scalars(select(T).where(_run_filter(T.run_id, self.run_id), T.status == "open")
                             .order_by(T.entry_time, T.id)).all()
            return [TradeRecord.from_orm(r) for r in rows]

    def get_decisions(self, signal_id: str | None = None) -> list[SignalDecisionRecord]:
        D = SignalDecisionRecord
        conds = [_run_filter(D.run_id, self.run_id)]
        if signal_id is not None:
            conds.append(D.signal_id == signal_id)
        with self._sessions() as s:
            return list(s.scalars(select(D).where(*conds).order_by(D.ts, D.id)).all())

    def get_events(self, kind: str | None = None) -> list[ExecutorEventRecord]:
        V = ExecutorEventRecord
        conds = [_run_filter(V.run_id, self.run_id)]
        if kind is not None:
            conds.append(V.kind == kind)
        with self._sessions() as s:
            return list(s.scalars(select(V).where(*conds).order_by(V.ts, V.id)).all())

    def get_equity_curve(self) -> list[tuple[datetime, float]]:
        E = EquitySnapshotRecord
        with self._sessions() as s:
            return [(ts, eq) for ts, eq in s.execute(
                select(E.ts, E.equity).where(_run_filter(E.run_id, self.run_id)).order_by(E.ts, E.id))]

    # ── backtest runs ──
    def start_backtest_run(self, started_at: datetime, *, mode: str | None = None,
                           symbols: Sequence[str] = (), params: dict | None = None) -> BacktestRunRecord:
        """Register this writer's run id in ``backtest_runs`` (``started_at`` given by the caller)."""
        if self.run_id == LIVE_RUN_ID:
            raise ValueError("run_id 'live' is not a backtest run; pass run_id=new_run_id()")
        rec = BacktestRunRecord(run_id=self.run_id, started_at=_aware("started_at", started_at), mode=mode,
                                symbols=dumps(list(symbols)), params_json=dumps(params or {}))
        check_required(rec)
        self._run(_add_op(rec))
        return rec

    def finish_backtest_run(self, summary: dict[str, Any]) -> None:
        text = dumps(summary)

        def fn(s: Session) -> None:
            rec = s.get(BacktestRunRecord, self.run_id)
            if rec is None:
                raise LookupError(f"backtest run {self.run_id!r} was not started")
            rec.summary_json = text

        self._run(_Op(fn, "backtest_runs"))

    def close(self) -> None:
        if self._owns_engine:
            self.engine.dispose()


# ── the asynchronous sink ─────────────────────────────────────────────────────────────────────

_STOP = object()


class JournalSink:
    """ExecutionSink writing to the database through one background thread (module docstring)."""

    def __init__(self, engine_or_url: Engine | str | None = None, run_id: str | None = None, *,
                 batch_size: int = 50, flush_interval: float = 0.2, retry_seconds: float = 30.0) -> None:
        if batch_size < 1 or flush_interval <= 0:
            raise ValueError(f"batch_size must be >= 1 and flush_interval > 0, got {batch_size}, {flush_interval}")
        self.writer = TradeJournalWriter(engine_or_url, run_id, retry_seconds=retry_seconds)
        self.run_id = self.writer.run_id
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self._q: queue.Queue[Any] = queue.Queue()
        self._closed = False
        self._lock = threading.Lock()
        self.written = 0
        self._thread = threading.Thread(target=self._loop, name=f"journal-writer[{self.run_id}]", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    @property
    def errors(self) -> deque[tuple[str, BaseException]]:
        return self.writer.errors

    @property
    def failed(self) -> int:
        return self.writer.failed

    # ── ExecutionSink ──
    def record_decision(self, decision: DecisionRecord, signal: Any = None) -> None:
        self._put(_add_op(decision_record(decision, self.run_id, signal)))

    def record_trade(self, row: dict[str, Any]) -> int:
        """Durable: returns (the row id) only once the row is committed."""
        return self._put_and_wait(_trade_op(trade_record_from_row(row, self.run_id)))

    def record_open_trade(self, row: dict[str, Any]) -> int:
        """An entry fill as an ``open`` trade row (later fills of the same order update it, the
        exit closes it). Durable like record_trade: a crash after the fill cannot lose it."""
        return self.record_trade(row)

    def record_equity(self, ts: datetime, equity: float) -> None:
        self._put(_add_op(equity_record(ts, equity, self.run_id)))

    def record_event(self, ts: datetime, kind: str, message: str, data: dict | None = None) -> None:
        self._put(_add_op(event_record(ts, kind, message, data, self.run_id)))

    # ── the seed's write methods, durable like record_trade ──
    def record_entry(self, signal: Any, order_result: Any, position: Any) -> int:
        return self._put_and_wait(_trade_op(entry_record(signal, order_result, position, self.run_id)))

    def record_exit(self, position: Any, exit_reason: str, order_result: Any) -> int:
        fill = TradeJournalWriter._exit_fill(order_result, exit_reason)
        return self._put_and_wait(_exit_op(self.run_id, position, exit_reason, fill))

    def mark_price(self, ticker: str, price: float, ts: datetime | None = None) -> None:
        p = _finite("price", price, positive=True)
        self._put(_mark_op(self.run_id, ticker, p, None if ts is None else _aware("ts", ts)))

    # ── reads: flush first so they see everything recorded so far ──
    def get_daily_summary(self, day: date) -> DailySummary:
        self.flush()
        return self.writer.get_daily_summary(day)

    def get_trade_history(self, ticker: str | None = None, days: float | None = 30, *,
                          now: datetime) -> list[TradeRecord]:
        self.flush()
        return self.writer.get_trade_history(ticker, days, now=now)

    def record_daily_pnl(self, day: date, metadata: dict | None = None) -> DailySummary:
        self.flush()
        return self.writer.record_daily_pnl(day, metadata)

    def get_open_trades(self) -> list[TradeRecord]:
        self.flush()
        return self.writer.get_open_trades()

    # ── queue plumbing ──
    def _put(self, op: _Op) -> None:
        if self._closed:
            raise RuntimeError("JournalSink is closed")
        self._q.put(op)

    def _put_and_wait(self, op: _Op) -> Any:
        op.durable = True
        op.done = threading.Event()
        self._put(op)
        self._wait(op.done)
        if op.error is not None:
            raise op.error
        return op.result

    def _wait(self, ev: threading.Event, timeout: float | None = None) -> bool:
        deadline = None if timeout is None else _time.monotonic() + timeout
        while not ev.wait(0.5):
            if not self._thread.is_alive():
                raise RuntimeError("journal writer thread is not running")
            if deadline is not None and _time.monotonic() > deadline:
                return False
        return True

    def flush(self, timeout: float | None = None) -> bool:
        """Block until everything queued before this call is committed (False on timeout)."""
        if self._closed:
            return True
        ev = threading.Event()
        self._q.put(ev)
        return self._wait(ev, timeout)

    def close(self) -> None:
        """Flush, stop the writer thread, release the engine. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        atexit.unregister(self.close)
        self._q.put(_STOP)
        self._thread.join()
        self.writer.close()

    def __enter__(self) -> JournalSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _loop(self) -> None:
        stop = False
        while not stop:
            batch: list[Any] = [self._q.get()]
            deadline = _time.monotonic() + self.flush_interval
            # collect until batch_size, flush_interval, or something that must not wait
            while len(batch) < self.batch_size and not self._urgent(batch[-1]):
                remaining = deadline - _time.monotonic()
                if remaining <= 0:
                    break
                try:
                    batch.append(self._q.get(timeout=remaining))
                except queue.Empty:
                    break
            ops = [x for x in batch if isinstance(x, _Op)]
            try:
                self.writer._commit_ops(ops)
            except BaseException as exc:  # noqa: BLE001  never let the thread die silently
                for op in ops:
                    if op.error is None and op.result is None:
                        self.writer._fail(op, exc)
            self.written += sum(1 for op in ops if op.error is None)
            for x in batch:
                if isinstance(x, _Op):
                    if x.done is not None:
                        x.done.set()
                elif isinstance(x, threading.Event):
                    x.set()
                elif x is _STOP:
                    stop = True

    @staticmethod
    def _urgent(x: Any) -> bool:
        return x is _STOP or isinstance(x, threading.Event) or (isinstance(x, _Op) and x.durable)


# ── operator control state ────────────────────────────────────────────────────────────────────

KILL_SWITCH_KEY = "kill_switch"
INSTRUMENT_MODE_KEY = "instrument_mode"


class ControlStore:
    """Get/set of ``executor_control`` keys (operator state that outlives a process).

    ``now`` defaults to the wall clock: ``updated_at`` / ``activated_at`` are bookkeeping of
    operator actions (CLI, dashboard), not inputs of trading logic.
    """

    def __init__(self, engine_or_url: Engine | str | None = None, *, scope: str | None = None) -> None:
        """``scope`` keeps executors apart in one database: None is the live executor's own keys
        (``kill_switch``), a backtest uses e.g. ``"bt-<run id>"`` (keys ``"<scope>:kill_switch"``)."""
        if scope is not None and (not isinstance(scope, str) or not scope.strip() or ":" in scope
                                  or len(scope) > 40):
            raise ValueError(f"scope must be a non-empty string of <= 40 characters without ':', got {scope!r}")
        self.scope = scope
        if isinstance(engine_or_url, Engine):
            self.engine, self._owns_engine = engine_or_url, False
        else:
            self.engine, self._owns_engine = make_engine(engine_or_url), True
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    def key_for(self, name: str) -> str:
        return name if self.scope is None else f"{self.scope}:{name}"

    def get(self, key: str, default: Any = None) -> Any:
        with self._sessions() as s:
            rec = s.get(ExecutorControlRecord, key)
            return default if rec is None else json.loads(rec.value_json)

    def get_record(self, key: str) -> ExecutorControlRecord | None:
        with self._sessions() as s:
            return s.get(ExecutorControlRecord, key)

    def set(self, key: str, value: Any, *, updated_by: str | None = None, now: datetime | None = None) -> None:
        text = json.dumps(value, default=_json_default)
        ts = _aware("now", now) if now is not None else datetime.now(timezone.utc)
        ExecutorControlRecord(key=key, value_json=text, updated_at=ts, updated_by=updated_by)  # validate
        for attempt in range(3):
            try:
                with self._sessions() as s, s.begin():
                    rec = s.get(ExecutorControlRecord, key)
                    if rec is None:
                        s.add(ExecutorControlRecord(key=key, value_json=text, updated_at=ts, updated_by=updated_by))
                    else:
                        rec.value_json, rec.updated_at, rec.updated_by = text, ts, updated_by
                return
            except SQLAlchemyError:
                if attempt == 2:
                    raise  # e.g. two processes inserting the same new key: the retry updates

    def delete(self, key: str) -> None:
        with self._sessions() as s, s.begin():
            rec = s.get(ExecutorControlRecord, key)
            if rec is not None:
                s.delete(rec)

    # kill switch latch
    def kill_switch(self) -> KillSwitchLatch:
        v = self.get(self.key_for(KILL_SWITCH_KEY))
        if not v:
            return KillSwitchLatch(False)
        at = v.get("activated_at")
        return KillSwitchLatch(bool(v.get("active")), v.get("reason"),
                               datetime.fromisoformat(at) if at else None)

    def activate_kill_switch(self, reason: str, *, now: datetime | None = None, by: str | None = None) -> KillSwitchLatch:
        if not isinstance(reason, str) or not reason.strip():
            raise ValueError(f"reason must be a non-empty string, got {reason!r}")
        ts = _aware("now", now) if now is not None else datetime.now(timezone.utc)
        self.set(self.key_for(KILL_SWITCH_KEY), {"active": True, "reason": reason, "activated_at": ts.isoformat()},
                 updated_by=by, now=ts)
        return KillSwitchLatch(True, reason, ts)

    def deactivate_kill_switch(self, *, now: datetime | None = None, by: str | None = None) -> KillSwitchLatch:
        prev = self.kill_switch()
        self.set(self.key_for(KILL_SWITCH_KEY), {"active": False, "reason": prev.reason,
                                   "activated_at": prev.activated_at.isoformat() if prev.activated_at else None},
                 updated_by=by, now=now)
        return KillSwitchLatch(False, prev.reason, prev.activated_at)

    # instrument mode
    def instrument_mode(self) -> str | None:
        return self.get(self.key_for(INSTRUMENT_MODE_KEY))

    def set_instrument_mode(self, mode: str, *, now: datetime | None = None, by: str | None = None) -> str:
        from strategies.trade_executor.models import InstrumentMode

        try:
            value = InstrumentMode(mode).value
        except ValueError:
            raise ValueError(f"instrument_mode must be one of {[m.value for m in InstrumentMode]}, "
                             f"got {mode!r}") from None
        self.set(self.key_for(INSTRUMENT_MODE_KEY), value, updated_by=by, now=now)
        return value

    def close(self) -> None:
        if self._owns_engine:
            self.engine.dispose()


__all__ = [
    "ControlStore",
    "DailySummary",
    "INSTRUMENT_MODE_KEY",
    "JournalSink",
    "KILL_SWITCH_KEY",
    "KillSwitchLatch",
    "OrderResult",
    "TradeJournalWriter",
    "TradeRecord",
    "decision_record",
    "dumps",
    "entry_record",
    "equity_record",
    "event_record",
    "max_drawdown",
    "new_run_id",
    "ny_day_bounds",
    "trade_record_from_row",
]
