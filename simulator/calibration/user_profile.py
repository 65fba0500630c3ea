"""A complete GPU profile from one's own calibration folder: ``DIR/<name>.yaml``.

``servesim calibrate --out DIR`` ends here, and ``servesim calibrate fit DIR`` refits a folder
without measuring again. The profile takes its datasheet figures (peak FLOP/s, memory, bandwidth,
links, power) from the catalog GPU nearest to the measured device, or from ``--like NAME``, with
``--memory-gb``, ``--bandwidth-tbps`` and ``--bf16-tflops`` replacing single figures; the
efficiency block is calibration/fit.py's fit of the folder's CSVs against *those* figures
(efficiency = datasheet roofline time / measured time). Kinds with too few points keep the
nearest profile's curves and say so. The fit's error report goes into the profile's header
comments and, whole, into ``DIR/<name>.fit.json`` (which also records the datasheet choices, so a
refit repeats them).

Nearest catalog GPU: the profile ``calibration/meta.py`` maps the device name to; else, among the
catalog profiles of the same device kind (GPU or CPU) and vendor, the one whose memory size is
closest on a log scale.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path
from typing import Any, NoReturn

import yaml
from pydantic import ValidationError

from simulator.catalog.gpu import GPUProfile
from simulator.catalog.gpus import list_gpus, load_gpu
from simulator.errors import InputError, ServesimError

from .fit import fit
from .meta import check_name, profile_name_for

#: CSVs of kernel measurements a folder must hold at least one of.
KERNEL_CSVS = ("gemm", "attention_prefill", "attention_decode", "memory", "launch")


@dataclass(frozen=True)
class Datasheet:
    """Where the profile's datasheet figures come from: a catalog profile and single overrides."""

    like: str | None = None               # catalog GPU to copy the figures from (default: nearest)
    memory_gb: float | None = None
    bandwidth_tbps: float | None = None
    bf16_tflops: float | None = None


@dataclass(frozen=True)
class UserProfile:
    """A fitted profile, the catalog profile it started from, and the fit's error report."""

    profile: GPUProfile
    base: str
    report: dict[str, Any]
    notes: list[str]


def add_datasheet_args(p: argparse.ArgumentParser) -> None:
    """The datasheet options shared by ``servesim calibrate`` and ``servesim calibrate fit DIR``."""
    p.add_argument("--like", metavar="GPU", help="copy datasheet figures from this catalog GPU "
                   "(default: the nearest to the measured device)")
    p.add_argument("--memory-gb", type=float, metavar="GB", help="device memory, GB (replaces the copied figure)")
    p.add_argument("--bandwidth-tbps", type=float, metavar="TBPS", help="memory bandwidth, TB/s")
    p.add_argument("--bf16-tflops", type=float, metavar="TFLOPS", help="dense bf16 peak, TFLOP/s")


def datasheet_of(args: argparse.Namespace, recorded: Datasheet | None = None) -> Datasheet:
    """The options as a checked :class:`Datasheet`; unset ones fall back to ``recorded``."""
    old = recorded or Datasheet()
    sheet = Datasheet(like=args.like or old.like,
                      memory_gb=_positive("--memory-gb", args.memory_gb, old.memory_gb),
                      bandwidth_tbps=_positive("--bandwidth-tbps", args.bandwidth_tbps, old.bandwidth_tbps),
                      bf16_tflops=_positive("--bf16-tflops", args.bf16_tflops, old.bf16_tflops))
    if sheet.like is not None:
        load_gpu(sheet.like)            # an unknown name fails now, before anything is measured
    return sheet


def _positive(flag: str, value: float | None, fallback: float | None) -> float | None:
    if value is None:
        return fallback
    if not (math.isfinite(value) and value > 0):
        raise InputError(flag, value, "must be a positive finite number")
    return value


def nearest_catalog_gpu(device: dict[str, Any]) -> str:
    """The catalog profile closest to a device as ``meta.json`` describes it."""
    mapped = profile_name_for(str(device.get("name", "")))
    if mapped is not None:
        return mapped
    kind = "cpu" if device.get("kind") == "cpu" else "gpu"
    name = str(device.get("name", "")).lower()
    same = [load_gpu(g) for g in list_gpus() if load_gpu(g).kind == kind]
    vendor = [g for g in same if g.vendor.lower() in name] or same
    if not vendor:
        raise InputError("device", device.get("name"), "no catalog profile of this kind: pass --like GPU")
    memory = float(device.get("memory_bytes") or 0)
    if memory <= 0:
        return vendor[0].name
    return min(vendor, key=lambda g: abs(math.log(g.memory_bytes / memory))).name


def _figure(value: float, flag: str, today: str) -> dict[str, Any]:
    return {"value": value, "source": f"given as {flag} to servesim calibrate", "date": today}


