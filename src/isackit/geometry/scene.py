r"""Global scene geometry: stations, and positions ↔ (angles, ranges, delays).

Conventions (``shared/design/conventions.md``):

* a station i sits at q_i (metres, global frame) with orientation ψ_i (radians, a rotation
  about the z axis); its array lives in its local frame, whose +x axis (broadside) points
  along the global direction ψ_i;
* the local azimuth of a point p is φ = atan2(p_y - q_y, p_x - q_x) - ψ (seed 004, eq. 3),
  returned wrapped to (-π, π]; the local elevation is ϑ = atan2(p_z - q_z, ‖(p - q)_xy‖);
* monostatic delay τ = 2R/c; bistatic delay τ = (R_tx + R_rx)/c, or the excess delay
  τ - R_direct/c over the direct tx → rx path; one-way delay τ = R/c (e.g. downlink
  positioning, seed 004).

Points and station positions are ``(..., 3)`` or ``(..., 2)`` (then z = 0) in metres; all
leading dims broadcast.  Every function here is a pure, batched, differentiable torch
function (so a position error bound can take the Jacobian ∂(angles, delays)/∂position by
autograd); the dtype/device follow the ``points`` argument.

Example:
    >>> st = Station(torch.tensor([-5.0, 0.0]), orientation=0.0)
    >>> p = monostatic_parameters(torch.tensor([0.0, 5.0]), st)
    >>> round(float(p.azimuth), 4), round(float(p.range), 4)
    (0.7854, 7.0711)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import torch

from .._checks import check_finite
from .._dtypes import real_dtype
from ..constants import SPEED_OF_LIGHT
from .arrays import ArrayGeometry, direction_vectors

__all__ = [
    "Station",
    "MonostaticParameters",
    "BistaticParameters",
    "StationParameters",
    "as_points",
    "local_angles",
    "ranges",
    "monostatic_parameters",
    "bistatic_parameters",
    "multistation_parameters",
    "stack_stations",
    "position_from_angle_range",
    "range_to_delay",
    "delay_to_range",
]


def _as_xyz(x, name: str, like: torch.Tensor | None = None) -> torch.Tensor:
    """``(..., 2)`` or ``(..., 3)`` → ``(..., 3)`` float tensor (z = 0 for 2-D input)."""
    t = _tensor(x, like)
    if t.is_complex():
        raise TypeError(f"{name} must be real coordinates in metres, got a complex tensor")
    if like is not None:
        t = t.to(device=like.device, dtype=like.dtype)
    elif not t.is_floating_point():
        t = t.to(torch.get_default_dtype())
    if t.ndim < 1 or t.shape[-1] not in (2, 3):
        raise ValueError(f"{name} must have shape (..., 2) or (..., 3) (metres), got {tuple(t.shape)}")
    check_finite(t, name)
    if t.shape[-1] == 2:
        t = torch.cat([t, torch.zeros_like(t[..., :1])], dim=-1)
    return t


def _tensor(x, like: torch.Tensor | None, default=None) -> torch.Tensor:
    """Tensors pass through; Python numbers/lists are created directly in ``like``'s dtype
    (or ``default``), never rounded through float32 first."""
    if isinstance(x, torch.Tensor):
        return x
    if like is not None:
        return torch.as_tensor(x, dtype=like.dtype, device=like.device)
    return torch.as_tensor(x, dtype=default) if default is not None else torch.as_tensor(x)


def as_points(points) -> torch.Tensor:
    """Validate points ``(..., 2)`` or ``(..., 3)`` metres and return them as ``(..., 3)``."""
    return _as_xyz(points, "points")


def _as_orientation(x, like: torch.Tensor) -> torch.Tensor:
    t = _tensor(x, like)
    if t.is_complex():
        raise TypeError("orientation must be real (radians), got a complex tensor")
    t = t.to(device=like.device, dtype=like.dtype)
    return check_finite(t, "orientation")


@dataclass(frozen=True, eq=False)
class Station:
    """A base station / sensing node: position, orientation and (optionally) its array.

    Attributes:
        position: ``(3,)`` (or ``(2,)``, stored with z = 0) position in metres, global frame.
        orientation: ψ in radians, rotation of the local frame about z (seed 004: 0° and 10°).
        array: the station's :class:`ArrayGeometry` in its local frame, or ``None``.
        name: a short label.
    """

    position: torch.Tensor
    orientation: float = 0.0
    array: ArrayGeometry | None = None
    name: str = "station"

    def __post_init__(self):
        pos = _as_xyz(_tensor(self.position, None, torch.float64), "position")
        if pos.ndim != 1:
            raise ValueError(f"a Station's position must have shape (2,) or (3,), got {tuple(pos.shape)}; "
                             "use the functions of this module with stacked positions for batches")
        o = float(self.orientation)
        if not math.isfinite(o):
            raise ValueError(f"orientation must be finite (radians), got {self.orientation}")
        if self.array is not None and not isinstance(self.array, ArrayGeometry):
            raise TypeError(f"array must be an ArrayGeometry or None, got {type(self.array).__name__}")
        object.__setattr__(self, "position", pos)
        object.__setattr__(self, "orientation", o)

    def position_like(self, ref: torch.Tensor) -> torch.Tensor:
        """Position ``(3,)`` in ``ref``'s (real) dtype and on its device."""
        dtype = real_dtype(ref.dtype) if (ref.is_complex() or ref.is_floating_point()) else None
        return self.position.to(dtype=dtype or self.position.dtype, device=ref.device)

    def orientation_like(self, ref: torch.Tensor) -> torch.Tensor:
        """Orientation as a 0-d tensor in ``ref``'s dtype/device."""
        return torch.tensor(self.orientation, dtype=self.position_like(ref).dtype, device=ref.device)


