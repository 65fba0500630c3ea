"""Locate data files (GPU profiles, catalogs) in a checkout or an installed wheel."""
from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


def hwprofiles_dir() -> Path:
    """Directory of GPU profile YAML files: the checkout's ``hwprofiles/`` or the wheel's copy."""
    checkout = PACKAGE_DIR.parent / "hwprofiles"
    if checkout.is_dir():
        return checkout
    return PACKAGE_DIR / "_data" / "hwprofiles"


def catalog_dir(kind: str) -> Path:
    """Directory of a packaged catalog: ``models`` or ``engines``."""
    return PACKAGE_DIR / "catalog" / kind


def calibration_data_dir() -> Path:
    """The checkout's ``calibration/data/`` (measurements behind the shipped profiles); the wheel has
    no copy, so this directory exists in a checkout only."""
    return PACKAGE_DIR.parent / "calibration" / "data"
