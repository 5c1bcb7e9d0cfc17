"""`trade-executor` command line: data import, sample data, backtests, invariant checks of a
backtest's outputs, mode comparison, leveraged-ETF tracking error, journal migrations, the
kill-switch latch, benchmark, demo."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = PROJECT_ROOT / "data"
DEFAULT_CATALOG = DATA_DIR / "catalog"
DEMO_DIR = DATA_DIR / "demo"  # the demo's own sample data and catalog: never the user's data/catalog
MODE_CHOICES = ("options", "leveraged_etf", "both", "stock")  # InstrumentMode (tests/test_cli_explains.py)
MODE_HELP = ("instrument mode: options (scalps as calls/puts), leveraged_etf, both (by timeframe and "
             "conviction), stock")

from strategies.cli_checks import (  # the error model and the up-front checks
    UserError,
    _check_cash,
    _check_catalog,
    _check_db_url,
    _check_out_dir,
    _check_out_file,
    _executor_overrides,
    _one_line,
    _parse_overrides,
    _parse_pairs,
    _redact_url,
    _user_error,
)


def cmd_data_import(args) -> int:
    from backtests import catalog_io
    from strategies.progress import ProgressBars

    with ProgressBars(quiet=args.quiet) as bars:
        report = catalog_io.import_files(Path(args.catalog), [Path(p) for p in args.files], tz=args.tz,
                                         label=args.label, symbols=[args.symbol] if args.symbol else None,
                                         accept_outliers=args.accept_outliers,
                                         progress=bars if bars.enabled else None)
    print(report)
    return 0


def cmd_data_sample(args) -> int:
    from backtests.sample_data import generate_sample

    paths = generate_sample(Path(args.out), sessions=args.sessions, seed=args.seed)
    for p in paths:
        print(p)
    return 0


def _check_backtest_args(args) -> dict:
    """Everything a backtest can be refused for without reading data, refused before it is read:
    the settings (ExecutorConfig schema), --cash, the output folders, the catalogs, the database."""
    executor = _executor_overrides(args.set, [args.mode])
    _check_cash(args.cash)
    _check_catalog(args.catalog)
    if getattr(args, "signals_from", None):
        _check_catalog(args.signals_from, "--signals-from")
    _check_out_dir(args.out, "--out")
    if getattr(args, "record_signals", None):
        _check_out_dir(args.record_signals, "--record-signals")
    _check_db_url(getattr(args, "db", None))
    return executor


def cmd_backtest(args) -> int:
    executor = _check_backtest_args(args)
    from backtests.runner import BacktestSpec, run_backtest

    spec = BacktestSpec(
        catalog=Path(args.catalog), symbols=[s for s in args.symbols.split(",") if s.strip()],
        start=args.start, end=args.end, mode=args.mode, out_dir=Path(args.out),
        starting_cash=args.cash, executor=executor,
        signals_catalog=Path(args.signals_from) if args.signals_from else None,
        record_signals=Path(args.record_signals) if args.record_signals else None,
        extended_hours=args.extended_hours, price_source=args.price_source, progress=not args.quiet,
        db_url=args.db, control_scope=getattr(args, "control_scope", None),
        synthesize_etfs=not getattr(args, "no_synthetic_etfs", False),
        synthetic_start_prices=_parse_pairs(getattr(args, "synthetic_start", []), "--synthetic-start", float) or None,
        synthetic_underlyings=_parse_pairs(getattr(args, "synthetic_underlying", []), "--synthetic-underlying",
                                           lambda v: v.upper()) or None,
    )
    result = run_backtest(spec)
    s = result.summary
    print(f"backtest {s['mode']} {','.join(s['symbols'])}: {result.bars:,} bars in {result.elapsed_s:.1f}s "
          f"({result.bars / max(result.elapsed_s, 1e-9):,.0f} bars/s)")
    print(f"  equity {s['starting_equity']:,.2f} -> {s['ending_equity']:,.2f} ({s['total_return_pct']:+.2f}%), "
          f"max drawdown {s['max_drawdown_pct']:.2f}%, sharpe {s['sharpe']}")
    print(f"  trades {s['trades']}, win rate {s['win_rate']}, fees {s['fees']:.2f}, exits {s['exits_by_reason']}")
    print(f"  signals {s['signals_received']} received, {s['signals_approved']} approved, "
          f"rejected {s['rejected_by_reason']}")
    print(f"  wrote {args.out}/summary.json, trades.csv, decisions.csv, fills.csv, events.csv, report.html"
          f" (check them: trade-executor check {args.out})")
    if s.get("synthetic_instruments"):
        print("  synthetic: " + ", ".join(f"{t} ({d['leverage']:+g}x from {d['underlying']}, start {d['start_price']:.2f})"
                                         for t, d in s["synthetic_instruments"].items()))
    if s.get("etf_bars_unavailable"):
        print("  no bars: " + "; ".join(f"{t} ({why.removeprefix('no bars: ')})" for t, why in s["etf_bars_unavailable"].items()))
    if s.get("journal"):
        print(f"  journal: {s['journal']['db']} run_id {s['journal']['run_id']}")
    return 0


def cmd_check(args) -> int:
    """Whole-run invariants of a backtest output folder (backtests.check): one line per
    invariant; exit 0 when none fails, 1 when one does (usage errors: 2, from main)."""
    from backtests.check import check_run, exit_code, format_results

    results = check_run(Path(args.out), db_url=args.db)
    if args.json:
        print(json.dumps([r.to_dict() for r in results], indent=2))
    else:
        print(format_results(results))
    return exit_code(results)


def cmd_compare(args) -> int:
    modes = [m for m in args.modes.split(",") if m.strip()]
    executor = _executor_overrides(args.set, modes)
    _check_cash(args.cash)
    _check_catalog(args.catalog)
    if args.signals_from:
        _check_catalog(args.signals_from, "--signals-from")
    _check_out_dir(args.out, "--out")
    if args.workers < 1:
        raise UserError(f"--workers {args.workers}: must be >= 1")
    from backtests.compare import COLUMNS, CompareSpec, run_compare

    spec = CompareSpec(
        catalog=Path(args.catalog), symbols=[s for s in args.symbols.split(",") if s.strip()],
        out_dir=Path(args.out), modes=[m for m in args.modes.split(",") if m.strip()], start=args.start,
        end=args.end, starting_cash=args.cash, executor=executor,
        signals_from=Path(args.signals_from) if args.signals_from else None, workers=args.workers,
        extended_hours=args.extended_hours, price_source=args.price_source,
        synthesize_etfs=not args.no_synthetic_etfs, progress=not args.quiet,
    )
    report = run_compare(spec)
    rows = report["rows"]
    shown = [c for c in COLUMNS if c not in ("simulated", "synthetic_instruments")]
    width = max(len(c) for c in shown)
    print(f"{'':<{width}}  " + "  ".join(f"{r['mode']:>14}" for r in rows))
    for c in shown[1:]:
        print(f"{c:<{width}}  " + "  ".join(f"{'' if r[c] is None else r[c]!s:>14}" for r in rows))
    for r in rows:
        if r["simulated"] != "yes":
            print(f"  {r['mode']}: {r['simulated']}")
        if r["synthetic_instruments"]:
            print(f"  {r['mode']}: synthetic bars for {r['synthetic_instruments']}")
    sig = report["signals"]
    print(f"  signals: {sig['source']} ({sig['catalog']}), identical in every mode: {sig['identical_signal_set']}")
    print(f"  wrote {args.out}/compare.csv, compare.json, compare.html ({report['elapsed_s']:.1f}s)")
    return 0


def cmd_letf_tracking(args) -> int:
    """Synthetic (daily-reset) fund built from the underlying's bars vs the real fund's bars."""
    import math

    _check_out_file(args.out, "--out")
    from backtests.catalog_io import read_ohlcv
    from backtests.letf_synth import frame_from_ohlcv, tracking_error_report

    _, u = read_ohlcv(Path(args.underlying), tz=args.tz, label=args.label)
    _, e = read_ohlcv(Path(args.etf), tz=args.tz, label=args.label)
    report = tracking_error_report(frame_from_ohlcv(u), frame_from_ohlcv(e), args.leverage,
                                   expense_ratio=args.expense_ratio, financing_spread=args.financing_spread,
                                   rate=args.rate)
    report = {"underlying_file": str(args.underlying), "etf_file": str(args.etf), **report}

    def finite(v):  # NaN (e.g. no intraday minutes in common) is not JSON: null
        if isinstance(v, float) and not math.isfinite(v):
            return None
        if isinstance(v, dict):
            return {k: finite(x) for k, x in v.items()}
        if isinstance(v, list):
            return [finite(x) for x in v]
        return v

    text = json.dumps(finite(report), indent=2)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text + "\n")
    if args.json:
        print(text)
        return 0
    r = report
    print(f"letf-tracking {Path(args.etf).name} vs {r['leverage']:+g}x {Path(args.underlying).name} "
          f"(daily-reset model, daily cost {r['daily_cost'] * 1e4:.3f} bp)")
    print(f"  start {r['start_close_utc']}: fund {r['start_price']:.4f}, underlying {r['base_price']:.4f}; "
          f"last close {r['last_close_utc']}")
    print(f"  sessions {r['sessions']}: daily tracking error mean |d| {r['daily_te_mean_abs_bp']:.2f} bp, "
          f"sd {r['daily_te_std_bp']:.2f} bp, bias {r['daily_te_mean_bp']:+.2f} bp, max {r['daily_te_max_abs_bp']:.2f} bp")
    print(f"  real beta {r['real_beta']:.4f}; total return real {r['real_total_return']:+.4%}, "
          f"synthetic {r['synthetic_total_return']:+.4%}")
    print(f"  intraday: {r['intraday_minutes']} minutes, mean |dev| {r['intraday_mean_abs_dev_bp']:.2f} bp "
          f"(max {r['intraday_max_abs_dev_bp']:.2f}); re-anchored each session "
          f"{r['intraday_reanchored_mean_abs_dev_bp']:.2f} bp")
    if args.out:
        print(f"  wrote {args.out}")
    return 0


def cmd_db(args) -> int:
    """Journal migrations; says what changed: "upgraded 136 -> 138", or "already at 138 (head)"
    when there was nothing to do (a revision at or below the current one)."""
    from strategies.journal import database_url, downgrade, upgrade
    from strategies.journal.db import current_revision

    from alembic.util.exc import CommandError

    url = database_url(args.db)
    _check_db_url(url)
    before = current_revision(url)
    try:
        if args.db_command == "upgrade":
            upgrade(url, args.revision)
        else:
            downgrade(url, args.revision)
    except CommandError as e:
        raise ValueError(f"db {args.db_command} {args.revision}: {e}") from None
    after = current_revision(url)
    from backtests.runner import _redact

    head = _head_revision()
    shown = (lambda r: "base (no tables)" if r is None else f"{r} (head)" if r == head else r)
    if before == after:
        what = f"already at {shown(after)}; nothing to {args.db_command}"
        if args.db_command == "upgrade" and args.revision not in ("head", after):
            what += f" (to go back to {args.revision}: trade-executor db downgrade {args.revision})"
        print(f"database {_redact(url)}: {what}")
    else:
        verb = "upgraded" if args.db_command == "upgrade" else "downgraded"
        print(f"database {_redact(url)}: {verb} {shown(before)} -> {shown(after)}")
    return 0


def _head_revision() -> str | None:
    from alembic.script import ScriptDirectory

    from strategies.journal.db import alembic_config

    return ScriptDirectory.from_config(alembic_config(None)).get_current_head()


def _require_journal(url: str) -> None:
    """Refuse a database that is not there (a SQLite file that does not exist) or holds no
    journal tables: a typo in --db must not create a new database (--create does)."""
    from sqlalchemy import inspect
    from sqlalchemy.engine import make_url

    shown = _redact_url(url)
    u = make_url(url)
    if u.get_backend_name() == "sqlite":
        db = u.database or ""
        if db and db != ":memory:" and not db.startswith("file:") and not Path(db).expanduser().is_file():
            raise UserError(f"--db {shown}: no such database file; check --db, or pass --create to create it")
    from strategies.journal import make_engine

    engine = make_engine(url)
    try:
        if not inspect(engine).has_table("executor_control"):
            raise UserError(f"--db {shown}: has no journal tables (not an executor journal); check --db, "
                            "or pass --create to create them")
    finally:
        engine.dispose()


def cmd_kill_switch(args) -> int:
    """Operator control of the kill-switch latch in executor_control (read by running executors
    at their next poll and by every executor at start-up)."""
    from backtests.runner import _redact
    from strategies.journal import ControlStore, database_url, upgrade

    url = database_url(args.db)
    _check_db_url(url)
    if not args.create:
        _require_journal(url)
    upgrade(url)
    store = ControlStore(url, scope=args.scope)
    who = f"cli:{args.by}" if args.by else "cli"
    try:
        if not store.scope_known():
            if not args.create:
                import difflib

                known = sorted(sc or "live" for sc in store.scopes())
                close = difflib.get_close_matches(args.scope or "live", known, n=3, cutoff=0.6)
                hint = f"did you mean {' or '.join(close)}? " if close else \
                    (f"known scopes: {', '.join(known)}; " if known else "no scope has been used yet; ")
                raise UserError(f"kill-switch --scope {args.scope or '(live)'}: unknown scope in "
                                f"{_redact(url)} (no executor_control row); {hint}"
                                "check --scope, or pass --create to start it")
            if args.ks_command != "trip":  # the scope exists from now on, with the latch off
                store.deactivate_kill_switch(by=who)
        if args.ks_command == "trip":
            reason = args.reason.strip()
            if not reason.startswith("manual"):
                reason = f"manual: {reason}"
            latch = store.activate_kill_switch(reason, by=who)
        elif args.ks_command == "resume":
            before = store.kill_switch()
            if not before.active:
                print(f"kill switch [{args.scope or 'live'}] is not active; nothing to resume")
                return 0
            if not args.yes:
                raise ValueError(f"resume: the kill switch tripped at {before.activated_at} for "
                                 f"'{before.reason}'. Re-run with --yes to resume trading deliberately.")
            latch = store.deactivate_kill_switch(by=who)
        else:
            latch = store.kill_switch()
        rec = store.get_record(store.key_for("kill_switch"))
    finally:
        store.close()
    state = "ACTIVE (trading halted)" if latch.active else "inactive (trading allowed)"
    print(f"kill switch [{args.scope or 'live'}] in {_redact(url)}: {state}")
    if latch.reason:
        print(f"  reason: {latch.reason}")
    if latch.activated_at:
        print(f"  tripped at: {latch.activated_at.isoformat()}")
    if rec is not None:
        print(f"  last change: {rec.updated_at.isoformat()} by {rec.updated_by or '?'}")
    return 0


def cmd_divergence(args) -> int:
    """Backtest vs live: replay a recorded session and compare it trade by trade."""
    from backtests.divergence import format_report, run_divergence
    from strategies.journal import database_url

    session = Path(args.session)
    if not (session / "session.json").is_file():
        raise UserError(f"session {args.session}: no session.json there (record one with `trade-executor live "
                        "--record DIR`)")
    report = run_divergence(session, database_url(args.db), out_dir=args.out)
    print(format_report(report))
    print(f"wrote {report.backtest_out / 'divergence.csv'} (the replay's outputs are beside it)")
    return 0


def cmd_live(args) -> int:
    """Paper trading: TradingNode with the signal actor, the executor and the broker's clients."""
    if args.broker != "alpaca":
        raise ValueError(f"broker: {args.broker!r} is not wired for 'live' yet; use --broker alpaca")
    from adapters.alpaca.common import AlpacaAccountError, AlpacaLiveTradingError
    from strategies.live import LiveSpec, build_live_node

    spec = LiveSpec(
        symbols=[s for s in args.symbols.split(",") if s.strip()], mode=args.mode,
        executor=_executor_overrides(args.set, [args.mode]), db_url=args.db, paper=not args.live_account,
        allow_live=args.allow_live, trading_url=args.alpaca_url, trading_stream_url=args.alpaca_stream_url,
        data_url=args.alpaca_data_url, data_stream_url=args.alpaca_data_stream_url, feed=args.feed,
        log_level=args.log_level, alert_webhook_url=args.alert_webhook, calendar=args.calendar,
        warmup=not args.no_warmup, record_dir=args.record,
        option_chains={"auto": None, "always": True, "never": False}[args.option_chains],
        option_feed=args.option_feed,
    )
    try:
        live = build_live_node(spec)
    except AlpacaLiveTradingError as e:
        raise ValueError(f"{e} On the command line: --live-account --allow-live.") from None
    except AlpacaAccountError as e:  # unreachable, keys refused, account blocked / not ACTIVE
        raise ValueError(f"live: {e}") from None
    node = live.node
    print(f"live: {','.join(spec.symbols)} mode {spec.mode} via alpaca "
          f"({'PAPER' if spec.paper else 'LIVE - REAL MONEY'}); journal run_id 'live'; Ctrl-C stops")
    loop = node.get_event_loop()
    if args.duration:
        loop.call_later(args.duration, lambda: loop.create_task(node.stop_async()))
    failed: list[str] = []

    start_limit = spec.timeout_connection * 2 + 5  # connect, then reconciliation

    def started_or_stop() -> None:  # connect or reconciliation failed: do not idle "RUNNING"
        if not live.strategy.is_running and not failed:
            failed.append(f"live: the node did not start within {start_limit:g} s (broker connection or "
                          "reconciliation failed; see the log above)")
            loop.create_task(node.stop_async())

    loop.call_later(start_limit, started_or_stop)
    try:
        node.run()
    except KeyboardInterrupt:
        pass
    finally:
        live.stop()
    if failed:
        raise ValueError(failed[0])
    return 0


