"""Data access of the operator dashboard (issue #16): pure functions over a SQLAlchemy engine that
return pandas DataFrames (or plain values). The Streamlit page (``app/pages/trade_executor.py``)
only lays these out; everything it shows is computed and unit-tested here
(tests/test_dashboard_data.py, SQLite and PostgreSQL).

* Runs: ``"live"`` (the live executor's rows: run id ``live`` or NULL) or a backtest's run id.
* Times: every function that needs "now" takes it as an argument (``now=``); nothing here reads
  the wall clock. Timestamps come back as aware UTC pandas Timestamps.
* Operator actions (``trip_kill_switch``, ``reset_kill_switch``, ``set_mode``) write
  ``executor_control`` through ``ControlStore`` (``updated_by`` / ``updated_at``: who and when)
  AND journal an ``operator_action`` event (run id ``live``) with who, when and what, so the
  kill-switch history shows operator trips and resets next to the executor's own.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import or_, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from strategies import stats
from strategies.journal.control import ControlStore
from strategies.journal.models import (
    LIVE_RUN_ID,
    TERMINAL_ORDER_STATUSES,
    BacktestRunRecord,
    EquitySnapshotRecord,
    ExecutorEventRecord,
    FillRecord,
    OrderRecord,
    SignalDecisionRecord,
    TradeExecutionRecord,
)
from strategies.journal.queries import run_filter
from strategies.journal.records import event_record
from strategies.trade_executor.etf_catalog import sector_of

OPERATOR_EVENT = "operator_action"
KILL_SWITCH_KINDS = ("kill_switch", "kill_switch_reset", "kill_switch_restored", "broker_account_halt")
INSTRUMENT_MODES = ("options", "leveraged_etf", "both", "stock")
OPTION_MULTIPLIER = 100.0
REQUIRED_TABLES = ("trade_executions", "signal_decisions", "executor_events", "equity_snapshots",
                   "executor_control", "backtest_runs", "executor_orders", "executor_fills")


class DashboardError(RuntimeError):
    """The database cannot be used by the dashboard: a one-line reason for the banner."""


def _ts(v: Any) -> pd.Timestamp | None:
    if v is None:
        return None
    t = pd.Timestamp(v)
    return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")


def redact(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - unparsable: show nothing of it
        return "(unparsable URL)"


def open_engine(url: str) -> Engine:
    """The journal's engine (``strategies.journal.db.make_engine``); DashboardError for a bad URL
    or a SQLite file that does not exist (the dashboard never creates an empty journal by a typo)."""
    from sqlalchemy.engine import make_url

    from strategies.journal.db import make_engine

    try:
        u = make_url(url)
    except Exception:  # noqa: BLE001 - one line for the banner
        raise DashboardError(f"not a database URL: {redact(url)}") from None
    if u.get_backend_name() == "sqlite":
        db = u.database or ""
        if db and db != ":memory:" and not db.startswith("file:") and not Path(db).expanduser().is_file():
            raise DashboardError(f"no journal database at {db} (a backtest with --db, a live node or "
                                 "`trade-executor db upgrade --db URL` creates it)")
    try:
        return make_engine(url)
    except Exception as e:  # noqa: BLE001 - e.g. an unknown driver
        raise DashboardError(f"cannot open {redact(url)}: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from None


def check_database(engine: Engine) -> None:
    """DashboardError with a one-line reason when the database does not answer or lacks the
    journal tables (``trade-executor db upgrade``); None when it can be used."""
    from sqlalchemy import inspect

    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
            tables = set(inspect(conn).get_table_names())
    except SQLAlchemyError as e:
        msg = str(getattr(e, "orig", e)).strip().splitlines()[0] if str(getattr(e, "orig", e)).strip() else type(e).__name__
        raise DashboardError(f"database not reachable ({redact(str(engine.url))}): {msg}") from None
    missing = [t for t in REQUIRED_TABLES if t not in tables]
    if missing:
        raise DashboardError(f"database {redact(str(engine.url))} has no journal tables ({', '.join(missing)}): "
                             "run `trade-executor db upgrade --db URL`")


def _frame(engine: Engine, stmt: Any, columns: Sequence[str]) -> pd.DataFrame:
    with engine.connect() as conn:
        rows = conn.execute(stmt).all()
    return pd.DataFrame([tuple(r) for r in rows], columns=list(columns))


def _utc_cols(df: pd.DataFrame, *cols: str) -> pd.DataFrame:
    df = df.copy()
    for c in cols:
        if c in df.columns:
            df[c] = pd.to_datetime(df[c], utc=True)
    return df


# ── runs ──────────────────────────────────────────────────────────────────────────────────────


def run_choices(engine: Engine) -> list[str]:
    """``"live"`` first, then the backtest runs, newest first."""
    B = BacktestRunRecord
    with engine.connect() as conn:
        ids = conn.execute(select(B.run_id).order_by(B.started_at.desc(), B.run_id.desc())).scalars().all()
    return [LIVE_RUN_ID, *ids]


def backtest_runs(engine: Engine) -> pd.DataFrame:
    """One row per backtest run with the numbers of its summary (when it finished)."""
    B = BacktestRunRecord
    with engine.connect() as conn:
        rows = conn.execute(select(B.run_id, B.started_at, B.mode, B.symbols, B.params_json, B.summary_json)
                            .order_by(B.started_at.desc(), B.run_id.desc())).all()
    out = []
    for run_id, started, mode, symbols, params, summary in rows:
        s = summary or {}
        p = params or {}
        out.append({
            "run_id": run_id, "started_at": started, "mode": mode, "symbols": ",".join(symbols or []),
            "start": p.get("start") or s.get("start"), "end": p.get("end") or s.get("end"),
            "finished": bool(summary), "return_pct": s.get("total_return_pct"),
            "max_drawdown_pct": s.get("max_drawdown_pct"), "sharpe": s.get("sharpe"), "trades": s.get("trades"),
            "win_rate": s.get("win_rate"), "fees": s.get("fees"), "ending_equity": s.get("ending_equity"),
            "signals_received": s.get("signals_received"), "signals_rejected": s.get("signals_rejected"),
        })
    cols = ["run_id", "started_at", "mode", "symbols", "start", "end", "finished", "return_pct",
            "max_drawdown_pct", "sharpe", "trades", "win_rate", "fees", "ending_equity", "signals_received",
            "signals_rejected"]
    return _utc_cols(pd.DataFrame(out, columns=cols), "started_at")


def per_mode_table(runs: pd.DataFrame) -> pd.DataFrame:
    """The latest finished run of each instrument mode, side by side (mode, return, drawdown, ...)."""
    done = runs[runs["finished"]] if len(runs) else runs
    if not len(done):
        return pd.DataFrame(columns=["mode", "run_id", "return_pct", "max_drawdown_pct", "sharpe", "trades",
                                     "win_rate", "fees", "ending_equity"])
    latest = done.sort_values("started_at").groupby("mode", as_index=False).tail(1)
    return latest[["mode", "run_id", "return_pct", "max_drawdown_pct", "sharpe", "trades", "win_rate", "fees",
                   "ending_equity"]].sort_values("mode").reset_index(drop=True)


def compare_output(folder: str | Path) -> pd.DataFrame:
    """``compare.csv`` of a ``trade-executor compare`` output folder (one row per mode)."""
    path = Path(folder) / "compare.csv"
    if not path.is_file():
        raise FileNotFoundError(f"no compare.csv in {folder}")
    return pd.read_csv(path)


def compare_equity(folder: str | Path) -> pd.DataFrame:
    """The equity curves of a compare output's modes (``OUT/<mode>/trades.csv`` cumulated):
    columns mode, ts, equity."""
    folder = Path(folder)
    frames = []
    for mode_dir in sorted(p for p in folder.iterdir() if p.is_dir() and (p / "summary.json").is_file()):
        import json

        summary = json.loads((mode_dir / "summary.json").read_text())
        start_eq = float(summary.get("starting_equity") or 0.0)
        trades = pd.read_csv(mode_dir / "trades.csv") if (mode_dir / "trades.csv").is_file() else pd.DataFrame()
        if len(trades) and "exit_time" in trades:
            t = trades.dropna(subset=["exit_time"]).sort_values("exit_time")
            frames.append(pd.DataFrame({"mode": mode_dir.name, "ts": pd.to_datetime(t["exit_time"], utc=True),
                                        "equity": start_eq + t["pnl"].astype(float).cumsum()}))
    if not frames:
        return pd.DataFrame(columns=["mode", "ts", "equity"])
    return pd.concat(frames, ignore_index=True)


# ── equity, daily P&L, drawdown ───────────────────────────────────────────────────────────────


def equity_curve(engine: Engine, run_id: str) -> pd.DataFrame:
    """ts, equity, peak, drawdown (money, <= 0), drawdown_pct (fraction, <= 0) of one run."""
    E = EquitySnapshotRecord
    df = _frame(engine, select(E.ts, E.equity).where(run_filter(E.run_id, run_id)).order_by(E.ts, E.id),
                ["ts", "equity"])
    df = _utc_cols(df, "ts")
    df["peak"] = df["equity"].cummax()
    df["drawdown"] = df["equity"] - df["peak"]
    df["drawdown_pct"] = (df["drawdown"] / df["peak"]).where(df["peak"] > 0, 0.0)
    return df


def equity_curves(engine: Engine, run_ids: Sequence[str]) -> pd.DataFrame:
    """run_id, ts, equity of several runs (long format, for one chart)."""
    frames = []
    for r in run_ids:
        df = equity_curve(engine, r)
        if len(df):
            frames.append(df.assign(run_id=r)[["run_id", "ts", "equity"]])
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["run_id", "ts", "equity"])


def max_drawdown(engine: Engine, run_id: str) -> dict[str, float]:
    """The run's maximum drawdown (``strategies.stats.max_drawdown``: amount and fraction)."""
    eq = equity_curve(engine, run_id)["equity"].tolist()
    dd = stats.max_drawdown(eq)
    return {"amount": float(dd.amount), "pct": float(dd.pct)}


