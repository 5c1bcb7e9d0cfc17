"""Whole-run invariants of a backtest output folder: ``trade-executor check OUT [--db URL]``.

``check_run(out_dir, db_url=None)`` reads what a backtest wrote (``summary.json``, ``trades.csv``,
``decisions.csv``, ``fills.csv``, ``events.csv``; backtests.runner / backtests.fills) and, with a
database URL, the run's journal rows (read-only), and returns one ``CheckResult`` per invariant:

=========================== ==================================================================
fills_in_bar                every equity/ETF fill inside its own minute's [low - 1 tick, high +
                            1 tick] (only the modelled slippage may make it worse); option fills
                            inside [bid, ask] of the quote in force
fills_in_session            no fill outside the regular session (calendar of the run, early
                            closes included; a fill at the close minute's bar time is inside)
no_intraday_overnight       day trades and scalps entered and exited in the same session, the
                            exit at or before that session's close
exit_same_minute            every exit/stop fill has a bar (options: a quote) of the traded
                            instrument for that same minute, and a market exit at a bar's close
                            is priced at that close (+/- the modelled tick)
stop_loss_within_budget     a stop-loss round trip loses at most (planned risk + 1 tick x shares +
                            fees) x 1.05, unless the stop's bar opened beyond the stop (a gap:
                            reported as a note)
trades_match_fills          each trade's entry/exit price = quantity-weighted average of its fills
                            by role (to the cent), shares = the filled quantity
one_decision_per_signal     one decisions.csv row per signal id; as many as signals received
no_entry_after_kill_switch  no entry fill after a kill-switch trip until its reset
timeframes_present          signals of every configured timeframe among 1m/10m/1h, and a closed
                            trade for each timeframe whose entries filled (runs >= 2 sessions;
                            approved limits that never filled are no fault)
journal_equals_trades       (--db) the run's trade_executions rows = trades.csv, row for row
daily_pnl_sums              (--db) sum of the run's daily_pnl.realized_pnl = the summary's P&L
=========================== ==================================================================

Each result is PASS, FAIL or SKIP (with the reason), with counts and the first offending rows
(named ``file.csv:LINE``, the line number in the file, header = line 1).
"""

from __future__ import annotations

import csv
import json
import math
import re
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from strategies.trade_executor.timeutil import datetime_to_ns, ns_to_datetime

PASS, FAIL, SKIP = "PASS", "FAIL", "SKIP"
NS_PER_MINUTE = 60_000_000_000
FILL_TOLERANCE_NS = 1_000_000  # backtests.fills: a fill up to 1 ms after a bar's close is that bar's
EPS = 1e-6  # price comparisons (prices are cents; floats carry noise)
CENT = 0.005 + 1e-9  # "to the cent"
SHOWN = 3  # offending rows printed per invariant
STOP_BUDGET_FACTOR = 1.05
CHECKED_TIMEFRAMES = ("1m", "10m", "1h")


class CheckUsageError(ValueError):
    """The check cannot run: no such folder, not a backtest output, bad database URL."""


@dataclass
class CheckResult:
    name: str
    status: str  # PASS | FAIL | SKIP
    checked: int = 0  # rows looked at
    failed: int = 0  # rows that break the invariant
    message: str = ""
    rows: list[str] = field(default_factory=list)  # offending rows (all of them; `line` shows a few)
    notes: list[str] = field(default_factory=list)  # not failures (e.g. stop-loss gaps)

    @property
    def ok(self) -> bool:
        return self.status != FAIL

    def line(self, shown: int = SHOWN) -> str:
        text = f"{self.status} {self.name}: {self.message}"
        if self.rows:
            more = f" (+{len(self.rows) - shown} more)" if len(self.rows) > shown else ""
            text += "; first: " + " | ".join(self.rows[:shown]) + more
        if self.notes:
            more = f" (+{len(self.notes) - shown} more)" if len(self.notes) > shown else ""
            text += "; notes: " + " | ".join(self.notes[:shown]) + more
        return text

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _result(name: str, checked: int, bad: list[str], noun: str, rule: str, *,
            notes: list[str] | None = None) -> CheckResult:
    """PASS "<checked> <noun>: <rule>" or FAIL "<n> of <checked> <noun> break it: <rule>"."""
    if bad:
        return CheckResult(name, FAIL, checked, len(bad), f"{len(bad)} of {checked} {noun} break it: {rule}",
                           bad, notes or [])
    return CheckResult(name, PASS, checked, 0, f"{checked} {noun}: {rule}", [], notes or [])


