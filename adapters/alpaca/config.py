"""Configuration objects of the Alpaca adapter (msgspec-frozen Nautilus configs)."""

from __future__ import annotations

from nautilus_trader.config import InstrumentProviderConfig, LiveDataClientConfig, LiveExecClientConfig


class AlpacaInstrumentProviderConfig(InstrumentProviderConfig, frozen=True):
    """Instrument loading for Alpaca.

    ``load_ids`` (e.g. ``frozenset({InstrumentId.from_str("AAPL.ALPACA")})``) or ``load_all``
    come from the base class. ``load_all`` loads active tradable US equities (``asset_class``
    us_equity); set ``load_options=True`` to also load option contracts for
    ``option_underlyings`` (all contracts Alpaca lists can be tens of thousands).
    ``option_expiration_lte`` / ``option_expiration_gte`` ("YYYY-MM-DD") narrow the chain.
    """

    load_options: bool = False
    option_underlyings: tuple[str, ...] | None = None
    option_expiration_gte: str | None = None
    option_expiration_lte: str | None = None


class AlpacaDataClientConfig(LiveDataClientConfig, frozen=True):
    """Market-data client configuration.

    api_key / api_secret: None → environment (see ``common.resolve_credentials``).
    data_url: REST override (e.g. the fake server's ``data_url``); data_stream_url: websocket
    override. feed: "iex" (free) or "sip". bar_spec: the bar type streamed by default.
    """

    api_key: str | None = None
    api_secret: str | None = None
    paper: bool = True
    trading_url: str | None = None  # used only for instrument loading (/v2/assets)
    data_url: str | None = None
    data_stream_url: str | None = None
    feed: str = "iex"
    bar_spec: str = "1-MINUTE-LAST-EXTERNAL"
    request_timeout_s: float = 10.0
    # Option chains (live options mode; ``option_chain.OptionChainTracker``): for each of these
    # underlyings the contracts of the ``option_expiries`` nearest listed expiries within
    # ``option_strike_band_pct`` of the last price are loaded (at connect, on each new New York
    # date, and when the price leaves the loaded band), and quotes are streamed from the options
    # feed (``option_feed``: "indicative" or "opra", ``/v1beta1/{feed}``, msgpack) for the ATM
    # +- ``option_quote_strikes`` strikes, calls and puts, of those expiries, re-centred on every
    # bar of the underlying; each new subscription is seeded with the latest quote (REST) when it
    # is at most ``option_snapshot_max_age_s`` old. None / empty: no option data.
    option_underlyings: tuple[str, ...] | None = None
    option_feed: str = "indicative"
    option_data_stream_url: str | None = None  # None: data_stream_url's host + /v1beta1/{feed}
    option_expiries: int = 2
    option_strike_band_pct: float = 0.03
    option_quote_strikes: int = 2
    option_snapshot_max_age_s: float = 300.0


class AlpacaExecClientConfig(LiveExecClientConfig, frozen=True):
    """Execution client configuration.

    paper=True (default) trades the paper account. A live configuration (``paper=False``, or a
    ``trading_url`` / ``trading_stream_url`` on any host but Alpaca's paper host and loopback test
    servers) is refused unless ``allow_live=True``; so is an account the broker reports with a
    non-paper account number (checked on connect).
    request_timeout_s: per REST call; max_retries: extra attempts of a submit/cancel/replace
    that provably did not reach Alpaca (5xx / 429 / timeout with no order found by
    client_order_id). reconnect_*: exponential backoff of the trade_updates stream.
    heartbeat_interval_s: BrokerStatus heartbeat period while connected.
    """

    api_key: str | None = None
    api_secret: str | None = None
    paper: bool = True
    trading_url: str | None = None
    trading_stream_url: str | None = None
    allow_live: bool = False
    request_timeout_s: float = 10.0
    max_retries: int = 3
    retry_initial_delay_s: float = 0.5
    retry_max_delay_s: float = 10.0
    reconnect_initial_delay_s: float = 0.5
    reconnect_max_delay_s: float = 30.0
    heartbeat_interval_s: float = 15.0
    fill_lookback_days: int = 3


__all__ = ["AlpacaDataClientConfig", "AlpacaExecClientConfig", "AlpacaInstrumentProviderConfig"]