def cmd_mode(args) -> int:
    """The instrument mode the live executor uses (executor_control; the dashboard writes the
    same key). Read at start-up: restart the executor to apply a change."""
    from backtests.runner import _redact
    from strategies.journal import ControlStore, database_url, upgrade

    url = database_url(args.db)
    upgrade(url)
    store = ControlStore(url, scope=args.scope)
    try:
        if args.mode_command == "set":
            mode = store.set_instrument_mode(args.mode, by=f"cli:{args.by}" if args.by else "cli")
            print(f"instrument mode [{args.scope or 'live'}] in {_redact(url)}: {mode} "
                  "(applies when the executor starts)")
        else:
            print(f"instrument mode [{args.scope or 'live'}] in {_redact(url)}: "
                  f"{store.instrument_mode() or 'not set (the --mode given at start)'}")
    finally:
        store.close()
    return 0


def cmd_dashboard(args) -> int:
    """The operator dashboard (Streamlit, app/main.py) on the journal; strategies/dashboard/launch.py."""
    from strategies.dashboard.launch import run
    from strategies.journal import database_url

    return run(database_url(args.db), host=args.host, port=args.port, allow_remote=args.allow_remote)


def cmd_bench(args) -> int:
    from backtests.bench import main as bench_main

    return bench_main(args)


