"""Backtest outputs: summary.json, trades.csv, decisions.csv and a self-contained HTML report.

Pure functions over what the executor recorded (ExecutionLog); no plotting library needed: the
equity curve and drawdown are drawn as inline SVG so the report opens anywhere, offline.

What a trader asks first (``summary["metrics"]`` and ``summary["breakdowns"]``, both in
report.html and compare.html), every figure from ``strategies.stats``:

* ``trade_metrics(pnls)``: trades, wins, losses, win rate, net P&L, gross profit / loss, average
  win (mean P&L of the trades with P&L > 0), average loss (mean of those < 0), profit factor,
  expectancy (mean P&L per trade), largest win / loss.
* ``breakdown(trades, key)``: those figures per exit reason, symbol (the signal's ticker),
  instrument (stock / leveraged_etf / option), timeframe and entry tactic, worst P&L first.
* ``exposure(trades, sessions)``: minutes with at least one position open, counted inside the
  regular sessions only, over the sessions' minutes (overlapping trades count once).
* ``headline(...)``: return, CAGR (only over a year or more: shorter periods compound noise),
  max drawdown on the full equity series (the summary's figure), Sharpe and Sortino of the New
  York daily closes.

Times in report.html are New York time; the trade table switches to UTC with one click.
"""

from __future__ import annotations

import csv
import html
import json
import math
from collections import Counter
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable
from zoneinfo import ZoneInfo

from strategies import stats
from strategies.execution_log import TRADE_COLUMNS, DecisionRecord

NY = ZoneInfo("America/New_York")


def max_drawdown_pct(equity: list[float]) -> float:
    """Largest peak-to-trough fall, as a positive percentage of the peak (``stats.max_drawdown``)."""
    return round(stats.max_drawdown(equity).pct * 100.0, 4) + 0.0  # + 0.0: never "-0.0"


def drawdown_series(equity: list[float]) -> list[float]:
    """Drawdown from the running peak at every point, in percent (<= 0)."""
    return [d * 100.0 for d in stats.drawdown_series(equity)]


def daily_closes(curve: list[tuple[datetime, float]]) -> list[tuple[str, float]]:
    """Last equity of each New York calendar day."""
    by_day: dict[str, float] = {}
    for ts, eq in curve:
        by_day[ts.astimezone(NY).date().isoformat()] = eq
    return sorted(by_day.items())


def sharpe_ratio(curve: list[tuple[datetime, float]], starting_equity: float) -> float | None:
    """Annualised Sharpe of daily returns (``stats.sharpe_of_equity``: risk-free 0, sqrt(252)) of
    the New York daily closes after ``starting_equity``; None with < 2 days or no variance."""
    closes = [starting_equity] + [eq for _, eq in daily_closes(curve)]
    s = stats.sharpe_of_equity(closes, stats.TRADING_DAYS_PER_YEAR)
    return None if s is None else round(s, 4)


def _meta(t: dict[str, Any]) -> dict[str, Any]:
    """A trade row's metadata (``metadata_json``: JSON text or a dict)."""
    m = t.get("metadata_json")
    if isinstance(m, (str, bytes)):
        m = json.loads(m)
    return m if isinstance(m, dict) else {}


def _r(v: float | None, nd: int = 2) -> float | None:
    return None if v is None else round(v, nd) + 0.0


def trade_metrics(pnls: list[float]) -> dict[str, Any]:
    """The per-trade figures of a set of closed trades' P&L (module docstring)."""
    wins = [p for p in pnls if p > 0]
    losses = [p for p in pnls if p < 0]
    wr = stats.win_rate(pnls)
    pf = stats.profit_factor(pnls)
    return {
        "trades": len(pnls),
        "wins": len(wins),
        "losses": len(losses),
        "win_rate": _r(wr, 4),
        "net_pnl": _r(math.fsum(pnls)),
        "gross_profit": _r(math.fsum(wins)),
        "gross_loss": _r(math.fsum(losses)),
        "avg_win": _r(stats.expectancy(wins)),
        "avg_loss": _r(stats.expectancy(losses)),
        "profit_factor": _r(pf, 4),
        "expectancy": _r(stats.expectancy(pnls)),
        "largest_win": _r(max(wins)) if wins else None,
        "largest_loss": _r(min(losses)) if losses else None,
    }


