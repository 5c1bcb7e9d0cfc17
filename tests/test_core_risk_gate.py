"""RiskGate: every check at its boundary and just past it, order of checks, shrink-vs-reject.

Base case (unless a test says otherwise): equity 100,000, buying power 200,000, no positions;
signal AAPL long, entry 200, stop 150, conviction 80, Tue 2025-07-01 15:00 UTC (11:00 ET, open).
The stock sizer gives risk 5,000 / 50 = 100 shares, capped to 15,000 / 200 = 75 shares.
"""

from __future__ import annotations

import json
from datetime import datetime
from functools import partial

import pytest

from strategies.trade_executor import (
    ExecutorConfig,
    InstrumentDecision,
    InstrumentMode,
    InstrumentRouter,
    MarketCalendar,
    PendingOrder,
    PositionSize,
    RiskGate,
    underlying_exposure,
)
from tests import builders
from tests.builders import utc

T_OPEN = builders.T0
HELD_SINCE = utc(2025, 7, 1, 14)

sig = partial(builders.signal, ticker="AAPL", entry=200.0, risk=50.0, volume_confirmed=None)
pos = partial(builders.position, entry_time=HELD_SINCE)  # stop 10 % away, signal_id sig-<ticker>-<direction>
acct = partial(builders.account, buying_power=200_000.0)


def size(shares, price=200.0):
    return PositionSize(shares=shares, notional=shares * price, risk_amount=5_000.0,
                        conviction_multiplier=1.0)


@pytest.fixture(scope="module")
def gate() -> RiskGate:
    return RiskGate(ExecutorConfig(), calendar=MarketCalendar())


def code(d):
    return None if d.approved else d.reason.split(":", 1)[0]


def test_base_case_approved(gate):
    d = gate.validate(sig(), acct())
    assert d.approved and d.reason is None and d.adjustments is None
    assert d.details["requested_shares"] == 75 and d.details["approved_shares"] == 75
    assert d.details["underlying_exposure_after"] == 15_000.0
    json.dumps(d.details)  # serialisable


# ── 1 low conviction ────────────────────────────────────────────────────────────────────────
def test_low_conviction_boundary(gate):
    assert gate.validate(sig(conviction=50), acct()).approved
    d = gate.validate(sig(conviction=49), acct())
    assert code(d) == "low_conviction" and "49 < 50" in d.reason


# ── 2 kill switch ───────────────────────────────────────────────────────────────────────────
def test_kill_switch(gate):
    assert gate.validate(sig(), acct(), kill_switch_active=False).approved
    d = gate.validate(sig(), acct(), kill_switch_active=True)
    assert code(d) == "kill_switch"
    d = gate.validate(sig(), acct(), kill_switch_active="manual: paused")
    assert code(d) == "kill_switch" and "manual: paused" in d.reason


# ── 3 daily loss ────────────────────────────────────────────────────────────────────────────
def test_daily_loss_limit_exact_blocks(gate):
    # limit = 10% x starting 100,000 = 10,000; a loss of exactly 10,000 blocks
    d = gate.validate(sig(), acct(equity=90_000.0, daily_pnl=-10_000.0, starting_equity=100_000.0))
    assert code(d) == "daily_loss_limit"
    assert "-10,000.00" in d.reason and "100,000.00" in d.reason
    assert d.details["daily_loss_limit_amount"] == 10_000.0


def test_daily_loss_limit_just_inside(gate):
    d = gate.validate(sig(), acct(equity=90_000.01, daily_pnl=-9_999.99, starting_equity=100_000.0))
    assert d.approved
    d = gate.validate(sig(), acct(equity=89_999.99, daily_pnl=-10_000.01, starting_equity=100_000.0))
    assert code(d) == "daily_loss_limit"


def test_daily_loss_uses_starting_not_current_equity(gate):
    # equity 60,000 now, started at 70,000: limit 7,000. -6,500 passes; against current
    # equity (limit 6,000) it would have blocked.
    assert gate.validate(sig(), acct(equity=60_000.0, daily_pnl=-6_500.0, starting_equity=70_000.0)).approved
    d = gate.validate(sig(), acct(equity=63_000.0, daily_pnl=-7_000.0, starting_equity=70_000.0))
    assert code(d) == "daily_loss_limit"


# ── 4 equity floor ──────────────────────────────────────────────────────────────────────────
def test_min_equity_boundary(gate):
    assert gate.validate(sig(), acct(equity=25_000.0)).approved
    d = gate.validate(sig(), acct(equity=24_999.99))
    assert code(d) == "min_equity" and "24,999.99" in d.reason and "25,000.00" in d.reason


