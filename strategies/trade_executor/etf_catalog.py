"""The leveraged-ETF universe (PRD-135) and the ticker -> sector/index table used to route signals.

``LEVERAGED_ETF_CATALOG`` keeps the seed's 20 entries (keys, ticker, inverse, tracks) and their
seed values, except where the seed is factually wrong about the fund's leverage (see below).
Extra keys per entry:

* ``avg_daily_volume`` / ``inverse_avg_daily_volume``: rough average daily *dollar* volume of the
  bull / inverse fund (order of magnitude, 2024-25; the router's liquidity floor compares against
  them). They are approximate configuration, not data: refresh them from market data for live use.
* ``expense_ratio`` / ``inverse_expense_ratio``: net expense ratios where domain-facts §2 gives one
  (mid-point of the quoted range), else None.
* ``inverse_leverage``: the signed daily leverage of the inverse fund. It is ``-leverage`` except
  for SVXY, which is a -0.5x short-VIX-futures fund, not -1.5x.

Leverage is what the fund delivers, because the sizer, the exit levels and the synthetic bars all
use it: Direxion cut JNUG/JDST (and NUGT/DUST, ERX/ERY) from 3x to 2x in 2020 (domain-facts §8),
so all three pairs are 2x here. The seed lists JNUG/JDST at 3x; its key ``bull_gold_3x`` is kept
as the seed's identifier (it is referenced by configuration and the routing tables) and the
difference is noted in ``notes``. Other known differences are noted there too (FNGU / FNGD are
exchange-traded notes).

``TICKER_SECTOR`` maps signal tickers (index ETFs and large caps) to a sector/index key;
``SECTOR_ETF_KEYS`` maps each key to the catalog entries that track it, preferred entry first.
"""

from __future__ import annotations

from typing import Any

