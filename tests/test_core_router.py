"""InstrumentRouter (mode table, ETF selection) and the ETF catalog / sector table."""

from __future__ import annotations

from functools import partial

import pytest

from strategies.trade_executor import (
    LEVERAGED_ETF_CATALOG,
    SECTOR_ETF_KEYS,
    TICKER_SECTOR,
    InstrumentMode,
    InstrumentRouter,
    sector_of,
)
from tests import builders

sig = partial(builders.signal, volume_confirmed=None)  # entry 100, stop 98 (long) / 102 (short)


# ── mode table ──────────────────────────────────────────────────────────────────────────────
EXPECTED = {
    #                           1m              5m               10m              1h       1d
    InstrumentMode.OPTIONS: ("option", "stock", "stock", "stock", "stock"),
    InstrumentMode.LEVERAGED_ETF: ("leveraged_etf",) * 5,
    InstrumentMode.BOTH: ("option", "leveraged_etf", "leveraged_etf", "stock", "stock"),
    InstrumentMode.STOCK: ("stock",) * 5,
}


@pytest.mark.parametrize("mode", list(EXPECTED))
@pytest.mark.parametrize("i,tf", list(enumerate(["1m", "5m", "10m", "1h", "1d"])))
@pytest.mark.parametrize("direction", ["long", "short"])
def test_mode_table(mode, i, tf, direction):
    d = InstrumentRouter(mode).route(sig("QQQ", direction, timeframe=tf))
    kind = EXPECTED[mode][i]
    assert d.instrument_type == kind
    assert d.tradeable
    assert d.original_signal_ticker == "QQQ"
    if kind in ("stock", "option"):
        assert (d.ticker, d.leverage, d.is_inverse, d.etf_metadata) == ("QQQ", 1.0, False, None)
    else:
        assert d.ticker == ("TQQQ" if direction == "long" else "SQQQ")
        assert d.leverage == (3.0 if direction == "long" else -3.0)
        assert d.is_inverse == (direction == "short")


def test_mode_accepts_string_and_rejects_unknown():
    assert InstrumentRouter("both").mode is InstrumentMode.BOTH
    with pytest.raises(ValueError, match="mode"):
        InstrumentRouter("crypto")


# ── ETF mapping ─────────────────────────────────────────────────────────────────────────────
@pytest.mark.parametrize("ticker,bull,bear,lev", [
    ("QQQ", "TQQQ", "SQQQ", 3.0),
    ("SPY", "SPXL", "SPXS", 3.0),      # primary S&P pair listed first
    ("IWM", "TNA", "TZA", 3.0),
    ("DIA", "UDOW", "SDOW", 3.0),
    ("AAPL", "TECL", "TECS", 3.0),     # AAPL -> technology
    ("MSFT", "TECL", "TECS", 3.0),
    ("NVDA", "SOXL", "SOXS", 3.0),     # NVDA -> semiconductors
    ("AMD", "SOXL", "SOXS", 3.0),
    ("JPM", "FAS", "FAZ", 3.0),
    ("META", "FNGU", "FNGD", 3.0),
    ("AMGN", "LABU", "LABD", 3.0),
])
def test_select_etf_day_trades(ticker, bull, bear, lev):
    r = InstrumentRouter(InstrumentMode.LEVERAGED_ETF)
    up = r.select_etf(sig(ticker, "long"))
    down = r.select_etf(sig(ticker, "short"))
    assert (up.ticker, up.leverage, up.is_inverse) == (bull, lev, False)
    assert (down.ticker, down.leverage, down.is_inverse) == (bear, lev, True)  # leverage > 0 here
    dec = r.route(sig(ticker, "short"))
    assert (dec.ticker, dec.leverage, dec.is_inverse) == (bear, -lev, True)  # signed in the decision
    assert dec.etf_metadata["catalog_key"] in SECTOR_ETF_KEYS[sector_of(ticker)]


