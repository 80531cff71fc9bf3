"""OMP detection on an angle–delay grid (estimators layer): against an explicit-dictionary
NumPy OMP, noise-free exactness, the LS re-fit, the windows, the relaxation's gradients."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from isackit.constants import SPEED_OF_LIGHT
from isackit.estimators.omp_detector import AngleDelayGrid, omp_detect, residual_energy
from isackit.geometry import ula
from isackit.impairments.base import ArrayModel
from isackit.impairments.displacement import ElementDisplacement
from isackit.impairments.gain_phase import GainPhaseError
from isackit.signals.channels import paths_received_signal
from isackit.signals.constellations import random_symbols
from isackit.signals.ofdm import OFDMConfig

F64 = torch.float64
OFDM = OFDMConfig(16, 240e3, 60e9)
LAM = SPEED_OF_LIGHT / 60e9


def _rx(m=8, seed=1):
    g = torch.Generator().manual_seed(seed)
    disp = ElementDisplacement.gaussian(m, 0.1 * LAM, axes="xy", generator=g, dtype=F64)
    gp = GainPhaseError.gaussian(m, 1.0, 30.0, generator=g, dtype=F64)
    return ArrayModel(ula(m, 0.5, LAM).to(F64), [disp, gp])


def _grid(num_angles=41, num_delays=12, span=None):
    return AngleDelayGrid.linear((-1.2, 1.2), num_angles, (2 * 10 / SPEED_OF_LIGHT, 2 * 40 / SPEED_OF_LIGHT),
                                 num_delays, OFDM, window_span=span, dtype=F64)


def _frames(rx, angle, delay, gain, noise=0.0, seed=0):
    """Y = Σ_k c_k a(θ_k)(x ⊙ b(τ_k))^T + W for (B, K) targets, and the symbols x (B, N)."""
    g = torch.Generator().manual_seed(seed)
    B = angle.shape[0]
    x = random_symbols("qpsk", (B, OFDM.num_subcarriers), g, torch.complex128)[0]
    ones = torch.ones(B, 1, angle.shape[-1], dtype=torch.complex128)
    Y = paths_received_signal(gain, delay, rx.steering(angle), ones, OFDM, x.unsqueeze(-1),
                              torch.ones(B, 1, 1, dtype=torch.complex128)).transpose(-1, -2)
    if noise:
        Y = Y + math.sqrt(noise / 2) * torch.complex(torch.randn(Y.shape, generator=g, dtype=F64),
                                                    torch.randn(Y.shape, generator=g, dtype=F64))
    return Y, x


def _numpy_omp(Y, x, A, Bd, K):
    """Reference OMP with the explicit (G_a G_d × M N) dictionary of normalised atoms."""
    M, N = Y.shape
    atoms = np.einsum("ma,dn->admn", A, x[None, :] * Bd).reshape(A.shape[1] * Bd.shape[0], M * N)
    norms = np.linalg.norm(atoms, axis=1)
    y = Y.reshape(-1)
    r, picked = y.copy(), []
    for _ in range(K):
        c = np.abs(atoms.conj() @ r) / norms
        picked.append(int(np.argmax(c)))
        D = atoms[picked].T
        coef, *_ = np.linalg.lstsq(D, y, rcond=None)
        r = y - D @ coef
    return [(p // Bd.shape[0], p % Bd.shape[0]) for p in picked], np.linalg.norm(r) ** 2


def _targets(B=3, K=3, seed=2):
    g = torch.Generator().manual_seed(seed)
    angle = (torch.rand(B, K, generator=g, dtype=F64) - 0.5) * 0.6
    delay = 2 * (12 + 25 * torch.rand(B, K, generator=g, dtype=F64)) / SPEED_OF_LIGHT
    gain = torch.polar(0.5 + torch.rand(B, K, generator=g, dtype=F64), 6.3 * torch.rand(B, K, generator=g, dtype=F64))
    return angle, delay, gain


def test_omp_detect_matches_explicit_dictionary_reference():
    rx = _rx()
    angle, delay, gain = _targets()
    Y, x = _frames(rx, angle, delay, gain, noise=1e-2)
    grid = _grid(span=0.8)
    start = grid.window_start(angle.mean(-1))
    det = omp_detect(Y, x, rx, grid, start, 3, 0.0, 1e-2)
    A = rx.steering(grid.angles).numpy()
    for b in range(3):
        win = slice(int(start[b]), int(start[b]) + grid.window)
        ref, ref_res = _numpy_omp(Y[b].numpy(), x[b].numpy(), A[:, win], grid.delay_atoms.numpy(), 3)
        got = list(zip((det.angle_index[b] - start[b]).tolist(), det.delay_index[b].tolist(), strict=True))
        assert got == ref
        assert math.isclose(float(det.residual[b]), ref_res, rel_tol=1e-9)
        # the LS re-fit at the picked (θ, τ) gives the same residual
        res = residual_energy(Y[b:b + 1], x[b:b + 1], rx, det.angle[b:b + 1], det.delay[b:b + 1],
                              torch.ones(1, 3, dtype=torch.bool), OFDM)
        assert math.isclose(float(res), ref_res, rel_tol=1e-9)
    # the statistic is the normalised peak over σ²; the estimates are the picks' grid values
    torch.testing.assert_close(det.statistic, det.energy / 1e-2)
    torch.testing.assert_close(det.angle, grid.angles[det.angle_index])
    torch.testing.assert_close(det.delay, grid.delays[det.delay_index])


def test_window_as_wide_as_the_grid_searches_one_shared_dictionary():
    rx = _rx()
    angle, delay, gain = _targets()
    Y, x = _frames(rx, angle, delay, gain, noise=1e-2)
    wide = _grid(span=10.0)
    assert wide.window == wide.angles.numel()
    det = omp_detect(Y, x, rx, wide, torch.tensor([5, 9, 0]), 3, 0.0, 1e-2)  # starts are ignored
    ref = omp_detect(Y, x, rx, _grid(span=None), torch.zeros(3, dtype=torch.long), 3, 0.0, 1e-2)
    assert torch.equal(det.angle_index, ref.angle_index) and torch.equal(det.delay_index, ref.delay_index)
    # per-scene windows covering the grid (explicitly indexed dictionaries) agree
    per_scene = AngleDelayGrid(wide.angles, wide.delays, wide.delay_atoms, wide.window - 1)
    idx = torch.zeros(3, dtype=torch.long)
    d2 = omp_detect(Y, x, rx, per_scene, idx, 3, 0.0, 1e-2)
    inside = (ref.angle_index < wide.window - 1).all(-1)
    assert torch.equal(d2.angle_index[inside], ref.angle_index[inside])


def test_noise_free_on_grid_target_is_exact_and_the_threshold_stops():
    rx = _rx()
    grid = _grid()
    ia, idl = torch.tensor([[10], [25]]), torch.tensor([[3], [8]])
    angle, delay = grid.angles[ia], grid.delays[idl]
    Y, x = _frames(rx, angle, delay, torch.tensor([[1.0 + 0.5j], [-0.7j]], dtype=torch.complex128))
    det = omp_detect(Y, x, rx, grid, torch.zeros(2, dtype=torch.long), 2, 1e-6, 1.0)
    assert det.angle_index[:, 0].tolist() == [10, 25] and det.delay_index[:, 0].tolist() == [3, 8]
    assert det.detected.tolist() == [[True, False], [True, False]]   # nothing left above the threshold
    assert (det.angle_index[:, 1] == -1).all() and (det.delay_index[:, 1] == -1).all()
    # ‖R‖² = ‖Y‖² − Re(z^H G^{-1} z) cancels to rounding: a few hundred eps of ‖Y‖² (M N terms)
    energy = Y.abs().pow(2).sum((-2, -1))
    tol = 8 * 16 * torch.finfo(F64).eps
    assert float((det.residual / energy).abs().max()) < tol
    res = residual_energy(Y, x, rx, angle, delay, torch.ones(2, 1, dtype=torch.bool), OFDM)
    assert float((res / energy).abs().max()) < tol
    # positions: NaN where not detected, at range R = c τ / 2 otherwise
    pos = det.positions()
    assert torch.isnan(pos[:, 1]).all() and torch.isfinite(pos[:, 0]).all()
    torch.testing.assert_close(pos[:, 0].norm(dim=-1), det.range[:, 0])


def test_grid_construction():
    grid = AngleDelayGrid.linear((-0.5, 0.5), 101, (0.0, 1e-6), 11, OFDM, window_span=0.1)
    assert grid.window == 11 and math.isclose(grid.angle_step, 0.01, rel_tol=1e-6)
    assert grid.delay_atoms.shape == (11, 16) and grid.delay_atoms.dtype == torch.complex64
    torch.testing.assert_close(grid.delay_atoms[3], torch.exp(-2j * math.pi * torch.arange(16) * 240e3
                                                              * grid.delays[3].double()).to(torch.complex64))
    start = grid.window_start(torch.tensor([-0.5, 0.0, 0.5]))
    assert start.tolist() == [0, 45, 90]                            # clamped at both ends
    with pytest.raises(ValueError, match="increasing"):
        AngleDelayGrid.linear((0.5, -0.5), 11, (0.0, 1e-6), 3, OFDM)


def test_relaxation_gradcheck_float64():
    """Soft estimates, peaks and residuals w.r.t. Y and the learned Rx gains/phases/positions."""
    rx0 = _rx(4)
    geom = rx0.geometry
    angle, delay, gain = _targets(B=2, K=2)
    Y0, x = _frames(rx0, angle, delay, gain, noise=1e-3, seed=4)
    grid = AngleDelayGrid.linear((-1.0, 1.0), 31, (2 * 10 / SPEED_OF_LIGHT, 2 * 40 / SPEED_OF_LIGHT), 8, OFDM,
                                 window_span=1.0, dtype=F64)
    start = grid.window_start(angle.mean(-1))
    g0 = torch.ones(4, dtype=F64) * 1.1
    p0 = torch.linspace(-0.3, 0.4, 4, dtype=F64)
    d0 = torch.zeros(4, 3, dtype=F64) + 1e-4 * torch.arange(12, dtype=F64).reshape(4, 3)
    e = Y0.abs().pow(2).sum()

    def fn(Y, gain, phase, disp):
        rx = ArrayModel(geom, [ElementDisplacement(disp), GainPhaseError(gain, phase)])
        det = omp_detect(Y, x, rx, grid, start, 2, 0.0, 1e-3, 1, 0.3)
        res = residual_energy(Y, x, rx, det.angle, det.delay, det.detected, OFDM)
        return det.angle, det.delay * 1e7, det.energy / e, det.response / e, det.residual / e, res / e

    inputs = (Y0.clone().requires_grad_(True), g0.requires_grad_(True), p0.requires_grad_(True),
              d0.requires_grad_(True))
    assert torch.autograd.gradcheck(fn, inputs, eps=1e-7, atol=1e-5, rtol=1e-4)
