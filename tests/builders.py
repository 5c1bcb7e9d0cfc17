"""Builders of the core's values for tests: one place for a signal, a position, an account, a
routing decision, and an in-memory engine for ``ExecutorCore``.

Every builder takes keyword overrides of the dataclass' fields; the defaults describe one
ordinary case (a long QQQ 10-minute signal at 100 with a stop at 98 on 2025-07-01, 11:00 New York).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from strategies.trade_executor import (
    AccountState,
    InstrumentDecision,
    Position,
    SignalType,
    TradeSignal,
)
from strategies.trade_executor.commands import OrderView

UTC = timezone.utc
T0 = datetime(2025, 7, 1, 15, 0, tzinfo=UTC)  # Tuesday 11:00 New York, mid-session


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def _losing_side(entry: float, direction: str, risk: float) -> float:
    return entry - risk if direction == "long" else entry + risk


def signal(ticker: str = "QQQ", direction: str = "long", *, entry: float = 100.0, stop: float | None = None,
           target: float | None = None, conviction: int = 80, timeframe: str = "10m", ts: datetime = T0,
           volume_confirmed: bool | None = True, signal_type: SignalType | str | None = None,
           risk: float | None = None, **over: Any) -> TradeSignal:
    """A TradeSignal; the stop defaults to ``risk`` (a price distance) or else 2 % on the losing
    side of ``entry``."""
    if stop is None:
        stop = _losing_side(entry, direction, risk) if risk is not None else entry * (
            0.98 if direction == "long" else 1.02)
    if signal_type is None:
        signal_type = SignalType.CLOUD_CROSS_BULLISH if direction == "long" else SignalType.CLOUD_CROSS_BEARISH
    metadata = over.pop("metadata", {} if volume_confirmed is None else {"volume_confirmed": volume_confirmed})
    return TradeSignal(signal_type=signal_type, direction=direction, ticker=ticker, timeframe=timeframe,
                       conviction=conviction, entry_price=entry, stop_loss=stop, target_price=target,
                       cloud_states=over.pop("cloud_states", []), timestamp=ts, metadata=metadata, **over)


def position(ticker: str = "QQQ", direction: str = "long", *, price: float = 100.0, shares: int = 10,
             stop: float | None = None, entry_time: datetime = T0, risk: float | None = None,
             **over: Any) -> Position:
    """An open Position bought at ``price`` and marked there (``current=`` marks it elsewhere); the
    stop defaults to ``risk`` (a price distance) or else 10 % away."""
    if stop is None:
        stop = _losing_side(price, direction, risk) if risk is not None else price * (
            0.9 if direction == "long" else 1.1)
    return Position(ticker=ticker, direction=direction, entry_price=price, current_price=over.pop("current", price),
                    shares=shares, stop_loss=stop, target_price=over.pop("target_price", None),
                    entry_time=entry_time, signal_id=over.pop("signal_id", f"sig-{ticker}-{direction}"),
                    trade_type=over.pop("trade_type", "day"), **over)


def account(equity: float = 100_000.0, *, positions: list[Position] | None = None, **over: Any) -> AccountState:
    """An AccountState at the start of its day (daily P&L 0, Reg-T buying power 2x equity)."""
    return AccountState(equity=equity, cash=over.pop("cash", equity),
                        buying_power=over.pop("buying_power", 2 * equity), open_positions=positions or [],
                        daily_pnl=over.pop("daily_pnl", 0.0), daily_trades=over.pop("daily_trades", 0),
                        starting_equity=over.pop("starting_equity", equity), **over)


def stock_decision(ticker: str = "QQQ") -> InstrumentDecision:
    return InstrumentDecision(instrument_type="stock", ticker=ticker, original_signal_ticker=ticker,
                              leverage=1.0, is_inverse=False, etf_metadata=None)


@dataclass
class Latch:
    active: bool = False
    reason: str | None = None
    activated_at: datetime | None = None


@dataclass
class FakeEngine:
    """``commands.EngineView`` in memory: the engine state a core test sets up by hand.

    ``orders`` holds what the test says the venue has (``accept`` / ``cancel`` help); ids come
    from a counter like Nautilus' order factory ("O-1", "O-2", ...)."""

    cash: float = 100_000.0
    ticks: dict[str, float] = field(default_factory=lambda: {"QQQ.XNAS": 0.01, "SPY.XNAS": 0.01})
    quotes: dict[str, tuple[float, float]] = field(default_factory=dict)
    orders: dict[str, OrderView] = field(default_factory=dict)
    held: dict[str, float] = field(default_factory=dict)
    closed_px: dict[str, float] = field(default_factory=dict)
    latch: Latch | None = None
    mode: str | None = None  # the operator's instrument mode in executor_control
    bp: float | None = None  # the broker's reported buying power (None: a simulated venue)
    count: int = 0

    def new_order_id(self) -> str:
        self.count += 1
        return f"O-{self.count}"

    def balance(self) -> float:
        return self.cash

    def broker_buying_power(self) -> float | None:
        return self.bp

    def tick(self, instrument: str) -> float | None:
        return self.ticks.get(instrument)

    def quote(self, instrument: str) -> tuple[float, float] | None:
        return self.quotes.get(instrument)

    def order(self, order_id: str) -> OrderView | None:
        return self.orders.get(order_id)

    def held_qty(self, instrument: str) -> float:
        return self.held.get(instrument, 0.0)

    def last_close_price(self, instrument: str) -> float | None:
        return self.closed_px.get(instrument)

    def control_mode(self) -> str | None:
        return self.mode

    def control_latch(self) -> Latch | None:
        return self.latch

    # test helpers: the venue's side of an order's life
    def accept(self, order_id: str, qty: int) -> None:
        self.orders[order_id] = OrderView(is_open=True, is_pending_cancel=False, qty=qty)

    def close(self, order_id: str) -> None:
        self.orders[order_id] = OrderView(is_open=False, is_pending_cancel=False, qty=0)


__all__ = ["FakeEngine", "Latch", "T0", "UTC", "account", "position", "signal", "stock_decision", "utc"]
