"""AlpacaDataClient against the fake Alpaca server, inside a REAL Nautilus TradingNode.

The node is built with the adapter's ``AlpacaLiveDataClientFactory`` (wrapped only to keep a
handle on the client it creates) and a tiny recording Actor that subscribes to bars, quotes and
trades of two symbols and/or requests historical bars. The node runs on this thread's event
loop; the fake server runs on its own thread (127.0.0.1, random ports, frozen clock, so every
value is deterministic). Waits poll and end as soon as their condition holds.
"""

from __future__ import annotations

import asyncio
import math
from datetime import datetime, timedelta, timezone

import msgpack
import pandas as pd
import pytest
from nautilus_trader.common.actor import Actor
from nautilus_trader.config import ActorConfig, LoggingConfig, TradingNodeConfig
from nautilus_trader.live.node import TradingNode
from nautilus_trader.model.data import Bar, BarType, QuoteTick, TradeTick
from nautilus_trader.model.identifiers import InstrumentId, TraderId

from adapters.alpaca.config import AlpacaDataClientConfig, AlpacaInstrumentProviderConfig
from adapters.alpaca.data_parsing import (
    AlpacaDataError,
    check_requestable,
    check_streamable,
    parse_bar,
    parse_quote,
    parse_trade,
    to_unix_nanos,
)
from adapters.alpaca.factories import AlpacaLiveDataClientFactory
from adapters.alpaca.fake_server import FakeAlpacaServer
from tests.node_harness import drive, until

KEY, SECRET = "PKDATATEST", "data-test-secret"
T0 = datetime(2026, 3, 2, 15, 0, tzinfo=timezone.utc)  # Monday 10:00 ET (the server's frozen clock)
SYMBOLS = ("AAPL", "MSFT")
WAIT = 8.0  # upper bound for anything asynchronous


def ns(dt: datetime) -> int:
    return int(pd.Timestamp(dt).value)


def bar_type(symbol: str) -> BarType:
    return BarType.from_str(f"{symbol}.ALPACA-1-MINUTE-LAST-EXTERNAL")


# ------------------------------------------------------------------------------ the actor ---
class RecorderConfig(ActorConfig, frozen=True):
    symbols: tuple[str, ...] = SYMBOLS
    live: bool = True
    # historical requests: (kind "bars"|"quotes"|"trades", bar type or instrument id, start, end, limit
    # [, params as "key=value"])
    requests: tuple[tuple, ...] = ()


class Recorder(Actor):
    """Subscribes to bars/quotes/trades of ``symbols`` and records everything, in arrival order."""

    def __init__(self, config: RecorderConfig) -> None:
        super().__init__(config)
        self.events: list[tuple] = []
        self.historical: list = []
        self.responses = 0

    def on_start(self) -> None:
        cfg = self.config
        if cfg.live:
            for sym in cfg.symbols:
                iid = InstrumentId.from_str(f"{sym}.ALPACA")
                self.subscribe_bars(bar_type(sym))
                self.subscribe_quote_ticks(iid)
                self.subscribe_trade_ticks(iid)
        for kind, target, start, end, limit, *extra in cfg.requests:
            window = {"start": pd.Timestamp(start), "end": pd.Timestamp(end), "limit": limit,
                      "callback": self._response_finished,
                      "params": dict(kv.split("=", 1) for kv in extra) or None}
            if kind == "bars":
                self.request_bars(BarType.from_str(target), **window)
            elif kind == "quotes":
                self.request_quote_ticks(InstrumentId.from_str(target), **window)
            else:
                self.request_trade_ticks(InstrumentId.from_str(target), **window)

    @property
    def history_done(self) -> bool:
        return self.responses >= len(self.config.requests)

    def _response_finished(self, request_id) -> None:  # noqa: ANN001
        self.responses += 1

    def on_bar(self, bar: Bar) -> None:
        self.events.append(("bar", bar.bar_type.instrument_id.symbol.value, str(bar.open), str(bar.high),
                            str(bar.low), str(bar.close), str(bar.volume), bar.ts_event))

    def on_quote_tick(self, tick: QuoteTick) -> None:
        self.events.append(("quote", tick.instrument_id.symbol.value, str(tick.bid_price), str(tick.ask_price),
                            str(tick.bid_size), str(tick.ask_size), tick.ts_event))

    def on_trade_tick(self, tick: TradeTick) -> None:
        self.events.append(("trade", tick.instrument_id.symbol.value, str(tick.price), str(tick.size),
                            tick.ts_event))

    def on_historical_data(self, data) -> None:  # noqa: ANN001
        self.historical.append(data)


