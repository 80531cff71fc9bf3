r"""Antenna array geometries and far-field steering vectors.

Conventions (``shared/design/conventions.md``):

* local frame, broadside = +x; a ULA lies on the y axis, p_m = (0, m d, 0);
  a URA lies in the y-z plane, p_(m,n) = (0, m d_y, n d_z);
* direction u(φ, ϑ) = (cos ϑ cos φ, cos ϑ sin φ, sin ϑ) for azimuth φ (from +x towards +y)
  and elevation ϑ (up from the x-y plane);
* steering vector a(u)_m = exp(+j 2π p_m·u / λ), unnormalised, phase reference at the
  origin of the array frame (element 0 for the default, non-centred layouts).

For a ULA in the x-y plane p_m·u = m d sin φ cos ϑ, so with ϑ = 0 the familiar broadside
angle θ = φ ∈ [-π/2, π/2] gives a_m = exp(j 2π m d sin θ / λ).

Shapes: positions ``(..., M, 3)`` in metres, angles ``(..., K)`` in radians; steering
matrices ``(..., M, K)`` (one column per direction). Leading dims broadcast.
Everything here is differentiable with respect to the angles and the positions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .._checks import check_finite, check_last_dims, check_positive, check_positive_int
from .._dtypes import REAL_DTYPES, real_dtype

__all__ = [
    "direction_vectors",
    "steering_matrix",
    "steering_matrix_derivatives",
    "ArrayGeometry",
    "ula",
    "ula_spacing",
    "ura",
    "horizontal_ura",
]



def _as_angle(x, like: torch.Tensor | None, name: str) -> torch.Tensor:
    t = torch.as_tensor(x)
    if t.is_complex():
        raise TypeError(f"{name} must be real (radians), got a complex tensor")
    if not t.is_floating_point():
        t = t.to(like.dtype if like is not None and like.is_floating_point() else torch.get_default_dtype())
    if like is not None:
        t = t.to(device=like.device)
    return check_finite(t, name)


def direction_vectors(azimuth: torch.Tensor, elevation: torch.Tensor | None = None) -> torch.Tensor:
    r"""Unit vectors u(φ, ϑ) = (cos ϑ cos φ, cos ϑ sin φ, sin ϑ).

    Args:
        azimuth: ``(...)`` radians.
        elevation: ``(...)`` radians, broadcastable with ``azimuth``; ``None`` means 0.

    Returns:
        ``(..., 3)`` real tensor, same dtype/device as ``azimuth``.
    """
    az = _as_angle(azimuth, None, "azimuth")
    if elevation is None:
        return torch.stack([torch.cos(az), torch.sin(az), torch.zeros_like(az)], dim=-1)
    el = _as_angle(elevation, az, "elevation")
    az, el = torch.broadcast_tensors(az, el)
    ce = torch.cos(el)
    return torch.stack([ce * torch.cos(az), ce * torch.sin(az), torch.sin(el)], dim=-1)


def _phase(positions: torch.Tensor, u: torch.Tensor, wavelength) -> torch.Tensor:
    # (..., M, 3) x (..., K, 3) -> (..., M, K)
    k = 2.0 * math.pi / wavelength if not isinstance(wavelength, torch.Tensor) else 2.0 * math.pi / wavelength
    return k * torch.matmul(positions, u.transpose(-1, -2))


def steering_matrix(
    positions: torch.Tensor,
    azimuth: torch.Tensor,
    elevation: torch.Tensor | None = None,
    wavelength: float | torch.Tensor = 1.0,
) -> torch.Tensor:
    r"""Far-field steering matrix A = [a(u_1), …, a(u_K)], a(u)_m = exp(j 2π p_m·u / λ).

    Args:
        positions: ``(..., M, 3)`` element positions in metres (same unit as ``wavelength``).
        azimuth: ``(..., K)`` radians.
        elevation: ``(..., K)`` radians or ``None`` (= 0, the x-y plane).
        wavelength: scalar, or a tensor broadcastable to ``(..., M, K)`` (e.g. ``(..., N, 1, 1)``
            for per-subcarrier wavelengths, seed 002 eq. 1).

    Returns:
        ``(..., M, K)`` complex tensor (complex128 for float64 inputs, complex64 otherwise).
        Differentiable in ``positions``, the angles and ``wavelength``.

    Example:
        >>> A = steering_matrix(ula(4).positions, torch.tensor([0.0, 0.3]))
        >>> A.shape
        torch.Size([4, 2])
    """
    check_last_dims(positions, (None, 3), "positions", "(..., M, 3)")
    if positions.dtype not in REAL_DTYPES:
        raise TypeError(f"positions must be float32 or float64, got {positions.dtype}")
    check_finite(positions, "positions")
    check_positive(wavelength.detach() if isinstance(wavelength, torch.Tensor) else wavelength, "wavelength")
    u = direction_vectors(_as_angle(azimuth, positions, "azimuth"),
                          None if elevation is None else _as_angle(elevation, positions, "elevation"))
    phase = _phase(positions, u.to(positions.dtype), wavelength)
    return torch.polar(torch.ones_like(phase), phase)


def steering_matrix_derivatives(
    positions: torch.Tensor,
    azimuth: torch.Tensor,
    elevation: torch.Tensor | None = None,
    wavelength: float | torch.Tensor = 1.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Closed-form derivatives of the steering matrix with respect to azimuth and elevation.

    ∂a_m/∂φ = j (2π/λ) p_m·∂u/∂φ · a_m with ∂u/∂φ = (-cos ϑ sin φ, cos ϑ cos φ, 0), and
    ∂a_m/∂ϑ = j (2π/λ) p_m·∂u/∂ϑ · a_m with ∂u/∂ϑ = (-sin ϑ cos φ, -sin ϑ sin φ, cos ϑ).
    Column k depends only on direction k, so each returned matrix holds the derivative of
    column k with respect to the k-th angle.

    Returns:
        ``(dA/dφ, dA/dϑ)``, each ``(..., M, K)`` complex.
    """
    A = steering_matrix(positions, azimuth, elevation, wavelength)
    az = _as_angle(azimuth, positions, "azimuth")
    el = torch.zeros_like(az) if elevation is None else _as_angle(elevation, positions, "elevation")
    az, el = torch.broadcast_tensors(az, el)
    ce, se, ca, sa = torch.cos(el), torch.sin(el), torch.cos(az), torch.sin(az)
    du_daz = torch.stack([-ce * sa, ce * ca, torch.zeros_like(az)], dim=-1)
    du_del = torch.stack([-se * ca, -se * sa, ce], dim=-1)
    dphi_az = _phase(positions, du_daz, wavelength)
    dphi_el = _phase(positions, du_del, wavelength)
    return 1j * dphi_az * A, 1j * dphi_el * A


