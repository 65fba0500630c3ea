"""FLOPs and bytes of every operation in a forward step, per GPU (after tensor-parallel sharding).

Conventions: one multiply-add is 2 FLOPs; bytes are the minimum moved through device memory
(each input read once, each output written once). Sizes are elements unless named ``*_bytes``.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol, TypeVar

import numpy as np

from ..catalog.engine import EngineProfile
from ..catalog.model import ModelArch, dtype_bytes
from ..errors import InputError

#: Storage bytes per weight element, including quantisation scales (int4: fp16 scale per 128; nvfp4:
#: E2M1 values with an E4M3 scale per 16, NVIDIA's NVFP4 as in TensorRT Model Optimizer checkpoints;
#: fp4: an E8M0 scale per 32, OCP MXFP4).
WEIGHT_BYTES = {"fp32": 4.0, "bf16": 2.0, "fp16": 2.0, "fp8": 1.0, "int8": 1.0,
                "int4": 0.5 + 2.0 / 128, "fp4": 0.5 + 1.0 / 32, "nvfp4": 0.5 + 1.0 / 16, "sparse24": 1.0 + 0.125}
#: Tensor-core dtype that a weight format computes in (int4 is weight-only: bf16 math; nvfp4 runs fp4
#: tensor cores, which only Blackwell GPUs have).
COMPUTE_DTYPE = {"fp32": "tf32", "bf16": "bf16", "fp16": "fp16", "fp8": "fp8", "int8": "int8",
                 "int4": "bf16", "fp4": "fp4", "nvfp4": "fp4", "sparse24": "bf16"}
ACT_BYTES = 2.0  # activations are bf16/fp16 throughout


class _Seconds(Protocol):
    seconds: float


Timed = TypeVar("Timed", bound=_Seconds)   # a priced operation (roofline.OpTime)
#: Eager RMSNorm with fp32 upcast (transformers' LlamaRMSNorm), counted from torch-profiler traces
#: of calibration/data/*/whole_model_kernels.csv: 8 kernels per norm moving 36 bytes per element,
#: by kind (bytes per element, kernels), from the kernel names in those traces:
#: to(fp32), x * rsqrt (broadcast), to(bf16), * weight (broadcast) run torch's generic element-wise
#: path; pow runs the vectorized path, with the two tiny (rows x 1) +eps and rsqrt; mean is a row
#: reduction.
UPCAST_NORM_SPLIT = {"memory_pointwise": (24.0, 4), "memory": (8.0, 3), "memory_norm": (4.0, 1)}


@dataclass(frozen=True)
class Gemm:
    """One weight matrix [k, n] applied to the step's tokens, per GPU, in ``layers`` layers."""

    name: str
    kind: str         # breakdown group: qkv_proj | o_proj | mlp | moe | router | lm_head
    k: int
    n: int
    layers: int
    experts: int = 1  # >1: a grouped GEMM over this many experts (rows split by routing)
    topk: int = 1     # experts each token visits
    bias: bool = False

    @property
    def weight_elements(self) -> int:
        return self.k * self.n * self.experts * self.layers


@dataclass(frozen=True)
class Shard:
    """How a model's tensors are split over ``tp`` GPUs."""

    tp: int
    heads: int        # query heads per GPU
    kv_heads: int     # KV heads per GPU (replicated when tp > KV heads)


def shard(model: ModelArch, tp: int) -> Shard:
    """Per-GPU head counts under tensor parallelism of degree ``tp``."""
    return _shard(model.name, model.num_attention_heads, model.num_kv_heads, model.mla is not None, tp)


