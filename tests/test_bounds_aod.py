"""AoD CRB, PEB, MCRB and the CRB-optimal precoder for AoD positioning (bounds.aod, seed 004)."""

import math

import pytest
import torch

from isackit.bounds.aod import (
    aod_crb,
    aod_crbs,
    aod_information,
    crb_optimal_precoder,
    mcrb_aod,
    mcrb_position,
    optimal_power_allocation,
    position_peb,
)
from isackit.estimators.positioning import ml_aod
from isackit.learning.positioning import draw_gains, observe
from isackit.signals.precoders import derivative_codebook
from isackit.systems.positioning.scenario import build_arrays, local_aods

from positioning_fixtures import LAM, cfg, nominal  # noqa: F401  (fixtures)
from positioning_fixtures import deg as _deg


def _worst_crb(C, arr, sec, rho, K=41):
    th = torch.linspace(float(sec[0]), float(sec[1]), K, dtype=torch.float64)
    F = C * torch.sqrt(rho).to(C.dtype)
    return float((0.5 / aod_information(F.expand(K, *F.shape), arr, th)).max())


def test_power_allocation_matches_brute_force_on_three_beams(nominal):
    """Independent solution: exhaustive search over a fine simplex grid (3 beams)."""
    sec = _deg(-10.0, 5.0)
    C = derivative_codebook(nominal, sec, 4)[:, [0, 1, 2]]  # two directional + one derivative beam
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
    C = derivative_codebook(nominal, sec, 4)[:, [0, 1, 3]]
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
    F, rho = crb_optimal_precoder(nominal, sec, 20)
    assert torch.linalg.matrix_norm(F).item() == pytest.approx(1.0)
    C = derivative_codebook(nominal, sec, 20)
    uniform = torch.full((20,), 1 / 20, dtype=torch.float64)
    assert _worst_crb(C, nominal, sec, rho) < 0.9 * _worst_crb(C, nominal, sec, uniform)


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
    F, _ = crb_optimal_precoder(nominal, sec, 20)
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
        F, _ = crb_optimal_precoder(arr.ideal(), sec, 20)
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
    F, _ = crb_optimal_precoder(nominal, secs, 20)
    arrays = [nominal, nominal]
    assert mcrb_position(F, arrays, arrays, p, q, psi, 10.0).item() == pytest.approx(
        position_peb(F, arrays, p, q, psi, 10.0).item(), rel=1e-6)
    assert aod_crbs(F, arrays, th, 10.0).shape == (2,)
