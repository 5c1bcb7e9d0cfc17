"""Backtests on NautilusTrader's BacktestEngine: catalog bars -> signal actor -> executor strategy.

The engine, the actor and the strategy are the same classes a live TradingNode runs; only the
data (catalog bars instead of a feed) and the execution venue (Nautilus' simulated exchange
instead of a broker) differ.

Fill realism (documented in the README): a market order sent when a 1-minute bar closes fills at
that bar's close plus one tick of adverse slippage; a resting limit fills at its price or at the
bar's open when the bar opens through it; a triggered stop fills one tick beyond its trigger, or
beyond the open when the bar gaps through it (backtests.fill_model). Fees are the dated regulatory
schedules (adapters.fees).
"""

from __future__ import annotations

import json
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
from nautilus_trader.backtest.engine import BacktestEngine, BacktestEngineConfig
from nautilus_trader.config import LoggingConfig
from nautilus_trader.model.currencies import USD
from nautilus_trader.model.enums import AccountType, OmsType
from nautilus_trader.model.identifiers import ClientId, TraderId, Venue
from nautilus_trader.model.objects import Money

from backtests import catalog_io
from backtests.fill_model import ExecutorFillModel
from backtests.letf_bars import (
    LETFInputError,
    SyntheticFund,
    decay_costs,
    plan_synthetic_funds,
    synthesize_fund_bars,
    underlying_for,
)
from backtests.report import build_summary, write_decisions_csv, write_html, write_trades_csv
from strategies.execution_log import ExecutionLog, TeeSink
from strategies.executor_strategy import ExecutorStrategy, ExecutorStrategyConfig
from backtests.fee_model import USEquityFeeModel
from strategies.engine_config import data_engine_config
from strategies.risk_control import current_trading_state, install_risk_controls, risk_engine_config
from strategies.signal_actor import SIGNAL_DELAY_NS, SignalActor, SignalActorConfig, signal_order
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
    limit_fill_cap: int | None = None  # at most N shares per touch of a limit price (partial fills)
    option_sim: Any = None  # backtests.option_quotes.OptionSimConfig (None: defaults)
    alert_webhook_url: str | None = None  # kill-switch alerts POSTed here (JSON)
    # leveraged_etf / both modes: funds the router can pick whose bars are not in the catalog are
    # synthesised from their index/sector ETF's bars (backtests.letf_bars; flagged "synthetic").
    synthesize_etfs: bool = True
    synthetic_start_prices: dict[str, float] | None = None  # fund -> start price (default 50.00)
    synthetic_underlyings: dict[str, str] | None = None  # fund -> catalog symbol feeding it (override)
    synthetic_rate: float = 0.0  # annual financing rate of synthetic funds (0.045 = 4.5 %)
    # funds synthesised from their underlying even when the catalog has their real bars (the
    # real series is then not fed); started at the real fund's price at the underlying's first
    # bar unless synthetic_start_prices names one (backtests.letf_bars.anchor_forced_funds)
    force_synthetic: tuple[str, ...] = ()
    # True: a progress bar on stderr when it is a terminal (strategies.progress); False: none; a
    # callable ``(label, done, total, note)`` (strategies.progress.QueueReporter): report to it
    progress: Any = True
    progress_label: str | None = None  # the bar's name (default "backtest MODE SYMBOLS")
    log_level: str = "ERROR"


@dataclass
class BacktestResult:
    summary: dict[str, Any]
    log: ExecutionLog
    elapsed_s: float
    bars: int
    out_dir: Path | None
    letf_decay_trades: list[dict[str, Any]] = field(default_factory=list)  # per closed ETF trade


@dataclass
class SymbolPlan:
    """What a backtest follows: signal symbols, catalog symbols fed (signal symbols + leveraged
    ETFs with real bars), synthetic funds, and reachable funds that have no bars at all."""

    signal_symbols: list[str]
    catalog_symbols: list[str]
    synthetic: list[SyntheticFund] = field(default_factory=list)
    unavailable: dict[str, str] = field(default_factory=dict)

    @property
    def followed(self) -> list[str]:
        return self.catalog_symbols + [f.ticker for f in self.synthetic]


