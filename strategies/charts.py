"""Plotly figures shared by the backtest report (backtests/report.py) and the operator dashboard
(app/, which draws with Plotly too): the equity curve over its drawdown, and net P&L per group.

Plotly is the dashboard's library (the ``dashboard`` extra); without it ``available()`` is False
and the report falls back to its inline SVG charts. Figures are built from plain lists; times are
shown as New York wall time (aware datetimes are converted, naive ones taken as they are).
Standalone HTML loads ``plotly.min.js`` from beside the page (``write_plotly_js``): offline, one
copy per output folder.
"""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path
from typing import Any, Sequence
from zoneinfo import ZoneInfo

NY = ZoneInfo("America/New_York")
GREEN, RED, BLUE = "#1a7f37", "#cf222e", "#1f6feb"
PLOTLY_JS = "plotly.min.js"


def available() -> bool:
    try:
        import plotly  # noqa: F401
    except ImportError:
        return False
    return True


def ny_wall(ts: Sequence[datetime]) -> list[datetime]:
    """Aware times as naive New York wall time (what the axis shows)."""
    return [t.astimezone(NY).replace(tzinfo=None) if t.tzinfo is not None else t for t in ts]


def equity_drawdown_figure(eq_times: Sequence[datetime], equity: Sequence[float], dd_times: Sequence[datetime],
                           drawdown_pct: Sequence[float], title: str = "") -> Any:
    """Two rows on one time axis: the equity curve and the drawdown from its running peak (%, <= 0)."""
    from plotly.subplots import make_subplots
    import plotly.graph_objects as go

    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.68, 0.32], vertical_spacing=0.04)
    fig.add_trace(go.Scatter(x=ny_wall(eq_times), y=list(equity), mode="lines", name="equity",
                             line={"color": BLUE, "width": 1.5}), row=1, col=1)
    fig.add_trace(go.Scatter(x=ny_wall(dd_times), y=list(drawdown_pct), mode="lines", name="drawdown %",
                             fill="tozeroy", line={"color": RED, "width": 1}), row=2, col=1)
    fig.update_yaxes(title_text="equity (USD)", row=1, col=1)
    fig.update_yaxes(title_text="drawdown (%)", row=2, col=1)
    fig.update_xaxes(title_text="New York time", row=2, col=1)
    fig.update_layout(title=title or None, height=520, margin={"l": 60, "r": 20, "t": 40 if title else 20, "b": 40},
                      showlegend=False, hovermode="x unified", template="plotly_white")
    return fig


def equity_curves_figure(series: dict[str, tuple[Sequence[datetime], Sequence[float]]], title: str = "") -> Any:
    """Several equity curves on one time axis (e.g. compare's modes), one line each."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for name, (times, values) in series.items():
        fig.add_trace(go.Scatter(x=ny_wall(times), y=list(values), mode="lines", name=name, line={"width": 1.5}))
    fig.update_layout(title=title or None, height=420, template="plotly_white", hovermode="x unified",
                      yaxis_title="equity (USD)", xaxis_title="New York time",
                      margin={"l": 60, "r": 20, "t": 40 if title else 20, "b": 40})
    return fig


def pnl_by_group_figure(rows: Sequence[dict[str, Any]], title: str) -> Any:
    """Horizontal bars of net P&L per group (``rows``: ``{"key", "net_pnl", "trades"}``), losers red."""
    import plotly.graph_objects as go

    keys = [str(r["key"]) for r in rows]
    pnl = [float(r["net_pnl"] or 0.0) for r in rows]
    fig = go.Figure(go.Bar(x=pnl, y=keys, orientation="h", marker_color=[RED if v < 0 else GREEN for v in pnl],
                           text=[f"{v:,.2f} ({r['trades']})" for v, r in zip(pnl, rows)], textposition="auto",
                           hovertemplate="%{y}: %{x:,.2f}<extra></extra>"))
    fig.update_layout(title=title, height=max(160, 42 * len(rows) + 80), template="plotly_white",
                      margin={"l": 140, "r": 20, "t": 40, "b": 30}, xaxis_title="net P&L (USD)")
    return fig


def to_div(fig: Any, div_id: str) -> str:
    """The figure as an HTML fragment (needs plotly.min.js loaded by the page)."""
    return fig.to_html(full_html=False, include_plotlyjs=False, div_id=div_id,
                       config={"displaylogo": False, "responsive": True})


def write_plotly_js(folder: Path) -> Path:
    """Copy Plotly's bundled plotly.min.js into ``folder`` (once) and return its path."""
    import plotly

    src = Path(plotly.__file__).parent / "package_data" / PLOTLY_JS
    dst = Path(folder) / PLOTLY_JS
    if not dst.is_file() or dst.stat().st_size != src.stat().st_size:
        shutil.copyfile(src, dst)
    return dst


__all__ = ["PLOTLY_JS", "available", "equity_curves_figure", "equity_drawdown_figure", "ny_wall", "pnl_by_group_figure", "to_div",
           "write_plotly_js"]
