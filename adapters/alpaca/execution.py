"""Alpaca live execution client for NautilusTrader: the wiring of the adapter's parts.

``http`` (REST transport: timeouts, NautilusTrader's ``RetryManagerPool``, idempotent submit by
``client_order_id``, replace), ``stream`` (``trade_updates``: connect, auth, reconnect, re-query),
``order_tracker`` (the pure order state machine), ``reports`` (reconciliation reports),
``parsing`` (typed schemas, enum mappings) and ``fees`` (the commission of a fill).

Guarantees (details in those modules):

* **Idempotent submission.** After a timeout / 5xx the order is looked up by ``client_order_id``
  before any retry; an order whose fate cannot be determined is never resubmitted (it stays
  SUBMITTED until trade_updates or reconciliation tells). 403/422 → ``OrderRejected``.
* **Fills exactly once** across the stream, reconnect recovery and reconciliation (``trade_id`` =
  Alpaca ``execution_id``). Fill prices on the instrument's tick (Alpaca's price in ``info``).
* **Replace.** ``modify_order`` → ``PATCH``: the new Alpaca order keeps the ``ClientOrderId``
  (``OrderUpdated`` with the new venue order id; Alpaca ``client_order_id`` ``<id>-R<n>``).
* **Order lists.** Entry + OTO children on equities → Alpaca ``bracket`` / ``oto``; lists
  without contingencies order by order; contingent lists on options are rejected.
* **Reconciliation.** trade_updates of orders Nautilus does not know yet wait for start-up
  reconciliation; orders placed outside Nautilus go to the engine as ``OrderStatusReport`` s.
* **Account.** MARGIN account in USD; balance = Alpaca equity − unrealized P&L; Alpaca's figures
  in ``info``. Refreshed on connect, after fills and every ``heartbeat_interval_s``.
* **Broker status.** ``BrokerStatus`` on ``BROKER_STATUS_TOPIC``: connected on stream (re)connect
  and after REST answers while the stream is up; disconnected on stream drops, unreachable REST
  and client disconnect. Keys are never logged (``common.mask``).
* **Account checks.** On connect the broker's answer is checked (``common.check_account``): a
  non-paper account number without ``allow_live`` or a blocked / non-ACTIVE account fails the
  connect. Every later account answer that reports the account blocked / trading_blocked / not
  ACTIVE publishes ``BrokerStatus(halt_reason=...)`` once (the executor trips its kill switch).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from datetime import datetime, timedelta, timezone
from typing import Any

from nautilus_trader.cache.cache import Cache
from nautilus_trader.common.component import LiveClock, MessageBus
from nautilus_trader.common.enums import LogColor
from nautilus_trader.core.uuid import UUID4
from nautilus_trader.execution.messages import (
    BatchCancelOrders, CancelAllOrders, CancelOrder, GenerateFillReports, GenerateOrderStatusReport,
    GenerateOrderStatusReports, GeneratePositionStatusReports, ModifyOrder, QueryAccount, SubmitOrder,
    SubmitOrderList,
)
from nautilus_trader.execution.reports import (
    ExecutionMassStatus, FillReport, OrderStatusReport, PositionStatusReport,
)
from nautilus_trader.live.execution_client import LiveExecutionClient
from nautilus_trader.model.currencies import USD
from nautilus_trader.model.enums import AccountType, OmsType, OrderSide
from nautilus_trader.model.identifiers import AccountId, ClientId, ClientOrderId, InstrumentId, TradeId, VenueOrderId
from nautilus_trader.model.instruments import Instrument
from nautilus_trader.model.objects import Money
from nautilus_trader.model.orders import Order

from . import order_tracker as ot
from .common import (
    ALPACA, ALPACA_VENUE, BROKER_STATUS_TOPIC, AlpacaAccountError, AlpacaLiveTradingError, BrokerStatus,
    account_problem, check_account, check_live_allowed, mask, resolve_credentials, trading_urls,
)
from .config import AlpacaExecClientConfig
from .fees import fill_commission
from .http import (
    AlpacaHttpClient, AlpacaOrderRejected, AlpacaOutcomeUnknown, AlpacaRequestCanceled, create_trading_client,
    error_message, http_status,
)
from .order_tracker import OrderState, OrderTracker
from .parsing import (
    AlpacaAccount, AlpacaPosition, AlpacaTradeUpdate, dt_to_ns, fmt_decimal, instrument_id, is_contingent,
    liquidity_side_for, make_price, make_qty, order_body, order_list_body, order_request_error,
    parse_account_balances, parse_order_status_report, ts_or,
)
from .reports import AlpacaReports
from .stream import AlpacaTradeUpdatesStream, requery


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
        client = trading_client or create_trading_client(
            self._key, self._secret, paper=config.paper, trading_url=self._rest_url,
            timeout_s=config.request_timeout_s)
        self._http = AlpacaHttpClient(
            client, loop, self._log, max_retries=config.max_retries,
            retry_initial_delay_s=config.retry_initial_delay_s, retry_max_delay_s=config.retry_max_delay_s,
            on_contact=self._on_rest_contact)
        self._tracker = OrderTracker(find_order=self._cache.order,
                                     find_client_order_id=self._cache.client_order_id)
        self._stream = AlpacaTradeUpdatesStream(
            self._key, self._secret, paper=config.paper, url=self._stream_url, loop=loop, logger=self._log,
            on_update=self._on_trade_update, on_connected=self._on_stream_connected,
            on_disconnected=self._on_stream_disconnected, server_now=self._server_now,
            open_timeout_s=config.request_timeout_s,
            reconnect_initial_delay_s=config.reconnect_initial_delay_s,
            reconnect_max_delay_s=config.reconnect_max_delay_s)
        self._reports = AlpacaReports(self._http, self._tracker, self._instrument, self._ensure_instruments)

        self._heartbeat_task: asyncio.Task | None = None
        self._account_refresh_task: asyncio.Task | None = None
        self._stopping = False
        self._startup_done = False
        self._buffer: list[AlpacaTradeUpdate] = []  # events of unknown orders before start-up reconciliation
        self._recover_lock = asyncio.Lock()
        self._clock_skew = timedelta(0)  # Alpaca server time - local time
        self._account_problem: str | None = None  # the broker's last "may not trade" verdict

        self._log.info(
            f"Alpaca {'LIVE (real money)' if self._live else 'paper'} trading at {self._rest_url}, "
            f"key={mask(self._key)}", LogColor.BLUE)

    # -- Helpers -----------------------------------------------------------------------------------

    def _server_now(self) -> datetime:
        return datetime.now(timezone.utc) + self._clock_skew

    def _publish_status(self, connected: bool, detail: str, halt_reason: str = "") -> None:
        try:
            self._msgbus.publish(
                topic=BROKER_STATUS_TOPIC,
                msg=BrokerStatus(connected=connected, ts_ns=self._clock.timestamp_ns(),
                                 broker="alpaca", detail=detail, halt_reason=halt_reason),
            )
        except Exception as e:  # noqa: BLE001 - status publishing must never break trading
            self._log.warning(f"Cannot publish BrokerStatus: {e}")

    def _on_rest_contact(self, reached: bool, detail: str) -> None:
        """After every REST attempt: unreachable → disconnected; an answer is contact (reported
        while the stream is up)."""
        if not reached:
            self._publish_status(False, detail)
        elif self._stream.connected:
            self._publish_status(True, detail)

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

    # -- Connection --------------------------------------------------------------------------------

    async def _connect(self) -> None:
        self._stopping = False
        try:  # first call: a clear message for bad credentials
            account = await self._http.get_account()
        except Exception as e:
            if http_status(e) in (401, 403):
                raise RuntimeError(f"Alpaca refused the API credentials (key {mask(self._key)}, "
                                   f"{self._rest_url}): HTTP {http_status(e)}") from None
            raise
        try:  # the broker's own answer: a real-money account needs allow_live; blocked / not ACTIVE: no trading
            check_account(account, allow_live=self._cfg.allow_live, url=self._rest_url)
        except AlpacaAccountError as e:
            self._account_problem = account_problem(account)
            self._log.error(str(e))
            self._publish_status(True, "GET /v2/account", halt_reason=self._account_problem or str(e))
            raise
        except AlpacaLiveTradingError as e:
            self._log.error(str(e))
            raise
        await self._instrument_provider.initialize()
        for inst in self._instrument_provider.list_all():
            self._cache.add_instrument(inst)

        try:  # Alpaca's clock: lookback windows follow the broker's time (one attempt: optional)
            server_ns = dt_to_ns((await self._http.get_clock()).timestamp)
            if server_ns:
                self._clock_skew = timedelta(microseconds=(server_ns - self._clock.timestamp_ns()) // 1_000)
        except Exception as e:  # noqa: BLE001 - optional; lookbacks fall back to the local clock
            self._log.warning(f"GET /v2/clock failed ({error_message(e)}); using the local clock")

        self._set_account_id(AccountId(f"{self.id.value}-{account.account_number}"))
        self._emit_account_state(account, await self._http.get_positions())

        self._stream.start()
        if not await self._stream.wait_ready():
            self._log.error("trade_updates stream not connected yet; retrying in the background")
        self._heartbeat_task = self._loop.create_task(self._heartbeat_loop(), name="alpaca-heartbeat")
        # Events for orders Nautilus does not know yet wait for start-up reconciliation (or at most
        # 30 s when reconciliation is disabled).
        self._loop.call_later(30.0, self._finish_startup)
        await self._await_account_registered()

    async def _disconnect(self) -> None:
        self._stopping = True
        for task in (self._heartbeat_task, self._account_refresh_task):
            if task is not None and not task.done():
                task.cancel()
        if self._heartbeat_task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._heartbeat_task), timeout=2.0)
            except (asyncio.CancelledError, asyncio.TimeoutError, Exception):  # noqa: BLE001
                pass
        await self._stream.stop()
        self._http.shutdown()
        self._publish_status(False, "alpaca execution client disconnected")

    # -- Account -----------------------------------------------------------------------------------

    def _emit_account_state(self, account: AlpacaAccount, positions: list[AlpacaPosition] | None) -> None:
        balances, margins = parse_account_balances(account, positions)
        self.generate_account_state(balances=balances, margins=margins, reported=True,
                                    ts_event=self._clock.timestamp_ns(), info=account.info())

    async def _refresh_account(self) -> None:
        account = await self._http.get_account()
        self._check_account_state(account)
        self._emit_account_state(account, await self._http.get_positions())

    def _check_account_state(self, account: AlpacaAccount) -> None:
        """Every account answer (connect, heartbeat, after fills): when the broker reports the
        account blocked, trading_blocked or not ACTIVE, publish ``BrokerStatus(halt_reason=...)``
        (the executor trips its kill switch); once per change of verdict."""
        problem = account_problem(account)
        if problem == self._account_problem:
            return
        self._account_problem = problem
        if problem:
            self._log.error(f"Alpaca: {problem}; trading must halt")
            self._publish_status(True, "GET /v2/account", halt_reason=problem)
        else:
            self._log.warning("Alpaca: the account is ACTIVE and unblocked again (the kill switch stays "
                              "latched until resumed by an operator)")

    def _schedule_account_refresh(self, delay: float = 0.2) -> None:
        if self._account_refresh_task is not None and not self._account_refresh_task.done():
            return

        async def refresh() -> None:
            await asyncio.sleep(delay)
            try:
                await self._refresh_account()
            except Exception as e:  # noqa: BLE001
                self._log.warning(f"Account refresh failed: {error_message(e)}")

        self._account_refresh_task = self._loop.create_task(refresh(), name="alpaca-account-refresh")

    async def _query_account(self, command: QueryAccount) -> None:
        await self._refresh_account()

    async def _heartbeat_loop(self) -> None:
        while not self._stopping:
            await asyncio.sleep(self._cfg.heartbeat_interval_s)
            try:
                await self._refresh_account()
                if not self._stream.connected:
                    self._publish_status(False, "trade_updates stream down (REST reachable); reconnecting")
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001
                self._log.warning(f"Heartbeat failed: {error_message(e)}")

    # -- trade_updates -----------------------------------------------------------------------------

    def _on_stream_connected(self) -> None:
        self._publish_status(True, "trade_updates connected")
        if self._startup_done:
            self._recover_gap()

    def _on_stream_disconnected(self, reason: str) -> None:
        self._publish_status(False, f"trade_updates stream dropped: {reason}")

    def _recover_gap(self) -> None:
        since = self._stream.take_gap()
        if since is not None:
            self.create_task(self._recover(since), log_msg="alpaca-recover")

    def _on_trade_update(self, update: AlpacaTradeUpdate) -> None:
        if not self._startup_done and self._tracker.resolve(update.order) is None:
            self._buffer.append(update)  # unknown until start-up reconciliation has run
            return
        self._handle_update(update)

    def _handle_update(self, update: AlpacaTradeUpdate, defer: bool = True) -> None:
        self._emit(self._tracker.on_trade_update(update, self._clock.timestamp_ns(), defer=defer))

    def _finish_startup(self) -> None:
        if self._startup_done:
            return
        self._startup_done = True
        buffered, self._buffer = self._buffer, []
        for update in buffered:
            try:
                self._handle_update(update)
            except Exception as e:  # noqa: BLE001
                self._log.exception("Error handling buffered trade update", e)
        if self._stream.connected:
            self._recover_gap()

    # -- Decisions → Nautilus events ---------------------------------------------------------------

    def _emit(self, decisions: list[ot.Decision]) -> None:  # noqa: C901 - one branch per decision
        for d in decisions:
            if isinstance(d, ot.Note):
                getattr(self._log, d.level)(d.message)
                continue
            if isinstance(d, ot.SendOrderReport):
                self._send_alpaca_order(d)
                continue
            st = d.state
            args = (st.strategy_id, st.instrument_id, st.client_order_id)
            if isinstance(d, ot.Accepted):
                self.generate_order_accepted(*args, VenueOrderId(d.venue_order_id), d.ts)
            elif isinstance(d, ot.Filled):
                self._emit_fill(d)
            elif isinstance(d, ot.Updated):
                inst = self._instrument(st.instrument_id)
                self.generate_order_updated(*args, VenueOrderId(d.venue_order_id), make_qty(inst, d.quantity),
                                            make_price(inst, d.limit_price), make_price(inst, d.stop_price),
                                            d.ts, venue_order_id_modified=True)
            elif isinstance(d, ot.Canceled):
                self.generate_order_canceled(*args, VenueOrderId(d.venue_order_id), d.ts)
            elif isinstance(d, ot.Expired):
                self.generate_order_expired(*args, VenueOrderId(d.venue_order_id), d.ts)
            elif isinstance(d, ot.Rejected):
                self.generate_order_rejected(*args, d.reason, d.ts)
            elif isinstance(d, ot.ModifyRejected):
                self.generate_order_modify_rejected(*args, VenueOrderId(d.venue_order_id), d.reason, d.ts)
            elif isinstance(d, ot.CancelRejected):
                self.generate_order_cancel_rejected(*args, VenueOrderId(d.venue_order_id), d.reason, d.ts)
            elif isinstance(d, ot.FetchReplacement):
                self.create_task(self._fetch_replacement(st, d.new_id, d.ts), log_msg="alpaca-replacement")

    def _emit_fill(self, d: ot.Filled) -> None:
        st = d.state
        inst = self._instrument(st.instrument_id)
        fee = fill_commission(st.side, d.qty, d.px, d.ts, inst, st.instrument_id)
        self.generate_order_filled(
            strategy_id=st.strategy_id,
            instrument_id=st.instrument_id,
            client_order_id=st.client_order_id,
            venue_order_id=VenueOrderId(d.venue_order_id),
            venue_position_id=None,
            trade_id=TradeId(d.trade_id),
            order_side=st.side,
            order_type=st.order_type,
            last_qty=make_qty(inst, d.qty),
            last_px=make_price(inst, d.px),
            quote_currency=USD,
            commission=Money(fee, USD),
            liquidity_side=liquidity_side_for(st.order_type),
            ts_event=d.ts,
            info={"alpaca_price": fmt_decimal(d.px), "alpaca_order_id": d.alpaca_order_id},
        )
        self._schedule_account_refresh()

    def _send_alpaca_order(self, d: ot.SendOrderReport) -> None:
        """An order Nautilus does not know (placed elsewhere) or one to adopt: the engine
        reconciles it from an OrderStatusReport (fills are inferred from its filled quantity)."""
        iid = instrument_id(d.order.symbol)
        inst = self._cache.instrument(iid)
        if inst is None:
            self._log.info(f"Ignoring trade update for external order on unknown instrument {iid}")
            return
        report = parse_order_status_report([d.order], account_id=self.account_id, client_order_id=d.client_order_id,
                                           instrument=inst, ts_init=self._clock.timestamp_ns())
        if report is not None:
            self._send_order_status_report(report)

    async def _fetch_replacement(self, st: OrderState, new_id: str, ts: int) -> None:
        await asyncio.sleep(0.5)  # the replacement's own 'new' event usually arrives first
        if self._tracker.knows_venue_id(new_id):
            return
        try:
            n = await self._http.get_order(new_id)
        except Exception as e:  # noqa: BLE001
            self._log.warning(f"Cannot fetch replacement order {new_id}: {error_message(e)}")
            return
        if not self._tracker.knows_venue_id(new_id):
            self._emit(self._tracker.apply_replacement(st, n, ts))

    # -- Submission --------------------------------------------------------------------------------

    def _validate(self, order: Order, *, simple_only: bool = False) -> str | None:
        reason = order_request_error(order, self._instrument(order.instrument_id), simple_only=simple_only)
        if reason is None and order.is_post_only:  # e.g. Nautilus' bracket take-profit default
            self._log.warning(f"{order.client_order_id!r}: Alpaca has no post-only orders; sent as a plain limit")
        return reason

    def _reject_now(self, states: list[OrderState], reason: str) -> None:
        for st in states:
            self._log.warning(f"{st.client_order_id!r} rejected: {reason}")
        self._emit(self._tracker.reject(states, reason, self._clock.timestamp_ns()))

    async def _submit_order(self, command: SubmitOrder) -> None:
        order = command.order
        if order.is_closed:
            self._log.warning(f"Not submitting closed order {order.client_order_id!r}")
            return
        st = self._tracker.track(order)
        reason = self._validate(order)
        self.generate_order_submitted(order.strategy_id, order.instrument_id, order.client_order_id,
                                      self._clock.timestamp_ns())
        if reason:
            self._reject_now([st], reason)
            return
        await self._submit_body([st], order_body(order))

    async def _submit_order_list(self, command: SubmitOrderList) -> None:
        orders = list(command.order_list.orders)
        now = self._clock.timestamp_ns()
        for o in orders:
            self._tracker.track(o)
            self.generate_order_submitted(o.strategy_id, o.instrument_id, o.client_order_id, now)

        if not is_contingent(orders):
            for o in orders:
                reason = self._validate(o)
                if reason:
                    self._reject_now([self._tracker.track(o)], reason)
                else:
                    await self._submit_body([self._tracker.track(o)], order_body(o))
            return

        # Entry + OTO children: Alpaca bracket (take-profit limit + stop) or OTO (one of them).
        reason = None
        for o in orders:
            reason = reason or self._validate(o, simple_only=True)
        body, legs = None, []
        if reason is None:
            body, legs, reason = order_list_body(orders)
        if reason:
            self._reject_now([self._tracker.track(o) for o in orders], reason)
            return
        await self._submit_body([self._tracker.track(o) for o in [orders[0], *legs]], body)

    async def _submit_body(self, states: list[OrderState], body: dict) -> None:
        self._tracker.begin_submit()
        try:
            await self._submit_body_inner(states, body)
        finally:
            for update in self._tracker.end_submit():  # now mapped, or really external
                try:
                    self._handle_update(update, defer=False)
                except Exception as e:  # noqa: BLE001
                    self._log.exception("Error handling deferred trade update", e)

    async def _submit_body_inner(self, states: list[OrderState], body: dict) -> None:
        try:
            ack = await self._http.submit_order(body)
        except AlpacaOrderRejected as e:
            self._emit(self._tracker.reject(states, e.reason, self._clock.timestamp_ns(), in_doubt=not e.confirmed))
            return
        except (AlpacaOutcomeUnknown, AlpacaRequestCanceled) as e:
            self._tracker.mark_in_doubt(states)
            self._log.error(
                f"{states[0].client_order_id!r}: outcome unknown ({e}); NOT resubmitting - the order "
                "is resolved by trade_updates or reconciliation")
            return
        self._emit(self._tracker.on_submit_ack(states, ack, self._clock.timestamp_ns()))

    # -- Cancel / modify ---------------------------------------------------------------------------

    async def _venue_id_for(self, coid: ClientOrderId, venue_order_id: VenueOrderId | None) -> str | None:
        st = self._tracker.state_for(coid)
        if st is not None and st.venue_id:
            return st.venue_id
        if venue_order_id is not None:
            return venue_order_id.value
        try:
            o = await self._http.lookup_client_order_id(coid.value)
        except AlpacaOutcomeUnknown:
            return None
        if o is None:
            return None
        if st is not None:
            self._tracker.register(st, o)
        return o.id

    async def _cancel_order(self, command: CancelOrder) -> None:
        await self._cancel_one(command.client_order_id, command.venue_order_id, command.strategy_id,
                               command.instrument_id)

    async def _cancel_one(self, coid: ClientOrderId, venue_order_id: VenueOrderId | None, strategy_id,
                          iid: InstrumentId) -> None:
        aid = await self._venue_id_for(coid, venue_order_id)
        if aid is None:
            self.generate_order_cancel_rejected(strategy_id, iid, coid, venue_order_id,
                                                "order not found at Alpaca", self._clock.timestamp_ns())
            return
        error = await self._http.cancel_order(aid)  # 'canceled' arrives on trade_updates
        if error:
            self.generate_order_cancel_rejected(strategy_id, iid, coid, VenueOrderId(aid), error,
                                                self._clock.timestamp_ns())

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
        st = self._tracker.state_for(coid)
        ts = self._clock.timestamp_ns()
        if st is None or st.venue_id is None or st.closed:
            self.generate_order_modify_rejected(
                command.strategy_id, command.instrument_id, coid, command.venue_order_id,
                "order not open at Alpaca" if st is not None and st.closed else "order not acknowledged by Alpaca yet",
                ts)
            return
        body, reason = self._tracker.replace_body(
            st, command.quantity.as_decimal() if command.quantity is not None else None,
            command.price.as_decimal() if command.price is not None else None,
            command.trigger_price.as_decimal() if command.trigger_price is not None else None)
        if reason:
            self.generate_order_modify_rejected(command.strategy_id, command.instrument_id, coid,
                                                VenueOrderId(st.venue_id), reason, ts)
            return
        old_id = st.venue_id
        st.replace_pending = True
        try:
            await self._replace(command, st, old_id, body)
        finally:
            st.replace_pending = False

    async def _replace(self, command: ModifyOrder, st: OrderState, old_id: str, body: dict) -> None:
        outcome = await self._http.replace_order(old_id, body, st.client_order_id.value, st.replace_count,
                                                 known=self._tracker.knows_venue_id)
        st.replace_count = outcome.count
        now = self._clock.timestamp_ns()
        if outcome.new is None:
            self.generate_order_modify_rejected(command.strategy_id, command.instrument_id, command.client_order_id,
                                                VenueOrderId(self._tracker.venue(st)), outcome.error or "", now)
            return
        if outcome.old is not None:
            self._tracker.remember(outcome.old)
        if not self._tracker.knows_venue_id(outcome.new.id):  # not applied from the stream meanwhile
            self._emit(self._tracker.apply_replacement(st, outcome.new, ts_or(outcome.new.created_at, now)))

    # -- Recovery after a reconnect ----------------------------------------------------------------

    async def _recover(self, since: datetime, attempt: int = 1) -> None:
        """Re-query orders and FILL activities since ``since`` and generate what the stream
        missed (``OrderTracker.recover``). Alpaca's activity feed can trail the order state by a
        moment: when an order shows more filled quantity than the activities explain, recovery
        runs again (3 tries, 2 s apart); after that the order's status report goes to the
        engine, which infers the missing fill."""
        async with self._recover_lock:
            try:
                orders, fills = await requery(self._http, since)
            except Exception as e:  # noqa: BLE001
                self._log.error(f"Recovery after reconnect failed: {error_message(e)}; retrying in 5 s")
                await asyncio.sleep(5.0)
                if not self._stopping:
                    self.create_task(self._recover(since, attempt), log_msg="alpaca-recover")
                return
            result = self._tracker.recover(orders, fills, self._clock.timestamp_ns())
            self._emit(result.decisions)
            self._log.info(f"Recovered after reconnect: {result.fills_applied} missed fill(s) applied", LogColor.BLUE)
        if result.short and not self._stopping:
            if attempt < 3:
                await asyncio.sleep(2.0)
                await self._recover(since, attempt + 1)
                return
            for st, o in result.short:
                self._log.error(f"{st.client_order_id!r}: Alpaca reports fills that FILL activities do not "
                                "show; reconciling from the order status")
                report = self._reports.order_report(await self._reports.chain(o), self.account_id,
                                                    self._clock.timestamp_ns(), st.client_order_id)
                if report is not None:
                    self._send_order_status_report(report)

    # -- Reconciliation reports (built by ``reports.AlpacaReports``) -------------------------------

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

    async def _guarded(self, what: str, reports: Awaitable[Any], default: Any) -> Any:
        try:
            return await reports
        except Exception as e:  # noqa: BLE001 - reconciliation gets nothing rather than a wrong picture
            self._log_report_error(e, what)
            return default

    async def generate_order_status_report(self, command: GenerateOrderStatusReport) -> OrderStatusReport | None:
        return await self._guarded("OrderStatusReport", self._reports.order_status_report(
            self.account_id, command.venue_order_id, command.client_order_id, self._clock.timestamp_ns()), None)

    async def generate_order_status_reports(self, command: GenerateOrderStatusReports) -> list[OrderStatusReport]:
        return await self._guarded("OrderStatusReports", self._order_status_reports(command), [])

    async def _order_status_reports(self, command: GenerateOrderStatusReports) -> list[OrderStatusReport]:
        reports = await self._reports.order_status_reports(
            self.account_id, command.instrument_id, command.open_only, self._lookback_start(command.start),
            self._clock.timestamp_ns())
        self._log.info(f"Generated {len(reports)} OrderStatusReport(s)")
        return reports

    async def generate_fill_reports(self, command: GenerateFillReports) -> list[FillReport]:
        return await self._guarded("FillReports", self._fill_reports(command), [])

    async def _fill_reports(self, command: GenerateFillReports) -> list[FillReport]:
        reports = await self._reports.fill_reports(self.account_id, command.instrument_id, command.venue_order_id,
                                                   self._lookback_start(command.start), self._clock.timestamp_ns())
        self._log.info(f"Generated {len(reports)} FillReport(s)")
        return reports

    async def generate_position_status_reports(self, command: GeneratePositionStatusReports) -> list[PositionStatusReport]:
        return await self._guarded("PositionStatusReports", self._position_reports(command), [])

    async def _position_reports(self, command: GeneratePositionStatusReports) -> list[PositionStatusReport]:
        reports = await self._reports.position_reports(self.account_id, command.instrument_id,
                                                       self._clock.timestamp_ns())
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


__all__ = ["AlpacaExecutionClient", "fill_commission"]
