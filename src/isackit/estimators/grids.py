r"""Search grids and the steering dictionaries built on them.

A :class:`SearchGrid` is a frozen, validated 1-D grid given by a range and a step
(radians for angles, seconds for delays), e.g. 0.01° over [-90°, 90°]::

    grid = SearchGrid.degrees(-90.0, 90.0, 0.01)       # 18 001 points
    A = grid.steering(model, like=R)                    # (M, G) dictionary, R's dtype/device

Several grids combine into a product grid (azimuth × elevation for a URA, angle × delay
for OFDM CSI); the separable estimators keep the factors apart and never form the product
dictionary unless asked (:func:`kron_dictionary`).

Dictionaries are cached on the grid object, keyed by the model's identity, the versions of
its parameters and buffers (an optimiser step bumps them), dtype and device, so repeated
calls of an estimator do not rebuild them.  When autograd is enabled and the model has
``requires_grad`` parameters (calibration, system S0) nothing is cached: the dictionary is
rebuilt, and differentiable, on every call (the estimators run under ``torch.no_grad`` and
do use the cache).

Conventions: ``shared/design/conventions.md`` (radians; steering a(u)_m = exp(+j2π p_m·u/λ);
delay response b(τ)_n = exp(-j 2π n Δf τ)).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from .._checks import check_finite, check_positive
from .._dtypes import complex_dtype_of, real_dtype_of, tolerance

__all__ = [
    "QuadraticFormDictionary",
    "SearchGrid",
    "complex_dtype_of",
    "default_delay_grid",
    "delay_dictionary",
    "kron_dictionary",
    "quadratic_form_dictionary",
    "real_dtype_of",
    "steering_on",
    "steering_with_derivatives",
]


def _model_state_key(model) -> tuple | None:
    """A hashable key describing a model's current numerical state, or None if not cacheable."""
    if isinstance(model, torch.nn.Module):
        tensors = list(model.parameters()) + list(model.buffers())
        if torch.is_grad_enabled() and any(t.requires_grad for t in tensors):
            return None  # the caller wants a differentiable dictionary: build it afresh
        geo = getattr(model, "geometry", None)
        return (id(model), id(geo), tuple((id(t), t._version) for t in tensors))
    return (id(model),)  # ArrayGeometry is frozen


def steering_on(model, azimuth: torch.Tensor, elevation: torch.Tensor | None = None) -> torch.Tensor:
    """Steering matrix ``(..., M, K)`` of an ``ArrayGeometry`` or ``ArrayModel`` at given angles."""
    return model.steering(azimuth, elevation)


def steering_with_derivatives(model, azimuth: torch.Tensor, elevation: torch.Tensor | None = None):
    r"""``(A, (dA/dφ, dA/dϑ))`` for an ``ArrayModel`` or an ``ArrayGeometry``, each ``(..., M, K)``.

    Column k of a derivative matrix is the derivative of column k of A w.r.t. the k-th angle.
    """
    if hasattr(model, "steering_and_derivatives"):
        return model.steering_and_derivatives(azimuth, elevation)
    return model.steering(azimuth, elevation), model.steering_derivatives(azimuth, elevation)


