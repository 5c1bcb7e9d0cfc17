"""ExitMonitor: each exit at its boundary, early closes, ETF hold limits, priorities.

Base position: long AAPL day trade, 100 shares, entry 100, stop 95 (risk 5), no target
(-> 2:1 target 110), opened Tue 2025-07-01 14:00 UTC (10:00 EDT).
"""

from __future__ import annotations

import math
from datetime import datetime
from functools import partial

import pandas as pd
import pytest

from strategies.trade_executor import (
    EXIT_PRIORITY,
    CloudState,
    ExecutorConfig,
    ExitDecision,
    ExitMonitor,
    MarketCalendar,
)
from tests import builders
from tests.builders import utc

ENTRY = utc(2025, 7, 1, 14, 0)

# long 100 AAPL day trade @ 100, stop 95 (short: 105), no target
pos = partial(builders.position, ticker="AAPL", shares=100, risk=5.0, entry_time=ENTRY, signal_id="s")


@pytest.fixture(scope="module")
def mon() -> ExitMonitor:
    return ExitMonitor(ExecutorConfig(), calendar=MarketCalendar())


def bar(o, c, fu=100.0, fl=99.0, pu=99.5, pl=99.0):
    return {"open": o, "high": max(o, c) + 0.1, "low": min(o, c) - 0.1, "close": c,
            "fast_upper": fu, "fast_lower": fl, "pullback_upper": pu, "pullback_lower": pl}


# ── stop loss ───────────────────────────────────────────────────────────────────────────────
def test_stop_loss_long(mon):
    assert mon.check_stop_loss(pos(), 95.0)
    assert mon.check_stop_loss(pos(), 94.0)
    assert not mon.check_stop_loss(pos(), 95.01)


def test_stop_loss_short(mon):
    assert mon.check_stop_loss(pos(direction="short"), 105.0)
    assert not mon.check_stop_loss(pos(direction="short"), 104.99)


# ── profit target ───────────────────────────────────────────────────────────────────────────
def test_profit_target_default_two_to_one(mon):
    # long: 100 + 2 x |100 - 95| = 110
    assert mon.target_price(pos()) == 110.0
    assert mon.check_profit_target(pos(), 110.0)
    assert not mon.check_profit_target(pos(), 109.99)
    # short: 100 - 2 x 5 = 90
    assert mon.check_profit_target(pos(direction="short"), 90.0)
    assert not mon.check_profit_target(pos(direction="short"), 90.01)


def test_profit_target_explicit_and_configured(mon):
    assert mon.check_profit_target(pos(target_price=104.0), 104.0)
    assert not mon.check_profit_target(pos(target_price=104.0), 103.99)
    m3 = ExitMonitor(ExecutorConfig(reward_to_risk_target=3.0), calendar=MarketCalendar())
    assert m3.target_price(pos()) == 115.0  # 100 + 3 x 5


# ── time stop ───────────────────────────────────────────────────────────────────────────────
def test_time_stop_boundary(mon):
    # 120 minutes exactly is not "more than 2 hours"
    assert not mon.check_time_stop(pos(), now=utc(2025, 7, 1, 16, 0), current_price=100.0)
    assert mon.check_time_stop(pos(), now=utc(2025, 7, 1, 16, 0, 1), current_price=100.0)


def test_time_stop_needs_no_progress(mon):
    now = utc(2025, 7, 1, 16, 30)
    assert mon.check_time_stop(pos(), now=now, current_price=99.0)
    assert not mon.check_time_stop(pos(), now=now, current_price=100.01)  # progress
    assert mon.check_time_stop(pos(direction="short"), now=now, current_price=100.0)
    assert not mon.check_time_stop(pos(direction="short"), now=now, current_price=99.99)
    # defaults to the position's own price (100 = entry -> no progress)
    assert mon.check_time_stop(pos(), now=now)


def test_time_stop_only_for_day_trades(mon):
    now = utc(2025, 7, 1, 17)
    assert not mon.check_time_stop(pos(trade_type="swing"), now=now, current_price=99.0)
    assert not mon.check_time_stop(pos(trade_type="scalp"), now=now, current_price=99.0)


