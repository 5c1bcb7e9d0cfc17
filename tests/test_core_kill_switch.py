"""KillSwitch: the seed's five triggers at and past their boundaries; latch; manual control.

Base account: equity = starting equity = 100,000, daily P&L 0, broker seen at as_of, no losses.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from strategies.trade_executor import AccountState, ExecutorConfig, KillSwitch
from strategies.trade_executor.kill_switch import trade_loss_vs_equity

T = datetime(2025, 7, 1, 15, 0, tzinfo=timezone.utc)


def acct(equity=100_000.0, daily_pnl=0.0, starting=None, last_contact=T, as_of=T, recent=()):
    return AccountState(equity=equity, cash=equity, buying_power=2 * equity, open_positions=[],
                        daily_pnl=daily_pnl, daily_trades=0, starting_equity=starting,
                        recent_trade_losses_vs_equity=list(recent), as_of=as_of,
                        last_broker_contact=last_contact)


def fresh(**cfg):
    return KillSwitch(ExecutorConfig(**cfg))


def test_healthy_account_does_not_trip():
    ks = fresh()
    assert ks.check(acct()) is False
    assert not ks.is_active and ks.reason is None and ks.activated_at is None


# ── 1 daily loss ────────────────────────────────────────────────────────────────────────────
def test_daily_loss_exactly_10pct_trips():
    # limit 10% x starting 100,000 = 10,000
    ks = fresh()
    assert ks.check(acct(equity=90_000.0, daily_pnl=-10_000.0, starting=100_000.0))
    assert ks.is_active and ks.code == "daily_loss_limit"
    assert ks.reason.startswith("daily_loss_limit:") and "-10,000.00" in ks.reason
    assert ks.activated_at == T


def test_daily_loss_boundaries():
    assert not fresh().check(acct(equity=90_000.01, daily_pnl=-9_999.99, starting=100_000.0))
    assert fresh().check(acct(equity=89_999.99, daily_pnl=-10_000.01, starting=100_000.0))


def test_daily_loss_measured_against_starting_equity():
    # starting 50,000 -> limit 5,000 (equity already down to 45,500 would not matter)
    assert not fresh().check(acct(equity=45_500.0, daily_pnl=-4_500.0, starting=50_000.0))
    assert fresh().check(acct(equity=45_000.0, daily_pnl=-5_000.0, starting=50_000.0))


# ── 2 manual ────────────────────────────────────────────────────────────────────────────────
def test_manual_activate_and_deactivate():
    ks = fresh()
    ks.activate("manual: paused from the dashboard", now=T)
    assert ks.is_active and ks.code == "manual" and ks.activated_at == T
    assert ks.check(acct()) is True  # healthy account, still halted
    ks.deactivate()
    assert not ks.is_active and ks.reason is None and ks.activated_at is None
    assert ks.check(acct()) is False
    assert [e["event"] for e in ks.history] == ["activate", "deactivate"]


def test_activate_requires_reason():
    with pytest.raises(ValueError, match="reason"):
        fresh().activate("")


# ── 3 broker contact ────────────────────────────────────────────────────────────────────────
def test_broker_timeout_boundary():
    # api_timeout_seconds = 60: exactly 60 s is tolerated, anything more trips
    assert not fresh().check(acct(last_contact=T - timedelta(seconds=60)))
    ks = fresh()
    assert ks.check(acct(last_contact=T - timedelta(seconds=60, milliseconds=1)))
    assert ks.code == "broker_disconnected" and "60s" in ks.reason
    assert fresh().check(acct(last_contact=T - timedelta(seconds=61)))


def test_broker_timeout_unknown_times_do_not_trip():
    assert not fresh().check(acct(last_contact=None))
    assert not fresh().check(acct(as_of=None, last_contact=T - timedelta(hours=1)))


def test_broker_timeout_configurable():
    assert fresh(api_timeout_seconds=10).check(acct(last_contact=T - timedelta(seconds=11)))


# ── 4 equity floor ──────────────────────────────────────────────────────────────────────────
def test_min_equity_boundary():
    assert not fresh().check(acct(equity=25_000.0))
    ks = fresh()
    assert ks.check(acct(equity=24_999.99))
    assert ks.code == "min_equity" and "24,999.99" in ks.reason


# ── 5 consecutive losses ────────────────────────────────────────────────────────────────────
# Each entry of recent_trade_losses_vs_equity is a closed trade's loss / equity before it
# (trade_loss_vs_equity), 0.0 for a winner. Trips when each of the last 3 is > 3 %.
@pytest.mark.parametrize("recent,trips", [
    ([0.031, 0.031, 0.031], True),           # three losses, each more than 3 % of equity
    ([0.03, 0.031, 0.031], False),           # exactly 3 % is not "more than 3 %"
    ([0.031, 0.031, 0.03], False),
    ([0.05, 0.04], False),                   # only two trades
    ([0.0, 0.04, 0.04, 0.04], True),         # only the last three count
    ([0.04, 0.04, 0.04, 0.0], False),        # the latest trade won
    ([0.04, 0.04, 0.0, 0.04], False),
    ([], False),
])
def test_consecutive_losses(recent, trips):
    ks = fresh()
    assert ks.check(acct(recent=recent)) is trips
    if trips:
        assert ks.code == "consecutive_losses"


def test_consecutive_losses_threshold_configurable():
    assert fresh(consecutive_loss_threshold=2).check(acct(recent=[0.04, 0.04]))
    assert not fresh(consecutive_loss_pct=0.05).check(acct(recent=[0.04, 0.04, 0.04]))


def closed_trades(pnls, equity=100_000.0):
    """recent_trade_losses_vs_equity after closing these round trips one after the other,
    equity moving with each P&L (what the strategy does when a round trip closes)."""
    out = []
    for pnl in pnls:
        out.append(trade_loss_vs_equity(pnl, equity))
        equity += pnl
    return out, equity


def test_three_losses_of_3500_on_100k_trip():
    # 3,500 / 100,000 = 3.5 %, 3,500 / 96,500 = 3.63 %, 3,500 / 93,000 = 3.76 %: all > 3 %
    recent, equity = closed_trades([-3_500.0, -3_500.0, -3_500.0])
    assert recent == pytest.approx([0.035, 3_500 / 96_500, 3_500 / 93_000])
    ks = fresh()
    assert ks.check(acct(equity=equity, recent=recent))
    assert ks.code == "consecutive_losses"
    assert "3.50%" in ks.reason and "3.0%" in ks.reason


def test_three_losses_of_2500_on_100k_do_not_trip():
    # 2.5 %, 2.56 %, 2.63 %: none is more than 3 % of equity
    recent, equity = closed_trades([-2_500.0, -2_500.0, -2_500.0])
    assert max(recent) < 0.03
    assert not fresh().check(acct(equity=equity, recent=recent))


def test_winner_in_between_resets():
    recent, equity = closed_trades([-3_500.0, -3_500.0, +1_000.0, -3_500.0, -3_500.0])
    assert recent[2] == 0.0
    assert not fresh().check(acct(equity=equity, recent=recent))
    # one more big loss: the last three are losses again
    more, equity = closed_trades([-3_500.0], equity)
    assert fresh().check(acct(equity=equity, recent=recent + more))


def test_old_position_cost_measure_no_longer_counts():
    # a full stop-out on a 15 % position: -5 % of the position's cost is only 0.75 % of equity
    a = acct(recent=[])
    a.recent_trade_pnl_pcts = [-0.05, -0.05, -0.05]
    assert not fresh().check(a)


@pytest.mark.parametrize("pnl,equity,expected", [
    (-3_500.0, 100_000.0, 0.035),
    (-2_500.0, 100_000.0, 0.025),
    (1_200.0, 100_000.0, 0.0),
    (0.0, 100_000.0, 0.0),
    (-3_000, 100_000, 0.03),
])
def test_trade_loss_vs_equity(pnl, equity, expected):
    assert trade_loss_vs_equity(pnl, equity) == pytest.approx(expected)


@pytest.mark.parametrize("pnl,equity,field", [
    (float("nan"), 100_000.0, "pnl"),
    (-1.0, float("inf"), "equity_before"),
    (-1.0, 0.0, "equity_before"),
    (-1.0, -5.0, "equity_before"),
    (True, 100_000.0, "pnl"),
])
def test_trade_loss_vs_equity_rejects_bad_input(pnl, equity, field):
    with pytest.raises(ValueError, match=field):
        trade_loss_vs_equity(pnl, equity)


@pytest.mark.parametrize("bad", [[-0.035], [float("nan")], ["0.03"], "0.03"])
def test_account_rejects_malformed_losses(bad):
    with pytest.raises(ValueError, match="recent_trade_losses_vs_equity"):
        acct(recent=bad) if not isinstance(bad, str) else AccountState(
            equity=1.0, cash=1.0, buying_power=1.0, open_positions=[], daily_pnl=0.0,
            daily_trades=0, recent_trade_losses_vs_equity=bad)


# ── latch and precedence ────────────────────────────────────────────────────────────────────
def test_stays_active_until_deactivated():
    ks = fresh()
    assert ks.check(acct(equity=24_000.0))
    assert ks.check(acct())  # condition cleared: still halted
    assert ks.code == "min_equity"
    ks.deactivate()
    assert not ks.check(acct())


def test_first_trigger_reason_kept():
    ks = fresh()
    # daily loss and equity floor both hold: daily loss is evaluated first
    assert ks.check(acct(equity=20_000.0, daily_pnl=-10_000.0, starting=30_000.0))
    assert ks.code == "daily_loss_limit"
    ks.activate("manual: also pressed", now=T + timedelta(minutes=1))
    assert ks.code == "daily_loss_limit" and ks.activated_at == T


def test_triggers_has_no_side_effect():
    ks = fresh()
    fired = ks.triggers(acct(equity=20_000.0, daily_pnl=-10_000.0, starting=30_000.0,
                             recent=[0.1, 0.1, 0.1], last_contact=T - timedelta(minutes=5)))
    assert [f.split(":")[0] for f in fired] == [
        "daily_loss_limit", "broker_disconnected", "min_equity", "consecutive_losses"]
    assert not ks.is_active
