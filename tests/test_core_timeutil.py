"""The shared small helpers: aware datetimes, finite numbers, "HH:MM", epoch nanoseconds."""

from __future__ import annotations

import math
from datetime import datetime, time, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest

from strategies.trade_executor.options_pricing import OptionsInputError
from strategies.trade_executor.timeutil import (
    FieldError,
    aware,
    aware_utc,
    datetime_to_ns,
    finite,
    ns_to_datetime,
    parse_hhmm,
)

UTC = timezone.utc


def test_aware_passes_aware_datetimes_through():
    ts = datetime(2025, 7, 1, 9, 30, tzinfo=ZoneInfo("America/New_York"))
    assert aware(ts, "now") is ts
    assert aware_utc(ts, "now") == datetime(2025, 7, 1, 13, 30, tzinfo=UTC)
    assert aware_utc(ts, "now").utcoffset() == timedelta(0)
    p = pd.Timestamp("2025-07-01 13:30", tz="UTC")
    assert aware(p, "now") is p


@pytest.mark.parametrize("value, text", [(datetime(2025, 7, 1, 15), "naive"), ("2025-07-01T15:00Z", "datetime"),
                                         (None, "datetime"), (1_751_000_000, "datetime")])
def test_aware_names_the_field(value, text):
    with pytest.raises(FieldError, match=text) as exc:
        aware(value, "signal.ts")
    assert exc.value.field == "signal.ts" and str(exc.value).startswith("signal.ts: ")
    assert isinstance(exc.value, ValueError)


def test_error_class_is_the_callers():
    with pytest.raises(OptionsInputError) as exc:
        aware(datetime(2025, 7, 1), "now_utc", error=OptionsInputError)
    assert exc.value.field == "now_utc"


def test_finite():
    assert finite(3, "x") == 3.0 and isinstance(finite(3, "x"), float)
    assert finite(np.float32(1.5), "x") == 1.5
    assert finite(Decimal("2.25"), "x") == 2.25
    assert finite(0, "x", nonneg=True) == 0.0
    assert finite(-1, "x", nonzero=True) == -1.0
    for bad, opts, text in [
        (math.nan, {}, "finite"), (math.inf, {}, "finite"), (-math.inf, {}, "finite"),
        (True, {}, "number"), ("1.5", {}, "number"), (None, {}, "number"), (b"1", {}, "number"),
        (0, {"positive": True}, "> 0"), (-0.01, {"nonneg": True}, ">= 0"), (0.0, {"nonzero": True}, "not be 0"),
    ]:
        with pytest.raises(FieldError, match=text) as exc:
            finite(bad, "price", **opts)
        assert exc.value.field == "price" and exc.value.value is bad


def test_parse_hhmm():
    assert parse_hhmm("15:55", "eod_close_time") == time(15, 55)
    assert parse_hhmm(" 9:30 ", "t") == time(9, 30)
    assert parse_hhmm("00:00", "t") == time(0, 0)
    assert parse_hhmm(time(12, 45), "t") == time(12, 45)
    for bad in ("24:00", "12:60", "1555", "3pm", "", "12:5", None, 1555, "12:30:00"):
        with pytest.raises(FieldError, match="HH:MM") as exc:
            parse_hhmm(bad, "eod_close_time")
        assert exc.value.field == "eod_close_time"


def test_ns_round_trip_is_exact():
    ns = 1_751_376_600_123_456_789  # 2025-07-01 13:30:00.123456789 UTC
    dt = ns_to_datetime(ns)
    assert dt == datetime(2025, 7, 1, 13, 30, 0, 123456, tzinfo=UTC)
    assert datetime_to_ns(dt) == ns - 789  # a datetime holds microseconds
    assert datetime_to_ns(pd.Timestamp(ns, unit="ns", tz="UTC")) == ns  # a Timestamp keeps its ns
    # the microsecond before a boundary is never rounded onto it (a float division would)
    edge = 1_751_376_600_000_000_000
    assert ns_to_datetime(edge - 1) == datetime(2025, 7, 1, 13, 29, 59, 999999, tzinfo=UTC)
    assert ns_to_datetime(edge) == datetime(2025, 7, 1, 13, 30, tzinfo=UTC)
    ny = datetime(2025, 7, 1, 9, 30, tzinfo=ZoneInfo("America/New_York"))
    assert datetime_to_ns(ny) == edge
    with pytest.raises(FieldError, match="naive"):
        datetime_to_ns(datetime(2025, 7, 1, 13, 30))
