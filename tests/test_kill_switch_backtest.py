"""Kill switch and runaway guard inside NautilusTrader's real BacktestEngine (issue #6).

Fixture (hand-computed): one session (Mon 2025-06-16) of QQQ bars at 100.00 flat 09:31-10:00 ET,
then falling 0.10 per minute; SPY flat at 50.00 all session (a second instrument for the rogue
strategy). The replayed signal (long QQQ, conviction 80, entry 100, stop 99, target 102, 10m ->
a day trade) is stamped at the 10:00 close:

  entry: 150 shares (15% single-name cap) at 100.00 + 1 tick = 100.01
  10:05 close 99.50: unrealised (99.50 - 100.01) x 150 = -76.50
  10:06 close 99.40: -91.50
  10:07 close 99.30: -106.50   <- first bar where -106.50 <= -100 (daily_loss_limit 0.1% of 100,000)
  kill-switch exit: market sell at 99.30 - 0.01 = 99.29 -> (99.29 - 100.01) x 150 = -108.00,
  fees on 2025-06-16 (adapters/fees.py schedule): SEC $0.00 per $1M (from 2025-05-14) + TAF
  150 x 0.000166 = 0.0249 -> 0.02 -> pnl -108.02 (the undated $27.80/$1M rate gave 0.44, -108.44)

After the trip the RiskEngine goes REDUCING (the exit passes) then HALTED: no order from any
strategy passes, the executor rejects further signals with `kill_switch`.
"""

from __future__ import annotations

import http.server
import json
import threading
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from nautilus_trader.config import ActorConfig, StrategyConfig
from nautilus_trader.common.actor import Actor
from nautilus_trader.model.data import Bar, BarType
from nautilus_trader.model.enums import OrderSide, TimeInForce
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.model.objects import Quantity
from nautilus_trader.trading.strategy import Strategy

from backtests import catalog_io
from backtests.runner import BacktestSpec, run_backtest
from strategies.cli import main as cli_main
from strategies.journal import ControlStore, TradeJournalWriter
from strategies.risk_control import BROKER_STATUS_TOPIC, BrokerStatus
from tests.test_backtest_e2e import SESSION_OPEN, fixture_signal, signals_catalog, write_bars_csv

T_TRIP = SESSION_OPEN + timedelta(minutes=37)  # 10:07 ET bar close


def at(minutes: int) -> datetime:
    return SESSION_OPEN + timedelta(minutes=minutes)


def ns(dt: datetime) -> int:
    return int(dt.timestamp() * 1e9)


@pytest.fixture
def catalog(tmp_path: Path) -> Path:
    qqq = [100.00] * 30 + [round(100.00 - 0.10 * k, 2) for k in range(1, 61)]
    spy = [50.00] * 90
    cat = tmp_path / "catalog"
    catalog_io.import_files(cat, [write_bars_csv(tmp_path / "QQQ.csv", qqq),
                                  write_bars_csv(tmp_path / "SPY.csv", spy)], tz="UTC", label="open")
    return cat


def two_signals(tmp_path: Path, name: str = "signals") -> Path:
    sigs = [fixture_signal(),
            # would be a fresh entry in SPY at 10:15 if trading were allowed
            fixture_signal(ticker="SPY", timestamp=at(45), entry_price=50.00, stop_loss=49.50,
                           target_price=51.00)]
    path = signals_catalog(tmp_path / name, sigs)
    return path


# ── a second strategy that keeps trying to open positions ────────────────────────────────────
class RogueConfig(StrategyConfig, frozen=True):
    instrument_id: str = "SPY.XNAS"
    minutes: tuple[int, ...] = ()  # minutes after the open at which to send a 1-share market buy
    burst: int = 1


class Rogue(Strategy):
    def __init__(self, config: RogueConfig) -> None:
        super().__init__(config)
        self.sent: list[tuple[int, str]] = []
        self.denied: list[tuple[int, str]] = []
        self.filled: list[tuple[int, str]] = []

    def on_start(self) -> None:
        self.subscribe_bars(BarType.from_str(f"{self.config.instrument_id}-1-MINUTE-LAST-EXTERNAL"))

    def on_bar(self, bar: Bar) -> None:
        minute = (bar.ts_event - ns(SESSION_OPEN)) // 60_000_000_000
        if minute in self.config.minutes:
            for _ in range(self.config.burst):
                order = self.order_factory.market(InstrumentId.from_str(self.config.instrument_id), OrderSide.BUY,
                                                  Quantity.from_int(1), time_in_force=TimeInForce.DAY)
                self.sent.append((bar.ts_event, order.client_order_id.value))
                self.submit_order(order)

    def on_order_denied(self, event) -> None:
        self.denied.append((event.ts_event, event.reason))

    def on_order_filled(self, event) -> None:
        self.filled.append((event.ts_event, event.client_order_id.value))


