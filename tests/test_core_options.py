"""Options core: Black–Scholes in trading minutes, contract choice, broker cut-offs, spreads,
fills, fees, sizing and settlement. Expected values are computed by hand in the comments."""

from __future__ import annotations

import math
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

import pytest

from strategies.trade_executor.options_pricing import (
    MINUTES_PER_YEAR,
    ContractSize,
    OptionsInputError,
    atm_strike,
    bs_delta,
    bs_price,
    contracts_for_risk,
    fill_price,
    liquidation_time,
    minutes_to_session_close,
    new_order_cutoff,
    occ_symbol,
    realized_vol,
    select_contract,
    settle_at_expiry,
    spread_for,
    trading_minutes_to_expiry,
    years_from_minutes,
)

ET = ZoneInfo("America/New_York")


def et(*a) -> datetime:
    return datetime(*a, tzinfo=ET)


# -- Black–Scholes ---------------------------------------------------------------------------------


def test_domain_example_spy_atm_0dte():
    # 2025-06-02 is a regular session: 390 minutes left at 09:30 ET, 30 at 15:30 ET
    m_open = trading_minutes_to_expiry(et(2025, 6, 2, 9, 30), date(2025, 6, 2))
    m_late = trading_minutes_to_expiry(et(2025, 6, 2, 15, 30), date(2025, 6, 2))
    assert (m_open, m_late) == (390.0, 30.0)
    assert years_from_minutes(390) == pytest.approx(1 / 252)
    c_open = bs_price(600, 600, years_from_minutes(m_open), 0.15)
    c_late = bs_price(600, 600, years_from_minutes(m_late), 0.15)
    # ATM, r = 0: C = S·(2·N(σ√T/2) − 1); σ√T = 0.15/√252 = 0.009449 -> 2.2618
    assert c_open == pytest.approx(2.2618, abs=1e-4)
    assert abs(c_open - 2.30) < 0.05  # the facts' "≈ $2.30" is this value rounded
    # σ√T = 0.009449·√(30/390) = 0.0026207 -> 600·0.39894·0.0026207 = 0.6273
    assert abs(c_late - 0.63) <= 0.02
    assert c_late == pytest.approx(0.6273, abs=1e-4)
    # ATM with r = 0: put = call
    assert bs_price(600, 600, 1 / 252, 0.15, kind="put") == pytest.approx(c_open)


def test_textbook_values_and_parity():
    # Hull's classic: S=K=100, T=1, σ=20 %, r=5 %: call 10.4506, put 5.5735, call delta 0.6368
    assert bs_price(100, 100, 1.0, 0.2, 0.05) == pytest.approx(10.4506, abs=1e-4)
    assert bs_price(100, 100, 1.0, 0.2, 0.05, kind="put") == pytest.approx(5.5735, abs=1e-4)
    assert bs_delta(100, 100, 1.0, 0.2, 0.05) == pytest.approx(0.6368, abs=1e-4)
    assert bs_delta(100, 100, 1.0, 0.2, 0.05, kind="put") == pytest.approx(0.6368 - 1, abs=1e-4)
    s, k, t, v, r = 600, 605, 5 / 252, 0.2, 0.05
    parity = bs_price(s, k, t, v, r) - bs_price(s, k, t, v, r, kind="put")
    assert parity == pytest.approx(s - k * math.exp(-r * t), abs=1e-9)


def test_expiry_gives_intrinsic_value_and_step_delta():
    assert bs_price(610, 600, 0.0, 0.15) == 10.0
    assert bs_price(590, 600, 0.0, 0.15) == 0.0
    assert bs_price(590, 600, 0.0, 0.15, kind="put") == 10.0
    assert bs_price(610, 600, 1 / 252, 0.0) == pytest.approx(10.0)
    assert bs_delta(610, 600, 0.0, 0.15) == 1.0
    assert bs_delta(590, 600, 0.0, 0.15) == 0.0
    assert bs_delta(600, 600, 0.0, 0.15) == 0.5
    assert bs_delta(590, 600, 0.0, 0.15, kind="put") == -1.0


# -- trading time ----------------------------------------------------------------------------------


