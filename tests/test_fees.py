"""Dated regulatory fees (adapters/fees.py): the rates in force on the fill's New York trade date,
the same cents in the backtest fee model and the Alpaca adapter. Expected values by hand.

Schedule (domain-facts §3, §8):
  SEC Section 31 on sale proceeds: $27.80/$1M until 2025-05-13, $0.00 from 2025-05-14,
                                   $20.60/$1M from 2026-04-04
  FINRA TAF (equity sales):        $0.000166/share cap $8.30 through 2025-12-31,
                                   $0.000195/share cap $9.79 from 2026-01-01
  Options (per contract):          ORF 0.02685 + OCC 0.02 (cap $55/trade) both sides,
                                   + options TAF 0.00279 and SEC on contracts x premium x 100 on sells
All sums are rounded half-up to the cent per fill.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from nautilus_trader.common.component import TestClock
from nautilus_trader.common.factories import OrderFactory
from nautilus_trader.model.enums import OrderSide
from nautilus_trader.model.identifiers import StrategyId, TraderId
from nautilus_trader.model.objects import Price, Quantity

from adapters.alpaca.execution import fill_commission
from adapters.alpaca.parsing import parse_equity, parse_option_contract
from backtests.fee_model import USEquityFeeModel
from adapters.fees import (
    FEE_SCHEDULE,
    FeeRates,
    FeeSchedule,
    equity_fees,
    fill_fees,
    ibkr_option_commission,
    option_fees,
    option_fees_alpaca,
    option_fees_ibkr,
    regulatory_fees,
    round_trip_fees,
    trade_date_of,
)

ROOT = Path(__file__).resolve().parent.parent


def ns(dt: datetime) -> int:
    return int(dt.timestamp()) * 1_000_000_000


# -- the schedule ---------------------------------------------------------------------------------


def test_schedule_entries_by_date():
    r = FEE_SCHEDULE.rates_on
    assert r(date(2025, 5, 13)).sec_per_million == Decimal("27.80")
    assert r(date(2025, 5, 14)).sec_per_million == Decimal("0.00")
    assert r(date(2026, 4, 3)).sec_per_million == Decimal("0.00")
    assert r(date(2026, 4, 4)).sec_per_million == Decimal("20.60")
    last_2025, first_2026 = r(date(2025, 12, 31)), r(date(2026, 1, 1))
    assert (last_2025.taf_per_share, last_2025.taf_cap) == (Decimal("0.000166"), Decimal("8.30"))
    assert (first_2026.taf_per_share, first_2026.taf_cap) == (Decimal("0.000195"), Decimal("9.79"))
    # before the first entry: the first entry's rates; the latest entry is fixed, not "today"
    assert r(date(2023, 1, 3)) == FEE_SCHEDULE.entries[0]
    assert FEE_SCHEDULE.latest.effective == date(2026, 4, 4)
    assert r(date(2030, 1, 2)) == FEE_SCHEDULE.latest


def test_custom_schedule_and_validation():
    base = FEE_SCHEDULE.entries[0]
    s = FeeSchedule([base, FeeRates(**{**base.__dict__, "effective": date(2030, 1, 1),
                                       "sec_per_million": Decimal("10")})])
    assert s.rates_on(date(2030, 1, 1)).sec_per_million == Decimal("10")
    # $100,000 sold on 2030-01-02 under this schedule: SEC 1.00 + TAF 1000 x 0.000166 = 0.166 -> 1.17
    assert equity_fees("sell", 1000, 100.0, date(2030, 1, 2), schedule=s) == 1.17
    with pytest.raises(ValueError):
        FeeSchedule([])
    with pytest.raises(ValueError):
        FeeSchedule([base, base])


def test_trade_date_is_the_new_york_date_of_the_fill():
    # 2025-05-14 03:30 UTC is still 2025-05-13 (23:30 EDT) in New York: the old SEC rate applies
    late = datetime(2025, 5, 14, 3, 30, tzinfo=timezone.utc)
    assert trade_date_of(late) == date(2025, 5, 13)
    assert trade_date_of(ns(late)) == date(2025, 5, 13)
    assert trade_date_of(datetime(2025, 5, 14, 4, 0, tzinfo=timezone.utc)) == date(2025, 5, 14)  # 00:00 EDT
    assert trade_date_of(date(2025, 5, 14)) == date(2025, 5, 14)
    # SEC 100,000 x 27.80e-6 = 2.78 + TAF 0.166 = 2.946 -> 2.95
    assert equity_fees("sell", 1000, 100.0, ns(late)) == 2.95
    with pytest.raises(ValueError, match="timezone-aware"):
        trade_date_of(datetime(2025, 5, 14, 12, 0))
    with pytest.raises(TypeError):
        trade_date_of("2025-05-14")


# -- equities -------------------------------------------------------------------------------------


def test_sec_fee_by_trade_date_on_a_100k_sale():
    # 1,000 shares at $100.00 = $100,000 of proceeds
    assert equity_fees("sell", 1000, 100.0, date(2025, 5, 13)) == 2.95  # 2.78 + TAF 1000 x 0.000166 = 0.166 -> 2.946
    assert equity_fees("sell", 1000, 100.0, date(2025, 5, 14)) == 0.17  # 0.00 + 0.166
    assert equity_fees("sell", 1000, 100.0, date(2026, 4, 3)) == 0.20   # 0.00 + TAF 1000 x 0.000195 = 0.195 -> 0.20
    assert equity_fees("sell", 1000, 100.0, date(2026, 4, 4)) == 2.26   # 2.06 + 0.195 = 2.255 -> 2.26 (half up)
    # buys pay nothing at Alpaca (no commission, the SEC fee and the TAF are on sales)
    assert equity_fees("buy", 1000, 100.0, date(2025, 5, 13)) == 0.0
    # an optional per-share commission is charged on both sides: 1000 x 0.005 = 5.00 (+ 2.946)
    assert equity_fees("buy", 1000, 100.0, date(2025, 5, 13), commission_per_share=0.005) == 5.00
    assert equity_fees("sell", 1000, 100.0, date(2025, 5, 13), commission_per_share=0.005) == 7.95


def test_taf_cap_2025_vs_2026():
    # 100,000 shares at $1.00 (SEC $0 on both dates, so only the TAF remains)
    assert equity_fees("sell", 100_000, 1.0, date(2025, 12, 31)) == 8.30  # 100,000 x 0.000166 = 16.60 -> cap 8.30
    assert equity_fees("sell", 100_000, 1.0, date(2026, 1, 2)) == 9.79    # 100,000 x 0.000195 = 19.50 -> cap 9.79
    # under the cap: 40,000 x 0.000195 = 7.80
    assert equity_fees("sell", 40_000, 1.0, date(2026, 1, 2)) == 7.80
    # with the 2026 SEC rate: 100,000 x 20.60e-6 = 2.06 + 9.79 = 11.85
    assert equity_fees("sell", 100_000, 1.0, date(2026, 4, 6)) == 11.85


def test_legacy_regulatory_fees_uses_the_date_or_the_latest_entry():
    assert regulatory_fees("sell", 1000, 100.0, trade_date=date(2025, 5, 13)) == 2.95
    assert regulatory_fees("sell", 1000, 100.0, trade_date=date(2025, 5, 14)) == 0.17
    # no trade date: the latest schedule entry (2026-04-04), never the wall clock
    assert regulatory_fees("sell", 1000, 100.0) == 2.26
    # explicit rates still override: 100,000 x 27.80e-6 = 2.78 + 1000 x 0.000166 = 0.166 -> 2.95
    assert regulatory_fees("sell", 1000, 100.0, sec_rate=27.80e-6, taf_per_share=0.000166) == 2.95
    with pytest.raises(ValueError, match="side"):
        equity_fees("short", 1, 1.0, date(2026, 1, 2))


# -- options --------------------------------------------------------------------------------------


def test_option_round_trip_10_contracts_at_2_dollars_in_2026():
    d = date(2026, 5, 1)  # SEC $20.60/$1M
    # buy:  ORF 10 x 0.02685 = 0.2685 + OCC 10 x 0.02 = 0.20 -> 0.4685 -> 0.47
    assert option_fees_alpaca("buy", 10, 2.00, d) == 0.47
    # sell: 0.2685 + 0.20 + options TAF 10 x 0.00279 = 0.0279 + SEC 10 x 2.00 x 100 x 20.60e-6 = 0.0412
    #       = 0.5376 -> 0.54
    assert option_fees_alpaca("sell", 10, 2.00, d) == 0.54
    # round trip 0.47 + 0.54 = 1.01; the options core gives the same per order
    assert option_fees("alpaca", 10, "buy", 2.00, d).total == 0.47
    assert option_fees("alpaca", 10, "sell", 2.00, d).total == 0.54
    # IBKR: 10 x 0.65 = 6.50 commission + the same pass-throughs
    assert option_fees_ibkr("buy", 10, 2.00, d) == 6.97
    assert option_fees_ibkr("sell", 10, 2.00, d) == 7.04
    f = option_fees("ibkr", 10, "sell", 2.00, d)
    assert (f.commission, f.regulatory, f.total) == (6.50, 0.54, 7.04)
    # the SEC part follows the date: 2026-01-15 (SEC $0): sell 0.4964 -> 0.50
    assert option_fees_alpaca("sell", 10, 2.00, date(2026, 1, 15)) == 0.50


def test_option_occ_cap_and_ibkr_minimum():
    # 3,000 contracts bought: ORF 3000 x 0.02685 = 80.55 + OCC 3000 x 0.02 = 60.00 -> cap 55.00 = 135.55
    assert option_fees_alpaca("buy", 3000, 1.00, date(2026, 5, 1)) == 135.55
    assert ibkr_option_commission(1, 2.00) == 1.00  # 0.65 -> $1 minimum per order
    assert ibkr_option_commission(10, 0.07) == 5.00  # 0.50 for premiums $0.05-$0.10
    assert ibkr_option_commission(0, 2.00) == 0.0
    with pytest.raises(ValueError, match="whole"):
        option_fees_alpaca("buy", 1.5, 1.00, date(2026, 5, 1))


def test_options_core_delegates_to_the_schedule():
    for d in (date(2025, 5, 13), date(2025, 6, 16), date(2026, 5, 1)):
        for side in ("buy", "sell"):
            for n, prem in ((1, 0.48), (2, 5.50), (10, 2.00), (37, 0.03)):
                assert option_fees("alpaca", n, side, prem, d).total == option_fees_alpaca(side, n, prem, d)
                assert option_fees("ibkr", n, side, prem, d).total == option_fees_ibkr(side, n, prem, d)
    # no trade date: the latest entry; 10 at $2.00 -> 0.47 + 0.54
    assert round_trip_fees("alpaca", 10, 2.00, 2.00) == 1.01


def test_fill_fees_dispatches_on_the_instrument():
    d = date(2026, 5, 1)
    assert fill_fees("sell", 10, 2.00, d, option=True) == 0.54
    assert fill_fees("sell", 10, 2.00, d, option=True, option_broker="ib") == 7.04
    # equity: SEC 20 x 20.60e-6 = 0.000412 + TAF 10 x 0.000195 = 0.00195 -> 0.00
    assert fill_fees("sell", 10, 2.00, d) == 0.00
    with pytest.raises(ValueError, match="broker"):
        fill_fees("sell", 10, 2.00, d, option=True, option_broker="schwab")


def test_fee_module_does_not_import_nautilus():
    code = ("import sys, adapters.fees as f, strategies.trade_executor.options_pricing; "
            "f.option_fees('alpaca', 1, 'sell', 1.0, 0); "
            "bad = [m for m in sys.modules if m.startswith('nautilus_trader')]; assert not bad, bad")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=str(ROOT))
    assert r.returncode == 0, r.stderr


# -- backtest fee model vs the Alpaca adapter -----------------------------------------------------

EQUITY = parse_equity({"symbol": "AAPL", "id": "a1", "name": "Apple", "tradable": True}, 0)
OPTION = parse_option_contract({"symbol": "QQQ260501C00480000", "type": "call", "size": "100",
                                "underlying_symbol": "QQQ", "strike_price": "480",
                                "expiration_date": "2026-05-01", "id": "c1", "root_symbol": "QQQ"}, 0)


def _order(instrument, side, qty, ts: int):
    clock = TestClock()
    clock.set_time(ts)
    factory = OrderFactory(trader_id=TraderId("TESTER-001"), strategy_id=StrategyId("S-001"), clock=clock)
    return factory.market(instrument.id, side, Quantity.from_int(qty))


FILLS = [
    # (instrument, side, qty, price, fill time)
    (EQUITY, OrderSide.SELL, 1000, "100.00", datetime(2025, 5, 13, 15, 0, tzinfo=timezone.utc)),
    (EQUITY, OrderSide.SELL, 1000, "100.00", datetime(2025, 5, 14, 15, 0, tzinfo=timezone.utc)),
    (EQUITY, OrderSide.SELL, 1000, "100.00", datetime(2026, 4, 6, 15, 0, tzinfo=timezone.utc)),
    (EQUITY, OrderSide.SELL, 100_000, "1.00", datetime(2026, 1, 2, 15, 0, tzinfo=timezone.utc)),
    (EQUITY, OrderSide.BUY, 150, "100.01", datetime(2025, 6, 16, 14, 0, tzinfo=timezone.utc)),
    (OPTION, OrderSide.BUY, 10, "2.00", datetime(2026, 5, 1, 15, 0, tzinfo=timezone.utc)),
    (OPTION, OrderSide.SELL, 10, "2.00", datetime(2026, 5, 1, 15, 0, tzinfo=timezone.utc)),
    (OPTION, OrderSide.SELL, 2, "5.50", datetime(2026, 3, 2, 15, 0, tzinfo=timezone.utc)),
]
EXPECTED = ["2.95", "0.17", "2.26", "9.79", "0.00", "0.47", "0.54", "0.10"]


@pytest.mark.parametrize(("fill", "expected"), list(zip(FILLS, EXPECTED, strict=True)))
def test_backtest_fee_model_and_adapter_charge_the_same_cents(fill, expected):
    inst, side, qty, px, when = fill
    t = ns(when)
    clock = TestClock()
    clock.set_time(t)
    model = USEquityFeeModel(clock=clock)
    order = _order(inst, side, qty, t)
    backtest = model.get_commission(order, Quantity.from_int(qty), Price.from_str(px), inst)
    live = fill_commission(side, Decimal(qty), Decimal(px), t, inst, inst.id)
    assert backtest.as_decimal() == live == Decimal(expected)
    # an option whose instrument is not loaded in the adapter is still recognised by its OCC symbol
    if inst is OPTION:
        assert fill_commission(side, Decimal(qty), Decimal(px), t, None, inst.id) == Decimal(expected)


def test_fee_model_reads_the_trade_date_from_the_clock():
    # the order was created on 2025-05-13; the fill happens when the clock says
    order = _order(EQUITY, OrderSide.SELL, 1000, ns(datetime(2025, 5, 13, 15, 0, tzinfo=timezone.utc)))
    clock = TestClock()
    model = USEquityFeeModel(clock=clock)
    qty, px = Quantity.from_int(1000), Price.from_str("100.00")
    clock.set_time(ns(datetime(2025, 5, 13, 19, 59, tzinfo=timezone.utc)))
    assert model.get_commission(order, qty, px, EQUITY).as_decimal() == Decimal("2.95")  # SEC 2.78 + TAF 0.166
    clock.set_time(ns(datetime(2025, 5, 14, 13, 30, tzinfo=timezone.utc)))
    assert model.get_commission(order, qty, px, EQUITY).as_decimal() == Decimal("0.17")  # SEC 0 + TAF 0.166
    clock.set_time(ns(datetime(2026, 4, 6, 13, 30, tzinfo=timezone.utc)))
    assert model.get_commission(order, qty, px, EQUITY).as_decimal() == Decimal("2.26")  # 2.06 + 0.195
    # without a clock: the order's last event time (here its creation on 2025-05-13)
    assert USEquityFeeModel().get_commission(order, qty, px, EQUITY).as_decimal() == Decimal("2.95")


def test_fee_model_option_brokers():
    t = ns(datetime(2026, 5, 1, 15, 0, tzinfo=timezone.utc))
    clock = TestClock()
    clock.set_time(t)
    order = _order(OPTION, OrderSide.SELL, 10, t)
    qty, px = Quantity.from_int(10), Price.from_str("2.00")
    assert USEquityFeeModel(clock=clock).get_commission(order, qty, px, OPTION).as_decimal() == Decimal("0.54")
    # IBKR: 10 x 0.65 = 6.50 + 0.54
    ib = USEquityFeeModel(option_broker="ibkr", clock=clock)
    assert ib.get_commission(order, qty, px, OPTION).as_decimal() == Decimal("7.04")
    assert USEquityFeeModel(option_broker="none", clock=clock).option_broker == "alpaca"
    with pytest.raises(ValueError, match="broker"):
        USEquityFeeModel(option_broker="schwab")


def test_option_order_fees_split_commission_and_regulatory():
    # Alpaca: $0 commission; regulatory per contract (adapters/fees.py schedule): ORF 0.02685 +
    # OCC 0.02 on both sides, + options TAF 0.00279 (+ SEC on proceeds when the premium is known)
    # on sells; rounded half-up per order. No trade date = the latest schedule entry (2026-04-04).
    buy = option_fees("alpaca", 1, "buy")  # 0.02685 + 0.02 = 0.04685 -> 0.05
    assert (buy.commission, buy.regulatory, buy.total) == (0.0, 0.05, 0.05)
    assert option_fees("alpaca", 1, "sell").total == 0.05  # 0.04685 + 0.00279 = 0.04964 -> 0.05
    assert round_trip_fees("alpaca", 1) == 0.10
    assert round_trip_fees("alpaca", 10) == 0.97  # buy 0.4685 -> 0.47 + sell 0.4964 -> 0.50
    # SEC on the sale proceeds follows the trade date: 10 x 2.00 x 100 = $2,000 sold
    assert option_fees("alpaca", 10, "sell", 2.00, date(2025, 5, 13)).total == 0.55  # 0.4964 + 2000 x 27.80e-6 = 0.5520
    assert option_fees("alpaca", 10, "sell", 2.00, date(2025, 5, 14)).total == 0.50  # 0.4964 + 0
    assert option_fees("alpaca", 10, "sell", 2.00, date(2026, 4, 4)).total == 0.54  # 0.4964 + 0.0412 = 0.5376
    # IBKR: $0.65/contract, $1 minimum per order, cheaper for small premiums, + the same regulatory
    assert option_fees("ibkr", 1, "buy", 2.00).commission == 1.00
    assert option_fees("ibkr", 10, "buy", 2.00).commission == 6.50
    assert option_fees("ibkr", 10, "buy", 2.00).total == 6.97  # 6.50 + 0.47
    assert option_fees("ibkr", 10, "buy", 0.07).commission == 5.00
    assert option_fees("ibkr", 10, "buy", 0.03).commission == 2.50
    assert option_fees("ib", 2, "sell", 0.03).commission == 1.00
    # 6.50 + 0.47 + 6.50 + (0.4964 + SEC 10 x 1.00 x 100 x 20.60e-6 = 0.0206 -> 0.52) = 13.99
    assert round_trip_fees("ibkr", 10, 2.00, 1.00) == 13.99
    assert option_fees("ibkr", 0, "buy").total == 0.0
    with pytest.raises(ValueError, match="contracts"):
        option_fees("alpaca", 1.5, "buy")
    with pytest.raises(ValueError, match="side"):
        option_fees("alpaca", 1, "hold")


# -- sizing and settlement -------------------------------------------------------------------------
