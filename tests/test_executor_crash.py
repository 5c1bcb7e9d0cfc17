"""A running executor killed with SIGKILL loses no fill it has seen (issue #3, item 4).

1. Deterministic: a backtest process whose executor kills itself right after handling its third
   fill (the second trade's entry). Reopening the database shows the first round trip closed and
   the second entry ``open`` with exactly the filled quantity and price the child printed.
2. Arbitrary moment: `trade-executor backtest --db` on the sample data, killed from outside once
   the journal holds three closed trades while this test reads the database concurrently. The file
   is intact and every row is complete.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select, text

from strategies.journal.models import BacktestRunRecord, TradeExecutionRecord

pytestmark = pytest.mark.slow  # whole runs (engines, nodes, processes): not in the fast loop

ROOT = Path(__file__).resolve().parent.parent

CHILD = textwrap.dedent("""
    import os, signal, sys
    from datetime import timedelta
    from pathlib import Path
    sys.path.insert(0, {root!r})
    from backtests import catalog_io
    import backtests.runner as runner
    from strategies.executor_strategy import ExecutorStrategy
    from tests.test_backtest_e2e import SESSION_OPEN, fixture_signal, signals_catalog, write_bars_csv

    tmp = Path({tmp!r})
    # two trades: up 0.10/min from 10:00 (target 102 at 10:20), flat, then a second signal at 10:40
    closes = [100.0] * 30 + [round(100 + 0.1 * k, 2) for k in range(1, 21)] + [102.0] * 40
    catalog_io.import_files(tmp / "cat", [write_bars_csv(tmp / "QQQ.csv", closes)], tz="UTC", label="open")
    sigs = [fixture_signal(),
            fixture_signal(timestamp=SESSION_OPEN + timedelta(minutes=70), entry_price=102.0, stop_loss=101.0,
                           target_price=104.0, signal_type="cloud_bounce_long")]

    class Dying(ExecutorStrategy):
        fills = 0

        def on_order_filled(self, event):
            super().on_order_filled(event)
            Dying.fills += 1
            if Dying.fills == 3:
                print("FILL", event.client_order_id.value, int(event.last_qty.as_double()),
                      float(event.last_px.as_double()), flush=True)
                os.kill(os.getpid(), signal.SIGKILL)

    runner.ExecutorStrategy = Dying
    runner.run_backtest(runner.BacktestSpec(catalog=tmp / "cat", symbols=["QQQ"], mode="stock", progress=False,
                                            db_url={db!r}, signals_catalog=signals_catalog(tmp / "s", sigs)))
    print("NOT KILLED", flush=True)
""")


def test_kill_right_after_a_fill_keeps_that_fill(tmp_path):
    db = f"sqlite:///{tmp_path / 'journal.db'}"
    script = tmp_path / "child.py"
    script.write_text(CHILD.format(root=str(ROOT), tmp=str(tmp_path), db=db))
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == -signal.SIGKILL, proc.stdout + proc.stderr
    (line,) = [x for x in proc.stdout.splitlines() if x.startswith("FILL")]
    _, oid, qty, px = line.split()

    con = sqlite3.connect(tmp_path / "journal.db")
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    con.close()
    eng = create_engine(db)
    with eng.connect() as c:
        rows = c.execute(select(TradeExecutionRecord).order_by(TradeExecutionRecord.id)).all()
        runs = c.execute(select(BacktestRunRecord)).all()
    assert [r.status for r in rows] == ["closed", "open"]
    first, second = rows
    # test_backtest_e2e's round trip on 2025-06-16: (101.99 - 100.01) x 150 = 297.00 - fees (SEC $0 per
    # $1M from 2025-05-14 + TAF 150 x 0.000166 = 0.0249 -> 0.02) = 296.98
    assert first.exit_reason == "profit_target" and first.pnl == pytest.approx(296.98, abs=0.005)
    assert second.order_id == oid and second.shares == int(qty) and second.entry_price == pytest.approx(float(px))
    assert second.signal_id.startswith("QQQ-10m-cloud_bounce_long")
    assert second.metadata_json["last_price"] == pytest.approx(102.0)  # a JSON column: a dict
    # the run was registered and never finished
    assert len(runs) == 1 and runs[0].summary_json is None


def test_kill_at_an_arbitrary_moment_leaves_a_consistent_journal(tmp_path, sample_catalog):
    db_path = tmp_path / "journal.db"
    db = f"sqlite:///{db_path}"
    cmd = [sys.executable, "-m", "strategies.cli", "backtest", "--catalog", str(sample_catalog),
           "--symbols", "QQQ,SPY,AAPL,NVDA", "--out", str(tmp_path / "out"), "--db", db, "--quiet"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    eng = create_engine(db)
    closed = 0
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with eng.connect() as c:  # a concurrent reader while the executor writes (WAL)
                    closed = c.execute(text("select count(*) from trade_executions where status='closed'")).scalar()
            except Exception:  # noqa: BLE001 - the schema may not exist yet
                closed = 0
            if closed >= 3:
                break
            time.sleep(0.05)
        assert proc.poll() is None, "backtest finished before it could be killed: " + proc.stderr.read()[-2000:]
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    con = sqlite3.connect(db_path)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    con.close()
    with eng.connect() as c:
        rows = c.execute(select(TradeExecutionRecord)).all()
        n_decisions = c.execute(text("select count(*) from signal_decisions")).scalar()
    assert sum(r.status == "closed" for r in rows) >= 3
    for r in rows:
        assert r.order_id and r.shares > 0 and r.entry_price > 0 and r.entry_time is not None
        if r.status == "closed":
            assert r.exit_price > 0 and r.exit_time >= r.entry_time and r.pnl is not None and r.exit_reason
        else:
            assert r.status == "open" and r.exit_price is None
    assert n_decisions > 0
