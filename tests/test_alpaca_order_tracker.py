"""The Alpaca order tracker (adapters/alpaca/order_tracker.py) on its own: no server, no engine.

Every trade_updates event from every state an order can be in, duplicate fills, replace chains,
bracket legs, held-back events of in-flight submissions, reconnect recovery, and the in-doubt
cases (a submission whose answer was lost; a rejection followed by a sign of the order at Alpaca).
"""

from __future__ import annotations

import itertools
from decimal import Decimal
from types import SimpleNamespace

import msgspec
import pytest
from nautilus_trader.common.component import TestClock
from nautilus_trader.common.factories import OrderFactory
from nautilus_trader.model.enums import OrderSide
from nautilus_trader.model.identifiers import InstrumentId, StrategyId, TradeId, TraderId
from nautilus_trader.model.objects import Price, Quantity

from adapters.alpaca import order_tracker as ot
from adapters.alpaca.order_tracker import OrderPhase, OrderTracker
from adapters.alpaca.parsing import AlpacaFillActivity, AlpacaOrder, AlpacaTradeUpdate, decode, decode_trade_update

AAPL = InstrumentId.from_str("AAPL.ALPACA")
NOW = 1_772_463_600_000_000_000  # 2026-03-02 15:00 UTC
T1 = "2026-03-02T15:00:01.123456789Z"
_exec_ids = itertools.count(1)

ALL_EVENTS = ["new", "accepted", "pending_new", "held", "accepted_for_bidding", "partial_fill", "fill",
              "canceled", "expired", "rejected", "replaced", "pending_cancel", "pending_replace",
              "done_for_day", "calculated", "stopped", "suspended", "restated", "trade_bust",
              "order_replace_rejected", "order_cancel_rejected"]
# the Alpaca order status that comes with each event
STATUS_OF = {"new": "new", "accepted": "accepted", "pending_new": "pending_new", "held": "held",
             "accepted_for_bidding": "accepted_for_bidding", "partial_fill": "partially_filled",
             "fill": "filled", "canceled": "canceled", "expired": "expired", "rejected": "rejected",
             "replaced": "replaced", "pending_cancel": "pending_cancel", "pending_replace": "pending_replace",
             "done_for_day": "done_for_day", "calculated": "calculated", "stopped": "stopped",
             "suspended": "suspended", "restated": "new", "trade_bust": "new",
             "order_replace_rejected": "new", "order_cancel_rejected": "new"}


def nautilus_order(qty: int = 10):
    factory = OrderFactory(trader_id=TraderId("TESTER-001"), strategy_id=StrategyId("S-001"), clock=TestClock())
    return factory.limit(AAPL, OrderSide.BUY, Quantity.from_int(qty), Price.from_str("100.00"))


def alpaca_order(order, aid: str = "A1", status: str = "new", filled: str = "0", **kw) -> AlpacaOrder:
    body = {"id": aid, "client_order_id": order.client_order_id.value, "symbol": "AAPL", "side": "buy",
            "type": "limit", "order_type": "limit", "time_in_force": "day", "status": status,
            "qty": str(order.quantity), "filled_qty": filled, "limit_price": "100", "updated_at": T1,
            "created_at": T1, "submitted_at": T1}
    body.update(kw)
    return decode(body, AlpacaOrder)


def update(event: str, o: AlpacaOrder, qty: str | None = None, price: str = "99.5",
           exec_id: str | None = None) -> AlpacaTradeUpdate:
    data = {"event": event, "timestamp": T1, "order": msgspec_to_dict(o)}
    if event in ("fill", "partial_fill"):
        data.update(qty=qty, price=price, execution_id=exec_id or f"E{next(_exec_ids)}")
    if event in ("order_replace_rejected", "order_cancel_rejected"):
        data["reason"] = "too late"
    return decode_trade_update(data)


def msgspec_to_dict(o: AlpacaOrder) -> dict:
    return msgspec.to_builtins(o)


def kinds(decisions) -> list[str]:
    return [type(d).__name__ for d in decisions]


