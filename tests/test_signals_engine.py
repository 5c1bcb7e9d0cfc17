"""SignalEngine: detection, prices, conviction, no look-ahead (strategies.signals.engine)."""

from __future__ import annotations

import json
import random
from collections import Counter
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from strategies.signals import (
    OHLCV,
    LookAheadError,
    SignalEngine,
    SignalEngineConfig,
    VolumeProfile,
    candle_quality,
    conviction_components,
    conviction_from_components,
    volume_score,
)
from strategies.trade_executor.models import SignalType, TradeSignal

UTC = timezone.utc
NY = ZoneInfo("America/New_York")
T0 = datetime(2025, 3, 3, 14, 31, tzinfo=UTC)  # 09:31 ET: close of the 09:30 bar (EST day)


# ── crafted series ───────────────────────────────────────────────────────────────────────────
def bars_from_cents(cents: list[int], t0: datetime = T0) -> list[OHLCV]:
    """open = previous close, high/low 2 cents beyond the body, volume 1000 + 10 i."""
    out = []
    for i, c in enumerate(cents):
        o = cents[i - 1] if i else c - 5
        out.append(
            OHLCV(
                t0 + timedelta(minutes=i),
                o / 100,
                (max(o, c) + 2) / 100,
                (min(o, c) - 2) / 100,
                c / 100,
                1000.0 + 10 * i,
            )
        )
    return out


def zigzag_cents(n: int = 70) -> list[int]:
    """An orderly uptrend: +30c / -10c alternating (candle colours alternate: no streaks)."""
    cents = [10000]
    for i in range(n):
        cents.append(cents[-1] + (30 if i % 2 == 0 else -10))
    return cents


def flip_series() -> list[OHLCV]:
    """Uptrend (bars 0-70), a 4-bar dip, a slow 3-bar recovery during which the fast cloud turns
    bearish (bar 76, above the macro cloud) and bullish again (bar 77), then 5 unchanged bars."""
    cents = zigzag_cents()
    for _ in range(4):
        cents.append(cents[-1] - 15)
    for _ in range(3):
        cents.append(cents[-1] + 5)
    for _ in range(5):
        cents.append(cents[-1])
    return bars_from_cents(cents)


def naive_ema(values: list[float], period: int) -> float:
    a = 2.0 / (period + 1)
    e = values[0]
    for v in values[1:]:
        e = a * v + (1 - a) * e
    return e


def run(engine: SignalEngine, ticker: str, tf: str, bars: list[OHLCV]) -> list[tuple[int, TradeSignal]]:
    out = []
    for i, b in enumerate(bars):
        out.extend((i, s) for s in engine.on_bar(ticker, tf, b))
    return out


