"""Per-request state as numpy columns indexed by request id (no per-token Python objects)."""
from __future__ import annotations

import numpy as np

# status codes (0: not yet arrived)
WAITING, RUNNING, DONE, REJECTED = 1, 2, 3, 4
#: Who answered a request (index into this tuple is stored in ``served_by``).
SERVED_BY = ("gpu", "exact_cache", "semantic_cache", "small_model", "small_then_large")
#: Why a request was rejected (index into this tuple is stored in ``reject_reason``).
REJECT_REASONS = ("", "prompt + output exceed the replica's KV-cache capacity",
                  "prompt longer than max_batched_tokens without chunked prefill",
                  "prompt + output exceed the model's context length (max_position_embeddings)")


class Requests:
    """Columns of request state. Times in seconds (NaN until reached), lengths in tokens."""

    def __init__(self, prompt: np.ndarray, output: np.ndarray, arrival: np.ndarray | None = None) -> None:
        n = len(prompt)
        self.n = n
        self.prompt = np.asarray(prompt, dtype=np.int64)
        self.output = np.asarray(output, dtype=np.int64)
        nan = np.full(n, np.nan)
        self.arrival = nan.copy() if arrival is None else np.asarray(arrival, dtype=np.float64).copy()
        self.first_sched = nan.copy()   # first time any of its tokens was scheduled
        self.queued = np.full(n, -np.inf)   # when it last joined a replica's queue (-inf: re-queued by a preemption)
        self.queued_seq = np.zeros(n, dtype=np.int64)   # that replica's count of requests queued by then
        self.first_token = nan.copy()
        self.last_token = nan.copy()
        self.finish = nan.copy()
        self.max_itl = np.zeros(n)      # longest gap between two of its tokens, seconds
        self.generated = np.zeros(n, dtype=np.int64)
        self.kv = np.zeros(n, dtype=np.int64)       # tokens whose KV is cached on the GPU
        self.target = self.prompt.copy()            # tokens to prefill before decoding (re)starts
        self.prefill_computed = np.zeros(n, dtype=np.int64)  # prompt tokens computed, recompute included
        self.replica = np.full(n, -1, dtype=np.int32)
        self.preemptions = np.zeros(n, dtype=np.int32)
        self.status = np.zeros(n, dtype=np.int8)
        self.reject_reason = np.zeros(n, dtype=np.int8)
        self.cached = np.zeros(n, dtype=np.int64)           # prompt tokens served from the prefix cache
        self.first_cached = np.zeros(n, dtype=np.int64)     # of those, at the first admission
        self.on_host = np.zeros(n, dtype=bool)              # KV swapped out to host memory
        self.kv_transfer_s = np.full(n, np.nan)             # disaggregation: prefill-to-decode KV transfer
        self.served_by = np.zeros(n, dtype=np.int8)

    def reject(self, rid: int, reason: int, now: float) -> None:
        """Mark a request rejected (it never runs) with a reason code."""
        self.status[rid] = REJECTED
        self.reject_reason[rid] = reason
        self.finish[rid] = now