def test_time_stop_rejects_naive_now(mon):
    with pytest.raises(ValueError, match="now"):
        mon.check_time_stop(pos(), now=datetime(2025, 7, 1, 17))


# ── EOD close ───────────────────────────────────────────────────────────────────────────────
def test_eod_regular_day(mon):
    # 15:55 EDT = 19:55 UTC
    assert not mon.check_eod_close(pos(), now=utc(2025, 7, 1, 19, 54, 59))
    assert mon.check_eod_close(pos(), now=utc(2025, 7, 1, 19, 55))
    assert mon.check_eod_close(pos(trade_type="scalp"), now=utc(2025, 7, 1, 19, 55))
    assert not mon.check_eod_close(pos(trade_type="swing"), now=utc(2025, 7, 1, 19, 55))


def test_eod_early_close_july_3(mon):
    # close 13:00 EDT -> cutoff 12:55 EDT = 16:55 UTC
    p = pos(entry_time=utc(2025, 7, 3, 14))
    assert not mon.check_eod_close(p, now=utc(2025, 7, 3, 16, 54, 59))
    assert mon.check_eod_close(p, now=utc(2025, 7, 3, 16, 55))
    assert mon.eod_cutoff(utc(2025, 7, 3, 15)) == utc(2025, 7, 3, 16, 55)


def test_eod_early_close_after_thanksgiving(mon):
    # close 13:00 EST -> cutoff 12:55 EST = 17:55 UTC
    p = pos(entry_time=utc(2025, 11, 28, 15))
    assert not mon.check_eod_close(p, now=utc(2025, 11, 28, 17, 54, 59))
    assert mon.check_eod_close(p, now=utc(2025, 11, 28, 17, 55))


def test_eod_winter_regular_day(mon):
    # 2025-12-01 (EST): 15:55 = 20:55 UTC
    p = pos(entry_time=utc(2025, 12, 1, 15))
    assert not mon.check_eod_close(p, now=utc(2025, 12, 1, 20, 54))
    assert mon.check_eod_close(p, now=utc(2025, 12, 1, 20, 55))


def test_eod_after_close_or_next_day(mon):
    assert mon.check_eod_close(pos(), now=utc(2025, 7, 1, 20, 30))  # after the close
    assert mon.check_eod_close(pos(), now=utc(2025, 7, 2, 13, 31))  # next session
    assert mon.check_eod_close(pos(), now=utc(2025, 7, 2, 3, 0))  # 23:00 ET July 1 -> same date, after close


def test_eod_config_time(mon):
    m = ExitMonitor(ExecutorConfig(eod_close_time="15:45"), calendar=MarketCalendar())
    assert not m.check_eod_close(pos(), now=utc(2025, 7, 1, 19, 44, 59))
    assert m.check_eod_close(pos(), now=utc(2025, 7, 1, 19, 45))
    # early close still uses close - 5 min
    p = pos(entry_time=utc(2025, 7, 3, 14))
    assert not m.check_eod_close(p, now=utc(2025, 7, 3, 16, 54))


# ── momentum exhaustion ─────────────────────────────────────────────────────────────────────
GREEN_ABOVE = [bar(100.2, 100.5), bar(100.5, 100.9), bar(100.9, 101.3)]  # closes > fast_upper 100


def test_momentum_exhaustion_long(mon):
    assert mon.check_momentum_exhaustion(pos(), GREEN_ABOVE)
    assert mon.check_momentum_exhaustion(pos(), [bar(99.5, 99.2)] + GREEN_ABOVE)  # older bar irrelevant
    assert not mon.check_momentum_exhaustion(pos(), GREEN_ABOVE[1:])  # only 2
    red = GREEN_ABOVE[:2] + [bar(101.5, 101.3)]  # last candle red
    assert not mon.check_momentum_exhaustion(pos(), red)
    on_edge = GREEN_ABOVE[:2] + [bar(99.8, 100.0)]  # closes ON the upper edge: not outside
    assert not mon.check_momentum_exhaustion(pos(), on_edge)
    # a short position is not in profit above the cloud
    assert not mon.check_momentum_exhaustion(pos(direction="short"), GREEN_ABOVE)


