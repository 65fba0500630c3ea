"""The servesim dashboard (``streamlit run app.py``): one module per page, Altair chart
builders in :mod:`ui.charts`, scenario ⇄ widget state and cached runs in :mod:`ui.state`.

The pages only call public functions of :mod:`simulator`; no model of serving lives here.
"""

#: Key of the element that ``app.py`` renders after a page's script ran to its end: the sidebar's
#: ``div.st-key-servesim-ready``. Browser tests wait on it instead of on fixed times.
READY_KEY = "servesim-ready"