# ── exactly one cloud_flip_bullish ───────────────────────────────────────────────────────────
def test_crafted_series_gives_exactly_one_cloud_flip_bullish() -> None:
    bars = flip_series()
    engine = SignalEngine()
    out = []
    fast_colours = []
    for i, b in enumerate(bars):
        out.extend((i, s) for s in engine.on_bar("QQQ", "1m", b))
        tr = engine.tracker("QQQ", "1m")
        fast_colours.append(tr.bullish[tr.i_fast])
    assert len(out) == 1
    i, sig = out[0]
    assert i == 77
    assert sig.signal_type is SignalType.CLOUD_FLIP_BULLISH
    assert sig.direction == "long" and sig.ticker == "QQQ" and sig.timeframe == "1m"
    assert sig.timestamp == datetime(2025, 3, 3, 15, 48, tzinfo=UTC)  # 10:48 ET bar close
    assert sig.signal_id == "QQQ-1m-cloud_flip_bullish-20250303T154800Z"
    # the dip (bars 71-74) turned the fast cloud bearish on bar 76: a cloud_flip_bearish above
    # the macro cloud, filtered out by the macro bias; bar 77 turns it bullish again
    assert fast_colours[:76] == [True] * 76 and fast_colours[76:78] == [False, True]
    # prices, to the cent and against an independent EMA computation
    closes = [b.close for b in bars[:78]]
    macro_lower = min(naive_ema(closes, 34), naive_ema(closes, 50))
    assert sig.entry_price == 106.55
    assert round(sig.stop_loss, 2) == 105.12
    assert sig.stop_loss == pytest.approx(macro_lower * (1 - 0.001), rel=1e-12)
    assert round(sig.target_price, 2) == 109.41
    assert sig.target_price == pytest.approx(106.55 + 2.0 * (106.55 - sig.stop_loss), rel=1e-12)
    # conviction: 40 (4 clouds bullish) + 0 (no higher-timeframe data) + volume + candle
    m = sig.metadata
    assert m["cloud_alignment"] == 4 and m["clouds_agreeing"] == ["fast", "pullback", "trend", "macro"]
    assert m["score_cloud"] == 40.0 and m["score_mtf"] == 0.0
    assert m["mtf_checks"] == 6 and m["timeframes_checked"] == ["10m", "1h", "1d"]
    # volume: 1770 / mean(1000, 1010, ..., 1760) = 1770 / 1380 (running mean: no earlier session)
    assert m["volume_basis"] == "running_mean"
    assert m["volume_avg"] == pytest.approx(1380.0)
    assert m["volume_ratio"] == pytest.approx(1770 / 1380)
    assert m["volume_confirmed"] is True
    assert m["score_volume"] == pytest.approx(15 * (1770 / 1380) / 2)
    # candle o 106.50 h 106.57 l 106.48 c 106.55: body 5/9, close position 7/9 -> q = 2/3
    assert m["body_ratio"] == pytest.approx(5 / 9)
    assert m["close_position"] == pytest.approx(7 / 9)
    assert m["candle_quality"] == pytest.approx(2 / 3)
    assert m["score_candle"] == pytest.approx(10.0)
    assert m["conviction_raw"] == pytest.approx(40 + 0 + 9.6195652 + 10.0, abs=1e-6)
    assert sig.conviction == 60
    assert m["price_source"] == "close" and m["is_entry"] is True
    # cloud states carried by the signal
    names = [c.name for c in sig.cloud_states]
    assert names == ["fast", "pullback", "trend", "macro"]
    macro = sig.cloud("macro")
    assert macro.lower == pytest.approx(macro_lower, rel=1e-12) and macro.price_above
    assert sig.cloud("pullback").price_below  # close under the 8/9 cloud: not trend-aligned
    json.dumps(sig.to_dict())  # JSON-serialisable


def test_hl2_source_is_reported_and_changes_the_clouds() -> None:
    bars = flip_series()
    a = run(SignalEngine(SignalEngineConfig(price_source="close")), "QQQ", "1m", bars)
    engine = SignalEngine(SignalEngineConfig(price_source="hl2"))
    b = run(engine, "QQQ", "1m", bars)
    hl2 = [(x.high + x.low) / 2 for x in bars]
    assert engine.tracker("QQQ", "1m").ema_values("macro") == pytest.approx(
        (naive_ema(hl2, 34), naive_ema(hl2, 50)), rel=1e-12
    )
    assert all(s.metadata["price_source"] == "hl2" for _, s in b)
    assert all(s.metadata["price_source"] == "close" for _, s in a)


# ── warm-up ──────────────────────────────────────────────────────────────────────────────────
def test_no_signal_before_warm_up() -> None:
    rng = random.Random(3)
    cents = [10000]
    for _ in range(600):
        cents.append(cents[-1] + rng.choice((-40, -20, 20, 40, 60, -60)))
    bars = bars_from_cents(cents)
    out = run(SignalEngine(), "SPY", "1m", bars)
    assert out, "the random walk should produce signals once warmed up"
    assert min(i for i, _ in out) >= 49  # the 50th bar is the first that may signal
    out_late = run(SignalEngine(SignalEngineConfig(warmup=200)), "SPY", "1m", bars)
    assert min(i for i, _ in out_late) >= 199


