"""The Alpaca order state machine, pure: no I/O, no Nautilus engine calls.

``OrderTracker`` maps what Alpaca says about an order — a ``trade_updates`` event, the answer to
a submission, the orders and FILL activities re-read after a reconnect — to *decisions*: the
Nautilus order events to generate (``Accepted``, ``Filled``, ``Updated``, ``Canceled``,
``Expired``, ``Rejected``, ``ModifyRejected``, ``CancelRejected``) and the few things the client
must do (``FetchReplacement``, ``SendOrderReport``, ``Note``). The execution client generates
them in order; nothing here touches the network or the engine.

What it knows per Nautilus order is an ``OrderState`` (updated at once, unlike the cache's order
objects, which change only when the engine has processed the events). Orders it has not seen yet
are looked up through the two functions given to it (the cache's, in the client).

Rules:

* **Acceptance**: ``new`` / ``accepted`` / ``held`` / ``accepted_for_bidding`` accept the order;
  a fill, cancel or expiry of an order not yet accepted accepts it first; ``pending_new`` only
  binds the Alpaca id.
* **Fills exactly once**: by execution id, and by (Alpaca order id, cumulative quantity), and by
  the trade ids the Nautilus order already holds (fills applied by reconciliation).
* **Replace**: an order that ``replaces`` the tracked one re-points the same ``ClientOrderId``
  to the new Alpaca id (``Updated`` with the new venue order id; the Nautilus quantity is what
  was filled before plus the replacement's size). Cancels / expiries of replaced ids are ignored.
* **Brackets**: Alpaca's legs are bound to the Nautilus children by type (limit = take-profit,
  stop = stop loss).
* **In doubt**: a submission whose answer was lost and which Alpaca could not be asked about
  stays SUBMITTED in Nautilus (phase ``IN_DOUBT``) until trade_updates or reconciliation tell.
  A submission whose retries were used up (the order verified absent after each attempt) is
  rejected, as before, but marked ``rejected_in_doubt``. A later sign of the order at Alpaca
  ("late acceptance": after a rejection in doubt, the order open or filled; after Alpaca's own
  rejection, fills only) cannot be applied to a REJECTED Nautilus order: the tracker hands the
  Alpaca order to the engine as an external order report (``SendOrderReport(adopt=True)``) so
  the position follows the broker.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from enum import Enum
from typing import Any

from nautilus_trader.model.enums import OrderSide, OrderStatus, OrderType, TimeInForce
from nautilus_trader.model.identifiers import ClientOrderId, InstrumentId, TradeId, VenueOrderId

from .parsing import (
    OPEN_ALPACA_STATUSES,
    AlpacaFillActivity,
    AlpacaOrder,
    AlpacaTradeUpdate,
    fmt_decimal,
    leg_matches,
    split_client_order_id,
    ts_or,
)

ZERO = Decimal(0)
UNKNOWN_VENUE_ORDER_ID = "UNKNOWN"
ACCEPTING_EVENTS = ("new", "accepted", "held", "accepted_for_bidding")


class OrderPhase(Enum):
    PENDING = "pending"      # sent; Alpaca's answer not in yet
    IN_DOUBT = "in_doubt"    # sent; the answer was lost and Alpaca could not be asked
    OPEN = "open"            # Alpaca has it (working, possibly partially filled)
    FILLED = "filled"
    CANCELED = "canceled"
    EXPIRED = "expired"
    REJECTED = "rejected"


TERMINAL_PHASES = frozenset({OrderPhase.FILLED, OrderPhase.CANCELED, OrderPhase.EXPIRED, OrderPhase.REJECTED})

_PHASE_OF_STATUS = {
    OrderStatus.FILLED: OrderPhase.FILLED,
    OrderStatus.CANCELED: OrderPhase.CANCELED,
    OrderStatus.EXPIRED: OrderPhase.EXPIRED,
    OrderStatus.REJECTED: OrderPhase.REJECTED,
    OrderStatus.DENIED: OrderPhase.REJECTED,
}
_NOT_ACCEPTED = {OrderStatus.INITIALIZED, OrderStatus.SUBMITTED, OrderStatus.DENIED, OrderStatus.EMULATED,
                 OrderStatus.RELEASED}


@dataclass
class OrderState:
    """What the tracker knows about one Nautilus order."""

    client_order_id: ClientOrderId
    strategy_id: Any
    instrument_id: InstrumentId
    side: OrderSide
    order_type: OrderType
    time_in_force: TimeInForce
    quantity: Decimal
    filled: Decimal = ZERO
    venue_id: str | None = None
    old_venue_ids: set[str] = field(default_factory=set)
    phase: OrderPhase = OrderPhase.PENDING
    accepted: bool = False  # Alpaca confirmed it at some point (OrderAccepted generated)
    rejected_in_doubt: bool = False  # REJECTED here without Alpaca's word (retries used up)
    replace_count: int = 0
    replace_pending: bool = False  # a PATCH of ours is in flight (it maps the replacement itself)
    children: list[OrderState] = field(default_factory=list)  # bracket / OTO legs (parent only)
    filled_by_venue: dict[str, Decimal] = field(default_factory=dict)  # fills applied per Alpaca id

    @property
    def closed(self) -> bool:
        return self.phase in TERMINAL_PHASES

    @property
    def in_doubt(self) -> bool:
        return self.phase is OrderPhase.IN_DOUBT or self.rejected_in_doubt

    @classmethod
    def from_order(cls, order: Any) -> OrderState:
        """From a Nautilus ``Order`` (or anything with its attributes)."""
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
        st.phase = _PHASE_OF_STATUS.get(order.status, OrderPhase.OPEN if st.accepted else OrderPhase.PENDING)
        if st.venue_id and st.filled > 0:
            st.filled_by_venue[st.venue_id] = st.filled
        return st


# -- Decisions -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Accepted:
    state: OrderState
    venue_order_id: str
    ts: int


@dataclass(frozen=True)
class Filled:
    state: OrderState
    venue_order_id: str
    trade_id: str
    qty: Decimal
    px: Decimal
    ts: int
    alpaca_order_id: str  # the Alpaca order that filled (an old id of a replace chain, possibly)


@dataclass(frozen=True)
class Updated:
    state: OrderState
    venue_order_id: str
    quantity: Decimal
    limit_price: Decimal | None
    stop_price: Decimal | None
    ts: int


@dataclass(frozen=True)
class Canceled:
    state: OrderState
    venue_order_id: str
    ts: int


@dataclass(frozen=True)
class Expired:
    state: OrderState
    venue_order_id: str
    ts: int


@dataclass(frozen=True)
class Rejected:
    state: OrderState
    reason: str
    ts: int


@dataclass(frozen=True)
class ModifyRejected:
    state: OrderState
    venue_order_id: str
    reason: str
    ts: int


@dataclass(frozen=True)
class CancelRejected:
    state: OrderState
    venue_order_id: str
    reason: str
    ts: int


@dataclass(frozen=True)
class FetchReplacement:
    """Alpaca replaced the order by ``new_id``, not seen yet: read it and ``apply_replacement``."""

    state: OrderState
    new_id: str
    ts: int


@dataclass(frozen=True)
class SendOrderReport:
    """Hand ``order`` to the engine as an ``OrderStatusReport``: an order Nautilus does not know
    (``client_order_id`` from Alpaca's), or, ``adopt``, one Nautilus rejected but Alpaca has
    (``client_order_id`` None: the engine takes it as an external order)."""

    order: AlpacaOrder
    client_order_id: ClientOrderId | None
    adopt: bool = False


@dataclass(frozen=True)
class Note:
    message: str
    level: str = "info"  # info / warning / error


Decision = (Accepted | Filled | Updated | Canceled | Expired | Rejected | ModifyRejected | CancelRejected
            | FetchReplacement | SendOrderReport | Note)


@dataclass
class Recovery:
    """What the re-query after a reconnect decided. ``short``: orders whose Alpaca filled
    quantity exceeds the fills the activities explain (the feed can trail)."""

    decisions: list[Decision]
    short: list[tuple[OrderState, AlpacaOrder]]
    fills_applied: int


# -- The tracker -----------------------------------------------------------------------------------

class OrderTracker:
    """Alpaca order state machine (see the module docstring).

    Parameters
    ----------
    find_order : ``ClientOrderId`` → the Nautilus order (or None); orders not tracked yet.
    find_client_order_id : ``VenueOrderId`` → the ``ClientOrderId`` it belongs to (or None).
    """

    def __init__(self, find_order: Callable[[ClientOrderId], Any] | None = None,
                 find_client_order_id: Callable[[VenueOrderId], ClientOrderId | None] | None = None) -> None:
        self._find_order = find_order or (lambda _cid: None)
        self._find_client_order_id = find_client_order_id or (lambda _vid: None)
        self.states: dict[ClientOrderId, OrderState] = {}
        self.by_venue: dict[str, OrderState] = {}
        self.seen_exec_ids: set[str] = set()
        # second dedupe key, independent of id formats: (Alpaca order id, its cumulative filled qty)
        self.seen_fill_keys: set[tuple[str, Decimal]] = set()
        self.orders: dict[str, AlpacaOrder] = {}  # Alpaca order id → last seen (chains, reports)
        self._inflight_submits = 0
        self._deferred: list[AlpacaTradeUpdate] = []

    # -- Lookup ------------------------------------------------------------------------------------

    def track(self, order: Any) -> OrderState:
        """The state of a Nautilus order (created from the order on first sight)."""
        st = self.states.get(order.client_order_id)
        if st is None:
            st = OrderState.from_order(order)
            self.states[order.client_order_id] = st
            if st.venue_id:
                self.by_venue[st.venue_id] = st
            for tid in order.trade_ids:
                self.seen_exec_ids.add(tid.value)
        return st

    def state_for(self, coid: str | ClientOrderId | None) -> OrderState | None:
        if coid is None:
            return None
        cid = coid if isinstance(coid, ClientOrderId) else ClientOrderId(coid)
        st = self.states.get(cid)
        if st is not None:
            return st
        order = self._find_order(cid)
        return None if order is None else self.track(order)

    def resolve(self, o: AlpacaOrder) -> OrderState | None:
        """The tracked order an Alpaca order belongs to: by Alpaca id, by client_order_id (a
        replacement's ``<id>-R<n>`` included), by the order it replaces, by the cache's index."""
        aid = o.id
        if aid and aid in self.by_venue:
            return self.by_venue[aid]
        root, _n = split_client_order_id(o.client_order_id)
        st = self.state_for(root) if root else None
        if st is None and o.client_order_id and root != o.client_order_id:
            st = self.state_for(o.client_order_id)
        if st is None and o.replaces:
            st = self.by_venue.get(o.replaces)
        if st is None and aid:
            cid = self._find_client_order_id(VenueOrderId(aid))
            if cid is not None:
                st = self.state_for(cid)
        return st

    def knows_venue_id(self, aid: str) -> bool:
        return aid in self.by_venue

    def remember(self, o: AlpacaOrder) -> None:
        self.orders[o.id] = o

    def register(self, st: OrderState, o: AlpacaOrder) -> None:
        """Bind an Alpaca order to ``st`` (its first id, or a replacement / leg)."""
        aid = o.id
        self.orders[aid] = o
        if st.venue_id is None:
            st.venue_id = aid
            self.by_venue[aid] = st
        elif aid != st.venue_id and aid not in st.old_venue_ids:
            self.by_venue[aid] = st

    def root_client_order_id(self, chain: list[AlpacaOrder]) -> ClientOrderId | None:
        """The ``ClientOrderId`` of a replace chain (oldest first)."""
        for o in chain:
            st = self.by_venue.get(o.id)
            if st is not None:
                return st.client_order_id
        root, _n = split_client_order_id(chain[0].client_order_id)
        return ClientOrderId(root) if root else None

    @staticmethod
    def venue(st: OrderState, fallback: str | None = None) -> str:
        return st.venue_id or fallback or UNKNOWN_VENUE_ORDER_ID

    # -- Transitions -------------------------------------------------------------------------------

    def accept(self, st: OrderState, o: AlpacaOrder, ts: int) -> list[Decision]:
        if st.venue_id is None:
            self.register(st, o)
        if st.accepted or st.closed:
            return []
        st.accepted = True
        st.phase = OrderPhase.OPEN
        return [Accepted(st, self.venue(st, o.id), ts)]

    def apply_fill(self, st: OrderState, exec_id: str, qty: Decimal, px: Decimal, ts: int,
                   alpaca_order_id: str | None = None, cum_qty: Decimal | None = None) -> list[Decision]:
        """One fill, once (keys: execution id, (Alpaca order id, cumulative qty), the trade ids
        of the Nautilus order)."""
        if not exec_id or exec_id in self.seen_exec_ids or qty <= 0:
            return []
        key = (alpaca_order_id, cum_qty) if alpaca_order_id and cum_qty is not None else None
        if key is not None and key in self.seen_fill_keys:
            self.seen_exec_ids.add(exec_id)
            return []
        order = self._find_order(st.client_order_id)
        if order is not None and TradeId(exec_id) in order.trade_ids:
            self.seen_exec_ids.add(exec_id)
            return []
        self.seen_exec_ids.add(exec_id)
        if key is not None:
            self.seen_fill_keys.add(key)
        if self._inferred_qty(order, st) >= qty:
            # Already in the order: NautilusTrader's in-flight check reconciled it from an
            # OrderStatusReport (an inferred fill, with a trade id of its own) before this
            # execution arrived. Applying it again would overstate the position (issue #13 soak).
            st.filled += qty
            by = alpaca_order_id or st.venue_id or ""
            st.filled_by_venue[by] = st.filled_by_venue.get(by, ZERO) + qty
            if st.filled >= st.quantity:
                st.phase = OrderPhase.FILLED
            return []
        out: list[Decision] = []
        if not st.accepted and not st.closed:
            st.accepted = True
            st.phase = OrderPhase.OPEN
            out.append(Accepted(st, self.venue(st, alpaca_order_id), ts))
        st.filled += qty
        by = alpaca_order_id or st.venue_id or ""
        st.filled_by_venue[by] = st.filled_by_venue.get(by, ZERO) + qty
        if st.filled >= st.quantity:
            st.phase = OrderPhase.FILLED
        out.append(Filled(st, self.venue(st, alpaca_order_id), exec_id, qty, px, ts,
                          alpaca_order_id or st.venue_id or ""))
        return out

    @staticmethod
    def _inferred_qty(order: Any, st: OrderState) -> Decimal:
        """What the Nautilus order has filled beyond the fills this tracker emitted (fills it
        inferred itself in reconciliation); 0 when unknown. Fills emitted but not yet processed
        by the engine only make this smaller, so a real execution is never taken for one."""
        filled = getattr(order, "filled_qty", None) if order is not None else None
        if filled is None:
            return ZERO
        return Decimal(str(filled)) - st.filled

    def close(self, st: OrderState, phase: OrderPhase, ts: int, reason: str = "") -> list[Decision]:
        """CANCELED / EXPIRED (accepting the order first if needed) or REJECTED; once."""
        if st.closed:
            return []
        out: list[Decision] = []
        venue = self.venue(st)
        if phase in (OrderPhase.CANCELED, OrderPhase.EXPIRED) and not st.accepted:
            st.accepted = True
            out.append(Accepted(st, venue, ts))
        st.phase = phase
        if phase is OrderPhase.CANCELED:
            out.append(Canceled(st, venue, ts))
        elif phase is OrderPhase.EXPIRED:
            out.append(Expired(st, venue, ts))
        elif phase is OrderPhase.REJECTED:
            out.append(Rejected(st, reason or "rejected by Alpaca", ts))
        return out

    def apply_replacement(self, st: OrderState, n: AlpacaOrder, ts: int) -> list[Decision]:
        """Alpaca order ``n`` replaced ``st``'s current order: same ClientOrderId, new venue id.

        Alpaca's replacement starts unfilled, so the Nautilus quantity becomes
        ``quantity - (old.qty - old.filled_qty) + n.qty`` with the replaced order's final fills
        (from the 'replaced' event, a GET after the PATCH, or an order listing)."""
        nid = n.id
        if nid == st.venue_id or nid in st.old_venue_ids:
            return []
        self.orders[nid] = n
        old_id = st.venue_id
        if st.venue_id:
            st.old_venue_ids.add(st.venue_id)
        st.venue_id = nid
        self.by_venue[nid] = st
        _root, count = split_client_order_id(n.client_order_id)
        st.replace_count = max(st.replace_count, count)
        n_qty = n.qty or ZERO
        old = self.orders.get(old_id) if old_id else None
        if old is not None and old.qty is not None:
            old_filled = max(old.filled, st.filled_by_venue.get(old_id, ZERO))
            st.quantity = st.quantity - (old.qty - old_filled) + n_qty
        else:  # best effort: everything filled so far plus the replacement's size
            st.quantity = st.filled + n_qty
        st.quantity = max(st.quantity, st.filled)
        if st.closed:
            return []
        if not st.accepted:
            st.accepted = True
            st.phase = OrderPhase.OPEN
            return [Accepted(st, nid, ts)]
        return [Updated(st, nid, st.quantity, n.limit_price, n.stop_price, ts)]

    def map_legs(self, parent: OrderState, o: AlpacaOrder, ts: int) -> list[Decision]:
        """Bind Alpaca's bracket / OTO legs (own ids, Alpaca-made client_order_ids) to the
        Nautilus child orders by type: the limit leg is the take-profit, the stop leg the stop."""
        legs = [leg for leg in (o.legs or []) if leg.id not in self.by_venue]
        out: list[Decision] = []
        for st in parent.children:
            if st.venue_id is not None:
                continue
            for leg in legs:
                if leg_matches(leg, st.order_type):
                    legs.remove(leg)
                    self.register(st, leg)
                    if leg.status not in ("canceled", "expired", "rejected"):
                        out += self.accept(st, leg, ts)
                    break
        return out

    def _late_activity(self, st: OrderState, o: AlpacaOrder, what: str) -> list[Decision]:
        """Alpaca shows an order that Nautilus holds as REJECTED (late acceptance): fills, or,
        after a rejection in doubt, the order open. (After Alpaca's own rejection an open status
        is a stale event, e.g. a 'new' arriving after the REST answer said rejected.)"""
        if not (o.filled > 0 or (st.rejected_in_doubt and o.status in OPEN_ALPACA_STATUSES)):
            return []
        doubt = " (rejected here after the retries were used up)" if st.rejected_in_doubt else ""
        return [Note(f"{st.client_order_id!r} is REJECTED{doubt} but Alpaca has it ({what}, status "
                     f"{o.status}, filled {fmt_decimal(o.filled)}): handing it to the engine as an "
                     "external order", "error"),
                SendOrderReport(o, None, adopt=True)]

    # -- trade_updates -----------------------------------------------------------------------------

    def on_trade_update(self, update: AlpacaTradeUpdate, now_ns: int, *, defer: bool = True) -> list[Decision]:
        """The decisions for one trade_updates event (``now_ns``: when it carries no time).
        Events of unknown orders wait while one of our submissions is in flight (a bracket leg
        may show before the POST answer that names it); otherwise they are external orders."""
        event = update.event_name
        o = update.order
        if o is None or not o.id:
            return []
        st = self.resolve(o)
        if st is None:
            if defer and self._inflight_submits > 0:
                self._deferred.append(update)
                return []
            if o.status == "replaced":
                return []
            return [SendOrderReport(o, self.root_client_order_id([o]))]
        ts = ts_or(update.timestamp or o.updated_at, now_ns)
        if st.phase is OrderPhase.REJECTED and event != "rejected":
            self.orders[o.id] = o
            return self._late_activity(st, o, event)
        self.orders[o.id] = o
        out: list[Decision] = []
        if st.children and o.legs:
            out += self.map_legs(st, o, ts)

        # A replacement order (new id) of one we track: re-point the ClientOrderId first.
        if o.id != st.venue_id and o.id not in st.old_venue_ids and st.venue_id is not None:
            if o.replaces and event != "replaced":
                out += self.apply_replacement(st, o, ts)

        if event in ACCEPTING_EVENTS:
            out += self.accept(st, o, ts)
        elif event == "pending_new":
            self.register(st, o)
        elif event in ("fill", "partial_fill"):
            if st.venue_id is None:
                self.register(st, o)
            qty, px, exec_id = update.qty, update.price, update.execution_id
            if qty is None or px is None:  # old API versions: derive from the order
                qty = o.filled - st.filled_by_venue.get(o.id, ZERO)
                px = o.filled_avg_price or ZERO
            if not exec_id:
                exec_id = f"{o.id}-{o.filled_qty}"
            out += self.apply_fill(st, str(exec_id), qty, px, ts, o.id, o.filled_qty)
        elif event in ("canceled", "expired"):
            if o.id not in st.old_venue_ids:
                if st.venue_id is None:
                    self.register(st, o)
                out += self.close(st, OrderPhase.CANCELED if event == "canceled" else OrderPhase.EXPIRED, ts)
        elif event == "rejected":
            out += self.close(st, OrderPhase.REJECTED, ts, o.reject_reason or update.reason or "rejected by Alpaca")
        elif event == "replaced":
            new_id = o.replaced_by
            if new_id and new_id not in self.by_venue and not st.replace_pending:
                out.append(FetchReplacement(st, new_id, ts))
        elif event == "order_replace_rejected":
            out.append(ModifyRejected(st, self.venue(st), update.reason or "replace rejected", ts))
        elif event == "order_cancel_rejected":
            out.append(CancelRejected(st, self.venue(st), update.reason or "cancel rejected", ts))
        elif event == "done_for_day":
            out.append(Note(f"{st.client_order_id!r}: done for the day at Alpaca (no further fills today)"))
        else:  # pending_cancel, pending_replace, calculated, stopped, suspended, restated, trade_bust, ...
            out.append(Note(f"{st.client_order_id!r}: Alpaca trade update '{event}'"))
        return out

    # -- Submission --------------------------------------------------------------------------------

    def begin_submit(self) -> None:
        self._inflight_submits += 1

    def end_submit(self) -> list[AlpacaTradeUpdate]:
        """The events held back while submissions were in flight (when the last one ends): to
        be handled again with ``defer=False`` (now mapped, or really external)."""
        self._inflight_submits -= 1
        if self._inflight_submits == 0 and self._deferred:
            deferred, self._deferred = self._deferred, []
            return deferred
        return []

    def reject(self, states: list[OrderState], reason: str, ts: int, *, in_doubt: bool = False) -> list[Decision]:
        """Reject orders that were not placed. ``in_doubt``: without Alpaca's word (retries used
        up), so a later sign of the order is adopted (see ``_late_activity``)."""
        out: list[Decision] = []
        for st in states:
            if not st.closed:
                st.phase = OrderPhase.REJECTED
                st.rejected_in_doubt = in_doubt
                out.append(Rejected(st, reason, ts))
        return out

    def mark_in_doubt(self, states: list[OrderState]) -> None:
        """The submission's outcome is unknown: the orders stay SUBMITTED (never resubmitted)."""
        for st in states:
            if not st.accepted and not st.closed:
                st.phase = OrderPhase.IN_DOUBT

    def on_submit_ack(self, states: list[OrderState], ack: AlpacaOrder, now_ns: int) -> list[Decision]:
        """Alpaca's answer to a submission (``states``: the entry, then the bracket children in
        leg order), or the order found by client_order_id after a lost answer."""
        primary = states[0]
        ts = ts_or(ack.submitted_at or ack.created_at, now_ns)
        out: list[Decision] = []
        if ack.status == "replaced" and ack.replaced_by:
            # found by client_order_id after it had already been replaced
            self.register(primary, ack)
            out += self.accept(primary, ack, ts)
            out.append(FetchReplacement(primary, ack.replaced_by, ts))
        elif ack.status == "rejected":
            self.register(primary, ack)
            out += self.close(primary, OrderPhase.REJECTED, ts, ack.reject_reason or "rejected by Alpaca")
        else:
            out += self.accept(primary, ack, ts)
        primary.children = list(states[1:])
        out += self.map_legs(primary, ack, ts)
        return out

    def replace_body(self, st: OrderState, quantity: Decimal | None, price: Decimal | None,
                     trigger_price: Decimal | None) -> tuple[dict | None, str | None]:
        """The ``PATCH`` body of a modify (Alpaca's ``qty`` is what is left to fill), or why not."""
        if st.venue_id is None or st.closed:
            return None, "order not open at Alpaca" if st.closed else "order not acknowledged by Alpaca yet"
        body: dict[str, Any] = {}
        if quantity is not None and quantity != st.quantity:
            remaining = quantity - st.filled
            if remaining <= 0:
                return None, "new quantity not above the filled quantity"
            body["qty"] = fmt_decimal(remaining)
        if price is not None:
            body["limit_price"] = fmt_decimal(price)
        if trigger_price is not None:
            body["stop_price"] = fmt_decimal(trigger_price)
        return body, None

    # -- Recovery after a reconnect ----------------------------------------------------------------

    def recover(self, orders: list[AlpacaOrder], fills: list[AlpacaFillActivity], now_ns: int) -> Recovery:
        """What the stream missed, from the re-read orders and FILL activities: orders first
        (acceptances, replacements), then fills in time order (deduplicated as always), then
        closes. An order showing more filled quantity than its fills explain is ``short``."""
        for o in orders:
            self.orders[o.id] = o
        out: list[Decision] = []
        relevant: list[tuple[OrderState, AlpacaOrder]] = []
        for o in sorted(orders, key=lambda x: x.created_at or ""):
            st = self.resolve(o)
            if st is None:
                continue
            if st.phase is OrderPhase.REJECTED:
                out += self._late_activity(st, o, "re-read after a reconnect")
                continue
            if st.venue_id is None:  # its answer was lost: bind the Alpaca order now
                self.register(st, o)
            relevant.append((st, o))
            ts = ts_or(o.updated_at, now_ns)
            if o.id != st.venue_id and o.id not in st.old_venue_ids and o.replaces and st.venue_id is not None:
                out += self.apply_replacement(st, o, ts)
            elif o.status in OPEN_ALPACA_STATUSES or o.status == "filled":
                out += self.accept(st, o, ts)
        applied = 0
        for act in sorted(fills, key=lambda a: a.transaction_time or ""):
            oid = act.order_id
            st = self.by_venue.get(oid) if oid else None
            if st is None and oid in self.orders:
                st = self.resolve(self.orders[oid])
            if st is None or st.phase is OrderPhase.REJECTED:
                continue
            decisions = self.apply_fill(st, act.execution_id, act.qty or ZERO, act.price or ZERO,
                                        ts_or(act.transaction_time, now_ns), oid, act.cum_qty)
            if decisions:
                applied += 1
                out += decisions
        short: list[tuple[OrderState, AlpacaOrder]] = []
        for st, o in relevant:
            if o.id != st.venue_id:
                continue
            alpaca_left = (o.qty or ZERO) - o.filled
            if st.quantity - st.filled > alpaca_left:
                short.append((st, o))  # filled at Alpaca, fill not seen yet
                continue
            ts = ts_or(o.updated_at, now_ns)
            if o.status == "canceled":
                out += self.close(st, OrderPhase.CANCELED, ts)
            elif o.status == "expired":
                out += self.close(st, OrderPhase.EXPIRED, ts)
            elif o.status == "rejected":
                out += self.close(st, OrderPhase.REJECTED, ts, "rejected by Alpaca")
        return Recovery(out, short, applied)


__all__ = [
    "TERMINAL_PHASES", "UNKNOWN_VENUE_ORDER_ID", "Accepted", "CancelRejected", "Canceled", "Decision",
    "Expired", "FetchReplacement", "Filled", "ModifyRejected", "Note", "OrderPhase", "OrderState",
    "OrderTracker", "Recovery", "Rejected", "SendOrderReport", "Updated",
]