class ScriptConfig(ActorConfig, frozen=True):
    minute: int = 35
    action: str = "disconnect"  # or "operator_trip"
    db_url: str = ""
    scope: str = ""


class Script(Actor):
    """Does one thing at a given minute: reports the broker disconnected, or trips the latch the
    way the operator CLI does (a write to executor_control)."""

    def on_start(self) -> None:
        self.subscribe_bars(BarType.from_str("QQQ.XNAS-1-MINUTE-LAST-EXTERNAL"))

    def on_bar(self, bar: Bar) -> None:
        if bar.ts_event != ns(at(self.config.minute)):
            return
        if self.config.action == "disconnect":
            self.msgbus.publish(BROKER_STATUS_TOPIC, BrokerStatus(False, bar.ts_event, "alpaca", "socket closed"))
        else:
            store = ControlStore(self.config.db_url, scope=self.config.scope)
            store.activate_kill_switch("manual: operator pressed the button", by="test")
            store.close()


def run(catalog: Path, tmp_path: Path, *, executor: dict, rogue_minutes=(15, 38, 40, 50), extra=None,
        signals: Path | None = None, **spec_kw):
    holder = {}

    def on_engine(engine):
        rogue = Rogue(RogueConfig(strategy_id="ROGUE-001", minutes=tuple(rogue_minutes)))
        engine.add_strategy(rogue)
        holder["rogue"] = rogue
        for actor in extra or ():
            engine.add_actor(actor)

    result = run_backtest(BacktestSpec(
        catalog=catalog, symbols=["QQQ", "SPY"], mode="stock", progress=False, executor=executor,
        signals_catalog=signals or two_signals(tmp_path), **spec_kw), on_engine=on_engine)
    return result, holder["rogue"]


def assert_halted_after(result, rogue, trip: datetime, code: str, *, after_bar_ns: int = 1) -> None:
    """``after_bar_ns``: triggers checked on a bar trip on that minute's step, 1 ns after the bar
    (once every bar of the minute is in); the control poll's timer trips exactly at its time."""
    log = result.log
    kills = [e for e in log.events if e[1] == "kill_switch"]
    assert len(kills) == 1 and kills[0][0] == pd.Timestamp(trip) + pd.Timedelta(after_bar_ns, "ns") \
        and kills[0][2].startswith(code), kills
    states = [e[2].split(":")[0] for e in log.events if e[1] == "trading_state"]
    assert states == ["REDUCING", "HALTED"]
    assert result.summary["trading_state"] == "HALTED"
    # the executor: the SPY signal after the trip is rejected, no entry after the trip
    spy = [d for d in log.decisions if d.ticker == "SPY"]
    assert len(spy) == 1 and not spy[0].approved and spy[0].reason_code == "kill_switch"
    # the second strategy: it traded before the trip, every order after it was denied by Nautilus
    assert [ts for ts, _ in rogue.filled] == [ns(at(15))]
    assert len(rogue.denied) == 3 and all("HALTED" in r for _, r in rogue.denied)
    assert all(ts >= ns(trip) for ts, _ in rogue.denied)


def test_daily_loss_trips_closes_day_trade_and_halts_every_strategy(tmp_path, catalog):
    result, rogue = run(catalog, tmp_path, executor={"daily_loss_limit": 0.001})
    (t,) = result.log.trades
    assert t["exit_reason"] == "kill_switch"
    assert t["exit_time"] == T_TRIP
    assert t["exit_price"] == pytest.approx(99.29)
    assert t["pnl"] == pytest.approx(-108.02, abs=0.005)  # -108.00 - fees 0.02 (docstring)
    assert_halted_after(result, rogue, T_TRIP, "daily_loss_limit")
    (kill,) = [e for e in result.log.events if e[1] == "kill_switch"]
    assert kill[3]["daily_pnl"] == -106.5 and kill[3]["starting_equity"] == 100_000.0