# ── momentum exhaustion ──────────────────────────────────────────────────────────────────────
def test_momentum_exhaustion_once_per_streak() -> None:
    cents = zigzag_cents()
    moves = [30] * 5 + [-5] + [30] * 4 + [-40] + [-30] * 5
    for mv in moves:
        cents.append(cents[-1] + mv)
    bars = bars_from_cents(cents)
    engine = SignalEngine()
    out = []
    down_max = 0
    for i, b in enumerate(bars):
        out.extend((i, s) for s in engine.on_bar("QQQ", "1m", b))
        down_max = max(down_max, engine.tracker("QQQ", "1m").down_streak)
    exh = [(i, s) for i, s in out if s.signal_type is SignalType.MOMENTUM_EXHAUSTION]
    # streak 1: bars 71-75 (5 green closes above the fast cloud) -> once, on its 3rd bar (73);
    # a red candle (76) ends it; streak 2: bars 77-80 -> once, on bar 79
    assert [i for i, _ in exh] == [73, 79]
    for _, s in exh:
        assert s.direction == "long"  # the extended (exhausted) side
        assert s.metadata["streak"] == 3 and s.metadata["is_entry"] is False
        assert s.stop_loss < s.entry_price < s.target_price
    # the down streak that follows reaches 3+ while the close is above the macro cloud: filtered
    assert down_max >= 3
    assert not any(s.direction == "short" for _, s in out)


# ── no look-ahead ────────────────────────────────────────────────────────────────────────────
def test_context_bar_stamped_after_trigger_bar_raises() -> None:
    engine = SignalEngine()
    engine.on_bar("QQQ", "1m", OHLCV(T0, 100, 101, 99, 100.5, 1000))  # 09:31 ET
    # a 10-minute bar stamped 09:40 ET arrives before the 09:32 one-minute bar: look-ahead
    engine.on_bar("QQQ", "10m", OHLCV(T0 + timedelta(minutes=9), 100, 102, 99, 101, 9000))
    with pytest.raises(LookAheadError, match="10m context bar"):
        engine.on_bar("QQQ", "1m", OHLCV(T0 + timedelta(minutes=1), 100.5, 101, 100, 100.8, 1000))
    assert engine.tracker("QQQ", "1m").count == 1  # the offending bar was not consumed


def test_context_bar_at_the_same_time_is_allowed_and_other_tickers_are_independent() -> None:
    engine = SignalEngine()
    ts = T0 + timedelta(minutes=9)
    engine.on_bar("QQQ", "10m", OHLCV(ts, 100, 102, 99, 101, 9000))
    engine.on_bar("QQQ", "1m", OHLCV(ts, 100, 101, 99, 100.5, 1000))  # same close time: fine
    engine.on_bar("SPY", "1d", OHLCV(ts + timedelta(days=1), 500, 505, 495, 501, 1e6))
    engine.on_bar("QQQ", "1m", OHLCV(ts + timedelta(minutes=1), 100, 101, 99, 100.5, 1000))
    # out-of-order bars of one stream are rejected too
    with pytest.raises(ValueError, match="not after"):
        engine.on_bar("QQQ", "1m", OHLCV(ts, 100, 101, 99, 100.5, 1000))


