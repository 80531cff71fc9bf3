r"""Precoders and codebooks built from an array model's response.

Convention (conventions.md): a transmitted vector f radiates a(θ)ᵀ f towards θ, with a(θ) the
(possibly impaired) response of an :class:`~isackit.impairments.ArrayModel`.  Functions are
batched over leading dims, follow the array model's dtype/device and are differentiable.
"""

from __future__ import annotations

import torch

from .._checks import check_last_dims, check_positive_int
from ..impairments.base import ArrayModel

__all__ = ["derivative_codebook"]


def derivative_codebook(array: ArrayModel, sector: torch.Tensor, num_transmissions: int) -> torch.Tensor:
    r"""Directional + derivative beams on T/2 evenly spaced angles of a sector (seed 004 eqs. 8-10).

    With θ_1..θ_{T/2} evenly spaced over [θ_min, θ_max] (end points included),

        C = [conj a(θ_1), …, conj a(θ_{T/2}), conj ȧ(θ_1), …, conj ȧ(θ_{T/2})],

    each column normalised to unit norm (a beam towards θ is conj a(θ) in the aᵀf convention;
    ȧ = ∂a/∂θ).  Keskin et al. (IEEE TVT 2022) combine such beams with a CRB-optimal power
    allocation (:func:`isackit.bounds.aod.crb_optimal_precoder`).

    Args:
        array: the model the designer uses (the nominal array for the benchmark).
        sector: ``(..., 2)`` = [θ_min, θ_max] radians; the grid includes both end points.
        num_transmissions: T (even).

    Returns:
        ``(..., M, T)`` complex, unit-norm columns (directional first, then derivative).
    """
    check_last_dims(sector, (2,), "sector", "(..., 2)")
    T = check_positive_int(num_transmissions, "num_transmissions")
    if T % 2:
        raise ValueError(f"num_transmissions must be even, got {T}")
    frac = torch.linspace(0.0, 1.0, T // 2, dtype=sector.dtype, device=sector.device)
    grid = sector[..., :1] + (sector[..., 1:] - sector[..., :1]) * frac  # (..., T/2)
    a, (da, _) = array.steering_and_derivatives(grid)
    F = torch.cat([a, da], dim=-1).conj()
    return F / torch.linalg.vector_norm(F, dim=-2, keepdim=True)
