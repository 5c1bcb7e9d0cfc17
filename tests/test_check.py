"""`trade-executor check`: whole-run invariants of a backtest's outputs (backtests.check).

One real backtest on crafted bars (two sessions of QQQ, three replayed 10m signals, journaled to
SQLite) must pass every invariant; copies of its outputs, each tampered in one way, must make the
specific invariant FAIL and name the offending row. Small synthetic rows cover what the crafted
run has no example of (options, early closes, gaps, kill-switch windows).

The crafted run (README numbers: 150 shares capped by the 15 % single-stock exposure):
  Mon 2025-06-16: flat 100.00 until 10:00 ET, then +0.10/min; long 10m signal at 10:00 (entry 100,
                  stop 99, target 102): market entry 100.01, profit target at 10:20 -> 101.99.
  Tue 2025-06-17: flat 100.00 until 10:00 ET, then -0.10/min; long 10m signal at 10:00: entry
                  100.01, the resting stop 99.00 triggers in the 10:10 bar (open 99.10, low 98.98).
  plus one low-conviction 10m signal (rejected).
"""

from __future__ import annotations

import csv
import json
import shutil
import sqlite3
from datetime import datetime, timedelta, timezone
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from backtests import catalog_io
from backtests.check import (
    FAIL,
    PASS,
    SKIP,
    CheckUsageError,
    Row,
    RunOutputs,
    check_exit_same_minute,
    check_fills_in_bar,
    check_fills_in_session,
    check_no_entry_after_kill_switch,
    check_run,
    check_stop_loss_within_budget,
    minute_of,
)
from backtests.fills import FILL_COLUMNS, bar_index, last_bar_index
from backtests.runner import BacktestSpec, run_backtest, write_signals
from strategies.signal_data import TradeSignalData
from tests import builders

MON = datetime(2025, 6, 16, 13, 30, tzinfo=timezone.utc)  # 09:30 ET
TUE = datetime(2025, 6, 17, 13, 30, tzinfo=timezone.utc)


def _bar_rows(closes: list[float], start: datetime) -> list[list]:
    rows, prev = [], closes[0]
    for i, c in enumerate(closes):
        o = prev
        rows.append([(start + timedelta(minutes=i)).isoformat(), f"{o:.2f}", f"{max(o, c) + 0.02:.2f}",
                     f"{min(o, c) - 0.02:.2f}", f"{c:.2f}", 10_000])
        prev = c
    return rows


# a long QQQ 10m cloud flip at 100, stop 99, target 102, volume confirmed
_signal = partial(builders.signal, stop=99.0, target=102.0, signal_type="cloud_flip_bullish")


def crafted_run(tmp: Path, url: str) -> Path:
    """Backtest the crafted two sessions, journaled to ``url``; returns the output folder."""
    up = [100.00] * 30 + [round(100.00 + 0.10 * k, 2) for k in range(1, 61)]
    down = [100.00] * 30 + [round(100.00 - 0.10 * k, 2) for k in range(1, 31)]
    csv_path = tmp / "QQQ.csv"
    with csv_path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["timestamp", "open", "high", "low", "close", "volume"])
        w.writerows(_bar_rows(up, MON) + _bar_rows(down, TUE))
    catalog = tmp / "catalog"
    catalog_io.import_files(catalog, [csv_path], tz="UTC", label="open")
    sigs = [_signal(ts=MON + timedelta(minutes=30)),
            _signal(ts=MON + timedelta(minutes=31), signal_type="trend_aligned_long", conviction=30),
            _signal(ts=TUE + timedelta(minutes=30))]
    rows = [TradeSignalData.from_signal(s, ts_event=int(s.timestamp.timestamp() * 1e9),
                                        ts_init=int(s.timestamp.timestamp() * 1e9)) for s in sigs]
    write_signals(tmp / "signals", rows)
    out = tmp / "out"
    run_backtest(BacktestSpec(catalog=catalog, symbols=["QQQ"], mode="stock", out_dir=out, progress=False,
                              db_url=url, signals_catalog=tmp / "signals"))
    return out


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """(output folder, SQLite journal URL) of the crafted two-session run."""
    tmp = tmp_path_factory.mktemp("check_run")
    url = f"sqlite:///{tmp / 'journal.db'}"
    return crafted_run(tmp, url), url


