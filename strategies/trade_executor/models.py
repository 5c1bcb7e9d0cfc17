"""Data of the executor's functional core (PRD-135 names, core-contract.md shapes).

Pure Python: no NautilusTrader types, no I/O, no wall clock. Everything that needs "now" takes it
as an argument (engine time in backtests).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from collections.abc import Mapping
from datetime import datetime
from enum import Enum
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from strategies.trade_executor.timeutil import aware_utc, finite, parse_hhmm

Direction = Literal["long", "short"]
TradeType = Literal["day", "swing", "scalp"]

TIMEFRAMES: tuple[str, ...] = ("1m", "5m", "10m", "1h", "1d")
# domain-facts §1: 1m -> scalp, 5m/10m -> day trade, 1h/1d -> swing
TIMEFRAME_TRADE_TYPE: dict[str, TradeType] = {
    "1m": "scalp",
    "5m": "day",
    "10m": "day",
    "1h": "swing",
    "1d": "swing",
}

HIGH_CONVICTION = 75
MEDIUM_CONVICTION = 50


class InstrumentMode(str, Enum):
    OPTIONS = "options"  # scalps -> 0DTE/1DTE options, day/swing -> stock
    LEVERAGED_ETF = "leveraged_etf"  # everything -> leveraged ETFs
    # scalps -> options; day -> 3x leveraged ETF when conviction >= both_mode_etf_min_conviction
    # (and a fund is routable), else the stock; swing -> stock
    BOTH = "both"
    STOCK = "stock"  # baseline: trade the signal ticker itself


class SignalType(str, Enum):
    CLOUD_CROSS_BULLISH = "cloud_cross_bullish"
    CLOUD_CROSS_BEARISH = "cloud_cross_bearish"
    CLOUD_FLIP_BULLISH = "cloud_flip_bullish"
    CLOUD_FLIP_BEARISH = "cloud_flip_bearish"
    CLOUD_BOUNCE_LONG = "cloud_bounce_long"
    CLOUD_BOUNCE_SHORT = "cloud_bounce_short"
    TREND_ALIGNED_LONG = "trend_aligned_long"
    TREND_ALIGNED_SHORT = "trend_aligned_short"
    MOMENTUM_EXHAUSTION = "momentum_exhaustion"
    MTF_CONFLUENCE = "mtf_confluence"


def _require_price(name: str, value: Any) -> float:
    """A strictly positive, finite number; ValueError naming the field otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a number, got {value!r}")
    v = float(value)
    if math.isnan(v) or math.isinf(v) or v <= 0.0:
        raise ValueError(f"{name} must be a positive finite price, got {value!r}")
    return v


def _require_aware_utc(name: str, value: Any) -> datetime:
    return aware_utc(value, name)


@dataclass(frozen=True)
class CloudState:
    """One EMA cloud layer at one bar (domain-facts §1)."""

    name: str  # "fast" (5/12), "pullback" (8/9), "trend" (20/21), "macro" (34/50), ...
    short_ema: float
    long_ema: float
    is_bullish: bool  # short EMA >= long EMA
    thickness: float  # |short - long| / price
    price_above: bool
    price_inside: bool
    price_below: bool

    @property
    def upper(self) -> float:
        return max(self.short_ema, self.long_ema)

    @property
    def lower(self) -> float:
        return min(self.short_ema, self.long_ema)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Any, *, field_name: str = "cloud_state") -> CloudState:
        """Strict inverse of ``to_dict``: ValueError naming ``field_name.<key>`` for a record that
        is not a mapping, lacks a key, or holds a value of the wrong type (numbers must be finite;
        flags must be JSON booleans). Unknown extra keys are ignored (forward compatibility)."""
        if not isinstance(d, Mapping):
            raise ValueError(f"{field_name}: must be a mapping of cloud fields, "
                             f"got {type(d).__name__}")
        missing = [k for k in _CLOUD_FIELDS if k not in d]
        if missing:
            raise ValueError(f"{field_name}: missing key(s) {', '.join(missing)}")
        name = d["name"]
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"{field_name}.name: must be a non-empty string, got {name!r}")
        values: dict[str, Any] = {"name": name}
        for key in ("short_ema", "long_ema", "thickness"):
            values[key] = finite(d[key], f"{field_name}.{key}", nonneg=key == "thickness")
        for key in ("is_bullish", "price_above", "price_inside", "price_below"):
            v = d[key]
            if not isinstance(v, bool):
                raise ValueError(f"{field_name}.{key}: must be a boolean, got {v!r}")
            values[key] = v
        return cls(**values)


