"""PositionManager (PRD-135): positions per signal, entry tactics, scale-in state, partial fills.

Pure bookkeeping over order ids and fills, with no broker or engine types: the Nautilus strategy
tells it what it submitted and what filled, and asks it what is open, what is pending (for the risk
gate) and what a fill belongs to.

Entry tactics (``EntryPlanner.plan``; seed "Entry Strategies"), decided per signal:

    market          conviction >= 75 and volume confirmed: market order for the whole size.
    scale_in        conviction >= 75 without volume confirmation, when scale_in_enabled: a market
                    order for scale_in_initial_pct of the size now; the rest is added on the first
                    pullback to the pullback (8/9) cloud that holds (see ``pullback_verdict``),
                    never beyond the sized total. A pullback that closes through the cloud cancels
                    the add for good.
    limit_at_cloud  conviction 50-74 (and >= 75 without volume when scale-in is disabled): a limit
                    order at the pullback cloud's near edge (upper edge for a long, lower for a
                    short; never through the current price), cancelled if unfilled after
                    limit_entry_expire_bars one-minute bars. A partly filled limit keeps what
                    filled.

Every fill is linked to its signal (``fills``); a round trip ends when the filled entry quantity
has been sold back and no entry order is working.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from strategies.trade_executor.models import (
    HIGH_CONVICTION,
    ExecutorConfig,
    InstrumentDecision,
    PendingOrder,
    Position,
    TradeSignal,
)

Tactic = Literal["market", "limit_at_cloud", "scale_in"]
Role = Literal["entry", "add", "exit", "stop"]


@dataclass(frozen=True)
class CloudEdges:
    """Lower/upper edge of one EMA cloud (min/max of its two EMAs) in the underlying's prices."""

    lower: float
    upper: float

    @property
    def valid(self) -> bool:
        return math.isfinite(self.lower) and math.isfinite(self.upper) and self.lower > 0


@dataclass(frozen=True)
class EntryPlan:
    tactic: Tactic
    total_shares: int  # the sized (risk-approved) total
    first_shares: int  # sent now
    order_type: Literal["market", "limit"]
    limit_price: float | None  # limit entries: in the traded instrument's prices
    expire_bars: int | None  # limit entries: cancel after this many 1-minute bars
    add_shares: int  # scale-in: reserved for the pullback add
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"tactic": self.tactic, "total_shares": self.total_shares, "first_shares": self.first_shares,
                "order_type": self.order_type, "limit_price": self.limit_price,
                "expire_bars": self.expire_bars, "add_shares": self.add_shares, "reason": self.reason}


def underlying_to_instrument(price_u: float, ref_u: float, ref_px: float, leverage: float) -> float:
    """A level of the underlying expressed in a daily-reset leveraged fund's price, by the exact
    intraday relation P = P0 x (1 + L x (S/S0 - 1)) around the current prices (S0, P0)."""
    return ref_px * (1.0 + leverage * (price_u / ref_u - 1.0))


