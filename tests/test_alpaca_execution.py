"""The Alpaca execution client inside a REAL Nautilus ``TradingNode``, against the local fake
Alpaca server (127.0.0.1 only).

Each test starts its own ``FakeAlpacaServer`` (manual clock: Monday 2026-03-02 10:00 ET, seeded
ids) and a TradingNode with ``AlpacaLiveExecClientFactory`` registered under "ALPACA",
reconciliation on, no data client. The scenario runs as a coroutine inside the node's event loop
and drives a tiny strategy directly (no cross-thread calls); the fake server runs in its own
thread. Waits poll for conditions (no fixed sleeps).

``ALPACA_TEST_LOG_LEVEL=WARNING pytest tests/test_alpaca_execution.py -s`` shows the node's logs.
"""

from __future__ import annotations

import asyncio
import os
import time
import warnings
from datetime import datetime, timezone
from decimal import Decimal

import pytest
import requests

from nautilus_trader.config import (
    InstrumentProviderConfig,
    LiveExecEngineConfig,
    LoggingConfig,
    StrategyConfig,
    TradingNodeConfig,
)
from nautilus_trader.live.node import TradingNode
from nautilus_trader.model.enums import OrderSide, OrderStatus, OrderType, PositionSide, TimeInForce
from nautilus_trader.model.events import (
    OrderAccepted,
    OrderCanceled,
    OrderFilled,
    OrderRejected,
    OrderUpdated,
)
from nautilus_trader.model.identifiers import InstrumentId, TraderId
from nautilus_trader.model.objects import Price, Quantity
from nautilus_trader.trading.strategy import Strategy

from adapters.alpaca import (
    ALPACA_VENUE,
    AlpacaExecClientConfig,
    AlpacaLiveDataClientFactory,
    AlpacaLiveExecClientFactory,
    AlpacaLiveTradingError,
    check_live_allowed,
    mask,
    resolve_credentials,
)
from adapters.alpaca.fake_server import FakeAlpacaServer
from strategies.risk_control import BROKER_STATUS_TOPIC
from tests.node_harness import drive, until

warnings.filterwarnings("ignore", category=DeprecationWarning)

KEY, SECRET = "PKTESTKEY", "test-secret"
T0 = datetime(2026, 3, 2, 15, 0, tzinfo=timezone.utc)  # Monday 10:00 ET
AAPL = InstrumentId.from_str("AAPL.ALPACA")
WAIT = 6.0
CONNECT_TIMEOUT = 10.0
LOG_LEVEL = os.environ.get("ALPACA_TEST_LOG_LEVEL", "ERROR")


def warm_up(s: FakeAlpacaServer) -> None:
    """The fake's first /v2/clock imports exchange_calendars (~1 s, more on a busy machine):
    pay that before the node starts, so start-up timing does not depend on it."""
    requests.get(f"{s.trading_url}/v2/clock", timeout=60,
                 headers={"APCA-API-KEY-ID": KEY, "APCA-API-SECRET-KEY": SECRET}).raise_for_status()


@pytest.fixture
def srv():
    with FakeAlpacaServer(keys={KEY: SECRET}, clock_start=T0, id_seed=7) as s:
        warm_up(s)
        s.set_quote("AAPL", bid=189.99, ask=190.01)
        yield s


class Probe(Strategy):
    """Records every event; the test calls its order methods directly on the node's loop."""

    def __init__(self) -> None:
        super().__init__(StrategyConfig(strategy_id="PROBE-001", order_id_tag="001"))
        self.events: list = []
        self.quotes: list = []

    def on_event(self, event) -> None:
        self.events.append(event)

    def on_quote_tick(self, tick) -> None:
        self.quotes.append(tick)

    def of(self, cls, client_order_id=None) -> list:
        return [e for e in self.events if isinstance(e, cls)
                and (client_order_id is None or e.client_order_id == client_order_id)]

    def market(self, side: OrderSide, qty: int):
        order = self.order_factory.market(AAPL, side, Quantity.from_int(qty), time_in_force=TimeInForce.DAY)
        self.submit_order(order)
        return order

    def limit(self, side: OrderSide, qty: int, price: str, tif: TimeInForce = TimeInForce.DAY):
        order = self.order_factory.limit(AAPL, side, Quantity.from_int(qty), Price.from_str(price),
                                         time_in_force=tif)
        self.submit_order(order)
        return order