# ------------------------------------------------------------------------------ node harness ---
class CapturingFactory(AlpacaLiveDataClientFactory):
    """The adapter's factory; keeps the created client so tests can look at its stream."""

    clients: list = []

    @staticmethod
    def create(loop, name, config, msgbus, cache, clock):  # noqa: ANN001, ANN205
        client = AlpacaLiveDataClientFactory.create(loop, name, config, msgbus, cache, clock)
        CapturingFactory.clients.append(client)
        return client


def run_node(srv: FakeAlpacaServer, actor_config: RecorderConfig, scenario, timeout: float = 12.0,  # noqa: ANN001
             log_level: str = "WARNING"):
    """Build a TradingNode (Alpaca data client + Recorder), run ``await scenario(actor, client)``."""
    loop = asyncio.new_event_loop()  # passed explicitly: the thread's current loop is left alone
    config = TradingNodeConfig(
        trader_id=TraderId("TESTER-001"),
        logging=LoggingConfig(log_level=log_level),
        data_clients={
            "ALPACA": AlpacaDataClientConfig(
                api_key=KEY,
                api_secret=SECRET,
                trading_url=srv.trading_url,
                data_url=srv.data_url,
                data_stream_url=srv.data_stream_url,
                instrument_provider=AlpacaInstrumentProviderConfig(
                    load_ids=frozenset(InstrumentId.from_str(f"{s}.ALPACA") for s in SYMBOLS)),
            ),
        },
        timeout_connection=10.0,
        timeout_disconnection=3.0,
        timeout_post_stop=0.2,
        timeout_shutdown=2.0,
    )
    node = TradingNode(config=config, loop=loop)
    actor = Recorder(actor_config)
    node.trader.add_actor(actor)
    node.add_data_client_factory("ALPACA", CapturingFactory)
    node.build()
    client = CapturingFactory.clients[-1]

    try:
        drive(node, loop, lambda: actor.is_running, lambda: scenario(actor, client), timeout, start_timeout=10.0)
    finally:
        node.dispose()
        if not loop.is_closed():
            loop.close()
    return actor, client


async def subscribed(client, symbols=SYMBOLS) -> None:  # noqa: ANN001
    """Wait until the server acknowledged bars+quotes+trades of every symbol."""
    want = set(symbols)
    await until(lambda: client.stream.is_synchronised()
                and all(client.stream.confirmed[ch] == want for ch in ("bars", "quotes", "trades")),
                what="the subscriptions to be acknowledged")


@pytest.fixture
def srv():
    with FakeAlpacaServer(keys={KEY: SECRET}, clock_start=T0, id_seed=1, bars_max_page_size=7) as s:
        yield s


def history(start: datetime, n: int, base: float = 190.00) -> list[dict]:
    """n consecutive 1-minute bars labelled by their start (Alpaca style), exact cent prices."""
    out = []
    for i in range(n):
        o = round(base + i * 0.01, 2)
        out.append({"t": start + timedelta(minutes=i), "o": o, "h": round(o + 0.25, 2), "l": round(o - 0.13, 2),
                    "c": round(o + 0.07, 2), "v": 1000 + i})
    return out


