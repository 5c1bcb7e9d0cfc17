"""The executor core's minute step: bars in, then the minute's decisions (part of ExecutorCore).

A bar only updates state (last prices, clouds) and marks its minute as due. The minute's
decisions (exits, scale-ins, entry expiry, the equity sample, the kill-switch check) run once
every bar of that minute is in — every instrument's and every timeframe's — so an exit decided on
the underlying's bar is priced on the traded instrument's bar of the *same* minute. When the
minute runs is the shell's business (a backtest: 1 ns after the bars, before the minute's signals;
live: ``bar_settle_ms`` after the minute's first bar); the shell calls ``run_minute`` then.
"""

from __future__ import annotations

import math
from collections import deque
from datetime import datetime
from typing import TYPE_CHECKING

from strategies.signals import OHLCV, CloudTracker
from strategies.trade_executor.commands import Command, Log, RecordEquity, SubmitOrder
from strategies.trade_executor.exit_monitor import EXIT_PRIORITY
from strategies.trade_executor.position_manager import ManagedPosition, pullback_verdict
from strategies.trade_executor.timeutil import ns_to_datetime

if TYPE_CHECKING:  # pragma: no cover
    from strategies.trade_executor.core import ExecutorCore

NANOS_PER_MINUTE = 60_000_000_000
TIMEFRAME_MINUTES = {"1m": 1, "5m": 5, "10m": 10, "1h": 60, "1d": 390}


