r"""AoD positioning estimators: ML AoD from precoded pilots and ML position from AoDs.

Observation model (downlink MISO, seed 004 eq. 2): a single-antenna receiver observes T
transmissions of a station with precoders F = [f_1, …, f_T] (M × T) and pilots s = 1,

    y = α Fᵀ a(θ) + n,   n ~ CN(0, σ² I_T),

with an unknown complex gain α.  Concentrating α out of the likelihood gives

    θ̂ = argmax_θ P(θ),   P(θ) = |yᴴ Fᵀ a(θ)|² / ‖Fᵀ a(θ)‖²

(the normalised matched-filter output; seed eq. 11 prints arg min, the ML estimate is the arg
max), computed by a grid search over a sector and parabolic refinement
(:func:`isackit.estimators.peaks.refine_parabolic`).

ML position from the AoDs of I stations at q_i with orientations ψ_i (seed eq. 12):

    p̂ = argmin_p Σ_i (θ̂_i + ψ_i - atan2(p_y - q_iy, p_x - q_ix))² / (2σ_i²),

initialised by the weighted linear least-squares intersection of the bearing lines and
refined by Gauss–Newton steps, batched (no loop over trials).

Conventions: a transmitted vector f radiates a(θ)ᵀ f; angles in radians; batch-first.

Example:
    >>> import torch
    >>> from isackit.geometry import ula
    >>> from isackit.impairments import ArrayModel
    >>> arr = ArrayModel(ula(8, 0.5, 1.0))
    >>> F = arr.steering(torch.linspace(-0.4, 0.4, 4, dtype=torch.float64)).conj() / 8
    >>> y = (F.mT @ arr.steering(torch.tensor([0.1], dtype=torch.float64)))[..., 0]
    >>> round(float(ml_aod(y, F, arr, torch.tensor([-0.5, 0.5], dtype=torch.float64))), 6)
    0.1
"""

from __future__ import annotations

import math

import torch

from .._checks import check_last_dims
from ..geometry.scene import local_angles
from ..impairments.base import ArrayModel
from .peaks import refine_parabolic

__all__ = ["ml_aod_spectrum", "ml_aod", "ml_position"]


def ml_aod_spectrum(y: torch.Tensor, precoder: torch.Tensor, array: ArrayModel, theta: torch.Tensor
                    ) -> torch.Tensor:
    """P(θ) = |yᴴ Fᵀ a(θ)|² / ‖Fᵀ a(θ)‖² for θ ``(..., G)``, y ``(..., T)``, F ``(..., M, T)``.

    Returns ``(..., G)`` real (the concentrated log-likelihood up to constants).
    """
    a = array.steering(theta).to(precoder.dtype)           # (..., M, G)
    b = precoder.mT @ a                                     # (..., T, G)
    num = (y.to(b.dtype).conj().unsqueeze(-1) * b).sum(-2).abs() ** 2
    return num / (b.abs() ** 2).sum(-2)


def ml_aod(y: torch.Tensor, precoder: torch.Tensor, array: ArrayModel, sector: torch.Tensor,
           grid_size: int = 256, refine_iterations: int = 12) -> torch.Tensor:
    """ML AoD θ̂ = argmax_{θ∈U} P(θ) (seed eq. 11, arg MAX), batched.

    Args:
        y: ``(..., T)`` complex observations.
        precoder: F ``(..., M, T)`` (broadcast against y's batch dims).
        array: the ASSUMED model (nominal array for the benchmark).
        sector: ``(..., 2)`` radians.
        grid_size: points of the coarse grid over the sector (end points included).
        refine_iterations: parabolic refinement steps (bracket shrinks 4× each).

    Returns:
        ``(...)`` estimates in radians, clamped to the sector.

    Below the ML threshold SNR a fraction of the estimates lands on secondary maxima of P(θ)
    several √CRB away: these are outliers of the likelihood itself (P(θ̂) ≥ P(θ_true)), not
    of the search.
    """
    check_last_dims(y, (None,), "y", "(..., T)")
    check_last_dims(sector, (2,), "sector", "(..., 2)")
    real = y.real.dtype
    sec = sector.to(real)
    frac = torch.linspace(0.0, 1.0, grid_size, dtype=real, device=y.device)
    grid = sec[..., :1] + (sec[..., 1:] - sec[..., :1]) * frac
    P = ml_aod_spectrum(y, precoder, array, grid)
    idx = P.argmax(-1, keepdim=True)
    theta0 = torch.gather(grid.expand(P.shape), -1, idx).squeeze(-1)
    step = (sec[..., 1] - sec[..., 0]) / (grid_size - 1)
    lo, hi = sec[..., 0], sec[..., 1]

    def func(t):
        t = torch.minimum(torch.maximum(t, lo), hi)
        return ml_aod_spectrum(y, precoder, array, t.unsqueeze(-1)).squeeze(-1)

    # refine_parabolic takes a scalar step: use the largest one and normalise per element
    theta = refine_parabolic(func, theta0, float(step.max()), iterations=refine_iterations)
    return torch.minimum(torch.maximum(theta, lo), hi)


