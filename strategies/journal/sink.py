"""``JournalSink``: the ExecutionSink the executor strategy writes to, in backtests and live.

Records are validated in the caller's thread (a bad record raises ValueError right there and never
reaches the database), then put on a queue consumed by one background writer thread that commits
in small batches (``batch_size`` records or ``flush_interval`` seconds, whichever comes first), with
``TradeJournalWriter``'s bad-record isolation and transient-error retries. So:

* decisions, equity snapshots, events, price marks: off the hot path, batched. A crash can lose
  at most the last ``flush_interval`` seconds of these.
* trades (``record_trade``, ``record_open_trade``, ``record_entry``, ``record_exit``), i.e. fills:
  synchronously durable. The call queues the row behind everything already queued and blocks
  until the writer thread has committed it (together with what preceded it); a database error is
  raised to the caller. A crash right after a fill cannot lose that fill's row. The cost is one
  commit round trip per fill, which fills can afford and decisions (one per signal) and equity
  samples need not pay.
* reads (``get_open_trades``, ``get_daily_summary``, ...) and ``record_daily_pnl`` flush first, so
  they see everything recorded so far.
* ``flush()`` blocks until everything queued so far is committed; ``close()`` flushes and stops
  the thread (also run at interpreter exit).
"""

from __future__ import annotations

import atexit
import queue
import threading
import time as _time
from collections import deque
from datetime import date, datetime
from typing import Any

from sqlalchemy.engine import Engine

from strategies.execution_log import DecisionRecord
from strategies.journal.models import _finite
from strategies.journal.records import (
    DailySummary,
    TradeRecord,
    _aware,
    decision_record,
    entry_record,
    equity_record,
    event_record,
    exit_fill,
    trade_record_from_row,
)
from strategies.journal.models import FillRecord, OrderRecord, check_required
from strategies.journal.writer import (
    TradeJournalWriter,
    _add_op,
    _exit_op,
    _fill_op,
    _fills_op,
    _mark_op,
    _Op,
    _order_op,
    _orders_op,
    _trade_op,
)

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

    def record_daily_pnl(self, day: date, metadata: dict | None = None) -> DailySummary:
        """Flush, then compute and upsert ``day``'s daily_pnl row (TradeJournalWriter.record_daily_pnl)."""
        self.flush()
        return self.writer.record_daily_pnl(day, metadata)

    def get_open_trades(self) -> list[TradeRecord]:
        """Flush, then this run's ``open`` trades (what a restarted executor takes over)."""
        self.flush()
        return self.writer.get_open_trades()

    def get_decided_signal_ids(self, since: datetime | None = None) -> dict[str, datetime]:
        """Flush, then this run's decided signal ids with their first decision's time (see
        JournalReader.get_decided_signal_ids)."""
        self.flush()
        return self.writer.get_decided_signal_ids(since)

    def record_order(self, rec: OrderRecord) -> None:
        """Queue an upsert of an order-book row (batched like decisions; ``flush()`` to wait)."""
        check_required(rec)
        self._put(_order_op(rec))

    def record_fill(self, rec: FillRecord) -> None:
        """Queue an execution row (batched; the trade row itself stays durable per fill)."""
        check_required(rec)
        self._put(_fill_op(rec))

    def record_orders(self, recs: list[OrderRecord]) -> None:
        """Queue one upsert of many order rows (a backtest's buffered OrderRecorder)."""
        for r in recs:
            check_required(r)
        if recs:
            self._put(_orders_op(list(recs)))

    def record_fills(self, recs: list[FillRecord]) -> None:
        """Queue one insert of many fill rows."""
        for r in recs:
            check_required(r)
        if recs:
            self._put(_fills_op(list(recs)))

    # ── the seed's write methods, durable like record_trade ──
    def record_entry(self, signal: Any, order_result: Any, position: Any) -> int:
        return self._put_and_wait(_trade_op(entry_record(signal, order_result, position, self.run_id)))

    def record_exit(self, position: Any, exit_reason: str, order_result: Any) -> int:
        fill = exit_fill(order_result, exit_reason)
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


__all__ = ["JournalSink"]
