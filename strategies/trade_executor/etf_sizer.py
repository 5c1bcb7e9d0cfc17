"""Leveraged-ETF position sizing (core-contract.md, not the seed's literal step 3).

A fund with daily leverage L moves L x d when its underlying moves d (intraday, from the
previous close; domain-facts §2). With d = |entry - stop| / entry of the *signal* (underlying),
the fund's stop sits |L| x d away from its price, so

    risk_amount         = equity x max_risk_per_trade
    stop per ETF share  = etf_price x |L| x d
    raw_shares          = risk_amount / (etf_price x |L| x d)    -> loss at the stop == risk_amount
    sized               = raw_shares x conviction multiplier
    exposure cap        = |L| x etf_price x shares <= max_single_stock_exposure x equity
    buying power cap    = buying_power / (etf_price x (1 + slippage_buffer))
    shares              = floor(min(sized, caps))

(The seed's step 3, ``stop_distance / L``, would put L^2 times the budget at risk.)
"""

from __future__ import annotations

import math

from strategies.trade_executor.models import (
    AccountState,
    ETFSelection,
    ExecutorConfig,
    PositionSize,
    TradeSignal,
)
from strategies.trade_executor.sizing import size_from_risk


class LeveragedETFSizer:
    def __init__(self, config: ExecutorConfig | None = None) -> None:
        self.config = config if config is not None else ExecutorConfig()

    def calculate(
        self,
        signal: TradeSignal,
        etf: ETFSelection,
        account: AccountState,
        *,
        etf_price: float,
    ) -> PositionSize:
        """Shares of ``etf`` (bull or inverse fund, always bought) for ``signal``.

        ``etf.leverage`` may be given signed or unsigned; its magnitude is used.
        """
        if etf is None:
            raise ValueError("etf: no ETF selected for this signal")
        lev = abs(float(etf.leverage))
        if not math.isfinite(lev) or lev <= 0:
            raise ValueError(f"etf.leverage must be a non-zero number, got {etf.leverage!r}")
        if etf_price is None or not math.isfinite(float(etf_price)) or float(etf_price) <= 0:
            raise ValueError(f"etf_price must be a positive finite number, got {etf_price!r}")
        px = float(etf_price)
        cfg = self.config
        equity = max(float(account.equity), 0.0)
        risk_amount = equity * cfg.max_risk_per_trade
        d = signal.stop_distance / signal.entry_price  # fractional stop distance of the underlying
        stop_per_share = px * lev * d
        # a 1-share move in the fund counts |L| times toward the underlying's exposure
        return size_from_risk(cfg, signal, account, risk_amount=risk_amount, stop_per_share=stop_per_share,
                              price=px, exposure_per_share=lev * px)

    def max_hold_days(self, leverage: float) -> int | None:
        """Max holding period (trading days) for a fund of this leverage (sign ignored).

        |L| >= 3 -> max_etf_hold_days_3x (5), >= 2 -> max_etf_hold_days_2x (10), >= 1.5 -> 15,
        below 1.5 -> None (no limit).
        """
        return max_hold_days_for(leverage, self.config)


def max_hold_days_for(leverage: float, config: ExecutorConfig | None = None) -> int | None:
    cfg = config if config is not None else ExecutorConfig()
    lev = abs(float(leverage))
    if lev >= 3:
        return cfg.max_etf_hold_days_3x
    if lev >= 2:
        return cfg.max_etf_hold_days_2x
    if lev >= 1.5:
        return 15
    return None


__all__ = ["LeveragedETFSizer", "max_hold_days_for"]