# ── 5 market hours ──────────────────────────────────────────────────────────────────────────
@pytest.mark.parametrize("ts,ok", [
    (utc(2025, 7, 1, 13, 30), True),            # the open (09:30 EDT) itself
    (utc(2025, 7, 1, 13, 29, 59), False),       # one second before
    (utc(2025, 7, 1, 19, 59, 59), True),
    (utc(2025, 7, 1, 20, 0), False),            # the close is out
    (utc(2025, 7, 3, 16, 59, 59), True),        # early close day, 12:59:59 ET
    (utc(2025, 7, 3, 17, 0), False),            # 13:00 ET early close
    (utc(2025, 7, 3, 18, 0), False),            # 14:00 ET: open on a normal day
    (utc(2025, 7, 4, 15, 0), False),            # Independence Day
    (utc(2025, 1, 9, 16, 0), False),            # ad-hoc closure
    (utc(2025, 7, 5, 15, 0), False),            # Saturday
    (utc(2025, 11, 3, 14, 0), False),           # 09:00 EST after the DST change
    (utc(2025, 11, 3, 14, 30), True),           # 09:30 EST
])
def test_market_hours(gate, ts, ok):
    d = gate.validate(sig(ts=ts, timeframe="1h"), acct())  # a swing: the EOD window does not apply
    assert d.approved is ok
    if not ok:
        assert code(d) == "market_closed"


@pytest.mark.parametrize("ts,tf,ok", [
    (utc(2025, 7, 1, 19, 54, 59), "10m", True),   # 15:54:59 ET day trade
    (utc(2025, 7, 1, 19, 55), "10m", False),      # 15:55 ET: EOD cutoff
    (utc(2025, 7, 1, 19, 55), "1m", False),       # scalps too
    (utc(2025, 7, 1, 19, 55), "1h", True),        # swings may still enter
    (utc(2025, 7, 3, 16, 54, 59), "10m", True),   # early close: cutoff 12:55 ET
    (utc(2025, 7, 3, 16, 55), "10m", False),
])
def test_eod_window_for_day_trades(gate, ts, tf, ok):
    d = gate.validate(sig(ts=ts, timeframe=tf), acct())
    assert d.approved is ok
    if not ok:
        assert code(d) == "eod_window" and "EOD close cutoff" in d.reason


def test_market_closed_reason_names_the_day(gate):
    d = gate.validate(sig(ts=utc(2025, 7, 4, 15)), acct())
    assert "2025-07-04" in d.reason


# ── 6 position count ────────────────────────────────────────────────────────────────────────
def others(n):
    return [pos(f"T{i}", shares=10, price=100.0) for i in range(n)]


def test_max_positions_boundary(gate):
    assert gate.validate(sig(), acct(positions=others(9))).approved
    d = gate.validate(sig(), acct(positions=others(10)))
    assert code(d) == "max_positions"
    assert d.reason == "max_positions: 10 open (10 positions + 0 pending), limit 10"


def test_max_positions_counts_pending(gate):
    pend = [PendingOrder("P1", "long", 10, 50.0, signal_id="p1")]
    d = gate.validate(sig(), acct(positions=others(9), pending_orders=pend))
    assert code(d) == "max_positions" and "9 positions + 1 pending" in d.reason
    # a pending order of an already open position (partial fill) is not a second slot
    pend = [PendingOrder("T0", "long", 5, 100.0, signal_id="sig-T0-long")]
    assert gate.validate(sig(), acct(positions=others(9), pending_orders=pend)).approved


# ── 6b runaway guard: entries per session ──────────────────────────────────────────────────────
def test_max_daily_trades_boundary(gate):
    a = acct()
    a.daily_trades = 39
    assert gate.validate(sig(), a).approved  # 39 < 40 (default)
    a.daily_trades = 40
    d = gate.validate(sig(), a)
    assert code(d) == "max_daily_trades"
    assert d.reason == "max_daily_trades: 40 entries today + 0 pending >= limit 40 per session"
    # pending entry orders count: 39 filled + 1 pending = 40
    a.daily_trades = 39
    a.pending_orders = [PendingOrder("MSFT", "long", 10, 400.0, signal_id="p1")]
    assert code(gate.validate(sig(), a)) == "max_daily_trades"


def test_runaway_guard_config_validation():
    for field in ("max_daily_trades", "max_orders_per_minute"):
        with pytest.raises(ValueError, match=field):
            ExecutorConfig(**{field: 0})


# ── 7 duplicate ─────────────────────────────────────────────────────────────────────────────
def test_duplicate_same_ticker_same_direction(gate):
    d = gate.validate(sig(), acct(positions=[pos("AAPL", "long", price=200.0, shares=10)]))
    assert code(d) == "duplicate" and "AAPL" in d.reason


def test_duplicate_pending_order(gate):
    d = gate.validate(sig(), acct(pending_orders=[PendingOrder("AAPL", "long", 10, 200.0, signal_id="x")]))
    assert code(d) == "duplicate"


def test_duplicate_via_leveraged_etf_on_same_underlying(gate):
    # long TQQQ (underlying QQQ) + new long QQQ stock signal
    tqqq = pos("TQQQ", "long", price=80.0, shares=50, underlying="QQQ", leverage=3.0, instrument_type="leveraged_etf")
    d = gate.validate(sig(ticker="QQQ", entry=500.0), acct(positions=[tqqq]))
    assert code(d) == "duplicate" and "via TQQQ" in d.reason


def test_duplicate_same_traded_etf_from_other_underlying(gate):
    # long TECL held for an MSFT signal; a long AAPL signal routed to TECL again
    tecl = pos("TECL", "long", price=90.0, shares=20, underlying="MSFT", leverage=3.0, instrument_type="leveraged_etf")
    dec = InstrumentRouter(InstrumentMode.LEVERAGED_ETF).route(sig(ticker="AAPL"))
    assert dec.ticker == "TECL"
    d = gate.validate(sig(ticker="AAPL"), acct(positions=[tecl]), decision=dec, price=90.0)
    assert code(d) == "duplicate"


