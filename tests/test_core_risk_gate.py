"""RiskGate: every check at its boundary and just past it, order of checks, shrink-vs-reject.

Base case (unless a test says otherwise): equity 100,000, buying power 200,000, no positions;
signal AAPL long, entry 200, stop 150, conviction 80, Tue 2025-07-01 15:00 UTC (11:00 ET, open).
The stock sizer gives risk 5,000 / 50 = 100 shares, capped to 15,000 / 200 = 75 shares.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from strategies.trade_executor import (
    AccountState,
    ExecutorConfig,
    InstrumentDecision,
    InstrumentMode,
    InstrumentRouter,
    MarketCalendar,
    PendingOrder,
    Position,
    PositionSize,
    RiskGate,
    TradeSignal,
    underlying_exposure,
)

UTC = timezone.utc
T_OPEN = datetime(2025, 7, 1, 15, 0, tzinfo=UTC)


def utc(*a):
    return datetime(*a, tzinfo=UTC)


def sig(ticker="AAPL", direction="long", entry=200.0, stop=None, conviction=80, ts=T_OPEN, tf="10m"):
    if stop is None:
        stop = entry - 50.0 if direction == "long" else entry + 50.0
    return TradeSignal(
        signal_type="cloud_cross_bullish" if direction == "long" else "cloud_cross_bearish",
        direction=direction, ticker=ticker, timeframe=tf, conviction=conviction,
        entry_price=entry, stop_loss=stop, target_price=None, cloud_states=[], timestamp=ts,
    )


def pos(ticker, direction="long", price=100.0, shares=10, *, underlying=None, leverage=1.0,
        instrument_type="stock", signal_id=None, sector=None, delta=None, underlying_price=None,
        multiplier=1.0):
    return Position(
        ticker=ticker, direction=direction, entry_price=price, current_price=price, shares=shares,
        stop_loss=price * (0.9 if direction == "long" else 1.1), target_price=None,
        entry_time=utc(2025, 7, 1, 14), signal_id=signal_id or f"sig-{ticker}-{direction}",
        trade_type="day", instrument_type=instrument_type, leverage=leverage,
        underlying=underlying, sector=sector, delta=delta, underlying_price=underlying_price,
        multiplier=multiplier,
    )


def acct(equity=100_000.0, bp=200_000.0, positions=(), pending=(), daily_pnl=0.0, starting=None):
    return AccountState(equity=equity, cash=equity, buying_power=bp, open_positions=list(positions),
                        daily_pnl=daily_pnl, daily_trades=0, starting_equity=starting,
                        pending_orders=list(pending))


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
    d = gate.validate(sig(), acct(equity=90_000.0, daily_pnl=-10_000.0, starting=100_000.0))
    assert code(d) == "daily_loss_limit"
    assert "-10,000.00" in d.reason and "100,000.00" in d.reason
    assert d.details["daily_loss_limit_amount"] == 10_000.0


def test_daily_loss_limit_just_inside(gate):
    d = gate.validate(sig(), acct(equity=90_000.01, daily_pnl=-9_999.99, starting=100_000.0))
    assert d.approved
    d = gate.validate(sig(), acct(equity=89_999.99, daily_pnl=-10_000.01, starting=100_000.0))
    assert code(d) == "daily_loss_limit"


def test_daily_loss_uses_starting_not_current_equity(gate):
    # equity 60,000 now, started at 70,000: limit 7,000. -6,500 passes; against current
    # equity (limit 6,000) it would have blocked.
    assert gate.validate(sig(), acct(equity=60_000.0, daily_pnl=-6_500.0, starting=70_000.0)).approved
    d = gate.validate(sig(), acct(equity=63_000.0, daily_pnl=-7_000.0, starting=70_000.0))
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
    d = gate.validate(sig(ts=ts, tf="1h"), acct())  # a swing: the EOD window does not apply
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
    d = gate.validate(sig(ts=ts, tf=tf), acct())
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
    d = gate.validate(sig(), acct(positions=others(9), pending=pend))
    assert code(d) == "max_positions" and "9 positions + 1 pending" in d.reason
    # a pending order of an already open position (partial fill) is not a second slot
    pend = [PendingOrder("T0", "long", 5, 100.0, signal_id="sig-T0-long")]
    assert gate.validate(sig(), acct(positions=others(9), pending=pend)).approved


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
    d = gate.validate(sig(), acct(positions=[pos("AAPL", "long", 200.0, 10)]))
    assert code(d) == "duplicate" and "AAPL" in d.reason


def test_duplicate_pending_order(gate):
    d = gate.validate(sig(), acct(pending=[PendingOrder("AAPL", "long", 10, 200.0, signal_id="x")]))
    assert code(d) == "duplicate"


def test_duplicate_via_leveraged_etf_on_same_underlying(gate):
    # long TQQQ (underlying QQQ) + new long QQQ stock signal
    tqqq = pos("TQQQ", "long", 80.0, 50, underlying="QQQ", leverage=3.0, instrument_type="leveraged_etf")
    d = gate.validate(sig("QQQ", entry=500.0), acct(positions=[tqqq]))
    assert code(d) == "duplicate" and "via TQQQ" in d.reason


def test_duplicate_same_traded_etf_from_other_underlying(gate):
    # long TECL held for an MSFT signal; a long AAPL signal routed to TECL again
    tecl = pos("TECL", "long", 90.0, 20, underlying="MSFT", leverage=3.0, instrument_type="leveraged_etf")
    dec = InstrumentRouter(InstrumentMode.LEVERAGED_ETF).route(sig("AAPL"))
    assert dec.ticker == "TECL"
    d = gate.validate(sig("AAPL"), acct(positions=[tecl]), decision=dec, price=90.0)
    assert code(d) == "duplicate"


def test_unrelated_holding_is_not_duplicate(gate):
    assert gate.validate(sig(), acct(positions=[pos("XOM", "long", 100.0, 10)])).approved


# ── 8 conflict ──────────────────────────────────────────────────────────────────────────────
def test_conflict_long_tqqq_vs_short_qqq_signal_routed_to_sqqq(gate):
    # long TQQQ: exposure +3 x 80 x 50 = +12,000 QQQ; new short QQQ -> buy SQQQ
    tqqq = pos("TQQQ", "long", 80.0, 50, underlying="QQQ", leverage=3.0, instrument_type="leveraged_etf")
    assert underlying_exposure(tqqq) == 12_000.0
    s = sig("QQQ", "short", entry=500.0)
    dec = InstrumentRouter(InstrumentMode.LEVERAGED_ETF).route(s)
    assert dec.ticker == "SQQQ" and dec.leverage == -3.0
    d = gate.validate(s, acct(positions=[tqqq]), decision=dec, price=20.0)
    assert code(d) == "conflict" and "+12,000.00" in d.reason


def test_conflict_long_qqq_stock_vs_long_sqqq(gate):
    # existing long SQQQ = short QQQ exposure (-3 x 20 x 100 = -6,000); new long QQQ stock
    sqqq = pos("SQQQ", "long", 20.0, 100, underlying="QQQ", leverage=-3.0, instrument_type="leveraged_etf")
    assert underlying_exposure(sqqq) == -6_000.0
    d = gate.validate(sig("QQQ", "long", entry=500.0), acct(positions=[sqqq]))
    assert code(d) == "conflict" and "-6,000.00" in d.reason
    # and the other way round: long QQQ stock held, new short QQQ -> SQQQ
    qqq = pos("QQQ", "long", 500.0, 10)
    s = sig("QQQ", "short", entry=500.0)
    dec = InstrumentRouter(InstrumentMode.LEVERAGED_ETF).route(s)
    assert code(gate.validate(s, acct(positions=[qqq]), decision=dec, price=20.0)) == "conflict"


def test_conflict_short_stock_vs_long_signal(gate):
    d = gate.validate(sig(), acct(positions=[pos("AAPL", "short", 200.0, 10)]))
    assert code(d) == "conflict"


def test_conflict_with_pending_inverse_order(gate):
    pend = PendingOrder("SQQQ", "long", 100, 20.0, signal_id="p", underlying="QQQ", leverage=-3.0,
                        instrument_type="leveraged_etf")
    d = gate.validate(sig("QQQ", "long", entry=500.0), acct(pending=[pend]))
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
    dec = InstrumentRouter(InstrumentMode.LEVERAGED_ETF).route(sig("QQQ", entry=500.0))
    d = gate.validate(sig("QQQ", entry=500.0), acct(), decision=dec, size=size(101, 50.0), price=50.0)
    assert d.approved and d.adjustments["max_shares"] == 100
    assert d.details["unit_exposure"] == 150.0
    d = gate.validate(sig("QQQ", entry=500.0), acct(), decision=dec, size=size(100, 50.0), price=50.0)
    assert d.approved and d.adjustments is None


def test_option_exposure_uses_delta(gate):
    # 0.5 delta x 100 x 200 (AAPL) = 10,000 per contract: 2 contracts = 20,000 > 15,000 -> 1
    dec = InstrumentDecision("option", "AAPL", "AAPL", 1.0, False, None)
    d = gate.validate(sig(), acct(), decision=dec, size=size(2, 300.0), price=3.0)
    assert d.approved and d.adjustments["max_shares"] == 1
    assert d.details["unit_exposure"] == 10_000.0 and d.details["unit_cost"] == 300.0
    # no size for an option -> invalid
    assert code(gate.validate(sig(), acct(), decision=dec, price=3.0)) == "invalid_signal"


# ── 10 sector exposure ──────────────────────────────────────────────────────────────────────
def test_sector_exposure_shrinks(gate):
    # MSFT long 20,000 (technology). Cap 30,000 -> room 10,000 / 200 = 50 AAPL shares
    msft = pos("MSFT", "long", 400.0, 50)
    d = gate.validate(sig(), acct(positions=[msft]), size=size(75))
    assert d.approved
    assert d.adjustments["max_shares"] == 50 and d.adjustments["capped_by"] == "sector_exposure"
    assert d.details["sector"] == "technology"
    assert d.details["sector_exposure_before"] == 20_000.0
    assert d.details["sector_exposure_after"] == 30_000.0


def test_sector_exposure_boundaries(gate):
    # 15,000 in MSFT + 75 x 200 = 30,000 = cap: no adjustment
    d = gate.validate(sig(), acct(positions=[pos("MSFT", "long", 300.0, 50)]), size=size(75))
    assert d.approved and d.adjustments is None
    # 29,800 held: room 200 = exactly one share
    d = gate.validate(sig(), acct(positions=[pos("MSFT", "long", 298.0, 100)]), size=size(75))
    assert d.approved and d.adjustments["max_shares"] == 1
    # 29,800.01 held: not one share fits
    d = gate.validate(sig(), acct(positions=[pos("MSFT", "long", 29_800.01, 1)]), size=size(75))
    assert code(d) == "sector_exposure" and "technology" in d.reason
    # 30,000 held
    d = gate.validate(sig(), acct(positions=[pos("MSFT", "long", 300.0, 100)]), size=size(75))
    assert code(d) == "sector_exposure"


def test_sector_exposure_nets_opposite_positions(gate):
    # short MSFT 20,000 + long ORCL 30,000 -> net +10,000; 75 AAPL (15,000) -> 25,000 <= 30,000
    held = [pos("MSFT", "short", 400.0, 50), pos("ORCL", "long", 300.0, 100)]
    d = gate.validate(sig(), acct(positions=held), size=size(75))
    assert d.approved and d.adjustments is None
    assert d.details["sector_exposure_before"] == 10_000.0


def test_sector_exposure_counts_leveraged_etf(gate):
    # long TECL for MSFT: 3 x 100 x 80 = 24,000 technology; room 6,000 / 200 = 30 AAPL shares
    tecl = pos("TECL", "long", 100.0, 80, underlying="MSFT", leverage=3.0, instrument_type="leveraged_etf")
    d = gate.validate(sig(), acct(positions=[tecl]), size=size(75))
    assert d.approved and d.adjustments["max_shares"] == 30


# ── 11 buying power ─────────────────────────────────────────────────────────────────────────
def test_buying_power_boundary(gate):
    # 75 x 200 x 1.001 = 15,015
    assert gate.validate(sig(), acct(bp=15_015.0), size=size(75)).adjustments is None
    d = gate.validate(sig(), acct(bp=15_014.99), size=size(75))
    assert d.approved and d.adjustments == {"max_shares": 74, "capped_by": "buying_power",
                                            "requested_shares": 75, "caps": {"buying_power": 74}}


def test_buying_power_rejects_when_no_share_fits(gate):
    # one share needs 200.20
    assert gate.validate(sig(), acct(bp=200.2), size=size(75)).adjustments["max_shares"] == 1
    d = gate.validate(sig(), acct(bp=200.19), size=size(75))
    assert code(d) == "buying_power" and "200.20" in d.reason


def test_buying_power_includes_pending_orders(gate):
    # pending 100 x 50 = 5,000 (unrelated ticker): need 15,015 + 5,000 = 20,015
    pend = [PendingOrder("XOM", "long", 100, 50.0, signal_id="p")]
    assert gate.validate(sig(), acct(bp=20_015.0, pending=pend), size=size(75)).adjustments is None
    d = gate.validate(sig(), acct(bp=20_014.99, pending=pend), size=size(75))
    assert d.adjustments["max_shares"] == 74
    assert d.details["pending_notional"] == 5_000.0
    # a broker figure that already nets pending orders is not reduced twice
    g2 = RiskGate(ExecutorConfig(), calendar=MarketCalendar(), buying_power_includes_pending=True)
    assert g2.validate(sig(), acct(bp=15_015.0, pending=pend), size=size(75)).adjustments is None


def test_caps_combine_and_name_the_tightest(gate):
    # requested 100: single-stock cap 15,000 / 200 = 75; sector room (30,000 - 20,000 MSFT) / 200
    # = 50; buying power 9,000 / 200.2 = 44.96 -> 44: buying power binds last
    msft = pos("MSFT", "long", 400.0, 50)
    d = gate.validate(sig(), acct(positions=[msft], bp=9_000.0), size=size(100))
    assert d.approved
    assert d.adjustments["max_shares"] == 44 and d.adjustments["capped_by"] == "buying_power"
    assert d.adjustments["caps"] == {"single_stock_exposure": 75, "sector_exposure": 50,
                                     "buying_power": 44}


# ── invalid signal / decision ───────────────────────────────────────────────────────────────
def test_invalid_decision(gate):
    bad = InstrumentDecision("leveraged_etf", "UNH", "UNH", 1.0, False, None, tradeable=False,
                             reason="no_instrument: no inverse")
    assert code(gate.validate(sig("UNH", "short"), acct(), decision=bad)) == "invalid_signal"
    other = InstrumentDecision("stock", "MSFT", "MSFT", 1.0, False, None)
    assert code(gate.validate(sig(), acct(), decision=other)) == "invalid_signal"
    assert code(gate.validate("AAPL long", acct())) == "invalid_signal"  # type: ignore[arg-type]


def test_etf_decision_needs_a_price(gate):
    dec = InstrumentRouter(InstrumentMode.LEVERAGED_ETF).route(sig("QQQ", entry=500.0))
    d = gate.validate(sig("QQQ", entry=500.0), acct(), decision=dec)
    assert code(d) == "invalid_signal" and "price" in d.reason
    # with a price the gate sizes it with the ETF sizer: 15,000 / (3 x 50) = 100 shares
    d = gate.validate(sig("QQQ", entry=500.0), acct(), decision=dec, price=50.0)
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
    broke = dict(equity=20_000.0, daily_pnl=-10_000.0, starting=30_000.0)
    # everything wrong at once: conviction is reported first
    d = gate.validate(sig(conviction=10, ts=closed), acct(**broke), kill_switch_active=True)
    assert code(d) == "low_conviction"
    assert code(gate.validate(sig(ts=closed), acct(**broke), kill_switch_active=True)) == "kill_switch"
    assert code(gate.validate(sig(ts=closed), acct(**broke))) == "daily_loss_limit"
    assert code(gate.validate(sig(ts=closed), acct(equity=20_000.0))) == "min_equity"
    held = others(9) + [pos("AAPL", "long", 200.0, 10)]
    assert code(gate.validate(sig(ts=closed), acct(positions=held))) == "market_closed"
    assert code(gate.validate(sig(), acct(positions=held))) == "max_positions"
    held = [pos("AAPL", "long", 200.0, 10), pos("AAPL", "short", 200.0, 5, signal_id="s2")]
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
    put = pos("QQQ250701P00500000", "long", 3.0, 2, underlying="QQQ", instrument_type="option",
              delta=-0.4, underlying_price=500.0, multiplier=100.0)
    assert underlying_exposure(put) == pytest.approx(-40_000.0)
    d = RiskGate(ExecutorConfig(), calendar=MarketCalendar()).validate(
        sig("QQQ", "long", entry=500.0), acct(positions=[put]))
    assert code(d) == "conflict"
