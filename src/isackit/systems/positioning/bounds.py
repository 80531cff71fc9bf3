r"""S4 bound assembly: AoD CRB, PEB and the benchmark's MCRB for any precoder (seed 004).

All bounds use the TRUE (impaired) array (seed footnote 2); the generic pieces are the
library's (:mod:`isackit.bounds`): :func:`~isackit.bounds.crb_single_path` (AoD CRB with an
unknown complex gain), :func:`~isackit.bounds.position.peb_aoa` (PEB by the geometry
Jacobian) and :func:`~isackit.bounds.mismatch.mcrb_deterministic` (MCRB, Fortunati et al.).
With σ² = 1 and |α|² = SNR (seed IV-A):

    CRB_i(θ_i) = 1 / (2 SNR J_i(θ_i)),  J = ‖ḃ‖² - |bᴴḃ|²/‖b‖², b = F_iᵀ ã_i(θ_i);
    PEB(p) = sqrt(tr((Σ_i ∇θ_i ∇θ_iᵀ / CRB_i)⁻¹)).

The benchmark assumes the nominal array a(θ) while the data follow ã(θ): its AoD error
is bounded by the MCRB around the pseudo-true AoD θ₀ plus the squared bias (θ₀ - θ)²
(``mcrb_aod``).  For the position, the benchmark's bearing intersection is linearised at
the pseudo-true bearings: p₀ = ml_position(θ₀), cov = G⁻¹ diag(MCRB_i) G⁻ᵀ (G = ∂θ/∂p at
p₀, I = 2; weighted LS for I > 2), bound = tr(cov) + ‖p₀ - p‖² (``mcrb_position``).
Shapes are batch-first; use float64.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ...bounds import crb_single_path
from ...bounds.fisher import batched_jacobian
from ...bounds.mismatch import mcrb_deterministic
from ...bounds.position import aoa_map, peb_aoa
from ...impairments.base import ArrayModel
from .benchmark import ml_position
from ..._dtypes import complex_dtype

__all__ = ["aod_crb", "aod_crbs", "position_peb", "mcrb_aod", "mcrb_position"]


def _snr(snr_db, like: torch.Tensor) -> torch.Tensor:
    return 10.0 ** (torch.as_tensor(snr_db, dtype=like.dtype, device=like.device) / 10.0)


def aod_crb(precoder: torch.Tensor, array: ArrayModel, theta: torch.Tensor, snr_db) -> torch.Tensor:
    """AoD CRB (rad²) of y = α Fᵀ ã(θ) + n with SNR = |α|²/σ²: F ``(..., M, T)``, θ ``(...)``."""
    th = torch.as_tensor(theta)
    return crb_single_path(array, th, precoder, torch.sqrt(_snr(snr_db, th)).to(torch.complex128), 1.0)


def aod_crbs(precoders: torch.Tensor, arrays: Sequence[ArrayModel], theta: torch.Tensor, snr_db) -> torch.Tensor:
    """Per-BS CRBs: F ``(..., I, M, T)``, θ ``(..., I)`` → ``(..., I)`` rad²."""
    return torch.stack([aod_crb(precoders[..., i, :, :], arr, theta[..., i], snr_db)
                        for i, arr in enumerate(arrays)], dim=-1)


def position_peb(precoders: torch.Tensor, arrays: Sequence[ArrayModel], position: torch.Tensor,
                 bs_positions: torch.Tensor, orientations: torch.Tensor, snr_db) -> torch.Tensor:
    """PEB (m) at p ``(..., 2)`` for precoders ``(..., I, M, T)`` and the TRUE arrays."""
    theta = aoa_map(bs_positions, orientations)(position)
    crb = aod_crbs(precoders, arrays, theta, snr_db)
    return peb_aoa(position, bs_positions.to(position), orientations.to(position), crb)


def mcrb_aod(precoder: torch.Tensor, true_array: ArrayModel, assumed_array: ArrayModel,
             theta: torch.Tensor, snr_db, iterations: int = 30) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """MCRB of the benchmark's AoD ML (assumes ``assumed_array``, data from ``true_array``).

    Args:
        precoder: F ``(..., M, T)`` (complex128 recommended); θ ``(...)`` float64.
    Returns:
        ``(mse_bound, mcrb, bias)`` each ``(...)``: MCRB + bias², the covariance part, θ₀ - θ.
        (The bound does not depend on the phase of α; α = sqrt(SNR) is used.)
    """
    th = torch.as_tensor(theta)
    F = precoder.to(complex_dtype(th.dtype))
    alpha = torch.sqrt(_snr(snr_db, th)).to(F.dtype)
    a_true = true_array.steering(th.unsqueeze(-1))            # (..., M, 1)
    mu = alpha[..., None] * (F.mT @ a_true).squeeze(-1)        # (..., T)

    def response(t):                                           # (..., 1) -> (..., T, 1)
        return F.mT @ assumed_array.steering(t).to(F.dtype)

    res = mcrb_deterministic(mu, response, th.unsqueeze(-1), 1.0, iterations=iterations)
    m, b = res.mcrb[..., 0, 0], res.bias[..., 0]
    return m + b ** 2, m, b


def mcrb_position(precoders: torch.Tensor, true_arrays: Sequence[ArrayModel],
                  assumed_arrays: Sequence[ArrayModel], position: torch.Tensor, bs_positions: torch.Tensor,
                  orientations: torch.Tensor, snr_db) -> torch.Tensor:
    """Misspecified bound (m) on the benchmark's position RMSE at p ``(..., 2)`` (see module doc)."""
    theta = aoa_map(bs_positions, orientations)(position)                # (..., I)
    parts = [mcrb_aod(precoders[..., i, :, :], true_arrays[i], assumed_arrays[i], theta[..., i], snr_db)
             for i in range(len(true_arrays))]
    m = torch.stack([p[1] for p in parts], dim=-1)
    theta0 = theta + torch.stack([p[2] for p in parts], dim=-1)
    w_var = aod_crbs(precoders, assumed_arrays, theta0, snr_db)        # the benchmark's weights
    p0 = ml_position(theta0, w_var, bs_positions.to(theta0), orientations.to(theta0))
    G = batched_jacobian(aoa_map(bs_positions, orientations), p0, event_ndim=1)  # (..., I, 2)
    W = torch.diag_embed(1.0 / w_var)
    H = torch.linalg.inv(G.mT @ W @ G) @ G.mT @ W                      # (..., 2, I)
    cov = H @ torch.diag_embed(m) @ H.mT
    return torch.sqrt(torch.diagonal(cov, dim1=-2, dim2=-1).sum(-1) + ((p0 - position) ** 2).sum(-1))