def event_update(event: str, order, st: ot.OrderState, aid: str = "A1") -> AlpacaTradeUpdate:
    """``event`` for the tracked order, consistent with what it has filled so far."""
    total = st.quantity
    if event == "fill":
        qty, filled = total - st.filled, total
    elif event == "partial_fill":
        qty, filled = Decimal(4), st.filled + 4
    else:
        qty, filled = None, st.filled
    extra = {"replaced_by": "A2"} if event == "replaced" else {}
    o = alpaca_order(order, aid, STATUS_OF[event], str(filled), **extra)
    return update(event, o, str(qty) if qty is not None else None)


# --------------------------------------------------------------------------------------------- #
# Start states
# --------------------------------------------------------------------------------------------- #

def start(state: str):
    """A tracker and an order in ``state``: pending / in_doubt / open / partially_filled / filled /
    canceled / expired / rejected / rejected_in_doubt."""
    order = nautilus_order()
    tracker = OrderTracker(find_order={order.client_order_id: order}.get)
    st = tracker.track(order)
    o = alpaca_order(order)
    if state == "in_doubt":
        tracker.mark_in_doubt([st])
    elif state in ("open", "partially_filled", "filled", "canceled", "expired"):
        tracker.on_submit_ack([st], o, NOW)
        if state == "partially_filled":
            tracker.on_trade_update(event_update("partial_fill", order, st), NOW)
        elif state != "open":
            tracker.on_trade_update(event_update({"filled": "fill", "canceled": "canceled",
                                                  "expired": "expired"}[state], order, st), NOW)
    elif state == "rejected":
        tracker.on_submit_ack([st], alpaca_order(order, status="rejected", reject_reason="no"), NOW)
    elif state == "rejected_in_doubt":
        tracker.reject([st], "retries used up", NOW, in_doubt=True)
    return tracker, order, st


EXPECTED_PHASE = {"pending": OrderPhase.PENDING, "in_doubt": OrderPhase.IN_DOUBT, "open": OrderPhase.OPEN,
                  "partially_filled": OrderPhase.OPEN, "filled": OrderPhase.FILLED,
                  "canceled": OrderPhase.CANCELED, "expired": OrderPhase.EXPIRED,
                  "rejected": OrderPhase.REJECTED, "rejected_in_doubt": OrderPhase.REJECTED}


@pytest.mark.parametrize("state", list(EXPECTED_PHASE))
def test_start_states(state):
    _tracker, _order, st = start(state)
    assert st.phase is EXPECTED_PHASE[state]
    assert st.in_doubt is (state in ("in_doubt", "rejected_in_doubt"))
    assert st.filled == {"partially_filled": 4, "filled": 10}.get(state, 0)


# --------------------------------------------------------------------------------------------- #
# Every event from every state
# --------------------------------------------------------------------------------------------- #

NOTE_EVENTS = {"pending_cancel", "pending_replace", "done_for_day", "calculated", "stopped", "suspended",
               "restated", "trade_bust"}


def expected(state: str, event: str) -> list[str]:
    """The decisions of ``event`` on an order in ``state``."""
    if state in ("rejected", "rejected_in_doubt"):
        if event in ("partial_fill", "fill"):
            return ["Note", "SendOrderReport"]  # Alpaca filled it: adopted as an external order
        if state == "rejected_in_doubt" and event != "rejected" and STATUS_OF[event] in ot.OPEN_ALPACA_STATUSES:
            return ["Note", "SendOrderReport"]  # Alpaca has it open after all: adopted
        return []  # after Alpaca's own rejection an open status is a stale event
    unaccepted = state in ("pending", "in_doubt")
    closed = state in ("filled", "canceled", "expired")
    if event in ("new", "accepted", "held", "accepted_for_bidding"):
        return ["Accepted"] if unaccepted else []
    if event == "pending_new":
        return []
    if event in ("partial_fill", "fill"):
        if state == "filled":
            return [] if event == "fill" else ["Filled"]  # a full fill of a filled order is its duplicate
        return (["Accepted"] if unaccepted else []) + ["Filled"]
    if event in ("canceled", "expired"):
        if closed:
            return []
        return (["Accepted"] if unaccepted else []) + [event.capitalize()]
    if event == "rejected":
        return [] if closed else ["Rejected"]
    if event == "replaced":
        return ["FetchReplacement"]
    if event == "order_replace_rejected":
        return ["ModifyRejected"]
    if event == "order_cancel_rejected":
        return ["CancelRejected"]
    assert event in NOTE_EVENTS
    return ["Note"]


