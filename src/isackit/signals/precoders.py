r"""Analog/digital beamforming precoders built from an array model's response.

Conventions (conventions.md): a transmitted vector f radiates a(θ)^T f towards θ, with a(θ)
the (possibly impaired, possibly learned) response of an :class:`~isackit.impairments.ArrayModel`.
Every precoder (and every codebook column) here has unit norm ‖f‖ = 1:

* max-response (matched) beam towards θ:  f(θ) = conj(a(θ)) / ‖a(θ)‖;
* sector beam over [μ − w/2, μ + w/2]:  f ∝ Σ_i conj(a(θ_i)) / ‖a(θ_i)‖ over P evenly spaced
  directions θ_i = μ + (i/(P−1) − 1/2) w;
* ISAC precoder (seed 000): f = (√η f_s + √(1−η) e^{jφ} f_c) / ‖·‖, a sensing beam f_s
  (the sector beam over the prior sector) and a comm beam f_c (the max-response beam towards
  the UE), with a sensing-energy fraction η and a relative phase φ;
* beam pattern |a(θ)^T f|² on a grid of directions;
* derivative codebook (seed 004): directional and derivative beams conj a(θ_i), conj ȧ(θ_i)
  on a grid of a sector, unit-norm columns.

All functions are batched (leading batch dims), follow the dtype/device of the array model and
are differentiable with respect to the angles and the array model's parameters (so a learned
array model trains through them).
"""

from __future__ import annotations

import math

import torch

from .._checks import check_last_dims, check_positive_int
from .._dtypes import abs2
from ..impairments.base import ArrayModel

__all__ = ["normalise", "steered_beam", "sector_beam", "isac_precoder", "beam_pattern", "derivative_codebook"]


def normalise(f: torch.Tensor) -> torch.Tensor:
    """f / ‖f‖ over the last dim (``(..., M)``); a zero vector stays zero. Differentiable."""
    return f / abs2(f).sum(-1, keepdim=True).clamp_min(1e-60).sqrt()


def steered_beam(tx: ArrayModel, angle: torch.Tensor) -> torch.Tensor:
    """Max-response beam f = conj(a(θ)) / ‖a(θ)‖: angles ``(...,)`` rad → ``(..., M)``.

    Example:
        >>> from isackit.geometry import ula
        >>> f = steered_beam(ArrayModel(ula(8)), torch.tensor([0.3]))
        >>> f.shape, round(float(f.abs().square().sum()), 6)
        (torch.Size([1, 8]), 1.0)
    """
    a = tx.steering(angle.unsqueeze(-1))[..., 0]
    return normalise(a.conj())


def sector_beam(tx: ArrayModel, center: torch.Tensor, width: torch.Tensor, points: int) -> torch.Tensor:
    """Sensing beam over [μ − w/2, μ + w/2]: normalised Σ_i conj(a(θ_i))/‖a(θ_i)‖, i = 1..P.

    Args:
        tx: the transmit array model.
        center, width: ``(...,)`` sector centre μ and width w (rad).
        points: P, directions evenly spaced over the sector (ends included).

    Returns:
        ``(..., M)`` unit-norm precoders.
    """
    if int(points) < 1:
        raise ValueError(f"points must be a positive integer, got {points!r}")
    offs = torch.linspace(-0.5, 0.5, int(points), dtype=center.dtype, device=center.device)
    ang = center.unsqueeze(-1) + offs * width.unsqueeze(-1)                    # (..., P)
    a = tx.steering(ang)                                                       # (..., M, P)
    return normalise((a.conj() / abs2(a).sum(-2, keepdim=True).sqrt()).sum(-1))


def isac_precoder(tx: ArrayModel, sector_center: torch.Tensor, sector_width: torch.Tensor,
                  comm_angle: torch.Tensor, eta: float, comm_phase: float = 0.0,
                  points: int = 8) -> torch.Tensor:
    r"""ISAC precoder f = normalise(√η f_s + √(1−η) e^{jφ} f_c) (seed 000).

    Args:
        tx: the transmit array model (the ASSUMED one at a transmitter that does not know its
            impairments).
        sector_center, sector_width: ``(...,)`` the sensing sector (rad), see :func:`sector_beam`.
        comm_angle: ``(...,)`` direction of the UE (rad), see :func:`steered_beam`.
        eta: η ∈ [0, 1], the sensing-energy fraction before normalisation.
        comm_phase: φ (rad), the comm beam's phase relative to the sensing beam.
        points: directions of the sector beam.

    Returns:
        ``(..., M)`` unit-norm precoders.

    Example:
        >>> from isackit.geometry import ula
        >>> f = isac_precoder(ArrayModel(ula(16)), torch.tensor([0.2]), torch.tensor([0.3]),
        ...                   torch.tensor([-0.5]), eta=0.5)
        >>> round(float(f.abs().square().sum()), 6)
        1.0
    """
    if not 0.0 <= float(eta) <= 1.0:
        raise ValueError(f"eta must lie in [0, 1], got {eta}")
    f_s = sector_beam(tx, sector_center, sector_width, points)
    f_c = steered_beam(tx, comm_angle)
    rot = complex(math.cos(comm_phase), math.sin(comm_phase))
    return normalise(math.sqrt(eta) * f_s + math.sqrt(1.0 - eta) * rot * f_c)


def beam_pattern(tx: ArrayModel, f: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
    """|a(θ)^T f|² for precoders f ``(B, M)`` and angles ``(G,)`` (shared) or ``(B, G)`` → ``(B, G)``."""
    A = tx.steering(angles)                                                    # (M, G) or (B, M, G)
    if A.ndim == 2:
        return abs2(f @ A)
    return abs2((f.unsqueeze(-2) @ A).squeeze(-2))


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
