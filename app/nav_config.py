"""The dashboard's navigation (the seed: "added to nav_config.py under Trading & Execution")."""

from __future__ import annotations

from pathlib import Path

APP_DIR = Path(__file__).resolve().parent

# section -> [(page file relative to app/, title, icon)]
NAV: dict[str, list[tuple[str, str, str]]] = {
    "Trading & Execution": [("pages/trade_executor.py", "Trade Executor", ":material/candlestick_chart:")],
}
