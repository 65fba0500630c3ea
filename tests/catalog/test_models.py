"""The model catalog: every entry loads, is fully sourced, and encodes the family specifics."""
from __future__ import annotations

import re

import pytest
import yaml

from simulator.catalog.model import ModelArch
from simulator.catalog.models import catalog_entry, list_models, load_model, model_from_hf_config
from simulator.errors import InputError
from simulator.paths import catalog_dir

REQUIRED = [
    "llama-3.1-8b", "llama-3.1-70b", "llama-3.1-405b", "llama-3.2-1b", "llama-3.2-3b", "mistral-7b",
    "mixtral-8x7b", "mixtral-8x22b", "qwen2.5-3b", "qwen2.5-7b", "qwen2.5-72b", "qwen3-8b", "qwen3-32b",
    "qwen3-30b-a3b", "qwen3-235b-a22b", "deepseek-v3", "gpt-oss-20b", "gpt-oss-120b", "gemma-3-27b",
]
CORE_KEYS = {"hidden_size", "num_layers", "num_attention_heads", "num_kv_heads", "head_dim",
             "intermediate_size", "vocab_size", "tie_word_embeddings", "qkv_bias", "qk_norm", "gated_mlp"}
DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def test_required_models_present() -> None:
    assert set(REQUIRED) <= set(list_models())
    assert list_models() == sorted(list_models())


@pytest.mark.parametrize("name", list_models())
def test_entry_loads_and_is_sourced(name: str) -> None:
    raw = yaml.safe_load((catalog_dir("models") / f"{name}.yaml").read_text())
    assert raw["name"] == name
    assert CORE_KEYS <= set(raw["arch"]), f"{name} relies on defaults for {CORE_KEYS - set(raw['arch'])}"
    assert set(raw["sources"]) == set(raw["arch"])
    for key, src in raw["sources"].items():
        # each figure names a dated copy of a config, a paper/card, or the modelling code it follows
        assert DATE.search(src) or "modeling_" in src or src.startswith("derived:") or "default" in src, (name, key)
    pub = raw["published_params"]
    assert pub["source"] and DATE.fullmatch(str(pub["date"]))
    assert DATE.fullmatch(str(raw["source_date"]))
    m = load_model(name)
    assert isinstance(m, ModelArch) and m.name == name and m.source_date == raw["source_date"]
    # the YAML values are what the model holds (no silent defaults in between)
    dumped = m.model_dump()
    for key, value in raw["arch"].items():
        if isinstance(value, dict):
            assert {k: dumped[key][k] for k in value} == value
        else:
            assert dumped[key] == value, (name, key)


def test_aliases_are_unambiguous() -> None:
    seen: dict[str, str] = {}
    for name in list_models():
        e = catalog_entry(name)
        for alias in {name, e["display_name"].lower(), e["hf_id"].lower()}:
            assert seen.setdefault(alias, name) == name, f"{alias} names both {seen[alias]} and {name}"


def test_load_by_display_name_hf_id_and_case() -> None:
    m = load_model("llama-3.1-8b")
    assert load_model("Llama-3.1-8B") is m
    assert load_model("meta-llama/Llama-3.1-8B") is m
    assert load_model("  LLAMA-3.1-8b ") is m
    assert load_model("deepseek-ai/DeepSeek-V3").name == "deepseek-v3"
    assert load_model("Mistral-7B-v0.1").name == "mistral-7b"


def test_catalog_entry_raw_fields() -> None:
    e = catalog_entry("Qwen/Qwen3-30B-A3B")
    assert e["name"] == "qwen3-30b-a3b" and e["hf_id"] == "Qwen/Qwen3-30B-A3B"
    assert e["published_params"]["total"] == 30.5e9 and e["published_params"]["active"] == 3.3e9
    assert e["arch"]["moe"]["num_experts"] == 128 and "moe" in e["sources"]


# ---- family specifics, restated by hand from the model cards / configs -------------------------

