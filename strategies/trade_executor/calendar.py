"""Exchange sessions (NYSE by default): the project's one calendar, scalar and vectorised.

Wraps ``exchange_calendars`` (holidays, early closes and ad-hoc closures such as 2025-01-09 are in
its tables; domain-facts §4). The library's calendar is slow to build, so each calendar name is
built once per process, over an explicit 2000-01-01..2030-12-31 range, into one session table
held twice: Python lists / dicts of UTC ``datetime`` for the scalar API (``session_for``,
``is_open``, ``eod_close_for``, ...) and read-only int64 nanosecond arrays for the vectorised API
(``session_mask``, ``session_index``, ``session_minutes``) that filters bars. Both answer from
the same integers, so they cannot disagree.

Sessions are keyed by the calendar's own session labels (``exchange_calendars``' session dates).
The session an instant belongs to (``session_date``) is:

* the session that contains it (``open <= ts < close``; a lunch break is inside its session),
  for every calendar;
* otherwise (before the open, after the close) the session labelled with the instant's date in
  the calendar's own time zone, if that date has one.

So an XNYS instant at 08:00 or 18:00 New York time belongs to that New York date's session (and
``is_open`` is False), while on the ``"24/7"`` calendar (time zone UTC, sessions 00:00-24:00 UTC)
every instant belongs to the UTC day that contains it. New York dates are never assumed: where a
New York date really is meant (a fee's trade date, an option's expiry date, the journal's day)
use :func:`new_york_date`.

Pure: no wall clock, no NautilusTrader. Every method takes the instant it is asked about; naive
datetimes are rejected (ValueError) because an exchange session is only meaningful for a real
instant. Dates and instants outside the built range raise ValueError rather than silently
reporting "closed".
"""

from __future__ import annotations

import bisect
import threading
import warnings
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, Iterable
from zoneinfo import ZoneInfo

import numpy as np

from strategies.trade_executor.timeutil import aware, datetime_to_ns, ns_to_datetime

ET = ZoneInfo("America/New_York")
CALENDAR_START = "2000-01-01"
CALENDAR_END = "2030-12-31"
REGULAR_CLOSE_ET = time(16, 0)

_NS_PER_DAY = 86_400 * 1_000_000_000
_NAT = np.iinfo(np.int64).min  # "no lunch break" in the break columns
_LOCAL_BUCKET_NS = 900 * 1_000_000_000  # every UTC offset in use is a whole number of 15 minutes


def _frozen(values: Iterable[int]) -> np.ndarray:
    arr = np.array(list(values), dtype=np.int64)
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True)
class _SessionTable:
    name: str
    tz: ZoneInfo  # the calendar's own time zone (its session labels are dates there)
    dates: list[date]  # sorted session labels
    opens: list[datetime]  # UTC, aligned with `dates`
    sessions: dict[date, tuple[datetime, datetime]]  # label -> (open, close) in UTC
    breaks: dict[date, tuple[datetime, datetime]]  # label -> (break start, break end), lunch breaks only
    early: frozenset[date]  # labels of early-close sessions
    first: date  # first calendar day covered by the build range
    last: date  # last calendar day covered by the build range
    # the same table as int64 ns (read-only), for the vectorised API and exact scalar lookups
    label_days: np.ndarray  # session labels as days since 1970-01-01
    open_ns: np.ndarray
    close_ns: np.ndarray
    break_start_ns: np.ndarray  # _NAT where the session has no break
    break_end_ns: np.ndarray
    open_list: list[int]  # open_ns as Python ints (bisect is faster on lists than numpy for one value)
    close_list: list[int]
    first_ns: int  # first instant covered: `first` 00:00 in the calendar's zone
    last_ns: int  # last instant covered (exclusive): the day after `last`, or the last close if later


