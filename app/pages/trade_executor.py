"""Operator dashboard of the trade executor (PRD-135 "Dashboard Page", issue #16).

A thin view: every number comes from ``strategies.dashboard.data`` (pure functions over the
journal's SQLAlchemy engine, unit-tested in tests/test_dashboard_data.py). The journal is
``$TRADE_EXECUTOR_DASHBOARD_DB`` (set by ``trade-executor dashboard --db URL``), else
``$DATABASE_URL``, else ``data/executor.db``.

Operator actions (kill switch trip/reset, instrument mode) act only once their confirmation box
is ticked, write ``executor_control`` with who and when, and are journaled as ``operator_action``
events. A database that cannot be reached shows a banner, not a traceback.
"""

from __future__ import annotations

import getpass
import os
from datetime import datetime, timedelta, timezone

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st
from sqlalchemy.exc import SQLAlchemyError

from strategies.dashboard import data as d
from strategies.journal.db import database_url

DB_ENV = "TRADE_EXECUTOR_DASHBOARD_DB"
REFRESH_SECONDS = 5
LIVE_ACTIVE_WINDOW = timedelta(minutes=10)  # live rows this recent: a node is running, refresh by itself


@st.cache_resource(show_spinner=False)
def get_engine(url: str):
    return d.open_engine(url)  # DashboardError (not cached) for a bad URL or a missing SQLite file


def now_utc() -> datetime:
    return datetime.now(timezone.utc)  # the view's clock: time in trade, who/when of operator actions


PRICE_COLS = {"entry_price", "exit_price", "stop_loss", "target_price", "last_price", "price", "trigger_price",
              "avg_px"}
MONEY_COLS = {"pnl", "unrealized_pnl", "realized_pnl", "gross", "net", "cap", "commission", "fees", "ending_equity",
              "start_equity", "end_equity", "cum_pnl"}
PCT_COLS = {"pnl_pct", "unrealized_pct", "used", "win_rate"}


def table(df: pd.DataFrame, key: str, empty: str) -> None:
    """A frame as an interactive table in a container keyed ``tbl_<key>`` (CSS class
    ``st-key-tbl_<key>``: how the browser tests find it); ``empty`` when there are no rows."""
    with st.container(key=f"tbl_{key}"):
        _table(df, key, empty)


def _table(df: pd.DataFrame, key: str, empty: str) -> None:
    if df is None or not len(df):
        st.info(empty)
        return
    cfg = {}
    for c in df.columns:
        if c in PRICE_COLS:
            cfg[c] = st.column_config.NumberColumn(format="%.2f")
        elif c in MONEY_COLS:
            cfg[c] = st.column_config.NumberColumn(format="%.2f")
        elif c in PCT_COLS:
            cfg[c] = st.column_config.NumberColumn(format="percent")
    st.dataframe(df, hide_index=True, key=key, column_config=cfg)


def flash(where: str) -> None:
    msg = st.session_state.pop(f"flash_{where}", None)
    if msg:
        st.success(msg)


url = os.environ.get(DB_ENV) or database_url()
st.title("Trade Executor")

try:
    engine = get_engine(url)
    d.check_database(engine)
except d.DashboardError as e:
    st.error(f"**Journal database unavailable.** {e}", icon=":material/database_off:")
    st.caption("Check the URL (`trade-executor dashboard --db URL`), that the server runs, and "
               "`trade-executor db upgrade --db URL`. This page retries on reload.")
    st.stop()
except Exception as e:  # noqa: BLE001 - e.g. a URL with an unknown driver: still a banner
    st.error(f"**Journal database unavailable.** {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}",
             icon=":material/database_off:")
    st.stop()

# ── sidebar: run, operator, refresh ──────────────────────────────────────────────────────────
runs = d.run_choices(engine)
with st.sidebar:
    st.caption(f"Journal: `{d.redact(url)}`")
    run_id = st.selectbox("Run", runs, index=0, key="run_id",
                          help="`live`: the live executor; `bt-...`: a backtest run")
    operator = st.text_input("Operator (journaled with every action)",
                             value=os.environ.get("TRADE_EXECUTOR_OPERATOR") or getpass.getuser(), key="operator")
    last = d.last_live_activity(engine)
    node_active = d.auto_refresh(last, now_utc(), LIVE_ACTIVE_WINDOW.total_seconds())
    auto = st.toggle(f"Auto-refresh every {REFRESH_SECONDS} s", value=node_active, key="auto_refresh",
                     help="on by itself while a live node is writing to the journal")
    st.caption(f"Last live activity: {last:%Y-%m-%d %H:%M:%S} UTC" if last is not None else "No live activity yet")


