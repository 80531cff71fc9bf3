"""Joint angle–delay / angle–angle–delay estimators on OFDM CSI (``isackit.estimators.joint``).

Layers: NumPy references for the smoothed covariance and the separable maps; equality with
the spectra of :mod:`isackit.estimators.spectral` on the explicit Kronecker dictionary; noise-free exact recovery (refined) and
grid-limited recovery (``grid_only``) on CSI synthesised by ``isackit.signals``; resolution of
two paths that share an angle or a delay; batch == one-at-a-time; clear errors; gradcheck.
"""

import math

import numpy as np
import pytest
import torch
from scipy.optimize import linear_sum_assignment

from isackit.bounds.doa import crb_unknown_gains
from isackit.estimators import (
    SearchGrid,
    angle_angle_delay_bartlett,
    angle_angle_delay_music,
    angle_angle_delay_mvdr,
    angle_delay_bartlett,
    angle_delay_music,
    angle_delay_mvdr,
    delay_dictionary,
    joint_music_spectrum,
    joint_mvdr_spectrum,
    kron_dictionary,
    music_spectrum,
    mvdr_spectrum,
    separable_energy,
    separable_quadratic_form,
    smoothed_covariance,
)
from isackit.estimators.grids import default_delay_grid
from isackit.geometry import ula, ura
from isackit.impairments import ArrayModel
from isackit.signals import OFDMConfig, mimo_ofdm_channel

DF = 250e3
AGRID = SearchGrid.degrees(-60.0, 60.0, 1.0)


def _assigned_error(est, truth):
    """Max |error| per parameter after optimal assignment (est, truth: (K, P) float64)."""
    cost = ((est[:, None, :] - truth[None]).abs() / truth.abs().amax(0).clamp_min(1e-30)).sum(-1)
    r, c = linear_sum_assignment(cost.numpy())
    return (est[r] - truth[c]).abs().amax(0)


def _csi_ad(truth, N=16, M=6, generator=None, noise=0.0, batch=()):
    """Angle–delay CSI (..., N, M) of paths truth (K, 2) = (azimuth, delay), random phases."""
    K = truth.shape[0]
    g = torch.Generator().manual_seed(1) if generator is None else generator
    gains = torch.polar(torch.ones(*batch, K, dtype=torch.float64),
                        2 * math.pi * torch.rand(*batch, K, generator=g, dtype=torch.float64))
    cfg = OFDMConfig(N, DF, 3.5e9)
    H = mimo_ofdm_channel(ArrayModel(ula(M)), None, truth[:, 0].expand(*batch, K), None,
                          truth[:, 1].expand(*batch, K), gains, cfg)[..., 0]
    if noise:
        H = H + noise * torch.randn(H.shape, generator=g, dtype=torch.complex128)
    return H


def _csi_aad(truth, N=8, Mr=4, Mt=3):
    K = truth.shape[0]
    gains = torch.polar(torch.ones(K, dtype=torch.float64), torch.linspace(0.3, 2.0, K, dtype=torch.float64))
    return mimo_ofdm_channel(ArrayModel(ula(Mr)), ArrayModel(ula(Mt)), truth[:, 0], truth[:, 1], truth[:, 2],
                             gains, OFDMConfig(N, DF, 3.5e9))


# ---------------------------------------------------------------------------------------
# building blocks vs references
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("fb", [False, True])
def test_smoothed_covariance_matches_numpy_loop(gen, fb):
    X = torch.randn(2, 4, 5, 3, generator=gen, dtype=torch.complex128)
    w = (2, 3, 2)
    R = smoothed_covariance(X, w, forward_backward=fb)
    for b in range(2):
        x = X[b].numpy()
        ys = [x[i:i + 2, j:j + 3, k:k + 2].reshape(-1) for i in range(3) for j in range(3) for k in range(2)]
        ref = sum(np.outer(y, y.conj()) for y in ys) / len(ys)
        if fb:
            ref = 0.5 * (ref + ref.conj()[::-1, ::-1])
        np.testing.assert_allclose(R[b].numpy(), ref, atol=1e-12)