def test_spy_alt_pair_when_primary_missing():
    catalog = {k: v for k, v in LEVERAGED_ETF_CATALOG.items() if k != "bull_spy_3x"}
    r = InstrumentRouter(InstrumentMode.LEVERAGED_ETF, etf_catalog=catalog)
    assert r.select_etf(sig("SPY", "long")).ticker == "UPRO"
    assert r.select_etf(sig("SPY", "short")).ticker == "SPXU"


def test_energy_2x_and_liquidity_floor_on_inverse():
    r = InstrumentRouter(InstrumentMode.LEVERAGED_ETF)
    long = r.route(sig("XOM", "long"))
    assert (long.ticker, long.leverage) == ("ERX", 2.0)
    # ERY trades ~$5M/day < $10M floor -> no instrument for an energy short
    short = r.route(sig("XOM", "short"))
    assert not short.tradeable and short.reason.startswith("no_instrument")
    assert "ERY" in short.reason
    assert InstrumentRouter(InstrumentMode.LEVERAGED_ETF, min_etf_daily_volume=5e6).route(
        sig("XOM", "short")).ticker == "ERY"


def test_healthcare_short_has_no_inverse():
    r = InstrumentRouter(InstrumentMode.LEVERAGED_ETF, min_etf_daily_volume=0)
    assert r.select_etf(sig("UNH", "long")).ticker == "CURE"
    d = r.route(sig("UNH", "short"))
    assert not d.tradeable
    assert d.instrument_type == "leveraged_etf" and d.ticker == "UNH"
    assert d.reason.startswith("no_instrument:") and "no inverse" in d.reason
    assert r.select_etf(sig("UNH", "short")) is None
    assert "CURE" in r.explain_no_etf(sig("UNH", "short"))


def test_cure_long_below_default_floor():
    # CURE ~$8M/day < $10M
    d = InstrumentRouter(InstrumentMode.LEVERAGED_ETF).route(sig("LLY", "long"))
    assert not d.tradeable and "CURE" in d.reason


def test_unknown_ticker_not_routed():
    r = InstrumentRouter(InstrumentMode.LEVERAGED_ETF)
    d = r.route(sig("ZZZZ", "long"))
    assert not d.tradeable and d.reason.startswith("no_instrument:")
    assert (d.instrument_type, d.ticker, d.original_signal_ticker) == ("leveraged_etf", "ZZZZ", "ZZZZ")
    assert r.select_etf(sig("ZZZZ")) is None
    # a stock route never needs the table
    assert InstrumentRouter(InstrumentMode.STOCK).route(sig("ZZZZ")).tradeable


def test_sector_mapping_disabled_keeps_indexes():
    r = InstrumentRouter(InstrumentMode.LEVERAGED_ETF, sector_mapping=False)
    assert not r.route(sig("AAPL")).tradeable
    assert r.route(sig("QQQ")).ticker == "TQQQ"


# custom catalog with a 2x and a 3x fund on the same index
QQQ_2X_3X = {
    "bull_qqq_3x": LEVERAGED_ETF_CATALOG["bull_qqq_3x"],
    "bull_qqq_2x": {"ticker": "QLD", "inverse": "QID", "leverage": 2, "tracks": "NASDAQ-100",
                    "sector": "nasdaq100", "avg_daily_volume": 200e6,
                    "inverse_avg_daily_volume": 40e6},
}


def test_swing_prefers_2x_day_prefers_3x():
    r = InstrumentRouter(InstrumentMode.LEVERAGED_ETF, etf_catalog=QQQ_2X_3X)
    assert r.select_etf(sig("QQQ", "long", timeframe="10m")).ticker == "TQQQ"
    assert r.select_etf(sig("QQQ", "long", timeframe="1m")).ticker == "TQQQ"
    assert r.select_etf(sig("QQQ", "long", timeframe="1h")).ticker == "QLD"
    assert r.select_etf(sig("QQQ", "long", timeframe="1d")).ticker == "QLD"
    d = r.route(sig("QQQ", "short", timeframe="1d"))
    assert (d.ticker, d.leverage, d.is_inverse) == ("QID", -2.0, True)
    # without the 3x preference, day trades also take the 2x fund
    r2 = InstrumentRouter(InstrumentMode.LEVERAGED_ETF, etf_catalog=QQQ_2X_3X,
                          prefer_3x_for_day_trades=False)
    assert r2.select_etf(sig("QQQ", "long", timeframe="10m")).ticker == "QLD"


