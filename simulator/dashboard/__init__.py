"""The servesim dashboard (``streamlit run app.py``): one module per page, Altair chart
builders in :mod:`simulator.dashboard.charts`, scenario ⇄ widget state and cached runs in
:mod:`simulator.dashboard.state`.

The pages only call public functions of :mod:`simulator`; no model of serving lives here.
"""
from __future__ import annotations

from pathlib import Path

#: Key of the element that ``app.py`` renders after a page's script ran to its end: the sidebar's
#: ``div.st-key-servesim-ready``. Browser tests wait on it instead of on fixed times.
READY_KEY = "servesim-ready"


def page_path(name: str) -> str:
    """Absolute path of the page script ``name`` (``"whatif"``), for ``st.Page`` and ``st.page_link``;
    absolute, so that links work whichever script Streamlit was started with."""
    return str(Path(__file__).resolve().with_name(f"{name}.py"))
