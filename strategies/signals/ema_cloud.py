"""EMA clouds, incrementally: the building blocks of the EMA-cloud signal engine.

Pure Python (no NautilusTrader, no pandas, no wall clock). Every update is O(1) in time and memory.

* ``OHLCV``: one completed bar; ``ts`` is the bar's CLOSE time (tz-aware, UTC).
* ``EMA(period)``: alpha = 2 / (period + 1), seeded with the first value
  (``ema_1 = x_1``, ``ema_t = alpha * x_t + (1 - alpha) * ema_{t-1}``).
* ``CloudLayer(name, short_period, long_period)``: an EMA pair. Defaults (domain-facts §1):
  fast 5/12, pullback 8/9, trend 20/21, macro 34/50; optional long-term 72/89 and 180/200.
* ``CloudTracker``: all layers of one (ticker, timeframe). ``update(bar)`` feeds the bar's price
  (``close`` or ``hl2`` = (high + low) / 2) to every EMA and returns one ``CloudState`` per layer.
  It also keeps what the detection rules need from the previous bar (cloud colours, where the
  close sat relative to each cloud), same-colour streaks outside the fast cloud, and the last few
  bars.

Cloud semantics (used everywhere in this package):

* a cloud is bullish when its short EMA >= its long EMA;
* its band is [lower, upper] = [min(short, long), max(short, long)];
* the close is *above* the cloud when close > upper, *below* when close < lower, *inside*
  otherwise (edges count as inside); the position always uses the bar's close, also when the EMAs
  are computed on hl2;
* thickness = |short - long| / close.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import datetime, timezone

from strategies.trade_executor.models import CloudState
from strategies.trade_executor.timeutil import aware

__all__ = [
    "OHLCV",
    "EMA",
    "CloudLayer",
    "CloudTracker",
    "make_cloud_state",
    "DEFAULT_LAYERS",
    "LONG_TERM_LAYERS",
    "CORE_LAYER_NAMES",
    "PRICE_SOURCES",
    "ABOVE",
    "INSIDE",
    "BELOW",
]

PRICE_SOURCES = ("close", "hl2")

# position of the close relative to a cloud band
ABOVE = 1
INSIDE = 0
BELOW = -1


@dataclass(frozen=True, slots=True)
class OHLCV:
    """One completed bar. ``ts`` = the bar's close time, timezone-aware (UTC)."""

    ts: datetime
    open: float
    high: float
    low: float
    close: float
    volume: float

    def __post_init__(self) -> None:
        aware(self.ts, "ts")

    @property
    def hl2(self) -> float:
        return (self.high + self.low) / 2.0


class EMA:
    """Incremental exponential moving average, alpha = 2 / (period + 1), seeded with the first value."""

    __slots__ = ("period", "alpha", "_beta", "value", "count")

    def __init__(self, period: int) -> None:
        if isinstance(period, bool) or not isinstance(period, int) or period < 1:
            raise ValueError(f"period must be a positive integer, got {period!r}")
        self.period = period
        self.alpha = 2.0 / (period + 1)
        self._beta = 1.0 - self.alpha
        self.value: float | None = None
        self.count = 0

    def update(self, x: float) -> float:
        if self.count:
            self.value = self.alpha * x + self._beta * self.value  # type: ignore[operator]
        else:
            self.value = float(x)
        self.count += 1
        return self.value  # type: ignore[return-value]

    @property
    def ready(self) -> bool:
        """True once it has seen at least ``period`` values."""
        return self.count >= self.period

    def __repr__(self) -> str:
        return f"EMA(period={self.period}, value={self.value!r}, count={self.count})"


@dataclass(frozen=True, slots=True)
class CloudLayer:
    """An EMA pair forming one cloud."""

    name: str
    short_period: int
    long_period: int

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("name must be a non-empty string")
        for f in ("short_period", "long_period"):
            v = getattr(self, f)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{f} must be a positive integer, got {v!r}")
        if self.short_period >= self.long_period:
            raise ValueError(
                f"short_period must be < long_period, got {self.short_period}/{self.long_period}"
            )


