"""Options mode in NautilusTrader's BacktestEngine (issue #5, item 4): contracts priced from the
underlying's bars, bought at the modelled ask, closed at the bid, cut off before the broker's
0DTE deadline or settled at intrinsic value on expiry.

Fixture: Mon 2025-06-16 (QQQ lists daily expiries), QQQ 100.00 flat 09:31-10:30 ET, 101.00 at
10:31 and flat to 12:11, then +0.01 a minute to 103.29 at 16:00. A 1-minute scalp at 10:31 picks
the 0DTE ATM contract, strike 101. Volatility fixed at 20 % (OptionSimConfig.fixed_vol):

  T = 329 trading minutes / 98,280 = 0.0033476 years; call = put (ATM, r = 0) =
  101 x (2 N(d1) - 1) with d1 = 0.1 x sqrt(T) = 0.0057859 -> 0.466256
  spread = max($0.01, 1 % x 0.466) = $0.01 -> bid floor(0.46124) = 0.46, ask ceil(0.47124) = 0.48
  size: 5 % x 100,000 = 5,000 of premium -> 104 contracts; the premium (48 per contract) fits the
  15 % single-name cap; the options' delta cap (max_option_delta_exposure 50 % of equity, on
  |delta| x 100 x 101 per contract): call delta N(d1) = 0.502308 -> 9 contracts
  (50,000 / 5,073.3 = 9.86), put delta -0.497692 -> 9 contracts (50,000 / 5,026.7 = 9.95)
  fees (Alpaca, $0 commission; per-contract pass-throughs in force on 2025-06-16, adapters/fees.py):
        buy  9 x (ORF 0.02685 + OCC 0.02) = 0.42165 -> 0.42
        sell 9 x (ORF 0.02685 + OCC 0.02 + options TAF 0.00279) = 0.44676, + SEC $0.00 per $1M
             (from 2025-05-14) -> 0.45;  round trip 0.87
"""

from __future__ import annotations

import json
import math
from datetime import date, datetime, timezone

import pytest

from backtests.option_quotes import OptionSimConfig
from strategies.trade_executor.options_pricing import bs_delta, bs_price
from tests.test_trade_management import FLAT, at, backtest, bar, flat, scalp

T_ENTRY = 329 / 98_280


def rows_up():
    return flat() + [bar(101.0, o=100.0)] + [bar(101.0)] * 100 + [bar(round(101 + 0.01 * k, 2)) for k in range(1, 230)]


def test_hand_computed_premium_and_delta():
    assert bs_price(101.0, 101.0, T_ENTRY, 0.20, 0.0, "call") == pytest.approx(0.466256, abs=5e-6)
    assert bs_delta(101.0, 101.0, T_ENTRY, 0.20, 0.0, "call") == pytest.approx(0.502308, abs=5e-6)
    assert math.floor(50_000 / (0.502308 * 100 * 101)) == 9
    assert math.floor(50_000 / (0.497692 * 100 * 101)) == 9


def test_call_held_to_expiry_settles_in_the_money(tmp_path):
    r = backtest(tmp_path, rows_up(), [scalp(FLAT + 1, target_price=110.0, stop_loss=95.0)], mode="options",
                 option_sim=OptionSimConfig(fixed_vol=0.20, cutoff_exit=False), executor={"eod_close_time": "16:00"})
    (d,) = r.log.decisions
    assert d.approved and d.instrument == "QQQ250616C00101000" and d.instrument_type == "option"
    assert d.shares == 9 and d.details["adjustments"]["requested_shares"] == 104
    assert d.details["adjustments"]["capped_by"] == "option_delta_exposure"
    (t,) = r.log.trades
    assert (t["entry_price"], t["shares"], t["entry_time"]) == (0.48, 9, at(FLAT + 1))
    # 16:00: QQQ 103.29 -> intrinsic 2.29, no spread at expiry
    assert (t["exit_reason"], t["exit_price"], t["exit_time"]) == ("expired", 2.29,
                                                                    datetime(2025, 6, 16, 20, 0, tzinfo=timezone.utc))
    # (2.29 - 0.48) x 9 x 100 = 1,629.00 - fees 0.42 + 0.45 = 0.87 (module docstring) -> 1,628.13
    assert t["pnl"] == pytest.approx(1628.13, abs=0.005)
    assert json.loads(t["metadata_json"])["multiplier"] == 100.0
    # equity counts the option at its value: buying it costs the half-spread and the fee, then
    # time decay while QQQ stands still (about $80), never the $432 premium itself (the simulated
    # venue debits the premium from the balance)
    # (the sample of the entry minute is taken 1 ns after its bar, before the signal is handled)
    held = [e for ts, e in r.log.equity if at(FLAT + 2) <= ts < datetime(2025, 6, 16, 20, 0, tzinfo=timezone.utc)]
    assert held[0] == pytest.approx(100_000 - 0.01 * 9 * 100 - 0.42, abs=0.01)  # (0.48 - mid 0.47) x 9 x 100 + buy fee
    assert min(held) > 100_000 - 180
    # two contracts are quoted: the 101 call, and the 100 call in case the signal had arrived
    # before its bar (previous close 100.00)
    assert r.summary["options"]["contracts"] == 2 and r.summary["ending_equity"] == pytest.approx(101_628.13)