def test_trading_minutes_across_sessions_and_early_closes():
    # 1DTE from the open: two full sessions
    assert trading_minutes_to_expiry(et(2025, 6, 2, 9, 30), date(2025, 6, 3)) == 780.0
    # pre-market counts the whole session; after the close counts nothing of today
    assert trading_minutes_to_expiry(et(2025, 6, 2, 8, 0), date(2025, 6, 2)) == 390.0
    assert trading_minutes_to_expiry(et(2025, 6, 2, 16, 30), date(2025, 6, 2)) == 0.0
    assert trading_minutes_to_expiry(et(2025, 6, 2, 16, 30), date(2025, 6, 3)) == 390.0
    # Friday 15:00 -> Monday: 60 + 390 (the weekend is not time)
    assert trading_minutes_to_expiry(et(2025, 6, 6, 15, 0), date(2025, 6, 9)) == 450.0
    # 2025-07-03 closes at 13:00: 180 minutes from 10:00; July 4 is a holiday
    assert trading_minutes_to_expiry(et(2025, 7, 3, 10, 0), date(2025, 7, 3)) == 180.0
    assert trading_minutes_to_expiry(et(2025, 7, 3, 12, 0), date(2025, 7, 7)) == 450.0
    # seconds count
    assert trading_minutes_to_expiry(et(2025, 6, 2, 15, 59, 30), date(2025, 6, 2)) == 0.5
    # past expiry
    assert trading_minutes_to_expiry(et(2025, 6, 4, 10, 0), date(2025, 6, 3)) == 0.0
    assert minutes_to_session_close(et(2025, 11, 28, 12, 0)) == 60.0  # 13:00 early close
    assert minutes_to_session_close(et(2025, 11, 29, 12, 0)) == 0.0  # Saturday


def test_trading_minutes_bad_inputs():
    with pytest.raises(OptionsInputError, match="expiry_date"):
        trading_minutes_to_expiry(et(2025, 7, 3, 10, 0), date(2025, 7, 4))  # holiday
    with pytest.raises(OptionsInputError, match="now_utc"):
        trading_minutes_to_expiry(datetime(2025, 6, 2, 14, 0), date(2025, 6, 2))  # naive


def test_realized_vol():
    # log returns alternate ±0.002 -> mean square 4e-6 -> σ = 0.002·√98,280 = 0.62700
    closes = [100 * math.exp(0.001 * (-1) ** i) for i in range(101)]
    assert realized_vol(closes, 100) == pytest.approx(0.002 * math.sqrt(MINUTES_PER_YEAR))
    assert realized_vol(closes, 100) == pytest.approx(0.62700, abs=1e-5)
    assert realized_vol(closes, 100, scale=1.2) == pytest.approx(1.2 * 0.62700, abs=1e-5)
    # demeaned, ddof 1: 100 returns of mean 0 -> variance 4e-6 · 100/99
    assert realized_vol(closes, 100, demean=True) == pytest.approx(0.62700 * math.sqrt(100 / 99),
                                                                     abs=1e-5)
    # only the last `window` returns are used; daily bars via bars_per_year
    assert realized_vol([50.0] * 10 + closes[-3:], 2, bars_per_year=252) == pytest.approx(
        0.002 * math.sqrt(252)
    )
    with pytest.raises(OptionsInputError, match="closes"):
        realized_vol(closes[:10], 100)
    with pytest.raises(OptionsInputError, match="closes"):
        realized_vol([100.0, -1.0, 100.0], 2)
    with pytest.raises(OptionsInputError, match="window"):
        realized_vol(closes, 1)


# -- broker cut-offs -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "broker, underlying, day, cutoff, liquidation",
    [
        ("alpaca", "SPY", date(2025, 6, 2), time(15, 30), time(15, 45)),
        ("alpaca", "QQQ", date(2025, 6, 2), time(15, 30), time(15, 45)),
        ("alpaca", "AAPL", date(2025, 6, 2), time(15, 15), time(15, 30)),
        ("alpaca", "SPY", date(2025, 7, 3), time(12, 30), time(12, 45)),  # 13:00 close
        ("alpaca", "AAPL", date(2025, 11, 28), time(12, 15), time(12, 30)),
        ("ibkr", "SPY", date(2025, 6, 2), time(15, 45), time(15, 50)),
        ("ibkr", "AAPL", date(2025, 11, 28), time(12, 45), time(12, 50)),
    ],
)
def test_broker_cutoffs(broker, underlying, day, cutoff, liquidation):
    c = new_order_cutoff(broker, underlying, day)
    liq = liquidation_time(broker, underlying, day)
    assert c.tzinfo is not None and liq.tzinfo is not None
    assert c.astimezone(ET).time() == cutoff and c.astimezone(ET).date() == day
    assert liq.astimezone(ET).time() == liquidation