@dataclass(frozen=True, eq=False)
class ArrayGeometry:
    """Nominal geometry of an antenna array (a frozen, validated configuration object).

    Attributes:
        positions: ``(M, 3)`` element positions in metres in the array's local frame.
        wavelength: carrier wavelength λ in metres.
        name: a short label used in tables and plots.
    """

    positions: torch.Tensor
    wavelength: float = 1.0
    name: str = "array"

    def __post_init__(self):
        pos = torch.as_tensor(self.positions)
        if not pos.is_floating_point():
            pos = pos.to(torch.get_default_dtype())
        check_last_dims(pos, (None, 3), "positions", "(M, 3)")
        if pos.ndim != 2 or pos.shape[0] < 1:
            raise ValueError(f"positions must have shape (M, 3) with M >= 1, got {tuple(pos.shape)}")
        check_finite(pos, "positions")
        check_positive(self.wavelength, "wavelength")
        object.__setattr__(self, "positions", pos)
        object.__setattr__(self, "wavelength", float(self.wavelength))
        # exact float64 copy: float64 computations (bounds, reference checks) must not inherit
        # the rounding of a float32 ``positions`` (e.g. ula(..., wavelength=0.0107))
        object.__setattr__(self, "_positions64", pos.to(torch.float64))

    @classmethod
    def _from_float64(cls, pos64: torch.Tensor, wavelength: float, name: str) -> ArrayGeometry:
        """Store ``positions`` in the default dtype but keep the exact float64 values."""
        geom = cls(pos64.to(torch.get_default_dtype()), wavelength, name)
        object.__setattr__(geom, "_positions64", pos64.to(torch.float64))
        return geom

    # -- constructors -------------------------------------------------------------------
    @classmethod
    def from_positions(cls, positions, wavelength: float = 1.0, name: str = "array") -> ArrayGeometry:
        """An arbitrary array from ``(M, 3)`` (or ``(M, 2)``, z = 0) positions in metres."""
        pos = torch.as_tensor(positions)
        if not pos.is_floating_point():
            pos = pos.to(torch.get_default_dtype())
        if pos.ndim == 2 and pos.shape[-1] == 2:
            pos = torch.cat([pos, torch.zeros_like(pos[:, :1])], dim=-1)
        return cls(pos, wavelength, name)

    # -- derived quantities -------------------------------------------------------------
    @property
    def num_elements(self) -> int:
        """M, the number of elements."""
        return int(self.positions.shape[0])

    @property
    def aperture(self) -> float:
        """Largest distance between two elements, in metres."""
        return float(torch.cdist(self.positions, self.positions).max())

    def to(self, dtype: torch.dtype | None = None, device=None) -> ArrayGeometry:
        """A copy whose positions have the given dtype/device."""
        src = self._positions64 if dtype == torch.float64 else self.positions
        geom = ArrayGeometry(src.to(dtype=dtype, device=device), self.wavelength, self.name)
        object.__setattr__(geom, "_positions64", self._positions64.to(device=device))
        return geom

    def positions_like(self, ref: torch.Tensor) -> torch.Tensor:
        """Positions in ``ref``'s real dtype and on its device (the dtype/device rule)."""
        dtype = real_dtype(ref.dtype) if (ref.is_complex() or ref.is_floating_point()) else None
        if dtype == torch.float64:
            return self._positions64.to(device=ref.device)
        return self.positions.to(dtype=dtype or self.positions.dtype, device=ref.device)

    # -- responses ----------------------------------------------------------------------
    def steering(self, azimuth, elevation=None) -> torch.Tensor:
        """Ideal steering matrix ``(..., M, K)`` for directions ``(..., K)``; see :func:`steering_matrix`."""
        az = _as_angle(azimuth, None, "azimuth")
        return steering_matrix(self.positions_like(az), az, elevation, self.wavelength)

    def steering_derivatives(self, azimuth, elevation=None) -> tuple[torch.Tensor, torch.Tensor]:
        """Closed-form ``(dA/dφ, dA/dϑ)``; see :func:`steering_matrix_derivatives`."""
        az = _as_angle(azimuth, None, "azimuth")
        return steering_matrix_derivatives(self.positions_like(az), az, elevation, self.wavelength)

    def half_power_beamwidth(self, azimuth: float = 0.0, elevation: float = 0.0,
                             plane: str = "azimuth", resolution: int = 20001) -> float:
        r"""Half-power (-3 dB) beamwidth, in radians, of the uniformly weighted beam.

        The beam f = conj(a(u_0))/M is steered at (azimuth, elevation) and its power pattern
        |a(u)^T f|² is scanned in the chosen plane on a fine grid; the width between the
        two -3 dB points around the main lobe is returned (the edges are refined by linear
        interpolation).  For a broadside λ/2 ULA this is ≈ 0.886·2/M rad (≈ 101.5°/M).
        """
        if plane not in ("azimuth", "elevation"):
            raise ValueError(f"plane must be 'azimuth' or 'elevation', got {plane!r}")
        dtype = torch.float64
        pos = self._positions64
        a0 = steering_matrix(pos, torch.tensor([azimuth], dtype=dtype), torch.tensor([elevation], dtype=dtype),
                             self.wavelength)[:, 0]
        f = a0.conj() / self.num_elements
        scan = torch.linspace(-math.pi / 2, math.pi / 2, resolution, dtype=dtype)
        centre = azimuth if plane == "azimuth" else elevation
        if plane == "azimuth":
            A = steering_matrix(pos, scan + centre, torch.full_like(scan, elevation), self.wavelength)
        else:
            A = steering_matrix(pos, torch.full_like(scan, azimuth), scan + centre, self.wavelength)
        p = (A.transpose(-1, -2) @ f).abs() ** 2
        p = p / p.max()
        mid = resolution // 2
        below = (p < 0.5).nonzero().flatten()
        right = below[below > mid]
        left = below[below < mid]
        if right.numel() == 0 or left.numel() == 0:
            return math.pi
        r, lft = int(right[0]), int(left[-1])

        def cross(i0, i1):  # linear interpolation of the -3 dB crossing between i0 and i1
            t = (0.5 - p[i0]) / (p[i1] - p[i0])
            return float(scan[i0] + t * (scan[i1] - scan[i0]))

        return cross(r - 1, r) - cross(lft + 1, lft)


