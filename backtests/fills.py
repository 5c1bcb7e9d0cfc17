"""Every fill of a backtest, with the fed data of its own minute: ``OUT/fills.csv``.

Collected from the Nautilus cache after the engine run (``collect_fills``): each order's
``OrderFilled`` events, the order's tags (``signal=<id>``, ``role=entry:<tactic>|add|stop|exit``,
``reason=<exit reason>``) and, per fill, the data the venue saw in that minute:

* equities / ETFs: the 1-minute bar of the traded instrument whose interval contains the fill.
  Bars carry their close time (``ts_event`` = ``ts_init``); the interval of the bar closing at
  ``c`` is ``(c - 1 min, c]``, and a fill at ``c`` or up to 1 ms after it belongs to that bar too:
  orders decided at a bar's close are filled by the venue at that bar's close (``c`` + a few ns).
* option contracts (quotes, no bars): the quote in force (the last quote at or before the fill).

``trade-executor check OUT`` (backtests.check) reads the file with ``OUT/events.csv``.
Annotation is vectorised: per instrument one sorted int64 array of bar close times and
``numpy.searchsorted`` for all of its fills at once.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd

NS_PER_MINUTE = 60_000_000_000
FILL_TOLERANCE_NS = 1_000_000  # a fill up to 1 ms after a bar's close belongs to that bar

FILL_COLUMNS: tuple[str, ...] = (
    "ts", "ts_ns", "instrument", "side", "qty", "price", "commission", "client_order_id", "order_type",
    "role", "signal_id", "exit_reason", "tick", "bar_ts", "bar_open", "bar_high", "bar_low", "bar_close",
    "last_ts", "last_close", "quote_ts", "quote_bid", "quote_ask",
)

EVENT_COLUMNS: tuple[str, ...] = ("ts", "kind", "message", "data")

# What summary.json records about the fill model (the checker reads "market_and_stops").
FILL_MODEL = {
    "market_and_stops": "1 tick adverse",
    "limits": "limit price or better, never slipped",
    "options": "market orders take the modelled quote (buy the ask, sell the bid)",
}


def iso_ns(ns: int) -> str:
    """ISO 8601 UTC with nanoseconds when there are any."""
    return pd.Timestamp(int(ns), unit="ns", tz="UTC").isoformat()


def _tags(order: Any) -> dict[str, str]:
    out: dict[str, str] = {}
    tags = getattr(order, "tags", None) or []
    if isinstance(tags, str):
        tags = tags.split(",")
    for t in tags:
        k, sep, v = str(t).partition("=")
        if sep:
            out.setdefault(k.strip(), v.strip())
    return out


def _num(x: Any) -> float:
    return float(x.as_double()) if hasattr(x, "as_double") else float(x)


def _qty(x: Any) -> int | float:
    q = _num(x)
    return int(q) if q.is_integer() else q


def raw_fills(cache: Any) -> list[dict[str, Any]]:
    """One row per OrderFilled event of every order in the cache (not annotated yet)."""
    from nautilus_trader.model.events import OrderFilled

    rows: list[dict[str, Any]] = []
    ticks: dict[Any, float] = {}
    for order in cache.orders():
        tags = _tags(order)
        iid = order.instrument_id
        if iid not in ticks:
            inst = cache.instrument(iid)
            ticks[iid] = _num(inst.price_increment) if inst is not None else 0.01
        for ev in order.events:
            if not isinstance(ev, OrderFilled):
                continue
            rows.append({
                "ts_ns": int(ev.ts_event),
                "instrument": iid.symbol.value,
                "side": "BUY" if ev.is_buy else "SELL",
                "qty": _qty(ev.last_qty),
                "price": _num(ev.last_px),
                "commission": _num(ev.commission) if ev.commission is not None else 0.0,
                "client_order_id": ev.client_order_id.value,
                "order_type": order.type_string(),
                "role": tags.get("role", ""),
                "signal_id": tags.get("signal", ""),
                "exit_reason": tags.get("reason", ""),
                "tick": ticks[iid],
            })
    rows.sort(key=lambda r: (r["ts_ns"], r["client_order_id"]))
    return rows


def bar_arrays(bars: list) -> dict[str, np.ndarray]:
    """Sorted close times (int64 ns) and OHLC (float64) of one instrument's fed 1-minute bars."""
    n = len(bars)
    ts = np.fromiter((b.ts_event for b in bars), dtype=np.int64, count=n)
    cols = {
        "ts": ts,
        "open": np.fromiter((b.open.as_double() for b in bars), dtype=np.float64, count=n),
        "high": np.fromiter((b.high.as_double() for b in bars), dtype=np.float64, count=n),
        "low": np.fromiter((b.low.as_double() for b in bars), dtype=np.float64, count=n),
        "close": np.fromiter((b.close.as_double() for b in bars), dtype=np.float64, count=n),
    }
    if n > 1 and np.any(np.diff(ts) < 0):
        order = np.argsort(ts, kind="stable")
        cols = {k: v[order] for k, v in cols.items()}
    return cols