@dataclass(frozen=True, eq=False)
class SearchGrid:
    r"""A uniform 1-D search grid ``start, start + step, …, ≤ stop`` (both ends included when
    ``(stop - start)/step`` is an integer).

    Attributes:
        start, stop: range (radians for angles, seconds for delays).
        step: spacing (> 0).
        name: label of the parameter ("azimuth", "elevation", "delay" …).

    Derived: ``size`` G, ``points(dtype, device)`` ``(G,)``.  Grids are built in float64
    and cast, so float32 grids do not accumulate rounding.
    """

    start: float
    stop: float
    step: float
    name: str = "azimuth"
    _cache: dict = field(default_factory=dict, repr=False, compare=False, init=False)

    def __post_init__(self):
        for n in ("start", "stop", "step"):
            v = getattr(self, n)
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
                raise ValueError(f"SearchGrid.{n} must be a finite number, got {v!r}")
            object.__setattr__(self, n, float(v))
        check_positive(self.step, "SearchGrid.step")
        if self.stop < self.start:
            raise ValueError(f"SearchGrid needs start <= stop, got start={self.start}, stop={self.stop}")

    def __getstate__(self):  # pickling (e.g. to Ray workers) drops the dictionary cache
        return {"start": self.start, "stop": self.stop, "step": self.step, "name": self.name}

    def __setstate__(self, state):
        for k, v in state.items():
            object.__setattr__(self, k, v)
        object.__setattr__(self, "_cache", {})

    @classmethod
    def degrees(cls, start: float, stop: float, step: float, name: str = "azimuth") -> SearchGrid:
        """A grid given in degrees (converted once to radians)."""
        return cls(math.radians(start), math.radians(stop), math.radians(step), name)

    @classmethod
    def from_size(cls, start: float, stop: float, size: int, name: str = "azimuth") -> SearchGrid:
        """``size`` evenly spaced points from ``start`` to ``stop`` inclusive."""
        if isinstance(size, bool) or int(size) < 2:
            raise ValueError(f"size must be an integer >= 2, got {size!r}")
        return cls(start, stop, (stop - start) / (int(size) - 1), name)

    @property
    def size(self) -> int:
        """G, the number of grid points."""
        return math.floor((self.stop - self.start) / self.step * (1 + 1e-12) + 1e-9) + 1

    def points(self, dtype: torch.dtype = torch.float64, device=None) -> torch.Tensor:
        """Grid points ``(G,)``."""
        g = self.start + self.step * torch.arange(self.size, dtype=torch.float64)
        return g.to(dtype=dtype, device=device)

    def points_like(self, ref: torch.Tensor) -> torch.Tensor:
        """Grid points in ``ref``'s real dtype and on its device."""
        return self.points(real_dtype_of(ref), ref.device)

    # -- dictionaries ---------------------------------------------------------------------
    def memo(self, key, build, anchor=None):
        """Return ``build()``, cached on this grid under ``key`` (no caching when key is None).

        ``anchor`` (the model whose ``id`` is part of the key) is kept alive with the entry,
        so that its ``id`` cannot be reused by another object while the entry exists.
        """
        if key is None:
            return build()
        hit = self._cache.get(key)
        if hit is None:
            if len(self._cache) > 16:
                self._cache.clear()
            hit = (build(), anchor)
            self._cache[key] = hit
        return hit[0]

    def steering(self, model, like: torch.Tensor, elevation: float | SearchGrid | None = None) -> torch.Tensor:
        r"""Dictionary ``(M, G)`` of ``model`` (``ArrayGeometry`` or ``ArrayModel``) on this grid.

        Args:
            model: the array model the estimator assumes.
            like: a tensor whose dtype/device the dictionary follows.
            elevation: a fixed elevation (radians) for all points, or None (= 0).
        """
        mk = _model_state_key(model)
        key = None if mk is None else ("steer", mk, elevation, real_dtype_of(like), str(like.device))

        def build():
            az = self.points_like(like)
            el = None if elevation is None else torch.full_like(az, float(elevation))
            return model.steering(az, el).to(complex_dtype_of(like))

        return self.memo(key, build, model)

    def steering_2d(self, model, elevation_grid: SearchGrid, like: torch.Tensor) -> torch.Tensor:
        r"""Dictionary ``(M, G_az, G_el)`` over azimuth (this grid) × elevation."""
        mk = _model_state_key(model)
        key = None if mk is None else ("steer2d", mk, id(elevation_grid), real_dtype_of(like), str(like.device))

        def build():
            az = self.points_like(like)
            el = elevation_grid.points_like(like)
            AZ, EL = torch.meshgrid(az, el, indexing="ij")
            A = model.steering(AZ.reshape(-1), EL.reshape(-1)).to(complex_dtype_of(like))
            return A.reshape(A.shape[-2], az.numel(), el.numel())

        return self.memo(key, build, model)

    def delays(self, subcarrier_spacing: float, num_subcarriers: int, like: torch.Tensor) -> torch.Tensor:
        """Delay dictionary ``(N, G)`` on this (delay) grid; see :func:`delay_dictionary`."""
        key = ("delay", float(subcarrier_spacing), int(num_subcarriers), real_dtype_of(like), str(like.device))
        return self.memo(key, lambda: delay_dictionary(self.points_like(like), subcarrier_spacing, num_subcarriers))


