"""A minute bar that arrives after the 10-minute bar closing with it was built (issue #13 soak).

Live, Nautilus builds the 10m/1h bars on a timer 15 s after their close (``bar_build_delay_s``)
and stamps them then; a 1-minute bar more than that late (a slow feed, a back-fill after a
reconnect, a busy node) reached the signal engine after its context bar, the engine raised
``LookAheadError`` and the data engine terminated the node ("System will terminate immediately"),
seen at 09:50 of the first compressed soak session. On a live clock the actor now skips that bar
(counted in ``late_bars``); on a backtest's clock bars come in order and it stays an error.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from nautilus_trader.cache.cache import Cache
from nautilus_trader.common.component import LiveClock, MessageBus, TestClock
from nautilus_trader.core.datetime import dt_to_unix_nanos
from nautilus_trader.model.data import Bar
from nautilus_trader.model.identifiers import TraderId
from nautilus_trader.model.objects import Price, Quantity
from nautilus_trader.portfolio.portfolio import Portfolio

from strategies.signal_actor import TIMEFRAME_SPECS, SignalActor, SignalActorConfig, bar_type_for
from strategies.signals import LookAheadError

T = datetime(2026, 3, 10, 13, 50, tzinfo=timezone.utc)  # 09:50 New York, in session


def _actor(clock) -> SignalActor:
    actor = SignalActor(SignalActorConfig(symbols=("AMD",), venue="ALPACA", timeframes=("1m", "10m")))
    bus = MessageBus(TraderId("T-001"), clock)
    cache = Cache()
    actor.register_base(Portfolio(bus, cache, clock), bus, cache, clock)
    for tf in ("1m", "10m"):  # what on_start's subscriptions set up
        actor._routes[bar_type_for("AMD", "ALPACA", tf).standard()] = ("AMD", tf, TIMEFRAME_SPECS[tf][1])
    return actor


def _bar(tf: str, ts: datetime) -> Bar:
    ns = dt_to_unix_nanos(ts)
    return Bar(bar_type_for("AMD", "ALPACA", tf).standard(), Price.from_str("160.00"), Price.from_str("160.10"),
               Price.from_str("159.90"), Price.from_str("160.05"), Quantity.from_int(1000), ns, ns)


def _late_sequence(actor: SignalActor) -> None:
    actor.on_bar(_bar("1m", T - timedelta(minutes=1)))
    actor.on_bar(_bar("10m", T + timedelta(seconds=15)))  # built 15 s after its close
    actor.on_bar(_bar("1m", T))  # the 13:49 minute's bar, 25 s late


def test_live_actor_skips_a_minute_bar_later_than_its_ten_minute_bar():
    actor = _actor(LiveClock())
    _late_sequence(actor)
    assert actor.late_bars == 1
    actor.on_bar(_bar("1m", T + timedelta(minutes=1)))  # the next minute goes on as usual
    assert actor.late_bars == 1


def test_backtest_actor_still_raises_on_look_ahead():
    with pytest.raises(LookAheadError):
        _late_sequence(_actor(TestClock()))
