"""Alpaca broker adapter for NautilusTrader (the local fake Alpaca server lives in ``fake_server``).

    from adapters.alpaca import (ALPACA_VENUE, AlpacaExecClientConfig, AlpacaDataClientConfig,
                                 AlpacaLiveExecClientFactory, AlpacaLiveDataClientFactory)

Heavier modules (execution, data, factories) are imported on first attribute access, so importing
the package does not pull in alpaca-py's websocket stack.
"""

from __future__ import annotations

import importlib

from .common import (
    ALPACA,
    ALPACA_CLIENT_ID,
    ALPACA_VENUE,
    AlpacaCredentialsError,
    AlpacaLiveTradingError,
    check_live_allowed,
    is_live_url,
    mask,
    resolve_credentials,
)
from .config import AlpacaDataClientConfig, AlpacaExecClientConfig, AlpacaInstrumentProviderConfig

_LAZY = {
    "AlpacaInstrumentProvider": ".providers",
    "AlpacaExecutionClient": ".execution",
    "AlpacaDataClient": ".data",
    "AlpacaLiveDataClientFactory": ".factories",
    "AlpacaLiveExecClientFactory": ".factories",
    "create_instrument_provider": ".factories",
    "create_trading_client": ".http",
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ALPACA",
    "ALPACA_CLIENT_ID",
    "ALPACA_VENUE",
    "AlpacaCredentialsError",
    "AlpacaDataClient",
    "AlpacaDataClientConfig",
    "AlpacaExecClientConfig",
    "AlpacaExecutionClient",
    "AlpacaInstrumentProvider",
    "AlpacaInstrumentProviderConfig",
    "AlpacaLiveDataClientFactory",
    "AlpacaLiveExecClientFactory",
    "AlpacaLiveTradingError",
    "check_live_allowed",
    "create_instrument_provider",
    "create_trading_client",
    "is_live_url",
    "mask",
    "resolve_credentials",
]
