"""Speculative decoding: draft k tokens cheaply, verify them in one target step of k + 1 tokens.

Each step of a decoding batch costs the drafting (k decode steps of a draft model on the same GPUs;
k steps of an EAGLE head, one or more decoder layers of the target's width plus its LM head; one
pass of k Medusa heads; or a small fixed cost for n-gram prompt lookup) plus one target step in
which every sequence feeds ``q`` tokens (k + 1, or the tree's ``tree_tokens``) against its context,
with logits for all of them. Draft tokens are accepted one after another, each with probability
α, until the first rejection; the target then adds one token of its own, so a step yields
1 + A tokens with P(A = j) = α^j (1 − α) for j < k and P(A = k) = α^k, and
E[1 + A] = (1 − α^(k+1)) / (1 − α). A decode run draws A for every member and step at once.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..catalog.model import ModelArch
from ..errors import InputError
from ..perf.step import BatchShape, StepCost, StepModel
from .kvcache import blocks_for

if TYPE_CHECKING:
    from ..config.scenario import Speculative
    from .decode_set import PyDecodeSet as DecodeSet

_FIRST_DRAW = 64


def expected_tokens_per_step(k: int, alpha: float) -> float:
    """Mean tokens a verify step yields per sequence: (1 − α^(k+1)) / (1 − α)."""
    return float(k + 1) if alpha >= 1 else (1.0 - alpha ** (k + 1)) / (1.0 - alpha)


def draw_tokens(rng: np.random.Generator, k: int, alpha: float, shape: tuple[int, ...]) -> np.ndarray:
    """Tokens yielded per sequence per step: 1 + min(G − 1, k), G geometric with success 1 − α."""
    if alpha <= 0:
        return np.ones(shape, dtype=np.int64)
    return 1 + np.minimum(rng.geometric(1.0 - alpha, size=shape) - 1, k)


def eagle_head(model: ModelArch, layers: int) -> ModelArch:
    """An EAGLE draft head: ``layers`` dense decoder layers of the target's width (LM head shared)."""
    return model.model_copy(update={"name": f"{model.name}-eagle-head", "num_layers": layers, "moe": None,
                                    "intermediate_size": model.dense_ffn_size, "sliding_window": None,
                                    "sliding_window_layers": 0})


@dataclass
class SpecModels:
    """What drafting runs on, shared by the replicas of a deployment."""

    cfg: "Speculative"
    target: StepModel
    draft: StepModel | None     # draft model or EAGLE head

    @property
    def q(self) -> int:
        c = self.cfg
        return c.tree_tokens if c.tree_tokens is not None else c.k + 1


def check_draft(cfg: "Speculative", model: ModelArch, draft: ModelArch) -> None:
    """A draft model must share the target's vocabulary (its tokens are the target's tokens)."""
    if draft.vocab_size != model.vocab_size:
        raise InputError("deployment.speculative.draft_model", cfg.draft_model,
                         f"vocab_size {draft.vocab_size} differs from model {model.name}'s {model.vocab_size}; "
                         "a draft model must share the target's tokenizer")


@dataclass(frozen=True)
class VerifyPlan:
    """A run of verify steps as drawn: ``steps`` steps; ``cum[j]``: tokens each member has after step j;
    ``before[j]``: before it; ``left``: tokens each member had left; ``blocks``: KV blocks each member
    holds for the whole run."""

    steps: int
    cum: np.ndarray
    before: np.ndarray
    left: np.ndarray
    blocks: np.ndarray


