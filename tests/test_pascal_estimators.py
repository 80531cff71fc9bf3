"""Estimators of seed 003 (S3 spec §2.3–2.7, §2.11, A6, A7): exactness, monotone AO-ML, batching, JLDD."""

import math
from dataclasses import replace

import pytest
import torch

from isackit.estimators.jldd import mle_mle, mrc_detect, music_mle
from isackit.estimators.statistical import (
    KnownPilots,
    LikelihoodSearch,
    ao_ml,
    canonical_angles,
    music_doppler,
    sequential_init,
    statistical_mle,
)
from isackit.geometry import horizontal_ura
from isackit.impairments.distributions import GainPhaseDistribution, RicianGain, VonMisesPhase
from isackit.signals.constellations import constellation_points
from isackit.signals.frames import FrameLayout, draw_element_errors, received_frame, uplink_signal

F64, C128 = torch.float64, torch.complex128
ARR = horizontal_ura(4, 4, wavelength=0.125)
D0 = GainPhaseDistribution(RicianGain(1.0, 0.1), VonMisesPhase(10.0))
LAYOUT = FrameLayout(10, 101, 1e5)
TIGHT = LikelihoodSearch(angle_tol=1e-10, doppler_tol=1e-7, nll_rtol=1e-16, max_iterations=60)


def _drones(*ids):
    table = {1: (20.0, 30.0, 10.0), 2: (45.0, 50.0, 15.0), 3: (70.0, 40.0, 20.0)}
    rows = []
    for i in ids:
        az, el, v = table[i]
        rows.append([math.radians(az), math.radians(el), v * math.cos(math.radians(el)) / 0.125])
    return torch.tensor(rows, dtype=F64)


def _pilots(K, L, seed=0):
    g = torch.Generator().manual_seed(seed)
    q = torch.randint(0, 4, (K, L), generator=g).double()
    return torch.polar(torch.ones(K, L, dtype=F64), math.pi / 4 + q * math.pi / 2).to(C128)


def _scenario(ids=(2, 3), L=10):
    eta = _drones(*ids)
    K = eta.shape[0]
    wave = _pilots(K, L) * math.sqrt(1.0 / K)
    return eta, wave, LAYOUT.pilot_times(L)


def _close(est, truth, ang=1e-6, dop=1e-3):
    d = est - truth
    assert float(d[..., :2].abs().max()) <= ang, d
    assert float(d[..., 2].abs().max()) <= dop, d


@pytest.mark.parametrize("ids", [(1,), (2, 3)], ids=["one-drone", "drones-2-3"])
def test_noise_and_error_free_data_give_the_truth(ids):
    eta, wave, t = _scenario(ids)
    kp = KnownPilots.from_errors(ARR, wave, t, 1e-3, None)
    y = kp.signal(eta)
    _close(statistical_mle(y, kp).estimates, eta)
    _close(ao_ml(y, kp, TIGHT).estimates, eta)
    _close(music_doppler(y, kp).estimates, eta)


def test_genie_ml_exact_with_known_errors_and_equal_to_ideal_ml_for_unit_errors():
    eta, wave, t = _scenario((2, 3))
    zeta = D0.sample(16, (), torch.Generator().manual_seed(3), F64).to(C128)[:, None]  # (M, 1)
    kp_true = KnownPilots.from_errors(ARR, wave, t, 1e-3, None)
    y = zeta * kp_true.signal(eta)
    genie = KnownPilots.genie(ARR, wave, t, 1e-3, zeta)
    _close(statistical_mle(y, genie, starts=("init", "aoml")).estimates, eta)
    # ζ ≡ 1: the genie model is the ideal-array model, so the G-ML is the ideal-array ML
    g = torch.Generator().manual_seed(4)
    y1 = kp_true.signal(eta) + 0.05 * torch.randn(16, 10, generator=g, dtype=C128)
    a = statistical_mle(y1, KnownPilots.genie(ARR, wave, t, 0.0025, torch.ones(16, 1, dtype=C128)),
                        starts=("init", "aoml")).estimates
    b = statistical_mle(y1, KnownPilots.from_errors(ARR, wave, t, 0.0025, None), starts=("init", "aoml")).estimates
    torch.testing.assert_close(a, b, rtol=0, atol=1e-10)


def _noisy_batch(B, snr_db, law=D0, coherence="frame", ids=(2, 3), seed=5):
    eta, wave, t = _scenario(ids)
    g = torch.Generator().manual_seed(seed)
    kp = KnownPilots.from_errors(ARR, wave, t, 10 ** (-snr_db / 10), law, coherence)
    z = draw_element_errors(law, 16, (B,), coherence=coherence, num_signals=t.numel(), generator=g, dtype=C128)
    y = received_frame(kp.signal(eta).expand(B, 16, t.numel()), z, 10 ** (-snr_db / 10), g)
    return y, kp, eta


@pytest.mark.slow
def test_ao_ml_objective_never_increases():
    y, kp, _ = _noisy_batch(4, 10.0)
    res = ao_ml(y, kp)
    h = res.extras["nll_history"]
    steps = h[:, 1:] - h[:, :-1]
    assert bool((steps <= 1e-12 * h[:, 1:].abs()).all()), steps
    assert res.extras["estimate_history"].shape == (4, h.shape[1], 2, 3)
    assert int(res.extras["iterations"].max()) >= 5  # a real alternation, not a one-step exit
    # the MLE polishes the AO-ML point: never a worse likelihood
    mle = statistical_mle(y, kp, starts=("aoml",))
    # the same AO-ML on the same trials: equal up to where two runs of an iterative maximiser may
    # stop if one rounding differs (sqrt(eps), not bitwise)
    torch.testing.assert_close(mle.extras["aoml"], res.estimates, rtol=0,
                               atol=math.sqrt(torch.finfo(torch.float64).eps))
    assert bool((mle.extras["nll"] <= res.extras["nll"] + 1e-9 * res.extras["nll"].abs()).all())


