"""Alpha-beta fits of measured NCCL collectives per group size and mode, and their ring-formula
extrapolation to larger groups (no torch).

Model (simulator/perf/comm.py): t = latency + N / bandwidth, N = bytes each GPU contributes. The fit
is least squares in relative error, min sum((a + N/b - t) / t)^2, over every measured size, so a
1 KiB and a 1 GiB message weigh the same. Extrapolation to a group of G GPUs keeps the ring
algorithm's bus bandwidth B = b x ring_factor(collective, G) of the largest measured group (on an
NVSwitch host each GPU's NVLink bandwidth does not depend on G), capped at the link's datasheet
rate, and extends the latency linearly in G through the two largest measured groups (a ring has
G - 1 or 2(G - 1) steps), never below the largest group's. Extrapolated figures are estimates.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from simulator.errors import InputError
from simulator.perf.comm import ring_factor

from simulator.calibration.io import as_float

#: CSV collective names -> servesim names (simulator/perf/comm.py COLLECTIVES).
NAMES = {"all_reduce": "all-reduce", "all_gather": "all-gather", "all_to_all": "all-to-all"}
TABLES = {"eager": "collectives", "graph": "collectives_graph"}


def fit_alpha_beta(nbytes: np.ndarray, seconds: np.ndarray) -> tuple[float, float]:
    """(latency seconds, bandwidth bytes/s) of t = a + N / b, least squares in relative error."""
    n = np.asarray(nbytes, dtype=float)
    t = np.asarray(seconds, dtype=float)
    if n.size < 2 or n.size != t.size or np.any(t <= 0) or np.any(n <= 0):
        raise InputError("collective rows", int(n.size), "need 2 or more sizes with positive bytes and seconds")
    coef, *_ = np.linalg.lstsq(np.column_stack([1.0 / t, n / t]), np.ones_like(t), rcond=None)
    a, c = float(coef[0]), float(coef[1])
    big = int(np.argmax(n))
    if c <= 0:                       # no visible slope: the largest message's rate
        c = float(t[big] / n[big])
    if a <= 0:
        a = float(max(np.min(t - n * c), 1e-9))
    return a, 1.0 / c


def ape_pct(pred: np.ndarray, meas: np.ndarray) -> dict[str, float]:
    """Median and largest absolute percentage error."""
    e = np.abs(np.asarray(pred) - np.asarray(meas)) / np.asarray(meas) * 100.0
    return {"median_ape_pct": round(float(np.median(e)), 1), "max_ape_pct": round(float(np.max(e)), 1)}


def fit_rows(rows: list[dict[str, str]]) -> dict[str, dict[str, dict[int, dict[str, float]]]]:
    """mode -> servesim collective name -> group size -> {latency_s, bandwidth_Bps, bus_bandwidth_Bps,
    median_ape_pct, max_ape_pct, points, min_bytes, max_bytes}."""
    groups: dict[tuple[str, str, int], list[tuple[float, float]]] = {}
    for r in rows:
        if r["collective"] not in NAMES:
            continue
        groups.setdefault((r["mode"], NAMES[r["collective"]], int(r["gpus"])), []).append(
            (as_float(r["bytes"]), as_float(r["seconds"])))
    out: dict[str, dict[str, dict[int, dict[str, float]]]] = {}
    for (mode, name, gpus), pts in sorted(groups.items()):
        n, t = (np.array(v) for v in zip(*sorted(pts)))
        a, b = fit_alpha_beta(n, t)
        out.setdefault(mode, {}).setdefault(name, {})[gpus] = {
            "latency_s": a, "bandwidth_Bps": b, "bus_bandwidth_Bps": b * ring_factor(name, gpus),
            **ape_pct(a + n / b, t), "points": int(n.size), "min_bytes": float(n.min()), "max_bytes": float(n.max())}
    return out


def extrapolate(fits: dict[int, dict[str, float]], name: str, gpus: int, link_Bps: float) -> dict[str, float]:
    """Latency and bandwidth of ``name`` on ``gpus`` GPUs from the two largest measured groups."""
    sizes = sorted(fits)
    if len(sizes) < 2 or gpus <= sizes[-1]:
        raise InputError("gpus", gpus, f"extrapolation needs two measured groups below it (have {sizes})")
    g1, g2 = sizes[-2], sizes[-1]
    a1, a2 = fits[g1]["latency_s"], fits[g2]["latency_s"]
    lat = max(a2, a2 + (a2 - a1) * (gpus - g2) / (g2 - g1))
    bus = min(fits[g2]["bandwidth_Bps"] * ring_factor(name, g2), link_Bps)
    return {"latency_s": lat, "bandwidth_Bps": bus / ring_factor(name, gpus), "bus_bandwidth_Bps": bus}


def fits_json(rows: list[dict[str, str]], keep: tuple[int, ...], extrapolate_to: tuple[int, ...],
              link_Bps: float, source: str, date: str) -> dict[str, Any]:
    """The file calibration/profiles.py merges into a GPU profile: measured groups ``keep`` and
    extrapolated groups ``extrapolate_to``; the measured fits' errors and other groups under 'report'."""
    fitted = fit_rows(rows)
    doc: dict[str, Any] = {"collectives": {}, "collectives_graph": {},
                           "extrapolated": [str(g) for g in extrapolate_to], "source": source, "date": date,
                           "report": {}}
    for mode, table in TABLES.items():
        for name, by_g in fitted.get(mode, {}).items():
            dest = doc[table].setdefault(name, {})
            for g, f in sorted(by_g.items()):
                doc["report"][f"{name}/{g}/{mode}"] = {k: (round(v, 9) if k == "latency_s" else v)
                                                       for k, v in f.items()}
                if g in keep:
                    dest[str(g)] = {"latency_s": f["latency_s"], "bandwidth_Bps": f["bandwidth_Bps"]}
            for g in extrapolate_to:
                e = extrapolate(by_g, name, g, link_Bps)
                dest[str(g)] = {"latency_s": e["latency_s"], "bandwidth_Bps": e["bandwidth_Bps"]}
                doc["report"][f"{name}/{g}/{mode}"] = {**e, "extrapolated": True}
    return doc


