"""Engine profiles: both validate, say what they fuse, resolve by alias, and their documented CPU
costs give the step times their sources describe (hand-counted kernels of an 8B Llama)."""
from __future__ import annotations

import pytest

from simulator.catalog.engine import EngineProfile
from simulator.catalog.engines import list_engines, load_engine
from simulator.catalog.gpus import load_gpu
from simulator.catalog.model import ModelArch
from simulator.errors import InputError
from simulator.perf.step import BatchShape, StepModel

FUSION = ("fused_qkv", "fused_gate_up", "fused_norm_residual", "fused_act_mul", "fused_rope")


def test_catalog_lists_both_engines() -> None:
    assert {"fused", "hf-eager"} <= set(list_engines())


@pytest.mark.parametrize("name", list_engines())
def test_engine_validates_with_a_source(name: str) -> None:
    e = load_engine(name)
    assert isinstance(e, EngineProfile) and e.name == name
    assert e.status in ("default", "calibrated", "sourced") and len(e.source) > 100 and e.description.strip()
    if e.status == "calibrated":   # the command that produced the figures is named
        assert "calibrate fit" in e.source or "calibration.e2e.profile_fit" in e.source


def test_fused_engine_fuses_everything() -> None:
    e = load_engine("fused")
    assert all(getattr(e, f) for f in FUSION)
    assert e.kv_cache == "paged" and e.cuda_graphs and not e.upcast_norm and not e.logits_fp32
    assert 1e-3 <= e.cpu_overhead_per_step_s <= 3e-3            # the cited 1-3 ms without async scheduling


def test_hf_eager_engine_fuses_nothing() -> None:
    e = load_engine("hf-eager")
    assert not any(getattr(e, f) for f in FUSION)
    assert e.kv_cache == "dynamic" and not e.cuda_graphs and e.upcast_norm and e.logits_fp32
    assert e.cpu_launch_per_kernel_s > load_engine("fused").cpu_launch_per_kernel_s


@pytest.mark.parametrize(("alias", "name"), [("vLLM", "vllm"), ("sglang", "sglang"), ("TensorRT_LLM", "trtllm"),
                                             ("trt-llm", "trtllm"),
                                             ("transformers", "hf-eager"), ("HF-Eager", "hf-eager")])
def test_aliases_resolve(alias: str, name: str) -> None:
    assert load_engine(alias).name == name


PRODUCTION = ("vllm", "sglang", "trtllm")


@pytest.mark.parametrize("name", PRODUCTION)
def test_production_engines_name_version_kernels_and_overlap(name: str) -> None:
    e = load_engine(name)
    assert e.version and e.overlap_host and e.kernels.tables == name and e.kernels.all_reduce == "custom"
    assert e.kernels.source and e.status == "sourced"


def test_production_engines_differ_in_their_kernels() -> None:
    fams = {n: (load_engine(n).kernels.attention_prefill, load_engine(n).kernels.attention_decode) for n in PRODUCTION}
    assert fams["trtllm"] == ("trtllm-fmha", "xqa") and fams["vllm"][0] == "fa3"
    assert load_engine("fused").kernels.attention_prefill == "fa2" and not load_engine("fused").overlap_host


def test_overlapped_host_work_hides_behind_the_gpu_step() -> None:
    # Host work of step n+1 runs while the GPU runs step n: a step lasts max(GPU, host), not the sum.
    # Same engine figures with and without overlap; a decode step of batch 256 on an H100.
    plain = load_engine("fused")
    over = plain.model_copy(update={"overlap_host": True})
    shape = BatchShape.decode(256, 256 * 1024)
    a = StepModel(LLAMA_8B, load_gpu("h100-sxm"), plain).price(shape, exact=True, detail=True)
    b = StepModel(LLAMA_8B, load_gpu("h100-sxm"), over).price(shape, exact=True, detail=True)
    host = plain.cpu_overhead_per_step_s + 256 * plain.cpu_overhead_per_seq_s   # 4.06 ms
    assert a.gpu_s == b.gpu_s and a.wall_s - b.wall_s == pytest.approx(min(host, b.wall_s), rel=1e-6)
    tiny = BatchShape.decode(1, 128)   # a tiny step is host-bound: the host time is the step
    t = StepModel(LLAMA_8B, load_gpu("h100-sxm"), over.model_copy(update={"cpu_overhead_per_step_s": 0.05})).price(tiny, exact=True, detail=True)
    assert t.wall_s == pytest.approx(0.05 + plain.cpu_overhead_per_seq_s)


def test_unknown_engine_suggests() -> None:
    with pytest.raises(InputError) as info:
        load_engine("fussed")
    assert info.value.field == "engine" and "did you mean fused" in str(info.value)


LLAMA_8B = ModelArch(name="llama-3.1-8b", hidden_size=4096, num_layers=32, num_attention_heads=32, num_kv_heads=8,
                     head_dim=128, intermediate_size=14336, vocab_size=128256)