def _regularised(H: torch.Tensor, eps: float) -> torch.Tensor:
    """H + ε·tr(H)·I for ``(..., 2, 2)``, ε ≥ 100 × machine epsilon (guards parallel bearings)."""
    eps = max(eps, 100 * torch.finfo(H.dtype).eps)
    tr = H.diagonal(dim1=-2, dim2=-1).sum(-1)[..., None, None].clamp_min(torch.finfo(H.dtype).tiny)
    return H + eps * tr * torch.eye(H.shape[-1], dtype=H.dtype, device=H.device)


def ml_position(theta_hat: torch.Tensor, variances: torch.Tensor, bs_positions: torch.Tensor,
                orientations: torch.Tensor, iterations: int = 10, box: torch.Tensor | None = None
                ) -> torch.Tensor:
    r"""ML position from AoDs (seed eq. 12): weighted bearing least squares, batched.

    Args:
        theta_hat: ``(..., I)`` AoD estimates (local angles, radians).
        variances: ``(..., I)`` σ_i² (the AoD CRBs).
        bs_positions: ``(I, 2)`` metres; orientations ``(I,)`` radians.
        iterations: Gauss–Newton steps after the linear initialisation.
        box: optional ``(2, 2)`` [[x_min, y_min], [x_max, y_max]] prior region to clamp to.

    Returns:
        ``(..., 2)`` position estimates.
    """
    q = bs_positions.to(theta_hat)
    phi = theta_hat + orientations.to(theta_hat)                # global bearings
    w = 1.0 / variances.to(theta_hat)
    n = torch.stack([torch.sin(phi), -torch.cos(phi)], dim=-1)  # line normals, nᵀ(p - q) = 0
    # linear WLS:  Σ w n nᵀ p = Σ w n nᵀ q
    Amat = (w[..., None, None] * n.unsqueeze(-1) * n.unsqueeze(-2)).sum(-3)
    rhs = (w[..., None] * n * (n * q).sum(-1, keepdim=True)).sum(-2)
    p = torch.linalg.solve(_regularised(Amat, 1e-9), rhs.unsqueeze(-1)).squeeze(-1)
    if box is not None:
        p = torch.minimum(torch.maximum(p, box[0].to(p)), box[1].to(p))
    for _ in range(int(iterations)):
        az, _ = local_angles(p.unsqueeze(-2), q, orientations.to(p))
        r = torch.remainder(theta_hat - az + math.pi, 2 * math.pi) - math.pi  # (..., I)
        d = p.unsqueeze(-2) - q
        G = torch.stack([-d[..., 1], d[..., 0]], dim=-1) / (d ** 2).sum(-1, keepdim=True)  # ∂θ/∂p
        H = (w[..., None, None] * G.unsqueeze(-1) * G.unsqueeze(-2)).sum(-3)
        g = (w[..., None] * G * r.unsqueeze(-1)).sum(-2)
        p = p + torch.linalg.solve(_regularised(H, 1e-12), g.unsqueeze(-1)).squeeze(-1)
        if box is not None:
            p = torch.minimum(torch.maximum(p, box[0].to(p)), box[1].to(p))
    return p