def _skip(name: str, why: str) -> CheckResult:
    return CheckResult(name, SKIP, message=why)


# ── reading an output folder ────────────────────────────────────────────────────────────────


@dataclass
class Row:
    """One CSV row with where it came from (``file.csv:LINE``)."""

    where: str
    d: dict[str, str]

    def __getitem__(self, k: str) -> str:
        return self.d.get(k, "") or ""


@dataclass
class RunOutputs:
    out_dir: Path
    summary: dict[str, Any]
    trades: list[Row] | None = None
    decisions: list[Row] | None = None
    fills: list[Row] | None = None
    events: list[Row] | None = None

    @property
    def calendar_name(self) -> str:
        return str(self.summary.get("calendar") or "XNYS")

    @property
    def slippage_ticks(self) -> int:
        """Ticks of adverse slippage the fill model applies to market orders and stops."""
        text = str((self.summary.get("fill_model") or {}).get("market_and_stops", "1 tick adverse"))
        m = re.search(r"(\d+)\s*tick", text)
        return int(m.group(1)) if m else 1


def _read_csv(path: Path) -> list[Row] | None:
    if not path.is_file():
        return None
    rows = []
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        start = 2  # physical line of the next record (quoted fields may span lines)
        for d in reader:
            rows.append(Row(f"{path.name}:{start}", d))
            start = reader.line_num + 1
    return rows


