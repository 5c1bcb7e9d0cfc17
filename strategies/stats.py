"""Trading statistics: the one P&L formula and the performance figures built on it.

Pure functions over plain sequences (no I/O, no clock); used by the executor strategy (round-trip
P&L), the journal (daily summary, unrealized P&L), the backtest report (summary.json) and the mode
comparison. Plain Python float arithmetic in a fixed order, so a figure computed here is bit for bit
the figure every caller reports.

P&L
---
* ``round_trip_pnl(entry, exit, qty, direction, multiplier, fees)`` =
  ``(exit - entry) x qty x sign x multiplier - fees`` (sign +1 long, -1 short). Also the mark-to-market
  P&L of an open position (``exit`` = the last price, ``fees`` = 0).
* ``pnl_pct(pnl, entry, qty, multiplier)``: P&L over the entry cost ``entry x qty x multiplier``
  (a fraction; 0 when the cost is 0).
* ``trade_return(entry, exit, direction)``: ``sign x (exit / entry - 1)``, the price return of a trade.

Equity curve
------------
* ``max_drawdown(equity)`` -> ``Drawdown(amount, pct)``: ``amount`` the largest peak-to-trough fall
  (currency, >= 0), ``pct`` the largest fall relative to the peak it fell from (a fraction, >= 0;
  ``1 - trough / peak``, peaks <= 0 ignored). Both 0 for an empty or never-falling series.
* ``drawdown_series(equity)``: ``equity / running peak - 1`` at every point (<= 0).
* ``simple_returns(equity)``: ``b / a - 1`` of consecutive points (pairs with ``a <= 0`` skipped).
* ``sharpe(returns, periods)``: ``mean / sample std x sqrt(periods)`` (risk-free 0); None with fewer
  than 2 returns or no variance. ``sharpe_of_equity(equity, periods)`` = ``sharpe(simple_returns(...))``.
* ``sortino(returns, periods)``: ``mean / downside deviation x sqrt(periods)``, the downside deviation
  being ``sqrt(mean(min(r, 0)^2))`` over all returns (target 0); None with fewer than 2 returns or
  no negative return.

Trades (a sequence of closed trades' P&L)
-----------------------------------------
* ``win_rate(pnls)``: share of trades with P&L > 0 (a flat trade is no win); None without trades.
* ``profit_factor(pnls)``: gross profit / gross loss; None without a losing trade.
* ``expectancy(pnls)``: mean P&L per trade; None without trades.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import NamedTuple

TRADING_DAYS_PER_YEAR = 252


def direction_sign(direction: str | int | float) -> int:
    """+1 for ``"long"`` (or a positive number), -1 for ``"short"`` (or a negative number)."""
    if isinstance(direction, str):
        if direction == "long":
            return 1
        if direction == "short":
            return -1
        raise ValueError(f"direction must be 'long' or 'short', got {direction!r}")
    if direction > 0:
        return 1
    if direction < 0:
        return -1
    raise ValueError(f"direction must be 'long'/'short' or a non-zero sign, got {direction!r}")


# ── P&L ───────────────────────────────────────────────────────────────────────────────────────


def round_trip_pnl(entry_price: float, exit_price: float, qty: float, direction: str | int = "long",
                   multiplier: float = 1.0, fees: float = 0.0) -> float:
    """``(exit - entry) x qty x sign x multiplier - fees`` (the module docstring)."""
    return (exit_price - entry_price) * qty * direction_sign(direction) * multiplier - fees


def pnl_pct(pnl: float, entry_price: float, qty: float, multiplier: float = 1.0) -> float:
    """``pnl`` over the entry cost ``entry x qty x multiplier``; 0.0 when that cost is 0."""
    cost = entry_price * qty * multiplier
    return pnl / cost if cost else 0.0


def trade_return(entry_price: float, exit_price: float, direction: str | int = "long") -> float:
    """``sign x (exit / entry - 1)``: the trade's price return (a fraction)."""
    return direction_sign(direction) * (exit_price / entry_price - 1.0)


