"""Progress bars (issue #17): drawn with rich on a terminal, with bars/s and an ETA; nothing at all
with --quiet or when stderr is not a terminal (pytest's capture is not one). Both branches are
tested: a console forced to be a terminal, and the plain one."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from rich.console import Console

from backtests import catalog_io
from backtests.bar_files import estimate_rows
from backtests.runner import BacktestSpec, progress_chunk, run_backtest
from strategies import progress as progress_mod
from strategies.cli import main
from strategies.progress import CallbackTask, ProgressBars, QueueReporter, progress_enabled
from tests.test_backtest_e2e import fixture_closes, fixture_signal, signals_catalog, write_bars_csv

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _terminal() -> tuple[Console, io.StringIO]:
    buf = io.StringIO()
    return Console(file=buf, force_terminal=True, width=140, color_system=None), buf


def _text(buf: io.StringIO) -> str:
    return ANSI.sub("", buf.getvalue()).replace("\r", "\n")


def test_enabled_only_on_a_terminal_and_not_quiet():
    term, _ = _terminal()
    plain = Console(file=io.StringIO(), width=140)
    assert progress_enabled(False, term) is True
    assert progress_enabled(True, term) is False  # --quiet
    assert progress_enabled(False, plain) is False  # a pipe / file / CI
    assert progress_enabled(False) is False  # stderr under pytest is captured: not a terminal


def test_bar_shows_rate_eta_and_done_on_a_terminal():
    term, buf = _terminal()
    with ProgressBars(console=term) as bars:
        assert bars.enabled
        t = bars.task("backtest stock QQQ", total=10_000, unit="bars")
        for _ in range(4):
            t.advance(2_500, note="up to 2025-06-17")
        t.finish()
    out = _text(buf)
    assert "backtest stock QQQ" in out
    assert "100%" in out
    assert re.search(r"[\d,]+ bars/s", out), out
    assert "ETA" in out or "done" in out
    assert "done" in out and "up to 2025-06-17" in out


def test_disabled_bars_write_nothing():
    buf = io.StringIO()
    plain = Console(file=buf, width=140)
    with ProgressBars(console=plain) as bars:
        assert not bars.enabled
        t = bars.task("x", total=10)
        t.advance(10)
        t.finish()
    with ProgressBars(console=_terminal()[0], quiet=True) as bars:
        assert not bars.enabled
    assert buf.getvalue() == ""


def test_queue_reporter_feeds_the_parent_bars():
    import queue

    term, buf = _terminal()
    q: queue.Queue = queue.Queue()
    with ProgressBars(console=term) as bars:
        bars.drain(q)
        task = CallbackTask(QueueReporter(q), "leveraged_etf", 400)
        task.advance(100)
        task.advance(300, note="up to 2025-07-08")
        task.finish()
        import time

        for _ in range(50):  # the drain thread picks the messages up
            if bars.named("leveraged_etf") is not None and "done" in _text(buf):
                break
            time.sleep(0.05)
    out = _text(buf)
    assert "leveraged_etf" in out and "100%" in out and "up to 2025-07-08" in out


def test_progress_chunk_moves_the_bar_without_changing_memory_bounds():
    assert progress_chunk(22_680) == 2_000  # the demo: 12 updates instead of one
    assert progress_chunk(1_000_000) == 20_000  # 1/50 of the run
    assert progress_chunk(10_000_000) == 50_000  # never above the memory bound
    assert progress_chunk(100, chunk=4) == 4  # a smaller requested chunk wins (tests)


def test_backtest_reports_progress_per_chunk(tmp_path):
    csv_path = write_bars_csv(tmp_path / "QQQ.csv", fixture_closes())
    catalog = tmp_path / "catalog"
    catalog_io.import_files(catalog, [csv_path], tz="UTC", label="open")
    sigs = signals_catalog(tmp_path, [fixture_signal()])
    calls: list[tuple] = []
    r = run_backtest(BacktestSpec(catalog=catalog, symbols=["QQQ"], signals_catalog=sigs,
                                  progress=lambda *a: calls.append(a), progress_label="bt QQQ"))
    assert r.bars == 90
    assert calls, "no progress reported"
    assert {c[0] for c in calls} == {"bt QQQ"}
    assert calls[-1][1:3] == (90, 90)  # done == total at the end
    assert "up to 2025-06-16" in calls[0][3]
    done = [c[1] for c in calls]
    assert done == sorted(done)


def test_estimate_rows(tmp_path):
    closes = [100.0 + (i % 7) * 0.01 for i in range(5_000)]
    path = write_bars_csv(tmp_path / "QQQ.csv", closes)
    est = estimate_rows(path)
    assert est is not None and abs(est - 5_000) <= 50  # within 1 %
    import pandas as pd

    pq = tmp_path / "QQQ.parquet"
    pd.read_csv(path).to_parquet(pq)
    assert estimate_rows(pq) == 5_000  # exact
    gz = tmp_path / "QQQ.csv.gz"
    gz.write_bytes(b"")
    assert estimate_rows(gz) is None


def test_import_progress_on_a_terminal(tmp_path):
    path = write_bars_csv(tmp_path / "QQQ.csv", fixture_closes())
    term, buf = _terminal()
    with ProgressBars(console=term) as bars:
        rep = catalog_io.import_files(tmp_path / "cat", [path], tz="UTC", progress=bars)
    assert rep.rows == 90
    out = _text(buf)
    assert "import 1 file(s)" in out and "rows/s" in out and "100%" in out


def _cli_world(tmp_path: Path) -> dict:
    csv_path = write_bars_csv(tmp_path / "QQQ.csv", fixture_closes())
    catalog = tmp_path / "catalog"
    catalog_io.import_files(catalog, [csv_path], tz="UTC", label="open")
    return {"csv": csv_path, "catalog": catalog, "sigs": signals_catalog(tmp_path, [fixture_signal()])}


def test_cli_backtest_draws_bars_on_a_terminal_only(tmp_path, capsys, monkeypatch):
    w = _cli_world(tmp_path)
    args = ["backtest", "--catalog", str(w["catalog"]), "--symbols", "QQQ", "--signals-from", str(w["sigs"])]
    # not a terminal (pytest's capture): no bar, no progress line
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    err = capsys.readouterr().err
    assert "bars/s" not in err and "progress" not in err
    # a terminal: the bar, with its rate
    term, buf = _terminal()
    monkeypatch.setattr(progress_mod, "stderr_console", lambda: term)
    assert main([*args, "--out", str(tmp_path / "b")]) == 0
    out = _text(buf)
    assert "backtest stock QQQ" in out and "bars/s" in out and "100%" in out
    # --quiet on a terminal: nothing
    term2, buf2 = _terminal()
    monkeypatch.setattr(progress_mod, "stderr_console", lambda: term2)
    assert main([*args, "--out", str(tmp_path / "c"), "--quiet"]) == 0
    assert _text(buf2).strip() == ""


def test_cli_import_draws_a_bar_on_a_terminal_only(tmp_path, monkeypatch, capsys):
    w = _cli_world(tmp_path)
    assert main(["data", "import", str(w["csv"]), "--catalog", str(tmp_path / "c1"), "--tz", "UTC"]) == 0
    assert "rows/s" not in capsys.readouterr().err
    term, buf = _terminal()
    monkeypatch.setattr(progress_mod, "stderr_console", lambda: term)
    assert main(["data", "import", str(w["csv"]), "--catalog", str(tmp_path / "c2"), "--tz", "UTC"]) == 0
    assert "rows/s" in _text(buf)
    term2, buf2 = _terminal()
    monkeypatch.setattr(progress_mod, "stderr_console", lambda: term2)
    assert main(["data", "import", str(w["csv"]), "--catalog", str(tmp_path / "c3"), "--tz", "UTC", "--quiet"]) == 0
    assert _text(buf2).strip() == ""


@pytest.mark.slow
def test_compare_bars_per_mode_on_a_terminal(tmp_path, monkeypatch, capsys):
    w = _cli_world(tmp_path)
    term, buf = _terminal()
    monkeypatch.setattr(progress_mod, "stderr_console", lambda: term)
    assert main(["compare", "--catalog", str(w["catalog"]), "--symbols", "QQQ", "--modes", "stock,leveraged_etf",
                 "--workers", "1", "--out", str(tmp_path / "cmp")]) == 0
    out = _text(buf)
    for label in ("signals (stock run)", "stock", "leveraged_etf"):
        assert label in out
    assert "bars/s" in out and "compare: replaying" in out
