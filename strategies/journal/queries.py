"""Journal reads: trade history, open trades, the daily summary, decisions, events, equity curve.

``JournalReader(engine_or_url, run_id)`` reads one run's rows (``run_id`` None: the live rows,
``"live"`` or NULL). ``TradeJournalWriter`` is a JournalReader that also writes; ``JournalSink``
flushes its queue before delegating a read to its writer. Times come back aware UTC and JSON
columns as dicts/lists.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import and_, exists, or_, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import sessionmaker

from strategies import stats
from strategies.journal.db import make_engine
from strategies.journal.models import (
    LIVE_RUN_ID,
    DailyPnLRecord,
    EquitySnapshotRecord,
    ExecutorEventRecord,
    SignalDecisionRecord,
    TradeExecutionRecord,
    _finite,
)
from strategies.journal.records import (
    KILL_SWITCH_EVENT,
    DailySummary,
    TradeRecord,
    _aware,
    _live_or,
    ny_day_bounds,
)


def run_filter(col: Any, run_id: str) -> Any:
    """``col`` selects ``run_id``'s rows (live: ``"live"`` or NULL)."""
    if run_id == LIVE_RUN_ID:
        return or_(col.is_(None), col == LIVE_RUN_ID)
    return col == run_id


def unrealized_pnl(rows: Sequence[TradeExecutionRecord]) -> float:
    """Open rows marked at their last known price (``metadata_json["last_price"]``; rows without
    one count 0): ``stats.round_trip_pnl(entry, last, shares, direction, multiplier)`` summed."""
    total = 0.0
    for r in rows:
        meta = r.metadata_json if isinstance(r.metadata_json, dict) else {}
        last = meta.get("last_price")
        if last is None:
            continue
        total += stats.round_trip_pnl(r.entry_price, float(last), r.shares, r.direction,
                                      float(meta.get("multiplier") or 1.0))
    return total


def daily_summary(day: date, closed_pnls: Sequence[float], open_rows: Sequence[TradeExecutionRecord],
                  equity: Sequence[float], kill_switch: bool) -> DailySummary:
    """The DailySummary of ``day`` from its rows (see DailySummary): pure, no database."""
    dd = stats.max_drawdown(equity)
    return DailySummary(
        date=day,
        starting_equity=equity[0] if equity else None,
        ending_equity=equity[-1] if equity else None,
        realized_pnl=math.fsum(closed_pnls),
        unrealized_pnl=unrealized_pnl(open_rows),
        total_trades=len(closed_pnls),
        winning_trades=sum(1 for p in closed_pnls if p > 0),
        losing_trades=sum(1 for p in closed_pnls if p < 0),
        max_drawdown=dd.amount,
        kill_switch_triggered=kill_switch,
        max_drawdown_pct=dd.pct,
        equity_snapshots=len(equity),
        win_rate=stats.win_rate(closed_pnls),
        profit_factor=stats.profit_factor(closed_pnls),
        expectancy=stats.expectancy(closed_pnls),
    )


