"""Live trading in leveraged-ETF mode, and a mode change without a restart (issue #14 items 1, 3).

The real TradingNode (strategies.live) against the local Alpaca-protocol server: the node loads
and follows the leveraged funds the router can pick for its symbols, a QQQ signal becomes a TQQQ
order with its stop in the fund's prices resting at the broker, and `trade-executor mode set`
(executor_control) switches the next entry to another instrument while the open fund position
stays as it is. Signals are published on the message bus as the signal actor would (stamped by
the engine clock), so each case is one signal, deterministic at any hour.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import create_engine, select

from adapters.alpaca.fake_server import FakeAlpacaServer
from strategies.journal import ControlStore, upgrade
from strategies.journal.models import ExecutorEventRecord, SignalDecisionRecord, TradeExecutionRecord
from strategies.live import LiveSpec
from strategies.signal_data import TRADE_SIGNAL_DATA_TYPE, TradeSignalData
from tests.builders import signal
from tests.node_harness import until
from tests.test_live_alpaca import KEY, SECRET, run_live

pytestmark = pytest.mark.slow


def publish_signal(live, ticker: str, entry: float, stop: float, target: float):
    """A 1-minute (scalp) signal, conviction 80 with volume: a market entry, stamped now."""
    now = live.node.kernel.clock.utc_now()
    sig = signal(ticker, "long", entry=entry, stop=stop, target=target, timeframe="1m", conviction=80, ts=now)
    ns = live.node.kernel.clock.timestamp_ns()
    live.strategy.msgbus.publish(topic=f"data.{TRADE_SIGNAL_DATA_TYPE.topic}",
                                 msg=TradeSignalData.from_signal(sig, ns, ns))
    return sig


def push(srv, sym: str, close: float, t) -> None:
    srv.push_bar(sym, {"t": t, "o": close, "h": round(close + 0.02, 2), "l": round(close - 0.02, 2),
                       "c": close, "v": 10_000})


def broker_order(srv, symbol: str, type_: str):
    return next((o for o in srv.orders() if o["symbol"] == symbol and o["type"] == type_), None)


def test_leveraged_etf_mode_live_then_a_mode_switch_changes_the_next_entry_only(tmp_path):
    db = f"sqlite:///{tmp_path / 'modes.db'}"
    upgrade(db)
    seen: dict = {}
    with FakeAlpacaServer(keys={KEY: SECRET}, id_seed=21) as srv:
        spec = LiveSpec(symbols=["QQQ", "SPY"], mode="leveraged_etf", db_url=db, api_key=KEY, api_secret=SECRET,
                        trading_url=srv.trading_url, trading_stream_url=srv.stream_url, data_url=srv.data_url,
                        data_stream_url=srv.data_stream_url, calendar="24/7", log_level="ERROR",
                        executor={"eod_minutes_before_close": 1}, control_poll_seconds=0.5, warmup=False)

        async def scenario(live):
            strat = live.strategy
            # the node follows the funds the router can pick for QQQ and SPY (any mode)
            seen["followed"] = sorted(strat.config.symbols)
            clock = live.node.kernel.clock
            t = clock.utc_now().replace(second=0, microsecond=0) - timedelta(minutes=1)
            for k in range(30):  # bars until every subscription is live and priced
                for sym, px in (("QQQ", 100.0), ("TQQQ", 50.0), ("SPY", 500.0)):
                    push(srv, sym, px, t)
                await asyncio.sleep(0.1)
                if all(s in strat.core.last_bar for s in ("QQQ", "TQQQ", "SPY")):  # live bars
                    break
            await until(lambda: all(s in strat.core.last_bar for s in ("QQQ", "TQQQ", "SPY")), what="live bars")
            sig = publish_signal(live, "QQQ", 100.0, 99.0, 102.0)
            entry = await until(lambda: broker_order(srv, "TQQQ", "market"), what="the TQQQ entry at the broker")
            mp = strat.pm.by_signal[sig.signal_id]
            for k in range(1, 40):  # the market order fills on the fund's next bar
                push(srv, "TQQQ", 50.0, t + timedelta(minutes=k))
                await asyncio.sleep(0.1)
                if mp.stop_order_id is not None and broker_order(srv, "TQQQ", "stop"):
                    break
            stop = await until(lambda: broker_order(srv, "TQQQ", "stop"), what="the fund's stop at the broker")
            seen.update(entry=entry, stop=stop, mp_qty=mp.open_qty, mp_type=mp.decision.instrument_type)

            ControlStore(db).set_instrument_mode("stock", by="test-operator")
            await until(lambda: strat.xconfig.instrument_mode.value == "stock", what="the mode switch")
            sig2 = publish_signal(live, "SPY", 500.0, 495.0, 510.0)
            seen["spy_entry"] = await until(lambda: broker_order(srv, "SPY", "market"), what="the SPY entry")
            seen["open_after_switch"] = (mp.decision.ticker, mp.open_qty, mp.closed)
            seen["sig2"] = sig2.signal_id
            seen["fund_stop_status"] = srv.order(stop["client_order_id"])["status"]

        run_live(spec, scenario, timeout=90.0)
        fills = srv.activities(["FILL"])

    assert {"TQQQ", "SQQQ", "SPXL", "SPXS"} <= set(seen["followed"])
    entry, stop = seen["entry"], seen["stop"]
    assert entry["side"] == "buy" and seen["mp_type"] == "leveraged_etf"
    # stop in the fund's prices: a 1 % stop on QQQ is 3 % on the 3x fund bought at 50
    assert float(stop["stop_price"]) == pytest.approx(48.5) and stop["side"] == "sell"
    assert float(stop["qty"]) == seen["mp_qty"]
    # the switch changed the next entry (SPY itself, not SPXL) but not the open fund position
    assert seen["spy_entry"]["side"] == "buy"
    assert seen["open_after_switch"] == ("TQQQ", seen["mp_qty"], False)
    assert seen["fund_stop_status"] in ("new", "accepted")
    eng = create_engine(db)
    with eng.connect() as c:
        events = c.execute(select(ExecutorEventRecord.kind, ExecutorEventRecord.data_json)
                           .where(ExecutorEventRecord.kind == "instrument_mode")).all()
        decisions = {d.signal_id: d for d in c.execute(select(SignalDecisionRecord)).all()}
        trades = c.execute(select(TradeExecutionRecord)).all()
    ((_, data),) = events
    assert (data["from"], data["to"], data["by"], data["open_positions"]) == ("leveraged_etf", "stock", "operator", 1)
    assert decisions[seen["sig2"]].instrument == "SPY" and decisions[seen["sig2"]].instrument_type == "stock"
    # journal = broker fills: the fund's open row carries the broker's fill
    (fund_row,) = [t for t in trades if t.ticker == "TQQQ"]
    tqqq_fills = [f for f in fills if f["symbol"] == "TQQQ"]
    assert fund_row.status == "open" and fund_row.shares == sum(int(float(f["qty"])) for f in tqqq_fills)
    assert fund_row.entry_price == pytest.approx(float(tqqq_fills[0]["price"]))


def test_a_fund_is_priced_from_history_before_its_first_live_bar(tmp_path):
    """A signal in the node's first minute: the fund has no live bar yet, its recent history
    (the broker's bars endpoint) prices it, and the entry goes to the fund at once."""
    db = f"sqlite:///{tmp_path / 'seed.db'}"
    seen: dict = {}
    with FakeAlpacaServer(keys={KEY: SECRET}, id_seed=22) as srv:
        from datetime import datetime, timezone

        t0 = datetime.now(timezone.utc).replace(second=0, microsecond=0)
        srv.set_bars("TQQQ", [{"t": t0 - timedelta(minutes=k), "o": 50.0, "h": 50.1, "l": 49.9,
                               "c": 50.0 + 0.01 * (10 - k), "v": 1_000} for k in range(10, 0, -1)])
        spec = LiveSpec(symbols=["QQQ"], mode="leveraged_etf", db_url=db, api_key=KEY, api_secret=SECRET,
                        trading_url=srv.trading_url, trading_stream_url=srv.stream_url, data_url=srv.data_url,
                        data_stream_url=srv.data_stream_url, calendar="24/7", log_level="ERROR",
                        executor={"eod_minutes_before_close": 1}, control_poll_seconds=0.5, warmup=False)

        async def scenario(live):
            strat = live.strategy
            await until(lambda: "TQQQ" in strat.last_price, what="the fund's seeded price")
            seen["seeded"] = strat.last_price["TQQQ"]
            for _ in range(30):
                push(srv, "QQQ", 100.0, t0 - timedelta(minutes=1))
                await asyncio.sleep(0.1)
                if "QQQ" in strat.core.last_bar:
                    break
            publish_signal(live, "QQQ", 100.0, 99.0, 102.0)
            seen["entry"] = await until(lambda: broker_order(srv, "TQQQ", "market"), what="the TQQQ entry")
            seen["live_bars"] = "TQQQ" in strat.core.last_bar

        run_live(spec, scenario, timeout=60.0)
    assert seen["seeded"] == pytest.approx(50.09)  # the latest historical close (t0 - 1 min)
    assert seen["entry"]["side"] == "buy" and seen["live_bars"] is False