_CLOUD_FIELDS: tuple[str, ...] = (
    "name", "short_ema", "long_ema", "is_bullish", "thickness",
    "price_above", "price_inside", "price_below",
)


@dataclass(frozen=True)
class TradeSignal:
    """A signal from the EMA-cloud engine (PRD-134 contract, domain-facts §1).

    Construction validates every field and raises ValueError naming the field and the value.
    """

    signal_type: SignalType
    direction: Direction
    ticker: str
    timeframe: str
    conviction: int
    entry_price: float
    stop_loss: float
    target_price: float | None
    cloud_states: list[CloudState]
    timestamp: datetime
    metadata: dict[str, Any] = field(default_factory=dict)
    signal_id: str = ""  # stable id; derived from ticker/timeframe/type/time when empty

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        try:
            set_(self, "signal_type", SignalType(self.signal_type))
        except (ValueError, TypeError):
            raise ValueError(f"signal_type: unknown signal type {self.signal_type!r}") from None
        if self.direction not in ("long", "short"):
            raise ValueError(f"direction must be 'long' or 'short', got {self.direction!r}")
        if not isinstance(self.ticker, str) or not self.ticker.strip():
            raise ValueError(f"ticker must be a non-empty string, got {self.ticker!r}")
        set_(self, "ticker", self.ticker.strip().upper())
        if self.timeframe not in TIMEFRAMES:
            raise ValueError(f"timeframe must be one of {TIMEFRAMES}, got {self.timeframe!r}")
        if isinstance(self.conviction, bool) or not isinstance(self.conviction, int):
            if isinstance(self.conviction, float) and self.conviction.is_integer():
                set_(self, "conviction", int(self.conviction))
            else:
                raise ValueError(f"conviction must be an integer 0-100, got {self.conviction!r}")
        if not 0 <= self.conviction <= 100:
            raise ValueError(f"conviction must be within 0-100, got {self.conviction!r}")
        entry = _require_price("entry_price", self.entry_price)
        stop = _require_price("stop_loss", self.stop_loss)
        set_(self, "entry_price", entry)
        set_(self, "stop_loss", stop)
        if self.direction == "long" and not stop < entry:
            raise ValueError(
                f"stop_loss {stop} must be below entry_price {entry} for a long signal"
            )
        if self.direction == "short" and not stop > entry:
            raise ValueError(
                f"stop_loss {stop} must be above entry_price {entry} for a short signal"
            )
        if self.target_price is not None:
            target = _require_price("target_price", self.target_price)
            set_(self, "target_price", target)
            if self.direction == "long" and not target > entry:
                raise ValueError(
                    f"target_price {target} must be above entry_price {entry} for a long signal"
                )
            if self.direction == "short" and not target < entry:
                raise ValueError(
                    f"target_price {target} must be below entry_price {entry} for a short signal"
                )
        if not isinstance(self.cloud_states, list) or not all(
            isinstance(c, CloudState) for c in self.cloud_states
        ):
            raise ValueError("cloud_states must be a list of CloudState")
        set_(self, "timestamp", _require_aware_utc("timestamp", self.timestamp))
        if self.metadata is None:
            set_(self, "metadata", {})
        if not isinstance(self.metadata, dict):
            raise ValueError(f"metadata must be a dict, got {type(self.metadata).__name__}")
        if self.signal_id is None:
            set_(self, "signal_id", "")
        if not isinstance(self.signal_id, str):
            raise ValueError(f"signal_id must be a string, got {self.signal_id!r}")
        if not self.signal_id:
            set_(
                self,
                "signal_id",
                f"{self.ticker}-{self.timeframe}-{self.signal_type.value}-"
                f"{self.timestamp:%Y%m%dT%H%M%SZ}",
            )

    @property
    def trade_type(self) -> TradeType:
        return TIMEFRAME_TRADE_TYPE[self.timeframe]

    @property
    def stop_distance(self) -> float:
        """|entry - stop| in price units of the signal ticker."""
        return abs(self.entry_price - self.stop_loss)

    def cloud(self, name: str) -> CloudState | None:
        for c in self.cloud_states:
            if c.name == name:
                return c
        return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "signal_id": self.signal_id,
            "signal_type": self.signal_type.value,
            "direction": self.direction,
            "ticker": self.ticker,
            "timeframe": self.timeframe,
            "conviction": self.conviction,
            "entry_price": self.entry_price,
            "stop_loss": self.stop_loss,
            "target_price": self.target_price,
            "cloud_states": [c.to_dict() for c in self.cloud_states],
            "timestamp": self.timestamp.isoformat(),
            "metadata": dict(self.metadata),
        }

    @classmethod
    def from_dict(cls, d: Any) -> TradeSignal:
        """Inverse of to_dict; raises ValueError (never TypeError/KeyError/AttributeError) naming
        the missing or bad field: a record that is not a mapping, a missing required key, metadata
        that is not a mapping, cloud_states that is not a list of well-formed cloud records, an
        unparsable or naive timestamp, and every check of the constructor."""
        if not isinstance(d, Mapping):
            raise ValueError(f"signal record: must be a mapping (JSON object), got {type(d).__name__}")
        required = (
            "signal_type",
            "direction",
            "ticker",
            "timeframe",
            "conviction",
            "entry_price",
            "stop_loss",
            "timestamp",
        )
        for key in required:
            if key not in d:
                raise ValueError(f"{key}: missing from signal record")
        ts = d["timestamp"]
        if isinstance(ts, str):
            try:
                ts = datetime.fromisoformat(ts)
            except ValueError:
                raise ValueError(f"timestamp: not an ISO-8601 time: {ts!r}") from None
        elif not isinstance(ts, datetime):
            raise ValueError(f"timestamp: must be an ISO-8601 string, got {type(ts).__name__} {ts!r}")
        raw_clouds = d.get("cloud_states")
        if raw_clouds is None:
            raw_clouds = []
        if not isinstance(raw_clouds, (list, tuple)):
            raise ValueError(f"cloud_states: must be a list of cloud states, "
                             f"got {type(raw_clouds).__name__}")
        clouds = [
            c if isinstance(c, CloudState) else CloudState.from_dict(c, field_name=f"cloud_states[{i}]")
            for i, c in enumerate(raw_clouds)
        ]
        metadata = d.get("metadata")
        if metadata is None:
            metadata = {}
        if not isinstance(metadata, Mapping):
            raise ValueError(f"metadata: must be a mapping (JSON object), got {type(metadata).__name__}")
        signal_id = d.get("signal_id")
        if signal_id is not None and not isinstance(signal_id, str):
            raise ValueError(f"signal_id: must be a string, got {signal_id!r}")
        try:
            return cls(
                signal_type=d["signal_type"],
                direction=d["direction"],
                ticker=d["ticker"],
                timeframe=d["timeframe"],
                conviction=d["conviction"],
                entry_price=d["entry_price"],
                stop_loss=d["stop_loss"],
                target_price=d.get("target_price"),
                cloud_states=clouds,
                timestamp=ts,
                metadata=dict(metadata),
                signal_id=signal_id or "",
            )
        except OverflowError as e:  # e.g. year 1 with a positive UTC offset
            raise ValueError(f"timestamp: out of range: {e}") from None


