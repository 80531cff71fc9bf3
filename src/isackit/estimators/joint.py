r"""Joint angle–delay and angle–angle–delay spectral estimators on OFDM CSI.

Bartlett, MVDR/Capon and MUSIC on single-snapshot channel estimates, over separable product
grids, with vectorised peak picking (:func:`~.peaks.find_peaks`) and off-grid refinement:

* angle–delay (monostatic / uplink): CSI ``H (..., N, M)``, H_{n,m} = Σ_k α_k a_m(θ_k) b_n(τ_k);
  parameters ("azimuth", "delay");
* angle–angle–delay (bistatic, seed 001): CSI ``H (..., N, M_r, M_t)``,
  H_n = Σ_k α_k a_r(θ_k) a_t(φ_k)^T b_n(τ_k); parameters ("aoa", "aod", "delay"),

with b(τ)_n = exp(-j2π nΔf τ) (delay in seconds) and a, a_r, a_t the steering vectors of the
ASSUMED array models (azimuth only, elevation 0).

**Spatial–frequency smoothing.**  One CSI snapshot has rank one; MUSIC and MVDR need a
covariance of rank K.  The data are arranged in parameter order, X ``(..., S_1, …, S_P)``
(angle axes first, the subcarrier axis last), and every window of ``w_p`` consecutive
entries per axis (a sub-band of N' subcarriers and, optionally, sub-arrays of M' elements)
is one snapshot y_i = vec(X[i_1:i_1+w_1, …]) of dimension D = Π w_p (row-major, first axis
slowest), so that

    R = (1/I) Σ_i y_i y_i^H    (D × D),   I = Π (S_p - w_p + 1) windows,

and, because each axis response is Vandermonde (b(τ) always; a(θ) for a ULA), every window
sees the same atoms x(ψ) = a(θ)[:w_1] ⊗ … ⊗ b(τ)[:w_P] with a window-dependent phase: R has
rank K when I ≥ K and the paths are separated along a smoothed axis (coherent paths are
decorrelated) — the 2-D spatial smoothing of Hankel-type methods (seed 001, PARAMING's
sub-array/sub-band matrices).  Sub-band smoothing alone separates paths with different
delays; paths that share a delay (to within the window phase) need sub-array smoothing
(``subarray < M``), else the rank drops and MUSIC/MVDR cannot resolve them.  Optional
forward–backward averaging (:func:`~.preprocessing.forward_backward`).  Sub-array
smoothing of an angle axis is only valid for shift-invariant (ULA-like) responses; this is
checked on the grid dictionary.

**Spectra on the product grid, never the Kronecker dictionary.**  MUSIC is
Σ_j |w_j^H x(ψ_g)|² for K vectors w_j (:func:`separable_energy`, axis-by-axis contractions,
chunked over the last grid axis):

* MUSIC   P_M = ‖x‖² / (‖x‖² - ‖E_s^H x‖²)       (w_j = the K signal eigenvectors of R)
* MVDR    P_C = 1 / x^H (R + δI)^{-1} x          (:func:`separable_quadratic_form`: Q is
  contracted axis by axis on both sides, the last axis by co-array-reduced quadratic forms)
* Bartlett (one snapshot, no smoothing) |x^H vec(X)|² / ‖x‖² —
  :func:`~.spectral.angle_delay_spectrum` / :func:`~.spectral.angle_angle_delay_spectrum`.

Cost of the MUSIC map: K·(Π_p w_p·G_1 + …) ≈ K·w_P·Π G_p multiply-adds, memory bounded by
``max_elements``; the D × D eigendecomposition is O(D³) per batch element.

**Refinement** (unless ``grid_only``), in units of grid steps per axis: MUSIC by batched
Gauss–Newton steps on x^H P_n x / x^H x (:func:`~.spectral.music_refine` with the Kronecker
response and its exact derivatives); Bartlett and MVDR by coordinate-wise parabolic
refinement of the exact continuous spectrum (:func:`~.peaks.refine_parabolic`, ``sweeps``
passes over the axes).  Noise-free MUSIC is exact after refinement; Bartlett is exact for one
path; MVDR is biased by the diagonal loading and by the other paths (small at small loading).

Differentiability: :func:`smoothed_covariance`, :func:`separable_energy`,
:func:`joint_music_spectrum`, :func:`joint_mvdr_spectrum` are differentiable w.r.t. the
data and the dictionaries; the estimators (peak picking, refinement) run under ``no_grad``.

References: Van Trees, *Optimum Array Processing* (2002) ch. 9 (MUSIC/MVDR), Shan, Wax &
Kailath, IEEE TASSP 1985 (spatial smoothing); seed 001 (3-D Bartlett/MUSIC baselines on an
(AoA, AoD, ToA) grid); seed 000 (angle–delay OFDM sensing model).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from .._dtypes import complex_dtype_of, eps, is_numerically_singular, real_dtype_of, tolerance
from .base import EstimationResult, Estimator, register
from .common import (
    batch_chunks,
    check_covariance,
    check_data,
    hermitian,
    loaded_covariance,
    make_result,
    quadratic_form,
    sanitize_covariance,
    sanitize_data,
    signal_subspace,
)
from .grids import (
    QuadraticFormDictionary,
    SearchGrid,
    default_delay_grid,
    delay_dictionary,
    steering_with_derivatives,
)
from .peaks import find_peaks, peaks_to_coordinates, refine_parabolic
from .preprocessing import forward_backward as _forward_backward
from .spectral import AZIMUTH_GRID_2D, angle_angle_delay_spectrum, angle_delay_spectrum, music_refine

__all__ = [
    "AOA_GRID",
    "AOD_GRID",
    "BartlettAngleAngleDelay",
    "MUSICAngleAngleDelay",
    "MUSICAngleDelay",
    "MVDRAngleAngleDelay",
    "MVDRAngleDelay",
    "angle_angle_delay_bartlett",
    "angle_angle_delay_music",
    "angle_angle_delay_mvdr",
    "angle_delay_bartlett",
    "angle_delay_music",
    "angle_delay_mvdr",
    "BARTLETT_JOINT",
    "JointSpectrum",
    "JointStage",
    "MUSIC_JOINT",
    "MVDR_JOINT",
    "joint_music_spectrum",
    "joint_mvdr_spectrum",
    "separable_energy",
    "separable_quadratic_form",
    "smoothed_covariance",
]

#: default AoA / AoD grids of the angle–angle–delay estimators: 1° over [-90°, 90°] (seed 001)
AOA_GRID = SearchGrid.degrees(-90.0, 90.0, 1.0, name="aoa")
AOD_GRID = SearchGrid.degrees(-90.0, 90.0, 1.0, name="aod")
_MAX_ELEMENTS = 1 << 22  # complex entries of the largest intermediate of a grid map


# ---------------------------------------------------------------------------------------
# pure, batched, differentiable pieces
# ---------------------------------------------------------------------------------------
def smoothed_covariance(X: torch.Tensor, windows: tuple[int, ...], forward_backward: bool = False
                        ) -> torch.Tensor:
    r"""Multi-dimensional smoothed covariance of one data block.

    R = (1/I) Σ_i y_i y_i^H, y_i = vec(X[i_1:i_1+w_1, …, i_P:i_P+w_P]) (row-major, first
    axis slowest), over all I = Π (S_p - w_p + 1) windows; with ``forward_backward`` R is
    replaced by (R + J R^* J)/2.

    Args:
        X: ``(..., S_1, …, S_P)`` complex, P = ``len(windows)``.
        windows: ``(w_1, …, w_P)``, 1 ≤ w_p ≤ S_p.

    Returns:
        ``(..., D, D)`` Hermitian, D = Π w_p.  Differentiable.
    """
    P = len(windows)
    if P < 1 or X.ndim < P:
        raise ValueError(f"X must have at least {P} dims for {P} windows, got shape {tuple(X.shape)}")
    if not X.is_complex():
        raise TypeError(f"X must be complex, got {X.dtype}")
    sizes = X.shape[X.ndim - P:]
    for p, (w, s) in enumerate(zip(windows, sizes, strict=True)):
        if isinstance(w, bool) or not 1 <= int(w) <= s:
            raise ValueError(f"window {p} must be an integer in [1, {s}], got {w!r}")
    Y = X
    for p, w in enumerate(windows):
        Y = Y.unfold(X.ndim - P + p, int(w), 1)  # appends the window axis
    batch = X.shape[:X.ndim - P]
    n_win = math.prod(s - int(w) + 1 for s, w in zip(sizes, windows, strict=True))
    D = math.prod(int(w) for w in windows)
    Y = Y.reshape(*batch, n_win, D)
    R = Y.mT @ Y.conj() / n_win
    return _forward_backward(R) if forward_backward else R


def _sq(z: torch.Tensor) -> torch.Tensor:
    return z.real.square() + z.imag.square()


def separable_energy(W: torch.Tensor, factors: list[torch.Tensor] | tuple[torch.Tensor, ...],
                     max_elements: int = _MAX_ELEMENTS) -> torch.Tensor:
    r"""Σ_j |w_j^H x(g)|² on a product grid, x(g_1, …, g_P) = f_1[:, g_1] ⊗ … ⊗ f_P[:, g_P].

    Contracted axis by axis (never the D × ΠG Kronecker dictionary), the last grid axis in
    chunks so that no intermediate exceeds ``max_elements`` complex entries per call.

    Args:
        W: ``(..., D, J)`` complex, D = Π w_p (row-major over the factors' rows).
        factors: P dictionaries ``(w_p, G_p)``.

    Returns:
        ``(..., G_1, …, G_P)`` real.  Differentiable in W and the factors.
    """
    ws = [int(f.shape[0]) for f in factors]
    Gs = [int(f.shape[1]) for f in factors]
    if W.shape[-2] != math.prod(ws):
        raise ValueError(f"W must be (..., D={math.prod(ws)}, J) for factors with rows {ws}, "
                         f"got shape {tuple(W.shape)}")
    batch = W.shape[:-2]
    J = W.shape[-1]
    T = W.conj().reshape(-1, *ws, J).movedim(-1, 1)  # (B, J, w_1..w_P)
    for f in factors[:-1]:
        T = T.movedim(2, -1) @ f  # contract w_p, append G_p
    T = T.movedim(2, -1)  # (B, J, G_1..G_{P-1}, w_P)
    last = factors[-1]
    per_col = max(1, T.numel() // max(1, ws[-1]))
    c = max(1, int(max_elements) // per_col)
    out = [_sq(T @ last[:, s:s + c]).sum(1) for s in range(0, Gs[-1], c)]
    return torch.cat(out, -1).reshape(*batch, *Gs)


def separable_quadratic_form(Q: torch.Tensor, factors: list[torch.Tensor] | tuple[torch.Tensor, ...]
                             ) -> torch.Tensor:
    r"""Re x(g)^H Q x(g) on a product grid, x(g) = f_1[:, g_1] ⊗ … ⊗ f_P[:, g_P], Q Hermitian.

    Q is contracted one axis at a time on both sides (the diagonal in the grid index):
    T_{g_1}[l, r] = Σ_{i,j} f_1[i,g_1]^* Q[(i,l),(j,r)] f_1[j,g_1] is again Hermitian in the
    remaining indices, and the last axis is a quadratic form on one dictionary
    (:class:`~.spectral.QuadraticFormDictionary`: 2w-1 co-array terms for a Vandermonde
    factor such as the delay response).  Cost ≈ D²·G_1 + … + ΠG·(2w_P - 1) instead of
    D·J·w_P·ΠG for :func:`separable_energy` with J = D whitening vectors (MVDR).

    Args:
        Q: ``(..., D, D)`` Hermitian, D = Π w_p.  factors: P dictionaries ``(w_p, G_p)``.

    Returns:
        ``(..., G_1, …, G_P)`` real.  Differentiable in Q (not through the merged last-axis
        dictionary, which is rebuilt without gradient).
    """
    ws = [int(f.shape[0]) for f in factors]
    Gs = [int(f.shape[1]) for f in factors]
    D = math.prod(ws)
    check_covariance(Q, D, "Q")
    batch = Q.shape[:-2]
    T = Q.reshape(-1, D, D)
    for f, w in zip(factors[:-1], ws[:-1], strict=False):
        b, rest = T.shape[0], T.shape[-1] // w
        T = T.reshape(b, w, rest, w, rest)
        T = torch.einsum("bilja,jg->bilga", T, f)  # right side
        T = torch.einsum("ig,bilga->bgla", f.conj(), T)  # left side, same grid point
        T = T.reshape(b * f.shape[1], rest, rest)
    with torch.no_grad():
        qf = QuadraticFormDictionary(factors[-1].detach())
    return qf(T).reshape(*batch, *Gs)


def _product_norms(factors) -> torch.Tensor:
    """‖x(g)‖² = Π_p ‖f_p[:, g_p]‖² on the product grid, ``(G_1, …, G_P)``."""
    out = None
    for f in factors:
        n = _sq(f).sum(0)
        out = n if out is None else out[..., None] * n
    return out


def joint_music_spectrum(R: torch.Tensor, factors, num_sources: int) -> torch.Tensor:
    r"""MUSIC pseudo-spectrum ‖x‖² / ‖E_n^H x‖² on a separable product grid.

    ‖E_n^H x‖² = ‖x‖² - ‖E_s^H x‖² with E_s the K principal eigenvectors of R, so only the K
    signal eigenvectors are contracted with the factors.

    Args:
        R: ``(..., D, D)`` (e.g. :func:`smoothed_covariance`); factors: ``(w_p, G_p)``, Π w_p = D.
        num_sources: K.

    Returns:
        ``(..., G_1, …, G_P)`` real (capped at 1/eps).  Differentiable.
    """
    check_covariance(R, math.prod(int(f.shape[0]) for f in factors))
    Es = signal_subspace(hermitian(R), num_sources)
    norms = _product_norms(factors)
    e = separable_energy(Es, factors)
    return norms / (norms - e).clamp_min(eps(R.dtype) * norms)


def _mvdr_whitener(R: torch.Tensor, loading: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(W = V Λ^{-1/2} with W W^H = (R + δI)^{-1}, valid); numerically singular → invalid
    (:func:`~isackit._dtypes.is_numerically_singular`)."""
    w, V = torch.linalg.eigh(loaded_covariance(R, loading))
    valid = ~is_numerically_singular(w)
    w = torch.where(valid[..., None], w, torch.ones_like(w))
    return V * w.rsqrt()[..., None, :].to(V.dtype), valid


def joint_mvdr_spectrum(R: torch.Tensor, factors, loading: float = 1e-3) -> torch.Tensor:
    r"""MVDR / Capon spectrum 1 / x^H (R + δI)^{-1} x on a separable product grid
    (δ = ``loading``·tr R / D; same as :func:`~.spectral.mvdr_spectrum` on the Kronecker
    dictionary).

    Returns:
        ``(..., G_1, …, G_P)`` real.  Differentiable.
    """
    check_covariance(R, math.prod(int(f.shape[0]) for f in factors))
    W, _ = _mvdr_whitener(R, loading)
    return 1.0 / separable_quadratic_form(W @ W.mH, factors)


# ---------------------------------------------------------------------------------------
# axes of a joint problem and the Kronecker response used by the refinement
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class _Axis:
    """One parameter axis: an angle axis (``model``) or the delay axis (``subcarrier_spacing``)."""

    grid: SearchGrid
    length: int
    window: int
    model: Any = None
    subcarrier_spacing: float | None = None

    def dictionary(self, like: torch.Tensor) -> torch.Tensor:
        """``(window, G)`` dictionary on the grid (cached on the grid)."""
        if self.model is None:
            return self.grid.delays(self.subcarrier_spacing, self.window, like)
        return self.grid.steering(self.model, like)[: self.window]

    def response(self, values: torch.Tensor, derivative: bool = False):
        """``(..., window, K)`` response at ``values (..., K)`` (and its derivative)."""
        if self.model is None:
            b = delay_dictionary(values, self.subcarrier_spacing, self.window)
            if not derivative:
                return b
            n = torch.arange(self.window, dtype=values.dtype, device=values.device)
            return b, b * (-2j * math.pi * self.subcarrier_spacing * n)[:, None].to(b.dtype)
        if not derivative:
            return self.model.steering(values)[..., : self.window, :]
        A, (dA, _) = steering_with_derivatives(self.model, values)
        return A[..., : self.window, :], dA[..., : self.window, :]


def _kron_columns(factors: list[torch.Tensor]) -> torch.Tensor:
    """Column-wise Kronecker product of ``(..., w_p, K)`` factors → ``(..., Π w_p, K)``."""
    out = factors[0]
    for f in factors[1:]:
        out = (out[..., :, None, :] * f[..., None, :, :]).flatten(-3, -2)
    return out


class _KronResponse:
    """x(u) = ⊗_p r_p(u_p·s_p) with parameters u_p in units of grid steps s_p: the "model"
    that :func:`~.spectral.music_refine` and the parabolic refinement evaluate."""

    def __init__(self, axes: list[_Axis], dtype: torch.dtype):
        self.axes = axes
        self.scales = [a.grid.step for a in axes]
        self.dtype = dtype

    def steering(self, *u):
        u = [x for x in u if x is not None]
        return _kron_columns([a.response(x * s).to(self.dtype)
                              for a, x, s in zip(self.axes, u, self.scales, strict=True)])

    def steering_and_derivatives(self, *u):
        u = [x for x in u if x is not None]
        pairs = [a.response(x * s, derivative=True) for a, x, s in zip(self.axes, u, self.scales, strict=True)]
        vals = [v.to(self.dtype) for v, _ in pairs]
        ders = [(d * s).to(self.dtype) for (_, d), s in zip(pairs, self.scales, strict=True)]
        out = []
        for p in range(len(vals)):
            out.append(_kron_columns(vals[:p] + [ders[p]] + vals[p + 1:]))
        return _kron_columns(vals), tuple(out)


def _check_shift_invariant(axis: _Axis, like: torch.Tensor):
    """Sub-array smoothing needs a[m+1]/a[m] independent of m (a ULA-like response)."""
    if axis.model is None or axis.window == axis.length:
        return
    A = axis.grid.steering(axis.model, like)
    r = A[1:] * A[:-1].conj()
    # a[m+1]/a[m] of a ULA agree to the rounding of the phases (≈ M·eps): allow 1000·M·eps
    tol = tolerance(real_dtype_of(like), condition=A.shape[0], factor=1000.0) * float(A.abs().max()) ** 2
    if float((r - r[:1]).abs().max()) > tol:
        raise ValueError("sub-array smoothing (window < number of elements) needs a shift-invariant "
                         "(uniform linear) array response; use the full aperture for this array")


def _make_axes(specs, num_sources: int, like: torch.Tensor) -> list[_Axis]:
    """specs: (grid, length, window or None, model or None, Δf or None, default window)."""
    if isinstance(num_sources, bool) or not isinstance(num_sources, int):
        raise ValueError(f"num_sources must be a positive integer, got {num_sources!r}")
    axes = []
    for grid, length, window, model, df, default in specs:
        if not isinstance(grid, SearchGrid):
            raise TypeError(f"grids must be SearchGrid objects, got {type(grid).__name__}")
        w = default if window is None else window
        if isinstance(w, bool) or not isinstance(w, int) or not 1 <= w <= length:
            raise ValueError(f"window of the {grid.name} axis must be an integer in [1, {length}], got {w!r}")
        axes.append(_Axis(grid, length, w, model, df))
    K = num_sources
    D = math.prod(a.window for a in axes)
    n_win = math.prod(a.length - a.window + 1 for a in axes)
    if K < 1 or D <= K:
        raise ValueError(f"num_sources must be in [1, D-1] with D = {D} (the smoothed snapshot "
                         f"dimension), got {num_sources}")
    if n_win < K:
        raise ValueError(f"smoothing gives {n_win} window(s) < {K} targets: coherent paths cannot be "
                         f"separated; use a smaller sub-band / sub-array")
    for a in axes:
        _check_shift_invariant(a, like)
    return axes


# ---------------------------------------------------------------------------------------
# the shared pipeline
# ---------------------------------------------------------------------------------------
def _refine_coordinate(score, psi: torch.Tensor, iterations: int, sweeps: int) -> torch.Tensor:
    """Coordinate-wise parabolic maximisation of ``score(psi (B, K, P)) → (B, K)`` (unit steps)."""
    P = psi.shape[-1]
    for _ in range(int(sweeps)):
        for p in range(P):
            def f(t, p=p):
                return score(torch.cat([psi[..., :p], t[..., None], psi[..., p + 1:]], -1))
            psi = torch.cat([psi[..., :p], refine_parabolic(f, psi[..., p], 1.0, iterations)[..., None],
                             psi[..., p + 1:]], -1)
    return psi


@dataclass(frozen=True)
class JointStage:
    """What a :class:`JointSpectrum` prepares for one flattened batch ``(B, …)``.

    Attributes:
        valid: ``(B,)`` bool, False where the method cannot use the element (rank, conditioning).
        grid_map: ``slice → (b, G_1, …, G_P)`` score on the product grid whose K largest local
            maxima are the grid estimates.
        refine: ``(u (B, K, P) in grid steps, kron, iterations, sweeps) → u`` off-grid refinement.
        display: ``score → spectrum`` returned to the user (None: the score itself).
    """

    valid: torch.Tensor
    grid_map: Callable[[slice], torch.Tensor]
    refine: Callable[..., torch.Tensor]
    display: Callable[[torch.Tensor], torch.Tensor] | None = None


class JointSpectrum:
    """A spectral method of the joint CSI estimators: its one hook is :meth:`prepare`.

    ``smoothing`` says whether the method works on the spatial–frequency smoothed covariance
    (MUSIC, MVDR) or on the raw single snapshot (Bartlett).
    """

    smoothing: bool = True

    def prepare(self, X: torch.Tensor, axes: list[_Axis], factors: list[torch.Tensor], num_sources: int, *,
                loading: float, forward_backward: bool) -> JointStage:  # pragma: no cover - abstract
        """The grid score and the refinement for CSI ``X (B, S_1, …, S_P)`` in parameter order."""
        raise NotImplementedError


class _BartlettJoint(JointSpectrum):
    """|x^H vec(X)|² / ‖x‖² on the raw snapshot; coordinate-wise parabolic refinement."""

    smoothing = False

    def prepare(self, X, axes, factors, num_sources, *, loading, forward_backward):
        P = len(axes)
        H = X.transpose(-1, -2) if P == 2 else X.movedim(-1, 1)  # back to (B, N, M[, M_t])

        def grid_map(sl):
            if P == 2:
                return angle_delay_spectrum(H[sl], factors[0], factors[1])
            return angle_angle_delay_spectrum(H[sl], factors[0], factors[1], factors[2])

        h = X.reshape(X.shape[0], -1)  # parameter order: matches the Kronecker response

        def refine(u, kron, iterations, sweeps):
            def score(v):
                x = kron.steering(*v.unbind(-1))  # (B, D, K)
                return _sq((x.conj() * h[..., None]).sum(-2)) / _sq(x).sum(-2)
            return _refine_coordinate(score, u, iterations, sweeps)

        return JointStage(torch.ones(X.shape[0], dtype=torch.bool, device=X.device), grid_map, refine)


def _smoothed(X, axes, forward_backward):
    R = smoothed_covariance(X, tuple(a.window for a in axes), forward_backward)
    R, ok = sanitize_covariance(R)
    return hermitian(R), ok


class _MUSICJoint(JointSpectrum):
    """Fraction of the atom in the signal subspace, ‖E_s^H x‖²/‖x‖² ∈ [0, 1]; Gauss–Newton refinement."""

    def prepare(self, X, axes, factors, num_sources, *, loading, forward_backward):
        R, ok = _smoothed(X, axes, forward_backward)
        W = signal_subspace(R, num_sources)
        norms = _product_norms(factors)
        floor = eps(X.dtype)

        def grid_map(sl):
            return separable_energy(W[sl], factors) / norms

        def refine(u, kron, iterations, sweeps):
            return music_refine(R, kron, u, num_sources, 1.0, iterations, W)

        return JointStage(ok, grid_map, refine, lambda s: 1.0 / (1.0 - s).clamp_min(floor))


class _MVDRJoint(JointSpectrum):
    """-x^H (R + δI)^{-1} x (the negative inverse MVDR power); coordinate-wise parabolic refinement."""

    def prepare(self, X, axes, factors, num_sources, *, loading, forward_backward):
        R, ok = _smoothed(X, axes, forward_backward)
        W, ok_w = _mvdr_whitener(R, loading)
        Ri = hermitian(W @ W.mH)

        def grid_map(sl):
            return -separable_quadratic_form(Ri[sl], factors)

        def refine(u, kron, iterations, sweeps):
            def score(v):
                return -quadratic_form(kron.steering(*v.unbind(-1)), Ri)
            return _refine_coordinate(score, u, iterations, sweeps)

        return JointStage(ok & ok_w, grid_map, refine, lambda s: -1.0 / s)


#: the joint spectral methods (the hook objects the public functions and classes use)
BARTLETT_JOINT, MUSIC_JOINT, MVDR_JOINT = _BartlettJoint(), _MUSICJoint(), _MVDRJoint()


def _run(method: JointSpectrum, X: torch.Tensor, axes: list[_Axis], num_sources: int, names,
         *, grid_only: bool, iterations: int, sweeps: int, loading: float, forward_backward: bool,
         chunk_size: int, return_spectrum: bool) -> EstimationResult:
    """Grid search + refinement of ``method`` on CSI ``X (..., M[, M_t], N)`` in parameter order."""
    P = len(axes)
    K = int(num_sources)
    with torch.no_grad():
        batch = X.shape[:-P]
        Xf, valid = sanitize_data(X.reshape(-1, *X.shape[-P:]), P)
        factors = [a.dictionary(X) for a in axes]
        grids = tuple(a.grid.points_like(X) for a in axes)
        steps = torch.tensor([a.grid.step for a in axes], dtype=real_dtype_of(X), device=X.device)
        stage = method.prepare(Xf, axes, factors, K, loading=loading, forward_backward=forward_backward)
        valid = valid & stage.valid
        outs, founds, specs = [], [], []
        for sl in batch_chunks(Xf.shape[0], chunk_size):
            s = stage.grid_map(sl)
            _, idx, found = find_peaks(s, K, ndim=P)
            outs.append(peaks_to_coordinates(idx, found, grids))
            founds.append(found)
            if return_spectrum:
                specs.append(s if stage.display is None else stage.display(s))
        est = torch.cat(outs, 0)
        found = torch.cat(founds, 0)
        spec = torch.cat(specs, 0) if return_spectrum else None
        if not grid_only:
            kron = _KronResponse(axes, complex_dtype_of(X))
            u = torch.nan_to_num(est) / steps  # parameters in units of grid steps
            est = stage.refine(u, kron, iterations, sweeps) * steps
        return make_result(est, found, valid, batch, names, spectrum=spec, grids=grids if return_spectrum else None)


# ---------------------------------------------------------------------------------------
# public pipelines
# ---------------------------------------------------------------------------------------
def _check_csi(H: torch.Tensor, dims, what: str):
    check_data(H, dims, "H", what, finite=True)
    if H.shape[-len(dims)] < 2:
        raise ValueError(f"H needs at least 2 subcarriers, got shape {tuple(H.shape)}")


def _angle_delay(method: JointSpectrum, H, array, num_sources, azimuth_grid, delay_grid, subcarrier_spacing,
                 subband, subarray, **kw):
    M = array.num_elements
    _check_csi(H, (None, M), f"(..., N, M={M})")
    N = H.shape[-2]
    smooth = method.smoothing
    dgrid = default_delay_grid(N, subcarrier_spacing) if delay_grid is None else delay_grid
    axes = _make_axes([(azimuth_grid, M, subarray if smooth else M, array, None, M),
                       (dgrid, N, subband if smooth else N, None, float(subcarrier_spacing),
                        (N + 1) // 2 if smooth else N)],
                      num_sources if smooth else 1, H)
    return _run(method, H.transpose(-1, -2), axes, num_sources, ("azimuth", "delay"), **kw)


def _angle_angle_delay(method: JointSpectrum, H, rx_array, tx_array, num_sources, aoa_grid, aod_grid, delay_grid,
                       subcarrier_spacing, subband, rx_subarray, tx_subarray, **kw):
    Mr, Mt = rx_array.num_elements, tx_array.num_elements
    _check_csi(H, (None, Mr, Mt), f"(..., N, M_r={Mr}, M_t={Mt})")
    N = H.shape[-3]
    smooth = method.smoothing
    dgrid = default_delay_grid(N, subcarrier_spacing) if delay_grid is None else delay_grid
    axes = _make_axes([(aoa_grid, Mr, rx_subarray if smooth else Mr, rx_array, None, Mr),
                       (aod_grid, Mt, tx_subarray if smooth else Mt, tx_array, None, Mt),
                       (dgrid, N, subband if smooth else N, None, float(subcarrier_spacing),
                        (N + 1) // 2 if smooth else N)],
                      num_sources if smooth else 1, H)
    return _run(method, H.movedim(-3, -1), axes, num_sources, ("aoa", "aod", "delay"), **kw)


_DOC_COMMON = """
    Args:
        H: CSI ``(..., N, M)`` (angle–delay) or ``(..., N, M_r, M_t)`` (angle–angle–delay).
        num_sources: K paths, the number of peaks picked (and the MUSIC signal-subspace dimension).
        *_grid: :class:`SearchGrid` per parameter (radians, seconds); ``delay_grid=None`` →
            :func:`default_delay_grid` (quarter resolution over [0, 1/Δf)).
        subcarrier_spacing: Δf in Hz.
        subband: N', subcarriers per smoothing window (default ⌈N/2⌉); ``subarray`` /
            ``rx_subarray`` / ``tx_subarray``: elements per window (default: all, no spatial
            smoothing; fewer needs a ULA).  Paths that share a delay are only resolved with
            sub-array smoothing; the windows must number at least K.
        forward_backward: average R with J R^* J (ULA / centro-symmetric responses).
        loading: MVDR relative diagonal loading δ/(tr R / D); in float32 keep it above about
            10·eps·D so that R + δI stays numerically invertible (else ``valid = False``).
        iterations, sweeps: refinement steps (Gauss–Newton for MUSIC; parabolic steps per
            axis and passes over the axes for Bartlett/MVDR).
        grid_only: skip the off-grid refinement (the seeds' grid baselines).
        chunk_size: batch elements per grid-map chunk.

    Returns:
        :class:`EstimationResult` with estimates ``(..., K, P)`` sorted by the first parameter.
"""


def angle_delay_music(H: torch.Tensor, array, num_sources: int, azimuth_grid: SearchGrid = AZIMUTH_GRID_2D,
                      delay_grid: SearchGrid | None = None, subcarrier_spacing: float = 240e3, *,
                      subband: int | None = None, subarray: int | None = None, forward_backward: bool = False,
                      grid_only: bool = False, iterations: int = 8, chunk_size: int = 16,
                      return_spectrum: bool = False) -> EstimationResult:
    """Joint angle–delay MUSIC on smoothed single-snapshot CSI, Gauss–Newton refined.

    Example:
        >>> import math
        >>> from isackit.geometry import ula
        >>> from isackit.estimators import delay_dictionary
        >>> tau = torch.tensor([1.1e-6, 2.3e-6], dtype=torch.float64)
        >>> A = ula(6).steering(torch.tensor([-0.3, 0.2], dtype=torch.float64))
        >>> H = delay_dictionary(tau, 250e3, 16) @ A.T          # (N=16, M=6), two paths
        >>> res = angle_delay_music(H, ula(6), 2, subcarrier_spacing=250e3)
        >>> [round(v, 6) for v in res.estimates[:, 0].tolist()], res.parameters
        ([-0.3, 0.2], ('azimuth', 'delay'))
    """
    return _angle_delay(MUSIC_JOINT, H, array, num_sources, azimuth_grid, delay_grid, subcarrier_spacing, subband,
                        subarray, grid_only=grid_only, iterations=iterations, sweeps=0, loading=0.0,
                        forward_backward=forward_backward, chunk_size=chunk_size, return_spectrum=return_spectrum)


def angle_delay_mvdr(H: torch.Tensor, array, num_sources: int, azimuth_grid: SearchGrid = AZIMUTH_GRID_2D,
                     delay_grid: SearchGrid | None = None, subcarrier_spacing: float = 240e3, *,
                     loading: float = 1e-3, subband: int | None = None, subarray: int | None = None,
                     forward_backward: bool = False, grid_only: bool = False, iterations: int = 8,
                     sweeps: int = 2, chunk_size: int = 16, return_spectrum: bool = False) -> EstimationResult:
    """Joint angle–delay MVDR (relative loading ``loading``), coordinate-parabolic refined."""
    return _angle_delay(MVDR_JOINT, H, array, num_sources, azimuth_grid, delay_grid, subcarrier_spacing, subband,
                        subarray, grid_only=grid_only, iterations=iterations, sweeps=sweeps, loading=loading,
                        forward_backward=forward_backward, chunk_size=chunk_size, return_spectrum=return_spectrum)


def angle_delay_bartlett(H: torch.Tensor, array, num_sources: int, azimuth_grid: SearchGrid = AZIMUTH_GRID_2D,
                         delay_grid: SearchGrid | None = None, subcarrier_spacing: float = 240e3, *,
                         grid_only: bool = False, iterations: int = 8, sweeps: int = 2, chunk_size: int = 16,
                         return_spectrum: bool = False) -> EstimationResult:
    """Joint angle–delay Bartlett (the map of :func:`~.spectral.angle_delay_spectrum`) + refinement."""
    return _angle_delay(BARTLETT_JOINT, H, array, num_sources, azimuth_grid, delay_grid, subcarrier_spacing, None,
                        None, grid_only=grid_only, iterations=iterations, sweeps=sweeps, loading=0.0,
                        forward_backward=False, chunk_size=chunk_size, return_spectrum=return_spectrum)


def angle_angle_delay_music(H: torch.Tensor, rx_array, tx_array, num_sources: int, aoa_grid: SearchGrid = AOA_GRID,
                            aod_grid: SearchGrid = AOD_GRID, delay_grid: SearchGrid | None = None,
                            subcarrier_spacing: float = 240e3, *, subband: int | None = None,
                            rx_subarray: int | None = None, tx_subarray: int | None = None,
                            forward_backward: bool = False, grid_only: bool = False, iterations: int = 8,
                            chunk_size: int = 4, return_spectrum: bool = False) -> EstimationResult:
    """Joint AoA–AoD–delay MUSIC (seed 001 baseline) on smoothed bistatic CSI, GN refined."""
    return _angle_angle_delay(MUSIC_JOINT, H, rx_array, tx_array, num_sources, aoa_grid, aod_grid, delay_grid,
                              subcarrier_spacing, subband, rx_subarray, tx_subarray, grid_only=grid_only,
                              iterations=iterations, sweeps=0, loading=0.0, forward_backward=forward_backward,
                              chunk_size=chunk_size, return_spectrum=return_spectrum)


def angle_angle_delay_mvdr(H: torch.Tensor, rx_array, tx_array, num_sources: int, aoa_grid: SearchGrid = AOA_GRID,
                           aod_grid: SearchGrid = AOD_GRID, delay_grid: SearchGrid | None = None,
                           subcarrier_spacing: float = 240e3, *, loading: float = 1e-3, subband: int | None = None,
                           rx_subarray: int | None = None, tx_subarray: int | None = None,
                           forward_backward: bool = False, grid_only: bool = False, iterations: int = 8,
                           sweeps: int = 2, chunk_size: int = 4, return_spectrum: bool = False) -> EstimationResult:
    """Joint AoA–AoD–delay MVDR on smoothed bistatic CSI, coordinate-parabolic refined."""
    return _angle_angle_delay(MVDR_JOINT, H, rx_array, tx_array, num_sources, aoa_grid, aod_grid, delay_grid,
                              subcarrier_spacing, subband, rx_subarray, tx_subarray, grid_only=grid_only,
                              iterations=iterations, sweeps=sweeps, loading=loading,
                              forward_backward=forward_backward, chunk_size=chunk_size,
                              return_spectrum=return_spectrum)


def angle_angle_delay_bartlett(H: torch.Tensor, rx_array, tx_array, num_sources: int,
                               aoa_grid: SearchGrid = AOA_GRID, aod_grid: SearchGrid = AOD_GRID,
                               delay_grid: SearchGrid | None = None, subcarrier_spacing: float = 240e3, *,
                               grid_only: bool = False, iterations: int = 8, sweeps: int = 2, chunk_size: int = 4,
                               return_spectrum: bool = False) -> EstimationResult:
    """Joint AoA–AoD–delay Bartlett (seed 001 baseline; the map of
    :func:`~.spectral.angle_angle_delay_spectrum`) + coordinate-parabolic refinement."""
    return _angle_angle_delay(BARTLETT_JOINT, H, rx_array, tx_array, num_sources, aoa_grid, aod_grid, delay_grid,
                              subcarrier_spacing, None, None, None, grid_only=grid_only, iterations=iterations,
                              sweeps=sweeps, loading=0.0, forward_backward=False, chunk_size=chunk_size,
                              return_spectrum=return_spectrum)


for _f in (angle_delay_music, angle_delay_mvdr, angle_delay_bartlett, angle_angle_delay_music,
           angle_angle_delay_mvdr, angle_angle_delay_bartlett):
    if _f.__doc__ is not None:  # docstrings are stripped under python -OO
        _f.__doc__ += _DOC_COMMON


# ---------------------------------------------------------------------------------------
# registered estimators (thin wrappers)
# ---------------------------------------------------------------------------------------
class _AngleDelayEstimator(Estimator):
    """Common constructor of the angle–delay CSI estimators (keyword hyper-parameters stored
    unchanged); :meth:`estimate` runs the class's :class:`JointSpectrum` ``method`` (options a
    method does not use, e.g. ``loading`` for MUSIC, are ignored)."""

    input_kind = "csi"
    parameters = ("azimuth", "delay")
    method: JointSpectrum

    def __init__(self, array, num_sources: int = 1, azimuth_grid: SearchGrid = AZIMUTH_GRID_2D,
                 delay_grid: SearchGrid | None = None, subcarrier_spacing: float = 240e3, *,
                 subband: int | None = None, subarray: int | None = None, forward_backward: bool = False,
                 loading: float = 1e-3, grid_only: bool = False, iterations: int = 8, chunk_size: int = 16,
                 return_spectrum: bool = False):
        self.array = array
        self.num_sources = num_sources
        self.azimuth_grid = azimuth_grid
        self.delay_grid = delay_grid
        self.subcarrier_spacing = subcarrier_spacing
        self.subband = subband
        self.subarray = subarray
        self.forward_backward = forward_backward
        self.loading = loading
        self.grid_only = grid_only
        self.iterations = iterations
        self.chunk_size = chunk_size
        self.return_spectrum = return_spectrum

    def estimate(self, H: torch.Tensor) -> EstimationResult:
        return _angle_delay(type(self).method, H, self.array, self.num_sources, self.azimuth_grid, self.delay_grid,
                            self.subcarrier_spacing, self.subband, self.subarray, grid_only=self.grid_only,
                            iterations=self.iterations, sweeps=2, loading=self.loading,
                            forward_backward=self.forward_backward, chunk_size=self.chunk_size,
                            return_spectrum=self.return_spectrum)

    @classmethod
    def example(cls, dtype=torch.complex128, device="cpu", generator=None):
        from ..geometry import ula
        from ..impairments import ArrayModel
        from ..signals import OFDMConfig, mimo_ofdm_channel
        arr = ula(6)
        cfg = OFDMConfig(16, 250e3, 3.5e9)
        # two paths, off the grids; unit gains with random phases; noise-free
        truth = torch.tensor([[-0.4123, 1.234e-6], [0.2871, 2.71e-6]], dtype=torch.float64)
        gains = torch.polar(torch.ones(2, dtype=torch.float64),
                            2 * math.pi * torch.rand(2, generator=generator, dtype=torch.float64))
        H = mimo_ofdm_channel(ArrayModel(arr), None, truth[:, 0], None, truth[:, 1], gains, cfg)[..., 0]
        est = cls(arr, 2, azimuth_grid=SearchGrid.degrees(-60.0, 60.0, 1.0),
                  delay_grid=default_delay_grid(16, 250e3), subcarrier_spacing=250e3)
        return est, H.to(dtype=dtype, device=device), truth


@register("music_angle_delay")
class MUSICAngleDelay(_AngleDelayEstimator):
    """Joint angle–delay MUSIC on single-snapshot CSI ``H (..., N, M)`` (:func:`angle_delay_music`):
    spatial–frequency smoothing (sub-bands of ``subband`` subcarriers, sub-arrays of
    ``subarray`` elements), K largest maxima of the MUSIC map, Gauss–Newton refinement unless
    ``grid_only``.  ``loading`` is unused (kept for a uniform signature).  Estimates
    ``(..., K, 2)`` ("azimuth", "delay" in seconds)."""

    method = MUSIC_JOINT


@register("mvdr_angle_delay")
class MVDRAngleDelay(_AngleDelayEstimator):
    """Joint angle–delay MVDR on smoothed single-snapshot CSI (:func:`angle_delay_mvdr`),
    relative diagonal loading ``loading``, coordinate-parabolic refinement unless ``grid_only``."""

    method = MVDR_JOINT


class _AngleAngleDelayEstimator(Estimator):
    """Common constructor of the AoA–AoD–delay CSI estimators (bistatic CSI ``(..., N, M_r, M_t)``)."""

    input_kind = "csi"
    input_ndim = 3
    parameters = ("aoa", "aod", "delay")
    method: JointSpectrum

    def __init__(self, rx_array, tx_array, num_sources: int = 1, aoa_grid: SearchGrid = AOA_GRID,
                 aod_grid: SearchGrid = AOD_GRID, delay_grid: SearchGrid | None = None,
                 subcarrier_spacing: float = 240e3, *, subband: int | None = None, rx_subarray: int | None = None,
                 tx_subarray: int | None = None, forward_backward: bool = False, loading: float = 1e-3,
                 grid_only: bool = False, iterations: int = 8, chunk_size: int = 4, return_spectrum: bool = False):
        self.rx_array = rx_array
        self.tx_array = tx_array
        self.num_sources = num_sources
        self.aoa_grid = aoa_grid
        self.aod_grid = aod_grid
        self.delay_grid = delay_grid
        self.subcarrier_spacing = subcarrier_spacing
        self.subband = subband
        self.rx_subarray = rx_subarray
        self.tx_subarray = tx_subarray
        self.forward_backward = forward_backward
        self.loading = loading
        self.grid_only = grid_only
        self.iterations = iterations
        self.chunk_size = chunk_size
        self.return_spectrum = return_spectrum

    def estimate(self, H: torch.Tensor) -> EstimationResult:
        return _angle_angle_delay(type(self).method, H, self.rx_array, self.tx_array, self.num_sources,
                                  self.aoa_grid, self.aod_grid, self.delay_grid, self.subcarrier_spacing,
                                  self.subband, self.rx_subarray, self.tx_subarray, grid_only=self.grid_only,
                                  iterations=self.iterations, sweeps=2, loading=self.loading,
                                  forward_backward=self.forward_backward, chunk_size=self.chunk_size,
                                  return_spectrum=self.return_spectrum)

    @classmethod
    def example(cls, dtype=torch.complex128, device="cpu", generator=None, num_sources: int = 2):
        from ..geometry import ula
        from ..impairments import ArrayModel
        from ..signals import OFDMConfig, mimo_ofdm_channel
        rx, tx = ula(4), ula(3)
        cfg = OFDMConfig(8, 250e3, 3.5e9)
        truth = torch.tensor([[-0.3123, 0.4417, 1.234e-6], [0.3871, -0.2035, 2.71e-6]],
                             dtype=torch.float64)[:num_sources]
        gains = torch.polar(torch.ones(num_sources, dtype=torch.float64),
                            2 * math.pi * torch.rand(num_sources, generator=generator, dtype=torch.float64))
        H = mimo_ofdm_channel(ArrayModel(rx), ArrayModel(tx), truth[:, 0], truth[:, 1], truth[:, 2], gains, cfg)
        est = cls(rx, tx, num_sources, aoa_grid=SearchGrid.degrees(-48.0, 48.0, 4.0, name="aoa"),
                  aod_grid=SearchGrid.degrees(-48.0, 48.0, 4.0, name="aod"),
                  delay_grid=default_delay_grid(8, 250e3), subcarrier_spacing=250e3, subband=3)
        return est, H.to(dtype=dtype, device=device), truth


@register("music_angle_angle_delay")
class MUSICAngleAngleDelay(_AngleAngleDelayEstimator):
    """Joint AoA–AoD–delay MUSIC on bistatic CSI (:func:`angle_angle_delay_music`, seed 001
    baseline), smoothed over sub-bands (and optionally rx/tx sub-arrays), GN refined unless
    ``grid_only``.  Estimates ``(..., K, 3)`` ("aoa", "aod", "delay")."""

    method = MUSIC_JOINT


@register("mvdr_angle_angle_delay")
class MVDRAngleAngleDelay(_AngleAngleDelayEstimator):
    """Joint AoA–AoD–delay MVDR (:func:`angle_angle_delay_mvdr`), coordinate-parabolic refined."""

    method = MVDR_JOINT


@register("bartlett_angle_angle_delay")
class BartlettAngleAngleDelay(_AngleAngleDelayEstimator):
    """Joint AoA–AoD–delay Bartlett / DBF on bistatic CSI (:func:`angle_angle_delay_bartlett`,
    seed 001 baseline): K largest maxima of the 3-D map, coordinate-parabolic refinement
    unless ``grid_only``.  Smoothing options and ``loading`` are unused (no covariance)."""

    method = BARTLETT_JOINT

    @classmethod
    def example(cls, dtype=torch.complex128, device="cpu", generator=None, num_sources: int = 1):
        # one path: the refined Bartlett peak is exact (several paths bias it)
        return super().example(dtype, device, generator, num_sources)
