"""``OrderRecorder``: a NautilusTrader Actor that journals the order book (issue #16).

NautilusTrader's ExecutionEngine publishes every order event (initialized, denied, submitted,
accepted, rejected, canceled, expired, triggered, updated, filled, ...) on ``events.order.<strategy
id>`` *after* applying it to the order in the cache. The recorder listens on ``events.order.*``
(every strategy of the node) and, for each event, upserts the order as the cache now holds it
(``executor_orders``: status, filled quantity, average price, ...) and, for ``OrderFilled``, adds
the execution (``executor_fills``). It writes through the journal sink (``JournalSink``: batched
on the writer thread), so nothing here touches the database on the engine's thread.

The same actor runs in the backtest engine (``backtests.runner``, with ``--db``) and in the live
TradingNode (``strategies.live``). The executor strategy itself is untouched: orders carry their
signal and role in their tags (``signal=<id>``, ``role=entry:market|stop|exit|add...``), which
become the ``signal_id`` / ``role`` columns.

Times are the events' engine timestamps (``ts_init`` of the order, ``ts_event`` of the event);
no wall clock.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from nautilus_trader.common.actor import Actor
from nautilus_trader.common.config import ActorConfig
from nautilus_trader.model.enums import liquidity_side_to_str, order_type_to_str, time_in_force_to_str

from strategies.journal.models import FillRecord, OrderRecord

ORDER_EVENTS_TOPIC = "events.order.*"


class OrderRecorderConfig(ActorConfig, frozen=True):
    component_id: str | None = "OrderRecorder"


def _dt(ns: int) -> datetime:
    return datetime.fromtimestamp(ns / 1e9, tz=timezone.utc)


def parse_tags(tags: Any) -> tuple[list[str], str | None, str | None]:
    """(tags as a list, the signal id, the role) of an order's tags (``signal=...``, ``role=...``)."""
    out = [str(t) for t in (tags or [])]
    signal = role = None
    for t in out:
        if t.startswith("signal=") and signal is None:
            signal = t[len("signal="):]
        elif t.startswith("role=") and role is None:
            role = t[len("role="):]
    return out, signal, role


def _opt_float(obj: Any, attr: str) -> float | None:
    try:
        v = getattr(obj, attr)
    except (AttributeError, ValueError, TypeError):
        return None
    if v is None:
        return None
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def order_record(order: Any, event: Any, run_id: str) -> OrderRecord:
    """The ``executor_orders`` row of a NautilusTrader order after ``event`` was applied to it."""
    tags, signal, role = parse_tags(order.tags)
    avg_px = _opt_float(order, "avg_px") if float(order.filled_qty) > 0 else None
    reason = getattr(event, "reason", None)
    return OrderRecord(
        run_id=run_id,
        client_order_id=order.client_order_id.value,
        venue_order_id=order.venue_order_id.value if order.venue_order_id is not None else None,
        strategy_id=order.strategy_id.value if order.strategy_id is not None else None,
        instrument_id=order.instrument_id.value,
        ticker=order.instrument_id.symbol.value,
        side=order.side_string(),
        order_type=order_type_to_str(order.order_type),
        time_in_force=time_in_force_to_str(order.time_in_force),
        quantity=float(order.quantity),
        filled_qty=float(order.filled_qty),
        price=_opt_float(order, "price") if order.has_price else None,
        trigger_price=_opt_float(order, "trigger_price") if order.has_trigger_price else None,
        avg_px=avg_px,
        status=order.status_string(),
        reduce_only=bool(order.is_reduce_only),
        signal_id=signal,
        role=role,
        tags=tags,
        last_event=type(event).__name__,
        reason=str(reason) if reason else None,
        created_at=_dt(order.ts_init),
        updated_at=_dt(max(event.ts_event, order.ts_init)),
    )


