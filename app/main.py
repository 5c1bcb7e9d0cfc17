"""Entry point of the operator dashboard: ``trade-executor dashboard [--db URL]`` runs
``streamlit run app/main.py`` bound to 127.0.0.1 (strategies/dashboard/launch.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st

sys.path.insert(0, str(Path(__file__).resolve().parent))  # app/ (nav_config) when run from anywhere

from nav_config import APP_DIR, NAV  # noqa: E402

st.set_page_config(page_title="Trade Executor", page_icon=":material/candlestick_chart:", layout="wide")
pages = {section: [st.Page(str(APP_DIR / path), title=title, icon=icon) for path, title, icon in entries]
         for section, entries in NAV.items()}
st.navigation(pages).run()
