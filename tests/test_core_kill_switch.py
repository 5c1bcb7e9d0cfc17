"""KillSwitch: the seed's five triggers at and past their boundaries; latch; manual control.

Base account: equity = starting equity = 100,000, daily P&L 0, broker seen at as_of, no losses.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from strategies.trade_executor import AccountState, ExecutorConfig, KillSwitch

T = datetime(2025, 7, 1, 15, 0, tzinfo=timezone.utc)


def acct(equity=100_000.0, daily_pnl=0.0, starting=None, last_contact=T, as_of=T, recent=()):
    return AccountState(equity=equity, cash=equity, buying_power=2 * equity, open_positions=[],
                        daily_pnl=daily_pnl, daily_trades=0, starting_equity=starting,
                        recent_trade_pnl_pcts=list(recent), as_of=as_of,
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
@pytest.mark.parametrize("recent,trips", [
    ([-0.031, -0.031, -0.031], True),        # three losses, each worse than -3%
    ([-0.03, -0.031, -0.031], False),        # exactly -3% is not "more than 3%"
    ([-0.031, -0.031, -0.03], False),
    ([-0.05, -0.04], False),                 # only two trades
    ([0.05, -0.04, -0.04, -0.04], True),     # only the last three count
    ([-0.04, -0.04, -0.04, 0.01], False),    # the latest trade won
    ([-0.04, -0.04, 0.0, -0.04], False),
    ([], False),
])
def test_consecutive_losses(recent, trips):
    ks = fresh()
    assert ks.check(acct(recent=recent)) is trips
    if trips:
        assert ks.code == "consecutive_losses"


def test_consecutive_losses_threshold_configurable():
    assert fresh(consecutive_loss_threshold=2).check(acct(recent=[-0.04, -0.04]))
    assert not fresh(consecutive_loss_pct=0.05).check(acct(recent=[-0.04, -0.04, -0.04]))


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
                             recent=[-0.1, -0.1, -0.1], last_contact=T - timedelta(minutes=5)))
    assert [f.split(":")[0] for f in fired] == [
        "daily_loss_limit", "broker_disconnected", "min_equity", "consecutive_losses"]
    assert not ks.is_active
