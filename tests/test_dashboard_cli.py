"""``trade-executor dashboard``: binds localhost unless told otherwise, keeps the journal URL off
the command line, and stops Streamlit with it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from strategies.dashboard.launch import DB_ENV, check_args, dashboard_env, is_loopback, streamlit_command

REPO_ROOT = Path(__file__).resolve().parent.parent


def test_loopback_addresses() -> None:
    assert all(is_loopback(h) for h in ("127.0.0.1", "127.8.9.1", "::1", "[::1]", "localhost", "LOCALHOST."))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "::", "10.0.0.5", "example.com", "192.168.1.2"))


def test_a_non_loopback_host_needs_allow_remote() -> None:
    with pytest.raises(ValueError, match="--host 0.0.0.0 is not a loopback address.*--allow-remote"):
        check_args("0.0.0.0", 8501, allow_remote=False)
    check_args("0.0.0.0", 8501, allow_remote=True)
    check_args("127.0.0.1", 8501, allow_remote=False)
    with pytest.raises(ValueError, match="--port must be 0..65535"):
        check_args("127.0.0.1", 70000, allow_remote=False)


def test_the_command_line_binds_what_was_asked_and_holds_no_url() -> None:
    cmd = streamlit_command("127.0.0.1", 8600, python="/py")
    assert cmd[:4] == ["/py", "-m", "streamlit", "run"] and cmd[4].endswith("app/main.py")
    assert cmd[cmd.index("--server.address") + 1] == "127.0.0.1" and cmd[cmd.index("--server.port") + 1] == "8600"
    assert cmd[cmd.index("--browser.gatherUsageStats") + 1] == "false"
    env = dashboard_env("postgresql://u:pw@db/x", base={"PATH": "/bin"})
    assert env == {"PATH": "/bin", DB_ENV: "postgresql://u:pw@db/x"}
    assert not any("pw" in c for c in cmd)


def test_cli_refuses_a_public_host_in_one_line() -> None:
    proc = subprocess.run([sys.executable, "-m", "strategies.cli", "dashboard", "--host", "0.0.0.0"],
                          capture_output=True, text=True, timeout=60, cwd=REPO_ROOT)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "--allow-remote" in proc.stderr


@pytest.mark.slow
def test_cli_serves_on_localhost_and_stops_streamlit_with_it(tmp_path) -> None:
    import socket

    from strategies.journal import upgrade

    url = f"sqlite:///{tmp_path / 'j.db'}"
    upgrade(url)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "strategies.cli", "dashboard", "--db", url, "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as r:  # nosec B310
                    assert r.read().decode().strip() == "ok"
                    break
            except OSError:
                assert proc.poll() is None, proc.stdout.read()
                assert time.monotonic() < deadline, "dashboard did not answer within 60 s"
                time.sleep(0.2)
        children = subprocess.run(["ps", "-o", "pid=", "--ppid", str(proc.pid)], capture_output=True,
                                  text=True).stdout.split()
        assert len(children) == 1  # streamlit
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
        time.sleep(0.5)
        for pid in children:
            with pytest.raises(ProcessLookupError):
                os.kill(int(pid), 0)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
