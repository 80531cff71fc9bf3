r"""Position error bound (PEB) through the Jacobian of the scene geometry.

If the channel parameters ξ = g(p) (angles, delays … at every station) are a smooth function
of the position p, and F_ξ is their Fisher information (nuisance parameters already
marginalised, e.g. the inverse of per-station CRBs), the Fisher information of p is

    F_p = Jᵀ F_ξ J,   J = ∂g/∂pᵀ  (Q × D),

and PEB = sqrt(tr(F_p⁻¹)) (metres), a lower bound on the position RMSE of any unbiased
estimator (seed 004, Sec. V; Kay, §3.8 on reparametrisation).

The geometry map defaults to :func:`isackit.geometry.scene.multistation_parameters`, so the bound uses the library's one definition of local angles and delays.
Jacobians are autograd (:func:`~.fisher.batched_jacobian`), batched over positions.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .._checks import check_ndim_at_least, check_positive
from ..geometry.scene import multistation_parameters
from .fisher import batched_jacobian

__all__ = ["aoa_map", "fisher_position", "peb", "peb_aoa", "peb_from_fim"]


def fisher_position(measure_fn: Callable[[torch.Tensor], torch.Tensor], position: torch.Tensor,
                    fim_channel: torch.Tensor) -> torch.Tensor:
    r"""F_p = Jᵀ F_ξ J with J = ∂ξ/∂p from autograd.

    Args:
        measure_fn: position ``(..., D)`` → channel parameters ``(..., Q)`` (batch-wise).
        position: p, ``(..., D)`` metres (D = 2 or 3), float64 recommended.
        fim_channel: F_ξ, ``(..., Q, Q)``.

    Returns:
        ``(..., D, D)``.  Differentiable.
    """
    check_ndim_at_least(position, 1, "position", "(..., D)")
    J = batched_jacobian(measure_fn, position, event_ndim=1)  # (..., Q, D)
    if J.shape[-2] != fim_channel.shape[-1]:
        raise ValueError(f"fim_channel must be (..., Q, Q) with Q = {J.shape[-2]} channel parameters, "
                         f"got {tuple(fim_channel.shape)}")
    return J.mT @ fim_channel.to(J.dtype) @ J


def peb_from_fim(fim_position: torch.Tensor) -> torch.Tensor:
    """PEB = sqrt(tr(F_p⁻¹)), ``(...)`` metres."""
    F = 0.5 * (fim_position + fim_position.mT)
    return torch.sqrt(torch.diagonal(torch.linalg.inv(F), dim1=-2, dim2=-1).sum(-1))


def peb(measure_fn: Callable[[torch.Tensor], torch.Tensor], position: torch.Tensor,
        fim_channel: torch.Tensor) -> torch.Tensor:
    """Position error bound sqrt(tr((Jᵀ F_ξ J)⁻¹)), ``(...)`` metres; see :func:`fisher_position`."""
    return peb_from_fim(fisher_position(measure_fn, position, fim_channel))


def aoa_map(station_positions: torch.Tensor, orientations: torch.Tensor | float = 0.0
            ) -> Callable[[torch.Tensor], torch.Tensor]:
    r"""Position ``(..., 2|3)`` → local azimuths ``(..., S)`` at S stations (AoA, or AoD
    towards the point), φ_i = atan2(p_y - q_iy, p_x - q_ix) - ψ_i (seed 004, eq. 3)."""

    def fn(p):
        return multistation_parameters(p, positions=station_positions.to(p.dtype),
                                       orientations=torch.as_tensor(orientations, dtype=p.dtype)).azimuth

    return fn


def peb_aoa(position: torch.Tensor, station_positions: torch.Tensor, orientations, angle_crb) -> torch.Tensor:
    r"""PEB from independent azimuth measurements at S stations (e.g. AoDs of seed 004).

    Args:
        position: ``(..., 2)`` metres.
        station_positions: ``(S, 2|3)`` metres; orientations ``(S,)`` rad.
        angle_crb: ``(..., S)`` per-station angle CRBs in rad² (F_ξ = diag(1/CRB)).
    """
    crb = torch.as_tensor(angle_crb, dtype=position.dtype, device=position.device)
    check_positive(crb, "angle_crb")
    return peb(aoa_map(station_positions, orientations), position, torch.diag_embed(1.0 / crb))
