"""In-memory market data: historical bars/quotes/trades, the latest quote per symbol, and the
Alpaca wire encodings of each (REST JSON and websocket messages).

Not thread-safe by itself: the engine's lock guards it.
"""

from __future__ import annotations

import base64
import bisect
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable, Iterator

from .clock import NY, to_utc

UTC = timezone.utc

_TF_RE = re.compile(r"^(\d+)(Min|T|Hour|H|Day|D|Week|W|Month|M)$")
_UNIT = {"Min": "Min", "T": "Min", "Hour": "Hour", "H": "Hour", "Day": "Day", "D": "Day",
         "Week": "Week", "W": "Week", "Month": "Month", "M": "Month"}


def parse_timeframe(tf: str) -> tuple[int, str]:
    m = _TF_RE.match(str(tf).strip())
    if not m:
        raise ValueError(f"invalid timeframe: {tf}")
    n, unit = int(m.group(1)), _UNIT[m.group(2)]
    if n <= 0:
        raise ValueError(f"invalid timeframe: {tf}")
    return n, unit


def canonical_timeframe(tf: str) -> str:
    n, unit = parse_timeframe(tf)
    return f"{n}{unit}"


def timeframe_delta(tf: str) -> timedelta | None:
    n, unit = parse_timeframe(tf)
    return {"Min": timedelta(minutes=n), "Hour": timedelta(hours=n), "Day": timedelta(days=n),
            "Week": timedelta(weeks=n)}.get(unit)


def rfc3339(dt: datetime) -> str:
    """Alpaca market-data timestamp: UTC with a Z suffix, fractional seconds only when present."""
    dt = to_utc(dt)
    if dt.microsecond:
        return dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: Any) -> datetime:
    """Parse an RFC 3339 string / date string / datetime / pandas Timestamp to aware UTC."""
    if isinstance(value, datetime):
        return to_utc(value)
    if hasattr(value, "to_pydatetime"):
        return to_utc(value.to_pydatetime())
    s = str(value).strip()
    if s.endswith("Z"):
        s = s[:-1] + "+00:00"
    if len(s) == 10:  # YYYY-MM-DD
        s += "T00:00:00+00:00"
    # fromisoformat handles at most 6 fractional digits; Alpaca may send 9
    m = re.match(r"^(.*T\d\d:\d\d:\d\d)\.(\d+)(.*)$", s)
    if m and len(m.group(2)) > 6:
        s = f"{m.group(1)}.{m.group(2)[:6]}{m.group(3)}"
    return to_utc(datetime.fromisoformat(s))


def _num(x: Any) -> float | int:
    f = float(x)
    return int(f) if f.is_integer() and abs(f) < 2**53 else f


@dataclass
class BarRec:
    t: datetime
    o: float
    h: float
    l: float  # noqa: E741 (Alpaca's field name)
    c: float
    v: float = 0.0
    n: int | None = None
    vw: float | None = None

    def rest(self) -> dict:
        d = {"t": rfc3339(self.t), "o": _num(self.o), "h": _num(self.h), "l": _num(self.l), "c": _num(self.c),
             "v": _num(self.v)}
        d["n"] = int(self.n) if self.n is not None else 0
        d["vw"] = _num(self.vw) if self.vw is not None else _num(round((self.h + self.l + self.c) / 3, 6))
        return d

    def stream(self, symbol: str, msg_type: str = "b") -> dict:
        d = {"T": msg_type, "S": symbol}
        d.update(self.rest())
        d["t"] = self.t  # encoded per codec (msgpack Timestamp / RFC 3339 string) at send time
        return d


@dataclass
class QuoteRec:
    t: datetime
    bp: float
    ap: float
    bs: float = 100
    as_: float = 100
    bx: str = "V"
    ax: str = "V"

    def rest(self) -> dict:
        return {"t": rfc3339(self.t), "ax": self.ax, "ap": _num(self.ap), "as": _num(self.as_), "bx": self.bx,
                "bp": _num(self.bp), "bs": _num(self.bs), "c": ["R"], "z": "C"}

    def stream(self, symbol: str) -> dict:
        d = {"T": "q", "S": symbol}
        d.update(self.rest())
        d["t"] = self.t
        return d


@dataclass
class TradeRec:
    t: datetime
    p: float
    s: float
    i: int
    x: str = "V"

    def rest(self) -> dict:
        return {"t": rfc3339(self.t), "x": self.x, "p": _num(self.p), "s": _num(self.s), "i": self.i,
                "c": ["@"], "z": "C"}

    def stream(self, symbol: str) -> dict:
        d = {"T": "t", "S": symbol}
        d.update(self.rest())
        d["t"] = self.t
        return d


