"""Warm-up from history: how much history the engine needs, and the 10-minute and 1-hour bars a
live node would have built from the same 1-minute bars (pure, no clock, no I/O).

A live node starts with empty EMA clouds; fed from the stream alone, a trigger timeframe signals
only after ``warmup`` (50) of its bars: 50 minutes for 1m, 500 for 10m, 50 hours (about 8 NYSE
sessions) for 1h. The signal actor instead asks the broker for that history at start
(``SignalActor`` with ``warmup=True``): 1-minute bars from the open of ``sessions_needed`` sessions
back, aggregated here exactly as NautilusTrader's time-bar aggregator does live
(``strategies.engine_config``): a 1-minute bar closing at ``c`` belongs to the bucket closing at
``c`` rounded up to the bucket grid (10 minutes on the epoch grid; hours on the grid shifted by
30 minutes, so buckets close at :30); a bucket is emitted only when complete (its close at or before
the history's last minute) and only when it holds a bar; and daily bars from the broker's own
daily series (``1d`` is context only).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta, timezone

from strategies.signals.engine import OHLCV

UTC = timezone.utc
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

#: timeframe -> (bucket minutes, grid offset in minutes): Nautilus' INTERNAL time bars here
AGGREGATED: dict[str, tuple[int, int]] = {"10m": (10, 0), "1h": (60, 30)}
TIMEFRAME_MINUTES = {"1m": 1, "10m": 10, "1h": 60}


def sessions_needed(warmup_bars: int, session_minutes: float, timeframes: Iterable[str] = ("1m", "10m", "1h"),
                    margin: int = 1) -> int:
    """Sessions of 1-minute history for every intraday trigger timeframe to see ``warmup_bars``
    in-session bars (a session of ``session_minutes`` holds ceil(minutes / tf) buckets of a tf,
    the last one partial), plus ``margin`` sessions (early closes, a partial first session)."""
    if warmup_bars <= 0:
        return 0
    need = 0
    for tf in timeframes:
        per_session = math.ceil(session_minutes / TIMEFRAME_MINUTES[tf])
        need = max(need, math.ceil(warmup_bars / max(per_session, 1)))
    return need + margin


def bucket_close(ts: datetime, minutes: int, offset_minutes: int = 0) -> datetime:
    """The close of the ``minutes`` bucket (grid shifted by ``offset_minutes``) holding the
    1-minute bar that closes at ``ts``: ``ts`` rounded up to the grid."""
    step = minutes * 60
    off = offset_minutes * 60
    secs = (ts - EPOCH).total_seconds() - off
    k = math.ceil(secs / step - 1e-9)
    return EPOCH + timedelta(seconds=k * step + off)


def aggregate(minute_bars: Sequence[OHLCV], minutes: int, offset_minutes: int = 0) -> list[OHLCV]:
    """Complete ``minutes`` buckets of ``minute_bars`` (time-ordered, stamped with their close),
    stamped with the bucket's close; the bucket still forming after the last bar is left out."""
    if not minute_bars:
        return []
    last = minute_bars[-1].ts
    out: list[OHLCV] = []
    cur: list[OHLCV] = []
    cur_close: datetime | None = None

    def emit() -> None:
        if cur and cur_close is not None and cur_close <= last:
            out.append(OHLCV(ts=cur_close, open=cur[0].open, high=max(b.high for b in cur),
                             low=min(b.low for b in cur), close=cur[-1].close,
                             volume=math.fsum(b.volume for b in cur)))

    for b in minute_bars:
        close = bucket_close(b.ts, minutes, offset_minutes)
        if close != cur_close:
            emit()
            cur, cur_close = [], close
        cur.append(b)
    emit()
    return out


TF_ORDER = {"1m": 0, "10m": 1, "1h": 2, "1d": 3}


def warmup_sequence(minute_bars: Sequence[OHLCV], daily_bars: Sequence[OHLCV] = (),
                    timeframes: Iterable[str] = ("1m", "10m", "1h", "1d")) -> list[tuple[str, OHLCV]]:
    """Every warm-up bar as ``(timeframe, bar)`` in the order a live node delivers them: by close
    time, and at one close time the 1-minute bar before the 10-minute, hourly and daily bars built
    with it (the engine's no-look-ahead rule)."""
    tfs = set(timeframes)
    seq: list[tuple[str, OHLCV]] = []
    if "1m" in tfs:
        seq += [("1m", b) for b in minute_bars]
    for tf, (m, off) in AGGREGATED.items():
        if tf in tfs:
            seq += [(tf, b) for b in aggregate(minute_bars, m, off)]
    if "1d" in tfs:
        seq += [("1d", b) for b in daily_bars]
    seq.sort(key=lambda x: (x[1].ts, TF_ORDER[x[0]]))
    return seq


def forming_minutes(minute_bars: Sequence[OHLCV], last_complete: datetime | None) -> list[OHLCV]:
    """The minutes after the last complete bucket: the bucket still forming when history ends."""
    if last_complete is None:
        return list(minute_bars)
    return [b for b in minute_bars if b.ts > last_complete]


def complete_first_bucket(bar: OHLCV, minutes: Sequence[OHLCV], length_minutes: int) -> OHLCV:
    """The node's first live 10m / 1h bar after a warm-up holds only the minutes since start-up;
    rebuilt from every minute of its bucket (history + live, ``minutes``) it is the bar a node
    running all along would have built. ``bar`` is returned unchanged when no minute of the bucket
    is known."""
    start = bar.ts - timedelta(minutes=length_minutes)
    inside = [m for m in minutes if start < m.ts <= bar.ts]
    if not inside:
        return bar
    return OHLCV(ts=bar.ts, open=inside[0].open, high=max(m.high for m in inside), low=min(m.low for m in inside),
                 close=inside[-1].close, volume=math.fsum(m.volume for m in inside))


__all__ = ["AGGREGATED", "aggregate", "bucket_close", "complete_first_bucket", "forming_minutes", "sessions_needed",
           "warmup_sequence"]
