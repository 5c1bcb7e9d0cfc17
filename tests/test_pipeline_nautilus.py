"""The signal actor and the executor inside NautilusTrader's real engine.

- Nautilus aggregates 10m / 1h bars from 1-minute bars and only emits completed ones (no look-ahead).
- A crafted series produces exactly one bullish cloud flip at a known bar through the actor.
- Generated signals written to a catalog and replayed give the same trades as the live actor.
- Extended-hours bars are never traded.
- Nothing in the executor reads the wall clock.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from nautilus_trader.common.actor import Actor

from backtests import catalog_io
from backtests.runner import BacktestSpec, build_engine, run_backtest
from strategies.signal_actor import SignalActor, SignalActorConfig, bar_type_for
from tests.test_backtest_e2e import write_bars_csv

REPO = Path(__file__).resolve().parent.parent
OPEN = datetime(2025, 6, 16, 13, 30, tzinfo=timezone.utc)  # Mon 09:30 ET


class BarRecorder(Actor):
    def __init__(self, bar_types):
        super().__init__()
        self.bar_types = bar_types
        self.seen: list[tuple[str, int, float, int]] = []  # (spec, ts_event, close, clock_ns)

    def on_start(self):
        for bt in self.bar_types:
            self.subscribe_bars(bt)

    def on_bar(self, bar):
        self.seen.append((str(bar.bar_type.spec), bar.ts_event, bar.close.as_double(), self.clock.timestamp_ns()))


def _engine_with_bars(catalog: Path, symbol: str = "QQQ"):
    spec = BacktestSpec(catalog=catalog, symbols=[symbol], progress=False)
    engine = build_engine(spec)
    engine.add_instrument(catalog_io.load_instrument(catalog, symbol))
    bars = catalog_io.load_bars(catalog, symbol)
    return engine, bars  # fed by backtests.runner._run_streaming


def test_higher_timeframes_are_completed_bars_only(tmp_path):
    closes = [100.0 + 0.01 * i for i in range(390)]  # one full session, distinct closes
    catalog = tmp_path / "cat"
    catalog_io.import_files(catalog, [write_bars_csv(tmp_path / "QQQ.csv", closes)], tz="UTC")
    engine, bars = _engine_with_bars(catalog)
    rec = BarRecorder([bar_type_for("QQQ", "XNAS", tf) for tf in ("10m", "1h")])
    engine.add_actor(rec)
    from backtests.runner import _run_streaming

    _run_streaming(engine, bars, [], progress=False)
    ten = [s for s in rec.seen if s[0].startswith("10-MINUTE")]
    hour = [s for s in rec.seen if s[0].startswith("1-HOUR")]
    # 10m bars: 09:40, 09:50, ... 16:00 ET -> 39 bars; each closes at the last 1m close inside it
    assert len(ten) == 39
    first_ts = ten[0][1]
    assert first_ts == int((OPEN + timedelta(minutes=10)).timestamp() * 1e9)
    assert ten[0][2] == pytest.approx(closes[9])  # bar closing 09:40 = 10th 1-minute bar
    # hour buckets anchored on :30 -> 10:30, 11:30, ... 15:30 and the 15:30-16:30 bucket
    assert [datetime.fromtimestamp(h[1] / 1e9, tz=timezone.utc).strftime("%H:%M") for h in hour][:6] == [
        "14:30", "15:30", "16:30", "17:30", "18:30", "19:30"]
    assert hour[0][2] == pytest.approx(closes[59])
    # no look-ahead: every aggregated bar is delivered at or after its close time, never before
    assert all(clock >= ts for _, ts, _, clock in rec.seen)
    engine.dispose()


def crafted_flip_closes() -> list[float]:
    """Steady rise (all clouds bullish), an 8-minute dip that turns the fast 5/12 cloud bearish while
    price stays above the macro 34/50 cloud, then a rise that flips it back: one bullish flip."""
    up = [round(100.0 + 0.05 * i, 2) for i in range(100)]
    dip = [round(up[-1] - 0.06 * k, 2) for k in range(1, 9)]
    up2 = [round(dip[-1] + 0.05 * k, 2) for k in range(1, 41)]
    return up + dip + up2


def _ema(values: list[float], n: int) -> list[float]:
    out, e, a = [], None, 2.0 / (n + 1)
    for v in values:
        e = v if e is None else a * v + (1 - a) * e
        out.append(e)
    return out


def test_actor_emits_one_bullish_flip_at_known_bar(tmp_path):
    closes = crafted_flip_closes()
    # independent check of where the fast cloud turns from bearish back to bullish
    e5, e12 = _ema(closes, 5), _ema(closes, 12)
    flips = [i for i in range(51, len(closes)) if e5[i] >= e12[i] and e5[i - 1] < e12[i - 1]]
    assert flips == [112]

    catalog = tmp_path / "cat"
    catalog_io.import_files(catalog, [write_bars_csv(tmp_path / "QQQ.csv", closes)], tz="UTC")
    engine, bars = _engine_with_bars(catalog)
    actor = SignalActor(SignalActorConfig(symbols=("QQQ",), timeframes=("1m",), keep_signals=True))
    engine.add_actor(actor)
    from backtests.runner import _run_streaming

    _run_streaming(engine, bars, [], progress=False)
    signals = [d.to_signal() for d in actor.published]
    flip_signals = [s for s in signals if s.signal_type.value.startswith("cloud_flip")]
    assert len(flip_signals) == 1
    flip = flip_signals[0]
    assert flip.signal_type.value == "cloud_flip_bullish" and flip.direction == "long"
    assert flip.timestamp == OPEN + timedelta(minutes=113)  # bar 112 closes 11:23 ET
    assert flip.entry_price == pytest.approx(104.72)
    assert flip.stop_loss < flip.entry_price
    assert flip.target_price == pytest.approx(flip.entry_price + 2 * (flip.entry_price - flip.stop_loss))
    engine.dispose()


@pytest.mark.slow
def test_recorded_signals_replay_to_the_same_trades(tmp_path, sample_catalog):
    rec_dir = tmp_path / "signals"
    live = run_backtest(BacktestSpec(catalog=sample_catalog, symbols=["QQQ", "SPY"], mode="stock",
                                     end="2025-06-24", progress=False, record_signals=rec_dir))
    replay = run_backtest(BacktestSpec(catalog=sample_catalog, symbols=["QQQ", "SPY"], mode="stock",
                                       end="2025-06-24", progress=False, signals_catalog=rec_dir))
    assert live.summary["trades"] > 0
    assert replay.summary["signals_received"] == live.summary["signals_received"]
    key = lambda t: (t["signal_id"], t["entry_price"], t["exit_price"], t["shares"], t["exit_reason"], t["pnl"])
    assert [key(t) for t in replay.log.trades] == [key(t) for t in live.log.trades]
    assert replay.summary["ending_equity"] == live.summary["ending_equity"]


@pytest.mark.slow
def test_real_qqq_extended_hours_never_traded(shared_data, tmp_path):
    src = shared_data / "intraday-1min" / "QQQ_1min_2025-04-30_2025-06-13.csv"
    catalog = tmp_path / "cat"
    catalog_io.import_files(catalog, [src], tz="UTC", label="open")
    result = run_backtest(BacktestSpec(catalog=catalog, symbols=["QQQ"], mode="stock", start="2025-05-01",
                                       end="2025-05-16", progress=False, extended_hours=True))
    from strategies.trade_executor import MarketCalendar

    cal = MarketCalendar()
    assert result.summary["trades"] > 0
    for t in result.log.trades:
        assert cal.is_open(t["entry_time"]), t
    for d in result.log.decisions:
        if d.approved:
            assert cal.is_open(d.ts)
    # regular-session feed (default) sees fewer bars than the extended feed
    regular = run_backtest(BacktestSpec(catalog=catalog, symbols=["QQQ"], mode="stock", start="2025-05-01",
                                        end="2025-05-16", progress=False))
    assert regular.summary["bars_processed"] == 11 * 390  # 11 sessions May 1-15, none early
    assert result.summary["bars_processed"] > regular.summary["bars_processed"]


def test_executor_never_reads_the_wall_clock():
    pattern = re.compile(r"datetime\.now\(|datetime\.utcnow\(|time\.time\(|date\.today\(|utc_now_wall")
    offenders = []
    for path in list((REPO / "strategies").rglob("*.py")):
        rel = path.relative_to(REPO).as_posix()
        if rel.startswith("strategies/journal/") or rel == "strategies/cli.py":
            continue  # operator bookkeeping and the CLI are not decision logic
        for i, line in enumerate(path.read_text().splitlines(), 1):
            if pattern.search(line) and not line.lstrip().startswith("#"):
                offenders.append(f"{rel}:{i}: {line.strip()}")
    assert offenders == []
