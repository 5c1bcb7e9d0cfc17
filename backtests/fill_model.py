"""Fill model of the simulated venue.

NautilusTrader's stock FillModel with ``prob_slippage=1`` slips *every* fill by one tick on an L1
book, limit orders included, so a buy limit at 100.22 could fill at 100.23, a price the limit
forbids. This model keeps the deterministic one-tick slippage for orders that take liquidity
(market orders; triggered stop-market orders take the worse of trigger price and market, so
a bar that gaps or trades through the stop never fills it better than the market) and fills limit orders at their limit price or
better, never worse. Optionally a limit order gets at most ``limit_fill_cap`` shares per touch
of its price (a queue-position model), which produces partial fills.
"""

from __future__ import annotations

from nautilus_trader.backtest.models import FillModel
from nautilus_trader.model.book import OrderBook
from nautilus_trader.model.data import BookOrder
from nautilus_trader.model.enums import BookType, InstrumentClass, OrderSide, OrderType
from nautilus_trader.model.objects import Quantity

_TAKERS = (OrderType.MARKET, OrderType.STOP_MARKET, OrderType.MARKET_IF_TOUCHED)
_UNLIMITED = 10_000_000


class ExecutorFillModel(FillModel):
    def __init__(self, limit_fill_cap: int | None = None) -> None:
        super().__init__(prob_fill_on_limit=1.0, prob_slippage=0.0, random_seed=135)
        if limit_fill_cap is not None and int(limit_fill_cap) < 1:
            raise ValueError(f"limit_fill_cap must be >= 1 or None, got {limit_fill_cap!r}")
        self.limit_fill_cap = None if limit_fill_cap is None else int(limit_fill_cap)

    def get_orderbook_for_fill_simulation(self, instrument, order, best_bid, best_ask):
        if instrument.instrument_class == InstrumentClass.OPTION:
            return None  # options: the modelled quotes carry the spread; market orders take the touch
        tick = instrument.price_increment.as_double()
        book = OrderBook(instrument_id=instrument.id, book_type=BookType.L2_MBP)
        if order.order_type in _TAKERS:
            # nothing at the touch, everything one tick worse: one tick of adverse slippage
            book.add(BookOrder(OrderSide.BUY, instrument.make_price(best_bid.as_double() - tick), Quantity(_UNLIMITED, instrument.size_precision), 1), 0, 0)
            book.add(BookOrder(OrderSide.SELL, instrument.make_price(best_ask.as_double() + tick), Quantity(_UNLIMITED, instrument.size_precision), 2), 0, 0)
            return book
        if self.limit_fill_cap is not None and order.order_type == OrderType.LIMIT:
            # the touch yields at most `cap` shares, at the limit price
            size = Quantity(self.limit_fill_cap, instrument.size_precision)
            side = OrderSide.SELL if order.side == OrderSide.BUY else OrderSide.BUY
            book.add(BookOrder(side, order.price, size, 1), 0, 0)
            return book
        return None  # Nautilus' own logic: limits at their price, no slippage


__all__ = ["ExecutorFillModel"]
