"""The operator dashboard in a real headless browser (issue #16): ``streamlit run app/main.py`` as
a subprocess on a free 127.0.0.1 port, driven by Playwright with Debian's Chromium, against a
journal filled by a real backtest and the live executor's writer (tests/dashboard_fixtures.py,
numbers worked out there).

Chromium: ``$CHROMIUM``, else ``chromium`` / ``chromium-browser`` on PATH (``make test`` installs
Debian's package when missing and run as root). Without one these tests skip, saying so.
Screenshots of every tab go to ``$DASHBOARD_SCREENSHOTS`` (default backtests/out/dashboard-screenshots).

Tables are Streamlit's canvas data grids; their accessible DOM holds the visible cells
(``[role=gridcell]``), so the tests use a wide viewport and read those.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from strategies.dashboard.launch import dashboard_env, streamlit_command
from tests.dashboard_fixtures import build_journal

pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).resolve().parent.parent
SHOTS = Path(os.environ.get("DASHBOARD_SCREENSHOTS", REPO_ROOT / "backtests" / "out" / "dashboard-screenshots"))
OPERATOR = "pw-operator"
TABS = ["Active Positions", "Order Book", "Risk", "Trade Journal", "Instrument Mode", "Backtests"]


def chromium_path() -> str | None:
    for c in (os.environ.get("CHROMIUM"), "chromium", "chromium-browser"):
        if c and shutil.which(c):
            return shutil.which(c)
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Dashboard:
    """``streamlit run app/main.py`` on ``db_url`` (the production command line of the CLI)."""

    def __init__(self, db_url: str, workdir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = workdir / f"streamlit-{self.port}.log"
        env = dashboard_env(db_url)
        env["TRADE_EXECUTOR_OPERATOR"] = OPERATOR
        with self.log.open("w") as log:
            self.proc = subprocess.Popen(streamlit_command("127.0.0.1", self.port), env=env, cwd=workdir,
                                         stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"streamlit exited {self.proc.returncode}: {self.log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2) as r:  # nosec B310 - loopback
                    if r.read().decode().strip() == "ok":
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"streamlit did not answer within 60 s: {self.log.read_text()[-2000:]}")
            time.sleep(0.2)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def errors(self) -> str:
        text = self.log.read_text()
        return text if "Traceback" in text else ""


@pytest.fixture(scope="module")
def browser() -> Iterator:
    exe = chromium_path()
    if exe is None:
        pytest.skip("no Chromium (set $CHROMIUM or apt-get install chromium; `make test` does that as root)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright not installed (pip install -e '.[test]')")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, args=["--no-sandbox", "--disable-dev-shm-usage"])
        yield b
        b.close()


@pytest.fixture(scope="module")
def journal(tmp_path_factory) -> tuple[str, str, Path]:
    tmp = tmp_path_factory.mktemp("dash")
    url = f"sqlite:///{tmp / 'journal.db'}"
    run_id = build_journal(tmp, url)
    return url, run_id, tmp


@pytest.fixture(scope="module")
def dashboard(journal) -> Iterator[Dashboard]:
    url, _, tmp = journal
    dash = Dashboard(url, tmp)
    yield dash
    dash.stop()
    assert not dash.errors(), dash.errors()[-3000:]


def open_page(browser, dash: Dashboard):
    page = browser.new_page(viewport={"width": 2400, "height": 1500}, accept_downloads=True)
    page.goto(dash.url)
    page.get_by_role("heading", name="Trade Executor").wait_for(timeout=30_000)
    page.get_by_role("tab", name="Active Positions").wait_for(timeout=30_000)
    page.locator(".st-key-run_id input").wait_for(timeout=30_000)
    return page


def open_tab(page, name: str) -> None:
    page.get_by_role("tab", name=name).click()
    page.wait_for_timeout(300)


def choose(page, key: str, option: str) -> None:
    """Pick ``option`` in the selectbox with widget key ``key``."""
    box = page.locator(f".st-key-{key} input")
    box.wait_for()
    box.click()
    page.get_by_role("option", name=option, exact=True).click()
    page.wait_for_timeout(300)


def select_run(page, run_id: str) -> None:
    choose(page, "run_id", run_id)
    page.get_by_text("Open positions", exact=True).wait_for()


def cells(page, key: str, expected: list[str], timeout: float = 20.0) -> list[str]:
    """The visible cells of table ``key`` once they include every string of ``expected``."""
    loc = page.locator(f".st-key-tbl_{key} [role=gridcell]")
    deadline = time.monotonic() + timeout
    while True:
        texts = [t.strip() for t in loc.all_inner_texts()]
        if all(e in texts for e in expected):
            return texts
        if time.monotonic() > deadline:
            raise AssertionError(f"table {key}: {expected} not all in {texts}")
        page.wait_for_timeout(200)


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def control_row(url: str, key: str):
    e = sa.create_engine(url)
    try:
        with e.connect() as c:
            return c.execute(sa.text("select value_json, updated_by from executor_control where key = :k"),
                             {"k": key}).first()
    finally:
        e.dispose()


def test_each_tab_renders_the_journal(browser, dashboard, journal) -> None:
    url, run_id, _ = journal
    page = open_page(browser, dashboard)
    # header metrics of the live run
    page.get_by_text("$100,400", exact=True).wait_for()
    metric = page.locator("[data-testid=stMetric]").filter(has_text="Instrument mode")
    assert metric.inner_text().split() == ["Instrument", "mode", "stock"]  # set by the CLI in the fixture
    ks = page.locator("[data-testid=stMetric]").filter(has_text="Kill switch")
    assert ks.inner_text().split() == ["Kill", "switch", "inactive"]

    # Active Positions (live): TQQQ on QQQ 3x marked 52.00, SPY short marked 590.00
    cells(page, "positions", ["TQQQ", "QQQ", "leveraged_etf", "long", "100", "50", "48", "54", "52", "200",
                              "SPY", "short", "20", "600", "590"])
    page.get_by_text("$400.00", exact=True).wait_for()
    shot(page, "1-active-positions")

    # Order Book (live): the working protective stop
    open_tab(page, "Order Book")
    cells(page, "orders_working", ["O-LIVE-2", "TQQQ", "SELL", "STOP_MARKET", "100", "48", "ACCEPTED", "stop"])
    shot(page, "2-order-book")

    # Risk (live): kill switch inactive, exposure vs caps, daily P&L
    open_tab(page, "Risk")
    page.get_by_text("Kill switch inactive: trading allowed").wait_for()
    cells(page, "exp_table_by_underlying", ["QQQ", "15600", "15060", "SPY", "-11800"])
    cells(page, "exp_table_by_sector", ["nasdaq100", "30120", "sp500"])
    cells(page, "daily_table", ["2025-06-16", "2025-06-17", "400"])
    assert page.locator("[data-testid=stPlotlyChart]").count() >= 4  # exposure x2, daily P&L, equity/drawdown
    shot(page, "3-risk")

    # the backtest run: its order book, trade journal with attribution, rejected signals, CSV
    select_run(page, run_id)
    open_tab(page, "Order Book")
    cells(page, "orders_history", ["FILLED", "CANCELED", "101.99", "100.01", "99", "entry:market", "stop", "exit"])
    cells(page, "fills", ["BUY", "SELL", "150", "100.01", "101.99"])
    page.get_by_text("No working orders.").wait_for()
    open_tab(page, "Active Positions")
    page.get_by_text(f"No open positions in run {run_id}.").wait_for()

    open_tab(page, "Trade Journal")
    cells(page, "journal", ["QQQ", "long", "150", "100.01", "101.99", "296.98", "profit_target", "closed",
                            "cloud_flip_bullish", "10m", "80"])
    cells(page, "rejections", ["low_conviction", "30", "low_conviction: conviction 30 < 50 (not executed)"])
    with page.expect_download() as dl:
        page.get_by_role("button", name="Download trades CSV").click()
    csv_text = Path(dl.value.path()).read_text()
    assert csv_text.splitlines()[0].startswith("entry_time,exit_time,ticker,underlying,direction,shares")
    assert ",QQQ,QQQ,long,150,100.01,101.99,296.98," in csv_text.splitlines()[1]
    shot(page, "4-trade-journal")
    # filters: a ticker with no trades, then a direction with none
    page.locator(".st-key-j_ticker input").fill("SPY")
    page.locator(".st-key-j_ticker input").press("Enter")
    page.get_by_text("No trades match.").wait_for()
    page.get_by_text("No rejected signals.").wait_for()
    page.locator(".st-key-j_ticker input").fill("QQQ")
    page.locator(".st-key-j_ticker input").press("Enter")
    cells(page, "journal", ["296.98"])
    choose(page, "j_dir", "short")
    page.get_by_text("No trades match.").wait_for()

    open_tab(page, "Backtests")
    cells(page, "per_mode", ["stock", run_id, "1"])
    cells(page, "bt_runs", [run_id, "stock", "QQQ", "true"])
    cells(page, "bt_trades", ["QQQ", "150", "296.98"])
    chart = page.locator(".st-key-bt_equity")
    chart.wait_for()
    assert run_id in chart.inner_text()  # the legend of the equity curves names the run
    shot(page, "6-backtests")
    page.close()


def test_kill_switch_toggle_needs_confirmation_then_writes_the_latch(browser, dashboard, journal) -> None:
    url, _, _ = journal
    page = open_page(browser, dashboard)
    open_tab(page, "Risk")
    form = page.locator("[data-testid=stForm]").filter(has_text="Trip kill switch")
    form.get_by_label("Reason").fill("browser test halt")
    form.get_by_role("button", name="Trip kill switch").click()
    page.get_by_text("Nothing done: tick the confirmation box first.").wait_for()
    assert control_row(url, "kill_switch") is None  # nothing written without the confirmation

    form.get_by_label("Reason").fill("browser test halt")
    form.get_by_text("I confirm: halt all trading now").click()
    form.get_by_role("button", name="Trip kill switch").click()
    page.get_by_text("Kill switch tripped by pw-operator.").wait_for()
    value, by = control_row(url, "kill_switch")
    assert value if isinstance(value, dict) else True
    import json

    v = value if isinstance(value, dict) else json.loads(value)
    assert v["active"] is True and v["reason"] == "manual: browser test halt" and by == OPERATOR
    page.get_by_text("Kill switch ACTIVE: manual: browser test halt").wait_for()
    cells(page, "ks_history", ["operator_action", OPERATOR])
    shot(page, "3b-risk-kill-switch-active")

    # reset, again only with the confirmation
    form = page.locator("[data-testid=stForm]").filter(has_text="Reset kill switch")
    form.get_by_role("button", name="Reset kill switch").click()
    page.get_by_text("Nothing done: tick the confirmation box first.").wait_for()
    v = control_row(url, "kill_switch")[0]
    assert (v if isinstance(v, dict) else json.loads(v))["active"] is True
    form.get_by_text("I confirm: resume trading").click()
    form.get_by_role("button", name="Reset kill switch").click()
    page.get_by_text("Kill switch reset by pw-operator.").wait_for()
    v = control_row(url, "kill_switch")[0]
    assert (v if isinstance(v, dict) else json.loads(v))["active"] is False
    page.get_by_text("Kill switch inactive: trading allowed").wait_for()
    page.close()


def test_mode_selector_writes_executor_control(browser, dashboard, journal) -> None:
    url, _, _ = journal
    page = open_page(browser, dashboard)
    open_tab(page, "Instrument Mode")
    form = page.locator("[data-testid=stForm]").filter(has_text="Apply mode")
    choose(page, "mode_new", "leveraged_etf")
    form.get_by_role("button", name="Apply mode").click()
    page.get_by_text("Nothing done: tick the confirmation box first.").wait_for()
    assert control_row(url, "instrument_mode")[0] in ("stock", '"stock"')

    choose(page, "mode_new", "leveraged_etf")
    form.get_by_text("I confirm the change of instrument mode").click()
    form.get_by_role("button", name="Apply mode").click()
    page.get_by_text("Instrument mode set to leveraged_etf by pw-operator.").wait_for()
    value, by = control_row(url, "instrument_mode")
    assert value in ("leveraged_etf", '"leveraged_etf"') and by == OPERATOR
    cells(page, "operator_actions", ["instrument_mode", OPERATOR])
    shot(page, "5-instrument-mode")
    page.close()
    from strategies.journal import ControlStore

    ControlStore(url).set_instrument_mode("stock", by="cli")  # the module's journal as the fixture made it


def test_unreachable_database_shows_a_banner(browser, tmp_path) -> None:
    dash = Dashboard("postgresql+psycopg://nobody:secret@127.0.0.1:1/nothing", tmp_path)
    try:
        page = browser.new_page()
        page.goto(dash.url)
        banner = page.get_by_text("Journal database unavailable.")
        banner.wait_for(timeout=30_000)
        text = page.locator("[data-testid=stMain]").inner_text()
        assert "database not reachable (postgresql+psycopg://nobody:***@127.0.0.1:1/nothing)" in text
        assert "secret" not in text and "Traceback" not in text
        assert page.get_by_role("tab", name="Risk").count() == 0  # nothing else is shown
        shot(page, "0-database-unavailable")
        page.close()
    finally:
        dash.stop()
    assert not dash.errors()


def test_page_refreshes_by_itself_while_a_live_node_writes(browser, tmp_path) -> None:
    """A journal a live node wrote to a moment ago: auto-refresh is on by itself, and a change made
    behind the page's back (here the executor's own trip of the latch) shows up without a reload."""
    from datetime import datetime, timezone

    from strategies.journal import ControlStore, TradeJournalWriter, upgrade

    url = f"sqlite:///{tmp_path / 'running.db'}"
    upgrade(url)
    w = TradeJournalWriter(url)
    w.record_equity(datetime.now(timezone.utc), 100_000.0)  # the node's latest equity point: just now
    w.close()
    dash = Dashboard(url, tmp_path)
    try:
        page = open_page(browser, dash)
        assert page.locator(".st-key-auto_refresh input").is_checked()
        page.get_by_text("inactive", exact=True).wait_for()
        ControlStore(url).activate_kill_switch("daily_loss: -10.0% of 100,000", by="executor:ExecutorStrategy-000")
        page.get_by_text("ACTIVE", exact=True).wait_for(timeout=15_000)  # next refresh, <= 5 s
        page.close()
    finally:
        dash.stop()
    assert not dash.errors()


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_dashboard_reads_a_postgresql_journal(browser, tmp_path, db_url) -> None:
    """The same page on PostgreSQL (conftest's db_url: a schema of its own; skipped only without
    the server)."""
    url = db_url
    assert url.startswith("postgresql")
    run_id = build_journal(tmp_path, url)
    dash = Dashboard(url, tmp_path)
    try:
        page = open_page(browser, dash)
        cells(page, "positions", ["TQQQ", "QQQ", "52", "200", "SPY", "590"])
        select_run(page, run_id)
        open_tab(page, "Trade Journal")
        cells(page, "journal", ["QQQ", "150", "100.01", "101.99", "296.98", "profit_target"])
        page.close()
    finally:
        dash.stop()
    assert not dash.errors()