def _symbol(t: dict[str, Any]) -> str:
    return str(t.get("original_ticker") or _meta(t).get("underlying") or t.get("ticker") or "?")


BREAKDOWN_KEYS: dict[str, Callable[[dict[str, Any]], str]] = {
    "exit_reason": lambda t: str(t.get("exit_reason") or "?"),
    "symbol": _symbol,
    "instrument": lambda t: str(t.get("instrument_type") or "?"),
    "timeframe": lambda t: str(_meta(t).get("timeframe") or "?"),
    "entry_tactic": lambda t: str(_meta(t).get("entry_tactic") or "?"),
}


def breakdown(trades: list[dict[str, Any]], key: str | Callable[[dict[str, Any]], str]) -> list[dict[str, Any]]:
    """``trade_metrics`` per group (``key``: a ``BREAKDOWN_KEYS`` name or a function of a trade
    row), worst net P&L first (ties: by name)."""
    fn = BREAKDOWN_KEYS[key] if isinstance(key, str) else key
    groups: dict[str, list[float]] = {}
    for t in trades:
        groups.setdefault(fn(t), []).append(float(t["pnl"]))
    rows = [{"key": k, **trade_metrics(v)} for k, v in groups.items()]
    rows.sort(key=lambda r: (r["net_pnl"], r["key"]))
    return rows


