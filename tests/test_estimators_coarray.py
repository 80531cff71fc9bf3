"""Coarray spectrum / projection and the (sparse) conjugate-gradient solvers (seed 002)."""

import math

import pytest
import torch

from isackit.estimators import (
    PRINTED_ALGORITHM_1,
    SCG,
    QuadraticFormDictionary,
    SearchGrid,
    bartlett_spectrum,
    coarray_manifold,
    coarray_projection,
    coarray_signal,
    coarray_spectrum,
    conjugate_gradient,
    sparse_conjugate_gradient,
)
from isackit.geometry import ula
from isackit.impairments import ArrayModel, SmoothPhaseError

EPS64 = torch.finfo(torch.float64).eps


def _grid(step=0.1, lo=-60.0, hi=60.0):
    n = round((hi - lo) / step)
    return torch.deg2rad(torch.linspace(lo, hi, n + 1, dtype=torch.float64))


def _random_cov(M, batch=(), seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(*batch, M, 3 * M, dtype=torch.complex128, generator=g)
    return X @ X.mH / (3 * M)


def test_coarray_spectrum_is_kronecker_dbf_and_bartlett_power():
    A = ula(4).steering(_grid())
    R = _random_cov(4, (5,))
    explicit = (coarray_manifold(A).mH @ coarray_signal(R).unsqueeze(-1)).squeeze(-1)
    assert explicit.imag.abs().max() <= 1e3 * EPS64 * explicit.real.abs().max()
    raw = coarray_spectrum(R, A, normalized=False)
    scale = raw.abs().max()
    assert (raw - explicit.real).abs().max() <= 1e3 * EPS64 * scale
    assert (raw - 4 * bartlett_spectrum(R, A)).abs().max() <= 1e3 * EPS64 * scale
    # unit-norm convention, fast dictionary path, batched == one at a time
    unit = coarray_spectrum(R, A)
    assert (unit * 16 - raw).abs().max() <= 1e3 * EPS64 * scale
    assert (coarray_spectrum(R, QuadraticFormDictionary(A)) - unit).abs().max() <= 1e3 * EPS64 * scale / 16
    for i in range(5):
        assert (coarray_spectrum(R[i], A) - unit[i]).abs().max() <= 1e3 * EPS64 * scale / 16


def test_coarray_signal_is_column_stacked():
    R = _random_cov(3)
    y = coarray_signal(R)
    assert y[1] == R[1, 0] and y[3] == R[0, 1]


def test_projection_closed_form_rank_and_eigenvalues():
    A = ula(4).steering(_grid())
    P = coarray_projection(A)
    dense = coarray_projection(A, dense=True)
    assert P.rank_bound == 7  # 2M - 1 merged coarray lags
    assert (P.dense() - dense).abs().max() <= 1e3 * EPS64
    assert (dense - dense.T).abs().max() <= 1e3 * EPS64
    assert torch.allclose(P.diagonal(), torch.ones(1201, dtype=torch.float64))
    ev = torch.linalg.eigvalsh(dense * 16).flip(0)  # unnormalised steering vectors
    expected = torch.tensor([5002.3, 4171.9, 3427.4, 2658.0, 1969.4, 1270.8, 716.3], dtype=torch.float64)
    assert torch.allclose(ev[:7], expected, rtol=2e-4)
    assert ev[7:].abs().max() <= 1e-9 * ev[0]  # numerical rank exactly 2M - 1
    assert ev.min() >= -1e-9 * ev[0]  # PSD


def test_noise_free_on_grid_source_is_exactly_a_column_of_p():
    g = _grid()
    A = ula(4).steering(g)
    P = coarray_projection(A)
    l0 = 450
    a = A[:, l0:l0 + 1]
    eta_hat = coarray_spectrum(a @ a.mH, A)
    onehot = torch.zeros(1201, dtype=torch.float64)
    onehot[l0] = 1.0
    assert (P.matvec(onehot) - eta_hat).abs().max() <= 1e3 * EPS64


def _full_system():
    A = ula(4).steering(_grid())
    return coarray_projection(A), torch.randn(1201, dtype=torch.float64, generator=torch.Generator().manual_seed(3))


def test_cg_is_exact_in_2m_iterations_on_the_coarray_system():
    P, b = _full_system()
    after7 = conjugate_gradient(lambda x: P.matvec(x) + 0.1 * x, b, iterations=7).residuals[-1]
    after8 = conjugate_gradient(lambda x: P.matvec(x) + 0.1 * x, b, iterations=8)
    assert after7 > 1e-3  # not before: eight distinct eigenvalues of P + λI
    assert after8.residuals[-1] < 1e-10
    x_ref = torch.linalg.solve(P.dense() + 0.1 * torch.eye(1201, dtype=torch.float64), b)
    assert (after8.solution - x_ref).norm() <= 1e-8 * x_ref.norm()


def test_cg_matches_a_direct_solve_and_stops_on_tolerance():
    g = torch.Generator().manual_seed(0)
    B = torch.randn(4, 12, 12, dtype=torch.float64, generator=g)
    Q = B @ B.mT + 0.5 * torch.eye(12, dtype=torch.float64)
    b = torch.randn(4, 12, dtype=torch.float64, generator=g)
    res = conjugate_gradient(Q, b, iterations=100, tol=1e-12)
    ref = torch.linalg.solve(Q, b)
    assert torch.allclose(res.solution, ref, rtol=1e-8, atol=1e-8)
    assert bool(res.converged.all()) and int(res.iterations.max()) < 100
    assert bool((res.residuals[..., -1] <= 1e-12).all())


def test_scg_with_mu_zero_equals_cg():
    P, b = _full_system()
    for n in (3, 8, 20):
        cg = conjugate_gradient(lambda x: P.matvec(x) + 0.1 * x, b, iterations=n).solution
        scg = sparse_conjugate_gradient(P, b, lam=0.1, mu=0.0, iterations=n).solution
        assert (scg - cg).norm() <= 1e-9 * cg.norm(), n
    # z enters as b = data + λz
    z = torch.linspace(0, 1, 1201, dtype=torch.float64)
    a = sparse_conjugate_gradient(P, b, z, lam=0.1, iterations=8).solution
    c = sparse_conjugate_gradient(P, b + 0.1 * z, lam=0.1, iterations=8).solution
    assert (a - c).norm() <= 1e-10 * c.norm()


def test_printed_algorithm_1_diverges_even_without_sparsity():
    P, b = _full_system()
    printed = {**PRINTED_ALGORITHM_1, "mu": 0.0}
    assert sparse_conjugate_gradient(P, b, lam=0.1, iterations=8, **printed).residuals[-1] > 10
    assert sparse_conjugate_gradient(P, b, lam=0.1, iterations=50, **printed).residuals[-1] > 100
    # each printed slip alone already breaks it
    assert sparse_conjugate_gradient(P, b, lam=0.1, iterations=50, denominator="P").residuals[-1] > 1e3
    assert sparse_conjugate_gradient(P, b, lam=0.1, iterations=50, gradient_at="previous").residuals[-1] > 1e2
    assert sparse_conjugate_gradient(P, b, lam=0.1, iterations=50).residuals[-1] < 1e-9


@pytest.mark.parametrize("attractor, expected", [
    ("rza", [2.0 - 0.5 / 1.5, -1.0 + 0.5 / 2.0, 3.0]),       # sgn(x_l) / (1 + ε|x_l|), element-wise
    ("paper", [2.0 - 0.5 / 2.5, -1.0 + 0.5 / 2.5, 3.0]),     # sgn(x) / (1 + ε‖x‖₁), eq. (29)
    ("none", [2.0, -1.0, 3.0]),
])
def test_zero_attractors_on_hand_computed_vectors(attractor, expected):
    # P = I, λ = 0: from x0 the first CG step lands exactly on b (α = 1), then the attractor
    # evaluated at x0 = (1, -2, 0) moves it by -μ·α·∇s(x0) with μ = 0.5, ε = 0.5.
    P = torch.eye(3, dtype=torch.float64)
    b = torch.tensor([2.0, -1.0, 3.0], dtype=torch.float64)
    x0 = torch.tensor([1.0, -2.0, 0.0], dtype=torch.float64)
    res = sparse_conjugate_gradient(P, b, lam=0.0, mu=0.5, eps=0.5, attractor=attractor, iterations=1, x0=x0)
    assert torch.allclose(res.solution, torch.tensor(expected, dtype=torch.float64), atol=1e-14)
    # the printed, unscaled step (t = 1) is the same here because α = 1; a nonnegative clamp
    clamp = sparse_conjugate_gradient(P, b, lam=0.0, mu=0.5, attractor=attractor, iterations=1, x0=x0,
                                      nonnegative=True)
    assert torch.allclose(clamp.solution, torch.tensor(expected, dtype=torch.float64).clamp_min(0))


def test_cg_and_scg_gradcheck():
    g = torch.Generator().manual_seed(1)
    A = ula(4).steering(_grid(step=5.0))
    P = coarray_projection(A)
    L = P.size
    b = torch.randn(2, L, dtype=torch.float64, generator=g, requires_grad=True)
    z = torch.rand(2, L, dtype=torch.float64, generator=g, requires_grad=True)

    def cg(b):
        return conjugate_gradient(lambda x: P.matvec(x) + 0.1 * x, b, iterations=5).solution

    def scg(b, z):
        return sparse_conjugate_gradient(P, b, z, lam=0.1, mu=0.05, iterations=5).solution

    assert torch.autograd.gradcheck(cg, (b,))
    assert torch.autograd.gradcheck(scg, (b, z))


def _fwhm(spec, grid_deg):
    s = spec / spec.max()
    i = int(s.argmax())
    lo, hi = i, i
    while lo > 0 and s[lo] >= 0.5:
        lo -= 1
    while hi < s.numel() - 1 and s[hi] >= 0.5:
        hi += 1
    return float(grid_deg[hi] - grid_deg[lo]), float(grid_deg[i])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_standalone_scg_sharpens_the_coarray_beam_of_an_impaired_source(seed):
    arr = ula(4)
    imp = SmoothPhaseError.sample(4, None, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    a = ArrayModel(arr, [imp]).steering(torch.tensor([math.radians(-15.0)], dtype=torch.float64))
    R = (a @ a.mH).to(torch.complex128)
    est = SCG(arr, 1, return_spectrum=True)
    res = est(R)
    grid_deg = torch.rad2deg(res.grid[0])
    cdbf = coarray_spectrum(R, arr.steering(res.grid[0]))
    w_scg, peak = _fwhm(res.spectrum, grid_deg)
    w_dbf, _ = _fwhm(cdbf, grid_deg)
    assert w_scg <= 0.25 * w_dbf
    assert abs(peak + 15.0) <= 1.5
    assert abs(math.degrees(float(res.estimates[0, 0])) - peak) < 1e-9


def test_scg_rejects_bad_options():
    P, b = _full_system()
    with pytest.raises(ValueError, match="attractor"):
        sparse_conjugate_gradient(P, b, attractor="l1")
    with pytest.raises(ValueError, match="mu"):
        sparse_conjugate_gradient(P, b, mu=-1.0)
    with pytest.raises(ValueError, match="1201"):
        sparse_conjugate_gradient(P, b[:100])
    with pytest.raises(TypeError):
        coarray_spectrum(torch.eye(4, dtype=torch.complex128), torch.ones(4, 5))


def test_scg_estimator_grid_default_is_the_seed_field_of_view():
    est = SCG(ula(4))
    assert est.grid.size == 1201
    assert isinstance(est.grid, SearchGrid)