def ula(num_elements: int, spacing: float = 0.5, wavelength: float = 1.0, centered: bool = False,
        name: str | None = None) -> ArrayGeometry:
    """Uniform linear array on the y axis: p_m = (0, m·d, 0), d = ``spacing``·λ.

    Args:
        num_elements: M.
        spacing: inter-element spacing in wavelengths (default λ/2).
        wavelength: λ in metres (default 1, i.e. positions in wavelengths).
        centered: put the phase centre in the middle of the array instead of element 0.
    """
    m = check_positive_int(num_elements, "num_elements")
    check_positive(spacing, "spacing")
    check_positive(wavelength, "wavelength")
    y = torch.arange(m, dtype=torch.float64) * spacing * wavelength
    if centered:
        y = y - y.mean()
    pos = torch.stack([torch.zeros_like(y), y, torch.zeros_like(y)], dim=-1)
    return ArrayGeometry._from_float64(pos, wavelength, name or f"ULA{m}")


def ula_spacing(geometry: ArrayGeometry) -> float:
    r"""The spacing d (in wavelengths) of a uniform linear array along the y axis.

    The subspace estimators (root-MUSIC, ESPRIT) need the shift invariance of a ULA,
    p_m = p_0 + (0, m·d·λ, 0), m = 0..M-1 with d > 0; any other geometry (including a ULA
    along another axis, or with its elements listed in another order) raises a one-line
    ``ValueError``.  Positions are compared in float64 to 10·M·ε relative to the aperture.

    Example:
        >>> ula_spacing(ula(8, spacing=0.25))
        0.25
    """
    if not isinstance(geometry, ArrayGeometry):
        raise TypeError(f"expected an ArrayGeometry, got {type(geometry).__name__}")
    pos = geometry._positions64
    M = pos.shape[0]
    if M < 2:
        raise ValueError(f"a uniform linear array needs at least 2 elements, got {M}")
    step = pos[1:] - pos[:-1]
    d = float(step[0, 1])
    scale = max(abs(d) * M, float(pos.abs().max()))
    tol = 10.0 * M * torch.finfo(torch.float64).eps * scale
    expected = torch.tensor([0.0, d, 0.0], dtype=torch.float64)
    if d <= 0 or float((step - expected).abs().max()) > tol:
        raise ValueError(f"{geometry.name} is not a uniform linear array along the y axis with increasing "
                         "element positions (p_m = p_0 + (0, m d, 0)); this estimator needs one")
    return d / geometry.wavelength


