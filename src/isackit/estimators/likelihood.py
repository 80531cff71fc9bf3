r"""Deterministic maximum likelihood (DML) direction finding for any array model.

With deterministic (unknown, non-random) source signals and white noise, the concentrated
negative log-likelihood of N snapshots is, up to constants, N·log tr(P_A^⊥ R̂), so

    θ̂ = arg max_θ  tr(P_A(θ) R̂) = arg min_θ  tr(P_A^⊥(θ) R̂),     P_A = A (A^H A)^{-1} A^H.

For one source this is the Bartlett maximiser a^H R̂ a / a^H a.  For K sources:

1. grid initialisation by alternating projection (AP; Ziskind & Wax, IEEE TASSP 1988):
   source k maximises the gain tr(P_[A_-k, a] R̂) - tr(P_{A_-k} R̂) = a^H P^⊥ R̂ P^⊥ a / a^H P^⊥ a
   (P^⊥ for the other sources) over the grid, cyclically until no source moves; each
   update is two fast quadratic forms per batch element on the grid
   (:class:`~isackit.estimators.grids.QuadraticFormDictionary`).  tr(P_A R̂) has several
   local maxima when sources are closer than a beamwidth, and AP from one start can stop in
   the wrong one, so by default two starts are refined — AP from the sequential start
   (source k placed given sources 1..k-1) and AP from the MUSIC grid peaks — and the
   larger likelihood wins;
2. refinement by batched Levenberg–Marquardt steps on V(θ) = tr(P_A^⊥ R̂) with the exact
   gradient ∂V/∂θ_k = -2 Re[(A^† R̂ P_A^⊥ D)_kk] and the (asymptotic) Gauss–Newton Hessian
   H = 2 Re[(D^H P_A^⊥ D) ⊙ (A^† R̂ A^{†H})^T] (Viberg, Ottersten & Kailath, IEEE TSP 1991),
   D = [∂a(θ_1)/∂θ_1, …]; a step is accepted only if V decreases, and the damping adapts the
   step length (a refinement limited to small fixed steps cannot undo an AP start that is
   a fraction of a beamwidth off).  The steering matrix and D come from
   ``model.steering_and_derivatives``, so the estimator works with ANY
   :class:`~isackit.impairments.ArrayModel`, in particular as a mismatched estimator (data
   from an impaired array, estimator assuming the ideal one).

Noise-free covariances are recovered to machine precision.  Differentiable pieces:
:func:`dml_cost` (autograd through A and R).  The DOA pipeline itself returns plain
estimates (no gradient).
"""

from __future__ import annotations

import torch

from .._dtypes import common_complex_dtype
from .base import EstimationResult, Estimator, register
from .common import batch_chunks, example_covariance, flatten_covariance, make_result
from .grids import SearchGrid, quadratic_form_dictionary, steering_with_derivatives
from .spectral import music_grid_peaks

__all__ = ["DML", "DML_GRID", "alternating_projection", "dml_cost", "dml_doa", "dml_gradient_hessian", "dml_refine", "projector"]


def projector(A: torch.Tensor) -> torch.Tensor:
    r"""Orthogonal projector onto range(A): P_A = A (A^H A)^{-1} A^H, ``(..., M, M)``; differentiable."""
    G = A.mH @ A
    return A @ torch.linalg.solve(G, A.mH)


def dml_cost(R: torch.Tensor, A: torch.Tensor) -> torch.Tensor:
    r"""DML criterion tr(P_A R) (to maximise), ``(...)`` real; differentiable in R and A.

    Args:
        R: ``(..., M, M)`` sample covariance.  A: ``(..., M, K)`` steering matrix.
    """
    common_complex_dtype(R, A, names=("R", "A"))
    G = A.mH @ A
    RA = R @ A
    return torch.diagonal(torch.linalg.solve(G, A.mH @ RA), dim1=-2, dim2=-1).real.sum(-1)


_TINY_STEP = 1e-7


def _residual_power(R, A):
    """tr(P_A^⊥ R), (...)."""
    return torch.diagonal(R, dim1=-2, dim2=-1).real.sum(-1) - dml_cost(R, A)


