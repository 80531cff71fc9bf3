"""Tests of isackit.montecarlo: chunking invariance, determinism, statistics, bounds."""

import math

import pytest
import torch

from isackit._dtypes import tolerance
from isackit.estimators.base import EstimationResult
from isackit.montecarlo import block_seed, monte_carlo

TRUTH = torch.tensor([[-0.2, 1.0], [0.3, 2.0]], dtype=torch.float64)  # K = 2 sources, P = 2
SIGMA = torch.tensor([0.01, 0.05], dtype=torch.float64)


def simulate(n, g):
    noise = torch.randn(n, 2, 2, generator=g, dtype=torch.float64, device=g.device) * SIGMA
    return (TRUTH + noise).flip(-2)  # estimates come in the wrong order: assignment must fix it


def estimator(x):
    est = x.clone()
    est[:, 0][x[:, 0, 1] > 2.1] = float("nan")  # a "missed" source now and then
    return EstimationResult(est, ("azimuth", "delay"), (~torch.isnan(est[..., 0])).sum(-1),
                            torch.ones(x.shape[0], dtype=torch.bool))


def test_chunking_does_not_change_results():
    base = monte_carlo(simulate, estimator, 2500, truth=TRUTH, seed=7, block_size=500)
    for kwargs in ({"chunk_size": 1000}, {"chunk_size": 2500}, {"max_memory_bytes": 10**5}):
        other = monte_carlo(simulate, estimator, 2500, truth=TRUTH, seed=7, block_size=500, **kwargs)
        # the sums over 2500 trials are taken in another order: relative error ≤ (n - 1)·eps
        torch.testing.assert_close(other.rmse, base.rmse, rtol=tolerance(torch.float64, condition=2500, factor=1.0),
                                   atol=0)
        assert other.failure_rate == base.failure_rate and other.missing_rate == base.missing_rate


def test_deterministic_for_a_seed_and_different_across_seeds():
    a = monte_carlo(simulate, estimator, 1200, truth=TRUTH, seed=3, block_size=256)
    b = monte_carlo(simulate, estimator, 1200, truth=TRUTH, seed=3, block_size=256)
    c = monte_carlo(simulate, estimator, 1200, truth=TRUTH, seed=4, block_size=256)
    assert torch.equal(a.rmse, b.rmse)
    assert not torch.equal(a.rmse, c.rmse)
    assert block_seed(3, 0) != block_seed(3, 1) != block_seed(4, 1)


def test_statistics_match_the_simulated_noise():
    res = monte_carlo(simulate, estimator, 20000, truth=TRUTH, seed=0, chunk_size=5000, block_size=1000,
                      bound=SIGMA**2, failure_threshold=torch.tensor([0.02, 1.0]))
    assert res.parameters == ("azimuth", "delay")
    # RMSE of Gaussian errors of std σ (the missed-source rule barely truncates them)
    torch.testing.assert_close(res.rmse, SIGMA, rtol=0.03, atol=0)
    torch.testing.assert_close(res.root_bound, SIGMA)
    p_miss = 0.5 * math.erfc(0.1 / 0.05 / math.sqrt(2))  # P(delay of source 2 > 2.1)
    assert res.missing_rate == pytest.approx(p_miss / 2, rel=0.1)
    p_big = math.erfc(2 / math.sqrt(2))  # P(|azimuth error| > 2σ) for one source
    p_fail = 1 - (1 - p_big) ** 2 * (1 - p_miss)
    assert res.failure_rate == pytest.approx(p_fail, rel=0.08)
    assert res.n_trials == 20000 and set(res.as_dict()) >= {"rmse_azimuth", "root_bound_delay", "failure_rate"}


def test_truth_from_simulate_and_plain_tensor_estimator():
    def sim(n, g):
        t = torch.rand(n, 1, 1, generator=g, dtype=torch.float64)
        return t + 0.001 * torch.randn(n, 1, 1, generator=g, dtype=torch.float64), t

    res = monte_carlo(sim, lambda x: x, 3000, seed=1, block_size=1000, progress=False)
    assert res.rmse.shape == (1,) and float(res.rmse[0]) == pytest.approx(0.001, rel=0.05)
    assert res.failure_rate == 0.0 and res.parameters is None


def test_validation():
    with pytest.raises(ValueError, match="num_trials"):
        monte_carlo(simulate, estimator, 0, truth=TRUTH)
    with pytest.raises(ValueError, match="truth"):
        monte_carlo(simulate, estimator, 10)


def test_stop_rule_ends_early_on_whole_chunks():
    calls = []

    def stop(state):
        calls.append(state["n_trials"])
        return state["n_trials"] >= 1000

    res = monte_carlo(simulate, estimator, 5000, truth=TRUTH, seed=2, block_size=250, chunk_size=500, stop=stop)
    assert res.n_trials == 1000 and calls == [500, 1000]
    full = monte_carlo(simulate, estimator, 1000, truth=TRUTH, seed=2, block_size=250, chunk_size=500)
    # the same first 1000 trials (sums possibly in another order: ≤ (n - 1)·eps relative)
    torch.testing.assert_close(res.rmse, full.rmse, rtol=tolerance(torch.float64, condition=1000, factor=1.0), atol=0)


def test_runs_on_the_requested_device(device):
    res = monte_carlo(simulate, lambda x: x, 300, truth=TRUTH.to(device), seed=0, block_size=100, device=device)
    assert res.n_trials == 300 and res.rmse.device.type == "cpu"  # summaries come back on the CPU


def test_memory_budget_bounds_each_estimator_call():
    sizes = []

    def est(x):
        sizes.append(x.numel() * x.element_size())
        return x

    block_bytes = 100 * 2 * 2 * 8  # one block of 100 trials of (2, 2) float64
    budget = 8 * 3 * block_bytes  # memory_factor 8 × three blocks
    res = monte_carlo(simulate, est, 2000, truth=TRUTH, seed=0, block_size=100, max_memory_bytes=budget)
    assert res.n_trials == 2000 and max(sizes) == 3 * block_bytes and sum(sizes) == 2000 * 2 * 2 * 8