def test_separable_energy_matches_kron_dictionary(gen):
    W = torch.randn(3, 4 * 3 * 2, 5, generator=gen, dtype=torch.complex128)
    fs = [torch.randn(w, g, generator=gen, dtype=torch.complex128) for w, g in ((4, 7), (3, 6), (2, 9))]
    ref = ((W.mH @ kron_dictionary(*fs)).abs() ** 2).sum(-2).reshape(3, 7, 6, 9)
    torch.testing.assert_close(separable_energy(W, fs), ref, rtol=1e-12, atol=1e-12)
    # chunked over the last grid axis: same numbers
    torch.testing.assert_close(separable_energy(W, fs, max_elements=500), ref, rtol=1e-12, atol=1e-12)
    ref2 = ((W[..., :12, :].mH @ kron_dictionary(*fs[:2])).abs() ** 2).sum(-2).reshape(3, 7, 6)
    torch.testing.assert_close(separable_energy(W[..., :12, :], fs[:2]), ref2, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("vandermonde_last", [False, True])
def test_separable_quadratic_form_matches_kron_dictionary(gen, vandermonde_last):
    fs = [torch.randn(w, g, generator=gen, dtype=torch.complex128) for w, g in ((3, 5), (2, 4), (4, 6))]
    if vandermonde_last:  # the co-array-merged case of the last axis (delay response)
        fs[-1] = delay_dictionary(torch.linspace(0.0, 3e-6, 6, dtype=torch.float64), DF, 4)
    X = torch.randn(2, 24, 24, generator=gen, dtype=torch.complex128)
    Q = X @ X.mH
    Kd = kron_dictionary(*fs)
    ref = (Kd.conj() * (Q @ Kd)).real.sum(-2).reshape(2, 5, 4, 6)
    torch.testing.assert_close(separable_quadratic_form(Q, fs), ref, rtol=1e-10, atol=1e-10)
    ref2 = (kron_dictionary(*fs[1:]).conj() * (Q[:, :8, :8] @ kron_dictionary(*fs[1:]))).real.sum(-2)
    torch.testing.assert_close(separable_quadratic_form(Q[:, :8, :8], fs[1:]), ref2.reshape(2, 4, 6),
                               rtol=1e-10, atol=1e-10)


def test_joint_spectra_equal_c1_spectra_on_kron_dictionary(gen):
    H = _csi_ad(torch.tensor([[-0.3, 1.1e-6], [0.25, 2.3e-6]], dtype=torch.float64), noise=0.05)
    R = smoothed_covariance(H.transpose(-1, -2), (4, 8))
    A = AGRID.steering(ula(6), H)[:4]
    B = default_delay_grid(16, DF).delays(DF, 8, H)
    D = kron_dictionary(A, B)
    G = (A.shape[1], B.shape[1])
    torch.testing.assert_close(joint_music_spectrum(R, [A, B], 2), music_spectrum(R, D, 2).reshape(G),
                               rtol=1e-8, atol=0)
    torch.testing.assert_close(joint_mvdr_spectrum(R, [A, B], 1e-3), mvdr_spectrum(R, D, 1e-3).reshape(G),
                               rtol=1e-8, atol=0)


def test_gradcheck_smoothing_and_separable_energy(gen):
    X = torch.randn(3, 4, generator=gen, dtype=torch.complex128, requires_grad=True)
    f1 = torch.randn(2, 3, generator=gen, dtype=torch.complex128, requires_grad=True)
    f2 = torch.randn(3, 2, generator=gen, dtype=torch.complex128)

    def fn(X, f1):
        R = smoothed_covariance(X, (2, 3))
        return separable_energy(R, [f1, f2])

    assert torch.autograd.gradcheck(fn, (X, f1))

    def fq(X, f1):  # MVDR-type map: differentiable in Q (hence the data) and the leading factors
        R = smoothed_covariance(X, (2, 3))
        return separable_quadratic_form(R + R.mH, [f1, f2])

    assert torch.autograd.gradcheck(fq, (X, f1))


# ---------------------------------------------------------------------------------------
# noise-free recovery
# ---------------------------------------------------------------------------------------
AD_TRUTH = torch.tensor([[-0.4123, 1.234e-6], [0.2871, 2.71e-6]], dtype=torch.float64)
RES_16 = 1.0 / (16 * DF)  # delay resolution 1/(NΔf)


@pytest.mark.parametrize("kw", [{}, {"subarray": 4}, {"forward_backward": True, "subband": 10}])
def test_angle_delay_music_noise_free_exact(kw):
    H = _csi_ad(AD_TRUTH)
    dgrid = default_delay_grid(16, DF)
    res = angle_delay_music(H, ula(6), 2, AGRID, dgrid, DF, **kw)
    assert res.parameters == ("azimuth", "delay") and int(res.count) == 2
    err = _assigned_error(res.estimates, AD_TRUTH)
    assert err[0] < 1e-6 and err[1] < 1e-3 * RES_16
    g = angle_delay_music(H, ula(6), 2, AGRID, dgrid, DF, grid_only=True, **kw)
    gerr = _assigned_error(g.estimates, AD_TRUTH)
    assert gerr[0] <= AGRID.step and gerr[1] <= dgrid.step
    # grid-only estimates are grid points
    k = (g.estimates[:, 0] - AGRID.start) / AGRID.step
    assert torch.allclose(k, k.round(), atol=1e-9)


def test_returned_spectra_equal_the_pure_functions():
    H = _csi_ad(AD_TRUTH, noise=0.05)
    dgrid = default_delay_grid(16, DF)
    R = smoothed_covariance(H.transpose(-1, -2), (6, 8))
    fs = [AGRID.steering(ula(6), H), dgrid.delays(DF, 8, H)]
    res = angle_delay_music(H, ula(6), 2, AGRID, dgrid, DF, return_spectrum=True)
    assert res.spectrum.shape == (AGRID.size, dgrid.size) and len(res.grid) == 2
    torch.testing.assert_close(res.spectrum, joint_music_spectrum(R, fs, 2), rtol=1e-6, atol=0)
    res = angle_delay_mvdr(H, ula(6), 2, AGRID, dgrid, DF, return_spectrum=True)
    torch.testing.assert_close(res.spectrum, joint_mvdr_spectrum(R, fs, 1e-3), rtol=1e-8, atol=0)


def test_angle_delay_mvdr_and_bartlett():
    H = _csi_ad(AD_TRUTH)
    dgrid = default_delay_grid(16, DF)
    # MVDR: biased by the loading only (bias ∝ loading, noise-free).  The refined estimate is
    # only resolved to ~1e-9 rad / 1e-9·RES (parabolic steps + rounding), so the loading's
    # effect is compared where the bias is far above that floor: loading 0.1 (bias ≈ 7e-9 rad,
    # 4e-8·RES) against 1e-3 (100× smaller bias, at the floor).
    e1 = _assigned_error(angle_delay_mvdr(H, ula(6), 2, AGRID, dgrid, DF, loading=1e-1).estimates, AD_TRUTH)
    e3 = _assigned_error(angle_delay_mvdr(H, ula(6), 2, AGRID, dgrid, DF, loading=1e-3).estimates, AD_TRUTH)
    assert e3[0] < 1e-6 and e3[1] < 1e-3 * RES_16
    assert e1[0] > 2e-9 and e1[1] > 1e-8 * RES_16  # the bias at 0.1 is above the floor ...
    assert e3[0] < e1[0] / 5 and e3[1] < e1[1] / 5  # ... and shrinks with the loading
    g = angle_delay_mvdr(H, ula(6), 2, AGRID, dgrid, DF, grid_only=True).estimates
    gerr = _assigned_error(g, AD_TRUTH)
    assert gerr[0] <= AGRID.step and gerr[1] <= dgrid.step
    # Bartlett: exact for one path after refinement, grid-limited otherwise
    H1 = _csi_ad(AD_TRUTH[:1])
    e = _assigned_error(angle_delay_bartlett(H1, ula(6), 1, AGRID, dgrid, DF).estimates, AD_TRUTH[:1])
    assert e[0] < 1e-6 and e[1] < 1e-3 * RES_16
    e = _assigned_error(angle_delay_bartlett(H1, ula(6), 1, AGRID, dgrid, DF, grid_only=True).estimates,
                        AD_TRUTH[:1])
    assert e[0] <= AGRID.step / 2 + 1e-12 and e[1] <= dgrid.step / 2 + 1e-18


AAD_TRUTH = torch.tensor([[-0.3123, 0.4417, 1.234e-6], [0.3871, -0.2035, 2.71e-6]], dtype=torch.float64)
RES_8 = 1.0 / (8 * DF)
G_AOA = SearchGrid.degrees(-60.0, 60.0, 2.0, name="aoa")
G_AOD = SearchGrid.degrees(-60.0, 60.0, 2.0, name="aod")


def test_angle_angle_delay_music_noise_free_exact():
    H = _csi_aad(AAD_TRUTH)
    dgrid = default_delay_grid(8, DF)
    res = angle_angle_delay_music(H, ula(4), ula(3), 2, G_AOA, G_AOD, dgrid, DF, subband=4)
    assert res.parameters == ("aoa", "aod", "delay") and res.estimates.shape == (2, 3)
    err = _assigned_error(res.estimates, AAD_TRUTH)
    assert err[:2].max() < 1e-6 and err[2] < 1e-3 * RES_8
    g = angle_angle_delay_music(H, ula(4), ula(3), 2, G_AOA, G_AOD, dgrid, DF, subband=4, grid_only=True)
    gerr = _assigned_error(g.estimates, AAD_TRUTH)
    assert gerr[:2].max() <= G_AOA.step and gerr[2] <= dgrid.step
    # with rx sub-arrays as well
    res = angle_angle_delay_music(H, ula(4), ula(3), 2, G_AOA, G_AOD, dgrid, DF, subband=5, rx_subarray=3)
    err = _assigned_error(res.estimates, AAD_TRUTH)
    assert err[:2].max() < 1e-6 and err[2] < 1e-3 * RES_8


def test_angle_angle_delay_mvdr_and_bartlett():
    H = _csi_aad(AAD_TRUTH)
    dgrid = default_delay_grid(8, DF)
    e = _assigned_error(angle_angle_delay_mvdr(H, ula(4), ula(3), 2, G_AOA, G_AOD, dgrid, DF,
                                               loading=1e-4).estimates, AAD_TRUTH)
    assert e[:2].max() < 1e-6 and e[2] < 1e-3 * RES_8
    H1 = _csi_aad(AAD_TRUTH[1:])
    b = angle_angle_delay_bartlett(H1, ula(4), ula(3), 1, G_AOA, G_AOD, dgrid, DF, return_spectrum=True)
    e = _assigned_error(b.estimates, AAD_TRUTH[1:])
    assert e[:2].max() < 1e-6 and e[2] < 1e-3 * RES_8
    assert b.spectrum.shape == (G_AOA.size, G_AOD.size, dgrid.size) and len(b.grid) == 3
    g = angle_angle_delay_bartlett(H1, ula(4), ula(3), 1, G_AOA, G_AOD, dgrid, DF, grid_only=True)
    e = _assigned_error(g.estimates, AAD_TRUTH[1:])
    assert e[:2].max() <= G_AOA.step / 2 + 1e-12 and e[2] <= dgrid.step / 2 + 1e-18


def test_two_paths_sharing_an_angle_or_a_delay_are_resolved():
    dgrid = default_delay_grid(16, DF)
    # same angle, delays 1.5 resolutions apart: sub-band smoothing decorrelates the paths
    truth = torch.tensor([[0.1, 1.0e-6], [0.1, 1.0e-6 + 1.5 * RES_16]], dtype=torch.float64)
    res = angle_delay_music(_csi_ad(truth), ula(6), 2, AGRID, dgrid, DF)
    err = _assigned_error(res.estimates, truth)
    assert int(res.count) == 2 and err[0] < 1e-6 and err[1] < 1e-3 * RES_16
    # same delay, angles 0.6 beamwidths apart: every sub-band sees the two paths with the same
    # relative phase (rank one), only sub-array smoothing separates them
    truth = torch.tensor([[0.05, 1.5e-6], [0.05 + 0.6 * 2 / 6, 1.5e-6]], dtype=torch.float64)
    H = _csi_ad(truth)
    res = angle_delay_music(H, ula(6), 2, AGRID, dgrid, DF, subarray=4)
    err = _assigned_error(res.estimates, truth)
    assert int(res.count) == 2 and err[0] < 1e-6 and err[1] < 1e-3 * RES_16
    bad = _assigned_error(angle_delay_music(H, ula(6), 2, AGRID, dgrid, DF).estimates, truth)
    assert bad[0] > 1e-2


def test_batch_equals_one_at_a_time_with_noise():
    g = torch.Generator().manual_seed(7)
    H = _csi_ad(AD_TRUTH, generator=g, noise=0.1, batch=(2, 3)).to(torch.complex64)
    dgrid = default_delay_grid(16, DF)
    for fn in (angle_delay_music, angle_delay_mvdr):
        res = fn(H, ula(6), 2, AGRID, dgrid, DF, chunk_size=4)
        assert res.estimates.shape == (2, 3, 2, 2) and res.count.shape == (2, 3)
        for i in range(2):
            for j in range(3):
                one = fn(H[i, j], ula(6), 2, AGRID, dgrid, DF).estimates
                torch.testing.assert_close(res.estimates[i, j], one, rtol=2e-4, atol=2e-4 * RES_16)
        # noisy but high SNR: close to the truth
        e = (res.estimates.double() - AD_TRUTH).abs().amax((0, 1, 2))
        assert e[0] < math.radians(1.0) and e[1] < 0.1 * RES_16


def test_impaired_array_model_is_exact_and_refuses_subarrays():
    """Any assumed ArrayModel works with the full aperture (its derivatives drive the GN
    refinement); sub-array smoothing is refused for a non-shift-invariant response."""
    from isackit.impairments import GainPhaseError
    imp = GainPhaseError(torch.tensor([1.0, 0.8, 1.2, 0.9, 1.1, 1.0], dtype=torch.float64),
                         torch.tensor([0.0, 0.3, -0.2, 0.5, 0.1, -0.4], dtype=torch.float64), known=True)
    model = ArrayModel(ula(6), [imp])
    gains = torch.tensor([1.0 + 0.0j, 0.6 - 0.5j], dtype=torch.complex128)
    H = mimo_ofdm_channel(model, None, AD_TRUTH[:, 0], None, AD_TRUTH[:, 1], gains, OFDMConfig(16, DF, 3.5e9))[..., 0]
    dgrid = default_delay_grid(16, DF)
    err = _assigned_error(angle_delay_music(H, model, 2, AGRID, dgrid, DF).estimates, AD_TRUTH)
    assert err[0] < 1e-6 and err[1] < 1e-3 * RES_16
    with pytest.raises(ValueError, match="shift-invariant"):
        angle_delay_music(H, model, 2, AGRID, dgrid, DF, subarray=4)


# ---------------------------------------------------------------------------------------
# statistics: RMSE vs the deterministic CRB (unknown gains), fixed seed
# ---------------------------------------------------------------------------------------
def test_rmse_against_crb_at_10_db():
    """Refined Bartlett = the single-path ML (RMSE ≈ sqrt(CRB)); smoothed MUSIC on two paths
    loses a little (measured ≈ 1.1–1.25 × sqrt(CRB) here).  300 trials: the RMSE ratio has a
    relative standard deviation of about 4 %."""
    M, N, T, snr = 6, 16, 300, 10.0
    arr, dgrid = ula(M), default_delay_grid(N, DF)

    def response(e):  # η = (θ_1, τ_1, θ_2, τ_2, …) → vec(H) atoms (N·M, K), row-major over (N, M)
        A, B = arr.steering(e[..., 0::2]), delay_dictionary(e[..., 1::2], DF, N)
        return (B[..., :, None, :] * A[..., None, :, :]).flatten(-3, -2)

    noise_var = 10 ** (-snr / 10)
    g = torch.Generator().manual_seed(3)
    for K, fn, lo, hi in ((1, angle_delay_bartlett, 0.85, 1.2), (2, angle_delay_music, 0.85, 1.5)):
        truth = AD_TRUTH[:K]  # sorted by azimuth, as the estimates are
        gains = torch.ones(K, dtype=torch.complex128)
        sd = crb_unknown_gains(response, truth.reshape(-1), gains, noise_var).diagonal().sqrt().reshape(K, 2)
        H0 = (response(truth.reshape(-1)) @ gains).reshape(N, M)
        H = H0 + math.sqrt(noise_var) * torch.randn(T, N, M, generator=g, dtype=torch.complex128)
        res = fn(H, arr, K, AGRID, dgrid, DF)
        ratio = (res.estimates - truth).square().mean(0).sqrt() / sd
        assert bool(((ratio > lo) & (ratio < hi)).all()), (fn.__name__, ratio)


# ---------------------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------------------
def test_clear_errors():
    H = _csi_ad(AD_TRUTH)
    dgrid = default_delay_grid(16, DF)
    with pytest.raises(ValueError, match="M=6"):
        angle_delay_music(H[..., :5], ula(6), 2, AGRID, dgrid, DF)
    with pytest.raises(TypeError, match="complex"):
        angle_delay_music(H.real, ula(6), 2, AGRID, dgrid, DF)
    with pytest.raises(ValueError, match="window"):
        angle_delay_music(H, ula(6), 2, AGRID, dgrid, DF, subband=17)
    with pytest.raises(ValueError, match="window"):
        angle_delay_music(H, ula(6), 2, AGRID, dgrid, DF, subband=16)  # one window < 2 targets
    with pytest.raises(ValueError, match="num_sources"):
        angle_delay_music(H, ula(6), 12, AGRID, dgrid, DF, subband=2)
    # sub-array smoothing on a non-shift-invariant array response
    Hu = torch.zeros(16, 4, dtype=torch.complex128)
    Hu[0, 0] = 1.0
    with pytest.raises(ValueError, match="shift-invariant"):
        angle_delay_music(Hu, ura(2, 2), 1, AGRID, dgrid, DF, subarray=3)
