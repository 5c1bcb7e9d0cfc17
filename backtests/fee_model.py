"""The simulated venue's fee model: NautilusTrader's ``FeeModel`` charging the project's one fee
function, ``adapters.fees.fill_fees``, by the fill's New York trade date (the same function the
Alpaca adapter charges live fills with)."""

from __future__ import annotations

from typing import Any

from nautilus_trader.backtest.models import FeeModel
from nautilus_trader.model.enums import InstrumentClass, OrderSide
from nautilus_trader.model.objects import Money

from adapters.fees import FEE_SCHEDULE, FeeSchedule, fill_fees, option_broker_name, trade_date_of


class USEquityFeeModel(FeeModel):
    """Charges ``fill_fees`` on each backtest fill, by the fill's trade date: equities
    ``equity_fees`` (SEC + FINRA TAF on sells, plus ``commission_per_share``); option contracts
    the per-contract schedule of ``option_broker`` ("alpaca": ``option_fees_alpaca``; "ibkr":
    ``option_fees_ibkr``).

    Nautilus calls ``get_commission`` without a timestamp, so the fill time is read from
    ``clock`` (the backtest runner passes ``engine.kernel.clock``, whose time is the event being
    matched). Without a clock, ``order.ts_last`` (the order's last event before this fill) is
    used: right for orders that fill the day they are accepted, possibly a day early for a
    resting order. The time is converted to the New York date."""

    def __init__(self, commission_per_share: float = 0.0, option_broker: str = "alpaca",
                 clock: Any = None, schedule: FeeSchedule = FEE_SCHEDULE) -> None:
        super().__init__()
        self.commission_per_share = commission_per_share
        self.option_broker = option_broker_name(option_broker)
        self.clock = clock
        self.schedule = schedule

    def fill_time_ns(self, order) -> int:
        return int(self.clock.timestamp_ns()) if self.clock is not None else int(order.ts_last)

    def get_commission(self, order, fill_qty, fill_px, instrument):  # noqa: D401 (Nautilus API)
        side = "sell" if order.side == OrderSide.SELL else "buy"
        fee = fill_fees(side, fill_qty.as_decimal(), fill_px.as_decimal(),
                        trade_date_of(self.fill_time_ns(order)),
                        option=instrument.instrument_class == InstrumentClass.OPTION,
                        option_broker=self.option_broker,
                        multiplier=instrument.multiplier.as_decimal(),
                        commission_per_share=self.commission_per_share, schedule=self.schedule)
        return Money(fee, instrument.quote_currency)


__all__ = ["USEquityFeeModel"]