def session_stream(sessions: int, seed: int, start: date = date(2025, 3, 5)) -> list[tuple[datetime, int, str, OHLCV]]:
    """Regular-session 1m bars plus 10m, 1h (anchored on :30, last one 15:30-16:00 stamped
    16:30) and 1d bars aggregated from them, each stamped with its close time, in the order a
    live feed delivers them. Crosses the 2025-03-09 DST change."""
    rng = random.Random(seed)
    events: list[tuple[datetime, int, str, OHLCV]] = []
    p = 100.0
    d = start
    done = 0
    while done < sessions:
        if d.weekday() < 5:
            open_ = datetime(d.year, d.month, d.day, 9, 30, tzinfo=NY)
            drift = rng.choice((-1, 1)) * 0.00015
            day: list[OHLCV] = []
            for k in range(390):
                end = (open_ + timedelta(minutes=k + 1)).astimezone(UTC)
                o = p
                p = p * (1 + drift + rng.gauss(0, 0.0008))
                h = max(o, p) * (1 + abs(rng.gauss(0, 0.0003)))
                low = min(o, p) * (1 - abs(rng.gauss(0, 0.0003)))
                v = 1000.0 * (1 + rng.random()) * (2.0 if k < 30 or k >= 360 else 1.0)
                b = OHLCV(end, o, h, low, p, v)
                day.append(b)
                events.append((end, 0, "1m", b))
            for tf, size, rank in (("10m", 10, 1), ("1h", 60, 2)):
                for g in range(0, 390, size):
                    chunk = day[g : g + size]
                    end = (open_ + timedelta(minutes=g + size)).astimezone(UTC)
                    agg = OHLCV(end, chunk[0].open, max(x.high for x in chunk), min(x.low for x in chunk),
                                chunk[-1].close, sum(x.volume for x in chunk))
                    events.append((end, rank, tf, agg))
            end = datetime(d.year, d.month, d.day, 20, 0, tzinfo=NY).astimezone(UTC)
            events.append((end, 3, "1d", OHLCV(end, day[0].open, max(x.high for x in day),
                                              min(x.low for x in day), day[-1].close,
                                              sum(x.volume for x in day))))
            done += 1
        d += timedelta(days=1)
    events.sort(key=lambda e: (e[0], e[1]))
    return events


def feed(engine: SignalEngine, events, ticker: str = "QQQ") -> list[TradeSignal]:
    out: list[TradeSignal] = []
    for _, _, tf, b in events:
        out.extend(engine.on_bar(ticker, tf, b))
    return out


@pytest.fixture(scope="module")
def stream():
    return session_stream(sessions=8, seed=11)


def test_prefix_invariance_no_look_ahead(stream) -> None:
    cfg = SignalEngineConfig(context_warmup=5)
    full = feed(SignalEngine(cfg), stream)
    kinds = Counter(s.signal_type for s in full)
    assert len(kinds) >= 6, kinds  # a non-trivial mix of signal types
    assert {s.timeframe for s in full} >= {"1m", "10m"}
    for frac in (0.2, 0.45, 0.7, 0.93):
        t = stream[int(len(stream) * frac)][0]
        prefix = [e for e in stream if e[0] <= t]
        part = feed(SignalEngine(cfg), prefix)
        assert part, "each prefix should hold signals"
        expected = [s for s in full if s.timestamp <= t]
        assert [s.to_dict() for s in part] == [s.to_dict() for s in expected]


def test_context_used_by_every_signal_is_never_after_it(stream) -> None:
    full = feed(SignalEngine(SignalEngineConfig(context_warmup=5)), stream)
    checked = 0
    for s in full:
        for tf, iso in s.metadata["context_bar_ts"].items():
            if iso is not None:
                assert datetime.fromisoformat(iso) <= s.timestamp, (s.signal_id, tf, iso)
                checked += 1
    assert checked > 100