def header(state: dict) -> None:
    c1, c2, c3, c4, c5 = st.columns(5)
    c1.metric("Kill switch", "ACTIVE" if state["kill_switch_active"] else "inactive")
    c2.metric("Instrument mode", state["instrument_mode"] or "(not set)")
    eq = d.latest_equity(engine, run_id)
    c3.metric("Equity", f"${eq:,.0f}" if eq is not None else "n/a")
    c4.metric("Open positions", len(d.active_positions(engine, run_id, now=now_utc())))
    c5.metric("Working orders", len(d.orders(engine, run_id, working=True)))


def tab_positions() -> None:
    pos = d.active_positions(engine, run_id, now=now_utc())
    if len(pos):
        st.metric("Unrealised P&L", f"${pos['unrealized_pnl'].sum():,.2f}")
    table(pos, "positions", f"No open positions in run {run_id}.")


def tab_orders() -> None:
    st.subheader("Working orders")
    table(d.orders(engine, run_id, working=True), "orders_working", "No working orders.")
    st.subheader("Recent fills")
    table(d.fills(engine, run_id, limit=100), "fills", "No fills.")
    st.subheader("Order history")
    hist = d.orders(engine, run_id, working=False, limit=1000)
    statuses = sorted(hist["status"].unique()) if len(hist) else []
    pick = st.multiselect("Status", statuses, default=statuses, key=f"order_status_{run_id}")
    table(hist[hist["status"].isin(pick)] if len(hist) else hist, "orders_history", "No finished orders.")


def kill_switch_block(state: dict) -> None:
    st.subheader("Kill switch (live executor)")
    if state["kill_switch_active"]:
        st.error(f"Kill switch ACTIVE: {state['kill_switch_reason']} (since {state['kill_switch_activated_at']}, "
                 f"by {state['kill_switch_updated_by']})", icon=":material/block:")
    else:
        by = state["kill_switch_updated_by"]
        st.success("Kill switch inactive: trading allowed" + (f" (last change by {by} at "
                                                               f"{state['kill_switch_updated_at']})" if by else ""))
    with st.form("kill_switch_form", clear_on_submit=True):
        if not state["kill_switch_active"]:
            reason = st.text_input("Reason", key="ks_reason", placeholder="e.g. FOMC surprise")
            confirm = st.checkbox("I confirm: halt all trading now (the running node stops new orders "
                                  "and closes intraday positions)", key="ks_confirm")
            go_ = st.form_submit_button("Trip kill switch", type="primary")
        else:
            reason = None
            confirm = st.checkbox("I confirm: resume trading", key="ks_confirm_reset")
            go_ = st.form_submit_button("Reset kill switch", type="primary")
    if go_:
        if not confirm:
            st.warning("Nothing done: tick the confirmation box first.")
            return
        try:
            if not state["kill_switch_active"]:
                d.trip_kill_switch(engine, reason or "", by=operator, now=now_utc())
                st.session_state["flash_ks"] = f"Kill switch tripped by {operator}."
            else:
                d.reset_kill_switch(engine, by=operator, now=now_utc())
                st.session_state["flash_ks"] = f"Kill switch reset by {operator}."
        except ValueError as e:
            st.warning(f"Nothing done: {e}")
            return
        st.rerun()