def _build_table(name: str) -> _SessionTable:
    # heavy import, only on first use; the library's own numpy/pandas deprecation noise is muted
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import exchange_calendars as xcals
        import pandas as pd

        try:
            cal = xcals.get_calendar(name, start=CALENDAR_START, end=CALENDAR_END)
            first = date.fromisoformat(CALENDAR_START)
            last = date.fromisoformat(CALENDAR_END)
        except (ValueError, TypeError):  # pragma: no cover - library refused explicit bounds
            cal = xcals.get_calendar(name)
            first = cal.first_session.date()
            last = cal.last_session.date()
        schedule = cal.schedule
        early_labels = {ts.date() for ts in cal.early_closes}
    tz = cal.tz if isinstance(cal.tz, ZoneInfo) else ZoneInfo(str(cal.tz))

    def ns(col: str) -> np.ndarray:
        return pd.DatetimeIndex(schedule[col]).tz_convert("UTC").as_unit("ns").asi8

    labels = pd.DatetimeIndex(schedule.index)
    if labels.tz is not None:
        labels = labels.tz_localize(None)
    label_days = labels.as_unit("ns").asi8 // _NS_PER_DAY
    open_ns, close_ns = ns("open"), ns("close")
    b_start, b_end = ns("break_start"), ns("break_end")
    dates = [date(1970, 1, 1) + timedelta(days=int(d)) for d in label_days]
    opens = [ns_to_datetime(int(v)) for v in open_ns]
    closes = [ns_to_datetime(int(v)) for v in close_ns]
    sessions = dict(zip(dates, zip(opens, closes)))
    breaks = {
        d: (ns_to_datetime(int(s)), ns_to_datetime(int(e)))
        for d, s, e in zip(dates, b_start, b_end)
        if s != _NAT and e != _NAT
    }
    first = max(first, dates[0]) if dates else first
    first_ns = datetime_to_ns(datetime.combine(first, time(0), tz))
    last_ns = datetime_to_ns(datetime.combine(last + timedelta(days=1), time(0), tz))
    if len(close_ns):
        last_ns = max(last_ns, int(close_ns[-1]))
    return _SessionTable(
        name=name,
        tz=tz,
        dates=dates,
        opens=opens,
        sessions=sessions,
        breaks=breaks,
        early=frozenset(early_labels & set(dates)),
        first=first,
        last=last,
        label_days=_frozen(label_days),
        open_ns=_frozen(open_ns),
        close_ns=_frozen(close_ns),
        break_start_ns=_frozen(b_start),
        break_end_ns=_frozen(b_end),
        open_list=[int(v) for v in open_ns],
        close_list=[int(v) for v in close_ns],
        first_ns=first_ns,
        last_ns=last_ns,
    )


_TABLES: dict[str, _SessionTable] = {}
_LOCK = threading.Lock()


def _table(name: str) -> _SessionTable:
    table = _TABLES.get(name)
    if table is None:
        with _LOCK:
            table = _TABLES.get(name)
            if table is None:
                table = _build_table(name)
                _TABLES[name] = table
    return table


# -- New York dates -------------------------------------------------------------------------------

_NY_DATE_BY_HOUR: dict[int, date] = {}


def new_york_date(ts: datetime) -> date:
    """The New York calendar date of an aware instant.

    Only for where a New York date is really meant (a fee's trade date, an option's expiry date,
    the journal's day); the session of an instant is :meth:`MarketCalendar.session_date`.
    Memoised per UTC hour (New York's UTC offset is a whole number of hours, so the date cannot
    change inside a UTC hour): this runs several times per bar in a backtest.
    """
    key = datetime_to_ns(ts) // 3_600_000_000_000
    d = _NY_DATE_BY_HOUR.get(key)
    if d is None:
        if len(_NY_DATE_BY_HOUR) > 200_000:
            _NY_DATE_BY_HOUR.clear()
        d = _NY_DATE_BY_HOUR[key] = ts.astimezone(ET).date()
    return d