def daily_pnl(engine: Engine, run_id: str) -> pd.DataFrame:
    """One row per New York session date: start and end equity (first and last snapshot), P&L
    (end - previous day's end; the first day: end - its start), cumulative P&L, realised P&L of
    the trades closed that day, trades closed."""
    eq = equity_curve(engine, run_id)
    cols = ["date", "start_equity", "end_equity", "pnl", "cum_pnl", "realized_pnl", "trades"]
    if not len(eq):
        return pd.DataFrame(columns=cols)
    eq["date"] = eq["ts"].dt.tz_convert("America/New_York").dt.date
    g = eq.groupby("date", sort=True)["equity"].agg(start_equity="first", end_equity="last").reset_index()
    prev = g["end_equity"].shift(1).fillna(g["start_equity"].iloc[0])
    g["pnl"] = g["end_equity"] - prev
    g["cum_pnl"] = g["end_equity"] - g["start_equity"].iloc[0]
    T = TradeExecutionRecord
    closed = _frame(engine, select(T.exit_time, T.pnl).where(run_filter(T.run_id, run_id), T.status == "closed"),
                    ["exit_time", "pnl"])
    if len(closed):
        closed = _utc_cols(closed, "exit_time")
        closed["date"] = closed["exit_time"].dt.tz_convert("America/New_York").dt.date
        r = closed.groupby("date")["pnl"].agg(realized_pnl="sum", trades="count").reset_index()
        g = g.merge(r, on="date", how="left")
    else:
        g["realized_pnl"], g["trades"] = 0.0, 0
    g["realized_pnl"] = g["realized_pnl"].fillna(0.0)
    g["trades"] = g["trades"].fillna(0).astype(int)
    return g[cols]