@pytest.mark.parametrize("event", ALL_EVENTS)
@pytest.mark.parametrize("state", list(EXPECTED_PHASE))
def test_every_event_from_every_state(state, event):
    tracker, order, st = start(state)
    u = event_update(event, order, st)
    if state == "filled" and event == "fill":  # the same fill again (same execution and cum qty)
        u = update("fill", u.order, "10", exec_id=next(iter(tracker.seen_exec_ids)))
    decisions = tracker.on_trade_update(u, NOW)
    assert kinds(decisions) == expected(state, event), f"{state} + {event}"
    for d in decisions:
        if isinstance(d, ot.Filled):
            assert d.trade_id == u.execution_id and d.qty == u.qty and d.venue_order_id == "A1"
            assert d.ts == 1_772_463_601_123_456_789  # the event's timestamp, to the nanosecond
        if isinstance(d, ot.SendOrderReport):
            assert d.adopt and d.client_order_id is None and d.order.id == "A1"
    # phase after the event
    names = kinds(decisions)
    if "Filled" in names:
        assert st.phase is (OrderPhase.FILLED if st.filled >= st.quantity else
                            EXPECTED_PHASE[state] if state in ("canceled", "expired") else OrderPhase.OPEN)
    elif "Canceled" in names:
        assert st.phase is OrderPhase.CANCELED and st.accepted
    elif "Expired" in names:
        assert st.phase is OrderPhase.EXPIRED and st.accepted
    elif "Rejected" in names:
        assert st.phase is OrderPhase.REJECTED
    elif names == ["Accepted"]:
        assert st.phase is OrderPhase.OPEN and not st.in_doubt
    else:
        assert st.phase is EXPECTED_PHASE[state]


def test_events_without_order_id_are_ignored():
    assert decode_trade_update({"event": "new", "order": {}}) is None
    assert decode_trade_update({"event": "new"}) is None


# --------------------------------------------------------------------------------------------- #
# Fills exactly once
# --------------------------------------------------------------------------------------------- #

def test_duplicate_fill_events_are_applied_once():
    tracker, order, st = start("open")
    first = update("partial_fill", alpaca_order(order, status="partially_filled", filled="4"), "4", exec_id="X1")
    assert kinds(tracker.on_trade_update(first, NOW)) == ["Filled"]
    assert tracker.on_trade_update(first, NOW) == []  # same execution id
    # same Alpaca order and cumulative quantity under another id (e.g. a re-sent event)
    again = update("partial_fill", alpaca_order(order, status="partially_filled", filled="4"), "4", exec_id="X1b")
    assert tracker.on_trade_update(again, NOW) == []
    assert st.filled == 4 and st.phase is OrderPhase.OPEN
    last = update("fill", alpaca_order(order, status="filled", filled="10"), "6", exec_id="X2")
    assert kinds(tracker.on_trade_update(last, NOW)) == ["Filled"]
    assert st.filled == 10 and st.phase is OrderPhase.FILLED and st.filled_by_venue == {"A1": 10}


def test_fill_already_in_the_nautilus_order_is_not_applied_again():
    order = nautilus_order()
    holder = {"order": order}
    tracker = OrderTracker(find_order=lambda cid: holder["order"])
    st = tracker.track(order)
    tracker.on_submit_ack([st], alpaca_order(order), NOW)
    # reconciliation applied trade X9 to the Nautilus order meanwhile
    holder["order"] = SimpleNamespace(trade_ids=[TradeId("X9")])
    u = update("fill", alpaca_order(order, status="filled", filled="10"), "10", exec_id="X9")
    assert tracker.on_trade_update(u, NOW) == []
    assert "X9" in tracker.seen_exec_ids and st.filled == 0


def test_fill_without_qty_and_price_is_derived_from_the_order():
    tracker, order, st = start("open")
    o = alpaca_order(order, status="partially_filled", filled="3", filled_avg_price="99.25")
    (fill,) = tracker.on_trade_update(decode_trade_update({"event": "partial_fill", "order": msgspec_to_dict(o)}), NOW)
    assert fill.qty == 3 and fill.px == Decimal("99.25") and fill.trade_id == "A1-3"


