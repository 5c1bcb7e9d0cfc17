"""Reconciliation reports from Alpaca's REST API: order status (a replace chain folded into the
report of its live order, under the chain's ``ClientOrderId``), fills (``FILL`` activities, with
the commission of ``fees``; fills of replaced orders belong to the chain's live order) and
positions. Alpaca orders read here are remembered by the ``OrderTracker`` (chains, later events).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from decimal import Decimal

from nautilus_trader.core.uuid import UUID4
from nautilus_trader.execution.reports import FillReport, OrderStatusReport, PositionStatusReport
from nautilus_trader.model.enums import OrderType, PositionSide
from nautilus_trader.model.identifiers import AccountId, ClientOrderId, InstrumentId, VenueOrderId
from nautilus_trader.model.instruments import Instrument

from .fees import fill_commission
from .http import AlpacaHttpClient, http_status
from .order_tracker import OrderTracker
from .parsing import (
    ORDER_TYPE_FROM_ALPACA,
    AlpacaOrder,
    instrument_id,
    make_qty,
    order_side_from_alpaca,
    parse_order_status_report,
    ts_or,
)

MAX_CHAIN = 20


class AlpacaReports:
    """Builds the reports the execution engine reconciles with.

    Parameters
    ----------
    http : the REST transport.
    tracker : the order tracker (known Alpaca orders, ``ClientOrderId`` of a chain).
    instrument : ``InstrumentId`` → the loaded instrument (or None).
    ensure_instruments : loads the instruments of these symbols.
    """

    def __init__(self, http: AlpacaHttpClient, tracker: OrderTracker,
                 instrument: Callable[[InstrumentId], Instrument | None],
                 ensure_instruments: Callable[[set[str]], Awaitable[None]]) -> None:
        self._http = http
        self._tracker = tracker
        self._instrument = instrument
        self._ensure_instruments = ensure_instruments

    async def _order(self, order_id: str) -> AlpacaOrder:
        o = self._tracker.orders.get(order_id)
        if o is None:
            o = await self._http.get_order(order_id)
            self._tracker.remember(o)
        return o

    async def chain(self, o: AlpacaOrder) -> list[AlpacaOrder]:
        """``o``'s replace chain, oldest first (``o`` last)."""
        chain = [o]
        for _ in range(MAX_CHAIN):
            if not chain[0].replaces:
                break
            try:
                chain.insert(0, await self._order(chain[0].replaces))
            except Exception:  # noqa: BLE001 - the chain so far
                break
        return chain

    def order_report(self, chain: list[AlpacaOrder], account_id: AccountId, ts_init: int,
                     client_order_id: ClientOrderId | None = None) -> OrderStatusReport | None:
        return parse_order_status_report(
            chain, account_id=account_id,
            client_order_id=client_order_id or self._tracker.root_client_order_id(chain),
            instrument=self._instrument(instrument_id(chain[-1].symbol)), ts_init=ts_init)

    async def order_status_report(self, account_id: AccountId, venue_order_id: VenueOrderId | None,
                                  client_order_id: ClientOrderId | None, ts_init: int) -> OrderStatusReport | None:
        """One order, by venue id or client_order_id, followed through its replacements."""
        o = None
        if venue_order_id is not None:
            try:
                o = await self._http.get_order(venue_order_id.value)
            except Exception as e:
                if http_status(e) != 404:
                    raise
        if o is None and client_order_id is not None:
            st = self._tracker.states.get(client_order_id)
            if st is not None and st.venue_id:
                o = await self._http.get_order(st.venue_id)
            else:
                o = await self._http.lookup_client_order_id(client_order_id.value)
        if o is None:
            return None
        for _ in range(MAX_CHAIN):  # follow replacements to the live order
            if o.status == "replaced" and o.replaced_by:
                o = await self._http.get_order(o.replaced_by)
            else:
                break
        self._tracker.remember(o)
        await self._ensure_instruments({o.symbol})
        return self.order_report(await self.chain(o), account_id, ts_init)

    async def order_status_reports(self, account_id: AccountId, instrument_id_: InstrumentId | None,
                                   open_only: bool, closed_after: datetime, ts_init: int) -> list[OrderStatusReport]:
        """Open orders, plus (``open_only`` False) the orders closed since ``closed_after``."""
        symbols = [instrument_id_.symbol.value] if instrument_id_ else None
        orders = await self._http.get_orders("open", None, symbols=symbols, max_pages=20)
        if not open_only:
            seen = {o.id for o in orders}
            closed = await self._http.get_orders("closed", closed_after, symbols=symbols, max_pages=20)
            orders += [o for o in closed if o.id not in seen]
        for o in orders:
            self._tracker.remember(o)
        await self._ensure_instruments({o.symbol for o in orders})
        reports: list[OrderStatusReport] = []
        for o in orders:
            if o.status == "replaced":
                continue
            report = self.order_report(await self.chain(o), account_id, ts_init)
            if report is not None:
                reports.append(report)
        return reports

    async def fill_reports(self, account_id: AccountId, instrument_id_: InstrumentId | None,
                           venue_order_id: VenueOrderId | None, after: datetime, ts_init: int) -> list[FillReport]:
        """The FILL activities since ``after``, oldest first."""
        activities = await self._http.get_fill_activities(after)
        await self._ensure_instruments({a.symbol for a in activities if a.symbol})
        reports: list[FillReport] = []
        for act in sorted(activities, key=lambda a: a.transaction_time or ""):
            iid = instrument_id(act.symbol)
            if instrument_id_ is not None and iid != instrument_id_:
                continue
            oid = act.order_id
            o = None
            if oid:
                try:
                    o = await self._order(oid)
                except Exception:  # noqa: BLE001
                    o = None
            head_id, coid, otype = oid, None, OrderType.MARKET
            if o is not None:
                otype = ORDER_TYPE_FROM_ALPACA.get(str(o.kind), OrderType.MARKET)
                head = o
                for _ in range(MAX_CHAIN):  # fills of replaced orders belong to the chain's live order
                    if not head.replaced_by:
                        break
                    head = self._tracker.orders.get(head.replaced_by) or AlpacaOrder(id=head.replaced_by)
                head_id = head.id
                coid = self._tracker.root_client_order_id(await self.chain(o))
            if venue_order_id is not None and venue_order_id.value not in (oid, head_id):
                continue
            qty = act.qty or Decimal(0)
            if qty <= 0:
                continue
            inst = self._instrument(iid)
            fee = fill_commission(order_side_from_alpaca(act.side), qty, act.price or Decimal(0),
                                  ts_or(act.transaction_time, ts_init), inst, iid)
            reports.append(act.parse_to_fill_report(account_id=account_id, venue_order_id=head_id,
                                                    client_order_id=coid, order_type=otype, instrument=inst,
                                                    commission=fee, ts_init=ts_init))
        return reports

    async def position_reports(self, account_id: AccountId, instrument_id_: InstrumentId | None,
                               ts_init: int) -> list[PositionStatusReport]:
        """Open positions; a FLAT report for ``instrument_id_`` when it has none."""
        positions = await self._http.get_positions()
        await self._ensure_instruments({p.symbol for p in positions})
        reports: list[PositionStatusReport] = []
        seen = set()
        for p in positions:
            iid = instrument_id(p.symbol)
            if instrument_id_ is not None and iid != instrument_id_:
                continue
            seen.add(iid)
            reports.append(p.parse_to_position_status_report(account_id=account_id,
                                                             instrument=self._instrument(iid), ts_init=ts_init))
        if instrument_id_ is not None and instrument_id_ not in seen:
            reports.append(PositionStatusReport(
                account_id=account_id,
                instrument_id=instrument_id_,
                position_side=PositionSide.FLAT,
                quantity=make_qty(self._instrument(instrument_id_), 0),
                report_id=UUID4(),
                ts_last=ts_init,
                ts_init=ts_init,
            ))
        return reports


__all__ = ["AlpacaReports"]
