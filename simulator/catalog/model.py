"""Typed description of a transformer architecture (what the time and memory models need)."""
from __future__ import annotations

from typing import Literal

from pydantic import Field, PositiveInt, model_validator

from ..schema import StrictModel

DTYPE_BYTES: dict[str, float] = {
    "fp32": 4.0, "tf32": 4.0, "bf16": 2.0, "fp16": 2.0, "fp8": 1.0, "int8": 1.0,
    "int4": 0.5, "fp4": 0.5,
}


def dtype_bytes(dtype: str) -> float:
    """Bytes per element of a storage dtype."""
    return DTYPE_BYTES[dtype]


class MoESpec(StrictModel):
    """Mixture-of-experts feed-forward layers."""

    num_experts: PositiveInt                    # routed experts per MoE layer
    experts_per_token: PositiveInt              # routed experts each token visits (top-k)
    expert_intermediate_size: PositiveInt       # FFN width of one routed expert
    num_shared_experts: int = Field(0, ge=0)    # always-on experts (DeepSeek, Qwen2-MoE)
    shared_expert_intermediate_size: int | None = None  # defaults to expert_intermediate_size
    first_dense_layers: int = Field(0, ge=0)    # leading layers that use a dense MLP instead
    layer_freq: PositiveInt = 1                 # every n-th layer (after the dense ones) is MoE
    dense_intermediate_size: int | None = None  # FFN width of the dense layers, if any
    expert_bias: bool = False                   # gpt-oss experts carry biases

    @model_validator(mode="after")
    def _check(self) -> "MoESpec":
        if self.experts_per_token > self.num_experts:
            raise ValueError(f"experts_per_token ({self.experts_per_token}) exceeds num_experts ({self.num_experts})")
        return self


class MLASpec(StrictModel):
    """Multi-head latent attention (DeepSeek-V2/V3): KV compressed to a latent of kv_lora_rank."""

    kv_lora_rank: PositiveInt
    q_lora_rank: int | None = None              # None: queries projected directly from hidden
    qk_nope_head_dim: PositiveInt
    qk_rope_head_dim: PositiveInt
    v_head_dim: PositiveInt


class ModelArch(StrictModel):
    """A decoder-only transformer. Sizes in elements; see ``simulator.perf.ops`` for FLOPs and bytes."""

    name: str
    hidden_size: PositiveInt
    num_layers: PositiveInt
    num_attention_heads: PositiveInt
    num_kv_heads: PositiveInt
    head_dim: PositiveInt
    intermediate_size: PositiveInt              # dense MLP width (for MoE models: of the dense layers)
    vocab_size: PositiveInt
    tie_word_embeddings: bool = False
    gated_mlp: bool = True                      # SwiGLU/GeGLU: gate + up + down; False: up + down
    qkv_bias: bool = False
    o_bias: bool = False
    mlp_bias: bool = False
    norm: Literal["rmsnorm", "layernorm"] = "rmsnorm"
    qk_norm: bool = False                       # per-head RMSNorm on q and k (Qwen3, Gemma-3)
    sliding_window: int | None = None           # tokens a sliding-window layer attends to
    sliding_window_layers: int = Field(0, ge=0) # how many layers use the window
    max_position_embeddings: int | None = None
    moe: MoESpec | None = None
    mla: MLASpec | None = None
    source: str = ""                            # where the figures come from
    source_date: str = ""

    @model_validator(mode="after")
    def _check(self) -> "ModelArch":
        if self.num_attention_heads % self.num_kv_heads:
            raise ValueError(
                f"num_attention_heads ({self.num_attention_heads}) must be a multiple of num_kv_heads ({self.num_kv_heads})")
        if self.sliding_window_layers > self.num_layers:
            raise ValueError("sliding_window_layers exceeds num_layers")
        if self.sliding_window_layers and not self.sliding_window:
            raise ValueError("sliding_window_layers set without sliding_window")
        return self

    # ---- layer structure -------------------------------------------------
    @property
    def num_moe_layers(self) -> int:
        """Layers whose feed-forward block is a mixture of experts."""
        if self.moe is None:
            return 0
        rest = self.num_layers - self.moe.first_dense_layers
        return (rest + self.moe.layer_freq - 1) // self.moe.layer_freq if self.moe.layer_freq > 1 else rest

    @property
    def num_dense_layers(self) -> int:
        """Layers with a dense MLP."""
        return self.num_layers - self.num_moe_layers

    @property
    def dense_ffn_size(self) -> int:
        """FFN width of the dense layers."""
        if self.moe is not None and self.moe.dense_intermediate_size:
            return self.moe.dense_intermediate_size
        return self.intermediate_size

    def kv_elements_per_token_per_layer(self) -> int:
        """KV-cache elements one token stores in one layer (K and V; for MLA the latent + rope key)."""
        if self.mla is not None:
            return self.mla.kv_lora_rank + self.mla.qk_rope_head_dim
        return 2 * self.num_kv_heads * self.head_dim

    def kv_bytes_per_token(self, kv_dtype: str = "bf16") -> float:
        """KV-cache bytes per token over all layers (sliding-window layers counted in full)."""
        return self.kv_elements_per_token_per_layer() * self.num_layers * dtype_bytes(kv_dtype)
