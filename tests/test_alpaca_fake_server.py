"""The fake Alpaca server, driven by the unmodified alpaca-py clients through their URL overrides.

Every test starts its own server (milliseconds) on random 127.0.0.1 ports with a manual clock
(Monday 2026-03-02 10:00 ET, market open) and seeded ids, so all values are deterministic.
Streams run alpaca-py's own ``TradingStream`` / ``StockDataStream`` in background threads.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import queue
import subprocess
import sys
import threading
import warnings
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import msgpack
import pandas as pd
import pytest
import requests
import websockets

with warnings.catch_warnings():  # alpaca-py's streams import websockets.legacy (deprecated upstream)
    warnings.simplefilter("ignore", DeprecationWarning)
    from alpaca.common.exceptions import APIError
    from alpaca.data.enums import DataFeed
    from alpaca.data.historical.stock import StockHistoricalDataClient
    from alpaca.data.requests import StockBarsRequest, StockLatestQuoteRequest
    from alpaca.data.timeframe import TimeFrame, TimeFrameUnit
    from alpaca.trading.client import TradingClient
    from alpaca.trading.enums import AssetExchange, OrderClass, OrderSide, OrderStatus, QueryOrderStatus, TimeInForce
    from alpaca.trading.models import TradeActivity
    from alpaca.trading.requests import (
        GetCalendarRequest,
        GetOptionContractsRequest,
        GetOrdersRequest,
        LimitOrderRequest,
        MarketOrderRequest,
        ReplaceOrderRequest,
        StopLossRequest,
        StopOrderRequest,
        TakeProfitRequest,
        TrailingStopOrderRequest,
    )
    from alpaca.data.live.stock import StockDataStream
    from alpaca.trading.stream import TradingStream

from adapters.alpaca.fake_server import FakeAlpacaServer

KEY, SECRET = "PKTESTKEY", "test-secret"
T0 = datetime(2026, 3, 2, 15, 0, tzinfo=timezone.utc)  # Monday 10:00 ET
REPO_ROOT = Path(__file__).resolve().parent.parent
WAIT = 5.0  # generous upper bound for anything asynchronous; waits end as soon as the condition holds


@pytest.fixture
def srv():
    with FakeAlpacaServer(keys={KEY: SECRET}, clock_start=T0, id_seed=1) as s:
        yield s


@pytest.fixture
def client(srv):
    return TradingClient(KEY, SECRET, paper=True, url_override=srv.trading_url)


def market(symbol="AAPL", qty=10, side=OrderSide.BUY, **kw):
    return MarketOrderRequest(symbol=symbol, qty=qty, side=side, time_in_force=TimeInForce.DAY, **kw)


def limit(price, symbol="AAPL", qty=10, side=OrderSide.BUY, **kw):
    kw.setdefault("time_in_force", TimeInForce.DAY)
    return LimitOrderRequest(symbol=symbol, qty=qty, side=side, limit_price=price, **kw)


# ------------------------------------------------------------------------------ stream helpers ---
@contextlib.contextmanager
def trading_stream(srv):
    """alpaca-py TradingStream in a thread; yields a queue of TradeUpdate models."""
    events: queue.Queue = queue.Queue()

    async def on_update(update):
        events.put(update)

    stream = TradingStream(KEY, SECRET, paper=True, url_override=srv.stream_url)
    stream.subscribe_trade_updates(on_update)
    th = threading.Thread(target=stream.run, daemon=True)
    th.start()
    srv.wait_for(lambda: srv.trade_stream_listeners >= 1, WAIT, message="trade stream listening")
    try:
        yield events
    finally:
        stream.stop()
        srv.drop_trade_streams()  # wakes the client's 5 s recv() wait so it sees the stop at once
        th.join(WAIT)
        assert not th.is_alive()


@contextlib.contextmanager
def data_stream(srv, bars=("AAPL",), quotes=("AAPL",), trades=(), drop_on_exit=True):
    """alpaca-py StockDataStream (msgpack) in a thread; yields a queue of Bar/Quote/Trade models."""
    got: queue.Queue = queue.Queue()

    async def on_data(item):
        got.put(item)

    stream = StockDataStream(KEY, SECRET, feed=DataFeed.IEX, url_override=srv.data_stream_url)
    if bars:
        stream.subscribe_bars(on_data, *bars)
    if quotes:
        stream.subscribe_quotes(on_data, *quotes)
    if trades:
        stream.subscribe_trades(on_data, *trades)
    th = threading.Thread(target=stream.run, daemon=True)
    th.start()
    try:
        yield stream, got, th
    finally:
        if stream._loop is not None and stream._loop.is_running():
            stream.stop()
        if drop_on_exit:  # wakes the client's 5 s recv() wait so it sees the stop at once
            srv.drop_data_streams()
        th.join(WAIT)
        assert not th.is_alive()


def next_event(events: queue.Queue, timeout: float = WAIT):
    return events.get(timeout=timeout)


def ev(update) -> str:
    """TradeUpdate.event is ``Union[TradeEvent, str]``; pydantic keeps the wire string."""
    return getattr(update.event, "value", update.event)


def drain(events: queue.Queue, n: int, timeout: float = WAIT) -> list:
    return [next_event(events, timeout) for _ in range(n)]


# ================================================================================= account ===
def test_account_parses_without_removed_pdt_fields(srv, client):
    raw = requests.get(srv.trading_url + "/v2/account",
                       headers={"APCA-API-KEY-ID": KEY, "APCA-API-SECRET-KEY": SECRET}).json()
    for removed in ("pattern_day_trader", "daytrade_count", "daytrading_buying_power"):
        assert removed not in raw
    acct = client.get_account()
    assert acct.status.value == "ACTIVE"
    assert (acct.equity, acct.cash, acct.buying_power, acct.multiplier) == ("100000", "100000", "200000", "2")
    assert acct.pattern_day_trader is None and acct.daytrade_count is None
    assert acct.account_number == "PA3FAKE00001" and acct.currency == "USD"
    assert acct.trading_blocked is False and acct.shorting_enabled is True


def test_auth_is_checked(srv):
    with pytest.raises(APIError) as bad_secret:
        TradingClient(KEY, "wrong", paper=True, url_override=srv.trading_url).get_account()
    assert bad_secret.value.status_code == 403 and bad_secret.value.code == 40310000
    with pytest.raises(APIError) as unknown:
        TradingClient("NOPE", "x", paper=True, url_override=srv.trading_url).get_account()
    assert unknown.value.status_code == 401
    assert requests.get(srv.trading_url + "/v2/account").status_code == 401


# ================================================================================= matching ===
def test_market_order_fills_at_next_quote_ask_and_sell_pays_regulatory_fees(srv, client):
    srv.set_quote("AAPL", 99.98, 100.02)
    order = client.submit_order(market(client_order_id="mkt-1"))
    assert order.status == OrderStatus.NEW and order.filled_qty == "0"  # rests until the next tick
    srv.set_quote("AAPL", 100.00, 100.05)
    filled = client.get_order_by_id(order.id)
    assert filled.status == OrderStatus.FILLED
    assert (filled.filled_qty, filled.filled_avg_price) == ("10", "100.05")
    pos = client.get_open_position("AAPL")
    assert (pos.qty, pos.avg_entry_price, pos.side.value) == ("10", "100.05", "long")
    assert client.get_account().cash == "98999.5"

    client.submit_order(market(side=OrderSide.SELL, client_order_id="mkt-2"))
    srv.set_quote("AAPL", 101.00, 101.04)  # sells fill at the bid
    assert client.get_order_by_client_id("mkt-2").filled_avg_price == "101"
    assert client.get_all_positions() == []
    # SEC 1010 * 27.80e-6 = 0.0281 + FINRA TAF 10 * 0.000166 = 0.00166 -> 0.03 (half-up to the cent)
    fees = client.get("/account/activities/FEE")
    assert [f["net_amount"] for f in fees] == ["-0.03"]
    acct = client.get_account()
    assert acct.cash == "100009.47" and acct.accrued_fees == "0.03"
    fills = [TradeActivity(**a) for a in client.get("/account/activities", {"activity_types": "FILL",
                                                                             "direction": "asc"})]
    assert [(f.side.value, f.qty, f.price, f.order_status.value) for f in fills] == [
        ("buy", 10.0, 100.05, "filled"), ("sell", 10.0, 101.0, "filled")]


def test_limit_fills_only_when_crossed(srv, client):
    srv.set_quote("AAPL", 99.90, 100.00)
    buy = client.submit_order(limit(99.50, qty=5))
    srv.set_quote("AAPL", 99.55, 99.60)
    assert client.get_order_by_id(buy.id).status == OrderStatus.NEW
    srv.set_quote("AAPL", 99.40, 99.45)  # ask crosses: fills at the ask (price improvement)
    o = client.get_order_by_id(buy.id)
    assert (o.status, o.filled_avg_price) == (OrderStatus.FILLED, "99.45")

    # bar-driven: limit sell fills when high >= limit, at max(limit, open)
    sell = client.submit_order(limit(101.00, qty=5, side=OrderSide.SELL))
    srv.push_bar("AAPL", {"t": T0, "o": 100.0, "h": 100.9, "l": 99.8, "c": 100.5, "v": 1000})
    assert client.get_order_by_id(sell.id).status == OrderStatus.NEW
    srv.push_bar("AAPL", {"t": T0 + timedelta(minutes=1), "o": 100.6, "h": 101.3, "l": 100.4, "c": 101.1})
    o = client.get_order_by_id(sell.id)
    assert (o.status, o.filled_avg_price) == (OrderStatus.FILLED, "101")


def test_stop_triggers_and_market_order_fills_at_bar_close_without_quote(srv, client):
    srv.push_bar("SPY", {"t": T0, "o": 500, "h": 501, "l": 499, "c": 500.5, "v": 10})
    entry = client.submit_order(market("SPY", qty=4))
    srv.push_bar("SPY", {"t": T0 + timedelta(minutes=1), "o": 500.5, "h": 502, "l": 500, "c": 501.25})
    assert client.get_order_by_id(entry.id).filled_avg_price == "501.25"
    stop = client.submit_order(StopOrderRequest(symbol="SPY", qty=4, side=OrderSide.SELL,
                                                time_in_force=TimeInForce.GTC, stop_price=498))
    srv.push_bar("SPY", {"t": T0 + timedelta(minutes=2), "o": 501, "h": 501.5, "l": 499, "c": 499.5})
    assert client.get_order_by_id(stop.id).status == OrderStatus.NEW
    srv.push_bar("SPY", {"t": T0 + timedelta(minutes=3), "o": 497.0, "h": 499, "l": 496, "c": 496.5})
    o = client.get_order_by_id(stop.id)  # gapped through the stop: filled at the open
    assert (o.status, o.filled_avg_price) == (OrderStatus.FILLED, "497")


def test_insufficient_buying_power_is_403(client, srv):
    srv.set_quote("AAPL", 99.99, 100.00)
    with pytest.raises(APIError) as err:
        client.submit_order(market(qty=2001))  # 200,100 > 2 x 100,000 buying power
    assert err.value.status_code == 403 and err.value.message == "insufficient buying power"
    assert client.get_orders(GetOrdersRequest(status=QueryOrderStatus.ALL)) == []
    assert client.submit_order(market(qty=2000)).status == OrderStatus.NEW
    assert client.get_account().buying_power == "0"  # the open order reserves it


def test_sell_more_than_position_is_rejected(srv, client):
    srv.add_position("AAPL", 5, 100)
    with pytest.raises(APIError) as err:
        client.submit_order(market(qty=6, side=OrderSide.SELL))
    assert err.value.status_code == 403
    assert err.value.message == "insufficient qty available for order (requested: 6, available: 5)"


# =================================================================== order lifecycle (REST) ===
def test_replace_gives_new_order_id_with_replaces_and_replaced_by(srv, client):
    old = client.submit_order(limit(90.00, client_order_id="orig"))
    new = client.replace_order_by_id(old.id, ReplaceOrderRequest(limit_price=91.0, qty=12,
                                                                  client_order_id="orig-r1"))
    assert new.id != old.id and new.replaces == old.id
    assert (new.qty, new.limit_price, new.status) == ("12", "91", OrderStatus.NEW)
    old_now = client.get_order_by_client_id("orig")
    assert old_now.status == OrderStatus.REPLACED and old_now.replaced_by == new.id
    assert [o.id for o in client.get_orders()] == [new.id]  # only the replacement is open
    with pytest.raises(APIError) as err:
        client.replace_order_by_id(old.id, ReplaceOrderRequest(limit_price=92.0))
    assert err.value.status_code == 422


def test_cancel(srv, client):
    o = client.submit_order(limit(90.00))
    client.cancel_order_by_id(o.id)  # 204 at once; the cancel itself is asynchronous (async_cancels default)
    assert client.get_order_by_id(o.id).status == OrderStatus.PENDING_CANCEL
    with pytest.raises(APIError) as pending:
        client.cancel_order_by_id(o.id)
    assert pending.value.status_code == 422 and pending.value.message == 'order is in "pending_cancel" state'
    srv.wait_for(lambda: client.get_order_by_id(o.id).status == OrderStatus.CANCELED, WAIT, message="canceled")
    with pytest.raises(APIError) as err:
        client.cancel_order_by_id(o.id)
    assert err.value.status_code == 422 and err.value.message == 'order is already in "canceled" state'
    with pytest.raises(APIError) as missing:
        client.cancel_order_by_id("00000000-0000-4000-8000-000000000000")
    assert missing.value.status_code == 404
    client.submit_order(limit(90.00))
    client.submit_order(limit(91.00))
    answers = client.cancel_orders()
    assert [(r.status, r.body["status"]) for r in answers] == [(200, "pending_cancel"), (200, "pending_cancel")]
    srv.wait_idle()
    assert client.get_orders() == []


def test_client_order_id_unique_max_48_and_queryable(srv, client):
    first = client.submit_order(limit(90.00, client_order_id="dup-1"))
    with pytest.raises(APIError) as dup:
        client.submit_order(limit(91.00, client_order_id="dup-1"))
    assert dup.value.status_code == 422 and dup.value.message == "client_order_id must be unique"
    with pytest.raises(APIError) as long_id:
        client.submit_order(limit(91.00, client_order_id="x" * 49))
    assert long_id.value.status_code == 422
    assert client.submit_order(limit(91.00, client_order_id="y" * 48)).client_order_id == "y" * 48
    assert client.get_order_by_client_id("dup-1").id == first.id
    with pytest.raises(APIError) as missing:
        client.get_order_by_client_id("never-sent")
    assert missing.value.status_code == 404
    with pytest.raises(APIError) as sub_penny:
        client.submit_order(limit(90.001))
    assert sub_penny.value.status_code == 422


def test_bracket_legs_held_until_entry_fills_then_one_cancels_other(srv, client):
    srv.set_quote("AAPL", 99.99, 100.01)
    parent = client.submit_order(market(order_class=OrderClass.BRACKET,
                                        take_profit=TakeProfitRequest(limit_price=105.0),
                                        stop_loss=StopLossRequest(stop_price=97.0)))
    assert parent.order_class == OrderClass.BRACKET
    assert [(leg.type.value, leg.status) for leg in parent.legs] == [("limit", OrderStatus.HELD),
                                                                      ("stop", OrderStatus.HELD)]
    srv.set_quote("AAPL", 100.00, 100.02)
    legs = client.get_order_by_id(parent.id).legs
    assert client.get_order_by_id(parent.id).status == OrderStatus.FILLED
    assert [leg.status for leg in legs] == [OrderStatus.NEW, OrderStatus.NEW]
    srv.set_quote("AAPL", 105.00, 105.02)  # take-profit limit sell fills at the bid
    tp, sl = (client.get_order_by_id(leg.id) for leg in legs)
    assert (tp.status, tp.filled_avg_price, sl.status) == (OrderStatus.FILLED, "105", OrderStatus.CANCELED)
    assert client.get_all_positions() == []


def test_seeded_position_and_open_order_are_visible(srv, client):
    srv.add_position("QQQ", 20, 480.5, lastday_price=479.0)
    seeded = srv.add_open_order("QQQ", 20, side="sell", type="limit", limit_price=490.0,
                                time_in_force="gtc", client_order_id="seed-1")
    pos = client.get_open_position("QQQ")
    assert (pos.qty, pos.avg_entry_price, pos.qty_available) == ("20", "480.5", "0")
    assert str(client.get_order_by_client_id("seed-1").id) == seeded["id"]
    srv.set_quote("QQQ", 490.0, 490.05)
    assert client.get_order_by_id(seeded["id"]).status == OrderStatus.FILLED
    assert client.get_all_positions() == []


def test_day_order_expires_at_the_close_on_the_controlled_clock(srv, client):
    srv.set_time(datetime(2026, 3, 2, 20, 59, tzinfo=timezone.utc))  # 15:59 ET
    day = client.submit_order(limit(90.0))
    gtc = client.submit_order(limit(90.0, time_in_force=TimeInForce.GTC))
    srv.advance_time(timedelta(minutes=2))
    assert client.get_order_by_id(day.id).status == OrderStatus.EXPIRED
    assert client.get_order_by_id(gtc.id).status == OrderStatus.NEW


def test_clock_calendar_assets_and_option_contracts(srv, client):
    clock = client.get_clock()
    assert clock.is_open is True
    assert clock.next_close == datetime(2026, 3, 2, 21, 0, tzinfo=timezone.utc)
    days = client.get_calendar(GetCalendarRequest(start=date(2026, 6, 29), end=date(2026, 7, 6)))
    assert date(2026, 7, 3) not in [d.date for d in days]  # Independence Day (observed)
    [black_friday] = client.get_calendar(GetCalendarRequest(start=date(2026, 11, 27), end=date(2026, 11, 27)))
    assert black_friday.close == datetime(2026, 11, 27, 13, 0)  # early close

    srv.add_asset("SPY", exchange="ARCA")
    assert client.get_asset("SPY").exchange == AssetExchange.ARCA
    srv.add_asset("HTB", shortable=False)
    with pytest.raises(APIError) as err:
        client.submit_order(market("HTB", side=OrderSide.SELL))
    assert err.value.status_code == 403

    srv.generate_option_chain("QQQ", ["2026-03-02", "2026-03-03"], [480, 485, 490])
    resp = client.get_option_contracts(GetOptionContractsRequest(
        underlying_symbols=["QQQ"], expiration_date=date(2026, 3, 2), type="call", strike_price_gte="485"))
    assert [c.symbol for c in resp.option_contracts] == ["QQQ260302C00485000", "QQQ260302C00490000"]
    assert resp.option_contracts[0].size == "100"


def test_pending_new_fill_on_submit_capped_by_quote_size():
    with FakeAlpacaServer(keys={KEY: SECRET}, clock_start=T0, emit_pending_new=True, fill_on_submit=True,
                          respect_quote_size=True) as srv:
        client = TradingClient(KEY, SECRET, paper=True, url_override=srv.trading_url)
        srv.set_quote("AAPL", 99.99, 100.01, bid_size=3, ask_size=4)
        ack = client.submit_order(market(qty=10))
        assert ack.status == OrderStatus.PENDING_NEW  # the POST answer precedes "new"
        assert client.get_order_by_id(ack.id).filled_qty == "4"  # filled at submit, 4 = ask size
        srv.set_quote("AAPL", 99.99, 100.02, bid_size=3, ask_size=4)
        srv.set_quote("AAPL", 99.99, 100.03, bid_size=3, ask_size=4)
        o = client.get_order_by_id(ack.id)
        assert (o.status, o.filled_qty, o.filled_avg_price) == (OrderStatus.FILLED, "10", "100.018")
        assert [e["event"] for e in srv.trade_events] == ["pending_new", "new", "partial_fill", "partial_fill",
                                                           "fill"]


def test_oco_exit_trailing_stop_short_sale_and_close_position(srv, client):
    srv.add_position("AAPL", 10, 100)
    oco = client.submit_order(limit(110.0, side=OrderSide.SELL, time_in_force=TimeInForce.GTC,
                                    order_class=OrderClass.OCO, take_profit=TakeProfitRequest(limit_price=110.0),
                                    stop_loss=StopLossRequest(stop_price=95.0)))
    assert [(leg.type.value, leg.stop_price, leg.status) for leg in oco.legs] == [("stop", "95", OrderStatus.NEW)]
    srv.set_quote("AAPL", 94.90, 95.00)  # stop leg fills at the bid, the take-profit is canceled
    after = client.get_order_by_id(oco.id)
    assert after.status == OrderStatus.CANCELED
    assert (after.legs[0].status, after.legs[0].filled_avg_price) == (OrderStatus.FILLED, "94.9")

    srv.add_position("MSFT", 10, 400)
    srv.set_quote("MSFT", 400.00, 400.02)
    trail = client.submit_order(TrailingStopOrderRequest(symbol="MSFT", qty=10, side=OrderSide.SELL,
                                                         time_in_force=TimeInForce.GTC, trail_price=2.0))
    srv.set_quote("MSFT", 405.00, 405.02)  # high-water mark 405 -> stop 403
    assert client.get_order_by_id(trail.id).stop_price == "403"
    srv.set_quote("MSFT", 402.99, 403.01)
    assert client.get_order_by_id(trail.id).filled_avg_price == "402.99"

    srv.set_quote("TSLA", 200.00, 200.10)
    client.submit_order(market("TSLA", qty=5, side=OrderSide.SELL))
    srv.set_quote("TSLA", 199.00, 199.10)
    pos = client.get_open_position("TSLA")
    assert (pos.qty, pos.side.value, pos.avg_entry_price, pos.market_value) == ("-5", "short", "199", "-995.25")
    close = client.close_position("TSLA")
    assert (close.side, close.qty) == (OrderSide.BUY, "5")
    srv.set_quote("TSLA", 198.00, 198.10)
    assert client.get_all_positions() == []


def test_raw_wire_protocols_json_data_stream_and_msgpack_trade_stream(srv, client):
    async def run():
        async with websockets.connect(srv.data_stream_url_for("sip")) as ws:  # no msgpack header -> JSON text
            assert json.loads(await ws.recv()) == [{"T": "success", "msg": "connected"}]
            await ws.send(json.dumps({"action": "auth", "key": KEY, "secret": SECRET}))
            assert json.loads(await ws.recv()) == [{"T": "success", "msg": "authenticated"}]
            await ws.send(json.dumps({"action": "subscribe", "trades": ["*"]}))
            sub = json.loads(await ws.recv())[0]
            assert (sub["T"], sub["trades"], sub["corrections"]) == ("subscription", ["*"], ["*"])
            await asyncio.to_thread(srv.push_trade, "MSFT", 410.5, 7)
            frame = await ws.recv()
            assert isinstance(frame, str)
            assert json.loads(frame) == [{"T": "t", "S": "MSFT", "t": "2026-03-02T15:00:00Z", "x": "V", "p": 410.5,
                                          "s": 7, "i": 1, "c": ["@"], "z": "C"}]
        async with websockets.connect(srv.stream_url, additional_headers={"Content-Type": "application/msgpack"}) as ws:
            await ws.send(msgpack.packb({"action": "authenticate", "data": {"key_id": KEY, "secret_key": SECRET}}))
            assert msgpack.unpackb(await ws.recv())["data"]["status"] == "authorized"
            await ws.send(msgpack.packb({"action": "listen", "data": {"streams": ["trade_updates"]}}))
            assert msgpack.unpackb(await ws.recv()) == {"stream": "listening", "data": {"streams": ["trade_updates"]}}
            order = await asyncio.to_thread(client.submit_order, limit(50.0, qty=1))
            update = msgpack.unpackb(await ws.recv())
            assert (update["stream"], update["data"]["event"]) == ("trade_updates", "new")
            assert update["data"]["order"]["id"] == str(order.id)
        async with websockets.connect(srv.stream_url) as ws:  # JSON in binary frames, like Alpaca paper
            await ws.send(json.dumps({"action": "authenticate", "data": {"key_id": KEY, "secret_key": "bad"}}))
            frame = await ws.recv()
            assert isinstance(frame, bytes) and json.loads(frame)["data"]["status"] == "unauthorized"
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await ws.recv()
            assert closed.value.rcvd.code == 1008

    asyncio.run(run())


# ============================================================================= market data ===
def test_bars_pagination_returns_every_bar_across_pages():
    with FakeAlpacaServer(keys={KEY: SECRET}, clock_start=T0, bars_max_page_size=100) as srv:
        idx = pd.date_range("2026-03-02 14:30", periods=250, freq="1min", tz="UTC")
        frame = pd.DataFrame({"open": range(250), "high": range(1, 251), "low": range(250),
                              "close": [x + 0.5 for x in range(250)], "volume": [100] * 250}, index=idx)
        assert srv.set_bars("AAPL", frame) == 250
        srv.set_bars("MSFT", frame.iloc[:30])
        data = StockHistoricalDataClient(KEY, SECRET, url_override=srv.data_url)
        bars = data.get_stock_bars(StockBarsRequest(symbol_or_symbols=["AAPL", "MSFT"],
                                                    timeframe=TimeFrame.Minute,
                                                    start=datetime(2026, 3, 2, tzinfo=timezone.utc)))
        assert len(bars["AAPL"]) == 250 and len(bars["MSFT"]) == 30
        assert bars["AAPL"][-1].close == 249.5 and bars["AAPL"][-1].timestamp == idx[-1].to_pydatetime()
        pages = srv.requests_to("/v2/stocks/bars")
        assert len(pages) == 3  # 280 bars, at most 100 per page
        assert [bool(p["query"].get("page_token")) for p in pages] == [False, True, True]

        limited = data.get_stock_bars(StockBarsRequest(symbol_or_symbols="AAPL", timeframe=TimeFrame.Minute,
                                                       limit=120))
        assert len(limited["AAPL"]) == 120
        five = data.get_stock_bars(StockBarsRequest(symbol_or_symbols="AAPL",
                                                    timeframe=TimeFrame(5, TimeFrameUnit.Minute)))
        assert len(five["AAPL"]) == 50 and (five["AAPL"][0].open, five["AAPL"][0].close) == (0, 4.5)
        single = requests.get(srv.data_url + "/v2/stocks/AAPL/bars",
                              params={"timeframe": "1Min", "limit": 7},
                              headers={"APCA-API-KEY-ID": KEY, "APCA-API-SECRET-KEY": SECRET}).json()
        assert single["symbol"] == "AAPL" and len(single["bars"]) == 7 and single["next_page_token"]

        srv.set_quote("AAPL", 249.4, 249.6)
        q = data.get_stock_latest_quote(StockLatestQuoteRequest(symbol_or_symbols="AAPL"))["AAPL"]
        assert (q.bid_price, q.ask_price) == (249.4, 249.6)


def test_data_stream_streams_bars_and_quotes_and_allows_one_connection_per_key(srv):
    with data_stream(srv) as (_stream, got, _th):
        srv.wait_for(lambda: srv.data_stream_subscribers >= 1, WAIT, message="data stream subscribed")
        srv.push_bar("AAPL", {"t": T0, "o": 10.0, "h": 11.0, "l": 9.5, "c": 10.5, "v": 1234})
        srv.set_quote("AAPL", 10.49, 10.51, bid_size=3, ask_size=7)
        bar, quote = drain(got, 2)
        assert (bar.symbol, bar.open, bar.high, bar.low, bar.close, bar.volume) == ("AAPL", 10, 11, 9.5, 10.5, 1234)
        assert bar.timestamp == T0
        assert (quote.bid_price, quote.ask_price, quote.bid_size, quote.ask_size) == (10.49, 10.51, 3, 7)

        # a second connection with the same key is refused with Alpaca's 406 ...
        async def second_connection():
            async with websockets.connect(srv.data_stream_url,
                                          additional_headers={"Content-Type": "application/msgpack"}) as ws:
                assert msgpack.unpackb(await ws.recv()) == [{"T": "success", "msg": "connected"}]
                await ws.send(msgpack.packb({"action": "auth", "key": KEY, "secret": SECRET}))
                return msgpack.unpackb(await ws.recv())

        assert asyncio.run(second_connection()) == [{"T": "error", "code": 406, "msg": "connection limit exceeded"}]
        # ... and so is alpaca-py's StockDataStream (which then backs off and retries)
        before = srv.stats["data_rejections"]
        with data_stream(srv, bars=("MSFT",), quotes=(), drop_on_exit=False):
            srv.wait_for(lambda: srv.stats["data_rejections"] > before, WAIT, message="second stream rejected")
        assert srv.data_stream_connections == 1
        srv.push_bar("AAPL", {"t": T0 + timedelta(minutes=1), "o": 10.5, "h": 10.6, "l": 10.4, "c": 10.55})
        assert next_event(got).close == 10.55  # the first connection is unaffected


# ============================================================================ trade_updates ===
def test_trade_updates_new_partial_fill_fill_in_order(srv, client):
    with trading_stream(srv) as events:
        srv.set_partial_fills(4)
        order = client.submit_order(market(qty=10, client_order_id="pf-1"))
        for ask in (100.10, 100.20, 100.30):
            srv.set_quote("AAPL", ask - 0.02, ask)
        got = drain(events, 4)
    assert [ev(e) for e in got] == ["new", "partial_fill", "partial_fill", "fill"]
    assert all(e.order.id == order.id for e in got)
    assert [(e.qty, e.price, e.position_qty) for e in got[1:]] == [(4, 100.1, 4), (4, 100.2, 8), (2, 100.3, 10)]
    assert [e.order.filled_qty for e in got] == ["0", "4", "8", "10"]
    assert got[-1].order.status == OrderStatus.FILLED and got[-1].order.filled_avg_price == "100.18"
    assert len({e.execution_id for e in got[1:]}) == 3
    assert client.get_open_position("AAPL").avg_entry_price == "100.18"  # (400.4 + 400.8 + 200.6) / 10


def test_trade_updates_for_replace_cancel_and_async_reject(srv, client):
    with trading_stream(srv) as events:
        o = client.submit_order(limit(90.0))
        n = client.replace_order_by_id(o.id, ReplaceOrderRequest(limit_price=91.0))
        client.cancel_order_by_id(n.id)
        got = drain(events, 5)
        srv.faults.reject_orders(reason="fake reject")
        r = client.submit_order(limit(89.0))
        got += drain(events, 2)
    assert [(ev(e), e.order.id) for e in got] == [
        ("new", o.id), ("replaced", o.id), ("new", n.id), ("pending_cancel", n.id), ("canceled", n.id),
        ("new", r.id), ("rejected", r.id)]
    assert got[1].order.replaced_by == n.id
    assert client.get_order_by_id(r.id).status == OrderStatus.REJECTED


# ========================================================================== fault injection ===
def test_fault_5xx_on_a_path(srv, client):
    srv.faults.http_error("/v2/account", status=500, count=2)
    for _ in range(2):
        with pytest.raises(APIError) as err:
            client.get_account()
        assert err.value.status_code == 500
    assert client.get_account().status.value == "ACTIVE"
    assert [r["status"] for r in srv.requests_to("/v2/account")] == [500, 500, 200]


def test_fault_429_with_retry_after(srv, client):
    client._retry_wait = 0  # alpaca-py sleeps 3 s between its own 429 retries; not in a unit test
    srv.faults.rate_limit("/v2/positions", count=2, retry_after=2)
    assert client.get_all_positions() == []  # alpaca-py retried through both 429s
    assert [r["status"] for r in srv.requests_to("/v2/positions")] == [429, 429, 200]
    srv.faults.rate_limit("/v2/positions", count=4, retry_after=2)  # more than its 3 retries
    with pytest.raises(APIError) as err:
        client.get_all_positions()
    assert err.value.status_code == 429 and err.value.response.headers["Retry-After"] == "2"
    assert err.value.code == 42910000


def test_fault_order_rejections_403_and_422(srv, client):
    srv.faults.insufficient_buying_power()
    with pytest.raises(APIError) as bp:
        client.submit_order(limit(90.0, client_order_id="bp-1"))
    assert bp.value.status_code == 403 and bp.value.message == "insufficient buying power"
    srv.faults.invalid_order(message="invalid order: qty must be a multiple of 100")
    with pytest.raises(APIError) as bad:
        client.submit_order(limit(90.0, client_order_id="bad-1"))
    assert bad.value.status_code == 422 and bad.value.message.endswith("multiple of 100")
    assert client.get_orders(GetOrdersRequest(status=QueryOrderStatus.ALL)) == []  # nothing was created
    assert client.submit_order(limit(90.0, client_order_id="bp-1")).status == OrderStatus.NEW


def test_fault_delayed_ack_then_query_by_client_order_id(srv, client):
    srv.faults.delay_ack(1.0)
    slow = TradingClient(KEY, SECRET, paper=True, url_override=srv.trading_url)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        fut = pool.submit(slow.submit_order, limit(90.0, client_order_id="slow-1"))
        with pytest.raises(concurrent.futures.TimeoutError):
            fut.result(timeout=0.2)  # our client "times out" ...
        found = client.get_order_by_client_id("slow-1")  # ... and finds the accepted order
        assert found.status == OrderStatus.NEW
        matching = [o for o in client.get_orders(GetOrdersRequest(status=QueryOrderStatus.ALL))
                    if o.client_order_id == "slow-1"]
        assert len(matching) == 1
        assert fut.result(timeout=WAIT).id == found.id  # the late acknowledgement is the same order

    srv.faults.delay_ack(0.05, drop_response=True)  # accepted, then the connection dies unanswered
    with pytest.raises(requests.exceptions.ConnectionError):
        slow.submit_order(limit(90.0, client_order_id="lost-ack"))
    assert client.get_order_by_client_id("lost-ack").status == OrderStatus.NEW


@pytest.mark.parametrize("when", ["before", "after"])
def test_fault_trade_stream_dropped_mid_fill_client_reconnects_and_requeries(srv, client, when):
    with trading_stream(srv) as events:
        order = client.submit_order(market(qty=10, client_order_id="drop-1"))
        assert ev(next_event(events)) == "new"
        srv.faults.drop_trade_stream(when=when, events=("fill",))
        srv.set_quote("AAPL", 99.99, 100.01)  # fills; the stream drops around the fill event
        if when == "after":
            fill = next_event(events)
            assert (ev(fill), fill.order.id) == ("fill", order.id)
        # alpaca-py reconnects by itself (its backoff: 0.5-1 s)
        srv.wait_for(lambda: srv.stats["trade_connections"] == 2 and srv.trade_stream_listeners == 1,
                     WAIT, message="trade stream reconnect")
        if when == "before":
            assert events.empty()  # the fill event was lost with the connection
        # after a reconnect the client must re-query: the order and the FILL activity are there
        assert client.get_order_by_client_id("drop-1").status == OrderStatus.FILLED
        fills = client.get("/account/activities/FILL")
        assert [(a["order_id"], a["qty"], a["price"]) for a in fills] == [(str(order.id), "10", "100.01")]
        # and the reconnected stream carries later events
        later = client.submit_order(limit(90.0))
        nxt = next_event(events)
        assert (ev(nxt), nxt.order.id) == ("new", later.id)
    assert srv.stats["trade_drops"] == 1


# ======================================================================== determinism / CLI ===
def test_seeded_ids_and_manual_clock_are_deterministic():
    def run():
        with FakeAlpacaServer(keys={KEY: SECRET}, clock_start=T0, id_seed=42) as s:
            c = TradingClient(KEY, SECRET, paper=True, url_override=s.trading_url)
            o = c.submit_order(market(client_order_id="det"))
            s.set_quote("AAPL", 99.0, 99.5)
            return str(o.id), s.activities()
    assert run() == run()


def test_cli_prints_urls():
    out = subprocess.run([sys.executable, "-m", "adapters.alpaca.fake_server", "--port", "0", "--duration", "0.2",
                          "--json"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout.splitlines()[0])
    assert info["trading_url"].startswith("http://127.0.0.1:")
    assert info["stream_url"].endswith("/stream") and info["data_stream_url"].endswith("/v2/iex")