def test_momentum_exhaustion_short():
    m = ExitMonitor(ExecutorConfig(), calendar=MarketCalendar())
    red_below = [bar(98.8, 98.5), bar(98.5, 98.1), bar(98.1, 97.7)]  # < fast_lower 99
    assert m.check_momentum_exhaustion(pos(direction="short"), red_below)
    assert not m.check_momentum_exhaustion(pos(direction="short"), red_below[:2] + [bar(97.5, 97.7)])


def test_momentum_exhaustion_dataframe_and_nan(mon):
    df = pd.DataFrame(GREEN_ABOVE)
    assert mon.check_momentum_exhaustion(pos(), df)
    df.loc[2, "fast_upper"] = math.nan  # warm-up: never fires
    assert not mon.check_momentum_exhaustion(pos(), df)


def test_momentum_exhaustion_missing_column(mon):
    bars = [{k: v for k, v in b.items() if k != "fast_upper"} for b in GREEN_ABOVE]
    with pytest.raises(ValueError, match="fast_upper"):
        mon.check_momentum_exhaustion(pos(), bars)


def test_momentum_exhaustion_inverse_etf_reads_underlying(mon):
    # long SQQQ (leverage -3) = short QQQ: QQQ bars red below the fast cloud are its profit side
    sqqq = pos(ticker="SQQQ", price=20.0, stop=19.0, leverage=-3.0, underlying="QQQ",
               instrument_type="leveraged_etf")
    red_below = [bar(98.8, 98.5), bar(98.5, 98.1), bar(98.1, 97.7)]
    assert mon.check_momentum_exhaustion(sqqq, red_below)
    assert not mon.check_momentum_exhaustion(sqqq, GREEN_ABOVE)
    # bars of the fund itself
    assert mon.check_momentum_exhaustion(sqqq, GREEN_ABOVE, on_underlying=False)


# ── cloud flip ──────────────────────────────────────────────────────────────────────────────
def cloud(bullish, name="fast"):
    return CloudState(name, 101.0 if bullish else 99.0, 100.0, bullish, 0.01, True, False, False)


def test_cloud_flip(mon):
    assert mon.check_cloud_flip(pos(), [cloud(False), cloud(True, "macro")])
    assert not mon.check_cloud_flip(pos(), [cloud(True), cloud(False, "macro")])
    assert mon.check_cloud_flip(pos(direction="short"), [cloud(True)])
    assert not mon.check_cloud_flip(pos(direction="short"), [cloud(False)])
    assert not mon.check_cloud_flip(pos(), [cloud(False, "macro")])  # no fast cloud
    assert not mon.check_cloud_flip(pos(), [])
    assert mon.check_cloud_flip(pos(), {"fast": cloud(False)})  # mapping form


def test_cloud_flip_inverse_etf(mon):
    sqqq = pos(ticker="SQQQ", price=20.0, stop=19.0, leverage=-3.0, underlying="QQQ",
               instrument_type="leveraged_etf")
    assert mon.check_cloud_flip(sqqq, [cloud(True)])  # QQQ turning bullish hurts long SQQQ
    assert not mon.check_cloud_flip(sqqq, [cloud(False)])


# ── trailing stop ───────────────────────────────────────────────────────────────────────────
def test_trailing_stop_swing(mon):
    swing = pos(trade_type="swing")
    assert mon.check_trailing_stop(swing, [bar(99.5, 98.99)])  # < pullback_lower 99
    assert not mon.check_trailing_stop(swing, [bar(99.5, 99.0)])  # on the edge
    assert not mon.check_trailing_stop(pos(trade_type="day"), [bar(99.5, 98.0)])
    short = pos(direction="short", trade_type="swing")
    assert mon.check_trailing_stop(short, [bar(99.0, 99.51)])  # > pullback_upper 99.5
    assert not mon.check_trailing_stop(short, [bar(99.0, 99.5)])
    assert not mon.check_trailing_stop(swing, [])


