"""ExecutorCore as plain Python: events in, commands out, no engine.

The same state machine runs inside the Nautilus strategy (tests/test_trade_management.py,
test_kill_switch_backtest.py, test_live_alpaca.py run it there); here each rule is pinned with
hand-computed numbers: sizing, the protective stop, exits after their stop's cancel, the round
trip's P&L, the kill-switch protocol, the wash-trade retry, restart from a journal row, stop.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from strategies.trade_executor import ExecutorConfig
from strategies.trade_executor import commands as c
from strategies.trade_executor.core import CoreSettings, ExecutorCore
from strategies.trade_executor.position_manager import ManagedPosition
from tests.builders import T0, FakeEngine, Latch, signal, utc

NOW = T0 + timedelta(seconds=1)
NS = 1_000_000_000
SIG = signal()  # long QQQ 10m, entry 100, stop 98, conviction 80, volume confirmed


def of(kind, commands):
    return [x for x in commands if isinstance(x, kind)]


def make_core(mode: str = "stock", **settings) -> tuple[ExecutorCore, FakeEngine]:
    engine = FakeEngine()
    core = ExecutorCore(ExecutorConfig(instrument_mode=mode), engine, CoreSettings(**settings))
    core.follow("QQQ")
    return core, engine


def bar(core: ExecutorCore, close: float, ts, *, sym: str = "QQQ", low: float | None = None,
        high: float | None = None) -> list:
    """A 1-minute bar at ``ts`` (its close time), then the minute's decisions 1 s later."""
    out = core.on_bar(sym, "1m", close, high or close, low or close, close, 1000.0, int(ts.timestamp()) * NS)
    return out + core.run_minute(ts + timedelta(seconds=1))


def entered(core: ExecutorCore, engine: FakeEngine, qty: int = 150, px: float = 100.0) -> tuple[str, str]:
    """Signal -> entry O-1 filled at ``px`` -> protective stop O-2 accepted. Returns their ids."""
    bar(core, 100.0, T0)
    out = core.on_signal(SIG, NOW)
    entry = of(c.SubmitOrder, out)[0]
    out = core.on_fill(entry.order_id, qty, px, 0.0, NOW, NOW)
    stop = of(c.SubmitOrder, out)[0]
    engine.accept(stop.order_id, qty)
    return entry.order_id, stop.order_id


def test_approved_signal_sizes_to_the_single_name_cap_and_sends_a_market_entry():
    core, _ = make_core()
    bar(core, 100.0, T0)
    out = core.on_signal(SIG, NOW)
    # risk 5 % of 100k over a $2 stop = 2,500 shares, capped at 15 % of equity in one name: 150
    assert of(c.SubmitOrder, out) == [c.SubmitOrder(
        order_id="O-1", instrument="QQQ.XNAS", side="BUY", qty=150, order_type="market", time_in_force="DAY",
        tags=(f"signal={SIG.signal_id}", "role=entry:market"))]
    [rec] = of(c.RecordDecision, out)
    assert (rec.record.approved, rec.record.shares, rec.record.order_ids) == (True, 150, ["O-1"])
    assert rec.record.details["size"]["capped_by"] == "single_stock_exposure"
    assert rec.record.details["risk"]["single_stock_cap"] == 15000.0


def test_session_roll_schedules_the_eod_cutoff_and_samples_equity():
    core, _ = make_core()
    out = bar(core, 100.0, T0)
    assert of(c.ScheduleEod, out)[0].at == utc(2025, 7, 1, 19, 55)  # 15:55 New York (EDT)
    assert of(c.RecordEquity, out) == [c.RecordEquity(NOW, 100_000.0)]


def test_fill_records_the_open_trade_then_rests_a_reduce_only_stop():
    core, _ = make_core()
    bar(core, 100.0, T0)
    core.on_signal(SIG, NOW)
    out = core.on_fill("O-1", 150, 100.05, 0.0, NOW, NOW)
    assert [type(x) for x in out] == [c.RecordOpenTrade, c.SubmitOrder, c.RecordOpenTrade]
    assert out[0].row["status"] == "open" and out[0].row["shares"] == 150 and out[0].row["entry_price"] == 100.05
    assert out[1] == c.SubmitOrder(order_id="O-2", instrument="QQQ.XNAS", side="SELL", qty=150,
                                   order_type="stop_market", time_in_force="DAY", trigger_price=98.0,
                                   reduce_only=True, tags=(f"signal={SIG.signal_id}", "role=stop"))
    assert '"stop_order_id": "O-2"' in out[2].row["metadata_json"]