def test_min_equity_trigger(tmp_path, catalog):
    # equity 100,000 - 106.50 = 99,893.50 < 99,900 at 10:07 (10:06: 99,908.50 is still above)
    result, rogue = run(catalog, tmp_path, executor={"min_account_equity": 99_900.0})
    assert_halted_after(result, rogue, T_TRIP, "min_equity")
    assert result.log.trades[0]["exit_reason"] == "kill_switch"


def test_broker_disconnect_trigger(tmp_path, catalog):
    # disconnect reported at 10:05; 10:06 is 60 s of silence (not > 60), 10:07 is 120 s -> trip
    script = Script(ScriptConfig(component_id="SCRIPT-1", minute=35, action="disconnect"))
    result, rogue = run(catalog, tmp_path, executor={}, extra=[script])
    assert_halted_after(result, rogue, T_TRIP, "broker_disconnected")
    assert [e[1] for e in result.log.events][:1] == ["broker_disconnected"]


def test_manual_trigger_from_the_control_table(tmp_path, catalog):
    db = f"sqlite:///{tmp_path / 'j.db'}"
    script = Script(ScriptConfig(component_id="SCRIPT-1", minute=36, action="operator_trip", db_url=db,
                                 scope="paper"))
    # the operator's write lands during the 10:06 bar; the executor polls every 60 s of replay time
    result, rogue = run(catalog, tmp_path, executor={}, extra=[script], db_url=db, control_scope="paper",
                        control_poll_seconds=60)
    kills = [e for e in result.log.events if e[1] == "kill_switch"]
    assert len(kills) == 1 and kills[0][2] == "manual: operator pressed the button"
    trip = kills[0][0]
    assert at(36) <= trip <= at(37)
    assert_halted_after(result, rogue, trip, "manual", after_bar_ns=0)


def test_consecutive_losses_trigger(tmp_path):
    # three stop-outs in a row: each level L is flat 10 bars, the signal comes at the end, then the
    # price falls 0.10/min through the stop L - 1.00 (about -1% per trade, worse than 0.05%).
    closes: list[float] = []
    sigs = []
    level = 100.0
    for k in range(3):
        closes += [level] * 10
        sigs.append(fixture_signal(timestamp=at(len(closes)), entry_price=level, stop_loss=level - 1,
                                   target_price=level + 2, signal_id=f"sig-{k}"))
        closes += [round(level - 0.10 * j, 2) for j in range(1, 12)]
        level = closes[-1]
    closes += [level] * 20
    sigs.append(fixture_signal(timestamp=at(len(closes) - 10), entry_price=level, stop_loss=level - 1,
                               target_price=level + 2, signal_id="sig-after"))
    cat = tmp_path / "catalog"
    catalog_io.import_files(cat, [write_bars_csv(tmp_path / "QQQ.csv", closes)], tz="UTC", label="open")
    result = run_backtest(BacktestSpec(
        catalog=cat, symbols=["QQQ"], mode="stock", progress=False,
        executor={"consecutive_loss_pct": 0.0005, "consecutive_loss_threshold": 3},
        signals_catalog=signals_catalog(tmp_path, sigs)))
    trades = result.log.trades
    assert [t["exit_reason"] for t in trades] == ["stop_loss"] * 3
    assert all(t["pnl_pct"] < -0.0005 for t in trades)
    kills = [e for e in result.log.events if e[1] == "kill_switch"]
    assert len(kills) == 1 and kills[0][2].startswith("consecutive_losses")
    assert kills[0][0] > trades[2]["exit_time"] - timedelta(minutes=1)
    last = [d for d in result.log.decisions if d.signal_id == "sig-after"]
    assert len(last) == 1 and last[0].reason_code == "kill_switch"
    assert result.summary["trading_state"] == "HALTED"