def quote_arrays(quotes: list) -> dict[str, np.ndarray]:
    n = len(quotes)
    cols = {
        "ts": np.fromiter((q.ts_init for q in quotes), dtype=np.int64, count=n),
        "bid": np.fromiter((q.bid_price.as_double() for q in quotes), dtype=np.float64, count=n),
        "ask": np.fromiter((q.ask_price.as_double() for q in quotes), dtype=np.float64, count=n),
    }
    if n > 1 and np.any(np.diff(cols["ts"]) < 0):
        order = np.argsort(cols["ts"], kind="stable")
        cols = {k: v[order] for k, v in cols.items()}
    return cols


def bar_index(bar_ts: np.ndarray, fill_ts: np.ndarray) -> np.ndarray:
    """Index of the bar whose minute holds each fill, -1 where there is none.

    The bar closing at c holds fills in (c - 1 min, c] and, because orders decided at a bar's
    close are filled at that close, fills in (c, c + 1 ms] too."""
    fill_ts = np.asarray(fill_ts, dtype=np.int64)
    out = np.full(fill_ts.shape, -1, dtype=np.int64)
    n = len(bar_ts)
    if n == 0 or fill_ts.size == 0:
        return out
    # the last bar closing at or before the fill, if the fill is within 1 ms of its close
    i = np.searchsorted(bar_ts, fill_ts, side="right") - 1
    ok = i >= 0
    prev_ok = ok.copy()
    prev_ok[ok] = fill_ts[ok] - bar_ts[i[ok]] <= FILL_TOLERANCE_NS
    out[prev_ok] = i[prev_ok]
    # otherwise the first bar closing after the fill, if the fill is inside its minute -- but a
    # fill within 1 ms after a minute's end was decided at that minute's close: when that minute
    # has no bar (nothing traded), it has no bar of its own (not the next minute's)
    at_boundary = fill_ts % NS_PER_MINUTE <= FILL_TOLERANCE_NS
    j = i + 1
    rest = ~prev_ok & (j < n) & ~at_boundary
    nxt = rest.copy()
    nxt[rest] = bar_ts[j[rest]] - fill_ts[rest] < NS_PER_MINUTE
    out[nxt] = j[nxt]
    return out


def last_bar_index(bar_ts: np.ndarray, fill_ts: np.ndarray) -> np.ndarray:
    """Index of the last bar closing at or before each fill, -1 where there is none: the
    instrument's last print when the fill's own minute has no bar."""
    fill_ts = np.asarray(fill_ts, dtype=np.int64)
    if len(bar_ts) == 0:
        return np.full(fill_ts.shape, -1, dtype=np.int64)
    return np.searchsorted(bar_ts, fill_ts, side="right") - 1


def quote_index(quote_ts: np.ndarray, fill_ts: np.ndarray) -> np.ndarray:
    """Index of the quote in force (last quote at or before the fill), -1 where there is none."""
    if len(quote_ts) == 0:
        return np.full(np.shape(fill_ts), -1, dtype=np.int64)
    return np.searchsorted(quote_ts, np.asarray(fill_ts, dtype=np.int64), side="right") - 1


