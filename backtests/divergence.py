"""Backtest vs live: replay a recorded paper session and compare it trade by trade.

``trade-executor divergence DIR --db URL`` takes a session recorded by the live node
(``trade-executor live --record DIR``, strategies/session_recorder.py):

1. imports the recorded 1-minute bars (every instrument the node followed: signal symbols and
   leveraged funds) into DIR/catalog, venue and format as any imported data;
2. replays the recorded signals through the backtest (``backtest --signals-from DIR/signals``)
   in the session's mode and settings, from the session's starting equity;
3. matches the backtest's trades with the live journal's (run id ``live``, entries inside the
   session) by signal id and prints, per trade, entry/exit time, price, quantity and exit reason
   side by side, with each difference explained (a fill-price difference is the broker's fill vs
   the backtest's fill model; a trade on one side only comes with the other side's decision and
   reason for that signal).

Option trades are not replayable from a recording (the contracts' quotes are not recorded): they
are listed as such.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from strategies.trade_executor.timeutil import stored_utc

PRICE_TOLERANCE = 0.005  # half a cent: equal prices (a tick is a cent)


@dataclass
class TradeDiff:
    signal_id: str
    live: dict[str, Any] | None
    backtest: dict[str, Any] | None
    verdict: str  # "same", "differs", "live_only", "backtest_only", "not_replayable"
    notes: list[str] = field(default_factory=list)


@dataclass
class DivergenceReport:
    session: dict[str, Any]
    diffs: list[TradeDiff]
    backtest_out: Path | None

    @property
    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for d in self.diffs:
            out[d.verdict] = out.get(d.verdict, 0) + 1
        return out


def _aware(v: Any) -> datetime | None:
    if v is None or v == "":
        return None
    if isinstance(v, str):
        v = datetime.fromisoformat(v)
    return stored_utc(v) if isinstance(v, datetime) else v


def _trade(row: Any) -> dict[str, Any]:
    get = row.get if isinstance(row, dict) else (lambda k: getattr(row, k, None))
    return {"signal_id": get("signal_id"), "ticker": get("ticker"), "instrument_type": get("instrument_type"),
            "entry_time": _aware(get("entry_time")), "entry_price": get("entry_price"),
            "shares": get("shares"), "exit_time": _aware(get("exit_time")), "exit_price": get("exit_price"),
            "exit_reason": get("exit_reason"), "status": get("status"), "pnl": get("pnl")}


def live_trades(db_url: str, start: datetime, end: datetime, run_id: str = "live") -> list[dict[str, Any]]:
    from sqlalchemy import create_engine, select

    from strategies.journal.models import TradeExecutionRecord as T

    eng = create_engine(db_url)
    try:
        with eng.connect() as c:
            rows = c.execute(select(T).where(T.run_id == run_id, T.entry_time >= start, T.entry_time <= end)
                             .order_by(T.entry_time, T.id)).all()
    finally:
        eng.dispose()
    latest: dict[str, dict[str, Any]] = {}
    for r in rows:  # an open row is superseded by its closed one
        t = _trade(r)
        if t["signal_id"] not in latest or t["status"] == "closed":
            latest[t["signal_id"]] = t
    return list(latest.values())


def live_decisions(db_url: str, run_id: str = "live") -> dict[str, tuple[str | None, str | None]]:
    from sqlalchemy import create_engine, select

    from strategies.journal.models import SignalDecisionRecord as D

    eng = create_engine(db_url)
    try:
        with eng.connect() as c:
            rows = c.execute(select(D.signal_id, D.approved, D.reason_code, D.reason).where(D.run_id == run_id)).all()
    finally:
        eng.dispose()
    return {r.signal_id: (None if r.approved else r.reason_code, r.reason) for r in rows}


def compare_trades(live: list[dict[str, Any]], backtest: list[dict[str, Any]],
                   live_why: dict[str, tuple[str | None, str | None]],
                   backtest_why: dict[str, tuple[str | None, str | None]]) -> list[TradeDiff]:
    by_live = {t["signal_id"]: t for t in live}
    by_bt = {t["signal_id"]: t for t in backtest}
    out: list[TradeDiff] = []
    for sid in sorted(set(by_live) | set(by_bt), key=lambda s: (by_live.get(s) or by_bt.get(s))["entry_time"]
                      or datetime.min.replace(tzinfo=timezone.utc)):
        lv, bt = by_live.get(sid), by_bt.get(sid)
        if lv is not None and lv["instrument_type"] == "option" and bt is None:
            out.append(TradeDiff(sid, lv, None, "not_replayable",
                                 ["an option trade: the contract's quotes are not in the recording"]))
            continue
        if bt is None:
            code, reason = backtest_why.get(sid, (None, None))
            note = (f"the backtest did not trade it: {code} ({reason})" if code
                    else "the backtest never saw this signal" if sid not in backtest_why
                    else "the backtest approved it but its entry did not fill")
            out.append(TradeDiff(sid, lv, None, "live_only", [note]))
            continue
        if lv is None:
            code, reason = live_why.get(sid, (None, None))
            note = (f"live did not trade it: {code} ({reason})" if code
                    else "live never decided this signal" if sid not in live_why
                    else "live approved it but its entry did not fill")
            out.append(TradeDiff(sid, None, bt, "backtest_only", [note]))
            continue
        notes = _differences(lv, bt)
        out.append(TradeDiff(sid, lv, bt, "differs" if notes else "same", notes))
    return out


def _differences(lv: dict[str, Any], bt: dict[str, Any]) -> list[str]:
    notes: list[str] = []
    if lv["ticker"] != bt["ticker"]:
        notes.append(f"instrument: live {lv['ticker']}, backtest {bt['ticker']} (routing saw different "
                     "prices or mode)")
    if lv["shares"] != bt["shares"]:
        notes.append(f"quantity: live {lv['shares']}, backtest {bt['shares']} (sizing on the broker's equity "
                     "and buying power live, on the simulated account in the backtest)")
    for leg in ("entry", "exit"):
        lp, bp = lv[f"{leg}_price"], bt[f"{leg}_price"]
        if lp is not None and bp is not None and abs(float(lp) - float(bp)) > PRICE_TOLERANCE:
            notes.append(f"{leg} price: live {float(lp):.4f}, backtest {float(bp):.4f} "
                         f"({float(lp) - float(bp):+.4f}: the broker's fill vs the backtest's fill model)")
        lt, btt = lv[f"{leg}_time"], bt[f"{leg}_time"]
        if lt is not None and btt is not None and abs((lt - btt).total_seconds()) > 60:
            notes.append(f"{leg} time: live {lt.isoformat()}, backtest {btt.isoformat()} (live fills carry the "
                         "broker's time, backtest fills their bar's close: more than a minute apart means the "
                         "live order or its bar came late)")
    if lv["status"] != bt["status"]:
        notes.append(f"status: live {lv['status']}, backtest {bt['status']} (one side still holds it at the "
                     "end of the recording)")
    elif lv["exit_reason"] != bt["exit_reason"]:
        notes.append(f"exit reason: live {lv['exit_reason']}, backtest {bt['exit_reason']}")
    return notes


def run_divergence(session_dir: str | Path, db_url: str, *, out_dir: str | Path | None = None,
                   run_id: str = "live") -> DivergenceReport:
    from backtests.catalog_io import import_files
    from backtests.runner import BacktestSpec, run_backtest

    session_dir = Path(session_dir)
    meta_path = session_dir / "session.json"
    if not meta_path.is_file():
        raise ValueError(f"session: {session_dir} has no session.json (record one with `trade-executor live "
                         "--record DIR`)")
    meta = json.loads(meta_path.read_text())
    bar_files = sorted((session_dir / "bars").glob("*.csv"))
    if not bar_files or not meta.get("first_bar"):
        raise ValueError(f"session: {session_dir} recorded no bars")
    catalog = session_dir / "catalog"
    import_files(catalog, bar_files, tz=None, label="close", accept_outliers=True)
    first, last = _aware(meta["first_bar"]), _aware(meta["last_bar"])
    out = Path(out_dir) if out_dir is not None else session_dir / "replay"
    executor = dict(meta.get("executor") or {})
    signals = session_dir / "signals"
    result = run_backtest(BacktestSpec(
        catalog=catalog, symbols=list(meta["signal_symbols"]), mode=meta.get("mode", "stock"),
        start=(first - timedelta(minutes=1)).isoformat(), end=(last + timedelta(minutes=1)).isoformat(),
        out_dir=out, starting_cash=float(meta.get("starting_equity") or 100_000.0), executor=executor,
        signals_catalog=signals if signals.is_dir() else None, synthesize_etfs=False, progress=False))
    bt_trades = [_trade(t) for t in result.log.trades] + [_trade(t) for t in result.log.open_trades.values()]
    bt_why = {d.signal_id: (None if d.approved else d.reason_code, d.reason) for d in result.log.decisions}
    lv = live_trades(db_url, first - timedelta(minutes=5), last + timedelta(minutes=5), run_id)
    diffs = compare_trades(lv, bt_trades, live_decisions(db_url, run_id), bt_why)
    report = DivergenceReport(session=meta, diffs=diffs, backtest_out=out)
    write_report(report, out / "divergence.csv")
    return report


def write_report(report: DivergenceReport, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cols = ["signal_id", "verdict", "live_ticker", "bt_ticker", "live_entry_time", "bt_entry_time",
            "live_entry_price", "bt_entry_price", "live_shares", "bt_shares", "live_exit_time", "bt_exit_time",
            "live_exit_price", "bt_exit_price", "live_exit_reason", "bt_exit_reason", "notes"]
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(cols)
        for d in report.diffs:
            lv, bt = d.live or {}, d.backtest or {}

            def iso(v: Any) -> Any:
                return v.isoformat() if isinstance(v, datetime) else v

            w.writerow([d.signal_id, d.verdict, lv.get("ticker"), bt.get("ticker"), iso(lv.get("entry_time")),
                        iso(bt.get("entry_time")), lv.get("entry_price"), bt.get("entry_price"), lv.get("shares"),
                        bt.get("shares"), iso(lv.get("exit_time")), iso(bt.get("exit_time")), lv.get("exit_price"),
                        bt.get("exit_price"), lv.get("exit_reason"), bt.get("exit_reason"), "; ".join(d.notes)])


def format_report(report: DivergenceReport) -> str:
    def px(v: Any) -> str:
        return "-" if v is None else f"{float(v):.2f}"

    def tm(v: Any) -> str:
        return "-" if v is None else v.strftime("%H:%M")

    lines = [f"session {report.session.get('first_bar')} -> {report.session.get('last_bar')}, mode "
             f"{report.session.get('mode')}: " + ", ".join(f"{k} {v}" for k, v in sorted(report.counts.items()))]
    lines.append(f"{'signal':44} {'verdict':14} {'instrument':10} {'entry live/bt':>17} {'qty live/bt':>11} "
                 f"{'exit live/bt':>17} {'reason live/bt'}")
    for d in report.diffs:
        lv, bt = d.live or {}, d.backtest or {}
        lines.append(f"{d.signal_id[:44]:44} {d.verdict:14} {(lv.get('ticker') or bt.get('ticker') or ''):10} "
                     f"{tm(lv.get('entry_time'))} {px(lv.get('entry_price'))}/{px(bt.get('entry_price')):>7} "
                     f"{lv.get('shares', '-')!s:>5}/{bt.get('shares', '-')!s:<5} "
                     f"{px(lv.get('exit_price'))}/{px(bt.get('exit_price')):>7}       "
                     f"{lv.get('exit_reason') or '-'}/{bt.get('exit_reason') or '-'}")
        for n in d.notes:
            lines.append(f"    - {n}")
    return "\n".join(lines)


__all__ = ["DivergenceReport", "TradeDiff", "compare_trades", "format_report", "run_divergence", "write_report"]