def load_run(out_dir: Path | str) -> RunOutputs:
    out = Path(out_dir)
    if not out.exists():
        raise CheckUsageError(f"{out}: no such folder")
    if not out.is_dir():
        raise CheckUsageError(f"{out}: not a folder")
    sp = out / "summary.json"
    if not sp.is_file():
        raise CheckUsageError(f"{out}: not a backtest output folder (no summary.json)")
    try:
        summary = json.loads(sp.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckUsageError(f"{sp}: not valid JSON ({e})") from None
    if not isinstance(summary, dict):
        raise CheckUsageError(f"{sp}: not a backtest summary")
    return RunOutputs(out, summary, trades=_read_csv(out / "trades.csv"), decisions=_read_csv(out / "decisions.csv"),
                      fills=_read_csv(out / "fills.csv"), events=_read_csv(out / "events.csv"))


# ── small helpers ───────────────────────────────────────────────────────────────────────────


def _ns(text: str | None) -> int | None:
    """ISO time (any offset; naive = UTC) -> ns since the epoch; None when empty/unparseable."""
    if text is None or str(text).strip() == "":
        return None
    try:
        ts = pd.Timestamp(str(text).strip())
    except (ValueError, TypeError):
        return None
    if ts is pd.NaT:
        return None
    if ts.tzinfo is None:
        ts = ts.tz_localize("UTC")
    return int(ts.value)


def _f(text: Any) -> float | None:
    if text is None or text == "":
        return None
    try:
        v = float(text)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _iso(ns: int) -> str:
    return pd.Timestamp(ns, unit="ns", tz="UTC").isoformat()


_dt = ns_to_datetime
_dt_ns = datetime_to_ns


def minute_of(ns: int) -> int:
    """Close time of the 1-minute bar a time belongs to: (c - 1 min, c], or up to 1 ms after c."""
    floor = ns - ns % NS_PER_MINUTE
    return floor if ns - floor <= FILL_TOLERANCE_NS else floor + NS_PER_MINUTE


def _calendar(run: RunOutputs):
    from strategies.trade_executor import MarketCalendar

    try:
        return MarketCalendar(run.calendar_name)
    except Exception as e:  # noqa: BLE001 - unknown calendar name in a hand-edited summary
        raise CheckUsageError(f"summary.json: calendar {run.calendar_name!r} unknown ({e})") from None


def _session_ns(cal: Any, ns: int) -> tuple[int, int] | None:
    """(open, close) in ns of the calendar session ``ns`` belongs to (``MarketCalendar.session_for``);
    None if none."""
    try:
        s = cal.session_for(_dt(ns))
    except ValueError:
        return None
    return None if s is None else (_dt_ns(s[0]), _dt_ns(s[1]))


def _role(row: Row) -> str:
    role = row["role"]
    if role.startswith("entry") or role == "add":
        return "entry"
    if role in ("exit", "stop"):
        return "exit"
    return role


def _is_option(row: Row) -> bool:
    return row["quote_bid"] != "" or row["quote_ask"] != ""


def _fill_text(r: Row) -> str:
    sid = f", {r['signal_id']}" if r["signal_id"] else ""
    return (f"{r.where} {r['ts']} {r['instrument']} {r['side']} {r['qty']} @ {r['price']} "
            f"({r['order_type']} {r['role'] or '?'}{sid})")


def _meta(row: Row) -> dict[str, Any]:
    try:
        m = json.loads(row["metadata_json"] or "{}")
    except json.JSONDecodeError:
        return {}
    return m if isinstance(m, dict) else {}


def _closed(trades: list[Row]) -> list[Row]:
    return [t for t in trades if (t["status"] or "closed") == "closed"]


# ── invariants ──────────────────────────────────────────────────────────────────────────────


def check_fills_in_bar(run: RunOutputs) -> CheckResult:
    name = "fills_in_bar"
    if run.fills is None:
        return _skip(name, "no fills.csv in the output folder")
    n_ticks = run.slippage_ticks
    bad: list[str] = []
    n_opt = 0
    stale = 0
    for r in run.fills:
        px = _f(r["price"])
        if px is None:
            bad.append(f"{_fill_text(r)}: no price")
            continue
        if _is_option(r):
            n_opt += 1
            bid, ask = _f(r["quote_bid"]), _f(r["quote_ask"])
            if bid is None or ask is None:
                bad.append(f"{_fill_text(r)}: incomplete quote bid {r['quote_bid']!r} ask {r['quote_ask']!r}")
            elif not bid - EPS <= px <= ask + EPS:
                bad.append(f"{_fill_text(r)} outside the quote in force [{bid:g}, {ask:g}] ({r['quote_ts']})")
            continue
        lo, hi = _f(r["bar_low"]), _f(r["bar_high"])
        tick = _f(r["tick"]) or 0.01
        slip = n_ticks * tick
        if lo is None or hi is None:
            last = _f(r["last_close"])
            if r["order_type"] in ("MARKET", "LIMIT") and last is not None and abs(px - last) <= slip + EPS:
                stale += 1  # nothing traded in that minute: filled at the last print
                continue
            bad.append(f"{_fill_text(r)}: no bar of {r['instrument']} for the fill's minute"
                       + (f" and not at its last print {last:g} ± {n_ticks} tick" if last is not None else ""))
            continue
        if not lo - slip - EPS <= px <= hi + slip + EPS:
            bad.append(f"{_fill_text(r)} outside bar {r['bar_ts']} [low {lo:g} - {n_ticks} tick, "
                       f"high {hi:g} + {n_ticks} tick] = [{lo - slip:.4f}, {hi + slip:.4f}]")
    rule = f"inside their minute's bar [low - {n_ticks} tick, high + {n_ticks} tick]"
    if n_opt:
        rule += f"; option fills ({n_opt}) inside the quote's [bid, ask]"
    res = _result(name, len(run.fills), bad, "fills", rule)
    if stale:
        res.notes.append(f"{stale} fill(s) in a minute in which the instrument did not trade (no bar): "
                         f"at its last print ± {n_ticks} tick")
    return res


def check_fills_in_session(run: RunOutputs) -> CheckResult:
    name = "fills_in_session"
    if run.fills is None:
        return _skip(name, "no fills.csv in the output folder")
    cal = _calendar(run)
    bad: list[str] = []
    for r in run.fills:
        ns = _ns(r["ts"])
        if ns is None:
            bad.append(f"{_fill_text(r)}: no time")
            continue
        m = minute_of(ns)
        s = _session_ns(cal, m)
        if s is None:
            bad.append(f"{_fill_text(r)}: no {cal.name} session that day")
        elif not s[0] < m <= s[1]:
            bad.append(f"{_fill_text(r)}: outside the session {_iso(s[0])} - {_iso(s[1])}")
    return _result(name, len(run.fills), bad, "fills", f"inside a regular {cal.name} session")


def check_no_intraday_overnight(run: RunOutputs) -> CheckResult:
    name = "no_intraday_overnight"
    if run.trades is None:
        return _skip(name, "no trades.csv in the output folder")
    cal = _calendar(run)
    intraday = [t for t in _closed(run.trades) if t["trade_type"] in ("day", "scalp")]
    bad: list[str] = []
    for t in intraday:
        label = f"{t.where} {t['signal_id']} ({t['trade_type']} {t['ticker']}, entry {t['entry_time']}, exit {t['exit_time']})"
        e, x = _ns(t["entry_time"]), _ns(t["exit_time"])
        if e is None or x is None:
            bad.append(f"{label}: entry or exit time missing")
            continue
        em, xm = minute_of(e), minute_of(x)
        s = _session_ns(cal, em)
        if s is None or not s[0] < em <= s[1]:
            bad.append(f"{label}: entry outside a {cal.name} session")
        elif xm > s[1]:
            bad.append(f"{label}: held past the session close {_iso(s[1])}")
        elif xm < em:
            bad.append(f"{label}: exit before entry")
    return _result(name, len(intraday), bad, "day trades / scalps", "exited by the close of their entry's session")


def check_exit_same_minute(run: RunOutputs) -> CheckResult:
    name = "exit_same_minute"
    if run.fills is None:
        return _skip(name, "no fills.csv in the output folder")
    n_ticks = run.slippage_ticks
    exits = [r for r in run.fills if _role(r) == "exit"]
    bad: list[str] = []
    stale = 0
    for r in exits:
        ns = _ns(r["ts"])
        if ns is None:
            bad.append(f"{_fill_text(r)}: no time")
            continue
        m = minute_of(ns)
        if _is_option(r):
            q = _ns(r["quote_ts"])
            if q is None:
                bad.append(f"{_fill_text(r)}: no quote of {r['instrument']} in force")
            elif minute_of(q) != m:
                bad.append(f"{_fill_text(r)}: priced on the quote of {r['quote_ts']}, not of minute {_iso(m)}")
            continue
        b = _ns(r["bar_ts"])
        if b is None:
            last, tick = _f(r["last_close"]), _f(r["tick"]) or 0.01
            expect = None if last is None else last + (n_ticks * tick if r["side"] == "BUY" else -n_ticks * tick)
            if r["order_type"] == "MARKET" and expect is not None and abs(float(r["price"] or "nan") - expect) <= EPS:
                stale += 1  # the instrument did not trade in that minute: its last print is the price
                continue
            bad.append(f"{_fill_text(r)}: no bar of {r['instrument']} for minute {_iso(m)}")
            continue
        if b != m:
            bad.append(f"{_fill_text(r)}: annotated with bar {r['bar_ts']}, the fill is in minute {_iso(m)}")
            continue
        # a market exit decided at this bar's close fills at that close, one tick adverse
        close, tick = _f(r["bar_close"]), _f(r["tick"]) or 0.01
        if r["order_type"] == "MARKET" and close is not None and 0 <= ns - b <= FILL_TOLERANCE_NS:
            expect = close + (n_ticks * tick if r["side"] == "BUY" else -n_ticks * tick)
            if abs(float(r["price"] or "nan") - expect) > EPS:
                bad.append(f"{_fill_text(r)}: not at its minute's close {close:g} {'+' if r['side'] == 'BUY' else '-'} "
                           f"{n_ticks} tick = {expect:.4f} (priced on another minute's bar?)")
    res = _result(name, len(exits), bad, "exit/stop fills",
                  "priced on a bar (options: a quote) of their own minute, market exits at its close")
    if stale:
        res.notes.append(f"{stale} market exit(s) in a minute without a trade of the instrument: at its "
                         f"last print {'+/-'} {n_ticks} tick")
    return res


def check_stop_loss_within_budget(run: RunOutputs) -> CheckResult:
    name = "stop_loss_within_budget"
    if run.trades is None:
        return _skip(name, "no trades.csv in the output folder")
    n_ticks = run.slippage_ticks
    fills_by_sig: dict[str, list[Row]] = defaultdict(list)
    for r in run.fills or []:
        fills_by_sig[r["signal_id"]].append(r)
    stops = [t for t in _closed(run.trades) if t["exit_reason"] == "stop_loss"]
    bad: list[str] = []
    notes: list[str] = []
    for t in stops:
        meta = _meta(t)
        entry, stop, shares, pnl = _f(t["entry_price"]), _f(t["stop_loss"]), _f(t["shares"]), _f(t["pnl"])
        if None in (entry, shares, pnl):
            bad.append(f"{t.where} {t['signal_id']}: entry price, shares or pnl missing")
            continue
        mult = float(meta.get("multiplier") or 1.0)
        fees = float(meta.get("fees") or 0.0)
        fills = fills_by_sig.get(t["signal_id"], [])
        tick = next((_f(r["tick"]) for r in fills if _f(r["tick"])), None) or 0.01
        if t["instrument_type"] == "option":
            planned = entry * shares * mult  # a bought option risks its premium
            what = f"premium {planned:.2f}"
        else:
            if stop is None:
                bad.append(f"{t.where} {t['signal_id']}: stop_loss missing")
                continue
            # the stop rests at the venue on the tick grid: a stop between two ticks may sit on
            # the tick further from the entry (the planned risk plus less than one tick)
            placed = (math.floor(stop / tick + 1e-9) if t["direction"] != "short" else
                      math.ceil(stop / tick - 1e-9)) * tick
            planned = abs(entry - placed) * shares * mult
            what = f"|{entry:g} - {placed:g} (stop {stop:g} on the tick grid)| x {shares:g}"
        slippage = n_ticks * tick * shares * mult
        allowed = (planned + slippage + fees) * STOP_BUDGET_FACTOR
        loss = -pnl
        if loss <= allowed + CENT:
            continue
        label = (f"{t.where} {t['signal_id']} ({t['direction']} {t['ticker']}, entry {t['entry_price']}, stop "
                 f"{t['stop_loss']}, exit {t['exit_price']}): loss {loss:.2f} > ({what} + slippage {slippage:.2f} "
                 f"+ fees {fees:.2f}) x {STOP_BUDGET_FACTOR} = {allowed:.2f}")
        gap = _gap_open(t, stop, fills)
        beyond = _closed_beyond(t, stop, fills, n_ticks)
        if gap is not None:
            notes.append(f"{label}; gap: the stop's bar {gap}")
        elif beyond is not None:
            notes.append(f"{label}; {beyond}")
        else:
            bad.append(label)
    rule = f"loss within (planned risk + {n_ticks} tick x shares + fees) x {STOP_BUDGET_FACTOR}"
    if notes:
        rule += f" ({len(notes)} beyond it after a gap through the stop)"
    return _result(name, len(stops), bad, "stop-loss round trips", rule, notes=notes)


def _closed_beyond(t: Row, stop: float | None, fills: list[Row], n_ticks: int) -> str | None:
    """'... closed at X, beyond the stop S' when a market exit filled at its minute's close (± the
    slippage) and that close was beyond the stop: the executor's own bar-close stop (options, or
    a remainder the resting stop did not cover) can only act on the close."""
    if stop is None:
        return None
    long_ = t["direction"] != "short"
    for r in fills:
        if _role(r) != "exit" or r["order_type"] != "MARKET":
            continue
        close, px, tick = _f(r["bar_close"]), _f(r["price"]), _f(r["tick"]) or 0.01
        if close is None or px is None or abs(px - close) > n_ticks * tick + EPS:
            continue
        if (long_ and close < stop - EPS) or (not long_ and close > stop + EPS):
            return f"bar-close stop: the bar {r['bar_ts']} closed at {close:g}, beyond the stop {stop:g}"
    return None


def _gap_open(t: Row, stop: float | None, fills: list[Row]) -> str | None:
    """'<bar_ts> opened at X, beyond the stop S' when an exit fill's bar opened through the stop."""
    if stop is None or t["instrument_type"] == "option":
        return None
    long_ = t["direction"] != "short"
    for r in fills:
        if _role(r) != "exit":
            continue
        o = _f(r["bar_open"])
        if o is None:
            continue
        if (long_ and o < stop - EPS) or (not long_ and o > stop + EPS):
            return f"{r['bar_ts']} opened at {o:g}, beyond the stop {stop:g}"
    return None


def check_trades_match_fills(run: RunOutputs) -> CheckResult:
    name = "trades_match_fills"
    if run.trades is None or run.fills is None:
        return _skip(name, f"no {'trades.csv' if run.trades is None else 'fills.csv'} in the output folder")
    by_sig: dict[str, list[Row]] = defaultdict(list)
    for r in run.fills:
        by_sig[r["signal_id"]].append(r)
    closed = _closed(run.trades)
    bad: list[str] = []
    seen = Counter(t["signal_id"] for t in closed)
    for t in closed:
        sid = t["signal_id"]
        label = f"{t.where} {sid}"
        if seen[sid] > 1:
            bad.append(f"{label}: {seen[sid]} trades share this signal id")
            continue
        fills = by_sig.get(sid, [])
        ent = [r for r in fills if _role(r) == "entry"]
        ext = [r for r in fills if _role(r) == "exit"]
        if not ent or not ext:
            bad.append(f"{label}: {len(ent)} entry and {len(ext)} exit fills in fills.csv")
            continue
        problems = []
        qe, qx = sum(float(r["qty"]) for r in ent), sum(float(r["qty"]) for r in ext)
        shares = _f(t["shares"])
        if shares is None or abs(qe - shares) > EPS or abs(qx - shares) > EPS:
            problems.append(f"shares {t['shares']} vs entry fills {qe:g}, exit fills {qx:g}")
        for col, rows, q in (("entry_price", ent, qe), ("exit_price", ext, qx)):
            vwap = sum(float(r["qty"]) * float(r["price"]) for r in rows) / q if q else float("nan")
            px = _f(t[col])
            if px is None or not abs(vwap - px) <= CENT:
                problems.append(f"{col} {t[col]} vs fills' average {vwap:.4f} "
                                f"({', '.join(r['qty'] + '@' + r['price'] for r in rows[:4])})")
        if problems:
            bad.append(f"{label}: " + "; ".join(problems))
    # fills of signals without a trade row: open at the end (note), or a lost round trip (failure)
    traded = set(seen)
    notes = []
    for sid, rows in by_sig.items():
        if sid in traded or not sid:
            continue
        net = sum(float(r["qty"]) * (1 if _role(r) == "entry" else -1) for r in rows if _role(r) in ("entry", "exit"))
        if abs(net) > EPS:
            notes.append(f"{sid}: {net:g} still open at the end")
        elif any(_role(r) == "exit" for r in rows):
            bad.append(f"{rows[0].where} {sid}: entry and exit fills but no trade row")
    return _result(name, len(closed), bad, "trades", "entry/exit price = their fills' average (to the cent), shares = filled",
                   notes=notes)


def check_one_decision_per_signal(run: RunOutputs) -> CheckResult:
    name = "one_decision_per_signal"
    if run.decisions is None:
        return _skip(name, "no decisions.csv in the output folder")
    where: dict[str, list[str]] = defaultdict(list)
    for d in run.decisions:
        where[d["signal_id"]].append(d.where)
    bad = [f"signal {sid or '(empty id)'}: {len(w)} rows ({', '.join(w[:4])})" for sid, w in where.items() if len(w) > 1]
    received = run.summary.get("signals_received")
    if received is None:
        bad.append("summary.json has no signals_received")
    elif int(received) != len(run.decisions):
        bad.append(f"decisions.csv has {len(run.decisions)} rows, summary signals_received = {received}")
    return _result(name, len(run.decisions), bad, "decisions",
                   f"one per signal id, as many as signals received ({received})")


def _kill_switch_windows(run: RunOutputs) -> list[tuple[int, int | None, str]]:
    """(trip, reset or None, reason) from events.csv (else summary's trip/reset times)."""
    marks: list[tuple[int, str, str]] = []
    if run.events is not None:
        for e in run.events:
            ns = _ns(e["ts"])
            if ns is None:
                continue
            if e["kind"] in ("kill_switch", "kill_switch_restored"):
                marks.append((ns, "trip", f"{e.where} {e['message']}"))
            elif e["kind"] == "kill_switch_reset":
                marks.append((ns, "reset", e.where))
    else:
        for t in run.summary.get("kill_switch_trips") or []:
            if _ns(t) is not None:
                marks.append((_ns(t), "trip", f"summary trip {t}"))
        for t in run.summary.get("kill_switch_resets") or []:
            if _ns(t) is not None:
                marks.append((_ns(t), "reset", f"summary reset {t}"))
    marks.sort(key=lambda m: (m[0], 0 if m[1] == "reset" else 1))
    windows: list[tuple[int, int | None, str]] = []
    open_: tuple[int, str] | None = None
    for ns, kind, what in marks:
        if kind == "trip" and open_ is None:
            open_ = (ns, what)
        elif kind == "reset" and open_ is not None:
            windows.append((open_[0], ns, open_[1]))
            open_ = None
    if open_ is not None:
        windows.append((open_[0], None, open_[1]))
    return windows


def check_no_entry_after_kill_switch(run: RunOutputs) -> CheckResult:
    name = "no_entry_after_kill_switch"
    if run.fills is None:
        return _skip(name, "no fills.csv in the output folder")
    if run.events is None and "kill_switch_trips" not in run.summary:
        return _skip(name, "no events.csv and no kill_switch_trips in summary.json")
    windows = _kill_switch_windows(run)
    entries = [r for r in run.fills if _role(r) == "entry"]
    bad = []
    for r in entries:
        ns = _ns(r["ts"])
        for trip, reset, what in windows:
            if ns is not None and trip < ns and (reset is None or ns < reset):
                bad.append(f"{_fill_text(r)}: after the trip {_iso(trip)} ({what})"
                           + (f", before its reset {_iso(reset)}" if reset else ", never reset"))
                break
    return _result(name, len(entries), bad, "entry fills",
                   f"none after a kill-switch trip before its reset ({len(windows)} trip(s))")


def check_timeframes_present(run: RunOutputs) -> CheckResult:
    name = "timeframes_present"
    if run.decisions is None or run.trades is None:
        return _skip(name, "no decisions.csv / trades.csv in the output folder")
    configured = run.summary.get("signal_timeframes")
    if configured is None:
        return _skip(name, "summary.json has no signal_timeframes (written by newer backtests)")
    wanted = [tf for tf in CHECKED_TIMEFRAMES if tf in configured]
    cal = _calendar(run)
    a, b = _ns(run.summary.get("first_bar")), _ns(run.summary.get("last_bar"))
    sessions = None
    if a is not None and b is not None:
        try:
            sessions = len(cal.sessions_in_range(cal.session_date(_dt(a)), cal.session_date(_dt(b))))
        except ValueError:
            sessions = None
    received, approved, trades = Counter(), Counter(), Counter()
    approved_ids: dict[str, list[str]] = defaultdict(list)
    for d in run.decisions:
        received[d["timeframe"]] += 1
        if d["approved"].strip().lower() in ("true", "1", "yes"):
            approved[d["timeframe"]] += 1
            approved_ids[d["timeframe"]].append(d["signal_id"])
    filled = {r["signal_id"] for r in run.fills or [] if _role(r) == "entry"}
    for t in _closed(run.trades):
        trades[_meta(t).get("timeframe", "?")] += 1
    counts = ", ".join(f"{tf}: {received[tf]} signals / {approved[tf]} approved / {trades[tf]} trades"
                       for tf in wanted) or "no timeframe among 1m, 10m, 1h configured"
    if sessions is None or sessions < 2:
        return CheckResult(name, SKIP, 0, 0, f"run shorter than 2 sessions ({sessions if sessions is not None else '?'}"
                           f" session); {counts}")
    bad = []
    for tf in wanted:
        if received[tf] == 0:
            bad.append(f"{tf}: configured, but no {tf} signal in decisions.csv")
        elif approved[tf] and trades[tf] == 0:
            # an approved limit that never filled is no fault; an entry with no exit by the end
            # of the run is one, unless it is among the positions still open at the end
            if run.fills is None:
                bad.append(f"{tf}: {approved[tf]} approved decisions but no closed {tf} trade (no fills.csv)")
                continue
            n_filled = sum(1 for sid in approved_ids[tf] if sid in filled)
            open_at_end = int(run.summary.get("open_positions_at_end") or 0)
            if n_filled > open_at_end:
                bad.append(f"{tf}: {n_filled} entered but no closed {tf} trade "
                           f"({open_at_end} position(s) open at the end)")
    return _result(name, len(wanted), bad, "timeframes",
                   f"signals of each, and every timeframe's entries closed ({counts}; {sessions} sessions)")


# ── the whole check ─────────────────────────────────────────────────────────────────────────

RUN_CHECKS: tuple[Callable[[RunOutputs], CheckResult], ...] = (
    check_fills_in_bar,
    check_fills_in_session,
    check_no_intraday_overnight,
    check_exit_same_minute,
    check_stop_loss_within_budget,
    check_trades_match_fills,
    check_one_decision_per_signal,
    check_no_entry_after_kill_switch,
    check_timeframes_present,
)


def _journal_checks():
    """The invariants over the run's journal (``backtests.check_journal``, which needs SQLAlchemy)."""
    from backtests.check_journal import DB_CHECKS, Journal

    return DB_CHECKS, Journal


def check_run(out_dir: Path | str, db_url: str | None = None) -> list[CheckResult]:
    """Every invariant over a backtest output folder (and its journal with ``db_url``).
    CheckUsageError (a ValueError) when the folder or the database cannot be read at all."""
    run = load_run(out_dir)
    results = [fn(run) for fn in RUN_CHECKS]
    db_checks, journal = _journal_checks()
    db = journal(db_url) if db_url else None
    try:
        results += [fn(run, db) for fn in db_checks]
    except Exception as e:  # noqa: BLE001 - SQLAlchemyError: e.g. a journal of an older schema
        if db is None or not _is_db_error(e):
            raise
        why = str(getattr(e, "orig", None) or e).strip().splitlines()[0]
        raise CheckUsageError(f"--db {db.shown}: cannot read the journal ({why})") from None
    finally:
        if db is not None:
            db.close()
    return results


def _is_db_error(e: BaseException) -> bool:
    from sqlalchemy.exc import SQLAlchemyError

    return isinstance(e, SQLAlchemyError)


def exit_code(results: list[CheckResult]) -> int:
    return 1 if any(r.status == FAIL for r in results) else 0


def format_results(results: list[CheckResult]) -> str:
    width = max((len(r.name) for r in results), default=0)
    lines = []
    for r in results:
        line = r.line()
        lines.append(line.replace(f"{r.status} {r.name}: ", f"{r.status} {r.name:<{width}}  ", 1))
    return "\n".join(lines)


__all__ = ["CheckResult", "CheckUsageError", "FAIL", "PASS", "RUN_CHECKS", "RunOutputs",
           "SKIP", "check_run", "exit_code", "format_results", "load_run", "minute_of"]