class EntryPlanner:
    def __init__(self, config: ExecutorConfig | None = None) -> None:
        self.config = config if config is not None else ExecutorConfig()

    def tactic_for(self, signal: TradeSignal) -> tuple[Tactic, str]:
        """The seed's entry table, with its two settings: ``high_conviction_order_type`` (the
        order of a high-conviction, volume-confirmed signal: "market", or "limit" = a limit at
        the cloud) and ``medium_conviction_order_type`` (50-74: "limit" at the cloud, or
        "market"). High conviction without volume confirmation scales in (when enabled)."""
        cfg = self.config
        volume = bool(signal.metadata.get("volume_confirmed"))
        if signal.conviction >= HIGH_CONVICTION and volume:
            why = f"conviction {signal.conviction} >= {HIGH_CONVICTION} with volume confirmed"
            if cfg.high_conviction_order_type == "limit":
                return "limit_at_cloud", f"{why} (high_conviction_order_type=limit)"
            return "market", why
        if signal.conviction >= HIGH_CONVICTION and cfg.scale_in_enabled:
            return "scale_in", f"conviction {signal.conviction} >= {HIGH_CONVICTION} without volume confirmation"
        if signal.conviction < HIGH_CONVICTION:
            why = f"conviction {signal.conviction} < {HIGH_CONVICTION}"
            if cfg.medium_conviction_order_type == "market":
                return "market", f"{why} (medium_conviction_order_type=market)"
            return "limit_at_cloud", why
        return "limit_at_cloud", (f"conviction {signal.conviction} without volume confirmation, "
                                  "scale-in disabled")

    def plan(self, signal: TradeSignal, shares: int, *, price: float, direction: str,
             cloud: CloudEdges | None = None, underlying_price: float | None = None,
             leverage: float = 1.0, tick: float = 0.01) -> EntryPlan:
        """``price``: the traded instrument's last price; ``direction``: the position's direction
        (leveraged ETFs are always bought); ``cloud``: the signal timeframe's pullback cloud of the
        underlying (None while the EMAs warm up: the signal's entry price stands in)."""
        if isinstance(shares, bool) or not isinstance(shares, int) or shares < 1:
            raise ValueError(f"shares must be a positive integer, got {shares!r}")
        if not (isinstance(price, (int, float)) and math.isfinite(price) and price > 0):
            raise ValueError(f"price must be a positive finite number, got {price!r}")
        tactic, why = self.tactic_for(signal)
        if tactic == "market":
            return EntryPlan("market", shares, shares, "market", None, None, 0, why)
        if tactic == "scale_in":
            first = max(1, int(math.floor(shares * self.config.scale_in_initial_pct)))
            first = min(first, shares)
            return EntryPlan("scale_in", shares, first, "market", None, None, shares - first, why)
        # limit at the cloud's near edge, in the traded instrument's prices
        sig_dir = 1 if signal.direction == "long" else -1
        if cloud is not None and cloud.valid:
            edge_u = cloud.upper if sig_dir > 0 else cloud.lower
            source = "pullback cloud"
        else:
            edge_u = signal.entry_price
            source = "signal entry (clouds warming up)"
        ref_u = underlying_price if underlying_price else signal.entry_price
        if leverage == 1.0 and direction == signal.direction:
            edge = edge_u
        else:
            edge = underlying_to_instrument(edge_u, ref_u, price, leverage)
        if direction == "long":
            limit = min(edge, price)
            limit = math.floor(limit / tick + 1e-9) * tick
        else:
            limit = max(edge, price)
            limit = math.ceil(limit / tick - 1e-9) * tick
        limit = round(max(limit, tick), 10)
        return EntryPlan("limit_at_cloud", shares, shares, "limit", limit,
                         self.config.limit_entry_expire_bars, 0,
                         f"{why}; limit at {source} edge {edge_u:.4f} (underlying)")


def pullback_verdict(direction_u: int, low: float, high: float, close: float,
                     cloud: CloudEdges | None) -> Literal["none", "holds", "breaks"]:
    """A bar against the pullback cloud, in the underlying's frame (direction_u +1 long, -1 short):
    ``breaks`` when it closes through the cloud (below its lower edge for a long), ``holds`` when it
    touched the cloud (low <= upper edge for a long) and closed back on the trade's side, else
    ``none``."""
    if cloud is None or not cloud.valid:
        return "none"
    if direction_u > 0:
        if close < cloud.lower:
            return "breaks"
        return "holds" if low <= cloud.upper else "none"
    if close > cloud.upper:
        return "breaks"
    return "holds" if high >= cloud.lower else "none"


@dataclass
class Fill:
    order_id: str
    role: Role
    qty: int
    price: float
    fee: float
    ts: datetime


