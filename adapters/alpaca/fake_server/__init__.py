"""A local Alpaca-protocol server for tests and demos, driven by the unmodified alpaca-py clients
through their URL overrides.

    from adapters.alpaca.fake_server import FakeAlpacaServer

    with FakeAlpacaServer(keys={"KEY": "SECRET"}) as srv:
        trading = TradingClient("KEY", "SECRET", paper=True, url_override=srv.trading_url)
        data = StockHistoricalDataClient("KEY", "SECRET", url_override=srv.data_url)
        stream = TradingStream("KEY", "SECRET", paper=True, url_override=srv.stream_url)
        feed = StockDataStream("KEY", "SECRET", url_override=srv.data_stream_url)
        srv.set_quote("AAPL", bid=189.99, ask=190.01)   # streams + fills resting orders

Serves the trading REST API v2 (paper semantics), ``trade_updates``, the stock market-data REST
API and websocket, a matching engine with partial fills, regulatory fees, and fault injection
(``srv.faults``), broker-like timing (asynchronous routing and cancels, the wash-trade refusal) and a
streamed multi-symbol bar feed (``srv.start_bar_feed``). See README.md beside this file for the control API and the wire formats.
"""

from .config import FeeSchedule, ServerConfig
from .engine import ApiError
from .faults import Faults
from .feed import BarFeed, BarFeedConfig, expected_series
from .server import DEFAULT_KEYS, FakeAlpacaServer

__all__ = ["FakeAlpacaServer", "ServerConfig", "FeeSchedule", "Faults", "ApiError", "DEFAULT_KEYS", "BarFeed",
           "BarFeedConfig", "expected_series"]
