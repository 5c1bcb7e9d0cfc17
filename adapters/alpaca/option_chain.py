"""Which option contracts the live data client keeps loaded and quoted (pure: no I/O).

Live options mode needs, at the moment a scalp signal arrives, the contract the executor picks
(ATM, 0DTE before the broker's cut-off, else the next expiry) already in the Nautilus cache *with
a quote*: the core chooses synchronously and a quote cannot be fetched inside that call. So the
data client tracks a small part of each underlying's chain ahead of time (decision):

* **Contracts**: the ``expiries`` nearest listed expiries from today (New York date; 2 covers
  "today's, else the next one" for daily and weekly underlyings) within ``band_pct`` of the last
  price (``GET /v2/options/contracts`` with ``underlying_symbols``, ``expiration_date_gte/_lte``,
  ``strike_price_gte/_lte``, paged). Reloaded on a new New York date and whenever the price has
  moved more than half the band from where the band was centred.
* **Quotes**: the ATM ± ``quote_strikes`` strikes, calls and puts, of those expiries are
  subscribed on the options feed (20 symbols per underlying with the defaults), re-centred on
  every bar of the underlying, and each new subscription is seeded with the latest quote
  (REST) so the cache has a price before the stream's first tick. The strategy's own
  ``SubscribeQuoteTicks`` (after it bought a contract) keeps that contract streamed whatever the
  price does.

Expiry dates come from the broker's list, not from a rule: the executor's expiry rule picks among
the listed expiries, and a contract the broker does not list cannot be traded anyway.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlsplit, urlunsplit
from zoneinfo import ZoneInfo

NY = ZoneInfo("America/New_York")
OPTION_DATA_STREAM_URL = "wss://stream.data.alpaca.markets"
#: How far ahead expiries are looked for: two weekly expiries plus a holiday.
EXPIRY_LOOKAHEAD_DAYS = 16


def option_stream_url_for(feed: str, override: str | None = None, data_stream_url: str | None = None) -> str:
    """The options market-data websocket: ``override`` as given; else the host of
    ``data_stream_url`` (e.g. the local server's ``ws://127.0.0.1:P/v2/iex``) or Alpaca's, with
    the path ``/v1beta1/{feed}`` (``indicative`` or ``opra``)."""
    if override:
        return override
    base = data_stream_url or OPTION_DATA_STREAM_URL
    parts = urlsplit(base)
    return urlunsplit((parts.scheme, parts.netloc, f"/v1beta1/{feed}", "", ""))


def ny_date(ts_ns: int) -> date:
    return datetime.fromtimestamp(ts_ns / 1e9, tz=timezone.utc).astimezone(NY).date()


def _expiry_of(instrument: Any) -> date:
    return ny_date(int(instrument.expiration_ns))


def _kind_of(instrument: Any) -> str:
    from nautilus_trader.model.enums import OptionKind

    return "call" if instrument.option_kind == OptionKind.CALL else "put"


class OptionChainTracker:
    """The loaded part of each underlying's option chain and the quotes it wants streamed."""

    def __init__(self, underlyings: tuple[str, ...] | list[str], *, expiries: int = 2, band_pct: float = 0.03,
                 quote_strikes: int = 2) -> None:
        if expiries < 1 or quote_strikes < 0 or not 0 < band_pct < 1:
            raise ValueError("option chain: expiries >= 1, quote_strikes >= 0 and 0 < band_pct < 1")
        self.underlyings = tuple(dict.fromkeys(u.strip().upper() for u in underlyings if u.strip()))
        self.expiries = expiries
        self.band_pct = band_pct
        self.quote_strikes = quote_strikes
        # underlying -> expiry -> kind -> {strike: symbol}
        self._chains: dict[str, dict[date, dict[str, dict[float, str]]]] = {}
        self._loaded: dict[str, tuple[date, float, float]] = {}  # (day, lo, hi) of the last load

    # ------------------------------------------------------------------------------ loading --
    def load_window(self, underlying: str, price: float, today: date) -> dict:
        """The contracts request for ``underlying`` around ``price`` on ``today`` (NY date)."""
        lo, hi = price * (1 - self.band_pct), price * (1 + self.band_pct)
        return {"expiration_gte": today.isoformat(),
                "expiration_lte": (today + timedelta(days=EXPIRY_LOOKAHEAD_DAYS)).isoformat(),
                "strike_price_gte": round(lo, 2), "strike_price_lte": round(hi, 2)}

    def needs_load(self, underlying: str, price: float, today: date) -> bool:
        """Never loaded, a new New York date, or the price more than half the band away from the
        loaded band's centre."""
        loaded = self._loaded.get(underlying)
        if loaded is None or loaded[0] != today:
            return True
        _, lo, hi = loaded
        centre = (lo + hi) / 2
        return abs(price - centre) > centre * self.band_pct / 2

    def set_chain(self, underlying: str, instruments: list, price: float, today: date) -> list[date]:
        """Keep the ``expiries`` nearest expiries (>= today) of the loaded ``instruments`` of
        ``underlying``; returns those expiries."""
        window = self.load_window(underlying, price, today)
        by_exp: dict[date, dict[str, dict[float, str]]] = {}
        for inst in instruments:
            if str(inst.underlying) != underlying:
                continue
            exp = _expiry_of(inst)
            if exp < today:
                continue
            by_exp.setdefault(exp, {"call": {}, "put": {}})[_kind_of(inst)][
                round(float(inst.strike_price), 4)] = inst.id.symbol.value
        keep = sorted(by_exp)[: self.expiries]
        self._chains[underlying] = {e: by_exp[e] for e in keep}
        self._loaded[underlying] = (today, window["strike_price_gte"], window["strike_price_lte"])
        return keep

    def chain_expiries(self, underlying: str) -> list[date]:
        return sorted(self._chains.get(underlying, {}))

    # ------------------------------------------------------------------------------- quotes --
    def wanted(self, underlying: str, price: float, today: date) -> set[str]:
        """Symbols whose quotes should stream: ATM ± ``quote_strikes`` strikes, calls and puts, of
        the kept expiries that have not passed."""
        out: set[str] = set()
        for exp, kinds in self._chains.get(underlying, {}).items():
            if exp < today:
                continue
            for strikes in kinds.values():
                if not strikes:
                    continue
                ks = sorted(strikes)
                atm = min(range(len(ks)), key=lambda i: (abs(ks[i] - price), ks[i]))
                for k in ks[max(0, atm - self.quote_strikes): atm + self.quote_strikes + 1]:
                    out.add(strikes[k])
        return out


__all__ = ["EXPIRY_LOOKAHEAD_DAYS", "OPTION_DATA_STREAM_URL", "OptionChainTracker", "ny_date",
           "option_stream_url_for"]