# ── positions and exposure ────────────────────────────────────────────────────────────────────


def _signal_info(engine: Engine, run_id: str, signal_ids: Sequence[str]) -> dict[str, dict]:
    """signal id -> its (first) decision: signal type, timeframe, conviction, reason."""
    ids = [s for s in set(signal_ids) if s]
    if not ids:
        return {}
    D = SignalDecisionRecord
    out: dict[str, dict] = {}
    with engine.connect() as conn:
        for i in range(0, len(ids), 500):
            rows = conn.execute(select(D.signal_id, D.signal_type, D.timeframe, D.conviction, D.ts, D.reason_code)
                                .where(run_filter(D.run_id, run_id), D.signal_id.in_(ids[i:i + 500]))
                                .order_by(D.ts, D.id)).all()
            for sid, st, tf, conv, ts, code in rows:
                out.setdefault(sid, {"signal_type": st, "timeframe": tf, "signal_conviction": conv,
                                     "signal_ts": ts, "decision": code or "approved"})
    return out


def _trades(engine: Engine, run_id: str, *conds: Any) -> pd.DataFrame:
    T = TradeExecutionRecord
    cols = ["id", "signal_id", "ticker", "instrument_type", "original_ticker", "leverage", "direction", "trade_type",
            "entry_price", "exit_price", "shares", "stop_loss", "target_price", "conviction", "status", "exit_reason",
            "pnl", "pnl_pct", "broker", "order_id", "entry_time", "exit_time", "metadata_json"]
    stmt = select(*[getattr(T, c) for c in cols]).where(run_filter(T.run_id, run_id), *conds) \
        .order_by(T.entry_time, T.id)
    return _utc_cols(_frame(engine, stmt, cols), "entry_time", "exit_time")