@pytest.mark.slow
def test_batch_equals_one_at_a_time_for_noisy_trials():
    y, kp, _ = _noisy_batch(3, 10.0, seed=6)
    search = replace(LikelihoodSearch(), max_iterations=8)
    batch = ao_ml(y, kp, search)
    for i in range(3):
        one = ao_ml(y[i], kp, search)
        # refined minimisers agree to O(√ε) relative (batched BLAS rounds differently)
        torch.testing.assert_close(batch.estimates[i], one.estimates, rtol=1e-7, atol=1e-9)
        assert int(batch.extras["iterations"][i]) == int(one.extras["iterations"])


def test_sequential_init_and_canonical_angles():
    eta, wave, t = _scenario((1, 3))
    kp = KnownPilots.from_errors(ARR, wave, t, 1e-3, None)
    init = sequential_init(kp.signal(eta), kp).estimates
    # on the default 4° / 20 Hz grids the initial point lies in the main lobe (≈ 26° wide) of the
    # truth, within two grid steps (the least-squares score Re(a^H z) is biased in angle by the
    # phase that a Doppler grid offset leaves); the refinements start from there
    assert float((init[..., :2] - eta[..., :2]).abs().max()) <= math.radians(8.0)
    assert float((init[..., 2] - eta[..., 2]).abs().max()) <= 20.0
    # (φ, −ϑ) and (φ + π, π − ϑ) are the same planar-array response
    x = torch.tensor([[0.3, -0.4, 1.0], [0.3 + math.pi, math.pi - 0.4, 1.0]], dtype=F64)
    torch.testing.assert_close(canonical_angles(x), torch.tensor([[0.3, 0.4, 1.0], [0.3, 0.4, 1.0]], dtype=F64))


def test_bad_inputs_are_clear_errors():
    eta, wave, t = _scenario((2, 3))
    kp = KnownPilots.from_errors(ARR, wave, t, 1e-3, None)
    with pytest.raises(ValueError):
        ao_ml(torch.zeros(15, 10, dtype=C128), kp)
    with pytest.raises(ValueError):
        KnownPilots.from_errors(ARR, wave, t[:3], 1e-3, None)
    with pytest.raises(ValueError):
        KnownPilots.from_errors(ARR, wave, t, 1e-3, None, coherence="slot")
    with pytest.raises(ValueError):
        music_doppler(kp.signal(eta)[..., :1], replace(kp, waveforms=wave[:, :1], times=t[:1]))
    # a zero observation is flagged, not a crash
    res = statistical_mle(torch.stack([kp.signal(eta), torch.zeros(16, 10, dtype=C128)]), kp)
    assert res.valid.tolist() == [True, False] and bool(torch.isnan(res.estimates[1]).all())


def _subframe(N, B, snr_db=None, seed=7):
    eta = _drones(2, 3)
    K = 2
    t = FrameLayout(1, N, 1e5).times()[0]
    pts = constellation_points("psk16", C128)
    pil = _pilots(K, 1)[:, 0]
    amp = torch.full((K,), math.sqrt(0.5), dtype=F64)
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(0, 16, (B, K, N), generator=g)
    idx[..., 0] = -1
    sym = pts[idx.clamp(min=0)]
    sym[..., 0] = pil
    E = eta.expand(B, K, 3)
    u = uplink_signal(ARR, E[..., 0], E[..., 1], E[..., 2], amp.expand(B, K), sym, t)
    y = u if snr_db is None else received_frame(u, None, 10 ** (-snr_db / 10), g)
    return y, eta, t, pts, pil, amp, idx


def test_jldd_noise_free_windows_recover_truth_and_symbols():
    y, eta, t, pts, pil, amp, idx = _subframe(12, 2)
    init = eta.expand(2, 2, 3).clone()
    init[..., :2] += 1e-3  # a window-1 estimate near the truth (as AO-ML gives without noise)
    for fn in (mle_mle, music_mle):
        res = fn(y, ARR, pil, amp, t, pts, 1e-3, init=init, init_doppler="aoml")
        assert res.estimates.shape == (2, 12, 2, 3) and res.symbols.shape == (2, 2, 12)
        assert bool((res.symbols[..., 1:] == idx[..., 1:]).all()), fn.__name__
        _close(res.estimates[:, -1], eta.expand(2, 2, 3), ang=1e-6, dop=1e-3)
        assert bool((res.symbols[..., 0] == -1).all())
    d = mrc_detect(y, eta.expand(2, 2, 3), t, pts, ARR)
    assert d.shape == (2, 2, 12)


@pytest.mark.slow
def test_jldd_improves_with_the_window_and_beats_dldd():
    y, eta, t, pts, pil, amp, idx = _subframe(41, 12, snr_db=20.0)
    res = mle_mle(y, ARR, pil, amp, t, pts, 10 ** -2.0)
    err = (res.estimates - eta).pow(2)
    rmse = err[..., :2].mean((0, 2, 3)).sqrt()
    assert float(rmse[-1]) < 0.5 * float(rmse[0])
    ser_jldd = (res.symbols[..., 1:] != idx[..., 1:]).double().mean()
    ser_dldd = (mrc_detect(y, res.estimates[:, 0], t, pts, ARR)[..., 1:] != idx[..., 1:]).double().mean()
    assert float(ser_jldd) < float(ser_dldd)
