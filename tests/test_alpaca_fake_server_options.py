"""Options at the local Alpaca-protocol server, driven by the unmodified alpaca-py clients: the
orders Alpaca takes for options, fills at the quote, per-contract fees (``adapters.fees``), the
0DTE cut-off, expiry (liquidation of unsupported ITM longs, exercise, worthless expiry), the
options market-data websocket (``/v1beta1/{feed}``, msgpack) and the latest option quotes. Plus
the adapter's pure option-chain tracker. Manual clock: Monday 2026-03-02 (XNYS, 16:00 close)."""

from __future__ import annotations

import asyncio
import warnings
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from alpaca.common.exceptions import APIError
    from alpaca.data.historical.option import OptionHistoricalDataClient
    from alpaca.data.requests import OptionLatestQuoteRequest
    from alpaca.trading.client import TradingClient
    from alpaca.trading.enums import OrderClass, OrderSide, TimeInForce
    from alpaca.trading.requests import (
        LimitOrderRequest,
        MarketOrderRequest,
        StopLossRequest,
        StopOrderRequest,
        TakeProfitRequest,
    )

from adapters.alpaca.fake_server import FakeAlpacaServer
from adapters.alpaca.option_chain import OptionChainTracker, option_stream_url_for
from adapters.alpaca.parsing import parse_option_contract
from adapters.fees import fill_fees

KEY, SECRET = "PKOPTKEY", "opt-secret"
DAY = date(2026, 3, 2)  # a Monday; XNYS closes 16:00 ET = 21:00 UTC


def et(hh: int, mm: int) -> datetime:
    return datetime(2026, 3, 2, hh + 5, mm, tzinfo=timezone.utc)  # EST (UTC-5) before the March DST change


@pytest.fixture
def srv():
    with FakeAlpacaServer(keys={KEY: SECRET}, clock_start=et(10, 0), id_seed=5) as s:
        yield s


@pytest.fixture
def client(srv):
    return TradingClient(KEY, SECRET, paper=True, url_override=srv.trading_url)


def _refused(client, request) -> tuple[int, str]:
    with pytest.raises(APIError) as e:
        client.submit_order(request)
    return e.value.status_code, str(e.value)


def test_option_orders_as_alpaca_takes_them_fill_at_the_quote_and_pay_per_contract_fees(srv, client):
    occ = srv.add_option_contract("QQQ", DAY, 480, "call")["symbol"]
    srv.set_quote(occ, bid=2.40, ask=2.50)
    day = TimeInForce.DAY
    assert _refused(client, MarketOrderRequest(symbol=occ, qty=1, side=OrderSide.BUY, time_in_force=TimeInForce.GTC)) \
        == (422, '{"code":40010001,"message":"options orders must be day orders"}')
    assert "order type stop is not supported for options" in _refused(
        client, StopOrderRequest(symbol=occ, qty=1, side=OrderSide.BUY, time_in_force=day, stop_price=3.0))[1]
    assert "whole number of contracts" in _refused(
        client, MarketOrderRequest(symbol=occ, qty=1.5, side=OrderSide.BUY, time_in_force=day))[1]
    assert "simple orders" in _refused(client, LimitOrderRequest(
        symbol=occ, qty=1, side=OrderSide.BUY, time_in_force=day, limit_price=2.5, order_class=OrderClass.BRACKET,
        take_profit=TakeProfitRequest(limit_price=4.0), stop_loss=StopLossRequest(stop_price=1.0)))[1]
    status, msg = _refused(client, MarketOrderRequest(symbol=occ, qty=1, side=OrderSide.SELL, time_in_force=day))
    assert status == 403 and "uncovered" in msg
    assert srv.orders() == []

    buy = client.submit_order(MarketOrderRequest(symbol=occ, qty=3, side=OrderSide.BUY, time_in_force=day))
    assert srv.order(str(buy.id))["status"] == "filled"  # at once, against the quote: at the ask
    (fill,) = srv.activities(["FILL"])
    assert (fill["price"], fill["qty"]) == ("2.5", "3")
    srv.set_quote(occ, bid=2.80, ask=2.90)
    client.submit_order(MarketOrderRequest(symbol=occ, qty=3, side=OrderSide.SELL, time_in_force=day))
    (sell,) = [a for a in srv.activities(["FILL"]) if a["side"] == "sell"]
    assert (sell["price"], sell["qty"]) == ("2.8", "3")  # at the bid
    fees = sorted(-Decimal(a["net_amount"]) for a in srv.activities(["FEE"]))
    want = sorted(Decimal(str(fill_fees(side, 3, px, DAY, option=True))) for side, px in (("buy", 2.5), ("sell", 2.8)))
    assert fees == want == [Decimal("0.14"), Decimal("0.15")]  # 3 x (0.02685 + 0.02) [+ 3 x 0.00279]
    assert srv.positions() == []
    # cash: -3 x 2.50 x 100 + 3 x 2.80 x 100 - fees
    assert Decimal(srv.account()["cash"]) == Decimal("100000") - 750 + 840 - Decimal("0.29")


