"""Deterministic ML (isackit.estimators.likelihood): criterion, derivatives, exactness,
mismatched models, and efficiency on scenario D1 (stochastic CRB)."""

import math

import numpy as np
import pytest
import torch
from test_estimators_spectral import d1_covariances, d1_crb  # shared D1 scenario + CRB reference

from isackit.estimators import (
    DML,
    SearchGrid,
    alternating_projection,
    bartlett_doa,
    dml_cost,
    dml_doa,
    dml_gradient_hessian,
)
from isackit._dtypes import eps
from isackit.geometry import ArrayGeometry, ula
from isackit.impairments import ArrayModel, GainPhaseError, MutualCoupling

F64, C128 = torch.float64, torch.complex128
GRID = SearchGrid.degrees(-90, 90, 0.2)


def _cov(model, az, powers=None, noise=0.0):
    A = model.steering(torch.as_tensor(az, dtype=F64)).to(C128)
    p = torch.ones(A.shape[-1], dtype=F64) if powers is None else torch.as_tensor(powers, dtype=F64)
    return (A * p.to(C128)) @ A.mH + noise * torch.eye(A.shape[-2], dtype=C128)


def _impaired(M, gen):
    return ArrayModel(ula(M), [GainPhaseError(1 + 0.2 * torch.rand(M, generator=gen, dtype=F64),
                                              0.4 * torch.randn(M, generator=gen, dtype=F64)),
                               MutualCoupling(torch.tensor([1.0, 0.25 + 0.1j], dtype=C128))])


def test_dml_cost_matches_numpy(gen):
    X = torch.randn(3, 6, 10, dtype=C128, generator=gen)
    R = X @ X.mH / 10
    A = torch.randn(3, 6, 2, dtype=C128, generator=gen)
    An, Rn = A.numpy(), R.numpy()
    ref = [np.trace(An[b] @ np.linalg.pinv(An[b]) @ Rn[b]).real for b in range(3)]
    np.testing.assert_allclose(dml_cost(R, A).numpy(), ref, rtol=1e-12)


@pytest.mark.parametrize("impaired", [False, True])
def test_closed_form_gradient_matches_autograd(impaired, gen):
    model = _impaired(8, gen) if impaired else ArrayModel(ula(8))
    X = torch.randn(8, 40, dtype=C128, generator=gen)
    R = X @ X.mH / 40
    th = torch.tensor([-0.3, 0.25], dtype=F64, requires_grad=True)
    V = torch.diagonal(R).real.sum() - dml_cost(R, model.steering(th).to(C128))
    (auto,) = torch.autograd.grad(V, th)
    A, (D, _) = model.steering_and_derivatives(th.detach())
    grad, H = dml_gradient_hessian(R, A.to(C128), D.to(C128))
    torch.testing.assert_close(grad, auto, rtol=1e-10, atol=1e-12)
    assert torch.allclose(H, H.T) and bool((torch.linalg.eigvalsh(H) > 0).all())


@pytest.mark.parametrize("case", ["two_close", "three", "random_array", "impaired", "angle_dependent"])
def test_dml_noise_free_exact(case, gen):
    if case == "angle_dependent":
        from test_estimators_spectral import _angle_dependent_model
        model, truth = _angle_dependent_model(10, gen), torch.tensor([-0.45, 0.1, 0.62], dtype=F64)
    elif case == "random_array":
        pos = torch.zeros(9, 3, dtype=F64)
        pos[:, 1] = torch.sort(torch.rand(9, generator=gen, dtype=F64) * 4).values
        model, truth = ArrayGeometry(pos), torch.tensor([-0.4321, 0.2468], dtype=F64)
    elif case == "impaired":
        model, truth = _impaired(10, gen), torch.tensor([-0.6, 0.05, 0.3456], dtype=F64)
    elif case == "three":
        model, truth = ula(10), torch.tensor([-0.9, -0.1234, 0.55], dtype=F64)
    else:  # separation 0.1 rad < half-power beamwidth of an 8-element ULA (~0.22 rad)
        model, truth = ula(8), torch.tensor([0.1003, 0.2003], dtype=F64)
    R = _cov(model, truth, powers=torch.linspace(1.0, 2.0, truth.numel()))
    res = dml_doa(R, model, truth.numel(), GRID)
    assert bool(res.valid) and int(res.count) == truth.numel()
    torch.testing.assert_close(res.estimates[:, 0], truth, atol=1e-6, rtol=0)
    torch.testing.assert_close(res.extras["cost"], dml_cost(R, model.steering(truth).to(C128)))
    go = dml_doa(R, model, truth.numel(), GRID, grid_only=True)
    assert (go.estimates[:, 0] - truth).abs().max() <= GRID.step  # AP on the grid: within a step