class Node:
    """A TradingNode on its own event loop, run in the calling thread by ``run(scenario)``."""

    def __init__(self, srv: FakeAlpacaServer, with_data: bool = False, **exec_overrides) -> None:
        self.srv = srv
        self.loop = asyncio.new_event_loop()
        exec_cfg = dict(
            api_key=KEY, api_secret=SECRET,
            trading_url=srv.trading_url, trading_stream_url=srv.stream_url,
            instrument_provider=InstrumentProviderConfig(load_ids=frozenset({AAPL})),
            request_timeout_s=5.0, max_retries=3,
            retry_initial_delay_s=0.05, retry_max_delay_s=0.2,
            reconnect_initial_delay_s=0.05, reconnect_max_delay_s=0.2,
            heartbeat_interval_s=1.0,
        )
        exec_cfg.update(exec_overrides)
        data_clients = {}
        if with_data:
            from adapters.alpaca.config import AlpacaDataClientConfig

            data_clients["ALPACA"] = AlpacaDataClientConfig(
                api_key=KEY, api_secret=SECRET, trading_url=srv.trading_url, data_url=srv.data_url,
                data_stream_url=srv.data_stream_url,
                instrument_provider=InstrumentProviderConfig(load_ids=frozenset({AAPL})))
        config = TradingNodeConfig(
            trader_id=TraderId("TESTER-001"),
            logging=LoggingConfig(log_level=LOG_LEVEL),
            data_clients=data_clients,
            exec_engine=LiveExecEngineConfig(reconciliation=True),
            exec_clients={"ALPACA": AlpacaExecClientConfig(**exec_cfg)},
            timeout_connection=CONNECT_TIMEOUT, timeout_reconciliation=10.0, timeout_portfolio=5.0,
            timeout_disconnection=3.0, timeout_post_stop=0.2, timeout_shutdown=1.0,
        )
        self.node = TradingNode(config=config, loop=self.loop)
        self.strategy = Probe()
        self.node.trader.add_strategy(self.strategy)
        self.node.add_exec_client_factory("ALPACA", AlpacaLiveExecClientFactory)
        if with_data:
            self.node.add_data_client_factory("ALPACA", AlpacaLiveDataClientFactory)
        self.node.build()
        self.statuses: list = []
        self.node.kernel.msgbus.subscribe(topic=BROKER_STATUS_TOPIC, handler=self.statuses.append)

    @property
    def cache(self):
        return self.node.kernel.cache

    @property
    def client(self):
        return self.node.kernel.exec_engine._clients[next(iter(self.node.kernel.exec_engine._clients))]

    async def wait(self, predicate, timeout: float = WAIT, what: str = "condition"):
        return await until(predicate, timeout, what)

    def run(self, scenario, timeout: float = 14.0) -> None:
        try:
            drive(self.node, self.loop, lambda: self.strategy.is_running, lambda: scenario(self), timeout,
                  start_timeout=10.0)
        finally:
            self.node.dispose()


def broker_orders(srv, status="all") -> list[dict]:
    return srv.orders(status)


# --------------------------------------------------------------------------------------------- #
# Basics
# --------------------------------------------------------------------------------------------- #

def test_market_buy_then_sell_with_fees(srv):
    def scenario_factory():
        async def scenario(n: Node):
            s = n.strategy
            buy = s.market(OrderSide.BUY, 10)
            await n.wait(lambda: any(o["client_order_id"] == buy.client_order_id.value for o in broker_orders(srv)),
                         what="order at broker")
            srv.set_quote("AAPL", bid=190.00, ask=190.02)
            await n.wait(lambda: n.cache.order(buy.client_order_id).status == OrderStatus.FILLED, what="buy fill")
            fill = s.of(OrderFilled, buy.client_order_id)[0]
            assert fill.last_px == Price.from_str("190.02") and fill.last_qty == Quantity.from_int(10)
            assert fill.commission.as_decimal() == Decimal("0.00")
            sell = s.market(OrderSide.SELL, 10)
            await n.wait(lambda: any(o["client_order_id"] == sell.client_order_id.value for o in broker_orders(srv)),
                         what="sell at broker")
            srv.set_quote("AAPL", bid=191.00, ask=191.02)
            await n.wait(lambda: n.cache.order(sell.client_order_id).status == OrderStatus.FILLED, what="sell fill")
            sfill = s.of(OrderFilled, sell.client_order_id)[0]
            assert sfill.last_px == Price.from_str("191.00")
            # rates on the fill's New York date 2026-03-02 (adapters/fees.py): SEC $0.00 per $1M
            # (2025-05-14 .. 2026-04-03) + TAF 10 x 0.000195 = 0.00195 -> 0.00 (was 0.05 at the
            # undated $27.80/$1M: SEC 10 x 191 x 27.8e-6 = 0.0531)
            assert sfill.commission.as_decimal() == Decimal("0.00")
            assert sfill.trade_id.value in {a["id"].split("::")[1] for a in srv.activities(["FILL"])}
            pos = n.cache.positions(instrument_id=AAPL)
            assert pos and pos[-1].is_closed
            assert any(st.connected for st in n.statuses)
        return scenario

    Node(srv).run(scenario_factory())


def run(srv, scenario, with_data: bool = False, **overrides) -> Node:
    node = Node(srv, with_data=with_data, **overrides)
    node.run(scenario)
    return node


def coid_orders(srv, coid) -> list[dict]:
    """Broker orders whose client_order_id is ``coid`` or one of its replacements."""
    return [o for o in srv.orders("all") if o["client_order_id"].split("-R")[0] == coid.value
            or o["client_order_id"] == coid.value]


# --------------------------------------------------------------------------------------------- #
# (1) start-up reconciliation
# --------------------------------------------------------------------------------------------- #

def test_startup_reconciles_existing_position_and_open_order(srv):
    srv.add_position("AAPL", 50, 180.0)
    srv.add_open_order("AAPL", 5, side="buy", type="limit", limit_price=185.0, client_order_id="EXT-LIMIT-1")

    async def scenario(n: Node):
        from nautilus_trader.model.identifiers import ClientOrderId

        order = n.cache.order(ClientOrderId("EXT-LIMIT-1"))
        assert order is not None, "pre-existing open order not reconciled"
        assert order.status == OrderStatus.ACCEPTED
        assert order.quantity == Quantity.from_int(5) and order.price == Price.from_str("185.00")
        assert order.venue_order_id.value == srv.order("EXT-LIMIT-1")["id"]
        positions = n.cache.positions_open(instrument_id=AAPL)
        assert len(positions) == 1
        assert positions[0].side == PositionSide.LONG and positions[0].quantity == Quantity.from_int(50)
        assert positions[0].avg_px_open == pytest.approx(180.0)
        account = n.cache.account_for_venue(ALPACA_VENUE)
        assert account is not None and account.id.value == "ALPACA-PA3FAKE00001"
        # the reconciled order keeps working: its fill arrives on trade_updates
        srv.set_quote("AAPL", bid=184.90, ask=184.95)
        await n.wait(lambda: n.cache.order(ClientOrderId("EXT-LIMIT-1")).status == OrderStatus.FILLED,
                     what="reconciled order fill")
        await n.wait(lambda: n.cache.positions_open(instrument_id=AAPL)
                     and n.cache.positions_open(instrument_id=AAPL)[0].quantity == Quantity.from_int(55),
                     what="position 55")
        fills = [e for e in n.cache.order(ClientOrderId("EXT-LIMIT-1")).events if isinstance(e, OrderFilled)]
        assert len(fills) == 1 and fills[0].last_px == Price.from_str("184.95")

    run(srv, scenario)


