"""Shared pieces of the Alpaca adapter: the venue, credential resolution, key masking, the
live-account guard and the ``BrokerStatus`` message.

Nothing here touches the network. Credentials come from explicit arguments first, then from the
environment (``ALPACA_API_KEY`` / ``ALPACA_API_SECRET``, or Alpaca's own ``APCA_API_KEY_ID`` /
``APCA_API_SECRET_KEY``). Values are never logged or put in exception messages: use ``mask``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from urllib.parse import urlparse

from nautilus_trader.model.identifiers import ClientId, Venue

ALPACA = "ALPACA"
ALPACA_VENUE = Venue(ALPACA)
ALPACA_CLIENT_ID = ClientId(ALPACA)

# Alpaca's public endpoints (same values as alpaca-py's ``BaseURL``; kept here so the guard does not
# depend on alpaca-py internals).
PAPER_TRADING_URL = "https://paper-api.alpaca.markets"
LIVE_TRADING_URL = "https://api.alpaca.markets"
PAPER_TRADING_STREAM_URL = "wss://paper-api.alpaca.markets/stream"
LIVE_TRADING_STREAM_URL = "wss://api.alpaca.markets/stream"
DATA_URL = "https://data.alpaca.markets"
DATA_STREAM_URL = "wss://stream.data.alpaca.markets"

KEY_ENV_VARS = ("ALPACA_API_KEY", "APCA_API_KEY_ID")
SECRET_ENV_VARS = ("ALPACA_API_SECRET", "APCA_API_SECRET_KEY")

# Alpaca's client_order_id limit.
MAX_CLIENT_ORDER_ID_LEN = 48


class AlpacaCredentialsError(ValueError):
    """Raised when an API key or secret is missing (the message names the variables, never values)."""


class AlpacaLiveTradingError(RuntimeError):
    """Raised when a configuration would trade the real-money account without ``allow_live=True``."""


def _first_env(names: tuple[str, ...]) -> str | None:
    for name in names:
        value = os.environ.get(name)
        if value:
            return value
    return None


def resolve_credentials(api_key: str | None = None, api_secret: str | None = None) -> tuple[str, str]:
    """Return ``(key, secret)`` from the arguments, else from the environment.

    Raises ``AlpacaCredentialsError`` naming the missing variable(s); values are never included.
    """
    key = api_key or _first_env(KEY_ENV_VARS)
    secret = api_secret or _first_env(SECRET_ENV_VARS)
    missing = []
    if not key:
        missing.append(f"API key (pass api_key or set {' / '.join(KEY_ENV_VARS)})")
    if not secret:
        missing.append(f"API secret (pass api_secret or set {' / '.join(SECRET_ENV_VARS)})")
    if missing:
        raise AlpacaCredentialsError("Alpaca credentials missing: " + "; ".join(missing))
    return key, secret


def mask(key: str | None) -> str:
    """A loggable form of a key: the first 4 characters and ``***`` (``<none>`` when empty)."""
    if not key:
        return "<none>"
    return f"{key[:4]}***"


def is_live_url(url: str | None) -> bool:
    """True when ``url`` points at Alpaca's real-money trading host (``api.alpaca.markets``, any
    scheme/path), i.e. not the paper host and not a local/test server."""
    if not url:
        return False
    host = (urlparse(url).hostname or "").lower()
    if "paper" in host:
        return False
    return host == "api.alpaca.markets" or host.endswith(".api.alpaca.markets")


def trading_urls(paper: bool, trading_url: str | None = None,
                 trading_stream_url: str | None = None) -> tuple[str, str]:
    """The REST and stream URLs the execution client will use (overrides win)."""
    rest = trading_url or (PAPER_TRADING_URL if paper else LIVE_TRADING_URL)
    stream = trading_stream_url or (PAPER_TRADING_STREAM_URL if paper else LIVE_TRADING_STREAM_URL)
    return rest, stream


def check_live_allowed(paper: bool, trading_url: str | None = None,
                       trading_stream_url: str | None = None, allow_live: bool = False) -> bool:
    """The live-account guard. Returns True when the configuration trades real money.

    ``paper=False`` (without a URL override) or an override pointing at Alpaca's live host needs
    ``allow_live=True``; otherwise ``AlpacaLiveTradingError`` is raised.
    """
    rest, stream = trading_urls(paper, trading_url, trading_stream_url)
    live = is_live_url(rest) or is_live_url(stream)
    if live and not allow_live:
        raise AlpacaLiveTradingError(
            "This Alpaca configuration targets the LIVE trading account "
            f"({urlparse(rest).hostname}): REAL MONEY would be at risk. The default is paper "
            "trading. To trade live on purpose, set allow_live=True in AlpacaExecClientConfig "
            "(together with paper=False)."
        )
    return live


__all__ = [
    "ALPACA",
    "ALPACA_CLIENT_ID",
    "ALPACA_VENUE",
    "AlpacaCredentialsError",
    "AlpacaLiveTradingError",
    "DATA_STREAM_URL",
    "DATA_URL",
    "KEY_ENV_VARS",
    "LIVE_TRADING_STREAM_URL",
    "LIVE_TRADING_URL",
    "MAX_CLIENT_ORDER_ID_LEN",
    "PAPER_TRADING_STREAM_URL",
    "PAPER_TRADING_URL",
    "SECRET_ENV_VARS",
    "check_live_allowed",
    "is_live_url",
    "mask",
    "resolve_credentials",
    "trading_urls",
]


# --------------------------------------------------------------------------------------------- #
# Broker status
# --------------------------------------------------------------------------------------------- #

#: Message-bus topic of ``BrokerStatus`` (the executor's ``broker_disconnected`` kill-switch
#: trigger listens on it; ``strategies.risk_control`` re-exports both names).
BROKER_STATUS_TOPIC = "executor.broker_status"


@dataclass(frozen=True)
class BrokerStatus:
    """Broker connectivity as seen by an execution client (ts_ns: engine clock, UNIX ns)."""

    connected: bool
    ts_ns: int
    broker: str = ""
    detail: str = ""


__all__ += ["BROKER_STATUS_TOPIC", "BrokerStatus"]
