"""Live start-up (issue #17): warm-up from the broker's historical bars so the clouds are ready for
the first live bar, what the market is doing and when it opens, and a log whose INFO lines are the
executor's own story. The warm-up runs the production wiring (strategies.live) against the local
Alpaca-protocol server's GET /v2/stocks/bars."""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta, timezone
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest

from strategies.engine_config import ENGINE_COMPONENTS, live_logging_config
from strategies.signal_actor import market_status
from strategies.signals.engine import OHLCV
from strategies.signals.warmup import (
    aggregate,
    bucket_close,
    complete_first_bucket,
    forming_minutes,
    sessions_needed,
    warmup_sequence,
)
from strategies.story_log import StorySink, decision_line, exit_line
from strategies.trade_executor import MarketCalendar

UTC = timezone.utc
NY = ZoneInfo("America/New_York")


def _bars(start_close: datetime, n: int, price: float = 100.0) -> list[OHLCV]:
    return [OHLCV(ts=start_close + timedelta(minutes=i), open=price + i, high=price + i + 0.5,
                  low=price + i - 0.5, close=price + i + 0.25, volume=10.0) for i in range(n)]


# -- pure parts ---------------------------------------------------------------------------------

def test_sessions_needed_for_every_trigger_timeframe():
    assert sessions_needed(50, 390) == 9  # 1h: 7 buckets a session (the last one 15:30-16:00) -> 8, + 1
    assert sessions_needed(50, 1440) == 4  # 24/7: 24 hours a session -> 3, + 1
    assert sessions_needed(50, 390, ("1m", "10m")) == 3  # 10m: 39 a session -> 2, + 1
    assert sessions_needed(0, 390) == 0


def test_bucket_close_is_nautilus_time_bar_grid():
    t = datetime(2025, 6, 16, 13, 41, tzinfo=UTC)  # the 1m bar 13:40-13:41
    assert bucket_close(t, 10) == datetime(2025, 6, 16, 13, 50, tzinfo=UTC)
    assert bucket_close(datetime(2025, 6, 16, 13, 50, tzinfo=UTC), 10) == datetime(2025, 6, 16, 13, 50, tzinfo=UTC)
    assert bucket_close(t, 60, 30) == datetime(2025, 6, 16, 14, 30, tzinfo=UTC)  # hours close at :30
    assert bucket_close(datetime(2025, 6, 16, 14, 30, tzinfo=UTC), 60, 30) == datetime(2025, 6, 16, 14, 30, tzinfo=UTC)


def test_aggregate_complete_buckets_only():
    first = datetime(2025, 6, 16, 13, 31, tzinfo=UTC)  # 09:30-09:31 ET
    minutes = _bars(first, 25)  # closes 13:31 ... 13:55
    ten = aggregate(minutes, 10)
    # buckets closing 13:40 (9 bars: 13:31-13:39 closes + 13:40), 13:50; the 14:00 one is still forming
    assert [b.ts for b in ten] == [datetime(2025, 6, 16, 13, 40, tzinfo=UTC), datetime(2025, 6, 16, 13, 50, tzinfo=UTC)]
    b0, b1 = ten
    assert (b0.open, b0.high, b0.low, b0.close, b0.volume) == (100.0, 109.5, 99.5, 109.25, 100.0)
    assert (b1.open, b1.high, b1.low, b1.close, b1.volume) == (110.0, 119.5, 109.5, 119.25, 100.0)
    assert aggregate(minutes, 60, 30) == []  # 14:30 not reached


def test_warmup_sequence_puts_the_minute_before_the_bars_built_with_it():
    first = datetime(2025, 6, 16, 13, 31, tzinfo=UTC)
    daily = [OHLCV(ts=datetime(2025, 6, 16, 13, 40, tzinfo=UTC), open=1, high=1, low=1, close=1, volume=1)]
    seq = warmup_sequence(_bars(first, 20), daily)
    at_1340 = [tf for tf, b in seq if b.ts == datetime(2025, 6, 16, 13, 40, tzinfo=UTC)]
    assert at_1340 == ["1m", "10m", "1d"]
    assert [b.ts for _, b in seq] == sorted(b.ts for _, b in seq)
    assert len(seq) == 20 + 2 + 1