def coerce_bar(bar: Any, default_t: datetime | None = None) -> BarRec:
    """Accept a BarRec, a mapping with long (open/high/...) or Alpaca short (o/h/...) keys, an
    alpaca-py ``Bar`` model, or a tuple ``(t, o, h, l, c[, v])``."""
    if isinstance(bar, BarRec):
        return bar
    if isinstance(bar, (tuple, list)):
        t, o, h, l, c, *rest = bar  # noqa: E741
        return BarRec(parse_time(t), float(o), float(h), float(l), float(c), float(rest[0]) if rest else 0.0)
    if hasattr(bar, "model_dump"):
        bar = bar.model_dump()
    get = bar.get

    def pick(*names, default=None):
        for nm in names:
            v = get(nm)
            if v is not None:
                return v
        return default

    t = pick("t", "timestamp", "time", "ts_event", default=default_t)
    if t is None:
        raise ValueError("bar needs a timestamp (t/timestamp)")
    o, h, l, c = (pick("o", "open"), pick("h", "high"), pick("l", "low"), pick("c", "close"))  # noqa: E741
    if None in (o, h, l, c):
        raise ValueError(f"bar needs open/high/low/close: {bar!r}")
    v = pick("v", "volume", default=0)
    n = pick("n", "trade_count")
    vw = pick("vw", "vwap")
    return BarRec(parse_time(t), float(o), float(h), float(l), float(c), float(v),
                  int(n) if n is not None else None, float(vw) if vw is not None else None)


def rows_from_frame(frame: Any) -> list[BarRec]:
    """A pandas DataFrame (DatetimeIndex or a timestamp column) or an iterable of bars."""
    if hasattr(frame, "iterrows") and hasattr(frame, "columns"):
        df = frame
        ts_col = next((c for c in df.columns if isinstance(c, str) and c.lower() in ("t", "timestamp", "time")), None)
        out = []
        records = df.to_dict("records")
        index = list(df.index)
        for idx, rec in zip(index, records):
            rec = {(k.lower() if isinstance(k, str) else k): v for k, v in rec.items()}
            if ts_col is None:
                if isinstance(idx, tuple):  # (symbol, timestamp) MultiIndex as from alpaca-py's BarSet.df
                    idx = idx[-1]
                rec["t"] = idx
            out.append(coerce_bar(rec))
        return out
    return [coerce_bar(b) for b in frame]


class _Series:
    """Time-sorted records with replace-on-same-timestamp."""

    def __init__(self) -> None:
        self.keys: list[datetime] = []
        self.items: list[Any] = []

    def upsert(self, rec: Any) -> None:
        i = bisect.bisect_left(self.keys, rec.t)
        if i < len(self.keys) and self.keys[i] == rec.t:
            self.items[i] = rec
        else:
            self.keys.insert(i, rec.t)
            self.items.insert(i, rec)

    def window(self, start: datetime | None, end: datetime | None) -> list[Any]:
        lo = 0 if start is None else bisect.bisect_left(self.keys, start)
        hi = len(self.keys) if end is None else bisect.bisect_right(self.keys, end)
        return self.items[lo:hi]

    def last(self) -> Any | None:
        return self.items[-1] if self.items else None

    def __len__(self) -> int:
        return len(self.items)