LEVERAGED_ETF_CATALOG: dict[str, dict[str, Any]] = {
    # ── Index ETFs (most liquid, primary instruments) ──
    "bull_spy_3x": {
        "ticker": "SPXL", "inverse": "SPXS", "leverage": 3, "tracks": "S&P 500",
        "avg_daily_volume": 600e6, "inverse_avg_daily_volume": 120e6,
        "expense_ratio": 0.0089, "inverse_expense_ratio": 0.0107,
    },
    "bull_spy_3x_alt": {
        "ticker": "UPRO", "inverse": "SPXU", "leverage": 3, "tracks": "S&P 500",
        "avg_daily_volume": 350e6, "inverse_avg_daily_volume": 150e6,
        "expense_ratio": 0.0091, "inverse_expense_ratio": None,
    },
    "bull_qqq_3x": {
        "ticker": "TQQQ", "inverse": "SQQQ", "leverage": 3, "tracks": "NASDAQ-100",
        "avg_daily_volume": 5e9, "inverse_avg_daily_volume": 2.5e9,
        "expense_ratio": 0.0086, "inverse_expense_ratio": 0.0095,
    },
    "bull_rut_3x": {
        "ticker": "TNA", "inverse": "TZA", "leverage": 3, "tracks": "Russell 2000",
        "avg_daily_volume": 500e6, "inverse_avg_daily_volume": 300e6,
        "expense_ratio": 0.0106, "inverse_expense_ratio": None,
    },
    "bull_dow_3x": {
        "ticker": "UDOW", "inverse": "SDOW", "leverage": 3, "tracks": "Dow 30",
        "avg_daily_volume": 150e6, "inverse_avg_daily_volume": 60e6,
        "expense_ratio": None, "inverse_expense_ratio": None,
    },
    # ── Sector ETFs ──
    "bull_semi_3x": {
        "ticker": "SOXL", "inverse": "SOXS", "leverage": 3, "tracks": "Semiconductors",
        "avg_daily_volume": 2e9, "inverse_avg_daily_volume": 1e9,
        "expense_ratio": 0.0085, "inverse_expense_ratio": 0.0102,
    },
    "bull_fang_3x": {
        "ticker": "FNGU", "inverse": "FNGD", "leverage": 3, "tracks": "FANG+",
        "avg_daily_volume": 150e6, "inverse_avg_daily_volume": 30e6,
        "expense_ratio": None, "inverse_expense_ratio": None,
        "notes": "exchange-traded notes (issuer credit risk)",
    },
    "bull_tech_3x": {
        "ticker": "TECL", "inverse": "TECS", "leverage": 3, "tracks": "Technology",
        "avg_daily_volume": 80e6, "inverse_avg_daily_volume": 15e6,
        "expense_ratio": None, "inverse_expense_ratio": None,
    },
    "bull_fin_3x": {
        "ticker": "FAS", "inverse": "FAZ", "leverage": 3, "tracks": "Financials",
        "avg_daily_volume": 100e6, "inverse_avg_daily_volume": 15e6,
        "expense_ratio": None, "inverse_expense_ratio": None,
    },
    "bull_energy_2x": {
        "ticker": "ERX", "inverse": "ERY", "leverage": 2, "tracks": "Energy",
        "avg_daily_volume": 30e6, "inverse_avg_daily_volume": 5e6,
        "expense_ratio": None, "inverse_expense_ratio": None,
    },
    "bull_bio_3x": {
        "ticker": "LABU", "inverse": "LABD", "leverage": 3, "tracks": "Biotech",
        "avg_daily_volume": 150e6, "inverse_avg_daily_volume": 50e6,
        "expense_ratio": None, "inverse_expense_ratio": None,
    },
    "bull_retail_3x": {
        "ticker": "RETL", "inverse": "RETS", "leverage": 3, "tracks": "Retail",
        "avg_daily_volume": 4e6, "inverse_avg_daily_volume": 0.5e6,
        "expense_ratio": None, "inverse_expense_ratio": None,
    },
    "bull_re_3x": {
        "ticker": "DRN", "inverse": "DRV", "leverage": 3, "tracks": "Real Estate",
        "avg_daily_volume": 4e6, "inverse_avg_daily_volume": 5e6,
        "expense_ratio": None, "inverse_expense_ratio": None,
    },
    "bull_health_3x": {
        "ticker": "CURE", "inverse": None, "leverage": 3, "tracks": "Healthcare",
        "avg_daily_volume": 8e6, "inverse_avg_daily_volume": None,
        "expense_ratio": None, "inverse_expense_ratio": None,
    },
    # ── Commodity / Precious Metal ETFs ──
    "bull_gold_2x": {
        "ticker": "NUGT", "inverse": "DUST", "leverage": 2, "tracks": "Gold Miners",
        "avg_daily_volume": 100e6, "inverse_avg_daily_volume": 20e6,
        "expense_ratio": None, "inverse_expense_ratio": None,
    },
    "bull_gold_3x": {
        "ticker": "JNUG", "inverse": "JDST", "leverage": 2, "tracks": "Jr Gold Miners",
        "avg_daily_volume": 50e6, "inverse_avg_daily_volume": 8e6,
        "expense_ratio": None, "inverse_expense_ratio": None,
        "notes": "JNUG/JDST have been 2x funds since 2020 (Direxion); the seed lists 3 (key kept)",
    },
    "bull_silver_2x": {
        "ticker": "AGQ", "inverse": "ZSL", "leverage": 2, "tracks": "Silver",
        "avg_daily_volume": 30e6, "inverse_avg_daily_volume": 20e6,
        "expense_ratio": None, "inverse_expense_ratio": None,
    },
    "bull_natgas_2x": {
        "ticker": "BOIL", "inverse": "KOLD", "leverage": 2, "tracks": "Natural Gas",
        "avg_daily_volume": 150e6, "inverse_avg_daily_volume": 80e6,
        "expense_ratio": None, "inverse_expense_ratio": None,
    },
    "bull_oil_2x": {
        "ticker": "UCO", "inverse": "SCO", "leverage": 2, "tracks": "Crude Oil",
        "avg_daily_volume": 80e6, "inverse_avg_daily_volume": 20e6,
        "expense_ratio": None, "inverse_expense_ratio": None,
    },
    # ── Volatility ETFs ──
    "bull_vix_1.5x": {
        "ticker": "UVXY", "inverse": "SVXY", "leverage": 1.5, "tracks": "VIX Short-Term",
        "avg_daily_volume": 500e6, "inverse_avg_daily_volume": 60e6,
        "expense_ratio": None, "inverse_expense_ratio": None,
        "inverse_leverage": -0.5,
        "notes": "SVXY is -0.5x short-term VIX futures, not -1.5x",
    },
}

# Signed leverage of every inverse fund (-leverage unless the entry says otherwise).
for _entry in LEVERAGED_ETF_CATALOG.values():
    _entry.setdefault("inverse_leverage", -float(_entry["leverage"]) if _entry["inverse"] else None)
    _entry.setdefault("notes", None)
del _entry

# Sector / index key -> catalog keys tracking it, preferred entry first.
SECTOR_ETF_KEYS: dict[str, tuple[str, ...]] = {
    "sp500": ("bull_spy_3x", "bull_spy_3x_alt"),
    "nasdaq100": ("bull_qqq_3x",),
    "russell2000": ("bull_rut_3x",),
    "dow30": ("bull_dow_3x",),
    "semiconductors": ("bull_semi_3x",),
    "fang": ("bull_fang_3x",),
    "technology": ("bull_tech_3x",),
    "financials": ("bull_fin_3x",),
    "energy": ("bull_energy_2x",),
    "biotech": ("bull_bio_3x",),
    "retail": ("bull_retail_3x",),
    "real_estate": ("bull_re_3x",),
    "healthcare": ("bull_health_3x",),
    "gold_miners": ("bull_gold_2x",),
    "junior_gold_miners": ("bull_gold_3x",),
    "silver": ("bull_silver_2x",),
    "natural_gas": ("bull_natgas_2x",),
    "crude_oil": ("bull_oil_2x",),
    "vix": ("bull_vix_1.5x",),
}

# Broad-market keys (the rest are sectors / commodities).
INDEX_KEYS: frozenset[str] = frozenset({"sp500", "nasdaq100", "russell2000", "dow30"})

