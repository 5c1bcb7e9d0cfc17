"""The soak test of issue #13 (item 5): the live node through a whole simulated session, 10 symbols
streamed in real time, random faults on a seeded schedule, against the local Alpaca-protocol
server in its broker-like mode.

The node runs on NautilusTrader's LiveClock (the wall clock): signals are checked against it
(stale/future), 10-minute and 1-hour bars are built by its timers, the EOD cut-off and the close are
session times. So the session is compressed by compressing the wall clock itself: the whole
session (``tests/soak_session.py``: the fake broker, its bar feed, the fault schedule, the sampler
and the TradingNode, all in one process, on one clock) runs in a child process under libfaketime,
placed at 09:15 New York on 2026-03-10 and running ``SOAK_RATE`` (100) times faster than real
time: 09:15-16:03 in about 4 minutes. Real CPU time is stretched by the same factor on that clock
(a 20 ms step looks like 2 s), so every simulated duration the test checks is a bound on
"real time x rate", and latencies are reported in real milliseconds (simulated / rate).

What it asserts: 0 node crashes (the node ran to the end, the actor and strategy were running
throughout, no traceback in its log), 0 duplicate orders (every client order id once at the
broker, every broker order one of the node's), 0 lost fills (every broker execution applied by the
node to the same order, filled quantities equal), no position without a working stop (or its exit
order in flight) for more than ``PROTECTION_LIMIT_S`` simulated seconds (the broker's state sampled
every 2 simulated seconds), the journal's fills = the broker's fills, nothing held across the close
(no position, no open order, no open trade in the journal). Signal-to-order latency p50/p99 is
printed and written to ``<tmp>/soak/latency.json`` and ``latency.csv``; the whole report is
``<tmp>/soak/report.json``.

Found by this soak and fixed, each pinned by its own test: LiveClock ran the executor's timer
callbacks on Rust threads (``tests/test_live_clock_threads.py``), the core sent an exit while the
protective stop was in flight or already filled (``tests/test_core_exit_vs_stop_races.py``), a late
minute bar terminated the node (``tests/test_signal_actor_late_bars.py``), the adapter applied
an execution Nautilus had already inferred (``tests/test_alpaca_inferred_fill.py``), and a second
entry in an instrument made the broker refuse its position's exit and stops as wash trades
(``tests/test_core_exit_vs_new_entry.py``, seeds 7 and 21). The runaway guard (40 entries a
session) is lifted to 400 here, so that the whole day trades (about 250 entries) and the EOD
flatten runs with positions.

Needs libfaketime (Debian ``libfaketime``) and a C compiler for the small ``sem_clockwait`` shim
(``tests/faketime_env.py``); skips with the reason otherwise.
"""

from __future__ import annotations

import json
import os
import re
import subprocess  # nosec B404 - the session runner, fixed arguments
import sys
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.faketime_env import faketime_env

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
RATE = float(os.environ.get("SOAK_RATE", "100"))
SESSION_DATE = "2026-03-10"  # a Tuesday, a full NYSE session (09:30-16:00 EDT)
START = datetime.fromisoformat(f"{SESSION_DATE}T09:15:00").replace(tzinfo=ZoneInfo("America/New_York"))
# Simulated seconds a position may be without a working stop (or its closing order): a minute step
# (the step re-places a stop found missing, 1.5 s after the minute's first bar) plus the broker's
# routing and cancels, under the compression (real processing time x RATE).
PROTECTION_LIMIT_S = 90.0
WALL_LIMIT_S = 480.0