def test_swing_falls_back_to_3x_when_no_2x():
    r = InstrumentRouter(InstrumentMode.LEVERAGED_ETF)
    assert r.select_etf(sig("QQQ", "long", timeframe="1d")).ticker == "TQQQ"


def test_liquidity_floor_boundary():
    cat = {"bull_qqq_3x": dict(LEVERAGED_ETF_CATALOG["bull_qqq_3x"], avg_daily_volume=10_000_000.0)}
    r = InstrumentRouter(InstrumentMode.LEVERAGED_ETF, etf_catalog=cat, min_etf_daily_volume=10_000_000)
    assert r.select_etf(sig("QQQ")).avg_daily_volume == 10_000_000.0  # at the floor: ok
    cat["bull_qqq_3x"]["avg_daily_volume"] = 9_999_999.0
    assert r.select_etf(sig("QQQ")) is None  # just below: skipped


def test_both_mode_day_trade_goes_to_etf():
    d = InstrumentRouter(InstrumentMode.BOTH).route(sig("AAPL", "long", timeframe="10m"))
    assert (d.instrument_type, d.ticker, d.leverage) == ("leveraged_etf", "TECL", 3.0)
    assert d.etf_metadata["tracks"] == "Technology"


# ── BOTH mode: day trades by conviction ────────────────────────────────────────────────────
@pytest.mark.parametrize("tf", ["10m", "5m"])
@pytest.mark.parametrize("conviction,kind,ticker", [
    (100, "leveraged_etf", "TQQQ"),
    (75, "leveraged_etf", "TQQQ"),   # the threshold itself is high conviction
    (74, "stock", "QQQ"),
    (50, "stock", "QQQ"),
])
def test_both_mode_day_trade_by_conviction(tf, conviction, kind, ticker):
    r = InstrumentRouter(InstrumentMode.BOTH)
    d = r.route(sig("QQQ", "long", timeframe=tf, conviction=conviction))
    assert (d.instrument_type, d.ticker, d.tradeable) == (kind, ticker, True)
    assert r.instrument_type_for(sig("QQQ", "long", timeframe=tf, conviction=conviction)) == kind
    if kind == "stock":
        assert (d.leverage, d.is_inverse, d.etf_metadata) == (1.0, False, None)
        assert f"conviction {conviction} < 75" in d.reason
    else:
        assert d.leverage == 3.0 and "conviction" in d.reason


def test_both_mode_high_conviction_short_goes_to_inverse_etf():
    d = InstrumentRouter(InstrumentMode.BOTH).route(sig("NVDA", "short", timeframe="10m", conviction=90))
    assert (d.instrument_type, d.ticker, d.leverage, d.is_inverse) == ("leveraged_etf", "SOXS", -3.0, True)
    d = InstrumentRouter(InstrumentMode.BOTH).route(sig("NVDA", "short", timeframe="10m", conviction=60))
    assert (d.instrument_type, d.ticker) == ("stock", "NVDA")


@pytest.mark.parametrize("ticker,direction,why", [
    ("ZZZZ", "long", "no sector/index mapping"),   # unknown ticker
    ("UNH", "short", "no inverse"),                # healthcare has no inverse fund
    ("XOM", "short", "ERY"),                       # ERY below the liquidity floor
])
def test_both_mode_high_conviction_falls_back_to_stock(ticker, direction, why):
    d = InstrumentRouter(InstrumentMode.BOTH).route(sig(ticker, direction, timeframe="10m", conviction=90))
    assert (d.instrument_type, d.ticker, d.leverage, d.tradeable) == ("stock", ticker, 1.0, True)
    assert d.reason.startswith("stock:") and "no leveraged ETF fits" in d.reason and why in d.reason