def test_no_new_0dte_position_after_the_cut_off_but_closing_is_accepted(srv, client):
    qqq = srv.add_option_contract("QQQ", DAY, 480, "call")["symbol"]
    aapl = srv.add_option_contract("AAPL", DAY, 230, "call")["symbol"]
    later = srv.add_option_contract("QQQ", DAY + timedelta(days=1), 480, "call")["symbol"]
    for sym in (qqq, aapl, later):
        srv.set_quote(sym, bid=1.00, ask=1.10)
    day = TimeInForce.DAY
    client.submit_order(MarketOrderRequest(symbol=qqq, qty=1, side=OrderSide.BUY, time_in_force=day))
    srv.set_time(et(15, 16))  # past 15:15 (single names), before 15:30 (SPY/QQQ/IWM/DIA)
    status, msg = _refused(client, MarketOrderRequest(symbol=aapl, qty=1, side=OrderSide.BUY, time_in_force=day))
    assert status == 403 and "after 15:15 ET" in msg
    client.submit_order(MarketOrderRequest(symbol=qqq, qty=1, side=OrderSide.BUY, time_in_force=day))
    srv.set_time(et(15, 30))
    status, msg = _refused(client, MarketOrderRequest(symbol=qqq, qty=1, side=OrderSide.BUY, time_in_force=day))
    assert status == 403 and "after 15:30 ET" in msg
    client.submit_order(MarketOrderRequest(symbol=later, qty=1, side=OrderSide.BUY, time_in_force=day))  # 1DTE: fine
    client.submit_order(MarketOrderRequest(symbol=qqq, qty=2, side=OrderSide.SELL, time_in_force=day))  # closing
    assert {p["symbol"]: p["qty"] for p in srv.positions()} == {later: "1"}


def test_expiry_liquidates_unsupported_itm_longs_then_exercises_itm_and_expires_otm(srv, client):
    itm_call = srv.add_option_contract("QQQ", DAY, 480, "call")["symbol"]
    otm_put = srv.add_option_contract("QQQ", DAY, 470, "put")["symbol"]
    spy_call = srv.add_option_contract("SPY", DAY, 590, "call")["symbol"]
    srv.add_position(itm_call, 1, 3.00)
    srv.add_position(otm_put, 2, 1.00)
    srv.add_position(spy_call, 100, 5.00)  # exercise would need 590 x 100 x 100 = $5.9M: unsupported
    srv.set_quote(spy_call, bid=9.90, ask=10.10)
    srv.push_trade("QQQ", 485.00)
    srv.push_trade("SPY", 600.00)
    srv.set_time(et(15, 44))
    srv.settle_options()
    assert len(srv.positions()) == 3  # nothing before 15:45 (SPY/QQQ/IWM/DIA)
    srv.set_time(et(15, 45))
    srv.settle_options()
    (liq,) = [o for o in srv.orders() if o["symbol"] == spy_call]
    assert liq["side"] == "sell" and liq["status"] == "filled" and liq["client_order_id"].startswith("liquidation-")
    assert Decimal(liq["filled_avg_price"]) == Decimal("9.9")  # at the bid
    assert {p["symbol"] for p in srv.positions()} == {itm_call, otm_put}  # supported: left to expiry
    cash = Decimal(srv.account()["cash"])

    srv.set_time(et(16, 0))  # the close: exercise in the money by $0.01+, the rest expires worthless
    srv.settle_options()
    assert {p["symbol"]: p["qty"] for p in srv.positions()} == {"QQQ": "100"}
    (qqq,) = [p for p in srv.positions() if p["symbol"] == "QQQ"]
    assert Decimal(qqq["avg_entry_price"]) == Decimal("480")
    assert Decimal(srv.account()["cash"]) == cash - 48_000
    acts = {a["activity_type"]: a for a in srv.activities(["OPEXC", "OPTRD", "OPEXP"])}
    assert (acts["OPEXC"]["symbol"], acts["OPEXC"]["qty"]) == (itm_call, "-1")
    assert (acts["OPTRD"]["symbol"], acts["OPTRD"]["qty"], acts["OPTRD"]["price"],
            acts["OPTRD"]["net_amount"]) == ("QQQ", "100", "480", "-48000")
    assert (acts["OPEXP"]["symbol"], acts["OPEXP"]["qty"], acts["OPEXP"]["net_amount"]) == (otm_put, "-2", "0")
    contract = client.get_option_contract(itm_call)
    assert str(getattr(contract.status, "value", contract.status)) == "inactive" and not contract.tradable
    assert "not tradable" in _refused(client, MarketOrderRequest(symbol=itm_call, qty=1, side=OrderSide.BUY,
                                                                 time_in_force=TimeInForce.DAY))[1]