def stack_stations(stations: Sequence[Station], like: torch.Tensor | None = None
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack stations into ``(positions (S, 3), orientations (S,))`` for the batched functions."""
    stations = list(stations)
    if not stations or not all(isinstance(s, Station) for s in stations):
        raise ValueError("stations must be a non-empty sequence of Station objects")
    ref = like if like is not None else stations[0].position
    pos = torch.stack([s.position_like(ref) for s in stations])
    ori = torch.stack([s.orientation_like(ref) for s in stations])
    return pos, ori


def _station_args(station, orientation, like):
    if isinstance(station, Station):
        if orientation is not None:
            raise ValueError("pass orientation only with a position tensor, not with a Station")
        return station.position_like(like), station.orientation_like(like)
    q = _as_xyz(station, "station_position", like=like)
    return q, _as_orientation(0.0 if orientation is None else orientation, like)


def local_angles(points, station_position, orientation=None) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Local azimuth and elevation of points seen from a station.

    d = p - q rotated by -ψ about z: d' = R_z(-ψ) d; φ = atan2(d'_y, d'_x) ∈ (-π, π]
    (= atan2(p_y - q_y, p_x - q_x) - ψ wrapped, seed 004 eq. 3), ϑ = atan2(d_z, ‖d_xy‖).

    Args:
        points: ``(..., 2|3)`` metres.
        station_position: ``(..., 2|3)`` metres (or a :class:`Station`, then ``orientation``
            must be left at its default), broadcastable with ``points``.
        orientation: ψ, radians, broadcastable with the leading dims (``None``: 0).

    Returns:
        ``(azimuth, elevation)``, each ``(...)``; differentiable in all inputs (except at
        the station itself, where the angles are undefined).
    """
    p = as_points(points)
    q, psi = _station_args(station_position, orientation, p)
    d = p - q
    c, s = torch.cos(psi), torch.sin(psi)
    x = c * d[..., 0] + s * d[..., 1]
    y = -s * d[..., 0] + c * d[..., 1]
    az = torch.atan2(y, x)
    el = torch.atan2(d[..., 2], torch.sqrt(d[..., 0] ** 2 + d[..., 1] ** 2))
    return az, el


def ranges(points, station_position) -> torch.Tensor:
    """Euclidean distance ``(...)`` between points and station positions (broadcast)."""
    p = as_points(points)
    q = station_position.position_like(p) if isinstance(station_position, Station) else _as_xyz(
        station_position, "station_position", like=p)
    return torch.linalg.vector_norm(p - q, dim=-1)


def range_to_delay(distance, two_way: bool = False) -> torch.Tensor:
    """τ = R/c (one way) or 2R/c (two way, monostatic)."""
    r = torch.as_tensor(distance)
    return r * ((2.0 if two_way else 1.0) / SPEED_OF_LIGHT)


def delay_to_range(delay, two_way: bool = False) -> torch.Tensor:
    """R = c τ (one way) or c τ / 2 (two way, monostatic)."""
    t = torch.as_tensor(delay)
    return t * (SPEED_OF_LIGHT / (2.0 if two_way else 1.0))


class MonostaticParameters(NamedTuple):
    """Monostatic measurement of points: local azimuth (rad), range (m), delay τ = 2R/c (s)."""

    azimuth: torch.Tensor
    range: torch.Tensor
    delay: torch.Tensor


class BistaticParameters(NamedTuple):
    """Bistatic measurement: AoD at tx, AoA at rx (rad), delay (s; total or excess)."""

    aod: torch.Tensor
    aoa: torch.Tensor
    delay: torch.Tensor


class StationParameters(NamedTuple):
    """Per-station measurement, each ``(..., S)``: azimuth, elevation (rad), range (m), delay (s)."""

    azimuth: torch.Tensor
    elevation: torch.Tensor
    range: torch.Tensor
    delay: torch.Tensor


def monostatic_parameters(points, station: Station) -> MonostaticParameters:
    r"""Local azimuth, range R = ‖p - q‖ and round-trip delay τ = 2R/c of points.

    Args:
        points: ``(..., 2|3)`` metres.
        station: the co-located transmitter/receiver.

    Returns:
        :class:`MonostaticParameters` of ``(...)`` tensors; differentiable in ``points``.
        (The local elevation is ``local_angles(points, station)[1]``.)
    """
    if not isinstance(station, Station):
        raise TypeError(f"station must be a Station, got {type(station).__name__}")
    p = as_points(points)
    az, _ = local_angles(p, station)
    r = ranges(p, station)
    return MonostaticParameters(az, r, range_to_delay(r, two_way=True))


def bistatic_parameters(points, tx: Station, rx: Station, excess: bool = False) -> BistaticParameters:
    r"""AoD (local azimuth at ``tx``), AoA (local azimuth at ``rx``) and bistatic delay.

    τ = (‖p - q_tx‖ + ‖p - q_rx‖)/c, or with ``excess=True`` the excess delay over the
    direct path, τ - ‖q_rx - q_tx‖/c (≥ 0 by the triangle inequality).

    Returns:
        :class:`BistaticParameters` of ``(...)`` tensors; differentiable in ``points``.
    """
    if not isinstance(tx, Station) or not isinstance(rx, Station):
        raise TypeError("tx and rx must be Station objects")
    p = as_points(points)
    aod, _ = local_angles(p, tx)
    aoa, _ = local_angles(p, rx)
    total = ranges(p, tx) + ranges(p, rx)
    if excess:
        total = total - torch.linalg.vector_norm(rx.position_like(p) - tx.position_like(p), dim=-1)
    return BistaticParameters(aod, aoa, range_to_delay(total))


def multistation_parameters(points, stations: Sequence[Station] | None = None, *,
                            positions=None, orientations=None, two_way: bool = False
                            ) -> StationParameters:
    r"""Local angles, ranges and delays of points at S stations at once.

    Either ``stations`` (a sequence of :class:`Station`) or stacked ``positions (S, 2|3)``
    and ``orientations (S,)`` (which may carry leading batch dims and require grad).

    Args:
        points: ``(..., 2|3)`` metres.
        two_way: τ = 2R/c (monostatic at each station) instead of the one-way R/c.

    Returns:
        :class:`StationParameters`, each field ``(..., S)``; differentiable.
    """
    p = as_points(points)
    if stations is not None:
        if positions is not None or orientations is not None:
            raise ValueError("give either stations or positions/orientations, not both")
        q, psi = stack_stations(stations, like=p)
    else:
        if positions is None:
            raise ValueError("give stations, or positions (S, 2|3) and orientations (S,)")
        q = _as_xyz(positions, "positions", like=p)
        if q.ndim < 2:
            raise ValueError(f"positions must have shape (..., S, 2|3), got {tuple(q.shape)}")
        psi = _as_orientation(0.0 if orientations is None else orientations, p)
        if psi.ndim == 0 or psi.shape[-1] not in (1, q.shape[-2]):
            raise ValueError(f"orientations must have shape (..., S) with S = {q.shape[-2]}, "
                             f"got {tuple(psi.shape)}")
    pe = p.unsqueeze(-2)  # (..., 1, 3) against (S, 3)
    az, el = local_angles(pe, q, psi)
    r = ranges(pe, q)
    return StationParameters(az, el, r, range_to_delay(r, two_way=two_way))


def position_from_angle_range(azimuth, elevation, distance, station_position, orientation=None
                              ) -> torch.Tensor:
    r"""Inverse map: p = q + R · R_z(ψ) u(φ, ϑ) (global frame), u the unit direction.

    Args:
        azimuth: local azimuth φ ``(...)`` rad.
        elevation: local elevation ϑ ``(...)`` rad, or ``None`` (= 0).
        distance: range R ``(...)`` metres (≥ 0).
        station_position: a :class:`Station` or a ``(..., 2|3)`` position (then ``orientation``).

    Returns:
        ``(..., 3)`` points; differentiable.
    """
    az = _tensor(azimuth, None, torch.float64) if not isinstance(azimuth, torch.Tensor) else azimuth
    if not az.is_floating_point():
        az = az.to(torch.get_default_dtype())
    check_finite(az, "azimuth")
    r = _tensor(distance, az).to(dtype=az.dtype, device=az.device)
    check_finite(r, "distance")
    if bool((r < 0).any()):
        raise ValueError("distance must be non-negative (metres)")
    q, psi = _station_args(station_position, orientation, az)
    el = None if elevation is None else check_finite(
        _tensor(elevation, az).to(dtype=az.dtype, device=az.device), "elevation")
    u = direction_vectors(az + psi, el)  # rotating the local direction by ψ adds ψ to azimuth
    return q + r.unsqueeze(-1) * u
