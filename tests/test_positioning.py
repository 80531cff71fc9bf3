"""System S4 (seed 004): scenario, benchmark (power allocation, ML AoD/position), bounds."""

import itertools
import math

import numpy as np
import pytest
import torch

from isackit.geometry import ula
from isackit.impairments import ArrayModel
from isackit.systems.positioning.benchmark import (
    aod_information,
    benchmark_precoder,
    hybrid_codebook,
    ml_aod,
    ml_position,
    optimal_power_allocation,
)
from isackit.systems.positioning.bounds import aod_crb, aod_crbs, mcrb_aod, mcrb_position, position_peb
from isackit.systems.positioning.scenario import (
    PositioningConfig,
    build_arrays,
    draw_gains,
    local_aods,
    observe,
    sample_aod_batch,
    sample_position_batch,
    sector_features,
)

LAM = 10.7e-3


@pytest.fixture(scope="module")
def cfg():
    return PositioningConfig()


@pytest.fixture(scope="module")
def nominal():
    return ArrayModel(ula(32, 0.5, LAM))


def _deg(*v):
    return torch.deg2rad(torch.tensor(v, dtype=torch.float64))


# -- scenario ---------------------------------------------------------------------------------
def test_config_defaults_are_the_seed(cfg):
    assert cfg.num_bs == 2 and cfg.num_antennas == 32 and cfg.num_transmissions == 20
    assert cfg.bs_positions == ((-5.0, 0.0), (3.0, 0.0)) and cfg.bs_orientations_deg == (0.0, 10.0)
    assert cfg.wavelength == pytest.approx(10.7e-3) and cfg.spacing_std == pytest.approx(0.01)
    assert min(cfg.snr_db) == -5 and max(cfg.snr_db) == 30


@pytest.mark.parametrize("bad", [dict(bs_orientations_deg=(0.0,)), dict(num_transmissions=7),
                                 dict(eval_sectors_deg=((10.0, 5.0), (0.0, 1.0))), dict(impairment="rust")])
def test_config_rejects_bad_input(bad):
    with pytest.raises(ValueError):
        PositioningConfig(**bad)


def test_local_aods_follow_seed_eq3(cfg):
    q, psi = cfg.bs_tensor()
    p = torch.tensor([[0.5, 5.0], [1.0, 2.0]], dtype=torch.float64)
    th = local_aods(p, q, psi)
    pn, qn = p.numpy(), q.numpy()
    ref = np.arctan2(pn[:, None, 1] - qn[None, :, 1], pn[:, None, 0] - qn[None, :, 0]) - psi.numpy()[None]
    assert torch.allclose(th, torch.as_tensor(ref), atol=1e-12)
    assert math.degrees(th[0, 0]) == pytest.approx(math.degrees(math.atan2(5, 5.5)))


def test_observe_is_alpha_Ft_a_plus_noise(gen, nominal):
    F = torch.randn(3, 32, 20, dtype=torch.complex128, generator=gen)
    th = torch.rand(3, dtype=torch.float64, generator=gen)
    a = nominal.steering(th.unsqueeze(-1))[..., 0]
    alpha = draw_gains(10.0, (3,), gen, torch.complex128)
    assert torch.allclose(alpha.abs() ** 2, torch.full((3,), 10.0, dtype=torch.float64))
    y0 = observe(F, a, alpha, None)
    ref = torch.stack([alpha[k] * F[k].T @ a[k] for k in range(3)])
    assert torch.allclose(y0, ref)
    big = torch.zeros(20000, 32, 20, dtype=torch.complex128)
    n = observe(big, torch.ones(20000, 32, dtype=torch.complex128), torch.zeros(20000, dtype=torch.complex128), gen)
    assert (n.abs() ** 2).mean().item() == pytest.approx(1.0, rel=0.02)


