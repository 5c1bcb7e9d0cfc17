"""EMA-cloud signal engine (this project's stand-in for the upstream "PRD-134" engine).

``SignalEngine(config).on_bar(ticker, timeframe, bar) -> list[TradeSignal]``: feed COMPLETED bars
of every timeframe, in time order, stamped with their close time; the engine keeps one
``CloudTracker`` per (ticker, timeframe) and returns the signals the bar triggers. Pure Python,
deterministic, no wall clock, O(1) work per bar (CloudState objects, metadata and TradeSignals are
only built when a signal fires).

No look-ahead
-------------
A signal on a trigger timeframe reads a higher timeframe only through that timeframe's latest bar
already fed to the engine. Because the caller feeds only completed bars, stamped with their close
time, that is the latest completed higher bar at or before the trigger bar. The engine asserts it:
if a higher context timeframe's latest bar is stamped AFTER the trigger bar, ``on_bar`` raises
``LookAheadError``. Bars of one (ticker, timeframe) must arrive with strictly increasing ``ts``
(``ValueError`` otherwise).

Detection (on ``trigger_timeframes`` only, after warm-up)
---------------------------------------------------------
Cloud values are those after the current bar; "above/below a cloud" compares the bar's close with
the cloud band [min(short, long), max(short, long)] (strictly; edges count as inside).

=================== ========== ===============================================================
signal              direction  rule
=================== ========== ===============================================================
cloud_flip_*        long/short the fast cloud (5/12) changes colour on this bar
                               (bullish = short EMA >= long EMA)
cloud_cross_*       long/short the close moves from below-or-inside to above (bullish), or from
                               above-or-inside to below (bearish), the trend cloud (20/21):
                               previous close vs previous cloud, this close vs this cloud
cloud_bounce_long   long       close above the macro cloud, pullback cloud (8/9) bullish, the
                               previous close above the pullback cloud, low <= its upper edge
                               < close (touched/entered it and closed back above), green candle
cloud_bounce_short  short      mirror: close below macro, pullback cloud bearish, previous
                               close below it, high >= its lower edge > close, red candle
trend_aligned_*     long/short the four core clouds all bullish with the close above all four
                               (long), or all bearish with the close below all four (short);
                               emitted on the bar that state is first reached after the clouds
                               were last NOT all bullish (bearish). Only a colour change re-arms
                               it; the close dipping into a cloud and back does not. (A state
                               already in place when the stream starts is not reported.)
momentum_exhaustion long/short N (default 3) or more consecutive bars closing above (below) the
                               fast cloud with green (red) candles; direction = the extended
                               side ('long' = an extended up move); emitted once per streak, on
                               the first bar with streak >= N that passes the macro-bias
                               filter; a streak ends on any bar that is not outside on the same
                               side with the same colour. ``metadata["is_entry"] = False``: an
                               exit warning, not an entry
mtf_confluence      long/short one extra signal when an entry signal (any of the above except
                               momentum_exhaustion) fired on this bar and EVERY higher context
                               timeframe (context timeframes longer than the trigger: 10m/1h/1d
                               for 1m by default) has a tracker with >= ``context_warmup`` bars
                               whose fast AND macro clouds have the signal's colour;
                               ``metadata["source_signals"]`` lists the entry signals
=================== ========== ===============================================================

Filters applied to every signal: long only when the close is above the macro (34/50) cloud, short
only when below it (momentum_exhaustion included); warm-up: nothing before the timeframe's tracker
has seen ``warmup`` bars (default: the longest EMA period, 50 = the macro long EMA);
``conviction >= min_conviction_to_emit`` (default 0: everything is emitted, the executor filters).

Prices: entry = bar close; long stop = macro lower edge x (1 - stop_buffer), short stop = macro
upper edge x (1 + stop_buffer) (a stop on the wrong side of entry suppresses the signal);
target = entry +/- reward_to_risk x |entry - stop|. No rounding.

Conviction (0-100)
------------------
=================== ===== =======================================================================
component           max   rule
=================== ===== =======================================================================
cloud alignment     40    10 per core cloud (fast, pullback, trend, macro) of this timeframe whose
                          colour matches the direction (bullish for long, bearish for short)
multi-timeframe     30    30 x agreeing / (2 x H): H = number of higher context timeframes; each
                          one contributes two checks, fast colour and macro colour matching the
                          direction; a higher timeframe with no warmed-up tracker (``context_
                          warmup`` bars) agrees on nothing; H = 0 -> 0
volume              15    15 x min(volume_ratio, 2) / 2. volume_ratio = this bar's volume / mean
                          volume of the same time-of-day bucket over the previous
                          ``volume_lookback_sessions`` sessions (bucket = America/New_York minute
                          of day of the bar's START; one bucket for 1d). With fewer than
                          ``volume_min_sessions`` values in the bucket: / the running mean of all
                          earlier bars of that ticker and timeframe; with no history, or a
                          non-positive mean: ratio 1.0
candle quality      15    15 x q, q = 0.5 x body/range (0 when the candle's colour opposes the
                          direction) + 0.5 x close position in the range in the direction
                          ((close - low)/range long, (high - close)/range short); range 0 -> q 0.25
=================== ===== =======================================================================

conviction = floor(sum + 0.5), clamped to 0..100. All signals of one bar and direction share it.
``metadata`` (JSON-serialisable): the component scores, volume_ratio / volume_avg /
volume_basis / volume_confirmed (ratio >= ``volume_confirm_ratio``, 1.2), candle_quality /
body_ratio / close_position, cloud_alignment (count 0-4) / clouds_agreeing, mtf_alignment
(agreeing checks) / mtf_checks / timeframes_agreeing / timeframes_checked / context_bar_ts,
price_source, macro_upper / macro_lower, is_entry, and per type ``streak`` (exhaustion) or
``source_signals`` (confluence).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from zoneinfo import ZoneInfo

from strategies.signals.ema_cloud import (
    ABOVE,
    BELOW,
    CORE_LAYER_NAMES,
    DEFAULT_LAYERS,
    LONG_TERM_LAYERS,
    OHLCV,
    PRICE_SOURCES,
    CloudLayer,
    CloudTracker,
)
from strategies.trade_executor.models import CloudState, SignalType, TradeSignal

__all__ = [
    "LookAheadError",
    "SignalEngineConfig",
    "SignalEngine",
    "VolumeProfile",
    "TIMEFRAME_MINUTES",
    "candle_quality",
    "volume_score",
    "conviction_components",
    "conviction_from_components",
]

TIMEFRAME_MINUTES: dict[str, int] = {"1m": 1, "5m": 5, "10m": 10, "1h": 60, "1d": 1440}

CLOUD_POINTS = 10.0  # per agreeing core cloud (4 clouds -> 40)
MTF_MAX = 30.0
VOLUME_MAX = 15.0
VOLUME_RATIO_CAP = 2.0
CANDLE_MAX = 15.0


class LookAheadError(RuntimeError):
    """A higher-timeframe context bar is stamped after the lower-timeframe bar it would serve."""


# ── pure scoring helpers ─────────────────────────────────────────────────────────────────────
def candle_quality(
    open_: float, high: float, low: float, close: float, direction: str
) -> tuple[float, float, float]:
    """(quality 0-1, body_ratio 0-1, close_position 0-1) of a candle in ``direction``."""
    rng = high - low
    if rng <= 0.0:
        return 0.25, 0.0, 0.5
    if direction == "long":
        body = (close - open_) / rng if close > open_ else 0.0
        pos = (close - low) / rng
    else:
        body = (open_ - close) / rng if close < open_ else 0.0
        pos = (high - close) / rng
    body = min(max(body, 0.0), 1.0)
    pos = min(max(pos, 0.0), 1.0)
    return 0.5 * body + 0.5 * pos, body, pos


def volume_score(ratio: float) -> float:
    """15 x min(ratio, 2) / 2 (0 for a non-positive ratio)."""
    if not ratio > 0.0:
        return 0.0
    return VOLUME_MAX * min(ratio, VOLUME_RATIO_CAP) / VOLUME_RATIO_CAP


def conviction_components(
    clouds_agreeing: int,
    mtf_agreeing: int,
    mtf_checks: int,
    volume_ratio: float,
    quality: float,
) -> dict[str, float]:
    """The four component scores (see the module docstring's table)."""
    return {
        "score_cloud": CLOUD_POINTS * clouds_agreeing,
        "score_mtf": MTF_MAX * mtf_agreeing / mtf_checks if mtf_checks else 0.0,
        "score_volume": volume_score(volume_ratio),
        "score_candle": CANDLE_MAX * quality,
    }


def conviction_from_components(components: dict[str, float]) -> int:
    """floor(sum + 0.5), clamped to 0..100."""
    total = sum(components.values())
    return max(0, min(100, math.floor(total + 0.5)))


# ── volume by time of day ────────────────────────────────────────────────────────────────────
class VolumeProfile:
    """Per time-of-day bucket: the last ``lookback`` volumes; plus a running mean of all bars."""

    __slots__ = ("lookback", "min_sessions", "_buckets", "_total", "_n")

    def __init__(self, lookback: int = 10, min_sessions: int = 3) -> None:
        self.lookback = lookback
        self.min_sessions = min_sessions
        self._buckets: dict[int, deque[float]] = {}
        self._total = 0.0
        self._n = 0

    def ratio(self, bucket: int, volume: float) -> tuple[float, float, str]:
        """(volume ratio, the average it divides by, basis) BEFORE recording this bar."""
        hist = self._buckets.get(bucket)
        if hist is not None and len(hist) >= self.min_sessions:
            avg, basis = sum(hist) / len(hist), "time_of_day"
        elif self._n:
            avg, basis = self._total / self._n, "running_mean"
        else:
            return 1.0, 0.0, "none"
        if avg <= 0.0:
            return 1.0, avg, basis
        return volume / avg, avg, basis

    def record(self, bucket: int, volume: float) -> None:
        hist = self._buckets.get(bucket)
        if hist is None:
            hist = self._buckets[bucket] = deque(maxlen=self.lookback)
        hist.append(volume)
        self._total += volume
        self._n += 1


# ── configuration ────────────────────────────────────────────────────────────────────────────
@dataclass(frozen=True)
class SignalEngineConfig:
    price_source: str = "close"  # "close" or "hl2" = (high + low) / 2
    trigger_timeframes: tuple[str, ...] = ("1m", "10m", "1h")
    context_timeframes: tuple[str, ...] = ("1m", "10m", "1h", "1d")
    layers: tuple[CloudLayer, ...] = DEFAULT_LAYERS
    include_long_term: bool = False  # add the 72/89 and 180/200 clouds (reported, not scored)
    # bars a trigger timeframe must have seen before it may signal; None -> the longest EMA period
    # (50 by default); never below the macro cloud's long period
    warmup: int | None = None
    # bars a higher timeframe must have seen before it counts in the multi-timeframe score and
    # confluence; None -> warmup. Lower it for short histories (1d needs 50 sessions otherwise)
    context_warmup: int | None = None
    min_conviction_to_emit: int = 0
    stop_buffer: float = 0.001  # stop = macro edge -/+ this fraction
    reward_to_risk: float = 2.0
    volume_lookback_sessions: int = 10
    volume_min_sessions: int = 3
    volume_confirm_ratio: float = 1.2
    exhaustion_bars: int = 3
    history: int = 10  # bars each tracker keeps in ``recent``
    timezone: str = "America/New_York"
    enabled_signals: tuple[str, ...] = field(default_factory=lambda: tuple(t.value for t in SignalType))

    def __post_init__(self) -> None:
        if self.price_source not in PRICE_SOURCES:
            raise ValueError(f"price_source must be one of {PRICE_SOURCES}, got {self.price_source!r}")
        for name in ("trigger_timeframes", "context_timeframes"):
            tfs = tuple(getattr(self, name))
            object.__setattr__(self, name, tfs)
            bad = [tf for tf in tfs if tf not in TIMEFRAME_MINUTES]
            if bad:
                raise ValueError(f"{name}: unknown timeframes {bad}; use {list(TIMEFRAME_MINUTES)}")
        if not self.trigger_timeframes:
            raise ValueError("trigger_timeframes must not be empty")
        object.__setattr__(self, "layers", tuple(self.layers))
        object.__setattr__(self, "enabled_signals", tuple(self.enabled_signals))
        names = [layer.name for layer in self.layers]
        missing = [n for n in CORE_LAYER_NAMES if n not in names]
        if missing:
            raise ValueError(f"layers: missing core clouds {missing}")
        for name in ("warmup", "context_warmup"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
                raise ValueError(f"{name} must be a positive integer or None, got {v!r}")
        macro_long = next(layer.long_period for layer in self.layers if layer.name == "macro")
        if self.warmup is not None and self.warmup < macro_long:
            raise ValueError(
                f"warmup must be >= the macro cloud's long period {macro_long}, got {self.warmup}"
            )
        if not 0 <= self.min_conviction_to_emit <= 100:
            raise ValueError(f"min_conviction_to_emit must be 0-100, got {self.min_conviction_to_emit!r}")
        if not 0.0 <= self.stop_buffer < 0.5:
            raise ValueError(f"stop_buffer must be in [0, 0.5), got {self.stop_buffer!r}")
        if not self.reward_to_risk > 0:
            raise ValueError(f"reward_to_risk must be > 0, got {self.reward_to_risk!r}")
        for name in ("volume_lookback_sessions", "volume_min_sessions", "exhaustion_bars", "history"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        if self.volume_min_sessions > self.volume_lookback_sessions:
            raise ValueError("volume_min_sessions must be <= volume_lookback_sessions")
        if not self.volume_confirm_ratio > 0:
            raise ValueError(f"volume_confirm_ratio must be > 0, got {self.volume_confirm_ratio!r}")
        known = {t.value for t in SignalType}
        bad = [s for s in self.enabled_signals if s not in known]
        if bad:
            raise ValueError(f"enabled_signals: unknown signal types {bad}")
        ZoneInfo(self.timezone)  # raises for an unknown zone

    @property
    def all_layers(self) -> tuple[CloudLayer, ...]:
        if self.include_long_term:
            have = {layer.name for layer in self.layers}
            return self.layers + tuple(lt for lt in LONG_TERM_LAYERS if lt.name not in have)
        return self.layers

    @property
    def warmup_bars(self) -> int:
        if self.warmup is not None:
            return self.warmup
        return max(layer.long_period for layer in self.all_layers)

    @property
    def context_warmup_bars(self) -> int:
        return self.context_warmup if self.context_warmup is not None else self.warmup_bars


# signal types detected per rule, by direction
_FLIP = {1: SignalType.CLOUD_FLIP_BULLISH, -1: SignalType.CLOUD_FLIP_BEARISH}
_CROSS = {1: SignalType.CLOUD_CROSS_BULLISH, -1: SignalType.CLOUD_CROSS_BEARISH}
_BOUNCE = {1: SignalType.CLOUD_BOUNCE_LONG, -1: SignalType.CLOUD_BOUNCE_SHORT}
_ALIGNED = {1: SignalType.TREND_ALIGNED_LONG, -1: SignalType.TREND_ALIGNED_SHORT}
_DIRECTION = {1: "long", -1: "short"}


class SignalEngine:
    """EMA-cloud signals from completed multi-timeframe bars (see the module docstring)."""

    def __init__(self, config: SignalEngineConfig | None = None) -> None:
        self.config = config or SignalEngineConfig()
        cfg = self.config
        self._layers = cfg.all_layers
        self._tz = ZoneInfo(cfg.timezone)
        self._triggers = frozenset(cfg.trigger_timeframes)
        self._tracked = frozenset(cfg.trigger_timeframes) | frozenset(cfg.context_timeframes)
        # higher context timeframes of each trigger timeframe, shortest first
        self._higher: dict[str, tuple[str, ...]] = {
            tf: tuple(
                sorted(
                    {c for c in cfg.context_timeframes if TIMEFRAME_MINUTES[c] > TIMEFRAME_MINUTES[tf]},
                    key=TIMEFRAME_MINUTES.__getitem__,
                )
            )
            for tf in cfg.trigger_timeframes
        }
        self._warmup = cfg.warmup_bars
        self._context_warmup = cfg.context_warmup_bars
        self._enabled = frozenset(SignalType(s) for s in cfg.enabled_signals)
        self._exhaustion = cfg.exhaustion_bars
        self._offsets: dict[tuple[int, int, int, int], int] = {}
        # ticker -> timeframe -> tracker / volume profile
        self._trackers: dict[str, dict[str, CloudTracker]] = {}
        self._volumes: dict[str, dict[str, VolumeProfile]] = {}
        self.bars_seen = 0
        self.signals_emitted = 0

    # ── accessors ────────────────────────────────────────────────────────────────────────────
    def tracker(self, ticker: str, timeframe: str) -> CloudTracker | None:
        return self._trackers.get(ticker, {}).get(timeframe)

    def cloud_states(self, ticker: str, timeframe: str) -> list[CloudState]:
        tr = self.tracker(ticker, timeframe)
        return tr.states() if tr is not None else []

    # ── the per-bar entry point ──────────────────────────────────────────────────────────────
    def on_bar(self, ticker: str, timeframe: str, bar: OHLCV) -> list[TradeSignal]:
        if timeframe not in self._tracked:
            if timeframe not in TIMEFRAME_MINUTES:
                raise ValueError(f"timeframe must be one of {list(TIMEFRAME_MINUTES)}, got {timeframe!r}")
            return []
        by_tf = self._trackers.get(ticker)
        if by_tf is None:
            by_tf = self._trackers[ticker] = {}
            self._volumes[ticker] = {}
        ts = bar.ts
        is_trigger = timeframe in self._triggers
        if is_trigger:
            # no look-ahead: every higher context bar must be stamped at or before this bar
            # (checked before any state changes, so a violation leaves the engine untouched)
            higher = self._higher[timeframe]
            for htf in higher:
                htr = by_tf.get(htf)
                if htr is not None and htr.last_ts > ts:  # type: ignore[operator]
                    raise LookAheadError(
                        f"{ticker} {htf} context bar stamped {htr.last_ts.isoformat()} is after "  # type: ignore[union-attr]
                        f"the {timeframe} trigger bar stamped {ts.isoformat()}"
                    )
        tr = by_tf.get(timeframe)
        if tr is None:
            tr = by_tf[timeframe] = CloudTracker(
                self._layers, self.config.price_source, self.config.history, self._warmup
            )
        tr.update_fast(bar)
        self.bars_seen += 1
        if not is_trigger:
            return []

        vp = self._volumes[ticker].get(timeframe)
        if vp is None:
            vp = self._volumes[ticker][timeframe] = VolumeProfile(
                self.config.volume_lookback_sessions, self.config.volume_min_sessions
            )
        bucket = 0 if timeframe == "1d" else self._bucket(ts, TIMEFRAME_MINUTES[timeframe])

        signals: list[TradeSignal] = []
        if tr.count >= self._warmup and (
            tr.fast_flip
            or tr.trend_cross
            or tr.bounce
            or tr.aligned_transition
            or (
                not tr.exhaustion_emitted
                and (tr.up_streak >= self._exhaustion or tr.down_streak >= self._exhaustion)
            )
        ):
            found = self._detect(tr)
            if found:
                signals = self._build(ticker, timeframe, bar, tr, found, vp, bucket, higher, by_tf)
        vp.record(bucket, bar.volume)
        return signals

    def _bucket(self, ts: datetime, minutes: int) -> int:
        """Local (America/New_York) minute of day of the bar's start = close ts - its length.

        The UTC offset is cached per UTC hour (US zone transitions happen on whole hours).
        """
        key = (ts.year, ts.month, ts.day, ts.hour)
        off = self._offsets.get(key)
        if off is None:
            if len(self._offsets) > 50_000:
                self._offsets.clear()
            utc = ts.astimezone(timezone.utc)
            local = utc.astimezone(self._tz)
            off = self._offsets[key] = (
                (local.hour * 60 + local.minute) - (utc.hour * 60 + utc.minute)
            )
            if ts.utcoffset():  # key was built from a non-UTC wall clock: do not cache it
                del self._offsets[key]
                return (local.hour * 60 + local.minute - minutes) % 1440
        return (ts.hour * 60 + ts.minute + off - minutes) % 1440

    # ── detection ────────────────────────────────────────────────────────────────────────────
    def _detect(self, tr: CloudTracker) -> list[tuple[SignalType, int, dict[str, Any]]]:
        """Raw (type, direction +1/-1, extra metadata) before the bias filter."""
        found: list[tuple[SignalType, int, dict[str, Any]]] = []
        d = tr.fast_flip
        if d:
            found.append((_FLIP[d], d, {}))
        d = tr.trend_cross
        if d:
            found.append((_CROSS[d], d, {}))
        d = tr.bounce
        if d:
            found.append((_BOUNCE[d], d, {}))
        d = tr.aligned_transition
        if d:
            found.append((_ALIGNED[d], d, {}))
        n = self._exhaustion
        if not tr.exhaustion_emitted:
            if tr.up_streak >= n:
                found.append((SignalType.MOMENTUM_EXHAUSTION, 1, {"streak": tr.up_streak}))
            elif tr.down_streak >= n:
                found.append((SignalType.MOMENTUM_EXHAUSTION, -1, {"streak": tr.down_streak}))
        if not found:
            return found
        # macro bias: long only above the macro cloud, short only below it
        mpos = tr.position[tr.i_macro]
        bias = 1 if mpos == ABOVE else (-1 if mpos == BELOW else 0)
        kept = [f for f in found if f[1] == bias and f[0] in self._enabled]
        for f in kept:
            if f[0] is SignalType.MOMENTUM_EXHAUSTION:
                # the streak is reported now; min_conviction_to_emit is a pure filter on top
                tr.exhaustion_emitted = True
        return kept

    # ── building signals (only when something fired) ─────────────────────────────────────────
    def _build(
        self,
        ticker: str,
        timeframe: str,
        bar: OHLCV,
        tr: CloudTracker,
        found: list[tuple[SignalType, int, dict[str, Any]]],
        vp: VolumeProfile,
        bucket: int,
        higher: tuple[str, ...],
        by_tf: dict[str, CloudTracker],
    ) -> list[TradeSignal]:
        cfg = self.config
        direction_sign = found[0][1]  # the bias filter leaves one direction
        direction = _DIRECTION[direction_sign]
        want_bull = direction_sign == 1
        close = bar.close
        im = tr.i_macro
        macro_upper, macro_lower = tr.upper[im], tr.lower[im]
        if want_bull:
            stop = macro_lower * (1.0 - cfg.stop_buffer)
            if not stop < close:
                return []
            target = close + cfg.reward_to_risk * (close - stop)
        else:
            stop = macro_upper * (1.0 + cfg.stop_buffer)
            if not stop > close:
                return []
            target = close - cfg.reward_to_risk * (stop - close)
            if not target > 0.0:
                target = None  # type: ignore[assignment]

        # this timeframe's cloud alignment
        bull = tr.bullish
        clouds_agreeing = [
            name
            for name, i in zip(CORE_LAYER_NAMES, (tr.i_fast, tr.i_pullback, tr.i_trend, tr.i_macro))
            if bull[i] == want_bull
        ]
        # higher timeframes
        tf_agreeing: list[str] = []
        mtf_agree = 0
        context_ts: dict[str, str | None] = {}
        for htf in higher:
            htr = by_tf.get(htf)
            context_ts[htf] = htr.last_ts_iso if htr is not None else None
            if htr is None or htr.count < self._context_warmup:
                continue
            fast_ok = htr.bullish[htr.i_fast] == want_bull
            macro_ok = htr.bullish[htr.i_macro] == want_bull
            mtf_agree += fast_ok + macro_ok
            if fast_ok and macro_ok:
                tf_agreeing.append(htf)
        mtf_checks = 2 * len(higher)

        ratio, avg, basis = vp.ratio(bucket, bar.volume)
        quality, body, pos = candle_quality(bar.open, bar.high, bar.low, close, direction)
        comps = conviction_components(len(clouds_agreeing), mtf_agree, mtf_checks, ratio, quality)
        conviction = conviction_from_components(comps)
        if conviction < cfg.min_conviction_to_emit:
            return []

        common: dict[str, Any] = {
            "price_source": cfg.price_source,
            "volume": float(bar.volume),
            "volume_ratio": ratio,
            "volume_avg": avg,
            "volume_basis": basis,
            "volume_confirmed": ratio >= cfg.volume_confirm_ratio,
            "candle_quality": quality,
            "body_ratio": body,
            "close_position": pos,
            "cloud_alignment": len(clouds_agreeing),
            "clouds_agreeing": clouds_agreeing,
            "mtf_alignment": mtf_agree,
            "mtf_checks": mtf_checks,
            "timeframes_agreeing": tf_agreeing,
            "timeframes_checked": list(higher),
            "context_bar_ts": context_ts,
            "macro_upper": macro_upper,
            "macro_lower": macro_lower,
            "conviction_raw": sum(comps.values()),
            **comps,
        }
        states = tr.states()
        ts = bar.ts  # TradeSignal normalises it to UTC

        def make(stype: SignalType, extra: dict[str, Any]) -> TradeSignal:
            meta = dict(common)
            meta["is_entry"] = stype is not SignalType.MOMENTUM_EXHAUSTION
            meta.update(extra)
            return TradeSignal(
                signal_type=stype,
                direction=direction,
                ticker=ticker,
                timeframe=timeframe,
                conviction=conviction,
                entry_price=close,
                stop_loss=stop,
                target_price=target,
                cloud_states=list(states),
                timestamp=ts,
                metadata=meta,
            )

        out = [make(stype, extra) for stype, _, extra in found]
        entries = [s.signal_type.value for s in out if s.signal_type is not SignalType.MOMENTUM_EXHAUSTION]
        if (
            entries
            and higher
            and len(tf_agreeing) == len(higher)
            and SignalType.MTF_CONFLUENCE in self._enabled
        ):
            out.append(make(SignalType.MTF_CONFLUENCE, {"source_signals": entries}))
        self.signals_emitted += len(out)
        return out
