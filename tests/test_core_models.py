"""Data of the functional core: TradeSignal validation, serialisation, ExecutorConfig checks."""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta

import pytest

from strategies.trade_executor import (
    AccountState,
    CloudState,
    ExecutorConfig,
    InstrumentMode,
    Position,
    RiskDecision,
    SignalType,
    TradeSignal,
)
from tests.builders import T0, UTC


FAST = CloudState("fast", 101.0, 100.0, True, 0.0099, True, False, False)
MACRO = CloudState("macro", 98.0, 97.0, True, 0.0099, True, False, False)


def signal_kwargs(**over):
    kw = dict(
        signal_type="cloud_cross_bullish", direction="long", ticker="aapl", timeframe="10m",
        conviction=80, entry_price=100.0, stop_loss=95.0, target_price=110.0,
        cloud_states=[FAST, MACRO], timestamp=T0, metadata={"volume_ratio": 1.7},
    )
    kw.update(over)
    return kw


def test_valid_signal_normalises_fields():
    s = TradeSignal(**signal_kwargs())
    assert s.ticker == "AAPL"
    assert s.signal_type is SignalType.CLOUD_CROSS_BULLISH
    assert s.trade_type == "day"
    assert s.stop_distance == 5.0  # |100 - 95|
    assert s.signal_id == "AAPL-10m-cloud_cross_bullish-20250701T150000Z"
    assert s.cloud("fast") is FAST and s.cloud("trend") is None


@pytest.mark.parametrize("tf,tt", [("1m", "scalp"), ("5m", "day"), ("10m", "day"),
                                   ("1h", "swing"), ("1d", "swing")])
def test_timeframe_trade_type(tf, tt):
    assert TradeSignal(**signal_kwargs(timeframe=tf)).trade_type == tt


def test_timestamp_converted_to_utc():
    from zoneinfo import ZoneInfo

    ts = datetime(2025, 7, 1, 11, 0, tzinfo=ZoneInfo("America/New_York"))
    s = TradeSignal(**signal_kwargs(timestamp=ts))
    assert s.timestamp == T0 and s.timestamp.tzinfo == UTC


@pytest.mark.parametrize(
    "field,over",
    [
        ("signal_type", {"signal_type": "golden_cross"}),
        ("direction", {"direction": "up"}),
        ("ticker", {"ticker": ""}),
        ("ticker", {"ticker": "   "}),
        ("timeframe", {"timeframe": "15m"}),
        ("conviction", {"conviction": 101}),
        ("conviction", {"conviction": -1}),
        ("conviction", {"conviction": 50.5}),
        ("conviction", {"conviction": "80"}),
        ("entry_price", {"entry_price": 0.0}),
        ("entry_price", {"entry_price": -1.0}),
        ("entry_price", {"entry_price": float("nan")}),
        ("entry_price", {"entry_price": float("inf")}),
        ("stop_loss", {"stop_loss": float("nan")}),
        ("stop_loss", {"stop_loss": 0.0}),
        ("stop_loss", {"stop_loss": 100.0}),  # long: stop must be below entry (equal is wrong)
        ("stop_loss", {"stop_loss": 101.0}),
        ("stop_loss", {"direction": "short", "stop_loss": 99.0, "target_price": 90.0}),
        ("target_price", {"target_price": 99.0}),  # long target below entry
        ("target_price", {"target_price": float("nan")}),
        ("target_price", {"direction": "short", "stop_loss": 105.0, "target_price": 101.0}),
        ("timestamp", {"timestamp": datetime(2025, 7, 1, 15, 0)}),  # naive
        ("timestamp", {"timestamp": "2025-07-01T15:00:00Z"}),
        ("cloud_states", {"cloud_states": [{"name": "fast"}]}),
        ("metadata", {"metadata": ["not", "a", "dict"]}),
    ],
)
def test_bad_field_raises_naming_it(field, over):
    with pytest.raises(ValueError) as e:
        TradeSignal(**signal_kwargs(**over))
    assert field in str(e.value)


def test_conviction_bounds_inclusive():
    assert TradeSignal(**signal_kwargs(conviction=0)).conviction == 0
    assert TradeSignal(**signal_kwargs(conviction=100)).conviction == 100
    assert TradeSignal(**signal_kwargs(conviction=75.0)).conviction == 75  # integral float ok


def test_to_dict_from_dict_round_trip_through_json():
    s = TradeSignal(**signal_kwargs(direction="short", stop_loss=105.0, target_price=90.0))
    d = json.loads(json.dumps(s.to_dict()))
    back = TradeSignal.from_dict(d)
    assert back == s
    assert back.cloud_states == [FAST, MACRO]
    assert back.timestamp == T0


def test_round_trip_without_target():
    s = TradeSignal(**signal_kwargs(target_price=None, cloud_states=[], metadata={}))
    assert TradeSignal.from_dict(s.to_dict()) == s