# =================================================================== (1) historical bars ===
def test_historical_request_pages_and_close_time_stamps(srv):
    start = datetime(2026, 3, 2, 14, 30, tzinfo=timezone.utc)
    bars = history(start, 25)
    srv.set_bars("AAPL", bars)
    srv.set_bars("AAPL", history(start + timedelta(minutes=25), 5, base=200.0))  # outside the window

    cfg = RecorderConfig(live=False, requests=(
        ("bars", str(bar_type("AAPL")),
         (start + timedelta(minutes=1)).isoformat(),     # first close
         (start + timedelta(minutes=25)).isoformat(),    # last close
         0),))

    async def scenario(actor, client):  # noqa: ANN001
        await until(lambda: actor.history_done, what="the historical response")

    actor, _ = run_node(srv, cfg, scenario)

    got = [b for b in actor.historical if isinstance(b, Bar)]
    assert len(got) == 25
    for bar, src in zip(got, bars):
        assert bar.bar_type == bar_type("AAPL")
        # stamped at the bar CLOSE: Alpaca's start label + 1 minute
        assert bar.ts_event == ns(src["t"] + timedelta(minutes=1))
        assert bar.ts_init == bar.ts_event
        assert (str(bar.open), str(bar.high), str(bar.low), str(bar.close)) == (
            f"{src['o']:.2f}", f"{src['h']:.2f}", f"{src['l']:.2f}", f"{src['c']:.2f}")
        assert int(bar.volume) == src["v"]
    # several pages: 25 bars at most 7 per page -> 4 requests, each following next_page_token
    pages = srv.requests_to("/v2/stocks/bars", "GET")
    assert len(pages) == 4
    assert [bool(p["query"].get("page_token")) for p in pages] == [False, True, True, True]
    assert all(p["status"] == 200 for p in pages)
    # Alpaca filters on the bar start: the query was shifted one interval back
    assert pages[0]["query"]["start"].startswith("2026-03-02T14:30:00")


def test_historical_request_skips_bad_bars(srv):
    start = datetime(2026, 3, 2, 14, 30, tzinfo=timezone.utc)
    bars = history(start, 6)
    bars[2]["l"] = float("nan")
    bars[4]["o"] = -1.0
    srv.set_bars("AAPL", bars)
    cfg = RecorderConfig(live=False, requests=(
        ("bars", str(bar_type("AAPL")), start.isoformat(), (start + timedelta(minutes=6)).isoformat(), 0),))

    async def scenario(actor, client):  # noqa: ANN001
        await until(lambda: actor.history_done, what="the historical response")

    actor, client = run_node(srv, cfg, scenario)
    got = [b for b in actor.historical if isinstance(b, Bar)]
    assert [b.ts_event for b in got] == [ns(bars[i]["t"] + timedelta(minutes=1)) for i in (0, 1, 3, 5)]
    assert client.skipped_records == 2