def breakdowns(trades: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    return {k: breakdown(trades, k) for k in BREAKDOWN_KEYS}


def _as_dt(v: Any) -> datetime:
    if isinstance(v, datetime):
        return v if v.tzinfo else v.replace(tzinfo=timezone.utc)
    d = datetime.fromisoformat(str(v))
    return d if d.tzinfo else d.replace(tzinfo=timezone.utc)


def _maybe_dt(v: Any) -> datetime | None:
    """An aware datetime from a period bound (ISO text or datetime); None when absent or unreadable."""
    if not v:
        return None
    try:
        return _as_dt(v)
    except (TypeError, ValueError):
        return None


def exposure(trades: list[dict[str, Any]], sessions: list[tuple[datetime, datetime]]) -> dict[str, Any]:
    """Minutes in the market inside the regular ``sessions`` ((open, close) pairs, aware) over
    the sessions' minutes; overlapping trades count once, time outside the sessions (a swing's
    night) not at all."""
    spans = sorted((_as_dt(t["entry_time"]), _as_dt(t["exit_time"])) for t in trades
                   if t.get("entry_time") and t.get("exit_time"))
    merged: list[list[datetime]] = []
    for a, b in spans:
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        elif b > a:
            merged.append([a, b])
    total = sum((c - o).total_seconds() for o, c in sessions) / 60.0
    inside = 0.0
    for a, b in merged:
        for o, c in sessions:
            lo, hi = max(a, o), min(b, c)
            if hi > lo:
                inside += (hi - lo).total_seconds() / 60.0
    return {"minutes_in_market": round(inside, 2), "session_minutes": round(total, 2),
            "exposure_pct": round(inside / total * 100.0, 4) if total > 0 else None}


def cagr_pct(starting_equity: float, ending_equity: float, first: datetime | None, last: datetime | None,
             min_days: float = 365.0) -> float | None:
    """Compound annual growth rate in percent over the calendar span; None when the span is
    shorter than ``min_days`` (annualising weeks of returns says nothing) or equity is <= 0."""
    if first is None or last is None or starting_equity <= 0 or ending_equity <= 0:
        return None
    days = (last - first).total_seconds() / 86_400.0
    if days < min_days:
        return None
    return round(((ending_equity / starting_equity) ** (365.25 / days) - 1.0) * 100.0, 4)


def sortino_ratio(curve: list[tuple[datetime, float]], starting_equity: float) -> float | None:
    """Annualised Sortino of the New York daily closes' returns (``stats.sortino``)."""
    closes = [starting_equity] + [eq for _, eq in daily_closes(curve)]
    s = stats.sortino(stats.simple_returns(closes), stats.TRADING_DAYS_PER_YEAR)
    return None if s is None else round(s, 4)


def build_summary(*, mode: str, start: str | None, end: str | None, symbols: list[str],
                  starting_equity: float, ending_equity: float, trades: list[dict[str, Any]],
                  decisions: list[DecisionRecord], curve: list[tuple[datetime, float]],
                  signals_received: int, bars: int, extra: dict[str, Any] | None = None,
                  sessions: list[tuple[datetime, datetime]] | None = None) -> dict[str, Any]:
    """``sessions``: the regular sessions of the period ((open, close), aware) for the exposure
    figure (None: exposure not computed)."""
    win_rate = stats.win_rate([t["pnl"] for t in trades])
    fees = sum(_meta(t).get("fees", 0.0) for t in trades)
    rejected = Counter(d.reason_code or "unknown" for d in decisions if not d.approved)
    summary = {
        "mode": mode,
        "period": {"start": start, "end": end},
        "symbols": symbols,
        "starting_equity": round(starting_equity, 2),
        "ending_equity": round(ending_equity, 2),
        "total_return_pct": round((ending_equity / starting_equity - 1.0) * 100.0, 4),
        "max_drawdown_pct": max_drawdown_pct([starting_equity] + [eq for _, eq in curve]),
        "sharpe": sharpe_ratio(curve, starting_equity),
        "trades": len(trades),
        "win_rate": None if win_rate is None else round(win_rate, 4),
        "realized_pnl": round(sum(t["pnl"] for t in trades), 2),
        "fees": round(fees, 2),
        "exits_by_reason": dict(sorted(Counter(t["exit_reason"] for t in trades).items())),
        "signals_received": signals_received,
        "signals_approved": sum(1 for d in decisions if d.approved),
        "signals_rejected": sum(rejected.values()),
        "rejected_by_reason": dict(sorted(rejected.items())),
        "bars_processed": bars,
    }
    pnls = [float(t["pnl"]) for t in trades]
    first = _maybe_dt(start) or (curve[0][0] if curve else None)
    last = _maybe_dt(end) or (curve[-1][0] if curve else None)
    summary["metrics"] = {
        "total_return_pct": summary["total_return_pct"],
        "cagr_pct": cagr_pct(starting_equity, ending_equity, first, last),
        "max_drawdown_pct": summary["max_drawdown_pct"],
        "max_drawdown": round(stats.max_drawdown([starting_equity] + [eq for _, eq in curve]).amount, 2) + 0.0,
        "sharpe": summary["sharpe"],
        "sortino": sortino_ratio(curve, starting_equity),
        **trade_metrics(pnls),
        "fees": summary["fees"],
        **(exposure(trades, sessions) if sessions is not None else
           {"minutes_in_market": None, "session_minutes": None, "exposure_pct": None}),
    }
    summary["breakdowns"] = breakdowns(trades)
    if extra:
        summary.update(extra)
    return summary


def _cell(v: Any) -> Any:
    if isinstance(v, datetime):
        return v.isoformat()
    return "" if v is None else v


def write_trades_csv(path: Path, trades: list[dict[str, Any]]) -> None:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(TRADE_COLUMNS)
        for t in trades:
            w.writerow([_cell(t[c]) for c in TRADE_COLUMNS])


DECISION_COLUMNS = ("ts", "signal_id", "ticker", "timeframe", "signal_type", "direction", "conviction",
                    "approved", "reason_code", "reason", "instrument", "instrument_type", "shares",
                    "order_ids", "details")


def write_decisions_csv(path: Path, decisions: list[DecisionRecord]) -> None:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(DECISION_COLUMNS)
        for d in decisions:
            row = asdict(d)
            row["order_ids"] = " ".join(d.order_ids)
            row["details"] = json.dumps(d.details, sort_keys=True, default=str)
            w.writerow([_cell(row[c]) for c in DECISION_COLUMNS])


def _downsample(points: list[tuple[datetime, float]], n: int = 1500) -> list[tuple[datetime, float]]:
    if len(points) <= n:
        return points
    step = len(points) / n
    return [points[int(i * step)] for i in range(n)] + [points[-1]]


def _svg_line(values: list[float], width: int, height: int, color: str, fill: bool = False) -> str:
    if not values:
        return f'<svg width="{width}" height="{height}"></svg>'
    lo, hi = min(values), max(values)
    span = (hi - lo) or 1.0
    pad = 30
    xs = [pad + i * (width - 2 * pad) / max(1, len(values) - 1) for i in range(len(values))]
    ys = [height - pad - (v - lo) / span * (height - 2 * pad) for v in values]
    pts = " ".join(f"{x:.1f},{y:.1f}" for x, y in zip(xs, ys))
    area = ""
    if fill:
        top = height - pad - (0 - lo) / span * (height - 2 * pad) if lo <= 0 <= hi else pad
        area = f'<polygon points="{xs[0]:.1f},{top:.1f} {pts} {xs[-1]:.1f},{top:.1f}" fill="{color}" opacity="0.25"/>'
    return (f'<svg width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg">'
            f'<rect width="100%" height="100%" fill="#fff" stroke="#ddd"/>{area}'
            f'<polyline points="{pts}" fill="none" stroke="{color}" stroke-width="1.5"/>'
            f'<text x="4" y="14" font-size="11">{hi:,.2f}</text>'
            f'<text x="4" y="{height - 6}" font-size="11">{lo:,.2f}</text></svg>')


PALETTE = ("#1f6feb", "#d1242f", "#1a7f37", "#8250df", "#bf8700", "#0a7ea4")
DASHES = ("", "8 4", "2 3", "12 3 2 3")


def _svg_multi_line(series: dict[str, list[tuple[datetime, float]]], width: int, height: int,
                    *, y_label: str = "") -> str:
    """Several time series on one chart with a shared time axis and y scale, and a legend."""
    pad_l, pad_r, pad_t, pad_b = 70, 20, 30, 30
    data = {name: _downsample(pts) for name, pts in series.items() if pts}
    if not data:
        return f'<svg width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg"></svg>'
    t_all = [p[0].timestamp() for pts in data.values() for p in pts]
    v_all = [p[1] for pts in data.values() for p in pts]
    t0, t1 = min(t_all), max(t_all)
    lo, hi = min(v_all), max(v_all)
    tspan = (t1 - t0) or 1.0
    vspan = (hi - lo) or 1.0

    def xy(ts: datetime, v: float) -> tuple[float, float]:
        x = pad_l + (ts.timestamp() - t0) / tspan * (width - pad_l - pad_r)
        y = height - pad_b - (v - lo) / vspan * (height - pad_t - pad_b)
        return x, y

    parts = [f'<svg width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg">',
             '<rect width="100%" height="100%" fill="#fff" stroke="#ddd"/>']
    for frac in (0.0, 0.5, 1.0):
        v = lo + frac * vspan
        y = height - pad_b - frac * (height - pad_t - pad_b)
        parts.append(f'<line x1="{pad_l}" y1="{y:.1f}" x2="{width - pad_r}" y2="{y:.1f}" stroke="#eee"/>'
                     f'<text x="4" y="{y + 4:.1f}" font-size="11">{v:,.2f}</text>')
    for i, (name, pts) in enumerate(data.items()):
        color = PALETTE[i % len(PALETTE)]
        dash = DASHES[i % len(DASHES)]  # so identical curves (e.g. two flat ones) stay visible
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        line = " ".join("{:.1f},{:.1f}".format(*xy(ts, v)) for ts, v in pts)
        parts.append(f'<polyline points="{line}" fill="none" stroke="{color}" stroke-width="1.5"{dash_attr}>'
                     f'<title>{html.escape(name)}</title></polyline>')
        lx = pad_l + i * 160
        parts.append(f'<line x1="{lx}" y1="14" x2="{lx + 22}" y2="14" stroke="{color}" stroke-width="3"{dash_attr}/>'
                     f'<text x="{lx + 26}" y="18" font-size="12">{html.escape(name)}</text>')
    first = datetime.fromtimestamp(t0).astimezone(NY).strftime("%Y-%m-%d")
    last = datetime.fromtimestamp(t1).astimezone(NY).strftime("%Y-%m-%d")
    parts.append(f'<text x="{pad_l}" y="{height - 8}" font-size="11">{first}</text>'
                 f'<text x="{width - pad_r}" y="{height - 8}" font-size="11" text-anchor="end">{last}</text>')
    if y_label:
        parts.append(f'<text x="{width - pad_r}" y="{pad_t - 8}" font-size="11" text-anchor="end">'
                     f'{html.escape(y_label)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def synthetic_note(summary: dict[str, Any]) -> str:
    """An HTML paragraph flagging synthetic instruments ('' when there are none)."""
    syn = summary.get("synthetic_instruments") or {}
    if not syn:
        return ""
    items = ", ".join(
        f"{html.escape(t)} ({d['leverage']:+g}x daily-reset from {html.escape(d['underlying'])}, "
        f"start {d['start_price']:,.2f})" for t, d in sorted(syn.items()))
    return ('<p class="synthetic" style="background:#fff8c5;border:1px solid #d4a72c;padding:6px">'
            f"<b>synthetic</b> leveraged-ETF bars (not market data; volume is a placeholder): {items}</p>")


def _minmax_idx(values: list[float], n: int = 1500) -> list[int]:
    """Indices of at most about ``2 n`` points for a chart, keeping each bucket's lowest and
    highest value in their order: the drawn extremes are the series' own (a drawdown's trough is
    never skipped)."""
    if len(values) <= 2 * n:
        return list(range(len(values)))
    out: list[int] = []
    step = len(values) / n
    for b in range(n):
        a, z = int(b * step), max(int((b + 1) * step), int(b * step) + 1)
        lo = min(range(a, z), key=values.__getitem__)
        hi = max(range(a, z), key=values.__getitem__)
        out.extend(sorted({lo, hi}))
    return out


def _minmax(values: list[float], n: int = 1500) -> list[float]:
    return [values[i] for i in _minmax_idx(values, n)]


def chart_series(curve: list[tuple[datetime, float]], starting_equity: float) -> tuple[list[float], list[float]]:
    """The equity and drawdown (%) values the report draws: computed on the full series (the
    starting equity, then every point) and only then thinned (``_minmax``), so the deepest
    drawdown drawn is the summary's ``max_drawdown_pct``."""
    eq = [starting_equity] + [v for _, v in curve]
    return _minmax(eq), _minmax(drawdown_series(eq))


def chart_points(curve: list[tuple[datetime, float]], starting_equity: float
                 ) -> tuple[list[datetime], list[float], list[datetime], list[float]]:
    """``chart_series`` with the times: (equity times, equity, drawdown times, drawdown %); the
    starting equity is placed at the first point's time."""
    if not curve:
        return [], [], [], []
    times = [curve[0][0]] + [t for t, _ in curve]
    eq = [starting_equity] + [v for _, v in curve]
    dd = drawdown_series(eq)
    ie, idd = _minmax_idx(eq), _minmax_idx(dd)
    return [times[i] for i in ie], [eq[i] for i in ie], [times[i] for i in idd], [dd[i] for i in idd]


def ny(v: Any) -> str:
    """A time as New York wall time, 'YYYY-MM-DD HH:MM' ('' for none)."""
    if v is None or v == "":
        return ""
    return _as_dt(v).astimezone(NY).strftime("%Y-%m-%d %H:%M")


def utc(v: Any) -> str:
    if v is None or v == "":
        return ""
    return _as_dt(v).astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M")


def _money(v: Any) -> str:
    return "n/a" if v is None else f"{v:,.2f}"


def _pct(v: Any, nd: int = 2) -> str:
    return "n/a" if v is None else f"{v:,.{nd}f} %"


def _num(v: Any, nd: int = 2) -> str:
    return "n/a" if v is None else f"{v:,.{nd}f}"


def headline_rows(summary: dict[str, Any]) -> list[tuple[str, str]]:
    """The report's headline table: (label, formatted value)."""
    m = summary.get("metrics") or {}
    wr = m.get("win_rate")
    exp_min = m.get("minutes_in_market")
    return [
        ("Net return", _pct(summary.get("total_return_pct"))),
        ("Equity", f"{_money(summary.get('starting_equity'))} → {_money(summary.get('ending_equity'))}"),
        ("CAGR", _pct(m.get("cagr_pct")) if m.get("cagr_pct") is not None else "n/a (period under a year)"),
        ("Max drawdown", f"{_pct(summary.get('max_drawdown_pct'))} ({_money(m.get('max_drawdown'))})"),
        ("Sharpe (daily, annualised)", _num(summary.get("sharpe"))),
        ("Sortino (daily, annualised)", _num(m.get("sortino"))),
        ("Trades", f"{m.get('trades', summary.get('trades', 0)):,} ({m.get('wins', 0):,} won, {m.get('losses', 0):,} lost)"),
        ("Win rate", "n/a" if wr is None else f"{wr * 100:.2f} %"),
        ("Net P&L (after fees)", _money(m.get("net_pnl"))),
        ("Profit factor", _num(m.get("profit_factor"))),
        ("Expectancy (per trade)", _money(m.get("expectancy"))),
        ("Average win / average loss", f"{_money(m.get('avg_win'))} / {_money(m.get('avg_loss'))}"),
        ("Largest win / largest loss", f"{_money(m.get('largest_win'))} / {_money(m.get('largest_loss'))}"),
        ("Exposure (time in market, regular sessions)",
         "n/a" if m.get("exposure_pct") is None else
         f"{m['exposure_pct']:.2f} % ({exp_min:,.0f} of {m['session_minutes']:,.0f} min)"),
        ("Fees", _money(summary.get("fees"))),
        ("Period (New York)", f"{ny(summary.get('first_bar'))} → {ny(summary.get('last_bar'))}"
         if summary.get("first_bar") else f"{summary.get('period', {}).get('start')} → {summary.get('period', {}).get('end')}"),
        ("Signals", f"{summary.get('signals_received', 0):,} received, {summary.get('signals_approved', 0):,} approved, "
                    f"{summary.get('signals_rejected', 0):,} rejected"),
    ]


BREAKDOWN_TITLES = {"exit_reason": "exit reason", "symbol": "symbol", "instrument": "instrument",
                    "timeframe": "timeframe", "entry_tactic": "entry tactic"}


def breakdown_table(rows: list[dict[str, Any]], title: str) -> str:
    """One breakdown as an HTML table (losing groups in red)."""
    head = ("<tr><th>" + html.escape(title) + "</th><th>trades</th><th>win rate</th><th>net P&amp;L</th>"
            "<th>avg win</th><th>avg loss</th><th>profit factor</th><th>expectancy</th></tr>")
    body = ""
    for r in rows:
        wr = "n/a" if r["win_rate"] is None else f"{r['win_rate'] * 100:.1f} %"
        cls = "neg" if (r["net_pnl"] or 0) < 0 else "pos"
        body += (f'<tr class="{cls}"><th>{html.escape(str(r["key"]))}</th><td>{r["trades"]:,}</td><td>{wr}</td>'
                 f'<td>{_money(r["net_pnl"])}</td><td>{_money(r["avg_win"])}</td><td>{_money(r["avg_loss"])}</td>'
                 f'<td>{_num(r["profit_factor"])}</td><td>{_money(r["expectancy"])}</td></tr>')
    return f'<table class="bd">{head}{body}</table>'


def breakdowns_html(bds: dict[str, list[dict[str, Any]]]) -> str:
    return "".join(f'<div class="bdw"><h3>By {html.escape(BREAKDOWN_TITLES.get(k, k))}</h3>{breakdown_table(v, BREAKDOWN_TITLES.get(k, k))}</div>'
                   for k, v in bds.items())


def _plain(v: Any) -> str:
    """A summary value as text a person reads: dicts as 'k: v' lines, lists comma-separated."""
    if isinstance(v, dict):
        if not v:
            return "none"
        return "<br>".join(f"{html.escape(str(k))}: {_plain(x)}" for k, x in v.items())
    if isinstance(v, (list, tuple)):
        return ", ".join(_plain(x) for x in v) if v else "none"
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:,.4g}" if abs(v) < 1e6 else f"{v:,.2f}"
    return html.escape(str(v))


TRADE_TABLE_COLUMNS = ("entry", "exit", "ticker", "instrument", "dir", "type", "timeframe", "tactic", "shares",
                       "entry px", "exit px", "exit reason", "pnl", "pnl %")


def trade_table_rows(trades: list[dict[str, Any]], synthetic: set[str] = frozenset()) -> list[list[Any]]:
    """Every trade as a row of the report's table: entry and exit in New York time, then UTC
    (the table's UTC switch), then TRADE_TABLE_COLUMNS[2:]."""
    out = []
    for t in trades:
        m = _meta(t)
        ticker = str(t.get("ticker") or "")
        out.append([ny(t.get("entry_time")), ny(t.get("exit_time")), utc(t.get("entry_time")), utc(t.get("exit_time")),
                    ticker + (" (synthetic)" if ticker in synthetic else ""), t.get("instrument_type") or "",
                    t.get("direction") or "", t.get("trade_type") or "", m.get("timeframe") or "",
                    m.get("entry_tactic") or "", t.get("shares"), t.get("entry_price"), t.get("exit_price"),
                    t.get("exit_reason") or "", round(float(t["pnl"]), 2),
                    None if t.get("pnl_pct") in (None, "") else round(float(t["pnl_pct"]) * 100, 4)])
    return out


_TABLE_JS = r"""
(function(){
const data=JSON.parse(document.getElementById('trades-data').textContent);
const names=%COLS%;
let col=0, dir=1, page=0, size=100, zone='ny', q='';
const tbl=document.getElementById('trades'), info=document.getElementById('tinfo');
function val(r,i){ if(i<2) return zone==='ny'? r[i] : r[i+2]; return r[i+2]; }
function rows(){ let r=data; if(q){ const s=q.toLowerCase(); r=r.filter(x=>x.join(' ').toLowerCase().includes(s)); }
  return [...r].sort((a,b)=>{ const x=val(a,col), y=val(b,col);
    if(typeof x==='number' && typeof y==='number') return (x-y)*dir; return String(x).localeCompare(String(y))*dir; }); }
function render(){ const r=rows(); const n=size>0?size:r.length||1; const pages=Math.max(1,Math.ceil(r.length/n));
  page=Math.min(page,pages-1); const part=r.slice(page*n,page*n+n);
  let h='<tr>'+names.map((c,i)=>'<th data-i="'+i+'">'+(i<2?c+(zone==='ny'?' (NY)':' (UTC)'):c)+(i===col?(dir>0?' ▲':' ▼'):'')+'</th>').join('')+'</tr>';
  for(const x of part){ h+='<tr'+(x[14]<0?' class="neg"':'')+'>'+names.map((c,i)=>'<td>'+(val(x,i)===null?'':String(val(x,i)).replace(/&/g,'&amp;').replace(/</g,'&lt;'))+'</td>').join('')+'</tr>'; }
  tbl.innerHTML=h; info.textContent=r.length+' of '+data.length+' trades, page '+(page+1)+' of '+pages;
  tbl.querySelectorAll('th').forEach(th=>th.onclick=()=>{ const i=+th.dataset.i; if(i===col) dir=-dir; else {col=i; dir=1;} render(); }); }
document.getElementById('tsearch').oninput=e=>{ q=e.target.value; page=0; render(); };
document.getElementById('tsize').onchange=e=>{ size=+e.target.value; page=0; render(); };
document.getElementById('tzone').onchange=e=>{ zone=e.target.value; render(); };
document.getElementById('tprev').onclick=()=>{ page=Math.max(0,page-1); render(); };
document.getElementById('tnext').onclick=()=>{ page=page+1; render(); };
render();
})();
"""

CSS = """body{font-family:system-ui,sans-serif;margin:20px;color:#1f2328}
table{border-collapse:collapse;font-size:12px;margin-bottom:8px}
td,th{border:1px solid #d0d7de;padding:3px 8px;text-align:left}
td{text-align:right} th{background:#f6f8fa}
.head td{text-align:left;font-size:14px}.head th{font-size:14px;font-weight:500}
tr.neg td{color:#cf222e} .bdw{display:inline-block;vertical-align:top;margin-right:16px}
#trades th{cursor:pointer;position:sticky;top:0} .ctl{margin:6px 0}"""


def write_html(path: Path, summary: dict[str, Any], curve: list[tuple[datetime, float]],
               trades: list[dict[str, Any]], title: str = "Backtest report", charts: str = "auto") -> None:
    """report.html; with Plotly (the dashboard's charting library, ``strategies.charts``) its
    charts are Plotly figures and plotly.min.js is written beside it, else inline SVG."""
    from strategies import charts as plotly_charts

    use = plotly_charts.available() if charts == "auto" else charts == "plotly"
    path.write_text(render_html(summary, curve, trades, title, charts="plotly" if use else "svg"))
    if use:
        plotly_charts.write_plotly_js(path.parent)


def _charts_html(summary: dict[str, Any], curve: list[tuple[datetime, float]], bds: dict[str, Any],
                 kind: str) -> tuple[str, str, str]:
    """(script tag for the head, the equity + drawdown charts, the P&L-by-exit-reason chart)."""
    start = float(summary.get("starting_equity") or (curve[0][1] if curve else 0.0))
    deepest = f"deepest {_pct(summary.get('max_drawdown_pct'))}"
    first = ny(curve[0][0]) if curve else ""
    last = ny(curve[-1][0]) if curve else ""
    if kind == "plotly":
        from strategies import charts as plotly_charts

        et, ev, dt, dv = chart_points(curve, start)
        fig = plotly_charts.equity_drawdown_figure(et, ev, dt, dv)  # dv: percent already
        eq_html = (f"<h2>Equity and drawdown</h2><p>{html.escape(first)} &rarr; {html.escape(last)} (New York time); "
                   f"drawdown from the running peak on every equity point, {deepest}.</p>"
                   + plotly_charts.to_div(fig, "equity"))
        exits = bds.get("exit_reason") or []
        bar = plotly_charts.to_div(plotly_charts.pnl_by_group_figure(exits, "Net P&L by exit reason"), "pnl_exit") \
            if exits else ""
        return f'<script src="{plotly_charts.PLOTLY_JS}"></script>', eq_html, bar
    eq, dd = chart_series(curve, start)
    eq_html = (f"<h2>Equity</h2><p>{html.escape(first)} &rarr; {html.escape(last)} (New York time)</p>"
               f"{_svg_line(eq, 960, 280, '#1f6feb')}<h2>Drawdown (%)</h2><p>From the running peak, on every "
               f"equity point; {deepest}.</p>{_svg_line(dd, 960, 160, '#d1242f', fill=True)}")
    return "", eq_html, ""


def render_html(summary: dict[str, Any], curve: list[tuple[datetime, float]],
                trades: list[dict[str, Any]], title: str = "Backtest report", charts: str = "svg") -> str:
    """The report page; ``charts``: "plotly" (needs plotly.min.js beside the page) or "svg"."""
    synthetic = set(summary.get("synthetic_instruments") or {})
    head = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in headline_rows(summary))
    bds = summary.get("breakdowns") or breakdowns(trades)
    script, eq_html, exit_chart = _charts_html(summary, curve, bds, charts)
    rejected = summary.get("rejected_by_reason") or {}
    rej = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{v:,}</td></tr>"
                  for k, v in sorted(rejected.items(), key=lambda kv: -kv[1]))
    skip = {"metrics", "breakdowns", "rejected_by_reason", "exits_by_reason"}
    details = "".join(f"<tr><th>{html.escape(str(k))}</th><td style='text-align:left'>{_plain(v)}</td></tr>"
                      for k, v in summary.items() if k not in skip)
    data = json.dumps(trade_table_rows(trades, synthetic)).replace("</", "<\\/")
    js = _TABLE_JS.replace("%COLS%", json.dumps(list(TRADE_TABLE_COLUMNS)))
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>{CSS}</style>{script}</head><body>
<h1>{html.escape(title)}</h1>{synthetic_note(summary)}
<h2>Summary</h2><table class="head">{head}</table>
<h2>Where the P&amp;L came from</h2><p>Net P&amp;L after fees per group, worst first; red: the group lost money.</p>
{exit_chart}
{breakdowns_html(bds)}
{eq_html}
<h2>Trades ({len(trades):,})</h2>
<div class="ctl"><input id="tsearch" placeholder="search (ticker, exit reason, ...)" size="32">
times <select id="tzone"><option value="ny">New York</option><option value="utc">UTC</option></select>
rows per page <select id="tsize"><option>100</option><option>500</option><option value="0">all</option></select>
<button id="tprev">&larr;</button><button id="tnext">&rarr;</button> <span id="tinfo"></span></div>
<noscript>The trade table needs JavaScript; every trade is also in trades.csv.</noscript>
<table id="trades"></table>
<script type="application/json" id="trades-data">{data}</script>
<script>{js}</script>
<h2>Signals rejected, by reason</h2><table>{rej}</table>
<h2>Run details</h2><table>{details}</table>
</body></html>"""