def test_build_arrays_impairments(cfg):
    none, spacing, coupling = (build_arrays(cfg, k) for k in ("none", "spacing", "coupling"))
    th = _deg(20.0)
    assert torch.allclose(none[0].steering(th), none[0].ideal().steering(th))
    like = torch.zeros((), dtype=torch.float64)
    gaps = torch.diff(spacing[0].positions(like)[:, 1])
    err = gaps - LAM / 2
    assert err.abs().max() > 0 and err.std().item() == pytest.approx(cfg.spacing_std * LAM, rel=0.5)
    # same draw on a second call (fixed hardware realisation), rescaled by spacing_std
    again = build_arrays(cfg, "spacing", spacing_std=0.02)
    assert torch.allclose(torch.diff(again[0].positions(like)[:, 1]) - LAM / 2, 2 * err, atol=1e-8)
    # coupling: ã = B a with B banded symmetric Toeplitz from the seed's c
    c = torch.tensor([1, 0.9 * np.exp(-1j * np.pi / 3), 0.75 * np.exp(1j * np.pi / 4),
                      0.55 * np.exp(-1j * np.pi / 10), 0.25 * np.exp(-1j * np.pi / 6)], dtype=torch.complex128)
    B = torch.zeros(32, 32, dtype=torch.complex128)
    for m, n in itertools.product(range(32), range(32)):
        if abs(m - n) < 5:
            B[m, n] = c[abs(m - n)]
    assert torch.allclose(coupling[0].steering(th), B @ none[0].steering(th), atol=1e-12)


def test_training_samplers(cfg, gen):
    s, th = sample_aod_batch(cfg, 500, gen)
    w = torch.rad2deg(s[..., 1] - s[..., 0])
    assert s.shape == (500, 2, 2) and th.shape == (500, 2)
    assert ((w >= 10 - 1e-4) & (w <= 20 + 1e-4)).all()
    assert ((th >= s[..., 0]) & (th <= s[..., 1])).all()
    p, th, s = sample_position_batch(cfg, 500, gen)
    assert ((p - torch.tensor(cfg.prior_centre)).abs() <= cfg.prior_side / 2 + 1e-5).all()
    assert ((th >= s[..., 0]) & (th <= s[..., 1])).all()
    xi = sector_features(s)
    assert torch.allclose(xi[..., 2], (s[..., 1] - s[..., 0]) / 2)


# -- benchmark --------------------------------------------------------------------------------
def test_codebook_beams_point_at_their_grid(nominal):
    sec = _deg(40.0, 60.0)
    C = hybrid_codebook(nominal, sec, 20)
    assert C.shape == (32, 20)
    assert torch.allclose(torch.linalg.vector_norm(C, dim=0), torch.ones(20, dtype=torch.float64))
    grid = torch.linspace(float(sec[0]), float(sec[1]), 10, dtype=torch.float64)
    gain = (nominal.steering(grid).T @ C[:, :10]).abs()          # (10 angles, 10 beams)
    assert torch.equal(gain.argmax(0), torch.arange(10))
    assert torch.allclose(gain.diagonal(), torch.full((10,), math.sqrt(32), dtype=torch.float64))
    # derivative beams have a null at their own angle... of the centred pattern derivative: |ȧᴴ a| ∝ Σm ≠ 0,
    # but they are orthogonal to the directional beam's derivative direction: check the definition instead
    a, (da, _) = nominal.steering_and_derivatives(grid[:1])
    assert torch.allclose(C[:, 10], (da[:, 0] / da[:, 0].norm()).conj())


def _worst_crb(C, arr, sec, rho, K=41):
    th = torch.linspace(float(sec[0]), float(sec[1]), K, dtype=torch.float64)
    F = C * torch.sqrt(rho).to(C.dtype)
    return float((0.5 / aod_information(F.expand(K, *F.shape), arr, th)).max())


