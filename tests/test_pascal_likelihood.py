"""Statistical likelihood, structured FIM and average CRLB of seed 003 (S3 spec §2.1–2.2, §2.10, A2–A5, B1)."""

import math

import pytest
import torch

from isackit.bounds.average import fisher_random_gain_phase
from isackit.bounds.fisher import batched_jacobian, fisher_deterministic, fisher_gaussian
from isackit.bounds.statistical import average_crlb, fisher_statistical, genie_crb
from isackit.estimators.statistical import (
    KnownPilots,
    _nll_conj_gradient,
    _steer,
    model_jacobian,
    statistical_fim,
    statistical_nll,
)
from isackit.geometry import horizontal_ura, steering_matrix
from isackit.impairments.distributions import ComplexGaussianErrors, GainPhaseDistribution, RicianGain, VonMisesPhase
from isackit.signals.frames import FrameLayout

F64, C128 = torch.float64, torch.complex128
D0 = GainPhaseDistribution(RicianGain(1.0, 0.1), VonMisesPhase(10.0))
ARR = horizontal_ura(4, 4, wavelength=0.125)
LAYOUT = FrameLayout(10, 101, 1e5)


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _two_drones(T=4, seed=0):
    g = _gen(seed)
    eta = torch.tensor([[math.radians(45.0), math.radians(50.0), 77.1],
                        [math.radians(70.0), math.radians(40.0), 122.6]], dtype=F64)
    pil = torch.polar(torch.ones(2, T, dtype=F64), 2 * math.pi * torch.rand(2, T, generator=g, dtype=F64))
    wave = pil * torch.tensor([[1.0], [0.7]], dtype=F64)
    return eta, wave.to(C128), LAYOUT.pilot_times(T)


def _dense(u, mu, v, s2, coherence):
    """Stacked mean (M T) and dense block covariance (M T × M T), antenna-major."""
    M, T = u.shape[-2:]
    mean = (mu * u).reshape(-1)
    if coherence == "frame":
        blocks = [v * u[m, :, None] * u[m, None, :].conj() + s2 * torch.eye(T, dtype=u.dtype) for m in range(M)]
        C = torch.block_diag(*blocks)
    else:
        C = torch.diag((v * u.abs() ** 2 + s2).reshape(-1)).to(u.dtype)
    return mean, C


@pytest.mark.parametrize("coherence", ["frame", "signal"])
def test_structured_likelihood_equals_dense_gaussian_density(coherence):
    eta, wave, t = _two_drones()
    m = D0.moments()
    kp = KnownPilots.from_errors(ARR, wave, t, 0.3, D0, coherence)
    g = _gen(1)
    y = torch.randn(16, 4, generator=g, dtype=C128) + kp.signal(eta)
    eta_test = eta + 0.05 * torch.randn(eta.shape, generator=g, dtype=F64)
    u = kp.signal(eta_test)
    mean, C = _dense(u, m.mean, m.variance, 0.3, coherence)
    e = y.reshape(-1) - mean
    dense = 16 * 4 * math.log(math.pi) + torch.logdet(C).real + (e.conj() @ torch.linalg.solve(C, e)).real
    got = kp.nll(y, eta_test, full=True)
    assert float(got) == pytest.approx(float(dense), rel=1e-12)


def test_single_drone_frame_likelihood_is_beamformer_plus_noncoherent_term():
    # −ℓ σ²(σ² + v‖b‖²) = 2 μ σ² Re(a^H r(f)) + v ‖r(f)‖² + const,  r_m = b(f)^H y_m  (spec A3)
    m = D0.moments()
    t = LAYOUT.pilot_times(10)
    wave = torch.ones(1, 10, dtype=C128) * 0.8
    kp = KnownPilots.from_errors(ARR, wave, t, 0.5, D0, "frame")
    g = _gen(2)
    y = torch.randn(16, 10, generator=g, dtype=C128)
    etas = torch.stack([torch.rand(5, generator=g, dtype=F64) * 2 - 1, torch.rand(5, generator=g, dtype=F64),
                        torch.rand(5, generator=g, dtype=F64) * 400 - 200], -1)[:, None, :]
    nll = kp.nll(y, etas)
    s2, v, mu, nb = 0.5, m.variance, m.mean.real, 0.64 * 10
    b = wave[0] * torch.polar(torch.ones(5, 10, dtype=F64), 2 * math.pi * etas[:, 0, 2, None] * t)
    r = (b.conj()[:, None, :] * y).sum(-1)  # (5, M)
    a = _steer(ARR.positions_like(etas), ARR.wavelength, etas[..., 0], etas[..., 1])[..., 0]
    J = 2 * mu * s2 * (a.conj() * r).sum(-1).real + v * (r.abs() ** 2).sum(-1)
    lhs = -nll * s2 * (s2 + v * nb)
    diff = lhs - J
    assert torch.allclose(diff, diff[0].expand(5), rtol=0, atol=1e-9 * float(J.abs().max()))