@dataclass
class Position:
    """An open position (seed fields; extras with defaults)."""

    ticker: str
    direction: Direction
    entry_price: float
    current_price: float
    shares: int
    stop_loss: float
    target_price: float | None
    entry_time: datetime
    signal_id: str
    trade_type: TradeType
    unrealized_pnl: float | None = None  # computed from prices when not given
    instrument_type: Literal["stock", "option", "leveraged_etf"] = "stock"
    leverage: float = 1.0  # signed: negative for inverse ETFs
    underlying: str | None = None  # the signal ticker; defaults to ticker
    sector: str | None = None
    multiplier: float = 1.0  # 100 for equity options
    delta: float | None = None  # options: per-contract delta (signed)
    underlying_price: float | None = None  # price of `underlying` (for exposure)
    # the stop when the position was opened (its initial risk, for "add to a winner"); defaults to
    # stop_loss at construction, so a later trailed stop_loss does not change it
    initial_stop_loss: float | None = None

    def __post_init__(self) -> None:
        if self.direction not in ("long", "short"):
            raise ValueError(f"direction must be 'long' or 'short', got {self.direction!r}")
        if isinstance(self.shares, bool) or not isinstance(self.shares, int) or self.shares < 0:
            raise ValueError(f"shares must be a non-negative integer, got {self.shares!r}")
        _require_price("entry_price", self.entry_price)
        self._check_mark(self.current_price)
        if self.underlying is None:
            self.underlying = self.ticker
        if self.initial_stop_loss is None:
            self.initial_stop_loss = self.stop_loss
        if self.unrealized_pnl is None:
            self.unrealized_pnl = self.compute_unrealized_pnl()

    @property
    def initial_risk_per_share(self) -> float | None:
        """|entry_price - initial_stop_loss| per share/unit in the position's own prices; None when
        it cannot be measured: options (their stop is a level of the underlying, their entry a
        premium), a missing/non-finite stop, or a stop not on the losing side of the entry."""
        if self.instrument_type == "option":
            return None
        stop = self.initial_stop_loss
        if isinstance(stop, bool) or not isinstance(stop, (int, float)) or not math.isfinite(stop):
            return None
        risk = (self.entry_price - float(stop)) * self.sign
        return risk if risk > 0 else None

    def r_multiple(self) -> float | None:
        """Unrealized profit per share in units of the initial risk:
        ``sign x (current_price - entry_price) / |entry_price - initial_stop_loss|`` (+1.0 = one R
        in profit, -1.0 = at the initial stop). None when the initial risk cannot be measured."""
        risk = self.initial_risk_per_share
        if risk is None:
            return None
        return (self.current_price - self.entry_price) * self.sign / risk

    @property
    def sign(self) -> int:
        return 1 if self.direction == "long" else -1

    @property
    def market_value(self) -> float:
        """Unsigned notional at the current price."""
        return self.current_price * self.shares * self.multiplier

    def compute_unrealized_pnl(self) -> float:
        return (self.current_price - self.entry_price) * self.shares * self.multiplier * self.sign

    def _check_mark(self, price: float) -> float:
        # an option can be worth nothing (expiring out of the money); anything else must be > 0
        if self.instrument_type == "option" and isinstance(price, (int, float)) and not isinstance(price, bool) \
                and price == 0:
            return 0.0
        return _require_price("current_price", price)

    def mark(self, price: float) -> None:
        self.current_price = self._check_mark(price)
        self.unrealized_pnl = self.compute_unrealized_pnl()


