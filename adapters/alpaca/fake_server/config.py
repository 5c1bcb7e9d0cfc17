"""Configuration of the fake Alpaca server (all knobs in one dataclass)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime


@dataclass
class FeeSchedule:
    """Regulatory fees charged on every *sell* fill (Alpaca itself charges no US-equity commission).

    Dated numbers, keep them in configuration: SEC Section 31 fee $27.80 per $1M of sale proceeds
    (rate effective 2024-05-22) and FINRA Trading Activity Fee $0.000166/share sold, capped at
    $8.30 per trade. Same defaults and rounding (sum, then half-up to the cent) as
    ``strategies/fees.py`` so backtest and fake-broker fees agree.
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
    market_fill_on_bar: str = "close"       # bar-driven market fills: "close" (default) or "open"
    partial_fill_qty: float | None = None   # fill at most N shares per order per tick (None = all at once)
    respect_quote_size: bool = False        # cap quote-driven fills at bid_size / ask_size
    emit_pending_new: bool = False          # orders go pending_new -> new (two events), POST shows pending_new
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
    data_connection_limit: int = 1          # concurrent market-data websockets per key (Alpaca: 1)
    # --- websockets --------------------------------------------------------------------------
    trade_stream_frames: str = "binary"     # JSON trade_updates in "binary" frames (as Alpaca paper) or "text"
    auth_timeout: float = 10.0              # seconds a websocket may stay unauthenticated

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
        return cfg