def annotate(rows: list[dict[str, Any]], per_symbol: dict[str, list],
             quotes: Iterable[Any] | None = None) -> list[dict[str, Any]]:
    """Add bar_* (instruments with bars) and quote_* (instruments with quotes) to each fill row."""
    by_inst: dict[str, list[int]] = {}
    for k, r in enumerate(rows):
        by_inst.setdefault(r["instrument"], []).append(k)
        r.update({c: "" for c in ("bar_ts", "bar_open", "bar_high", "bar_low", "bar_close",
                                  "last_ts", "last_close", "quote_ts", "quote_bid", "quote_ask")})
    quotes_by: dict[str, list] = {}
    if quotes:
        wanted = set(by_inst)
        for q in quotes:
            sym = q.instrument_id.symbol.value
            if sym in wanted:
                quotes_by.setdefault(sym, []).append(q)
    for sym, idx in by_inst.items():
        fts = np.fromiter((rows[k]["ts_ns"] for k in idx), dtype=np.int64, count=len(idx))
        bars = per_symbol.get(sym)
        if bars:
            a = bar_arrays(bars)
            pos = bar_index(a["ts"], fts)
            for k, p in zip(idx, last_bar_index(a["ts"], fts)):
                if p >= 0:
                    rows[k].update(last_ts=iso_ns(a["ts"][p]), last_close=float(a["close"][p]))
            for k, p in zip(idx, pos):
                if p >= 0:
                    rows[k].update(bar_ts=iso_ns(a["ts"][p]), bar_open=float(a["open"][p]),
                                   bar_high=float(a["high"][p]), bar_low=float(a["low"][p]),
                                   bar_close=float(a["close"][p]))
        qs = quotes_by.get(sym)
        if qs:
            a = quote_arrays(qs)
            pos = quote_index(a["ts"], fts)
            for k, p in zip(idx, pos):
                if p >= 0:
                    rows[k].update(quote_ts=iso_ns(a["ts"][p]), quote_bid=float(a["bid"][p]),
                                   quote_ask=float(a["ask"][p]))
    for r in rows:
        r["ts"] = iso_ns(r["ts_ns"])
    return rows


def collect_fills(engine_or_cache: Any, per_symbol: dict[str, list],
                  quotes: Iterable[Any] | None = None) -> list[dict[str, Any]]:
    """Every fill of the run (``engine.cache`` or a cache), annotated with its minute's bar or
    the option quote in force. Call after the run, before ``engine.dispose()``."""
    cache = getattr(engine_or_cache, "cache", engine_or_cache)
    return annotate(raw_fills(cache), per_symbol, quotes)


def run_facts(*, calendar: str, signal_timeframes: Iterable[str], starting_cash: float,
              events: list[tuple], fills: list[dict[str, Any]]) -> dict[str, Any]:
    """What ``trade-executor check`` needs in summary.json and cannot infer from the outputs."""
    trips = [ts.isoformat() for ts, kind, *_ in events if kind in ("kill_switch", "kill_switch_restored")]
    resets = [ts.isoformat() for ts, kind, *_ in events if kind == "kill_switch_reset"]
    return {
        "calendar": calendar,
        "signal_timeframes": sorted(set(signal_timeframes), key=_tf_order),
        "fill_model": dict(FILL_MODEL),
        "kill_switch_trips": trips,
        "kill_switch_resets": resets,
        "starting_cash": starting_cash,
        "fills": len(fills),
    }


def _tf_order(tf: str) -> tuple[int, str]:
    order = ("1m", "5m", "10m", "1h", "1d")
    return (order.index(tf) if tf in order else len(order), tf)


def _cell(v: Any) -> Any:
    if v is None:
        return ""
    if hasattr(v, "isoformat"):
        return v.isoformat()
    return v


def write_fills_csv(path: Path, fills: list[dict[str, Any]]) -> None:
    with Path(path).open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(FILL_COLUMNS)
        for r in fills:
            w.writerow([_cell(r.get(c)) for c in FILL_COLUMNS])


def write_events_csv(path: Path, events: list[tuple]) -> None:
    """ExecutionLog.events: (ts, kind, message, data) -> ts, kind, message, data (JSON)."""
    with Path(path).open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(EVENT_COLUMNS)
        for ts, kind, message, data in events:
            w.writerow([_cell(ts), kind, message, json.dumps(data or {}, sort_keys=True, default=str)])


__all__ = ["EVENT_COLUMNS", "FILL_COLUMNS", "FILL_MODEL", "annotate", "bar_index", "collect_fills", "iso_ns",
           "quote_index", "raw_fills", "run_facts", "write_events_csv", "write_fills_csv"]