def test_single_source_dml_is_bartlett(gen):
    model = ula(8)
    X = torch.randn(4, 8, 30, dtype=C128, generator=gen) + 3 * model.steering(torch.tensor([0.3], dtype=F64))
    R = X @ X.mH / 30
    d = dml_doa(R, model, 1, GRID)
    b = bartlett_doa(R, model, 1, GRID)
    torch.testing.assert_close(d.estimates, b.estimates, atol=1e-7, rtol=0)


def test_mismatched_model_gives_stationary_point_of_assumed_cost(gen):
    true_model = _impaired(10, gen)
    assumed = ArrayModel(ula(10))
    truth = torch.tensor([-0.35, 0.2], dtype=F64)
    R = _cov(true_model, truth, noise=0.01)
    res = DML(assumed, 2, grid=GRID)(R)
    th = res.estimates[:, 0]
    assert bool(res.valid) and torch.isfinite(th).all()
    A, (D, _) = assumed.steering_and_derivatives(th)
    grad, _ = dml_gradient_hessian(R, A.to(C128), D.to(C128))
    assert grad.abs().max() < 1e-8 * torch.diagonal(R).real.sum()
    # the mismatched estimate fits the assumed model better than the true angles do
    assert dml_cost(R, assumed.steering(th).to(C128)) >= dml_cost(R, assumed.steering(truth).to(C128))


def test_music_init_and_ap_agree(gen):
    # both starts converge to the same maximum of tr(P_A R); the refinement stops at steps
    # below 1e-10 rad and the cost is flat to second order there, so the two stopping points
    # agree to O(sqrt(eps)) rad, not to rounding
    R, _ = d1_covariances(10.0, 50, seed=3, dtype=C128)
    a = dml_doa(R, ula(16), 2, GRID, init="ap")
    m = dml_doa(R, ula(16), 2, GRID, init="music")
    b = dml_doa(R, ula(16), 2, GRID)  # both starts, the better one kept
    tol = math.sqrt(eps(torch.float64))
    torch.testing.assert_close(a.estimates, m.estimates, atol=tol, rtol=0)
    torch.testing.assert_close(b.estimates, a.estimates, atol=tol, rtol=0)
    assert bool((b.extras["cost"] >= torch.maximum(a.extras["cost"], m.extras["cost"]) * (1 - 1e-12)).all())
    with pytest.raises(ValueError, match="init"):
        dml_doa(R, ula(16), 2, GRID, init="bogus")


def test_alternating_projection_on_grid(gen):
    model = ula(10)
    truth = torch.tensor([-0.5, 0.1], dtype=F64)
    g = SearchGrid(-1.5, 1.5, 0.05)
    th = alternating_projection(_cov(model, truth)[None], model, 2, g)
    assert (th.sort(-1).values[0] - truth).abs().max() <= 0.025 + 1e-12


@pytest.mark.parametrize("snr_db", [10.0, 20.0])
def test_d1_dml_reaches_crb(snr_db):
    trials = 2000  # relative std of an RMSE ≈ 1/sqrt(2·2000) ≈ 1.6 %
    R, theta = d1_covariances(snr_db, trials, seed=100 + int(snr_db))
    res = DML(ula(16), 2)(R)
    assert bool(res.valid.all()) and int(res.count.min()) == 2
    rmse = (res.estimates[..., 0].double() - theta).pow(2).mean(0).sqrt().numpy()
    ratio = rmse / d1_crb(snr_db)
    assert np.all(np.abs(ratio - 1) < 0.10), ratio


def test_dml_validation():
    R = _cov(ula(4), torch.tensor([0.1], dtype=F64), noise=0.1)
    with pytest.raises(ValueError):
        dml_doa(R, ula(4), 4, GRID)
    with pytest.raises(ValueError):
        dml_doa(R, ula(5), 1, GRID)
    assert math.isfinite(float(dml_doa(R, ula(4), 1, GRID).estimates[0, 0]))
