"""What the executor did and why: decisions, round trips and the equity curve.

`ExecutionSink` is the one protocol of what the executor strategy calls on its sink; it is
implemented by `ExecutionLog` (in memory: backtest reports read it at the end of a run),
`strategies.journal.JournalSink` (the database journal) and `TeeSink` (several at once). Rows use
the column names of the seed's `trade_executions` table so reports, the journal and the dashboard
speak one vocabulary.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Protocol, runtime_checkable

from strategies.trade_executor.commands import DecisionRecord  # the core's record, re-exported

TRADE_COLUMNS: tuple[str, ...] = (
    "signal_id",
    "ticker",
    "instrument_type",
    "original_ticker",
    "leverage",
    "direction",
    "trade_type",
    "entry_price",
    "exit_price",
    "shares",
    "stop_loss",
    "target_price",
    "conviction",
    "status",
    "exit_reason",
    "pnl",
    "pnl_pct",
    "broker",
    "order_id",
    "entry_time",
    "exit_time",
    "metadata_json",
)


@runtime_checkable
class OpenTrade(Protocol):
    """A trade row still open, as ``ExecutionSink.get_open_trades`` hands it back (the journal's
    ``TradeRecord``): what a restarted executor needs to manage the position again."""

    id: Any
    signal_id: str | None
    ticker: str
    instrument_type: str
    leverage: float | None
    direction: str
    trade_type: str
    entry_price: float
    shares: int
    stop_loss: float | None
    target_price: float | None
    order_id: str | None
    entry_time: datetime

    @property
    def metadata(self) -> dict[str, Any]: ...


@runtime_checkable
class ExecutionSink(Protocol):
    """Where the executor's records go: every call the executor strategy makes on its sink.

    * ``record_decision(decision)``: one TradeSignal received and what became of it.
    * ``record_trade(row)``: a finished round trip (a ``TRADE_COLUMNS`` row, status ``closed``).
    * ``record_open_trade(row)``: an entry fill (status ``open``); a durable sink has stored it
      when the call returns, so a crash after the fill cannot lose it.
    * ``record_event(ts, kind, message, data)``: kill switch, order failures, state changes, ...
    * ``record_equity(ts, equity)``: a point of the equity curve.
    * ``record_daily_pnl(day, metadata)``: a finished session (New York date ``day``); the
      journal writes its daily_pnl row, other sinks may keep or ignore it.
    * ``get_open_trades()``: the open rows a restarted executor must take over (``OpenTrade``);
      [] when the sink keeps nothing across processes.
    * ``get_decided_signal_ids(since)``: signal id -> time of its first decision, for the
      decisions this run recorded at or after ``since`` in an earlier process (a restarted
      executor refuses those ids as ``duplicate_signal``); {} when the sink keeps nothing across
      processes.
    * ``flush()``: everything recorded so far is stored when it returns (True when done).
    * ``close()``: flush and release resources; idempotent.
    """

    def record_decision(self, decision: DecisionRecord) -> None: ...

    def record_trade(self, row: dict[str, Any]) -> Any: ...

    def record_open_trade(self, row: dict[str, Any]) -> Any: ...

    def record_event(self, ts: datetime, kind: str, message: str, data: dict | None = None) -> None: ...

    def record_equity(self, ts: datetime, equity: float) -> None: ...

    def record_daily_pnl(self, day: date, metadata: dict | None = None) -> Any: ...

    def get_open_trades(self) -> Sequence[OpenTrade]: ...

    def get_decided_signal_ids(self, since: datetime | None = None) -> dict[str, datetime]: ...

    def flush(self) -> bool: ...

    def close(self) -> None: ...


class ExecutionLog:
    """In-memory ExecutionSink (what backtest reports read at the end of a run).

    ``open_trades`` keeps the latest open row of each entry order until its round trip closes;
    ``daily`` the (day, metadata) of every finished session. Nothing outlives the process, so
    ``get_open_trades`` is always [] (a restarted executor has nothing to take over from it).
    """

    def __init__(self) -> None:
        self.decisions: list[DecisionRecord] = []
        self.trades: list[dict[str, Any]] = []
        self.equity: list[tuple[datetime, float]] = []
        self.events: list[tuple[datetime, str, str, dict]] = []
        self.open_trades: dict[str, dict[str, Any]] = {}
        self.daily: list[tuple[date, dict]] = []

    def record_decision(self, decision: DecisionRecord, signal: Any = None) -> None:
        self.decisions.append(decision)

    def record_trade(self, row: dict[str, Any]) -> None:
        missing = [c for c in TRADE_COLUMNS if c not in row]
        if missing:
            raise ValueError(f"trade row lacks columns {missing}")
        self.trades.append(row)
        self.open_trades.pop(row.get("order_id"), None)

    def record_open_trade(self, row: dict[str, Any]) -> None:
        """An entry fill: kept by order id until the round trip closes (not a trade yet)."""
        self.open_trades[row["order_id"]] = row

    def record_event(self, ts: datetime, kind: str, message: str, data: dict | None = None) -> None:
        self.events.append((ts, kind, message, data or {}))

    def record_equity(self, ts: datetime, equity: float) -> None:
        self.equity.append((ts, equity))

    def record_daily_pnl(self, day: date, metadata: dict | None = None) -> None:
        self.daily.append((day, dict(metadata or {})))

    def get_open_trades(self) -> list[OpenTrade]:
        return []

    def get_decided_signal_ids(self, since: datetime | None = None) -> dict[str, datetime]:
        return {}  # nothing from an earlier process (this process' executor keeps its own set)

    def flush(self) -> bool:
        return True

    def close(self) -> None:
        pass


class TeeSink:
    """Forwards every record to several sinks (e.g. the in-memory log for reports + the journal)."""

    def __init__(self, *sinks: ExecutionSink) -> None:
        self.sinks = sinks

    def record_decision(self, decision: DecisionRecord) -> None:
        for s in self.sinks:
            s.record_decision(decision)

    def record_trade(self, row: dict[str, Any]) -> None:
        for s in self.sinks:
            s.record_trade(row)

    def record_open_trade(self, row: dict[str, Any]) -> None:
        for s in self.sinks:
            s.record_open_trade(row)

    def record_event(self, ts: datetime, kind: str, message: str, data: dict | None = None) -> None:
        for s in self.sinks:
            s.record_event(ts, kind, message, data)

    def record_equity(self, ts: datetime, equity: float) -> None:
        for s in self.sinks:
            s.record_equity(ts, equity)

    def record_daily_pnl(self, day: date, metadata: dict | None = None) -> Any:
        """Close a trading day in every sink; the first non-None result (the journal's
        DailySummary) is returned."""
        out = None
        for s in self.sinks:
            r = s.record_daily_pnl(day, metadata)
            out = r if out is None else out
        return out

    def get_open_trades(self) -> list[OpenTrade]:
        """The open rows of the first sink that has any (the durable one: in-memory sinks have none)."""
        for s in self.sinks:
            rows = s.get_open_trades()
            if rows:
                return list(rows)
        return []

    def get_decided_signal_ids(self, since: datetime | None = None) -> dict[str, datetime]:
        """Every sink's decided signal ids; the earliest time wins."""
        out: dict[str, datetime] = {}
        for s in self.sinks:
            for sid, ts in (s.get_decided_signal_ids(since) or {}).items():
                if sid not in out or ts < out[sid]:
                    out[sid] = ts
        return out

    def flush(self) -> bool:
        return all([s.flush() for s in self.sinks])

    def close(self) -> None:
        for s in self.sinks:
            s.close()