def test_cutoff_bad_inputs():
    with pytest.raises(OptionsInputError, match="broker"):
        new_order_cutoff("robinhood", "SPY", date(2025, 6, 2))
    with pytest.raises(OptionsInputError, match="session_date"):
        liquidation_time("alpaca", "SPY", date(2025, 7, 4))


# -- contract choice -------------------------------------------------------------------------------


def test_select_0dte_atm_call_and_occ_symbol():
    c = select_contract("SPY", 600.2, "long", et(2025, 9, 2, 10, 0))
    assert c.occ_symbol == "SPY250902C00600000"
    assert (c.underlying, c.expiry, c.strike, c.kind, c.multiplier) == (
        "SPY", date(2025, 9, 2), 600.0, "call", 100
    )
    p = select_contract("spy", 600.2, "short", et(2025, 9, 2, 10, 0))
    assert p.occ_symbol == "SPY250902P00600000"


def test_select_1dte_after_the_cutoff():
    # Alpaca stops new SPY 0DTE orders at 15:30 ET
    assert select_contract("SPY", 600, "long", et(2025, 6, 2, 15, 29)).expiry == date(2025, 6, 2)
    c = select_contract("SPY", 600, "long", et(2025, 6, 2, 15, 30))
    assert c.expiry == date(2025, 6, 3) and c.occ_symbol == "SPY250603C00600000"
    # IBKR (our 15:45) still allows 0DTE at 15:30
    assert select_contract("SPY", 600, "long", et(2025, 6, 2, 15, 30),
                           broker="ibkr").expiry == date(2025, 6, 2)
    # an explicit cut-off
    assert select_contract("SPY", 600, "long", et(2025, 6, 2, 15, 10),
                           cutoff_et="15:00").expiry == date(2025, 6, 3)
    # Friday after the cut-off -> Tuesday (Labor Day Monday 2025-09-01)
    assert select_contract("SPY", 640, "long", et(2025, 8, 29, 15, 45)).expiry == date(2025, 9, 2)
    # early close: 12:30 cut-off on 2025-07-03, next session 07-07; "15:00" moves to 12:00
    assert select_contract("QQQ", 540, "short", et(2025, 7, 3, 12, 29)).expiry == date(2025, 7, 3)
    assert select_contract("QQQ", 540, "short", et(2025, 7, 3, 12, 30)).expiry == date(2025, 7, 7)
    assert select_contract("QQQ", 540, "short", et(2025, 7, 3, 12, 5),
                           cutoff_et="15:00").expiry == date(2025, 7, 7)
    # weekend and after-hours pick the next session
    assert select_contract("SPY", 600, "long", et(2025, 6, 7, 11, 0)).expiry == date(2025, 6, 9)
    assert select_contract("SPY", 600, "long", et(2025, 6, 2, 20, 0)).expiry == date(2025, 6, 3)


def test_weekly_expiries_for_single_names():
    # AAPL lists weeklies (Friday): Monday 10:00 -> Friday; with daily_expiries the 15:15 rule
    assert select_contract("AAPL", 200.2, "long", et(2025, 6, 2, 10, 0)).expiry == date(2025, 6, 6)
    friday_late = et(2025, 6, 6, 15, 16)
    assert select_contract("AAPL", 200.2, "long", friday_late).expiry == date(2025, 6, 13)
    assert select_contract("AAPL", 200.2, "long", et(2025, 6, 2, 15, 16),
                           daily_expiries=True).expiry == date(2025, 6, 3)
    # Good Friday 2025-04-18 is a holiday: that week's expiry is Thursday 04-17
    holy_week = et(2025, 4, 14, 10, 0)
    assert select_contract("AAPL", 200.0, "long", holy_week).expiry == date(2025, 4, 17)


def test_atm_tie_rule():
    assert atm_strike(600.49, 1.0, "call") == 600.0
    assert atm_strike(600.51, 1.0, "put") == 601.0
    assert atm_strike(600.5, 1.0, "call") == 601.0  # tie -> OTM call (higher)
    assert atm_strike(600.5, 1.0, "put") == 600.0  # tie -> OTM put (lower)
    assert atm_strike(602.4, 5.0, "call") == 600.0
    assert atm_strike(602.5, 5.0, "call") == 605.0
    assert atm_strike(602.5, 5.0, "put") == 600.0
    assert atm_strike(100.26, 0.5, "call") == 100.5
    assert select_contract("SPY", 600.5, "long", et(2025, 6, 2, 10, 0)).strike == 601.0
    assert select_contract("SPY", 600.5, "short", et(2025, 6, 2, 10, 0)).strike == 600.0


