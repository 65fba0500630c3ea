"""A Llama-style decoder split Megatron-style over ``tp`` GPUs, in plain torch, random bf16 weights.

Built from the architecture numbers alone (no downloads, no transformers). Per layer on one GPU:
RMSNorm -> column-parallel QKV (heads/tp query heads, kv_heads/tp KV heads) -> RoPE (rotate-half,
theta 500000) -> ``scaled_dot_product_attention`` (prefill: causal over the chunk; decode: one
query against a per-layer KV cache tensor of ``context`` tokens plus the new one) -> row-parallel O
-> all-reduce -> residual add -> RMSNorm -> column-parallel gate_up -> SiLU(gate) * up ->
row-parallel down -> all-reduce -> residual add. Outside the layers: a vocab-parallel embedding
(masked lookup + all-reduce), the final RMSNorm, a column-parallel LM head on the last token of
each sequence, an all-gather of the fp32 logits and a greedy argmax. torch is imported lazily.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from simulator.errors import InputError


@dataclass(frozen=True)
class TPModel:
    """Architecture numbers (sizes in elements)."""

    name: str
    hidden: int
    heads: int
    kv_heads: int
    head_dim: int
    ffn: int
    vocab: int
    layers: int
    eps: float = 1e-5
    rope_theta: float = 500000.0


#: Llama-3.1-70B (Hugging Face config.json values; see calibration/shapes.py MODEL_SOURCE).
LLAMA_70B = TPModel("llama-3.1-70b", 8192, 64, 8, 128, 28672, 128256, 80)
#: A small synthetic model for the CPU check (not a real model).
TINY = TPModel("tiny-tp", 256, 8, 4, 32, 512, 1024, 4)
MODELS = {m.name: m for m in (LLAMA_70B, TINY)}


def shard_shapes(m: TPModel, tp: int) -> dict[str, tuple[int, ...]]:
    """Shapes of one GPU's weights under tensor parallelism ``tp`` (linear weights as [out, in])."""
    if tp < 1 or m.heads % tp or m.ffn % tp or m.vocab % tp:
        raise InputError("tp", tp, f"must divide heads {m.heads}, ffn {m.ffn} and vocab {m.vocab}")
    if m.kv_heads % tp and tp % m.kv_heads:
        raise InputError("tp", tp, f"must divide kv_heads {m.kv_heads} or be a multiple of it")
    hq, hkv, d, h = m.heads // tp, max(1, m.kv_heads // tp), m.head_dim, m.hidden
    return {"embedding": (m.vocab // tp, h), "norm": (h,), "qkv": ((hq + 2 * hkv) * d, h), "o": (h, hq * d),
            "gate_up": (2 * m.ffn // tp, h), "down": (h, m.ffn // tp), "lm_head": (m.vocab // tp, h)}


def layer_params(m: TPModel, tp: int) -> int:
    """Weight elements of one layer on one GPU."""
    s = shard_shapes(m, tp)
    return sum(math.prod(s[k]) for k in ("qkv", "o", "gate_up", "down")) + 2 * m.hidden


def kv_cache_bytes(m: TPModel, tp: int, batch: int, context: int, layers: int, elem: int = 2) -> int:
    """Bytes of K and V for ``layers`` layers on one GPU (context + 1 slots per sequence)."""
    return 2 * batch * max(1, m.kv_heads // tp) * (context + 1) * m.head_dim * elem * layers


def allreduce_bytes(m: TPModel, tokens: int, elem: int = 2) -> int:
    """Message of each TP all-reduce: the step's hidden states (tokens x hidden)."""
    return tokens * m.hidden * elem


class TPDecoder:
    """One GPU's shard of the model with ``n_layers`` distinct layers; ``group`` is the TP group
    (None for tp = 1). Weights are N(0, 1/in_features) so activations stay finite."""

    def __init__(self, m: TPModel, tp: int, rank: int, n_layers: int, device: str, dtype: Any,
                 group: Any = None) -> None:
        import torch

        self.m, self.tp, self.rank, self.group, self.device, self.dtype = m, tp, rank, group, device, dtype
        s = shard_shapes(m, tp)
        self.hq, self.hkv = m.heads // tp, max(1, m.kv_heads // tp)

        def w(shape: tuple[int, ...]) -> Any:
            return torch.empty(shape, device=device, dtype=dtype).normal_(0.0, 1.0 / math.sqrt(shape[-1]))

        self.embedding = w(s["embedding"])
        self.vocab_start = rank * s["embedding"][0]
        self.layers = [{"norm1": torch.ones(s["norm"], device=device, dtype=dtype), "qkv": w(s["qkv"]),
                        "o": w(s["o"]), "norm2": torch.ones(s["norm"], device=device, dtype=dtype),
                        "gate_up": w(s["gate_up"]), "down": w(s["down"])} for _ in range(n_layers)]
        self.final_norm = torch.ones(s["norm"], device=device, dtype=dtype)
        self.lm_head = w(s["lm_head"])
        self.cache: list[tuple[Any, Any]] = []
        self.cos = self.sin = None

    # ---- per-point state -----------------------------------------------------------------
    def set_shape(self, phase: str, batch: int, seq_or_context: int) -> None:
        """Prepare RoPE tables and (decode) a KV cache of ``seq_or_context`` random tokens per layer."""
        import torch

        self.cache = []
        self.phase, self.batch = phase, batch
        d = self.m.head_dim
        if phase == "prefill":
            pos = torch.arange(seq_or_context, device=self.device, dtype=torch.float32)
            self.seq, self.context = seq_or_context, 0
        elif phase == "decode":
            pos = torch.tensor([float(seq_or_context)], device=self.device)
            self.seq, self.context = 1, seq_or_context
            shape = (batch, self.hkv, seq_or_context + 1, d)
            for _ in self.layers:
                self.cache.append((torch.empty(shape, device=self.device, dtype=self.dtype).normal_(),
                                   torch.empty(shape, device=self.device, dtype=self.dtype).normal_()))
        else:
            raise InputError("phase", phase, "allowed: prefill, decode")
        inv = 1.0 / (self.m.rope_theta ** (torch.arange(0, d, 2, device=self.device, dtype=torch.float32) / d))
        ang = torch.outer(pos, inv)                          # [S, d/2]
        self.cos = ang.cos().to(self.dtype)[:, None, :]      # [S, 1, d/2]: broadcast over heads
        self.sin = ang.sin().to(self.dtype)[:, None, :]

    def token_ids(self, seed: int = 0) -> Any:
        import torch

        g = torch.Generator(device="cpu").manual_seed(seed)
        ids = torch.randint(0, self.m.vocab, (self.batch, self.seq), generator=g)
        return ids.to(self.device)

    # ---- forward segments ----------------------------------------------------------------
    def _all_reduce(self, x: Any) -> Any:
        if self.tp > 1:
            import torch.distributed as dist

            dist.all_reduce(x, group=self.group)
        return x

    def embed(self, ids: Any) -> Any:
        """[B, S] token ids -> [B*S, hidden] hidden states (masked local lookup + all-reduce)."""
        import torch.nn.functional as F

        flat = ids.reshape(-1)
        if self.tp == 1:
            return F.embedding(flat, self.embedding)
        rows = self.embedding.shape[0]
        local = flat - self.vocab_start
        mask = (local >= 0) & (local < rows)
        x = F.embedding(local.clamp(0, rows - 1), self.embedding) * mask[:, None].to(self.dtype)
        return self._all_reduce(x)

    def _rope(self, x: Any) -> Any:
        import torch

        half = x.shape[-1] // 2
        x1, x2 = x[..., :half], x[..., half:]
        return torch.cat((x1 * self.cos - x2 * self.sin, x2 * self.cos + x1 * self.sin), dim=-1)

    def layer(self, x: Any, i: int) -> Any:
        import torch.nn.functional as F

        p, m = self.layers[i], self.m
        b, s, d = self.batch, self.seq, m.head_dim
        h = F.rms_norm(x, (m.hidden,), p["norm1"], m.eps)
        qkv = F.linear(h, p["qkv"]).view(b, s, self.hq + 2 * self.hkv, d)
        q = self._rope(qkv[:, :, :self.hq]).transpose(1, 2)
        k = self._rope(qkv[:, :, self.hq:self.hq + self.hkv]).transpose(1, 2)
        v = qkv[:, :, self.hq + self.hkv:].transpose(1, 2)
        gqa = self.hq != self.hkv
        if self.phase == "prefill":
            a = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=gqa)
        else:
            kc, vc = self.cache[i]
            kc[:, :, self.context:].copy_(k)
            vc[:, :, self.context:].copy_(v)
            a = F.scaled_dot_product_attention(q, kc, vc, enable_gqa=gqa)
        o = self._all_reduce(F.linear(a.transpose(1, 2).reshape(b * s, self.hq * d), p["o"]))
        x = x + o
        h = F.rms_norm(x, (m.hidden,), p["norm2"], m.eps)
        gate, up = F.linear(h, p["gate_up"]).chunk(2, dim=-1)
        y = self._all_reduce(F.linear(F.silu(gate) * up, p["down"]))
        return x + y

    def run_layers(self, x: Any) -> Any:
        for i in range(len(self.layers)):
            x = self.layer(x, i)
        return x

    def shard_from(self, full: "TPDecoder") -> None:
        """Copy this rank's slices of a tp = 1 model's weights and KV caches (for checking the split)."""
        m, r, tp = self.m, self.rank, self.tp
        d, hq, hkv, f = m.head_dim, self.hq, self.hkv, m.ffn // tp
        hkv_all = m.kv_heads
        kv0 = (r * hkv) % hkv_all                 # first KV head of this rank (replicated beyond kv_heads)
        q_rows = slice(r * hq * d, (r + 1) * hq * d)
        k_rows = slice(m.heads * d + kv0 * d, m.heads * d + (kv0 + hkv) * d)
        v_rows = slice((m.heads + hkv_all) * d + kv0 * d, (m.heads + hkv_all) * d + (kv0 + hkv) * d)
        rows = self.embedding.shape[0]
        self.embedding.copy_(full.embedding[r * rows:(r + 1) * rows])
        self.lm_head.copy_(full.lm_head[r * rows:(r + 1) * rows])
        self.final_norm.copy_(full.final_norm)
        for mine, src in zip(self.layers, full.layers):
            qkv = src["qkv"]
            mine["qkv"].copy_(torch_cat((qkv[q_rows], qkv[k_rows], qkv[v_rows])))
            mine["o"].copy_(src["o"][:, q_rows])
            gu = src["gate_up"]
            mine["gate_up"].copy_(torch_cat((gu[r * f:(r + 1) * f], gu[m.ffn + r * f:m.ffn + (r + 1) * f])))
            mine["down"].copy_(src["down"][:, r * f:(r + 1) * f])
            mine["norm1"].copy_(src["norm1"])
            mine["norm2"].copy_(src["norm2"])
        for (kc, vc), (kf, vf) in zip(self.cache, full.cache):
            kc.copy_(kf[:, kv0:kv0 + hkv])
            vc.copy_(vf[:, kv0:kv0 + hkv])

    def logits(self, x: Any) -> Any:
        """Last token of each sequence -> final norm -> LM head shard -> all-gathered fp32 logits [B, vocab]."""
        import torch
        import torch.distributed as dist
        import torch.nn.functional as F

        last = x.view(self.batch, self.seq, -1)[:, -1]
        h = F.rms_norm(last, (self.m.hidden,), self.final_norm, self.m.eps)
        logits = F.linear(h, self.lm_head).float()                 # [B, V/tp]
        if self.tp > 1:
            full = torch.empty((self.tp * logits.shape[0], logits.shape[1]), device=logits.device,
                               dtype=logits.dtype)
            dist.all_gather_into_tensor(full, logits, group=self.group)
            logits = full.view(self.tp, self.batch, -1).permute(1, 0, 2).reshape(self.batch, -1)
        return logits

    def head(self, x: Any) -> Any:
        """Greedy next token of each sequence (logits, then argmax)."""
        return self.logits(x).argmax(dim=-1)


def torch_cat(parts: tuple[Any, ...]) -> Any:
    """torch.cat along the first dimension (torch imported lazily)."""
    import torch

    return torch.cat(parts)