def test_the_first_live_bucket_is_rebuilt_from_history_and_live_minutes():
    first = datetime(2025, 6, 16, 13, 31, tzinfo=UTC)
    history = _bars(first, 25)  # closes 13:31 ... 13:55: the 13:50 bucket is the last complete one
    forming = forming_minutes(history, datetime(2025, 6, 16, 13, 50, tzinfo=UTC))
    assert [m.ts.minute for m in forming] == [51, 52, 53, 54, 55]
    live_minutes = _bars(datetime(2025, 6, 16, 13, 56, tzinfo=UTC), 5, price=200.0)  # 13:56 ... 14:00
    # the node's aggregator started at 13:55:30: its 14:00 bar holds 13:56-14:00 only
    partial = OHLCV(ts=datetime(2025, 6, 16, 14, 0, tzinfo=UTC), open=200.0, high=204.5, low=199.5, close=204.25,
                    volume=50.0)
    full = complete_first_bucket(partial, forming + live_minutes, 10)
    # 13:51-14:00: opens at the 13:51 minute's open (history), closes at 14:00's close (live)
    assert (full.ts, full.open, full.high, full.low, full.close, full.volume) == (
        partial.ts, 120.0, 204.5, 119.5, 204.25, 100.0)
    assert complete_first_bucket(partial, [], 10) is partial
    assert forming_minutes(history, None) == history


def test_market_status_from_the_exchange_calendar():
    cal = MarketCalendar("XNYS")
    text, nxt = market_status(cal, "XNYS", datetime(2025, 6, 21, 15, 0, tzinfo=UTC))  # a Saturday
    assert text.startswith("market closed (XNYS); next open Mon 2025-06-23 09:30 ET (in 46 h 30 min)")
    assert nxt == datetime(2025, 6, 23, 13, 30, tzinfo=UTC)
    text, nxt = market_status(cal, "XNYS", datetime(2025, 7, 3, 17, 30, tzinfo=UTC))  # after the 13:00 early close
    assert "next open Mon 2025-07-07 09:30 ET (in 92 h 00 min)" in text  # July 4th is a holiday
    text, nxt = market_status(cal, "XNYS", datetime(2025, 6, 17, 15, 0, tzinfo=UTC))
    assert text == "market open (XNYS): session closes 2025-06-17 16:00 ET" and nxt == datetime(2025, 6, 17, 20, 0, tzinfo=UTC)


def test_live_logging_keeps_engine_chatter_below_info():
    cfg = live_logging_config("INFO", "EXECUTOR-001")
    levels = cfg.log_component_levels
    for comp in ("Portfolio", "TradingNode", "DataEngine", "ExecEngine", "DataClient-ALPACA", "EXECUTOR-001"):
        assert levels[comp] == "WARNING"
    assert levels["nautilus_common::clock"] == "ERROR"  # "alert time ... was in the past, adjusted"
    for ours in ("SignalActor", "ExecutorStrategy", "Executor"):
        assert ours not in levels  # the executor's own story stays at INFO
    assert cfg.log_level == "INFO"
    debug = live_logging_config("debug")
    assert debug.log_level == "DEBUG" and not debug.log_component_levels
    assert "Portfolio" in ENGINE_COMPONENTS


class _Log:
    def __init__(self):
        self.lines: list[tuple[str, str]] = []

    def info(self, m):
        self.lines.append(("INFO", m))

    def warning(self, m):
        self.lines.append(("WARN", m))