def test_stream_signals_are_valid_unique_serialisable_and_deterministic(stream) -> None:
    cfg = SignalEngineConfig(context_warmup=5)
    a = feed(SignalEngine(cfg), stream)
    b = feed(SignalEngine(cfg), stream)
    assert [s.to_dict() for s in a] == [s.to_dict() for s in b]
    ids = [s.signal_id for s in a]
    assert len(ids) == len(set(ids))
    for s in a:
        d = json.loads(json.dumps(s.to_dict()))
        assert TradeSignal.from_dict(d).to_dict() == s.to_dict()
        assert 0 <= s.conviction <= 100
        # macro bias and stop beyond the macro cloud
        macro = s.cloud("macro")
        if s.direction == "long":
            assert macro.price_above and s.stop_loss == pytest.approx(macro.lower * 0.999)
        else:
            assert macro.price_below and s.stop_loss == pytest.approx(macro.upper * 1.001)
        assert s.target_price == pytest.approx(s.entry_price + 2 * (s.entry_price - s.stop_loss))
        comps = [s.metadata[k] for k in ("score_cloud", "score_mtf", "score_volume", "score_candle")]
        assert s.conviction == conviction_from_components(dict(zip("abcd", comps)))
    confl = [s for s in a if s.signal_type is SignalType.MTF_CONFLUENCE]
    assert confl, "the stream should contain multi-timeframe confluences"
    for s in confl:
        assert s.metadata["timeframes_agreeing"] == s.metadata["timeframes_checked"]
        assert s.metadata["score_mtf"] == 30.0
        assert any(
            o.signal_type.value in s.metadata["source_signals"] and o.timestamp == s.timestamp
            and o.timeframe == s.timeframe for o in a
        )
    # later sessions use the time-of-day volume profile
    assert any(s.metadata["volume_basis"] == "time_of_day" for s in a)


