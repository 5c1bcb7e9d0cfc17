"""The executor's functional core (see ../shared/docs/core-contract.md): pure, deterministic.

No NautilusTrader imports, no I/O, no wall clock: the Nautilus strategy in
``strategies/executor_strategy.py`` is the imperative shell around these pieces.
"""

from strategies.trade_executor.calendar import ET, MarketCalendar, new_york_date
from strategies.trade_executor.etf_catalog import (
    ETF_TICKERS,
    INDEX_KEYS,
    LEVERAGED_ETF_CATALOG,
    SECTOR_ETF_KEYS,
    TICKER_SECTOR,
    etf_keys_for,
    sector_of,
)
from strategies.trade_executor.etf_sizer import LeveragedETFSizer, max_hold_days_for
from strategies.trade_executor.exit_monitor import (
    BAR_COLUMNS,
    EXIT_PRIORITY,
    ExitDecision,
    ExitMonitor,
)
from strategies.trade_executor.instrument_router import MODE_TABLE, InstrumentRouter
from strategies.trade_executor.kill_switch import KILL_SWITCH_CODES, KillSwitch
from strategies.trade_executor.models import (
    HIGH_CONVICTION,
    MEDIUM_CONVICTION,
    RISK_REASON_CODES,
    TIMEFRAME_TRADE_TYPE,
    TIMEFRAMES,
    AccountState,
    CloudState,
    Direction,
    ETFSelection,
    ExecutorConfig,
    InstrumentDecision,
    InstrumentMode,
    PendingOrder,
    Position,
    PositionSize,
    RiskDecision,
    SignalType,
    TradeSignal,
    TradeType,
)
from strategies.trade_executor.position_manager import (
    CloudEdges,
    EntryPlan,
    EntryPlanner,
    ManagedPosition,
    PositionManager,
    pullback_verdict,
)
from strategies.trade_executor.risk_gate import (
    RiskGate,
    pending_exposure,
    pending_notional,
    underlying_exposure,
)
from strategies.trade_executor.sizing import PositionSizer, conviction_multiplier

__all__ = [
    "CloudEdges",
    "EntryPlan",
    "EntryPlanner",
    "ManagedPosition",
    "PositionManager",
    "pullback_verdict",
    # data
    "AccountState",
    "CloudState",
    "Direction",
    "ETFSelection",
    "ExecutorConfig",
    "InstrumentDecision",
    "InstrumentMode",
    "PendingOrder",
    "Position",
    "PositionSize",
    "RiskDecision",
    "SignalType",
    "TradeSignal",
    "TradeType",
    "ExitDecision",
    # constants
    "BAR_COLUMNS",
    "ETF_TICKERS",
    "EXIT_PRIORITY",
    "HIGH_CONVICTION",
    "INDEX_KEYS",
    "KILL_SWITCH_CODES",
    "LEVERAGED_ETF_CATALOG",
    "MEDIUM_CONVICTION",
    "MODE_TABLE",
    "RISK_REASON_CODES",
    "SECTOR_ETF_KEYS",
    "TICKER_SECTOR",
    "TIMEFRAMES",
    "TIMEFRAME_TRADE_TYPE",
    "ET",
    # behaviour
    "ExitMonitor",
    "InstrumentRouter",
    "KillSwitch",
    "LeveragedETFSizer",
    "MarketCalendar",
    "PositionSizer",
    "RiskGate",
    # helpers
    "conviction_multiplier",
    "etf_keys_for",
    "max_hold_days_for",
    "new_york_date",
    "pending_exposure",
    "pending_notional",
    "sector_of",
    "underlying_exposure",
]
