"""Shell-side risk plumbing between the executor and NautilusTrader's RiskEngine.

* ``install_risk_controls(kernel)`` registers a message-bus endpoint through which any component
  (the executor strategy, an operator actor, the dashboard bridge) sets the RiskEngine's trading
  state: ``msgbus.send(TRADING_STATE_ENDPOINT, "HALTED")``. Nautilus itself offers only the
  engine method, which components cannot reach; the endpoint keeps them decoupled from the kernel.
* In HALTED the RiskEngine denies every new order from every strategy (cancels still pass); in
  REDUCING it denies orders that would add to an existing position. The executor trips to REDUCING
  while it closes day-trade / scalp positions, then to HALTED (see ExecutorStrategy._on_kill_switch).
* ``BrokerStatus`` messages on ``BROKER_STATUS_TOPIC`` report broker connectivity (published by a
  live execution client on connect/disconnect/heartbeat); the executor turns a silence longer than
  ``api_timeout_seconds`` into the ``broker_disconnected`` kill-switch trigger. Backtests publish
  nothing: the simulated venue is always reachable.
* ``risk_engine_config(cfg)`` maps the executor's runaway guard (orders per minute) onto the
  RiskEngine's submit throttle, so excess orders are denied by Nautilus for every strategy alike.
* ``send_alert`` posts a kill-switch alert to an optional webhook, off the trading thread.
"""

from __future__ import annotations

import json
import logging
import threading
import urllib.request
from typing import Any

from nautilus_trader.model.enums import TradingState

# the broker-status message is the execution client's (the adapter publishes it); re-exported here
from adapters.alpaca.common import BROKER_STATUS_TOPIC, BrokerStatus

TRADING_STATE_ENDPOINT = "ExecutorRisk.set_trading_state"

_STATES = {"ACTIVE": TradingState.ACTIVE, "REDUCING": TradingState.REDUCING, "HALTED": TradingState.HALTED}

log = logging.getLogger(__name__)


def trading_state_name(state: Any) -> str:
    for name, value in _STATES.items():
        if state == value:
            return name
    raise ValueError(f"trading state must be one of {sorted(_STATES)}, got {state!r}")


def install_risk_controls(kernel: Any) -> None:
    """Register TRADING_STATE_ENDPOINT on ``kernel``'s message bus (BacktestEngine.kernel or
    TradingNode.kernel). Idempotent."""
    msgbus, risk_engine = kernel.msgbus, kernel.risk_engine

    def set_state(state: Any) -> None:
        if isinstance(state, str):
            if state.upper() not in _STATES:
                raise ValueError(f"trading state must be one of {sorted(_STATES)}, got {state!r}")
            state = _STATES[state.upper()]
        if risk_engine.trading_state != state:
            risk_engine.set_trading_state(state)

    if TRADING_STATE_ENDPOINT in msgbus.endpoints():
        return
    msgbus.register(TRADING_STATE_ENDPOINT, set_state)


def current_trading_state(kernel: Any) -> str:
    return trading_state_name(kernel.risk_engine.trading_state)


def risk_engine_config(max_orders_per_minute: int | None, live: bool = False):
    """RiskEngineConfig (LiveRiskEngineConfig when ``live``) with the submit throttle at
    ``max_orders_per_minute`` (None: Nautilus' default of 100 per second)."""
    if live:
        from nautilus_trader.live.config import LiveRiskEngineConfig as RiskEngineConfig
    else:
        from nautilus_trader.risk.config import RiskEngineConfig

    if max_orders_per_minute is None:
        return RiskEngineConfig()
    if int(max_orders_per_minute) < 1:
        raise ValueError(f"max_orders_per_minute must be >= 1, got {max_orders_per_minute!r}")
    return RiskEngineConfig(max_order_submit_rate=f"{int(max_orders_per_minute)}/00:01:00")


def validate_webhook_url(url: str) -> str:
    """``url`` if it is an http:// or https:// URL with a host; ValueError (one line naming the
    URL and the fix) otherwise: file://, ftp://, data: and the like would let urllib read local
    files or talk other protocols. Called up front (CLI, live config) and again by send_alert."""
    from urllib.parse import urlsplit

    if not isinstance(url, str) or not url.strip():
        raise ValueError(f"alert webhook {url!r}: not a URL; give an http:// or https:// URL")
    try:
        parts = urlsplit(url.strip())
    except ValueError as e:
        raise ValueError(f"alert webhook {url!r}: not a URL ({e}); give an http:// or https:// URL") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise ValueError(f"alert webhook {url!r}: scheme {parts.scheme or '(none)'!r} is not allowed; "
                         "give an http:// or https:// URL")
    if not parts.hostname:
        raise ValueError(f"alert webhook {url!r}: no host; give an http:// or https:// URL")
    return url.strip()


def send_alert(url: str | None, payload: dict[str, Any], *, timeout: float = 5.0) -> threading.Thread | None:
    """POST ``payload`` as JSON to ``url`` in a daemon thread; failures are logged, never raised.
    The payload must not hold secrets (it goes to a third party). Only http(s) URLs are posted
    to (``validate_webhook_url``); any other is refused with an error log, nothing is sent."""
    if not url:
        return None
    try:
        url = validate_webhook_url(url)
    except ValueError as e:
        log.error("kill-switch alert not sent: %s", e)
        return None
    body = json.dumps(payload, default=str).encode()

    def post() -> None:
        req = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
        try:
            # the scheme was checked above: http(s) only, the operator's own URL
            with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310  # nosec B310
                resp.read()
        except Exception as e:  # noqa: BLE001 - an alert must never take the executor down
            log.error("kill-switch alert to webhook failed: %s", e)

    t = threading.Thread(target=post, name="kill-switch-alert", daemon=True)
    t.start()
    return t


__all__ = [
    "BROKER_STATUS_TOPIC",
    "BrokerStatus",
    "TRADING_STATE_ENDPOINT",
    "current_trading_state",
    "install_risk_controls",
    "risk_engine_config",
    "send_alert",
    "trading_state_name",
    "validate_webhook_url",
]