def test_historical_limit_larger_timeframe_quotes_and_trades(srv):
    start = datetime(2026, 3, 2, 14, 30, tzinfo=timezone.utc)
    bars = history(start, 30)
    srv.set_bars("MSFT", bars)
    t = datetime(2026, 3, 2, 14, 45, tzinfo=timezone.utc)
    srv.set_quote("MSFT", bid=410.10, ask=410.20, bid_size=3, ask_size=4, t=t)
    srv.set_quote("MSFT", bid=0, ask=410.30, t=t + timedelta(seconds=1))           # one-sided: skipped
    srv.set_quote("MSFT", bid=410.15, ask=410.25, bid_size=5, ask_size=6, t=t + timedelta(seconds=2))
    srv.push_trade("MSFT", 410.17, size=9, t=t + timedelta(seconds=3))
    srv.push_trade("MSFT", 410.19, size=1, t=t + timedelta(seconds=4))
    window = (start.isoformat(), (start + timedelta(minutes=30)).isoformat())
    cfg = RecorderConfig(live=False, requests=(
        ("bars", "MSFT.ALPACA-1-MINUTE-LAST-EXTERNAL", *window, 4),       # the LAST 4 bars
        ("bars", "MSFT.ALPACA-5-MINUTE-LAST-EXTERNAL", *window, 0, "adjustment=split"),  # aggregated by Alpaca
        ("quotes", "MSFT.ALPACA", *window, 0),
        ("trades", "MSFT.ALPACA", *window, 0),
    ))

    async def scenario(actor, client):  # noqa: ANN001
        await until(lambda: actor.history_done, what="four historical responses")

    actor, _ = run_node(srv, cfg, scenario)
    one = [b for b in actor.historical if isinstance(b, Bar) and b.bar_type.spec.step == 1]
    assert [b.ts_event for b in one] == [ns(start + timedelta(minutes=m)) for m in (27, 28, 29, 30)]
    assert str(one[-1].close) == f"{bars[-1]['c']:.2f}"
    queries = [r["query"] for r in srv.requests_to("/v2/stocks/bars", "GET")]
    assert {q["timeframe"]: (q.get("sort"), q.get("limit"), q.get("adjustment")) for q in queries} == {
        "1Min": ("desc", "4", None), "5Min": (None, "10000", "split")}
    five = [b for b in actor.historical if isinstance(b, Bar) and b.bar_type.spec.step == 5]
    assert [b.ts_event for b in five] == [ns(start + timedelta(minutes=m)) for m in (5, 10, 15, 20, 25, 30)]
    first5 = bars[:5]
    assert (str(five[0].open), str(five[0].high), str(five[0].low), str(five[0].close), int(five[0].volume)) == (
        f"{first5[0]['o']:.2f}", f"{max(b['h'] for b in first5):.2f}", f"{min(b['l'] for b in first5):.2f}",
        f"{first5[-1]['c']:.2f}", sum(b["v"] for b in first5))
    quotes = [q for q in actor.historical if isinstance(q, QuoteTick)]
    assert [(str(q.bid_price), str(q.ask_price), str(q.bid_size), str(q.ask_size), q.ts_event) for q in quotes] == [
        ("410.10", "410.20", "3", "4", ns(t)), ("410.15", "410.25", "5", "6", ns(t + timedelta(seconds=2)))]
    trades = [x for x in actor.historical if isinstance(x, TradeTick)]
    assert [(str(x.price), str(x.size), x.ts_event) for x in trades] == [
        ("410.17", "9", ns(t + timedelta(seconds=3))), ("410.19", "1", ns(t + timedelta(seconds=4)))]


# ================================================ (2)+(3) live data, one websocket for all ===
def test_live_bars_quotes_trades_two_symbols_one_websocket(srv):
    t = datetime(2026, 3, 2, 15, 0, tzinfo=timezone.utc)

    async def scenario(actor, client):  # noqa: ANN001
        await subscribed(client)
        srv.set_quote("AAPL", bid=190.01, ask=190.03, bid_size=300, ask_size=200, t=t + timedelta(seconds=1))
        srv.push_trade("MSFT", 410.55, size=25, t=t + timedelta(seconds=2))
        srv.push_bar("AAPL", {"t": t, "o": 190.00, "h": 190.40, "l": 189.90, "c": 190.02, "v": 12345})
        srv.set_quote("MSFT", bid=410.50, ask=410.60, bid_size=100, ask_size=400, t=t + timedelta(seconds=3))
        srv.push_trade("AAPL", 190.02, size=7, t=t + timedelta(seconds=4))
        srv.push_bar("MSFT", {"t": t, "o": 410.00, "h": 410.90, "l": 409.75, "c": 410.55, "v": 6789})
        srv.push_bar("AAPL", {"t": t + timedelta(minutes=1), "o": 190.02, "h": 190.10, "l": 189.95,
                              "c": 190.05, "v": 2222})
        await until(lambda: len(actor.events) >= 7, what="7 events in the actor")
        # historical requests go over REST; they never open another websocket
        await asyncio.sleep(0.2)

    actor, client = run_node(srv, RecorderConfig(), scenario)

    assert actor.events == [
        ("quote", "AAPL", "190.01", "190.03", "300", "200", ns(t + timedelta(seconds=1))),
        ("trade", "MSFT", "410.55", "25", ns(t + timedelta(seconds=2))),
        ("bar", "AAPL", "190.00", "190.40", "189.90", "190.02", "12345", ns(t + timedelta(minutes=1))),
        ("quote", "MSFT", "410.50", "410.60", "100", "400", ns(t + timedelta(seconds=3))),
        ("trade", "AAPL", "190.02", "7", ns(t + timedelta(seconds=4))),
        ("bar", "MSFT", "410.00", "410.90", "409.75", "410.55", "6789", ns(t + timedelta(minutes=1))),
        ("bar", "AAPL", "190.02", "190.10", "189.95", "190.05", "2222", ns(t + timedelta(minutes=2))),
    ]
    # (3) one market-data websocket carried all 6 subscriptions; none was refused (406)
    assert srv.stats["data_connections"] == 1
    assert srv.stats["data_rejections"] == 0
    assert client.stream.sessions == 1 and client.stream.attempts == 1


