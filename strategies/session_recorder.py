"""Recording a live session for replay: every 1-minute bar the executor follows and every signal.

The live node (``strategies.live``, ``--record DIR``) adds this Actor next to the signal actor
and the executor. It writes, as the session goes:

    DIR/bars/<SYMBOL>.csv     timestamp (the bar's close, UTC), open, high, low, close, volume:
                              the format ``trade-executor data import --label close`` reads
    DIR/signals/              the session's TradeSignals, a ParquetDataCatalog (``backtest
                              --signals-from``), stamped as they were published (engine clock)
    DIR/session.json          symbols, mode, executor settings, starting equity, first/last bar

``trade-executor divergence DIR`` imports the bars, replays the signals through the backtest and
compares its trades with the live journal's (``backtests/divergence.py``).
"""

from __future__ import annotations

import csv
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from nautilus_trader.common.actor import Actor
from nautilus_trader.config import ActorConfig
from nautilus_trader.core.datetime import unix_nanos_to_dt
from nautilus_trader.model.data import Bar, BarType

from strategies.signal_data import TRADE_SIGNAL_DATA_TYPE, TradeSignalData


class SessionRecorderConfig(ActorConfig, frozen=True):
    out_dir: str
    symbols: tuple[str, ...] = ()  # every instrument whose 1-minute bars are recorded
    signal_symbols: tuple[str, ...] = ()  # the signal tickers (the replay's --symbols)
    venue: str = "ALPACA"
    bar_spec: str = "1-MINUTE-LAST-EXTERNAL"
    meta: dict = {}  # mode, executor overrides, starting equity ... (written to session.json)
    flush_every_bars: int = 20  # rows buffered per symbol before they are appended


class SessionRecorder(Actor):
    def __init__(self, config: SessionRecorderConfig) -> None:
        super().__init__(config)
        self.out = Path(config.out_dir)
        self._bar_types: dict[BarType, str] = {}
        self._rows: dict[str, list[list[Any]]] = {}
        self._signals: list[TradeSignalData] = []
        self._first_ns: int | None = None
        self._last_ns: int | None = None
        self.recorded_bars = 0
        self.recorded_signals = 0

    def on_start(self) -> None:
        (self.out / "bars").mkdir(parents=True, exist_ok=True)
        for sym in self.config.symbols:
            bar_type = BarType.from_str(f"{sym}.{self.config.venue}-{self.config.bar_spec}")
            self._bar_types[bar_type] = sym
            self.subscribe_bars(bar_type)
        self.msgbus.subscribe(topic=f"data.{TRADE_SIGNAL_DATA_TYPE.topic}", handler=self._on_signal)
        self._write_meta()

    def on_bar(self, bar: Bar) -> None:
        sym = self._bar_types.get(bar.bar_type)
        if sym is None:
            return
        ts = unix_nanos_to_dt(bar.ts_event).to_pydatetime(warn=False).astimezone(timezone.utc)
        rows = self._rows.setdefault(sym, [])
        rows.append([ts.isoformat(), bar.open.as_double(), bar.high.as_double(), bar.low.as_double(),
                     bar.close.as_double(), bar.volume.as_double()])
        self._first_ns = bar.ts_event if self._first_ns is None else min(self._first_ns, bar.ts_event)
        self._last_ns = bar.ts_event if self._last_ns is None else max(self._last_ns, bar.ts_event)
        self.recorded_bars += 1
        if len(rows) >= self.config.flush_every_bars:
            self._flush_bars(sym)

    def _on_signal(self, data: Any) -> None:
        if isinstance(data, TradeSignalData):
            self._signals.append(data)
            self.recorded_signals += 1
            if len(self._signals) >= 50:  # later signals only: the catalog's files never overlap
                self._flush_signals()

    def on_stop(self) -> None:
        self.flush()

    def flush(self) -> None:
        for sym in list(self._rows):
            self._flush_bars(sym)
        self._flush_signals()
        self._write_meta()

    def _flush_bars(self, sym: str) -> None:
        rows = self._rows.get(sym)
        if not rows:
            return
        path = self.out / "bars" / f"{sym}.csv"
        new = not path.exists()
        with path.open("a", newline="") as f:
            w = csv.writer(f)
            if new:
                w.writerow(["timestamp", "open", "high", "low", "close", "volume"])
            w.writerows(rows)
        rows.clear()

    def _flush_signals(self) -> None:
        if not self._signals:
            return
        from nautilus_trader.persistence.catalog import ParquetDataCatalog

        rows = [TradeSignalData(ts_event=s.ts_event, ts_init=s.ts_init, signal_id=s.signal_id, ticker=s.ticker,
                                timeframe=s.timeframe, signal_type=s.signal_type, direction=s.direction,
                                conviction=s.conviction, payload=s.with_payload().payload) for s in self._signals]
        (self.out / "signals").mkdir(parents=True, exist_ok=True)
        ParquetDataCatalog(str(self.out / "signals")).write_data(rows)
        self._signals.clear()

    def _write_meta(self) -> None:
        def iso(ns: int | None) -> str | None:
            return None if ns is None else datetime.fromtimestamp(ns / 1e9, tz=timezone.utc).isoformat()

        meta = {**dict(self.config.meta), "symbols": list(self.config.symbols),
                "signal_symbols": list(self.config.signal_symbols), "venue": self.config.venue,
                "first_bar": iso(self._first_ns), "last_bar": iso(self._last_ns),
                "bars": self.recorded_bars, "signals": self.recorded_signals}
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "session.json").write_text(json.dumps(meta, indent=2, default=str))


__all__ = ["SessionRecorder", "SessionRecorderConfig"]