# ── helpers ─────────────────────────────────────────────────────────────────────────────────


def _read(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="") as f:
        r = csv.DictReader(f)
        return list(r.fieldnames or []), list(r)


def _write(path: Path, cols: list[str], rows: list[dict[str, str]]) -> None:
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols)
        w.writeheader()
        w.writerows(rows)


def _copy(run_dir: tuple[Path, str], tmp_path: Path) -> tuple[Path, str]:
    out, url = run_dir
    dst = tmp_path / "out"
    shutil.copytree(out, dst)
    db = tmp_path / "journal.db"
    shutil.copy(url.removeprefix("sqlite:///"), db)
    return dst, f"sqlite:///{db}"


def _by_name(results) -> dict:
    return {r.name: r for r in results}


def _only_fails(results, *names: str) -> dict:
    res = _by_name(results)
    failed = {n for n, r in res.items() if r.status == FAIL}
    assert set(names) <= failed, [res[n].line() for n in names]
    return res


# ── the untouched run passes ────────────────────────────────────────────────────────────────


def test_crafted_run_passes_every_invariant(run_dir):
    out, url = run_dir
    trades = _read(out / "trades.csv")[1]
    assert [t["exit_reason"] for t in trades] == ["profit_target", "stop_loss"]
    fills = _read(out / "fills.csv")[1]
    assert [(f["role"], f["order_type"]) for f in fills] == [
        ("entry:market", "MARKET"), ("exit", "MARKET"), ("entry:market", "MARKET"), ("stop", "STOP_MARKET")]
    assert [f["price"] for f in fills[:3]] == ["100.01", "101.99", "100.01"]  # market: close +/- 1 tick
    assert float(trades[1]["exit_price"]) == float(fills[3]["price"]) < 99.00  # the resting stop filled
    # each fill carries its own minute's bar: the 10:00 ET entry fills at the 10:00 bar's close
    assert fills[0]["bar_ts"] == "2025-06-16T14:00:00+00:00" and float(fills[0]["bar_close"]) == 100.00
    assert fills[3]["bar_ts"] == "2025-06-17T14:10:00+00:00" and float(fills[3]["bar_low"]) == 98.98
    summary = json.loads((out / "summary.json").read_text())
    assert summary["calendar"] == "XNYS" and summary["signal_timeframes"] == ["10m"]
    assert summary["fill_model"]["market_and_stops"] == "1 tick adverse"
    assert summary["kill_switch_trips"] == [] and summary["starting_cash"] == 100_000.0
    assert (out / "events.csv").is_file()

    results = check_run(out, db_url=url)
    assert [r.status for r in results] == [PASS] * len(results), "\n".join(r.line() for r in results)
    res = _by_name(results)
    assert set(res) == {"fills_in_bar", "fills_in_session", "no_intraday_overnight", "exit_same_minute",
                        "stop_loss_within_budget", "trades_match_fills", "one_decision_per_signal",
                        "no_entry_after_kill_switch", "timeframes_present", "journal_equals_trades",
                        "daily_pnl_sums"}
    assert res["fills_in_bar"].checked == 4 and res["stop_loss_within_budget"].checked == 1
    assert res["one_decision_per_signal"].checked == 3 and res["journal_equals_trades"].checked == 2
    assert "10m: 3 signals / 2 approved / 2 trades" in res["timeframes_present"].message

    without_db = _by_name(check_run(out))
    assert without_db["journal_equals_trades"].status == SKIP
    assert "no --db" in without_db["daily_pnl_sums"].message


