"""The invariants over a backtest's journal (``trade-executor check OUT --db URL``): the journal's
closed trades equal trades.csv row for row, and the run's daily_pnl rows sum to the summary. Read
only: SQLite opened ``mode=ro``, PostgreSQL in a read-only transaction."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, Callable

from backtests.check import (
    CENT,
    CheckResult,
    FAIL,
    CheckUsageError,
    PASS,
    RunOutputs,
    _closed,
    _f,
    _result,
    _skip,
)


class Journal:
    """Read-only access to a trade-executor journal (SQLite or PostgreSQL)."""

    def __init__(self, url: str) -> None:
        import sqlalchemy as sa
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError, SQLAlchemyError

        self.sa = sa
        try:
            u = make_url(url)
        except ArgumentError:
            raise CheckUsageError(f"--db: not a database URL: {url!r}") from None
        self.shown = u.render_as_string(hide_password=True)
        try:
            backend = u.get_backend_name()
            if backend == "sqlite":
                self.engine = self._sqlite_read_only(u)
            else:
                self.engine = sa.create_engine(u)
            self.conn = self.engine.connect()
            if self.engine.dialect.name == "postgresql":
                self.conn.exec_driver_sql("SET TRANSACTION READ ONLY")
            tables = set(sa.inspect(self.conn).get_table_names())
        except CheckUsageError:
            raise
        except (SQLAlchemyError, ImportError) as e:
            why = str(getattr(e, "orig", None) or e).strip().splitlines()[0]
            raise CheckUsageError(f"--db {self.shown}: cannot open the database ({why})") from None
        missing = {"trade_executions", "daily_pnl"} - tables
        if missing:
            self.close()
            raise CheckUsageError(f"--db {self.shown}: not a trade-executor journal (no {', '.join(sorted(missing))} "
                                  "table; run 'trade-executor db upgrade')")

    def _sqlite_read_only(self, u: Any) -> Any:
        import sqlite3

        db = u.database
        if not db or db == ":memory:":
            raise CheckUsageError(f"--db {self.shown}: an in-memory SQLite database holds no journal")
        path = Path(db)
        if not path.is_file():
            raise CheckUsageError(f"--db {self.shown}: no SQLite database at {path}")
        uri = path.resolve().as_uri() + "?mode=ro"  # percent-encoded: any file name works
        return self.sa.create_engine("sqlite://", creator=lambda: sqlite3.connect(uri, uri=True))

    def rows(self, sql: str, **params: Any) -> list[Any]:
        return list(self.conn.execute(self.sa.text(sql), params).mappings())

    def close(self) -> None:
        try:
            self.conn.rollback()
            self.conn.close()
        finally:
            self.engine.dispose()


def _run_id(run: RunOutputs) -> str | None:
    j = run.summary.get("journal")
    return j.get("run_id") if isinstance(j, dict) else None


def _same_money(a: Any, b: Any) -> bool:
    fa, fb = _f(a), _f(b)
    if fa is None or fb is None:
        return fa is None and fb is None
    return abs(fa - fb) <= CENT


def check_journal_equals_trades(run: RunOutputs, db: Journal | None) -> CheckResult:
    name = "journal_equals_trades"
    if db is None:
        return _skip(name, "no --db given")
    rid = _run_id(run)
    if rid is None:
        return _skip(name, "the run was not journaled (summary.json has no journal run_id)")
    if run.trades is None:
        return _skip(name, "no trades.csv in the output folder")
    rows = db.rows("SELECT id, signal_id, ticker, shares, entry_price, exit_price, pnl, exit_reason, status, "
                   "order_id FROM trade_executions WHERE run_id = :r ORDER BY id", r=rid)
    closed = [r for r in rows if r["status"] == "closed"]
    others = Counter(r["status"] for r in rows if r["status"] != "closed")
    journal: dict[tuple, list[Any]] = defaultdict(list)
    for r in closed:
        journal[(r["signal_id"] or "", r["order_id"] or "")].append(r)
    bad: list[str] = []
    csv_trades = _closed(run.trades)
    for t in csv_trades:
        key = (t["signal_id"], t["order_id"])
        label = f"{t.where} {t['signal_id']}"
        if not journal.get(key):
            bad.append(f"{label}: no closed trade_executions row for run {rid}")
            continue
        j = journal[key].pop(0)
        diffs = []
        for col in ("entry_price", "exit_price", "pnl"):
            if not _same_money(t[col], j[col]):
                diffs.append(f"{col} csv {t[col]} vs journal {j[col]}")
        if t["ticker"] != j["ticker"]:
            diffs.append(f"ticker csv {t['ticker']} vs journal {j['ticker']}")
        if _f(t["shares"]) != _f(j["shares"]):
            diffs.append(f"shares csv {t['shares']} vs journal {j['shares']}")
        if (t["exit_reason"] or None) != (j["exit_reason"] or None):
            diffs.append(f"exit_reason csv {t['exit_reason']} vs journal {j['exit_reason']}")
        if diffs:
            bad.append(f"{label} (journal id {j['id']}): " + "; ".join(diffs))
    for rest in journal.values():
        for j in rest:
            bad.append(f"journal trade_executions id {j['id']} {j['signal_id']}: closed in the journal, not in trades.csv")
    notes = [f"{n} {status} row(s) in the journal (not in trades.csv)" for status, n in sorted(others.items())]
    return _result(name, len(csv_trades), bad, "trades", f"equal to the journal's closed rows of run {rid}",
                   notes=notes)


def check_daily_pnl_sums(run: RunOutputs, db: Journal | None) -> CheckResult:
    name = "daily_pnl_sums"
    if db is None:
        return _skip(name, "no --db given")
    rid = _run_id(run)
    if rid is None:
        return _skip(name, "the run was not journaled (summary.json has no journal run_id)")
    rows = db.rows("SELECT date, realized_pnl FROM daily_pnl WHERE run_id = :r ORDER BY date", r=rid)
    total = math.fsum(float(r["realized_pnl"]) for r in rows)
    realised = _f(run.summary.get("realized_pnl"))
    if realised is None:
        return CheckResult(name, FAIL, len(rows), 1, "summary.json has no realized_pnl", ["summary.json realized_pnl"])
    if abs(total - realised) <= CENT:
        return CheckResult(name, PASS, len(rows), 0,
                           f"{len(rows)} daily_pnl rows sum to {total:.2f} = summary realized_pnl {realised:.2f}")
    per_day = ", ".join(f"{r['date']}: {float(r['realized_pnl']):.2f}" for r in rows[:6])
    return CheckResult(name, FAIL, len(rows), 1,
                       f"{len(rows)} daily_pnl rows sum to {total:.2f}, summary realized_pnl {realised:.2f} "
                       f"(off by {total - realised:+.2f})", [f"daily_pnl of run {rid}: {per_day or 'no rows'}"])


DB_CHECKS: tuple[Callable[[RunOutputs, Journal | None], CheckResult], ...] = (
    check_journal_equals_trades,
    check_daily_pnl_sums,
)