def test_options_websocket_streams_option_quotes_only_and_latest_quotes_over_rest(srv):
    from adapters.alpaca.data_stream import AlpacaMarketDataStream

    occ = srv.add_option_contract("QQQ", DAY, 480, "call")["symbol"]
    got: dict[str, list] = {"options": [], "stocks": []}

    class Log:
        def __getattr__(self, _name):
            return lambda *a, **k: None

    async def main():
        opt_stream = AlpacaMarketDataStream(option_stream_url_for("indicative", None, srv.data_stream_url), KEY,
                                            SECRET, got["options"].append, Log())
        stock_stream = AlpacaMarketDataStream(srv.data_stream_url, KEY, SECRET, got["stocks"].append, Log())
        await opt_stream.subscribe("quotes", [occ])
        await stock_stream.subscribe("quotes", [occ, "QQQ"])
        for s in (opt_stream, stock_stream):
            assert await s.wait_connected(5)
        for _ in range(200):  # both subscriptions acknowledged
            if opt_stream.is_synchronised() and stock_stream.is_synchronised():
                break
            await asyncio.sleep(0.02)
        srv.set_quote(occ, bid=2.40, ask=2.50)
        srv.set_quote("QQQ", bid=484.99, ask=485.01)
        for _ in range(200):
            if got["options"] and got["stocks"]:
                break
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.1)
        await opt_stream.close()
        await stock_stream.close()

    asyncio.run(main())
    assert [(m["T"], m["S"], m["bp"], m["ap"]) for m in got["options"]] == [("q", occ, 2.4, 2.5)]
    assert [(m["T"], m["S"]) for m in got["stocks"]] == [("q", "QQQ")]  # the option only on the options feed
    data = OptionHistoricalDataClient(KEY, SECRET, url_override=srv.data_url)
    quote = data.get_option_latest_quote(OptionLatestQuoteRequest(symbol_or_symbols=[occ]))[occ]
    assert (quote.bid_price, quote.ask_price) == (2.4, 2.5)


def _contracts(expiries: list[date], strikes, underlying: str = "QQQ") -> list:
    return [parse_option_contract({"symbol": f"{underlying}{e:%y%m%d}{t[0].upper()}{k * 1000:08d}", "type": t,
                                   "size": "100", "strike_price": str(k), "expiration_date": e.isoformat(),
                                   "underlying_symbol": underlying}, 0)
            for e in expiries for t in ("call", "put") for k in strikes]


def test_chain_tracker_keeps_the_nearest_expiries_and_quotes_atm_strikes_around_the_price():
    d0 = date(2026, 7, 1)
    tracker = OptionChainTracker(["qqq"], expiries=2, band_pct=0.03, quote_strikes=1)
    window = tracker.load_window("QQQ", 100.4, d0)
    assert window == {"expiration_gte": "2026-07-01", "expiration_lte": "2026-07-17",
                      "strike_price_gte": 97.39, "strike_price_lte": 103.41}
    insts = _contracts([d0 - timedelta(days=1), d0, d0 + timedelta(days=1), d0 + timedelta(days=2)], range(95, 106))
    assert tracker.set_chain("QQQ", insts + _contracts([d0], [100], "SPY"), 100.4, d0) == [
        d0, d0 + timedelta(days=1)]  # expired and third expiries dropped; SPY is not QQQ's
    assert sorted(tracker.wanted("QQQ", 100.4, d0)) == [
        f"QQQ2607{d:02d}{cp}{k * 1000:08d}" for d in (1, 2) for cp in "CP" for k in (99, 100, 101)]
    assert tracker.wanted("QQQ", 100.4, d0 + timedelta(days=1)) == {
        f"QQQ260702{cp}{k * 1000:08d}" for cp in "CP" for k in (99, 100, 101)}  # 07-01 has expired
    assert sorted(tracker.wanted("QQQ", 104.9, d0))[:3] == [
        "QQQ260701C00104000", "QQQ260701C00105000", "QQQ260701P00104000"]  # band edge: fewer above
    # reload: a new day, or the price more than half the band (1.5 %) away from where it was centred
    assert not tracker.needs_load("QQQ", 101.9, d0)
    assert tracker.needs_load("QQQ", 102.0, d0)
    assert tracker.needs_load("QQQ", 100.4, d0 + timedelta(days=1))
    assert tracker.needs_load("SPY", 500.0, d0)  # never loaded
    assert option_stream_url_for("opra") == "wss://stream.data.alpaca.markets/v1beta1/opra"
    assert option_stream_url_for("indicative", None, "ws://127.0.0.1:5/v2/iex") == "ws://127.0.0.1:5/v1beta1/indicative"
    assert option_stream_url_for("opra", "ws://h/x") == "ws://h/x"