def _last_price(meta: Any, fallback: float) -> float:
    if isinstance(meta, dict) and meta.get("last_price") is not None:
        try:
            v = float(meta["last_price"])
            if math.isfinite(v):
                return v
        except (TypeError, ValueError):
            pass
    return float(fallback)


def _multiplier(row: Any) -> float:
    meta = row["metadata_json"] if isinstance(row["metadata_json"], dict) else {}
    m = meta.get("multiplier")
    if m:
        return float(m)
    return OPTION_MULTIPLIER if row["instrument_type"] == "option" else 1.0


def active_positions(engine: Engine, run_id: str, *, now: datetime) -> pd.DataFrame:
    """The run's open trades: instrument and underlying, direction, shares, entry / stop / target,
    last price and unrealised P&L (``stats.round_trip_pnl`` at the last marked price; the entry
    price when never marked), time in trade at ``now`` (minutes), and the signal that opened it."""
    df = _trades(engine, run_id, TradeExecutionRecord.status == "open")
    cols = ["ticker", "underlying", "instrument_type", "direction", "trade_type", "shares", "entry_price", "stop_loss",
            "target_price", "last_price", "unrealized_pnl", "unrealized_pct", "entry_time", "minutes_in_trade",
            "signal_id", "signal_type", "timeframe", "conviction"]
    if not len(df):
        return pd.DataFrame(columns=cols)
    now_ts = _ts(now)
    info = _signal_info(engine, run_id, df["signal_id"].tolist())
    df["underlying"] = df["original_ticker"].fillna(df["ticker"])
    df["last_price"] = [_last_price(m, e) for m, e in zip(df["metadata_json"], df["entry_price"])]
    mult = [_multiplier(r) for _, r in df.iterrows()]
    df["unrealized_pnl"] = [stats.round_trip_pnl(e, lp, s, d, m) for e, lp, s, d, m in
                            zip(df["entry_price"], df["last_price"], df["shares"], df["direction"], mult)]
    df["unrealized_pct"] = [stats.pnl_pct(p, e, s, m) for p, e, s, m in
                            zip(df["unrealized_pnl"], df["entry_price"], df["shares"], mult)]
    df["minutes_in_trade"] = ((now_ts - df["entry_time"]).dt.total_seconds() / 60.0).round(1)
    df["signal_type"] = [info.get(s, {}).get("signal_type") for s in df["signal_id"]]
    df["timeframe"] = [info.get(s, {}).get("timeframe") for s in df["signal_id"]]
    return df[cols].reset_index(drop=True)


