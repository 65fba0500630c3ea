"""`servesim engines` lists the production engines with their version, source and scheduler rules."""
from __future__ import annotations

from simulator.commands.catalog_cmds import rows


def test_engines_list_versions_sources_and_schedulers():
    by = {r["name"]: r for r in rows("engines")}
    for name in ("vllm", "sglang", "trtllm"):
        assert by[name]["version"] and by[name]["source"], name
    assert by["vllm"]["scheduler"] == "greedy admission, newest evicted, prefill and decodes in one step"
    assert by["sglang"]["scheduler"] == "token_ratio admission, fewest_generated evicted, prefill or decodes per step"
    assert by["trtllm"]["scheduler"].startswith("reserve admission")
    assert by["fused"]["scheduler"] == "generic"