def fill_record(fill: Any, order: Any, run_id: str) -> FillRecord:
    """The ``executor_fills`` row of a NautilusTrader ``OrderFilled`` event."""
    _, signal, role = parse_tags(order.tags if order is not None else None)
    return FillRecord(
        run_id=run_id,
        ts=_dt(fill.ts_event),
        client_order_id=fill.client_order_id.value,
        venue_order_id=fill.venue_order_id.value if fill.venue_order_id is not None else None,
        trade_id=fill.trade_id.value,
        instrument_id=fill.instrument_id.value,
        ticker=fill.instrument_id.symbol.value,
        side="BUY" if fill.is_buy else "SELL",
        quantity=float(fill.last_qty),
        price=float(fill.last_px),
        commission=float(fill.commission.as_double()) if fill.commission is not None else None,
        liquidity_side=liquidity_side_to_str(fill.liquidity_side),
        signal_id=signal,
        role=role,
    )


class OrderRecorder(Actor):
    """Journals every order and fill of the node (module docstring). ``sink``: anything with
    ``run_id``, ``record_order(OrderRecord)`` / ``record_fill(FillRecord)`` and, for
    ``buffered``, ``record_orders([...])`` / ``record_fills([...])`` (``JournalSink``).

    ``buffered`` (backtests): keep only each order's latest row and write the rows in bulk when
    ``max_buffered`` orders are waiting, on stop, and on ``flush()`` (the runner calls it once the
    run is over, so order events of the engine's own shutdown are included). Unbuffered (live):
    every event is queued to the sink as it happens, so the dashboard sees working orders at once.
    """

    def __init__(self, config: OrderRecorderConfig | None = None, *, sink: Any, buffered: bool = False,
                 max_buffered: int = 2000) -> None:
        super().__init__(config or OrderRecorderConfig())
        self.sink = sink
        self.run_id: str = sink.run_id
        self.buffered = buffered
        self.max_buffered = max_buffered
        self._orders: dict[str, OrderRecord] = {}
        self._fills: list[FillRecord] = []
        self.orders_recorded = 0  # order events recorded
        self.fills_recorded = 0
        self.errors: list[str] = []

    def on_start(self) -> None:
        self.msgbus.subscribe(topic=ORDER_EVENTS_TOPIC, handler=self.on_order_event)

    def on_stop(self) -> None:
        self.flush()  # still subscribed: events of the shutdown are caught by the next flush()

    def on_dispose(self) -> None:
        self.flush()
        if self.msgbus.is_subscribed(topic=ORDER_EVENTS_TOPIC, handler=self.on_order_event):
            self.msgbus.unsubscribe(topic=ORDER_EVENTS_TOPIC, handler=self.on_order_event)

    def flush(self) -> None:
        """Hand the buffered rows to the sink (no-op when unbuffered or empty)."""
        if self._orders:
            orders, self._orders = list(self._orders.values()), {}
            self.sink.record_orders(orders)
        if self._fills:
            fills, self._fills = self._fills, []
            self.sink.record_fills(fills)

    def on_order_event(self, event: Any) -> None:
        try:
            order = self.cache.order(event.client_order_id)
            rec = order_record(order, event, self.run_id) if order is not None else None
            fill = fill_record(event, order, self.run_id) if type(event).__name__ == "OrderFilled" else None
            if self.buffered:
                if rec is not None:
                    self._orders[rec.client_order_id] = rec
                if fill is not None:
                    self._fills.append(fill)
                if len(self._orders) >= self.max_buffered:
                    self.flush()
            else:
                if rec is not None:
                    self.sink.record_order(rec)
                if fill is not None:
                    self.sink.record_fill(fill)
            self.orders_recorded += rec is not None
            self.fills_recorded += fill is not None
        except Exception as e:  # noqa: BLE001 - journaling must never stop trading
            msg = f"order journal: {type(event).__name__} of {getattr(event, 'client_order_id', '?')} " \
                  f"not recorded: {e}"
            self.errors.append(msg)
            self.log.error(msg)


__all__ = ["ORDER_EVENTS_TOPIC", "OrderRecorder", "OrderRecorderConfig", "fill_record", "order_record",
           "parse_tags"]
