"""Option contracts at the fake broker: what Alpaca accepts for them, their fees, and expiry.

Called by ``Engine`` (under its lock). What Alpaca documents and what is reproduced here:

* **Orders** (Options Trading, levels 1-2): single-leg simple orders, ``market`` or ``limit``,
  ``time_in_force=day``, whole contracts, no notional, no extended hours; buying to open needs
  level 2; selling without a long position (uncovered) is refused at levels below 3. Stop orders
  are refused here (the executor holds an option's stop itself on the underlying's bars).
* **Fills**: options trade on quotes, not bars: with ``option_fill_on_submit`` (default) a routed
  option order is matched at once against the contract's current quote (market buy at the ask,
  sell at the bid; a limit when the touch crosses it), then on every later quote.
* **0DTE cut-off**: orders that *open* a position in a contract expiring that session are refused
  from 45 minutes before the close (15:15 ET; 30 minutes, 15:30 ET, for SPY/QQQ/IWM/DIA), the
  schedule ``strategies.trade_executor.options_pricing`` trades against.
* **Expiry** (Alpaca support, "What is automatic exercise?", "Why was my long option position
  liquidated ..."): from 30 minutes before the close (15:30 ET; 15 minutes, 15:45 ET, for
  SPY/QQQ/IWM/DIA) an expiring long position that is in the money and that the account cannot
  support (a call: buying power below strike x 100 x contracts; a put: fewer long shares of the
  underlying than 100 x contracts) is liquidated at market (the bid). At the close, a contract in
  the money by $0.01 or more against the underlying's last price is exercised (long call: buy 100
  shares per contract at the strike; long put: sell them; short positions are assigned the other
  way) - activities ``OPEXC`` / ``OPASN`` and ``OPTRD`` for the shares, as Alpaca reports them;
  the rest expire worthless (``OPEXP``). The contract becomes ``inactive`` and its open orders
  expire. Alpaca processes exercise by 18:00 ET; here it happens at the close.
* **Fees**: Alpaca's per-contract pass-throughs from ``adapters.fees.fill_fees(option=True)``
  (ORF + OCC on both sides, options TAF + SEC on sales), by the New York date of the fill - the
  same function the live adapter and the backtest charge.

* **Quotes** (demos; ``option_auto_quotes``): on every 1-minute bar of an underlying, its active
  contracts within ``AUTO_QUOTE_BAND`` of the price are quoted: Black-Scholes on the bar's close
  (volatility ``option_quote_vol``, calendar time to the expiry close, no rates), a spread of 1 %
  of the premium (at least $0.01) around it, streamed and matched like ``set_quote``.

``ServerConfig.option_calendar="24/7"`` puts expiry and the cut-offs on UTC days (a session
00:00-24:00 UTC per date, like the executor's ``24/7`` calendar) for tests that run at any hour.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from adapters.fees import fill_fees

from .clock import NY

if TYPE_CHECKING:  # pragma: no cover
    from .engine import Engine

BROAD_ETFS = frozenset({"SPY", "QQQ", "IWM", "DIA"})
CUTOFF_MINUTES = {"broad": 30, "other": 45}       # before the close: no new 0DTE positions
LIQUIDATION_MINUTES = {"broad": 15, "other": 30}  # before the close: unsupported ITM longs liquidated
HUNDRED = Decimal(100)
CENT = Decimal("0.01")


AUTO_QUOTE_BAND = 0.05  # contracts within 5 % of the underlying's price are auto-quoted


def _group(underlying: str) -> str:
    return "broad" if underlying.upper() in BROAD_ETFS else "other"


def expiry_close(engine: "Engine", expiry: date) -> datetime | None:
    """The close of the expiry session (UTC): the server calendar's, or midnight UTC after the
    date with ``option_calendar="24/7"``."""
    if getattr(engine.cfg, "option_calendar", None) == "24/7":
        return datetime.combine(expiry + timedelta(days=1), time(0, 0), tzinfo=timezone.utc)
    s = engine.calendar.session(expiry)
    return None if s is None else s.close


def new_order_cutoff(engine: "Engine", contract: dict) -> datetime | None:
    close = expiry_close(engine, date.fromisoformat(contract["expiration_date"]))
    return None if close is None else close - timedelta(minutes=CUTOFF_MINUTES[_group(contract["underlying_symbol"])])


def liquidation_time(engine: "Engine", contract: dict) -> datetime | None:
    close = expiry_close(engine, date.fromisoformat(contract["expiration_date"]))
    return None if close is None else close - timedelta(
        minutes=LIQUIDATION_MINUTES[_group(contract["underlying_symbol"])])


def check_order(engine: "Engine", body: dict, *, symbol: str, side: str, otype: str, tif: str,
                qty: Decimal | None, notional: Decimal | None, order_class: str) -> None:
    """Raise the ``ApiError`` Alpaca answers to an option order it does not take."""
    from .engine import ApiError, unprocessable

    if notional is not None:
        raise unprocessable("notional orders are not supported for options")
    if order_class != "simple":
        raise unprocessable("options orders must be simple orders (multi-leg is not supported by the fake server)")
    if otype not in ("market", "limit"):
        raise unprocessable(f"order type {otype} is not supported for options (market or limit)")
    if tif != "day":
        raise unprocessable("options orders must be day orders")
    if qty is None or qty != qty.to_integral_value():
        raise unprocessable("qty must be a whole number of contracts for options")
    if body.get("extended_hours"):
        raise unprocessable("extended hours orders are not supported for options")
    level = int(engine.cfg.options_trading_level)
    pos = engine.positions.get(symbol)
    pqty = pos.qty if pos else Decimal(0)
    opening = (side == "buy" and pqty >= 0) or (side == "sell" and pqty <= 0)
    if level <= 0:
        raise ApiError(403, "account is not approved for options trading", 40310000)
    if side == "sell" and pqty <= 0 and level < 3:
        raise ApiError(403, "account not eligible to trade uncovered option contracts", 40310000)
    contract = engine.contracts.get(symbol)
    if contract is not None and opening:
        cutoff = new_order_cutoff(engine, contract)
        close = expiry_close(engine, date.fromisoformat(contract["expiration_date"]))
        now = engine.now()
        if cutoff is not None and close is not None and cutoff <= now < close:
            raise ApiError(403, "opening orders in contracts expiring today are not accepted after "
                                f"{cutoff.astimezone(NY):%H:%M} ET", 40310000)


def fill_fee(side: str, qty: Decimal, price: Decimal, mult: Decimal, when: datetime) -> Decimal:
    """Alpaca's per-contract pass-throughs of one option fill (``adapters.fees``)."""
    fee = fill_fees(side, qty, price, when.astimezone(NY).date(), option=True, option_broker="alpaca",
                    multiplier=mult)
    return Decimal(str(fee)).quantize(CENT)