def test_unrelated_holding_is_not_duplicate(gate):
    assert gate.validate(sig(), acct(positions=[pos("XOM", "long", price=100.0, shares=10)])).approved


# ── 8 conflict ──────────────────────────────────────────────────────────────────────────────
def test_conflict_long_tqqq_vs_short_qqq_signal_routed_to_sqqq(gate):
    # long TQQQ: exposure +3 x 80 x 50 = +12,000 QQQ; new short QQQ -> buy SQQQ
    tqqq = pos("TQQQ", "long", price=80.0, shares=50, underlying="QQQ", leverage=3.0, instrument_type="leveraged_etf")
    assert underlying_exposure(tqqq) == 12_000.0
    s = sig(ticker="QQQ", direction="short", entry=500.0)
    dec = InstrumentRouter(InstrumentMode.LEVERAGED_ETF).route(s)
    assert dec.ticker == "SQQQ" and dec.leverage == -3.0
    d = gate.validate(s, acct(positions=[tqqq]), decision=dec, price=20.0)
    assert code(d) == "conflict" and "+12,000.00" in d.reason


def test_conflict_long_qqq_stock_vs_long_sqqq(gate):
    # existing long SQQQ = short QQQ exposure (-3 x 20 x 100 = -6,000); new long QQQ stock
    sqqq = pos("SQQQ", "long", price=20.0, shares=100, underlying="QQQ", leverage=-3.0, instrument_type="leveraged_etf")
    assert underlying_exposure(sqqq) == -6_000.0
    d = gate.validate(sig(ticker="QQQ", direction="long", entry=500.0), acct(positions=[sqqq]))
    assert code(d) == "conflict" and "-6,000.00" in d.reason
    # and the other way round: long QQQ stock held, new short QQQ -> SQQQ
    qqq = pos("QQQ", "long", price=500.0, shares=10)
    s = sig(ticker="QQQ", direction="short", entry=500.0)
    dec = InstrumentRouter(InstrumentMode.LEVERAGED_ETF).route(s)
    assert code(gate.validate(s, acct(positions=[qqq]), decision=dec, price=20.0)) == "conflict"


def test_conflict_short_stock_vs_long_signal(gate):
    d = gate.validate(sig(), acct(positions=[pos("AAPL", "short", price=200.0, shares=10)]))
    assert code(d) == "conflict"


def test_conflict_with_pending_inverse_order(gate):
    pend = PendingOrder("SQQQ", "long", 100, 20.0, signal_id="p", underlying="QQQ", leverage=-3.0,
                        instrument_type="leveraged_etf")
    d = gate.validate(sig(ticker="QQQ", direction="long", entry=500.0), acct(pending_orders=[pend]))
    assert code(d) == "conflict"


# ── 9 single-stock exposure ─────────────────────────────────────────────────────────────────
def test_single_stock_exposure_at_cap_passes(gate):
    # 75 x 200 = 15,000 = 15% of 100,000
    d = gate.validate(sig(), acct(), size=size(75))
    assert d.approved and d.adjustments is None


def test_single_stock_exposure_shrinks(gate):
    # 76 x 200 = 15,200 > 15,000 -> 75 shares fit
    d = gate.validate(sig(), acct(), size=size(76))
    assert d.approved
    assert d.adjustments == {"max_shares": 75, "capped_by": "single_stock_exposure",
                             "requested_shares": 76, "caps": {"single_stock_exposure": 75}}


def test_single_stock_exposure_rejects_when_no_share_fits(gate):
    # one share at 15,000 = cap -> fits; at 15,000.01 it does not
    assert gate.validate(sig(), acct(), size=size(1, 15_000.0), price=15_000.0).approved
    d = gate.validate(sig(), acct(), size=size(1, 15_000.01), price=15_000.01)
    assert code(d) == "single_stock_exposure" and "15,000.00" in d.reason


def test_single_stock_exposure_counts_leverage(gate):
    # TQQQ at 50, 3x: 101 shares = 3 x 50 x 101 = 15,150 > 15,000 -> 100 shares
    dec = InstrumentRouter(InstrumentMode.LEVERAGED_ETF).route(sig(ticker="QQQ", entry=500.0))
    d = gate.validate(sig(ticker="QQQ", entry=500.0), acct(), decision=dec, size=size(101, 50.0), price=50.0)
    assert d.approved and d.adjustments["max_shares"] == 100
    assert d.details["unit_exposure"] == 150.0
    d = gate.validate(sig(ticker="QQQ", entry=500.0), acct(), decision=dec, size=size(100, 50.0), price=50.0)
    assert d.approved and d.adjustments is None


