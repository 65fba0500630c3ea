"""servesim dashboard: ``streamlit run app.py``. Page routing only; each page is a module of
``simulator/dashboard/``."""
from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st

ROOT = Path(__file__).resolve().parent
if str(ROOT) not in sys.path:       # the pages import simulator from this folder
    sys.path.insert(0, str(ROOT))

from simulator.dashboard import READY_KEY, page_path  # noqa: E402  (importable once ROOT is on the path)

PAGES = [
    ("whatif", "What-if", ":material/tune:", "whatif"),
    ("capacity", "Capacity plan", ":material/dns:", "capacity"),
    ("costs", "API vs self-host", ":material/payments:", "costs"),
    ("calibration", "Calibration", ":material/speed:", "calibration"),
    ("sweeps", "Sweeps", ":material/grid_on:", "sweeps"),
]

st.set_page_config(page_title="servesim", page_icon=":material/timer:", layout="wide")
st.navigation([st.Page(page_path(name), title=title, icon=icon, url_path=url, default=(url == "whatif"))
               for name, title, icon, url in PAGES]).run()
# Rendered last, so its presence says the page's script ran to its end (the browser test waits on it).
st.sidebar.container(key=READY_KEY).html("<span></span>")
