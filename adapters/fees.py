"""The venues' fees as they are in force on the trade date: one schedule, one formula, used
identically by the backtest (``backtests.fee_model.USEquityFeeModel``) and the Alpaca live adapter
(``adapters/alpaca/fees.py``); IBKR's option commission is here too, for the IBKR venue.

Where it lives (decision). Fees are the venues' (brokers' commissions and the regulatory
pass-throughs they charge), so the schedule lives with the adapters, at ``adapters/fees.py``, a
module of the ``adapters`` package itself (not of ``adapters.alpaca``, whose ``__init__`` loads
Nautilus configs). It is pure (standard library only: ``datetime``, ``decimal``, ``zoneinfo``) and
never loads NautilusTrader (tested), so the backtest's fee model and any venue adapter import it;
the adapters import nothing of the application (a layering contract in pyproject.toml). The
Nautilus ``FeeModel`` subclass for backtests lives with the simulated venue, in
``backtests/fee_model.py``.

Dated rates (``domain-facts.md`` §3 and §8, with the primary sources cited there):

* SEC Section 31 fee on sale proceeds of equities and options: $27.80 per $1M (effective
  2024-05-22) until 2025-05-13; $0.00 from 2025-05-14 (FINRA information notice of 2025-04-24 /
  SEC fee-rate advisory for the FY2025 mid-year adjustment); $20.60 per $1M from 2026-04-04 (SEC
  fee-rate advisory 2026-2).
* FINRA Trading Activity Fee on equity sales: $0.000166 per share, at most $8.30 per trade,
  through 2025-12-31; $0.000195 per share, at most $9.79, from 2026-01-01 (SR-FINRA-2024-019,
  which schedules further increases for 2027–2029: add them here when they are confirmed).
* Option pass-throughs charged by Alpaca (its own commission is $0), per contract: Options
  Regulatory Fee (ORF) $0.02685 on buys and sells; OCC clearing $0.02 on buys and sells, at most
  $55 per trade (OCC's cap); FINRA options TAF $0.00279 on sales; plus the SEC fee on the sale
  proceeds ``contracts × premium × 100``. Only one rate of each is known (as published by Alpaca
  in 2025–26); it is used for every date. CAT (Consolidated Audit Trail) fees are passed through
  too but no clear per-contract rate is documented in the facts: **not modelled**.
* IBKR options commission: $0.65 per contract ($0.50 for premiums $0.05–$0.10, $0.25 below
  $0.05; no premium given counts as ≥ $0.10), at least $1.00 per order, plus the same
  regulatory pass-throughs.

Dates before the first entry (2024-05-22) use the first entry's rates (earlier rates are not
modelled). Every fee is computed in ``Decimal``, summed per fill and rounded half-up to the cent,
so the backtest and the adapter produce the same cents for the same fill.

Trade date. The fee schedule is keyed by the *New York* calendar date of the fill time
(``trade_date_of``: epoch nanoseconds, a timezone-aware ``datetime`` or a ``date``). The new
functions (``equity_fees``, ``option_fees_alpaca``, ``option_fees_ibkr``, ``fill_fees``) require
it. The legacy wrappers (``regulatory_fees``, ``option_fees``) accept an
optional ``trade_date``; when it is omitted they use the **latest entry of the schedule**
(``FEE_SCHEDULE.latest``) for backward compatibility, never "today" (the wall clock is not an
input of this module).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo


NY = ZoneInfo("America/New_York")
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
CENT = Decimal("0.01")
MILLION = Decimal(1_000_000)
OPTION_MULTIPLIER = Decimal(100)


__all__ = [
    "OptionFees",
    "option_fees",
    "round_trip_fees",
    "FEE_SCHEDULE",
    "FINRA_TAF_CAP",
    "FINRA_TAF_PER_SHARE",
    "SEC_FEE_RATE",
    "FeeRates",
    "FeeSchedule",
    "equity_fees",
    "fill_fees",
    "ibkr_option_commission",
    "option_fees_alpaca",
    "option_fees_ibkr",
    "option_regulatory_fees",
    "regulatory_fees",
    "option_broker_name",
    "trade_date_of",
]


# -- the schedule ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class FeeRates:
    """All rates in force from ``effective`` (inclusive) until the next entry of the schedule."""

    effective: date
    sec_per_million: Decimal          # SEC Section 31, USD per $1M of sale proceeds
    taf_per_share: Decimal            # FINRA TAF, equity shares sold
    taf_cap: Decimal                  # FINRA TAF, maximum per trade (equities)
    orf_per_contract: Decimal         # Options Regulatory Fee, buys and sells
    occ_per_contract: Decimal         # OCC clearing fee, buys and sells
    occ_cap: Decimal                  # OCC clearing fee, maximum per trade
    options_taf_per_contract: Decimal  # FINRA TAF on option contracts sold
    source: str = ""

    @property
    def sec_rate(self) -> Decimal:
        """SEC fee as a fraction of proceeds."""
        return self.sec_per_million / MILLION


class FeeSchedule:
    """Dated fee rates; ``rates_on(d)`` gives the entry in force on trade date ``d`` (the last
    entry whose ``effective`` date is ≤ ``d``; the first entry for earlier dates)."""

    def __init__(self, entries: Iterable[FeeRates]) -> None:
        self.entries: tuple[FeeRates, ...] = tuple(sorted(entries, key=lambda e: e.effective))
        if not self.entries:
            raise ValueError("FeeSchedule needs at least one entry")
        if len({e.effective for e in self.entries}) != len(self.entries):
            raise ValueError("FeeSchedule entries must have distinct effective dates")

    def rates_on(self, trade_date: date | datetime | int) -> FeeRates:
        d = trade_date_of(trade_date)
        chosen = self.entries[0]
        for e in self.entries:
            if e.effective <= d:
                chosen = e
            else:
                break
        return chosen

    @property
    def latest(self) -> FeeRates:
        return self.entries[-1]

    def __repr__(self) -> str:
        return f"FeeSchedule({[e.effective.isoformat() for e in self.entries]})"


def _build_schedule() -> FeeSchedule:
    base = FeeRates(
        effective=date(2024, 5, 22),
        sec_per_million=Decimal("27.80"),
        taf_per_share=Decimal("0.000166"),
        taf_cap=Decimal("8.30"),
        orf_per_contract=Decimal("0.02685"),
        occ_per_contract=Decimal("0.02"),
        occ_cap=Decimal("55"),
        options_taf_per_contract=Decimal("0.00279"),
        source="SEC Section 31 $27.80/$1M (FY2024 rate, effective 2024-05-22); FINRA TAF "
               "$0.000166/share, cap $8.30; Alpaca option pass-throughs (ORF, OCC, options TAF)",
    )
    changes: list[tuple[date, dict[str, Any], str]] = [
        (date(2025, 5, 14), {"sec_per_million": Decimal("0.00")},
         "SEC Section 31 $0.00 (FINRA information notice 2025-04-24; SEC FY2025 mid-year advisory)"),
        (date(2026, 1, 1), {"taf_per_share": Decimal("0.000195"), "taf_cap": Decimal("9.79")},
         "FINRA TAF $0.000195/share, cap $9.79 (SR-FINRA-2024-019)"),
        (date(2026, 4, 4), {"sec_per_million": Decimal("20.60")},
         "SEC Section 31 $20.60/$1M (SEC fee-rate advisory 2026-2)"),
    ]
    entries = [base]
    for eff, fields, source in changes:
        entries.append(replace(entries[-1], effective=eff, source=source, **fields))
    return FeeSchedule(entries)


FEE_SCHEDULE = _build_schedule()

# Legacy constants (floats): the rates of the latest schedule entry. Prefer FEE_SCHEDULE.rates_on.
SEC_FEE_RATE = float(FEE_SCHEDULE.latest.sec_rate)
FINRA_TAF_PER_SHARE = float(FEE_SCHEDULE.latest.taf_per_share)
FINRA_TAF_CAP = float(FEE_SCHEDULE.latest.taf_cap)


# -- helpers --------------------------------------------------------------------------------------


def trade_date_of(value: date | datetime | int) -> date:
    """The New York calendar date of a fill time: epoch nanoseconds (``int``), a timezone-aware
    ``datetime``, or already a ``date`` (returned as is). Naive datetimes are refused."""
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"trade time: must be timezone-aware, got naive {value!r}")
        return value.astimezone(NY).date()
    if isinstance(value, date):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return (EPOCH + timedelta(microseconds=value // 1000)).astimezone(NY).date()
    raise TypeError(f"trade date must be a date, an aware datetime or epoch ns, got {value!r}")


def _d(value: Any) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


def _side(side: Any) -> str:
    s = str(side).strip().lower()
    if s not in ("buy", "sell"):
        raise ValueError(f"side must be 'buy' or 'sell', got {side!r}")
    return s


def _cents(x: Decimal) -> float:
    return float(x.quantize(CENT, rounding=ROUND_HALF_UP))


def _contracts(contracts: Any) -> Decimal:
    n = _d(contracts)
    if n < 0 or n != n.to_integral_value():
        raise ValueError(f"contracts must be a whole number >= 0, got {contracts!r}")
    return n


def _rates(trade_date: date | datetime | int | None, schedule: FeeSchedule) -> FeeRates:
    return schedule.latest if trade_date is None else schedule.rates_on(trade_date)


# -- equities -------------------------------------------------------------------------------------


def _equity_fee(side: str, q: Decimal, px: Decimal, r: FeeRates, commission_per_share: Decimal,
                multiplier: Decimal = Decimal(1)) -> Decimal:
    fee = commission_per_share * q
    if side == "sell":
        fee += q * px * multiplier * r.sec_rate + min(q * r.taf_per_share, r.taf_cap)
    return fee


def equity_fees(side: str, qty: Any, price: Any, trade_date: date | datetime | int, *,
                commission_per_share: Any = 0, schedule: FeeSchedule = FEE_SCHEDULE) -> float:
    """Fees in USD of one equity fill on ``trade_date`` (New York date), rounded half-up to the
    cent: commission (``commission_per_share`` × qty, $0 at Alpaca) on both sides; on sells the
    SEC fee on ``qty × price`` plus the FINRA TAF (per share, capped per trade)."""
    r = schedule.rates_on(trade_date)
    return _cents(_equity_fee(_side(side), _d(qty), _d(price), r, _d(commission_per_share)))


def regulatory_fees(side: str, qty: float, price: float, *, sec_rate: float | None = None,
                    taf_per_share: float | None = None, taf_cap: float | None = None,
                    commission_per_share: float = 0.0, multiplier: float = 1.0,
                    trade_date: date | datetime | int | None = None,
                    schedule: FeeSchedule = FEE_SCHEDULE) -> float:
    """Legacy equity formula (SEC on ``qty × price × multiplier`` + FINRA TAF on sells, plus
    commission), rounded half-up to the cent. Rates come from ``schedule`` on ``trade_date``;
    **without a trade date the latest schedule entry is used** (backward compatibility; pass the
    date). Explicit ``sec_rate`` / ``taf_per_share`` / ``taf_cap`` override the schedule. Not for
    options: use ``option_fees_alpaca`` / ``option_fees_ibkr``."""
    r = _rates(trade_date, schedule)
    if sec_rate is not None:
        r = replace(r, sec_per_million=_d(sec_rate) * MILLION)
    if taf_per_share is not None:
        r = replace(r, taf_per_share=_d(taf_per_share))
    if taf_cap is not None:
        r = replace(r, taf_cap=_d(taf_cap))
    fee = _equity_fee(_side(side), _d(qty), _d(price), r, _d(commission_per_share), _d(multiplier))
    return _cents(fee)


# -- options --------------------------------------------------------------------------------------


def _option_regulatory(side: str, n: Decimal, premium: Any, r: FeeRates, multiplier: Decimal) -> Decimal:
    fee = n * r.orf_per_contract + min(n * r.occ_per_contract, r.occ_cap)
    if side == "sell":
        fee += n * r.options_taf_per_contract
        if premium is not None:
            fee += n * _d(premium) * multiplier * r.sec_rate
    return fee


def option_regulatory_fees(side: str, contracts: Any, premium: Any, trade_date: date | datetime | int, *,
                           multiplier: Any = OPTION_MULTIPLIER,
                           schedule: FeeSchedule = FEE_SCHEDULE) -> float:
    """Regulatory pass-throughs of one option fill in USD, rounded half-up to the cent: ORF + OCC
    clearing (capped per trade) on both sides; on sells also the options TAF and the SEC fee on
    the proceeds ``contracts × premium × multiplier``. ``premium`` None (unknown) leaves the SEC
    fee out. CAT fees are not modelled."""
    r = schedule.rates_on(trade_date)
    return _cents(_option_regulatory(_side(side), _contracts(contracts), premium, r, _d(multiplier)))


def option_fees_alpaca(side: str, contracts: Any, premium: Any, trade_date: date | datetime | int, *,
                       multiplier: Any = OPTION_MULTIPLIER, schedule: FeeSchedule = FEE_SCHEDULE) -> float:
    """Fees of one option fill at Alpaca: $0 commission + ``option_regulatory_fees``."""
    return option_regulatory_fees(side, contracts, premium, trade_date, multiplier=multiplier,
                                  schedule=schedule)


IBKR_OPTION_MIN_PER_ORDER = Decimal("1.00")


def ibkr_option_commission(contracts: Any, premium: Any = None) -> float:
    """IBKR options commission of one order: $0.65 per contract ($0.50 for premiums $0.05–$0.10,
    $0.25 below $0.05; None counts as ≥ $0.10), at least $1.00 per order; $0 for 0 contracts."""
    n = _contracts(contracts)
    if n == 0:
        return 0.0
    p = None if premium is None else _d(premium)
    per = (Decimal("0.65") if p is None or p >= Decimal("0.10")
           else Decimal("0.50") if p >= Decimal("0.05") else Decimal("0.25"))
    return _cents(max(IBKR_OPTION_MIN_PER_ORDER, per * n))


def option_fees_ibkr(side: str, contracts: Any, premium: Any, trade_date: date | datetime | int, *,
                     multiplier: Any = OPTION_MULTIPLIER, schedule: FeeSchedule = FEE_SCHEDULE) -> float:
    """Fees of one option order at IBKR: ``ibkr_option_commission`` + the same regulatory
    pass-throughs as Alpaca (``option_regulatory_fees``)."""
    commission = _d(ibkr_option_commission(contracts, premium))
    regulatory = _d(option_regulatory_fees(side, contracts, premium, trade_date, multiplier=multiplier,
                                           schedule=schedule))
    return _cents(commission + regulatory)


_OPTION_BROKERS = {"alpaca": "alpaca", "none": "alpaca", "ibkr": "ibkr", "ib": "ibkr",
                   "interactive_brokers": "ibkr", "interactivebrokers": "ibkr"}


def option_broker_name(broker: str) -> str:
    """The schedule a broker name selects: "alpaca" (also "none") or "ibkr" (also "ib", ...)."""
    b = _OPTION_BROKERS.get(str(broker).strip().lower())
    if b is None:
        raise ValueError(f"unknown option broker {broker!r}; expected one of {sorted(_OPTION_BROKERS)}")
    return b


def fill_fees(side: str, qty: Any, price: Any, trade_date: date | datetime | int, *, option: bool = False,
              option_broker: str = "alpaca", multiplier: Any = OPTION_MULTIPLIER,
              commission_per_share: Any = 0, schedule: FeeSchedule = FEE_SCHEDULE) -> float:
    """The fee of one fill, whatever the instrument: the single entry point of the backtest fee
    model and the Alpaca adapter. Options (``option=True``; ``qty`` = contracts, ``price`` =
    premium per share, ``multiplier`` shares per contract) → ``option_fees_alpaca`` or
    ``option_fees_ibkr``; everything else → ``equity_fees``."""
    if option:
        fn = option_fees_ibkr if option_broker_name(option_broker) == "ibkr" else option_fees_alpaca
        return fn(side, qty, price, trade_date, multiplier=multiplier, schedule=schedule)
    return equity_fees(side, qty, price, trade_date, commission_per_share=commission_per_share,
                       schedule=schedule)


@dataclass(frozen=True)
class OptionFees:
    commission: float
    regulatory: float

    @property
    def total(self) -> float:
        return _cents(_d(self.commission) + _d(self.regulatory))


def option_fees(broker: str, contracts: Any, side: str, premium: Any = None,
                trade_date: date | datetime | int | None = None) -> OptionFees:
    """Fees of one option order of ``contracts`` contracts at ``broker`` ("alpaca" or "ibkr") on
    ``trade_date`` (the New York date of the fill; a ``date``, an aware ``datetime`` or epoch ns),
    split into commission and regulatory pass-throughs: ``ibkr_option_commission`` (Alpaca: $0) +
    ``option_regulatory_fees``. ``premium`` None leaves the SEC fee out and counts as >= $0.10 for
    IBKR; ``trade_date`` None uses the latest entry of the schedule."""
    b = option_broker_name(broker)
    n = _contracts(contracts)
    s = _side(side)
    if n == 0:
        return OptionFees(0.0, 0.0)
    when = FEE_SCHEDULE.latest.effective if trade_date is None else trade_date
    regulatory = option_regulatory_fees(s, n, premium, when)
    return OptionFees(0.0 if b == "alpaca" else ibkr_option_commission(n, premium), regulatory)


def round_trip_fees(broker: str, contracts: Any, entry_premium: Any = None, exit_premium: Any = None) -> float:
    """Buy-to-open plus sell-to-close fees in dollars."""
    return _cents(_d(option_fees(broker, contracts, "buy", entry_premium).total)
                  + _d(option_fees(broker, contracts, "sell", exit_premium).total))

