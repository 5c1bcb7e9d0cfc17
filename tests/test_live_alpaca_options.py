"""Live options mode end to end: the real TradingNode (``strategies.live``) in ``options`` mode
against the local Alpaca-protocol server.

Option chain at the broker (``GET /v2/options/contracts``) -> AlpacaDataClient loads the contracts
around QQQ's last price and streams the ATM strikes' quotes from the options feed
(``/v1beta1/indicative``, msgpack), seeded by ``/v1beta1/options/quotes/latest`` -> QQQ bars ->
a scalp signal -> the executor picks the contract (ATM, 0DTE before the cut-off) -> market buy at
the ask -> the executor's own stop on QQQ's bars -> market sell at the bid -> journal rows equal
the broker's fills, fees per contract as ``adapters.fees`` charges them in a backtest.

The second test holds a 0DTE contract into QQQ's cut-off on a placed, compressed clock
(libfaketime, ``tests/options_cutoff_session.py``): sold at 15:29 ET, a minute before 15:30.

The first test's executor and the server's option expiry run on a 24/7 calendar (sessions 00:00-24:00 UTC,
``option_calendar="24/7"``) because the test runs at whatever hour the machine is at.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import create_engine, select

from adapters.alpaca.fake_server import FakeAlpacaServer
from adapters.fees import fill_fees
from strategies.journal.models import FillRecord, TradeExecutionRecord
from strategies.live import LiveSpec
from strategies.trade_executor.options_pricing import atm_strike, occ_symbol, select_contract
from tests.node_harness import until
from tests.test_live_alpaca import KEY, SECRET, bar_dicts, run_live
from tests.test_pipeline_nautilus import crafted_flip_closes

pytestmark = pytest.mark.slow  # whole nodes against the local server (14 s and 33 s)

STRIKES = range(95, 113)


def _ask(strike: int, kind: str, days: int) -> float:
    """A distinct ask per contract, so the fill price names the contract it came from."""
    return round(1.00 + 0.01 * strike + (0.07 if kind == "call" else 0.0) + 0.10 * days, 2)


@pytest.mark.parametrize("mode", ["options", "both"])  # both: scalps are options there too
def test_live_options_scalp_buys_the_atm_contract_at_the_ask_and_sells_it_at_the_bid(tmp_path, mode):
    db = f"sqlite:///{tmp_path / 'live.db'}"
    closes = crafted_flip_closes()  # QQQ ~100-105: a rise, a dip, a rise -> a 1m bullish flip (scalp)
    now_min = datetime.now(timezone.utc).replace(second=0, microsecond=0)
    bars = bar_dicts(closes, now_min)
    today = now_min.date()
    asks: dict[str, float] = {}
    seen: dict = {}
    with FakeAlpacaServer(keys={KEY: SECRET}, id_seed=21, option_calendar="24/7") as srv:
        for days in range(3):  # today's (0DTE on the 24/7 calendar) and the next two UTC days
            for c in srv.generate_option_chain("QQQ", [today + timedelta(days=days)], STRIKES):
                ask = _ask(int(float(c["strike_price"])), c["type"], days)
                srv.set_quote(c["symbol"], bid=round(ask - 0.04, 2), ask=ask)
                asks[c["symbol"]] = ask
        srv.push_trade("QQQ", closes[0])  # the last price the chain is centred on at connect
        spec = LiveSpec(symbols=["QQQ"], mode=mode, db_url=db, api_key=KEY, api_secret=SECRET,
                        trading_url=srv.trading_url, trading_stream_url=srv.stream_url, data_url=srv.data_url,
                        data_stream_url=srv.data_stream_url, calendar="24/7", log_level="ERROR",
                        executor={"eod_minutes_before_close": 1, "max_signal_age_seconds": 86_400},
                        control_poll_seconds=1.0)

        async def scenario(live):
            strat, cache = live.strategy, live.node.cache
            from nautilus_trader.model.identifiers import InstrumentId

            # at connect: the chain around 100.00 is in the cache, ATM quotes streamed / seeded
            atm = occ_symbol("QQQ", today, "call", 100.0)
            if select_contract("QQQ", 100.0, "long", datetime.now(timezone.utc), "24/7",
                               min_minutes_before_cutoff=15).expiry == today:
                iid = InstrumentId.from_str(f"{atm}.ALPACA")
                await until(lambda: cache.instrument(iid) is not None and cache.quote_tick(iid) is not None,
                            what="the ATM contract and its quote in the cache")
                seen["seeded_ask"] = cache.quote_tick(iid).ask_price.as_double()
            mp, last_t = None, None
            for b in bars:
                srv.push_bar("QQQ", b)
                last_t = b["t"]
                await asyncio.sleep(0.02)
                mp = next((m for m in strat.pm.by_signal.values() if m.decision.instrument_type == "option"), None)
                if mp is not None:
                    break
            assert mp is not None, "no option entry from the scalp signals"
            await until(lambda: mp.position is not None and mp.open_qty > 0, what="the option entry fill")
            seen.update(symbol=mp.decision.ticker, qty=mp.open_qty, signal=mp.signal, decision_meta=dict(
                mp.decision.etf_metadata), entry_time=datetime.now(timezone.utc))
            # the contract's quote moves; then QQQ closes through the signal's stop: the executor's
            # own stop (no venue stop for options) sells at market, at the bid
            srv.set_quote(mp.decision.ticker, bid=1.50, ask=1.56)
            held = InstrumentId.from_str(f"{mp.decision.ticker}.ALPACA")
            await until(lambda: cache.quote_tick(held).bid_price.as_double() == 1.50,
                        what="the new quote over the options websocket")
            low = round(mp.signal.stop_loss - 1.0, 2)
            for k in range(1, 40):
                srv.push_bar("QQQ", {"t": last_t + timedelta(minutes=k), "o": low + 0.5, "h": low + 0.6,
                                     "l": low - 0.1, "c": low, "v": 10_000})
                await asyncio.sleep(0.1)
                if mp.closed:
                    break
            await until(lambda: mp.closed, what="the option position to close")
            seen["exit_reason"] = mp.exit_reason

        run_live(spec, scenario)
        orders = srv.orders()
        fills = srv.activities(["FILL"])
        fee_acts = srv.activities(["FEE"])
        positions = srv.positions()

    symbol, qty, signal = seen["symbol"], seen["qty"], seen["signal"]
    # the contract the backtest's rule picks: ATM call (long scalp) on the signal's price, 0DTE
    # while 15+ minutes remain before QQQ's 15:30-equivalent cut-off (23:30 UTC on 24/7), else the next day
    assert signal.direction == "long" and signal.trade_type == "scalp"
    expiry = datetime.strptime(symbol[3:9], "%y%m%d").date()
    assert symbol == occ_symbol("QQQ", expiry, "call", atm_strike(signal.entry_price, 1.0, "call"))
    assert expiry in (today, today + timedelta(days=1))
    assert seen["decision_meta"]["ask"] == asks[symbol]
    if "seeded_ask" in seen:
        assert seen["seeded_ask"] == asks[occ_symbol("QQQ", today, "call", 100.0)]

    # the broker: one market buy filled at the ask, one market sell filled at the bid, flat after
    mine = [o for o in orders if o["symbol"] == symbol]
    assert [(o["side"], o["type"], o["time_in_force"], o["status"]) for o in mine] == [
        ("buy", "market", "day", "filled"), ("sell", "market", "day", "filled")]
    assert not any(o["type"] in ("stop", "stop_limit") for o in orders)  # Alpaca: no stop for options
    buy_fills = [f for f in fills if f["order_id"] == mine[0]["id"]]
    sell_fills = [f for f in fills if f["order_id"] == mine[1]["id"]]
    assert [(Decimal(f["price"]), int(Decimal(f["qty"]))) for f in buy_fills] == [(Decimal(str(asks[symbol])), qty)]
    assert [(Decimal(f["price"]), int(Decimal(f["qty"]))) for f in sell_fills] == [(Decimal("1.50"), qty)]
    assert positions == []

    # fees per contract, as the backtest charges them (adapters.fees, by the fill's New York date)
    def expected_fee(side: str, price: str, ts: str) -> float:
        when = datetime.fromisoformat(ts.replace("Z", "+00:00"))
        from zoneinfo import ZoneInfo

        return fill_fees(side, qty, Decimal(price), when.astimezone(ZoneInfo("America/New_York")).date(),
                         option=True, option_broker="alpaca", multiplier=100)

    buy_fee = expected_fee("buy", buy_fills[0]["price"], buy_fills[0]["transaction_time"])
    sell_fee = expected_fee("sell", sell_fills[0]["price"], sell_fills[0]["transaction_time"])
    assert buy_fee == pytest.approx(round(qty * (0.02685 + 0.02), 2))  # ORF + OCC per contract
    assert sell_fee >= round(qty * (0.02685 + 0.02 + 0.00279), 2) - 0.01  # + options TAF (+ SEC)
    broker_fees = sorted(-float(a["net_amount"]) for a in fee_acts if a["symbol"] == symbol)
    assert broker_fees == sorted([buy_fee, sell_fee])

    # the journal: one closed option trade and its two fills, equal to the broker's
    eng = create_engine(db)
    with eng.connect() as c:
        (t,) = c.execute(select(TradeExecutionRecord).where(TradeExecutionRecord.run_id == "live")).all()
        jfills = c.execute(select(FillRecord).where(FillRecord.ticker == symbol)).all()
    assert (t.ticker, t.instrument_type, t.original_ticker, t.shares, t.status) == (symbol, "option", "QQQ", qty,
                                                                                  "closed")
    assert t.entry_price == pytest.approx(asks[symbol]) and t.exit_price == pytest.approx(1.50)
    assert t.exit_reason == seen["exit_reason"] == "stop_loss"
    assert sorted((f.side, f.quantity, f.price, f.commission) for f in jfills) == sorted([
        ("BUY", qty, asks[symbol], buy_fee), ("SELL", qty, 1.50, sell_fee)])
    assert {f.trade_id for f in jfills} == {f["id"].split("::", 1)[1] for f in buy_fills + sell_fills}


# ------------------------------------------------------------ held into the 0DTE cut-off ---
CUTOFF_START = datetime(2026, 3, 10, 18, 57, tzinfo=timezone.utc)  # Tue 14:57 ET (EDT), an XNYS session
CUTOFF_RATE = 60.0  # simulated seconds per real second


def test_live_0dte_option_is_sold_a_minute_before_the_brokers_cut_off(tmp_path):
    """The production node (XNYS calendar) on a clock placed at 14:57 ET and run 60x (libfaketime):
    a QQQ scalp at ~15:00 buys today's contract (0DTE: more than 15 minutes before the 15:30 cut-off);
    nothing else exits it in a quiet market, so the executor sells it at 15:29 ET, a minute before
    QQQ's cut-off, at the bid; the journal equals the broker's fills and fees."""
    import json
    import subprocess  # nosec B404 - our own session runner, fixed arguments
    import sys
    from pathlib import Path

    from tests.faketime_env import faketime_env

    env, why = faketime_env(CUTOFF_START, CUTOFF_RATE)
    if env is None:
        pytest.skip(why)
    root = Path(__file__).resolve().parent.parent
    out = tmp_path / "cutoff"
    proc = subprocess.run([sys.executable, "-m", "tests.options_cutoff_session", "--out", str(out)],  # nosec B603
                          cwd=root, env=env, capture_output=True, text=True, timeout=240)
    result = json.loads((out / "result.json").read_text())
    assert result["ok"], (result.get("traceback") or "") + str(result.get("decisions")) + proc.stderr[-3000:]
    from zoneinfo import ZoneInfo

    ny = ZoneInfo("America/New_York")
    symbol, qty = result["symbol"], result["qty"]
    assert symbol.startswith("QQQ260310C")  # today's contract: 0DTE
    assert result["exit_reason"] == "eod_close"
    mine = [o for o in result["orders"] if o["symbol"] == symbol]
    assert [(o["side"], o["type"], o["status"]) for o in mine] == [("buy", "market", "filled"),
                                                                   ("sell", "market", "filled")]
    fills = {f["side"]: f for f in result["fills"] if f["symbol"] == symbol}
    sold = datetime.fromisoformat(fills["sell"]["transaction_time"].replace("Z", "+00:00")).astimezone(ny)
    assert (sold.hour, sold.minute) == (15, 29)  # a minute before QQQ's 15:30 ET cut-off
    assert (Decimal(fills["buy"]["price"]), Decimal(fills["sell"]["price"])) == (
        Decimal(str(result["ask"])), Decimal("1.6"))
    assert result["positions"] == []
    (t,) = result["trades"]
    assert (t["ticker"], t["shares"], t["status"], t["exit_reason"]) == (symbol, qty, "closed", "eod_close")
    assert t["exit_price"] == pytest.approx(1.60) and t["entry_price"] == pytest.approx(result["ask"])
    fee = {side: fill_fees(side, qty, Decimal(fills[side]["price"]), date_of(fills[side]), option=True)
           for side in ("buy", "sell")}
    assert sorted((f["side"], f["quantity"], f["price"], f["commission"]) for f in result["journal_fills"]) == \
        sorted([("BUY", qty, result["ask"], fee["buy"]), ("SELL", qty, 1.60, fee["sell"])])
    assert sorted(-float(a["net_amount"]) for a in result["fees"] if a["symbol"] == symbol) == sorted(fee.values())


def date_of(fill: dict):
    from zoneinfo import ZoneInfo

    return datetime.fromisoformat(fill["transaction_time"].replace("Z", "+00:00")).astimezone(
        ZoneInfo("America/New_York")).date()


def test_restart_takes_over_an_open_option_position_and_its_exit(tmp_path):
    """Node 1 buys the option and stops (a restart). Node 2 on the same journal restores the
    position: the broker's position is reconciled to the executor (the journal's open option
    contracts are claimed, not left EXTERNAL), its quotes follow, and the executor's own stop on
    QQQ's bars sells it; flat at the broker and in Nautilus' positions."""
    db = f"sqlite:///{tmp_path / 'live.db'}"
    closes = crafted_flip_closes()
    now_min = datetime.now(timezone.utc).replace(second=0, microsecond=0)
    bars = bar_dicts(closes, now_min)
    today = now_min.date()
    seen: dict = {}
    with FakeAlpacaServer(keys={KEY: SECRET}, id_seed=22, option_calendar="24/7") as srv:
        for days in range(3):
            for c in srv.generate_option_chain("QQQ", [today + timedelta(days=days)], STRIKES):
                ask = _ask(int(float(c["strike_price"])), c["type"], days)
                srv.set_quote(c["symbol"], bid=round(ask - 0.04, 2), ask=ask)
        srv.push_trade("QQQ", closes[0])

        def spec() -> LiveSpec:
            return LiveSpec(symbols=["QQQ"], mode="options", db_url=db, api_key=KEY, api_secret=SECRET,
                            trading_url=srv.trading_url, trading_stream_url=srv.stream_url, data_url=srv.data_url,
                            data_stream_url=srv.data_stream_url, calendar="24/7", log_level="ERROR",
                            executor={"eod_minutes_before_close": 1, "max_signal_age_seconds": 86_400},
                            control_poll_seconds=1.0)

        async def first(live):
            strat = live.strategy
            mp = None
            for b in bars:
                srv.push_bar("QQQ", b)
                seen["t"] = b["t"]
                await asyncio.sleep(0.02)
                mp = next((m for m in strat.pm.by_signal.values() if m.decision.instrument_type == "option"), None)
                if mp is not None:
                    break
            assert mp is not None, "no option entry"
            await until(lambda: mp.position is not None and mp.open_qty > 0, what="the option entry fill")
            seen.update(signal_id=mp.signal_id, symbol=mp.decision.ticker, stop=mp.signal.stop_loss, qty=mp.open_qty)

        run_live(spec(), first)
        assert [(p["symbol"], int(p["qty"])) for p in srv.positions()] == [(seen["symbol"], seen["qty"])]

        async def second(live):
            from nautilus_trader.model.identifiers import InstrumentId

            strat, cache = live.strategy, live.node.cache
            iid = InstrumentId.from_str(f"{seen['symbol']}.ALPACA")
            mp = await until(lambda: strat.pm.by_signal.get(seen["signal_id"]), what="the restored option position")
            assert (mp.instrument, mp.open_qty) == (str(iid), seen["qty"])
            (pos,) = cache.positions_open(instrument_id=iid)
            seen["owner"] = str(pos.strategy_id)
            # the restored position's quotes follow (the strategy subscribes them at start): the
            # market quotes on until the new node's subscription is live and a quote arrives
            for _ in range(150):
                srv.set_quote(seen["symbol"], bid=1.50, ask=1.56)
                await asyncio.sleep(0.1)
                q = cache.quote_tick(iid)
                if q is not None and q.bid_price.as_double() == 1.50:
                    break
            assert cache.quote_tick(iid).bid_price.as_double() == 1.50, "no quote of the held contract"
            low = round(seen["stop"] - 1.0, 2)
            for k in range(1, 60):  # QQQ through the stop, a bar a "minute" until the executor acts
                srv.push_bar("QQQ", {"t": seen["t"] + timedelta(minutes=k), "o": low + 0.5, "h": low + 0.6,
                                     "l": low - 0.1, "c": low, "v": 10_000})
                await asyncio.sleep(0.1)
                if mp.closed:
                    break
            await until(lambda: mp.closed, what="the restored position to close")
            await until(lambda: not cache.positions_open(instrument_id=iid), what="Nautilus' position closed")
            seen["exit_reason"] = mp.exit_reason

        run_live(spec(), second)
        orders = [(o["side"], o["status"]) for o in srv.orders() if o["symbol"] == seen["symbol"]]
        positions = srv.positions()
    assert seen["owner"] == "ExecutorStrategy-000"  # claimed, not EXTERNAL
    assert seen["exit_reason"] == "stop_loss"
    assert orders == [("buy", "filled"), ("sell", "filled")] and positions == []
    eng = create_engine(db)
    with eng.connect() as c:
        (t,) = c.execute(select(TradeExecutionRecord).where(TradeExecutionRecord.run_id == "live")).all()
    assert (t.ticker, t.status, t.shares, t.exit_price) == (seen["symbol"], "closed", seen["qty"], 1.50)