def latest_equity(engine: Engine, run_id: str) -> float | None:
    E = EquitySnapshotRecord
    with engine.connect() as conn:
        v = conn.execute(select(E.equity).where(run_filter(E.run_id, run_id)).order_by(E.ts.desc(), E.id.desc())
                         .limit(1)).scalar()
    return None if v is None else float(v)


def exposure(engine: Engine, run_id: str, *, max_single: float = 0.15, max_sector: float = 0.30,
             equity: float | None = None) -> dict[str, pd.DataFrame | float | None]:
    """Exposure of the run's open trades against the risk gate's caps (equity: the latest equity
    snapshot unless given). Per position the signed dollars in the underlying: shares x last price
    x leverage (an inverse fund counts short its underlying), an option by its premium x 100 (as
    the caps count it). Returns ``{"equity", "by_underlying", "by_sector"}``; the frames have
    key, gross, net, cap, used (|net| / cap)."""
    df = _trades(engine, run_id, TradeExecutionRecord.status == "open")
    eq = latest_equity(engine, run_id) if equity is None else float(equity)
    cols = ["key", "gross", "net", "cap", "used"]
    if not len(df):
        empty = pd.DataFrame(columns=cols)
        return {"equity": eq, "by_underlying": empty, "by_sector": empty.copy()}
    rows = []
    for _, r in df.iterrows():
        price = _last_price(r["metadata_json"], r["entry_price"])
        sign = 1.0 if r["direction"] == "long" else -1.0
        if r["instrument_type"] == "option":
            dollars = sign * price * r["shares"] * _multiplier(r)
        else:
            lev = float(r["leverage"]) if r["leverage"] is not None and not pd.isna(r["leverage"]) else 1.0
            dollars = sign * lev * price * r["shares"]
        underlying = (r["original_ticker"] or r["ticker"]).upper()
        rows.append({"underlying": underlying, "sector": sector_of(underlying) or "unmapped", "dollars": dollars})
    x = pd.DataFrame(rows)

    def agg(key: str, cap_frac: float) -> pd.DataFrame:
        g = x.groupby(key)["dollars"].agg(gross=lambda s: s.abs().sum(), net="sum").reset_index()
        g = g.rename(columns={key: "key"})
        cap = cap_frac * eq if eq else float("nan")
        g["cap"] = cap
        g["used"] = g["net"].abs() / cap if eq else float("nan")
        return g[cols].sort_values("key").reset_index(drop=True)

    return {"equity": eq, "by_underlying": agg("underlying", max_single), "by_sector": agg("sector", max_sector)}


def caps_for_run(engine: Engine, run_id: str) -> tuple[float, float]:
    """(single-name cap, sector cap) as fractions of equity: a backtest's own ``--set`` overrides
    (``backtest_runs.params_json["executor"]``), else the ExecutorConfig defaults (the live node's
    settings are not in the journal)."""
    from strategies.trade_executor.models import ExecutorConfig

    single, sector = ExecutorConfig.max_single_stock_exposure, ExecutorConfig.max_sector_exposure
    if run_id != LIVE_RUN_ID:
        with engine.connect() as conn:
            params = conn.execute(select(BacktestRunRecord.params_json)
                                  .where(BacktestRunRecord.run_id == run_id)).scalar()
        ex = (params or {}).get("executor") or {}
        single = float(ex.get("max_single_stock_exposure", single))
        sector = float(ex.get("max_sector_exposure", sector))
    return float(single), float(sector)


def auto_refresh(last_activity: pd.Timestamp | None, now: datetime, window_s: float = 600.0) -> bool:
    """Whether the page refreshes by itself: a live node wrote to the journal within ``window_s``
    seconds of ``now`` (a node that stopped long ago, or never ran, leaves the page still)."""
    if last_activity is None:
        return False
    age = (_ts(now) - last_activity).total_seconds()
    return -60.0 <= age <= window_s


# ── order book ────────────────────────────────────────────────────────────────────────────────

