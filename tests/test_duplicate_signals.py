"""Duplicate signal ids are rejected ``duplicate_signal`` for the life of the journal (issue #19).

The executor keeps the signal ids it decided in this run and, at start-up, loads the ids the
journal already has for its run id (last 30 days; live: run id "live"). A re-sent id is recorded
as a rejected decision with code ``duplicate_signal`` and the first decision's time -- also when
its first position is already closed, and across a restart. A backtest with a fresh run id sees
only its own ids.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from backtests.runner import BacktestSpec, run_backtest
from strategies.journal import JournalReader, TradeJournalWriter
from tests.test_backtest_e2e import SESSION_OPEN, fixture_catalog, fixture_signal, signals_catalog  # noqa: F401

FIRST = SESSION_OPEN + timedelta(minutes=30)
SECOND = SESSION_OPEN + timedelta(minutes=55)  # after the first trade closed (profit target at 10:20)


def _second(signal_id: str):
    # the same kind of signal 25 minutes later, at the price of the time (102.50)
    return fixture_signal(signal_id=signal_id, timestamp=SECOND, entry_price=102.50, stop_loss=101.50,
                          target_price=104.50)


def _run(catalog: Path, folder: Path, signals: list, **kw):
    return run_backtest(BacktestSpec(catalog=catalog, symbols=["QQQ"], mode="stock", progress=False,
                                     signals_catalog=signals_catalog(folder, signals), **kw))


def test_same_id_after_the_first_closed_is_duplicate_signal(tmp_path, fixture_catalog):  # noqa: F811
    # control: with a different id the second signal trades
    ok = _run(fixture_catalog, tmp_path / "a", [fixture_signal(signal_id="SIG-A"), _second("SIG-B")])
    assert [d.approved for d in ok.log.decisions] == [True, True] and len(ok.log.trades) == 2

    r = _run(fixture_catalog, tmp_path / "b", [fixture_signal(signal_id="SIG-A"), _second("SIG-A")])
    first, second = r.log.decisions
    assert first.approved and first.ts == FIRST
    assert r.log.trades[0]["exit_time"] < SECOND  # the first position was closed before the re-send
    assert not second.approved and second.reason_code == "duplicate_signal"
    assert second.signal_id == "SIG-A" and second.ts == SECOND
    assert second.details["first_decided_at"] == FIRST.isoformat() and FIRST.isoformat() in second.reason
    assert len(r.log.trades) == 1 and second.order_ids == [] and second.shares == 0
    assert r.summary["rejected_by_reason"] == {"duplicate_signal": 1}


def test_duplicate_across_a_restart_with_the_journal(tmp_path, fixture_catalog, monkeypatch):  # noqa: F811
    db = f"sqlite:///{tmp_path / 'journal.db'}"
    monkeypatch.setattr("strategies.journal.new_run_id", lambda: "bt-restart")
    r1 = _run(fixture_catalog, tmp_path / "r1", [fixture_signal(signal_id="SIG-R")], db_url=db)
    assert r1.summary["journal"]["run_id"] == "bt-restart" and len(r1.log.trades) == 1

    # the restart: same run id, same journal; the signal is sent again (after its trade closed)
    monkeypatch.setattr(TradeJournalWriter, "start_backtest_run", lambda self, *a, **k: None)
    r2 = _run(fixture_catalog, tmp_path / "r2", [_second("SIG-R")], db_url=db)
    (d,) = r2.log.decisions
    assert not d.approved and d.reason_code == "duplicate_signal"
    assert d.details["first_decided_at"] == FIRST.isoformat() and r2.log.trades == []
    reader = JournalReader(db, run_id="bt-restart")
    assert [(x.reason_code, x.approved) for x in reader.get_decisions("SIG-R")] == \
        [(None, True), ("duplicate_signal", False)]
    assert reader.get_decided_signal_ids() == {"SIG-R": FIRST}
    assert reader.get_decided_signal_ids(since=SECOND) == {"SIG-R": SECOND}  # bounded by `since`
    reader.close()

    # a backtest with a fresh run id in the same database sees only its own ids: it trades
    monkeypatch.undo()
    r3 = _run(fixture_catalog, tmp_path / "r3", [_second("SIG-R")], db_url=db)
    assert [d.approved for d in r3.log.decisions] == [True]


def test_invalid_signal_ids_are_not_remembered(tmp_path):
    """An ``invalid_signal`` rejection (never understood) does not block a corrected re-send."""
    from datetime import datetime, timezone

    from strategies.execution_log import DecisionRecord
    from strategies.journal import JournalSink, upgrade

    url = f"sqlite:///{tmp_path / 'j.db'}"
    upgrade(url)
    sink = JournalSink(url, run_id="live")
    t = datetime(2025, 6, 16, 14, 0, tzinfo=timezone.utc)
    for sid, code in (("S1", "invalid_signal"), ("S2", None), ("S2", "duplicate_signal"), ("", "invalid_signal")):
        sink.record_decision(DecisionRecord(ts=t, signal_id=sid, ticker="QQQ", timeframe="10m",
                                            signal_type="cloud_flip_bullish", direction="long", conviction=80,
                                            approved=code is None, reason_code=code, reason=code, instrument=None,
                                            instrument_type=None, shares=0))
        t += timedelta(minutes=1)
    assert sink.get_decided_signal_ids() == {"S2": datetime(2025, 6, 16, 14, 1, tzinfo=timezone.utc)}
    sink.close()


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(pytest.main([__file__, "-q"]))
