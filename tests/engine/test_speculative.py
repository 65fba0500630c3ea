"""Speculative decoding: the acceptance law, its mean over many engine steps, costs, and errors."""
from __future__ import annotations

import numpy as np
import pytest

from simulator.catalog.models import load_model
from simulator.engine.simulate import simulate
from simulator.perf.memory import weight_bytes_per_gpu
from simulator.engine.speculative import draw_tokens, expected_tokens_per_step
from simulator.engine.state import DONE
from simulator.errors import InputError
from simulator.metrics.summary import per_request, summarize

from .conftest import make_scenario

DRAFT = {"method": "draft_model", "draft_model": "llama-3.2-1b", "k": 4, "acceptance": 0.7}


@pytest.mark.parametrize("k,alpha", [(1, 0.5), (4, 0.7), (7, 0.9), (3, 0.0)])
def test_tokens_per_step_follow_the_truncated_geometric(k, alpha):
    t = draw_tokens(np.random.default_rng(1), k, alpha, (400_000,))
    a = t - 1
    for j in range(k + 1):
        p = alpha**j * (1 - alpha) if j < k else alpha**k
        assert (a == j).mean() == pytest.approx(p, abs=0.004)
    assert t.mean() == pytest.approx(expected_tokens_per_step(k, alpha), rel=0.005)
    assert expected_tokens_per_step(k, alpha) == pytest.approx(sum(alpha**j for j in range(k + 1)))


@pytest.mark.parametrize("spec", [DRAFT, {"method": "ngram", "k": 3, "acceptance": 0.5},
                                  {"method": "eagle", "k": 5, "acceptance": 0.8, "tree_tokens": 24},
                                  {"method": "medusa", "k": 3, "acceptance": 0.6}], ids=lambda s: s["method"])
def test_engine_mean_tokens_per_step_matches_formula(spec):
    """Over many verify steps (runs drawn in bulk, single steps one by one) the mean is (1 − α^(k+1)) / (1 − α)."""
    s = make_scenario(**{"deployment.speculative": spec, "workload.requests": 200,
                         "workload.prompt_tokens.value": 128, "workload.output_tokens.value": 1500,
                         "workload.arrival.rate": 2.0})
    res = simulate(s)
    r = res.requests
    assert (r.status == DONE).all() and (r.generated == r.output).all()
    sp = summarize(res)["speculative"]
    # the last step of each request is cut to what it has left: a bias under 0.5%
    assert sp["tokens_per_step"] == pytest.approx(expected_tokens_per_step(spec["k"], spec["acceptance"]), rel=0.01)
    assert res.kv_blocks_in_use_at_end == [0]


def test_helps_at_low_load_and_hurts_at_high_load():
    low = {"workload.arrival.rate": 1.0, "workload.requests": 100, "workload.output_tokens.value": 256}
    plain, spec = simulate(make_scenario(**low)), simulate(make_scenario(**low, **{"deployment.speculative": DRAFT}))
    assert summarize(spec)["tpot_s"]["p50"] < 0.95 * summarize(plain)["tpot_s"]["p50"]
    high = {"workload.arrival": {"process": "offline"}, "workload.requests": 1500,
            "workload.output_tokens.value": 256}
    plain, spec = simulate(make_scenario(**high)), simulate(make_scenario(**high, **{"deployment.speculative": DRAFT}))
    assert summarize(spec)["throughput_output_tokens_per_s"] < 0.9 * summarize(plain)["throughput_output_tokens_per_s"]


def test_draft_model_takes_weights_and_kv_memory():
    plain = simulate(make_scenario(**{"workload.requests": 5}))
    spec = simulate(make_scenario(**{"workload.requests": 5, "deployment.speculative": DRAFT}))
    draft = load_model("llama-3.2-1b")
    # the 1B draft's weights come out of the KV memory, and each token also keeps the draft's
    # 16 layers × 8 KV heads × 64 dims beside the target's 32 × 8 × 128
    kv_bytes = plain.memory.kv_bytes - weight_bytes_per_gpu(draft, "bf16")
    per_token = 2 * 2 * (32 * 8 * 128 + 16 * 8 * 64)
    assert spec.kv_blocks == int(kv_bytes // per_token) // 16


def test_draft_with_another_vocabulary_is_refused():
    s = make_scenario(**{"deployment.speculative": {**DRAFT, "draft_model": "qwen3-4b"}})
    with pytest.raises(InputError) as err:
        simulate(s)
    msg = str(err.value)
    assert "deployment.speculative.draft_model" in msg and "vocab_size" in msg and "\n" not in msg


def test_config_errors():
    with pytest.raises(InputError, match="draft_model"):
        make_scenario(**{"deployment.speculative": {"method": "draft_model"}})
    with pytest.raises(InputError, match="tree_tokens"):
        make_scenario(**{"deployment.speculative": {"method": "ngram", "tree_tokens": 8}})


def test_itl_counts_one_gap_per_delivery():
    res = simulate(make_scenario(**{"deployment.speculative": {"method": "ngram", "k": 4, "acceptance": 0.8},
                                    "workload.requests": 20, "workload.output_tokens.value": 200}))
    df = per_request(res)
    # several tokens arrive together, so the gaps are fewer than output − 1 and the median gap exceeds TPOT
    assert (df["itl_p50_s"] > df["tpot_s"]).all()
    assert (df["max_itl_s"] >= df["itl_p99_s"] - 1e-12).all()
