"""Spectral estimators, fast quadratic forms, peak search and refinement (isackit.estimators).

Layers: NumPy references for the spectra on small cases; noise-free exactness of the refined
estimators (1e-6 rad) for a ULA, an arbitrary array and an impaired model; grid-only mode to
the grid step; the statistical check on scenario D1 against the stochastic CRB.
"""

import math

import numpy as np
import pytest
import torch
from scipy.signal import find_peaks as scipy_find_peaks

from isackit._dtypes import eps
from isackit.estimators import (
    MUSIC,
    QuadraticFormDictionary,
    SearchGrid,
    angle_angle_delay_spectrum,
    angle_delay_spectrum,
    bartlett_doa,
    bartlett_spectrum,
    delay_dictionary,
    find_peaks,
    kron_dictionary,
    local_maxima,
    music2d_doa,
    music_doa,
    music_spectrum,
    mvdr_doa,
    mvdr_spectrum,
    refine_parabolic,
    soft_argmax,
)
from isackit.geometry import ArrayGeometry, ula, ura
from isackit.impairments import ArrayModel, GainPhaseError, MutualCoupling

F64, C128 = torch.float64, torch.complex128


def _cov(model, az, el=None, powers=None, noise=0.0, dtype=C128):
    A = model.steering(torch.as_tensor(az, dtype=F64), None if el is None else torch.as_tensor(el, dtype=F64))
    A = A.to(dtype)
    p = torch.ones(A.shape[-1], dtype=F64) if powers is None else torch.as_tensor(powers, dtype=F64)
    return (A * p.to(dtype)) @ A.mH + noise * torch.eye(A.shape[-2], dtype=dtype)


def _impaired_model(M, gen):
    gain = 1 + 0.2 * torch.rand(M, generator=gen, dtype=F64)
    phase = 0.5 * torch.randn(M, generator=gen, dtype=F64)
    coup = torch.tensor([1.0, 0.2 - 0.1j, 0.05j], dtype=C128)
    return ArrayModel(ula(M), [GainPhaseError(gain, phase), MutualCoupling(coup)])


def _angle_dependent_model(M, gen):
    """ULA with an angle-dependent phase error (seed 002 shape) and element displacements."""
    from isackit.impairments import ElementDisplacement, SmoothPhaseError
    Q = 2
    phase = SmoothPhaseError(0.2 * torch.randn(M, Q, generator=gen, dtype=F64),
                             0.2 * torch.randn(M, Q, generator=gen, dtype=F64),
                             0.3 * torch.rand(M, generator=gen, dtype=F64),
                             0.3 * torch.rand(M, generator=gen, dtype=F64))
    disp = ElementDisplacement(0.02 * torch.randn(M, 3, generator=gen, dtype=F64))
    return ArrayModel(ula(M), [disp, phase])


def _random_array(M, gen):
    pos = torch.zeros(M, 3, dtype=F64)
    pos[:, 1] = torch.sort(torch.rand(M, generator=gen, dtype=F64) * 0.5 * (M - 1)).values
    pos[:, 0] = 0.1 * torch.rand(M, generator=gen, dtype=F64)
    return ArrayGeometry(pos)


# --------------------------------------------------------------------------- references
def test_spectra_match_numpy_reference(gen):
    M, G = 6, 50
    X = torch.randn(3, M, 20, dtype=C128, generator=gen)
    R = X @ X.mH / 20
    A = ula(M).steering(torch.linspace(-1.2, 1.2, G, dtype=F64))
    Rn, An = R.numpy(), A.numpy()
    nrm = np.sum(np.abs(An) ** 2, 0)
    bart = np.einsum("mg,bmn,ng->bg", An.conj(), Rn, An).real / nrm
    inv = np.linalg.inv(Rn + 0.1 * np.trace(Rn, axis1=1, axis2=2).real[:, None, None] / M * np.eye(M))
    mvdr = 1 / np.einsum("mg,bmn,ng->bg", An.conj(), inv, An).real
    _, V = np.linalg.eigh(Rn)
    En = V[:, :, : M - 2]
    music = nrm / np.sum(np.abs(np.einsum("bmk,mg->bkg", En.conj(), An)) ** 2, 1)
    np.testing.assert_allclose(bartlett_spectrum(R, A).numpy(), bart, rtol=1e-10)
    np.testing.assert_allclose(mvdr_spectrum(R, A, loading=0.1).numpy(), mvdr, rtol=1e-10)
    np.testing.assert_allclose(music_spectrum(R, A, 2).numpy(), music, rtol=1e-8)