def test_partial_entry_fill_resizes_the_accepted_stop():
    core, engine = make_core()
    bar(core, 100.0, T0)
    core.on_signal(SIG, NOW)
    core.on_fill("O-1", 100, 100.0, 0.0, NOW, NOW)
    engine.accept("O-2", 100)
    out = core.on_fill("O-1", 50, 100.0, 0.0, NOW, NOW)
    assert of(c.ResizeOrder, out) == [c.ResizeOrder("O-2", 150)]


def test_stop_exit_cancels_the_resting_stop_first_then_closes_and_books_the_pnl():
    core, engine = make_core()
    _, stop = entered(core, engine)
    out = bar(core, 97.5, T0 + timedelta(minutes=1))  # closes through the 98 stop
    assert of(c.CancelOrder, out) == [c.CancelOrder(stop)]
    assert of(c.SubmitOrder, out) == []  # not before the stop is gone: the broker must never sell twice
    out = core.on_order_done(stop, "canceled", NOW + timedelta(minutes=1))
    [exit_] = of(c.SubmitOrder, out)
    assert (exit_.side, exit_.qty, exit_.order_type, exit_.reduce_only) == ("SELL", 150, "market", True)
    engine.cash = 100_000.0 - 391.25  # the venue books the loss with the fill
    out = core.on_fill(exit_.order_id, 150, 97.4, 1.25, NOW + timedelta(minutes=1), NOW + timedelta(minutes=1))
    [trade] = of(c.RecordTrade, out)
    # (97.40 - 100.00) x 150 - 1.25 fees
    assert trade.row["pnl"] == -391.25
    assert trade.row["exit_reason"] == "stop_loss" and trade.row["status"] == "closed"
    assert core.pm.by_signal == {}
    # the kill switch's loss counts against the equity before the trade closed: 100,000
    assert core.recent_trade_losses_vs_equity == [pytest.approx(391.25 / 100_000.0)]


def test_duplicate_and_exhaustion_signals_are_refused_with_their_codes():
    core, _ = make_core()
    bar(core, 100.0, T0)
    core.on_signal(SIG, NOW)
    [dup] = of(c.RecordDecision, core.on_signal(SIG, NOW + timedelta(seconds=5)))
    assert (dup.record.approved, dup.record.reason_code) == (False, "duplicate_signal")
    exhaustion = signal(signal_type="momentum_exhaustion", ts=T0)
    [ex] = of(c.RecordDecision, core.on_signal(exhaustion, NOW))
    assert ex.record.reason_code == "not_entry"


def test_invalid_signal_is_recorded_with_what_it_said():
    core, _ = make_core()
    [rec] = of(c.RecordDecision, core.on_invalid_signal({"signal_id": "x1", "ticker": "QQQ", "conviction": 70},
                                                        "conviction: bad", NOW))
    assert (rec.record.signal_id, rec.record.reason_code, rec.record.conviction) == ("x1", "invalid_signal", 70)
    assert core.signals_received == 1


def test_operator_latch_trips_reduces_exits_day_trades_then_halts_once_submitted():
    core, engine = make_core()
    _, stop = entered(core, engine)
    engine.latch = Latch(active=True, reason="manual: operator")
    later = NOW + timedelta(seconds=10)
    out = core.on_control(later)
    assert of(c.KillSwitchTripped, out)[0].persist is False  # the latch is already in executor_control
    assert of(c.SetTradingState, out) == [c.SetTradingState("REDUCING", "kill switch: manual: operator")]
    assert of(c.CancelOrder, out) == [c.CancelOrder(stop)]  # the day trade leaves: stop first
    out = core.on_order_done(stop, "canceled", later)
    [exit_] = of(c.SubmitOrder, out)
    assert exit_.tags[-1] == "reason=kill_switch"
    assert of(c.SetTradingState, out) == []  # still REDUCING until the exit passed the RiskEngine
    out = core.on_order_submitted(exit_.order_id, later)
    assert of(c.SetTradingState, out) == [c.SetTradingState("HALTED", "kill switch: manual: operator")]
    [rec] = of(c.RecordDecision, core.on_signal(signal(ticker="QQQ", ts=later, direction="short"), later))
    assert rec.record.reason_code == "kill_switch"
    engine.latch = Latch(active=False)
    out = core.on_control(later + timedelta(seconds=5))
    assert of(c.SetTradingState, out) == [c.SetTradingState("ACTIVE", "resumed by operator (latch was: manual: operator)")]