def test_both_mode_conviction_does_not_change_scalps_and_swings():
    r = InstrumentRouter(InstrumentMode.BOTH)
    for c in (60, 90):
        assert r.route(sig("QQQ", "long", timeframe="1m", conviction=c)).instrument_type == "option"
        assert r.route(sig("QQQ", "long", timeframe="1h", conviction=c)).instrument_type == "stock"
        assert r.route(sig("QQQ", "long", timeframe="1d", conviction=c)).instrument_type == "stock"
    # other modes ignore the threshold
    assert InstrumentRouter(InstrumentMode.LEVERAGED_ETF).route(
        sig("QQQ", "long", timeframe="10m", conviction=60)).ticker == "TQQQ"
    # an unroutable ETF is still untradeable outside BOTH mode
    assert not InstrumentRouter(InstrumentMode.LEVERAGED_ETF).route(
        sig("ZZZZ", "long", timeframe="10m", conviction=90)).tradeable


def test_both_mode_threshold_from_config():
    from strategies.trade_executor import ExecutorConfig

    assert ExecutorConfig().both_mode_etf_min_conviction == 75
    r = InstrumentRouter.from_config(ExecutorConfig(both_mode_etf_min_conviction=60))
    assert r.mode is InstrumentMode.BOTH and r.both_mode_etf_min_conviction == 60
    assert r.route(sig("QQQ", "long", timeframe="10m", conviction=65)).ticker == "TQQQ"
    assert r.route(sig("QQQ", "long", timeframe="10m", conviction=59)).ticker == "QQQ"
    r = InstrumentRouter.from_config(ExecutorConfig(instrument_mode="leveraged_etf",
                                                    min_etf_daily_volume=5e6,
                                                    etf_sector_mapping=False))
    assert (r.mode, r.min_etf_daily_volume, r.sector_mapping) == (
        InstrumentMode.LEVERAGED_ETF, 5e6, False)


@pytest.mark.parametrize("bad", [101, -1, 75.0, True, "75"])
def test_both_mode_threshold_validated(bad):
    from strategies.trade_executor import ExecutorConfig

    with pytest.raises(ValueError, match="both_mode_etf_min_conviction"):
        InstrumentRouter(InstrumentMode.BOTH, both_mode_etf_min_conviction=bad)
    with pytest.raises(ValueError, match="both_mode_etf_min_conviction"):
        ExecutorConfig(both_mode_etf_min_conviction=bad)


def test_vix_inverse_uses_its_real_leverage():
    d = InstrumentRouter(InstrumentMode.LEVERAGED_ETF).route(sig("VIX", "short"))
    assert (d.ticker, d.leverage) == ("SVXY", -0.5)


# ── catalog ─────────────────────────────────────────────────────────────────────────────────
SEED = {
    "bull_spy_3x": ("SPXL", "SPXS", 3, "S&P 500"),
    "bull_spy_3x_alt": ("UPRO", "SPXU", 3, "S&P 500"),
    "bull_qqq_3x": ("TQQQ", "SQQQ", 3, "NASDAQ-100"),
    "bull_rut_3x": ("TNA", "TZA", 3, "Russell 2000"),
    "bull_dow_3x": ("UDOW", "SDOW", 3, "Dow 30"),
    "bull_semi_3x": ("SOXL", "SOXS", 3, "Semiconductors"),
    "bull_fang_3x": ("FNGU", "FNGD", 3, "FANG+"),
    "bull_tech_3x": ("TECL", "TECS", 3, "Technology"),
    "bull_fin_3x": ("FAS", "FAZ", 3, "Financials"),
    "bull_energy_2x": ("ERX", "ERY", 2, "Energy"),
    "bull_bio_3x": ("LABU", "LABD", 3, "Biotech"),
    "bull_retail_3x": ("RETL", "RETS", 3, "Retail"),
    "bull_re_3x": ("DRN", "DRV", 3, "Real Estate"),
    "bull_health_3x": ("CURE", None, 3, "Healthcare"),
    "bull_gold_2x": ("NUGT", "DUST", 2, "Gold Miners"),
    "bull_gold_3x": ("JNUG", "JDST", 2, "Jr Gold Miners"),  # seed says 3; Direxion cut it to 2x in 2020
    "bull_silver_2x": ("AGQ", "ZSL", 2, "Silver"),
    "bull_natgas_2x": ("BOIL", "KOLD", 2, "Natural Gas"),
    "bull_oil_2x": ("UCO", "SCO", 2, "Crude Oil"),
    "bull_vix_1.5x": ("UVXY", "SVXY", 1.5, "VIX Short-Term"),
}


