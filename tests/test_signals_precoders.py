"""Precoders built from an array model's response (signals layer): unit norm, the beams'
directions, the ISAC combination, the beam pattern, gradients."""

from __future__ import annotations

import math

import pytest
import torch

from isackit.geometry import ula
from isackit.impairments.base import ArrayModel
from isackit.impairments.gain_phase import GainPhaseError
from isackit.signals.precoders import beam_pattern, isac_precoder, normalise, sector_beam, steered_beam

F64 = torch.float64


def _impaired(m=12):
    g = torch.Generator().manual_seed(3)
    gp = GainPhaseError.gaussian(m, 1.0, 20.0, generator=g, dtype=F64)
    return ArrayModel(ula(m).to(F64), [gp])


def test_steered_beam_is_the_matched_filter_of_the_response():
    tx = _impaired()
    theta = torch.tensor([0.3, -0.7], dtype=F64)
    f = steered_beam(tx, theta)
    a = tx.steering(theta)                                                 # (M, 2)
    torch.testing.assert_close(f, (a.conj() / a.norm(dim=0)).T)
    assert torch.allclose(f.norm(dim=-1), torch.ones(2, dtype=F64))
    # Cauchy–Schwarz: |a(θ)^T f|² = ‖a(θ)‖² is the largest response over unit-norm f, and the
    # pattern of f peaks at θ on a fine grid
    grid = torch.linspace(-1.2, 1.2, 2401, dtype=F64)
    p = beam_pattern(tx, f, grid)
    assert torch.allclose(p.max(-1).values, a.norm(dim=0) ** 2, rtol=1e-6)
    assert torch.allclose(grid[p.argmax(-1)], theta, atol=2e-3)


def test_sector_beam_and_isac_precoder():
    tx = _impaired(16)
    c, w = torch.tensor([0.2], dtype=F64), torch.tensor([0.3], dtype=F64)
    ue = torch.tensor([-0.6], dtype=F64)
    fs = sector_beam(tx, c, w, 5)
    dirs = c + torch.linspace(-0.5, 0.5, 5, dtype=F64) * w
    a = tx.steering(dirs)
    torch.testing.assert_close(fs[0], normalise((a.conj() / a.norm(dim=0)).sum(-1)))
    # a one-point sector beam is the steered beam towards its centre
    torch.testing.assert_close(sector_beam(tx, c, w, 1), steered_beam(tx, c - 0.5 * w))
    # η = 1: the sensing beam alone; η = 0: the comm beam (up to the phase φ)
    torch.testing.assert_close(isac_precoder(tx, c, w, ue, 1.0, points=5), fs)
    phi = 0.7
    torch.testing.assert_close(isac_precoder(tx, c, w, ue, 0.0, phi, points=5),
                               steered_beam(tx, ue) * complex(math.cos(phi), math.sin(phi)))
    f = isac_precoder(tx, c, w, ue, 0.5, points=5)
    ref = normalise(math.sqrt(0.5) * fs + math.sqrt(0.5) * steered_beam(tx, ue))
    torch.testing.assert_close(f, ref)
    # the pattern: per-scene angles (B, G) == shared angles (G,)
    grid = torch.linspace(-1, 1, 7, dtype=F64)
    torch.testing.assert_close(beam_pattern(tx, f, grid.expand(1, 7)), beam_pattern(tx, f, grid))
    with pytest.raises(ValueError, match="eta"):
        isac_precoder(tx, c, w, ue, 1.5)
    with pytest.raises(ValueError, match="points"):
        sector_beam(tx, c, w, 0)


def test_precoder_gradcheck_wrt_learned_gains_phases_and_angles():
    m = 6
    geom = ula(m).to(F64)

    def fn(gain, phase, center):
        tx = ArrayModel(geom, [GainPhaseError(gain, phase)])
        return isac_precoder(tx, center, torch.tensor([0.25], dtype=F64), torch.tensor([-0.4], dtype=F64), 0.6,
                             0.3, points=4)

    inputs = (torch.linspace(0.8, 1.2, m, dtype=F64).requires_grad_(True),
              torch.linspace(-0.3, 0.5, m, dtype=F64).requires_grad_(True),
              torch.tensor([0.1], dtype=F64, requires_grad=True))
    assert torch.autograd.gradcheck(fn, inputs)
