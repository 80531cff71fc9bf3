"""Tests for isackit.signals.estimation (LS) and isackit.signals.targets."""

import math

import pytest
import torch

from isackit.constants import BOLTZMANN
from isackit.signals import (
    add_noise,
    complex_normal,
    ls_channel_estimate,
    orthogonal_pilots,
    radar_path_loss,
    swerling_rcs,
    target_amplitudes,
    thermal_noise_power,
)

C128 = torch.complex128


@pytest.mark.parametrize("orthogonal", [True, False])
def test_ls_exact_without_noise(gen, orthogonal):
    B, N, Mr, Mt, Lp = 3, 5, 4, 3, 6
    H = complex_normal((B, N, Mr, Mt), gen, C128)
    X = orthogonal_pilots(Mt, Lp, C128) if orthogonal else complex_normal((B, N, Mt, Lp), gen, C128)
    Y = H @ X
    Hh = ls_channel_estimate(Y, X)
    assert Hh.shape == (B, N, Mr, Mt) and Hh.dtype == C128
    assert (torch.linalg.norm(Hh - H) / torch.linalg.norm(H)).item() < 1e-10


def test_ls_square_pilots_and_batch_equals_single(gen):
    H = complex_normal((2, 4, 3, 3), gen, C128)
    X = complex_normal((4, 3, 3), gen, C128)  # L_p = M_t, shared over the batch
    Y = H @ X
    Hh = ls_channel_estimate(Y, X)
    assert (torch.linalg.norm(Hh - H) / torch.linalg.norm(H)).item() < 1e-10
    for b in range(2):
        assert torch.allclose(ls_channel_estimate(Y[b], X), Hh[b])


def test_ls_error_variance_orthogonal_pilots(gen):
    """With X X^H = L_p I the LS error is CN(0, σ²/L_p) per entry."""
    N, Mr, Mt, Lp, var = 256, 4, 2, 8, 0.5
    H = complex_normal((N, Mr, Mt), gen, C128)
    X = orthogonal_pilots(Mt, Lp, C128)
    Y = add_noise(H @ X, var, gen)
    err = ls_channel_estimate(Y, X) - H
    n = err.numel()
    assert abs((err.abs() ** 2).mean().item() - var / Lp) < (var / Lp) * 5 / math.sqrt(n)


def test_ls_dtype_follows(gen):
    X = orthogonal_pilots(2, 4)
    H = complex_normal((3, 2), gen)
    Hh = ls_channel_estimate(H @ X, X)
    assert Hh.dtype == torch.complex64
    assert torch.allclose(Hh, H, atol=1e-5)


def test_ls_bad_inputs(gen):
    Y = complex_normal((5, 4, 2), gen, C128)
    with pytest.raises(ValueError, match="L_p >= M_t"):
        ls_channel_estimate(Y, complex_normal((5, 3, 2), gen, C128))
    with pytest.raises(ValueError, match="pilot"):
        ls_channel_estimate(Y, complex_normal((5, 2, 3), gen, C128))  # L_p mismatch
    X = complex_normal((2, 2), gen, C128)
    X[1] = X[0]  # rank deficient
    with pytest.raises(ValueError, match="rank"):
        ls_channel_estimate(Y, X)
    Xn = complex_normal((2, 2), gen, C128)
    Xn[0, 0] = float("nan")
    with pytest.raises(ValueError):
        ls_channel_estimate(Y, Xn)
    with pytest.raises(TypeError):
        ls_channel_estimate(Y.real, X.real)


def test_ls_gradcheck(gen):
    X = complex_normal((2, 3), gen, C128).requires_grad_(True)
    Y = complex_normal((2, 3), gen, C128).requires_grad_(True)
    assert torch.autograd.gradcheck(ls_channel_estimate, (Y, X))


# -------------------------------------------------------------------------------- targets
def test_swerling_rcs_is_exponential(gen):
    rcs = swerling_rcs((200_000,), gen, mean_rcs=2.0, dtype=torch.float64)
    n = rcs.numel()
    assert abs(rcs.mean().item() - 2.0) < 2.0 * 5 / math.sqrt(n)
    assert abs(rcs.var().item() - 4.0) < 4.0 * 10 / math.sqrt(n)  # Var = σ̄² (kurtosis-inflated tol)
    # P(σ > σ̄) = e^{-1} for an exponential law
    assert abs((rcs > 2.0).double().mean().item() - math.exp(-1)) < 5 * math.sqrt(0.25 / n)
    assert bool((rcs >= 0).all())


def test_swerling_models_shapes(gen):
    assert swerling_rcs((4, 3), gen).shape == (4, 3)
    assert swerling_rcs((4, 3), gen, model="II", num_symbols=7).shape == (4, 7, 3)
    with pytest.raises(ValueError):
        swerling_rcs((4, 3), gen, model="III")
    with pytest.raises(ValueError):
        swerling_rcs((4, 3), gen, model="II")
    with pytest.raises(ValueError):
        swerling_rcs((4, 3), gen, mean_rcs=-1.0)


def test_radar_path_loss_and_amplitudes(gen):
    lam = 0.005
    R = torch.tensor([10.0, 20.0], dtype=torch.float64)
    pl = radar_path_loss(lam, R)
    assert torch.allclose(pl, lam**2 / ((4 * math.pi) ** 3 * R**4))
    assert pl[0] / pl[1] == pytest.approx(16.0)
    bi = radar_path_loss(lam, R, torch.tensor([5.0, 40.0], dtype=torch.float64))
    assert torch.allclose(bi, lam**2 / ((4 * math.pi) ** 3 * R**2 * torch.tensor([25.0, 1600.0], dtype=torch.float64)))
    rcs = torch.tensor([1.0, 3.0], dtype=torch.float64)
    beta = target_amplitudes(rcs, pl, gen, transmit_power=2.0)
    assert beta.dtype == C128
    assert torch.allclose(beta.abs() ** 2, 2.0 * rcs * pl)
    fixed = target_amplitudes(rcs, pl, transmit_power=2.0, phases=torch.tensor([0.0, math.pi / 2], dtype=torch.float64))
    assert torch.allclose(fixed.angle(), torch.tensor([0.0, math.pi / 2], dtype=torch.float64))
    with pytest.raises(ValueError):
        radar_path_loss(lam, torch.tensor([-1.0]))
    with pytest.raises(ValueError):
        target_amplitudes(rcs, pl)  # neither phases nor generator


def test_target_phase_uniform(gen):
    beta = target_amplitudes(torch.ones(100_000, dtype=torch.float64), torch.ones(100_000, dtype=torch.float64), gen)
    assert abs(beta.mean().item()) < 5 / math.sqrt(100_000)  # E e^{jϕ} = 0


def test_thermal_noise_power():
    # kT at 290 K is -174 dBm/Hz
    n = thermal_noise_power(1.0)
    assert 10 * math.log10(n * 1e3) == pytest.approx(-173.98, abs=0.01)
    assert thermal_noise_power(256 * 240e3, 8.0) == pytest.approx(BOLTZMANN * 290 * 256 * 240e3 * 10**0.8)
    with pytest.raises(ValueError):
        thermal_noise_power(-1.0)