def test_subscribe_after_start_and_unsubscribe_on_the_same_socket(srv):
    t = datetime(2026, 3, 2, 15, 0, tzinfo=timezone.utc)
    aapl, nvda = InstrumentId.from_str("AAPL.ALPACA"), InstrumentId.from_str("NVDA.ALPACA")

    async def scenario(actor, client):  # noqa: ANN001
        await subscribed(client)
        # a new symbol once the socket is up (its instrument is loaded on demand)
        actor.subscribe_trade_ticks(nvda)
        actor.subscribe_bars(bar_type("NVDA"))
        actor.unsubscribe_quote_ticks(aapl)
        actor.unsubscribe_bars(bar_type("AAPL"))
        await until(lambda: client.stream.confirmed["trades"] == {"AAPL", "MSFT", "NVDA"}
                    and client.stream.confirmed["quotes"] == {"MSFT"}
                    and client.stream.confirmed["bars"] == {"MSFT", "NVDA"}, what="the updated subscriptions")
        srv.set_quote("AAPL", bid=1.00, ask=1.02, t=t)                      # not delivered any more
        srv.push_bar("AAPL", {"t": t, "o": 1.0, "h": 1.1, "l": 0.9, "c": 1.0, "v": 1})
        srv.push_trade("AAPL", 1.01, size=1, t=t + timedelta(seconds=1))   # still subscribed
        srv.push_trade("NVDA", 120.5, size=2, t=t + timedelta(seconds=2))
        srv.push_bar("NVDA", {"t": t, "o": 120.0, "h": 121.0, "l": 119.5, "c": 120.5, "v": 50})
        await until(lambda: len(actor.events) >= 3, what="the AAPL trade and the NVDA trade and bar")
        await asyncio.sleep(0.2)
        assert client._cache.instrument(nvda) is not None

    actor, _ = run_node(srv, RecorderConfig(), scenario)
    assert [e[:3] for e in actor.events] == [("trade", "AAPL", "1.01"), ("trade", "NVDA", "120.50"),
                                             ("bar", "NVDA", "120.00")]
    assert srv.stats["data_connections"] == 1