def fits_table(doc: dict[str, Any]) -> str:
    """Markdown table of the fits in a collective_fits.json document (report section)."""
    lines = ["| collective | GPUs | mode | latency (us) | bandwidth, N/t (GB/s) | bus bandwidth (GB/s) | "
             "median / max error | note |", "|---|---|---|---|---|---|---|---|"]
    for key, f in sorted(doc["report"].items(), key=lambda kv: (kv[0].split("/")[0], kv[0].split("/")[2],
                                                                  int(kv[0].split("/")[1]))):
        name, g, mode = key.split("/")
        err = (f"{f['median_ape_pct']:.0f}% / {f['max_ape_pct']:.0f}%" if "median_ape_pct" in f else "")
        note = "extrapolated, not measured" if f.get("extrapolated") else "measured"
        lines.append(f"| {name} | {g} | {mode} | {f['latency_s'] * 1e6:.1f} | {f['bandwidth_Bps'] / 1e9:.1f} | "
                     f"{f['bus_bandwidth_Bps'] / 1e9:.0f} | {err} | {note} |")
    return "\n".join(lines) + "\n"


def size_table(rows: list[dict[str, str]], doc: dict[str, Any], name: str, gpus: int) -> str:
    """Markdown: measured seconds per size against the fit, eager and graph, for one collective and group."""
    csv_name = {v: k for k, v in NAMES.items()}[name]
    meas = {(r["mode"], int(r["bytes"])): as_float(r["seconds"]) for r in rows
            if r["collective"] == csv_name and int(r["gpus"]) == gpus}
    sizes = sorted({b for _, b in meas})
    lines = ["| bytes per GPU | eager measured (us) | eager fit | graph measured (us) | graph fit |",
             "|---|---|---|---|---|"]
    for b in sizes:
        cells = []
        for mode in ("eager", "graph"):
            f = doc["report"][f"{name}/{gpus}/{mode}"]
            t = meas.get((mode, b), float("nan"))
            p = f["latency_s"] + b / f["bandwidth_Bps"]
            cells += [f"{t * 1e6:.1f}", f"{p * 1e6:.1f} ({(p - t) / t * 100:+.0f}%)"]
        lines.append(f"| {b:,} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
