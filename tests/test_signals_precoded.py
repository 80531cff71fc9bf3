"""Derivative-beam codebook and the narrowband MISO observation y = Fᵀ(α a) + n (signals, seed 004)."""

import itertools
import math

import numpy as np
import pytest
import torch

from isackit.geometry import ula
from isackit.impairments import ArrayModel
from isackit.learning.positioning import draw_gains, observe
from isackit.signals.channels import miso_received_signal, narrowband_channel
from isackit.signals.precoders import derivative_codebook

LAM = 10.7e-3


@pytest.fixture(scope="module")
def nominal():
    return ArrayModel(ula(32, 0.5, LAM))


def _deg(*v):
    return torch.deg2rad(torch.tensor(v, dtype=torch.float64))


def test_codebook_beams_point_at_their_grid(nominal):
    sec = _deg(40.0, 60.0)
    C = derivative_codebook(nominal, sec, 20)
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


def test_narrowband_channel_and_miso_signal_match_references(gen):
    A = torch.randn(4, 6, 3, dtype=torch.complex128, generator=gen)          # (B, M, K)
    g = torch.randn(4, 3, dtype=torch.complex128, generator=gen)
    h = narrowband_channel(g, A)
    assert torch.allclose(h, torch.einsum("bmk,bk->bm", A, g), rtol=1e-14, atol=1e-14)
    F = torch.randn(4, 6, 5, dtype=torch.complex128, generator=gen)
    s = torch.randn(4, 5, dtype=torch.complex128, generator=gen)
    y = miso_received_signal(h, F, s)
    ref = torch.stack([(F[b].T @ h[b]) * s[b] for b in range(4)])
    assert torch.allclose(y, ref, rtol=1e-13, atol=1e-13)
    # noise: CN(0, σ²) with the generator; None without noise
    z = miso_received_signal(torch.zeros(20000, 6, dtype=torch.complex128), F[0], noise_variance=2.0, generator=gen)
    assert (z.abs() ** 2).mean().item() == pytest.approx(2.0, rel=0.03)
    with pytest.raises(ValueError, match="generator"):
        miso_received_signal(h, F, noise_variance=1.0)
    with pytest.raises(ValueError, match="share M_t"):
        miso_received_signal(h, F[..., :5, :])
    with pytest.raises(ValueError, match="share K"):
        narrowband_channel(g[..., :2], A)
    with pytest.raises(TypeError, match="complex"):
        narrowband_channel(g, A.real)


def test_miso_signal_gradcheck_float64(gen):
    h = torch.randn(2, 4, dtype=torch.complex128, generator=gen, requires_grad=True)
    F = torch.randn(2, 4, 3, dtype=torch.complex128, generator=gen, requires_grad=True)
    assert torch.autograd.gradcheck(lambda hh, ff: miso_received_signal(hh, ff), (h, F))
