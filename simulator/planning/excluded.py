"""What a plan left out and why: one line per GPU without a plan or without a price, and the one
limit that binds when no candidate qualified."""
from __future__ import annotations

from collections import Counter
from typing import Any

from .candidates import Candidate, Screened
from .plan_settings import PlanSettings


#: Rejection reasons, from the furthest stage of the search to the earliest.
STAGES = ("exceeds --max-gpus", "pruned by cost", "SLO unreachable at any rate", "pruned by bound", "does not fit",
          "unsupported")


def excluded_lines(cands: list[Candidate], rows: list[dict[str, Any]], rejected: list[dict[str, Any]],
                   kept: list[Screened], st: PlanSettings) -> list[str]:
    """One line per GPU type with no plan (its rejection reasons, counted, and one example), then
    one line per GPU type with plans but no price of ``st.price_kind`` (ranked by GPUs, not dollars)."""
    planned = {g for r in rows for g in (r["deployment"]["gpu"], r["deployment"].get("prefill", {}).get("gpu"))
               if g}
    by_gpu: dict[str, list[dict[str, Any]]] = {}
    for r in rejected:
        by_gpu.setdefault(r["deployment"]["gpu"], []).append(r)
    lines = []
    for gpu in sorted({c.gpu for c in cands} - planned):
        rs = by_gpu.get(gpu, [])
        counts = Counter(r["reason"] for r in rs)
        # the example comes from the furthest stage a candidate reached: the closest miss
        example = min(rs, key=lambda r: STAGES.index(r["reason"]) if r["reason"] in STAGES else len(STAGES),
                      default=None)
        tail = f"; e.g. {example['candidate']}: {example['detail']}" if example else ""
        lines.append(f"{gpu}: no plan ({', '.join(f'{k} {v}' for k, v in counts.items())}){tail}")
    unpriced = sorted({g for k in kept if not k.priced for g in k.candidate.gpu_counts()} & planned)
    for gpu in unpriced:
        lines.append(f"{gpu}: no {st.price_kind} price{' from ' + st.provider if st.provider else ''}; simulated "
                     f"and ranked by GPUs, not dollars (give --price {gpu}=USD_PER_HOUR or --prices FILE)")
    return lines


def binding_limit(rejected: list[dict[str, Any]], st: PlanSettings, cands: list[Candidate]) -> str:
    """One line: which limit keeps every candidate from serving the target rate."""
    by: dict[str, list[dict[str, Any]]] = {}
    for r in rejected:
        by.setdefault(r["reason"], []).append(r)
    if "exceeds --max-gpus" in by or ("pruned by bound" in by and st.max_gpus is not None):
        need = [r["gpus_needed"] for r in by.get("exceeds --max-gpus", []) if "gpus_needed" in r]
        best = f"; the best candidate needs {min(need)} GPUs" if need else ""
        return (f"--max-gpus binds: no candidate serves {st.target_rate:g} req/s within {st.max_gpus} GPUs{best} "
                f"(raise --max-gpus or lower --target-rate)")
    if "SLO unreachable at any rate" in by:
        slos: dict[str, int] = {}
        for r in by["SLO unreachable at any rate"]:
            key = r["detail"].split(" binds", 1)[0]
            slos[key] = slos.get(key, 0) + 1
        worst = max(slos, key=lambda k: slos[k])
        return (f"the SLO binds: {worst} cannot be met at {st.attainment:.1%} attainment on "
                f"{len(by['SLO unreachable at any rate'])} candidates (loosen the SLO or the attainment)")
    if "does not fit" in by or "unsupported" in by:
        return memory_binds(cands, st)
    return "no candidate qualified: " + "; ".join(f"{k}: {len(v)}" for k, v in by.items())


def memory_binds(cands: list[Candidate], st: PlanSettings) -> str:
    """The memory verdict, naming what was tried and suggesting only what was not."""
    gpus = sorted({c.gpu for c in cands})
    dtypes = sorted({c.weight_dtype for c in cands})
    widest = max(c.gpus for c in cands)
    tried = (f"{len(cands)} candidates on {', '.join(gpus)} with {', '.join(dtypes)} weights and up to "
             f"{widest} GPUs per replica")
    ideas = []
    if st.max_gpus is not None and widest >= st.max_gpus:
        ideas.append("raise --max-gpus")
    elif widest < 8:
        ideas.append("allow more GPUs per replica (--tp, --pp)")
    if "fp8" not in dtypes:
        ideas.append("allow fp8 (--dtypes bf16,fp8)")
    if st.gpus is not None:
        ideas.append("try larger GPUs (--gpus)")
    hint = f" ({', or '.join(ideas)})" if ideas else ""
    return f"memory binds: the model fits on none of the {tried}{hint}"