def test_delta_strike_rule():
    # 09:30, 390 min, σ√T = 0.009449; call delta N(d1), d1 = ln(S/K)/σ√T + σ√T/2:
    # K=602: 0.364, K=603: 0.300, K=604: 0.242 -> 603. Puts: K=598: 0.360, 597: 0.296 -> 597.
    now = et(2025, 6, 2, 9, 30)
    c = select_contract("SPY", 600, "long", now, strike_rule="delta", target_delta=0.30, vol=0.15)
    assert (c.strike, c.kind, c.occ_symbol) == (603.0, "call", "SPY250602C00603000")
    p = select_contract("SPY", 600, "short", now, strike_rule="delta", target_delta=0.30, vol=0.15)
    assert (p.strike, p.kind) == (597.0, "put")
    # 0.5 delta: K=600 has 0.502, K=601 0.432 -> 600
    assert select_contract("SPY", 600, "long", now, strike_rule="delta", vol=0.15).strike == 600.0
    with pytest.raises(OptionsInputError, match="vol"):
        select_contract("SPY", 600, "long", now, strike_rule="delta")
    with pytest.raises(OptionsInputError, match="target_delta"):
        select_contract("SPY", 600, "long", now, strike_rule="delta", vol=0.15, target_delta=1.2)


def test_select_contract_bad_inputs():
    now = et(2025, 6, 2, 10, 0)
    for kwargs, field in [
        ({"direction": "flat"}, "direction"),
        ({"spot": 0.0}, "spot"),
        ({"spot": float("nan")}, "spot"),
        ({"now_utc": datetime(2025, 6, 2, 14, 0)}, "now_utc"),
        ({"strike_rule": "otm"}, "strike_rule"),
        ({"strike_increment": 0}, "strike_increment"),
        ({"cutoff_et": "3pm"}, "cutoff_et"),
        ({"broker": "etrade"}, "broker"),
    ]:
        args = {"underlying": "SPY", "spot": 600.0, "direction": "long", "now_utc": now, **kwargs}
        with pytest.raises(OptionsInputError) as exc:
            select_contract(**args)
        assert exc.value.field == field, kwargs
        assert str(exc.value).startswith(field)


def test_occ_symbol_format():
    assert occ_symbol("SPY", date(2025, 9, 2), "call", 600) == "SPY250902C00600000"
    assert occ_symbol("QQQ", date(2025, 12, 19), "put", 512.5) == "QQQ251219P00512500"
    assert occ_symbol("SPXW", date(2026, 1, 2), "call", 6000) == "SPXW260102C06000000"


# -- spreads, fills, fees --------------------------------------------------------------------------


def test_spread_widens_into_the_close():
    # pct = 1 % + 5 % · max(0, 1 − m/30), nearest cent, at least one cent
    assert spread_for(1.00, 120) == 0.01
    assert spread_for(1.00, 30) == 0.01
    assert spread_for(1.00, 15) == 0.04  # 3.5 % -> 0.035 -> 0.04 (half up)
    assert spread_for(1.00, 6) == 0.05  # 5 %
    assert spread_for(1.00, 0) == 0.06  # 6 %
    assert spread_for(2.30, 120) == 0.02  # 0.023
    assert spread_for(5.00, 60) == 0.05
    assert spread_for(5.00, 0) == 0.30
    assert spread_for(0.10, 200) == 0.01  # minimum tick
    assert spread_for(0.0, 200) == 0.01
    widths = [spread_for(2.0, m) for m in (60, 30, 20, 10, 5, 0)]
    assert widths == sorted(widths) and widths[-1] > 5 * widths[0]
    with pytest.raises(OptionsInputError, match="premium"):
        spread_for(-1.0, 10)
    with pytest.raises(OptionsInputError, match="minutes_to_close"):
        spread_for(1.0, -5)