# ---------------------------------------------------------------------------------------
# fast quadratic forms on a fixed dictionary
# ---------------------------------------------------------------------------------------
class QuadraticFormDictionary:
    r"""Evaluate q_g(Q) = Re(a_g^H Q a_g) for many Hermitian Q on one dictionary ``A (M, G)``.

    a^H Q a = Σ_m Q_mm |a_m|² + Σ_{m<n} [Re Q_mn · 2Re(a_m^* a_n) + Im Q_mn · (-2Im(a_m^* a_n))],
    so q = c(Q) Φ with a real feature matrix Φ (M² × G).  Identical rows of Φ (the co-array
    redundancy of ULAs/URAs) are merged once, at construction: Φ = S^T Φ_u with
    Φ_u (D × G), and q = (c(Q) S^T) Φ_u.  Construction verifies every merge on the full grid,
    so the result is exact (to rounding) for any dictionary.

    Attributes:
        basis: ``(D, G)`` real; ``reduce``: ``(D, M²)`` real; ``norms``: ``(G,)`` = a_g^H a_g.
    """

    def __init__(self, A: torch.Tensor):
        if A.ndim != 2 or not A.is_complex():
            raise ValueError(f"dictionary must be a complex (M, G) tensor, got {A.dtype} {tuple(A.shape)}")
        M, G = A.shape
        self.num_elements = M
        rdt = real_dtype_of(A)
        iu = torch.triu_indices(M, M, 1, device=A.device)
        self._iu = iu
        z = A[iu[0]].conj() * A[iu[1]]
        phi = torch.cat([A.abs() ** 2, 2.0 * z.real, -2.0 * z.imag], 0).to(rdt)  # (M², G)
        self.norms = phi[:M].sum(0)
        F = phi.shape[0]
        # rows equal in exact arithmetic differ by the rounding of the phases, of order
        # M·eps·|phi|: merge within 50·M·eps relative (verified on the whole grid below)
        tol = tolerance(rdt, condition=M, factor=50.0) * max(1.0, float(phi.abs().max()))
        cols = torch.linspace(0, G - 1, min(G, 64), device=A.device).round().long()
        sample = phi[:, cols]
        close = torch.cdist(sample, sample, p=float("inf")) <= tol  # (F, F)
        rep = close.to(torch.uint8).argmax(-1)  # first close row
        for _ in range(4):
            rep = rep[rep]
        ok = (phi - phi[rep]).abs().amax(-1) <= tol
        rep = torch.where(ok, rep, torch.arange(F, device=A.device))
        uniq, group = torch.unique(rep, return_inverse=True)
        self.basis = phi[uniq].contiguous()  # (D, G)
        self.normalized_basis = (self.basis / self.norms).contiguous()  # q / (a^H a) in one product
        reduce = torch.zeros(uniq.numel(), F, dtype=rdt, device=A.device)
        reduce[group, torch.arange(F, device=A.device)] = 1.0
        self.reduce = reduce

    @property
    def num_terms(self) -> int:
        """D, the number of distinct feature rows kept."""
        return int(self.basis.shape[0])

    def coefficients(self, Q: torch.Tensor) -> torch.Tensor:
        """c(Q) S^T: ``(..., D)`` real."""
        d = torch.diagonal(Q, dim1=-2, dim2=-1).real
        off = Q[..., self._iu[0], self._iu[1]]
        c = torch.cat([d, off.real, off.imag], -1).to(self.basis.dtype)
        return c @ self.reduce.T

    def __call__(self, Q: torch.Tensor, scale: float = 1.0, normalized: bool = False) -> torch.Tensor:
        """``scale``·q ``(..., G)`` for Hermitian ``Q (..., M, M)`` (divided by a^H a if ``normalized``)."""
        c = self.coefficients(Q)
        if scale != 1.0:
            c = c * scale
        return c @ (self.normalized_basis if normalized else self.basis)


def quadratic_form_dictionary(grid: SearchGrid, model, like: torch.Tensor,
                              elevation_grid: SearchGrid | None = None) -> QuadraticFormDictionary:
    """The (cached) :class:`QuadraticFormDictionary` of ``model`` on ``grid`` (× ``elevation_grid``)."""
    mk = _model_state_key(model)
    key = None if mk is None else ("qf", mk, None if elevation_grid is None else id(elevation_grid),
                                    real_dtype_of(like), str(like.device))

    def build():
        if elevation_grid is None:
            A = grid.steering(model, like)
        else:
            A = grid.steering_2d(model, elevation_grid, like).flatten(-2)
        return QuadraticFormDictionary(A)

    return grid.memo(key, build, model)



