"""Subcommands of the ``servesim`` CLI (each module registers its own)."""
from . import calibrate_cmd, catalog_cmds, estimate_cmd, run_cmd  # noqa: F401