def _intrinsic(contract: dict, underlying_px: Decimal) -> Decimal:
    k = Decimal(str(contract["strike_price"]))
    return max(underlying_px - k, Decimal(0)) if contract["type"] == "call" else max(k - underlying_px, Decimal(0))


def _underlying_price(engine: "Engine", contract: dict) -> Decimal | None:
    return engine.mark(contract["underlying_symbol"])


def settle(engine: "Engine") -> None:
    """Liquidations and expiry of option positions due on the server clock (cheap when there
    are none)."""
    if not engine.contracts:
        return
    now = engine.now()
    memo: dict[str, datetime | None] = {}

    def close_of(c: dict) -> datetime | None:  # one calendar lookup per expiry date and call
        d = c["expiration_date"]
        if d not in memo:
            memo[d] = expiry_close(engine, date.fromisoformat(d))
        return memo[d]

    for sym in [s for s in list(engine.positions) if s in engine.contracts]:
        contract = engine.contracts[sym]
        pos = engine.positions.get(sym)
        if pos is None:
            continue
        close = close_of(contract)
        if close is None:
            continue
        if now >= close:
            _expire(engine, sym, contract)
            continue
        liq = liquidation_time(engine, contract)
        if liq is not None and now >= liq and pos.qty > 0 and sym not in engine.option_liquidated:
            und_px = _underlying_price(engine, contract)
            if und_px is not None and _intrinsic(contract, und_px) >= CENT and not _supported(engine, contract, pos.qty):
                _liquidate(engine, sym, pos.qty)
    for sym, contract in engine.contracts.items():  # contracts past their close stop trading
        if contract["status"] == "active":
            close = close_of(contract)
            if close is not None and now >= close:
                contract["status"] = "inactive"
                contract["tradable"] = False
                a = engine.assets.get(sym)
                if a is not None:
                    a.status, a.tradable = "inactive", False
                for o in list(engine.orders.values()):
                    if o.symbol == sym and o.status in _open_statuses():
                        engine._cancel(o, status="expired")


def _open_statuses() -> tuple:
    from .engine import OPEN

    return OPEN


