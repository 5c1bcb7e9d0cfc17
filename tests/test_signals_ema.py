"""EMA, CloudLayer, CloudTracker and CloudState (strategies.signals.ema_cloud)."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import pytest

from strategies.signals import (
    ABOVE,
    BELOW,
    DEFAULT_LAYERS,
    EMA,
    INSIDE,
    OHLCV,
    CloudLayer,
    CloudTracker,
)
from strategies.trade_executor.models import CloudState

T0 = datetime(2025, 3, 3, 14, 31, tzinfo=timezone.utc)  # close of the 09:30 ET bar


def bar(i: int, o: float, h: float, low: float, c: float, v: float = 1000.0) -> OHLCV:
    return OHLCV(T0 + timedelta(minutes=i), o, h, low, c, v)


def period3_layers() -> tuple[CloudLayer, ...]:
    # every core cloud with a period-3 short EMA, so the short EMAs can be checked by hand
    return tuple(CloudLayer(n, 3, 4) for n in ("fast", "pullback", "trend", "macro"))


# ── EMA ──────────────────────────────────────────────────────────────────────────────────────
def test_ema_period3_hand_computed_close_series() -> None:
    # alpha = 2 / (3 + 1) = 0.5, seeded with the first value
    ema = EMA(3)
    assert ema.alpha == 0.5
    got = [ema.update(x) for x in (1.0, 2.0, 3.0, 4.0, 5.0)]
    # 1; 0.5*2+0.5*1=1.5; 0.5*3+0.5*1.5=2.25; 0.5*4+0.5*2.25=3.125; 0.5*5+0.5*3.125=4.0625
    assert got == [1.0, 1.5, 2.25, 3.125, 4.0625]
    assert ema.value == 4.0625 and ema.count == 5 and ema.ready


def test_ema_seed_and_ready_flag() -> None:
    ema = EMA(5)
    assert ema.value is None and not ema.ready
    assert ema.update(42.0) == 42.0  # seeded with the first value
    for _ in range(3):
        ema.update(42.0)
    assert not ema.ready  # 4 values < period 5
    ema.update(42.0)
    assert ema.ready
    assert EMA(12).alpha == pytest.approx(2 / 13)


@pytest.mark.parametrize("bad", [0, -3, 2.5, True, "5"])
def test_ema_rejects_bad_period(bad: object) -> None:
    with pytest.raises(ValueError, match="period"):
        EMA(bad)  # type: ignore[arg-type]


def test_tracker_ema_close_source_matches_hand_values() -> None:
    tr = CloudTracker(period3_layers(), price_source="close")
    closes = (1.0, 2.0, 3.0, 4.0, 5.0)
    got = []
    for i, c in enumerate(closes):
        tr.update(bar(i, c, c + 1.0, c - 3.0, c))  # hl2 = c - 1, not used
        got.append(tr.ema_values("fast")[0])
    assert got == [1.0, 1.5, 2.25, 3.125, 4.0625]


def test_tracker_ema_hl2_source_matches_hand_values() -> None:
    # hl2 = (high + low) / 2 = 10, 11, 13, 12, 14; closes differ on purpose
    tr = CloudTracker(period3_layers(), price_source="hl2")
    hl = [(11.0, 9.0), (12.0, 10.0), (14.0, 12.0), (12.5, 11.5), (15.0, 13.0)]
    got = []
    for i, (h, low) in enumerate(hl):
        tr.update(bar(i, low, h, low, h))  # close = high
        got.append(tr.ema_values("macro")[0])
    # 10; 0.5*11+0.5*10=10.5; 0.5*13+0.5*10.5=11.75; 0.5*12+0.5*11.75=11.875;
    # 0.5*14+0.5*11.875=12.9375
    assert got == [10.0, 10.5, 11.75, 11.875, 12.9375]


@pytest.mark.parametrize("source", ["close", "hl2"])
def test_tracker_inlined_emas_equal_the_ema_class(source: str) -> None:
    rng = random.Random(7)
    tr = CloudTracker(price_source=source)
    refs = {layer.name: (EMA(layer.short_period), EMA(layer.long_period)) for layer in DEFAULT_LAYERS}
    p = 100.0
    for i in range(300):
        o = p
        p *= 1 + rng.gauss(0, 0.002)
        h, low = max(o, p) * 1.001, min(o, p) * 0.999
        tr.update_fast(bar(i, o, h, low, p))
        x = p if source == "close" else (h + low) / 2
        for name, (es, el) in refs.items():
            es.update(x)
            el.update(x)
            assert tr.ema_values(name) == (es.value, el.value)


# ── CloudLayer ───────────────────────────────────────────────────────────────────────────────
def test_default_layers() -> None:
    assert [(x.name, x.short_period, x.long_period) for x in DEFAULT_LAYERS] == [
        ("fast", 5, 12),
        ("pullback", 8, 9),
        ("trend", 20, 21),
        ("macro", 34, 50),
    ]


@pytest.mark.parametrize("args", [("x", 9, 8), ("x", 5, 5), ("x", 0, 5), ("", 5, 12)])
def test_cloud_layer_validation(args: tuple) -> None:
    with pytest.raises(ValueError):
        CloudLayer(*args)


def test_tracker_requires_core_layers_and_known_source() -> None:
    with pytest.raises(ValueError, match="missing core clouds"):
        CloudTracker((CloudLayer("fast", 5, 12),))
    with pytest.raises(ValueError, match="price_source"):
        CloudTracker(price_source="open")


# ── CloudState on crafted bars ───────────────────────────────────────────────────────────────
def test_cloud_state_fields_on_crafted_bars() -> None:
    # fast = 1/3: short EMA (period 1, alpha 1) is the price itself, long EMA alpha 0.5
    layers = (
        CloudLayer("fast", 1, 3),
        CloudLayer("pullback", 8, 9),
        CloudLayer("trend", 20, 21),
        CloudLayer("macro", 34, 50),
    )
    tr = CloudTracker(layers, price_source="hl2")
    # bar 0: hl2 = 10 -> both EMAs 10, equal -> bullish (short >= long), close 10 on the edge
    s0 = tr.update(bar(0, 10.0, 11.0, 9.0, 10.0))
    f0 = s0[0]
    assert isinstance(f0, CloudState)
    assert (f0.name, f0.short_ema, f0.long_ema, f0.is_bullish, f0.thickness) == ("fast", 10.0, 10.0, True, 0.0)
    assert (f0.price_above, f0.price_inside, f0.price_below) == (False, True, False)
    # bar 1: high 13, low 11 -> hl2 12; short 12, long 0.5*12 + 0.5*10 = 11
    # close 12 == upper edge -> inside
    f1 = tr.update(bar(1, 11.0, 13.0, 11.0, 12.0))[0]
    assert (f1.short_ema, f1.long_ema, f1.is_bullish) == (12.0, 11.0, True)
    assert f1.thickness == pytest.approx(1.0 / 12.0)
    assert (f1.price_above, f1.price_inside, f1.price_below) == (False, True, False)
    # bar 2: high 12, low 8 -> hl2 10; short 10, long 0.5*10 + 0.5*11 = 10.5 -> bearish;
    # the position uses the CLOSE (11.5), not hl2: above the band [10, 10.5]
    f2 = tr.update(bar(2, 9.0, 12.0, 8.0, 11.5))[0]
    assert (f2.short_ema, f2.long_ema, f2.is_bullish) == (10.0, 10.5, False)
    assert f2.thickness == pytest.approx(0.5 / 11.5)
    assert (f2.price_above, f2.price_inside, f2.price_below) == (True, False, False)
    assert f2.upper == 10.5 and f2.lower == 10.0
    assert tr.position[0] == ABOVE and tr.prev_position is not None
    assert tr.prev_bullish[0] is True and tr.bullish[0] is False and tr.fast_flip == -1
    # bar 3: hl2 = 9, close 8.5: short 9, long 9.75 -> close below the band [9, 9.75]
    f3 = tr.update(bar(3, 9.5, 9.5, 8.5, 8.5))[0]
    assert (f3.short_ema, f3.long_ema) == (9.0, 9.75)
    assert (f3.price_above, f3.price_inside, f3.price_below) == (False, False, True)
    assert tr.position[0] == BELOW and tr.fast_flip == 0


def test_states_one_per_layer_with_long_term_layers() -> None:
    from strategies.signals import LONG_TERM_LAYERS

    tr = CloudTracker(DEFAULT_LAYERS + LONG_TERM_LAYERS)
    assert tr.warmup_bars == 200
    states = tr.update(bar(0, 50.0, 50.0, 50.0, 50.0))
    assert [s.name for s in states] == ["fast", "pullback", "trend", "macro", "long_72_89", "long_180_200"]
    assert all(s.short_ema == s.long_ema == 50.0 and s.is_bullish and s.price_inside for s in states)
    assert tr.position == [INSIDE] * 6


# ── tracker bookkeeping ──────────────────────────────────────────────────────────────────────
def test_tracker_warm_up_is_the_longest_period() -> None:
    tr = CloudTracker()
    assert tr.warmup_bars == 50
    for i in range(49):
        tr.update_fast(bar(i, 100.0, 100.5, 99.5, 100.0))
    assert not tr.warmed_up
    tr.update_fast(bar(49, 100.0, 100.5, 99.5, 100.0))
    assert tr.warmed_up and tr.count == 50


def test_tracker_keeps_recent_bars_and_rejects_out_of_order() -> None:
    tr = CloudTracker(history=3)
    bars = [bar(i, 100.0 + i, 101.0 + i, 99.0 + i, 100.5 + i) for i in range(5)]
    for b in bars:
        tr.update_fast(b)
    assert list(tr.recent) == bars[-3:]
    assert tr.last_ts == bars[-1].ts
    with pytest.raises(ValueError, match="not after"):
        tr.update_fast(bars[-1])  # same ts again
    with pytest.raises(ValueError, match="not after"):
        tr.update_fast(bars[0])


def test_ohlcv_requires_aware_ts() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        OHLCV(datetime(2025, 3, 3, 14, 31), 1.0, 1.0, 1.0, 1.0, 0.0)
    b = bar(0, 1.0, 3.0, 1.0, 2.0)
    assert b.hl2 == 2.0
    with pytest.raises(AttributeError):
        b.close = 5.0  # type: ignore[misc]


def test_momentum_streak_counts_same_colour_closes_outside_fast_cloud() -> None:
    tr = CloudTracker()
    p = 100.0
    for i in range(20):  # flat: closes on the EMAs -> no streak
        tr.update_fast(bar(i, p, p + 0.1, p - 0.1, p))
    assert tr.up_streak == 0 and tr.down_streak == 0
    for k in range(4):  # green candles each closing higher, above the fast cloud
        o, p = p, p + 1.0
        tr.update_fast(bar(20 + k, o, p + 0.1, o - 0.1, p))
        assert tr.up_streak == k + 1
    # a red candle still above the fast cloud ends the streak
    tr.update_fast(bar(24, p + 0.5, p + 0.6, p - 0.2, p + 0.2))
    assert tr.position[tr.i_fast] == ABOVE and tr.up_streak == 0


def test_make_cloud_state_equals_the_constructor() -> None:
    from strategies.signals.ema_cloud import make_cloud_state

    args = ("macro", 101.5, 100.25, True, 0.0123, False, True, False)
    fast = make_cloud_state(*args)
    ref = CloudState(*args)
    assert type(fast) is CloudState
    assert fast == ref and repr(fast) == repr(ref) and fast.to_dict() == ref.to_dict()
    assert (fast.upper, fast.lower) == (101.5, 100.25)
    with pytest.raises(AttributeError):
        fast.name = "x"  # type: ignore[misc]


@pytest.mark.parametrize("source", ["close", "hl2"])
def test_detection_flags_match_a_reference_built_from_cloud_states(source: str) -> None:
    """Re-derive every detection flag from the public CloudState lists of consecutive bars."""
    rng = random.Random(5 if source == "close" else 6)
    tr = CloudTracker(price_source=source)
    prev_states = None
    long_armed = short_armed = False
    up = down = 0
    seen = {"flip": set(), "cross": set(), "bounce": set(), "aligned": set()}
    p = 100.0
    for i in range(3000):
        o = p
        p = p * (1 + rng.gauss(0.00005, 0.0015))
        h = max(o, p) * (1 + abs(rng.gauss(0, 0.0007)))
        low = min(o, p) * (1 - abs(rng.gauss(0, 0.0007)))
        b = bar(i, o, h, low, p)
        st = {c.name: c for c in tr.update(b)}
        f, pb, t, m = st["fast"], st["pullback"], st["trend"], st["macro"]
        if prev_states is None:
            exp_flip = exp_cross = exp_bounce = 0
        else:
            pf, ppb, pt = prev_states["fast"], prev_states["pullback"], prev_states["trend"]
            exp_flip = 0 if f.is_bullish == pf.is_bullish else (1 if f.is_bullish else -1)
            exp_cross = 1 if t.price_above and not pt.price_above else (
                -1 if t.price_below and not pt.price_below else 0)
            exp_bounce = 0
            if m.price_above and pb.is_bullish and ppb.price_above and b.low <= pb.upper < b.close and b.close > b.open:
                exp_bounce = 1
            if m.price_below and not pb.is_bullish and ppb.price_below and b.high >= pb.lower > b.close and b.close < b.open:
                exp_bounce = -1
        core = (f, pb, t, m)
        exp_aligned = 0
        if all(c.is_bullish for c in core):
            short_armed = True
            if long_armed and all(c.price_above for c in core):
                exp_aligned, long_armed = 1, False
        elif not any(c.is_bullish for c in core):
            long_armed = True
            if short_armed and all(c.price_below for c in core):
                exp_aligned, short_armed = -1, False
        else:
            long_armed = short_armed = True
        up = up + 1 if f.price_above and b.close > b.open else 0
        down = down + 1 if f.price_below and b.close < b.open else 0
        assert (tr.fast_flip, tr.trend_cross, tr.bounce, tr.aligned_transition) == (
            exp_flip, exp_cross, exp_bounce, exp_aligned), i
        assert (tr.up_streak, tr.down_streak) == (up, down), i
        for key, v in (("flip", exp_flip), ("cross", exp_cross), ("bounce", exp_bounce), ("aligned", exp_aligned)):
            seen[key].add(v)
        prev_states = st
    assert all(s == {-1, 0, 1} for s in seen.values()), seen  # every flag fired both ways
