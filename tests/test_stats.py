"""strategies.stats: the one P&L formula and the performance statistics, on hand-computed values."""

from __future__ import annotations

import math

import pytest

from strategies import stats


def test_round_trip_pnl() -> None:
    # long 150 @ 100.01 -> 101.99: 1.98 x 150 = 297.00, minus fees 0.02
    assert stats.round_trip_pnl(100.01, 101.99, 150, "long", fees=0.02) == pytest.approx(296.98)
    # short 20 @ 50 -> 51: (51 - 50) x 20 x -1 = -20
    assert stats.round_trip_pnl(50.0, 51.0, 20, "short") == -20.0
    assert stats.round_trip_pnl(50.0, 51.0, 20, -1) == -20.0  # a sign works as the direction
    # option: 2 contracts, 1.50 -> 2.25, multiplier 100, fees 1.30: 0.75 x 2 x 100 - 1.30 = 148.70
    assert stats.round_trip_pnl(1.50, 2.25, 2, "long", 100.0, 1.30) == pytest.approx(148.70)
    # the order of operations is fixed: bit for bit (exit - entry) x qty x sign x multiplier - fees
    e, x, q, m, f = 480.25, 482.37, 37, 1.0, 0.013
    assert stats.round_trip_pnl(e, x, q, "short", m, f) == (x - e) * q * -1 * m - f
    with pytest.raises(ValueError, match="direction"):
        stats.round_trip_pnl(1.0, 2.0, 1, "up")
    with pytest.raises(ValueError, match="direction"):
        stats.round_trip_pnl(1.0, 2.0, 1, 0)


def test_pnl_pct_and_trade_return() -> None:
    assert stats.pnl_pct(296.98, 100.01, 150) == pytest.approx(296.98 / 15001.5)
    assert stats.pnl_pct(148.70, 1.50, 2, 100.0) == pytest.approx(148.70 / 300.0)
    assert stats.pnl_pct(5.0, 0.0, 10) == 0.0
    assert stats.trade_return(100.0, 101.0) == pytest.approx(0.01)
    assert stats.trade_return(100.0, 101.0, "short") == pytest.approx(-0.01)


def test_max_drawdown() -> None:
    assert stats.max_drawdown([]) == (0.0, 0.0)
    assert stats.max_drawdown([100.0, 110.0, 120.0]) == (0.0, 0.0)
    # 100000 -> 100300 (peak) -> 99900 (trough): 400, 400 / 100300
    dd = stats.max_drawdown([100000.0, 100300.0, 99900.0, 100100.0])
    assert dd.amount == 400.0 and dd.pct == pytest.approx(400.0 / 100300.0)
    # the worst fall is 120 -> 100 (20 = 16.67 %), not the first one 100 -> 90 (10 = 10 %)
    assert stats.max_drawdown([100, 90, 120, 100, 130]) == (20, pytest.approx(20 / 120))
    # in currency the 100 -> 90 fall is larger, relatively the 10 -> 5 one
    assert stats.max_drawdown([10, 5, 100, 90]) == (10, pytest.approx(0.5))
    assert stats.drawdown_series([100.0, 110.0, 99.0, 121.0]) == pytest.approx([0.0, 0.0, -0.1, 0.0])


def test_returns_sharpe_sortino() -> None:
    equity = [100.0, 110.0, 99.0, 108.9]
    rets = stats.simple_returns(equity)
    assert rets == pytest.approx([0.10, -0.10, 0.10])
    assert stats.simple_returns([0.0, 5.0, 10.0]) == pytest.approx([1.0])  # pairs from 0 skipped
    # mean 1/30, sample variance ((2/30)^2 x 2 + (4/30)^2) / 2 = 0.0133.., std 0.11547
    mean, sd = 1 / 30, math.sqrt(((0.2 / 3) ** 2 * 2 + (0.4 / 3) ** 2) / 2)
    assert stats.sharpe(rets, periods=1) == pytest.approx(mean / sd)
    assert stats.sharpe(rets) == pytest.approx(mean / sd * math.sqrt(252))
    assert stats.sharpe_of_equity(equity, 252) == stats.sharpe(rets, 252)
    assert stats.sharpe([0.01]) is None and stats.sharpe([0.01, 0.01]) is None  # < 2 returns / no variance
    # downside deviation sqrt((0.1^2) / 3) = 0.057735
    assert stats.sortino(rets, periods=1) == pytest.approx(mean / math.sqrt(0.01 / 3))
    assert stats.sortino([0.01, 0.02]) is None  # no losing period


def test_trade_statistics() -> None:
    pnls = [120.50, -40.25, 10.00, 0.0]
    assert stats.win_rate(pnls) == 0.5  # the flat trade is no win
    assert stats.profit_factor(pnls) == pytest.approx(130.50 / 40.25)
    assert stats.expectancy(pnls) == pytest.approx(90.25 / 4)
    assert stats.win_rate([]) is None and stats.expectancy([]) is None
    assert stats.profit_factor([5.0, 0.0]) is None  # no losing trade
    assert stats.profit_factor([-5.0]) == 0.0


def test_report_summary_uses_the_same_statistics() -> None:
    from datetime import datetime, timezone

    from backtests.report import build_summary, max_drawdown_pct, sharpe_ratio

    curve = [(datetime(2025, 6, d, 20, 0, tzinfo=timezone.utc), eq)
             for d, eq in ((16, 110.0), (17, 99.0), (18, 108.9))]
    assert max_drawdown_pct([100.0] + [eq for _, eq in curve]) == 10.0
    assert sharpe_ratio(curve, 100.0) == round(stats.sharpe([0.10, -0.10, 0.10]), 4)
    trades = [{"pnl": p, "exit_reason": "x", "metadata_json": '{"fees": 0.5}'} for p in (3.0, -1.0, 0.0)]
    s = build_summary(mode="stock", start=None, end=None, symbols=["QQQ"], starting_equity=100.0,
                      ending_equity=108.9, trades=trades, decisions=[], curve=curve, signals_received=0, bars=3)
    assert (s["win_rate"], s["fees"], s["realized_pnl"], s["max_drawdown_pct"]) == (0.3333, 1.5, 2.0, 10.0)