def test_catalog_has_the_seeds_20_entries_verbatim():
    assert list(LEVERAGED_ETF_CATALOG) == list(SEED)
    for key, (t, inv, lev, tracks) in SEED.items():
        e = LEVERAGED_ETF_CATALOG[key]
        assert (e["ticker"], e["inverse"], e["leverage"], e["tracks"]) == (t, inv, lev, tracks)


@pytest.mark.parametrize("key", list(SEED))
def test_catalog_entry_valid(key):
    e = LEVERAGED_ETF_CATALOG[key]
    assert e["avg_daily_volume"] > 0
    assert e["leverage"] in (1.5, 2, 3)
    if e["inverse"] is None:
        assert e["inverse_leverage"] is None and e["inverse_avg_daily_volume"] is None
    else:
        assert e["inverse"] != e["ticker"]
        assert e["inverse_leverage"] < 0
        assert e["inverse_avg_daily_volume"] > 0
    assert e["expense_ratio"] is None or 0 < e["expense_ratio"] < 0.02
    # every entry is reachable from some sector/index key
    assert any(key in keys for keys in SECTOR_ETF_KEYS.values())


def test_catalog_tickers_unique_and_pairs_consistent():
    tickers = [e["ticker"] for e in LEVERAGED_ETF_CATALOG.values()]
    tickers += [e["inverse"] for e in LEVERAGED_ETF_CATALOG.values() if e["inverse"]]
    assert len(tickers) == len(set(tickers)) == 39  # 20 bull + 19 inverse (CURE has none)
    assert [k for k, e in LEVERAGED_ETF_CATALOG.items() if e["inverse"] is None] == ["bull_health_3x"]
    # domain-facts expense ratios
    assert LEVERAGED_ETF_CATALOG["bull_qqq_3x"]["inverse_expense_ratio"] == 0.0095
    assert LEVERAGED_ETF_CATALOG["bull_spy_3x_alt"]["expense_ratio"] == 0.0091


@pytest.mark.parametrize("ticker,key", [
    ("SPY", "sp500"), ("QQQ", "nasdaq100"), ("IWM", "russell2000"), ("DIA", "dow30"),
    ("AAPL", "technology"), ("MSFT", "technology"), ("NVDA", "semiconductors"),
    ("AMD", "semiconductors"), ("AVGO", "semiconductors"), ("JPM", "financials"),
    ("BAC", "financials"), ("XOM", "energy"), ("CVX", "energy"), ("UNH", "healthcare"),
    ("WMT", "retail"), ("PLD", "real_estate"), ("GDX", "gold_miners"), ("aapl", "technology"),
    ("TQQQ", "nasdaq100"), ("SQQQ", "nasdaq100"),
])
def test_sector_of(ticker, key):
    assert sector_of(ticker) == key


def test_sector_of_unknown():
    assert sector_of("ZZZZ") is None
    assert sector_of("") is None
    assert sector_of(None) is None


def test_every_sector_key_has_catalog_entries():
    assert set(TICKER_SECTOR.values()) <= set(SECTOR_ETF_KEYS)
    for keys in SECTOR_ETF_KEYS.values():
        assert keys and all(k in LEVERAGED_ETF_CATALOG for k in keys)
    assert SECTOR_ETF_KEYS["sp500"] == ("bull_spy_3x", "bull_spy_3x_alt")
    assert SECTOR_ETF_KEYS["nasdaq100"] == ("bull_qqq_3x",)
    assert SECTOR_ETF_KEYS["technology"] == ("bull_tech_3x",)