def tab_risk(state: dict) -> None:
    flash("ks")
    kill_switch_block(state)
    st.caption("Trip history")
    table(d.kill_switch_history(engine, run_id), "ks_history", "No kill-switch trips or resets.")

    single, sector = d.caps_for_run(engine, run_id)
    x = d.exposure(engine, run_id, max_single=single, max_sector=sector)
    eq = x["equity"]
    st.subheader("Exposure vs caps" + (f" (equity ${eq:,.2f}; caps {single:.0%} per underlying, "
                                       f"{sector:.0%} per sector)" if eq else ""))
    c1, c2 = st.columns(2)
    for col, name, key in ((c1, "by_underlying", "Underlying (single-name cap)"), (c2, "by_sector", "Sector cap")):
        df = x[name]
        with col:
            st.markdown(f"**{key}**")
            if len(df):
                fig = go.Figure()
                fig.add_bar(x=df["key"], y=df["net"], name="net")
                fig.add_bar(x=df["key"], y=df["gross"], name="gross")
                fig.add_scatter(x=df["key"], y=df["cap"], mode="markers", name="cap", marker_symbol="line-ew-open",
                                marker_size=30)
                fig.update_layout(height=280, margin=dict(l=10, r=10, t=10, b=10), barmode="group")
                st.plotly_chart(fig, key=f"exp_{name}")
            table(df, f"exp_table_{name}", "No open exposure.")

    st.subheader("Daily P&L")
    daily = d.daily_pnl(engine, run_id)
    if len(daily):
        fig = px.bar(daily, x="date", y="pnl", labels={"pnl": "P&L ($)"})
        fig.add_scatter(x=daily["date"], y=daily["cum_pnl"], mode="lines+markers", name="cumulative")
        fig.update_layout(height=300, margin=dict(l=10, r=10, t=10, b=10))
        st.plotly_chart(fig, key="daily_pnl")
    table(daily, "daily_table", "No equity points yet.")

    st.subheader("Equity and drawdown")
    curve = d.equity_curve(engine, run_id)
    if len(curve):
        dd = d.max_drawdown(engine, run_id)
        st.metric("Max drawdown", f"${dd['amount']:,.2f}", f"{-dd['pct']:.2%}", delta_color="off")
        fig = px.line(curve, x="ts", y="equity")
        fig.add_scatter(x=curve["ts"], y=curve["drawdown"], name="drawdown", yaxis="y2", fill="tozeroy")
        fig.update_layout(height=320, margin=dict(l=10, r=10, t=10, b=10),
                          yaxis2=dict(overlaying="y", side="right", title="drawdown ($)"))
        st.plotly_chart(fig, key="equity_dd")


def tab_journal() -> None:
    c1, c2, c3, c4, c5 = st.columns(5)
    ticker = c1.text_input("Ticker (traded or signal)", key="j_ticker")
    direction = c2.selectbox("Direction", ["(all)", "long", "short"], key="j_dir")
    status = c3.selectbox("Status", ["(all)", "open", "closed", "cancelled"], key="j_status")
    direction = None if direction == "(all)" else direction
    status = None if status == "(all)" else status
    exit_reason = c4.text_input("Exit reason", key="j_exit")
    days = c5.date_input("Entered between (New York dates)", value=(), key=f"j_days_{run_id}")
    start = end = None
    if isinstance(days, (list, tuple)) and len(days) == 2:
        start, end = (pd.Timestamp(days[0], tz="America/New_York").tz_convert("UTC").to_pydatetime(),
                      (pd.Timestamp(days[1], tz="America/New_York") + pd.Timedelta(days=1)).tz_convert("UTC")
                      .to_pydatetime())
    trades = d.trade_journal(engine, run_id, ticker=ticker or None, direction=direction or None,
                             status=status or None, exit_reason=exit_reason or None, start=start, end=end)
    st.caption(f"{len(trades)} trades" + (f", realised P&L ${pd.to_numeric(trades['pnl']).sum():,.2f}" if len(trades) else ""))
    table(trades, "journal", "No trades match.")
    st.download_button("Download trades CSV", d.to_csv(trades), file_name=f"trades-{run_id}.csv", mime="text/csv",
                       key="dl_trades")

    st.subheader("Why did it not trade? (rejected signals)")
    counts = d.rejection_counts(engine, run_id, ticker=ticker or None)
    codes = counts["reason_code"].tolist()
    code = st.selectbox("Reason code", ["(all)", *codes], key=f"j_reason_code_{run_id}")
    rej = d.decisions(engine, run_id, approved=False, reason_code=None if code == "(all)" else code,
                      ticker=ticker or None)
    if len(counts):
        fig = px.bar(counts, x="reason_code", y="count")
        fig.update_layout(height=240, margin=dict(l=10, r=10, t=10, b=10))
        st.plotly_chart(fig, key="rej_counts")
    table(rej, "rejections", "No rejected signals.")
    st.download_button("Download rejected signals CSV", d.to_csv(rej), file_name=f"rejections-{run_id}.csv",
                       mime="text/csv", key="dl_rej")


