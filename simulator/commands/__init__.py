"""Subcommands of the ``servesim`` CLI (each module registers its own)."""
from . import (calibrate_cmd, catalog_cmds, compare_cmd, cost_cmd, dashboard_cmd, estimate_cmd,  # noqa: F401
               plan_cmd, run_cmd, sweep_cmd)
