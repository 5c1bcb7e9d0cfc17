"""Exchange sessions (NYSE by default) as plain dicts, for O(1) market-hours questions.

Wraps ``exchange_calendars`` (holidays, early closes and ad-hoc closures such as 2025-01-09 are in
its tables; domain-facts §4). The library's calendar is slow to build, so each calendar name is
built once per process, over an explicit 2000-01-01..2030-12-31 range, and its session table is
turned into ``{date: (open_utc, close_utc)}`` with ``datetime`` values in UTC.

Pure: no wall clock. Every method takes the instant it is asked about; naive datetimes are
rejected (ValueError) because an exchange session is only meaningful for a real instant. Dates
outside the built range raise ValueError rather than silently reporting "closed".
"""

from __future__ import annotations

import bisect
import threading
import warnings
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

ET = ZoneInfo("America/New_York")
CALENDAR_START = "2000-01-01"
CALENDAR_END = "2030-12-31"
REGULAR_CLOSE_ET = time(16, 0)


@dataclass(frozen=True)
class _SessionTable:
    name: str
    sessions: dict[date, tuple[datetime, datetime]]  # ET session date -> (open, close) in UTC
    dates: list[date]  # sorted session dates
    opens: list[datetime]  # sorted session opens (UTC), aligned with `dates`
    first: date  # first calendar day covered by the build range
    last: date  # last calendar day covered by the build range


_TABLES: dict[str, _SessionTable] = {}
_LOCK = threading.Lock()


def _build_table(name: str) -> _SessionTable:
    # heavy import, only on first use; the library's own numpy/pandas deprecation noise is muted
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import exchange_calendars as xcals

        try:
            cal = xcals.get_calendar(name, start=CALENDAR_START, end=CALENDAR_END)
            first = date.fromisoformat(CALENDAR_START)
            last = date.fromisoformat(CALENDAR_END)
        except (ValueError, TypeError):  # pragma: no cover - library refused explicit bounds
            cal = xcals.get_calendar(name)
            first = cal.first_session.date()
            last = cal.last_session.date()
        schedule = cal.schedule
    opens = schedule["open"].dt.tz_convert("UTC").tolist()
    closes = schedule["close"].dt.tz_convert("UTC").tolist()
    sessions: dict[date, tuple[datetime, datetime]] = {}
    for label, o, c in zip(schedule.index, opens, closes):
        sessions[label.date()] = (
            o.to_pydatetime().astimezone(timezone.utc),
            c.to_pydatetime().astimezone(timezone.utc),
        )
    dates = sorted(sessions)
    return _SessionTable(
        name=name,
        sessions=sessions,
        dates=dates,
        opens=[sessions[d][0] for d in dates],
        first=max(first, dates[0]) if dates else first,
        last=last,
    )


def _table(name: str) -> _SessionTable:
    table = _TABLES.get(name)
    if table is None:
        with _LOCK:
            table = _TABLES.get(name)
            if table is None:
                table = _build_table(name)
                _TABLES[name] = table
    return table


def _aware(ts: datetime, what: str = "ts") -> datetime:
    if not isinstance(ts, datetime):
        raise ValueError(f"{what} must be a datetime, got {ts!r}")
    if ts.tzinfo is None or ts.tzinfo.utcoffset(ts) is None:
        raise ValueError(f"{what} must be timezone-aware, got naive {ts.isoformat()}")
    return ts


_ET_DATE_BY_HOUR: dict[int, date] = {}


def et_date(ts: datetime) -> date:
    """The New York calendar date of an aware instant.

    Memoised per UTC hour (New York's UTC offset is a whole number of hours, so the date cannot
    change inside a UTC hour): this runs several times per bar in a backtest.
    """
    key = int(_aware(ts).timestamp()) // 3600
    d = _ET_DATE_BY_HOUR.get(key)
    if d is None:
        if len(_ET_DATE_BY_HOUR) > 200_000:
            _ET_DATE_BY_HOUR.clear()
        d = _ET_DATE_BY_HOUR[key] = ts.astimezone(ET).date()
    return d


