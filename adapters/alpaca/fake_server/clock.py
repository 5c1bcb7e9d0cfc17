"""Controllable clock and the NYSE session calendar behind ``/v2/clock`` and ``/v2/calendar``.

The clock is the wall clock by default. ``set()`` / ``advance()`` switch it to manual mode (frozen
until moved again), which makes every timestamp the fake server emits deterministic. With
``follow_bars`` the server moves a manual clock to the end of each bar pushed. ``set_scaled()``
runs it from a simulated start at ``speed`` simulated seconds per real second (the compressed clock
of the streamed bar feed: 60 = one simulated minute per real second).

Sessions come from ``exchange_calendars`` (XNYS: holidays and 13:00 early closes) when it is
importable and the date is inside its range; otherwise every weekday is a 09:30-16:00 ET session.
"""

from __future__ import annotations

import threading
import time as _time
from datetime import date, datetime, time, timedelta, timezone
from functools import lru_cache
from zoneinfo import ZoneInfo

NY = ZoneInfo("America/New_York")
UTC = timezone.utc


def to_utc(dt: datetime) -> datetime:
    """Aware UTC datetime; naive inputs are taken as UTC."""
    if dt.tzinfo is None:
        return dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


class FakeClock:
    def __init__(self, start: datetime | None = None) -> None:
        self._lock = threading.Lock()
        self._manual: datetime | None = to_utc(start) if start is not None else None
        self._scaled: tuple[float, datetime, float] | None = None  # (monotonic origin, simulated origin, speed)

    @property
    def is_manual(self) -> bool:
        return self._manual is not None

    @property
    def is_scaled(self) -> bool:
        return self._scaled is not None

    @property
    def speed(self) -> float | None:
        """Simulated seconds per real second: 1 for the wall clock, the factor of a scaled clock, None
        for a manual (frozen) clock."""
        with self._lock:
            if self._manual is not None:
                return None
            return self._scaled[2] if self._scaled is not None else 1.0

    def now(self) -> datetime:
        with self._lock:
            if self._manual is not None:
                return self._manual
            if self._scaled is not None:
                mono0, sim0, speed = self._scaled
                return sim0 + timedelta(seconds=(_time.monotonic() - mono0) * speed)
        return datetime.now(UTC)

    def set(self, dt: datetime) -> None:
        with self._lock:
            self._manual = to_utc(dt)
            self._scaled = None

    def set_scaled(self, start: datetime, speed: float, mono_origin: float | None = None) -> None:
        """Run from ``start`` at ``speed`` simulated seconds per real second (``mono_origin``: the
        ``time.monotonic()`` reading that corresponds to ``start``, default now)."""
        if speed <= 0:
            raise ValueError("speed must be > 0")
        with self._lock:
            self._manual = None
            self._scaled = (_time.monotonic() if mono_origin is None else mono_origin, to_utc(start), float(speed))

    def advance(self, delta: timedelta) -> datetime:
        with self._lock:
            if self._scaled is not None:  # a running scaled clock jumps and keeps running
                mono0, sim0, speed = self._scaled
                self._scaled = (mono0, sim0 + delta, speed)
                return sim0 + delta + timedelta(seconds=(_time.monotonic() - mono0) * speed)
            base = self._manual if self._manual is not None else datetime.now(UTC)
            self._manual = base + delta
            return self._manual

    def move_forward_to(self, dt: datetime) -> None:
        """Move a manual clock to ``dt`` unless it is already later (never goes back); a wall clock
        becomes manual at ``dt``. A scaled (running) clock is left alone."""
        dt = to_utc(dt)
        with self._lock:
            if self._scaled is not None:
                return
            if self._manual is None or dt > self._manual:
                self._manual = dt

    def use_wall_clock(self) -> None:
        with self._lock:
            self._manual = None
            self._scaled = None


class Session:
    __slots__ = ("day", "open", "close")

    def __init__(self, day: date, open_: datetime, close: datetime) -> None:
        self.day, self.open, self.close = day, open_, close