class JournalReader:
    """Reads of one run's journal rows on ``engine_or_url`` (an Engine, a URL, or None for
    ``database_url()``); the schema must exist (``strategies.journal.db.upgrade(url)``)."""

    def __init__(self, engine_or_url: Engine | str | None = None, run_id: str | None = None) -> None:
        if isinstance(engine_or_url, Engine):
            self.engine, self._owns_engine = engine_or_url, False
        else:
            self.engine, self._owns_engine = make_engine(engine_or_url), True
        self.run_id: str = _live_or(run_id)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    # ── daily P&L ──
    def get_daily_summary(self, day: date) -> DailySummary:
        """The summary of New York date ``day`` from the recorded rows (see DailySummary)."""
        if isinstance(day, datetime) or not isinstance(day, date):
            raise ValueError(f"day must be a datetime.date, got {day!r}")
        start, end = ny_day_bounds(day)
        T, E, V = TradeExecutionRecord, EquitySnapshotRecord, ExecutorEventRecord
        with self._sessions() as s:
            pnls = [p or 0.0 for (p,) in s.execute(select(T.pnl).where(
                run_filter(T.run_id, self.run_id), T.status == "closed",
                T.exit_time >= start, T.exit_time < end).order_by(T.id))]
            open_rows = s.scalars(select(T).where(
                run_filter(T.run_id, self.run_id), T.status == "open", T.entry_time < end)
                .order_by(T.id)).all()
            equity = [e for (e,) in s.execute(select(E.equity).where(
                run_filter(E.run_id, self.run_id), E.ts >= start, E.ts < end).order_by(E.ts, E.id))]
            killed = bool(s.scalar(select(exists().where(
                run_filter(V.run_id, self.run_id), V.kind == KILL_SWITCH_EVENT, V.ts >= start, V.ts < end))))
        return daily_summary(day, pnls, open_rows, equity, killed)

    def get_daily_pnl(self, day: date) -> DailyPnLRecord | None:
        """This run's ``daily_pnl`` row of ``day`` (None when not written)."""
        with self._sessions() as s:
            return s.scalars(select(DailyPnLRecord).where(
                DailyPnLRecord.run_id == self.run_id, DailyPnLRecord.date == day)).first()

    # ── trades ──
    def get_trade_history(self, ticker: str | None = None, days: float | None = 30, *,
                          now: datetime) -> list[TradeRecord]:
        """This run's trades entered at or before ``now`` and entered or exited within the last
        ``days`` days (None: no lower bound), oldest entry first.

        ``ticker`` matches the traded ticker or the signal ticker (``original_ticker``), so "QQQ"
        also finds the TQQQ/SQQQ trades taken on QQQ signals.
        """
        now = _aware("now", now)
        T = TradeExecutionRecord
        conds = [run_filter(T.run_id, self.run_id), T.entry_time <= now]
        if days is not None:
            d = _finite("days", days)
            if d is None or d < 0:
                raise ValueError(f"days must be >= 0, got {days!r}")
            cutoff = now - timedelta(days=d)
            conds.append(or_(T.entry_time >= cutoff, and_(T.exit_time.is_not(None), T.exit_time >= cutoff)))
        if ticker is not None:
            t = str(ticker).strip().upper()
            conds.append(or_(T.ticker == t, T.original_ticker == t))
        with self._sessions() as s:
            rows = s.scalars(select(T).where(*conds).order_by(T.entry_time, T.id)).all()
            return [TradeRecord.from_orm(r) for r in rows]

    def get_open_trades(self) -> list[TradeRecord]:
        """This run's trades still ``open`` (what a restarted executor must manage again)."""
        T = TradeExecutionRecord
        with self._sessions() as s:
            rows = s.scalars(select(T).where(run_filter(T.run_id, self.run_id), T.status == "open")
                             .order_by(T.entry_time, T.id)).all()
            return [TradeRecord.from_orm(r) for r in rows]

    # ── decisions, events, equity ──
    def get_decisions(self, signal_id: str | None = None) -> list[SignalDecisionRecord]:
        D = SignalDecisionRecord
        conds = [run_filter(D.run_id, self.run_id)]
        if signal_id is not None:
            conds.append(D.signal_id == signal_id)
        with self._sessions() as s:
            return list(s.scalars(select(D).where(*conds).order_by(D.ts, D.id)).all())

    def get_decided_signal_ids(self, since: datetime | None = None) -> dict[str, datetime]:
        """Signal id -> time of its first decision, for this run's decisions taken at or after
        ``since`` (None: all of them). What a restarted executor loads to refuse a re-sent signal
        id (``duplicate_signal``); rows without a signal id (malformed input) are skipped."""
        from sqlalchemy import func

        D = SignalDecisionRecord
        conds = [run_filter(D.run_id, self.run_id), D.signal_id.is_not(None), D.signal_id != "",
                 or_(D.reason_code.is_(None), D.reason_code != "invalid_signal")]  # never understood
        if since is not None:
            conds.append(D.ts >= _aware("since", since))
        with self._sessions() as s:
            rows = s.execute(select(D.signal_id, func.min(D.ts)).where(*conds).group_by(D.signal_id)).all()
        return {sid: _aware("ts", ts) for sid, ts in rows}

    def get_events(self, kind: str | None = None) -> list[ExecutorEventRecord]:
        V = ExecutorEventRecord
        conds = [run_filter(V.run_id, self.run_id)]
        if kind is not None:
            conds.append(V.kind == kind)
        with self._sessions() as s:
            return list(s.scalars(select(V).where(*conds).order_by(V.ts, V.id)).all())

    def get_equity_curve(self) -> list[tuple[datetime, float]]:
        E = EquitySnapshotRecord
        with self._sessions() as s:
            return [(ts, eq) for ts, eq in s.execute(
                select(E.ts, E.equity).where(run_filter(E.run_id, self.run_id)).order_by(E.ts, E.id))]

    def close(self) -> None:
        if self._owns_engine:
            self.engine.dispose()


__all__ = ["JournalReader", "daily_summary", "run_filter", "unrealized_pnl"]
