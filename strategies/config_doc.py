"""Every ``ExecutorConfig`` setting with its default, its allowed values and its meaning.

Type and range come from the config's own schema (``models._ExecutorConfigSchema``, msgspec), the
default from the dataclass, the meaning from ``MEANINGS`` below (a setting without one fails
``tests/test_cli_explains.py``). Used by ``trade-executor config``, by the ``--set`` help of
``backtest`` / ``compare`` / ``live`` and for the README's settings table (``config --markdown``).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from enum import Enum
from typing import Any

import msgspec.inspect as mi

from strategies.trade_executor.models import ExecutorConfig, InstrumentMode, _ExecutorConfigSchema

MODES: tuple[str, ...] = tuple(m.value for m in InstrumentMode)

MEANINGS: dict[str, str] = {
    "instrument_mode": "what a signal is traded with: options (scalps as calls/puts), leveraged_etf, "
                       "both (by timeframe and conviction) or stock; `--mode` sets it",
    "max_risk_per_trade": "risk budget per trade as a share of equity (entry to stop distance x size)",
    "max_concurrent_positions": "open positions at most at once",
    "daily_loss_limit": "kill switch: the session's loss as a share of its starting equity",
    "max_single_stock_exposure": "cap on one underlying's exposure as a share of equity (options: premium)",
    "max_sector_exposure": "cap on one sector's exposure as a share of equity",
    "min_account_equity": "kill switch: equity below this (USD) halts trading",
    "max_option_delta_exposure": "cap on an underlying's option delta exposure (|delta| x 100 x price) "
                                 "as a share of equity",
    "primary_broker": "broker orders go to",
    "fallback_broker": "broker used when the primary is down (not wired yet)",
    "slippage_buffer": "price buffer on limit prices, as a fraction of the price",
    "default_time_in_force": "time in force of entry orders",
    "high_conviction_order_type": "entry order for conviction >= 75 with volume confirmed",
    "medium_conviction_order_type": "entry order for conviction 50-74 (limit at the pullback cloud)",
    "scale_in_enabled": "conviction >= 75 without volume: enter part now, add on the first pullback that holds",
    "scale_in_initial_pct": "share of the size a scale-in enters at once",
    "limit_entry_expire_bars": "bars of the signal's timeframe a limit entry may rest before it is cancelled",
    "reward_to_risk_target": "profit target in R (initial risks)",
    "time_stop_minutes": "day trades: exit after this many minutes without progress",
    "eod_close_time": "New York time intraday positions close (on a regular session; see eod_minutes_before_close)",
    "trailing_stop_cloud": "EMA cloud a swing's trailing stop follows",
    "max_etf_hold_days_3x": "sessions a 3x leveraged ETF may be held",
    "max_etf_hold_days_2x": "sessions a 2x leveraged ETF may be held",
    "prefer_3x_for_day_trades": "day trades pick the 3x fund over the 2x when both exist",
    "min_etf_daily_volume": "leveraged ETFs trading less per day (USD) are not routed to",
    "etf_sector_mapping": "route single stocks to their sector's leveraged ETF",
    "consecutive_loss_threshold": "kill switch: this many losing trades in a row, each worse than "
                                  "consecutive_loss_pct",
    "consecutive_loss_pct": "kill switch: a loss counting towards consecutive_loss_threshold, as a share of equity",
    "api_timeout_seconds": "kill switch: the broker silent for longer than this",
    "calendar": "exchange calendar for sessions, holidays and early closes (exchange_calendars name)",
    "eod_minutes_before_close": "minutes before the session's close intraday positions close "
                                "(15:55 on a 16:00 close, 12:55 on an early close)",
    "max_daily_trades": "runaway guard: entries per session",
    "max_orders_per_minute": "runaway guard: order submissions per minute for every strategy (RiskEngine throttle)",
    "max_signal_age_seconds": "a signal older than this on the engine clock is refused `stale_signal`",
    "max_signal_clock_skew_seconds": "a signal stamped further ahead of the engine clock is refused `future_signal`",
    "both_mode_etf_min_conviction": "both mode, day trades: conviction from which the leveraged ETF is used",
    "add_to_winner_min_r": "a same-direction entry may add to a winner at least this many R in profit "
                           "(inf: never)",
}


@dataclass(frozen=True)
class Setting:
    name: str
    type: str
    default: Any
    allowed: str
    meaning: str

    @property
    def default_text(self) -> str:
        return fmt_value(self.default)


def fmt_value(v: Any) -> str:
    if isinstance(v, Enum):
        return str(v.value)
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return f"{v:,.0f}" if v >= 1e6 and v == int(v) else f"{v:g}"
    return str(v)


def _range(t: Any) -> tuple[str, str]:
    """(type name, allowed values) of a msgspec type."""
    if isinstance(t, mi.LiteralType):
        return "choice", " | ".join(str(v) for v in t.values)
    if isinstance(t, mi.BoolType):
        return "bool", "true | false"
    if isinstance(t, (mi.FloatType, mi.IntType)):
        name = "number" if isinstance(t, mi.FloatType) else "integer"
        lo = f"> {fmt_value(t.gt)}" if t.gt is not None else f">= {fmt_value(t.ge)}" if t.ge is not None else ""
        hi = f"< {fmt_value(t.lt)}" if t.lt is not None else f"<= {fmt_value(t.le)}" if t.le is not None else ""
        return name, " and ".join(x for x in (lo, hi) if x) or "any"
    if isinstance(t, mi.StrType):
        if t.pattern == r"^\d{2}:\d{2}$":
            return "text", "HH:MM"
        return "text", "non-empty" if t.min_length else "any"
    return type(t).__name__, "?"


def settings() -> list[Setting]:
    """Every ExecutorConfig field, in the dataclass' order."""
    schema = {f.name: f.type for f in mi.type_info(_ExecutorConfigSchema).fields}
    defaults = ExecutorConfig()
    out = []
    for f in dataclasses.fields(ExecutorConfig):
        tname, allowed = _range(schema[f.name])
        out.append(Setting(f.name, tname, getattr(defaults, f.name), allowed, MEANINGS.get(f.name, "")))
    return out


def format_text() -> str:
    rows = settings()
    w = max(len(s.name) for s in rows)
    dw = max(len(s.default_text) for s in rows)
    lines = [f"{'setting':<{w}}  {'default':<{dw}}  allowed / meaning"]
    for s in rows:
        lines.append(f"{s.name:<{w}}  {s.default_text:<{dw}}  {s.allowed}")
        lines.append(f"{'':<{w}}  {'':<{dw}}    {s.meaning}")
    lines.append("")
    lines.append("Set any of them with --set KEY=VALUE (backtest, compare, live), e.g. --set max_risk_per_trade=0.02")
    return "\n".join(lines)


def format_markdown() -> str:
    lines = ["| setting | default | allowed | meaning |", "|---|---|---|---|"]
    for s in settings():
        allowed = s.allowed.replace(" | ", ", ")  # a bare | would split the table's cell
        lines.append(f"| `{s.name}` | {s.default_text} | {allowed} | {s.meaning} |")
    return "\n".join(lines)


def set_help() -> str:
    """The ``--set`` option's help: every key with its default (details: trade-executor config)."""
    keys = ", ".join(f"{s.name} ({s.default_text})" for s in settings())
    return ("override an ExecutorConfig setting (repeatable), e.g. --set max_risk_per_trade=0.02; "
            f"`trade-executor config` lists each with its range and meaning. Keys (default): {keys}")


__all__ = ["MEANINGS", "MODES", "Setting", "fmt_value", "format_markdown", "format_text", "set_help", "settings"]