# --------------------------------------------------------------------------------------------- #
# (2) orders
# --------------------------------------------------------------------------------------------- #

def test_limit_rests_then_partial_fills(srv):
    async def scenario(n: Node):
        s = n.strategy
        order = s.limit(OrderSide.BUY, 10, "189.50")
        await n.wait(lambda: s.of(OrderAccepted, order.client_order_id), what="accepted")
        srv.set_quote("AAPL", bid=189.60, ask=189.70)  # does not cross
        await asyncio.sleep(0.2)
        assert not s.of(OrderFilled, order.client_order_id)
        assert n.cache.order(order.client_order_id).status == OrderStatus.ACCEPTED
        srv.set_partial_fills(4, "AAPL")
        for ask in ("189.45", "189.40", "189.35"):
            srv.set_quote("AAPL", bid=float(ask) - 0.05, ask=float(ask))
        await n.wait(lambda: n.cache.order(order.client_order_id).status == OrderStatus.FILLED, what="filled")
        fills = s.of(OrderFilled, order.client_order_id)
        assert [f.last_qty.as_double() for f in fills] == [4, 4, 2]
        assert [str(f.last_px) for f in fills] == ["189.45", "189.40", "189.35"]
        assert len({f.trade_id for f in fills}) == 3
        assert all(f.commission.as_decimal() == 0 for f in fills)  # buys pay no fees
        o = n.cache.order(order.client_order_id)
        assert o.avg_px == pytest.approx((4 * 189.45 + 4 * 189.40 + 2 * 189.35) / 10)
        assert len(coid_orders(srv, order.client_order_id)) == 1

    run(srv, scenario)


def test_cancel(srv):
    async def scenario(n: Node):
        s = n.strategy
        order = s.limit(OrderSide.BUY, 10, "180.00", tif=TimeInForce.GTC)
        await n.wait(lambda: n.cache.order(order.client_order_id).status == OrderStatus.ACCEPTED, what="accepted")
        s.cancel_order(n.cache.order(order.client_order_id))
        await n.wait(lambda: n.cache.order(order.client_order_id).status == OrderStatus.CANCELED, what="canceled")
        assert srv.order(order.client_order_id.value)["status"] == "canceled"
        assert len(s.of(OrderCanceled, order.client_order_id)) == 1
        # a DAY order expiring at the close -> OrderExpired
        day = s.limit(OrderSide.BUY, 3, "181.00")
        await n.wait(lambda: n.cache.order(day.client_order_id).status == OrderStatus.ACCEPTED, what="accepted")
        assert srv.expire_day_orders() == 1
        await n.wait(lambda: n.cache.order(day.client_order_id).status == OrderStatus.EXPIRED, what="expired")
        # accepted, then rejected asynchronously by the venue -> OrderRejected
        srv.faults.reject_orders(reason="order rejected by venue risk check")
        late = s.limit(OrderSide.BUY, 3, "182.00")
        await n.wait(lambda: n.cache.order(late.client_order_id).status == OrderStatus.REJECTED, what="rejected")
        assert "rejected" in s.of(OrderRejected, late.client_order_id)[0].reason
        assert len(s.of(OrderAccepted, late.client_order_id)) == 1  # it was accepted first

    run(srv, scenario)


def test_modify_replaces_order_keeps_client_order_id(srv):
    async def scenario(n: Node):
        s = n.strategy
        order = s.limit(OrderSide.BUY, 10, "189.00")
        await n.wait(lambda: n.cache.order(order.client_order_id).status == OrderStatus.ACCEPTED, what="accepted")
        first_id = n.cache.order(order.client_order_id).venue_order_id
        # 4 shares fill first, then the order is modified to 12 shares @ 189.50
        srv.set_order_fill_chunk(order.client_order_id.value, 4)
        srv.set_quote("AAPL", bid=188.90, ask=188.95)
        await n.wait(lambda: n.cache.order(order.client_order_id).filled_qty == Quantity.from_int(4), what="4 filled")
        srv.set_quote("AAPL", bid=189.90, ask=190.00)  # away from the limit
        s.modify_order(n.cache.order(order.client_order_id), quantity=Quantity.from_int(12),
                       price=Price.from_str("189.50"))
        await n.wait(lambda: s.of(OrderUpdated, order.client_order_id), what="OrderUpdated")
        upd = s.of(OrderUpdated, order.client_order_id)[0]
        o = n.cache.order(order.client_order_id)
        assert upd.venue_order_id != first_id and o.venue_order_id == upd.venue_order_id
        assert o.quantity == Quantity.from_int(12) and o.price == Price.from_str("189.50")
        assert n.cache.client_order_id(upd.venue_order_id) == order.client_order_id
        old = srv.order(first_id.value)
        new = srv.order(upd.venue_order_id.value)
        assert old["status"] == "replaced" and old["replaced_by"] == new["id"]
        assert new["client_order_id"] == f"{order.client_order_id.value}-R1"
        assert Decimal(new["qty"]) == 8 and Decimal(new["limit_price"]) == Decimal("189.5")
        srv.set_order_fill_chunk(new["id"], None)
        srv.set_quote("AAPL", bid=189.40, ask=189.45)
        await n.wait(lambda: n.cache.order(order.client_order_id).status == OrderStatus.FILLED, what="filled")
        fills = s.of(OrderFilled, order.client_order_id)
        assert [f.last_qty.as_double() for f in fills] == [4, 8]
        assert [str(f.last_px) for f in fills] == ["188.95", "189.45"]
        assert fills[1].venue_order_id == upd.venue_order_id
        pos = n.cache.positions_open(instrument_id=AAPL)
        assert pos and pos[0].quantity == Quantity.from_int(12)

    run(srv, scenario)