def test_option_delta_exposure_has_its_own_cap(gate):
    # AAPL 200, delta 0.5 (default): 0.5 x 100 x 200 = 10,000 of delta exposure per contract;
    # cap 50 % x 100,000 = 50,000 -> 6 contracts shrink to 5. Premium 3.00 x 100 = 300 per
    # contract counts against the 15 % single-name cap: 6 x 300 = 1,800, far below 15,000.
    dec = InstrumentDecision("option", "AAPL", "AAPL", 1.0, False, None)
    d = gate.validate(sig(), acct(), decision=dec, size=size(6, 300.0), price=3.0)
    assert d.approved and d.adjustments["max_shares"] == 5
    assert d.adjustments["capped_by"] == "option_delta_exposure"
    assert d.details["unit_exposure"] == 300.0 and d.details["unit_cost"] == 300.0
    assert d.details["unit_delta_exposure"] == 10_000.0 and d.details["option_delta_after"] == 50_000.0
    # one contract of 0.5 delta on a 1,200 underlying = 60,000 > 50,000: not one fits
    big = gate.validate(sig(entry=1_200.0), acct(), decision=dec, size=size(1, 300.0), price=3.0)
    assert code(big) == "option_delta_exposure" and "not one contract fits" in big.reason
    # no size for an option -> invalid
    assert code(gate.validate(sig(), acct(), decision=dec, price=3.0)) == "invalid_signal"


def test_option_premium_counts_against_the_single_name_cap(gate):
    # delta 0.01 -> 200 of delta exposure per contract (cap allows 250); premium 300 per
    # contract: 15,000 / 300 = 50 contracts under the single-name cap
    dec = InstrumentDecision("option", "AAPL", "AAPL", 1.0, False, {"delta": 0.01})
    d = gate.validate(sig(), acct(), decision=dec, size=size(60, 300.0), price=3.0)
    assert d.approved and d.adjustments["max_shares"] == 50
    assert d.adjustments["capped_by"] == "single_stock_exposure"
    assert d.details["underlying_exposure_after"] == 15_000.0


# ── 10 sector exposure ──────────────────────────────────────────────────────────────────────
def test_sector_exposure_shrinks(gate):
    # MSFT long 20,000 (technology). Cap 30,000 -> room 10,000 / 200 = 50 AAPL shares
    msft = pos("MSFT", "long", price=400.0, shares=50)
    d = gate.validate(sig(), acct(positions=[msft]), size=size(75))
    assert d.approved
    assert d.adjustments["max_shares"] == 50 and d.adjustments["capped_by"] == "sector_exposure"
    assert d.details["sector"] == "technology"
    assert d.details["sector_exposure_before"] == 20_000.0
    assert d.details["sector_exposure_after"] == 30_000.0


def test_sector_exposure_boundaries(gate):
    # 15,000 in MSFT + 75 x 200 = 30,000 = cap: no adjustment
    d = gate.validate(sig(), acct(positions=[pos("MSFT", "long", price=300.0, shares=50)]), size=size(75))
    assert d.approved and d.adjustments is None
    # 29,800 held: room 200 = exactly one share
    d = gate.validate(sig(), acct(positions=[pos("MSFT", "long", price=298.0, shares=100)]), size=size(75))
    assert d.approved and d.adjustments["max_shares"] == 1
    # 29,800.01 held: not one share fits
    d = gate.validate(sig(), acct(positions=[pos("MSFT", "long", price=29_800.01, shares=1)]), size=size(75))
    assert code(d) == "sector_exposure" and "technology" in d.reason
    # 30,000 held
    d = gate.validate(sig(), acct(positions=[pos("MSFT", "long", price=300.0, shares=100)]), size=size(75))
    assert code(d) == "sector_exposure"


def test_sector_exposure_nets_opposite_positions(gate):
    # short MSFT 20,000 + long ORCL 30,000 -> net +10,000; 75 AAPL (15,000) -> 25,000 <= 30,000
    held = [pos("MSFT", "short", price=400.0, shares=50), pos("ORCL", "long", price=300.0, shares=100)]
    d = gate.validate(sig(), acct(positions=held), size=size(75))
    assert d.approved and d.adjustments is None
    assert d.details["sector_exposure_before"] == 10_000.0


def test_sector_exposure_counts_leveraged_etf(gate):
    # long TECL for MSFT: 3 x 100 x 80 = 24,000 technology; room 6,000 / 200 = 30 AAPL shares
    tecl = pos("TECL", "long", price=100.0, shares=80, underlying="MSFT", leverage=3.0, instrument_type="leveraged_etf")
    d = gate.validate(sig(), acct(positions=[tecl]), size=size(75))
    assert d.approved and d.adjustments["max_shares"] == 30


# ── 11 buying power ─────────────────────────────────────────────────────────────────────────
def test_buying_power_boundary(gate):
    # 75 x 200 x 1.001 = 15,015
    assert gate.validate(sig(), acct(buying_power=15_015.0), size=size(75)).adjustments is None
    d = gate.validate(sig(), acct(buying_power=15_014.99), size=size(75))
    assert d.approved and d.adjustments == {"max_shares": 74, "capped_by": "buying_power",
                                            "requested_shares": 75, "caps": {"buying_power": 74}}


def test_buying_power_rejects_when_no_share_fits(gate):
    # one share needs 200.20
    assert gate.validate(sig(), acct(buying_power=200.2), size=size(75)).adjustments["max_shares"] == 1
    d = gate.validate(sig(), acct(buying_power=200.19), size=size(75))
    assert code(d) == "buying_power" and "200.20" in d.reason