_SECTOR_MEMBERS: dict[str, tuple[str, ...]] = {
    # indexes: the index ETFs themselves and the index symbols
    "sp500": ("SPY", "VOO", "IVV", "SPX", "SPLG"),
    "nasdaq100": ("QQQ", "QQQM", "NDX"),
    "russell2000": ("IWM", "RUT", "VTWO"),
    "dow30": ("DIA", "DJI"),
    # sectors: the sector ETF(s) and large caps. A name belongs to one key only: the mega-cap
    # platforms in the NYSE FANG+ index go to "fang"; AAPL and MSFT stay in "technology"
    # (the largest XLK weights, which TECL tracks); chip makers go to "semiconductors".
    "technology": (
        "XLK", "VGT", "AAPL", "MSFT", "ORCL", "CRM", "ADBE", "CSCO", "IBM", "ACN", "NOW",
        "INTU", "PANW", "CRWD", "SNOW", "PLTR", "SHOP", "UBER",
    ),
    "semiconductors": (
        "SMH", "SOXX", "NVDA", "AMD", "AVGO", "INTC", "QCOM", "TXN", "MU", "AMAT", "LRCX",
        "KLAC", "MRVL", "ADI", "TSM", "ASML", "ON", "NXPI", "MCHP", "ARM", "SMCI",
    ),
    "fang": ("META", "GOOGL", "GOOG", "AMZN", "NFLX", "TSLA", "BABA"),
    "financials": (
        "XLF", "KBE", "JPM", "BAC", "WFC", "C", "GS", "MS", "SCHW", "BLK", "AXP", "USB",
        "PNC", "TFC", "COF", "BRK.B", "BRK-B", "V", "MA",
    ),
    "energy": ("XLE", "XOP", "XOM", "CVX", "COP", "EOG", "SLB", "OXY", "PSX", "MPC", "VLO",
               "HAL", "DVN"),
    "biotech": ("XBI", "IBB", "AMGN", "GILD", "VRTX", "REGN", "BIIB", "MRNA", "ALNY"),
    "healthcare": ("XLV", "UNH", "JNJ", "LLY", "PFE", "MRK", "ABBV", "TMO", "ABT", "DHR",
                   "BMY", "CVS", "ISRG"),
    "retail": ("XRT", "WMT", "COST", "HD", "TGT", "LOW", "TJX", "BBY", "DG", "DLTR", "ROST"),
    "real_estate": ("XLRE", "VNQ", "IYR", "PLD", "AMT", "EQIX", "SPG", "O", "PSA", "CCI",
                    "WELL"),
    "gold_miners": ("GDX", "NEM", "GOLD", "AEM", "FNV", "WPM"),
    "junior_gold_miners": ("GDXJ",),
    "silver": ("SLV", "SIL"),
    "natural_gas": ("UNG",),
    "crude_oil": ("USO", "BNO"),
    "vix": ("VIX", "VXX", "VIXY"),
}

TICKER_SECTOR: dict[str, str] = {
    ticker: key for key, members in _SECTOR_MEMBERS.items() for ticker in members
}

# Every fund ticker in the catalog -> (catalog key, is_inverse)
ETF_TICKERS: dict[str, tuple[str, bool]] = {}
for _key, _entry in LEVERAGED_ETF_CATALOG.items():
    ETF_TICKERS[_entry["ticker"]] = (_key, False)
    if _entry["inverse"]:
        ETF_TICKERS[_entry["inverse"]] = (_key, True)
del _key, _entry


def sector_of(ticker: str | None) -> str | None:
    """Sector/index key of a signal ticker (case-insensitive), or None when unknown.

    A catalog fund's own ticker maps to the key its entry is listed under (TQQQ -> nasdaq100).
    """
    if not ticker:
        return None
    t = ticker.strip().upper()
    key = TICKER_SECTOR.get(t)
    if key is not None:
        return key
    hit = ETF_TICKERS.get(t)
    if hit is not None:
        for sector, keys in SECTOR_ETF_KEYS.items():
            if hit[0] in keys:
                return sector
    return None


def is_index(key: str | None) -> bool:
    return key in INDEX_KEYS


def etf_keys_for(sector: str | None, catalog: dict[str, dict[str, Any]] | None = None) -> list[str]:
    """Catalog keys tracking ``sector``, preferred first; entries of a custom catalog may also
    declare ``"sector": <key>`` themselves."""
    if sector is None:
        return []
    catalog = LEVERAGED_ETF_CATALOG if catalog is None else catalog
    keys = [k for k in SECTOR_ETF_KEYS.get(sector, ()) if k in catalog]
    keys += [k for k, e in catalog.items() if e.get("sector") == sector and k not in keys]
    return keys


__all__ = [
    "ETF_TICKERS",
    "INDEX_KEYS",
    "LEVERAGED_ETF_CATALOG",
    "SECTOR_ETF_KEYS",
    "TICKER_SECTOR",
    "etf_keys_for",
    "is_index",
    "sector_of",
]