@dataclass
class ManagedPosition:
    """One signal's trade: its entry plan, orders, fills and the resulting core Position."""

    signal: TradeSignal
    decision: InstrumentDecision
    plan: EntryPlan
    instrument: str  # the traded instrument's id as the shell names it (e.g. "QQQ.XNAS")
    direction: str  # the position's direction
    stop_loss: float
    target_price: float | None
    position: Position | None = None  # None until the first entry fill
    entry_orders: dict[str, int] = field(default_factory=dict)  # working entry/add order -> unfilled qty
    order_bars: dict[str, int] = field(default_factory=dict)  # limit entry -> bars seen since submit
    scale_in: Literal["none", "waiting", "sent", "added", "skipped"] = "none"
    order_roles: dict[str, Role] = field(default_factory=dict)  # every order of this trade -> role
    entry_order_id: str = ""  # the first entry order (the journal row's order_id)
    underlying_entry: float | None = None  # the underlying's price at the first entry fill
    exit_quote: tuple[float, float] | None = None  # options: (bid, ask) when the exit was sent
    stop_retried: bool = False  # a refused protective stop was retried once its conflicting entry was gone
    exit_blocked: bool = False  # an exit refused while entries in the instrument worked: resent once they are gone
    fills: list[Fill] = field(default_factory=list)
    entry_filled_qty: int = 0
    entry_value: float = 0.0
    entry_fees: float = 0.0
    exit_filled_qty: int = 0
    exit_value: float = 0.0
    exit_fees: float = 0.0
    exit_order_id: str | None = None
    stop_order_id: str | None = None  # the protective stop resting at the venue
    exit_reason: str | None = None
    exit_fired: list[str] = field(default_factory=list)
    closed: bool = False

    @property
    def signal_id(self) -> str:
        return self.signal.signal_id

    @property
    def open_qty(self) -> int:
        return self.entry_filled_qty - self.exit_filled_qty

    @property
    def working_entry_qty(self) -> int:
        return sum(self.entry_orders.values())

    @property
    def reserved_add_qty(self) -> int:
        return self.plan.add_shares if self.scale_in == "waiting" else 0

    # ── journal rows (trade_executions) ──────────────────────────────────────────────────────
    def to_row(self, now: datetime, *, closed: bool, broker: str, exit_px: float | None = None,
               pnl: float | None = None, pnl_pct: float | None = None, fees: float | None = None,
               gross: float | None = None) -> dict[str, Any]:
        """The trade's ``trade_executions`` row (TRADE_COLUMNS): ``open`` after entry fills (with
        everything a restarted executor needs in its metadata), ``closed`` at the end."""
        pos = self.position
        if pos is None:
            raise ValueError(f"{self.signal_id}: no row before the first entry fill")
        meta: dict[str, Any] = {
            "signal_direction": self.signal.direction, "signal_type": self.signal.signal_type.value,
            "timeframe": self.signal.timeframe, "multiplier": pos.multiplier,
            "entry_tactic": self.plan.tactic, "scale_in": self.scale_in,
            "underlying": pos.underlying, "sector": pos.sector,
        }
        if self.decision.instrument_type == "option":
            om = self.decision.etf_metadata or {}
            meta["option"] = {"strike": om.get("strike"), "expiry": om.get("expiry"), "kind": om.get("kind"),
                              "iv": om.get("iv"), "delta": om.get("delta"), "multiplier": om.get("multiplier"),
                              "underlying_entry": self.underlying_entry, "entry_bid": om.get("bid"),
                              "entry_ask": om.get("ask"),
                              "exit_bid": self.exit_quote[0] if self.exit_quote else None,
                              "exit_ask": self.exit_quote[1] if self.exit_quote else None,
                              "levels_in": "underlying"}
        if closed:
            meta.update({"fees": round(fees or 0.0, 2), "gross_pnl": round(gross or 0.0, 2),
                         "exit_order_id": self.exit_order_id, "exits_fired": self.exit_fired})
        else:
            meta.update({"entry_fees": round(self.entry_fees, 2), "last_price": pos.current_price,
                         "last_price_time": now.isoformat(), "signal": self.signal.to_dict(),
                         "instrument": self.instrument, "entry_order_id": self.entry_order_id,
                         "decision": {"instrument_type": self.decision.instrument_type,
                                      "ticker": self.decision.ticker, "leverage": self.decision.leverage,
                                      "is_inverse": self.decision.is_inverse,
                                      "etf_metadata": self.decision.etf_metadata},
                         "underlying_entry": self.underlying_entry, "stop_order_id": self.stop_order_id})
        return {
            "signal_id": self.signal.signal_id,
            "ticker": pos.ticker,
            "instrument_type": pos.instrument_type,
            "original_ticker": self.signal.ticker,
            "leverage": pos.leverage,
            "direction": pos.direction,
            "trade_type": pos.trade_type,
            "entry_price": round(pos.entry_price, 4),
            "exit_price": round(exit_px, 4) if closed and exit_px is not None else None,
            "shares": self.exit_filled_qty if closed else self.open_qty,
            "stop_loss": round(pos.stop_loss, 4),
            "target_price": None if pos.target_price is None else round(pos.target_price, 4),
            "conviction": self.signal.conviction,
            "status": "closed" if closed else "open",
            "exit_reason": self.exit_reason if closed else None,
            "pnl": pnl if closed else None,
            "pnl_pct": round(pnl_pct, 6) if closed and pnl_pct is not None else None,
            "broker": broker,
            "order_id": self.entry_order_id,
            "entry_time": pos.entry_time,
            "exit_time": now if closed else None,
            "metadata_json": json.dumps(meta),
        }

    @classmethod
    def from_row(cls, row: Any, meta: dict[str, Any], *, default_instrument: str,
                 sector: str | None = None) -> ManagedPosition:
        """An open journal row (``to_row(closed=False)``) back as a managed position holding its
        filled entry. ``row`` has the row's columns as attributes; raises ValueError/KeyError when
        the row lacks what is needed."""
        signal = TradeSignal.from_dict(meta["signal"])
        d = meta.get("decision") or {}
        decision = InstrumentDecision(
            instrument_type=d.get("instrument_type", row.instrument_type), ticker=d.get("ticker", row.ticker),
            original_signal_ticker=signal.ticker, leverage=float(d.get("leverage", row.leverage or 1.0)),
            is_inverse=bool(d.get("is_inverse", False)), etf_metadata=d.get("etf_metadata"), tradeable=True,
            reason="restored from the journal")
        plan = EntryPlan("market", row.shares, row.shares, "market", None, None, 0, "restored from the journal")
        mp = cls(signal=signal, decision=decision, plan=plan,
                 instrument=meta.get("instrument") or default_instrument,
                 direction=row.direction, stop_loss=float(row.stop_loss),
                 target_price=row.target_price, entry_order_id=row.order_id or "",
                 underlying_entry=meta.get("underlying_entry"))
        mp.position = Position(
            ticker=row.ticker, direction=row.direction, entry_price=row.entry_price,
            current_price=float(meta.get("last_price") or row.entry_price), shares=row.shares,
            stop_loss=float(row.stop_loss), target_price=row.target_price, entry_time=row.entry_time,
            signal_id=signal.signal_id, trade_type=row.trade_type, instrument_type=row.instrument_type,
            leverage=float(row.leverage or 1.0), underlying=signal.ticker, sector=sector,
            multiplier=float(meta.get("multiplier") or 1.0),
            delta=(decision.etf_metadata or {}).get("delta") if decision.instrument_type == "option" else None,
        )
        mp.entry_filled_qty = row.shares
        mp.entry_value = row.entry_price * row.shares
        mp.entry_fees = float(meta.get("entry_fees") or 0.0)
        mp.order_roles[mp.entry_order_id] = "entry"
        mp.fills.append(Fill(mp.entry_order_id, "entry", row.shares, row.entry_price, mp.entry_fees,
                             row.entry_time))
        return mp