def test_hf_eager_decode_step_is_host_bound_in_the_documented_range() -> None:
    # Kernels per layer for eager transformers, as the torch profiler lists them
    # (calibration/data/*/whole_model_kernels.csv): 7 projections (q, k, v, o, gate, up, down),
    # 2 RMSNorms x (to fp32, pow, mean, +eps, rsqrt, mul, to bf16, *weight) + 2 residual adds = 18,
    # SiLU and multiply = 2, RoPE on q and k = 10, attention = 2, KV concatenation = 2 -> 41 per
    # layer; plus embedding, LM head and 4 sampling kernels = 6. Attention is 2 kernels here: one
    # sequence x 8 KV heads fill few SMs, so the keys are split and a combine kernel follows (the
    # profiled batch-1 steps gain one kernel per layer from context 128 to 1024: 1463 -> 1495).
    sm = StepModel(LLAMA_8B, load_gpu("h100-sxm"), load_engine("hf-eager"))
    t = sm.price(BatchShape.decode(1, 512), exact=True, detail=True)
    assert t.kernels == 41 * 32 + 6
    e = load_engine("hf-eager")
    host = t.kernels * e.cpu_launch_per_kernel_s
    assert host > t.gpu_s                                        # dispatch, not the GPU, bounds the step
    assert t.wall_s == pytest.approx(host + e.cpu_overhead_per_step_s + e.cpu_overhead_per_seq_s, rel=1e-6)
    assert 10e-3 <= t.wall_s <= 30e-3                            # 10-30 ms per step, as documented


LLAMA_7B = ModelArch(name="llama-7b", hidden_size=4096, num_layers=32, num_attention_heads=32, num_kv_heads=32,
                     head_dim=128, intermediate_size=11008, vocab_size=32000)


def test_hf_eager_llama_7b_matches_published_speed() -> None:
    # NVIDIA/FasterTransformer#506 (2023-05-29): FasterTransformer at ~22 ms/token (45 tokens/s) is
    # "only 5 tokens/s faster than running LLaMa on half precision with HuggingFace", i.e. ~40
    # tokens/s = 25 ms per batch-1 decode step for LLaMA-7B on an A100 in eager transformers.
    gpu = load_gpu("a100-sxm-80gb")
    eager = StepModel(LLAMA_7B, gpu, load_engine("hf-eager")).price(BatchShape.decode(1, 256), exact=True, detail=True).wall_s
    assert eager == pytest.approx(25e-3, rel=0.25)
    fused = StepModel(LLAMA_7B, gpu, load_engine("fused")).price(BatchShape.decode(1, 256), exact=True, detail=True).wall_s
    assert fused < eager / 1.5                                   # fusion, graphs and no dispatch cost


def test_engine_profile_from_a_file_path(tmp_path) -> None:
    text = load_engine("hf-paged").model_dump()
    text.update(name="my-engine", cpu_overhead_per_step_s=0.004)
    path = tmp_path / "my-engine.yaml"
    import yaml
    path.write_text(yaml.safe_dump(text))
    e = load_engine(str(path))
    assert e.name == "my-engine" and e.cpu_overhead_per_step_s == 0.004
    with pytest.raises(InputError, match="no such file"):
        load_engine(str(tmp_path / "missing.yaml"))
    (tmp_path / "other.yaml").write_text(yaml.safe_dump(text))
    with pytest.raises(InputError, match="must match the file name"):
        load_engine(str(tmp_path / "other.yaml"))


def test_bad_engine_profile_file_is_named_in_one_line(tmp_path) -> None:
    bad = tmp_path / "mine.yaml"
    bad.write_text("name: mine\ndescription: x\nfused_qkv: maybe\n")
    with pytest.raises(InputError) as e:
        load_engine(str(bad))
    msg = str(e.value)
    assert msg.startswith(f"{bad}:fused_qkv: got 'maybe'") and "\n" not in msg
    (tmp_path / "half.yaml").write_text("name: half\n")
    with pytest.raises(InputError, match=r"half.yaml:description: got None; Field required"):
        load_engine(str(tmp_path / "half.yaml"))


def test_vllm_overlaps_host_from_the_version_that_made_it_the_default() -> None:
    # async scheduling is vLLM's default from v0.14 (the profile's source); older servers run in turn
    e = load_engine("vllm")
    assert e.overlap_host_since == "0.14"
    assert [e.overlaps_host_at(v) for v in ("0.12.0", "0.13.0", "0.14.0", "0.19.1")] == [False, False, True, True]
    # a version that names no release (the sample's empty version, a nightly build): the profile's default
    assert e.overlaps_host_at("nan") and e.overlaps_host_at("") and e.overlaps_host_at("nightly-0b1c2d3")
    assert load_engine("trtllm").overlaps_host_at("1.0.0rc3") and not load_engine("fused").overlaps_host_at("9")
