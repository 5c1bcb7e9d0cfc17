"""MarketCalendar: NYSE sessions from exchange_calendars (holidays, early closes, DST)."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from strategies.trade_executor import MarketCalendar

UTC = timezone.utc
ET = ZoneInfo("America/New_York")


def utc(*a) -> datetime:
    return datetime(*a, tzinfo=UTC)


@pytest.fixture(scope="module")
def cal() -> MarketCalendar:
    return MarketCalendar("XNYS")


def test_regular_summer_session(cal):
    # 2025-07-01 (Tue, EDT = UTC-4): 09:30-16:00 ET = 13:30-20:00 UTC
    assert cal.session_for(utc(2025, 7, 1, 15)) == (utc(2025, 7, 1, 13, 30), utc(2025, 7, 1, 20))
    assert cal.session_close(date(2025, 7, 1)) == utc(2025, 7, 1, 20)
    assert not cal.is_early_close(date(2025, 7, 1))
    # 15:55 ET = 19:55 UTC
    assert cal.eod_cutoff(utc(2025, 7, 1, 15)) == utc(2025, 7, 1, 19, 55)


def test_is_open_boundaries(cal):
    assert cal.is_open(utc(2025, 7, 1, 13, 30))  # open is inclusive
    assert not cal.is_open(utc(2025, 7, 1, 13, 29, 59, 999999))
    assert cal.is_open(utc(2025, 7, 1, 19, 59, 59))
    assert not cal.is_open(utc(2025, 7, 1, 20, 0))  # close is exclusive


def test_independence_day_holiday(cal):
    assert cal.session_for(date(2025, 7, 4)) is None
    assert cal.session_for(utc(2025, 7, 4, 15)) is None
    assert not cal.is_open(utc(2025, 7, 4, 15))
    assert not cal.is_early_close(date(2025, 7, 4))
    assert cal.eod_cutoff(date(2025, 7, 4)) is None


def test_july_3_early_close(cal):
    # 13:00 ET close = 17:00 UTC
    assert cal.session_for(date(2025, 7, 3)) == (utc(2025, 7, 3, 13, 30), utc(2025, 7, 3, 17))
    assert cal.is_early_close(date(2025, 7, 3))
    assert cal.is_open(utc(2025, 7, 3, 16, 59, 59))
    assert not cal.is_open(utc(2025, 7, 3, 17, 0))
    assert not cal.is_open(utc(2025, 7, 3, 19, 0))  # a regular day would still be open
    assert cal.eod_cutoff(utc(2025, 7, 3, 15)) == utc(2025, 7, 3, 16, 55)  # 12:55 ET


def test_day_after_thanksgiving_early_close(cal):
    # 2025-11-27 Thanksgiving closed; 11-28 closes 13:00 EST = 18:00 UTC
    assert cal.session_for(date(2025, 11, 27)) is None
    assert cal.session_for(date(2025, 11, 28)) == (utc(2025, 11, 28, 14, 30), utc(2025, 11, 28, 18))
    assert cal.is_early_close(date(2025, 11, 28))
    assert cal.eod_cutoff(date(2025, 11, 28)) == utc(2025, 11, 28, 17, 55)  # 12:55 EST
    assert cal.eod_cutoff(date(2025, 11, 28), minutes_before=10) == utc(2025, 11, 28, 17, 50)


def test_christmas_eve_early_close(cal):
    assert cal.session_close(date(2025, 12, 24)) == utc(2025, 12, 24, 18)
    assert cal.session_for(date(2025, 12, 25)) is None


def test_adhoc_closure_2025_01_09(cal):
    # National day of mourning (President Carter): no session
    assert cal.session_for(date(2025, 1, 9)) is None
    assert not cal.is_open(utc(2025, 1, 9, 16))
    assert cal.session_for(date(2025, 1, 8)) is not None
    assert cal.next_open(utc(2025, 1, 8, 21)) == utc(2025, 1, 10, 14, 30)


def test_dst_transitions(cal):
    # Fri 2025-03-07 EST (UTC-5) -> Mon 2025-03-10 EDT (UTC-4)
    assert cal.session_for(date(2025, 3, 7))[0] == utc(2025, 3, 7, 14, 30)
    assert cal.session_for(date(2025, 3, 10))[0] == utc(2025, 3, 10, 13, 30)
    # back to EST on 2025-11-02: Fri 10-31 opens 13:30 UTC, Mon 11-03 14:30 UTC
    assert cal.session_for(date(2025, 10, 31))[0] == utc(2025, 10, 31, 13, 30)
    assert cal.session_for(date(2025, 11, 3))[0] == utc(2025, 11, 3, 14, 30)
    assert cal.eod_cutoff(date(2025, 11, 3)) == utc(2025, 11, 3, 20, 55)  # 15:55 EST
    # 14:00 UTC is before the open in winter, inside it in summer
    assert not cal.is_open(utc(2025, 11, 3, 14, 0))
    assert cal.is_open(utc(2025, 10, 31, 14, 0))


def test_session_uses_new_york_date(cal):
    # 2025-07-02 02:00 UTC is 2025-07-01 22:00 ET: the July 1 session
    assert cal.session_for(utc(2025, 7, 2, 2)) == cal.session_for(date(2025, 7, 1))
    # aware non-UTC input works the same
    assert cal.is_open(datetime(2025, 7, 1, 9, 30, tzinfo=ET))


def test_next_open(cal):
    # after the July 3 early close: skip July 4 (holiday) and the weekend
    assert cal.next_open(utc(2025, 7, 3, 17)) == utc(2025, 7, 7, 13, 30)
    # strictly after: at an open, the next one is the following session's
    assert cal.next_open(utc(2025, 7, 7, 13, 30)) == utc(2025, 7, 8, 13, 30)
    assert cal.next_open(utc(2025, 7, 7, 13, 29)) == utc(2025, 7, 7, 13, 30)


def test_trading_days_between(cal):
    # sessions after 07-01 up to 07-08: 07-02, 07-03, 07-07, 07-08
    assert cal.trading_days_between(date(2025, 7, 1), date(2025, 7, 8)) == 4
    assert cal.trading_days_between(date(2025, 7, 1), date(2025, 7, 1)) == 0
    assert cal.trading_days_between(date(2025, 7, 8), date(2025, 7, 1)) == 0
    assert cal.trading_days_between(utc(2025, 7, 3, 15), utc(2025, 7, 7, 15)) == 1
    assert cal.sessions_in_range(date(2025, 7, 3), date(2025, 7, 7)) == [date(2025, 7, 3), date(2025, 7, 7)]


@pytest.mark.parametrize("method", ["is_open", "session_for", "session_close", "next_open", "eod_cutoff"])
def test_naive_datetime_rejected(cal, method):
    with pytest.raises(ValueError, match="naive"):
        getattr(cal, method)(datetime(2025, 7, 1, 15, 0))


def test_out_of_range_raises(cal):
    with pytest.raises(ValueError, match="outside"):
        cal.session_for(date(2031, 1, 2))
    with pytest.raises(ValueError, match="outside"):
        cal.is_open(utc(1999, 12, 31, 15))


def test_table_is_built_once(cal):
    other = MarketCalendar()
    assert other._t is cal._t  # module-level cache
    assert isinstance(cal.session_for(date(2025, 7, 1))[0], datetime)
    assert cal.session_for(date(2025, 7, 1))[0].utcoffset() == timedelta(0)


def test_eod_close_for_regular_early_and_other_calendars():
    from datetime import time as dtime

    nyse = MarketCalendar("XNYS")
    t = dtime(15, 55)
    assert nyse.eod_close_for(datetime(2025, 7, 1, 15, tzinfo=timezone.utc), t, 5) == \
        datetime(2025, 7, 1, 19, 55, tzinfo=timezone.utc)  # 15:55 EDT
    assert nyse.eod_close_for(datetime(2025, 7, 3, 15, tzinfo=timezone.utc), t, 5) == \
        datetime(2025, 7, 3, 16, 55, tzinfo=timezone.utc)  # 12:55 on the 13:00 early close
    assert nyse.eod_close_for(datetime(2025, 7, 4, 15, tzinfo=timezone.utc), t, 5) is None  # holiday
    always = MarketCalendar("24/7")  # e.g. demos against the local fake broker at any hour
    assert always.eod_close_for(datetime(2026, 11, 25, 11, tzinfo=timezone.utc), t, 5) == \
        datetime(2026, 11, 25, 23, 55, tzinfo=timezone.utc)


# ── one session rule for every calendar; the vectorised API agrees with the scalar one ─────────
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from strategies.trade_executor import ExecutorConfig, ExitMonitor, Position  # noqa: E402

MIN_NS = 60_000_000_000


def ns_of(dt: datetime) -> int:
    return int(pd.Timestamp(dt).value)


def boundary_instants(cal: MarketCalendar, days: list[date]) -> np.ndarray:
    """Every UTC hour of the given days (and the next), plus each session's open and close
    (and the lunch break's edges) at -1 min, -1 ns, 0, +1 ns, +1 min."""
    out: set[int] = set()
    for d in days:
        for h in range(48):
            out.add(ns_of(datetime(d.year, d.month, d.day, tzinfo=UTC) + timedelta(hours=h)))
        session = cal.session_for(d)
        if session is None:
            continue
        edges = list(session) + list(cal.session_break(d) or ())
        for edge in edges:
            for off in (-MIN_NS, -1, 0, 1, MIN_NS):
                out.add(ns_of(edge) + off)
    return np.array(sorted(out), dtype=np.int64)


def assert_vector_matches_scalar(cal: MarketCalendar, ts: np.ndarray) -> None:
    instants = [pd.Timestamp(int(t), tz="UTC") for t in ts]  # exact to the nanosecond
    mask = cal.session_mask(ts)
    rows = cal.session_index(ts)
    for t, dt, m, r in zip(ts, instants, mask, rows):
        assert bool(m) == cal.is_open(dt), dt
        session = cal.session_for(dt)
        if session is None:
            assert r == -1, dt
        else:
            assert r >= 0, dt
            assert cal.labels[r] == cal.session_date(dt), dt
            assert (int(cal.opens_ns[r]), int(cal.closes_ns[r])) == (ns_of(session[0]), ns_of(session[1])), dt
    # bars: the 1-minute bar [t - 1 min, t) is inside a session iff both of its ends are
    minutes = ts[ts % MIN_NS == 0]
    bars = cal.session_mask(minutes, bar_ns=MIN_NS)
    expected = cal.session_mask(minutes - MIN_NS) & cal.session_mask(minutes - 1)
    np.testing.assert_array_equal(bars, expected)
    bar_rows = cal.session_index(minutes, bar_ns=MIN_NS)
    np.testing.assert_array_equal(bar_rows >= 0, bars)
    np.testing.assert_array_equal(bar_rows[bars], cal.session_index(minutes - MIN_NS)[bars])


@pytest.mark.parametrize(
    "days",
    [
        [date(2025, 7, 3), date(2025, 7, 4), date(2025, 7, 5), date(2025, 7, 7)],  # early close, holiday, weekend
        [date(2025, 3, 7), date(2025, 3, 8), date(2025, 3, 9), date(2025, 3, 10)],  # DST starts 03-09
        [date(2025, 10, 31), date(2025, 11, 1), date(2025, 11, 2), date(2025, 11, 3)],  # DST ends 11-02
        [date(2025, 1, 8), date(2025, 1, 9), date(2025, 1, 10)],  # ad-hoc closure 2025-01-09
    ],
    ids=["early-close-and-holiday", "dst-march", "dst-november", "adhoc-closure"],
)
def test_vectorised_api_matches_scalar_on_xnys_boundaries(cal, days):
    ts = boundary_instants(cal, days)
    assert_vector_matches_scalar(cal, ts)


def test_vectorised_xnys_spot_checks(cal):
    ts = np.array([
        ns_of(utc(2025, 7, 3, 16, 59)),  # 12:59 ET on the early close: open
        ns_of(utc(2025, 7, 3, 17, 0)),  # 13:00 ET: closed, still the 07-03 session
        ns_of(utc(2025, 7, 4, 15, 0)),  # Independence Day
        ns_of(utc(2025, 3, 10, 13, 30)),  # first EDT open
        ns_of(utc(2025, 3, 7, 13, 30)),  # 08:30 EST: before the open
        ns_of(utc(2025, 11, 3, 14, 29)),  # 09:29 EST
        ns_of(utc(2025, 11, 3, 14, 30)),  # 09:30 EST
    ], dtype=np.int64)
    assert cal.session_mask(ts).tolist() == [True, False, False, True, False, False, True]
    rows = cal.session_index(ts)
    assert [cal.labels[r] if r >= 0 else None for r in rows] == [
        date(2025, 7, 3), date(2025, 7, 3), None, date(2025, 3, 10), date(2025, 3, 7),
        date(2025, 11, 3), date(2025, 11, 3)]
    # datetime64 input works the same
    np.testing.assert_array_equal(cal.session_mask(ts.astype("datetime64[ns]")), cal.session_mask(ts))
    assert cal.session_mask(np.array([], dtype=np.int64)).shape == (0,)


def test_vectorised_out_of_range_raises(cal):
    with pytest.raises(ValueError, match="outside"):
        cal.session_mask(np.array([ns_of(utc(2031, 1, 2, 15))]))
    with pytest.raises(ValueError, match="outside"):
        cal.session_index(np.array([ns_of(utc(1999, 12, 31, 15))]))


def test_session_minutes(cal):
    # 2025-07-03 (13:00 close): 210 minutes; 07-04 holiday; 07-07: 390
    lo, hi = ns_of(utc(2025, 7, 3)), ns_of(utc(2025, 7, 8))
    assert cal.session_minutes(lo, hi) == 210 + 390
    # half a session
    assert cal.session_minutes(ns_of(utc(2025, 7, 7, 13, 30)), ns_of(utc(2025, 7, 7, 16, 45))) == 195


def test_lunch_break_calendar_scalar_and_vector_agree():
    tokyo = MarketCalendar("XTKS")  # 09:00-11:30, 12:30-15:30 JST (00:00-02:30, 03:30-06:30 UTC)
    d = date(2025, 7, 1)
    assert tokyo.session_break(d) is not None
    assert tokyo.is_open(utc(2025, 7, 1, 1))
    assert not tokyo.is_open(utc(2025, 7, 1, 3))  # lunch
    assert tokyo.session_date(utc(2025, 7, 1, 3)) == d  # ... still inside the session
    assert_vector_matches_scalar(tokyo, boundary_instants(tokyo, [d, date(2025, 7, 2)]))


# ── 24/7: a session is a UTC day ───────────────────────────────────────────────────────────────
@pytest.fixture(scope="module")
def always() -> MarketCalendar:
    return MarketCalendar("24/7")


@pytest.mark.parametrize("hh, mm", [(0, 30), (3, 59), (4, 30), (0, 0), (23, 59)])
def test_24_7_instants_belong_to_their_utc_day(always, hh, mm):
    from datetime import time as dtime

    ts = utc(2026, 12, 2, hh, mm)
    day_open, day_close = utc(2026, 12, 2), utc(2026, 12, 3)
    assert always.session_date(ts) == date(2026, 12, 2)  # never the New York date (12-01 before ~05:00)
    assert always.session_for(ts) == (day_open, day_close)
    assert always.is_open(ts)
    assert always.eod_cutoff(ts, minutes_before=5) == utc(2026, 12, 2, 23, 55)
    assert always.eod_close_for(ts, dtime(15, 55), 5) == utc(2026, 12, 2, 23, 55)
    assert always.eod_close_for(ts, dtime(15, 55), 10) == utc(2026, 12, 2, 23, 50)
    assert not always.is_early_close(ts)
    rows = always.session_index(np.array([ns_of(ts)]))
    assert always.labels[rows[0]] == date(2026, 12, 2)
    assert always.session_mask(np.array([ns_of(ts)])).tolist() == [True]


def test_24_7_vector_matches_scalar(always):
    days = [date(2026, 11, 30), date(2026, 12, 1), date(2026, 12, 2)]
    ts = boundary_instants(always, days)
    assert always.session_mask(ts).all()
    assert_vector_matches_scalar(always, ts)


def test_24_7_day_trade_is_closed_when_the_utc_day_ends(always):
    mon = ExitMonitor(ExecutorConfig(calendar="24/7"), calendar=always)

    def day_trade(entry: datetime) -> Position:
        return Position(ticker="AAPL", direction="long", entry_price=100.0, current_price=100.0,
                        shares=10, stop_loss=99.0, target_price=103.0, entry_time=entry,
                        signal_id="s1", trade_type="day")

    # entered at 00:10 UTC: 01:30 and 04:30 UTC are the same session, before the 23:55 cut-off
    p = day_trade(utc(2026, 12, 2, 0, 10))
    assert not mon.check_eod_close(p, now=utc(2026, 12, 2, 1, 30))
    assert not mon.check_eod_close(p, now=utc(2026, 12, 2, 4, 30))
    assert mon.check_eod_close(p, now=utc(2026, 12, 2, 23, 55))
    # entered at 23:00 UTC (the same New York date as 00:30 UTC next day): the next UTC day is
    # another session, so the position is closed
    assert mon.check_eod_close(day_trade(utc(2026, 12, 1, 23, 0)), now=utc(2026, 12, 2, 0, 30))