class MarketCalendar:
    """Sessions of one exchange calendar (``"XNYS"`` by default), times in UTC."""

    def __init__(self, name: str = "XNYS") -> None:
        self.name = name
        self._t = _table(name)

    # ── helpers ──────────────────────────────────────────────────────────────────────────────
    def _check_range(self, d: date) -> date:
        if not self._t.first <= d <= self._t.last:
            raise ValueError(
                f"{d.isoformat()} is outside the {self.name} calendar range "
                f"{self._t.first.isoformat()}..{self._t.last.isoformat()}"
            )
        return d

    def _to_date(self, value: datetime | date) -> date:
        if isinstance(value, datetime):
            return self._check_range(et_date(value))
        if isinstance(value, date):
            return self._check_range(value)
        raise ValueError(f"expected a datetime or date, got {value!r}")

    @property
    def first_date(self) -> date:
        return self._t.first

    @property
    def last_date(self) -> date:
        return self._t.last

    # ── sessions ─────────────────────────────────────────────────────────────────────────────
    def session_for(self, ts: datetime | date) -> tuple[datetime, datetime] | None:
        """(open, close) in UTC of the session on ts's New York calendar date; None if no session.

        A date may be given instead of an instant (read as the New York session date).
        """
        return self._t.sessions.get(self._to_date(ts))

    def is_session(self, d: datetime | date) -> bool:
        return self.session_for(d) is not None

    def is_open(self, ts: datetime) -> bool:
        """True when ``open <= ts < close`` of that day's session."""
        _aware(ts)
        session = self.session_for(ts)
        return session is not None and session[0] <= ts < session[1]

    def session_open(self, ts: datetime | date) -> datetime | None:
        session = self.session_for(ts)
        return session[0] if session else None

    def session_close(self, ts: datetime | date) -> datetime | None:
        session = self.session_for(ts)
        return session[1] if session else None

    def is_early_close(self, d: datetime | date) -> bool:
        """True when that date is a session closing before the regular 16:00 ET."""
        session = self.session_for(d)
        if session is None:
            return False
        return session[1].astimezone(ET).time() < REGULAR_CLOSE_ET

    def next_open(self, ts: datetime) -> datetime | None:
        """The first session open strictly after ``ts`` (None past the calendar's range)."""
        _aware(ts)
        i = bisect.bisect_right(self._t.opens, ts)
        return self._t.opens[i] if i < len(self._t.opens) else None

    def eod_cutoff(self, ts: datetime | date, minutes_before: int = 5) -> datetime | None:
        """Session close minus ``minutes_before``: 15:55 ET on regular days, 12:55 on a 13:00 close."""
        close = self.session_close(ts)
        if close is None:
            return None
        return close - timedelta(minutes=minutes_before)

    def eod_close_for(self, ts: datetime | date, eod_close_time: time, minutes_before: int) -> datetime | None:
        """The executor's end-of-day cut-off for ``ts``'s session: ``eod_close_time`` ET (15:55)
        on a session closing at 16:00 ET; otherwise (early closes, calendars with other hours)
        ``minutes_before`` the session close."""
        close = self.session_close(ts)
        if close is None:
            return None
        local = close.astimezone(ET)
        if (local.hour, local.minute) == (16, 0):
            return datetime.combine(local.date(), eod_close_time, tzinfo=ET)
        return close - timedelta(minutes=minutes_before)

    def trading_days_between(self, start: datetime | date, end: datetime | date) -> int:
        """Number of sessions d with ``start < d <= end`` (New York dates); 0 when end <= start."""
        a = self._to_date(start)
        b = self._to_date(end)
        if b <= a:
            return 0
        dates = self._t.dates
        return bisect.bisect_right(dates, b) - bisect.bisect_right(dates, a)

    def sessions_in_range(self, start: date, end: date) -> list[date]:
        """Session dates d with ``start <= d <= end``."""
        a = self._check_range(start)
        b = self._check_range(end)
        dates = self._t.dates
        return dates[bisect.bisect_left(dates, a) : bisect.bisect_right(dates, b)]

    def __repr__(self) -> str:
        return f"MarketCalendar({self.name!r})"


__all__ = ["ET", "MarketCalendar", "et_date"]
