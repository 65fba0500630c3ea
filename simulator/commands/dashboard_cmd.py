"""``servesim dashboard``: start the Streamlit dashboard of the installed package."""
from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
from pathlib import Path

from ..errors import InputError
from .registry import subcommand

#: The dashboard's entry script inside the package (``app.py`` of a checkout calls the same ``main``).
APP = Path(__file__).resolve().parents[1] / "dashboard" / "app.py"


@subcommand
def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("dashboard", help="open the dashboard in a browser (needs the app extra)")
    p.add_argument("--port", type=int, default=8501, help="port to serve on (default 8501)")
    p.add_argument("--headless", action="store_true", help="serve without opening a browser")
    p.set_defaults(handler=run)


def streamlit_command(port: int, headless: bool) -> list[str]:
    """The command line that serves the dashboard; refuses ports outside 1-65535."""
    if not 1 <= port <= 65535:
        raise InputError("--port", port, "allowed: 1 to 65535")
    return [sys.executable, "-m", "streamlit", "run", str(APP), "--server.port", str(port),
            "--server.headless", "true" if headless else "false"]


def run(args: argparse.Namespace) -> int:
    cmd = streamlit_command(args.port, args.headless)
    if importlib.util.find_spec("streamlit") is None:
        raise InputError("dashboard", "streamlit not installed", "install the app extra: pip install 'servesim[app]'")
    return subprocess.call(cmd)