@lru_cache(maxsize=1024)
def _shard(name: str, heads: int, kv: int, mla: bool, tp: int) -> Shard:
    """:func:`shard` of a model given by the fields it depends on (memoised: part builds call it)."""
    if tp < 1:
        raise InputError("tp", tp, "must be a positive integer")
    if heads % tp:
        raise InputError("tp", tp, f"must divide {name}'s {heads} attention heads")
    if not mla and kv % tp and tp % kv:
        raise InputError("tp", tp, f"must divide or be a multiple of {name}'s {kv} KV heads")
    kv_per_gpu = heads // tp if mla else max(1, kv // tp)
    return Shard(tp=tp, heads=heads // tp, kv_heads=kv_per_gpu)


def layer_gemms(model: ModelArch, tp: int, engine: EngineProfile, expert_tp: int | None = None) -> list[Gemm]:
    """Every weight GEMM of the model on one GPU, grouped by shape (layers counts repeats).

    Routed experts are split ``expert_tp`` ways in width (default ``tp``; 1 under expert
    parallelism, where each GPU holds whole experts and ``experts`` counts all of them)."""
    s = shard(model, tp)
    etp = tp if expert_tp is None else expert_tp
    h, L = model.hidden_size, model.num_layers
    g: list[Gemm] = []
    if model.mla is not None:
        m = model.mla
        qk = m.qk_nope_head_dim + m.qk_rope_head_dim
        if m.q_lora_rank:
            g.append(Gemm("q_a_proj", "qkv_proj", h, m.q_lora_rank, L))
            g.append(Gemm("q_b_proj", "qkv_proj", m.q_lora_rank, s.heads * qk, L))
        else:
            g.append(Gemm("q_proj", "qkv_proj", h, s.heads * qk, L))
        g.append(Gemm("kv_a_proj", "qkv_proj", h, m.kv_lora_rank + m.qk_rope_head_dim, L))
        g.append(Gemm("kv_b_proj", "qkv_proj", m.kv_lora_rank, s.heads * (m.qk_nope_head_dim + m.v_head_dim), L))
        g.append(Gemm("o_proj", "o_proj", s.heads * m.v_head_dim, h, L, bias=model.o_bias))
    else:
        q, kv = s.heads * model.head_dim, s.kv_heads * model.head_dim
        if engine.fused_qkv:
            g.append(Gemm("qkv_proj", "qkv_proj", h, q + 2 * kv, L, bias=model.qkv_bias))
        else:
            g += [Gemm("q_proj", "qkv_proj", h, q, L, bias=model.qkv_bias),
                  Gemm("k_proj", "qkv_proj", h, kv, L, bias=model.qkv_bias),
                  Gemm("v_proj", "qkv_proj", h, kv, L, bias=model.qkv_bias)]
        g.append(Gemm("o_proj", "o_proj", q, h, L, bias=model.o_bias))
    g += _mlp_gemms("mlp", "mlp", h, model.dense_ffn_size // tp, model.num_dense_layers, model, engine)
    if model.moe is not None and model.num_moe_layers:
        e, nl = model.moe, model.num_moe_layers
        g.append(Gemm("router", "router", h, e.num_experts, nl))
        g += _mlp_gemms("experts", "moe", h, e.expert_intermediate_size // etp, nl, model, engine,
                        experts=e.num_experts, topk=e.experts_per_token, bias=e.expert_bias)
        if e.num_shared_experts:
            ffn = (e.shared_expert_intermediate_size or e.expert_intermediate_size) * e.num_shared_experts
            g += _mlp_gemms("shared_expert", "moe", h, ffn // tp, nl, model, engine)
    g.append(Gemm("lm_head", "lm_head", h, model.vocab_size // tp, 1))
    return [x for x in g if x.layers > 0 and x.n > 0]


def _mlp_gemms(name: str, kind: str, h: int, ffn: int, layers: int, model: ModelArch,
               engine: EngineProfile, *, experts: int = 1, topk: int = 1, bias: bool | None = None) -> list[Gemm]:
    b = model.mlp_bias if bias is None else bias
    if not model.gated_mlp:
        return [Gemm(f"{name}.up", kind, h, ffn, layers, experts, topk, b),
                Gemm(f"{name}.down", kind, ffn, h, layers, experts, topk, b)]
    if engine.fused_gate_up:
        up = [Gemm(f"{name}.gate_up", kind, h, 2 * ffn, layers, experts, topk, b)]
    else:
        up = [Gemm(f"{name}.gate", kind, h, ffn, layers, experts, topk, b),
              Gemm(f"{name}.up", kind, h, ffn, layers, experts, topk, b)]
    return up + [Gemm(f"{name}.down", kind, ffn, h, layers, experts, topk, b)]


def gemm_cost(m: float, k: int, n: int, w_bytes: float) -> tuple[float, float]:
    """(FLOPs, bytes) of x[m,k] @ w[k,n] with bf16 activations and ``w_bytes`` per weight."""
    return 2.0 * m * k * n, (m * k + m * n) * ACT_BYTES + k * n * w_bytes


def fused_moe_cost(routed: float, active: float, hidden: int, inter: int, gated: bool,
                   w_bytes: float) -> tuple[float, float]:
    """(FLOPs, bytes) of one MoE layer's routed experts on one GPU as one fused MoE module: ``routed``
    token-expert rows through ``active`` experts of width ``inter`` (after expert-TP sharding).

    The engines' fused MoE (TensorRT-LLM ``create_moe``, SGLang / vLLM ``fused_moe``) runs the
    experts' gate and up projections as one GEMM (w13: [hidden, 2·inter]) and the down projection as a
    second (w2: [inter, hidden]); non-gated experts have one up projection. FLOPs: 2 per multiply-add
    of both GEMMs. Bytes: each active expert's weights once, plus each routed row's GEMM inputs and
    outputs at 2 bytes (fc1 reads hidden and writes 2·inter or inter, fc2 reads inter and writes
    hidden), as :func:`gemm_cost` counts the two GEMMs."""
    mats = 3 if gated else 2
    flops = 2.0 * routed * hidden * inter * mats
    nbytes = active * hidden * inter * mats * w_bytes + ACT_BYTES * routed * (2 * hidden + mats * inter)
    return flops, nbytes


def expected_active_experts(tokens: float, experts: int, topk: int) -> float:
    """Experts that receive at least one of ``tokens`` tokens under uniform top-k routing."""
    if tokens <= 0:
        return 0.0
    return experts * (1.0 - (1.0 - topk / experts) ** tokens)


@dataclass(frozen=True)
class ExpertPlan:
    """How routed experts run: token balance over experts, expert parallelism, attention layout."""

    balance: str = "uniform"     # uniform | zipf
    skew: float = 1.2            # zipf exponent of expert popularity
    ep: int = 1                  # GPUs the experts are spread over (whole experts per GPU)
    dp_attention: bool = False   # each GPU attends for 1/ep of the sequences with full weights


class ExpertRouting:
    """Expected routed rows and active experts on each expert-parallel GPU.

    Popularity is uniform, or Zipf (p ∝ 1/rank^skew) with ranks shuffled over expert ids by a fixed
    permutation; experts sit on GPUs in contiguous id ranges (as vLLM and SGLang place them). A
    token picks expert e with probability q_e = min(1, top-k · p_e); with T tokens, expert e is
    active with probability 1 − (1 − q_e)^T and receives T·top-k·p_e rows on average. The grouped
    GEMM takes as long as its slowest GPU (most rows, or most expert weights to read).
    """

    def __init__(self, experts: int, topk: int, plan: ExpertPlan, name: str = "model") -> None:
        if experts % plan.ep:
            raise InputError("deployment.moe.expert_parallel", plan.ep, f"must divide {name}'s {experts} experts")
        if plan.balance not in ("uniform", "zipf"):
            raise InputError("deployment.moe.balance", plan.balance, "allowed: uniform, zipf")
        self.experts, self.topk, self.plan = experts, topk, plan
        if plan.balance == "uniform":
            p = np.full(experts, 1.0 / experts)
        else:
            w = 1.0 / np.arange(1, experts + 1) ** plan.skew
            p = (w / w.sum())[np.random.default_rng(0).permutation(experts)]
        self.gpu_of = np.arange(experts) // (experts // plan.ep)
        self.popularity = p
        self.shares = np.ones(1) if plan.ep == 1 else np.bincount(self.gpu_of, weights=p, minlength=plan.ep)
        self.share_max = float(self.shares.max())
        self._q = np.minimum(1.0, topk * p)
        self._closed = plan.balance == "uniform"

    def load(self, tokens: float) -> tuple[np.ndarray, np.ndarray]:
        """(routed rows, active experts) on each GPU when the step has ``tokens`` tokens."""
        ep = self.plan.ep
        if tokens <= 0:
            return np.zeros(ep), np.zeros(ep)
        routed = tokens * self.topk * self.shares
        if self._closed:
            return routed, np.full(ep, expected_active_experts(tokens, self.experts, self.topk) / ep)
        active = 1.0 - (1.0 - self._q) ** tokens
        return routed, np.bincount(self.gpu_of, weights=active, minlength=ep)

    def slowest(self, tokens: float, price: Callable[[float, float], Timed]) -> Timed:
        """``price(routed rows, active experts)`` of the expert-parallel GPU that takes longest (the first
        of equals) when the step has ``tokens`` tokens."""
        return max((price(r, a) for r, a in zip(*self.load(tokens))), key=lambda t: t.seconds)


def attention_heads_dims(model: ModelArch, phase: str, mla_form: str = "absorbed") -> tuple[int, int]:
    """(qk dim, v dim) per head that attention multiplies by, for ``prefill`` or ``decode``.

    MLA decodes in the absorbed form (attention over the compressed latent, as vLLM and SGLang do)
    unless ``mla_form`` is ``expanded``, and prefills in the expanded form (ordinary attention with
    qk = nope + rope, v = v_head_dim).
    """
    if model.mla is None:
        return model.head_dim, model.head_dim
    m = model.mla
    if phase == "decode" and mla_form == "absorbed":
        return m.kv_lora_rank + m.qk_rope_head_dim, m.kv_lora_rank
    return m.qk_nope_head_dim + m.qk_rope_head_dim, m.v_head_dim


def attention_cost(model: ModelArch, tp: int, phase: str, pairs: float, q_tokens: float,
                   kv_tokens: float, kv_dtype: str, *, mla_form: str = "absorbed") -> tuple[float, float]:
    """(FLOPs, bytes) of one layer's attention on one GPU.

    ``pairs``: query-key pairs computed (causal: c·p + c(c+1)/2 per sequence; decode: context);
    ``q_tokens``: new query tokens; ``kv_tokens``: cached + new KV entries read.
    """
    s = shard(model, tp)
    dqk, dv = attention_heads_dims(model, phase, mla_form)
    flops = 2.0 * s.heads * (dqk + dv) * pairs
    if model.mla is not None and phase == "decode" and mla_form == "absorbed":
        kv_bytes = kv_tokens * model.kv_elements_per_token_per_layer() * dtype_bytes(kv_dtype)
    elif model.mla is not None:  # expanded K and V per head, bf16
        kv_bytes = kv_tokens * s.heads * (dqk + dv) * ACT_BYTES
    else:
        kv_bytes = kv_tokens * 2 * s.kv_heads * model.head_dim * dtype_bytes(kv_dtype)
    io = q_tokens * s.heads * (dqk + dv) * ACT_BYTES
    return flops, kv_bytes + io


def mla_expand_copy_bytes(model: ModelArch, tp: int, kv_tokens: float) -> float:
    """Bytes of the two copies that assemble the expanded MLA key of ``kv_tokens`` entries on one GPU
    (transformers 5.17.0 DeepseekV2Attention.expand_kv: ``key[..., :nope].copy_(k_nope)`` reads the
    strided nope half of kv_b_proj's output and writes it; ``key[..., nope:].copy_(k_rot)`` reads the
    one shared rope key per token and writes it to every head)."""
    if model.mla is None:
        return 0.0
    m, heads = model.mla, shard(model, tp).heads
    nope = 2 * heads * m.qk_nope_head_dim
    rope = m.qk_rope_head_dim + heads * m.qk_rope_head_dim
    return kv_tokens * (nope + rope) * ACT_BYTES


def elementwise_parts(model: ModelArch, tp: int, engine: EngineProfile,
                      moe_act_fused: bool = False) -> dict[str, tuple[float, int]]:
    """Bytes per token per layer and kernels per layer of norms, residual adds, activation and RoPE,
    split by the memory curve that prices each kernel: curve name -> (bytes, kernels).

    - ``memory``: residual adds and the activation (contiguous operands: torch's vectorized path);
    - ``memory_norm``: single-kernel norms (RMSNorm, fused add + RMSNorm, q/k norms);
    - ``memory_pointwise``: the broadcast pieces of eager fp32-upcast norms and unfused RoPE on
      transposed q / k (torch's generic element-wise path, measured by SiLU x mul on tensor halves).

    Eager upcast norms split by kernel as :data:`UPCAST_NORM_SPLIT` says. ``moe_act_fused``: the routed
    experts' activation runs inside the fused MoE module (priced by the ``moe`` families with it), so
    only the shared experts' activation is a kernel of its own.
    """
    h, a = model.hidden_size, ACT_BYTES
    s = shard(model, tp)
    ffn = (model.dense_ffn_size if model.moe is None else model.moe.expert_intermediate_size
           * model.moe.experts_per_token) // tp
    if moe_act_fused and model.moe is not None:
        e = model.moe
        ffn = (e.shared_expert_intermediate_size or e.expert_intermediate_size) * e.num_shared_experts // tp
    parts = {"memory": [0.0, 0], "memory_norm": [0.0, 0], "memory_pointwise": [0.0, 0]}

    def add(curve: str, nbytes: float, kernels: int) -> None:
        parts[curve][0] += nbytes
        parts[curve][1] += kernels
    if engine.fused_norm_residual:
        add("memory_norm", 2 * (3 * h * a), 2)
    elif engine.upcast_norm:
        for curve, (per_elem, k) in UPCAST_NORM_SPLIT.items():
            add(curve, 2 * per_elem * h, 2 * k)
        add("memory", 2 * 3 * h * a, 2)
    else:
        add("memory_norm", 2 * 2 * h * a, 2)
        add("memory", 2 * 3 * h * a, 2)
    if model.gated_mlp and ffn > 0:
        add("memory", 3 * ffn * a if engine.fused_act_mul else 5 * ffn * a, 1 if engine.fused_act_mul else 2)
    qk = (s.heads + s.kv_heads) * model.head_dim
    if not engine.fused_rope:
        add("memory_pointwise", 10 * qk * a, 10)
    if model.qk_norm:
        if engine.fused_norm_residual:
            add("memory_norm", 2 * qk * a, 2)
        elif engine.upcast_norm:
            for curve, (per_elem, k) in UPCAST_NORM_SPLIT.items():
                add(curve, per_elem * qk, 2 * k)
        else:
            add("memory_norm", 2 * a * qk, 2)
    return {k: (float(v[0]), int(v[1])) for k, v in parts.items() if v[1] > 0}
