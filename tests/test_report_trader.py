"""report.html / summary.json answer a trader's questions (issue #17), on a hand-built set of four
trades whose every figure is worked out below."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone

import pytest

from backtests import report
from backtests.compare import breakdowns_by_mode_html, metrics_html

UTC = timezone.utc
D1_OPEN, D1_CLOSE = datetime(2025, 6, 16, 13, 30, tzinfo=UTC), datetime(2025, 6, 16, 20, 0, tzinfo=UTC)
D2_OPEN, D2_CLOSE = datetime(2025, 6, 17, 13, 30, tzinfo=UTC), datetime(2025, 6, 17, 20, 0, tzinfo=UTC)
SESSIONS = [(D1_OPEN, D1_CLOSE), (D2_OPEN, D2_CLOSE)]  # 390 + 390 = 780 minutes


def _t(ticker, orig, itype, tf, tactic, reason, pnl, entry, exit_, direction="long"):
    return {"signal_id": f"{orig}-{entry:%H%M}", "ticker": ticker, "original_ticker": orig, "instrument_type": itype,
            "direction": direction, "trade_type": "scalp", "shares": 10, "entry_price": 100.0, "exit_price": 101.0,
            "exit_reason": reason, "pnl": pnl, "pnl_pct": pnl / 1000.0, "entry_time": entry, "exit_time": exit_,
            "metadata_json": json.dumps({"timeframe": tf, "entry_tactic": tactic, "fees": 0.5})}


def at(day_open, minutes):
    return day_open + timedelta(minutes=minutes)


TRADES = [
    # 14:00-14:30 and 14:15-15:00 overlap: 60 minutes in the market, counted once
    _t("QQQ", "QQQ", "stock", "1m", "limit_at_cloud", "cloud_flip", -10.0, at(D1_OPEN, 30), at(D1_OPEN, 60)),
    _t("QQQ", "QQQ", "stock", "10m", "market", "momentum_exhaustion", 30.0, at(D1_OPEN, 45), at(D1_OPEN, 90), "short"),
    # 16:00-16:10: 10 minutes
    _t("SPXL", "SPY", "leveraged_etf", "1m", "scale_in", "stop_loss", -20.0, at(D1_OPEN, 150), at(D1_OPEN, 160)),
    # a swing held overnight 19:50 -> 13:40 next day: 10 + 10 minutes inside the sessions
    _t("SPY", "SPY", "stock", "1h", "limit_at_cloud", "momentum_exhaustion", 50.0, at(D1_OPEN, 380), at(D2_OPEN, 10)),
]


def test_trade_metrics_by_hand():
    m = report.trade_metrics([t["pnl"] for t in TRADES])  # -10, +30, -20, +50
    assert m == {"trades": 4, "wins": 2, "losses": 2, "win_rate": 0.5, "net_pnl": 50.0, "gross_profit": 80.0,
                 "gross_loss": -30.0, "avg_win": 40.0, "avg_loss": -15.0, "profit_factor": 2.6667,
                 "expectancy": 12.5, "largest_win": 50.0, "largest_loss": -20.0}
    empty = report.trade_metrics([])
    assert empty["trades"] == 0 and empty["win_rate"] is None and empty["profit_factor"] is None
    assert empty["avg_win"] is None and empty["expectancy"] is None


def test_breakdowns_worst_first():
    b = report.breakdowns(TRADES)
    assert [(r["key"], r["trades"], r["net_pnl"]) for r in b["exit_reason"]] == [
        ("stop_loss", 1, -20.0), ("cloud_flip", 1, -10.0), ("momentum_exhaustion", 2, 80.0)]
    me = b["exit_reason"][2]
    assert me["win_rate"] == 1.0 and me["avg_win"] == 40.0 and me["avg_loss"] is None and me["profit_factor"] is None
    assert [(r["key"], r["net_pnl"]) for r in b["symbol"]] == [("QQQ", 20.0), ("SPY", 30.0)]
    assert [(r["key"], r["net_pnl"]) for r in b["instrument"]] == [("leveraged_etf", -20.0), ("stock", 70.0)]
    assert [(r["key"], r["trades"], r["net_pnl"]) for r in b["timeframe"]] == [
        ("1m", 2, -30.0), ("10m", 1, 30.0), ("1h", 1, 50.0)]
    assert [(r["key"], r["net_pnl"]) for r in b["entry_tactic"]] == [
        ("scale_in", -20.0), ("market", 30.0), ("limit_at_cloud", 40.0)]
    qqq = b["symbol"][0]
    assert qqq["avg_win"] == 30.0 and qqq["avg_loss"] == -10.0 and qqq["profit_factor"] == 3.0
    assert qqq["expectancy"] == 10.0


def test_exposure_counts_overlaps_once_and_only_session_time():
    e = report.exposure(TRADES, SESSIONS)
    assert e == {"minutes_in_market": 90.0, "session_minutes": 780.0, "exposure_pct": round(90 / 780 * 100, 4)}
    assert e["exposure_pct"] == 11.5385
    assert report.exposure([], SESSIONS)["exposure_pct"] == 0.0
    assert report.exposure(TRADES, [])["exposure_pct"] is None


def test_cagr_only_over_a_year():
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    assert report.cagr_pct(100_000, 121_000, t0, t0 + timedelta(days=730.5)) == pytest.approx(10.0)
    assert report.cagr_pct(100_000, 121_000, t0, t0 + timedelta(days=30)) is None
    assert report.cagr_pct(100_000, 0.0, t0, t0 + timedelta(days=800)) is None


CURVE = [(at(D1_OPEN, 10), 100_100.0), (at(D1_OPEN, 60), 99_900.0), (at(D1_OPEN, 200), 100_200.0),
         (at(D1_CLOSE, -1), 99_700.0), (at(D2_OPEN, 30), 100_050.0)]


def _summary():
    return report.build_summary(mode="stock", start=None, end=None, symbols=["QQQ", "SPY"], starting_equity=100_000.0,
                                ending_equity=100_050.0, trades=TRADES, decisions=[], curve=CURVE,
                                signals_received=7, bars=100, sessions=SESSIONS,
                                extra={"first_bar": D1_OPEN.isoformat(), "last_bar": D2_CLOSE.isoformat()})


def test_summary_metrics_and_drawdown():
    s = _summary()
    m = s["metrics"]
    # peak 100,200 -> trough 99,700: 500 / 100,200 = 0.4990 %
    assert s["max_drawdown_pct"] == 0.499 and m["max_drawdown_pct"] == 0.499 and m["max_drawdown"] == 500.0
    assert m["profit_factor"] == 2.6667 and m["expectancy"] == 12.5 and m["win_rate"] == 0.5
    assert m["exposure_pct"] == 11.5385 and m["cagr_pct"] is None  # two sessions: no CAGR
    # daily closes 99,700 (06-16), 100,050 (06-17) after 100,000: returns -0.3 %, +0.351 %
    r1, r2 = 99_700 / 100_000 - 1, 100_050 / 99_700 - 1
    assert m["sortino"] == round((r1 + r2) / 2 / (r1 * r1 / 2) ** 0.5 * 252 ** 0.5, 4)
    assert [r["key"] for r in s["breakdowns"]["exit_reason"]] == ["stop_loss", "cloud_flip", "momentum_exhaustion"]
    rows = dict(report.headline_rows(s))
    assert rows["Win rate"] == "50.00 %"
    assert rows["Profit factor"] == "2.67"
    assert rows["Average win / average loss"] == "40.00 / -15.00"
    assert rows["Exposure (time in market, regular sessions)"] == "11.54 % (90 of 780 min)"
    assert rows["Max drawdown"] == "0.50 % (500.00)"
    assert rows["Period (New York)"] == "2025-06-16 09:30 → 2025-06-17 16:00"


def test_drawdown_chart_is_the_full_series_one():
    # 10,000 points, one dip at index 5,001 that a stride sample (every 6.67th point) skips
    t0 = D1_OPEN
    curve = [(t0 + timedelta(minutes=i), 100_000.0 + (i % 2)) for i in range(10_000)]
    curve[5_001] = (curve[5_001][0], 97_000.0)
    eq, dd = report.chart_series(curve, 100_000.0)
    full = report.max_drawdown_pct([100_000.0] + [v for _, v in curve])
    assert full == pytest.approx(100 * (1 - 97_000 / 100_001), abs=1e-4)
    assert -min(dd) == pytest.approx(full, abs=1e-4)  # the chart's deepest point is the summary's
    assert min(eq) == 97_000.0 and len(eq) <= 3_000 and len(dd) <= 3_000
    old = [v for _, v in report._downsample(curve)]  # what the report drew before: the dip is gone
    assert min(old) > 97_000.0


def test_times_in_new_york_with_utc_available():
    assert report.ny("2025-06-16T14:00:00+00:00") == "2025-06-16 10:00"
    assert report.ny(datetime(2025, 1, 15, 15, 0, tzinfo=UTC)) == "2025-01-15 10:00"  # EST in winter
    assert report.utc("2025-06-16T14:00:00+00:00") == "2025-06-16 14:00"
    row = report.trade_table_rows(TRADES[:1])[0]
    assert row[:4] == ["2025-06-16 10:00", "2025-06-16 10:30", "2025-06-16 14:00", "2025-06-16 14:30"]
    assert row[4:10] == ["QQQ", "stock", "long", "scalp", "1m", "limit_at_cloud"]
    assert row[13:] == ["cloud_flip", -10.0, -1.0]


def test_html_has_every_trade_breakdowns_and_no_json_dump():
    many = [dict(TRADES[i % 4], signal_id=f"S{i}") for i in range(1_203)]
    s = _summary()
    doc = report.render_html(s, CURVE, many, title="t")
    data = json.loads(re.search(r'<script type="application/json" id="trades-data">(.*?)</script>', doc, re.S)
                      .group(1).replace("<\\/", "</"))
    assert len(data) == 1_203  # no 500-row cap
    assert "first 500" not in doc and "Trades (1,203)" in doc
    for title in ("By exit reason", "By symbol", "By instrument", "By timeframe", "By entry tactic"):
        assert title in doc
    assert '<tr class="neg"><th>stop_loss</th><td>1</td><td>0.0 %</td><td>-20.00</td>' in doc
    assert "New York" in doc and 'value="utc"' in doc  # the UTC switch
    assert '{"' not in doc.split('<script type="application/json"')[0]  # the summary is a table, not JSON


def test_compare_html_has_breakdowns_per_mode():
    s = _summary()
    s2 = dict(s, breakdowns=report.breakdowns(TRADES[:2]), metrics=dict(s["metrics"], profit_factor=3.0))
    doc = breakdowns_by_mode_html({"stock": s, "leveraged_etf": s2})
    assert "By exit reason" in doc and "By entry tactic" in doc
    assert '<tr><th>stop_loss</th><td style="color:#cf222e">-20.00 (1, 0 %)</td><td></td></tr>' in doc
    m = metrics_html({"stock": s, "leveraged_etf": s2})
    assert "<tr><th>profit factor</th><td>2.6667</td><td>3</td></tr>" in m


def test_chart_points_keep_times_and_the_trough():
    et, ev, dt, dv = report.chart_points(CURVE, 100_000.0)
    assert et[0] == CURVE[0][0] and ev[0] == 100_000.0  # the starting equity at the first point's time
    assert len(et) == len(ev) == 6 and len(dt) == len(dv) == 6
    assert min(dv) == pytest.approx(-0.499, abs=1e-3) and dt[dv.index(min(dv))] == at(D1_CLOSE, -1)
    assert report.chart_points([], 1.0) == ([], [], [], [])


def test_report_charts_with_plotly_and_without(tmp_path):
    pytest.importorskip("plotly")
    from strategies import charts

    s = _summary()
    out = tmp_path / "r"
    out.mkdir()
    report.write_html(out / "report.html", s, CURVE, TRADES, charts="plotly")
    doc = (out / "report.html").read_text()
    assert '<script src="plotly.min.js"></script>' in doc and 'id="equity"' in doc and 'id="pnl_exit"' in doc
    assert (out / "plotly.min.js").stat().st_size > 1_000_000  # offline: the library beside the page
    et, ev, dt, dv = report.chart_points(CURVE, 100_000.0)
    fig = charts.equity_drawdown_figure(et, ev, dt, dv)
    assert min(fig.data[1].y) == pytest.approx(-s["max_drawdown_pct"], abs=1e-4)  # the summary's figure
    assert fig.data[0].x[0] == datetime(2025, 6, 16, 9, 40)  # New York wall time (13:40 UTC)
    bars = charts.pnl_by_group_figure(s["breakdowns"]["exit_reason"], "t")
    assert list(bars.data[0].y) == ["stop_loss", "cloud_flip", "momentum_exhaustion"]
    assert list(bars.data[0].marker.color) == [charts.RED, charts.RED, charts.GREEN]
    svg = tmp_path / "s"
    svg.mkdir()
    report.write_html(svg / "report.html", s, CURVE, TRADES, charts="svg")
    doc = (svg / "report.html").read_text()
    assert "plotly" not in doc and "<svg" in doc and not (svg / "plotly.min.js").exists()
