"""Nautilus factories for the Alpaca adapter (register both under "ALPACA" on a TradingNode).

    node.add_data_client_factory("ALPACA", AlpacaLiveDataClientFactory)
    node.add_exec_client_factory("ALPACA", AlpacaLiveExecClientFactory)

The data client class lives in ``adapters.alpaca.data`` and is imported lazily, so the execution
side works without it.
"""

from __future__ import annotations

import asyncio
import inspect

from nautilus_trader.cache.cache import Cache
from nautilus_trader.common.component import LiveClock, MessageBus
from nautilus_trader.live.factories import LiveDataClientFactory, LiveExecClientFactory

from .common import check_live_allowed, resolve_credentials
from .config import AlpacaDataClientConfig, AlpacaExecClientConfig
from .http import create_trading_client
from .providers import AlpacaInstrumentProvider


def create_instrument_provider(config: AlpacaDataClientConfig | AlpacaExecClientConfig,
                               trading_client=None) -> AlpacaInstrumentProvider:
    """An instrument provider for ``config`` (its ``instrument_provider`` sub-config decides what
    is loaded on start). The provider reads the trading REST API (``/v2/assets``)."""
    if trading_client is None:
        key, secret = resolve_credentials(config.api_key, config.api_secret)
        trading_client = create_trading_client(
            key, secret, paper=config.paper, trading_url=getattr(config, "trading_url", None),
            timeout_s=getattr(config, "request_timeout_s", 10.0))
    return AlpacaInstrumentProvider(trading_client, config=config.instrument_provider)


class AlpacaLiveDataClientFactory(LiveDataClientFactory):
    """Creates ``adapters.alpaca.data.AlpacaDataClient`` instances."""

    @staticmethod
    def create(loop: asyncio.AbstractEventLoop, name: str, config: AlpacaDataClientConfig,
               msgbus: MessageBus, cache: Cache, clock: LiveClock):
        from .data import AlpacaDataClient  # lazy: the data client is optional

        key, secret = resolve_credentials(config.api_key, config.api_secret)
        trading_client = create_trading_client(key, secret, paper=config.paper,
                                               trading_url=getattr(config, "trading_url", None),
                                               timeout_s=getattr(config, "request_timeout_s", 10.0))
        provider = create_instrument_provider(config, trading_client)
        available = {
            "loop": loop, "name": name, "config": config, "msgbus": msgbus, "cache": cache,
            "clock": clock, "instrument_provider": provider, "provider": provider,
            "trading_client": trading_client,
        }
        params = inspect.signature(AlpacaDataClient.__init__).parameters
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
            kwargs = available
        else:
            kwargs = {k: v for k, v in available.items() if k in params}
        return AlpacaDataClient(**kwargs)


class AlpacaLiveExecClientFactory(LiveExecClientFactory):
    """Creates ``AlpacaExecutionClient`` instances (paper by default; live needs allow_live)."""

    @staticmethod
    def create(loop: asyncio.AbstractEventLoop, name: str, config: AlpacaExecClientConfig,
               msgbus: MessageBus, cache: Cache, clock: LiveClock):
        from .execution import AlpacaExecutionClient

        check_live_allowed(config.paper, config.trading_url, config.trading_stream_url, config.allow_live)
        provider = create_instrument_provider(config)
        return AlpacaExecutionClient(loop=loop, config=config, msgbus=msgbus, cache=cache,
                                     clock=clock, instrument_provider=provider, name=name)


__all__ = ["AlpacaLiveDataClientFactory", "AlpacaLiveExecClientFactory", "create_instrument_provider"]
