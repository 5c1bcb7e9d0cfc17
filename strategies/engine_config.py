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


__all__ = ["data_engine_config"]