def test_story_lines():
    d = SimpleNamespace(ts=datetime(2025, 6, 16, 14, 0, tzinfo=UTC), ticker="QQQ", timeframe="10m",
                        signal_type="cloud_flip_bullish", direction="long", conviction=80, approved=False,
                        reason_code="low_conviction", reason="low_conviction: conviction 43 < 50", instrument=None,
                        instrument_type=None, shares=0, order_ids=[])
    assert decision_line(d) == ("signal QQQ 10m cloud_flip_bullish long conviction 80 at 10:00:00 ET: "
                                "rejected low_conviction: conviction 43 < 50")
    ok = SimpleNamespace(**{**vars(d), "approved": True, "instrument": "TQQQ", "instrument_type": "leveraged_etf",
                            "shares": 120, "order_ids": ["O-1"]})
    assert decision_line(ok).endswith("APPROVED -> leveraged_etf TQQQ x 120 (orders O-1)")
    row = {"ticker": "QQQ", "direction": "short", "shares": 31, "entry_price": 477.68, "exit_price": 477.82,
           "exit_reason": "cloud_flip", "pnl": -4.35, "signal_id": "S1", "metadata_json": '{"fees": 0.01}'}
    assert exit_line(row) == "EXIT QQQ short 31: 477.68 -> 477.82 cloud_flip, P&L -4.35 (fees 0.01) (signal S1)"
    log = _Log()
    sink = StorySink(log)
    sink.record_open_trade({**row, "stop_loss": 478.98, "target_price": 474.55})
    sink.record_open_trade({**row, "stop_loss": 478.98, "target_price": 474.55})  # re-recorded with its stop id
    sink.record_event(datetime(2025, 6, 16, 15, 0, tzinfo=UTC), "kill_switch", "daily loss 10.2% >= 10%")
    sink.record_equity(datetime(2025, 6, 16, 15, 0, tzinfo=UTC), 1.0)
    assert log.lines == [
        ("INFO", "FILL entry QQQ short 31 @ 477.68 (signal S1; stop 478.98, target 474.55)"),
        ("WARN", "kill_switch at 11:00:00 ET: daily loss 10.2% >= 10%"),
    ]
    assert sink.get_open_trades() == [] and sink.get_decided_signal_ids() == {} and sink.flush()


# -- against the local server -------------------------------------------------------------------

KEY, SECRET = "PKWARMTEST", "warm-test-secret"