def cmd_demo(args) -> int:
    """Generate the sample data set, import it, backtest it: the README's first command. The demo
    keeps its data in its own folder (data/demo/): the user's data/catalog is never touched."""
    import shutil

    from backtests import catalog_io
    from backtests.sample_data import generate_sample
    from strategies.progress import ProgressBars

    demo_dir = Path(args.dir) if args.dir else DEMO_DIR
    sample_dir = demo_dir / "sample"
    catalog = demo_dir / "catalog"
    out = Path(args.out) if args.out else PROJECT_ROOT / "backtests" / "out" / "demo"
    print(f"1/3 generating sample data in {sample_dir}")
    paths = generate_sample(sample_dir)
    print(f"2/3 importing {len(paths)} files into {catalog} (the demo's own catalog)")
    if catalog.exists():
        shutil.rmtree(catalog)  # the demo's catalog only, rebuilt every time
    with ProgressBars(quiet=args.quiet) as bars:
        report = catalog_io.import_files(catalog, paths, tz="UTC", label="open", progress=bars if bars.enabled else None)
    print(report)
    symbols = catalog_io.list_symbols(catalog)
    journal = demo_dir / "journal.db"  # the demo's own journal, for `trade-executor dashboard`
    journal.unlink(missing_ok=True)
    db = f"sqlite:///{journal}"
    print(f"3/3 backtesting {','.join(symbols)} in mode '{args.mode}' -> {out} (journal {journal})")
    ns = argparse.Namespace(catalog=str(catalog), symbols=",".join(symbols), start=None, end=None,
                            mode=args.mode, out=str(out), cash=100_000.0, set=[], signals_from=None,
                            record_signals=None, extended_hours=False, price_source="close", quiet=args.quiet,
                            db=db, control_scope=None, no_synthetic_etfs=False, synthetic_start=[],
                            synthetic_underlying=[])
    rc = cmd_backtest(ns)
    if rc == 0:
        print(f"see it in the dashboard: .venv/bin/trade-executor dashboard --db {db}")
    return rc