def test_soak_session_ten_symbols_under_faults(tmp_path):
    env, why = faketime_env(START, RATE)
    if env is None:
        pytest.skip(why)
    out = tmp_path / "soak"
    log = tmp_path / "node.log"
    t0 = time.monotonic()
    with open(log, "w") as fh:
        proc = subprocess.run(  # nosec B603 - our own runner
            [sys.executable, "-m", "tests.soak_session", "--out", str(out), "--rate", f"{RATE:g}",
             "--date", SESSION_DATE, "--symbols", "10", "--seed", "13",
             # 30 simulated seconds = 300 real ms per REST call: the adapter's 10 s would be 100 real
             # ms here, and a busy moment of the one process would put orders in doubt at random
             "--request-timeout", "30",
             # the runaway guard's 40 entries a session are reached by 11:05 here: lift it so that
             # the whole day trades under the faults (about 250 entries), the EOD flatten included
             "--max-daily-trades", "400"],
            cwd=ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT, timeout=WALL_LIMIT_S + 120)
    wall = time.monotonic() - t0
    text = re.sub(r"\x1b\[[0-9;]*m", "", log.read_text(errors="replace"))
    if proc.returncode != 0:  # the node took the process down (Nautilus terminates on some errors)
        first = text.find("Traceback")
        pytest.fail(f"the soak process exited {proc.returncode} (a node crash); first traceback:\n"
                    f"{text[max(0, first - 1500):first + 2500] if first >= 0 else ''}\n...\n{text[-1500:]}")
    report = json.loads((out / "report.json").read_text())
    assert "fatal" not in report, report.get("fatal")
    report["wall_seconds"] = wall
    (out / "report.json").write_text(json.dumps(report, indent=2, default=str))
    lat = report["latency"]
    print(f"\nsoak: {wall:.0f} s wall for {report['started_sim']} -> {report['finished_sim']} (x{RATE:g}); "
          f"{report['broker']['orders']} orders, {report['broker']['fills']} fills, "
          f"{report['decisions']['total']} signals ({report['decisions']['approved']} approved); "
          f"signal->submitted p50 {lat['signal_to_submitted_p50']:.2f} ms p99 {lat['signal_to_submitted_p99']:.2f} ms, "
          f"signal->at the broker p50 {lat['signal_to_broker_p50']:.2f} ms p99 {lat['signal_to_broker_p99']:.2f} ms "
          f"(n={lat['n']}); report: {out / 'report.json'}")

    # the session really happened, under load and faults
    assert report["feed"]["bars_published"] >= 10 * 385, report["feed"]
    assert report["decisions"]["approved"] >= 30 and report["broker"]["fills"] >= 60, (report["decisions"],
                                                                                       report["broker"])
    kinds = {f["kind"] for f in report["faults_armed"]}
    assert len(kinds) >= 11, kinds
    assert report["order_posts"].get("403", 0) >= 1, report["order_posts"]  # wash-trade refusals happened
    assert report["server_stats"].get("trade_drops", 0) >= 1

    # 0 node crashes
    assert report["crash"] == {"components_stopped_early": False, "node_exception": None}, report["crash"]
    assert "Traceback" not in text, text[text.index("Traceback") - 500:text.index("Traceback") + 3000]
    assert not report["errors"], report["errors"]
    # 0 duplicate orders
    assert report["duplicates"]["duplicate_client_ids"] == []
    assert report["duplicates"]["broker_orders_unknown_to_node"] == []
    # 0 lost fills
    fc = report["fills_check"]
    assert fc["lost"] == [] and fc["filled_qty_mismatch"] == [] and fc["node_fills_not_at_broker"] == [], fc
    # journal = broker fills (the order journal's executor_fills: every execution, same qty and price)
    jf = report["journal_fills"]
    assert jf is not None, "no executor_fills table in the journal"
    assert jf["missing"] == [] and jf["extra"] == [] and jf["differ"] == [], jf
    # sane bounds only (real milliseconds): no timed assertion on speed beyond these
    assert 0 <= lat["signal_to_submitted_p50"] <= lat["signal_to_submitted_p99"] < 1_000
    assert wall < WALL_LIMIT_S
    # never unprotected beyond the limit (simulated seconds), nothing held across the close, and
    # the journal's trades = the broker's fills
    assert not protection_failures(report), protection_failures(report)


def protection_failures(report: dict) -> list[str]:
    out = []
    worst = sorted(report["sampler"]["episodes"]["uncovered"], key=lambda e: -e["seconds"])
    if worst and worst[0]["seconds"] > PROTECTION_LIMIT_S:
        out.append(f"positions without a working stop or exit beyond {PROTECTION_LIMIT_S:g} s: "
                   f"{[e for e in worst if e['seconds'] > PROTECTION_LIMIT_S]}")
    held = report["held_after_close"]
    if held["positions"] or held["open_orders"]:
        out.append(f"held across the close: {[(p['symbol'], p['qty']) for p in held['positions']]} "
                   f"open orders {held['open_orders']}")
    jt = report["journal_trades"]
    if jt["share_mismatch"] or jt["open"]:
        out.append(f"journal trades vs broker fills: {jt['share_mismatch']} open {jt['open']}")
    return out
