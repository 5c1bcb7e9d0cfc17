"""An execution Nautilus already applied as an *inferred* fill is not applied twice (issue #13 soak).

Seen in the compressed soak (seed 13, 09:35 New York): three POSTs got no answer in time, the
orders went in doubt, and NautilusTrader's in-flight check reconciled them from an
OrderStatusReport: the report's filled quantity became an inferred fill with a trade id of
Nautilus' own (a UUID). The broker's real execution then arrived on trade_updates with its own
id, and the tracker applied it as well: TSLA filled 5 at the broker and 10 in the node ("report.
filled_qty 5 < order.filled_qty 10 ... duplicate fills"), META's second fill was refused as an
overfill. The node then sized its stop and exit for 10 (refused: insufficient qty 5, 635
``exit_failed`` in one session) and held 5 TSLA unprotected across the close.

The tracker now also counts what the Nautilus order has filled beyond the fills it emitted itself:
that much of a new execution is already in the order.
"""

from __future__ import annotations

from decimal import Decimal
from types import SimpleNamespace

from nautilus_trader.model.identifiers import TradeId
from nautilus_trader.model.objects import Quantity

from adapters.alpaca.order_tracker import OrderPhase, OrderTracker
from tests.test_alpaca_order_tracker import NOW, alpaca_order, kinds, nautilus_order, update


def _open(qty: int = 10):
    order = nautilus_order(qty)
    # what the engine holds: the real order's trade ids / filled qty, or the inferred state below
    view = SimpleNamespace(trade_ids=[], filled_qty=Quantity.from_int(0))
    tracker = OrderTracker(find_order=lambda cid: view)
    st = tracker.track(order)
    tracker.on_submit_ack([st], alpaca_order(order), NOW)
    return tracker, order, st, view


def test_execution_already_inferred_by_reconciliation_is_not_applied_again():
    tracker, order, st, view = _open(10)
    view.trade_ids, view.filled_qty = [TradeId("5b0e3a8c-inferred")], Quantity.from_int(5)  # Nautilus inferred 5
    out = tracker.on_trade_update(update("partial_fill", alpaca_order(order, status="partially_filled", filled="5"),
                                         qty="5", exec_id="E-real-1"), NOW)
    assert "Filled" not in kinds(out)
    assert st.filled == Decimal(5)
    # the rest is new: applied
    out = tracker.on_trade_update(update("fill", alpaca_order(order, status="filled", filled="10"),
                                         qty="5", exec_id="E-real-2"), NOW)
    assert kinds(out).count("Filled") == 1 and st.filled == Decimal(10) and st.phase is OrderPhase.FILLED


def test_fills_the_engine_has_not_processed_yet_are_not_mistaken_for_inferred_ones():
    tracker, order, st, view = _open(10)
    out = tracker.on_trade_update(update("partial_fill", alpaca_order(order, status="partially_filled", filled="4"),
                                         qty="4", exec_id="E1"), NOW)
    assert kinds(out).count("Filled") == 1  # emitted; the engine's order still says 0 filled (queued)
    out = tracker.on_trade_update(update("partial_fill", alpaca_order(order, status="partially_filled", filled="8"),
                                         qty="4", exec_id="E2"), NOW)
    assert kinds(out).count("Filled") == 1 and st.filled == Decimal(8)


def test_an_earlier_execution_recovered_after_a_later_one_is_still_applied():
    tracker, order, st, view = _open(10)
    # the stream lost E1 (cum 4); E2 (cum 10) arrives and is applied by the engine
    tracker.on_trade_update(update("fill", alpaca_order(order, status="filled", filled="10"), qty="6",
                                   exec_id="E2"), NOW)
    view.trade_ids, view.filled_qty = [TradeId("E2")], Quantity.from_int(6)
    out = tracker.on_trade_update(update("partial_fill", alpaca_order(order, status="partially_filled", filled="4"),
                                         qty="4", exec_id="E1"), NOW)  # recovered late
    assert kinds(out).count("Filled") == 1 and st.filled == Decimal(10)
