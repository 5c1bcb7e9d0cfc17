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


class AlpacaAccountError(RuntimeError):
    """The broker cannot be traded with: unreachable, credentials refused, or the account is
    blocked / not ACTIVE (one-line message naming the URL, never a secret)."""


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


PAPER_TRADING_HOST = "paper-api.alpaca.markets"
_DEFAULT_PORTS = {"https": 443, "wss": 443, "http": 80, "ws": 80}


def normalise_host(host: str | None) -> str:
    """A host name as it is resolved: lower case, without trailing dots, IDNA (punycode) form.
    ``""`` when it cannot be normalised (not a valid host)."""
    host = (host or "").strip().rstrip(".").lower()
    if not host:
        return ""
    try:
        import ipaddress

        return ipaddress.ip_address(host).compressed
    except ValueError:
        pass
    try:
        import idna

        return idna.encode(host, uts46=True).decode("ascii").lower().rstrip(".")
    except Exception:  # noqa: BLE001 - idna missing or the name is not a valid IDNA name
        try:
            return host.encode("idna").decode("ascii").lower().rstrip(".")
        except UnicodeError:
            return ""


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        import ipaddress

        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    return bool(ip.is_loopback or (mapped is not None and mapped.is_loopback))


def is_paper_url(url: str | None) -> bool:
    """True only for Alpaca's paper host (``paper-api.alpaca.markets`` on its default port, https /
    wss) and loopback test servers (``127.0.0.0/8``, ``::1``, ``localhost``; any port). The host is
    normalised first (case, trailing dot, IDNA), so spelling variants cannot pass for paper. Every
    other host (the live host in any spelling, an IP, a proxy, an unknown name) is not paper."""
    if not url:
        return False
    try:
        parts = urlparse(url.strip())
        port = parts.port
    except ValueError:  # a malformed port / netloc
        return False
    scheme = (parts.scheme or "").lower()
    host = normalise_host(parts.hostname)
    if not host:
        return False
    if _is_loopback(host):
        return True
    return host == PAPER_TRADING_HOST and scheme in ("https", "wss") and port in (None, _DEFAULT_PORTS[scheme])


def is_live_url(url: str | None) -> bool:
    """True when ``url`` may reach a real-money account: every URL that is not ``is_paper_url``
    (fail closed). ``None`` / empty (no override) is not live."""
    if not url:
        return False
    return not is_paper_url(url)


def is_paper_account_number(account_number: str | None) -> bool:
    """Alpaca's paper account numbers start with ``PA``; anything else (empty included) is treated
    as a real-money account."""
    return bool(account_number) and str(account_number).strip().upper().startswith("PA")


def account_problem(account) -> str | None:
    """Why the broker's account answer forbids new entries, else None: ``account_blocked``,
    ``trading_blocked`` or a ``status`` other than ACTIVE (``account`` is alpaca-py's
    ``TradeAccount`` or the adapter's ``AlpacaAccount``; a missing status is not judged)."""
    problems = []
    if getattr(account, "account_blocked", None):
        problems.append("account_blocked")
    if getattr(account, "trading_blocked", None):
        problems.append("trading_blocked")
    status = getattr(account, "status", None)
    status = getattr(status, "value", status)
    if status is not None and str(status).upper() != "ACTIVE":
        problems.append(f"status {str(status).upper()}")
    if not problems:
        return None
    return "the broker reports the account " + ", ".join(problems)


def check_account(account, *, allow_live: bool, url: str) -> None:
    """The start-up verdict on the broker's own account answer: a real-money account number
    without ``allow_live`` raises ``AlpacaLiveTradingError``; a blocked / non-ACTIVE account raises
    ``AlpacaAccountError``. Messages are one line and hold no secret."""
    number = str(getattr(account, "account_number", "") or "")
    if not allow_live and not is_paper_account_number(number):
        raise AlpacaLiveTradingError(
            f"the broker at {url} reports a LIVE account (account number {number[:2] + '***' if number else '<none>'}, "
            "not a paper 'PA' account): REAL MONEY would be at risk; refused without an explicit opt-in "
            "(allow_live=True).")
    problem = account_problem(account)
    if problem:
        raise AlpacaAccountError(f"{problem} ({url}): no new entries; refusing to start.")


def trading_urls(paper: bool, trading_url: str | None = None,
                 trading_stream_url: str | None = None) -> tuple[str, str]:
    """The REST and stream URLs the execution client will use (overrides win)."""
    rest = trading_url or (PAPER_TRADING_URL if paper else LIVE_TRADING_URL)
    stream = trading_stream_url or (PAPER_TRADING_STREAM_URL if paper else LIVE_TRADING_STREAM_URL)
    return rest, stream


def check_live_allowed(paper: bool, trading_url: str | None = None,
                       trading_stream_url: str | None = None, allow_live: bool = False) -> bool:
    """The live-account guard. Returns True when the configuration trades real money.

    ``paper=False`` (without a URL override) or an override to any host but Alpaca's paper host
    and loopback test servers (``is_paper_url``) needs ``allow_live=True``; otherwise
    ``AlpacaLiveTradingError`` is raised. The broker's own answer is checked at connect time
    (``check_account``).
    """
    rest, stream = trading_urls(paper, trading_url, trading_stream_url)
    live = is_live_url(rest) or is_live_url(stream)
    if live and not allow_live:
        host = urlparse(rest).hostname if is_live_url(rest) else urlparse(stream).hostname
        raise AlpacaLiveTradingError(
            "This Alpaca configuration targets the LIVE trading account or a host that is not "
            f"Alpaca's paper host nor a loopback test server ({host}): REAL MONEY would be at risk. The default is paper "
            "trading. To trade live on purpose, set allow_live=True in AlpacaExecClientConfig "
            "(together with paper=False)."
        )
    return live


__all__ = [
    "ALPACA",
    "ALPACA_CLIENT_ID",
    "ALPACA_VENUE",
    "AlpacaAccountError",
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
    "PAPER_TRADING_HOST",
    "account_problem",
    "check_account",
    "check_live_allowed",
    "is_live_url",
    "is_paper_account_number",
    "is_paper_url",
    "normalise_host",
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
    #: non-empty when the broker says trading must stop (account blocked / trading_blocked / not
    #: ACTIVE): the executor trips its kill switch at once with this reason
    halt_reason: str = ""


__all__ += ["BROKER_STATUS_TOPIC", "BrokerStatus"]