# ── tampered copies fail the specific invariant, naming the row ─────────────────────────────


def test_fill_moved_outside_its_bar(run_dir, tmp_path):
    out, url = _copy(run_dir, tmp_path)
    cols, rows = _read(out / "fills.csv")
    rows[0]["price"] = f"{float(rows[0]['bar_high']) + 0.05:.2f}"  # 2 cents beyond high + 1 tick
    _write(out / "fills.csv", cols, rows)
    res = _only_fails(check_run(out), "fills_in_bar")
    r = res["fills_in_bar"]
    assert r.failed == 1 and r.rows[0].startswith("fills.csv:2 ") and "outside bar 2025-06-16T14:00:00" in r.rows[0]
    assert res["fills_in_session"].status == PASS


def test_fill_one_tick_beyond_the_bar_is_the_modelled_slippage(run_dir, tmp_path):
    out, _ = _copy(run_dir, tmp_path)
    cols, rows = _read(out / "fills.csv")
    rows[0]["price"] = f"{float(rows[0]['bar_high']) + 0.01:.2f}"
    _write(out / "fills.csv", cols, rows)
    assert _by_name(check_run(out))["fills_in_bar"].status == PASS


def test_day_trade_exit_moved_to_the_next_day(run_dir, tmp_path):
    out, _ = _copy(run_dir, tmp_path)
    cols, rows = _read(out / "trades.csv")
    rows[0]["exit_time"] = (pd.Timestamp(rows[0]["exit_time"]) + pd.Timedelta(days=1)).isoformat()
    _write(out / "trades.csv", cols, rows)
    r = _only_fails(check_run(out), "no_intraday_overnight")["no_intraday_overnight"]
    assert r.failed == 1 and r.rows[0].startswith(f"trades.csv:2 {rows[0]['signal_id']}")
    assert "held past the session close 2025-06-16T20:00:00+00:00" in r.rows[0]


def test_duplicated_decision(run_dir, tmp_path):
    out, _ = _copy(run_dir, tmp_path)
    cols, rows = _read(out / "decisions.csv")
    _write(out / "decisions.csv", cols, rows + [rows[0]])
    r = _only_fails(check_run(out), "one_decision_per_signal")["one_decision_per_signal"]
    assert f"signal {rows[0]['signal_id']}: 2 rows (decisions.csv:2, decisions.csv:5)" in r.rows
    assert "decisions.csv has 4 rows, summary signals_received = 3" in r.rows


def test_journal_row_with_a_different_pnl(run_dir, tmp_path):
    out, url = _copy(run_dir, tmp_path)
    trade = _read(out / "trades.csv")[1][1]
    sid = trade["signal_id"]
    with sqlite3.connect(url.removeprefix("sqlite:///")) as con:
        assert con.execute("UPDATE trade_executions SET pnl = pnl - 1.00 WHERE signal_id = ?", (sid,)).rowcount == 1
    res = _only_fails(check_run(out, db_url=url), "journal_equals_trades")
    r = res["journal_equals_trades"]
    assert r.failed == 1 and r.rows[0].startswith(f"trades.csv:3 {sid} (journal id") and f"pnl csv {trade['pnl']} vs journal" in r.rows[0]
    assert res["daily_pnl_sums"].status == PASS  # daily_pnl rows were written from the journal before


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_journal_checks_on_postgresql(db_url, tmp_path):
    # conftest's db_url: a schema of its own on the local PostgreSQL (skipped when not reachable)
    import sqlalchemy as sa

    out = crafted_run(tmp_path, db_url)
    res = _by_name(check_run(out, db_url=db_url))
    assert res["journal_equals_trades"].status == PASS and res["journal_equals_trades"].checked == 2
    assert res["daily_pnl_sums"].status == PASS and res["daily_pnl_sums"].checked == 2
    trade = _read(out / "trades.csv")[1][0]
    engine = sa.create_engine(db_url)
    with engine.begin() as c:
        c.execute(sa.text("UPDATE trade_executions SET pnl = pnl + 0.05 WHERE signal_id = :s"), {"s": trade["signal_id"]})
    engine.dispose()
    r = _only_fails(check_run(out, db_url=db_url), "journal_equals_trades")["journal_equals_trades"]
    assert r.rows[0].startswith(f"trades.csv:2 {trade['signal_id']}") and f"pnl csv {trade['pnl']} vs journal" in r.rows[0]


