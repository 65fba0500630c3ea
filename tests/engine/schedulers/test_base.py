"""The decode-run arithmetic of the schedulers' timed runs, against explicit step-by-step sums."""
from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from simulator.engine.schedulers.base import run_seconds, steps_within

durations = st.floats(1e-4, 0.5)
slopes = st.floats(-1e-7, 1e-4)   # step durations stay positive over 300 steps


@given(st.integers(1, 300), durations, slopes)
def test_run_seconds_is_the_sum_of_the_step_durations(k, d0, slope):
    explicit = sum(d0 + j * slope for j in range(k))
    assert abs(run_seconds(k, d0, slope) - explicit) <= 1e-9 * max(1.0, explicit)


@given(st.integers(1, 300), durations, slopes, st.floats(0.0, 1.2))
def test_steps_within_counts_the_steps_ended_by_then(steps, d0, slope, frac):
    elapsed = frac * run_seconds(steps, d0, slope)
    done = steps_within(elapsed, steps, d0, slope)
    ended = [k for k in range(1, steps + 1) if run_seconds(k, d0, slope) <= elapsed]
    assert done == len(ended)


def test_steps_within_at_a_step_boundary_counts_that_step() -> None:
    assert steps_within(run_seconds(3, 0.02, 0.0), 10, 0.02, 0.0) == 3
    assert steps_within(0.0, 10, 0.02, 0.0) == 0
    assert steps_within(1e9, 10, 0.02, 0.0) == 10
