"""Issue #19: the real-money guard, the account-state checks and start-up failures of `live`.

* the host check normalises the URL; only Alpaca's paper host and loopback servers are paper;
* the broker's own answer (account number, blocked flags, status) is checked at start-up;
* an account the broker reports blocked later trips the executor's kill switch (journal event);
* an unreachable broker or refused keys end `live` with exit 2 and one line naming the URL;
* the secret never appears in any output.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select

from adapters.alpaca.common import (
    AlpacaAccountError, AlpacaLiveTradingError, account_problem, check_account, check_live_allowed,
    is_paper_account_number, is_paper_url,
)
from adapters.alpaca.fake_server import FakeAlpacaServer
from adapters.alpaca.parsing import AlpacaAccount

ROOT = Path(__file__).resolve().parents[1]
KEY, SECRET = "PKGUARDKEY01", "guard-secret-d0-not-leak"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ------------------------------------------------------------------------------------ host check --

LIVE_VARIANTS = [
    "https://api.alpaca.markets",
    "https://API.ALPACA.MARKETS",  # upper case
    "https://api.alpaca.markets.",  # trailing dot (fully qualified)
    "https://Api.Alpaca.Markets.:443/v2",  # both, default port, a path
    "https://api.alpaca.markets:443",  # explicit default port
    "https://api.alpaca.markets:8443",  # another port
    "http://api.alpaca.markets",  # another scheme
    "https://34.102.136.180",  # an IP form (not loopback)
    "https://[2001:db8::1]:443",  # an IPv6 form
    "https://paper-api.alpaca.markets.evil.example",  # the paper name as a prefix
    "https://paper-api.alpaca.markets@api.alpaca.markets",  # userinfo trick: the host is the live one
    "https://xn--pper-api-8ve.alpaca.markets",  # punycode look-alike
    "https://p\u0430per-api.alpaca.markets",  # Cyrillic 'a' (IDNA: a different host)
    "https://paper-api.alpaca.markets:8443",  # the paper name on a non-default port
    "http://paper-api.alpaca.markets",  # the paper name over plain http
    "https://my-proxy.internal:8080",  # any unknown host
    "https://localhost.evil.example",
]

PAPER_VARIANTS = [
    "https://paper-api.alpaca.markets",
    "https://PAPER-API.Alpaca.Markets.",
    "https://paper-api.alpaca.markets:443/v2",
    "wss://paper-api.alpaca.markets/stream",
    "https://\uff50aper-api.alpaca.markets",  # full-width 'p': IDNA maps it to the paper host
    "http://127.0.0.1:8080",
    "http://127.4.5.6",
    "http://[::1]:9000",
    "http://localhost:9000",
    "http://LOCALHOST.:9000",
]


@pytest.mark.parametrize("url", LIVE_VARIANTS)
def test_every_host_but_paper_and_loopback_is_live(url):
    assert not is_paper_url(url)
    with pytest.raises(AlpacaLiveTradingError, match="REAL MONEY"):
        check_live_allowed(True, trading_url=url)
    with pytest.raises(AlpacaLiveTradingError):  # the stream URL is checked too
        check_live_allowed(True, trading_stream_url=url)
    assert check_live_allowed(False, trading_url=url, allow_live=True) is True


@pytest.mark.parametrize("url", PAPER_VARIANTS)
def test_paper_host_and_loopback_are_paper(url):
    assert is_paper_url(url)
    assert check_live_allowed(True, trading_url=url) is False


@pytest.mark.parametrize("url", LIVE_VARIANTS[:6] + ["https://34.102.136.180"])
def test_cli_refuses_a_live_host_variant_before_touching_anything(url, tmp_path, capsys, monkeypatch):
    from strategies.cli import main

    monkeypatch.setenv("ALPACA_API_KEY", KEY)
    monkeypatch.setenv("ALPACA_API_SECRET", SECRET)
    db = f"sqlite:///{tmp_path / 'x.db'}"
    assert main(["live", "--symbols", "QQQ", "--db", db, "--alpaca-url", url]) == 2
    err = capsys.readouterr().err
    assert "REAL MONEY" in err and "--live-account --allow-live" in err and SECRET not in err
    assert len(err.strip().splitlines()) == 1
    # --allow-live alone does not make a paper run live: --live-account is needed as well
    assert main(["live", "--symbols", "QQQ", "--db", db, "--alpaca-url", url, "--allow-live"]) == 2
    assert "REAL MONEY" in capsys.readouterr().err
    assert not (tmp_path / "x.db").exists()


# ------------------------------------------------------------------------- the broker's answer --

def test_account_number_and_state_verdicts():
    assert is_paper_account_number("PA3FAKE00001") and is_paper_account_number("pa123")
    assert not is_paper_account_number("123456789") and not is_paper_account_number("")
    ok = AlpacaAccount(account_number="PA1", status="ACTIVE", trading_blocked=False, account_blocked=False)
    assert account_problem(ok) is None
    assert "account_blocked" in account_problem(AlpacaAccount(account_number="PA1", status="ACTIVE",
                                                              account_blocked=True))
    assert "trading_blocked" in account_problem(AlpacaAccount(account_number="PA1", status="ACTIVE",
                                                              trading_blocked=True))
    assert "ACCOUNT_CLOSED" in account_problem(AlpacaAccount(account_number="PA1", status="ACCOUNT_CLOSED"))
    check_account(ok, allow_live=False, url="u")
    with pytest.raises(AlpacaLiveTradingError, match="LIVE account"):
        check_account(AlpacaAccount(account_number="987654321", status="ACTIVE"), allow_live=False, url="u")
    check_account(AlpacaAccount(account_number="987654321", status="ACTIVE"), allow_live=True, url="u")
    with pytest.raises(AlpacaAccountError, match="INACTIVE"):
        check_account(AlpacaAccount(account_number="PA1", status="INACTIVE"), allow_live=False, url="u")


def _cli_live(srv, db: str, *extra: str) -> list[str]:
    return ["live", "--symbols", "QQQ", "--db", db, "--calendar", "24/7", "--alpaca-url", srv.trading_url,
            "--alpaca-stream-url", srv.stream_url, "--alpaca-data-url", srv.data_url,
            "--alpaca-data-stream-url", srv.data_stream_url, *extra]


def test_broker_answer_contradicting_a_paper_host_is_refused(tmp_path, capsys, monkeypatch):
    """A loopback host passes the host check, but the broker reports a real-money account number."""
    from strategies.cli import main
    from strategies.live import LiveSpec, preflight_account

    monkeypatch.setenv("ALPACA_API_KEY", KEY)
    monkeypatch.setenv("ALPACA_API_SECRET", SECRET)
    db = f"sqlite:///{tmp_path / 'x.db'}"
    with FakeAlpacaServer(keys={KEY: SECRET}, account_number="312345678") as srv:
        assert main(_cli_live(srv, db)) == 2
        err = capsys.readouterr().err
        assert "LIVE account" in err and "REAL MONEY" in err and srv.trading_url in err
        assert len(err.strip().splitlines()) == 1 and SECRET not in err
        assert main(_cli_live(srv, db, "--allow-live")) == 2  # not opted in: --live-account missing
        assert "REAL MONEY" in capsys.readouterr().err
        assert not (tmp_path / "x.db").exists()
        # opted in: the guard lets it through (the node itself is not started here)
        spec = LiveSpec(symbols=["QQQ"], api_key=KEY, api_secret=SECRET, paper=False, allow_live=True,
                        trading_url=srv.trading_url, trading_stream_url=srv.stream_url)
        assert preflight_account(spec).account_number == "312345678"
    with FakeAlpacaServer(keys={KEY: SECRET}) as srv:  # the paper account: accepted
        spec = LiveSpec(symbols=["QQQ"], api_key=KEY, api_secret=SECRET, trading_url=srv.trading_url,
                        trading_stream_url=srv.stream_url)
        assert preflight_account(spec).account_number.startswith("PA")


@pytest.mark.parametrize("state, word", [
    ({"status": "ACCOUNT_CLOSED"}, "ACCOUNT_CLOSED"),
    ({"status": "INACTIVE"}, "INACTIVE"),
    ({"account_blocked": True}, "account_blocked"),
    ({"trading_blocked": True}, "trading_blocked"),
])
def test_live_refuses_to_start_on_a_blocked_or_inactive_account(state, word, tmp_path, capsys, monkeypatch):
    from strategies.cli import main

    monkeypatch.setenv("ALPACA_API_KEY", KEY)
    monkeypatch.setenv("ALPACA_API_SECRET", SECRET)
    db = f"sqlite:///{tmp_path / 'x.db'}"
    with FakeAlpacaServer(keys={KEY: SECRET}) as srv:
        srv.set_account_state(**state)
        assert main(_cli_live(srv, db)) == 2
    err = capsys.readouterr().err
    assert word in err and srv.trading_url in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x.db").exists()


# ------------------------------------------------------- start-up failures: exit 2, one line --

def _run_cli(args: list[str], env_extra: dict, timeout: float) -> tuple[int, str, str, float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ALPACA_", "APCA_"))}
    env.update(env_extra)
    t0 = time.monotonic()
    p = subprocess.run([sys.executable, "-m", "strategies.cli", *args], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=timeout + 30)
    return p.returncode, p.stdout, p.stderr, time.monotonic() - t0


CONNECT_TIMEOUT = 30.0  # the node's timeout_connection (LiveSpec default)


@pytest.mark.slow
def test_wrong_keys_exit_2_with_one_line_and_no_secret(tmp_path):
    db = f"sqlite:///{tmp_path / 'x.db'}"
    with FakeAlpacaServer(keys={KEY: SECRET}) as srv:
        rc, out, err, took = _run_cli(_cli_live(srv, db),
                                      {"ALPACA_API_KEY": KEY, "ALPACA_API_SECRET": "wrong-" + SECRET},
                                      CONNECT_TIMEOUT)
    assert rc == 2, (out, err)
    assert took < CONNECT_TIMEOUT
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert "refused the API credentials" in lines[0] and srv.trading_url in lines[0]
    assert SECRET not in out + err and KEY not in out + err  # the key only masked (first 4 characters)


@pytest.mark.slow
def test_unreachable_broker_exits_2_within_the_timeout(tmp_path):
    db = f"sqlite:///{tmp_path / 'x.db'}"
    port = free_port()  # nothing listens there
    url = f"http://127.0.0.1:{port}"
    rc, out, err, took = _run_cli(
        ["live", "--symbols", "QQQ", "--db", db, "--calendar", "24/7", "--alpaca-url", url,
         "--alpaca-stream-url", f"ws://127.0.0.1:{port}/stream"],
        {"ALPACA_API_KEY": KEY, "ALPACA_API_SECRET": SECRET}, CONNECT_TIMEOUT)
    assert rc == 2, (out, err)
    assert took < CONNECT_TIMEOUT
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert "cannot reach the broker" in lines[0] and url in lines[0]
    assert SECRET not in out + err
    assert not (tmp_path / "x.db").exists()


@pytest.mark.slow
def test_keys_never_appear_in_any_output_of_a_live_run(tmp_path):
    """A run that gets as far as the node (DEBUG logs, client connect, reconciliation), then a
    failing run against a closed account: neither prints the secret (nor the unmasked key)."""
    db = f"sqlite:///{tmp_path / 'x.db'}"
    env = {"ALPACA_API_KEY": KEY, "ALPACA_API_SECRET": SECRET}
    with FakeAlpacaServer(keys={KEY: SECRET}) as srv:
        rc, out, err, _ = _run_cli(_cli_live(srv, db, "--duration", "4", "--log-level", "DEBUG"), env, 60)
        assert rc == 0, (out[-2000:], err[-2000:])
        assert "PAPER" in out
        assert SECRET not in out + err and KEY not in out + err
        srv.set_account_state(status="ACCOUNT_CLOSED")
        rc, out, err, _ = _run_cli(_cli_live(srv, db, "--log-level", "DEBUG"), env, 60)
    assert rc == 2 and "ACCOUNT_CLOSED" in err
    assert SECRET not in out + err and KEY not in out + err


# ----------------------------------------------- the broker blocks the account while running --

@pytest.mark.slow
@pytest.mark.parametrize("state", [{"trading_blocked": True}, {"status": "ACCOUNT_CLOSED"}])
def test_account_blocked_while_running_trips_the_kill_switch(state, tmp_path):
    from strategies.journal.models import ExecutorEventRecord
    from strategies.live import LiveSpec
    from strategies.risk_control import current_trading_state
    from tests.node_harness import until
    from tests.test_live_alpaca import run_live

    db = f"sqlite:///{tmp_path / 'live.db'}"
    with FakeAlpacaServer(keys={KEY: SECRET}) as srv:
        spec = LiveSpec(symbols=["QQQ"], db_url=db, api_key=KEY, api_secret=SECRET,
                        trading_url=srv.trading_url, trading_stream_url=srv.stream_url, data_url=srv.data_url,
                        data_stream_url=srv.data_stream_url, calendar="24/7", log_level="ERROR",
                        control_poll_seconds=1.0)

        async def scenario(live):
            strat = live.strategy
            assert not strat.kill_switch.is_active
            srv.set_account_state(**state)
            client = next(iter(live.node.kernel.exec_engine._clients.values()))
            await client._refresh_account()  # what the heartbeat does every heartbeat_interval_s
            await until(lambda: strat.kill_switch.is_active, what="the kill switch")
            assert strat.kill_switch.code == "broker_account"
            await until(lambda: current_trading_state(live.node.kernel) == "HALTED", what="HALTED")
            await until(lambda: live.control.kill_switch().active, what="the persisted latch")

        run_live(spec, scenario, 30.0)
    eng = create_engine(db)
    with eng.connect() as c:
        events = c.execute(select(ExecutorEventRecord.kind, ExecutorEventRecord.message)).all()
    word = next(iter(state.values())) if "status" in state else next(iter(state))
    assert any(k == "broker_account_halt" and word in m for k, m in events), events
    assert any(k == "kill_switch" and m.startswith("broker_account") for k, m in events), events


@pytest.mark.slow
def test_a_node_that_cannot_connect_ends_live_with_exit_2_not_running_for_ever(tmp_path, capsys, monkeypatch):
    """The start-up check passed, but the execution client cannot connect afterwards: `live` stops
    the node once connect + reconciliation had their time, with exit 2 and one line."""
    import dataclasses

    import strategies.live as live_mod
    from adapters.alpaca.execution import AlpacaExecutionClient
    from strategies.cli import main

    @dataclasses.dataclass
    class QuickSpec(live_mod.LiveSpec):
        timeout_connection: float = 2.0

    async def refuse(self):
        raise RuntimeError("connect refused on purpose")

    monkeypatch.setattr(live_mod, "LiveSpec", QuickSpec)
    monkeypatch.setattr(AlpacaExecutionClient, "_connect", refuse)
    monkeypatch.setenv("ALPACA_API_KEY", KEY)
    monkeypatch.setenv("ALPACA_API_SECRET", SECRET)
    db = f"sqlite:///{tmp_path / 'x.db'}"
    loop = asyncio.new_event_loop()  # the CLI's node takes the current loop (an earlier test may have closed it)
    asyncio.set_event_loop(loop)
    try:
        with FakeAlpacaServer(keys={KEY: SECRET}) as srv:
            t0 = time.monotonic()
            assert main(_cli_live(srv, db, "--log-level", "ERROR")) == 2
            assert time.monotonic() - t0 < 30
    finally:
        asyncio.set_event_loop(None)
        if not loop.is_closed():
            loop.close()
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("trade-executor: error: live: the node did not start within")