def test_fast_steering_and_closed_form_jacobian():
    eta, wave, t = _two_drones(T=3)
    A = _steer(ARR.positions_like(eta), ARR.wavelength, eta[:, 0], eta[:, 1])
    torch.testing.assert_close(A, steering_matrix(ARR.positions_like(eta), eta[:, 0], eta[:, 1], ARR.wavelength),
                               rtol=0, atol=1e-13)
    u, J = model_jacobian(ARR, eta, wave, t)
    Jref = batched_jacobian(lambda p: model_jacobian(ARR, p.reshape(2, 3), wave, t)[0], eta.reshape(6), 2)
    torch.testing.assert_close(J, Jref, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("coherence", ["frame", "signal"])
def test_likelihood_gradcheck_and_analytic_gradient(coherence):
    eta, wave, t = _two_drones(T=3)
    m = D0.moments()
    g = _gen(3)
    kp = KnownPilots.from_errors(ARR, wave, t, 0.4, D0, coherence)
    y = kp.signal(eta) + 0.5 * torch.randn(16, 3, generator=g, dtype=C128)
    x = (eta + 0.02).clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda e: kp.nll(y, e), (x,))
    u0 = kp.signal(eta).detach().clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda u: statistical_nll(y, u, m.mean, m.variance, 0.4, coherence), (u0,))
    # the analytic Wirtinger gradient used by the Fisher-scoring steps equals autograd
    u, Jac = model_jacobian(ARR, eta + 0.02, wave, t)
    G = _nll_conj_gradient(y, u, torch.tensor(m.mean, dtype=C128).reshape(1, 1), m.variance,
                           torch.tensor(0.4, dtype=F64), coherence == "frame")
    g_an = 2 * (G.conj()[..., None] * Jac).real.sum((0, 1))
    (g_ad,) = torch.autograd.grad(kp.nll(y, x), x)
    torch.testing.assert_close(g_an, g_ad.reshape(6), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("coherence", ["frame", "signal"])
@pytest.mark.parametrize("law", [D0, ComplexGaussianErrors(0.9 + 0.2j, 0.3)], ids=["rice-vm", "cn-complex-mean"])
def test_structured_fim_equals_slepian_bangs_on_dense_covariance(coherence, law):
    eta, wave, t = _two_drones(T=5)
    m = law.moments()
    s2 = 0.2
    F = fisher_statistical(ARR, eta, wave, t, s2, law, coherence)

    def mean_fn(p):
        return m.mean * model_jacobian(ARR, p.reshape(*p.shape[:-1], 2, 3), wave, t)[0].flatten(-2)

    def cov_fn(p):
        u = model_jacobian(ARR, p.reshape(2, 3), wave, t)[0]
        return _dense(u, m.mean, m.variance, s2, coherence)[1]

    Fd = fisher_gaussian(mean_fn, cov_fn, eta.reshape(6), num_snapshots=1)
    torch.testing.assert_close(F, Fd, rtol=1e-8, atol=1e-8 * float(Fd.abs().max()))


def test_genie_fim_equals_deterministic_fim():
    eta, wave, t = _two_drones(T=5)
    z = D0.sample(16, (3,), _gen(4), F64)[..., None]  # three draws (3, M, 1)
    u, J = model_jacobian(ARR, eta, wave, t)
    F = statistical_fim(u, J, z, 0.0, 0.2, "signal")
    Fd = fisher_deterministic(lambda p: z * model_jacobian(ARR, p.reshape(*p.shape[:-1], 2, 3), wave, t)[0],
                              eta.reshape(6), 0.2, event_ndim=2)
    torch.testing.assert_close(F, Fd, rtol=1e-10, atol=1e-10 * float(Fd.abs().max()))
    crb = genie_crb(ARR, eta, wave, t, 0.2, z)
    ref = torch.stack([torch.diagonal(torch.linalg.inv(Fd[i])) for i in range(3)]).mean(0).reshape(2, 3)
    torch.testing.assert_close(crb, ref, rtol=1e-10, atol=0)


# B1 (S3 specification §5.2): √CRLB of drone 1 (20°, 30°, 69.3 Hz), 4 × 4 URA, L = 10 pilots, D0.
# Columns: frame proper (seed) | signal proper | signal improper (library) | no errors; φ°/ϑ°/f Hz.
B1 = {
    -10: ((3.503, 4.792, 8.32), (3.348, 4.639, 8.25), (3.360, 4.654, 8.28), (3.175, 4.398, 7.83)),
    0: ((1.512, 1.928, 2.80), (1.110, 1.538, 2.74), (1.142, 1.582, 2.82), (1.004, 1.391, 2.47)),
    10: ((1.131, 1.301, 0.95), (0.484, 0.670, 1.19), (0.540, 0.748, 1.33), (0.317, 0.440, 0.78)),
    20: ((1.085, 1.215, 0.30), (0.366, 0.508, 0.90), (0.404, 0.559, 0.99), (0.100, 0.139, 0.25)),
    30: ((1.080, 1.206, 0.10), (0.353, 0.488, 0.87), (0.379, 0.525, 0.93), (0.032, 0.044, 0.08)),
}


@pytest.mark.parametrize("snr_db", list(B1))
def test_average_crlb_reproduces_table_b1(snr_db):
    eta = torch.tensor([[math.radians(20.0), math.radians(30.0), 10 * math.cos(math.radians(30.0)) / 0.125]],
                       dtype=F64)
    t = LAYOUT.pilot_times()
    w = torch.ones(1, 10, dtype=C128)
    s2 = 10 ** (-snr_db / 10)
    cols = [average_crlb(ARR, eta, w, t, s2, D0, "frame"), average_crlb(ARR, eta, w, t, s2, D0, "signal")]
    F = fisher_random_gain_phase(lambda e: model_jacobian(ARR, e.reshape(1, 3), w, t)[0], eta.reshape(3), D0, s2)
    cols.append(torch.diagonal(torch.linalg.inv(F)).reshape(1, 3))
    cols.append(average_crlb(ARR, eta, w, t, s2, None, "frame"))
    for got, ref in zip(cols, B1[snr_db], strict=True):
        vals = (math.degrees(got[0, 0].sqrt()), math.degrees(got[0, 1].sqrt()), float(got[0, 2].sqrt()))
        for g_, r_, dec in zip(vals, ref, (3, 3, 2), strict=True):
            # every printed digit of the table (half a unit of the last printed decimal)
            assert abs(g_ - r_) <= 0.5 * 10 ** -dec + 1e-9, (snr_db, vals, ref)


def test_crlb_shapes_of_the_coherence_models():
    # angle floors in both models, the frame one higher (between 2× and √L× the signal one; B1:
    # 3.06× and 2.47× at 30 dB); no Doppler floor in the frame model
    eta = torch.tensor([[math.radians(20.0), math.radians(30.0), 69.3]], dtype=F64)
    t = LAYOUT.pilot_times()
    w = torch.ones(1, 10, dtype=C128)
    hi = {c: average_crlb(ARR, eta, w, t, 1e-5, D0, c).sqrt() for c in ("frame", "signal")}
    hi2 = {c: average_crlb(ARR, eta, w, t, 1e-6, D0, c).sqrt() for c in ("frame", "signal")}
    ratio = hi["frame"][0, :2] / hi["signal"][0, :2]
    assert torch.all((ratio > 2.0) & (ratio <= math.sqrt(10)))
    assert torch.allclose(hi2["frame"][0, :2], hi["frame"][0, :2], rtol=0.01)  # floor reached
    assert torch.allclose(hi2["signal"][0, :2], hi["signal"][0, :2], rtol=0.01)
    assert float(hi2["frame"][0, 2] / hi["frame"][0, 2]) == pytest.approx(1 / math.sqrt(10), rel=0.02)
    assert float(hi2["signal"][0, 2] / hi["signal"][0, 2]) == pytest.approx(1.0, rel=0.02)