def test_auto_quotes_price_the_contracts_near_the_underlying_on_each_minute_bar():
    with FakeAlpacaServer(keys={KEY: SECRET}, clock_start=et(10, 0), option_auto_quotes=True) as s:
        syms = {(c["type"], int(float(c["strike_price"]))): c["symbol"]
                for c in s.generate_option_chain("QQQ", [DAY], [400, 470, 480, 490])}
        s.push_bar("QQQ", {"t": et(9, 59), "o": 480.0, "h": 480.5, "l": 479.5, "c": 480.0, "v": 1000})
        q = s.engine.market.latest_quote
        assert syms[("call", 400)] not in q  # 17 % away: not quoted
        call, put, itm = q[syms[("call", 480)]], q[syms[("put", 480)]], q[syms[("call", 470)]]
        # ATM, 6 h to the close, 20 % vol: 0.4 x 480 x 0.2 x sqrt(6 / 8760) ~ $1.01; 1 % spread (min $0.01)
        assert 0.95 < (call.bp + call.ap) / 2 < 1.05 and call.ap - call.bp == pytest.approx(0.01)
        assert abs((call.bp + call.ap) / 2 - (put.bp + put.ap) / 2) < 0.01  # put-call parity, no rates
        assert (itm.bp + itm.ap) / 2 >= 10.0  # the mid is at least the intrinsic value
        before = call.ap
        s.push_bar("QQQ", {"t": et(10, 0), "o": 480.0, "h": 482.5, "l": 480.0, "c": 482.0, "v": 1000})
        assert q[syms[("call", 480)]].ap > before + 0.5  # re-quoted on the next bar


# ------------------------------------------------------------------ the adapter's option chain ---

