"""One signal set, every instrument mode: ``trade-executor compare``.

1. The signal set is fixed first: either ``signals_from`` (a signal catalog written by
   ``backtest --record-signals``) or a stock-mode backtest that records the EMA-cloud actor's
   signals to ``<out>/signals`` (reusable with ``--signals-from``).
2. Every mode replays exactly that catalog (``BacktestSpec.signals_catalog``), so the modes differ
   only in routing, instruments and exits. ``identical_signal_set`` in compare.json checks that
   every run received the same number of signals.
3. Runs go to a ``ProcessPoolExecutor`` (spawned interpreters, at most ``workers`` = 2 by default:
   each backtest is single-threaded and independent, so the results equal a sequential run's;
   ``workers=1`` runs them one after another in this process).
4. Output in ``out``: ``compare.csv`` (one row per mode), ``compare.json`` (rows, notes, the
   signal source and every mode's full summary) and ``compare.html`` (the table side by side, the
   notes and one inline-SVG chart with the equity curves of all modes; no JavaScript); every run's
   own backtest outputs (``summary.json``, ``trades.csv``, ``decisions.csv``, ...) in
   ``out/<mode>/``.
5. Real vs synthetic: when the ``leveraged_etf`` run traded a fund whose real bars are in the
   catalog and whose underlying (index/sector proxy) is too, the same signal set is replayed once
   more in ``leveraged_etf`` mode with those funds synthesised from the underlying
   (``BacktestSpec.force_synthetic``; started at the real fund's price at the underlying's first
   bar, so the two series differ only by the model's tracking error). It is an extra row
   (``leveraged_etf (synthetic TQQQ)``, outputs in ``out/leveraged_etf_synthetic_TQQQ/``), and
   :func:`real_vs_synthetic` matches the two runs' trades of those funds by signal id:
   ``real_vs_synthetic.csv`` (one row per signal, ``REAL_VS_SYNTHETIC_COLUMNS``) and its summary
   in compare.json / compare.html (``real_vs_synthetic``). Differences are synthetic minus real;
   prices in bp of the real price.

Columns and what they mean (also in ``NOTES``):

* ``return_pct``, ``max_drawdown_pct``, ``sharpe``, ``trades``, ``win_rate``, ``fees``: the
  backtest summary's figures (closed round trips; fees = SEC + FINRA TAF).
* ``spread_cost``: 0 in every mode: bars carry no quotes, so no bid/ask spread is modelled.
  ``slippage_cost_est`` is what stands in for it: every market fill pays one tick (0.01) adverse
  slippage, estimated as ``0.01 × shares × 2`` per closed round trip (an upper bound when a fill
  was a limit order, which pays none). Both are already inside the P&L, not extra.
* ``letf_decay_cost``: per closed leveraged-ETF trade ``(L·R_u − R_f) × shares × fund entry
  close`` over the holding period (``backtests.letf_bars.decay_costs``); 0 without ETF trades.
  Inside the P&L too: it explains part of it, it is not an extra charge.
* ``option_theta_cost``: options are simulated from the underlying's bars
  (``backtests.option_quotes``: Black-Scholes, modelled bid/ask). Per closed option trade, what
  time alone took: the option's value at the entry's underlying price and implied volatility,
  at entry minus at exit (``options_pricing.option_trade_costs``); "n/a" in modes without
  options. The options' half-spreads crossed go into ``spread_cost`` (stocks and ETFs: 0, their
  bars carry no quotes). ``option_signals_rejected`` counts scalps routed to options that found
  no contract (``no_instrument``).
"""

from __future__ import annotations

import csv
import html
import json
import multiprocessing
import queue
import re
import shutil
import statistics
import sys
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

from backtests.report import BREAKDOWN_TITLES, _svg_multi_line, synthetic_note
from strategies import stats

DEFAULT_MODES = ("options", "leveraged_etf", "both", "stock")
TICK = 0.01

COLUMNS = (
    "mode", "simulated", "return_pct", "max_drawdown_pct", "sharpe", "trades", "win_rate", "fees",
    "spread_cost", "slippage_cost_est", "letf_decay_cost", "option_theta_cost", "ending_equity",
    "signals_received", "signals_approved", "signals_rejected", "no_instrument",
    "option_signals_rejected", "letf_trades", "synthetic_instruments",
)

NOTES = {
    "spread_cost": "options: the half-spreads crossed at entry and exit (modelled quotes: 1 % of the "
                   "premium, 6 % near the close). Stocks and ETFs: not modelled (bars carry no quotes), "
                   "each market fill pays 1 tick adverse slippage instead (slippage_cost_est). Inside the P&L.",
    "slippage_cost_est": "0.01 x shares x 2 fills per closed round trip (upper bound: limit fills "
                         "pay none); already inside the P&L.",
    "letf_decay_cost": "per closed leveraged-ETF trade: (L x underlying return - fund return) over "
                       "the holding period x shares x fund entry close (bar closes); positive = the "
                       "fund lagged L x its underlying. Inside the P&L; 0 without ETF trades.",
    "option_theta_cost": "per closed option trade: the option's value at the entry's underlying price and "
                         "implied volatility, at entry minus at exit (time decay alone); options are "
                         "priced by Black-Scholes from the underlying's bars, not market data. Inside the P&L.",
    "synthetic_instruments": "leveraged ETFs without real catalog bars are synthesised from their "
                             "index/sector ETF (daily-reset model, start 50.00 at the underlying's "
                             "first bar open); not market data.",
}