def test_put_expires_worthless(tmp_path):
    # QQQ 105.00 flat, drops to 101.00 at 10:31 (short scalp -> the 101 put at 0.48) and stays
    # there: the clouds come down from above and never cross it; 16:00 close 101.00 = the strike
    rows = flat(px=105.0) + [bar(101.0, o=105.0)] + [bar(101.0)] * 329
    sig = scalp(FLAT + 1, direction="short", signal_type="cloud_flip_bearish", entry_price=101.0, stop_loss=106.0,
                target_price=91.0)
    r = backtest(tmp_path, rows, [sig], mode="options",
                 option_sim=OptionSimConfig(fixed_vol=0.20, cutoff_exit=False), executor={"eod_close_time": "16:00"})
    (t,) = r.log.trades
    assert t["ticker"] == "QQQ250616P00101000" and t["direction"] == "long"  # puts are bought
    assert (t["entry_price"], t["shares"]) == (0.48, 9)
    assert (t["exit_reason"], t["exit_price"]) == ("expired", 0.0)
    assert t["pnl"] == pytest.approx(-0.48 * 9 * 100 - 0.87, abs=0.005)  # fees 0.42 + 0.45 (docstring)


def test_alpaca_0dte_cutoff_closes_before_the_deadline(tmp_path):
    # QQQ is a broad ETF: Alpaca refuses new 0DTE orders from 15:30 ET, so the executor closes at
    # the 15:29 bar (QQQ 101 + 0.01 x 198 = 102.98), selling at that minute's bid
    r = backtest(tmp_path, rows_up(), [scalp(FLAT + 1, target_price=110.0, stop_loss=95.0)], mode="options",
                 option_sim=OptionSimConfig(fixed_vol=0.20))
    (t,) = r.log.trades
    assert t["exit_reason"] == "eod_close"
    assert t["exit_time"] == datetime(2025, 6, 16, 19, 29, tzinfo=timezone.utc)
    now = datetime(2025, 6, 16, 19, 29, tzinfo=timezone.utc)
    mid = bs_price(102.98, 101.0, 31 / 98_280, 0.20, 0.0, "call")
    spread = max(0.01, round(mid * (0.01 + 0.05 * (1 - 31 / 30 if 31 < 30 else 0)), 2))
    assert t["exit_price"] == pytest.approx(math.floor((mid - spread / 2) * 100 + 1e-9) / 100)
    assert now.isoformat() in json.dumps(str(t["exit_time"].isoformat()))


def test_after_the_cutoff_the_next_expiry_is_chosen(tmp_path):
    # a scalp at 15:40 ET (after QQQ's 15:30 cut-off) buys the 1DTE contract (Tue 2025-06-17),
    # then the scalp EOD close (15:55) sells it
    rows = rows_up()
    minute = 370  # bar 370 closes at 15:40 ET
    sig = scalp(minute, entry_price=rows[minute - 1][3], stop_loss=rows[minute - 1][3] - 2,
                target_price=rows[minute - 1][3] + 5)
    r = backtest(tmp_path, rows, [sig], mode="options", option_sim=OptionSimConfig(fixed_vol=0.20))
    (d,) = r.log.decisions
    assert d.approved and d.instrument == "QQQ250617C00103000"
    (t,) = r.log.trades
    assert t["exit_reason"] == "eod_close" and t["exit_time"] == at(385)