@pytest.mark.parametrize("missing", ["signal_type", "direction", "ticker", "timeframe",
                                     "conviction", "entry_price", "stop_loss", "timestamp"])
def test_from_dict_missing_field_named(missing):
    d = TradeSignal(**signal_kwargs()).to_dict()
    del d[missing]
    with pytest.raises(ValueError, match=missing):
        TradeSignal.from_dict(d)


def test_from_dict_bad_timestamp_named():
    d = TradeSignal(**signal_kwargs()).to_dict()
    d["timestamp"] = "yesterday"
    with pytest.raises(ValueError, match="timestamp"):
        TradeSignal.from_dict(d)


# ── ExecutorConfig ──────────────────────────────────────────────────────────────────────────
def test_config_defaults_are_the_seeds():
    c = ExecutorConfig()
    assert c.instrument_mode is InstrumentMode.BOTH
    assert (c.max_risk_per_trade, c.max_concurrent_positions, c.daily_loss_limit) == (0.05, 10, 0.10)
    assert (c.max_single_stock_exposure, c.max_sector_exposure) == (0.15, 0.30)
    assert c.min_account_equity == 25_000.0 and c.slippage_buffer == 0.001
    assert (c.reward_to_risk_target, c.time_stop_minutes, c.eod_close_time) == (2.0, 120, "15:55")
    assert (c.max_etf_hold_days_3x, c.max_etf_hold_days_2x) == (5, 10)
    assert c.min_etf_daily_volume == 10_000_000
    assert (c.consecutive_loss_threshold, c.consecutive_loss_pct, c.api_timeout_seconds) == (3, 0.03, 60)


def test_config_mode_from_string():
    assert ExecutorConfig(instrument_mode="leveraged_etf").instrument_mode is InstrumentMode.LEVERAGED_ETF


@pytest.mark.parametrize(
    "field,value",
    [
        ("instrument_mode", "futures"),
        ("max_risk_per_trade", 0.0),
        ("max_risk_per_trade", 1.5),
        ("daily_loss_limit", -0.1),
        ("max_single_stock_exposure", 2.0),
        ("max_sector_exposure", 0),
        ("consecutive_loss_pct", 0.0),
        ("max_concurrent_positions", 0),
        ("max_concurrent_positions", 2.5),
        ("time_stop_minutes", -5),
        ("api_timeout_seconds", 0),
        ("slippage_buffer", -0.001),
        ("slippage_buffer", 0.5),
        ("min_account_equity", -1.0),
        ("reward_to_risk_target", 0.0),
        ("eod_close_time", "25:00"),
        ("eod_close_time", "1555"),
        ("primary_broker", "etrade"),
        ("default_time_in_force", "fok"),
    ],
)
def test_config_rejects_broken_values_naming_field(field, value):
    with pytest.raises(ValueError) as e:
        ExecutorConfig(**{field: value})
    assert field in str(e.value)


# ── AccountState / Position / RiskDecision ─────────────────────────────────────────────────
def test_account_starting_equity_defaults_to_equity():
    a = AccountState(equity=100_000.0, cash=1.0, buying_power=2.0, open_positions=[],
                     daily_pnl=0.0, daily_trades=0)
    assert a.starting_equity == 100_000.0 and a.pending_orders == []
    b = AccountState(equity=90_000.0, cash=1.0, buying_power=2.0, open_positions=[],
                     daily_pnl=-10_000.0, daily_trades=0, starting_equity=100_000.0)
    assert b.starting_equity == 100_000.0


def test_account_rejects_nan_equity():
    with pytest.raises(ValueError, match="equity"):
        AccountState(equity=math.nan, cash=1.0, buying_power=2.0, open_positions=[],
                     daily_pnl=0.0, daily_trades=0)


def test_position_pnl_and_defaults():
    # long 10 @ 100 marked 103 -> +30; short 10 @ 100 marked 103 -> -30
    p = Position("AAPL", "long", 100.0, 103.0, 10, 95.0, None, T0, "s1", "day")
    assert p.unrealized_pnl == pytest.approx(30.0) and p.underlying == "AAPL"
    q = Position("AAPL", "short", 100.0, 103.0, 10, 105.0, None, T0, "s2", "day")
    assert q.unrealized_pnl == pytest.approx(-30.0)
    q.mark(98.0)  # short gains 2 x 10
    assert q.unrealized_pnl == pytest.approx(20.0)
    with pytest.raises(ValueError, match="shares"):
        Position("AAPL", "long", 100.0, 103.0, -1, 95.0, None, T0, "s3", "day")


