"""Alpaca live execution client for NautilusTrader.

Transport: alpaca-py's ``TradingClient`` (synchronous, run in the default executor; built by
``common.create_trading_client`` with a request timeout and without alpaca-py's blind retries)
and alpaca-py's ``TradingStream`` connection/auth primitives for ``trade_updates``, driven by our
own reconnecting loop inside the Nautilus event loop. Order bodies are sent as plain JSON with
decimal strings (exact prices), using Alpaca's field names.

Guarantees:

* **Idempotent submission.** The Nautilus ``ClientOrderId`` is Alpaca's ``client_order_id``.
  After a timeout / 5xx / connection error the client first asks
  ``GET /v2/orders:by_client_order_id``; only when Alpaca provably does not have the order is it
  sent again (bounded, exponential backoff; 429 honours ``Retry-After``; "client_order_id must be
  unique" means an earlier attempt landed and that order is adopted). An order whose fate cannot
  be determined is never resubmitted: it stays SUBMITTED until trade_updates or reconciliation
  tells. 403/422 (insufficient buying power, validation) → ``OrderRejected`` with Alpaca's
  message.
* **Fills exactly once.** ``trade_id`` = Alpaca ``execution_id``; fills are deduplicated by it
  and by (Alpaca order id, cumulative qty) across the stream, reconnect recovery
  (``/v2/account/activities/FILL``) and reconciliation. Commission = ``fill_commission``: the
  backtest's formula (``strategies.fees.fill_fees``) at the rates in force on the New York date
  of the fill's timestamp: equities SEC fee + FINRA TAF on sells, $0 on buys; options Alpaca's
  per-contract pass-throughs (ORF + OCC both sides, options TAF + SEC on proceeds on sells). Fill
  prices are rounded to the instrument's tick (the exact Alpaca price is in ``info``).
* **Reconnects.** A dropped trade_updates stream reconnects with exponential backoff + jitter;
  after every reconnect the recent orders and FILL activities are re-queried and the missed
  events generated (accepted / updated / filled / canceled / expired / rejected).
* **Replace.** ``modify_order`` → ``PATCH /v2/orders/{id}``: Alpaca creates a new order (new
  id); it is mapped to the same ``ClientOrderId`` and ``OrderUpdated`` (new venue order id) is
  emitted. The replacement's Alpaca ``client_order_id`` is ``<ClientOrderId>-R<n>`` so a restart
  maps every order of a replace chain back to the original.
* **Order lists.** Entry + OTO children on equities → Alpaca ``bracket`` (take-profit LIMIT +
  STOP/STOP_LIMIT) or ``oto``; lists without contingencies are sent order by order. Options:
  Alpaca takes only simple DAY orders, so contingent lists on options are rejected (use Nautilus
  emulation for exits).
* **Reconciliation.** ``generate_order_status_report(s)`` (open orders + closed ones in the
  lookback, replace chains folded into one report), ``generate_fill_reports`` (FILL activities),
  ``generate_position_status_reports`` (``/v2/positions``). Lookbacks use Alpaca's clock
  (``/v2/clock`` skew). trade_updates for orders Nautilus does not know yet are held until
  start-up reconciliation has run; orders placed outside Nautilus are handed to the engine as
  ``OrderStatusReport`` s.
* **Account.** MARGIN account in USD; balance = Alpaca equity − unrealized P&L of the open
  positions (Nautilus adds unrealized P&L itself); Alpaca's equity, cash, buying power, ... are
  in the AccountState ``info``. Refreshed on connect, after fills and on every heartbeat.
  ``pattern_day_trader`` / ``daytrade_count`` / ``daytrading_buying_power`` are never read.
* **Broker status.** ``BrokerStatus`` is published on ``BROKER_STATUS_TOPIC``: connected on
  stream (re)connect and after every REST call while the stream is up (the heartbeat refreshes
  the account every ``heartbeat_interval_s``), disconnected on stream drops, transient REST
  failures and client disconnect.

Keys are never logged (``common.mask``).
"""

from __future__ import annotations

import asyncio
import functools
import json
import random
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import requests
from nautilus_trader.cache.cache import Cache
from nautilus_trader.common.component import LiveClock, MessageBus
from nautilus_trader.common.enums import LogColor
from nautilus_trader.core.uuid import UUID4
from nautilus_trader.execution.messages import (
    BatchCancelOrders,
    CancelAllOrders,
    CancelOrder,
    GenerateFillReports,
    GenerateOrderStatusReport,
    GenerateOrderStatusReports,
    GeneratePositionStatusReports,
    ModifyOrder,
    QueryAccount,
    SubmitOrder,
    SubmitOrderList,
)
from nautilus_trader.execution.reports import (
    ExecutionMassStatus,
    FillReport,
    OrderStatusReport,
    PositionStatusReport,
)
from nautilus_trader.live.execution_client import LiveExecutionClient
from nautilus_trader.model.currencies import USD
from nautilus_trader.model.enums import (
    AccountType,
    ContingencyType,
    OmsType,
    OrderSide,
    OrderStatus,
    OrderType,
    PositionSide,
    TimeInForce,
    TriggerType,
)
from nautilus_trader.model.identifiers import AccountId, ClientId, ClientOrderId, InstrumentId, TradeId, VenueOrderId
from nautilus_trader.model.instruments import Instrument, OptionContract
from nautilus_trader.model.objects import AccountBalance, MarginBalance, Money, Price, Quantity
from nautilus_trader.model.orders import Order

from strategies.fees import fill_fees, trade_date_of
from strategies.risk_control import BROKER_STATUS_TOPIC, BrokerStatus

from .common import (
    ALPACA,
    ALPACA_VENUE,
    MAX_CLIENT_ORDER_ID_LEN,
    AlpacaRequestTimeout,
    check_live_allowed,
    create_trading_client,
    mask,
    resolve_credentials,
    trading_urls,
)
from .config import AlpacaExecClientConfig
from .parsing import (
    OPEN_ALPACA_STATUSES,
    ORDER_STATUS_FROM_ALPACA,
    ORDER_TYPE_FROM_ALPACA,
    ORDER_TYPE_TO_ALPACA,
    TIF_FROM_ALPACA,
    TIF_TO_ALPACA,
    dec,
    dt_to_ns,
    fmt_decimal,
    instrument_id,
    is_option_symbol,
    liquidity_side_for,
    order_side_from_alpaca,
    order_side_to_alpaca,
    position_side_from_qty,
    replacement_client_order_id,
    split_client_order_id,
    trade_id_from_activity,
)

with warnings.catch_warnings():  # alpaca-py's stream imports websockets.legacy (deprecated upstream)
    warnings.simplefilter("ignore", DeprecationWarning)
    from alpaca.common.exceptions import APIError
    from alpaca.trading.stream import TradingStream

_TRANSIENT = (AlpacaRequestTimeout, requests.RequestException)
_CLOSED_NAUTILUS = {OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.EXPIRED, OrderStatus.REJECTED,
                    OrderStatus.DENIED}
_NOT_ACCEPTED = {OrderStatus.INITIALIZED, OrderStatus.SUBMITTED, OrderStatus.DENIED, OrderStatus.EMULATED,
                 OrderStatus.RELEASED}


class _Rejected(Exception):
    """Alpaca refused the request (or it provably never reached Alpaca after all retries)."""


class _Unknown(Exception):
    """The request's outcome cannot be determined (Alpaca unreachable)."""


def _status(e: BaseException) -> int | None:
    return e.status_code if isinstance(e, APIError) else None


def _message(e: BaseException) -> str:
    if isinstance(e, APIError):
        try:
            return str(e.message)
        except Exception:  # noqa: BLE001 - body was not JSON
            return str(e)[:300]
    return f"{type(e).__name__}: {e}"


def _retry_after(e: BaseException) -> float | None:
    if isinstance(e, APIError) and e.response is not None:
        value = e.response.headers.get("Retry-After")
        if value:
            try:
                return max(0.0, float(value))
            except ValueError:
                return None
    return None


def _is_transient(e: BaseException) -> bool:
    status = _status(e)
    return isinstance(e, _TRANSIENT) or status == 429 or (status is not None and status >= 500)


def fill_commission(side: OrderSide, qty: Decimal, px: Decimal, ts_event: int,
                    instrument: Instrument | None, iid: InstrumentId | None = None) -> Decimal:
    """Commission of one Alpaca fill in USD (cents): ``strategies.fees.fill_fees`` — the same
    function as the backtest fee model — on the New York date of ``ts_event`` (the fill's time,
    epoch ns). Options (an ``OptionContract``, a multiplier other than 1, or an OCC symbol when the
    instrument is not loaded) pay Alpaca's per-contract schedule, everything else the equity one."""
    mult = instrument.multiplier.as_decimal() if instrument is not None else None
    option = (isinstance(instrument, OptionContract) or (mult is not None and mult != 1)
              or (instrument is None and iid is not None and is_option_symbol(iid.symbol.value)))
    fee = fill_fees("sell" if side == OrderSide.SELL else "buy", qty, px, trade_date_of(ts_event),
                    option=option, option_broker="alpaca",
                    multiplier=mult if option and mult is not None and mult != 1 else Decimal(100))
    return Decimal(str(fee)).quantize(Decimal("0.01"))


