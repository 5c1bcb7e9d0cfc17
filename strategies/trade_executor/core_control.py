"""The executor core's control side (part of ExecutorCore): sessions, the kill switch, the
operator's latch, the broker's status, restart and stop.

Kill-switch protocol: a trip cancels working entries, exits intraday positions at market and asks
the RiskEngine for REDUCING (exits only) until every such exit has passed it, then HALTED. The
daily-loss latch resets at the next session open; every other trigger waits for the operator.
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from strategies.trade_executor.calendar import new_york_date
from strategies.trade_executor.commands import (
    Command,
    KillSwitchReset,
    KillSwitchTripped,
    Log,
    RecordDailyPnl,
    ScheduleEod,
    SubscribeQuotes,
)
from strategies.trade_executor.etf_catalog import sector_of
from strategies.trade_executor.instrument_router import InstrumentRouter
from strategies.trade_executor.position_manager import ManagedPosition
from strategies.trade_executor.timeutil import ns_to_datetime

if TYPE_CHECKING:  # pragma: no cover
    from strategies.trade_executor.core import ExecutorCore


class ControlMixin:
    # ── broker ───────────────────────────────────────────────────────────────────────────────
    def _broker_contact(self: ExecutorCore, now: datetime) -> datetime:
        # Connected (or never told otherwise: backtests): contact is now. After a disconnect
        # report, the last contact stays where it was until the broker is back.
        if self.broker_connected or self.last_broker_contact_ns is None:
            return now
        return ns_to_datetime(self.last_broker_contact_ns)

    def on_broker_status(self: ExecutorCore, *, connected: bool, ts_ns: int, broker: str = "", detail: str = "",
                         halt_reason: str = "") -> list[Command]:
        now = ns_to_datetime(ts_ns)

        def run() -> None:
            if halt_reason:  # the broker says the account may not trade (blocked / not ACTIVE): halt at once
                self._event(now, "broker_account_halt", f"{broker or 'broker'}: {halt_reason}", {"detail": detail})
                self._emit(Log("error", f"broker account: {halt_reason}"))
                if not self.kill_switch.is_active:
                    self.kill_switch.activate(f"broker_account: {halt_reason}", now=now)
                    self._on_kill_switch(now)
            if connected:
                self.broker_connected = True
                self.last_broker_contact_ns = ts_ns
            else:
                if self.broker_connected:
                    self._event(now, "broker_disconnected", f"{broker or 'broker'} disconnected: {detail}")
                    self.last_broker_contact_ns = ts_ns
                self.broker_connected = False
        return self._call(now, run)

    # ── sessions ─────────────────────────────────────────────────────────────────────────────
    def _roll_session(self: ExecutorCore, now: datetime) -> None:
        session = self.calendar.session_for(now)
        if session is None:
            return
        open_, _close = session
        if self.session_open == open_:
            return
        previous = self.session_open
        self.session_open = open_
        if previous is not None:
            self._close_day(previous)
        self.starting_equity = self.equity()
        self.daily_trades = 0
        cutoff = self.exit_monitor.eod_cutoff(open_)
        if cutoff is not None and cutoff > now:
            self._emit(ScheduleEod(cutoff))
        self._poll_control(now)
        ks = self.kill_switch
        if (ks.is_active and ks.code == "daily_loss_limit"
                and (ks.activated_at is None or ks.activated_at < open_)):
            # the daily-loss latch lasts until the next session open; every other trigger waits
            # for the operator
            self._resume(now, "daily loss latch reset at session open", by="session_open")

    def _close_day(self: ExecutorCore, session_open: datetime) -> None:
        """Hand the finished session to the journal (its daily_pnl row)."""
        close = self.calendar.session_close(session_open)
        # the New York date the session ends on (a UTC-midnight session of a 24/7 calendar opens
        # on the previous New York date)
        day = (new_york_date(close - timedelta(microseconds=1)) if close is not None
               else new_york_date(session_open))
        self._emit(RecordDailyPnl(day, {"broker": self.settings.broker_name}))

    # ── kill switch ──────────────────────────────────────────────────────────────────────────
    def _on_kill_switch(self: ExecutorCore, now: datetime, *, persist: bool = True) -> None:
        ks = self.kill_switch
        reason = ks.reason or "kill_switch"
        account = self.account_state(now)
        data = {"code": ks.code, "reason": reason, "equity": round(account.equity, 2),
                "daily_pnl": round(account.daily_pnl, 2), "starting_equity": round(account.starting_equity or 0, 2),
                "open_positions": len(account.open_positions), "pending_orders": len(account.pending_orders)}
        self._event(now, "kill_switch", reason, data)
        self._emit(KillSwitchTripped(now, reason, data, persist))
        self._set_trading_state("REDUCING", f"kill switch: {reason}")
        for mp in list(self.pm.by_signal.values()):
            if mp.scale_in == "waiting":
                mp.scale_in = "skipped"
            for oid in list(mp.entry_orders):
                self._cancel_if_open(oid)
        for mp in list(self.pm.by_signal.values()):
            if mp.signal.trade_type in ("day", "scalp") and self._can_exit(mp):
                self._submit_exit(mp, "kill_switch", ["kill_switch"])
        self._maybe_halt()

    def _resume(self: ExecutorCore, now: datetime, why: str, *, by: str, persist: bool = True) -> None:
        reason = self.kill_switch.reason
        self.kill_switch.deactivate(now=now)
        self.reducing_orders.clear()
        self._emit(KillSwitchReset(now, why, by, persist))
        self._event(now, "kill_switch_reset", why, {"previous_reason": reason, "by": by})
        self._set_trading_state("ACTIVE", why)

    def restore_latch(self: ExecutorCore, now: datetime) -> list[Command]:
        """At start: a latch persisted by an earlier run (or the operator) halts trading now."""
        def run() -> None:
            latch = self.engine.control_latch()
            if latch is None or not latch.active:
                return
            self.kill_switch.activate(latch.reason or "manual: restored latch", now=latch.activated_at or now)
            self._event(now, "kill_switch_restored", f"latched since {latch.activated_at}: {latch.reason}",
                        {"reason": latch.reason})
            self._emit(Log("warning", f"kill switch latched since {latch.activated_at}: {latch.reason}; "
                                      "trading stays halted until an operator resumes it"))
            self._set_trading_state("HALTED", f"restored latch: {latch.reason}")
        return self._call(now, run)

    def _poll_control(self: ExecutorCore, now: datetime) -> None:
        """Pick up operator actions on the executor_control latch (trip or resume)."""
        latch = self.engine.control_latch()
        ks = self.kill_switch
        if latch is not None and latch.active and not ks.is_active:
            ks.activate(latch.reason or "manual: operator", now=now)
            self._on_kill_switch(now, persist=False)
        elif latch is not None and not latch.active and ks.is_active:
            self._resume(now, f"resumed by operator (latch was: {ks.reason})", by="operator", persist=False)
        if self.settings.follow_control_mode:
            mode = self.engine.control_mode()
            if mode and mode != self.xconfig.instrument_mode.value:
                self._set_mode(mode, now, by="operator")

    def set_mode(self: ExecutorCore, mode: str, now: datetime, *, by: str) -> list[Command]:
        """Change the instrument mode while running: new entries route by it from now on; open
        positions stay managed in the instrument they were opened in."""
        return self._call(now, self._set_mode, mode, now, by=by)

    def _set_mode(self: ExecutorCore, mode: str, now: datetime, *, by: str) -> None:
        old = self.xconfig.instrument_mode.value
        try:
            new = replace(self.xconfig, instrument_mode=mode)
        except ValueError as e:
            if self._refused_mode != mode:  # once per bad value, not at every poll
                self._refused_mode = mode
                self._event(now, "instrument_mode_refused", f"instrument mode {mode!r} refused: {e}",
                            {"mode": mode, "current": old, "by": by})
                self._emit(Log("error", f"instrument mode {mode!r} refused, staying in {old}: {e}"))
            return
        self.xconfig = new
        self.router = InstrumentRouter.from_config(new)
        open_in = sorted({mp.decision.instrument_type for mp in self.pm.by_signal.values()})
        self._event(now, "instrument_mode", f"instrument mode {old} -> {new.instrument_mode.value} (by {by}); "
                    f"{len(self.pm.by_signal)} open position(s) keep their instruments",
                    {"from": old, "to": new.instrument_mode.value, "by": by, "open_positions": len(self.pm.by_signal),
                     "open_instrument_types": open_in})
        self._emit(Log("info", f"instrument mode {old} -> {new.instrument_mode.value} (by {by})"))

    def on_control(self: ExecutorCore, now: datetime) -> list[Command]:
        """The operator's controls (live: polled every few seconds; backtests: at each session
        open): the kill-switch latch and, live, the instrument mode; then the kill-switch check."""
        def run() -> None:
            self._poll_control(now)
            if not self.kill_switch.is_active and self.kill_switch.check(self.account_state(now)):
                self._on_kill_switch(now)
        return self._call(now, run)

    # ── restart ──────────────────────────────────────────────────────────────────────────────
    def load_decided_signals(self: ExecutorCore, ids: dict[str, datetime]) -> None:
        """After a restart: the signal ids this run id already decided (the journal's), so a
        re-sent one is refused ``duplicate_signal``."""
        for sid, ts in ids.items():
            if sid not in self.decided_signals or ts < self.decided_signals[sid]:
                self.decided_signals[sid] = ts

    def restore_positions(self: ExecutorCore, rows: list[Any], now: datetime) -> list[Command]:
        """After a restart: take over the positions the journal still has open (this run id).

        Each comes back with its signal, levels and entry, its protective stop if it still rests
        at the venue (otherwise a new one is placed), and its exits managed again. A position the
        venue no longer holds (closed while we were away, e.g. by its stop) is closed in the
        journal at the venue's closing price. Returns the instruments whose quotes to follow."""
        return self._call(now, self._restore_positions, rows, now)

    def _restore_positions(self: ExecutorCore, rows: list[Any], now: datetime) -> None:
        for row in rows:
            meta = row.metadata
            if "signal" not in meta or row.signal_id in self.pm.by_signal:
                continue
            try:
                mp = ManagedPosition.from_row(row, meta, default_instrument=self.instrument_id(row.ticker))
                mp.position.sector = sector_of(mp.signal.ticker)
                self.pm.restore(mp)
            except (ValueError, KeyError) as e:
                self._event(now, "restore_failed", f"{row.signal_id}: {e}", {"trade_id": row.id})
                continue
            held = self.engine.held_qty(mp.instrument)
            if held + 1e-9 < mp.open_qty:
                self._close_offline(mp, held, now)
                continue
            stop_id = meta.get("stop_order_id")
            if stop_id:
                view = self.engine.order(stop_id)
                if view is not None and view.is_open:
                    self.pm.link(mp, stop_id, "stop")
            if self.policy(mp).needs_quotes:
                self._emit(SubscribeQuotes(mp.instrument))
            self._event(now, "position_restored",
                        f"{mp.signal_id}: {mp.open_qty} {mp.decision.ticker} @ {mp.position.entry_price} "
                        f"(stop order {'found' if mp.stop_order_id else 'replaced'})",
                        {"stop_order_id": mp.stop_order_id})
            if mp.stop_order_id is None:
                self._protect(mp)

    def _close_offline(self: ExecutorCore, mp: ManagedPosition, held: float, now: datetime) -> None:
        """The venue holds less than the journal's open position: it was closed while the
        executor was down. Record the round trip at the venue's closing price."""
        px = self.engine.last_close_price(mp.instrument)
        if px is None or not math.isfinite(float(px)) or held > 0:
            self._event(now, "restore_mismatch", f"{mp.signal_id}: journal has {mp.open_qty} open, venue holds "
                        f"{held}; not managed, check the account", {"held": held})
            self.pm.by_signal.pop(mp.signal_id, None)
            return
        mp.exit_reason, mp.exit_fired = "closed_while_offline", ["closed_while_offline"]
        mp.exit_filled_qty = mp.open_qty
        mp.exit_value = float(px) * mp.exit_filled_qty
        self._event(now, "position_closed_offline",
                    f"{mp.signal_id}: the venue closed it at {float(px):.4f} while the executor was down")
        self._close_round_trip(mp, now)

    # ── stop ─────────────────────────────────────────────────────────────────────────────────
    def on_stop(self: ExecutorCore, now: datetime) -> list[Command]:
        """Stopping: working entry orders are cancelled (nothing new may open while nobody
        manages it); protective stops stay resting at the venue (a DAY stop until the close, a
        swing's GTC stop until a restarted executor takes the position over), so an open
        position is never left bare by a stop or restart. No order is sent after this."""
        def run() -> None:
            self.stopping = True
            for mp in list(self.pm.by_signal.values()):
                if mp.scale_in == "waiting":
                    mp.scale_in = "skipped"
                for oid in list(mp.entry_orders):
                    if self._cancel_if_open(oid):
                        self._event(now, "entry_cancelled", f"{mp.signal_id}: executor stopping "
                                    "with the entry order working", {"order_id": oid})
            if self.session_open is not None:
                self._close_day(self.session_open)
        return self._call(now, run)


__all__ = ["ControlMixin"]
