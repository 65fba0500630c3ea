"""Batch waiting: while decodes run, new prompts are held back until the step would carry enough tokens
or they have waited long enough, so that more prompts share one prefill. This is TensorRT-LLM's
``batch_wait_max_tokens_ratio`` / ``batch_wait_timeout_iters`` (``PyExecutor._waiting_requests`` in
``tensorrt_llm/_torch/pyexecutor/py_executor.py``: applied only when the step also has generation
requests, "to avoid dead waiting"; the count of waited iterations resets when the prompts go in).
``deployment.batching.prefill_wait`` turns it on; the continuous scheduler asks :meth:`BatchWait.holds`
before each step and reports the steps it ran while holding."""
from __future__ import annotations

from typing import TYPE_CHECKING

from .schedulers.base import Cutoff, joined_before

if TYPE_CHECKING:
    from ..config.scenario import PrefillWait
    from .replica import Replica


class BatchWait:
    """One scheduling loop's batch-waiting state."""

    def __init__(self, cfg: "PrefillWait", replica: "Replica") -> None:
        self.r = replica
        self.limit = cfg.steps
        self.need = cfg.tokens_ratio * replica.max_tokens   # tokens that end the wait early
        self.waited = 0                                      # steps the waiting prompts have been held

    def holds(self, decodes: int, cutoff: Cutoff) -> bool:
        """Whether new prompts wait this step: decodes run, prompts that may join it (queued before
        ``cutoff``) wait, they have waited fewer than ``steps`` steps, and the decodes' tokens plus
        theirs stay under the threshold."""
        r = self.r
        if not decodes or not r.waiting or self.waited >= self.limit:
            return False
        req = r.reqs
        tokens, prompts = decodes * r.decode_q, 0
        for rid in r.waiting:
            if tokens >= self.need or not joined_before(req, rid, cutoff):
                break
            tokens += int(req.target[rid] - req.kv[rid])
            prompts += 1
        return prompts > 0 and tokens < self.need

    def cap(self, steps: int | None) -> int:
        """``steps`` (None: unlimited) capped at the steps the waiting prompts may still be held."""
        left = self.limit - self.waited
        return left if steps is None else min(steps, left)

    def held(self, steps: int) -> None:
        """``steps`` steps ran while the prompts were held."""
        self.waited += steps

    def released(self) -> None:
        """A prompt went in: the next wait starts from zero."""
        self.waited = 0