@dataclass
class PendingOrder:
    """An entry order sent but not (fully) filled; counts toward duplicates, exposure, buying power."""

    ticker: str
    direction: Direction
    shares: int
    price: float
    signal_id: str = ""
    underlying: str | None = None
    sector: str | None = None
    leverage: float = 1.0
    instrument_type: str = "stock"

    def __post_init__(self) -> None:
        if self.underlying is None:
            self.underlying = self.ticker


@dataclass
class AccountState:
    equity: float
    cash: float
    buying_power: float
    open_positions: list[Position]
    daily_pnl: float
    daily_trades: int
    is_pdt_compliant: bool = True  # informational only; nothing depends on it (domain-facts §5)
    starting_equity: float | None = None  # equity at the session start; defaults to equity
    pending_orders: list[PendingOrder] = field(default_factory=list)
    # Return of the most recent closed trades on their position cost (pnl / cost), oldest first.
    # Informational only: the kill switch does NOT read it (see recent_trade_losses_vs_equity).
    recent_trade_pnl_pcts: list[float] = field(default_factory=list)
    # Kill switch trigger 5 ("consecutive_losses"): for each of the most recent closed trades,
    # oldest first, its loss as a fraction of the account equity before the trade's P&L —
    # ``kill_switch.trade_loss_vs_equity(pnl, equity_before)``: 0.035 = lost 3.5 % of equity,
    # 0.0 for a winner or a flat trade (never negative).
    recent_trade_losses_vs_equity: list[float] = field(default_factory=list)
    as_of: datetime | None = None  # when this snapshot was taken (engine time)
    last_broker_contact: datetime | None = None  # kill switch trigger 3

    def __post_init__(self) -> None:
        for name in ("equity", "cash", "buying_power", "daily_pnl"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or math.isnan(v):
                raise ValueError(f"{name} must be a number, got {v!r}")
        if self.starting_equity is None:
            self.starting_equity = self.equity
        losses = self.recent_trade_losses_vs_equity
        if losses is None:
            losses = []
        if isinstance(losses, (str, bytes)) or not hasattr(losses, "__iter__"):
            raise ValueError(f"recent_trade_losses_vs_equity must be a list of fractions, got {losses!r}")
        losses = list(losses)
        for v in losses:
            if isinstance(v, bool) or not isinstance(v, (int, float)) or math.isnan(v) or v < 0:
                raise ValueError(
                    f"recent_trade_losses_vs_equity: each entry must be a loss fraction >= 0 "
                    f"(0.0 for a winner), got {v!r}"
                )
        self.recent_trade_losses_vs_equity = losses


@dataclass
class ExecutorConfig:
    # ── Instrument Mode ──────────────────────────────────
    instrument_mode: InstrumentMode = InstrumentMode.BOTH

    # Risk parameters (Aggressive)
    max_risk_per_trade: float = 0.05
    max_concurrent_positions: int = 10
    daily_loss_limit: float = 0.10
    max_single_stock_exposure: float = 0.15
    max_sector_exposure: float = 0.30
    min_account_equity: float = 25_000.0
    # Options (not in the seed): an option counts against the single-stock and sector caps by
    # its premium (the capital at risk); its delta-equivalent exposure in the underlying
    # (|delta| x 100 x price per contract, all options on that underlying) has its own cap.
    max_option_delta_exposure: float = 0.50

    # Execution
    primary_broker: str = "alpaca"
    fallback_broker: str = "ibkr"
    slippage_buffer: float = 0.001
    default_time_in_force: str = "day"

    # Entry
    high_conviction_order_type: str = "market"
    medium_conviction_order_type: str = "limit"
    scale_in_enabled: bool = True
    scale_in_initial_pct: float = 0.5
    limit_entry_expire_bars: int = 5  # extra: a limit-at-cloud entry unfilled after N 1m bars is cancelled

    # Exit
    reward_to_risk_target: float = 2.0
    time_stop_minutes: int = 120
    eod_close_time: str = "15:55"
    trailing_stop_cloud: str = "pullback"

    # ── Leveraged ETF Settings ───────────────────────────
    max_etf_hold_days_3x: int = 5
    max_etf_hold_days_2x: int = 10
    prefer_3x_for_day_trades: bool = True
    min_etf_daily_volume: float = 10_000_000
    etf_sector_mapping: bool = True

    # Kill switch
    consecutive_loss_threshold: int = 3
    consecutive_loss_pct: float = 0.03
    api_timeout_seconds: int = 60

    # ── Extras (not in the seed) ─────────────────────────
    calendar: str = "XNYS"  # exchange calendar for market hours / early closes
    eod_minutes_before_close: int = 5  # 15:55 on a 16:00 close, 12:55 on a 13:00 early close
    # Runaway guard: entries filled or pending per session (RiskGate "max_daily_trades"), and order
    # submissions per minute for every strategy in the node (Nautilus RiskEngine submit throttle).
    max_daily_trades: int = 40
    max_orders_per_minute: int = 30
    # Signal freshness on the engine clock (RiskGate.validate(..., now=...)): a signal older than
    # max_signal_age_seconds is "stale_signal"; one stamped more than max_signal_clock_skew_seconds
    # after now is "future_signal".
    max_signal_age_seconds: float = 120.0
    max_signal_clock_skew_seconds: float = 5.0
    # BOTH mode, day trades (5m/10m): conviction >= this -> the (3x) leveraged ETF when one is
    # routable, else the stock; below it -> the stock (seed: "Both: 3x ETF or stock
    # (conviction-based)").
    both_mode_etf_min_conviction: int = 75
    # Seed risk check 3 "unless adding to winner": a same-direction entry on an underlying already
    # held passes the duplicate check when every open position there is at least this many R
    # (initial risks |entry - stop|) in profit and no same-direction entry is pending.
    # float("inf") disables adding.
    add_to_winner_min_r: float = 1.0

    def __post_init__(self) -> None:
        """Validated by ``_ExecutorConfigSchema`` (msgspec: types, ranges, finiteness, choices);
        a bad value raises ValueError naming the field, the value and what is allowed."""
        values = {f: getattr(self, f) for f in self.__dataclass_fields__}
        mode = values["instrument_mode"]
        values["instrument_mode"] = mode.value if isinstance(mode, InstrumentMode) else mode
        try:
            msgspec.convert(values, _ExecutorConfigSchema)
        except msgspec.ValidationError as e:
            text = str(e)
            name = text.rsplit("at `$.", 1)[-1].rstrip("`") if "at `$." in text else "?"
            got = values.get(name, "?")
            raise ValueError(f"{name} = {got!r}: {text.split(' - at ', 1)[0]}") from None
        self.instrument_mode = InstrumentMode(values["instrument_mode"])
        parse_hhmm(self.eod_close_time, "eod_close_time")


def _build_config_schema() -> type:
    """The schema of ExecutorConfig: one field per setting with its type and range."""
    Fraction = Annotated[float, Meta(gt=0, le=1)]
    PositiveInt = Annotated[int, Meta(gt=0)]
    Seconds = Annotated[float, Meta(gt=0, le=86_400 * 365)]
    fields = {
        "instrument_mode": Literal[tuple(m.value for m in InstrumentMode)],
        "max_risk_per_trade": Fraction, "max_concurrent_positions": PositiveInt,
        "daily_loss_limit": Fraction, "max_single_stock_exposure": Fraction,
        "max_sector_exposure": Fraction, "min_account_equity": Annotated[float, Meta(ge=0, le=1e12)],
        "max_option_delta_exposure": Fraction,
        "primary_broker": Literal["alpaca", "ibkr", "none"], "fallback_broker": Literal["alpaca", "ibkr", "none"],
        "slippage_buffer": Annotated[float, Meta(ge=0, lt=0.1)],
        "default_time_in_force": Literal["day", "gtc", "ioc"],
        "high_conviction_order_type": Literal["market", "limit"],
        "medium_conviction_order_type": Literal["market", "limit"],
        "scale_in_enabled": bool, "scale_in_initial_pct": Fraction, "limit_entry_expire_bars": PositiveInt,
        "reward_to_risk_target": Annotated[float, Meta(gt=0, le=100)], "time_stop_minutes": PositiveInt,
        "eod_close_time": Annotated[str, Meta(pattern=r"^\d{2}:\d{2}$")],
        "trailing_stop_cloud": Literal["fast", "pullback", "trend", "macro"],
        "max_etf_hold_days_3x": PositiveInt, "max_etf_hold_days_2x": PositiveInt,
        "prefer_3x_for_day_trades": bool, "min_etf_daily_volume": Annotated[float, Meta(ge=0, le=1e15)],
        "etf_sector_mapping": bool,
        "consecutive_loss_threshold": PositiveInt, "consecutive_loss_pct": Fraction,
        "api_timeout_seconds": PositiveInt, "calendar": Annotated[str, Meta(min_length=1)],
        "eod_minutes_before_close": Annotated[int, Meta(ge=0, le=600)],
        "max_daily_trades": PositiveInt, "max_orders_per_minute": PositiveInt,
        "max_signal_age_seconds": Seconds, "max_signal_clock_skew_seconds": Seconds,
        "both_mode_etf_min_conviction": Annotated[int, Meta(ge=0, le=100)],
        "add_to_winner_min_r": Annotated[float, Meta(gt=0)],  # inf allowed: disables adds
    }
    missing = set(ExecutorConfig.__dataclass_fields__) ^ set(fields)
    if missing:
        raise RuntimeError(f"ExecutorConfig and its schema disagree on {sorted(missing)}")
    return msgspec.defstruct("ExecutorConfigSchema", list(fields.items()), forbid_unknown_fields=True)


@dataclass
class RiskDecision:
    approved: bool
    reason: str | None  # "<code>: <explanation with the numbers>" when rejected
    adjustments: dict | None  # e.g. {"max_shares": 120, "why": "..."} when a cap shrinks size
    details: dict[str, Any] = field(default_factory=dict)  # the numbers every check used

    @property
    def code(self) -> str | None:
        if self.reason is None:
            return None
        return self.reason.split(":", 1)[0]


_ExecutorConfigSchema = _build_config_schema()


RISK_REASON_CODES = (
    "kill_switch",
    "daily_loss_limit",
    "max_positions",
    "max_daily_trades",
    "duplicate",
    "conflict",
    "single_stock_exposure",
    "sector_exposure",
    "option_delta_exposure",
    "market_closed",
    "eod_window",
    "after_cutoff",
    "stale_signal",
    "future_signal",
    "min_equity",
    "buying_power",
    "invalid_signal",
    "low_conviction",
)


@dataclass
class PositionSize:
    shares: int
    notional: float
    risk_amount: float
    conviction_multiplier: float
    capped_by: str | None = None  # "single_stock_exposure", "buying_power", ... or None
    raw_shares: float = 0.0  # before conviction multiplier and caps
    stop_distance: float = 0.0  # per share, in the traded instrument's price units


@dataclass
class InstrumentDecision:
    instrument_type: Literal["stock", "option", "leveraged_etf"]
    ticker: str
    original_signal_ticker: str
    leverage: float
    is_inverse: bool
    etf_metadata: dict | None
    tradeable: bool = True  # False when no instrument fits (e.g. short signal, no inverse ETF)
    reason: str | None = None  # why it was routed so / not routed


@dataclass
class ETFSelection:
    ticker: str
    leverage: float
    tracks: str
    avg_daily_volume: float
    is_inverse: bool
