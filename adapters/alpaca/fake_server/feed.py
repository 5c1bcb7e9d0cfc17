"""Streamed minute bars for many symbols, in (compressed or wall-clock) real time.

What the broker does (sources in README.md, "Streaming bars"): a minute bar is labelled with the
start of its minute (``09:31`` covers ``[09:31, 09:32)``) and is published once the minute is
over -- "typically 20-100 ms after the end of the bar" (Alpaca staff on the community forum),
"1 second after the close of each minute" (Alpaca's learn pages). A trade reported late (up to 10 s)
makes Alpaca recompute the bar and publish it again about 30 s later on ``updatedBars``, with the
same timestamp. A symbol with no valid trade in a minute gets no bar.

The feed reproduces that shape: for every minute ``M`` and symbol ``S`` it publishes the bar
``(S, M)`` at ``M + 60 s + lag + U(0, jitter)`` (simulated seconds, one draw per symbol and minute,
so the symbols of a minute arrive interleaved in a different order every minute), optionally with a
correction at ``M + 90 s``. The prices are a seeded random walk per symbol (its own RNG: adding a
symbol does not change the others), and the warm-up history the REST bars endpoint serves is the
same walk, so a strategy warmed up over REST continues seamlessly on the stream.

Time: ``speed`` simulated seconds per real second (60: one simulated minute per real second) on the
server's clock, which the feed switches to a scaled clock starting at ``start``; or ``speed=None``:
the wall clock (soak runs), the first live bar being the current minute's.

Everything runs as one task on the server's event loop; each bar goes through the engine like
``push_bar`` (stored, streamed on ``bars``, matched against resting orders).
"""

from __future__ import annotations

import asyncio
import heapq
import math
import random
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Iterable, Mapping, Sequence

from .clock import to_utc
from .marketdata import BarRec

if TYPE_CHECKING:  # pragma: no cover
    from .server import FakeAlpacaServer

UTC = timezone.utc
MINUTE = timedelta(minutes=1)
DEFAULT_START_PRICE = 100.0


@dataclass
class BarFeedConfig:
    """Options of the streamed bar feed (``FakeAlpacaServer(bar_feed=BarFeedConfig(...))`` or
    ``srv.start_bar_feed(...)``)."""

    symbols: Sequence[str] | Mapping[str, float] = ()  # a list, or {symbol: start price}
    seed: int = 7
    speed: float | None = 60.0     # simulated seconds per real second; None = wall clock (soak runs)
    start: datetime | None = None  # first live minute (compressed mode); None = the server clock's minute
    minutes: int | None = None     # live minutes to publish, then stop; None = until stopped
    lag: float = 1.0               # simulated seconds from the minute's end to its first possible bar
    jitter: float = 2.0            # + U(0, jitter) simulated seconds, per symbol and minute
    warmup_minutes: int = 0        # history before ``start`` stored for the REST endpoint (not streamed)
    volatility: float = 0.0008     # standard deviation of the one-minute log return
    base_volume: float = 5_000.0   # median volume of a bar
    updated_bar_prob: float = 0.0  # probability that a bar is corrected on ``updatedBars`` 30 s later
    session_only: bool = False     # no bars outside the regular session (server calendar)
    match: bool = True             # bars fill resting orders (like ``push_bar``)
    drive_clock: bool = True       # set the server clock: scaled at ``speed`` from ``start``, or wall

    def start_prices(self) -> dict[str, float]:
        if isinstance(self.symbols, Mapping):
            return {str(k).upper(): float(v) for k, v in self.symbols.items()}
        return {str(s).upper(): DEFAULT_START_PRICE for s in self.symbols}


