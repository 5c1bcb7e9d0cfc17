"""A 0DTE option held into the broker's cut-off, live: the production node (``build_live_node``,
XNYS calendar, ``options`` mode) against the local Alpaca-protocol server (XNYS expiry rules), in
one process on one clock. Run by ``tests/test_live_alpaca_options.py`` in a child process under
libfaketime (``tests/faketime_env.py``), placed shortly before 15:00 ET on a session day and
compressed, so the QQQ cut-off (15:30 ET; the executor closes a minute before) comes within
seconds. Writes ``result.json`` into ``--out``; the parent test asserts.

    python -m tests.options_cutoff_session --out /tmp/cutoff     # real time: about 35 minutes
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import traceback
from datetime import datetime, timedelta, timezone
from pathlib import Path

KEY, SECRET = "PKCUTOFF", "cutoff-secret"
STRIKES = range(95, 113)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    result: dict = {"ok": False}
    try:
        run(out, result)
        result["ok"] = True
    except BaseException as e:  # noqa: BLE001 - reported to the parent
        result["error"] = f"{type(e).__name__}: {e}"
        result["traceback"] = traceback.format_exc()
    (out / "result.json").write_text(json.dumps(result, default=str, indent=1))
    return 0 if result["ok"] else 1


def run(out: Path, result: dict) -> None:
    from adapters.alpaca.fake_server import FakeAlpacaServer
    from strategies.live import LiveSpec
    from tests.node_harness import until
    from tests.test_live_alpaca import bar_dicts, run_live
    from tests.test_pipeline_nautilus import crafted_flip_closes

    closes = crafted_flip_closes()
    start = datetime.now(timezone.utc)
    today = start.date()
    db = f"sqlite:///{out / 'live.db'}"
    with FakeAlpacaServer(keys={KEY: SECRET}, id_seed=41) as srv:
        asks = {}
        for days in range(3):
            for c in srv.generate_option_chain("QQQ", [today + timedelta(days=days)], STRIKES):
                ask = round(1.00 + 0.01 * float(c["strike_price"]) + 0.10 * days, 2)
                srv.set_quote(c["symbol"], bid=round(ask - 0.04, 2), ask=ask)
                asks[c["symbol"]] = ask
        srv.push_trade("QQQ", closes[0])
        spec = LiveSpec(symbols=["QQQ"], mode="options", db_url=db, api_key=KEY, api_secret=SECRET,
                        trading_url=srv.trading_url, trading_stream_url=srv.stream_url, data_url=srv.data_url,
                        data_stream_url=srv.data_stream_url, log_level="ERROR", warmup=False,
                        executor={"max_signal_age_seconds": 86_400}, control_poll_seconds=5.0)

        async def scenario(live):
            strat = live.strategy
            now_min = datetime.now(timezone.utc).replace(second=0, microsecond=0)
            bars = bar_dicts(closes, now_min)
            for b in bars[108:]:  # the second rise in red candles (opening a cent above the close):
                # the same closes and signals, but no green streak for momentum exhaustion to fire on
                b["o"] = round(b["c"] + 0.01, 2)
                b["h"] = round(b["o"] + 0.02, 2)
            def option_mp():
                return next((m for m in strat.pm.by_signal.values() if m.decision.instrument_type == "option"), None)

            pushed = bars[0]
            for b in bars:  # the session so far, as fast as the node takes it
                srv.push_bar("QQQ", b)
                pushed = b
                await asyncio.sleep(0.02)
                if option_mp() is not None:
                    break
            # (timeouts are on the faked clock: 600 simulated seconds are 10 real ones at 60x)
            mp = await until(option_mp, timeout=600, what="an option entry")
            await until(lambda: mp.position is not None and mp.open_qty > 0, timeout=600, what="the entry fill")
            result.update(symbol=mp.decision.ticker, qty=mp.open_qty, ask=asks[mp.decision.ticker],
                          entry_at=datetime.now(timezone.utc))
            last = pushed["c"]  # the market stays at the entry bar's close
            srv.set_quote(mp.decision.ticker, bid=1.60, ask=1.66)
            # then a quiet market, a flat doji bar a minute, until the position is gone
            minute = pushed["t"] + timedelta(minutes=1)
            for _ in range(90):
                while datetime.now(timezone.utc) < minute + timedelta(minutes=1, seconds=1):
                    await asyncio.sleep(0.01)
                    if mp.closed:
                        break
                if mp.closed:
                    break
                srv.push_bar("QQQ", {"t": minute, "o": last, "h": last + 0.01, "l": last - 0.01, "c": last, "v": 1000})
                minute += timedelta(minutes=1)
            await until(lambda: mp.closed, timeout=600, what="the position to close")
            result.update(exit_reason=mp.exit_reason, exit_fired=list(mp.exit_fired),
                          closed_at=datetime.now(timezone.utc))

        try:
            run_live(spec, scenario, timeout=7200.0)
        finally:
            from sqlalchemy import create_engine, select

            from strategies.journal.models import SignalDecisionRecord

            eng = create_engine(db)
            with eng.connect() as c:
                result["decisions"] = [dict(r._mapping) for r in c.execute(select(
                    SignalDecisionRecord.signal_id, SignalDecisionRecord.approved, SignalDecisionRecord.ts,
                    SignalDecisionRecord.reason)).all()]
            eng.dispose()
        result["orders"] = srv.orders()
        result["fills"] = srv.activities(["FILL"])
        result["fees"] = srv.activities(["FEE"])
        result["positions"] = srv.positions()
    from sqlalchemy import create_engine, select

    from strategies.journal.models import FillRecord, TradeExecutionRecord

    eng = create_engine(db)
    with eng.connect() as c:
        result["trades"] = [dict(r._mapping) for r in c.execute(
            select(TradeExecutionRecord.ticker, TradeExecutionRecord.shares, TradeExecutionRecord.entry_price,
                   TradeExecutionRecord.exit_price, TradeExecutionRecord.exit_reason, TradeExecutionRecord.status,
                   TradeExecutionRecord.exit_time)).all()]
        result["journal_fills"] = [dict(r._mapping) for r in c.execute(
            select(FillRecord.side, FillRecord.quantity, FillRecord.price, FillRecord.commission,
                   FillRecord.trade_id, FillRecord.ts)).all()]
    eng.dispose()


if __name__ == "__main__":
    sys.exit(main())
