"""The dashboard acting on a RUNNING live node (issue #16): a real TradingNode with the Alpaca
adapter against the local Alpaca-protocol server, the dashboard (``streamlit run``) on the same
journal, driven in headless Chromium.

1. The operator trips the kill switch in the browser (with the confirmation): the node, polling
   executor_control every 0.5 s, latches it and puts NautilusTrader's RiskEngine in HALTED; an
   order submitted after that is DENIED by the RiskEngine, and the node's OrderRecorder journals
   it (executor_orders, status DENIED, run id ``live``).
2. The dashboard's order book shows that DENIED order; the operator resets the kill switch in the
   browser: the node resumes (RiskEngine ACTIVE).
3. The operator picks the instrument mode in the browser: the running node routes new entries by
   it (it follows executor_control's mode at every poll) and journals the change.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
import sqlalchemy as sa

from adapters.alpaca.fake_server import FakeAlpacaServer
from strategies.journal import upgrade
from strategies.journal.models import ExecutorEventRecord, OrderRecord
from strategies.live import LiveSpec
from strategies.risk_control import current_trading_state
from tests.node_harness import until
from tests.test_dashboard_browser import Dashboard, cells, chromium_path, choose
from tests.test_live_alpaca import KEY, SECRET, run_live

pytestmark = pytest.mark.slow


def in_browser(url: str, steps) -> None:
    """Run ``steps(page)`` in a fresh headless Chromium (own Playwright: called from a worker
    thread while the node's event loop runs in the test's thread)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox", "--disable-dev-shm-usage"])
        try:
            page = b.new_page(viewport={"width": 2000, "height": 1400})
            page.goto(url)
            page.get_by_role("tab", name="Risk").wait_for(timeout=30_000)
            page.locator(".st-key-run_id input").wait_for(timeout=30_000)
            steps(page)
        finally:
            b.close()


def trip(page) -> None:
    page.get_by_role("tab", name="Risk").click()
    form = page.locator("[data-testid=stForm]").filter(has_text="Trip kill switch")
    form.get_by_label("Reason").fill("operator halt from the dashboard")
    form.get_by_text("I confirm: halt all trading now").click()
    form.get_by_role("button", name="Trip kill switch").click()
    page.get_by_text("Kill switch tripped by pw-operator.").wait_for(timeout=20_000)


def denied_order_shown_then_reset(page) -> None:
    page.get_by_role("tab", name="Order Book").click()
    cells(page, "orders_history", ["QQQ", "BUY", "MARKET", "DENIED"])  # the node's order book, live
    reset(page)


def reset(page) -> None:
    page.get_by_role("tab", name="Risk").click()
    form = page.locator("[data-testid=stForm]").filter(has_text="Reset kill switch")
    form.get_by_text("I confirm: resume trading").click()
    form.get_by_role("button", name="Reset kill switch").click()
    page.get_by_text("Kill switch reset by pw-operator.").wait_for(timeout=20_000)


def set_mode_leveraged(page) -> None:
    page.get_by_role("tab", name="Instrument Mode").click()
    choose(page, "mode_new", "leveraged_etf")
    form = page.locator("[data-testid=stForm]").filter(has_text="Apply mode")
    form.get_by_text("I confirm the change of instrument mode").click()
    form.get_by_role("button", name="Apply mode").click()
    page.get_by_text("Instrument mode set to leveraged_etf by pw-operator.").wait_for(timeout=20_000)


def test_dashboard_halts_resumes_and_sets_the_mode_of_a_live_node(tmp_path) -> None:
    if chromium_path() is None:
        pytest.skip("no Chromium (set $CHROMIUM or apt-get install chromium; `make test` does that as root)")
    pytest.importorskip("playwright")
    db = f"sqlite:///{tmp_path / 'live.db'}"
    upgrade(db)
    dash = Dashboard(db, tmp_path)
    seen: dict = {}
    try:
        with FakeAlpacaServer(keys={KEY: SECRET}) as srv:
            spec = LiveSpec(symbols=["QQQ"], db_url=db, api_key=KEY, api_secret=SECRET, trading_url=srv.trading_url,
                            trading_stream_url=srv.stream_url, data_url=srv.data_url,
                            data_stream_url=srv.data_stream_url, calendar="24/7", log_level="ERROR",
                            control_poll_seconds=0.5)

            async def scenario(live) -> None:
                from nautilus_trader.model.enums import OrderSide
                from nautilus_trader.model.identifiers import InstrumentId
                from nautilus_trader.model.objects import Quantity

                strat = live.strategy
                assert not strat.kill_switch.is_active and current_trading_state(live.node.kernel) == "ACTIVE"
                await asyncio.to_thread(in_browser, dash.url, trip)
                await until(lambda: strat.kill_switch.is_active, 10, "the node to latch the dashboard's trip")
                await until(lambda: current_trading_state(live.node.kernel) == "HALTED", 10, "RiskEngine HALTED")
                seen["reason"] = strat.kill_switch.reason
                # the next order, from any strategy of the node, is denied by the RiskEngine
                order = strat.order_factory.market(InstrumentId.from_str("QQQ.ALPACA"), OrderSide.BUY,
                                                   Quantity(Decimal(1), 0))
                strat.submit_order(order)
                await until(lambda: order.status_string() == "DENIED", 10, "the order to be denied")
                seen["denied"] = order.client_order_id.value
                seen["broker_orders"] = len(srv.orders())
                await until(lambda: live.journal.flush(1.0), 10, "the journal to take the denied order")
                await asyncio.to_thread(in_browser, dash.url, denied_order_shown_then_reset)
                await until(lambda: not strat.kill_switch.is_active, 10, "the node to resume")
                await until(lambda: current_trading_state(live.node.kernel) == "ACTIVE", 10, "RiskEngine ACTIVE")
                # the mode picked in the dashboard: the running node routes new entries by it
                assert strat.xconfig.instrument_mode.value == "stock"
                await asyncio.to_thread(in_browser, dash.url, set_mode_leveraged)
                await until(lambda: strat.xconfig.instrument_mode.value == "leveraged_etf", 10,
                            "the node to follow the dashboard's mode")
                live.journal.flush()

            run_live(spec, scenario)
            assert seen["reason"] == "manual: operator halt from the dashboard"
            assert seen["broker_orders"] == 0  # nothing reached the broker
    finally:
        dash.stop()
    assert not dash.errors(), dash.errors()[-3000:]

    eng = sa.create_engine(db)
    try:
        with eng.connect() as c:
            denied = c.execute(sa.select(OrderRecord.status, OrderRecord.run_id, OrderRecord.reason).where(
                OrderRecord.client_order_id == seen["denied"])).one()
            kinds = c.execute(sa.select(ExecutorEventRecord.kind, ExecutorEventRecord.message)
                              .order_by(ExecutorEventRecord.ts, ExecutorEventRecord.id)).all()
    finally:
        eng.dispose()
    assert denied[0] == "DENIED" and denied[1] == "live" and denied[2]  # with the RiskEngine's reason
    names = [k for k, _ in kinds]
    # operator trip (dashboard) -> the node's own kill_switch event -> operator reset -> the node's reset
    assert names.index("operator_action") < names.index("kill_switch") < names.index("kill_switch_reset")
    assert sum(1 for k, m in kinds if k == "operator_action") == 3  # trip, reset, mode
    # ... and the node's own record of following the mode, after the operator's action
    assert names.index("instrument_mode") > len(names) - 1 - names[::-1].index("operator_action")
    assert "stock -> leveraged_etf" in dict(kinds)["instrument_mode"]