def test_position_r_multiple():
    # long @ 100, stop 95 (R = 5): 103 -> +0.6R, 110 -> +2R, 95 -> -1R
    p = Position("AAPL", "long", 100.0, 103.0, 10, 95.0, None, T0, "s1", "day")
    assert p.initial_stop_loss == 95.0 and p.initial_risk_per_share == 5.0
    assert p.r_multiple() == pytest.approx(0.6)
    p.mark(110.0)
    assert p.r_multiple() == pytest.approx(2.0)
    p.stop_loss = 105.0  # trailed: the initial risk stays
    p.mark(95.0)
    assert p.r_multiple() == pytest.approx(-1.0)
    # short @ 100, stop 104 (R = 4), marked 94: +1.5R
    q = Position("AAPL", "short", 100.0, 94.0, 10, 104.0, None, T0, "s2", "day")
    assert q.r_multiple() == pytest.approx(1.5)
    # explicit initial stop (a restored position whose stop has moved)
    r = Position("AAPL", "long", 100.0, 110.0, 10, 101.0, None, T0, "s3", "day", initial_stop_loss=90.0)
    assert r.r_multiple() == pytest.approx(1.0)


@pytest.mark.parametrize("kw", [
    dict(stop_loss=100.0),                 # no risk
    dict(stop_loss=101.0),                 # stop on the wrong side
    dict(stop_loss=float("nan")),
    dict(instrument_type="option"),        # option stops are underlying levels
])
def test_position_r_multiple_unmeasurable(kw):
    base = dict(ticker="AAPL", direction="long", entry_price=100.0, current_price=103.0, shares=1,
                stop_loss=95.0, target_price=None, entry_time=T0, signal_id="s", trade_type="day")
    base.update(kw)
    assert Position(**base).r_multiple() is None


def test_new_config_fields_defaults():
    c = ExecutorConfig()
    assert c.max_signal_age_seconds == 120.0 and c.max_signal_clock_skew_seconds == 5.0
    assert c.both_mode_etf_min_conviction == 75 and c.add_to_winner_min_r == 1.0


def test_account_losses_vs_equity_default_and_copy():
    src = [0.01, 0.0]
    a = AccountState(equity=1.0, cash=1.0, buying_power=1.0, open_positions=[], daily_pnl=0.0,
                     daily_trades=0, recent_trade_losses_vs_equity=src)
    assert a.recent_trade_losses_vs_equity == [0.01, 0.0]
    src.append(0.5)
    assert a.recent_trade_losses_vs_equity == [0.01, 0.0]  # a copy
    b = AccountState(equity=1.0, cash=1.0, buying_power=1.0, open_positions=[], daily_pnl=0.0,
                     daily_trades=0)
    assert b.recent_trade_losses_vs_equity == []


@pytest.mark.parametrize("record,field", [
    (None, "signal record"),
    ([1, 2], "signal record"),
    ({"cloud_states": "x"}, "cloud_states"),
    ({"cloud_states": [{"name": "fast"}]}, "cloud_states[0]"),
    ({"metadata": [["a", 1]]}, "metadata"),
    ({"signal_id": 7}, "signal_id"),
    ({"timestamp": 1751382000}, "timestamp"),
])
def test_from_dict_malformed_is_value_error(record, field):
    if isinstance(record, dict):
        d = TradeSignal(**signal_kwargs()).to_dict()
        d.update(record)
        record = d
    with pytest.raises(ValueError) as e:
        TradeSignal.from_dict(record)
    assert field in str(e.value)


def test_risk_decision_code():
    assert RiskDecision(False, "max_positions: 10 open, limit 10", None).code == "max_positions"
    assert RiskDecision(True, None, None).code is None


def test_signal_is_frozen():
    s = TradeSignal(**signal_kwargs())
    with pytest.raises(Exception):
        s.conviction = 10  # type: ignore[misc]
    assert s.timestamp + timedelta(0) == T0


# ── package surface ─────────────────────────────────────────────────────────────────────────
def test_package_exports_resolve():
    import strategies.trade_executor as te

    for name in te.__all__:
        assert hasattr(te, name), name
    for name in ("KillSwitch", "MarketCalendar", "LEVERAGED_ETF_CATALOG", "TICKER_SECTOR", "RiskGate",
                 "PositionSizer", "LeveragedETFSizer", "InstrumentRouter", "ExitMonitor",
                 "ExitDecision", "TradeSignal", "SignalType", "InstrumentMode", "AccountState",
                 "Position", "ExecutorConfig", "RiskDecision", "PositionSize",
                 "InstrumentDecision", "ETFSelection", "CloudState", "PendingOrder"):
        assert name in te.__all__, name


def test_core_does_not_import_nautilus():
    import subprocess
    import sys

    code = ("import sys, strategies.trade_executor as te; "
            "bad = [m for m in sys.modules if m.startswith('nautilus_trader')]; "
            "assert not bad, bad")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       cwd=str(__import__("pathlib").Path(__file__).resolve().parent.parent))
    assert r.returncode == 0, r.stderr
