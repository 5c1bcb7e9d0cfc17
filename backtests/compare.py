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
   notes and one inline-SVG chart with the equity curves of all modes; no JavaScript).

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
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from backtests.report import _svg_multi_line, synthetic_note

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


def _backtest_kwargs(spec: CompareSpec, mode: str, **over: Any) -> dict[str, Any]:
    kw = dict(catalog=Path(spec.catalog), symbols=list(spec.symbols), start=spec.start, end=spec.end,
              mode=mode, starting_cash=spec.starting_cash, executor=dict(spec.executor),
              extended_hours=spec.extended_hours, price_source=spec.price_source,
              synthesize_etfs=spec.synthesize_etfs, progress=False)
    kw.update(over)
    return kw


def _run_one(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Run one backtest (in a worker process or in-process) and return what the comparison needs
    (plain picklable data)."""
    from backtests.runner import BacktestSpec, run_backtest

    t0 = time.perf_counter()
    result = run_backtest(BacktestSpec(**kwargs))
    log = result.log
    option_rejected = sum(1 for d in log.decisions
                          if not d.approved and d.reason_code == "no_instrument" and d.instrument_type == "option")
    return {
        "mode": kwargs["mode"],
        "summary": result.summary,
        "curve": list(log.equity),
        "trades": [{k: t.get(k) for k in ("ticker", "instrument_type", "shares", "pnl", "entry_time",
                                          "exit_time", "leverage")} for t in log.trades],
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


def _run_all(jobs: list[dict[str, Any]], workers: int) -> list[dict[str, Any]]:
    if workers <= 1 or len(jobs) <= 1:
        return [_run_one(j) for j in jobs]
    # spawn: fresh interpreters, no Nautilus/Rust runtime state inherited from this process
    ctx = multiprocessing.get_context("spawn")
    # longest first (leveraged-ETF modes feed the synthetic funds' bars too): a shorter makespan;
    # results come back in the order asked for
    cost = {"leveraged_etf": 0, "both": 1, "stock": 2, "options": 3}
    order = sorted(range(len(jobs)), key=lambda i: cost.get(jobs[i]["mode"], 9))
    with ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=ctx) as pool:
        futures = {i: pool.submit(_run_one, jobs[i]) for i in order}
        return [futures[i].result() for i in range(len(jobs))]


def _row(res: dict[str, Any]) -> dict[str, Any]:
    s = res["summary"]
    mode = res["mode"]
    trades = res["trades"]
    options_routed = mode in ("options", "both")
    no_instr = s["rejected_by_reason"].get("no_instrument", 0)
    oc = res.get("option_costs") or {"trades": 0, "theta_cost": 0.0, "spread_cost": 0.0}
    if options_routed:
        simulated = (f"yes; options priced from the underlying (Black-Scholes, modelled spread): "
                     f"{oc['trades']} option trade(s), {res['option_signals_rejected']} option signal(s) "
                     "without a contract")
    else:
        simulated = "yes"
    return {
        "mode": mode,
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
    gen = _run_one(_backtest_kwargs(spec, "stock", record_signals=sig_dir))
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

    t0 = time.perf_counter()
    if spec.progress:
        print("compare: fixing the signal set" + (f" from {spec.signals_from}" if spec.signals_from else
              " (stock-mode run recording the actor's signals)"), file=sys.stderr, flush=True)
    sig_dir, gen = _prepare_signals(spec)
    if spec.progress:
        print(f"compare: replaying {sig_dir} in {', '.join(modes)} ({min(max(spec.workers, 1), len(modes))} "
              f"worker(s))", file=sys.stderr, flush=True)
    results = _run_all([_backtest_kwargs(spec, m, signals_catalog=sig_dir) for m in modes], spec.workers)
    rows = [_row(r) for r in results]
    received = {r["mode"]: r["signals_received"] for r in rows}
    report = {
        "params": {"catalog": str(spec.catalog), "symbols": spec.symbols, "start": spec.start, "end": spec.end,
                   "cash": spec.starting_cash, "executor": spec.executor, "modes": modes,
                   "workers": spec.workers, "extended_hours": spec.extended_hours,
                   "synthesize_etfs": spec.synthesize_etfs},
        "signals": {"catalog": str(sig_dir),
                    "source": str(spec.signals_from) if spec.signals_from else "ema_cloud_actor (stock-mode run)",
                    "received_per_mode": received,
                    "identical_signal_set": len(set(received.values())) == 1},
        "generation_run": _generation(gen, results),
        "rows": rows,
        "notes": NOTES,
        "summaries": {r["mode"]: r["summary"] for r in results},
        "elapsed_s": round(time.perf_counter() - t0, 2),
        "elapsed_per_mode_s": {r["mode"]: r["elapsed_s"] for r in results},
    }
    write_outputs(out, report, {r["mode"]: r["curve"] for r in results})
    return report


def write_outputs(out: Path, report: dict[str, Any], curves: dict[str, list[tuple[datetime, float]]]) -> None:
    rows = report["rows"]
    with (out / "compare.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        for r in rows:
            w.writerow({k: "" if r[k] is None else r[k] for k in COLUMNS})
    (out / "compare.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    (out / "compare.html").write_text(render_html(report, curves))


def _fmt(v: Any) -> str:
    if v is None:
        return "&ndash;"
    if isinstance(v, float):
        return f"{v:,.4f}".rstrip("0").rstrip(".") if abs(v) < 1000 else f"{v:,.2f}"
    return html.escape(str(v))


def render_html(report: dict[str, Any], curves: dict[str, list[tuple[datetime, float]]]) -> str:
    rows = report["rows"]
    modes = [r["mode"] for r in rows]
    head = "".join(f"<th>{html.escape(m)}</th>" for m in modes)
    body = "".join(
        f"<tr><th>{html.escape(c)}</th>" + "".join(f"<td>{_fmt(r[c])}</td>" for r in rows) + "</tr>"
        for c in COLUMNS if c != "mode")
    notes = "".join(f"<li><b>{html.escape(k)}</b>: {html.escape(v)}</li>" for k, v in report["notes"].items())
    syn = {}
    for s in report["summaries"].values():
        syn.update(s.get("synthetic_instruments") or {})
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
    chart = _svg_multi_line({m: curves.get(m, []) for m in modes}, 960, 320, y_label="equity (USD)")
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:20px}}table{{border-collapse:collapse;font-size:12px}}
td,th{{border:1px solid #ccc;padding:3px 6px;text-align:left}}td{{text-align:right}}</style></head><body>
<h1>{html.escape(title)}</h1>
<p>One signal set ({html.escape(sig['source'])}; catalog {html.escape(sig['catalog'])}) replayed in every
mode; signals received per mode: {html.escape(json.dumps(sig['received_per_mode']))}
(identical: {sig['identical_signal_set']}). Period {html.escape(str(p['start'] or 'catalog start'))} &rarr;
{html.escape(str(p['end'] or 'catalog end'))}, starting cash {p['cash']:,.2f}.</p>
{synthetic_note({'synthetic_instruments': syn})}
<h2>Results</h2><table><tr><th></th>{head}</tr>{body}</table>
<h2>Equity curves</h2>{chart}
<h2>Notes</h2><ul>{notes}</ul>
{f'<h2>Leveraged ETFs without bars</h2><ul>{unav}</ul>' if unav else ''}
<h2>Rejections and exits</h2><table><tr><th>mode</th><th>rejected by reason</th><th>exits by reason</th></tr>
{rejected}</table></body></html>"""


__all__ = ["COLUMNS", "DEFAULT_MODES", "NOTES", "CompareArgumentError", "CompareSpec", "render_html",
           "run_compare", "write_outputs"]