class PositionManager:
    def __init__(self) -> None:
        self.by_signal: dict[str, ManagedPosition] = {}
        self.by_order: dict[str, ManagedPosition] = {}
        self.closed: list[ManagedPosition] = []

    # ── lifecycle ────────────────────────────────────────────────────────────────────────────
    def open(self, signal: TradeSignal, decision: InstrumentDecision, plan: EntryPlan, *, instrument: str,
             direction: str, stop_loss: float, target_price: float | None, order_id: str) -> ManagedPosition:
        if signal.signal_id in self.by_signal:
            raise ValueError(f"signal_id {signal.signal_id!r} already has a position")
        mp = ManagedPosition(signal=signal, decision=decision, plan=plan, instrument=instrument,
                             direction=direction, stop_loss=stop_loss, target_price=target_price,
                             scale_in="waiting" if plan.add_shares > 0 else "none", entry_order_id=order_id)
        self.by_signal[signal.signal_id] = mp
        self.add_entry_order(mp, order_id, plan.first_shares, role="entry")
        return mp

    def add_entry_order(self, mp: ManagedPosition, order_id: str, qty: int, *, role: Role = "entry") -> None:
        """A working order that opens or adds to ``mp`` (role "entry" or the scale-in "add")."""
        if role not in ("entry", "add"):
            raise ValueError(f"role must be 'entry' or 'add', got {role!r}")
        mp.entry_orders[order_id] = qty
        mp.order_roles[order_id] = role
        if role == "add":
            mp.scale_in = "sent"
        elif mp.plan.order_type == "limit":
            mp.order_bars[order_id] = 0
        self.by_order[order_id] = mp

    def link(self, mp: ManagedPosition, order_id: str, role: Role) -> None:
        """An exit (role "exit") or protective stop (role "stop") order of ``mp``."""
        if role == "exit":
            mp.exit_order_id = order_id
        elif role == "stop":
            mp.stop_order_id = order_id
        else:
            raise ValueError(f"role must be 'exit' or 'stop', got {role!r}")
        mp.order_roles[order_id] = role
        self.by_order[order_id] = mp

    def restore(self, mp: ManagedPosition) -> None:
        """Take over a position rebuilt from the journal (``ManagedPosition.from_row``)."""
        if mp.signal_id in self.by_signal:
            raise ValueError(f"signal_id {mp.signal_id!r} already has a position")
        self.by_signal[mp.signal_id] = mp
        for oid in mp.order_roles:
            self.by_order[oid] = mp

    def role_of(self, order_id: str) -> Role | None:
        mp = self.by_order.get(order_id)
        return None if mp is None else mp.order_roles.get(order_id)

    # ── fills ────────────────────────────────────────────────────────────────────────────────
    def on_fill(self, order_id: str, qty: int, price: float, fee: float, ts: datetime, *,
                mark: float | None = None, underlying_price: float | None = None) -> tuple[ManagedPosition, Role] | None:
        """Apply a (partial) fill; returns (position, role), or None for an order we do not own."""
        mp = self.by_order.get(order_id)
        if mp is None:
            return None
        if isinstance(qty, bool) or not isinstance(qty, int) or qty <= 0:
            raise ValueError(f"fill of {order_id}: qty must be a positive integer, got {qty!r}")
        role = mp.order_roles[order_id]
        worthless_ok = role in ("exit", "stop") and mp.decision.instrument_type == "option"
        if not (isinstance(price, (int, float)) and math.isfinite(price) and (price > 0 or (worthless_ok and price == 0))):
            raise ValueError(f"fill of {order_id}: price must be a positive finite number, got {price!r}")
        if role in ("entry", "add"):
            left = mp.entry_orders.get(order_id, 0) - qty
            if left > 0:
                mp.entry_orders[order_id] = left
            else:
                mp.entry_orders.pop(order_id, None)
                mp.order_bars.pop(order_id, None)
            mp.entry_filled_qty += qty
            mp.entry_value += price * qty
            mp.entry_fees += fee
            avg = mp.entry_value / mp.entry_filled_qty
            if mp.position is None:
                sig = mp.signal
                mp.position = Position(
                    ticker=mp.decision.ticker, direction=mp.direction, entry_price=avg, current_price=price,
                    shares=0, stop_loss=mp.stop_loss, target_price=mp.target_price, entry_time=ts,
                    signal_id=sig.signal_id, trade_type=sig.trade_type,
                    instrument_type=mp.decision.instrument_type, leverage=mp.decision.leverage,
                    underlying=sig.ticker, underlying_price=underlying_price or sig.entry_price,
                    multiplier=float((mp.decision.etf_metadata or {}).get("multiplier", 1.0))
                    if mp.decision.instrument_type == "option" else 1.0,
                )
            if role == "add" and mp.scale_in == "sent":
                mp.scale_in = "added"
            mp.position.entry_price = avg
        else:
            mp.exit_filled_qty += qty
            mp.exit_value += price * qty
            mp.exit_fees += fee
            if role == "stop" and mp.exit_reason is None:
                mp.exit_reason, mp.exit_fired = "stop_loss", ["stop_loss"]
        if mp.position is not None:
            mp.position.shares = max(mp.open_qty, 0)
            mp.position.mark(mark if mark is not None else price)
        mp.fills.append(Fill(order_id, role, qty, price, fee, ts))
        return mp, role

    def order_done(self, order_id: str) -> tuple[ManagedPosition, Role] | None:
        """An order of ours ended without (further) fills: canceled, expired, rejected, denied."""
        mp = self.by_order.get(order_id)
        if mp is None:
            return None
        role = mp.order_roles.get(order_id, "entry")
        if order_id in mp.entry_orders:
            del mp.entry_orders[order_id]
            mp.order_bars.pop(order_id, None)
            if role == "add" and mp.scale_in == "sent":
                mp.scale_in = "skipped"
        elif order_id == mp.exit_order_id:
            mp.exit_order_id = None  # the position is still open: try again on the next bar
        elif order_id == mp.stop_order_id:
            mp.stop_order_id = None
        return mp, role

    def is_round_trip_done(self, mp: ManagedPosition) -> bool:
        return mp.entry_filled_qty > 0 and mp.open_qty <= 0 and not mp.entry_orders

    def is_dead(self, mp: ManagedPosition) -> bool:
        """Nothing filled and nothing working: the entry came to nothing."""
        return mp.entry_filled_qty == 0 and not mp.entry_orders

    def finish(self, mp: ManagedPosition) -> None:
        mp.closed = True
        self.by_signal.pop(mp.signal_id, None)
        self.closed.append(mp)
        del self.closed[:-100]

    # ── views for the core ───────────────────────────────────────────────────────────────────
    def open_positions(self) -> list[Position]:
        return [mp.position for mp in self.by_signal.values() if mp.position is not None and mp.open_qty > 0]

    def pending_orders(self, price_of: Any = None) -> list[PendingOrder]:
        """Unfilled entry quantity and reserved scale-in adds, as the risk gate's pending orders."""
        out: list[PendingOrder] = []
        for mp in self.by_signal.values():
            qty = mp.working_entry_qty + mp.reserved_add_qty
            if qty <= 0:
                continue
            px = mp.plan.limit_price or (price_of(mp.decision.ticker) if price_of else None) \
                or (mp.position.current_price if mp.position else mp.signal.entry_price)
            out.append(PendingOrder(ticker=mp.decision.ticker, direction=mp.direction, shares=qty, price=px,
                                    signal_id=mp.signal_id, underlying=mp.signal.ticker,
                                    leverage=mp.decision.leverage, instrument_type=mp.decision.instrument_type))
        return out


__all__ = [
    "CloudEdges",
    "EntryPlan",
    "EntryPlanner",
    "Fill",
    "ManagedPosition",
    "PositionManager",
    "pullback_verdict",
    "underlying_to_instrument",
]
