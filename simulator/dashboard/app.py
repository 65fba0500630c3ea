"""The dashboard's entry script: page routing only; each page is a module of this package.

``servesim dashboard`` runs it with Streamlit from an installed package; in a checkout,
``streamlit run app.py`` runs the repository's ``app.py``, which calls :func:`main`."""
from __future__ import annotations

import streamlit as st

from simulator.dashboard import READY_KEY, page_path

PAGES = [
    ("whatif", "What-if", ":material/tune:", "whatif"),
    ("capacity", "Capacity plan", ":material/dns:", "capacity"),
    ("costs", "API vs self-host", ":material/payments:", "costs"),
    ("calibration", "Calibration", ":material/speed:", "calibration"),
    ("sweeps", "Sweeps", ":material/grid_on:", "sweeps"),
]


def main() -> None:
    """Route to the page in the URL (What-if by default)."""
    st.set_page_config(page_title="servesim", page_icon=":material/timer:", layout="wide")
    st.navigation([st.Page(page_path(name), title=title, icon=icon, url_path=url, default=(url == "whatif"))
                   for name, title, icon, url in PAGES]).run()
    # Rendered last, so its presence says the page's script ran to its end (the browser test waits on it).
    st.sidebar.container(key=READY_KEY).html("<span></span>")


if __name__ == "__main__":
    main()