def test_daily_pnl_that_does_not_sum(run_dir, tmp_path):
    out, url = _copy(run_dir, tmp_path)
    with sqlite3.connect(url.removeprefix("sqlite:///")) as con:
        con.execute("UPDATE daily_pnl SET realized_pnl = realized_pnl + 0.02 WHERE date = '2025-06-17'")
    r = _only_fails(check_run(out, db_url=url), "daily_pnl_sums")["daily_pnl_sums"]
    tue = float(_read(out / "trades.csv")[1][1]["pnl"]) + 0.02
    assert "off by +0.02" in r.message and f"2025-06-17: {tue:.2f}" in r.rows[0]


def test_exit_fill_annotated_with_the_previous_minutes_bar(run_dir, tmp_path):
    out, _ = _copy(run_dir, tmp_path)
    cols, rows = _read(out / "fills.csv")
    rows[1]["bar_ts"] = (pd.Timestamp(rows[1]["bar_ts"]) - pd.Timedelta(minutes=1)).isoformat()
    _write(out / "fills.csv", cols, rows)
    r = _only_fails(check_run(out), "exit_same_minute")["exit_same_minute"]
    assert r.failed == 1 and r.rows[0].startswith("fills.csv:3 ") and "annotated with bar 2025-06-16T14:19:00" in r.rows[0]


def test_market_exit_priced_on_another_minutes_bar(run_dir, tmp_path):
    out, _ = _copy(run_dir, tmp_path)
    cols, rows = _read(out / "fills.csv")
    rows[1]["price"] = "101.89"  # the 10:19 close 101.90 - 1 tick: inside the 10:20 bar, wrong minute
    _write(out / "fills.csv", cols, rows)
    res = _only_fails(check_run(out), "exit_same_minute", "trades_match_fills")
    assert "not at its minute's close 102 - 1 tick = 101.9900" in res["exit_same_minute"].rows[0]
    assert res["fills_in_bar"].status == PASS
    assert "exit_price 101.99 vs fills' average 101.8900" in res["trades_match_fills"].rows[0]


def test_trade_price_that_does_not_match_its_fills(run_dir, tmp_path):
    out, _ = _copy(run_dir, tmp_path)
    cols, rows = _read(out / "trades.csv")
    rows[1]["entry_price"] = "100.02"
    rows[0]["shares"] = "151"
    _write(out / "trades.csv", cols, rows)
    r = _only_fails(check_run(out), "trades_match_fills")["trades_match_fills"]
    assert r.failed == 2
    assert r.rows[0].startswith("trades.csv:2 ") and "shares 151 vs entry fills 150, exit fills 150" in r.rows[0]
    assert r.rows[1].startswith("trades.csv:3 ") and "entry_price 100.02 vs fills' average 100.0100" in r.rows[1]


def test_fill_outside_the_session(run_dir, tmp_path):
    out, _ = _copy(run_dir, tmp_path)
    cols, rows = _read(out / "fills.csv")
    rows[1]["ts"] = "2025-06-16T20:00:00.002000+00:00"  # after the 16:00 ET close's bar
    _write(out / "fills.csv", cols, rows)
    r = _only_fails(check_run(out), "fills_in_session")["fills_in_session"]
    assert r.rows[0].startswith("fills.csv:3 ") and "outside the session" in r.rows[0]