def test_bracket_order_list_maps_legs(srv):
    async def scenario(n: Node):
        s = n.strategy
        bracket = s.order_factory.bracket(
            AAPL, OrderSide.BUY, Quantity.from_int(10),
            entry_order_type=OrderType.MARKET, time_in_force=TimeInForce.GTC,
            tp_price=Price.from_str("195.00"), sl_trigger_price=Price.from_str("185.00"))
        s.submit_order_list(bracket)
        entry, sl, tp = bracket.orders[0], bracket.orders[1], bracket.orders[2]
        assert sl.order_type == OrderType.STOP_MARKET and tp.order_type == OrderType.LIMIT
        await n.wait(lambda: all(n.cache.order(o.client_order_id).status == OrderStatus.ACCEPTED
                                 for o in bracket.orders), what="bracket accepted")
        parent = srv.order(entry.client_order_id.value)
        assert parent["order_class"] == "bracket" and len(parent["legs"]) == 2
        srv.set_quote("AAPL", bid=190.00, ask=190.02)  # entry fills, legs become live
        await n.wait(lambda: n.cache.order(entry.client_order_id).status == OrderStatus.FILLED, what="entry")
        srv.set_quote("AAPL", bid=191.00, ask=191.02)  # legs start working from this tick
        srv.set_quote("AAPL", bid=195.00, ask=195.02)  # take-profit fills, the stop is canceled (OCO)
        await n.wait(lambda: n.cache.order(tp.client_order_id).status == OrderStatus.FILLED, what="tp fill")
        await n.wait(lambda: n.cache.order(sl.client_order_id).status == OrderStatus.CANCELED, what="sl cancel")
        tp_fill = s.of(OrderFilled, tp.client_order_id)[0]
        assert tp_fill.last_px == Price.from_str("195.00")
        # on 2026-03-02: SEC $0.00 + TAF 10 x 0.000195 = 0.00195 -> 0.00 (undated $27.80/$1M gave 0.06)
        assert tp_fill.commission.as_decimal() == Decimal("0.00")
        assert n.cache.positions(instrument_id=AAPL)[-1].is_closed

    run(srv, scenario)


# --------------------------------------------------------------------------------------------- #
# (3) faults
# --------------------------------------------------------------------------------------------- #

def test_5xx_then_success_places_exactly_one_order(srv):
    srv.faults.http_error("/v2/orders", status=500, count=1, method="POST")

    async def scenario(n: Node):
        s = n.strategy
        order = s.market(OrderSide.BUY, 5)
        await n.wait(lambda: s.of(OrderAccepted, order.client_order_id), what="accepted after retry")
        assert len(srv.requests_to("/v2/orders", "POST")) == 2
        assert [r["status"] for r in srv.requests_to("/v2/orders", "POST")] == [500, 200]
        assert srv.requests_to("/v2/orders:by_client_order_id", "GET")  # checked before the retry
        assert len(coid_orders(srv, order.client_order_id)) == 1
        srv.set_quote("AAPL", bid=190.00, ask=190.02)
        await n.wait(lambda: n.cache.order(order.client_order_id).status == OrderStatus.FILLED, what="fill")
        assert not s.of(OrderRejected)

    run(srv, scenario)


def test_429_honours_retry_after(srv):
    srv.faults.rate_limit("/v2/orders", count=1, retry_after=1, method="POST")

    async def scenario(n: Node):
        s = n.strategy
        t0 = time.monotonic()
        order = s.market(OrderSide.BUY, 5)
        await n.wait(lambda: s.of(OrderAccepted, order.client_order_id), what="accepted after 429")
        assert time.monotonic() - t0 >= 0.95  # waited Retry-After (1 s), not the 0.05 s backoff
        assert [r["status"] for r in srv.requests_to("/v2/orders", "POST")] == [429, 200]
        assert len(coid_orders(srv, order.client_order_id)) == 1

    run(srv, scenario)


def test_403_insufficient_buying_power_rejects(srv):
    srv.faults.insufficient_buying_power()

    async def scenario(n: Node):
        s = n.strategy
        order = s.market(OrderSide.BUY, 5)
        await n.wait(lambda: s.of(OrderRejected, order.client_order_id), what="rejected")
        rej = s.of(OrderRejected, order.client_order_id)[0]
        assert "insufficient buying power" in rej.reason and "403" in rej.reason
        assert n.cache.order(order.client_order_id).status == OrderStatus.REJECTED
        assert coid_orders(srv, order.client_order_id) == []
        assert len(srv.requests_to("/v2/orders", "POST")) == 1  # not retried

    run(srv, scenario)


def test_422_rejects_with_alpaca_message(srv):
    srv.faults.invalid_order(message="qty must be a whole number")

    async def scenario(n: Node):
        s = n.strategy
        order = s.limit(OrderSide.BUY, 5, "189.00")
        await n.wait(lambda: s.of(OrderRejected, order.client_order_id), what="rejected")
        assert "qty must be a whole number" in s.of(OrderRejected, order.client_order_id)[0].reason
        assert coid_orders(srv, order.client_order_id) == []

    run(srv, scenario)


