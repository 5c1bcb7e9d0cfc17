"""Throughput benchmark: the same 1-minute bars through (a) a no-op strategy subscribed to them and
(b) the full pipeline (signal actor + executor strategy), in one process.

Prints bars/s for both, their ratio and peak resident memory. Numbers, not a pass/fail test.
Usage: trade-executor bench [--catalog DIR --symbol QQQ] [--sessions 60]
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

from nautilus_trader.model.data import BarType
from nautilus_trader.trading.strategy import Strategy

from backtests import catalog_io
from backtests.runner import VENUE, BacktestSpec, build_engine
from strategies.execution_log import ExecutionLog
from strategies.executor_strategy import ExecutorStrategy, ExecutorStrategyConfig
from strategies.signal_actor import SignalActor, SignalActorConfig


class NoOpStrategy(Strategy):
    def __init__(self, bar_type: BarType) -> None:
        super().__init__()
        self.bar_type = bar_type
        self.count = 0

    def on_start(self) -> None:
        self.subscribe_bars(self.bar_type)

    def on_bar(self, bar) -> None:
        self.count += 1


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _run(catalog: Path, symbol: str, bars: list, full: bool) -> tuple[float, int]:
    spec = BacktestSpec(catalog=catalog, symbols=[symbol], mode="stock", progress=False)
    engine = build_engine(spec)
    engine.add_instrument(catalog_io.load_instrument(catalog, symbol))
    engine.add_data(bars)
    if full:
        engine.add_actor(SignalActor(SignalActorConfig(symbols=(symbol,), venue=VENUE)))
        strategy = ExecutorStrategy(ExecutorStrategyConfig(executor={"instrument_mode": "stock"},
                                                           symbols=(symbol,), venue=VENUE), sink=ExecutionLog())
    else:
        strategy = NoOpStrategy(BarType.from_str(f"{symbol}.{VENUE}-1-MINUTE-LAST-EXTERNAL"))
    engine.add_strategy(strategy)
    t0 = time.perf_counter()
    engine.run()
    elapsed = time.perf_counter() - t0
    trades = len(strategy.sink.trades) if full else 0
    engine.dispose()
    return elapsed, trades


def main(args: argparse.Namespace | None = None) -> int:
    if args is None:
        p = argparse.ArgumentParser()
        p.add_argument("--catalog", default=None)
        p.add_argument("--symbol", default=None)
        p.add_argument("--sessions", type=int, default=60)
        args = p.parse_args()
    tmp = None
    if args.catalog:
        catalog = Path(args.catalog)
        symbol = args.symbol or catalog_io.list_symbols(catalog)[0]
        source = f"catalog {catalog}"
    else:
        from backtests.sample_data import generate_sample

        tmp = tempfile.TemporaryDirectory(prefix="bench-")
        files = generate_sample(Path(tmp.name) / "csv", symbols=("QQQ",), sessions=args.sessions)
        catalog = Path(tmp.name) / "catalog"
        catalog_io.import_files(catalog, files, tz="UTC", label="open")
        symbol = "QQQ"
        source = f"generated sample, {args.sessions} sessions"
    bars = catalog_io.load_bars(catalog, symbol)
    rss0 = _peak_rss_mb()
    print(f"bench: {len(bars):,} one-minute bars of {symbol} ({source}); python {sys.version.split()[0]}")
    noop_s, _ = _run(catalog, symbol, bars, full=False)
    rss_noop = _peak_rss_mb()
    full_s, trades = _run(catalog, symbol, bars, full=True)
    rss_full = _peak_rss_mb()
    noop_rate = len(bars) / noop_s
    full_rate = len(bars) / full_s
    print(f"  no-op strategy : {noop_rate:>10,.0f} bars/s  ({noop_s:.2f} s)")
    print(f"  full pipeline  : {full_rate:>10,.0f} bars/s  ({full_s:.2f} s, {trades} round trips)")
    print(f"  ratio full/no-op: {full_rate / noop_rate:.2f}")
    print(f"  peak RSS: {rss_full:,.0f} MB (after loading bars {rss0:,.0f} MB, after no-op run {rss_noop:,.0f} MB)")
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
