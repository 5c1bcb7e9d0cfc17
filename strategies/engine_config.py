"""NautilusTrader engine settings shared by the backtest (BacktestEngine) and the live node
(TradingNode): both aggregate the higher timeframes from 1-minute bars the same way."""

from __future__ import annotations

import pandas as pd
from nautilus_trader.data.config import DataEngineConfig
from nautilus_trader.model.enums import BarAggregation


def data_engine_config(build_delay_us: int = 0, live: bool = False) -> DataEngineConfig:
    """``build_delay_us``: live feeds deliver a minute's bar a moment after the minute closes;
    the higher-timeframe buckets wait that long before closing so the bar lands in its bucket.
    ``live``: the TradingNode's LiveDataEngineConfig, same settings."""
    if live:
        from nautilus_trader.live.config import LiveDataEngineConfig as cls
    else:
        cls = DataEngineConfig
    return cls(
        time_bars_build_delay=build_delay_us,
        # hour buckets 09:30-10:30, ... so they line up with the NYSE open (:30 in EST and EDT)
        time_bars_origin_offset={BarAggregation.HOUR: pd.Timedelta(minutes=30)},
        # overnight and on holidays nothing trades: no flat placeholder bars into the EMAs
        time_bars_build_with_no_updates=False,
    )


# NautilusTrader's own components: their INFO lines (portfolio and account updates every
# heartbeat, connections, subscriptions, the start-up banner) are routine; shown with DEBUG only.
ENGINE_COMPONENTS = (
    "TradingNode", "Trader", "Portfolio", "DataEngine", "ExecEngine", "RiskEngine", "Cache", "MessageBus",
    "OrderEmulator", "Controller", "Throttler", "AlpacaInstrumentProvider", "DataClient-ALPACA",
    "ExecClient-ALPACA", "OrderRecorder", "Throttler-ORDER_SUBMIT_THROTTLER", "Throttler-ORDER_MODIFY_THROTTLER",
)


def live_logging_config(level: str = "INFO", trader_id: str | None = None):
    """The live node's LoggingConfig: at INFO (or above) only the executor's own story (signal
    actor, executor, ``strategies.story_log``) and every warning or error; the engine's routine
    INFO lines and the clock's "alert time was in the past, adjusted" notices are not shown.
    ``level="DEBUG"`` shows everything."""
    from nautilus_trader.config import LoggingConfig

    level = level.upper()
    if level == "DEBUG":
        return LoggingConfig(log_level="DEBUG")
    quiet = {c: "WARNING" for c in ENGINE_COMPONENTS}
    if trader_id:
        quiet[trader_id] = "WARNING"  # the Trader component logs under the trader id
    # a timer set for a moment that has just passed fires at once; Nautilus says so as a WARN
    quiet["nautilus_common::clock"] = "ERROR"
    return LoggingConfig(log_level=level, log_component_levels=quiet)


__all__ = ["ENGINE_COMPONENTS", "data_engine_config", "live_logging_config"]
