"""``servesim plan``: the cheapest deployments serving a target rate within the scenario's SLOs."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from rich.table import Table

from .registry import finite_float, print_json, subcommand
from ..planning.interactivity import interactivity_points, slo_tokens_per_user
from ..tables import render, table


@subcommand
def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("plan", help="rank deployments (GPU, TP, PP, dtype, batching) that serve a target rate")
    p.add_argument("scenario", nargs="?", help="scenario YAML file (model, workload, SLOs); default: embedded")
    p.add_argument("--scenario", dest="scenario_file", metavar="FILE", help="the scenario file, as a flag")
    p.add_argument("--target-rate", "--rate", dest="target_rate", type=finite_float, required=True,
                   help="requests per second to serve in total")
    p.add_argument("--model", help="model (catalog name or config.json path); replaces the scenario's")
    p.add_argument("--isl", type=int, help="input (prompt) tokens per request: a fixed length")
    p.add_argument("--osl", type=int, help="output tokens per request: a fixed length")
    p.add_argument("--ttft", type=finite_float, help="TTFT SLO in seconds")
    p.add_argument("--tpot", type=finite_float, help="TPOT SLO in seconds (time per output token after the first)")
    p.add_argument("--engine", help="engine profile (vllm, sglang, trtllm, ...; `servesim engines`)")
    p.add_argument("--gpus", help="comma-separated GPU profiles (default: every GPU with a price)")
    p.add_argument("--max-gpus", type=int, help="GPUs the whole deployment may use")
    p.add_argument("--attainment", type=finite_float, default=0.99, help="share of requests meeting the SLOs (0..1)")
    p.add_argument("--replications", type=int, default=0, help="seeds at the chosen rate for P(meet SLO)")
    p.add_argument("--requests", type=int, default=400, help="requests per simulated evaluation")
    p.add_argument("--tp", default="1,2,4,8", help="tensor-parallel degrees to try")
    p.add_argument("--pp", default="1,2", help="pipeline-parallel degrees to try")
    p.add_argument("--dtypes", default="bf16,fp8", help="weight dtypes to try (unsupported ones are pruned)")
    p.add_argument("--batch-sizes", default="64,256", help="max_batch_size options")
    p.add_argument("--batched-tokens", default="2048,8192", help="max_batched_tokens options")
    p.add_argument("--layouts", default="aggregated,disaggregated,wide_ep",
                   help="layouts to search: aggregated (colocated replicas), disaggregated (prefill/decode pools "
                        "with xPyD rate matching), wide_ep (MoE models: experts over the TP GPUs, DP attention)")
    p.add_argument("--mixed-pools", action="store_true",
                   help="also search disaggregated plans with prefill and decode on two GPU types of one vendor "
                        "(about 1.5x the search's CPU time)")
    p.add_argument("--link-gbps", type=finite_float, default=50.0,
                   help="KV link per prefill replica of disaggregated plans, GB/s (default: a 400 Gb/s NIC)")
    p.add_argument("--price-kind", default="on-demand", help="on-demand | reserved | spot")
    p.add_argument("--provider", help="only this provider's prices")
    p.add_argument("--prices", help="price file replacing the built-in prices of its GPUs")
    p.add_argument("--price", action="append", default=[], metavar="GPU=USD_PER_HOUR",
                   help="price per GPU-hour of --price-kind for one GPU (repeatable); GPUs without a price "
                        "are still planned, ranked by GPUs")
    p.add_argument("--workers", type=int, help="simulations in flight (default: all CPUs)")
    p.add_argument("--executor", default="local", help="local (processes) | ray (tasks on RAY_ADDRESS's cluster, "
                   "else a local Ray with --workers CPUs)")
    p.add_argument("--exhaustive", action="store_true", help="simulate every candidate (no pruning by cost)")
    p.add_argument("--prune-factor", type=finite_float, default=1.5,
                   help="skip candidates whose best case costs this many times the best plan")
    p.add_argument("--rel-tol", type=finite_float, default=0.05, help="relative width at which bisection stops")
    p.add_argument("--search-points", type=int, default=1, help="rates probed per round of a candidate's search "
                   "(1: bisection); the workers simulate them at once (results do not depend on --workers)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a key of the scenario")
    p.add_argument("--top", type=int, default=15, help="rows of the ranked table to print")
    p.add_argument("--emit", metavar="DIR", help="write the best plan's launch commands (vLLM, SGLang, "
                   "TensorRT-LLM) and benchmark commands (vllm bench serve, AIPerf) into DIR")
    p.add_argument("--plot", metavar="FILE.png", help="chart output tokens/s per GPU against tokens/s per user "
                   "with the TPOT SLO line (.png or .svg; needs Altair and vl-convert)")
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(handler=run)


def _list(flag: str, text: str, kind: type) -> tuple[Any, ...]:
    from ..errors import InputError

    items = [t.strip() for t in str(text).split(",") if t.strip()]
    if not items:
        raise InputError(flag, text, "give a comma-separated list")
    try:
        return tuple(kind(t) for t in items)
    except ValueError:
        raise InputError(flag, text, f"give a comma-separated list of {kind.__name__} values") from None


def scenario_overrides(a: argparse.Namespace) -> dict[str, Any]:
    """Scenario keys set by the one-line flags (--model --isl --osl --ttft --tpot --engine);
    ``--set`` is applied after them."""
    from ..errors import InputError

    from ..catalog.engines import load_engine
    from ..catalog.models import load_model

    over: dict[str, Any] = {}
    for flag, value, key, load in (("--model", a.model, "model", load_model),
                                   ("--engine", a.engine, "deployment.engine", load_engine)):
        if value is not None:
            try:
                load(value)
            except InputError as err:
                raise InputError(flag, value, err.allowed) from None
            over[key] = value
    for flag, value, key in (("--isl", a.isl, "workload.prompt_tokens"), ("--osl", a.osl, "workload.output_tokens")):
        if value is not None:
            if value < 1:
                raise InputError(flag, value, "a positive number of tokens")
            over[key] = {"dist": "fixed", "value": value}
    for flag, value, key in (("--ttft", a.ttft, "slo.ttft_s"), ("--tpot", a.tpot, "slo.tpot_s")):
        if value is not None:
            if value <= 0:
                raise InputError(flag, value, "a positive number of seconds")
            over[key] = value
    return over


def load_plan_scenario(a: argparse.Namespace) -> Any:
    """The scenario to plan: the file (positional or --scenario) or the embedded default, with the
    one-line flags and then --set applied."""
    from ..config.loader import load_scenario, parse_set
    from ..errors import InputError

    if a.scenario and a.scenario_file and a.scenario != a.scenario_file:
        raise InputError("--scenario", a.scenario_file, f"give the scenario once (also given: {a.scenario})")
    return load_scenario(a.scenario or a.scenario_file, scenario_overrides(a) | parse_set(a.set))


def settings_from_args(a: argparse.Namespace) -> Any:
    """The :class:`PlanSettings` of the command line; bad values name their flag."""
    from ..config.loader import validate
    from ..errors import InputError
    from ..planning.executors import default_workers
    from ..planning.planner import PlanSettings

    data = {"target_rate": a.target_rate, "attainment": a.attainment, "requests": a.requests, "rel_tol": a.rel_tol,
            "search_points": a.search_points,
            "max_gpus": a.max_gpus, "gpus": _list("--gpus", a.gpus, str) if a.gpus else None,
            "tp": _list("--tp", a.tp, int), "pp": _list("--pp", a.pp, int),
            "weight_dtypes": _list("--dtypes", a.dtypes, str),
            "max_batch_sizes": _list("--batch-sizes", a.batch_sizes, int),
            "max_batched_tokens": _list("--batched-tokens", a.batched_tokens, int),
            "kinds": _list("--layouts", a.layouts, str), "mixed_pools": a.mixed_pools, "link_gbps": a.link_gbps,
            "price_kind": a.price_kind, "provider": a.provider, "prices_file": a.prices, "prices": tuple(a.price),
            "prune_factor": a.prune_factor, "exhaustive": a.exhaustive, "replications": a.replications,
            "workers": a.workers if a.workers is not None else default_workers(), "executor": a.executor}
    try:
        return validate(PlanSettings, data)
    except InputError as err:
        field, rest = str(err).split(":", 1)
        key = field.split(".")[0]
        flags = {"weight_dtypes": "--dtypes", "max_batch_sizes": "--batch-sizes",
                 "max_batched_tokens": "--batched-tokens", "prices_file": "--prices", "prices": "--price",
                 "kinds": "--layouts"}
        flag = flags.get(key, "--" + key.replace("_", "-"))
        raise InputError(flag, data.get(key), rest.split(";", 1)[-1].strip()) from None


def run(a: argparse.Namespace) -> int:
    from ..errors import ServesimError
    from ..planning.planner import plan
    from .sweep_cmd import points_progress

    st = settings_from_args(a)
    scenario = load_plan_scenario(a)
    show = not a.no_progress and not a.json and sys.stderr.isatty()
    with points_progress(show, "plan: candidates searched or pruned", "candidates") as tick:
        res = plan(scenario, st, progress=tick)
    if a.json:
        print_json(res)
    else:
        print(format_plan(res, a.top))
    if a.plot:
        from .plan_plot import write_plot
        print(write_plot(res, a.plot), file=sys.stderr if a.json else sys.stdout)
    if a.emit and res["plans"]:
        from ..planning.emit import emit
        best = res["plans"][0]
        paths = emit(a.emit, scenario, best, st.target_rate)
        top = dict.fromkeys(p.relative_to(a.emit).parts[0] + ("/" if p.parent != Path(a.emit) else "") for p in paths)
        print(f"launch and benchmark commands for plan #1, {best['candidate']} ({best['layout']}) in {a.emit}: "
              + ", ".join(top), file=sys.stderr if a.json else sys.stdout)
    if res["binding"]:
        raise ServesimError(f"no candidate can reach {st.target_rate:g} req/s: {res['binding']}")
    return 0


def _f(v: Any, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def layout_line(lay: dict[str, Any] | None) -> str | None:
    """One line: which layout won, and by how much against the best aggregated plan."""
    if not lay:
        return None
    if "ratio" not in lay:
        other = "no other layout" if lay["winner"] == "aggregated" else "no aggregated plan"
        return f"layout: {lay['winner']} won ({other} was planned: pruned, unreachable or not searched)"
    unit = "$/h" if lay["compared_by"] == "cost_per_hour" else "GPUs"
    return (f"layout: {lay['winner']} won; best {lay['other_layout']} plan {lay['other']:.4g} {unit} against "
            f"{lay['aggregated']:.4g} {unit} for the best aggregated one ({lay['ratio']:.2f}x)")


def format_plan(res: dict[str, Any], top: int = 15, width: int | None = None) -> str:
    """The ranked table (cheapest first), the Pareto front and the rejection counts, as text wrapped
    to ``width`` columns (the terminal's)."""
    rows = res["plans"]
    c = res["counts"]
    lines = [f"{res['model']}: {res['target_rate']:g} req/s at {res['attainment']:.1%} SLO attainment "
             f"(SLO {', '.join(f'{k}={v:g}' for k, v in res['slo'].items() if v is not None)}), "
             f"{res['price_kind']} prices",
             f"{c['candidates']} candidates, {c['screened_in']} past the cheap checks: {c['searched']} searched "
             f"({c['simulations']} simulations of {res['requests_per_evaluation']} requests), "
             f"{c['pruned_by_cost']} pruned by cost; {c['plans']} plans, {c['wall_s']:.1f} s"]
    m = c.get("mixed_pairs") or {}
    if m.get("pairs"):
        lines.append(f"prefill and decode on two GPU types: {m['pairs']} pair{'' if m['pairs'] == 1 else 's'} of pools that passed, {m['queued']} "
                     f"among the candidates, {m['over_cap']} above the cost cap and {m['over_max_gpus']} above "
                     f"--max-gpus by their bounds")
    blocks: list[Any] = ["\n".join(lines)]
    lines = []
    if rows:
        blocks.append(plans_table(res, top))
    lay = layout_line(res.get("layouts"))
    if lay:
        blocks.append(lay)
    blocks += front_table(res)
    if res["rejected"]:
        lines.append("")
        lines.append("rejected: " + ", ".join(f"{k} {v}" for k, v in c["rejected"].items()))
        seen: set[str] = set()
        for r in res["rejected"]:
            if r["reason"] not in seen:
                seen.add(r["reason"])
                lines.append(f"  e.g. {r['candidate']}: {r['detail']}")
    if res.get("excluded"):
        lines += ["", "excluded or unpriced GPUs:"] + [f"  {x}" for x in res["excluded"]]
    return render(*blocks, "\n".join(lines).lstrip("\n"), width=width) if lines else render(*blocks, width=width)


def front_table(res: dict[str, Any]) -> list[Any]:
    """The throughput vs interactivity front, most tokens/s per GPU first: [title, table], or []."""
    pts = sorted((p for p in interactivity_points(res) if p["on_front"]), key=lambda p: -p["tokens_per_s_per_gpu"])
    if not pts:
        return []
    slo = slo_tokens_per_user(res)
    title = ("throughput vs interactivity front (output tokens/s per GPU; tokens/s per user = 1/p99 TPOT"
             + (f"; TPOT SLO = {slo:.1f} tokens/s per user)" if slo else ")"))
    t = table(["deployment", "GPUs", "tok/s/GPU", "tok/s/user"])
    for p in pts:
        t.add_row(p["candidate"], str(p["gpus"]), f"{p['tokens_per_s_per_gpu']:.1f}", f"{p['tokens_per_s_per_user']:.1f}")
    return [title, t]
    return t


def plans_table(res: dict[str, Any], top: int) -> Table:
    """The ranked plans (cheapest first), ``top`` of them; ``*`` marks the Pareto front."""
    rows = res["plans"]
    pareto = {r["candidate"] for r in res["pareto"]}
    rep = "p_meet_slo" in rows[0]
    caption = ("* on the Pareto front of cost vs p99 TTFT and TPOT; latencies at the operating rate "
               "(target / replicas); seconds; $/h '-': no price of this kind (ranked by GPUs)")
    if len(rows) > top:
        caption = f"... {len(rows) - top} more (--top N, or --json for all). " + caption
    t = table(["#", "deployment", "repl", "GPUs", "req/s/repl", "$/h", "$/M out", "TTFT p99", "TPOT p99", "attain",
               *(["P(meet SLO) [95% CI]"] if rep else [])], left=["deployment"], caption=caption)
    for i, r in enumerate(rows[:top], 1):
        mark = " *" if r["candidate"] in pareto else ""
        cells = [str(i), r["candidate"] + mark, str(r["replicas"]), str(r["gpus"]), f"{r['max_rate_per_replica']:.2f}",
                 _f(r["cost_per_hour"], ".2f"), _f(r["cost_per_million_output_tokens"], ".3f"),
                 _f(r["ttft_p99"], ".3f"), _f(r["tpot_p99"], ".4f"), f"{r['slo_attainment']:.3f}"]
        if rep:
            lo, hi = r["p_meet_slo_ci"]
            cells.append(f"{r['p_meet_slo']:.2f} [{lo:.2f}, {hi:.2f}]")
        t.add_row(*cells)
    return t