class MinuteMixin:
    def _init_minute(self: ExecutorCore) -> None:
        self.due_syms: dict[str, int] = {}  # symbol -> ts of its bar waiting for the minute's decisions
        self.due_clouds: dict[tuple[str, str], int] = {}  # (symbol, timeframe) -> ts of its new cloud row
        self.deferred_clouds: set[tuple[str, str]] = set()  # cloud exits waiting for the session
        self.last_equity_sample_ns = 0
        self._seeded_ns: dict[str, int] = {}  # symbol -> ts of the historical close seeding its price

    def follow(self: ExecutorCore, symbol: str) -> None:
        """Track the EMA clouds of ``symbol`` on every cloud timeframe."""
        for tf in self.settings.cloud_timeframes:
            self.trackers[(symbol, tf)] = CloudTracker()
            self.cloud_rows[(symbol, tf)] = deque(maxlen=5)

    @property
    def minute_due(self: ExecutorCore) -> bool:
        return bool(self.due_syms or self.due_clouds)

    # ── bars ─────────────────────────────────────────────────────────────────────────────────
    def on_bar(self: ExecutorCore, symbol: str, timeframe: str, o: float, h: float, low: float, c: float,
               volume: float, ts_ns: int) -> list[Command]:
        """A completed bar (``timeframe`` "1m": the traded/underlying 1-minute bar; others: a
        higher-timeframe bar of a followed symbol, for its cloud). Afterwards ``minute_due`` says
        whether the shell must run the minute."""
        out: list[Command] = []
        if timeframe != "1m":
            if self._update_cloud((symbol, timeframe), o, h, low, c, volume, ts_ns) is not None:
                self.due_clouds[(symbol, timeframe)] = ts_ns
            return out
        if not math.isfinite(c) or c <= 0:
            out.append(Log("error", f"ignoring bar with bad close {c} for {symbol}"))
            return out
        self.last_price[symbol] = c
        self.last_bar[symbol] = (o, h, low, c)
        key = (symbol, "1m")
        if key in self.trackers and self._update_cloud(key, o, h, low, c, volume, ts_ns) is not None:
            self.due_clouds[key] = ts_ns
        self.due_syms[symbol] = ts_ns
        return out

    def _update_cloud(self: ExecutorCore, key: tuple[str, str], o: float, h: float, low: float, c: float,
                      volume: float, ts_ns: int) -> dict | None:
        """Feed the cloud tracker; returns the bar's row with cloud edges once warmed up."""
        tr = self.trackers.get(key)
        if tr is None:
            return None
        if not all(math.isfinite(x) and x > 0 for x in (o, h, low, c)):
            return None
        tr.update_fast(OHLCV(ts=ns_to_datetime(ts_ns), open=o, high=h, low=low, close=c, volume=volume))
        if not tr.warmed_up:
            return None
        f, pb, m = tr.i_fast, tr.i_pullback, tr.i_macro
        row = {"open": o, "high": h, "low": low, "close": c,
               "fast_upper": tr.upper[f], "fast_lower": tr.lower[f],
               "pullback_upper": tr.upper[pb], "pullback_lower": tr.lower[pb],
               "macro_upper": tr.upper[m], "macro_lower": tr.lower[m]}
        self.cloud_rows[key].append(row)
        return row

    def seed_price(self: ExecutorCore, symbol: str, close: float, ts_ns: int) -> bool:
        """A recent historical close of a followed instrument (live start-up): its price until its
        first live bar, so a fund is tradeable from the first minute. Never overrides a live bar
        or a later close; no decision runs on it. True when taken."""
        if symbol in self.last_bar or not math.isfinite(close) or close <= 0:
            return False
        if ts_ns < self._seeded_ns.get(symbol, -1):
            return False
        self._seeded_ns[symbol] = ts_ns
        self.last_price[symbol] = close
        return True

    # ── the minute ───────────────────────────────────────────────────────────────────────────
    def run_minute(self: ExecutorCore, now: datetime) -> list[Command]:
        return self._call(now, self._run_minute, now)

    def _run_minute(self: ExecutorCore, now: datetime) -> None:
        due_syms = sorted(self.due_syms.items(), key=lambda kv: (kv[1], kv[0]))
        due_clouds = sorted(self.due_clouds.items(), key=lambda kv: (kv[1], kv[0]))
        self.due_syms.clear()
        self.due_clouds.clear()
        self._roll_session(now)
        in_session = self.calendar.is_open(now)
        for sym, _ts in due_syms:
            bar = self.last_bar[sym]
            for mp in list(self.pm.by_signal.values()):
                if mp.signal.ticker == sym:
                    if mp.position is not None:
                        mp.position.underlying_price = self.last_price[sym]
                    if mp.scale_in == "waiting":
                        self._check_scale_in(mp, bar, now)
                if mp.decision.ticker == sym and mp.entry_orders:
                    self._expire_entries(mp, now, in_session)
        printed = {sym for sym, _ts in due_syms}
        for mp in list(self.pm.by_signal.values()):
            if mp.entry_orders and mp.decision.ticker not in printed:
                # no trade of it this minute (illiquid, gappy data): no limit aging, but the
                # session close and the EOD cut-off still end a working entry
                self._expire_entries(mp, now, in_session, age=False)
        if not in_session:
            # no exit order leaves outside the session: cloud exits of buckets that closed with
            # the session (the 15:30-16:00 hour) are decided at the next open; price exits run
            # again on every bar anyway
            for key, _ts in due_clouds:
                self.deferred_clouds.add(key)
            self._settle_expired_options(now)
        else:
            for key in sorted(self.deferred_clouds):
                self._cloud_exits(key, now)
            self.deferred_clouds.clear()
            for key, _ts in due_clouds:
                self._cloud_exits(key, now)
            for sym, _ts in due_syms:
                self._price_exits(sym, now)
            # time exits (EOD, time stop, max hold) of positions whose instrument did not trade
            # this minute, at its last price
            for sym in sorted(self._position_syms() - printed):
                if sym in self.last_price:
                    self._price_exits(sym, now)
            self._ensure_protected(now)
        if due_syms:
            last_ts = max(ts for _s, ts in due_syms)
            if last_ts - self.last_equity_sample_ns >= self.settings.equity_sample_minutes * NANOS_PER_MINUTE:
                self.last_equity_sample_ns = last_ts
                account = self.account_state(now)
                self._emit(RecordEquity(now, account.equity))
                if not self.kill_switch.is_active and self.kill_switch.check(account):
                    self._on_kill_switch(now)

    def _settle_expired_options(self: ExecutorCore, now: datetime) -> None:
        """Option contracts held to their expiry close settle there, at the final (intrinsic)
        quote, although the session is over: a settlement, not a trade the market must take."""
        for mp in list(self.pm.by_signal.values()):
            if self._can_exit(mp) and self.policy(mp).expired(mp, now):
                self._evaluate_exit(mp, now)

    def _position_syms(self: ExecutorCore) -> set[str]:
        """The symbols whose bars drive the open positions' price exits (options: the underlying)."""
        return {self.policy(mp).exit_symbol(mp) for mp in self.pm.by_signal.values() if self._can_exit(mp)}

    def on_eod(self: ExecutorCore, now: datetime) -> list[Command]:
        """The session's EOD cut-off: intraday exits and working intraday entries are dealt with
        then even when no bar arrives (an illiquid instrument, a data outage live)."""
        def run() -> None:
            in_session = self.calendar.is_open(now)
            for mp in list(self.pm.by_signal.values()):
                if mp.entry_orders:
                    self._expire_entries(mp, now, in_session, age=False)
            if in_session:
                for sym in sorted(self._position_syms()):
                    if sym in self.last_price:
                        self._price_exits(sym, now)
        return self._call(now, run)

    def _expire_entries(self: ExecutorCore, mp: ManagedPosition, now: datetime, in_session: bool, *,
                        age: bool = True) -> None:
        """Working entry orders: cancelled when the session is over, for day trades and scalps
        also at the EOD cut-off (nothing intraday may be opened into the close), and limits after
        ``limit_entry_expire_bars`` bars of the traded instrument."""
        why = None
        if not in_session:
            why = "session closed with the entry order working"
        elif mp.signal.trade_type in ("day", "scalp") and self._past_eod_cutoff(now):
            why = "EOD cut-off reached with the entry order working"
        if why is None:
            if age:
                self._age_limit_orders(mp, now)
            return
        if mp.scale_in == "waiting":
            mp.scale_in = "skipped"
        for oid in list(mp.entry_orders):
            mp.order_bars.pop(oid, None)
            if self._cancel_if_open(oid):
                self._event(now, "entry_cancelled", f"{mp.signal_id}: {why}", {"order_id": oid})

    def _past_eod_cutoff(self: ExecutorCore, now: datetime) -> bool:
        cutoff = self.exit_monitor.eod_cutoff(now)
        return cutoff is not None and now >= cutoff

    def _age_limit_orders(self: ExecutorCore, mp: ManagedPosition, now: datetime) -> None:
        """A limit entry waits ``limit_entry_expire_bars`` bars *of the signal's timeframe* (5
        one-minute bars for a scalp, 5 ten-minute bars for a day trade, 5 hours for a swing —
        within the session), counted in one-minute bars of the traded instrument."""
        minutes = TIMEFRAME_MINUTES.get(mp.signal.timeframe, 1)
        for oid in list(mp.order_bars):
            mp.order_bars[oid] += 1
            if mp.order_bars[oid] > mp.plan.expire_bars * minutes:
                del mp.order_bars[oid]
                if self._cancel_if_open(oid):
                    self._event(now, "limit_expired", f"{mp.signal_id}: limit entry unfilled after "
                                f"{mp.plan.expire_bars} {mp.signal.timeframe} bars, cancelled", {"order_id": oid})

    # ── exits ────────────────────────────────────────────────────────────────────────────────
    def _price_exits(self: ExecutorCore, sym: str, now: datetime) -> None:
        """Price exits on the traded instrument's bar (options: on the underlying's bar)."""
        close = self.last_price[sym]
        for mp in list(self.pm.by_signal.values()):
            if not self._can_exit(mp):
                continue
            if self.policy(mp).exit_symbol(mp) != sym:
                continue
            if self.policy(mp).levels_on_underlying:
                self._evaluate_exit(mp, now)
                continue
            mp.position.mark(close)
            decision = self.exit_monitor.evaluate(mp.position, current_price=close, now=now)
            if decision is not None:
                self._submit_exit(mp, decision.reason, list(decision.fired))

    def _cloud_exits(self: ExecutorCore, key: tuple[str, str], now: datetime) -> None:
        """All exits, cloud ones included, for positions on this underlying and timeframe."""
        sym, tf = key
        tr = self.trackers[key]
        rows = list(self.cloud_rows[key])
        for mp in list(self.pm.by_signal.values()):
            if mp.signal.ticker != sym or mp.signal.timeframe != tf or not self._can_exit(mp):
                continue
            self._evaluate_exit(mp, now, bars=rows, cloud_states={"fast": tr.states()[tr.i_fast]})

    def _evaluate_exit(self: ExecutorCore, mp: ManagedPosition, now: datetime, *, bars: list | None = None,
                       cloud_states: dict | None = None) -> None:
        policy = self.policy(mp)
        extra = policy.extra_exits(self, mp, now)
        if policy.levels_on_underlying:  # an option: its stop and target are the underlying's
            view, px = policy.view(self, mp)
            prem = self.last_price.get(mp.decision.ticker)
            if prem is not None and prem >= 0:
                mp.position.mark(prem)
        else:
            view = mp.position
            px = self.last_price.get(mp.decision.ticker, mp.position.current_price)
            view.mark(px)
        decision = self.exit_monitor.evaluate(view, current_price=px, now=now, bars=bars,
                                              cloud_states=cloud_states, on_underlying=True)
        fired = list(decision.fired) if decision is not None else []
        if "expired" in extra:
            # settlement: close at the expiry quote (intrinsic value), whatever else fired
            self._submit_exit(mp, "expired", ["expired"] + fired)
            return
        for e in extra:
            if e not in fired:
                fired.append(e)
        if not fired:
            return
        fired.sort(key=lambda code: EXIT_PRIORITY.get(code, 99))
        self._submit_exit(mp, fired[0], fired)

    def _check_scale_in(self: ExecutorCore, mp: ManagedPosition, bar: tuple[float, float, float, float],
                        now: datetime) -> None:
        """The second half goes in on the first pullback to the pullback cloud that holds."""
        if mp.position is None or mp.entry_orders or not self._can_exit(mp):
            return  # first tranche not (fully) in yet, or the trade is on its way out
        _o, h, low, c = bar
        d_u = 1 if mp.signal.direction == "long" else -1
        verdict = pullback_verdict(d_u, low, h, c, self.cloud_edges(mp.signal.ticker, mp.signal.timeframe, "pullback"))
        if verdict == "none":
            return
        late = mp.signal.trade_type in ("day", "scalp") and self.exit_monitor.check_eod_close(mp.position, now=now)
        if verdict == "breaks" or self.kill_switch.is_active or late or not self.calendar.is_open(now):
            mp.scale_in = "skipped"
            why = ("pullback closed through the cloud" if verdict == "breaks" else
                   "kill switch active" if self.kill_switch.is_active else "session (or EOD window) over")
            self._event(now, "scale_in_skipped", f"{mp.signal_id}: {why}", {"reserved_shares": mp.plan.add_shares})
            return
        qty = min(mp.plan.add_shares, mp.plan.total_shares - mp.entry_filled_qty)
        if qty < 1:
            mp.scale_in = "skipped"
            return
        oid = self.engine.new_order_id()
        order = SubmitOrder(order_id=oid, instrument=mp.instrument, side="BUY" if mp.direction == "long" else "SELL",
                            qty=qty, order_type="market", time_in_force="DAY",
                            tags=(f"signal={mp.signal_id}", "role=add"))
        self.pm.add_entry_order(mp, oid, qty, role="add")
        self._event(now, "scale_in", f"{mp.signal_id}: pullback to the cloud held, adding {qty}",
                    {"order_id": oid, "shares": qty})
        self._emit(order)

    def _ensure_protected(self: ExecutorCore, now: datetime) -> None:
        """Every open position has its protective stop working (or, where the venue takes none,
        the strategy's own bar-close stop): a position found without one gets it again."""
        if not self.settings.stops_at_venue:
            return
        for mp in list(self.pm.by_signal.values()):
            if (not self.policy(mp).protect_at_venue or not self._can_exit(mp)
                    or mp.stop_order_id is not None or (mp.stop_retried and mp.entry_orders)):
                continue
            self._event(now, "stop_replaced", f"{mp.signal_id}: no protective stop working "
                        f"for {mp.open_qty}; placing it again", {"open_qty": mp.open_qty})
            self._protect(mp)


__all__ = ["MinuteMixin", "NANOS_PER_MINUTE", "TIMEFRAME_MINUTES"]
