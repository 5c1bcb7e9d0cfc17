"""Fill model of the simulated venue.

NautilusTrader's stock FillModel with ``prob_slippage=1`` slips *every* fill by one tick on an L1
book, limit orders included, so a buy limit at 100.22 could fill at 100.23, a price the limit
forbids. This model keeps the deterministic one-tick slippage for orders that take liquidity and
fills limit orders at their limit price or better, never worse. Optionally a limit order gets at
most ``limit_fill_cap`` shares per touch of its price (a queue-position model), which produces
partial fills.

How Nautilus 1.231 executes on bars (read in ``backtest/engine.pyx``, checked by
tests/test_fill_model.py), with this project's venue (``bar_execution=True``, L1 book,
``bar_adaptive_high_low_ordering=False``, ``use_message_queue=True``, ``reject_stop_orders=False``
(backtests.runner), no latency model):

* ``BacktestEngine._run`` per data point: advance the clocks to the bar's ``ts_init`` (its close
  time; timers before it fire first, each followed by a venue settle at the timer's time), then
  ``SimulatedExchange.process_bar`` (the matching engine), *then* the data engine (actors and
  strategies see the bar: ``on_bar``), then ``_process_and_settle_venues`` (queued order commands
  are processed against the bar's close, looping while fills enqueue more commands).
* ``process_bar`` turns the bar into trade points, always in the order Open, High, Low, Close (a
  point equal to the previous one is skipped; the adaptive O,L,H,C order is off), and after each
  point matches the resting orders (limits fill when the point crosses them, stops trigger).
* Order commands are queued, so an order submitted while a bar is being processed (from
  ``on_order_filled`` of a fill at one of its points, or from ``on_bar``) reaches the venue after
  the bar's Close point: the bar's remaining points never see it. A stop already beyond the close
  then is rejected (``reject_stop_orders``); otherwise it rests and the *next* bar triggers it.
  Orders submitted from a timer inside the minute are settled at the timer's time and rest
  through the whole bar that closes the minute; so do orders sent for one symbol while another
  symbol's bar of the same minute is processed.

Without help, on those points a triggered stop fills at the point's price (the bar's extreme),
and a resting limit at its limit even when the bar opened through it. So the model is given the
engine's clock (``set_clock``; ``clock.timestamp_ns()`` is the ``ts_init`` of the bar being
processed) and each instrument's bars (``set_bars``: close timestamps and opens as numpy arrays;
the current bar is found with ``np.searchsorted``). With both, for the bar whose close time is now:

* a LIMIT order resting at the venue (filled as maker) that was sent before the bar began
  (``ts_init <= bar close - interval + 1 ms``) fills at the better of its limit and the bar's open (buy:
  ``min(limit, open)``; a bar opening through the limit fills at the open); a limit sent during
  the bar fills at its limit. Never worse than the limit. A limit marketable on arrival (taker)
  fills at the touch (Nautilus' own logic; with ``limit_fill_cap`` the cap does not apply to it).
* a triggered STOP_MARKET fills at its trigger one tick worse (sell: ``trigger - tick``), unless it
  rested from before the bar and the bar *opened* beyond the trigger (sell: ``open <= trigger``),
  a gap: then at the open one tick worse. A stop sent during the bar always fills at the trigger
  one tick worse (it was placed while the market was on the safe side of it), also when it
  arrives after the bar's close already beyond the trigger -- provided the bar traded at the
  trigger (its [low, high] holds it; ``set_bars_from`` registers the range): a stop sent during a
  bar that never traded at its trigger was in the market when it was sent and fills at the market
  (e.g. a short entry filled above the signal's stop), never at a price the bar did not have.

Market orders (and stops when there is no clock, no bars for the instrument or no bar closing
now, or a stop filled on arrival) fill one tick worse than the market: the simulated book holds
nothing at the touch. Options are left to Nautilus (their modelled quotes carry the spread).
"""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np
from nautilus_trader.backtest.models import FillModel
from nautilus_trader.model.book import OrderBook
from nautilus_trader.model.data import BookOrder
from nautilus_trader.model.enums import BookType, InstrumentClass, LiquiditySide, OrderSide, OrderStatus, OrderType
from nautilus_trader.model.objects import Quantity

_TAKERS = (OrderType.MARKET, OrderType.STOP_MARKET, OrderType.MARKET_IF_TOUCHED)
_UNLIMITED = 10_000_000
ONE_MINUTE_NS = 60_000_000_000
BAR_START_GRACE_NS = 1_000_000  # 1 ms: the executor's decision steps run 1-2 ns after a bar