def test_fill_price_crosses_part_of_the_spread():
    assert fill_price(2.00, "buy", 0.04) == 2.02  # default 0.5: the ask
    assert fill_price(2.00, "sell", 0.04) == 1.98  # the bid
    assert fill_price(2.00, "buy", 0.04, cross_fraction=0.25) == 2.01
    assert fill_price(2.00, "sell", 0.04, cross_fraction=0.25) == 1.99
    assert fill_price(2.00, "buy", 0.04, cross_fraction=0.0) == 2.00
    assert fill_price(2.00, "buy", 0.04, cross_fraction=1.0) == 2.04
    # rounded to the cent against the trader
    assert fill_price(2.003, "buy", 0.02) == 2.02
    assert fill_price(2.003, "sell", 0.02) == 1.99
    assert fill_price(0.005, "sell", 0.02) == 0.0  # never negative
    with pytest.raises(OptionsInputError, match="side"):
        fill_price(2.0, "short", 0.04)
    with pytest.raises(OptionsInputError, match="cross_fraction"):
        fill_price(2.0, "buy", 0.04, cross_fraction=1.5)


def test_contracts_for_risk():
    assert contracts_for_risk(1000, 2.30) == ContractSize(4, 920.0)
    assert contracts_for_risk(230, 2.30) == ContractSize(1, 230.0)  # exactly one
    assert contracts_for_risk(100, 2.30) == ContractSize(0, 0.0)  # one contract exceeds budget
    assert contracts_for_risk(1000, 0.63, multiplier=10) == ContractSize(158, 995.4)
    with pytest.raises(OptionsInputError, match="premium"):
        contracts_for_risk(1000, 0)
    with pytest.raises(OptionsInputError, match="risk_budget_dollars"):
        contracts_for_risk(-5, 2.0)


def test_settle_at_expiry():
    assert settle_at_expiry("call", 600, 598.50) == 0.0  # expires worthless
    assert settle_at_expiry("put", 600, 603.25) == 0.0
    assert settle_at_expiry("call", 600, 603.25) == 3.25  # in the money: $325 per contract
    assert settle_at_expiry("put", 600, 598.50) == 1.50
    assert settle_at_expiry("call", 600, 600.0) == 0.0
    with pytest.raises(OptionsInputError, match="kind"):
        settle_at_expiry("straddle", 600, 600)


@pytest.mark.parametrize(
    "args, field",
    [
        ((-600, 600, 0.01, 0.15), "spot"),
        ((600, 0, 0.01, 0.15), "strike"),
        ((600, 600, -0.01, 0.15), "t_years"),
        ((600, 600, 0.01, float("nan")), "vol"),
        ((600, 600, 0.01, 0.15, float("inf")), "rate"),
    ],
)
def test_bs_bad_inputs_name_the_field(args, field):
    with pytest.raises(OptionsInputError) as exc:
        bs_price(*args)
    assert exc.value.field == field and str(exc.value).startswith(field)
    with pytest.raises(OptionsInputError, match="kind"):
        bs_delta(600, 600, 0.01, 0.15, kind="straddle")


# -- real data -------------------------------------------------------------------------------------


def test_occ_symbols_match_a_real_chain(shared_data):
    import csv

    path = shared_data / "options" / "zoomkb_chain_2026-05-01" / "spy_options_raw.csv"
    if not path.is_file():
        pytest.skip("zoomkb_chain_2026-05-01/spy_options_raw.csv missing from ../shared/data")
    n = 0
    with path.open(newline="") as fh:
        for row in csv.DictReader(fh):
            sym = occ_symbol(row["ticker"], date.fromisoformat(row["expiry"]), row["option_type"],
                             float(row["strike"]))
            assert sym == row["contractSymbol"], row
            n += 1
    assert n > 7000


def test_implied_vol_inverts_black_scholes():
    from strategies.trade_executor.options_pricing import implied_vol

    t = 329 / 98_280
    for kind, vol in (("call", 0.20), ("put", 0.35), ("call", 0.9)):
        price = bs_price(101.0, 100.0, t, vol, 0.0, kind)
        assert implied_vol(price, 101.0, 100.0, t, kind) == pytest.approx(vol, abs=1e-9)
    # far out of the money a whole range of volatilities prices 0: any answer must reprice it
    iv = implied_vol(0.0, 101.0, 120.0, t, "call")
    assert bs_price(101.0, 120.0, t, iv, 0.0, "call") == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(ValueError, match="price"):
        implied_vol(float("nan"), 101.0, 100.0, t)
