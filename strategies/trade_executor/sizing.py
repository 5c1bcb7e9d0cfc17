"""Stock position sizing (PRD-135 "Position Sizing", core-contract.md).

    risk_amount   = equity x max_risk_per_trade
    raw_shares    = risk_amount / |entry - stop|          (loss at the stop == risk_amount)
    sized         = raw_shares x conviction multiplier    (1.0 for >= 75, 0.5 for 50-74, 0 below)
    exposure cap  = max_single_stock_exposure x equity / price
    buying power  = buying_power / (price x (1 + slippage_buffer))
    shares        = floor(min(sized, caps))

The stop distance is the signal's (|entry - stop|); ``price`` (default: the signal's entry) is
what the caps value the shares at. ``capped_by`` names the cap that bound, if any.
"""

from __future__ import annotations

import math

from strategies.trade_executor.models import (
    HIGH_CONVICTION,
    MEDIUM_CONVICTION,
    AccountState,
    ExecutorConfig,
    PositionSize,
    TradeSignal,
)

# Slack for float noise when flooring (e.g. 15000/150 computed as 99.99999999999999).
_FLOOR_EPS = 1e-9


def floor_shares(x: float) -> int:
    """Whole shares, rounding down, tolerant of float noise just below an integer."""
    if not math.isfinite(x) or x <= 0:
        return 0
    return int(math.floor(x + _FLOOR_EPS))


def conviction_multiplier(conviction: int) -> float:
    """1.0 for conviction >= 75, 0.5 for 50-74, 0.0 below 50 (not executed)."""
    if conviction >= HIGH_CONVICTION:
        return 1.0
    if conviction >= MEDIUM_CONVICTION:
        return 0.5
    return 0.0


def apply_caps(
    sized: float, caps: list[tuple[str, float]]
) -> tuple[int, str | None]:
    """floor(min(sized, caps)); the binding cap's name when a cap is below ``sized``.

    Caps are checked in the given order; on a tie the first one listed is named.
    """
    best = sized
    binding: str | None = None
    for name, cap in caps:
        if cap < best - 1e-12:
            best = cap
            binding = name
    return floor_shares(best), binding


class PositionSizer:
    """Shares of the signal ticker for a stock trade."""

    def __init__(self, config: ExecutorConfig | None = None) -> None:
        self.config = config if config is not None else ExecutorConfig()

    def calculate(
        self, signal: TradeSignal, account: AccountState, *, price: float | None = None
    ) -> PositionSize:
        cfg = self.config
        px = signal.entry_price if price is None else float(price)
        if not math.isfinite(px) or px <= 0:
            raise ValueError(f"price must be a positive finite number, got {price!r}")
        equity = float(account.equity)
        risk_amount = max(equity, 0.0) * cfg.max_risk_per_trade
        stop_distance = signal.stop_distance
        return size_from_risk(cfg, signal, account, risk_amount=risk_amount,
                              stop_per_share=stop_distance, price=px, exposure_per_share=px)


def size_from_risk(cfg: ExecutorConfig, signal: TradeSignal, account: AccountState, *, risk_amount: float,
                   stop_per_share: float, price: float, exposure_per_share: float) -> PositionSize:
    """Shared tail of every sizer: shares = risk ÷ loss per share at the stop, × the conviction
    multiplier, then capped by single-name exposure (measured per share at the underlying level:
    the price for a stock, |L| × price for a leveraged ETF) and by buying power."""
    raw = risk_amount / stop_per_share if stop_per_share > 0 else 0.0
    mult = conviction_multiplier(signal.conviction)
    if mult == 0.0:
        return PositionSize(
            shares=0, notional=0.0, risk_amount=risk_amount, conviction_multiplier=0.0,
            capped_by="low_conviction", raw_shares=raw, stop_distance=stop_per_share,
        )
    equity = max(float(account.equity), 0.0)
    caps = [
        ("single_stock_exposure", cfg.max_single_stock_exposure * equity / exposure_per_share),
        ("buying_power", max(account.buying_power, 0.0) / (price * (1.0 + cfg.slippage_buffer))),
    ]
    shares, capped_by = apply_caps(raw * mult, caps)
    return PositionSize(
        shares=shares,
        notional=shares * price,
        risk_amount=risk_amount,
        conviction_multiplier=mult,
        capped_by=capped_by,
        raw_shares=raw,
        stop_distance=stop_per_share,
    )


__all__ = ["PositionSizer", "apply_caps", "conviction_multiplier", "floor_shares", "size_from_risk"]