def test_buying_power_includes_pending_orders(gate):
    # pending 100 x 50 = 5,000 (unrelated ticker): need 15,015 + 5,000 = 20,015
    pend = [PendingOrder("XOM", "long", 100, 50.0, signal_id="p")]
    assert gate.validate(sig(), acct(buying_power=20_015.0, pending_orders=pend), size=size(75)).adjustments is None
    d = gate.validate(sig(), acct(buying_power=20_014.99, pending_orders=pend), size=size(75))
    assert d.adjustments["max_shares"] == 74
    assert d.details["pending_notional"] == 5_000.0
    # a broker figure that already nets pending orders is not reduced twice
    g2 = RiskGate(ExecutorConfig(), calendar=MarketCalendar(), buying_power_includes_pending=True)
    assert g2.validate(sig(), acct(buying_power=15_015.0, pending_orders=pend), size=size(75)).adjustments is None


def test_caps_combine_and_name_the_tightest(gate):
    # requested 100: single-stock cap 15,000 / 200 = 75; sector room (30,000 - 20,000 MSFT) / 200
    # = 50; buying power 9,000 / 200.2 = 44.96 -> 44: buying power binds last
    msft = pos("MSFT", "long", price=400.0, shares=50)
    d = gate.validate(sig(), acct(positions=[msft], buying_power=9_000.0), size=size(100))
    assert d.approved
    assert d.adjustments["max_shares"] == 44 and d.adjustments["capped_by"] == "buying_power"
    assert d.adjustments["caps"] == {"single_stock_exposure": 75, "sector_exposure": 50,
                                     "buying_power": 44}


# ── invalid signal / decision ───────────────────────────────────────────────────────────────
def test_invalid_decision(gate):
    bad = InstrumentDecision("leveraged_etf", "UNH", "UNH", 1.0, False, None, tradeable=False,
                             reason="no_instrument: no inverse")
    assert code(gate.validate(sig(ticker="UNH", direction="short"), acct(), decision=bad)) == "invalid_signal"
    other = InstrumentDecision("stock", "MSFT", "MSFT", 1.0, False, None)
    assert code(gate.validate(sig(), acct(), decision=other)) == "invalid_signal"
    assert code(gate.validate("AAPL long", acct())) == "invalid_signal"  # type: ignore[arg-type]


def test_etf_decision_needs_a_price(gate):
    dec = InstrumentRouter(InstrumentMode.LEVERAGED_ETF).route(sig(ticker="QQQ", entry=500.0))
    d = gate.validate(sig(ticker="QQQ", entry=500.0), acct(), decision=dec)
    assert code(d) == "invalid_signal" and "price" in d.reason
    # with a price the gate sizes it with the ETF sizer: 15,000 / (3 x 50) = 100 shares
    d = gate.validate(sig(ticker="QQQ", entry=500.0), acct(), decision=dec, price=50.0)
    assert d.approved and d.details["approved_shares"] == 100


def test_zero_share_size_rejected_with_its_cap(gate):
    z = PositionSize(shares=0, notional=0.0, risk_amount=5_000.0, conviction_multiplier=1.0,
                     capped_by="buying_power")
    assert code(gate.validate(sig(), acct(), size=z)) == "buying_power"
    z.capped_by = None
    assert code(gate.validate(sig(), acct(), size=z)) == "invalid_signal"


# ── order of checks ─────────────────────────────────────────────────────────────────────────
def test_check_order(gate):
    closed = utc(2025, 7, 4, 15)
    broke = dict(equity=20_000.0, daily_pnl=-10_000.0, starting_equity=30_000.0)
    # everything wrong at once: conviction is reported first
    d = gate.validate(sig(conviction=10, ts=closed), acct(**broke), kill_switch_active=True)
    assert code(d) == "low_conviction"
    assert code(gate.validate(sig(ts=closed), acct(**broke), kill_switch_active=True)) == "kill_switch"
    assert code(gate.validate(sig(ts=closed), acct(**broke))) == "daily_loss_limit"
    assert code(gate.validate(sig(ts=closed), acct(equity=20_000.0))) == "min_equity"
    held = others(9) + [pos("AAPL", "long", price=200.0, shares=10)]
    assert code(gate.validate(sig(ts=closed), acct(positions=held))) == "market_closed"
    assert code(gate.validate(sig(), acct(positions=held))) == "max_positions"
    held = [pos("AAPL", "long", price=200.0, shares=10), pos("AAPL", "short", price=200.0, shares=5, signal_id="s2")]
    assert code(gate.validate(sig(), acct(positions=held))) == "duplicate"


def test_details_are_json_serialisable_on_rejection(gate):
    d = gate.validate(sig(), acct(positions=others(10)))
    payload = json.loads(json.dumps(d.details))
    assert payload["open_count"] == 10 and payload["max_positions"] == 10
    assert payload["equity"] == 100_000.0 and payload["rejected_by"] == "max_positions"


def test_default_calendar_is_built_lazily():
    g = RiskGate(ExecutorConfig())
    assert code(g.validate(sig(ts=utc(2025, 7, 4, 15)), acct())) == "market_closed"