DEFAULT_LAYERS: tuple[CloudLayer, ...] = (
    CloudLayer("fast", 5, 12),
    CloudLayer("pullback", 8, 9),
    CloudLayer("trend", 20, 21),
    CloudLayer("macro", 34, 50),
)
LONG_TERM_LAYERS: tuple[CloudLayer, ...] = (
    CloudLayer("long_72_89", 72, 89),
    CloudLayer("long_180_200", 180, 200),
)
# the four clouds the detection rules and the conviction score look at
CORE_LAYER_NAMES: tuple[str, ...] = ("fast", "pullback", "trend", "macro")


_CLOUD_STATE_FIELDS = (
    "name",
    "short_ema",
    "long_ema",
    "is_bullish",
    "thickness",
    "price_above",
    "price_inside",
    "price_below",
)


def _fast_cloud_state_ok() -> bool:
    """True when CloudState is a plain frozen dataclass with exactly these fields, no
    __post_init__ and an instance __dict__: then filling __dict__ directly yields an object equal
    to the constructor's (~4x cheaper than the frozen dataclass __init__). Anything else -> the
    constructor is used."""
    fields = getattr(CloudState, "__dataclass_fields__", None)
    return (
        fields is not None
        and tuple(fields) == _CLOUD_STATE_FIELDS
        and not hasattr(CloudState, "__post_init__")
        and "__slots__" not in CloudState.__dict__
    )


_FAST_CLOUD_STATE = _fast_cloud_state_ok()
_new = object.__new__


def make_cloud_state(
    name: str,
    short_ema: float,
    long_ema: float,
    is_bullish: bool,
    thickness: float,
    price_above: bool,
    price_inside: bool,
    price_below: bool,
) -> CloudState:
    """A CloudState equal to ``CloudState(...)`` with these values (fast path when safe)."""
    if _FAST_CLOUD_STATE:
        obj = _new(CloudState)
        d = obj.__dict__
        d["name"] = name
        d["short_ema"] = short_ema
        d["long_ema"] = long_ema
        d["is_bullish"] = is_bullish
        d["thickness"] = thickness
        d["price_above"] = price_above
        d["price_inside"] = price_inside
        d["price_below"] = price_below
        return obj
    return CloudState(
        name=name,
        short_ema=short_ema,
        long_ema=long_ema,
        is_bullish=is_bullish,
        thickness=thickness,
        price_above=price_above,
        price_inside=price_inside,
        price_below=price_below,
    )


