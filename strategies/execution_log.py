"""What the executor did and why: decisions, round trips and the equity curve.

`ExecutionLog` is the sink the executor strategy writes to. This in-process implementation keeps
everything in memory (backtest reports read it at the end of a run); a database-backed journal
implements the same three calls. Rows use the column names of the seed's `trade_executions` table
so reports, the journal and the dashboard speak one vocabulary.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

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


@dataclass
class DecisionRecord:
    """One TradeSignal received and what became of it."""

    ts: datetime  # engine time the decision was taken
    signal_id: str
    ticker: str
    timeframe: str
    signal_type: str
    direction: str
    conviction: int
    approved: bool
    reason_code: str | None  # RiskDecision code, or "no_instrument" / "invalid_signal" / ...
    reason: str | None
    instrument: str | None  # what would be / was traded
    instrument_type: str | None
    shares: int
    details: dict[str, Any] = field(default_factory=dict)  # the numbers the decision used
    order_ids: list[str] = field(default_factory=list)


class ExecutionSink(Protocol):
    """Where the executor's records go. Optional extras a sink may implement:
    ``record_open_trade(row)`` (an entry fill, journaled durably before the strategy moves on) and
    ``record_daily_pnl(day, metadata)`` (a finished session)."""

    def record_decision(self, decision: DecisionRecord) -> None: ...

    def record_trade(self, row: dict[str, Any]) -> None: ...

    def record_equity(self, ts: datetime, equity: float) -> None: ...

    def record_event(self, ts: datetime, kind: str, message: str, data: dict | None = None) -> None: ...


class ExecutionLog:
    """In-memory ExecutionSink."""

    def __init__(self) -> None:
        self.decisions: list[DecisionRecord] = []
        self.trades: list[dict[str, Any]] = []
        self.equity: list[tuple[datetime, float]] = []
        self.events: list[tuple[datetime, str, str, dict]] = []
        self.open_trades: dict[str, dict[str, Any]] = {}

    def record_decision(self, decision: DecisionRecord) -> None:
        self.decisions.append(decision)

    def record_trade(self, row: dict[str, Any]) -> None:
        missing = [c for c in TRADE_COLUMNS if c not in row]
        if missing:
            raise ValueError(f"trade row lacks columns {missing}")
        self.trades.append(row)
        self.open_trades.pop(row.get("order_id"), None)

    def record_equity(self, ts: datetime, equity: float) -> None:
        self.equity.append((ts, equity))

    def record_open_trade(self, row: dict[str, Any]) -> None:
        """An entry fill: kept by order id until the round trip closes (not a trade yet)."""
        self.open_trades[row["order_id"]] = row

    def record_event(self, ts: datetime, kind: str, message: str, data: dict | None = None) -> None:
        self.events.append((ts, kind, message, data or {}))


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

    def record_equity(self, ts: datetime, equity: float) -> None:
        for s in self.sinks:
            s.record_equity(ts, equity)

    def record_event(self, ts: datetime, kind: str, message: str, data: dict | None = None) -> None:
        for s in self.sinks:
            s.record_event(ts, kind, message, data)

    def record_open_trade(self, row: dict[str, Any]) -> None:
        for s in self.sinks:
            fn = getattr(s, "record_open_trade", None)
            if fn is not None:
                fn(row)

    def get_open_trades(self) -> list:
        for s in self.sinks:
            fn = getattr(s, "get_open_trades", None)
            if fn is not None:
                return fn()
        return []

    def record_daily_pnl(self, day: Any, metadata: dict | None = None) -> Any:
        """Close a trading day in every sink that keeps daily rows (the journal); the first
        result is returned."""
        out = None
        for s in self.sinks:
            fn = getattr(s, "record_daily_pnl", None)
            if fn is not None:
                r = fn(day, metadata)
                out = r if out is None else out
        return out
