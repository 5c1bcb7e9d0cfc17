"""The CLI's error model (issue #19): a fault and bad-input matrix.

Every user error (configuration, file, URL, database, data) is one line on stderr naming the
thing and the fix, exit 2; an internal error is one line pointing at ``--debug`` (exit 1) and
shows its traceback only with ``--debug``; Ctrl-C is "interrupted", exit 130, and what was
recorded stays recorded. In every case the catalog and the journal are unchanged (file hashes,
row dumps) -- except Ctrl-C, where the journal keeps what the run recorded before the interrupt.
"""

from __future__ import annotations

import errno
import gzip
import hashlib
import sqlite3
from pathlib import Path

import pytest

from backtests import catalog_io
from strategies.cli import main
from strategies.journal import ControlStore, upgrade
from strategies.risk_control import send_alert, validate_webhook_url
from tests.test_backtest_e2e import fixture_closes, fixture_signal, signals_catalog, write_bars_csv

PG_DOWN = "postgresql://trader:s3cret@127.0.0.1:1/journal"  # nothing listens on port 1


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict:
    """A catalog with QQQ bars, a replayable signal set, a journal with a 'desk' scope, a plain
    file, a truncated gzip CSV and a SQLite file without journal tables."""
    root = tmp_path_factory.mktemp("cli_errors")
    csv_path = write_bars_csv(root / "QQQ.csv", fixture_closes())
    catalog = root / "catalog"
    catalog_io.import_files(catalog, [csv_path], tz="UTC", label="open")
    signals = signals_catalog(root / "sig", [fixture_signal(signal_id="SIG-1")])
    journal = root / "journal.db"
    url = f"sqlite:///{journal}"
    upgrade(url)
    store = ControlStore(url, scope="desk")
    store.activate_kill_switch("manual: set up by the test", by="test")
    store.close()
    data = gzip.compress(csv_path.read_bytes())
    (root / "QQQ.csv.gz").write_bytes(data[: len(data) // 2])
    (root / "a_file").write_text("not a folder\n")
    con = sqlite3.connect(root / "other.db")
    con.execute("CREATE TABLE notes (x TEXT)")
    con.commit()
    con.close()
    return {"root": root, "catalog": catalog, "signals": signals, "journal": journal, "url": url}


def _tree_hash(path: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(path.rglob("*")):
        h.update(str(p.relative_to(path)).encode())
        if p.is_file():
            h.update(p.read_bytes())
    return h.hexdigest()


def _journal_dump(path: Path) -> list:
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = [t for (t,) in con.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")]
        return [(t, sorted(map(repr, con.execute(f'SELECT * FROM "{t}"')))) for t in tables]  # noqa: S608
    finally:
        con.close()


def _bt(w: dict, out: str = "out", *extra: str) -> list[str]:
    return ["backtest", "--catalog", str(w["catalog"]), "--symbols", "QQQ", "--out", str(w["root"] / out),
            "--signals-from", str(w["signals"]), "--quiet", *extra]


def _ks(w: dict, *extra: str) -> list[str]:
    return ["kill-switch", *extra]


# (case id, argv builder, exit code, what stderr must name, paths that must not exist afterwards)
CASES = [
    # 1. database connection failure, before any data is read
    ("db-connection-refused", lambda w: _bt(w, "o1", "--db", PG_DOWN), 2, "cannot connect", ["o1"]),
    ("kill-switch-db-down", lambda w: _ks(w, "status", "--db", PG_DOWN), 2, "cannot connect", []),
    # unknown / mistyped --set key: the close matches
    ("set-unknown-key", lambda w: _bt(w, "o2", "--set", "max_risk_pertrade=0.02"), 2,
     "did you mean max_risk_per_trade", ["o2"]),
    # NaN, infinite, negative settings: the schema, one line
    ("set-nan", lambda w: _bt(w, "o3", "--set", "min_account_equity=nan"), 2, "min_account_equity = nan", ["o3"]),
    ("set-inf", lambda w: _bt(w, "o3", "--set", "max_risk_per_trade=inf"), 2, "max_risk_per_trade = inf", ["o3"]),
    ("set-negative", lambda w: _bt(w, "o3", "--set", "min_account_equity=-5"), 2, "min_account_equity = -5", ["o3"]),
    ("set-wrong-type", lambda w: _bt(w, "o3", "--set", "max_concurrent_positions=many"), 2,
     "max_concurrent_positions", ["o3"]),
    ("set-no-equals", lambda w: _bt(w, "o3", "--set", "max_risk_per_trade"), 2, "key=value", ["o3"]),
    ("mode-unknown", lambda w: _bt(w, "o3", "--mode", "stocks"), 2, "invalid choice: 'stocks'", ["o3"]),
    # a bad --db URL or driver
    ("db-url-unparsable", lambda w: _bt(w, "o4", "--db", "not a url"), 2, "not a database URL", ["o4"]),
    ("db-dialect-unknown", lambda w: _bt(w, "o4", "--db", "nosuchdb://x/y"), 2, "unknown database driver", ["o4"]),
    ("db-driver-missing", lambda w: _bt(w, "o4", "--db", "mysql+pymysql://u:p@h/db"), 2, "driver not installed",
     ["o4"]),
    # a catalog path that is a file
    ("catalog-is-a-file", lambda w: ["backtest", "--catalog", str(w["root"] / "a_file"), "--symbols", "QQQ",
                                     "--out", str(w["root"] / "o5")], 2, "a_file: is a file", ["o5"]),
    ("catalog-missing", lambda w: ["backtest", "--catalog", str(w["root"] / "nope"), "--symbols", "QQQ",
                                   "--out", str(w["root"] / "o5")], 2, "no such catalog folder", ["o5"]),
    # a truncated gzip, imported into the existing catalog: refused, catalog untouched
    ("truncated-gzip", lambda w: ["data", "import", str(w["root"] / "QQQ.csv.gz"), "--catalog", str(w["catalog"]),
                                  "--tz", "UTC"], 2, "QQQ.csv.gz", []),
    # --cash 0 and --out on a file: refused up front, nothing written
    ("cash-zero", lambda w: _bt(w, "o6", "--cash", "0"), 2, "--cash 0", ["o6"]),
    ("cash-nan", lambda w: _bt(w, "o6", "--cash", "nan"), 2, "--cash nan", ["o6"]),
    ("out-is-a-file", lambda w: _bt(w, "a_file"), 2, "--out", []),
    ("out-under-a-file", lambda w: _bt(w, "a_file/run"), 2, "a_file is a file", []),
    # the kill-switch CLI: unknown database / no journal tables / unknown scope, unless --create
    ("ks-missing-sqlite", lambda w: _ks(w, "status", "--db", f"sqlite:///{w['root'] / 'typo.db'}"), 2,
     "--create", ["typo.db"]),
    ("ks-trip-missing-sqlite", lambda w: _ks(w, "trip", "--reason", "x", "--db", f"sqlite:///{w['root'] / 'typo.db'}"),
     2, "no such database file", ["typo.db"]),
    ("ks-not-a-database", lambda w: _ks(w, "status", "--db", f"sqlite:///{w['root'] / 'a_file'}"), 2,
     "file is not a database", []),
    ("db-upgrade-not-a-database", lambda w: ["db", "upgrade", "--db", f"sqlite:///{w['root'] / 'a_file'}"], 2,
     "a_file", []),
    ("ks-no-journal-tables", lambda w: _ks(w, "status", "--db", f"sqlite:///{w['root'] / 'other.db'}"), 2,
     "no journal tables", []),
    ("ks-unknown-scope", lambda w: _ks(w, "status", "--db", w["url"], "--scope", "dsek"), 2, "did you mean desk", []),
    ("ks-trip-unknown-scope", lambda w: _ks(w, "trip", "--reason", "x", "--db", w["url"], "--scope", "desk2"), 2,
     "unknown scope", []),
    ("ks-resume-unknown-live-scope", lambda w: _ks(w, "resume", "--yes", "--db", w["url"]), 2, "unknown scope", []),
    # the alert webhook: http(s) only
    ("webhook-file", lambda w: ["live", "--symbols", "QQQ", "--alert-webhook", "file:///etc/passwd"], 2,
     "scheme 'file' is not allowed", []),
    ("webhook-ftp", lambda w: ["live", "--symbols", "QQQ", "--alert-webhook", "ftp://example.com/x"], 2,
     "scheme 'ftp' is not allowed", []),
    # a usage error is one line too
    ("usage-missing-value", lambda w: ["backtest", "--symbols"], 2, "--symbols", []),
]


def _run(argv: list[str], capsys) -> tuple[int, str, str]:
    try:
        rc = main(argv)
    except SystemExit as e:  # argparse usage errors
        rc = e.code
    out, err = capsys.readouterr()
    return rc, out, err


def _assert_one_line(err: str, out: str) -> None:
    assert err.endswith("\n") and err.count("\n") == 1, repr(err)
    assert "Traceback" not in err and "Traceback" not in out


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_user_error_is_one_line_exit_2_nothing_changed(case, world, capsys):
    _, argv, code, names, absent = case
    before = (_tree_hash(world["catalog"]), _journal_dump(world["journal"]))
    rc, out, err = _run(argv(world), capsys)
    assert rc == code, (rc, err)
    _assert_one_line(err, out)
    assert err.startswith("trade-executor") and names in err, err
    assert "s3cret" not in err  # passwords are redacted
    assert (_tree_hash(world["catalog"]), _journal_dump(world["journal"])) == before
    for rel in absent:
        assert not (world["root"] / rel).exists(), f"{rel} was written"


def test_full_disk_is_one_line(world, capsys, monkeypatch):
    """OSError ENOSPC while writing the outputs (after the run): one line, exit 2."""
    import backtests.runner

    def full(out_dir, *a, **k):
        raise OSError(errno.ENOSPC, "No space left on device", str(Path(out_dir) / "summary.json"))

    monkeypatch.setattr(backtests.runner, "write_outputs", full)
    before = (_tree_hash(world["catalog"]), _journal_dump(world["journal"]))
    rc, out, err = _run(_bt(world, "o7"), capsys)
    assert rc == 2
    _assert_one_line(err, out)
    assert "no space left on device writing" in err and "summary.json" in err
    assert (_tree_hash(world["catalog"]), _journal_dump(world["journal"])) == before


def test_ctrl_c_is_interrupted_130_and_the_journal_keeps_what_was_recorded(world, capsys, monkeypatch, tmp_path):
    """Ctrl-C in the middle of the run: "interrupted", exit 130; the decisions taken before it
    are in the journal."""
    import backtests.runner

    real = backtests.runner._run_streaming

    def interrupted(engine, bars, signals, **kw):
        real(engine, bars[:45], signals, **kw)  # the signal at 10:00 is decided, then Ctrl-C
        raise KeyboardInterrupt

    monkeypatch.setattr(backtests.runner, "_run_streaming", interrupted)
    db = tmp_path / "run.db"
    catalog_before = _tree_hash(world["catalog"])
    rc, out, err = _run(_bt(world, "o8", "--db", f"sqlite:///{db}"), capsys)
    assert rc == 130
    _assert_one_line(err, out)
    assert err == "trade-executor: interrupted\n"
    assert _tree_hash(world["catalog"]) == catalog_before
    con = sqlite3.connect(db)
    assert con.execute("SELECT signal_id, approved FROM signal_decisions").fetchall() == [("SIG-1", 1)]
    con.close()


def test_internal_error_points_at_debug(world, capsys, monkeypatch):
    import backtests.runner

    def boom(*a, **k):
        raise RuntimeError("invariant broken\nsecond line")

    monkeypatch.setattr(backtests.runner, "run_backtest", boom)
    rc, out, err = _run(_bt(world, "o9"), capsys)
    assert rc == 1
    _assert_one_line(err, out)
    assert "internal error: RuntimeError: invariant broken second line" in err and "--debug" in err

    for argv in (["--debug", *_bt(world, "o9")], [*_bt(world, "o9"), "--debug"]):
        rc, out, err = _run(argv, capsys)
        assert rc == 1 and "Traceback" in err and "RuntimeError: invariant broken" in err


def test_kill_switch_create_makes_the_database_and_the_scope(world, capsys):
    url = f"sqlite:///{world['root'] / 'new.db'}"
    rc, out, err = _run(_ks(world, "status", "--db", url, "--scope", "paper", "--create"), capsys)
    assert rc == 0 and "inactive" in out and err == ""
    rc, out, err = _run(_ks(world, "status", "--db", url, "--scope", "paper"), capsys)  # known now
    assert rc == 0 and "inactive" in out
    rc, out, err = _run(_ks(world, "trip", "--reason", "news", "--db", url, "--scope", "paper"), capsys)
    assert rc == 0 and "ACTIVE" in out
    rc, out, err = _run(_ks(world, "status", "--db", world["url"], "--scope", "desk"), capsys)
    assert rc == 0 and "ACTIVE" in out and "set up by the test" in out


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/x", "gopher://h/", "data:,x",
                                 "javascript:alert(1)", "http://", "example.com/hook", "", "  "])
def test_webhook_refuses_anything_but_http_s(url, caplog):
    with pytest.raises(ValueError, match="http:// or https://"):
        validate_webhook_url(url)
    if url.strip():
        assert send_alert(url, {"event": "kill_switch"}) is None  # nothing is sent
        assert "alert not sent" in caplog.text


def test_webhook_accepts_http_and_https():
    assert validate_webhook_url("https://hooks.example.com/x?y=1") == "https://hooks.example.com/x?y=1"
    assert validate_webhook_url(" http://127.0.0.1:8080/alert ") == "http://127.0.0.1:8080/alert"


def test_executor_config_refuses_a_non_http_webhook():
    from strategies.executor_strategy import ExecutorStrategy, ExecutorStrategyConfig

    with pytest.raises(ValueError, match="scheme 'file'"):
        ExecutorStrategy(ExecutorStrategyConfig(alert_webhook_url="file:///tmp/x"))
