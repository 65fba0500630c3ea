"""The throughput-interactivity view of a plan: output tokens/s per GPU against tokens/s per user.

Each plan serves the target rate; at its operating point it delivers ``target_rate x mean output
tokens`` output tokens/s over its GPUs (tokens/s per GPU), while each user sees one token every
p99 TPOT (tokens/s per user = 1 / p99 TPOT). A plan is on the front when no other plan is at
least as good on both axes and better on one. The TPOT SLO is the line ``1 / tpot_s`` tokens/s
per user: plans meeting it lie at or right of it.
"""
from __future__ import annotations

from typing import Any


def interactivity_points(res: dict[str, Any]) -> list[dict[str, Any]]:
    """One point per plan of a planner result (``plan()``): candidate, GPU, GPUs, layout, both axes, on_front."""
    pts = []
    total = res["target_rate"] * res["mean_output_tokens"]     # output tokens/s of the whole deployment
    for r in res["plans"]:
        if not r.get("tpot_p99"):
            continue
        pts.append({"candidate": r["candidate"], "gpu": r["deployment"]["gpu"], "gpus": r["gpus"],
                    "layout": r.get("layout", "aggregated"), "tokens_per_s_per_gpu": total / r["gpus"],
                    "tokens_per_s_per_user": 1.0 / r["tpot_p99"]})
    for p in pts:
        p["on_front"] = not any(q["tokens_per_s_per_gpu"] >= p["tokens_per_s_per_gpu"]
                                and q["tokens_per_s_per_user"] >= p["tokens_per_s_per_user"]
                                and (q["tokens_per_s_per_gpu"], q["tokens_per_s_per_user"])
                                != (p["tokens_per_s_per_gpu"], p["tokens_per_s_per_user"]) for q in pts)
    return pts


def slo_tokens_per_user(res: dict[str, Any]) -> float | None:
    """The TPOT SLO as tokens/s per user (None without a TPOT SLO)."""
    tpot = res["slo"].get("tpot_s")
    return None if not tpot else 1.0 / tpot