def test_llama_family() -> None:
    m = load_model("llama-3.1-8b")
    assert (m.hidden_size, m.num_layers, m.num_attention_heads, m.num_kv_heads, m.head_dim) == (4096, 32, 32, 8, 128)
    assert not m.tie_word_embeddings and not m.qkv_bias and m.vocab_size == 128256
    # 2 (K,V) x 8 heads x 128 x 32 layers x 2 bytes = 128 KiB per token
    assert m.kv_bytes_per_token("bf16") == 131072
    for n in ("llama-3.2-1b", "llama-3.2-3b"):
        assert load_model(n).tie_word_embeddings
    assert load_model("llama-3.2-1b").head_dim == 64
    assert load_model("llama-3.1-405b").num_layers == 126


def test_mistral_and_mixtral() -> None:
    m = load_model("mistral-7b")
    assert m.sliding_window == 4096 and m.sliding_window_layers == 32 and m.vocab_size == 32000
    for name, ffn in (("mixtral-8x7b", 14336), ("mixtral-8x22b", 16384)):
        x = load_model(name)
        assert x.moe is not None
        assert (x.moe.num_experts, x.moe.experts_per_token, x.moe.expert_intermediate_size) == (8, 2, ffn)
        assert x.num_moe_layers == x.num_layers and x.moe.num_shared_experts == 0


def test_qwen_family() -> None:
    for n in ("qwen2.5-3b", "qwen2.5-7b", "qwen2.5-72b"):
        m = load_model(n)
        assert m.qkv_bias and not m.o_bias and not m.qk_norm
    q3b = load_model("qwen2.5-3b")
    assert (q3b.hidden_size, q3b.num_layers, q3b.num_attention_heads, q3b.num_kv_heads) == (2048, 36, 16, 2)
    assert (q3b.intermediate_size, q3b.vocab_size, q3b.tie_word_embeddings) == (11008, 151936, True)
    for n in ("qwen3-8b", "qwen3-32b", "qwen3-30b-a3b", "qwen3-235b-a22b"):
        m = load_model(n)
        assert m.qk_norm and not m.qkv_bias and m.head_dim == 128
    a3b = load_model("qwen3-30b-a3b")
    assert a3b.moe is not None and a3b.moe.num_shared_experts == 0 and a3b.num_dense_layers == 0
    assert a3b.intermediate_size == a3b.moe.expert_intermediate_size == 768
    # Qwen3-32B: head_dim 128 is not hidden/heads (5120/64 = 80)
    assert load_model("qwen3-32b").head_dim * 64 != 5120


def test_deepseek_v3() -> None:
    m = load_model("deepseek-v3")
    assert m.mla is not None and m.moe is not None
    assert (m.mla.kv_lora_rank, m.mla.q_lora_rank, m.mla.qk_nope_head_dim, m.mla.qk_rope_head_dim,
            m.mla.v_head_dim) == (512, 1536, 128, 64, 128)
    assert (m.num_layers, m.num_dense_layers, m.num_moe_layers) == (61, 3, 58)
    assert (m.moe.num_experts, m.moe.experts_per_token, m.moe.num_shared_experts) == (256, 8, 1)
    assert (m.moe.expert_intermediate_size, m.dense_ffn_size, m.vocab_size, m.hidden_size) == (2048, 18432, 129280, 7168)
    # MLA caches the 512 latent + 64 rope key per layer: 576 x 61 layers x 2 bytes
    assert m.kv_bytes_per_token("bf16") == 576 * 61 * 2


@pytest.mark.parametrize("name,layers,experts", [("gpt-oss-120b", 36, 128), ("gpt-oss-20b", 24, 32)])
def test_gpt_oss(name: str, layers: int, experts: int) -> None:
    m = load_model(name)
    assert (m.hidden_size, m.num_attention_heads, m.num_kv_heads, m.head_dim, m.vocab_size) == (2880, 64, 8, 64, 201088)
    assert m.num_layers == layers and m.sliding_window == 128 and m.sliding_window_layers == layers // 2
    assert m.qkv_bias and m.o_bias and m.moe is not None and m.moe.expert_bias and m.gated_mlp
    assert (m.moe.num_experts, m.moe.experts_per_token, m.moe.expert_intermediate_size) == (experts, 4, 2880)


