"""Confidence intervals of Monte Carlo metrics: Wilson (proportions), delta method (ratios of sums)."""

from __future__ import annotations

import math

import pytest
import torch
from scipy.stats import binomtest

from isackit.metrics import ratio_interval, wilson_interval


@pytest.mark.parametrize("k,n", [(0, 50), (3, 1000), (500, 1000), (1000, 1000), (7, 13)])
def test_wilson_interval_matches_scipy(k, n):
    ref = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    lo, hi = wilson_interval(k, n, z=1.959963984540054)
    assert math.isclose(lo, ref.low, abs_tol=1e-12) and math.isclose(hi, ref.high, abs_tol=1e-12)


def test_wilson_interval_edge_cases():
    assert all(math.isnan(v) for v in wilson_interval(0, 0))
    with pytest.raises(ValueError):
        wilson_interval(5, 3)


def test_ratio_interval_of_a_mean_is_the_t_free_normal_interval():
    x = torch.tensor([0.3, 1.7, 2.2, 0.9, 1.4], dtype=torch.float64)
    n = x.numel()
    lo, hi = ratio_interval(float(x.sum()), n, float((x * x).sum()), n, float(x.sum()), n)
    half = 1.96 * float(x.std()) / math.sqrt(n)
    assert math.isclose(lo, float(x.mean()) - half, rel_tol=1e-12) and math.isclose(hi, float(x.mean()) + half,
                                                                                    rel_tol=1e-12)
    assert all(math.isnan(v) for v in ratio_interval(1.0, 1.0, 1.0, 1.0, 1.0, 1))
    assert all(math.isnan(v) for v in ratio_interval(1.0, 0.0, 1.0, 0.0, 0.0, 5))


def test_ratio_interval_covers_the_true_ratio_95_percent_of_the_time():
    """Frames with a random number of pairs y ~ 1 + Poisson(2) and squared errors x = Σ of y
    Exp(1) draws × a frame effect: R = E[x]/E[y] = 1.  2000 experiments of 400 frames each."""
    g = torch.Generator().manual_seed(0)
    E, n = 2000, 400
    y = 1 + torch.poisson(torch.full((E, n), 2.0, dtype=torch.float64), generator=g)
    effect = torch.empty(E, n, dtype=torch.float64).exponential_(1.0, generator=g)      # E = 1, shared in a frame
    ymax = int(y.max())
    draws = torch.empty(E, n, ymax, dtype=torch.float64).exponential_(1.0, generator=g)
    x = (draws * (torch.arange(ymax, dtype=torch.float64) < y[..., None])).sum(-1) * effect
    covered = 0
    for e in range(E):
        xe, ye = x[e], y[e]
        lo, hi = ratio_interval(float(xe.sum()), float(ye.sum()), float((xe * xe).sum()), float((ye * ye).sum()),
                                float((xe * ye).sum()), n)
        covered += lo <= 1.0 <= hi
    rate = covered / E
    assert abs(rate - 0.95) < 4 * math.sqrt(0.95 * 0.05 / E) + 0.01, rate