class CompareArgumentError(ValueError):
    """Bad compare arguments: unknown or repeated mode, missing signal catalog."""


@dataclass
class CompareSpec:
    catalog: Path
    symbols: list[str]
    out_dir: Path
    modes: list[str] = field(default_factory=lambda: list(DEFAULT_MODES))
    start: str | None = None
    end: str | None = None
    starting_cash: float = 100_000.0
    executor: dict[str, Any] = field(default_factory=dict)
    signals_from: Path | None = None
    workers: int = 2
    extended_hours: bool = False
    price_source: str = "close"
    synthesize_etfs: bool = True
    progress: bool = True
    # replay the leveraged_etf run with the traded real-bar funds synthesised (see the module doc)
    real_vs_synthetic: bool = True
    # set by run_compare while progress bars are drawn: a strategies.progress.QueueReporter
    _reporter: Any = field(default=None, repr=False)


def _backtest_kwargs(spec: CompareSpec, mode: str, **over: Any) -> dict[str, Any]:
    kw = dict(catalog=Path(spec.catalog), symbols=list(spec.symbols), start=spec.start, end=spec.end,
              mode=mode, starting_cash=spec.starting_cash, executor=dict(spec.executor),
              extended_hours=spec.extended_hours, price_source=spec.price_source,
              synthesize_etfs=spec.synthesize_etfs, progress=spec._reporter or False)
    kw.update(over)
    return kw


TRADE_KEYS = ("signal_id", "ticker", "instrument_type", "trade_type", "direction", "shares", "pnl", "entry_time",
              "exit_time", "entry_price", "exit_price", "exit_reason", "leverage")


def _run_one(kwargs: dict[str, Any], label: str | None = None) -> dict[str, Any]:
    """Run one backtest (in a worker process or in-process) and return what the comparison needs
    (plain picklable data). ``label``: the row's name (default: the mode)."""
    from backtests.runner import BacktestSpec, run_backtest

    t0 = time.perf_counter()
    result = run_backtest(BacktestSpec(**{**kwargs, "progress_label": label or kwargs.get("progress_label")
                                          or kwargs["mode"]}))
    log = result.log
    option_rejected = sum(1 for d in log.decisions
                          if not d.approved and d.reason_code == "no_instrument" and d.instrument_type == "option")
    return {
        "mode": kwargs["mode"],
        "label": label or kwargs["mode"],
        "force_synthetic": list(kwargs.get("force_synthetic") or ()),
        "summary": result.summary,
        "curve": list(log.equity),
        "trades": [{k: t.get(k) for k in TRADE_KEYS} for t in log.trades],
        "decisions": [{"signal_id": d.signal_id, "approved": d.approved, "reason_code": d.reason_code,
                       "reason": d.reason, "instrument": d.instrument, "instrument_type": d.instrument_type}
                      for d in log.decisions],
        "option_costs": _option_costs(log.trades),
        "option_signals_rejected": option_rejected,
        "elapsed_s": round(time.perf_counter() - t0, 3),
    }


def _option_costs(trades: list[dict[str, Any]]) -> dict[str, float]:
    from strategies.trade_executor.options_pricing import option_trade_costs

    theta = spread = 0.0
    n = 0
    for t in trades:
        if t.get("instrument_type") != "option":
            continue
        meta = json.loads(t.get("metadata_json") or "{}").get("option")
        if not meta:
            continue
        c = option_trade_costs(meta, t["entry_time"], t["exit_time"], int(t["shares"]))
        theta += c["theta_cost"]
        spread += c["spread_cost"]
        n += 1
    return {"trades": n, "theta_cost": round(theta, 2), "spread_cost": round(spread, 2)}


Job = tuple[str, dict[str, Any]]  # (row label, BacktestSpec kwargs)


