"""US-equity fee model for backtests: commission-free broker plus the regulatory fees that remain.

Alpaca (and IBKR Lite) charge no commission on US equities, but sells still pay the SEC fee
(Section 31: $27.80 per $1M of proceeds, rate effective 2024-05-22) and FINRA's Trading Activity
Fee ($0.000166 per share sold, capped at $8.30 per trade). Reporting zero fees overstates results,
so the backtest charges these. Rates are configuration, not constants baked into logic.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from nautilus_trader.backtest.models import FeeModel
from nautilus_trader.model.enums import InstrumentClass, OrderSide
from nautilus_trader.model.objects import Money

SEC_FEE_RATE = 27.80 / 1_000_000  # of sell proceeds
FINRA_TAF_PER_SHARE = 0.000166
FINRA_TAF_CAP = 8.30


def regulatory_fees(side: str, qty: float, price: float, *, sec_rate: float = SEC_FEE_RATE,
                    taf_per_share: float = FINRA_TAF_PER_SHARE, taf_cap: float = FINRA_TAF_CAP,
                    commission_per_share: float = 0.0, multiplier: float = 1.0) -> float:
    """Fees in USD for one fill, rounded to the cent (half up). Buys pay only commission. The
    SEC fee is on the proceeds (``qty × price × multiplier``), the TAF per unit sold. Computed in
    Decimal so that the backtest fee model and the Alpaca adapter give the same cents."""
    q, px, m = Decimal(str(qty)), Decimal(str(price)), Decimal(str(multiplier))
    fee = Decimal(str(commission_per_share)) * q
    if side == "sell":
        fee += q * px * m * Decimal(str(sec_rate)) + min(q * Decimal(str(taf_per_share)), Decimal(str(taf_cap)))
    return float(fee.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


class USEquityFeeModel(FeeModel):
    """Nautilus FeeModel charging `regulatory_fees` per equity fill and, for option contracts,
    the broker's per-contract fees (``options_pricing.option_fees``: Alpaca $0 commission plus
    $0.05 / $0.06 regulatory per contract bought / sold)."""

    def __init__(self, commission_per_share: float = 0.0, option_broker: str = "alpaca") -> None:
        super().__init__()
        self.commission_per_share = commission_per_share
        self.option_broker = option_broker

    def get_commission(self, order, fill_qty, fill_px, instrument):  # noqa: D401 (Nautilus API)
        side = "sell" if order.side == OrderSide.SELL else "buy"
        if instrument.instrument_class == InstrumentClass.OPTION:
            from strategies.trade_executor.options_pricing import option_fees

            fee = option_fees(self.option_broker if self.option_broker != "none" else "alpaca",
                              int(float(fill_qty)), side, float(fill_px)).total
            return Money(fee, instrument.quote_currency)
        fee = regulatory_fees(side, float(fill_qty), float(fill_px),
                              commission_per_share=self.commission_per_share)
        return Money(fee, instrument.quote_currency)
