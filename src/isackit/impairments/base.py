r"""Impairment interface and the impaired array model.

An impairment changes an array's response in one of two ways:

* it moves the elements (``perturb_positions``: displacement / spacing errors), or
* it maps the steering matrix A (``apply``: gain-phase, mutual coupling, angle- and
  subcarrier-dependent phase errors).

The :class:`ArrayModel` composes a nominal :class:`~isackit.geometry.ArrayGeometry` with a
chain of impairments, in order: first all position perturbations, then the steering matrix,
then each response map in the order given.  The same object returns the derivatives of the
impaired response with respect to the angles (``apply_with_derivatives`` propagates them
through every map), so estimators, bounds and calibration all use one consistent model.

Every impairment carries a ``known`` flag: ``ArrayModel.assumed()`` keeps only the known
ones, which is the model a receiver that has not calibrated would use.  Parameters become
``nn.Parameter`` when an impairment is built with ``learnable=True`` so that an array model
can be calibrated by gradient descent.

Impairment values may carry leading batch dimensions (one draw per Monte Carlo trial or
per device); they broadcast against the batch dimensions of the steering matrix.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from ..geometry.arrays import ArrayGeometry, _as_angle, steering_matrix, steering_matrix_derivatives

__all__ = ["Impairment", "ArrayModel"]


class Impairment(nn.Module):
    """Base class of all impairments.

    Subclasses override :meth:`perturb_positions` (geometry) and/or :meth:`apply` (response).
    A response map that depends on the angles must also override
    :meth:`apply_with_derivatives`; the default assumes the map is linear in A and does not
    depend on the angles (then dA/dθ maps like A).

    Attributes:
        known: whether the receiver knows this impairment (kept by ``ArrayModel.assumed()``).
        angle_dependent: whether the response map depends on the direction.
        subcarrier_dependent: whether the map needs the ``subcarriers`` argument (then A has
            a subcarrier axis ``(..., N, M, K)``).
    """

    angle_dependent: bool = False
    subcarrier_dependent: bool = False

    def __init__(self, known: bool = False):
        super().__init__()
        self.known = bool(known)

    def perturb_positions(self, positions: torch.Tensor) -> torch.Tensor:
        """Map nominal positions ``(..., M, 3)`` to the perturbed ones (identity by default)."""
        return positions

    def apply(self, A: torch.Tensor, azimuth: torch.Tensor, elevation: torch.Tensor | None,
              subcarriers: torch.Tensor | None = None) -> torch.Tensor:
        """Map a steering matrix ``(..., M, K)`` (or ``(..., N, M, K)``) to the impaired one."""
        return A

    def apply_with_derivatives(self, A, dA: tuple[torch.Tensor, ...], azimuth, elevation,
                               subcarriers=None) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        """Map A and its angle derivatives together (product rule for angle-dependent maps)."""
        if self.angle_dependent:
            raise NotImplementedError(f"{type(self).__name__} is angle-dependent and must "
                                      "override apply_with_derivatives")
        return (self.apply(A, azimuth, elevation, subcarriers),
                tuple(self.apply(d, azimuth, elevation, subcarriers) for d in dA))

    def forward(self, A, azimuth, elevation=None, subcarriers=None):
        return self.apply(A, azimuth, elevation, subcarriers)

    def extra_repr(self) -> str:
        return f"known={self.known}"


class ArrayModel(nn.Module):
    """An array as the world (or a receiver) sees it: nominal geometry + impairment chain.

    Args:
        geometry: the nominal :class:`ArrayGeometry`.
        impairments: impairments applied in order (position perturbations act first).

    Example:
        >>> from isackit.geometry import ula
        >>> model = ArrayModel(ula(8))
        >>> model.steering(torch.tensor([0.1, -0.2])).shape
        torch.Size([8, 2])
    """

    def __init__(self, geometry: ArrayGeometry, impairments: Iterable[Impairment] = ()):
        super().__init__()
        if not isinstance(geometry, ArrayGeometry):
            raise TypeError(f"geometry must be an ArrayGeometry, got {type(geometry).__name__}")
        imps = list(impairments)
        for imp in imps:
            if not isinstance(imp, Impairment):
                raise TypeError(f"impairments must be Impairment objects, got {type(imp).__name__}")
        self.geometry = geometry
        self.impairments = nn.ModuleList(imps)

    # -- views ----------------------------------------------------------------------------
    @property
    def num_elements(self) -> int:
        return self.geometry.num_elements

    @property
    def wavelength(self) -> float:
        return self.geometry.wavelength

    def assumed(self) -> ArrayModel:
        """The model a receiver uses: the same geometry with only the known impairments."""
        return ArrayModel(self.geometry, [imp for imp in self.impairments if imp.known])

    def ideal(self) -> ArrayModel:
        """The nominal array without any impairment."""
        return ArrayModel(self.geometry)

    @property
    def angle_dependent(self) -> bool:
        return any(imp.angle_dependent for imp in self.impairments)

    # -- geometry -------------------------------------------------------------------------
    def positions(self, like: torch.Tensor | None = None) -> torch.Tensor:
        """Element positions after all position perturbations, ``(..., M, 3)``."""
        pos = self.geometry.positions if like is None else self.geometry.positions_like(like)
        for imp in self.impairments:
            pos = imp.perturb_positions(pos)
        return pos

    # -- responses ------------------------------------------------------------------------
    def _prepare(self, azimuth, elevation, subcarriers):
        az = _as_angle(azimuth, None, "azimuth")
        el = None if elevation is None else _as_angle(elevation, az, "elevation")
        if subcarriers is not None:
            subcarriers = torch.as_tensor(subcarriers, device=az.device)
            if subcarriers.ndim != 1:
                raise ValueError(f"subcarriers must have shape (N,), got {tuple(subcarriers.shape)}")
            az = az.unsqueeze(-2)  # (..., 1, K): steering becomes (..., 1, M, K) -> (..., N, M, K)
            el = None if el is None else el.unsqueeze(-2)
        elif any(imp.subcarrier_dependent for imp in self.impairments):
            raise ValueError("this array model has a subcarrier-dependent impairment; pass subcarriers=")
        return az, el, subcarriers

    def _positions_for(self, az: torch.Tensor, subcarriers) -> torch.Tensor:
        pos = self.positions(az)
        if subcarriers is not None:
            pos = pos.unsqueeze(-3)  # broadcast over the subcarrier axis
        return pos

    def steering(self, azimuth, elevation=None, subcarriers=None) -> torch.Tensor:
        """Impaired steering matrix ``(..., M, K)``, or ``(..., N, M, K)`` with ``subcarriers``.

        ``subcarriers`` is a 1-D tensor of subcarrier indices used by subcarrier-dependent
        impairments; without such an impairment the response is only broadcast along N.
        """
        az, el, sc = self._prepare(azimuth, elevation, subcarriers)
        A = steering_matrix(self._positions_for(az, sc), az, el, self.wavelength)
        for imp in self.impairments:
            A = imp.apply(A, az, el, sc)
        if sc is not None and A.shape[-3] != sc.shape[0]:
            A = A.expand(*A.shape[:-3], sc.shape[0], *A.shape[-2:])
        return A

    def steering_and_derivatives(self, azimuth, elevation=None, subcarriers=None
                                 ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """Impaired steering matrix and its derivatives ``(dA/dφ, dA/dϑ)`` (same shapes)."""
        az, el, sc = self._prepare(azimuth, elevation, subcarriers)
        pos = self._positions_for(az, sc)
        A = steering_matrix(pos, az, el, self.wavelength)
        dA = steering_matrix_derivatives(pos, az, el, self.wavelength)
        for imp in self.impairments:
            A, dA = imp.apply_with_derivatives(A, dA, az, el, sc)
        if sc is not None and A.shape[-3] != sc.shape[0]:
            shape = (*A.shape[:-3], sc.shape[0], *A.shape[-2:])
            A, dA = A.expand(shape), tuple(d.expand(shape) for d in dA)
        return A, dA

    def forward(self, azimuth, elevation=None, subcarriers=None) -> torch.Tensor:
        return self.steering(azimuth, elevation, subcarriers)