def as_ns_array(ts_ns: Any) -> np.ndarray:
    """Epoch nanoseconds (ints or ``datetime64``) -> an int64 array."""
    arr = np.asarray(ts_ns)
    if arr.dtype.kind == "M":
        arr = arr.astype("datetime64[ns]").astype("int64")
    return arr.astype("int64", copy=False)


class MarketCalendar:
    """Sessions of one exchange calendar (``"XNYS"`` by default), times in UTC."""

    def __init__(self, name: str = "XNYS") -> None:
        self.name = name
        self._t = _table(name)
        self._local_dates: dict[int, date] = {}

    # ── helpers ──────────────────────────────────────────────────────────────────────────────
    def _range_error(self, what: str) -> ValueError:
        return ValueError(
            f"{what} is outside the {self.name} calendar range "
            f"{self._t.first.isoformat()}..{self._t.last.isoformat()}"
        )

    def _check_range(self, d: date) -> date:
        if not self._t.first <= d <= self._t.last:
            raise self._range_error(d.isoformat())
        return d

    def _local_date(self, ns: int) -> date:
        """The calendar-zone date of an instant (memoised per 15 minutes of UTC)."""
        key = ns // _LOCAL_BUCKET_NS
        d = self._local_dates.get(key)
        if d is None:
            if len(self._local_dates) > 200_000:
                self._local_dates.clear()
            d = self._local_dates[key] = ns_to_datetime(ns).astimezone(self._t.tz).date()
        return d

    def _row_containing(self, ns: int) -> int:
        """Row of the session with ``open <= ns < close``; -1 when none."""
        i = bisect.bisect_right(self._t.open_list, ns) - 1
        return i if i >= 0 and ns < self._t.close_list[i] else -1

    def _label_of(self, ns: int) -> date:
        i = self._row_containing(ns)
        if i >= 0:
            return self._t.dates[i]
        return self._check_range(self._local_date(ns))

    def _to_date(self, value: datetime | date) -> date:
        if isinstance(value, datetime):
            return self.session_date(value)
        if isinstance(value, date):
            return self._check_range(value)
        raise ValueError(f"expected a datetime or date, got {value!r}")

    @property
    def tz(self) -> ZoneInfo:
        """The calendar's own time zone (its session labels are dates there)."""
        return self._t.tz

    @property
    def first_date(self) -> date:
        return self._t.first

    @property
    def last_date(self) -> date:
        return self._t.last

    # ── sessions (scalar) ────────────────────────────────────────────────────────────────────
    def session_date(self, ts: datetime) -> date:
        """The label of the session ``ts`` belongs to: the session containing it, else the date
        of ``ts`` in the calendar's time zone (which may have no session: see ``session_for``)."""
        return self._label_of(datetime_to_ns(aware(ts, "ts")))

    def session_for(self, ts: datetime | date) -> tuple[datetime, datetime] | None:
        """(open, close) in UTC of the session ``ts`` belongs to (see ``session_date``); None when
        that date has no session. A date may be given instead of an instant (a session label)."""
        return self._t.sessions.get(self._to_date(ts))

    def is_session(self, d: datetime | date) -> bool:
        return self.session_for(d) is not None

    def is_open(self, ts: datetime) -> bool:
        """True when ``open <= ts < close`` of a session and ``ts`` is not in its lunch break."""
        ns = datetime_to_ns(aware(ts, "ts"))
        i = self._row_containing(ns)
        if i < 0:
            self._label_of(ns)  # range check
            return False
        b0, b1 = int(self._t.break_start_ns[i]), int(self._t.break_end_ns[i])
        return not (b0 != _NAT and b1 != _NAT and b0 <= ns < b1)

    def session_open(self, ts: datetime | date) -> datetime | None:
        session = self.session_for(ts)
        return session[0] if session else None

    def session_close(self, ts: datetime | date) -> datetime | None:
        session = self.session_for(ts)
        return session[1] if session else None

    def session_break(self, ts: datetime | date) -> tuple[datetime, datetime] | None:
        """(start, end) in UTC of the lunch break of that session; None without one."""
        return self._t.breaks.get(self._to_date(ts))

    def is_early_close(self, d: datetime | date) -> bool:
        """True when that session closes before the calendar's regular close (13:00 ET on
        2025-07-03 at NYSE)."""
        return self._to_date(d) in self._t.early

    def next_open(self, ts: datetime) -> datetime | None:
        """The first session open strictly after ``ts`` (None past the calendar's range)."""
        ns = datetime_to_ns(aware(ts, "ts"))
        i = bisect.bisect_right(self._t.open_list, ns)
        return self._t.opens[i] if i < len(self._t.opens) else None

    def eod_cutoff(self, ts: datetime | date, minutes_before: int = 5) -> datetime | None:
        """Session close minus ``minutes_before``: 15:55 ET on regular days, 12:55 on a 13:00 close."""
        close = self.session_close(ts)
        if close is None:
            return None
        return close - timedelta(minutes=minutes_before)

    def eod_close_for(self, ts: datetime | date, eod_close_time: time, minutes_before: int) -> datetime | None:
        """The executor's end-of-day cut-off for ``ts``'s session: ``eod_close_time`` ET (15:55)
        on a session closing at 16:00 ET; otherwise (early closes, calendars with other hours,
        e.g. 23:55 UTC on ``"24/7"``) ``minutes_before`` the session close."""
        close = self.session_close(ts)
        if close is None:
            return None
        local = close.astimezone(ET)
        if local.time() == REGULAR_CLOSE_ET:
            return datetime.combine(local.date(), eod_close_time, tzinfo=ET)
        return close - timedelta(minutes=minutes_before)

    def trading_days_between(self, start: datetime | date, end: datetime | date) -> int:
        """Number of sessions d with ``start < d <= end`` (session labels); 0 when end <= start."""
        a = self._to_date(start)
        b = self._to_date(end)
        if b <= a:
            return 0
        dates = self._t.dates
        return bisect.bisect_right(dates, b) - bisect.bisect_right(dates, a)

    def sessions_in_range(self, start: date, end: date) -> list[date]:
        """Session labels d with ``start <= d <= end``."""
        r = self.session_rows(start, end)
        return self._t.dates[r.start : r.stop]

    # ── the session table ────────────────────────────────────────────────────────────────────
    def session_rows(self, start: date, end: date) -> range:
        """Rows (positions in ``labels`` / ``opens_ns`` / ``closes_ns``, the values
        ``session_index`` returns) of the sessions labelled ``start..end``."""
        a = self._check_range(start)
        b = self._check_range(end)
        dates = self._t.dates
        return range(bisect.bisect_left(dates, a), bisect.bisect_right(dates, b))

    @property
    def labels(self) -> list[date]:
        """Every session label in the built range, sorted (row order)."""
        return self._t.dates

    @property
    def opens_ns(self) -> np.ndarray:
        """Session opens, UTC epoch ns, by row (read-only)."""
        return self._t.open_ns

    @property
    def closes_ns(self) -> np.ndarray:
        """Session closes, UTC epoch ns, by row (read-only)."""
        return self._t.close_ns

    # ── vectorised ───────────────────────────────────────────────────────────────────────────
    def _checked_ns(self, ts_ns: Any) -> np.ndarray:
        ts = as_ns_array(ts_ns)
        if ts.size and (int(ts.min()) < self._t.first_ns or int(ts.max()) >= self._t.last_ns):
            bad = int(ts.min()) if int(ts.min()) < self._t.first_ns else int(ts.max())
            raise self._range_error(ns_to_datetime(bad).isoformat())
        return ts

    def _rows_containing(self, ts: np.ndarray) -> np.ndarray:
        """Row of the session with ``open <= t < close`` per instant (breaks included); -1 when none."""
        t = self._t
        i = np.searchsorted(t.open_ns, ts, side="right") - 1
        j = np.maximum(i, 0)
        return np.where((i >= 0) & (ts < t.close_ns[j]), i, -1)

    def _open_rows(self, ts: np.ndarray, bar_ns: int) -> np.ndarray:
        """Row of the session open at each instant (``bar_ns=0``) or over each whole bar
        ``[t - bar_ns, t)``, lunch breaks excluded; -1 elsewhere."""
        t = self._t
        start = ts - int(bar_ns)
        i = np.searchsorted(t.open_ns, start, side="right") - 1
        j = np.maximum(i, 0)
        b0, b1 = t.break_start_ns[j], t.break_end_ns[j]
        has_break = (b0 != _NAT) & (b1 != _NAT)
        if bar_ns > 0:
            inside = (i >= 0) & (ts <= t.close_ns[j]) & ~(has_break & (start < b1) & (ts > b0))
        else:
            inside = (i >= 0) & (ts < t.close_ns[j]) & ~(has_break & (ts >= b0) & (ts < b1))
        return np.where(inside, i, -1)

    def session_index(self, ts_ns: Any, *, bar_ns: int | None = None) -> np.ndarray:
        """Vectorised ``session_for``: per instant (UTC epoch ns or ``datetime64``), the row of
        the session it belongs to (the one containing it, else the one labelled with its
        calendar-zone date), -1 when that date has no session. With ``bar_ns`` (``t`` = a bar's
        close stamp): the row of the session whose hours hold the whole bar ``[t - bar_ns, t)``
        (``session_mask(ts, bar_ns=...)``), -1 elsewhere. Decode rows with ``labels`` /
        ``opens_ns`` / ``closes_ns``. Instants outside the built range raise ValueError."""
        ts = self._checked_ns(ts_ns)
        if bar_ns is not None:
            return self._open_rows(ts, bar_ns)
        out = self._rows_containing(ts)
        outside = np.flatnonzero(out < 0)
        if outside.size:
            import pandas as pd  # only for instants outside every session

            local = (
                pd.DatetimeIndex(ts[outside].astype("datetime64[ns]")).tz_localize("UTC")
                .tz_convert(self._t.tz).tz_localize(None).as_unit("ns").asi8
            )
            days = local // _NS_PER_DAY
            k = np.searchsorted(self._t.label_days, days)
            kk = np.minimum(k, len(self._t.label_days) - 1)
            out[outside] = np.where(self._t.label_days[kk] == days, kk, -1)
        return out

    def session_mask(self, ts_ns: Any, *, bar_ns: int = 0) -> np.ndarray:
        """Vectorised ``is_open``. ``bar_ns=0``: True where ``open <= t < close`` of a session and
        ``t`` is outside its lunch break. ``bar_ns > 0`` (``t`` = a bar's close stamp): True where
        the whole bar ``[t - bar_ns, t)`` lies inside a session and misses its lunch break.
        Instants outside the built range raise ValueError."""
        return self._open_rows(self._checked_ns(ts_ns), bar_ns) >= 0

    def session_minutes(self, start_ns: int, end_ns: int) -> int:
        """Whole minutes of session time (lunch breaks excluded) inside ``[start_ns, end_ns)``."""
        t = self._t
        a = np.maximum(t.open_ns, int(start_ns))
        b = np.minimum(t.close_ns, int(end_ns))
        span = np.clip(b - a, 0, None)
        has_break = (t.break_start_ns != _NAT) & (t.break_end_ns != _NAT)
        brk = np.where(
            has_break,
            np.clip(np.minimum(t.break_end_ns, b) - np.maximum(t.break_start_ns, a), 0, None),
            0,
        )
        return int(((span - brk) // 60_000_000_000).sum())

    def __repr__(self) -> str:
        return f"MarketCalendar({self.name!r})"


__all__ = ["ET", "MarketCalendar", "as_ns_array", "new_york_date"]
