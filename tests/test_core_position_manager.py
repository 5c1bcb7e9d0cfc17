"""EntryPlanner, pullback_verdict and PositionManager: the pure core of trade management."""

from __future__ import annotations

from datetime import timedelta
from functools import partial

import pytest

from strategies.trade_executor import ExecutorConfig
from strategies.trade_executor.position_manager import (
    CloudEdges,
    EntryPlanner,
    PositionManager,
    pullback_verdict,
    underlying_to_instrument,
)
from tests import builders
from tests.builders import stock_decision as stock
from tests.builders import utc

T0 = utc(2025, 7, 1, 14, 0)

# long QQQ 1m cloud flip at 101, stop 100 (short ones pass signal_type="cloud_flip_bearish")
sig = partial(builders.signal, entry=101.0, risk=1.0, timeframe="1m", ts=T0, signal_type="cloud_flip_bullish")


PB = CloudEdges(100.20, 100.2222)


# ── tactics ─────────────────────────────────────────────────────────────────────────────────
@pytest.mark.parametrize("conviction,volume,scale,tactic", [
    (75, True, True, "market"),            # boundary: 75 with volume -> immediate market
    (74, True, True, "limit_at_cloud"),    # 74 is medium conviction
    (50, False, True, "limit_at_cloud"),
    (80, False, True, "scale_in"),         # high conviction, no volume confirmation
    (80, None, True, "scale_in"),          # volume unknown counts as not confirmed
    (80, False, False, "limit_at_cloud"),  # ... unless scale-in is disabled
])
def test_tactic_by_conviction_and_volume(conviction, volume, scale, tactic):
    planner = EntryPlanner(ExecutorConfig(scale_in_enabled=scale))
    assert planner.tactic_for(sig(conviction=conviction, volume_confirmed=volume))[0] == tactic


@pytest.mark.parametrize("high,medium,conviction,volume,tactic", [
    ("limit", "limit", 80, True, "limit_at_cloud"),  # high conviction, but the user wants limits
    ("market", "market", 60, True, "market"),        # medium conviction at market
    ("market", "market", 60, False, "market"),
    ("limit", "market", 80, False, "scale_in"),      # no volume confirmation: scale-in either way
])
def test_order_type_per_conviction_band_is_the_users_setting(high, medium, conviction, volume, tactic):
    cfg = ExecutorConfig(high_conviction_order_type=high, medium_conviction_order_type=medium)
    s = sig(conviction=conviction, volume_confirmed=volume)
    tac, why = EntryPlanner(cfg).tactic_for(s)
    assert tac == tactic
    plan = EntryPlanner(cfg).plan(s, 100, price=101.0, direction="long", cloud=PB)
    assert plan.order_type == ("limit" if tactic == "limit_at_cloud" else "market")
    if tactic == "limit_at_cloud":
        assert plan.limit_price == 100.22 and "high_conviction_order_type=limit" in why


def test_config_refuses_an_unknown_order_type_naming_the_field():
    with pytest.raises(ValueError, match="high_conviction_order_type = 'stop'"):
        ExecutorConfig(high_conviction_order_type="stop")
    with pytest.raises(ValueError, match="default_time_in_force = 'fok'"):
        ExecutorConfig(default_time_in_force="fok")


def test_market_plan_sends_everything():
    p = EntryPlanner().plan(sig(), 148, price=101.0, direction="long", cloud=PB)
    assert (p.tactic, p.first_shares, p.add_shares, p.order_type, p.limit_price) == ("market", 148, 0, "market", None)


def test_scale_in_plan_splits_by_initial_pct_never_beyond_total():
    p = EntryPlanner().plan(sig(volume_confirmed=False), 149, price=101.0, direction="long")
    assert (p.first_shares, p.add_shares, p.total_shares) == (74, 75, 149)
    p = EntryPlanner(ExecutorConfig(scale_in_initial_pct=0.3)).plan(sig(volume_confirmed=False), 10, price=101.0,
                                                                   direction="long")
    assert (p.first_shares, p.add_shares) == (3, 7)
    p = EntryPlanner().plan(sig(volume_confirmed=False), 1, price=101.0, direction="long")
    assert (p.first_shares, p.add_shares) == (1, 0)  # one share cannot be split