def dml_gradient_hessian(R: torch.Tensor, A: torch.Tensor, D: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Gradient and Gauss–Newton Hessian of V(θ) = tr(P_A^⊥ R) w.r.t. the K angles.

    ∂V/∂θ_k = -2 Re[(A^† R P_A^⊥ D)_kk],  H = 2 Re[(D^H P_A^⊥ D) ⊙ (A^† R A^{†H})^T]
    (Viberg, Ottersten & Kailath 1991; H is the exact Hessian's limit for R → A P A^H + σ²I).

    Args:
        R: ``(..., M, M)``; A: ``(..., M, K)``; D: ``(..., M, K)`` with column k = ∂a_k/∂θ_k.

    Returns:
        ``(grad (..., K), H (..., K, K))`` real.
    """
    common_complex_dtype(R, A, D, names=("R", "A", "D"))
    Ad = torch.linalg.solve(A.mH @ A, A.mH)  # A^†, (..., K, M)
    Pp = torch.eye(R.shape[-1], dtype=R.dtype, device=R.device) - A @ Ad
    grad = -2 * torch.diagonal(Ad @ R @ Pp @ D, dim1=-2, dim2=-1).real
    H = 2 * ((D.mH @ Pp @ D) * (Ad @ R @ Ad.mH).transpose(-1, -2)).real
    return grad, H


def dml_refine(R: torch.Tensor, model, angles: torch.Tensor, iterations: int = 30,
               max_step: float = 0.1, bounds: tuple[float, float] | None = None) -> torch.Tensor:
    r"""Levenberg–Marquardt refinement of K azimuths on V(θ) = tr(P_A^⊥ R) (module docstring).

    Each iteration solves (H + μ·diag H) s = -∇V with the Gauss–Newton Hessian H of
    :func:`dml_gradient_hessian`, clamps s to ``max_step`` per angle (keeping its direction),
    and accepts θ + s where V decreases: then μ ← μ/3, else μ ← 4μ and θ stays.  Steps below
    1e-7 rad change V by less than its rounding error and are accepted without the test (the
    quadratic region).  Per batch element it stops when a step is below 1e-10 rad.  The
    damping adapts the step length, so a start several grid steps (or a beamwidth) from the
    optimum converges in a few iterations; a start in the wrong basin does not (see
    :func:`dml_doa`'s multi-start).

    Args:
        R: ``(B, M, M)``; model: ``ArrayGeometry``/``ArrayModel``; angles: ``(B, K)`` radians.
        iterations: largest number of LM iterations.
        max_step: largest step per angle and iteration (radians).
        bounds: optional ``(low, high)``: candidates are clamped into it (the search range).

    Returns:
        ``(B, K)`` refined azimuths (no gradient).
    """
    with torch.no_grad():
        th = angles.clone()
        V = _residual_power(R, model.steering(th).to(R.dtype))
        mu = torch.full_like(V, 1e-3)
        active = torch.ones_like(V, dtype=torch.bool)
        for _ in range(int(iterations)):
            A, (D, _) = steering_with_derivatives(model, th)
            grad, H = dml_gradient_hessian(R, A.to(R.dtype), D.to(R.dtype))
            diag = H.diagonal(dim1=-2, dim2=-1).abs()
            floor = diag.amax(-1, keepdim=True).clamp_min(torch.finfo(H.dtype).tiny) * 1e-12
            damped = H + torch.diag_embed(mu[..., None] * (diag + floor) + floor)
            step = -torch.linalg.solve_ex(damped, grad.unsqueeze(-1))[0].squeeze(-1)
            step = torch.nan_to_num(step)
            big = step.abs().amax(-1, keepdim=True)
            step = step * torch.where(big > max_step, max_step / big.clamp_min(1e-300), torch.ones_like(big))
            step = torch.where(active[..., None], step, torch.zeros_like(step))
            cand = th + step
            if bounds is not None:
                cand = cand.clamp(float(bounds[0]), float(bounds[1]))
            vc = _residual_power(R, model.steering(cand).to(R.dtype))
            tiny = step.abs().amax(-1) < _TINY_STEP
            take = active & ((vc < V) | tiny)
            th = torch.where(take[..., None], cand, th)
            V = torch.where(take, vc, V)
            mu = torch.where(take, (mu / 3).clamp_min(1e-12), (mu * 4).clamp_max(1e12))
            active = active & ~(step.abs().amax(-1) <= 1e-10)
            if not bool(active.any()):  # converged everywhere
                break
        return th


def alternating_projection(R: torch.Tensor, model, num_sources: int, grid: SearchGrid, sweeps: int = 10,
                           chunk_size: int = 256, init: torch.Tensor | None = None) -> torch.Tensor:
    r"""Grid DML by alternating projection (Ziskind & Wax 1988), batched.

    Source k is moved to the grid point that maximises tr(P_[A_-k, a] R) given the others
    (the gain a^H P^⊥ R P^⊥ a / a^H P^⊥ a), cyclically; passes stop once no source moves (at
    most ``sweeps``).  Without ``init`` the sources are first placed one after the other (each
    given the previous ones).

    Args:
        R: ``(B, M, M)`` (Hermitian); grid: azimuth grid.
        sweeps: largest number of cyclic passes after the start.
        init: optional ``(B, K)`` starting azimuths (e.g. MUSIC peaks).

    Returns:
        ``(B, K)`` grid azimuths.
    """
    K = int(num_sources)
    with torch.no_grad():
        qf = quadratic_form_dictionary(grid, model, R)
        pts = grid.points_like(R)
        M = R.shape[-1]
        eye = torch.eye(M, dtype=R.dtype, device=R.device)
        out = []
        for sl in batch_chunks(R.shape[0], chunk_size):
            Rc = R[sl]

            def best_given(others, Rc=Rc):
                if others.shape[-1] == 0:
                    Pp = eye.expand_as(Rc)
                else:
                    Pp = eye - projector(model.steering(others).to(R.dtype))
                num = qf(Pp @ Rc @ Pp)
                den = qf(Pp)
                ok = den > 1e-6 * qf.norms
                score = torch.where(ok, num / den.clamp_min(torch.finfo(den.dtype).tiny),
                                    torch.full_like(num, -torch.inf))
                return pts[score.argmax(-1)]

            if init is None:
                th = torch.zeros(Rc.shape[0], K, dtype=pts.dtype, device=R.device)
                for k in range(K):  # sequential start
                    th[:, k] = best_given(th[:, :k])
            else:
                th = init[sl].to(pts.dtype).clone()
            for _ in range(int(sweeps)):
                before = th.clone()
                for k in range(K):
                    idx = [j for j in range(K) if j != k]
                    th[:, k] = best_given(th[:, idx])
                if bool((th == before).all()):  # a fixed point of the cyclic search
                    break
            out.append(th)
        return torch.cat(out, 0)


_INITS = ("multi", "ap", "music")


def dml_doa(R: torch.Tensor, model, num_sources: int, grid: SearchGrid, *, init: str = "multi",
            sweeps: int = 10, iterations: int = 30, grid_only: bool = False,
            chunk_size: int = 256) -> EstimationResult:
    r"""Deterministic ML DOAs of K sources for any array model.

    tr(P_A R̂) is not concave in θ: for sources closer than a beamwidth it has several local
    maxima, and one start may converge to the wrong one.  ``init="multi"`` (default) refines
    two starts per batch element — alternating projection from the sequential start, and
    alternating projection from the K largest MUSIC grid peaks (peaks MUSIC did not find are
    taken from the first start) — and keeps the one with the larger tr(P_A R̂), i.e. the
    larger likelihood; ``"ap"`` and ``"music"`` refine only the first or the second start.

    Args:
        R: ``(..., M, M)`` sample covariance.
        model: the ``ArrayGeometry``/``ArrayModel`` the receiver assumes.
        num_sources: K.
        grid: azimuth grid of the initialisation.
        init: ``"multi"``, ``"ap"`` or ``"music"`` (see above).
        sweeps: largest number of alternating-projection passes per start.
        iterations: Levenberg–Marquardt iterations (:func:`dml_refine`); 0 or ``grid_only=True``:
            the (best) grid result.

    Returns:
        :class:`EstimationResult` with estimates ``(..., K, 1)`` ("azimuth"), sorted by angle,
        and ``extras["cost"]`` = tr(P_A R̂) at the estimate.
    """
    if init not in _INITS:
        raise ValueError(f"unknown init {init!r}; expected one of {', '.join(map(repr, _INITS))}")
    with torch.no_grad():
        batch, Rf, valid = flatten_covariance(R, model.num_elements)
        K = int(num_sources)
        if isinstance(num_sources, bool) or not 0 < K < Rf.shape[-1]:
            raise ValueError(f"num_sources must be in [1, M-1] = [1, {Rf.shape[-1] - 1}], got {num_sources}")
        starts = []
        if init in ("multi", "ap"):
            starts.append(alternating_projection(Rf, model, K, grid, sweeps, chunk_size))
        if init in ("multi", "music"):
            ang, found, _, _ = music_grid_peaks(Rf, model, K, grid, chunk_size, False)
            peaks = ang[..., 0]
            if not bool(found.all()):  # missing MUSIC peaks: the sequential AP start fills them
                fill = starts[0] if starts else alternating_projection(Rf, model, K, grid, 0, chunk_size)
                peaks = torch.where(found, peaks, fill)
            starts.append(alternating_projection(Rf, model, K, grid, sweeps, chunk_size, init=peaks))
        S = len(starts)
        th = torch.stack(starts, 0).reshape(S * Rf.shape[0], K)  # all starts as one batch
        Rs = Rf.expand(S, *Rf.shape).reshape(-1, *Rf.shape[-2:])
        if not grid_only and iterations > 0:
            th = dml_refine(Rs, model, th, iterations, bounds=(grid.start, grid.stop))
        cost = dml_cost(Rs, model.steering(th).to(Rs.dtype)).reshape(S, -1)
        best = cost.argmax(0)  # (B,)
        th = th.reshape(S, -1, K)[best, torch.arange(best.numel(), device=best.device)]
        cost = cost.gather(0, best[None]).squeeze(0)
        found = torch.ones_like(th, dtype=torch.bool)
        return make_result(th[..., None], found, valid, batch, ("azimuth",),
                           extras={"cost": torch.where(valid, cost, torch.full_like(cost, torch.nan)).reshape(batch)})


#: default grid of the DML initialisation: 0.05° over [-90°, 90°] (refined afterwards)
DML_GRID = SearchGrid.degrees(-90.0, 90.0, 0.05)


@register("dml")
class DML(Estimator):
    """Deterministic maximum likelihood DOAs (:func:`dml_doa`) for any assumed array model.

    Args:
        array: the ``ArrayGeometry``/``ArrayModel`` the receiver assumes (may differ from the
            one that generated the data: mismatched ML).
        num_sources: K.  grid: initialisation grid.  init: ``"multi"``, ``"ap"`` or ``"music"``.
        sweeps: largest number of alternating-projection passes.  iterations: Levenberg–Marquardt
        iterations.
    """

    input_kind = "covariance"
    parameters = ("azimuth",)

    def __init__(self, array, num_sources: int = 1, grid: SearchGrid = DML_GRID, init: str = "multi",
                 sweeps: int = 10, iterations: int = 30, grid_only: bool = False, chunk_size: int = 256):
        self.array = array
        self.num_sources = num_sources
        self.grid = grid
        self.init = init
        self.sweeps = sweeps
        self.iterations = iterations
        self.grid_only = grid_only
        self.chunk_size = chunk_size

    def estimate(self, R: torch.Tensor) -> EstimationResult:
        return dml_doa(R, self.array, self.num_sources, self.grid, init=self.init, sweeps=self.sweeps,
                       iterations=self.iterations, grid_only=self.grid_only, chunk_size=self.chunk_size)

    @classmethod
    def example(cls, dtype=torch.complex128, device="cpu", generator=None):
        from ..geometry import ula
        arr = ula(8)
        truth = torch.tensor([[-0.2], [0.15]], dtype=torch.float64)  # closer than a beamwidth
        R = example_covariance(arr, truth[:, 0], dtype=dtype, device=device, generator=generator)
        return cls(arr, 2), R, truth
