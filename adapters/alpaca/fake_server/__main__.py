"""Run the fake Alpaca server from the command line (demos, manual testing).

    python -m adapters.alpaca.fake_server --port 0
    python -m adapters.alpaca.fake_server --port 0 --simulate AAPL=190,QQQ=480 --interval 0.5
    python -m adapters.alpaca.fake_server --feed AAPL=190,MSFT=410,QQQ=480 --wall --warmup 120 --broker-like

Prints the URLs (and ``export`` lines for the usual environment variables), then serves until
Ctrl-C / SIGTERM or ``--duration`` seconds. ``--simulate`` streams a seeded random walk: a quote
every ``--interval`` seconds and a 1-minute bar each time the minute rolls over. ``--feed`` streams
minute bars for many symbols like Alpaca (a few seconds after each minute, interleaved), on a
compressed clock (``--speed``, simulated seconds per real second) or the wall clock (``--wall``,
for soak runs); ``--warmup N`` serves N minutes of the same series as history.
``--options QQQ,SPY`` lists option chains for those ``--feed`` / ``--simulate`` symbols ($1 strikes
within 10 % of the start price, every expiry session of the next 7 days) and quotes the contracts
near the price on every minute bar (Black-Scholes, ``options.auto_quote``); ``--option-calendar
24/7`` puts their expiries and cut-offs on UTC days, for an executor run with ``--calendar 24/7``.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import signal
import sys
import threading
import time
from datetime import datetime, timezone

from .server import DEFAULT_KEYS, FakeAlpacaServer


def _parse_sim(spec: str) -> dict[str, float]:
    out = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        sym, _, px = part.partition("=")
        out[sym.upper()] = float(px or 100.0)
    return out


def _option_chains(srv: FakeAlpacaServer, underlyings: list[str], prices: dict[str, float],
                   option_calendar: str | None) -> None:
    from datetime import timedelta

    from .clock import NY
    from .options import auto_quote

    today = srv.now().astimezone(NY).date()
    days = [today + timedelta(days=i) for i in range(8)]
    expiries = days if option_calendar == "24/7" else [d for d in days if srv.calendar.session(d) is not None]
    for sym in underlyings:
        if sym not in prices:
            raise SystemExit(f"--options {sym}: give its price with --feed or --simulate (e.g. --feed {sym}=480)")
        px = prices[sym]
        srv.generate_option_chain(sym, expiries, range(max(1, round(px * 0.9)), round(px * 1.1) + 1))
        with srv.engine.lock:
            auto_quote(srv.engine, sym, px)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m adapters.alpaca.fake_server", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0, help="trading REST port (0 = random free port)")
    ap.add_argument("--data-port", type=int, default=0, help="market-data REST port (0 = random)")
    ap.add_argument("--stream-port", type=int, default=0, help="websocket port (0 = random)")
    key, secret = next(iter(DEFAULT_KEYS.items()))
    ap.add_argument("--key", default=key)
    ap.add_argument("--secret", default=secret)
    ap.add_argument("--cash", type=float, default=100_000.0)
    ap.add_argument("--margin", type=float, default=2.0, help="margin multiplier (buying power)")
    ap.add_argument("--partial-fill-qty", type=float, default=None)
    ap.add_argument("--simulate", default="", help="random-walk quotes/bars, e.g. AAPL=190,QQQ=480")
    ap.add_argument("--interval", type=float, default=1.0, help="seconds between simulated quotes")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--duration", type=float, default=None, help="exit after N seconds")
    ap.add_argument("--json", action="store_true", help="print one JSON line instead of text")
    ap.add_argument("--feed", default="", help="streamed minute bars, e.g. AAPL=190,MSFT=410 (price optional)")
    ap.add_argument("--speed", type=float, default=60.0, help="--feed: simulated seconds per real second")
    ap.add_argument("--wall", action="store_true", help="--feed on the wall clock (soak runs)")
    ap.add_argument("--start", default=None, help="--feed: first simulated minute (ISO, UTC), compressed mode")
    ap.add_argument("--lag", type=float, default=1.0, help="--feed: seconds after the minute before its bars")
    ap.add_argument("--jitter", type=float, default=2.0, help="--feed: + uniform(0, jitter) s per symbol")
    ap.add_argument("--warmup", type=int, default=0, help="--feed: minutes of history for the REST endpoint")
    ap.add_argument("--options", default="", help="option chains + quotes for these feed symbols, e.g. QQQ,SPY")
    ap.add_argument("--option-calendar", default=None, choices=["24/7"],
                    help="option expiries and cut-offs on UTC days (with an executor on --calendar 24/7)")
    ap.add_argument("--broker-like", action="store_true",
                    help="asynchronous routing and cancels and the wash-trade refusal, like Alpaca")
    args = ap.parse_args(argv)

    srv = FakeAlpacaServer({args.key: args.secret}, host=args.host, port=args.port, data_port=args.data_port,
                           stream_port=args.stream_port, initial_cash=args.cash, margin_multiplier=args.margin,
                           partial_fill_qty=args.partial_fill_qty, id_seed=args.seed, broker_like=args.broker_like,
                           option_auto_quotes=bool(args.options), option_calendar=args.option_calendar)
    srv.start()
    if args.options:
        _option_chains(srv, [s.strip().upper() for s in args.options.split(",") if s.strip()],
                       {**_parse_sim(args.simulate), **_parse_sim(args.feed)}, args.option_calendar)
    if args.feed:
        start = datetime.fromisoformat(args.start) if args.start else None
        srv.start_bar_feed(symbols=_parse_sim(args.feed), seed=args.seed, speed=None if args.wall else args.speed,
                           start=start, lag=args.lag, jitter=args.jitter, warmup_minutes=args.warmup)
    info = {"trading_url": srv.trading_url, "data_url": srv.data_url, "stream_url": srv.stream_url,
            "data_stream_url": srv.data_stream_url, "key_id": args.key, "secret_key": args.secret}
    if args.json:
        print(json.dumps(info), flush=True)
    else:
        for k, v in info.items():
            print(f"{k:16} {v}")
        print(f"export APCA_API_BASE_URL={srv.trading_url} APCA_API_DATA_URL={srv.data_url} "
              f"APCA_API_KEY_ID={args.key} APCA_API_SECRET_KEY={args.secret}")
        print("serving; Ctrl-C to stop", flush=True)

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            signal.signal(sig, lambda *_: stop.set())
        except ValueError:  # pragma: no cover - not in main thread
            pass
    deadline = time.monotonic() + args.duration if args.duration is not None else None
    sim = _parse_sim(args.simulate)
    rng = random.Random(args.seed)
    bars: dict[str, list[float]] = {s: [] for s in sim}
    minute = None
    try:
        while not stop.is_set():
            if deadline is not None and time.monotonic() >= deadline:
                break
            if sim:
                now = datetime.now(timezone.utc)
                cur_min = now.replace(second=0, microsecond=0)
                if minute is not None and cur_min != minute:
                    for s, ticks in bars.items():
                        if ticks:
                            srv.push_bar(s, {"t": minute, "o": ticks[0], "h": max(ticks), "l": min(ticks),
                                             "c": ticks[-1], "v": 100 * len(ticks)})
                            bars[s] = []
                minute = cur_min
                for s, px in sim.items():
                    px = round(px * math.exp(rng.gauss(0.0, 0.0008)), 2)
                    sim[s] = px
                    bars[s].append(px)
                    srv.set_quote(s, round(px - 0.01, 2), round(px + 0.01, 2))
                    srv.push_trade(s, px, 100)
            wait = args.interval if sim else 0.2
            if deadline is not None:
                wait = max(0.0, min(wait, deadline - time.monotonic()))
            stop.wait(wait)
    finally:
        srv.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
