"""Signal -> instrument (PRD-135 "Instrument Mode").

Mode table (trade type from the signal's timeframe: 1m scalp, 5m/10m day, 1h/1d swing):

    mode            scalp           day                          swing
    OPTIONS         option          stock                        stock
    LEVERAGED_ETF   leveraged_etf   leveraged_etf                leveraged_etf
    BOTH            option          3x ETF or stock (conviction) stock
    STOCK           stock           stock                        stock

BOTH mode, day trades (seed: "Both: 3x ETF or stock (conviction-based)"): conviction >=
``both_mode_etf_min_conviction`` (``ExecutorConfig.both_mode_etf_min_conviction``, default 75 —
the seed's "high conviction") routes to the leveraged ETF chosen as below for a day trade (the 3x
fund when the catalog has one and ``prefer_3x_for_day_trades``; a sector whose only fund is 2x,
e.g. energy/ERX, gets that fund); when no fund is routable for the signal (unknown ticker, no inverse fund, liquidity floor)
it falls back to the stock, tradeable, with the reason saying why. Medium conviction (50-74, i.e.
below the threshold) routes to the stock. ``MODE_TABLE`` lists BOTH/day as ``leveraged_etf``: the
high-conviction choice.

Options decisions only name the signal ticker: choosing the contract is the options scalper's job.

Leveraged ETFs (``select_etf``): the signal ticker maps to a sector/index key (``TICKER_SECTOR``),
the key to catalog entries; a long signal buys the bull fund, a short signal buys the inverse fund
(``is_inverse=True``). Day trades and scalps prefer the highest leverage (3x) when
``prefer_3x_for_day_trades``; swings prefer a 2x fund when the key has one (less decay), else the
fund nearest 2x. Among equals the catalog's listed order wins (SPXL/SPXS before UPRO/SPXU). A fund
whose average daily dollar volume is below ``min_etf_daily_volume`` is skipped.

Leverage sign convention:
* ``ETFSelection.leverage`` is the fund's leverage magnitude (always positive, e.g. 3.0 for SQQQ);
  ``ETFSelection.is_inverse`` says which side.
* ``InstrumentDecision.leverage`` is SIGNED: +3.0 for TQQQ, -3.0 for SQQQ. Exposure in the
  underlying = leverage x fund notional (the fund itself is always bought), which is what the risk
  gate nets.

When no instrument fits (unknown ticker, a short signal whose only fund has no inverse such as
healthcare/CURE, every candidate below the liquidity floor), ``route`` returns
``InstrumentDecision(tradeable=False, reason="no_instrument: ...")``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from strategies.trade_executor.etf_catalog import (
    INDEX_KEYS,
    LEVERAGED_ETF_CATALOG,
    etf_keys_for,
    sector_of,
)
from strategies.trade_executor.models import (
    HIGH_CONVICTION,
    ETFSelection,
    ExecutorConfig,
    InstrumentDecision,
    TIMEFRAME_TRADE_TYPE,
    InstrumentMode,
    TradeSignal,
)

_PROBE_TIME = datetime(2025, 1, 2, 15, 0, tzinfo=timezone.utc)  # any valid time: routing ignores it

# mode -> trade type -> instrument type
MODE_TABLE: dict[InstrumentMode, dict[str, str]] = {
    InstrumentMode.OPTIONS: {"scalp": "option", "day": "stock", "swing": "stock"},
    InstrumentMode.LEVERAGED_ETF: {
        "scalp": "leveraged_etf", "day": "leveraged_etf", "swing": "leveraged_etf",
    },
    InstrumentMode.BOTH: {"scalp": "option", "day": "leveraged_etf", "swing": "stock"},
    InstrumentMode.STOCK: {"scalp": "stock", "day": "stock", "swing": "stock"},
}


@dataclass(frozen=True)
class _Pick:
    key: str
    entry: dict[str, Any]
    selection: ETFSelection
    signed_leverage: float
    sector: str


class InstrumentRouter:
    def __init__(
        self,
        mode: InstrumentMode | str,
        etf_catalog: dict[str, dict[str, Any]] = LEVERAGED_ETF_CATALOG,
        min_etf_daily_volume: float = 10_000_000,
        prefer_3x_for_day_trades: bool = True,
        *,
        sector_mapping: bool = True,
        both_mode_etf_min_conviction: int = HIGH_CONVICTION,
    ) -> None:
        """``sector_mapping=False`` (config ``etf_sector_mapping``) maps only index tickers.
        ``both_mode_etf_min_conviction`` (config of the same name, default 75): in BOTH mode a day
        trade goes to the leveraged ETF at or above it, to the stock below it."""
        v = both_mode_etf_min_conviction
        if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= 100:
            raise ValueError(f"both_mode_etf_min_conviction must be an integer 0-100, got {v!r}")
        self.both_mode_etf_min_conviction = v
        try:
            self.mode = InstrumentMode(mode)
        except ValueError:
            raise ValueError(
                f"mode must be one of {[m.value for m in InstrumentMode]}, got {mode!r}"
            ) from None
        self.etf_catalog = etf_catalog
        self.min_etf_daily_volume = float(min_etf_daily_volume)
        self.prefer_3x_for_day_trades = bool(prefer_3x_for_day_trades)
        self.sector_mapping = bool(sector_mapping)

    @classmethod
    def from_config(cls, config: ExecutorConfig,
                    etf_catalog: dict[str, dict[str, Any]] = LEVERAGED_ETF_CATALOG) -> InstrumentRouter:
        """A router with every routing setting taken from ``config`` (instrument_mode,
        min_etf_daily_volume, prefer_3x_for_day_trades, etf_sector_mapping,
        both_mode_etf_min_conviction)."""
        return cls(
            config.instrument_mode, etf_catalog=etf_catalog,
            min_etf_daily_volume=config.min_etf_daily_volume,
            prefer_3x_for_day_trades=config.prefer_3x_for_day_trades,
            sector_mapping=config.etf_sector_mapping,
            both_mode_etf_min_conviction=config.both_mode_etf_min_conviction,
        )

    def reachable_funds(self, symbols, *, mode: InstrumentMode | str | None = None) -> dict[str, list[str]]:
        """Fund ticker -> signal symbols that can route to it (in ``mode``, default this router's;
        empty in stock / options mode): the router itself is probed for every direction and
        trade type. Live nodes subscribe these funds' bars; backtests build their bars."""
        probe_router = self if mode is None else InstrumentRouter(
            mode, etf_catalog=self.etf_catalog, min_etf_daily_volume=self.min_etf_daily_volume,
            prefer_3x_for_day_trades=self.prefer_3x_for_day_trades, sector_mapping=self.sector_mapping,
            both_mode_etf_min_conviction=self.both_mode_etf_min_conviction)
        timeframes: dict[str, str] = {}
        for tf, tt in TIMEFRAME_TRADE_TYPE.items():
            timeframes.setdefault(tt, tf)
        out: dict[str, list[str]] = {}
        for sym in symbols:
            for direction in ("long", "short"):
                for tf in timeframes.values():
                    long = direction == "long"
                    probe = TradeSignal(signal_type="trend_aligned_long" if long else "trend_aligned_short",
                                        direction=direction, ticker=sym, timeframe=tf, conviction=80,
                                        entry_price=100.0, stop_loss=99.0 if long else 101.0,
                                        target_price=102.0 if long else 98.0, cloud_states=[],
                                        timestamp=_PROBE_TIME)
                    d = probe_router.route(probe)
                    if d.instrument_type == "leveraged_etf" and d.tradeable:
                        out.setdefault(d.ticker, [])
                        if probe.ticker not in out[d.ticker]:
                            out[d.ticker].append(probe.ticker)
        return dict(sorted(out.items()))

    # ── routing ──────────────────────────────────────────────────────────────────────────────
    def _both_day_by_conviction(self, signal: TradeSignal) -> bool:
        return self.mode is InstrumentMode.BOTH and signal.trade_type == "day"

    def instrument_type_for(self, signal: TradeSignal) -> str:
        """The instrument type the mode asks for (before the BOTH-mode stock fallback when no
        leveraged ETF is routable)."""
        if self._both_day_by_conviction(signal) \
                and signal.conviction < self.both_mode_etf_min_conviction:
            return "stock"
        return MODE_TABLE[self.mode][signal.trade_type]

    def route(self, signal: TradeSignal) -> InstrumentDecision:
        kind = self.instrument_type_for(signal)
        tt = signal.trade_type
        if self._both_day_by_conviction(signal):
            high = signal.conviction >= self.both_mode_etf_min_conviction
            if not high:
                return InstrumentDecision(
                    instrument_type="stock", ticker=signal.ticker,
                    original_signal_ticker=signal.ticker, leverage=1.0, is_inverse=False,
                    etf_metadata=None, tradeable=True,
                    reason=f"stock: both mode trades {tt} signals with conviction "
                           f"{signal.conviction} < {self.both_mode_etf_min_conviction} in "
                           f"{signal.ticker}",
                )
            pick, why = self._pick(signal)
            if pick is None:
                return InstrumentDecision(
                    instrument_type="stock", ticker=signal.ticker,
                    original_signal_ticker=signal.ticker, leverage=1.0, is_inverse=False,
                    etf_metadata=None, tradeable=True,
                    reason=f"stock: both mode, conviction {signal.conviction} >= "
                           f"{self.both_mode_etf_min_conviction} but no leveraged ETF fits "
                           f"({why}); trading {signal.ticker}",
                )
            return self._etf_decision(
                signal, pick, note=f" (both mode: conviction {signal.conviction} >= "
                                   f"{self.both_mode_etf_min_conviction})")
        if kind == "option":
            return InstrumentDecision(
                instrument_type="option", ticker=signal.ticker,
                original_signal_ticker=signal.ticker, leverage=1.0, is_inverse=False,
                etf_metadata=None, tradeable=True,
                reason=f"option: {self.mode.value} mode routes {tt} signals to options on "
                       f"{signal.ticker} (contract chosen by the options scalper)",
            )
        if kind == "stock":
            return InstrumentDecision(
                instrument_type="stock", ticker=signal.ticker,
                original_signal_ticker=signal.ticker, leverage=1.0, is_inverse=False,
                etf_metadata=None, tradeable=True,
                reason=f"stock: {self.mode.value} mode trades {tt} signals in {signal.ticker}",
            )
        pick, why = self._pick(signal)
        if pick is None:
            return InstrumentDecision(
                instrument_type="leveraged_etf", ticker=signal.ticker,
                original_signal_ticker=signal.ticker, leverage=1.0, is_inverse=False,
                etf_metadata=None, tradeable=False, reason=f"no_instrument: {why}",
            )
        return self._etf_decision(signal, pick)

    def _etf_decision(self, signal: TradeSignal, pick: _Pick, note: str = "") -> InstrumentDecision:
        tt = signal.trade_type
        sel = pick.selection
        meta = dict(pick.entry)
        meta.update(catalog_key=pick.key, sector=pick.sector, selected_ticker=sel.ticker,
                    selected_avg_daily_volume=sel.avg_daily_volume)
        side = "inverse" if sel.is_inverse else "bull"
        return InstrumentDecision(
            instrument_type="leveraged_etf", ticker=sel.ticker,
            original_signal_ticker=signal.ticker, leverage=pick.signed_leverage,
            is_inverse=sel.is_inverse, etf_metadata=meta, tradeable=True,
            reason=f"leveraged_etf: {signal.ticker} -> {pick.sector} -> {sel.ticker} "
                   f"({pick.signed_leverage:+g}x {side}) for a {signal.direction} {tt} signal{note}",
        )

    def select_etf(self, signal: TradeSignal) -> ETFSelection | None:
        """The leveraged ETF for ``signal``, or None when none fits."""
        pick, _why = self._pick(signal)
        return pick.selection if pick is not None else None

    def explain_no_etf(self, signal: TradeSignal) -> str | None:
        """Why ``select_etf`` returns None for this signal (None when it returns a fund)."""
        pick, why = self._pick(signal)
        return None if pick is not None else why

    # ── selection ────────────────────────────────────────────────────────────────────────────
    def _pick(self, signal: TradeSignal) -> tuple[_Pick | None, str]:
        ticker = signal.ticker
        sector = sector_of(ticker)
        if sector is None:
            return None, f"{ticker} has no sector/index mapping to a leveraged ETF"
        if not self.sector_mapping and sector not in INDEX_KEYS:
            return None, f"{ticker} maps to sector {sector} but ETF sector mapping is disabled"
        keys = etf_keys_for(sector, self.etf_catalog)
        if not keys:
            return None, f"{ticker} -> {sector}: no catalog entry tracks it"
        short = signal.direction == "short"
        rejected: list[str] = []
        candidates: list[tuple[tuple, _Pick]] = []
        for order, key in enumerate(keys):
            entry = self.etf_catalog[key]
            lev = abs(float(entry["leverage"]))
            if short:
                fund = entry.get("inverse")
                if not fund:
                    rejected.append(f"{entry['ticker']} has no inverse fund")
                    continue
                signed = entry.get("inverse_leverage")
                signed = -lev if signed is None else float(signed)
                volume = entry.get("inverse_avg_daily_volume")
            else:
                fund = entry["ticker"]
                signed = lev
                volume = entry.get("avg_daily_volume")
            volume = float(volume) if volume is not None else 0.0
            if volume < self.min_etf_daily_volume:
                rejected.append(
                    f"{fund} avg daily volume ${volume:,.0f} < ${self.min_etf_daily_volume:,.0f}"
                )
                continue
            sel = ETFSelection(
                ticker=fund, leverage=abs(signed), tracks=str(entry.get("tracks", "")),
                avg_daily_volume=volume, is_inverse=short,
            )
            rank = self._rank(abs(signed), signal.trade_type)
            candidates.append(((rank, order), _Pick(key, entry, sel, signed, sector)))
        if not candidates:
            side = "inverse" if short else "bull"
            return None, f"{ticker} -> {sector}: no {side} fund fits ({'; '.join(rejected)})"
        candidates.sort(key=lambda c: c[0])
        return candidates[0][1], ""

    def _rank(self, lev: float, trade_type: str) -> float:
        """Lower is better: highest leverage for day trades/scalps (when preferred), else nearest 2x."""
        if trade_type in ("day", "scalp") and self.prefer_3x_for_day_trades:
            return -lev
        return abs(lev - 2.0)


__all__ = ["InstrumentRouter", "MODE_TABLE"]
