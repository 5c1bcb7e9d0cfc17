"""Exit conditions for open positions (PRD-135 "Exit Strategies"): pure checks.

Nothing here reads the wall clock: time-dependent checks take ``now`` (engine time in backtests).

Priorities (seed order; 1 is highest):

    1 stop_loss            long: price <= stop; short: price >= stop; or (bars with macro_upper /
                           macro_lower given) the underlying's last close beyond the macro (34/50)
                           cloud against the position (seed: "price closes below macro cloud")
    2 momentum_exhaustion  >= 3 consecutive most-recent closes outside the fast (5/12) cloud on the
                           position's profit side, candles all of the move's colour
    3 cloud_flip           the fast cloud's direction opposes the position
    4 profit_target        target_price, or entry +/- reward_to_risk_target x |entry - stop|
    5 time_stop            day trades: open > time_stop_minutes and price not better than entry
    6 eod_close            day trades and scalps: at/after eod_close_time ET (regular days) or
                           session close - eod_minutes_before_close (early closes); also after
                           the session close or on a later date than the entry
    7 trailing_stop        swing trades: last close beyond the pullback (8/9) cloud, against the
                           position
    8 max_hold             leveraged ETFs: trading days held > max hold days for the leverage

Two frames of reference:

* stop_loss, profit_target, time_stop compare the *traded instrument's* price (the position's
  own ``current_price`` / levels) in the position's own direction.
* momentum_exhaustion, cloud_flip and trailing_stop read ``bars`` / ``cloud_states`` of the
  position's *underlying* (the signal ticker, where the EMA clouds are computed), so the
  position's direction is translated into the underlying: a long SQQQ position (leverage -3) is
  short QQQ; a long put (negative delta) is short its underlying. Pass ``on_underlying=False``
  when the bars/clouds are of the traded instrument itself.

``bars``: a sequence of mappings (dicts), oldest first, or a pandas DataFrame, with columns
``open, high, low, close, fast_upper, fast_lower, pullback_upper, pullback_lower`` (cloud edges:
upper = max(short EMA, long EMA), lower = min). The trailing-stop columns follow
``config.trailing_stop_cloud`` (``"pullback"`` -> ``pullback_upper`` / ``pullback_lower``).
Missing columns raise ValueError naming the column; NaN values (EMA warm-up) never fire.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from strategies.trade_executor.calendar import MarketCalendar
from strategies.trade_executor.etf_sizer import max_hold_days_for
from strategies.trade_executor.models import CloudState, ExecutorConfig, Position
from strategies.trade_executor.timeutil import aware, parse_hhmm

EXIT_PRIORITY: dict[str, int] = {
    "stop_loss": 1,
    "momentum_exhaustion": 2,
    "cloud_flip": 3,
    "profit_target": 4,
    "time_stop": 5,
    "eod_close": 6,
    "trailing_stop": 7,
    "max_hold": 8,
}

BAR_COLUMNS: tuple[str, ...] = (
    "open", "high", "low", "close", "fast_upper", "fast_lower", "pullback_upper", "pullback_lower",
)


@dataclass
class ExitDecision:
    reason: str  # the highest-priority exit code that fired
    fired: list[str]  # every exit code that fired, by priority
    priority: int  # EXIT_PRIORITY[reason]
    details: dict[str, Any] = field(default_factory=dict)


def _tail(bars: Any, n: int) -> list[Mapping[str, Any]]:
    """The last ``n`` bars as mappings (DataFrame rows or the sequence's items)."""
    if bars is None:
        return []
    if hasattr(bars, "columns") and hasattr(bars, "tail"):  # pandas DataFrame, without importing it
        return list(bars.tail(n).to_dict("records"))
    if isinstance(bars, Sequence):
        return list(bars[-n:]) if n > 0 else []
    return list(bars)[-n:]


def _num(bar: Mapping[str, Any], col: str) -> float:
    try:
        v = bar[col]
    except (KeyError, TypeError):
        raise ValueError(f"bars: missing column {col!r}") from None
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


class ExitMonitor:
    def __init__(
        self,
        config: ExecutorConfig | None = None,
        broker: Any = None,
        calendar: MarketCalendar | None = None,
        *,
        exhaustion_bars: int = 3,
    ) -> None:
        self.config = config if config is not None else ExecutorConfig()
        self.broker = broker  # not used by the pure checks; kept for the seed's signature
        self._calendar = calendar
        if exhaustion_bars < 1:
            raise ValueError(f"exhaustion_bars must be >= 1, got {exhaustion_bars!r}")
        self.exhaustion_bars = exhaustion_bars
        self._eod_time = parse_hhmm(self.config.eod_close_time, "eod_close_time")

    @property
    def calendar(self) -> MarketCalendar:
        if self._calendar is None:
            self._calendar = MarketCalendar(self.config.calendar)
        return self._calendar

    # ── helpers ──────────────────────────────────────────────────────────────────────────────
    @staticmethod
    def underlying_direction(position: Position) -> int:
        """+1 when the position gains as its underlying rises, -1 otherwise."""
        sign = position.sign
        if position.instrument_type == "option" and position.delta:
            return sign * (1 if position.delta > 0 else -1)
        return sign * (1 if position.leverage >= 0 else -1)

    def _frame_direction(self, position: Position, on_underlying: bool) -> int:
        return self.underlying_direction(position) if on_underlying else position.sign

    def target_price(self, position: Position) -> float:
        """target_price, or entry +/- reward_to_risk_target x |entry - stop|."""
        if position.target_price is not None:
            return float(position.target_price)
        risk = abs(position.entry_price - position.stop_loss)
        return position.entry_price + position.sign * self.config.reward_to_risk_target * risk

    # ── price exits ──────────────────────────────────────────────────────────────────────────
    def check_stop_loss(self, position: Position, current_price: float) -> bool:
        if position.direction == "long":
            return current_price <= position.stop_loss
        return current_price >= position.stop_loss

    def check_profit_target(self, position: Position, current_price: float) -> bool:
        target = self.target_price(position)
        if position.direction == "long":
            return current_price >= target
        return current_price <= target

    def check_time_stop(
        self, position: Position, *, now: datetime, current_price: float | None = None
    ) -> bool:
        """Day trades open longer than time_stop_minutes whose price is not better than entry."""
        if position.trade_type != "day":
            return False
        now = aware(now, "now")
        entry = aware(position.entry_time, "position.entry_time")
        if now - entry <= timedelta(minutes=self.config.time_stop_minutes):
            return False
        px = position.current_price if current_price is None else current_price
        if position.direction == "long":
            return px <= position.entry_price
        return px >= position.entry_price

    # ── time exits ───────────────────────────────────────────────────────────────────────────
    def eod_cutoff(self, now: datetime) -> datetime | None:
        """The EOD forced-close instant of ``now``'s session (None on a non-session day)."""
        return self.calendar.eod_close_for(now, self._eod_time, self.config.eod_minutes_before_close)

    def check_eod_close(self, position: Position, *, now: datetime) -> bool:
        """Day trades and scalps: close by the EOD cutoff; never carry them into another day."""
        if position.trade_type not in ("day", "scalp"):
            return False
        now = aware(now, "now")
        entry = aware(position.entry_time, "position.entry_time")
        if self.calendar.session_date(now) > self.calendar.session_date(entry):
            return True
        session = self.calendar.session_for(now)
        if session is None:
            return True  # no session today: a day trade has nothing left to wait for
        if now >= session[1]:
            return True
        cutoff = self.eod_cutoff(now)
        return cutoff is not None and now >= cutoff

    def trading_days_held(self, position: Position, *, now: datetime) -> int:
        """Sessions after the entry's session up to and including ``now``'s (session labels)."""
        aware(now, "now")
        aware(position.entry_time, "position.entry_time")
        return self.calendar.trading_days_between(position.entry_time, now)

    def max_hold_days(self, position: Position) -> int | None:
        if position.instrument_type != "leveraged_etf":
            return None
        return max_hold_days_for(position.leverage, self.config)

    def max_hold_exceeded(self, position: Position, *, now: datetime) -> bool:
        """Leveraged ETFs: trading days held > max hold days (3x: 5, 2x: 10, 1.5x: 15)."""
        limit = self.max_hold_days(position)
        if limit is None:
            return False
        return self.trading_days_held(position, now=now) > limit

    # ── cloud / bar exits ────────────────────────────────────────────────────────────────────
    def check_momentum_exhaustion(
        self, position: Position, bars: Any, *, on_underlying: bool = True
    ) -> bool:
        """The last ``exhaustion_bars`` (3) closes are all outside the fast cloud on the profit
        side (above fast_upper for a long, below fast_lower for a short) and all candles have the
        move's colour (close > open for a long, close < open for a short)."""
        n = self.exhaustion_bars
        tail = _tail(bars, n)
        if len(tail) < n:
            return False
        d = self._frame_direction(position, on_underlying)
        for bar in tail:
            o, c = _num(bar, "open"), _num(bar, "close")
            if d > 0:
                edge = _num(bar, "fast_upper")
                if not (c > edge and c > o):
                    return False
            else:
                edge = _num(bar, "fast_lower")
                if not (c < edge and c < o):
                    return False
        return True

    def check_cloud_flip(
        self,
        position: Position,
        cloud_states: Sequence[CloudState] | Mapping[str, CloudState] | None,
        *,
        on_underlying: bool = True,
        cloud: str = "fast",
    ) -> bool:
        """The fast (5/12) cloud points against the position (bearish for a long, bullish for a
        short). No fast cloud in ``cloud_states`` -> False."""
        if not cloud_states:
            return False
        if isinstance(cloud_states, Mapping):
            state = cloud_states.get(cloud)
        else:
            state = next((c for c in cloud_states if c.name == cloud), None)
        if state is None:
            return False
        d = self._frame_direction(position, on_underlying)
        return (not state.is_bullish) if d > 0 else bool(state.is_bullish)

    def check_trailing_stop(
        self, position: Position, bars: Any, *, on_underlying: bool = True
    ) -> bool:
        """Swing trades: the last close is beyond the trailing (pullback 8/9) cloud against the
        position: below its lower edge for a long, above its upper edge for a short."""
        if position.trade_type != "swing":
            return False
        tail = _tail(bars, 1)
        if not tail:
            return False
        bar = tail[-1]
        name = self.config.trailing_stop_cloud
        c = _num(bar, "close")
        if self._frame_direction(position, on_underlying) > 0:
            return c < _num(bar, f"{name}_lower")
        return c > _num(bar, f"{name}_upper")

    def check_macro_stop(self, position: Position, bars: Any, *, on_underlying: bool = True) -> bool:
        """The last close is beyond the macro (34/50) cloud against the position: below its lower
        edge for a long, above its upper edge for a short. Needs ``macro_lower`` / ``macro_upper``
        in the bars (skipped when the bars do not carry them)."""
        tail = _tail(bars, 1)
        if not tail or "macro_lower" not in tail[-1] or "macro_upper" not in tail[-1]:
            return False
        bar = tail[-1]
        c = _num(bar, "close")
        if self._frame_direction(position, on_underlying) > 0:
            return c < _num(bar, "macro_lower")
        return c > _num(bar, "macro_upper")

    # ── all together ─────────────────────────────────────────────────────────────────────────
    def evaluate(
        self,
        position: Position,
        *,
        current_price: float,
        now: datetime,
        bars: Any = None,
        cloud_states: Sequence[CloudState] | Mapping[str, CloudState] | None = None,
        on_underlying: bool = True,
    ) -> ExitDecision | None:
        """Every check; the highest-priority one that fired, or None. Bar/cloud checks are
        skipped when ``bars`` / ``cloud_states`` are not given."""
        fired: list[str] = []
        if self.check_stop_loss(position, current_price) or (
                bars is not None and self.check_macro_stop(position, bars, on_underlying=on_underlying)):
            fired.append("stop_loss")
        if bars is not None and self.check_momentum_exhaustion(
                position, bars, on_underlying=on_underlying):
            fired.append("momentum_exhaustion")
        if cloud_states is not None and self.check_cloud_flip(
                position, cloud_states, on_underlying=on_underlying):
            fired.append("cloud_flip")
        if self.check_profit_target(position, current_price):
            fired.append("profit_target")
        if self.check_time_stop(position, now=now, current_price=current_price):
            fired.append("time_stop")
        if self.check_eod_close(position, now=now):
            fired.append("eod_close")
        if bars is not None and self.check_trailing_stop(
                position, bars, on_underlying=on_underlying):
            fired.append("trailing_stop")
        if self.max_hold_exceeded(position, now=now):
            fired.append("max_hold")
        if not fired:
            return None
        fired.sort(key=EXIT_PRIORITY.__getitem__)
        reason = fired[0]
        details: dict[str, Any] = {
            "current_price": current_price,
            "now": now.isoformat(),
            "stop_loss": position.stop_loss,
            "target_price": self.target_price(position),
            "entry_price": position.entry_price,
        }
        return ExitDecision(reason=reason, fired=fired, priority=EXIT_PRIORITY[reason],
                            details=details)


__all__ = ["BAR_COLUMNS", "EXIT_PRIORITY", "ExitDecision", "ExitMonitor"]