def _ts(value: str | None, name: str) -> pd.Timestamp | None:
    if value is None or value == "":
        return None
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError):
        raise BacktestArgumentError(f"{name}: not a date/time: {value!r}") from None
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def resolve_symbols(spec: BacktestSpec) -> tuple[list[str], list[str]]:
    """(signal symbols, all followed symbols incl. tradeable leveraged ETFs: real catalog bars and,
    with ``synthesize_etfs``, synthetic ones)."""
    plan = plan_symbols(spec)
    return plan.signal_symbols, plan.followed


def plan_symbols(spec: BacktestSpec) -> SymbolPlan:
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
    plan = SymbolPlan(signal_symbols=symbols, catalog_symbols=followed)
    from backtests.letf_bars import ForcedSyntheticError, anchor_forced_funds, check_forced_funds

    try:
        forced = check_forced_funds(spec.force_synthetic, available, symbols, spec.synthetic_underlyings)
    except ForcedSyntheticError as e:
        raise BacktestArgumentError(f"force_synthetic: {e}") from None
    if spec.mode in (InstrumentMode.LEVERAGED_ETF.value, InstrumentMode.BOTH.value):
        etf_tickers = {e["ticker"] for e in LEVERAGED_ETF_CATALOG.values()} | {
            e["inverse"] for e in LEVERAGED_ETF_CATALOG.values() if e["inverse"]}
        if forced:  # their real bars are neither fed nor seen by the fund planner
            available = [s for s in available if s not in forced]
        followed += [s for s in available if s in etf_tickers and s not in followed]
        xcfg = ExecutorConfig(**{"instrument_mode": spec.mode, **spec.executor})
        overrides = spec.synthetic_underlyings or {}
        bad = {k: v for k, v in overrides.items() if v.upper() not in available}
        if bad:
            raise BacktestArgumentError(
                f"synthetic_underlyings: {', '.join(f'{k}<-{v}' for k, v in bad.items())}: underlying not "
                f"in catalog {catalog} (available: {', '.join(available)})")
        _real, synth, missing = plan_synthetic_funds(
            symbols, available, xcfg, overrides=overrides, start_prices=spec.synthetic_start_prices,
            rate=spec.synthetic_rate)
        if forced:  # started at the real fund's price unless synthetic_start_prices names one
            synth = anchor_forced_funds(synth, forced, catalog, _ts(spec.start, "start"), _ts(spec.end, "end"),
                                        given=spec.synthetic_start_prices)
        if spec.synthesize_etfs:
            plan.synthetic = synth
            plan.unavailable = missing
        else:
            plan.unavailable = {**{f.ticker: "no bars: not in the catalog (synthesis disabled)" for f in synth},
                                **missing}
    return plan


def _session_filter(bars: list, calendar: str = "XNYS") -> list:
    """The bars whose minute lies inside a regular session of ``calendar`` (the executor's)."""
    if not bars:
        return bars
    ts = np.fromiter((b.ts_event for b in bars), dtype=np.int64, count=len(bars))
    mask = catalog_io.regular_session_mask(ts, calendar)
    return [b for b, keep in zip(bars, mask) if keep]


def load_bar_stream(spec: BacktestSpec, followed: list[str] | SymbolPlan, signal_symbols: list[str],
                    *, underlying_bars: dict[str, list] | None = None):
    """Merged bar stream and bars per followed symbol. With a SymbolPlan, synthetic funds are
    built from their underlying's bars (all loaded bars, extended hours mapped) and then filtered
    like every other series; funds whose model breaks move to ``plan.unavailable``. Unfiltered
    underlying bars are left in ``underlying_bars`` when given."""
    plan = followed if isinstance(followed, SymbolPlan) else None
    catalog_symbols = plan.catalog_symbols if plan else list(followed)
    start, end = _ts(spec.start, "start"), _ts(spec.end, "end")
    if start is not None and end is not None and end <= start:
        raise BacktestArgumentError(f"empty period: end {spec.end} is not after start {spec.start}")
    raw: dict[str, list] = {}
    calendar = ExecutorConfig(**{"instrument_mode": spec.mode, **spec.executor}).calendar

    def load(sym: str) -> list:
        if sym not in raw:
            raw[sym] = catalog_io.load_bars(spec.catalog, sym, start=start, end=end)
        return raw[sym]

    per_symbol = {}
    for sym in catalog_symbols:
        bars = load(sym)
        per_symbol[sym] = bars if spec.extended_hours else _session_filter(bars, calendar)
    empty = [s for s in signal_symbols if not per_symbol.get(s)]
    if empty:
        raise BacktestArgumentError(
            f"empty period: no {'' if spec.extended_hours else 'regular-session '}bars for "
            f"{', '.join(empty)} between {spec.start or 'the start'} and {spec.end or 'the end'} of the catalog")
    if plan is not None:
        built = []
        for fund in plan.synthetic:
            under = load(fund.underlying)
            if not under:
                plan.unavailable[fund.ticker] = f"no bars: underlying {fund.underlying} has no bars in the period"
                continue
            try:
                bars, fund = synthesize_fund_bars(fund, under)
            except LETFInputError as e:
                plan.unavailable[fund.ticker] = f"no bars: synthetic model broke ({e})"
                continue
            per_symbol[fund.ticker] = bars if spec.extended_hours else _session_filter(bars, calendar)
            built.append(fund)
        plan.synthetic = built
    if underlying_bars is not None:
        underlying_bars.update(raw)
    merged = [b for bars in per_symbol.values() for b in bars]
    merged.sort(key=lambda b: b.ts_init)
    return merged, per_symbol


