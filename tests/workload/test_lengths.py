"""Length distributions: sample statistics against the configured ones."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.errors import InputError
from simulator.workload import (
    EmpiricalLength,
    FixedLength,
    LognormalLength,
    NormalLength,
    UniformLength,
    fit_lognormal,
    sample_lengths,
)

from .helpers import FIXTURES, SHARED_TRACES, needs_shared_traces

N = 20_000


def _rng(seed: int = 1) -> np.random.Generator:
    return np.random.default_rng(seed)


def test_fixed() -> None:
    x = sample_lengths(FixedLength(dist="fixed", value=512), 100, _rng())
    assert x.dtype == np.int64 and np.all(x == 512)


def test_uniform_inclusive_range_and_mean() -> None:
    x = sample_lengths(UniformLength(dist="uniform", low=10, high=20), N, _rng())
    assert x.min() == 10 and x.max() == 20
    sd = math.sqrt((11**2 - 1) / 12)  # discrete uniform on 11 values
    assert abs(x.mean() - 15) < 4 * sd / math.sqrt(N)


def test_normal_mean_std_and_floor_of_one() -> None:
    x = sample_lengths(NormalLength(dist="normal", mean=300, std=40), N, _rng())
    assert abs(x.mean() - 300) < 4 * 40 / math.sqrt(N)
    assert abs(x.std() / 40 - 1) < 4 / math.sqrt(2 * N) + 0.01  # + rounding to integers
    y = sample_lengths(NormalLength(dist="normal", mean=2, std=10), 1000, _rng())
    assert y.min() == 1  # negative draws are clipped to 1


def test_lognormal_median_and_mean() -> None:
    median, sigma = 1020.0, 0.5
    x = sample_lengths(LognormalLength(dist="lognormal", median=median, sigma=sigma), N, _rng(4))
    # sd of the sample median of log(x) is sigma * sqrt(pi / 2) / sqrt(n).
    assert abs(math.log(np.median(x) / median)) < 4 * sigma * math.sqrt(math.pi / 2 / N) + 0.5 / median
    mean = median * math.exp(sigma**2 / 2)
    sd = mean * math.sqrt(math.exp(sigma**2) - 1)
    assert abs(x.mean() - mean) < 4 * sd / math.sqrt(N) + 0.5


def test_lognormal_from_mean_and_p50() -> None:
    x = sample_lengths(LognormalLength(dist="lognormal", mean=211, p50=129), N, _rng(5))
    sigma = math.sqrt(2 * math.log(211 / 129))
    assert abs(math.log(np.median(x) / 129)) < 4 * sigma * math.sqrt(math.pi / 2 / N) + 0.5 / 129
    sd = 211 * math.sqrt(math.exp(sigma**2) - 1)
    assert abs(x.mean() - 211) < 4 * sd / math.sqrt(N) + 0.5


def test_fit_lognormal_known_values() -> None:
    mu, sigma = fit_lognormal(mean=1155, median=1020)
    assert mu == pytest.approx(math.log(1020))
    assert sigma == pytest.approx(0.49859, abs=1e-5)  # sqrt(2 ln(1155/1020)) = sqrt(0.248596) by hand
    assert fit_lognormal(5, 5) == (math.log(5), 0.0)
    with pytest.raises(InputError, match="mean: got 3; must be >= the median"):
        fit_lognormal(3, 5)
    with pytest.raises(InputError, match="median: got 0"):
        fit_lognormal(3, 0)


def test_clip_bounds() -> None:
    cfg = LognormalLength(dist="lognormal", median=100, sigma=2, min=20, max=300)
    x = sample_lengths(cfg, N, _rng())
    assert x.min() == 20 and x.max() == 300


@settings(max_examples=80, deadline=None)
@given(
    dist=st.sampled_from(["fixed", "uniform", "normal", "lognormal"]),
    a=st.integers(1, 5000),
    b=st.integers(1, 5000),
    spread=st.floats(0.0, 3.0),
    lo=st.one_of(st.none(), st.integers(1, 100)),
    hi=st.one_of(st.none(), st.integers(100, 10_000)),
    seed=st.integers(0, 2**32),
)
def test_lengths_are_integers_at_least_one_within_clip(
    dist: str, a: int, b: int, spread: float, lo: int | None, hi: int | None, seed: int
) -> None:
    clip = {"min": lo, "max": hi}
    cfg = {
        "fixed": lambda: FixedLength(dist="fixed", value=a, **clip),
        "uniform": lambda: UniformLength(dist="uniform", low=min(a, b), high=max(a, b), **clip),
        "normal": lambda: NormalLength(dist="normal", mean=a, std=spread * a, **clip),
        "lognormal": lambda: LognormalLength(dist="lognormal", median=a, sigma=spread, **clip),
    }[dist]()
    x = sample_lengths(cfg, 500, np.random.default_rng(seed))
    assert x.dtype == np.int64 and x.shape == (500,)
    assert x.min() >= max(1, lo or 1)
    if hi is not None:
        assert x.max() <= hi


def _ecdf_gap(samples: np.ndarray, source: np.ndarray) -> float:
    """sup |F_samples - F_source| over the source's support points."""
    pts = np.unique(source)
    f_s = np.searchsorted(np.sort(samples), pts, side="right") / len(samples)
    f_src = np.searchsorted(np.sort(source), pts, side="right") / len(source)
    return float(np.max(np.abs(f_s - f_src)))


