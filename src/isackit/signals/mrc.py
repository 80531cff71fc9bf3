r"""Maximum-ratio combining with rebuilt channels, its SINR and the sum data rate (seed 003,
(15)–(17), (31)–(32)).

The receiver rebuilds each user's channel from estimated parameters,
ĥ_{k,t} = a(φ̂_k, ϑ̂_k) e^{j2π f̂_k t} (any common real scale cancels in the SINR and in PSK
decisions), and combines z_{k,t} = ĥ_{k,t}^H y_t (:func:`mrc_combine`).

Per-user SINR of MRC at a data symbol (unit-modulus symbols; the Doppler phases cancel), with
h_j = ζ ⊙ a(φ_j, ϑ_j) the true (impaired) spatial channel and G_j = received SNR of user j with an
ideal element (:func:`mrc_sinr`):

    γ_k = X_k / Y_k,  X_k = G_k |ĥ_k^H h_k|²,  Y_k = Σ_{j≠k} G_j |ĥ_k^H h_j|² + ‖ĥ_k‖²,

rate R_k = log2(1 + γ_k) and sum data rate SDR = Σ_k R_k (:func:`sum_rate`).  Batched over any
leading dims; differentiable.
"""

from __future__ import annotations

import math

import torch

from .._checks import check_complex

__all__ = ["rebuilt_channels", "mrc_combine", "mrc_sinr", "sum_rate"]


def rebuilt_channels(steering: torch.Tensor, doppler: torch.Tensor, times: torch.Tensor) -> torch.Tensor:
    r"""ĥ_{k,t} = a_k e^{j2π f_k t}: ``steering`` ``(..., M, K)``, ``doppler`` ``(..., K)`` Hz,
    ``times`` ``(T,)`` or ``(..., T)`` → ``(..., M, K, T)``."""
    check_complex(steering, "steering")
    rdt = steering.real.dtype
    phase = 2 * math.pi * doppler.to(rdt)[..., :, None] * times.to(rdt)[..., None, :]  # (..., K, T)
    return steering[..., :, :, None] * torch.polar(torch.ones_like(phase), phase)[..., None, :, :]


def mrc_combine(y: torch.Tensor, steering: torch.Tensor, doppler: torch.Tensor, times: torch.Tensor) -> torch.Tensor:
    r"""MRC outputs z_{k,t} = ĥ_{k,t}^H y_t, ``(..., K, T)``.

    Args:
        y: ``(..., M, T)`` received signals.
        steering: ``(..., M, K)`` rebuilt steering vectors a(φ̂_k, ϑ̂_k).
        doppler: ``(..., K)`` estimated Dopplers (Hz).  times: ``(T,)`` or ``(..., T)``.
    """
    check_complex(y, "y")
    rdt = y.real.dtype
    phase = -2 * math.pi * doppler.to(rdt)[..., :, None] * times.to(rdt)[..., None, :]  # (..., K, T)
    return (steering.to(y.dtype).mH @ y) * torch.polar(torch.ones_like(phase), phase)


def mrc_sinr(steering: torch.Tensor, channels: torch.Tensor, snr: torch.Tensor) -> torch.Tensor:
    r"""Per-user MRC SINR γ_k = X_k / Y_k (see module doc), ``(..., K)``.

    Args:
        steering: ``(..., M, K)`` rebuilt steering vectors ĥ_k (estimated angles, ideal array).
        channels: ``(..., M, K)`` true channels h_j = ζ ⊙ a(φ_j, ϑ_j).
        snr: ``(..., K)`` or ``(K,)`` real G_j = ρ_j SNR (d_ref/d_j)².
    """
    C = steering.mH @ channels.to(steering.dtype)  # (..., K, K): C_kj = ĥ_k^H h_j
    P = C.abs() ** 2 * snr.to(C.real.dtype)[..., None, :]
    X = torch.diagonal(P, dim1=-2, dim2=-1)
    noise = (steering.abs() ** 2).sum(-2)
    return X / (P.sum(-1) - X + noise)


def sum_rate(sinr: torch.Tensor) -> torch.Tensor:
    r"""SDR = Σ_k log2(1 + γ_k) over the last dim (bits/s/Hz)."""
    return torch.log2(1 + sinr).sum(-1)