@pytest.mark.parametrize("name,layers,local", [("gemma-3-27b", 62, 52), ("gemma-3-12b", 48, 40), ("gemma-3-4b", 34, 29)])
def test_gemma3(name: str, layers: int, local: int) -> None:
    m = load_model(name)
    # 5 local : 1 global, counted independently: layer i is global when i % 6 == 5
    assert local == sum(1 for i in range(layers) if i % 6 != 5)
    assert m.num_layers == layers and m.sliding_window_layers == local and m.sliding_window == 1024
    assert m.qk_norm and m.tie_word_embeddings and m.gated_mlp and not m.qkv_bias
    assert m.head_dim == (128 if name == "gemma-3-27b" else 256)


# ---- bad input ---------------------------------------------------------------------------------

def test_unknown_name_suggests_close_names() -> None:
    with pytest.raises(InputError) as ei:
        load_model("llama-3.1-7b")
    err = ei.value
    assert err.field == "model" and err.value == "llama-3.1-7b"
    assert "did you mean" in str(err) and "llama-3.1-8b" in str(err) and "\n" not in str(err)
    with pytest.raises(InputError, match="did you mean"):
        catalog_entry("qwen3-8")


@pytest.mark.parametrize("bad", ["", "   ", "./no/such/config.json", "/definitely/missing/dir/x.yaml"])
def test_bad_model_strings(bad: str) -> None:
    with pytest.raises(InputError) as ei:
        load_model(bad)
    assert ei.value.field == "model" and "\n" not in str(ei.value)


def test_non_string_model() -> None:
    with pytest.raises(InputError):
        load_model(42)  # type: ignore[arg-type]


def test_yaml_entry_missing_source_is_rejected(tmp_path) -> None:
    raw = yaml.safe_load((catalog_dir("models") / "llama-3.1-8b.yaml").read_text())
    del raw["sources"]["vocab_size"]
    p = tmp_path / "llama-3.1-8b.yaml"
    p.write_text(yaml.safe_dump(raw))
    with pytest.raises(InputError) as ei:
        load_model(str(p))
    assert "vocab_size" in str(ei.value) and "\n" not in str(ei.value)


def test_yaml_entry_file_loads(tmp_path) -> None:
    raw = yaml.safe_load((catalog_dir("models") / "qwen3-8b.yaml").read_text())
    raw["name"] = "my-qwen"
    raw["arch"]["num_layers"] = 2
    p = tmp_path / "my-qwen.yaml"
    p.write_text(yaml.safe_dump(raw))
    m = load_model(str(p))
    assert m.name == "my-qwen" and m.num_layers == 2 and m.qk_norm


def test_yaml_entry_bad_arch_value(tmp_path) -> None:
    raw = yaml.safe_load((catalog_dir("models") / "qwen3-8b.yaml").read_text())
    raw["arch"]["num_kv_heads"] = 5
    p = tmp_path / "x.yaml"
    p.write_text(yaml.safe_dump(raw))
    with pytest.raises(InputError) as ei:
        load_model(str(p))
    assert "num_kv_heads" in str(ei.value) or "multiple" in str(ei.value)


def test_hybrid_layers_are_refused_not_priced_as_attention():
    """Linear-attention, Mamba or conv layers: one error naming the key, never a silent all-attention model."""
    base = {"hidden_size": 2048, "num_hidden_layers": 8, "num_attention_heads": 16, "num_key_value_heads": 4,
            "intermediate_size": 6144, "vocab_size": 32000}
    with pytest.raises(InputError) as e:
        model_from_hf_config({**base, "layer_types": ["linear_attention"] * 6 + ["full_attention"] * 2})
    assert e.value.field == "config.json:layer_types" and "6 of 8 layers" in str(e.value)
    for key, v in (("hybrid_override_pattern", "M-M*M-M*"), ("full_attention_interval", 4), ("mamba_d_state", 128)):
        with pytest.raises(InputError) as e:
            model_from_hf_config({**base, key: v})
        assert e.value.field == f"config.json:{key}"
    ok = model_from_hf_config({**base, "sliding_window": 512,
                               "layer_types": ["sliding_attention", "full_attention"] * 4})
    assert ok.sliding_window_layers == 4