def test_stop_loss_beyond_its_budget(run_dir, tmp_path):
    out, _ = _copy(run_dir, tmp_path)
    cols, rows = _read(out / "trades.csv")
    # planned risk (100.01 - 99.10) x 150 = 136.50, + 1.50 slippage + fees, x 1.05 < the >= 153 lost;
    # the stop's bar opened at 99.10, not beyond the stop: no gap
    rows[1]["stop_loss"] = "99.10"
    _write(out / "trades.csv", cols, rows)
    r = _only_fails(check_run(out), "stop_loss_within_budget")["stop_loss_within_budget"]
    loss = -float(rows[1]["pnl"])
    assert r.rows[0].startswith(f"trades.csv:3 {rows[1]['signal_id']}") and f"loss {loss:.2f} >" in r.rows[0]
    # ... unless the stop's bar opened beyond the stop: a gap, reported as a note
    fcols, fills = _read(out / "fills.csv")
    fills[3]["bar_open"] = "99.00"
    _write(out / "fills.csv", fcols, fills)
    r = _by_name(check_run(out))["stop_loss_within_budget"]
    assert r.status == PASS and "gap: the stop's bar 2025-06-17T14:10:00+00:00 opened at 99, beyond the stop 99.1" in r.notes[0]


def test_entry_after_a_kill_switch_trip(run_dir, tmp_path):
    out, _ = _copy(run_dir, tmp_path)
    cols, rows = _read(out / "events.csv")
    trip = {"ts": "2025-06-16T13:45:00+00:00", "kind": "kill_switch", "message": "manual: test", "data": "{}"}
    reset = {"ts": "2025-06-17T13:31:00+00:00", "kind": "kill_switch_reset", "message": "resume", "data": "{}"}
    _write(out / "events.csv", cols, [trip, reset] + rows)
    r = _only_fails(check_run(out), "no_entry_after_kill_switch")["no_entry_after_kill_switch"]
    assert r.failed == 1 and r.rows[0].startswith("fills.csv:2 ") and "before its reset 2025-06-17T13:31:00" in r.rows[0]


def test_configured_timeframe_without_signals(run_dir, tmp_path):
    out, _ = _copy(run_dir, tmp_path)
    summary = json.loads((out / "summary.json").read_text())
    summary["signal_timeframes"] = ["1m", "10m", "1d"]
    (out / "summary.json").write_text(json.dumps(summary))
    r = _only_fails(check_run(out), "timeframes_present")["timeframes_present"]
    assert r.rows == ["1m: configured, but no 1m signal in decisions.csv"]


def test_timeframe_whose_entries_never_closed(run_dir, tmp_path):
    # drop the closed 10m trades: their entries filled (fills.csv) but no exit is left, and no
    # position was open at the end -> an entry without its exit
    out, _ = _copy(run_dir, tmp_path)
    cols, rows = _read(out / "trades.csv")
    _write(out / "trades.csv", cols, [])
    r = _only_fails(check_run(out), "timeframes_present", "trades_match_fills")["timeframes_present"]
    assert r.rows == ["10m: 2 entered but no closed 10m trade (0 position(s) open at the end)"]
    # an approved limit that never filled is no fault: entries without fills pass
    fcols, fills = _read(out / "fills.csv")
    _write(out / "fills.csv", fcols, [])
    assert _by_name(check_run(out))["timeframes_present"].status == PASS


# ── CLI ─────────────────────────────────────────────────────────────────────────────────────