def cmd_config(args) -> int:
    """Every ExecutorConfig setting with its default, range and meaning (strategies.config_doc)."""
    from strategies import config_doc

    print(config_doc.format_markdown() if args.markdown else config_doc.format_text())
    return 0


class _DeprecatedAlias(argparse.Action):
    """A hidden old spelling of an option (``--url`` for ``--db``): works, and says so once."""

    def __call__(self, parser, namespace, values, option_string=None):  # noqa: ANN001
        print(f"trade-executor: warning: {option_string} is deprecated; use --db", file=sys.stderr)
        setattr(namespace, self.dest, values)


def _db_option(p: argparse.ArgumentParser, help_text: str) -> None:
    p.add_argument("--db", default=None, metavar="URL", help=help_text)
    p.add_argument("--url", dest="db", action=_DeprecatedAlias, help=argparse.SUPPRESS)


def _synthetic_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-synthetic-etfs", action="store_true",
                   help="leveraged_etf/both modes: trade only funds with real catalog bars (no synthetic bars)")


class _Parser(argparse.ArgumentParser):
    """Usage errors in one line on stderr (exit 2), like every other user error."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {_one_line(message)} (see {self.prog} --help)\n")


def _webhook_url(value: str) -> str:
    from strategies.risk_control import validate_webhook_url

    try:
        return validate_webhook_url(value)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def build_parser() -> argparse.ArgumentParser:
    from strategies.config_doc import set_help

    set_help = set_help()
    p = _Parser(prog="trade-executor", description=__doc__)
    p.add_argument("--debug", action="store_true",
                   help="show the traceback of an internal error (may also be given after the command)")
    sub = p.add_subparsers(dest="command", required=True)

    data = sub.add_parser("data", help="bar data: import files into a catalog, generate sample data")
    dsub = data.add_subparsers(dest="data_command", required=True)
    imp = dsub.add_parser("import", help="import OHLCV CSV/parquet files as 1-minute bars into a ParquetDataCatalog")
    imp.add_argument("files", nargs="+", help="1-minute OHLCV files (.csv, .csv.gz, .parquet), one symbol each")
    imp.add_argument("--catalog", default=str(DEFAULT_CATALOG), help="catalog folder to write (default: data/catalog)")
    imp.add_argument("--tz", default=None, help="timezone of naive timestamps, e.g. UTC or America/New_York")
    imp.add_argument("--label", choices=("open", "close"), default="open",
                     help="whether a row's time is its bar's open (default) or close")
    imp.add_argument("--symbol", default=None, help="symbol for a single file (default: Symbol column or file name)")
    imp.add_argument("--accept-outliers", action="store_true",
                     help="import outlier bars / split-like jumps (listed in the report) instead of refusing")
    imp.add_argument("--quiet", action="store_true", help="no progress bar (none is drawn when stderr is not a terminal)")
    imp.set_defaults(func=cmd_data_import)
    smp = dsub.add_parser("sample", help="write the project's deterministic sample data set (CSV)")
    smp.add_argument("--out", default=str(DATA_DIR / "sample"), help="folder for the CSV files (default: data/sample)")
    smp.add_argument("--sessions", type=int, default=15, help="NYSE sessions from 2025-06-16 (default 15)")
    smp.add_argument("--seed", type=int, default=135, help="random seed (same seed, same files; default 135)")
    smp.set_defaults(func=cmd_data_sample)

    bt = sub.add_parser("backtest", help="run the executor over catalog bars")
    bt.add_argument("--catalog", default=str(DEFAULT_CATALOG), help="catalog to read bars from (default: data/catalog)")
    bt.add_argument("--symbols", required=True, help="comma-separated signal tickers, e.g. QQQ,SPY")
    bt.add_argument("--start", default=None, help="UTC date/time (inclusive); default: first bar")
    bt.add_argument("--end", default=None, help="UTC date/time (exclusive); default: last bar")
    bt.add_argument("--mode", default="stock", choices=MODE_CHOICES, help=MODE_HELP + " (default: stock)")
    bt.add_argument("--out", required=True, help="output folder")
    bt.add_argument("--cash", type=float, default=100_000.0, help="starting equity (USD)")
    bt.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help=set_help)
    bt.add_argument("--signals-from", default=None, help="replay signals from this catalog instead of generating")
    bt.add_argument("--record-signals", default=None, help="write the generated signals to this catalog")
    bt.add_argument("--extended-hours", action="store_true", help="feed pre/after-market bars too")
    bt.add_argument("--price-source", choices=("close", "hl2"), default="close",
                    help="price the signal engine's clouds use: the bar's close or (high+low)/2 (default: close)")
    bt.add_argument("--quiet", action="store_true", help="no progress bar (none is drawn when stderr is not a terminal)")
    bt.add_argument("--db", default=None, help="also journal the run to this database URL (e.g. sqlite:///data/executor.db)")
    bt.add_argument("--control-scope", default=None,
                    help="keep the kill-switch latch under this executor_control scope (needs --db); "
                         "runs sharing a scope share the latch, like restarts of one executor")
    _synthetic_args(bt)
    bt.add_argument("--synthetic-start", action="append", default=[], metavar="FUND=PRICE",
                    help="start price of a synthetic fund (default 50.00 at the underlying's first bar open)")
    bt.add_argument("--synthetic-underlying", action="append", default=[], metavar="FUND=SYMBOL",
                    help="catalog symbol a synthetic fund is built from (default: its index/sector ETF)")
    bt.set_defaults(func=cmd_backtest)

    ck = sub.add_parser("check", help="check a backtest output folder against whole-run invariants "
                                      "(fills inside their bar and session, exits, stops, journal)")
    ck.add_argument("out", help="backtest output folder (summary.json, trades.csv, decisions.csv, fills.csv, events.csv)")
    ck.add_argument("--db", default=None, help="also compare the run's journal in this database (read-only), "
                                               "e.g. sqlite:///data/executor.db")
    ck.add_argument("--json", action="store_true", help="print the results as JSON")
    ck.set_defaults(func=cmd_check)

    cmp_ = sub.add_parser("compare", help="replay one signal set in several instrument modes, side by side")
    cmp_.add_argument("--catalog", default=str(DEFAULT_CATALOG), help="catalog to read bars from (default: data/catalog)")
    cmp_.add_argument("--symbols", required=True, help="comma-separated signal tickers, e.g. QQQ,SPY")
    cmp_.add_argument("--modes", default="options,leveraged_etf,both,stock",
                      help="comma-separated instrument modes, any of: options, leveraged_etf, both, stock "
                           "(default: all four)")
    cmp_.add_argument("--start", default=None, help="UTC date/time (inclusive); default: first bar")
    cmp_.add_argument("--end", default=None, help="UTC date/time (exclusive); default: last bar")
    cmp_.add_argument("--cash", type=float, default=100_000.0, help="starting equity (USD)")
    cmp_.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help=set_help)
    cmp_.add_argument("--out", required=True, help="output folder (compare.csv, compare.json, compare.html)")
    cmp_.add_argument("--signals-from", default=None,
                      help="replay this signal catalog (default: record the actor's signals in a stock run "
                           "to OUT/signals first)")
    cmp_.add_argument("--workers", type=int, default=2, help="parallel processes (default 2; 1 = sequential)")
    cmp_.add_argument("--extended-hours", action="store_true", help="feed pre/after-market bars too")
    cmp_.add_argument("--price-source", choices=("close", "hl2"), default="close",
                      help="price the signal engine's clouds use: the bar's close or (high+low)/2 (default: close)")
    cmp_.add_argument("--quiet", action="store_true", help="no progress bars (none are drawn when stderr is not a terminal)")
    _synthetic_args(cmp_)
    cmp_.set_defaults(func=cmd_compare)

    lt = sub.add_parser("letf-tracking", help="tracking error of a synthetic daily-reset fund vs the real fund")
    lt.add_argument("--underlying", required=True, help="1-minute OHLCV file of the underlying (e.g. QQQ)")
    lt.add_argument("--etf", required=True, help="1-minute OHLCV file of the real fund (e.g. TQQQ)")
    lt.add_argument("--leverage", type=float, required=True, help="signed daily leverage, e.g. 3 or -3")
    lt.add_argument("--expense-ratio", type=float, default=0.0095, help="annual, e.g. 0.0086 (default 0.0095)")
    lt.add_argument("--rate", type=float, default=0.0, help="annual financing rate, e.g. 0.045 (default 0)")
    lt.add_argument("--financing-spread", type=float, default=0.0, help="annual swap spread (default 0)")
    lt.add_argument("--tz", default=None, help="timezone of naive timestamps in both files, e.g. UTC")
    lt.add_argument("--label", choices=("open", "close"), default="open",
                    help="whether a row's time is its bar's open (default) or close")
    lt.add_argument("--out", default=None, help="also write the full report (JSON) to this file")
    lt.add_argument("--json", action="store_true", help="print the full JSON report instead of the summary")
    lt.set_defaults(func=cmd_letf_tracking)

    db = sub.add_parser("db", help="journal database migrations (URL: --db, else $DATABASE_URL, else data/executor.db)")
    dbsub = db.add_subparsers(dest="db_command", required=True)
    up = dbsub.add_parser("upgrade", help="migrate the journal up (says so when it is already there)")
    up.add_argument("revision", nargs="?", default="head", help="target revision (default: head)")
    _db_option(up, "database URL (default $DATABASE_URL, else data/executor.db)")
    up.set_defaults(func=cmd_db)
    down = dbsub.add_parser("downgrade", help="migrate the journal down to a revision ('base': no tables)")
    down.add_argument("revision", help="target revision, e.g. 137 or base")
    _db_option(down, "database URL (default $DATABASE_URL, else data/executor.db)")
    down.set_defaults(func=cmd_db)

    ks = sub.add_parser("kill-switch", help="show, trip or resume the persisted kill-switch latch")
    kssub = ks.add_subparsers(dest="ks_command", required=True)
    for name, helptext in (("status", "show the latch"), ("trip", "halt trading (manual trigger)"),
                           ("resume", "resume trading after a trip (deliberate: needs --yes)")):
        k = kssub.add_parser(name, help=helptext)
        k.add_argument("--db", default=None, help="database URL (default $DATABASE_URL, else data/executor.db)")
        k.add_argument("--scope", default=None, help="executor scope: omit for the live executor; a backtest's "
                                                     "--control-scope or run id otherwise")
        k.add_argument("--by", default=None, help="operator name recorded with the change")
        if name == "trip":
            k.add_argument("--reason", required=True, help="why (recorded as 'manual: <reason>')")
        if name == "resume":
            k.add_argument("--yes", action="store_true", help="confirm resuming trading")
        k.add_argument("--create", action="store_true",
                       help="create the database / journal tables / scope when they do not exist yet "
                            "(without it an unknown database or scope is refused: a typo must not "
                            "report a fresh, inactive latch)")
        k.set_defaults(func=cmd_kill_switch)

    md = sub.add_parser("mode", help="show or set the live executor's instrument mode (executor_control)")
    mdsub = md.add_subparsers(dest="mode_command", required=True)
    for name in ("show", "set"):
        m = mdsub.add_parser(name, help="show the mode" if name == "show" else "set the mode (a running live node follows it within its control poll)")
        if name == "set":
            m.add_argument("mode", choices=MODE_CHOICES, help=MODE_HELP)
            m.add_argument("--by", default=None, help="operator name recorded with the change")
        m.add_argument("--db", default=None, help="database URL (default $DATABASE_URL, else data/executor.db)")
        m.add_argument("--scope", default=None, help="executor scope (omit for the live executor)")
        m.set_defaults(func=cmd_mode)

    lv = sub.add_parser("live", help="paper trading: signal actor + executor on a NautilusTrader TradingNode")
    lv.add_argument("--broker", default="alpaca", help="alpaca (IBKR: Nautilus' adapter, not wired here yet)")
    lv.add_argument("--symbols", required=True, help="comma-separated signal tickers, e.g. QQQ,SPY")
    lv.add_argument("--mode", default="stock", choices=MODE_CHOICES,
                    help=MODE_HELP + " (default: stock; executor_control's instrument_mode wins when set)")
    lv.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help=set_help)
    lv.add_argument("--db", default=None, help="journal database URL (default $DATABASE_URL, else data/executor.db)")
    lv.add_argument("--alpaca-url", default=None, help="trading REST URL override (e.g. a local fake server)")
    lv.add_argument("--alpaca-stream-url", default=None, help="trade_updates websocket URL override")
    lv.add_argument("--alpaca-data-url", default=None, help="market-data REST URL override")
    lv.add_argument("--alpaca-data-stream-url", default=None, help="market-data websocket URL override")
    lv.add_argument("--feed", default="iex", choices=("iex", "sip"),
                    help="Alpaca market-data feed: iex (free) or sip (all exchanges, subscription); default iex")
    lv.add_argument("--live-account", action="store_true", help="trade the REAL-MONEY account (needs --allow-live)")
    lv.add_argument("--allow-live", action="store_true", help="confirm that real money may be traded")
    lv.add_argument("--alert-webhook", default=None, type=_webhook_url,
                    help="POST kill-switch alerts here (JSON; http:// or https:// only)")
    lv.add_argument("--calendar", default="XNYS", help="trading hours (exchange_calendars name; '24/7' for "
                                                       "demos against the local fake broker at any hour)")
    lv.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    lv.add_argument("--record", default=None, metavar="DIR",
                    help="record the session (every followed instrument's 1-minute bars, the signals) in DIR "
                         "for `trade-executor divergence DIR`")
    lv.add_argument("--no-warmup", action="store_true",
                    help="do not load history at start (default: each symbol's recent 1-minute and daily bars "
                         "from the broker, so the first signal can come on the first live bar)")
    lv.add_argument("--option-chains", default="auto", choices=("auto", "always", "never"),
                    help="track the symbols' option chains (contracts around the price, ATM quotes from the "
                         "options feed): auto = when the mode trades options (options, both); always lets a "
                         "later switch to options work without a restart (default: auto)")
    lv.add_argument("--option-feed", default="indicative", choices=("indicative", "opra"),
                    help="Alpaca options market-data feed: indicative (free) or opra (subscription); "
                         "default indicative")
    lv.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"),
                    help="log level of the executor's own story (signals, decisions, orders, fills, exits, "
                         "kill switch); the engine's routine lines are DEBUG (default: INFO)")
    lv.set_defaults(func=cmd_live)

    dv = sub.add_parser("divergence", help="replay a recorded live session (live --record DIR) through the "
                                          "backtest and compare the trades with the live journal's, per trade")
    dv.add_argument("session", help="the session folder written by `trade-executor live --record DIR`")
    dv.add_argument("--db", default=None, metavar="URL",
                    help="the live journal (default $DATABASE_URL, else data/executor.db)")
    dv.add_argument("--out", default=None, help="replay output folder (default: SESSION/replay)")
    dv.set_defaults(func=cmd_divergence)

    dash = sub.add_parser("dashboard", help="the operator dashboard (Streamlit) on the journal, on localhost")
    dash.add_argument("--db", default=None, metavar="URL", help="journal URL (default $DATABASE_URL, else data/executor.db)")
    dash.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1; others need --allow-remote)")
    dash.add_argument("--port", type=int, default=8501, help="port (default 8501)")
    dash.add_argument("--allow-remote", action="store_true", help="allow a non-loopback --host (no login: use a tunnel)")
    dash.set_defaults(func=cmd_dashboard)

    be = sub.add_parser("bench", help="bars/s of a no-op strategy vs the full pipeline, and peak memory")
    be.add_argument("--catalog", default=None, help="catalog to read bars from (default: generate)")
    be.add_argument("--symbol", default=None, help="catalog symbol to replay (default: the first one)")
    be.add_argument("--sessions", type=int, default=60, help="sessions of generated bars when no catalog")
    be.set_defaults(func=cmd_bench)

    demo = sub.add_parser("demo", help="sample data -> catalog -> backtest (the README's first command); "
                                       "uses its own folder data/demo/, never your data/catalog")
    demo.add_argument("--mode", default="stock", choices=MODE_CHOICES, help=MODE_HELP + " (default: stock)")
    demo.add_argument("--dir", default=None, help="the demo's sample data and catalog folder (default: data/demo)")
    demo.add_argument("--out", default=None, help="backtest output folder (default: backtests/out/demo)")
    demo.add_argument("--quiet", action="store_true", help="no progress bars")
    demo.set_defaults(func=cmd_demo)

    cfg = sub.add_parser("config", help="every executor setting (--set KEY=VALUE) with its default, range and meaning")
    cfg.add_argument("--markdown", action="store_true", help="as a Markdown table (the README's)")
    cfg.set_defaults(func=cmd_config)
    return p


def main(argv: list[str] | None = None) -> int:
    """Exit codes: 0 done, 1 an internal error (or ``check``: an invariant failed), 2 a user
    error (one line on stderr naming the thing and the fix), 130 interrupted (Ctrl-C; what was
    recorded stays recorded). ``--debug`` shows internal errors' tracebacks."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    args = build_parser().parse_args([a for a in argv if a != "--debug"])
    args.debug = debug
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("trade-executor: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 - the CLI's one error model
        msg = _user_error(e, args)
        if debug:
            import traceback

            traceback.print_exc()
        if msg is not None:
            print(f"trade-executor: error: {msg}", file=sys.stderr)
            return 2
        if not debug:
            print(f"trade-executor: internal error: {type(e).__name__}: {_one_line(e)}; "
                  "re-run with --debug for the traceback", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
