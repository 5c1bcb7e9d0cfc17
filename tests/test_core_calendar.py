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