def test_underlying_exposure_of_options():
    # long put: delta -0.4 x 100 x 500 x 2 contracts = -40,000 (short the underlying)
    put = pos("QQQ250701P00500000", "long", price=3.0, shares=2, underlying="QQQ", instrument_type="option",
              delta=-0.4, underlying_price=500.0, multiplier=100.0)
    assert underlying_exposure(put) == pytest.approx(-40_000.0)
    d = RiskGate(ExecutorConfig(), calendar=MarketCalendar()).validate(
        sig(ticker="QQQ", direction="long", entry=500.0), acct(positions=[put]))
    assert code(d) == "conflict"


# ── engine clock: now=... ───────────────────────────────────────────────────────────────────
def secs(n):
    from datetime import timedelta

    return timedelta(seconds=n)


def test_now_none_keeps_signal_time_behaviour(gate):
    # a signal from an hour ago is judged at its own timestamp without now: approved
    d = gate.validate(sig(ts=utc(2025, 7, 1, 14, 0)), acct())
    assert d.approved and "now" not in d.details


def test_now_equal_to_signal_time_approved(gate):
    d = gate.validate(sig(), acct(), now=T_OPEN)
    assert d.approved
    assert d.details["now"] == T_OPEN.isoformat() and d.details["signal_age_seconds"] == 0.0


def test_stale_signal_boundary(gate):
    assert gate.validate(sig(), acct(), now=T_OPEN + secs(120)).approved  # exactly the limit
    d = gate.validate(sig(), acct(), now=T_OPEN + secs(120.5))
    assert code(d) == "stale_signal"
    assert "120.5s old" in d.reason and "limit 120s" in d.reason


def test_stale_signal_limit_configurable():
    g = RiskGate(ExecutorConfig(max_signal_age_seconds=30), calendar=MarketCalendar())
    assert g.validate(sig(), acct(), now=T_OPEN + secs(30)).approved
    d = g.validate(sig(), acct(), now=T_OPEN + secs(31))
    assert code(d) == "stale_signal" and "31.0s old" in d.reason and "limit 30s" in d.reason


def test_future_signal_boundary(gate):
    assert gate.validate(sig(), acct(), now=T_OPEN - secs(5)).approved  # within 5 s skew
    d = gate.validate(sig(), acct(), now=T_OPEN - secs(5.5))
    assert code(d) == "future_signal"
    assert "5.5s ahead" in d.reason and "clock skew 5s" in d.reason


def test_freshness_checked_after_conviction_before_kill_switch(gate):
    old = T_OPEN + secs(600)
    assert code(gate.validate(sig(conviction=10), acct(), now=old)) == "low_conviction"
    assert code(gate.validate(sig(), acct(), now=old, kill_switch_active=True)) == "stale_signal"
    assert code(gate.validate(sig(), acct(equity=1_000.0), now=T_OPEN - secs(60))) == "future_signal"


@pytest.mark.parametrize("ts,now,tf,expected", [
    # day trade made at 15:54 ET, 15:55 cut-off
    (utc(2025, 7, 1, 19, 54), utc(2025, 7, 1, 19, 54, 59), "10m", None),
    (utc(2025, 7, 1, 19, 54), utc(2025, 7, 1, 19, 55), "10m", "after_cutoff"),
    (utc(2025, 7, 1, 19, 54), utc(2025, 7, 1, 19, 55, 30), "5m", "after_cutoff"),
    (utc(2025, 7, 1, 19, 54), utc(2025, 7, 1, 19, 55, 30), "1m", "after_cutoff"),  # scalps too
    # early close 13:00 ET: cut-off 12:55 ET
    (utc(2025, 7, 3, 16, 54), utc(2025, 7, 3, 16, 55, 1), "10m", "after_cutoff"),
    # swing made at 15:59 ET: its cut-off is the close
    (utc(2025, 7, 1, 19, 59), utc(2025, 7, 1, 19, 59, 59), "1h", None),
    (utc(2025, 7, 1, 19, 59), utc(2025, 7, 1, 20, 0, 30), "1h", "after_cutoff"),
    (utc(2025, 7, 3, 16, 59), utc(2025, 7, 3, 17, 0), "1d", "after_cutoff"),  # early close
    # made in the EOD window: eod_window, not after_cutoff
    (utc(2025, 7, 1, 19, 55), utc(2025, 7, 1, 19, 55, 10), "10m", "eod_window"),
    # made outside the session: market_closed, even though the market is open at now
    (utc(2025, 7, 1, 13, 29), utc(2025, 7, 1, 13, 30, 30), "10m", "market_closed"),
    (utc(2025, 7, 1, 20, 0), utc(2025, 7, 1, 20, 1), "1h", "market_closed"),
])
def test_cutoffs_judged_at_now(gate, ts, now, tf, expected):
    d = gate.validate(sig(ts=ts, timeframe=tf), acct(), now=now)
    assert code(d) == expected, d.reason
    if expected == "after_cutoff":
        assert ts.isoformat() in d.reason and now.isoformat() in d.reason


def test_after_cutoff_reason_has_the_numbers(gate):
    d = gate.validate(sig(ts=utc(2025, 7, 1, 19, 54)), acct(), now=utc(2025, 7, 1, 19, 55, 30))
    assert d.reason == (
        "after_cutoff: day signal made at 2025-07-01T19:54:00+00:00 (before the EOD close cutoff "
        "2025-07-01T15:55:00-04:00), but engine time 2025-07-01T19:55:30+00:00 is 30.0s past it")