class ExecutorFillModel(FillModel):
    def __init__(self, limit_fill_cap: int | None = None, clock: Any = None) -> None:
        super().__init__(prob_fill_on_limit=1.0, prob_slippage=0.0, random_seed=135)
        if limit_fill_cap is not None and int(limit_fill_cap) < 1:
            raise ValueError(f"limit_fill_cap must be >= 1 or None, got {limit_fill_cap!r}")
        self.limit_fill_cap = None if limit_fill_cap is None else int(limit_fill_cap)
        self._clock = clock
        # instrument id -> (bar close ts int64 sorted, bar open float64, bar interval ns)
        self._bars: dict[str, tuple[np.ndarray, np.ndarray, int]] = {}
        # instrument id -> (bar low, bar high), aligned with _bars (optional)
        self._ranges: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    @staticmethod
    def _rested_before(order, ts_close: int, interval: int) -> bool:
        """The order was at the venue before the bar's first price: sent up to the bar's start
        plus ``BAR_START_GRACE_NS``. The executor decides a minute 1-2 ns after its bar closes,
        so what it sends then rests through the whole next bar (on gappy data the previous bar
        may be minutes old: still before this bar's first price)."""
        return order.ts_init <= ts_close - interval + BAR_START_GRACE_NS

    # -- wiring ----------------------------------------------------------------------------------
    def set_clock(self, clock: Any) -> None:
        """The engine's clock (``engine.kernel.clock``): ``timestamp_ns()`` = bar being processed."""
        self._clock = clock

    def set_bars(self, instrument_id: Any, ts_ns: np.ndarray, open_: np.ndarray,
                 interval_ns: int = ONE_MINUTE_NS, low: np.ndarray | None = None,
                 high: np.ndarray | None = None) -> None:
        """Register an instrument's execution bars: ``ts_ns`` the close time (``ts_init``) of each
        bar, ascending, and ``open_`` its open price. Replaces earlier bars of the instrument;
        empty arrays unregister it."""
        ts = np.ascontiguousarray(ts_ns, dtype=np.int64)
        op = np.ascontiguousarray(open_, dtype=np.float64)
        if ts.ndim != 1 or op.shape != ts.shape:
            raise ValueError(f"set_bars({instrument_id}): ts_ns and open_ must be 1-D and of equal length, "
                             f"got {ts.shape} and {op.shape}")
        if int(interval_ns) <= 0:
            raise ValueError(f"set_bars({instrument_id}): interval_ns must be > 0, got {interval_ns!r}")
        if len(ts) > 1 and not bool(np.all(ts[1:] >= ts[:-1])):
            raise ValueError(f"set_bars({instrument_id}): ts_ns must be ascending")
        key = str(instrument_id)
        if len(ts) == 0:
            self._bars.pop(key, None)
            self._ranges.pop(key, None)
            return
        self._bars[key] = (ts, op, int(interval_ns))
        if low is not None and high is not None:
            self._ranges[key] = (np.ascontiguousarray(low, dtype=np.float64),
                                 np.ascontiguousarray(high, dtype=np.float64))
        else:
            self._ranges.pop(key, None)

    def set_bars_from(self, instrument_id: Any, bars: Iterable[Any], interval_ns: int = ONE_MINUTE_NS) -> None:
        """``set_bars`` from Nautilus ``Bar`` objects (sorted by ``ts_init``)."""
        bars = list(bars)
        ts = np.fromiter((b.ts_init for b in bars), dtype=np.int64, count=len(bars))
        op = np.fromiter((b.open.as_double() for b in bars), dtype=np.float64, count=len(bars))
        lo = np.fromiter((b.low.as_double() for b in bars), dtype=np.float64, count=len(bars))
        hi = np.fromiter((b.high.as_double() for b in bars), dtype=np.float64, count=len(bars))
        self.set_bars(instrument_id, ts, op, interval_ns, low=lo, high=hi)

    def _current_bar(self, instrument) -> tuple[int, float, int] | None:
        """(bar close ts, bar open, interval) of the instrument's bar closing now, else None."""
        if self._clock is None:
            return None
        entry = self._bars.get(instrument.id.value)
        if entry is None:
            return None
        ts, op, interval = entry
        now = int(self._clock.timestamp_ns())
        i = int(np.searchsorted(ts, now))
        if i >= len(ts) or int(ts[i]) != now:
            return None
        rng = self._ranges.get(instrument.id.value)
        if rng is not None:
            return now, float(op[i]), interval, float(rng[0][i]), float(rng[1][i])
        return now, float(op[i]), interval

    # -- the hook --------------------------------------------------------------------------------
    def get_orderbook_for_fill_simulation(self, instrument, order, best_bid, best_ask):
        if instrument.instrument_class == InstrumentClass.OPTION:
            return None  # options: the modelled quotes carry the spread; market orders take the touch
        tick = instrument.price_increment.as_double()
        if order.order_type == OrderType.STOP_MARKET:
            bar = self._current_bar(instrument)
            # a stop filled on arrival (the market already beyond it) keeps the market fill,
            # unless it was sent during this bar: then the market crossed it after it was placed
            # (an entry filled inside the bar, the bar then traded through the stop)
            if bar is not None and (order.status != OrderStatus.SUBMITTED or not self._rested_before(order, bar[0], bar[2])):
                if self._reachable(order, bar):
                    return self._stop_book(instrument, order, bar, tick)
        if order.order_type in _TAKERS:
            # nothing at the touch, everything one tick worse: one tick of adverse slippage
            book = self._book(instrument)
            book.add(BookOrder(OrderSide.BUY, instrument.make_price(best_bid.as_double() - tick), Quantity(_UNLIMITED, instrument.size_precision), 1), 0, 0)
            book.add(BookOrder(OrderSide.SELL, instrument.make_price(best_ask.as_double() + tick), Quantity(_UNLIMITED, instrument.size_precision), 2), 0, 0)
            return book
        if order.order_type != OrderType.LIMIT:
            return None
        price, size = order.price, self.limit_fill_cap
        bar = self._current_bar(instrument)
        if bar is not None:
            if order.liquidity_side == LiquiditySide.MAKER:
                price = self._limit_price(instrument, order, bar)
            elif size is not None:
                # marketable on arrival: it takes the touch, all of it, never beyond its limit (a
                # capped book here would make Nautilus slip the rest one tick past the limit)
                buy = order.side == OrderSide.BUY
                touch = best_ask if buy else best_bid
                price = order.price if (touch > order.price if buy else touch < order.price) else touch
                size = None
        if price == order.price and self.limit_fill_cap is None:
            return None  # Nautilus' own logic: limits at their price (takers at the touch), no slippage
        # the touch yields at most `cap` shares (all when uncapped), at `price`
        size = Quantity(size or _UNLIMITED, instrument.size_precision)
        book = self._book(instrument)
        book.add(BookOrder(OrderSide.SELL if order.side == OrderSide.BUY else OrderSide.BUY, price, size, 1), 0, 0)
        return book

    @staticmethod
    def _book(instrument) -> OrderBook:
        return OrderBook(instrument_id=instrument.id, book_type=BookType.L2_MBP)

    @staticmethod
    def _limit_price(instrument, order, bar):
        """A maker limit resting from before the bar fills at the better of its limit and the
        bar's open; one sent during the bar at its limit."""
        ts_close, bar_open, interval = bar[:3]
        limit = order.price
        if not ExecutorFillModel._rested_before(order, ts_close, interval):
            return limit
        if order.side == OrderSide.BUY and bar_open < limit.as_double():
            return instrument.make_price(bar_open)
        if order.side == OrderSide.SELL and bar_open > limit.as_double():
            return instrument.make_price(bar_open)
        return limit

    @staticmethod
    def _reachable(order, bar) -> bool:
        """Whether the bar traded at the stop's trigger. A stop sent during a bar whose whole
        range lies beyond its trigger (e.g. an entry filled beyond the signal's stop) was in the
        market when it was placed: it fills at the market, not at a price the bar never had."""
        if len(bar) < 5 or ExecutorFillModel._rested_before(order, bar[0], bar[2]):
            return True
        low, high = bar[3], bar[4]
        trigger = order.trigger_price.as_double()
        return low - 1e-9 <= trigger <= high + 1e-9

    @staticmethod
    def _stop_book(instrument, order, bar, tick: float) -> OrderBook:
        """A triggered stop: at its trigger one tick worse, or at a gapping open one tick worse."""
        ts_close, bar_open, interval = bar[:3]
        trigger = order.trigger_price.as_double()
        sell = order.side == OrderSide.SELL
        base = trigger
        if ExecutorFillModel._rested_before(order, ts_close, interval) and (bar_open <= trigger if sell else bar_open >= trigger):
            base = bar_open  # the bar opened beyond the trigger: the open is the first price there was
        price = instrument.make_price(base - tick if sell else base + tick)
        book = ExecutorFillModel._book(instrument)
        side = OrderSide.BUY if sell else OrderSide.SELL  # the side the stop takes from
        book.add(BookOrder(side, price, Quantity(_UNLIMITED, instrument.size_precision), 1), 0, 0)
        return book


__all__ = ["ExecutorFillModel", "ONE_MINUTE_NS"]