def test_recovery_applies_missed_fills_once_and_detects_a_trailing_feed():
    tracker, order, st = start("open")
    seen = update("partial_fill", alpaca_order(order, status="partially_filled", filled="4"), "4", exec_id="X1")
    tracker.on_trade_update(seen, NOW)
    o = alpaca_order(order, status="filled", filled="10")
    acts = [decode({"id": "20260302150001123::X1", "order_id": "A1", "symbol": "AAPL", "side": "buy",
                    "qty": "4", "price": "99.5", "cum_qty": "4", "transaction_time": T1}, AlpacaFillActivity)]
    result = tracker.recover([o], acts, NOW)
    assert result.fills_applied == 0 and result.decisions == []
    assert result.short == [(st, o)]  # Alpaca says filled, the feed shows only 4
    acts.append(decode({"id": "20260302150002000::X2", "order_id": "A1", "symbol": "AAPL", "side": "buy",
                        "qty": "6", "price": "99.4", "cum_qty": "10", "transaction_time": T1}, AlpacaFillActivity))
    result = tracker.recover([o], acts, NOW)
    assert result.fills_applied == 1 and kinds(result.decisions) == ["Filled"] and result.short == []
    assert result.decisions[0].trade_id == "X2" and st.phase is OrderPhase.FILLED


def test_recovery_generates_the_missed_acceptance_and_cancel():
    tracker, order, st = start("pending")
    st.venue_id = None
    o = alpaca_order(order, status="canceled")
    result = tracker.recover([o], [], NOW)
    assert kinds(result.decisions) == ["Accepted", "Canceled"]
    assert st.phase is OrderPhase.CANCELED and st.venue_id == "A1"


# --------------------------------------------------------------------------------------------- #
# In doubt and late acceptance
# --------------------------------------------------------------------------------------------- #

def test_in_doubt_submission_is_not_rejected_and_resolves_on_a_fill():
    tracker, order, st = start("pending")
    tracker.mark_in_doubt([st])
    assert st.phase is OrderPhase.IN_DOUBT and not st.closed
    u = update("fill", alpaca_order(order, status="filled", filled="10"), "10")
    assert kinds(tracker.on_trade_update(u, NOW)) == ["Accepted", "Filled"]
    assert st.phase is OrderPhase.FILLED and not st.in_doubt


def test_fill_after_a_local_reject_is_adopted_not_applied():
    """Retries used up (the order verified absent after each attempt): rejected, as before, but
    in doubt; when Alpaca then shows the order, it is handed to the engine as an external order
    instead of a fill the REJECTED Nautilus order cannot take."""
    tracker, order, st = start("pending")
    (rej,) = tracker.reject([st], "Alpaca did not accept the order after 4 attempts", NOW, in_doubt=True)
    assert isinstance(rej, ot.Rejected) and st.phase is OrderPhase.REJECTED and st.rejected_in_doubt
    late_new = update("new", alpaca_order(order))
    note, report = tracker.on_trade_update(late_new, NOW)
    assert note.level == "error" and "rejected here after the retries were used up" in note.message
    assert report.adopt and report.client_order_id is None
    fill = update("fill", alpaca_order(order, status="filled", filled="10"), "10")
    decisions = tracker.on_trade_update(fill, NOW)
    assert kinds(decisions) == ["Note", "SendOrderReport"] and decisions[1].order.filled == 10
    assert st.filled == 0 and st.phase is OrderPhase.REJECTED  # never a Filled on the rejected order


def test_stale_new_after_alpacas_rejection_is_ignored():
    """The REST answer said rejected; the stream's earlier 'new' arrives afterwards."""
    tracker, order, st = start("rejected")
    assert tracker.on_trade_update(update("new", alpaca_order(order)), NOW) == []
    assert tracker.on_trade_update(update("rejected", alpaca_order(order, status="rejected")), NOW) == []
    assert st.phase is OrderPhase.REJECTED and not st.in_doubt


def test_reject_is_not_repeated():
    tracker, order, st = start("pending")
    assert len(tracker.reject([st], "no", NOW)) == 1
    assert tracker.reject([st], "no", NOW) == []
    assert tracker.on_trade_update(update("rejected", alpaca_order(order, status="rejected")), NOW) == []


