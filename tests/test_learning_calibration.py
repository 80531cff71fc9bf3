"""Unsupervised calibration losses and channel-gradient surrogates (learning layer, seed 000)."""

from __future__ import annotations

import math

import pytest
import torch

from isackit.constants import SPEED_OF_LIGHT
from isackit.estimators.omp_detector import AngleDelayGrid, Detections, omp_detect
from isackit.geometry import ula
from isackit.impairments.base import ArrayModel
from isackit.impairments.gain_phase import GainPhaseError
from isackit.learning.calibration import (
    comm_loss,
    frame_energy,
    isac_loss,
    max_response_adm_loss,
    max_response_loss,
    model_channel_surrogate,
    probe_gradient,
    probe_surrogate,
    residual_loss,
    supervised_loss,
)
from isackit.signals.channels import paths_received_signal
from isackit.signals.constellations import random_symbols
from isackit.signals.ofdm import OFDMConfig
from isackit.signals.precoders import steered_beam

F64, C128 = torch.float64, torch.complex128
OFDM = OFDMConfig(16, 240e3, 60e9)
LAM = SPEED_OF_LIGHT / 60e9


def _array(m, seed):
    gp = GainPhaseError.gaussian(m, 1.0, 30.0, generator=torch.Generator().manual_seed(seed), dtype=F64)
    return ArrayModel(ula(m, 0.5, LAM).to(F64), [gp])


def _sense(rx, tx, f, x, angle, delay, gain):
    """Y (B, M_r, N) of monostatic targets for precoders f (B, M_t)."""
    return paths_received_signal(gain, delay, rx.steering(angle), tx.steering(angle), OFDM, x.unsqueeze(-1),
                                 f.unsqueeze(-1)).transpose(-1, -2)


def _ue(tx, f, x, ue_angle, gain):
    """y (B, N) of a LoS UE at ue_angle with gain α."""
    A = tx.steering(ue_angle.unsqueeze(-1))
    return paths_received_signal(gain.unsqueeze(-1), torch.zeros_like(ue_angle).unsqueeze(-1),
                                 torch.ones_like(A[..., :1, :]), A, OFDM, x.unsqueeze(-1), f.unsqueeze(-1))[..., 0]