def test_latch_survives_restart_until_operator_resumes(tmp_path, catalog, capsys):
    db = f"sqlite:///{tmp_path / 'j.db'}"
    # run 1 trips (daily loss) and persists the latch under scope "paper"
    r1, _ = run(catalog, tmp_path, executor={"daily_loss_limit": 0.001}, db_url=db, control_scope="paper")
    assert [e[1] for e in r1.log.events].count("kill_switch") == 1
    latch = ControlStore(db, scope="paper").kill_switch()
    assert latch.active and latch.reason.startswith("daily_loss_limit") and latch.activated_at == T_TRIP

    # run 2 = a restart in the same session with a harmless limit: still halted from the start
    sigs = signals_catalog(tmp_path / "s2", [fixture_signal()])
    r2, rogue2 = run(catalog, tmp_path, executor={}, db_url=db, control_scope="paper", signals=sigs)
    assert r2.log.trades == []
    (d,) = r2.log.decisions
    assert d.reason_code == "kill_switch" and "daily_loss_limit" in d.reason
    assert [e[1] for e in r2.log.events][:2] == ["kill_switch_restored", "trading_state"]
    assert rogue2.filled == [] and len(rogue2.denied) == 4  # HALTED from the first bar
    assert r2.summary["trading_state"] == "HALTED"

    # another scope (a different executor) is not affected
    assert not ControlStore(db, scope="other").kill_switch().active

    # the operator: status, a resume without --yes is refused, with --yes it goes through
    assert cli_main(["kill-switch", "status", "--db", db, "--scope", "paper"]) == 0
    out = capsys.readouterr().out
    assert "ACTIVE (trading halted)" in out and "daily_loss_limit" in out
    assert cli_main(["kill-switch", "resume", "--db", db, "--scope", "paper"]) == 2
    assert "--yes" in capsys.readouterr().err
    assert ControlStore(db, scope="paper").kill_switch().active
    assert cli_main(["kill-switch", "resume", "--db", db, "--scope", "paper", "--yes", "--by", "ana"]) == 0
    rec = ControlStore(db, scope="paper").get_record("paper:kill_switch")
    assert rec.updated_by == "cli:ana" and rec.value_json["active"] is False

    # run 3 trades again
    r3, rogue3 = run(catalog, tmp_path, executor={}, db_url=db, control_scope="paper", signals=sigs)
    assert len(r3.log.trades) == 1 and r3.summary["trading_state"] == "ACTIVE"
    assert len(rogue3.filled) == 4

    # the journal has all of it: the event, the daily_pnl row flagged, a backtest_runs row per run
    w = TradeJournalWriter(db, run_id=r1.summary["journal"]["run_id"])
    assert [e.kind for e in w.get_events("kill_switch")] == ["kill_switch"]
    row = w.get_daily_pnl(SESSION_OPEN.date())
    assert row is not None and row.kill_switch_triggered and row.total_trades == 1
    assert row.realized_pnl == pytest.approx(-108.02, abs=0.005)  # -108.00 - fees 0.02 (docstring)
    from sqlalchemy import select

    from strategies.journal.models import BacktestRunRecord

    with w.engine.connect() as c:
        runs = c.execute(select(BacktestRunRecord.run_id, BacktestRunRecord.summary_json)).all()
    assert len(runs) == 3 and all(s["trades"] in (0, 1) for _, s in runs)
    w.close()


def test_operator_trip_cli_and_next_session_reset_of_daily_latch(tmp_path, catalog, capsys):
    db = f"sqlite:///{tmp_path / 'j.db'}"
    assert cli_main(["kill-switch", "trip", "--db", db, "--scope", "desk", "--reason", "news", "--create"]) == 0
    assert "manual: news" in capsys.readouterr().out
    r, rogue = run(catalog, tmp_path, executor={}, db_url=db, control_scope="desk",
                   signals=signals_catalog(tmp_path / "s", [fixture_signal()]))
    assert r.log.trades == [] and r.summary["trading_state"] == "HALTED"
    # a manual latch is not reset by a session open; a daily-loss latch from an earlier session is
    store = ControlStore(db, scope="desk2")
    store.activate_kill_switch("daily_loss_limit: daily P&L -10,001.00 <= -10,000.00",
                               now=SESSION_OPEN - timedelta(days=3))
    store.close()
    r2, rogue2 = run(catalog, tmp_path, executor={}, db_url=db, control_scope="desk2",
                     signals=signals_catalog(tmp_path / "s2", [fixture_signal()]))
    kinds = [e[1] for e in r2.log.events]
    assert kinds[:3] == ["kill_switch_restored", "trading_state", "kill_switch_reset"]
    assert len(r2.log.trades) == 1 and r2.summary["trading_state"] == "ACTIVE"
    assert not ControlStore(db, scope="desk2").kill_switch().active


def test_alert_webhook_receives_the_trip(tmp_path, catalog):
    got: list[dict] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            got.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *a):
            pass

    srv = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        holder = {}

        def on_engine(engine):
            holder["strategy"] = [s for s in engine.trader.strategies()][0]

        url = f"http://127.0.0.1:{srv.server_address[1]}/hook"
        run_backtest(BacktestSpec(catalog=catalog, symbols=["QQQ"], mode="stock", progress=False,
                                  executor={"daily_loss_limit": 0.001}, alert_webhook_url=url,
                                  signals_catalog=signals_catalog(tmp_path, [fixture_signal()])),
                     on_engine=on_engine)
        for t in holder["strategy"].alert_threads:
            t.join(5)
    finally:
        srv.shutdown()
    assert len(got) == 1
    assert got[0]["event"] == "kill_switch" and got[0]["code"] == "daily_loss_limit"
    assert got[0]["daily_pnl"] == -106.5