@dataclass
class _OrderState:
    """What this client knows about one Nautilus order (updated synchronously, unlike the cache
    whose order objects change only when the execution engine has processed our events)."""

    client_order_id: ClientOrderId
    strategy_id: Any
    instrument_id: InstrumentId
    side: OrderSide
    order_type: OrderType
    time_in_force: TimeInForce
    quantity: Decimal
    filled: Decimal = Decimal(0)
    venue_id: str | None = None
    old_venue_ids: set[str] = field(default_factory=set)
    accepted: bool = False
    closed: bool = False
    replace_count: int = 0
    replace_pending: bool = False  # a PATCH of ours is in flight (it maps the replacement itself)
    children: list[_OrderState] = field(default_factory=list)  # bracket / OTO legs (parent only)
    filled_by_venue: dict[str, Decimal] = field(default_factory=dict)  # fills applied per Alpaca id

    @classmethod
    def from_order(cls, order: Order) -> _OrderState:
        st = cls(
            client_order_id=order.client_order_id,
            strategy_id=order.strategy_id,
            instrument_id=order.instrument_id,
            side=order.side,
            order_type=order.order_type,
            time_in_force=order.time_in_force,
            quantity=order.quantity.as_decimal(),
            filled=order.filled_qty.as_decimal(),
        )
        if order.venue_order_id is not None:
            st.venue_id = order.venue_order_id.value
        st.accepted = order.status not in _NOT_ACCEPTED
        st.closed = order.status in _CLOSED_NAUTILUS
        if st.venue_id and st.filled > 0:
            st.filled_by_venue[st.venue_id] = st.filled
        return st