def test_refused_stop_cancels_the_working_entry_and_rests_again_once_it_is_gone():
    core, engine = make_core()
    bar(core, 100.0, T0)
    core.on_signal(SIG, NOW)
    engine.accept("O-1", 150)
    core.on_fill("O-1", 100, 100.0, 0.0, NOW, NOW)  # partial: 50 still working; stop O-2 sent
    out = core.on_order_done("O-2", "rejected by venue: potential wash trade detected", NOW)
    assert of(c.CancelOrder, out) == [c.CancelOrder("O-1")]
    assert [e.kind for e in of(c.RecordEvent, out)] == ["stop_failed"]
    engine.close("O-1")
    out = core.on_order_done("O-1", "canceled", NOW)
    [stop] = of(c.SubmitOrder, out)
    assert (stop.order_type, stop.qty, stop.trigger_price) == ("stop_market", 100, 98.0)


def test_stop_refused_without_a_working_entry_leaves_at_market():
    core, engine = make_core()
    entered(core, engine)
    engine.close("O-2")
    out = core.on_order_done("O-2", "rejected by venue: stop price above market", NOW)
    [exit_] = of(c.SubmitOrder, out)
    assert (exit_.order_type, exit_.side, exit_.qty) == ("market", "SELL", 150)
    assert core.pm.by_signal[SIG.signal_id].exit_fired == ["stop_loss", "stop_refused"]


def test_leveraged_fund_levels_scale_with_leverage():
    core, _ = make_core("leveraged_etf")
    policy = core.policies["leveraged_etf"]
    decision = core.router.route(signal(target=104.0))
    assert decision.instrument_type == "leveraged_etf" and abs(decision.leverage) == 3.0
    stop, target = policy.levels(signal(target=104.0), decision, 50.0)
    # a 2 % stop and a 4 % target on the index are 6 % and 12 % on a 3x fund at 50
    assert stop == pytest.approx(47.0) and target == pytest.approx(56.0)


def test_no_instrument_when_the_venue_does_not_list_the_fund():
    core, _ = make_core("leveraged_etf")
    bar(core, 100.0, T0)
    [rec] = of(c.RecordDecision, core.on_signal(SIG, NOW))
    assert rec.record.reason_code == "no_instrument"
    assert "not available at XNAS" in rec.record.reason


def test_open_row_round_trips_into_a_restored_position_with_its_stop():
    core, engine = make_core()
    entered(core, engine)
    row = core.pm.by_signal[SIG.signal_id].to_row(NOW, closed=False, broker="backtest")

    class Row:
        id = 1
        metadata = __import__("json").loads(row["metadata_json"])

        def __getattr__(self, name):
            return row[name]

    fresh, engine2 = make_core()
    engine2.held["QQQ.XNAS"] = 150
    engine2.accept("O-2", 150)
    out = fresh.restore_positions([Row()], NOW)
    mp = fresh.pm.by_signal[SIG.signal_id]
    assert (mp.open_qty, mp.position.entry_price, mp.stop_order_id, mp.position.sector) == (150, 100.0, "O-2", "nasdaq100")
    assert of(c.SubmitOrder, out) == []  # its stop still rests at the venue
    assert [e.kind for e in of(c.RecordEvent, out)] == ["position_restored"]
    assert isinstance(ManagedPosition.from_row(Row(), Row.metadata, default_instrument="QQQ.XNAS"), ManagedPosition)


def test_restored_position_the_venue_closed_offline_is_booked_at_its_close():
    core, engine = make_core()
    entered(core, engine)
    row = core.pm.by_signal[SIG.signal_id].to_row(NOW, closed=False, broker="backtest")
    meta = __import__("json").loads(row["metadata_json"])
    rowobj = type("R", (), {**row, "id": 7, "metadata": meta})()
    fresh, engine2 = make_core()
    engine2.closed_px["QQQ.XNAS"] = 98.0
    [trade] = of(c.RecordTrade, fresh.restore_positions([rowobj], NOW))
    assert (trade.row["exit_reason"], trade.row["pnl"]) == ("closed_while_offline", -300.0)


def test_stop_cancels_working_entries_and_then_decides_nothing():
    core, engine = make_core()
    bar(core, 100.0, T0)
    core.on_signal(SIG, NOW)
    engine.accept("O-1", 150)
    out = core.on_stop(NOW)
    assert of(c.CancelOrder, out) == [c.CancelOrder("O-1")]
    assert of(c.RecordDailyPnl, out)[0].day.isoformat() == "2025-07-01"
    assert core.on_signal(signal(ticker="SPY"), NOW) == []