ORDER_COLUMNS = ["client_order_id", "ticker", "side", "order_type", "quantity", "filled_qty", "price",
                 "trigger_price", "avg_px", "status", "role", "signal_id", "time_in_force", "last_event", "reason",
                 "created_at", "updated_at", "venue_order_id"]


def orders(engine: Engine, run_id: str, *, working: bool | None = None, limit: int | None = None) -> pd.DataFrame:
    """The run's orders, newest first: ``working=True`` only those not yet in a terminal state
    (NautilusTrader's: filled, canceled, expired, rejected, denied), False only terminal ones."""
    O = OrderRecord
    conds = [run_filter(O.run_id, run_id)]
    if working is True:
        conds.append(O.status.not_in(sorted(TERMINAL_ORDER_STATUSES)))
    elif working is False:
        conds.append(O.status.in_(sorted(TERMINAL_ORDER_STATUSES)))
    stmt = select(*[getattr(O, c) for c in ORDER_COLUMNS]).where(*conds).order_by(O.updated_at.desc(), O.id.desc())
    if limit:
        stmt = stmt.limit(limit)
    return _utc_cols(_frame(engine, stmt, ORDER_COLUMNS), "created_at", "updated_at")


FILL_COLUMNS = ["ts", "ticker", "side", "quantity", "price", "commission", "role", "signal_id", "client_order_id",
                "trade_id", "liquidity_side"]


def fills(engine: Engine, run_id: str, *, limit: int | None = None) -> pd.DataFrame:
    """The run's executions, newest first."""
    F = FillRecord
    stmt = select(*[getattr(F, c) for c in FILL_COLUMNS]).where(run_filter(F.run_id, run_id)) \
        .order_by(F.ts.desc(), F.id.desc())
    if limit:
        stmt = stmt.limit(limit)
    return _utc_cols(_frame(engine, stmt, FILL_COLUMNS), "ts")


# ── trade journal and decisions ───────────────────────────────────────────────────────────────


def trade_journal(engine: Engine, run_id: str, *, ticker: str | None = None, direction: str | None = None,
                  status: str | None = None, exit_reason: str | None = None, start: datetime | None = None,
                  end: datetime | None = None) -> pd.DataFrame:
    """The run's trades with their signal's attribution (signal type, timeframe, conviction),
    filtered: ``ticker`` matches the traded or the signal ticker; ``start``/``end`` bound the entry
    time (end exclusive)."""
    T = TradeExecutionRecord
    conds = []
    if ticker:
        t = ticker.strip().upper()
        conds.append(or_(T.ticker == t, T.original_ticker == t))
    if direction:
        conds.append(T.direction == direction)
    if status:
        conds.append(T.status == status)
    if exit_reason:
        conds.append(T.exit_reason == exit_reason)
    if start is not None:
        conds.append(T.entry_time >= start)
    if end is not None:
        conds.append(T.entry_time < end)
    df = _trades(engine, run_id, *conds)
    cols = ["entry_time", "exit_time", "ticker", "underlying", "direction", "shares", "entry_price", "exit_price",
            "pnl", "pnl_pct", "exit_reason", "status", "signal_type", "timeframe", "conviction", "trade_type",
            "instrument_type", "stop_loss", "target_price", "signal_id"]
    if not len(df):
        return pd.DataFrame(columns=cols)
    info = _signal_info(engine, run_id, df["signal_id"].tolist())
    df["underlying"] = df["original_ticker"].fillna(df["ticker"])
    df["signal_type"] = [info.get(s, {}).get("signal_type") for s in df["signal_id"]]
    df["timeframe"] = [info.get(s, {}).get("timeframe") for s in df["signal_id"]]
    return df[cols].reset_index(drop=True)


