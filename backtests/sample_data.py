"""Deterministic sample 1-minute bars for demos and tests (synthetic, seeded).

``generate_sample(out_dir)`` writes one CSV per symbol, ``{SYMBOL}_1min.csv``, with header
``timestamp,open,high,low,close,volume``: regular-session bars only, for consecutive NYSE sessions
taken from the exchange calendar (holidays skipped, early closes honoured), timestamps ISO-8601 in
New York time with an explicit UTC offset, labelled by bar OPEN time (import with ``label="open"``,
any ``tz``).

The default span, 2025-06-16 + 15 sessions (to 2025-07-08), contains the Juneteenth and
Independence Day holidays and the 2025-07-03 early close (13:00 ET).

Prices follow a seeded random walk: a market factor with trending regimes (up / down / flat, tens
of minutes each, so fast-vs-slow EMA clouds cross several times a day) plus per-symbol noise, a
U-shaped intraday volatility and volume profile, overnight gaps. Same arguments -> byte-identical
files: each symbol's stream depends only on (seed, symbol), not on which other symbols are asked
for.

Run: ``python -m backtests.sample_data OUT_DIR [--symbols QQQ SPY] [--start 2025-06-16]
[--sessions 15] [--seed 135]``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["DEFAULT_SYMBOLS", "SymbolProfile", "PROFILES", "session_minutes", "generate_sample", "main"]

DEFAULT_SYMBOLS = ("QQQ", "SPY", "AAPL", "NVDA")
HEADER = "timestamp,open,high,low,close,volume\n"
_NY = "America/New_York"
_MARKET_STREAM = 0  # RNG stream id of the shared market factor (symbols use crc32(symbol) | 1<<32)


@dataclass(frozen=True)
class SymbolProfile:
    price: float  # first open
    beta: float  # exposure to the market factor
    idio: float  # idiosyncratic per-minute volatility (fraction)
    volume: float  # average shares per minute


PROFILES: dict[str, SymbolProfile] = {
    "QQQ": SymbolProfile(price=480.0, beta=1.20, idio=0.00015, volume=90_000),
    "SPY": SymbolProfile(price=590.0, beta=1.00, idio=0.00008, volume=120_000),
    "AAPL": SymbolProfile(price=200.0, beta=1.10, idio=0.00040, volume=110_000),
    "NVDA": SymbolProfile(price=130.0, beta=1.70, idio=0.00060, volume=450_000),
}

# Market factor: per-minute volatility, trend drift in units of that volatility, regime lengths.
_MARKET_SIGMA = 0.00022
_TREND_DRIFT = 0.30
_TREND_MINUTES = 40.0
_FLAT_MINUTES = 20.0
_OVERNIGHT_SIGMA = 0.006


def _default_profile(symbol: str) -> SymbolProfile:
    # Unknown symbols get a level in 20..520 derived from their name (stable, no RNG state).
    h = zlib.crc32(symbol.encode())
    return SymbolProfile(price=20.0 + (h % 500), beta=1.0, idio=0.0005, volume=50_000)


def session_minutes(start: str, sessions: int) -> list[tuple[pd.Timestamp, pd.DatetimeIndex]]:
    """``sessions`` consecutive XNYS sessions from ``start`` (or the next session after it).

    Returns (session date, bar open times in UTC) pairs; early closes give shorter days.
    """
    from backtests.catalog_io import sessions_table

    if sessions < 1:
        raise ValueError("sessions must be >= 1")
    first = pd.Timestamp(start).normalize()
    table = sessions_table(first, first + dt.timedelta(days=sessions * 2 + 30))
    if len(table) < sessions:
        raise ValueError(f"calendar has only {len(table)} sessions after {start}")
    out = []
    for day, row in table.iloc[:sessions].iterrows():
        out.append((day, pd.date_range(row["open"], row["close"], freq="1min", inclusive="left")))
    return out


def _u_shape(u: np.ndarray, open_weight: float, close_weight: float) -> np.ndarray:
    """1 at midday, higher at the open and the close; u in [0, 1) is the fraction of the session."""
    return 1.0 + open_weight * np.exp(-u / 0.06) + close_weight * np.exp(-(1.0 - u) / 0.05)


def _market_factor(seed: int, days: list[int]) -> tuple[list[np.ndarray], np.ndarray]:
    """Per-day arrays of market log-returns, and the overnight gaps (log) before each day."""
    rng = np.random.default_rng([seed, _MARKET_STREAM])
    returns = []
    gaps = rng.normal(0.0, _OVERNIGHT_SIGMA, size=len(days))
    gaps[0] = 0.0
    for n in days:
        u = np.arange(n) / n
        vol = _MARKET_SIGMA * _u_shape(u, 1.2, 0.5) / 1.15
        # Regimes: alternate trend / flat stretches with geometric lengths, trend sign random.
        drift = np.empty(n)
        i = 0
        trending = bool(rng.random() < 0.7)
        while i < n:
            mean = _TREND_MINUTES if trending else _FLAT_MINUTES
            length = int(rng.geometric(1.0 / mean))
            sign = 1.0 if rng.random() < 0.5 else -1.0
            drift[i : i + length] = sign * _TREND_DRIFT * _MARKET_SIGMA if trending else 0.0
            i += length
            trending = not trending if rng.random() < 0.8 else trending
        returns.append(drift + vol * rng.standard_normal(n))
    return returns, gaps


def _symbol_frame(
    symbol: str,
    seed: int,
    days: list[tuple[pd.Timestamp, pd.DatetimeIndex]],
    market: list[np.ndarray],
    gaps: np.ndarray,
) -> pd.DataFrame:
    prof = PROFILES.get(symbol, _default_profile(symbol))
    rng = np.random.default_rng([seed, zlib.crc32(symbol.encode()) | (1 << 32)])
    frames = []
    last_close = prof.price
    for d, (_, minutes) in enumerate(days):
        n = len(minutes)
        u = np.arange(n) / n
        shape = _u_shape(u, 1.2, 0.5) / 1.15
        idio = prof.idio * shape * rng.standard_normal(n)
        r = prof.beta * market[d] + idio
        gap = 0.0 if d == 0 else prof.beta * gaps[d] + rng.normal(0.0, prof.idio * 4)
        opens_log = np.log(last_close) + gap + np.concatenate(([0.0], np.cumsum(r[:-1])))
        closes_log = opens_log + r
        opens, closes = np.exp(opens_log), np.exp(closes_log)
        # Wicks beyond the body, scaled with the minute's volatility.
        sigma = (prof.beta * _MARKET_SIGMA + prof.idio) * shape
        highs = np.maximum(opens, closes) * np.exp(np.abs(rng.standard_normal(n)) * 0.5 * sigma)
        lows = np.minimum(opens, closes) * np.exp(-np.abs(rng.standard_normal(n)) * 0.5 * sigma)
        move = np.abs(r) / sigma
        volume = prof.volume * _u_shape(u, 3.0, 2.0) / 1.6
        volume = volume * rng.lognormal(0.0, 0.35, n) * (0.8 + 0.2 * np.minimum(move, 4.0))
        o, h, lo, c = (np.round(x, 2) for x in (opens, highs, lows, closes))
        # Opens continue from the previous rounded close within a session (as liquid tapes do).
        o[1:] = c[:-1]
        h = np.maximum(h, np.maximum(o, c))
        lo = np.minimum(lo, np.minimum(o, c))
        frames.append(
            pd.DataFrame(
                {
                    "ts": minutes,
                    "open": o,
                    "high": h,
                    "low": lo,
                    "close": c,
                    "volume": np.maximum(np.rint(volume), 1).astype(np.int64),
                },
            ),
        )
        last_close = float(c[-1])
    return pd.concat(frames, ignore_index=True)


def _iso_local(ts_utc: pd.Series) -> np.ndarray:
    """UTC times -> 'YYYY-MM-DDTHH:MM:SS+HH:MM' strings in New York time (vectorised)."""
    utc = pd.DatetimeIndex(ts_utc).as_unit("ns")
    local = utc.tz_convert(_NY).tz_localize(None)
    offset_min = (local.asi8 - utc.tz_localize(None).asi8) // 60_000_000_000
    body = np.datetime_as_string(local.to_numpy(), unit="s")
    sign = np.where(offset_min < 0, "-", "+")
    hh = np.char.zfill((np.abs(offset_min) // 60).astype(str), 2)
    mm = np.char.zfill((np.abs(offset_min) % 60).astype(str), 2)
    return np.char.add(np.char.add(np.char.add(np.char.add(body, sign), hh), ":"), mm)


def _to_csv_text(frame: pd.DataFrame) -> str:
    lines = [
        f"{t},{o:.2f},{h:.2f},{lo:.2f},{c:.2f},{v:d}\n"
        for t, o, h, lo, c, v in zip(
            _iso_local(frame["ts"]).tolist(),
            frame["open"].tolist(),
            frame["high"].tolist(),
            frame["low"].tolist(),
            frame["close"].tolist(),
            frame["volume"].tolist(),
            strict=True,
        )
    ]
    return HEADER + "".join(lines)


def generate_sample(
    out_dir: str | Path,
    *,
    symbols: tuple[str, ...] | list[str] = DEFAULT_SYMBOLS,
    start: str = "2025-06-16",
    sessions: int = 15,
    seed: int = 135,
) -> list[Path]:
    """Write ``{SYMBOL}_1min.csv`` per symbol into ``out_dir``; returns the paths (symbol order)."""
    syms = [str(s).strip().upper() for s in symbols]
    if not syms:
        raise ValueError("no symbols")
    if len(set(syms)) != len(syms):
        raise ValueError(f"duplicate symbols: {syms}")
    days = session_minutes(start, sessions)
    market, gaps = _market_factor(seed, [len(m) for _, m in days])
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for sym in syms:
        text = _to_csv_text(_symbol_frame(sym, seed, days, market, gaps))
        path = out / f"{sym}_1min.csv"
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(text.encode("ascii"))
        tmp.replace(path)
        paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m backtests.sample_data",
        description="Write deterministic sample 1-minute bars (one CSV per symbol).",
    )
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--symbols", nargs="+", default=list(DEFAULT_SYMBOLS))
    parser.add_argument("--start", default="2025-06-16", help="first session (or the next one)")
    parser.add_argument("--sessions", type=int, default=15)
    parser.add_argument("--seed", type=int, default=135)
    args = parser.parse_args(argv)
    paths = generate_sample(
        args.out_dir,
        symbols=tuple(args.symbols),
        start=args.start,
        sessions=args.sessions,
        seed=args.seed,
    )
    for p in paths:
        print(p)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
