"""Backtest outputs: summary.json, trades.csv, decisions.csv and a self-contained HTML report.

Pure functions over what the executor recorded (ExecutionLog); no plotting library needed: the
equity curve and drawdown are drawn as inline SVG so the report opens anywhere, offline.
"""

from __future__ import annotations

import csv
import html
import json
from collections import Counter
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any
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


def build_summary(*, mode: str, start: str | None, end: str | None, symbols: list[str],
                  starting_equity: float, ending_equity: float, trades: list[dict[str, Any]],
                  decisions: list[DecisionRecord], curve: list[tuple[datetime, float]],
                  signals_received: int, bars: int, extra: dict[str, Any] | None = None) -> dict[str, Any]:
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


def write_html(path: Path, summary: dict[str, Any], curve: list[tuple[datetime, float]],
               trades: list[dict[str, Any]], title: str = "Backtest report") -> None:
    synthetic = set(summary.get("synthetic_instruments") or {})
    pts = _downsample(curve)
    eq = [v for _, v in pts]
    dd = drawdown_series(eq)
    first = pts[0][0].isoformat() if pts else ""
    last = pts[-1][0].isoformat() if pts else ""
    rows = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(json.dumps(v))}</td></tr>"
                   for k, v in summary.items())
    def label(t: dict[str, Any], c: str) -> str:
        v = str(_cell(t[c]))
        return f"{v} (synthetic)" if c == "ticker" and v in synthetic else v

    trade_rows = "".join(
        "<tr>" + "".join(f"<td>{html.escape(label(t, c))}</td>" for c in
                         ("entry_time", "exit_time", "ticker", "direction", "shares", "entry_price",
                          "exit_price", "exit_reason", "pnl")) + "</tr>"
        for t in trades[:500])
    doc = f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:20px}}table{{border-collapse:collapse;font-size:12px}}
td,th{{border:1px solid #ccc;padding:3px 6px;text-align:left}}</style></head><body>
<h1>{html.escape(title)}</h1>{synthetic_note(summary)}
<h2>Equity</h2><p>{html.escape(first)} &rarr; {html.escape(last)}</p>{_svg_line(eq, 960, 280, "#1f6feb")}
<h2>Drawdown (%)</h2>{_svg_line(dd, 960, 160, "#d1242f", fill=True)}
<h2>Summary</h2><table>{rows}</table>
<h2>Trades ({len(trades)}{", first 500 shown" if len(trades) > 500 else ""})</h2>
<table><tr><th>entry</th><th>exit</th><th>ticker</th><th>dir</th><th>shares</th><th>entry px</th>
<th>exit px</th><th>exit reason</th><th>pnl</th></tr>{trade_rows}</table></body></html>"""
    path.write_text(doc)