def test_limit_at_the_pullback_cloud_edge_rounded_to_the_tick():
    p = EntryPlanner().plan(sig(conviction=60), 148, price=101.0, direction="long", cloud=PB)
    assert (p.order_type, p.limit_price, p.expire_bars) == ("limit", 100.22, 5)  # floor(100.2222)
    short = sig(conviction=60, direction="short", entry=99.0, signal_type="cloud_flip_bearish")
    p = EntryPlanner().plan(short, 10, price=99.0, direction="short", cloud=CloudEdges(99.7777, 99.80))
    assert p.limit_price == 99.78  # lower edge for a short, rounded up (never through it)


def test_limit_never_through_the_market_and_falls_back_to_the_signal_price():
    # cloud above the price for a long (price already pulled back): limit at the price itself
    p = EntryPlanner().plan(sig(conviction=60), 10, price=100.10, direction="long", cloud=PB)
    assert p.limit_price == 100.10
    p = EntryPlanner().plan(sig(conviction=60, entry=101.0), 10, price=101.5, direction="long", cloud=None)
    assert p.limit_price == 101.0 and "warming up" in p.reason


def test_limit_for_a_leveraged_etf_is_translated_from_the_underlying():
    # underlying 101.00, cloud edge 100.2222: -0.770%; TQQQ 50.00 x (1 - 3 x 0.770%) = 48.8449 -> 48.84
    assert underlying_to_instrument(100.2222, 101.0, 50.0, 3.0) == pytest.approx(48.844851, abs=1e-6)
    p = EntryPlanner().plan(sig(conviction=60), 10, price=50.0, direction="long", cloud=PB, underlying_price=101.0,
                            leverage=3.0)
    assert p.limit_price == 48.84
    # a short signal bought as an inverse fund (L=-3): the short's limit edge is the cloud's lower
    # edge above the price; SQQQ 20.00 at QQQ 99.00 -> edge 99.80 is +0.808% -> SQQQ 19.52
    short = sig(conviction=60, direction="short", entry=99.0, signal_type="cloud_flip_bearish")
    p = EntryPlanner().plan(short, 10, price=20.0, direction="long",
                            cloud=CloudEdges(99.80, 99.90), underlying_price=99.0, leverage=-3.0)
    assert p.limit_price == 19.51  # 19.5151... floored to the tick for a buy


def test_plan_rejects_bad_input():
    with pytest.raises(ValueError, match="shares"):
        EntryPlanner().plan(sig(), 0, price=101.0, direction="long")
    with pytest.raises(ValueError, match="price"):
        EntryPlanner().plan(sig(), 5, price=float("nan"), direction="long")
    with pytest.raises(ValueError, match="limit_entry_expire_bars"):
        ExecutorConfig(limit_entry_expire_bars=0)


# ── pullback verdicts ───────────────────────────────────────────────────────────────────────
@pytest.mark.parametrize("d,low,high,close,verdict", [
    (1, 100.30, 100.90, 100.80, "none"),    # never touched the upper edge 100.2222
    (1, 100.2222, 100.90, 100.80, "holds"),  # touched exactly, closed above
    (1, 100.10, 100.90, 100.20, "holds"),   # closed at the lower edge: still holds
    (1, 100.10, 100.90, 100.19, "breaks"),  # closed below the cloud
    (-1, 99.0, 100.20, 99.50, "holds"),     # short: high reached the lower edge 100.20
    (-1, 99.0, 100.19, 99.50, "none"),
    (-1, 99.0, 100.40, 100.23, "breaks"),   # closed above the upper edge
])
def test_pullback_verdict(d, low, high, close, verdict):
    assert pullback_verdict(d, low, high, close, PB) == verdict


def test_pullback_verdict_without_clouds():
    assert pullback_verdict(1, 90, 110, 95, None) == "none"
    assert pullback_verdict(1, 90, 110, 95, CloudEdges(float("nan"), 100)) == "none"