def test_power_allocation_matches_brute_force_on_three_beams(nominal):
    """Independent solution: exhaustive search over a fine simplex grid (3 beams)."""
    sec = _deg(-10.0, 5.0)
    C = hybrid_codebook(nominal, sec, 4)[:, [0, 1, 2]]  # two directional + one derivative beam
    res = optimal_power_allocation(C, nominal, sec, num_angles=11)
    assert res["success"] and res["rho"].sum().item() == pytest.approx(1.0)
    n = 100
    i, j = torch.meshgrid(torch.arange(n + 1), torch.arange(n + 1), indexing="ij")
    keep = (i + j) <= n
    R = torch.stack([i[keep], j[keep], n - i[keep] - j[keep]], -1).double() / n   # (P, 3)
    th = torch.linspace(float(sec[0]), float(sec[1]), 11, dtype=torch.float64)
    F = C.unsqueeze(0) * torch.sqrt(R).unsqueeze(1).to(C.dtype)                      # (P, M, 3)
    J = aod_information(F.unsqueeze(1).expand(-1, 11, -1, -1), nominal, th.expand(len(R), 11))
    worst = (0.5 / J).max(-1).values
    best = int(worst.argmin())
    solver = _worst_crb(C, nominal, sec, res["rho"], 11)
    assert solver <= float(worst[best]) * (1 + 1e-9)           # never worse than the grid optimum
    assert solver >= float(worst[best]) * (1 - 5e-3)           # and the grid optimum is within 0.5 %
    assert torch.allclose(res["rho"], R[best], atol=2.0 / n)


def test_power_allocation_average_objective_matches_brute_force(nominal):
    sec = _deg(20.0, 35.0)
    C = hybrid_codebook(nominal, sec, 4)[:, [0, 1, 3]]
    res = optimal_power_allocation(C, nominal, sec, num_angles=11, objective="average")
    n = 100
    i, j = torch.meshgrid(torch.arange(n + 1), torch.arange(n + 1), indexing="ij")
    keep = (i + j) <= n
    R = torch.stack([i[keep], j[keep], n - i[keep] - j[keep]], -1).double() / n
    th = torch.linspace(float(sec[0]), float(sec[1]), 11, dtype=torch.float64)
    F = C.unsqueeze(0) * torch.sqrt(R).unsqueeze(1).to(C.dtype)
    mean = (0.5 / aod_information(F.unsqueeze(1).expand(-1, 11, -1, -1), nominal, th.expand(len(R), 11))).mean(-1)
    Fs = C * torch.sqrt(res["rho"]).to(C.dtype)
    solver = float((0.5 / aod_information(Fs.expand(11, *Fs.shape), nominal, th)).mean())
    assert float(mean.min()) * (1 - 5e-3) <= solver <= float(mean.min()) * (1 + 1e-9)


def test_benchmark_precoder_beats_uniform_and_is_normalised(nominal):
    sec = _deg(40.0, 60.0)
    F, rho = benchmark_precoder(nominal, sec, 20)
    assert torch.linalg.matrix_norm(F).item() == pytest.approx(1.0)
    C = hybrid_codebook(nominal, sec, 20)
    uniform = torch.full((20,), 1 / 20, dtype=torch.float64)
    assert _worst_crb(C, nominal, sec, rho) < 0.9 * _worst_crb(C, nominal, sec, uniform)


def test_ml_aod_noise_free_exact_and_batch_consistent(nominal, gen):
    secs = _deg(40.0, 60.0, -30.0, -20.0).reshape(2, 2)
    F, _ = benchmark_precoder(nominal, secs, 20)
    th = secs[:, 0] + (secs[:, 1] - secs[:, 0]) * torch.rand(5, 2, generator=gen, dtype=torch.float64)
    a = nominal.steering(th.unsqueeze(-1))[..., 0]                 # (5, 2, M)
    alpha = draw_gains(0.0, (5, 2), gen, torch.complex128)
    y = observe(F, a, alpha, None)
    est = ml_aod(y, F, nominal, secs)
    assert torch.allclose(est, th, atol=1e-9)
    one = torch.stack([ml_aod(y[k, 1], F[1], nominal, secs[1]) for k in range(5)])
    # a refined maximiser: batched and single evaluations round differently and the cost is
    # flat to second order at the maximum, so they agree to O(sqrt(eps)), not to rounding
    assert torch.allclose(one, est[:, 1], rtol=0, atol=math.sqrt(torch.finfo(torch.float64).eps))
    with pytest.raises(ValueError):
        ml_aod(y, F, nominal, secs[..., :1])


