"""The synchronous trade journal writer: what the executor did and why, in a real database.

``TradeJournalWriter`` -- the seed's methods (``record_entry``, ``record_exit``,
``get_daily_summary``, ``get_trade_history``), the ExecutionSink writes (``record_decision``,
``record_trade``, ``record_equity``, ``record_event``), daily P&L rows, backtest runs. Every write
commits before returning. Reads come from ``JournalReader`` (queries.py); records are built and
validated by records.py; ``JournalSink`` (sink.py) runs the same operations on a background thread.

Batches: ``_commit_ops`` runs operations in one transaction; if the database refuses the batch
(constraint violation, ...), it is rolled back and replayed one operation per transaction, so only
the offending record is dropped (logged, kept in ``errors``). Transient errors (database locked,
connection lost) are retried with backoff for ``retry_seconds`` first.

Times: every timestamp is given by the caller (engine time in backtests); nothing here reads the
wall clock for its logic. Stored as naive UTC, returned aware UTC.

Run ids: rows carry ``run_id``; ``None`` means live and is stored as ``"live"`` (rows with NULL are
read as live too). A backtest passes its own id (``new_run_id()``) so its rows stay apart.
"""

from __future__ import annotations

import logging
import threading
import time as _time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, make_transient
from sqlalchemy.orm.attributes import instance_state

from strategies import stats
from strategies.execution_log import TRADE_COLUMNS, DecisionRecord
from strategies.journal.models import (
    LIVE_RUN_ID,
    BacktestRunRecord,
    Base,
    DailyPnLRecord,
    FillRecord,
    OrderRecord,
    TradeExecutionRecord,
    _finite,
    check_required,
)
from strategies.journal.queries import JournalReader, run_filter
from strategies.journal.records import (
    DailySummary,
    _aware,
    decision_record,
    entry_record,
    equity_record,
    event_record,
    exit_fill,
    trade_record_from_row,
)