def test_broker_account_halt_trips_the_kill_switch_at_once():
    core, _ = make_core()
    out = core.on_broker_status(connected=True, ts_ns=int(NOW.timestamp()) * NS, broker="alpaca",
                                halt_reason="account blocked")
    assert core.kill_switch.code == "broker_account"
    assert of(c.SetTradingState, out)[-1].state == "HALTED"  # nothing to reduce: straight to HALTED


def test_options_policy_buys_the_atm_call_at_the_ask_and_sizes_by_premium():
    core, engine = make_core("options", option_strike_increment=1.0)
    bar(core, 100.0, T0)
    scalp = signal(timeframe="1m", ts=T0)
    contract = "QQQ250701C00100000.XNAS"
    engine.ticks[contract] = 0.01
    engine.quotes[contract] = (1.95, 2.05)
    out = core.on_signal(scalp, NOW)
    [rec] = of(c.RecordDecision, out)
    assert rec.record.approved, rec.record.reason
    # budget 5 % of 100k = 5,000 over 2.05 x 100 per contract = 24 contracts
    [entry] = of(c.SubmitOrder, out)
    assert (entry.instrument, entry.qty, entry.order_type) == (contract, rec.record.shares, "market")
    assert rec.record.details["size"]["raw_shares"] == pytest.approx(5000 / 205, abs=1e-4)
    assert of(c.SubscribeQuotes, out) == [c.SubscribeQuotes(contract)]


def test_mode_change_routes_new_entries_only_and_is_journaled():
    core, engine = make_core("stock", follow_control_mode=True)
    entered(core, engine)
    engine.latch = Latch(active=False)
    engine.mode = "leveraged_etf"
    out = core.on_control(NOW + timedelta(seconds=5))
    [ev] = [e for e in of(c.RecordEvent, out) if e.kind == "instrument_mode"]
    assert (ev.data["from"], ev.data["to"], ev.data["open_positions"]) == ("stock", "leveraged_etf", 1)
    assert core.router.route(signal(ts=NOW)).instrument_type == "leveraged_etf"
    mp = core.pm.by_signal[SIG.signal_id]
    assert (mp.decision.instrument_type, mp.instrument) == ("stock", "QQQ.XNAS")  # the open trade stays
    assert core.on_control(NOW + timedelta(seconds=10)) == []  # nothing new to follow


def test_a_bad_mode_in_control_is_refused_once_and_the_mode_stays():
    core, engine = make_core("stock", follow_control_mode=True)
    engine.mode = "crypto"
    out = core.on_control(NOW)
    assert [e.kind for e in of(c.RecordEvent, out)] == ["instrument_mode_refused"]
    assert core.xconfig.instrument_mode.value == "stock"
    assert of(c.RecordEvent, core.on_control(NOW + timedelta(seconds=5))) == []


def test_backtests_ignore_the_control_mode():
    core, engine = make_core("stock")  # follow_control_mode False (the default)
    engine.mode = "leveraged_etf"
    core.on_control(NOW)
    assert core.xconfig.instrument_mode.value == "stock"


def test_live_buying_power_is_bounded_by_the_brokers_figure():
    core, engine = make_core()
    assert core.account_state(NOW).buying_power == 200_000.0  # a simulated venue: Reg-T 2x equity
    engine.bp = 12_000.0  # the broker says less (cash account, other orders, PDT ...)
    assert core.account_state(NOW).buying_power == 12_000.0
    bar(core, 100.0, T0)
    [rec] = of(c.RecordDecision, core.on_signal(SIG, NOW))
    # 150 shares by the single-name cap, but only 12,000 / 100.10 (price + slippage buffer) fit
    assert rec.record.shares == 119 and rec.record.details["risk"]["buying_power"] == 12_000.0


def test_a_seeded_price_makes_a_fund_tradeable_until_its_first_live_bar():
    core, _ = make_core("leveraged_etf")
    ts = int(T0.timestamp()) * NS
    assert core.seed_price("TQQQ", 50.0, ts - 120 * NS) and core.last_price["TQQQ"] == 50.0
    assert not core.seed_price("TQQQ", 49.0, ts - 180 * NS)  # an older close never overrides
    assert core.minute_due is False  # no decision runs on history
    core.on_bar("TQQQ", "1m", 51.0, 51.0, 51.0, 51.0, 100.0, ts)
    assert not core.seed_price("TQQQ", 48.0, ts + 60 * NS)  # a live bar wins for good
    assert core.last_price["TQQQ"] == 51.0
