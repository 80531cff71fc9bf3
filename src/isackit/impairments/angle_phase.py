r"""Angle- and subcarrier-dependent phase errors (seed 002, MoD-DNN).

A commodity gNB's measured array response departs from the ideal one by a phase that
depends on the direction and (slightly) on the subcarrier (seed 002, eq. 7 and Fig. 1b):

    ã_{m,n}(θ) = γ_{m,n}(θ) a_m(θ),   γ_{m,n}(θ) = exp(j ρ ψ_{m,n}(θ)),

with ψ in radians, element m, subcarrier n and azimuth θ (elevation does not enter).

Degree of impairment ρ ∈ [0, 1] (seed 002, eq. 34).  The seed writes ρ Γ_k ⊙ A, which read
literally scales the whole response by ρ (so ρ = 0 would remove the signal, not the
impairment); the text says ρ = 0 means "no hardware impairment" and ρ = 1 the full measured
error.  We therefore read it as scaling the phase error: ψ → ρψ, γ = exp(jρψ).

Two models of ψ share one implementation of the map and its angle derivatives
(:class:`AngleDependentPhaseError`):

* :class:`SmoothPhaseError` — a parametric model after Fig. 1b: inside ±θ₀ (30°) a smooth
  ripple (Q harmonics) bounded by ``inner_max`` (< 20°), beyond it a steady slope; drawn
  per element with a generator; per-subcarrier variation by a factor (1 + η_{m,n});
* :class:`TabulatedPhaseError` — measured curves ψ on an angle grid, table ``(M, G)`` or
  ``(M, N, G)``, interpolated by a C¹ cubic Hermite spline in θ (differentiable; the angle is
  clamped to the grid's range, so the phase is constant outside it).

Shapes: with ``subcarriers`` (1-D indices into the model's N subcarriers), the steering
matrix is ``(..., N', M, K)``; without, ``(..., M, K)``.  Parameter leading dims (one draw per
trial) broadcast with the steering matrix's batch dims.  Differentiable in the angles and in
the parameters (``learnable=True`` makes them ``nn.Parameter``).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .._checks import check_finite
from .base import Impairment

__all__ = ["AngleDependentPhaseError", "SmoothPhaseError", "TabulatedPhaseError", "hermite_weights"]


def _check_degree(degree) -> float:
    r = float(degree)
    if not 0.0 <= r <= 1.0:
        raise ValueError(f"degree of impairment rho must lie in [0, 1], got {degree}")
    return r


def _subcarrier_index(subcarriers: torch.Tensor, num_subcarriers: int) -> torch.Tensor:
    sc = torch.as_tensor(subcarriers)
    if sc.ndim != 1:
        raise ValueError(f"subcarriers must have shape (N,), got {tuple(sc.shape)}")
    if sc.is_floating_point() or sc.is_complex():
        if not bool((sc == sc.round()).all()):
            raise ValueError("subcarriers must be integer indices")
    sc = sc.long()
    if sc.numel() and (int(sc.min()) < 0 or int(sc.max()) >= num_subcarriers):
        raise ValueError(f"subcarrier indices must lie in [0, {num_subcarriers - 1}] for this phase-error "
                         f"model, got min {int(sc.min())}, max {int(sc.max())}")
    return sc


class AngleDependentPhaseError(Impairment):
    r"""Base class: A ↦ exp(jρψ(θ)) ⊙ A, with the product rule for the angle derivatives.

    Subclasses implement ``_phase_and_derivative(theta, subcarriers)`` returning ψ and
    ∂ψ/∂θ with the steering matrix's shape, where ``theta`` is the azimuth as
    :class:`~isackit.impairments.ArrayModel` passes it (``(..., K)``, or ``(..., 1, K)`` with
    subcarriers).

    ∂ã/∂θ = γ ⊙ (∂a/∂θ + jρ ∂ψ/∂θ ⊙ a),  ∂ã/∂ϑ = γ ⊙ ∂a/∂ϑ.
    """

    angle_dependent = True

    def __init__(self, degree: float = 1.0, known: bool = False):
        super().__init__(known)
        self.degree = _check_degree(degree)

    def _phase_and_derivative(self, theta, subcarriers):  # pragma: no cover - interface
        raise NotImplementedError

    def phase(self, azimuth, subcarriers=None) -> torch.Tensor:
        """Unscaled ψ (radians): ``(..., M, K)`` for azimuths ``(..., K)``, or ``(..., N', M, K)``."""
        theta = torch.as_tensor(azimuth)
        if not theta.is_floating_point():
            theta = theta.to(torch.get_default_dtype())
        check_finite(theta, "azimuth")
        if subcarriers is not None:
            theta = theta.unsqueeze(-2)
        return self._phase_and_derivative(theta, subcarriers)[0]

    def _gamma(self, psi, like):
        return torch.polar(torch.ones_like(psi), self.degree * psi).to(like.dtype)

    def apply(self, A, azimuth, elevation=None, subcarriers=None):
        psi, _ = self._phase_and_derivative(azimuth, subcarriers)
        psi = psi.to(A.real.dtype)
        self._check_rows(A, psi)
        return self._gamma(psi, A) * A

    def apply_with_derivatives(self, A, dA, azimuth, elevation, subcarriers=None):
        psi, dpsi = self._phase_and_derivative(azimuth, subcarriers)
        psi, dpsi = psi.to(A.real.dtype), dpsi.to(A.real.dtype)
        self._check_rows(A, psi)
        g = self._gamma(psi, A)
        d_az = g * (dA[0] + 1j * self.degree * dpsi * A)
        rest = tuple(g * d for d in dA[1:])
        return g * A, (d_az, *rest)

    @staticmethod
    def _check_rows(A, psi):
        if psi.shape[-2] != A.shape[-2]:
            raise ValueError(f"the phase-error model has M = {psi.shape[-2]} elements but the steering "
                             f"matrix has {A.shape[-2]} rows")


def _softplus_hinge(x: torch.Tensor, width: float) -> tuple[torch.Tensor, torch.Tensor]:
    """h(x) = w softplus(x/w) (a smooth max(x, 0)) and h'(x) = sigmoid(x/w).

    softplus(u) = max(u, 0) + log1p(e^{-|u|}) exactly (no linear cut-off as in
    ``torch.nn.functional.softplus``, so the closed-form derivative is the function's own)."""
    u = x / width
    return width * (torch.relu(u) + torch.log1p(torch.exp(-u.abs()))), torch.sigmoid(u)


class SmoothPhaseError(AngleDependentPhaseError):
    r"""Parametric angle-dependent phase error after seed 002, Fig. 1b.

    ψ_{m,n}(θ) = (1 + η_{m,n}) [ r_m(s(θ)) + s⁺_m h(θ - θ₀) + s⁻_m h(-θ - θ₀) ],

    with the ripple r_m(x) = Σ_{q=1}^{Q} a_{mq} cos(qπx/θ₀) + b_{mq} sin(qπx/θ₀), the smooth
    hinge h(x) = w·softplus(x/w), and the soft clamp s(θ) = θ - h(θ - θ₀) + h(-θ - θ₀), so
    that beyond ±θ₀ the ripple freezes and the phase grows with the steady slopes s^±.

    Args:
        ripple_cos, ripple_sin: ``(..., M, Q)`` a and b (radians).
        slope_pos, slope_neg: ``(..., M)`` s⁺, s⁻ (radians per radian).
        subcarrier_factor: ``(..., M, N)`` η, or ``None`` (not subcarrier-dependent).
        threshold: θ₀ in radians (30°).
        width: hinge softness w in radians (1°).
        degree: ρ ∈ [0, 1].
    """

    def __init__(self, ripple_cos, ripple_sin, slope_pos, slope_neg, subcarrier_factor=None,
                 threshold: float = math.radians(30.0), width: float = math.radians(1.0),
                 degree: float = 1.0, known: bool = False, learnable: bool = False):
        super().__init__(degree, known)
        def real(x, name, ndim):
            t = torch.as_tensor(x)
            if t.is_complex():
                raise TypeError(f"{name} must be real")
            if not t.is_floating_point():
                t = t.to(torch.get_default_dtype())
            if t.ndim < ndim:
                raise ValueError(f"{name} must have at least {ndim} dims, got shape {tuple(t.shape)}")
            return check_finite(t, name).clone()
        a, b = real(ripple_cos, "ripple_cos", 2), real(ripple_sin, "ripple_sin", 2)
        sp, sn = real(slope_pos, "slope_pos", 1), real(slope_neg, "slope_neg", 1)
        if a.shape[-2:] != b.shape[-2:]:
            raise ValueError(f"ripple_cos and ripple_sin must have equal (M, Q), got {tuple(a.shape)} "
                             f"and {tuple(b.shape)}")
        m = a.shape[-2]
        if sp.shape[-1] != m or sn.shape[-1] != m:
            raise ValueError(f"slopes must have shape (..., M) with M = {m}")
        eta = None
        if subcarrier_factor is not None:
            eta = real(subcarrier_factor, "subcarrier_factor", 2)
            if eta.shape[-2] != m:
                raise ValueError(f"subcarrier_factor must have shape (..., M, N) with M = {m}, got {tuple(eta.shape)}")
        self.threshold, self.width = float(threshold), float(width)
        if not (self.threshold > 0 and self.width > 0):
            raise ValueError("threshold and width must be positive (radians)")
        self.learnable = bool(learnable)
        self.subcarrier_dependent = eta is not None
        names = {"ripple_cos": a, "ripple_sin": b, "slope_pos": sp, "slope_neg": sn}
        if eta is not None:
            names["subcarrier_factor"] = eta
        for k, v in names.items():
            if self.learnable:
                setattr(self, k, nn.Parameter(v))
            else:
                self.register_buffer(k, v)
        if eta is None:
            self.subcarrier_factor = None

    @property
    def num_elements(self) -> int:
        return int(self.ripple_cos.shape[-2])

    @property
    def num_subcarriers(self) -> int | None:
        return None if self.subcarrier_factor is None else int(self.subcarrier_factor.shape[-1])

    @classmethod
    def sample(cls, num_elements: int, num_subcarriers: int | None = None, batch_shape=(),
               generator: torch.Generator | None = None, dtype=torch.float32, device=None, *,
               harmonics: int = 3, inner_max_deg: float = 15.0, slope_range=(0.5, 1.5),
               subcarrier_std: float = 0.05, threshold_deg: float = 30.0, width_deg: float = 1.0,
               reference_element: int | None = 0, degree: float = 1.0, known: bool = False,
               learnable: bool = False) -> SmoothPhaseError:
        r"""Draw a random smooth phase-error model.

        Per element: ripple coefficients ∝ N(0, 1)/q scaled so that Σ_q |a_q| + |b_q| =
        u·inner_max with u ~ U(0.3, 1) (so |r_m| ≤ inner_max everywhere); slopes s^± with a
        random sign and magnitude ~ U(slope_range) (deg/deg); η_{m,n} ~ N(0, subcarrier_std²)
        clipped to ±4 std.  With the defaults |ψ| < 20° on [-30°, 30°] (15°·1.2 + the hinge's
        w·ln2·1.5·1.2 ≈ 19.3°).  The ``reference_element`` has ψ ≡ 0 (the seed measures
        phases relative to the first antenna); ``None`` leaves every element impaired.
        """
        m = int(num_elements)
        if m <= 0:
            raise ValueError(f"num_elements must be a positive integer, got {num_elements}")
        q = int(harmonics)
        if q <= 0:
            raise ValueError(f"harmonics must be a positive integer, got {harmonics}")
        lo, hi = (float(v) for v in slope_range)
        if not 0 <= lo <= hi:
            raise ValueError(f"slope_range must satisfy 0 <= low <= high, got {slope_range}")
        if inner_max_deg < 0 or subcarrier_std < 0:
            raise ValueError("inner_max_deg and subcarrier_std must be non-negative")
        batch = tuple(batch_shape)
        kw = dict(generator=generator, dtype=dtype, device=device)
        raw = torch.randn((*batch, m, 2, q), **kw) / torch.arange(1, q + 1, dtype=dtype, device=device)
        u = 0.3 + 0.7 * torch.rand((*batch, m, 1, 1), **kw)
        raw = raw / raw.abs().sum(dim=(-1, -2), keepdim=True).clamp_min(1e-12) * u * math.radians(inner_max_deg)
        sign = torch.where(torch.rand((*batch, m, 2), **kw) < 0.5, -1.0, 1.0).to(dtype)
        slopes = sign * (lo + (hi - lo) * torch.rand((*batch, m, 2), **kw))
        eta = None
        if num_subcarriers is not None:
            n = int(num_subcarriers)
            if n <= 0:
                raise ValueError(f"num_subcarriers must be a positive integer, got {num_subcarriers}")
            eta = (torch.randn((*batch, m, n), **kw) * subcarrier_std).clamp(-4 * subcarrier_std, 4 * subcarrier_std)
        if reference_element is not None:
            r = int(reference_element)
            if not 0 <= r < m:
                raise ValueError(f"reference_element must be in [0, {m - 1}] or None, got {reference_element}")
            raw[..., r, :, :] = 0
            slopes[..., r, :] = 0
        return cls(raw[..., 0, :], raw[..., 1, :], slopes[..., 0], slopes[..., 1], eta,
                   math.radians(threshold_deg), math.radians(width_deg), degree, known, learnable)

    def _phase_and_derivative(self, theta, subcarriers):
        t = theta.unsqueeze(-2)  # (..., 1, K) or (..., 1, 1, K): broadcast over elements
        dt = t.dtype
        a, b = self.ripple_cos.to(dt), self.ripple_sin.to(dt)  # (P..., M, Q)
        s_pos, s_neg = self.slope_pos.to(dt).unsqueeze(-1), self.slope_neg.to(dt).unsqueeze(-1)  # (P..., M, 1)
        if subcarriers is not None:  # parameters (P..., 1, M, ·) against the subcarrier axis
            a, b, s_pos, s_neg = (x.unsqueeze(-3) for x in (a, b, s_pos, s_neg))
        th0, w = self.threshold, self.width
        hp, sp = _softplus_hinge(t - th0, w)
        hn, sn = _softplus_hinge(-t - th0, w)
        x = t - hp + hn  # soft clamp to [-θ₀, θ₀]
        dx = 1 - sp - sn
        k = torch.arange(1, a.shape[-1] + 1, dtype=dt, device=a.device) * (math.pi / th0)  # (Q,)
        arg = x.unsqueeze(-1) * k  # (..., 1, K, Q)
        ripple = (a.unsqueeze(-2) * torch.cos(arg) + b.unsqueeze(-2) * torch.sin(arg)).sum(-1)
        dripple = ((-a.unsqueeze(-2) * torch.sin(arg) + b.unsqueeze(-2) * torch.cos(arg)) * k).sum(-1) * dx
        psi = ripple + s_pos * hp + s_neg * hn
        dpsi = dripple + s_pos * sp - s_neg * sn
        if self.subcarrier_factor is not None and subcarriers is not None:
            sc = _subcarrier_index(subcarriers, self.num_subcarriers).to(self.subcarrier_factor.device)
            f = 1 + self.subcarrier_factor.to(dt).index_select(-1, sc).transpose(-1, -2).unsqueeze(-1)
            psi, dpsi = f * psi, f * dpsi  # (..., N', M, K)
        return psi, dpsi


def _tangent_matrix(grid: torch.Tensor) -> torch.Tensor:
    """D ``(G, G)`` with m = D y the three-point (non-uniform) tangents; one-sided at the ends."""
    g = grid.shape[0]
    h = grid[1:] - grid[:-1]
    D = torch.zeros(g, g, dtype=grid.dtype, device=grid.device)
    D[0, 0], D[0, 1] = -1 / h[0], 1 / h[0]
    D[-1, -2], D[-1, -1] = -1 / h[-1], 1 / h[-1]
    if g > 2:
        hl, hr = h[:-1], h[1:]
        i = torch.arange(1, g - 1, device=grid.device)
        wr, wl = hl / (hl + hr), hr / (hl + hr)  # weight of the right and left slopes
        D[i, i + 1] += wr / hr
        D[i, i] += -wr / hr + wl / hl
        D[i, i - 1] += -wl / hl
    return D


def hermite_weights(theta: torch.Tensor, grid: torch.Tensor, tangents: torch.Tensor | None = None
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Cubic Hermite interpolation as a linear map: f(θ) = W(θ) y, f'(θ) = W'(θ) y.

    Args:
        theta: ``(..., K)`` angles; clamped to ``[grid[0], grid[-1]]`` (W' = 0 outside).
        grid: ``(G,)`` strictly increasing, G ≥ 2.
        tangents: the ``(G, G)`` tangent matrix (computed from ``grid`` when omitted).

    Returns:
        ``(W, W')``, each ``(..., K, G)``; W is differentiable in θ (its derivative is W').
    """
    D = _tangent_matrix(grid) if tangents is None else tangents
    G = grid.shape[0]
    inside = (theta >= grid[0]) & (theta <= grid[-1])
    tc = theta.clamp(float(grid[0]), float(grid[-1]))
    i = (torch.searchsorted(grid, tc.detach().contiguous(), right=True) - 1).clamp(0, G - 2)
    g0, g1 = grid[i], grid[i + 1]
    h = g1 - g0
    t = (tc - g0) / h
    t2, t3 = t * t, t * t * t
    h00, h10, h01, h11 = 2 * t3 - 3 * t2 + 1, t3 - 2 * t2 + t, -2 * t3 + 3 * t2, t3 - t2
    d00, d10, d01, d11 = 6 * t2 - 6 * t, 3 * t2 - 4 * t + 1, -6 * t2 + 6 * t, 3 * t2 - 2 * t
    e0 = torch.nn.functional.one_hot(i, G).to(theta.dtype)
    e1 = torch.nn.functional.one_hot(i + 1, G).to(theta.dtype)
    Di, Dj = D[i], D[i + 1]
    u = lambda x: x.unsqueeze(-1)  # noqa: E731
    W = u(h00) * e0 + u(h01) * e1 + u(h * h10) * Di + u(h * h11) * Dj
    dW = (u(d00 / h) * e0 + u(d01 / h) * e1 + u(d10) * Di + u(d11) * Dj) * u(inside.to(theta.dtype))
    return W, dW


class TabulatedPhaseError(AngleDependentPhaseError):
    r"""Measured phase-error curves ψ on an angle grid, interpolated in θ (cubic Hermite, C¹).

    Args:
        angle_grid: ``(G,)`` strictly increasing azimuths (radians), G ≥ 2.
        table: ψ in radians, ``(..., M, G)``, or ``(..., M, N, G)`` per subcarrier.
        per_subcarrier: whether ``table`` has the N axis (default: ``table.ndim == 3``).
        degree: ρ ∈ [0, 1].
        learnable: make the table an ``nn.Parameter``.

    Use :meth:`from_degrees` for curves in degrees (e.g. read from a measurement file).
    """

    def __init__(self, angle_grid, table, per_subcarrier: bool | None = None, degree: float = 1.0,
                 known: bool = False, learnable: bool = False):
        super().__init__(degree, known)
        grid = torch.as_tensor(angle_grid, dtype=torch.float64)
        tab = torch.as_tensor(table)
        if tab.is_complex():
            raise TypeError("table must hold real phases (radians)")
        if not tab.is_floating_point():
            tab = tab.to(torch.get_default_dtype())
        if grid.ndim != 1 or grid.shape[0] < 2:
            raise ValueError(f"angle_grid must have shape (G,) with G >= 2, got {tuple(grid.shape)}")
        check_finite(grid, "angle_grid")
        if not bool((grid[1:] > grid[:-1]).all()):
            raise ValueError("angle_grid must be strictly increasing")
        per_sc = (tab.ndim == 3) if per_subcarrier is None else bool(per_subcarrier)
        need = 3 if per_sc else 2
        if tab.ndim < need or tab.shape[-1] != grid.shape[0]:
            what = "(..., M, N, G)" if per_sc else "(..., M, G)"
            raise ValueError(f"table must have shape {what} with G = {grid.shape[0]}, got {tuple(tab.shape)}")
        check_finite(tab, "table")
        self.per_subcarrier = per_sc
        self.subcarrier_dependent = per_sc
        self.learnable = bool(learnable)
        self.register_buffer("angle_grid", grid.to(device=tab.device))
        self.register_buffer("tangents", _tangent_matrix(grid).to(device=tab.device))
        if self.learnable:
            self.table = nn.Parameter(tab.clone())
        else:
            self.register_buffer("table", tab.clone())

    @classmethod
    def from_degrees(cls, angle_grid_deg, table_deg, **kwargs) -> TabulatedPhaseError:
        """Grid and curves in degrees (converted once to radians)."""
        return cls(torch.deg2rad(torch.as_tensor(angle_grid_deg, dtype=torch.float64)),
                   torch.deg2rad(torch.as_tensor(table_deg)), **kwargs)

    @classmethod
    def from_model(cls, model: SmoothPhaseError, angle_grid, **kwargs) -> TabulatedPhaseError:
        """Tabulate a :class:`SmoothPhaseError` on ``angle_grid`` (all its subcarriers)."""
        grid = torch.as_tensor(angle_grid, dtype=model.ripple_cos.dtype)
        with torch.no_grad():
            if model.subcarrier_factor is None:
                tab = model.phase(grid)  # (..., M, G)
            else:
                sc = torch.arange(model.num_subcarriers)
                tab = model.phase(grid, sc).transpose(-2, -3)  # (..., N, M, G) -> (..., M, N, G)
        return cls(grid, tab, per_subcarrier=model.subcarrier_factor is not None,
                   degree=kwargs.pop("degree", model.degree), **kwargs)

    @property
    def num_elements(self) -> int:
        return int(self.table.shape[-3 if self.per_subcarrier else -2])

    def _phase_and_derivative(self, theta, subcarriers):
        dt = theta.dtype
        grid = self.angle_grid.to(dt)
        W, dW = hermite_weights(theta, grid, self.tangents.to(dt))  # (..., K, G)
        tab = self.table.to(dt)
        if self.per_subcarrier:
            if subcarriers is None:
                raise ValueError("this phase-error table is per subcarrier; pass subcarriers=")
            sc = _subcarrier_index(subcarriers, tab.shape[-2]).to(tab.device)
            tab = tab.index_select(-2, sc).transpose(-2, -3)  # (..., N', M, G)
        elif subcarriers is not None:
            tab = tab.unsqueeze(-3)  # (..., 1, M, G) against the subcarrier axis
        return tab @ W.transpose(-1, -2), tab @ dW.transpose(-1, -2)