def test_delayed_ack_beyond_timeout_is_found_not_duplicated(srv):
    srv.faults.delay_ack(2.5)  # > request_timeout_s (1.0 here)

    async def scenario(n: Node):
        s = n.strategy
        order = s.limit(OrderSide.BUY, 5, "189.00")
        await n.wait(lambda: n.cache.order(order.client_order_id).status == OrderStatus.ACCEPTED, what="accepted")
        # the client timed out after 1 s and looked the order up instead of resubmitting
        await n.wait(lambda: srv.requests_to("/v2/orders:by_client_order_id", "GET"), what="lookup")
        # the held-back POST answer goes out at 2.5 s (nobody waits for it any more)
        await n.wait(lambda: srv.requests_to("/v2/orders", "POST"), 4.0, "delayed POST logged")
        await asyncio.sleep(0.3)
        assert len(srv.requests_to("/v2/orders", "POST")) == 1
        assert len(coid_orders(srv, order.client_order_id)) == 1
        assert len(s.of(OrderAccepted, order.client_order_id)) == 1
        assert not s.of(OrderRejected)
        assert n.cache.order(order.client_order_id).venue_order_id.value == srv.order(order.client_order_id.value)["id"]

    run(srv, scenario, request_timeout_s=1.0)


def test_late_landing_post_resubmitted_once_and_the_original_refused(srv):
    """The first POST is still on the wire when the client times out (the lookup answers 404):
    the retry places the order; the original lands later and is refused as a duplicate."""
    late = srv.faults.land_late(1.5)

    async def scenario(n: Node):
        s = n.strategy
        order = s.limit(OrderSide.BUY, 5, "189.00")
        await n.wait(lambda: s.of(OrderAccepted, order.client_order_id), what="accepted after the retry")
        await n.wait(lambda: late.outcomes, 4.0, "original landed")
        assert late.outcomes[0][0] == "refused" and late.outcomes[0][1] == 422
        assert len(coid_orders(srv, order.client_order_id)) == 1
        assert not s.of(OrderRejected)

    run(srv, scenario, request_timeout_s=0.5)


def test_order_landing_after_the_retries_gave_up_is_adopted(srv):
    """Every POST times out and lands only after the client gave up (each lookup answered 404):
    the order is rejected as before (in doubt, order_tracker); when the first POST lands and
    fills, the Alpaca order goes to the engine as an external order, so the position follows."""
    late = srv.faults.land_late(1.5, count=2)

    async def scenario(n: Node):
        s = n.strategy
        order = s.market(OrderSide.BUY, 3)
        await n.wait(lambda: s.of(OrderRejected, order.client_order_id), what="rejected after the retries")
        assert "verified absent" in s.of(OrderRejected, order.client_order_id)[0].reason
        assert len(srv.requests_to("/v2/orders:by_client_order_id", "GET")) == 2
        await n.wait(lambda: coid_orders(srv, order.client_order_id), what="the first POST landed")
        srv.set_quote("AAPL", bid=190.00, ask=190.02)
        await n.wait(lambda: n.cache.positions_open(instrument_id=AAPL), what="position from the late order")
        assert n.cache.positions_open(instrument_id=AAPL)[0].quantity == Quantity.from_int(3)
        venue_id = srv.order(order.client_order_id.value)["id"]
        adopted = [o for o in n.cache.orders() if o.venue_order_id is not None and o.venue_order_id.value == venue_id]
        assert len(adopted) == 1 and adopted[0].status == OrderStatus.FILLED
        assert adopted[0].client_order_id != order.client_order_id
        assert n.cache.order(order.client_order_id).status == OrderStatus.REJECTED
        await n.wait(lambda: len(late.outcomes) == 2, 4.0, "second POST landed")
        assert [o[0] for o in late.outcomes] == ["landed", "refused"]
        assert len(coid_orders(srv, order.client_order_id)) == 1

    run(srv, scenario, request_timeout_s=0.5, max_retries=1)


@pytest.mark.parametrize("when", ["before", "after"])
def test_fill_recovered_once_after_stream_drop(srv, when):
    srv.faults.drop_trade_stream(when=when, events=("fill",))

    async def scenario(n: Node):
        s = n.strategy
        order = s.market(OrderSide.BUY, 7)
        await n.wait(lambda: s.of(OrderAccepted, order.client_order_id), what="accepted")
        srv.set_quote("AAPL", bid=190.00, ask=190.03)
        await n.wait(lambda: n.cache.order(order.client_order_id).status == OrderStatus.FILLED, what="recovered fill")
        await n.wait(lambda: srv.stats.get("trade_connections", 0) >= 2 and srv.trade_stream_listeners == 1,
                     what="reconnected")
        await asyncio.sleep(0.5)  # recovery and any late stream event would land by now
        fills = s.of(OrderFilled, order.client_order_id)
        assert len(fills) == 1
        assert fills[0].last_qty == Quantity.from_int(7) and fills[0].last_px == Price.from_str("190.03")
        exec_ids = [a["id"].split("::")[1] for a in srv.activities(["FILL"])]
        assert fills[0].trade_id.value == exec_ids[0]
        assert n.cache.positions_open(instrument_id=AAPL)[0].quantity == Quantity.from_int(7)
        flags = [st.connected for st in n.statuses]
        assert False in flags and flags[-1] is True  # the drop was reported, then the reconnect
        assert srv.trade_stream_listeners == 1

    run(srv, scenario)