def _run_all(jobs: list[Job], workers: int,
             follow_up: Callable[[dict[str, Any]], list[Job]] | None = None) -> list[dict[str, Any]]:
    """Run the jobs (``workers`` spawned processes, or in this process when ``workers <= 1`` or
    there is one job). ``follow_up(result)`` may ask for further jobs as soon as a result is in
    (the real-vs-synthetic replay); they join the same pool and their results come right after
    the one that asked for them. Otherwise results come back in the order asked for."""
    done: dict[tuple[int, int], dict[str, Any]] = {}
    if workers <= 1 or len(jobs) <= 1:
        for i, (label, kw) in enumerate(jobs):
            done[(i, 0)] = res = _run_one(kw, label)
            for j, (flabel, fkw) in enumerate(follow_up(res) if follow_up else [], start=1):
                done[(i, j)] = _run_one(fkw, flabel)
        return [done[k] for k in sorted(done)]
    # spawn: fresh interpreters, no Nautilus/Rust runtime state inherited from this process
    ctx = multiprocessing.get_context("spawn")
    # longest first (leveraged-ETF modes feed the synthetic funds' bars too): a shorter makespan
    cost = {"leveraged_etf": 0, "both": 1, "stock": 2, "options": 3}
    order = sorted(range(len(jobs)), key=lambda i: cost.get(jobs[i][1]["mode"], 9))
    with ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=ctx) as pool:
        pending = {pool.submit(_run_one, jobs[i][1], jobs[i][0]): (i, 0) for i in order}
        try:
            while pending:
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in finished:
                    key = pending.pop(fut)
                    done[key] = res = fut.result()
                    if follow_up is not None and key[1] == 0:
                        for j, (flabel, fkw) in enumerate(follow_up(res), start=1):
                            pending[pool.submit(_run_one, fkw, flabel)] = (key[0], j)
        except BaseException:
            for fut in pending:
                fut.cancel()
            raise
    return [done[k] for k in sorted(done)]


def _row(res: dict[str, Any]) -> dict[str, Any]:
    s = res["summary"]
    mode = res["mode"]
    label = res.get("label") or mode
    trades = res["trades"]
    options_routed = mode in ("options", "both")
    no_instr = s["rejected_by_reason"].get("no_instrument", 0)
    oc = res.get("option_costs") or {"trades": 0, "theta_cost": 0.0, "spread_cost": 0.0}
    if options_routed:
        simulated = (f"yes; options priced from the underlying (Black-Scholes, modelled spread): "
                     f"{oc['trades']} option trade(s), {res['option_signals_rejected']} option signal(s) "
                     "without a contract")
    elif res.get("force_synthetic"):
        syn = s.get("synthetic_instruments") or {}
        simulated = "yes; " + ", ".join(
            f"{f} synthesised from {syn.get(f, {}).get('underlying', '?')} although its real bars are in the catalog"
            for f in res["force_synthetic"])
    else:
        simulated = "yes"
    return {
        "mode": label,
        "simulated": simulated,
        "return_pct": s["total_return_pct"],
        "max_drawdown_pct": s["max_drawdown_pct"],
        "sharpe": s["sharpe"],
        "trades": s["trades"],
        "win_rate": s["win_rate"],
        "fees": s["fees"],
        "spread_cost": oc["spread_cost"],
        "slippage_cost_est": round(sum(TICK * (t["shares"] or 0) * 2 for t in trades), 2),
        "letf_decay_cost": (s.get("letf_decay") or {}).get("total", 0.0),
        "option_theta_cost": oc["theta_cost"] if options_routed else "n/a",
        "ending_equity": s["ending_equity"],
        "signals_received": s["signals_received"],
        "signals_approved": s["signals_approved"],
        "signals_rejected": s["signals_rejected"],
        "no_instrument": no_instr,
        "option_signals_rejected": res["option_signals_rejected"],
        "letf_trades": sum(1 for t in trades if t["instrument_type"] == "leveraged_etf"),
        "synthetic_instruments": " ".join(sorted(s.get("synthetic_instruments") or {})),
    }


def _prepare_signals(spec: CompareSpec) -> tuple[Path, dict[str, Any] | None]:
    """The signal catalog every mode replays, and the generating run's result (None when given)."""
    if spec.signals_from is not None:
        src = Path(spec.signals_from)
        if not src.is_dir():
            raise CompareArgumentError(f"signals catalog not found: {src}")
        return src, None
    sig_dir = Path(spec.out_dir) / "signals"
    if sig_dir.exists():
        if not (sig_dir / "data").is_dir() and any(sig_dir.iterdir()):
            raise CompareArgumentError(f"{sig_dir} exists and is not a signal catalog; refusing to replace it")
        shutil.rmtree(sig_dir)  # a previous compare's signals: regenerate, never append
    gen = _run_one(_backtest_kwargs(spec, "stock", record_signals=sig_dir), "signals (stock run)")
    if not sig_dir.is_dir():
        sig_dir.mkdir(parents=True)  # no signal at all: an empty catalog, every mode trades nothing
    return sig_dir, gen


