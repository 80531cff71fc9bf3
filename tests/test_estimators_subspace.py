"""Tests of the subspace estimators (root-MUSIC, ESPRIT, unitary ESPRIT, 2-D root-MUSIC)
and of the covariance preprocessing (forward–backward averaging, spatial smoothing).

Scenarios:
    D1: ULA M = 16 (λ/2), K = 2 uncorrelated unit-power sources at -10.3° and 12.7°, N = 200.
    (D1 and D2 are the scenarios of benchmarks/bench_doa.py; D2 uses N = 64 there.)
    D2: ULA M = 8 (λ/2), K = 3 uncorrelated unit-power sources at -20.4°, 0.5°, 9.8°.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from isackit._dtypes import tolerance
from isackit.estimators import ESTIMATORS
from isackit.estimators.preprocessing import forward_backward, real_covariance, spatial_smoothing, unitary_matrix
from isackit.estimators.subspace import esprit as _esprit
from isackit.estimators.subspace import root_music as _root_music
from isackit.estimators.subspace import root_music_2d as _root_music_2d
from isackit.estimators.subspace import root_music_polynomial
from isackit.estimators.subspace import unitary_esprit as _unitary_esprit
from isackit.geometry.arrays import ula


# the functions return an EstimationResult; most checks here look at the angles (..., K)
def root_music(*args, **kw):
    return _root_music(*args, **kw).estimates[..., 0]


def esprit(*args, **kw):
    return _esprit(*args, **kw).estimates[..., 0]


def unitary_esprit(*args, **kw):
    return _unitary_esprit(*args, **kw).estimates[..., 0]


def root_music_2d(*args, **kw):
    return _root_music_2d(*args, **kw).estimates


def subspace_condition(R: torch.Tensor, K: int) -> float:
    """λ_max / (λ_K - λ_{K+1}): the amplification of relative rounding errors of R into its
    K-dimensional signal subspace (Davis–Kahan), hence into subspace angle estimates."""
    w = torch.linalg.eigvalsh(R)
    M = w.shape[-1]
    gap = (w[..., M - K] - w[..., M - K - 1]).clamp_min(torch.finfo(w.dtype).tiny)
    return float((w[..., -1].abs() / gap).max())

D1 = (16, (-10.3, 12.7))
D2 = (8, (-20.4, 0.5, 9.8))


def _steer(M, theta):
    """ULA λ/2 steering matrix (M, K), written out here (not the library's) as a reference."""
    m = torch.arange(M, dtype=torch.float64)[:, None]
    return torch.exp(1j * math.pi * m * torch.sin(theta)[None, :])


def _truth(scen):
    M, deg = scen
    return M, torch.deg2rad(torch.tensor(deg, dtype=torch.float64))


def _noisy_cov(M, theta, N, snr_db, trials, seed, coherent=False):
    g = torch.Generator().manual_seed(seed)
    A = _steer(M, theta)
    K = theta.numel()
    S = torch.randn(trials, K, N, dtype=torch.complex128, generator=g)  # CN(0, 1)
    if coherent:  # all sources carry the same signal, with fixed phase offsets
        S = S[:, :1, :] * torch.exp(1j * torch.linspace(0.3, 2.0, K, dtype=torch.float64))[None, :, None]
    W = torch.randn(trials, M, N, dtype=torch.complex128, generator=g) * 10 ** (-snr_db / 20)
    X = A @ S + W
    return X @ X.mH / N


def _row_weights(m):
    i = torch.arange(m, dtype=torch.float64)
    return torch.sqrt(torch.minimum(i + 1, m - i))


ALL_1D = {
    "root_music": lambda R, K: root_music(R, K),
    "esprit_ls": lambda R, K: esprit(R, K, method="ls"),
    "esprit_tls": lambda R, K: esprit(R, K, method="tls"),
    "esprit_ls_weighted": lambda R, K: esprit(R, K, method="ls", row_weights=_row_weights(R.shape[-1] - 1)),
    "esprit_tls_weighted": lambda R, K: esprit(R, K, method="tls", row_weights=_row_weights(R.shape[-1] - 1)),
    "unitary_esprit_ls": lambda R, K: unitary_esprit(R, K, method="ls"),
    "unitary_esprit_tls": lambda R, K: unitary_esprit(R, K, method="tls"),
}


# ----------------------------------------------------------------------------- noise-free exactness
@pytest.mark.parametrize("name", list(ALL_1D))
@pytest.mark.parametrize("scen", [D1, D2], ids=["D1", "D2"])
@pytest.mark.parametrize("noise", [0.0, 0.1])
def test_noise_free_covariance_exact(name, scen, noise):
    M, th = _truth(scen)
    A = _steer(M, th)
    R = A @ A.mH + noise * torch.eye(M, dtype=torch.complex128)  # exact covariance (σ² = 0 or 0.1)
    est = ALL_1D[name](R, th.numel())
    assert est.dtype == torch.float64
    assert (est - th).abs().max() < 1e-9


@pytest.mark.parametrize("M", [5, 6, 7, 9])
@pytest.mark.parametrize("shift", [1, 2])
def test_noise_free_exact_odd_even_sizes_and_shifts(M, shift):
    th = torch.tensor([-0.5, 0.1, 0.45], dtype=torch.float64)
    m = torch.arange(M, dtype=torch.float64)[:, None]
    A = torch.exp(1j * math.pi * m * torch.sin(th)[None, :])
    R = A @ A.mH
    for est in (esprit(R, 3, shift=shift), esprit(R, 3, method="tls", shift=shift),
                unitary_esprit(R, 3, shift=shift), unitary_esprit(R, 3, method="tls", shift=shift),
                root_music(R, 3)):
        assert (est - th).abs().max() < 1e-9


def test_near_endfire():
    # root-MUSIC (roots near z = -1, i.e. x → ∞ after the Cayley map) and ESPRIT stay exact
    # close to endfire; unitary ESPRIT (ω = tan(μ/2)) only up to conditioning.
    th = torch.deg2rad(torch.tensor([0.0, 88.0], dtype=torch.float64))
    A = _steer(8, th)
    R = A @ A.mH + 0.01 * torch.eye(8, dtype=torch.complex128)
    assert (root_music(R, 2) - th).abs().max() < 1e-9
    assert (esprit(R, 2) - th).abs().max() < 1e-9
    assert (unitary_esprit(R, 2) - th).abs().max() < 1e-8


def test_noise_free_single_precision_close():
    M, th = _truth(D2)
    A = _steer(M, th)
    R = (A @ A.mH).to(torch.complex64)
    for name, f in ALL_1D.items():
        est = f(R, 3)
        assert est.dtype == torch.float32, name
        assert (est.double() - th).abs().max() < 2e-3, name  # a double root in float32: ~sqrt(eps)


def test_shift_and_explicit_selection_agree():
    M, th = _truth(D2)
    A = _steer(M, th)
    R = A @ A.mH + 0.01 * torch.eye(M, dtype=torch.complex128)
    ref = esprit(R, 3, shift=2)
    sel = (list(range(0, M - 2)), list(range(2, M)))
    tol = tolerance(torch.float64, condition=subspace_condition(R, 3))
    assert torch.allclose(esprit(R, 3, selection=sel, displacement=1.0), ref, rtol=0, atol=tol)
    assert (ref - th).abs().max() < 1e-9
    assert (unitary_esprit(R, 3, shift=2) - th).abs().max() < 1e-9


def test_other_spacing():
    M, th = 10, torch.tensor([-0.4, 0.1, 0.5], dtype=torch.float64)
    d = 0.3
    m = torch.arange(M, dtype=torch.float64)[:, None]
    A = torch.exp(2j * math.pi * d * m * torch.sin(th)[None, :])
    R = A @ A.mH + 0.01 * torch.eye(M, dtype=torch.complex128)
    for f in (lambda: root_music(R, 3, d), lambda: esprit(R, 3, d, "tls"), lambda: unitary_esprit(R, 3, d)):
        assert (f() - th).abs().max() < 1e-9


# ----------------------------------------------------------------------------- independent NumPy references
def _numpy_esprit(R, K, method):
    w, U = np.linalg.eigh(R)
    Es = U[:, np.argsort(w)[::-1][:K]]
    E1, E2 = Es[:-1], Es[1:]
    if method == "ls":
        Phi = np.linalg.lstsq(E1, E2, rcond=None)[0]
    else:
        _, _, Vh = np.linalg.svd(np.hstack([E1, E2]))
        V = Vh.conj().T
        Phi = -V[:K, K:] @ np.linalg.inv(V[K:, K:])
    phi = np.linalg.eigvals(Phi)
    return np.sort(np.arcsin(np.angle(phi) / np.pi))


def _numpy_root_music(R, K):
    M = R.shape[0]
    w, U = np.linalg.eigh(R)
    En = U[:, np.argsort(w)[: M - K]]
    C = En @ En.conj().T
    coeffs = np.array([np.trace(C, offset=l) for l in range(M - 1, -M, -1)])  # descending powers
    r = np.roots(coeffs)
    inside = r[np.abs(r) < 1]
    pick = inside[np.argsort(1 - np.abs(inside))[:K]]
    return np.sort(np.arcsin(np.angle(pick) / np.pi)), coeffs


@pytest.mark.parametrize("scen", [D1, D2], ids=["D1", "D2"])
@pytest.mark.parametrize("method", ["ls", "tls"])
def test_esprit_matches_numpy(scen, method):
    M, th = _truth(scen)
    R = _noisy_cov(M, th, 50, 0.0, 5, seed=3)
    est = esprit(R, th.numel(), method=method)
    ref = np.stack([_numpy_esprit(R[b].numpy(), th.numel(), method) for b in range(R.shape[0])])
    # two LAPACK routes (eigh/solve vs lstsq/SVD): agreement to eps × the subspace's conditioning
    tol = tolerance(torch.float64, condition=subspace_condition(R, th.numel()), factor=1e3)
    np.testing.assert_allclose(est.numpy(), ref, rtol=0, atol=tol)


@pytest.mark.parametrize("scen", [D1, D2], ids=["D1", "D2"])
def test_root_music_matches_numpy_roots(scen):
    M, th = _truth(scen)
    K = th.numel()
    R = _noisy_cov(M, th, 50, 0.0, 5, seed=4)
    est = root_music(R, K)
    w, U = torch.linalg.eigh(R)
    En = U[..., : M - K]
    coeffs = root_music_polynomial(En @ En.mH)
    for b in range(R.shape[0]):
        ref, ref_coeffs = _numpy_root_music(R[b].numpy(), K)
        np.testing.assert_allclose(coeffs[b].numpy(), ref_coeffs, atol=1e-12)
        np.testing.assert_allclose(est[b].numpy(), ref, atol=1e-9)


# ----------------------------------------------------------------------------- statistics vs the CRB
def _stochastic_crb_ula(M, theta, P, s2, N):
    """Stoica–Nehorai closed-form stochastic CRB for a λ/2 ULA (independent reference):
    CRB = σ²/(2N) {Re[(D^H Π⊥ D) ⊙ (P A^H R⁻¹ A P)^T]}⁻¹, D = ∂A/∂θ."""
    A = _steer(M, theta).numpy()
    m = np.arange(M)[:, None]
    D = 1j * np.pi * m * np.cos(theta.numpy())[None, :] * A
    R = A @ P @ A.conj().T + s2 * np.eye(M)
    Pperp = np.eye(M) - A @ np.linalg.pinv(A)
    H = D.conj().T @ Pperp @ D
    G = P @ A.conj().T @ np.linalg.solve(R, A) @ P
    return s2 / (2 * N) * np.linalg.inv(np.real(H * G.T))


@pytest.mark.slow
@pytest.mark.parametrize("snr_db", [10.0, 20.0])
def test_root_music_rmse_near_crb_d1(snr_db):
    M, th = _truth(D1)
    N, trials = 200, 1500
    R = _noisy_cov(M, th, N, snr_db, trials, seed=11)
    est = root_music(R, 2)
    assert torch.isfinite(est).all()
    rmse = (est - th).pow(2).mean(0).sqrt().numpy()
    crb = np.sqrt(np.diag(_stochastic_crb_ula(M, th, np.eye(2), 10 ** (-snr_db / 10), N)))
    ratio = rmse / crb
    assert np.all(np.abs(ratio - 1) < 0.10), ratio


def test_stochastic_crb_reference_matches_library_bound():
    bounds = pytest.importorskip("isackit.bounds.doa")
    from isackit.geometry.arrays import ula
    from isackit.impairments.base import ArrayModel

    M, th = _truth(D1)
    ref = _stochastic_crb_ula(M, th, np.eye(2), 0.1, 200)
    lib = bounds.crb_doa_stochastic(ArrayModel(ula(M)), th, torch.eye(2, dtype=torch.complex128), 0.1, 200)
    np.testing.assert_allclose(lib.numpy(), ref, rtol=1e-6)


# ----------------------------------------------------------------------------- coherent sources
def test_spatial_smoothing_resolves_coherent_sources():
    # Two fully coherent sources (D1 angles, 20 dB, N = 200): the signal subspace of R has rank
    # one, plain root-MUSIC is biased by ~0.3° (median, 50× the smoothed error; 5 % of trials
    # off by > 1°), LS/TLS ESPRIT are off by tens of degrees; smoothing fixes both.
    M, th = _truth(D1)
    R = _noisy_cov(M, th, 200, 20.0, 100, seed=5, coherent=True)
    tol = math.radians(0.1)

    def err(est):
        return (est - th).abs().nan_to_num(nan=math.inf).amax(-1)

    def rmse(est):
        return (est - th).pow(2).mean().sqrt()

    plain_rm = root_music(R, 2)
    assert (err(plain_rm) > tol).float().mean() > 0.7
    assert (err(esprit(R, 2, method="tls")) > tol).all()
    assert (err(esprit(R, 2, method="ls")) > tol).all()
    smoothed = {
        "root_music_ss": root_music(spatial_smoothing(R, 3), 2),
        "root_music_fbss": root_music(spatial_smoothing(R, 2, forward_backward=True), 2),
        "esprit_ss": esprit(spatial_smoothing(R, 3), 2, method="tls"),
        "unitary_esprit_ss": unitary_esprit(spatial_smoothing(R, 2), 2),
        # forward-backward averaging alone (built into unitary ESPRIT) decorrelates two sources
        "unitary_esprit": unitary_esprit(R, 2),
    }
    for name, est in smoothed.items():
        assert (err(est) < tol).all(), name
    assert rmse(plain_rm) > 20 * rmse(smoothed["root_music_ss"])


def test_noise_free_coherent_is_rank_deficient_then_smoothing_exact():
    M, th = _truth(D2)
    A = _steer(M, th)
    s = torch.exp(1j * torch.tensor([0.0, 1.0, 2.5], dtype=torch.float64))
    R = (A @ s)[:, None] @ (A @ s)[None, :].conj()  # rank 1, three coherent sources
    for name, f in ALL_1D.items():
        assert torch.isnan(f(R, 3)).all(), name  # rank < K: NaN, never garbage
    Rs = spatial_smoothing(R, 3)
    m = M - 2
    for est in (root_music(Rs, 3), esprit(Rs, 3), esprit(Rs, 3, method="tls", row_weights=_row_weights(m - 1)),
                unitary_esprit(Rs, 3)):
        assert (est - th).abs().max() < 1e-8


# ----------------------------------------------------------------------------- degenerate input
def test_nan_input_raises():
    R = torch.eye(8, dtype=torch.complex128)
    R[0, 1] = float("nan")
    for f in list(ALL_1D.values()):
        with pytest.raises(ValueError, match="finite"):
            f(R, 2)
    with pytest.raises(ValueError, match="finite"):
        forward_backward(R)


def test_bad_arguments_raise():
    R = torch.eye(8, dtype=torch.complex128)
    with pytest.raises(ValueError, match="num_sources"):
        root_music(R, 8)
    with pytest.raises(ValueError, match="num_sources"):
        esprit(R, 0)
    with pytest.raises(ValueError, match="method"):
        esprit(R, 2, method="svd")
    with pytest.raises(ValueError, match="square"):
        root_music(torch.zeros(8, 7, dtype=torch.complex128), 2)
    with pytest.raises(TypeError, match="complex"):
        root_music(torch.eye(8), 2)
    with pytest.raises(ValueError, match="row_weights"):
        esprit(R, 2, row_weights=[1.0, 2.0])
    with pytest.raises(ValueError, match="row_weights"):
        esprit(R, 2, row_weights="optimal")
    with pytest.raises(ValueError, match="displacement"):
        esprit(R, 2, selection=([0, 1, 2], [1, 2, 3]))
    with pytest.raises(ValueError, match="num_subarrays"):
        spatial_smoothing(R, 9)


def test_zero_and_rank_deficient_give_nan_not_crash():
    M, th = _truth(D1)
    R = _noisy_cov(M, th, 200, 10.0, 3, seed=6)
    R[1] = 0  # a zero covariance inside a batch
    a = _steer(M, th[:1])
    R[2] = a @ a.mH  # rank 1 < K = 2
    for name, f in ALL_1D.items():
        est = f(R, 2)
        assert torch.isfinite(est[0]).all() and torch.isnan(est[1:]).all(), name
    res = ESTIMATORS["root_music"](ula(M), num_sources=2)(R)
    assert res.valid.tolist() == [True, False, False]
    assert res.count.tolist() == [2, 0, 0]


# ----------------------------------------------------------------------------- batching and dtypes
@pytest.mark.parametrize("name", list(ALL_1D))
def test_batch_equals_one_at_a_time(name):
    # batched and single eigen-decompositions/rootings round differently (kernel and CPU
    # dependent): agreement to eps times the subspace's condition number, not bitwise
    M, th = _truth(D2)
    R = _noisy_cov(M, th, 30, 5.0, 6, seed=8).reshape(2, 3, M, M)
    f = ALL_1D[name]
    est = f(R, 3)
    assert est.shape == (2, 3, 3)
    tol = tolerance(torch.float64, condition=subspace_condition(R, 3), factor=1e3)
    for i in range(2):
        for j in range(3):
            torch.testing.assert_close(f(R[i, j], 3), est[i, j], rtol=0, atol=tol)


def test_estimator_classes_wrap_functions():
    M, th = _truth(D2)
    R = _noisy_cov(M, th, 100, 10.0, 4, seed=9)
    cases = {
        "root_music": (dict(num_sources=3), root_music(R, 3)),
        "esprit_ls": (dict(num_sources=3, row_weights=tuple(_row_weights(M - 1).tolist())),
                      esprit(R, 3, method="ls", row_weights=_row_weights(M - 1))),
        "esprit_tls": (dict(num_sources=3, row_weights="overlap"),
                       esprit(R, 3, method="tls", row_weights=_row_weights(M - 1))),
        "unitary_esprit": (dict(num_sources=3, method="tls"), unitary_esprit(R, 3, method="tls")),
    }
    for name, (kw, ref) in cases.items():
        est = ESTIMATORS[name](ula(M), **kw)
        assert est.get_params()["num_sources"] == 3
        res = est(R)
        assert res.parameters == ("azimuth",)
        torch.testing.assert_close(res.estimates[..., 0], ref)
        assert res.valid.all() and (res.count == 3).all()
    # smoothing option inside the class == function composition
    res = ESTIMATORS["root_music"](ula(M), num_sources=3, subarrays=2, forward_backward=True)(R)
    torch.testing.assert_close(res.estimates[..., 0], root_music(spatial_smoothing(R, 2, True), 3))


@pytest.mark.parametrize("name", ["root_music", "esprit_ls", "esprit_tls", "unitary_esprit", "root_music_2d"])
@pytest.mark.parametrize("dtype", [torch.complex64, torch.complex128])
def test_examples_recover_truth(name, dtype):
    est, x, truth = ESTIMATORS[name].example(dtype=dtype)
    res = est(x)
    assert res.estimates.dtype == dtype.to_real()
    assert res.estimates.shape == truth.shape
    tol = 1e-9 if dtype == torch.complex128 else 1e-4
    assert (res.estimates - truth).abs().max() < tol


# ----------------------------------------------------------------------------- preprocessing
def test_forward_backward_and_unitary_transform():
    g = torch.Generator().manual_seed(1)
    X = torch.randn(3, 7, 20, dtype=torch.complex128, generator=g)
    R = X @ X.mH
    J = torch.eye(7, dtype=torch.complex128).flip(0)
    torch.testing.assert_close(forward_backward(R), 0.5 * (R + J @ R.conj() @ J))
    for M in (6, 7):
        Q = unitary_matrix(M)
        Jm = torch.eye(M, dtype=torch.complex128).flip(0)
        torch.testing.assert_close(Q.mH @ Q, torch.eye(M, dtype=torch.complex128))
        torch.testing.assert_close(Jm @ Q.conj(), Q)
    Q = unitary_matrix(7)
    Rfb = forward_backward(R)
    T = Q.mH @ Rfb @ Q
    assert T.imag.abs().max() < 1e-12
    torch.testing.assert_close(real_covariance(R), T.real)


def test_spatial_smoothing_matches_loop():
    g = torch.Generator().manual_seed(2)
    X = torch.randn(2, 8, 20, dtype=torch.complex128, generator=g)
    R = X @ X.mH
    L, m = 3, 6
    ref = sum(R[:, i:i + m, i:i + m] for i in range(L)) / L
    torch.testing.assert_close(spatial_smoothing(R, L), ref)
    torch.testing.assert_close(spatial_smoothing(R, L, forward_backward=True), forward_backward(ref))
    torch.testing.assert_close(spatial_smoothing(R, 1), R)


def test_preprocessing_gradcheck():
    g = torch.Generator().manual_seed(3)
    R = torch.randn(2, 5, 5, dtype=torch.complex128, generator=g, requires_grad=True)
    assert torch.autograd.gradcheck(lambda r: spatial_smoothing(r, 2, True), (R,))
    assert torch.autograd.gradcheck(real_covariance, (R,))


# ----------------------------------------------------------------------------- 2-D root-MUSIC
def _bistatic_csi(aoa, aod, delays, N, Mr, Mt, snr_db=None, trials=None, seed=0):
    """Seed-001 CSI H_n = Σ_k α_k a_r(θ_k) a_t(φ_k)^T e^{-j2π n τ_k} (τ in units of 1/Δf)."""
    ar, at = _steer(Mr, aoa), _steer(Mt, aod)
    n = torch.arange(N, dtype=torch.float64)[:, None]
    b = torch.exp(-2j * math.pi * n * torch.tensor(delays, dtype=torch.float64)[None, :])
    alpha = torch.exp(1j * torch.arange(len(delays), dtype=torch.float64))
    H = torch.einsum("nk,k,rk,tk->nrt", b, alpha, ar, at)
    if snr_db is None:
        return H
    g = torch.Generator().manual_seed(seed)
    W = torch.randn(trials, N, Mr, Mt, dtype=torch.complex128, generator=g) * 10 ** (-snr_db / 20)
    return H + W


def test_root_music_2d_noise_free_exact_and_paired():
    aoa = torch.deg2rad(torch.tensor([-20.0, 5.0, 30.0], dtype=torch.float64))
    aod = torch.deg2rad(torch.tensor([40.0, -10.0, 0.0], dtype=torch.float64))
    H = _bistatic_csi(aoa, aod, (0.05, 0.3, 0.6), N=16, Mr=8, Mt=6)
    est = root_music_2d(H, 3)
    assert est.shape == (3, 2)
    torch.testing.assert_close(est, torch.stack([aoa, aod], -1), rtol=0, atol=1e-9)


def test_root_music_2d_shared_aoa_is_paired_by_the_transmit_side():
    """Two paths with one AoA: the AoA-first order fails (rank-2 receive covariance); the mirror
    order (AoD first) recovers all three exactly, and "both" keeps it by the null spectrum."""
    aoa = torch.deg2rad(torch.tensor([12.0, 12.0, -30.0], dtype=torch.float64))
    aod = torch.deg2rad(torch.tensor([-35.0, 20.0, 5.0], dtype=torch.float64))
    H = _bistatic_csi(aoa, aod, (0.05, 0.3, 0.6), N=16, Mr=8, Mt=6)
    truth = torch.stack([aoa, aod], -1)

    def pair_error(est):  # each true (AoA, AoD) pair to its nearest estimated pair
        return (est[None, :, :] - truth[:, None, :]).abs().amax(-1).amin(-1).max()

    for first in ("both", "aod"):
        est = root_music_2d(H, 3, first=first)
        assert bool((est[1:, 0] >= est[:-1, 0]).all())  # rows sorted by AoA
        assert pair_error(est) < 1e-9
    assert not pair_error(root_music_2d(H, 3, first="aoa")) < math.radians(1.0)  # NaN (flagged) or mis-paired
    with pytest.raises(ValueError, match="first"):
        root_music_2d(H, 3, first="tx")
    with pytest.raises(ValueError, match="M_t - 1"):
        root_music_2d(H[..., :3], 3, first="aod")


def test_root_music_2d_noisy_batched():
    aoa = torch.deg2rad(torch.tensor([-10.0, 15.0], dtype=torch.float64))
    aod = torch.deg2rad(torch.tensor([20.0, -25.0], dtype=torch.float64))
    H = _bistatic_csi(aoa, aod, (0.1, 0.4), N=32, Mr=8, Mt=4, snr_db=10.0, trials=20, seed=1)
    est = root_music_2d(H, 2)
    assert est.shape == (20, 2, 2)
    err = (est - torch.stack([aoa, aod], -1)).abs()
    assert err.max() < math.radians(1.0)
    Rr = torch.einsum("...nrt,...nst->...rs", H, H.conj())  # the receive covariance it roots
    torch.testing.assert_close(root_music_2d(H[3], 2), est[3], rtol=0,
                               atol=tolerance(torch.float64, condition=subspace_condition(Rr, 2), factor=1e3))
    res = ESTIMATORS["root_music_2d"](ula(8), ula(4), num_sources=2)(H)
    assert res.parameters == ("aoa", "aod") and res.estimates.shape == (20, 2, 2)


def test_root_music_2d_bad_input():
    H = torch.zeros(4, 8, 4, dtype=torch.complex128)
    assert torch.isnan(root_music_2d(H, 2)).all()
    H[0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="finite"):
        root_music_2d(H, 2)
    with pytest.raises(ValueError, match="csi"):
        root_music_2d(torch.zeros(8, 4, dtype=torch.complex128), 1)


def test_row_weighting_improves_esprit_on_d1():
    # With maximally overlapping subarrays of a long ULA, unweighted LS/TLS ESPRIT is clearly
    # above the CRB (≈ 1.75 √CRB on D1 at 10 dB); √min(i+1, m-i) row weights bring it to ≈ 1.13.
    M, th = _truth(D1)
    R = _noisy_cov(M, th, 200, 10.0, 500, seed=12)
    w = _row_weights(M - 1)
    for method in ("ls", "tls"):
        plain = (esprit(R, 2, method=method) - th).pow(2).mean().sqrt()
        weighted = (esprit(R, 2, method=method, row_weights=w) - th).pow(2).mean().sqrt()
        assert weighted < 0.8 * plain, method


def test_root_music_2d_on_library_bistatic_channel():
    # integration with isackit.signals (seed-001 CSI synthesised by the signals layer)
    from isackit.geometry.arrays import ula
    from isackit.impairments.base import ArrayModel
    from isackit.signals.channels import mimo_ofdm_channel
    from isackit.signals.ofdm import OFDMConfig

    cfg = OFDMConfig(num_subcarriers=32, subcarrier_spacing=120e3, carrier_frequency=28e9)
    aoa = torch.tensor([-0.35, 0.1, 0.5], dtype=torch.float64)
    aod = torch.tensor([0.3, -0.6, 0.05], dtype=torch.float64)
    delays = torch.tensor([50e-9, 120e-9, 210e-9], dtype=torch.float64)
    gains = torch.tensor([1.0, 0.7j, -0.5 + 0.2j], dtype=torch.complex128)
    rx, tx = ArrayModel(ula(8).to(torch.float64)), ArrayModel(ula(4).to(torch.float64))
    H = mimo_ofdm_channel(rx, tx, aoa, aod, delays, gains, cfg)
    est = root_music_2d(H, 3)
    order = aoa.argsort()
    torch.testing.assert_close(est, torch.stack([aoa[order], aod[order]], -1), rtol=0, atol=1e-8)
