"""servesim dashboard: ``streamlit run app.py``. Page routing only; each page is a module of ``ui/``."""
from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st

ROOT = Path(__file__).resolve().parent
if str(ROOT) not in sys.path:       # the pages import the ui package from this folder
    sys.path.insert(0, str(ROOT))

from ui import READY_KEY  # noqa: E402  (the ui package is importable once ROOT is on the path)

PAGES = [
    ("ui/whatif.py", "What-if", ":material/tune:", "whatif"),
    ("ui/capacity.py", "Capacity plan", ":material/dns:", "capacity"),
    ("ui/costs.py", "API vs self-host", ":material/payments:", "costs"),
    ("ui/calibration.py", "Calibration", ":material/speed:", "calibration"),
    ("ui/sweeps.py", "Sweeps", ":material/grid_on:", "sweeps"),
]

st.set_page_config(page_title="servesim", page_icon=":material/timer:", layout="wide")
st.navigation([st.Page(ROOT / path, title=title, icon=icon, url_path=url, default=(url == "whatif"))
               for path, title, icon, url in PAGES]).run()
# Rendered last, so its presence says the page's script ran to its end (the browser test waits on it).
st.sidebar.container(key=READY_KEY).html("<span></span>")