def datasheet_profile(meta: dict[str, Any], name: str, sheet: Datasheet) -> tuple[dict[str, Any], str]:
    """(the profile's fields with the catalog efficiency, catalog profile name) before fitting."""
    device = meta.get("device", {})
    base_name = sheet.like or nearest_catalog_gpu(device)
    base = load_gpu(base_name)
    raw = base.model_dump(mode="json", exclude_none=True)
    for section in ("dense_tflops", "sparse_tflops"):
        for fig in raw.get(section, {}).values():
            fig["source"] = f"copied from catalog profile {base.name}: {fig['source']}"
    for key in ("memory_gb", "memory_bandwidth_tbps", "scaleup_bandwidth_gbps", "host_link_gbps", "tdp_w"):
        if key in raw:
            raw[key]["source"] = f"copied from catalog profile {base.name}: {raw[key]['source']}"
    today = date.today().isoformat()
    if sheet.memory_gb is not None:
        raw["memory_gb"] = _figure(sheet.memory_gb, "--memory-gb", today)
    if sheet.bandwidth_tbps is not None:
        raw["memory_bandwidth_tbps"] = _figure(sheet.bandwidth_tbps, "--bandwidth-tbps", today)
    if sheet.bf16_tflops is not None:
        raw["dense_tflops"]["bf16"] = _figure(sheet.bf16_tflops, "--bf16-tflops", today)
    raw.update(name=name, display_name=f"{device.get('name', name)} (measured; datasheet of {base.name})")
    return raw, base.name


def _validated(raw: dict[str, Any], label: str) -> GPUProfile:
    try:
        return GPUProfile.model_validate(raw)
    except ValidationError as e:
        err = e.errors()[0]
        raise InputError(f"{label}:{'.'.join(str(p) for p in err['loc'])}", err.get("input"), err["msg"]) from None


def build(data_dir: Path, name: str, sheet: Datasheet) -> UserProfile:
    """Fit the folder's CSVs against the chosen datasheet figures; the complete profile."""
    data = Path(data_dir)
    if not any((data / f"{k}.csv").exists() for k in KERNEL_CSVS):
        raise InputError("DIR", str(data_dir), f"holds no calibration CSVs ({', '.join(KERNEL_CSVS)}): "
                         "run servesim calibrate --out DIR first")
    meta = _read_meta(data)
    raw, base = datasheet_profile(meta, name, sheet)
    sheet_profile = _validated(raw, name)
    result = fit(data, sheet_profile)
    eff, notes = merged_efficiency(sheet_profile, result["efficiency"], base, result["report"])
    eff["source"] = (f"measured by servesim calibrate in {data.resolve()} on {meta.get('device', {}).get('name', '?')} "
                     f"at {meta.get('started_utc', '?')} (torch {meta.get('versions', {}).get('torch', '?')}"
                     f"{', quick grid' if meta.get('quick') else ''}); fitted by calibration/fit.py against this "
                     f"profile's datasheet figures (from {base})" + ("; " + "; ".join(notes) if notes else ""))
    return UserProfile(_validated({**raw, "efficiency": eff}, name), base, result["report"], notes)


