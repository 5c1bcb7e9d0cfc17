"""The CLI explains itself (issue #17): every option has help, --mode lists its choices, `config`
documents every --set key (from the ExecutorConfig schema), one spelling --db, db upgrade says
when there is nothing to do, the demo keeps to its own folder and prints its real mode."""

from __future__ import annotations

import argparse
import dataclasses
import re
from pathlib import Path

import pytest

from strategies import cli, config_doc
from strategies.cli import build_parser, main
from strategies.trade_executor.models import ExecutorConfig, InstrumentMode

README = Path(__file__).resolve().parent.parent / "README.md"


def _walk(p: argparse.ArgumentParser, path=()):
    for a in p._actions:
        if isinstance(a, argparse._SubParsersAction):
            for name, sp in a.choices.items():
                yield from _walk(sp, (*path, name))
        else:
            yield path, a


def test_every_option_has_help_text():
    missing = [(" ".join(path), a.option_strings or a.dest) for path, a in _walk(build_parser())
               if not a.help and not isinstance(a, argparse._HelpAction)]
    assert missing == []


def test_mode_options_list_their_choices(capsys):
    assert cli.MODE_CHOICES == tuple(m.value for m in InstrumentMode) or \
        set(cli.MODE_CHOICES) == {m.value for m in InstrumentMode}
    for argv in (["backtest", "--help"], ["live", "--help"], ["demo", "--help"], ["mode", "set", "--help"]):
        with pytest.raises(SystemExit) as e:
            main(argv)
        assert e.value.code == 0
        assert "{options,leveraged_etf,both,stock}" in capsys.readouterr().out, argv
    with pytest.raises(SystemExit) as e:
        main(["backtest", "--symbols", "QQQ", "--out", "x", "--mode", "etf"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'etf'" in err and "'leveraged_etf'" in err


def test_config_lists_every_setting_with_default_range_and_meaning(capsys):
    names = [f.name for f in dataclasses.fields(ExecutorConfig)]
    assert set(config_doc.MEANINGS) == set(names)  # a new setting needs its meaning here
    assert main(["config"]) == 0
    out = capsys.readouterr().out
    for s in config_doc.settings():
        assert re.search(rf"^{s.name}\s+{re.escape(s.default_text)}\s+{re.escape(s.allowed)}$", out, re.M), s.name
        assert s.meaning in out
    by = {s.name: s for s in config_doc.settings()}
    assert (by["max_risk_per_trade"].default_text, by["max_risk_per_trade"].allowed) == ("0.05", "> 0 and <= 1")
    assert (by["max_concurrent_positions"].default_text, by["max_concurrent_positions"].allowed) == ("10", "> 0")
    assert by["instrument_mode"].allowed == "both | leveraged_etf | options | stock"
    assert by["eod_close_time"].allowed == "HH:MM" and by["eod_close_time"].default_text == "15:55"
    assert by["scale_in_enabled"].default_text == "true"
    assert by["slippage_buffer"].allowed == ">= 0 and < 0.1"


def test_set_help_and_readme_document_every_key(capsys):
    with pytest.raises(SystemExit):
        main(["backtest", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    for f in dataclasses.fields(ExecutorConfig):
        assert f.name in out.replace("- ", "-")
    assert "trade-executor config" in out
    text = README.read_text()
    assert config_doc.format_markdown() in text, "README's settings table is stale: trade-executor config --markdown"


def test_unknown_set_key_names_close_matches_and_the_config_command(capsys):
    assert main(["live", "--symbols", "QQQ", "--set", "max_risk_per_trad=0.02"]) == 2
    err = capsys.readouterr().err
    assert "--set max_risk_per_trad: unknown executor setting; did you mean max_risk_per_trade or " in err
    assert main(["live", "--symbols", "QQQ", "--set", "zzz=1"]) == 2
    assert "`trade-executor config` lists every setting" in capsys.readouterr().err


def test_db_upgrade_says_when_it_is_already_at_head(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'j.db'}"
    head = cli._head_revision()
    assert main(["db", "upgrade", "--db", url]) == 0
    assert capsys.readouterr().out.strip().endswith(f"upgraded base (no tables) -> {head} (head)")
    assert main(["db", "upgrade", "--db", url]) == 0
    assert capsys.readouterr().out.strip().endswith(f"already at {head} (head); nothing to upgrade")
    assert main(["db", "upgrade", "135", "--db", url]) == 0
    out = capsys.readouterr().out
    assert f"already at {head} (head); nothing to upgrade" in out and "db downgrade 135" in out
    assert "upgraded" not in out
    assert main(["db", "downgrade", "136_executor_journal", "--db", url]) == 0
    assert capsys.readouterr().out.strip().endswith(f"downgraded {head} (head) -> 136_executor_journal")


def test_db_spelling_is_db_and_url_is_a_hidden_alias(tmp_path, capsys):
    for argv in (["db", "upgrade", "--help"], ["db", "downgrade", "--help"]):
        with pytest.raises(SystemExit):
            main(argv)
        out = capsys.readouterr().out
        assert "--db URL" in out and "--url" not in out
    url = f"sqlite:///{tmp_path / 'old.db'}"
    assert main(["db", "upgrade", "--url", url]) == 0
    cap = capsys.readouterr()
    assert "--url is deprecated; use --db" in cap.err and "upgraded base" in cap.out
    assert (tmp_path / "old.db").is_file()
    spellings = {o for _, a in _walk(build_parser()) for o in a.option_strings if a.help != argparse.SUPPRESS}
    assert "--url" not in spellings and "--db" in spellings


@pytest.mark.slow
def test_demo_keeps_to_its_own_folder_and_prints_its_mode(tmp_path, monkeypatch, capsys):
    data = tmp_path / "data"
    user_catalog = data / "catalog"
    (user_catalog / "data").mkdir(parents=True)
    (user_catalog / "data" / "mine.parquet").write_bytes(b"user data")
    monkeypatch.setattr(cli, "DEMO_DIR", data / "demo")
    out = tmp_path / "out"
    assert main(["demo", "--mode", "leveraged_etf", "--out", str(out), "--quiet"]) == 0
    text = capsys.readouterr().out
    assert (user_catalog / "data" / "mine.parquet").read_bytes() == b"user data"  # untouched
    assert sorted(p.name for p in user_catalog.rglob("*")) == ["data", "mine.parquet"]
    assert (data / "demo" / "catalog" / "data").is_dir()
    assert f"into {data / 'demo' / 'catalog'}" in text
    assert "in mode 'leveraged_etf'" in text and "mode 'stock'" not in text
    assert "backtest leveraged_etf AAPL,NVDA,QQQ,SPY" in text
    assert (out / "report.html").is_file()
    # the demo journals its run for the dashboard: every tab has rows (issue #16)
    from strategies.dashboard import data as dash

    journal = data / "demo" / "journal.db"
    assert f"dashboard --db sqlite:///{journal}" in text
    engine = dash.open_engine(f"sqlite:///{journal}")
    (run_id,) = [r for r in dash.run_choices(engine) if r.startswith("bt-")]
    trades = dash.trade_journal(engine, run_id)
    assert len(trades) == 458  # the leveraged_etf demo's round trips (see test_backtest_e2e)
    fills_csv = (out / "fills.csv").read_text().strip().splitlines()
    assert len(dash.fills(engine, run_id)) == len(fills_csv) - 1 == 927  # journal = the run's fills
    assert len(dash.orders(engine, run_id)) > len(trades) and len(dash.decisions(engine, run_id)) == 8534