def test_options_mode_without_a_signal_set_records_one_first(tmp_path, sample_catalog):
    # no --signals-from: a stock pass of the same actor records the signals, then the options run
    # replays them; scalps trade options, day/swing signals trade the stock (the seed's table)
    from backtests.runner import BacktestSpec, run_backtest

    # (at $100k one ATM QQQ contract, ~0.5 x 100 x 477 = $24k of delta exposure, exceeds the 15 %
    # single-name cap and every option signal is rejected single_stock_exposure; $300k fits two)
    r = run_backtest(BacktestSpec(catalog=sample_catalog, symbols=["QQQ"], mode="options", progress=False,
                                  start="2025-06-16", end="2025-06-18", starting_cash=300_000.0))
    types = {t["instrument_type"] for t in r.log.trades}
    assert "option" in types
    assert r.summary["options"]["contracts"] > 0 and r.summary["quotes"] > 0
    assert not any(d.reason_code == "no_instrument" and "not available" in (d.reason or "")
                   for d in r.log.decisions)
    assert date(2025, 6, 16) <= r.log.trades[0]["entry_time"].date()


def test_option_trades_are_journaled_with_their_occ_symbol(tmp_path):
    # trade_executions.ticker was String(10) (the seed's): migration 137 widens it for OCC symbols
    from sqlalchemy import create_engine, text

    db = f"sqlite:///{tmp_path / 'j.db'}"
    r = backtest(tmp_path, rows_up(), [scalp(FLAT + 1, target_price=110.0, stop_loss=95.0)], mode="options",
                 option_sim=OptionSimConfig(fixed_vol=0.20), db_url=db)
    with create_engine(db).connect() as c:
        rows = c.execute(text("select ticker, original_ticker, instrument_type, status, shares from trade_executions")).all()
    assert rows == [("QQQ250616C00101000", "QQQ", "option", "closed", 9)]
    assert r.summary["journal"]["run_id"]


def test_option_losses_count_for_the_kill_switch_by_their_delta_stake_not_the_premium(tmp_path):
    # Three scalps buy the ATM call and lose 20-40 % of the premium each as QQQ eases 0.40 (a
    # fast-cloud flip closes them): by premium that is three "losses worse than 3 %" and the seed's
    # consecutive-loss trigger would halt trading for a few dollars. Measured on the delta stake
    # (|delta| x 100 x QQQ x contracts, ~$10,000 here) each loss is ~0.3 %: no trip, the 4th
    # signal trades.
    rows = flat()
    sigs = []
    for k in range(4):
        rows += [bar(101.0, o=100.6 if k else 100.0)]
        sigs.append(scalp(len(rows), target_price=110.0, stop_loss=95.0, signal_id=f"s{k}"))
        rows += [bar(round(101.0 - 0.04 * j, 2)) for j in range(1, 11)] + [bar(100.6)] * 20
    rows += [bar(100.6)] * 5
    r = backtest(tmp_path, rows, sigs, mode="options", option_sim=OptionSimConfig(fixed_vol=0.20))
    trades = r.log.trades
    assert len(trades) == 4 and all(t["pnl"] < 0 for t in trades[:3])
    assert all(t["pnl_pct"] < -0.03 for t in trades[:3])  # worse than 3 % of the premium...
    assert [e for e in r.log.events if e[1] == "kill_switch"] == []  # ...but not of the stake
    assert all(d.approved for d in r.log.decisions)


def test_quote_volatility_is_the_pricing_modules_realised_vol():
    import numpy as np

    from backtests.option_quotes import realised_vol_series
    from strategies.trade_executor.options_pricing import realized_vol

    rng = np.random.default_rng(7)
    closes = 100 * np.exp(np.cumsum(rng.normal(0, 0.0012, 900)))
    cfg = OptionSimConfig(vol_window=390, vol_scale=1.1, vol_cap=5.0, vol_floor=0.01)
    series = realised_vol_series(closes, cfg)
    for i in (390, 391, 600, 899):
        assert series[i] == pytest.approx(realized_vol(closes[: i + 1], 390, scale=1.1), rel=1e-9)
    assert series[10] == pytest.approx(0.04)  # fewer than 30 returns: 4 x the floor
