"""The persisted order book (issue #16): ``executor_orders`` / ``executor_fills`` written by the
``OrderRecorder`` actor in a real backtest, checked against NautilusTrader's own cache and the
run's fills.csv, on SQLite and PostgreSQL.

The fixture run is tests/test_backtest_e2e.py's hand-computed round trip: one long QQQ signal,
150 shares bought at market 100.01, the protective stop (sell stop 99.00) rests at the venue,
the 2R target 102.00 is reached at 10:20 ET: the stop is cancelled first, then a market sell
fills at 101.99.
"""

from __future__ import annotations

import csv
from collections import Counter
from datetime import timedelta

import pytest
import sqlalchemy as sa

from backtests.runner import BacktestSpec, run_backtest
from strategies.journal.models import TERMINAL_ORDER_STATUSES, FillRecord, OrderRecord
from strategies.order_recorder import parse_tags
from tests.test_backtest_e2e import SESSION_OPEN, fixture_catalog, fixture_signal, signals_catalog  # noqa: F401

WORKING = {"SUBMITTED", "ACCEPTED", "TRIGGERED", "PENDING_UPDATE", "PENDING_CANCEL", "PARTIALLY_FILLED",
           "EMULATED", "RELEASED", "INITIALIZED"}


def run_with_engine(spec: BacktestSpec, monkeypatch: pytest.MonkeyPatch):
    """Run ``spec``; also return NautilusTrader's view of every order at the end of the run (taken
    where the runner collects the fills: after the run, before the engine is disposed)."""
    import backtests.fills

    seen: dict = {}
    collect = backtests.fills.collect_fills

    def snapshot_then_collect(engine, *a, **kw):
        seen["orders"] = {o.client_order_id.value: (o.status_string(), float(o.filled_qty))
                          for o in engine.cache.orders()}
        return collect(engine, *a, **kw)

    monkeypatch.setattr(backtests.fills, "collect_fills", snapshot_then_collect)
    result = run_backtest(spec)
    return result, seen["orders"]


def test_parse_tags() -> None:
    assert parse_tags(["signal=abc-1", "role=entry:market"]) == (["signal=abc-1", "role=entry:market"],
                                                                  "abc-1", "entry:market")
    assert parse_tags(None) == ([], None, None)
    assert parse_tags(["x", "role=stop"]) == (["x", "role=stop"], None, "stop")


def test_backtest_journals_orders_and_fills(tmp_path, fixture_catalog, db_url, monkeypatch):  # noqa: F811
    out = tmp_path / "out"
    sig = fixture_signal()
    result, nautilus = run_with_engine(BacktestSpec(
        catalog=fixture_catalog, symbols=["QQQ"], mode="stock", progress=False, out_dir=out, db_url=db_url,
        signals_catalog=signals_catalog(tmp_path, [sig])), monkeypatch)
    run_id = result.summary["journal"]["run_id"]
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as c:
            orders = c.execute(sa.select(OrderRecord.__table__).where(OrderRecord.run_id == run_id)
                               .order_by(OrderRecord.created_at, OrderRecord.id)).mappings().all()
            fills = c.execute(sa.select(FillRecord.__table__).where(FillRecord.run_id == run_id)
                              .order_by(FillRecord.ts, FillRecord.id)).mappings().all()
    finally:
        engine.dispose()

    # the three orders of the round trip, as computed by hand (module docstring)
    got = [(o["role"], o["side"], o["order_type"], o["quantity"], o["filled_qty"], o["status"]) for o in orders]
    assert got == [("entry:market", "BUY", "MARKET", 150.0, 150.0, "FILLED"),
                   ("stop", "SELL", "STOP_MARKET", 150.0, 0.0, "CANCELED"),
                   ("exit", "SELL", "MARKET", 150.0, 150.0, "FILLED")]
    entry, stop, exit_ = orders
    assert entry["avg_px"] == pytest.approx(100.01) and exit_["avg_px"] == pytest.approx(101.99)
    assert stop["trigger_price"] == pytest.approx(99.00) and stop["avg_px"] is None
    assert stop["reduce_only"] is True or stop["reduce_only"] == 1
    assert {o["signal_id"] for o in orders} == {sig.signal_id}
    assert all(o["ticker"] == "QQQ" and o["instrument_id"] == "QQQ.XNAS" for o in orders)
    assert [(f["side"], f["quantity"], f["price"]) for f in fills] == [("BUY", 150.0, pytest.approx(100.01)),
                                                                      ("SELL", 150.0, pytest.approx(101.99))]
    assert fills[0]["ts"].replace(tzinfo=None) == (SESSION_OPEN + timedelta(minutes=30)).replace(tzinfo=None)
    assert sum(f["commission"] for f in fills) == pytest.approx(0.02)  # TAF on the sale (test_backtest_e2e)

    # run-wide invariants: the journal's order book is NautilusTrader's
    assert {o["client_order_id"]: (o["status"], o["filled_qty"]) for o in orders} == nautilus
    with (out / "fills.csv").open() as f:
        csv_fills = Counter((r["client_order_id"], float(r["qty"]), round(float(r["price"]), 6))
                            for r in csv.DictReader(f))
    assert Counter((f["client_order_id"], f["quantity"], round(f["price"], 6)) for f in fills) == csv_fills
    for o in orders:
        assert o["filled_qty"] == sum(f["quantity"] for f in fills if f["client_order_id"] == o["client_order_id"])
        assert o["status"] in TERMINAL_ORDER_STATUSES | WORKING


@pytest.mark.slow
def test_order_book_matches_nautilus_on_a_sample_run(tmp_path, sample_catalog, monkeypatch):
    """A multi-day run of the sample data: many orders (entries, limits that expire, stops,
    exits). Every fill NautilusTrader made is in the journal once, and every order's journaled
    status and filled quantity are the engine's."""
    db = f"sqlite:///{tmp_path / 'j.db'}"
    out = tmp_path / "out"
    result, nautilus = run_with_engine(BacktestSpec(
        catalog=sample_catalog, symbols=["QQQ"], start="2025-06-16", end="2025-06-21", mode="stock",
        progress=False, out_dir=out, db_url=db), monkeypatch)
    run_id = result.summary["journal"]["run_id"]
    engine = sa.create_engine(db)
    with engine.connect() as c:
        orders = c.execute(sa.select(OrderRecord.client_order_id, OrderRecord.status, OrderRecord.filled_qty)
                           .where(OrderRecord.run_id == run_id)).all()
        fills = c.execute(sa.select(FillRecord.client_order_id, FillRecord.quantity, FillRecord.price)
                          .where(FillRecord.run_id == run_id)).all()
    engine.dispose()
    assert result.summary["trades"] >= 5  # a run with something to check
    assert {cid: (st, q) for cid, st, q in orders} == nautilus
    with (out / "fills.csv").open() as f:
        csv_fills = Counter((r["client_order_id"], float(r["qty"]), round(float(r["price"]), 6))
                            for r in csv.DictReader(f))
    assert len(fills) == sum(csv_fills.values())
    assert Counter((cid, q, round(p, 6)) for cid, q, p in fills) == csv_fills
    statuses = Counter(st for _, st, _ in orders)
    assert statuses["FILLED"] >= 2 * result.summary["trades"]  # an entry and an exit (or stop) per trade