# --------------------------------------------------------------------------------------------- #
# (4) restart
# --------------------------------------------------------------------------------------------- #

def test_restart_reconciles_open_order_then_fill_arrives(srv):
    holder = {}

    async def first(n: Node):
        order = n.strategy.limit(OrderSide.BUY, 10, "189.00", tif=TimeInForce.GTC)
        await n.wait(lambda: n.cache.order(order.client_order_id).status == OrderStatus.ACCEPTED, what="accepted")
        holder["coid"] = order.client_order_id
        holder["venue"] = n.cache.order(order.client_order_id).venue_order_id

    run(srv, first)
    assert srv.order(holder["coid"].value)["status"] == "new"  # still open at the broker

    async def second(n: Node):
        coid = holder["coid"]
        order = n.cache.order(coid)
        assert order is not None, "open order not reconciled after restart"
        assert order.status == OrderStatus.ACCEPTED and order.venue_order_id == holder["venue"]
        assert order.quantity == Quantity.from_int(10) and order.price == Price.from_str("189.00")
        srv.set_quote("AAPL", bid=188.90, ask=188.98)
        await n.wait(lambda: n.cache.order(coid).status == OrderStatus.FILLED, what="fill after restart")
        fills = [e for e in n.cache.order(coid).events if isinstance(e, OrderFilled)]
        assert len(fills) == 1 and fills[0].last_px == Price.from_str("188.98")
        assert n.cache.positions_open(instrument_id=AAPL)[0].quantity == Quantity.from_int(10)

    run(srv, second)
    assert len(coid_orders(srv, holder["coid"])) == 1


# --------------------------------------------------------------------------------------------- #
# credentials, live guard, broker status
# --------------------------------------------------------------------------------------------- #