def _scene(B=2, K=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = random_symbols("qpsk", (B, OFDM.num_subcarriers), g, C128)[0]
    angle = (torch.rand(B, K, generator=g, dtype=F64) - 0.5) * 1.6
    delay = 2 * (10 + 30 * torch.rand(B, K, generator=g, dtype=F64)) / SPEED_OF_LIGHT
    gain = torch.polar(0.5 + torch.rand(B, K, generator=g, dtype=F64), 6.3 * torch.rand(B, K, generator=g, dtype=F64))
    return x, angle, delay, gain


def _detections(angle, delay, residual=None, energy=None, response=None):
    B, K = angle.shape
    z = torch.zeros(B, K, dtype=F64)
    return Detections(angle, delay, z, z if energy is None else energy, torch.ones(B, K, dtype=torch.bool),
                      torch.zeros(B, K, dtype=torch.long), torch.zeros(B, K, dtype=torch.long),
                      torch.zeros(B, dtype=F64) if residual is None else residual, response)


def test_losses_are_scale_free_and_combine():
    rx = _array(6, 1)
    x, angle, delay, gain = _scene()
    f = torch.ones(2, 6, dtype=C128) / math.sqrt(6)
    Y = _sense(rx, rx, f, x, angle, delay, gain)
    E = frame_energy(Y)
    det = _detections(angle, delay, residual=0.25 * E, energy=torch.tensor([[0.5, 0.1], [0.2, 0.3]], dtype=F64) * E[:, None],
                      response=torch.tensor([[0.6, 0.2], [0.3, 0.3]], dtype=F64) * E[:, None])
    torch.testing.assert_close(residual_loss(Y, det), torch.full((2,), 0.25, dtype=F64))
    torch.testing.assert_close(max_response_loss(Y, det), torch.tensor([-0.6, -0.5], dtype=F64))
    torch.testing.assert_close(max_response_adm_loss(Y, det), torch.tensor([-0.8, -0.6], dtype=F64))
    with pytest.raises(ValueError, match="responses"):
        max_response_adm_loss(Y, _detections(angle, delay))
    # the supervised loss at the true targets of a noise-free frame vanishes (to rounding)
    sup = supervised_loss(Y, x, rx, angle, delay, torch.ones(2, 2, dtype=torch.bool), OFDM)
    assert float(sup.abs().max()) < 100 * 16 * 6 * torch.finfo(F64).eps
    y = torch.tensor([[1.0, 1.0], [2.0, 2.0]], dtype=C128)
    torch.testing.assert_close(comm_loss(y), torch.tensor([-0.4, -1.6], dtype=F64))
    torch.testing.assert_close(isac_loss(torch.tensor([1.0, 3.0]), torch.tensor([-1.0, -1.0]), 0.25),
                               torch.tensor(0.25 * 2.0 - 0.75))


def test_residual_is_the_map_peaks_divided_by_the_deflated_atom_norms():
    """‖R_K‖² = ‖Y‖² − Σ_k E_k / ‖P⊥_{k−1} a_k‖² (the max-response and residual losses differ
    only through the coherence of the picked atoms)."""
    rx = _array(6, 2)
    x, angle, delay, gain = _scene(B=1, K=3, seed=3)
    f = torch.ones(1, 6, dtype=C128) / math.sqrt(6)
    g = torch.Generator().manual_seed(9)
    Y = _sense(rx, rx, f, x, angle, delay, gain)
    Y = Y + 0.05 * torch.complex(torch.randn(Y.shape, generator=g, dtype=F64), torch.randn(Y.shape, generator=g, dtype=F64))
    grid = AngleDelayGrid.linear((-1.0, 1.0), 61, (2 * 10 / SPEED_OF_LIGHT, 2 * 40 / SPEED_OF_LIGHT), 16, OFDM,
                                 dtype=F64)
    det = omp_detect(Y, x, rx, grid, torch.zeros(1, dtype=torch.long), 3, 0.0, 1.0)
    # unit-norm atoms vec(a(θ_k) (x ⊙ b(τ_k))^T) of the picks
    b = torch.exp(-2j * math.pi * torch.arange(16, dtype=F64)[None, :] * 240e3 * det.delay[0][:, None])
    atoms = torch.stack([torch.outer(rx.steering(det.angle[0, k:k + 1])[:, 0], x[0] * b[k]).reshape(-1)
                         for k in range(3)], -1)
    atoms = atoms / atoms.norm(dim=0)
    total = float(Y.abs().pow(2).sum())
    for k in range(3):
        P = atoms[:, :k]
        a = atoms[:, k]
        a_perp = a - P @ torch.linalg.lstsq(P, a.unsqueeze(-1)).solution.squeeze(-1) if k else a
        # E_k = |z|²/(‖â‖² ‖x‖²) of the (non-normalised) atom = |a_k^H R_{k−1}|² for the unit atom
        total -= float(det.energy[0, k]) / float(a_perp.norm() ** 2)
    assert math.isclose(float(det.residual[0]), total, rel_tol=1e-9)


def test_model_surrogate_equals_the_true_channel_gradient_when_the_model_is_true():
    """With the true models and exact detections (noise-free, on-grid), the learned model's
    prediction of the observation IS the observation, so the surrogate's gradient w.r.t. f is
    the true channel's (any constant g_Y, g_y)."""
    tx, rx = _array(6, 4), _array(5, 5)
    x, angle, delay, gain = _scene(B=2, K=1, seed=6)
    ue_angle = torch.tensor([0.3, -0.5], dtype=F64)
    alpha = torch.tensor([0.8 + 0.1j, -0.3j], dtype=C128)
    f0 = steered_beam(tx, torch.tensor([0.1, -0.2], dtype=F64))
    Y = _sense(rx, tx, f0, x, angle, delay, gain)
    y = _ue(tx, f0, x, ue_angle, alpha)
    g = torch.Generator().manual_seed(1)
    gY = torch.complex(torch.randn(Y.shape, generator=g, dtype=F64), torch.randn(Y.shape, generator=g, dtype=F64))
    gy = torch.complex(torch.randn(y.shape, generator=g, dtype=F64), torch.randn(y.shape, generator=g, dtype=F64))
    det = _detections(angle, delay)
    f = f0.clone().requires_grad_(True)
    (g_model,) = torch.autograd.grad(model_channel_surrogate(tx, rx, f, x, ue_angle, Y, y, gY, gy, det, OFDM), f)
    f = f0.clone().requires_grad_(True)
    true = ((gY.conj() * _sense(rx, tx, f, x, angle, delay, gain)).sum().real
            + (gy.conj() * _ue(tx, f, x, ue_angle, alpha)).sum().real)
    (g_true,) = torch.autograd.grad(true, f)
    torch.testing.assert_close(g_model, g_true)
    # without the comm term only the sensing path remains
    f = f0.clone().requires_grad_(True)
    (g_sens,) = torch.autograd.grad(
        model_channel_surrogate(tx, rx, f, x, ue_angle, Y, y, gY, gy, det, OFDM, comm=False), f)
    f = f0.clone().requires_grad_(True)
    (g_true_sens,) = torch.autograd.grad((gY.conj() * _sense(rx, tx, f, x, angle, delay, gain)).sum().real, f)
    torch.testing.assert_close(g_sens, g_true_sens)


@pytest.mark.parametrize("probes", [1, 4])
def test_probe_gradient_estimates_the_true_channel_gradient(probes):
    """E[ĝ] = ∂ℓ/∂f* of the comm loss through the TRUE UE channel (checked by autograd), per
    scene: two different scenes, each repeated, with ``probes`` pairs per scene."""
    tx = _array(4, 7)
    x, *_ = _scene(B=2, K=1, seed=8)
    ue_angle = torch.tensor([0.4, -0.9], dtype=F64)
    alpha = torch.tensor([1.0 + 0.0j, 0.5 + 0.5j], dtype=C128)
    n = 20000 // probes
    f = steered_beam(tx, torch.tensor([0.0, 0.3], dtype=F64)).detach()
    p_ref = float(_ue(tx, f, x, ue_angle, alpha).abs().pow(2).mean())
    fl = f.clone().requires_grad_(True)
    loss = -_ue(tx, fl, x, ue_angle, alpha).abs().pow(2).mean(-1).sum() / p_ref   # per-scene losses, summed
    (g_true,) = torch.autograd.grad(loss, fl)
    rep = torch.arange(2).repeat_interleave(n).repeat(probes)            # row p·B + b → scene of b

    def receive(F):
        return _ue(tx, F, x[rep], ue_angle[rep], alpha[rep])

    g_hat = probe_gradient(receive, f.repeat_interleave(n, 0), p_ref, 0.2, torch.Generator().manual_seed(1),
                           probes=probes).reshape(2, n, -1).mean(1)
    for b in range(2):
        cos = float((g_hat[b].conj() * g_true[b]).sum().real / (g_hat[b].norm() * g_true[b].norm()))
        assert cos > 0.98, (b, cos)
        assert abs(float(g_hat[b].norm() / g_true[b].norm()) - 1) < 0.05, b
    with pytest.raises(ValueError, match="probes"):
        probe_gradient(receive, f, p_ref, 0.2, torch.Generator().manual_seed(1), probes=0)


def test_probe_surrogate_gradient_is_the_weighted_estimate():
    tx = _array(4, 7)
    x, *_ = _scene(B=2, K=1, seed=8)
    ue_angle, alpha = torch.tensor([0.4, -0.9], dtype=F64), torch.tensor([1.0 + 0.0j, 0.5 + 0.5j], dtype=C128)
    f0 = steered_beam(tx, torch.tensor([0.0, 0.3], dtype=F64))
    y = _ue(tx, f0, x, ue_angle, alpha)

    def receive(F):
        rep = torch.arange(2).repeat(F.shape[0] // 2)
        return _ue(tx, F, x[rep], ue_angle[rep], alpha[rep])

    f = f0.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(probe_surrogate(receive, f, y, 0.25, 0.2, torch.Generator().manual_seed(3), 3), f)
    p_ref = y.abs().pow(2).mean(-1).mean()
    ref = probe_gradient(receive, f0, p_ref, 0.2, torch.Generator().manual_seed(3), 3) * (0.75 / 2)
    torch.testing.assert_close(grad, ref)
