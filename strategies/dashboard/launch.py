"""``trade-executor dashboard``: start the Streamlit operator dashboard (``app/main.py``).

* Binds 127.0.0.1 by default; any address that is not loopback needs ``--allow-remote`` (the
  dashboard can halt trading: it has no login of its own, so keep it behind localhost or an SSH
  tunnel / authenticating proxy).
* The journal URL travels in the environment (``TRADE_EXECUTOR_DASHBOARD_DB``), never on the
  process's command line (it may hold a password).
* Streamlit runs headless, without usage statistics and without its deploy toolbar.
"""

from __future__ import annotations

import ipaddress
import os
import signal
import subprocess  # nosec B404 - runs this interpreter's streamlit with fixed arguments
import sys
from pathlib import Path

APP_MAIN = Path(__file__).resolve().parent.parent.parent / "app" / "main.py"
DB_ENV = "TRADE_EXECUTOR_DASHBOARD_DB"
DEFAULT_PORT = 8501


def is_loopback(host: str) -> bool:
    if host.strip().lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def streamlit_command(host: str, port: int, *, app: Path = APP_MAIN, python: str | None = None) -> list[str]:
    """The ``python -m streamlit run`` command line of the dashboard (no secrets in it)."""
    return [python or sys.executable, "-m", "streamlit", "run", str(app),
            "--server.address", host, "--server.port", str(int(port)), "--server.headless", "true",
            "--browser.gatherUsageStats", "false", "--client.toolbarMode", "minimal",
            "--server.fileWatcherType", "none"]


def dashboard_env(db_url: str, base: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ if base is None else base)
    env[DB_ENV] = db_url
    return env


def check_args(host: str, port: int, allow_remote: bool) -> None:
    """ValueError (one line) for a host that is not loopback without ``allow_remote``, a bad port,
    or no streamlit installed."""
    if not is_loopback(host) and not allow_remote:
        raise ValueError(f"dashboard: --host {host} is not a loopback address; the dashboard can halt "
                         "trading and has no login: add --allow-remote to expose it deliberately")
    if not 0 <= int(port) <= 65535:
        raise ValueError(f"dashboard: --port must be 0..65535, got {port}")
    import importlib.util

    if importlib.util.find_spec("streamlit") is None:
        raise ValueError("dashboard: streamlit is not installed: pip install -e '.[dashboard]'")


def run(db_url: str, host: str = "127.0.0.1", port: int = DEFAULT_PORT, allow_remote: bool = False) -> int:
    """Run the dashboard until Ctrl-C (blocking); returns Streamlit's exit code."""
    check_args(host, port, allow_remote)
    from strategies.dashboard.data import redact

    print(f"dashboard: http://{host}:{port}  journal {redact(db_url)}  (Ctrl-C stops)", flush=True)
    proc = subprocess.Popen(streamlit_command(host, port), env=dashboard_env(db_url))  # nosec B603 - fixed argv, no shell

    def on_term(signum, frame) -> None:  # noqa: ANN001 - a SIGTERM stops Streamlit too, never orphans it
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)


__all__ = ["APP_MAIN", "DB_ENV", "DEFAULT_PORT", "check_args", "dashboard_env", "is_loopback", "run",
           "streamlit_command"]