def test_credentials_and_live_guard(monkeypatch):
    for var in ("ALPACA_API_KEY", "ALPACA_API_SECRET", "APCA_API_KEY_ID", "APCA_API_SECRET_KEY"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(ValueError, match="ALPACA_API_KEY") as err:
        resolve_credentials()
    assert "ALPACA_API_SECRET" in str(err.value)
    monkeypatch.setenv("APCA_API_KEY_ID", "PKENVKEY123")
    monkeypatch.setenv("APCA_API_SECRET_KEY", "envsecret")
    assert resolve_credentials() == ("PKENVKEY123", "envsecret")
    assert resolve_credentials("K2", "S2") == ("K2", "S2")
    assert mask("PKENVKEY123") == "PKEN***"
    assert check_live_allowed(True) is False
    with pytest.raises(AlpacaLiveTradingError, match="REAL MONEY"):
        check_live_allowed(False)
    with pytest.raises(AlpacaLiveTradingError, match="allow_live=True"):
        check_live_allowed(True, trading_url="https://api.alpaca.markets")
    assert check_live_allowed(False, allow_live=True) is True
    assert check_live_allowed(True, trading_url="http://127.0.0.1:9999") is False
    with pytest.raises(AlpacaLiveTradingError):
        AlpacaLiveExecClientFactory.create(asyncio.new_event_loop(), "ALPACA",
                                           AlpacaExecClientConfig(api_key="K", api_secret="S", paper=False),
                                           None, None, None)


def test_broker_status_heartbeat_and_disconnect(srv):
    async def scenario(n: Node):
        await n.wait(lambda: len([st for st in n.statuses if st.connected]) >= 3, 4.0, "heartbeats")
        assert all(st.broker == "alpaca" for st in n.statuses)
        t = [st.ts_ns for st in n.statuses]
        assert t == sorted(t)
        account = n.cache.account_for_venue(ALPACA_VENUE)
        assert float(account.balance_total().as_double()) == pytest.approx(100_000.0)
        assert account.last_event.info["buying_power"] == srv.account()["buying_power"]

    node = run(srv, scenario)
    assert node.statuses[-1].connected is False  # published on disconnect
    assert "disconnected" in node.statuses[-1].detail
    assert all(KEY not in st.detail and SECRET not in st.detail for st in node.statuses)


# --------------------------------------------------------------------------------------------- #
# options: simple orders only
# --------------------------------------------------------------------------------------------- #

def test_option_simple_order_fills_and_bracket_is_rejected(srv):
    contract = srv.add_option_contract("AAPL", "2026-03-20", 190.0, "call")
    occ = InstrumentId.from_str(f"{contract['symbol']}.ALPACA")
    srv.set_quote(contract["symbol"], bid=4.90, ask=5.00)

    async def scenario(n: Node):
        from nautilus_trader.model.instruments import OptionContract

        s = n.strategy
        inst = n.cache.instrument(occ)
        assert isinstance(inst, OptionContract) and inst.multiplier == Quantity.from_int(100)
        bracket = s.order_factory.bracket(
            occ, OrderSide.BUY, Quantity.from_int(2), entry_order_type=OrderType.LIMIT,
            entry_price=Price.from_str("5.00"), time_in_force=TimeInForce.DAY,
            tp_price=Price.from_str("7.00"), sl_trigger_price=Price.from_str("3.00"))
        s.submit_order_list(bracket)
        await n.wait(lambda: all(n.cache.order(o.client_order_id).status == OrderStatus.REJECTED
                                 for o in bracket.orders), what="bracket rejected")
        assert "only simple orders for options" in s.of(OrderRejected, bracket.orders[0].client_order_id)[0].reason
        assert srv.requests_to("/v2/orders", "POST") == []
        gtc = s.order_factory.limit(occ, OrderSide.BUY, Quantity.from_int(2), Price.from_str("5.00"),
                                    time_in_force=TimeInForce.GTC)
        s.submit_order(gtc)
        await n.wait(lambda: s.of(OrderRejected, gtc.client_order_id), what="GTC option rejected")
        assert "must be DAY" in s.of(OrderRejected, gtc.client_order_id)[0].reason
        # options trade on quotes: a marketable option order fills at once against the contract's
        # current quote (buy at the ask, sell at the bid; ServerConfig.option_fill_on_submit)
        buy = s.order_factory.limit(occ, OrderSide.BUY, Quantity.from_int(2), Price.from_str("5.00"),
                                    time_in_force=TimeInForce.DAY)
        s.submit_order(buy)
        await n.wait(lambda: n.cache.order(buy.client_order_id).status == OrderStatus.FILLED, what="buy fill")
        assert s.of(OrderFilled, buy.client_order_id)[0].last_px == Price.from_str("5.00")  # the ask
        srv.set_quote(contract["symbol"], bid=5.50, ask=5.60)
        sell = s.order_factory.market(occ, OrderSide.SELL, Quantity.from_int(2), time_in_force=TimeInForce.DAY)
        s.submit_order(sell)
        await n.wait(lambda: n.cache.order(sell.client_order_id).status == OrderStatus.FILLED, what="sell fill")
        fill = s.of(OrderFilled, sell.client_order_id)[0]
        assert fill.last_px == Price.from_str("5.50")  # the bid
        # Alpaca's per-contract pass-throughs on 2026-03-02 (adapters/fees.py), not the equity
        # formula: sell 2 x (ORF 0.02685 + OCC 0.02 + options TAF 0.00279) = 0.09928 + SEC $0.00
        # -> 0.10; the buy paid 2 x (0.02685 + 0.02) = 0.0937 -> 0.09
        assert fill.commission.as_decimal() == Decimal("0.10")
        bfill = s.of(OrderFilled, buy.client_order_id)[0]
        assert bfill.commission.as_decimal() == Decimal("0.09")
        # the fake broker books the same per-contract pass-throughs (adapters.fees) as FEE activities
        fees = [a for a in srv.activities(["FEE"])]
        assert [Decimal(f["net_amount"]) for f in fees[-2:]] == [Decimal("-0.09"), Decimal("-0.10")]
        pos = n.cache.positions(instrument_id=occ)[-1]
        assert pos.is_closed and pos.realized_pnl.as_double() == pytest.approx(2 * 0.50 * 100 - 0.09 - 0.10)

    run(srv, scenario, instrument_provider=InstrumentProviderConfig(load_ids=frozenset({AAPL, occ})))


def test_restart_reconciles_replaced_partially_filled_order(srv):
    holder = {}

    async def first(n: Node):
        s = n.strategy
        order = s.limit(OrderSide.BUY, 10, "189.00", tif=TimeInForce.GTC)
        await n.wait(lambda: n.cache.order(order.client_order_id).status == OrderStatus.ACCEPTED, what="accepted")
        srv.set_order_fill_chunk(order.client_order_id.value, 4)
        srv.set_quote("AAPL", bid=188.90, ask=188.95)
        await n.wait(lambda: n.cache.order(order.client_order_id).filled_qty == Quantity.from_int(4), what="4 filled")
        srv.set_quote("AAPL", bid=189.90, ask=190.00)
        s.modify_order(n.cache.order(order.client_order_id), price=Price.from_str("189.20"))
        await n.wait(lambda: s.of(OrderUpdated, order.client_order_id), what="updated")
        o = n.cache.order(order.client_order_id)
        assert o.quantity == Quantity.from_int(10) and o.filled_qty == Quantity.from_int(4)
        holder.update(coid=order.client_order_id, venue=o.venue_order_id)

    run(srv, first)
    live = srv.order(holder["venue"].value)
    assert live["status"] == "new" and Decimal(live["qty"]) == 6  # the replacement: the unfilled 6

    async def second(n: Node):
        coid = holder["coid"]
        o = n.cache.order(coid)
        assert o is not None and o.venue_order_id == holder["venue"]
        assert o.status == OrderStatus.PARTIALLY_FILLED
        assert o.quantity == Quantity.from_int(10) and o.filled_qty == Quantity.from_int(4)
        assert o.price == Price.from_str("189.20")
        assert n.cache.positions_open(instrument_id=AAPL)[0].quantity == Quantity.from_int(4)
        srv.set_order_fill_chunk(holder["venue"].value, None)
        srv.set_quote("AAPL", bid=189.10, ask=189.15)
        await n.wait(lambda: n.cache.order(coid).status == OrderStatus.FILLED, what="rest filled after restart")
        fills = [e for e in n.cache.order(coid).events if isinstance(e, OrderFilled)]
        assert [f.last_qty.as_double() for f in fills] == [4, 6]
        assert n.cache.positions_open(instrument_id=AAPL)[0].quantity == Quantity.from_int(10)

    run(srv, second)


def test_with_alpaca_data_client_in_the_same_node(srv):
    pytest.importorskip("adapters.alpaca.data")

    async def scenario(n: Node):
        s = n.strategy
        s.subscribe_quote_ticks(AAPL)
        await n.wait(lambda: srv.data_stream_subscribers >= 1, what="market-data subscription")
        srv.set_quote("AAPL", bid=190.10, ask=190.12)
        await n.wait(lambda: s.quotes, what="quote through the data client")
        assert s.quotes[-1].ask_price == Price.from_str("190.12")
        order = s.market(OrderSide.BUY, 3)
        await n.wait(lambda: s.of(OrderAccepted, order.client_order_id), what="accepted")
        srv.set_quote("AAPL", bid=190.20, ask=190.22)
        await n.wait(lambda: n.cache.order(order.client_order_id).status == OrderStatus.FILLED, what="fill")
        assert s.of(OrderFilled, order.client_order_id)[0].last_px == Price.from_str("190.22")

    run(srv, scenario, with_data=True)


def test_order_placed_outside_nautilus_is_adopted(srv):
    from alpaca.trading.client import TradingClient
    from alpaca.trading.enums import OrderSide as AOrderSide
    from alpaca.trading.enums import TimeInForce as ATimeInForce
    from alpaca.trading.requests import LimitOrderRequest
    from nautilus_trader.model.identifiers import ClientOrderId

    async def scenario(n: Node):
        web = TradingClient(KEY, SECRET, paper=True, url_override=srv.trading_url)
        req = LimitOrderRequest(symbol="AAPL", qty=2, side=AOrderSide.BUY, time_in_force=ATimeInForce.DAY,
                                limit_price=189.5, client_order_id="MANUAL-1")
        await asyncio.get_running_loop().run_in_executor(None, web.submit_order, req)
        coid = ClientOrderId("MANUAL-1")
        await n.wait(lambda: n.cache.order(coid) is not None, what="external order in the cache")
        assert n.cache.order(coid).status == OrderStatus.ACCEPTED
        srv.set_quote("AAPL", bid=189.40, ask=189.45)
        await n.wait(lambda: n.cache.order(coid).status == OrderStatus.FILLED, what="external fill")
        fills = [e for e in n.cache.order(coid).events if isinstance(e, OrderFilled)]
        assert len(fills) == 1 and fills[0].last_px == Price.from_str("189.45")
        assert n.cache.positions_open(instrument_id=AAPL)[0].quantity == Quantity.from_int(2)

    run(srv, scenario)


def test_instrument_provider(srv):
    from adapters.alpaca.http import create_trading_client
    from adapters.alpaca.config import AlpacaInstrumentProviderConfig
    from adapters.alpaca.providers import AlpacaInstrumentProvider
    from nautilus_trader.model.instruments import Equity, OptionContract

    srv.add_asset("QQQ", exchange="NASDAQ")
    srv.generate_option_chain("QQQ", ["2026-03-06"], [480.0, 485.0])
    client = create_trading_client(KEY, SECRET, trading_url=srv.trading_url, timeout_s=2.0)

    async def main():
        p = AlpacaInstrumentProvider(client)
        await p.load_ids_async([AAPL, InstrumentId.from_str("QQQ260306P00480000.ALPACA"),
                                InstrumentId.from_str("NOPE.OTHER")])
        aapl = p.find(AAPL)
        assert isinstance(aapl, Equity) and aapl.price_increment == Price.from_str("0.01")
        assert aapl.size_increment == Quantity.from_int(1) and aapl.quote_currency.code == "USD"
        put = p.find(InstrumentId.from_str("QQQ260306P00480000.ALPACA"))
        assert isinstance(put, OptionContract) and put.strike_price == Price.from_str("480.00")
        assert put.multiplier == Quantity.from_int(100) and put.underlying == "QQQ"
        assert put.expiration_utc == datetime(2026, 3, 6, 21, 0, tzinfo=timezone.utc)  # 16:00 ET (EST)
        assert p.count == 2
        chain = AlpacaInstrumentProvider(client, AlpacaInstrumentProviderConfig(
            load_options=True, option_underlyings=("QQQ",)))
        await chain.load_all_async({"symbols": ["QQQ"]})
        assert sorted(i.id.symbol.value for i in chain.list_all()) == [
            "QQQ", "QQQ260306C00480000", "QQQ260306C00485000", "QQQ260306P00480000", "QQQ260306P00485000"]

    asyncio.run(main())


def test_bracket_legs_seen_before_the_post_answer_are_not_external():
    # fill_on_submit: the entry fills during POST /v2/orders, so its legs go 'new' on trade_updates
    # before the HTTP answer that lists them arrives
    with FakeAlpacaServer(keys={KEY: SECRET}, clock_start=T0, id_seed=7, fill_on_submit=True) as srv:
        warm_up(srv)
        srv.set_quote("AAPL", bid=189.99, ask=190.01)
        srv.faults.delay_ack(0.5)  # < request_timeout_s: the answer comes, after the stream events

        async def scenario(n: Node):
            s = n.strategy
            bracket = s.order_factory.bracket(
                AAPL, OrderSide.BUY, Quantity.from_int(10), entry_order_type=OrderType.MARKET,
                time_in_force=TimeInForce.GTC, tp_price=Price.from_str("195.00"),
                sl_trigger_price=Price.from_str("185.00"))
            s.submit_order_list(bracket)
            entry, sl, tp = bracket.orders
            await n.wait(lambda: n.cache.order(entry.client_order_id).status == OrderStatus.FILLED, what="entry")
            await n.wait(lambda: n.cache.order(tp.client_order_id).status == OrderStatus.ACCEPTED
                         and n.cache.order(sl.client_order_id).status == OrderStatus.ACCEPTED, what="legs")
            legs = {leg["id"] for leg in srv.order(entry.client_order_id.value)["legs"]}
            assert {n.cache.order(tp.client_order_id).venue_order_id.value,
                    n.cache.order(sl.client_order_id).venue_order_id.value} == legs
            assert [o for o in n.cache.orders() if o.strategy_id.value == "EXTERNAL"] == []
            srv.set_quote("AAPL", bid=184.00, ask=184.02)  # the stop triggers, the take-profit is canceled
            await n.wait(lambda: n.cache.order(sl.client_order_id).status == OrderStatus.FILLED, what="stop fill")
            await n.wait(lambda: n.cache.order(tp.client_order_id).status == OrderStatus.CANCELED, what="tp cancel")

        run(srv, scenario)
