"""PositionSizer (stocks) and LeveragedETFSizer: numbers worked out by hand in the comments."""

from __future__ import annotations

from functools import partial

import pytest

from strategies.trade_executor import (
    ETFSelection,
    ExecutorConfig,
    LeveragedETFSizer,
    PositionSizer,
    conviction_multiplier,
)
from tests import builders

# the sizers read only the entry, the stop distance and the conviction
sig = partial(builders.signal, ticker="AAPL", stop=50.0, volume_confirmed=None)
acct = partial(builders.account, buying_power=200_000.0)


# ── stock sizing ────────────────────────────────────────────────────────────────────────────
def test_full_conviction_uncapped():
    # risk = 100,000 x 5% = 5,000; stop distance |100 - 50| = 50 -> 100 shares
    # exposure cap 15,000 / 100 = 150 shares, bp cap 200,000 / 100.1 = 1998 -> not binding
    s = PositionSizer(ExecutorConfig()).calculate(sig(), acct())
    assert s.shares == 100
    assert s.notional == 10_000.0
    assert s.risk_amount == 5_000.0
    assert s.conviction_multiplier == 1.0
    assert s.capped_by is None
    assert s.raw_shares == pytest.approx(100.0)
    assert s.stop_distance == 50.0
    # loss if the stop is hit == the risk budget
    assert s.shares * s.stop_distance == pytest.approx(s.risk_amount)


def test_short_signal_same_formula():
    # short 100 with stop 150: distance 50 -> 100 shares
    s = PositionSizer().calculate(sig(entry=100.0, stop=150.0, direction="short"), acct())
    assert s.shares == 100 and s.capped_by is None


@pytest.mark.parametrize("conviction,mult,shares", [
    (100, 1.0, 100), (75, 1.0, 100),   # high: full size
    (74, 0.5, 50), (50, 0.5, 50),      # medium: 100 x 0.5
    (49, 0.0, 0), (0, 0.0, 0),         # below 50: not executed
])
def test_conviction_multiplier_boundaries(conviction, mult, shares):
    assert conviction_multiplier(conviction) == mult
    s = PositionSizer().calculate(sig(conviction=conviction), acct())
    assert s.conviction_multiplier == mult
    assert s.shares == shares
    if conviction < 50:
        assert s.capped_by == "low_conviction"


def test_single_stock_exposure_cap():
    # distance 2 -> raw 5,000 / 2 = 2,500 shares; cap 15,000 / 100 = 150 shares
    s = PositionSizer().calculate(sig(entry=100.0, stop=98.0), acct())
    assert s.raw_shares == pytest.approx(2500.0)
    assert s.shares == 150 and s.capped_by == "single_stock_exposure"
    assert s.notional == 15_000.0


def test_exposure_cap_boundary():
    # entry 150, stop 100: raw 5,000 / 50 = 100 shares = 15,000 notional == cap -> not binding
    s = PositionSizer().calculate(sig(entry=150.0, stop=100.0), acct())
    assert (s.shares, s.capped_by) == (100, None)
    # entry 150.01: cap 15,000 / 150.01 = 99.993 -> 99 shares, cap binds
    s = PositionSizer().calculate(sig(entry=150.01, stop=100.01), acct())
    assert (s.shares, s.capped_by) == (99, "single_stock_exposure")


def test_buying_power_cap_and_boundary():
    # need 100 x 100 x 1.001 = 10,010 for the 100 shares
    s = PositionSizer().calculate(sig(), acct(buying_power=10_010.0))
    assert (s.shares, s.capped_by) == (100, None)
    s = PositionSizer().calculate(sig(), acct(buying_power=10_009.99))  # 10,009.99 / 100.1 = 99.9999
    assert (s.shares, s.capped_by) == (99, "buying_power")
    s = PositionSizer().calculate(sig(), acct(buying_power=5_000.0))  # 5,000 / 100.1 = 49.95
    assert (s.shares, s.capped_by) == (49, "buying_power")