def test_cli_exit_codes(run_dir, tmp_path, capsys):
    from strategies.cli import main

    out, url = run_dir
    assert main(["check", str(out), "--db", url]) == 0
    text = capsys.readouterr().out
    assert text.count("\nPASS ") + text.startswith("PASS ") == 11 and "FAIL" not in text

    bad, _ = _copy(run_dir, tmp_path)
    cols, rows = _read(bad / "decisions.csv")
    _write(bad / "decisions.csv", cols, rows + [rows[-1]])
    assert main(["check", str(bad)]) == 1
    text = capsys.readouterr().out
    line = next(ln for ln in text.splitlines() if "one_decision_per_signal" in ln)
    assert line.startswith("FAIL") and "decisions.csv:5" in line
    assert main(["check", str(bad), "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert {d["name"]: d["status"] for d in data}["one_decision_per_signal"] == FAIL

    for argv, msg in (([str(tmp_path / "nope")], "no such folder"),
                      ([str(tmp_path)], "not a backtest output folder"),
                      ([str(out), "--db", "not a url"], "not a database URL"),
                      ([str(out), "--db", f"sqlite:///{tmp_path / 'missing.db'}"], "no SQLite database"),
                      ([str(out), "--db", "nodialect://x/y"], "cannot open the database")):
        assert main(["check", *argv]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and msg in err and "Traceback" not in err
    assert not (tmp_path / "missing.db").exists()  # read-only: nothing created


def test_usage_error_is_a_value_error(tmp_path):
    with pytest.raises(CheckUsageError, match="no such folder"):
        check_run(tmp_path / "absent")


# ── units: what the crafted run has no example of ───────────────────────────────────────────


def _fill(**kw) -> Row:
    d = {c: "" for c in FILL_COLUMNS}
    d.update({"instrument": "QQQ", "side": "SELL", "qty": "10", "order_type": "MARKET", "role": "exit",
              "signal_id": "S1", "tick": "0.01"})
    d.update({k: str(v) for k, v in kw.items()})
    return Row("fills.csv:2", d)


def _run(fills: list[Row], events: list[dict] | None = None, **summary) -> RunOutputs:
    ev = None if events is None else [Row(f"events.csv:{i + 2}", e) for i, e in enumerate(events)]
    return RunOutputs(Path("."), {"calendar": "XNYS", **summary}, trades=[], decisions=[], fills=fills, events=ev)


def test_bar_index_assigns_fills_to_their_minute():
    m = 60_000_000_000
    bars = np.array([10 * m, 11 * m, 13 * m], dtype=np.int64)  # no bar closing at 12 m
    fills = np.array([10 * m, 10 * m + 3, 10 * m + 1_000_000, 10 * m + 1_000_001, 11 * m - 1, 12 * m - 5,
                      13 * m + 2 * 1_000_000, 9 * m + 1, 9 * m], dtype=np.int64)
    # 9 m + 1 ns: decided at the close of the minute ending at 9 m, which has no bar (nothing
    # traded): not the next minute's bar
    assert bar_index(bars, fills).tolist() == [0, 0, 0, 1, 1, -1, -1, -1, -1]
    assert minute_of(10 * m + 3) == 10 * m and minute_of(10 * m + 1_000_001) == 11 * m
    # the last print at or before each fill: 11 m - 1 ns -> the 10 m bar, 12 m - 5 ns -> 11 m
    assert last_bar_index(bars, fills).tolist() == [0, 0, 0, 0, 0, 1, 2, -1, -1]


def test_a_fill_in_a_minute_without_a_trade_is_priced_at_the_last_print():
    # an illiquid instrument: no bar for the minute ending 14:00; the exit decided then fills at
    # the last print (13:57 close 18.20) minus the tick of slippage: a note, not a failure
    row = dict(instrument="DBB", side="SELL", price="18.19", order_type="MARKET", role="exit",
               ts="2025-06-17T14:00:00.000000001+00:00", last_ts="2025-06-17T13:57:00+00:00", last_close="18.20")
    ok = _fill(**row)
    for check in (check_fills_in_bar, check_exit_same_minute):
        r = check(_run([ok]))
        assert r.status == PASS and ("did not trade" in " ".join(r.notes) or "without a trade" in " ".join(r.notes)), r
    far = _fill(**{**row, "price": "18.05"})
    r = check_fills_in_bar(_run([far]))
    assert r.status == FAIL and "not at its last print 18.2" in r.rows[0]


def test_option_fills_against_the_quote_in_force():
    ok = _fill(instrument="QQQ250617C00480000", price="2.10", quote_ts="2025-06-17T14:00:00+00:00",
               ts="2025-06-17T14:00:00.000000001+00:00", quote_bid="2.10", quote_ask="2.14")
    outside = _fill(instrument="QQQ250617C00480000", price="2.05", quote_ts="2025-06-17T14:00:00+00:00",
                    ts="2025-06-17T14:00:00.000000001+00:00", quote_bid="2.10", quote_ask="2.14")
    stale = _fill(instrument="QQQ250617C00480000", price="2.10", quote_ts="2025-06-17T13:58:00+00:00",
                  ts="2025-06-17T14:00:00.000000001+00:00", quote_bid="2.10", quote_ask="2.14")
    assert check_fills_in_bar(_run([ok])).status == PASS
    r = check_fills_in_bar(_run([outside]))
    assert r.status == FAIL and "outside the quote in force [2.1, 2.14]" in r.rows[0]
    assert check_exit_same_minute(_run([ok])).status == PASS
    r = check_exit_same_minute(_run([stale]))
    assert r.status == FAIL and "priced on the quote of 2025-06-17T13:58:00" in r.rows[0]


def test_fills_in_session_early_close():
    # 2025-07-03 closes 13:00 ET (17:00 UTC): the 13:00 bar's fill is inside, the next minute is not
    at_close = _fill(ts="2025-07-03T17:00:00.000000001+00:00")
    after = _fill(ts="2025-07-03T17:00:30+00:00")
    at_open = _fill(ts="2025-07-03T13:30:00+00:00")  # the 09:29-09:30 pre-market bar
    assert check_fills_in_session(_run([at_close])).status == PASS
    r = check_fills_in_session(_run([after, at_open]))
    assert r.status == FAIL and r.failed == 2 and "2025-07-03T17:00:00+00:00" in r.rows[0]


def test_kill_switch_windows_from_events():
    entry = _fill(role="entry:market", side="BUY", ts="2025-06-17T15:00:00.000000001+00:00")
    trip = {"ts": "2025-06-17T14:00:00+00:00", "kind": "kill_switch", "message": "daily_loss_limit", "data": "{}"}
    reset = {"ts": "2025-06-17T14:30:00+00:00", "kind": "kill_switch_reset", "message": "r", "data": "{}"}
    assert check_no_entry_after_kill_switch(_run([entry], [trip, reset])).status == PASS
    r = check_no_entry_after_kill_switch(_run([entry], [trip]))
    assert r.status == FAIL and "never reset" in r.rows[0]
    # without events.csv the summary's trip times are used
    r = check_no_entry_after_kill_switch(_run([entry], None, kill_switch_trips=["2025-06-17T14:00:00+00:00"],
                                              kill_switch_resets=[]))
    assert r.status == FAIL


def test_option_stop_loss_budget_is_the_premium():
    t = {"signal_id": "S1", "ticker": "QQQ250617C00480000", "instrument_type": "option", "direction": "long",
         "trade_type": "scalp", "entry_price": "2.00", "exit_price": "0.50", "shares": "2", "stop_loss": "479.0",
         "status": "closed", "exit_reason": "stop_loss", "pnl": "-300.22",
         "metadata_json": json.dumps({"multiplier": 100, "fees": 0.22})}
    run = _run([])
    run.trades = [Row("trades.csv:2", t)]
    assert check_stop_loss_within_budget(run).status == PASS  # 300.22 <= (400 + 2 + 0.22) x 1.05
    t2 = dict(t, pnl="-450.00")
    run.trades = [Row("trades.csv:2", t2)]
    r = check_stop_loss_within_budget(run)
    assert r.status == FAIL and "premium 400.00" in r.rows[0]
