"""docs/reference/scenario.md lists exactly the keys the scenario models accept."""
from pathlib import Path

from simulator.config.reference import INTRO, scenario_reference_markdown

DOC = Path(__file__).resolve().parents[2] / "docs" / "reference" / "scenario.md"


def test_scenario_doc_is_in_sync():
    assert DOC.read_text() == INTRO + scenario_reference_markdown() + "\n", \
        "docs/reference/scenario.md is stale: run `python -m simulator.config.reference`"


def test_every_deployment_key_is_documented():
    table = scenario_reference_markdown()
    for key in ("deployment.gpu", "deployment.tp", "deployment.batching.max_batched_tokens",
                "deployment.kv_cache.preemption", "deployment.router", "slo.ttft_s", "seed"):
        assert f"`{key}`" in table


def test_every_key_has_a_description():
    rows = [line.split(" | ") for line in scenario_reference_markdown().splitlines()[2:]]
    bare = [r[0] for r in rows if not r[-1].rstrip(" |").strip()]
    assert len(rows) > 100 and not bare, f"scenario keys without Field(description=...): {bare}"