def test_price_kwarg_values_the_caps_not_the_risk():
    # stop distance stays the signal's 50 -> 100 shares; valued at 120: 12,000 (< cap 15,000)
    s = PositionSizer().calculate(sig(), acct(), price=120.0)
    assert s.shares == 100 and s.notional == 12_000.0
    # at 160 the exposure cap is 15,000 / 160 = 93.75 -> 93
    s = PositionSizer().calculate(sig(), acct(), price=160.0)
    assert (s.shares, s.capped_by) == (93, "single_stock_exposure")
    with pytest.raises(ValueError, match="price"):
        PositionSizer().calculate(sig(), acct(), price=0.0)


def test_shares_always_round_down():
    # distance 3 -> 5,000 / 3 = 1,666.67; with a wide cap the result floors to 1,666
    cfg = ExecutorConfig(max_single_stock_exposure=1.0)
    s = PositionSizer(cfg).calculate(sig(entry=30.0, stop=27.0), acct(buying_power=1e9))
    assert s.shares == 1666
    assert s.shares * 3.0 <= s.risk_amount


def test_zero_equity_sizes_nothing():
    s = PositionSizer().calculate(sig(), acct(equity=0.0))
    assert s.shares == 0 and s.risk_amount == 0.0


# ── leveraged ETF sizing ───────────────────────────────────────────────────────────────────
def etf(ticker="QLD", lev=2.0, inverse=False):
    return ETFSelection(ticker=ticker, leverage=lev, tracks="NASDAQ-100",
                        avg_daily_volume=1e9, is_inverse=inverse)


WIDE = ExecutorConfig(max_single_stock_exposure=1.0)
# 1% risk: exposure = risk / d stays under 100% of equity for stops of 1% and wider
WIDE_1PCT = ExecutorConfig(max_single_stock_exposure=1.0, max_risk_per_trade=0.01)


def test_etf_loss_at_stop_equals_risk_budget():
    # underlying 100 -> stop 95: d = 5%. 2x fund at 25: stop per share = 25 x 2 x 0.05 = 2.50
    # shares = 5,000 / 2.50 = 2,000. Exposure 2 x 25 x 2,000 = 100,000 = cap (100% here).
    s = LeveragedETFSizer(WIDE).calculate(sig(entry=100.0, stop=95.0), etf(), acct(), etf_price=25.0)
    assert s.shares == 2000 and s.capped_by is None
    assert s.stop_distance == pytest.approx(2.5)
    assert s.notional == 50_000.0
    # the fund's price after the underlying falls to its stop: 25 x (1 + 2 x (-5%)) = 22.50
    fund_at_stop = 25.0 * (1 + 2.0 * (95.0 / 100.0 - 1))
    assert fund_at_stop == pytest.approx(22.5)
    assert s.shares * (25.0 - fund_at_stop) == pytest.approx(s.risk_amount) == 5_000.0


@pytest.mark.parametrize("lev,price,entry,stop", [
    (3.0, 50.0, 500.0, 490.0), (2.0, 40.0, 200.0, 194.0), (1.5, 12.0, 20.0, 19.0), (3.0, 8.0, 60.0, 61.5),
])
def test_etf_invariant_holds_for_any_leverage(lev, price, entry, stop):
    direction = "long" if stop < entry else "short"
    sz = LeveragedETFSizer(WIDE_1PCT).calculate(sig(entry=entry, stop=stop, direction=direction),
                                           etf(lev=lev), acct(buying_power=1e12), etf_price=price)
    d = abs(entry - stop) / entry
    loss_at_stop = sz.shares * price * lev * d
    assert sz.capped_by is None and sz.risk_amount == 1_000.0
    assert loss_at_stop <= sz.risk_amount + 1e-6
    assert loss_at_stop > sz.risk_amount - price * lev * d  # less than one share below budget
    # the seed's literal step 3 (stop / L) would size L^2 x larger
    seed_literal = sz.risk_amount / (price * d / lev)
    assert seed_literal == pytest.approx(sz.raw_shares * lev * lev)