def _generation(gen: dict[str, Any] | None, results: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The signal-generating stock run, and whether the stock replay reproduced it (it should:
    replayed signals arrive exactly when the in-process actor publishes them)."""
    if gen is None:
        return None
    keys = ("trades", "ending_equity", "signals_received", "signals_approved", "rejected_by_reason")
    out = {k: gen["summary"][k] for k in keys}
    stock = next((r for r in results if r["mode"] == "stock"), None)
    out["stock_replay_identical"] = (None if stock is None else
                                     all(stock["summary"][k] == gen["summary"][k] for k in keys))
    return out


def run_compare(spec: CompareSpec) -> dict[str, Any]:
    from strategies.trade_executor import InstrumentMode

    modes = [m.strip() for m in spec.modes if m.strip()]
    valid = [m.value for m in InstrumentMode]
    bad = [m for m in modes if m not in valid]
    if bad or not modes:
        raise CompareArgumentError(f"modes: unknown mode {', '.join(bad) or '(none given)'}; use some of {valid}")
    if len(set(modes)) != len(modes):
        raise CompareArgumentError(f"modes: a mode is listed twice: {','.join(modes)}")
    out = Path(spec.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    # fail fast on bad symbols / catalog / config before spawning anything
    from backtests.runner import plan_symbols, BacktestSpec

    plan_symbols(BacktestSpec(**_backtest_kwargs(spec, modes[0])))

    from dataclasses import replace as dc_replace

    from strategies.progress import ProgressBars, QueueReporter, progress_enabled

    if not spec.progress or not progress_enabled():
        return _run_compare(spec, modes, out, None)
    parallel = spec.workers > 1 and len(modes) > 1
    manager = multiprocessing.get_context("spawn").Manager() if parallel else None
    try:
        q = manager.Queue() if manager is not None else queue.Queue()
        with ProgressBars() as bars:
            bars.drain(q)
            return _run_compare(dc_replace(spec, _reporter=QueueReporter(q)), modes, out, bars)
    finally:
        if manager is not None:
            manager.shutdown()


def _run_compare(spec: CompareSpec, modes: list[str], out: Path, bars: Any) -> dict[str, Any]:
    def say(text: str) -> None:
        if not spec.progress:
            return
        if bars is not None:
            bars.console.print(text, markup=False, highlight=False)
        else:
            print(text, file=sys.stderr, flush=True)

    t0 = time.perf_counter()
    say("compare: fixing the signal set" + (f" from {spec.signals_from}" if spec.signals_from else
        " (stock-mode run recording the actor's signals)"))
    sig_dir, gen = _prepare_signals(spec)
    say(f"compare: replaying {sig_dir} in {', '.join(modes)} ({min(max(spec.workers, 1), len(modes))} "
        f"worker(s))")
    from backtests import catalog_io

    available = catalog_io.list_symbols(spec.catalog)
    jobs = [(m, _backtest_kwargs(spec, m, signals_catalog=sig_dir, out_dir=out / _slug(m))) for m in modes]

    def follow_up(res: dict[str, Any]) -> list[Job]:
        """The leveraged_etf run traded funds on real bars: replay it with them synthesised."""
        if not spec.real_vs_synthetic or not spec.synthesize_etfs or res["mode"] != "leveraged_etf":
            return []
        funds = real_funds_traded(res, available, spec.symbols)
        if not funds:
            return []
        label = f"leveraged_etf (synthetic {' '.join(funds)})"
        say(f"compare: leveraged_etf traded {', '.join(funds)} on real bars; replaying with "
            f"{'it' if len(funds) == 1 else 'them'} synthesised ({label})")
        return [(label, _backtest_kwargs(spec, "leveraged_etf", signals_catalog=sig_dir, force_synthetic=tuple(funds),
                                         out_dir=out / _slug(label)))]

    results = _run_all(jobs, spec.workers, follow_up)
    rows = [_row(r) for r in results]
    rvs_summary, rvs_rows = None, []
    forced = next((r for r in results if r["force_synthetic"]), None)
    if forced is not None:
        real = next(r for r in results if r["label"] == "leveraged_etf")
        rvs_rows, rvs_summary = real_vs_synthetic(real, forced)
        rvs_summary.update(label=forced["label"], csv=str(out / "real_vs_synthetic.csv"))
    received = {r["mode"]: r["signals_received"] for r in rows}
    report = {
        "params": {"catalog": str(spec.catalog), "symbols": spec.symbols, "start": spec.start, "end": spec.end,
                   "cash": spec.starting_cash, "executor": spec.executor, "modes": modes,
                   "workers": spec.workers, "extended_hours": spec.extended_hours,
                   "synthesize_etfs": spec.synthesize_etfs, "real_vs_synthetic": spec.real_vs_synthetic},
        "signals": {"catalog": str(sig_dir),
                    "source": str(spec.signals_from) if spec.signals_from else "ema_cloud_actor (stock-mode run)",
                    "received_per_mode": received,
                    "identical_signal_set": len(set(received.values())) == 1},
        "generation_run": _generation(gen, results),
        "rows": rows,
        "real_vs_synthetic": rvs_summary,
        "notes": NOTES,
        "summaries": {r["label"]: r["summary"] for r in results},
        "run_dirs": {r["label"]: str(out / _slug(r["label"])) for r in results},
        "elapsed_s": round(time.perf_counter() - t0, 2),
        "elapsed_per_mode_s": {r["label"]: r["elapsed_s"] for r in results},
    }
    write_outputs(out, report, {r["label"]: r["curve"] for r in results}, rvs_rows if forced is not None else None)
    if rvs_summary is not None:
        v = rvs_summary
        say(f"compare: real vs synthetic {' '.join(v['funds'])}: {v['n_matched']} matched trade(s), entry "
              f"|diff| mean {v['mean_abs_entry_diff_bp']} bp / median {v['median_abs_entry_diff_bp']} bp, exit "
              f"mean {v['mean_abs_exit_diff_bp']} / median {v['median_abs_exit_diff_bp']} bp, trade return "
              f"|diff| mean {v['mean_abs_return_diff_bp']} bp; pnl diff mean {v['mean_pnl_diff']} total "
            f"{v['total_pnl_diff']}; only real {v['only_real']}, only synthetic {v['only_synthetic']}")
    return report


def _slug(label: str) -> str:
    """A row label as a directory name: 'leveraged_etf (synthetic TQQQ)' -> leveraged_etf_synthetic_TQQQ."""
    return re.sub(r"[^A-Za-z0-9]+", "_", label).strip("_")


# -- real vs synthetic fund bars --------------------------------------------------------------------

REAL_VS_SYNTHETIC_COLUMNS = (
    "signal_id", "fund", "status", "trade_type", "direction",
    "entry_time_real", "entry_price_real", "exit_time_real", "exit_price_real", "shares_real", "pnl_real",
    "exit_reason_real",
    "entry_time_synthetic", "entry_price_synthetic", "exit_time_synthetic", "exit_price_synthetic",
    "shares_synthetic", "pnl_synthetic", "exit_reason_synthetic",
    "entry_diff_bp", "exit_diff_bp", "return_real_bp", "return_synthetic_bp", "return_diff_bp", "pnl_diff",
    "why",
)


def real_funds_traded(res: dict[str, Any], available: list[str], signal_symbols: list[str] = ()) -> list[str]:
    """Funds a leveraged-ETF run traded on real catalog bars that can also be synthesised (their
    index/sector proxy is in the catalog too), sorted."""
    from backtests.letf_bars import underlying_for

    synthetic = set(res["summary"].get("synthetic_instruments") or {})
    signal = {s.strip().upper() for s in signal_symbols}
    funds = {t["ticker"] for t in res["trades"] if t["instrument_type"] == "leveraged_etf"}
    return sorted(f for f in funds
                  if f in available and f not in synthetic and f not in signal
                  and underlying_for(f, [a for a in available if a != f]) is not None)


def _per_signal(trades: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """A run's closed trades by signal id (a signal's partial round trips merged: share-weighted
    prices, first entry, last exit, summed P&L)."""
    by: dict[str, list[dict[str, Any]]] = {}
    for t in trades:
        by.setdefault(t["signal_id"], []).append(t)
    out = {}
    for sid, ts in by.items():
        shares = sum(int(t["shares"] or 0) for t in ts)

        def avg(k: str) -> float | None:
            vals = [(float(t[k]), int(t["shares"] or 0) or 1) for t in ts if t.get(k) is not None]
            return sum(v * n for v, n in vals) / sum(n for _, n in vals) if vals else None

        out[sid] = {"fund": ts[0]["ticker"], "instrument_type": ts[0]["instrument_type"],
                    "trade_type": ts[0].get("trade_type"), "direction": ts[0].get("direction"),
                    "entry_time": min(t["entry_time"] for t in ts), "exit_time": max(t["exit_time"] for t in ts),
                    "entry_price": avg("entry_price"), "exit_price": avg("exit_price"), "shares": shares,
                    "pnl": sum(float(t["pnl"] or 0.0) for t in ts),
                    "exit_reason": "+".join(dict.fromkeys(str(t.get("exit_reason")) for t in ts))}
    return out


def _ret_bp(t: dict[str, Any]) -> float | None:
    if not t.get("entry_price") or t.get("exit_price") is None:
        return None
    direction = "short" if t.get("direction") == "short" else "long"
    return stats.trade_return(t["entry_price"], t["exit_price"], direction) * 1e4


def _diff_bp(syn: float | None, real: float | None) -> float | None:
    return None if not real or syn is None else (syn - real) / real * 1e4


def _iso(v: Any) -> Any:
    return v.isoformat() if isinstance(v, datetime) else v


def _why_not(run: str, sid: str, trades: dict[str, dict[str, Any]], decisions: dict[str, dict[str, Any]]) -> str:
    """Why the ``run`` run has no trade of a forced fund for signal ``sid``."""
    if sid in trades:
        t = trades[sid]
        return f"{run} run traded {t['fund']} ({t['instrument_type']}) instead"
    d = decisions.get(sid)
    if d is None:
        return f"{run} run: no decision for this signal"
    if not d["approved"]:
        return f"{run} run rejected it: {d['reason_code']}" + (f" ({d['reason']})" if d.get("reason") else "")
    return (f"{run} run approved it ({d.get('instrument') or '?'}) but has no closed trade: the entry never "
            "filled (limit expired / cancelled) or the position was still open at the end")


def real_vs_synthetic(real: dict[str, Any], synthetic: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Per-signal comparison of the trades in the forced funds (``synthetic["force_synthetic"]``)
    of a leveraged_etf run on real bars and its replay on synthetic bars. Differences are
    synthetic minus real; prices in bp of the real price; ``return_*_bp`` the trade's return
    (exit / entry - 1, fill prices, before fees). Returns (CSV rows, summary)."""
    funds = set(synthetic["force_synthetic"])
    tr, ts = _per_signal(real["trades"]), _per_signal(synthetic["trades"])
    dr: dict[str, dict[str, Any]] = {}
    ds: dict[str, dict[str, Any]] = {}
    for src, dst in ((real["decisions"], dr), (synthetic["decisions"], ds)):
        for d in src:
            dst.setdefault(d["signal_id"], d)
    in_real = {sid for sid, t in tr.items() if t["fund"] in funds}
    in_syn = {sid for sid, t in ts.items() if t["fund"] in funds}
    rows = []
    for sid in sorted(in_real | in_syn, key=lambda x: (min(t["entry_time"] for t in (tr.get(x), ts.get(x))
                                                           if t is not None), x)):
        r = tr.get(sid) if sid in in_real else None
        y = ts.get(sid) if sid in in_syn else None
        base = r or y
        row: dict[str, Any] = {"signal_id": sid, "fund": base["fund"], "trade_type": base["trade_type"],
                               "direction": base["direction"]}
        for tag, t in (("real", r), ("synthetic", y)):
            for k in ("entry_time", "entry_price", "exit_time", "exit_price", "shares", "pnl", "exit_reason"):
                v = None if t is None else t[k]
                row[f"{k}_{tag}"] = round(v, 4) if isinstance(v, float) else _iso(v)
        if r is not None and y is not None:
            rr, ry = _ret_bp(r), _ret_bp(y)
            row.update(status="both", entry_diff_bp=_r(_diff_bp(y["entry_price"], r["entry_price"])),
                       exit_diff_bp=_r(_diff_bp(y["exit_price"], r["exit_price"])), return_real_bp=_r(rr),
                       return_synthetic_bp=_r(ry), return_diff_bp=_r(None if rr is None or ry is None else ry - rr),
                       pnl_diff=round(y["pnl"] - r["pnl"], 4), why="")
        elif r is not None:
            row.update(status="only_real", return_real_bp=_r(_ret_bp(r)), why=_why_not("synthetic", sid, ts, ds))
        else:
            row.update(status="only_synthetic", return_synthetic_bp=_r(_ret_bp(y)), why=_why_not("real", sid, tr, dr))
        rows.append({c: row.get(c) for c in REAL_VS_SYNTHETIC_COLUMNS})
    return rows, _rvs_summary(rows, sorted(funds))


