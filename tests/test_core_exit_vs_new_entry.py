"""No new entry on an instrument while a position in it is on its way out (issue #13 soak, seed 7).

Seen in the compressed soak with seed 7 (NVDA, 14:34-14:41 UTC): a short NVDA position's exit
fired, its stop was cancelled first (as it must be), and on the same minute a new short NVDA
signal was approved as an add to a winner: its SELL limit entry reached the broker while the BUY
exit was about to be sent. Alpaca refuses an order that could trade against the account's own
working opposite order ("potential wash trade detected", market orders always), so the exit was
refused, retried every minute and refused 8 times, until the new entry's limit expired 6 minutes
later: 359 simulated seconds with neither a stop nor an exit at the broker (the soak's limit is 60).

Seed 21 shows the other half (AAPL, 15:04-15:08): a second long AAPL trade's BUY limit entry
(an add, partly filled 7 shares a bar) was working when the first trade's exit fired; the exit and
then every re-placed stop of the first trade were refused as wash trades against the *other*
trade's entry (``_stop_refused`` only cancels the trade's own entry): 235 simulated seconds bare.
Underneath both: at Alpaca an add to a winner conflicts with the position's own resting stop (a
stop is always a conflict), so its entry can only get in while that stop is absent, which is
exactly while the position is being exited.

Fixed (strategies/trade_executor/core.py): while ``exit_pending`` or an exit order exists for
a position in an instrument, a new entry in that instrument is refused (e.g. a gate code
``exit_in_progress``, or ``duplicate`` with that reason), and an exit refused as a wash trade
cancels the working entries of the same instrument (any trade's) and is sent again once they are
gone (as ``_stop_refused`` already does for a stop and its own trade's entry).
"""

from __future__ import annotations

from datetime import timedelta

from strategies.trade_executor import ExecutorConfig
from strategies.trade_executor import commands as c
from strategies.trade_executor.core import CoreSettings, ExecutorCore
from tests.builders import T0, FakeEngine, signal

NOW = T0 + timedelta(seconds=1)
NS = 1_000_000_000


def of(kind, commands):
    return [x for x in commands if isinstance(x, kind)]


def bar(core: ExecutorCore, close: float, ts) -> list:
    out = core.on_bar("QQQ", "1m", close, close, close, close, 1000.0, int(ts.timestamp()) * NS)
    return out + core.run_minute(ts + timedelta(seconds=1))


def test_no_entry_in_an_instrument_whose_position_is_being_exited():
    engine = FakeEngine()
    # a small first position, so that an add fits under the exposure caps
    core = ExecutorCore(ExecutorConfig(instrument_mode="stock", max_risk_per_trade=0.002), engine, CoreSettings())
    core.follow("QQQ")
    bar(core, 100.0, T0)
    entry = of(c.SubmitOrder, core.on_signal(signal(), NOW))[0]  # long QQQ at 100, stop 98
    stop = of(c.SubmitOrder, core.on_fill(entry.order_id, entry.qty, 100.0, 0.0, NOW, NOW))[0]
    engine.accept(stop.order_id, entry.qty)
    core.on_order_accepted(stop.order_id, NOW)
    t1 = T0 + timedelta(minutes=10)
    out = bar(core, 104.5, t1)  # through the 2:1 target: the exit starts by cancelling the stop
    assert of(c.CancelOrder, out) == [c.CancelOrder(stop.order_id)] and core.exit_pending
    # a new long QQQ signal while that exit is under way (the position is 2.25 R in profit)
    out = core.on_signal(signal(entry=104.5, ts=t1, risk=1.0), t1 + timedelta(seconds=2))
    assert of(c.SubmitOrder, out) == []
    [decision] = of(c.RecordDecision, out)
    assert not decision.record.approved
    assert decision.record.reason_code == "exit_in_progress"


def test_an_exit_refused_as_a_wash_trade_cancels_the_instruments_entries_and_goes_again():
    engine = FakeEngine()
    core = ExecutorCore(ExecutorConfig(instrument_mode="stock", max_risk_per_trade=0.002), engine, CoreSettings())
    core.follow("QQQ")
    bar(core, 100.0, T0)
    first = of(c.SubmitOrder, core.on_signal(signal(), NOW))[0]
    stop = of(c.SubmitOrder, core.on_fill(first.order_id, first.qty, 100.0, 0.0, NOW, NOW))[0]
    engine.accept(stop.order_id, first.qty)
    # a second long QQQ trade (an add to the winner, +1.25 R) whose limit entry works at the broker
    t1 = T0 + timedelta(minutes=3)
    bar(core, 102.5, t1)
    second = of(c.SubmitOrder, core.on_signal(signal(entry=102.5, ts=t1, risk=1.0, conviction=60),
                                              t1 + timedelta(seconds=2)))[0]
    engine.accept(second.order_id, second.qty)
    # the first trade's stop is gone (cancelled for an exit), its exit is refused as a wash trade
    first_sid = signal().signal_id
    core._submit_exit(core.pm.by_signal[first_sid], "cloud_flip", ["cloud_flip"])
    engine.close(stop.order_id)
    [exit_] = [x for x in of(c.SubmitOrder, core.on_order_done(stop.order_id, "canceled", t1))
               if "role=exit" in x.tags]
    out = core.on_order_done(exit_.order_id, "rejected by venue: potential wash trade detected", t1)
    assert of(c.CancelOrder, out) == [c.CancelOrder(second.order_id)]  # the other trade's entry
    engine.close(second.order_id)
    out = core.on_order_done(second.order_id, "canceled", t1)
    [again] = [x for x in of(c.SubmitOrder, out) if "role=exit" in x.tags]
    assert (again.side, again.qty, again.tags[-1]) == ("SELL", first.qty, "reason=cloud_flip")