def test_etf_sizing_for_inverse_fund_uses_magnitude():
    # short QQQ 500 -> stop 510: d = 2%; SQQQ (3x) at 20: stop/share = 20 x 3 x 0.02 = 1.20
    # risk 1% = 1,000 -> raw 1,000 / 1.2 = 833.33 -> 833; exposure 3 x 20 x 833 = 49,980 < 100,000
    short = sig(entry=500.0, stop=510.0, direction="short", ticker="QQQ")
    pos_lev = LeveragedETFSizer(WIDE_1PCT).calculate(short, etf("SQQQ", 3.0, True), acct(buying_power=1e9),
                                                     etf_price=20.0)
    neg_lev = LeveragedETFSizer(WIDE_1PCT).calculate(short, etf("SQQQ", -3.0, True), acct(buying_power=1e9),
                                                     etf_price=20.0)
    assert pos_lev.shares == neg_lev.shares == 833
    assert pos_lev.capped_by is None
    assert pos_lev.stop_distance == pytest.approx(1.2)


def test_etf_exposure_cap_uses_leverage():
    # default 15% cap: |L| x price x shares <= 15,000 -> 15,000 / (3 x 50) = 100 shares
    # (raw: d = 2%, 5,000 / (50 x 3 x 0.02) = 1,666.67)
    s = LeveragedETFSizer().calculate(sig(entry=500.0, stop=490.0, ticker="QQQ"), etf("TQQQ", 3.0),
                                      acct(), etf_price=50.0)
    assert (s.shares, s.capped_by) == (100, "single_stock_exposure")
    assert 3.0 * s.notional == pytest.approx(15_000.0)


def test_etf_medium_conviction_halves():
    # 2,000 shares at full conviction (see above) -> 1,000 at conviction 60
    s = LeveragedETFSizer(WIDE).calculate(sig(entry=100.0, stop=95.0, conviction=60), etf(), acct(),
                                          etf_price=25.0)
    assert s.shares == 1000 and s.conviction_multiplier == 0.5
    s = LeveragedETFSizer(WIDE).calculate(sig(entry=100.0, stop=95.0, conviction=49), etf(), acct(),
                                          etf_price=25.0)
    assert s.shares == 0 and s.capped_by == "low_conviction"


def test_etf_buying_power_cap():
    # 10,000 / (25 x 1.001) = 399.6 -> 399
    s = LeveragedETFSizer(WIDE).calculate(sig(entry=100.0, stop=95.0), etf(), acct(buying_power=10_000.0),
                                          etf_price=25.0)
    assert (s.shares, s.capped_by) == (399, "buying_power")


def test_etf_sizer_rejects_bad_inputs():
    with pytest.raises(ValueError, match="etf_price"):
        LeveragedETFSizer().calculate(sig(), etf(), acct(), etf_price=0.0)
    with pytest.raises(ValueError, match="etf"):
        LeveragedETFSizer().calculate(sig(), None, acct(), etf_price=10.0)  # type: ignore[arg-type]


@pytest.mark.parametrize("lev,days", [(3, 5), (-3, 5), (3.0, 5), (2, 10), (-2, 10), (2.5, 10),
                                      (1.5, 15), (-1.5, 15), (1.0, None), (-0.5, None)])
def test_max_hold_days(lev, days):
    assert LeveragedETFSizer().max_hold_days(lev) == days


def test_max_hold_days_from_config():
    cfg = ExecutorConfig(max_etf_hold_days_3x=3, max_etf_hold_days_2x=7)
    assert LeveragedETFSizer(cfg).max_hold_days(3) == 3
    assert LeveragedETFSizer(cfg).max_hold_days(2) == 7