# ── position manager ────────────────────────────────────────────────────────────────────────
def opened(plan_shares=148, scale=False):
    pm = PositionManager()
    s = sig(volume_confirmed=not scale)
    plan = EntryPlanner().plan(s, plan_shares, price=101.0, direction="long")
    mp = pm.open(s, stock(), plan, instrument="QQQ.XNAS", direction="long", stop_loss=100.0, target_price=103.0,
                 order_id="E1")
    return pm, mp


def test_partial_fills_average_and_link_to_the_signal():
    pm, mp = opened()
    assert pm.pending_orders()[0].shares == 148 and pm.open_positions() == []
    assert pm.on_fill("E1", 50, 101.00, 0.0, T0) == (mp, "entry")
    assert pm.on_fill("E1", 48, 101.10, 0.0, T0 + timedelta(seconds=1))[1] == "entry"
    assert mp.position.shares == 98 and mp.position.entry_price == pytest.approx((50 * 101 + 48 * 101.1) / 98)
    assert pm.pending_orders()[0].shares == 50  # still working
    assert [f.order_id for f in mp.fills] == ["E1", "E1"] and mp.position.signal_id == mp.signal_id
    assert pm.order_done("E1") == (mp, "entry")  # the rest is cancelled
    assert pm.pending_orders() == [] and not pm.is_dead(mp) and not pm.is_round_trip_done(mp)
    # the exit sells exactly what was filled
    pm.link(mp, "X1", "exit")
    assert mp.open_qty == 98
    pm.on_fill("X1", 98, 102.0, 0.4, T0 + timedelta(minutes=5))
    assert pm.is_round_trip_done(mp) and mp.position.shares == 0
    pm.finish(mp)
    assert pm.by_signal == {} and pm.closed == [mp]


def test_scale_in_reservation_counts_as_pending_and_add_fill_is_tagged():
    pm, mp = opened(scale=True)
    assert (mp.plan.first_shares, mp.plan.add_shares, mp.scale_in) == (74, 74, "waiting")
    pm.on_fill("E1", 74, 101.01, 0.0, T0)
    (p,) = pm.pending_orders()
    assert p.shares == 74  # the reserved add
    pm.add_entry_order(mp, "A1", 74, role="add")
    assert mp.scale_in == "sent" and pm.pending_orders()[0].shares == 74
    assert pm.on_fill("A1", 74, 100.81, 0.0, T0 + timedelta(minutes=3))[1] == "add"
    assert mp.scale_in == "added" and mp.position.shares == 148
    assert mp.position.entry_price == pytest.approx(100.91)
    assert pm.pending_orders() == []


def test_cancelled_add_is_skipped_and_stop_fill_is_a_stop_loss():
    pm, mp = opened(scale=True)
    pm.on_fill("E1", 74, 101.01, 0.0, T0)
    pm.add_entry_order(mp, "A1", 74, role="add")
    pm.order_done("A1")
    assert mp.scale_in == "skipped" and pm.pending_orders() == []
    pm.link(mp, "S1", "stop")
    assert pm.role_of("S1") == "stop"
    pm.on_fill("S1", 74, 99.97, 0.2, T0 + timedelta(minutes=9))
    assert mp.exit_reason == "stop_loss" and pm.is_round_trip_done(mp)


def test_entry_that_never_fills_is_dead_and_foreign_orders_are_ignored():
    pm, mp = opened()
    assert pm.on_fill("NOT-OURS", 5, 1.0, 0.0, T0) is None and pm.order_done("NOT-OURS") is None
    pm.order_done("E1")
    assert pm.is_dead(mp)
    with pytest.raises(ValueError, match="already has a position"):
        pm.open(mp.signal, stock(), mp.plan, instrument="QQQ.XNAS", direction="long", stop_loss=100.0,
                target_price=None, order_id="E2")


def test_fill_validation_names_the_value():
    pm, mp = opened()
    with pytest.raises(ValueError, match="qty must be a positive integer"):
        pm.on_fill("E1", 0, 101.0, 0.0, T0)
    with pytest.raises(ValueError, match="price must be a positive finite"):
        pm.on_fill("E1", 5, float("nan"), 0.0, T0)
    with pytest.raises(ValueError, match="role"):
        pm.link(mp, "Z", "entry")