def test_ml_position_noise_free_exact(cfg, gen):
    q, psi = cfg.bs_tensor()
    p = torch.tensor(cfg.prior_centre, dtype=torch.float64) + torch.rand(7, 2, generator=gen, dtype=torch.float64) - 0.5
    th = local_aods(p, q, psi)
    est = ml_position(th, torch.full_like(th, 1e-4), q, psi)
    assert torch.allclose(est, p, atol=1e-9)


# -- bounds -----------------------------------------------------------------------------------
def test_aod_crb_closed_form_single_bs(nominal):
    """F = I/√M: b = a/√M, J = π² cos²θ (M² - 1)/12, CRB = 6 / (SNR π² cos²θ (M² - 1))."""
    M, snr_db = 32, 7.0
    th = _deg(-50.0, 0.0, 33.0)
    F = torch.eye(M, dtype=torch.complex128) / math.sqrt(M)
    crb = aod_crb(F, nominal, th, snr_db)
    ref = 6.0 / (10 ** (snr_db / 10) * math.pi ** 2 * torch.cos(th) ** 2 * (M ** 2 - 1))
    assert torch.allclose(crb, ref, rtol=1e-10)


def test_peb_closed_form_two_bs(cfg, nominal):
    q, psi = cfg.bs_tensor()
    p = torch.tensor([0.5, 5.0], dtype=torch.float64)
    F = (torch.eye(32, dtype=torch.complex128) / math.sqrt(32)).expand(2, 32, 32)
    peb = position_peb(F, [nominal, nominal], p, q, psi, 10.0)
    th = local_aods(p, q, psi)
    crb = 6.0 / (10.0 * math.pi ** 2 * torch.cos(th) ** 2 * (32 ** 2 - 1))
    d = p - q
    G = torch.stack([-d[:, 1], d[:, 0]], -1) / (d ** 2).sum(-1, keepdim=True)
    Jp = G.T @ torch.diag(1 / crb) @ G
    assert peb.item() == pytest.approx(math.sqrt(torch.linalg.inv(Jp).trace().item()), rel=1e-9)


def test_mcrb_reduces_to_crb_without_mismatch(nominal):
    sec = _deg(40.0, 60.0)
    F, _ = benchmark_precoder(nominal, sec, 20)
    th = _deg(45.0, 52.0)
    mse, m, bias = mcrb_aod(F, nominal, nominal, th, 15.0)
    assert torch.allclose(bias, torch.zeros_like(bias), atol=1e-10)
    assert torch.allclose(m, aod_crb(F, nominal, th, 15.0), rtol=1e-6)


@pytest.mark.slow
def test_benchmark_reaches_crb_ideal_and_floors_under_spacing_errors(cfg):
    """Statistical: 3000 trials at θ = 50°; ideal array → RMSE within 15 % of the CRB at 20 dB;
    spacing errors → RMSE > 2 × CRB at 30 dB and within 15 % of sqrt(MCRB + bias²)."""
    g = torch.Generator().manual_seed(7)
    sec = _deg(40.0, 60.0)
    th = _deg(50.0)
    for kind, snr in (("none", 20.0), ("spacing", 30.0)):
        arr = build_arrays(cfg, kind)[0]
        F, _ = benchmark_precoder(arr.ideal(), sec, 20)
        a = arr.steering(th.reshape(1, 1))[..., 0].expand(3000, 32)
        y = observe(F, a, draw_gains(snr, (3000,), g, torch.complex128), g)
        rmse = ((ml_aod(y, F, arr.ideal(), sec) - th) ** 2).mean().sqrt().item()
        crb = aod_crb(F, arr, th, snr).sqrt().item()
        if kind == "none":
            assert rmse == pytest.approx(crb, rel=0.15)
        else:
            lb = mcrb_aod(F, arr, arr.ideal(), th, snr)[0].sqrt().item()
            assert rmse > 2 * crb and rmse == pytest.approx(lb, rel=0.15)