def _r(v: float | None, nd: int = 4) -> float | None:
    return None if v is None else round(v, nd)


def _rvs_summary(rows: list[dict[str, Any]], funds: list[str]) -> dict[str, Any]:
    both = [r for r in rows if r["status"] == "both"]

    def stat(key: str, fn: Callable[[list[float]], float], absolute: bool = True) -> float | None:
        vals = [abs(r[key]) if absolute else r[key] for r in both if r[key] is not None]
        return round(fn(vals), 4) if vals else None

    pnl_real = sum(r["pnl_real"] for r in both)
    pnl_syn = sum(r["pnl_synthetic"] for r in both)
    return {
        "funds": funds,
        "n_matched": len(both),
        "same_entry_time": sum(1 for r in both if r["entry_time_real"] == r["entry_time_synthetic"]),
        "same_exit_time": sum(1 for r in both if r["exit_time_real"] == r["exit_time_synthetic"]),
        "mean_abs_entry_diff_bp": stat("entry_diff_bp", statistics.fmean),
        "median_abs_entry_diff_bp": stat("entry_diff_bp", statistics.median),
        "mean_entry_diff_bp": stat("entry_diff_bp", statistics.fmean, absolute=False),
        "mean_abs_exit_diff_bp": stat("exit_diff_bp", statistics.fmean),
        "median_abs_exit_diff_bp": stat("exit_diff_bp", statistics.median),
        "mean_exit_diff_bp": stat("exit_diff_bp", statistics.fmean, absolute=False),
        "mean_abs_return_diff_bp": stat("return_diff_bp", statistics.fmean),
        "median_abs_return_diff_bp": stat("return_diff_bp", statistics.median),
        "mean_return_diff_bp": stat("return_diff_bp", statistics.fmean, absolute=False),
        "pnl_real": round(pnl_real, 2),
        "pnl_synthetic": round(pnl_syn, 2),
        "mean_pnl_diff": stat("pnl_diff", statistics.fmean, absolute=False),
        "median_pnl_diff": stat("pnl_diff", statistics.median, absolute=False),
        "mean_abs_pnl_diff": stat("pnl_diff", statistics.fmean),
        "total_pnl_diff": round(pnl_syn - pnl_real, 2),
        "only_real": sum(1 for r in rows if r["status"] == "only_real"),
        "only_synthetic": sum(1 for r in rows if r["status"] == "only_synthetic"),
        "pnl_only_real": round(sum(r["pnl_real"] for r in rows if r["status"] == "only_real"), 2),
        "pnl_only_synthetic": round(sum(r["pnl_synthetic"] for r in rows if r["status"] == "only_synthetic"), 2),
        "sign": "synthetic minus real; prices in bp of the real price; return = exit / entry - 1 of the fills",
    }