class SymbolWalk:
    """A deterministic one-minute bar series for one symbol: the same (seed, symbol, origin, price)
    always gives the same bars. Bars are generated strictly in time order."""

    def __init__(self, symbol: str, seed: int, start_price: float, volatility: float, base_volume: float) -> None:
        self.symbol = symbol
        self.rng = random.Random(f"fake-alpaca-walk:{seed}:{symbol}")
        self.last = float(start_price)
        self.vol = float(volatility)
        self.base_volume = float(base_volume)

    def next_bar(self, t: datetime) -> BarRec:
        r = self.rng
        o = self.last
        c = max(0.01, round(o * math.exp(r.gauss(0.0, self.vol)), 2))
        hi = round(max(o, c) * (1 + abs(r.gauss(0.0, self.vol / 2))), 2)
        lo = max(0.01, round(min(o, c) * (1 - abs(r.gauss(0.0, self.vol / 2))), 2))
        o = round(o, 2)
        hi, lo = max(hi, o, c), min(lo, o, c)
        v = max(100, int(self.base_volume * math.exp(r.gauss(0.0, 0.5))))
        n = max(1, v // 100 + r.randint(0, 20))
        vw = round(min(hi, max(lo, (hi + lo + c) / 3 + r.uniform(-0.25, 0.25) * (hi - lo))), 4)
        self.last = c
        return BarRec(t, o, hi, lo, c, float(v), n, vw)


def floor_minute(dt: datetime) -> datetime:
    return to_utc(dt).replace(second=0, microsecond=0)


@dataclass(order=True)
class _Event:
    at: datetime                      # simulated publication time
    seq: int
    kind: str = field(compare=False)  # "bar" | "updated"
    symbol: str = field(compare=False)
    bar: BarRec = field(compare=False)


class BarFeed:
    """Publishes the bars of :class:`BarFeedConfig` through a server's engine. Start it with
    ``srv.start_bar_feed(...)``; ``stop()``, ``wait(timeout)``; ``published`` lists what went out:
    ``{"symbol", "t" (bar label), "at" (simulated publication time), "kind" ("bar" | "updated")}``."""

    def __init__(self, server: "FakeAlpacaServer", config: BarFeedConfig) -> None:
        if not config.symbols:
            raise ValueError("the bar feed needs at least one symbol")
        if config.speed is not None and config.speed <= 0:
            raise ValueError("speed must be > 0 (or None for the wall clock)")
        if config.lag < 0 or config.jitter < 0 or config.lag + config.jitter >= 60:
            raise ValueError("lag and jitter must be >= 0 with lag + jitter < 60 s")
        self.server = server
        self.cfg = config
        self.prices = config.start_prices()
        self.symbols = list(self.prices)
        self._jitter_rng = random.Random(f"fake-alpaca-jitter:{config.seed}")
        self._update_rng = random.Random(f"fake-alpaca-updates:{config.seed}")
        self._walks = {s: SymbolWalk(s, config.seed, p, config.volatility, config.base_volume)
                       for s, p in self.prices.items()}
        self._heap: list[_Event] = []
        self._seq = 0
        self._lock = threading.Lock()
        self.published: list[dict] = []
        self.done = threading.Event()
        self._stop = False
        self._task: asyncio.Task | None = None
        self.start_minute: datetime | None = None
        self._next_minute: datetime | None = None
        self._live_minutes = 0
        self._mono0 = 0.0

    # ------------------------------------------------------------------------------ control ---
    def begin(self) -> None:
        """Fix the time base, store the warm-up history, then schedule the task on the server loop
        (called by the server; any thread)."""
        srv, cfg = self.server, self.cfg
        clock = srv.clock
        if cfg.speed is None:
            if cfg.drive_clock:
                clock.use_wall_clock()
            first = floor_minute(datetime.now(UTC))
        else:
            first = floor_minute(cfg.start or clock.now())
            self._mono0 = time.monotonic()
            if cfg.drive_clock:
                clock.set_scaled(first, cfg.speed, self._mono0)
        self.start_minute = first
        if cfg.warmup_minutes > 0:
            self._store_history(first - cfg.warmup_minutes * MINUTE, first)
        self._next_minute = first
        srv._submit_to_loop(self._start_task)

    def _start_task(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="fake-alpaca-bar-feed")

    def stop(self) -> None:
        self._stop = True
        task = self._task
        if task is not None and not task.done():
            try:
                self.server._submit_to_loop(task.cancel)
            except RuntimeError:  # loop already gone
                pass
        self.done.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the feed has published its ``minutes`` (or was stopped)."""
        return self.done.wait(timeout)

    # ---------------------------------------------------------------------------- the series ---
    def _in_session(self, minute: datetime) -> bool:
        if not self.cfg.session_only:
            return True
        from .clock import NY

        s = self.server.calendar.session(minute.astimezone(NY).date())
        return bool(s and s.open <= minute < s.close)

    def _store_history(self, start: datetime, end: datetime) -> None:
        rows: dict[str, list[BarRec]] = {s: [] for s in self.symbols}
        m = start
        while m < end:
            if self._in_session(m):
                for s in self.symbols:
                    rows[s].append(self._walks[s].next_bar(m))
            m += MINUTE
        eng = self.server.engine
        with eng.lock:
            for s, bars in rows.items():
                eng.asset(s)
                if bars:
                    eng.market.add_bars(s, bars, "1Min")

    def _generate(self, minute: datetime) -> None:
        """Queue minute ``minute``'s bars (and corrections) at their publication times."""
        cfg = self.cfg
        if not self._in_session(minute):
            return
        end = minute + MINUTE
        for s in self.symbols:  # symbol order fixed, so every draw is reproducible
            bar = self._walks[s].next_bar(minute)
            at = end + timedelta(seconds=cfg.lag + self._jitter_rng.random() * cfg.jitter)
            self._push(at, "bar", s, bar)
            if cfg.updated_bar_prob > 0 and self._update_rng.random() < cfg.updated_bar_prob:
                extra = max(1, int(bar.v * self._update_rng.uniform(0.001, 0.02)))
                fixed = BarRec(bar.t, bar.o, bar.h, bar.l, bar.c, bar.v + extra, (bar.n or 0) + 1, bar.vw)
                self._push(end + timedelta(seconds=30), "updated", s, fixed)

    def _push(self, at: datetime, kind: str, symbol: str, bar: BarRec) -> None:
        self._seq += 1
        heapq.heappush(self._heap, _Event(at, self._seq, kind, symbol, bar))

    def _more_minutes(self) -> bool:
        return self.cfg.minutes is None or self._live_minutes < self.cfg.minutes

    def _fill_heap(self) -> None:
        """Generate every minute whose bars could be due before the earliest queued event."""
        earliest_offset = MINUTE + timedelta(seconds=self.cfg.lag)
        while self._more_minutes():
            nm = self._next_minute
            if self._heap and nm + earliest_offset > self._heap[0].at:
                return
            self._generate(nm)
            self._next_minute = nm + MINUTE
            if self._in_session(nm):  # minutes outside the session (session_only) do not count
                self._live_minutes += 1

    def schedule_preview(self, n: int) -> list[tuple[datetime, str, datetime]]:
        """The next ``n`` publications ``(at, symbol, bar label)`` the feed would make, computed on a
        copy of its state (does not consume anything)."""
        clone = BarFeed(self.server, self.cfg)
        clone._next_minute = self._next_minute or floor_minute(self.cfg.start or datetime.now(UTC))
        clone.start_minute = clone._next_minute
        out = []
        while len(out) < n:
            clone._fill_heap()
            if not clone._heap:
                break
            ev = heapq.heappop(clone._heap)
            if ev.kind == "bar":
                out.append((ev.at, ev.symbol, ev.bar.t))
        return out

    # ---------------------------------------------------------------------------------- time ---
    def _real_delay(self, at: datetime) -> float:
        if self.cfg.speed is None:
            return (at - datetime.now(UTC)).total_seconds()
        clock = self.server.clock
        if self.cfg.drive_clock and clock.is_scaled:  # follows advance_time() on the server clock
            return (at - clock.now()).total_seconds() / self.cfg.speed
        sim_elapsed = (at - self.start_minute).total_seconds()
        return sim_elapsed / self.cfg.speed - (time.monotonic() - self._mono0)

    # ----------------------------------------------------------------------------------- run ---
    async def _run(self) -> None:
        eng = self.server.engine
        try:
            while not self._stop:
                self._fill_heap()
                if not self._heap:
                    break
                ev = self._heap[0]
                delay = self._real_delay(ev.at)
                if delay > 0:
                    await asyncio.sleep(delay)
                    continue  # re-check: the server clock may have been moved
                heapq.heappop(self._heap)
                eng.on_bar(ev.symbol, ev.bar, "1Min", stream=True,
                           match=self.cfg.match and ev.kind == "bar", updated=ev.kind == "updated")
                with self._lock:
                    self.published.append({"symbol": ev.symbol, "t": ev.bar.t, "at": ev.at, "kind": ev.kind,
                                           "close": ev.bar.c, "clock": self.server.clock.now()})
        except asyncio.CancelledError:
            pass
        finally:
            self.done.set()

    def bars_published(self, kind: str = "bar") -> list[dict]:
        with self._lock:
            return [p for p in self.published if p["kind"] == kind]


def expected_series(symbols: Iterable[str] | Mapping[str, float], seed: int, start: datetime, minutes: int,
                    volatility: float = 0.0008, base_volume: float = 5_000.0,
                    warmup_minutes: int = 0) -> dict[str, list[BarRec]]:
    """The bars a feed with these options produces for ``minutes`` minutes from ``start`` minus the
    warm-up (every minute in session; ``session_only`` not applied): for assertions."""
    prices = (BarFeedConfig(symbols=symbols).start_prices())
    out: dict[str, list[BarRec]] = {}
    first = floor_minute(start) - warmup_minutes * MINUTE
    for s, p in prices.items():
        w = SymbolWalk(s, seed, p, volatility, base_volume)
        out[s] = [w.next_bar(first + i * MINUTE) for i in range(warmup_minutes + minutes)]
    return out