def test_data_client_loads_the_chain_streams_atm_quotes_and_recentres_on_the_underlying(tmp_path):
    """AlpacaDataClient (inside a TradingNode) with ``option_underlyings``: the chain around the
    last trade is loaded at connect, the ATM +-1 strikes' quotes are seeded and streamed from the
    options websocket; a bar far from the band reloads and re-centres them; a contract the
    strategy subscribed itself stays streamed."""
    from zoneinfo import ZoneInfo

    from nautilus_trader.common.actor import Actor
    from nautilus_trader.config import ActorConfig, LoggingConfig, TradingNodeConfig
    from nautilus_trader.live.node import TradingNode
    from nautilus_trader.model.data import BarType
    from nautilus_trader.model.identifiers import InstrumentId, TraderId

    from adapters.alpaca.config import AlpacaDataClientConfig, AlpacaInstrumentProviderConfig
    from tests.node_harness import drive, until
    from tests.test_alpaca_data import CapturingFactory

    today = datetime.now(timezone.utc).astimezone(ZoneInfo("America/New_York")).date()
    # from tomorrow (New York): none of them expires while the test runs, whatever the hour
    exps = [today + timedelta(days=1), today + timedelta(days=2), today + timedelta(days=3)]

    def occ(e: date, cp: str, k: int) -> str:
        return f"AAPL{e:%y%m%d}{cp}{k * 1000:08d}"

    held = InstrumentId.from_str(f"{occ(exps[0], 'C', 190)}.ALPACA")

    class Watcher(Actor):
        def __init__(self) -> None:
            super().__init__(ActorConfig(component_id="WATCHER"))
            self.quotes: list = []

        def on_start(self) -> None:
            self.subscribe_bars(BarType.from_str("AAPL.ALPACA-1-MINUTE-LAST-EXTERNAL"))

        def on_quote_tick(self, tick) -> None:  # noqa: ANN001
            self.quotes.append(tick)

    with FakeAlpacaServer(keys={KEY: SECRET}, id_seed=3) as s:
        for c in s.generate_option_chain("AAPL", exps, range(180, 206)):
            s.set_quote(c["symbol"], bid=1.00, ask=1.10)
        s.push_trade("AAPL", 190.20)
        loop = asyncio.new_event_loop()
        node = TradingNode(config=TradingNodeConfig(
            trader_id=TraderId("TESTER-002"), logging=LoggingConfig(log_level="WARNING"),
            data_clients={"ALPACA": AlpacaDataClientConfig(
                api_key=KEY, api_secret=SECRET, trading_url=s.trading_url, data_url=s.data_url,
                data_stream_url=s.data_stream_url, option_underlyings=("AAPL",), option_quote_strikes=1,
                instrument_provider=AlpacaInstrumentProviderConfig(
                    load_ids=frozenset({InstrumentId.from_str("AAPL.ALPACA")})))},
            timeout_connection=10.0, timeout_disconnection=3.0, timeout_post_stop=0.2, timeout_shutdown=2.0),
            loop=loop)
        watcher = Watcher()
        node.trader.add_actor(watcher)
        node.add_data_client_factory("ALPACA", CapturingFactory)
        node.build()
        client = CapturingFactory.clients[-1]
        seen: dict = {}

        def streamed() -> set[str]:
            return client.option_stream.confirmed["quotes"] if client.option_stream.is_synchronised() else set()

        async def scenario():
            cache = node.cache
            first = {occ(e, cp, k) for e in exps[:2] for cp in "CP" for k in (189, 190, 191)}
            await until(lambda: streamed() == first, what="the ATM quotes of the 2 nearest expiries streamed")
            assert client.option_chain.chain_expiries("AAPL") == exps[:2]
            assert cache.instrument(InstrumentId.from_str(f"{occ(exps[2], 'C', 190)}.ALPACA")) is None
            q = cache.quote_tick(held)  # seeded from the latest-quote endpoint before any stream tick
            seen["seeded"] = (q.bid_price.as_double(), q.ask_price.as_double())
            watcher.subscribe_quote_ticks(held)  # the strategy bought it: it must stay streamed
            s.set_quote(held.symbol.value, bid=1.20, ask=1.30)
            await until(lambda: watcher.quotes, what="the held contract's quote to the subscriber")
            seen["streamed"] = watcher.quotes[-1].bid_price.as_double()
            # AAPL jumps to 198 (4 % away): reload around 198 and re-centre; 190 call stays
            t = datetime.now(timezone.utc).replace(second=0, microsecond=0) - timedelta(minutes=1)
            s.push_bar("AAPL", {"t": t, "o": 197.5, "h": 198.2, "l": 197.4, "c": 198.0, "v": 1000})
            moved = {occ(e, cp, k) for e in exps[:2] for cp in "CP" for k in (197, 198, 199)}
            await until(lambda: streamed() == moved | {held.symbol.value}, what="the quotes re-centred on 198")
            assert cache.instrument(InstrumentId.from_str(f"{occ(exps[0], 'C', 203)}.ALPACA")) is not None
            n = len(watcher.quotes)
            s.set_quote(occ(exps[0], "P", 189), bid=2.0, ask=2.1)  # no longer streamed: nothing arrives
            s.set_quote(held.symbol.value, bid=1.40, ask=1.50)
            await until(lambda: len(watcher.quotes) > n, what="the held contract still streamed")
            seen["after"] = [x.instrument_id.symbol.value for x in watcher.quotes[n:]]
            seen["stale_put"] = cache.quote_tick(InstrumentId.from_str(f"{occ(exps[0], 'P', 189)}.ALPACA"))

        try:
            drive(node, loop, lambda: watcher.is_running, scenario, 30.0, start_timeout=15.0)
        finally:
            node.dispose()
            loop.close()
    assert seen["seeded"] == (1.00, 1.10) and seen["streamed"] == 1.20
    assert seen["after"] == [held.symbol.value]
    assert seen["stale_put"].bid_price.as_double() == 1.00  # the seeded quote, not the 2.0 sent after


def test_live_cli_passes_the_option_chain_settings_to_the_node(monkeypatch, capsys):
    import strategies.live as live_mod
    from strategies.cli import main

    specs = []

    def capture(spec, loop=None):  # noqa: ANN001
        specs.append(spec)
        raise KeyboardInterrupt  # stop before anything is built

    monkeypatch.setattr(live_mod, "build_live_node", capture)
    main(["live", "--symbols", "QQQ", "--mode", "stock", "--option-chains", "always", "--option-feed", "opra"])
    main(["live", "--symbols", "QQQ", "--mode", "options"])
    capsys.readouterr()
    assert [(s.option_chains, s.option_feed) for s in specs] == [(True, "opra"), (None, "indicative")]
