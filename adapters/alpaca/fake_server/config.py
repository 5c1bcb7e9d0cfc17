"""Configuration of the fake Alpaca server (all knobs in one dataclass)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from .feed import BarFeedConfig


@dataclass
class FeeSchedule:
    """Regulatory fees charged on every *sell* fill (Alpaca itself charges no US-equity commission).

    Dated numbers, keep them in configuration: SEC Section 31 fee $27.80 per $1M of sale proceeds
    (rate effective 2024-05-22) and FINRA Trading Activity Fee $0.000166/share sold, capped at
    $8.30 per trade. Same defaults and rounding (sum, then half-up to the cent) as
    ``adapters/fees.py`` so backtest and fake-broker fees agree.
    """

    sec_fee_per_million: float = 27.80
    finra_taf_per_share: float = 0.000166
    finra_taf_max: float = 8.30
    commission_per_share: float = 0.0  # charged on buys and sells; 0 at Alpaca


@dataclass
class ServerConfig:
    # --- account -----------------------------------------------------------------------------
    initial_cash: float = 100_000.0
    margin_multiplier: float = 2.0          # buying_power = multiplier * equity - gross exposure - open orders
    min_equity_for_margin: float = 2_000.0  # below this equity the multiplier is 1 (Alpaca rule)
    shorting_enabled: bool = True
    account_number: str = "PA3FAKE00001"
    options_trading_level: int = 2
    # --- matching ----------------------------------------------------------------------------
    fill_on_submit: bool = False            # True: a marketable order fills against the current quote at submit
    option_calendar: str | None = None      # option expiry / cut-offs: None = the server calendar; "24/7" = UTC days
    option_auto_quotes: bool = False        # each 1-minute bar quotes its contracts near the price (demos)
    option_quote_vol: float = 0.20          # volatility of those quotes (Black-Scholes, calendar time)
    option_fill_on_submit: bool = True      # option orders fill against the contract's current quote once routed
                                            # (buy at the ask, sell at the bid; options trade on quotes, not bars)
    market_fill_on_bar: str = "close"       # bar-driven market fills: "close" (default) or "open"
    partial_fill_qty: float | None = None   # fill at most N shares per order per tick (None = all at once)
    respect_quote_size: bool = False        # cap quote-driven fills at bid_size / ask_size
    emit_pending_new: bool = False          # orders go pending_new -> new (two events), POST shows pending_new
    # --- timing like the broker (see README "Broker-like timing") -------------------------------
    async_routing: bool = False             # POST answers `accepted` / `pending_new`; `new` (and fills) come later
    ack_status: str = "auto"                # POST answer with async_routing: "accepted" | "pending_new" | "auto"
                                            # (auto: pending_new in the regular session, accepted outside it)
    routing_delay: tuple[float, float] = (0.05, 0.2)   # seconds (real time) from POST to `new`, seeded uniform
    async_cancels: bool = True              # DELETE answers 204 at once; pending_cancel, then `canceled` later
    emit_pending_cancel: bool = True        # with async_cancels: a `pending_cancel` trade_updates event first
    cancel_delay: tuple[float, float] = (0.05, 0.2)    # seconds (real time) from DELETE to `canceled`
    latency_seed: int | None = None         # seed for the routing / cancel delays (None = id_seed, else 0)
    wash_trade_check: bool = True           # refuse orders that could trade against an opposite working order (403)
    wash_trade_details: bool = False        # add `existing_order_id` / `reject_reason` to the 403 body
    strict_assets: bool = False             # only symbols registered with add_asset() are tradable
    fees: FeeSchedule = field(default_factory=FeeSchedule)
    # --- time / ids --------------------------------------------------------------------------
    clock_start: datetime | None = None     # None = wall clock; a datetime = manual clock frozen there
    clock_follows_bars: bool = False        # push_bar moves the (manual) clock to the bar's end
    calendar: str = "auto"                  # "auto" (exchange_calendars XNYS if importable) or "weekdays"
    id_seed: int | None = None              # seed for order/execution/activity ids (None = uuid4)
    # --- market data -------------------------------------------------------------------------
    bars_max_page_size: int = 10_000        # server-side cap on ``limit`` per page (Alpaca: 10000)
    data_feeds: tuple[str, ...] = ("iex", "sip", "delayed_sip", "test")
    option_data_feeds: tuple[str, ...] = ("indicative", "opra")  # /v1beta1/{feed} (msgpack only)
    data_connection_limit: int = 1          # concurrent market-data websockets per key (Alpaca: 1)
    # --- websockets --------------------------------------------------------------------------
    trade_stream_frames: str = "binary"     # JSON trade_updates in "binary" frames (as Alpaca paper) or "text"
    auth_timeout: float = 10.0              # seconds a websocket may stay unauthenticated
    # --- streamed bars ---------------------------------------------------------------------------
    bar_feed: "BarFeedConfig | None" = None # started with the server (see feed.py / README "Streaming bars")

    @classmethod
    def from_kwargs(cls, base: "ServerConfig | None" = None, **kwargs) -> "ServerConfig":
        names = {f.name for f in fields(cls)}
        unknown = set(kwargs) - names
        if unknown:
            raise TypeError(f"unknown FakeAlpacaServer option(s): {sorted(unknown)}")
        cfg = base or cls()
        for k, v in kwargs.items():
            setattr(cfg, k, v)
        if cfg.market_fill_on_bar not in ("close", "open"):
            raise ValueError("market_fill_on_bar must be 'close' or 'open'")
        if cfg.trade_stream_frames not in ("binary", "text"):
            raise ValueError("trade_stream_frames must be 'binary' or 'text'")
        if cfg.ack_status not in ("accepted", "pending_new", "auto"):
            raise ValueError("ack_status must be 'accepted', 'pending_new' or 'auto'")
        for name in ("routing_delay", "cancel_delay"):
            lo, hi = _delay_range(getattr(cfg, name), name)
            setattr(cfg, name, (lo, hi))
        return cfg

    @classmethod
    def broker_like(cls, **overrides) -> "ServerConfig":
        """Every timing / protection option as at the broker: asynchronous routing (`accepted`, then
        `new` 50-200 ms later), asynchronous cancels (`pending_cancel`, then `canceled`) and the
        wash-trade refusal. Other keyword arguments override single fields."""
        return cls.from_kwargs(None, **{**BROKER_LIKE, **overrides})


BROKER_LIKE: dict = {"async_routing": True, "async_cancels": True, "wash_trade_check": True}
"""The options ``ServerConfig.broker_like()`` / ``FakeAlpacaServer(broker_like=True)`` switch on."""


def _delay_range(value, name: str) -> tuple[float, float]:
    if isinstance(value, (int, float)):
        lo = hi = float(value)
    else:
        lo, hi = (float(v) for v in value)
    if lo < 0 or hi < lo:
        raise ValueError(f"{name} must be seconds >= 0, or a (low, high) range with low <= high")
    return lo, hi
