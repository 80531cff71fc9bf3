"""Tests of isackit.metrics: hand-computed cases and SciPy per-trial references."""

import math

import numpy as np
import pytest
import torch
from scipy.optimize import linear_sum_assignment

from isackit.metrics import (
    assignment_errors,
    detection_rates,
    exceedance_probability,
    failure_rate,
    gospa,
    match_estimates,
    optimal_assignment,
    rmse,
    symbol_error_rate,
    threshold_for_false_alarm,
)

NAN = float("nan")


def test_assignment_by_hand():
    est = torch.tensor([[[2.0], [1.0]], [[5.0], [-1.0]]])
    truth = torch.tensor([[1.1], [2.2]])
    err = assignment_errors(est, truth)
    torch.testing.assert_close(err, torch.tensor([[[-0.1], [-0.2]], [[-2.1], [2.8]]]))
    assert torch.allclose(rmse(est[:1], truth), torch.tensor([math.sqrt((0.01 + 0.04) / 2)]))


@pytest.mark.parametrize("n", [1, 3, 5, 7])
def test_optimal_assignment_matches_scipy(gen, n):
    cost = torch.rand(40, n, n, generator=gen, dtype=torch.float64)
    perm = optimal_assignment(cost)
    assert perm.shape == (40, n)
    for b in range(40):
        r, c = linear_sum_assignment(cost[b].numpy())
        best = cost[b].numpy()[r, c].sum()
        got = cost[b, torch.arange(n), perm[b]].sum().item()
        assert got == pytest.approx(best, rel=1e-12)
        assert sorted(perm[b].tolist()) == list(range(n))


def test_enumeration_and_scipy_paths_agree(gen):
    cost = torch.rand(3, 2, 4, 4, generator=gen, dtype=torch.float64)
    a = optimal_assignment(cost, max_enumerate=5)
    b = optimal_assignment(cost, max_enumerate=0)
    rows = torch.arange(4)
    torch.testing.assert_close(cost[..., rows, a].sum(-1), cost[..., rows, b].sum(-1))


def test_missing_estimates_and_wrapping():
    est = torch.tensor([[[0.5], [NAN]]])
    truth = torch.tensor([[1.0], [0.4]])
    aligned = match_estimates(est, truth)
    assert torch.isnan(aligned[0, 0, 0]) and aligned[0, 1, 0] == 0.5
    assert failure_rate(est, truth, 1.0) == 1.0
    torch.testing.assert_close(rmse(est, truth, missing="omit"), torch.tensor([0.1]))
    assert torch.isnan(rmse(est, truth)).all()
    # full-circle azimuths: 3.1 and -3.1 are 0.083 rad apart
    e = assignment_errors(torch.tensor([[3.1]]), torch.tensor([[-3.1]]), period=2 * math.pi)
    assert float(e) == pytest.approx(6.2 - 2 * math.pi, abs=1e-6)


def test_failure_rate_by_hand():
    truth = torch.tensor([[0.0], [1.0]])
    est = torch.tensor([[[0.05], [1.02]], [[0.5], [1.0]], [[1.0], [0.0]], [[0.0], [NAN]]])
    assert float(failure_rate(est, truth, 0.1)) == pytest.approx(0.5)  # trials 2 (0.5 off) and 4 (missing)


def test_gospa_by_hand():
    truth = torch.tensor([[0.0], [10.0]])
    one = gospa(torch.tensor([[0.5], [NAN]]), truth, c=3.0, p=2)
    assert float(one.distance) == pytest.approx(math.sqrt(0.25 + 9 / 2))
    assert int(one.missed) == 1 and int(one.false) == 0 and float(one.localisation) == pytest.approx(0.25)
    three = gospa(torch.tensor([[0.5], [20.0], [9.0]]), truth, c=3.0, p=2)
    assert float(three.distance) == pytest.approx(math.sqrt(0.25 + 1.0 + 9 / 2))
    assert int(three.missed) == 0 and int(three.false) == 1
    empty = gospa(torch.full((2, 1), NAN), truth, c=3.0)
    assert float(empty.distance) == pytest.approx(math.sqrt(2 * 9 / 2))


def _gospa_ref(x, y, c, p):
    """Independent reference: rectangular LSA on min(d, c)^p − c^p (only d < c pairs help)."""
    x = x[~np.isnan(x).any(-1)]
    y = y[~np.isnan(y).any(-1)]
    base = c**p / 2 * (len(x) + len(y))
    if len(x) == 0 or len(y) == 0:
        return base ** (1 / p)
    d = np.linalg.norm(x[:, None] - y[None], axis=-1)
    gain = np.minimum(d, c) ** p - c**p
    r, cc = linear_sum_assignment(gain)
    return (base + gain[r, cc].sum()) ** (1 / p)


def test_gospa_matches_scipy_reference(gen):
    est = torch.rand(60, 4, 2, generator=gen, dtype=torch.float64) * 10
    truth = torch.rand(60, 3, 2, generator=gen, dtype=torch.float64) * 10
    est[torch.rand(60, 4, generator=gen) < 0.3] = NAN
    truth[torch.rand(60, 3, generator=gen) < 0.2] = NAN
    for p in (1.0, 2.0):
        got = gospa(est, truth, c=2.5, p=p).distance
        ref = [_gospa_ref(est[b].numpy(), truth[b].numpy(), 2.5, p) for b in range(60)]
        np.testing.assert_allclose(got.numpy(), ref, rtol=1e-10)


def test_detection_rates_and_thresholds(gen):
    truth = torch.tensor([[0.0], [10.0]])
    est = torch.tensor([[[0.2], [30.0]], [[9.8], [0.1]]])
    pd, fa = detection_rates(est, truth, radius=1.0)
    assert float(pd) == pytest.approx(3 / 4) and float(fa) == pytest.approx(0.5)
    h0 = torch.rand(100000, generator=gen, dtype=torch.float64)
    thr = threshold_for_false_alarm(h0, 0.01)
    assert float(thr) == pytest.approx(0.99, abs=3e-3)
    assert float(exceedance_probability(h0, thr)) == pytest.approx(0.01, abs=1e-4)
    with pytest.raises(ValueError, match="pfa"):
        threshold_for_false_alarm(h0, 1.5)


def test_symbol_error_rate():
    tx = torch.tensor([[0, 1, 2, 3], [3, 2, 1, 0]])
    rx = torch.tensor([[0, 1, 2, 0], [3, 2, 1, 0]])
    assert float(symbol_error_rate(tx, rx)) == pytest.approx(1 / 8)
    with pytest.raises(ValueError, match="same shape"):
        symbol_error_rate(tx, rx[:1])


def test_validation():
    with pytest.raises(ValueError, match="same number of parameters"):
        assignment_errors(torch.zeros(2, 2), torch.zeros(2, 1))
    with pytest.raises(ValueError, match="square"):
        optimal_assignment(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="c must be positive"):
        gospa(torch.zeros(1, 1), torch.zeros(1, 1), c=0.0)


def test_metrics_follow_the_device(device):
    est = torch.tensor([[[2.0], [1.0]], [[NAN], [0.0]]], device=device)
    truth = torch.tensor([[1.0], [2.0]], device=device)
    err = assignment_errors(est, truth)
    assert err.device.type == device.type
    g = gospa(est, truth, c=1.0)
    assert g.distance.device.type == device.type
    # trial 2: the estimate at 0 is exactly c = 1 away from the target at 1, so nothing is
    # assigned: 2 missed + 1 false target, each c^p/2
    torch.testing.assert_close(g.distance.cpu(), torch.tensor([0.0, math.sqrt(3 * 0.5)]))