def default_delay_grid(num_subcarriers: int, subcarrier_spacing: float, oversampling: int = 4) -> SearchGrid:
    """The unambiguous delay range [0, 1/Δf) sampled at 1/(``oversampling``·N·Δf) seconds."""
    check_positive(subcarrier_spacing, "subcarrier_spacing")
    step = 1.0 / (oversampling * num_subcarriers * subcarrier_spacing)
    return SearchGrid(0.0, (1.0 - 1.0 / (oversampling * num_subcarriers)) / subcarrier_spacing, step, name="delay")


def delay_dictionary(delays: torch.Tensor, subcarrier_spacing: float, num_subcarriers: int) -> torch.Tensor:
    r"""Delay responses b(τ)_n = exp(-j 2π n Δf τ), n = 0..N-1, as columns: ``(..., N, G)``.

    Args:
        delays: ``(..., G)`` seconds (real).
        subcarrier_spacing: Δf in Hz.
        num_subcarriers: N.

    Differentiable in ``delays``.
    """
    check_positive(subcarrier_spacing, "subcarrier_spacing")
    if isinstance(num_subcarriers, bool) or int(num_subcarriers) < 1:
        raise ValueError(f"num_subcarriers must be a positive integer, got {num_subcarriers!r}")
    check_finite(delays, "delays")
    n = torch.arange(int(num_subcarriers), dtype=delays.dtype, device=delays.device)
    phase = -2.0 * math.pi * subcarrier_spacing * n[:, None] * delays[..., None, :]
    return torch.polar(torch.ones_like(phase), phase)


def kron_dictionary(*factors: torch.Tensor) -> torch.Tensor:
    r"""Product dictionary of separable factors ``(M_i, G_i)`` → ``(Π M_i, Π G_i)``.

    Row index = row-major over the factors' rows (first factor slowest), column index =
    row-major over the grids; atom (g_1, g_2) = a_1(g_1) ⊗ a_2(g_2), i.e. ``vec`` of the
    matrix a_1 a_2^T in row-major order (what ``X.reshape(-1)`` gives for ``X (M_1, M_2)``).
    Use it for small problems and references; the separable functions avoid forming it.
    """
    if not factors:
        raise ValueError("kron_dictionary needs at least one factor")
    out = factors[0]
    for f in factors[1:]:
        out = torch.einsum("ag,bh->abgh", out, f).reshape(out.shape[0] * f.shape[0], out.shape[1] * f.shape[1])
    return out


def example_angle_delay_csi(generator: torch.Generator | None, noise_std: float):
    """A small two-path angle–delay CSI case for the estimators' ``example()`` methods.

    ULA M = 8, N = 32 subcarriers, Δf = 250 kHz; paths at (0°, 25 ns) and (30°, 150 ns), both
    on the grids returned and mutually orthogonal in angle (Δsin = 2·2/M) and delay
    (Δτ = 1/(NΔf)), so that no cross term biases a grid pick; unit gains with random phases,
    plus complex Gaussian noise of std ``noise_std``.

    Returns:
        ``(array, azimuth_grid, delay_grid, subcarrier_spacing, truth (2, 2), H (N, M))``, H in
        complex128.
    """
    import math

    from ..geometry import ula

    arr = ula(8)
    df, n = 250e3, 32
    dgrid = SearchGrid(0.0, 200e-9, 2.5e-9, name="delay")
    agrid = SearchGrid.degrees(-60.0, 60.0, 0.5)
    truth = torch.tensor([[0.0, 25e-9], [math.radians(30.0), 150e-9]], dtype=torch.float64)
    gains = torch.polar(torch.ones(2, dtype=torch.float64),
                        2 * math.pi * torch.rand(2, generator=generator, dtype=torch.float64))
    A = arr.steering(truth[:, 0]).to(torch.complex128)
    H = (delay_dictionary(truth[:, 1], df, n) * gains) @ A.T
    H = H + noise_std * torch.randn(H.shape, generator=generator, dtype=torch.complex128)
    return arr, agrid, dgrid, df, truth, H
