"""One simulated trading session of the live node against the local Alpaca-protocol server, under
faults (issue #13, item 5). Run by ``tests/test_live_soak.py`` in a child process whose clock is
compressed by libfaketime (``tests/faketime_env.py`` builds the environment); by hand:

    LD_PRELOAD="/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1 <ftshim.so>" TZ=UTC \
    FAKETIME="@2026-03-10 13:15:00 x100" FTSHIM_RATE=100 \
    python -m tests.soak_session --out /tmp/soak --rate 100 [--via-cli] [--end 11:00] [--seed N]

(``--end HH:MM`` New York stops early; ``--via-cli`` runs the node through ``trade-executor live``;
the clock must be placed before the session's open, 13:30 UTC on that date.)

Everything lives in this one process, on the one (faked) clock: the fake broker (``broker_like``:
asynchronous routing and cancels, the wash-trade refusal) streaming 1-minute bars for 10 symbols
through the session (``start_bar_feed``, wall-clock mode, so it follows the faked clock), a seeded
schedule of faults armed on the broker at simulated times, a sampler thread reading the broker's
positions and open orders every few simulated seconds, and the production ``TradingNode``
(``strategies.live.build_live_node``, XNYS calendar, the executor's defaults). At the end it writes
``report.json`` (every figure the test asserts on) and ``latency.csv`` into ``--out``; the parent
test asserts, this process only measures.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import random
import sys
import threading
import time
import traceback
from collections import Counter, defaultdict
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

UTC = timezone.utc
NY = ZoneInfo("America/New_York")
KEY, SECRET = "PKSOAKTEST", "soak-test-secret"

SYMBOLS: dict[str, float] = {
    "QQQ": 480.0, "SPY": 560.0, "AAPL": 190.0, "MSFT": 410.0, "NVDA": 120.0,
    "AMZN": 180.0, "META": 500.0, "GOOGL": 165.0, "TSLA": 250.0, "AMD": 160.0,
}
PARTIAL_FILL_SYMBOLS = {"AAPL": 7, "NVDA": 11, "TSLA": 5}  # at most N shares per order per bar

FAULT_KINDS = (
    "error_after_create_500",   # the order exists, the client saw a 500: must find it by client id
    "error_after_create_504",   # alpaca-py re-POSTs the same client id itself: 422 unique
    "land_late",                # reaches the broker after the client gave up: in doubt, then adopted
    "delay_ack",                # the answer is slow (order live meanwhile)
    "delay_ack_drop",           # no answer at all (connection closed)
    "drop_trade_stream_after",  # a fill event sent, then the trade stream drops
    "drop_trade_stream_before",  # a fill event lost with the stream: recovered from the REST state
    "drop_data_streams",        # market-data websocket drop (the bars missed meanwhile)
    "reject_order",             # accepted, then rejected on the stream
    "http_503_orders",          # POST /v2/orders answers 503 before anything exists
    "rate_limit_orders",        # 429 with Retry-After
)


def ny(d: str, hm: str) -> datetime:
    return datetime.fromisoformat(f"{d}T{hm}").replace(tzinfo=NY).astimezone(UTC)


def fault_schedule(seed: int, start: datetime, end: datetime, mean_gap_min: float) -> list[tuple[datetime, str]]:
    """A seeded schedule of (simulated time, fault kind) between ``start`` and ``end``."""
    rng = random.Random(f"soak-faults:{seed}")
    out, t = [], start
    kinds = list(FAULT_KINDS)
    rng.shuffle(kinds)
    i = 0
    while True:
        t = t + timedelta(minutes=rng.uniform(0.3, 1.7) * mean_gap_min)
        if t >= end:
            return out
        # every kind once first (in a seeded order), then at random
        out.append((t, kinds[i] if i < len(kinds) else rng.choice(FAULT_KINDS)))
        i += 1


def arm(srv, kind: str, rng: random.Random, client_timeout: float = 10.0) -> dict:
    f = srv.faults
    if kind == "error_after_create_500":
        f.error_after_create(status=500)
    elif kind == "error_after_create_504":
        f.error_after_create(status=504)
    elif kind == "land_late":
        # reaches the broker after the client's request timeout: the client has given up
        f.land_late(land_after=round(client_timeout + rng.uniform(2.0, 15.0), 1))
    elif kind == "delay_ack":
        f.delay_ack(seconds=round(rng.uniform(1.0, 8.0), 1))
    elif kind == "delay_ack_drop":
        f.delay_ack(seconds=round(rng.uniform(1.0, 5.0), 1), drop_response=True)
    elif kind == "drop_trade_stream_after":
        f.drop_trade_stream(when="after", events=("fill", "partial_fill"))
    elif kind == "drop_trade_stream_before":
        f.drop_trade_stream(when="before", events=("fill", "partial_fill"))
    elif kind == "drop_data_streams":
        return {"dropped": srv.drop_data_streams()}
    elif kind == "reject_order":
        f.reject_orders(count=1, delay=round(rng.uniform(0.1, 1.0), 2))
    elif kind == "http_503_orders":
        f.http_error(path="/v2/orders", status=503, method="POST")
    elif kind == "rate_limit_orders":
        f.rate_limit(path="/v2/orders", method="POST", retry_after=1)
    else:  # pragma: no cover
        raise ValueError(kind)
    return {}


class FaultThread(threading.Thread):
    """Arms each fault of the schedule once the broker's clock reaches its time."""

    def __init__(self, srv, schedule, seed: int, stop: threading.Event, client_timeout: float = 10.0) -> None:
        super().__init__(name="soak-faults", daemon=True)
        self.srv, self.schedule, self.stop_ev = srv, schedule, stop
        self.client_timeout = client_timeout
        self.rng = random.Random(f"soak-fault-params:{seed}")
        self.armed: list[dict] = []
        self.error: str | None = None

    def run(self) -> None:
        try:
            for at, kind in self.schedule:
                while not self.stop_ev.is_set() and self.srv.now() < at:
                    self.stop_ev.wait(0.5)
                if self.stop_ev.is_set():
                    return
                extra = arm(self.srv, kind, self.rng, self.client_timeout)
                self.armed.append({"at": self.srv.now().isoformat(), "kind": kind, **extra})
        except Exception:  # noqa: BLE001 - reported, the test fails on it
            self.error = traceback.format_exc()


