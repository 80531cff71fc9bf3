r"""Batched, differentiable conjugate gradient (CG) and sparse CG (SCG) on the coarray system.

Seed 002 (MoD-DNN), Sec. 4.2 and Algorithm 1.  The spectrum-reconstruction subproblem is
the regularised normal equation

    (P + λI) η = b,   b = η̂ + λ z                                                    (21)

(P the coarray projection matrix, η̂ the observed coarray spectrum, z a calibrated spectrum
— zero for the standalone estimator).  Q = P + λI is symmetric positive definite for λ > 0.

:func:`conjugate_gradient` — textbook CG (Hestenes–Stiefel) on Q x = b:
r = b − Qx, α = rᵀr / cᵀQc, x ← x + αc, r ← r − αQc, β = r₊ᵀr₊ / rᵀr, c ← r₊ + βc.
In exact arithmetic it terminates after as many iterations as Q has distinct eigenvalues;
with rank P = 2M − 1 (a ULA's coarray) that is 2M iterations from any b.

:func:`sparse_conjugate_gradient` — the corrected reading of Algorithm 1 (each correction is
a flag, so the printed algorithm stays reproducible, :data:`PRINTED_ALGORITHM_1`):

    x = x0 (0);  g = Qx − b;  c = −g
    for n = 0..N−1:
        α  = −gᵀc / cᵀQc                       F1: Q (printed: cᵀPc, eq. 22a)
        x̃  = x + αc
        x₊ = x̃ − t μ ∇s(x)                     zero attractor at x(n), eq. (27)
             attractor "rza":   ∇s_l = sgn(x_l) / (1 + ε|x_l|)   (element-wise reweighted ZA)
                       "paper": ∇s   = sgn(x) / (1 + ε‖x‖₁)       (eq. 29 as printed)
                       "none":  0
             t = α (step_scaled, F5) or 1 (printed)
        x₊ = max(x₊, 0) if nonnegative
        g₊ = Qx₊ − b                            F2: at x(n+1) (printed: Qx(n) − b, line 4)
        β  = (g₊ − g)ᵀg₊ / gᵀg, max(β, 0)       F3: PR+ restart (printed: plain Polak–Ribière)
        c  = −g₊ + βc;  x = x₊;  g = g₊
        stop where ‖x₊ − x‖ ≤ tol·‖x‖           F4: a norm (printed: a vector compared to γ)

With μ = 0 (and no clamp) the iteration is exact CG: for a quadratic with exact line search
Polak–Ribière equals Fletcher–Reeves (g₊ᵀg = 0) and α = gᵀg / cᵀQc.  The printed
Algorithm 1 diverges even with μ = 0 (F1 alone or F2 alone suffices); see the tests.

Batching and differentiability: ``x``/``b`` are ``(..., L)``; P is a dense ``(..., L, L)``
tensor (broadcast) or a :class:`~isackit.estimators.coarray.CoarrayProjection` (P x in 2DL
operations).  Every step is closed form, so gradients flow through the unrolled iterations
by autograd (w.r.t. b, z, x0 and λ) — the learned MoDL-SSR network
(:mod:`isackit.learning.mod_dnn`) calls these same functions.  Divisions are guarded so that
an exactly converged element (g = 0) keeps α = β = 0 with finite gradients.  With ``tol`` the
batch elements that meet the stopping rule are frozen (``torch.where``) and the loop ends
when all have; with ``tol=None`` exactly ``iterations`` steps run (training).

References: Hestenes & Stiefel (1952); Nocedal & Wright, *Numerical Optimization* (2006),
ch. 5; Gu et al., IEEE SPL 2009 (zero-attracting LMS); seed 002, Algorithm 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .._checks import check_choice, check_nonnegative, check_positive_int
from .._dtypes import real_dtype_of
from .base import EstimationResult, Estimator, register
from .coarray import CoarrayProjection, _check_projection_size, check_spectrum, coarray_projection, coarray_spectrum
from .common import flatten_covariance, make_result
from .grids import SearchGrid, _model_state_key
from .peaks import find_peaks, peaks_to_coordinates

__all__ = [
    "CGResult",
    "PRINTED_ALGORITHM_1",
    "SCG",
    "conjugate_gradient",
    "sparse_conjugate_gradient",
    "scg_spectrum",
]

#: Keyword arguments of :func:`sparse_conjugate_gradient` that reproduce Algorithm 1 of seed
#: 002 as printed (P in α, the gradient at x(n), plain Polak–Ribière, unscaled eq.-29
#: attractor with μ = 1).
PRINTED_ALGORITHM_1 = dict(denominator="P", gradient_at="previous", beta="pr", step_scaled=False,
                           attractor="paper", mu=1.0)


@dataclass(frozen=True)
class CGResult:
    """Output of :func:`conjugate_gradient` / :func:`sparse_conjugate_gradient`.

    Attributes:
        solution: ``(..., L)``.
        iterations: ``(...)`` int64, iterations each batch element ran before it stopped.
        converged: ``(...)`` bool, whether the stopping rule was met (False with ``tol=None``).
        residuals: ``(..., n + 1)`` relative residual ‖Qx − b‖ / ‖b‖ after each iteration
            (entry 0: the initial point); detached.
    """

    solution: torch.Tensor
    iterations: torch.Tensor
    converged: torch.Tensor
    residuals: torch.Tensor


def _operator(P, lam: float | torch.Tensor):
    """(Q x, P x) closures for Q = P + λI."""
    if isinstance(P, CoarrayProjection):
        pmv = P.matvec
    elif isinstance(P, torch.Tensor):
        if P.ndim < 2 or P.shape[-1] != P.shape[-2] or P.is_complex():
            raise ValueError(f"P must be a real (..., L, L) matrix or a CoarrayProjection, got "
                             f"{P.dtype} {tuple(P.shape)}")
        if P.ndim == 2:
            def pmv(x):
                return x @ P.T
        else:
            def pmv(x):
                return (P @ x.unsqueeze(-1)).squeeze(-1)
    elif callable(P):
        pmv = P
    else:
        raise TypeError(f"P must be a tensor, a CoarrayProjection or a callable, got {type(P).__name__}")

    def qmv(x):
        return pmv(x) + lam * x

    return qmv, pmv


def _dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a * b).sum(-1)


def _safe_div(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
    """num / den, and 0 (with zero gradient) where den == 0 (the double-where idiom)."""
    zero = den == 0
    return torch.where(zero, torch.zeros_like(num), num / torch.where(zero, torch.ones_like(den), den))


def _check_lam(lam) -> None:
    if isinstance(lam, torch.Tensor):
        if not bool((lam.detach() >= 0).all()):
            raise ValueError("lam must be >= 0")
    else:
        check_nonnegative(lam, "lam")


def _rel(r: torch.Tensor, bnorm: torch.Tensor) -> torch.Tensor:
    return (torch.linalg.vector_norm(r.detach(), dim=-1) / bnorm).unsqueeze(-1)


def conjugate_gradient(Q, b: torch.Tensor, *, x0: torch.Tensor | None = None, iterations: int | None = None,
                       tol: float | None = None) -> CGResult:
    r"""Solve Q x = b for symmetric positive (semi)definite Q by conjugate gradients, batched.

    Args:
        Q: ``(..., L, L)`` real (broadcasts with b), a
            :class:`~isackit.estimators.coarray.CoarrayProjection`, or a callable x ↦ Qx.
        b: ``(..., L)`` right-hand sides.
        x0: ``(..., L)`` starting point (default 0).
        iterations: maximum number of iterations (default L).
        tol: stop an element once ‖b − Qx‖ ≤ tol·‖b‖ (None: run all iterations).

    Returns:
        :class:`CGResult`; differentiable w.r.t. b, x0 (and a dense Q).

    Example:
        >>> Q = torch.tensor([[4.0, 1.0], [1.0, 3.0]], dtype=torch.float64)
        >>> b = torch.tensor([1.0, 2.0], dtype=torch.float64)
        >>> res = conjugate_gradient(Q, b, iterations=2)
        >>> torch.allclose(Q @ res.solution, b)
        True
    """
    check_spectrum(b, "b")
    qmv, _ = _operator(Q, 0.0)
    L = b.shape[-1]
    n_it = L if iterations is None else check_positive_int(iterations, "iterations")
    x = torch.zeros_like(b) if x0 is None else x0
    r = b - qmv(x) if x0 is not None else b
    c = r
    rr = _dot(r, r)
    bnorm = torch.linalg.vector_norm(b.detach(), dim=-1).clamp_min(torch.finfo(b.dtype).tiny)
    hist = [_rel(r, bnorm)]
    active = torch.ones(b.shape[:-1], dtype=torch.bool, device=b.device)
    its = torch.zeros(b.shape[:-1], dtype=torch.int64, device=b.device)
    for _ in range(n_it):
        Qc = qmv(c)
        alpha = _safe_div(rr, _dot(c, Qc))
        x_new = x + alpha.unsqueeze(-1) * c
        r_new = r - alpha.unsqueeze(-1) * Qc
        rr_new = _dot(r_new, r_new)
        beta = _safe_div(rr_new, rr)
        c_new = r_new + beta.unsqueeze(-1) * c
        if tol is not None:
            a = active.unsqueeze(-1)
            x, r, c = torch.where(a, x_new, x), torch.where(a, r_new, r), torch.where(a, c_new, c)
            rr = torch.where(active, rr_new, rr)
            its = its + active.long()
            hist.append(_rel(r, bnorm))
            active = active & (hist[-1][..., 0] > tol)
            if not bool(active.any()):
                break
        else:
            x, r, c, rr = x_new, r_new, c_new, rr_new
            its = its + 1
            hist.append(_rel(r, bnorm))
    converged = ~active if tol is not None else torch.zeros_like(active)
    return CGResult(x, its, converged, torch.cat(hist, -1))


def _attractor_grad(x: torch.Tensor, kind: str, eps: float) -> torch.Tensor:
    s = torch.sign(x)
    if kind == "rza":
        return s / (1.0 + eps * x.abs())
    # eq. (29) as printed: one global weight from the l1 norm
    return s / (1.0 + eps * x.abs().sum(-1, keepdim=True))


def sparse_conjugate_gradient(P, data: torch.Tensor, z: torch.Tensor | None = None, *, lam: float | torch.Tensor = 0.1,
                              mu: float = 0.0, eps: float = 0.5, iterations: int = 10, tol: float | None = None,
                              attractor: str = "rza", step_scaled: bool = True, nonnegative: bool = False,
                              denominator: str = "Q", gradient_at: str = "new", beta: str = "pr+",
                              x0: torch.Tensor | None = None) -> CGResult:
    r"""Sparse conjugate gradient (module docstring) for (P + λI) x = data + λ z.

    Args:
        P: ``(..., L, L)`` real, a :class:`~isackit.estimators.coarray.CoarrayProjection`,
            or a callable x ↦ Px.
        data: ``(..., L)`` the data term (η̂; η^i for the printed ``data_term="previous"``).
        z: ``(..., L)`` calibrated spectrum (None: 0).
        lam: λ ≥ 0 (a float, or a tensor broadcastable to ``(...)`` — differentiable).
        mu: sparsity weight μ ≥ 0 (0: plain CG).
        eps: ε of the reweighted zero attractor.
        iterations: N (maximum) iterations.
        tol: stopping rule ‖x₊ − x‖ ≤ tol·‖x‖ per element (None: exactly N iterations).
        attractor: ``"rza"`` (element-wise, default), ``"paper"`` (eq. 29) or ``"none"``.
        step_scaled: scale the attractor by the CG step α (F5).
        nonnegative: clamp x ≥ 0 after each step (a power spectrum).
        denominator: ``"Q"`` (F1) or ``"P"`` (printed eq. 22a).
        gradient_at: ``"new"`` (F2) or ``"previous"`` (printed line 4).
        beta: ``"pr+"`` (F3) or ``"pr"`` (printed eq. 22c).
        x0: starting point (default 0, as Algorithm 1).

    Returns:
        :class:`CGResult` (``residuals`` relative to ‖data + λz‖).  Differentiable w.r.t.
        data, z, x0 and a tensor λ.

    Example:
        >>> from isackit.estimators.coarray import coarray_projection
        >>> from isackit.geometry import ula
        >>> A = ula(4).steering(torch.linspace(-1.0, 1.0, 101, dtype=torch.float64))
        >>> P = coarray_projection(A)
        >>> eta_hat = P.matvec(torch.nn.functional.one_hot(torch.tensor(40), 101).double())
        >>> res = sparse_conjugate_gradient(P, eta_hat, lam=0.1, iterations=8)
        >>> float(res.residuals[-1]) < 1e-10    # mu = 0: exact CG, 2M iterations
        True
    """
    check_spectrum(data, "data")
    if isinstance(P, CoarrayProjection | torch.Tensor):
        _check_projection_size(P, data.shape[-1])
    check_choice(attractor, ("rza", "paper", "none"), "attractor")
    check_choice(denominator, ("Q", "P"), "denominator")
    check_choice(gradient_at, ("new", "previous"), "gradient_at")
    check_choice(beta, ("pr+", "pr"), "beta")
    check_nonnegative(mu, "mu")
    check_nonnegative(eps, "eps")
    _check_lam(lam)
    n_it = check_positive_int(iterations, "iterations")
    lam_v = lam.unsqueeze(-1) if isinstance(lam, torch.Tensor) and lam.ndim > 0 else lam
    qmv, pmv = _operator(P, lam_v)
    b = data if z is None else data + lam_v * z
    x = torch.zeros_like(b) if x0 is None else x0.expand_as(b)
    g = qmv(x) - b if x0 is not None else -b
    c = -g
    gg = _dot(g, g)
    sparse = mu > 0 and attractor != "none"
    bnorm = torch.linalg.vector_norm(b.detach(), dim=-1).clamp_min(torch.finfo(b.dtype).tiny)
    hist = [_rel(g, bnorm)]
    batch = b.shape[:-1]
    active = torch.ones(batch, dtype=torch.bool, device=b.device)
    its = torch.zeros(batch, dtype=torch.int64, device=b.device)
    for _ in range(n_it):
        Mc = qmv(c) if denominator == "Q" else pmv(c)
        alpha = _safe_div(-_dot(g, c), _dot(c, Mc))
        a = alpha.unsqueeze(-1)
        x_new = x + a * c
        if sparse:
            t = a if step_scaled else 1.0
            x_new = x_new - (mu * t) * _attractor_grad(x, attractor, eps)
        if nonnegative:
            x_new = torch.relu(x_new)
        if gradient_at == "previous":
            g_new = qmv(x) - b
        elif sparse or nonnegative or denominator == "P":
            g_new = qmv(x_new) - b
        else:  # plain CG step: the recurrence saves a product
            g_new = g + a * Mc
        bet = _safe_div(_dot(g_new - g, g_new), gg)
        if beta == "pr+":
            bet = bet.clamp_min(0.0)
        c_new = -g_new + bet.unsqueeze(-1) * c
        gg_new = _dot(g_new, g_new)
        if tol is not None:
            step = torch.linalg.vector_norm((x_new - x).detach(), dim=-1)
            done = step <= tol * torch.linalg.vector_norm(x.detach(), dim=-1)
            act = active.unsqueeze(-1)
            x, g, c = torch.where(act, x_new, x), torch.where(act, g_new, g), torch.where(act, c_new, c)
            gg = torch.where(active, gg_new, gg)
            its = its + active.long()
            active = active & ~done
            hist.append(_rel(g, bnorm))
            if not bool(active.any()):
                break
        else:
            x, g, c, gg = x_new, g_new, c_new, gg_new
            its = its + 1
            hist.append(_rel(g, bnorm))
    converged = ~active if tol is not None else torch.zeros_like(active)
    return CGResult(x, its, converged, torch.cat(hist, -1))


def scg_spectrum(R: torch.Tensor, A: torch.Tensor, P: CoarrayProjection | None = None, *, lam: float = 0.1,
                 mu: float = 0.0, **kwargs) -> CGResult:
    r"""Standalone SCG spatial spectrum of covariances: coarray spectrum η̂ of R on the dictionary
    A (unit-norm convention), then :func:`sparse_conjugate_gradient` on (P + λI)η = η̂.

    Args:
        R: ``(..., M, M)``; A: ``(M, L)`` assumed dictionary; P: its projection (computed
            when None); remaining keywords: :func:`sparse_conjugate_gradient`.
    """
    eta_hat = coarray_spectrum(R, A)
    P = coarray_projection(A) if P is None else P
    return sparse_conjugate_gradient(P.to(eta_hat.dtype, eta_hat.device), eta_hat, lam=lam, mu=mu, **kwargs)


#: Default grid of the SCG estimator: seed 002's field of view, [-60°, 60°] in 0.1° steps.
SCG_GRID = SearchGrid.degrees(-60.0, 60.0, 0.1)


@register("scg")
class SCG(Estimator):
    r"""Sparse-conjugate-gradient spectrum reconstruction on the coarray (seed 002, Fig. 1c).

    The coarray DBF spectrum of R on ``grid`` (unit-norm convention) is sharpened by solving
    (P + λI)η = η̂ with the reweighted zero attractor (:func:`sparse_conjugate_gradient`,
    non-negative, step-scaled); the K largest local maxima of η are the DOAs (on the grid).

    Args:
        array: ``ArrayGeometry`` / ``ArrayModel`` the receiver assumes.
        num_sources: K.  grid: azimuth :class:`SearchGrid` (default [-60°, 60°], 0.1°).
        lam, mu, eps: λ, μ, ε of the solver.  iterations: maximum iterations.
        tol: relative stopping tolerance.  return_spectrum: attach η to the result.
    """

    input_kind = "covariance"
    parameters = ("azimuth",)

    def __init__(self, array, num_sources: int = 1, grid: SearchGrid = SCG_GRID, lam: float = 0.1,
                 mu: float = 0.3, eps: float = 0.5, iterations: int = 500, tol: float | None = 1e-6,
                 return_spectrum: bool = False):
        self.array = array
        self.num_sources = num_sources
        self.grid = grid
        self.lam = lam
        self.mu = mu
        self.eps = eps
        self.iterations = iterations
        self.tol = tol
        self.return_spectrum = return_spectrum

    def _dictionary(self, like: torch.Tensor):
        key_like = torch.empty(0, dtype=real_dtype_of(like), device=like.device)

        def build():
            A = self.grid.steering(self.array, like)
            return A, coarray_projection(A)

        mk = _model_state_key(self.array)
        key = None if mk is None else ("scg", mk, key_like.dtype, str(like.device))
        return self.grid.memo(key, build, self.array)

    def estimate(self, R: torch.Tensor) -> EstimationResult:
        with torch.no_grad():
            batch, Rf, valid = flatten_covariance(R, self.array.num_elements)
            A, P = self._dictionary(Rf)
            # unit source power: the solver's λ and μ then mean the same for every input scale
            power = torch.diagonal(Rf, dim1=-2, dim2=-1).real.mean(-1).clamp_min(torch.finfo(A.real.dtype).tiny)
            res = scg_spectrum(Rf / power[:, None, None], A, P, lam=self.lam, mu=self.mu, eps=self.eps,
                               iterations=self.iterations, tol=self.tol, nonnegative=True)
            eta = res.solution
            _, idx, found = find_peaks(eta, self.num_sources)
            grid = self.grid.points_like(eta)
            ang = peaks_to_coordinates(idx, found, [grid])
            return make_result(ang, found, valid, batch, ("azimuth",),
                               spectrum=eta if self.return_spectrum else None,
                               grids=(grid,) if self.return_spectrum else None,
                               extras={"iterations": res.iterations.reshape(batch)})

    @classmethod
    def example(cls, dtype=torch.complex128, device="cpu", generator=None):
        from ..geometry import ula
        arr = ula(6)
        grid = SearchGrid.degrees(-60.0, 60.0, 0.5)
        truth = torch.tensor([[math.radians(-20.0)], [math.radians(25.0)]], dtype=torch.float64)
        A = arr.steering(truth[:, 0])
        p = 1.0 + torch.rand(2, generator=generator, dtype=torch.float64)
        R = (A * p.to(A.dtype)) @ A.mH + 1e-3 * torch.eye(6, dtype=A.dtype)
        return cls(arr, 2, grid, iterations=300), R.to(dtype=dtype, device=device), truth
