"""servesim dashboard from a checkout: ``streamlit run app.py`` (installed: ``servesim dashboard``).
The routing and the pages live in ``simulator/dashboard/``."""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
if str(ROOT) not in sys.path:       # the pages import simulator from this folder
    sys.path.insert(0, str(ROOT))

from simulator.dashboard.app import main  # noqa: E402  (importable once ROOT is on the path)

main()