log = logging.getLogger("strategies.journal")


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
                .where(run_filter(TradeExecutionRecord.run_id, rec.run_id or LIVE_RUN_ID),
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

    def fn(s: Session) -> int:
        conds = [run_filter(TradeExecutionRecord.run_id, run_id),
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
        pnl = stats.round_trip_pnl(row.entry_price, price, qty, position.direction, multiplier)
        # a new dict every time: JSON columns do not track changes made inside the value
        meta = dict(row.metadata_json or {})
        meta.update({"exit_order_id": oid, "exit_broker": broker, "last_price": price,
                     "last_price_time": ts.isoformat()})
        if qty < row.shares:  # partial exit: split off a closed row, keep the rest open
            closed = TradeExecutionRecord(**{c: getattr(row, c) for c in TRADE_COLUMNS}, run_id=row.run_id)
            closed.shares = qty
            row.shares = row.shares - qty
            row.metadata_json = {**meta, "partially_closed": True}
            target = closed
            s.add(closed)
        else:
            target = row
        target.exit_price = price
        target.exit_time = ts
        target.status = "closed"
        target.exit_reason = exit_reason
        target.pnl = pnl
        target.pnl_pct = stats.pnl_pct(pnl, row.entry_price, qty, multiplier)
        target.metadata_json = meta
        s.flush()
        return target.id

    return _Op(fn, "trade_executions(exit)", durable)


def _mark_op(run_id: str, ticker: str, price: float, ts: datetime | None) -> _Op:
    def fn(s: Session) -> int:
        rows = s.scalars(select(TradeExecutionRecord).where(
            run_filter(TradeExecutionRecord.run_id, run_id),
            TradeExecutionRecord.status == "open",
            TradeExecutionRecord.ticker == ticker)).all()
        for r in rows:
            meta = dict(r.metadata_json or {})
            meta["last_price"] = price
            if ts is not None:
                meta["last_price_time"] = ts.isoformat()
            r.metadata_json = meta
        return len(rows)

    return _Op(fn, "trade_executions(mark)")


ORDER_UPDATE_COLUMNS = ("venue_order_id", "strategy_id", "instrument_id", "ticker", "side", "order_type",
                        "time_in_force", "quantity", "filled_qty", "price", "trigger_price", "avg_px", "status",
                        "reduce_only", "signal_id", "role", "tags", "last_event", "reason", "updated_at")


def _order_op(rec: OrderRecord) -> _Op:
    """Upsert an order row by (run_id, client_order_id): the order as the engine last saw it."""

    def fn(s: Session) -> int:
        row = s.scalars(select(OrderRecord).where(OrderRecord.run_id == rec.run_id,
                                                  OrderRecord.client_order_id == rec.client_order_id)).first()
        if row is None:
            s.add(_fresh(rec))
            s.flush()
            return rec.id
        for c in ORDER_UPDATE_COLUMNS:
            v = getattr(rec, c)
            if v is None and c in ("venue_order_id", "reason", "avg_px"):
                continue  # a later event without it does not erase what an earlier one told
            setattr(row, c, v)
        s.flush()
        return row.id

    return _Op(fn, "executor_orders")


def _fill_op(rec: FillRecord) -> _Op:
    """Insert a fill row unless that execution (run_id, client_order_id, trade_id) is there already
    (a live node may hear of one fill twice: the stream and the reconciliation after a reconnect)."""

    def fn(s: Session) -> int | None:
        exists_ = s.scalars(select(FillRecord.id).where(FillRecord.run_id == rec.run_id,
                                                        FillRecord.client_order_id == rec.client_order_id,
                                                        FillRecord.trade_id == rec.trade_id)).first()
        if exists_ is not None:
            return None
        s.add(_fresh(rec))
        s.flush()
        return rec.id

    return _Op(fn, "executor_fills")


def _orders_op(recs: Sequence[OrderRecord]) -> _Op:
    """Upsert many order rows of one run in one go (what a backtest's buffered recorder writes)."""

    def fn(s: Session) -> int:
        by_run: dict[str, list[OrderRecord]] = {}
        for r in recs:
            by_run.setdefault(r.run_id, []).append(r)
        for run_id, rs in by_run.items():
            for i in range(0, len(rs), 500):
                chunk = rs[i:i + 500]
                existing = {row.client_order_id: row for row in s.scalars(select(OrderRecord).where(
                    OrderRecord.run_id == run_id,
                    OrderRecord.client_order_id.in_([r.client_order_id for r in chunk])))}
                for r in chunk:
                    row = existing.get(r.client_order_id)
                    if row is None:
                        s.add(_fresh(r))
                    else:
                        for c in ORDER_UPDATE_COLUMNS:
                            v = getattr(r, c)
                            if v is None and c in ("venue_order_id", "reason", "avg_px"):
                                continue
                            setattr(row, c, v)
        s.flush()
        return len(recs)

    return _Op(fn, "executor_orders")


def _fills_op(recs: Sequence[FillRecord]) -> _Op:
    """Insert many fill rows, skipping executions already recorded."""

    def fn(s: Session) -> int:
        added = 0
        for i in range(0, len(recs), 500):
            chunk = recs[i:i + 500]
            have = set(s.execute(select(FillRecord.run_id, FillRecord.client_order_id, FillRecord.trade_id).where(
                FillRecord.run_id.in_({r.run_id for r in chunk}),
                FillRecord.trade_id.in_([r.trade_id for r in chunk]))).all())
            for r in chunk:
                k = (r.run_id, r.client_order_id, r.trade_id)
                if k not in have:
                    have.add(k)
                    s.add(_fresh(r))
                    added += 1
        s.flush()
        return added

    return _Op(fn, "executor_fills")


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


# ── the synchronous writer ────────────────────────────────────────────────────────────────────


class TradeJournalWriter(JournalReader):
    """Synchronous journal on ``engine_or_url`` (an Engine, a URL, or None for ``database_url()``).

    The schema must exist (``strategies.journal.db.upgrade(url)``). Reads: see JournalReader.
    """

    def __init__(self, engine_or_url: Engine | str | None = None, run_id: str | None = None, *,
                 retry_seconds: float = 30.0, max_errors: int = 100) -> None:
        super().__init__(engine_or_url, run_id)
        self.retry_seconds = retry_seconds
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

    # ── ExecutionSink writes ──
    def record_decision(self, decision: DecisionRecord, signal: Any = None) -> None:
        self._run(_add_op(decision_record(decision, self.run_id, signal)))

    def record_trade(self, row: dict[str, Any]) -> int:
        """Insert (or close the matching open entry of) a trade row; returns the row id."""
        return self._run(_trade_op(trade_record_from_row(row, self.run_id)))

    def record_open_trade(self, row: dict[str, Any]) -> int:
        """An entry fill as an ``open`` row (later fills of the same order update it)."""
        return self.record_trade(row)

    def record_equity(self, ts: datetime, equity: float) -> None:
        self._run(_add_op(equity_record(ts, equity, self.run_id)))

    def record_event(self, ts: datetime, kind: str, message: str, data: dict | None = None) -> None:
        self._run(_add_op(event_record(ts, kind, message, data, self.run_id)))

    def record_order(self, rec: OrderRecord) -> int:
        """Upsert an order of the order book (``strategies.order_recorder`` builds the record)."""
        check_required(rec)
        return self._run(_order_op(rec))

    def record_fill(self, rec: FillRecord) -> int | None:
        """Insert an execution (None when that fill is recorded already)."""
        check_required(rec)
        return self._run(_fill_op(rec))

    def record_orders(self, recs: Sequence[OrderRecord]) -> int:
        """Upsert many order rows in one transaction."""
        for r in recs:
            check_required(r)
        return self._run(_orders_op(list(recs)))

    def record_fills(self, recs: Sequence[FillRecord]) -> int:
        """Insert many fill rows in one transaction (already recorded executions are skipped)."""
        for r in recs:
            check_required(r)
        return self._run(_fills_op(list(recs)))

    # ── the seed's methods ──
    def record_entry(self, signal: Any, order_result: Any, position: Any) -> int:
        """An ``open`` trade row for the entry fill; returns its id."""
        return self._run(_trade_op(entry_record(signal, order_result, position, self.run_id)))

    def record_exit(self, position: Any, exit_reason: str, order_result: Any) -> int:
        """Close the position's open row at the fill (a partial fill splits off a closed row).

        P&L = ``stats.round_trip_pnl(entry, exit, filled_qty, direction, multiplier)``, before fees;
        pnl_pct is P&L over entry cost. LookupError when no open row matches (run, ticker, signal_id).
        """
        fill = exit_fill(order_result, exit_reason)
        return self._run(_exit_op(self.run_id, position, exit_reason, fill))

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
            metadata_json={"max_drawdown_pct": summary.max_drawdown_pct, "win_rate": summary.win_rate,
                           "profit_factor": summary.profit_factor, "expectancy": summary.expectancy,
                           **(metadata or {})},
        )
        values["metadata_json"] = DailyPnLRecord(date=day, run_id=self.run_id, **values).metadata_json  # validate

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

    # ── backtest runs ──
    def start_backtest_run(self, started_at: datetime, *, mode: str | None = None,
                           symbols: Sequence[str] = (), params: dict | None = None) -> BacktestRunRecord:
        """Register this writer's run id in ``backtest_runs`` (``started_at`` given by the caller)."""
        if self.run_id == LIVE_RUN_ID:
            raise ValueError("run_id 'live' is not a backtest run; pass run_id=new_run_id()")
        rec = BacktestRunRecord(run_id=self.run_id, started_at=_aware("started_at", started_at), mode=mode,
                                symbols=list(symbols), params_json=params or {})
        check_required(rec)
        self._run(_add_op(rec))
        return rec

    def finish_backtest_run(self, summary: dict[str, Any]) -> None:
        value = BacktestRunRecord(run_id=self.run_id, summary_json=summary).summary_json  # validate

        def fn(s: Session) -> None:
            rec = s.get(BacktestRunRecord, self.run_id)
            if rec is None:
                raise LookupError(f"backtest run {self.run_id!r} was not started")
            rec.summary_json = value

        self._run(_Op(fn, "backtest_runs"))


__all__ = ["TradeJournalWriter"]