def test_now_before_the_open_is_market_closed(gate):
    # signal stamped 09:30:03 ET, engine at 09:29:59 (4 s skew, allowed): the market is not open
    d = gate.validate(sig(ts=utc(2025, 7, 1, 13, 30, 3)), acct(), now=utc(2025, 7, 1, 13, 29, 59))
    assert code(d) == "market_closed" and "before" in d.reason


def test_late_delivery_into_next_session_with_long_age_limit():
    # age limit 1 day: a swing may still enter in the next session, a day trade may not
    g = RiskGate(ExecutorConfig(max_signal_age_seconds=86_400), calendar=MarketCalendar())
    ts, now = utc(2025, 7, 1, 19, 0), utc(2025, 7, 2, 14, 0)
    assert g.validate(sig(ts=ts, timeframe="1h"), acct(), now=now).approved
    assert code(g.validate(sig(ts=ts, timeframe="10m"), acct(), now=now)) == "after_cutoff"
    # ... and neither while the market is closed overnight
    assert code(g.validate(sig(ts=ts, timeframe="1h"), acct(), now=utc(2025, 7, 2, 3, 0))) == "after_cutoff"


def test_now_must_be_aware(gate):
    with pytest.raises(ValueError, match="now"):
        gate.validate(sig(), acct(), now=datetime(2025, 7, 1, 15, 0))


@pytest.mark.parametrize("field", ["max_signal_age_seconds", "max_signal_clock_skew_seconds"])
@pytest.mark.parametrize("value", [0, -1.0, float("nan"), float("inf"), True, "120"])
def test_freshness_config_validated(field, value):
    with pytest.raises(ValueError, match=field):
        ExecutorConfig(**{field: value})


def test_freshness_config_defaults():
    c = ExecutorConfig()
    assert (c.max_signal_age_seconds, c.max_signal_clock_skew_seconds) == (120.0, 5.0)


def test_new_codes_listed():
    from strategies.trade_executor import RISK_REASON_CODES
    import strategies.trade_executor.risk_gate as rg

    for c in ("stale_signal", "future_signal", "after_cutoff"):
        assert c in RISK_REASON_CODES and c in rg.__doc__


# ── adding to a winner (seed check 3 "unless adding to winner") ─────────────────────────────
def held(ticker="AAPL", direction="long", **kw):
    """A position with an explicit initial risk: long 10 AAPL @ 200, stop 150 (R = 50/share), now 260."""
    kw = {"price": 200.0, "stop": 150.0, "current": 260.0, "signal_id": f"held-{ticker}", **kw}
    return builders.position(ticker, direction, entry_time=HELD_SINCE, **kw)


def test_add_to_winner_allowed_at_1_2R(gate):
    # +60 on 50 of initial risk = +1.2R. 10 x 260 = 2,600 held; size 10 x 200 fits every cap
    w = held(current=260.0)
    assert w.r_multiple() == pytest.approx(1.2)
    d = gate.validate(sig(), acct(positions=[w]), size=size(10))
    assert d.approved
    assert d.adjustments == {"add_to_winner": {
        "existing_r": 1.2, "min_r": 1.0,
        "positions": [{"ticker": "AAPL", "signal_id": "held-AAPL", "r_multiple": 1.2}]}}
    assert d.details["add_to_winner"]["existing_r"] == 1.2


def test_add_to_winner_exactly_1R_allowed(gate):
    assert gate.validate(sig(), acct(positions=[held(current=250.0)]), size=size(10)).approved


def test_add_to_winner_rejected_at_0_5R(gate):
    d = gate.validate(sig(), acct(positions=[held(current=225.0)]), size=size(10))
    assert code(d) == "duplicate"
    assert "+0.50R < 1R" in d.reason and "AAPL" in d.reason
    assert d.details["duplicate_of"]["r_multiple"] == 0.5


def test_add_to_winner_rejected_when_losing(gate):
    d = gate.validate(sig(), acct(positions=[held(current=190.0)]), size=size(10))
    assert code(d) == "duplicate" and "-0.20R" in d.reason


def test_add_to_winner_rejected_while_an_entry_is_pending(gate):
    pend = PendingOrder("AAPL", "long", 10, 200.0, signal_id="p-AAPL")
    d = gate.validate(sig(), acct(positions=[held(current=260.0)], pending_orders=[pend]), size=size(10))
    assert code(d) == "duplicate" and "pending" in d.reason
    assert d.details["duplicate_of"]["kind"] == "pending"


def test_add_to_winner_needs_every_position_to_be_a_winner(gate):
    # two AAPL positions from two signals: +1.2R and +0.4R -> the weaker one blocks the add
    a = held(current=260.0, signal_id="a1")
    b = held(price=250.0, stop=225.0, current=260.0, signal_id="a2")  # +10 / 25 = +0.4R
    d = gate.validate(sig(), acct(positions=[a, b]), size=size(5))
    assert code(d) == "duplicate" and "a2" in d.reason and "+0.40R" in d.reason
    b.mark(280.0)  # +30 / 25 = +1.2R; a: +80 / 50 = +1.6R
    a.mark(280.0)
    d = gate.validate(sig(), acct(positions=[a, b]), size=size(5))
    assert d.approved and d.adjustments["add_to_winner"]["existing_r"] == 1.2


