"""Live (paper) trading: the same SignalActor and ExecutorStrategy as the backtests, in a
NautilusTrader TradingNode with the Alpaca data and execution clients.

Only the clients differ from a backtest: bars come from Alpaca's market-data stream, orders go to
Alpaca (paper by default), Nautilus reconciles orders and positions already at the broker on
start-up, and the journal and the kill-switch latch live in the configured database
(``DATABASE_URL``), under run id ``live`` and the live executor's own control scope.

Keys come from the environment (``ALPACA_API_KEY`` / ``ALPACA_API_SECRET``) and are never logged.
A real-money account is refused unless ``allow_live`` is set (and ``paper=False``): any trading
host but Alpaca's paper host and loopback test servers counts as real money, and before anything
is built the account endpoint of the URL actually used is asked (``preflight_account``): a
non-paper account number without the opt-in, a blocked / non-ACTIVE account, refused keys or an
unreachable broker stop the start with a one-line reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from nautilus_trader.config import (
    LiveExecEngineConfig,
    LoggingConfig,
    TradingNodeConfig,
)
from nautilus_trader.live.node import TradingNode
from nautilus_trader.model.identifiers import InstrumentId, TraderId

from strategies.trade_executor import ExecutorConfig, InstrumentRouter

LIVE_VENUE = "ALPACA"


@dataclass
class LiveSpec:
    symbols: list[str]
    mode: str = "stock"
    executor: dict[str, Any] = field(default_factory=dict)
    db_url: str | None = None  # None: DATABASE_URL or data/executor.db
    api_key: str | None = None  # None: environment
    api_secret: str | None = None
    paper: bool = True
    allow_live: bool = False
    trading_url: str | None = None  # overrides (e.g. the local fake server)
    trading_stream_url: str | None = None
    data_url: str | None = None
    data_stream_url: str | None = None
    feed: str = "iex"
    trader_id: str = "EXECUTOR-001"
    log_level: str = "INFO"
    control_poll_seconds: float = 5.0
    bar_settle_ms: int = 1500  # a minute's decisions wait this long after its first bar
    alert_webhook_url: str | None = None
    buying_power_multiplier: float = 2.0
    reconciliation_lookback_mins: int | None = 1440
    bar_build_delay_s: int = 15
    calendar: str = "XNYS"  # trading hours; "24/7" e.g. for demos against the local fake broker
    stops_at_venue: bool = True
    request_timeout_s: float = 10.0  # per REST call, also the start-up account check's limit
    timeout_connection: float = 30.0  # Nautilus' connect limit (the CLI exits 2 when it passes)
    # load enough history at start for every timeframe's clouds (SignalActor warm-up: the
    # broker's historical bars), so the first signal can come on the first live bar
    warmup: bool = True
    # record the session (bars of every followed instrument, the signals) here for
    # `trade-executor divergence` (strategies.session_recorder); None: no recording
    record_dir: str | None = None
    # option chains of the symbols (contracts around the price, quotes of the ATM strikes from the
    # options feed; adapters.alpaca.option_chain): None = when the mode trades options (options,
    # both); True / False = always / never (True lets a later switch to options need no restart)
    option_chains: bool | None = None
    option_feed: str = "indicative"  # "opra" with Alpaca's OPRA subscription


@dataclass
class LiveNode:
    node: TradingNode
    strategy: Any
    actor: Any
    journal: Any
    control: Any

    def stop(self) -> None:
        try:
            self.node.stop()
        finally:
            self.node.dispose()
            self.journal.close()
            self.control.close()


def build_live_node(spec: LiveSpec, loop: Any = None) -> LiveNode:
    """A built (not yet running) TradingNode: call ``.node.run()`` (blocking) or
    ``await .node.run_async()``."""
    from adapters.alpaca.config import (
        AlpacaDataClientConfig,
        AlpacaExecClientConfig,
        AlpacaInstrumentProviderConfig,
    )
    from adapters.alpaca.factories import AlpacaLiveDataClientFactory, AlpacaLiveExecClientFactory
    from strategies.engine_config import data_engine_config, live_logging_config
    from strategies.execution_log import TeeSink
    from strategies.story_log import StorySink
    from strategies.executor_strategy import ExecutorStrategy, ExecutorStrategyConfig
    from strategies.journal import ControlStore, JournalSink, database_url, upgrade
    from strategies.order_recorder import OrderRecorder
    from strategies.risk_control import install_risk_controls, risk_engine_config
    from strategies.signal_actor import SignalActor, SignalActorConfig

    symbols = [s.strip().upper() for s in spec.symbols if s.strip()]
    if not symbols:
        raise ValueError("symbols: none given (e.g. --symbols QQQ,SPY)")
    executor = {"calendar": spec.calendar, **spec.executor}
    xcfg = ExecutorConfig(**{"instrument_mode": spec.mode, **executor})  # clear errors first
    broker_account = preflight_account(spec)

    url = database_url(spec.db_url)
    upgrade(url)
    journal = JournalSink(url)  # run id "live"
    control = ControlStore(url)  # the live executor's own scope
    stored_mode = control.instrument_mode()
    mode = spec.mode
    if stored_mode and "instrument_mode" not in executor and stored_mode != mode:
        # the user's choice in executor_control (dashboard / CLI) wins over the default
        mode = stored_mode

    # every leveraged fund the router can pick for these symbols (long/short x scalp/day/swing),
    # whatever the mode now: a mode change (executor_control) needs no restart, and the executor
    # follows their minute bars for entries, resting stops, exits and the max hold
    funds = [f for f in InstrumentRouter.from_config(xcfg).reachable_funds(symbols, mode="leveraged_etf")
             if f not in symbols]
    traded = symbols + funds
    # option contracts the journal still holds open (a restart): reconciled from the broker, their
    # position and orders must belong to the executor (not EXTERNAL), or its closing fill cannot
    # reduce them in Nautilus' netting positions
    held_options = sorted({t.ticker for t in journal.get_open_trades() if t.instrument_type == "option"})
    ids = frozenset(InstrumentId.from_str(f"{s}.{LIVE_VENUE}") for s in traded)
    provider = AlpacaInstrumentProviderConfig(load_ids=ids)
    config = TradingNodeConfig(
        trader_id=TraderId(spec.trader_id),
        # INFO: the executor's own story; the engine's routine lines only with DEBUG
        logging=live_logging_config(spec.log_level, spec.trader_id),
        # Alpaca's minute bar arrives a few seconds after its minute: 10m/1h buckets wait 15 s
        data_engine=data_engine_config(build_delay_us=spec.bar_build_delay_s * 1_000_000, live=True),
        risk_engine=risk_engine_config(xcfg.max_orders_per_minute, live=True),
        exec_engine=LiveExecEngineConfig(reconciliation=True,
                                         reconciliation_lookback_mins=spec.reconciliation_lookback_mins),
        data_clients={LIVE_VENUE: AlpacaDataClientConfig(
            api_key=spec.api_key, api_secret=spec.api_secret, paper=spec.paper, trading_url=spec.trading_url,
            data_url=spec.data_url, data_stream_url=spec.data_stream_url, feed=spec.feed,
            option_underlyings=tuple(symbols) if (spec.option_chains if spec.option_chains is not None
                                                  else mode in ("options", "both")) else None,
            option_feed=spec.option_feed,
            instrument_provider=provider)},
        exec_clients={LIVE_VENUE: AlpacaExecClientConfig(
            api_key=spec.api_key, api_secret=spec.api_secret, paper=spec.paper, trading_url=spec.trading_url,
            trading_stream_url=spec.trading_stream_url, allow_live=spec.allow_live,
            request_timeout_s=spec.request_timeout_s, instrument_provider=provider)},
        timeout_connection=spec.timeout_connection,
        timeout_reconciliation=30.0,
    )
    node = TradingNode(config=config, loop=loop)
    actor = SignalActor(SignalActorConfig(symbols=tuple(symbols), venue=LIVE_VENUE, regular_hours_only=True,
                                          calendar=xcfg.calendar, warmup=spec.warmup, announce_market=True,
                                          log_events=spec.log_level.upper() == "DEBUG",
                                          log_commands=spec.log_level.upper() == "DEBUG"))
    strategy = ExecutorStrategy(ExecutorStrategyConfig(
        executor={**executor, "instrument_mode": mode}, symbols=tuple(traded), venue=LIVE_VENUE,
        follow_control_mode=True,  # `trade-executor mode set` / the dashboard take effect within a poll
        seed_price_minutes=30,  # every followed fund priced from its recent bars before its first live one
        stops_at_venue=spec.stops_at_venue,
        option_premium_debited=False,  # the Alpaca adapter's balance is equity minus unrealised P&L
        # orders and positions reconciled from the broker in these instruments belong to the
        # executor (its resting stops after a restart); anything else stays external
        external_order_claims=[f"{s}.{LIVE_VENUE}" for s in traded + held_options],
        broker_name="alpaca", buying_power_multiplier=spec.buying_power_multiplier,
        control_poll_seconds=spec.control_poll_seconds, alert_webhook_url=spec.alert_webhook_url,
        # a minute's bars of several symbols arrive over a moment: decide that minute's exits
        # once they are in (or a signal of that minute arrives first)
        bar_settle_ms=spec.bar_settle_ms,
        # Nautilus' echo of every command and event: DEBUG only (strategies.story_log tells the story)
        log_events=spec.log_level.upper() == "DEBUG", log_commands=spec.log_level.upper() == "DEBUG",
    ), sink=TeeSink(journal, StorySink()), control=control)  # the journal + the story in the log
    node.trader.add_actor(actor)
    node.trader.add_actor(OrderRecorder(sink=journal))  # the order book: executor_orders / executor_fills
    from strategies.story_log import order_story_actor

    node.trader.add_actor(order_story_actor())  # the orders in the log's story (INFO)
    node.trader.add_strategy(strategy)
    if spec.record_dir:
        from strategies.session_recorder import SessionRecorder, SessionRecorderConfig

        equity = getattr(broker_account, "equity", None)
        node.trader.add_actor(SessionRecorder(SessionRecorderConfig(
            out_dir=spec.record_dir, symbols=tuple(traded), signal_symbols=tuple(symbols), venue=LIVE_VENUE,
            meta={"mode": mode, "executor": executor, "calendar": spec.calendar,
                  "starting_equity": float(equity) if equity is not None else None,
                  "buying_power_multiplier": spec.buying_power_multiplier},
            log_events=spec.log_level.upper() == "DEBUG", log_commands=spec.log_level.upper() == "DEBUG")))
    node.add_data_client_factory(LIVE_VENUE, AlpacaLiveDataClientFactory)
    node.add_exec_client_factory(LIVE_VENUE, AlpacaLiveExecClientFactory)
    node.build()
    install_risk_controls(node.kernel)
    return LiveNode(node=node, strategy=strategy, actor=actor, journal=journal, control=control)


def preflight_account(spec: LiveSpec) -> Any:
    """The real-money guard and the start-up account check, before anything is built or written.

    1. The URLs: any host but Alpaca's paper host and loopback test servers is live and needs
       ``allow_live`` AND ``paper=False`` (``--live-account --allow-live``).
    2. The broker's own answer (``GET /v2/account`` of the URL actually used): an account number
       that is not a paper ``PA...`` one needs the same opt-in; a blocked / trading_blocked /
       non-ACTIVE account, refused keys or an unreachable broker raise ``AlpacaAccountError``.

    Returns the broker's ``TradeAccount``. Raises ``AlpacaLiveTradingError`` /
    ``AlpacaAccountError`` / ``AlpacaCredentialsError`` with one-line messages (no secrets)."""
    from adapters.alpaca.common import AlpacaLiveTradingError, check_live_allowed, resolve_credentials, trading_urls
    from adapters.alpaca.http import fetch_account_checked

    live = check_live_allowed(paper=spec.paper, trading_url=spec.trading_url,
                              trading_stream_url=spec.trading_stream_url, allow_live=spec.allow_live)
    if live and spec.paper:
        raise AlpacaLiveTradingError(
            "The trading URL is not Alpaca's paper host nor a loopback test server, so it is treated as the "
            "LIVE account (REAL MONEY): allow_live=True needs paper=False as well.")
    key, secret = resolve_credentials(spec.api_key, spec.api_secret)
    rest, _ = trading_urls(spec.paper, spec.trading_url, spec.trading_stream_url)
    return fetch_account_checked(key, secret, rest, allow_live=spec.allow_live and not spec.paper,
                                 paper=spec.paper, timeout_s=spec.request_timeout_s)


__all__ = ["LIVE_VENUE", "LiveNode", "LiveSpec", "build_live_node", "preflight_account"]