# ── equity curve ──────────────────────────────────────────────────────────────────────────────


class Drawdown(NamedTuple):
    amount: float  # largest peak-to-trough fall, in currency (>= 0)
    pct: float  # largest fall relative to its peak, a fraction (>= 0)


def max_drawdown(equity: Iterable[float]) -> Drawdown:
    """Largest fall in currency and largest fall relative to its peak (module docstring)."""
    peak = -math.inf
    amount, pct = 0.0, 0.0
    for v in equity:
        if v > peak:
            peak = v
        fall = peak - v
        if fall > amount:
            amount = fall
        if peak > 0:
            rel = 1.0 - v / peak
            if rel > pct:
                pct = rel
    return Drawdown(amount, pct)


def drawdown_series(equity: Iterable[float]) -> list[float]:
    """``v / running peak - 1`` for every point (0 while the peak is <= 0)."""
    peak = -math.inf
    out = []
    for v in equity:
        peak = max(peak, v)
        out.append(v / peak - 1.0 if peak > 0 else 0.0)
    return out


def simple_returns(equity: Sequence[float]) -> list[float]:
    """``b / a - 1`` of consecutive equity points, skipping pairs whose first point is <= 0."""
    return [b / a - 1.0 for a, b in zip(equity, equity[1:]) if a > 0]


def _mean(xs: Sequence[float]) -> float:
    return sum(xs) / len(xs)


def sharpe(returns: Sequence[float], periods: float = TRADING_DAYS_PER_YEAR) -> float | None:
    """Annualised Sharpe ratio of per-period ``returns`` (risk-free 0, sample standard deviation);
    None with fewer than 2 returns or no variance."""
    if len(returns) < 2:
        return None
    mean = _mean(returns)
    var = sum((r - mean) ** 2 for r in returns) / (len(returns) - 1)
    if var <= 0:
        return None
    return mean / math.sqrt(var) * math.sqrt(periods)


def sharpe_of_equity(equity: Sequence[float], periods: float = TRADING_DAYS_PER_YEAR) -> float | None:
    """``sharpe(simple_returns(equity), periods)`` (one equity point per period)."""
    return sharpe(simple_returns(equity), periods)


def sortino(returns: Sequence[float], periods: float = TRADING_DAYS_PER_YEAR) -> float | None:
    """Annualised Sortino ratio (target 0): mean over the downside deviation
    ``sqrt(sum(min(r, 0)^2) / n)``; None with fewer than 2 returns or no negative return."""
    if len(returns) < 2:
        return None
    down = sum(min(r, 0.0) ** 2 for r in returns) / len(returns)
    if down <= 0:
        return None
    return _mean(returns) / math.sqrt(down) * math.sqrt(periods)


# ── trades ────────────────────────────────────────────────────────────────────────────────────


def win_rate(pnls: Sequence[float]) -> float | None:
    """Share of trades with P&L > 0; None without trades."""
    if not pnls:
        return None
    return sum(1 for p in pnls if p > 0) / len(pnls)


def profit_factor(pnls: Sequence[float]) -> float | None:
    """Gross profit / gross loss (both positive); None without a losing trade."""
    profit = math.fsum(p for p in pnls if p > 0)
    loss = -math.fsum(p for p in pnls if p < 0)
    if loss <= 0:
        return None
    return profit / loss


def expectancy(pnls: Sequence[float]) -> float | None:
    """Mean P&L per trade; None without trades."""
    if not pnls:
        return None
    return math.fsum(pnls) / len(pnls)


__all__ = [
    "TRADING_DAYS_PER_YEAR",
    "Drawdown",
    "direction_sign",
    "drawdown_series",
    "expectancy",
    "max_drawdown",
    "pnl_pct",
    "profit_factor",
    "round_trip_pnl",
    "sharpe",
    "sharpe_of_equity",
    "simple_returns",
    "sortino",
    "trade_return",
    "win_rate",
]
