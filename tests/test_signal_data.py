"""TradeSignalData.to_signal(): a malformed payload is a ValueError naming the field, never a
TypeError / KeyError / AttributeError that would abort a whole backtest (one case per test)."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from strategies.signal_data import TradeSignalData
from strategies.trade_executor import CloudState, TradeSignal

T0 = datetime(2025, 7, 1, 15, 0, tzinfo=timezone.utc)
FAST = CloudState("fast", 101.0, 100.0, True, 0.0099, True, False, False)


def good_dict() -> dict:
    return TradeSignal(
        signal_type="cloud_cross_bullish", direction="long", ticker="QQQ", timeframe="10m",
        conviction=80, entry_price=100.0, stop_loss=95.0, target_price=110.0,
        cloud_states=[FAST], timestamp=T0, metadata={"volume_ratio": 1.7},
    ).to_dict()


def wrap(payload) -> TradeSignalData:
    """As read back from a catalog: only the payload, no in-process TradeSignal."""
    return TradeSignalData(ts_event=0, ts_init=0, signal_id="QQQ-test", payload=payload)


def payload_with(**over) -> str:
    d = good_dict()
    d.update(over)
    return json.dumps(d)


def payload_without(key: str) -> str:
    d = good_dict()
    del d[key]
    return json.dumps(d)


def assert_bad(payload, field: str) -> None:
    with pytest.raises(ValueError) as e:
        wrap(payload).to_signal()
    assert field in str(e.value), str(e.value)


def test_valid_payload_round_trips():
    s = wrap(json.dumps(good_dict())).to_signal()
    assert s.ticker == "QQQ" and s.cloud_states == [FAST] and s.timestamp == T0
    assert TradeSignalData.from_signal(s, 0, 0).to_signal() is s  # in-process: same object
    assert TradeSignalData.from_signal(s, 0, 0, serialize=False).with_payload().payload


def test_optional_fields_may_be_null():
    s = wrap(payload_with(metadata=None, cloud_states=None, target_price=None,
                          signal_id=None)).to_signal()
    assert s.metadata == {} and s.cloud_states == [] and s.target_price is None
    assert s.signal_id  # derived


# ── the payload itself ───────────────────────────────────────────────────────────────────────
def test_null_payload():
    assert_bad(None, "payload")


def test_empty_payload():
    assert_bad("", "payload")


def test_blank_payload():
    assert_bad("   \n", "payload")


def test_payload_not_json():
    assert_bad("{not json", "payload")


def test_payload_json_null():
    assert_bad("null", "payload")


def test_payload_json_list():
    assert_bad("[1, 2, 3]", "payload")


def test_payload_json_string():
    assert_bad('"QQQ long"', "payload")


# ── metadata ─────────────────────────────────────────────────────────────────────────────────
def test_metadata_string():
    assert_bad(payload_with(metadata="volume_ratio=1.7"), "metadata")


def test_metadata_list_of_pairs():
    assert_bad(payload_with(metadata=[["volume_ratio", 1.7]]), "metadata")


def test_metadata_number():
    assert_bad(payload_with(metadata=5), "metadata")


# ── cloud_states ─────────────────────────────────────────────────────────────────────────────
def test_cloud_states_not_a_list():
    assert_bad(payload_with(cloud_states="fast"), "cloud_states")


def test_cloud_states_a_single_mapping():
    assert_bad(payload_with(cloud_states=FAST.to_dict()), "cloud_states")


def test_cloud_state_not_a_mapping():
    assert_bad(payload_with(cloud_states=[5]), "cloud_states[0]")


def test_cloud_state_missing_keys():
    assert_bad(payload_with(cloud_states=[FAST.to_dict(), {"name": "macro"}]), "cloud_states[1]")


def test_cloud_state_wrong_number_type():
    bad = dict(FAST.to_dict(), short_ema="101.0")
    assert_bad(payload_with(cloud_states=[bad]), "cloud_states[0].short_ema")


def test_cloud_state_non_finite_number():
    bad = dict(FAST.to_dict(), thickness=float("nan"))  # json writes NaN, json reads it back
    assert_bad(payload_with(cloud_states=[bad]), "cloud_states[0].thickness")


def test_cloud_state_wrong_flag_type():
    bad = dict(FAST.to_dict(), is_bullish="yes")
    assert_bad(payload_with(cloud_states=[bad]), "cloud_states[0].is_bullish")


def test_cloud_state_name_not_a_string():
    bad = dict(FAST.to_dict(), name=None)
    assert_bad(payload_with(cloud_states=[bad]), "cloud_states[0].name")


# ── scalar fields ────────────────────────────────────────────────────────────────────────────
def test_unknown_signal_type():
    assert_bad(payload_with(signal_type="golden_cross"), "signal_type")


def test_signal_type_not_hashable():
    assert_bad(payload_with(signal_type=["cloud_cross_bullish"]), "signal_type")


def test_naive_timestamp():
    assert_bad(payload_with(timestamp="2025-07-01T15:00:00"), "timestamp")


def test_timestamp_not_a_time():
    assert_bad(payload_with(timestamp="yesterday"), "timestamp")


def test_timestamp_a_number():
    assert_bad(payload_with(timestamp=1751382000), "timestamp")


def test_timestamp_out_of_range():
    assert_bad(payload_with(timestamp="0001-01-01T00:00:00+05:00"), "timestamp")


def test_missing_ticker():
    assert_bad(payload_without("ticker"), "ticker")


def test_ticker_not_a_string():
    assert_bad(payload_with(ticker=5), "ticker")


def test_direction_unknown():
    assert_bad(payload_with(direction=["long"]), "direction")


def test_timeframe_wrong_type():
    assert_bad(payload_with(timeframe={"tf": "10m"}), "timeframe")


def test_conviction_string():
    assert_bad(payload_with(conviction="80"), "conviction")


def test_entry_price_null():
    assert_bad(payload_with(entry_price=None), "entry_price")


def test_target_price_string():
    assert_bad(payload_with(target_price="110"), "target_price")


def test_signal_id_not_a_string():
    assert_bad(payload_with(signal_id=42), "signal_id")