_XNYS_LOCK = threading.Lock()


@lru_cache(maxsize=1)
def _xnys_uncached():
    try:
        import exchange_calendars as xc  # heavy import (~1 s): only on first calendar use

        return xc.get_calendar("XNYS")
    except Exception:  # pragma: no cover - optional dependency
        return None


def _xnys():
    with _XNYS_LOCK:  # one build even when the warm-up thread and a request race
        return _xnys_uncached()


class MarketCalendar:
    """NYSE regular sessions. ``mode``: "auto" (exchange_calendars if available) or "weekdays"."""

    def __init__(self, mode: str = "auto") -> None:
        if mode not in ("auto", "weekdays"):
            raise ValueError("calendar mode must be 'auto' or 'weekdays'")
        self.mode = mode
        self._cache: dict[date, Session | None] = {}
        self._lock = threading.Lock()

    def session(self, day: date) -> Session | None:
        with self._lock:
            if day in self._cache:
                return self._cache[day]
        s = self._compute(day)
        with self._lock:
            self._cache[day] = s
        return s

    def _compute(self, day: date) -> Session | None:
        cal = _xnys() if self.mode == "auto" else None
        if cal is not None:
            first, last = cal.first_session.date(), cal.last_session.date()
            if first <= day <= last:
                import pandas as pd

                ts = pd.Timestamp(day)
                if not cal.is_session(ts):
                    return None
                o = cal.session_open(ts).to_pydatetime().astimezone(UTC)
                c = cal.session_close(ts).to_pydatetime().astimezone(UTC)
                return Session(day, o, c)
        if day.weekday() >= 5:
            return None
        o = datetime.combine(day, time(9, 30), NY).astimezone(UTC)
        c = datetime.combine(day, time(16, 0), NY).astimezone(UTC)
        return Session(day, o, c)

    def sessions(self, start: date, end: date) -> list[Session]:
        out = []
        d = start
        while d <= end:
            s = self.session(d)
            if s is not None:
                out.append(s)
            d += timedelta(days=1)
        return out

    def next_session(self, after: date) -> Session:
        d = after + timedelta(days=1)
        for _ in range(30):
            s = self.session(d)
            if s is not None:
                return s
            d += timedelta(days=1)
        raise RuntimeError("no session within 30 days")  # pragma: no cover

    def clock(self, now: datetime) -> dict:
        """The ``/v2/clock`` payload for ``now`` (timestamps in ET, like Alpaca)."""
        now = to_utc(now)
        today = now.astimezone(NY).date()
        s = self.session(today)
        is_open = bool(s and s.open <= now < s.close)
        if s and now < s.open:
            next_open = s.open
        else:
            next_open = self.next_session(today).open
        if s and now < s.close:
            next_close = s.close
        else:
            next_close = self.next_session(today).close
        return {
            "timestamp": _et_iso(now),
            "is_open": is_open,
            "next_open": _et_iso(next_open),
            "next_close": _et_iso(next_close),
        }

    def calendar_entry(self, s: Session) -> dict:
        o, c = s.open.astimezone(NY), s.close.astimezone(NY)
        settle = self.next_session(s.day).day  # T+1 settlement (US equities since 2024-05-28)
        return {
            "date": s.day.isoformat(),
            "open": o.strftime("%H:%M"),
            "close": c.strftime("%H:%M"),
            "session_open": "0400",
            "session_close": "2000",
            "settlement_date": settle.isoformat(),
        }

    def day_order_expiry(self, created: datetime) -> datetime:
        """When a DAY order submitted at ``created`` expires: that session's close if submitted
        before it, otherwise the next session's close."""
        created = to_utc(created)
        today = created.astimezone(NY).date()
        s = self.session(today)
        if s and created < s.close:
            return s.close
        return self.next_session(today).close


def _et_iso(dt: datetime) -> str:
    return dt.astimezone(NY).isoformat(timespec="microseconds")