def test_min_conviction_to_emit_filters(stream) -> None:
    events = stream[: len(stream) // 2]
    everything = feed(SignalEngine(SignalEngineConfig(context_warmup=5)), events)
    strong = feed(SignalEngine(SignalEngineConfig(context_warmup=5, min_conviction_to_emit=60)), events)
    assert [s.to_dict() for s in strong] == [s.to_dict() for s in everything if s.conviction >= 60]
    assert len(strong) < len(everything)


# ── conviction ───────────────────────────────────────────────────────────────────────────────
def test_conviction_components_on_concrete_inputs() -> None:
    comps = conviction_components(
        clouds_agreeing=3, mtf_agreeing=3, mtf_checks=4, volume_ratio=1.5, quality=0.6
    )
    assert comps == {
        "score_cloud": 30.0,
        "score_mtf": 22.5,
        "score_volume": 11.25,
        "score_candle": pytest.approx(9.0),
    }
    assert conviction_from_components(comps) == 73  # 72.75 -> 73
    assert conviction_from_components({"x": 72.5}) == 73  # half rounds up (no banker's rounding)
    assert conviction_from_components({"x": 150.0}) == 100
    assert conviction_from_components({"x": -3.0}) == 0
    assert conviction_components(4, 0, 0, 1.0, 0.0)["score_mtf"] == 0.0  # no higher timeframe
    assert volume_score(2.0) == 15.0 and volume_score(5.0) == 15.0 and volume_score(1.0) == 7.5
    assert volume_score(0.0) == 0.0


def test_candle_quality() -> None:
    # green candle o 10 h 12 l 9 c 11.5: range 3, body 1.5 -> 0.5; close position 2.5/3
    q, body, pos = candle_quality(10.0, 12.0, 9.0, 11.5, "long")
    assert (body, pos) == (0.5, pytest.approx(2.5 / 3)) and q == pytest.approx(0.5 * 0.5 + 0.5 * 2.5 / 3)
    # the same candle for a short: wrong colour -> no body credit; (high - close)/range
    q, body, pos = candle_quality(10.0, 12.0, 9.0, 11.5, "short")
    assert body == 0.0 and pos == pytest.approx(0.5 / 3) and q == pytest.approx(0.25 / 3)
    assert candle_quality(10.0, 10.0, 10.0, 10.0, "long") == (0.25, 0.0, 0.5)  # zero range


def _flip_with_context(h1_rising: bool, context_warmup: int = 5) -> list[TradeSignal]:
    cfg = SignalEngineConfig(
        trigger_timeframes=("1m",), context_timeframes=("10m", "1h"), context_warmup=context_warmup
    )
    engine = SignalEngine(cfg)
    prev_day = datetime(2025, 2, 28, 15, 0, tzinfo=UTC)
    for k in range(10):  # completed higher bars of the previous session
        p10 = 100 + k
        engine.on_bar("QQQ", "10m", OHLCV(prev_day + timedelta(minutes=10 * k), p10, p10 + 1, p10 - 1, p10 + 0.5, 1e4))
        p1h = 100 + k if h1_rising else 120 - k
        engine.on_bar("QQQ", "1h", OHLCV(prev_day - timedelta(hours=10 - k), p1h, p1h + 1, p1h - 1, p1h, 1e5))
    return [s for _, s in run(engine, "QQQ", "1m", flip_series())]


def test_conviction_multi_timeframe_component_and_confluence() -> None:
    # 10m rising (fast + macro bullish: 2 checks), 1h falling (0): 2 of 4 -> 15 points
    out = _flip_with_context(h1_rising=False)
    assert [s.signal_type for s in out] == [SignalType.CLOUD_FLIP_BULLISH]
    m = out[0].metadata
    assert (m["mtf_alignment"], m["mtf_checks"], m["score_mtf"]) == (2, 4, 15.0)
    assert m["timeframes_agreeing"] == ["10m"] and m["timeframes_checked"] == ["10m", "1h"]
    assert out[0].conviction == 75  # 40 + 15 + 9.62 + 10 = 74.62
    assert m["context_bar_ts"] == {"10m": "2025-02-28T16:30:00+00:00", "1h": "2025-02-28T14:00:00+00:00"}

    # both higher timeframes bullish: 30 points and one extra mtf_confluence signal
    out = _flip_with_context(h1_rising=True)
    assert [s.signal_type for s in out] == [SignalType.CLOUD_FLIP_BULLISH, SignalType.MTF_CONFLUENCE]
    assert all(s.conviction == 90 for s in out)  # 40 + 30 + 9.62 + 10 = 89.62
    conf = out[1]
    assert conf.metadata["source_signals"] == ["cloud_flip_bullish"]
    assert conf.direction == "long" and conf.entry_price == out[0].entry_price
    assert conf.stop_loss == out[0].stop_loss and conf.signal_id != out[0].signal_id

    # higher timeframes not warmed up (10 bars < 50): they agree on nothing, no confluence
    out = _flip_with_context(h1_rising=True, context_warmup=50)
    assert [s.signal_type for s in out] == [SignalType.CLOUD_FLIP_BULLISH]
    assert out[0].metadata["score_mtf"] == 0.0 and out[0].conviction == 60


# ── volume by time of day ────────────────────────────────────────────────────────────────────
def test_volume_profile_time_of_day_then_running_mean() -> None:
    vp = VolumeProfile(lookback=3, min_sessions=2)
    assert vp.ratio(570, 500.0) == (1.0, 0.0, "none")
    vp.record(570, 100.0)
    vp.record(571, 300.0)
    # one value in bucket 570 (< 2 sessions): running mean of everything so far = 200
    assert vp.ratio(570, 300.0) == (1.5, 200.0, "running_mean")
    vp.record(570, 200.0)
    assert vp.ratio(570, 300.0) == (2.0, 150.0, "time_of_day")  # mean(100, 200)
    vp.record(570, 300.0)
    vp.record(570, 400.0)  # lookback 3: 100 drops out -> mean(200, 300, 400) = 300
    assert vp.ratio(570, 600.0) == (2.0, 300.0, "time_of_day")


def test_time_of_day_bucket_is_new_york_bar_start_across_dst() -> None:
    engine = SignalEngine()
    # 09:30 ET bar (1m) closes 14:31 UTC in EST and 13:31 UTC in EDT (DST began 2025-03-09)
    assert engine._bucket(datetime(2025, 3, 7, 14, 31, tzinfo=UTC), 1) == 570
    assert engine._bucket(datetime(2025, 3, 10, 13, 31, tzinfo=UTC), 1) == 570
    assert engine._bucket(datetime(2025, 3, 10, 14, 40, tzinfo=UTC), 10) == 630  # 10:30 ET
    assert engine._bucket(datetime(2025, 3, 10, 14, 30, tzinfo=UTC), 60) == 570  # 09:30-10:30
    # a non-UTC aware timestamp gives the same answer
    assert engine._bucket(datetime(2025, 3, 10, 9, 31, tzinfo=NY), 1) == 570


def test_time_of_day_volume_ratio_matches_an_independent_computation(stream) -> None:
    """volume_ratio = volume / mean volume of the same New York bar-start minute over the
    previous (up to 10) sessions, once 3 sessions exist; recomputed here from the raw stream."""
    signals = feed(SignalEngine(SignalEngineConfig(context_warmup=5)), stream)
    minutes = {"1m": 1, "10m": 10, "1h": 60}
    volume: dict[tuple[str, datetime], float] = {}
    # (timeframe, New York bar-start hh:mm) -> [(session date, volume), ...] in time order
    by_minute: dict[tuple[str, int, int], list[tuple[date, float]]] = {}
    for _, _, tf, b in stream:
        if tf in minutes:
            volume[(tf, b.ts)] = b.volume
            st = b.ts.astimezone(NY) - timedelta(minutes=minutes[tf])
            by_minute.setdefault((tf, st.hour, st.minute), []).append((st.date(), b.volume))
    checked = 0
    for s in signals:
        if s.metadata["volume_basis"] != "time_of_day":
            continue
        start = s.timestamp.astimezone(NY) - timedelta(minutes=minutes[s.timeframe])
        rows = by_minute[(s.timeframe, start.hour, start.minute)]
        prev = [v for d, v in rows if d < start.date()][-10:]
        assert len(prev) >= 3
        vol = volume[(s.timeframe, s.timestamp)]
        assert s.metadata["volume_avg"] == pytest.approx(sum(prev) / len(prev), rel=1e-12)
        assert s.metadata["volume_ratio"] == pytest.approx(vol / (sum(prev) / len(prev)), rel=1e-12)
        checked += 1
    assert checked > 20


# ── configuration ────────────────────────────────────────────────────────────────────────────
@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"price_source": "open"}, "price_source"),
        ({"trigger_timeframes": ("2m",)}, "trigger_timeframes"),
        ({"context_timeframes": ("1w",)}, "context_timeframes"),
        ({"reward_to_risk": 0}, "reward_to_risk"),
        ({"stop_buffer": -0.1}, "stop_buffer"),
        ({"min_conviction_to_emit": 101}, "min_conviction_to_emit"),
        ({"warmup": 0}, "warmup"),
        ({"warmup": 49}, "warmup"),  # below the macro long EMA period
        ({"enabled_signals": ("cloud_wobble",)}, "enabled_signals"),
    ],
)
def test_config_validation(kwargs: dict, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        SignalEngineConfig(**kwargs)


def test_defaults_and_unknown_timeframe() -> None:
    cfg = SignalEngineConfig()
    assert cfg.trigger_timeframes == ("1m", "10m", "1h")
    assert cfg.context_timeframes == ("1m", "10m", "1h", "1d")
    assert cfg.min_conviction_to_emit == 0 and cfg.reward_to_risk == 2.0 and cfg.price_source == "close"
    assert cfg.warmup_bars == 50
    assert SignalEngineConfig(include_long_term=True).warmup_bars == 200
    engine = SignalEngine()
    assert engine.on_bar("QQQ", "5m", OHLCV(T0, 1, 1, 1, 1, 1)) == []  # not configured: ignored
    with pytest.raises(ValueError, match="timeframe"):
        engine.on_bar("QQQ", "3m", OHLCV(T0, 1, 1, 1, 1, 1))
