"""The fake Alpaca server behaving like the broker *in time*, driven by the unmodified alpaca-py
clients: asynchronous routing (`accepted` / `pending_new`, `new` later), asynchronous cancels
(`pending_cancel`, then `canceled`, with fills racing the cancel), the wash-trade refusal, an order
that lands after the client gave up, a 5xx answer after the order was created, and minute bars for
many symbols streamed on a compressed clock (and the wall-clock mode for soak runs).

Delays are real time; each test fixes them (``routing_delay`` / ``cancel_delay``) so the sequence
is deterministic, and waits end as soon as the condition holds.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import subprocess
import sys
import time
import warnings
from datetime import datetime, timedelta, timezone

import msgpack
import pytest
import requests
import websockets

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from alpaca.common.exceptions import APIError
    from alpaca.data.historical.stock import StockHistoricalDataClient
    from alpaca.data.requests import StockBarsRequest
    from alpaca.data.timeframe import TimeFrame
    from alpaca.trading.client import TradingClient
    from alpaca.trading.enums import OrderClass, OrderSide, OrderStatus, QueryOrderStatus, TimeInForce
    from alpaca.trading.requests import (
        GetOrdersRequest,
        LimitOrderRequest,
        MarketOrderRequest,
        StopLossRequest,
        StopOrderRequest,
        TakeProfitRequest,
        TrailingStopOrderRequest,
    )

from adapters.alpaca.fake_server import BarFeedConfig, FakeAlpacaServer, ServerConfig, expected_series
from tests.test_alpaca_fake_server import KEY, REPO_ROOT, SECRET, T0, WAIT, data_stream, drain, ev, next_event, \
    trading_stream

WASH_BODY = {"code": 40310000, "message": "potential wash trade detected. use complex orders"}


def limit(price, symbol="AAPL", qty=10, side=OrderSide.BUY, **kw):
    kw.setdefault("time_in_force", TimeInForce.DAY)
    return LimitOrderRequest(symbol=symbol, qty=qty, side=side, limit_price=price, **kw)


def market(symbol="AAPL", qty=10, side=OrderSide.BUY, **kw):
    return MarketOrderRequest(symbol=symbol, qty=qty, side=side, time_in_force=TimeInForce.DAY, **kw)


def stop(price, symbol="AAPL", qty=10, side=OrderSide.SELL, **kw):
    return StopOrderRequest(symbol=symbol, qty=qty, side=side, stop_price=price, time_in_force=TimeInForce.GTC, **kw)


def server(**options):
    return FakeAlpacaServer(keys={KEY: SECRET}, clock_start=T0, id_seed=1, **options)


def trading(srv):
    return TradingClient(KEY, SECRET, paper=True, url_override=srv.trading_url)


# ================================================================== defaults and presets ===
def test_defaults_and_broker_like_preset():
    cfg = ServerConfig()
    assert (cfg.async_routing, cfg.async_cancels, cfg.wash_trade_check) == (False, True, True)
    assert (cfg.ack_status, cfg.routing_delay, cfg.cancel_delay) == ("auto", (0.05, 0.2), (0.05, 0.2))
    bl = ServerConfig.broker_like()
    assert (bl.async_routing, bl.async_cancels, bl.wash_trade_check) == (True, True, True)
    with FakeAlpacaServer(keys={KEY: SECRET}, broker_like=True, async_cancels=False) as srv:
        assert (srv.config.async_routing, srv.config.async_cancels) == (True, False)  # explicit options win
    with pytest.raises(ValueError):
        ServerConfig.from_kwargs(ack_status="new")
    with pytest.raises(ValueError):
        ServerConfig.from_kwargs(routing_delay=(0.3, 0.1))


def test_routing_delays_are_seeded_jitter_in_the_configured_range():
    def delays():
        with server(async_routing=True, routing_delay=(0.05, 0.2), latency_seed=5) as srv:
            c = trading(srv)
            for k in range(4):
                c.submit_order(limit(90.0 + k, qty=1))
            srv.wait_idle()
            return [t["delay"] for t in srv.engine.timings]

    first = delays()
    assert first == delays()  # same seed, same delays
    assert len(first) == 4 and len(set(first)) == 4 and all(0.05 <= d <= 0.2 for d in first)


# ================================================================== asynchronous routing ===
@pytest.mark.parametrize("ack_status", ["accepted", "pending_new"])
def test_async_ack_then_new_later_and_no_trading_before_new(ack_status):
    with server(async_routing=True, ack_status=ack_status, routing_delay=0.4) as srv:
        client = trading(srv)
        srv.set_quote("AAPL", 99.98, 100.02)
        with trading_stream(srv) as events:
            t_post = time.monotonic()
            ack = client.submit_order(market(qty=10, client_order_id="async-1"))
            assert ack.status == OrderStatus(ack_status) and ack.filled_qty == "0"
            assert client.get_order_by_id(ack.id).status == OrderStatus(ack_status)  # GET: the state now
            assert client.get_order_by_client_id("async-1").id == ack.id
            srv.set_quote("AAPL", 99.99, 100.03)  # not routed yet: no fill on this tick
            assert client.get_order_by_id(ack.id).filled_qty == "0"
            first = next_event(events)
            if ack_status == "pending_new":
                assert (ev(first), first.order.status) == ("pending_new", OrderStatus.PENDING_NEW)
                first = next_event(events)
            assert (ev(first), first.order.id, first.order.status) == ("new", ack.id, OrderStatus.NEW)
            assert time.monotonic() - t_post >= 0.4
            assert client.get_order_by_id(ack.id).status == OrderStatus.NEW
            srv.set_quote("AAPL", 100.00, 100.05)  # routed: this tick fills at the ask
            fill = next_event(events)
            assert (ev(fill), fill.qty, fill.price, fill.position_qty) == ("fill", 10, 100.05, 10)
        assert [e["event"] for e in srv.trade_events] == ([ack_status] if ack_status == "pending_new" else []) + [
            "new", "fill"]


def test_auto_ack_status_is_pending_new_in_session_and_accepted_outside():
    with server(async_routing=True, routing_delay=0.05) as srv:  # ack_status="auto" by default
        client = trading(srv)
        assert client.submit_order(limit(90.0, qty=1)).status == OrderStatus.PENDING_NEW  # Monday 10:00 ET
        srv.wait_idle()
        srv.set_time(datetime(2026, 3, 7, 15, 0, tzinfo=timezone.utc))  # Saturday
        assert client.submit_order(limit(90.0, qty=1, time_in_force=TimeInForce.GTC)).status == OrderStatus.ACCEPTED
        srv.wait_idle()
        assert [e["event"] for e in srv.trade_events] == ["pending_new", "new", "expired", "new"]


def test_async_routing_with_fill_on_submit_fills_at_routing_against_that_moments_quote():
    with server(async_routing=True, ack_status="accepted", routing_delay=0.2, fill_on_submit=True) as srv:
        client = trading(srv)
        srv.set_quote("AAPL", 99.98, 100.02)
        ack = client.submit_order(market(qty=5))
        assert ack.status == OrderStatus.ACCEPTED
        srv.set_quote("AAPL", 100.08, 100.10)  # the quote when the order reaches the market
        srv.wait_idle()
        o = client.get_order_by_id(ack.id)
        assert (o.status, o.filled_avg_price) == (OrderStatus.FILLED, "100.1")


def test_order_canceled_before_it_is_routed_never_trades():
    with server(async_routing=True, ack_status="accepted", routing_delay=0.3, cancel_delay=0.05) as srv:
        client = trading(srv)
        srv.set_quote("AAPL", 99.98, 100.02)
        ack = client.submit_order(market(qty=5))
        client.cancel_order_by_id(ack.id)
        srv.wait_idle()
        srv.set_quote("AAPL", 99.99, 100.03)
        assert client.get_order_by_id(ack.id).status == OrderStatus.CANCELED
        assert [e["event"] for e in srv.trade_events] == ["pending_cancel", "canceled"]


# ==================================================================== asynchronous cancels ===
def test_cancel_is_pending_then_canceled_and_a_partial_fill_can_race_it():
    with server(cancel_delay=0.4) as srv:  # async_cancels is the default
        client = trading(srv)
        srv.set_partial_fills(4)
        with trading_stream(srv) as events:
            o = client.submit_order(limit(100.0, qty=10, client_order_id="race-1"))
            assert ev(next_event(events)) == "new"
            client.cancel_order_by_id(o.id)  # 204 at once
            pc = next_event(events)
            assert (ev(pc), pc.order.status) == ("pending_cancel", OrderStatus.PENDING_CANCEL)
            srv.set_quote("AAPL", 99.90, 99.95)  # crosses while the cancel is pending: 4 shares trade
            part = next_event(events)
            assert (ev(part), part.qty, part.price, part.order.status) == (
                "partial_fill", 4, 99.95, OrderStatus.PENDING_CANCEL)
            assert client.get_order_by_id(o.id).filled_qty == "4"
            done = next_event(events)
            assert (ev(done), done.order.status, done.order.filled_qty) == ("canceled", OrderStatus.CANCELED, "4")
        assert client.get_open_position("AAPL").qty == "4"
        assert client.get_orders() == []


def test_fill_that_completes_the_order_beats_the_pending_cancel():
    with server(cancel_delay=0.4) as srv:
        client = trading(srv)
        with trading_stream(srv) as events:
            o = client.submit_order(limit(100.0, qty=10))
            client.cancel_order_by_id(o.id)
            srv.set_quote("AAPL", 99.90, 99.95)  # fills completely before the cancel lands
            got = drain(events, 3)
            srv.wait_idle()
        assert [ev(e) for e in got] == ["new", "pending_cancel", "fill"]
        assert [e["event"] for e in srv.trade_events] == ["new", "pending_cancel", "fill"]  # no `canceled`
        assert client.get_order_by_id(o.id).status == OrderStatus.FILLED
        with pytest.raises(APIError) as err:
            client.cancel_order_by_id(o.id)
        assert err.value.status_code == 422 and err.value.message == 'order is already in "filled" state'


def test_pending_cancel_exit_still_holds_the_shares_and_synchronous_cancels_are_an_option():
    with server(cancel_delay=0.3) as srv:
        srv.add_position("AAPL", 10, 100)
        client = trading(srv)
        exit_ = client.submit_order(limit(110.0, qty=10, side=OrderSide.SELL))
        client.cancel_order_by_id(exit_.id)
        with pytest.raises(APIError) as held:  # the shares stay held until `canceled`
            client.submit_order(limit(111.0, qty=10, side=OrderSide.SELL))
        assert held.value.status_code == 403 and "insufficient qty available" in held.value.message
        srv.wait_idle()
        assert client.submit_order(limit(111.0, qty=10, side=OrderSide.SELL)).status == OrderStatus.NEW
    with server(async_cancels=False) as srv:
        client = trading(srv)
        o = client.submit_order(limit(90.0))
        client.cancel_order_by_id(o.id)
        assert client.get_order_by_id(o.id).status == OrderStatus.CANCELED
        assert [e["event"] for e in srv.trade_events] == ["new", "canceled"]


# ========================================================================== wash trades ===
def test_wash_trade_refused_with_403_and_alpacas_body():
    with server() as srv:  # wash_trade_check is the default
        client = trading(srv)
        srv.set_quote("AAPL", 99.98, 100.02)
        entry = client.submit_order(limit(100.0, qty=10, client_order_id="entry"))
        raw = requests.post(srv.trading_url + "/v2/orders", json={
            "symbol": "AAPL", "qty": "10", "side": "sell", "type": "stop", "stop_price": "95",
            "time_in_force": "gtc", "client_order_id": "stop-1"},
            headers={"APCA-API-KEY-ID": KEY, "APCA-API-SECRET-KEY": SECRET})
        assert (raw.status_code, raw.json()) == (403, WASH_BODY)
        with pytest.raises(APIError) as err:  # the same through alpaca-py
            client.submit_order(stop(95.0, client_order_id="stop-2"))
        assert (err.value.status_code, err.value.code, err.value.message) == (403, *WASH_BODY.values())
        for coid in ("stop-1", "stop-2"):  # nothing was created
            with pytest.raises(APIError):
                client.get_order_by_client_id(coid)
        # limit against limit: refused when buy limit >= sell limit, accepted above it
        with pytest.raises(APIError) as cross:
            client.submit_order(limit(100.0, qty=5, side=OrderSide.SELL))
        assert cross.value.status_code == 403
        assert client.submit_order(limit(100.01, qty=5, side=OrderSide.SELL)).status == OrderStatus.NEW
        with pytest.raises(APIError):  # a market order against any working opposite order
            client.submit_order(market(qty=1, side=OrderSide.SELL))
        # exempt: trailing stops, and complex orders
        trail = client.submit_order(TrailingStopOrderRequest(symbol="AAPL", qty=1, side=OrderSide.SELL,
                                                             time_in_force=TimeInForce.GTC, trail_price=1.0))
        assert trail.status == OrderStatus.NEW
        bracket = client.submit_order(limit(99.0, qty=1, side=OrderSide.SELL, order_class=OrderClass.BRACKET,
                                            take_profit=TakeProfitRequest(limit_price=95.0),
                                            stop_loss=StopLossRequest(stop_price=102.0)))
        assert bracket.status == OrderStatus.NEW
        assert client.get_order_by_client_id("entry").status == OrderStatus.NEW  # untouched by the refusals


def test_protective_stop_refused_while_the_entry_remainder_works_until_it_is_canceled():
    """The domain case: the entry partly filled, its remainder still works, the protective stop is
    refused; canceling the remainder frees the stop only once `canceled` has arrived."""
    with server(cancel_delay=0.3) as srv:
        client = trading(srv)
        srv.set_partial_fills(4)
        entry = client.submit_order(limit(100.0, qty=10))
        srv.set_quote("AAPL", 99.90, 99.95)
        assert client.get_order_by_id(entry.id).status == OrderStatus.PARTIALLY_FILLED
        with pytest.raises(APIError) as refused:
            client.submit_order(stop(98.0, qty=4))
        assert (refused.value.status_code, refused.value.message) == (403, WASH_BODY["message"])
        client.cancel_order_by_id(entry.id)
        with pytest.raises(APIError) as still:  # pending_cancel can still fill: still refused
            client.submit_order(stop(98.0, qty=4))
        assert still.value.status_code == 403
        srv.wait_for(lambda: client.get_order_by_id(entry.id).status == OrderStatus.CANCELED, WAIT)
        assert client.submit_order(stop(98.0, qty=4)).status == OrderStatus.NEW


def test_wash_trade_details_and_switch_off():
    with server(wash_trade_details=True) as srv:
        client = trading(srv)
        entry = client.submit_order(limit(100.0))
        with pytest.raises(APIError) as err:
            client.submit_order(stop(95.0))
        body = json.loads(str(err.value))
        assert body == {**WASH_BODY, "existing_order_id": str(entry.id),
                        "reject_reason": "opposite side limit order exists"}
    with server(wash_trade_check=False) as srv:
        client = trading(srv)
        client.submit_order(limit(100.0))
        assert client.submit_order(stop(95.0)).status == OrderStatus.NEW


# ========================================================================= late / lost POSTs ===
def test_order_lands_after_the_client_gave_up_and_is_found_by_client_order_id():
    with server() as srv:
        client = trading(srv)
        fault = srv.faults.land_late(0.8)  # the answer is dropped (default)
        slow = trading(srv)
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            fut = pool.submit(slow.submit_order, limit(90.0, client_order_id="late-1"))
            with pytest.raises(concurrent.futures.TimeoutError):
                fut.result(timeout=0.3)  # our client gives up ...
            with pytest.raises(APIError) as missing:  # ... and the broker does not know the order yet
                client.get_order_by_client_id("late-1")
            assert missing.value.status_code == 404
            found = srv.wait_for(lambda: _by_coid(client, "late-1"), WAIT, message="late order")
            assert found.status == OrderStatus.NEW  # it landed and was routed after all
            with pytest.raises(requests.exceptions.ConnectionError):
                fut.result(timeout=WAIT)  # the connection closed without an answer
        assert fault.outcomes == [("landed", str(found.id), "late-1")]


def test_resubmission_after_timeout_races_the_late_landing():
    with server() as srv:
        client = trading(srv)
        fault = srv.faults.land_late(0.6)
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            fut = pool.submit(trading(srv).submit_order, limit(90.0, client_order_id="late-2"))
            with pytest.raises(concurrent.futures.TimeoutError):
                fut.result(timeout=0.2)
            assert _by_coid(client, "late-2") is None
            resubmitted = client.submit_order(limit(90.0, client_order_id="late-2"))  # same id: idempotent
            with pytest.raises(requests.exceptions.ConnectionError):
                fut.result(timeout=WAIT)
        assert fault.outcomes == [("refused", 422, "client_order_id must be unique")]
        orders = client.get_orders(GetOrdersRequest(status=QueryOrderStatus.ALL))
        assert [o.id for o in orders if o.client_order_id == "late-2"] == [resubmitted.id]


@pytest.mark.parametrize("status", [500, 503])
def test_5xx_after_the_order_was_created(status):
    with server() as srv:
        client = trading(srv)
        fault = srv.faults.error_after_create(status)
        with pytest.raises(APIError) as err:
            client.submit_order(limit(90.0, client_order_id="err-1"))
        assert err.value.status_code == status
        created = client.get_order_by_client_id("err-1")  # the order exists despite the error
        assert created.status == OrderStatus.NEW and fault.order_ids == [str(created.id)]
        with pytest.raises(APIError) as dup:  # a blind retry with the same id is refused, not doubled
            client.submit_order(limit(90.0, client_order_id="err-1"))
        assert (dup.value.status_code, dup.value.message) == (422, "client_order_id must be unique")
        assert [r["status"] for r in srv.requests_to("/v2/orders", "POST")] == [status, 422]


def test_504_after_create_is_retried_by_alpaca_py_itself():
    with server() as srv:
        client = trading(srv)
        client._retry_wait = 0  # alpaca-py retries 429 and 504, 3 s apart by default
        srv.faults.error_after_create(504)
        with pytest.raises(APIError) as err:
            client.submit_order(limit(90.0, client_order_id="err-504"))
        assert (err.value.status_code, err.value.message) == (422, "client_order_id must be unique")
        assert [r["status"] for r in srv.requests_to("/v2/orders", "POST")] == [504, 422]
        assert client.get_order_by_client_id("err-504").status == OrderStatus.NEW


def _by_coid(client, coid):
    try:
        return client.get_order_by_client_id(coid)
    except APIError as e:
        if e.status_code == 404:
            return None
        raise


# ===================================================================== streamed minute bars ===
SYMBOLS = ["AAPL", "AMD", "AMZN", "GOOG", "META", "MSFT", "NVDA", "QQQ", "SPY", "TSLA"]


def test_ten_symbols_five_compressed_minutes_streamed_interleaved():
    prices = {s: 100.0 + 25 * i for i, s in enumerate(SYMBOLS)}
    with server() as srv:
        with data_stream(srv, bars=SYMBOLS, quotes=()) as (_stream, got, _th):
            srv.wait_for(lambda: srv.data_stream_subscribers >= 1, WAIT, message="subscribed")
            t_start = time.monotonic()
            feed = srv.start_bar_feed(symbols=prices, seed=11, speed=60.0, start=T0, minutes=5, lag=1.0,
                                      jitter=2.0, warmup_minutes=30)
            bars = drain(got, 50, timeout=10)
            assert feed.wait(WAIT)
            elapsed = time.monotonic() - t_start
        # 50 bars: 5 per symbol, 10 per minute, each minute complete before the next one starts
        assert len(bars) == 50
        labels = [b.timestamp for b in bars]
        minutes = [T0 + timedelta(minutes=k) for k in range(5)]
        assert labels == sorted(labels) and sorted(set(labels)) == minutes
        assert all(labels.count(m) == 10 for m in minutes)
        assert all(sorted(b.symbol for b in bars if b.timestamp == m) == SYMBOLS for m in minutes)
        # interleaved: within a minute the symbols arrive in the seeded jitter order, never alphabetical,
        # and the order changes from minute to minute
        orders = [[b.symbol for b in bars if b.timestamp == m] for m in minutes]
        assert all(o != SYMBOLS for o in orders) and len({tuple(o) for o in orders}) == 5
        assert orders == [[p["symbol"] for p in feed.bars_published() if p["t"] == m] for m in minutes]
        assert (bars[0].symbol, bars[0].timestamp, bars[0].close) == ("AMD", T0, 124.55)  # pinned: seed 11
        # published 1-3 simulated seconds after the minute's end, on the compressed server clock
        for p in feed.bars_published():
            lag = (p["at"] - (p["t"] + timedelta(minutes=1))).total_seconds()
            assert 1.0 <= lag <= 3.0 and p["clock"] >= p["at"]
        assert 4.5 <= elapsed < 9.0  # 5 simulated minutes at 60x, plus the lag
        # the values are the seeded walk; the REST endpoint serves warm-up + live as one series
        want = expected_series(prices, seed=11, start=T0, minutes=5, warmup_minutes=30)
        for b in bars:
            w = want[b.symbol][30 + int((b.timestamp - T0).total_seconds() // 60)]
            assert (b.open, b.high, b.low, b.close, b.volume, b.trade_count, b.vwap) == (
                w.o, w.h, w.l, w.c, w.v, w.n, w.vw)
        first = [(b.symbol, b.close) for b in bars if b.timestamp == T0 and b.symbol in ("AAPL", "TSLA")]
        assert sorted(first) == sorted((s, want[s][30].c) for s in ("AAPL", "TSLA"))
        rest = StockHistoricalDataClient(KEY, SECRET, url_override=srv.data_url).get_stock_bars(StockBarsRequest(
            symbol_or_symbols=SYMBOLS, timeframe=TimeFrame.Minute, start=T0 - timedelta(minutes=30)))
        for s in SYMBOLS:
            assert [(x.timestamp, x.close) for x in rest[s]] == [(w.t, w.c) for w in want[s]]
            assert len(rest[s]) == 35 and rest[s][0].timestamp == T0 - timedelta(minutes=30)


def test_series_is_reproducible_and_independent_per_symbol():
    a = expected_series({"AAPL": 190.0, "MSFT": 410.0}, seed=3, start=T0, minutes=20)
    b = expected_series({"AAPL": 190.0}, seed=3, start=T0, minutes=20)
    assert a["AAPL"] == b["AAPL"]  # adding a symbol does not change the others
    assert a["AAPL"] != expected_series({"AAPL": 190.0}, seed=4, start=T0, minutes=20)["AAPL"]
    closes = [x.c for x in a["AAPL"]]
    assert all(x.l <= min(x.o, x.c) and x.h >= max(x.o, x.c) and x.l <= x.vw <= x.h for x in a["AAPL"])
    assert all(abs(c2 / c1 - 1) < 0.01 for c1, c2 in zip(closes, closes[1:]))  # a gentle walk
    assert [x.o for x in a["AAPL"][1:]] == closes[:-1]  # each bar opens at the previous close


def test_session_only_feed_skips_the_night():
    from adapters.alpaca.fake_server import BarFeed

    with server() as srv:
        close = datetime(2026, 3, 2, 20, 58, tzinfo=timezone.utc)  # 15:58 ET
        feed = BarFeed(srv, BarFeedConfig(symbols=["SPY"], start=close, session_only=True, lag=1.0, jitter=0.0))
        assert [label for _, _, label in feed.schedule_preview(3)] == [
            close, close + timedelta(minutes=1), datetime(2026, 3, 3, 14, 30, tzinfo=timezone.utc)]


def test_feed_bars_fill_resting_orders_and_the_clock_runs_compressed():
    with server() as srv:
        client = trading(srv)
        feed = srv.start_bar_feed(symbols={"AAPL": 190.0}, seed=2, speed=120.0, start=T0, minutes=3, jitter=0.5)
        order = client.submit_order(market("AAPL", qty=3))
        t0 = srv.now()
        time.sleep(0.5)
        advanced = (srv.now() - t0).total_seconds()
        assert 50 <= advanced <= 75  # 0.5 s real at 120x
        assert feed.wait(WAIT)
        want = expected_series({"AAPL": 190.0}, seed=2, start=T0, minutes=3)["AAPL"]
        o = client.get_order_by_id(order.id)
        assert (o.status, o.filled_avg_price) == (OrderStatus.FILLED, str(want[0].c).rstrip("0").rstrip("."))


def test_updated_bars_follow_thirty_seconds_later_and_replace_the_stored_bar():
    async def run(srv):
        async with websockets.connect(srv.data_stream_url, additional_headers={"Content-Type": "application/msgpack"}) as ws:
            await ws.recv()
            await ws.send(msgpack.packb({"action": "auth", "key": KEY, "secret": SECRET}))
            await ws.recv()
            await ws.send(msgpack.packb({"action": "subscribe", "bars": ["AAPL"], "updatedBars": ["AAPL"]}))
            await ws.recv()
            feed = await asyncio.to_thread(srv.start_bar_feed, symbols=["AAPL"], seed=5, speed=300.0, start=T0,
                                           minutes=2, updated_bar_prob=1.0)
            got = []
            while len(got) < 4:
                got += msgpack.unpackb(await ws.recv(), timestamp=3)
            return feed, got

    with server() as srv:
        feed, got = asyncio.run(run(srv))
        # the correction of minute M comes at M + 90 s: after M's bar, before M+1's (due at M + 121..123 s)
        assert [(m["T"], m["t"]) for m in got] == [
            ("b", T0), ("u", T0), ("b", T0 + timedelta(minutes=1)), ("u", T0 + timedelta(minutes=1))]
        assert got[1]["v"] > got[0]["v"] and got[1]["c"] == got[0]["c"]
        updated = [p for p in feed.published if p["kind"] == "updated"]
        assert [(p["at"] - p["t"]).total_seconds() for p in updated] == [90.0, 90.0]
        raw = requests.get(srv.data_url + "/v2/stocks/AAPL/bars", params={"timeframe": "1Min"},
                           headers={"APCA-API-KEY-ID": KEY, "APCA-API-SECRET-KEY": SECRET}).json()["bars"]
        assert [b["v"] for b in raw] == [got[1]["v"], got[3]["v"]]  # REST serves the corrected bars


def test_wall_clock_mode_for_soak_runs():
    with FakeAlpacaServer(keys={KEY: SECRET}, clock_start=T0) as srv:
        before = datetime.now(timezone.utc)
        assert srv.bar_feed is None
        feed = srv.start_bar_feed(symbols=["AAPL", "MSFT", "QQQ"], speed=None, warmup_minutes=5, lag=1.0,
                                  jitter=2.0)
        try:
            now = datetime.now(timezone.utc)
            assert abs((srv.now() - now).total_seconds()) < 1  # the server runs on the wall clock again
            minute = now.replace(second=0, microsecond=0)
            assert feed.start_minute in (minute, minute - timedelta(minutes=1)) and feed.start_minute <= now
            # the current minute's bars are due 1-3 s after it ends, interleaved
            # (the preview starts at the first minute the feed has not scheduled yet: on a loaded
            # machine the feed may already have queued a minute or two)
            sched = feed.schedule_preview(6)
            assert [s for _, s, _ in sched[:3]] != ["AAPL", "MSFT", "QQQ"] or [s for _, s, _ in sched[3:]] != [
                "AAPL", "MSFT", "QQQ"]
            for at, _sym, label in sched:
                assert feed.start_minute <= label <= feed.start_minute + timedelta(minutes=3)
                assert 1.0 <= (at - label - timedelta(minutes=1)).total_seconds() <= 3.0
            assert sched[0][0] > before
            # warm-up: the five minutes before the current one are already served over REST
            rest = StockHistoricalDataClient(KEY, SECRET, url_override=srv.data_url).get_stock_bars(
                StockBarsRequest(symbol_or_symbols=["AAPL", "MSFT", "QQQ"], timeframe=TimeFrame.Minute,
                                 start=feed.start_minute - timedelta(minutes=10)))
            for s in ("AAPL", "MSFT", "QQQ"):
                assert [b.timestamp for b in rest[s]] == [
                    feed.start_minute - timedelta(minutes=k) for k in range(5, 0, -1)]
        finally:
            feed.stop()
        assert feed.wait(WAIT)


def test_cli_starts_a_bar_feed():
    out = subprocess.run([sys.executable, "-m", "adapters.alpaca.fake_server", "--port", "0", "--duration", "1",
                          "--json", "--feed", "AAPL=190,MSFT", "--speed", "600", "--warmup", "3", "--broker-like"],
                         cwd=REPO_ROOT, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.splitlines()[0])["data_url"].startswith("http://127.0.0.1:")
