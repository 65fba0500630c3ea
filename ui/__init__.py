"""The servesim dashboard (``streamlit run app.py``): one module per page, Altair chart
builders in :mod:`ui.charts`, scenario ⇄ widget state and cached runs in :mod:`ui.state`.

The pages only call public functions of :mod:`simulator`; no model of serving lives here.
"""
