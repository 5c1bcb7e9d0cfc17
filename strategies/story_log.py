"""The executor's own story in the live log, one INFO line per step: signal and decision, entry
fill, exit with its P&L, events (kill switch at WARNING), finished sessions.

``StorySink`` is an ``ExecutionSink`` (``strategies.execution_log``) that writes nothing anywhere
but the log; the live node tees it next to the journal (``TeeSink(journal, StorySink())``), so the
lines come from exactly the records the journal stores. The engine's routine lines (portfolio
updates, connections, clock adjustments) are kept below INFO by ``engine_config.live_logging_config``.
Times come from the records (engine time), printed in New York time.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

NY = ZoneInfo("America/New_York")
COMPONENT = "Executor"


def _t(ts: Any) -> str:
    if isinstance(ts, datetime) and ts.tzinfo is not None:
        return ts.astimezone(NY).strftime("%H:%M:%S ET")
    return str(ts or "")


def _meta(row: dict[str, Any]) -> dict[str, Any]:
    m = row.get("metadata_json")
    if isinstance(m, (str, bytes)):
        try:
            m = json.loads(m)
        except ValueError:
            m = None
    return m if isinstance(m, dict) else {}


def decision_line(d: Any) -> str:
    head = (f"signal {d.ticker} {d.timeframe} {d.signal_type} {d.direction} conviction {d.conviction} "
            f"at {_t(d.ts)}: ")
    if d.approved:
        orders = f" (orders {' '.join(d.order_ids)})" if getattr(d, "order_ids", None) else ""
        return head + f"APPROVED -> {d.instrument_type or '?'} {d.instrument or '?'} x {d.shares}{orders}"
    code = d.reason_code or "?"
    why = str(d.reason or "").removeprefix(f"{code}:").strip()
    return head + f"rejected {code}" + (f": {why}" if why else "")


def entry_line(row: dict[str, Any]) -> str:
    return (f"FILL entry {row.get('ticker')} {row.get('direction')} {row.get('shares')} @ {row.get('entry_price')} "
            f"(signal {row.get('signal_id')}; stop {row.get('stop_loss')}, target {row.get('target_price')})")


def exit_line(row: dict[str, Any]) -> str:
    pnl = row.get("pnl")
    pnl_s = f"{pnl:+,.2f}" if isinstance(pnl, (int, float)) else str(pnl)
    fees = _meta(row).get("fees")
    return (f"EXIT {row.get('ticker')} {row.get('direction')} {row.get('shares')}: {row.get('entry_price')} -> "
            f"{row.get('exit_price')} {row.get('exit_reason')}, P&L {pnl_s}"
            + (f" (fees {fees:.2f})" if isinstance(fees, (int, float)) else "") + f" (signal {row.get('signal_id')})")


class StorySink:
    """An ExecutionSink that logs (module docstring). ``logger``: anything with ``info`` and
    ``warning`` (default: a Nautilus ``Logger`` named ``Executor``)."""

    def __init__(self, logger: Any = None) -> None:
        if logger is None:
            from nautilus_trader.common.component import Logger

            logger = Logger(COMPONENT)
        self.log = logger
        self._last_entry: tuple | None = None  # an open row recorded again unchanged (stop id added)

    def record_decision(self, decision: Any, *args: Any, **kwargs: Any) -> None:
        self.log.info(decision_line(decision))

    def record_trade(self, row: dict[str, Any]) -> None:
        self.log.info(exit_line(row))

    def record_open_trade(self, row: dict[str, Any]) -> None:
        key = (row.get("signal_id"), row.get("shares"), row.get("entry_price"))
        if key == self._last_entry:
            return
        self._last_entry = key
        self.log.info(entry_line(row))

    def record_event(self, ts: datetime, kind: str, message: str, data: dict | None = None) -> None:
        line = f"{kind} at {_t(ts)}: {message}"
        if kind.startswith("kill_switch") or kind in ("stop_failed", "broker_account_halt"):
            self.log.warning(line)
        else:
            self.log.info(line)

    def record_equity(self, ts: datetime, equity: float) -> None:
        return None

    def record_daily_pnl(self, day: date, metadata: dict | None = None) -> Any:
        m = metadata or {}
        pnl = m.get("realized_pnl", m.get("pnl"))
        self.log.info(f"session {day} closed" + (f": realised P&L {pnl:+,.2f}" if isinstance(pnl, (int, float)) else ""))
        return None

    def get_open_trades(self) -> list:
        return []

    def get_decided_signal_ids(self, since: datetime | None = None) -> dict[str, datetime]:
        return {}

    def flush(self) -> bool:
        return True

    def close(self) -> None:
        return None


def order_line(kind: str, order: Any, reason: str | None = None) -> str:
    """``ORDER sent SELL 15 QQQ.ALPACA STOP_MARKET @ 486.94 DAY (stop; signal S1)`` and the like
    (``kind``: sent / rejected / canceled / expired / denied)."""
    from strategies.order_recorder import parse_tags

    _tags, signal, role = parse_tags(getattr(order, "tags", None))
    price = getattr(order, "price", None) if getattr(order, "has_price", False) else None
    trigger = getattr(order, "trigger_price", None) if getattr(order, "has_trigger_price", False) else None
    at = f" @ {trigger if trigger is not None else price}" if (trigger is not None or price is not None) else ""
    side = getattr(getattr(order, "side", None), "name", "?")
    otype = getattr(getattr(order, "order_type", None), "name", "?")
    tif = getattr(getattr(order, "time_in_force", None), "name", "")
    who = ", ".join(x for x in (role, f"signal {signal}" if signal else None) if x)
    return (f"ORDER {kind} {side} {order.quantity} {order.instrument_id} {otype}{at} {tif}".rstrip()
            + (f" ({who})" if who else "") + (f": {reason}" if reason else ""))


def order_story_actor() -> Any:
    """A NautilusTrader Actor logging the executor's orders at INFO: sent, and (WARNING) refused by
    the RiskEngine or the venue, canceled, expired. Fills are the sink's (entry fill, exit)."""
    from nautilus_trader.common.actor import Actor
    from nautilus_trader.config import ActorConfig
    from nautilus_trader.model.events import OrderCanceled, OrderDenied, OrderExpired, OrderRejected, OrderSubmitted

    topic = "events.order.*"

    class OrderStory(Actor):
        def __init__(self) -> None:
            super().__init__(ActorConfig(component_id="Executor-orders", log_events=False, log_commands=False))

        def on_start(self) -> None:
            self.msgbus.subscribe(topic=topic, handler=self._on_order_event)

        def on_stop(self) -> None:
            return None  # stays subscribed: the cancels of the shutdown are part of the story

        def on_dispose(self) -> None:
            if self.msgbus.is_subscribed(topic=topic, handler=self._on_order_event):
                self.msgbus.unsubscribe(topic=topic, handler=self._on_order_event)

        def _on_order_event(self, event: Any) -> None:
            order = self.cache.order(event.client_order_id)
            if order is None:
                return
            if isinstance(event, OrderSubmitted):
                self.log.info(order_line("sent", order))
            elif isinstance(event, (OrderRejected, OrderDenied)):
                self.log.warning(order_line("refused", order, getattr(event, "reason", None)))
            elif isinstance(event, OrderCanceled):
                self.log.info(order_line("canceled", order))
            elif isinstance(event, OrderExpired):
                self.log.info(order_line("expired", order))

    return OrderStory()


__all__ = ["StorySink", "decision_line", "entry_line", "exit_line", "order_line", "order_story_actor"]