# ── max hold (leveraged ETFs) ───────────────────────────────────────────────────────────────
def etf_pos(lev=3.0, trade_type="swing"):
    return pos(ticker="TQQQ", price=80.0, stop=76.0, leverage=lev, underlying="QQQ",
               instrument_type="leveraged_etf", trade_type=trade_type)


def test_max_hold_3x(mon):
    # entered Tue 07-01; sessions after: 07-02 (1), 07-03 (2), 07-07 (3), 07-08 (4), 07-09 (5), 07-10 (6)
    assert mon.trading_days_held(etf_pos(), now=utc(2025, 7, 9, 15)) == 5
    assert not mon.max_hold_exceeded(etf_pos(), now=utc(2025, 7, 9, 15))
    assert mon.max_hold_exceeded(etf_pos(), now=utc(2025, 7, 10, 15))
    assert mon.max_hold_exceeded(etf_pos(-3.0), now=utc(2025, 7, 10, 15))  # inverse: same


def test_max_hold_2x_and_stock(mon):
    # sessions after 07-01: 02, 03, 07, 08, 09, 10, 11, 14, 15, 16 (10th), 17 (11th)
    assert mon.trading_days_held(etf_pos(2.0), now=utc(2025, 7, 16, 15)) == 10
    assert not mon.max_hold_exceeded(etf_pos(2.0), now=utc(2025, 7, 16, 15))
    assert mon.max_hold_exceeded(etf_pos(2.0), now=utc(2025, 7, 17, 15))
    assert not mon.max_hold_exceeded(pos(trade_type="swing"), now=utc(2025, 9, 1, 15))


# ── evaluate / priorities ───────────────────────────────────────────────────────────────────
def test_evaluate_nothing(mon):
    assert mon.evaluate(pos(), current_price=101.0, now=utc(2025, 7, 1, 15)) is None


def test_priority_stop_beats_eod(mon):
    d = mon.evaluate(pos(), current_price=94.0, now=utc(2025, 7, 1, 19, 56))
    assert isinstance(d, ExitDecision)
    assert d.reason == "stop_loss" and d.fired == ["stop_loss", "time_stop", "eod_close"]
    assert d.priority == 1


def test_priority_target_beats_eod(mon):
    d = mon.evaluate(pos(), current_price=110.0, now=utc(2025, 7, 1, 19, 56))
    assert d.reason == "profit_target" and d.fired == ["profit_target", "eod_close"]


def test_priority_cloud_flip_beats_target(mon):
    d = mon.evaluate(pos(), current_price=111.0, now=utc(2025, 7, 1, 15), cloud_states=[cloud(False)])
    assert d.reason == "cloud_flip" and d.fired == ["cloud_flip", "profit_target"]


def test_priority_exhaustion_beats_flip(mon):
    d = mon.evaluate(pos(), current_price=101.0, now=utc(2025, 7, 1, 15), bars=GREEN_ABOVE,
                     cloud_states=[cloud(False)])
    assert d.reason == "momentum_exhaustion" and d.fired == ["momentum_exhaustion", "cloud_flip"]


def test_priority_time_stop_beats_eod(mon):
    d = mon.evaluate(pos(), current_price=99.0, now=utc(2025, 7, 1, 19, 55))
    assert d.reason == "time_stop" and d.fired == ["time_stop", "eod_close"]


def test_priority_trailing_beats_max_hold(mon):
    d = mon.evaluate(etf_pos(), current_price=79.0, now=utc(2025, 7, 10, 15),
                     bars=[bar(99.5, 98.0)])
    assert d.reason == "trailing_stop" and d.fired == ["trailing_stop", "max_hold"]
    assert d.priority == EXIT_PRIORITY["trailing_stop"] == 7


def test_evaluate_max_hold_alone(mon):
    d = mon.evaluate(etf_pos(), current_price=81.0, now=utc(2025, 7, 10, 15))
    assert d.reason == "max_hold" and d.fired == ["max_hold"]


def test_priority_table_is_the_seeds():
    assert sorted(EXIT_PRIORITY, key=EXIT_PRIORITY.get) == [
        "stop_loss", "momentum_exhaustion", "cloud_flip", "profit_target", "time_stop",
        "eod_close", "trailing_stop", "max_hold"]