class MarketData:
    def __init__(self) -> None:
        self.bars: dict[str, dict[str, _Series]] = {}
        self.quotes: dict[str, _Series] = {}
        self.trades: dict[str, _Series] = {}
        self.latest_quote: dict[str, QuoteRec] = {}
        self.latest_trade: dict[str, TradeRec] = {}
        self.last_price: dict[str, float] = {}
        self.traded: set[str] = set()  # symbols whose mark comes from trades / bars
        self._trade_seq = 0

    # ---- writes -------------------------------------------------------------------------------
    def add_bars(self, symbol: str, bars: Iterable[BarRec], timeframe: str = "1Min") -> int:
        tf = canonical_timeframe(timeframe)
        series = self.bars.setdefault(symbol, {}).setdefault(tf, _Series())
        n = 0
        for b in bars:
            series.upsert(b)
            n += 1
        last = series.last()
        if last is not None and (tf == "1Min" or symbol not in self.traded):
            self.last_price[symbol] = last.c
            self.traded.add(symbol)
        return n

    def add_quote(self, symbol: str, q: QuoteRec) -> None:
        self.quotes.setdefault(symbol, _Series()).upsert(q)
        self.latest_quote[symbol] = q
        # the mark follows the quote mid until the symbol has a trade or bar (last-sale marks)
        if symbol not in self.traded:
            self.last_price[symbol] = (q.bp + q.ap) / 2 if q.bp > 0 and q.ap > 0 else (q.ap or q.bp)

    def add_trade(self, symbol: str, t: datetime, price: float, size: float) -> TradeRec:
        self._trade_seq += 1
        tr = TradeRec(t, float(price), float(size), self._trade_seq)
        self.trades.setdefault(symbol, _Series()).upsert(tr)
        self.latest_trade[symbol] = tr
        self.last_price[symbol] = float(price)
        self.traded.add(symbol)
        return tr

    # ---- reads --------------------------------------------------------------------------------
    def bar_series(self, symbol: str, timeframe: str, start: datetime | None,
                   end: datetime | None) -> list[BarRec]:
        tf = canonical_timeframe(timeframe)
        per_tf = self.bars.get(symbol, {})
        if tf in per_tf:
            return per_tf[tf].window(start, end)
        base = per_tf.get("1Min")
        if base is None:
            return []
        n, unit = parse_timeframe(tf)
        if unit not in ("Min", "Hour", "Day"):
            return []
        raw = base.window(None, None)
        agg = _aggregate(raw, n, unit)
        return [b for b in agg if (start is None or b.t >= start) and (end is None or b.t <= end)]

    def latest_bar(self, symbol: str) -> BarRec | None:
        s = self.bars.get(symbol, {}).get("1Min")
        return s.last() if s else None


def _aggregate(bars: list[BarRec], n: int, unit: str) -> list[BarRec]:
    """Aggregate 1-minute bars: N-minute / N-hour buckets on the UTC epoch grid; daily bars by
    New York date stamped at midnight ET (as Alpaca stamps daily bars)."""
    buckets: dict[datetime, list[BarRec]] = {}
    for b in bars:
        if unit == "Day":
            d = b.t.astimezone(NY).date()
            key = datetime(d.year, d.month, d.day, tzinfo=NY).astimezone(UTC)
        else:
            step = 60 * n if unit == "Min" else 3600 * n
            epoch = int(b.t.timestamp())
            key = datetime.fromtimestamp(epoch - epoch % step, UTC)
        buckets.setdefault(key, []).append(b)
    out = []
    for key in sorted(buckets):
        grp = buckets[key]
        vol = sum(b.v for b in grp)
        vw = (sum((b.vw if b.vw is not None else b.c) * b.v for b in grp) / vol) if vol else None
        out.append(BarRec(key, grp[0].o, max(b.h for b in grp), min(b.l for b in grp), grp[-1].c, vol,
                          sum(b.n or 0 for b in grp), vw))
    return out


# ---- pagination -----------------------------------------------------------------------------------
def encode_token(symbol: str, t: datetime) -> str:
    raw = f"{symbol}|{int(to_utc(t).timestamp() * 1_000_000)}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str) -> tuple[str, int]:
    pad = "=" * (-len(token) % 4)
    raw = base64.urlsafe_b64decode(token + pad).decode()
    sym, _, us = raw.rpartition("|")
    return sym, int(us)


def paginate(per_symbol: dict[str, list[Any]], limit: int, token: str | None,
             descending: bool = False) -> tuple[dict[str, list[Any]], str | None]:
    """Flatten symbol-major (symbols ascending), time ascending/descending within a symbol; return
    one page of at most ``limit`` records and the token of the last record if more remain."""
    def flat() -> Iterator[tuple[str, Any]]:
        for sym in sorted(per_symbol):
            recs = per_symbol[sym]
            for r in (reversed(recs) if descending else recs):
                yield sym, r

    items = list(flat())
    start = 0
    if token:
        tsym, tus = decode_token(token)
        for i, (sym, r) in enumerate(items):
            if sym == tsym and int(r.t.timestamp() * 1_000_000) == tus:
                start = i + 1
                break
        else:
            raise ValueError("invalid page_token")
    page = items[start:start + limit]
    more = start + limit < len(items)
    out: dict[str, list[Any]] = {}
    for sym, r in page:
        out.setdefault(sym, []).append(r)
    next_token = encode_token(page[-1][0], page[-1][1].t) if (more and page) else None
    return out, next_token