def decisions(engine: Engine, run_id: str, *, approved: bool | None = None, reason_code: str | None = None,
              ticker: str | None = None) -> pd.DataFrame:
    """The run's signal decisions ("why did it (not) trade?"): reason code and the human reason
    with the numbers, newest first."""
    D = SignalDecisionRecord
    conds = [run_filter(D.run_id, run_id)]
    if approved is not None:
        conds.append(D.approved.is_(approved))
    if reason_code:
        conds.append(D.reason_code == reason_code)
    if ticker:
        conds.append(D.ticker == ticker.strip().upper())
    cols = ["ts", "signal_id", "ticker", "timeframe", "signal_type", "direction", "conviction", "approved",
            "reason_code", "reason", "instrument", "shares"]
    stmt = select(*[getattr(D, c) for c in cols]).where(*conds).order_by(D.ts.desc(), D.id.desc())
    df = _utc_cols(_frame(engine, stmt, cols), "ts")
    df["approved"] = df["approved"].astype(bool)
    return df


def rejection_counts(engine: Engine, run_id: str, *, ticker: str | None = None) -> pd.DataFrame:
    """reason_code, count of the run's rejected signals (of ``ticker``), most frequent first."""
    df = decisions(engine, run_id, approved=False, ticker=ticker)
    if not len(df):
        return pd.DataFrame(columns=["reason_code", "count"])
    c = df.groupby("reason_code").size().reset_index(name="count")
    return c.sort_values(["count", "reason_code"], ascending=[False, True]).reset_index(drop=True)


def to_csv(df: pd.DataFrame) -> bytes:
    """CSV bytes of a frame for the download buttons (times in ISO 8601, UTC)."""
    return df.to_csv(index=False, date_format="%Y-%m-%dT%H:%M:%S%z").encode()


# ── kill switch, mode, operator actions ───────────────────────────────────────────────────────


def control_state(engine: Engine, scope: str | None = None) -> dict[str, Any]:
    """The kill-switch latch and instrument mode in ``executor_control`` (``scope`` None: the live
    executor's), with who last changed each and when."""
    store = ControlStore(engine, scope=scope)
    latch = store.kill_switch()
    ks_rec = store.get_record(store.key_for("kill_switch"))
    mode_rec = store.get_record(store.key_for("instrument_mode"))
    return {
        "kill_switch_active": latch.active, "kill_switch_reason": latch.reason,
        "kill_switch_activated_at": latch.activated_at,
        "kill_switch_updated_by": ks_rec.updated_by if ks_rec else None,
        "kill_switch_updated_at": ks_rec.updated_at if ks_rec else None,
        "instrument_mode": mode_rec.value_json if mode_rec else None,
        "mode_updated_by": mode_rec.updated_by if mode_rec else None,
        "mode_updated_at": mode_rec.updated_at if mode_rec else None,
    }


def kill_switch_history(engine: Engine, run_id: str) -> pd.DataFrame:
    """Trips, resets and restorations of the run's kill switch, and the operators' actions on it,
    newest first: ts, kind, message, by."""
    V = ExecutorEventRecord
    stmt = select(V.ts, V.kind, V.message, V.data_json).where(
        run_filter(V.run_id, run_id), V.kind.in_([*KILL_SWITCH_KINDS, OPERATOR_EVENT])).order_by(V.ts.desc(), V.id.desc())
    df = _frame(engine, stmt, ["ts", "kind", "message", "data"])
    if len(df):
        keep = [k != OPERATOR_EVENT or (isinstance(d, dict) and str(d.get("action", "")).startswith("kill_switch"))
                for k, d in zip(df["kind"], df["data"])]
        df = df[keep].copy()
    df["by"] = [d.get("by") if isinstance(d, dict) else None for d in df["data"]]
    return _utc_cols(df[["ts", "kind", "message", "by"]].reset_index(drop=True), "ts")


def operator_actions(engine: Engine) -> pd.DataFrame:
    """Every operator action journaled by the dashboard (and anything else writing that kind):
    ts, action, by, message, newest first."""
    V = ExecutorEventRecord
    df = _frame(engine, select(V.ts, V.message, V.data_json).where(V.kind == OPERATOR_EVENT)
                .order_by(V.ts.desc(), V.id.desc()), ["ts", "message", "data"])
    df["action"] = [d.get("action") if isinstance(d, dict) else None for d in df["data"]]
    df["by"] = [d.get("by") if isinstance(d, dict) else None for d in df["data"]]
    return _utc_cols(df[["ts", "action", "by", "message"]], "ts")