def _supported(engine: "Engine", contract: dict, contracts: Decimal) -> bool:
    """Can the account take the exercise of ``contracts`` long contracts?"""
    k = Decimal(str(contract["strike_price"]))
    if contract["type"] == "call":
        return engine._account_numbers()["buying_power"] >= k * HUNDRED * contracts
    shares = engine.positions.get(contract["underlying_symbol"])
    return shares is not None and shares.qty >= HUNDRED * contracts


def _liquidate(engine: "Engine", sym: str, qty: Decimal) -> None:
    engine.option_liquidated.add(sym)
    held = engine._held_qty(sym, "sell")
    if qty - held <= 0:
        return
    ack = engine.submit_order({"symbol": sym, "qty": str(qty - held), "side": "sell", "type": "market",
                               "time_in_force": "day", "client_order_id": f"liquidation-{engine.new_id()}"[:48]})
    o = engine.orders.get(ack["id"])
    if o is not None:
        o.source = "liquidation"


def _expire(engine: "Engine", sym: str, contract: dict) -> None:
    pos = engine.positions.pop(sym)
    now = engine.now()
    day = date.fromisoformat(contract["expiration_date"]).isoformat()
    und = contract["underlying_symbol"]
    und_px = _underlying_price(engine, contract)
    n = abs(pos.qty)
    itm = und_px is not None and _intrinsic(contract, und_px) >= CENT
    if not itm:
        engine.activities.append(_nta(engine, now, "OPEXP", day, sym, -pos.qty, Decimal(0), "Option Expiry"))
        return
    k = Decimal(str(contract["strike_price"]))
    shares = HUNDRED * n
    call = contract["type"] == "call"
    # long call / short put: shares bought at the strike; long put / short call: sold
    buy = call if pos.qty > 0 else not call
    engine._apply_position(und, "buy" if buy else "sell", shares, k)
    amount = k * shares
    engine.cash += -amount if buy else amount
    kind = "OPEXC" if pos.qty > 0 else "OPASN"
    engine.activities.append(_nta(engine, now, kind, day, sym, -pos.qty, Decimal(0),
                                  "Option Exercise" if pos.qty > 0 else "Option Assignment"))
    engine.activities.append(_nta(engine, now, "OPTRD", day, und, shares if buy else -shares,
                                  -amount if buy else amount, "Option Trade", price=k))


def _nta(engine: "Engine", now: datetime, kind: str, day: str, symbol: str, qty: Decimal, net: Decimal,
         description: str, price: Decimal | None = None) -> dict:
    from .engine import fmt

    rec: dict[str, Any] = {"_t": now, "id": engine._activity_id(now), "account_id": engine.account_id,
                           "activity_type": kind, "date": day, "net_amount": fmt(net) or "0",
                           "description": description, "symbol": symbol, "qty": fmt(qty), "status": "executed"}
    if price is not None:
        rec["price"] = fmt(price)
    return rec


def _bs(spot: float, strike: float, years: float, vol: float, call: bool) -> float:
    import math

    if years <= 0 or vol <= 0:
        return max(spot - strike, 0.0) if call else max(strike - spot, 0.0)
    sd = vol * math.sqrt(years)
    d1 = (math.log(spot / strike) + 0.5 * sd * sd) / sd
    d2 = d1 - sd

    def n(x: float) -> float:
        return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))

    return spot * n(d1) - strike * n(d2) if call else strike * n(-d2) - spot * n(-d1)


def auto_quote(engine: "Engine", underlying: str, price: float) -> int:
    """Quote ``underlying``'s active contracts near ``price`` (``option_auto_quotes``); returns
    how many were quoted."""
    now = engine.now()
    vol = float(getattr(engine.cfg, "option_quote_vol", 0.2))
    n = 0
    for sym, c in list(engine.contracts.items()):
        if c["underlying_symbol"] != underlying or c["status"] != "active":
            continue
        k = float(c["strike_price"])
        if abs(k / price - 1.0) > AUTO_QUOTE_BAND:
            continue
        close = expiry_close(engine, date.fromisoformat(c["expiration_date"]))
        if close is None or now >= close:
            continue
        years = max((close - now).total_seconds(), 60.0) / (365.0 * 86400.0)
        mid = _bs(price, k, years, vol, c["type"] == "call")
        spread = max(0.01, round(mid * 0.01, 2))
        bid = max(0.01, round(mid - spread / 2, 2))
        engine.on_quote(sym, bid, round(bid + spread, 2))
        n += 1
    return n


__all__ = ["AUTO_QUOTE_BAND", "auto_quote", "BROAD_ETFS", "CUTOFF_MINUTES", "LIQUIDATION_MINUTES", "check_order", "expiry_close", "fill_fee",
           "liquidation_time", "new_order_cutoff", "settle"]