def test_position_mcrb_and_peb_agree_without_mismatch(cfg, nominal):
    q, psi = cfg.bs_tensor()
    p = torch.tensor([0.5, 5.0], dtype=torch.float64)
    th = local_aods(p, q, psi)
    secs = torch.stack([th - 0.2, th + 0.2], -1)
    F, _ = benchmark_precoder(nominal, secs, 20)
    arrays = [nominal, nominal]
    assert mcrb_position(F, arrays, arrays, p, q, psi, 10.0).item() == pytest.approx(
        position_peb(F, arrays, p, q, psi, 10.0).item(), rel=1e-6)
    assert aod_crbs(F, arrays, th, 10.0).shape == (2,)


def test_samplers_with_repeats(cfg, gen):
    p, th, s = sample_position_batch(cfg, 25, gen, repeats=10)
    assert p.shape == (25, 2) and torch.equal(p[0], p[9]) and not torch.equal(p[9], p[10])
    assert torch.equal(s[20], s[24])
    s, th = sample_aod_batch(cfg, 25, gen, repeats=5)
    assert torch.equal(s[0], s[4]) and not torch.equal(th[0], th[4])
    assert ((th >= s[..., 0]) & (th <= s[..., 1])).all()


def test_ml_aod_outliers_below_threshold_are_the_likelihoods_own(cfg):
    """At 5 dB (below the ML threshold of the 30° position sectors) some AoD estimates are outliers
    (|θ̂ - θ| > 3 √CRB), yet every estimate has a concentrated likelihood P(θ̂) ≥ P(θ_true) and is
    within 1e-3 (relative) of the maximum of P over a 2001-point grid of the sector: the excess
    RMSE there is the ML estimator's threshold effect, not a search failure (a near-tie between two
    peaks can cost the 256-point coarse grid a sampling loss < 1e-3 at this beam width)."""
    from isackit.systems.positioning.benchmark import ml_aod_spectrum

    g = torch.Generator().manual_seed(11)
    arr = build_arrays(cfg)[1]
    q, psi = cfg.bs_tensor()
    th = local_aods(torch.tensor(cfg.eval_position, dtype=torch.float64), q, psi)[1]      # BS 2, 106.6°
    sec = torch.stack([th - math.radians(15.0), th + math.radians(15.0)])
    F, _ = benchmark_precoder(arr.ideal(), sec, cfg.num_transmissions)
    n, snr = 300, 5.0
    y = observe(F, arr.steering(th.reshape(1, 1))[..., 0].expand(n, -1), draw_gains(snr, (n,), g, torch.complex128), g)
    est = ml_aod(y, F, arr.ideal(), sec)
    spectrum = lambda t: ml_aod_spectrum(y, F, arr.ideal(), t.reshape(n, 1)).squeeze(-1)  # noqa: E731
    p_est, p_true = spectrum(est), spectrum(th.expand(n))
    grid = sec[0] + (sec[1] - sec[0]) * torch.linspace(0, 1, 2001, dtype=torch.float64)
    p_max = torch.cat([ml_aod_spectrum(y[k:k + 50], F, arr.ideal(), grid).max(-1).values for k in range(0, n, 50)])
    outliers = (est - th).abs() > 3 * aod_crb(F, arr, th, snr).sqrt()
    assert outliers.sum() >= 3
    assert bool((p_est >= p_true * (1 - 1e-12)).all())
    assert bool((p_est >= p_max * (1 - 1e-3)).all())