STOP_TYPES = ("stop", "stop_limit", "trailing_stop")


class Sampler(threading.Thread):
    """Every ``interval`` simulated seconds: the broker's positions and open orders (one consistent
    snapshot under the engine's lock). A position is *stopped* when open opposite-side stop orders
    (not ``pending_cancel``) cover its quantity, *covered* when stops plus opposite-side closing
    orders do (an exit in flight: the strategy withdraws the stop before it sends the exit, so the
    broker never sells twice). Episodes of an uncovered / unstopped position are timed."""

    def __init__(self, srv, interval: float, stop: threading.Event) -> None:
        super().__init__(name="soak-sampler", daemon=True)
        self.srv, self.interval, self.stop_ev = srv, interval, stop
        self.samples = 0
        self.max_positions = 0
        self.position_samples = 0
        self.open_since: dict[str, dict[str, datetime]] = {"unstopped": {}, "uncovered": {}}
        self.episodes: dict[str, list[dict]] = {"unstopped": [], "uncovered": []}
        self.error: str | None = None

    def run(self) -> None:
        try:
            while not self.stop_ev.is_set():
                self.sample()
                self.stop_ev.wait(self.interval)
            self.close_all(self.srv.now())
        except Exception:  # noqa: BLE001 - reported, the test fails on it
            self.error = traceback.format_exc()

    def sample(self) -> None:
        from adapters.alpaca.fake_server.engine import OPEN

        eng = self.srv.engine
        with eng.lock:
            now = self.srv.now()
            positions = eng.positions_json()
            open_orders = [eng.order_json(o, include_legs=False) for o in eng.orders.values() if o.status in OPEN]
        self.samples += 1
        self.max_positions = max(self.max_positions, len(positions))
        held = {}
        for p in positions:
            q = float(p["qty"])
            if q:
                held[p["symbol"]] = q
        self.position_samples += len(held)
        for state, flags in (("unstopped", True), ("uncovered", False)):
            bad = set()
            for sym, q in held.items():
                close_side = "sell" if q > 0 else "buy"
                cover = 0.0
                for o in open_orders:
                    if o["symbol"] != sym or o["side"] != close_side:
                        continue
                    if o["status"] == "pending_cancel" and o["type"] in STOP_TYPES:
                        continue  # a stop being withdrawn protects nothing for long
                    if flags and o["type"] not in STOP_TYPES:
                        continue
                    cover += float(o["qty"]) - float(o.get("filled_qty") or 0)
                if cover + 1e-9 < abs(q):
                    bad.add(sym)
            since = self.open_since[state]
            for sym in bad:
                since.setdefault(sym, now)
            for sym in list(since):
                if sym not in bad:
                    self._close(state, sym, now)

    def _close(self, state: str, sym: str, now: datetime) -> None:
        t0 = self.open_since[state].pop(sym)
        self.episodes[state].append({"symbol": sym, "from": t0.isoformat(), "seconds": (now - t0).total_seconds()})

    def close_all(self, now: datetime) -> None:
        for state in self.open_since:
            for sym in list(self.open_since[state]):
                self._close(state, sym, now)


