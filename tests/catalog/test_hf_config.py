"""Hugging Face config.json import: one synthetic fixture per family, round trips, and bad input."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from simulator.catalog.model import ModelArch
from simulator.catalog.models import load_model, model_from_hf_config
from simulator.errors import InputError

FIXTURES = Path(__file__).parent / "fixtures"


def fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.json").read_text())


# Expected fields, worked out by hand from each fixture (see the comments for the non-obvious ones).
EXPECTED: dict[str, dict[str, Any]] = {
    "llama": dict(hidden_size=256, num_layers=4, num_attention_heads=8, num_kv_heads=2,
                  head_dim=32,                                 # 256 / 8, no head_dim key
                  intermediate_size=688, vocab_size=1000, tie_word_embeddings=False, gated_mlp=True,
                  qkv_bias=False, o_bias=False, qk_norm=False, norm="rmsnorm", sliding_window=None,
                  sliding_window_layers=0, max_position_embeddings=2048, moe=None, mla=None),
    "mixtral": dict(hidden_size=128, num_layers=4, num_kv_heads=2, head_dim=32, intermediate_size=512,
                    vocab_size=500, sliding_window=None, sliding_window_layers=0, mla=None,
                    moe=dict(num_experts=8, experts_per_token=2, expert_intermediate_size=512,
                             num_shared_experts=0, first_dense_layers=0, layer_freq=1,
                             dense_intermediate_size=None, expert_bias=False)),
    "qwen3_moe": dict(head_dim=64,                             # explicit, != 128 / 4
                      intermediate_size=96,                    # expert width: no dense layers
                      qk_norm=True, qkv_bias=False, sliding_window=None, sliding_window_layers=0,
                      moe=dict(num_experts=16, experts_per_token=4, expert_intermediate_size=96,
                               num_shared_experts=0, first_dense_layers=0, layer_freq=1,
                               dense_intermediate_size=None, expert_bias=False)),
    "deepseek_v3": dict(head_dim=16,                           # v_head_dim
                        num_kv_heads=8, intermediate_size=512, qk_norm=False,
                        mla=dict(kv_lora_rank=32, q_lora_rank=48, qk_nope_head_dim=16, qk_rope_head_dim=8,
                                 v_head_dim=16),
                        moe=dict(num_experts=16, experts_per_token=4, expert_intermediate_size=64,
                                 num_shared_experts=1, shared_expert_intermediate_size=None,
                                 first_dense_layers=1, layer_freq=1, dense_intermediate_size=512,
                                 expert_bias=False)),
    "gpt_oss": dict(head_dim=32, qkv_bias=True, o_bias=True, sliding_window=16, sliding_window_layers=2,
                    intermediate_size=192, tie_word_embeddings=False,
                    moe=dict(num_experts=8, experts_per_token=2, expert_intermediate_size=192,
                             num_shared_experts=0, expert_bias=True)),
    "gemma3": dict(hidden_size=160, num_layers=13, num_attention_heads=4, num_kv_heads=2, head_dim=64,
                   intermediate_size=320, vocab_size=900,
                   tie_word_embeddings=True,                   # Gemma3TextConfig default
                   qk_norm=True, gated_mlp=True, sliding_window=32,
                   sliding_window_layers=11,                   # 13 layers, globals at i = 5, 11
                   max_position_embeddings=8192, moe=None, mla=None),
}


@pytest.mark.parametrize("family", sorted(EXPECTED))
def test_fixture_imports(family: str) -> None:
    m = model_from_hf_config(fixture(family), name=family)
    got = m.model_dump()
    for key, want in EXPECTED[family].items():
        if isinstance(want, dict):
            assert {k: got[key][k] for k in want} == want, (family, key)
        else:
            assert got[key] == want, (family, key)


def test_derived_layer_counts() -> None:
    ds = model_from_hf_config(fixture("deepseek_v3"))
    assert (ds.num_dense_layers, ds.num_moe_layers) == (1, 4)
    assert ds.kv_elements_per_token_per_layer() == 32 + 8


def test_path_and_directory_loading(tmp_path: Path) -> None:
    d = tmp_path / "My-Model"
    d.mkdir()
    (d / "config.json").write_text((FIXTURES / "llama.json").read_text())
    by_dir = load_model(str(d))
    by_file = load_model(str(d / "config.json"))
    assert by_dir == by_file and by_dir.name == "My-Model"
    assert str(d / "config.json") in by_dir.source and len(by_dir.source_date) == 10
    other = tmp_path / "tiny.json"
    other.write_text((FIXTURES / "gemma3.json").read_text())
    assert load_model(str(other)).name == "tiny"


def test_unknown_model_type_with_standard_keys() -> None:
    cfg = {k: v for k, v in fixture("llama").items() if k != "architectures"}
    cfg["model_type"] = "brand_new_arch"
    m = model_from_hf_config(cfg)
    assert m.hidden_size == 256 and m.gated_mlp and m.norm == "rmsnorm"


def test_qwen2_bias_and_window_rules() -> None:
    cfg = {"model_type": "qwen2", "hidden_size": 64, "num_hidden_layers": 4, "num_attention_heads": 4,
           "num_key_value_heads": 2, "intermediate_size": 128, "vocab_size": 100, "sliding_window": 131072,
           "use_sliding_window": False, "max_window_layers": 4}
    m = model_from_hf_config(cfg)
    assert m.qkv_bias and not m.o_bias and m.sliding_window is None and m.sliding_window_layers == 0
    cfg.update(use_sliding_window=True, sliding_window=512, max_window_layers=1)
    m = model_from_hf_config(cfg)
    assert m.sliding_window == 512 and m.sliding_window_layers == 3


def test_mistral_window_applies_to_every_layer() -> None:
    cfg = {"model_type": "mistral", "hidden_size": 64, "num_hidden_layers": 6, "num_attention_heads": 4,
           "num_key_value_heads": 1, "intermediate_size": 128, "vocab_size": 100, "sliding_window": 256}
    m = model_from_hf_config(cfg)
    assert m.sliding_window == 256 and m.sliding_window_layers == 6 and not m.tie_word_embeddings


def test_mlp_only_layers_count_as_dense() -> None:
    cfg = fixture("qwen3_moe")
    cfg["mlp_only_layers"] = [0, 3]
    m = model_from_hf_config(cfg)
    assert m.num_dense_layers == 2 and m.dense_ffn_size == 768 and m.intermediate_size == 768


# ---- round trip: catalog values written with HF key names load back unchanged ----------------

def to_hf(m: ModelArch) -> dict[str, Any]:
    """A config.json for ``m`` in the key spelling of the family it resembles."""
    cfg: dict[str, Any] = {
        "hidden_size": m.hidden_size, "num_hidden_layers": m.num_layers,
        "num_attention_heads": m.num_attention_heads, "num_key_value_heads": m.num_kv_heads,
        "vocab_size": m.vocab_size, "tie_word_embeddings": m.tie_word_embeddings,
        "attention_bias": m.qkv_bias, "mlp_bias": m.mlp_bias,
        "max_position_embeddings": m.max_position_embeddings, "hidden_act": "silu",
    }
    if m.mla is None:
        cfg["head_dim"] = m.head_dim
    else:
        cfg.update(m.mla.model_dump())
    if m.mla is not None:
        cfg["model_type"] = "deepseek_v3"
    elif m.moe is not None and m.moe.expert_bias:
        cfg["model_type"] = "gpt_oss"
    elif m.qk_norm and m.moe is not None:
        cfg["model_type"] = "qwen3_moe"
    elif m.qk_norm:
        cfg["model_type"] = "gemma3_text" if m.sliding_window else "qwen3"
    else:
        cfg["model_type"] = "llama"
    if m.moe is None:
        cfg["intermediate_size"] = m.intermediate_size
    else:
        e = m.moe
        count_key = {"deepseek_v3": "n_routed_experts", "qwen3_moe": "num_experts"}.get(cfg["model_type"],
                                                                                        "num_local_experts")
        cfg.update({count_key: e.num_experts, "num_experts_per_tok": e.experts_per_token})
        if cfg["model_type"] == "deepseek_v3":
            cfg.update(moe_intermediate_size=e.expert_intermediate_size, intermediate_size=e.dense_intermediate_size,
                       n_shared_experts=e.num_shared_experts, first_k_dense_replace=e.first_dense_layers,
                       moe_layer_freq=e.layer_freq)
        elif cfg["model_type"] == "qwen3_moe":          # dense width present in the file but unused
            cfg.update(moe_intermediate_size=e.expert_intermediate_size, intermediate_size=8 * e.expert_intermediate_size,
                       decoder_sparse_step=1, mlp_only_layers=[])
        else:
            cfg["intermediate_size"] = e.expert_intermediate_size
    if m.sliding_window:
        cfg["sliding_window"] = m.sliding_window
        if cfg["model_type"] == "gemma3_text":
            cfg["sliding_window_pattern"] = 6
            return {"model_type": "gemma3", "text_config": cfg}
        n = m.sliding_window_layers
        cfg["layer_types"] = ["sliding_attention"] * n + ["full_attention"] * (m.num_layers - n)
    return cfg


@pytest.mark.parametrize("name", ["llama-3.1-8b", "deepseek-v3", "gpt-oss-120b", "gemma-3-27b", "qwen3-30b-a3b",
                                  "qwen3-8b"])
def test_round_trip_through_config_json(name: str, tmp_path: Path) -> None:
    arch = load_model(name)
    d = tmp_path / name
    d.mkdir()
    (d / "config.json").write_text(json.dumps(to_hf(arch), indent=2))
    back = load_model(str(d))
    skip = {"name", "source", "source_date"}
    assert back.model_dump(exclude=skip) == arch.model_dump(exclude=skip)


# ---- bad input ---------------------------------------------------------------------------------

@pytest.mark.parametrize("mutate,field", [
    (lambda c: c.pop("hidden_size"), "config.json:hidden_size"),
    (lambda c: c.pop("vocab_size"), "config.json:vocab_size"),
    (lambda c: c.pop("intermediate_size"), "config.json:intermediate_size"),
    (lambda c: c.update(hidden_size="4096"), "config.json:hidden_size"),
    (lambda c: c.update(num_hidden_layers=0), "config.json:num_hidden_layers"),
    (lambda c: c.update(num_key_value_heads=3), "config.json:num_key_value_heads"),
    (lambda c: c.update(tie_word_embeddings="yes"), "config.json:tie_word_embeddings"),
    (lambda c: c.update(hidden_size=250, num_attention_heads=8), "config.json:head_dim"),
    (lambda c: c.update(layer_types=["sliding_attention"] * 4), "config.json:sliding_window"),
    (lambda c: c.update(layer_types=["full_attention"] * 3), "config.json:layer_types"),
])
def test_bad_llama_config(mutate, field: str) -> None:
    cfg = fixture("llama")
    mutate(cfg)
    with pytest.raises(InputError) as ei:
        model_from_hf_config(cfg)
    assert ei.value.field == field and "\n" not in str(ei.value)


@pytest.mark.parametrize("family,mutate,field,says", [
    ("mixtral", lambda c: c.pop("num_experts_per_tok"), "config.json:num_experts_per_tok", "required"),
    ("mixtral", lambda c: c.update(num_experts_per_tok=9), "config.json:num_experts_per_tok", "exceed"),
    ("deepseek_v3", lambda c: c.pop("qk_rope_head_dim"), "config.json:qk_rope_head_dim", "latent attention"),
    ("deepseek_v3", lambda c: c.pop("moe_intermediate_size"), "config.json:intermediate_size", "dense layers"),
    ("qwen3_moe", lambda c: c.update(mlp_only_layers=[0, 99]), "config.json:mlp_only_layers", "below 6"),
    ("qwen3_moe", lambda c: c.update(mlp_only_layers=[1], decoder_sparse_step=2), "config.json:mlp_only_layers",
     "cannot be combined"),
])
def test_bad_moe_and_mla_configs(family: str, mutate, field: str, says: str) -> None:
    cfg = fixture(family)
    mutate(cfg)
    with pytest.raises(InputError) as ei:
        model_from_hf_config(cfg)
    assert ei.value.field == field and says in str(ei.value) and "\n" not in str(ei.value)


def test_bad_json_names_the_file(tmp_path: Path) -> None:
    p = tmp_path / "config.json"
    p.write_text('{"hidden_size": 4096,')
    with pytest.raises(InputError) as ei:
        load_model(str(p))
    assert ei.value.field == str(p) and "valid JSON" in str(ei.value)
    p.write_text("[1, 2]")
    with pytest.raises(InputError, match="JSON object"):
        load_model(str(p))


def test_directory_without_config(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no config.json"):
        load_model(str(tmp_path))


def test_not_a_dict() -> None:
    with pytest.raises(InputError):
        model_from_hf_config(["hidden_size"])  # type: ignore[arg-type]


def test_zero_kv_heads_is_an_error_not_multi_head() -> None:
    cfg = dict(fixture("llama"), num_key_value_heads=0)
    with pytest.raises(InputError, match="num_key_value_heads: got 0"):
        model_from_hf_config(cfg, name="x", source="test", source_date="2025-01-01")
    absent = {k: v for k, v in fixture("llama").items() if k != "num_key_value_heads"}
    arch = model_from_hf_config(absent, name="x", source="test", source_date="2025-01-01")
    assert arch.num_kv_heads == arch.num_attention_heads



def test_json_infinity_for_a_count_is_refused(tmp_path: Path) -> None:
    p = tmp_path / "config.json"
    p.write_text(json.dumps(fixture("llama")).replace('"num_hidden_layers": 4', '"num_hidden_layers": Infinity'))
    assert "Infinity" in p.read_text()
    with pytest.raises(InputError, match="num_hidden_layers"):
        load_model(str(p))