# --------------------------------------------------------------------------------------------- #
# Replace, brackets, unknown orders
# --------------------------------------------------------------------------------------------- #

def test_replacement_keeps_the_client_order_id_and_ignores_the_old_ids_close():
    tracker, order, st = start("open")
    tracker.on_trade_update(update("partial_fill", alpaca_order(order, status="partially_filled", filled="4"), "4"),
                            NOW)
    tracker.remember(alpaca_order(order, status="replaced", filled="4", replaced_by="A2"))
    new = alpaca_order(order, "A2", "new", "0", client_order_id=f"{order.client_order_id.value}-R1",
                       replaces="A1", qty="8", limit_price="101")
    (upd,) = tracker.on_trade_update(update("new", new), NOW)
    assert isinstance(upd, ot.Updated) and upd.venue_order_id == "A2"
    assert upd.quantity == 12 and upd.limit_price == 101  # 4 filled + 8 working
    assert st.venue_id == "A2" and st.old_venue_ids == {"A1"} and st.replace_count == 1
    old_closed = update("canceled", alpaca_order(order, status="canceled", filled="4"))
    assert tracker.on_trade_update(old_closed, NOW) == []
    assert tracker.on_trade_update(update("replaced", alpaca_order(order, status="replaced",
                                                                   replaced_by="A2")), NOW) == []
    assert tracker.resolve(new) is st and st.phase is OrderPhase.OPEN


def test_replace_body():
    tracker, _order, st = start("partially_filled")
    assert tracker.replace_body(st, Decimal(12), Decimal("101.5"), None) == (
        {"qty": "8", "limit_price": "101.5"}, None)
    assert tracker.replace_body(st, Decimal(4), None, None) == (None, "new quantity not above the filled quantity")
    tracker, _order, st = start("filled")
    assert tracker.replace_body(st, None, Decimal(1), None) == (None, "order not open at Alpaca")


def test_bracket_legs_are_bound_by_type():
    factory = OrderFactory(trader_id=TraderId("TESTER-001"), strategy_id=StrategyId("S-001"), clock=TestClock())
    bracket = factory.bracket(AAPL, OrderSide.BUY, Quantity.from_int(10), tp_price=Price.from_str("110.00"),
                              sl_trigger_price=Price.from_str("90.00"))
    entry, sl, tp = bracket.orders
    tracker = OrderTracker()
    states = [tracker.track(o) for o in (entry, tp, sl)]
    ack = alpaca_order(entry, "P1", "new", order_class="bracket", legs=[
        {"id": "L-stop", "symbol": "AAPL", "type": "stop", "status": "held", "qty": "10"},
        {"id": "L-tp", "symbol": "AAPL", "type": "limit", "status": "held", "qty": "10"}])
    decisions = tracker.on_submit_ack(states, ack, NOW)
    assert [(type(d).__name__, d.state.client_order_id, d.venue_order_id) for d in decisions] == [
        ("Accepted", entry.client_order_id, "P1"), ("Accepted", tp.client_order_id, "L-tp"),
        ("Accepted", sl.client_order_id, "L-stop")]
    assert decisions[0].ts == 1_772_463_601_123_456_789  # submitted_at


def test_unknown_order_events_wait_for_in_flight_submissions_then_are_external():
    tracker = OrderTracker()
    other = nautilus_order()
    o = alpaca_order(other, "Z1", client_order_id="placed-elsewhere-R2")
    tracker.begin_submit()
    assert tracker.on_trade_update(update("new", o), NOW) == []
    (held,) = tracker.end_submit()
    (report,) = tracker.on_trade_update(held, NOW, defer=False)
    assert isinstance(report, ot.SendOrderReport) and not report.adopt
    assert report.client_order_id.value == "placed-elsewhere"  # the root of a replace chain
    assert tracker.on_trade_update(update("replaced", alpaca_order(other, "Z0", "replaced")), NOW) == []


def test_order_known_only_to_the_cache_is_tracked_on_first_sight():
    order = nautilus_order()
    tracker = OrderTracker(find_order={order.client_order_id: order}.get)
    assert tracker.states == {}
    (acc,) = tracker.on_trade_update(update("new", alpaca_order(order)), NOW)
    assert isinstance(acc, ot.Accepted) and acc.state is tracker.states[order.client_order_id]
