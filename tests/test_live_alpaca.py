"""`trade-executor live` end to end: the real TradingNode with the Alpaca adapter, the signal actor
and the executor strategy, against the local Alpaca-protocol server (127.0.0.1, random ports).

Bars streamed by the server -> AlpacaDataClient -> SignalActor -> TradeSignal on the bus ->
ExecutorStrategy -> AlpacaExecutionClient -> the server's matching engine -> trade_updates ->
fills -> journal (SQLite). The executor runs on a 24/7 calendar because the test runs at whatever
hour the machine is at; everything else is the production wiring of `strategies.live`.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import create_engine, select

from adapters.alpaca.fake_server import FakeAlpacaServer
from strategies.journal.models import ExecutorEventRecord, SignalDecisionRecord, TradeExecutionRecord
from strategies.live import LiveSpec, build_live_node
from tests.test_pipeline_nautilus import crafted_flip_closes
from tests.node_harness import drive, until

pytestmark = pytest.mark.slow  # whole runs (engines, nodes, processes): not in the fast loop

KEY, SECRET = "PKLIVETEST", "live-test-secret"


def run_live(spec: LiveSpec, scenario, timeout: float = 60.0):
    loop = asyncio.new_event_loop()
    live = build_live_node(spec, loop=loop)
    try:
        drive(live.node, loop, lambda: live.strategy.is_running, lambda: scenario(live), timeout)
    finally:
        live.node.dispose()
        live.journal.close()
        live.control.close()
        if not loop.is_closed():
            loop.close()
    return live


def bar_dicts(closes: list[float], end: datetime) -> list[dict]:
    start = end - timedelta(minutes=len(closes))
    out, prev = [], closes[0]
    for i, c in enumerate(closes):
        o = prev
        out.append({"t": start + timedelta(minutes=i), "o": o, "h": round(max(o, c) + 0.02, 2),
                    "l": round(min(o, c) - 0.02, 2), "c": c, "v": 10_000})
        prev = c
    return out


async def stream_until_entry(srv, strat, bars: list[dict]):
    """Stream ``bars`` one by one, as the market would, until the executor has an entry order;
    returns its managed position and how many bars were pushed."""
    pushed = 0
    for b in bars:
        srv.push_bar("QQQ", b)
        pushed += 1
        await asyncio.sleep(0.02)
        if any(mp.entry_orders for mp in strat.pm.by_signal.values()):
            break
    mp = await until(lambda: next((m for m in strat.pm.by_signal.values() if m.entry_orders), None),
                     what="an entry order")
    return mp, pushed


async def enter_with_resting_stop(srv, strat, bars: list[dict]):
    """Stream ``bars`` one by one, as the market would, until the executor sends an entry; then
    one bar trades through the entry's limit (or simply trades, for a market order). Returns the
    managed position once it is filled and its stop rests at the broker, the last bar's time and
    the fill level."""
    mp, pushed = await stream_until_entry(srv, strat, bars)
    oid = next(iter(mp.entry_orders))
    await until(lambda: _has(srv, oid), what="the entry at the broker")
    last, t = bars[pushed - 1]["c"], bars[pushed - 1]["t"]
    px = mp.plan.limit_price if mp.plan.limit_price is not None else last
    srv.push_bar("QQQ", {"t": t + timedelta(minutes=1), "o": last, "h": max(last, px) + 0.02,
                         "l": round(px - 0.05, 2), "c": round(px + 0.01, 2), "v": 10_000})
    await until(lambda: mp.position is not None and mp.open_qty == mp.plan.first_shares
                and mp.stop_order_id is not None and _has(srv, mp.stop_order_id)
                and srv.order(mp.stop_order_id)["status"] in ("new", "accepted"), what="fill + resting stop")
    return mp, t, px


def test_live_paper_signal_order_fill_stop_journal(tmp_path):
    db = f"sqlite:///{tmp_path / 'live.db'}"
    closes = crafted_flip_closes()  # a rise, a dip that flips the fast cloud, a rise: signals
    now_min = datetime.now(timezone.utc).replace(second=0, microsecond=0)
    bars = bar_dicts(closes, now_min)
    with FakeAlpacaServer(keys={KEY: SECRET}, id_seed=11) as srv:
        srv.add_position("AAPL", 10, 190.0)  # at the broker before start-up: reconciled, not ours
        spec = LiveSpec(symbols=["QQQ"], db_url=db, api_key=KEY, api_secret=SECRET,
                        trading_url=srv.trading_url, trading_stream_url=srv.stream_url, data_url=srv.data_url,
                        data_stream_url=srv.data_stream_url, calendar="24/7", log_level="ERROR",
                        # the test runs at any hour: shrink the 24/7 day's EOD window to a minute;
                        # its bars are stamped over the last few hours and pushed in seconds, so
                        # their signals would be stale (stale_signal) without a longer age limit
                        executor={"eod_minutes_before_close": 1, "max_signal_age_seconds": 86_400},
                        control_poll_seconds=1.0)
        seen: dict = {}

        async def scenario(live):
            strat = live.strategy
            # reconciliation: the pre-existing AAPL position is in Nautilus' cache
            await until(lambda: any(p.instrument_id.value == "AAPL.ALPACA"
                                    for p in live.node.cache.positions_open()), what="reconciled AAPL")
            mp, t, px = await enter_with_resting_stop(srv, strat, bars)
            seen["entry"] = (mp.signal_id, mp.plan.tactic, mp.open_qty, mp.stop_loss)
            # a sharp drop through the stop: the stop resting at the broker fires
            low = round(mp.stop_loss - 1.0, 2)
            srv.push_bar("QQQ", {"t": t + timedelta(minutes=2), "o": px, "h": px, "l": low,
                                 "c": round(low + 0.1, 2), "v": 10_000})
            await until(lambda: mp.closed, what="the round trip to close")
            seen["submitted_ns"] = _submitted_ns(live, mp)

        run_live(spec, scenario)
        broker_orders = srv.orders()
        fills = srv.activities(["FILL"])

    eng = create_engine(db)
    with eng.connect() as c:
        decisions = c.execute(select(SignalDecisionRecord).where(SignalDecisionRecord.run_id == "live")).all()
        trades = c.execute(select(TradeExecutionRecord).where(TradeExecutionRecord.run_id == "live")).all()
        kinds = c.execute(select(ExecutorEventRecord.kind)).scalars().all()
    signal_id, tactic, qty, stop = seen["entry"]
    (d,) = [d for d in decisions if d.signal_id == signal_id]
    assert d.approved and d.shares >= qty
    (t,) = trades
    assert t.signal_id == signal_id and t.status == "closed" and t.exit_reason == "stop_loss" and t.shares == qty
    assert t.broker == "alpaca" and t.stop_loss == pytest.approx(stop)
    # the journal agrees with the broker's fills, and every order is there exactly once
    by_coid = {o["client_order_id"]: o for o in broker_orders}
    assert len(by_coid) == len(broker_orders)
    entry = by_coid[t.order_id]
    assert t.metadata_json["exit_order_id"] is None  # closed by the resting stop, not by us
    entry_fills = [f for f in fills if f["order_id"] == entry["id"]]
    assert t.entry_price == pytest.approx(float(entry_fills[0]["price"])) and sum(float(f["qty"]) for f in entry_fills) == qty
    stops = [o for o in broker_orders if o["type"] == "stop" and o["status"] == "filled"]
    assert len(stops) == 1 and float(stops[0]["stop_price"]) == pytest.approx(round(stop, 2))
    stop_fill = [f for f in fills if f["order_id"] == stops[0]["id"]]
    assert t.exit_price == pytest.approx(float(stop_fill[0]["price"]))
    assert "kill_switch" not in kinds
    # latency inside the node: the signal handled (decision time) -> the entry's OrderSubmitted
    latency_ms = (seen["submitted_ns"] - int(d.ts.timestamp() * 1e9)) / 1e6
    assert 0 <= latency_ms < 1_000
    print(f"signal -> order submitted inside the node: {latency_ms:.2f} ms ({tactic})")


def _has(srv, coid: str) -> bool:
    return any(o["client_order_id"] == coid for o in srv.orders())


def _submitted_ns(live, mp) -> int:
    from nautilus_trader.model.identifiers import ClientOrderId

    order = live.node.cache.order(ClientOrderId(mp.entry_order_id))
    return next(e.ts_event for e in order.events if type(e).__name__ == "OrderSubmitted")


def test_stopping_the_node_cancels_its_working_entry_and_sends_nothing_after(tmp_path):
    """The node stops while its limit entry works at the broker: the entry is cancelled there
    (nothing may open while nobody manages it), the journal says so, and no order reaches the
    broker after the stop began."""
    db = f"sqlite:///{tmp_path / 'live.db'}"
    bars = bar_dicts(crafted_flip_closes(), datetime.now(timezone.utc).replace(second=0, microsecond=0))
    seen: dict = {}
    with FakeAlpacaServer(keys={KEY: SECRET}, id_seed=13) as srv:
        spec = LiveSpec(symbols=["QQQ"], db_url=db, api_key=KEY, api_secret=SECRET, trading_url=srv.trading_url,
                        trading_stream_url=srv.stream_url, data_url=srv.data_url,
                        data_stream_url=srv.data_stream_url, calendar="24/7", log_level="ERROR",
                        executor={"eod_minutes_before_close": 1, "max_signal_age_seconds": 86_400,
                                  "high_conviction_order_type": "limit"},  # every entry a limit
                        control_poll_seconds=1.0)

        async def scenario(live):
            strat = live.strategy
            mp, _pushed = await stream_until_entry(srv, strat, bars)
            oid = next(iter(mp.entry_orders))
            await until(lambda: _has(srv, oid) and srv.order(oid)["status"] in ("new", "accepted"),
                        what="the entry working at the broker")
            seen.update(oid=oid, signal_id=mp.signal_id, n_orders=len(srv.orders()))

        run_live(spec, scenario)
        entry = srv.order(seen["oid"])
        orders = srv.orders()
    assert entry["status"] in ("canceled", "pending_cancel")
    assert len(orders) == seen["n_orders"]  # nothing new after the stop began
    eng = create_engine(db)
    with eng.connect() as c:
        events = c.execute(select(ExecutorEventRecord.kind, ExecutorEventRecord.message)).all()
    assert any(k == "entry_cancelled" and "stopping" in m and seen["signal_id"] in m for k, m in events)


def test_live_refuses_a_real_money_account_without_explicit_opt_in(tmp_path, capsys, monkeypatch):
    from strategies.cli import main

    monkeypatch.setenv("ALPACA_API_KEY", "AKLIVEKEY")
    monkeypatch.setenv("ALPACA_API_SECRET", "not-a-real-secret")
    db = f"sqlite:///{tmp_path / 'x.db'}"
    assert main(["live", "--symbols", "QQQ", "--db", db, "--live-account"]) == 2
    err = capsys.readouterr().err
    assert "REAL MONEY" in err and "--live-account --allow-live" in err
    assert "not-a-real-secret" not in err
    assert main(["live", "--symbols", "QQQ", "--db", db, "--alpaca-url", "https://api.alpaca.markets"]) == 2
    assert "REAL MONEY" in capsys.readouterr().err
    assert not (tmp_path / "x.db").exists()  # refused before anything was touched
    assert main(["live", "--broker", "ibkr", "--symbols", "QQQ"]) == 2
    assert "not wired" in capsys.readouterr().err


def test_restart_takes_over_the_open_position_and_its_resting_stop(tmp_path):
    """Node 1 enters and rests its stop at the broker, then stops (a restart, or a crash after the
    fill). Node 2 on the same journal takes the position over: the stop is found at the broker,
    and the strategy's own exits work again (a bar through the target closes it)."""
    db = f"sqlite:///{tmp_path / 'live.db'}"
    bars = bar_dicts(crafted_flip_closes(), datetime.now(timezone.utc).replace(second=0, microsecond=0))
    seen: dict = {}
    with FakeAlpacaServer(keys={KEY: SECRET}, id_seed=12) as srv:
        def spec() -> LiveSpec:
            return LiveSpec(symbols=["QQQ"], db_url=db, api_key=KEY, api_secret=SECRET, trading_url=srv.trading_url,
                            trading_stream_url=srv.stream_url, data_url=srv.data_url,
                            data_stream_url=srv.data_stream_url, calendar="24/7", log_level="ERROR",
                            executor={"eod_minutes_before_close": 1, "max_signal_age_seconds": 86_400},
                            control_poll_seconds=1.0)

        async def first(live):
            mp, t, px = await enter_with_resting_stop(srv, live.strategy, bars)
            seen.update(signal_id=mp.signal_id, stop=mp.stop_order_id, qty=mp.open_qty, t=t, px=px,
                        target=mp.target_price)

        run_live(spec(), first)
        assert srv.order(seen["stop"])["status"] in ("new", "accepted")  # still resting at the broker

        async def second(live):
            strat = live.strategy
            mp = await until(lambda: strat.pm.by_signal.get(seen["signal_id"]), what="the restored position")
            assert mp.stop_order_id == seen["stop"] and mp.open_qty == seen["qty"]
            up = round(seen["target"] + 0.5, 2)
            # the market trades above the target (a bar a "minute" until the new node's market-data
            # subscription is live and the strategy acts on one)
            for k in range(2, 200):
                srv.push_bar("QQQ", {"t": seen["t"] + timedelta(minutes=k), "o": up, "h": up + 0.02,
                                     "l": up - 0.02, "c": up, "v": 10_000})
                await asyncio.sleep(0.1)
                if mp.closed:  # (the exit market order fills on a later bar)
                    break
            await until(lambda: mp.closed, what="the restored position to close")

        run_live(spec(), second)
        stop_status = srv.order(seen["stop"])["status"]
        positions = srv.positions()

    eng = create_engine(db)
    with eng.connect() as c:
        (t,) = c.execute(select(TradeExecutionRecord).where(TradeExecutionRecord.run_id == "live")).all()
        kinds = c.execute(select(ExecutorEventRecord.kind)).scalars().all()
    assert t.signal_id == seen["signal_id"] and t.status == "closed" and t.exit_reason == "profit_target"
    assert t.shares == seen["qty"] and "position_restored" in kinds
    assert stop_status == "canceled" and positions == []  # the stop was withdrawn first; flat at the broker


def test_live_node_uses_the_mode_chosen_in_executor_control(tmp_path):
    from strategies.journal import ControlStore, upgrade

    db = f"sqlite:///{tmp_path / 'm.db'}"
    upgrade(db)
    ControlStore(db).set_instrument_mode("leveraged_etf", by="dashboard")
    with FakeAlpacaServer(keys={KEY: SECRET}) as srv:
        loop = asyncio.new_event_loop()
        live = build_live_node(LiveSpec(symbols=["QQQ"], db_url=db, api_key=KEY, api_secret=SECRET,
                                        trading_url=srv.trading_url, trading_stream_url=srv.stream_url,
                                        data_url=srv.data_url, data_stream_url=srv.data_stream_url,
                                        log_level="ERROR"), loop=loop)
        try:
            assert live.strategy.xconfig.instrument_mode.value == "leveraged_etf"
            assert live.strategy.config.broker_name == "alpaca" and live.strategy.config.venue == "ALPACA"
        finally:
            live.node.dispose()
            live.journal.close()
            live.control.close()
            loop.close()
