"""What the executor core asks its shell to do, and what it needs to read from the engine.

``ExecutorCore`` (core.py) takes engine events as plain values and returns a list of commands;
the NautilusTrader strategy turns each command into an order, a cancel, a trading-state message
or a journal write, in the order given. ``EngineView`` is the small read-only port through which
the core sees what only the engine knows (the account balance, instruments, quotes, the state of
an order it sent, new client order ids). Plain Python: no NautilusTrader types cross it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal, Protocol

Side = Literal["BUY", "SELL"]
OrderType = Literal["market", "limit", "stop_market"]
TimeInForceName = Literal["DAY", "GTC", "IOC"]


@dataclass
class DecisionRecord:
    """One TradeSignal received and what became of it (a ``signal_decisions`` row)."""

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


# ── orders ──────────────────────────────────────────────────────────────────────────────────
@dataclass(frozen=True)
class SubmitOrder:
    order_id: str  # client order id, from EngineView.new_order_id()
    instrument: str  # e.g. "QQQ.XNAS"
    side: Side
    qty: int
    order_type: OrderType
    time_in_force: TimeInForceName
    limit_price: float | None = None  # limit orders (rounded to the tick by the shell)
    trigger_price: float | None = None  # stop orders
    reduce_only: bool = False
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class ResizeOrder:
    """A working (protective stop) order's quantity changes to ``qty``."""

    order_id: str
    qty: int


@dataclass(frozen=True)
class CancelOrder:
    order_id: str


@dataclass(frozen=True)
class SubscribeQuotes:
    """Follow this instrument's quotes (an option contract that was just bought)."""

    instrument: str


# ── state and alerts ────────────────────────────────────────────────────────────────────────
@dataclass(frozen=True)
class SetTradingState:
    """The RiskEngine's trading state: ACTIVE, REDUCING (exits only) or HALTED."""

    state: Literal["ACTIVE", "REDUCING", "HALTED"]
    reason: str


@dataclass(frozen=True)
class KillSwitchTripped:
    """Tell the operator (log, webhook) and, when ``persist``, latch it in executor_control."""

    at: datetime
    reason: str
    data: dict[str, Any]
    persist: bool


@dataclass(frozen=True)
class KillSwitchReset:
    at: datetime
    why: str
    by: str
    persist: bool


@dataclass(frozen=True)
class ScheduleEod:
    """An alert at the session's EOD cut-off (the shell calls ``ExecutorCore.on_eod``)."""

    at: datetime


@dataclass(frozen=True)
class Log:
    level: Literal["info", "warning", "error"]
    message: str


# ── journal ─────────────────────────────────────────────────────────────────────────────────
@dataclass(frozen=True)
class RecordDecision:
    record: DecisionRecord


@dataclass(frozen=True)
class RecordEvent:
    ts: datetime
    kind: str
    message: str
    data: dict[str, Any] | None = None


@dataclass(frozen=True)
class RecordTrade:
    """A closed round trip (``trade_executions`` row, status closed)."""

    row: dict[str, Any]


@dataclass(frozen=True)
class RecordOpenTrade:
    """An open position's row: durable before the core moves on (a restart takes it over)."""

    row: dict[str, Any]


@dataclass(frozen=True)
class RecordEquity:
    ts: datetime
    equity: float


@dataclass(frozen=True)
class RecordDailyPnl:
    day: date
    metadata: dict[str, Any]


Command = (SubmitOrder | ResizeOrder | CancelOrder | SubscribeQuotes | SetTradingState | KillSwitchTripped
           | KillSwitchReset | ScheduleEod | Log | RecordDecision | RecordEvent | RecordTrade | RecordOpenTrade
           | RecordEquity | RecordDailyPnl)


# ── the engine, as the core sees it ─────────────────────────────────────────────────────────
@dataclass(frozen=True)
class OrderView:
    is_open: bool  # working at the venue (accepted, triggered, partly filled, pending an update)
    is_pending_cancel: bool
    qty: int


class EngineView(Protocol):
    """Read-only engine state the core needs (the shell implements it over Nautilus' cache)."""

    def new_order_id(self) -> str: ...

    def balance(self) -> float: ...

    def broker_buying_power(self) -> float | None:
        """The buying power the broker last reported (live), or None (a simulated venue)."""
        ...

    def tick(self, instrument: str) -> float | None:
        """The instrument's price increment, or None when the venue does not list it."""
        ...

    def quote(self, instrument: str) -> tuple[float, float] | None:
        """(bid, ask) of the last quote, or None."""
        ...

    def order(self, order_id: str) -> OrderView | None: ...

    def held_qty(self, instrument: str) -> float:
        """What the venue's open positions hold of it (absolute quantity)."""
        ...

    def last_close_price(self, instrument: str) -> float | None:
        """The closing price of the venue's last closed position in it."""
        ...

    def control_mode(self) -> str | None:
        """The operator's instrument mode in executor_control, or None (not set / unreadable)."""
        ...

    def control_latch(self) -> Any:
        """The operator's kill-switch latch (``.active``, ``.reason``, ``.activated_at``), or None
        when there is no executor_control store or it cannot be read now."""
        ...


__all__ = [
    "CancelOrder",
    "Command",
    "DecisionRecord",
    "EngineView",
    "KillSwitchReset",
    "KillSwitchTripped",
    "Log",
    "OrderView",
    "RecordDailyPnl",
    "RecordDecision",
    "RecordEquity",
    "RecordEvent",
    "RecordOpenTrade",
    "RecordTrade",
    "ResizeOrder",
    "ScheduleEod",
    "SetTradingState",
    "SubmitOrder",
    "SubscribeQuotes",
]
