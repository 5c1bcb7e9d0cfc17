"""Import benchmark: generate an N-row 1-minute CSV in /tmp, import it, print rows/s and peak RSS.

The import runs in a child process so its peak resident memory (``ru_maxrss``) is its own, not the
generator's. Numbers, not a pass/fail test.

Usage: python -m backtests.bench_import [--rows 5000000] [--csv PATH] [--chunk-rows N]
       [--module path/to/other/catalog_io.py]   (e.g. an older version, for before/after)
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd


def generate_csv(path: Path, rows: int, *, seed: int = 19, block: int = 500_000) -> None:
    """Weekday bars 04:00-20:00 New York time from 2005-01-03 on, naive UTC stamps (bar open),
    a seeded random walk (0.05 % per minute) around 100: no outliers, no tz alarm."""
    rng = np.random.default_rng(seed)
    days = pd.bdate_range("2005-01-03", periods=rows // 960 + 2)
    opens = pd.DatetimeIndex(
        [pd.Timestamp(f"{d:%Y-%m-%d} 04:00", tz="America/New_York") for d in days]
    ).tz_convert("UTC").tz_localize(None).as_unit("ns").asi8
    minute = np.arange(960, dtype=np.int64) * 60_000_000_000
    tmp = path.with_suffix(".partial")
    level = np.log(100.0)
    with open(tmp, "w") as out:
        out.write("timestamp,open,high,low,close,volume\n")
        done = 0
        while done < rows:
            n = min(block, rows - done)
            idx = np.arange(done, done + n)
            ts = opens[idx // 960] + minute[idx % 960]
            steps = rng.normal(0.0, 0.0005, n)
            close = np.exp(level + np.cumsum(steps))
            level = float(np.log(close[-1]))
            open_ = close * np.exp(-steps)
            wick = np.abs(rng.normal(0.0, 0.0003, n))
            high = np.maximum(open_, close) * (1 + wick)
            low = np.minimum(open_, close) * (1 - wick)
            frame = pd.DataFrame(
                {
                    "timestamp": np.datetime_as_string(ts.astype("datetime64[ns]"), unit="s"),
                    "open": open_.round(4),
                    "high": high.round(4),
                    "low": low.round(4),
                    "close": close.round(4),
                    "volume": rng.integers(100, 10_000, n),
                },
            )
            frame.to_csv(out, header=False, index=False)
            done += n
    os.replace(tmp, path)


def _load_module(module: str | None):
    if module is None:
        from backtests import catalog_io

        return catalog_io
    spec = importlib.util.spec_from_file_location("bench_catalog_io", module)
    mod = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    sys.modules[spec.name] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


def run_import(csv: Path, module: str | None, chunk_rows: int | None) -> dict:
    mod = _load_module(module)
    catalog = Path(tempfile.mkdtemp(prefix="bench_import_")) / "catalog"
    kwargs = {"chunk_rows": chunk_rows} if chunk_rows else {}
    try:
        t0 = time.perf_counter()
        report = mod.import_files(catalog, [csv], tz="UTC", symbols=["BENCH"], **kwargs)
        elapsed = time.perf_counter() - t0
        files = len(list(catalog.rglob("*.parquet")))
    finally:
        shutil.rmtree(catalog.parent, ignore_errors=True)
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"rows": report.rows, "seconds": elapsed, "rows_per_s": report.rows / elapsed,
            "peak_rss_mb": peak_kb / 1024, "parquet_files": files}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=5_000_000)
    p.add_argument("--csv", default=None, help="default: /tmp/bench_import_<rows>.csv (re-used)")
    p.add_argument("--module", default=None, help="another catalog_io.py to measure (before/after)")
    p.add_argument("--chunk-rows", type=int, default=None)
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    csv = Path(args.csv or f"/tmp/bench_import_{args.rows}.csv")
    if args.child:
        print(json.dumps(run_import(csv, args.module, args.chunk_rows)))
        return 0
    if not csv.exists():
        t0 = time.perf_counter()
        generate_csv(csv, args.rows)
        print(f"generated {csv} ({csv.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - t0:.1f}s")
    cmd = [sys.executable, "-m", "backtests.bench_import", "--child", "--rows", str(args.rows), "--csv", str(csv)]
    if args.module:
        cmd += ["--module", args.module]
    if args.chunk_rows:
        cmd += ["--chunk-rows", str(args.chunk_rows)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parent.parent)
    r = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"{args.module or 'backtests/catalog_io.py'}: {r['rows']:,} rows in {r['seconds']:.1f}s = "
          f"{r['rows_per_s']:,.0f} rows/s, peak RSS {r['peak_rss_mb']:,.0f} MB "
          f"({r['peak_rss_mb'] * 1024 * 1024 / r['rows']:,.0f} B/row), {r['parquet_files']} parquet files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
