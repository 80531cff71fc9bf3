"""Tests of source counting by MDL and AIC (Wax–Kailath)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from isackit.estimators.order import aic_order, estimate_order, information_criterion, mdl_order

D1 = (16, (-10.3, 12.7))
D2 = (8, (-20.4, 0.5, 9.8))


def _cov(scen, N, snr_db, trials, seed):
    M, deg = scen
    th = torch.deg2rad(torch.tensor(deg, dtype=torch.float64))
    A = torch.exp(1j * math.pi * torch.arange(M, dtype=torch.float64)[:, None] * torch.sin(th)[None, :])
    g = torch.Generator().manual_seed(seed)
    S = torch.randn(trials, len(deg), N, dtype=torch.complex128, generator=g)
    W = torch.randn(trials, M, N, dtype=torch.complex128, generator=g) * 10 ** (-snr_db / 20)
    X = A @ S + W
    return X @ X.mH / N


def _numpy_criteria(lam, N):
    """Straightforward per-k Wax–Kailath formulas (independent reference)."""
    lam = np.sort(lam)[::-1]
    M = lam.size
    aic, mdl = [], []
    for k in range(M):
        tail = lam[k:]
        L = N * (M - k) * np.log(np.mean(tail) / np.exp(np.mean(np.log(tail))))
        aic.append(2 * L + 2 * k * (2 * M - k))
        mdl.append(L + 0.5 * k * (2 * M - k) * np.log(N))
    return np.array(aic), np.array(mdl)


def test_criteria_match_numpy_reference():
    R = _cov(D2, 50, 0.0, 4, seed=1)
    lam = torch.linalg.eigvalsh(R)
    aic = information_criterion(lam, 50, "aic")
    mdl = information_criterion(lam, 50, "mdl")
    for b in range(4):
        ref_aic, ref_mdl = _numpy_criteria(lam[b].numpy(), 50)
        np.testing.assert_allclose(aic[b].numpy(), ref_aic, rtol=1e-10, atol=1e-8)
        np.testing.assert_allclose(mdl[b].numpy(), ref_mdl, rtol=1e-10, atol=1e-8)
        assert int(aic_order(R[b], 50)) == int(np.argmin(ref_aic))
        assert int(mdl_order(R[b], 50)) == int(np.argmin(ref_mdl))


@pytest.mark.parametrize("scen", [D1, D2], ids=["D1", "D2"])
def test_true_order_at_high_snr(scen):
    R = _cov(scen, 200, 10.0, 300, seed=2)
    K = len(scen[1])
    mdl = mdl_order(R, 200)
    aic = aic_order(R, 200)
    assert mdl.dtype == torch.int64 and mdl.shape == (300,)
    assert (mdl == K).all()  # MDL is consistent: no error in 300 trials
    # AIC is not consistent: its over-estimation probability does not vanish with N; it never
    # under-estimates at this SNR.
    assert (aic == K).float().mean() > 0.8  # measured (2000 trials): 0.95 on D1, 0.89 on D2
    assert (aic >= K).all()


def test_low_snr_underestimates():
    # At -15 dB with N = 200 the D2 sources drown in the noise eigenvalue spread: both criteria
    # under-estimate (MDL more than AIC), the documented low-SNR behaviour.
    R = _cov(D2, 200, -15.0, 300, seed=3)
    mdl, aic = mdl_order(R, 200), aic_order(R, 200)
    assert mdl.double().mean() < 2.0
    assert aic.double().mean() > mdl.double().mean()


def test_mdl_never_above_aic():
    # argmin of fit(k) + c·dof(k) is non-increasing in c and dof(k) = k(2M-k) increases, so
    # with N > e² (MDL's penalty per dof ½ log N above AIC's 1 after halving) k_MDL ≤ k_AIC.
    for snr in (-10.0, 0.0, 10.0):
        R = _cov(D1, 100, snr, 200, seed=4)
        assert (mdl_order(R, 100) <= aic_order(R, 100)).all()


def test_noise_free_and_white_limits():
    M = 8
    th = torch.tensor([-0.3, 0.2, 0.6], dtype=torch.float64)
    A = torch.exp(1j * math.pi * torch.arange(M, dtype=torch.float64)[:, None] * torch.sin(th)[None, :])
    R = torch.stack([A @ A.mH, torch.eye(M, dtype=torch.complex128), torch.zeros(M, M, dtype=torch.complex128)])
    assert mdl_order(R, 100).tolist() == [3, 0, 0]  # rank-deficient exact covariance: exact order
    assert aic_order(R, 100).tolist() == [3, 0, 0]
    assert estimate_order(R, 100, "mdl", max_sources=2).tolist() == [2, 0, 0]


def test_batch_shapes_and_dtype():
    R = _cov(D2, 100, 10.0, 6, seed=5).reshape(2, 3, 8, 8)
    k = mdl_order(R, 100)
    assert k.shape == (2, 3) and k.dtype == torch.int64
    assert torch.equal(k[1, 2], mdl_order(R[1, 2], 100))
    assert torch.equal(mdl_order(R.to(torch.complex64), 100), k)


def test_bad_input():
    R = torch.eye(4, dtype=torch.complex128)
    with pytest.raises(ValueError, match="criterion"):
        estimate_order(R, 10, "bic")
    with pytest.raises(ValueError, match="num_snapshots"):
        mdl_order(R, 0)
    with pytest.raises(ValueError, match="max_sources"):
        mdl_order(R, 10, max_sources=4)
    R[0, 0] = float("nan")
    with pytest.raises(ValueError, match="finite"):
        aic_order(R, 10)
    with pytest.raises(ValueError, match="eigenvalues"):
        information_criterion(torch.tensor([1.0, float("nan")]), 10)
