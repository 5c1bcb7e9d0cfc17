"""Pre-trade risk gate (PRD-135 RiskGate, core-contract.md).

``RiskGate(config).validate(signal, account, ...)`` runs these checks in order; the first failure
wins and its reason reads ``"<code>: <explanation with the numbers>"``:

     0. invalid_signal         not a TradeSignal / decision for another ticker / untradeable decision
     1. low_conviction         conviction < 50
    1b. stale_signal           (only with ``now``) now - signal.timestamp > max_signal_age_seconds
    1c. future_signal          (only with ``now``) signal.timestamp > now + max_signal_clock_skew_seconds
     2. kill_switch            the kill switch is active
     3. daily_loss_limit       daily_pnl <= -daily_loss_limit x starting_equity (exactly -10% blocks)
     4. min_equity             equity < min_account_equity
     5. market_closed          the signal was made outside the exchange session (holidays, early
                               closes); with ``now``: also when the market has not opened yet at now
    5b. eod_window             a day/scalp signal made at or after the EOD close cutoff (15:55 ET, or
                               eod_minutes_before_close before an early close)
    5c. after_cutoff           (only with ``now``) the signal was made inside the session and before
                               its trade type's cut-off, but at ``now`` that cut-off has passed:
                               day/scalp -> now >= the EOD cutoff of the signal's session;
                               swing -> the market is closed at now (a swing may still enter in a
                               later session while the signal is fresh enough)
     6. max_positions          open positions + pending entry orders >= max_concurrent_positions
    6b. max_daily_trades       entries taken this session + pending entry orders >= max_daily_trades
                               (runaway guard against a signal storm)
     7. duplicate              a position / pending order in the same traded ticker or on the same
                               underlying, in the same underlying direction — unless it is an add
                               to a winner (below)
     8. conflict               opposite exposure on the same underlying (long TQQQ vs short QQQ
                               signal -> SQQQ; long QQQ stock vs long SQQQ, ...)
     9. invalid_signal         no usable price, or the trade sizes to 0 shares
    10. single_stock_exposure  |net underlying exposure incl. the trade| <= 15% of equity
   10b. option_delta_exposure  options only: the delta-equivalent exposure of every option on
                               the underlying incl. the trade <= max_option_delta_exposure (50%)
    11. sector_exposure        |net sector exposure incl. the trade| <= 30% of equity
    12. buying_power           notional x (1 + slippage) + pending orders' notional <= buying power

Checks 10-12 shrink instead of rejecting when at least one whole share still fits: the decision is
then approved with ``adjustments = {"max_shares": n, "capped_by": <code>, "requested_shares": m,
"caps": {<code>: <shares allowed>, ...}}``. They reject only when not one share fits.

For the single-stock and sector caps an option counts by its premium (the capital at risk in the
name: market value, in the direction of its delta); its delta-equivalent exposure is capped on its
own (10b). Counting an ATM contract's delta against the 15 % cap would forbid even one SPY or QQQ
contract on a $100k account (about $26-36k of delta each), while the premium at risk is already
bounded by the risk budget.

The conflict / duplicate checks and ``underlying_exposure`` measure in the underlying (the signal
ticker): a holding's signed exposure is
``sign(direction) x leverage x market value`` (inverse ETFs carry negative leverage, so a long SQQQ
position is short QQQ exposure); an option with a known delta counts
``sign(direction) x delta x multiplier x underlying_price x contracts``. The proposed trade's
exposure is ``shares x price x |leverage|`` in the signal's direction (options:
``|delta| x multiplier x signal.entry_price`` per contract, delta from
``decision.etf_metadata["delta"]``, default 0.5).

Time: ``validate(..., now=...)`` takes the engine clock (tz-aware). Every time-dependent check
(1b, 1c, 5, 5b, 5c) is then judged against ``now``; without ``now`` they are judged at
``signal.timestamp`` (1b, 1c and 5c cannot fire), which is the contract's behaviour.

Adding to a winner (seed check 3, "unless adding to winner"): a same-direction entry on an
underlying already held passes check 7 when every same-direction holding there is an open
position (not a pending entry) on that same underlying whose unrealized R
(``Position.r_multiple()``: profit per share / |entry - initial stop|) is at least
``add_to_winner_min_r``. Pending same-direction entries, holdings of the same traded ticker for
another underlying, and positions whose initial risk cannot be measured (options) still reject as
``duplicate``. The add then goes through every later check (conflict, exposure caps, buying power)
like any entry; it was already counted by max_positions / max_daily_trades. An approved add carries
``adjustments["add_to_winner"] = {"existing_r": <lowest R>, "min_r": ..., "positions": [...]}``
(merged with the cap keys above when a cap applied too).

``details`` carries every number used; it is JSON-serialisable.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from strategies.trade_executor.calendar import MarketCalendar
from strategies.trade_executor.etf_catalog import sector_of
from strategies.trade_executor.etf_sizer import LeveragedETFSizer
from strategies.trade_executor.models import (
    MEDIUM_CONVICTION,
    RISK_REASON_CODES,
    AccountState,
    ETFSelection,
    ExecutorConfig,
    InstrumentDecision,
    PendingOrder,
    Position,
    PositionSize,
    RiskDecision,
    TradeSignal,
)
from strategies.trade_executor.sizing import PositionSizer, floor_shares
from strategies.trade_executor.timeutil import aware, parse_hhmm

DEFAULT_OPTION_DELTA = 0.5
OPTION_MULTIPLIER = 100.0


def _sign(direction: str) -> int:
    return 1 if direction == "long" else -1


def underlying_exposure(position: Position) -> float:
    """Signed exposure of a position in its underlying, in dollars (positive = long)."""
    sign = position.sign
    if position.instrument_type == "option" and position.delta is not None:
        if position.underlying_price is not None:
            return (
                sign * position.delta * position.multiplier * position.underlying_price
                * position.shares
            )
        # no underlying price: fall back to the premium, in the delta's direction
        return sign * math.copysign(1.0, position.delta) * position.market_value
    return sign * position.leverage * position.market_value


def capital_exposure(position: Position) -> float:
    """Signed exposure counted against the single-stock and sector caps: an option by its premium
    (market value) in the direction of its delta, everything else as ``underlying_exposure``."""
    if position.instrument_type == "option":
        d = position.delta if position.delta is not None else 1.0
        return position.sign * math.copysign(1.0, d) * position.market_value
    return underlying_exposure(position)


def pending_exposure(order: PendingOrder) -> float:
    """Signed underlying exposure of a pending entry order (options: premium-based)."""
    return _sign(order.direction) * order.leverage * pending_notional(order)


def pending_notional(order: PendingOrder) -> float:
    mult = OPTION_MULTIPLIER if order.instrument_type == "option" else 1.0
    return abs(order.shares * order.price * mult)


def _direction_in_underlying(direction: str, leverage: float, delta: float | None = None) -> int:
    lev_sign = 1 if leverage >= 0 else -1
    if delta is not None and delta != 0:
        lev_sign = 1 if delta > 0 else -1
    return _sign(direction) * lev_sign


@dataclass(frozen=True)
class _Holding:
    kind: str  # "position" | "pending"
    ticker: str
    underlying: str
    sector: str | None
    direction: int  # +1 long / -1 short, in the underlying
    exposure: float  # signed, underlying dollars
    signal_id: str
    capital: float = 0.0  # signed exposure for the caps: options by premium, others = exposure
    option_delta: float = 0.0  # |delta exposure| of an option position, underlying dollars
    r_multiple: float | None = None  # positions: unrealized R (None: pending or not measurable)


def _holdings(account: AccountState) -> list[_Holding]:
    out: list[_Holding] = []
    for p in account.open_positions:
        underlying = (p.underlying or p.ticker).upper()
        out.append(_Holding(
            kind="position", ticker=p.ticker.upper(), underlying=underlying,
            sector=p.sector or sector_of(underlying),
            direction=_direction_in_underlying(
                p.direction, p.leverage, p.delta if p.instrument_type == "option" else None),
            exposure=underlying_exposure(p), signal_id=p.signal_id, r_multiple=p.r_multiple(),
            capital=capital_exposure(p),
            option_delta=abs(underlying_exposure(p)) if p.instrument_type == "option" else 0.0,
        ))
    for o in account.pending_orders:
        underlying = (o.underlying or o.ticker).upper()
        out.append(_Holding(
            kind="pending", ticker=o.ticker.upper(), underlying=underlying,
            sector=o.sector or sector_of(underlying),
            direction=_direction_in_underlying(o.direction, o.leverage),
            exposure=pending_exposure(o), signal_id=o.signal_id, capital=pending_exposure(o),
        ))
    return out


def _units_within(room: float, per_unit: float) -> int:
    """Whole shares (contracts) of ``per_unit`` each that fit in ``room`` (0 when none is left)."""
    return floor_shares(room / per_unit) if room > 0 else 0


def _r(x: float) -> float:
    return round(float(x), 6)


def _dir_word(d: int) -> str:
    return "long" if d > 0 else "short"


class RiskGate:
    def __init__(
        self,
        config: ExecutorConfig | None = None,
        calendar: MarketCalendar | None = None,
        *,
        buying_power_includes_pending: bool = False,
    ) -> None:
        """``buying_power_includes_pending=True`` when the account's buying power already has the
        pending orders' notional taken out (then they are not subtracted a second time)."""
        self.config = config if config is not None else ExecutorConfig()
        self._calendar = calendar
        self.buying_power_includes_pending = buying_power_includes_pending
        self._sizer = PositionSizer(self.config)
        self._etf_sizer = LeveragedETFSizer(self.config)

    @property
    def calendar(self) -> MarketCalendar:
        if self._calendar is None:
            self._calendar = MarketCalendar(self.config.calendar)
        return self._calendar

    # ─────────────────────────────────────────────────────────────────────────────────────────
    def validate(
        self,
        signal: TradeSignal,
        account: AccountState,
        *,
        decision: InstrumentDecision | None = None,
        size: PositionSize | None = None,
        price: float | None = None,
        kill_switch_active: bool | str = False,
        now: datetime | None = None,
    ) -> RiskDecision:
        """Run the checks (module docstring). ``now``: the engine clock (tz-aware datetime); when
        given, freshness, market hours, the EOD window and the after-cutoff rule are judged at it.
        A naive or non-datetime ``now`` is a caller bug: ValueError."""
        if now is not None:
            aware(now, "now")  # the engine clock
        cfg = self.config
        details: dict[str, Any] = {}

        def reject(code: str, text: str) -> RiskDecision:
            details["rejected_by"] = code
            return RiskDecision(approved=False, reason=f"{code}: {text}", adjustments=None,
                                details=details)

        # 0. structure ------------------------------------------------------------------------
        if not isinstance(signal, TradeSignal):
            return reject("invalid_signal", f"expected a TradeSignal, got {type(signal).__name__}")
        if decision is not None:
            if decision.original_signal_ticker.upper() != signal.ticker:
                return reject(
                    "invalid_signal",
                    f"instrument decision is for {decision.original_signal_ticker}, "
                    f"signal is for {signal.ticker}",
                )
            if not decision.tradeable:
                return reject("invalid_signal",
                              f"no tradeable instrument ({decision.reason or 'not routed'})")

        equity = float(account.equity)
        starting = float(account.starting_equity if account.starting_equity is not None
                         else account.equity)
        holdings = _holdings(account)
        position_ids = {h.signal_id for h in holdings if h.kind == "position" and h.signal_id}
        n_positions = len(account.open_positions)
        n_pending = sum(1 for h in holdings
                        if h.kind == "pending" and not (h.signal_id and h.signal_id in position_ids))
        loss_limit = cfg.daily_loss_limit * starting
        details.update(
            signal_id=signal.signal_id, ticker=signal.ticker, direction=signal.direction,
            timeframe=signal.timeframe, conviction=signal.conviction,
            timestamp=signal.timestamp.isoformat(),
            equity=_r(equity), starting_equity=_r(starting), daily_pnl=_r(account.daily_pnl),
            daily_loss_limit_pct=cfg.daily_loss_limit, daily_loss_limit_amount=_r(loss_limit),
            min_account_equity=_r(cfg.min_account_equity),
            open_positions=n_positions, pending_orders=n_pending,
            open_count=n_positions + n_pending, max_positions=cfg.max_concurrent_positions,
            buying_power=_r(account.buying_power), kill_switch_active=bool(kill_switch_active),
        )

        ts = signal.timestamp
        if now is not None:
            age = (now - ts).total_seconds()
            details.update(now=now.isoformat(), signal_age_seconds=_r(age),
                           max_signal_age_seconds=cfg.max_signal_age_seconds,
                           max_signal_clock_skew_seconds=cfg.max_signal_clock_skew_seconds)

        # 1. conviction -----------------------------------------------------------------------
        if signal.conviction < MEDIUM_CONVICTION:
            return reject("low_conviction",
                          f"conviction {signal.conviction} < {MEDIUM_CONVICTION} (not executed)")
        # 1b/1c. freshness on the engine clock --------------------------------------------------
        if now is not None:
            if age > cfg.max_signal_age_seconds:
                return reject(
                    "stale_signal",
                    f"signal made at {ts.isoformat()} is {age:,.1f}s old at engine time "
                    f"{now.isoformat()} (limit {cfg.max_signal_age_seconds:g}s)",
                )
            if -age > cfg.max_signal_clock_skew_seconds:
                return reject(
                    "future_signal",
                    f"signal stamped {ts.isoformat()} is {-age:,.1f}s ahead of engine time "
                    f"{now.isoformat()} (allowed clock skew {cfg.max_signal_clock_skew_seconds:g}s)",
                )
        # 2. kill switch ----------------------------------------------------------------------
        if kill_switch_active:
            why = f" ({kill_switch_active})" if isinstance(kill_switch_active, str) else ""
            return reject("kill_switch", f"trading halted by the kill switch{why}")
        # 3. daily loss -----------------------------------------------------------------------
        if account.daily_pnl <= -loss_limit + 1e-9 * max(1.0, abs(loss_limit)):
            return reject(
                "daily_loss_limit",
                f"daily P&L {account.daily_pnl:,.2f} <= -{loss_limit:,.2f} "
                f"({cfg.daily_loss_limit:.1%} of starting equity {starting:,.2f})",
            )
        # 4. equity floor ---------------------------------------------------------------------
        if equity < cfg.min_account_equity:
            return reject("min_equity",
                          f"equity {equity:,.2f} < minimum {cfg.min_account_equity:,.2f}")
        # 5. market hours (the signal's own session) ------------------------------------------
        try:
            session = self.calendar.session_for(ts)
            is_open = self.calendar.is_open(ts)
        except ValueError as e:
            return reject("market_closed", str(e))
        details["session"] = (
            [session[0].isoformat(), session[1].isoformat()] if session is not None else None
        )
        if not is_open:
            if session is None:
                text = (f"no {self.calendar.name} session on {self.calendar.session_date(ts).isoformat()} "
                        f"(signal at {ts.isoformat()})")
            else:
                text = (f"{ts.isoformat()} is outside the {self.calendar.name} session "
                        f"{session[0].isoformat()} - {session[1].isoformat()}")
            return reject("market_closed", text)
        # 5b. no new day trade / scalp inside the EOD window: it would be closed at once ---------
        intraday = signal.trade_type in ("day", "scalp")
        cutoff: datetime | None = None
        if intraday and session is not None:
            eod_time = parse_hhmm(cfg.eod_close_time, "eod_close_time")
            cutoff = self.calendar.eod_close_for(ts, eod_time, cfg.eod_minutes_before_close)
            details["eod_cutoff"] = cutoff.isoformat()
            if ts >= cutoff:
                return reject("eod_window", f"{signal.trade_type} signal at {ts.isoformat()} is at/after the "
                                            f"EOD close cutoff {cutoff.isoformat()}")
        # 5c. judged at the engine clock: has the cut-off passed since the signal was made? -------
        if now is not None and session is not None:
            if now < session[0]:
                return reject("market_closed",
                              f"engine time {now.isoformat()} is before the {self.calendar.name} "
                              f"session open {session[0].isoformat()}")
            if intraday and cutoff is not None:
                if now >= cutoff:
                    return reject(
                        "after_cutoff",
                        f"{signal.trade_type} signal made at {ts.isoformat()} (before the EOD close "
                        f"cutoff {cutoff.isoformat()}), but engine time {now.isoformat()} is "
                        f"{(now - cutoff).total_seconds():,.1f}s past it",
                    )
            else:
                try:
                    open_now = self.calendar.is_open(now)
                except ValueError as e:
                    return reject("market_closed", f"engine time {now.isoformat()}: {e}")
                if not open_now:
                    return reject(
                        "after_cutoff",
                        f"{signal.trade_type} signal made at {ts.isoformat()} inside the session "
                        f"{session[0].isoformat()} - {session[1].isoformat()}, but the market is "
                        f"closed at engine time {now.isoformat()}",
                    )
        # 6. position count -------------------------------------------------------------------
        if n_positions + n_pending >= cfg.max_concurrent_positions:
            return reject(
                "max_positions",
                f"{n_positions + n_pending} open ({n_positions} positions + {n_pending} pending), "
                f"limit {cfg.max_concurrent_positions}",
            )
        # 6b. runaway guard: entries per session ----------------------------------------------
        details.update(daily_trades=account.daily_trades, max_daily_trades=cfg.max_daily_trades)
        if account.daily_trades + n_pending >= cfg.max_daily_trades:
            return reject(
                "max_daily_trades",
                f"{account.daily_trades} entries today + {n_pending} pending >= limit "
                f"{cfg.max_daily_trades} per session",
            )

        # the proposed trade, in the underlying ------------------------------------------------
        itype = decision.instrument_type if decision is not None else "stock"
        traded = (decision.ticker if decision is not None else signal.ticker).upper()
        lev = float(decision.leverage) if decision is not None else 1.0
        meta = (decision.etf_metadata or {}) if decision is not None else {}
        s = _sign(signal.direction)  # direction of the new exposure in the underlying
        underlying = signal.ticker
        details.update(instrument_type=itype, traded_ticker=traded, leverage=lev)

        # 7. duplicate (unless adding to a winner) --------------------------------------------
        same = [h for h in holdings
                if h.direction == s and (h.ticker == traded or h.underlying == underlying)]
        add_to_winner: dict[str, Any] | None = None
        if same:
            min_r = cfg.add_to_winner_min_r

            def why_not_add(h: _Holding) -> str | None:
                if h.kind == "pending":
                    return "an entry is still pending"
                if h.underlying != underlying:
                    return f"{h.ticker} is held for {h.underlying}, not {underlying}"
                if h.r_multiple is None:
                    return "its initial risk cannot be measured"
                if h.r_multiple + 1e-9 < min_r:
                    return f"it is at {h.r_multiple:+.2f}R < {min_r:g}R needed to add to a winner"
                return None

            # a pending entry names itself first, then the weakest position
            ordered = sorted(same, key=lambda h: (h.kind != "pending",
                                                  h.r_multiple if h.r_multiple is not None else -math.inf))
            for h in ordered:
                why = why_not_add(h)
                if why is not None:
                    via = f" via {h.ticker}" if h.ticker != h.underlying else ""
                    details["duplicate_of"] = {"kind": h.kind, "ticker": h.ticker,
                                               "signal_id": h.signal_id,
                                               "r_multiple": None if h.r_multiple is None
                                               else _r(h.r_multiple)}
                    return reject(
                        "duplicate",
                        f"already {_dir_word(h.direction)} {h.underlying}{via} "
                        f"({h.kind} {h.signal_id or h.ticker}, exposure {h.exposure:+,.2f}); "
                        f"not an add to a winner: {why}",
                    )
            add_to_winner = {
                "existing_r": _r(min(h.r_multiple for h in same)),  # type: ignore[type-var]
                "min_r": min_r,
                "positions": [{"ticker": h.ticker, "signal_id": h.signal_id,
                               "r_multiple": _r(h.r_multiple)} for h in same],
            }
            details["add_to_winner"] = add_to_winner
        # 8. conflict -------------------------------------------------------------------------
        for h in holdings:
            if h.direction == -s and (h.underlying == underlying or h.ticker == traded):
                via = f" via {h.ticker}" if h.ticker != h.underlying else ""
                details["conflicts_with"] = {"kind": h.kind, "ticker": h.ticker,
                                             "signal_id": h.signal_id, "exposure": _r(h.exposure)}
                return reject(
                    "conflict",
                    f"new {signal.direction} {underlying} (trading {traded}) against "
                    f"{_dir_word(h.direction)} {h.underlying} exposure {h.exposure:+,.2f}{via} "
                    f"({h.kind} {h.signal_id or h.ticker})",
                )

        # 9. price and size -------------------------------------------------------------------
        px = price
        if px is None and size is not None and size.shares > 0 and itype != "option":
            px = size.notional / size.shares
        if px is None and itype == "stock":
            px = signal.entry_price
        if px is None or not isinstance(px, (int, float)) or not math.isfinite(px) or px <= 0:
            return reject("invalid_signal",
                          f"no usable price for {traded} ({itype}), got {px!r}")
        px = float(px)
        unit_delta = 0.0
        if itype == "option":
            delta = abs(float(meta.get("delta", DEFAULT_OPTION_DELTA)))
            mult = float(meta.get("multiplier", OPTION_MULTIPLIER))
            unit_delta = delta * mult * signal.entry_price
            unit_cost = px * mult
            unit_exposure = unit_cost  # the caps count an option by its premium
            details.update(option_delta=delta, option_multiplier=mult, unit_delta_exposure=_r(unit_delta))
        else:
            unit_exposure = abs(lev) * px
            unit_cost = px
        if size is None:
            if itype == "option":
                return reject("invalid_signal", "option orders need a size (contracts)")
            if itype == "leveraged_etf":
                etf = ETFSelection(ticker=traded, leverage=abs(lev), tracks=str(meta.get("tracks", "")),
                                   avg_daily_volume=float(meta.get("selected_avg_daily_volume") or 0.0),
                                   is_inverse=bool(decision.is_inverse if decision else False))
                size = self._etf_sizer.calculate(signal, etf, account, etf_price=px)
            else:
                size = self._sizer.calculate(signal, account, price=px)
            details["sized_by_gate"] = True
        requested = int(size.shares)
        details.update(price=_r(px), unit_exposure=_r(unit_exposure), unit_cost=_r(unit_cost),
                       requested_shares=requested, size_capped_by=size.capped_by,
                       risk_amount=_r(size.risk_amount))
        if requested < 1:
            code = size.capped_by if size.capped_by in RISK_REASON_CODES else "invalid_signal"
            return reject(
                code,
                f"position sizes to 0 shares of {traded} (raw {size.raw_shares:.4f}, "
                f"risk budget {size.risk_amount:,.2f}, stop distance {size.stop_distance:.4f}/share"
                f"{', capped by ' + size.capped_by if size.capped_by else ''})",
            )

        shares = requested
        caps: dict[str, int] = {}
        binding: str | None = None

        # 10. single-stock (underlying) exposure -----------------------------------------------
        cap = cfg.max_single_stock_exposure * equity
        net = sum(h.capital for h in holdings if h.underlying == underlying)
        allowed = _units_within(cap - s * net, unit_exposure)
        details.update(single_stock_cap=_r(cap), underlying_exposure_before=_r(net),
                       single_stock_allowed_shares=allowed)
        if shares > allowed:
            if allowed < 1:
                return reject(
                    "single_stock_exposure",
                    f"{underlying} exposure {net:+,.2f} plus {unit_exposure:,.2f} per share of "
                    f"{traded} exceeds {cfg.max_single_stock_exposure:.0%} of equity "
                    f"({cap:,.2f}): not one share fits",
                )
            caps["single_stock_exposure"] = allowed
            shares, binding = allowed, "single_stock_exposure"
        details["underlying_exposure_after"] = _r(net + s * shares * unit_exposure)

        # 10b. options: delta-equivalent exposure on the underlying -------------------------------
        if itype == "option" and unit_delta > 0:
            dcap = cfg.max_option_delta_exposure * equity
            dnow = sum(h.option_delta for h in holdings if h.underlying == underlying)
            dallowed = _units_within(dcap - dnow, unit_delta)
            details.update(option_delta_cap=_r(dcap), option_delta_before=_r(dnow),
                           option_delta_allowed_contracts=dallowed)
            if shares > dallowed:
                if dallowed < 1:
                    return reject(
                        "option_delta_exposure",
                        f"{underlying} options' delta exposure {dnow:,.2f} plus {unit_delta:,.2f} per "
                        f"contract of {traded} exceeds {cfg.max_option_delta_exposure:.0%} of equity "
                        f"({dcap:,.2f}): not one contract fits",
                    )
                caps["option_delta_exposure"] = dallowed
                shares, binding = dallowed, "option_delta_exposure"
            details["option_delta_after"] = _r(dnow + shares * unit_delta)

        # 11. sector exposure -------------------------------------------------------------------
        sector = meta.get("sector") or sector_of(underlying)
        details["sector"] = sector
        if sector is not None:
            scap = cfg.max_sector_exposure * equity
            snet = sum(h.capital for h in holdings if h.sector == sector)
            sallowed = _units_within(scap - s * snet, unit_exposure)
            details.update(sector_cap=_r(scap), sector_exposure_before=_r(snet),
                           sector_allowed_shares=sallowed)
            if shares > sallowed:
                if sallowed < 1:
                    return reject(
                        "sector_exposure",
                        f"{sector} exposure {snet:+,.2f} plus {unit_exposure:,.2f} per share of "
                        f"{traded} exceeds {cfg.max_sector_exposure:.0%} of equity "
                        f"({scap:,.2f}): not one share fits",
                    )
                caps["sector_exposure"] = sallowed
                shares, binding = sallowed, "sector_exposure"
            details["sector_exposure_after"] = _r(snet + s * shares * unit_exposure)

        # 12. buying power ----------------------------------------------------------------------
        pend = 0.0 if self.buying_power_includes_pending else sum(
            pending_notional(o) for o in account.pending_orders)
        per_share = unit_cost * (1.0 + cfg.slippage_buffer)
        room = float(account.buying_power) - pend
        ballowed = _units_within(room, per_share)
        details.update(pending_notional=_r(pend), slippage_buffer=cfg.slippage_buffer,
                       buying_power_per_share=_r(per_share), buying_power_allowed_shares=ballowed)
        if shares > ballowed:
            if ballowed < 1:
                return reject(
                    "buying_power",
                    f"one share of {traded} needs {per_share:,.2f} (incl. "
                    f"{cfg.slippage_buffer:.2%} slippage) + pending {pend:,.2f}; "
                    f"buying power {account.buying_power:,.2f}",
                )
            caps["buying_power"] = ballowed
            shares, binding = ballowed, "buying_power"
        details.update(required_buying_power=_r(shares * per_share + pend), approved_shares=shares,
                       notional=_r(shares * unit_cost))

        adjustments = None
        if caps:
            adjustments = {"max_shares": shares, "capped_by": binding,
                           "requested_shares": requested, "caps": caps}
        if add_to_winner is not None:
            adjustments = dict(adjustments or {})
            adjustments["add_to_winner"] = add_to_winner
        return RiskDecision(approved=True, reason=None, adjustments=adjustments, details=details)


__all__ = ["RiskGate", "capital_exposure", "pending_exposure", "pending_notional", "underlying_exposure"]