class CloudTracker:
    """All EMA clouds of one (ticker, timeframe), updated one completed bar at a time.

    After ``update``/``update_fast`` these attributes describe the latest bar (lists are indexed
    like ``layers``/``names``): ``short``, ``long``, ``upper``, ``lower``, ``bullish``,
    ``position`` (ABOVE/INSIDE/BELOW of the close), and the previous bar's ``prev_bullish`` and
    ``prev_position`` (None before the second bar). Detection flags of the latest bar, each
    +1 (bullish/long), -1 (bearish/short) or 0:

    * ``fast_flip``: the fast cloud changed colour on this bar;
    * ``trend_cross``: the close went from below-or-inside to above (+1), or from above-or-inside
      to below (-1), the trend cloud (previous bar's close vs previous cloud, this bar's close vs
      this cloud);
    * ``bounce``: +1 when the close is above the macro cloud, the pullback cloud is bullish, the
      previous close was above the pullback cloud, this bar's low touched/entered it
      (low <= upper edge) and the bar closed back above it (close > upper edge) with a green
      candle (close > open); -1 the mirror (below macro, bearish pullback cloud, previous close
      below it, high >= lower edge > close, red candle);
    * ``aligned_transition``: +1 (-1) on the bar where the four core clouds, all bullish
      (bearish), first have the close above (below) all four of them since the clouds last were
      not all bullish (bearish) -- re-armed only by a colour change, not by the close dipping
      into a cloud.

    ``up_streak`` / ``down_streak`` count consecutive bars closing above (below) the fast cloud
    with a green (red) candle; ``exhaustion_emitted`` is for the caller to mark a streak as
    reported (reset when the streak ends). ``recent`` holds the last ``history`` bars.
    """

    __slots__ = (
        "layers",
        "names",
        "price_source",
        "warmup_bars",
        "count",
        "last_bar",
        "last_ts",
        "recent",
        "_coef",
        "_hl2",
        "short",
        "long",
        "upper",
        "lower",
        "bullish",
        "position",
        "prev_bullish",
        "prev_position",
        "fast_flip",
        "trend_cross",
        "bounce",
        "aligned_transition",
        "up_streak",
        "down_streak",
        "exhaustion_emitted",
        "_long_armed",
        "_short_armed",
        "i_fast",
        "i_pullback",
        "i_trend",
        "i_macro",
        "_states",
        "_ts_iso",
    )

    def __init__(
        self,
        layers: tuple[CloudLayer, ...] = DEFAULT_LAYERS,
        price_source: str = "close",
        history: int = 10,
        warmup_bars: int | None = None,
    ) -> None:
        if price_source not in PRICE_SOURCES:
            raise ValueError(f"price_source must be one of {PRICE_SOURCES}, got {price_source!r}")
        layers = tuple(layers)
        names = [layer.name for layer in layers]
        if len(set(names)) != len(names):
            raise ValueError(f"layers: duplicate cloud names in {names}")
        missing = [n for n in CORE_LAYER_NAMES if n not in names]
        if missing:
            raise ValueError(f"layers: missing core clouds {missing} (need {CORE_LAYER_NAMES})")
        if isinstance(history, bool) or not isinstance(history, int) or history < 1:
            raise ValueError(f"history must be a positive integer, got {history!r}")
        self.layers = layers
        self.names = tuple(names)
        self.price_source = price_source
        self._hl2 = price_source == "hl2"
        longest = max(layer.long_period for layer in layers)
        self.warmup_bars = longest if warmup_bars is None else int(warmup_bars)
        self.count = 0
        self.last_bar: OHLCV | None = None
        self.last_ts: datetime | None = None
        self.recent: deque[OHLCV] = deque(maxlen=history)
        # (alpha, 1 - alpha) of each layer's short and long EMA: the EMA class's recurrence,
        # inlined in update_fast for speed (tests check that both agree)
        coef = []
        for layer in layers:
            es, el = EMA(layer.short_period), EMA(layer.long_period)
            coef.append((es.alpha, es._beta, el.alpha, el._beta))
        self._coef = tuple(coef)
        n = len(layers)
        self.short = [0.0] * n
        self.long = [0.0] * n
        self.upper = [0.0] * n
        self.lower = [0.0] * n
        self.bullish = [False] * n
        self.position = [INSIDE] * n
        self.prev_bullish: list[bool] | None = None
        self.prev_position: list[int] | None = None
        self.fast_flip = 0
        self.trend_cross = 0
        self.bounce = 0
        self.aligned_transition = 0
        self.up_streak = 0
        self.down_streak = 0
        self.exhaustion_emitted = False
        self._long_armed = False  # the core clouds have been seen not all bullish
        self._short_armed = False
        self.i_fast = names.index("fast")
        self.i_pullback = names.index("pullback")
        self.i_trend = names.index("trend")
        self.i_macro = names.index("macro")
        self._states: list[CloudState] | None = None
        self._ts_iso: str | None = None

    # ── updates ────────────────────────────────────────────────────────────────────────────
    @property
    def warmed_up(self) -> bool:
        """True once ``warmup_bars`` bars (default: the longest EMA period) have been seen."""
        return self.count >= self.warmup_bars

    def update_fast(self, bar: OHLCV) -> None:
        """Feed one completed bar without building CloudState objects (the engine's hot path)."""
        ts = bar.ts
        last_ts = self.last_ts
        if last_ts is not None and ts <= last_ts:
            raise ValueError(
                f"bar ts {ts.isoformat()} is not after the previous bar {last_ts.isoformat()}"
            )
        close = bar.close
        op = bar.open
        price = (bar.high + bar.low) * 0.5 if self._hl2 else close
        seeded = self.count > 0
        # this bar's lists reuse the storage of the bar before the previous one
        prev_bullish = self.prev_bullish = self.bullish
        prev_position = self.prev_position = self.position
        n = len(prev_bullish)
        bullish = self.bullish = [False] * n
        position = self.position = [INSIDE] * n
        short, long_, upper, lower = self.short, self.long, self.upper, self.lower
        i = 0
        for a_s, b_s, a_l, b_l in self._coef:
            if seeded:
                s = a_s * price + b_s * short[i]
                lg = a_l * price + b_l * long_[i]
            else:  # EMAs are seeded with the first value
                s = lg = float(price)
            short[i] = s
            long_[i] = lg
            if s >= lg:
                bullish[i] = True
                upper[i] = up = s
                lower[i] = lo = lg
            else:
                upper[i] = up = lg
                lower[i] = lo = s
            if close > up:
                position[i] = ABOVE
            elif close < lo:
                position[i] = BELOW
            i += 1

        f, p, t, m = self.i_fast, self.i_pullback, self.i_trend, self.i_macro
        if seeded:
            # fast cloud colour change
            if bullish[f] != prev_bullish[f]:
                self.fast_flip = 1 if bullish[f] else -1
            else:
                self.fast_flip = 0
            # close crossing the trend cloud
            now, before = position[t], prev_position[t]
            if now == ABOVE and before != ABOVE:
                self.trend_cross = 1
            elif now == BELOW and before != BELOW:
                self.trend_cross = -1
            else:
                self.trend_cross = 0
            # bounce off the pullback cloud in the direction of the macro bias
            bounce = 0
            if position[m] == ABOVE:
                if (bullish[p] and prev_position[p] == ABOVE and close > op
                        and bar.low <= upper[p] < close):
                    bounce = 1
            elif position[m] == BELOW:
                if (not bullish[p] and prev_position[p] == BELOW and close < op
                        and bar.high >= lower[p] > close):
                    bounce = -1
            self.bounce = bounce
        else:
            self.prev_bullish = None
            self.prev_position = None

        # same-colour streak outside the fast cloud
        fpos = position[f]
        if fpos == ABOVE and close > op:
            self.up_streak += 1
            if self.down_streak:
                self.down_streak = 0
                self.exhaustion_emitted = False
        elif fpos == BELOW and close < op:
            self.down_streak += 1
            if self.up_streak:
                self.up_streak = 0
                self.exhaustion_emitted = False
        else:
            self.up_streak = 0
            self.down_streak = 0
            self.exhaustion_emitted = False

        # trend alignment, reported once per colour alignment
        transition = 0
        if bullish[f] and bullish[p] and bullish[t] and bullish[m]:
            self._short_armed = True
            if (self._long_armed and position[f] == ABOVE and position[p] == ABOVE
                    and position[t] == ABOVE and position[m] == ABOVE):
                transition = 1
                self._long_armed = False
        elif not (bullish[f] or bullish[p] or bullish[t] or bullish[m]):
            self._long_armed = True
            if (self._short_armed and position[f] == BELOW and position[p] == BELOW
                    and position[t] == BELOW and position[m] == BELOW):
                transition = -1
                self._short_armed = False
        else:
            self._long_armed = True
            self._short_armed = True
        self.aligned_transition = transition

        self.count += 1
        self.last_bar = bar
        self.last_ts = ts
        self._states = None
        self._ts_iso = None
        self.recent.append(bar)

    def update(self, bar: OHLCV) -> list[CloudState]:
        """Feed one completed bar; the clouds after it, one CloudState per layer."""
        self.update_fast(bar)
        return self.states()

    # ── views ──────────────────────────────────────────────────────────────────────────────
    def states(self) -> list[CloudState]:
        """CloudState per layer at the latest bar (empty before the first bar); built once per bar."""
        cached = self._states
        if cached is not None:
            return list(cached)
        bar = self.last_bar
        if bar is None:
            return []
        close = bar.close
        out = [
            make_cloud_state(
                name,
                s,
                lg,
                s >= lg,
                abs(s - lg) / close if close else 0.0,
                pos == ABOVE,
                pos == INSIDE,
                pos == BELOW,
            )
            for name, s, lg, pos in zip(self.names, self.short, self.long, self.position)
        ]
        self._states = out
        return list(out)

    @property
    def last_ts_iso(self) -> str | None:
        """ISO-8601 (UTC) of the latest bar's ts, cached per bar."""
        if self._ts_iso is None and self.last_ts is not None:
            self._ts_iso = self.last_ts.astimezone(timezone.utc).isoformat()
        return self._ts_iso

    def index(self, name: str) -> int:
        return self.names.index(name)

    def ema_values(self, name: str) -> tuple[float, float]:
        """(short EMA, long EMA) of the cloud called ``name`` after the latest bar."""
        i = self.names.index(name)
        return self.short[i], self.long[i]

    def cloud_bullish(self, name: str) -> bool:
        return self.bullish[self.names.index(name)]

    def cloud_position(self, name: str) -> int:
        """ABOVE / INSIDE / BELOW: where the latest close sits relative to cloud ``name``."""
        return self.position[self.names.index(name)]
