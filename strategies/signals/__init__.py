"""EMA-cloud signal engine (stand-in for the upstream PRD-134 engine): pure Python, no Nautilus.

See ``strategies.signals.engine`` for the detection rules and the conviction table.
"""

from strategies.signals.ema_cloud import (
    ABOVE,
    BELOW,
    CORE_LAYER_NAMES,
    DEFAULT_LAYERS,
    EMA,
    INSIDE,
    LONG_TERM_LAYERS,
    OHLCV,
    PRICE_SOURCES,
    CloudLayer,
    CloudTracker,
)
from strategies.signals.engine import (
    TIMEFRAME_MINUTES,
    LookAheadError,
    SignalEngine,
    SignalEngineConfig,
    VolumeProfile,
    candle_quality,
    conviction_components,
    conviction_from_components,
    volume_score,
)

__all__ = [
    "ABOVE",
    "BELOW",
    "CORE_LAYER_NAMES",
    "DEFAULT_LAYERS",
    "EMA",
    "INSIDE",
    "LONG_TERM_LAYERS",
    "OHLCV",
    "PRICE_SOURCES",
    "CloudLayer",
    "CloudTracker",
    "TIMEFRAME_MINUTES",
    "LookAheadError",
    "SignalEngine",
    "SignalEngineConfig",
    "VolumeProfile",
    "candle_quality",
    "conviction_components",
    "conviction_from_components",
    "volume_score",
]
