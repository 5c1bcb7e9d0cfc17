"""Backtests on NautilusTrader's BacktestEngine: catalog bars -> signal actor -> executor strategy.

The engine, the actor and the strategy are the same classes a live TradingNode runs; only the
data (catalog bars instead of a feed) and the execution venue (Nautilus' simulated exchange
instead of a broker) differ.

Fill realism (documented in the README): a market order sent when a 1-minute bar closes fills at
that bar's close plus one tick of adverse slippage (Nautilus FillModel, prob_slippage=1), and sells
pay SEC + FINRA TAF fees (strategies.fees).
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
from nautilus_trader.backtest.engine import BacktestEngine, BacktestEngineConfig
from nautilus_trader.backtest.models import FillModel
from nautilus_trader.config import LoggingConfig
from nautilus_trader.data.config import DataEngineConfig
from nautilus_trader.model.currencies import USD
from nautilus_trader.model.enums import AccountType, BarAggregation, OmsType
from nautilus_trader.model.identifiers import ClientId, TraderId, Venue
from nautilus_trader.model.objects import Money

from backtests import catalog_io
from backtests.report import build_summary, write_decisions_csv, write_html, write_trades_csv
from strategies.execution_log import ExecutionLog, TeeSink
from strategies.executor_strategy import ExecutorStrategy, ExecutorStrategyConfig
from strategies.fees import USEquityFeeModel
from strategies.risk_control import current_trading_state, install_risk_controls, risk_engine_config
from strategies.signal_actor import SignalActor, SignalActorConfig, signal_order
from strategies.signal_data import TradeSignalData
from strategies.trade_executor import ExecutorConfig, InstrumentMode
from strategies.trade_executor.etf_catalog import LEVERAGED_ETF_CATALOG

VENUE = "XNAS"
SIGNAL_CLIENT = "SIGNALS"


class BacktestArgumentError(ValueError):
    """Bad backtest arguments: unknown symbol, empty period, missing catalog, bad mode."""


@dataclass
class BacktestSpec:
    catalog: Path
    symbols: list[str]
    start: str | None = None
    end: str | None = None
    mode: str = "stock"
    out_dir: Path | None = None
    starting_cash: float = 100_000.0
    executor: dict[str, Any] = field(default_factory=dict)  # ExecutorConfig overrides
    signals_catalog: Path | None = None  # replay signals from this catalog instead of generating
    record_signals: Path | None = None  # write the generated signal set to this catalog
    extended_hours: bool = False  # feed pre/after-market bars too (default: regular session only)
    price_source: str = "close"
    db_url: str | None = None  # journal every decision/trade/event to this database (run_id keeps runs apart)
    # executor_control scope for the kill-switch latch (needs db_url). None: private to this run
    # ("bt-<run id>"); name one (e.g. "paper") to carry a latch across runs like a restart would.
    control_scope: str | None = None
    control_poll_seconds: float | None = None  # also poll the latch every N s of replay time
    alert_webhook_url: str | None = None  # kill-switch alerts POSTed here (JSON)
    progress: bool = True
    log_level: str = "ERROR"


@dataclass
class BacktestResult:
    summary: dict[str, Any]
    log: ExecutionLog
    elapsed_s: float
    bars: int
    out_dir: Path | None


def data_engine_config() -> DataEngineConfig:
    return DataEngineConfig(
        # hour buckets 09:30-10:30, ... so they line up with the NYSE open (:30 in EST and EDT)
        time_bars_origin_offset={BarAggregation.HOUR: pd.Timedelta(minutes=30)},
        # overnight and on holidays nothing trades: no flat placeholder bars into the EMAs
        time_bars_build_with_no_updates=False,
    )


def _ts(value: str | None, name: str) -> pd.Timestamp | None:
    if value is None or value == "":
        return None
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError):
        raise BacktestArgumentError(f"{name}: not a date/time: {value!r}") from None
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def resolve_symbols(spec: BacktestSpec) -> tuple[list[str], list[str]]:
    """(signal symbols, all followed symbols incl. tradeable leveraged ETFs present in the catalog)."""
    catalog = Path(spec.catalog)
    if not catalog.is_dir():
        raise BacktestArgumentError(f"catalog not found: {catalog} (import data with 'trade-executor data import')")
    try:
        InstrumentMode(spec.mode)
    except ValueError:
        raise BacktestArgumentError(
            f"mode: unknown mode {spec.mode!r}; use one of {[m.value for m in InstrumentMode]}") from None
    available = catalog_io.list_symbols(catalog)
    if not spec.symbols:
        raise BacktestArgumentError(f"symbols: none given; catalog {catalog} has {', '.join(available)}")
    symbols = [s.strip().upper() for s in spec.symbols if s.strip()]
    unknown = [s for s in symbols if s not in available]
    if unknown:
        raise BacktestArgumentError(
            f"unknown symbol {', '.join(unknown)} in catalog {catalog}; available: {', '.join(available) or 'none'}")
    followed = list(symbols)
    if spec.mode in (InstrumentMode.LEVERAGED_ETF.value, InstrumentMode.BOTH.value):
        etf_tickers = {e["ticker"] for e in LEVERAGED_ETF_CATALOG.values()} | {
            e["inverse"] for e in LEVERAGED_ETF_CATALOG.values() if e["inverse"]}
        followed += [s for s in available if s in etf_tickers and s not in followed]
    return symbols, followed


def load_bar_stream(spec: BacktestSpec, followed: list[str], signal_symbols: list[str]):
    start, end = _ts(spec.start, "start"), _ts(spec.end, "end")
    if start is not None and end is not None and end <= start:
        raise BacktestArgumentError(f"empty period: end {spec.end} is not after start {spec.start}")
    per_symbol = {}
    for sym in followed:
        bars = catalog_io.load_bars(spec.catalog, sym, start=start, end=end)
        if bars and not spec.extended_hours:
            ts = np.fromiter((b.ts_event for b in bars), dtype=np.int64, count=len(bars))
            mask = catalog_io.regular_session_mask(ts)
            bars = [b for b, keep in zip(bars, mask) if keep]
        per_symbol[sym] = bars
    empty = [s for s in signal_symbols if not per_symbol.get(s)]
    if empty:
        raise BacktestArgumentError(
            f"empty period: no {'' if spec.extended_hours else 'regular-session '}bars for "
            f"{', '.join(empty)} between {spec.start or 'the start'} and {spec.end or 'the end'} of the catalog")
    merged = [b for bars in per_symbol.values() for b in bars]
    merged.sort(key=lambda b: b.ts_init)
    return merged, per_symbol


def _run_streaming(engine: BacktestEngine, bars: list, signals: list, *, progress: bool,
                   chunk: int = 50_000) -> None:
    """Feed the engine in chunks (Nautilus' streaming mode): bounded memory and a progress line per
    chunk on long runs. Replayed signals go with the chunk holding the bar they were stamped after."""
    n = len(bars)
    t0 = time.perf_counter()
    j = 0
    first = True
    for i in range(0, n, chunk):
        part = bars[i:i + chunk]
        last_ts = part[-1].ts_init
        data = list(part)
        while j < len(signals) and (signals[j].ts_init <= last_ts + 1 or i + chunk >= n):
            data.append(signals[j])
            j += 1
        if len(data) > len(part):
            engine.add_data([d for d in data[len(part):]], client_id=ClientId(SIGNAL_CLIENT))
        engine.add_data(part)
        # start the clock just before the first bar: time-bar aggregators anchor their buckets on it
        start = pd.Timestamp(part[0].ts_init - 60_000_000_000, tz="UTC") if first else None
        engine.run(start=start, streaming=True)
        engine.clear_data()
        first = False
        if progress and n > chunk:
            done = min(i + chunk, n)
            day = pd.Timestamp(last_ts, tz="UTC").tz_convert("America/New_York").date()
            rate = done / max(time.perf_counter() - t0, 1e-9)
            print(f"  progress: {done / n:6.1%}  ({done:,}/{n:,} bars, up to {day}, {rate:,.0f} bars/s)",
                  file=sys.stderr, flush=True)
    engine.end()


def build_engine(spec: BacktestSpec, log_level: str | None = None) -> BacktestEngine:
    xcfg = ExecutorConfig(**{"instrument_mode": spec.mode, **spec.executor})
    engine = BacktestEngine(BacktestEngineConfig(
        trader_id=TraderId("BACKTESTER-001"),
        logging=LoggingConfig(log_level=log_level or spec.log_level, bypass_logging=False),
        data_engine=data_engine_config(),
        risk_engine=risk_engine_config(xcfg.max_orders_per_minute),
    ))
    install_risk_controls(engine.kernel)
    engine.add_venue(
        venue=Venue(VENUE),
        oms_type=OmsType.NETTING,
        account_type=AccountType.MARGIN,
        base_currency=USD,
        starting_balances=[Money(spec.starting_cash, USD)],
        default_leverage=Decimal(1),
        fill_model=FillModel(prob_slippage=1.0, random_seed=135),
        fee_model=USEquityFeeModel(),
        bar_execution=True,
    )
    return engine


def run_backtest(spec: BacktestSpec, *, on_engine: Callable[[BacktestEngine], None] | None = None) -> BacktestResult:
    signal_symbols, followed = resolve_symbols(spec)
    ExecutorConfig(**{"instrument_mode": spec.mode, **spec.executor})  # validate early, clear errors
    bars, per_symbol = load_bar_stream(spec, followed, signal_symbols)

    engine = build_engine(spec)
    for sym in followed:
        engine.add_instrument(catalog_io.load_instrument(spec.catalog, sym))

    replay = spec.signals_catalog is not None
    signals = _load_signals(Path(spec.signals_catalog), bars) if replay else []

    actor = None
    if not replay:
        actor = SignalActor(SignalActorConfig(
            symbols=tuple(signal_symbols), venue=VENUE, price_source=spec.price_source,
            regular_hours_only=True, keep_signals=spec.record_signals is not None,
        ))
        engine.add_actor(actor)
    log = ExecutionLog()
    journal = None
    control = None
    sink = log
    if spec.control_scope is not None and not spec.db_url:
        raise BacktestArgumentError("control_scope: needs a database (--db) to keep the latch in")
    if spec.db_url:
        from datetime import datetime, timezone

        from strategies.journal import ControlStore, JournalSink, new_run_id, upgrade

        upgrade(spec.db_url)
        journal = JournalSink(spec.db_url, run_id=new_run_id())
        control = ControlStore(spec.db_url, scope=spec.control_scope or journal.run_id)
        journal.writer.start_backtest_run(
            datetime.now(timezone.utc), mode=spec.mode, symbols=signal_symbols,
            params={"start": spec.start, "end": spec.end, "cash": spec.starting_cash,
                    "executor": spec.executor, "control_scope": control.scope,
                    "signals": str(spec.signals_catalog) if replay else "ema_cloud_actor",
                    "extended_hours": spec.extended_hours, "price_source": spec.price_source})
        sink = TeeSink(log, journal)
    strategy = ExecutorStrategy(ExecutorStrategyConfig(
        executor={"instrument_mode": spec.mode, **spec.executor},
        symbols=tuple(followed), venue=VENUE,
        signal_client_id=SIGNAL_CLIENT if replay else None,
        control_poll_seconds=spec.control_poll_seconds, alert_webhook_url=spec.alert_webhook_url,
    ), sink=sink, control=control)
    engine.add_strategy(strategy)
    if on_engine is not None:
        on_engine(engine)

    t0 = time.perf_counter()
    try:
        _run_streaming(engine, bars, signals, progress=spec.progress)
    except BaseException:
        if journal is not None:
            journal.close()  # what was recorded stays recorded
        raise
    elapsed = time.perf_counter() - t0

    ending_equity = strategy.equity()
    if actor is not None and spec.record_signals is not None:
        write_signals(Path(spec.record_signals), actor.published)
    first_ts = pd.Timestamp(bars[0].ts_event, tz="UTC").isoformat()
    last_ts = pd.Timestamp(bars[-1].ts_event, tz="UTC").isoformat()
    summary = build_summary(
        mode=spec.mode, start=spec.start or first_ts, end=spec.end or last_ts, symbols=signal_symbols,
        starting_equity=spec.starting_cash, ending_equity=ending_equity, trades=log.trades,
        decisions=log.decisions, curve=log.equity, signals_received=strategy.signals_received,
        bars=len(bars),
        extra={"traded_symbols": followed, "first_bar": first_ts, "last_bar": last_ts,
               "open_positions_at_end": len(strategy.positions_by_signal),
               "signals_source": str(spec.signals_catalog) if replay else "ema_cloud_actor",
               "kill_switch_events": [e[2] for e in log.events if e[1] == "kill_switch"],
               "trading_state": current_trading_state(engine.kernel),
               "journal": {"db": _redact(spec.db_url), "run_id": journal.run_id} if journal else None},
    )
    if journal is not None:
        try:
            journal.flush()
            journal.writer.finish_backtest_run(summary)
        finally:
            journal.close()  # flushes the batched decisions / equity points
    if control is not None:
        control.close()
    engine.dispose()
    if spec.out_dir is not None:
        write_outputs(Path(spec.out_dir), summary, log)
    return BacktestResult(summary=summary, log=log, elapsed_s=elapsed, bars=len(bars),
                          out_dir=Path(spec.out_dir) if spec.out_dir else None)


def _redact(url: str | None) -> str | None:
    """A database URL without its password (URLs may carry credentials)."""
    if not url:
        return url
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def write_outputs(out: Path, summary: dict[str, Any], log: ExecutionLog) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    write_trades_csv(out / "trades.csv", log.trades)
    write_decisions_csv(out / "decisions.csv", log.decisions)
    write_html(out / "report.html", summary, log.equity, log.trades,
               title=f"Backtest {summary['mode']} {', '.join(summary['symbols'])}")


def write_signals(catalog_dir: Path, signals: list[TradeSignalData]) -> None:
    from nautilus_trader.persistence.catalog import ParquetDataCatalog

    catalog_dir.mkdir(parents=True, exist_ok=True)
    # The actor stamps signals 1 ns after the bar that produced them (ts_init), so on replay the
    # data engine delivers each after its bar, exactly when the in-process actor publishes it.
    rows = [TradeSignalData(ts_event=s.ts_event, ts_init=s.ts_init, signal_id=s.signal_id, ticker=s.ticker,
                            timeframe=s.timeframe, signal_type=s.signal_type, direction=s.direction,
                            conviction=s.conviction, payload=s.with_payload().payload) for s in signals]
    if rows:
        ParquetDataCatalog(str(catalog_dir)).write_data(rows)


def _load_signals(catalog_dir: Path, bars: list) -> list:
    from nautilus_trader.persistence.catalog import ParquetDataCatalog

    if not catalog_dir.is_dir():
        raise BacktestArgumentError(f"signals catalog not found: {catalog_dir}")
    raw = ParquetDataCatalog(str(catalog_dir)).query(TradeSignalData)
    if bars:
        lo, hi = bars[0].ts_init, bars[-1].ts_init + 1
        raw = [r for r in raw if lo <= r.ts_init <= hi]
    raw.sort(key=lambda r: signal_order(r.data))
    return raw
