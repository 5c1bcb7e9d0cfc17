"""Alpaca's fees on a fill: the venue's use of the project's dated fee schedule.

Alpaca charges no commission; every fill pays the regulatory pass-throughs in force on the New
York date of the fill: equities the SEC fee + FINRA TAF on sells ($0 on buys); options Alpaca's
per-contract pass-throughs (ORF + OCC both sides, options TAF + SEC fee on proceeds on sells).

The rates and the formula are ``adapters.fees`` (the venues' dated schedule, standard library
only), the same function the backtest's fee model charges, so a fill costs the same cents live
and in a backtest.
"""

from __future__ import annotations

from decimal import Decimal

from nautilus_trader.model.enums import OrderSide
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.model.instruments import Instrument, OptionContract

from adapters.fees import fill_fees, trade_date_of  # the dated fee schedule (pure)

from .parsing import is_option_symbol

CENT = Decimal("0.01")
OPTION_MULTIPLIER = Decimal(100)


def is_option(instrument: Instrument | None, iid: InstrumentId | None = None) -> bool:
    """An ``OptionContract``, an instrument with a multiplier other than 1, or (instrument not
    loaded) an OCC option symbol."""
    if instrument is not None:
        return isinstance(instrument, OptionContract) or instrument.multiplier.as_decimal() != 1
    return iid is not None and is_option_symbol(iid.symbol.value)


def fill_commission(side: OrderSide, qty: Decimal, px: Decimal, ts_event: int,
                    instrument: Instrument | None, iid: InstrumentId | None = None) -> Decimal:
    """Commission of one Alpaca fill in USD (cents): ``adapters.fees.fill_fees`` — the same
    function as the backtest fee model — on the New York date of ``ts_event`` (the fill's time,
    epoch ns). Options pay Alpaca's per-contract schedule (``is_option``), everything else the
    equity one."""
    mult = instrument.multiplier.as_decimal() if instrument is not None else None
    option = is_option(instrument, iid)
    fee = fill_fees("sell" if side == OrderSide.SELL else "buy", qty, px, trade_date_of(ts_event),
                    option=option, option_broker="alpaca",
                    multiplier=mult if option and mult is not None and mult != 1 else OPTION_MULTIPLIER)
    return Decimal(str(fee)).quantize(CENT)


__all__ = ["fill_commission", "is_option"]