def percentile(xs: list[float], q: float) -> float | None:
    if not xs:
        return None
    s = sorted(xs)
    k = max(0, min(len(s) - 1, int(round(q / 100 * (len(s) - 1)))))
    return s[k]


def executor_overrides(args: argparse.Namespace) -> dict:
    """ExecutorConfig overrides of the run (the production defaults otherwise)."""
    return {} if args.max_daily_trades is None else {"max_daily_trades": args.max_daily_trades}


def run(args: argparse.Namespace) -> dict:
    from adapters.alpaca.fake_server import FakeAlpacaServer
    from strategies.live import LiveSpec, build_live_node
    from tests.node_harness import drive

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rate = float(args.rate)
    symbols = dict(list(SYMBOLS.items())[: args.symbols])
    open_t, close_t = ny(args.date, "09:30"), ny(args.date, "16:00")
    end_t = close_t + timedelta(minutes=args.after_close_minutes)
    if args.end:  # a shorter run (debugging)
        end_t = ny(args.date, args.end)
    report: dict = {"rate": rate, "symbols": list(symbols), "date": args.date, "seed": args.seed,
                    "started_sim": datetime.now(UTC).isoformat(), "errors": []}
    stop_ev = threading.Event()

    srv = FakeAlpacaServer(keys={KEY: SECRET}, broker_like=True, id_seed=args.seed, shorting_enabled=True)
    srv.start()
    try:
        for sym, qty in PARTIAL_FILL_SYMBOLS.items():
            if sym in symbols:
                srv.set_partial_fills(qty, symbol=sym)
        # history for a REST warm-up (the last two hours of the previous session), then the live
        # minutes of this session on the (faked) wall clock
        prev = open_t.astimezone(NY).date()
        for _ in range(10):
            prev -= timedelta(days=1)
            if srv.calendar.session(prev):
                break
        prev_close = srv.calendar.session(prev).close
        warm = int((datetime.now(UTC) - prev_close).total_seconds() // 60) + 120
        feed = srv.start_bar_feed(symbols=symbols, seed=args.seed, speed=None, session_only=True,
                                  warmup_minutes=max(warm, 0), lag=1.0, jitter=2.0)
        schedule = fault_schedule(args.seed, open_t + timedelta(minutes=5), close_t - timedelta(minutes=10),
                                  args.fault_gap_minutes) if args.faults else []
        faults = FaultThread(srv, schedule, args.seed, stop_ev, args.request_timeout)
        sampler = Sampler(srv, args.sample_seconds, stop_ev)

        db = f"sqlite:///{out / 'journal.db'}"
        spec = LiveSpec(symbols=list(symbols), db_url=db, api_key=KEY, api_secret=SECRET,
                        trading_url=srv.trading_url, trading_stream_url=srv.stream_url, data_url=srv.data_url,
                        data_stream_url=srv.data_stream_url, calendar="XNYS", log_level=args.log_level,
                        request_timeout_s=args.request_timeout, control_poll_seconds=5.0,
                        executor=executor_overrides(args))
        if args.via_cli:
            crash, node_orders = run_cli(args, srv, db, symbols, end_t, faults, sampler, stop_ev)
            report["actor"] = None
        else:
            loop = asyncio.new_event_loop()
            live = build_live_node(spec, loop=loop)
            crash: dict = {"components_stopped_early": False, "node_exception": None}

            async def scenario() -> None:
                faults.start()
                sampler.start()
                while srv.now() < end_t:
                    if not (live.strategy.is_running and live.actor.is_running):
                        crash["components_stopped_early"] = True
                        crash["at"] = srv.now().isoformat()
                        return
                    await asyncio.sleep(1.0)

            try:
                drive(live.node, loop, lambda: live.strategy.is_running, scenario,
                      timeout=(end_t - datetime.now(UTC)).total_seconds() + 600, start_timeout=600)
            except BaseException as e:  # noqa: BLE001 - a crash is a finding, recorded
                crash["node_exception"] = "".join(traceback.format_exception(e))
        stop_ev.set()
        for t in (faults, sampler):
            if t.is_alive():
                t.join(60)
        srv.wait_idle(30)
        report["crash"] = crash
        report["finished_sim"] = datetime.now(UTC).isoformat()
        for name, t in (("faults", faults), ("sampler", sampler)):
            if t.error:
                report["errors"].append(f"{name}: {t.error}")

        if not args.via_cli:
            node_orders = collect_node_orders(live)
            report["actor"] = {"signals": live.actor.signal_count, "late_bars": getattr(live.actor, "late_bars", None)}
            live.node.dispose()
            live.journal.close()
            live.control.close()
            if not loop.is_closed():
                loop.close()
        broker_orders = srv.orders()
        fills = srv.activities(["FILL"])
        positions = srv.positions()
        open_orders = srv.orders("open")
        requests = srv.request_log
        report["feed"] = {"bars_published": len(feed.bars_published()),
                          "first": min((p["t"] for p in feed.bars_published()), default=None),
                          "last": max((p["t"] for p in feed.bars_published()), default=None)}
        feed.stop()
        (out / "orders.json").write_text(json.dumps({"broker": broker_orders, "fills": fills, "node": node_orders},
                                                    indent=1, default=str))
        report["faults_armed"] = faults.armed
        report["faults_pending_at_end"] = srv.faults.pending()
        report["server_stats"] = {k: v for k, v in srv.stats.items() if isinstance(v, (int, float, str))}
        post = [r for r in requests if r["path"] == "/v2/orders" and r["method"] == "POST"]
        report["order_posts"] = dict(Counter(str(r["status"]) for r in post))
        report["sampler"] = {"samples": sampler.samples, "interval_s": args.sample_seconds,
                             "position_samples": sampler.position_samples, "max_positions": sampler.max_positions,
                             "episodes": sampler.episodes}
        report.update(check_broker_vs_node(broker_orders, fills, node_orders))
        report["held_after_close"] = {"positions": positions,
                                      "open_orders": [{k: o[k] for k in ("symbol", "side", "type", "qty",
                                                                         "time_in_force", "status", "client_order_id")}
                                                      for o in open_orders]}
        report.update(check_journal(db, broker_orders, fills))
        report.update(latencies(db, node_orders, broker_orders, rate, out))
        report["broker"] = {"orders": len(broker_orders), "fills": len(fills),
                            "filled_orders": sum(1 for o in broker_orders if o["status"] == "filled"),
                            "by_type": dict(Counter(o["type"] for o in broker_orders)),
                            "by_status": dict(Counter(o["status"] for o in broker_orders))}
    finally:
        stop_ev.set()
        srv.stop()
    return report


def run_cli(args, srv, db: str, symbols: dict, end_t: datetime, faults, sampler, stop_ev) -> tuple[dict, None]:
    """The same session through the command line: ``trade-executor live`` (``strategies.cli.main``)
    pointed at the local server, in this process (one faked clock), stopped by its ``--duration``
    at ``end_t``. Only the broker's side and the journal are checked (the node is the CLI's)."""
    from strategies.cli import main as cli_main

    os.environ["ALPACA_API_KEY"], os.environ["ALPACA_API_SECRET"] = KEY, SECRET
    crash: dict = {"components_stopped_early": False, "node_exception": None}
    faults.start()
    sampler.start()
    duration = max(60.0, (end_t - datetime.now(UTC)).total_seconds())
    try:
        extra = [] if args.max_daily_trades is None else ["--set", f"max_daily_trades={args.max_daily_trades}"]
        rc = cli_main(["live", *extra, "--symbols", ",".join(symbols), "--calendar", "XNYS",
                       "--alpaca-url", srv.trading_url, "--alpaca-stream-url", srv.stream_url,
                       "--alpaca-data-url", srv.data_url, "--alpaca-data-stream-url", srv.data_stream_url,
                       "--db", db, "--log-level", args.log_level, "--duration", f"{duration:.0f}"])
        crash["cli_exit_code"] = rc
        if rc != 0:
            crash["node_exception"] = f"trade-executor live exited {rc}"
    except BaseException as e:  # noqa: BLE001 - a crash is a finding, recorded
        crash["node_exception"] = "".join(traceback.format_exception(e))
    return crash, None


def collect_node_orders(live) -> dict[str, dict]:
    out = {}
    for o in live.node.cache.orders():
        tags = list(o.tags or [])
        role = next((t.split("=", 1)[1] for t in tags if t.startswith("role=")), None)
        signal = next((t.split("=", 1)[1] for t in tags if t.startswith("signal=")), None)
        submitted = next((e.ts_event for e in o.events if type(e).__name__ == "OrderSubmitted"), None)
        fills = [(e.trade_id.value, float(e.last_qty), float(e.last_px)) for e in o.events
                 if type(e).__name__ == "OrderFilled"]
        out[o.client_order_id.value] = {"status": o.status_string(), "role": role, "signal": signal,
                                        "filled_qty": float(o.filled_qty), "submitted_ns": submitted,
                                        "init_ns": o.ts_init, "fills": fills,
                                        "symbol": o.instrument_id.symbol.value, "side": o.side_string(),
                                        "events": [(type(e).__name__, e.ts_event, e.ts_init) for e in o.events]}
    return out


def check_broker_vs_node(broker_orders: list[dict], fills: list[dict], node: dict[str, dict]) -> dict:
    """0 duplicate orders, 0 lost fills: every order at the broker is one order of the node, and
    every execution at the broker was applied to that order by the node."""
    coids = Counter(o["client_order_id"] for o in broker_orders)
    dup = sorted(c for c, n in coids.items() if n > 1)
    if node is None:  # the CLI's node: the broker's side only
        return {"duplicates": {"duplicate_client_ids": dup, "broker_orders_unknown_to_node": [],
                               "node_orders_submitted": None}, "fills_check": None}
    by_id = {o["id"]: o for o in broker_orders}
    unknown = sorted(c for c in coids if c not in node)
    lost, qty_mismatch, extra, inferred = [], [], [], []
    broker_execs: dict[str, set] = defaultdict(set)
    broker_qty: Counter = Counter()
    for f in fills:
        coid = by_id[f["order_id"]]["client_order_id"]
        exec_id = f["id"].split("::", 1)[1]
        broker_execs[coid].add(exec_id)
        broker_qty[coid] += float(f["qty"])
    for f in fills:
        coid = by_id[f["order_id"]]["client_order_id"]
        exec_id = f["id"].split("::", 1)[1]
        n = node.get(coid)
        if n is None or exec_id not in {t for t, _, _ in n["fills"]}:
            row = {"client_order_id": coid, "execution_id": exec_id, "qty": f["qty"], "symbol": f["symbol"]}
            # applied under another trade id (an inferred fill of Nautilus' reconciliation) when the
            # order's filled quantity still matches the broker's: not lost
            if n is not None and abs(n["filled_qty"] - broker_qty[coid]) < 1e-9:
                inferred.append(row)
            else:
                lost.append(row)
    for o in broker_orders:
        n = node.get(o["client_order_id"])
        if n is not None and abs(float(o["filled_qty"] or 0) - n["filled_qty"]) > 1e-9:
            qty_mismatch.append({"client_order_id": o["client_order_id"], "broker": o["filled_qty"],
                                 "node": n["filled_qty"], "broker_status": o["status"], "node_status": n["status"]})
    for coid, n in node.items():
        for t, q, _ in n["fills"]:
            if t not in broker_execs.get(coid, set()) and abs(n["filled_qty"] - broker_qty[coid]) > 1e-9:
                extra.append({"client_order_id": coid, "trade_id": t, "qty": q})
    submitted = [c for c, n in node.items() if n["submitted_ns"] is not None]
    return {"duplicates": {"duplicate_client_ids": dup, "broker_orders_unknown_to_node": unknown,
                           "node_orders_submitted": len(submitted)},
            "fills_check": {"broker_fills": len(fills), "lost": lost, "filled_qty_mismatch": qty_mismatch,
                            "node_fills_not_at_broker": extra, "applied_under_inferred_ids": inferred}}


def check_journal(db: str, broker_orders: list[dict], fills: list[dict]) -> dict:
    """journal = broker fills: the journal's fills (``executor_fills``, when this build records them)
    are exactly the broker's executions; its trades' shares match the broker's filled entries and
    exits per symbol; no trade is left open."""
    from sqlalchemy import create_engine, inspect, text

    eng = create_engine(db)
    by_id = {o["id"]: o for o in broker_orders}
    out: dict = {}
    with eng.connect() as c:
        tables = set(inspect(c).get_table_names())
        trades = [dict(r._mapping) for r in c.execute(text(
            "SELECT ticker, direction, shares, status, exit_reason, order_id, entry_price, exit_price "
            "FROM trade_executions WHERE run_id = 'live'"))]
        decisions = c.execute(text("SELECT approved, reason_code FROM signal_decisions WHERE run_id = 'live'")).all()
        events = [r[0] for r in c.execute(text("SELECT kind FROM executor_events"))]
        jfills = None
        if "executor_fills" in tables:
            jfills = [dict(r._mapping) for r in c.execute(text(
                "SELECT client_order_id, trade_id, quantity, price FROM executor_fills"))]
    eng.dispose()
    broker = {}
    for f in fills:
        coid = by_id[f["order_id"]]["client_order_id"]
        broker[(coid, f["id"].split("::", 1)[1])] = (float(f["qty"]), float(f["price"]))
    if jfills is not None:
        journal = {(r["client_order_id"], r["trade_id"]): (float(r["quantity"]), float(r["price"])) for r in jfills}
        bq, jq = Counter(), Counter()
        for (coid, _), (q, _) in broker.items():
            bq[coid] += q
        for (coid, _), (q, _) in journal.items():
            jq[coid] += q
        same_qty = {c for c in set(bq) | set(jq) if abs(bq[c] - jq[c]) < 1e-9}
        missing = sorted(k for k in broker if k not in journal and k[0] not in same_qty)
        extra = sorted(k for k in journal if k not in broker and k[0] not in same_qty)
        other_ids = sorted(k for k in journal if k not in broker and k[0] in same_qty)
        differ = sorted(k for k in broker if k in journal and (abs(broker[k][0] - journal[k][0]) > 1e-9
                                                               or abs(broker[k][1] - journal[k][1]) > 1e-6))
        out["journal_fills"] = {"recorded": len(journal), "missing": [list(k) for k in missing],
                                "extra": [list(k) for k in extra], "differ": [list(k) for k in differ],
                                "under_other_trade_ids": [list(k) for k in other_ids]}
    else:
        out["journal_fills"] = None
    # trades vs the broker's filled quantities per symbol and side
    bought, sold = Counter(), Counter()
    for f in fills:
        (bought if f["side"] == "buy" else sold)[f["symbol"]] += float(f["qty"])
    j_open_long, j_open_short = Counter(), Counter()
    for t in trades:
        (j_open_long if t["direction"] == "long" else j_open_short)[t["ticker"]] += float(t["shares"])
    mismatch = []
    for sym in sorted(set(bought) | set(sold) | set(j_open_long) | set(j_open_short)):
        # a flat broker book: every share bought was sold; long trades opened = shares bought
        # to open, short trades = shares sold to open (bought + sold = 2 x the journal's shares)
        if abs(bought[sym] + sold[sym] - 2 * (j_open_long[sym] + j_open_short[sym])) > 1e-9:
            mismatch.append({"symbol": sym, "broker_bought": bought[sym], "broker_sold": sold[sym],
                             "journal_long_shares": j_open_long[sym], "journal_short_shares": j_open_short[sym]})
    out["journal_trades"] = {"trades": len(trades), "open": [t for t in trades if t["status"] != "closed"],
                             "share_mismatch": mismatch,
                             "exit_reasons": dict(Counter(t["exit_reason"] for t in trades))}
    out["decisions"] = {"total": len(decisions), "approved": sum(1 for d in decisions if d[0]),
                        "reasons": dict(Counter(d[1] for d in decisions if not d[0]))}
    out["events"] = dict(Counter(events))
    return out


def latencies(db: str, node: dict[str, dict], broker_orders: list[dict], rate: float, out: Path) -> dict:
    """Signal handled (the decision's engine time) -> the entry's OrderSubmitted (inside the node)
    and -> the order created at the broker (through HTTP). Simulated nanoseconds / ``rate`` = real."""
    from sqlalchemy import create_engine, text

    eng = create_engine(db)
    with eng.connect() as c:
        rows = c.execute(text("SELECT ts, signal_id, ticker, order_ids FROM signal_decisions "
                              "WHERE run_id = 'live' AND approved")).all()
    eng.dispose()
    created = {o["client_order_id"]: o["created_at"] for o in broker_orders}
    records = []
    for ts, signal_id, ticker, order_ids in rows:
        ids = json.loads(order_ids) if isinstance(order_ids, str) else (order_ids or [])
        if not ids or (node is not None and ids[0] not in node):
            continue
        if isinstance(ts, str):
            ts = datetime.fromisoformat(ts)
        if ts.tzinfo is None:
            ts = ts.replace(tzinfo=UTC)
        t0 = int(ts.timestamp() * 1e9)
        sub = node[ids[0]]["submitted_ns"] if node is not None else None
        rec = {"signal_id": signal_id, "ticker": ticker, "order": ids[0],
               "to_submitted_ms": None if sub is None else (sub - t0) / 1e6 / rate}
        b = created.get(ids[0])
        rec["to_broker_ms"] = None if b is None else \
            (datetime.fromisoformat(b.replace("Z", "+00:00")).timestamp() * 1e9 - t0) / 1e6 / rate
        records.append(rec)
    with open(out / "latency.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["signal_id", "ticker", "order", "to_submitted_ms", "to_broker_ms"])
        w.writeheader()
        w.writerows(records)
    sub = [r["to_submitted_ms"] for r in records if r["to_submitted_ms"] is not None]
    brk = [r["to_broker_ms"] for r in records if r["to_broker_ms"] is not None]
    summary = {"unit": "real ms (simulated / rate)", "n": len(records),
               "signal_to_submitted_p50": percentile(sub, 50), "signal_to_submitted_p99": percentile(sub, 99),
               "signal_to_broker_p50": percentile(brk, 50), "signal_to_broker_p99": percentile(brk, 99)}
    (out / "latency.json").write_text(json.dumps(summary, indent=2))
    return {"latency": summary}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True)
    p.add_argument("--date", default="2026-03-10", help="session date (the clock must be placed before its open)")
    p.add_argument("--rate", type=float, default=1.0, help="the clock's compression (set by libfaketime)")
    p.add_argument("--symbols", type=int, default=10)
    p.add_argument("--seed", type=int, default=13)
    p.add_argument("--faults", type=int, default=1)
    p.add_argument("--fault-gap-minutes", type=float, default=8.0)
    p.add_argument("--sample-seconds", type=float, default=2.0)
    p.add_argument("--after-close-minutes", type=float, default=3.0)
    p.add_argument("--end", default=None, help="HH:MM New York: stop there instead of after the close")
    p.add_argument("--request-timeout", type=float, default=10.0)
    p.add_argument("--log-level", default="WARNING")
    p.add_argument("--via-cli", action="store_true", help="run the node through `trade-executor live`")
    p.add_argument("--max-daily-trades", type=int, default=None,
                   help="the runaway guard's entries per session (default 40 stops trading before noon here)")
    args = p.parse_args(argv)
    try:
        report = run(args)
    except BaseException:  # noqa: BLE001
        report = {"fatal": traceback.format_exc()}
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "report.json").write_text(json.dumps(report, indent=2, default=str))
    print("SOAK-REPORT", json.dumps({k: report.get(k) for k in ("latency", "crash", "fatal")}, default=str),
          flush=True)
    sys.stdout.flush()
    os._exit(0)  # the node leaves non-daemon executor threads behind; the report is written


if __name__ == "__main__":
    sys.exit(main())
