"""Polling for new requests: a scheduler that takes new requests in only every N decode steps.

This is SGLang's ``--scheduler-recv-interval`` (``SchedulerRecvSkipper`` in
``python/sglang/srt/managers/scheduler_recv_skipper.py``, v0.5): each iteration of the scheduler's
loop adds the weight of the batch it launched last, 1 for a decode (or verify) step and 1,000 for
any other (a step with prefill), and receives when the sum reaches the interval, then starts again
from zero. An idle scheduler receives at once. A request that arrives between two polls stays in
the inbox: it may join only batches formed at or after the next poll.
``deployment.batching.recv_interval`` turns it on; the continuous scheduler asks :meth:`RecvPoll.cutoff`
which requests it has received, and reports every step it ran with :meth:`RecvPoll.stepped`."""
from __future__ import annotations

import math

from .schedulers.base import Cutoff

#: Weight of a step with prefill (SGLang's default weight: any forward mode but decode and verify).
PREFILL_WEIGHT = 1000


class RecvPoll:
    """One scheduling loop's polling state."""

    def __init__(self, interval: int) -> None:
        self.interval = interval
        self.count = interval        # the first batch receives
        self.cut: Cutoff = (-math.inf, 0)

    def cutoff(self, formed: Cutoff, now: float, submits: int) -> Cutoff:
        """Which requests the batch formed at ``formed`` may take: if this formation polls (the count has
        reached the interval, or the loop was idle: ``formed`` is unbounded), those queued by then, else
        those queued by the last poll. ``now`` and ``submits`` bound an idle loop's poll."""
        if formed[0] == math.inf:
            self.cut, self.count = (now, submits), 0
        elif self.count >= self.interval:
            self.cut, self.count = formed, 0
        return self.cut

    def stepped(self, steps: int, prefill: bool) -> None:
        """``steps`` steps ran; ``prefill``: the (single) step carried prefill chunks. The batches formed
        between the steps of a decode run polled whenever the count reached the interval; a run is
        planned to end at the next poll while requests wait, and cut short by an arrival, so those polls
        found nothing new to take in and only the count they leave matters."""
        if prefill:
            self.count += PREFILL_WEIGHT
        elif self.count + steps - 1 >= self.interval:   # it polled within the run
            self.count = (self.count + steps - 1) % self.interval + 1
        else:
            self.count += steps

    def steps_left(self) -> int:
        """Decode steps until the batch formed after them polls (at least 1)."""
        return max(1, self.interval - self.count)
