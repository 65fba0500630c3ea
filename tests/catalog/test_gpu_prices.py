"""GPU rental price data: every entry names a known GPU profile, is sourced and dated, and its
arithmetic (instance price / GPUs) and ordering (spot below on-demand) hold."""
from __future__ import annotations

import datetime as dt
from collections import defaultdict

import pytest
import yaml

from simulator.catalog.gpus import list_gpus
from simulator.paths import PACKAGE_DIR

PRICES = PACKAGE_DIR / "planning" / "data" / "gpu_prices.yaml"
FIELDS = {"provider", "offer", "kind", "usd_per_gpu_hour", "date", "source", "note", "estimate", "reason",
          "instance_usd_per_hour", "gpus_per_instance"}
REQUIRED = {"provider", "offer", "kind", "usd_per_gpu_hour", "date", "source"}


def _data() -> dict:
    return yaml.safe_load(PRICES.read_text())


def _entries() -> list[tuple[str, dict]]:
    return [(gpu, e) for gpu, entries in _data()["prices"].items() for e in entries]


def test_file_header() -> None:
    d = _data()
    assert d["currency"] == "USD" and d["unit"] == "per GPU-hour"
    assert len(_entries()) >= 10


def test_every_entry_names_a_gpu_profile() -> None:
    known = set(list_gpus())
    unknown = sorted(set(_data()["prices"]) - known)
    assert not unknown, f"prices for GPUs without a profile: {unknown}"


@pytest.mark.parametrize(("gpu", "entry"), _entries(), ids=lambda v: v if isinstance(v, str) else v["provider"])
def test_entry_is_sourced_dated_and_well_formed(gpu: str, entry: dict) -> None:
    assert REQUIRED <= set(entry) <= FIELDS, set(entry) ^ REQUIRED
    assert entry["kind"] in ("on-demand", "reserved", "spot")
    assert 0.05 < entry["usd_per_gpu_hour"] < 50
    assert dt.date.fromisoformat(entry["date"]) <= dt.date.today()
    assert len(entry["source"].strip()) > 20
    if entry.get("estimate"):
        assert entry["estimate"] is True and len(entry.get("reason", "").strip()) > 10
    if "instance_usd_per_hour" in entry:
        per_gpu = entry["instance_usd_per_hour"] / entry["gpus_per_instance"]
        assert entry["usd_per_gpu_hour"] == pytest.approx(per_gpu, rel=5e-3)


def test_spot_and_reserved_are_cheaper_than_on_demand_of_the_same_provider() -> None:
    on_demand: dict[tuple[str, str], float] = {}
    cheaper: dict[tuple[str, str], list[float]] = defaultdict(list)
    for gpu, e in _entries():
        key = (gpu, e["provider"])
        if e["kind"] == "on-demand":
            on_demand[key] = min(on_demand.get(key, float("inf")), e["usd_per_gpu_hour"])
        else:
            cheaper[key].append(e["usd_per_gpu_hour"])
    compared = 0
    for key, prices in cheaper.items():
        if key in on_demand:
            assert max(prices) < on_demand[key], key
            compared += 1
    assert compared >= 3