def tab_mode(state: dict) -> None:
    st.subheader("Instrument mode (live executor)")
    cur = state["instrument_mode"]
    st.write(f"Current: **{cur or '(not set: the node uses its --mode)'}**"
             + (f", set by {state['mode_updated_by']} at {state['mode_updated_at']}" if state["mode_updated_by"] else ""))
    st.caption("Written to executor_control: a running live node follows it at its next control poll "
               "(within seconds; new entries route by it, open positions keep their instruments), a "
               "starting one reads it at start-up.")
    with st.form("mode_form", clear_on_submit=True):
        modes = list(d.INSTRUMENT_MODES)
        new = st.selectbox("New mode", modes, index=modes.index(cur) if cur in modes else 3, key="mode_new")
        confirm = st.checkbox("I confirm the change of instrument mode", key="mode_confirm")
        go_ = st.form_submit_button("Apply mode")
    if go_:
        if not confirm:
            st.warning("Nothing done: tick the confirmation box first.")
        else:
            try:
                d.set_mode(engine, new, by=operator, now=now_utc())
            except ValueError as e:
                st.warning(f"Nothing done: {e}")
            else:
                st.session_state["flash_mode"] = f"Instrument mode set to {new} by {operator}."
                st.rerun()
    flash("mode")
    st.subheader("Operator actions")
    table(d.operator_actions(engine), "operator_actions", "No operator actions journaled yet.")


def tab_backtests() -> None:
    bt = d.backtest_runs(engine)
    if not len(bt):
        st.info("No backtest runs in this journal (`trade-executor backtest ... --db URL`).")
    else:
        st.subheader("Per mode (latest finished run of each)")
        table(d.per_mode_table(bt), "per_mode", "No finished runs.")
        st.subheader("Runs")
        table(bt, "bt_runs", "")
        ids = bt["run_id"].tolist()
        default = [run_id] if run_id in ids else ids[:1]
        pick = st.multiselect("Equity curves of", ids, default=default, key=f"bt_pick_{run_id}")
        curves = d.equity_curves(engine, pick)
        if len(curves):
            modes = dict(zip(bt["run_id"], bt["mode"]))
            curves["run"] = [f"{modes.get(r, '')} {r}" for r in curves["run_id"]]
            fig = px.line(curves, x="ts", y="equity", color="run")
            fig.update_layout(height=320, margin=dict(l=10, r=10, t=10, b=10))
            st.plotly_chart(fig, key="bt_equity")
        one = st.selectbox("Trades of run", ids, index=ids.index(default[0]) if default else 0, key=f"bt_trades_run_{run_id}")
        table(d.trade_journal(engine, one), "bt_trades", "No trades in this run.")
    st.subheader("Compare output")
    folder = st.text_input("Folder of a `trade-executor compare` run (compare.csv)", key="cmp_folder")
    if folder:
        try:
            table(d.compare_output(folder), "cmp_table", "Empty compare.csv.")
            eq = d.compare_equity(folder)
            if len(eq):
                fig = px.line(eq, x="ts", y="equity", color="mode")
                fig.update_layout(height=320, margin=dict(l=10, r=10, t=10, b=10))
                st.plotly_chart(fig, key="cmp_equity")
        except (OSError, ValueError) as e:
            st.warning(str(e))


def body() -> None:
    state = d.control_state(engine)
    header(state)
    tabs = st.tabs(["Active Positions", "Order Book", "Risk", "Trade Journal", "Instrument Mode", "Backtests"])
    with tabs[0]:
        tab_positions()
    with tabs[1]:
        tab_orders()
    with tabs[2]:
        tab_risk(state)
    with tabs[3]:
        tab_journal()
    with tabs[4]:
        tab_mode(state)
    with tabs[5]:
        tab_backtests()


def safe_body() -> None:
    try:
        body()
    except SQLAlchemyError as e:  # the database went away after the page loaded: a banner again
        msg = str(getattr(e, "orig", e)).strip().splitlines()
        st.error(f"**Journal database unavailable.** {msg[0] if msg else type(e).__name__}",
                 icon=":material/database_off:")


st.fragment(safe_body, run_every=REFRESH_SECONDS if auto else None)()