# ================================================================== (4) drop and reconnect ===
def test_stream_drop_reconnects_resubscribes_and_fills_the_gap(srv):
    t = datetime(2026, 3, 2, 15, 0, tzinfo=timezone.utc)

    def bar(i: int, base: float) -> dict:
        o = round(base + i * 0.10, 2)
        return {"t": t + timedelta(minutes=i), "o": o, "h": round(o + 0.2, 2), "l": round(o - 0.2, 2),
                "c": round(o + 0.05, 2), "v": 100 + i}

    async def scenario(actor, client):  # noqa: ANN001
        await subscribed(client)
        srv.push_bar("AAPL", bar(0, 190))
        srv.push_trade("MSFT", 410.00, size=1, t=t)
        await until(lambda: len(actor.events) >= 2, what="the first bar and trade")

        assert srv.drop_data_streams() == 1
        srv.push_bar("AAPL", bar(1, 190))   # while the socket is down: only REST has it
        await until(lambda: client.stream.sessions >= 2, what="the reconnect")
        await subscribed(client)             # everything re-subscribed on the new socket
        srv.push_bar("AAPL", bar(2, 190))
        srv.push_bar("MSFT", bar(2, 410))
        srv.push_trade("MSFT", 410.25, size=2, t=t + timedelta(minutes=2, seconds=5))
        srv.set_quote("AAPL", bid=190.20, ask=190.22, t=t + timedelta(minutes=2, seconds=6))
        await until(lambda: len(actor.events) >= 7, what="the events after the reconnect")
        await asyncio.sleep(0.2)

    actor, client = run_node(srv, RecorderConfig(), scenario)

    aapl_bars = [e for e in actor.events if e[0] == "bar" and e[1] == "AAPL"]
    assert [e[-1] for e in aapl_bars] == [ns(t + timedelta(minutes=m)) for m in (1, 2, 3)]  # no gap, no dupes
    assert [e[5] for e in aapl_bars] == ["190.05", "190.15", "190.25"]
    assert [e for e in actor.events if e[0] == "bar" and e[1] == "MSFT"] == [
        ("bar", "MSFT", "410.20", "410.40", "410.00", "410.25", "102", ns(t + timedelta(minutes=3)))]
    assert [(e[2], e[3]) for e in actor.events if e[0] == "trade"] == [("410.00", "1"), ("410.25", "2")]
    assert [e[2:4] for e in actor.events if e[0] == "quote"] == [("190.20", "190.22")]
    # one socket at a time: two connections in total (before and after the drop), none refused
    assert srv.stats["data_connections"] == 2
    assert srv.stats["data_rejections"] == 0
    assert client.stream.sessions == 2


def test_second_connection_is_refused_then_client_retries(srv):
    """Another process holds the account's only market-data socket: 406, backoff, retry; once
    it is released the client connects and data flows."""
    import websockets.sync.client as wsc

    with wsc.connect(srv.data_stream_url, additional_headers={"Content-Type": "application/msgpack"},
                     proxy=None) as other:
        msgpack.unpackb(other.recv(timeout=WAIT))
        other.send(msgpack.packb({"action": "auth", "key": KEY, "secret": SECRET}))
        assert msgpack.unpackb(other.recv(timeout=WAIT))[0]["msg"] == "authenticated"

        async def scenario(actor, client):  # noqa: ANN001
            await until(lambda: "406" in (client.stream.last_error or ""), what="the 406 refusal")
            assert srv.stats["data_rejections"] >= 1
            assert not client.stream.is_connected
            other.close()
            await subscribed(client)
            srv.push_trade("AAPL", 190.5, size=3, t=T0)
            await until(lambda: len(actor.events) >= 1, what="a trade")

        actor, client = run_node(srv, RecorderConfig(), scenario)
    assert actor.events[0][:4] == ("trade", "AAPL", "190.50", "3")
    assert client.stream.sessions == 1