def chunk_end(data: list, start: int, size: int) -> int:
    """End (exclusive) of the chunk starting at ``start``: about ``size`` items, extended so that
    it never splits one timestamp (a minute's bars and quotes of every instrument stay together,
    and the minute's signals, stamped 2 ns later, follow all of them)."""
    k = min(start + size, len(data))
    while 0 < k < len(data) and data[k].ts_init == data[k - 1].ts_init:
        k += 1
    return k


def progress_chunk(n: int, chunk: int = 50_000) -> int:
    """Bars per engine run: at most ``chunk`` (memory), and about 1/50 of the run (at least 2,000
    bars) so a progress bar moves; chunk boundaries never change what trades
    (tests/test_backtest_fidelity_regressions.py)."""
    return max(1, min(chunk, max(2_000, n // 50)))


def _run_streaming(engine: BacktestEngine, bars: list, signals: list, *, progress: Any = None,
                   chunk: int = 50_000) -> None:
    """Feed the engine in chunks (Nautilus' streaming mode): bounded memory and a progress update
    per chunk (``progress``: a task of strategies.progress, or None). Replayed signals go with the
    chunk holding the bar they were stamped after."""
    if isinstance(progress, bool):  # a caller's on/off: no task to report to here
        progress = None
    n = len(bars)
    chunk = progress_chunk(n, chunk)
    j = 0
    first = True
    i = 0
    while i < n:
        k = chunk_end(bars, i, chunk)
        part = bars[i:k]
        last_ts = part[-1].ts_init
        data = list(part)
        while j < len(signals) and (signals[j].ts_init <= last_ts + SIGNAL_DELAY_NS or k >= n):
            data.append(signals[j])
            j += 1
        if len(data) > len(part):
            engine.add_data([d for d in data[len(part):]], client_id=ClientId(SIGNAL_CLIENT))
        engine.add_data(part)
        # start the clock just before the first bar: time-bar aggregators anchor their buckets on it
        start = pd.Timestamp(part[0].ts_init - 60_000_000_000, tz="UTC") if first else None
        # the last chunk runs 1 ms past its last bar, so the decisions the last minute schedules
        # (exits 1 ns after it, signals 2 ns after it, an option's expiry settlement) still happen
        end = pd.Timestamp(last_ts + 1_000_000, tz="UTC") if k >= n else None
        engine.run(start=start, end=end, streaming=True)
        engine.clear_data()
        first = False
        if progress is not None:
            day = pd.Timestamp(last_ts, tz="UTC").tz_convert("America/New_York").date()
            progress.advance(k - i, note=f"up to {day}")
        i = k
    engine.end()
    if progress is not None:
        progress.finish()


@contextmanager
def bar_progress(spec: BacktestSpec, total: int, label: str, unit: str = "bars"):
    """The progress task of one backtest: a rich bar (``spec.progress`` True, on a terminal), a
    callback in another process's bars (``spec.progress`` callable) or nothing."""
    from strategies.progress import CallbackTask, ProgressBars

    p = spec.progress
    if callable(p):
        yield CallbackTask(p, label, total, unit=unit)
    elif p:
        with ProgressBars() as bars:
            yield bars.task(label, total=total, unit=unit)
    else:
        yield None


def build_engine(spec: BacktestSpec, log_level: str | None = None,
                 fill_model: ExecutorFillModel | None = None) -> BacktestEngine:
    xcfg = ExecutorConfig(**{"instrument_mode": spec.mode, **spec.executor})
    engine = BacktestEngine(BacktestEngineConfig(
        trader_id=TraderId("BACKTESTER-001"),
        logging=LoggingConfig(log_level=log_level or spec.log_level, bypass_logging=False),
        data_engine=data_engine_config(),
        risk_engine=risk_engine_config(xcfg.max_orders_per_minute),
    ))
    install_risk_controls(engine.kernel)
    if fill_model is None:
        fill_model = ExecutorFillModel(limit_fill_cap=spec.limit_fill_cap)
    fill_model.set_clock(engine.kernel.clock)  # bar-aware fills once bars are registered (set_bars)
    engine.add_venue(
        venue=Venue(VENUE),
        oms_type=OmsType.NETTING,
        account_type=AccountType.MARGIN,
        base_currency=USD,
        starting_balances=[Money(spec.starting_cash, USD)],
        default_leverage=Decimal(1),
        fill_model=fill_model,
        # a capped touch must not be topped up from the same bar's prices
        liquidity_consumption=fill_model.limit_fill_cap is not None,
        # fees by the fill's New York date (dated schedules), options by the broker's schedule
        fee_model=USEquityFeeModel(clock=engine.kernel.clock,
                                   option_broker=spec.option_sim.broker if spec.option_sim is not None else "alpaca"),
        bar_execution=True,
        # a protective stop sent after an entry filled inside a bar that then traded through the
        # stop is accepted and triggers (at its trigger, backtests.fill_model), as a stop placed
        # right after the fill would have; refused, it would leave at the close, beyond the budget
        reject_stop_orders=False,
    )
    return engine


def _with_recorded_signals(spec: BacktestSpec) -> tuple[BacktestSpec, str | None]:
    """Options are priced per contract before the run, so options/both runs need the signal set
    up front: when none is given, a stock-mode pass of the same actor records it first (the
    signals do not depend on the mode) and the run replays it."""
    import tempfile
    from dataclasses import replace as dc_replace

    tmp = None
    target = spec.record_signals
    if target is None:
        tmp = tempfile.mkdtemp(prefix="signals-")
        target = Path(tmp) / "signals"
    run_backtest(dc_replace(spec, mode="stock", record_signals=Path(target), out_dir=None, db_url=None,
                            control_scope=None, executor={},
                            progress_label=f"{spec.progress_label or 'backtest ' + spec.mode} (signals)"))
    Path(target).mkdir(parents=True, exist_ok=True)
    return dc_replace(spec, signals_catalog=Path(target), record_signals=None), tmp


def run_backtest(spec: BacktestSpec, *, on_engine: Callable[[BacktestEngine], None] | None = None) -> BacktestResult:
    plan = plan_symbols(spec)
    xcfg = ExecutorConfig(**{"instrument_mode": spec.mode, **spec.executor})  # validate early, clear errors
    options_mode = spec.mode in (InstrumentMode.OPTIONS.value, InstrumentMode.BOTH.value)
    recorded_from = None
    if options_mode and spec.signals_catalog is None:
        spec, recorded_from = _with_recorded_signals(spec)
    signal_symbols = plan.signal_symbols
    raw_bars: dict[str, list] = {}
    bars, per_symbol = load_bar_stream(spec, plan, signal_symbols, underlying_bars=raw_bars)
    followed = plan.followed

    fill_model = ExecutorFillModel(limit_fill_cap=spec.limit_fill_cap)
    engine = build_engine(spec, fill_model=fill_model)
    for sym, sym_bars in per_symbol.items():
        # the fill model prices resting limits and stops on the bar being matched (its open)
        fill_model.set_bars_from(catalog_io.instrument_id_for(sym), sym_bars)
    for sym in plan.catalog_symbols:
        engine.add_instrument(catalog_io.load_instrument(spec.catalog, sym))
    for fund in plan.synthetic:
        engine.add_instrument(catalog_io.make_instrument(fund.ticker))

    replay = spec.signals_catalog is not None
    signals = _load_signals(Path(spec.signals_catalog), bars) if replay else []
    if recorded_from is not None:
        import shutil

        shutil.rmtree(recorded_from, ignore_errors=True)

    options_info = None
    n_bars = len(bars)
    if options_mode:
        from backtests.option_quotes import OptionSimConfig, build_option_universe
        from strategies.trade_executor import MarketCalendar

        ocfg = spec.option_sim or OptionSimConfig()
        label = f"option quotes ({spec.progress_label or spec.mode})"
        with bar_progress(spec, 0, label, unit="contracts") as task:
            universe = build_option_universe(signals, {s: per_symbol.get(s, []) for s in signal_symbols}, VENUE,
                                             ocfg, MarketCalendar(xcfg.calendar), progress=task)
        for inst in universe.instruments:
            engine.add_instrument(inst)
        if universe.quotes:
            # a minute's option quote goes before that minute's bar: fills at bar close see it
            bars = sorted(universe.quotes + bars, key=lambda d: (d.ts_init, 0 if hasattr(d, "bid_price") else 1))
        options_info = {"simulated": True, "contracts": len(universe.instruments), "quotes": len(universe.quotes),
                        "broker": ocfg.broker, "volatility": ocfg.fixed_vol if ocfg.fixed_vol is not None else
                        f"realised {ocfg.vol_window} x 1m, x{ocfg.vol_scale}, [{ocfg.vol_floor}, {ocfg.vol_cap}]",
                        "pricing": "Black-Scholes on the underlying's 1-minute closes, spread 1% -> 6% near the close"}

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
        from strategies.order_recorder import OrderRecorder

        recorder = OrderRecorder(sink=journal, buffered=True)  # the order book: executor_orders / _fills
        engine.add_actor(recorder)
    strategy = ExecutorStrategy(ExecutorStrategyConfig(
        executor={"instrument_mode": spec.mode, **spec.executor},
        symbols=tuple(followed), venue=VENUE,
        signal_client_id=SIGNAL_CLIENT if replay and signals else None,  # no signals: no SIGNALS client exists
        control_poll_seconds=spec.control_poll_seconds, alert_webhook_url=spec.alert_webhook_url,
        option_broker=(spec.option_sim.broker if spec.option_sim is not None else "alpaca"),
        option_cutoff_exit=(spec.option_sim.cutoff_exit if spec.option_sim is not None else True),
        option_min_minutes_before_cutoff=(spec.option_sim.min_minutes_before_cutoff
                                          if spec.option_sim is not None else 15.0),
    ), sink=sink, control=control)
    engine.add_strategy(strategy)
    if on_engine is not None:
        on_engine(engine)

    t0 = time.perf_counter()
    try:
        label = spec.progress_label or f"backtest {spec.mode} {','.join(signal_symbols)}"
        with bar_progress(spec, len(bars), label) as task:
            _run_streaming(engine, bars, signals, progress=task)
    except BaseException:
        if journal is not None:
            recorder.flush()  # the orders seen so far
            journal.close()  # what was recorded stays recorded
        raise
    elapsed = time.perf_counter() - t0

    ending_equity = strategy.equity()
    if actor is not None and spec.record_signals is not None:
        write_signals(Path(spec.record_signals), actor.published)
    decay = _letf_decay(spec, plan, log.trades, per_symbol, raw_bars)
    first_ts = pd.Timestamp(bars[0].ts_event, tz="UTC").isoformat()
    last_ts = pd.Timestamp(bars[-1].ts_event, tz="UTC").isoformat()
    summary = build_summary(
        mode=spec.mode, start=spec.start or first_ts, end=spec.end or last_ts, symbols=signal_symbols,
        starting_equity=spec.starting_cash, ending_equity=ending_equity, trades=log.trades,
        decisions=log.decisions, curve=log.equity, signals_received=strategy.signals_received,
        bars=n_bars, sessions=_sessions(first_ts, last_ts, xcfg.calendar),
        extra={"traded_symbols": followed, "first_bar": first_ts, "last_bar": last_ts,
               "open_positions_at_end": len(strategy.positions_by_signal),
               "signals_source": str(spec.signals_catalog) if replay else "ema_cloud_actor",
               "kill_switch_events": [e[2] for e in log.events if e[1] == "kill_switch"],
               "trading_state": current_trading_state(engine.kernel),
               "journal": {"db": _redact(spec.db_url), "run_id": journal.run_id} if journal else None,
               "synthetic_instruments": {f.ticker: f.describe() for f in plan.synthetic},
               "etf_bars_unavailable": dict(sorted(plan.unavailable.items())),
               "letf_decay": {k: decay[k] for k in ("total", "trades", "estimated")},
               "options": options_info, "quotes": len(bars) - n_bars},
    )
    # every fill with its own minute's bar / option quote (OUT/fills.csv), and the run facts
    # `trade-executor check` needs (backtests.fills, backtests.check)
    from backtests.fills import collect_fills, run_facts

    fills = collect_fills(engine, per_symbol, universe.quotes if options_mode else None)
    if actor is not None or recorded_from is not None:  # the actor's timeframes (here or in the recording pass)
        timeframes = (actor.config if actor is not None else SignalActorConfig()).timeframes
    else:  # a replayed signal set: the timeframes it has
        timeframes = {s.data.timeframe for s in signals}
    summary.update(run_facts(calendar=xcfg.calendar, signal_timeframes=timeframes, starting_cash=spec.starting_cash,
                             events=log.events, fills=fills))
    if journal is not None:
        try:
            recorder.flush()  # the order book's last states (the engine's shutdown included)
            journal.flush()
            journal.writer.finish_backtest_run(summary)
        finally:
            journal.close()  # flushes the batched decisions / equity points
    if control is not None:
        control.close()
    engine.dispose()
    if spec.out_dir is not None:
        write_outputs(Path(spec.out_dir), summary, log, fills=fills)
    return BacktestResult(summary=summary, log=log, elapsed_s=elapsed, bars=n_bars,
                          out_dir=Path(spec.out_dir) if spec.out_dir else None,
                          letf_decay_trades=decay["per_trade"])


def _sessions(first: str, last: str, calendar: str) -> list[tuple[Any, Any]]:
    """The regular sessions (open, close) dated from the first to the last bar (report exposure)."""
    table = catalog_io.sessions_table(first, last, calendar)
    return [(o.to_pydatetime(), c.to_pydatetime()) for o, c in zip(table["open"], table["close"])]


def _letf_decay(spec: BacktestSpec, plan: SymbolPlan, trades: list[dict[str, Any]],
                per_symbol: dict[str, list], raw_bars: dict[str, list]) -> dict[str, Any]:
    """Decay cost of the closed leveraged-ETF trades (backtests.letf_bars.decay_costs): synthetic
    funds against the underlying they were built from, real funds against their index/sector
    proxy when the catalog has it."""
    etf_trades = [t for t in trades if t.get("instrument_type") == "leveraged_etf"]
    underlying_of = {f.ticker: f.underlying for f in plan.synthetic}
    if not etf_trades:
        return decay_costs([], {}, underlying_of)
    available = catalog_io.list_symbols(spec.catalog)
    series = dict(per_symbol)
    for t in etf_trades:
        fund = t["ticker"]
        if fund not in underlying_of:
            under = underlying_for(fund, available, spec.synthetic_underlyings)
            if under is None:
                continue
            underlying_of[fund] = under
        under = underlying_of[fund]
        if under not in series:
            bars = raw_bars.get(under)
            if bars is None:
                bars = catalog_io.load_bars(spec.catalog, under, start=_ts(spec.start, "start"),
                                            end=_ts(spec.end, "end"))
            series[under] = bars
    return decay_costs(etf_trades, series, underlying_of)


def _redact(url: str | None) -> str | None:
    """A database URL without its password (URLs may carry credentials)."""
    if not url:
        return url
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def write_outputs(out: Path, summary: dict[str, Any], log: ExecutionLog,
                  fills: list[dict[str, Any]] | None = None) -> None:
    from backtests.fills import write_events_csv, write_fills_csv

    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    write_trades_csv(out / "trades.csv", log.trades)
    write_decisions_csv(out / "decisions.csv", log.decisions)
    write_events_csv(out / "events.csv", log.events)
    if fills is not None:
        write_fills_csv(out / "fills.csv", fills)
    write_html(out / "report.html", summary, log.equity, log.trades,
               title=f"Backtest {summary['mode']} {', '.join(summary['symbols'])}")


def write_signals(catalog_dir: Path, signals: list[TradeSignalData]) -> None:
    from nautilus_trader.persistence.catalog import ParquetDataCatalog

    catalog_dir.mkdir(parents=True, exist_ok=True)
    # The actor stamps signals 2 ns after the bar that produced them (ts_init), so on replay the
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
        lo, hi = bars[0].ts_init, bars[-1].ts_init + SIGNAL_DELAY_NS
        raw = [r for r in raw if lo <= r.ts_init <= hi]
    raw.sort(key=lambda r: signal_order(r.data))
    return raw