def _journal_action(engine: Engine, now: datetime, action: str, by: str, message: str, data: dict) -> None:
    from sqlalchemy.orm import Session

    rec = event_record(now, OPERATOR_EVENT, message, {"action": action, "by": by, **data}, LIVE_RUN_ID)
    with Session(engine) as s, s.begin():
        s.add(rec)


def _who(by: str) -> str:
    if not isinstance(by, str) or not by.strip():
        raise ValueError("operator name must not be empty (who acts is journaled)")
    return by.strip()[:64]


def trip_kill_switch(engine: Engine, reason: str, *, by: str, now: datetime, scope: str | None = None) -> None:
    """Trip the latch (a running executor polling ``executor_control`` halts within its poll
    interval) and journal who and when."""
    by = _who(by)
    if not isinstance(reason, str) or not reason.strip():
        raise ValueError("a reason is required to trip the kill switch")
    reason = f"manual: {reason.strip()}"
    ControlStore(engine, scope=scope).activate_kill_switch(reason, now=now, by=by)
    _journal_action(engine, now, "kill_switch_trip", by, f"{by} tripped the kill switch: {reason}",
                    {"reason": reason, "scope": scope})


def reset_kill_switch(engine: Engine, *, by: str, now: datetime, scope: str | None = None) -> None:
    """Reset the latch (the executor resumes at its next poll) and journal who and when."""
    by = _who(by)
    store = ControlStore(engine, scope=scope)
    prev = store.kill_switch()
    store.deactivate_kill_switch(now=now, by=by)
    _journal_action(engine, now, "kill_switch_reset", by, f"{by} reset the kill switch (was: {prev.reason})",
                    {"previous_reason": prev.reason, "scope": scope})


def set_mode(engine: Engine, mode: str, *, by: str, now: datetime, scope: str | None = None) -> str:
    """Set the live executor's instrument mode (read by the node at start-up) and journal it."""
    by = _who(by)
    store = ControlStore(engine, scope=scope)
    before = store.instrument_mode()
    value = store.set_instrument_mode(mode, now=now, by=by)
    _journal_action(engine, now, "instrument_mode", by, f"{by} set the instrument mode to {value} (was: {before})",
                    {"mode": value, "previous": before, "scope": scope})
    return value


def last_live_activity(engine: Engine) -> pd.Timestamp | None:
    """Time of the latest live journal row (equity point, event or order): how the page tells a
    running live node (refresh by itself) from an idle journal."""
    E, V, O = EquitySnapshotRecord, ExecutorEventRecord, OrderRecord
    with engine.connect() as conn:
        times = [conn.execute(select(E.ts).where(run_filter(E.run_id, LIVE_RUN_ID)).order_by(E.ts.desc()).limit(1)).scalar(),
                 conn.execute(select(V.ts).where(run_filter(V.run_id, LIVE_RUN_ID), V.kind != OPERATOR_EVENT)
                              .order_by(V.ts.desc()).limit(1)).scalar(),
                 conn.execute(select(O.updated_at).where(run_filter(O.run_id, LIVE_RUN_ID))
                              .order_by(O.updated_at.desc()).limit(1)).scalar()]
    times = [_ts(t) for t in times if t is not None]
    return max(times) if times else None


__all__ = [
    "DashboardError", "INSTRUMENT_MODES", "OPERATOR_EVENT", "active_positions", "auto_refresh", "backtest_runs",
    "caps_for_run", "check_database", "open_engine",
    "compare_equity", "compare_output", "control_state", "daily_pnl", "decisions", "equity_curve", "equity_curves",
    "exposure", "fills", "kill_switch_history", "last_live_activity", "latest_equity", "max_drawdown",
    "operator_actions", "orders", "per_mode_table", "redact", "rejection_counts", "reset_kill_switch", "run_choices",
    "set_mode", "to_csv", "trade_journal", "trip_kill_switch",
]