def ura(num_y: int, num_z: int, spacing_y: float = 0.5, spacing_z: float | None = None,
        wavelength: float = 1.0, centered: bool = False, name: str | None = None) -> ArrayGeometry:
    """Uniform rectangular array in the y-z plane: p_(m,n) = (0, m d_y, n d_z).

    Elements are ordered with the z index fastest: element m·num_z + n.
    """
    my = check_positive_int(num_y, "num_y")
    mz = check_positive_int(num_z, "num_z")
    dz = spacing_y if spacing_z is None else spacing_z
    check_positive(spacing_y, "spacing_y")
    check_positive(dz, "spacing_z")
    check_positive(wavelength, "wavelength")
    yy, zz = torch.meshgrid(torch.arange(my, dtype=torch.float64) * spacing_y * wavelength,
                            torch.arange(mz, dtype=torch.float64) * dz * wavelength, indexing="ij")
    y, z = yy.reshape(-1), zz.reshape(-1)
    if centered:
        y, z = y - y.mean(), z - z.mean()
    pos = torch.stack([torch.zeros_like(y), y, z], dim=-1)
    return ArrayGeometry._from_float64(pos, wavelength, name or f"URA{my}x{mz}")


def horizontal_ura(num_x: int, num_y: int, spacing: float = 0.5, wavelength: float = 1.0,
                   centered: bool = False, name: str | None = None) -> ArrayGeometry:
    r"""Uniform rectangular array in the horizontal x-y plane, facing up (seed 003's BS).

    Element (p, q), p = 0..N_x−1, q = 0..N_y−1, has index m = p·N_y + q and position
    r_m = (p d, q d, 0), d = ``spacing``·λ, so with u(φ, ϑ) (elevation up from the plane)
    a_m(φ, ϑ) = exp(j 2π d cos ϑ (p cos φ + q sin φ) / λ).  (φ, ϑ) and (φ, −ϑ) give the
    same response: search ϑ ∈ [0, π/2].  (:func:`ura` is the vertical y-z array.)

    Example:
        >>> horizontal_ura(4, 4).positions[5].tolist()
        [0.5, 0.5, 0.0]
    """
    mx = check_positive_int(num_x, "num_x")
    my = check_positive_int(num_y, "num_y")
    check_positive(spacing, "spacing")
    check_positive(wavelength, "wavelength")
    xx, yy = torch.meshgrid(torch.arange(mx, dtype=torch.float64) * spacing * wavelength,
                            torch.arange(my, dtype=torch.float64) * spacing * wavelength, indexing="ij")
    x, y = xx.reshape(-1), yy.reshape(-1)
    if centered:
        x, y = x - x.mean(), y - y.mean()
    pos = torch.stack([x, y, torch.zeros_like(x)], dim=-1)
    return ArrayGeometry._from_float64(pos, wavelength, name or f"hURA{mx}x{my}")