def merged_efficiency(sheet_profile: GPUProfile, fitted: dict[str, Any], base: str,
                      report: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The fitted block over the catalog profile's: kinds the folder could not fit keep the catalog's."""
    eff = sheet_profile.efficiency.model_dump(mode="json", exclude_none=True)
    eff.pop("kernel_overlay", None)
    own = dict(fitted.get("curves", {}))
    kept = sorted(set(eff.get("curves", {})) - set(own))
    eff["curves"] = {**eff.get("curves", {}), **own}
    for key in ("attention_prefill_tiles", "attention_decode_tiles", "launch_overhead_s",
                "graph_launch_overhead_s", "min_kernel_s", "collectives", "collectives_graph"):
        if fitted.get(key):
            eff[key] = fitted[key]
    fitted_any = bool(own) or any(fitted.get(k) for k in ("attention_prefill_tiles", "attention_decode_tiles"))
    notes = []
    if kept:
        notes.append(f"curves {', '.join(kept)} not measured here, kept from {base}")
    if fitted_any:
        eff.update(status="calibrated", transferred_from=base if kept else None)
    else:
        notes.append("no kind had enough points to fit (8 per curve): efficiency curves are the catalog's")
    over = [k for k, r in report.items() if isinstance(r, dict) and r.get("efficiency_range", [0, 0])[1] > 1]
    if over:
        notes.append(f"{', '.join(over)} ran faster than the datasheet roofline (efficiency clipped to 1): "
                     "the copied peak or bandwidth is too low for this device; pass --bf16-tflops / --bandwidth-tbps")
    return {k: v for k, v in eff.items() if v is not None}, notes


def _read_meta(data: Path) -> dict[str, Any]:
    path = data / "meta.json"
    if not path.exists():
        return {}
    try:
        meta = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise InputError(str(path), f"line {e.lineno}", "is not valid JSON") from None
    return meta if isinstance(meta, dict) else {}


def report_lines(report: dict[str, Any]) -> list[str]:
    """One line per fitted kind: points and held-out error (what the profile's header shows)."""
    lines = []
    for kind, rep in report.items():
        if kind == "collectives":
            for k, v in rep.items():
                h = v["held_out"]
                lines.append(f"{k}: latency {v['latency_us']} us, bandwidth {v['bandwidth_GBps']} GB/s, "
                             f"held-out median {h['median_ape_pct']:.1f}% p90 {h['p90_ape_pct']:.1f}%")
        elif isinstance(rep, dict) and "held_out" in rep:
            h = rep["held_out"]
            lines.append(f"{kind}: {rep.get('points', '?')} points, held-out error median "
                         f"{h['median_ape_pct']:.1f}% p90 {h['p90_ape_pct']:.1f}%")
        elif kind == "launch":
            lines.append("launch: " + ", ".join(f"{k} {v} us" for k, v in rep.items()))
    return lines


def render(up: UserProfile, sheet: Datasheet) -> str:
    """The profile YAML: provenance and the fit's error report as comments, then the fields."""
    body = up.profile.model_dump(mode="json", exclude_none=True)
    body["efficiency"].pop("kernel_overlay", None)
    head = [f"{up.profile.display_name}: written by servesim calibrate (calibration/user_profile.py).",
            f"Datasheet figures from catalog profile {up.base}"
            + (f", overridden: {_overrides(sheet)}" if _overrides(sheet) else "") + ".",
            "Fit error (calibration/fit.py; every 4th point held out, absolute percentage error of kernel times):",
            *(f"  {line}" for line in report_lines(up.report) or ["no kind had enough points to fit"]),
            *(f"Note: {n}" for n in up.notes),
            f"Full report: {up.profile.name}.fit.json. Refit without measuring: servesim calibrate fit DIR"]
    text = "".join(f"# {line}\n" for line in head)
    return text + yaml.safe_dump(body, sort_keys=False, default_flow_style=None, width=120, allow_unicode=True)


def _overrides(sheet: Datasheet) -> str:
    return ", ".join(f"{k} {v}" for k, v in asdict(sheet).items() if v is not None and k != "like")


def write(data_dir: Path, name: str, sheet: Datasheet) -> Path:
    """Fit, then write ``DIR/<name>.yaml`` and ``DIR/<name>.fit.json``; returns the profile path."""
    up = build(data_dir, name, sheet)
    path = Path(data_dir) / f"{name}.yaml"
    path.write_text(render(up, sheet))
    record = {"profile": path.name, "base": up.base, "datasheet": asdict(sheet), "notes": up.notes,
              "report": up.report}
    (Path(data_dir) / f"{name}.fit.json").write_text(json.dumps(record, indent=1, default=str) + "\n")
    _validated(yaml.safe_load(path.read_text()), path.name)      # what was written loads as a profile
    return path


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise ServesimError(f"servesim calibrate fit: {message} (see --help)")


def main(argv: list[str]) -> int:
    """``servesim calibrate fit DIR [--name N] [--like GPU] [...]``: refit a folder, write its profile."""
    p = _Parser(prog="servesim calibrate fit DIR", description="Fit a calibration folder into DIR/<name>.yaml.")
    p.add_argument("dir", help="folder written by servesim calibrate --out")
    p.add_argument("--name", help="profile name (default: the name the folder was measured under)")
    add_datasheet_args(p)
    try:
        args = p.parse_args(argv)
        data = Path(args.dir)
        if not data.is_dir():
            raise InputError("DIR", args.dir, "must be a folder written by servesim calibrate --out")
        name = check_name(args.name or str(_read_meta(data).get("gpu") or data.name))
        sheet = datasheet_of(args, _recorded(data, name))
        path = write(data, name, sheet)
    except ServesimError as err:
        print(f"servesim: error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {path}: use it with --set deployment.gpu={path}")
    return 0


def _recorded(data: Path, name: str) -> Datasheet | None:
    """The datasheet choices of an earlier fit of this folder (``<name>.fit.json``), if any."""
    path = data / f"{name}.fit.json"
    try:
        rec = json.loads(path.read_text()).get("datasheet", {}) if path.exists() else {}
        return Datasheet(**{k: rec.get(k) for k in Datasheet.__dataclass_fields__})
    except (json.JSONDecodeError, TypeError, AttributeError):
        return None
