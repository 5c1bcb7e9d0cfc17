"""Which thread runs a clock's timer callbacks (issue #13 soak).

NautilusTrader 1.231's ``LiveClock`` runs timer and alert callbacks on its Rust timer threads, not
on the event loop that handles bars, fills and order events. Measured in the compressed soak: the
signal actor's flush, the executor's minute step and its signal handler ran on "Dummy-1" and
"Dummy-2" while bars and fills ran on "MainThread", so the executor's state was changed from three
threads at once (seen: "dictionary changed size during iteration" in ``_maybe_halt`` and a
``None`` engine time in ``_protect``, each terminating the node). ``on_loop_thread`` hands such a
callback to the loop's thread; the signal actor uses it for every alert it sets.
"""

from __future__ import annotations

import asyncio
import threading

from nautilus_trader.common.component import LiveClock, TestClock

from strategies.signal_actor import on_loop_thread


def _fire(wrap: bool) -> set[str]:
    seen: list[str] = []

    async def main() -> None:
        clock = LiveClock()
        cb = (lambda e: seen.append(threading.current_thread().name))
        if wrap:
            cb = on_loop_thread(clock, cb)
        clock.set_time_alert_ns("soak-a", clock.timestamp_ns() + 20_000_000, cb)
        clock.set_timer_ns("soak-t", 10_000_000, 0, 0, cb)
        for _ in range(100):  # bounded: at most ~2 s
            await asyncio.sleep(0.02)
            if len(seen) >= 5:
                break
        clock.cancel_timers()
        await asyncio.sleep(0.05)  # callbacks already handed to the loop run now

    asyncio.run(main())
    assert seen, "no callback fired"
    return set(seen)


def test_live_clock_callbacks_run_off_the_event_loop_thread():
    # the NautilusTrader behaviour the executor must live with (if this changes, on_loop_thread
    # is no longer needed)
    assert threading.main_thread().name not in _fire(wrap=False)


def test_on_loop_thread_runs_them_on_the_loop_thread():
    assert _fire(wrap=True) == {threading.main_thread().name}


def test_on_loop_thread_leaves_a_backtest_clock_alone():
    fn = lambda e: None  # noqa: E731
    assert on_loop_thread(TestClock(), fn) is fn
    assert on_loop_thread(LiveClock(), fn) is fn  # no running loop: nothing to hand over to


def _strategy_minute_thread() -> set[str]:
    from nautilus_trader.cache.cache import Cache
    from nautilus_trader.common.component import MessageBus
    from nautilus_trader.model.identifiers import TraderId
    from nautilus_trader.portfolio.portfolio import Portfolio

    from strategies.executor_strategy import ExecutorStrategy, ExecutorStrategyConfig

    seen: list[str] = []

    async def main() -> None:
        clock = LiveClock()
        strat = ExecutorStrategy(ExecutorStrategyConfig(symbols=("QQQ",), venue="XNAS"))
        bus = MessageBus(TraderId("T-001"), clock)
        cache = Cache()
        strat.register_base(Portfolio(bus, cache, clock), bus, cache, clock)
        strat._on_minute_alert = lambda event=None: seen.append(threading.current_thread().name)
        strat._schedule_minute(clock.timestamp_ns())
        for _ in range(100):
            await asyncio.sleep(0.02)
            if seen:
                break
        clock.cancel_timers()
        await asyncio.sleep(0.05)

    asyncio.run(main())
    assert seen, "the minute alert did not fire"
    return set(seen)


def test_executor_minute_step_runs_on_the_loop_thread():
    assert _strategy_minute_thread() == {threading.main_thread().name}