def write_outputs(out: Path, report: dict[str, Any], curves: dict[str, list[tuple[datetime, float]]],
                  real_vs_synthetic_rows: list[dict[str, Any]] | None = None) -> None:
    rows = report["rows"]
    if real_vs_synthetic_rows is None:
        (out / "real_vs_synthetic.csv").unlink(missing_ok=True)  # a previous compare's: not this one's
    else:
        with (out / "real_vs_synthetic.csv").open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=REAL_VS_SYNTHETIC_COLUMNS)
            w.writeheader()
            for r in real_vs_synthetic_rows:
                w.writerow({k: "" if r[k] is None else r[k] for k in REAL_VS_SYNTHETIC_COLUMNS})
    with (out / "compare.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        for r in rows:
            w.writerow({k: "" if r[k] is None else r[k] for k in COLUMNS})
    (out / "compare.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    # self-contained (inline SVG, no script): compare.html is often mailed around; render_html(...,
    # charts="plotly") draws the curves with Plotly instead (needs plotly.min.js beside the page)
    (out / "compare.html").write_text(render_html(report, curves))


def _fmt(v: Any) -> str:
    if v is None:
        return "&ndash;"
    if isinstance(v, float):
        return f"{v:,.4f}".rstrip("0").rstrip(".") if abs(v) < 1000 else f"{v:,.2f}"
    return html.escape(str(v))


def render_html(report: dict[str, Any], curves: dict[str, list[tuple[datetime, float]]], charts: str = "svg") -> str:
    """compare.html; ``charts``: "plotly" (Plotly, the dashboard's library; plotly.min.js beside
    the page) or "svg" (inline)."""
    rows = report["rows"]
    modes = [r["mode"] for r in rows]
    head = "".join(f"<th>{html.escape(m)}</th>" for m in modes)
    body = "".join(
        f"<tr><th>{html.escape(c)}</th>" + "".join(f"<td>{_fmt(r[c])}</td>" for r in rows) + "</tr>"
        for c in COLUMNS if c != "mode")
    notes = "".join(f"<li><b>{html.escape(k)}</b>: {html.escape(v)}</li>" for k, v in report["notes"].items())
    syn = {}
    forced_label = (report.get("real_vs_synthetic") or {}).get("label")
    for label, s in report["summaries"].items():
        for t, d in (s.get("synthetic_instruments") or {}).items():
            if d.get("replaces_real"):
                syn[f"{t} (only in '{label}')"] = d
            else:
                syn.setdefault(t, d)
    unavailable = {}
    for s in report["summaries"].values():
        unavailable.update(s.get("etf_bars_unavailable") or {})
    unav = "".join(f"<li>{html.escape(k)}: {html.escape(v)}</li>" for k, v in sorted(unavailable.items()))
    rejected = "".join(
        f"<tr><th>{html.escape(m)}</th><td>{html.escape(json.dumps(s['rejected_by_reason']))}</td>"
        f"<td>{html.escape(json.dumps(s['exits_by_reason']))}</td></tr>"
        for m, s in report["summaries"].items())
    sig = report["signals"]
    p = report["params"]
    title = f"Mode comparison {', '.join(p['symbols'])}"
    script = ""
    if charts == "plotly":
        from backtests.report import _minmax_idx
        from strategies import charts as plotly_charts

        series = {}
        for m in modes:
            pts = curves.get(m, [])
            idx = _minmax_idx([v for _, v in pts])
            series[m] = ([pts[i][0] for i in idx], [pts[i][1] for i in idx])
        chart = plotly_charts.to_div(plotly_charts.equity_curves_figure(series), "equity_curves")
        script = f'<script src="{plotly_charts.PLOTLY_JS}"></script>'
    else:
        chart = _svg_multi_line({m: curves.get(m, []) for m in modes}, 960, 320, y_label="equity (USD)")
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>{script}
<style>body{{font-family:sans-serif;margin:20px}}table{{border-collapse:collapse;font-size:12px}}
td,th{{border:1px solid #ccc;padding:3px 6px;text-align:left}}td{{text-align:right}}</style></head><body>
<h1>{html.escape(title)}</h1>
<p>One signal set ({html.escape(sig['source'])}; catalog {html.escape(sig['catalog'])}) replayed in every
mode; signals received per mode: {html.escape(json.dumps(sig['received_per_mode']))}
(identical: {sig['identical_signal_set']}). Period {html.escape(str(p['start'] or 'catalog start'))} &rarr;
{html.escape(str(p['end'] or 'catalog end'))}, starting cash {p['cash']:,.2f}.</p>
{synthetic_note({'synthetic_instruments': syn})}
<h2>Results</h2><table><tr><th></th>{head}</tr>{body}</table>
{metrics_html(report["summaries"])}
{breakdowns_by_mode_html(report["summaries"])}
{_rvs_html(report.get("real_vs_synthetic"), forced_label)}
<h2>Equity curves</h2>{chart}
<h2>Notes</h2><ul>{notes}</ul>
{f'<h2>Leveraged ETFs without bars</h2><ul>{unav}</ul>' if unav else ''}
<h2>Rejections and exits</h2><table><tr><th>mode</th><th>rejected by reason</th><th>exits by reason</th></tr>
{rejected}</table></body></html>"""


METRIC_ROWS = (("profit_factor", "profit factor"), ("expectancy", "expectancy (per trade)"),
               ("avg_win", "average win"), ("avg_loss", "average loss"), ("largest_loss", "largest loss"),
               ("sortino", "Sortino"), ("exposure_pct", "exposure (% of session time)"),
               ("cagr_pct", "CAGR % (a year or more)"))


def metrics_html(summaries: dict[str, dict[str, Any]]) -> str:
    """The trader's figures of each mode (summary["metrics"], backtests.report), side by side."""
    labels = [m for m, s in summaries.items() if s.get("metrics")]
    if not labels:
        return ""
    head = "".join(f"<th>{html.escape(m)}</th>" for m in labels)
    body = "".join(f"<tr><th>{html.escape(name)}</th>" + "".join(
        f"<td>{_fmt(summaries[m]['metrics'].get(k))}</td>" for m in labels) + "</tr>" for k, name in METRIC_ROWS)
    return f"<h2>Per trade</h2><table><tr><th></th>{head}</tr>{body}</table>"


def breakdowns_by_mode_html(summaries: dict[str, dict[str, Any]]) -> str:
    """Net P&L (trades) per exit reason, symbol, instrument, timeframe and entry tactic, one
    column per mode; a red cell lost money."""
    labels = [m for m, s in summaries.items() if s.get("breakdowns")]
    if not labels:
        return ""
    parts = ["<h2>Where the P&amp;L came from, per mode</h2><p>Net P&amp;L after fees (trades, win rate); "
             "red: lost money.</p>"]
    for key, title in BREAKDOWN_TITLES.items():
        cells: dict[str, dict[str, dict[str, Any]]] = {}
        for m in labels:
            for r in summaries[m]["breakdowns"].get(key, []):
                cells.setdefault(r["key"], {})[m] = r
        if not cells:
            continue
        head = "".join(f"<th>{html.escape(m)}</th>" for m in labels)
        rows = ""
        for g in sorted(cells, key=lambda g: (sum(c["net_pnl"] for c in cells[g].values()), g)):
            tds = ""
            for m in labels:
                r = cells[g].get(m)
                if r is None:
                    tds += "<td></td>"
                    continue
                wr = "n/a" if r["win_rate"] is None else f"{r['win_rate'] * 100:.0f} %"
                style = ' style="color:#cf222e"' if r["net_pnl"] < 0 else ""
                tds += f"<td{style}>{r['net_pnl']:,.2f} ({r['trades']:,}, {wr})</td>"
            rows += f"<tr><th>{html.escape(str(g))}</th>{tds}</tr>"
        parts.append(f'<h3>By {html.escape(title)}</h3><table><tr><th>{html.escape(title)}</th>{head}</tr>{rows}</table>')
    return "".join(parts)


def _rvs_html(v: dict[str, Any] | None, label: str | None) -> str:
    """The real-vs-synthetic summary table ('' when no such replay ran)."""
    if not v:
        return ""
    items = [
        ("matched trades (signal traded in both runs)", v["n_matched"]),
        ("same entry / exit minute", f"{v['same_entry_time']} / {v['same_exit_time']}"),
        ("entry price |diff|, mean / median (bp)", f"{_fmt(v['mean_abs_entry_diff_bp'])} / "
                                                  f"{_fmt(v['median_abs_entry_diff_bp'])}"),
        ("exit price |diff|, mean / median (bp)", f"{_fmt(v['mean_abs_exit_diff_bp'])} / "
                                                 f"{_fmt(v['median_abs_exit_diff_bp'])}"),
        ("trade return |diff|, mean / median (bp)", f"{_fmt(v['mean_abs_return_diff_bp'])} / "
                                                   f"{_fmt(v['median_abs_return_diff_bp'])}"),
        ("P&amp;L real / synthetic (matched)", f"{_fmt(v['pnl_real'])} / {_fmt(v['pnl_synthetic'])}"),
        ("P&amp;L diff per trade, mean (synthetic &minus; real)", _fmt(v["mean_pnl_diff"])),
        ("P&amp;L diff, total", _fmt(v["total_pnl_diff"])),
        ("traded only on real / only on synthetic bars", f"{v['only_real']} / {v['only_synthetic']}"),
    ]
    body = "".join(f"<tr><th>{k}</th><td>{val}</td></tr>" for k, val in items)
    return (f"<h2>Real vs synthetic {html.escape(' '.join(v['funds']))}</h2>"
            f"<p>The leveraged_etf run (real bars) against its replay <b>{html.escape(label or '')}</b>: the same "
            "signals, the fund synthesised from its underlying (daily-reset model, started at the real fund's "
            "price). Differences are synthetic minus real, prices in bp of the real price; per trade in "
            "real_vs_synthetic.csv.</p>"
            f"<table>{body}</table>")


__all__ = ["COLUMNS", "DEFAULT_MODES", "NOTES", "REAL_VS_SYNTHETIC_COLUMNS", "CompareArgumentError", "CompareSpec",
           "real_funds_traded", "real_vs_synthetic", "render_html", "run_compare", "write_outputs"]