class Speculator:
    """Drafting costs, acceptance draws and counters of one replica."""

    def __init__(self, models: SpecModels, rng: np.random.Generator) -> None:
        self.m, self.cfg, self.rng = models, models.cfg, rng
        self.q = models.q
        self.seq_steps = 0      # Σ over verify steps of sequences verified
        self.tokens = 0         # tokens those steps yielded

    def draw(self, steps: int, n: int) -> np.ndarray:
        return draw_tokens(self.rng, self.cfg.k, self.cfg.acceptance, (steps, n))

    def extra_cost(self, shape: BatchShape) -> tuple[float, float, float]:
        """(seconds, FLOPs, bytes) of the drafting that goes with a target step of ``shape``."""
        c, m = self.cfg, self.m
        n = shape.decode_seqs
        sec = fl = by = 0.0
        if n:
            if c.method == "ngram":
                sec += c.ngram_cost_s
            elif c.method == "medusa":
                t = m.target
                h, v = t.model.hidden_size, t.model.vocab_size // t.attn_tp
                for kk, nn in ((h, h), (h, v)):
                    s, f, b = t.linear_cost(n, kk, nn, c.k)
                    sec, fl, by = sec + s, fl + f, by + b
            else:
                assert m.draft is not None
                cached = shape.decode_ctx - n * shape.decode_q
                for j in range(c.k):
                    s, f, b = m.draft.price(BatchShape.decode_total(n, cached + n * (1 + j)))
                    sec, fl, by = sec + s, fl + f, by + b
        if shape.prefill_seqs and m.draft is not None:
            s, f, b = m.draft.price(shape.prefill_part())
            sec, fl, by = sec + s, fl + f, by + b
        return sec, fl, by

    def one_step(self, dec) -> np.ndarray:
        """Tokens each member of a decode set gets from one verify step (capped at what it has left)."""
        tok = np.minimum(self.draw(1, len(dec))[0], dec.left())
        self.seq_steps += len(dec)
        self.tokens += int(tok.sum())
        return tok

    def verify_cost(self, sm: StepModel, dec: "DecodeSet", prev: np.ndarray, window: int | None) -> StepCost:
        """Price of a verify step on ``sm`` (and its drafting) when the members of ``dec`` have ``prev``
        extra tokens."""
        q = self.q
        kv = dec.kv + prev
        ctx = float(kv.sum()) + len(kv) * q
        ctx_w = float(np.minimum(kv + q, window).sum()) if window else None
        shape = BatchShape.decode_total(len(kv), ctx, ctx_w, q)
        a, b, c = sm.price(shape)
        x, y, z = self.extra_cost(shape)
        return StepCost(a + x, b + y, c + z)

    def plan_run(self, dec: "DecodeSet", free: int, block_size: int, limit: int | None = None) -> VerifyPlan | None:
        """Draw the accepted tokens of a run of verify steps until the first completion (at most ``limit``
        steps), cut where the run would need more than ``free`` KV blocks; None if under 2 steps."""
        n, q = len(dec), self.q
        rem = dec.left()
        cap = dec.left_min if limit is None else min(dec.left_min, limit)
        if cap < 2:
            return None
        tok = self.draw(min(cap, _FIRST_DRAW), n)
        while True:
            cum = np.cumsum(tok, axis=0)
            fin = (cum >= rem).any(axis=1)
            if fin.any() or len(tok) >= cap:
                steps = int(np.argmax(fin)) + 1 if fin.any() else len(tok)
                break
            tok = np.vstack([tok, self.draw(min(len(tok), cap - len(tok)), n)])
        before = np.vstack([np.zeros((1, n), dtype=np.int64), cum[: steps - 1]])
        extra = np.maximum(blocks_for(dec.kv + before + q, block_size) - dec.held, 0).sum(axis=1)
        fits = extra <= free
        if not fits.all():
            steps = min(steps, int(np.argmin(fits)))
        if steps < 2:
            return None
        blocks = blocks_for(dec.kv + before[steps - 1] + q, block_size)
        return VerifyPlan(steps, cum, before, rem, blocks)

    def accepted(self, plan: VerifyPlan, done: int) -> np.ndarray:
        """Tokens each member got from the first ``done`` steps of ``plan`` (counted)."""
        got = np.minimum(plan.cum[done - 1], plan.left)
        self.seq_steps += plan.cum.shape[1] * done
        self.tokens += int(got.sum())
        return got