@pytest.mark.parametrize("kind", ["ula", "ura", "impaired", "random"])
def test_quadratic_form_dictionary_exact_and_compressed(kind, gen):
    M = 8
    model = {"ula": ula(M), "ura": ura(2, 4), "impaired": _impaired_model(M, gen),
             "random": _random_array(M, gen)}[kind]
    az = torch.linspace(-1.5, 1.5, 701, dtype=F64)
    el = torch.linspace(-1.0, 1.0, 701, dtype=F64).roll(300) if kind == "ura" else None
    A = model.steering(az, el).to(C128)
    qf = QuadraticFormDictionary(A)
    X = torch.randn(4, M, 30, dtype=C128, generator=gen)
    Q = X @ X.mH
    ref = (A.conj() * (Q @ A)).real.sum(-2)
    torch.testing.assert_close(qf(Q), ref, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(qf(Q, normalized=True, scale=-2.0), -2 * ref / qf.norms, rtol=1e-10, atol=1e-10)
    expected = {"ula": 2 * M - 1, "ura": None, "impaired": M * M, "random": None}[kind]
    if expected is not None:
        assert qf.num_terms == expected
    if kind == "ura":  # lags (dy, dz) in 3 x 7, ± pairs -> (3*7-1)/2 complex terms + 1 real
        assert qf.num_terms == 2 * ((3 * 7 - 1) // 2) + 1


def test_joint_spectra_match_kron_dictionary(gen):
    N, M, Mt = 8, 4, 3
    H = torch.randn(2, N, M, Mt, dtype=C128, generator=gen)
    Ar = ula(M).steering(torch.linspace(-1, 1, 7, dtype=F64))
    At = ula(Mt).steering(torch.linspace(-1, 1, 5, dtype=F64))
    Bd = delay_dictionary(torch.linspace(0, 1e-6, 6, dtype=F64), 1e6, N)
    # reference: vec(H) in (n, r, t) order against atoms b ⊗ a_r ⊗ a_t
    D = kron_dictionary(Bd, Ar, At)  # columns (d, i, j)
    ref = (D.conj().T @ H.reshape(2, -1, 1)).abs().squeeze(-1) ** 2 / (D.abs() ** 2).sum(0)
    got = angle_angle_delay_spectrum(H, Ar, At, Bd).permute(0, 3, 1, 2).reshape(2, -1)
    torch.testing.assert_close(got, ref)
    H2 = H[..., 0]
    D2 = kron_dictionary(Bd, Ar)
    ref2 = (D2.conj().T @ H2.reshape(2, -1, 1)).abs().squeeze(-1) ** 2 / (D2.abs() ** 2).sum(0)
    torch.testing.assert_close(angle_delay_spectrum(H2, Ar, Bd).transpose(-1, -2).reshape(2, -1), ref2)
    # the other contraction order gives the same map
    Bbig = delay_dictionary(torch.linspace(0, 1e-6, 40, dtype=F64), 1e6, N)
    D3 = kron_dictionary(Bbig, Ar)
    ref3 = (D3.conj().T @ H2.reshape(2, -1, 1)).abs().squeeze(-1) ** 2 / (D3.abs() ** 2).sum(0)
    torch.testing.assert_close(angle_delay_spectrum(H2, Ar, Bbig).transpose(-1, -2).reshape(2, -1), ref3)


# --------------------------------------------------------------------------- peaks
def test_find_peaks_matches_scipy(gen):
    s = torch.randn(5, 300, generator=gen, dtype=F64).cumsum(-1)
    _, idx, found = find_peaks(s, 4)
    for b in range(5):
        x = np.concatenate([[-np.inf], s[b].numpy(), [-np.inf]])
        p, _ = scipy_find_peaks(x)
        p = p - 1
        top = p[np.argsort(-s[b].numpy()[p])][:4]
        assert found[b].sum() == min(4, len(p))
        np.testing.assert_array_equal(idx[b, : len(top), 0].numpy(), top)


def test_find_peaks_2d_3d_and_missing():
    s = torch.zeros(2, 9, 11, dtype=F64)
    s[0, 2, 3], s[0, 6, 8], s[0, 0, 10] = 5.0, 3.0, 1.0
    s[1, 4, 4] = 2.0
    s = s - 1e-3 * torch.arange(99, dtype=F64).reshape(9, 11)  # break the flat plateau
    _, idx, found = find_peaks(s, 3, ndim=2)
    assert idx[0].tolist() == [[2, 3], [6, 8], [0, 10]] and found[0].all()
    assert idx[1, 0].tolist() == [4, 4] and bool(found[1, 0])
    s3 = torch.full((1, 4, 5, 6), -1.0, dtype=F64)
    s3[0, 1, 2, 3] = 1.0
    _, i3, _ = find_peaks(s3, 1, ndim=3)
    assert i3[0, 0].tolist() == [1, 2, 3]
    mono = torch.arange(10, dtype=F64)[None]  # one maximum (the edge), K = 3
    _, _, f = find_peaks(mono, 3)
    assert f.tolist() == [[True, False, False]]
    # NaN poisons its neighbourhood (max-pooling propagates NaN): never a maximum there
    assert local_maxima(torch.tensor([[0.0, float("nan"), 0.0, 0.0, 1.0]])).tolist() == [[False, False, False, False, True]]


def test_refine_parabolic_reaches_continuous_maximum():
    x0 = torch.tensor([0.30, -1.00, 2.05], dtype=F64)
    peak = torch.tensor([0.3037, -0.9951, 2.0531], dtype=F64)

    def f(x):
        return torch.cos(3 * (x - peak)) + 0.1 * torch.sin(x - peak) ** 3

    x = refine_parabolic(f, x0, step=0.01, iterations=10)
    # a maximiser is only determined to δ with f''·δ²/2 ≈ eps·|f| (the function is flat to
    # second order there): here f(peak) = 1, f''(peak) = -9, δ ≈ 7e-9
    delta = math.sqrt(2 * eps(F64) * 1.0 / 9.0)
    torch.testing.assert_close(x, peak, atol=4 * delta, rtol=0)


def test_soft_argmax_limits_and_gradient(gen):
    g = torch.linspace(-1, 1, 41, dtype=F64)
    s = torch.exp(-((g - 0.3) ** 2) / 0.01)
    hard = soft_argmax(s, [g], temperature=1e-3)
    assert abs(float(hard[0]) - 0.3) < 1e-3
    wide = soft_argmax(s, [g], temperature=1e6)
    assert abs(float(wide[0]) - float(g.mean())) < 1e-6
    S2 = torch.rand(2, 6, 7, dtype=F64, generator=gen, requires_grad=True)
    gr = [torch.linspace(0, 1, 6, dtype=F64), torch.linspace(-1, 0, 7, dtype=F64)]
    assert torch.autograd.gradcheck(lambda t: soft_argmax(t, gr, 0.3), (S2,))
    assert torch.autograd.gradcheck(lambda t: soft_argmax(t, gr, 0.3, window=1), (S2,))
    # a window excludes a second, higher-temperature-pulled peak
    two = torch.exp(-((g - 0.3) ** 2) / 0.001) + 0.9 * torch.exp(-((g + 0.5) ** 2) / 0.001)
    near = soft_argmax(two, [g], temperature=0.5, window=3)
    assert abs(float(near[0]) - 0.3) < 0.02


# --------------------------------------------------------------------------- exactness
GRID = SearchGrid.degrees(-90, 90, 0.1)


@pytest.mark.parametrize("kind", ["ula", "random", "impaired", "angle_dependent"])
def test_music_noise_free_exact(kind, gen):
    M = 10
    model = {"ula": ula(M), "random": _random_array(M, gen), "impaired": _impaired_model(M, gen),
             "angle_dependent": _angle_dependent_model(M, gen)}[kind]
    truth = torch.tensor([-0.7312, 0.1234, 0.4321], dtype=F64)  # off the grid
    R = _cov(model, truth, powers=[1.0, 2.0, 0.5])
    res = music_doa(R, model, 3, GRID)
    assert res.parameters == ("azimuth",) and bool(res.valid) and int(res.count) == 3
    torch.testing.assert_close(res.estimates[:, 0], truth, atol=1e-6, rtol=0)
    grid_only = music_doa(R, model, 3, GRID, grid_only=True)
    assert (grid_only.estimates[:, 0] - truth).abs().max() <= GRID.step / 2 + 1e-12
    # also through the estimator class, with noise and complex64
    est = MUSIC(model, 3, grid=GRID)
    r64 = est(_cov(model, truth, noise=1e-3, dtype=torch.complex64))
    assert r64.estimates.dtype == torch.float32
    torch.testing.assert_close(r64.estimates[:, 0].double(), truth, atol=1e-3, rtol=0)


def test_music2d_noise_free_exact():
    model = ura(4, 5)
    truth = torch.tensor([[-0.4123, 0.2345], [0.3011, -0.1502]], dtype=F64)
    R = _cov(model, truth[:, 0], truth[:, 1], powers=[1.0, 1.5])
    azg, elg = SearchGrid.degrees(-90, 90, 1.0), SearchGrid.degrees(-80, 80, 1.0, name="elevation")
    res = music2d_doa(R, model, 2, azg, elg)
    order = res.estimates[:, 0].argsort()
    torch.testing.assert_close(res.estimates[order], truth[truth[:, 0].argsort()], atol=1e-6, rtol=0)
    go = music2d_doa(R, model, 2, azg, elg, grid_only=True, return_spectrum=True)
    assert (go.estimates[order] - truth[truth[:, 0].argsort()]).abs().max() <= math.radians(0.5) + 1e-12
    assert go.spectrum.shape == (azg.size, elg.size) and go.grid[1].shape == (elg.size,)


@pytest.mark.parametrize("model_kind", ["ula", "impaired"])
def test_bartlett_and_mvdr_single_source_exact(model_kind, gen):
    model = ula(8) if model_kind == "ula" else ArrayModel(ula(8), [GainPhaseError(
        1 + 0.1 * torch.rand(8, generator=gen, dtype=F64), 0.3 * torch.randn(8, generator=gen, dtype=F64))])
    truth = torch.tensor([0.2468], dtype=F64)
    R = _cov(model, truth, noise=0.1)
    for fn in (bartlett_doa, mvdr_doa):
        r = fn(R, model, 1, GRID)
        assert abs(float(r.estimates[0, 0] - truth[0])) < 1e-6, fn.__name__
        g = fn(R, model, 1, GRID, grid_only=True)
        assert abs(float(g.estimates[0, 0] - truth[0])) <= GRID.step / 2 + 1e-12


def test_mvdr_singular_without_loading_is_flagged():
    model = ula(6)
    R = _cov(model, torch.tensor([0.1, 0.5], dtype=F64))  # rank 2, no noise
    r = mvdr_doa(torch.stack([R, R + 0.1 * torch.eye(6, dtype=C128)]), model, 2, GRID, loading=0.0)
    assert r.valid.tolist() == [False, True] and torch.isnan(r.estimates[0]).all()


def test_return_spectrum_and_grid(gen):
    model = ula(8)
    R = _cov(model, torch.tensor([0.3], dtype=F64), noise=0.1)
    r = music_doa(R.expand(2, 3, 8, 8), model, 1, GRID, return_spectrum=True)
    assert r.spectrum.shape == (2, 3, GRID.size) and r.grid[0].shape == (GRID.size,)
    torch.testing.assert_close(r.spectrum[0, 0], music_spectrum(R, GRID.steering(model, R), 1))


# --------------------------------------------------------------------------- statistics (D1)
def _crb_stochastic_ula(M, theta, snr, N):
    """Stoica–Nehorai stochastic CRB for a λ/2 ULA, written out in NumPy (independent reference)."""
    m = np.arange(M)[:, None]
    A = np.exp(1j * np.pi * m * np.sin(theta)[None])
    D = 1j * np.pi * m * np.cos(theta)[None] * A
    P = snr * np.eye(len(theta))
    R = A @ P @ A.conj().T + np.eye(M)
    Pp = np.eye(M) - A @ np.linalg.solve(A.conj().T @ A, A.conj().T)
    F = np.real((D.conj().T @ Pp @ D) * (P @ A.conj().T @ np.linalg.solve(R, A) @ P).T)
    return np.linalg.inv(F) / (2 * N)


def d1_covariances(snr_db, trials, seed, dtype=torch.complex64):
    """Scenario D1: ULA M=16, two uncorrelated equal-power sources at -10.3°, 12.7°, N=200."""
    g = torch.Generator().manual_seed(seed)
    M, N = 16, 200
    theta = torch.tensor([-10.3, 12.7], dtype=F64).deg2rad()
    A = ula(M).steering(theta).to(dtype)
    amp = math.sqrt(10 ** (snr_db / 10) / 2)
    S = torch.complex(torch.randn(trials, 2, N, generator=g), torch.randn(trials, 2, N, generator=g)) * amp
    W = torch.complex(torch.randn(trials, M, N, generator=g), torch.randn(trials, M, N, generator=g)) / math.sqrt(2)
    X = A @ S.to(dtype) + W.to(dtype)
    return X @ X.mH / N, theta


def d1_crb(snr_db):
    """sqrt(CRB) per source of D1: the in-test reference, checked against isackit.bounds."""
    from isackit.bounds.doa import crb_doa_stochastic
    theta = np.deg2rad([-10.3, 12.7])
    ref = _crb_stochastic_ula(16, theta, 10 ** (snr_db / 10), 200)
    lib = crb_doa_stochastic(ArrayModel(ula(16)), torch.tensor(theta), 10 ** (snr_db / 10) * torch.eye(2, dtype=C128),
                             1.0, 200)
    np.testing.assert_allclose(lib.numpy(), ref, rtol=1e-8)
    return np.sqrt(np.diag(ref))


@pytest.mark.parametrize("snr_db", [10.0, 20.0])
def test_d1_refined_music_reaches_crb(snr_db):
    trials = 2000  # relative std of an RMSE ≈ 1/sqrt(2·2000) ≈ 1.6 %
    R, theta = d1_covariances(snr_db, trials, seed=int(snr_db))
    res = MUSIC(ula(16), 2)(R)
    assert bool(res.valid.all()) and int(res.count.min()) == 2
    rmse = (res.estimates[..., 0].double() - theta).pow(2).mean(0).sqrt().numpy()
    ratio = rmse / d1_crb(snr_db)
    assert np.all(np.abs(ratio - 1) < 0.10), ratio