@pytest.mark.slow
def test_live_node_warms_up_from_the_brokers_bars(tmp_path):
    from adapters.alpaca.fake_server import FakeAlpacaServer
    from strategies.live import LiveSpec, build_live_node
    from tests.node_harness import drive, until

    now = datetime.now(UTC)
    # 50 hours of minutes ending at the last :30 at least 2 minutes ago: exactly 3,000 1-minute,
    # 300 10-minute and 50 hourly bars (hours close at :30), every one complete
    end = (now - timedelta(minutes=2)).replace(second=0, microsecond=0)
    end -= timedelta(minutes=(end.minute - 30) % 60)
    first_open = end - timedelta(hours=50)
    bars, px = [], 480.0
    for i in range(3000):
        t = first_open + timedelta(minutes=i)
        step = 0.05 if (i // 40) % 2 == 0 else -0.04  # waves: the clouds flip now and then
        o, c = px, round(px + step, 2)
        bars.append({"t": t, "o": o, "h": round(max(o, c) + 0.02, 2), "l": round(min(o, c) - 0.02, 2),
                     "c": c, "v": 1_000})
        px = c
    # the broker's daily bars: New York dates whose day is over
    ny_dates = sorted({b["t"].astimezone(NY).date() for b in bars})

    def done(d: date) -> bool:
        return datetime(d.year, d.month, d.day, tzinfo=NY) + timedelta(days=1) <= datetime.now(UTC)

    with FakeAlpacaServer(keys={KEY: SECRET}) as srv:
        srv.set_bars("QQQ", bars)
        spec = LiveSpec(symbols=["QQQ"], calendar="24/7", db_url=f"sqlite:///{tmp_path / 'j.db'}",
                        api_key=KEY, api_secret=SECRET, trading_url=srv.trading_url,
                        trading_stream_url=srv.stream_url, data_url=srv.data_url,
                        data_stream_url=srv.data_stream_url)
        loop = asyncio.new_event_loop()
        live = build_live_node(spec, loop=loop)
        actor = live.actor
        seen: dict = {}

        async def scenario():
            await until(lambda: "QQQ" in actor.warmup_loaded, 30, "the warm-up")
            expected_daily = sum(1 for d in ny_dates if done(d))
            seen["loaded"] = dict(actor.warmup_loaded["QQQ"])
            seen["ready"] = dict(actor.warmup_ready["QQQ"])
            seen["expected_daily"] = expected_daily
            seen["count_1m"] = actor.engine.tracker("QQQ", "1m").count
            seen["emitted"] = actor.engine.signals_emitted
            seen["published"] = actor.signal_count
            # a bar the history already holds is skipped; the next one joins the warm clouds
            await until(lambda: srv.data_stream_subscribers >= 1, 15, "the bar subscription")
            await asyncio.sleep(0.2)
            srv.push_bar("QQQ", {**bars[-1]})
            last = bars[-1]
            srv.push_bar("QQQ", {"t": end, "o": last["c"], "h": last["c"] + 0.05, "l": last["c"] - 0.01,
                                 "c": last["c"] + 0.04, "v": 1_000})
            await until(lambda: actor.engine.tracker("QQQ", "1m").count > 3000, 15, "the first live bar")
            await asyncio.sleep(0.3)
            seen["count_after"] = actor.engine.tracker("QQQ", "1m").count

        try:
            drive(live.node, loop, lambda: live.strategy.is_running, scenario, 60)
        finally:
            live.node.dispose()
            live.journal.close()
            live.control.close()
            if not loop.is_closed():
                loop.close()
        reqs = srv.requests_to("/v2/stocks/bars", "GET")
        timeframes = sorted({str(r["query"].get("timeframe")) for r in reqs})

    assert seen["loaded"] == {"1m": 3000, "10m": 300, "1h": 50, "1d": seen["expected_daily"]}
    assert 1 <= seen["expected_daily"] <= 3
    assert seen["ready"] == {"1m": True, "10m": True, "1h": True, "1d": False}  # 1d needs 50 sessions
    assert seen["count_1m"] == 3000
    assert seen["emitted"] > 0 and seen["published"] == 0  # history's signals are never published
    assert seen["count_after"] == 3001  # the repeated bar skipped, the new one counted
    assert timeframes == ["1Day", "1Min"]  # the history came over GET /v2/stocks/bars


def test_order_lines():
    from nautilus_trader.model.enums import OrderSide, TimeInForce
    from nautilus_trader.model.identifiers import InstrumentId
    from nautilus_trader.model.objects import Price, Quantity
    from nautilus_trader.test_kit.stubs.identifiers import TestIdStubs
    from nautilus_trader.common.component import TestClock
    from nautilus_trader.common.factories import OrderFactory

    from strategies.story_log import order_line

    factory = OrderFactory(trader_id=TestIdStubs.trader_id(), strategy_id=TestIdStubs.strategy_id(), clock=TestClock())
    stop = factory.stop_market(InstrumentId.from_str("QQQ.ALPACA"), OrderSide.BUY, Quantity.from_int(15),
                               Price.from_str("486.94"), time_in_force=TimeInForce.DAY, reduce_only=True,
                               tags=["signal=S1", "role=stop"])
    assert order_line("sent", stop) == "ORDER sent BUY 15 QQQ.ALPACA STOP_MARKET @ 486.94 DAY (stop, signal S1)"
    mkt = factory.market(InstrumentId.from_str("QQQ.ALPACA"), OrderSide.SELL, Quantity.from_int(30),
                         tags=["signal=S2", "role=exit"])
    assert order_line("refused", mkt, "HALTED") == "ORDER refused SELL 30 QQQ.ALPACA MARKET GTC (exit, signal S2): HALTED"