def test_order_rate_throttle_denies_a_burst_from_any_strategy(tmp_path, catalog):
    # 5 orders in one minute with max_orders_per_minute=2: Nautilus' throttle denies 3
    holder = {}

    def on_engine(engine):
        rogue = Rogue(RogueConfig(strategy_id="ROGUE-001", minutes=(15,), burst=5))
        engine.add_strategy(rogue)
        holder["rogue"] = rogue

    run_backtest(BacktestSpec(catalog=catalog, symbols=["QQQ", "SPY"], mode="stock", progress=False,
                              executor={"max_orders_per_minute": 2},
                              signals_catalog=signals_catalog(tmp_path, [fixture_signal()])), on_engine=on_engine)
    rogue = holder["rogue"]
    assert len(rogue.filled) == 2 and len(rogue.denied) == 3


def test_daily_trade_cap_rejects_the_next_entry(tmp_path, catalog):
    result, _ = run(catalog, tmp_path, executor={"max_daily_trades": 1}, rogue_minutes=())
    spy = [d for d in result.log.decisions if d.ticker == "SPY"]
    assert len(spy) == 1 and spy[0].reason_code == "max_daily_trades"
    assert "1 entries today + 0 pending >= limit 1" in spy[0].reason


def test_trip_cancels_a_working_limit_entry(tmp_path):
    # SPY rises 0.01 a minute from 50.00; a conviction-60 signal at 10:05 (close 50.35) becomes a
    # limit buy at its entry 50.20 (clouds still warming up): never reached. The QQQ loss trips the
    # daily-loss switch at 10:07 and the working SPY limit is cancelled; nothing fills afterwards.
    qqq = [100.00] * 30 + [round(100.00 - 0.10 * k, 2) for k in range(1, 61)]
    spy = [round(50.00 + 0.01 * k, 2) for k in range(90)]
    cat = tmp_path / "catalog"
    catalog_io.import_files(cat, [write_bars_csv(tmp_path / "QQQ.csv", qqq),
                                  write_bars_csv(tmp_path / "SPY.csv", spy)], tz="UTC", label="open")
    sigs = [fixture_signal(),
            fixture_signal(ticker="SPY", timestamp=at(35), conviction=60, entry_price=50.20, stop_loss=49.70,
                           target_price=51.20)]
    result = run_backtest(BacktestSpec(catalog=cat, symbols=["QQQ", "SPY"], mode="stock", progress=False,
                                       executor={"daily_loss_limit": 0.001, "limit_entry_expire_bars": 100},
                                       signals_catalog=signals_catalog(tmp_path, sigs)))
    spy_d = [d for d in result.log.decisions if d.ticker == "SPY"]
    assert len(spy_d) == 1 and spy_d[0].approved and spy_d[0].details["entry"]["limit_price"] == 50.20
    failed = [e for e in result.log.events if e[1] == "entry_failed"]
    assert len(failed) == 1 and failed[0][0] == pd.Timestamp(T_TRIP) + pd.Timedelta(1, "ns") \
        and "canceled" in failed[0][2]
    assert [t["ticker"] for t in result.log.trades] == ["QQQ"]
    assert result.log.open_trades == {} and result.summary["trading_state"] == "HALTED"


def test_mode_cli_sets_the_live_instrument_mode(tmp_path, capsys):
    db = f"sqlite:///{tmp_path / 'c.db'}"
    assert cli_main(["mode", "show", "--db", db]) == 0
    assert "not set" in capsys.readouterr().out
    assert cli_main(["mode", "set", "leveraged_etf", "--db", db, "--by", "ana"]) == 0
    assert ControlStore(db).instrument_mode() == "leveraged_etf"
    with pytest.raises(SystemExit) as e:  # --mode lists its choices: argparse refuses it (issue #17)
        cli_main(["mode", "set", "crypto", "--db", db])
    assert e.value.code == 2
    assert "invalid choice: 'crypto'" in capsys.readouterr().err
    assert ControlStore(db).instrument_mode() == "leveraged_etf"
