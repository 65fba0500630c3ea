"""Research code around the calibration suite, run from a checkout only (not part of the wheel):
tensor-parallel studies (``tp_*``), the end-to-end harness against real engines (``e2e/``), the
kernel-database overlays (``kerneldb/``), Hopper kernel and model checks (``hopper_*``), silicon
and offline checks, and the validation report builders.

The suite that ``servesim calibrate`` runs lives in :mod:`simulator.calibration`; these modules
import it from there. ``python -m calibration`` is kept as a shortcut for that suite.
"""