class RecordingLog:
    """Stands in for the Nautilus logger so the test sees every message whatever the global level."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []

    def __getattr__(self, level: str):  # debug / info / warning / error / exception
        return lambda msg, *args: self.lines.append((level, str(msg) + "".join(f" {a}" for a in args)))


def test_stream_reconnects_logs_no_secret_and_stops_on_bad_keys(srv):
    from adapters.alpaca.data import AlpacaMarketDataStream

    log = RecordingLog()
    got: list[dict] = []

    async def main() -> None:
        stream = AlpacaMarketDataStream(srv.data_stream_url, KEY, SECRET, got.append, log,
                                        reconnect_initial_delay_s=0.05)
        await stream.subscribe("trades", ["AAPL"])
        await stream.subscribe("quotes", ["AAPL", "MSFT"])
        await until(stream.is_synchronised, what="the first subscription")
        srv.drop_data_streams()
        await until(lambda: stream.sessions >= 2 and stream.is_synchronised(), what="reconnect + resubscribe")
        srv.push_trade("AAPL", 1.23, size=1, t=T0)
        await until(lambda: got, what="a trade after the reconnect")
        await stream.close()
        assert not stream.is_running

        bad = AlpacaMarketDataStream(srv.data_stream_url, KEY, "wrong-secret", got.append, log,
                                     reconnect_initial_delay_s=0.05)
        await bad.subscribe("bars", ["AAPL"])
        await until(lambda: bad.attempts >= 1 and not bad.is_running, what="the stream to give up")
        assert "auth failed" in bad.last_error and bad.sessions == 0
        await bad.close()

    asyncio.run(main())
    assert got[0]["T"] == "t" and got[0]["p"] == 1.23
    text = "\n".join(m for _, m in log.lines)
    assert "reconnected (session 2)" in text and "not reconnecting" in text
    assert SECRET not in text and "wrong-secret" not in text and KEY not in text
    assert "PKDA***" in text
    assert srv.stats["data_connections"] == 2  # the bad key never got a connection slot


# ====================================================================== (5) bad live bars ===
def test_bad_live_bars_are_skipped_without_crashing(srv):
    t = datetime(2026, 3, 2, 15, 0, tzinfo=timezone.utc)

    async def scenario(actor, client):  # noqa: ANN001
        await subscribed(client)
        srv.push_bar("AAPL", {"t": t, "o": 190.0, "h": 190.5, "l": float("nan"), "c": 190.1, "v": 10})
        srv.push_bar("AAPL", {"t": t + timedelta(minutes=1), "o": -190.0, "h": 190.5, "l": 189.5, "c": 190.1,
                              "v": 10})
        srv.set_quote("MSFT", bid=float("nan"), ask=410.1, t=t)
        srv.push_trade("MSFT", -5.0, size=1, t=t)
        srv.push_bar("AAPL", {"t": t + timedelta(minutes=2), "o": 190.1, "h": 190.3, "l": 190.0, "c": 190.2,
                              "v": 11})
        await until(lambda: len(actor.events) >= 1, what="the good bar")
        await asyncio.sleep(0.2)

    actor, client = run_node(srv, RecorderConfig(), scenario)
    assert actor.events == [("bar", "AAPL", "190.10", "190.30", "190.00", "190.20", "11",
                             ns(t + timedelta(minutes=3)))]
    assert client.skipped_records == 4
    assert client.stream.sessions == 1  # the socket survived


# ========================================================================= parsing (pure) ===
def test_parse_bar_close_time_and_validation_names_the_field():
    bt = bar_type("AAPL")
    start = datetime(2026, 3, 2, 14, 30, tzinfo=timezone.utc)
    ts = msgpack.Timestamp.from_unix_nano(ns(start))
    bar = parse_bar({"t": ts, "o": 1.5, "h": 2.0, "l": 1.25, "c": 1.75, "v": 300}, bt, interval_ns=60_000_000_000)
    assert bar.ts_event == bar.ts_init == ns(start) + 60_000_000_000
    assert str(bar.low) == "1.25" and str(bar.volume) == "300"
    # more decimals than the instrument's precision: precision is raised, nothing is rounded
    sub_penny = parse_bar({"t": start, "o": 0.1234, "h": 0.13, "l": 0.12, "c": 0.125, "v": 1}, bt,
                          interval_ns=60_000_000_000)
    assert str(sub_penny.open) == "0.1234" and str(sub_penny.close) == "0.1250"
    for fld, value, reason in (("l", math.nan, "nan"), ("h", -1.0, "negative"), ("o", 0.0, "zero"),
                               ("c", math.inf, "infinite")):
        rec = {"t": start, "o": 1.5, "h": 2.0, "l": 1.25, "c": 1.75, "v": 300, fld: value}
        with pytest.raises(AlpacaDataError) as err:
            parse_bar(rec, bt, interval_ns=60_000_000_000)
        name = {"o": "open", "h": "high", "l": "low", "c": "close"}[fld]
        assert err.value.field == name and err.value.reason == reason and f"'{name}'" in str(err.value)
    with pytest.raises(AlpacaDataError, match="'high'"):
        parse_bar({"t": start, "o": 1.5, "h": 1.6, "l": 1.25, "c": 1.75, "v": 1}, bt, interval_ns=60_000_000_000)


def test_parse_accepts_alpaca_py_models():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from alpaca.data.models import Bar as AlpacaBar
        from alpaca.data.models import Quote as AlpacaQuote
        from alpaca.data.models import Trade as AlpacaTrade
    iid = InstrumentId.from_str("AAPL.ALPACA")
    bar = parse_bar(AlpacaBar("AAPL", {"t": "2026-03-02T14:30:00Z", "o": 1.5, "h": 2, "l": 1.25, "c": 1.75,
                                       "v": 300, "n": 3, "vw": 1.6}), bar_type("AAPL"), interval_ns=60_000_000_000)
    assert (str(bar.open), str(bar.close), bar.ts_event) == (
        "1.50", "1.75", ns(datetime(2026, 3, 2, 14, 31, tzinfo=timezone.utc)))
    quote = parse_quote(AlpacaQuote("AAPL", {"t": "2026-03-02T14:30:00Z", "bp": 1.5, "bs": 2, "ap": 1.6, "as": 3}),
                        iid)
    assert (str(quote.bid_price), str(quote.ask_size)) == ("1.50", "3")
    trade = parse_trade(AlpacaTrade("AAPL", {"t": "2026-03-02T14:30:00Z", "p": 1.55, "s": 10, "i": 77}), iid)
    assert (str(trade.price), str(trade.trade_id)) == ("1.55", "77")


def test_parse_ticks_and_timestamps():
    iid = InstrumentId.from_str("AAPL.ALPACA")
    t = ns(datetime(2026, 3, 2, 15, tzinfo=timezone.utc))
    assert to_unix_nanos("2026-03-02T15:00:00.123456789Z") == t + 123456789
    assert to_unix_nanos(msgpack.Timestamp.from_unix_nano(t + 5)) == t + 5
    q = parse_quote({"t": "2026-03-02T15:00:00Z", "bp": 190.01, "ap": 190.02, "bs": 3, "as": 4}, iid)
    assert (str(q.bid_price), str(q.ask_price), str(q.bid_size), str(q.ask_size)) == ("190.01", "190.02", "3", "4")
    tr = parse_trade({"t": "2026-03-02T15:00:00Z", "p": 190.015, "s": 5, "i": 42}, iid)
    assert str(tr.price) == "190.015" and str(tr.trade_id) == "42"
    with pytest.raises(AlpacaDataError) as err:
        parse_quote({"t": "2026-03-02T15:00:00Z", "bp": 0, "ap": 1.0}, iid)
    assert err.value.reason == "zero"
    assert check_streamable(bar_type("AAPL")) is None
    assert check_streamable(BarType.from_str("AAPL.ALPACA-5-MINUTE-LAST-EXTERNAL"))
    assert check_requestable(BarType.from_str("AAPL.ALPACA-5-MINUTE-LAST-EXTERNAL")) is None
    assert check_requestable(BarType.from_str("AAPL.ALPACA-1-MINUTE-BID-EXTERNAL"))
    assert check_requestable(BarType.from_str("AAPL.ALPACA-2-DAY-LAST-EXTERNAL"))
    assert check_requestable(BarType.from_str("AAPL.ALPACA-1-MINUTE-LAST-INTERNAL"))
