"""ExecutorFillModel on NautilusTrader's real BacktestEngine: crafted 1-minute bars, a tiny strategy
that sends orders at chosen bars, hand-computed fill prices (tick 0.01).

Bar ``i`` closes at ``T0 + i`` minutes (its ``ts_init``); Nautilus plays it to the venue as the
points Open, High, Low, Close before the strategy's ``on_bar`` (backtests/fill_model.py). Orders sent
from ``on_bar(i)`` reach the venue after bar ``i``'s close and rest through bar ``i + 1``.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from nautilus_trader.model.data import Bar
from nautilus_trader.model.enums import InstrumentClass, OrderSide, TimeInForce
from nautilus_trader.model.objects import Price, Quantity
from nautilus_trader.trading.strategy import Strategy

from backtests import catalog_io
from backtests.fill_model import ExecutorFillModel
from backtests.runner import BacktestSpec, build_engine

T0 = int(pd.Timestamp("2025-06-16 13:31", tz="UTC").value)  # close of bar 0 (09:31 ET)
MIN = 60_000_000_000
BUY, SELL = OrderSide.BUY, OrderSide.SELL
FLAT = [(100.50, 100.50, 100.50, 100.50)] * 3  # bars 0-2: a market at 100.50


def index(ts: int) -> float:
    return (ts - T0) / MIN


class Probe(Strategy):
    """Runs ``plan[(symbol, i)]`` in ``on_bar`` of bar i and ``on_fill[tag]`` when order ``tag``
    fills; records fills (tag, price, qty, bar index of the clock) and rejections."""

    def __init__(self, symbols, plan, on_fill):
        super().__init__()
        self.symbols, self.plan, self.on_fill = symbols, plan, dict(on_fill)
        self.tags: dict[str, str] = {}
        self.fills: list[tuple[str, float, int, float]] = []
        self.rejected: list[tuple[str, str]] = []
        self.seen: list[tuple[str, float]] = []

    def on_start(self):
        for s in self.symbols:
            self.subscribe_bars(catalog_io.bar_type_for(s))

    def send(self, tag, order):
        self.tags[order.client_order_id.value] = tag
        self.submit_order(order)

    def on_bar(self, bar):
        key = (bar.bar_type.instrument_id.symbol.value, index(bar.ts_init))
        self.seen.append(key)
        for action in self.plan.get(key, []):
            action(self)

    def on_order_filled(self, e):
        tag = self.tags[e.client_order_id.value]
        self.fills.append((tag, e.last_px.as_double(), int(e.last_qty.as_double()), index(self.clock.timestamp_ns())))
        action = self.on_fill.pop(tag, None)  # once, on the order's first fill
        if action is not None:
            action(self)

    def on_order_rejected(self, e):
        self.rejected.append((self.tags[e.client_order_id.value], e.reason))


# -- actions -----------------------------------------------------------------------------------
def limit(tag, side, px, qty=10, sym="QQQ"):
    return lambda s: s.send(tag, s.order_factory.limit(
        catalog_io.instrument_id_for(sym), side, Quantity.from_int(qty), Price.from_str(px)))


def stop(tag, side, px, qty=10, sym="QQQ"):
    return lambda s: s.send(tag, s.order_factory.stop_market(
        catalog_io.instrument_id_for(sym), side, Quantity.from_int(qty), Price.from_str(px),
        time_in_force=TimeInForce.GTC))


def market(tag, side, qty=10, sym="QQQ"):
    return lambda s: s.send(tag, s.order_factory.market(catalog_io.instrument_id_for(sym), side, Quantity.from_int(qty)))


def after(seconds, action):
    """Run ``action`` ``seconds`` after the current bar's close (inside the next bar's minute)."""
    def schedule(s):
        at = pd.Timestamp(s.clock.timestamp_ns() + seconds * 1_000_000_000, tz="UTC")
        s.clock.set_time_alert(f"probe-{at.value}", at, lambda _e: action(s))
    return schedule


def make_bars(sym, rows):
    bt = catalog_io.bar_type_for(sym)
    return [Bar(bt, *(Price.from_str(f"{p:.2f}") for p in row), Quantity.from_int(10_000), T0 + i * MIN, T0 + i * MIN)
            for i, row in enumerate(rows)]


def run(rows, plan, on_fill=None, *, wiring="full", cap=None, extra=None):
    """``rows`` QQQ (open, high, low, close) per minute; ``extra`` {symbol: rows} fed *before* QQQ at
    equal timestamps. ``wiring``: "full" (clock + bars), "none" (no bars), "no_clock" (bars only)."""
    series = dict(extra or {})
    series["QQQ"] = rows
    fm = ExecutorFillModel(limit_fill_cap=cap)
    engine = build_engine(BacktestSpec(catalog=Path("unused"), symbols=list(series), progress=False,
                                       limit_fill_cap=cap), fill_model=fm)
    if wiring == "no_clock":
        fm.set_clock(None)
    data = []
    for sym, sym_rows in series.items():
        engine.add_instrument(catalog_io.make_instrument(sym))
        bars = make_bars(sym, sym_rows)
        if wiring != "none":
            fm.set_bars_from(catalog_io.instrument_id_for(sym), bars)
        data += bars
    probe = Probe(list(series), plan, on_fill or {})
    engine.add_strategy(probe)
    engine.add_data(data)
    try:
        engine.run()
    finally:
        engine.dispose()
    return probe


def q(i):
    return ("QQQ", float(i))


# -- (a) resting limits fill at the better of limit and open ----------------------------------
def test_resting_buy_limit_fills_at_a_gapping_open():
    # sent at bar 1's close (100.50), rests; bar 3 opens at 99.00, under the limit: filled at 99.00
    p = run(FLAT + [(99.00, 99.20, 98.90, 99.10)], {q(1): [limit("buy", BUY, "100.00")]})
    assert p.fills == [("buy", 99.00, 10, 3.0)]


def test_resting_buy_limit_touched_inside_the_bar_fills_at_its_limit():
    # bar 3 opens 100.50 above the limit, trades down to 99.80: filled at the limit 100.00
    p = run(FLAT + [(100.50, 100.60, 99.80, 100.20)], {q(1): [limit("buy", BUY, "100.00")]})
    assert p.fills == [("buy", 100.00, 10, 3.0)]


def test_resting_sell_limit_fills_at_a_gapping_open():
    p = run(FLAT + [(101.70, 101.90, 101.60, 101.80)], {q(1): [limit("sell", SELL, "101.00")]})
    assert p.fills == [("sell", 101.70, 10, 3.0)]


def test_limit_sent_inside_the_minute_fills_at_its_limit_even_if_the_bar_opens_through_it():
    # sent 30 s after bar 2's close, i.e. during bar 3's minute: the open of bar 3 is not a price
    # it could have had -> at the limit
    p = run(FLAT + [(99.00, 99.20, 98.90, 99.10)], {q(2): [after(30, limit("buy", BUY, "100.00"))]})
    assert p.fills == [("buy", 100.00, 10, 3.0)]


def test_capped_limit_gets_cap_shares_per_touch_at_the_gapping_open():
    # cap 10: the points O 99.00, H 99.20, L 98.90 each yield 10 shares, all at the open 99.00
    p = run(FLAT + [(99.00, 99.20, 98.90, 99.10)], {q(1): [limit("buy", BUY, "100.00", qty=30)]}, cap=10)
    assert p.fills == [("buy", 99.00, 10, 3.0)] * 3


def test_capped_marketable_limit_takes_the_touch_never_beyond_its_limit():
    # a buy limit 101.00 sent at the 100.50 close is marketable: all 30 at the touch 100.50
    # (a capped book would leave 20 shares for Nautilus to slip to 101.01, past the limit)
    p = run(FLAT + [(100.50, 100.60, 100.40, 100.50)], {q(1): [limit("buy", BUY, "101.00", qty=30)]}, cap=10)
    assert p.fills == [("buy", 100.50, 30, 1.0)]


# -- (b) stops fill at the trigger, or at a gapping open, one tick worse -----------------------
def test_resting_sell_stop_fills_at_its_trigger_minus_a_tick_not_at_the_low():
    # long 10 at bar 0; sell stop 99.00 from bar 1; bar 3 O 100 H 100.5 L 98 C 98.5 passes 99.00
    # on its way down: 99.00 - 0.01 = 98.99 (the low would give 97.99)
    p = run(FLAT + [(100.00, 100.50, 98.00, 98.50)],
            {q(0): [market("entry", BUY)], q(1): [stop("stop", SELL, "99.00")]})
    assert p.fills == [("entry", 100.51, 10, 0.0), ("stop", 98.99, 10, 3.0)]


def test_resting_sell_stop_gapped_through_fills_at_the_open_minus_a_tick():
    p = run(FLAT + [(98.20, 98.50, 98.00, 98.30)],
            {q(0): [market("entry", BUY)], q(1): [stop("stop", SELL, "99.00")]})
    assert p.fills[1] == ("stop", 98.19, 10, 3.0)


def test_resting_buy_stop_fills_at_trigger_plus_a_tick_or_at_a_gapping_open():
    short = {q(0): [market("entry", SELL)], q(1): [stop("stop", BUY, "101.00")]}
    through = run(FLAT + [(100.60, 103.00, 100.40, 102.50)], short)
    assert through.fills == [("entry", 100.49, 10, 0.0), ("stop", 101.01, 10, 3.0)]
    gap = run(FLAT + [(101.80, 102.00, 101.50, 101.90)], short)
    assert gap.fills[1] == ("stop", 101.81, 10, 3.0)


def test_stop_sent_from_an_entry_fill_inside_a_bar_fills_at_trigger_minus_a_tick():
    # the buy limit 100.00 (sent at bar 1) fills at bar 3's low point; on_order_filled sends the
    # protective sell stop 99.50 at once. Nautilus queues it until bar 3 has played out (close
    # 100.40, safe side: accepted); bar 4 crashes from 100.40 to a low of 96.00: 99.49, not 95.99
    rows = FLAT + [(100.50, 100.60, 99.90, 100.40), (100.40, 100.45, 96.00, 96.50)]
    p = run(rows, {q(1): [limit("entry", BUY, "100.00")]}, {"entry": stop("stop", SELL, "99.50")})
    assert p.fills == [("entry", 100.00, 10, 3.0), ("stop", 99.49, 10, 4.0)]


def test_a_stop_sent_inside_a_bar_that_closes_beyond_it_fills_at_its_trigger():
    # same entry, but bar 3 closes at 99.20, beyond the stop: the venue meets the stop only after
    # the close; accepted (reject_stop_orders=False, as the runner's venue) it triggers on arrival
    # and fills at its trigger minus a tick (99.49), as a stop placed right after the fill would
    # have: not at the close (99.19), not at the next bar's low, and never left unplaced
    rows = FLAT + [(100.50, 100.60, 99.00, 99.20), (99.20, 99.30, 96.00, 96.50)]
    p = run(rows, {q(1): [limit("entry", BUY, "100.00")]}, {"entry": stop("stop", SELL, "99.50")})
    assert p.fills == [("entry", 100.00, 10, 3.0), ("stop", 99.49, 10, 3.0)]
    assert p.rejected == []


def test_stop_sent_inside_the_minute_fills_only_at_a_price_the_bar_traded():
    # sent 30 s into bar 3's minute, while the executor still saw 100.50; but bar 3 traded only
    # between 97.50 and 98.20, so at 30 s the market was already below the stop (99.50): the stop
    # cannot fill at 99.49, a price nobody traded that minute. It fills at the first price the
    # simulation has for it, the open, minus a tick: 97.99
    p = run(FLAT + [(98.00, 98.20, 97.50, 97.80)],
            {q(0): [market("entry", BUY)], q(2): [after(30, stop("stop", SELL, "99.50"))]})
    assert p.fills[1] == ("stop", 97.99, 10, 3.0)


def test_stop_sent_inside_a_bar_that_never_traded_at_its_trigger_fills_at_the_market():
    # a sell limit entry fills at 101.00 inside bar 3 (O 100.60 H 101.20 L 100.60 C 101.10): a
    # short whose signal stop (100.50) is already below the market. The buy stop sent then was in
    # the market when placed (the bar never traded at 100.50): it fills at the market, 101.10 +
    # a tick -- not at 100.51, a price this bar never had (found on the real DBB minutes)
    rows = FLAT + [(100.60, 101.20, 100.60, 101.10)]
    p = run(rows, {q(2): [limit("entry", SELL, "101.00")]}, {"entry": stop("stop", BUY, "100.50")})
    assert p.fills == [("entry", 101.00, 10, 3.0), ("stop", 101.11, 10, 3.0)]


def test_stop_sent_a_few_ns_after_a_bar_rests_from_before_the_next_bar():
    # the executor's minute step runs 1-2 ns after the bar: a stop sent then is at the venue
    # before the next bar's first price, so a next bar that opens through it (98.00) is a gap:
    # filled at the open minus a tick (97.99), not at the trigger (99.49) -- found on the gappy
    # INDA minutes, where a stop filled above the whole bar
    p = run(FLAT + [(98.00, 98.20, 97.50, 97.80)],
            {q(0): [market("entry", BUY)], q(2): [after(2e-9, stop("stop", SELL, "99.50"))]})
    assert p.fills[1] == ("stop", 97.99, 10, 3.0)


def test_stop_sent_on_another_symbols_bar_of_the_same_minute_counts_as_sent_inside_it():
    # SPY's bar 3 is processed before QQQ's bar 3 (same close time); its on_bar sends the QQQ stop,
    # which rests through QQQ's bar 3: sent during that bar. QQQ's bar 3 (O 99.80, L 99.00)
    # traded through the trigger -> 99.49; had it traded only below the stop (O 98.00, H 98.20),
    # the stop was in the market when sent -> the market, 97.99
    spy = FLAT + [(50.00, 50.00, 50.00, 50.00)]
    p = run(FLAT + [(99.80, 99.90, 99.00, 99.20)],
            {q(0): [market("entry", BUY)], ("SPY", 3.0): [stop("stop", SELL, "99.50")]}, extra={"SPY": spy})
    assert p.seen[-2:] == [("SPY", 3.0), ("QQQ", 3.0)]
    assert p.fills[1] == ("stop", 99.49, 10, 3.0)
    p = run(FLAT + [(98.00, 98.20, 97.50, 97.80)],
            {q(0): [market("entry", BUY)], ("SPY", 3.0): [stop("stop", SELL, "99.50")]}, extra={"SPY": spy})
    assert p.fills[1] == ("stop", 97.99, 10, 3.0)


# -- market orders and sequencing -------------------------------------------------------------
def test_market_orders_fill_one_tick_worse_than_the_close():
    p = run(FLAT + [(100.50, 101.00, 100.00, 100.80)],
            {q(1): [market("buy", BUY)], q(3): [market("sell", SELL)]})
    assert p.fills == [("buy", 100.51, 10, 1.0), ("sell", 100.79, 10, 3.0)]


def test_nautilus_plays_a_bar_open_high_low_close():
    # a sell limit 101.00 and a buy limit 100.00 both rest; bar 3 O 100.50 H 101.20 L 99.80:
    # the high point fills the sell before the low point fills the buy
    p = run(FLAT + [(100.50, 101.20, 99.80, 100.50)],
            {q(1): [limit("sell", SELL, "101.00"), limit("buy", BUY, "100.00")]})
    assert [f[0] for f in p.fills] == ["sell", "buy"]
    assert [f[1] for f in p.fills] == [101.00, 100.00]


# -- without the wiring: the old model exactly --------------------------------------------------
@pytest.mark.parametrize("wiring", ["none", "no_clock"])
def test_without_clock_or_bars_the_old_fills_are_kept(wiring):
    gap = run(FLAT + [(99.00, 99.20, 98.90, 99.10)], {q(1): [limit("buy", BUY, "100.00")]}, wiring=wiring)
    assert gap.fills == [("buy", 100.00, 10, 3.0)]  # limit price
    through = run(FLAT + [(100.00, 100.50, 98.00, 98.50)],
                  {q(0): [market("entry", BUY)], q(1): [stop("stop", SELL, "99.00")]}, wiring=wiring)
    assert through.fills == [("entry", 100.51, 10, 0.0), ("stop", 97.99, 10, 3.0)]  # low - tick


# -- registration --------------------------------------------------------------------------------
def test_set_bars_validates_and_stores_compact_arrays():
    fm = ExecutorFillModel()
    with pytest.raises(ValueError, match="equal length"):
        fm.set_bars("QQQ.XNAS", np.array([1, 2]), np.array([1.0]))
    with pytest.raises(ValueError, match="ascending"):
        fm.set_bars("QQQ.XNAS", np.array([2, 1]), np.array([1.0, 2.0]))
    fm.set_bars("QQQ.XNAS", [1, 2], [10.0, 11.0])
    ts, op, interval = fm._bars["QQQ.XNAS"]
    assert ts.dtype == np.int64 and op.dtype == np.float64 and interval == MIN
    fm.set_bars("QQQ.XNAS", [], [])
    assert "QQQ.XNAS" not in fm._bars


def test_options_are_left_to_nautilus():
    fm = ExecutorFillModel(limit_fill_cap=5)
    option = SimpleNamespace(instrument_class=InstrumentClass.OPTION)
    assert fm.get_orderbook_for_fill_simulation(option, None, None, None) is None