def test_empirical_reproduces_quantiles(tmp_path: Path) -> None:
    source = np.random.default_rng(0).integers(1, 4000, size=3000)
    path = tmp_path / "lengths.csv"
    path.write_text("n,other\n" + "".join(f"{v},x\n" for v in source))
    x = sample_lengths(EmpiricalLength(dist="empirical", path=path, column="n"), N, _rng(8))
    assert set(np.unique(x)) <= set(np.unique(source))
    # DKW: P(sup |F_n - F| > 0.015) <= 2 exp(-2 n 0.015^2) = 2.5e-4 for n = 20,000.
    assert _ecdf_gap(x, source) < 0.015
    qs = [0.1, 0.5, 0.9, 0.99]
    np.testing.assert_allclose(np.quantile(x, qs), np.quantile(source, qs), rtol=0.05)


def test_empirical_from_jsonl_fixture_and_relative_path() -> None:
    cfg = EmpiricalLength(dist="empirical", path=Path("mooncake_small.jsonl"), column="output_length")
    x = sample_lengths(cfg, 2000, _rng(), base_dir=FIXTURES)
    assert set(np.unique(x)) == {1, 5, 10, 20, 64}


def test_empirical_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("n\n5\n7\nseven\n")
    with pytest.raises(InputError) as info:
        sample_lengths(EmpiricalLength(dist="empirical", path=bad, column="n"), 10, _rng())
    assert str(info.value) == f"{bad}:4: got 'seven'; n must be an integer >= 1"
    with pytest.raises(InputError, match=r"missing column\(s\) tokens"):
        sample_lengths(EmpiricalLength(dist="empirical", path=bad, column="tokens"), 10, _rng())
    with pytest.raises(InputError, match="prompt_tokens.path: got '.*nope.csv'; no such file"):
        sample_lengths(
            EmpiricalLength(dist="empirical", path=tmp_path / "nope.csv", column="n"), 10, _rng(), field="prompt_tokens"
        )
    zero = tmp_path / "zero.jsonl"
    zero.write_text('{"n": 3}\n\n{"n": 0}\n')
    with pytest.raises(InputError, match=r"zero.jsonl:3: got 0; n must be an integer >= 1"):
        sample_lengths(EmpiricalLength(dist="empirical", path=zero, column="n"), 10, _rng())


def test_empirical_parquet(tmp_path: Path) -> None:
    import pandas as pd

    path = tmp_path / "l.parquet"
    pd.DataFrame({"n": [3, 4, 5]}).to_parquet(path)
    x = sample_lengths(EmpiricalLength(dist="empirical", path=path, column="n"), 300, _rng())
    assert set(np.unique(x)) == {3, 4, 5}


@needs_shared_traces
def test_empirical_on_real_trace_quantiles() -> None:
    import pandas as pd

    path = SHARED_TRACES / "AzureLLMInferenceTrace_conv.csv"
    source = pd.read_csv(path)["ContextTokens"].to_numpy()
    x = sample_lengths(EmpiricalLength(dist="empirical", path=path, column="ContextTokens"), N, _rng(12))
    assert _ecdf_gap(x, source) < 0.015
    np.testing.assert_allclose(np.quantile(x, [0.5, 0.9]), np.quantile(source, [0.5, 0.9]), rtol=0.05)