class AlpacaExecutionClient(LiveExecutionClient):
    """Nautilus execution client for Alpaca (US equities/ETFs and simple option orders).

    Parameters
    ----------
    loop, msgbus, cache, clock : Nautilus plumbing (from the factory).
    config : AlpacaExecClientConfig
    instrument_provider : AlpacaInstrumentProvider
    name : str, default "ALPACA" (the ClientId; the AccountId is ``<name>-<account_number>``).
    trading_client : optional pre-built alpaca-py TradingClient (tests).
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        config: AlpacaExecClientConfig,
        msgbus: MessageBus,
        cache: Cache,
        clock: LiveClock,
        instrument_provider,
        name: str | None = None,
        trading_client=None,
    ) -> None:
        self._live = check_live_allowed(config.paper, config.trading_url, config.trading_stream_url,
                                        config.allow_live)
        super().__init__(
            loop=loop,
            client_id=ClientId(name or ALPACA),
            venue=ALPACA_VENUE,
            oms_type=OmsType.NETTING,
            account_type=AccountType.MARGIN,
            base_currency=USD,
            instrument_provider=instrument_provider,
            msgbus=msgbus,
            cache=cache,
            clock=clock,
            config=config,
        )
        self._cfg = config
        self._key, self._secret = resolve_credentials(config.api_key, config.api_secret)
        self._rest_url, self._stream_url = trading_urls(config.paper, config.trading_url,
                                                        config.trading_stream_url)
        self._http = trading_client or create_trading_client(
            self._key, self._secret, paper=config.paper, trading_url=self._rest_url,
            timeout_s=config.request_timeout_s)

        # order tracking
        self._states: dict[ClientOrderId, _OrderState] = {}
        self._by_venue: dict[str, _OrderState] = {}
        self._seen_exec_ids: set[str] = set()
        # second dedupe key, independent of id formats: (Alpaca order id, its cumulative filled qty)
        self._seen_fill_keys: set[tuple[str, Decimal]] = set()
        self._order_json: dict[str, dict] = {}  # Alpaca order id → last JSON seen (chains, reports)

        # stream / lifecycle
        self._stream: TradingStream | None = None
        self._stream_task: asyncio.Task | None = None
        self._heartbeat_task: asyncio.Task | None = None
        self._account_refresh_task: asyncio.Task | None = None
        self._stream_connected = False
        self._stream_ready = asyncio.Event()
        self._stopping = False
        self._startup_done = False
        self._buffer: list[dict] = []
        self._deferred: list[dict] = []  # unknown-order events while one of our submissions is in flight
        self._inflight_submits = 0
        self._recover_lock = asyncio.Lock()
        self._disconnected_at: datetime | None = None
        self._clock_skew = timedelta(0)  # Alpaca server time - local time

        self._log.info(
            f"Alpaca {'LIVE (real money)' if self._live else 'paper'} trading at {self._rest_url}, "
            f"key={mask(self._key)}", LogColor.BLUE)

    # ------------------------------------------------------------------------------------------ #
    # Helpers
    # ------------------------------------------------------------------------------------------ #

    def _server_now(self) -> datetime:
        return datetime.now(timezone.utc) + self._clock_skew

    def _backoff(self, attempt: int, initial: float, maximum: float) -> float:
        base = min(maximum, initial * (2 ** max(0, attempt - 1)))
        return base * (0.75 + random.random() * 0.5)  # noqa: S311 - jitter, not crypto

    def _publish_status(self, connected: bool, detail: str) -> None:
        try:
            self._msgbus.publish(
                topic=BROKER_STATUS_TOPIC,
                msg=BrokerStatus(connected=connected, ts_ns=self._clock.timestamp_ns(),
                                 broker="alpaca", detail=detail),
            )
        except Exception as e:  # noqa: BLE001 - status publishing must never break trading
            self._log.warning(f"Cannot publish BrokerStatus: {e}")

    async def _get(self, path: str, params: Any = None) -> Any:
        """GET with bounded retries on transient errors (a GET is safe to repeat); honours
        429 Retry-After. 4xx answers are raised at once."""
        for attempt in range(1, self._cfg.max_retries + 2):
            try:
                return await self._rest("get", path, params)
            except Exception as e:  # noqa: BLE001
                if not _is_transient(e) or attempt > self._cfg.max_retries:
                    raise
                await asyncio.sleep(_retry_after(e) or self._backoff(
                    attempt, self._cfg.retry_initial_delay_s, self._cfg.retry_max_delay_s))
        raise AssertionError("unreachable")

    async def _rest(self, method: str, path: str, data: Any = None) -> Any:
        """One REST call on a worker thread. Publishes BrokerStatus: a transient failure
        (timeout, connection error, 5xx) reports disconnected; any answer from Alpaca (also 4xx)
        is contact."""
        fn = getattr(self._http, method)
        try:
            result = await self._loop.run_in_executor(None, functools.partial(fn, path, data))
        except Exception as e:
            status = _status(e)
            if isinstance(e, _TRANSIENT) or (status is not None and status >= 500):
                self._publish_status(False, f"REST {method.upper()} {path}: {_message(e)}")
            elif self._stream_connected:
                self._publish_status(True, f"REST {method.upper()} {path} -> {status}")
            raise
        if self._stream_connected:
            self._publish_status(True, f"REST {method.upper()} {path} ok")
        return result

    def _instrument(self, iid: InstrumentId) -> Instrument | None:
        return self._cache.instrument(iid)

    async def _ensure_instruments(self, symbols: set[str]) -> None:
        missing = [instrument_id(s) for s in symbols if self._cache.instrument(instrument_id(s)) is None]
        if not missing:
            return
        try:
            await self._instrument_provider.load_ids_async(missing)
        except Exception as e:  # noqa: BLE001
            self._log.error(f"Cannot load instruments {missing}: {e}")
        for iid in missing:
            inst = self._instrument_provider.find(iid)
            if inst is not None:
                self._cache.add_instrument(inst)

    def _make_qty(self, iid: InstrumentId, value: Any) -> Quantity:
        inst = self._instrument(iid)
        if inst is not None:
            return inst.make_qty(Decimal(str(value)))
        return Quantity.from_str(fmt_decimal(value))

    def _make_price(self, iid: InstrumentId, value: Any) -> Price | None:
        if value is None or value == "":
            return None
        inst = self._instrument(iid)
        if inst is not None:
            return inst.make_price(Decimal(str(value)))
        return Price.from_str(fmt_decimal(value))

    def _multiplier(self, iid: InstrumentId) -> Decimal:
        inst = self._instrument(iid)
        return inst.multiplier.as_decimal() if inst is not None else Decimal(1)

    def _ts(self, value: Any) -> int:
        try:
            ns = dt_to_ns(value)
        except Exception:  # noqa: BLE001
            ns = None
        return ns if ns is not None else self._clock.timestamp_ns()

    # ------------------------------------------------------------------------------------------ #
    # Connection
    # ------------------------------------------------------------------------------------------ #

    async def _connect(self) -> None:
        self._stopping = False
        try:  # first call: a clear message for bad credentials
            account = await self._get("/account")
        except APIError as e:
            if e.status_code in (401, 403):
                raise RuntimeError(f"Alpaca refused the API credentials (key {mask(self._key)}, "
                                   f"{self._rest_url}): {_message(e)}") from None
            raise
        await self._instrument_provider.initialize()
        for inst in self._instrument_provider.list_all():
            self._cache.add_instrument(inst)

        try:  # Alpaca's clock: lookback windows follow the broker's time (one attempt: optional)
            clock = await self._rest("get", "/clock")
            server_ns = dt_to_ns(clock.get("timestamp")) if isinstance(clock, dict) else None
            if server_ns:
                self._clock_skew = timedelta(microseconds=(server_ns - self._clock.timestamp_ns()) // 1_000)
        except Exception as e:  # noqa: BLE001 - optional; lookbacks fall back to the local clock
            self._log.warning(f"GET /v2/clock failed ({_message(e)}); using the local clock")

        self._set_account_id(AccountId(f"{self.id.value}-{account['account_number']}"))
        positions = await self._get("/positions")
        self._emit_account_state(account, positions)

        self._stream_ready.clear()
        self._stream_task = self._loop.create_task(self._run_stream(), name="alpaca-trade-updates")
        try:
            await asyncio.wait_for(self._stream_ready.wait(), timeout=max(5.0, self._cfg.request_timeout_s))
        except asyncio.TimeoutError:
            self._log.error("trade_updates stream not connected yet; retrying in the background")
        self._heartbeat_task = self._loop.create_task(self._heartbeat_loop(), name="alpaca-heartbeat")
        # Events for orders Nautilus does not know yet wait for start-up reconciliation (or at most
        # 30 s when reconciliation is disabled).
        self._loop.call_later(30.0, self._finish_startup)
        await self._await_account_registered()

    async def _disconnect(self) -> None:
        self._stopping = True
        for task in (self._heartbeat_task, self._stream_task, self._account_refresh_task):
            if task is not None and not task.done():
                task.cancel()
        for task in (self._heartbeat_task, self._stream_task):
            if task is not None:
                try:
                    await asyncio.wait_for(asyncio.shield(task), timeout=2.0)
                except (asyncio.CancelledError, asyncio.TimeoutError, Exception):  # noqa: BLE001
                    pass
        await self._close_stream()
        self._stream_connected = False
        self._publish_status(False, "alpaca execution client disconnected")

    # ------------------------------------------------------------------------------------------ #
    # Account
    # ------------------------------------------------------------------------------------------ #

    def _emit_account_state(self, account: dict, positions: list[dict] | None) -> None:
        """Nautilus MARGIN-account semantics: equity = balance + unrealized PnL. Alpaca's equity
        already contains the positions' market value, so the balance reported is
        ``equity - sum(unrealized_pl)`` (= cash + cost basis of the open positions). Alpaca's
        figures (equity, cash, buying_power, ...) are in ``info``."""
        equity = dec(account.get("equity")) or Decimal(0)
        unrealized = sum((dec(p.get("unrealized_pl")) or Decimal(0)) for p in (positions or []))
        total = (equity - unrealized).quantize(Decimal("0.01"))
        balance = AccountBalance(total=Money(total, USD), locked=Money(0, USD), free=Money(total, USD))
        margins = []
        init_margin = dec(account.get("initial_margin"))
        maint_margin = dec(account.get("maintenance_margin"))
        if init_margin is not None and maint_margin is not None and init_margin >= 0 and maint_margin >= 0:
            margins.append(MarginBalance(initial=Money(init_margin, USD), maintenance=Money(maint_margin, USD)))
        info = {k: account.get(k) for k in (
            "account_number", "status", "equity", "last_equity", "cash", "buying_power", "regt_buying_power",
            "non_marginable_buying_power", "multiplier", "long_market_value", "short_market_value",
            "initial_margin", "maintenance_margin", "accrued_fees", "shorting_enabled",
            "trading_blocked", "account_blocked") if k in account}
        self.generate_account_state(balances=[balance], margins=margins, reported=True,
                                    ts_event=self._clock.timestamp_ns(), info=info)

    async def _refresh_account(self) -> None:
        account = await self._get("/account")
        positions = await self._get("/positions")
        self._emit_account_state(account, positions)

    def _schedule_account_refresh(self, delay: float = 0.2) -> None:
        if self._account_refresh_task is not None and not self._account_refresh_task.done():
            return

        async def refresh() -> None:
            await asyncio.sleep(delay)
            try:
                await self._refresh_account()
            except Exception as e:  # noqa: BLE001
                self._log.warning(f"Account refresh failed: {_message(e)}")

        self._account_refresh_task = self._loop.create_task(refresh(), name="alpaca-account-refresh")

    async def _query_account(self, command: QueryAccount) -> None:
        await self._refresh_account()

    async def _heartbeat_loop(self) -> None:
        while not self._stopping:
            await asyncio.sleep(self._cfg.heartbeat_interval_s)
            try:
                await self._refresh_account()
                if not self._stream_connected:
                    self._publish_status(False, "trade_updates stream down (REST reachable); reconnecting")
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001
                self._log.warning(f"Heartbeat failed: {_message(e)}")

    # ------------------------------------------------------------------------------------------ #
    # trade_updates stream
    # ------------------------------------------------------------------------------------------ #

    async def _close_stream(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            try:
                await stream.close()
            except Exception:  # noqa: BLE001
                pass

    async def _open_stream(self) -> None:
        stream = TradingStream(self._key, self._secret, paper=self._cfg.paper, url_override=self._stream_url,
                               websocket_params={"ping_interval": 10, "ping_timeout": 30, "max_queue": 1024})
        self._stream = stream
        timeout = max(5.0, self._cfg.request_timeout_s)
        await asyncio.wait_for(stream._connect(), timeout)
        await asyncio.wait_for(stream._auth(), timeout)  # raises ValueError when unauthorized
        await stream._ws.send(json.dumps({"action": "listen", "data": {"streams": ["trade_updates"]}}))
        while True:  # wait for the listening acknowledgement
            msg = json.loads(await asyncio.wait_for(stream._ws.recv(), timeout))
            if msg.get("stream") == "listening":
                return
            if msg.get("stream") == "trade_updates":
                await self._on_stream_message(msg)

    async def _run_stream(self) -> None:
        attempt = 0
        while not self._stopping:
            reason = "closed"
            try:
                await self._open_stream()
                attempt = 0
                self._stream_connected = True
                self._stream_ready.set()
                self._log.info(f"trade_updates connected ({self._stream_url})", LogColor.GREEN)
                self._publish_status(True, "trade_updates connected")
                if self._disconnected_at is not None and self._startup_done:
                    since, self._disconnected_at = self._disconnected_at, None
                    self.create_task(self._recover(since), log_msg="alpaca-recover")
                while True:
                    raw = await self._stream._ws.recv()
                    await self._on_stream_message(json.loads(raw))
            except asyncio.CancelledError:
                await self._close_stream()
                raise
            except Exception as e:  # noqa: BLE001 - any failure → reconnect
                reason = _message(e)
            await self._close_stream()
            if self._stopping:
                break
            if self._stream_connected or self._disconnected_at is None:
                self._disconnected_at = self._disconnected_at or self._server_now()
            attempt += 1
            delay = self._backoff(attempt, self._cfg.reconnect_initial_delay_s, self._cfg.reconnect_max_delay_s)
            if self._stream_connected:
                self._stream_connected = False
                self._log.warning(f"trade_updates stream dropped: {reason}; reconnecting")
                self._publish_status(False, f"trade_updates stream dropped: {reason}")
            else:
                self._log.warning(f"trade_updates connect failed: {reason}; retry {attempt} in {delay:.1f} s")
            await asyncio.sleep(delay)

    async def _on_stream_message(self, msg: dict) -> None:
        if msg.get("stream") != "trade_updates":
            return
        data = msg.get("data") or {}
        try:
            if not self._startup_done and self._resolve(data.get("order") or {}) is None:
                self._buffer.append(data)  # unknown until start-up reconciliation has run
                return
            self._handle_trade_update(data)
        except Exception as e:  # noqa: BLE001 - one bad event must not kill the stream
            self._log.exception(f"Error handling trade update {data.get('event')}", e)

    def _finish_startup(self) -> None:
        if self._startup_done:
            return
        self._startup_done = True
        buffered, self._buffer = self._buffer, []
        for data in buffered:
            try:
                self._handle_trade_update(data)
            except Exception as e:  # noqa: BLE001
                self._log.exception("Error handling buffered trade update", e)
        if self._disconnected_at is not None and self._stream_connected:
            since, self._disconnected_at = self._disconnected_at, None
            self.create_task(self._recover(since), log_msg="alpaca-recover")

    # ------------------------------------------------------------------------------------------ #
    # Order state tracking
    # ------------------------------------------------------------------------------------------ #

    def _track(self, order: Order) -> _OrderState:
        st = self._states.get(order.client_order_id)
        if st is None:
            st = _OrderState.from_order(order)
            self._states[order.client_order_id] = st
            if st.venue_id:
                self._by_venue[st.venue_id] = st
            for tid in order.trade_ids:
                self._seen_exec_ids.add(tid.value)
        return st

    def _state_for_coid(self, coid: str | ClientOrderId | None) -> _OrderState | None:
        if coid is None:
            return None
        cid = coid if isinstance(coid, ClientOrderId) else ClientOrderId(coid)
        st = self._states.get(cid)
        if st is not None:
            return st
        order = self._cache.order(cid)
        if order is None:
            return None
        return self._track(order)

    def _resolve(self, o: dict) -> _OrderState | None:
        aid = o.get("id")
        if aid and aid in self._by_venue:
            return self._by_venue[aid]
        root, _n = split_client_order_id(o.get("client_order_id"))
        st = self._state_for_coid(root) if root else None
        if st is None and o.get("client_order_id") and root != o.get("client_order_id"):
            st = self._state_for_coid(o.get("client_order_id"))
        if st is None and o.get("replaces"):
            st = self._by_venue.get(o["replaces"])
        if st is None and aid:
            cid = self._cache.client_order_id(VenueOrderId(aid))
            if cid is not None:
                st = self._state_for_coid(cid)
        return st

    def _register(self, st: _OrderState, o: dict) -> None:
        """Bind an Alpaca order JSON to ``st`` (first id, or a replacement)."""
        aid = o["id"]
        self._order_json[aid] = o
        if st.venue_id is None:
            st.venue_id = aid
            self._by_venue[aid] = st
        elif aid != st.venue_id and aid not in st.old_venue_ids:
            self._by_venue[aid] = st

    def _venue(self, st: _OrderState, fallback: str | None = None) -> VenueOrderId:
        return VenueOrderId(st.venue_id or fallback or "UNKNOWN")

    def _ensure_accepted(self, st: _OrderState, o: dict, ts: int) -> None:
        if st.venue_id is None:
            self._register(st, o)
        if st.accepted or st.closed:
            return
        st.accepted = True
        self.generate_order_accepted(st.strategy_id, st.instrument_id, st.client_order_id,
                                     self._venue(st, o.get("id")), ts)

    def _apply_replacement(self, st: _OrderState, n: dict, ts: int) -> None:
        """Alpaca order ``n`` replaced ``st``'s current order: same ClientOrderId, new venue id.

        Alpaca's replacement starts unfilled, so the Nautilus quantity becomes
        ``quantity - (old.qty - old.filled_qty) + n.qty`` with the replaced order's final fills
        (from the 'replaced' event, a GET after the PATCH, or an order listing)."""
        nid = n["id"]
        if nid == st.venue_id or nid in st.old_venue_ids:
            return
        self._order_json[nid] = n
        old_id = st.venue_id
        if st.venue_id:
            st.old_venue_ids.add(st.venue_id)
        st.venue_id = nid
        self._by_venue[nid] = st
        _root, count = split_client_order_id(n.get("client_order_id"))
        st.replace_count = max(st.replace_count, count)
        n_qty = dec(n.get("qty")) or Decimal(0)
        old = self._order_json.get(old_id) if old_id else None
        if old is not None and dec(old.get("qty")) is not None:
            old_filled = max(dec(old.get("filled_qty")) or Decimal(0), st.filled_by_venue.get(old_id, Decimal(0)))
            st.quantity = st.quantity - (dec(old["qty"]) - old_filled) + n_qty
        else:  # best effort: everything filled so far plus the replacement's size
            st.quantity = st.filled + n_qty
        st.quantity = max(st.quantity, st.filled)
        if st.closed:
            return
        if not st.accepted:
            st.accepted = True
            self.generate_order_accepted(st.strategy_id, st.instrument_id, st.client_order_id,
                                         VenueOrderId(nid), ts)
            return
        self.generate_order_updated(
            st.strategy_id, st.instrument_id, st.client_order_id, VenueOrderId(nid),
            self._make_qty(st.instrument_id, st.quantity),
            self._make_price(st.instrument_id, n.get("limit_price")),
            self._make_price(st.instrument_id, n.get("stop_price")),
            ts,
            venue_order_id_modified=True,
        )

    def _apply_fill(self, st: _OrderState, exec_id: str, qty: Decimal, px: Decimal, ts: int,
                    alpaca_order_id: str | None = None, cum_qty: Decimal | None = None) -> bool:
        """Emit OrderFilled once per execution (keys: execution id, and (order id, cum qty))."""
        if not exec_id or exec_id in self._seen_exec_ids or qty <= 0:
            return False
        key = (alpaca_order_id, cum_qty) if alpaca_order_id and cum_qty is not None else None
        if key is not None and key in self._seen_fill_keys:
            self._seen_exec_ids.add(exec_id)
            return False
        order = self._cache.order(st.client_order_id)
        if order is not None and TradeId(exec_id) in order.trade_ids:
            self._seen_exec_ids.add(exec_id)
            return False
        self._seen_exec_ids.add(exec_id)
        if key is not None:
            self._seen_fill_keys.add(key)
        if not st.accepted and not st.closed:
            st.accepted = True
            self.generate_order_accepted(st.strategy_id, st.instrument_id, st.client_order_id,
                                         self._venue(st, alpaca_order_id), ts)
        st.filled += qty
        key = alpaca_order_id or st.venue_id or ""
        st.filled_by_venue[key] = st.filled_by_venue.get(key, Decimal(0)) + qty
        if st.filled >= st.quantity:
            st.closed = True
        fee = fill_commission(st.side, qty, px, ts, self._instrument(st.instrument_id), st.instrument_id)
        self.generate_order_filled(
            strategy_id=st.strategy_id,
            instrument_id=st.instrument_id,
            client_order_id=st.client_order_id,
            venue_order_id=self._venue(st, alpaca_order_id),
            venue_position_id=None,
            trade_id=TradeId(exec_id),
            order_side=st.side,
            order_type=st.order_type,
            last_qty=self._make_qty(st.instrument_id, qty),
            last_px=self._make_price(st.instrument_id, px),
            quote_currency=USD,
            commission=Money(fee, USD),
            liquidity_side=liquidity_side_for(st.order_type),
            ts_event=ts,
            info={"alpaca_price": fmt_decimal(px), "alpaca_order_id": alpaca_order_id or st.venue_id or ""},
        )
        self._schedule_account_refresh()
        return True

    def _close(self, st: _OrderState, how: str, ts: int, reason: str = "") -> None:
        if st.closed:
            return
        st.closed = True
        venue = self._venue(st)
        if how == "canceled":
            if not st.accepted:
                st.accepted = True
                self.generate_order_accepted(st.strategy_id, st.instrument_id, st.client_order_id, venue, ts)
            self.generate_order_canceled(st.strategy_id, st.instrument_id, st.client_order_id, venue, ts)
        elif how == "expired":
            if not st.accepted:
                st.accepted = True
                self.generate_order_accepted(st.strategy_id, st.instrument_id, st.client_order_id, venue, ts)
            self.generate_order_expired(st.strategy_id, st.instrument_id, st.client_order_id, venue, ts)
        elif how == "rejected":
            self.generate_order_rejected(st.strategy_id, st.instrument_id, st.client_order_id,
                                         reason or "rejected by Alpaca", ts)

    # ------------------------------------------------------------------------------------------ #
    # trade_updates events
    # ------------------------------------------------------------------------------------------ #

    def _handle_trade_update(self, data: dict, defer: bool = True) -> None:
        event = str(data.get("event") or "").lower()
        o = data.get("order") or {}
        if not o.get("id"):
            return
        st = self._resolve(o)
        if st is None:
            if defer and self._inflight_submits > 0:
                self._deferred.append(data)  # e.g. a bracket leg seen before our POST answer
                return
            self._handle_external_update(event, o)
            return
        ts = self._ts(data.get("timestamp") or o.get("updated_at"))
        self._order_json[o["id"]] = o
        if st.children and o.get("legs"):
            self._map_legs(st, o, ts)

        # A replacement order (new id) of one we track: re-point the ClientOrderId first.
        if o["id"] != st.venue_id and o["id"] not in st.old_venue_ids and st.venue_id is not None:
            if o.get("replaces") and event != "replaced":
                self._apply_replacement(st, o, ts)

        if event in ("new", "accepted", "pending_new", "held", "accepted_for_bidding"):
            if event != "pending_new":
                self._ensure_accepted(st, o, ts)
            else:
                self._register(st, o)
        elif event in ("fill", "partial_fill"):
            if st.venue_id is None:
                self._register(st, o)
            qty = dec(data.get("qty"))
            px = dec(data.get("price"))
            exec_id = data.get("execution_id")
            if qty is None or px is None:  # old API versions: derive from the order
                qty = (dec(o.get("filled_qty")) or Decimal(0)) - st.filled_by_venue.get(o["id"], Decimal(0))
                px = dec(o.get("filled_avg_price")) or Decimal(0)
            if not exec_id:
                exec_id = f"{o['id']}-{o.get('filled_qty')}"
            self._apply_fill(st, str(exec_id), qty, px, ts, o["id"], dec(o.get("filled_qty")))
        elif event == "canceled":
            if o["id"] in st.old_venue_ids:
                return
            self._close(st, "canceled", ts)
        elif event == "expired":
            if o["id"] in st.old_venue_ids:
                return
            self._close(st, "expired", ts)
        elif event == "rejected":
            self._close(st, "rejected", ts, reason=str(o.get("reject_reason") or data.get("reason")
                                                       or "rejected by Alpaca"))
        elif event == "replaced":
            new_id = o.get("replaced_by")
            if new_id and new_id not in self._by_venue and not st.replace_pending:
                self.create_task(self._fetch_replacement(st, new_id, ts), log_msg="alpaca-replacement")
        elif event == "order_replace_rejected":
            self.generate_order_modify_rejected(st.strategy_id, st.instrument_id, st.client_order_id,
                                                self._venue(st), str(data.get("reason") or "replace rejected"), ts)
        elif event == "order_cancel_rejected":
            self.generate_order_cancel_rejected(st.strategy_id, st.instrument_id, st.client_order_id,
                                                self._venue(st), str(data.get("reason") or "cancel rejected"), ts)
        elif event == "done_for_day":
            self._log.info(f"{st.client_order_id!r}: done for the day at Alpaca (no further fills today)")
        else:  # pending_cancel, pending_replace, calculated, stopped, suspended, restated, trade_bust, ...
            self._log.info(f"{st.client_order_id!r}: Alpaca trade update '{event}'")

    async def _fetch_replacement(self, st: _OrderState, new_id: str, ts: int) -> None:
        await asyncio.sleep(0.5)  # the replacement's own 'new' event usually arrives first
        if new_id in self._by_venue:
            return
        try:
            n = await self._get(f"/orders/{new_id}")
        except Exception as e:  # noqa: BLE001
            self._log.warning(f"Cannot fetch replacement order {new_id}: {_message(e)}")
            return
        if new_id not in self._by_venue:
            self._apply_replacement(st, n, ts)

    def _handle_external_update(self, event: str, o: dict) -> None:
        """An order Nautilus does not know (placed elsewhere): let the engine reconcile it from
        an OrderStatusReport (fills are then inferred from the report's filled quantity)."""
        if o.get("status") == "replaced":
            return
        iid = instrument_id(o.get("symbol", ""))
        if self._cache.instrument(iid) is None:
            self._log.info(f"Ignoring trade update for external order on unknown instrument {iid}")
            return
        report = self._order_status_report(o, self._clock.timestamp_ns())
        if report is not None:
            self._send_order_status_report(report)

    # ------------------------------------------------------------------------------------------ #
    # Submission
    # ------------------------------------------------------------------------------------------ #

    def _validate(self, order: Order, *, simple_only: bool = False) -> str | None:
        if order.order_type not in ORDER_TYPE_TO_ALPACA:
            return f"order type {order.order_type.name} is not supported by the Alpaca adapter"
        if order.time_in_force not in TIF_TO_ALPACA:
            return f"time in force {order.time_in_force.name} is not supported by Alpaca"
        if order.is_post_only:  # e.g. Nautilus' bracket take-profit default
            self._log.warning(f"{order.client_order_id!r}: Alpaca has no post-only orders; sent as a plain limit")
        if order.is_quote_quantity:
            return "quote-quantity (notional) orders are not supported by the Alpaca adapter"
        if len(order.client_order_id.value) > MAX_CLIENT_ORDER_ID_LEN:
            return f"client_order_id longer than {MAX_CLIENT_ORDER_ID_LEN} characters"
        inst = self._instrument(order.instrument_id)
        if isinstance(inst, OptionContract):
            if order.time_in_force != TimeInForce.DAY:
                return "Alpaca option orders must be DAY orders"
            if simple_only:
                return ("Alpaca accepts only simple orders for options: bracket/OTO exits must be "
                        "emulated (emulation_trigger) or sent after the entry fills")
        return None

    def _order_body(self, order: Order) -> dict:
        body = {
            "symbol": order.instrument_id.symbol.value,
            "qty": fmt_decimal(order.quantity.as_decimal()),
            "side": order_side_to_alpaca(order.side),
            "type": ORDER_TYPE_TO_ALPACA[order.order_type],
            "time_in_force": TIF_TO_ALPACA[order.time_in_force],
            "client_order_id": order.client_order_id.value,
        }
        if order.order_type in (OrderType.LIMIT, OrderType.STOP_LIMIT):
            body["limit_price"] = fmt_decimal(order.price.as_decimal())
        if order.order_type in (OrderType.STOP_MARKET, OrderType.STOP_LIMIT):
            body["stop_price"] = fmt_decimal(order.trigger_price.as_decimal())
        return body

    def _reject_now(self, order: Order, reason: str, submitted: bool = False) -> None:
        st = self._track(order)
        st.closed = True
        self._log.warning(f"{order.client_order_id!r} rejected: {reason}")
        self.generate_order_rejected(order.strategy_id, order.instrument_id, order.client_order_id,
                                     reason, self._clock.timestamp_ns())

    async def _submit_order(self, command: SubmitOrder) -> None:
        order = command.order
        if order.is_closed:
            self._log.warning(f"Not submitting closed order {order.client_order_id!r}")
            return
        st = self._track(order)
        reason = self._validate(order)
        self.generate_order_submitted(order.strategy_id, order.instrument_id, order.client_order_id,
                                      self._clock.timestamp_ns())
        if reason:
            self._reject_now(order, reason)
            return
        await self._submit_body([st], self._order_body(order))

    async def _submit_order_list(self, command: SubmitOrderList) -> None:
        orders = list(command.order_list.orders)
        now = self._clock.timestamp_ns()
        entry = orders[0]
        children = [o for o in orders[1:] if o.parent_order_id == entry.client_order_id]
        contingent = entry.contingency_type != ContingencyType.NO_CONTINGENCY or any(
            o.contingency_type != ContingencyType.NO_CONTINGENCY for o in orders)
        for o in orders:
            self._track(o)
            self.generate_order_submitted(o.strategy_id, o.instrument_id, o.client_order_id, now)

        if not contingent:
            for o in orders:
                reason = self._validate(o)
                if reason:
                    self._reject_now(o, reason)
                else:
                    await self._submit_body([self._states[o.client_order_id]], self._order_body(o))
            return

        # Entry + OTO children: Alpaca bracket (take-profit limit + stop) or OTO (one of them).
        reason = None
        for o in orders:
            reason = reason or self._validate(o, simple_only=True)
        tp = [c for c in children if c.order_type == OrderType.LIMIT]
        sl = [c for c in children if c.order_type in (OrderType.STOP_MARKET, OrderType.STOP_LIMIT)]
        if reason is None:
            if entry.contingency_type != ContingencyType.OTO or len(children) != len(orders) - 1:
                reason = "Alpaca supports only entry + OTO children (bracket / OTO) order lists"
            elif not (1 <= len(children) <= 2) or len(tp) > 1 or len(sl) > 1 or len(tp) + len(sl) != len(children):
                reason = "Alpaca brackets need one take-profit LIMIT and/or one STOP / STOP_LIMIT child"
            elif entry.time_in_force not in (TimeInForce.DAY, TimeInForce.GTC):
                reason = "Alpaca bracket / OTO orders must be DAY or GTC"
            elif any(c.side == entry.side or c.quantity != entry.quantity for c in children):
                reason = "bracket children must be the opposite side and the entry's quantity"
        if reason:
            for o in orders:
                self._reject_now(o, reason)
            return
        body = self._order_body(entry)
        body["order_class"] = "bracket" if len(children) == 2 else "oto"
        if tp:
            body["take_profit"] = {"limit_price": fmt_decimal(tp[0].price.as_decimal())}
        if sl:
            leg = {"stop_price": fmt_decimal(sl[0].trigger_price.as_decimal())}
            if sl[0].order_type == OrderType.STOP_LIMIT:
                leg["limit_price"] = fmt_decimal(sl[0].price.as_decimal())
            body["stop_loss"] = leg
        states = [self._states[entry.client_order_id]]
        states += [self._states[c.client_order_id] for c in tp + sl]
        await self._submit_body(states, body)

    async def _submit_body(self, states: list[_OrderState], body: dict) -> None:
        self._inflight_submits += 1
        try:
            await self._submit_body_inner(states, body)
        finally:
            self._inflight_submits -= 1
            if self._inflight_submits == 0 and self._deferred:
                deferred, self._deferred = self._deferred, []
                for data in deferred:  # now mapped, or really external
                    try:
                        self._handle_trade_update(data, defer=False)
                    except Exception as e:  # noqa: BLE001
                        self._log.exception("Error handling deferred trade update", e)

    async def _submit_body_inner(self, states: list[_OrderState], body: dict) -> None:
        primary = states[0]
        try:
            ack = await self._post_order_idempotent(body)
        except _Rejected as e:
            for st in states:
                if not st.closed:
                    st.closed = True
                    self.generate_order_rejected(st.strategy_id, st.instrument_id, st.client_order_id,
                                                 str(e), self._clock.timestamp_ns())
            return
        except _Unknown as e:
            self._log.error(
                f"{primary.client_order_id!r}: outcome unknown ({e}); NOT resubmitting - the order "
                "is resolved by trade_updates or reconciliation")
            return
        self._on_ack(states, ack)

    def _on_ack(self, states: list[_OrderState], ack: dict) -> None:
        primary = states[0]
        ts = self._ts(ack.get("submitted_at") or ack.get("created_at"))
        if ack.get("status") == "replaced" and ack.get("replaced_by"):
            # found by client_order_id after it had already been replaced
            self._register(primary, ack)
            self._ensure_accepted(primary, ack, ts)
            self.create_task(self._fetch_replacement(primary, ack["replaced_by"], ts), log_msg="alpaca-replacement")
        elif ack.get("status") == "rejected":
            self._register(primary, ack)
            self._close(primary, "rejected", ts, str(ack.get("reject_reason") or "rejected by Alpaca"))
        else:
            self._ensure_accepted(primary, ack, ts)
        primary.children = list(states[1:])
        self._map_legs(primary, ack, ts)

    def _map_legs(self, parent: _OrderState, o: dict, ts: int) -> None:
        """Bind Alpaca's bracket / OTO legs (own ids, Alpaca-made client_order_ids) to the
        Nautilus child orders by type: the limit leg is the take-profit, the stop leg the stop."""
        legs = [leg for leg in (o.get("legs") or []) if leg.get("id") not in self._by_venue]
        for st in parent.children:
            if st.venue_id is not None:
                continue
            for leg in legs:
                leg_type = ORDER_TYPE_FROM_ALPACA.get(str(leg.get("type") or leg.get("order_type")))
                stops = (OrderType.STOP_MARKET, OrderType.STOP_LIMIT)
                if leg_type == st.order_type or (st.order_type in stops and leg_type in stops):
                    legs.remove(leg)
                    self._register(st, leg)
                    if leg.get("status") not in ("canceled", "expired", "rejected"):
                        self._ensure_accepted(st, leg, ts)
                    break

    async def _lookup_client_order_id(self, coid: str) -> dict | None:
        """The Alpaca order with ``client_order_id`` (None when Alpaca provably has none).
        Raises ``_Unknown`` when Alpaca cannot be asked."""
        last: BaseException | None = None
        for attempt in range(1, self._cfg.max_retries + 2):
            try:
                return await self._rest("get", "/orders:by_client_order_id", {"client_order_id": coid})
            except Exception as e:  # noqa: BLE001
                if _status(e) == 404:
                    return None
                if not _is_transient(e):
                    raise _Unknown(f"lookup of {coid} failed: {_message(e)}") from e
                last = e
                await asyncio.sleep(_retry_after(e) or self._backoff(
                    attempt, self._cfg.retry_initial_delay_s, self._cfg.retry_max_delay_s))
        raise _Unknown(f"lookup of {coid} failed: {_message(last) if last else 'no answer'}")

    async def _post_order_idempotent(self, body: dict) -> dict:
        coid = body["client_order_id"]
        last_error = ""
        for attempt in range(1, self._cfg.max_retries + 2):
            try:
                return await self._rest("post", "/orders", body)
            except Exception as e:  # noqa: BLE001
                status = _status(e)
                last_error = _message(e)
                if status == 422 and "client_order_id must be unique" in last_error:
                    existing = await self._lookup_client_order_id(coid)  # an earlier attempt landed
                    if existing is not None:
                        return existing
                    raise _Rejected(f"Alpaca {status}: {last_error}") from e
                if not _is_transient(e):
                    raise _Rejected(f"Alpaca {status}: {last_error}" if status else last_error) from e
                self._log.warning(f"POST /v2/orders {coid}: {last_error} (attempt {attempt})")
                if status == 429:
                    wait = _retry_after(e)  # rate limited: the request was not processed
                    wait = wait if wait is not None else self._backoff(
                        attempt, self._cfg.retry_initial_delay_s, self._cfg.retry_max_delay_s)
                else:
                    # timeout / 5xx / connection error: the order MAY exist; ask before retrying
                    existing = await self._lookup_client_order_id(coid)
                    if existing is not None:
                        self._log.info(f"{coid} found at Alpaca after '{last_error}': not resubmitting")
                        return existing
                    wait = self._backoff(attempt, self._cfg.retry_initial_delay_s, self._cfg.retry_max_delay_s)
                if attempt > self._cfg.max_retries:
                    break
                await asyncio.sleep(wait)
        raise _Rejected(f"Alpaca did not accept the order after {self._cfg.max_retries + 1} attempts "
                        f"(last error: {last_error}); it was verified absent and not placed")

    # ------------------------------------------------------------------------------------------ #
    # Cancel / modify
    # ------------------------------------------------------------------------------------------ #

    async def _venue_id_for(self, coid: ClientOrderId, venue_order_id: VenueOrderId | None) -> str | None:
        st = self._state_for_coid(coid)
        if st is not None and st.venue_id:
            return st.venue_id
        if venue_order_id is not None:
            return venue_order_id.value
        try:
            o = await self._lookup_client_order_id(coid.value)
        except _Unknown:
            return None
        if o is None:
            return None
        if st is not None:
            self._register(st, o)
        return o["id"]

    async def _cancel_order(self, command: CancelOrder) -> None:
        await self._cancel_one(command.client_order_id, command.venue_order_id, command.strategy_id,
                               command.instrument_id)

    async def _cancel_one(self, coid: ClientOrderId, venue_order_id: VenueOrderId | None, strategy_id,
                          iid: InstrumentId) -> None:
        aid = await self._venue_id_for(coid, venue_order_id)
        ts = self._clock.timestamp_ns()
        if aid is None:
            self.generate_order_cancel_rejected(strategy_id, iid, coid, venue_order_id,
                                                "order not found at Alpaca", ts)
            return
        last = ""
        for attempt in range(1, self._cfg.max_retries + 2):
            try:
                await self._rest("delete", f"/orders/{aid}")
                return  # 'canceled' arrives on trade_updates
            except Exception as e:  # noqa: BLE001
                last = _message(e)
                if not _is_transient(e):
                    self.generate_order_cancel_rejected(strategy_id, iid, coid, VenueOrderId(aid),
                                                        f"Alpaca {_status(e)}: {last}", self._clock.timestamp_ns())
                    return
                await asyncio.sleep(_retry_after(e) or self._backoff(
                    attempt, self._cfg.retry_initial_delay_s, self._cfg.retry_max_delay_s))
        self.generate_order_cancel_rejected(strategy_id, iid, coid, VenueOrderId(aid),
                                            f"cancel failed: {last}", self._clock.timestamp_ns())

    async def _cancel_all_orders(self, command: CancelAllOrders) -> None:
        side = command.order_side
        for order in self._cache.orders_open(venue=ALPACA_VENUE, instrument_id=command.instrument_id):
            if side not in (None, OrderSide.NO_ORDER_SIDE) and order.side != side:
                continue
            await self._cancel_one(order.client_order_id, order.venue_order_id, order.strategy_id,
                                   order.instrument_id)

    async def _batch_cancel_orders(self, command: BatchCancelOrders) -> None:
        for cancel in command.cancels:
            await self._cancel_order(cancel)

    async def _modify_order(self, command: ModifyOrder) -> None:
        coid = command.client_order_id
        st = self._state_for_coid(coid)
        ts = self._clock.timestamp_ns()
        if st is None or st.venue_id is None or st.closed:
            self.generate_order_modify_rejected(
                command.strategy_id, command.instrument_id, coid, command.venue_order_id,
                "order not open at Alpaca" if st is not None and st.closed else "order not acknowledged by Alpaca yet",
                ts)
            return
        body: dict[str, Any] = {}
        if command.quantity is not None and command.quantity.as_decimal() != st.quantity:
            remaining = command.quantity.as_decimal() - st.filled
            if remaining <= 0:
                self.generate_order_modify_rejected(command.strategy_id, command.instrument_id, coid,
                                                    self._venue(st), "new quantity not above the filled quantity", ts)
                return
            body["qty"] = fmt_decimal(remaining)
        if command.price is not None:
            body["limit_price"] = fmt_decimal(command.price.as_decimal())
        if command.trigger_price is not None:
            body["stop_price"] = fmt_decimal(command.trigger_price.as_decimal())
        old_id = st.venue_id
        st.replace_pending = True
        try:
            await self._replace(command, st, old_id, body)
        finally:
            st.replace_pending = False

    async def _replace(self, command: ModifyOrder, st: _OrderState, old_id: str, body: dict) -> None:
        coid = command.client_order_id
        last = ""
        for attempt in range(1, self._cfg.max_retries + 2):
            new_coid = replacement_client_order_id(st.client_order_id.value, st.replace_count + 1)
            if new_coid:
                body["client_order_id"] = new_coid
            else:
                body.pop("client_order_id", None)
            try:
                n = await self._rest("patch", f"/orders/{old_id}", body)
                st.replace_count += 1
                if n["id"] not in self._by_venue:
                    try:  # the replaced order's final fills fix the new total quantity
                        self._order_json[old_id] = await self._get(f"/orders/{old_id}")
                    except Exception as e:  # noqa: BLE001
                        self._log.warning(f"Cannot re-read replaced order {old_id}: {_message(e)}")
                    if n["id"] not in self._by_venue:
                        self._apply_replacement(st, n, self._ts(n.get("created_at")))
                return
            except Exception as e:  # noqa: BLE001
                last = _message(e)
                if _status(e) == 422 and "client_order_id must be unique" in last:
                    st.replace_count += 1  # an id from an earlier session: take the next one
                    continue
                if not _is_transient(e):
                    self.generate_order_modify_rejected(command.strategy_id, command.instrument_id, coid,
                                                        self._venue(st), f"Alpaca {_status(e)}: {last}",
                                                        self._clock.timestamp_ns())
                    return
                # unknown outcome: did Alpaca replace it anyway?
                try:
                    old = await self._get(f"/orders/{old_id}")
                    if old.get("status") == "replaced" and old.get("replaced_by"):
                        self._order_json[old_id] = old
                        n = await self._get(f"/orders/{old['replaced_by']}")
                        st.replace_count += 1
                        self._apply_replacement(st, n, self._ts(n.get("created_at")))
                        return
                except Exception:  # noqa: BLE001
                    pass
                await asyncio.sleep(_retry_after(e) or self._backoff(
                    attempt, self._cfg.retry_initial_delay_s, self._cfg.retry_max_delay_s))
        self.generate_order_modify_rejected(command.strategy_id, command.instrument_id, coid, self._venue(st),
                                            f"replace failed: {last}", self._clock.timestamp_ns())

    # ------------------------------------------------------------------------------------------ #
    # Recovery after a reconnect
    # ------------------------------------------------------------------------------------------ #

    async def _recover(self, since: datetime, attempt: int = 1) -> None:
        """Re-query orders and FILL activities since ``since`` (minus a margin) and generate what
        the stream missed. Fills are deduplicated by execution id and (order id, cum qty).

        Alpaca's activity feed can trail the order state by a moment: when an order shows more
        filled quantity than the activities explain, recovery runs again (3 tries, 2 s apart);
        after that the order's status report goes to the engine, which infers the missing fill."""
        async with self._recover_lock:
            after = since - timedelta(minutes=2)
            try:
                fills = await self._fetch_fill_activities(after)
                orders = await self._fetch_orders("all", after=None, limit=500)
            except Exception as e:  # noqa: BLE001
                self._log.error(f"Recovery after reconnect failed: {_message(e)}; retrying in 5 s")
                await asyncio.sleep(5.0)
                if not self._stopping:
                    self.create_task(self._recover(since, attempt), log_msg="alpaca-recover")
                return
            # orders first (acceptances, replacements), then fills in time order, then closes
            relevant: list[tuple[_OrderState, dict]] = []
            for o in sorted(orders, key=lambda x: str(x.get("created_at") or "")):
                st = self._resolve(o)
                if st is None:
                    continue
                relevant.append((st, o))
                ts = self._ts(o.get("updated_at"))
                if o["id"] != st.venue_id and o["id"] not in st.old_venue_ids and o.get("replaces") \
                        and st.venue_id is not None:
                    self._apply_replacement(st, o, ts)
                elif o.get("status") in OPEN_ALPACA_STATUSES or o.get("status") == "filled":
                    self._ensure_accepted(st, o, ts)
            applied = 0
            for act in sorted(fills, key=lambda a: str(a.get("transaction_time") or "")):
                oid = act.get("order_id")
                st = self._by_venue.get(oid) if oid else None
                if st is None and oid in self._order_json:
                    st = self._resolve(self._order_json[oid])
                if st is None:
                    continue
                if self._apply_fill(st, trade_id_from_activity(act), dec(act.get("qty")) or Decimal(0),
                                    dec(act.get("price")) or Decimal(0), self._ts(act.get("transaction_time")),
                                    oid, dec(act.get("cum_qty"))):
                    applied += 1
            short: list[tuple[_OrderState, dict]] = []
            for st, o in relevant:
                if o["id"] != st.venue_id:
                    continue
                alpaca_left = (dec(o.get("qty")) or Decimal(0)) - (dec(o.get("filled_qty")) or Decimal(0))
                if st.quantity - st.filled > alpaca_left:
                    short.append((st, o))  # filled at Alpaca, fill not seen yet
                    continue
                status = o.get("status")
                ts = self._ts(o.get("updated_at"))
                if status == "canceled":
                    self._close(st, "canceled", ts)
                elif status == "expired":
                    self._close(st, "expired", ts)
                elif status == "rejected":
                    self._close(st, "rejected", ts, "rejected by Alpaca")
            self._log.info(f"Recovered after reconnect: {applied} missed fill(s) applied", LogColor.BLUE)
        if short and not self._stopping:
            if attempt < 3:
                await asyncio.sleep(2.0)
                await self._recover(since, attempt + 1)
                return
            for st, o in short:
                self._log.error(f"{st.client_order_id!r}: Alpaca reports fills that FILL activities do not "
                                "show; reconciling from the order status")
                report = self._order_status_report(o, self._clock.timestamp_ns(), await self._chain(o))
                if report is not None:
                    report.client_order_id = st.client_order_id
                    self._send_order_status_report(report)

    # ------------------------------------------------------------------------------------------ #
    # REST queries
    # ------------------------------------------------------------------------------------------ #

    async def _fetch_orders(self, status: str, after: datetime | None, limit: int = 500,
                            symbols: list[str] | None = None, max_pages: int = 1) -> list[dict]:
        params: dict[str, Any] = {"status": status, "limit": limit, "nested": "true", "direction": "desc"}
        if after is not None:
            params["after"] = after.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
        if symbols:
            params["symbols"] = ",".join(symbols)
        orders: list[dict] = []
        for _ in range(max_pages):  # newest first; page back with ``until``
            page = await self._get("/orders", dict(params)) or []
            orders.extend(page)
            if len(page) < limit or not page[-1].get("submitted_at"):
                break
            params["until"] = page[-1]["submitted_at"]
        out: list[dict] = []
        seen: set[str] = set()
        for o in orders:
            if o["id"] in seen:
                continue
            seen.add(o["id"])
            out.append(o)
            for leg in o.get("legs") or []:
                out.append(leg)
        for o in out:
            self._order_json[o["id"]] = o
        return out

    async def _fetch_fill_activities(self, after: datetime | None, until: datetime | None = None,
                                     max_pages: int = 50) -> list[dict]:
        params: dict[str, Any] = {"direction": "desc", "page_size": 100}
        if after is not None:
            params["after"] = after.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
        if until is not None:
            params["until"] = until.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
        out: list[dict] = []
        for _ in range(max_pages):
            page = await self._get("/account/activities/FILL", dict(params)) or []
            out.extend(a for a in page if str(a.get("activity_type", "FILL")).upper() == "FILL")
            if len(page) < params["page_size"]:
                break
            params["page_token"] = page[-1]["id"]
        return out

    async def _chain(self, o: dict, depth: int = 20) -> list[dict]:
        """``o``'s replace chain, oldest first (``o`` last)."""
        chain = [o]
        cur = o
        for _ in range(depth):
            prev_id = cur.get("replaces")
            if not prev_id:
                break
            prev = self._order_json.get(prev_id)
            if prev is None:
                try:
                    prev = await self._get(f"/orders/{prev_id}")
                    self._order_json[prev_id] = prev
                except Exception:  # noqa: BLE001
                    break
            chain.insert(0, prev)
            cur = prev
        return chain

    def _root_client_order_id(self, chain: list[dict]) -> ClientOrderId | None:
        for o in chain:
            st = self._by_venue.get(o["id"])
            if st is not None:
                return st.client_order_id
        root, _n = split_client_order_id(chain[0].get("client_order_id"))
        return ClientOrderId(root) if root else None

    def _order_status_report(self, o: dict, ts_init: int, chain: list[dict] | None = None) -> OrderStatusReport | None:
        chain = chain or [o]
        status = ORDER_STATUS_FROM_ALPACA.get(str(o.get("status")))
        otype = ORDER_TYPE_FROM_ALPACA.get(str(o.get("type") or o.get("order_type")))
        tif = TIF_FROM_ALPACA.get(str(o.get("time_in_force")))
        if status is None or otype is None or tif is None or o.get("qty") in (None, ""):
            return None  # replaced / notional-only / unsupported
        iid = instrument_id(o["symbol"])
        prev_filled = sum((dec(p.get("filled_qty")) or Decimal(0)) for p in chain[:-1])
        prev_value = sum((dec(p.get("filled_qty")) or Decimal(0)) * (dec(p.get("filled_avg_price")) or Decimal(0))
                         for p in chain[:-1])
        filled_here = dec(o.get("filled_qty")) or Decimal(0)
        filled = prev_filled + filled_here
        qty = prev_filled + (dec(o.get("qty")) or Decimal(0))
        avg = None
        if filled > 0:
            avg = (prev_value + filled_here * (dec(o.get("filled_avg_price")) or Decimal(0))) / filled
        if status == OrderStatus.ACCEPTED and filled > 0:
            status = OrderStatus.PARTIALLY_FILLED
        coid = self._root_client_order_id(chain)
        ts_accepted = self._ts(chain[0].get("submitted_at") or chain[0].get("created_at"))
        return OrderStatusReport(
            account_id=self.account_id,
            instrument_id=iid,
            client_order_id=coid,
            venue_order_id=VenueOrderId(o["id"]),
            order_side=order_side_from_alpaca(o.get("side")),
            order_type=otype,
            time_in_force=tif,
            order_status=status,
            quantity=self._make_qty(iid, qty),
            filled_qty=self._make_qty(iid, filled),
            avg_px=avg,
            price=self._make_price(iid, o.get("limit_price")),
            trigger_price=self._make_price(iid, o.get("stop_price")),
            trigger_type=TriggerType.DEFAULT if o.get("stop_price") else TriggerType.NO_TRIGGER,
            report_id=UUID4(),
            ts_accepted=ts_accepted,
            ts_last=self._ts(o.get("updated_at") or o.get("submitted_at")),
            ts_init=ts_init,
        )

    def _lookback_start(self, start: Any) -> datetime:
        if start is not None:
            if hasattr(start, "value") and hasattr(start, "to_pydatetime"):  # pandas Timestamp (ns)
                ns = int(start.value)
                ts = datetime.fromtimestamp(ns // 1_000_000_000, tz=timezone.utc) + timedelta(
                    microseconds=(ns % 1_000_000_000) // 1_000)
            else:
                ts = start if start.tzinfo is not None else start.replace(tzinfo=timezone.utc)
            return ts + self._clock_skew
        return self._server_now() - timedelta(days=self._cfg.fill_lookback_days)

    async def generate_order_status_report(self, command: GenerateOrderStatusReport) -> OrderStatusReport | None:
        try:
            o = None
            if command.venue_order_id is not None:
                try:
                    o = await self._get(f"/orders/{command.venue_order_id.value}")
                except APIError as e:
                    if e.status_code != 404:
                        raise
            if o is None and command.client_order_id is not None:
                st = self._states.get(command.client_order_id)
                if st is not None and st.venue_id:
                    o = await self._get(f"/orders/{st.venue_id}")
                else:
                    o = await self._lookup_client_order_id(command.client_order_id.value)
            if o is None:
                return None
            for _ in range(20):  # follow replacements to the live order
                if o.get("status") == "replaced" and o.get("replaced_by"):
                    o = await self._get(f"/orders/{o['replaced_by']}")
                else:
                    break
            self._order_json[o["id"]] = o
            await self._ensure_instruments({o["symbol"]})
            return self._order_status_report(o, self._clock.timestamp_ns(), await self._chain(o))
        except Exception as e:  # noqa: BLE001
            self._log_report_error(e, "OrderStatusReport")
            return None

    async def generate_order_status_reports(self, command: GenerateOrderStatusReports) -> list[OrderStatusReport]:
        try:
            return await self._order_status_reports(command)
        except Exception as e:  # noqa: BLE001
            self._log_report_error(e, "OrderStatusReports")
            return []

    async def _order_status_reports(self, command: GenerateOrderStatusReports) -> list[OrderStatusReport]:
        reports: list[OrderStatusReport] = []
        symbols = [command.instrument_id.symbol.value] if command.instrument_id else None
        orders = await self._fetch_orders("open", None, symbols=symbols, max_pages=20)
        if not command.open_only:
            seen = {o["id"] for o in orders}
            closed = await self._fetch_orders("closed", self._lookback_start(command.start), symbols=symbols,
                                              max_pages=20)
            orders += [o for o in closed if o["id"] not in seen]
        await self._ensure_instruments({o["symbol"] for o in orders})
        ts = self._clock.timestamp_ns()
        for o in orders:
            if o.get("status") == "replaced":
                continue
            report = self._order_status_report(o, ts, await self._chain(o))
            if report is not None:
                reports.append(report)
        self._log.info(f"Generated {len(reports)} OrderStatusReport(s)")
        return reports

    async def generate_fill_reports(self, command: GenerateFillReports) -> list[FillReport]:
        try:
            return await self._fill_reports(command)
        except Exception as e:  # noqa: BLE001
            self._log_report_error(e, "FillReports")
            return []

    async def _fill_reports(self, command: GenerateFillReports) -> list[FillReport]:
        reports: list[FillReport] = []
        activities = await self._fetch_fill_activities(self._lookback_start(command.start))
        await self._ensure_instruments({a["symbol"] for a in activities if a.get("symbol")})
        ts = self._clock.timestamp_ns()
        for act in sorted(activities, key=lambda a: str(a.get("transaction_time") or "")):
            iid = instrument_id(act["symbol"])
            if command.instrument_id is not None and iid != command.instrument_id:
                continue
            oid = act.get("order_id")
            o = self._order_json.get(oid)
            if o is None and oid:
                try:
                    o = await self._get(f"/orders/{oid}")
                    self._order_json[oid] = o
                except Exception:  # noqa: BLE001
                    o = None
            head_id = oid
            coid = None
            otype = OrderType.MARKET
            if o is not None:
                otype = ORDER_TYPE_FROM_ALPACA.get(str(o.get("type")), OrderType.MARKET)
                head = o
                for _ in range(20):  # fills of replaced orders belong to the chain's live order
                    nxt = head.get("replaced_by")
                    if not nxt:
                        break
                    head = self._order_json.get(nxt) or {"id": nxt}
                head_id = head["id"]
                coid = self._root_client_order_id(await self._chain(o))
            if command.venue_order_id is not None and command.venue_order_id.value not in (oid, head_id):
                continue
            side = order_side_from_alpaca(act.get("side"))
            qty = dec(act.get("qty")) or Decimal(0)
            px = dec(act.get("price")) or Decimal(0)
            if qty <= 0:
                continue
            reports.append(FillReport(
                account_id=self.account_id,
                instrument_id=iid,
                venue_order_id=VenueOrderId(head_id),
                trade_id=TradeId(trade_id_from_activity(act)),
                order_side=side,
                last_qty=self._make_qty(iid, qty),
                last_px=self._make_price(iid, px),
                commission=Money(fill_commission(side, qty, px, self._ts(act.get("transaction_time")),
                                                 self._instrument(iid), iid), USD),
                liquidity_side=liquidity_side_for(otype),
                report_id=UUID4(),
                ts_event=self._ts(act.get("transaction_time")),
                ts_init=ts,
                client_order_id=coid,
            ))
        self._log.info(f"Generated {len(reports)} FillReport(s)")
        return reports

    async def generate_position_status_reports(self, command: GeneratePositionStatusReports) -> list[PositionStatusReport]:
        try:
            return await self._position_reports(command)
        except Exception as e:  # noqa: BLE001
            self._log_report_error(e, "PositionStatusReports")
            return []

    async def _position_reports(self, command: GeneratePositionStatusReports) -> list[PositionStatusReport]:
        reports: list[PositionStatusReport] = []
        positions = await self._get("/positions") or []
        await self._ensure_instruments({p["symbol"] for p in positions})
        ts = self._clock.timestamp_ns()
        seen = set()
        for p in positions:
            iid = instrument_id(p["symbol"])
            if command.instrument_id is not None and iid != command.instrument_id:
                continue
            qty = dec(p.get("qty")) or Decimal(0)
            if str(p.get("side", "")).lower() == "short" and qty > 0:
                qty = -qty
            seen.add(iid)
            reports.append(PositionStatusReport(
                account_id=self.account_id,
                instrument_id=iid,
                position_side=position_side_from_qty(qty),
                quantity=self._make_qty(iid, abs(qty)),
                avg_px_open=dec(p.get("avg_entry_price")),
                report_id=UUID4(),
                ts_last=ts,
                ts_init=ts,
            ))
        if command.instrument_id is not None and command.instrument_id not in seen:
            reports.append(PositionStatusReport(
                account_id=self.account_id,
                instrument_id=command.instrument_id,
                position_side=PositionSide.FLAT,
                quantity=self._make_qty(command.instrument_id, 0),
                report_id=UUID4(),
                ts_last=ts,
                ts_init=ts,
            ))
        self._log.info(f"Generated {len(reports)} PositionStatusReport(s)")
        return reports

    async def generate_mass_status(self, lookback_mins: int | None = None) -> ExecutionMassStatus | None:
        """Orders first (their replace chains map fills to the live order), then fills, then
        positions. When done, buffered trade_updates for then-unknown orders are processed."""
        self._log.info("Generating ExecutionMassStatus...")
        self.reconciliation_active = True
        try:
            since = None
            if lookback_mins is not None:
                since = self._clock.utc_now() - timedelta(minutes=lookback_mins)
            now = self._clock.timestamp_ns()
            mass_status = ExecutionMassStatus(client_id=self.id, account_id=self.account_id, venue=self.venue,
                                              report_id=UUID4(), ts_init=now)
            orders = await self._order_status_reports(GenerateOrderStatusReports(
                instrument_id=None, start=since, end=None, open_only=False, command_id=UUID4(), ts_init=now))
            fills = await self._fill_reports(GenerateFillReports(
                instrument_id=None, venue_order_id=None, start=since, end=None, command_id=UUID4(), ts_init=now))
            positions = await self._position_reports(GeneratePositionStatusReports(
                instrument_id=None, start=since, end=None, command_id=UUID4(), ts_init=now))
            mass_status.add_order_reports(reports=orders)
            mass_status.add_fill_reports(reports=fills)
            mass_status.add_position_reports(reports=positions)
            return mass_status
        except Exception as e:  # noqa: BLE001 - a partial picture must not pass for the full one
            self._log.exception("Cannot generate the execution mass status (reconciliation fails)", e)
            return None
        finally:
            self.reconciliation_active = False
            # the engine reconciles synchronously right after this returns; flush afterwards
            self._loop.call_later(0.05, self._finish_startup)


__all__ = ["AlpacaExecutionClient"]
