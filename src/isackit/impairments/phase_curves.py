r"""Angle-dependent phase-error curves of any impaired array model (seed 002, Fig. 1b).

Seed 002 measures, per element m and direction θ, the phase of antenna m relative to the
reference antenna, minus the ideal phase difference:

    ψ_m(θ) = arg( ã_m(θ) ã_r(θ)^* ) − arg( a_m(θ) a_r(θ)^* ),

ã the TRUE response (any impairment chain: angle-dependent phase errors, mutual coupling,
gain-phase errors, displaced elements …) and a the ASSUMED one (usually the ideal array);
r the reference element (ψ_r ≡ 0).  :func:`phase_error_curves` evaluates it for two
:class:`~isackit.impairments.ArrayModel` objects, optionally per subcarrier, wrapped to
(−π, π] or unwrapped along the angle axis; :func:`tabulate_phase_error` turns the curves into
a :class:`~isackit.impairments.TabulatedPhaseError` (the chain seen as seed 002's model).

For a :class:`~isackit.impairments.SmoothPhaseError` with reference element 0 the curves
are its ρψ; for mutual coupling C they are arg((Ca)_m (Ca)_r^*) − arg(a_m a_r^*).
"""

from __future__ import annotations

import math

import torch

from .._checks import check_finite
from .angle_phase import TabulatedPhaseError
from .base import ArrayModel

__all__ = ["phase_error_curves", "tabulate_phase_error", "unwrap_phase"]


def unwrap_phase(phase: torch.Tensor, dim: int = -1) -> torch.Tensor:
    r"""Unwrap phases along ``dim``: add multiples of 2π so that consecutive samples differ by
    at most π (NumPy's ``unwrap``), keeping the first sample.  Differentiable."""
    d = torch.diff(phase, dim=dim)
    dw = torch.remainder(d + math.pi, 2 * math.pi) - math.pi
    dw = torch.where((dw == -math.pi) & (d > 0), torch.full_like(dw, math.pi), dw)
    first = phase.narrow(dim, 0, 1)
    return torch.cat([first, first + torch.cumsum(dw, dim=dim)], dim=dim)


def _as_model(m, name: str) -> ArrayModel:
    if not isinstance(m, ArrayModel):
        raise TypeError(f"{name} must be an ArrayModel, got {type(m).__name__}")
    return m


def phase_error_curves(true_model: ArrayModel, assumed_model: ArrayModel, azimuth, subcarriers=None, *,
                       reference: int = 0, unwrap: bool = False) -> torch.Tensor:
    r"""ψ_m(θ) = arg(ã_m ã_r^*) − arg(a_m a_r^*) for the true vs assumed array.

    Args:
        true_model, assumed_model: :class:`ArrayModel` with the same number of elements M.
        azimuth: ``(..., G)`` radians (elevation 0).
        subcarriers: 1-D subcarrier indices for subcarrier-dependent models (None: none).
        reference: the reference element r (ψ_r ≡ 0).
        unwrap: unwrap along the angle axis (use a sorted, fine grid).

    Returns:
        ``(..., M, G)``, or ``(..., N', M, G)`` with ``subcarriers``; radians, wrapped to
        (−π, π] unless ``unwrap``.  Differentiable in the models' parameters.

    Example:
        >>> from isackit.geometry import ula
        >>> from isackit.impairments import SmoothPhaseError
        >>> imp = SmoothPhaseError.sample(4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
        >>> th = torch.linspace(-1.0, 1.0, 9, dtype=torch.float64)
        >>> psi = phase_error_curves(ArrayModel(ula(4), [imp]), ArrayModel(ula(4)), th)
        >>> torch.allclose(psi, imp.phase(th))
        True
    """
    t, a = _as_model(true_model, "true_model"), _as_model(assumed_model, "assumed_model")
    if t.num_elements != a.num_elements:
        raise ValueError(f"the models have {t.num_elements} and {a.num_elements} elements")
    r = int(reference)
    if not 0 <= r < t.num_elements:
        raise ValueError(f"reference must be in [0, {t.num_elements - 1}], got {reference}")
    az = torch.as_tensor(azimuth)
    if not az.is_floating_point():
        az = az.to(torch.get_default_dtype())
    check_finite(az, "azimuth")
    sc_t = subcarriers if any(i.subcarrier_dependent for i in t.impairments) else None
    sc_a = subcarriers if any(i.subcarrier_dependent for i in a.impairments) else None
    At = t.steering(az, subcarriers=sc_t)
    Aa = a.steering(az, subcarriers=sc_a)
    if subcarriers is not None:  # broadcast a subcarrier-independent model over N'
        n = torch.as_tensor(subcarriers).numel()
        At = At if sc_t is not None else At.unsqueeze(-3).expand(*At.shape[:-2], n, *At.shape[-2:])
        Aa = Aa if sc_a is not None else Aa.unsqueeze(-3).expand(*Aa.shape[:-2], n, *Aa.shape[-2:])
    rel = At * At[..., r:r + 1, :].conj() * (Aa * Aa[..., r:r + 1, :].conj()).conj()
    psi = torch.angle(rel)
    return unwrap_phase(psi, -1) if unwrap else psi


def tabulate_phase_error(true_model: ArrayModel, assumed_model: ArrayModel, angle_grid, subcarriers=None, *,
                         reference: int = 0, **kwargs) -> TabulatedPhaseError:
    r"""The true array as seed 002's model: a :class:`TabulatedPhaseError` whose curves are
    :func:`phase_error_curves` (unwrapped) on ``angle_grid`` ``(G,)`` (per subcarrier when
    ``subcarriers`` is given: table ``(M, N', G)``).  Gains of the true array are not kept
    (the seed's model is phase-only).  ``kwargs`` go to :class:`TabulatedPhaseError`."""
    grid = torch.as_tensor(angle_grid, dtype=torch.float64)
    with torch.no_grad():
        psi = phase_error_curves(true_model, assumed_model, grid, subcarriers, reference=reference, unwrap=True)
    if psi.ndim != (3 if subcarriers is not None else 2):
        raise ValueError("tabulate_phase_error takes models without batch dimensions")
    table = psi.transpose(0, 1) if subcarriers is not None else psi  # (N', M, G) -> (M, N', G)
    return TabulatedPhaseError(grid, table, per_subcarrier=subcarriers is not None, **kwargs)