def test_add_is_still_capped_by_exposure(gate):
    # 10 x 260 = 2,600 held; cap 15,000 -> 12,400 / 200 = 62 of the 75 requested
    d = gate.validate(sig(), acct(positions=[held(current=260.0)]), size=size(75))
    assert d.approved
    assert d.adjustments["max_shares"] == 62 and d.adjustments["capped_by"] == "single_stock_exposure"
    assert d.adjustments["add_to_winner"]["existing_r"] == 1.2
    # already at the cap: the add is rejected by the cap, not waved through
    big = held(current=250.0, shares=60)  # 15,000 exposure, +1.0R
    assert code(gate.validate(sig(), acct(positions=[big]), size=size(10))) == "single_stock_exposure"


def test_add_still_counts_against_max_positions_and_buying_power(gate):
    d = gate.validate(sig(), acct(positions=others(9) + [held(current=260.0)]), size=size(10))
    assert code(d) == "max_positions"
    d = gate.validate(sig(), acct(positions=[held(current=260.0)], buying_power=100.0), size=size(10))
    assert code(d) == "buying_power"


def test_add_to_winner_uses_the_initial_stop(gate):
    # the stop was trailed to break-even after entry: R is still measured on the initial 50
    w = held(current=260.0)
    w.stop_loss = 200.0
    assert w.initial_stop_loss == 150.0 and w.r_multiple() == pytest.approx(1.2)
    assert gate.validate(sig(), acct(positions=[w]), size=size(10)).approved


def test_add_to_winner_short_side(gate):
    # short AAPL @ 200, stop 250 (R = 50), now 140: +1.2R; a new short signal may add
    w = held(direction="short", price=200.0, stop=250.0, current=140.0)
    assert w.r_multiple() == pytest.approx(1.2)
    assert gate.validate(sig(direction="short"), acct(positions=[w]), size=size(10)).approved


def test_add_to_winner_via_leveraged_etf(gate):
    # long TQQQ @ 80, stop 72 (R = 8), now 90: +1.25R; a long QQQ day signal routed to TQQQ adds.
    # held exposure 3 x 90 x 50 = 13,500; cap 15,000 -> room 1,500 / (3 x 90) = 5 shares
    tq = held("TQQQ", price=80.0, stop=72.0, current=90.0, shares=50, underlying="QQQ",
              leverage=3.0, instrument_type="leveraged_etf")
    s = sig(ticker="QQQ", entry=500.0)
    dec = InstrumentRouter(InstrumentMode.LEVERAGED_ETF).route(s)
    d = gate.validate(s, acct(positions=[tq]), decision=dec, size=size(20, 90.0), price=90.0)
    assert d.approved and d.adjustments["max_shares"] == 5
    assert d.adjustments["add_to_winner"]["existing_r"] == 1.25


def test_add_to_winner_not_for_same_fund_of_another_underlying(gate):
    # TECL held (+2R) for an MSFT signal; a long AAPL signal routed to TECL is still a duplicate
    tecl = held("TECL", price=90.0, stop=80.0, current=110.0, shares=20, underlying="MSFT",
                leverage=3.0, instrument_type="leveraged_etf")
    dec = InstrumentRouter(InstrumentMode.LEVERAGED_ETF).route(sig(ticker="AAPL"))
    d = gate.validate(sig(ticker="AAPL"), acct(positions=[tecl]), decision=dec, price=110.0)
    assert code(d) == "duplicate" and "held for MSFT" in d.reason


def test_add_to_winner_not_for_options(gate):
    # an option position's stop is a level of the underlying: its R cannot be measured
    call = held("AAPL250701C00200000", price=3.0, stop=150.0, current=9.0, shares=2,
                underlying="AAPL", instrument_type="option", delta=0.6, underlying_price=260.0,
                multiplier=100.0)
    assert call.r_multiple() is None
    d = gate.validate(sig(), acct(positions=[call]), size=size(10))
    assert code(d) == "duplicate" and "cannot be measured" in d.reason


def test_add_to_winner_threshold_configurable():
    w = held(current=260.0)  # +1.2R
    g2 = RiskGate(ExecutorConfig(add_to_winner_min_r=2.0), calendar=MarketCalendar())
    d = g2.validate(sig(), acct(positions=[w]), size=size(10))
    assert code(d) == "duplicate" and "< 2R" in d.reason
    off = RiskGate(ExecutorConfig(add_to_winner_min_r=float("inf")), calendar=MarketCalendar())
    assert code(off.validate(sig(), acct(positions=[held(current=1_000.0)]), size=size(1))) == "duplicate"
    for bad in (0, -1.0, float("nan"), True):
        with pytest.raises(ValueError, match="add_to_winner_min_r"):
            ExecutorConfig(add_to_winner_min_r=bad)


def test_non_add_approvals_keep_adjustments_none(gate):
    assert gate.validate(sig(), acct(positions=[pos("XOM", "long", price=100.0, shares=10)])).adjustments is None
