"""Parameter counts from the architecture against the figures each model's authors publish."""
from __future__ import annotations

import math

import pytest

from simulator.catalog.models import catalog_entry, list_models, load_model
from simulator.perf.memory import param_count

REL_TOL = 0.02          # published figures are rounded to 2-3 significant digits


def tolerance(figure: float) -> float:
    """Relative precision of a published figure: at least REL_TOL, and one unit of its last printed
    significant digit (a figure printed as "2.4B" may be a rounded or truncated 2.45B)."""
    digits = f"{figure:.6g}".split("e")[0].replace(".", "").rstrip("0").lstrip("0") or "0"
    exponent = math.floor(math.log10(abs(figure)))
    unit = 10.0 ** (exponent - len(digits) + 1)
    return max(REL_TOL, unit / abs(figure))
PUBLISHED = [n for n in list_models() if catalog_entry(n)["published_params"]]


def test_every_catalog_model_has_a_published_count() -> None:
    assert PUBLISHED == list_models()


@pytest.mark.parametrize("name", PUBLISHED)
def test_param_count_matches_published(name: str) -> None:
    model = load_model(name)
    pub = catalog_entry(name)["published_params"]
    pc = param_count(model)
    active = pc.active
    if pub["active_excludes_input_embedding"]:
        assert not model.tie_word_embeddings      # the convention only makes sense with a separate table
        active -= model.vocab_size * model.hidden_size
    if pub["exact"]:    # checkpoint counts: must agree to the parameter
        assert round(pc.total) == round(pub["total"]), (pc.total, pub["total"])
        assert round(active) == round(pub["active"])
    assert pc.total == pytest.approx(pub["total"], rel=tolerance(pub["total"])), f"total {pc.total:.4g} vs {pub['total']:.4g}"
    assert active == pytest.approx(pub["active"], rel=tolerance(pub["active"])), f"active {active:.4g} vs {pub['active']:.4g}"


def test_tolerance_is_one_unit_of_the_last_printed_digit() -> None:
    assert tolerance(2.4e9) == pytest.approx(0.1 / 2.4)
    assert tolerance(15.7e9) == REL_TOL                  # 0.6%: the 2% floor applies
    assert tolerance(8.03e9) == REL_TOL


@pytest.mark.parametrize("name", list_models())
def test_active_not_above_total(name: str) -> None:
    m = load_model(name)
    pc = param_count(m)
    if m.moe is None:
        assert pc.active == pc.total
    else:
        assert pc.active < 0.5 * pc.total


def test_llama_8b_by_hand() -> None:
    """Llama-3.1-8B summed by hand: per layer q,k,v,o + gate,up,down + 2 norms; final norm; 2 tables."""
    h, L, q, kv, ffn, V = 4096, 32, 4096, 1024, 14336, 128256
    per_layer = h * (q + 2 * kv) + q * h + 3 * h * ffn + 2 * h
    assert param_count(load_model("llama-3.1-8b")).total == L * per_layer + h + 2 * V * h == 8_030_261_248


def test_deepseek_v3_by_hand() -> None:
    """DeepSeek-V3 main model: MLA + 3 dense + 58 MoE layers (256 routed + 1 shared), router, norms."""
    h, V = 7168, 129280
    mla = h * 1536 + 1536 * 128 * 192 + h * 576 + 512 * 128 * 256 + 128 * 128 * h + 1536 + 512
    dense = 3 * h * 18432
    expert = 3 * h * 2048
    moe = 256 * expert + expert + h * 256
    total = 61 * (mla + 2 * h) + 3 * dense + 58 * moe + h + 2 * V * h
    active = 61 * (mla + 2 * h) + 3 * dense + 58 * (9 * expert + h * 256) + h + 2 * V * h
    pc = param_count(load_model("deepseek-v3"))
    assert pc.total == pytest.approx(total, rel=1e-9)
    assert pc.active == pytest.approx(active, rel=1e-9)
