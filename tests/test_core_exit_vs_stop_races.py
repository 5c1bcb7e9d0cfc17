"""The broker must never sell twice: an exit may only go out once the core itself has seen its
protective stop end (issue #13 soak, found in the compressed full-session run).

Seen in ``tests/test_live_soak.py`` (seed 13, 2 of 2 runs, META 15:13-15:15 and AMZN 15:32 UTC):
1. the entry fills, its stop is submitted, and on the same minute step an exit fires while the stop
   is still in flight (not yet in the engine's view / not accepted): ``_submit_exit`` finds no open
   stop to cancel and sends the market exit at once; the stop then rests too, the exit is refused
   (403 insufficient qty: the stop holds the shares) -> ``exit_failed``;
2. a minute later the broker fills the stop; the engine's order view already says "not open" but
   the core has not applied that fill yet when the retried exit fires: ``_cancel_if_open`` returns
   False, so the exit is sent for the full quantity. Both fill: the broker sold twice, the account
   ends the session short 30 META (unknown to the node: "Cannot open NETTING position ... from
   reduce-only fill"), and the journal books the trade twice (30 then 60 shares).

The executor's minute step running on a LiveClock timer thread (``tests/test_live_clock_threads.py``)
widened both windows in the soak; with only that fixed, case 1 still happened (3 ``exit_failed`` in
one session: Alpaca refused the exit because the stop held the shares; a broker that checks less
would have sold twice), and case 2 needs nothing but the stop's fill event to be a moment late.

Fixed in strategies/trade_executor/core.py (``_submit_exit``, ``on_order_accepted``): the exit
waits for the stop's terminal event whenever ``mp.stop_order_id`` is set, whatever the engine's view
says -- cancel it if it is open, and if it is still in flight cancel it on its acceptance; the exit
goes out from ``_order_done`` (stop canceled/rejected/expired with shares still open), and not at
all when the stop's fill closes the round trip.
"""

from __future__ import annotations

from datetime import timedelta

from strategies.trade_executor import ExecutorConfig
from strategies.trade_executor import commands as c
from strategies.trade_executor.core import CoreSettings, ExecutorCore
from tests.builders import T0, FakeEngine, signal

NOW = T0 + timedelta(seconds=1)
NS = 1_000_000_000
SIG = signal()  # long QQQ 10m, entry 100, stop 98, conviction 80, volume confirmed


def of(kind, commands):
    return [x for x in commands if isinstance(x, kind)]


def bar(core: ExecutorCore, close: float, ts) -> list:
    out = core.on_bar("QQQ", "1m", close, close, close, close, 1000.0, int(ts.timestamp()) * NS)
    return out + core.run_minute(ts + timedelta(seconds=1))


def filled_with_stop_submitted() -> tuple[ExecutorCore, FakeEngine, str, str]:
    engine = FakeEngine()
    core = ExecutorCore(ExecutorConfig(instrument_mode="stock"), engine, CoreSettings())
    core.follow("QQQ")
    bar(core, 100.0, T0)
    entry = of(c.SubmitOrder, core.on_signal(SIG, NOW))[0].order_id
    stop = of(c.SubmitOrder, core.on_fill(entry, 150, 100.0, 0.0, NOW, NOW))[0]
    assert stop.order_type == "stop_market"
    return core, engine, entry, stop.order_id


def exits(commands) -> list:
    return [x for x in of(c.SubmitOrder, commands) if "role=exit" in x.tags]


def test_exit_waits_for_a_stop_still_in_flight_and_cancels_it_on_acceptance():
    core, engine, _entry, stop = filled_with_stop_submitted()
    out = bar(core, 97.5, T0 + timedelta(minutes=1))  # closes through the 98 stop: exit fires
    assert exits(out) == []  # the stop may still land and rest at the broker
    engine.accept(stop, 150)
    assert of(c.CancelOrder, core.on_order_accepted(stop, NOW + timedelta(minutes=1))) == [c.CancelOrder(stop)]
    engine.close(stop)
    [exit_] = exits(core.on_order_done(stop, "canceled", NOW + timedelta(minutes=1)))
    assert (exit_.side, exit_.qty) == ("SELL", 150)


def test_no_exit_when_the_stop_already_filled_but_its_fill_is_not_applied_yet():
    core, engine, _entry, stop = filled_with_stop_submitted()
    engine.accept(stop, 150)
    core.on_order_accepted(stop, NOW)
    engine.close(stop)  # the broker filled it; the engine's view says "not open" ...
    out = bar(core, 97.5, T0 + timedelta(minutes=1))  # ... before the core got the fill
    assert exits(out) == []
    out = core.on_fill(stop, 150, 97.9, 0.0, NOW + timedelta(minutes=1), NOW + timedelta(minutes=1))
    [trade] = of(c.RecordTrade, out)
    assert trade.row["shares"] == 150 and exits(out) == []


def test_exit_after_the_stop_is_canceled_still_goes_out():  # the existing protocol, kept
    core, engine, _entry, stop = filled_with_stop_submitted()
    engine.accept(stop, 150)
    core.on_order_accepted(stop, NOW)
    out = bar(core, 97.5, T0 + timedelta(minutes=1))
    assert of(c.CancelOrder, out) == [c.CancelOrder(stop)] and exits(out) == []
    engine.close(stop)
    [exit_] = exits(core.on_order_done(stop, "canceled", NOW + timedelta(minutes=1)))
    assert exit_.qty == 150
